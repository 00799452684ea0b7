"""Live what-if (``POST /api/coverage/scenario``): coverage before and after adding sites, removing stations or
moving them, city-wide and per district, computed incrementally from the cached coverage (core/scenario.py).

Body: ``{"layer": "stations", "radius_m": 1000, "add": [[121.1, 31.0], ...], "remove": ["ST00012"],
"move": [{"id": "ST00040", "to": [121.2, 31.1]}], "crs": "wgs84"}`` and the catchment, filter and demand fields of
``/api/coverage``. Coordinates of ``add`` and ``move`` are in ``crs`` (wgs84, gcj02 for Amap, bd09 for Baidu).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..core import query as q
from ..core.districts import assign_districts, name_by_code
from ..core.errors import InvalidQuery
from ..core.coverage import facility_positions
from ..core.scenario import MAX_CHANGES, Change, demand_tree, run_scenario
from ..operations import Operation, Param, register
from .coverage import CATCHMENT, DEMAND, FILTERS, LAYER


def _pairs(param: Param, raw, service) -> tuple:
    """A list of [lon, lat] (or {"lon", "lat"}) kept as given; checked against the datum in ``build``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidQuery(f"{param.name} must be a list of [lon, lat] points", param.name)
    if len(raw) > MAX_CHANGES:
        raise InvalidQuery(f"at most {MAX_CHANGES} points in {param.name}, got {len(raw)}", param.name)
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and set(item) <= {"lon", "lat"}:
            item = [item.get("lon"), item.get("lat")]
        if not isinstance(item, list) or len(item) != 2:
            raise InvalidQuery(f"{param.name}[{i}] must be [lon, lat]", param.name)
        out.append(tuple(item))
    return tuple(out)


def _ids(param: Param, raw, service) -> tuple:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [s for s in raw.split(",") if s.strip()]
    if not isinstance(raw, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in raw):
        raise InvalidQuery(f"{param.name} must be a list of feature ids", param.name)
    if len(raw) > MAX_CHANGES:
        raise InvalidQuery(f"at most {MAX_CHANGES} ids in {param.name}, got {len(raw)}", param.name)
    return tuple(dict.fromkeys(str(v).strip() for v in raw))


def _moves(param: Param, raw, service) -> tuple:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidQuery('move must be a list of {"id": ..., "to": [lon, lat]}', "move")
    if len(raw) > MAX_CHANGES:
        raise InvalidQuery(f"at most {MAX_CHANGES} moves, got {len(raw)}", "move")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"id", "to"} or not isinstance(item["to"], list) \
                or len(item["to"]) != 2 or not isinstance(item["id"], (str, int)):
            raise InvalidQuery(f'move[{i}] must be {{"id": ..., "to": [lon, lat]}}', "move")
        out.append((str(item["id"]).strip(), tuple(item["to"])))
    return tuple(out)


PARAMS = (
    LAYER, *CATCHMENT, *FILTERS, *DEMAND[:2],
    Param("add", "list", "New sites: a list of [lon, lat] in crs", "新增站点", parser=_pairs, cli=False),
    Param("remove", "list", "Ids of stations to take away", "撤除站点", parser=_ids, cli=False),
    Param("move", "list", 'Stations to move: a list of {"id": ..., "to": [lon, lat]} (to in crs)', "迁移站点",
          parser=_moves, cli=False),
    Param("crs", "enum", "Coordinate system of add and move (and of the sites in the answer)", "坐标系",
          default="wgs84", choices=("wgs84", "gcj02", "bd09")),
)


@dataclass(frozen=True)
class ScenarioRequest:
    coverage: object            # planning.coverage.CoverageRequest
    add: tuple                  # ((lon, lat) as given, (wgs84 lon, lat), kind, moved id or None), ...
    remove: tuple               # ids taken away (moved ones included)
    datum: str


@dataclass(frozen=True)
class ScenarioAnswer:
    result: object              # core.scenario.ScenarioResult
    request: ScenarioRequest
    sites: tuple
    removed: tuple
    districts: tuple
    describe: dict
    runtime_s: float

    def to_dict(self) -> dict:
        return {**self.describe, "totals": self.result.totals(), "sites": list(self.sites),
                "removed": list(self.removed), "districts": list(self.districts),
                "runtime_ms": round(self.runtime_s * 1000, 1)}


class Scenario(Operation):
    name = "scenario"
    summary = "What if: coverage before and after adding sites, removing or moving stations (incremental)"
    what = "field"
    body_example = '{"layer": "stations", "radius_m": 1000, "add": [[121.25, 31.05]], "remove": ["ST00012"]}'
    params = PARAMS

    def build(self, values: dict, service) -> ScenarioRequest:
        from .coverage import COVERAGE

        # the coverage before, exactly as /api/coverage would read these fields (no network, grid or file demand)
        cov = COVERAGE.build({**values, "network": None, "weight_column": None}, service)
        layer = service.point_layer(cov.layer)
        datum = values["crs"] or "wgs84"
        add = []
        for i, (lon, lat) in enumerate(values["add"]):
            add.append(((lon, lat), self._point(lon, lat, datum, f"add[{i}]"), "add", None))
        remove = list(values["remove"])
        for i, (fid, (lon, lat)) in enumerate(values["move"]):
            if fid in remove:
                raise InvalidQuery(f"station {fid!r} is both removed and moved; give it once", "move")
            remove.append(fid)
            add.append(((lon, lat), self._point(lon, lat, datum, f"move[{i}].to"), "move", fid))
        for fid in remove:
            if layer.position(fid) is None:
                raise InvalidQuery(f"layer {layer.spec.id!r} has no station {fid[:60]!r}", "remove")
        if not add and not remove:
            raise InvalidQuery("nothing to try: give add, remove or move", "add")
        return ScenarioRequest(cov, tuple(add), tuple(dict.fromkeys(remove)), datum)

    @staticmethod
    def _point(lon, lat, datum: str, where: str) -> tuple[float, float]:
        try:
            return q.point(lon, lat, datum)
        except InvalidQuery as exc:
            raise InvalidQuery(f"{where}: {exc.message}", where.split("[")[0]) from None

    def run(self, service, request: ScenarioRequest) -> ScenarioAnswer:
        from .coverage import COVERAGE, CoverageAnswer

        started = time.perf_counter()
        cov = request.coverage
        before = COVERAGE.result(service, cov)
        layer = service.point_layer(cov.layer)
        positions, _ = facility_positions(service, layer, cov.services, cov.open_at)
        demand = before.demand
        tree = service.cached(("demand-tree", demand.name, demand.cell_m, demand.size), lambda: demand_tree(demand))
        removed = np.array([layer.position(fid) for fid in request.remove], dtype=np.int64)
        wgs = np.array([a[1] for a in request.add], dtype=float).reshape(-1, 2)
        change = Change(wgs[:, 0], wgs[:, 1], removed, tuple(a[2] for a in request.add))
        result = run_scenario(before, positions, layer.index.lon[positions], layer.index.lat[positions], change, tree)

        districts = service.layer("districts")
        names = name_by_code(districts)
        codes = assign_districts(districts, wgs[:, 0], wgs[:, 1]) if len(wgs) else []
        sites = tuple({"kind": kind, "id": moved, "lon": given[0], "lat": given[1], "district_code": str(code or ""),
                       "district": names.get(str(code), ""), "newly_covered": round(float(gain), 1)}
                      for (given, _, kind, moved), code, gain in zip(request.add, codes, result.added_cover))
        moved = {a[3] for a in request.add if a[3] is not None}
        removed_rows = tuple({"id": fid, "name": layer.properties[pos].get("name"),
                              "district": layer.properties[pos].get("district"), "moved": fid in moved,
                              "no_longer_covered": round(float(loss), 1)}
                             for fid, pos, loss in zip(request.remove, removed.tolist(), result.removed_loss))
        describe = CoverageAnswer(before, (), layer.has_sample_data, 0.0).describe()
        describe.pop("runtime_ms", None)
        describe["crs"] = request.datum
        return ScenarioAnswer(result, request, sites, removed_rows, tuple(result.by_district(districts)), describe,
                              time.perf_counter() - started)


SCENARIO = register(Scenario())


#: Keys of a scenario's description that the plan report's executive summary reads (the removed stations).
REMOVED_KEY = "移除站点 stations removed"
LOST_KEY = "不再覆盖 no longer covered"


def scenario_file_body(saved: dict) -> dict:
    """The scenario body of a file saved by the planning tool (``{"name", "params": {...}, "add", "remove"}``)
    or of a plain scenario body; anything else is refused with what is missing."""
    if not isinstance(saved, dict):
        raise InvalidQuery("a scenario file is a JSON object with params, add and remove", "file")
    params = saved.get("params", {})
    if not isinstance(params, dict):
        raise InvalidQuery("params must be an object (layer, radius_m or minutes and mode, services)", "params")
    body = {k: v for k, v in params.items() if v not in (None, "")}
    for key in ("add", "remove", "move", "crs", *(p.name for p in PARAMS if p.name in saved and p.name != "name")):
        if key in saved:
            body[key] = saved[key]
    return body


def scenario_report_inputs(service, body: dict):
    """What a plan report needs for a scenario: the coverage before and after (computed in full), the added sites
    as a GeoDataFrame (rank, new_coverage, district, lon, lat) and a description of the scenario."""
    import geopandas as gpd
    import pandas as pd

    from ..core.scenario import coverage_with_changes
    from .coverage import COVERAGE

    request = SCENARIO.parse(body, service)
    answer = SCENARIO.run(service, request)
    before = COVERAGE.result(service, request.coverage)
    layer = service.point_layer(request.coverage.layer)
    positions, _ = facility_positions(service, layer, request.coverage.services, request.coverage.open_at)
    after = coverage_with_changes(before, layer.index.lon[positions], layer.index.lat[positions], positions,
                                  answer.result.change)
    frame = pd.DataFrame([{"rank": i, "new_coverage": s["newly_covered"], "district": s["district_code"],
                           "lon": wgs[0], "lat": wgs[1], "kind": s["kind"], "moved_id": s["id"]}
                          for i, (s, (_, wgs, _, _)) in enumerate(zip(answer.sites, request.add), start=1)],
                         columns=["rank", "new_coverage", "district", "lon", "lat", "kind", "moved_id"])
    sites = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")
    t = answer.result.totals()
    info = {"情景 scenario": "what-if (sites placed by hand, not optimised)",
            "新增站点 sites added": sum(1 for a in request.add if a[2] == "add"),
            REMOVED_KEY: ", ".join(f"{r['name']} ({r['id']})" for r in answer.removed
                                              if not r["moved"]) or "—",
            "迁移站点 stations moved": ", ".join(r["id"] for r in answer.removed if r["moved"]) or "—",
            "新增覆盖 newly covered": t["newly_covered"], LOST_KEY: t["no_longer_covered"],
            "covered_before_pct": t["covered_before_pct"], "covered_after_pct": t["covered_after_pct"]}
    return before, after, sites, info, answer


__all__ = ["SCENARIO", "scenario_file_body", "scenario_report_inputs", "REMOVED_KEY", "LOST_KEY"]
