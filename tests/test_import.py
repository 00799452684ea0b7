"""Importing facility lists: the sample forms in tests/data/import/, every check with its exact bilingual message,
row and column, and the CLI modes (dry run, all or nothing, --skip-invalid, merge, replace, reports).

Checks run on a module-wide copy of the bundled data; anything that writes gets its own copy (``stored_data``), once
in GeoPackage files and once in a PostGIS database loaded from them: the same assertions hold for both backends.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.core import crs
from geoserver.core.importer import ImportOptions, read_mapping_file
from geoserver.core.manage import DataManager, ImportRefused
from geoserver.core.service import DEFAULT_DATA_DIR, GeoService
from geoserver.core.tabular import ImportFileError

FORMS = Path(__file__).resolve().parent / "data" / "import"
ALLOWED = "补水、休憩、取暖、纳凉、充电、热饭、如厕、临时停车、医药箱、无线网络、阅读、法律服务、微心愿"
HEADER = ["名称", "行政区", "街镇", "具体门牌号", "所属单位", "提供设施及服务", "开放时间", "手机号码", "面积", "经度",
          "纬度"]

# The real WGS84 positions the sample forms were made from (make_forms.py), as literals.
GBK_EXPECTED = {  # name -> (stored 街镇, lon, lat, services)
    "人民广场户外职工爱心接力站": ("南京东路街道", 121.4737, 31.2304, ["charging", "microwave", "rest", "water"]),
    "豫园商城工会驿站": ("豫园街道", 121.4921, 31.2272, ["first_aid", "rest", "toilet", "water"]),
    "新天地快递小哥驿站": ("淮海中路街道", 121.4750, 31.2190, ["charging", "microwave", "water", "wifi"]),
    "田子坊爱心接力站": ("打浦桥街道", 121.4690, 31.2080, ["cooling", "heating", "rest", "water"]),
    "老西门环卫工人休息点": ("老西门街道", 121.4830, 31.2180, ["microwave", "parking", "water"]),
    "瑞金医院东门工会驿站": ("瑞金二路街道", 121.4680, 31.2130, ["charging", "reading", "rest", "water"]),
    "南京路步行街户外职工驿站": ("南京东路街道", 121.4800, 31.2360, ["charging", "rest", "water", "wish_corner"]),
}
GCJ_WGS84 = {
    "五角场万达广场工会驿站": (121.5140, 31.3017),
    "陆家嘴金融城爱心接力站": (121.5055, 31.2397),
    "彭浦新村户外职工驿站": (121.4480, 31.3060),
    "虹口足球场环卫驿站": (121.4815, 31.2730),
    "松江大学城快递小哥驿站": (121.2100, 31.0500),
}
BD_WGS84 = {
    "世纪公园北门工会驿站": (121.5510, 31.2160),
    "张江科学城户外职工爱心接力站": (121.5870, 31.2030),
    "控江路环卫工人驿站": (121.5300, 31.2800),
    "上海南站快递驿站": (121.4300, 31.1550),
}


# --- helpers ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checker(tmp_path_factory) -> DataManager:
    """A DataManager on a copy of the bundled data, for checks that write nothing."""
    d = tmp_path_factory.mktemp("check") / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, d)
    return DataManager(GeoService(data_dir=d))


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    """A private copy of the bundled data directory for tests that import."""
    d = tmp_path / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, d)
    return d


def row(name="测试驿站", district="黄浦区", sub="南京东路街道", address="人民大道1号", host="南京东路街道总工会",
        services="补水", hours="24/7", phone="10021000001", area="30", lon="121.4737", lat="31.2304") -> list[str]:
    return [name, district, sub, address, host, services, hours, phone, area, lon, lat]


def write_csv(path: Path, rows, header=HEADER, encoding="utf-8") -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def check(checker, tmp_path, rows, header=HEADER, datum="wgs84", mode="merge", name="form.csv"):
    path = write_csv(tmp_path / name, rows, header)
    return checker.check("stations", path, ImportOptions(datum=datum, mode=mode))


def problems(report) -> list[tuple]:
    return [(p.row, p.column, p.code, p.zh, p.en) for p in report.problems]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the sample forms ---------------------------------------------------------------------------------------
def test_sample_forms_are_what_make_forms_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_forms", FORMS / "make_forms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write_all(tmp_path)
    assert sorted(p.name for p in written) == ["stations_bd09.csv", "stations_gbk.csv", "stations_gcj02.geojson",
                                               "stations_merged_header.xlsx"]
    for p in written:
        assert p.read_bytes() == (FORMS / p.name).read_bytes(), f"{p.name} differs: run make_forms.py again"


def test_gbk_csv_is_detected_and_imported_with_wgs84_positions(stored_data):
    raw = (FORMS / "stations_gbk.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.decode("gbk").startswith("黄浦区工会驿站申报汇总表,")
    store = stored_data()
    manager = store.manager()
    outcome = manager.import_file("stations", FORMS / "stations_gbk.csv", ImportOptions(datum="wgs84"), who="test")
    report = outcome.report
    assert report.problems == []
    assert report.notes == ["header found in row 2; data starts in row 3"]
    assert report.record_rows == [3, 4, 5, 6, 7, 8, 9]
    assert report.mapping == {"名称": "name", "行政区": "district", "街镇": "subdistrict", "具体门牌号": "address",
                              "点位联系人": "contact_name", "手机号码": "contact_phone", "所属单位": "host_org",
                              "面积": "area_m2", "提供设施及服务": "services", "开放时间": "opening_hours",
                              "经度": "lon", "纬度": "lat"}
    assert report.ignored_columns == []        # 序号, 覆盖企业（单位）数, 计划投入资金 are form-only columns
    assert (outcome.change.version, len(outcome.change.added), outcome.change.features) == (2, 7, 3407)

    found = store.features()
    assert len(found) == 3407
    for name, (sub, lon, lat, services) in GBK_EXPECTED.items():
        fid, props, x, y = found[name]
        assert (props["district"], props["district_code"], props["subdistrict"]) == ("黄浦区", "310101", sub)
        assert (x, y) == (lon, lat)
        assert props["services"] == services
        assert props["source"] == "import:stations_gbk.csv"
    assert [found[n][0] for n in GBK_EXPECTED] == [f"ST0340{i}" for i in range(1, 8)]
    fid, props, _, _ = found["新天地快递小哥驿站"]
    assert (props["address"], props["host_org"], props["area_m2"], props["opening_hours"]) == \
        ("马当路245号", "淮海中路街道工会联合会", 60.0, "Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00")
    stored = store.records()["ST03401"]                       # private fields too
    assert (stored["contact_name"], stored["contact_phone"]) == ("王敏", "10021000001")


def test_xlsx_with_merged_header_maps_every_column_and_fills_merged_district(checker):
    report = checker.check("stations", FORMS / "stations_merged_header.xlsx", ImportOptions(datum="wgs84"))
    assert report.mapping == {"名称": "name", "行政区": "district", "街镇": "subdistrict", "具体门牌号": "address",
                              "点位联系人": "contact_name", "手机号码": "contact_phone", "所属单位": "host_org",
                              "面积（平方米）": "area_m2", "提供设施及服务": "services", "开放时间": "opening_hours",
                              "经度": "lon", "纬度": "lat"}
    assert report.ignored_columns == []
    assert report.notes == ["header found in row 3; data starts in row 4"]
    # rows 4-10 as Excel numbers them; the 合计 row (11, with three totals) is not a facility
    assert report.rows == 7 and report.rejected_rows == []
    assert report.record_rows == [4, 5, 6, 7, 8, 9, 10]
    by_name = {r["name"]: r for r in report.records}
    assert [(r["district"], r["district_code"]) for r in report.records] == \
        [("徐汇区", "310104")] * 5 + [("长宁区", "310105")] * 2     # C4:C8 and C9:C10 are merged cells
    r = by_name["衡山路户外职工爱心接力站"]
    assert (r["contact_phone"], r["area_m2"], r["services"], r["_lon"], r["_lat"]) == \
        ("10021000012", 32.5, "cooling,heating,water", 121.446, 31.205)
    assert by_name["徐家汇商圈工会驿站"]["opening_hours"] == "24/7"
    assert by_name["龙华寺东侧环卫驿站"]["opening_hours"] == "Mo-Fr 09:00-17:00"
    assert [(p.row, p.column, p.severity, p.zh, p.en) for p in report.problems] == [
        (4, "开放时间", "warning", "开放时间“全天”已按“24/7”导入", "opening hours '全天' imported as '24/7'"),
        (6, "开放时间", "warning", "开放时间“周一至周五 9:00-17:00”已按“Mo-Fr 09:00-17:00”导入",
         "opening hours '周一至周五 9:00-17:00' imported as 'Mo-Fr 09:00-17:00'"),
    ]
    assert report.lines()[:2] == ["第4行，开放时间：开放时间“全天”已按“24/7”导入（提示）",
                                  "  row 4, 开放时间: opening hours '全天' imported as '24/7' (warning)"]


def test_xlsx_problems_are_reported_at_the_excel_row(checker, tmp_path):
    book = openpyxl.load_workbook(FORMS / "stations_merged_header.xlsx")
    ws = book.active
    ws["N5"], ws["O5"] = 121.4168, 31.2197      # row 5 (徐汇区 by the merged C4:C8) moved to 中山公园, 长宁区
    ws["O8"] = "31.175x"
    ws["D9"] = "华阳路街"                        # 行政区 of row 9 is only in the merged C9:C10
    ws["G10"] = 12345
    path = tmp_path / "bad.xlsx"
    book.save(path)
    report = checker.check("stations", path, ImportOptions(datum="wgs84"))
    assert problems(report) == [
        (4, "开放时间", "hours_normalised", "开放时间“全天”已按“24/7”导入", "opening hours '全天' imported as '24/7'"),
        (5, "行政区", "district_mismatch", "坐标位于长宁区，与行政区“徐汇区”不符",
         "the point lies in 长宁区 (Changning), not in '徐汇区'"),
        (6, "开放时间", "hours_normalised", "开放时间“周一至周五 9:00-17:00”已按“Mo-Fr 09:00-17:00”导入",
         "opening hours '周一至周五 9:00-17:00' imported as 'Mo-Fr 09:00-17:00'"),
        (8, "纬度", "coord_not_number", "不是数字：“31.175x”", "not a number: '31.175x'"),
        (9, "街镇", "subdistrict_unknown", "长宁区没有名为“华阳路街”的街镇，是否为“华阳路街道”？",
         "长宁区 (Changning) has no sub-district (街镇) named '华阳路街'; did you mean '华阳路街道'?"),
        (10, "手机号码", "phone_invalid", "不是有效的电话号码：“12345”", "not a phone number: '12345'"),
    ]
    assert report.rejected_rows == [5, 8, 9, 10] and report.record_rows == [4, 6, 7]


def test_gcj02_geojson_is_stored_in_wgs84_and_wrongly_declared_lands_500_m_off(stored_data):
    right, wrong = stored_data("right"), stored_data("wrong")
    form = FORMS / "stations_gcj02.geojson"
    result = right.cli("import", "stations", form, "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "stations: version 2: 5 added, 0 updated, 0 removed, 3400 unchanged; 3405 features (已导入)" in result.output
    found = right.features()
    for name, (lon, lat) in GCJ_WGS84.items():
        _, props, x, y = found[name]
        assert float(crs.geodesic_distance_m(x, y, lon, lat)) < 0.5, name
    assert found["彭浦新村户外职工驿站"][1]["district"] == "静安区"

    result = wrong.cli("import", "stations", form, "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    found = wrong.features()
    for name, (lon, lat) in GCJ_WGS84.items():
        _, _, x, y = found[name]
        assert 300 < float(crs.geodesic_distance_m(x, y, lon, lat)) < 700, name


def test_bd09_single_coordinate_column(stored_data, checker):
    right = stored_data("right")
    form = FORMS / "stations_bd09.csv"
    result = right.cli("import", "stations", form, "--crs", "bd09")
    assert result.exit_code == 0, result.output
    assert "columns: 名称 -> name, 行政区 -> district, 街镇 -> subdistrict, 具体门牌号 -> address, 所属单位 -> " \
           "host_org, 提供设施及服务 -> services, 开放时间 -> opening_hours, 坐标 -> coordinates" in result.output
    found = right.features()
    for name, (lon, lat) in BD_WGS84.items():
        assert float(crs.geodesic_distance_m(found[name][2], found[name][3], lon, lat)) < 0.5, name
    # declared as WGS84, Baidu's coordinates are off by GCJ-02's ~500 m plus BD-09's own shift: about 1.1 km
    report = checker.check("stations", form, ImportOptions(datum="wgs84"))
    assert len(report.records) == 4
    for rec in report.records:
        lon, lat = BD_WGS84[rec["name"]]
        assert 900 < float(crs.geodesic_distance_m(rec["_lon"], rec["_lat"], lon, lat)) < 1400, rec["name"]


# --- bad input: one check at a time, exact messages ---------------------------------------------------------
def test_missing_coordinates(checker, tmp_path):
    """No coordinates at all: a pending row (a warning); one of the two missing: an error."""
    report = check(checker, tmp_path, [row(lon="", lat=""), row(name="乙", lat="")])
    assert problems(report) == [
        (2, "经度/纬度", "pending_no_coordinates", "没有坐标：已存为待定位（地理编码或在地图上标注后公开）",
         "no coordinates: stored as pending (待定位), public once geocoded or placed on the map"),
        (3, "纬度", "coord_missing", "缺少坐标", "coordinates are missing"),
    ]
    assert report.rejected_rows == [3] and report.pending == 1
    assert "_lon" not in report.records[0] and report.records[0]["district_code"] == "310101"
    header = ["名称", "行政区", "具体门牌号", "所属单位", "提供设施及服务", "开放时间", "坐标"]
    report = check(checker, tmp_path, [["丙", "黄浦区", "人民大道1号", "工会", "补水", "24/7", ""],
                                       ["丁", "黄浦区", "人民大道1号", "工会", "补水", "24/7", "121.4737"]], header)
    assert problems(report) == [
        (2, "坐标", "pending_no_coordinates", "没有坐标：已存为待定位（地理编码或在地图上标注后公开）",
         "no coordinates: stored as pending (待定位), public once geocoded or placed on the map"),
        (3, "坐标", "coord_pair", "无法识别的坐标“121.4737”，应为“经度,纬度”",
         "coordinates not understood: '121.4737' (expected 'lon,lat')"),
    ]


def test_feature_without_point_geometry(checker, tmp_path):
    props = {"名称": "甲", "行政区": "黄浦区", "具体门牌号": "人民大道1号", "所属单位": "工会", "提供设施及服务": "补水",
             "开放时间": "24/7"}
    square = [[[121.47, 31.23], [121.48, 31.23], [121.48, 31.24], [121.47, 31.23]]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": None},
        {"type": "Feature", "properties": {**props, "名称": "乙"}, "geometry": {"type": "Polygon", "coordinates": square}},
        {"type": "Feature", "properties": {**props, "名称": "丙"},
         "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]}}]}
    path = tmp_path / "f.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    report = checker.check("stations", path, ImportOptions())
    assert problems(report) == [
        (1, "geometry", "pending_no_coordinates", "没有坐标：已存为待定位（地理编码或在地图上标注后公开）",
         "no coordinates: stored as pending (待定位), public once geocoded or placed on the map"),
        (2, "geometry", "geometry_not_point", "几何类型为Polygon，应为点", "the geometry is a Polygon, not a point"),
    ]
    assert report.lines()[:2] == ["第1个要素，geometry：没有坐标：已存为待定位（地理编码或在地图上标注后公开）（提示）",
                                  "  feature 1, geometry: no coordinates: stored as pending (待定位), public once "
                                  "geocoded or placed on the map (warning)"]
    assert report.record_rows == [1, 3] and report.pending == 1


def test_coordinates_that_are_not_numbers(checker, tmp_path):
    report = check(checker, tmp_path, [row(lon="东经121度", lat="31.23x"), row(name="乙", lon="1e999")])
    assert problems(report) == [
        (2, "经度", "coord_not_number", "不是数字：“东经121度”", "not a number: '东经121度'"),
        (2, "纬度", "coord_not_number", "不是数字：“31.23x”", "not a number: '31.23x'"),
        (3, "经度", "coord_not_number", "不是数字：“1e999”", "not a number: '1e999'"),
    ]
    assert report.records == []


def test_degrees_minutes_seconds_are_read(checker, tmp_path):
    report = check(checker, tmp_path, [row(lon="121°28′25″E", lat="31°13′49″N"), row(name="乙", lon="121度29分31秒",
                                                                                    lat="31度13分38秒")])
    assert report.problems == []
    assert [(r["_lon"], r["_lat"]) for r in report.records] == [(121.4736111, 31.2302778), (121.4919444, 31.2272222)]


def test_point_outside_shanghai(checker, tmp_path):
    report = check(checker, tmp_path, [row(lon="116.3974", lat="39.9093")])     # Tian'anmen, Beijing
    assert problems(report) == [(2, "经度/纬度", "outside_shanghai", "坐标（116.3974, 39.9093）不在上海市范围内",
                                 "the point (116.3974, 39.9093) is outside Shanghai")]


def test_swapped_longitude_and_latitude(checker, tmp_path):
    report = check(checker, tmp_path, [row(lon="31.2304", lat="121.4737")])
    assert problems(report) == [(2, "经度", "coord_swapped", "经纬度填反了：“31.2304”应为纬度，另一列应为经度",
                                 "longitude and latitude are swapped: '31.2304' is a latitude and the other column a "
                                 "longitude")]


def test_district_mismatch(checker, tmp_path):
    report = check(checker, tmp_path, [row(lon="121.4365", lat="31.1951")])    # 徐家汇, written as 黄浦区
    assert problems(report) == [(2, "行政区", "district_mismatch", "坐标位于徐汇区，与行政区“黄浦区”不符",
                                 "the point lies in 徐汇区 (Xuhui), not in '黄浦区'")]


def test_district_mismatch_hints_at_gcj02_near_a_boundary(checker, tmp_path):
    # The Bund by 北京东路 (WGS84 121.4875, 31.2425) is 150 m inside 黄浦区 on the district polygons; its Amap
    # (GCJ-02) coordinates read as WGS84 lie ~300 m across the river line, in 浦东新区.
    gcj = ("121.491977", "31.240524")
    x, y = crs.wgs84_to_gcj02(121.4875, 31.2425)
    assert float(crs.geodesic_distance_m(x, y, float(gcj[0]), float(gcj[1]))) < 0.5
    rows = [row(name="外滩观光带户外职工驿站", sub="外滩街道", lon=gcj[0], lat=gcj[1])]
    report = check(checker, tmp_path, rows)
    assert problems(report) == [(
        2, "行政区", "district_mismatch",
        "坐标位于浦东新区，与行政区“黄浦区”不符；若坐标为GCJ-02（高德/腾讯）则相符，请检查坐标系（--crs gcj02）",
        "the point lies in 浦东新区 (Pudong New Area), not in '黄浦区'; it would match if the coordinates were GCJ-02 "
        "(Amap/Tencent): check the declared system (--crs gcj02)")]
    report = check(checker, tmp_path, rows, datum="gcj02")
    assert report.problems == []
    assert (report.records[0]["district"], report.records[0]["subdistrict"]) == ("黄浦区", "外滩街道")


def test_unknown_district(checker, tmp_path):
    report = check(checker, tmp_path, [row(district="黄埔区"), row(name="乙", district="火星区")])
    assert problems(report) == [
        (2, "行政区", "district_unknown", "未知的行政区“黄埔区”，是否为“黄浦区”？",
         "unknown district '黄埔区'; did you mean '黄浦区'?"),
        (3, "行政区", "district_unknown", "未知的行政区“火星区”", "unknown district '火星区'"),
    ]


def test_district_written_other_ways_and_left_empty(checker, tmp_path):
    report = check(checker, tmp_path, [row(district="Huangpu District"), row(name="乙", district="黄浦"),
                                       row(name="丙", district="")])
    assert problems(report) == [(4, "行政区", "district_filled", "行政区为空，已按坐标填为黄浦区",
                                 "district was empty; filled in from the point: 黄浦区")]
    assert [r["district"] for r in report.records] == ["黄浦区"] * 3


def test_unknown_subdistrict(checker, tmp_path):
    report = check(checker, tmp_path, [row(sub="南京东路街"), row(name="乙", sub="徐家汇街道"),
                                       row(name="丙", sub="南京东路")])
    assert problems(report) == [
        (2, "街镇", "subdistrict_unknown", "黄浦区没有名为“南京东路街”的街镇，是否为“南京东路街道”？",
         "黄浦区 (Huangpu) has no sub-district (街镇) named '南京东路街'; did you mean '南京东路街道'?"),
        # 徐家汇街道 exists, but in 徐汇区
        (3, "街镇", "subdistrict_unknown", "黄浦区没有名为“徐家汇街道”的街镇（“徐家汇街道”属于徐汇区）",
         "黄浦区 (Huangpu) has no sub-district (街镇) named '徐家汇街道' ('徐家汇街道' is in 徐汇区, Xuhui)"),
    ]
    assert report.records[0]["subdistrict"] == "南京东路街道"      # the short name is accepted


def test_services_not_in_the_vocabulary_or_not_in_the_layer(checker, tmp_path):
    report = check(checker, tmp_path, [row(services="补水、饮水机"), row(name="乙", services="蒸汽浴", lon="121.4921",
                                                                     lat="31.2272"),
                                       row(name="丙", services="淋浴,补水", lon="121.4750", lat="31.2190")])
    assert problems(report) == [
        (2, "提供设施及服务", "service_unknown", "未知的服务“饮水机”，是否为“补水”（water）？",
         "unknown service '饮水机'; did you mean 'Drinking water' (补水, water)?"),
        (3, "提供设施及服务", "service_unknown", f"未知的服务“蒸汽浴”（可用：{ALLOWED}）",
         f"unknown service '蒸汽浴' (allowed: {ALLOWED})"),
        (4, "提供设施及服务", "service_not_in_layer", f"本图层不提供服务“淋浴”（可用：{ALLOWED}）",
         f"service '淋浴' is not offered by this layer (allowed: {ALLOWED})"),
    ]


def test_duplicate_ids_in_the_file(checker, tmp_path):
    rows = [["HP-001", *row()], ["HP-002", *row(name="乙", lon="121.4921", lat="31.2272")],
            ["HP-001", *row(name="丙", lon="121.4750", lat="31.2190")]]
    report = check(checker, tmp_path, rows, ["编号", *HEADER])
    assert problems(report) == [(4, "编号", "duplicate_id", "编号“HP-001”与第2行重复", "id 'HP-001' is also used in row 2")]
    assert report.record_rows == [2, 3]


def test_same_name_three_metres_apart_in_the_file(checker, tmp_path):
    report = check(checker, tmp_path, [row(), row(lon="121.47373"), row(name="测试驿站", lon="121.4750", lat="31.2190")])
    assert problems(report) == [(3, "名称", "near_duplicate", "与第2行同名且相距2.9米，可能是同一设施",
                                 "same name as row 2, 2.9 m away: probably the same facility")]


def test_same_name_as_an_existing_feature(checker, tmp_path):
    # ST00001 of the bundled sample data is at 121.471607, 31.193477; 0.00002° east is 1.9 m away
    name = "黄浦区环卫作息点户外职工爱心接力站（示例0001）"
    layer = checker.service.layer("stations")
    assert (layer.ids[0], layer.properties[0]["name"], float(layer.index.lon[0]), float(layer.index.lat[0])) == \
        ("ST00001", name, 121.471607, 31.193477)
    rows = [["HP-NEW", *row(name=name, sub="", lon="121.471627", lat="31.193477")]]
    report = check(checker, tmp_path, rows, ["编号", *HEADER])
    assert problems(report) == [(2, "名称", "near_duplicate", "与现有设施ST00001同名且相距1.9米，可能是同一设施",
                                 "same name as existing feature ST00001, 1.9 m away: probably the same facility")]
    assert check(checker, tmp_path, rows, ["编号", *HEADER], mode="replace").problems == []   # the layer goes away
    # without an id the row is taken as ST00001 sent again: it updates it
    report = check(checker, tmp_path, [row(name=name, sub="", lon="121.471627", lat="31.193477")])
    assert report.problems == [] and report.records[0]["id"] == "ST00001"


def test_opening_hours(checker, tmp_path):
    report = check(checker, tmp_path, [row(hours="看天气"), row(name="乙", hours="全天", lon="121.4921", lat="31.2272"),
                                       row(name="丙", hours="周一至周五 9:00-17:00", lon="121.4750", lat="31.2190")])
    assert [(p.row, p.column, p.code, p.severity, p.zh, p.en) for p in report.problems] == [
        (2, "开放时间", "hours_malformed", "error", "无法识别的开放时间“看天气”（示例：Mo-Fr 08:00-18:00 或 24/7）",
         "opening hours not understood: '看天气' (use e.g. Mo-Fr 08:00-18:00 or 24/7)"),
        (3, "开放时间", "hours_normalised", "warning", "开放时间“全天”已按“24/7”导入",
         "opening hours '全天' imported as '24/7'"),
        (4, "开放时间", "hours_normalised", "warning", "开放时间“周一至周五 9:00-17:00”已按“Mo-Fr 09:00-17:00”导入",
         "opening hours '周一至周五 9:00-17:00' imported as 'Mo-Fr 09:00-17:00'"),
    ]
    assert report.record_rows == [3, 4]
    assert [r["opening_hours"] for r in report.records] == ["24/7", "Mo-Fr 09:00-17:00"]


def test_phone_numbers_and_areas(checker, tmp_path):
    rows = [row(phone="请联系居委"), row(name="乙", area="三十平米", lon="121.4921", lat="31.2272"),
            row(name="丙", area="-5", lon="121.4750", lat="31.2190"),
            row(name="丁", phone="138 1234 5678 / 021-6288 1234", area="45平方米", lon="121.4690", lat="31.2080")]
    report = check(checker, tmp_path, rows)
    assert problems(report) == [
        (2, "手机号码", "phone_invalid", "不是有效的电话号码：“请联系居委”", "not a phone number: '请联系居委'"),
        (3, "面积", "number_invalid", "不是数字：“三十平米”", "not a number: '三十平米'"),
        (4, "面积", "number_negative", "不能为负数：“-5”", "must not be negative: '-5'"),
    ]
    assert (report.records[0]["contact_phone"], report.records[0]["area_m2"]) == ("13812345678,02162881234", 45.0)


def test_missing_required_column_is_a_file_error(checker, tmp_path):
    header = [h for h in HEADER if h != "名称"]
    report = check(checker, tmp_path, [[c for h, c in zip(HEADER, row()) if h != "名称"]], header)
    assert problems(report) == [(None, "名称", "column_missing", "缺少必需的列“名称”", "required column missing: Name (名称)")]
    assert report.lines() == ["文件：缺少必需的列“名称”（错误）", "  file: required column missing: Name (名称) (error)"]
    assert report.rejected_rows == [2] and report.records == []


def test_missing_optional_columns_are_warnings(checker, tmp_path):
    """所属单位, 开放时间 and the coordinates may be missing: warnings; the rows are stored (pending without coordinates)."""
    keep = [h for h in HEADER if h not in ("所属单位", "开放时间", "经度", "纬度")]
    report = check(checker, tmp_path, [[c for h, c in zip(HEADER, row()) if h in keep]], keep)
    assert problems(report) == [
        (None, None, "coord_columns_missing", "没有坐标列：所有行存为待定位，地理编码或在地图上标注后公开",
         "no coordinate columns: every row is stored as pending (待定位) until geocoded or placed on the map"),
        (None, "开放时间", "hours_column_missing", "没有“开放时间”列：开放时间均按未知保存，不计为开放",
         "no opening hours column (开放时间): hours are stored as unknown, never counted as open"),
        (None, "所属单位", "host_column_missing", "没有“所属单位”列", "no host organisation column (所属单位)"),
    ]
    assert report.rejected_rows == [] and report.pending == 1 and report.errors == []
    report = check(checker, tmp_path, [row(host="", hours="")])
    assert problems(report) == [
        (2, "开放时间", "hours_unknown", "开放时间为空：按“开放时间未知”保存，不计为开放",
         "opening hours empty: stored as unknown (never counted as open)"),
        (2, "所属单位", "host_missing", "所属单位为空", "host organisation (所属单位) is empty"),
    ]
    assert report.records[0]["opening_hours"] is None and report.pending == 0


def test_columns_not_stored_are_listed(checker, tmp_path):
    header = ["序号", *HEADER, "备注", "微信群", "覆盖企业（单位）数"]
    report = check(checker, tmp_path, [["1", *row(), "夜间不开放", "驿站1群", "12"]], header)
    assert report.problems == []
    assert report.ignored_columns == ["备注", "微信群"]
    assert report.notes == ["columns not stored (no matching field): 备注, 微信群"]


def test_mapping_file_for_unusual_headers(checker, tmp_path, stored_data):
    header = ["站点全称", "行政区", "驿站坐落", "所属单位", "提供设施及服务", "开放时间", "东经", "北纬", "内部备注"]
    form = write_csv(tmp_path / "odd.csv", [["人民广场驿站", "黄浦区", "人民大道1号", "南京东路街道总工会", "补水",
                                             "24/7", "121.4737", "31.2304", "钥匙在门卫"]], header)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[columns]\n"站点全称" = "name"\n"驿站坐落" = "address"\n"东经" = "lon"\n"北纬" = "lat"\n'
                       '"内部备注" = "ignore"\n', encoding="utf-8")
    unmapped = checker.check("stations", form, ImportOptions())
    assert [p.code for p in unmapped.file_errors] == ["column_missing", "column_missing"]
    assert [p.column for p in unmapped.file_errors] == ["名称", "具体门牌号"]
    assert [p.code for p in unmapped.problems if p.severity == "warning"] == ["coord_columns_missing"]
    mapped = checker.check("stations", form, ImportOptions(mapping=read_mapping_file(mapping)))
    assert mapped.problems == [] and mapped.ignored_columns == ["内部备注"]
    assert mapped.mapping == {"站点全称": "name", "行政区": "district", "驿站坐落": "address", "所属单位": "host_org",
                              "提供设施及服务": "services", "开放时间": "opening_hours", "东经": "lon", "北纬": "lat"}
    store = stored_data()
    result = store.cli("import", "stations", form, "--crs", "wgs84", "--mapping", mapping)
    assert result.exit_code == 0, result.output
    assert "columns: 站点全称 -> name, 行政区 -> district, 驿站坐落 -> address" in result.output
    assert "stations: version 2: 1 added" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[columns]\n"站点全称" = "title"\n', encoding="utf-8")
    result = store.cli("import", "stations", form, "--crs", "wgs84", "--mapping", bad)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: mapping file names fields the layer 'stations' does not have: title; fields: " in result.output


@pytest.mark.parametrize("name, content, message", [
    ("garbage.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
     "Error: the file is neither UTF-8 nor GBK/GB18030 text; save it from Excel as 'CSV UTF-8' "
     "(文件不是 UTF-8 或 GBK 编码，请另存为“CSV UTF-8”) (encoding)"),
    ("form.xlsx", b"this is not a workbook", "Error: not a readable .xlsx workbook (File is not a zip file) (file)"),
    ("empty.csv", b"", "Error: no header row found in the first 15 rows: expected column names such as 名称, 行政区, "
                       "具体门牌号, 经度, 纬度 (or name, district, address, lon, lat) (file)"),
    ("form.doc", b"x", "Error: unsupported file type '.doc': use .csv, .xlsx, .geojson, .gpkg or .shp (file)"),
])
def test_unreadable_file_gives_one_clear_error(stored_data, tmp_path, name, content, message):
    store = stored_data()
    before = store.data_version()
    path = tmp_path / name
    path.write_bytes(content)
    result = store.cli("import", "stations", path, "--crs", "wgs84")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == message
    assert store.data_version() == before


def test_unreadable_file_through_the_manager(checker, tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ImportFileError) as err:
        checker.check("stations", path, ImportOptions())
    assert err.value.parameter == "encoding"


def test_unknown_crs_is_a_usage_error(stored_data):
    result = stored_data().cli("import", "stations", FORMS / "stations_gbk.csv", "--crs", "gauss-kruger")
    assert result.exit_code == 2 and "unknown coordinate system 'gauss-kruger'" in result.output


# --- modes ----------------------------------------------------------------------------------------------------
BAD_FORM_ROWS = [row(name="甲站"), row(name="乙站", services="饮水机", lon="121.4921", lat="31.2272"),
                 row(name="丙站", lon="121.4750", lat="abc")]
BAD_FORM_LINES = [
    "第3行，提供设施及服务：未知的服务“饮水机”，是否为“补水”（water）？（错误）",
    "  row 3, 提供设施及服务: unknown service '饮水机'; did you mean 'Drinking water' (补水, water)? (error)",
    "第4行，纬度：不是数字：“abc”（错误）",
    "  row 4, 纬度: not a number: 'abc' (error)",
]


def test_dry_run_changes_nothing(stored_data, tmp_path):
    store = stored_data()
    before, history = store.data_version(), store.versions()
    result = store.cli("import", "stations", FORMS / "stations_gbk.csv", "--crs", "wgs84", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: 7 of 7 rows valid; nothing changed (仅检查，未修改数据)" in result.output
    bad = write_csv(tmp_path / "bad.csv", BAD_FORM_ROWS)
    result = store.cli("import", "stations", bad, "--crs", "wgs84", "--dry-run")
    assert result.exit_code == 1
    assert "bad.csv: 3 rows, 1 valid, 2 rejected, 2 errors, 0 warnings" in result.output
    assert "dry run: 1 of 3 rows valid; nothing changed (仅检查，未修改数据)" in result.output
    for line in BAD_FORM_LINES:
        assert line in result.output.splitlines()
    assert store.data_version() == before
    assert store.versions() == history and store.audit() == []       # no version, nothing in the audit log
    assert not (tmp_path / "bad.rejected.csv").exists()


def test_dry_runs_and_reports_leave_the_data_files_as_they_were(data_dir, tmp_path):
    """The file backend: a dry run (with or without a report) writes no byte in the data directory, not even the
    .geoserver/ folder of history and audit log."""
    before = {p.name: sha(p) for p in data_dir.iterdir()}
    bad = write_csv(tmp_path / "bad.csv", BAD_FORM_ROWS)
    for form, report in ((FORMS / "stations_gbk.csv", None), (bad, tmp_path / "out.json"),
                         (FORMS / "stations_merged_header.xlsx", tmp_path / "out.csv")):
        report_option = ("--report", report) if report else ()
        result = cli("--data-dir", data_dir, "import", "stations", form, "--crs", "wgs84", "--dry-run", *report_option)
        assert result.exit_code == (1 if form == bad else 0), result.output
        assert "nothing changed (仅检查，未修改数据)" in result.output
    assert {p.name: sha(p) for p in data_dir.iterdir()} == before
    assert not (data_dir / ".geoserver").exists()


def test_default_refuses_the_whole_file(stored_data, tmp_path):
    store = stored_data()
    before, history = store.data_version(), store.versions()
    bad = write_csv(tmp_path / "bad.csv", BAD_FORM_ROWS)
    manager = store.manager()
    with pytest.raises(ImportRefused) as err:
        manager.import_file("stations", bad, ImportOptions(), who="test")
    assert err.value.message == ("2 problems in 2 of 3 rows; nothing was imported (fix them, or import the valid rows "
                                 "with skip-invalid)")
    assert err.value.report.rejected_rows == [3, 4]

    result = store.cli("import", "stations", bad, "--crs", "wgs84")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    for line in BAD_FORM_LINES:
        assert line in lines
    assert "Error: nothing imported: 2 problems in 2 of 3 rows (未导入任何数据). Fix them, or use --skip-invalid to " \
           "import the valid rows." in result.output
    assert (tmp_path / "bad.rejected.csv").exists()
    assert store.data_version() == before
    assert store.versions() == history       # no new version (files: none yet; PostGIS: db init's version 1)
    assert store.service().layer("stations").count == 3400


def test_skip_invalid_imports_the_valid_rows_and_writes_the_rejects(stored_data, tmp_path):
    store = stored_data()
    bad = write_csv(tmp_path / "bad.csv", BAD_FORM_ROWS)
    rejects = tmp_path / "out" / "rejects.csv"
    rejects.parent.mkdir()
    result = store.cli("import", "stations", bad, "--crs", "wgs84", "--skip-invalid", "--rejects", rejects)
    assert result.exit_code == 0, result.output
    assert f"2 rejected rows written to {rejects} (with a problems column) (未通过的行已写入该文件)" in result.output
    assert "stations: version 2: 1 added, 0 updated, 0 removed, 3400 unchanged; 3401 features (已导入)" in result.output
    raw = rejects.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""))) == [
        ["row_in_file 原行号", *HEADER, "问题 / problems"],
        ["3", *BAD_FORM_ROWS[1], "提供设施及服务: 未知的服务“饮水机”，是否为“补水”（water）？ / unknown service '饮水机'; "
                                 "did you mean 'Drinking water' (补水, water)?"],
        ["4", *BAD_FORM_ROWS[2], "纬度: 不是数字：“abc” / not a number: 'abc'"],
    ]
    found = store.features()
    assert len(found) == 3401 and "甲站" in found and "乙站" not in found and "丙站" not in found
    assert store.versions() == [1, 2]


def test_merge_updates_by_id_and_keeps_the_rest(stored_data, tmp_path):
    store = stored_data()
    old = store.features()
    name2 = "黄浦区便利店户外职工爱心接力站（示例0002）"
    assert old[name2][0] == "ST00002"
    rows = [["ST00002", *row(name="南京东路便利店爱心接力站", sub="", hours="Mo-Su 07:00-23:00", lon="121.469327",
                            lat="31.228072")],
            ["", *row(name="新建驿站", lon="121.4921", lat="31.2272")]]
    form = write_csv(tmp_path / "merge.csv", rows, ["编号", *HEADER])
    result = store.cli("import", "stations", form, "--crs", "wgs84", "--merge")
    assert result.exit_code == 0, result.output
    assert "stations: version 2: 1 added, 1 updated, 0 removed, 3399 unchanged; 3401 features (已导入)" in result.output
    new = store.features()
    assert len(new) == 3401 and name2 not in new
    fid, props, x, y = new["南京东路便利店爱心接力站"]
    assert (fid, props["opening_hours"], x, y) == ("ST00002", "Mo-Su 07:00-23:00", 121.469327, 31.228072)
    assert props["smart"] == old[name2][1]["smart"]           # fields the file lacks are kept
    assert new["新建驿站"][0] == "ST03401"
    for name in ("黄浦区环卫作息点户外职工爱心接力站（示例0001）", old_name(old, "ST00003"), old_name(old, "ST03400")):
        assert new[name] == old[name]


def old_name(found: dict, fid: str) -> str:
    return next(name for name, (i, *_) in found.items() if i == fid)


def test_replace_makes_the_file_the_whole_layer(stored_data):
    store = stored_data()
    result = store.cli("import", "stations", FORMS / "stations_gbk.csv", "--crs", "wgs84", "--replace")
    assert result.exit_code == 0, result.output
    assert "stations: version 2: 7 added, 0 updated, 3400 removed, 0 unchanged; 7 features (已导入)" in result.output
    found = store.features()
    assert sorted(found) == sorted(GBK_EXPECTED)
    # new ids continue after the old layer's highest: no id comes to name a different facility
    assert sorted(fid for fid, _, _, _ in found.values()) == [f"ST0340{i}" for i in range(1, 8)]
    assert {props["source"] for _, props, _, _ in found.values()} == {"import:stations_gbk.csv"}
    assert store.versions() == [1, 2]


def test_reimporting_the_same_form_changes_nothing(stored_data, tmp_path):
    store = stored_data()
    form = FORMS / "stations_gbk.csv"
    result = store.cli("import", "stations", form, "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    before = store.data_version()
    ids = {name: found[0] for name, found in store.features().items() if name in GBK_EXPECTED}
    result = store.cli("import", "stations", form, "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    assert "stations: no changes (3407 features already as in the file); no new version" in result.output
    assert store.data_version() == before and store.versions() == [1, 2]
    # moved by 4.8 m (under 10 m), same name, no id: the same facility, updated
    moved = write_csv(tmp_path / "moved.csv", [row(name="豫园商城工会驿站", sub="豫园街道", lon="121.49215",
                                                   lat="31.2272")])
    result = store.cli("import", "stations", moved, "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    assert "stations: version 3: 0 added, 1 updated, 0 removed, 3406 unchanged; 3407 features (已导入)" in result.output
    after = store.features()
    assert after["豫园商城工会驿站"][0] == ids["豫园商城工会驿站"] == "ST03402"
    assert after["豫园商城工会驿站"][2:] == (121.49215, 31.2272)


def test_report_files(stored_data, tmp_path):
    store = stored_data()
    before, history = store.data_version(), store.versions()
    bad = write_csv(tmp_path / "bad.csv", BAD_FORM_ROWS)
    out_json, out_csv = tmp_path / "out.json", tmp_path / "out.csv"
    result = store.cli("import", "stations", bad, "--crs", "wgs84", "--dry-run", "--report", out_json)
    assert result.exit_code == 1 and f"report written to {out_json}" in result.output
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert {k: doc[k] for k in ("layer", "file", "rows", "valid_rows", "rejected_rows", "errors", "warnings",
                                "row_label", "ignored_columns", "notes")} == {
        "layer": "stations", "file": "bad.csv", "rows": 3, "valid_rows": 1, "rejected_rows": 2, "errors": 2,
        "warnings": 0, "row_label": "row", "ignored_columns": [], "notes": []}
    assert doc["mapping"]["提供设施及服务"] == "services" and len(doc["mapping"]) == 11
    assert doc["problems"] == [
        {"row": 3, "column": "提供设施及服务", "code": "service_unknown", "severity": "error", "value": "饮水机",
         "message_zh": "未知的服务“饮水机”，是否为“补水”（water）？",
         "message_en": "unknown service '饮水机'; did you mean 'Drinking water' (补水, water)?"},
        {"row": 4, "column": "纬度", "code": "coord_not_number", "severity": "error", "value": "abc",
         "message_zh": "不是数字：“abc”", "message_en": "not a number: 'abc'"},
    ]
    result = store.cli("import", "stations", FORMS / "stations_merged_header.xlsx", "--crs", "wgs84", "--dry-run",
                       "--report", out_csv)
    assert result.exit_code == 0, result.output
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""))) == [
        ["row", "column", "severity", "code", "value", "message_zh", "message_en"],
        ["4", "开放时间", "warning", "hours_normalised", "全天", "开放时间“全天”已按“24/7”导入",
         "opening hours '全天' imported as '24/7'"],
        ["6", "开放时间", "warning", "hours_normalised", "周一至周五 9:00-17:00",
         "开放时间“周一至周五 9:00-17:00”已按“Mo-Fr 09:00-17:00”导入",
         "opening hours '周一至周五 9:00-17:00' imported as 'Mo-Fr 09:00-17:00'"],
    ]
    assert (store.data_version(), store.versions(), store.audit()) == (before, history, [])   # dry runs: nothing stored


def test_import_is_a_recorded_version_with_its_file(stored_data):
    store = stored_data()
    result = store.cli("import", "stations", FORMS / "stations_merged_header.xlsx", "--crs", "wgs84",
                       "--who", "黄浦区总工会")
    assert result.exit_code == 0, result.output
    (first, second) = store.history()
    assert (first.action, first.features) == ("initial", 3400)
    assert (second.who, second.action, second.features) == ("黄浦区总工会", "import-merge", 3407)
    assert {k: second.summary[k] for k in ("file", "rows", "rejected_rows", "crs", "added")} == {
        "file": "stations_merged_header.xlsx", "rows": 7, "rejected_rows": 0, "crs": "wgs84", "added": 7}
    assert np.isclose(sum(p["area_m2"] for n, (_, p, _, _) in store.features().items() if "示例" not in n), 288.5)


# --- fixes after review ------------------------------------------------------------------------------------------
def test_data_row_with_a_header_like_cell_is_not_taken_for_a_second_header(checker, tmp_path):
    path = tmp_path / "form.csv"
    path.write_text("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度,备注\n"
                    "甲站,黄浦区,人民大道1号,黄浦区总工会,补水,24/7,121.4737,31.2304,电话\n", encoding="utf-8")
    report = checker.check("stations", path, ImportOptions())
    assert report.rows == 1 and report.record_rows == [2]
    assert report.ignored_columns == ["备注"]


def test_replace_with_no_valid_rows_is_refused(stored_data, tmp_path):
    store = stored_data()
    before, history = store.data_version(), store.versions()
    path = tmp_path / "bad.csv"
    path.write_text("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度\n"
                    "甲站,黄浦区,人民大道1号,黄浦区总工会,补水,24/7,abc,31.2304\n", encoding="utf-8")
    result = store.cli("import", "stations", path, "--crs", "wgs84", "--replace", "--skip-invalid")
    assert result.exit_code == 1
    assert "no valid rows in bad.csv: replacing the layer with it would remove all 3400 features" in result.output
    assert (store.data_version(), store.versions()) == (before, history)


def test_decimal_minutes_coordinates():
    from geoserver.core.importer import parse_coordinate
    assert parse_coordinate("121°28.5′") == pytest.approx(121.475)
    assert parse_coordinate("31°14′24″N") == pytest.approx(31.24)


# --- GeoPackage and Shapefile -----------------------------------------------------------------------------------
def gis_frame(names, to_crs=None):
    """Three stations (English field names, as a GIS export has them) at literal WGS84 positions."""
    import geopandas as gpd
    from shapely.geometry import Point
    rows = [("静安寺驿站", "静安区", 121.4450, 31.2240), ("中山公园驿站", "长宁区", 121.4180, 31.2200),
            ("曹杨新村驿站", "普陀区", 121.4050, 31.2400)]
    frame = gpd.GeoDataFrame(
        {names[0]: [r[0] for r in rows], names[1]: [r[1] for r in rows], names[2]: ["示例路1号"] * 3,
         names[3]: ["区总工会"] * 3, names[4]: ["water,rest"] * 3, names[5]: ["24/7"] * 3,
         names[6]: ["13800000000"] * 3},
        geometry=[Point(r[2], r[3]) for r in rows], crs="EPSG:4326")
    return frame.to_crs(to_crs) if to_crs else frame


def test_geopackage_in_a_projected_crs_is_read_and_reprojected(checker, tmp_path):
    path = tmp_path / "export.gpkg"
    gis_frame(["name", "district", "address", "host_org", "services", "opening_hours", "contact_phone"],
              to_crs="EPSG:32651").to_file(path, driver="GPKG")  # UTM zone 51N, metres
    report = checker.check("stations", path, ImportOptions(datum="wgs84"))
    assert report.errors == [] and report.row_label == "feature"
    got = {r["name"]: (r["_lon"], r["_lat"], r["district"], r["contact_phone"]) for r in report.records}
    assert got["静安寺驿站"][2:] == ("静安区", "13800000000")
    assert got["静安寺驿站"][0] == pytest.approx(121.4450, abs=1e-7)
    assert got["曹杨新村驿站"][1] == pytest.approx(31.2400, abs=1e-7)


def test_shapefile_gbk_with_truncated_field_names_and_zipped(stored_data, tmp_path):
    import zipfile
    folder = tmp_path / "shp"
    folder.mkdir()
    # DBF names are cut to 10 bytes: opening_hours -> opening_ho, contact_phone -> contact_ph
    gis_frame(["name", "district", "address", "host_org", "services", "opening_ho", "contact_ph"]).to_file(
        folder / "stations.shp", driver="ESRI Shapefile", encoding="GBK")
    assert (folder / "stations.cpg").read_text().upper().startswith(("GBK", "CP936", "936"))
    store = stored_data()
    result = store.cli("import", "stations", folder / "stations.shp", "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    assert "opening_ho -> opening_hours" in result.output and "contact_ph -> contact_phone" in result.output
    assert "stations: version 2: 3 added, 0 updated, 0 removed, 3400 unchanged; 3403 features" in result.output
    assert store.features()["中山公园驿站"][1]["district"] == "长宁区"

    archive = tmp_path / "stations.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    again = store.cli("import", "stations", archive, "--crs", "wgs84", "--dry-run")
    assert again.exit_code == 0, again.output
    assert "dry run: 3 of 3 rows valid" in again.output


def test_workbook_guards(checker, tmp_path, monkeypatch):
    from geoserver.core import tabular
    garbage = tmp_path / "form.xlsx"
    garbage.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(ImportFileError) as err:
        checker.check("stations", garbage, ImportOptions())
    assert err.value.message.startswith("not a readable .xlsx workbook")
    monkeypatch.setattr(tabular, "XLSX_MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(ImportFileError) as err:
        checker.check("stations", FORMS / "stations_merged_header.xlsx", ImportOptions())
    assert err.value.message.endswith("bytes, more than the 1,000 a facility list needs; save it as CSV")


# --- export: the editable form, round trip ---------------------------------------------------------------------
@pytest.mark.parametrize("name, datum", [("list.xlsx", "wgs84"), ("list.csv", "gcj02"), ("list.csv", "bd09")])
def test_export_imports_back_unchanged(stored_data, tmp_path, name, datum):
    store = stored_data()
    out = tmp_path / name
    result = store.cli("export", "stations", out, "--crs", datum)
    assert result.output == (f"stations: 3400 features written to {out} (includes private contact fields: "
                             "keep it internal)\n")
    back = store.cli("import", "stations", out, "--crs", datum)
    assert back.exit_code == 0, back.output
    assert back.output.splitlines()[-1] == "stations: no changes (3400 features already as in the file); no new version"


def test_export_form_content_and_old_versions(stored_data, tmp_path):
    store = stored_data()
    out = tmp_path / "list.csv"
    assert store.cli("export", "stations", out).exit_code == 0
    lines = out.read_bytes().decode("utf-8-sig").splitlines()
    assert lines[0] == ("编号,名称,行政区,街镇,具体门牌号,提供设施及服务,开放时间,所属单位,面积（平方米）,智能站点,数据来源,"
                        "点位联系人,手机号码,定位状态,定位来源,待定位原因,定位说明,经度,纬度")
    assert lines[1] == ("ST00001,黄浦区环卫作息点户外职工爱心接力站（示例0001）,黄浦区,,示例地址：黄浦区（样例数据，非真实门牌）,"
                        "充电、纳凉、医药箱、热饭、阅读、休憩、补水、无线网络,24/7,黄浦区总工会（示例）,93,否,sample,示例联系人,"
                        "10068693301,已定位,,,,121.471607,31.193477")
    form = FORMS / "stations_gbk.csv"
    assert store.cli("import", "stations", form, "--crs", "wgs84", "--replace").exit_code == 0
    old = tmp_path / "v1.xlsx"
    assert store.cli("export", "stations", old, "--version", "1").output.startswith("stations: 3400 features")
    assert store.cli("export", "stations", tmp_path / "now.csv").output.startswith("stations: 7 ")
    bad = store.cli("export", "stations", tmp_path / "x.pdf")
    assert bad.exit_code == 1 and "export format 'pdf' is not supported; use one of csv, xlsx" in bad.output


# --- how real forms write things ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("早8:00-晚8:00", "08:00-20:00"),
    ("上午9:00-下午5:30", "09:00-17:30"),
    ("周一至周五 9:00-17:00，节假日休息", "Mo-Fr 09:00-17:00; PH off"),
    ("周一至周五 9:00-17:00，周六 9:00-12:00", "Mo-Fr 09:00-17:00; Sa 09:00-12:00"),
    ("每天7点-21点", "Mo-Su 07:00-21:00"),
    ("8:00-20:00，节假日照常开放", "08:00-20:00"),
    ("工作日8:30-17:30", "Mo-Fr 08:30-17:30"),
    ("7x24小时", "24/7"),
    ("看情况", None),
])
def test_chinese_opening_hours(text, expected):
    from geoserver.core.importer import normalise_hours
    assert normalise_hours(text) == expected


def test_former_district_names_and_subdistrict_office_suffix(checker, tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("名称,行政区,街镇,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度\n"
                    "甲站,卢湾区,淮海中路街道办事处,淮海中路1号,区总工会,补水,24/7,121.4750,31.2190\n"
                    "乙站,闸北区,,共和新路1号,区总工会,补水,24/7,121.4570,31.2600\n"
                    "丙站,南汇,,惠南镇1号,区总工会,补水,24/7,121.7580,31.0530\n", encoding="utf-8")
    report = checker.check("stations", path, ImportOptions())
    assert report.errors == []
    assert [(r["district"], r["district_code"], r.get("subdistrict")) for r in report.records] == [
        ("黄浦区", "310101", "淮海中路街道"), ("静安区", "310106", None), ("浦东新区", "310115", None)]


def test_utf16_text_export_from_excel(checker, tmp_path):
    path = tmp_path / "unicode.txt"
    path.write_bytes("名称\t行政区\t具体门牌号\t所属单位\t提供设施及服务\t开放时间\t经度\t纬度\r\n"
                     "甲站\t黄浦区\t人民大道1号\t区总工会\t补水\t24/7\t121.4737\t31.2304\r\n".encode("utf-16"))
    report = checker.check("stations", path, ImportOptions())
    assert report.errors == [] and report.records[0]["name"] == "甲站"
