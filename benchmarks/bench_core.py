"""In-process benchmarks: start-up (load all layers) time and memory, nearest-query latency.

Usage: ``.venv/bin/python benchmarks/bench_core.py [--queries 20000]``; prints JSON and writes
benchmarks/results/core.json. Timings are medians/p99 of many calls in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, percentiles  # noqa: E402

LOAD_SNIPPET = """
import resource, time, json
t0 = time.perf_counter()
from geoserver.core.service import GeoService
t1 = time.perf_counter()
svc = GeoService()
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def startup(runs: int = 5) -> dict:
    """Import + load of every layer in a fresh interpreter, repeated; medians."""
    samples = [json.loads(subprocess.run([sys.executable, "-c", LOAD_SNIPPET], capture_output=True, text=True,
                                         check=True).stdout) for _ in range(runs)]
    return {key: round(float(np.median([s[key] for s in samples])), 3) for key in samples[0]} | {"runs": runs}


def nearest_latency(n_queries: int) -> dict:
    from datetime import datetime

    from geoserver.core.hours import as_shanghai
    from geoserver.core.nearest import nearest
    from geoserver.core.query import NearestQuery
    from geoserver.core.service import GeoService

    svc = GeoService()
    layer = svc.layers["stations"]
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(120.95, 121.95, n_queries), rng.uniform(30.75, 31.75, n_queries)])
    at = as_shanghai(datetime(2026, 11, 25, 12, 0))
    cases = {
        "core_nearest_k5": lambda lon, lat: nearest(layer.index, lon, lat, 5),
        "service_nearest_k5_features": lambda lon, lat: svc.nearest(
            NearestQuery("stations", lon, lat, 5, at=at)),
        "service_nearest_k5_charging_microwave_open_now": lambda lon, lat: svc.nearest(
            NearestQuery("stations", lon, lat, 5, services=("charging", "microwave"), open_now=True, at=at)),
        "service_nearest_k5_truck_parking_driver_homes": lambda lon, lat: svc.nearest(
            NearestQuery("driver_homes", lon, lat, 5, services=("truck_parking",), at=at)),
    }
    out = {}
    for name, fn in cases.items():
        for lon, lat in pts[:200]:
            fn(lon, lat)  # warm caches
        samples = []
        for lon, lat in pts:
            t = time.perf_counter()
            fn(lon, lat)
            samples.append(time.perf_counter() - t)
        out[name] = percentiles(samples, "us")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=20000)
    args = parser.parse_args()
    result = {"machine": machine(), "startup_in_process": startup(), "nearest": nearest_latency(args.queries)}
    out = ROOT / "benchmarks" / "results" / "core.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
