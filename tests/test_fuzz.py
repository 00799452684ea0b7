"""No input produces a 500: random query strings and bodies against every read endpoint."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["nan", "inf", "-inf", "1e309", "-0", "121.47", "31.23", "", " ", "0x10", "１２１", "\x00",
                     "121.4,31.2,121.5,31.3", "charging", "true", "gcj02", "2026-02-30T25:00"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
)
NAMES = st.sampled_from(["lon", "lat", "k", "layer", "services", "open_now", "at", "crs", "max_distance_m", "bbox",
                         "limit", "offset", "district", "bbox-crs", "f", "x"])
PATHS = st.sampled_from(["/api/nearest", "/ogc/collections/stations/items", "/ogc/collections/districts/items",
                         "/ogc/collections/stations/items/ST00001", "/ogc/collections/gig_markets",
                         "/ogc/collections/%00/items", "/ogc/collections/stations/items/%FF"])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(path=PATHS, params=st.dictionaries(NAMES, VALUES, max_size=5))
def test_get_never_500(client, path, params):
    r = client.get(path, query_string=params)
    assert r.status_code < 500, (path, params, r.get_data()[:300])
    if r.status_code >= 400:
        assert r.json["code"] and r.json["description"]


JSONS = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)


@FUZZ
@given(body=st.one_of(JSONS, st.fixed_dictionaries({"points": JSONS}, optional={"k": JSONS, "layer": JSONS,
                                                                                  "services": JSONS, "crs": JSONS,
                                                                                  "open_now": JSONS})))
def test_batch_never_500(client, body):
    r = client.post("/api/nearest", json=body)
    assert r.status_code < 500, (body, r.get_data()[:300])


COVERAGE_NAMES = st.sampled_from(["radius_m", "minutes", "mode", "services", "open_at", "demand", "layer", "network",
                                  "limit", "min_uncovered", "speed_kmh", "detour", "k", "x"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/coverage", "/api/coverage/gaps"]),
       params=st.dictionaries(COVERAGE_NAMES, VALUES, max_size=4))
def test_coverage_never_500(client, path, params):
    params = {**params, "cell_m": "3000"}  # a coarse grid keeps each valid request cheap
    r = client.get(path, query_string=params)
    assert r.status_code < 500, (path, params, r.get_data()[:300])


SITING_KEYS = st.sampled_from(["k", "target_pct", "radius_m", "minutes", "mode", "area", "districts", "polygon",
                               "candidates", "candidate_layer", "spacing_m", "solver", "time_limit_s", "layer"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(SITING_KEYS, JSONS, max_size=5))
def test_siting_never_500(client, body):
    body = {**body, "cell_m": 3000}
    r = client.post("/api/siting", json=body)
    assert r.status_code < 500, (body, r.get_data()[:300])
