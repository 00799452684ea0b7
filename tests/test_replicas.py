"""PostGIS as the shared store: `geoserver db init`, two real server replicas over one real database, the database
going away and coming back, and a writer killed in the middle of its transaction."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from geoserver.cli import main
from tests.conftest import start_server, stop_server

pytestmark = pytest.mark.external

EXE = str(Path(sys.executable).with_name("geoserver"))


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 20.0):
    """(status, JSON body) of one request; error statuses are answers too."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def feature(name: str) -> dict:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]},
            "properties": {"name": name, "district": "黄浦区", "address": "人民大道1号", "services": ["water"],
                           "opening_hours": "24/7", "host_org": "黄浦区总工会", "contact_name": "赵六",
                           "contact_phone": "13700000000"}}


def cli(url: str, *args):
    return CliRunner().invoke(main, ["--database-url", url, *map(str, args)])


def init_db(url: str) -> None:
    result = cli(url, "db", "init")
    assert result.exit_code == 0, result.output


def token(url: str, name: str = "alice") -> dict:
    result = CliRunner().invoke(main, ["--database-url", url, "token", "add", name])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.stdout.strip().splitlines()[0]}"}


def wait_for(check, timeout: float, step: float = 0.05):
    """Poll ``check()`` until it returns a true value (returned) or ``timeout`` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)


def names_near(base: str) -> set[str]:
    status, body = http("GET", f"{base}/api/nearest?lon=121.4737&lat=31.2304&layer=stations&k=5")
    assert status == 200, body
    return {f["properties"]["name"] for f in body["features"]}


def test_db_init_creates_readable_tables_and_is_safe_to_run_again(pg_url):
    first = cli(pg_url, "db", "init")
    assert first.exit_code == 0, first.output
    assert "schema version 2 (migrations applied: 0001_initial, 0002_partners)" in first.output
    assert "stations             3400 features loaded as version 1" in first.output
    assert "7 layers loaded from" in first.output
    again = cli(pg_url, "db", "init")
    assert again.exit_code == 0, again.output
    assert "schema version 2 (migrations applied: none needed)" in again.output
    assert "the database already holds layers: none loaded" in again.output
    status = cli(pg_url, "db", "status")
    assert "stations          version 1" in status.output
    with psycopg.connect(pg_url) as conn:   # what QGIS, pg_featureserv or tipg see: plain PostGIS tables
        assert conn.execute("SELECT count(*) FROM layers.stations").fetchone()[0] == 3400
        assert conn.execute("SELECT type, srid FROM geometry_columns WHERE f_table_schema = 'layers' AND "
                            "f_table_name = 'stations'").fetchone() == ("POINT", 4326)
        assert conn.execute("SELECT type FROM geometry_columns WHERE f_table_name = 'districts'").fetchone() == \
            ("GEOMETRY",)
        index = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'layers' AND "
                             "tablename = 'stations' AND indexdef LIKE '%gist%'").fetchone()[0]
        assert "USING gist (geom)" in index
        # the same station as the bundled file, to the 7th decimal
        row = conn.execute("SELECT name, round(ST_X(geom)::numeric, 7), round(ST_Y(geom)::numeric, 7) FROM "
                           "layers.stations WHERE id = 'ST00001'").fetchone()
    from geoserver.core.service import GeoService
    layer = GeoService().layer("stations")
    pos = layer.position("ST00001")
    assert row[0] == layer.properties[pos]["name"]
    assert float(row[1]) == pytest.approx(layer.index.lon[pos], abs=1e-7)
    assert float(row[2]) == pytest.approx(layer.index.lat[pos], abs=1e-7)


def test_a_server_without_a_reachable_database_says_so_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["--database-url", "postgresql://nobody@127.0.0.1:1/none", "layers"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the database is unreachable (")
    assert "Traceback" not in result.output


def test_two_replicas_edit_on_one_served_by_the_other_and_outage_heals(private_pg_cluster):
    url = private_pg_cluster.create_database("replicas")
    init_db(url)
    auth = token(url)
    env = {"GEOSERVER_DATABASE_URL": url}
    a_url, a = start_server(env, workers=2)
    b_url, b = start_server(env, workers=2)
    try:
        for base in (a_url, b_url):
            status, health = http("GET", f"{base}/healthz")
            assert (status, health["status"], health["storage"]) == (200, "ok", "postgis")
        # every worker of both replicas listens from its birth, also those no request has reached yet (one that
        # did not would serve the version it was forked with once the database is gone)

        def listeners() -> int:
            with psycopg.connect(url, autocommit=True) as conn:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                    "'geoserver-watch'").fetchone()[0]

        assert wait_for(lambda: listeners() == 4, timeout=10.0)
        # an edit through A is served by B within 2 s of its commit (A's 201), with no failed request meanwhile
        status, created = http("POST", f"{a_url}/api/admin/layers/stations/features", feature("复制测试驿站"), auth)
        assert status == 201, created
        start = time.monotonic()
        seen = wait_for(lambda: "复制测试驿站" in names_near(b_url), timeout=2.0)
        assert seen and time.monotonic() - start < 2.0
        assert "复制测试驿站" in names_near(a_url)

        # the database goes away: reads go on from memory, health says degraded and why, writes are a JSON 503
        private_pg_cluster.stop()
        for base in (a_url, b_url):
            health = wait_for(lambda: (lambda h: h if h[1]["status"] == "degraded" else None)(
                http("GET", f"{base}/healthz")), timeout=10.0)
            assert health[0] == 200 and health[1]["reason"].startswith("database unreachable")
            assert "复制测试驿站" in names_near(base)
            status, items = http("GET", f"{base}/ogc/collections/stations/items?limit=3")
            assert status == 200 and len(items["features"]) == 3
        status, refused = http("POST", f"{a_url}/api/admin/layers/stations/features", feature("断线驿站"), auth)
        assert status == 503, refused
        assert refused["code"] == "StorageUnavailable" and "nothing changed" in refused["description"]

        # it comes back: everything heals by itself, writes work, and B sees them
        private_pg_cluster.start()
        for base in (a_url, b_url):
            wait_for(lambda: http("GET", f"{base}/healthz")[1]["status"] == "ok", timeout=15.0)
        status, created = wait_for(lambda: (lambda r: r if r[0] == 201 else None)(
            http("POST", f"{a_url}/api/admin/layers/stations/features", feature("恢复后驿站"), auth)), timeout=15.0)
        wait_for(lambda: "恢复后驿站" in names_near(b_url), timeout=2.0)
        assert "断线驿站" not in names_near(b_url)
    finally:
        stop_server(a)
        stop_server(b)


def test_a_replica_catches_up_on_versions_made_while_it_was_cut_off(private_pg_cluster, tmp_path):
    """B misses the notification (the database restarts between the write and B's reconnect): it catches up."""
    url = private_pg_cluster.create_database("catchup")
    init_db(url)
    b_url, b = start_server({"GEOSERVER_DATABASE_URL": url}, workers=1)
    try:
        assert "补课驿站" not in names_near(b_url)
        private_pg_cluster.stop()
        wait_for(lambda: http("GET", f"{b_url}/healthz")[1]["status"] == "degraded", timeout=10.0)
        private_pg_cluster.start()
        # a write B cannot hear about if its listener is not back yet: made at once, through the CLI
        form = tmp_path / "form.csv"
        form.write_text("名称,所在区,地址,所属单位,服务项目,开放时间,经度,纬度\n"
                        "补课驿站,黄浦区,人民大道1号,黄浦区总工会,补水,24/7,121.4737,31.2304\n", encoding="utf-8")
        result = wait_for(lambda: (lambda r: r if r.exit_code == 0 else None)(
            cli(url, "import", "stations", form, "--crs", "wgs84", "--no-geocode")), timeout=15.0)
        assert "stations: version 2: 1 added, 0 updated, 0 removed" in result.output
        wait_for(lambda: "补课驿站" in names_near(b_url), timeout=15.0)
    finally:
        stop_server(b)


@pytest.mark.parametrize("point", ["version-recorded", "activated"])
def test_a_writer_killed_mid_transaction_loses_nothing_committed(pg_url, tmp_path, point):
    init_db(pg_url)
    form = tmp_path / "form.csv"
    form.write_text("名称,所在区,地址,所属单位,服务项目,开放时间,经度,纬度\n"
                    "先导入驿站,黄浦区,人民大道1号,黄浦区总工会,补水,24/7,121.4737,31.2304\n", encoding="utf-8")
    ok = cli(pg_url, "import", "stations", form, "--crs", "wgs84", "--no-geocode")
    assert ok.exit_code == 0, ok.output
    with psycopg.connect(pg_url) as conn:
        before = conn.execute("SELECT version, data_version FROM geoserver.layer_state WHERE layer = 'stations'"
                              ).fetchone()
        rows_before = conn.execute("SELECT count(*) FROM layers.stations").fetchone()[0]
    assert before[0] == 2 and rows_before == 3401
    form.write_text("名称,所在区,地址,所属单位,服务项目,开放时间,经度,纬度\n"
                    "被杀驿站,黄浦区,人民大道2号,黄浦区总工会,补水,24/7,121.4740,31.2310\n", encoding="utf-8")
    killed = subprocess.run([EXE, "--database-url", pg_url, "import", "stations", str(form), "--crs", "wgs84",
                             "--no-geocode"], env={**os.environ, "GEOSERVER_FAULT_INJECT": f"kill:{point}"},
                            capture_output=True, timeout=120)
    assert killed.returncode == -9
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version, data_version FROM geoserver.layer_state WHERE layer = 'stations'"
                            ).fetchone() == before
        assert conn.execute("SELECT count(*) FROM layers.stations").fetchone()[0] == rows_before
        assert conn.execute("SELECT max(number) FROM geoserver.versions WHERE layer = 'stations'").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM layers.stations WHERE name = '被杀驿站'").fetchone()[0] == 0
    again = cli(pg_url, "import", "stations", form, "--crs", "wgs84", "--no-geocode")   # the lock died with it
    assert again.exit_code == 0, again.output
    history = cli(pg_url, "history", "stations")
    assert [line.split()[0] for line in history.output.splitlines()[1:]] == ["v1", "v2", "v3"]


def test_polling_alone_keeps_a_replica_in_step(private_pg_cluster):
    """Where LISTEN is off or refused (a hot-standby read replica), the state table is polled every second."""
    url = private_pg_cluster.create_database("polling")
    init_db(url)
    auth = token(url)
    a_url, a = start_server({"GEOSERVER_DATABASE_URL": url}, workers=1)
    b_url, b = start_server({"GEOSERVER_DATABASE_URL": url, "GEOSERVER_DATABASE_LISTEN": "0"}, workers=1)
    try:
        assert http("GET", f"{b_url}/healthz")[1]["status"] == "ok"
        status, created = http("POST", f"{a_url}/api/admin/layers/stations/features", feature("轮询驿站"), auth)
        assert status == 201, created
        start = time.monotonic()
        wait_for(lambda: "轮询驿站" in names_near(b_url), timeout=3.0)
        assert time.monotonic() - start < 3.0
    finally:
        stop_server(a)
        stop_server(b)
