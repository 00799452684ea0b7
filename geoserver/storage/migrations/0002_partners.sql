-- Partners' read keys (hashed), the layers they read, their rate, and their usage (added to by every server).
CREATE TABLE geoserver.partners (
    name text PRIMARY KEY,
    sha256 text NOT NULL UNIQUE,
    layers jsonb NOT NULL,
    rate_per_minute integer NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    requests bigint NOT NULL DEFAULT 0,
    features bigint NOT NULL DEFAULT 0,
    refused bigint NOT NULL DEFAULT 0,
    cursors jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_seen timestamptz
);
