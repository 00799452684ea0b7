"""Planning new stations: turn a siting request into an MCLP instance, solve it, and describe the result.

The instance: demand points (the default census grid), the facilities that already exist (their coverage is
fixed), candidate sites (a regular grid inside the planning area, the points of a candidate layer such as existing
union service points or Party-mass service stations that could host a station, or both), and the catchment. A
candidate covers a demand point when the geodesic distance is within the catchment's straight-line radius.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

from . import crs
from .coverage import Catchment, CoverageResult
from .districts import name_by_code
from .errors import InvalidQuery
from .geography import WATER

MAX_K = 500
MAX_CANDIDATES = 20_000
#: The candidate grid is shifted by these metres (x, y) off the round multiples of its spacing. Both grids centred
#: on round multiples put many demand cells at exactly a round radius from a candidate (600 m spacing, 200 m
#: cells, 1,000 m radius: dx, dy of 600 and 800 m), so a site read back at 6 decimals (0.1 m) covered ~5 % fewer
#: people than the plan counted. Shifted by non-round amounts, ties within centimetres become rare accidents.
GRID_OFFSET_M = (37.13, 61.29)
MAX_PAIRS = 5_000_000
#: How far above MAX_PAIRS the request-only bound may be before the exact count is worth running (the bound
#: counts whole discs; coasts, lakes and the area's edge leave real instances well below it).
PAIRS_BOUND_FACTOR = 4
MAX_TIME_LIMIT_S = 600.0
MIN_AUTO_SPACING_M = 500.0
AUTO_MAX_GRID_CANDIDATES = 8_000
SIGNIFICANT = 1e-9


@dataclass(frozen=True)
class SitingRequest:
    """A validated siting question (parsed from a JSON body or CLI options by ``geoserver.planning.siting``)."""

    layer: str
    catchment: Catchment
    k: int | None = None
    target_fraction: float | None = None
    area: str = "suburban"  # suburban | districts | polygon | all
    districts: tuple[str, ...] = ()
    polygon: object | None = field(default=None, compare=False, hash=False)
    candidates: str = "grid"  # grid | layer | both
    candidate_layer: str | None = None
    spacing_m: float | None = None  # None: the finest of 500 m, 600 m, ... giving at most 8,000 grid candidates
    solver: str = "fast"
    time_limit_s: float = 60.0
    services: tuple[str, ...] = ()
    open_at: object | None = None
    demand: str = "grid"
    cell_m: float = 200.0
    weight_column: str | None = None


def area_geometry(service, req: SitingRequest):
    """The planning area as one WGS84 geometry (inside the districts, lakes removed)."""
    districts = service.layer("districts")
    if req.area == "polygon":
        geom = req.polygon.intersection(shapely.union_all(districts.index.geometries))
        if geom.is_empty or geom.area == 0:
            raise InvalidQuery("polygon does not overlap Shanghai's districts (coordinates are WGS84 lon, lat)",
                               "polygon")
    else:
        keep = [pos for pos, p in enumerate(districts.properties)
                if req.area == "all" or (req.area == "suburban" and p.get("zone") == "suburban")
                or (req.area == "districts" and p["id"] in req.districts)]
        geom = shapely.union_all(districts.index.geometries[keep])
    return geom.difference(shapely.union_all(WATER))


def auto_spacing_m(area_m2: float) -> float:
    """The finest grid spacing (500 m or more, in 100 m steps) that keeps the grid near 8,000 candidates."""
    spacing = max(MIN_AUTO_SPACING_M, float(np.sqrt(area_m2 / AUTO_MAX_GRID_CANDIDATES)))
    return float(np.ceil(spacing / 100.0) * 100.0)


@dataclass(frozen=True)
class Candidates:
    """Candidate sites: WGS84 positions, where each came from, and an id."""

    lon: np.ndarray
    lat: np.ndarray
    source: np.ndarray
    ids: np.ndarray

    @property
    def size(self) -> int:
        return len(self.lon)


def candidate_sites(service, req: SitingRequest, area) -> Candidates:
    """Grid points every spacing_m inside the area, and/or the candidate layer's points inside it."""
    lons, lats, sources, ids = [], [], [], []
    shapely.prepare(area)
    if req.candidates in ("grid", "both"):
        metric_area = shapely.transform(area, lambda xy: np.column_stack(crs.to_metric(xy[:, 0], xy[:, 1])))
        minx, miny, maxx, maxy = metric_area.bounds
        s = req.spacing_m or auto_spacing_m(metric_area.area)
        gx = np.arange(np.floor(minx / s), np.ceil(maxx / s)) * s + s / 2 + GRID_OFFSET_M[0]
        gy = np.arange(np.floor(miny / s), np.ceil(maxy / s)) * s + s / 2 + GRID_OFFSET_M[1]
        if len(gx) * len(gy) > 50 * MAX_CANDIDATES:
            raise InvalidQuery(f"a {s:g} m candidate grid over this area is too large; raise spacing_m", "spacing_m")
        X, Y = (a.ravel() for a in np.meshgrid(gx, gy))
        shapely.prepare(metric_area)
        inside = shapely.contains_xy(metric_area, X, Y)
        lon, lat = crs.from_metric(X[inside], Y[inside])
        lons.append(np.asarray(lon))
        lats.append(np.asarray(lat))
        sources.append(np.full(int(inside.sum()), "grid", dtype=object))
        ids.append(np.array([f"grid-{i + 1}" for i in range(int(inside.sum()))], dtype=object))
    if req.candidates in ("layer", "both"):
        layer = service.point_layer(req.candidate_layer)
        inside = shapely.contains_xy(area, layer.index.lon, layer.index.lat)
        lons.append(layer.index.lon[inside])
        lats.append(layer.index.lat[inside])
        sources.append(np.full(int(inside.sum()), req.candidate_layer, dtype=object))
        ids.append(layer.ids[inside].astype(object))
    cand = Candidates(np.concatenate(lons), np.concatenate(lats), np.concatenate(sources), np.concatenate(ids))
    if cand.size == 0:
        raise InvalidQuery("no candidate sites lie in the planning area", "area")
    if cand.size > MAX_CANDIDATES:
        raise InvalidQuery(f"{cand.size} candidate sites is more than the {MAX_CANDIDATES} this server solves; "
                           "raise spacing_m or narrow the area", "spacing_m")
    return cand


def pairs_upper_bound(cand: Candidates, demand, radius_m: float) -> int:
    """At most how many candidate-demand pairs the instance can have, known before any neighbour search: a grid
    cell of ``cell_m`` holds one demand point, so a disc of radius r meets at most pi (r + cell)^2 / cell^2 cells."""
    if demand.cell_m:
        per_candidate = math.pi * (radius_m + demand.cell_m) ** 2 / demand.cell_m ** 2
    else:  # demand from a file: count the neighbours of a sample of candidates
        sample = np.linspace(0, cand.size - 1, min(cand.size, 64)).astype(int)
        cx, cy = crs.to_metric(cand.lon[sample], cand.lat[sample])
        tree = cKDTree(np.column_stack([demand.x, demand.y]))
        per_candidate = 2.0 * float(np.max(tree.query_ball_point(np.column_stack([cx, cy]), radius_m,
                                                                 return_length=True)))
    return int(cand.size * min(float(demand.size), per_candidate))


def _too_many_pairs(pairs: int, cand: Candidates, demand) -> InvalidQuery:
    hint = ""
    if demand.cell_m:  # the radius that keeps the bound within MAX_PAIRS for these candidates
        r = demand.cell_m * (math.sqrt(MAX_PAIRS / (cand.size * math.pi)) - 1)
        if r > 0:
            hint = f" (with {cand.size:,} candidates, radius_m up to about {r:,.0f})"
    return InvalidQuery(f"this instance has about {pairs:,} candidate-demand pairs, more than the {MAX_PAIRS:,} this "
                        f"server solves; shorten the catchment{hint}, raise spacing_m or narrow the area", "radius_m")


def coverage_matrix(cand: Candidates, demand, radius_m: float) -> sparse.csr_matrix:
    """Candidates x demand points, 1 where the geodesic distance is within radius_m.

    The cost is refused before it is paid: first by an upper bound from the request alone (a 50 km radius over the
    suburban grid is about 1.5 billion pairs), then by counting the pairs without listing them."""
    bound = pairs_upper_bound(cand, demand, radius_m)
    if bound > PAIRS_BOUND_FACTOR * MAX_PAIRS:
        raise _too_many_pairs(bound, cand, demand)
    cx, cy = crs.to_metric(cand.lon, cand.lat)
    tree = cKDTree(np.column_stack([demand.x, demand.y]))
    centres = np.column_stack([cx, cy])
    reach = radius_m * (1 + crs.METRIC_SCALE_ERROR) + 1e-6
    counts = np.asarray(tree.query_ball_point(centres, reach, return_length=True), dtype=np.int64)
    if counts.sum() > MAX_PAIRS:
        raise _too_many_pairs(int(counts.sum()), cand, demand)
    hits = tree.query_ball_point(centres, reach)
    rows = np.repeat(np.arange(len(hits)), counts)
    cols = np.fromiter((j for h in hits for j in h), dtype=np.int64, count=int(counts.sum()))
    dist = crs.geodesic_distance_m(cand.lon[rows], cand.lat[rows], demand.lon[cols], demand.lat[cols])
    keep = dist <= radius_m
    return sparse.csr_matrix((np.ones(int(keep.sum()), dtype=np.int8), (rows[keep], cols[keep])),
                             shape=(cand.size, demand.size))


@dataclass(frozen=True)
class Problem:
    """An MCLP instance ready for the solvers, with what is needed to describe the answer."""

    request: SitingRequest
    before: CoverageResult
    candidates: Candidates
    coverage: sparse.csr_matrix
    area: object

    @property
    def pairs(self) -> int:
        return int(self.coverage.nnz)


def build_problem(service, req: SitingRequest) -> Problem:
    demand = service.demand(req.demand, req.cell_m, req.weight_column)
    if req.catchment.network is not None:
        raise InvalidQuery("siting uses straight-line catchments (network catchments are for coverage only)", "network")
    before = service.coverage(req.layer, req.catchment, demand, req.services, req.open_at)
    area = area_geometry(service, req)
    cand = candidate_sites(service, req, area)
    matrix = coverage_matrix(cand, demand, before.catchment.straight_radius_m)
    return Problem(req, before, cand, matrix, area)


def estimate_seconds(problem: Problem) -> float:
    """A rough run-time estimate used to choose between answering now and running a background job."""
    req = problem.request
    k = req.k or 50
    fast = 2e-7 * problem.pairs * (1 + k / 10) + 0.2
    return min(req.time_limit_s, 20 * fast + 1.0) if req.solver == "exact" else fast


@dataclass(frozen=True)
class PlanResult:
    """The answer: proposed sites and coverage before and after, per district and in total."""

    problem: Problem
    siting: object
    sites: list[dict]
    covered_after: np.ndarray
    runtime_s: float

    def district_rows(self, service) -> list[dict]:
        before = self.problem.before
        demand = before.demand
        rows = []
        for row in before.by_district(service.layer("districts")):
            mask = demand.district_code == row["district_code"]
            after = float(demand.weight[mask & self.covered_after].sum())
            total = row["demand"]
            rows.append({**{k: row[k] for k in ("district_code", "district", "district_en", "zone", "demand")},
                         "covered_before": row["covered"], "covered_before_pct": row["covered_pct"],
                         "covered_after": round(after, 1),
                         "covered_after_pct": round(100 * after / total, 2) if total else None,
                         "newly_covered": round(after - row["covered"], 1),
                         "new_sites": sum(1 for s in self.sites if s["district_code"] == row["district_code"])})
        return rows

    def summary(self) -> dict:
        s = self.siting
        req = self.problem.request
        total = float(self.problem.before.demand.total)
        return {"layer": req.layer, "k": req.k, "target_pct": None if req.target_fraction is None else
                100 * req.target_fraction, "sites": len(self.sites), "objective_newly_covered": round(s.newly_covered, 1),
                "covered_before": round(s.covered_before, 1), "covered_after": round(s.covered_after, 1),
                "covered_before_pct": round(100 * s.covered_before / total, 3) if total else None,
                "covered_after_pct": round(100 * s.covered_after / total, 3) if total else None,
                "solver": s.solver, "status": s.status, "objective_bound": None if s.objective_bound is None else
                round(s.objective_bound, 1), "gap": s.gap, "solver_runtime_s": round(s.runtime_s, 3),
                "runtime_s": round(self.runtime_s, 3), "candidates": self.problem.candidates.size,
                "candidate_demand_pairs": self.problem.pairs, "demand_points": self.problem.before.demand.size,
                "catchment": req.catchment.describe(), "area": req.area, "districts": list(req.districts)}


def solve(service, problem: Problem, progress: Callable | None = None, cancel: Callable | None = None,
          solver=None) -> PlanResult:
    """Run a solver on the problem and describe the proposed sites.

    ``solver`` is an object with ``cover_k`` and ``reach_target`` (the registered ones are in
    ``geoserver.planning.solvers``); by default ``core.siting``'s solver named by the request."""
    from .districts import assign_districts
    from .siting import mclp, min_sites_for_target

    started = time.perf_counter()
    req = problem.request
    demand = problem.before.demand
    kwargs = dict(time_limit_s=req.time_limit_s, progress=progress, cancel=cancel)
    try:
        if req.k is not None:
            k = min(req.k, problem.candidates.size)
            result = (solver.cover_k(problem.coverage, demand.weight, problem.before.covered, k, **kwargs)
                      if solver is not None else
                      mclp(problem.coverage, demand.weight, problem.before.covered, k, solver=req.solver, **kwargs))
        elif solver is not None:
            result = solver.reach_target(problem.coverage, demand.weight, problem.before.covered,
                                         req.target_fraction, **kwargs)
        else:
            result = min_sites_for_target(problem.coverage, demand.weight, problem.before.covered,
                                          req.target_fraction, solver=req.solver, **kwargs)
    except ValueError as exc:  # the solvers' own input checks
        raise InvalidQuery(str(exc), "k" if req.k is not None else "target_pct") from None
    cand = problem.candidates
    chosen = np.asarray(result.selected, dtype=np.int64)
    codes = assign_districts(service.layer("districts"), cand.lon[chosen], cand.lat[chosen]) if len(chosen) else []
    names = name_by_code(service.layer("districts"))
    sites = [{"rank": rank, "candidate_id": str(cand.ids[i]), "source": str(cand.source[i]),
              "lon": round(float(cand.lon[i]), 6), "lat": round(float(cand.lat[i]), 6),
              "district_code": str(code), "district": names.get(str(code), ""),
              "new_coverage": round(float(new), 1)}
             for rank, (i, code, new) in enumerate(zip(chosen, codes, result.new_coverage_by_site), start=1)]
    return PlanResult(problem, result, sites, np.asarray(result.covered_mask_after, bool),
                      time.perf_counter() - started)


def coverage_after(plan: PlanResult) -> CoverageResult:
    """Coverage with the proposed sites added: distances to the nearer of old and new, the solver's covered mask."""
    from .coverage import nearest_distances_m

    before = plan.problem.before
    demand = before.demand
    new_lon = np.array([s["lon"] for s in plan.sites], float)
    new_lat = np.array([s["lat"] for s in plan.sites], float)
    to_new, _ = nearest_distances_m(demand.lon, demand.lat, new_lon, new_lat)
    closer = to_new < before.distance_m
    return CoverageResult(layer=before.layer, facilities=before.facilities + len(plan.sites),
                          catchment=before.catchment, demand=demand,
                          distance_m=np.where(closer, to_new, before.distance_m),
                          nearest_facility=np.where(closer, -1, before.nearest_facility),
                          covered=before.covered | plan.covered_after, filters=before.filters)


def sites_frame(plan: PlanResult):
    """The proposed sites as a WGS84 GeoDataFrame (rank, new_coverage, district, lon, lat, ...)."""
    import geopandas as gpd
    import pandas as pd

    frame = pd.DataFrame(plan.sites, columns=["rank", "candidate_id", "source", "lon", "lat", "district_code",
                                              "district", "new_coverage"])
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")
