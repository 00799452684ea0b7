"""The spatial index of a layer, behind one small class so the backend can change without callers noticing.

* bounding-box queries: an R-tree (libspatialindex via ``rtree``) over the WGS84 bounds of every geometry,
  refined with exact shapely intersection for non-point geometries; point layers use their points sorted by
  longitude instead (a slice by longitude, then a latitude test: a few numpy calls, where each R-tree query is
  several ctypes calls);
* nearest-neighbour candidates for point layers: a k-d tree over METRIC_CRS coordinates in metres.
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
        else:
            self.lon = self.lat = None
            self._kdtree = None

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
        dist, pos = self._kdtree.query((x, y), k=k, distance_upper_bound=upper_m)
        if k == 1:
            dist, pos = np.atleast_1d(dist), np.atleast_1d(pos)
        if upper_m == np.inf:   # k <= size points are always found
            return dist, pos
        found = np.isfinite(dist)
        return dist[found], pos[found]
