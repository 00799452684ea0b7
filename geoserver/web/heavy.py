"""Planning work away from the riders: coverage, gaps, the planning page and siting run in a small pool of separate,
lower-priority processes, behind admission limits, so a planner's minute of work never holds up a rider's nearest.

Each serving worker owns (lazily, after it has forked) one ``ProcessPoolExecutor`` of ``processes`` processes started
with ``spawn``, reniced (``nice``) and tied to the worker's life; each loads its own GeoService and keeps its own
analysis cache. A request thread hands its operation over and waits; meanwhile the worker's other threads keep
answering nearest queries. Long siting jobs get a pool of their own (``job_processes``), so a ten-minute job does not
block an interactive coverage question. ``processes = 0`` runs the operations in the request thread (the Flask test
client, ``geoserver dev``).

Admission, per serving worker, before any work: a client (its address) may have ``per_client`` heavy requests in
flight (else 429) and ``per_minute`` a minute (token bucket; 0 = no limit; else 429 with Retry-After); the worker
takes at most ``processes + queue`` at a time, and never more than half its request threads, so riders always find a
free thread (else 503 with Retry-After). Background jobs are capped across the whole
server through the job files: ``max_jobs`` running, ``max_jobs_per_client`` per client (else 429/503).
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
from pathlib import Path
import signal
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

from ..core.errors import GeoServerError


class Busy(GeoServerError):
    """The server's planning capacity is taken: try again after ``retry_after_s`` (503)."""

    code = "ServiceUnavailable"
    http_status = 503

    def __init__(self, message: str, retry_after_s: int = 10, parameter: str | None = None):
        super().__init__(message, parameter)
        self.retry_after_s = retry_after_s

    def __reduce__(self):
        return self.__class__, (self.message, self.retry_after_s, self.parameter)


class TooManyRequests(Busy):
    """This client asked for more planning work than it may (429)."""

    code = "TooManyRequests"
    http_status = 429


@dataclass(frozen=True)
class Limits:
    processes: int = 0              # planning processes per serving worker (0: in the request thread)
    queue: int = 2                  # heavy requests that may wait for a planning process, per serving worker
    request_threads: int = 0        # the serving worker's request threads (0: unknown); at most half wait on planning
    per_client: int = 2             # heavy requests of one client in flight at once, per serving worker
    per_minute: float = 0.0         # heavy requests of one client per minute, per serving worker (0: no limit)
    job_processes: int = 1          # processes for background siting jobs, per serving worker
    max_jobs: int = 4               # background jobs running at once, whole server
    max_jobs_per_client: int = 2    # background jobs of one client running at once, whole server
    nice: int = 10                  # how much lower the planning processes' CPU priority is
    timeout_s: float = 120.0        # the longest a request waits for its answer

    @property
    def capacity(self) -> int:
        """Heavy requests one serving worker takes at once: its planning processes and their queue, but never more
        than half its request threads (the other half always free for riders)."""
        wanted = max(1, self.processes) + self.queue
        return min(wanted, max(1, self.request_threads // 2)) if self.request_threads else wanted

    @classmethod
    def from_env(cls, env=os.environ, **overrides) -> "Limits":
        def pick(name: str, default, kind):
            key = f"GEOSERVER_{name.upper()}"
            if name in overrides and overrides[name] is not None:
                return kind(overrides[name])
            return kind(env[key]) if env.get(key) not in (None, "") else default
        base = cls()
        return cls(processes=pick("planning_processes", base.processes, int),
                   queue=pick("planning_queue", base.queue, int),
                   per_client=pick("heavy_per_client", base.per_client, int),
                   per_minute=pick("heavy_per_minute", base.per_minute, float),
                   job_processes=pick("job_processes", base.job_processes, int),
                   max_jobs=pick("max_jobs", base.max_jobs, int),
                   max_jobs_per_client=pick("max_jobs_per_client", base.max_jobs_per_client, int),
                   nice=pick("planning_nice", base.nice, int),
                   request_threads=pick("request_threads", base.request_threads, int),
                   timeout_s=pick("planning_timeout_s", base.timeout_s, float))


#: What ``geoserver serve`` sets unless the environment says otherwise: planning in its own process, and a rate.
SERVE_DEFAULTS = {"GEOSERVER_PLANNING_PROCESSES": "1", "GEOSERVER_HEAVY_PER_MINUTE": "60"}


# --- the planning processes ---------------------------------------------------------------------------------------
_CHILD = {}


def _die_with_parent() -> None:
    """Ask Linux to end this process when the serving worker that started it ends (SIGKILL included)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_init(data_dir: str, layers_dir: str, nice: int, database_url: str | None = None) -> None:
    _die_with_parent()
    if nice:
        os.nice(nice)
    from ..core.service import GeoService
    from ..storage import open_storage
    # the serving process's store (files, or the same PostGIS database), never a default of the environment
    storage = open_storage(Path(data_dir), database_url) if database_url else None
    if storage is None:
        from ..storage.files import FileStorage
        storage = FileStorage(Path(data_dir))
    _CHILD["service"] = GeoService(data_dir, layers_dir, storage=storage)


def _child_run(op: str, payload):
    svc = _CHILD["service"]
    svc.refresh()
    return operations()[op](svc, payload)


def operations() -> dict:
    """Operation name -> function(service, payload) returning a picklable answer (the same in both modes)."""
    from . import analysis, pages, siting
    return {"coverage": analysis.coverage_body, "gaps": analysis.gaps_body, "scenario": analysis.scenario_body,
            "scenario_report": analysis.scenario_report_zip,
            "planning": pages.planning_html, "planning_data": pages.planning_data_body,
            "siting": siting.siting_answer, "siting_job": siting.run_job}


class PlanningPool:
    """Runs planning operations for one serving worker under the admission limits."""

    def __init__(self, service, limits: Limits):
        self.service = service
        self.limits = limits
        self._lock = threading.Lock()
        self._executors: dict[str, ProcessPoolExecutor | None] = {"interactive": None, "jobs": None}
        self._owner_pid = None
        self._in_flight = 0
        self._per_client: dict[str, int] = defaultdict(int)
        self._buckets: dict[str, tuple[float, float]] = {}      # client -> (tokens, last refill)

    # .. admission ..
    def _take_token(self, client: str) -> None:
        rate = self.limits.per_minute
        if rate <= 0:
            return
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (rate, now))
        tokens = min(rate, tokens + (now - last) * rate / 60.0)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) * 60.0 / rate)
            raise TooManyRequests(f"at most {rate:g} planning requests a minute from one client; try again in "
                                  f"{wait} s", wait)
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:   # forget the longest-idle clients
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[:5_000]:
                del self._buckets[key]

    @contextmanager
    def admit(self, client: str):
        """A slot for one heavy request of ``client``, or Busy / TooManyRequests at once (nothing computed)."""
        limits = self.limits
        with self._lock:
            if self._per_client[client] >= limits.per_client:
                raise TooManyRequests(f"this client already has {self._per_client[client]} planning requests in "
                                      f"progress (at most {limits.per_client}); wait for them", 5)
            if self._in_flight >= limits.capacity:
                raise Busy(f"the planning queue is full ({self._in_flight} requests); try again shortly", 10)
            self._take_token(client)
            self._in_flight += 1
            self._per_client[client] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._per_client[client] -= 1
                if not self._per_client[client]:
                    del self._per_client[client]

    # .. running ..
    def _executor(self, kind: str) -> ProcessPoolExecutor:
        with self._lock:
            if self._owner_pid != os.getpid():   # a fork copied this object: its executors belong to the parent
                self._executors = {"interactive": None, "jobs": None}
                self._owner_pid = os.getpid()
            executor = self._executors[kind]
            if executor is None:
                size = self.limits.processes if kind == "interactive" else self.limits.job_processes
                executor = ProcessPoolExecutor(
                    max_workers=max(1, size), mp_context=multiprocessing.get_context("spawn"),
                    initializer=_child_init, initargs=(str(self.service.data_dir), str(self.service.layers_dir),
                                                       self.limits.nice, getattr(self.service.storage, "url", None)))
                self._executors[kind] = executor
            return executor

    def _reset(self, kind: str) -> None:
        with self._lock:
            executor, self._executors[kind] = self._executors[kind], None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def run(self, op: str, payload, client: str):
        """The answer of ``op`` for ``payload``: in a planning process (or inline), after admission."""
        with self.admit(client):
            if self.limits.processes <= 0:
                return operations()[op](self.service, payload)
            try:
                return self._executor("interactive").submit(_child_run, op, payload).result(self.limits.timeout_s)
            except BrokenProcessPool:   # the process died (out of memory, killed): start afresh next time
                self._reset("interactive")
                raise Busy("the planning process stopped unexpectedly and is being restarted; try again", 5) from None
            except TimeoutError:
                raise Busy(f"the answer took longer than {self.limits.timeout_s:g} s; ask for a smaller area or run "
                           "it as a job (\"async\": true)", 30) from None

    def start_job(self, op: str, payload, on_failure=None) -> None:
        """Run a background job's operation (it reports through the job files); returns at once. ``on_failure``
        (message) is called if the operation dies without reporting (its process killed, out of memory)."""
        if self.limits.processes <= 0:
            threading.Thread(target=operations()[op], args=(self.service, payload), daemon=True).start()
            return

        def done(future):
            error = future.exception()
            if error is None:
                return
            if isinstance(error, BrokenProcessPool):
                self._reset("jobs")
            if on_failure is not None:
                on_failure(f"the job's process stopped unexpectedly ({type(error).__name__}); run it again")

        self._executor("jobs").submit(_child_run, op, payload).add_done_callback(done)


def client_of(request) -> str:
    """Who is asking: the peer address (a proxy in front should be configured to pass distinct clients)."""
    return request.remote_addr or "unknown"
