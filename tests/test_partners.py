"""Partners' read keys: counted per key (requests, features, the last feed cursor), limited per key, scoped to
layers, stored hashed, visible to operators (CLI and admin API) — on the GeoPackage files and on PostGIS."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.web import create_app
from geoserver.web.partners import usage


@pytest.fixture()
def world(stored_data):
    stored = stored_data()
    svc = stored.service()
    app = create_app(service=svc)
    admin = svc.storage.tokens().add("ops", ("*",))
    return stored, svc, app, app.test_client(), {"Authorization": f"Bearer {admin}"}


def test_partner_traffic_is_counted_and_visible_to_operators(world):
    stored, svc, app, client, admin = world
    key = svc.storage.partners().add("高德地图", ("stations", "driver_homes"), 600)
    assert key.startswith("gsp_") and len(key) > 40
    h = {"X-Partner-Key": key}
    snap = client.get("/api/feed/stations/snapshot?crs=gcj02", headers=h)
    assert snap.status_code == 200
    cursor = snap.get_json()["cursor"]
    assert client.get(f"/api/feed/stations/changes?since={cursor}", headers=h).status_code == 200
    assert client.get("/ogc/collections/driver_homes/items?limit=3", headers=h).status_code == 200
    assert client.get("/api/nearest?lon=121.47&lat=31.23&layer=stations", headers=h).status_code == 200
    assert client.get("/ogc/collections/canteens/items", headers=h).status_code == 403      # not its layer
    assert client.get("/ogc/collections/canteens/items").status_code == 200                   # public without key
    listing = client.get("/api/admin/partners", headers=admin).get_json()["partners"]
    assert len(listing) == 1
    p = listing[0]
    assert (p["name"], p["layers"], p["rate_per_minute"]) == ("高德地图", ["stations", "driver_homes"], 600)
    assert (p["requests"], p["features"], p["refused"]) == (5, 3400, 1)
    assert p["cursors"] == {"stations": cursor}
    seen = datetime.fromisoformat(p["last_seen"].replace("Z", "+00:00"))
    assert abs((datetime.now(timezone.utc) - seen).total_seconds()) < 300
    assert "sha256" not in json.dumps(listing) and key not in json.dumps(listing)
    # another process (another worker or replica) adds its counts to the same store
    other = create_app(service=stored.service()).test_client()
    assert other.get("/api/feed/stations/snapshot", headers=h).status_code == 200
    assert other.get("/api/admin/partners", headers=admin).get_json()["partners"][0]["requests"] == 6


def test_keys_are_checked_rate_limited_and_revocable(world):
    stored, svc, app, client, admin = world
    store = svc.storage.partners()
    key = store.add("百度地图", ("*",), 6)        # 6 a minute: a burst of 1, then one every 10 s
    h = {"X-Partner-Key": key}
    assert client.get("/api/layers", headers=h).status_code == 200
    refused = client.get("/api/layers", headers=h)
    assert refused.status_code == 429 and refused.get_json()["code"] == "TooManyRequests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    bad = client.get("/api/layers", headers={"X-Partner-Key": "gsp_" + "x" * 43})
    assert bad.status_code == 401 and bad.get_json()["parameter"] == "X-Partner-Key"
    assert client.get("/api/layers", headers={"X-Partner-Key": "nonsense"}).status_code == 401
    with app.app_context():
        usage().flush()
    assert store.list()[0]["refused"] == 1 and store.list()[0]["requests"] == 2
    assert store.revoke("百度地图") and not store.revoke("百度地图")
    with app.app_context():
        usage()._known.clear()        # the server asks the store again within 10 s; here at once
    assert client.get("/api/layers", headers=h).status_code == 401
    # only operators of every layer see partner usage
    partial = svc.storage.tokens().add("pudong", ("stations",))
    r = client.get("/api/admin/partners", headers={"Authorization": f"Bearer {partial}"})
    assert r.status_code == 403
    assert client.get("/api/admin/partners").status_code == 401


def test_partner_cli(world, tmp_path):
    stored, svc, app, client, admin = world
    base = ["--data-dir", str(stored.data_dir)] + (["--database-url", stored.url] if stored.url else [])
    env = {"GEOSERVER_DATABASE_URL": None}
    added = CliRunner().invoke(main, [*base, "partner", "add", "随申办", "--layers", "stations",
                                                      "--rate", "120"], env=env)
    assert added.exit_code == 0, added.output
    key = added.stdout.strip()
    assert key.startswith("gsp_") and "X-Partner-Key" in added.stderr
    assert client.get("/api/feed/stations/snapshot", headers={"X-Partner-Key": key}).status_code == 200
    with app.app_context():
        usage().flush()
    listed = CliRunner().invoke(main, [*base, "partner", "list"], env=env)
    assert listed.exit_code == 0 and listed.output.startswith("随申办") and "120/min" in listed.output
    used = CliRunner().invoke(main, [*base, "partner", "usage", "--json"], env=env)
    rows = json.loads(used.output)
    assert (rows[0]["requests"], rows[0]["features"]) == (1, 3400)
    table = CliRunner().invoke(main, [*base, "partner", "usage"], env=env)
    assert "随申办" in table.output and "3,400" in table.output
    bad = CliRunner().invoke(main, [*base, "partner", "add", "x", "--layers", "nope"], env=env)
    assert bad.exit_code == 1 and "unknown layer 'nope'" in bad.output
    gone = CliRunner().invoke(main, [*base, "partner", "revoke", "nobody"], env=env)
    assert gone.exit_code == 1 and "no partner 'nobody'" in gone.output
    if stored.kind == "files":     # the key itself is stored nowhere
        text = (stored.data_dir / ".geoserver" / "partners.json").read_text(encoding="utf-8")
        assert key not in text and "随申办" in text
