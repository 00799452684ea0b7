-- The state of the layers, their history, the audit log, operators' tokens, the geocoding cache and jobs.
-- The layers' own tables (layers.<id>) follow the layer specs and are created by the server (ensure_table).
CREATE SCHEMA IF NOT EXISTS layers;

CREATE TABLE geoserver.layer_state (
    layer          text PRIMARY KEY,
    version        integer NOT NULL,            -- the current version (geoserver.versions.number)
    data_version   text NOT NULL,               -- content hash prefix, the layer's public version / ETag
    modified       timestamptz NOT NULL,
    id_high_water  bigint NOT NULL DEFAULT 0    -- highest generated id number ever given out
);

CREATE TABLE geoserver.versions (
    layer     text NOT NULL,
    number    integer NOT NULL,
    sha256    text NOT NULL,
    created   timestamptz NOT NULL,
    who       text NOT NULL,
    action    text NOT NULL,
    features  integer NOT NULL,
    summary   jsonb NOT NULL DEFAULT '{}'::jsonb,
    content   bytea NOT NULL,                   -- zlib-compressed canonical JSON of every row (for rollback)
    PRIMARY KEY (layer, number)
);

CREATE TABLE geoserver.audit (
    id      bigserial PRIMARY KEY,
    time    timestamptz NOT NULL DEFAULT now(),
    layer   text,
    record  jsonb NOT NULL
);
CREATE INDEX audit_layer_id ON geoserver.audit (layer, id);

CREATE TABLE geoserver.operators (
    name     text PRIMARY KEY,
    sha256   text NOT NULL UNIQUE,
    layers   jsonb NOT NULL,
    created  timestamptz NOT NULL
);

CREATE TABLE geoserver.geocode_cache (
    provider    text NOT NULL,
    city        text NOT NULL,
    query       text NOT NULL,
    candidates  jsonb NOT NULL,
    stored_at   timestamptz NOT NULL,
    PRIMARY KEY (provider, city, query)
);

CREATE TABLE geoserver.jobs (
    id       text PRIMARY KEY,
    kind     text NOT NULL,
    owner    text,
    state    jsonb NOT NULL,
    updated  double precision NOT NULL,
    cancel   boolean NOT NULL DEFAULT false
);
CREATE INDEX jobs_kind_updated ON geoserver.jobs (kind, updated);
