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
#: Leaflet, under /static/vendor/ (see geoserver.render.assets); the page groups the points in view itself.
VENDOR_CSS = ("leaflet/dist/leaflet.css",)
VENDOR_JS = ("leaflet/dist/leaflet.js",)
#: GeographicLib's geodesic (the algorithm of the server's pyproj.Geod): loaded by the page when it computes the
#: nearest list itself, from the saved points, with no connection.
GEODESIC_JS = "geographiclib-geodesic/geographiclib-geodesic.min.js"
#: Short names for the layer tabs (the specs' titles are long); other layers use their full titles.
SHORT_TITLES = {"stations": ("驿站", "Rest stops"), "driver_homes": ("司机之家", "Driver homes"),
                "gig_markets": ("零工市场", "Gig markets"), "canteens": ("就餐点", "Meals"),
                "fitness_stations": ("健身驿站", "Fitness"), "rest_rooms": ("休息室", "Rest rooms")}
#: Simplification of the district outlines for the no-base-map view (degrees, about 100 m).
OUTLINE_TOLERANCE_DEG = 0.001


# --- configuration ----------------------------------------------------------------------------------------------
#: The base-map providers the page can offer. ``crs``: the datum the tiles are drawn in (Amap's GCJ-02 shifts every
#: overlay); ``labels``: a transparent annotation layer drawn on top (Tianditu's map and its Chinese labels are two
#: layers); ``{key}``: the provider's key from configuration.
PROVIDERS = {
    "tianditu": {"crs": "wgs84", "max_native_zoom": 18, "subdomains": "01234567",
                 "url": "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=vec"
                        "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}",
                 "labels": "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                           "&LAYER=cva&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                           "&TILECOL={x}&tk={key}",
                 "attribution": "© 天地图 Tianditu · 国家地理信息公共服务平台"},
    "amap": {"crs": "gcj02", "max_native_zoom": 18, "subdomains": "1234",
             "url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
             "attribution": "© 高德地图 AutoNavi"},
    "osm": {"crs": "wgs84", "max_native_zoom": 19, "subdomains": "",
            "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "attribution": "© OpenStreetMap contributors (openstreetmap.org/copyright)"},
}
NO_TILES = {"id": "none", "crs": "wgs84", "url": None, "labels": None, "attribution": "", "subdomains": "",
            "max_native_zoom": 19}


def basemap_ids(cfg) -> list[str]:
    """Which providers the page offers, first the default: ``BASEMAPS`` (comma-separated; ``none`` alone switches
    tiles off, for intranets), else Tianditu when a key is configured, Amap when its tiles are configured, and
    OpenStreetMap, the keyless default."""
    raw = cfg.get("BASEMAPS")
    if raw:
        wanted = [b.strip().lower() for b in str(raw).split(",") if b.strip()]
    else:
        wanted = (["tianditu"] if cfg.get("TIANDITU_KEY") else []) + \
                 (["amap"] if cfg.get("AMAP_TILES_URL") else []) + ["osm"]
    return [b for b in dict.fromkeys(wanted) if b in PROVIDERS or b == "none"]


def base_maps(cfg=None) -> list[dict]:
    """The base maps in the order the page offers them (the first is the default); "none" is always last, so a
    rider can switch tiles off to save data. A provider's URL and attribution can be replaced in configuration
    (``TILES_URL``: any WGS84 template, shown as the OpenStreetMap entry; ``AMAP_TILES_URL``)."""
    cfg = current_app.config if cfg is None else cfg
    out = []
    for pid in basemap_ids(cfg):
        if pid == "none":
            break
        spec = dict(PROVIDERS[pid])
        override = {"osm": "TILES", "amap": "AMAP_TILES"}.get(pid)
        if override and cfg.get(f"{override}_URL"):
            spec.update(url=cfg[f"{override}_URL"], labels=None,
                        attribution=cfg.get(f"{override}_ATTRIBUTION") or spec["attribution"],
                        subdomains=cfg.get(f"{override}_SUBDOMAINS") or ("abc" if pid == "osm" else "1234"))
        elif override and cfg.get(f"{override}_ATTRIBUTION"):
            spec["attribution"] = cfg[f"{override}_ATTRIBUTION"]
        if pid == "tianditu":
            key = cfg.get("TIANDITU_KEY")
            if not key:
                continue
            spec["url"] = spec["url"].replace("{key}", key)
            spec["labels"] = spec["labels"].replace("{key}", key)
        out.append({"id": pid, "labels": spec.get("labels"), **{k: spec[k] for k in
                                                               ("crs", "url", "attribution", "subdomains",
                                                                "max_native_zoom")}})
    return out + [dict(NO_TILES)]


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
                   "js": ["/static/vendor/" + rel for rel in VENDOR_JS],
                   "geodesic": "/static/vendor/" + GEODESIC_JS},
        "api": {"nearest": "/api/nearest", "items": "/ogc/collections/{layer}/items", "hours": "/app/hours",
                "districts": "/app/districts.geojson", "points": "/app/points.json", "sw": "/sw.js",
                "manifest": "/app/manifest.webmanifest"},
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


# --- the installable, offline-capable app ---------------------------------------------------------------------------
MANIFEST = {
    "name": "工会服务地图", "short_name": "工会驿站", "lang": "zh-CN", "dir": "ltr",
    "description": "上海工会户外职工爱心驿站、司机之家、零工市场、就餐点、职工健身驿站和工间休息室：离你最近的点位。",
    "start_url": "/", "scope": "/", "id": "/", "display": "standalone", "orientation": "portrait",
    "background_color": "#ffffff", "theme_color": "#a4161a",
    "icons": [{"src": "/static/app/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
              {"src": "/static/app/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
              {"src": "/static/app/icon-maskable-512.png", "sizes": "512x512", "type": "image/png",
               "purpose": "maskable"},
              {"src": "/static/app/icon.svg", "sizes": "any", "type": "image/svg+xml"}],
}
#: The app's own files the service worker keeps (with their content versions, so a release replaces them).
SHELL_FILES = ("app.js", "app.css", "datum.js", "icon.svg", "icon-192.png", "icon-512.png", "icon-maskable-512.png")


@bp.get("/app/manifest.webmanifest")
def manifest():
    """The web app manifest: installable as 工会服务地图, standalone, starting at the map."""
    check_params(set())
    body = orjson.dumps(MANIFEST)
    return json_response(body, content_type="application/manifest+json",
                         etag=etag_for("manifest", hashlib.blake2b(body, digest_size=8).hexdigest()),
                         cache="public, max-age=3600")


def shell_urls() -> list[str]:
    """The URLs of the app shell: the page, its own files (versioned), Leaflet, the geodesic and the manifest."""
    return ["/", *(f"/static/app/{name}?v={asset_version(name)}" for name in SHELL_FILES),
            *("/static/vendor/" + rel for rel in (*VENDOR_CSS, *VENDOR_JS, GEODESIC_JS)), "/app/manifest.webmanifest"]


@bp.get("/sw.js")
def service_worker():
    """The service worker (static/app/sw.js), at the root so it controls the whole site. Its version is the hash of
    every file it keeps, so a new release installs a new worker, which drops the old caches."""
    check_params(set())
    urls = shell_urls()
    source = (APP_DIR / "sw.js").read_text(encoding="utf-8")
    version = hashlib.blake2b(("\n".join(urls) + source).encode(), digest_size=8).hexdigest()
    body = source.replace("__SW_VERSION__", version).replace("__SHELL_URLS__", orjson.dumps(urls).decode())
    resp = Response(body, content_type="text/javascript; charset=utf-8")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Service-Worker-Allowed"] = "/"
    return resp


def offline_points(svc) -> bytes:
    """Every point layer's public data a rider needs without a connection, in columns (about 110 KB gzipped):
    ``{"services": [ids in bit order], "layers": {id: {"version", "fields", "rows": [[id, lon, lat, name, address,
    district, services bitmask, opening_hours], ...]}}}`` — the page computes the nearest list from it offline."""
    def build() -> bytes:
        layers = {}
        for lid, layer in svc.layers.items():
            if not layer.index.is_point:
                continue
            coords = layer.point_coordinates("wgs84")
            rows = [[p["id"], lon, lat, p.get("name"), p.get("address"), p.get("district"), int(mask),
                     p.get("opening_hours")]
                    for p, (lon, lat), mask in zip(layer.properties, coords, layer.service_mask)]
            layers[lid] = {"version": layer.version, "sample": layer.has_sample_data,
                           "fields": ["id", "lon", "lat", "name", "address", "district", "services",
                                      "opening_hours"], "rows": rows}
        return orjson.dumps({"generated": datetime.now(hours_mod.SHANGHAI_TZ).isoformat(timespec="seconds"),
                             "services": list(svc.vocab.ids), "layers": layers})

    return svc.cached(("offline-points", tuple(lay.version for lay in svc.layers.values())), build)


@bp.get("/app/points.json")
def points():
    """The public point data of every layer, for the page's offline nearest list (revalidated by ETag)."""
    check_params(set())
    svc = service()
    return json_response(offline_points(svc), etag=etag_for("points", *(lay.version for lay in svc.layers.values())),
                         cache="no-cache")
