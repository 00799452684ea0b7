"""The unions' own form, as printed: rows without coordinates are stored as pending (待定位), shown to staff, never
public; unknown opening hours are never open; pending rows are placed by a geocoder (here an in-process fake that
answers like one) only when the answer is precise and inside the row's district.

Real provider protocols over HTTP are tested in test_geocode.py and test_geocode_cli.py.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.core import crs
from geoserver.core.auth import TokenStore, tokens_path
from geoserver.core.geocode import Candidate, GeocodeAnswer, GeocoderStop, GeocoderUnavailable
from geoserver.core.locate import queries_for
from geoserver.core.manage import DataManager, GeocoderNotConfigured
from geoserver.core.service import DEFAULT_DATA_DIR, GeoService
from geoserver.web import create_app
from tests import seed_form

NAMES = [r[0] for r in seed_form.ROWS]
#: WGS84 positions of the three addresses of the sample form (literal; People's Square, Ruijin Hospital, the Bund).
TRUTH = {"人民大道120号": (121.4752, 31.2310), "瑞金二路197号": (121.4684, 31.2117), "中山东一路1号": (121.4906, 31.2367)}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    d = tmp_path / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, d)
    return d


@pytest.fixture(params=["xlsx", "csv"])
def form(request, tmp_path) -> Path:
    """The filled-in form as printed: a workbook, or the GBK CSV Excel saves from it."""
    if request.param == "xlsx":
        return seed_form.write_xlsx(tmp_path / "黄浦区申报汇总表.xlsx")
    return seed_form.write_gbk_csv(tmp_path / "黄浦区申报汇总表.csv")


def pending_rows(data_dir: Path) -> list[dict]:
    layer = GeoService(data_dir=data_dir).layer("rest_rooms")
    if not layer.pending_count:
        return []
    frame = layer.pending.drop(columns="geometry").astype(object)
    return frame.where(frame.notna(), None).to_dict("records")


class FakeGeocoder:
    """Answers like a provider (already in WGS84) from a table: query -> candidates; counts the requests."""

    name = "amap"

    def __init__(self, table: dict[str, list[Candidate]], fail=None):
        self.table = table
        self.asked: list[str] = []
        self.fail = fail or {}          # query -> exception to raise

    def geocode(self, address, city="上海市", refresh=False):
        self.asked.append(address)
        if address in self.fail:
            raise self.fail[address]
        return GeocodeAnswer("amap", address, tuple(self.table.get(address, ())))


def precise(lon, lat, level="门牌号"):
    return Candidate(lon, lat, level, True, "上海市黄浦区", "310101")


# --- the form imports as it is ----------------------------------------------------------------------------------
def test_the_printed_form_imports_every_row_as_pending(data_dir, form):
    result = cli("--data-dir", data_dir, "import", "rest_rooms", form, "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"{form.name}: 3 rows, 3 valid (3 without coordinates: pending, 待定位), 0 rejected, "
                          "0 errors, 3 warnings\n")
    assert "submitted by (填报): 区局工会 黄浦区总工会, 联系人 张三, 邮箱 hpzgh@example.cn, 电话 021-63211939" in out
    assert "note: 3 rows with nothing but a number (序号) or form-only columns were skipped" in out
    assert ("文件：没有“开放时间”列：开放时间均按未知保存，不计为开放（提示）" in out)
    assert "第8行，休息室所属单位：所属单位为空（提示）" in out
    assert "rest_rooms: version 2: 3 added, 0 updated, 0 removed, 1000 unchanged; 1003 features (已导入)" in out
    assert "rest_rooms: 3 rows pending (待定位): not public until geocoded or placed on the map" in out
    rows = {r["name"]: r for r in pending_rows(data_dir)}
    assert sorted(rows) == sorted(NAMES)
    metro = rows["上海地铁人民广场站职工工间休息室"]
    assert {k: metro[k] for k in ("district", "district_code", "subdistrict", "address", "contact_name",
                                  "contact_phone", "host_org", "area_m2", "services", "opening_hours",
                                  "location_status", "location_reason")} == {
        "district": "黄浦区", "district_code": "310101", "subdistrict": "南京东路街道", "address": "人民大道120号",
        "contact_name": "王建国", "contact_phone": "13800138001", "host_org": "上海地铁第一运营有限公司",
        "area_m2": 25.0, "services": "fridge,microwave,rest,water", "opening_hours": None,
        "location_status": "pending", "location_reason": "no_coordinates"}
    assert rows["外滩环卫作业职工工间休息室"]["services"] == "massage_chair,rest,water"
    assert rows["瑞金医院门急诊职工工间休息室"]["host_org"] is None
    # the submitter block is kept with the version and in the audit log
    version = json.loads((data_dir / ".geoserver/history/rest_rooms/000002.json").read_text())
    assert version["summary"]["submitter"] == seed_form.SUBMITTER and version["summary"]["pending_rows"] == 3
    audit = [json.loads(line) for line in (data_dir / ".geoserver/audit.jsonl").read_text().splitlines()]
    assert audit[-1]["submitter"] == seed_form.SUBMITTER
    # the same form sent again changes nothing (the rows are recognised by name and district)
    again = cli("--data-dir", data_dir, "import", "rest_rooms", form, "--crs", "gcj02")
    assert "rest_rooms: no changes (1003 features already as in the file); no new version" in again.output


def test_nothing_pending_is_public(data_dir, form):
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form).exit_code == 0
    svc = GeoService(data_dir=data_dir)
    client = create_app(service=svc).test_client()
    layer = svc.layer("rest_rooms")
    assert (layer.count, layer.pending_count) == (1000, 3)
    assert client.get("/healthz").json["layers"]["rest_rooms"] == 1000
    assert {la["id"]: la["count"] for la in client.get("/api/layers").json["layers"]}["rest_rooms"] == 1000
    items = client.get("/ogc/collections/rest_rooms/items?limit=10000")
    assert items.json["numberMatched"] == 1000
    near = client.get("/api/nearest?layer=rest_rooms&lon=121.4752&lat=31.2310&k=500").get_data(as_text=True)
    for name in NAMES:
        assert name not in items.get_data(as_text=True) and name not in near
    pending_id = pending_rows(data_dir)[0]["id"]
    assert client.get(f"/ogc/collections/rest_rooms/items/{pending_id}").status_code == 404
    out = cli("--data-dir", data_dir, "layers").output
    assert "rest_rooms             1000        3  " in out


def test_staff_see_pending_rows(data_dir, form):
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form).exit_code == 0
    svc = GeoService(data_dir=data_dir)
    token = TokenStore(tokens_path(data_dir)).add("staff")
    client = create_app(service=svc).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    listing = client.get("/api/admin/layers/rest_rooms/features?location_status=pending", headers=auth).json
    assert (listing["numberMatched"], listing["numberPending"]) == (3, 3)
    first = listing["features"][0]
    assert first["geometry"] is None and first["properties"]["location_status"] == "pending"
    assert first["properties"]["contact_phone"] == "13800138001"
    assert first["properties"]["services"] == ["fridge", "microwave", "rest", "water"]
    assert client.get(f"/api/admin/layers/rest_rooms/features/{first['id']}", headers=auth).json == first
    found = client.get("/api/admin/layers/rest_rooms/features?q=" + "瑞金二路", headers=auth).json
    assert [f["properties"]["name"] for f in found["features"]] == ["瑞金医院门急诊职工工间休息室"]
    located = client.get("/api/admin/layers/rest_rooms/features?location_status=located&limit=1", headers=auth).json
    assert located["numberMatched"] == 1000
    assert located["features"][0]["properties"]["location_status"] == "located"
    bad = client.get("/api/admin/layers/rest_rooms/features?location_status=lost", headers=auth)
    assert bad.status_code == 400 and bad.json["parameter"] == "location_status"
    layers = {la["id"]: la for la in client.get("/api/admin/layers", headers=auth).json["layers"]}
    assert (layers["rest_rooms"]["pending"], layers["rest_rooms"]["pending_by_reason"]) == (3, {"no_coordinates": 3})
    assert client.get("/api/admin/layers", headers=auth).json["geocoder"] is None


def test_export_carries_pending_rows_and_imports_back_unchanged(data_dir, form, tmp_path):
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form).exit_code == 0
    out = tmp_path / "清单.csv"
    assert cli("--data-dir", data_dir, "export", "rest_rooms", out, "--crs", "gcj02").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    metro = next(r for r in rows if r["休息室名称"] == NAMES[0])
    assert (metro["定位状态"], metro["待定位原因"], metro["经度"], metro["纬度"]) == ("待定位", "no_coordinates", "", "")
    assert next(r for r in rows if r["编号"] == "RR00001")["定位状态"] == "已定位"
    back = cli("--data-dir", data_dir, "import", "rest_rooms", out, "--crs", "gcj02")
    assert back.exit_code == 0, back.output
    assert "rest_rooms: no changes (1003 features already as in the file); no new version" in back.output


def test_placing_a_row_publishes_it_and_an_address_change_takes_it_back(data_dir, form, tmp_path):
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form).exit_code == 0
    svc = GeoService(data_dir=data_dir)
    client = create_app(service=svc).test_client()
    auth = {"Authorization": f"Bearer {TokenStore(tokens_path(data_dir)).add('staff')}"}
    row = next(r for r in pending_rows(data_dir) if r["name"] == NAMES[0])
    feature = client.get(f"/api/admin/layers/rest_rooms/features/{row['id']}", headers=auth).json
    gx, gy = crs.wgs84_to_gcj02(*TRUTH["人民大道120号"])
    feature["geometry"] = {"type": "Point", "coordinates": [float(gx), float(gy)]}
    feature["properties"]["location_source"] = "typed"
    put = client.put(f"/api/admin/layers/rest_rooms/features/{row['id']}?crs=gcj02", json=feature, headers=auth)
    assert put.status_code == 200, put.json
    props = put.json["feature"]["properties"]
    assert (props["location_status"], props["location_source"], props["location_reason"]) == ("located", "typed", None)
    lon, lat = put.json["feature"]["geometry"]["coordinates"]
    assert float(crs.geodesic_distance_m(lon, lat, *TRUTH["人民大道120号"])) < 0.05
    near = client.get("/api/nearest?layer=rest_rooms&lon=121.4752&lat=31.2310&k=1").json["features"][0]
    assert near["id"] == row["id"] and near["properties"]["opening_hours"] is None
    assert near["properties"]["open_now"] is None              # unknown hours: neither open nor closed
    assert "location_status" not in near["properties"]         # the location fields are staff-only
    # the same form again, with a new address for that room: it goes back to pending, its point kept as a proposal
    moved = [list(seed_form.ROWS[0]), *seed_form.ROWS[1:]]
    moved[0][3] = "人民大道200号"
    again = seed_form.write_xlsx(tmp_path / "again.xlsx", moved)
    assert cli("--data-dir", data_dir, "import", "rest_rooms", again).exit_code == 0
    svc.refresh(force=True)
    assert row["id"] not in set(svc.layer("rest_rooms").ids)
    back = client.get(f"/api/admin/layers/rest_rooms/features/{row['id']}", headers=auth).json
    assert back["properties"]["location_reason"] == "address_changed"
    assert back["geometry"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)


def test_a_facility_without_a_position_can_be_created_and_deleted(tiny_service):
    client = create_app(service=tiny_service).test_client()
    auth = {"Authorization": f"Bearer {tiny_service.storage.tokens().add('staff')}"}
    body = {"type": "Feature", "geometry": None, "properties": {
        "name": "新驿站", "district": "黄浦区", "address": "测试路1号", "services": ["water"]}}
    r = client.post("/api/admin/layers/stations/features", json=body, headers=auth)
    assert r.status_code == 201, r.json
    fid = r.json["feature"]["id"]
    assert r.json["feature"]["geometry"] is None and r.json["feature"]["properties"]["location_status"] == "pending"
    assert tiny_service.layer("stations").count == 4 and tiny_service.layer("stations").pending_count == 1
    assert client.get("/ogc/collections/stations/items").json["numberMatched"] == 4
    assert client.delete(f"/api/admin/layers/stations/features/{fid}", headers=auth).status_code == 200
    assert tiny_service.layer("stations").pending_count == 0
    bad = client.post("/api/admin/layers/stations/features", json={**body, "geometry": {"type": "Point"}},
                      headers=auth)
    assert bad.status_code == 400 and bad.json["parameter"] == "geometry"
    odd = dict(body, properties={**body["properties"], "location_source": "satellite"})
    assert client.post("/api/admin/layers/stations/features", json=odd, headers=auth).json["parameter"] == \
        "location_source"


# --- opening hours unknown --------------------------------------------------------------------------------------
def test_unknown_opening_hours_are_never_open(client, service):
    layer = service.layer("rest_rooms")
    unknown = [p["id"] for p in layer.properties if p["opening_hours"] is None]
    assert len(unknown) == 359     # of 1,000 sample rooms (seeded), as the form has no such column
    r = client.get("/api/nearest?layer=rest_rooms&lon=121.4737&lat=31.2304&k=200&at=2026-12-02T10:00").json
    states = {f["id"]: f["properties"]["open_now"] for f in r["features"]}
    assert {states[i] for i in unknown if i in states} == {None}
    assert {type(v) for k, v in states.items() if k not in unknown} == {bool}
    open_now = client.get("/api/nearest?layer=rest_rooms&lon=121.4737&lat=31.2304&k=200&open_now=true"
                          "&at=2026-12-02T10:00").json
    assert open_now["features"] and not {f["id"] for f in open_now["features"]} & set(unknown)
    # and coverage at a time counts only rooms known to be open then
    cov_all = client.get("/api/coverage?layer=rest_rooms&radius_m=500").json
    cov_open = client.get("/api/coverage?layer=rest_rooms&radius_m=500&open_at=2026-12-02T10:00").json
    assert (cov_all["facilities"], cov_open["facilities"]) == (1000, 641)   # Wednesday 10:00: every known one is open
    assert cov_open["filters"]["hours_unknown_not_counted"] == 359
    assert cov_open["totals"]["covered_pct"] < cov_all["totals"]["covered_pct"]


# --- queries and the locator ------------------------------------------------------------------------------------
def test_queries_are_built_from_the_address_parts():
    assert queries_for({"district": "黄浦区", "subdistrict": "南京东路街道", "address": "人民大道120号",
                        "name": "人民广场站休息室"}) == ["上海市黄浦区南京东路街道人民大道120号", "上海市黄浦区人民广场站休息室"]
    # parts already written in the address are not repeated; a leading 上海市 is not doubled
    assert queries_for({"district": "黄浦区", "subdistrict": "外滩街道", "address": "上海市黄浦区中山东一路1号",
                        "name": "黄浦区外滩休息室"}) == ["上海市外滩街道黄浦区中山东一路1号", "上海市黄浦区外滩休息室"]
    assert queries_for({"district": None, "address": None, "name": None}) == []


def geocode_with(data_dir, table, **kw):
    """Import the form, then geocode it with a fake provider answering from ``table``."""
    form = seed_form.write_xlsx(data_dir.parent / "form.xlsx")
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form).exit_code == 0
    manager = DataManager(GeoService(data_dir=data_dir))
    fake = kw.pop("geocoder", None) or FakeGeocoder(table)
    return manager, fake, manager.geocode("rest_rooms", who="tester", geocoder=fake, **kw)


def test_precise_answers_in_the_district_are_published_the_rest_stay_pending(data_dir):
    metro, ruijin, bund = (f"上海市黄浦区{s}{a}" for s, a in (("南京东路街道", "人民大道120号"),
                                                          ("瑞金二路街道", "瑞金二路197号"), ("外滩街道", "中山东一路1号")))
    table = {
        metro: [precise(*TRUTH["人民大道120号"])],
        ruijin: [Candidate(121.4690, 31.2100, "道路", False, "瑞金二路", "310101")],      # road level only
        bund: [precise(121.4365, 31.1951)],                                             # lies in 徐汇区
    }
    manager, fake, result = geocode_with(data_dir, table)
    assert (result.tried, len(result.located), result.pending, result.version) == (
        3, 1, {"imprecise": 1, "other_district": 1}, 3)
    # not found or not good enough at the address: the name in its district was tried too
    assert fake.asked == [metro, ruijin, "上海市黄浦区瑞金医院门急诊职工工间休息室", bund,
                          "上海市黄浦区外滩环卫作业职工工间休息室"]
    svc = manager.service
    layer = svc.layer("rest_rooms")
    assert (layer.count, layer.pending_count) == (1001, 2)
    pos = layer.position(result.located[0])
    assert layer.properties[pos]["name"] == NAMES[0]
    assert float(crs.geodesic_distance_m(layer.index.lon[pos], layer.index.lat[pos], *TRUTH["人民大道120号"])) < 0.05
    rows = {r["name"]: r for r in pending_rows(data_dir)}
    assert rows[NAMES[1]]["location_reason"] == "imprecise"
    assert rows[NAMES[1]]["location_note"].startswith("地理编码结果不够精确（道路） / the geocoder's answer is not precise "
                                                      "enough (道路)；高德“道路”：瑞金二路")
    assert rows[NAMES[2]]["location_reason"] == "other_district"
    assert rows[NAMES[2]]["location_note"] == ("地理编码结果位于徐汇区，不在黄浦区 / the geocoder's answer lies in 徐汇区 "
                                               "(Xuhui), not in 黄浦区")
    located = GeoService(data_dir=data_dir).layer("rest_rooms")
    source = located.gdf.loc[located.gdf["id"] == result.located[0], "location_source"].item()
    assert source == "geocoder:amap"
    # a second run asks for nothing (the failures wait for --retry-failed); a retry asks again
    again = manager.geocode("rest_rooms", who="tester", geocoder=FakeGeocoder(table))
    assert (again.tried, again.version) == (0, None)
    retry = FakeGeocoder({**table, ruijin: [precise(121.4684, 31.2117)]})
    retried = manager.geocode("rest_rooms", who="tester", geocoder=retry, retry_failed=True)
    assert (retried.tried, len(retried.located), retried.pending) == (2, 1, {"other_district": 1})


def test_quota_stops_the_run_and_keeps_what_was_found(data_dir):
    metro = "上海市黄浦区南京东路街道人民大道120号"
    ruijin = "上海市黄浦区瑞金二路街道瑞金二路197号"
    fake = FakeGeocoder({metro: [precise(*TRUTH["人民大道120号"])]},
                        fail={ruijin: GeocoderStop("daily quota exceeded (DAILY_QUERY_OVER_LIMIT)", "quota")})
    manager, _, result = geocode_with(data_dir, {}, geocoder=fake)
    assert result.stopped == "daily quota exceeded (DAILY_QUERY_OVER_LIMIT)"
    assert (result.tried, len(result.located), result.version) == (1, 1, 3)
    assert manager.service.layer("rest_rooms").pending_count == 2
    assert {r["location_reason"] for r in pending_rows(data_dir)} == {"no_coordinates"}


def test_an_unreachable_geocoder_leaves_rows_pending(data_dir, monkeypatch):
    monkeypatch.setattr("geoserver.core.locate.MAX_CONSECUTIVE_ERRORS", 2)
    down = GeocoderUnavailable("connection refused")
    fake = FakeGeocoder({}, fail={q: down for q in ("上海市黄浦区南京东路街道人民大道120号",
                                                    "上海市黄浦区瑞金二路街道瑞金二路197号")})
    manager, _, result = geocode_with(data_dir, {}, geocoder=fake)
    assert result.stopped.startswith("the geocoder failed 2 times in a row (connection refused); stopped")
    assert (result.tried, result.pending) == (2, {"geocoder_error": 2})
    assert sorted(r["location_reason"] for r in pending_rows(data_dir)) == [
        "geocoder_error", "geocoder_error", "no_coordinates"]
    # an error is not a verdict: the next plain run tries those rows again
    assert manager.geocode("rest_rooms", who="t", geocoder=FakeGeocoder({})).tried == 3


def test_a_row_edited_while_the_geocoder_ran_is_left_alone(data_dir):
    metro = "上海市黄浦区南京东路街道人民大道120号"

    class EditingGeocoder(FakeGeocoder):
        def geocode(self, address, city="上海市", refresh=False):
            if address == metro:   # staff change the address while the answer is on its way
                manager.editor.apply("rest_rooms", upserts=[{"id": target, "address": "人民大道121号"}], who="staff",
                                     action="update")
            return super().geocode(address, city, refresh)

    form = seed_form.write_xlsx(data_dir.parent / "form.xlsx")
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form).exit_code == 0
    manager = DataManager(GeoService(data_dir=data_dir))
    target = next(r["id"] for r in pending_rows(data_dir) if r["name"] == NAMES[0])
    result = manager.geocode("rest_rooms", who="t", geocoder=EditingGeocoder({metro: [precise(121.4752, 31.2310)]}))
    assert result.skipped == 1 and result.located == [target]
    row = next(r for r in pending_rows(data_dir) if r["id"] == target)
    assert (row["address"], row["location_status"]) == ("人民大道121号", "pending")


def test_without_a_geocoder_nothing_breaks(data_dir, form):
    result = cli("--data-dir", data_dir, "import", "rest_rooms", form)
    assert "no geocoder configured (GEOSERVER_GEOCODER): place them on the map in /admin" in result.output
    geocode = cli("--data-dir", data_dir, "geocode", "rest_rooms")
    assert geocode.exit_code == 1
    assert "Error: no geocoder is configured: set GEOSERVER_GEOCODER (amap, tianditu, tencent or baidu)" in \
        geocode.output
    with pytest.raises(GeocoderNotConfigured):
        DataManager(GeoService(data_dir=data_dir)).geocode("rest_rooms", who="t")
    svc = GeoService(data_dir=data_dir)
    client = create_app(service=svc).test_client()
    auth = {"Authorization": f"Bearer {TokenStore(tokens_path(data_dir)).add('staff')}"}
    job = client.post("/api/admin/layers/rest_rooms/geocode", json={}, headers=auth)
    assert job.status_code == 503 and job.json["code"] == "GeocoderNotConfigured"
    search = client.get("/api/admin/geocode?q=人民大道120号", headers=auth)
    assert search.status_code == 503 and "tap the map" in search.json["description"]


def test_coordinates_added_in_excel_place_the_pending_rows(data_dir, tmp_path):
    """The form imported without coordinates, then sent again with 经度/纬度 typed in (no 编号 column): the pending
    rows are placed, not duplicated."""
    form = seed_form.write_xlsx(tmp_path / "form.xlsx")
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form).exit_code == 0
    (lon, lat) = TRUTH["人民大道120号"]
    gx, gy = crs.wgs84_to_gcj02(lon, lat)
    path = tmp_path / "with_coordinates.csv"
    path.write_text("休息室名称,行政区,具体门牌号,提供设施及服务,经度,纬度\n"
                    f"{NAMES[0]},黄浦区,人民大道120号,休息,{float(gx):.7f},{float(gy):.7f}\n", encoding="utf-8")
    result = cli("--data-dir", data_dir, "import", "rest_rooms", path, "--crs", "gcj02")
    assert result.exit_code == 0, result.output
    assert "0 added, 1 updated, 0 removed" in result.output
    layer = GeoService(data_dir=data_dir).layer("rest_rooms")
    assert (layer.count, layer.pending_count) == (1001, 2)
    pos = next(i for i, p in enumerate(layer.properties) if p["name"] == NAMES[0])
    assert float(crs.geodesic_distance_m(layer.index.lon[pos], layer.index.lat[pos], lon, lat)) < 0.05
    assert layer.gdf.iloc[pos]["location_source"] == "file"


def test_rest_rooms_are_a_layer_like_the_others(client):
    """The rest-room layer in nearest, the OGC API, coverage, siting and the planning page."""
    near = client.get("/api/nearest?layer=rest_rooms&lon=121.4737&lat=31.2304&k=3&services=冰箱").json["features"]
    assert len(near) == 3 and all("fridge" in f["properties"]["services"] for f in near)
    assert all(f["properties"]["source"] == "sample" and "示例" in f["properties"]["name"] for f in near)
    col = client.get("/ogc/collections/rest_rooms").json
    assert col["title"] == "职工工间休息室 / Workplace rest rooms"
    assert client.get("/ogc/collections/rest_rooms/items?limit=1").json["numberMatched"] == 1000
    cov = client.get("/api/coverage?layer=rest_rooms&radius_m=500").json
    assert (cov["facilities"], cov["totals"]["covered_pct"]) == (1000, 29.02)
    plan = client.post("/api/siting", json={"layer": "rest_rooms", "k": 3, "radius_m": 500}).json
    assert len(plan["sites"]["features"]) == 3
    page = client.get("/planning?layer=rest_rooms&radius_m=500&k=0")
    assert page.status_code == 200 and "职工工间休息室" in page.get_data(as_text=True)
    spec = client.get("/api/layers").json
    rest = next(la for la in spec["layers"] if la["id"] == "rest_rooms")
    assert {s["id"] for s in rest["services"]} >= {"fridge", "massage_chair", "nursing_room", "snacks"}


def test_a_layer_with_only_pending_rows_answers_empty(data_dir, form):
    """The printed form as the whole layer (--replace): no public point yet, and every public route says so
    calmly (empty lists, zero coverage), never 'not a point layer' or a 500."""
    assert cli("--data-dir", data_dir, "import", "rest_rooms", form, "--replace").exit_code == 0
    svc = GeoService(data_dir=data_dir)
    assert (svc.layer("rest_rooms").count, svc.layer("rest_rooms").pending_count) == (0, 3)
    client = create_app(service=svc).test_client()
    near = client.get("/api/nearest?layer=rest_rooms&lon=121.4737&lat=31.2304")
    assert near.status_code == 200 and near.json["features"] == []
    batch = client.post("/api/nearest", json={"layer": "rest_rooms", "points": [[121.47, 31.23]]})
    assert batch.status_code == 200 and batch.json["results"][0]["features"] == []
    assert client.get("/ogc/collections/rest_rooms/items?bbox=121,31,122,32").json["numberMatched"] == 0
    cov = client.get("/api/coverage?layer=rest_rooms&radius_m=500").json
    assert (cov["facilities"], cov["totals"]["covered_pct"]) == (0, 0.0)
    assert client.get("/planning?layer=rest_rooms&radius_m=500&k=0").status_code == 200
    assert client.post("/api/siting", json={"layer": "rest_rooms", "k": 2, "radius_m": 500}).status_code == 200
    boot = client.get("/").get_data(as_text=True)
    assert '"id": "rest_rooms"' in boot or '"id":"rest_rooms"' in boot
