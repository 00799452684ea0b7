"""The hot path against a Flask "hello" floor, side by side in one run.

Two servers run at once on loopback, both under the same Granian with the same settings (WSGI, ``--workers`` worker
processes, 8 blocking threads each): a Flask app answering a small JSON "hello" (hello_app.py, the floor) and
``geoserver serve`` on the bundled data. wrk drives each target in turn with the same threads, connections and
duration:

* floor: ``GET /`` of the hello app;
* nearest: ``GET /api/nearest?lon=…&lat=…&layer=stations&k=5`` at random points (hotpath_nearest.lua), without and
  with ``Accept-Encoding: gzip`` (the web map's browsers send it);
* items_bbox: ``GET /ogc/collections/stations/items?bbox=<about 1 km in central Shanghai>&limit=10``, without and
  with ``Accept-Encoding: gzip`` (browsers and most HTTP clients send it);
* item: ``GET /ogc/collections/stations/items/<an existing id>``.

Each round measures every target once (the order alternates from round to round); a target's ratio in a round is
its requests/s divided by the floor's requests/s in that round. Reported: per-round figures, medians of requests/s,
of latency percentiles and of the ratios, and the CPU time the server processes used per request (user + system,
all workers; less sensitive than requests/s to other load on a shared machine).

Usage: ``.venv/bin/python benchmarks/bench_hotpath.py [--duration 10] [--rounds 3] [--connections 16]``
Writes benchmarks/results/hotpath.json (``--out`` elsewhere). Load goes to 127.0.0.1 only, bounded by --duration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import urllib.request
from importlib.metadata import version
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, machine, our_server, run_wrk, stop_process_group, wait_ready  # noqa: E402

HERE = Path(__file__).resolve().parent
#: About 1 km x 1 km around People's Square.
BBOX = "121.468,31.226,121.478,31.235"
GOAL = 0.60
GZIP = {"Accept-Encoding": "gzip"}


@contextlib.contextmanager
def hello_server(workers: int = 2, threads: int = 8):
    """Run hello_app.py under Granian on a free loopback port; yields (base URL, process)."""
    port = free_port()
    cmd = [sys.executable, str(HERE / "hello_app.py"), "--port", str(port), "--workers", str(workers),
           "--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/", proc)
        yield url, proc
    finally:  # its own process group: the Granian main process and its workers
        stop_process_group(proc)


def cpu_seconds(proc) -> float:
    """User + system CPU time used so far by a server: its main process and every worker."""
    total = 0.0
    main = psutil.Process(proc.pid)
    for p in [main, *main.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def probe(url: str, headers: dict | None = None) -> dict:
    """One request: status, body size on the wire, Content-Encoding (checked before anything is measured)."""
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = resp.read()
        return {"status": resp.status, "bytes": len(body), "content_encoding": resp.headers.get("Content-Encoding"),
                "body": body}


def targets(hello: str, base: str) -> dict:
    """name -> (url, wrk script, headers, what is asked)."""
    items = f"{base}/ogc/collections/stations/items?bbox={BBOX}&limit=10"
    page = json.loads(probe(items)["body"])
    if not page["features"]:
        raise SystemExit(f"no station in {BBOX}: pick another bbox")
    feature_id = page["features"][0]["id"]
    return {
        "floor": (hello + "/", None, None, "GET / (Flask hello, small JSON)"),
        "nearest": (base + "/", HERE / "hotpath_nearest.lua", None,
                    "GET /api/nearest?lon=…&lat=…&layer=stations&k=5, 1,000 random points in Shanghai"),
        "nearest_gzip": (base + "/", HERE / "hotpath_nearest.lua", GZIP, "the same with Accept-Encoding: gzip"),
        "items_bbox": (items, None, None, f"GET /ogc/collections/stations/items?bbox={BBOX}&limit=10"),
        "items_bbox_gzip": (items, None, GZIP, "the same with Accept-Encoding: gzip"),
        "item": (f"{base}/ogc/collections/stations/items/{feature_id}", None, None,
                 f"GET /ogc/collections/stations/items/{feature_id}"),
    }


def check(name: str, url: str, script, headers) -> dict:
    """The answer a target gets (a 200), with its size; the nearest script's URLs are checked with one point."""
    if script is not None:
        url = url.rstrip("/") + "/api/nearest?lon=121.4737&lat=31.2304&layer=stations&k=5"
    got = probe(url, headers)
    if got["status"] != 200:
        raise SystemExit(f"{name}: {url} answered {got['status']}")
    return {k: v for k, v in got.items() if k != "body"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per target and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="Granian workers of both servers")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk per target before the rounds")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hotpath.json")
    args = parser.parse_args()
    wrk = dict(duration_s=args.duration, connections=args.connections, threads=args.threads)
    with hello_server(args.workers) as (hello, hello_proc), our_server(args.workers) as (base, our_proc, _):
        plan = targets(hello, base)
        responses = {name: check(name, url, script, headers) for name, (url, script, headers, _) in plan.items()}
        for url, script, headers, _ in plan.values():   # first requests build caches (per-datum fragments)
            run_wrk(url, args.warmup, args.connections, args.threads, script=script, headers=headers)
        rounds = []
        names = list(plan)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            measured = {}
            for name in order:
                url, script, headers, _ = plan[name]
                server = hello_proc if name == "floor" else our_proc
                used = cpu_seconds(server)
                measured[name] = run_wrk(url, script=script, headers=headers, **wrk)
                used = cpu_seconds(server) - used
                measured[name]["server_cpu_us_per_request"] = round(used / max(measured[name]["requests"], 1) * 1e6, 1)
                print(f"round {r + 1} {name:<16} {measured[name]['requests_per_s']:>9,.0f} req/s", file=sys.stderr)
            floor = measured["floor"]["requests_per_s"]
            rounds.append({"order": order, "results": measured, "ratios": {
                n: round(measured[n]["requests_per_s"] / floor, 3) for n in names if n != "floor"}})
    summary = {}
    for name in names:
        runs = [rnd["results"][name] for rnd in rounds]
        entry = {"requests_per_s": round(statistics.median(x["requests_per_s"] for x in runs), 1),
                 "p50_ms": statistics.median(x["p50_ms"] for x in runs),
                 "p99_ms": statistics.median(x["p99_ms"] for x in runs),
                 "non_2xx": sum(x["non_2xx"] for x in runs),
                 "server_cpu_us_per_request": statistics.median(x["server_cpu_us_per_request"] for x in runs),
                 "asked": plan[name][3], **{f"response_{k}": v for k, v in responses[name].items()}}
        if name != "floor":
            ratios = [rnd["ratios"][name] for rnd in rounds]
            entry.update(ratio_median=round(statistics.median(ratios), 3), ratio_min=min(ratios),
                         ratio_max=max(ratios), goal_met=statistics.median(ratios) >= GOAL)
        summary[name] = entry
    result = {"machine": machine(), "granian": version("granian"), "flask": version("flask"),
              "settings": {"workers": args.workers, "wrk": f"-t{args.threads} -c{args.connections} "
                           f"-d{args.duration}s", "rounds": args.rounds, "bbox": BBOX, "goal_ratio": GOAL},
              "summary": summary, "rounds": rounds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"{'target':<16} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'ratio':>6}  (min-max)   bytes  "
          "server CPU/request")
    for name, entry in summary.items():
        ratio = f"{entry['ratio_median']:>6.2f}  ({entry['ratio_min']:.2f}-{entry['ratio_max']:.2f})" \
            if name != "floor" else f"{'':>6}  {'':>11}"
        print(f"{name:<16} {entry['requests_per_s']:>9,.0f} {entry['p50_ms']:>7.2f} {entry['p99_ms']:>7.2f} {ratio} "
              f"{entry['response_bytes']:>6}{' gzip' if entry['response_content_encoding'] else '     '} "
              f"{entry['server_cpu_us_per_request']:>6.0f} us")


if __name__ == "__main__":
    main()
