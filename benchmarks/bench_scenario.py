"""Latency of the live what-if (``POST /api/coverage/scenario``) on the bundled stations and the 200 m demand grid.

Through the Flask app (its test client, planning in the request thread: the time a planning process spends), with
the coverage of the layer already computed once (``warm``: what a planner trying sites one after another sees) and,
separately, the first scenario of a catchment (``cold``: the coverage before is computed first, then cached).

Also the planning tool's redraw when a parameter changes (``GET /planning/data``: totals, district styles, heat
points, gaps; with ``facilities=1`` the 3,400 stations too), with the catchment's coverage cached.

Usage: ``.venv/bin/python benchmarks/bench_scenario.py [--runs 15]``; writes benchmarks/results/scenario.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scenario.json")
    args = parser.parse_args()

    from geoserver.core.service import GeoService
    from geoserver.web import create_app

    svc = GeoService(None, None)
    client = create_app(service=svc).test_client()
    ids = svc.layers["stations"].ids
    rng = np.random.default_rng(20261202)

    def sites(n):
        return [[round(float(rng.uniform(121.1, 121.9)), 6), round(float(rng.uniform(30.8, 31.6)), 6)] for _ in range(n)]

    cases = {
        "add 1 site": lambda: {"add": sites(1)},
        "add 10 sites": lambda: {"add": sites(10)},
        "add 100 sites": lambda: {"add": sites(100)},
        "remove 5 stations": lambda: {"remove": [str(i) for i in rng.choice(ids, 5, replace=False)]},
        "remove 100 stations": lambda: {"remove": [str(i) for i in rng.choice(ids, 100, replace=False)]},
        "move 3 stations": lambda: {"move": [{"id": str(i), "to": s} for i, s in
                                             zip(rng.choice(ids, 3, replace=False), sites(3))]},
        "add 10 sites, 15-minute e-bike catchment": lambda: {"add": sites(10), "minutes": 15, "mode": "ebike"},
    }

    def post(body) -> float:
        started = time.perf_counter()
        resp = client.post("/api/coverage/scenario", json=body)
        elapsed = time.perf_counter() - started
        if resp.status_code != 200:
            raise SystemExit(f"{body}: {resp.status_code} {resp.get_json()}")
        return elapsed

    results = {}
    # cold: the first scenario of each catchment computes the coverage before (demand grid included for the first)
    results["cold: first scenario (demand grid and coverage computed)"] = {"median_ms": round(
        post({"add": sites(1), "radius_m": 1000}) * 1000, 1), "runs": 1}
    results["cold: first scenario of a new radius (coverage computed)"] = {"median_ms": round(
        post({"add": sites(1), "radius_m": 1200}) * 1000, 1), "runs": 1}
    for name, make in cases.items():
        base = {} if "minutes" in make() else {"radius_m": 1000}
        post({**base, **make()})   # warm: the catchment's coverage is cached
        times = [post({**base, **make()}) for _ in range(args.runs)]
        results[name] = {"median_ms": round(statistics.median(times) * 1000, 1),
                         "max_ms": round(max(times) * 1000, 1), "runs": args.runs}
    started = time.perf_counter()
    client.get("/planning/data?radius_m=1300")
    results["cold: planning tool redraw for a new radius (coverage and gaps computed)"] = {
        "median_ms": round((time.perf_counter() - started) * 1000, 1), "runs": 1}
    for name, query in (("planning tool redraw (/planning/data)", "radius_m=1000"),
                        ("planning tool redraw with the stations (facilities=1)", "radius_m=1000&facilities=1")):
        def get() -> float:
            started = time.perf_counter()
            resp = client.get("/planning/data?" + query)
            if resp.status_code != 200:
                raise SystemExit(f"{query}: {resp.status_code} {resp.get_json()}")
            return time.perf_counter() - started
        get()
        times = [get() for _ in range(args.runs)]
        results[name] = {"median_ms": round(statistics.median(times) * 1000, 1),
                         "max_ms": round(max(times) * 1000, 1), "runs": args.runs,
                         "bytes": len(client.get("/planning/data?" + query).get_data())}
    for name, entry in results.items():
        print(f"{name:<60} {entry['median_ms']:>8.1f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "demand": "grid, 200 m (198,698 cells)",
                                    "layer": "stations (3,400)", "results": results}, indent=2,
                                   ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
