"""Exact geodesic k-nearest search.

Candidates come from the metric k-d tree and are measured with the geodesic on the WGS84 ellipsoid.  The
search widens until no unseen point can be nearer: in METRIC_CRS the grid distance d_m and the geodesic
distance d_g satisfy d_m / (1 + e) <= d_g <= d_m, e = METRIC_SCALE_ERROR, so once the farthest candidate's
d_m / (1 + e) exceeds the k-th geodesic distance found, the answer is final.  The same bound lets small-k
searches measure candidates nearest first and stop early (``_k_best_in_metric_order``).
"""

from __future__ import annotations

import bisect
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
    x, y = crs.to_metric_point(lon, lat)   # one point: without handing the GIL to other threads
    n = index.size
    want = min(n, max(2 * k, k + 8))
    while True:
        dist_m, pos = index.nearest_metric(x, y, want, upper)
        exhausted = len(pos) < want or want >= n
        if predicate is None or not len(pos):
            cand, cand_m = pos, dist_m
        else:
            keep = predicate(pos)
            cand, cand_m = pos[keep], dist_m[keep]
        if k <= SCALAR_K:
            best = _k_best_in_metric_order(index, lon, lat, k, max_distance_m, cand, cand_m, slack)
            done = exhausted or (len(best) == k and dist_m[-1] / slack > best[-1][0])
            if done:
                return Neighbours(np.array([b[1] for b in best], dtype=np.int64), np.array([b[0] for b in best]),
                                  np.array([b[2] % 360.0 for b in best]))
        else:
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


#: Up to this k, geodesics are measured in metric order, a few at a time, stopping as soon as no later candidate can
#: be among the k nearest: for the usual k = 5 that is one call for k + 2 candidates instead of one for all 2k + 8.
#: (pyproj releases the GIL on every call, which in a busy server costs more than the geodesics themselves: so
#: one call per batch, not one per candidate.) Larger k: one array call for all candidates.
SCALAR_K = 12


def _k_best_in_metric_order(index, lon, lat, k, max_distance_m, cand, cand_m, slack) -> list[tuple]:
    """The k geodesically nearest of ``cand`` (sorted by METRIC_CRS distance ``cand_m``) as (distance_m, position,
    azimuth) sorted by (distance, position), exactly what measuring all of them would give: a candidate whose
    METRIC_CRS distance / slack exceeds the k-th geodesic distance found is geodesically farther (strictly), and so
    are all after it."""
    inv = crs.GEOD.inv
    lons, lats = index.lon, index.lat
    best: list[tuple] = []
    kth = np.inf
    start, batch, total = 0, k + 2, len(cand)
    while start < total:
        if cand_m[start] / slack > kth:
            break
        stop = min(total, start + batch)
        part = cand[start:stop]
        az, _, geo = inv(np.full(len(part), lon), np.full(len(part), lat), lons[part], lats[part])
        for p, d_m, g, a in zip(part.tolist(), cand_m[start:stop].tolist(), geo.tolist(), az.tolist()):
            if d_m / slack > kth:
                return best
            if max_distance_m is not None and g > max_distance_m:
                continue
            bisect.insort(best, (g, p, a))
            if len(best) > k:
                best.pop()
            if len(best) == k:
                kth = best[-1][0]
        start, batch = stop, batch * 2
    return best
