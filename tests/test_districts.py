"""One resolver for district names and one point-in-district lookup (core/districts.py), on the bundled polygons."""

import numpy as np
import pytest

from geoserver.core.districts import assign_districts, district_positions, resolve_district


@pytest.mark.parametrize("text, code", [
    ("310101", "310101"), ("黄浦区", "310101"), ("黄浦", "310101"), ("Huangpu", "310101"),
    ("huangpu district", "310101"), ("上海市黄浦区", "310101"), ("浦东", "310115"), ("浦东新区", "310115"),
    ("卢湾区", "310101"), ("闸北", "310106"), ("南汇区", "310115"), ("崇明县", "310151"), ("ＸＵＨＵＩ", "310104"),
    ("北京", None), ("", None),
])
def test_resolve_district(service, text, code):
    assert resolve_district(service.layer("districts"), text) == code


def test_points_in_districts(service):
    districts = service.layer("districts")
    lon = np.array([121.4737, 121.4365, 121.5055, 121.2100, 116.40, np.nan])   # 人民广场, 徐家汇, 陆家嘴, 松江大学城, 北京
    lat = np.array([31.2304, 31.1951, 31.2397, 31.0500, 39.90, 31.2])
    assert assign_districts(districts, lon, lat).tolist() == ["310101", "310104", "310115", "310117", "", ""]
    assert district_positions(districts, lon, lat)[-2:].tolist() == [-1, -1]
