"""Planning endpoints: coverage by district and the gaps (uncovered areas) a layer leaves."""

from __future__ import annotations

import time

import orjson
import shapely
from flask import Blueprint, current_app, request

from ..core import query as q
from ..core.catchment_query import COVERAGE_PARAMS, parse_catchment, parse_filters
from ..core.data import COORD_DECIMALS
from ..core.errors import InvalidQuery, LayerNotFound
from .http import GEOJSON, check_params, json_response

bp = Blueprint("analysis", __name__)

MAX_GAPS = 1000


def service():
    return current_app.extensions["geoservice"]


def coverage_from_args(svc, args):
    """Validated inputs → (layer, CoverageResult); shared by /api/coverage, /api/coverage/gaps and /planning."""
    layer_id = q.text(args, "layer", "stations") or "stations"
    try:
        layer = svc.point_layer(layer_id)
    except LayerNotFound as exc:
        raise InvalidQuery(exc.message, "layer") from None
    network_name = q.text(args, "network")
    network = svc.network(network_name, q.text(args, "mode") or "") if network_name else None
    catchment = parse_catchment(args, default_radius_m=None, network=network, network_name=network_name)
    services, open_at = parse_filters(args, svc.vocab)
    cell_m = q.number(q.text(args, "cell_m", "200"), "cell_m")
    demand = svc.demand(q.text(args, "demand", "grid"), cell_m, q.text(args, "weight_column"))
    return layer, svc.coverage(layer.spec.id, catchment, demand, services, open_at)


def describe(result, layer, runtime_s: float) -> dict:
    c = result.catchment
    return {
        "layer": layer.spec.id, "facilities": result.facilities, "filters": result.filters,
        "catchment": {"radius_m": c.radius_m, "minutes": c.minutes, "mode": c.mode,
                      "travel_m": round(c.travel_m, 1), "straight_radius_m": round(c.straight_radius_m, 1),
                      "method": c.describe()},
        "demand": {"name": result.demand.name, "points": result.demand.size, "total": round(result.demand.total, 1),
                   "cell_m": result.demand.cell_m, "model": result.demand.description},
        "sample_data": layer.has_sample_data,
        "runtime_ms": round(runtime_s * 1000, 1),
    }


def coverage_body(svc, args: dict) -> bytes:
    """The /api/coverage answer (JSON bytes) for plain query arguments; runs in a planning process."""
    started = time.perf_counter()
    layer, result = coverage_from_args(svc, args)
    body = describe(result, layer, time.perf_counter() - started)
    body["totals"] = result.totals()
    body["districts"] = result.by_district(svc.layer("districts"))
    return orjson.dumps(body)


def gaps_body(svc, args: dict) -> bytes:
    """The /api/coverage/gaps answer (GeoJSON bytes); runs in a planning process."""
    started = time.perf_counter()
    limit = q.integer(q.text(args, "limit", "50"), "limit", 1, MAX_GAPS, clamp=True)
    min_uncovered = q.number(q.text(args, "min_uncovered", "0"), "min_uncovered")
    layer, result = coverage_from_args(svc, args)
    found = svc.gaps(result, min_uncovered)
    names = {p["id"]: p["name"] for p in svc.layer("districts").properties}
    features = []
    for rank, gap in enumerate(found[:limit], start=1):
        geom = shapely.transform(gap.geometry, lambda xy: xy.round(COORD_DECIMALS))
        features.append({"type": "Feature", "id": f"gap-{rank}", "geometry": shapely.geometry.mapping(geom),
                         "properties": {"rank": rank, "uncovered": round(gap.uncovered, 1), "cells": gap.cells,
                                        "area_km2": round(gap.area_km2, 3), "district_codes": list(gap.districts),
                                        "districts": [names.get(c, c) for c in gap.districts]}})
    body = {"type": "FeatureCollection", "features": features, "numberMatched": len(found),
            "numberReturned": len(features), "totals": result.totals(),
            **describe(result, layer, time.perf_counter() - started)}
    return orjson.dumps(body)


def planning(op: str):
    """Run a planning operation for this request's query arguments through the worker's planning pool."""
    from .heavy import client_of
    return current_app.extensions["planning"].run(op, request.args.to_dict(), client_of(request))


@bp.get("/api/coverage")
def coverage():
    check_params(COVERAGE_PARAMS)
    return json_response(planning("coverage"), cache="no-cache")


@bp.get("/api/coverage/gaps")
def gaps():
    check_params(COVERAGE_PARAMS | {"limit", "min_uncovered"})
    return json_response(planning("gaps"), content_type=GEOJSON, cache="no-cache")
