"""Coverage of demand by a facility layer (``/api/coverage``, ``geoserver report coverage``), the gaps it leaves
(``/api/coverage/gaps``) and the planning page's inputs (``/planning``).

The catchment defaults to the layer spec's ``catchment_radius_m`` when neither ``radius_m`` nor ``minutes`` is
given, the same in every entry point.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..core import query as q
from ..core.catchment_query import parse_catchment
from ..core.coverage import MAX_MINUTES, MAX_RADIUS_M, SPEEDS_KMH, Catchment, demand_sensitivity
from ..core.demand import MAX_CELL_M, MIN_CELL_M
from ..core.errors import InvalidQuery, LayerNotFound
from ..operations import Operation, Param, register
from .output import gaps_collection

MAX_GAPS = 1000
MAX_PAGE_K = 50
DEFAULT_RADIUS_TEXT = "the layer spec's catchment_radius_m (stations: 1000 m)"


def _services(param: Param, raw, service) -> tuple[str, ...]:
    if isinstance(raw, list):
        raw = ",".join(str(s) for s in raw)
    return q.service_list(q.text({param.name: raw}, param.name), service.vocab, param.name)


CATCHMENT = (
    Param("radius_m", "float", "Straight-line (geodesic) catchment radius", "服务半径", unit="m",
          default_text=DEFAULT_RADIUS_TEXT, minimum=0, exclusive_minimum=True, maximum=MAX_RADIUS_M),
    Param("minutes", "float", "Travel-time catchment instead of radius_m (with mode)", "出行时间", unit="min",
          minimum=0, exclusive_minimum=True, maximum=MAX_MINUTES),
    Param("mode", "enum", "Travel mode for minutes (and for a road network)", "出行方式", choices=tuple(SPEEDS_KMH),
          message=f"mode must be one of {', '.join(SPEEDS_KMH)} with minutes"),
    Param("speed_kmh", "float", "Travel speed overriding the mode's (walk 4.5, ebike 15, car 25)", "速度",
          unit="km/h", minimum=0, exclusive_minimum=True, maximum=150),
    Param("detour", "float", "Detour factor of long trips (road distance / straight line)", "绕行系数",
          default_text=f"{Catchment.detour_long:g}", minimum=1, maximum=3,
          message="detour factors must satisfy 1 <= detour <= detour_short <= 4"),
    Param("detour_short", "float", "Detour factor of short trips", "短途绕行系数",
          default_text=f"{Catchment.detour_short:g}", minimum=1, maximum=4,
          message="detour factors must satisfy 1 <= detour <= detour_short <= 4"),
)
FILTERS = (
    Param("services", "list", "Only facilities offering all these services (comma-separated ids or labels)",
          "所需服务", parser=_services),
    Param("open_at", "datetime", "Only facilities open at this time (ISO 8601; naive = Shanghai time)", "开放时间"),
)
DEMAND = (
    Param("demand", "str", "Demand layer: grid (the census model) or a file name in <data dir>/demand/", "需求",
          default="grid"),
    Param("cell_m", "float", "Demand grid cell size", "网格大小", unit="m", default=200.0, minimum=MIN_CELL_M,
          maximum=MAX_CELL_M, message=f"cell_m must be between {MIN_CELL_M:g} and {MAX_CELL_M:g} metres"),
    Param("weight_column", "str", "Weight column of a demand file (default: population, orders, ...)", "权重列"),
)
LAYER = Param("layer", "str", "Facility (point) layer", "设施图层", default="stations")
NETWORK = Param("network", "str", "Road network (an OpenStreetMap extract in <data dir>/networks/) for road "
                "distances, with mode", "路网")
COVERAGE_PARAMS = (LAYER, *CATCHMENT, *FILTERS, *DEMAND, NETWORK)


def point_layer(service, layer_id: str, parameter: str = "layer"):
    try:
        return service.point_layer(layer_id)
    except LayerNotFound as exc:
        raise InvalidQuery(exc.message, parameter) from None


def catchment_for(service, layer, values: dict, network=None, network_name: str | None = None) -> Catchment:
    """The catchment of parsed values; without radius_m or minutes, the layer spec's catchment_radius_m."""
    return parse_catchment(values, default_radius_m=layer.spec.catchment_radius_m, network=network,
                           network_name=network_name)


@dataclass(frozen=True)
class CoverageRequest:
    layer: str
    catchment: Catchment
    services: tuple[str, ...] = ()
    open_at: object | None = None
    demand: str = "grid"
    cell_m: float = 200.0
    weight_column: str | None = None


@dataclass(frozen=True)
class CoverageAnswer:
    """A coverage result with what its JSON form needs (district rows, sample flag, run time)."""

    result: object              # core.coverage.CoverageResult
    districts: tuple
    sample_data: bool
    runtime_s: float
    sensitivity: dict | None = None     # demand_sensitivity(): the covered share under other demand models

    def describe(self) -> dict:
        result, c = self.result, self.result.catchment
        return {
            "layer": result.layer, "facilities": result.facilities, "filters": result.filters,
            "catchment": {"radius_m": c.radius_m, "minutes": c.minutes, "mode": c.mode,
                          "travel_m": round(c.travel_m, 1), "straight_radius_m": round(c.straight_radius_m, 1),
                          "method": c.describe()},
            "demand": {"name": result.demand.name, "points": result.demand.size,
                       "total": round(result.demand.total, 1), "cell_m": result.demand.cell_m,
                       "model": result.demand.description},
            "sample_data": self.sample_data,
            "runtime_ms": round(self.runtime_s * 1000, 1),
        }

    def to_dict(self) -> dict:
        return {**self.describe(), "totals": self.result.totals(), "districts": list(self.districts),
                "demand_sensitivity": self.sensitivity, "warnings": self.result.warnings()}


class Coverage(Operation):
    name = "coverage"
    summary = "Covered and uncovered demand (people and %) per district and city-wide"
    what = "query parameter"
    params = COVERAGE_PARAMS

    def build(self, values: dict, service) -> CoverageRequest:
        layer = point_layer(service, values["layer"] or "stations")
        network_name = values["network"]
        network = service.network(network_name, values["mode"] or "") if network_name else None
        catchment = catchment_for(service, layer, values, network, network_name)
        return CoverageRequest(layer=layer.spec.id, catchment=catchment, services=values["services"],
                               open_at=values["open_at"], demand=values["demand"] or "grid", cell_m=values["cell_m"],
                               weight_column=values["weight_column"])

    def result(self, service, request: CoverageRequest):
        """The core CoverageResult (cached by the service)."""
        demand = service.demand(request.demand, request.cell_m, request.weight_column)
        return service.coverage(request.layer, request.catchment, demand, request.services, request.open_at)

    def run(self, service, request: CoverageRequest) -> CoverageAnswer:
        started = time.perf_counter()
        result = self.result(service, request)
        rows = tuple(result.by_district(service.layer("districts")))
        return CoverageAnswer(result, rows, service.layer(request.layer).has_sample_data,
                              time.perf_counter() - started, demand_sensitivity(service, result))


@dataclass(frozen=True)
class GapsRequest:
    coverage: CoverageRequest
    limit: int = 50
    min_uncovered: float = 0.0


@dataclass(frozen=True)
class GapsAnswer:
    coverage: CoverageAnswer
    collection: dict            # the ranked gaps (first ``limit``) as a FeatureCollection
    matched: int

    def to_geojson(self) -> dict:
        features = self.collection["features"]
        return {"type": "FeatureCollection", "features": features, "numberMatched": self.matched,
                "numberReturned": len(features), "totals": self.coverage.result.totals(),
                **self.coverage.describe()}

    to_dict = to_geojson


class Gaps(Operation):
    name = "gaps"
    summary = "Uncovered areas (edge-sharing demand cells merged, per district), ranked by uncovered people"
    what = "query parameter"
    params = (*COVERAGE_PARAMS,
              Param("limit", "int", "How many gaps to return (larger values are served as the maximum)", "数量",
                    default=50, minimum=1, maximum=MAX_GAPS, clamp=True, empty_is_absent=False),
              Param("min_uncovered", "float", "Only gaps with at least this many uncovered people", "最少未覆盖人数",
                    unit="people", default=0.0, minimum=0))

    def build(self, values: dict, service) -> GapsRequest:
        return GapsRequest(COVERAGE.build(values, service), values["limit"], values["min_uncovered"])

    def run(self, service, request: GapsRequest) -> GapsAnswer:
        started = time.perf_counter()
        result = COVERAGE.result(service, request.coverage)
        found = service.gaps(result, request.min_uncovered)
        collection = gaps_collection(service, found, request.limit)
        answer = CoverageAnswer(result, (), service.layer(request.coverage.layer).has_sample_data,
                                time.perf_counter() - started)
        return GapsAnswer(answer, collection, len(found))


@dataclass(frozen=True)
class PlanningPageRequest:
    coverage: CoverageRequest
    k: int
    siting: object | None       # core.planning.SitingRequest when k > 0


@dataclass(frozen=True)
class PlanningPageAnswer:
    """What the planning map shows: coverage, its gaps and (k > 0) the proposed sites."""

    result: object
    gaps: tuple
    plan: object | None         # core.planning.PlanResult


class PlanningPage(Operation):
    name = "planning_page"
    summary = "The interactive planning map: coverage by district, gaps and k proposed sites (fast solver)"
    what = "query parameter"
    params = (*COVERAGE_PARAMS,
              Param("k", "int", "Proposed new sites to show (0: none)", "新站点数量", default=10, minimum=0,
                    maximum=MAX_PAGE_K, empty_is_absent=False))

    def parse(self, mapping, service=None) -> PlanningPageRequest:
        from .siting import SITING

        values = self.values(mapping, service)
        cov = COVERAGE.build(values, service)
        siting = None
        if values["k"]:
            if cov.catchment.network is not None:
                raise InvalidQuery("the planning page proposes sites with straight-line catchments; drop network",
                                   "network")
            body = {p.name: mapping[p.name] for p in (LAYER, *CATCHMENT[:4], *FILTERS, *DEMAND[:2])
                    if mapping.get(p.name) not in (None, "")}
            siting = SITING.parse({**body, "k": values["k"]}, service)
        return PlanningPageRequest(cov, values["k"], siting)

    def run(self, service, request: PlanningPageRequest) -> PlanningPageAnswer:
        from .siting import SITING

        result = COVERAGE.result(service, request.coverage)
        gaps = service.gaps(result)
        plan = None
        if request.siting is not None:
            plan = service.cached(("page-plan", request.siting),
                                  lambda: SITING.solve(service, SITING.problem(service, request.siting)))
        return PlanningPageAnswer(result, tuple(gaps), plan)


COVERAGE = register(Coverage())
GAPS = register(Gaps())
PLANNING_PAGE = register(PlanningPage())
