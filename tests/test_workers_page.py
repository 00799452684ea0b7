"""The workers' web map at / through the Flask test client: the page, its bootstrap, its assets (all local, gzipped,
cacheable), the opening-hours state and the district outlines. Browser behaviour is in test_workers_browser.py."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime
from html.parser import HTMLParser

import pytest
from shapely.geometry import Point, shape

from geoserver.core.hours import SHANGHAI_TZ
from geoserver.render.assets import asset_file, external_references
from geoserver.web import create_app
from geoserver.web import workers
from geoserver.web.workers import APP_DIR, asset_version, hours_state
from tests.browser_support import require_vendor_assets

OSM = "http://tiles.example.invalid/osm/{z}/{x}/{y}.png"
AMAP = "http://webrd0{s}.amap.example.invalid/appmaptile?style=8&x={x}&y={y}&z={z}"
TILES = {"TILES_URL": OSM, "TILES_ATTRIBUTION": '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
         "AMAP_TILES_URL": AMAP, "AMAP_TILES_ATTRIBUTION": "© 高德地图"}
#: The only absolute URLs the page's own script may contain: navigation links the user opens, Leaflet's credit
#: link and the SVG namespace name. None of them is fetched by the page.
SCRIPT_URL_PREFIXES = ("https://uri.amap.com/navigation?", "https://api.map.baidu.com/marker?",
                       "https://leafletjs.com", "http://www.w3.org/2000/svg")


class _Refs(HTMLParser):
    """Scripts, stylesheets, icons and images a page references."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_script = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.urls.append(a["src"])
            self._in_script = a.get("type", "text/javascript")
        elif tag == "link" and a.get("href"):
            self.urls.append(a["href"])
        elif tag in ("img", "source", "iframe", "embed") and a.get("src"):
            self.urls.append(a["src"])

    def handle_data(self, data):
        if self._in_script and self._in_script != "application/json" and data.strip():
            self.inline_scripts.append(data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


@pytest.fixture(scope="module")
def tiled_client(service):
    return create_app(TILES, service=service).test_client()


@pytest.fixture(scope="module")
def bare_client(service):
    return create_app({"TILES_URL": None, "AMAP_TILES_URL": None}, service=service).test_client()


def boot_of(html: str) -> dict:
    m = re.search(r'<script id="boot" type="application/json">(.*?)</script>', html, re.S)
    assert m, "bootstrap JSON missing"
    return json.loads(m.group(1))


def test_page_is_served_in_chinese_with_bootstrap(tiled_client, service):
    r = tiled_client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["ETag"]
    html = r.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    for word in ("工会驿站地图", "定位我", "地图选点", "选区", "驿站", "司机之家", "零工市场", "就餐点", "健身驿站", "休息室"):
        assert word in html, word
    boot = boot_of(html)
    assert [la["id"] for la in boot["layers"]] == ["stations", "driver_homes", "gig_markets", "canteens",
                                                    "fitness_stations", "rest_rooms"]
    assert {la["id"]: la["count"] for la in boot["layers"]}["stations"] == 3400
    stations = boot["layers"][0]
    assert stations["cluster"] and "charging" in stations["services"] and stations["sample"]
    assert boot["services"]["charging"] == {"zh": "充电", "en": "Phone and e-bike charging", "icon": "charging"}
    # no features in the page: they come from the API for the area in view
    assert "ST00001" not in html and len(r.data) < 40_000
    # districts for the fallback: 16, each with a point inside its polygon
    assert len(boot["districts"]) == 16
    polygons = {p["id"]: g for p, g in zip(service.layers["districts"].properties,
                                           service.layers["districts"].gdf.geometry.values)}
    for d in boot["districts"]:
        assert d["name"].endswith("区") and d["name_en"]
        assert polygons[d["id"]].contains(Point(d["lon"], d["lat"])), d["name"]
    assert re.search(r'<option value="310101">黄浦区</option>', html)


def test_tile_urls_come_from_configuration(tiled_client, bare_client):
    boot = boot_of(tiled_client.get("/").get_data(as_text=True))
    bases = {b["id"]: b for b in boot["basemaps"]}
    assert list(bases) == ["amap", "osm", "none"]  # Amap first: the default for riders in China
    assert bases["amap"]["url"] == AMAP and bases["amap"]["crs"] == "gcj02" and bases["amap"]["subdomains"] == "1234"
    assert bases["osm"]["url"] == OSM and bases["osm"]["crs"] == "wgs84"
    assert "OpenStreetMap" in bases["osm"]["attribution"]
    assert bases["none"]["url"] is None

    html = bare_client.get("/").get_data(as_text=True)   # nothing configured: OpenStreetMap, the keyless default
    default = boot_of(html)["basemaps"]
    assert [(b["id"], b["url"], b["crs"]) for b in default] == [
        ("osm", "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "wgs84"), ("none", None, "wgs84")]
    assert default[0]["attribution"] == "© OpenStreetMap contributors (openstreetmap.org/copyright)"
    assert "invalid" not in html


def test_base_map_providers_from_configuration(service):
    def offered(**cfg):
        return [(b["id"], b["url"], b["labels"]) for b in
                boot_of(create_app(cfg, service=service).test_client().get("/").get_data(as_text=True))["basemaps"]]

    tianditu = offered(TIANDITU_KEY="k123")       # 天地图 first once a key is configured: the official map, WGS84
    assert [b[0] for b in tianditu] == ["tianditu", "osm", "none"]
    assert tianditu[0][1].startswith("https://t{s}.tianditu.gov.cn/vec_w/wmts?") and tianditu[0][1].endswith("&tk=k123")
    assert "/cva_w/wmts?" in tianditu[0][2] and tianditu[0][2].endswith("&tk=k123")   # the Chinese labels on top
    assert offered(BASEMAPS="none") == [("none", None, None)]                    # an intranet: no tiles at all
    assert [b[0] for b in offered(BASEMAPS="amap,osm")] == ["amap", "osm", "none"]
    assert offered(BASEMAPS="amap")[0][1].startswith("https://webrd0{s}.is.autonavi.com/appmaptile?")
    assert [b[0] for b in offered(BASEMAPS="tianditu,osm")] == ["osm", "none"]  # no key: Tianditu cannot be shown


def test_tile_configuration_from_environment(monkeypatch, service):
    monkeypatch.setenv("GEOSERVER_AMAP_TILES_URL", AMAP)
    monkeypatch.setenv("GEOSERVER_AMAP_TILES_ATTRIBUTION", "© AutoNavi")
    monkeypatch.delenv("GEOSERVER_TILES_URL", raising=False)
    app = create_app(service=service)
    boot = boot_of(app.test_client().get("/").get_data(as_text=True))
    assert [(b["id"], b["url"], b["attribution"]) for b in boot["basemaps"]] == [
        ("amap", AMAP, "© AutoNavi"), ("osm", "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                                       "© OpenStreetMap contributors (openstreetmap.org/copyright)"), ("none", None, "")]


def test_no_external_script_or_style_and_every_asset_is_local(tiled_client):
    require_vendor_assets()
    html = tiled_client.get("/").get_data(as_text=True)
    refs = _Refs()
    refs.feed(html)
    assert refs.inline_scripts == []  # the CSP allows scripts from the app only
    boot = boot_of(html)
    urls = refs.urls + boot["vendor"]["css"] + boot["vendor"]["js"]
    assert any(u.startswith("/static/app/app.js?v=") for u in urls)
    assert "/static/vendor/leaflet/dist/leaflet.js" in urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        r = tiled_client.get(url, headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200, url
    for rel in boot["vendor"]["css"] + boot["vendor"]["js"]:
        assert asset_file(rel.removeprefix("/static/vendor/")) is not None
    # no absolute URL anywhere in the page except the configured tile templates and attributions
    allowed = {OSM, AMAP, "https://www.openstreetmap.org/copyright"}
    assert external_references(html.replace("\\u0026", "&"), allowed) == []  # tojson escapes & in the bootstrap
    csp = tiled_client.get("/").headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "connect-src 'self'" in csp

    script = (APP_DIR / "app.js").read_text(encoding="utf-8")
    for url in re.findall(r"""https?://[^\s'"]+""", script):
        assert url.startswith(SCRIPT_URL_PREFIXES), url
    assert "import(" not in script and "eval(" not in script
    css = (APP_DIR / "app.css").read_text(encoding="utf-8")
    assert not re.search(r"url\(|@import|https?:", css)


def test_assets_are_gzipped_and_cacheable(client):
    require_vendor_assets()
    html = client.get("/").get_data(as_text=True)
    js_url = re.search(r'src="(/static/app/app\.js\?v=\w+)"', html).group(1)
    r = client.get(js_url, headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip" and r.mimetype == "text/javascript"
    assert "immutable" in r.headers["Cache-Control"] and "Accept-Encoding" in r.headers["Vary"]
    assert gzip.decompress(r.data) == (APP_DIR / "app.js").read_bytes()
    again = client.get(js_url, headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    # without ?v= (or a stale one) the file is revalidated soon instead of cached for a year
    assert "immutable" not in client.get("/static/app/app.js?v=stale").headers["Cache-Control"]
    plain = client.get("/static/app/app.css")
    assert "Content-Encoding" not in plain.headers and plain.data == (APP_DIR / "app.css").read_bytes()

    leaflet = client.get("/static/vendor/leaflet/dist/leaflet.js", headers={"Accept-Encoding": "gzip"})
    assert leaflet.headers["Content-Encoding"] == "gzip" and len(leaflet.data) < 50_000
    assert gzip.decompress(leaflet.data) == asset_file("leaflet/dist/leaflet.js").read_bytes()
    png = client.get("/static/vendor/leaflet/dist/images/marker-icon.png", headers={"Accept-Encoding": "gzip"})
    assert png.status_code == 200 and "Content-Encoding" not in png.headers and png.mimetype == "image/png"

    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip"
    assert client.get("/", headers={"If-None-Match": client.get("/").headers["ETag"]}).status_code == 304


def test_first_load_weight_is_within_budget(client):
    """Page + script + styles + Leaflet, gzipped, well under the 400 KB budget (the browser benchmark measures the
    real first load with API answers and headers: benchmarks/bench_webmap.py)."""
    require_vendor_assets()
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    html = client.get("/").get_data(as_text=True)
    refs = _Refs()
    refs.feed(html)
    boot = boot_of(html)
    total = len(page.data)
    for url in refs.urls + boot["vendor"]["css"] + boot["vendor"]["js"]:
        total += len(client.get(url, headers={"Accept-Encoding": "gzip"}).data)
    assert total < 120_000, total


@pytest.mark.parametrize("path", ["/static/app/index.html", "/static/app/../../pyproject.toml",
                                  "/static/app/%2e%2e/%2e%2e/pyproject.toml", "/static/app/.hidden.js",
                                  "/static/app/nope.js", "/static/app/app.js/x", "/static/app/"])
def test_app_static_refuses_anything_else(client, path):
    assert client.get(path).status_code == 404


def test_page_ignores_tracking_parameters(client):
    assert client.get("/?from=singlemessage&isappinstalled=0").status_code == 200
    assert client.get("/nope").status_code == 404  # other paths are still JSON 404s
    assert client.get("/nope").json["code"] == "NotFound"


def test_hours_state_agrees_with_nearest(client, service):
    body = client.get("/app/hours").json
    assert body["at"].endswith("+08:00") and len(body["states"]) >= 10
    for layer in ("stations", "canteens", "gig_markets"):
        r = client.get(f"/api/nearest?lon=121.4737&lat=31.2304&layer={layer}&k=30&at={body['at'][:19]}")
        for f in r.json["features"]:
            open_now, until = body["states"][f["properties"]["opening_hours"]]
            assert open_now == f["properties"]["open_now"], f["id"]
            if until:
                assert until > body["at"][:16]
    assert body["states"]["24/7"] == [True, None]
    # at a fixed time: a Wednesday at 10:00 the office-hours stations are open until 17:00
    state = hours_state(service, datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI_TZ))["states"]
    assert state["Mo-Fr 09:00-17:00; PH off"] == [True, "2026-11-25T17:00+08:00"]
    assert state["Mo-Su 06:00-22:00"][0] is True
    late = hours_state(service, datetime(2026, 11, 25, 23, 30, tzinfo=SHANGHAI_TZ))["states"]
    assert late["Mo-Fr 09:00-17:00; PH off"] == [False, "2026-11-26T09:00+08:00"]
    # the gig markets' instant-hiring window is evaluated too
    assert "Mo-Fr 09:00-11:00; PH off" in state


def test_district_outlines_are_small_and_valid(client):
    r = client.get("/app/districts.geojson", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    assert r.headers["Content-Encoding"] == "gzip" and len(r.data) < 40_000
    fc = json.loads(gzip.decompress(r.data))
    assert len(fc["features"]) == 16
    for f in fc["features"]:
        geom = shape(f["geometry"])
        assert geom.is_valid and not geom.is_empty and f["properties"]["name"]
        assert 120.8 < geom.centroid.x < 122.3 and 30.6 < geom.centroid.y < 31.9


def test_installable_and_the_service_worker_keeps_the_whole_shell(tiled_client, monkeypatch):
    """The page links its manifest; /sw.js is the worker with its version and shell filled in: the page, the app's
    versioned files, Leaflet, the geodesic library (for the offline list) and the manifest, every one of them served.
    Another release of a file gives another version, so browsers install a new worker that drops the old caches."""
    require_vendor_assets()
    html = tiled_client.get("/").get_data(as_text=True)
    assert '<link rel="manifest" href="/app/manifest.webmanifest">' in html
    assert '<meta name="theme-color" content="#a4161a">' in html
    boot = boot_of(html)
    assert boot["api"]["sw"] == "/sw.js" and boot["api"]["points"] == "/app/points.json"
    geodesic = boot["vendor"]["geodesic"]
    assert geodesic == "/static/vendor/geographiclib-geodesic/geographiclib-geodesic.min.js"
    r = tiled_client.get(geodesic, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip" and len(r.data) < 12_000

    r = tiled_client.get("/sw.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert r.headers["Service-Worker-Allowed"] == "/" and r.headers["Cache-Control"] == "no-cache"
    body = r.get_data(as_text=True)
    assert "__SW_VERSION__" not in body and "__SHELL_URLS__" not in body
    version = re.search(r"var VERSION = '(\w+)';", body).group(1)
    shell = json.loads(re.search(r"var SHELL = (\[.*?\]);", body).group(1))
    assert shell[0] == "/" and "/app/manifest.webmanifest" in shell
    page_assets = re.findall(r'(?:src|href)="(/static/app/[^"]+\?v=\w+)"', html)
    assert page_assets and set(page_assets) <= set(shell)  # what the page loads is kept, at its version
    assert {geodesic, *boot["vendor"]["js"], *boot["vendor"]["css"]} <= set(shell)
    for url in shell:
        assert tiled_client.get(url).status_code == 200, url

    real = asset_version
    monkeypatch.setattr(workers, "asset_version", lambda rel: "0" * 12 if rel == "app.js" else real(rel))
    again = tiled_client.get("/sw.js").get_data(as_text=True)
    assert re.search(r"var VERSION = '(\w+)';", again).group(1) != version
