"""Exact geodesic k-nearest: literal cases and a brute-force comparison on random points."""

import numpy as np
import pytest

from geoserver.core import crs
from geoserver.core.index import SpatialIndex
from geoserver.core.nearest import nearest
from shapely import points


def brute_force(index, lon, lat, k, max_distance_m=None, allowed=None):
    d = crs.geodesic_distance_m(lon, lat, index.lon, index.lat)
    pos = np.arange(index.size)
    keep = np.ones(index.size, bool) if allowed is None else allowed.copy()
    if max_distance_m is not None:
        keep &= d <= max_distance_m
    pos, d = pos[keep], d[keep]
    order = np.lexsort((pos, d))[:k]
    return pos[order], d[order]


def test_tiny_literal_case():
    # Three points due north of the query at 0.01, 0.02 and 0.005 degrees of latitude.
    idx = SpatialIndex(points([(121.47, 31.24), (121.47, 31.25), (121.47, 31.235)]))
    got = nearest(idx, 121.47, 31.23, k=2)
    assert got.positions.tolist() == [2, 0]
    assert got.distances_m == pytest.approx([554.5, 1109.0], abs=0.5)
    assert got.azimuths_deg == pytest.approx([0.0, 0.0], abs=1e-6)


def test_max_distance_and_predicate():
    idx = SpatialIndex(points([(121.47, 31.24), (121.47, 31.25), (121.47, 31.235)]))
    assert nearest(idx, 121.47, 31.23, k=5, max_distance_m=1000).positions.tolist() == [2]
    assert nearest(idx, 121.47, 31.23, k=5, max_distance_m=1200).positions.tolist() == [2, 0]
    only_even = nearest(idx, 121.47, 31.23, k=5, predicate=lambda pos: pos % 2 == 0)
    assert only_even.positions.tolist() == [2, 0]
    assert nearest(idx, 121.47, 31.23, k=5, max_distance_m=100).positions.tolist() == []


def test_empty_result_when_nothing_passes_the_filter():
    idx = SpatialIndex(points([(121.47, 31.24), (121.48, 31.25)]))
    got = nearest(idx, 121.47, 31.23, k=3, predicate=lambda pos: np.zeros(len(pos), bool))
    assert len(got.positions) == 0


def test_matches_brute_force_on_random_queries():
    rng = np.random.default_rng(11)
    pts = np.column_stack([rng.uniform(120.9, 122.0, 4000), rng.uniform(30.7, 31.8, 4000)])
    idx = SpatialIndex(points(pts))
    allowed = rng.random(4000) < 0.07  # a rare service: the search must widen
    for _ in range(300):
        lon, lat = rng.uniform(120.6, 122.5), rng.uniform(30.4, 32.1)
        k = int(rng.integers(1, 30))
        max_d = None if rng.random() < 0.5 else float(rng.uniform(500, 30000))
        use_filter = rng.random() < 0.5
        got = nearest(idx, lon, lat, k, max_d, (lambda p: allowed[p]) if use_filter else None)
        want_pos, want_d = brute_force(idx, lon, lat, k, max_d, allowed if use_filter else None)
        assert got.distances_m == pytest.approx(want_d, abs=1e-6)
        assert got.positions.tolist() == want_pos.tolist()


def test_ties_are_broken_by_position():
    idx = SpatialIndex(points([(121.48, 31.23), (121.50, 31.23), (121.48, 31.23)]))
    assert nearest(idx, 121.47, 31.23, k=3).positions.tolist() == [0, 2, 1]


def test_polygon_layer_refuses_nearest():
    from shapely.geometry import box
    idx = SpatialIndex(np.array([box(121, 31, 122, 32)], dtype=object))
    with pytest.raises(TypeError):
        nearest(idx, 121.5, 31.5, 1)
