"""Every served feature's ``updated`` time (derived from the layer's history, ``core.history``), ``datetime`` on OGC
items and the time predicates of CQL2 — on the GeoPackage files and on PostGIS (``stored_data`` is parametrised).

The promise tested: ``updated`` is the time of the version whose change the feed reports for the feature (the same
string), features a version did not touch keep their time, and ``datetime=<T>/..`` selects exactly the features the
feed reports as added or updated since a version recorded at T."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from urllib.parse import quote

import pytest

from geoserver.core.manage import DataManager
from geoserver.web import create_app

from .test_feed import export_rows, import_rows


def all_items(client, query: str = "") -> dict:
    r = client.get(f"/ogc/collections/stations/items?limit=10000{query}")
    assert r.status_code == 200, r.get_json()
    return {f["id"]: f for f in r.get_json()["features"]}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.fixture()
def world(stored_data, tmp_path):
    stored = stored_data()
    svc = stored.service()
    return svc, create_app(service=svc).test_client(), DataManager(svc), stored.kind


def test_bundled_data_carries_the_time_it_was_written():
    from geoserver.core.service import DEFAULT_DATA_DIR
    client = create_app().test_client()
    features = all_items(client)
    written = iso(os.stat(DEFAULT_DATA_DIR / "stations.gpkg").st_mtime)
    assert len(features) == 3400 and {f["properties"]["updated"] for f in features.values()} == {written}
    collection = client.get("/ogc/collections/stations").get_json()
    assert collection["extent"]["temporal"] == {"interval": [[written, written]],
                                                "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    # the OpenAPI document promises it in every feature, as a date-time
    doc = client.get("/ogc/api").get_json()
    assert doc["components"]["schemas"]["feature_stations"]["properties"]["properties"]["properties"]["updated"] == {
        "type": "string", "format": "date-time", "title": "更新时间 / Updated (last public change)"}
    # and every feature has it (sending it back to the admin API is tested in test_private_fields)
    assert "updated" in client.get("/ogc/collections/stations/items/ST00001").get_json()["properties"]


def test_updated_follows_the_history_and_datetime_selects_by_it(world, tmp_path):
    svc, client, manager, kind = world
    before = all_items(client)
    (baseline,) = {f["properties"]["updated"] for f in before.values()}
    time.sleep(1.1)     # version times have whole seconds: the import must be recorded in a later second
    rows = export_rows(manager)
    removed = rows.pop(5)["编号"]
    rows[0]["名称"] += "（更新）"
    changed = rows[0]["编号"]
    rows.append({**rows[1], "编号": "", "名称": "新增驿站"})
    import_rows(manager, tmp_path, rows, "a.csv")
    version = svc.storage.versions("stations")[-1]
    after = all_items(client)
    assert removed not in after and len(after) == 3400
    stamped = {fid: f["properties"]["updated"] for fid, f in after.items() if f["properties"]["updated"] != baseline}
    assert stamped == {changed: version.created, "ST03401": version.created}
    # the same string as the change feed's time, and the feature in the feed is the feature served
    since = "0" if kind == "files" else "1"
    feed = client.get(f"/api/feed/stations/changes?since={since}").get_json()
    assert {c["id"]: c["time"] for c in feed["changes"]} == {changed: version.created, removed: version.created,
                                                            "ST03401": version.created}
    for c in feed["changes"]:
        if c["op"] != "removed":
            assert c["feature"] == after[c["id"]]
    # datetime: since the version (inclusive), before it, the instant
    just_before = iso(datetime.fromisoformat(version.created.replace("Z", "+00:00")).timestamp() - 1)
    assert set(all_items(client, f"&datetime={version.created}/..")) == {changed, "ST03401"}
    assert len(all_items(client, f"&datetime=../{just_before}")) == 3398
    assert set(all_items(client, f"&datetime={version.created}")) == {changed, "ST03401"}
    # CQL2 says the same
    for cql_filter in (f"updated >= TIMESTAMP('{version.created}')", f"T_AFTER(updated, TIMESTAMP('{just_before}'))",
                       f"T_INTERSECTS(updated, INTERVAL('{version.created}', '..'))",
                       f"T_EQUALS(updated, TIMESTAMP('{version.created}'))"):
        assert set(all_items(client, f"&filter={quote(cql_filter)}")) == {changed, "ST03401"}, cql_filter
    # sortby the time: the two newest first, then by id
    newest = client.get("/ogc/collections/stations/items?sortby=-updated&limit=3&properties=updated").get_json()
    assert [f["id"] for f in newest["features"]][:2] == sorted([changed, "ST03401"])
    assert newest["features"][0]["properties"] == {"updated": version.created}
    # a second server on the same store derives the same times
    other = create_app(service=svc.__class__(data_dir=svc.data_dir, storage=svc.storage.__class__(
        *([svc.storage.url] if kind == "postgis" else [svc.data_dir])))).test_client()
    assert all_items(other) == after
    # a later import that changes nothing of ST00010 keeps its time; one that changes it moves it
    time.sleep(1.1)
    rows = export_rows(manager)
    target = next(r for r in rows if r["编号"] == "ST00010")
    target[next(k for k in target if "面积" in k)] = "321"
    import_rows(manager, tmp_path, rows, "b.csv")
    third = svc.storage.versions("stations")[-1]
    latest = all_items(client)
    assert latest["ST00010"]["properties"]["updated"] == third.created != version.created
    assert latest[changed]["properties"]["updated"] == version.created
    assert latest["ST00011"]["properties"]["updated"] == before["ST00011"]["properties"]["updated"]


def test_a_rollback_is_a_change_of_what_it_restores(world, tmp_path):
    svc, client, manager, _ = world
    time.sleep(1.1)
    rows = export_rows(manager)
    rows[0]["名称"] += "（更新）"
    first = rows[0]["编号"]
    import_rows(manager, tmp_path, rows, "a.csv")
    changed_at = svc.storage.versions("stations")[-1]
    time.sleep(1.1)
    svc.storage.rollback(svc.specs["stations"], svc.vocab, changed_at.number - 1, who="t")
    svc.refresh(force=True)
    rolled = svc.storage.versions("stations")[-1]
    features = all_items(client)
    assert features[first]["properties"]["updated"] == rolled.created != changed_at.created
    assert sum(f["properties"]["updated"] == rolled.created for f in features.values()) == 1


@pytest.mark.parametrize("value, fragment", [
    ("x", "'x' is not an RFC 3339 date-time or date"),
    ("", "is neither a time nor an interval"),
    ("..", "an instant cannot be open"),
    ("../..", "is open at both ends"),
    ("2026-02-30", "'2026-02-30' is not an RFC 3339 date-time or date"),
    ("2026-12-02T25:00:00Z", "is not an RFC 3339"),
    ("2027-01-01/2026-01-01", "starts after it ends"),
    ("2026-01-01/2026-02-01/2026-03-01", "is neither a time nor an interval"),
])
def test_bad_datetime_is_a_400_saying_what_to_send(value, fragment):
    client = create_app().test_client()
    r = client.get(f"/ogc/collections/stations/items?datetime={quote(value)}")
    assert r.status_code == 400
    body = r.get_json()
    assert body["parameter"] == "datetime" and fragment in body["description"], body
    assert "2026-11-01T00:00:00Z/.." in body["description"] or "ends" in body["description"]


@pytest.mark.parametrize("cql_filter, fragment, position", [
    ("T_MEETS(updated, INTERVAL('2026-01-01', '2026-02-01'))", "T_MEETS relates two intervals", None),
    ("T_AFTER(name, DATE('2026-01-01'))", "compares a time property (updated) with a time, not name (string)",
     None),
    ("updated > TIMESTAMP('2026-13-02T10:00:00Z')", "TIMESTAMP '2026-13-02T10:00:00Z' at line 1, column 22",
     {"line": 1, "column": 22}),
    ("T_BEFORE(updated, INTERVAL('2027-01-01', 'soon'))", "an INTERVAL's end 'soon' at line 1, column 42",
     {"line": 1, "column": 42}),
    ("T_DURING(updated, INTERVAL('2027-01-01', '2026-01-01'))", "INTERVAL starts after it ends", None),
    ("updated = 'yesterday'", "updated is a timestamp property: compare it with TIMESTAMP", None),
    ('{"op": "t_after", "args": [{"property": "updated"}, {"timestamp": "2026-13-01T00:00:00Z"}]}',
     "at /args/1/timestamp is not a date-time", {"pointer": "/args/1/timestamp"}),
])
def test_bad_time_filters_name_the_problem(cql_filter, fragment, position):
    client = create_app().test_client()
    r = client.get(f"/ogc/collections/stations/items?filter={quote(cql_filter)}")
    assert r.status_code == 400
    body = r.get_json()
    assert fragment in body["description"], body
    assert body.get("position") == position


def test_dates_compare_by_the_whole_day():
    from geoserver.core.service import DEFAULT_DATA_DIR
    client = create_app().test_client()
    written = iso(os.stat(DEFAULT_DATA_DIR / "stations.gpkg").st_mtime)
    day = written[:10]
    expected = {f"updated = DATE('{day}')": 3400, f"updated > DATE('{day}')": 0, f"updated >= DATE('{day}')": 3400,
                f"updated < DATE('{day}')": 0, f"updated <= DATE('{day}')": 3400, f"updated <> DATE('{day}')": 0,
                f"T_INTERSECTS(updated, DATE('{day}'))": 3400, f"T_DISJOINT(updated, DATE('{day}'))": 0,
                f"T_DURING(updated, INTERVAL('..', '{day}'))": 3400, "T_BEFORE(updated, DATE('2000-01-01'))": 0,
                f"T_EQUALS(updated, TIMESTAMP('{written}'))": 3400,
                f"updated BETWEEN DATE('{day}') AND DATE('{day}')": 3400,
                f"updated BETWEEN TIMESTAMP('{written}') AND TIMESTAMP('{written}')": 3400,
                f"updated NOT BETWEEN DATE('{day}') AND DATE('{day}')": 0,
                "updated BETWEEN DATE('2000-01-01') AND DATE('2000-01-02')": 0}
    for cql_filter, count in expected.items():
        r = client.get(f"/ogc/collections/stations/items?limit=1&filter={quote(cql_filter)}")
        assert r.status_code == 200 and r.get_json()["numberMatched"] == count, (cql_filter, r.get_json())
    r = client.get(f"/ogc/collections/stations/items?limit=1&datetime={day}")
    assert r.get_json()["numberMatched"] == 3400
    body = {"op": "t_intersects", "args": [{"property": "updated"}, {"interval": [day, ".."]}]}
    import json
    r = client.get(f"/ogc/collections/stations/items?limit=1&filter={quote(json.dumps(body))}")
    assert r.get_json()["numberMatched"] == 3400
    body["op"] = "t_disjoint"
    r = client.get(f"/ogc/collections/stations/items?limit=1&filter={quote(json.dumps(body))}")
    assert r.get_json()["numberMatched"] == 0


def test_private_changes_do_not_move_the_time_and_a_confirmed_position_does(world, tmp_path):
    """A new mobile number (private) changes nothing the public sees: no new time, no feed change. A station that
    goes back to pending (its address changed) leaves the public data; once confirmed again it is a change."""
    svc, client, manager, kind = world
    before = all_items(client)
    time.sleep(1.1)
    rows = export_rows(manager)
    rows[0]["手机号码"] = "13800000000"
    private_only = rows[0]["编号"]
    rows[1]["具体门牌号"] = "示例地址：黄浦区另一处（样例）"
    position = rows[1]["经度"], rows[1]["纬度"]
    rows[1]["经度"] = rows[1]["纬度"] = ""        # a new address without coordinates: pending (待定位)
    moved = rows[1]["编号"]
    import_rows(manager, tmp_path, rows, "a.csv")
    first = svc.storage.versions("stations")[-1]
    after = all_items(client)
    assert after[private_only] == before[private_only]
    assert moved not in after
    since = "0" if kind == "files" else "1"
    feed = client.get(f"/api/feed/stations/changes?since={since}").get_json()
    assert [(c["op"], c["id"]) for c in feed["changes"]] == [("removed", moved)]
    time.sleep(1.1)
    rows = export_rows(manager)
    row = next(r for r in rows if r["编号"] == moved)
    assert row["定位状态"] == "待定位"
    row["经度"], row["纬度"] = position       # staff place it: public again
    import_rows(manager, tmp_path, rows, "b.csv")
    second = svc.storage.versions("stations")[-1]
    again = all_items(client)
    assert again[moved]["properties"]["updated"] == second.created != first.created
    assert again[moved]["properties"]["address"] == "示例地址：黄浦区另一处（样例）"
    assert again[private_only]["properties"]["updated"] == before[private_only]["properties"]["updated"]
