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


# --- the candidate grid of nearest queries (PointGrid) ---------------------------------------------------------------
def _kd_nearest(idx, x, y, k, upper=np.inf):
    dist, pos = idx._kdtree.query((x, y), k=k, distance_upper_bound=upper)
    dist, pos = np.atleast_1d(dist), np.atleast_1d(pos)
    found = np.isfinite(dist)
    return dist[found], pos[found]


def _clustered_points(rng, n):
    """A dense centre, sparse suburbs and a few outliers far away, as a city's facilities are."""
    centre = rng.normal([121.47, 31.23], 0.04, size=(n // 2, 2))
    suburbs = rng.uniform([120.9, 30.7], [122.0, 31.85], size=(n - n // 2 - 3, 2))
    outliers = np.array([[121.9, 31.6], [122.2, 30.8], [120.87, 31.85]])
    return np.vstack([centre, suburbs, outliers])


def test_grid_answers_as_the_kd_tree_does():
    """The grid's k nearest (k up to its K) are the k-d tree's: same distances, same positions where no two
    distances tie; with and without an upper bound; for queries inside, at the edge of and outside the layer."""
    from geoserver.core import crs

    rng = np.random.default_rng(20261202)
    for n in (1, 7, 30, 500, 3000):
        xy = _clustered_points(rng, n) if n >= 30 else rng.uniform([121.3, 31.1], [121.6, 31.3], size=(n, 2))
        idx = SpatialIndex(points(xy))
        grid = idx._grid
        answered = 0
        for i in range(600):
            lon, lat = rng.uniform(120.8, 122.3), rng.uniform(30.6, 31.95)
            x, y = crs.to_metric(lon, lat)
            k = int(rng.integers(1, min(grid.K, n) + 1))
            upper = (np.inf, 800.0, 5000.0)[i % 3]
            got = grid.nearest(x, y, k, upper)
            if got is None:
                continue
            answered += 1
            want = _kd_nearest(idx, x, y, k, upper)
            np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-6)
            if len(set(np.round(want[0], 6))) == len(want[0]):
                assert got[1].tolist() == want[1].tolist()
            assert got[1].dtype == np.int64
        if n >= 30:
            assert answered > 300, n    # most queries (those inside the layer's extent) are the grid's


def test_grid_steps_aside_for_large_k_and_far_queries():
    from geoserver.core import crs

    idx = SpatialIndex(points(_clustered_points(np.random.default_rng(1), 400)))
    x, y = crs.to_metric(121.47, 31.23)
    assert idx._grid.nearest(x, y, idx._grid.K + 1) is None
    far = crs.to_metric(125.0, 35.0)
    assert idx._grid.nearest(*far, 5) is None
    # nearest_metric answers both all the same (from the k-d tree)
    assert len(idx.nearest_metric(x, y, 40)[0]) == 40
    assert idx.nearest_metric(*far, 3)[1].tolist() == _kd_nearest(idx, *far, 3)[1].tolist()


def test_grid_holds_every_point_that_can_be_among_the_k_nearest():
    """The exactness argument, checked directly: for random queries in random cells, every one of the K nearest
    points (by brute force) is in the cell's candidate list."""
    from geoserver.core import crs

    rng = np.random.default_rng(7)
    xy = _clustered_points(rng, 2000)
    idx = SpatialIndex(points(xy))
    grid = idx._grid
    px, py = crs.to_metric(xy[:, 0], xy[:, 1])
    for _ in range(400):
        cx, cy = int(rng.integers(grid.nx)), int(rng.integers(grid.ny))
        qx = grid.x0 + (cx + rng.random()) * grid.cell
        qy = grid.y0 + (cy + rng.random()) * grid.cell
        brute = np.argsort(np.hypot(np.asarray(px) - qx, np.asarray(py) - qy), kind="stable")[:grid.k]
        c = cy * grid.nx + cx
        listed = set(grid.candidates[grid.starts[c]:grid.starts[c + 1]].tolist())
        assert set(brute.tolist()) <= listed
