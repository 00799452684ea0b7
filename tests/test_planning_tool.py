"""The planning tool on /planning: its data endpoint through the Flask app, and the page in real headless
Chromium (Debian's, via Playwright) against the production server: parameters change the numbers in place, a site
added by clicking the map (and dragged) and a station removed by clicking it give the same figures as the
scenario API, scenarios are saved and compared, and nothing is fetched from outside."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile

import pytest

from tests.browser_support import (DESKTOP, PHONE, axe_violations, browser_page, launch_browser,
                                   require_vendor_assets, screenshot)
from tests.conftest import start_server, stop_server

CHONGMING = (121.62, 31.66)   # lon, lat: farmland in Chongming, far from most stations


# --- /planning/data and the page through the Flask app ---------------------------------------------------------
def test_planning_data_for_a_radius(client):
    r = client.get("/planning/data?radius_m=1000")
    assert r.status_code == 200 and r.mimetype == "application/json"
    d = r.get_json()
    assert d["catchment"] == "straight-line (geodesic) radius 1000 m" and d["radius_m"] == 1000.0
    assert d["totals"]["covered_pct"] == 84.54 and d["gap_count"] == 900
    assert len(d["districts"]) == 16
    assert d["districts"]["310101"]["covered_label"] == "100.0 %" and d["districts"]["310101"]["color"] == "#4575b4"
    assert len(d["gaps"]["features"]) == 30 and d["gaps"]["features"][0]["properties"]["rank"] == 1
    assert 0 < len(d["heat"]) <= 20_000 and "facilities" not in d and d["sample"] is True
    assert [g["rank"] for g in d["gap_list"]] == list(range(1, 11))
    assert d["gap_list"][0]["districts"] == "嘉定区" and d["gap_list"][0]["coverable"] == 20638.5


def test_a_gaps_point_covers_what_the_gap_promises(client):
    """One new site at a gap's point newly covers exactly the people the gap says it would (the scenario's test:
    geodesic distance from the reported 6-decimal point), for the ten largest gaps at two radii."""
    for radius in (1000, 1500):
        gaps = client.get(f"/planning/data?radius_m={radius}").get_json()["gap_list"]
        for g in gaps:
            answer = client.post("/api/coverage/scenario", json={"radius_m": radius, "add": [g["site"]]}).get_json()
            assert answer["totals"]["newly_covered"] == g["coverable"], (radius, g)


def test_planning_data_with_facilities_and_filters(client):
    d = client.get("/planning/data?minutes=10&mode=ebike&facilities=1").get_json()
    assert d["catchment"].startswith("10 min by ebike")
    f = d["facilities"]
    assert len(f["ids"]) == len(f["rows"]) == 3400 and f["ids"][0].startswith("ST")
    assert f["labels"][0] == "服务 Services:" and "sample data" in f["note"]
    warm = client.get("/planning/data?radius_m=1000&services=heating&facilities=1").get_json()
    assert 0 < len(warm["facilities"]["ids"]) < 3400
    assert warm["totals"]["covered_pct"] < 84.54


@pytest.mark.parametrize("query, parameter", [
    ("facilities=2", "facilities"), ("radius_m=-5", "radius_m"), ("radius_m=1e9", "radius_m"),
    ("layer=nope", "layer"), ("colour=red", "colour"), ("minutes=10&mode=boat", "mode"),
])
def test_planning_data_refuses_bad_parameters(client, query, parameter):
    r = client.get("/planning/data?" + query)
    assert r.status_code == 400 and r.get_json()["parameter"] == parameter


def test_planning_page_carries_the_tool(client):
    r = client.get("/planning?k=0")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "/static/app/planning.js?v=" in html and "/static/app/planning.css?v=" in html
    assert "GeoPlanning.init({map: map_" in html
    config = json.loads(html.split("config: ", 1)[1].split("});", 1)[0])
    assert len(config["facility_ids"]) == 3400 and config["params"] == {"layer": "stations", "radius_m": 1000.0}
    assert config["urls"]["scenario"] == "/api/coverage/scenario" and config["limits"]["max_changes"] == 500
    assert [layer["id"] for layer in config["layers"]][:1] == ["stations"]
    for name, ctype in (("planning.js", "text/javascript"), ("planning.css", "text/css")):
        asset = client.get(f"/static/app/{name}")
        assert asset.status_code == 200 and asset.mimetype == ctype


def test_a_scenario_becomes_a_report_zip(client):
    body = {"layer": "stations", "radius_m": 1000, "add": [list(CHONGMING), [121.30, 30.90]], "remove": ["ST00001"]}
    expected = client.post("/api/coverage/scenario", json=body).get_json()["totals"]
    r = client.post("/api/coverage/scenario/report", json={**body, "name": "崇明加两站"})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    assert r.headers["Content-Disposition"] == 'attachment; filename="scenario-report.zip"'
    with zipfile.ZipFile(io.BytesIO(r.get_data())) as archive:
        names = sorted(n.split("/", 1)[1] for n in archive.namelist())
        summary = json.loads(archive.read("scenario-report/summary.json"))
        page = archive.read("scenario-report/report.html").decode("utf-8")
        pdf = archive.read("scenario-report/report.pdf")
    assert {"report.html", "report.pdf", "summary.json", "proposed_sites.csv", "gaps.geojson"} <= set(names)
    assert pdf.startswith(b"%PDF-")
    assert summary["title"] == "情景规划报告 Scenario report — 崇明加两站" and "崇明加两站" in page
    assert summary["after"]["totals"]["covered"] == expected["covered_after"]
    assert summary["before"]["totals"]["covered"] == expected["covered_before"]
    assert summary["after"]["facilities"] == 3400 - 1 + 2
    assert [round(s["new_coverage"], 1) for s in summary["proposed_sites"]] == [505.1, 2006.7]


@pytest.mark.parametrize("body, parameter", [
    ({"layer": "stations", "name": "x" * 61, "add": [list(CHONGMING)]}, "name"),
    ({"layer": "stations", "name": 5, "add": [list(CHONGMING)]}, "name"),
    ({"layer": "stations", "name": "nothing"}, "add"),
    ({"layer": "stations", "remove": ["NOPE"]}, "remove"),
])
def test_scenario_report_refuses_bad_bodies(client, body, parameter):
    r = client.post("/api/coverage/scenario/report", json=body)
    assert r.status_code == 400 and r.get_json()["parameter"] == parameter


# --- the page in Chromium ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    require_vendor_assets()
    url, proc = start_server(workers=1)
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def state(page, expr: str):
    return page.evaluate("() => { const S = GeoPlanning.state; return " + expr + "; }")


def open_tool(page, server, path="/planning?k=0"):
    """Open the page; a marker in the window tells later whether the page was ever loaded again."""
    page.goto(server + path)
    page.wait_for_selector("#gp-result .gp-big", state="attached", timeout=60_000)
    page.evaluate("() => { window.gpLoadedOnce = 'yes'; }")


def same_page(page) -> bool:
    return page.evaluate("() => window.gpLoadedOnce") == "yes"


def click_lonlat(page, lon: float, lat: float):
    pt = state(page, f"S.map.latLngToContainerPoint([{lat}, {lon}])")
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + pt["x"], box["y"] + pt["y"])


def test_tool_changes_numbers_in_place_and_matches_the_api(browser, server):
    with browser_page(browser, DESKTOP) as (page, log):
        open_tool(page, server)
        assert page.locator("#gp-result .gp-big").inner_text() == "84.54 %"
        # a larger radius: the coverage and the choropleth change without a page load
        page.fill("#gp-radius", "1500")
        page.locator("#gp-radius").dispatch_event("change")
        page.wait_for_selector("#gp-catchment >> text=straight-line (geodesic) radius 1500 m", timeout=60_000)
        page.wait_for_selector("#gp-result .gp-big >> text=92.72 %", timeout=30_000)
        assert page.locator(".geoserver-legend .gs-note").first.inner_text() == \
            "服务范围 Catchment: straight-line (geodesic) radius 1500 m"
        assert "radius_m=1500" in page.url
        # add a site by clicking the map in Chongming
        page.click('.gp-mode button[data-mode="add"]')
        state(page, f"S.map.setView([{CHONGMING[1]}, {CHONGMING[0]}], 12)")
        page.wait_for_timeout(300)
        click_lonlat(page, *CHONGMING)
        page.wait_for_selector("#gp-newly", timeout=30_000)
        site = state(page, "[S.scenario.add[0].lon, S.scenario.add[0].lat]")
        assert abs(site[0] - CHONGMING[0]) < 0.001 and abs(site[1] - CHONGMING[1]) < 0.001
        api = post_json(server + "/api/coverage/scenario",
                        {"layer": "stations", "radius_m": 1500,
                         "add": [[round(site[0], 6), round(site[1], 6)]]})
        gained = api["totals"]["newly_covered"]
        assert gained > 0
        assert page.locator("#gp-newly").inner_text() == f"{round(gained):,} 人"
        assert page.locator("#gp-added li .gp-site-gain").inner_text().startswith(f"+{round(gained):,} 人 · 崇明区")
        screenshot(page, "planning_tool_added.png")
        # the largest gap's point, added from the list: the gap's promise, as the scenario counts it
        first_gap = state(page, "S.gapList[0]")
        page.click("#gp-gap-list li:first-child .gp-use")
        page.wait_for_function("() => GeoPlanning.state.scenario.add.length === 2", timeout=10_000)
        both = post_json(server + "/api/coverage/scenario",
                         {"layer": "stations", "radius_m": 1500,
                          "add": [[round(site[0], 6), round(site[1], 6)], first_gap["site"]]})
        page.wait_for_selector(f"#gp-newly >> text={round(both['totals']['newly_covered']):,} 人", timeout=30_000)
        assert both["sites"][1]["newly_covered"] == first_gap["coverable"]
        page.click("#gp-added li:nth-child(2) .gp-x")
        page.wait_for_selector(f"#gp-newly >> text={round(gained):,} 人", timeout=30_000)
        # drag the site 2 km east: the numbers follow
        before = page.locator("#gp-newly").inner_text()
        start = state(page, f"S.map.latLngToContainerPoint([{CHONGMING[1]}, {CHONGMING[0]}])")
        end = state(page, f"S.map.latLngToContainerPoint([{CHONGMING[1]}, {CHONGMING[0] + 0.021}])")
        box = page.locator(".folium-map").bounding_box()
        page.mouse.move(box["x"] + start["x"], box["y"] + start["y"])
        page.mouse.down()
        page.mouse.move(box["x"] + (start["x"] + end["x"]) / 2, box["y"] + start["y"], steps=5)
        page.mouse.move(box["x"] + end["x"], box["y"] + end["y"], steps=5)
        page.mouse.up()
        page.wait_for_function("() => GeoPlanning.state.scenario.add[0].lon > %f" % (CHONGMING[0] + 0.01),
                               timeout=10_000)
        moved = state(page, "[S.scenario.add[0].lon, S.scenario.add[0].lat]")
        api2 = post_json(server + "/api/coverage/scenario",
                         {"layer": "stations", "radius_m": 1500, "add": [[round(moved[0], 6), round(moved[1], 6)]]})
        expected = f"{round(api2['totals']['newly_covered']):,} 人"
        page.wait_for_selector(f"#gp-newly >> text={expected}", timeout=30_000)
        assert expected != before
        assert same_page(page)   # no page load: only the URL's query was replaced
        assert log.problems == [] and log.external == []


def test_tool_removes_a_station_by_clicking_it_and_compares_saved_scenarios(browser, server):
    with browser_page(browser, DESKTOP) as (page, log):
        open_tool(page, server)
        ids = state(page, "S.facilities.ids")
        rows = state(page, "S.facilities.rows.map(r => [r[0], r[1]])")
        lat, lon = rows[0]
        page.click('.gp-mode button[data-mode="remove"]')
        state(page, f"S.map.setView([{lat}, {lon}], 17)")
        page.wait_for_timeout(800)
        click_lonlat(page, lon, lat)
        page.wait_for_selector("#gp-removed li", timeout=30_000)
        assert state(page, "Object.keys(S.scenario.remove)") == [ids[0]]
        api = post_json(server + "/api/coverage/scenario", {"layer": "stations", "radius_m": 1000,
                                                            "remove": [ids[0]]})
        lost = round(api["removed"][0]["no_longer_covered"])
        page.wait_for_selector(f"#gp-removed .gp-site-loss >> text={'−' if lost else ''}{lost:,} 人", timeout=30_000)
        assert page.locator("#gp-change").inner_text() == (f"−{lost:,} 人" if lost else "±0 人")
        # save it, add a site, save again, compare the two
        page.fill("#gp-name", "A 移除一站")
        page.click("#gp-save")
        page.click('.gp-mode button[data-mode="add"]')
        state(page, f"S.map.setView([{CHONGMING[1]}, {CHONGMING[0]}], 12)")
        page.wait_for_timeout(300)
        click_lonlat(page, *CHONGMING)
        page.wait_for_selector("#gp-added li .gp-site-gain >> text=/崇明区/", timeout=30_000)
        page.fill("#gp-name", "B 加一站")
        page.click("#gp-save")
        boxes = page.locator("#gp-saved input[type=checkbox]")
        assert boxes.count() == 2
        boxes.nth(0).check()
        boxes.nth(1).check()
        page.click("#gp-compare-btn")
        table = page.locator("#gp-compare table")
        assert table.locator("th").nth(1).inner_text() == "A 移除一站"
        assert table.locator("th").nth(2).inner_text() == "B 加一站"
        assert "新增站点 Sites added\t0\t1" in table.inner_text()
        saved = json.loads(page.evaluate("() => localStorage.getItem('geoserver.planning.scenarios')"))
        assert saved[1]["add"] and saved[1]["remove"] == [ids[0]]
        screenshot(page, "planning_tool_compare.png")
        # the current scenario as the planning report
        with page.expect_download(timeout=120_000) as download:
            page.click("#gp-report")
        with zipfile.ZipFile(download.value.path()) as archive:
            summary = json.loads(archive.read("scenario-report/summary.json"))
            assert archive.read("scenario-report/report.pdf").startswith(b"%PDF-")
        assert summary["title"] == "情景规划报告 Scenario report — B 加一站"
        assert len(summary["proposed_sites"]) == 1 and summary["after"]["facilities"] == 3400
        page.wait_for_selector("#gp-status >> text=报告已下载 Report downloaded")
        # load scenario A again: one station removed, no site added
        page.locator("#gp-saved .gp-load").nth(0).click()
        page.wait_for_function("() => GeoPlanning.state.scenario.add.length === 0", timeout=30_000)
        page.wait_for_selector(f"#gp-removed .gp-site-loss >> text={'−' if lost else ''}{lost:,} 人", timeout=30_000)
        assert page.locator("#gp-added li").count() == 0 and page.locator("#gp-removed li").count() == 1
        assert log.problems == [] and log.external == []


def test_tool_on_a_phone(browser, server):
    with browser_page(browser, PHONE) as (page, log):
        open_tool(page, server)
        panel = page.locator("#gp-panel").bounding_box()
        assert panel["y"] + panel["height"] == pytest.approx(PHONE["height"], abs=2) and panel["width"] == PHONE["width"]
        assert page.locator("#gp-panel details").get_attribute("open") is None   # folded: the map stays visible
        assert page.locator("#gp-summary-pct").inner_text() == "84.54 %"          # the figure shows folded too
        page.click("#gp-panel summary")
        page.select_option("#gp-how", "walk")
        page.wait_for_selector("#gp-catchment >> text=/15 min by walk/", timeout=60_000)
        assert page.locator("#gp-minutes").is_visible() and not page.locator("#gp-radius").is_visible()
        screenshot(page, "planning_tool_phone.png")
        assert log.problems == [] and log.external == []


# --- a downloaded scenario through the command line ----------------------------------------------------------------
def test_report_scenario_command(tmp_path):
    from click.testing import CliRunner

    from geoserver.cli import main

    saved = {"name": "崇明加两站", "params": {"layer": "stations", "radius_m": 1000},
             "add": [list(CHONGMING), [121.30, 30.90]], "remove": ["ST00001"], "totals": {"ignored": True}}
    (tmp_path / "s.json").write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "report"
    env = {"GEOSERVER_DATABASE_URL": None}
    result = CliRunner().invoke(main, ["report", "scenario", str(tmp_path / "s.json"), "--out", str(out),
                                       "--no-pdf"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == ("scenario: 84.545 % -> 84.555 % (2,512 newly covered, 0 no longer "
                                             "covered)")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["title"] == "情景规划报告 Scenario report — 崇明加两站"
    assert summary["after"]["totals"]["covered"] - summary["before"]["totals"]["covered"] == pytest.approx(2511.8,
                                                                                                           abs=0.2)
    first = summary["executive_summary"]["zh"][0]
    assert "同时移除现有站点：黄浦区环卫作息点户外职工爱心接力站（示例0001） (ST00001)" in first
    assert not (out / "report.pdf").exists() and (out / "report.html").exists()
    # bad files: one line each, nothing written
    for text, message in (("nope", "not JSON"), ("[1]", "a scenario file is a JSON object"),
                          ('{"params": {"layer": "stations"}, "add": [[200, 31]]}', "add[0]: lon=200"),
                          ('{"params": {"layer": "stations"}}', "nothing to try")):
        (tmp_path / "bad.json").write_text(text, encoding="utf-8")
        bad = CliRunner().invoke(main, ["report", "scenario", str(tmp_path / "bad.json"), "--out",
                                        str(tmp_path / "never")], env=env)
        assert bad.exit_code == 1 and message in bad.output and "Traceback" not in bad.output, bad.output
        assert not (tmp_path / "never").exists()


def test_report_base_map_from_configuration(tmp_path, client):
    from click.testing import CliRunner

    from geoserver.cli import main

    (tmp_path / "s.json").write_text(json.dumps({"params": {"layer": "stations"}, "add": [list(CHONGMING)]}),
                                     encoding="utf-8")
    env = {"GEOSERVER_DATABASE_URL": None, "GEOSERVER_TILES_URL": "https://tiles.example.org/{z}/{x}/{y}.png",
           "GEOSERVER_TILES_ATTRIBUTION": "© Example tiles"}
    result = CliRunner().invoke(main, ["report", "scenario", str(tmp_path / "s.json"), "--out", str(tmp_path / "r"),
                                       "--no-pdf"], env=env)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "https://tiles.example.org/{z}/{x}/{y}.png" in page and "Example tiles" in page
    bad = CliRunner().invoke(main, ["report", "scenario", str(tmp_path / "s.json"), "--out", str(tmp_path / "n"),
                                    "--tiles-url", "https://tiles.example.org/tile.png"], env=env)
    assert bad.exit_code == 2 and "--tiles-url" in bad.output and not (tmp_path / "n").exists()
    # without configuration the report needs no network
    plain = CliRunner().invoke(main, ["report", "scenario", str(tmp_path / "s.json"), "--out", str(tmp_path / "p"),
                                      "--no-pdf"], env={"GEOSERVER_DATABASE_URL": None, "GEOSERVER_TILES_URL": None})
    assert plain.exit_code == 0 and "tiles.example.org" not in (tmp_path / "p" / "report.html").read_text("utf-8")


def test_tool_panel_has_no_serious_accessibility_problems(browser, server):
    """axe-core (WCAG 2 A/AA and best practices) on the tool's panel, open, with a scenario and a saved one."""
    with browser_page(browser, DESKTOP) as (page, log):
        open_tool(page, server)
        page.click("#gp-gap-list li:first-child .gp-use")
        page.wait_for_selector("#gp-newly", timeout=30_000)
        page.fill("#gp-name", "axe")
        page.click("#gp-save")
        found = axe_violations(page, context="#gp-panel")
        assert found == [], [f"{v['id']}: {v['help']} at {v['targets'][:3]}" for v in found]
        assert log.problems == [] and log.external == []
