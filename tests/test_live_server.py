"""The production server process (`geoserver serve`, Granian) and a real OGC client: GDAL's ogrinfo (OAPIF)."""

import gzip
import json
import shutil
import subprocess
import urllib.request

import pytest

pytestmark = pytest.mark.external

EXPECTED = {"stations": 3400, "driver_homes": 60, "gig_markets": 12, "canteens": 600, "fitness_stations": 110,
            "rest_rooms": 1000, "districts": 16}


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.headers, resp.read()


def ogrinfo(*args) -> str:
    exe = shutil.which("ogrinfo")
    assert exe, "ogrinfo (Debian package gdal-bin) is required; .ci/run installs it"
    result = subprocess.run([exe, "-ro", *args], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_served_over_http_with_gzip_and_etag(live_server):
    status, headers, body = get(live_server + "/healthz")
    assert status == 200 and json.loads(body)["layers"] == EXPECTED
    status, headers, body = get(live_server + "/ogc/collections/stations/items?limit=1000",
                                {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["numberReturned"] == 1000
    req = urllib.request.Request(live_server + "/ogc/collections/stations/items?limit=1000",
                                 headers={"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 304


def test_ogrinfo_lists_every_collection(live_server):
    out = ogrinfo(f"OAPIF:{live_server}/ogc")
    for i, layer in enumerate(EXPECTED, start=1):
        assert f"{i}: {layer} " in out
    assert "(Multi Polygon)" in out


@pytest.mark.parametrize("layer", list(EXPECTED))
def test_ogrinfo_reads_every_feature(live_server, layer):
    out = ogrinfo("-al", f"OAPIF:{live_server}/ogc", layer)
    assert out.count("OGRFeature(") == EXPECTED[layer]
    assert "contact_phone" not in out


def test_ogrinfo_summary_and_spatial_filter(live_server, service):
    out = ogrinfo("-so", f"OAPIF:{live_server}/ogc", "stations")
    assert "Feature Count: 3400" in out and "services: StringList" in out
    out = ogrinfo("-al", "-spat", "121.45", "31.20", "121.50", "31.25", f"OAPIF:{live_server}/ogc", "stations")
    lay = service.layers["stations"]
    assert out.count("OGRFeature(") == len(lay.index.bbox(121.45, 31.20, 121.50, 31.25))


def test_planning_page_in_chromium_through_the_production_server(live_server):
    """/planning served by Granian: assets come from /static/vendor, nothing leaves the machine, no JS errors."""
    from tests.browser_support import DESKTOP, browser_page, screenshot

    with browser_page(viewport=DESKTOP) as (page, log):
        page.goto(live_server + "/planning?k=5&radius_m=1000&cell_m=500", wait_until="networkidle", timeout=120_000)
        page.wait_for_selector(".leaflet-control-layers", timeout=30_000)
        assert page.locator(".geoserver-legend").count() == 1
        assert page.locator("path.leaflet-interactive").count() > 16  # districts, gaps and catchments drawn
        screenshot(page, "planning_page_live.png")
    assert log.problems == []
    assert any("/static/vendor/leaflet/dist/leaflet.js" in u for u in log.requests)
