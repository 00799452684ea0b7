"""The PostgreSQL + PostGIS test servers themselves (tests/pg_support.py and the fixtures in conftest.py): PostGIS 3
answers, databases come with PostGIS and are independent, committed data survives a clean stop and a crash."""

from __future__ import annotations

import os

import psycopg
import pytest

from tests import pg_support
from tests.pg_support import PgCluster


def test_cluster_runs_postgis_3(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        version = conn.execute("SELECT postgis_full_version()").fetchone()[0]
        server = conn.execute("SHOW server_version_num").fetchone()[0]
    assert 'POSTGIS="3.' in version
    assert server.startswith("15")


def test_cluster_settings(pg_cluster):
    """Loopback only, durable commits, room for connection pools, UTF-8."""
    with pg_cluster.connect() as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
            [["listen_addresses", "fsync", "synchronous_commit", "full_page_writes", "max_connections",
              "unix_socket_directories", "server_encoding"]]).fetchall())
    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["fsync"] == "on" and settings["synchronous_commit"] == "on" and settings["full_page_writes"] == "on"
    assert settings["max_connections"] == "200"
    assert settings["unix_socket_directories"].startswith(str(pg_cluster.root))
    assert settings["server_encoding"] == "UTF8"
    assert pg_cluster.url("x") == f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/x"


def test_database_has_geometry_and_gist(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regtype('geometry') IS NOT NULL").fetchone()[0]
        assert 'POSTGIS="3.' in conn.execute("SELECT postgis_full_version()").fetchone()[0]
        conn.execute("CREATE TABLE stations (id text PRIMARY KEY, geom geometry(Point, 4326) NOT NULL)")
        conn.execute("CREATE INDEX stations_geom ON stations USING gist (geom)")
        conn.execute("INSERT INTO stations VALUES ('A', ST_SetSRID(ST_MakePoint(121.4737, 31.2304), 4326)),"
                     " ('B', ST_SetSRID(ST_MakePoint(121.60, 31.30), 4326))")
        method = conn.execute("SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam"
                              " WHERE c.relname = 'stations_geom'").fetchone()[0]
        assert method == "gist"
        conn.execute("SET enable_seqscan = off")            # two rows: make the planner show it can use the index
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT id FROM stations WHERE geom && ST_MakeEnvelope(121.4, 31.2, 121.5, 31.3, 4326)"))
        assert "stations_geom" in plan
        hits = conn.execute("SELECT id FROM stations"
                            " WHERE geom && ST_MakeEnvelope(121.4, 31.2, 121.5, 31.3, 4326)").fetchall()
        assert hits == [("A",)]
        with pytest.raises(psycopg.errors.InvalidParameterValue):   # the column's SRID is enforced
            conn.execute("INSERT INTO stations VALUES ('C', ST_SetSRID(ST_MakePoint(0, 0), 3857))")


def test_databases_are_independent(pg_cluster):
    names = ["t_indep_one", "t_indep_two"]
    try:
        url_one, url_two = (pg_cluster.create_database(n) for n in names)
        assert url_one != url_two
        with psycopg.connect(url_one, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
            conn.execute("INSERT INTO only_here VALUES (1)")
        with psycopg.connect(url_two, autocommit=True) as conn:
            assert conn.execute("SELECT to_regclass('only_here')").fetchone()[0] is None
            conn.execute("CREATE TABLE only_here (x int)")          # the same name is free here
            assert conn.execute("SELECT count(*) FROM only_here").fetchone()[0] == 0
        pg_cluster.drop_database(names[0])
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url_one, connect_timeout=5).close()
        with psycopg.connect(url_two, autocommit=True) as conn:     # dropping one leaves the other alone
            assert conn.execute("SELECT count(*) FROM only_here").fetchone()[0] == 0
    finally:
        for n in names:
            pg_cluster.drop_database(n)


def test_pg_url_is_fresh_each_time(pg_cluster, pg_url):
    """The fixture's database is new (no tables) and not the template."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                              " AND tablename <> 'spatial_ref_sys'").fetchone()[0]
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert tables == 0
    assert name.startswith("t_test_pg_url_is_fresh") and name != pg_support.TEMPLATE_DB


def _insert_committed(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, geom geometry(Point, 4326))")
        conn.execute("INSERT INTO kept SELECT i, ST_SetSRID(ST_MakePoint(121 + i / 1000.0, 31), 4326)"
                     " FROM generate_series(1, 1000) i")


def _count(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM kept").fetchone()[0]


def test_stop_and_start_keep_data(private_pg_cluster):
    cluster = private_pg_cluster
    url = cluster.create_database("durable")
    _insert_committed(url)
    cluster.stop()
    assert not cluster.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    cluster.stop()                                            # stopping a stopped server does nothing
    cluster.start()
    assert cluster.is_running()
    assert cluster.url("durable") == url                      # same port after a restart
    assert _count(url) == 1000


def test_kill_then_start_recovers_committed_data(private_pg_cluster):
    cluster = private_pg_cluster
    url = cluster.create_database("crashed")
    _insert_committed(url)
    open_tx = psycopg.connect(url)                            # a transaction in flight when the server dies
    open_tx.execute("INSERT INTO kept VALUES (5000, NULL)")
    open_tx.execute("DELETE FROM kept WHERE id <= 10")
    pid = cluster.postmaster_pid()
    cluster.kill()
    assert not cluster.is_running()
    assert not os.path.exists(f"/proc/{pid}") or not pg_support._process_alive(pid)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError):
        open_tx.execute("SELECT 1")
    open_tx.close()
    cluster.start()
    assert "database system was interrupted" in cluster.log_tail(100_000)   # it did crash recovery
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), min(id), max(id) FROM kept").fetchone() == (1000, 1, 1000)
        conn.execute("INSERT INTO kept VALUES (2000, NULL)")              # and takes writes again


def test_private_clusters_are_separate(pg_cluster, private_pg_cluster):
    assert private_pg_cluster.port != pg_cluster.port
    assert private_pg_cluster.root != pg_cluster.root
    with private_pg_cluster.connect() as conn:
        conn.execute("CREATE DATABASE only_private")
    with pg_cluster.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'only_private'").fetchone() is None


def test_destroy_removes_everything():
    cluster = PgCluster.create()
    root, pid = cluster.root, cluster.postmaster_pid()
    assert cluster.is_running() and root.is_dir()
    cluster.destroy()
    assert not root.exists()
    assert not pg_support._process_alive(pid)
    with pytest.raises(RuntimeError, match="destroyed"):
        cluster.start()


def test_missing_binaries_are_an_error_not_a_skip(monkeypatch, tmp_path):
    monkeypatch.setattr(pg_support, "DEBIAN_BINDIR", tmp_path / "nowhere")
    monkeypatch.setenv("PATH", str(tmp_path))                  # and no pg_config either
    with pytest.raises(RuntimeError, match=r"scripts/setup\.sh --with-test-tools"):
        PgCluster.create()
