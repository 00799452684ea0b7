"""The partners' change feed (/api/feed): a snapshot, an import that adds, updates and removes, then exactly those
three changes (with a tombstone), and the changes applied to the snapshot equal a fresh snapshot — on the
GeoPackage files and on PostGIS (``stored_data`` is parametrised); paging with cursors; an expired cursor is 410."""

from __future__ import annotations

import csv
import io
import json

import pytest

from geoserver.core.importer import ImportOptions
from geoserver.core.manage import DataManager
from geoserver.web import create_app


def export_rows(manager) -> list[dict]:
    raw, _ = manager.export("stations", "csv")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def import_rows(manager, tmp_path, rows: list[dict], name: str = "form.csv"):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
    writer.writeheader()
    writer.writerows(rows)
    (tmp_path / name).write_text(out.getvalue(), encoding="utf-8")
    return manager.import_file("stations", tmp_path / name, ImportOptions(datum="wgs84", mode="replace"), who="t")


def apply(features: dict, changes: list[dict]) -> dict:
    out = dict(features)
    for c in changes:
        if c["op"] == "removed":
            del out[c["id"]]
        else:
            out[c["id"]] = c["feature"]
    return out


@pytest.fixture()
def world(stored_data, tmp_path):
    stored = stored_data()
    svc = stored.service()
    return svc, create_app(service=svc).test_client(), DataManager(svc), stored.kind


def test_partner_sync_end_to_end(world, tmp_path):
    svc, client, manager, kind = world
    snap = client.get("/api/feed/stations/snapshot?crs=gcj02")
    # files: no version recorded until the first change (0); a PostGIS store records its loaded data as version 1
    start = {"files": "0", "postgis": "1"}[kind]
    assert snap.status_code == 200 and snap.headers["X-Feed-Cursor"] == start
    body = snap.get_json()
    assert body["cursor"] == start and body["crs"] == "gcj02" and len(body["features"]) == 3400
    held = {f["id"]: f for f in body["features"]}

    rows = export_rows(manager)
    removed = rows.pop(5)["编号"]
    rows[0]["名称"] += "（更新）"
    updated = rows[0]["编号"]
    rows.append({**rows[1], "编号": "", "名称": "新增驿站"})
    out = import_rows(manager, tmp_path, rows)
    assert out.change.summary()["added"] == out.change.summary()["updated"] == out.change.summary()["removed"] == 1

    feed = client.get(f"/api/feed/stations/changes?since={body['cursor']}&crs=gcj02").get_json()
    assert feed["complete"] is True and feed["next"] == "2" and feed["since"] == start
    assert [(c["op"], c["id"], c["version"]) for c in feed["changes"]] == [
        ("updated", updated, 2), ("removed", removed, 2), ("added", "ST03401", 2)]
    tombstone = feed["changes"][1]
    assert set(tombstone) == {"op", "id", "version", "time"}
    assert tombstone["time"] == next(v.created for v in svc.storage.versions("stations") if v.number == 2)
    assert feed["changes"][2]["feature"]["properties"]["name"] == "新增驿站"
    fresh = client.get("/api/feed/stations/snapshot?crs=gcj02").get_json()
    assert fresh["cursor"] == "2"
    assert apply(held, feed["changes"]) == {f["id"]: f for f in fresh["features"]}
    # another server on the same store (a replica, or a fresh process on the same files) says exactly the same
    other = create_app(service=svc.__class__(data_dir=svc.data_dir, storage=svc.storage.__class__(
        *([svc.storage.url] if kind == "postgis" else [svc.data_dir])))).test_client()
    assert other.get(f"/api/feed/stations/changes?since={body['cursor']}&crs=gcj02").get_json() == feed
    assert other.get("/api/feed/stations/snapshot?crs=gcj02").get_json() == fresh
    # caught up: nothing more, the same cursor
    again = client.get("/api/feed/stations/changes?since=2").get_json()
    assert again["changes"] == [] and again["complete"] is True and again["next"] == "2"


def test_paging_with_cursors_and_expiry(world, tmp_path):
    svc, client, manager, _ = world
    rows = export_rows(manager)
    for i in range(3):
        rows[i]["名称"] += "（改）"
    import_rows(manager, tmp_path, rows, "a.csv")
    rows.pop(10)
    import_rows(manager, tmp_path, rows, "b.csv")
    seen, cursor, pages = [], "0", 0
    while True:
        page = client.get(f"/api/feed/stations/changes?since={cursor}&limit=2").get_json()
        seen += [(c["op"], c["version"]) for c in page["changes"]]
        cursor, pages = page["next"], pages + 1
        if page["complete"]:
            break
    assert seen == [("updated", 2)] * 3 + [("removed", 3)] and pages == 2 and cursor == "3"
    assert client.get("/api/feed/stations/changes?since=0&limit=2").get_json()["next"] == "1-2"
    # the history pruned to the newest version: older cursors must re-sync
    svc.storage.prune(svc.specs["stations"], 1, who="ops")
    gone = client.get("/api/feed/stations/changes?since=2")
    assert gone.status_code == 410 and "re-sync from the snapshot" in gone.get_json()["description"]
    assert client.get("/api/feed/stations/changes?since=0").status_code == 410
    assert client.get("/api/feed/stations/changes?since=3").get_json()["complete"] is True


@pytest.mark.parametrize("query, parameter, status", [
    ("since=x", "since", 400), ("since=1%2B2", "since", 400), ("", "since", 400), ("since=9", "since", 400),
    ("since=0&limit=0", "limit", 400), ("since=0&crs=utm", "crs", 400), ("since=0&page=2", "page", 400),
])
def test_bad_feed_requests(client, query, parameter, status):
    r = client.get("/api/feed/stations/changes?" + query)
    assert r.status_code == status and r.get_json()["parameter"] == parameter


def test_snapshot_formats_etag_and_unknown_layer(client):
    r = client.get("/api/feed/stations/snapshot?format=csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    lines = r.get_data().decode("utf-8-sig").splitlines()
    assert lines[0].startswith("id,lon,lat,name,") and len(lines) == 3401
    assert lines[1].startswith("ST00001,121.")
    etag = r.headers["ETag"]
    assert client.get("/api/feed/stations/snapshot?format=csv", headers={"If-None-Match": etag}).status_code == 304
    gz = client.get("/api/feed/stations/snapshot", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert client.get("/api/feed/nope/snapshot").status_code == 404
    assert client.get("/api/feed/stations/snapshot?format=xml").get_json()["parameter"] == "format"
    assert "contact" not in r.get_data().decode("utf-8-sig").splitlines()[0]


def test_a_feature_gone_again_shows_only_to_clients_that_may_hold_it(world, tmp_path):
    """Added in version 2 and removed in version 3: a client from before version 2 never hears of it; a client
    that synced at version 2 gets its tombstone (and only that)."""
    svc, client, manager, kind = world
    start = {"files": "0", "postgis": "1"}[kind]
    rows = export_rows(manager)
    import_rows(manager, tmp_path, rows + [{**rows[1], "编号": "", "名称": "短暂驿站"}], "a.csv")
    import_rows(manager, tmp_path, rows, "b.csv")
    early = client.get(f"/api/feed/stations/changes?since={start}").get_json()
    assert early["changes"] == [] and early["next"] == "3" and early["complete"] is True
    later = client.get("/api/feed/stations/changes?since=2").get_json()
    assert [(c["op"], c["id"]) for c in later["changes"]] == [("removed", "ST03401")]
    assert "短暂驿站" not in json.dumps(later, ensure_ascii=False)
