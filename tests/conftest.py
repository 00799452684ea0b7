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


@pytest.fixture(scope="session")
def service() -> GeoService:
    """The bundled data, loaded once for the whole session (read-only use)."""
    return GeoService()


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


@pytest.fixture()
def tiny_service(tmp_path, tiny_layers_dir) -> GeoService:
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
