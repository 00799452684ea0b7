"""Datum conversions against published reference pairs, inverse accuracy, and the metric CRS bound."""

import numpy as np
import pytest

from geoserver.core import crs

# (wgs84 lon, lat) -> (gcj02 lon, lat), published with the eviltransform test suite and the coordtransform README.
WGS_GCJ_PAIRS = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),        # coordtransform README
]
# (gcj02) -> (bd09), coordtransform README.
GCJ_BD_PAIRS = [((116.404, 39.915), (116.41036949371029, 39.92133699351021))]


def metres_between(a, b):
    return float(crs.geodesic_distance_m(a[0], a[1], b[0], b[1]))


@pytest.mark.parametrize("wgs,gcj", WGS_GCJ_PAIRS)
def test_wgs84_to_gcj02_matches_reference(wgs, gcj):
    got = tuple(float(v) for v in crs.wgs84_to_gcj02(*wgs))
    assert got == pytest.approx(gcj, abs=1e-9)


@pytest.mark.parametrize("wgs,gcj", WGS_GCJ_PAIRS)
def test_gcj02_to_wgs84_inverts_reference_within_1cm(wgs, gcj):
    back = tuple(float(v) for v in crs.gcj02_to_wgs84(*gcj))
    assert metres_between(back, wgs) < 0.01


@pytest.mark.parametrize("gcj,bd", GCJ_BD_PAIRS)
def test_gcj02_to_bd09_matches_reference(gcj, bd):
    assert tuple(float(v) for v in crs.gcj02_to_bd09(*gcj)) == pytest.approx(bd, abs=1e-9)
    assert metres_between(tuple(float(v) for v in crs.bd09_to_gcj02(*bd)), gcj) < 0.01


def test_shanghai_shift_is_about_500_m():
    wgs = (121.4737, 31.2304)  # People's Square
    shift = metres_between(wgs, tuple(float(v) for v in crs.wgs84_to_gcj02(*wgs)))
    assert 400 < shift < 650


def test_round_trips_are_better_than_1cm_over_china():
    rng = np.random.default_rng(7)
    lon = rng.uniform(74, 134, 5000)
    lat = rng.uniform(18, 53, 5000)
    for forward, inverse in ((crs.wgs84_to_gcj02, crs.gcj02_to_wgs84), (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
                             (crs.gcj02_to_bd09, crs.bd09_to_gcj02)):
        back_lon, back_lat = inverse(*forward(lon, lat))
        assert crs.geodesic_distance_m(lon, lat, back_lon, back_lat).max() < 0.01


def test_outside_china_is_not_shifted():
    lon, lat = crs.wgs84_to_gcj02(139.69, 35.69)  # Tokyo
    assert (float(lon), float(lat)) == (139.69, 35.69)


def test_from_and_to_wgs84_dispatch():
    lon, lat = crs.from_wgs84(121.5, 31.2, "bd09")
    assert (float(lon), float(lat)) == pytest.approx(tuple(float(v) for v in crs.wgs84_to_bd09(121.5, 31.2)))
    back = crs.to_wgs84(lon, lat, "bd09")
    assert metres_between((float(back[0]), float(back[1])), (121.5, 31.2)) < 0.01


@pytest.mark.parametrize("name,expected", [("wgs84", "wgs84"), ("CRS84", "wgs84"), ("EPSG:4326", "wgs84"),
                                           ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "wgs84"),
                                           ("GCJ02", "gcj02"), ("gcj-02", "gcj02"), ("bd09", "bd09")])
def test_normalise_datum(name, expected):
    assert crs.normalise_datum(name) == expected


def test_normalise_datum_refuses_unknown():
    with pytest.raises(ValueError, match="unknown coordinate system"):
        crs.normalise_datum("epsg:3857")


def test_metric_distance_bounds_geodesic_distance_within_scale_error():
    """d_m / (1 + e) <= d_g <= d_m everywhere the service answers: the nearest search relies on it."""
    rng = np.random.default_rng(3)
    lon1, lat1 = rng.uniform(120.55, 122.55, 20000), rng.uniform(30.38, 32.17, 20000)
    lon2, lat2 = lon1 + rng.normal(0, 0.05, 20000), lat1 + rng.normal(0, 0.05, 20000)
    x1, y1 = crs.to_metric(lon1, lat1)
    x2, y2 = crs.to_metric(lon2, lat2)
    d_m = np.hypot(x2 - x1, y2 - y1)
    d_g = crs.geodesic_distance_m(lon1, lat1, lon2, lat2)
    assert np.all(d_g <= d_m * (1 + 1e-9))
    assert np.all(d_g >= d_m / (1 + crs.METRIC_SCALE_ERROR))


def test_geodesic_distance_literal():
    # One minute of arc along the meridian at Shanghai's latitude is about 1,848 m on the WGS84 ellipsoid.
    d = float(crs.geodesic_distance_m(121.47, 31.2, 121.47, 31.2 + 1 / 60))
    assert d == pytest.approx(1848.0, abs=2.0)


def test_one_point_projection_matches_pyproj_to_the_nanometre():
    """to_metric_point (Krueger's series in Python, which keeps the GIL) gives pyproj's METRIC_CRS numbers."""
    rng = np.random.default_rng(3)
    lon = np.concatenate([rng.uniform(120.8, 122.3, 3000), rng.uniform(113.0, 130.0, 1000)])
    lat = np.concatenate([rng.uniform(30.6, 31.95, 3000), rng.uniform(20.0, 42.0, 1000)])
    x, y = crs.to_metric(lon, lat)
    mine = np.array([crs.to_metric_point(a, b) for a, b in zip(lon.tolist(), lat.tolist())])
    assert np.abs(mine[:, 0] - x).max() < 1e-6
    assert np.abs(mine[:, 1] - y).max() < 1e-6
    assert crs.to_metric_point(121.47, 31.2) == pytest.approx((500000.0, 0.0), abs=1e-6)
