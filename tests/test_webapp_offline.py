"""The workers' web map as riders found it (390×844 phone, zh-CN, People's Square): a base map by default, an
installable app that opens and answers with no signal, a list that does not wait forever, the list first on the
screen, filters per tab, car times for driver homes, a pick mode whose first tap counts, and no serious axe-core
violations in any of these states.

Real headless Chromium (Debian's, via Playwright) against the production server (``geoserver serve``) with no tile
configuration, so OpenStreetMap is the default; ``keep_offline`` answers the tiles locally and aborts anything
else that would leave the machine. Screenshots for people to look at go to test-artifacts/webapp_*.png."""

from __future__ import annotations

import json
import time
import urllib.request
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from tests.browser_support import (PHONE, api_json, axe_violations, browser_page, keep_offline, launch_browser,
                                   require_vendor_assets, screenshot)
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.external

PEOPLES_SQUARE = (121.4737, 31.2304)  # lon, lat (WGS84)
SONGJIANG = (121.2277, 31.0322)       # 松江 new town: suburban, few stations
GEO = {"geolocation": {"longitude": PEOPLES_SQUARE[0], "latitude": PEOPLES_SQUARE[1], "accuracy": 25},
       "permissions": ["geolocation"]}


@pytest.fixture(scope="module")
def server():
    require_vendor_assets()
    url, proc = start_server({}, workers=1)  # no tile settings: OpenStreetMap, the keyless default
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


api = api_json


def nearest_ids(server, lon, lat, **params) -> list[str]:
    body = api(server, "/api/nearest", lon=f"{lon:.6f}", lat=f"{lat:.6f}", k=10, **params)
    return [f["id"] for f in body["features"]]


def wait_list(page, query_part: str | None = None, source: str | None = None, timeout=15_000):
    """Until the list shows an answer (for a request containing ``query_part``; from ``source``: server, local)."""
    page.wait_for_function(
        """([part, source]) => { const r = document.getElementById('results'), l = document.getElementById('list');
             return ['ready', 'empty'].includes(r.dataset.state) && (!part || (l.dataset.query || '').includes(part))
               && (!source || l.dataset.source === source); }""", arg=[query_part, source], timeout=timeout)


def list_ids(page) -> list[str]:
    return page.locator("#list > li").evaluate_all("els => els.map(e => e.dataset.featureId)")


def serious(page) -> list[str]:
    """axe-core's serious and critical violations, readable."""
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['targets'][:3]}" for v in axe_violations(page)]


@contextmanager
def app_page(browser, **options):
    """A phone page whose service worker may run (browser_page blocks them), kept off the internet; yields
    ``(page, context, errors)`` with the page's console errors and uncaught exceptions."""
    context = browser.new_context(viewport=PHONE, **options)
    try:
        tiles = keep_offline(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.tiles = tiles
        yield page, context, errors
    finally:
        context.close()


def real_errors(errors: list[str]) -> list[str]:
    """Console errors other than the browser's own notes on requests that fail while offline."""
    return [e for e in errors if "net::ERR_INTERNET_DISCONNECTED" not in e and "Failed to load resource" not in e]


# --- 1. a base map by default; tiles that fail are said once ------------------------------------------------------
def test_tiles_are_requested_by_default(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        page.goto(server)
        wait_list(page)
        page.wait_for_function("() => document.querySelectorAll('.leaflet-tile-loaded').length > 0")
        boot = json.loads(page.locator("#boot").text_content())
        assert [b["id"] for b in boot["basemaps"]] == ["osm", "none"]
        assert page.locator("#base").input_value() == "osm"
        assert log.tiles and all(urlsplit(u).hostname == "tile.openstreetmap.org" for u in log.tiles)
        assert log.external == [] and log.problems == []
        assert page.locator("#notice").is_hidden()


def test_failing_tiles_are_said_once_and_the_page_keeps_working(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        page.route(lambda url: urlsplit(url).hostname == "tile.openstreetmap.org", lambda route: route.abort())
        page.goto(server)
        wait_list(page)
        notice = page.locator("#notice")
        notice.wait_for(state="visible", timeout=15_000)
        assert "底图加载失败" in notice.inner_text() and "列表仍可使用" in notice.inner_text()
        assert page.locator("#list > li").count() == 10
        assert serious(page) == []
        notice.locator("button").click()
        assert notice.is_hidden()
        page.evaluate("() => unionMap.map().map.setZoom(13)")  # more failing tiles: not said again
        page.wait_for_timeout(800)
        assert notice.is_hidden()


# --- 2. installable, offline-capable ------------------------------------------------------------------------------
def test_manifest_is_valid_and_its_icons_load(server):
    with urllib.request.urlopen(server + "/") as resp:
        html = resp.read().decode()
    assert '<link rel="manifest" href="/app/manifest.webmanifest">' in html
    assert '<meta name="theme-color" content="#a4161a">' in html
    with urllib.request.urlopen(server + "/app/manifest.webmanifest") as resp:
        assert resp.headers["Content-Type"].startswith("application/manifest+json")
        manifest = json.loads(resp.read())
    for key in ("name", "short_name", "start_url", "scope", "display", "icons", "theme_color", "background_color"):
        assert manifest.get(key), key
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    sizes = set()
    for icon in manifest["icons"]:
        with urllib.request.urlopen(server + icon["src"]) as resp:
            body = resp.read()
            assert resp.status == 200 and resp.headers["Content-Type"].startswith(icon["type"])
        if icon["type"] == "image/png":
            assert body[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = int.from_bytes(body[16:20], "big"), int.from_bytes(body[20:24], "big")
            assert icon["sizes"] == f"{width}x{height}"
            sizes.add(width)
    assert {192, 512} <= sizes and any(i.get("purpose") == "maskable" for i in manifest["icons"])


def test_offline_reload_lists_the_same_places_from_the_saved_data(browser, server):
    """After one visit the service worker controls the page; with no signal a reload opens the page from its cache
    and the list is computed in the browser from the saved points, in the server's order, marked offline with the
    data's age; switching tabs offline never empties the list; the signal coming back brings the server's list."""
    with app_page(browser, **GEO) as (page, context, errors):
        page.goto(server)
        wait_list(page, source="server")
        online = list_ids(page)
        assert online == nearest_ids(server, *PEOPLES_SQUARE)
        page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=20_000)
        scope = page.evaluate("navigator.serviceWorker.getRegistration().then(r => r && r.scope)")
        assert scope == server + "/"
        page.wait_for_function("""async () => !!(await caches.match('/app/points.json'))""", timeout=20_000)
        cached = page.evaluate("caches.keys()")
        assert any(k.startswith("union-map-shell-") for k in cached)

        context.set_offline(True)
        page.reload()
        wait_list(page, source="local", timeout=20_000)
        assert list_ids(page) == online  # the same places in the same order as /api/nearest gave online
        offline = page.locator("#offline")
        assert offline.is_visible()
        text = offline.inner_text()
        assert "离线" in text and "数据更新于" in text
        assert offline.locator("[data-action=retry]").is_visible()
        page.wait_for_timeout(300)
        entries = fully_visible(page)  # a rider in a lift: still three places on the first screen
        assert len(entries) == 3 and all(e["inside"] and e["uncovered"] for e in entries), entries
        screenshot(page, "webapp_phone_offline.png")
        assert serious(page) == []

        # another tab offline: computed here too, the tab's own filters; back again: the stations are still listed
        page.locator("#layers [data-layer=gig_markets]").click()
        wait_list(page, "layer=gig_markets", source="local")
        assert list_ids(page) == nearest_ids(server, *PEOPLES_SQUARE, layer="gig_markets")
        page.locator("#layers [data-layer=stations]").click()
        wait_list(page, "layer=stations")
        assert list_ids(page) == online
        # the filters are honoured offline too
        page.locator("#filters [data-service=charging]").click()
        wait_list(page, "services=charging", source="local")
        assert list_ids(page) == nearest_ids(server, *PEOPLES_SQUARE, services="charging")
        page.locator("#active [data-filter=clear]").click()
        page.wait_for_function("() => !document.getElementById('list').dataset.query.includes('services')")
        wait_list(page, "layer=stations", source="local")
        assert list_ids(page) == online

        context.set_offline(False)  # the signal is back: the page asks the server again by itself
        wait_list(page, "layer=stations", source="server", timeout=20_000)
        assert list_ids(page) == online and page.locator("#offline").is_hidden()
        assert real_errors(errors) == []


def test_offline_order_matches_the_server_near_ties(browser, server):
    """The browser's geodesic (GeographicLib, as the server's pyproj.Geod) orders points as /api/nearest does,
    with the distances to the decimetre, in the centre and in the suburbs, with and without filters."""
    probes = [(PEOPLES_SQUARE, "stations", {}), (SONGJIANG, "stations", {}), (PEOPLES_SQUARE, "canteens", {}),
              ((121.4, 31.15), "stations", {"services": "charging,microwave"}), (SONGJIANG, "driver_homes", {}),
              ((121.8, 31.05), "rest_rooms", {"services": "toilet"})]
    with browser_page(browser, PHONE) as (page, log):
        page.goto(server)
        page.wait_for_function("() => window.unionMap !== undefined")
        for (lon, lat), layer, extra in probes:
            body = api(server, "/api/nearest", lon=f"{lon:.6f}", lat=f"{lat:.6f}", k=20, layer=layer, **extra)
            want = [(f["id"], f["properties"]["distance_m"]) for f in body["features"]]
            services = extra["services"].split(",") if "services" in extra else []
            got = page.evaluate("([l, lon, lat, s]) => unionMap.nearestLocal(l, lon, lat, 20, s, false)",
                                [layer, lon, lat, services])
            assert [g[0] for g in got] == [w[0] for w in want], (layer, lon, lat)
            assert all(abs(g[1] - w[1]) < 0.06 for g, w in zip(got, want))


def test_a_stalled_nearest_request_offers_a_retry_within_10_s(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        stalled: list = []

        def stall(route):
            if stalled is not None and len(stalled) < 100:
                stalled.append(route)  # never answered
            else:
                route.fallback()

        page.route("**/api/nearest?*", stall)
        started = time.monotonic()
        page.goto(server)
        retry = page.locator("[data-action=retry]").first
        retry.wait_for(state="visible", timeout=10_000)
        assert time.monotonic() - started < 10.5
        assert "正在查找附近地点" not in page.locator("#status").inner_text()
        screenshot(page, "webapp_phone_stalled.png")
        assert serious(page) == []

        stalled_routes, stalled = stalled, None  # the network answers again
        retry.click()
        wait_list(page, source="server")
        assert list_ids(page) == nearest_ids(server, *PEOPLES_SQUARE)
        assert page.locator("#offline").is_hidden()
        assert stalled_routes  # the first request really was left hanging


# --- 3. the list first ----------------------------------------------------------------------------------------------
def fully_visible(page, n=3) -> list[dict]:
    """For each of the first n list entries: its box, whether it lies inside the viewport, and whether the element
    at each of its corners (2 px inside) belongs to it (nothing covers it)."""
    return page.evaluate("""(n) => [...document.querySelectorAll('#list > li')].slice(0, n).map(li => {
        const r = li.getBoundingClientRect(), inset = 2;
        const corners = [[r.left + inset, r.top + inset], [r.right - inset, r.top + inset],
                         [r.left + inset, r.bottom - inset], [r.right - inset, r.bottom - inset]];
        return {box: [r.left, r.top, r.right, r.bottom],
                inside: r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth,
                uncovered: corners.every(([x, y]) => { const e = document.elementFromPoint(x, y);
                                                       return e !== null && li.contains(e); })}; })""", n)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_three_results_fully_visible_on_a_phone(browser, server, lang):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        page.goto(server + ("/?lang=en" if lang == "en" else "/"))
        wait_list(page)
        page.wait_for_selector("#map[data-ready=true]", state="attached")
        page.wait_for_timeout(500)
        entries = fully_visible(page)
        assert len(entries) == 3 and all(e["inside"] and e["uncovered"] for e in entries), entries
        # services carry their names, the most used filters come first
        first = page.locator("#list > li").first
        assert first.locator(".svc").count() >= 2 and all(t.strip() for t in first.locator(".svc").all_inner_texts())
        chips = page.locator("#filters button").evaluate_all(
            "bs => bs.map(b => b.dataset.service || b.dataset.filter)")
        assert chips[:5] == ["charging", "microwave", "water", "toilet", "open_now"]
        assert page.locator("#filters [data-service=charging]").bounding_box()["x"] < 40  # the first chip
        screenshot(page, f"webapp_phone_located_{lang}.png")
        assert serious(page) == [] and log.problems == []


def test_filters_are_kept_per_tab(browser, server):
    """充电 on stations does not empty the gig-market tab (no market has charging), and is still on back on
    stations; the heading names the filters in force."""
    with browser_page(browser, PHONE, **GEO) as (page, log):
        page.goto(server)
        wait_list(page)
        page.locator("#filters [data-service=charging]").click()
        wait_list(page, "services=charging")
        assert "充电" in page.locator("#active").inner_text()
        page.locator("#layers [data-layer=gig_markets]").click()
        wait_list(page, "layer=gig_markets")
        assert "services=" not in page.locator("#list").get_attribute("data-query")
        assert list_ids(page) == nearest_ids(server, *PEOPLES_SQUARE, layer="gig_markets")
        assert page.locator("#list > li").count() >= 3 and page.locator("#active").is_hidden()
        assert page.locator("#filters [data-service=charging]").get_attribute("aria-pressed") == "false"
        page.locator("#layers [data-layer=stations]").click()
        wait_list(page, "layer=stations&k=10&services=charging")
        assert page.locator("#filters [data-service=charging]").get_attribute("aria-pressed") == "true"
        assert list_ids(page) == nearest_ids(server, *PEOPLES_SQUARE, services="charging")
        page.reload()  # remembered per tab
        wait_list(page, "services=charging")
        assert log.problems == []


def test_driver_homes_show_car_times_only(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        page.goto(server + "/?layer=driver_homes")
        wait_list(page, "layer=driver_homes")
        texts = page.locator("#list > li .times").all_inner_texts()
        assert len(texts) == 10 and all(t.startswith("驾车约") for t in texts), texts
        assert not any("步行" in t or "电动车" in t for t in page.locator("#list").all_inner_texts())
        page.locator("#layers [data-layer=stations]").click()
        wait_list(page, "layer=stations")
        assert "电动车约" in page.locator("#list > li .times").first.inner_text()


def test_clusters_do_not_look_like_result_pins(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        page.goto(server)
        wait_list(page)
        page.wait_for_selector("#map[data-points=ready]", state="attached", timeout=15_000)
        page.evaluate("() => unionMap.map().map.setZoom(13)")
        page.wait_for_function("() => document.querySelectorAll('.cl').length > 0")
        style = page.evaluate("""() => { const c = document.querySelector('.cl'), p = document.querySelector('.mk-rank .pin');
            const cs = getComputedStyle(c), ps = getComputedStyle(p);
            return {cluster_bg: cs.backgroundColor, pin_bg: ps.backgroundColor, cluster_radius: cs.borderRadius,
                    cluster_text: c.textContent, cluster_label: c.getAttribute('aria-label')}; }""")
        assert style["cluster_bg"] == "rgb(255, 255, 255)" and style["pin_bg"] != style["cluster_bg"]
        assert style["cluster_text"].startswith("×") and "个地点" in style["cluster_label"]


# --- pick mode ------------------------------------------------------------------------------------------------------
def test_first_tap_in_pick_mode_sets_the_position_even_on_a_cluster(browser, server):
    with browser_page(browser, PHONE) as (page, log):  # location denied: pick mode is on by itself
        page.goto(server)
        page.wait_for_selector("#status .warn", timeout=15_000)
        page.wait_for_selector("#map[data-points=ready]", state="attached", timeout=15_000)
        page.wait_for_function("() => document.querySelectorAll('.cl').length > 3")
        page.wait_for_timeout(400)
        assert page.locator("#pick").get_attribute("aria-pressed") == "true" and page.locator("#maphint").is_visible()
        screenshot(page, "webapp_phone_denied.png")
        assert serious(page) == []
        zoom = page.evaluate("unionMap.map().map.getZoom()")
        x, y = page.evaluate("""() => { const m = document.getElementById('map').getBoundingClientRect();
            const inside = [...document.querySelectorAll('.cl')].map(e => e.getBoundingClientRect()).filter(r =>
              r.left > m.left + 5 && r.right < m.right - 60 && r.top > m.top + 50 && r.bottom < m.bottom - 25);
            const r = inside[0]; return [r.left + r.width / 2, r.top + r.height / 2]; }""")
        # the tap goes through the bubble to the map (markers take no pointer events while picking)
        expected = page.evaluate("""([x, y]) => { const m = unionMap.map().map, r = m.getContainer().getBoundingClientRect();
            const ll = m.containerPointToLatLng([x - r.left, y - r.top]); return [ll.lng, ll.lat]; }""", [x, y])
        page.mouse.click(x, y)  # one tap, right on a cluster bubble
        wait_list(page)
        origin = page.evaluate("[unionMap.state.origin.lon, unionMap.state.origin.lat, unionMap.state.origin.source]")
        pixel = 360 / (256 * 2 ** zoom)  # degrees of longitude per pixel: where the tap was, to 2 pixels
        assert origin[2] == "pick" and origin[:2] == pytest.approx(expected, abs=2 * pixel)
        assert list_ids(page) == nearest_ids(server, origin[0], origin[1])
        assert page.evaluate("unionMap.map().map.getZoom()") >= zoom
        assert page.locator("#pick").get_attribute("aria-pressed") == "false"
        assert log.problems == []


# --- accessibility in every state -----------------------------------------------------------------------------------
def test_no_serious_axe_violations_in_any_state(browser, server):
    with browser_page(browser, PHONE, **GEO) as (page, log):
        page.goto(server)
        wait_list(page)
        page.wait_for_selector("#map[data-points=ready]", state="attached", timeout=15_000)
        page.wait_for_timeout(500)
        assert serious(page) == [], "list"
        page.locator("#filters [data-service=charging]").click()
        wait_list(page, "services=charging")
        assert serious(page) == [], "filtered"
        page.locator("#list > li > button").first.click()
        page.locator("#card").wait_for(state="visible")
        page.wait_for_timeout(300)
        assert serious(page) == [], "card open"
        screenshot(page, "webapp_phone_card.png")
        page.keyboard.press("Escape")
        page.locator("#lang").click()
        page.wait_for_timeout(300)
        assert serious(page) == [], "English"
        def shown() -> int:
            return sum(e["inside"] and e["uncovered"] for e in fully_visible(page, 8))

        folded = shown()
        page.locator("#expand").click()
        assert page.locator("#expand").get_attribute("aria-expanded") == "true"
        # the map folds away and more of the list shows (how many entries fit depends on their text: a closed
        # station says when it opens, one more line); a transition, so allow it a moment
        deadline = time.monotonic() + 5
        while shown() <= folded and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert shown() > folded >= 2
        assert serious(page) == [], "list expanded"
        screenshot(page, "webapp_phone_expanded_en.png")
        page.locator("#expand").click()
        page.locator("#pick").click()
        assert serious(page) == [], "picking"
        assert log.problems == []


def test_denied_location_offers_the_districts_one_tap_away(browser, server):
    with browser_page(browser, PHONE) as (page, log):
        page.goto(server)
        page.wait_for_selector("#status .district-grid button", timeout=15_000)
        assert page.locator("#status .district-grid button").count() == 16
        page.locator("#status .district-grid [data-district='310117']").click()  # 松江区
        wait_list(page)
        songjiang = next(d for d in json.loads(page.locator("#boot").text_content())["districts"] if d["id"] == "310117")
        assert list_ids(page) == nearest_ids(server, songjiang["lon"], songjiang["lat"])
        assert "松江区" in page.locator("#results-title").inner_text()
        assert log.problems == []
