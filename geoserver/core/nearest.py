"""Exact geodesic k-nearest search.

Candidates come from the metric k-d tree; every candidate is measured with the geodesic on the WGS84
ellipsoid.  The search widens until no unseen point can be nearer: in METRIC_CRS the grid distance d_m
and the geodesic distance d_g satisfy d_m / (1 + e) <= d_g <= d_m, e = METRIC_SCALE_ERROR, so once the
farthest candidate's d_m / (1 + e) exceeds the k-th geodesic distance found, the answer is final.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import crs
from .index import SpatialIndex

Predicate = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Neighbours:
    """Positions in the layer, geodesic distances in metres and azimuths (degrees from north), nearest first."""

    positions: np.ndarray
    distances_m: np.ndarray
    azimuths_deg: np.ndarray


def nearest(index: SpatialIndex, lon: float, lat: float, k: int, max_distance_m: float | None = None,
            predicate: Predicate | None = None) -> Neighbours:
    """The k geodesically nearest points to WGS84 (lon, lat) that satisfy ``predicate``.

    ``predicate`` takes an array of positions and returns a boolean array (e.g. "has charging and is open").
    Ties in distance are broken by position, so results are deterministic.
    """
    slack = 1.0 + crs.METRIC_SCALE_ERROR
    upper = np.inf if max_distance_m is None else max_distance_m * slack + 1e-3
    x, y = crs.to_metric(lon, lat)
    n = index.size
    want = min(n, max(2 * k, k + 8))
    while True:
        dist_m, pos = index.nearest_metric(x, y, want, upper)
        exhausted = len(pos) < want or want >= n
        cand = pos if predicate is None or not len(pos) else pos[predicate(pos)]
        az, _, geo = crs.GEOD.inv(np.full(len(cand), lon), np.full(len(cand), lat),
                                  index.lon[cand], index.lat[cand])
        geo = np.asarray(geo, float)
        if max_distance_m is not None:
            keep = geo <= max_distance_m
            cand, geo, az = cand[keep], geo[keep], np.asarray(az)[keep]
        order = np.lexsort((cand, geo))[:k]
        done = exhausted or (len(order) == k and dist_m[-1] / slack > geo[order[-1]])
        if done:
            return Neighbours(cand[order], geo[order], np.mod(np.asarray(az, float)[order], 360.0))
        want = min(n, want * 4)
