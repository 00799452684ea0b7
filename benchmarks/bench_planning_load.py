"""Riders under planning load: nearest throughput and latency (wrk) while N clients run siting, against the same
server unloaded, measured in one run.

Usage: ``.venv/bin/python benchmarks/bench_planning_load.py [--clients 8] [--duration 10] [--runs 3]``; prints a
table and writes benchmarks/results/planning_load.json.

Two server set-ups are measured, each in a fresh `geoserver serve --workers 2` on 127.0.0.1:
* ``isolated`` (the default set-up): planning in one reniced process per worker, 4 request threads per worker, the
  admission limits of `geoserver serve` (per-client rate switched off here, so the N planners keep asking);
* ``inline`` (`GEOSERVER_PLANNING_PROCESSES=0 --threads 1`): planning in the request threads, as before the change.
For each: wrk on random nearest queries alone (``unloaded``), then the same wrk while N client threads each post a
small synchronous siting request (k=10 over 崇明区, about 1 s of work) in a loop from its own loopback address
(127.0.0.2 …, so the server sees N distinct clients) (``loaded``). Reported: requests/s
and p50/p99 of nearest, the ratio loaded/unloaded, and how the planners' requests ended (200, 429, 503).
Medians over ``--runs``. Load goes to loopback only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, our_server, run_wrk  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "planning_load.json"
SCRIPT = ROOT / "benchmarks" / "nearest_random.lua"
SITING = {"k": 10, "radius_m": 1000, "districts": ["崇明区"], "spacing_m": 600}
SETUPS = {
    "isolated": {"env": {"GEOSERVER_PLANNING_PROCESSES": "1", "GEOSERVER_HEAVY_PER_MINUTE": "0"}, "threads": 4},
    "inline": {"env": {"GEOSERVER_PLANNING_PROCESSES": "0", "GEOSERVER_HEAVY_PER_MINUTE": "0"}, "threads": 1},
}


def planner(url: str, number: int, stop: threading.Event, outcomes: Counter, lock: threading.Lock) -> None:
    """Planner ``number``: post the siting request again and again until told to stop, from its own loopback
    address (127.0.0.<number + 2>), so the server sees distinct clients as it would on a network."""
    data = json.dumps(SITING).encode()
    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, port, timeout=120, source_address=(f"127.0.0.{number + 2}", 0))
        try:
            conn.request("POST", "/api/siting", body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            code = resp.status
            if code in (429, 503):
                time.sleep(float(resp.headers.get("Retry-After", "1")) / 10)   # impatient planners
        except OSError:
            code = "error"
        finally:
            conn.close()
        with lock:
            outcomes[code] += 1


def measure(setup: str, clients: int, duration: int) -> dict:
    cfg = SETUPS[setup]
    old = {k: os.environ.get(k) for k in cfg["env"]}
    os.environ.update(cfg["env"])
    try:
        with our_server(workers=2, extra_args=["--threads", str(cfg["threads"])]) as (url, _, _):
            # warm up: layers, demand grid and the planning processes
            urllib.request.urlopen(url + "/api/nearest?lon=121.47&lat=31.23", timeout=30).read()
            req = urllib.request.Request(url + "/api/siting", data=json.dumps(SITING).encode(),
                                         headers={"Content-Type": "application/json"})
            for _ in range(2):
                urllib.request.urlopen(req, timeout=120).read()
            unloaded = run_wrk(url + "/", duration_s=duration, script=SCRIPT)
            stop, outcomes, lock = threading.Event(), Counter(), threading.Lock()
            threads = [threading.Thread(target=planner, args=(url, i, stop, outcomes, lock), daemon=True)
                       for i in range(clients)]
            for t in threads:
                t.start()
            time.sleep(2)          # the planners are busy before wrk starts
            loaded = run_wrk(url + "/", duration_s=duration, script=SCRIPT)
            stop.set()
            for t in threads:
                t.join(150)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"unloaded": unloaded, "loaded": loaded,
            "ratio": round(loaded["requests_per_s"] / unloaded["requests_per_s"], 3),
            "planner_outcomes": {str(k): v for k, v in sorted(outcomes.items(), key=str)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {name: [] for name in SETUPS}
    for i in range(args.runs):
        for name in SETUPS:
            result = measure(name, args.clients, args.duration)
            runs[name].append(result)
            print(f"  run {i + 1} {name}: nearest {result['unloaded']['requests_per_s']:.0f} -> "
                  f"{result['loaded']['requests_per_s']:.0f} req/s (x{result['ratio']}), p99 "
                  f"{result['loaded']['p99_ms']} ms; planners {result['planner_outcomes']}", file=sys.stderr)

    def median(name, phase, key):
        return round(float(np.median([r[phase][key] for r in runs[name]])), 2)

    summary = {name: {"unloaded_rps": median(name, "unloaded", "requests_per_s"),
                      "loaded_rps": median(name, "loaded", "requests_per_s"),
                      "ratio": round(float(np.median([r["ratio"] for r in runs[name]])), 3),
                      "unloaded_p99_ms": median(name, "unloaded", "p99_ms"),
                      "loaded_p50_ms": median(name, "loaded", "p50_ms"),
                      "loaded_p99_ms": median(name, "loaded", "p99_ms")} for name in SETUPS}
    result = {"machine": machine(), "clients": args.clients, "duration_s": args.duration, "runs": args.runs,
              "siting_request": SITING, "setups": {k: {"env": v["env"], "threads": v["threads"]} for k, v in SETUPS.items()},
              "summary": summary, "all_runs": runs,
              "command": "wrk -t2 -c16 -d{duration}s -s benchmarks/nearest_random.lua while N planners post /api/siting"}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nnearest under {args.clients} planners (median of {args.runs} runs, wrk -t2 -c16 -d{args.duration}s)")
    print(f"{'set-up':<10}{'alone req/s':>12}{'loaded req/s':>14}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, s in summary.items():
        print(f"{name:<10}{s['unloaded_rps']:>12,.0f}{s['loaded_rps']:>14,.0f}{s['ratio']:>8.2f}"
              f"{s['loaded_p50_ms']:>9.2f}{s['loaded_p99_ms']:>9.2f}")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
