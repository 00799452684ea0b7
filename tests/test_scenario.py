"""What-if coverage (POST /api/coverage/scenario): checked against coverage recomputed from scratch with the
changed set of stations, and against a siting plan (adding the plan's sites covers the plan's people)."""

from __future__ import annotations

import numpy as np
import pytest

from geoserver.core import crs
from geoserver.core.coverage import nearest_distances_m
from geoserver.core.service import GeoService
from geoserver.planning.coverage import COVERAGE
from geoserver.planning.scenario import SCENARIO
from geoserver.planning.siting import SITING
from geoserver.web import create_app


@pytest.fixture(scope="module")
def svc():
    return GeoService(None, None)


@pytest.fixture(scope="module")
def client(svc):
    return create_app(service=svc).test_client()


def recomputed(svc, body: dict) -> np.ndarray:
    """Covered cells with the changed stations, from scratch: every station that remains plus every added or
    moved-to site, nearest geodesic distance per demand cell, within the straight-line radius."""
    cov = COVERAGE.parse({k: v for k, v in body.items() if k in COVERAGE.names}, svc)
    before = COVERAGE.result(svc, cov)
    layer = svc.point_layer(cov.layer)
    gone = {layer.position(i) for i in body.get("remove", [])} | {layer.position(m["id"]) for m in body.get("move", [])}
    keep = np.array([p for p in range(layer.count) if p not in gone])
    added = [tuple(p) for p in body.get("add", [])] + [tuple(m["to"]) for m in body.get("move", [])]
    lon = np.concatenate([layer.index.lon[keep], [p[0] for p in added]])
    lat = np.concatenate([layer.index.lat[keep], [p[1] for p in added]])
    demand = before.demand
    dist, _ = nearest_distances_m(demand.lon, demand.lat, lon, lat)
    return dist <= before.catchment.straight_radius_m


def far_station(svc) -> str:
    """A suburban station whose catchment no other station overlaps much (the farthest from its neighbour)."""
    layer = svc.point_layer("stations")
    x, y = crs.to_metric(layer.index.lon, layer.index.lat)
    from scipy.spatial import cKDTree
    d, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    return layer.ids[int(np.argmax(d[:, 1]))]


def test_scenario_equals_coverage_recomputed_from_scratch(svc):
    lonely = far_station(svc)
    body = {"layer": "stations", "radius_m": 1000,
            "add": [[121.25, 31.05], [121.60, 31.00], [121.75, 31.05], [121.36, 31.72]],
            "remove": [lonely, "ST00003"],
            "move": [{"id": "ST00040", "to": [121.20, 31.10]}]}
    answer = SCENARIO(svc, body)
    covered = recomputed(svc, body)
    w = answer.result.weight
    assert answer.result.covered_after.tolist() == covered.tolist()
    totals = answer.to_dict()["totals"]
    assert totals["covered_after"] == round(float(w[covered].sum()), 1)
    assert totals["no_longer_covered"] > 0                       # the lonely station's people lose their cover
    removed = {r["id"]: r for r in answer.to_dict()["removed"]}
    assert removed[lonely]["no_longer_covered"] > 0 and removed["ST00040"]["moved"] is True
    # per district: the rows add up to the city
    rows = answer.to_dict()["districts"]
    assert sum(r["covered_after"] for r in rows) == pytest.approx(totals["covered_after"], abs=1.0)


def test_scenario_with_a_travel_time_catchment_and_filters(svc):
    body = {"layer": "stations", "minutes": 10, "mode": "ebike", "services": "charging",
            "add": [[121.45, 30.92]], "remove": ["ST00100"]}
    answer = SCENARIO(svc, body)
    assert answer.result.before.catchment.minutes == 10
    # recomputed with the filtered stations only
    layer = svc.point_layer("stations")
    before = answer.result.before
    charging = set(np.flatnonzero(svc.filter_mask(layer, np.arange(layer.count), ("charging",))).tolist())
    keep = np.array(sorted(charging - {layer.position("ST00100")}))
    lon = np.concatenate([layer.index.lon[keep], [121.45]])
    lat = np.concatenate([layer.index.lat[keep], [30.92]])
    dist, _ = nearest_distances_m(before.demand.lon, before.demand.lat, lon, lat)
    assert answer.result.covered_after.tolist() == (dist <= before.catchment.straight_radius_m).tolist()


def test_adding_a_siting_plans_sites_covers_the_plans_people(svc):
    """The plan's sites, added as the answer reports them (6 decimals), cover exactly the plan's people: the
    candidate grid is shifted off the demand grid's round multiples (core.planning.GRID_OFFSET_M), so no demand
    cell lies within the rounding's 0.1 m of the radius (before the shift, Chongming's 5 sites lost 5 %)."""
    for district in ("崇明区", "浦东新区", "金山区"):
        problem = SITING.problem(svc, SITING.parse(
            {"layer": "stations", "k": 5, "radius_m": 1000, "districts": [district], "solver": "fast"}, svc))
        plan = SITING.solve(svc, problem)
        sites = [[s["lon"], s["lat"]] for s in plan.sites]
        assert all(len(f"{v:.10f}".rstrip("0").split(".")[1]) <= 6 for site in sites for v in site)
        answer = SCENARIO(svc, {"layer": "stations", "radius_m": 1000, "add": sites})
        assert answer.result.covered_after.tolist() == plan.covered_after.tolist(), district
        totals = answer.to_dict()["totals"]
        assert totals["covered_after"] == round(plan.siting.covered_after, 1)
        assert totals["newly_covered"] == round(plan.siting.newly_covered, 1)
        # the first site's new people, as the plan counts them (nothing added before it)
        assert answer.to_dict()["sites"][0]["newly_covered"] == plan.sites[0]["new_coverage"]
    assert round(plan.siting.newly_covered, 1) == 33798.3     # Jinshan, the last one


def test_gcj02_points_are_shifted_to_wgs84(svc):
    wgs = (121.60, 31.00)
    lon, lat = crs.from_wgs84(np.array([wgs[0]]), np.array([wgs[1]]), "gcj02")
    a = SCENARIO(svc, {"add": [list(wgs)]}).to_dict()
    b = SCENARIO(svc, {"add": [[float(lon[0]), float(lat[0])]], "crs": "gcj02"}).to_dict()
    assert b["totals"] == a["totals"]
    assert b["crs"] == "gcj02" and b["sites"][0]["lon"] != a["sites"][0]["lon"]


def test_scenario_over_http(client):
    resp = client.post("/api/coverage/scenario", json={"radius_m": 1000, "add": [[121.60, 31.00]]})
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) >= {"totals", "districts", "sites", "removed", "catchment", "demand", "sample_data", "runtime_ms"}
    assert body["sites"][0]["district"] == "奉贤区" and body["sites"][0]["newly_covered"] > 0
    assert body["totals"]["covered_after"] > body["totals"]["covered_before"]
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("body,parameter,words", [
    ({}, "add", "nothing to try"),
    ({"add": [[1, 2]]}, "add", "far outside Shanghai"),
    ({"add": [[121.5]]}, "add", "add[0] must be [lon, lat]"),
    ({"add": "121.5,31.2"}, "add", "list of [lon, lat]"),
    ({"remove": ["NOPE"]}, "remove", "no station 'NOPE'"),
    ({"remove": [True]}, "remove", "list of feature ids"),
    ({"move": [{"id": "ST00001"}]}, "move", "move[0]"),
    ({"move": [{"id": "ST00001", "to": [121.2, 31.1]}], "remove": ["ST00001"]}, "move", "both removed and moved"),
    ({"add": [[121.2, 31.1]], "network": "x"}, "network", "unknown field 'network'"),
    ({"add": [[121.2, 31.1]], "radius_m": -5}, "radius_m", "radius_m"),
    ({"add": [[121.2, 31.1]] * 501}, "add", "at most 500"),
    ({"add": [[121.2, 31.1]], "crs": "utm"}, "crs", "crs must be"),
])
def test_bad_scenarios_are_400_with_the_field(client, body, parameter, words):
    resp = client.post("/api/coverage/scenario", json=body)
    assert resp.status_code == 400
    got = resp.get_json()
    assert got["parameter"] == parameter and words in got["description"]


def test_a_body_that_is_not_json_is_400(client):
    resp = client.post("/api/coverage/scenario", data=b"add=1", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and resp.get_json()["parameter"] == "body"
