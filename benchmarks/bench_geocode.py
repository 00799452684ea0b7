"""Geocoding benchmark: ``geoserver geocode`` of 3,400 pending rows against the local stand-in, cache cold and warm.

Usage: ``.venv/bin/python benchmarks/bench_geocode.py [--rows 3400] [--runs 3] [--provider amap] [--qps 1000]``;
prints a table and writes benchmarks/results/geocode.json.

A 3,400-row form without coordinates (the 申报汇总表 as the unions fill it: 名称 · 行政区 · 街镇 · 具体门牌号 …) is
generated from bench_import's seeded rows and imported into ``rest_rooms`` of a copy of the bundled data: every row
pending. The stand-in (scripts/geocoder_standin.py, in its own process on 127.0.0.1) knows each row's address
(上海市 + 行政区 + 街镇 + 具体门牌号): 90 % at house-number level, 6 % only at road level and 4 % not at all, so the
run exercises acceptance, the name fallback and the failure paths; its GCJ-02/BD-09 values come from our own datum
module (this measures speed, not correctness: the tests check correctness against gcoord).

Cold: the geocoding cache is empty (every query is a request to the stand-in). Warm: the same rows made pending again
(the import's version rolled back to) and geocoded once more: every answer from the cache, no request. Each figure
is the wall time of the real command in a fresh process (start-up, loading the layers, geocoding, writing the new
version), median of ``--runs``. The provider's rate limit is set far above what the stand-in needs (``--qps``), so
the figure is our own cost; with a real key the provider's quota sets the pace (Amap/Baidu/Tencent personal keys:
about 3–5 requests per second), which the report states as the time 3,400 rows would take at that rate.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import import sample_rows  # noqa: E402
from common import GEOSERVER, ROOT, machine  # noqa: E402

from geoserver.core import crs  # noqa: E402
from geoserver.core.locate import queries_for  # noqa: E402
from geoserver.core.service import DEFAULT_DATA_DIR  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "geocode.json"
STANDIN = ROOT / "scripts" / "geocoder_standin.py"
#: The 申报汇总表's columns (no 开放时间, no coordinates), as bench_import generates them.
FORM_HEADER = ["序号", "名称", "行政区", "街镇", "具体门牌号", "点位联系人", "手机号码", "所属单位", "面积",
               "提供设施及服务", "覆盖企业（单位）数", "计划投入资金"]


def form_and_gazetteer(n: int, seed: int = 20261202) -> tuple[list[list], list[dict]]:
    """Form rows without coordinates (and without 开放时间) and the stand-in's gazetteer for them."""
    rng = np.random.default_rng(seed)
    rows = sample_rows(n)
    gazetteer = []
    for r in rows:
        lon, lat = float(r[13]), float(r[14])
        query = queries_for({"district": r[2], "subdistrict": r[3], "address": r[4], "name": r[1]})[0]
        u = rng.random()
        precision = "house" if u < 0.90 else "road" if u < 0.96 else "none"
        glon, glat = crs.wgs84_to_gcj02(lon, lat)
        blon, blat = crs.wgs84_to_bd09(lon, lat)
        gazetteer.append({"address": query, "precision": precision, "wgs84": [lon, lat],
                          "gcj02": [float(glon), float(glat)], "bd09": [float(blon), float(blat)],
                          "formatted": query, "adcode": None})
    not_in_rest_rooms = {"临时停车", "法律服务", "微心愿"}
    form = [[*r[:9], "、".join(x for x in r[9].split("、") if x not in not_in_rest_rooms) or "休憩", *r[10:12]]
            for r in rows]
    return form, gazetteer


def start_standin(gazetteer_path: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(STANDIN), "--port", "0", "--gazetteer", str(gazetteer_path)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"the stand-in did not start: {line!r}")
    return proc, match.group(0)


def run(cmd: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--provider", default="amap", choices=["amap", "tianditu", "tencent", "baidu"])
    parser.add_argument("--qps", type=float, default=1000.0)
    args = parser.parse_args()
    rows, gazetteer = form_and_gazetteer(args.rows)
    samples: dict[str, list[float]] = {"cold": [], "warm": []}
    outputs = {}
    with tempfile.TemporaryDirectory(prefix="bench_geocode_") as tmp:
        work = Path(tmp)
        form = work / "form.csv"
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(FORM_HEADER)
        w.writerows(rows)
        form.write_bytes(buf.getvalue().encode("utf-8-sig"))
        gz = work / "gazetteer.json"
        gz.write_text(json.dumps(gazetteer, ensure_ascii=False))
        standin, url = start_standin(gz)
        try:
            for i in range(args.runs):
                data = work / f"geo{i}"
                shutil.copytree(DEFAULT_DATA_DIR, data)
                env = {**os.environ, "GEOSERVER_GEOCODER": args.provider, "GEOSERVER_GEOCODER_KEY": "bench-key-0001",
                       "GEOSERVER_GEOCODER_URL": url, "GEOSERVER_GEOCODER_QPS": str(args.qps)}
                base = [str(GEOSERVER), "--data-dir", str(data)]
                run([*base, "import", "rest_rooms", str(form), "--no-geocode", "--no-progress"], env)
                elapsed, out = run([*base, "geocode", "rest_rooms", "--no-progress"], env)
                samples["cold"].append(elapsed)
                outputs["cold"] = out.strip()
                run([*base, "rollback", "rest_rooms", "2"], env)   # the import's version: every row pending again
                elapsed, out = run([*base, "geocode", "rest_rooms", "--no-progress"], env)
                samples["warm"].append(elapsed)
                outputs["warm"] = out.strip()
                print(f"  run {i + 1}: cold {samples['cold'][-1]:.2f} s, warm {samples['warm'][-1]:.2f} s",
                      file=sys.stderr)
            startup = [run([str(GEOSERVER), "--data-dir", str(work / "geo0"), "layers"], os.environ)[0]
                       for _ in range(args.runs)]
        finally:
            standin.terminate()
            standin.wait(timeout=10)
    located = int(re.search(r": (\d+) located", outputs["cold"]).group(1))
    result = {
        "machine": machine(), "rows": args.rows, "runs": args.runs, "provider": args.provider,
        "standin_precision": {"house": 0.90, "road": 0.06, "unknown": 0.04}, "located": located,
        "cold": {"median_s": round(float(np.median(samples["cold"])), 2), "runs_s": [round(s, 2) for s in samples["cold"]],
                 "rows_per_s": round(args.rows / float(np.median(samples["cold"])))},
        "warm": {"median_s": round(float(np.median(samples["warm"])), 2), "runs_s": [round(s, 2) for s in samples["warm"]],
                 "rows_per_s": round(args.rows / float(np.median(samples["warm"])))},
        "cli_startup_layers_s": round(float(np.median(startup)), 2),
        "output": outputs,
        "at_provider_rate": {f"{q} req/s": f"{args.rows * 1.1 / q / 60:.0f} min" for q in (3, 5, 10)},
        "command": "geoserver --data-dir COPY geocode rest_rooms --no-progress (GEOSERVER_GEOCODER_URL = stand-in)",
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{args.rows:,} pending rows, {args.provider} protocol against the stand-in, median of {args.runs} runs")
    for kind in ("cold", "warm"):
        r = result[kind]
        print(f"  {kind:<5} {r['median_s']:>7.2f} s  {r['rows_per_s']:>6,} rows/s   runs: {r['runs_s']}")
    print(f"  start-up (geoserver layers): {result['cli_startup_layers_s']} s; located {located} of {args.rows}")
    print(f"  cold output: {outputs['cold']}")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
