"""PostgreSQL + PostGIS as the shared store of any number of server replicas.

Layout (created and upgraded by ``geoserver db init``, versioned migrations in ``migrations/``):

* ``layers.<layer id>`` — the current data of each layer, one row per feature, one column per field of the layer's
  spec, ``geom geometry(Point, 4326)`` (``geometry(Geometry, 4326)`` for areas) with a GiST index and ``_ord``
  (the feature order). Plain tables: QGIS, pg_featureserv or tipg read them as they are.
* ``geoserver.layer_state`` — which version of each layer is current, its content hash and the id high-water mark;
* ``geoserver.versions`` — every version: who, when, what, and its complete content (compressed), for rollback;
* ``geoserver.audit``, ``geoserver.operators`` (hashed tokens), ``geoserver.partners`` (hashed read keys and
  usage), ``geoserver.geocode_cache``, ``geoserver.jobs``.

Every write is one transaction under a per-layer advisory lock: the version row, the new table content, the state,
the audit line and a ``NOTIFY geoserver_layers`` commit together or not at all (a writer killed mid-transaction
leaves the previous version current and loses nothing committed). Replicas LISTEN on that channel (and poll the
small state table as a fallback), reload a changed layer in the background and swap it in; while the database is
unreachable they go on answering from memory, report ``degraded`` and refuse writes with 503, and catch up by
themselves when it is back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import shapely

from ..core.data import build_layer
from ..core.errors import DataError, FeatureNotFound, GeoServerError
from ..core.store import AlreadyCurrent, StoreError, Version, VersionNotFound, fault_point, now_utc
from . import Storage, StorageUnavailable

log = logging.getLogger(__name__)

CHANNEL = "geoserver_layers"
COLUMN_TYPES = {"string": "text", "opening_hours": "text", "services": "text", "integer": "bigint",
                "number": "double precision", "boolean": "boolean"}
#: A replica that hears nothing asks the state table this often (a missed notification costs at most this long).
POLL_INTERVAL_S = float(os.environ.get("GEOSERVER_DATABASE_POLL_S", "1.0"))


def _psycopg():
    import psycopg
    return psycopg


def redact(url: str) -> str:
    """The URL without its password (for logs and messages)."""
    from urllib.parse import urlsplit, urlunsplit
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://…"
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return str(value)


def _column(series) -> list:
    """A frame column as plain Python values, None where missing (whole columns at once, not cell by cell)."""
    values = series.astype(object).where(series.notna(), None).tolist()
    return [v.item() if hasattr(v, "item") else v for v in values] if series.dtype != object else values


def table_records(spec, frame) -> tuple[list[dict], list]:
    """(records, geometries) of a frame holding the spec's fields."""
    names = [f.name for f in spec.fields if f.name in frame.columns]
    columns = [_column(frame[n]) for n in names]
    records = [dict(zip(names, row)) for row in zip(*columns)] if names else [{} for _ in range(len(frame))]
    geoms = [None if g is None or shapely.is_missing(g) or g.is_empty else g for g in frame.geometry.values]
    return records, geoms


def ewkb_hex(geoms: list) -> list:
    """Hex EWKB (SRID 4326) of every geometry, None for none: what COPY gives PostGIS, and what a version keeps."""
    array = np.empty(len(geoms), dtype=object)
    array[:] = geoms
    return shapely.to_wkb(shapely.set_srid(array, 4326), hex=True, include_srid=True, output_dimension=2).tolist()


def encode_content(records: list[dict], wkb: list) -> bytes:
    """A version's complete content as canonical JSON bytes (hashed for its data version, compressed when kept)."""
    return orjson.dumps({"records": records, "wkb": wkb}, option=orjson.OPT_SORT_KEYS)


def decode_content(raw: bytes) -> tuple[list[dict], list]:
    data = orjson.loads(raw)
    wkb = np.empty(len(data["wkb"]), dtype=object)
    wkb[:] = data["wkb"]
    return data["records"], shapely.from_wkb(wkb).tolist()


def frame_of(spec, records: list[dict], geoms: list) -> gpd.GeoDataFrame:
    """Records as the frame a GeoPackage reader gives (numbers as float64 with NaN, whole numbers as int64 unless
    some are missing, text as objects with None), so both backends load into identical layers."""
    data = {}
    for f in spec.fields:
        values = [r.get(f.name) for r in records]
        if f.type == "number" or (f.type == "integer" and any(v is None for v in values)):
            data[f.name] = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        elif f.type == "integer":
            data[f.name] = np.array([int(v) for v in values], dtype=np.int64)
        else:
            data[f.name] = np.array(values, dtype=object)
    array = np.empty(len(geoms), dtype=object)
    array[:] = geoms
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(array, crs=4326), crs=4326)


class _PgLock:
    """A session-level advisory lock on its own connection, held until released."""

    def __init__(self, conn, key: str):
        self._conn, self._key = conn, key

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self._key,))
            except Exception:   # the connection is gone: so is the lock
                pass
            self._conn.close()
            self._conn = None


class PostgisStorage(Storage):
    kind = "postgis"

    def __init__(self, url: str, pool_size: int | None = None):
        if not url.startswith(("postgresql://", "postgres://")):
            raise StoreError("the database URL must start with postgresql:// (e.g. postgresql://user:password@host:"
                             "5432/geoserver)", "database_url")
        self.url = url
        self.pool_size = pool_size or int(os.environ.get("GEOSERVER_DATABASE_POOL", "4"))
        self._pool = None
        self._pool_pid = None
        self._tx = threading.local()
        self._health = {"status": "ok"}
        self._known: dict | None = None        # layer -> (version, data version), as the watcher last saw it
        self._watcher = None
        self._watcher_pid = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"PostGIS at {redact(self.url)}"

    @property
    def scratch_dir(self) -> Path:
        from .files import default_scratch
        return default_scratch()

    # --- connections ----------------------------------------------------------------------------------------
    def _get_pool(self):
        """The connection pool of this process (a forked worker makes its own: connections are never shared
        across processes)."""
        pid = os.getpid()
        if self._pool is None or self._pool_pid != pid:
            with self._lock:
                if self._pool is None or self._pool_pid != pid:
                    from psycopg_pool import ConnectionPool
                    self._pool = ConnectionPool(
                        self.url, min_size=1, max_size=self.pool_size, timeout=5.0, open=False, name="geoserver",
                        kwargs={"autocommit": True, "connect_timeout": 3, "application_name": "geoserver"},
                        check=ConnectionPool.check_connection, reconnect_timeout=0)
                    self._pool.open(wait=False)
                    self._pool_pid = pid
        return self._pool

    @contextmanager
    def _errors(self, what: str):
        """Database errors as domain errors: unreachable → StorageUnavailable (503), others → StoreError."""
        psycopg = _psycopg()
        try:
            yield
        except GeoServerError:
            raise
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            self._degrade(reason)
            raise StorageUnavailable(f"the database is unreachable ({reason}); {what} was not done and nothing "
                                     "changed — try again in a moment") from exc
        except psycopg.Error as exc:
            raise StoreError(f"{what} failed in the database: {str(exc).strip()[:300]}; nothing changed") from exc

    @contextmanager
    def connection(self, what: str = "the request"):
        """The write transaction's connection inside :meth:`writing`, else one from the pool."""
        conn = getattr(self._tx, "conn", None)
        if conn is not None:
            yield conn
            return
        with self._errors(what), self._get_pool().connection() as conn:
            yield conn

    def _degrade(self, reason: str) -> None:
        if self._health.get("status") != "degraded":
            log.warning("database unreachable: %s", reason)
            self._health = {"status": "degraded", "reason": f"database unreachable: {reason}", "since": now_utc()}

    def _recover(self) -> None:
        if self._health.get("status") != "ok":
            log.warning("database reachable again")
        self._health = {"status": "ok"}

    def health(self) -> dict:
        return dict(self._health)

    def release(self) -> None:
        self._stop.set()
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.close(timeout=2)
        self._pool = None
        self._stop = threading.Event()

    # --- schema ---------------------------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply the migrations the database lacks, in order, each in its own transaction; returns their names."""
        applied = []
        with self.connection("the schema upgrade") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('geoserver:migrate'))")
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.execute("CREATE SCHEMA IF NOT EXISTS geoserver")
            conn.execute("CREATE TABLE IF NOT EXISTS geoserver.schema_migrations (version integer PRIMARY KEY, "
                         "name text NOT NULL, applied timestamptz NOT NULL DEFAULT now())")
            done = {r[0] for r in conn.execute("SELECT version FROM geoserver.schema_migrations")}
            for number, name, sql in migrations():
                if number in done:
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO geoserver.schema_migrations (version, name) VALUES (%s, %s)",
                             (number, name))
                applied.append(name)
        return applied

    def schema_version(self) -> int:
        with self.connection("reading the schema version") as conn:
            try:
                row = conn.execute("SELECT max(version) FROM geoserver.schema_migrations").fetchone()
            except _psycopg().errors.UndefinedTable:
                return 0
        return int(row[0] or 0)

    def ensure_table(self, conn, spec) -> None:
        """The layer's table with a column for every field of its spec (new fields are added, none removed)."""
        from psycopg import sql
        table = sql.Identifier("layers", spec.id)
        geom_type = "Point" if spec.is_point else "Geometry"
        conn.execute("CREATE SCHEMA IF NOT EXISTS layers")
        conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (id text PRIMARY KEY, geom geometry({}, 4326), "
                             "_ord integer NOT NULL)").format(table, sql.SQL(geom_type)))
        for f in spec.fields:
            if f.name == "id":
                continue
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                table, sql.Identifier(f.name), sql.SQL(COLUMN_TYPES.get(f.type, "text"))))
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gist (geom)").format(
            sql.Identifier(f"{spec.id}_geom_gist"), table))

    def layer_ids(self) -> list[str]:
        with self.connection("listing the stored layers") as conn:
            return [r[0] for r in conn.execute("SELECT layer FROM geoserver.layer_state ORDER BY layer")]

    # --- layers ---------------------------------------------------------------------------------------------------
    def _columns(self, spec) -> list[str]:
        return [f.name for f in spec.fields]

    def _read_table(self, conn, spec) -> tuple[list[dict], list]:
        from psycopg import sql
        names = self._columns(spec)
        query = sql.SQL("SELECT {}, ST_AsBinary(geom) FROM {} ORDER BY _ord").format(
            sql.SQL(", ").join(sql.Identifier(n) for n in names), sql.Identifier("layers", spec.id))
        try:
            rows = conn.execute(query).fetchall()
        except _psycopg().errors.UndefinedTable:
            raise DataError(f"layer {spec.id}: the database has no table layers.{spec.id} (run `geoserver db "
                            "init`)") from None
        records = [dict(zip(names, row[:-1])) for row in rows]
        wkb = np.empty(len(rows), dtype=object)
        wkb[:] = [None if row[-1] is None else bytes(row[-1]) for row in rows]
        return records, shapely.from_wkb(wkb).tolist()

    def _state(self, conn, layer_id: str):
        return conn.execute("SELECT version, data_version, modified, id_high_water FROM geoserver.layer_state "
                            "WHERE layer = %s", (layer_id,)).fetchone()

    def load_layer(self, spec, vocab):
        with self.connection(f"loading layer {spec.id}") as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            state = self._state(conn, spec.id)
            if state is None:
                raise DataError(f"layer {spec.id}: the database holds no data for it (run `geoserver db init`, or "
                                "import a file into it)")
            records, geoms = self._read_table(conn, spec)
        frame = frame_of(spec, records, geoms)
        modified = state[2].astimezone(timezone.utc).replace(microsecond=0)
        return build_layer(spec, vocab, frame, state[1], modified, f"table layers.{spec.id}")

    def _query_signatures(self) -> dict:
        with self.connection("reading the layer versions") as conn:
            rows = conn.execute("SELECT layer, version, data_version FROM geoserver.layer_state").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def signatures(self, specs: dict, force: bool = False) -> dict:
        known = self._known
        if force or known is None or not self._watching():
            try:
                known = self._query_signatures()
            except StorageUnavailable:
                if known is None:
                    raise
        return {lid: known.get(lid) for lid in specs}

    def read_records(self, spec, version: int | None = None):
        if version is not None:
            return decode_content(self._version_content(spec.id, version))
        with self.connection(f"reading layer {spec.id}") as conn:
            return self._read_table(conn, spec)

    def data_version(self, spec) -> str | None:
        with self.connection(f"reading layer {spec.id}") as conn:
            state = self._state(conn, spec.id)
        return None if state is None else state[1]

    @contextmanager
    def writing(self, spec):
        if getattr(self._tx, "conn", None) is not None:
            raise StoreError("nested writes are not supported")
        with self.connection(f"the change to layer {spec.id}") as conn, self._errors(f"the change to layer {spec.id}"):
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"geoserver:layer:{spec.id}",))
                self._tx.conn = conn
                try:
                    yield
                finally:
                    self._tx.conn = None

    def _next_number(self, conn, layer_id: str) -> int:
        row = conn.execute("SELECT max(number) FROM geoserver.versions WHERE layer = %s", (layer_id,)).fetchone()
        return int(row[0] or 0) + 1

    def commit(self, spec, vocab, frame, *, who, action, summary, previous_features):
        conn = getattr(self._tx, "conn", None)
        if conn is None:
            raise StoreError("commit outside a write transaction")
        records, geoms = table_records(spec, frame)
        return self._commit_content(conn, spec, vocab, records, geoms, who=who, action=action, summary=summary)

    def _commit_content(self, conn, spec, vocab, records, geoms, *, who, action, summary) -> Version:
        from psycopg import sql
        from psycopg.types.json import Jsonb
        wkb = ewkb_hex(geoms)
        raw = encode_content(records, wkb)
        sha = hashlib.sha256(raw).hexdigest()
        try:   # never make current what the server could not load
            build_layer(spec, vocab, frame_of(spec, records, geoms), sha[:16], datetime.now(timezone.utc),
                        f"the new data of layer {spec.id}")
        except DataError as exc:
            raise StoreError(f"the new data of layer {spec.id!r} would not load ({exc.message}); nothing was "
                             "changed") from exc
        self.ensure_table(conn, spec)
        number = self._next_number(conn, spec.id)
        created = now_utc()
        version = Version(number=number, sha256=sha, created=created, who=who, action=action,
                          features=len(records), summary=summary)
        conn.execute("INSERT INTO geoserver.versions (layer, number, sha256, created, who, action, features, "
                     "summary, content) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                     (spec.id, number, sha, created, who, action, len(records), Jsonb(summary),
                      zlib.compress(raw, 6)))
        fault_point("version-recorded")
        table = sql.Identifier("layers", spec.id)
        names = self._columns(spec)
        conn.execute(sql.SQL("DELETE FROM {}").format(table))
        copy_sql = sql.SQL("COPY {} ({}, geom, _ord) FROM STDIN").format(
            table, sql.SQL(", ").join(sql.Identifier(n) for n in names))
        with conn.cursor().copy(copy_sql) as copy:
            for i, (rec, ewkb) in enumerate(zip(records, wkb)):
                copy.write_row([rec.get(n) for n in names] + [ewkb, i])
        fault_point("activated")
        conn.execute("INSERT INTO geoserver.layer_state (layer, version, data_version, modified) "
                     "VALUES (%s, %s, %s, now()) ON CONFLICT (layer) DO UPDATE SET version = excluded.version, "
                     "data_version = excluded.data_version, modified = excluded.modified",
                     (spec.id, number, sha[:16]))
        if action != "initial":   # as with files: the data a store starts with is a version, not an audited change
            self._audit(conn, {"who": who, "action": action, "layer": spec.id, "version": number,
                               "features": len(records), **summary})
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{spec.id}:{number}"))
        return version

    def issued(self, spec) -> int:
        with self.connection(f"reading layer {spec.id}") as conn:
            state = self._state(conn, spec.id)
        return 0 if state is None else int(state[3] or 0)

    def remember_issued(self, spec, high: int) -> None:
        with self.connection(f"the change to layer {spec.id}") as conn:
            conn.execute("INSERT INTO geoserver.layer_state (layer, version, data_version, modified, id_high_water) "
                         "VALUES (%s, 0, '', now(), %s) ON CONFLICT (layer) DO UPDATE SET id_high_water = "
                         "greatest(geoserver.layer_state.id_high_water, excluded.id_high_water)", (spec.id, high))

    # --- history --------------------------------------------------------------------------------------------------
    @staticmethod
    def _version_of(row) -> Version:
        return Version(number=row[0], sha256=row[1], created=_iso(row[2]), who=row[3], action=row[4],
                       features=row[5], summary=row[6] or {})

    _VERSION_COLUMNS = "number, sha256, created, who, action, features, summary"

    def versions(self, layer_id: str) -> list:
        with self.connection("reading the history") as conn:
            rows = conn.execute(f"SELECT {self._VERSION_COLUMNS} FROM geoserver.versions WHERE layer = %s "
                                "ORDER BY number", (layer_id,)).fetchall()
        return [self._version_of(r) for r in rows]

    def current_version(self, spec):
        with self.connection("reading the history") as conn:
            row = conn.execute(f"SELECT {self._VERSION_COLUMNS} FROM geoserver.versions v JOIN "
                               "geoserver.layer_state s ON s.layer = v.layer AND s.version = v.number "
                               "WHERE v.layer = %s", (spec.id,)).fetchone()
        return None if row is None else self._version_of(row)

    def version(self, layer_id: str, number: int):
        with self.connection("reading the history") as conn:
            row = conn.execute(f"SELECT {self._VERSION_COLUMNS} FROM geoserver.versions WHERE layer = %s AND "
                               "number = %s", (layer_id, number)).fetchone()
        if row is None:
            known = ", ".join(str(v.number) for v in self.versions(layer_id)) or "none yet"
            raise VersionNotFound(f"layer {layer_id!r} has no version {number}; versions: {known}", "version")
        return self._version_of(row)

    def _version_content(self, layer_id: str, number: int) -> bytes:
        with self.connection("reading the history") as conn:
            row = conn.execute("SELECT content FROM geoserver.versions WHERE layer = %s AND number = %s",
                               (layer_id, number)).fetchone()
        if row is None:
            self.version(layer_id, number)   # raises VersionNotFound naming the versions there are
        return zlib.decompress(bytes(row[0]))

    def rollback(self, spec, vocab, number: int, *, who: str):
        with self.writing(spec):
            old = self.version(spec.id, number)
            current = self.current_version(spec)
            if current is not None and current.sha256 == old.sha256:
                raise AlreadyCurrent(f"version {number} of layer {spec.id!r} is already the current data; nothing "
                                     "to restore", "version")
            records, geoms = decode_content(self._version_content(spec.id, number))
            return self._commit_content(self._tx.conn, spec, vocab, records, geoms, who=who, action="rollback",
                                        summary={"restored_version": number})

    def prune(self, spec, keep: int, *, who: str) -> list[int]:
        if keep < 1:
            raise StoreError("keep at least 1 version", "keep")
        with self.writing(spec):
            versions = self.versions(spec.id)
            current = self.current_version(spec)
            newest = {v.number for v in versions[-keep:]}
            doomed = [v.number for v in versions
                      if v.number not in newest and (current is None or v.number != current.number)]
            if doomed:
                conn = self._tx.conn
                conn.execute("DELETE FROM geoserver.versions WHERE layer = %s AND number = ANY(%s)",
                             (spec.id, doomed))
                self._audit(conn, {"who": who, "action": "prune", "layer": spec.id, "removed_versions": doomed,
                                   "kept": len(versions) - len(doomed)})
            return doomed

    # --- audit log --------------------------------------------------------------------------------------------
    def _audit(self, conn, record: dict) -> None:
        from psycopg.types.json import Jsonb
        full = orjson.loads(orjson.dumps({"time": now_utc(), **record}, default=str))
        conn.execute("INSERT INTO geoserver.audit (layer, record) VALUES (%s, %s)", (record.get("layer"), Jsonb(full)))

    def audit(self, record: dict) -> None:
        with self.connection("writing the audit log") as conn:
            self._audit(conn, record)

    def audit_records(self, limit: int = 100, layer: str | None = None, layers=None) -> list[dict]:
        where, args = [], []
        if layer is not None:
            where.append("layer = %s")
            args.append(layer)
        if layers is not None:
            where.append("layer = ANY(%s)")
            args.append(list(layers))
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        with self.connection("reading the audit log") as conn:
            rows = conn.execute(f"SELECT record FROM geoserver.audit {clause} ORDER BY id DESC LIMIT %s",
                                (*args, int(limit))).fetchall()
        return [r[0] for r in rows]

    # --- tokens, geocoding cache, jobs, locks ---------------------------------------------------------------------
    def tokens(self):
        return PgTokenStore(self)

    def partners(self):
        return PgPartnerStore(self)

    def geocode_cache(self):
        return PgGeocodeCache(self)

    def jobs(self, folder=None):
        return PgJobStore(self.url, storage=self)

    def jobs_locator(self, folder=None) -> dict:
        return {"database_url": self.url}

    def try_lock(self, name: str):
        psycopg = _psycopg()
        with self._errors(f"taking the lock {name}"):
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
            got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"geoserver:{name}",)).fetchone()[0]
        if not got:
            conn.close()
            return None
        return _PgLock(conn, f"geoserver:{name}")

    # --- replicas: hearing about new versions ---------------------------------------------------------------------
    def _watching(self) -> bool:
        return self._watcher is not None and self._watcher_pid == os.getpid() and self._watcher.is_alive()

    def watch(self, on_change) -> None:
        """Start (once per process) the thread that LISTENs for new versions and polls as a fallback."""
        if self._watching():
            return
        with self._lock:
            if self._watching():
                return
            self._stop = threading.Event()
            self._watcher = threading.Thread(target=self._watch_loop, args=(on_change, self._stop),
                                             name="geoserver-db-watch", daemon=True)
            self._watcher_pid = os.getpid()
            self._watcher.start()

    def _watch_loop(self, on_change, stop: threading.Event) -> None:
        psycopg = _psycopg()
        backoff = 0.2
        while not stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=3,
                                     application_name="geoserver-watch") as conn:
                    listening = self._listen(conn)
                    backoff = 0.2
                    self._poll(conn, on_change)   # catch up on whatever happened while away
                    self._recover()
                    last = time.monotonic()
                    while not stop.is_set():
                        heard = False
                        if listening:
                            for _ in conn.notifies(timeout=min(0.5, POLL_INTERVAL_S)):
                                heard = True
                        else:
                            stop.wait(min(0.5, POLL_INTERVAL_S))
                        if heard or time.monotonic() - last >= POLL_INTERVAL_S:
                            self._poll(conn, on_change)
                            last = time.monotonic()
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                self._degrade(reason)
            except Exception:   # never let the watcher die: a replica would silently stop following
                log.exception("database watcher failed; retrying")
            stop.wait(backoff)
            backoff = min(backoff * 2, 2.0)

    def _listen(self, conn) -> bool:
        """LISTEN for new versions; False (poll only) where that is off or impossible (a hot-standby read replica
        refuses LISTEN: there new versions arrive by replication and are found by polling)."""
        if os.environ.get("GEOSERVER_DATABASE_LISTEN", "1") in ("0", "false", "no"):
            return False
        psycopg = _psycopg()
        try:
            conn.execute(f"LISTEN {CHANNEL}")
            return True
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            log.warning("cannot LISTEN for new versions (%s); polling every %s s instead",
                        str(exc).strip()[:200], POLL_INTERVAL_S)
            return False

    def _poll(self, conn, on_change) -> None:
        rows = conn.execute("SELECT layer, version, data_version FROM geoserver.layer_state").fetchall()
        known = {r[0]: (r[1], r[2]) for r in rows}
        changed = known != self._known
        self._known = known
        if changed:
            try:
                on_change()
            except Exception:
                log.exception("reloading layers after a new version failed")


class PgTokenStore:
    """Operators' hashed tokens in ``geoserver.operators`` (the same API as the file store)."""

    def __init__(self, storage: PostgisStorage):
        self.storage = storage

    def add(self, name: str, layers: tuple[str, ...] = ("*",)) -> str:
        import secrets
        from psycopg.types.json import Jsonb
        from ..core.auth import NAME_RE, TOKEN_PREFIX, TokenError, digest
        if not NAME_RE.match(name):
            raise TokenError("operator name: 1-64 letters, digits, Chinese characters or _ . @ -", "name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.storage.connection("storing the token") as conn:
            conn.execute("INSERT INTO geoserver.operators (name, sha256, layers, created) VALUES (%s, %s, %s, now()) "
                         "ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, layers = excluded.layers, "
                         "created = excluded.created", (name, digest(token), Jsonb(list(layers))))
        return token

    def revoke(self, name: str) -> bool:
        with self.storage.connection("revoking the token") as conn:
            return conn.execute("DELETE FROM geoserver.operators WHERE name = %s", (name,)).rowcount > 0

    def list(self) -> list[dict]:
        with self.storage.connection("listing the tokens") as conn:
            rows = conn.execute("SELECT name, layers, created FROM geoserver.operators ORDER BY name").fetchall()
        return [{"name": r[0], "layers": r[1], "created": _iso(r[2])} for r in rows]

    def verify(self, token: str | None):
        from ..core.auth import TOKEN_PREFIX, Operator, digest
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self.storage.connection("checking the token") as conn:
            row = conn.execute("SELECT name, layers FROM geoserver.operators WHERE sha256 = %s",
                               (digest(token),)).fetchone()
        return None if row is None else Operator(row[0], tuple(row[1] or ["*"]))


class PgPartnerStore:
    """Partners' hashed read keys and usage in ``geoserver.partners`` (the same API as core.partners.PartnerStore);
    usage is added with one UPDATE per partner, so every server's counts add up."""

    def __init__(self, storage: PostgisStorage):
        self.storage = storage

    def add(self, name: str, layers: tuple[str, ...], rate_per_minute: int = 600) -> str:
        from psycopg.types.json import Jsonb
        from ..core.auth import digest
        from ..core.partners import check_new, new_key
        check_new(name, layers, rate_per_minute)
        key = new_key()
        with self.storage.connection("storing the partner key") as conn:
            conn.execute("INSERT INTO geoserver.partners (name, sha256, layers, rate_per_minute, created) VALUES "
                         "(%s, %s, %s, %s, now()) ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, "
                         "layers = excluded.layers, rate_per_minute = excluded.rate_per_minute, "
                         "created = excluded.created", (name, digest(key), Jsonb(list(layers)), int(rate_per_minute)))
        return key

    def revoke(self, name: str) -> bool:
        with self.storage.connection("revoking the partner key") as conn:
            return conn.execute("DELETE FROM geoserver.partners WHERE name = %s", (name,)).rowcount > 0

    def list(self) -> list[dict]:
        with self.storage.connection("listing the partners") as conn:
            rows = conn.execute("SELECT name, layers, rate_per_minute, created, requests, features, refused, cursors, "
                                "last_seen FROM geoserver.partners ORDER BY name").fetchall()
        return [{"name": r[0], "layers": r[1], "rate_per_minute": r[2], "created": _iso(r[3]), "requests": r[4],
                 "features": r[5], "refused": r[6], "cursors": r[7], "last_seen": _iso(r[8])} for r in rows]

    def verify(self, key: str | None):
        from ..core.auth import digest
        from ..core.partners import Partner, well_formed
        if not well_formed(key):
            return None
        with self.storage.connection("checking the partner key") as conn:
            row = conn.execute("SELECT name, layers, rate_per_minute FROM geoserver.partners WHERE sha256 = %s",
                               (digest(key),)).fetchone()
        return None if row is None else Partner(row[0], tuple(row[1] or []), int(row[2]))

    def record(self, batch: dict) -> None:
        from psycopg.types.json import Jsonb
        if not batch:
            return
        with self.storage.connection("counting partner usage") as conn, conn.transaction():
            for name, c in sorted(batch.items()):
                conn.execute("UPDATE geoserver.partners SET requests = requests + %s, features = features + %s, "
                             "refused = refused + %s, cursors = cursors || %s, last_seen = GREATEST(last_seen, "
                             "%s::timestamptz) WHERE name = %s",
                             (int(c["requests"]), int(c["features"]), int(c["refused"]), Jsonb(c["cursors"]),
                              c["last_seen"], name))


class PgGeocodeCache:
    """Definitive geocoder answers shared by every replica (the same API as the sqlite cache)."""

    def __init__(self, storage: PostgisStorage):
        self.storage = storage

    def get(self, provider: str, query: str, city: str):
        from ..core.geocode import Candidate, GeocodeAnswer, normalise_query
        query = normalise_query(query)
        with self.storage.connection("reading the geocoding cache") as conn:
            row = conn.execute("SELECT candidates FROM geoserver.geocode_cache WHERE provider = %s AND city = %s "
                               "AND query = %s", (provider, normalise_query(city), query)).fetchone()
        if row is None:
            return None
        return GeocodeAnswer(provider, query, tuple(Candidate(**c) for c in row[0]), cached=True)

    def put(self, answer, city: str) -> None:
        from psycopg.types.json import Jsonb
        from ..core.geocode import normalise_query
        with self.storage.connection("writing the geocoding cache") as conn:
            conn.execute("INSERT INTO geoserver.geocode_cache (provider, city, query, candidates, stored_at) VALUES "
                         "(%s, %s, %s, %s, now()) ON CONFLICT (provider, city, query) DO UPDATE SET candidates = "
                         "excluded.candidates, stored_at = excluded.stored_at",
                         (answer.provider, normalise_query(city), normalise_query(answer.query),
                          Jsonb([c.to_dict() for c in answer.candidates])))

    def __len__(self) -> int:
        with self.storage.connection("reading the geocoding cache") as conn:
            return conn.execute("SELECT count(*) FROM geoserver.geocode_cache").fetchone()[0]


class PgJobStore:
    """Jobs (siting, geocoding) in ``geoserver.jobs``: every worker of every replica can report and cancel them."""

    def __init__(self, url: str, storage: PostgisStorage | None = None):
        self.url = url
        self.storage = storage or PostgisStorage(url, pool_size=2)
        self.folder = None

    def _check(self, job_id: str) -> None:
        from ..core.jobs import JOB_ID
        if not JOB_ID.match(job_id or ""):
            raise FeatureNotFound(f"no job {str(job_id)[:40]!r}", "jobId")

    def create(self, kind: str, summary: dict, owner: str | None = None) -> str:
        import uuid
        from psycopg.types.json import Jsonb
        self.cleanup()
        job_id = uuid.uuid4().hex
        now = time.time()
        state = {"id": job_id, "kind": kind, "state": "running", "progress": 0.0, "message": "queued",
                 "request": summary, "created": now, "updated": now}
        if owner is not None:
            state["owner"] = owner
        with self.storage.connection("creating the job") as conn:
            conn.execute("INSERT INTO geoserver.jobs (id, kind, owner, state, updated) VALUES (%s, %s, %s, %s, %s)",
                         (job_id, kind, owner, Jsonb(state), now))
        return job_id

    def count_running(self, kind: str, owner: str | None = None, stale_s: float | None = None) -> int:
        from ..core.jobs import STALE_RUNNING_S
        cutoff = time.time() - (STALE_RUNNING_S if stale_s is None else stale_s)
        with self.storage.connection("counting jobs") as conn:
            row = conn.execute("SELECT count(*) FROM geoserver.jobs WHERE kind = %s AND state->>'state' = 'running' "
                               "AND updated > %s AND (%s::text IS NULL OR owner = %s)",
                               (kind, cutoff, owner, owner)).fetchone()
        return int(row[0])

    def update(self, job_id: str, **fields) -> None:
        from psycopg.types.json import Jsonb
        self._check(job_id)
        now = time.time()
        state = orjson.loads(orjson.dumps({**fields, "updated": now}, default=str))
        with self.storage.connection("updating the job") as conn:
            done = conn.execute("UPDATE geoserver.jobs SET state = state || %s, updated = %s WHERE id = %s",
                                (Jsonb(state), now, job_id)).rowcount
        if not done:
            raise FeatureNotFound(f"no job {job_id!r} (finished jobs are kept for 24 hours)", "jobId")

    def get(self, job_id: str) -> dict:
        self._check(job_id)
        with self.storage.connection("reading the job") as conn:
            row = conn.execute("SELECT state FROM geoserver.jobs WHERE id = %s", (job_id,)).fetchone()
        if row is None:
            raise FeatureNotFound(f"no job {job_id!r} (finished jobs are kept for 24 hours)", "jobId")
        return row[0]

    def request_cancel(self, job_id: str) -> dict:
        state = self.get(job_id)
        if state["state"] == "running":
            with self.storage.connection("cancelling the job") as conn:
                conn.execute("UPDATE geoserver.jobs SET cancel = true WHERE id = %s", (job_id,))
        return state

    def cancel_requested(self, job_id: str) -> bool:
        self._check(job_id)
        with self.storage.connection("reading the job") as conn:
            row = conn.execute("SELECT cancel FROM geoserver.jobs WHERE id = %s", (job_id,)).fetchone()
        return bool(row and row[0])

    def cleanup(self, max_age_s: float | None = None) -> None:
        from ..core.jobs import KEEP_FINISHED_S
        cutoff = time.time() - (KEEP_FINISHED_S if max_age_s is None else max_age_s)
        with self.storage.connection("removing old jobs") as conn:
            conn.execute("DELETE FROM geoserver.jobs WHERE updated < %s", (cutoff,))


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, SQL) of every migration shipped, in order (``migrations/NNNN_name.sql``)."""
    out = []
    folder = resources.files("geoserver.storage") / "migrations"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), name[:-4], entry.read_text(encoding="utf-8")))
    return out


def initialise(storage: PostgisStorage, specs: dict, vocab, from_dir: Path, who: str, progress=None) -> dict:
    """``geoserver db init``: upgrade the schema, then — if the database holds no layers yet — load every layer of
    ``specs`` from the data files in ``from_dir`` as version 1 of each. Returns what was done."""
    from ..core.edit import read_records
    applied = storage.migrate()
    loaded = {}
    if not storage.layer_ids():
        for lid, spec in specs.items():
            path = Path(from_dir) / spec.data_file
            if not path.exists():
                raise DataError(f"layer {lid}: {path.name} not found in {from_dir}; nothing was loaded")
        for lid, spec in specs.items():
            records, geoms = read_records(Path(from_dir) / spec.data_file, spec)
            with storage.writing(spec):
                storage._commit_content(storage._tx.conn, spec, vocab, records, geoms, who=who, action="initial",
                                        summary={"note": f"loaded from {Path(from_dir).name}/{spec.data_file} by "
                                                         "geoserver db init"})
            loaded[lid] = len(records)
            if progress:
                progress(lid, len(records))
    else:
        with storage.connection("creating the layer tables") as conn, conn.transaction():
            for spec in specs.values():
                storage.ensure_table(conn, spec)
    return {"migrations_applied": applied, "schema_version": storage.schema_version(), "layers_loaded": loaded}
