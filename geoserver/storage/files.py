"""The embedded default: GeoPackage files in one data directory (see :mod:`geoserver.core.store` for the layout and
the crash-safety of its writes). Nothing to install; one machine."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import orjson
import pyogrio

from ..core.data import file_version, load_layer
from ..core.errors import DataError
from ..core.store import STATE_DIRNAME, LayerStore, StoreError, fault_point, write_bytes_atomic
from . import Storage


class _FileLock:
    def __init__(self, handle):
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class FileStorage(Storage):
    kind = "files"

    def __init__(self, data_dir: Path, state_dir: Path | None = None):
        self.store = LayerStore(data_dir, state_dir)
        self.data_dir = self.store.data_dir
        self.state_dir = self.store.state_dir

    def describe(self) -> str:
        return f"files in {self.data_dir}"

    @property
    def scratch_dir(self) -> Path:
        return self.state_dir

    # --- layers ------------------------------------------------------------------------------------------------
    def load_layer(self, spec, vocab):
        return load_layer(spec, vocab, self.data_dir)

    def signatures(self, specs: dict, force: bool = False) -> dict:
        out = {}
        for lid, spec in specs.items():
            try:
                st = os.stat(self.data_dir / spec.data_file)
                out[lid] = (st.st_ino, st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                out[lid] = None
        return out

    def _path(self, spec, version: int | None = None) -> Path:
        return self.data_dir / spec.data_file if version is None else self.store.version_path(spec.id, version)

    def read_records(self, spec, version: int | None = None):
        from ..core.edit import read_records
        return read_records(self._path(spec, version), spec)

    def data_version(self, spec) -> str | None:
        path = self.data_dir / spec.data_file
        return file_version(path) if path.exists() else None

    @contextmanager
    def writing(self, spec):
        with self.store.lock(spec.id):
            self.store.clean_temporaries(spec.id, spec.data_file)
            yield

    def commit(self, spec, vocab, frame, *, who, action, summary, previous_features):
        """Write ``frame`` to a temporary file, check the server can load it, commit it (under the lock)."""
        workdir = self.store.history_dir(spec.id) / f".{uuid.uuid4().hex[:12]}.tmp"
        try:
            tmp = workdir / spec.data_file
            try:
                workdir.mkdir(parents=True)
                pyogrio.write_dataframe(frame, tmp, driver="GPKG", layer=spec.id)
                fault_point("temp-written")
            except OSError as exc:
                raise StoreError(f"could not write layer {spec.id!r}: {exc.strerror or exc}; the layer's data is "
                                 "unchanged") from exc
            except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
                # GDAL reports a failed write (full disk, file size limit) as its own error types, often without
                # the cause ("Failed to commit transaction", "no such table: gpkg_contents"): a fresh temporary
                # file that could not be written is a write failure whatever the message says
                raise StoreError(f"could not write layer {spec.id!r}: {exc}; the layer's data is unchanged") from exc
            try:
                load_layer(spec, vocab, workdir)
            except DataError as exc:
                raise StoreError(f"the new data of layer {spec.id!r} would not load ({exc.message}); nothing was "
                                 "changed") from exc
            return self.store.commit_file(spec.id, spec.data_file, tmp, who=who, action=action,
                                          features=len(frame), summary=summary, previous_features=previous_features)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _issued_path(self, spec) -> Path:
        return self.store.history_dir(spec.id) / "issued_ids.json"

    def issued(self, spec) -> int:
        """``issued_ids.json``, or a version's record of it if that is higher (the file lost or restored from an old
        backup)."""
        try:
            issued = int(orjson.loads(self._issued_path(spec).read_bytes()).get(spec.new_id_prefix, 0))
        except (FileNotFoundError, ValueError, TypeError, orjson.JSONDecodeError, AttributeError):
            issued = 0
        recorded = [v.summary.get("id_high_water") for v in self.store.versions(spec.id)]
        return max([issued, *(int(n) for n in recorded if isinstance(n, int))])

    def remember_issued(self, spec, high: int) -> None:
        """On disk BEFORE the new data becomes current: a crash after it can only skip numbers."""
        try:
            write_bytes_atomic(self._issued_path(spec), orjson.dumps({spec.new_id_prefix: high}))
        except OSError as exc:
            raise StoreError(f"could not write layer {spec.id!r}: {exc.strerror or exc}; the layer's data is "
                             "unchanged") from exc

    # --- history -----------------------------------------------------------------------------------------------
    def versions(self, layer_id: str) -> list:
        return self.store.versions(layer_id)

    def current_version(self, spec):
        return self.store.current_version(spec.id, spec.data_file)

    def version(self, layer_id: str, number: int):
        return self.store.version(layer_id, number)

    def rollback(self, spec, vocab, number: int, *, who: str):
        return self.store.rollback(spec.id, spec.data_file, number, who=who)

    def prune(self, spec, keep: int, *, who: str) -> list[int]:
        return self.store.prune(spec.id, spec.data_file, keep, who=who)

    # --- the rest ----------------------------------------------------------------------------------------------
    def audit(self, record: dict) -> None:
        self.store.audit(record)

    def audit_records(self, limit: int = 100, layer: str | None = None, layers=None) -> list[dict]:
        return self.store.audit_records(limit, layer, layers)

    def tokens(self):
        from ..core.auth import TokenStore, tokens_path
        return TokenStore(tokens_path(self.data_dir))

    def partners(self):
        from ..core.partners import PartnerStore, partners_path
        return PartnerStore(partners_path(self.data_dir))

    def geocode_cache(self):
        from ..core.geocode import GeocodeCache
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return GeocodeCache(self.state_dir / "geocode_cache.sqlite")

    def jobs(self, folder=None):
        from ..core.jobs import JobStore
        return JobStore(folder)

    def jobs_locator(self, folder=None) -> dict:
        return {"dir": str(self.jobs(folder).folder)}

    def try_lock(self, name: str):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.state_dir / f"{name}.lock", "a+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return _FileLock(handle)


def default_scratch() -> Path:
    return Path(tempfile.gettempdir()) / f"geoserver-{os.getuid()}"


__all__ = ["FileStorage", "STATE_DIRNAME", "default_scratch"]
