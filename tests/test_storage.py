"""The storage interface, proven by its two backends: every test runs on the GeoPackage files and on PostGIS
(``tiny_service`` is parametrised) and must see exactly the same behaviour."""

from __future__ import annotations

import pytest

from geoserver.core.edit import EditConflict
from geoserver.core.importer import ImportOptions
from geoserver.core.manage import DataManager, ImportRefused
from geoserver.core.store import AlreadyCurrent, VersionNotFound
from geoserver.storage import StorageUnavailable, open_jobs

HEADER = "名称,所在区,地址,所属单位,服务项目,开放时间,经度,纬度\n"


def form(tmp_path, *rows: str, name="form.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def names(svc) -> list[str]:
    return [p["name"] for p in svc.layer("stations").properties]


def test_import_history_rollback_and_prune(tiny_service, tmp_path):
    m = DataManager(tiny_service)
    first_version = tiny_service.layer("stations").version
    out = m.import_file("stations", form(tmp_path, "新驿站,黄浦区,人民大道1号,黄浦区总工会,补水,24/7,121.47,31.23"),
                        ImportOptions(datum="wgs84"), who="alice")
    assert out.change.summary() == {"added": 1, "updated": 0, "removed": 0, "unchanged": 4, "features": 5,
                                    "version": 2}
    assert names(tiny_service) == ["甲", "乙", "丙", "丁", "新驿站"]
    assert out.change.data_version == tiny_service.layer("stations").version != first_version
    versions, current = m.history("stations")
    assert [(v.number, v.action, v.who, v.features) for v in versions] == [
        (1, "initial", "geoserver", 4), (2, "import-merge", "alice", 5)]
    assert current.number == 2 and versions[1].summary["file"] == "form.csv"
    # a refused file changes nothing, a dry run neither
    with pytest.raises(ImportRefused):
        m.import_file("stations", form(tmp_path, "坏驿站,黄浦区,人民大道1号,黄浦区总工会,补水,24/7,200,31.23",
                                       name="bad.csv"), ImportOptions(datum="wgs84"), who="alice")
    m.import_file("stations", form(tmp_path, "试驿站,黄浦区,人民大道1号,黄浦区总工会,补水,24/7,121.47,31.24",
                                   name="dry.csv"), ImportOptions(datum="wgs84"), who="alice", dry_run=True)
    assert len(m.history("stations")[0]) == 2 and len(names(tiny_service)) == 5
    # rollback is a new version with the old content (and the old data version)
    restored = m.rollback("stations", 1, who="bob")
    assert (restored.number, restored.action, restored.summary) == (3, "rollback", {"restored_version": 1})
    assert names(tiny_service) == ["甲", "乙", "丙", "丁"]
    assert tiny_service.layer("stations").version == first_version
    with pytest.raises(AlreadyCurrent):
        m.rollback("stations", 1, who="bob")
    with pytest.raises(VersionNotFound, match="has no version 9; versions: 1, 2, 3"):
        m.rollback("stations", 9, who="bob")
    # an old version exports as it was
    data, count = m.export("stations", "csv", version=2)
    assert count == 5 and "新驿站" in data.decode("utf-8-sig")
    # pruning keeps the newest and the current
    assert tiny_service.storage.prune(tiny_service.specs["stations"], 1, who="ops") == [1, 2]
    assert [v.number for v in m.history("stations")[0]] == [3]
    audit = tiny_service.storage.audit_records(10, "stations")
    assert [(a["who"], a["action"]) for a in audit] == [("ops", "prune"), ("bob", "rollback"),
                                                        ("alice", "import-merge")]
    assert tiny_service.storage.audit_records(10, layers=frozenset({"canteens"})) == []


def test_edits_with_if_match_and_ids_never_given_twice(tiny_service):
    m = DataManager(tiny_service)
    version = tiny_service.layer("stations").version
    point = {"_lon": 121.455, "_lat": 31.255}
    made = m.editor.apply("stations", upserts=[{"id": "ST00005", "_generated_id": True, "name": "戊", "district":
                                                "黄浦区", "address": "一号", "host_org": "工会", "services": "water",
                                                "opening_hours": "24/7", **point}],
                          who="alice", action="create", expect_data_version=version, create_only=True)
    assert made.added == ["ST00005"]
    with pytest.raises(EditConflict, match="changed since version"):
        m.editor.apply("stations", deletes=["A"], who="alice", action="delete", expect_data_version=version)
    m.editor.apply("stations", deletes=["ST00005"], who="alice", action="delete")
    m.rollback("stations", 1, who="alice")
    again = m.editor.apply("stations", upserts=[{"id": "ST00005", "_generated_id": True, "name": "己",
                                                 "district": "黄浦区", "address": "二号", "host_org": "工会",
                                                 "services": "water", "opening_hours": "24/7", **point}],
                           who="alice", action="create")
    assert again.added == ["ST00006"]   # ST00005 was given out once: never again, even after the rollback
    assert tiny_service.storage.issued(tiny_service.specs["stations"]) == 6


def test_pending_rows_are_stored_and_kept_apart(tiny_service):
    m = DataManager(tiny_service)
    m.editor.apply("stations", upserts=[{"id": "P1", "name": "待定位站", "district": "黄浦区", "address": "某路1号",
                                         "host_org": "工会", "services": "water"}], who="alice", action="create")
    assert tiny_service.refresh("stations", force=True) == ["stations"]
    layer = tiny_service.layer("stations")
    assert layer.count == 4 and layer.pending_count == 1 and layer.pending_ids == frozenset({"P1"})
    records, geoms = tiny_service.storage.read_records(tiny_service.specs["stations"])
    stored = {r["id"]: (r, g) for r, g in zip(records, geoms)}
    assert stored["P1"][1] is None and stored["P1"][0]["location_status"] == "pending"
    assert stored["A"][0]["opening_hours"] == "24/7" and stored["A"][1].x == pytest.approx(121.45)


def test_tokens_jobs_locks_and_the_geocoding_cache(tiny_service, tmp_path):
    from geoserver.core.geocode import Candidate, GeocodeAnswer
    storage = tiny_service.storage
    tokens = storage.tokens()
    secret = tokens.add("黄浦区总工会", ("stations",))
    assert tokens.verify(secret).name == "黄浦区总工会" and tokens.verify(secret).layers == ("stations",)
    assert [t["name"] for t in tokens.list()] == ["黄浦区总工会"]
    assert tokens.revoke("黄浦区总工会") and tokens.verify(secret) is None

    jobs = open_jobs(storage.jobs_locator(tmp_path / "jobs"))   # as another process opens them
    job = jobs.create("siting", {"k": 3}, owner="o1")
    assert storage.jobs(tmp_path / "jobs").count_running("siting", "o1") == 1
    jobs.update(job, progress=0.5, message="half")
    assert {k: jobs.get(job)[k] for k in ("state", "progress", "message")} == \
        {"state": "running", "progress": 0.5, "message": "half"}
    assert not jobs.cancel_requested(job)
    jobs.request_cancel(job)
    assert jobs.cancel_requested(job)
    jobs.update(job, state="done")
    assert jobs.count_running("siting") == 0

    held = storage.try_lock("geocode-stations")
    assert held is not None and storage.try_lock("geocode-stations") is None
    held.release()
    again = storage.try_lock("geocode-stations")
    assert again is not None
    again.release()

    cache = storage.geocode_cache()
    answer = GeocodeAnswer("amap", "上海市黄浦区人民大道1号", (Candidate(121.47, 31.23, "门牌号", True, "人民大道1号", "310101"),))
    cache.put(answer, "上海")
    hit = cache.get("amap", "上海市黄浦区人民大道1号", "上海")
    assert hit.cached and hit.candidates == answer.candidates and len(cache) == 1
    assert cache.get("tencent", "上海市黄浦区人民大道1号", "上海") is None


def test_the_postgis_store_refuses_writes_with_503_while_unreachable(private_pg_cluster, tiny_layers_dir, tmp_path):
    from tests.conftest import postgis_service, write_tiny_layers
    write_tiny_layers(tmp_path / "data")
    svc = postgis_service(private_pg_cluster, tmp_path / "data", tiny_layers_dir, "outage")
    m = DataManager(svc)
    private_pg_cluster.stop()
    with pytest.raises(StorageUnavailable, match="the database is unreachable") as refused:
        m.editor.apply("stations", deletes=["A"], who="alice", action="delete")
    assert refused.value.http_status == 503
    assert svc.storage.health()["status"] == "degraded"
    assert svc.refresh(force=True) == [] and svc.layer("stations").count == 4   # reads go on from memory
    private_pg_cluster.start()
    m.editor.apply("stations", deletes=["A"], who="alice", action="delete")
    assert svc.refresh("stations", force=True) == ["stations"] and svc.layer("stations").count == 3
    svc.storage.release()
