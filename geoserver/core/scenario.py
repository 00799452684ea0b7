"""What-if coverage: the coverage of a layer with sites added, stations removed or moved, computed from the
coverage already known (per demand cell: the distance to its nearest facility and which one it is).

Only what a change can touch is recomputed: the cells whose nearest facility is removed (their nearest among the
stations that remain), and the cells within reach of an added site (a ball query on the demand's METRIC_CRS
coordinates, then geodesic distances, as everywhere else). A cell is covered after the change when its nearest
remaining station or an added site lies within the catchment's straight-line radius — the same test as
``compute_coverage`` and the siting matrix, so adding a siting plan's sites gives the plan's covered people.

Network catchments are not incremental (a new site changes shortest paths) and are refused here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from . import crs
from .coverage import CoverageResult, nearest_distances_m
from .errors import InvalidQuery

#: At most this many sites added or stations removed/moved in one scenario.
MAX_CHANGES = 500


@dataclass(frozen=True)
class Change:
    """The scenario: new sites (WGS84), station positions removed, and (for ``move``) which ids moved where."""

    add_lon: np.ndarray
    add_lat: np.ndarray
    remove: np.ndarray          # positions in the layer
    labels: tuple = ()          # per added site: "add" or "move:<id>"


@dataclass(frozen=True)
class ScenarioResult:
    before: CoverageResult
    covered_after: np.ndarray
    added_cover: np.ndarray     # per added site: people within its catchment not covered by a remaining station
    removed_loss: np.ndarray    # per removed station: people covered before and not after whose nearest it was
    change: Change

    @property
    def weight(self) -> np.ndarray:
        return self.before.demand.weight

    def totals(self) -> dict:
        w = self.weight
        total = float(w.sum())
        before = float(w[self.before.covered].sum())
        after = float(w[self.covered_after].sum())
        gained = float(w[self.covered_after & ~self.before.covered].sum())
        lost = float(w[self.before.covered & ~self.covered_after].sum())
        return {"demand": round(total, 1),
                "covered_before": round(before, 1), "covered_after": round(after, 1),
                "covered_before_pct": _pct(before, total), "covered_after_pct": _pct(after, total),
                "change": round(after - before, 1), "newly_covered": round(gained, 1),
                "no_longer_covered": round(lost, 1)}

    def by_district(self, districts) -> list[dict]:
        w, codes = self.weight, self.before.demand.district_code
        rows = []
        for pos, code in enumerate(districts.ids):
            mask = codes == code
            total = float(w[mask].sum())
            before = float(w[mask & self.before.covered].sum())
            after = float(w[mask & self.covered_after].sum())
            props = districts.properties[pos]
            rows.append({"district_code": code, "district": props.get("name"), "district_en": props.get("name_en"),
                         "demand": round(total, 1), "covered_before": round(before, 1),
                         "covered_after": round(after, 1), "covered_before_pct": _pct(before, total),
                         "covered_after_pct": _pct(after, total), "change": round(after - before, 1)})
        return rows


def _pct(part: float, total: float):
    return round(100 * part / total, 3) if total else None


def demand_tree(demand) -> cKDTree:
    """A k-d tree over the demand points' METRIC_CRS coordinates (for "which cells lie within r of a site")."""
    return cKDTree(np.column_stack([demand.x, demand.y]))


def run_scenario(before: CoverageResult, facility_positions: np.ndarray, fac_lon: np.ndarray, fac_lat: np.ndarray,
                 change: Change, tree: cKDTree | None = None) -> ScenarioResult:
    """Coverage after ``change``, from ``before`` (computed over ``facility_positions``, the layer's facilities
    that pass the request's filters, with their WGS84 coordinates ``fac_lon``/``fac_lat`` in the same order)."""
    catchment = before.catchment
    if catchment.network is not None:
        raise InvalidQuery("what-if scenarios use straight-line or travel-time catchments; drop network", "network")
    radius = catchment.straight_radius_m
    demand = before.demand
    w = demand.weight
    removed = np.isin(facility_positions, change.remove)
    covered = before.covered.copy()

    # cells whose nearest station is removed: their nearest among the stations that remain
    affected = np.flatnonzero(np.isin(before.nearest_facility, change.remove) & (before.nearest_facility >= 0))
    loss = np.zeros(len(change.remove))
    if len(affected):
        keep = ~removed
        dist, _ = nearest_distances_m(demand.lon[affected], demand.lat[affected], fac_lon[keep], fac_lat[keep])
        covered[affected] = dist <= radius
        lost = affected[before.covered[affected] & ~covered[affected]]
        owner = before.nearest_facility[lost]
        for i, pos in enumerate(change.remove.tolist()):
            loss[i] = float(w[lost[owner == pos]].sum())
    without_additions = covered.copy()

    # cells within reach of an added site
    cover = np.zeros(len(change.add_lon))
    if len(change.add_lon):
        tree = tree if tree is not None else demand_tree(demand)
        ax, ay = crs.to_metric(change.add_lon, change.add_lat)
        reach = radius * (1 + crs.METRIC_SCALE_ERROR) + 1e-6
        hits = tree.query_ball_point(np.column_stack([np.atleast_1d(ax), np.atleast_1d(ay)]), reach)
        for i, cells in enumerate(hits):
            if not cells:
                continue
            cells = np.asarray(cells, dtype=np.int64)
            dist = crs.geodesic_distance_m(np.full(len(cells), change.add_lon[i]), np.full(len(cells), change.add_lat[i]),
                                           demand.lon[cells], demand.lat[cells])
            inside = cells[dist <= radius]
            covered[inside] = True
            cover[i] = float(w[inside[~without_additions[inside]]].sum())
    return ScenarioResult(before, covered, cover, loss, change)


def coverage_with_changes(before: CoverageResult, fac_lon: np.ndarray, fac_lat: np.ndarray,
                          positions: np.ndarray, change: Change) -> CoverageResult:
    """The full coverage after ``change`` (for reports, which need every cell's distance and nearest facility),
    computed from scratch: the facilities counted before (``positions`` with their WGS84 coordinates) without the
    removed ones, plus the added sites (nearest facility -1). Same cells, catchment and covered test as before."""
    keep = ~np.isin(positions, change.remove)
    d = before.demand
    dist_old, near_old = nearest_distances_m(d.lon, d.lat, fac_lon[keep], fac_lat[keep])
    near_old = np.where(near_old >= 0, positions[keep][np.maximum(near_old, 0)], -1)
    dist_new, _ = nearest_distances_m(d.lon, d.lat, change.add_lon, change.add_lat)
    closer = dist_new < dist_old
    dist = np.where(closer, dist_new, dist_old)
    return CoverageResult(layer=before.layer, facilities=int(keep.sum()) + len(change.add_lon),
                          catchment=before.catchment, demand=d, distance_m=dist,
                          nearest_facility=np.where(closer, -1, near_old),
                          covered=dist <= before.catchment.straight_radius_m, filters=before.filters,
                          facility_lonlat=(np.concatenate([fac_lon[keep], change.add_lon]),
                                           np.concatenate([fac_lat[keep], change.add_lat])))
