#!/usr/bin/env python3
"""Benchmark our OGC API - Features endpoint against pygeoapi + PostGIS.

The script serves the same point layer (a GeoPackage) through pygeoapi backed
by a throwaway PostgreSQL/PostGIS cluster and through our own server, checks
that both answer a bbox ``items`` request with the same features, then runs
``wrk`` against each in turn and reports requests/s and latency percentiles.

Everything it starts (PostgreSQL, gunicorn/pygeoapi, optionally our server)
is stopped by process id, and its temp dir removed, on exit, error or Ctrl-C.
All traffic goes to 127.0.0.1. It installs nothing: run
``bash benchmarks/setup_pygeoapi.sh`` first.

Usage::

    .venv/bin/python benchmarks/pygeoapi_compare.py [--gpkg PATH]
        [--duration 10] [--connections 16]
        [--ours-url http://127.0.0.1:8000 | --start-ours | --skip-ours]

Without --ours-url or --skip-ours, our server is started with
``.venv/bin/geoserver serve`` (same worker count as pygeoapi); if that
fails, our side is skipped with a message and pygeoapi is still measured.
Results: printed table + benchmarks/results/pygeoapi_compare.json.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import datetime as dt
import glob
import json
import os
import platform
import pwd
import random
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
PYGEOAPI_VENV = BENCH_DIR / ".venv-pygeoapi"
RESULTS_FILE = BENCH_DIR / "results" / "pygeoapi_compare.json"
OURS_COMMAND = REPO / ".venv" / "bin" / "geoserver"
LAYER_CONFIG = REPO / "layers" / "stations.toml"
SETUP_COMMAND = "bash benchmarks/setup_pygeoapi.sh"

HOST = "127.0.0.1"
COLLECTION = "stations"
TABLE = "stations"
DB_NAME = "bench"
DB_USER = "bench"
PYGEOAPI_ITEMS_PATH = f"/collections/{COLLECTION}/items"
OURS_ITEMS_PATH = f"/ogc/collections/{COLLECTION}/items"
ACCEPT = "application/geo+json, application/json;q=0.9"
DEFAULT_BBOX = "121.40,31.18,121.52,31.28"
FULL_LIMIT = 1000  # parity check: fetch the whole bbox to compare ids
MAX_DURATION_S = 300
READY_TIMEOUT_S = 60
LOOPBACK_NAMES = {"localhost", "::1"}


class SetupMissing(RuntimeError):
    """A prerequisite (package, venv, file) is missing; nothing was started."""


# --------------------------------------------------------------------------
# Process bookkeeping
# --------------------------------------------------------------------------

def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this child if the harness itself dies (prctl)."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Started:
    """A process this script started, and how to stop it politely."""

    name: str
    proc: subprocess.Popen
    stop_signal: int = signal.SIGTERM


@dataclass
class Processes:
    """Processes started by this run; stopped in reverse order by pid."""

    items: list[Started] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], log_path: Path,
              stop_signal: int = signal.SIGTERM, **popen_kwargs) -> Started:
        """Start ``cmd`` in its own session, output to ``log_path``."""
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent, **popen_kwargs)
        started = Started(name, proc, stop_signal)
        self.items.append(started)
        return started

    def stop(self, started: Started, timeout: float = 15) -> None:
        """Signal one process (by pid), wait, and SIGKILL it if it lingers."""
        proc = started.proc
        if proc.poll() is None:
            proc.send_signal(started.stop_signal)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if started in self.items:
            self.items.remove(started)

    def stop_all(self) -> None:
        """Stop every process still tracked, newest first."""
        for started in reversed(list(self.items)):
            try:
                self.stop(started)
            except Exception as exc:  # keep stopping the others
                print(f"warning: could not stop {started.name} "
                      f"(pid {started.proc.pid}): {exc}", file=sys.stderr)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def log(msg: str) -> None:
    """Print a progress line."""
    print(f"[compare] {msg}", flush=True)


def cpu_busy_fraction(interval: float = 1.0) -> float | None:
    """Share of CPU time busy over ``interval`` s (from /proc/stat).

    Other work on the machine skews the numbers; this is checked before
    anything is started.
    """
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values), idle
    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total1 - total0
    return round(1 - (idle1 - idle0) / elapsed, 3) if elapsed else None


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file (or '')."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run(cmd: list[str], timeout: float = 120, **kwargs) -> str:
    """Run a command to completion; raise with its output if it fails."""
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         preexec_fn=_die_with_parent, **kwargs)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}):\n"
                           f"{res.stdout}\n{res.stderr}")
    return res.stdout


def is_loopback_url(url: str) -> bool:
    """True if the URL's host is on this machine's loopback interface."""
    host = urllib.parse.urlsplit(url).hostname or ""
    return host.startswith("127.") or host in LOOPBACK_NAMES


def http_get_json(url: str, timeout: float = 30) -> tuple[dict, int]:
    """GET a JSON document; return (parsed body, body size in bytes)."""
    req = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body), len(body)


def wait_http_ready(url: str, started: Started | None,
                    timeout: float = READY_TIMEOUT_S) -> None:
    """Poll ``url`` until it answers 200, the process exits, or time is up."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if started is not None and started.proc.poll() is not None:
            raise RuntimeError(f"{started.name} exited with code "
                               f"{started.proc.returncode}")
        try:
            http_get_json(url, timeout=5)
            return
        except (OSError, ValueError) as exc:
            last_error = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout}s: {last_error}")


# --------------------------------------------------------------------------
# Prerequisites
# --------------------------------------------------------------------------

@dataclass
class Tools:
    """Paths of the external programs this run needs."""

    pg_bindir: Path
    pg_user: str | None
    wrk: str
    ogr2ogr: str
    gunicorn: Path
    pygeoapi_python: Path


def find_pg_bindir() -> Path | None:
    """Locate PostgreSQL server binaries (PATH first, then Debian layout)."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[4]), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def has_postgis(pg_bindir: Path) -> bool:
    """True if the PostGIS extension is installed for this PostgreSQL."""
    pg_config = pg_bindir / "pg_config"
    if not pg_config.exists():
        return False
    sharedir = run([str(pg_config), "--sharedir"]).strip()
    return Path(sharedir, "extension", "postgis.control").exists()


def postgres_os_user() -> str | None:
    """OS user to run the cluster as: 'postgres' when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise SetupMissing("running as root but there is no 'postgres' "
                           "OS user (install postgresql)") from exc
    return "postgres"


def check_tools() -> Tools:
    """Find every external tool; raise SetupMissing naming what is absent."""
    missing = []
    pg_bindir = find_pg_bindir()
    if pg_bindir is None:
        missing.append("PostgreSQL server (initdb/postgres)")
    elif not has_postgis(pg_bindir):
        missing.append(f"PostGIS for PostgreSQL in {pg_bindir}")
    wrk, ogr2ogr = shutil.which("wrk"), shutil.which("ogr2ogr")
    if not wrk:
        missing.append("wrk")
    if not ogr2ogr:
        missing.append("ogr2ogr (gdal-bin)")
    gunicorn = PYGEOAPI_VENV / "bin" / "gunicorn"
    if not (gunicorn.exists() and (PYGEOAPI_VENV / "bin" / "pygeoapi").exists()):
        missing.append(f"pygeoapi venv at {PYGEOAPI_VENV}")
    if missing:
        raise SetupMissing("missing: " + "; ".join(missing))
    return Tools(pg_bindir, postgres_os_user(), wrk, ogr2ogr, gunicorn,
                 PYGEOAPI_VENV / "bin" / "python")


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def make_synthetic_gpkg(path: Path, count: int, ogr2ogr: str) -> None:
    """Write ``count`` random Shanghai points as layer ``stations``."""
    rng = random.Random(20240601)
    csv_path = path.with_suffix(".csv")
    districts = ["Huangpu", "Xuhui", "Jing'an", "Pudong", "Minhang"]
    services = ["water", "water;toilet", "water;charging", "rest;heating"]
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["WKT", "id", "name", "district", "services"])
        for i in range(count):
            lon, lat = rng.uniform(121.2, 121.8), rng.uniform(30.9, 31.5)
            writer.writerow([f"POINT ({lon:.6f} {lat:.6f})", f"ST{i:05d}",
                             f"Station {i}", rng.choice(districts),
                             rng.choice(services)])
    run([ogr2ogr, "-f", "GPKG", str(path), str(csv_path), "-nln", TABLE,
         "-a_srs", "EPSG:4326", "-oo", "GEOM_POSSIBLE_NAMES=WKT",
         "-oo", "KEEP_GEOM_COLUMNS=NO"])


def private_fields() -> list[str]:
    """Fields our server hides (layers/stations.toml); dropped for parity."""
    try:
        with open(LAYER_CONFIG, "rb") as fh:
            return list(tomllib.load(fh).get("private_fields", []))
    except (OSError, tomllib.TOMLDecodeError):
        return []


# --------------------------------------------------------------------------
# PostgreSQL / PostGIS
# --------------------------------------------------------------------------

@dataclass
class Database:
    """Connection details of the throwaway cluster."""

    port: int
    password: str
    bindir: Path

    def psql(self, sql: str, dbname: str = DB_NAME) -> str:
        """Run SQL through psql over TCP; return unaligned output."""
        return run([str(self.bindir / "psql"), "-h", HOST, "-p",
                    str(self.port), "-U", DB_USER, "-d", dbname, "-X", "-A",
                    "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   env={**os.environ, "PGPASSWORD": self.password}).strip()

    def ogr_dsn(self) -> str:
        """GDAL PostgreSQL connection string (password passed via env)."""
        return f"PG:host={HOST} port={self.port} dbname={DB_NAME} user={DB_USER}"


def quote_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def as_user_kwargs(user: str | None) -> dict:
    """Popen/run keyword arguments to drop root privileges to ``user``."""
    if user is None:
        return {}
    return {"user": user, "group": user, "extra_groups": []}


def start_postgres(tools: Tools, workdir: Path, procs: Processes) -> Database:
    """initdb a cluster in ``workdir`` and start it on a free loopback port."""
    datadir, sockdir = workdir / "pgdata", workdir / "pgsock"
    sockdir.mkdir()
    password = secrets.token_hex(16)
    pwfile = workdir / "pwfile"
    pwfile.write_text(password + "\n")
    if tools.pg_user:
        for path in (workdir, sockdir, pwfile):
            shutil.chown(path, tools.pg_user, tools.pg_user)
    user_kwargs = as_user_kwargs(tools.pg_user)
    run([str(tools.pg_bindir / "initdb"), "-D", str(datadir), "-U", DB_USER,
         f"--pwfile={pwfile}", "--auth-local=scram-sha-256",
         "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"],
        cwd=workdir, **user_kwargs)
    pwfile.unlink()
    port = free_port()
    started = procs.start(
        "postgres",
        [str(tools.pg_bindir / "postgres"), "-D", str(datadir), "-p", str(port),
         "-c", f"listen_addresses={HOST}",
         "-c", f"unix_socket_directories={sockdir}",
         "-c", "fsync=off", "-c", "logging_collector=off"],
        workdir / "postgres.log", stop_signal=signal.SIGINT,  # fast shutdown
        cwd=workdir, **user_kwargs)
    db = Database(port, password, tools.pg_bindir)
    wait_postgres_ready(db, started, workdir / "postgres.log")
    db.psql(f"CREATE DATABASE {DB_NAME}", dbname="postgres")
    db.psql("CREATE EXTENSION postgis")
    return db


def wait_postgres_ready(db: Database, started: Started, log_path: Path,
                        timeout: float = 30) -> None:
    """Wait until the cluster accepts TCP connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.proc.poll() is not None:
            raise RuntimeError(f"postgres exited:\n{tail(log_path)}")
        try:
            db.psql("SELECT 1", dbname="postgres")
            return
        except RuntimeError:
            time.sleep(0.3)
    raise RuntimeError(f"postgres not ready after {timeout}s:\n{tail(log_path)}")


def load_gpkg(db: Database, tools: Tools, gpkg: Path, layer: str) -> dict:
    """Load the layer into table ``stations`` (GiST index, PK on id).

    Returns row count, extent and PostGIS version for the report.
    """
    run([tools.ogr2ogr, "-f", "PostgreSQL", db.ogr_dsn(), str(gpkg), layer,
         "-nln", TABLE, "-t_srs", "EPSG:4326", "-lco", "GEOMETRY_NAME=geom",
         "-lco", "FID=ogc_fid", "-lco", "SPATIAL_INDEX=GIST",
         "-lco", "OVERWRITE=YES"],
        env={**os.environ, "PGPASSWORD": db.password}, timeout=300)
    drops = [f"DROP COLUMN IF EXISTS {quote_ident(name)}"
             for name in [*private_fields(), "ogc_fid"]]
    db.psql(f"ALTER TABLE {TABLE} {', '.join(drops)}")
    try:
        db.psql(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)")
    except RuntimeError as exc:
        raise RuntimeError("column 'id' must be unique and non-null "
                           f"(pygeoapi's id_field): {exc}") from None
    db.psql(f"ANALYZE {TABLE}")
    rows = int(db.psql(f"SELECT count(*) FROM {TABLE}"))
    extent = db.psql("SELECT concat_ws(',', ST_XMin(e), ST_YMin(e), "
                     f"ST_XMax(e), ST_YMax(e)) FROM (SELECT ST_Extent(geom) "
                     f"AS e FROM {TABLE}) s")
    return {"rows": rows, "extent": [float(v) for v in extent.split(",")],
            "postgis": db.psql("SELECT postgis_lib_version()"),
            "postgres": db.psql("SHOW server_version")}


# --------------------------------------------------------------------------
# pygeoapi
# --------------------------------------------------------------------------

def pygeoapi_config(port: int, db: Database, extent: list[float]) -> dict:
    """Minimal pygeoapi config: one PostgreSQL-backed collection."""
    base_url = f"http://{HOST}:{port}"
    return {
        "server": {
            "bind": {"host": HOST, "port": port},
            "url": base_url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "pretty_print": False,
            "limits": {"default_items": 10, "max_items": 10000},
            # Required by the schema; only used by HTML pages (not fetched).
            "map": {"url": f"{base_url}/tiles/{{z}}/{{x}}/{{y}}.png",
                    "attribution": "none"},
        },
        "logging": {"level": "ERROR"},
        # The schema requires less than the OpenAPI generator reads: it
        # also needs terms_of_service and license.url (pygeoapi 0.24.0).
        "metadata": {
            "identification": {"title": "benchmark", "description": "benchmark",
                               "keywords": ["benchmark"], "url": base_url,
                               "terms_of_service": base_url},
            "license": {"name": "CC-BY 4.0", "url": base_url},
            "provider": {"name": "benchmark"},
            "contact": {"name": "benchmark"},
        },
        "resources": {
            COLLECTION: {
                "type": "collection",
                "title": "Stations",
                "description": "Stations (benchmark copy)",
                "keywords": ["stations"],
                "extents": {"spatial": {
                    "bbox": extent,
                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
                "providers": [{
                    "type": "feature",
                    "name": "PostgreSQL",
                    "data": {"host": HOST, "port": db.port, "dbname": DB_NAME,
                             "user": DB_USER, "password": db.password,
                             "search_path": ["public"]},
                    "id_field": "id",
                    "table": TABLE,
                    "geom_field": "geom",
                }],
            }
        },
    }


def start_pygeoapi(tools: Tools, db: Database, extent: list[float],
                   workdir: Path, procs: Processes, workers: int) -> str:
    """Write config + OpenAPI doc, start gunicorn; return the base URL."""
    port = free_port()
    config_path = workdir / "pygeoapi-config.yml"
    openapi_path = workdir / "pygeoapi-openapi.yml"
    # JSON is valid YAML, so no YAML library is needed on our side.
    config_path.write_text(json.dumps(pygeoapi_config(port, db, extent), indent=2))
    config_path.chmod(0o600)
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config_path),
           "PYGEOAPI_OPENAPI": str(openapi_path)}
    run([str(PYGEOAPI_VENV / "bin" / "pygeoapi"), "openapi", "generate",
         str(config_path), "--output-file", str(openapi_path)], env=env)
    log_path = workdir / "pygeoapi.log"
    started = procs.start(
        "pygeoapi",
        [str(tools.gunicorn), "--workers", str(workers),
         "--bind", f"{HOST}:{port}", "--log-level", "warning",
         "pygeoapi.flask_app:APP"],
        log_path, env=env, cwd=workdir)
    base_url = f"http://{HOST}:{port}"
    try:
        wait_http_ready(f"{base_url}{PYGEOAPI_ITEMS_PATH}?limit=1", started)
    except RuntimeError as exc:
        raise RuntimeError(f"pygeoapi did not start: {exc}\n{tail(log_path)}")
    return base_url


def pygeoapi_version(tools: Tools) -> str:
    """Version string of the installed pygeoapi."""
    return run([str(tools.pygeoapi_python), "-c",
                "import pygeoapi; print(pygeoapi.__version__)"]).strip()


# --------------------------------------------------------------------------
# Our server
# --------------------------------------------------------------------------

def start_ours(workdir: Path, procs: Processes, workers: int) -> str:
    """Start our server via its CLI on a free port; return its base URL.

    It serves its own configured data (data/geo/), whatever --gpkg says;
    the parity check catches a mismatch.
    """
    if not OURS_COMMAND.exists():
        raise RuntimeError(f"{OURS_COMMAND} not found")
    port = free_port()
    log_path = workdir / "ours.log"
    started = procs.start(
        "ours", [str(OURS_COMMAND), "serve", "--host", HOST, "--port", str(port),
                 "--workers", str(workers)],
        log_path, cwd=REPO)
    base_url = f"http://{HOST}:{port}"
    try:
        wait_http_ready(f"{base_url}{OURS_ITEMS_PATH}?limit=1", started)
    except RuntimeError:
        procs.stop(started)
        print(f"--- last lines of {log_path.name} ---\n{tail(log_path)}\n---",
              file=sys.stderr)
        raise
    return base_url


def resolve_ours(args: argparse.Namespace, workdir: Path,
                 procs: Processes) -> tuple[str | None, str]:
    """Return (base URL or None, how/why) for our side of the comparison."""
    if args.skip_ours:
        return None, "skipped (--skip-ours)"
    if args.ours_url:
        url = args.ours_url.rstrip("/")
        try:
            wait_http_ready(f"{url}{args.ours_path}?limit=1", None, timeout=10)
        except RuntimeError as exc:
            return None, f"skipped: --ours-url not answering ({exc})"
        return url, "given by --ours-url"
    try:
        return (start_ours(workdir, procs, args.workers),
                f"started by this script ({args.workers} workers)")
    except RuntimeError as exc:
        return None, (f"skipped: 'geoserver serve' failed ({exc}); pass "
                      "--ours-url URL of a running server, or --skip-ours")


# --------------------------------------------------------------------------
# Parity check and wrk
# --------------------------------------------------------------------------

def items_url(endpoint: str, bbox: str, limit: int) -> str:
    """Build a bbox items URL from an items endpoint (base URL + path)."""
    return f"{endpoint}?bbox={bbox}&limit={limit}"


def describe_response(url: str) -> dict:
    """Fetch a FeatureCollection and summarise it for the parity check."""
    doc, size = http_get_json(url)
    features = doc.get("features", [])
    props = sorted({k for f in features for k in (f.get("properties") or {})})
    return {"url": url, "features": len(features), "bytes": size,
            "numberMatched": doc.get("numberMatched"),
            "ids": sorted(str(f.get("id")) for f in features),
            "properties": props}


def parity(theirs: dict, ours: dict, full: dict[str, dict]) -> dict:
    """Compare the benchmark responses, then the ids of the whole bbox.

    ``full`` holds both servers' answers to the same bbox with a large
    limit; their ids are compared when both returned the same number of
    features (a differing count there may just be a server-side cap, so
    it is only noted).
    """
    problems, notes = [], []
    if theirs["features"] != ours["features"]:
        problems.append(f"feature count differs: pygeoapi {theirs['features']}"
                        f" vs ours {ours['features']}")
    matched = (theirs["numberMatched"], ours["numberMatched"])
    if None not in matched and matched[0] != matched[1]:
        problems.append(f"numberMatched differs: {matched[0]} vs {matched[1]}")
    full_theirs, full_ours = full["pygeoapi"], full["ours"]
    if full_theirs["features"] != full_ours["features"]:
        notes.append(f"with limit={FULL_LIMIT}: pygeoapi returned "
                     f"{full_theirs['features']}, ours {full_ours['features']}")
    elif full_theirs["ids"] != full_ours["ids"]:
        problems.append(f"feature ids in the bbox differ (limit={FULL_LIMIT})")
    if theirs["properties"] != ours["properties"]:
        notes.append("property names differ: pygeoapi "
                     f"{theirs['properties']} vs ours {ours['properties']}")
    return {"ok": not problems, "problems": problems, "notes": notes}


def wrk_command(tools: Tools, url: str, connections: int, duration: int,
                threads: int = 2) -> list[str]:
    """The wrk invocation used for one measurement."""
    return [tools.wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            "--latency", "--timeout", "10s", "-H", f"Accept: {ACCEPT}", url]


def to_ms(value: str, unit: str) -> float:
    """Convert a wrk duration (value + us/ms/s/m) to milliseconds."""
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
    return round(float(value) * scale, 3)


def parse_wrk(output: str) -> dict:
    """Extract requests/s, latency percentiles and error counts."""
    result: dict = {"latency_ms": {}}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    result["requests_per_s"] = float(rps.group(1)) if rps else None
    avg = re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s|m)\b", output, re.M)
    if avg:
        result["latency_ms"]["avg"] = to_ms(*avg.groups())
    for pct, value, unit in re.findall(
            r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        result["latency_ms"][f"p{pct}"] = to_ms(value, unit)
    total = re.search(r"(\d+) requests in", output)
    result["requests"] = int(total.group(1)) if total else None
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+),"
                     r" timeout (\d+)", output)
    result["socket_errors"] = sum(map(int, sock.groups())) if sock else 0
    return result


def bench(tools: Tools, url: str, args: argparse.Namespace) -> dict:
    """Warm up, then run wrk once against ``url`` and parse its report."""
    if args.warmup > 0:
        run(wrk_command(tools, url, min(args.connections, 4), args.warmup),
            timeout=args.warmup + 30)
    cmd = wrk_command(tools, url, args.connections, args.duration)
    output = run(cmd, timeout=args.duration + 60)
    result = parse_wrk(output)
    result["command"] = shlex.join(cmd)
    result["raw"] = output
    return result


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def print_table(results: dict[str, dict]) -> None:
    """Print one row per measured server."""
    header = (f"{'server':<10} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
              f"{'p99 ms':>8} {'errors':>7} {'features':>8} {'bytes':>8}")
    print("\n" + header + "\n" + "-" * len(header))
    for name, res in results.items():
        if "skipped" in res:
            print(f"{name:<10} {res['skipped']}")
            continue
        lat = res["latency_ms"]
        errors = res["non_2xx"] + res["socket_errors"]
        print(f"{name:<10} {res['requests_per_s'] or 0:>9.1f} "
              f"{lat.get('p50', 0):>8.2f} {lat.get('p90', 0):>8.2f} "
              f"{lat.get('p99', 0):>8.2f} {errors:>7} "
              f"{res['response']['features']:>8} {res['response']['bytes']:>8}")
    print()


def write_results(report: dict) -> None:
    """Write the JSON report to benchmarks/results/pygeoapi_compare.json."""
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, indent=2) + "\n")
    log(f"results written to {RESULTS_FILE.relative_to(REPO)}")


# --------------------------------------------------------------------------
# Main flow
# --------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpkg", type=Path, default=Path("data/geo/stations.gpkg"),
                   help="GeoPackage to serve (relative paths: repo root)")
    p.add_argument("--layer", default="stations", help="layer in the gpkg")
    p.add_argument("--synthetic", type=int, metavar="N",
                   help="ignore --gpkg; generate N random points instead")
    p.add_argument("--duration", type=int, default=10, help="wrk seconds")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes for pygeoapi (and ours if started)")
    p.add_argument("--bbox", default=DEFAULT_BBOX)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--ours-path", default=OURS_ITEMS_PATH,
                   help="items path on our server")
    ours = p.add_mutually_exclusive_group()
    ours.add_argument("--ours-url",
                      help="base URL of an already-running server of ours")
    ours.add_argument("--start-ours", action="store_true",
                      help="start 'geoserver serve' (the default)")
    ours.add_argument("--skip-ours", action="store_true",
                      help="benchmark pygeoapi only")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="benchmark even if the two servers disagree")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION_S:
        p.error(f"--duration must be 1..{MAX_DURATION_S}")
    if not 0 <= args.warmup <= 30:
        p.error("--warmup must be 0..30")
    if not 1 <= args.workers <= 16:
        p.error("--workers must be 1..16")
    if not 1 <= args.limit <= FULL_LIMIT:
        p.error(f"--limit must be 1..{FULL_LIMIT}")
    if not 2 <= args.connections <= 1000:
        p.error("--connections must be 2..1000 (wrk uses 2 threads)")
    if args.ours_url and not is_loopback_url(args.ours_url):
        p.error("--ours-url must point at this machine (127.0.0.1/localhost)")
    if not args.gpkg.is_absolute():
        args.gpkg = REPO / args.gpkg
    if not args.synthetic and not args.gpkg.exists():
        p.error(f"{args.gpkg} does not exist (use --gpkg PATH, or "
                "--synthetic 3400 for made-up points)")
    return args


def prepare_gpkg(args: argparse.Namespace, tools: Tools, workdir: Path) -> Path:
    """Return the GeoPackage to load, generating it if --synthetic."""
    if not args.synthetic:
        return args.gpkg
    path = workdir / "synthetic.gpkg"
    make_synthetic_gpkg(path, args.synthetic, tools.ogr2ogr)
    return path


def check_parity(endpoints: dict[str, str], args: argparse.Namespace,
                 report: dict) -> bool:
    """Fetch the benchmark URL from each server; record and compare."""
    responses = {name: describe_response(items_url(ep, args.bbox, args.limit))
                 for name, ep in endpoints.items()}
    for name, resp in responses.items():
        log(f"{name}: {resp['features']} features, {resp['bytes']} bytes, "
            f"numberMatched={resp['numberMatched']}, "
            f"properties={resp['properties']}")
    report["responses"] = {n: {k: v for k, v in r.items() if k != "ids"}
                           for n, r in responses.items()}
    if "ours" not in responses:
        report["parity"] = {"ok": None, "problems": ["our server not measured"]}
        return True
    full = {name: describe_response(items_url(ep, args.bbox, FULL_LIMIT))
            for name, ep in endpoints.items()}
    report["parity"] = parity(responses["pygeoapi"], responses["ours"], full)
    for note in report["parity"]["notes"]:
        log(f"parity note: {note}")
    for problem in report["parity"]["problems"]:
        log(f"PARITY PROBLEM: {problem}")
    if report["parity"]["ok"]:
        log("parity OK")
    return report["parity"]["ok"] or args.allow_mismatch


def run_benchmark(args: argparse.Namespace, tools: Tools, workdir: Path,
                  procs: Processes) -> int:
    """Start everything, check parity, measure, report. Returns exit code."""
    busy = cpu_busy_fraction()
    if busy is not None and busy > 0.2:
        log(f"WARNING: CPUs already {busy:.0%} busy; other work on this "
            "machine will skew the numbers")
    gpkg = prepare_gpkg(args, tools, workdir)
    log(f"starting PostgreSQL ({tools.pg_bindir}) in {workdir}")
    db = start_postgres(tools, workdir, procs)
    log(f"loading {gpkg} (layer {args.layer}) into PostGIS on port {db.port}")
    data = load_gpkg(db, tools, gpkg, args.layer)
    log(f"loaded {data['rows']} rows; starting pygeoapi")
    theirs = start_pygeoapi(tools, db, data["extent"], workdir, procs,
                            args.workers)
    ours, ours_how = resolve_ours(args, workdir, procs)
    log(f"pygeoapi at {theirs}; our server: {ours or '-'} ({ours_how})")

    endpoints = {"pygeoapi": theirs + PYGEOAPI_ITEMS_PATH}
    if ours:
        endpoints["ours"] = ours + args.ours_path
    report = {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "cpu_busy_before": busy},
        "params": {"bbox": args.bbox, "limit": args.limit,
                   "duration_s": args.duration, "warmup_s": args.warmup,
                   "connections": args.connections, "threads": 2,
                   "gpkg": str(gpkg), "layer": args.layer},
        "pygeoapi": {"version": pygeoapi_version(tools), "provider": "PostgreSQL",
                     "gunicorn_workers": args.workers, **data},
        "ours": {"how": ours_how},
    }
    if not check_parity(endpoints, args, report):
        log("servers disagree; not benchmarking (use --allow-mismatch)")
        write_results(report)
        return 1
    report["results"] = measure(endpoints, tools, args)
    for name, res in report["results"].items():
        res["response"] = report["responses"][name]
    if not ours:
        report["results"]["ours"] = {"skipped": ours_how}
    print_table(report["results"])
    write_results(report)
    return 0


def measure(endpoints: dict[str, str], tools: Tools,
            args: argparse.Namespace) -> dict[str, dict]:
    """Run wrk against each server in turn."""
    results = {}
    for name, endpoint in endpoints.items():
        log(f"wrk {name}: {args.connections} connections, {args.duration}s")
        results[name] = bench(tools, items_url(endpoint, args.bbox, args.limit),
                              args)
        if results[name]["non_2xx"] or results[name]["socket_errors"]:
            log(f"WARNING: {name} had errors during the run; see 'raw' in "
                "the JSON report")
    return results


def _raise_interrupt(signum, _frame) -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so cleanup runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: set up, run, and always clean up."""
    args = parse_args(argv)
    try:
        tools = check_tools()
    except SetupMissing as exc:
        print(f"{exc}\nSet up with:  {SETUP_COMMAND}", file=sys.stderr)
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="pygeoapi-bench-"))
    try:
        return run_benchmark(args, tools, workdir, procs)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:
        log(f"ERROR: {exc}")
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        log("stopping started processes and removing " + str(workdir))
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
