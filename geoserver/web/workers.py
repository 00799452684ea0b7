"""The workers' web map at ``/``: the page a delivery rider opens between orders.

The page is one small HTML template (``static/app/index.html``) with a bootstrap JSON block (layers, services
vocabulary, districts for the location fallback, base-map configuration, opening-hours state), plus the app's
own script and stylesheet (``/static/app/…``) and Leaflet from ``/static/vendor/…``. Everything is served by this
app: no CDN, nothing fetched from outside except the base-map tiles an operator configures.

Features are not embedded: the page asks ``/api/nearest`` for the list and ``/ogc/collections/{layer}/items``
with the bbox in view for the map.

Routes of this blueprint:

``GET /``                        the page (Chinese first, English switchable in the page)
``GET /static/app/<path>``       the app's own JS/CSS/SVG, gzipped once and kept in memory
``GET /app/hours``               open/closed now for every distinct opening-hours expression, with the next change
``GET /app/districts.geojson``   simplified district outlines (drawn when no base map is shown)
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
import opening_hours
import orjson
import shapely
from flask import Blueprint, Response, abort, current_app, request

from ..core import hours as hours_mod
from ..core.service import PROJECT_ROOT
from .http import GEOJSON, check_params, etag_for, json_response, not_modified, static_file

bp = Blueprint("workers", __name__)

#: The page's own files (in the repository, unlike the npm-installed vendor files).
APP_DIR = PROJECT_ROOT / "static" / "app"
APP_SUFFIXES = frozenset({".js", ".css", ".svg", ".png"})
#: Leaflet and the clustering plugin, under /static/vendor/ (see geoserver.render.assets).
VENDOR_CSS = ("leaflet/dist/leaflet.css", "leaflet.markercluster/dist/MarkerCluster.css")
VENDOR_JS = ("leaflet/dist/leaflet.js", "leaflet.markercluster/dist/leaflet.markercluster.js")
#: Short names for the layer tabs (the specs' titles are long); other layers use their full titles.
SHORT_TITLES = {"stations": ("驿站", "Rest stops"), "driver_homes": ("司机之家", "Driver homes"),
                "gig_markets": ("零工市场", "Gig markets"), "canteens": ("就餐点", "Meals"),
                "fitness_stations": ("健身驿站", "Fitness"), "rest_rooms": ("休息室", "Rest rooms")}
#: Simplification of the district outlines for the no-base-map view (degrees, about 100 m).
OUTLINE_TOLERANCE_DEG = 0.001


# --- configuration ----------------------------------------------------------------------------------------------
def base_maps() -> list[dict]:
    """Configured base maps, in the order the page offers them (the first is the default); "none" is always last.

    ``osm``: OpenStreetMap-style tiles in WGS84 (TILES_URL); ``amap``: Amap tiles in GCJ-02 (AMAP_TILES_URL).
    """
    cfg = current_app.config
    out = []
    if cfg.get("AMAP_TILES_URL"):
        out.append({"id": "amap", "crs": "gcj02", "url": cfg["AMAP_TILES_URL"],
                    "attribution": cfg.get("AMAP_TILES_ATTRIBUTION") or "© 高德地图 AutoNavi",
                    "subdomains": cfg.get("AMAP_TILES_SUBDOMAINS") or "1234", "max_native_zoom": 18})
    if cfg.get("TILES_URL"):
        out.append({"id": "osm", "crs": "wgs84", "url": cfg["TILES_URL"],
                    "attribution": cfg.get("TILES_ATTRIBUTION") or "",
                    "subdomains": cfg.get("TILES_SUBDOMAINS") or "abc", "max_native_zoom": 19})
    out.append({"id": "none", "crs": "wgs84", "url": None, "attribution": "", "subdomains": "", "max_native_zoom": 19})
    return out


def service():
    return current_app.extensions["geoservice"]


# --- opening hours ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _parsed(expression: str):
    return opening_hours.OpeningHours(expression, timezone=hours_mod.SHANGHAI_TZ, country="CN",
                                      max_interval_days=366)


def hours_state(svc, at: datetime | None = None) -> dict:
    """``{"at": iso, "states": {expression: [open_now, next_change_iso | None]}}`` over every point layer.

    Open/closed comes from each layer's own HoursTable (the same answer ``/api/nearest`` gives as ``open_now``);
    the next change lets the page say "closes at 21:00" and know when to refresh."""
    at = hours_mod.as_shanghai(at)
    states: dict[str, list] = {}
    for text, layer_id, pos in _expressions(svc):
        if text in states:
            continue
        is_open = None if pos is None else bool(svc.layers[layer_id].hours.is_open(pos, at))
        states[text] = _expression_state(text, at, is_open)
    return {"at": at.isoformat(timespec="seconds"), "states": states}


def _expressions(svc) -> list[tuple[str, str, int | None]]:
    """Each distinct opening-hours expression with a feature that has it: (text, layer, position); instant-hiring
    windows (gig markets) have no HoursTable and are evaluated directly (position None)."""

    def build():
        out, seen = [], set()
        for lid, layer in svc.layers.items():
            if layer.hours is None or not layer.index.is_point:
                continue
            for pos, props in enumerate(layer.properties):
                for key, position in (("opening_hours", pos), ("hiring_hours", None)):
                    text = props.get(key)
                    if text and (text, position is None) not in seen:
                        seen.add((text, position is None))
                        out.append((text, lid, position))
        return out

    return svc.cached(("workers-hours", tuple(layer.version for layer in svc.layers.values())), build)


def _expression_state(text: str, at: datetime, is_open: bool | None) -> list:
    try:
        parsed = _parsed(text)
        if is_open is None:
            is_open = bool(parsed.is_open(at))
        nxt = parsed.next_change(at)
    except (ValueError, RuntimeError):  # an expression the library cannot evaluate: closed, unknown change
        return [bool(is_open), None]
    return [is_open, None if nxt is None else hours_mod.as_shanghai(nxt).isoformat(timespec="minutes")]


# --- bootstrap --------------------------------------------------------------------------------------------------
def _districts(svc) -> list[dict]:
    """Districts for the fallback picker: names and a representative point (inside the polygon) in WGS84."""
    layer = svc.layers.get("districts")
    if layer is None:
        return []

    def build():
        out = []
        for props, geom in zip(layer.properties, layer.gdf.geometry.values):
            point = geom.representative_point()
            minx, miny, maxx, maxy = geom.bounds
            out.append({"id": props.get("id"), "name": props.get("name"), "name_en": props.get("name_en"),
                        "lon": round(point.x, 6), "lat": round(point.y, 6),
                        "bbox": [round(v, 4) for v in (minx, miny, maxx, maxy)]})
        return sorted(out, key=lambda d: str(d["id"]))

    return svc.cached(("workers-districts", layer.version), build)


def _layers(svc) -> list[dict]:
    out = []
    for lid, layer in svc.layers.items():
        if not layer.index.is_point:
            continue
        spec = layer.spec
        short_zh, short_en = SHORT_TITLES.get(lid, (spec.title_zh, spec.title_en))
        out.append({"id": lid, "title_zh": spec.title_zh, "title_en": spec.title_en, "count": layer.count,
                    "short_zh": short_zh, "short_en": short_en,
                    "color": spec.marker.get("color", "#d7301f"), "icon": spec.marker.get("icon", "station"),
                    "cluster": bool(spec.marker.get("cluster", layer.count > 200)),
                    "services": [s for s in svc.vocab.ids if s in spec.services],
                    "has_hours": layer.hours is not None,
                    "sample": layer.has_sample_data})
    return out


def asset_version(rel: str) -> str:
    """A short content hash of one of the app's files, for cache-busting URLs."""
    path = APP_DIR / rel
    stat = path.stat()
    return _hash_file(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _hash_file(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=6).hexdigest()


def bootstrap(svc) -> dict:
    """What the page needs before its first request: everything small and static-ish, no features."""
    bounds = svc.bounds(svc.layers["districts"]) if "districts" in svc.layers else [120.85, 30.67, 122.25, 31.88]
    return {
        "layers": _layers(svc),
        "services": {s["id"]: {"zh": s["zh"], "en": s["en"], "icon": s["icon"]} for s in svc.vocab.to_dict()},
        "districts": _districts(svc),
        "bounds": bounds,
        "basemaps": base_maps(),
        "hours": hours_state(svc),
        "vendor": {"css": ["/static/vendor/" + rel for rel in VENDOR_CSS],
                   "js": ["/static/vendor/" + rel for rel in VENDOR_JS]},
        "api": {"nearest": "/api/nearest", "items": "/ogc/collections/{layer}/items", "hours": "/app/hours",
                "districts": "/app/districts.geojson"},
    }


@lru_cache(maxsize=4)
def _template(path: str, mtime_ns: int):
    return current_app.jinja_env.from_string(Path(path).read_text(encoding="utf-8"))


# --- routes -----------------------------------------------------------------------------------------------------
@bp.get("/")
def index():
    """The workers' map page. Query parameters are read by the page itself (``lang``, ``layer``, ``lon``/``lat``);
    unknown ones are ignored, since shared links gain tracking parameters (WeChat adds ``from=…``)."""
    svc = service()
    template_path = APP_DIR / "index.html"
    template = _template(str(template_path), template_path.stat().st_mtime_ns)
    html = template.render(boot=bootstrap(svc), css_version=asset_version("app.css"),
                           js_version=asset_version("app.js"), datum_version=asset_version("datum.js"))
    body = html.encode("utf-8")
    etag = etag_for("workers-page", hashlib.blake2b(body, digest_size=12).hexdigest())
    if not_modified(etag):
        resp = Response(status=304)
    else:
        resp = Response(body, content_type="text/html; charset=utf-8")
    resp.headers["ETag"] = etag
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob: http: https:; script-src 'self'; "
        "style-src 'self' 'unsafe-inline'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "frame-ancestors 'self'")
    return resp  # X-Content-Type-Options and Referrer-Policy: on every response (http.finish)


@bp.get("/admin")
def admin_page():
    """The data-management page (import, versions, audit, the pending queue and the placing map). It holds no
    facility data: everything comes from the admin API with the operator's token, so the page itself is public. Its
    bootstrap carries only what ``/`` publishes too: the base maps, Leaflet's URLs, the district outlines' URL."""
    check_params(set())
    template_path = APP_DIR / "admin.html"
    template = _template(str(template_path), template_path.stat().st_mtime_ns)
    boot = {"basemaps": base_maps(),
            "vendor": {"css": ["/static/vendor/" + VENDOR_CSS[0]], "js": ["/static/vendor/" + VENDOR_JS[0]]},
            "api": {"districts": "/app/districts.geojson"}}
    html = template.render(boot=boot, css_version=asset_version("admin.css"), js_version=asset_version("admin.js"),
                           datum_version=asset_version("datum.js"))
    resp = Response(html.encode("utf-8"), content_type="text/html; charset=utf-8")
    resp.headers["Cache-Control"] = "no-store"
    # tiles come from the hosts the operator configures (any http/https host, as on /)
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob: http: https:; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


@bp.get("/static/app/<path:path>")
def app_asset(path: str):
    """The page's own files; ``?v=<content hash>`` URLs are cached for a year."""
    parts = path.split("/")
    if (len(path) > 200 or "\\" in path or "\x00" in path or any(p in ("", ".", "..") or p.startswith(".")
                                                                   for p in parts)
            or PurePosixPath(path).suffix.lower() not in APP_SUFFIXES):
        abort(404)
    base = APP_DIR.resolve()
    try:
        target = (base / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        abort(404)
    if not target.is_relative_to(base) or not target.is_file():
        abort(404)
    version = request.args.get("v")
    immutable = version is not None and len(parts) == 1 and version == asset_version(parts[0])
    return static_file(target, max_age=300, immutable=immutable)


@bp.get("/app/hours")
def hours():
    """Open/closed now per opening-hours expression (the page refreshes it when the next change is due)."""
    check_params(set())
    return json_response(hours_state(service()), cache="no-cache")


@bp.get("/app/districts.geojson")
def district_outlines():
    """District outlines simplified to about 100 m, WGS84, for the no-base-map view."""
    check_params(set())
    svc = service()
    layer = svc.layers.get("districts")
    if layer is None:
        abort(404)

    def build() -> bytes:
        features = []
        for props, geom in zip(layer.properties, layer.gdf.geometry.values):
            simple = shapely.simplify(geom, OUTLINE_TOLERANCE_DEG, preserve_topology=True)
            simple = shapely.transform(simple, lambda xy: np.round(xy, 4))
            features.append({"type": "Feature", "id": props.get("id"),
                             "properties": {"name": props.get("name"), "name_en": props.get("name_en")},
                             "geometry": shapely.geometry.mapping(simple)})
        return orjson.dumps({"type": "FeatureCollection", "features": features})

    body = svc.cached(("workers-outlines", layer.version), build)
    return json_response(body, content_type=GEOJSON, etag=etag_for("outlines", layer.version),
                         cache="public, max-age=86400")
