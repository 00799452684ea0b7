"""Hardening of the anonymous planning endpoints (issue findings 1–4): every request's cost is estimated from the
request and refused with a 4xx before the work is paid for; caches stay within a memory budget; planning runs in
separate, lower-priority processes behind admission limits; background jobs are capped per server and per client.
The live-server tests run the real `geoserver serve` (Granian), one of them under an address-space limit so a
regression fails the test instead of exhausting the machine.
"""

from __future__ import annotations

import resource
import subprocess
import threading
import urllib.error
import urllib.request
import json

import pytest
from scipy.spatial import cKDTree

from geoserver.core.catchment_query import parse_catchment
from geoserver.core.service import GeoService
from geoserver.web import create_app
from geoserver.web.heavy import Limits
from tests.conftest import start_server, stop_server


def post(url: str, body: dict, timeout: float = 120) -> tuple[int, dict, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def get(url: str, timeout: float = 120) -> tuple[int, dict | str, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()
            kind = resp.headers.get("Content-Type", "")
            return resp.status, json.loads(data) if "json" in kind else data.decode(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


# --- 1. siting: the pairs are counted before they are built ----------------------------------------------------------
def test_finding_1_a_huge_catchment_is_refused_before_any_neighbour_search(client, monkeypatch):
    listed = []

    class SpyTree(cKDTree):
        def query_ball_point(self, x, r, *args, **kwargs):
            if not kwargs.get("return_length"):
                listed.append(r)
            return super().query_ball_point(x, r, *args, **kwargs)

    monkeypatch.setattr("geoserver.core.planning.cKDTree", SpyTree)
    r = client.post("/api/siting", json={"k": 1, "radius_m": 50000})
    assert r.status_code == 400 and r.json["parameter"] == "radius_m"
    assert r.json["description"].startswith("this instance has about 1,458,")
    assert "radius_m up to about 2,739" in r.json["description"]
    assert not [x for x in listed if x > 10_000], "a neighbour list was built for the 50 km catchment"
    page = client.get("/planning?radius_m=50000&k=1")
    assert page.status_code == 400 and page.json["parameter"] == "radius_m"
    # a catchment the bound lets through is counted exactly, and solved
    assert client.post("/api/siting", json={"k": 1, "radius_m": 1000, "districts": ["崇明区"]}).status_code == 200


# --- 2. batch nearest: points x k is a budget ---------------------------------------------------------------------
def test_finding_2_a_batch_answer_has_a_feature_budget(client):
    r = client.post("/api/nearest", json={"k": 100, "points": [[121.47, 31.23]] * 10_000})
    assert r.status_code == 400 and r.json["parameter"] == "k"
    assert r.json["description"] == ("10,000 points x k=100 asks for 1,000,000 features, more than the 50,000 one "
                                     "answer may hold; send at most 500 points per request with this k, or a "
                                     "smaller k")
    ok = client.post("/api/nearest", json={"k": 100, "points": [[121.47, 31.23]] * 500})
    assert ok.status_code == 200 and sum(len(x["features"]) for x in ok.json["results"]) == 50_000


# --- 3. grid size and the caches ------------------------------------------------------------------------------------
def test_finding_3_fine_grids_are_refused_and_caches_stay_in_budget(client):
    r = client.get("/api/coverage?radius_m=1000&cell_m=50")
    assert r.status_code == 400 and r.json["parameter"] == "cell_m"
    assert r.json["description"] == ("cell_m=50 would make about 3,179,570 demand cells, more than the 400,000 this "
                                     "server computes; use cell_m=150 or more")
    svc = GeoService()
    svc.cache_budget_bytes = 80 << 20
    demand = svc.demand("grid", 400.0)
    for radius in range(500, 2000, 100):       # fifteen distinct catchments, each with its own result
        svc.coverage("stations", parse_catchment({"radius_m": str(radius)}), demand)
        assert svc.cache_bytes <= svc.cache_budget_bytes
    assert 0 < len(svc._cache) < 16


# --- 4. admission, job caps, isolation ------------------------------------------------------------------------------
def test_finding_4_admission_limits_answer_429_and_503_with_retry_after(service):
    app = create_app({"PLANNING_LIMITS": {"heavy_per_client": 1, "planning_queue": 0, "heavy_per_minute": 2}},
                     service=service)
    pool, client = app.extensions["planning"], app.test_client()
    with pool.admit("127.0.0.1"):              # this client already has a planning request in progress
        r = client.get("/api/coverage?radius_m=1000")
        assert r.status_code == 429 and r.headers["Retry-After"] == "5" and r.json["code"] == "TooManyRequests"
    with pool.admit("10.0.0.9"):               # another client holds the only slot this worker has
        r = client.get("/api/coverage?radius_m=1000")
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert r.json["description"].startswith("the planning queue is full")
    # the per-minute rate (2): the slot held above for 127.0.0.1 took one, so one more, then 429
    assert client.get("/api/coverage?radius_m=1000").status_code == 200
    r = client.get("/api/coverage?radius_m=1000")
    assert r.status_code == 429 and r.json["description"].startswith("at most 2 planning requests a minute")
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert client.get("/api/nearest?lon=121.47&lat=31.23").status_code == 200     # riders are not limited


def test_finding_4_background_jobs_are_capped_per_server_and_per_client(service, tmp_path):
    from geoserver.web.siting import owner_of
    app = create_app({"JOBS_DIR": str(tmp_path), "PLANNING_LIMITS": {"max_jobs": 2, "max_jobs_per_client": 1}},
                     service=service)
    client = app.test_client()
    store = app.extensions["jobs"]
    body = {"k": 2, "radius_m": 1000, "districts": ["崇明区"], "spacing_m": 2000, "async": True}
    mine = store.create("siting", {}, owner=owner_of("127.0.0.1"))      # this client's job, running
    theirs = store.create("siting", {}, owner=owner_of("10.0.0.9"))     # another client's job, running
    full = client.post("/api/siting", json=body)
    assert full.status_code == 503 and full.headers["Retry-After"] == "60"
    assert full.json["description"].startswith("2 siting jobs are running on this server")
    store.update(theirs, state="done")
    again = client.post("/api/siting", json=body)
    assert again.status_code == 429 and again.json["code"] == "TooManyRequests"
    assert again.json["description"] == "this client already has 1 siting jobs running; wait for them or cancel one"
    store.update(mine, state="done")
    accepted = client.post("/api/siting", json=body)
    assert accepted.status_code == 202
    assert "owner" not in client.get(accepted.json["status_url"]).json   # job states are public: no owner in them
    # a job whose process vanished (a restart) stops counting after a while
    assert store.count_running("siting", stale_s=-1) == 0


def _descendants(pid: int) -> list[tuple[int, int, str]]:
    """(pid, nice, command) of every process below ``pid``."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,ni=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines() if line.strip()]
    children, found, todo = {}, [], [pid]
    for p, pp, ni, args in (r for r in rows if len(r) == 4):
        children.setdefault(int(pp), []).append((int(p), int(ni) if ni.lstrip("-").isdigit() else 0, args))
    while todo:
        for p, ni, args in children.get(todo.pop(), []):
            found.append((p, ni, args))
            todo.append(p)
    return found


@pytest.mark.external
def test_finding_4_planning_runs_in_lower_priority_processes_and_riders_are_answered_meanwhile():
    url, proc = start_server({"GEOSERVER_PLANNING_PROCESSES": "1", "GEOSERVER_HEAVY_PER_MINUTE": "0"}, workers=1)
    try:
        assert not [p for p in _descendants(proc.pid) if "spawn_main" in p[2]]   # started when first needed
        status, _, _ = get(f"{url}/api/coverage?radius_m=1000")
        assert status == 200
        planners = [p for p in _descendants(proc.pid) if "spawn_main" in p[2]]
        assert planners and all(ni >= 10 for _, ni, _ in planners), planners
        # a slow planning answer in flight does not hold the worker: nearest is answered meanwhile
        done = {}
        thread = threading.Thread(target=lambda: done.update(
            r=post(f"{url}/api/siting", {"k": 40, "radius_m": 1500, "area": "all", "spacing_m": 800})))
        thread.start()
        answered = 0
        while thread.is_alive() and answered < 20:
            status, body, _ = get(f"{url}/api/nearest?lon=121.47&lat=31.23&k=3")
            assert status == 200 and len(body["features"]) == 3
            answered += 1
        thread.join(120)
        assert done["r"][0] == 200, done["r"][1]
        assert answered >= 1
    finally:
        stop_server(proc)


@pytest.mark.external
def test_findings_1_to_3_under_an_address_space_limit():
    """The server under RLIMIT_AS (each process may map at most 4 GiB): the requests that once grew a worker to
    18.6 GB are refused in time, and the server keeps answering."""
    limit = 4 << 30

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    url, proc = start_server({"GEOSERVER_PLANNING_PROCESSES": "1", "GEOSERVER_HEAVY_PER_MINUTE": "0"}, workers=1,
                             preexec_fn=cap)
    try:
        status, body, _ = post(f"{url}/api/siting", {"k": 1, "radius_m": 50000})
        assert status == 400 and body["parameter"] == "radius_m"
        status, body, _ = get(f"{url}/planning?radius_m=50000&k=1")
        assert status == 400
        status, body, _ = post(f"{url}/api/nearest", {"k": 500, "points": [[121.47, 31.23]] * 10_000})
        assert status == 400 and body["parameter"] == "k"
        for cell in ("50", "50.5", "51"):
            status, body, _ = get(f"{url}/api/coverage?radius_m=1000&cell_m={cell}")
            assert status == 400 and body["parameter"] == "cell_m"
        status, body, _ = get(f"{url}/api/coverage?radius_m=1000")
        assert status == 200 and body["totals"]["covered_pct"] == 84.54
        assert get(f"{url}/healthz")[0] == 200 and proc.poll() is None
    finally:
        stop_server(proc)


def test_planning_never_takes_more_than_half_the_request_threads():
    assert Limits(processes=1, queue=2).capacity == 3
    assert Limits(processes=1, queue=4, request_threads=8).capacity == 4
    assert Limits(processes=1, queue=2, request_threads=1).capacity == 1
    assert Limits.from_env({"GEOSERVER_REQUEST_THREADS": "8", "GEOSERVER_PLANNING_QUEUE": "9"}).capacity == 4
