"""The spatial index of a layer, behind one small class so the backend can change without callers noticing.

* bounding-box queries: an R-tree (libspatialindex via ``rtree``) over the WGS84 bounds of every geometry,
  refined with exact shapely intersection for non-point geometries;
* nearest-neighbour candidates for point layers: a k-d tree over METRIC_CRS coordinates in metres.
"""

from __future__ import annotations

import numpy as np
import shapely
from rtree import index as rtree_index
from scipy.spatial import cKDTree

from . import crs


class SpatialIndex:
    """Index over a fixed array of WGS84 shapely geometries (positions 0..n-1)."""

    def __init__(self, geometries: np.ndarray, point_layer: bool | None = None):
        """``point_layer``: what the layer's spec says (a point layer stays one when it has no public point yet:
        every row pending); None: decided from the geometries."""
        self.geometries = np.asarray(geometries, dtype=object)
        self.size = len(self.geometries)
        all_points = bool(np.all(shapely.get_type_id(self.geometries) == 0))
        self.is_point = all_points if point_layer is not None and point_layer else (bool(self.size) and all_points)
        bounds = shapely.bounds(self.geometries) if self.size else np.empty((0, 4))
        props = rtree_index.Property()
        props.leaf_capacity = 32
        if self.size:
            stream = ((i, tuple(b), None) for i, b in enumerate(bounds))
            self._rtree = rtree_index.Index(stream, properties=props)
        else:
            self._rtree = rtree_index.Index(properties=props)
        if self.is_point:
            self.lon = shapely.get_x(self.geometries)
            self.lat = shapely.get_y(self.geometries)
            x, y = crs.to_metric(self.lon, self.lat)
            self._kdtree = cKDTree(np.column_stack([x, y]).reshape(-1, 2))
        else:
            self.lon = self.lat = None
            self._kdtree = None

    def bbox(self, minx: float, miny: float, maxx: float, maxy: float) -> np.ndarray:
        """Sorted positions of geometries intersecting the WGS84 box."""
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
        dist = np.atleast_1d(dist)
        pos = np.atleast_1d(pos)
        found = np.isfinite(dist)
        return dist[found], pos[found]
