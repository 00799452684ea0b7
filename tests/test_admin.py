"""The admin API through the real Flask app: tokens, 401/403, CORS for writes, edits, imports, history, audit."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.core.auth import digest
from geoserver.web import create_app

ORIGIN = "https://admin.union.example"


@pytest.fixture()
def admin(tiny_service):
    """(test client, headers with a token for every layer, headers with a token for canteens only, service)."""
    store = tiny_service.storage.tokens()
    full = store.add("alice")
    scoped = store.add("bob", ("canteens",))
    app = create_app({"ADMIN_ORIGINS": ORIGIN}, service=tiny_service)
    return (app.test_client(), {"Authorization": f"Bearer {full}"}, {"Authorization": f"Bearer {scoped}"},
            tiny_service)


def feature(**props):
    base = {"name": "人民广场驿站", "district": "黄浦区", "address": "人民大道1号", "services": ["water", "rest"],
            "opening_hours": "24/7", "host_org": "黄浦区总工会", "contact_name": "赵六", "contact_phone": "13700000000"}
    base.update(props)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.47, 31.23]}, "properties": base}


def test_tokens_are_stored_hashed(tiny_service):
    store = tiny_service.storage.tokens()
    token = store.add("carol", ("stations",))
    if tiny_service.storage.kind == "files":
        text = store.path.read_text()
        assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    else:
        with tiny_service.storage.connection() as conn:
            text = repr(conn.execute("SELECT * FROM geoserver.operators").fetchall())
    assert token not in text
    assert digest(token) in text
    assert store.verify(token).name == "carol"
    assert store.verify(token + "x") is None
    assert store.revoke("carol") is True
    assert store.verify(token) is None


def test_token_cli(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["--data-dir", str(tmp_path), "token", "add", "dave", "--layers", "stations"])
    assert out.exit_code == 0
    token = out.stdout.strip().splitlines()[0]
    assert token.startswith("gsk_") and len(token) > 40
    listed = runner.invoke(main, ["--data-dir", str(tmp_path), "token", "list"])
    assert listed.stdout.split()[:2] == ["dave", "stations"]
    assert token not in listed.stdout
    assert runner.invoke(main, ["--data-dir", str(tmp_path), "token", "revoke", "dave"]).exit_code == 0
    again = runner.invoke(main, ["--data-dir", str(tmp_path), "token", "revoke", "dave"])
    assert again.exit_code == 1 and "no token for 'dave'" in again.output


@pytest.mark.parametrize("headers, message", [
    ({}, "this endpoint needs 'Authorization: Bearer <token>' (an operator token from 'geoserver token add')"),
    ({"Authorization": "Bearer gsk_notavalidtoken"}, "the token is not valid (unknown or revoked)"),
    ({"Authorization": "Basic YWxpY2U6cHc="}, "use 'Authorization: Bearer <token>'"),
])
def test_writes_without_a_valid_token_get_401(admin, headers, message):
    client, _, _, svc = admin
    before = svc.layer("stations").count
    r = client.post("/api/admin/layers/stations/features", json=feature(), headers=headers)
    assert r.status_code == 401
    assert r.json == {"code": "Unauthorized", "description": message, "parameter": "Authorization"}
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="geoserver-admin"'
    assert svc.layer("stations").count == before
    assert client.delete("/api/admin/layers/stations/features/A", headers=headers).status_code == 401
    assert client.get("/api/admin/layers/stations/features/A", headers=headers).status_code == 401


def test_token_scoped_to_other_layers_gets_403(admin):
    client, _, bob, _ = admin
    r = client.post("/api/admin/layers/stations/features", json=feature(), headers=bob)
    assert r.status_code == 403
    assert r.json["description"] == "operator 'bob' may not change layer 'stations'"


def test_reference_layer_is_not_editable(admin):
    client, alice, _, _ = admin
    r = client.delete("/api/admin/layers/districts/features/310101", headers=alice)
    assert r.status_code == 400
    assert r.json["description"] == ("layer 'districts' is reference data and cannot be edited; editable layers: "
                                     "stations")


def test_cors_reads_anywhere_writes_only_from_configured_origins(admin):
    client, alice, _, svc = admin
    read = client.get("/api/layers", headers={"Origin": "https://any.example"})
    assert read.headers["Access-Control-Allow-Origin"] == "*"
    evil = client.post("/api/admin/layers/stations/features", json=feature(),
                       headers={**alice, "Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert evil.json["parameter"] == "Origin"
    assert "Access-Control-Allow-Origin" not in evil.headers
    preflight_evil = client.options("/api/admin/layers/stations/features",
                                    headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight_evil.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight_evil.headers
    preflight = client.options("/api/admin/layers/stations/features",
                               headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    ok = client.post("/api/admin/layers/stations/features", json=feature(), headers={**alice, "Origin": ORIGIN})
    assert ok.status_code == 201
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert ok.headers["Cache-Control"] == "no-store"
    assert svc.layer("stations").count == 5


def test_create_read_replace_delete(admin):
    client, alice, _, svc = admin
    created = client.post("/api/admin/layers/stations/features", json=feature(), headers=alice)
    assert created.status_code == 201
    fid = created.json["feature"]["id"]
    assert fid == "ST00001"
    assert created.headers["Location"] == f"/api/admin/layers/stations/features/{fid}"
    props = created.json["feature"]["properties"]
    assert (props["district"], props["district_code"], props["services"]) == ("黄浦区", "310101", ["rest", "water"])
    assert (props["contact_name"], props["contact_phone"]) == ("赵六", "13700000000")
    assert created.json["change"] == {"added": 1, "updated": 0, "removed": 0, "unchanged": 4, "features": 5,
                                      "version": 2}
    # the public API sees the new station at once, without the private fields
    public = client.get(f"/ogc/collections/stations/items/{fid}").json
    assert public["properties"]["name"] == "人民广场驿站"
    assert "contact_phone" not in public["properties"] and "contact_name" not in public["properties"]

    got = client.get(f"/api/admin/layers/stations/features/{fid}", headers=alice)
    etag = got.headers["ETag"]
    stale = client.put(f"/api/admin/layers/stations/features/{fid}", json=feature(name="新名称"),
                       headers={**alice, "If-Match": '"0000000000000000"'})
    assert stale.status_code == 412
    changed = client.put(f"/api/admin/layers/stations/features/{fid}", json=feature(name="新名称", contact_phone=None),
                         headers={**alice, "If-Match": etag})
    assert changed.status_code == 200
    assert changed.json["feature"]["properties"]["name"] == "新名称"
    assert changed.json["feature"]["properties"]["contact_phone"] is None  # PUT replaces the whole feature
    assert changed.json["change"]["version"] == 3

    gone = client.delete(f"/api/admin/layers/stations/features/{fid}", headers=alice)
    assert gone.status_code == 200
    assert gone.json["deleted"] == fid and gone.json["change"]["version"] == 4
    assert client.get(f"/ogc/collections/stations/items/{fid}").status_code == 404
    assert svc.layer("stations").count == 4


def test_edit_errors(admin):
    client, alice, _, _ = admin
    missing = client.put("/api/admin/layers/stations/features/NOPE", json=feature(), headers=alice)
    assert missing.status_code == 404
    assert client.delete("/api/admin/layers/stations/features/NOPE", headers=alice).status_code == 404
    dup = client.post("/api/admin/layers/stations/features", json=feature(id="A"), headers=alice)
    assert dup.status_code == 409
    assert dup.json["description"] == "layer 'stations' already has a feature 'A'; use PUT to change it"
    other_id = client.put("/api/admin/layers/stations/features/A", json=feature(id="B"), headers=alice)
    assert other_id.status_code == 400
    assert other_id.json["parameter"] == "id"
    not_geojson = client.post("/api/admin/layers/stations/features", json={"name": "x"}, headers=alice)
    assert not_geojson.status_code == 400
    assert not_geojson.json["description"] == 'the body must be a GeoJSON Feature ("type": "Feature")'
    body = feature()
    body["geometry"] = {"type": "Point", "coordinates": ["121.47", 31.23]}
    bad_geom = client.post("/api/admin/layers/stations/features", json=body, headers=alice)
    assert bad_geom.status_code == 400 and bad_geom.json["parameter"] == "geometry"
    unknown = client.post("/api/admin/layers/stations/features", json=feature(colour="red"), headers=alice)
    assert unknown.status_code == 400
    assert unknown.json["description"].startswith("unknown properties ['colour']")
    too_big = client.post("/api/admin/layers/stations/features", data=b"{" + b" " * (70 << 10) + b"}",
                          headers={**alice, "Content-Type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.json["description"] == "the request body is larger than this endpoint accepts (65,536 bytes)"


def test_invalid_feature_gets_422_with_the_import_messages(admin):
    client, alice, _, svc = admin
    r = client.post("/api/admin/layers/stations/features",
                    json=feature(services=["饮水机"], contact_phone="138-abcd", opening_hours="早上到晚上"),
                    headers=alice)
    assert r.status_code == 422
    problems = {p["column"]: (p["message_zh"], p["message_en"]) for p in r.json["report"]["problems"]}
    assert problems["services"] == ("未知的服务“饮水机”，是否为“补水”（water）？",
                                    "unknown service '饮水机'; did you mean 'Drinking water' (补水, water)?")
    assert problems["contact_phone"] == ("不是有效的电话号码：“138-abcd”", "not a phone number: '138-abcd'")
    assert problems["opening_hours"][0] == "无法识别的开放时间“早上到晚上”（示例：Mo-Fr 08:00-18:00 或 24/7）"
    assert svc.layer("stations").count == 4


def test_gcj02_feature_is_stored_in_wgs84(admin):
    from geoserver.core import crs
    client, alice, _, _ = admin
    gx, gy = crs.wgs84_to_gcj02(121.47, 31.23)
    body = feature()
    body["geometry"]["coordinates"] = [float(gx), float(gy)]
    r = client.post("/api/admin/layers/stations/features?crs=gcj02", json=body, headers=alice)
    assert r.status_code == 201
    lon, lat = r.json["feature"]["geometry"]["coordinates"]
    assert abs(lon - 121.47) < 1e-6 and abs(lat - 31.23) < 1e-6


CSV = ("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,手机号码,经度,纬度\n"
       "外滩驿站,黄浦区,中山东一路1号,黄浦区总工会,补水、休憩,24/7,13800000001,121.48,31.24\n"
       "坏坐标驿站,黄浦区,中山东一路2号,黄浦区总工会,补水,24/7,13800000002,abc,31.24\n")


def upload(client, headers, query, data=CSV.encode("gbk"), name="form.csv"):
    return client.post(f"/api/admin/layers/stations/import?{query}", headers=headers,
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_import_upload_modes(admin):
    client, alice, _, svc = admin
    no_crs = upload(client, alice, "mode=merge")
    assert no_crs.status_code == 400 and no_crs.json["parameter"] == "crs"
    refused = upload(client, alice, "crs=wgs84")
    assert refused.status_code == 422
    assert refused.json["code"] == "ImportRefused"
    assert refused.json["report"]["problems"][0] == {
        "row": 3, "column": "经度", "code": "coord_not_number", "severity": "error", "value": "abc",
        "message_zh": "不是数字：“abc”", "message_en": "not a number: 'abc'"}
    assert svc.layer("stations").count == 4
    dry = upload(client, alice, "crs=wgs84&dry_run=true&skip_invalid=true")
    assert dry.status_code == 200 and dry.json["imported"] is False
    assert svc.layer("stations").count == 4
    partial = upload(client, alice, "crs=wgs84&skip_invalid=true")
    assert partial.status_code == 200
    assert partial.json["imported"] is True
    assert partial.json["change"]["added"] == 1
    assert partial.json["report"]["rejected_rows"] == 1
    assert svc.layer("stations").count == 5
    replaced = upload(client, alice, "crs=wgs84&skip_invalid=true&mode=replace")
    assert replaced.json["change"]["features"] == 1
    assert svc.layer("stations").count == 1
    wrong_type = upload(client, alice, "crs=wgs84", data=b"x", name="form.doc")
    assert wrong_type.status_code == 400 and wrong_type.json["code"] == "InvalidFile"


def test_history_rollback_and_audit(admin):
    client, alice, _, svc = admin
    client.post("/api/admin/layers/stations/features", json=feature(), headers=alice)
    client.delete("/api/admin/layers/stations/features/A", headers=alice)
    hist = client.get("/api/admin/layers/stations/history", headers=alice).json
    assert hist["current"] == 3
    assert [(v["number"], v["action"], v["who"], v["features"]) for v in hist["versions"]] == [
        (3, "delete", "alice", 4), (2, "create", "alice", 5), (1, "initial", "geoserver", 4)]
    back = client.post("/api/admin/layers/stations/rollback", json={"version": 1}, headers=alice)
    assert back.status_code == 200
    assert back.json["version"]["number"] == 4 and back.json["version"]["summary"] == {"restored_version": 1}
    assert sorted(svc.layer("stations").ids) == ["A", "B", "C", "D"]
    again = client.post("/api/admin/layers/stations/rollback", json={"version": 1}, headers=alice)
    assert again.status_code == 409
    unknown = client.post("/api/admin/layers/stations/rollback", json={"version": 99}, headers=alice)
    assert unknown.status_code == 404
    assert unknown.json["description"] == "layer 'stations' has no version 99; versions: 1, 2, 3, 4"
    audit = client.get("/api/admin/audit?layer=stations", headers=alice).json["records"]
    assert [(a["who"], a["action"], a["version"]) for a in audit] == [
        ("alice", "rollback", 4), ("alice", "delete", 3), ("alice", "create", 2)]
    assert audit[1]["removed_ids"] == ["A"] and audit[1]["via"] == "http"
    assert all(a["time"].endswith("Z") for a in audit)
    if svc.storage.kind == "files":   # one JSON line per write, oldest first
        lines = (svc.data_dir / ".geoserver" / "audit.jsonl").read_text().splitlines()
        assert json.loads(lines[0])["action"] == "create"
    else:                              # one row per write, in the order written
        with svc.storage.connection() as conn:
            rows = conn.execute("SELECT record->>'action' FROM geoserver.audit ORDER BY id").fetchall()
        assert [r[0] for r in rows] == ["create", "delete", "rollback"]


def test_admin_reads_show_private_fields_public_reads_never(admin):
    client, alice, _, _ = admin
    listing = client.get("/api/admin/layers/stations/features?limit=2", headers=alice).json
    assert listing["numberMatched"] == 4
    assert listing["features"][0]["properties"]["contact_phone"] == "10000000001"
    public = client.get("/ogc/collections/stations/items?limit=100").get_data(as_text=True)
    assert "10000000001" not in public and "联系人" not in public
    layers = client.get("/api/admin/layers", headers=alice).json
    assert layers["operator"] == "alice"
    assert layers["layers"][0]["private_fields"] == ["contact_name", "contact_phone", "location_status",
                                                     "location_source", "location_reason", "location_note"]


def test_merge_empty_cell_clears_missing_column_keeps(admin):
    client, alice, _, svc = admin
    base = "编号,名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度"
    row = "A,甲,黄浦区,测试地址,测试工会,补水,24/7,121.45,31.25"
    kept = upload(client, alice, "crs=wgs84", data=f"{base}\n{row}\n".encode(), name="a.csv")
    assert kept.status_code == 200
    assert client.get("/api/admin/layers/stations/features/A", headers=alice).json["properties"]["contact_phone"] \
        == "10000000001"
    cleared = upload(client, alice, "crs=wgs84", data=f"{base},手机号码\n{row},\n".encode(), name="b.csv")
    assert cleared.json["change"]["updated"] == 1
    props = client.get("/api/admin/layers/stations/features/A", headers=alice).json["properties"]
    assert props["contact_phone"] is None and props["contact_name"] == "联系人"


def test_unknown_crs_is_a_400(admin):
    client, alice, _, _ = admin
    r = client.post("/api/admin/layers/stations/features?crs=gauss", json=feature(), headers=alice)
    assert r.status_code == 400
    assert r.json == {"code": "InvalidParameterValue", "parameter": "crs",
                      "description": "unknown coordinate system 'gauss'; use one of wgs84, gcj02, bd09 or the CRS84 URI"}
    assert upload(client, alice, "crs=gauss").status_code == 400


def test_export_for_admins_only(admin):
    client, alice, bob, _ = admin
    assert client.get("/api/admin/layers/stations/export").status_code == 401
    assert client.get("/api/admin/layers/stations/export", headers=bob).status_code == 403
    r = client.get("/api/admin/layers/stations/export?format=csv", headers=alice)
    assert r.status_code == 200
    assert r.headers["Content-Disposition"] == 'attachment; filename="stations.csv"'
    lines = r.data.decode("utf-8-sig").splitlines()
    assert lines[1] == "A,甲,黄浦区,,测试地址,补水、充电,24/7,测试工会,,,test,联系人,10000000001,已定位,,,,121.45,31.25"
    x = client.get("/api/admin/layers/stations/export", headers=alice)
    assert x.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert x.data[:2] == b"PK"
    assert client.get("/api/admin/layers/stations/export?format=pdf", headers=alice).status_code == 400


def test_upload_keeps_the_file_name_in_history_and_audit(admin):
    client, alice, _, _ = admin
    r = upload(client, alice, "crs=wgs84&skip_invalid=true", name="黄浦区 申报表(11月).csv")
    assert r.json["report"]["file"] == "黄浦区_申报表_11月.csv"
    hist = client.get("/api/admin/layers/stations/history", headers=alice).json
    assert hist["versions"][0]["summary"]["file"] == "黄浦区_申报表_11月.csv"
    evil = upload(client, alice, "crs=wgs84&skip_invalid=true&dry_run=true", name="../../etc/passwd.csv")
    assert evil.json["report"]["file"] == "passwd.csv"


def test_ids_of_deleted_features_are_never_given_out_again(admin):
    client, alice, _, _ = admin
    first = client.post("/api/admin/layers/stations/features", json=feature(), headers=alice).json["feature"]["id"]
    assert first == "ST00001"
    assert client.delete(f"/api/admin/layers/stations/features/{first}", headers=alice).status_code == 200
    second = client.post("/api/admin/layers/stations/features", json=feature(), headers=alice).json["feature"]["id"]
    assert second == "ST00002"
    client.post("/api/admin/layers/stations/rollback", json={"version": 1}, headers=alice)
    third = client.post("/api/admin/layers/stations/features", json=feature(), headers=alice).json["feature"]["id"]
    assert third == "ST00003"
