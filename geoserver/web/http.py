"""HTTP plumbing shared by the blueprints: JSON responses and bodies, ETags and 304s, gzip, CORS, security
headers."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
import orjson
from flask import Request, Response, request, send_file
from isal import isal_zlib
from werkzeug.datastructures import ImmutableMultiDict

from ..core.errors import InvalidQuery

GEOJSON = "application/geo+json"
JSON = "application/json"
#: Bodies smaller than this go out as they are: they fit one packet (an Ethernet frame carries about 1,460 bytes of
#: TCP payload), so compressing them costs CPU on both ends and saves no round trip.
GZIP_MIN_BYTES = 1400
#: Bodies compressed per request (no ETag to keep the result under) up to this size use ISA-L's level 0 (a 3 KB
#: nearest answer: about 8 us where zlib's level 1 takes 38, for 1,115 bytes instead of 902); larger ones its
#: level 1. Every body kept in the GzipCache (compressed once) uses zlib's level 5 (fewer bytes).
GZIP_FAST_MAX_BYTES = 16 << 10
#: Content types compressed when the client accepts gzip (and the body is at least GZIP_MIN_BYTES).
COMPRESSIBLE = frozenset((JSON, GEOJSON, "application/vnd.oai.openapi+json", "text/html", "text/csv"))
READ_METHODS = "GET, HEAD, OPTIONS"
#: JSON bodies nested deeper than this are refused before parsing (a parser recursing 1,000 levels fails).
MAX_JSON_DEPTH = 32
#: On every response (finish): browsers must not guess types, and no URL (it may hold a worker's position) leaks
#: to other sites.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
#: Data answers (JSON, GeoJSON) are never documents: nothing may run in them, nobody may frame them.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
#: The fallback for an HTML page that sets no policy of its own (each page sets its own; this is a safety net).
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
            "frame-ancestors 'self'")


_SECURITY = tuple(SECURITY_HEADERS.items())
_CORS = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "ETag, Content-Crs, Link"))


class QueryArgs(ImmutableMultiDict):
    """``request.args`` whose ``get`` of an absent name is a dictionary lookup: werkzeug's ``MultiDict.get`` builds
    and catches an HTTP exception (a 400 KeyError) for every name that is not there, and the routes ask for each
    optional parameter, given or not (a few microseconds each on every request)."""

    def get(self, key, default=None, type=None):  # noqa: A002 (werkzeug's signature)
        if not dict.__contains__(self, key):
            return default
        return super().get(key, default, type)


class PlainArgs(dict):
    """Query arguments in which each name occurs once (the fast lane checks that first), read through the methods
    of werkzeug's MultiDict the routes use; ``get`` is dict's own."""

    def lists(self):
        return [(key, [value]) for key, value in dict.items(self)]

    def items(self, multi: bool = False):  # noqa: ARG002 - one value per name either way
        return dict.items(self)


class GeoRequest(Request):
    """The app's request class (``app.request_class``): query and form parameters in QueryArgs."""

    parameter_storage_class = QueryArgs


#: host_url() per (scheme, Host header, server name and port, script root): at most this many kept.
HOST_URLS_MAX = 256
_host_urls: dict[tuple, str] = {}


def _host_key(environ) -> tuple:
    return (environ.get("wsgi.url_scheme"), environ.get("HTTP_HOST"), environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"), environ.get("SCRIPT_NAME"))


def known_host_url(environ) -> str | None:
    """The host URL of a request whose host was seen (and checked by werkzeug) before; None for a new one."""
    return _host_urls.get(_host_key(environ))


def host_url() -> str:
    """``request.host_url`` ("http://host:port/script-root/"), remembered per environ values it is made of: werkzeug
    builds and IDNA-decodes it again on every request (about 8 us)."""
    key = _host_key(request.environ)
    url = _host_urls.get(key)
    if url is None:
        url = request.host_url   # raises for a host outside TRUSTED_HOSTS, and is then not remembered
        if len(_host_urls) >= HOST_URLS_MAX:   # the Host header is the client's: keep the table bounded
            _host_urls.clear()
        _host_urls[key] = url
    return url


def etag_for(*parts) -> str:
    """A strong ETag from the data version and everything else the body depends on."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=10).hexdigest()
    return f'"{digest}"'


def not_modified(etag: str, environ=None) -> bool:
    """True if the client's If-None-Match already names this representation (any encoding)."""
    header = (request.environ if environ is None else environ).get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header.strip() == "*":
        return True
    base = etag.strip('"')
    tags = {t.strip().removeprefix("W/").strip('"').removesuffix("-gzip") for t in header.split(",")}
    return base in tags


def check_params(allowed: set[str], what: str = "query parameter", args=None) -> None:
    """Refuse unknown query parameters (typos must not pass silently) and repeated single-valued ones."""
    args = request.args if args is None else args
    unknown = [name for name in args if name not in allowed]
    if unknown:
        name = min(unknown)[:40]
        raise InvalidQuery(f"unknown {what} {name!r}; accepted: {', '.join(sorted(allowed))}", name)
    for name, values in args.lists():
        if len(values) > 1:
            raise InvalidQuery(f"{name} is given {len(values)} times; give it once (use commas for several values)",
                               name)


def json_response(body, status: int = 200, content_type: str = JSON, etag: str | None = None,
                  cache: str = "public, max-age=60", headers: dict | None = None) -> Response:
    """A JSON response from bytes or a JSON-able object; 304 when ``etag`` matches If-None-Match."""
    if etag is not None and status == 200 and not_modified(etag):
        resp = Response(status=304)
    else:
        data = body if isinstance(body, (bytes, bytearray)) else orjson.dumps(body)
        resp = Response(data, status=status, content_type=content_type)
    out = resp.headers   # holds Content-Type (and Content-Length) only: the others are added, not searched for
    if etag is not None:
        out.add("ETag", etag)
    out.add("Cache-Control", cache)
    if headers:
        for key, value in headers.items():
            if key.lower() in _SET_BY_JSON_RESPONSE:
                out.set(key, value)
            else:
                out.add(key, value)
    return resp


#: Headers a ``headers`` argument of json_response replaces rather than adds to.
_SET_BY_JSON_RESPONSE = frozenset(("etag", "cache-control", "content-type", "content-length"))


class Answer(NamedTuple):
    """A route's successful JSON answer, before it becomes a response: a Flask ``Response`` (``answer_response``,
    then ``finish``) or, on the fast lane, a WSGI status and header list (``wsgi_answer``)."""

    body: bytes
    content_type: str = JSON
    cache: str = "public, max-age=60"
    etag: str | None = None
    headers: tuple = ()     # further (name, value) pairs


def answer_response(answer: Answer) -> Response:
    return json_response(answer.body, content_type=answer.content_type, etag=answer.etag, cache=answer.cache,
                         headers=dict(answer.headers) if answer.headers else None)


def feature_collection(features: list[bytes], members: dict | None = None) -> bytes:
    """A GeoJSON FeatureCollection from features already serialised: the bytes orjson makes of
    ``{"type": "FeatureCollection", "features": [...], **members}``, without parsing or serialising a feature again."""
    head = b'{"type":"FeatureCollection","features":[' + b",".join(features)
    return head + b"]," + orjson.dumps(members)[1:] if members else head + b"]}"


def tile_sources(*templates: str | None) -> list[str]:
    """CSP sources for tile URL templates: ``https://{s}.tile.example.org/{z}/{x}/{y}.png`` →
    ``https://*.tile.example.org`` (a placeholder in a host label widens that label and those left of it to ``*``);
    a template whose host is all placeholder gives its scheme only."""
    out = []
    for template in templates:
        if not template:
            continue
        try:
            parts = urlsplit(template.strip())
        except ValueError:
            continue
        if parts.scheme not in ("http", "https") or not parts.netloc:
            continue
        host, _, port = parts.netloc.rpartition("@")[2].partition(":")
        labels = host.split(".")
        templated = [i for i, label in enumerate(labels) if "{" in label or "}" in label]
        if templated:
            rest = labels[templated[-1] + 1:]
            host = "*." + ".".join(rest) if len(rest) >= 2 else ""
        if not host or not re.fullmatch(r"[A-Za-z0-9*.-]+", host):
            source = f"{parts.scheme}:"
        else:
            source = f"{parts.scheme}://{host}" + (f":{port}" if port.isdigit() else "")
        if source not in out:
            out.append(source)
    return out


def folium_page_csp(tiles: list[str]) -> str:
    """The policy of a Folium page served by this app (/planning): Folium writes its map as inline scripts and
    styles, so those are allowed; everything else comes from this server, except tiles from the configured hosts.
    Nobody else may frame it, no plugins, no <base> tricks."""
    img = " ".join(["'self'", "data:", "blob:", *tiles])
    return (f"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            f"img-src {img}; connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'self'")


# --- JSON bodies ---------------------------------------------------------------------------------------------------
#: A JSON string (escapes included), removed before brackets are counted.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def json_depth(data: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not count); linear time,
    no recursion, so it is safe on any body (also on one that is not JSON at all)."""
    if not data or (b"[" not in data and b"{" not in data):
        return 0
    stripped = _JSON_STRING.sub(b"", data)
    steps = _OPEN[np.frombuffer(stripped, dtype=np.uint8)]
    if not steps.any():
        return 0
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def check_json_depth(max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse (400, parameter ``body``) a request body nested deeper than ``max_depth`` before anything parses it.

    ``json_body`` calls it: routes read JSON through ``json_body``, never ``request.get_json`` directly."""
    depth = json_depth(request.get_data(cache=True))
    if depth > max_depth:
        raise InvalidQuery(f"the body is nested {depth} levels deep; at most {max_depth} levels of arrays and "
                           "objects are accepted", "body")


def json_body(force: bool = True):
    """The request's JSON body (None if it is not JSON), after the nesting check; for every route reading JSON."""
    check_json_depth()
    return request.get_json(force=force, silent=True)


class GzipCache:
    """A small LRU of compressed bodies keyed by ETag, so polled responses are compressed once."""

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_or_compress(self, key: str | None, data: bytes) -> bytes:
        if key is None:   # compressed for this response only: ISA-L's fastest level
            # a gzip stream (wbits 31, mtime 0) straight from ISA-L's deflate: its gzip module's wrapper costs as much
            # as the compression on a 3 KB body, and releases the GIL once more
            return isal_zlib.compress(data, 0 if len(data) <= GZIP_FAST_MAX_BYTES else 1, 31)
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


def accepts_gzip(environ=None) -> bool:
    """True if Accept-Encoding allows gzip (explicitly or by ``*``) with a non-zero q value."""
    header = (request.environ if environ is None else environ).get("HTTP_ACCEPT_ENCODING")
    if not header:
        return False
    for part in header.split(","):
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
    """after_request: security headers on every response, CORS for reads, gzip for large JSON bodies.

    On every request: the response's headers are looked at once (which are there, the content type) and the missing
    ones appended in one go; a header already set is replaced as ``Headers.set`` would."""
    headers = resp.headers
    present = {key.lower() for key, _ in headers}
    mimetype = resp.mimetype
    add = []

    def put(name, value):
        if name.lower() in present:
            headers.set(name, value)
        else:
            add.append((name, value))

    for name, value in _SECURITY:
        put(name, value)
    if "content-security-policy" not in present:
        if mimetype == "text/html":
            add.append(("Content-Security-Policy", PAGE_CSP))
        elif mimetype == JSON or (mimetype or "").endswith("+json"):
            add.append(("Content-Security-Policy", DATA_CSP))
    if mimetype == "text/html" and "x-frame-options" not in present:
        add.append(("X-Frame-Options", "SAMEORIGIN"))  # frame-ancestors for browsers without CSP 2
    for name, value in _CORS:
        put(name, value)
    if request.method == "OPTIONS":
        put("Access-Control-Allow-Methods", headers.get("Allow", READ_METHODS))
        put("Access-Control-Allow-Headers", "Content-Type, If-None-Match, Accept")
        put("Access-Control-Max-Age", "86400")
    compressible = (resp.status_code == 200 and not resp.direct_passthrough and "content-encoding" not in present
                    and mimetype in COMPRESSIBLE)
    if compressible and "vary" not in present:
        add.append(("Vary", "Accept-Encoding"))
    for name, value in add:
        headers.add(name, value)
    if compressible:
        if "vary" in present:
            resp.vary.add("Accept-Encoding")
        data = resp.get_data()
        if len(data) >= GZIP_MIN_BYTES and accepts_gzip():
            etag = headers.get("ETag")
            resp.set_data(cache.get_or_compress(etag, data))
            headers["Content-Encoding"] = "gzip"
            if etag:
                headers["ETag"] = etag[:-1] + '-gzip"'
    return resp


def wsgi_answer(answer: Answer, environ, cache: GzipCache) -> tuple[list[tuple[str, str]], bytes]:
    """The headers and body ``answer_response`` + ``finish`` give a 200 JSON answer of a GET, without building a
    Response (the fast lane's; tests/test_fastlane.py checks that the two agree header for header)."""
    body = answer.body
    headers = [("Content-Type", answer.content_type)]
    etag = answer.etag
    headers.append(("Cache-Control", answer.cache))
    headers.extend(answer.headers)
    headers.extend(_SECURITY)
    headers.append(("Content-Security-Policy", DATA_CSP))
    headers.extend(_CORS)
    headers.append(("Vary", "Accept-Encoding"))
    if len(body) >= GZIP_MIN_BYTES and accepts_gzip(environ):
        body = cache.get_or_compress(etag, body)
        headers.append(("Content-Encoding", "gzip"))
        if etag is not None:
            etag = etag[:-1] + '-gzip"'
    if etag is not None:
        headers.append(("ETag", etag))
    headers.append(("Content-Length", str(len(body))))
    return headers, body


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
