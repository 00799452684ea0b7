"""Coverage and gap endpoints through the Flask test client."""

import pytest
from shapely.geometry import shape

from geoserver.web import create_app


def test_coverage_by_district_and_totals(client, service):
    body = client.get("/api/coverage?layer=stations&radius_m=1000").json
    assert body["demand"]["total"] == 24870895.0 and body["facilities"] == 3400
    assert body["catchment"]["method"] == "straight-line (geodesic) radius 1000 m"
    rows = body["districts"]
    assert len(rows) == 16
    assert sum(r["covered"] for r in rows) == pytest.approx(body["totals"]["covered"], abs=20)
    assert sum(r["demand"] for r in rows) == pytest.approx(24870895.0, abs=20)
    by_name = {r["district"]: r for r in rows}
    # The sample network is dense downtown and thin in the outer suburbs.
    assert by_name["黄浦区"]["covered_pct"] > 95 > by_name["崇明区"]["covered_pct"]
    assert body["sample_data"] is True and "census" in body["demand"]["model"]


def test_travel_time_and_filters(client):
    walk = client.get("/api/coverage?minutes=10&mode=walk").json
    ebike = client.get("/api/coverage?minutes=10&mode=ebike").json
    assert walk["catchment"]["straight_radius_m"] < ebike["catchment"]["straight_radius_m"]
    assert walk["totals"]["covered_pct"] < ebike["totals"]["covered_pct"]
    filtered = client.get("/api/coverage?radius_m=1000&services=charging&open_at=2026-11-25T23:30").json
    plain = client.get("/api/coverage?radius_m=1000").json
    assert filtered["facilities"] < plain["facilities"]
    assert filtered["totals"]["covered"] < plain["totals"]["covered"]


def test_gaps_geojson(client):
    r = client.get("/api/coverage/gaps?radius_m=1000&limit=5")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    fc = r.json
    assert fc["numberReturned"] == 5 and fc["numberMatched"] >= 5
    coverable = [f["properties"]["newly_coverable"] for f in fc["features"]]
    assert coverable == sorted(coverable, reverse=True)       # ranked by what one site there would newly cover
    assert [f["properties"]["rank"] for f in fc["features"]] == [1, 2, 3, 4, 5]
    for f in fc["features"]:
        geom = shape(f["geometry"])
        assert geom.is_valid and 120.8 < geom.centroid.x < 122.3
        assert len(f["properties"]["districts"]) == 1


@pytest.mark.parametrize("query,parameter", [
    ("radius_m=abc", "radius_m"), ("radius_m=-1", "radius_m"), ("radius_m=1e9", "radius_m"),
    ("minutes=10", "mode"), ("minutes=10&mode=plane", "mode"), ("radius_m=100&mode=walk", "mode"),
    ("radius_m=100&layer=districts", "layer"), ("radius_m=100&layer=x", "layer"), ("radius_m=100&demand=x", "demand"),
    ("radius_m=100&cell_m=5", "cell_m"), ("radius_m=100&services=teleport", "services"),
    ("radius_m=100&open_at=noon", "open_at"), ("radius_m=100&radius=5", "radius"),
    ("radius_m=100&network=pudong", "network"),
])
def test_coverage_bad_input(client, query, parameter):
    r = client.get(f"/api/coverage?{query}")
    assert r.status_code == 400, r.json
    assert r.json["parameter"] == parameter


def test_demand_file_from_data_dir(tiny_service, tmp_path):
    folder = tiny_service.data_dir / "demand"
    folder.mkdir()
    (folder / "orders.csv").write_text("lon,lat,orders\n121.45,31.251,30\n121.40001,31.29,10\n", encoding="utf-8")
    client = create_app(service=tiny_service).test_client()
    body = client.get("/api/coverage?radius_m=500&demand=orders").json
    assert body["demand"]["name"] == "orders" and body["totals"]["demand"] == 40
    assert body["totals"]["covered"] == 30
    assert body["demand_sensitivity"]["applies"] is False    # a file's weights are data, not a model
    gaps = client.get("/api/coverage/gaps?radius_m=500&demand=orders").json
    assert [f["properties"]["uncovered"] for f in gaps["features"]] == [10.0]


def test_network_catchment_uses_road_distance(tiny_file_service):
    """An L-shaped road: a demand point 1,414 m from station A in a straight line is 2,000 m away by road."""
    from tests.test_network import osm_xml, to_lonlat
    from geoserver.core import crs

    # Local metres around (121.47, 31.20): put station-like source and the demand on the road ends.
    nodes = {1: (0.0, 0.0), 2: (1000.0, 0.0), 3: (1000.0, 1000.0)}
    folder = tiny_file_service.data_dir / "networks"
    folder.mkdir()
    (folder / "lroad.osm").write_text(osm_xml(nodes, [(1, [1, 2, 3], {"highway": "residential"})]), encoding="utf-8")
    a_lon, a_lat = to_lonlat(0.0, 0.0)
    d_lon, d_lat = to_lonlat(1000.0, 1000.0)
    demand = tiny_file_service.data_dir / "demand"
    demand.mkdir()
    (demand / "one.csv").write_text(f"lon,lat,weight\n{d_lon},{d_lat},5\n", encoding="utf-8")
    import geopandas as gpd
    st = gpd.read_file(tiny_file_service.data_dir / "stations.gpkg")
    st.loc[0, "geometry"] = gpd.points_from_xy([a_lon], [a_lat])[0]
    st.to_file(tiny_file_service.data_dir / "stations.gpkg", layer="stations", driver="GPKG")
    from geoserver.core.service import GeoService
    svc = GeoService(tiny_file_service.data_dir, tiny_file_service.layers_dir)
    client = create_app(service=svc).test_client()
    assert float(crs.geodesic_distance_m(a_lon, a_lat, d_lon, d_lat)) == pytest.approx(1414.2, abs=1.0)
    straight = client.get("/api/coverage?radius_m=1500&demand=one").json
    assert straight["totals"]["covered"] == 5
    by_road = client.get("/api/coverage?radius_m=1500&demand=one&network=lroad&mode=walk").json
    assert by_road["totals"]["covered"] == 0
    assert by_road["totals"]["median_distance_m"] == pytest.approx(2000.0, abs=1.0)
    assert "road network" in by_road["catchment"]["method"]
    assert client.get("/api/coverage?minutes=30&mode=walk&demand=one&network=lroad").json["totals"]["covered"] == 5
    r = client.get("/api/coverage?radius_m=1500&demand=one&network=lroad")
    assert r.status_code == 400 and r.json["parameter"] == "mode"
    r = client.get("/api/coverage?radius_m=1500&network=nope&mode=walk")
    assert r.status_code == 400 and "available: lroad" in r.json["description"]
    assert by_road["warnings"] == [] and by_road["totals"]["not_assessed"] == 0

    # a second demand point 5 km from every road of the extract: not assessed, never "uncovered"
    far_lon, far_lat = to_lonlat(6000.0, 1000.0)
    (demand / "two.csv").write_text(f"lon,lat,weight\n{d_lon},{d_lat},5\n{far_lon},{far_lat},7\n", encoding="utf-8")
    two = client.get("/api/coverage?minutes=30&mode=walk&demand=two&network=lroad").json
    assert {k: two["totals"][k] for k in ("demand", "covered", "uncovered", "covered_pct", "not_assessed",
                                          "not_assessed_pct")} == {
        "demand": 5, "covered": 5, "uncovered": 0, "covered_pct": 100.0, "not_assessed": 7, "not_assessed_pct": 58.33}
    assert len(two["warnings"]) == 1 and "7 people (58.3 %)" in two["warnings"][0]
    row = next(r for r in two["districts"] if r["not_assessed"])
    assert row["not_assessed"] == 7
    gaps = client.get("/api/coverage/gaps?minutes=30&mode=walk&demand=two&network=lroad").json
    assert gaps["features"] == []           # the unassessed point is not a gap
    # straight-line catchments assess everyone, as before
    assert "not_assessed" not in client.get("/api/coverage?radius_m=1500&demand=two").json["totals"]


def test_coverage_states_its_sensitivity_to_the_demand_model(client):
    """The same catchments under other spreads of the census population within districts (the figures an
    independent re-computation found: sigma 1.5 km 88.5 %, 6 km 78.5 %, uniform 67.4 %, the model 84.54 %)."""
    body = client.get("/api/coverage?layer=stations&radius_m=1000").get_json()
    sens = body["demand_sensitivity"]
    assert sens["applies"] is True
    assert [(m["sigma_m"], m["covered_pct"]) for m in sens["models"]] == [
        (1500.0, 88.5), (3000.0, 84.54), (6000.0, 78.53), (None, 67.35)]
    assert sens["models"][1]["covered_pct"] == body["totals"]["covered_pct"]
    assert sens["covered_pct_range"] == [67.35, 88.5] and "67.3-88.5 %" in sens["note"]


def test_gaps_are_site_sized_with_a_site_and_outside_every_catchment(client, service):
    """Each gap is at most 4 catchments large, its site lies in it, and no part of it lies within the radius of a
    station: checked with geodesic distances (pyproj's Geod, not the server's code) from points sampled on and in
    each polygon to every station."""
    import math

    import numpy as np
    import shapely
    from pyproj import Geod

    fc = client.get("/api/coverage/gaps?radius_m=1000&limit=40").json
    assert fc["numberMatched"] > 313        # the 313 connected areas, split into pieces one site can serve
    stations = service.layer("stations")
    slon, slat = stations.index.lon, stations.index.lat
    geod = Geod(ellps="WGS84")
    for f in fc["features"]:
        p = f["properties"]
        assert p["area_km2"] <= 4 * math.pi * 1.0 ** 2 + 1e-9
        assert p["newly_coverable"] > 0 and p["site_lon"] is not None
        geom = shape(f["geometry"])
        assert geom.is_valid and not geom.is_empty
        # the site is one of the piece's cells: within 150 m of its (clipped) polygon
        site = shapely.Point(p["site_lon"], p["site_lat"])
        assert geom.distance(site) < 0.0015
        ring = [c for poly in getattr(geom, "geoms", [geom]) for c in poly.exterior.coords]
        inner = [(pt.x, pt.y) for pt in [geom.representative_point()]]
        for lon, lat in ring + inner:
            near = np.abs(slon - lon) + np.abs(slat - lat) < 0.05
            if not near.any():
                continue
            _, _, dist = geod.inv(np.full(near.sum(), lon), np.full(near.sum(), lat), slon[near], slat[near])
            assert dist.min() >= 1000 - 0.01, (f["id"], lon, lat, dist.min())
