"""End-to-end siting through the planning code (what /api/siting does), with its memory.

Usage: ``.venv/bin/python benchmarks/bench_plan.py fast|exact [--k 20]`` (one solver per process, so max RSS is
that solver's). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from geoserver.core.planning import build_problem, solve
from geoserver.planning.siting import parse_siting_request
from geoserver.core.service import GeoService


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("solver", choices=["fast", "exact"])
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    svc = GeoService()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    problem = build_problem(svc, parse_siting_request({"k": args.k, "radius_m": 1000, "solver": args.solver}, svc))
    t1 = time.perf_counter()
    plan = solve(svc, problem)
    t2 = time.perf_counter()
    print(json.dumps({"solver": args.solver, "k": args.k, "build_s": round(t1 - t0, 2), "solve_s": round(t2 - t1, 2),
                      "candidates": problem.candidates.size, "pairs": problem.pairs,
                      "newly_covered": round(plan.siting.newly_covered), "status": plan.siting.status,
                      "rss_after_load_mb": round(rss_loaded),
                      "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
