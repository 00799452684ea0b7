"""CPU per call of the nearest hot path's pieces with 1 and with 8 threads calling at once (in one process).

A server worker answers with 8 request threads that all want the GIL. A C call that releases the GIL (scipy's k-d
tree query, pyproj's transforms and geodesics, numpy's sorts, numpy indexing with a narrow integer type, ISA-L's
gzip module) hands it to a waiting thread and must queue to get it back: context switches that cost more CPU than
a small call itself. This script shows which pieces do that: for each, user + system CPU time per call and context
switches per call, alone and with 8 threads (the numbers of the module docstring of geoserver/core/index.py).

Usage: ``.venv/bin/python benchmarks/gil_contention.py [--calls 8000]``; writes benchmarks/results/gil_contention.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402


def measure(fn, calls: int, threads: int) -> dict:
    def work(n):
        for _ in range(n):
            fn()

    before = resource.getrusage(resource.RUSAGE_SELF)
    pool = [threading.Thread(target=work, args=(calls // threads,)) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    switches = after.ru_nvcsw - before.ru_nvcsw + after.ru_nivcsw - before.ru_nivcsw
    return {"cpu_us_per_call": round(cpu / calls * 1e6, 1), "context_switches_per_call": round(switches / calls, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=3, help="medians over this many rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gil_contention.json")
    args = parser.parse_args()

    from isal import isal_zlib
    import zlib

    from geoserver.core import crs
    from geoserver.core.nearest import nearest
    from geoserver.core.service import GeoService
    from geoserver.web import api
    from geoserver.web.http import PlainArgs

    svc = GeoService(None, None)
    index = svc.layers["stations"].index
    x, y = crs.to_metric(121.4737, 31.2304)
    query = PlainArgs(parse_qsl("lon=121.4737&lat=31.2304&layer=stations&k=5", keep_blank_values=True))
    body = api.nearest_answer(svc, query).body
    lons, lats = index.lon[:7], index.lat[:7]
    pieces = {
        "k-d tree query (scipy), 18 nearest": lambda: index._kdtree.query((x, y), k=18),
        "candidate grid (PointGrid), 18 nearest": lambda: index._grid.nearest(x, y, 18),
        "project one point (pyproj)": lambda: crs.to_metric(121.4737, 31.2304),
        "project one point (to_metric_point)": lambda: crs.to_metric_point(121.4737, 31.2304),
        "7 geodesics, one call each (pyproj)": lambda: [crs.GEOD.inv(121.47, 31.23, a, b) for a, b in
                                                         zip(lons.tolist(), lats.tolist())],
        "7 geodesics, one array call (pyproj)": lambda: crs.GEOD.inv(np.full(7, 121.47), np.full(7, 31.23), lons, lats),
        "gzip 3 KB, zlib level 1": lambda: zlib.compress(body, 1, 31),
        "gzip 3 KB, ISA-L level 0": lambda: isal_zlib.compress(body, 0, 31),
        "nearest search (k = 5)": lambda: nearest(index, 121.4737, 31.2304, 5),
        "nearest answer (parse, search, JSON)": lambda: api.nearest_answer(svc, query),
    }
    results = {}
    for name, fn in pieces.items():
        fn()
        rows = {1: [], 8: []}
        for _ in range(args.rounds):
            for threads in (1, 8):
                rows[threads].append(measure(fn, args.calls, threads))
        results[name] = {f"threads_{t}": {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
                         for t, runs in rows.items()}
        one, eight = results[name]["threads_1"], results[name]["threads_8"]
        print(f"{name:<42} 1 thread {one['cpu_us_per_call']:>7.1f} us   8 threads {eight['cpu_us_per_call']:>7.1f} us "
              f"({eight['context_switches_per_call']:.2f} switches/call)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "calls": args.calls, "rounds": args.rounds,
                                    "results": results}, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
