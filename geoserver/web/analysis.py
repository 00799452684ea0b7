"""Planning endpoints: coverage by district and the gaps (uncovered areas) a layer leaves (routing only: the
operations are declared in geoserver/planning/coverage.py)."""

from __future__ import annotations

import orjson
from flask import Blueprint, Response, current_app, request

from ..core.errors import InvalidQuery
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


#: Longest scenario name kept for the report's title and the file name.
MAX_REPORT_NAME = 60


def scenario_report_zip(svc, payload: dict) -> bytes:
    """A scenario's planning report (report.html, report.pdf, CSV, GeoJSON, summary.json) as a zip archive (bytes);
    runs in a planning process. Written into a private temporary folder, removed afterwards."""
    import io
    import tempfile
    import zipfile
    from pathlib import Path

    from ..planning.scenario import scenario_report_inputs
    from ..render.report import write_plan_report

    before, after, sites, info, _ = scenario_report_inputs(svc, payload["body"])
    name = payload["name"]
    title = f"情景规划报告 Scenario report — {name}" if name else None
    with tempfile.TemporaryDirectory(prefix="scenario-report-") as tmp:
        paths = write_plan_report(Path(tmp) / "report", svc, before, after, sites, info, title=title,
                                  tiles=payload.get("tiles"))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file_name, path in paths.items():
                archive.write(path, f"scenario-report/{file_name}")
        return buffer.getvalue()


@bp.post("/api/coverage/scenario/report")
def scenario_report():
    """A scenario turned into the planning report: the scenario body (as for /api/coverage/scenario, plus an
    optional "name") -> a zip of report.html, report.pdf, districts CSVs, gaps and sites GeoJSON, summary.json."""
    from .heavy import client_of
    body = dict(json_body())
    name = body.pop("name", None)
    if name is not None and (not isinstance(name, str) or len(name) > MAX_REPORT_NAME):
        raise InvalidQuery(f"name must be text of at most {MAX_REPORT_NAME} characters", "name")
    SCENARIO.parse(body, current_app.extensions["geoservice"])   # a bad request is refused before it takes a slot
    from .pages import tiles_config
    payload = {"body": body, "name": (name or "").strip(), "tiles": tiles_config()}   # the planning page's base map
    data = current_app.extensions["planning"].run("scenario_report", payload, client_of(request))
    return Response(data, content_type="application/zip", headers={
        "Cache-Control": "no-store", "Content-Disposition": 'attachment; filename="scenario-report.zip"'})
