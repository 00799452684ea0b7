"""Siting: propose new sites (maximal covering, or the fewest reaching a coverage target) — ``POST /api/siting``,
``geoserver plan`` and the planning page's proposed sites.

The instance is built and solved by ``core.planning``; the solver is a registered object
(``geoserver.planning.solvers``). Without radius_m or minutes the catchment is the layer spec's
``catchment_radius_m``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import shapely

from ..core import planning as core_planning
from ..core.districts import resolve_district
from ..core.errors import InvalidQuery, LayerNotFound
from ..core.planning import MAX_K, MAX_TIME_LIMIT_S, PlanResult, SitingRequest
from ..operations import Operation, Param, register
from . import solvers
from .coverage import CATCHMENT, DEMAND, FILTERS, LAYER, catchment_for, point_layer
from .output import sites_collection

_SOLVERS = solvers.load()
SOLVER_NAMES = solvers.choices()


def _districts(param: Param, raw, service):
    if raw is None:
        return None
    names = [n for n in raw.split(",") if n.strip()] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names:
        raise InvalidQuery("districts must be a list of district names or codes", "districts")
    return tuple(_district_code(service, str(n)) for n in names)


def _district_code(service, name: str) -> str:
    code = resolve_district(service.layer("districts"), name)
    if code is None:
        raise InvalidQuery(f"unknown district {name[:40]!r}", "districts")
    return code


def _polygon(param: Param, raw, service):
    if raw is None:
        return None
    try:
        geom = shapely.geometry.shape(raw.get("geometry", raw) if isinstance(raw, dict) else raw)
    except (AttributeError, TypeError, ValueError, KeyError, shapely.errors.GEOSException):
        raise InvalidQuery("polygon must be a GeoJSON Polygon or MultiPolygon in WGS84", "polygon") from None
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty or not geom.is_valid:
        raise InvalidQuery("polygon must be a valid, non-empty GeoJSON Polygon or MultiPolygon", "polygon")
    return geom


def _solver_message() -> str:
    labels = [f"{name} ({_SOLVERS[name].label})" for name in SOLVER_NAMES]
    return "solver must be " + (labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}")


PARAMS = (
    LAYER,
    Param("k", "int", "Number of new sites (or give target_pct)", "新站点数量", minimum=1, maximum=MAX_K),
    Param("target_pct", "float", "Instead of k: the fewest sites reaching this city-wide coverage", "目标覆盖率",
          unit="%", minimum=0, exclusive_minimum=True, maximum=100),
    *CATCHMENT, *FILTERS, *DEMAND,
    Param("area", "enum", "Planning area when neither districts nor polygon is given", "规划范围",
          default="suburban", choices=("suburban", "all"),
          message="area must be suburban or all (or give districts or polygon)"),
    Param("districts", "list", "Plan inside these districts (names, codes or English names, comma-separated)",
          "区", parser=_districts),
    Param("polygon", "geojson", "Plan inside this GeoJSON Polygon or MultiPolygon (WGS84)", "多边形",
          parser=_polygon, cli=False),
    Param("candidates", "enum", "Candidate sites: a regular grid, the points of candidate_layer, or both", "候选点",
          default="grid", choices=("grid", "layer", "both")),
    Param("candidate_layer", "str", "Point layer of possible hosts (with candidates=layer or both)", "候选图层"),
    Param("spacing_m", "float", "Candidate grid spacing", "候选网格间距", unit="m",
          default_text="automatic, at least 500 m", minimum=100, maximum=10_000),
    Param("solver", "enum", "; ".join(f"{n}: {_SOLVERS[n].description}" for n in SOLVER_NAMES), "求解器",
          default=SOLVER_NAMES[0], choices=SOLVER_NAMES, message=_solver_message()),
    Param("time_limit_s", "float", "Longest solver run", "时间上限", unit="s", default=60.0, minimum=1,
          maximum=MAX_TIME_LIMIT_S),
    Param("async", "bool", "Run as a background job even when it would be quick", "后台运行", default=False,
          cli=False),
)


@dataclass(frozen=True)
class SitingAnswer:
    """A solved siting request: summary, proposed sites and before/after per district."""

    plan: PlanResult
    districts: tuple

    def to_dict(self) -> dict:
        return {"summary": self.plan.summary(), "sites": sites_collection(self.plan.sites),
                "districts": list(self.districts)}

    def to_geojson(self) -> dict:
        return sites_collection(self.plan.sites)


class Siting(Operation):
    name = "siting"
    summary = "Propose new sites covering the most people not yet covered (existing facilities fixed)"
    what = "field"
    body_example = '{"layer": "stations", "k": 20, "radius_m": 1000}'
    params = PARAMS

    def parse(self, mapping: Mapping, service=None) -> SitingRequest:
        self.check_known(mapping)
        # checked in this order, so the first problem named is the one a person would fix first
        layer_id = self.param("layer").parse(mapping.get("layer"), service) or "stations"
        layer = point_layer(service, layer_id)
        if (mapping.get("k") is None) == (mapping.get("target_pct") is None):
            raise InvalidQuery("give either k (number of new sites) or target_pct (coverage to reach), not both", "k")
        values = {p.attr: p.parse(mapping.get(p.name), service) for p in self.params if p.name != "layer"}
        return self.build({**values, "layer": layer.spec.id}, service)

    def build(self, values: dict, service) -> SitingRequest:
        layer = point_layer(service, values["layer"])
        catchment = catchment_for(service, layer, values)
        if values["polygon"] is not None:
            area, districts = "polygon", ()
        elif values["districts"] is not None:
            area, districts = "districts", values["districts"]
        else:
            area, districts = values["area"], ()
        candidates = values["candidates"] or "grid"
        candidate_layer = values["candidate_layer"]
        if candidates != "grid":
            if not candidate_layer:
                raise InvalidQuery("candidates=layer or both needs candidate_layer (a point layer id)",
                                   "candidate_layer")
            try:
                service.point_layer(candidate_layer)
            except (LayerNotFound, InvalidQuery) as exc:
                raise InvalidQuery(exc.message, "candidate_layer") from None
        target = values["target_pct"]
        return SitingRequest(layer=layer.spec.id, catchment=catchment, k=values["k"],
                             target_fraction=None if target is None else target / 100.0, area=area,
                             districts=districts, polygon=values["polygon"], candidates=candidates,
                             candidate_layer=candidate_layer or None, spacing_m=values["spacing_m"],
                             solver=values["solver"], time_limit_s=values["time_limit_s"],
                             services=values["services"], open_at=values["open_at"],
                             demand=values["demand"] or "grid", cell_m=values["cell_m"],
                             weight_column=values["weight_column"])

    def problem(self, service, request: SitingRequest) -> core_planning.Problem:
        """The MCLP instance (demand, coverage before, candidates, coverage matrix); refused here if too large."""
        return core_planning.build_problem(service, request)

    def estimate_s(self, problem) -> float:
        return core_planning.estimate_seconds(problem)

    def solve(self, service, problem, progress=None, cancel=None, time_limit_s: float | None = None) -> PlanResult:
        """Solve with the request's solver; ``time_limit_s`` lowers the request's own limit (answers given at
        once stop by then)."""
        if time_limit_s is not None and time_limit_s < problem.request.time_limit_s:
            problem = replace(problem, request=replace(problem.request, time_limit_s=time_limit_s))
        return core_planning.solve(service, problem, progress=progress, cancel=cancel,
                                   solver=solvers.get(problem.request.solver))

    def answer(self, service, plan: PlanResult) -> SitingAnswer:
        return SitingAnswer(plan, tuple(plan.district_rows(service)))

    def run(self, service, request: SitingRequest, progress=None, cancel=None) -> SitingAnswer:
        return self.answer(service, self.solve(service, self.problem(service, request), progress, cancel))


SITING = register(Siting())


def parse_siting_request(body: Mapping, service) -> SitingRequest:
    """A siting request from a JSON body or CLI options (``SITING.parse``)."""
    return SITING.parse(body, service)
