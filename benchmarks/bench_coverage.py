"""Coverage benchmark: all 3,400 stations over the 200 m census grid (about 200,000 cells), gaps, memory.

Usage: ``.venv/bin/python benchmarks/bench_coverage.py [--runs 7]``; writes benchmarks/results/coverage.json.
Each step is timed uncached (the server caches results; this measures the computation).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, percentiles  # noqa: E402


def timed(fn, runs: int):
    samples, value = [], None
    for _ in range(runs):
        t = time.perf_counter()
        value = fn()
        samples.append(time.perf_counter() - t)
    return value, percentiles(samples, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from geoserver.core.coverage import Catchment, compute_coverage, find_gaps
    from geoserver.core.demand import grid_demand
    from geoserver.core.service import GeoService

    svc = GeoService()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    demand, t_demand = timed(lambda: grid_demand(svc, 200), args.runs)
    out = {"machine": machine(), "demand_cells": demand.size, "grid_demand_200m": t_demand}
    for name, catchment in (("radius_1000m", Catchment(radius_m=1000)),
                            ("ebike_10min", Catchment(minutes=10, mode="ebike"))):
        result, t = timed(lambda: compute_coverage(svc, "stations", catchment, demand), args.runs)
        out[f"coverage_{name}"] = {**t, "covered_pct": result.totals()["covered_pct"]}
    gaps, t_gaps = timed(lambda: find_gaps(result), args.runs)
    out["gaps"] = {**t_gaps, "gaps": len(gaps)}
    tracemalloc.start()
    compute_coverage(svc, "stations", Catchment(radius_m=1000), demand)
    out["coverage_peak_python_alloc_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    out["max_rss_growth_mb"] = round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1)
    path = ROOT / "benchmarks" / "results" / "coverage.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
