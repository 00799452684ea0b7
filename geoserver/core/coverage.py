"""Coverage of demand by a facility layer, and the gaps it leaves.

A demand point is covered when a facility of the layer (optionally only those offering given services, or open at
a given time) lies within its catchment:

* a straight-line radius in metres (geodesic distance on WGS84), or
* an estimated travel time for a mode: the travel distance (minutes x speed) turned into a straight-line radius
  with a detour (circuity) factor that is higher on short trips: f(d) = f_long + (f_short - f_long) exp(-d / d0),
  f_long = 1.32 (mean of 25 Chinese cities, Annals of GIS 2021), f_short = 1.6, d0 = 1 km; or
* real network distance over a road graph from an OpenStreetMap extract, when one is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from . import crs
from .demand import Demand
from .errors import InvalidQuery

#: Average door-to-door speeds in km/h used for travel-time catchments (configurable per request).
SPEEDS_KMH = {"walk": 4.5, "ebike": 15.0, "car": 25.0}
DETOUR_LONG = 1.32
DETOUR_SHORT = 1.6
DETOUR_SCALE_M = 1000.0
MAX_RADIUS_M = 50_000.0
MAX_MINUTES = 120.0


@dataclass(frozen=True)
class Catchment:
    """How far a facility serves: a straight-line radius, or minutes of travel by a mode."""

    radius_m: float | None = None
    minutes: float | None = None
    mode: str | None = None
    speed_kmh: float | None = None
    detour_long: float = DETOUR_LONG
    detour_short: float = DETOUR_SHORT
    network: object | None = field(default=None, compare=False, hash=False)
    network_name: str | None = None

    def __post_init__(self):
        if (self.radius_m is None) == (self.minutes is None):
            raise InvalidQuery("give either radius_m or minutes (with mode), not both or neither", "radius_m")
        if self.radius_m is not None and not 0 < self.radius_m <= MAX_RADIUS_M:
            raise InvalidQuery(f"radius_m must be greater than 0 and at most {MAX_RADIUS_M:g}", "radius_m")
        if self.network is not None and self.mode not in SPEEDS_KMH:
            raise InvalidQuery(f"a road network needs mode ({', '.join(SPEEDS_KMH)}) to know which roads to use", "mode")
        if self.minutes is not None:
            if not 0 < self.minutes <= MAX_MINUTES:
                raise InvalidQuery(f"minutes must be greater than 0 and at most {MAX_MINUTES:g}", "minutes")
            if self.mode not in SPEEDS_KMH:
                raise InvalidQuery(f"mode must be one of {', '.join(SPEEDS_KMH)} with minutes", "mode")
        if self.speed_kmh is not None and not 0 < self.speed_kmh <= 150:
            raise InvalidQuery("speed_kmh must be greater than 0 and at most 150", "speed_kmh")
        if not 1.0 <= self.detour_long <= 3.0 or not self.detour_long <= self.detour_short <= 4.0:
            raise InvalidQuery("detour factors must satisfy 1 <= detour <= detour_short <= 4", "detour")

    @property
    def travel_m(self) -> float:
        """The distance a facility serves along the way: radius, or minutes x speed."""
        if self.radius_m is not None:
            return float(self.radius_m)
        speed = self.speed_kmh or SPEEDS_KMH[self.mode]
        return self.minutes * speed * 1000.0 / 60.0

    def detour(self, straight_m: float) -> float:
        return self.detour_long + (self.detour_short - self.detour_long) * math.exp(-straight_m / DETOUR_SCALE_M)

    @property
    def straight_radius_m(self) -> float:
        """The straight-line radius equivalent to this catchment (solves r x detour(r) = travel distance)."""
        if self.radius_m is not None:
            return float(self.radius_m)
        lo, hi = 0.0, self.travel_m
        for _ in range(60):
            mid = (lo + hi) / 2
            if mid * self.detour(mid) < self.travel_m:
                lo = mid
            else:
                hi = mid
        return lo

    def describe(self) -> str:
        if self.network is not None:
            what = f"{self.radius_m:g} m" if self.radius_m is not None else \
                f"{self.minutes:g} min by {self.mode} ({self.travel_m:,.0f} m at {self.speed_kmh or SPEEDS_KMH[self.mode]:g} km/h)"
            return f"{what} along the road network of the supplied OpenStreetMap extract"
        if self.radius_m is not None:
            return f"straight-line (geodesic) radius {self.radius_m:g} m"
        return (f"{self.minutes:g} min by {self.mode} at {self.speed_kmh or SPEEDS_KMH[self.mode]:g} km/h = "
                f"{self.travel_m:,.0f} m of travel = {self.straight_radius_m:,.0f} m straight-line with detour factor "
                f"{self.detour(self.straight_radius_m):.2f} (f = {self.detour_long:g} + "
                f"({self.detour_short:g} - {self.detour_long:g}) exp(-d / {DETOUR_SCALE_M:g} m))")


def nearest_distances_m(demand_lon, demand_lat, fac_lon, fac_lat) -> tuple[np.ndarray, np.ndarray]:
    """Exact geodesic distance from every demand point to its nearest facility, and that facility's index.

    Candidates come from a k-d tree in METRIC_CRS; a point whose answer the metric bound cannot settle
    (a farther-in-metric facility could be geodesically nearer) is settled by a ball query.
    """
    n = len(demand_lon)
    if len(fac_lon) == 0:
        return np.full(n, np.inf), np.full(n, -1)
    fx, fy = crs.to_metric(np.asarray(fac_lon), np.asarray(fac_lat))
    tree = cKDTree(np.column_stack([fx, fy]))
    dx, dy = crs.to_metric(np.asarray(demand_lon), np.asarray(demand_lat))
    k = min(4, len(fac_lon))
    dm, idx = tree.query(np.column_stack([dx, dy]), k=k)
    dm, idx = dm.reshape(n, k), idx.reshape(n, k)
    geo = crs.geodesic_distance_m(np.repeat(demand_lon, k), np.repeat(demand_lat, k), np.asarray(fac_lon)[idx.ravel()],
                                  np.asarray(fac_lat)[idx.ravel()]).reshape(n, k)
    best = np.argmin(geo, axis=1)
    dist = geo[np.arange(n), best]
    nearest = idx[np.arange(n), best]
    slack = 1 + crs.METRIC_SCALE_ERROR
    unsettled = np.flatnonzero((dm[:, -1] / slack <= dist) & (k < len(fac_lon)))
    for i in unsettled:
        cand = np.asarray(tree.query_ball_point((dx[i], dy[i]), dist[i] * slack + 1e-6))
        g = crs.geodesic_distance_m(demand_lon[i], demand_lat[i], np.asarray(fac_lon)[cand], np.asarray(fac_lat)[cand])
        j = int(np.argmin(g))
        dist[i], nearest[i] = g[j], cand[j]
    return dist, nearest


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float | None:
    """The q-quantile of values weighted by weights (None when there is no weight)."""
    finite = np.isfinite(values) & (weights > 0)
    if weights.sum() <= 0:
        return None
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    pos = np.searchsorted(cum, q * cum[-1])
    value = values[order][min(pos, len(order) - 1)]
    return float(value) if finite.any() and np.isfinite(value) else None


@dataclass(frozen=True)
class CoverageResult:
    """Coverage of a demand layer by a facility layer under a catchment; arrays are per demand point."""

    layer: str
    facilities: int
    catchment: Catchment
    demand: Demand
    distance_m: np.ndarray
    nearest_facility: np.ndarray
    covered: np.ndarray
    filters: dict
    #: Network catchments: the demand points the road network reaches (within its snapping distance of a road of
    #: the extract). The others are "not assessed": neither covered nor uncovered, counted apart. None: all.
    assessed: np.ndarray | None = None
    #: WGS84 (lon, lat) arrays of the facilities counted (gaps are clipped to stay outside their catchments)
    facility_lonlat: tuple | None = field(default=None, compare=False, repr=False)

    @property
    def covered_weight(self) -> float:
        return float(self.demand.weight[self.covered].sum())

    @property
    def uncovered_mask(self) -> np.ndarray:
        """Demand points assessed and not covered."""
        return ~self.covered if self.assessed is None else (~self.covered & self.assessed)

    def _figures(self, mask: np.ndarray | None) -> dict:
        weight = self.demand.weight if mask is None else self.demand.weight[mask]
        covered = self.covered if mask is None else self.covered[mask]
        dist = self.distance_m if mask is None else self.distance_m[mask]
        out = {}
        if self.assessed is not None:
            assessed = self.assessed if mask is None else self.assessed[mask]
            missing = float(weight[~assessed].sum())
            out = {"not_assessed": round(missing, 1),
                   "not_assessed_pct": round(100 * missing / float(weight.sum()), 2) if weight.sum() else None}
            weight, covered, dist = weight[assessed], covered[assessed], dist[assessed]
        total, got = float(weight.sum()), float(weight[covered].sum())
        return {"demand": round(total, 1), "covered": round(got, 1), "uncovered": round(total - got, 1),
                "covered_pct": round(100 * got / total, 2) if total else None,
                "median_distance_m": _round(weighted_quantile(dist, weight, 0.5)),
                "p90_distance_m": _round(weighted_quantile(dist, weight, 0.9)), **out}

    def totals(self) -> dict:
        """City-wide figures; with a road network, ``demand`` and the percentages are of the assessed people."""
        return self._figures(None)

    def by_district(self, districts) -> list[dict]:
        """Per-district rows in the districts layer's order (districts: the Layer)."""
        rows = []
        codes = self.demand.district_code
        for pos, code in enumerate(districts.ids):
            props = districts.properties[pos]
            rows.append({"district_code": code, "district": props.get("name"), "district_en": props.get("name_en"),
                         "zone": props.get("zone"), **self._figures(codes == code)})
        return rows

    def warnings(self) -> list[str]:
        """What a reader must know to read the figures (people the road network does not reach)."""
        if self.assessed is None or self.assessed.all():
            return []
        t = self.totals()
        return [f"the road network reaches only part of the demand: {t['not_assessed']:,.0f} people "
                f"({t['not_assessed_pct']:.1f} %) live farther than the snapping distance from its roads and are "
                "not assessed (neither covered nor uncovered); the percentages are of the assessed people"]


def _round(value):
    return None if value is None else round(value, 1)


def facility_positions(service, layer, services=(), open_at=None) -> tuple[np.ndarray, int]:
    """The positions of a layer's facilities that count (offering ``services``, open at ``open_at``), and how many
    were left out because their opening hours are unknown (0 without ``open_at``)."""
    positions = np.arange(layer.count)
    unknown_hours = 0
    if services:
        positions = positions[service.filter_mask(layer, positions, services)]
    if open_at is not None:
        if layer.hours is not None:   # facilities whose hours are unknown are not counted as open: say how many
            unknown_hours = int(layer.hours.unknown_mask(positions).sum())
        positions = positions[service.filter_mask(layer, positions, (), open_at)]
    return positions, unknown_hours


def compute_coverage(service, layer_id: str, catchment: Catchment, demand: Demand, services=(),
                     open_at=None) -> CoverageResult:
    """Which demand is covered by ``layer_id``'s facilities (filtered by services / opening time)."""
    layer = service.point_layer(layer_id)
    positions, unknown_hours = facility_positions(service, layer, services, open_at)
    fac_lon, fac_lat = layer.index.lon[positions], layer.index.lat[positions]
    assessed = None
    if catchment.network is not None:
        network = catchment.network
        targets = network.snap(demand.lon, demand.lat)
        found = network.nearest_source_snapped(network.snap(fac_lon, fac_lat), targets)
        dist, nearest = found.distance_m, found.index
        covered = dist <= catchment.travel_m
        assessed = np.zeros(demand.size, bool)
        assessed[targets.point] = True
    else:
        dist, nearest = nearest_distances_m(demand.lon, demand.lat, fac_lon, fac_lat)
        covered = dist <= catchment.straight_radius_m
    nearest = np.where(nearest >= 0, positions[np.maximum(nearest, 0)], -1) if len(positions) else nearest
    filters = {"services": list(services), "open_at": open_at.isoformat(timespec="minutes") if open_at else None}
    if open_at is not None:
        filters["hours_unknown_not_counted"] = unknown_hours
    return CoverageResult(layer=layer_id, facilities=int(len(positions)), catchment=catchment, demand=demand,
                          distance_m=dist, nearest_facility=nearest, covered=covered, filters=filters,
                          assessed=assessed, facility_lonlat=(fac_lon, fac_lat))


def demand_sensitivity(service, result) -> dict:
    """How much the city-wide coverage depends on the demand model: the covered share under each of
    ``SENSITIVITY_MODELS`` (the same cells and catchments, other weights). Grid demand only."""
    from .demand import SENSITIVITY_MODELS, model_weights

    demand = result.demand
    if demand.cell_m is None or not demand.name.startswith("grid"):
        return {"applies": False, "note": "demand from a file: its weights are data, not a model"}
    rows = []
    for label, sigma in SENSITIVITY_MODELS:
        weights = service.cached(("model-weights", demand.name, sigma), lambda s=sigma: model_weights(service, demand, s))
        total = float(weights.sum())
        rows.append({"model": label, "sigma_m": sigma,
                     "covered_pct": round(100 * float(weights[result.covered].sum()) / total, 2) if total else None})
    values = [r["covered_pct"] for r in rows if r["covered_pct"] is not None]
    low, high = min(values), max(values)
    return {"applies": True, "models": rows, "covered_pct_range": [low, high],
            "note": f"city-wide coverage is {low:.1f}-{high:.1f} % depending on how the census population is spread "
                    "within districts (demand model); compare sites and districts, not the last decimal"}


@dataclass(frozen=True)
class Gap:
    """An uncovered area one new site could serve: merged grid cells (WGS84 polygon), the people in it, and the
    best point for that site with the people a site there would newly cover."""

    geometry: object
    uncovered: float
    cells: int
    area_km2: float
    districts: tuple[str, ...]
    site: tuple[float, float] | None = None     # WGS84 lon, lat of the best cell centre for a new site
    coverable: float = 0.0                      # people a site at ``site`` would newly cover (within the radius)


#: A gap is split until each piece is at most this many times the catchment's area (pi r^2).
MAX_GAP_CATCHMENTS = 4.0
#: Cells of a piece tried as the site (evenly spread over the piece); the best is kept.
SITE_CANDIDATES = 48


def find_gaps(result: CoverageResult, cell_m: float | None = None, min_uncovered: float = 0.0,
              facilities: tuple | None = None) -> list[Gap]:
    """Uncovered demand as areas one new site could serve, ranked by the people a site would newly cover.

    Demand that is not on a grid (e.g. points of orders) is first binned into ``cell_m`` cells (default 200 m).
    Cells join when they share an edge and lie in the same district, so each gap is one district's to fill; an area
    larger than ``MAX_GAP_CATCHMENTS`` catchments is split (halved across its longer side, again and again) into
    pieces that size. Each piece gets the cell centre where a new site would newly cover the most people (counting
    every uncovered cell within the straight-line radius, also outside the piece). ``facilities`` (WGS84 lon and
    lat arrays of the stations counted): the polygons are clipped so no part lies within the radius of one.
    People the road network does not reach (not assessed) are no gap.
    """
    cell = result.demand.cell_m or cell_m or 200.0
    mask = result.uncovered_mask & (result.demand.weight > 0)
    if not mask.any():
        return []
    d = result.demand
    radius = result.catchment.straight_radius_m
    col = np.floor(d.x[mask] / cell).astype(np.int64)
    row = np.floor(d.y[mask] / cell).astype(np.int64)
    codes = d.district_code[mask]
    weight = d.weight[mask]
    # every uncovered cell, for "whom would a site here newly cover"
    ux, uy = (col + 0.5) * cell, (row + 0.5) * cell
    plon, plat = d.lon[mask], d.lat[mask]
    tree = cKDTree(np.column_stack([ux, uy]))
    facilities = facilities if facilities is not None else result.facility_lonlat
    clip = _station_discs(facilities, radius) if facilities is not None and result.catchment.network is None \
        else None
    max_cells = max(1, int(MAX_GAP_CATCHMENTS * math.pi * radius ** 2 / cell ** 2))
    gaps = []
    for code in np.unique(codes):
        idx = np.flatnonzero(codes == code)
        for piece in _district_pieces(col[idx], row[idx], max_cells):
            members = idx[piece]
            gaps.append(_gap(members, col, row, weight, ux, uy, plon, plat, tree, cell, radius, code, clip))
    gaps.sort(key=lambda g: (-g.coverable, -g.uncovered))
    return [g for g in gaps if g.uncovered > 0 and g.uncovered >= min_uncovered]


def _district_pieces(col, row, max_cells: int) -> list[np.ndarray]:
    """Connected components (edge-sharing cells) of one district's uncovered cells, each split into pieces of at
    most ``max_cells`` cells; as index arrays into col/row."""
    c0, r0 = col.min(), row.min()
    occupied = np.zeros((row.max() - r0 + 1, col.max() - c0 + 1), bool)
    occupied[row - r0, col - c0] = True
    labels, count = ndimage.label(occupied)
    label_of = labels[row - r0, col - c0]
    order = np.argsort(label_of, kind="stable")
    bounds = np.searchsorted(label_of[order], np.arange(1, count + 2))
    pieces = []
    for i in range(count):
        stack = [order[bounds[i]:bounds[i + 1]]]
        while stack:
            part = stack.pop()
            if len(part) <= max_cells:
                pieces.append(part)
                continue
            # halve across the longer side (by cell count, so each half holds half the cells)
            c, r = col[part], row[part]
            key = c if np.ptp(c) >= np.ptp(r) else r
            ranked = part[np.argsort(key, kind="stable")]
            half = len(ranked) // 2
            stack += [ranked[:half], ranked[half:]]
    return pieces


def _gap(members, col, row, weight, ux, uy, plon, plat, tree, cell, radius, code, clip) -> Gap:
    import shapely

    step = max(1, len(members) // SITE_CANDIDATES)
    candidates = members[np.argsort(weight[members])[::-1]][::step][:SITE_CANDIDATES]
    reach = tree.query_ball_point(np.column_stack([ux[candidates], uy[candidates]]), radius)
    gains = np.array([float(weight[np.asarray(r, dtype=np.int64)].sum()) for r in reach])
    best = int(candidates[int(np.argmax(gains))])
    site_lon, site_lat = (round(float(v), 6) for v in crs.from_metric(ux[best], uy[best]))
    # what a site at the reported point (6 decimals) newly covers by the coverage's own test (geodesic distance to
    # the demand points), as a scenario adding it counts: the metric ball above only chose the cell
    near = np.asarray(tree.query_ball_point((ux[best], uy[best]), radius * (1 + crs.METRIC_SCALE_ERROR) + cell),
                      dtype=np.int64)
    dist = crs.geodesic_distance_m(np.full(len(near), site_lon), np.full(len(near), site_lat), plon[near], plat[near])
    coverable = float(weight[near][dist <= radius].sum())
    x0, y0 = col[members] * cell, row[members] * cell
    merged = shapely.coverage_union_all(shapely.box(x0, y0, x0 + cell, y0 + cell))
    if clip is not None:
        near = clip.query(merged, predicate="intersects")
        if len(near):
            merged = shapely.difference(merged, shapely.union_all(clip.geometries.take(near)))
    wgs = shapely.transform(merged, lambda xy: np.column_stack(crs.from_metric(xy[:, 0], xy[:, 1])))
    return Gap(geometry=wgs, uncovered=float(weight[members].sum()), cells=int(len(members)),
               area_km2=len(members) * cell * cell / 1e6, districts=(str(code),) if code else (),
               site=(site_lon, site_lat), coverable=coverable)


def _station_discs(facilities, radius: float):
    """An STRtree of METRIC_CRS discs around the stations, a little larger than the radius so every point within
    the geodesic radius is inside (metric distances exceed geodesic ones by at most METRIC_SCALE_ERROR)."""
    import shapely

    lon, lat = (np.asarray(v, float) for v in facilities)
    if not len(lon):
        return None
    x, y = crs.to_metric(lon, lat)
    discs = shapely.buffer(shapely.points(np.asarray(x), np.asarray(y)), radius * (1 + crs.METRIC_SCALE_ERROR) + 1.0,
                           quad_segs=32)
    return shapely.STRtree(discs)
