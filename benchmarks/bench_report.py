"""How long the planning reports take to write, with and without the A4 PDF, and how large they are.

In one process on the bundled data (stations, 1,000 m, 200 m demand grid), coverage and plan already computed (the
time is the report's own: map, charts, CSV/GeoJSON, executive summary, static map, PDF). Each case ``--runs``
times (default 3), medians. Also the scenario report a planner downloads from /planning (coverage after the
scenario computed in full, then the plan report). Sizes: report.html raw and gzipped (level 6), report.pdf and its
pages.

Usage: ``.venv/bin/python benchmarks/bench_report.py [--runs 3]``; writes benchmarks/results/report.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "report.json")
    args = parser.parse_args()

    from geoserver.core.coverage import find_gaps
    from geoserver.core.planning import coverage_after, sites_frame
    from geoserver.core.service import GeoService
    from geoserver.planning.coverage import COVERAGE
    from geoserver.planning.scenario import scenario_report_inputs
    from geoserver.planning.siting import SITING
    from geoserver.render.report import write_coverage_report, write_plan_report

    svc = GeoService()
    coverage = COVERAGE.result(svc, COVERAGE.parse({"layer": "stations", "radius_m": "1000"}, svc))
    gaps = find_gaps(coverage)
    plan = SITING.solve(svc, SITING.problem(svc, SITING.parse({"layer": "stations", "k": 20, "radius_m": 1000}, svc)))
    after = coverage_after(plan)
    scenario = {"layer": "stations", "radius_m": 1000, "add": [[121.62, 31.66], [121.30, 30.90], [121.25, 31.05]],
                "remove": ["ST00001"]}

    cases = {
        "coverage report, no PDF": lambda out: write_coverage_report(out, svc, coverage, gaps, pdf=False),
        "coverage report with PDF": lambda out: write_coverage_report(out, svc, coverage, gaps),
        "plan report (k = 20) with PDF": lambda out: write_plan_report(out, svc, plan.problem.before, after,
                                                                        sites_frame(plan), plan.summary()),
        "scenario report with PDF (3 sites, 1 removed)": lambda out: write_plan_report(
            out, svc, *scenario_report_inputs(svc, scenario)[:4]),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, write) in enumerate(cases.items()):
            times = []
            for run in range(args.runs + 1):       # the first run loads fonts and caches; not counted
                out = Path(tmp) / f"{i}-{run}"
                started = time.perf_counter()
                paths = write(out)
                if run:
                    times.append(time.perf_counter() - started)
            page = Path(paths["report.html"]).read_bytes()
            entry = {"median_s": round(statistics.median(times), 2), "runs": args.runs,
                     "html_bytes": len(page), "html_gzip_bytes": len(gzip.compress(page, 6))}
            if "report.pdf" in paths:
                info = subprocess.run(["pdfinfo", str(paths["report.pdf"])], capture_output=True, text=True).stdout
                pages = next((int(line.split()[-1]) for line in info.splitlines() if line.startswith("Pages:")), None)
                entry.update(pdf_bytes=Path(paths["report.pdf"]).stat().st_size, pdf_pages=pages)
            results[name] = entry
            print(f"{name:<48} {entry['median_s']:>6.2f} s  html {entry['html_gzip_bytes'] / 1000:,.0f} KB gz"
                  + (f"  pdf {entry['pdf_bytes'] / 1000:,.0f} KB, {entry['pdf_pages']} pages" if "pdf_bytes" in entry
                     else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "results": results}, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
