"""Siting endpoints: propose new sites (MCLP), answering at once or through a cancellable background job; the work
runs in the worker's planning processes (see heavy.py), never in the threads that answer riders."""

from __future__ import annotations

import hashlib
import logging
import time

import orjson
from flask import Blueprint, current_app, request, url_for

from ..core.errors import FeatureNotFound, GeoServerError
from ..core.jobs import JobStore
from ..storage import open_jobs
from ..planning.siting import SITING
from .heavy import Busy, TooManyRequests, client_of
from .http import json_body, json_response

log = logging.getLogger(__name__)
bp = Blueprint("siting", __name__)

#: The longest a siting request is answered at once (else a background job, 202).
SYNC_MAX_S = 10.0
#: Exact (MILP) runs estimated above this go to a background job.
EXACT_SYNC_MAX_S = 2.0
MAX_JOB_S = 900.0


def service():
    return current_app.extensions["geoservice"]


def jobs() -> JobStore:
    return current_app.extensions["jobs"]


def plan_body(svc, plan) -> dict:
    """The JSON answer: summary, proposed sites (GeoJSON) and before/after per district."""
    return SITING.answer(svc, plan).to_dict()


def siting_answer(svc, body) -> dict:
    """A siting request answered now ({"kind": "answer"}), or found to need a background job ({"kind": "job"}) or
    to be too large ({"kind": "too_large"}); runs in a planning process."""
    req = SITING.parse(body, svc)
    problem = SITING.problem(svc, req)
    estimate = SITING.estimate_s(problem)
    if estimate > MAX_JOB_S:
        return {"kind": "too_large", "estimate_s": estimate}
    # an exact (MILP) run is hard to foresee (one estimated at 9.6 s took 35 s): at once only when it is clearly
    # small, and even then the solver stops by SYNC_MAX_S (the answer then says time_limit and its gap)
    quick = estimate <= (EXACT_SYNC_MAX_S if req.solver == "exact" else SYNC_MAX_S)
    if quick and not body.get("async"):
        limit = min(req.time_limit_s, SYNC_MAX_S)
        return {"kind": "answer", "body": orjson.dumps(plan_body(svc, SITING.solve(svc, problem, time_limit_s=limit)))}
    return {"kind": "job", "estimate_s": round(estimate, 1),
            "summary": {"layer": req.layer, "k": req.k, "solver": req.solver, "estimate_s": round(estimate, 1),
                        "candidates": problem.candidates.size}}


@bp.post("/api/siting")
def siting():
    svc = service()
    body = json_body()
    SITING.parse(body, svc)                  # a bad request is refused here, before it takes a planning slot
    pool = current_app.extensions["planning"]
    client = client_of(request)
    answer = pool.run("siting", body, client)
    if answer["kind"] == "too_large":
        return json_response({"code": "TooLarge", "parameter": "k",
                              "description": f"this request would take about {answer['estimate_s']:,.0f} s, more than "
                                             f"the {MAX_JOB_S:g} s this server allows; narrow the area, raise spacing_m "
                                             "or use the fast solver"}, status=400, cache="no-store")
    if answer["kind"] == "answer":
        return json_response(answer["body"], cache="no-store")
    store = jobs()
    owner = owner_of(client)
    limits = pool.limits
    if store.count_running("siting") >= limits.max_jobs:
        raise Busy(f"{limits.max_jobs} siting jobs are running on this server, the most it runs at once; try again "
                   "when one has finished", 60)
    if store.count_running("siting", owner) >= limits.max_jobs_per_client:
        raise TooManyRequests(f"this client already has {limits.max_jobs_per_client} siting jobs running; wait for "
                              "them or cancel one", 60)
    job_id = store.create("siting", answer["summary"], owner=owner)
    pool.start_job("siting_job", {"body": body, "job_id": job_id,
                                         "jobs": current_app.extensions["jobs_locator"]},
                   on_failure=lambda message: store.update(job_id, state="failed", message=message))
    url = url_for("siting.job", job_id=job_id)
    return json_response({"job_id": job_id, "state": "running", "status_url": url,
                          "estimate_s": answer["estimate_s"]}, status=202, cache="no-store", headers={"Location": url})


def owner_of(client: str) -> str:
    """A job's owner as a hash of the client's address (job states are public: the address is not in them)."""
    return hashlib.blake2b(client.encode(), digest_size=8).hexdigest()


def run_job(svc, payload: dict) -> None:
    """A background siting job: rebuild the problem, solve it, report through the job file (a planning process)."""
    store = open_jobs(payload["jobs"])
    job_id = payload["job_id"]
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2:
            last[0] = now
            store.update(job_id, progress=round(float(fraction), 4), message=str(message))

    try:
        problem = SITING.problem(svc, SITING.parse(payload["body"], svc))
        plan = SITING.solve(svc, problem, progress=progress, cancel=lambda: store.cancel_requested(job_id))
        state = "cancelled" if plan.siting.status == "cancelled" else "done"
        store.update(job_id, state=state, progress=1.0, message=plan.siting.status, result=plan_body(svc, plan))
    except GeoServerError as exc:
        store.update(job_id, state="failed", message=exc.message, error=exc.to_dict())
    except Exception:  # a job must always end in a final state that clients can read
        log.exception("siting job %s failed", job_id)
        store.update(job_id, state="failed", message="internal error; it has been logged")


def _siting_job(job_id: str) -> dict:
    """A siting job's state (other kinds of job, such as the admin API's geocoding, are not public)."""
    state = jobs().get(job_id)
    if state.get("kind") != "siting":
        raise FeatureNotFound(f"no siting job {job_id[:40]!r}", "jobId")
    state.pop("owner", None)
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
