"""Planning endpoints: coverage by district and the gaps (uncovered areas) a layer leaves (routing only: the
operations are declared in geoserver/planning/coverage.py)."""

from __future__ import annotations

import orjson
from flask import Blueprint, current_app, request

from ..planning.coverage import COVERAGE, GAPS
from ..planning.scenario import SCENARIO
from .http import GEOJSON, check_params, json_body, json_response

bp = Blueprint("analysis", __name__)


def coverage_body(svc, args: dict) -> bytes:
    """The /api/coverage answer (JSON bytes) for plain query arguments; runs in a planning process."""
    return orjson.dumps(COVERAGE(svc, args).to_dict())


def gaps_body(svc, args: dict) -> bytes:
    """The /api/coverage/gaps answer (GeoJSON bytes); runs in a planning process."""
    return orjson.dumps(GAPS(svc, args).to_geojson())


def planning(op: str):
    """Run a planning operation for this request's query arguments through the worker's planning pool."""
    from .heavy import client_of
    return current_app.extensions["planning"].run(op, request.args.to_dict(), client_of(request))


@bp.get("/api/coverage")
def coverage():
    check_params(COVERAGE.http_names)
    return json_response(planning("coverage"), cache="no-cache")


@bp.get("/api/coverage/gaps")
def gaps():
    check_params(GAPS.http_names)
    return json_response(planning("gaps"), content_type=GEOJSON, cache="no-cache")


def scenario_body(svc, body: dict) -> bytes:
    """The /api/coverage/scenario answer (JSON bytes) for a JSON body; runs in a planning process."""
    return orjson.dumps(SCENARIO(svc, body).to_dict())


@bp.post("/api/coverage/scenario")
def scenario():
    """What if: coverage before and after adding sites, removing or moving stations (geoserver/planning/scenario.py)."""
    from .heavy import client_of
    body = json_body()
    SCENARIO.parse(body, current_app.extensions["geoservice"])   # a bad request is refused before it takes a slot
    return json_response(current_app.extensions["planning"].run("scenario", body, client_of(request)),
                         cache="no-store")
