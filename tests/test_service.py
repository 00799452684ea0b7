"""GeoService on tiny hand-built layers: items filters, nearest with services and hours, load errors."""

from datetime import datetime

import geopandas as gpd
import pytest
from shapely.geometry import Point

from geoserver.core.errors import DataError, FeatureNotFound, InvalidQuery, LayerNotFound
from geoserver.core.hours import as_shanghai
from geoserver.core.query import NearestQuery
from geoserver.core.service import GeoService

WEDNESDAY_10 = as_shanghai(datetime(2026, 11, 25, 10, 0))
WEDNESDAY_20 = as_shanghai(datetime(2026, 11, 25, 20, 0))


def ids(layer, page):
    return [layer.ids[p] for p in page.positions]


def test_items_bbox_filters_and_paging(tiny_service):
    st = tiny_service.layer("stations")
    assert ids(st, tiny_service.items(st)) == ["A", "B", "C", "D"]
    assert ids(st, tiny_service.items(st, bbox=(121.44, 31.24, 121.47, 31.26))) == ["A", "B"]
    assert ids(st, tiny_service.items(st, services=("charging",))) == ["A", "C"]
    assert ids(st, tiny_service.items(st, filters={"district": "崇明区"})) == ["D"]
    assert ids(st, tiny_service.items(st, filters={"district": "310151"})) == ["D"]
    assert ids(st, tiny_service.items(st, filters={"district": "chongming"})) == ["D"]
    assert ids(st, tiny_service.items(st, filters={"district": "崇明"})) == ["D"]
    page = tiny_service.items(st, limit=2, offset=1)
    assert ids(st, page) == ["B", "C"] and page.number_matched == 4


def test_nearest_with_services_and_opening_hours(tiny_service):
    q = dict(layer="stations", lon=121.45, lat=31.25, k=4)
    _, feats = tiny_service.nearest(NearestQuery(**q, at=WEDNESDAY_10))
    assert [f["id"] for f in feats] == ["A", "B", "C", "D"]
    assert feats[0]["properties"]["distance_m"] == 0.0
    # 0.01 deg of longitude at 31.25 N: N(lat) cos(lat) dlon = 6383910 m * 0.85491 * 1.745329e-4 = 952.5 m
    assert feats[1]["properties"]["distance_m"] == pytest.approx(952.5, abs=0.2)
    _, feats = tiny_service.nearest(NearestQuery(**q, services=("charging",), at=WEDNESDAY_10))
    assert [f["id"] for f in feats] == ["A", "C"]
    _, feats = tiny_service.nearest(NearestQuery(**q, open_now=True, at=WEDNESDAY_20))
    assert [f["id"] for f in feats] == ["A"]
    _, feats = tiny_service.nearest(NearestQuery(**q, at=WEDNESDAY_20))
    assert [f["properties"]["open_now"] for f in feats] == [True, False, False, False]


def test_nearest_output_in_gcj02(tiny_service):
    _, feats = tiny_service.nearest(NearestQuery(layer="stations", lon=121.45, lat=31.25, k=1, datum="gcj02",
                                                 at=WEDNESDAY_10))
    lon, lat = feats[0]["geometry"]["coordinates"]
    assert (lon, lat) != (121.45, 31.25)
    assert 121.45 < lon < 121.46 and 31.247 < lat < 31.25


def test_private_fields_are_not_in_properties(tiny_service):
    props = tiny_service.layer("stations").properties
    assert all("contact_phone" not in p and "contact_name" not in p for p in props)


def test_unknown_layer_and_feature(tiny_service):
    with pytest.raises(LayerNotFound, match="unknown layer 'nope'"):
        tiny_service.layer("nope")
    with pytest.raises(FeatureNotFound):
        tiny_service.feature_position(tiny_service.layer("stations"), "Z")
    with pytest.raises(InvalidQuery, match="not a point layer"):
        tiny_service.point_layer("districts")


def test_missing_data_file_is_a_clear_error(tmp_path, tiny_layers_dir):
    with pytest.raises(DataError, match="layer stations: data file stations.gpkg not found"):
        GeoService(tmp_path / "empty", tiny_layers_dir)


def test_unknown_service_in_data_is_refused(tmp_path, tiny_layers_dir):
    from tests.conftest import write_tiny_layers
    write_tiny_layers(tmp_path / "d")
    gdf = gpd.read_file(tmp_path / "d" / "stations.gpkg")
    gdf.loc[0, "services"] = "water,teleport"
    gdf.to_file(tmp_path / "d" / "stations.gpkg", layer="stations", driver="GPKG")
    with pytest.raises(DataError, match="feature A has services \\['teleport'\\] that are not in the layer's"):
        GeoService(tmp_path / "d", tiny_layers_dir)


def test_data_in_another_crs_is_converted_to_wgs84(tmp_path, tiny_layers_dir):
    from tests.conftest import write_tiny_layers
    write_tiny_layers(tmp_path / "d")
    gdf = gpd.read_file(tmp_path / "d" / "stations.gpkg").to_crs(32651)
    gdf.to_file(tmp_path / "d" / "stations.gpkg", layer="stations", driver="GPKG")
    svc = GeoService(tmp_path / "d", tiny_layers_dir)
    geom = svc.layer("stations").gdf.geometry.iloc[0]
    assert geom.distance(Point(121.45, 31.25)) < 1e-7


def test_sample_flag_looks_at_every_feature(tmp_path, tiny_layers_dir):
    from tests.conftest import write_tiny_layers
    write_tiny_layers(tmp_path / "d")
    assert not GeoService(tmp_path / "d", tiny_layers_dir).layer("stations").has_sample_data
    gdf = gpd.read_file(tmp_path / "d" / "stations.gpkg")
    gdf.loc[len(gdf) - 1, "source"] = "sample"  # one sample row at the end of a real list
    gdf.to_file(tmp_path / "d" / "stations.gpkg", layer="stations", driver="GPKG")
    assert GeoService(tmp_path / "d", tiny_layers_dir).layer("stations").has_sample_data
