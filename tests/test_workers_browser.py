"""The workers' web map at / in real headless Chromium (Debian's, via Playwright) against the production server
(``geoserver serve``) with both base maps configured. Tile requests are answered in the browser with a 1×1 PNG,
so nothing leaves the machine; every other request must stay on loopback. Phone-sized screenshots go to
test-artifacts/workers_*.png for people to look at. The offline app (service worker, the list computed in the
browser), the list-first layout, per-tab filters, pick mode and axe-core are in test_webapp_offline.py."""

from __future__ import annotations

import base64
import json
import math
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from geoserver.core.crs import gcj02_to_wgs84, wgs84_to_gcj02
from tests.browser_support import (DESKTOP, PHONE, api_json, browser_page, launch_browser, require_vendor_assets,
                                   screenshot)
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.external

OSM_HOST = "tiles.osm.invalid"
AMAP_HOST = "amap.invalid"
TILE_ENV = {
    "GEOSERVER_TILES_URL": f"http://{OSM_HOST}/{{z}}/{{x}}/{{y}}.png",
    "GEOSERVER_TILES_ATTRIBUTION": "© OpenStreetMap contributors",
    "GEOSERVER_AMAP_TILES_URL": f"http://webrd0{{s}}.{AMAP_HOST}/appmaptile?style=8&x={{x}}&y={{y}}&z={{z}}",
    "GEOSERVER_AMAP_TILES_ATTRIBUTION": "© 高德地图",
}
#: 1×1 light-grey PNG served for every tile.
TILE_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGN48uw+"
                            "AAVbAqreYAy2AAAAAElFTkSuQmCC")
PEOPLES_SQUARE = (121.4737, 31.2304)  # lon, lat (WGS84)
GEO = {"geolocation": {"longitude": PEOPLES_SQUARE[0], "latitude": PEOPLES_SQUARE[1], "accuracy": 25},
       "permissions": ["geolocation"]}


@pytest.fixture(scope="module")
def server():
    require_vendor_assets()
    url, proc = start_server(TILE_ENV, workers=1)
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


api = api_json


class Tiles:
    """Answers tile requests in the browser (registered after the recorder, so it takes precedence)."""

    def __init__(self, page):
        self.requests: list[str] = []
        page.route(lambda url: urlsplit(url).hostname is not None and urlsplit(url).hostname.endswith(".invalid"),
                   self._fulfil)

    def _fulfil(self, route):
        self.requests.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=TILE_PNG)

    def hosts(self) -> set[str]:
        return {urlsplit(u).hostname.split(".", 1)[1] if urlsplit(u).hostname.startswith("webrd")
                else urlsplit(u).hostname for u in self.requests}


def open_page(page, server, path="/"):
    tiles = Tiles(page)
    page.goto(server + path)
    return tiles


def wait_list(page, query_part: str | None = None, timeout=15_000):
    """Wait until the list shows an answer (for a request containing ``query_part``)."""
    page.wait_for_function(
        """(part) => { const r = document.getElementById('results'), l = document.getElementById('list');
                     return ['ready', 'empty'].includes(r.dataset.state)
                       && (!part || (l.dataset.query || '').includes(part)); }""",
        arg=query_part, timeout=timeout)


# Note: wait_for_function gets arrow functions, not expressions: Playwright evaluates polled expression strings
# with eval, which the page's Content-Security-Policy (script-src 'self') forbids.
# page.evaluate calls that move the map return nothing: serialising a Leaflet map for Python takes seconds.
def wait_map(page):
    page.wait_for_selector("#map[data-ready=true]", state="attached", timeout=15_000)


def list_ids(page) -> list[str]:
    return page.locator("#list > li").evaluate_all("els => els.map(e => e.dataset.featureId)")


def nearest_ids(server, lon, lat, **params) -> list[str]:
    body = api(server, "/api/nearest", lon=f"{lon:.6f}", lat=f"{lat:.6f}", k=10, **params)
    return [f["id"] for f in body["features"]]


def problems(log) -> list[str]:
    """The log's problems, except tile loads that Leaflet cancels itself (zooming, panning, page reload)."""
    return [p for p in log.problems if not (p.startswith("failed request ") and ".invalid/" in p)]


def settle(page, ms=600):
    page.wait_for_timeout(ms)  # let markers and cluster animations finish before a screenshot


# --- tests ------------------------------------------------------------------------------------------------------
def test_page_loads_clean_and_local_with_nearest_list(browser, server):
    """No console errors, nothing leaving loopback; the list is /api/nearest's answer for the simulated position,
    with distance, direction, open state and e-bike / walking times using the detour factor."""
    with browser_page(browser, PHONE, **GEO) as (page, log):
        tiles = open_page(page, server)
        wait_list(page)
        wait_map(page)
        page.wait_for_function("() => document.querySelectorAll('.leaflet-marker-icon.mk-rank').length === 10")
        settle(page)
        screenshot(page, "workers_phone_located.png")

        at = page.locator("#list").get_attribute("data-at")[:19]  # the moment the page's answer was for
        body = api(server, "/api/nearest", lon=f"{PEOPLES_SQUARE[0]:.6f}", lat=f"{PEOPLES_SQUARE[1]:.6f}", k=10, at=at)
        expected = [f["id"] for f in body["features"]]
        assert list_ids(page) == expected
        first = page.locator("#list > li").first
        text = first.inner_text()
        f = body["features"][0]["properties"]
        assert f["name"] in text
        d = f["distance_m"]
        shown = f"{max(10, round(d / 10) * 10)} 米" if d < 1000 else f"{d / 1000:.1f} 公里"
        assert shown in text
        travel = d * (1.32 + 0.28 * math.exp(-d / 1000))
        assert f"电动车约 {max(1, math.ceil(travel / 250))} 分钟" in text
        assert f"步行约 {max(1, math.ceil(travel / 75))} 分钟" in text
        assert ("营业中" if f["open_now"] else "已关闭") in text
        # points that are closed now are shown as closed, in the list and on the map
        for feat, li in zip(body["features"], page.locator("#list > li").all()):
            assert ("closed" in li.get_attribute("class")) == (not feat["properties"]["open_now"])
            marker = page.locator(f".leaflet-marker-icon.mk-rank[data-feature-id='{feat['id']}']")
            assert ("mk-closed" in marker.get_attribute("class")) == (not feat["properties"]["open_now"])

        assert problems(log) == []
        assert all(u.startswith(server) for u in log.requests)
        assert tiles.requests and tiles.hosts() == {AMAP_HOST}  # Amap is the default base map
        assert not any("cdn" in u or "unpkg" in u for u in log.requests)


def test_service_and_open_now_filters_change_the_list_and_are_remembered(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        open_page(page, server)
        wait_list(page)
        before = list_ids(page)
        page.locator("#filters [data-service=microwave]").click()
        wait_list(page, "services=microwave")
        filtered = list_ids(page)
        assert filtered == nearest_ids(server, *PEOPLES_SQUARE, services="microwave")
        assert filtered != before
        assert page.locator("#filters [data-service=microwave]").get_attribute("aria-pressed") == "true"
        # every listed station offers it, and its icon is highlighted
        assert page.locator("#list > li").count() == page.locator("#list > li .svcs .hit").count() == 10
        assert set(page.locator("#list > li .svcs .hit").all_inner_texts()) == {"热饭"}  # an icon with its name

        page.locator("#filters [data-filter=open_now]").click()
        wait_list(page, "open_now=true")
        at = page.locator("#list").get_attribute("data-at")[:19]
        assert list_ids(page) == nearest_ids(server, *PEOPLES_SQUARE, services="microwave", open_now="true", at=at)
        assert page.locator("#list > li.closed").count() == 0
        settle(page)
        screenshot(page, "workers_phone_filtered.png")

        page.reload()  # the choices survive a reload (localStorage)
        wait_list(page, "services=microwave&open_now=true")
        assert page.locator("#filters [data-service=microwave]").get_attribute("aria-pressed") == "true"
        # the filters in force are named in the list heading, with a one-tap clear
        assert "热饭" in page.locator("#active").inner_text() and "营业中" in page.locator("#active").inner_text()
        page.locator("#active [data-filter=clear]").click()
        wait_list(page)
        page.wait_for_function("() => !document.getElementById('list').dataset.query.includes('services')")
        assert list_ids(page) == before
        assert problems(log) == []


def test_layer_choice_lists_that_layer(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        open_page(page, server)
        wait_list(page)
        page.locator("#layers [data-layer=driver_homes]").click()
        wait_list(page, "layer=driver_homes")
        assert list_ids(page) == nearest_ids(server, *PEOPLES_SQUARE, layer="driver_homes")
        assert page.locator("#layers [data-layer=driver_homes]").get_attribute("aria-checked") == "true"
        assert "司机之家" in page.locator("#results-title").inner_text()
        # the filters offer that layer's services (truck parking), not the stations' (wish corner)
        assert page.locator("#filters [data-service=truck_parking]").count() == 1
        assert page.locator("#filters [data-service=wish_corner]").count() == 0
        assert problems(log) == []


def test_card_and_navigation_links(browser, server):
    """The card shows the point's details; the Amap and Baidu buttons are plain links carrying the WGS84 position
    with the coordinate-system parameter, so the route ends at the right spot."""
    with browser_page(browser, PHONE, **GEO) as (page, log):
        open_page(page, server)
        wait_list(page)
        wait_map(page)
        body = api(server, "/api/nearest", lon=f"{PEOPLES_SQUARE[0]:.6f}", lat=f"{PEOPLES_SQUARE[1]:.6f}", k=10)
        feat = body["features"][1]
        lon, lat = feat["geometry"]["coordinates"]
        page.locator(f"#list > li[data-feature-id='{feat['id']}'] > button").click()
        card = page.locator("#card")
        card.wait_for(state="visible")
        assert card.get_attribute("data-feature-id") == feat["id"]
        text = card.inner_text()
        props = feat["properties"]
        for value in (props["name"], props["address"], props["host_org"], "开放时间", "所属单位", "服务设施"):
            assert value in text, value
        for service in props["services"]:
            assert card.locator(f".svc-grid li[data-service={service}] svg").count() == 1
        assert "补水" in text or "water" not in props["services"]

        amap = card.locator("a.nav-amap")
        baidu = card.locator("a.nav-baidu")
        assert amap.evaluate("a => a.tagName") == "A" and amap.get_attribute("data-feature-id") == feat["id"]
        a = urlsplit(amap.get_attribute("href"))
        q = parse_qs(a.query)
        assert (a.scheme, a.netloc, a.path) == ("https", "uri.amap.com", "/navigation")
        assert q["to"] == [f"{lon:.6f},{lat:.6f},{props['name']}"]
        assert q["coordinate"] == ["wgs84"] and q["mode"] == ["ride"] and q["callnative"] == ["1"]
        b = urlsplit(baidu.get_attribute("href"))
        q = parse_qs(b.query)
        assert (b.scheme, b.netloc, b.path) == ("https", "api.map.baidu.com", "/marker")
        assert q["location"] == [f"{lat:.6f},{lon:.6f}"]  # Baidu: latitude first
        assert q["coord_type"] == ["wgs84"] and q["title"] == [props["name"]] and q["output"] == ["html"]
        assert q["src"][0].startswith("webapp.")
        settle(page)
        screenshot(page, "workers_phone_card.png")

        # the same card from the marker on the map
        page.keyboard.press("Escape")
        card.wait_for(state="hidden")
        visible = page.evaluate("""(skip) => { const m = document.getElementById('map').getBoundingClientRect();
            return [...document.querySelectorAll('.leaflet-marker-icon.mk-rank')].filter(e => {
              const r = e.getBoundingClientRect();
              return e.dataset.featureId !== skip && r.left > m.left + 5 && r.right < m.right - 60
                && r.top > m.top + 5 && r.bottom < m.bottom - 20; }).map(e => e.dataset.featureId); }""", feat["id"])
        assert visible
        other = next(f for f in body["features"] if f["id"] == visible[0])
        page.locator(f".leaflet-marker-icon[data-feature-id='{other['id']}']").click()
        card.wait_for(state="visible")
        assert card.get_attribute("data-feature-id") == other["id"]
        lon, lat = other["geometry"]["coordinates"]
        assert f"to={lon:.6f},{lat:.6f}," in card.locator("a.nav-amap").get_attribute("href")
        assert problems(log) == []


def test_driver_homes_navigate_by_car(browser, server):
    """Driver homes are for truck and ride-hailing drivers: times by car (25 km/h with the detour factor, as the
    planning's catchments), never on foot or by e-bike, and navigation by car."""
    with browser_page(browser, PHONE, **GEO) as (page, log):
        open_page(page, server, "/?layer=driver_homes")
        wait_list(page, "layer=driver_homes")
        body = api(server, "/api/nearest", lon=f"{PEOPLES_SQUARE[0]:.6f}", lat=f"{PEOPLES_SQUARE[1]:.6f}", k=10,
                   layer="driver_homes")
        for feat, li in zip(body["features"], page.locator("#list > li").all()):
            d = feat["properties"]["distance_m"]
            minutes = max(1, math.ceil(d * (1.32 + 0.28 * math.exp(-d / 1000)) / (25000 / 60)))
            text = li.inner_text()
            expected = f"{minutes} 分钟" if minutes < 60 else f"{minutes // 60} 小时"
            assert "驾车约 " + expected in text, (text, minutes)
            assert "电动车" not in text and "步行" not in text
        page.locator("#list > li > button").first.click()
        assert "驾车约" in page.locator("#card .card-dist").inner_text()
        href = page.locator("#card a.nav-amap").get_attribute("href")
        assert parse_qs(urlsplit(href).query)["mode"] == ["car"]
        assert problems(log) == []


def test_javascript_gcj02_matches_python(browser, server):
    """The page's WGS84 -> GCJ-02 (and inverse) equals geoserver.core.crs within 1e-9 degrees."""
    rng = np.random.default_rng(7)
    points = [(121.4737, 31.2304), (120.86, 30.68), (122.2, 31.87), (116.404, 39.915), (113.26, 23.13),
              (87.6, 43.8), (126.6, 45.75), (-0.1276, 51.5072), (139.69, 35.69), (100.5, 13.75)]
    points += [(float(x), float(y)) for x, y in zip(rng.uniform(120.85, 122.25, 20), rng.uniform(30.67, 31.88, 20))]
    with browser_page(browser, PHONE) as (page, log):
        open_page(page, server)
        page.wait_for_function("() => window.unionMap !== undefined")
        forward = page.evaluate("pts => pts.map(p => window.unionMap.wgs84ToGcj02(p[0], p[1]))", points)
        lon, lat = wgs84_to_gcj02([p[0] for p in points], [p[1] for p in points])
        assert np.max(np.abs(np.array(forward) - np.column_stack([lon, lat]))) < 1e-9
        back = page.evaluate("pts => pts.map(p => window.unionMap.gcj02ToWgs84(p[0], p[1]))", forward)
        lon, lat = gcj02_to_wgs84([p[0] for p in forward], [p[1] for p in forward])
        assert np.max(np.abs(np.array(back) - np.column_stack([lon, lat]))) < 1e-9
        assert np.max(np.abs(np.array(back) - np.array(points))) < 1e-9
        # the detour factor: 1.6 for very short trips, 1.32 for long ones
        assert page.evaluate("[unionMap.detour(0), unionMap.detour(1e6)]") == pytest.approx([1.6, 1.32])
        assert problems(log) == []


def test_switching_to_amap_moves_markers_by_the_gcj02_shift(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        tiles = open_page(page, server)
        wait_list(page)
        wait_map(page)
        page.select_option("#base", "osm")
        page.wait_for_function("() => document.querySelector('.leaflet-tile-pane img[src*=\"osm.invalid\"]') !== null")
        ids = list_ids(page)[:5]
        body = api(server, "/api/nearest", lon=f"{PEOPLES_SQUARE[0]:.6f}", lat=f"{PEOPLES_SQUARE[1]:.6f}", k=10)
        wgs = {f["id"]: f["geometry"]["coordinates"] for f in body["features"]}
        for fid in ids:
            assert page.evaluate("id => unionMap.map().markerLatLng(id)", fid) == pytest.approx(wgs[fid], abs=1e-12)
        assert page.evaluate("unionMap.map().originLatLng()") == pytest.approx(PEOPLES_SQUARE, abs=1e-12)
        centre_before = page.evaluate("(() => { const c = unionMap.map().map.getCenter(); return [c.lng, c.lat]; })()")
        screenshot(page, "workers_phone_osm.png")

        page.select_option("#base", "amap")
        page.wait_for_function("() => document.querySelector('.leaflet-tile-pane img[src*=\"amap.invalid\"]') !== null")
        for fid in ids:
            lon, lat = wgs84_to_gcj02(*wgs[fid])
            shifted = page.evaluate("id => unionMap.map().markerLatLng(id)", fid)
            assert shifted == pytest.approx([float(lon), float(lat)], abs=1e-9)
            assert abs(shifted[0] - wgs[fid][0]) > 0.003  # about 500 m east in Shanghai
        lon, lat = wgs84_to_gcj02(*PEOPLES_SQUARE)
        assert page.evaluate("unionMap.map().originLatLng()") == pytest.approx([float(lon), float(lat)], abs=1e-9)
        # the view stays on the same ground point: the centre moved by the same shift (to the pixel)
        centre_after = page.evaluate("(() => { const c = unionMap.map().map.getCenter(); return [c.lng, c.lat]; })()")
        lon, lat = wgs84_to_gcj02(*centre_before)
        assert centre_after == pytest.approx([float(lon), float(lat)], abs=5e-5)
        assert page.locator(".leaflet-tile-pane img[src*='osm.invalid']").count() == 0
        assert {OSM_HOST, AMAP_HOST} == tiles.hosts()
        settle(page)
        screenshot(page, "workers_phone_amap.png")
        page.reload()
        wait_map(page)
        assert page.locator("#base").input_value() == "amap"
        assert problems(log) == []


def test_geolocation_denied_falls_back_to_map_tap_and_district(browser, server):
    with browser_page(browser, PHONE) as (page, log):  # no geolocation permission: the browser denies it
        open_page(page, server)
        page.wait_for_selector("#status .warn", timeout=15_000)
        assert "定位权限被拒绝" in page.locator("#status").inner_text()
        assert page.locator("#maphint").is_visible()  # pick mode is on: "tap the map"
        assert page.locator("#pick").get_attribute("aria-pressed") == "true"
        wait_map(page)
        page.wait_for_function("() => document.querySelectorAll('.cl').length > 3")  # clustered stations in view
        settle(page)
        screenshot(page, "workers_phone_denied.png")

        # tap the map: the tapped point becomes the origin (the first tap, even on a cluster)
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
        wait_list(page)
        origin = page.evaluate("[unionMap.state.origin.lon, unionMap.state.origin.lat, unionMap.state.origin.source]")
        assert origin[2] == "pick" and 120.5 < origin[0] < 122.5 and 30.5 < origin[1] < 32
        assert list_ids(page) == nearest_ids(server, origin[0], origin[1])
        assert page.locator(".me-pick").count() == 1
        assert page.locator("#pick").get_attribute("aria-pressed") == "false"

        # or choose a district: its representative point is the origin
        boot = json.loads(page.locator("#boot").text_content())
        huangpu = next(d for d in boot["districts"] if d["id"] == "310101")
        page.select_option("#district", "310101")
        wait_list(page, f"lon={huangpu['lon']:.6f}")
        assert list_ids(page) == nearest_ids(server, huangpu["lon"], huangpu["lat"])
        assert "黄浦区" in page.locator("#results-title").inner_text()
        assert page.locator("#district-text").inner_text() == "黄浦区"
        settle(page)
        screenshot(page, "workers_phone_district.png")

        # "pick on map" works after a location is set, too
        page.locator("#pick").click()
        assert page.locator("#pick").get_attribute("aria-pressed") == "true"
        page.wait_for_timeout(200)  # the map grows while picking
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.4)
        page.wait_for_function("() => unionMap.state.origin.source === 'pick'")
        wait_list(page)
        lon, lat = page.evaluate("[unionMap.state.origin.lon, unionMap.state.origin.lat]")
        assert list_ids(page) == nearest_ids(server, lon, lat)
        assert page.locator("#pick").get_attribute("aria-pressed") == "false"
        assert problems(log) == []


def test_points_come_once_for_every_layer_and_only_the_view_is_drawn(browser, server):
    """3,400 stations on one map: the page fetches every layer's points once (/app/points.json, which the service
    worker keeps for offline use), not per bbox, and draws only what is in view, grouped per screen cell: few DOM
    markers, cluster bubbles that add up to the points in view."""
    with browser_page(browser, PHONE) as (page, log):
        open_page(page, server)
        page.wait_for_selector("#status .warn", timeout=15_000)
        wait_map(page)
        page.wait_for_selector("#map[data-points=ready]", state="attached", timeout=15_000)
        page.wait_for_function("() => document.querySelectorAll('.cl').length > 3")
        settle(page)
        assert [u for u in log.requests if "/app/points.json" in u] == [server + "/app/points.json"]
        assert not [u for u in log.requests if "/items?" in u]
        assert page.evaluate("unionMap.points.data.layers.stations.feats.length") == 3400
        assert page.locator(".leaflet-marker-icon").count() < 150
        counts = page.locator(".cl").evaluate_all("els => els.map(e => +e.dataset.count)")
        in_view = page.evaluate("""() => { const b = unionMap.map().map.getBounds().pad(0.15);
            return unionMap.points.data.layers.stations.feats.filter(f => b.contains([f.lat, f.lon])).length; }""")
        singles = page.locator(".leaflet-marker-icon.mk").count()
        drawn_for = int(page.locator("#map").get_attribute("data-in-view"))  # the points the last drawing covered
        assert sum(counts) + singles == drawn_for and sum(counts) > 1000
        assert abs(drawn_for - in_view) <= in_view * 0.01
        # zoomed in, clusters break up; moving around asks the server for nothing more
        page.evaluate("() => { unionMap.map().map.setView([31.2304, 121.4737], 17); }")
        settle(page)
        assert page.locator(".cl").count() == 0 and page.locator(".leaflet-marker-icon.mk").count() > 0
        assert len([u for u in log.requests if "/app/points.json" in u]) == 1
        assert problems(log) == []


def test_english_toggle_is_remembered(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        open_page(page, server)
        wait_list(page)
        page.locator("#lang").click()
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("#locate").inner_text() == "Locate me"
        assert "Rest stops near you" in page.locator("#results-title").inner_text()
        assert "by e-bike" in page.locator("#list > li").first.inner_text()
        chip = page.locator("#filters [data-service=charging]")  # a short name on the chip, the full one as its title
        assert chip.inner_text() == "Charging" and chip.get_attribute("title") == "Phone and e-bike charging"
        assert page.locator("#lang").inner_text() == "中文" and page.locator("#lang").get_attribute("aria-label") is None
        page.reload()
        wait_list(page)
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.locator("#lang").inner_text() == "中文"
        page.locator("#list > li > button").first.click()
        assert "Amap navigation" in page.locator("#card").inner_text()
        settle(page)
        screenshot(page, "workers_phone_english.png")
        assert problems(log) == []


CONTRAST_JS = """
(selectors) => {
  function rgb(s) { const m = s.match(/rgba?\\(([^)]+)\\)/); const p = m[1].split(',').map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; }
  function lum(c) { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); }
  function background(el) { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; }
  const out = [];
  for (const sel of selectors) {
    for (const el of document.querySelectorAll(sel)) {
      const fg = rgb(getComputedStyle(el).color), bg = background(el);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      out.push([sel, (a + 0.05) / (b + 0.05)]);
    }
  }
  return out;
}"""

NAMELESS_JS = """
() => [...document.querySelectorAll('button, a[href], select, input, [role=radio], [role=button]')]
  .filter(el => el.offsetParent !== null || el.tagName === 'SELECT')
  .filter(el => {
    const name = (el.getAttribute('aria-label') || el.innerText || el.title || '').trim();
    const labelled = el.labels && [...el.labels].some(l => l.innerText.trim() || l.textContent.trim());
    return !name && !labelled;
  }).map(el => el.outerHTML.slice(0, 120))"""


def test_accessibility_basics_and_zoomed_text(browser, server):
    """Every control has a name, text has WCAG AA contrast, touch targets are at least 44 px, and with the text
    at 200 % nothing overflows sideways and the list stays usable."""
    with browser_page(browser, PHONE, **GEO) as (page, log):
        open_page(page, server)
        wait_list(page)
        wait_map(page)
        page.locator("#list > li > button").first.click()
        page.locator("#card").wait_for(state="visible")
        assert page.evaluate(NAMELESS_JS) == []
        ratios = page.evaluate(CONTRAST_JS, [".item-name", ".dist", ".times", ".badge", ".chip", "#bar button",
                                             "a.nav", ".facts dt", ".facts dd", "#status p", ".top h1"])
        assert ratios and [r for r in ratios if r[1] < 4.5] == []
        for sel in ("#bar button", "#bar .select-btn", "#filters .chip", "#layers button", "a.nav", "#card .close",
                    "#list > li > button"):
            boxes = page.locator(sel).evaluate_all(
                "els => els.filter(e => !e.hidden).map(e => e.getBoundingClientRect().toJSON())")
            for box in boxes:
                assert box["height"] >= 44 and box["width"] >= 44, (sel, box)
        assert page.locator("#layers").get_attribute("role") == "radiogroup"
        assert page.locator("#district").evaluate("s => s.labels[0].innerText.trim() || s.labels[0].textContent")

        page.keyboard.press("Escape")
        page.evaluate("document.documentElement.style.fontSize = '200%'")
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        first = page.locator("#list > li").first
        first.scroll_into_view_if_needed()
        box = first.bounding_box()
        assert box["width"] <= PHONE["width"] and box["height"] > 100
        for sel in ("#locate", "#pick", "#district-text"):
            el = page.locator(sel)
            assert el.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), sel
        screenshot(page, "workers_phone_zoomed_text.png")
        assert problems(log) == []


def test_wide_screen_layout(browser, server):
    with browser_page(browser, DESKTOP, **GEO) as (page, log):
        open_page(page, server)
        wait_list(page)
        wait_map(page)
        page.locator("#list > li > button").nth(2).click()
        page.locator("#card").wait_for(state="visible")
        settle(page)
        screenshot(page, "workers_desktop.png")
        map_box = page.locator("#map").bounding_box()
        list_box = page.locator("#list").bounding_box()
        assert map_box["x"] >= list_box["x"] + list_box["width"] - 1  # side by side
        assert map_box["height"] > 800
        assert problems(log) == []


def test_page_without_any_base_map(browser, service):
    """Tiles switched off (an intranet: GEOSERVER_BASEMAPS=none): a plain background with district outlines, and
    everything else works."""
    require_vendor_assets()
    url, proc = start_server({"GEOSERVER_BASEMAPS": "none"})
    try:
        with browser_page(browser, PHONE, **GEO) as (page, log):
            tiles = open_page(page, url)
            wait_list(page)
            wait_map(page)
            page.wait_for_function("() => document.querySelectorAll('.leaflet-overlay-pane path').length >= 16")
            assert page.locator("#base option").evaluate_all("os => os.map(o => o.value)") == ["none"]
            assert page.locator("#map.no-tiles").count() == 1
            assert list_ids(page) == nearest_ids(url, *PEOPLES_SQUARE)
            page.evaluate("() => { unionMap.map().map.setZoom(11); }")
            settle(page, 900)
            screenshot(page, "workers_phone_no_tiles.png")
            assert tiles.requests == [] and log.tiles == [] and problems(log) == []
    finally:
        stop_server(proc)


def test_opening_hours_are_humanised(browser, server, service):
    """Every opening-hours expression in the data reads as days and times in Chinese and in English."""
    expressions = sorted({p[key] for layer in service.layers.values() for p in layer.properties
                          for key in ("opening_hours", "hiring_hours") if p.get(key)})
    with browser_page(browser, PHONE) as (page, log):
        open_page(page, server)
        page.wait_for_function("() => window.unionMap !== undefined")
        zh = page.evaluate("exprs => exprs.map(e => unionMap.humanHours(e))", expressions)
        readable = dict(zip(expressions, zh))
        assert readable["24/7"] == ["24 小时开放"]
        assert readable["Mo-Fr 09:00-17:00; PH off"] == ["周一至周五 09:00–17:00", "法定节假日休息"]
        assert readable["Mo-Su 10:30-13:30,16:30-19:30"] == ["每天 10:30–13:30, 16:30–19:30"]
        assert readable["Mo-Fr 08:00-18:00; Sa,Su 09:00-17:00"] == ["周一至周五 08:00–18:00", "周六、周日 09:00–17:00"]
        for lines in zh:  # no OSM syntax left for a reader to decode
            assert not any(day in " ".join(lines) for day in ("Mo", "Fr", "Sa", "Su", "PH", "off")), lines
        page.locator("#lang").click()
        en = page.evaluate("unionMap.humanHours('Mo-Fr 08:30-17:00; Sa 09:00-12:00; PH off')")
        assert en == ["Mon–Fri 08:30–17:00", "Sat 09:00–12:00", "Closed on public holidays"]
        assert problems(log) == []
