#!/usr/bin/env python3
"""The data-sharing channel side by side with tipg and pygeoapi on the same PostGIS data: vector tiles, CQL2
filters, sortby with properties, and what a partner does to stay in sync.

One throwaway PostgreSQL/PostGIS cluster (``tests/pg_support.py``), ``geoserver db init`` (3,400 stations in the
plain table ``layers.stations``, GiST index), served by ours (``geoserver --database-url … serve --workers 2``), tipg
1.6.1 (uvicorn, 2 workers) and pygeoapi 0.24 (gunicorn, 2 workers, PostgreSQL provider) — the servers, set-up and
load generator of ``bench_replicas.py``. Before measuring, the answers are compared (the same tile features, the
same filtered count as SQL, the same sorted values); a request a server does not offer, or answers wrongly, is
reported as such and not timed. Then ``wrk`` in interleaved rounds (the server order rotating), medians reported.

The sync rows compare what a partner must do to learn what changed three times a day: ours answers
``/api/feed/stations/changes?since=<cursor>`` (nothing changed: the common case) and ``/snapshot`` (once, or after a
410); tipg and pygeoapi have no change feed, so their partner downloads the whole layer (``items?limit=10000``) and
diffs it itself — the same information as our snapshot.

Usage::

    bash benchmarks/setup_tipg.sh && bash benchmarks/setup_pygeoapi.sh     # once
    .venv/bin/python benchmarks/bench_sharing.py --duration 8 --rounds 3

Results: a printed table and ``benchmarks/results/sharing.json``. All traffic goes to 127.0.0.1; everything started
is stopped by process id.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_replicas as br  # noqa: E402  (servers, wrk rounds, helpers)
import pygeoapi_compare as pgc  # noqa: E402
from bench_replicas import ROOT  # noqa: E402
from common import GEOSERVER, machine  # noqa: E402

from tests.pg_support import PgCluster  # noqa: E402

RESULTS = HERE / "results" / "sharing.json"
POINT = br.POINT                    # People's Square
CQL_TEXT = "district = '浦东新区' AND area_m2 > 100"
SORTBY, PROPERTIES = "-area_m2", "name,area_m2"


def log(msg: str) -> None:
    print(f"[sharing] {msg}", flush=True)


def tile_of(z: int) -> tuple[int, int, int]:
    import morecantile
    t = morecantile.tms.get("WebMercatorQuad").tile(POINT[0], POINT[1], z)
    return t.z, t.x, t.y


def request_urls(servers: dict[str, str], cursor: str) -> dict[str, dict[str, str]]:
    from urllib.parse import quote
    paths: dict[str, dict[str, str]] = {}
    for z in (14, 11):
        z, x, y = tile_of(z)
        paths[f"tile z{z}"] = {"ours": f"/ogc/collections/stations/tiles/WebMercatorQuad/{z}/{x}/{y}",
                               "tipg": f"/collections/layers.stations/tiles/WebMercatorQuad/{z}/{x}/{y}"}
    cql = quote(CQL_TEXT)
    paths["cql2 filter"] = {"ours": f"/ogc/collections/stations/items?filter={cql}&limit=10",
                            "tipg": f"/collections/layers.stations/items?filter={cql}&filter-lang=cql2-text&limit=10",
                            "pygeoapi": f"/collections/stations/items?filter={cql}&filter-lang=cql-text&limit=10"}
    paths["sortby+properties"] = {
        "ours": f"/ogc/collections/stations/items?sortby={SORTBY}&properties={PROPERTIES}&limit=10",
        "tipg": f"/collections/layers.stations/items?sortby={SORTBY}&properties={PROPERTIES}&limit=10",
        "pygeoapi": f"/collections/stations/items?sortby={SORTBY}&properties={PROPERTIES}&limit=10"}
    paths["sync: poll for changes"] = {"ours": f"/api/feed/stations/changes?since={cursor}",
                                       "tipg": "/collections/layers.stations/items?limit=10000",
                                       "pygeoapi": "/collections/stations/items?limit=10000"}
    paths["sync: whole layer"] = {"ours": "/api/feed/stations/snapshot",
                                  "tipg": "/collections/layers.stations/items?limit=10000",
                                  "pygeoapi": "/collections/stations/items?limit=10000"}
    return {req: {srv: servers[srv] + path for srv, path in by.items() if srv in servers}
            for req, by in paths.items()}


def tile_points(body: bytes) -> set[tuple[int, int]]:
    """The point features of an MVT strictly inside the tile (a buffer's features left out), as tile pixels."""
    import mapbox_vector_tile
    out = set()
    for layer in mapbox_vector_tile.decode(body).values():
        extent = layer.get("extent", 4096)
        for f in layer["features"]:
            x, y = f["geometry"]["coordinates"][:2]
            if 0 <= x < extent and 0 <= y < extent:
                out.add((round(x * 4096 / extent), round(y * 4096 / extent)))
    return out


def check_answers(urls: dict[str, dict[str, str]], db_url: str) -> tuple[dict, dict[str, dict[str, str]]]:
    """The answers compared across servers and with SQL; returns (evidence, the URLs worth timing)."""
    import psycopg
    with psycopg.connect(db_url) as conn:
        sql_count = conn.execute("SELECT count(*) FROM layers.stations WHERE district = '浦东新区' AND area_m2 > 100"
                                 ).fetchone()[0]
        sql_top = [float(r[0]) for r in conn.execute(
            "SELECT area_m2 FROM layers.stations ORDER BY area_m2 DESC NULLS LAST LIMIT 10")]
        total = conn.execute("SELECT count(*) FROM layers.stations").fetchone()[0]
    evidence: dict = {"sql": {"cql2_count": sql_count, "top_area_m2": sql_top, "stations": total}, "requests": {}}
    keep: dict[str, dict[str, str]] = {}
    for req, by_srv in urls.items():
        evidence["requests"][req] = {}
        keep[req] = {}
        reference = None
        for srv, url in by_srv.items():
            status, body = br.get(url, timeout=120)
            row: dict = {"status": status, "bytes": len(body)}
            ok = status == 200
            if ok and req.startswith("tile"):
                points = tile_points(body)
                row["features_inside"] = len(points)
                if srv == "ours":
                    reference = points
                ok = reference is not None and points == reference
            elif ok and req == "cql2 filter":
                doc = json.loads(body)
                row["numberMatched"] = doc.get("numberMatched")
                row["features"] = len(doc["features"])
                row["all_match"] = all(f["properties"].get("district") == "浦东新区"
                                       and float(f["properties"].get("area_m2")) > 100 for f in doc["features"])
                ok = row["numberMatched"] in (None, sql_count) and row["all_match"] and row["features"] == 10
            elif ok and req == "sortby+properties":
                doc = json.loads(body)
                values = [float(f["properties"]["area_m2"]) for f in doc["features"]]
                row["area_m2"] = values
                row["property_names"] = sorted({k for f in doc["features"] for k in f["properties"]})
                ok = values == sql_top
            elif ok and req.startswith("sync"):
                doc = json.loads(body)
                row["features"] = len(doc.get("features", doc.get("changes", [])))
                ok = ("changes" in doc and doc.get("complete") is True) or row["features"] == total
            elif not ok:
                row["answer"] = body[:300].decode("utf-8", "replace")
            row["agrees"] = ok
            evidence["requests"][req][srv] = row
            if ok:
                keep[req][srv] = url
            else:
                log(f"not timed: {req} on {srv}: {row}")
    return evidence, {req: by for req, by in keep.items() if by}


def run(args, stack: contextlib.ExitStack, procs: pgc.Processes, workdir: Path) -> int:
    if shutil.which("wrk") is None:
        log("wrk is needed: apt-get install wrk (or bash benchmarks/setup_tipg.sh)")
        return 2
    br.ACCEPT = "*/*"      # tiles and JSON alike: what a map client sends
    report: dict = {"timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "machine": machine(), "cpu_busy_at_start": br.cpu_busy(),
                    "params": {"duration_s": args.duration, "connections": args.connections, "rounds": args.rounds,
                               "warmup_s": args.warmup, "cql2": CQL_TEXT, "sortby": SORTBY,
                               "properties": PROPERTIES}, "skipped": {}}
    log("starting a throwaway PostgreSQL cluster")
    cluster = PgCluster.create()
    stack.callback(cluster.destroy)
    stack.callback(procs.stop_all)
    db_url = cluster.create_database("sharing")
    pgc.run([str(GEOSERVER), "--database-url", db_url, "db", "init"], timeout=600)
    import psycopg
    with psycopg.connect(db_url) as conn:
        ext = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                           "(SELECT ST_Extent(geom) AS e FROM layers.stations) s").fetchone()
        report["database"] = {"postgres": conn.execute("SHOW server_version").fetchone()[0],
                              "postgis": conn.execute("SELECT postgis_lib_version()").fetchone()[0]}
    base, proc, _log, _ready = stack.enter_context(br.replica(db_url, "ours", workdir))
    servers = {"ours": base}
    report["ours"] = {"workers": 2}
    if not (br.TIPG_VENV / "bin" / "uvicorn").exists():
        report["skipped"]["tipg"] = "no benchmarks/.venv-tipg: run bash benchmarks/setup_tipg.sh"
    else:
        servers["tipg"], _ = br.start_tipg(db_url, workdir, procs)
        report["tipg"] = {"version": br.version_of(br.TIPG_VENV / "bin" / "python", "tipg"), "workers": 2}
    if not (br.PYGEOAPI_VENV / "bin" / "gunicorn").exists():
        report["skipped"]["pygeoapi"] = "no benchmarks/.venv-pygeoapi: run bash benchmarks/setup_pygeoapi.sh"
    else:
        servers["pygeoapi"], _ = br.start_pygeoapi(cluster, "sharing", list(ext), workdir, procs)
        report["pygeoapi"] = {"version": br.version_of(br.PYGEOAPI_VENV / "bin" / "python", "pygeoapi"),
                              "workers": 2}
    for name, why in report["skipped"].items():
        log(f"{name} skipped: {why}")
    cursor = json.loads(br.get(f"{base}/api/feed/stations/snapshot")[1])["cursor"]
    urls = request_urls(servers, cursor)
    report["urls"] = {req: {srv: "/" + u.split(":", 2)[2].split("/", 1)[1] for srv, u in by.items()}
                      for req, by in urls.items()}
    report["checks"], timed = check_answers(urls, db_url)
    report["load"] = br.load_rounds(timed, args)
    report["cpu_busy_at_end"] = br.cpu_busy()
    print_summary(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0


def print_summary(report: dict) -> None:
    summary = report["load"]["summary"]
    print(f"\n{'request':26} {'server':9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>9}  ratio")
    for req, by_srv in summary.items():
        ours = by_srv.get("ours", {}).get("requests_per_s")
        for srv, s in by_srv.items():
            size = report["checks"]["requests"][req][srv]["bytes"]
            ratio = f"ours {ours / s['requests_per_s']:.0f}×" if srv != "ours" and ours and s["requests_per_s"] else ""
            print(f"{req:26} {srv:9} {s['requests_per_s']:9.1f} {s['p50_ms']:8.2f} {s['p99_ms']:8.2f} {size:9}  {ratio}")
        for srv, row in report["checks"]["requests"][req].items():
            if srv not in by_srv:
                print(f"{req:26} {srv:9} {'n/a':>9}  ({row.get('status')}: not offered or not the same answer)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=8, help="wrk seconds per measurement")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2, help="wrk seconds before the first round of each (0: none)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return br.run_stopping_everything(run, parse_args(argv), "bench-sharing-")


if __name__ == "__main__":
    sys.exit(main())
