"""The issue's "done when", end to end: `geoserver import rest_rooms <the seed form>.xlsx --crs gcj02` stores every
row pending; with a geocoder configured (each of the four providers, answering over HTTP from the local stand-in)
`geoserver geocode rest_rooms` publishes the precisely geocoded rows within 5 m of their true spot (1 m here: the
stand-in answers with gcoord's independent GCJ-02/BD-09 values) and keeps the rest pending with reasons. Then the
admin API's geocoding job and address search against the same stand-in.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.core import crs
from geoserver.core.auth import TokenStore, tokens_path
from geoserver.core.geocode import PROVIDERS
from geoserver.core.service import DEFAULT_DATA_DIR, GeoService
from geoserver.web import create_app
from tests import seed_form
from tests.gcoord_truth import gcoord_datums

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("geocoder_standin", ROOT / "scripts" / "geocoder_standin.py")
standin_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(standin_module)

#: What the stand-in knows, by the queries the locator builds from the form's rows: (query, precision, WGS84 truth).
#: Row 1 is found at its house number; row 2 only at road level, by address and by name (stays pending, with the
#: road point as a proposal); row 3 is unknown by address but known by name, as a point of interest.
PLACES = [
    ("上海市黄浦区南京东路街道人民大道120号", "house", (121.4752, 31.2310)),
    ("上海市黄浦区瑞金二路街道瑞金二路197号", "road", (121.4690, 31.2100)),
    ("上海市黄浦区瑞金医院门急诊职工工间休息室", "road", (121.4690, 31.2100)),
    ("上海市黄浦区外滩环卫作业职工工间休息室", "poi", (121.4906, 31.2367)),
]
TRUTH = {"上海地铁人民广场站职工工间休息室": PLACES[0][2], "外滩环卫作业职工工间休息室": PLACES[3][2]}


@pytest.fixture(scope="module")
def standin():
    datums = gcoord_datums([p[2] for p in PLACES])
    gazetteer = [{"address": q, "precision": precision, "wgs84": list(wgs), "gcj02": d["gcj02"], "bd09": d["bd09"],
                  "formatted": q.removeprefix("上海市"), "adcode": "310101"}
                 for (q, precision, wgs), d in zip(PLACES, datums, strict=True)]
    server = standin_module.StandIn(gazetteer).start()
    yield server
    server.stop()


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    d = tmp_path / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, d)
    return d


def run(data_dir, *args, env=None):
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *map(str, args)], env=env or {})


def geocoder_env(provider, standin, key="test-key-123456") -> dict:
    return {"GEOSERVER_GEOCODER": provider, "GEOSERVER_GEOCODER_KEY": key, "GEOSERVER_GEOCODER_URL": standin.url,
            "GEOSERVER_GEOCODER_QPS": "200"}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_import_then_geocode_publishes_the_precise_rows(provider, standin, data_dir, tmp_path):
    form = seed_form.write_xlsx(tmp_path / "黄浦区申报汇总表.xlsx")
    imported = run(data_dir, "import", "rest_rooms", form, "--crs", "gcj02", "--no-geocode")
    assert imported.exit_code == 0, imported.output
    assert "rest_rooms: 3 rows pending (待定位)" in imported.output
    before = len(standin.requests)
    result = run(data_dir, "geocode", "rest_rooms", "--no-progress", env=geocoder_env(provider, standin))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"rest_rooms: geocoded 3 pending rows with {provider} (0 of them from the cache alone): 2 located, still "
        "pending: 1 imprecise",
        "rest_rooms: version 3 (located rows are public now)"]
    assert len(standin.requests) - before == 5       # 1 + 2 (address, then name) + 2
    layer = GeoService(data_dir=data_dir).layer("rest_rooms")
    assert (layer.count, layer.pending_count) == (1002, 1)
    for name, (lon, lat) in TRUTH.items():
        pos = next(i for i, p in enumerate(layer.properties) if p["name"] == name)
        off = float(crs.geodesic_distance_m(layer.index.lon[pos], layer.index.lat[pos], lon, lat))
        assert off < 1.0, (provider, name, off)
    pending = layer.pending.iloc[0]
    assert (pending["name"], pending["location_reason"]) == ("瑞金医院门急诊职工工间休息室", "imprecise")
    assert float(crs.geodesic_distance_m(pending.geometry.x, pending.geometry.y, 121.4690, 31.2100)) < 1.0
    # a second run, and a retry of the failed row: the answers come from the cache, no new request
    asked = len(standin.requests)
    again = run(data_dir, "geocode", "rest_rooms", "--no-progress", env=geocoder_env(provider, standin))
    assert "geocoded 0 pending rows" in again.output and len(standin.requests) == asked
    history = run(data_dir, "history", "rest_rooms").output.splitlines()[-1]
    assert "geocode" in history and "1002" not in history    # history counts every row, pending ones too
    assert " 1003 " in history


def test_import_geocodes_when_a_geocoder_is_configured(standin, data_dir, tmp_path):
    form = seed_form.write_gbk_csv(tmp_path / "form.csv")
    result = run(data_dir, "import", "rest_rooms", form, env=geocoder_env("amap", standin))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-2].startswith("rest_rooms: geocoded 3 pending rows with amap")
    assert lines[-2].endswith(": 2 located, still pending: 1 imprecise")
    assert lines[-1] == "rest_rooms: version 3 (located rows are public now)"


def test_quota_and_bad_key_stop_cleanly(standin, data_dir, tmp_path):
    form = seed_form.write_xlsx(tmp_path / "form.xlsx")
    assert run(data_dir, "import", "rest_rooms", form, "--no-geocode").exit_code == 0
    standin.set_mode("quota")
    try:
        result = run(data_dir, "geocode", "rest_rooms", env=geocoder_env("amap", standin, key="quota-key-1234"))
    finally:
        standin.set_mode("ok")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "rest_rooms: geocoded 0 pending rows with amap" in result.output
    assert "Error: stopped early: " in result.output and "quota" in result.output.lower()
    assert GeoService(data_dir=data_dir).layer("rest_rooms").pending_count == 3
    bad = run(data_dir, "geocode", "rest_rooms", env=geocoder_env("amap", standin, key="BADKEY"))
    assert bad.exit_code == 1 and "BADKEY" not in bad.output and "key" in bad.output.lower()
    unknown = run(data_dir, "geocode", "rest_rooms", env={"GEOSERVER_GEOCODER": "google",
                                                          "GEOSERVER_GEOCODER_KEY": "k"})
    assert unknown.exit_code == 1 and "amap, tianditu, tencent, baidu" in unknown.output


def test_a_dead_geocoder_never_fails_an_import(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr("geoserver.core.locate.MAX_CONSECUTIVE_ERRORS", 2)
    form = seed_form.write_xlsx(tmp_path / "form.xlsx")
    env = {"GEOSERVER_GEOCODER": "amap", "GEOSERVER_GEOCODER_KEY": "k-123456", "GEOSERVER_GEOCODER_TIMEOUT_S": "0.5",
           "GEOSERVER_GEOCODER_URL": "http://127.0.0.1:9"}    # nothing listens on the discard port
    result = run(data_dir, "import", "rest_rooms", form, env=env)
    assert result.exit_code == 0, result.output
    assert "rest_rooms: version 2: 3 added" in result.output
    assert "still pending: 2 geocoder_error" in result.output
    layer = GeoService(data_dir=data_dir).layer("rest_rooms")
    assert layer.pending_count == 3 and sorted(layer.pending["location_reason"].fillna("")) == [
        "geocoder_error", "geocoder_error", "no_coordinates"]


def test_admin_geocoding_job_and_address_search(standin, data_dir, tmp_path):
    form = seed_form.write_xlsx(tmp_path / "form.xlsx")
    assert run(data_dir, "import", "rest_rooms", form, "--no-geocode").exit_code == 0
    svc = GeoService(data_dir=data_dir)
    config = {"GEOCODER": "tencent", "GEOCODER_KEY": "test-key-123456", "GEOCODER_URL": standin.url,
              "GEOCODER_QPS": "200", "JOBS_DIR": str(tmp_path / "jobs")}
    client = create_app(config, service=svc).test_client()
    auth = {"Authorization": f"Bearer {TokenStore(tokens_path(data_dir)).add('staff', ('rest_rooms',))}"}
    other = {"Authorization": f"Bearer {TokenStore(tokens_path(data_dir)).add('canteen_staff', ('canteens',))}"}
    assert client.get("/api/admin/layers", headers=auth).json["geocoder"] == "tencent"
    start = client.post("/api/admin/layers/rest_rooms/geocode", json={}, headers=auth)
    assert start.status_code == 202, start.json
    url = start.json["status_url"]
    assert client.get(url, headers=other).status_code == 403
    assert client.get(url.replace("/api/admin/jobs/", "/api/siting/jobs/")).status_code == 404   # not public
    deadline = time.monotonic() + 30
    while (state := client.get(url, headers=auth).json)["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["state"] == "done", state
    assert (state["result"]["located"], state["result"]["pending"]) == (2, {"imprecise": 1})
    assert svc.layer("rest_rooms").pending_count == 1
    near = client.get("/api/nearest?layer=rest_rooms&lon=121.4906&lat=31.2367&k=1").json["features"][0]
    assert near["properties"]["name"] == "外滩环卫作业职工工间休息室"
    # the address search of the /admin map
    search = client.get("/api/admin/geocode?q=人民大道120号&district=黄浦区", headers=auth)
    assert search.status_code == 200, search.json
    body = search.json
    assert (body["query"], body["provider"]) == ("上海市黄浦区人民大道120号", "tencent")
    assert body["candidates"] == []      # the stand-in knows the full address with its 街镇 only
    search = client.get("/api/admin/geocode?q=南京东路街道人民大道120号&district=黄浦区", headers=auth).json
    (cand,) = search["candidates"]
    assert (cand["precise"], cand["district"], cand["in_district"]) == (True, "黄浦区", True)
    assert float(crs.geodesic_distance_m(cand["lon"], cand["lat"], 121.4752, 31.2310)) < 1.0
    assert client.get("/api/admin/geocode?q=", headers=auth).status_code == 400
    assert client.post("/api/admin/layers/rest_rooms/geocode", json={"retry": True}, headers=auth).status_code == 400


def test_dry_run_stores_nothing_but_pays_once(standin, data_dir, tmp_path):
    form = seed_form.write_xlsx(tmp_path / "form.xlsx")
    assert run(data_dir, "import", "rest_rooms", form, "--no-geocode").exit_code == 0
    env = geocoder_env("baidu", standin)
    before = len(standin.requests)
    dry = run(data_dir, "geocode", "rest_rooms", "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[-1].startswith("dry run: nothing stored (仅检查，未修改数据)")
    assert GeoService(data_dir=data_dir).layer("rest_rooms").pending_count == 3
    assert len(standin.requests) - before == 5
    real = run(data_dir, "geocode", "rest_rooms", env=env)
    assert "(3 of them from the cache alone): 2 located" in real.output
    assert len(standin.requests) - before == 5                  # nothing asked twice
    retry = run(data_dir, "geocode", "rest_rooms", "--retry-failed", env=env)
    assert "geocoded 1 pending rows" in retry.output and len(standin.requests) - before == 7   # asked again


def test_cancelling_a_geocoding_job_keeps_what_was_found(standin, data_dir, tmp_path):
    form = seed_form.write_xlsx(tmp_path / "form.xlsx")
    assert run(data_dir, "import", "rest_rooms", form, "--no-geocode").exit_code == 0
    svc = GeoService(data_dir=data_dir)
    client = create_app({"GEOCODER": "amap", "GEOCODER_KEY": "test-key-123456", "GEOCODER_URL": standin.url,
                         "GEOCODER_QPS": "200", "JOBS_DIR": str(tmp_path / "jobs")}, service=svc).test_client()
    auth = {"Authorization": f"Bearer {TokenStore(tokens_path(data_dir)).add('staff')}"}
    standin.set_mode("slow")          # each answer takes about a second
    try:
        url = client.post("/api/admin/layers/rest_rooms/geocode", json={}, headers=auth).json["status_url"]
        busy = client.post("/api/admin/layers/rest_rooms/geocode", json={}, headers=auth)
        assert busy.status_code == 409 and "already running" in busy.json["description"]
        deadline = time.monotonic() + 30
        while client.get(url, headers=auth).json.get("message") in ("queued", "0/3"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cancel = client.delete(url, headers=auth)
        assert cancel.status_code == 202 and cancel.json["cancel_requested"] is True
        while (state := client.get(url, headers=auth).json)["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        standin.set_mode("ok")
    assert state["state"] == "cancelled", state
    result = state["result"]
    assert 1 <= result["tried"] < 3 and result["stopped"] == "cancelled / 已取消"
    assert svc.layer("rest_rooms").pending_count == 3 - result["located"]
    # the lock is released: another job may start
    again = client.post("/api/admin/layers/rest_rooms/geocode", json={}, headers=auth)
    assert again.status_code == 202
    while client.get(again.json["status_url"], headers=auth).json["state"] == "running":
        assert time.monotonic() < deadline + 30
        time.sleep(0.05)
    assert svc.layer("rest_rooms").pending_count == 1       # the rest placed; the road-level one stays pending
