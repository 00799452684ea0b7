"""The partners' change feed: snapshot and changes, in-process through the Flask app, on a private copy of the
bundled data in files (PostGIS is read the same way: the versions are read once, then kept).

An import that updates 100 stations, removes 20 and adds 30 makes version 2; then: the first ``changes`` request
(both versions read and compared: the cold cost, paid once per version by each process), the same request again
(``--runs`` times, medians), a snapshot in GeoJSON and CSV, in WGS84 and GCJ-02.

Usage: ``.venv/bin/python benchmarks/bench_feed.py [--runs 20]``; writes benchmarks/results/feed.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--versions", type=int, default=20, help="history length for the updated-times figures")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "feed.json")
    args = parser.parse_args()

    from geoserver.core.importer import ImportOptions
    from geoserver.core.manage import DataManager
    from geoserver.core.service import DEFAULT_DATA_DIR, GeoService
    from geoserver.web import create_app

    tmp = Path(tempfile.mkdtemp())
    try:
        data = tmp / "geo"
        shutil.copytree(DEFAULT_DATA_DIR, data)
        svc = GeoService(data_dir=data)
        client = create_app(service=svc).test_client()
        manager = DataManager(svc)
        raw, _ = manager.export("stations", "csv")
        rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
        for r in rows[:100]:
            r["名称"] += "（更新）"
        rows = rows[:3000] + rows[3020:] + [{**rows[5], "编号": "", "名称": f"新驿站{i}"} for i in range(30)]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
        (tmp / "form.csv").write_text(out.getvalue(), encoding="utf-8")
        summary = manager.import_file("stations", tmp / "form.csv", ImportOptions(datum="wgs84", mode="replace"),
                                      who="bench").change.summary()

        def timed(url: str) -> tuple[float, int]:
            started = time.perf_counter()
            resp = client.get(url)
            elapsed = time.perf_counter() - started
            if resp.status_code != 200:
                raise SystemExit(f"{url}: {resp.status_code}")
            return elapsed, len(resp.get_data())

        results = {}
        cold, size = timed("/api/feed/stations/changes?since=0")
        results["changes, first request (two versions read and compared)"] = {"median_ms": round(cold * 1000, 1),
                                                                             "runs": 1, "bytes": size}
        for name, url in (("changes since the snapshot (150 changes)", "/api/feed/stations/changes?since=0"),
                          ("changes, GCJ-02", "/api/feed/stations/changes?since=0&crs=gcj02"),
                          ("changes, caught up (nothing new)", "/api/feed/stations/changes?since=2"),
                          ("snapshot GeoJSON (3,410 features)", "/api/feed/stations/snapshot"),
                          ("snapshot GeoJSON, GCJ-02", "/api/feed/stations/snapshot?crs=gcj02"),
                          ("snapshot CSV", "/api/feed/stations/snapshot?format=csv")):
            timed(url)
            samples = [timed(url) for _ in range(args.runs)]
            results[name] = {"median_ms": round(statistics.median(t for t, _ in samples) * 1000, 2),
                             "runs": args.runs, "bytes": samples[0][1]}
        for name, entry in results.items():
            print(f"{name:<58} {entry['median_ms']:>9} ms  {entry['bytes']:>10,} bytes")
        results.update(update_times(svc, manager, tmp, rows, args.versions))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": machine(), "import": summary, "results": results}, indent=2,
                                       ensure_ascii=False) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def update_times(svc, manager, tmp: Path, rows: list[dict], versions: int) -> dict:
    """Every feature's ``updated`` time (core.history): derived from the history when a process loads the layer,
    then carried forward one version at a time. Grows the history to ``versions`` versions (one station renamed
    each), then times a cold derivation (a server starting: every version read once) and the step for one new
    version (what each process pays when a new version arrives)."""
    from geoserver.core.history import UpdateTimes
    from geoserver.core.importer import ImportOptions

    def one_more_version():
        n = len(svc.storage.versions("stations"))
        rows[n]["名称"] += "（再次更新）"
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(rows)
        (tmp / "again.csv").write_text(out.getvalue(), encoding="utf-8")
        manager.import_file("stations", tmp / "again.csv", ImportOptions(datum="wgs84", mode="replace"), who="bench")
        svc.refresh(force=True)

    while len(svc.storage.versions("stations")) < versions - 1:
        one_more_version()
    warm = UpdateTimes(svc.storage)
    warm.times(svc.layer("stations"))           # the state of a running process
    one_more_version()
    layer = svc.layer("stations")
    started = time.perf_counter()
    warm.times(layer)
    step = time.perf_counter() - started
    cold = []
    for _ in range(3):
        started = time.perf_counter()
        times = UpdateTimes(svc.storage).times(layer)
        cold.append(time.perf_counter() - started)
    count = len(svc.storage.versions("stations"))
    out = {f"updated times, cold, {count} versions (a process starting)":
           {"median_ms": round(statistics.median(cold) * 1000, 1), "runs": 3, "features": len(times)},
           "updated times, one new version (carried forward)": {"median_ms": round(step * 1000, 1), "runs": 1}}
    for name, entry in out.items():
        print(f"{name:<58} {entry['median_ms']:>9} ms")
    return out


if __name__ == "__main__":
    main()
