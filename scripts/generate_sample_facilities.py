"""Generate the SAMPLE facility layers in data/geo/ (seeded, reproducible).

Nothing here is a real facility: every feature carries ``source = "sample"``, a name ending in 示例 and an
address that says it is a sample. The real lists replace these files through the import command.

The model, so that maps and coverage figures look like a city and not like noise:
* counts per district follow the 2020 census population, with suburban districts under-served relative to
  their population (as the union circulars say: the suburbs have blank areas to fill);
* within a district, most points cluster (Gaussian, sigma a few km) around real town centres
  (``geoserver.core.geography.TOWN_CENTRES``, approximate positions), the rest spread uniformly over the district;
* points fall on land: inside the district polygon shrunk by 150 m (many district boundaries follow the
  Huangpu River, Suzhou Creek and the coast) and outside rough outlines of the largest lakes (``WATER``);
* driver homes cluster around logistics areas and expressway hubs (``LOGISTICS_HUBS``).

Usage: ``python scripts/generate_sample_facilities.py [--seed 20261125] [--out data/geo] [--layers rest_rooms]``
(each layer draws from its own random stream, so regenerating one layer leaves the others as they were; the first
five share the original stream, in order)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import Point

from geoserver.core import crs
from geoserver.core.geography import TOWN_CENTRES, WATER

ROOT = Path(__file__).resolve().parents[1]

#: Approximate WGS84 positions of logistics areas and expressway hubs (lon, lat, weight).
LOGISTICS_HUBS = [
    (121.600, 31.350, 3),  # Waigaoqiao port and free-trade zone
    (121.790, 31.160, 2),  # Pudong airport cargo area
    (121.320, 31.195, 2),  # Hongqiao transport hub
    (121.900, 30.890, 2),  # Lingang logistics park
    (121.200, 31.235, 3),  # Qingpu Huaxin express-delivery cluster
    (121.270, 31.170, 1),  # Xujing / G15-G50 interchange
    (121.280, 31.330, 2),  # Jiading Malu / G15
    (121.370, 31.455, 2),  # Baoshan Luojing port
    (121.350, 31.070, 1),  # Songjiang Jiuting / G60
    (121.520, 31.060, 1),  # Minhang Pujiang / S20
    (121.420, 30.900, 1),  # Fengxian Zhuanghang / G1501
    (121.250, 30.800, 1),  # Jinshan / G15
]
STATIONS_TOTAL = 3400
#: How well each zone is served, relative to population (suburbs have gaps to plan for).
SERVICE_LEVEL = {"central": 1.35, "mixed": 1.0, "suburban": 0.7}

STATION_HOSTS = ["社区党群服务中心", "便利店", "加油站", "银行网点", "环卫作息点", "物业服务中心", "商场",
                 "快递网点", "公交枢纽", "医院", "企业楼宇", "邮政网点", "菜场"]
STATION_HOURS = [("24/7", 22), ("Mo-Su 07:00-21:00", 25), ("Mo-Fr 08:00-18:00; Sa,Su 09:00-17:00", 15),
                 ("Mo-Fr 09:00-17:00; PH off", 10), ("Mo-Su 06:00-22:00", 18), ("Mo-Sa 08:30-20:30", 10)]
STATION_SERVICES = {"water": 0.97, "rest": 0.95, "charging": 0.7, "microwave": 0.6, "heating": 0.6,
                    "cooling": 0.7, "toilet": 0.5, "parking": 0.3, "first_aid": 0.5, "wifi": 0.4,
                    "reading": 0.2, "legal_aid": 0.35}
WISH_CORNERS = 54  # the 54 "most beautiful" stations host 微心愿 wish corners


def load_districts(path: Path) -> gpd.GeoDataFrame:
    """Districts with an extra ``land`` column: the polygon shrunk by 150 m minus the lakes (WGS84)."""
    d = gpd.read_file(path)
    metric = d.to_crs(crs.METRIC_CRS)
    water = gpd.GeoSeries(WATER, crs="EPSG:4326").to_crs(crs.METRIC_CRS).union_all()
    land = metric.geometry.buffer(-150).difference(water)
    d["land"] = gpd.GeoSeries(land, crs=crs.METRIC_CRS).to_crs(4326).values
    return d


def sample_in(land, n, rng, centres=(), clustered=0.75, sigma_m=3000.0):
    """n points inside ``land``: a share ``clustered`` around weighted centres, the rest uniform."""
    shapely.prepare(land)
    minx, miny, maxx, maxy = land.bounds
    out = []
    weights = np.array([c[2] for c in centres], float)
    while len(out) < n:
        if len(centres) and rng.random() < clustered:
            lon, lat, _ = centres[rng.choice(len(centres), p=weights / weights.sum())]
            x0, y0 = crs.to_metric(lon, lat)
            x, y = crs.from_metric(x0 + rng.normal(0, sigma_m), y0 + rng.normal(0, sigma_m))
        else:
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if shapely.contains_xy(land, x, y):
            out.append((round(float(x), 6), round(float(y), 6)))
    return out


def pick_hours(rng, table):
    """Draw an opening_hours string from a (value, weight) table."""
    values, weights = zip(*table)
    w = np.array(weights, float)
    return values[rng.choice(len(values), p=w / w.sum())]


def pick_services(rng, probabilities, always=()):
    """A sorted, comma-separated service list: each service drawn with its probability."""
    chosen = set(always) | {s for s, p in probabilities.items() if rng.random() < p}
    return ",".join(sorted(chosen))


def fake_phone(rng) -> str:
    """An 11-digit number starting 100, which no Chinese mobile number does: private, and clearly fake."""
    return "100" + "".join(str(d) for d in rng.integers(0, 10, 8))


def base_record(fid, name, district, xy, rng, services, hours, host):
    """The fields every facility layer shares."""
    return {"id": fid, "name": name, "district_code": district["id"], "district": district["name"],
            "subdistrict": None, "address": f"示例地址：{district['name']}（样例数据，非真实门牌）",
            "services": services, "opening_hours": hours, "host_org": host, "source": "sample",
            "contact_name": "示例联系人", "contact_phone": fake_phone(rng), "geometry": Point(xy)}


def allocate(districts, total, level=SERVICE_LEVEL):
    """Split ``total`` points over districts by population times the zone's service level."""
    w = districts["population_2020"].to_numpy(float) * districts["zone"].map(level).to_numpy(float)
    raw = w / w.sum() * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(raw - counts)[::-1][: total - counts.sum()]:
        counts[i] += 1
    return dict(zip(districts["id"], counts))


def make_stations(districts, rng):
    counts = allocate(districts, STATIONS_TOTAL)
    rows = []
    for _, d in districts.iterrows():
        pts = sample_in(d["land"], counts[d["id"]], rng, TOWN_CENTRES.get(d["id"], ()),
                        clustered=0.0 if d["zone"] == "central" else 0.7)
        for xy in pts:
            n = len(rows) + 1
            host = STATION_HOSTS[rng.integers(len(STATION_HOSTS))]
            rec = base_record(f"ST{n:05d}", f"{d['name']}{host}户外职工爱心接力站（示例{n:04d}）", d, xy, rng,
                              pick_services(rng, STATION_SERVICES), pick_hours(rng, STATION_HOURS),
                              f"{d['name']}总工会（示例）")
            rec.update(area_m2=float(rng.integers(8, 120)), smart=bool(rng.random() < 0.1))
            rows.append(rec)
    for i in rng.choice(len(rows), WISH_CORNERS, replace=False):
        rows[i]["services"] = ",".join(sorted(rows[i]["services"].split(",") + ["wish_corner"]))
    return rows


def make_driver_homes(districts, rng, total=60):
    rows = []
    weights = np.array([h[2] for h in LOGISTICS_HUBS], float)
    land_all = shapely.union_all(districts["land"].values)
    shapely.prepare(land_all)
    while len(rows) < total:
        lon, lat, _ = LOGISTICS_HUBS[rng.choice(len(LOGISTICS_HUBS), p=weights / weights.sum())]
        (xy,) = sample_in(land_all, 1, rng, [(lon, lat, 1)], clustered=1.0, sigma_m=2500)
        hit = districts[districts["land"].apply(lambda g: shapely.contains_xy(g, *xy))]
        if hit.empty:
            continue
        d = hit.iloc[0]
        n = len(rows) + 1
        services = pick_services(rng, {"truck_parking": 0.75, "meals": 0.8, "shower": 0.7, "laundry": 0.4,
                                       "legal_aid": 0.5, "charging": 0.6, "wifi": 0.6},
                                 always=("parking", "rest", "toilet", "water"))
        rec = base_record(f"DH{n:04d}", f"{d['name']}司机之家（示例{n:02d}）", d, xy, rng, services,
                          pick_hours(rng, [("24/7", 8), ("Mo-Su 06:00-24:00", 2)]), "交通运输行业工会（示例）")
        rec["truck_parking_spaces"] = int(rng.integers(10, 80)) if "truck_parking" in services else 0
        rows.append(rec)
    return rows


GIG_MARKETS = [  # district code, market_type, industry
    ("310107", "comprehensive", None), ("310112", "comprehensive", None), ("310113", "comprehensive", None),
    ("310114", "comprehensive", None), ("310117", "comprehensive", None), ("310120", "comprehensive", None),
    ("310110", "comprehensive", None), ("310104", "comprehensive", None),
    ("310115", "industry", "护理（养老护理）"), ("310106", "industry", "家政服务"),
    ("310118", "industry", "长三角物流"), ("310101", "industry", "餐饮服务"),
]


def make_gig_markets(districts, rng):
    rows = []
    by_id = districts.set_index("id")
    for n, (code, kind, industry) in enumerate(GIG_MARKETS, start=1):
        d = by_id.loc[code].copy()
        d["id"] = code
        (xy,) = sample_in(d["land"], 1, rng, TOWN_CENTRES.get(code, ()), clustered=1.0, sigma_m=1500)
        label = f"{industry}行业零工市场" if industry else "综合性零工市场"
        services = "job_info,legal_aid,rest,toilet,water" if code == "310115" else pick_services(
            rng, {"legal_aid": 0.5, "wifi": 0.5}, always=("job_info", "rest", "toilet", "water"))
        rec = base_record(f"GM{n:02d}", f"{d['name']}{label}（示例）", d, xy, rng, services,
                          "Mo-Fr 08:30-17:00; Sa 09:00-12:00; PH off", f"{d['name']}人力资源和社会保障局（示例）")
        rec.update(market_type=kind, industry=industry, hiring_hours="Mo-Fr 09:00-11:00; PH off")
        rows.append(rec)
    return rows


def make_simple_layer(districts, rng, total, prefix, label, host, services, hours, extra=None):
    """A layer spread like the population, e.g. canteens and fitness stations."""
    counts = allocate(districts, total, {"central": 1.2, "mixed": 1.0, "suburban": 0.8})
    rows = []
    for _, d in districts.iterrows():
        for xy in sample_in(d["land"], counts[d["id"]], rng, TOWN_CENTRES.get(d["id"], ()),
                            clustered=0.0 if d["zone"] == "central" else 0.8):
            n = len(rows) + 1
            rec = base_record(f"{prefix}{n:04d}", f"{d['name']}{label}（示例{n:03d}）", d, xy, rng,
                              services(rng), pick_hours(rng, hours), host.format(district=d["name"]))
            if extra:
                rec.update(extra(rng))
            rows.append(rec)
    return rows


REST_ROOM_HOSTS = ["地铁运营公司", "公交公司", "医院", "环卫所", "建筑工地项目部", "制造企业", "能源化工企业", "航空地服公司",
                   "公厕管理所", "供电公司", "港口码头", "物流园区"]
#: Workplace rest rooms follow shifts; the 申报汇总表 they are filed on has no opening hours, so many are unknown.
REST_ROOM_HOURS = [("24/7", 25), ("Mo-Fr 08:00-18:00", 25), ("Mo-Su 06:00-22:00", 15), (None, 35)]
REST_ROOM_SERVICES = {"water": 0.95, "microwave": 0.8, "fridge": 0.7, "cooling": 0.85, "heating": 0.5,
                      "charging": 0.6, "toilet": 0.5, "massage_chair": 0.2, "reading": 0.3, "nursing_room": 0.15,
                      "snacks": 0.3, "wifi": 0.5, "first_aid": 0.4, "fitness": 0.1}


def make_rest_rooms(districts, rng, total=1000):
    """职工工间休息室 at workplaces (1,000 built or improved in 2024), spread like the working population."""
    counts = allocate(districts, total, {"central": 1.1, "mixed": 1.0, "suburban": 0.9})
    rows = []
    for _, d in districts.iterrows():
        for xy in sample_in(d["land"], counts[d["id"]], rng, TOWN_CENTRES.get(d["id"], ()),
                            clustered=0.0 if d["zone"] == "central" else 0.6):
            n = len(rows) + 1
            host = REST_ROOM_HOSTS[rng.integers(len(REST_ROOM_HOSTS))]
            rec = base_record(f"RR{n:05d}", f"{d['name']}{host}职工工间休息室（示例{n:04d}）", d, xy, rng,
                              pick_services(rng, REST_ROOM_SERVICES, always=("rest",)),
                              pick_hours(rng, REST_ROOM_HOURS), f"{d['name']}{host}（示例）")
            rec["area_m2"] = float(rng.integers(10, 60))
            rows.append(rec)
    return rows


#: Layers drawn one after another from the seed's first stream (later layers have streams of their own).
SHARED_STREAM = {"stations", "driver_homes", "gig_markets", "canteens", "fitness_stations"}


def write_layer(rows, path: Path, layer: str) -> None:
    """Write a layer atomically (temporary file, then rename)."""
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    tmp = path.with_suffix(".tmp.gpkg")
    tmp.unlink(missing_ok=True)
    gdf.to_file(tmp, layer=layer, driver="GPKG")
    tmp.replace(path)
    print(f"{layer}: {len(gdf)} sample features -> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "geo")
    parser.add_argument("--layers", default="all", help="comma-separated layers to write (default: all)")
    args = parser.parse_args()
    wanted = None if args.layers == "all" else set(args.layers.split(","))
    if wanted is not None and wanted & SHARED_STREAM and not SHARED_STREAM <= wanted:
        parser.error(f"{', '.join(sorted(SHARED_STREAM))} share one random stream: regenerate them together")
    districts = load_districts(args.out / "districts.gpkg")
    if wanted is None or "rest_rooms" in wanted:
        write_layer(make_rest_rooms(districts, np.random.default_rng([args.seed, 6])), args.out / "rest_rooms.gpkg",
                    "rest_rooms")
    if wanted is not None and not wanted & SHARED_STREAM:
        return
    rng = np.random.default_rng(args.seed)
    write_layer(make_stations(districts, rng), args.out / "stations.gpkg", "stations")
    write_layer(make_driver_homes(districts, rng), args.out / "driver_homes.gpkg", "driver_homes")
    write_layer(make_gig_markets(districts, rng), args.out / "gig_markets.gpkg", "gig_markets")
    write_layer(make_simple_layer(
        districts, rng, 600, "CT", "职工暖心餐就餐点", "{district}总工会（示例）",
        lambda r: pick_services(r, {"microwave": 0.3, "toilet": 0.6, "charging": 0.3, "wifi": 0.4},
                                always=("meals", "water", "rest")),
        [("Mo-Su 10:30-13:30,16:30-19:30", 6), ("Mo-Fr 11:00-14:00,17:00-19:00", 3), ("Mo-Su 06:30-20:00", 2)],
        lambda r: {"meal_price_yuan": float(r.choice([12, 15, 18, 20]))}),
        args.out / "canteens.gpkg", "canteens")
    write_layer(make_simple_layer(
        districts, rng, 110, "FS", "职工健身驿站", "{district}总工会（示例）",
        lambda r: pick_services(r, {"shower": 0.4, "toilet": 0.8, "wifi": 0.3}, always=("fitness", "water", "rest")),
        [("Mo-Fr 12:00-13:30,17:30-21:00; Sa,Su 09:00-18:00", 5), ("Mo-Su 07:00-22:00", 3)]),
        args.out / "fitness_stations.gpkg", "fitness_stations")


if __name__ == "__main__":
    main()
