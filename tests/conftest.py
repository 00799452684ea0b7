"""Shared fixtures: the bundled service (loaded once), the Flask app and client, tiny hand-built layers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from geoserver.core.service import DEFAULT_LAYERS_DIR, GeoService
from geoserver.web import create_app

ROOT = Path(__file__).resolve().parents[1]


#: Every storage backend: the fixtures below give each test that uses them once per backend.
BACKENDS = ("files", "postgis")


def postgis_service(cluster, data_dir: Path, layers_dir: Path, name: str) -> GeoService:
    """A GeoService over a fresh PostGIS database (on ``cluster``) loaded from ``data_dir`` as `geoserver db init`
    does; ``data_dir`` stays its folder of planning inputs."""
    from geoserver.core.layers import load_specs
    from geoserver.storage.postgis import PostgisStorage, initialise
    storage = PostgisStorage(cluster.create_database(name))
    vocab, specs = load_specs(layers_dir)
    initialise(storage, specs, vocab, data_dir, "geoserver")
    return GeoService(data_dir, layers_dir, storage=storage)


@pytest.fixture(scope="session", params=BACKENDS)
def service(request) -> GeoService:
    """The bundled data, loaded once for the whole session (read-only use), from each storage backend."""
    if request.param == "files":
        return GeoService()
    from geoserver.core.service import DEFAULT_DATA_DIR
    return postgis_service(request.getfixturevalue("pg_cluster"), DEFAULT_DATA_DIR, DEFAULT_LAYERS_DIR,
                           f"bundled_{uuid_hex()}")


def uuid_hex() -> str:
    import uuid
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def app(service):
    return create_app(service=service)


@pytest.fixture()
def client(app):
    return app.test_client()


def write_tiny_layers(data_dir: Path) -> None:
    """A tiny data directory: two districts as boxes and four stations with literal positions."""
    data_dir.mkdir(parents=True, exist_ok=True)
    districts = gpd.GeoDataFrame([
        {"id": "310101", "name": "黄浦区", "name_en": "Huangpu", "zone": "central", "suburban": False,
         "area_km2": 1.0, "population_2020": 100, "urban_population_2020": 100, "source": "test",
         "geometry": box(121.40, 31.20, 121.50, 31.30)},
        {"id": "310151", "name": "崇明区", "name_en": "Chongming", "zone": "suburban", "suburban": True,
         "area_km2": 1.0, "population_2020": 50, "urban_population_2020": 10, "source": "test",
         "geometry": box(121.50, 31.20, 121.60, 31.30)},
    ], crs="EPSG:4326")
    districts.to_file(data_dir / "districts.gpkg", layer="districts", driver="GPKG")
    common = {"district_code": "310101", "district": "黄浦区", "subdistrict": None, "address": "测试地址",
              "host_org": "测试工会", "source": "test", "contact_name": "联系人", "contact_phone": "10000000001"}
    stations = gpd.GeoDataFrame([
        {**common, "id": "A", "name": "甲", "services": "water,charging", "opening_hours": "24/7",
         "geometry": Point(121.45, 31.25)},
        {**common, "id": "B", "name": "乙", "services": "water", "opening_hours": "Mo-Fr 09:00-17:00",
         "geometry": Point(121.46, 31.25)},
        {**common, "id": "C", "name": "丙", "services": "charging,microwave", "opening_hours": "Mo-Fr 09:00-17:00",
         "geometry": Point(121.45, 31.27)},
        {**common, "id": "D", "name": "丁", "district_code": "310151", "district": "崇明区",
         "services": "water,toilet", "opening_hours": "Sa,Su 10:00-16:00", "geometry": Point(121.55, 31.25)},
    ], crs="EPSG:4326")
    stations.to_file(data_dir / "stations.gpkg", layer="stations", driver="GPKG")


@pytest.fixture()
def tiny_layers_dir(tmp_path) -> Path:
    """A layers/ folder with only the services vocabulary, stations and districts specs."""
    layers = tmp_path / "layers"
    layers.mkdir()
    for name in ("services.toml", "stations.toml", "districts.toml"):
        shutil.copy(DEFAULT_LAYERS_DIR / name, layers / name)
    return layers


@pytest.fixture(params=BACKENDS)
def tiny_service(request, tmp_path, tiny_layers_dir) -> GeoService:
    """The tiny layers, in files or in a PostGIS database of their own."""
    write_tiny_layers(tmp_path / "data")
    if request.param == "files":
        return GeoService(tmp_path / "data", tiny_layers_dir)
    return postgis_service(request.getfixturevalue("pg_cluster"), tmp_path / "data", tiny_layers_dir,
                           f"tiny_{uuid_hex()}")


@pytest.fixture()
def tiny_file_service(tmp_path, tiny_layers_dir) -> GeoService:
    """The tiny layers in GeoPackage files (tests of the file backend itself: they look at the files)."""
    write_tiny_layers(tmp_path / "data")
    return GeoService(tmp_path / "data", tiny_layers_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict | None = None, workers: int = 2, preexec_fn=None) -> tuple[str, subprocess.Popen]:
    """Start the real production server (``geoserver serve``) on a free loopback port; wait until it answers.

    ``env`` adds to (or replaces) the environment; tile settings of the caller's environment are dropped so tests
    decide them."""
    port = free_port()
    exe = Path(sys.executable).with_name("geoserver")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GEOSERVER_TILES", "GEOSERVER_AMAP"))}
    proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**clean, **(env or {})},
                            start_new_session=True, preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return url, proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("geoserver serve did not start: " + proc.stderr.read().decode()[-2000:])
            time.sleep(0.1)


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started by start_server: its own process group (main process and workers)."""
    import signal
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def live_server():
    """The real production server (``geoserver serve``) on a free loopback port; stopped by its pid."""
    url, proc = start_server()
    yield url
    stop_server(proc)


# ------------------------------------------------------------------------------------------------------------------
# Real PostgreSQL + PostGIS (tests/pg_support.py): private servers started by the tests, never a system cluster.
# Missing PostgreSQL is an error, not a skip: scripts/setup.sh --with-test-tools installs it.

import re as _re
import uuid as _uuid

from tests.pg_support import PgCluster


@pytest.fixture(scope="session")
def pg_cluster():
    """One running PostgreSQL 15 + PostGIS 3 server for this test process (each pytest-xdist worker has its own),
    destroyed at the end of the session. Tests must not stop or kill it: use ``private_pg_cluster`` for that."""
    cluster = PgCluster.create()
    yield cluster
    cluster.destroy()


def _pg_test_db_name(request) -> str:
    """A unique database name that says which test it belongs to (at most 63 bytes, PostgreSQL's limit)."""
    stem = _re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"t_{stem}_{_uuid.uuid4().hex[:10]}"


@pytest.fixture()
def pg_url(pg_cluster, request) -> str:
    """The URL (``postgresql://postgres@127.0.0.1:PORT/NAME``) of a fresh database with the postgis extension, on the
    shared ``pg_cluster``; dropped (open sessions disconnected) after the test."""
    name = _pg_test_db_name(request)
    url = pg_cluster.create_database(name)
    yield url
    if pg_cluster.is_running():
        pg_cluster.drop_database(name)


@pytest.fixture()
def private_pg_cluster():
    """A running server of the test's own (about 1 s to create), for tests that stop, kill or reconfigure it;
    destroyed after the test whatever state it is in. ``private_pg_cluster.create_database(name)`` gives a database
    with postgis."""
    cluster = PgCluster.create()
    yield cluster
    cluster.destroy()


# ------------------------------------------------------------------------------------------------------------------
# A private, writable copy of the bundled data in each storage backend (the import, history and rollback tests).

class StoredData:
    """The bundled data copied for one test, stored in the files of ``data_dir`` or in a PostGIS database of its own
    loaded from that copy (then ``data_dir`` keeps the planning inputs only: its layer files are removed, so nothing
    can read them by mistake). Everything below goes through the chosen store."""

    def __init__(self, kind: str, data_dir: Path, url: str | None = None):
        from geoserver.core.layers import load_specs
        from geoserver.core.service import resolve_layers_dir
        self.kind, self.data_dir, self.url = kind, data_dir, url
        self.vocab, self.specs = load_specs(resolve_layers_dir(None))
        self._storages: list = []

    def new_storage(self):
        """A store object of its own (as another process would open)."""
        from geoserver.storage.files import FileStorage
        from geoserver.storage.postgis import PostgisStorage
        storage = PostgisStorage(self.url) if self.url else FileStorage(self.data_dir)
        self._storages.append(storage)
        return storage

    def storage(self):
        """The store object the helpers below read through (one per copy: one connection pool)."""
        return self._storages[0] if self._storages else self.new_storage()

    def service(self) -> GeoService:
        """A service freshly loaded from the store."""
        return GeoService(data_dir=self.data_dir, storage=self.new_storage())

    def manager(self):
        from geoserver.core.manage import DataManager
        return DataManager(self.service())

    def options(self) -> list[str]:
        """The global CLI options that select this store."""
        url = ["--database-url", self.url] if self.url else []
        return [*url, "--data-dir", str(self.data_dir)]

    def cli(self, *args):
        """``geoserver [store options] ARGS`` through click's runner (the CLI's own $GEOSERVER_DATABASE_URL export is
        undone afterwards: it must not leak into later tests of this process)."""
        from click.testing import CliRunner

        from geoserver.cli import main
        return CliRunner().invoke(main, [*self.options(), *map(str, args)], env={"GEOSERVER_DATABASE_URL": None})

    def layer(self, layer_id: str = "stations"):
        """The layer as loaded from the store now."""
        return self.storage().load_layer(self.specs[layer_id], self.vocab)

    def features(self, layer_id: str = "stations") -> dict[str, tuple[str, dict, float, float]]:
        """name -> (id, public properties, lon, lat) of the layer as reloaded from the store."""
        layer = self.layer(layer_id)
        return {p["name"]: (str(fid), p, float(x), float(y))
                for fid, p, x, y in zip(layer.ids, layer.properties, layer.index.lon, layer.index.lat)}

    def records(self, layer_id: str = "stations") -> dict[str, dict]:
        """id -> every stored field (private ones too) of the current data."""
        records, _ = self.storage().read_records(self.specs[layer_id])
        return {r["id"]: r for r in records}

    def versions(self, layer_id: str = "stations") -> list[int]:
        return [v.number for v in self.history(layer_id)]

    def history(self, layer_id: str = "stations") -> list:
        return self.storage().versions(layer_id)

    def data_version(self, layer_id: str = "stations") -> str | None:
        """The layer's data version: a hash of its content (for files, of the GeoPackage's bytes)."""
        return self.storage().data_version(self.specs[layer_id])

    def audit(self, limit: int = 100) -> list[dict]:
        return self.storage().audit_records(limit)

    def close(self) -> None:
        for storage in self._storages:
            storage.release()


@pytest.fixture(params=BACKENDS)
def stored_data(request, tmp_path):
    """A factory of private copies of the bundled data in the test's backend (files or PostGIS, parametrised):
    ``stored_data()`` or ``stored_data("other")`` for a second, independent copy. PostGIS databases are loaded from
    the copy as `geoserver db init --from` does, and dropped after the test."""
    from geoserver.core.service import DEFAULT_DATA_DIR
    made: list[StoredData] = []
    databases: list[tuple] = []     # (cluster, name)

    def make(name: str = "geo") -> StoredData:
        data_dir = tmp_path / name
        shutil.copytree(DEFAULT_DATA_DIR, data_dir)
        if request.param == "files":
            made.append(StoredData("files", data_dir))
            return made[-1]
        from geoserver.storage.postgis import initialise
        cluster = request.getfixturevalue("pg_cluster")
        databases.append((cluster, f"{_pg_test_db_name(request)}_{name[:8]}"))
        stored = StoredData("postgis", data_dir, cluster.create_database(databases[-1][1]))
        made.append(stored)
        storage = stored.storage()
        initialise(storage, stored.specs, stored.vocab, data_dir, "geoserver")
        for spec in stored.specs.values():     # the layers live in the database now
            (data_dir / spec.data_file).unlink()
        return stored

    yield make
    for stored in made:
        stored.close()
    for cluster, name in databases:
        if cluster.is_running():
            cluster.drop_database(name)
