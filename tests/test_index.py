"""The spatial index wrapper: bounding-box queries on points and polygons."""

import numpy as np
from shapely import points
from shapely.geometry import Polygon

from geoserver.core.index import SpatialIndex


def test_bbox_on_points_returns_sorted_positions():
    idx = SpatialIndex(points([(121.45, 31.25), (121.60, 31.25), (121.46, 31.26), (121.40, 31.10)]))
    assert idx.bbox(121.44, 31.24, 121.47, 31.27).tolist() == [0, 2]
    assert idx.bbox(0, 0, 1, 1).tolist() == []


def test_bbox_on_polygons_uses_exact_intersection():
    # An L-shaped polygon whose bounding box covers the query box but whose area does not.
    ell = Polygon([(0, 0), (2, 0), (2, 0.5), (0.5, 0.5), (0.5, 2), (0, 2)])
    idx = SpatialIndex(np.array([ell], dtype=object))
    assert idx.bbox(1.0, 1.0, 1.5, 1.5).tolist() == []
    assert idx.bbox(0.1, 0.1, 0.2, 0.2).tolist() == [0]
    assert not idx.is_point


def test_empty_index():
    idx = SpatialIndex(np.array([], dtype=object))
    assert idx.size == 0
    assert idx.bbox(0, 0, 1, 1).tolist() == []
