"""HTTP plumbing shared by the blueprints: JSON responses, ETags and 304s, gzip, CORS."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from collections import OrderedDict
from pathlib import Path

import orjson
from flask import Response, request, send_file

from ..core.errors import InvalidQuery

GEOJSON = "application/geo+json"
JSON = "application/json"
GZIP_MIN_BYTES = 1024
READ_METHODS = "GET, HEAD, OPTIONS"


def etag_for(*parts) -> str:
    """A strong ETag from the data version and everything else the body depends on."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=10).hexdigest()
    return f'"{digest}"'


def not_modified(etag: str) -> bool:
    """True if the client's If-None-Match already names this representation (any encoding)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    if header.strip() == "*":
        return True
    base = etag.strip('"')
    tags = {t.strip().removeprefix("W/").strip('"').removesuffix("-gzip") for t in header.split(",")}
    return base in tags


def check_params(allowed: set[str], what: str = "query parameter") -> None:
    """Refuse unknown query parameters (typos must not pass silently) and repeated single-valued ones."""
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        name = unknown[0][:40]
        raise InvalidQuery(f"unknown {what} {name!r}; accepted: {', '.join(sorted(allowed))}", name)
    for name in request.args:
        count = len(request.args.getlist(name))
        if count > 1:
            raise InvalidQuery(f"{name} is given {count} times; give it once (use commas for several values)", name)


def json_response(body, status: int = 200, content_type: str = JSON, etag: str | None = None,
                  cache: str = "public, max-age=60", headers: dict | None = None) -> Response:
    """A JSON response from bytes or a JSON-able object; 304 when ``etag`` matches If-None-Match."""
    if etag is not None and status == 200 and not_modified(etag):
        resp = Response(status=304)
    else:
        data = body if isinstance(body, (bytes, bytearray)) else orjson.dumps(body)
        resp = Response(data, status=status, content_type=content_type)
    if etag is not None:
        resp.headers["ETag"] = etag
    resp.headers["Cache-Control"] = cache
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


class GzipCache:
    """A small LRU of compressed bodies keyed by ETag, so polled responses are compressed once."""

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_or_compress(self, key: str | None, data: bytes) -> bytes:
        if key is None:
            return gzip.compress(data, compresslevel=5, mtime=0)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        packed = gzip.compress(data, compresslevel=5, mtime=0)
        with self._lock:
            self._items[key] = packed
            self._size += len(packed)
            while self._size > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)
        return packed


def accepts_gzip() -> bool:
    """True if Accept-Encoding allows gzip (explicitly or by ``*``) with a non-zero q value."""
    for part in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = part.partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        key, _, value = params.partition("=")
        if key.strip().lower() != "q":
            return True
        try:
            return float(value) > 0
        except ValueError:
            return False
    return False


def finish(resp: Response, cache: GzipCache) -> Response:
    """after_request: CORS for reads, gzip for large JSON bodies."""
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Expose-Headers"] = "ETag, Content-Crs, Link"
    if request.method == "OPTIONS":
        resp.headers["Access-Control-Allow-Methods"] = resp.headers.get("Allow", READ_METHODS)
        resp.headers["Access-Control-Allow-Headers"] = "Content-Type, If-None-Match, Accept"
        resp.headers["Access-Control-Max-Age"] = "86400"
    if (resp.status_code == 200 and not resp.direct_passthrough and "Content-Encoding" not in resp.headers
            and resp.mimetype in (JSON, GEOJSON, "application/vnd.oai.openapi+json", "text/html")):
        resp.vary.add("Accept-Encoding")
        data = resp.get_data()
        if len(data) >= GZIP_MIN_BYTES and accepts_gzip():
            etag = resp.headers.get("ETag")
            resp.set_data(cache.get_or_compress(etag, data))
            resp.headers["Content-Encoding"] = "gzip"
            if etag:
                resp.headers["ETag"] = etag[:-1] + '-gzip"'
    return resp


# --- static files: text assets gzipped once and kept in memory ---------------------------------------------------
#: Types served from memory (and gzipped for clients that accept it); anything else goes through send_file.
TEXT_SUFFIXES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".json": JSON,
                 ".map": JSON, ".txt": "text/plain", ".geojson": GEOJSON}
STATIC_MEMORY_MAX_BYTES = 4 << 20  # larger text files (e.g. source maps) are not kept in memory


class StaticTextCache:
    """Small text assets (Leaflet, the web map's own JS/CSS) read once per file version, with a gzip copy and a
    content ETag, so they cross the wire compressed (send_file would pass them through uncompressed)."""

    def __init__(self, max_items: int = 64):
        self.max_items = max_items
        self._items: OrderedDict[tuple, tuple[str, bytes, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[str, bytes, bytes] | None:
        """(etag, raw, gzipped) for ``path``; None if it is too large to keep in memory."""
        stat = path.stat()
        if stat.st_size > STATIC_MEMORY_MAX_BYTES:
            return None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        raw = path.read_bytes()
        entry = (etag_for("static", hashlib.blake2b(raw, digest_size=16).hexdigest()), raw,
                 gzip.compress(raw, compresslevel=9, mtime=0))
        with self._lock:
            self._items[key] = entry
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return entry


STATIC_TEXT = StaticTextCache()


def static_file(path: Path, max_age: int = 86400, immutable: bool = False) -> Response:
    """A static file: text types from memory, gzipped when the client accepts it, with ETag / 304; other types
    (images, fonts) via send_file. ``immutable`` for URLs that carry a content version."""
    content_type = TEXT_SUFFIXES.get(path.suffix.lower())
    entry = STATIC_TEXT.get(path) if content_type else None
    cache = f"public, max-age={31536000 if immutable else max_age}" + (", immutable" if immutable else "")
    if entry is None:
        resp = send_file(path, max_age=max_age, mimetype=content_type or mimetypes.guess_type(path.name)[0])
        resp.headers["Cache-Control"] = cache
        return resp
    etag, raw, packed = entry
    compressed = accepts_gzip()
    if not_modified(etag):
        resp = Response(status=304)
    elif compressed:
        resp = Response(packed, mimetype=content_type)
        resp.headers["Content-Encoding"] = "gzip"
    else:
        resp = Response(raw, mimetype=content_type)
    resp.headers["ETag"] = etag[:-1] + '-gzip"' if compressed else etag
    resp.headers["Cache-Control"] = cache
    resp.vary.add("Accept-Encoding")
    return resp
