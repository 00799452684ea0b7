"""Siting endpoints: propose new sites (MCLP), answering at once or through a cancellable background job."""

from __future__ import annotations

import threading
import time

from flask import Blueprint, current_app, request, url_for

from ..core.errors import FeatureNotFound, GeoServerError
from ..core.jobs import JobStore
from ..core.planning import build_problem, estimate_seconds, parse_siting_request, solve
from .http import json_response

bp = Blueprint("siting", __name__)

SYNC_MAX_S = 10.0
MAX_JOB_S = 900.0


def service():
    return current_app.extensions["geoservice"]


def jobs() -> JobStore:
    return current_app.extensions["jobs"]


def plan_body(svc, plan) -> dict:
    """The JSON answer: summary, proposed sites (GeoJSON) and before/after per district."""
    features = [{"type": "Feature", "id": s["candidate_id"], "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]},
                 "properties": s} for s in plan.sites]
    return {"summary": plan.summary(),
            "sites": {"type": "FeatureCollection", "features": features},
            "districts": plan.district_rows(svc)}


@bp.post("/api/siting")
def siting():
    svc = service()
    body = request.get_json(force=True, silent=True)
    req = parse_siting_request(body, svc)
    problem = build_problem(svc, req)
    estimate = estimate_seconds(problem)
    if estimate > MAX_JOB_S:
        return json_response({"code": "TooLarge", "parameter": "k",
                              "description": f"this request would take about {estimate:,.0f} s, more than the "
                                             f"{MAX_JOB_S:g} s this server allows; narrow the area, raise spacing_m "
                                             "or use the fast solver"}, status=400, cache="no-store")
    if estimate <= SYNC_MAX_S and not body.get("async"):
        return json_response(plan_body(svc, solve(svc, problem)), cache="no-store")
    store = jobs()
    job_id = store.create("siting", {"layer": req.layer, "k": req.k, "solver": req.solver,
                                     "estimate_s": round(estimate, 1), "candidates": problem.candidates.size})
    app = current_app._get_current_object()
    threading.Thread(target=_run_job, args=(app, svc, store, job_id, problem), daemon=True).start()
    url = url_for("siting.job", job_id=job_id)
    return json_response({"job_id": job_id, "state": "running", "status_url": url, "estimate_s": round(estimate, 1)},
                         status=202, cache="no-store", headers={"Location": url})


def _run_job(app, svc, store: JobStore, job_id: str, problem) -> None:
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2:
            last[0] = now
            store.update(job_id, progress=round(float(fraction), 4), message=str(message))

    try:
        plan = solve(svc, problem, progress=progress, cancel=lambda: store.cancel_requested(job_id))
        state = "cancelled" if plan.siting.status == "cancelled" else "done"
        store.update(job_id, state=state, progress=1.0, message=plan.siting.status, result=plan_body(svc, plan))
    except GeoServerError as exc:
        store.update(job_id, state="failed", message=exc.message, error=exc.to_dict())
    except Exception:  # a job must always end in a final state that clients can read
        app.logger.exception("siting job %s failed", job_id)
        store.update(job_id, state="failed", message="internal error; it has been logged")


def _siting_job(job_id: str) -> dict:
    """A siting job's state (other kinds of job, such as the admin API's geocoding, are not public)."""
    state = jobs().get(job_id)
    if state.get("kind") != "siting":
        raise FeatureNotFound(f"no siting job {job_id[:40]!r}", "jobId")
    return state


@bp.get("/api/siting/jobs/<job_id>")
def job(job_id):
    return json_response(_siting_job(job_id), cache="no-store")


@bp.delete("/api/siting/jobs/<job_id>")
def cancel_job(job_id):
    _siting_job(job_id)
    state = jobs().request_cancel(job_id)
    return json_response({"job_id": job_id, "state": state["state"],
                          "cancel_requested": state["state"] == "running"}, status=202, cache="no-store")
