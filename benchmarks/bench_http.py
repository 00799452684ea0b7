"""Over-HTTP benchmarks of the production server (`geoserver serve`, Granian) on loopback.

* ready time: process start to the first 200 from /healthz (median of several starts) and server memory;
* nearest: wrk from a separate process, a fixed point and random points (nearest_random.lua);
* full-layer items: GET /ogc/collections/stations/items?limit=10000, plain and gzip, sequential requests.

Usage: ``.venv/bin/python benchmarks/bench_http.py [--duration 10] [--connections 16] [--workers 2]``
Writes benchmarks/results/http.json. Load goes to 127.0.0.1 only, bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, our_server, percentiles, run_wrk  # noqa: E402

HERE = Path(__file__).resolve().parent


def server_memory_mb(proc) -> dict:
    """RSS of the main process and its workers, and USS (memory unique to each: the layers loaded in the
    main process are shared copy-on-write with the forked workers, so RSS counts them several times)."""
    main = psutil.Process(proc.pid)
    procs = [main] + main.children(recursive=True)
    mb = [(p.memory_full_info().rss / 2**20, p.memory_full_info().uss / 2**20) for p in procs]
    return {"rss_mb": [round(r, 1) for r, _ in mb], "uss_mb": [round(u, 1) for _, u in mb],
            "total_uss_mb": round(sum(u for _, u in mb), 1)}


def fetch_seconds(url: str, headers: dict) -> tuple[float, int]:
    req = urllib.request.Request(url, headers=headers)
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        size = len(resp.read())
    return time.perf_counter() - t, size


def full_layer(base: str, runs: int = 20) -> dict:
    url = base + "/ogc/collections/stations/items?limit=10000"
    out = {}
    for name, headers in (("plain", {}), ("gzip", {"Accept-Encoding": "gzip"})):
        first, size = fetch_seconds(url, headers)
        samples = [fetch_seconds(url, headers)[0] for _ in range(runs)]
        out[name] = {"first_request_ms": round(first * 1e3, 1), "bytes": size, **percentiles(samples)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    ready = []
    for _ in range(args.starts):
        with our_server(args.workers) as (_, _, seconds):
            ready.append(seconds)
    result = {"machine": machine(), "workers": args.workers, "ready": percentiles(ready, "ms")}
    with our_server(args.workers) as (base, proc, _):
        result["memory"] = server_memory_mb(proc)
        result["full_layer_items"] = full_layer(base)
        fixed = base + "/api/nearest?lon=121.4737&lat=31.2304&k=5"
        result["nearest_fixed_point"] = run_wrk(fixed, args.duration, args.connections)
        result["nearest_random_points"] = run_wrk(base + "/", args.duration, args.connections,
                                                  script=HERE / "nearest_random.lua")
        result["items_bbox_limit100"] = run_wrk(
            base + "/ogc/collections/stations/items?bbox=121.40,31.18,121.52,31.28&limit=100",
            args.duration, args.connections)
        result["memory_after_load"] = server_memory_mb(proc)
    out = ROOT / "benchmarks" / "results" / "http.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
