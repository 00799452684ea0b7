"""Derive data/geo/subdistricts.csv (the 216 街道/镇/乡 of Shanghai, names and codes) from the shared reference file.

Source: xiangyuecn/AreaCity-JsSpider-StatsGov, ok_data_level4.csv, data version 2023.240319, MIT
(a copy is in ../shared/data/shanghai_areacity_level4.csv). Usage: python scripts/build_subdistricts.py [SOURCE_CSV]
"""

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "shanghai_areacity_level4.csv"
rows = [r for r in csv.DictReader(source.open(encoding="utf-8")) if r["deep"] == "3"]
out = ROOT / "data" / "geo" / "subdistricts.csv"
with out.open("w", encoding="utf-8", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["code", "district_code", "name", "full_name"])
    for r in sorted(rows, key=lambda r: r["id"]):
        w.writerow([r["ext_id"][:9], r["pid"], r["name"], r["ext_name"]])
print(f"wrote {out} ({len(rows)} sub-districts)")
