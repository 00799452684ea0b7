"""Where everything that is stored lives: layers, their versions, the audit log, operator tokens, the geocoding cache
and jobs — behind one interface with two backends.

* :class:`~geoserver.storage.files.FileStorage` — GeoPackage files in a data directory, history and audit log in
  its ``.geoserver/`` folder (the embedded default: one machine, nothing to install).
* :class:`~geoserver.storage.postgis.PostgisStorage` — one PostgreSQL/PostGIS database shared by any number of
  server replicas on any hosts (``GEOSERVER_DATABASE_URL`` or ``--database-url``).

The server keeps every layer in memory either way (the in-process index is the fast path); the storage is read at
start-up and when a new version appears, and written by imports, edits, rollbacks and geocoding runs.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import GeoServerError

DATABASE_URL_ENV = "GEOSERVER_DATABASE_URL"


class StorageUnavailable(GeoServerError):
    """The shared store cannot be reached: reads go on from memory, writes are refused until it is back."""

    code = "StorageUnavailable"
    http_status = 503


class Storage:
    """The interface both backends implement (see the module docstring). Layer methods take a LayerSpec."""

    kind = "abstract"

    # --- layers ------------------------------------------------------------------------------------------------
    def load_layer(self, spec, vocab):
        """The current data of a layer as a loaded :class:`~geoserver.core.data.Layer`."""
        raise NotImplementedError

    def signatures(self, specs: dict, force: bool = False) -> dict:
        """A cheap token per layer that changes whenever its data does (None: no data). ``force``: ask the store
        now rather than answer from what a watcher last saw."""
        raise NotImplementedError

    def read_records(self, spec, version: int | None = None) -> tuple[list[dict], list]:
        """(records of the spec's fields, WGS84 geometries) of the current data or of a recorded version."""
        raise NotImplementedError

    def data_version(self, spec) -> str | None:
        """The content hash prefix the server reports as the layer's version (None: no data yet)."""
        raise NotImplementedError

    @contextmanager
    def writing(self, spec):
        """Exclusive write access to one layer (across processes and, for PostGIS, hosts); reads inside it see
        the data the write will replace, and :meth:`commit` inside it is atomic."""
        raise NotImplementedError
        yield  # pragma: no cover

    def commit(self, spec, vocab, frame, *, who: str, action: str, summary: dict, previous_features: int | None):
        """Store ``frame`` (the complete new table) as the next version and make it current (inside
        :meth:`writing`). Data the server could not load is refused (StoreError) and nothing changes."""
        raise NotImplementedError

    def issued(self, spec) -> int:
        """The highest generated id number ever given out in the layer (inside :meth:`writing`)."""
        raise NotImplementedError

    def remember_issued(self, spec, high: int) -> None:
        raise NotImplementedError

    # --- history -------------------------------------------------------------------------------------------------
    def versions(self, layer_id: str) -> list:
        raise NotImplementedError

    def current_version(self, spec):
        raise NotImplementedError

    def version(self, layer_id: str, number: int):
        raise NotImplementedError

    def rollback(self, spec, vocab, number: int, *, who: str):
        raise NotImplementedError

    def prune(self, spec, keep: int, *, who: str) -> list[int]:
        raise NotImplementedError

    # --- audit log, tokens, geocoding cache, jobs, locks ----------------------------------------------------------
    def audit(self, record: dict) -> None:
        raise NotImplementedError

    def audit_records(self, limit: int = 100, layer: str | None = None, layers=None) -> list[dict]:
        raise NotImplementedError

    def tokens(self):
        raise NotImplementedError

    def partners(self):
        """Partners' read keys and usage (core.partners.PartnerStore's interface)."""
        raise NotImplementedError

    def geocode_cache(self):
        raise NotImplementedError

    def jobs(self, folder=None):
        raise NotImplementedError

    def jobs_locator(self, folder=None) -> dict:
        """What another process needs to open the same job store (see :func:`open_jobs`)."""
        raise NotImplementedError

    def try_lock(self, name: str):
        """A named lock held until ``.release()`` (one geocoding run per layer across all servers), or None if
        another holder has it."""
        raise NotImplementedError

    @property
    def scratch_dir(self) -> Path:
        """A local folder for temporary files (uploads being received)."""
        raise NotImplementedError

    # --- operations ---------------------------------------------------------------------------------------------
    def health(self) -> dict:
        """``{"status": "ok"}`` or ``{"status": "degraded", "reason": ...}``."""
        return {"status": "ok"}

    def watch(self, on_change) -> None:
        """Call ``on_change()`` (from a background thread) when another process makes a new version current."""

    def release(self) -> None:
        """Close connections and stop background threads (before a fork, or at exit)."""

    def describe(self) -> str:
        return self.kind


def database_url(explicit: str | None = None) -> str | None:
    return explicit or os.environ.get(DATABASE_URL_ENV) or None


def open_storage(data_dir: Path, database_url_: str | None = None, state_dir: Path | None = None) -> Storage:
    """The PostGIS store if a database URL is given or configured, else the GeoPackage files of ``data_dir``."""
    url = database_url(database_url_)
    if url:
        from .postgis import PostgisStorage
        return PostgisStorage(url)
    from .files import FileStorage
    return FileStorage(Path(data_dir), state_dir)


def open_jobs(locator: dict):
    """The job store named by :meth:`Storage.jobs_locator` (planning runs in other processes and opens it there)."""
    if locator.get("database_url"):
        from .postgis import PgJobStore
        return PgJobStore(locator["database_url"])
    from ..core.jobs import JobStore
    return JobStore(locator.get("dir"))
