"""Partners' read keys (map companies, 随申办): named, stored hashed, scoped to layers, with usage and a rate limit.

Public reads stay open to everyone. A partner sends its key (``X-Partner-Key: gsp_…``) so its traffic is counted —
requests, features received, the last change-feed cursor per layer, when it was last seen — and limited to its
own rate (requests a minute). ``geoserver partner add 高德地图 --layers stations,driver_homes`` prints the key once;
only its SHA-256 digest is kept (a random 256-bit key cannot be guessed, so a fast digest is enough, as for the
operators' tokens). The file store is ``<data dir>/.geoserver/partners.json``; PostGIS keeps ``geoserver.partners``.
Counts are gathered in each process and added to the store every few seconds (``Usage``), so a busy partner costs
no write per request; the last seconds of a process that is killed are not counted.
"""

from __future__ import annotations

import fcntl
import hmac
import os
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from .auth import NAME_RE, digest
from .errors import GeoServerError
from .store import STATE_DIRNAME, now_utc, write_bytes_atomic

KEY_PREFIX = "gsp_"
KEY_RE = re.compile(r"^gsp_[A-Za-z0-9_\-]{20,80}$")
DEFAULT_RATE_PER_MINUTE = 600
MAX_RATE_PER_MINUTE = 100_000
#: How often a process adds its gathered counts to the store.
FLUSH_EVERY_S = 5.0


class PartnerError(GeoServerError):
    code = "InvalidParameterValue"


@dataclass(frozen=True)
class Partner:
    """Who a valid key belongs to, which layers it reads and its rate (requests a minute)."""

    name: str
    layers: tuple[str, ...]
    rate_per_minute: int

    def may_read(self, layer_id: str) -> bool:
        return "*" in self.layers or layer_id in self.layers


def check_new(name: str, layers: tuple[str, ...], rate_per_minute: int) -> None:
    if not NAME_RE.match(name):
        raise PartnerError("partner name: 1-64 letters, digits, Chinese characters or _ . @ -", "name")
    if not layers:
        raise PartnerError("give the layers the partner reads (comma-separated ids, or *)", "layers")
    if not 1 <= int(rate_per_minute) <= MAX_RATE_PER_MINUTE:
        raise PartnerError(f"rate: 1 to {MAX_RATE_PER_MINUTE:,} requests a minute", "rate")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def well_formed(key: str | None) -> bool:
    return bool(key) and len(key) <= 100 and KEY_RE.match(key) is not None


def partners_path(data_dir: Path) -> Path:
    return Path(os.environ.get("GEOSERVER_PARTNERS_FILE") or Path(data_dir) / STATE_DIRNAME / "partners.json")


def _empty_usage() -> dict:
    return {"requests": 0, "features": 0, "refused": 0, "cursors": {}, "last_seen": None}


class PartnerStore:
    """Partners in one JSON file (rewritten atomically under a lock, mode 0600); the interface the PostGIS store
    (``storage.postgis.PgPartnerStore``) shares."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _load(self) -> dict:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        return orjson.loads(data) if data else {}

    def _save(self, data: dict) -> None:
        write_bytes_atomic(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.chmod(self.path, 0o600)

    def add(self, name: str, layers: tuple[str, ...], rate_per_minute: int = DEFAULT_RATE_PER_MINUTE) -> str:
        """Create the key of ``name`` (replacing an old one; usage is kept) and return it: it is stored nowhere."""
        check_new(name, layers, rate_per_minute)
        key = new_key()
        with self._locked():
            data = self._load()
            old = data.get(name, {})
            data[name] = {"sha256": digest(key), "layers": list(layers), "rate_per_minute": int(rate_per_minute),
                          "created": now_utc(), "usage": old.get("usage", _empty_usage())}
            self._save(data)
        return key

    def revoke(self, name: str) -> bool:
        with self._locked():
            data = self._load()
            if name not in data:
                return False
            del data[name]
            self._save(data)
        return True

    def list(self) -> list[dict]:
        """Every partner with its layers, rate and usage (never the key)."""
        return [{"name": k, "layers": v.get("layers", []), "rate_per_minute": v.get("rate_per_minute"),
                 "created": v.get("created"), **{**_empty_usage(), **v.get("usage", {})}}
                for k, v in sorted(self._load().items())]

    def verify(self, key: str | None) -> Partner | None:
        if not well_formed(key):
            return None
        wanted = digest(key)
        found = None
        for name, entry in self._load().items():
            if hmac.compare_digest(wanted, str(entry.get("sha256", ""))):
                found = Partner(name, tuple(entry.get("layers", [])), int(entry.get("rate_per_minute") or
                                                                         DEFAULT_RATE_PER_MINUTE))
        return found

    def record(self, batch: dict[str, dict]) -> None:
        """Add gathered counts (``{name: {"requests", "features", "refused", "cursors", "last_seen"}}``)."""
        if not batch:
            return
        with self._locked():
            data = self._load()
            for name, counts in batch.items():
                if name not in data:        # revoked meanwhile
                    continue
                usage = {**_empty_usage(), **data[name].get("usage", {})}
                for field in ("requests", "features", "refused"):
                    usage[field] = int(usage[field]) + int(counts.get(field, 0))
                usage["cursors"] = {**usage["cursors"], **counts.get("cursors", {})}
                usage["last_seen"] = max(filter(None, (usage["last_seen"], counts.get("last_seen"))), default=None)
                data[name]["usage"] = usage
            self._save(data)


class Usage:
    """Counts gathered in one process, added to the store at most every ``FLUSH_EVERY_S`` seconds; and the
    per-process token buckets of the partners' rates."""

    def __init__(self, store, flush_every_s: float = FLUSH_EVERY_S):
        self.store = store
        self.flush_every_s = flush_every_s
        self._lock = threading.Lock()
        self._batch: dict[str, dict] = {}
        self._last_flush = time.monotonic()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._known: dict[str, tuple[float, Partner | None]] = {}    # key digest -> (checked at, partner)

    def partner(self, key: str, ttl_s: float = 10.0) -> Partner | None:
        """The key's partner, asking the store at most every ``ttl_s`` seconds per key (a revoked key stops
        working within that time)."""
        d = digest(key)
        now = time.monotonic()
        with self._lock:
            cached = self._known.get(d)
        if cached is not None and now - cached[0] < ttl_s:
            return cached[1]
        found = self.store.verify(key)
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[d] = (now, found)
        return found

    def admit(self, partner: Partner) -> float | None:
        """None when a request may go ahead, else the seconds until it may (the partner's token bucket)."""
        rate = partner.rate_per_minute / 60.0
        capacity = max(1.0, partner.rate_per_minute / 6.0)   # a burst of ten seconds' worth
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(partner.name, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[partner.name] = (tokens - 1.0, now)
                return None
            self._buckets[partner.name] = (tokens, now)
            return (1.0 - tokens) / rate

    def count(self, partner: Partner, *, features: int = 0, refused: bool = False,
              cursor: tuple[str, str] | None = None) -> None:
        with self._lock:
            entry = self._batch.setdefault(partner.name, _empty_usage())
            entry["requests"] += 1
            entry["features"] += int(features)
            entry["refused"] += int(refused)
            if cursor is not None:
                entry["cursors"][cursor[0]] = cursor[1]
            entry["last_seen"] = now_utc()
            due = time.monotonic() - self._last_flush >= self.flush_every_s
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, {}
            self._last_flush = time.monotonic()
        try:
            self.store.record(batch)
        except GeoServerError:      # the store is away: keep the counts for the next flush
            with self._lock:
                for name, counts in batch.items():
                    entry = self._batch.setdefault(name, _empty_usage())
                    for field in ("requests", "features", "refused"):
                        entry[field] += counts[field]
                    entry["cursors"] = {**counts["cursors"], **entry["cursors"]}
                    entry["last_seen"] = entry["last_seen"] or counts["last_seen"]


__all__ = ["Partner", "PartnerStore", "PartnerError", "Usage", "partners_path", "well_formed", "KEY_PREFIX",
           "DEFAULT_RATE_PER_MINUTE"]
