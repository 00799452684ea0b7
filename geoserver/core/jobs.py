"""Long-running jobs (siting) whose state lives in files, so every worker process can report and cancel them.

Each job is ``<folder>/<id>.json`` (replaced atomically on every update) plus ``<id>.cancel`` when a client asks
to stop it. The process that runs the job polls for the cancel file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

from .errors import FeatureNotFound

JOB_ID = re.compile(r"^[0-9a-f]{32}$")
KEEP_FINISHED_S = 24 * 3600
#: A running job that has not reported for this long is gone (its process ended with a restart or a crash); the
#: exact solver may stay silent for its whole time limit (at most 600 s).
STALE_RUNNING_S = 960.0


class JobStore:
    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder or Path(tempfile.gettempdir()) / f"geoserver-jobs-{os.getuid()}")
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, job_id: str, suffix: str = ".json") -> Path:
        if not JOB_ID.match(job_id or ""):
            raise FeatureNotFound(f"no job {str(job_id)[:40]!r}", "jobId")
        return self.folder / f"{job_id}{suffix}"

    def create(self, kind: str, summary: dict, owner: str | None = None) -> str:
        self.cleanup()
        job_id = uuid.uuid4().hex
        state = {"id": job_id, "kind": kind, "state": "running", "progress": 0.0, "message": "queued",
                 "request": summary, "created": time.time(), "updated": time.time()}
        if owner is not None:
            state["owner"] = owner
        self._write(job_id, state)
        return job_id

    def count_running(self, kind: str, owner: str | None = None, stale_s: float = STALE_RUNNING_S) -> int:
        """Jobs of ``kind`` (of ``owner``) still running: the server-wide count the caps use. A job silent for
        ``stale_s`` (its process gone with a restart) no longer counts."""
        now, count = time.time(), 0
        for path in self.folder.glob("*.json"):
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if (state.get("kind") == kind and state.get("state") == "running" and now - state.get("updated", 0) < stale_s
                    and (owner is None or state.get("owner") == owner)):
                count += 1
        return count

    def update(self, job_id: str, **fields) -> None:
        state = self.get(job_id)
        state.update(fields, updated=time.time())
        self._write(job_id, state)

    def get(self, job_id: str) -> dict:
        path = self._path(job_id)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FeatureNotFound(f"no job {job_id!r} (finished jobs are kept for 24 hours)", "jobId") from None

    def request_cancel(self, job_id: str) -> dict:
        state = self.get(job_id)
        if state["state"] == "running":
            self._path(job_id, ".cancel").touch()
        return state

    def cancel_requested(self, job_id: str) -> bool:
        return self._path(job_id, ".cancel").exists()

    def _write(self, job_id: str, state: dict) -> None:
        path = self._path(job_id)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".job-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, ensure_ascii=False)
        os.replace(tmp, path)

    def cleanup(self, max_age_s: float = KEEP_FINISHED_S) -> None:
        """Remove job files older than max_age_s."""
        cutoff = time.time() - max_age_s
        for path in self.folder.glob("*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass
