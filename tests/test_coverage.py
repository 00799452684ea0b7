"""Coverage on small hand-built instances with literal expected values, and the demand grid model."""

import numpy as np
import pytest

from geoserver.core import crs
from geoserver.core.coverage import Catchment, compute_coverage, find_gaps, nearest_distances_m, weighted_quantile
from geoserver.core.demand import Demand, grid_demand, load_demand
from geoserver.core.errors import InvalidQuery


def demand_at(points, weights, codes, cell_m=None, name="test"):
    lon = np.array([p[0] for p in points], float)
    lat = np.array([p[1] for p in points], float)
    x, y = crs.to_metric(lon, lat)
    return Demand(name=name, x=np.asarray(x), y=np.asarray(y), lon=lon, lat=lat, weight=np.array(weights, float),
                  district_code=np.array(codes, dtype=object), cell_m=cell_m, description="hand-built")


def test_covered_and_uncovered_cells_literal(tiny_service):
    # Station A is at (121.45, 31.25). One cell 500 m north of it, one ~5.6 km away, one in Chongming near D.
    north_500 = (121.45, 31.25 + 500 / 110_880)
    far = (121.45, 31.30)
    near_d = (121.551, 31.25)
    d = demand_at([north_500, far, near_d], [100, 40, 10], ["310101", "310101", "310151"])
    result = compute_coverage(tiny_service, "stations", Catchment(radius_m=1000), d)
    assert result.covered.tolist() == [True, False, True]
    assert result.distance_m[0] == pytest.approx(500, abs=2)
    assert result.totals()["covered"] == 110 and result.totals()["covered_pct"] == pytest.approx(73.33, abs=0.01)
    rows = {r["district_code"]: r for r in result.by_district(tiny_service.layer("districts"))}
    assert rows["310101"]["covered"] == 100 and rows["310101"]["uncovered"] == 40
    assert rows["310151"]["covered_pct"] == 100.0


def test_service_and_hours_filters(tiny_service):
    from datetime import datetime
    from geoserver.core.hours import as_shanghai
    d = demand_at([(121.45, 31.27)], [1], ["310101"])  # on station C (charging, weekday 9-17)
    assert compute_coverage(tiny_service, "stations", Catchment(radius_m=100), d, ("microwave",)).covered[0]
    night = as_shanghai(datetime(2026, 11, 25, 22, 0))
    r = compute_coverage(tiny_service, "stations", Catchment(radius_m=100), d, ("microwave",), night)
    assert not r.covered[0] and r.facilities == 0


def test_travel_time_catchment_uses_detour():
    c = Catchment(minutes=10, mode="walk")
    assert c.travel_m == pytest.approx(750.0)
    r = c.straight_radius_m
    assert r * c.detour(r) == pytest.approx(750.0, abs=0.01)
    assert 1.32 < c.detour(r) < 1.6
    assert Catchment(minutes=10, mode="ebike").travel_m == pytest.approx(2500.0)
    assert Catchment(minutes=10, mode="ebike", speed_kmh=20).travel_m == pytest.approx(20000 / 6)
    flat = Catchment(minutes=10, mode="car", detour_long=1.0, detour_short=1.0)
    assert flat.straight_radius_m == pytest.approx(flat.travel_m, rel=1e-9)


@pytest.mark.parametrize("kwargs,parameter", [({}, "radius_m"), ({"radius_m": 1, "minutes": 2, "mode": "walk"}, "radius_m"),
                                              ({"radius_m": -5}, "radius_m"), ({"minutes": 5}, "mode"),
                                              ({"minutes": 5, "mode": "rocket"}, "mode"),
                                              ({"radius_m": 100, "detour_long": 0.5}, "detour")])
def test_bad_catchments(kwargs, parameter):
    with pytest.raises(InvalidQuery) as err:
        Catchment(**kwargs)
    assert err.value.parameter == parameter


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(5)
    flon, flat = rng.uniform(121.0, 122.0, 300), rng.uniform(30.8, 31.6, 300)
    dlon, dlat = rng.uniform(121.0, 122.0, 2000), rng.uniform(30.8, 31.6, 2000)
    dist, nearest = nearest_distances_m(dlon, dlat, flon, flat)
    for i in range(0, 2000, 37):
        all_d = crs.geodesic_distance_m(dlon[i], dlat[i], flon, flat)
        assert dist[i] == pytest.approx(all_d.min(), abs=1e-6)
        assert all_d[nearest[i]] == pytest.approx(all_d.min(), abs=1e-6)
    empty, _ = nearest_distances_m(dlon[:3], dlat[:3], np.array([]), np.array([]))
    assert np.isinf(empty).all()


def test_weighted_quantile_literal():
    values = np.array([100.0, 200.0, 300.0, 400.0])
    assert weighted_quantile(values, np.array([1.0, 1.0, 1.0, 1.0]), 0.5) == 200.0
    assert weighted_quantile(values, np.array([0.0, 0.0, 0.0, 5.0]), 0.5) == 400.0
    assert weighted_quantile(values, np.array([10.0, 0.0, 0.0, 1.0]), 0.9) == 100.0


def test_gaps_merge_edge_sharing_cells_within_a_district(tiny_service):
    # A 200 m grid: three uncovered cells in a row (one gap), one isolated cell, one covered cell.
    cell = 200.0
    x0, y0 = crs.to_metric(121.49, 31.29)
    cx = np.floor(x0 / cell) * cell + cell / 2
    cy = np.floor(y0 / cell) * cell + cell / 2
    ax, ay = crs.to_metric(121.45, 31.25)  # station A
    xs = np.array([cx, cx + cell, cx + 2 * cell, cx + 6 * cell, ax])
    ys = np.array([cy, cy, cy, cy, ay])
    lon, lat = crs.from_metric(xs, ys)
    d = Demand("g", xs, ys, np.asarray(lon), np.asarray(lat), np.array([5.0, 6.0, 7.0, 50.0, 9.0]),
               np.array(["310101"] * 5, dtype=object), cell, "hand-built grid")
    result = compute_coverage(tiny_service, "stations", Catchment(radius_m=3000), d)
    assert result.covered.tolist() == [False, False, False, False, True]
    gaps = find_gaps(result)
    assert [(g.uncovered, g.cells) for g in gaps] == [(50.0, 1), (18.0, 3)]
    assert gaps[1].area_km2 == pytest.approx(0.12)
    assert gaps[1].geometry.geom_type == "Polygon" and gaps[0].districts == ("310101",)


def test_grid_demand_sums_to_census_per_district(service):
    d = grid_demand(service, 1000)
    assert d.total == pytest.approx(24_870_895, rel=1e-9)
    districts = service.layer("districts").gdf.set_index("id")
    for code in ("310101", "310115", "310151"):
        assert d.weight[d.district_code == code].sum() == pytest.approx(districts.loc[code, "population_2020"])
    # Urban people cluster: in Chongming the densest cell is far above the even rural share.
    chongming = d.weight[d.district_code == "310151"]
    assert chongming.max() > 5 * np.median(chongming)
    huangpu = d.weight[d.district_code == "310101"]
    assert huangpu.max() == pytest.approx(huangpu.min())  # 100 % urban, no centres listed: even
    with pytest.raises(InvalidQuery):
        grid_demand(service, 10)


def test_load_demand_csv_and_errors(tiny_service, tmp_path):
    good = tmp_path / "orders.csv"
    good.write_text("lon,lat,orders\n121.45,31.25,7\n121.55,31.25,3\n", encoding="utf-8")
    d = load_demand(tiny_service, good)
    assert d.weight.tolist() == [7.0, 3.0] and d.district_code.tolist() == ["310101", "310151"]
    bad = tmp_path / "bad.csv"
    bad.write_text("lon,lat,orders\n121.45,31.25,7\n121.55,,3\n", encoding="utf-8")
    with pytest.raises(InvalidQuery, match="row 3 has a missing or non-numeric coordinate"):
        load_demand(tiny_service, bad)
    negative = tmp_path / "neg.csv"
    negative.write_text("lon,lat,orders\n121.45,31.25,-1\n", encoding="utf-8")
    with pytest.raises(InvalidQuery, match="row 2, column orders"):
        load_demand(tiny_service, negative)
    noweight = tmp_path / "nw.csv"
    noweight.write_text("lon,lat,colour\n121.45,31.25,red\n", encoding="utf-8")
    with pytest.raises(InvalidQuery, match="no weight column"):
        load_demand(tiny_service, noweight)
