"""The fast lane: the three reads riders and map clients make most, answered without Flask's request machinery.

``GET /api/nearest``, ``GET /ogc/collections/{id}/items`` and ``GET /ogc/collections/{id}/items/{featureId}`` are
most of a public map server's traffic. Flask spends more time on each of them (a request context, URL routing,
a Response object, before/after hooks, header lists walked several times) than the answer itself costs. The fast
lane sits in front of the Flask app (``app.wsgi_app``) and, for a plain successful GET of those routes, calls the
same answer functions the views call (``api.nearest_answer``, ``ogc.items_answer``, ``ogc.item_answer``) and sends
their bytes with the headers ``finish`` would give them (``http.wsgi_answer``).

Everything else goes to Flask, which answers as it always has: other methods and paths, conditional requests
(If-None-Match), a host not seen before (werkzeug checks it once), paths or queries that are not plain ASCII, and
every request whose answer is not a 200 — on any error the fast lane steps aside and Flask, with its one error
map, writes the JSON error body. So the fast lane can change no answer, only how fast a 200 is written;
tests/test_fastlane.py checks status, headers and body against Flask's for each kind of request.

``GEOSERVER_FAST_LANE=0`` turns it off.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qsl

from .http import GzipCache, PlainArgs, known_host_url, wsgi_answer

_OGC_COLLECTIONS = "/ogc/collections/"


def enabled() -> bool:
    return os.environ.get("GEOSERVER_FAST_LANE", "1").strip().lower() not in ("0", "false", "no", "off")


class FastLane:
    """WSGI middleware answering the hot reads of ``service``; ``inner`` (Flask's wsgi_app) answers the rest."""

    def __init__(self, inner, service, gzip_cache: GzipCache):
        self.inner = inner
        self.service = service
        self.gzip_cache = gzip_cache
        self.answered = 0       # requests the fast lane answered (tests look; no lock: a statistic)

    def __call__(self, environ, start_response):
        # If-None-Match (a 304) and partner keys (checked, limited and counted by the app's hooks) go to Flask
        if (environ.get("REQUEST_METHOD") == "GET" and "HTTP_IF_NONE_MATCH" not in environ
                and "HTTP_X_PARTNER_KEY" not in environ):
            answer = self._answer(environ)
            if answer is not None:
                headers, body = wsgi_answer(answer, environ, self.gzip_cache)
                self.answered += 1
                start_response("200 OK", headers)
                return [body]
        return self.inner(environ, start_response)

    def _answer(self, environ):
        """The Answer of a hot route, or None: Flask answers (another route, anything unusual, any error)."""
        path = environ.get("PATH_INFO") or ""
        if path == "/api/nearest":
            route = "nearest"
        elif path.startswith(_OGC_COLLECTIONS):
            parts = path[len(_OGC_COLLECTIONS):].split("/")
            if len(parts) not in (2, 3) or parts[1] != "items" or not all(parts) or not path.isascii():
                return None
            route = "items" if len(parts) == 2 else "item"
        else:
            return None
        query = environ.get("QUERY_STRING") or ""
        if not query.isascii():
            return None
        from . import api, ogc   # the views' answer functions (imported here: the blueprints import this package)
        svc = self.service
        try:
            # what the app's before_request does: new versions of the data are picked up
            svc.follow()
            svc.refresh()
            # request.args as werkzeug parses them; a name given twice is Flask's to refuse
            pairs = parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
            args = PlainArgs(pairs)
            if len(args) != len(pairs):
                return None
            if route == "nearest":
                return api.nearest_answer(svc, args)
            root = known_host_url(environ)
            if root is None:
                return None
            root = root.rstrip("/") + ogc.bp.url_prefix
            if route == "items":
                return ogc.items_answer(svc, parts[0], args, root, environ)
            return ogc.item_answer(svc, parts[0], parts[2], args, root, environ)
        except Exception:   # noqa: BLE001 - Flask answers again, with its error map (or logs a real fault)
            return None
