"""The planning map and the coverage report in a real browser (Debian's Chromium, headless, via Playwright): they
load nothing from outside, raise no errors, draw the districts, the legend and the layer control. Screenshots for
people to look at go to test-artifacts/ (phone 390x844 and desktop)."""

from __future__ import annotations

import pytest

from geoserver.core.coverage import Catchment, compute_coverage, find_gaps
from geoserver.core.demand import grid_demand
from geoserver.render.assets import render_html
from geoserver.render.maps import planning_map
from geoserver.render.report import write_coverage_report
from tests.browser_support import DESKTOP, PHONE, browser_page, launch_browser, require_vendor_assets, screenshot

pytestmark = pytest.mark.external


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, service):
    """An inline-mode planning map (with proposed sites) and a coverage report, written to files."""
    require_vendor_assets()
    import geopandas as gpd
    from shapely.geometry import Point

    coverage = compute_coverage(service, "stations", Catchment(radius_m=1000), grid_demand(service, 500))
    gaps = find_gaps(coverage)
    sites = gpd.GeoDataFrame({"rank": [1, 2], "new_coverage": [41000.0, 17000.0], "district": ["310151", "310116"],
                              "lon": [121.55, 121.25], "lat": [31.68, 30.80]},
                             geometry=[Point(121.55, 31.68), Point(121.25, 30.80)], crs="EPSG:4326")
    folder = tmp_path_factory.mktemp("browser")
    page = folder / "planning_map.html"
    page.write_text(render_html(planning_map(service, coverage, gaps, proposed_sites=sites, mode="inline")),
                    encoding="utf-8")
    report = write_coverage_report(folder / "report", service, coverage, gaps)["report.html"]
    _FIRST_GAP["point"] = gaps[0].geometry.representative_point()   # a point inside the top gap, to hover
    return page, report


def _open(page, path):
    page.goto(path.as_uri())
    page.wait_for_selector(".geoserver-legend", state="attached", timeout=15_000)
    page.wait_for_function("document.querySelectorAll('.leaflet-gs-districts-pane path').length >= 16")
    page.wait_for_function("document.querySelectorAll('.marker-cluster').length > 0")
    page.wait_for_timeout(700)  # let the clusters finish their fade-in before the screenshot


_FIRST_GAP: dict = {}


@pytest.mark.parametrize("viewport,name", [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_planning_map_in_browser(browser, rendered, viewport, name):
    path, _ = rendered
    with browser_page(browser, viewport) as (page, log):
        _open(page, path)
        shot = screenshot(page, f"planning_map_{name}.png")
        assert log.requests == [path.as_uri()]  # everything is inside the file: no request at all
        assert log.problems == []

        districts = page.locator(".leaflet-gs-districts-pane path")
        assert districts.count() == 16
        fills = set(districts.evaluate_all("els => els.map(e => e.getAttribute('fill'))"))
        assert len(fills) >= 3  # the choropleth uses several classes
        assert page.locator(".leaflet-control-layers").count() == 1
        assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
        assert page.locator(".marker-cluster").count() > 5
        assert page.locator(".leaflet-gs-proposed-pane path").count() == 4  # two sites: dot + catchment each
        legend = page.locator(".geoserver-legend")
        assert legend.is_visible()
        box = legend.bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        if name == "phone":  # folded to its title, the layer control to its button
            assert not page.locator(".geoserver-legend details").evaluate("d => d.open")
            assert page.locator(".leaflet-control-layers-expanded").count() == 0
            page.locator(".geoserver-legend summary").click()
            assert page.locator(".geoserver-legend details").evaluate("d => d.open")
            assert "示例数据" in legend.inner_text()
        else:
            text = legend.inner_text()
            for word in ("图例", "覆盖率", "未覆盖人口", "新增站点", "示例数据", "SAMPLE"):
                assert word in text, word
            # hovering shows the gap's tooltip; with gaps and stations switched off in the layer control, the
            # district's (district, 覆盖率, 未覆盖人口)
            inside = _FIRST_GAP["point"]
            page.mouse.move(*_point_in(page, inside.y, inside.x))
            gap_tip = page.locator(".leaflet-tooltip", has_text="缺口 Gap")
            gap_tip.wait_for(timeout=5_000)
            assert "#1" in gap_tip.inner_text() and "未覆盖人口" in gap_tip.inner_text()
            assert "一个新站可新覆盖" in gap_tip.inner_text() and "建议位置" in gap_tip.inner_text()
            page.mouse.move(5, 300)
            for label in ("覆盖缺口", "现有站点"):
                page.locator(".leaflet-control-layers-overlays label", has_text=label).locator("input").uncheck()
            assert page.locator(".leaflet-gs-gaps-pane path").count() == 0
            page.mouse.move(*_point_in(page, 31.62, 121.75))     # Chongming
            tip = page.locator(".leaflet-tooltip", has_text="覆盖率")
            tip.wait_for(timeout=5_000)
            assert "崇明区" in tip.inner_text() and "未覆盖人口" in tip.inner_text()
        assert shot.stat().st_size > 20_000
        assert log.problems == []


def _point_in(page, lat, lon):
    """Viewport pixel of a WGS84 point on the (only) Leaflet map of the page."""
    return page.evaluate(
        """([lat, lon]) => {
            const name = Object.keys(window).find(k => k.startsWith("map_") && window[k] instanceof L.Map);
            const map = window[name];
            const p = map.latLngToContainerPoint([lat, lon]);
            const r = map.getContainer().getBoundingClientRect();
            return [r.left + p.x, r.top + p.y];
        }""", [lat, lon])


def test_station_popup_in_browser(browser, rendered):
    path, _ = rendered
    with browser_page(browser, DESKTOP) as (page, log):
        _open(page, path)
        page.evaluate("""() => {
            const name = Object.keys(window).find(k => k.startsWith("map_") && window[k] instanceof L.Map);
            window[name].setView([31.193477, 121.471607], 17, {animate: false});
        }""")  # the first sample station; clusters break up from zoom 15
        page.wait_for_timeout(300)
        page.mouse.click(*_point_in(page, 31.193477, 121.471607))
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        text = popup.inner_text()
        assert "黄浦区环卫作息点户外职工爱心接力站（示例0001）" in text and "服务 Services" in text
        assert "补水" in text and "24/7" in text and "示例数据" in text
        assert log.problems == []


def test_coverage_report_in_browser(browser, rendered):
    _, report = rendered
    with browser_page(browser, {"width": 1100, "height": 1400}) as (page, log):
        page.goto(report.as_uri())
        frame = page.frame_locator("iframe.map")
        frame.locator(".geoserver-legend").wait_for(timeout=15_000)
        assert page.locator("svg.chart").count() == 2 and page.locator("table").count() >= 2
        screenshot(page, "coverage_report.png")
        assert all(u == report.as_uri() or u.startswith(("about:", "data:")) for u in log.requests), log.requests
        assert log.problems == []


@pytest.fixture(scope="module")
def vendor_server(service):
    """A loopback HTTP server playing the web app's part: ``/static/vendor/<path>`` from ``asset_file`` (as the
    Flask route does) and ``/map`` a served-mode planning map. Stopped at the end of the module."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from geoserver.render.assets import VENDOR_URL_PREFIX, asset_file

    require_vendor_assets()
    coverage = compute_coverage(service, "stations", Catchment(radius_m=1000), grid_demand(service, 500))
    page = render_html(planning_map(service, coverage, find_gaps(coverage), mode="served")).encode("utf-8")
    served = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            served.append(self.path)
            if self.path == "/map":
                body, ctype = page, "text/html; charset=utf-8"
            elif self.path.startswith(VENDOR_URL_PREFIX) and (f := asset_file(self.path[len(VENDOR_URL_PREFIX):])):
                body = f.read_bytes()
                ctype = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}.get(
                    f.suffix, "application/octet-stream")
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_served_mode_map_loads_its_assets_from_the_app(browser, vendor_server):
    base, served = vendor_server
    with browser_page(browser, PHONE) as (page, log):
        page.goto(base + "/map")
        page.wait_for_selector(".geoserver-legend", state="attached", timeout=15_000)
        page.wait_for_function("document.querySelectorAll('.leaflet-gs-districts-pane path').length >= 16")
        assert log.problems == []
        assert all(u.startswith(base + "/") for u in log.requests)
        # the scripts, the stylesheets and the layer-control icon that leaflet.css refers to
        assert {"/static/vendor/leaflet/dist/leaflet.js", "/static/vendor/leaflet/dist/leaflet.css",
                "/static/vendor/leaflet.heat/dist/leaflet-heat.js",
                "/static/vendor/leaflet.markercluster/dist/leaflet.markercluster.js"} <= set(served)
        assert any(p.startswith("/static/vendor/leaflet/dist/images/layers") for p in served)
