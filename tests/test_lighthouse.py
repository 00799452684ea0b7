"""Lighthouse (tests/js/node_modules, pinned) on the workers' web map, served by the production server
(``geoserver serve``), in Debian's Chromium with Lighthouse's mobile settings.

The accessibility score is deterministic (axe-core's rules on the rendered page), so it is asserted: 1.0 on the
page as it opens and on a deep link to a position. Performance and best practices are only checked to be scored
(numbers between 0 and 1): their figures depend on the machine and are recorded by benchmarks/bench_lighthouse.py,
not asserted here. Tiles come from a tile server on 127.0.0.1, so Lighthouse's Chromium reaches nothing outside."""

from __future__ import annotations

import pytest

from tests.browser_support import lighthouse, require_chromium, require_vendor_assets, tile_server
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.external

PAGES = {"first_visit": "/", "deep_link": "/?lon=121.4737&lat=31.2304&layer=stations"}


@pytest.fixture(scope="module")
def server():
    require_vendor_assets()
    require_chromium()
    with tile_server() as tiles:
        url, proc = start_server({"GEOSERVER_BASEMAPS": "osm", "GEOSERVER_TIANDITU_KEY": "",
                                  "GEOSERVER_TILES_URL": tiles.url + "/{z}/{x}/{y}.png",
                                  "GEOSERVER_TILES_ATTRIBUTION": "local stand-in tiles"}, workers=1)
        try:
            yield url, tiles
        finally:
            stop_server(proc)


@pytest.mark.parametrize("name", list(PAGES))
def test_lighthouse_mobile_accessibility_is_full_and_scores_are_present(server, name):
    url, tiles = server
    report = lighthouse(url + PAGES[name], form_factor="mobile")
    assert report["hosts"] == ["127.0.0.1"]  # the page, its API and the tile stand-in: nothing from outside
    for category in ("performance", "best-practices"):
        assert isinstance(report[category], (int, float)) and 0 <= report[category] <= 1, (category, report)
    assert all(isinstance(v, (int, float)) and v >= 0 for v in report["metrics"].values()), report["metrics"]
    failing = report["failed_audits"]["accessibility"]
    assert report["accessibility"] == 1.0, f"accessibility {report['accessibility']}: {failing}"
