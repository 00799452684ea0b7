"""The data-management page (/admin) in Debian's Chromium against a real `geoserver serve` on a copy of the data."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from geoserver.core import crs
from geoserver.core.auth import TokenStore, tokens_path
from geoserver.core.service import DEFAULT_DATA_DIR
from tests.browser_support import (PHONE, browser_page, drag, launch_browser, require_vendor_assets, screenshot,
                                   tile_server)
from tests.conftest import ROOT, start_server, stop_server

FORMS = Path(__file__).parent / "data" / "import"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data = tmp_path_factory.mktemp("admin-browser") / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, data)
    token = TokenStore(tokens_path(data)).add("黄浦区总工会", ("stations",))
    url, proc = start_server({"GEOSERVER_DATA_DIR": str(data), "GEOSERVER_RELOAD_INTERVAL_S": "0.2"}, workers=1)
    yield url, token, data
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


def count(url: str) -> int:
    with urllib.request.urlopen(url + "/api/layers", timeout=10) as resp:
        return next(lay["count"] for lay in json.loads(resp.read())["layers"] if lay["id"] == "stations")


def test_sign_in_check_import_restore(browser, site, tmp_path):
    url, token, data = site
    with browser_page(browser, viewport=PHONE) as (page, log):
        page.goto(url + "/admin")
        page.fill("#token", "gsk_wrong")
        page.click("#signin-form button")
        page.wait_for_selector("#signin-error:not([hidden])")
        assert page.inner_text("#signin-error") == "令牌无效或已撤销 / The token is not valid (unknown or revoked)"
        console_401 = list(log.console_errors)  # the browser logs the refused request itself
        log.console_errors.clear()

        page.fill("#token", token)
        page.click("#signin-form button")
        page.wait_for_selector("#workspace:not([hidden])")
        assert page.inner_text("#who") == "操作人 / Operator: 黄浦区总工会"
        assert page.locator("#layer option").all_inner_texts() == ["工会驿站（户外职工爱心接力站） (stations)"]

        with page.expect_download() as got:
            page.click("#download-csv")
        exported = Path(got.value.path()).read_bytes().decode("utf-8-sig").splitlines()
        assert got.value.suggested_filename == "stations.csv" and len(exported) == 3401
        assert exported[0].startswith("编号,名称,行政区,街镇,具体门牌号,提供设施及服务,")

        page.set_input_files("#file", str(FORMS / "stations_gbk.csv"))
        page.select_option("#crs", "wgs84")
        page.click("button[value=check]")
        page.wait_for_selector("#result .summary")
        assert page.inner_text("#result .summary") == "检查完成：7/7 行有效，未修改数据 / Checked: 7 of 7 rows valid; nothing changed"
        assert count(url) == 3400

        page.click("button[value=import]")
        page.wait_for_selector("#result .summary.ok >> text=Imported as version 2")
        assert count(url) == 3407
        page.wait_for_selector("#history tbody tr >> nth=1")
        rows = page.locator("#history tbody tr").all_inner_texts()
        assert rows[0].split("\t")[0] == "v2" and "当前 / current" in rows[0]
        assert rows[1].split("\t")[0] == "v1" and "initial" in rows[1]
        page.wait_for_selector("#audit tbody tr")
        assert "黄浦区总工会" in page.inner_text("#audit tbody tr")
        screenshot(page, "admin-imported-phone.png")

        bad = tmp_path / "bad.csv"
        bad.write_text("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度\n"
                       "<img src=x onerror=alert(1)>站,黄浦区,人民大道1号,黄浦区总工会,饮水机,24/7,121.4737,31.2304\n",
                       encoding="utf-8")
        page.set_input_files("#file", str(bad))
        page.click("button[value=import]")
        page.wait_for_selector("#problems")
        assert page.inner_text("#result .summary").startswith("未导入任何数据 / Nothing was imported: 1 problems")
        cells = page.locator("#problems tbody tr td").all_inner_texts()
        assert cells[:2] == ["2", "提供设施及服务"]
        assert cells[3] == ("未知的服务“饮水机”，是否为“补水”（water）？\n"
                            "unknown service '饮水机'; did you mean 'Drinking water' (补水, water)?")
        assert page.locator("#result img").count() == 0  # file text is never HTML
        assert count(url) == 3407
        screenshot(page, "admin-refused-phone.png")

        page.on("dialog", lambda d: d.accept())
        page.click("#history button >> text=恢复 v1")
        page.wait_for_selector("#history tbody tr >> nth=2")
        first = page.locator("#history tbody tr").first.inner_text()
        assert first.startswith("v3") and "rollback" in first and "← v1" in first
        assert count(url) == 3400
        assert log.external == [] and log.page_errors == []
        # the only console messages are the browser's own notes of the refused requests (401, then 422)
        assert len(console_401) == 1 and "status of 401" in console_401[0]
        assert [c for c in log.console_errors if "status of 422" not in c] == []


def test_page_without_token_shows_only_sign_in(browser, site):
    url, _, _ = site
    with browser_page(browser) as (page, log):
        resp = page.goto(url + "/admin")
        assert resp.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in resp.headers["content-security-policy"]
        assert page.is_visible("#signin") and not page.is_visible("#workspace")
        assert log.problems == []


def public_feature(url: str, fid: str) -> dict:
    with urllib.request.urlopen(f"{url}/ogc/collections/stations/items/{fid}", timeout=10) as resp:
        return json.loads(resp.read())


def test_edit_create_and_delete_one_facility(browser, site):
    url, token, _ = site
    with browser_page(browser) as (page, log):
        page.goto(url + "/admin")
        page.fill("#token", token)
        page.click("#signin-form button")
        page.wait_for_selector("#workspace:not([hidden])")

        page.fill("#q", "ST00001")
        page.click("#search-form button[type=submit]")
        page.wait_for_selector("#matches li button")
        page.click("#matches li button >> text=ST00001 ·")
        page.wait_for_selector("#feature-form:not([hidden])")
        assert page.input_value("#f-id") == "ST00001"
        assert page.input_value("#f-contact_phone") == "10068693301"  # private fields are editable here
        page.fill("#f-opening_hours", "早8:00-晚8:00")
        page.fill("#f-contact_phone", "138-abcd")
        page.click("#feature-form button[type=submit]")
        page.wait_for_selector("#feature-result .problems")
        assert page.inner_text("#feature-result .problems") == (
            "手机号码：不是有效的电话号码：“138-abcd”\nnot a phone number: '138-abcd'")
        page.fill("#f-contact_phone", "13800001111")
        page.click("#feature-form button[type=submit]")
        page.wait_for_selector("#feature-result .ok")
        assert page.inner_text("#feature-result .ok").startswith("已定位，已公开 / Located and public · 已保存为版本 ")
        public = public_feature(url, "ST00001")["properties"]
        assert public["opening_hours"] == "08:00-20:00"
        assert "contact_phone" not in public

        page.click("#new-feature")
        page.fill("#f-name", "人民公园东门驿站")
        page.fill("#f-address", "南京西路231号")
        page.fill("#f-host_org", "黄浦区总工会")
        page.fill("#f-opening_hours", "24/7")
        page.check("input[name=svc][value=water]")
        page.check("input[name=svc][value=rest]")
        assert page.input_value("#f-datum") == "gcj02"  # what staff copy from Amap, unless they say otherwise
        page.select_option("#f-datum", "wgs84")
        page.fill("#f-lon", "121.4720")
        page.fill("#f-lat", "31.2330")
        page.click("#feature-form button[type=submit]")
        page.wait_for_selector("#feature-result .ok")
        saved = page.inner_text("#feature-result .ok")
        new_id = saved.rsplit(" · ", 1)[1]
        assert re.fullmatch(r"ST\d{5}", new_id) and int(new_id[2:]) > 3400
        created = public_feature(url, new_id)["properties"]
        assert (created["district"], created["services"]) == ("黄浦区", ["rest", "water"])

        page.on("dialog", lambda d: d.accept())
        page.click("#delete-feature")
        page.wait_for_selector(f"#feature-result .ok >> text=已删除 / Deleted {new_id}")
        with pytest.raises(urllib.error.HTTPError):
            public_feature(url, new_id)
        assert log.external == [] and log.page_errors == []
        assert [c for c in log.console_errors if "status of 422" not in c] == []
        screenshot(page, "admin-edit-desktop.png")


# --- the pending queue (待定位) and the placing map ----------------------------------------------------------------
PEOPLES_SQUARE = (121.4737, 31.2304)   # WGS84, in 黄浦区
JINGAN = (121.4480, 31.2290)           # WGS84, in 静安区, about 500 m west of 黄浦区
DESK = {"width": 1280, "height": 800}
GEOCODER_NOTE = ("未配置地理编码服务：请在地图上标注", "no geocoder configured: place rows on the map")


@contextmanager
def rest_rooms_site(tmp_path_factory, env: dict):
    """A server on a fresh copy of the data with a token for rest_rooms; ``env`` adds settings (tiles, geocoder)."""
    require_vendor_assets()
    data = tmp_path_factory.mktemp("admin-map") / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, data)
    token = TokenStore(tokens_path(data)).add("黄浦区总工会", ("rest_rooms",))
    url, proc = start_server({"GEOSERVER_DATA_DIR": str(data), "GEOSERVER_RELOAD_INTERVAL_S": "0.2",
                              "GEOSERVER_GEOCODER": "", **env}, workers=1)
    try:
        yield url, token
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def plain_site(tmp_path_factory):
    """No tiles (the map shows district outlines only, in WGS84) and no geocoder: an intranet set-up."""
    with rest_rooms_site(tmp_path_factory, {"GEOSERVER_BASEMAPS": "none"}) as site:
        yield site


@pytest.fixture(scope="module")
def amap_site(tmp_path_factory):
    """Amap (GCJ-02) tiles from a local stand-in tile server."""
    with tile_server() as tiles, rest_rooms_site(
            tmp_path_factory, {"GEOSERVER_AMAP_TILES_URL": tiles.url + "/amap/{s}/{z}/{x}/{y}.png",
                               "GEOSERVER_BASEMAPS": "amap"}) as site:
        yield (*site, tiles)


def gazetteer_entry(address: str, precision: str, wgs84: tuple[float, float], formatted: str) -> dict:
    gcj, bd = crs.wgs84_to_gcj02(*wgs84), crs.wgs84_to_bd09(*wgs84)
    return {"address": address, "precision": precision, "wgs84": list(wgs84), "gcj02": [float(v) for v in gcj],
            "bd09": [float(v) for v in bd], "formatted": formatted, "adcode": "310101"}


TIBET_ROAD = (121.4787, 31.2345)        # WGS84, 西藏中路 in 黄浦区 (a stand-in gazetteer entry)
NANJING_ROAD = (121.4806, 31.2389)


@pytest.fixture(scope="module")
def geocoder_site(tmp_path_factory):
    """An Amap geocoder (the local stand-in of scripts/geocoder_standin.py) and no tiles."""
    spec = importlib.util.spec_from_file_location("geocoder_standin", ROOT / "scripts" / "geocoder_standin.py")
    standin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standin)
    gazetteer = [gazetteer_entry("上海市黄浦区人民大道200号", "house", PEOPLES_SQUARE, "上海市黄浦区人民大道200号（人民广场）"),
                 gazetteer_entry("上海市黄浦区西藏中路268号", "house", TIBET_ROAD, "上海市黄浦区西藏中路268号"),
                 gazetteer_entry("上海市黄浦区南京东路", "road", NANJING_ROAD, "南京东路")]
    with standin.StandIn(gazetteer) as server, rest_rooms_site(tmp_path_factory, {
            "GEOSERVER_GEOCODER": "amap", "GEOSERVER_GEOCODER_KEY": "test-key", "GEOSERVER_GEOCODER_URL": server.url,
            "GEOSERVER_GEOCODER_QPS": "50"}) as site:
        yield site


def admin_request(url: str, token: str, method: str, path: str, body=None) -> dict:
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def add_pending(url: str, token: str, name: str, address: str = "人民大道200号") -> str:
    """A rest room without a position (待定位), made through the admin API; returns its id."""
    body = {"type": "Feature", "geometry": None,
            "properties": {"name": name, "district": "黄浦区", "address": address, "services": ["rest"]}}
    out = admin_request(url, token, "POST", "/api/admin/layers/rest_rooms/features", body)
    assert out["feature"]["properties"]["location_status"] == "pending" and out["feature"]["geometry"] is None
    return out["feature"]["id"]


def nearest(url: str, lon: float, lat: float) -> tuple[str, list[float]]:
    with urllib.request.urlopen(f"{url}/api/nearest?layer=rest_rooms&lon={lon:.7f}&lat={lat:.7f}&k=1",
                                timeout=10) as resp:
        feature = json.loads(resp.read())["features"][0]
    return feature["id"], feature["geometry"]["coordinates"]


def metres(a, b) -> float:
    return float(crs.geodesic_distance_m(a[0], a[1], b[0], b[1]))


def sign_in(page, url: str, token: str) -> None:
    page.goto(url + "/admin")
    page.fill("#token", token)
    page.click("#signin-form button")
    page.wait_for_selector("#workspace:not([hidden])")


def open_from_queue(page, fid: str):
    """Click the row in the pending queue; wait until the editor's map shows it."""
    row = page.locator(f"#pending-list li[data-feature-id='{fid}']")
    row.wait_for()
    text = row.inner_text()
    row.locator("button").click()
    page.wait_for_selector(f"#pick-map[data-feature='{fid}'] .admin-pin", timeout=15_000)
    return text


def pin(page) -> list[float]:
    """The pin's position as the map shows it (in the base map's datum)."""
    return page.evaluate("() => window.adminMap.pin()")


def page_point(page, lon: float, lat: float) -> list[float]:
    return page.evaluate("([x, y]) => window.adminMap.pagePoint(x, y)", [lon, lat])


def show(page, lon: float, lat: float, zoom: int) -> None:
    """Centre the map on (lon, lat) in the base map's datum (returns nothing: a Leaflet map does not serialise)."""
    page.evaluate("([x, y, z]) => { window.adminMap.map().setView([y, x], z, { animate: false }); }", [lon, lat, zoom])


def drag_pin_to(page, lon: float, lat: float) -> None:
    """Drag the pin with the mouse (down on the marker, move, up) so that its tip lands on (lon, lat), given in the
    base map's datum."""
    page.locator("#pick-map").scroll_into_view_if_needed()
    box = page.locator(".admin-pin").bounding_box()
    grab = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
    tip, target = page_point(page, *pin(page)), page_point(page, lon, lat)
    frame = page.locator("#pick-map").bounding_box()
    for x, y in (tip, target):
        assert frame["x"] < x < frame["x"] + frame["width"] and frame["y"] < y < frame["y"] + frame["height"], \
            "the pin and the target must both be in view"
    drag(page, grab, (grab[0] + target[0] - tip[0], grab[1] + target[1] - tip[1]))


def save(page) -> str:
    """Click 保存 / Save; the result's text (after a success, once the map shows the saved feature)."""
    page.click("#feature-form button[type=submit]")
    text = page.wait_for_selector("#feature-result .ok, #feature-result .error").inner_text()
    if text.startswith("已"):
        page.wait_for_selector("#pick-map[data-feature] .admin-pin")
    return text


def map_problems(log) -> list[str]:
    """The log's problems except tile loads Leaflet cancels itself (zooming) and the 422 of a refused save."""
    return [p for p in log.problems if "/amap/" not in p and "status of 422" not in p]


def unnamed_controls(page) -> list[str]:
    """Visible buttons, inputs and selects without an accessible name (label, aria-label, text or title)."""
    return page.evaluate("""() => [...document.querySelectorAll('button, input, select, textarea, [role=button]')]
        .filter(e => e.type !== 'hidden' && e.getClientRects().length)
        .filter(e => !(((e.labels ? [...e.labels].map(l => l.textContent).join(' ') : '')
                        || e.getAttribute('aria-label') || (e.tagName !== 'INPUT' ? e.textContent : '')
                        || e.title || '').trim()))
        .map(e => e.outerHTML.slice(0, 120))""")


def test_drag_the_pin_to_place_a_pending_row(browser, plain_site):
    """A pending row from the queue, its pin dragged with the mouse to People's Square, saved: the row is public at
    exactly the point the map showed (no base map: the map is in WGS84)."""
    url, token = plain_site
    fid = add_pending(url, token, "测试休息室")
    with browser_page(browser, viewport=DESK) as (page, log):
        sign_in(page, url, token)
        page.select_option("#layer", "rest_rooms")
        page.wait_for_selector(f"#pending-list li[data-feature-id='{fid}']")
        assert page.inner_text("#pending-count").startswith("1 个")
        screenshot(page.locator("#pending-card"), "admin-pending-queue.png")
        row = open_from_queue(page, fid)
        assert row.splitlines() == ["测试休息室 " + fid, "黄浦区 · 人民大道200号", "没有坐标", "No coordinates"]
        assert page.inner_text("#feature-status").startswith("待定位（未公开）/ Pending (not public)")
        # no position yet: a tentative pin at the centre of 黄浦区, on the outlines-only map (WGS84)
        assert page.locator("#pick-map.no-tiles[data-crs=wgs84] .admin-pin.tentative").count() == 1
        assert "图钉在黄浦区中心（未确认）" in page.inner_text("#pin-hint")
        assert page.input_value("#f-lon") == "" and page.is_hidden("#pin-warning")
        screenshot(page, "admin-pending-open-desktop.png")

        drag_pin_to(page, *PEOPLES_SQUARE)
        shown = pin(page)
        assert metres(shown, PEOPLES_SQUARE) < 15                # the pin lands where the mouse let go of it
        assert page.evaluate("() => window.adminMap.position()") == {
            "lon": shown[0], "lat": shown[1], "crs": "wgs84", "source": "map", "confirmed": True}
        assert page.locator(".admin-pin.tentative").count() == 0 and page.is_hidden("#pin-warning")
        gcj = crs.wgs84_to_gcj02(*shown)   # the fields show it in the default datum, GCJ-02
        assert (page.input_value("#f-lon"), page.input_value("#f-lat")) == (f"{gcj[0]:.6f}", f"{gcj[1]:.6f}")
        screenshot(page, "admin-pin-dragged-desktop.png")

        assert save(page).startswith("已定位，已公开 / Located and public · 已保存为版本 ")
        page.wait_for_selector(f"#pending-list li[data-feature-id='{fid}']", state="detached")
        assert page.inner_text("#feature-status").startswith("已定位（公开）/ Located (public)")
        assert "地图标注" in page.inner_text("#feature-status")
        screenshot(page, "admin-located-desktop.png")
        assert unnamed_controls(page) == []
        assert map_problems(log) == [] and log.external == []
    got, stored = nearest(url, *shown)
    assert got == fid and metres(stored, shown) < 1.0
    feature = admin_request(url, token, "GET", f"/api/admin/layers/rest_rooms/features/{fid}")
    assert feature["properties"]["location_status"] == "located"
    assert feature["properties"]["location_source"] == "map"


def test_drag_on_the_amap_base_map_stores_the_wgs84_point(browser, amap_site):
    """On Amap tiles (GCJ-02) the pin and the outlines are drawn shifted; what is stored is the WGS84 point under the
    pin: gcj02_to_wgs84 of the marker's position."""
    url, token, tiles = amap_site
    fid = add_pending(url, token, "测试休息室（高德底图）")
    with browser_page(browser, viewport=PHONE) as (page, log):
        sign_in(page, url, token)
        open_from_queue(page, fid)
        assert page.locator("#pick-map[data-crs=gcj02]:not(.no-tiles)").count() == 1
        assert page.locator("#pick-base option").all_inner_texts() == ["高德地图 / Amap (GCJ-02)", "无底图 / No base map"]
        page.wait_for_function("() => document.querySelector('#pick-map .leaflet-tile-pane img.leaflet-tile-loaded')")
        assert tiles.paths and all(p.startswith("/amap/") for p in tiles.paths)
        target = [float(v) for v in crs.wgs84_to_gcj02(*PEOPLES_SQUARE)]   # where People's Square is on Amap tiles
        drag_pin_to(page, *target)
        shown = pin(page)
        assert metres(shown, target) < 15
        assert page.evaluate("() => window.adminMap.position()")["crs"] == "gcj02"
        assert page.is_hidden("#pin-warning")
        screenshot(page, "admin-pin-amap-phone.png")
        assert save(page).startswith("已定位，已公开 / Located and public")
        # the stored point drawn on the other base map (WGS84) sits where the server put it
        page.select_option("#pick-base", "none")
        page.wait_for_selector("#pick-map[data-crs=wgs84]")
        on_wgs84_map = pin(page)
        assert map_problems(log) == [] and log.external == []
    expected = [float(v) for v in crs.gcj02_to_wgs84(*shown)]
    got, stored = nearest(url, *expected)
    assert got == fid and metres(stored, expected) < 1.0
    assert metres(stored, shown) > 300                     # the GCJ-02 shift (about 500 m here) was taken off
    assert metres(on_wgs84_map, stored) < 1.0


def test_typed_gcj02_coordinates_and_a_pin_outside_the_district(browser, plain_site):
    """Coordinates typed (pasted) as Amap gives them, GCJ-02 by default, are stored as their WGS84 point; a pin dragged
    into 静安区 is flagged in the page, and the server's refusal is shown in words."""
    url, token = plain_site
    fid = add_pending(url, token, "测试休息室（输入坐标）", "西藏中路100号")
    typed = ("121.480100", "31.232500")   # GCJ-02, as Amap's coordinate picker copies it
    expected = [float(v) for v in crs.gcj02_to_wgs84(float(typed[0]), float(typed[1]))]
    with browser_page(browser, viewport=DESK) as (page, log):
        sign_in(page, url, token)
        open_from_queue(page, fid)
        assert page.input_value("#f-datum") == "gcj02"
        assert page.locator("#f-datum option").all_inner_texts() == ["WGS84（GPS）", "高德·腾讯 GCJ-02", "百度 BD-09"]
        page.fill("#f-lon", f"{typed[0]},{typed[1]}")          # pasted "lon,lat" fills both fields
        assert (page.input_value("#f-lon"), page.input_value("#f-lat")) == typed
        assert metres(pin(page), expected) < 0.01              # datum.js and crs.py agree: the pin is on the point
        page.select_option("#f-datum", "wgs84")                # the typed numbers read as WGS84 instead
        assert metres(pin(page), [float(v) for v in typed]) < 0.01
        page.select_option("#f-datum", "gcj02")
        assert metres(pin(page), expected) < 0.01
        assert page.is_hidden("#pin-warning")
        assert "按输入的坐标（GCJ-02）设定" in page.inner_text("#pin-hint")
        assert save(page).startswith("已定位，已公开 / Located and public")
        page.wait_for_selector(f"#pending-list li[data-feature-id='{fid}']", state="detached")

        show(page, (JINGAN[0] + expected[0]) / 2, (JINGAN[1] + expected[1]) / 2, 14)
        drag_pin_to(page, *JINGAN)
        page.wait_for_selector("#pin-warning:not([hidden])")
        warning = page.inner_text("#pin-warning")
        assert warning.startswith("图钉不在黄浦区内（位于静安区）") and "The pin lies outside 黄浦区 (Huangpu), in 静安区" in warning
        assert page.get_attribute("#pin-warning", "role") == "alert"
        moved = pin(page)
        gcj = crs.wgs84_to_gcj02(*moved)                       # the fields follow the pin, in GCJ-02
        assert (page.input_value("#f-lon"), page.input_value("#f-lat")) == (f"{gcj[0]:.6f}", f"{gcj[1]:.6f}")
        screenshot(page, "admin-pin-outside-district-desktop.png")
        assert save(page).startswith("未保存 / Not saved")
        refusal = page.inner_text("#feature-result .problems")
        assert refusal == "行政区：坐标位于静安区，与行政区“黄浦区”不符\nthe point lies in 静安区 (Jing'an), not in '黄浦区'"
        assert "{" not in page.inner_text("#feature-result")   # words, never raw JSON
        screenshot(page, "admin-refused-outside-district-desktop.png")
        assert map_problems(log) == [] and log.external == []
    got, stored = nearest(url, *expected)                       # the refused move changed nothing
    assert got == fid and metres(stored, expected) < 1.0
    feature = admin_request(url, token, "GET", f"/api/admin/layers/rest_rooms/features/{fid}")
    assert feature["properties"]["location_source"] == "typed"


def test_without_a_geocoder_the_page_says_to_place_rows_on_the_map(browser, plain_site):
    url, token = plain_site
    fid = add_pending(url, token, "测试休息室（无地理编码）")
    with browser_page(browser, viewport=PHONE) as (page, log):
        sign_in(page, url, token)
        page.wait_for_selector(f"#pending-list li[data-feature-id='{fid}']")
        assert page.is_hidden("#geocode-start") and page.is_hidden("#geocode-controls")
        note = page.inner_text("#geocode-none")
        assert page.is_visible("#geocode-none") and GEOCODER_NOTE[0] in note and GEOCODER_NOTE[1] in note.lower()
        screenshot(page.locator("#pending-card"), "admin-pending-no-geocoder-phone.png")
        open_from_queue(page, fid)
        assert page.is_hidden("#geo-search")                   # no address search without a geocoder
        assert unnamed_controls(page) == []
        screenshot(page, "admin-pending-open-phone.png")
        assert map_problems(log) == [] and log.external == []


def test_geocode_now_and_address_search(browser, geocoder_site):
    """With a geocoder: the button geocodes the queue (progress, then the result), precise answers become public,
    the rest stay with their reason; the map's address search moves the pin to the chosen candidate."""
    url, token = geocoder_site
    square = add_pending(url, token, "测试休息室（人民广场）", "人民大道200号")
    road = add_pending(url, token, "测试休息室（南京东路）", "南京东路")
    nowhere = add_pending(url, token, "测试休息室（查无此址）", "查无此路1号")
    with browser_page(browser, viewport=DESK) as (page, log):
        sign_in(page, url, token)
        page.wait_for_selector(f"#pending-list li[data-feature-id='{nowhere}']")
        assert page.is_visible("#geocode-start") and page.is_hidden("#geocode-none")
        assert page.inner_text("#geocode-provider") == "地理编码服务 / Geocoder: 高德 Amap"
        page.click("#geocode-start")
        page.wait_for_selector("#geocode-status p.ok", timeout=30_000)
        status = page.inner_text("#geocode-status")
        assert status.startswith("地理编码完成\nGeocoding finished")
        assert "尝试 3 行 · 已定位并公开 1 行 · 仍待定位 2 行" in status
        assert "地理编码结果不够精确：1" in status and "地理编码未找到该地址：1" in status
        page.wait_for_selector(f"#pending-list li[data-feature-id='{square}']", state="detached")
        assert page.is_hidden("#geocode-progress") and not page.is_disabled("#geocode-start")
        assert "地理编码未找到该地址" in page.inner_text(f"#pending-list li[data-feature-id='{nowhere}']")
        screenshot(page.locator("#pending-card"), "admin-geocoded-queue.png")

        row = open_from_queue(page, road)
        assert "地理编码结果不够精确" in row and "有建议位置 / has a proposed position" in row
        assert page.locator(".admin-pin.tentative").count() == 1   # the road-level proposal, not confirmed
        assert metres(pin(page), NANJING_ROAD) < 1.0
        assert page.is_visible("#use-proposed")
        page.fill("#geo-q", "西藏中路268号")
        page.press("#geo-q", "Enter")                          # searches; does not submit the editor
        candidate = page.wait_for_selector("#geo-candidates button")
        assert candidate.inner_text() == "上海市黄浦区西藏中路268号\n门牌号 · 精确 / precise · 在黄浦区内 / in 黄浦区"
        candidate.click()
        assert metres(pin(page), TIBET_ROAD) < 1.0 and page.locator(".admin-pin.tentative").count() == 0
        screenshot(page, "admin-address-search-desktop.png")
        assert save(page).startswith("已定位，已公开 / Located and public")
        assert map_problems(log) == [] and log.external == []
    assert nearest(url, *PEOPLES_SQUARE)[0] == square
    got, stored = nearest(url, *TIBET_ROAD)
    assert got == road and metres(stored, TIBET_ROAD) < 1.0


def test_datum_js_matches_the_servers_datum_module(browser, plain_site):
    """static/app/datum.js (window.GeoDatum, used by / and /admin) gives what geoserver/core/crs.py gives, forward
    and inverse, to far below a millimetre, across Shanghai, elsewhere in China and outside China (no shift)."""
    url, _ = plain_site
    lons, lats = np.meshgrid(np.linspace(120.8, 122.2, 8), np.linspace(30.6, 31.9, 8))
    points = [[float(x), float(y)] for x, y in zip(lons.ravel(), lats.ravel())]
    points += [[116.3975, 39.9087], [113.2644, 23.1291], [104.0665, 30.5723], [2.3522, 48.8566], [139.6917, 35.6895]]
    pts = np.array(points)
    with browser_page(browser) as (page, log):
        page.goto(url + "/admin")
        got = page.evaluate("""pts => {
            const D = window.GeoDatum, out = {};
            for (const name of ['wgs84ToGcj02', 'gcj02ToWgs84', 'wgs84ToBd09', 'bd09ToWgs84', 'gcj02ToBd09', 'bd09ToGcj02'])
              out[name] = pts.map(p => D[name](p[0], p[1]));
            out.convert = pts.map(p => D.convert(p[0], p[1], 'bd09', 'gcj02'));
            return out; }""", points)
        assert log.problems == []
    want = {"wgs84ToGcj02": crs.wgs84_to_gcj02, "gcj02ToWgs84": crs.gcj02_to_wgs84, "wgs84ToBd09": crs.wgs84_to_bd09,
            "bd09ToWgs84": crs.bd09_to_wgs84, "gcj02ToBd09": crs.gcj02_to_bd09, "bd09ToGcj02": crs.bd09_to_gcj02,
            "convert": lambda x, y: crs.from_wgs84(*crs.bd09_to_wgs84(x, y), "gcj02")}
    for name, fn in want.items():
        expected = np.column_stack(fn(pts[:, 0], pts[:, 1]))
        error_m = crs.geodesic_distance_m(expected[:, 0], expected[:, 1], *np.array(got[name]).T)
        assert error_m.max() < 1e-4, (name, error_m.max())   # 0.1 mm
    outside = np.array(got["wgs84ToGcj02"][-2:])
    assert np.array_equal(outside, pts[-2:])                 # Paris and Tokyo are not shifted
    forward = np.array(got["wgs84ToGcj02"][:64])
    assert (crs.geodesic_distance_m(pts[:64, 0], pts[:64, 1], forward[:, 0], forward[:, 1]) > 300).all()
