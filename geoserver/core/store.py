"""Versioned, crash-safe storage of layer data files.

Every change to a layer (an import, a single edit over HTTP, a rollback) becomes a new numbered version:

    <data dir>/<layer>.gpkg                         the current data, what the server loads
    <data dir>/.geoserver/history/<layer>/000007.gpkg   an immutable copy of every version
    <data dir>/.geoserver/history/<layer>/000007.json   what it is: who, when, what changed, content hash
    <data dir>/.geoserver/audit.jsonl               one line per write, append-only

A commit never writes over a file in place. It writes a temporary file in the same directory, flushes it to disk
(fsync), then renames it over the target (``os.replace``, atomic on POSIX), then fsyncs the directory. A crash, a
``kill -9`` or a full disk at any point therefore leaves the previous data file complete and readable; at worst a
version is recorded that never became current (``history`` shows which one is current by content hash) and a
temporary file is left behind, removed by the next commit. Writers of one layer are serialised by an exclusive
``flock`` on the layer's history folder, so a CLI import and an HTTP edit cannot interleave.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import logging
import os
import shutil
import signal
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson

from .data import file_digest
from .errors import GeoServerError
from .history import iso_utc

log = logging.getLogger(__name__)
STATE_DIRNAME = ".geoserver"
FAULT_ENV = "GEOSERVER_FAULT_INJECT"


class StoreError(GeoServerError):
    """A write could not be completed; the layer's data is unchanged."""

    code = "StoreError"


class VersionNotFound(GeoServerError):
    code = "NotFound"


class AlreadyCurrent(GeoServerError):
    """A rollback to the version that is already current."""

    code = "Conflict"


def fault_point(name: str) -> None:
    """Failure injection for the crash tests: inert unless $GEOSERVER_FAULT_INJECT names this point.

    ``kill:<point>`` kills the process with SIGKILL there (as ``kill -9`` would); ``enospc:<point>`` raises the
    error a full disk gives.
    """
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    action, _, point = wanted.partition(":")
    if point != name:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically (temp file, fsync, rename, fsync directory)."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def copy_atomic(source: Path, target: Path, fault: str | None = None) -> None:
    """Replace ``target`` with a copy of ``source`` atomically: a temporary copy beside it (``.<name>.<random>.tmp``),
    fsync, rename over the target, fsync the folder. ``fault`` names the failure-injection point before the rename."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        shutil.copyfile(source, tmp)
        _fsync_file(tmp)
        if fault:
            fault_point(fault)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def now_utc() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@dataclass(frozen=True)
class Version:
    """One recorded version of a layer."""

    number: int
    sha256: str
    created: str
    who: str
    action: str
    features: int
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_version(text: str) -> int:
    """``7``, ``v7`` or ``000007`` as 7."""
    raw = str(text).strip().lower().removeprefix("v")
    if not raw.isdigit() or int(raw) < 1:
        raise VersionNotFound(f"not a version number: {str(text)[:40]!r} (use a number from the history, e.g. 3)",
                              "version")
    return int(raw)


class LayerStore:
    """Versioned writes of the layer data files in one data directory."""

    def __init__(self, data_dir: Path, state_dir: Path | None = None):
        self.data_dir = Path(data_dir)
        self.state_dir = Path(state_dir) if state_dir else self.data_dir / STATE_DIRNAME

    # --- paths -----------------------------------------------------------------------------------------
    def history_dir(self, layer_id: str) -> Path:
        return self.state_dir / "history" / layer_id

    @property
    def audit_path(self) -> Path:
        return self.state_dir / "audit.jsonl"

    def _version_file(self, layer_id: str, number: int, suffix: str) -> Path:
        return self.history_dir(layer_id) / f"{number:06d}{suffix}"

    # --- reading ---------------------------------------------------------------------------------------
    def versions(self, layer_id: str) -> list[Version]:
        """Every recorded version, oldest first (a version exists once its .json is written)."""
        folder = self.history_dir(layer_id)
        if not folder.is_dir():
            return []
        out = []
        for meta in sorted(folder.glob("[0-9]" * 6 + ".json")):
            try:
                out.append(Version(**orjson.loads(meta.read_bytes())))
            except (orjson.JSONDecodeError, TypeError):
                continue  # never written completely (cannot happen with atomic writes, but never fail a listing)
        return out

    def current_sha(self, data_file: str) -> str | None:
        path = self.data_dir / data_file
        return file_digest(path) if path.exists() else None

    def current_version(self, layer_id: str, data_file: str) -> Version | None:
        """The newest version whose content is the current data file (None if the file was changed by hand)."""
        sha = self.current_sha(data_file)
        return next((v for v in reversed(self.versions(layer_id)) if v.sha256 == sha), None)

    def version(self, layer_id: str, number: int) -> Version:
        found = next((v for v in self.versions(layer_id) if v.number == number), None)
        if found is None:
            known = ", ".join(str(v.number) for v in self.versions(layer_id)) or "none yet"
            raise VersionNotFound(f"layer {layer_id!r} has no version {number}; versions: {known}", "version")
        return found

    def version_path(self, layer_id: str, number: int) -> Path:
        self.version(layer_id, number)
        return self._version_file(layer_id, number, ".gpkg")

    # --- writing ---------------------------------------------------------------------------------------
    @contextmanager
    def lock(self, layer_id: str):
        """Exclusive lock for writers of one layer (released by the OS if the process dies)."""
        folder = self.history_dir(layer_id)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def clean_temporaries(self, layer_id: str, data_file: str) -> None:
        """Remove temporary files and folders a killed writer left (call under the layer's lock, first thing)."""
        for pattern_dir, pattern in ((self.history_dir(layer_id), ".*.tmp*"),
                                     (self.data_dir, f".{data_file}.*.tmp*")):
            for stale in pattern_dir.glob(pattern):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)

    def _record(self, layer_id: str, source: Path, *, who: str, action: str, features: int, summary: dict,
                sha: str | None = None) -> Version:
        """Copy ``source`` into the history as the next version (under the lock)."""
        existing = self.versions(layer_id)
        number = (existing[-1].number if existing else 0) + 1
        target = self._version_file(layer_id, number, ".gpkg")
        copy_atomic(source, target, "history-copied")
        version = Version(number=number, sha256=sha or file_digest(target), created=now_utc(), who=who,
                          action=action, features=int(features), summary=summary)
        write_bytes_atomic(self._version_file(layer_id, number, ".json"),
                           orjson.dumps(version.to_dict(), option=orjson.OPT_INDENT_2))
        return version

    def _snapshot_current(self, layer_id: str, data_file: str, features: int | None) -> None:
        """Record the current file as a version if the history does not hold it (first change, or hand edits)."""
        path = self.data_dir / data_file
        if not path.exists():
            return
        sha = file_digest(path)
        versions = self.versions(layer_id)
        if any(v.sha256 == sha for v in versions):
            return
        if features is None:
            import pyogrio
            features = int(pyogrio.read_info(path)["features"])
        action = "initial" if not versions else "found-on-disk"
        note = ("the data as it was before the first recorded change" if not versions
                else "the data file was changed outside geoserver; kept so it can be restored")
        # when the file was written: the time its features were served with as their last change (core.history)
        written = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        self._record(layer_id, path, who="geoserver", action=action, features=features,
                     summary={"note": note, "data_modified": iso_utc(written)}, sha=sha)

    def _activate(self, source: Path, data_file: str) -> None:
        """Make ``source`` the current data file: copy beside it, fsync, rename over it, fsync the folder."""
        copy_atomic(source, self.data_dir / data_file, "before-activate")

    def commit_file(self, layer_id: str, data_file: str, new_file: Path, *, who: str, action: str, features: int,
                    summary: dict, previous_features: int | None = None) -> Version:
        """Record ``new_file`` (a complete data file) as the next version and make it current.

        Call under :meth:`lock`. ``new_file`` is left in place (the caller removes its temporary files).
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._snapshot_current(layer_id, data_file, previous_features)
            version = self._record(layer_id, new_file, who=who, action=action, features=features, summary=summary)
            fault_point("version-recorded")
            self._activate(new_file, data_file)
        except OSError as exc:
            raise StoreError(f"could not write layer {layer_id!r}: {exc.strerror or exc}; the layer's data is "
                             "unchanged") from exc
        fault_point("activated")   # crash tests: the new data is current, the audit line not written yet
        try:
            self.audit({"who": who, "action": action, "layer": layer_id, "version": version.number,
                        "features": features, **summary})
        except OSError as exc:  # the change is made and in the history; say loudly that the log missed it
            log.error("version %s of layer %s is current but the audit log could not be written: %s",
                      version.number, layer_id, exc)
        return version

    def rollback(self, layer_id: str, data_file: str, number: int, *, who: str) -> Version:
        """Make an old version current again, as a new version (the history is never rewritten)."""
        with self.lock(layer_id):
            self.clean_temporaries(layer_id, data_file)
            old = self.version(layer_id, number)
            if self.current_sha(data_file) == old.sha256:
                raise AlreadyCurrent(f"version {number} of layer {layer_id!r} is already the current data; nothing "
                                     "to restore", "version")
            source = self._version_file(layer_id, number, ".gpkg")
            return self.commit_file(layer_id, data_file, source, who=who, action="rollback", features=old.features,
                                    summary={"restored_version": number})

    def prune(self, layer_id: str, data_file: str, keep: int, *, who: str) -> list[int]:
        """Delete all but the ``keep`` newest versions (never the current one); returns the numbers deleted.

        The only way versions are ever removed: an operator's explicit choice to bound the history's disk use.
        """
        if keep < 1:
            raise StoreError("keep at least 1 version", "keep")
        with self.lock(layer_id):
            versions = self.versions(layer_id)
            current = self.current_version(layer_id, data_file)
            newest = {v.number for v in versions[-keep:]}
            doomed = [v.number for v in versions
                      if v.number not in newest and (current is None or v.number != current.number)]
            for number in doomed:  # the .json is the entry: remove it first, so no listing shows a missing file
                self._version_file(layer_id, number, ".json").unlink(missing_ok=True)
                self._version_file(layer_id, number, ".gpkg").unlink(missing_ok=True)
            if doomed:
                fsync_dir(self.history_dir(layer_id))
                self.audit({"who": who, "action": "prune", "layer": layer_id, "removed_versions": doomed,
                            "kept": len(versions) - len(doomed)})
            return doomed

    # --- audit log -------------------------------------------------------------------------------------
    def audit(self, record: dict) -> None:
        """Append one line to the audit log (who, when, what), flushed to disk."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps({"time": now_utc(), **record}, default=str) + b"\n"
        with open(self.audit_path, "ab") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def audit_records(self, limit: int = 100, layer: str | None = None,
                      layers: set[str] | frozenset[str] | None = None) -> list[dict]:
        """The newest ``limit`` audit records (newest first), optionally for one layer, or only those of ``layers``
        (an operator's scope: records of other layers, or of no layer, are left out)."""
        if not self.audit_path.exists():
            return []
        out = []
        for line in reversed(self.audit_path.read_bytes().splitlines()):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if layers is not None and record.get("layer") not in layers:
                continue
            if layer is None or record.get("layer") == layer:
                out.append(record)
                if len(out) >= limit:
                    break
        return out
