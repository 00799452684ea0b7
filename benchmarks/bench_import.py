"""Import benchmark: ``geoserver import`` of a 10,000-row union form, CSV and XLSX, check-only and replacing.

Usage: ``.venv/bin/python benchmarks/bench_import.py [--rows 10000] [--runs 3]``; prints a table and writes
benchmarks/results/import.json.

The form is generated (seeded): rows spread over the 16 districts in proportion to their 2020 census population,
each point drawn uniformly inside its district polygon of the service's districts layer (and at least 200 m inside
it, so no row trips the boundary check), its 行政区 that district, its 街镇 one of that district's names from
data/geo/subdistricts.csv, and the other columns of the 申报汇总表 (序号 · 名称 · 行政区 · 街镇 · 具体门牌号 · 点位联系人
· 手机号码 · 所属单位 · 面积 · 提供设施及服务 · 覆盖企业（单位）数 · 计划投入资金) plus 开放时间, 经度, 纬度. Every row is
valid, so the timings are of a complete import, not of an early refusal.

Each measurement is the wall time of the real command line in a fresh process (``geoserver --data-dir COPY import
stations FILE --crs wgs84 [--replace | --dry-run] --no-progress``), so it includes interpreter start-up and loading
every layer; ``geoserver layers`` on the same data is timed too, as that fixed part. Replacing runs on a fresh copy of
the bundled data directory each time (3,400 sample stations replaced by the 10,000 rows, one new version written).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import GEOSERVER, ROOT, machine  # noqa: E402

from geoserver.core import crs  # noqa: E402
from geoserver.core.importer import load_subdistricts  # noqa: E402
from geoserver.core.service import DEFAULT_DATA_DIR, GeoService  # noqa: E402

SEED = 20261125
INSIDE_M = 200.0
OUT = ROOT / "benchmarks" / "results" / "import.json"
HEADER = ["序号", "名称", "行政区", "街镇", "具体门牌号", "点位联系人", "手机号码", "所属单位", "面积",
          "提供设施及服务", "覆盖企业（单位）数", "计划投入资金", "开放时间", "经度", "纬度"]
SERVICES = ["补水", "休憩", "取暖", "纳凉", "充电", "热饭", "如厕", "临时停车", "医药箱", "无线网络", "阅读", "法律服务",
            "微心愿"]
HOURS = ["24/7", "Mo-Fr 08:00-18:00", "Mo-Su 07:00-21:00", "Mo-Fr 09:00-17:00; Sa 09:00-12:00", "Mo-Sa 08:00-20:00"]
KINDS = ["户外职工爱心接力站", "工会驿站", "快递小哥驿站", "环卫工人休息点", "新就业形态劳动者驿站"]
ROADS = ["中山路", "人民路", "解放路", "建设路", "和平路", "长江路", "淮海路", "文化路", "园区路", "新村路"]
NAMES = ["王敏", "李强", "张洁", "刘伟", "陈静", "杨磊", "赵丽", "黄涛", "周婷", "吴刚"]


def sample_rows(n: int, seed: int = SEED) -> list[list]:
    """``n`` valid form rows, spread over the districts by population, each point inside its district."""
    rng = np.random.default_rng(seed)
    svc = GeoService()
    districts = svc.layer("districts")
    subdistricts = load_subdistricts()
    props = districts.properties
    population = np.array([float(p["population_2020"]) for p in props])
    counts = np.floor(n * population / population.sum()).astype(int)
    counts[np.argsort(-population)[: n - counts.sum()]] += 1
    rows = []
    for p, geom, count in zip(props, districts.gdf.geometry.values, counts):
        metric = shapely.transform(geom, lambda xy: np.column_stack(crs.to_metric(xy[:, 0], xy[:, 1])))
        inner = metric.buffer(-INSIDE_M)
        shapely.prepare(inner)
        x0, y0, x1, y1 = inner.bounds
        xs, ys = [], []
        while len(xs) < count:
            x = rng.uniform(x0, x1, 4 * count + 64)
            y = rng.uniform(y0, y1, 4 * count + 64)
            keep = shapely.contains_xy(inner, x, y)
            xs.extend(x[keep])
            ys.extend(y[keep])
        lon, lat = crs.from_metric(np.array(xs[:count]), np.array(ys[:count]))
        towns = [full for _, full in subdistricts[str(p["id"])]]
        for lo, la in zip(lon, lat):
            i = len(rows) + 1
            town = towns[rng.integers(len(towns))]
            services = sorted(rng.choice(len(SERVICES), size=rng.integers(2, 6), replace=False))
            rows.append([i, f"{town}{KINDS[i % len(KINDS)]}{i:05d}号", p["name"], town,
                         f"{ROADS[rng.integers(len(ROADS))]}{rng.integers(1, 2000)}号", NAMES[i % len(NAMES)],
                         f"100{i:08d}", f"{town}总工会", int(rng.integers(15, 120)),
                         "、".join(SERVICES[k] for k in services), int(rng.integers(0, 80)),
                         round(float(rng.uniform(0.5, 8)), 1), HOURS[i % len(HOURS)], f"{lo:.6f}", f"{la:.6f}"])
    return rows


def write_csv(rows: list[list], path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["上海市工会驿站申报汇总表（基准测试数据）"] + [""] * (len(HEADER) - 1))
    w.writerow(HEADER)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8-sig"))


def write_xlsx(rows: list[list], path: Path) -> None:
    import openpyxl
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("申报汇总表")
    ws.append(["上海市工会驿站申报汇总表（基准测试数据）"])
    ws.append(HEADER)
    for r in rows:  # as in a real form: phone numbers, areas and coordinates as numbers
        ws.append([*r[:6], int(r[6]), *r[7:13], float(r[13]), float(r[14])])
    wb.save(path)


def timed(cmd: list[str], expect_rc: int = 0) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != expect_rc:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def fresh_copy(work: Path) -> Path:
    target = work / "geo"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def measure(work: Path, form: Path, mode: str, runs: int, rows: int) -> dict:
    samples = []
    for _ in range(runs):
        data = fresh_copy(work)
        cmd = [str(GEOSERVER), "--data-dir", str(data), "import", "stations", str(form), "--crs", "wgs84",
               "--no-progress", "--dry-run" if mode == "dry-run" else "--replace"]
        elapsed, out = timed(cmd)
        expected = (f"dry run: {rows} of {rows} rows valid" if mode == "dry-run"
                    else f"{rows} added, 0 updated, 3400 removed, 0 unchanged; {rows} features")
        if expected not in out:
            raise RuntimeError(f"unexpected output of {' '.join(cmd)}:\n{out[-2000:]}")
        samples.append(elapsed)
    return {"median_s": round(float(np.median(samples)), 3), "runs_s": [round(s, 3) for s in samples],
            "rows_per_s": round(rows / float(np.median(samples)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        rows = sample_rows(args.rows)
        generate_s = time.perf_counter() - t
        forms = {"csv": work / "stations_10k.csv", "xlsx": work / "stations_10k.xlsx"}
        write_csv(rows, forms["csv"])
        write_xlsx(rows, forms["xlsx"])
        data = fresh_copy(work)
        startup = [timed([str(GEOSERVER), "--data-dir", str(data), "layers"])[0] for _ in range(args.runs)]
        results = {}
        for kind, form in forms.items():
            for mode in ("dry-run", "replace"):
                results[f"{kind}_{mode}"] = measure(work, form, mode, args.runs, len(rows))
                print(f"  {kind} {mode}: {results[f'{kind}_{mode}']['median_s']} s", file=sys.stderr)
        sizes = {kind: form.stat().st_size for kind, form in forms.items()}
    result = {
        "machine": machine(),
        "rows": len(rows),
        "runs": args.runs,
        "districts": len({r[2] for r in rows}),
        "file_bytes": sizes,
        "generate_rows_s": round(generate_s, 2),
        "cli_startup_layers_s": {"median_s": round(float(np.median(startup)), 3),
                                 "runs_s": [round(s, 3) for s in startup]},
        "import": results,
        "command": "geoserver --data-dir COPY import stations FILE --crs wgs84 --no-progress [--dry-run | --replace]",
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\n{args.rows:,}-row form, median of {args.runs} runs (wall time of the CLI in a fresh process)")
    header = f"{'file':<6}{'mode':<10}{'median s':>10}{'rows/s':>10}  runs (s)"
    print(header + "\n" + "-" * len(header))
    for key, r in results.items():
        kind, mode = key.split("_", 1)
        print(f"{kind:<6}{mode:<10}{r['median_s']:>10.2f}{r['rows_per_s']:>10,}  {', '.join(map(str, r['runs_s']))}")
    print(f"{'':<6}{'(start-up: geoserver layers)':<20}{result['cli_startup_layers_s']['median_s']:>6.2f}")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
