"""The spatial index of a layer, behind one small class so the backend can change without callers noticing.

* bounding-box queries: an R-tree (libspatialindex via ``rtree``) over the WGS84 bounds of every geometry,
  refined with exact shapely intersection for non-point geometries; point layers use their points sorted by
  longitude instead (a slice by longitude, then a latitude test: a few numpy calls, where each R-tree query is
  several ctypes calls);
* nearest-neighbour candidates for point layers, over METRIC_CRS coordinates in metres: a grid of precomputed
  candidate lists (``PointGrid``) for the few candidates a rider's question needs, a k-d tree for anything larger.
  The grid is one lookup and a few small numpy calls that keep the GIL; scipy's k-d tree releases it for every query, and in a server
  whose request threads all want the GIL each release is a handover to another thread and back (a query costing
  28 us of CPU alone cost 70 us with 8 threads busy, measured with benchmarks/gil_contention.py).
"""

from __future__ import annotations

import threading

import numpy as np
import shapely
from rtree import index as rtree_index
from scipy.spatial import cKDTree

from . import crs


#: libspatialindex's bulk loader is not safe to run in two threads at once (a reload in the background while a
#: write checks its new data crashed a worker in libspatialindex): R-trees are built one at a time.
_RTREE_BUILD = threading.Lock()


def _rtree_of(geometries: np.ndarray):
    props = rtree_index.Property()
    props.leaf_capacity = 32
    with _RTREE_BUILD:
        if not len(geometries):
            return rtree_index.Index(properties=props)
        stream = ((i, tuple(b), None) for i, b in enumerate(shapely.bounds(geometries)))
        return rtree_index.Index(stream, properties=props)


class SpatialIndex:
    """Index over a fixed array of WGS84 shapely geometries (positions 0..n-1)."""

    def __init__(self, geometries: np.ndarray, point_layer: bool | None = None):
        """``point_layer``: what the layer's spec says (a point layer stays one when it has no public point yet:
        every row pending); None: decided from the geometries."""
        self.geometries = np.asarray(geometries, dtype=object)
        self.size = len(self.geometries)
        all_points = bool(np.all(shapely.get_type_id(self.geometries) == 0))
        self.is_point = all_points if point_layer is not None and point_layer else (bool(self.size) and all_points)
        self._rtree = None if self.is_point else _rtree_of(self.geometries)   # points answer bbox without it
        self._by_lon = None
        if self.is_point:
            self.lon = shapely.get_x(self.geometries)
            self.lat = shapely.get_y(self.geometries)
            self._by_lon = np.argsort(self.lon, kind="stable")   # positions by longitude, for bbox
            self._lon_sorted = self.lon[self._by_lon]
            x, y = crs.to_metric(self.lon, self.lat)
            self._kdtree = cKDTree(np.column_stack([x, y]).reshape(-1, 2))
            self._grid = PointGrid(self._kdtree) if self.size else None
        else:
            self.lon = self.lat = None
            self._kdtree = self._grid = None

    def bbox(self, minx: float, miny: float, maxx: float, maxy: float) -> np.ndarray:
        """Sorted positions of geometries intersecting the WGS84 box (edges included)."""
        if self._by_lon is not None:
            candidates = self._by_lon[np.searchsorted(self._lon_sorted, minx, "left"):
                                      np.searchsorted(self._lon_sorted, maxx, "right")]
            lat = self.lat[candidates]
            hits = candidates[(lat >= miny) & (lat <= maxy)]
            hits.sort()
            return hits
        hits = np.fromiter(self._rtree.intersection((minx, miny, maxx, maxy)), dtype=np.int64)
        hits.sort()
        if not self.is_point and len(hits):
            box = shapely.box(minx, miny, maxx, maxy)
            hits = hits[shapely.intersects(self.geometries[hits], box)]
        return hits

    def nearest_metric(self, x: float, y: float, k: int, upper_m: float = np.inf):
        """The k nearest points by METRIC_CRS distance: (distances_m, positions), nearest first.

        Fewer than k are returned when the layer is smaller or fewer lie within ``upper_m``.
        """
        if self._kdtree is None:
            raise TypeError("nearest queries need a point layer")
        k = min(k, self.size)
        if k == 0:
            return np.empty(0), np.empty(0, dtype=np.int64)
        if k <= PointGrid.K:
            found = self._grid.nearest(x, y, k, upper_m)
            if found is not None:
                return found
        dist, pos = self._kdtree.query((x, y), k=k, distance_upper_bound=upper_m)
        if k == 1:
            dist, pos = np.atleast_1d(dist), np.atleast_1d(pos)
        if upper_m == np.inf:   # k <= size points are always found
            return dist, pos
        found = np.isfinite(dist)
        return dist[found], pos[found]



class PointGrid:
    """For each cell of a square METRIC_CRS grid over a point layer, every point that can be among the ``K``
    nearest of a query anywhere in that cell: the K nearest of a query need one lookup and one small distance
    computation.

    Why it is exact: for a query q in a cell with centre o and half-diagonal h, the K nearest points of o lie within
    d_K(o) + |q - o| of q, so q's K nearest lie within d_K(o) + h of q, hence within d_K(o) + 2h of o. A cell's list
    holds every point within d_K(o) + 2h (+1 mm for rounding) of its centre. Built once per layer version (a ball
    query per cell); about K + 10 points per cell, 2 cells per point of the layer (stations: 3,400 points, 7,000 cells,
    about 2.5 MB).
    """

    #: Queries for more neighbours (k > 12 with the nearest search's margin) go to the k-d tree.
    K = 24
    #: Cells: about this many per point over the layer's extent, each side at least MIN_CELL_M, at most MAX_CELLS.
    CELLS_PER_POINT = 2
    MIN_CELL_M = 100.0
    MAX_CELLS = 1_000_000

    def __init__(self, tree):
        data = tree.data
        n = len(data)
        self.k = min(self.K, n)
        self.px = np.ascontiguousarray(data[:, 0])
        self.py = np.ascontiguousarray(data[:, 1])
        self.x0, self.y0 = float(self.px.min()), float(self.py.min())
        width, height = float(self.px.max()) - self.x0, float(self.py.max()) - self.y0
        area = max(width * height, 1.0)
        cell = max((area / (self.CELLS_PER_POINT * n)) ** 0.5, self.MIN_CELL_M)
        cell = max(cell, (area / self.MAX_CELLS) ** 0.5 * 1.01)
        self.cell = cell
        self.nx, self.ny = int(width // cell) + 1, int(height // cell) + 1
        gx, gy = np.meshgrid(self.x0 + (np.arange(self.nx) + 0.5) * cell, self.y0 + (np.arange(self.ny) + 0.5) * cell)
        centres = np.column_stack([gx.ravel(), gy.ravel()])
        kth, _ = tree.query(centres, k=[self.k])
        lists = tree.query_ball_point(centres, kth[:, 0] + cell * 2 ** 0.5 + 1e-3)
        lengths = np.fromiter((len(found) for found in lists), dtype=np.int64, count=len(lists))
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        # positions as intp: indexing with a narrower integer type makes numpy cast, and release the GIL to do it
        self.candidates = np.fromiter((p for found in lists for p in found), dtype=np.intp, count=int(lengths.sum()))

    def nearest(self, qx: float, qy: float, k: int, upper_m: float = np.inf):
        """(distances, positions) of the k nearest points within ``upper_m``, nearest first (ties by position);
        None when this grid cannot say (k above K, a query outside the layer's extent): ask the k-d tree."""
        if k > self.k:
            return None
        ix, iy = (qx - self.x0) / self.cell, (qy - self.y0) / self.cell
        if not (0.0 <= ix < self.nx and 0.0 <= iy < self.ny):
            return None
        c = int(iy) * self.nx + int(ix)
        cand = self.candidates[self.starts[c]:self.starts[c + 1]]
        dist = np.hypot(self.px[cand] - qx, self.py[cand] - qy)
        # sorted in Python: numpy's sorts release the GIL (see the module docstring)
        if len(dist) > k:   # those up to the k-th distance (ties included), then by (distance, position)
            keep = dist <= sorted(dist.tolist())[k - 1]
            cand, dist = cand[keep], dist[keep]
        best = sorted(zip(dist.tolist(), cand.tolist()))[:k]
        if upper_m != np.inf:
            best = [b for b in best if b[0] <= upper_m]
        return np.array([d for d, _ in best], dtype=float), np.array([p for _, p in best], dtype=np.int64)
