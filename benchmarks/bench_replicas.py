#!/usr/bin/env python3
"""PostGIS store: our replicas against tipg and pygeoapi on the same database; write latency, propagation, memory.

One run, one throwaway PostgreSQL cluster (``tests/pg_support.py``), one database filled by ``geoserver db init``
(3,400 stations in the plain PostGIS table ``layers.stations``), and on it:

* two replicas of ours, ``geoserver serve --workers 2`` each (A and B, following the database);
* tipg 1.6.1 (uvicorn, 2 workers; ``DATABASE_URL``, ``TIPG_DB_SCHEMAS=["layers"]``), set up by
  ``bash benchmarks/setup_tipg.sh``;
* pygeoapi 0.24 (PostgreSQL provider pointed at ``layers.stations``, gunicorn, 2 sync workers), set up by
  ``bash benchmarks/setup_pygeoapi.sh``.

It first checks that all servers give the same answer (bbox: the same feature ids, also checked against SQL; item:
the same feature; nearest: the same ids as a geodesic ``ORDER BY ST_Distance`` in PostGIS), then runs ``wrk`` with the
same threads, connections and duration against each server and request, in interleaved rounds (the server order
rotates from round to round), and reports medians over the rounds. tipg and pygeoapi have no nearest-neighbour
query, so that row is ours only. Then ``--writes`` sequential admin POSTs (each a new station) on replica A: the
latency of each, its commit (heard by LISTENing on the channel the writer NOTIFYs) and the time from the commit
until replica B serves the new station (B's /api/nearest at its point, polled every 10 ms on fresh connections from
the moment the POST is sent).
Memory (USS, PSS and RSS of every process of each server) is read idle after start, after the reads and after the
writes; a worker process that disappeared meanwhile (a crash; the server starts a new one) is reported.

Everything it starts is stopped by process id (our replicas: their own process group) and the cluster is removed,
on exit, error or Ctrl-C. All traffic goes to 127.0.0.1.

Usage::

    .venv/bin/python benchmarks/bench_replicas.py [--duration 10] [--connections 16] [--rounds 3]
        [--writes 30] [--skip-tipg] [--skip-pygeoapi]

Results: a printed summary and benchmarks/results/replicas.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import math
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pygeoapi_compare as pgc  # noqa: E402  (benchmarks/: the pygeoapi helpers)
from common import GEOSERVER, free_port, machine  # noqa: E402

from tests.pg_support import PgCluster  # noqa: E402

RESULTS = HERE / "results" / "replicas.json"
TIPG_VENV = HERE / ".venv-tipg"
PYGEOAPI_VENV = HERE / ".venv-pygeoapi"
HOST = "127.0.0.1"
ACCEPT = "application/geo+json, application/json;q=0.9"

# About 0.95 km x 1.0 km around People's Square (Huangpu): 8 stations of the bundled data.
BBOX = "121.470,31.225,121.480,31.234"
POINT = (121.4737, 31.2304)
ITEM_ID = "ST00003"
LIMIT = 10
K = 5
# New stations written during the write test: a box in Huangpu outside BBOX (the read tests run before them).
WRITE_BOX = (121.485, 31.205, 121.495, 31.215)
POLL_S = 0.010
PROPAGATION_TIMEOUT_S = 10.0
STEADY_POLLS = 5


def log(msg: str) -> None:
    print(f"[replicas] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------ HTTP helpers
def get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    """(status, body) of a GET on a fresh connection; error statuses are answers too."""
    req = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get_json(url: str) -> tuple[dict, int]:
    status, body = get(url)
    if status != 200:
        raise RuntimeError(f"GET {url} -> {status}: {body[:300]!r}")
    return json.loads(body), len(body)


# ------------------------------------------------------------------------------------------------ processes
def memory(pid: int) -> dict:
    """USS, PSS and RSS (MB) of a server's process tree: the process started and all its descendants. Summed over
    the tree, USS leaves out what the processes share (forked workers share most of their parent's pages), RSS
    counts shared pages once per process, PSS divides them among the sharers: its sum is the tree's footprint."""
    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rows = []
    for p in procs:
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rows.append({"pid": p.pid, "role": "main" if p.pid == pid else "child",
                     "uss_mb": round(info.uss / 2**20, 1), "pss_mb": round(info.pss / 2**20, 1),
                     "rss_mb": round(info.rss / 2**20, 1)})
    return {"processes": rows, **{f"{kind}_mb": round(sum(r[f"{kind}_mb"] for r in rows), 1)
                                  for kind in ("uss", "pss", "rss")}}


@contextlib.contextmanager
def replica(db_url: str, name: str, workdir: Path):
    """``geoserver --database-url URL serve --workers 2`` on a free loopback port, its output in a log file;
    yields (base URL, process, seconds to ready). Stopped through its own process group (main + workers)."""
    port = free_port()
    logfile = workdir / f"{name}.log"
    t = time.perf_counter()
    with open(logfile, "ab") as out:
        proc = subprocess.Popen([str(GEOSERVER), "--database-url", db_url, "serve", "--host", HOST, "--port",
                                 str(port), "--workers", "2"], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://{HOST}:{port}"
        pgc.wait_http_ready(f"{base}/healthz", pgc.Started(name, proc))
        yield base, proc, logfile, time.perf_counter() - t
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def tree_pids(pid: int) -> list[int]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return sorted(p.pid for p in psutil.Process(pid).children(recursive=True))
    return []


def start_tipg(url: str, workdir: Path, procs: pgc.Processes) -> tuple[str, pgc.Started]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["layers"]'}
    logfile = workdir / "tipg.log"
    started = procs.start("tipg", [str(TIPG_VENV / "bin" / "uvicorn"), "tipg.main:app", "--host", HOST,
                                   "--port", str(port), "--workers", "2", "--no-access-log",
                                   "--log-level", "warning"], logfile, env=env, cwd=workdir)
    base = f"http://{HOST}:{port}"
    try:
        pgc.wait_http_ready(f"{base}/collections/layers.stations/items?limit=1", started)
    except RuntimeError as exc:
        raise RuntimeError(f"tipg did not start: {exc}\n{pgc.tail(logfile)}") from None
    return base, started


def start_pygeoapi(cluster: PgCluster, dbname: str, extent: list[float], workdir: Path,
                   procs: pgc.Processes) -> tuple[str, pgc.Started]:
    """pygeoapi's PostgreSQL provider on ``layers.stations`` of our database (config from pygeoapi_compare)."""
    port = free_port()
    config = pgc.pygeoapi_config(port, pgc.Database(cluster.port, "", cluster.bindir), extent)
    provider = config["resources"][pgc.COLLECTION]["providers"][0]
    provider["data"] = {"host": HOST, "port": cluster.port, "dbname": dbname, "user": cluster.user,
                        "password": "", "search_path": ["layers", "public"]}
    provider["table"] = "stations"
    config_path, openapi_path = workdir / "pygeoapi-config.yml", workdir / "pygeoapi-openapi.yml"
    config_path.write_text(json.dumps(config, indent=2))   # JSON is YAML
    env = {**os.environ, "PYGEOAPI_CONFIG": str(config_path), "PYGEOAPI_OPENAPI": str(openapi_path)}
    pgc.run([str(PYGEOAPI_VENV / "bin" / "pygeoapi"), "openapi", "generate", str(config_path),
             "--output-file", str(openapi_path)], env=env)
    logfile = workdir / "pygeoapi.log"
    started = procs.start("pygeoapi", [str(PYGEOAPI_VENV / "bin" / "gunicorn"), "--workers", "2",
                                       "--bind", f"{HOST}:{port}", "--log-level", "warning",
                                       "pygeoapi.flask_app:APP"], logfile, env=env, cwd=workdir)
    base = f"http://{HOST}:{port}"
    try:
        pgc.wait_http_ready(f"{base}/collections/stations/items?limit=1", started)
    except RuntimeError as exc:
        raise RuntimeError(f"pygeoapi did not start: {exc}\n{pgc.tail(logfile)}") from None
    return base, started


def version_of(python: Path, module: str) -> str:
    return pgc.run([str(python), "-c", f"import {module}; print({module}.__version__)"]).strip()


# ------------------------------------------------------------------------------------------------ checks
def request_urls(servers: dict[str, str]) -> dict[str, dict[str, str]]:
    """request name -> server name -> URL (only the servers that have that request)."""
    lon, lat = POINT
    paths = {
        "bbox": {"ours": f"/ogc/collections/stations/items?bbox={BBOX}&limit={LIMIT}",
                 "tipg": f"/collections/layers.stations/items?bbox={BBOX}&limit={LIMIT}",
                 "pygeoapi": f"/collections/stations/items?bbox={BBOX}&limit={LIMIT}"},
        "item": {"ours": f"/ogc/collections/stations/items/{ITEM_ID}",
                 "tipg": f"/collections/layers.stations/items/{ITEM_ID}",
                 "pygeoapi": f"/collections/stations/items/{ITEM_ID}"},
        "nearest": {"ours": f"/api/nearest?lon={lon}&lat={lat}&layer=stations&k={K}"},
    }
    return {req: {srv: servers[srv] + path for srv, path in by_server.items() if srv in servers}
            for req, by_server in paths.items()}


def check_answers(urls: dict[str, dict[str, str]], b_base: str, db_url: str) -> dict:
    """Every server must give the same answer, and the same as SQL on the table; returns the evidence."""
    import psycopg
    lon, lat = POINT
    xmin, ymin, xmax, ymax = map(float, BBOX.split(","))
    with psycopg.connect(db_url) as conn:
        sql_bbox = sorted(r[0] for r in conn.execute(
            "SELECT id FROM layers.stations WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
            (xmin, ymin, xmax, ymax)))
        sql_nearest = [r[0] for r in conn.execute(
            "SELECT id FROM layers.stations ORDER BY ST_Distance(geom::geography, "
            "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography), id LIMIT %s", (lon, lat, K))]
    out: dict = {"sql": {"bbox_ids": sql_bbox, "nearest_ids": sql_nearest}, "problems": []}
    answers = {}
    for srv, url in urls["bbox"].items():
        doc, size = get_json(url)
        answers[srv] = {"ids": sorted(str(f["id"]) for f in doc["features"]), "numberMatched":
                        doc.get("numberMatched"), "bytes": size,
                        "properties": sorted({k for f in doc["features"] for k in f.get("properties") or {}})}
    doc, _ = get_json(b_base + "/ogc/collections/stations/items" + urls["bbox"]["ours"].split("/items", 1)[1])
    answers["ours replica B"] = {"ids": sorted(str(f["id"]) for f in doc["features"]),
                                "numberMatched": doc.get("numberMatched")}
    for srv, ans in answers.items():
        if ans["ids"] != sql_bbox:
            out["problems"].append(f"bbox: {srv} returned {ans['ids']}, SQL {sql_bbox}")
        if ans["numberMatched"] not in (None, len(sql_bbox)):
            out["problems"].append(f"bbox: {srv} numberMatched {ans['numberMatched']}, SQL {len(sql_bbox)}")
    out["bbox"] = answers
    items = {}
    for srv, url in urls["item"].items():
        doc, size = get_json(url)
        items[srv] = {"id": str(doc.get("id")), "coordinates": doc["geometry"]["coordinates"], "bytes": size}
    ref = items["ours"]["coordinates"]
    for srv, it in items.items():
        if it["id"] != ITEM_ID or any(abs(a - b) > 1e-6 for a, b in zip(it["coordinates"], ref)):
            out["problems"].append(f"item: {srv} returned {it}")
    out["item"] = items
    doc, size = get_json(urls["nearest"]["ours"])
    ours_nearest = [str(f["id"]) for f in doc["features"]]
    if ours_nearest != sql_nearest:
        out["problems"].append(f"nearest: ours {ours_nearest}, PostGIS geodesic order {sql_nearest}")
    out["nearest"] = {"ours": {"ids": ours_nearest, "bytes": size,
                               "distance_m": [f["properties"]["distance_m"] for f in doc["features"]]}}
    return out


# ------------------------------------------------------------------------------------------------ load
def cpu_busy() -> float | None:
    return pgc.cpu_busy_fraction(0.5)


def wrk(url: str, duration: int, connections: int) -> dict:
    cmd = [shutil.which("wrk"), "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
           "-H", f"Accept: {ACCEPT}", url]
    out = pgc.run(cmd, timeout=duration + 60)
    res = pgc.parse_wrk(out)
    res["command"] = shlex.join(["wrk", *cmd[1:]])
    if res["non_2xx"] or res["socket_errors"]:
        res["raw"] = out
    return res


def load_rounds(urls: dict[str, dict[str, str]], args) -> dict:
    """Interleaved rounds: in each round every (request, server) once; the server order rotates per round."""
    runs: dict = {req: {srv: [] for srv in by_srv} for req, by_srv in urls.items()}
    busy = []
    for rnd in range(args.rounds):
        busy.append(cpu_busy())
        log(f"round {rnd + 1}/{args.rounds} (CPU busy before: {busy[-1]})")
        for req, by_srv in urls.items():
            names = list(by_srv)
            names = names[rnd % len(names):] + names[:rnd % len(names)]
            for srv in names:
                if rnd == 0 and args.warmup:
                    wrk(by_srv[srv], args.warmup, min(4, args.connections))
                res = wrk(by_srv[srv], args.duration, args.connections)
                errors = res["non_2xx"] + res["socket_errors"]
                log(f"  {req:8} {srv:9} {res['requests_per_s']:9.1f} req/s  p50 {res['latency_ms'].get('p50')} ms"
                    f"  p99 {res['latency_ms'].get('p99')} ms" + (f"  ERRORS {errors}" if errors else ""))
                runs[req][srv].append(res)
    summary = {}
    for req, by_srv in runs.items():
        summary[req] = {}
        for srv, rs in by_srv.items():
            summary[req][srv] = {
                "requests_per_s": round(statistics.median(r["requests_per_s"] for r in rs), 1),
                "p50_ms": round(statistics.median(r["latency_ms"]["p50"] for r in rs), 2),
                "p99_ms": round(statistics.median(r["latency_ms"]["p99"] for r in rs), 2),
                "errors": sum(r["non_2xx"] + r["socket_errors"] for r in rs),
                "rounds": [{"requests_per_s": r["requests_per_s"], "p50_ms": r["latency_ms"]["p50"],
                            "p99_ms": r["latency_ms"]["p99"], "non_2xx": r["non_2xx"],
                            "socket_errors": r["socket_errors"], **({"raw": r["raw"]} if "raw" in r else {})}
                           for r in rs],
            }
    return {"summary": summary, "cpu_busy_before_round": busy,
            "command": next(iter(next(iter(runs.values())).values()))[0]["command"]}


# ------------------------------------------------------------------------------------------------ writes
def new_station(i: int, rng: random.Random) -> dict:
    lon = round(rng.uniform(WRITE_BOX[0], WRITE_BOX[2]), 6)
    lat = round(rng.uniform(WRITE_BOX[1], WRITE_BOX[3]), 6)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": f"基准写入驿站{i:03d}（示例）", "district": "黄浦区",
                           "address": "示例地址：黄浦区（基准测试）", "services": ["water"],
                           "opening_hours": "24/7", "host_org": "黄浦区总工会（示例）"}}


class CommitListener:
    """LISTENs on the channel our writers NOTIFY at commit: the moment a write is committed, as a client sees it."""

    def __init__(self, db_url: str):
        import psycopg
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.conn.execute("LISTEN geoserver_layers")
        self.heard: list[tuple[float, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for note in self.conn.notifies(timeout=0.2):
                self.heard.append((time.perf_counter(), note.payload))

    def first_after(self, t: float, layer: str = "stations") -> float | None:
        return next((at for at, payload in list(self.heard) if at >= t and payload.startswith(layer + ":")), None)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.conn.close()


def watch_b(b_port: int, name: str, lon: float, lat: float, until: float, out: dict) -> None:
    """Poll B's nearest at the new station's own point every POLL_S on fresh connections; record when B first
    answers with it, and when the first of STEADY_POLLS answers in a row with it came."""
    path = f"/api/nearest?lon={lon}&lat={lat}&layer=stations&k=1"
    streak = 0
    while time.perf_counter() < until:
        t = time.perf_counter()
        conn = http.client.HTTPConnection(HOST, b_port, timeout=5)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            ok = resp.status == 200 and any(f["properties"].get("name") == name
                                            for f in json.loads(body)["features"])
        except (OSError, ValueError, KeyError):
            ok = False
        finally:
            conn.close()
        if ok:
            out.setdefault("first", t)
            if streak == 0:
                out["steady"] = t
            streak += 1
            if streak >= STEADY_POLLS:
                out["done"] = True
                return
        else:
            streak = 0
        time.sleep(max(0.0, POLL_S - (time.perf_counter() - t)))


def stats(xs: list[float]) -> dict:
    """Median, p95 (nearest rank), min and max of durations in seconds, in ms."""
    if not xs:
        return {"n": 0}
    ms = sorted(x * 1e3 for x in xs)
    p95 = ms[max(0, math.ceil(0.95 * len(ms)) - 1)]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1), "p95_ms": round(p95, 1),
            "max_ms": round(ms[-1], 1), "min_ms": round(ms[0], 1)}


def writes(a_base: str, b_base: str, token: str, n: int, db_url: str, pids: dict[str, int]) -> dict:
    """n sequential creates on A. For each: its latency (POST sent -> 201 received), when it committed (our
    LISTEN connection hears the writer's NOTIFY) and when B serves it (a poller started as the POST is sent)."""
    rng = random.Random(20261202)
    b_port = int(b_base.rsplit(":", 1)[1])
    listener = CommitListener(db_url)
    latency, committed, b_first, b_steady, b_after_201, missed = [], [], [], [], [], 0
    growth = [{"writes": 0, **{name: memory(pid)["uss_mb"] for name, pid in pids.items()}}]
    try:
        for i in range(n):
            if i and i % 10 == 0:   # does memory grow with every new version, or settle?
                growth.append({"writes": i, **{name: memory(pid)["uss_mb"] for name, pid in pids.items()}})
            feat = new_station(i, rng)
            name = feat["properties"]["name"]
            lon, lat = feat["geometry"]["coordinates"]
            req = urllib.request.Request(f"{a_base}/api/admin/layers/stations/features",
                                         data=json.dumps(feat).encode(), method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {token}"})
            seen: dict = {}
            t0 = time.perf_counter()
            poller = threading.Thread(target=watch_b, args=(b_port, name, lon, lat,
                                                            t0 + PROPAGATION_TIMEOUT_S, seen), daemon=True)
            poller.start()
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, doc = resp.status, json.loads(resp.read())
            t1 = time.perf_counter()
            if status != 201:
                raise RuntimeError(f"write {i}: {status} {doc}")
            latency.append(t1 - t0)
            poller.join(PROPAGATION_TIMEOUT_S + 5)
            tc = listener.first_after(t0)
            if tc is not None:
                committed.append(tc - t0)
            if not seen.get("done") or tc is None:
                missed += 1
                continue
            b_first.append(seen["first"] - tc)
            b_steady.append(seen["steady"] - tc)
            b_after_201.append(seen["first"] - t1)
    finally:
        listener.close()
    return {"writes": n, "write_latency": stats(latency), "commit_after_send": stats(committed),
            "propagation_first_seen": stats(b_first), "propagation_steady": stats(b_steady),
            "b_first_seen_minus_201": {"median_ms": round(statistics.median(b_after_201) * 1e3, 1)
                                       if b_after_201 else None,
                                       "note": "negative: B served it before A's 201 reached the client"},
            "not_seen": {"timeout_s": PROPAGATION_TIMEOUT_S, "count": missed},
            "poll_interval_ms": POLL_S * 1e3, "steady_polls": STEADY_POLLS,
            "uss_mb_during_writes": growth}


# ------------------------------------------------------------------------------------------------ report
def print_summary(report: dict) -> None:
    load = report["load"]["summary"]
    print("\nrequest  server      req/s     p50 ms    p99 ms")
    for req, by_srv in load.items():
        for srv, s in by_srv.items():
            print(f"{req:8} {srv:9} {s['requests_per_s']:9.1f} {s['p50_ms']:9.2f} {s['p99_ms']:9.2f}")
    w = report.get("writes")
    if w:
        print(f"\nwrites on A (sent -> 201): {w['write_latency']}")
        print(f"commit heard (sent -> NOTIFY): {w['commit_after_send']}")
        print(f"served by B, after the commit (first answer): {w['propagation_first_seen']}")
        print(f"served by B, after the commit ({w['steady_polls']} answers in a row): {w['propagation_steady']}")
        print(f"not seen: {w['not_seen']}")
        print(f"USS MB during the writes: {w['uss_mb_during_writes']}")
    print("\nmemory USS / PSS / RSS MB, all processes of the server (per process: see the JSON):")
    for srv, mem in report["memory"].items():
        print(f"  {srv:15}" + "".join(f"  {when} {m['uss_mb']:6.1f} / {m['pss_mb']:6.1f} / {m['rss_mb']:6.1f}"
                                      for when, m in mem.items()))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10, help="wrk seconds per measurement")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds before the first round's runs")
    p.add_argument("--writes", type=int, default=30, help="sequential admin POSTs on replica A")
    p.add_argument("--skip-tipg", action="store_true")
    p.add_argument("--skip-pygeoapi", action="store_true")
    p.add_argument("--allow-mismatch", action="store_true", help="measure even if the answers differ")
    args = p.parse_args(argv)
    if not 1 <= args.duration <= 120 or not 1 <= args.rounds <= 10 or not 0 <= args.writes <= 500:
        p.error("--duration 1..120, --rounds 1..10, --writes 0..500")
    if not 2 <= args.connections <= 256:
        p.error("--connections 2..256")
    return args


def run(args, stack: contextlib.ExitStack, procs: pgc.Processes, workdir: Path) -> int:
    if shutil.which("wrk") is None:
        log("wrk is needed: apt-get install wrk (or bash benchmarks/setup_tipg.sh)")
        return 2
    report: dict = {"timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "cpu_busy_at_start": cpu_busy(),
                    "params": {"duration_s": args.duration, "connections": args.connections, "wrk_threads": 2,
                               "rounds": args.rounds, "warmup_s": args.warmup, "bbox": BBOX, "limit": LIMIT,
                               "point": POINT, "k": K, "item_id": ITEM_ID, "writes": args.writes},
                    "skipped": {}}
    log("starting a throwaway PostgreSQL cluster")
    cluster = PgCluster.create()
    stack.callback(cluster.destroy)
    stack.callback(procs.stop_all)            # tipg and pygeoapi stop before the cluster does
    db_url = cluster.create_database("replicas")
    t = time.perf_counter()
    pgc.run([str(GEOSERVER), "--database-url", db_url, "db", "init"], timeout=600)
    report["db_init_s"] = round(time.perf_counter() - t, 2)
    token = pgc.run([str(GEOSERVER), "--database-url", db_url, "token", "add", "bench"]).strip().splitlines()[0]
    import psycopg
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT count(*) FROM layers.stations").fetchone()[0]
        ext = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                           "(SELECT ST_Extent(geom) AS e FROM layers.stations) s").fetchone()
        report["database"] = {"stations": rows,
                              "postgres": conn.execute("SHOW server_version").fetchone()[0],
                              "postgis": conn.execute("SELECT postgis_lib_version()").fetchone()[0],
                              "synchronous_commit": conn.execute("SHOW synchronous_commit").fetchone()[0],
                              "fsync": conn.execute("SHOW fsync").fetchone()[0]}
    log(f"database ready: {rows} stations, db init {report['db_init_s']} s")

    a_base, a_proc, a_log, a_ready = stack.enter_context(replica(db_url, "replica-a", workdir))
    b_base, b_proc, b_log, b_ready = stack.enter_context(replica(db_url, "replica-b", workdir))
    report["ours"] = {"replicas": 2, "workers_each": 2, "ready_s": [round(a_ready, 2), round(b_ready, 2)]}
    servers = {"ours": a_base}
    started = {"ours replica A": a_proc.pid, "ours replica B": b_proc.pid}

    if args.skip_tipg:
        report["skipped"]["tipg"] = "--skip-tipg"
    elif not (TIPG_VENV / "bin" / "uvicorn").exists():
        report["skipped"]["tipg"] = "no benchmarks/.venv-tipg: run bash benchmarks/setup_tipg.sh"
    else:
        servers["tipg"], tipg_proc = start_tipg(db_url, workdir, procs)
        started["tipg"] = tipg_proc.proc.pid
        report["tipg"] = {"version": version_of(TIPG_VENV / "bin" / "python", "tipg"),
                          "uvicorn": version_of(TIPG_VENV / "bin" / "python", "uvicorn"), "workers": 2}
    if args.skip_pygeoapi:
        report["skipped"]["pygeoapi"] = "--skip-pygeoapi"
    elif not (PYGEOAPI_VENV / "bin" / "gunicorn").exists():
        report["skipped"]["pygeoapi"] = "no benchmarks/.venv-pygeoapi: run bash benchmarks/setup_pygeoapi.sh"
    else:
        servers["pygeoapi"], pga_proc = start_pygeoapi(cluster, "replicas", list(ext), workdir, procs)
        started["pygeoapi"] = pga_proc.proc.pid
        report["pygeoapi"] = {"version": version_of(PYGEOAPI_VENV / "bin" / "python", "pygeoapi"),
                              "provider": "PostgreSQL", "gunicorn_workers": 2}
    for name, why in report["skipped"].items():
        log(f"{name} skipped: {why}")
    time.sleep(2)
    mem_idle = {name: memory(pid) for name, pid in started.items()}
    workers_at_start = {name: tree_pids(pid) for name, pid in started.items()}
    logs = {"ours replica A": a_log, "ours replica B": b_log}

    def restarts(phase: str) -> None:
        """A child process that is not one of those at start: a worker died and was started again."""
        for name, pid in started.items():
            now = tree_pids(pid)
            gone = sorted(set(workers_at_start[name]) - set(now))
            if gone:
                report.setdefault("worker_restarts", []).append({"server": name, "phase": phase, "gone": gone,
                                                                 "log_tail": pgc.tail(logs[name], 15)
                                                                 if name in logs else ""})
                log(f"WARNING: {name}: worker(s) {gone} gone during {phase} (a crash: see the JSON / kernel log)")
                workers_at_start[name] = now

    urls = request_urls(servers)
    report["urls"] = {req: {srv: "/" + u.split(":", 2)[2].split("/", 1)[1] for srv, u in by.items()}
                      for req, by in urls.items()}
    report["checks"] = check_answers(urls, b_base, db_url)
    for problem in report["checks"]["problems"]:
        log(f"MISMATCH: {problem}")
    if report["checks"]["problems"] and not args.allow_mismatch:
        write(report)
        return 1
    log(f"answers agree: bbox ids {report['checks']['sql']['bbox_ids']}; nearest "
        f"{report['checks']['sql']['nearest_ids']}")

    report["load"] = load_rounds(urls, args)
    restarts("reads")
    mem_reads = {name: memory(pid) for name, pid in started.items()}
    if args.writes:
        log(f"{args.writes} sequential writes on replica A, each polled on replica B every {POLL_S * 1e3:.0f} ms")
        report["writes"] = writes(a_base, b_base, token, args.writes, db_url,
                                  {k: v for k, v in started.items() if k.startswith("ours")})
        time.sleep(2)
        restarts("writes")
    mem_writes = {name: memory(pid) for name, pid in started.items()}
    report["memory"] = {name: {"idle": mem_idle[name], "after_reads": mem_reads[name],
                               "after_writes": mem_writes[name]} for name in started}
    report["cpu_busy_at_end"] = cpu_busy()
    print_summary(report)
    write(report)
    return 0


def write(report: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log(f"results written to {RESULTS.relative_to(ROOT)}")


def main(argv=None) -> int:
    return run_stopping_everything(run, parse_args(argv), "bench-replicas-")


def run_stopping_everything(run_fn, args, prefix: str) -> int:
    """``run_fn(args, stack, procs, workdir)`` with every process it starts stopped by process id and its work
    folder removed, on return, error, Ctrl-C or SIGTERM/SIGHUP (shared with bench_sharing.py)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, pgc._raise_interrupt)
    procs = pgc.Processes()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        stack.callback(procs.stop_all)       # tipg, pygeoapi (before the cluster goes)
        try:
            return run_fn(args, stack, procs, workdir)
        except KeyboardInterrupt:
            log("interrupted")
            return 130


if __name__ == "__main__":
    sys.exit(main())
