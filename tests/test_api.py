"""The service API through the Flask test client: health, layers, nearest (single and batch), errors."""

import gzip

import numpy as np
import orjson
import pytest

from geoserver.core import crs

PEOPLES_SQUARE = (121.4737, 31.2304)


def nearest(client, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.get(f"/api/nearest?{query}")


def test_healthz(client, service):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json == {"status": "ok", "storage": service.storage.kind, "layers": {"stations": 3400, "driver_homes": 60, "gig_markets": 12,
                                                 "canteens": 600, "fitness_stations": 110, "rest_rooms": 1000,
                                                 "districts": 16}}


def test_layers_lists_titles_fields_and_vocabulary(client):
    body = client.get("/api/layers").json
    by_id = {layer["id"]: layer for layer in body["layers"]}
    assert by_id["stations"]["title_zh"] == "工会驿站（户外职工爱心接力站）"
    assert by_id["stations"]["count"] == 3400 and by_id["stations"]["sample_data"] is True
    assert by_id["districts"]["sample_data"] is False
    assert "contact_phone" not in [f["name"] for f in by_id["stations"]["fields"]]
    services = {s["id"]: s["zh"] for s in body["services"]}
    assert services["charging"] == "充电" and services["microwave"] == "热饭"
    assert "truck_parking" in [s["id"] for s in by_id["driver_homes"]["services"]]


def test_nearest_sorted_with_true_geodesic_distances(client, service):
    r = nearest(client, lon=PEOPLES_SQUARE[0], lat=PEOPLES_SQUARE[1], k=5)
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    feats = r.json["features"]
    assert len(feats) == 5
    st = service.layers["stations"]
    d_all = crs.geodesic_distance_m(*PEOPLES_SQUARE, st.index.lon, st.index.lat)
    want = [st.ids[i] for i in np.argsort(d_all, kind="stable")[:5]]
    assert [f["id"] for f in feats] == want
    for f in feats:
        lon, lat = f["geometry"]["coordinates"]
        assert f["properties"]["distance_m"] == pytest.approx(
            float(crs.geodesic_distance_m(*PEOPLES_SQUARE, lon, lat)), abs=1.0)
        assert f["properties"]["source"] == "sample"


def test_nearest_with_services_open_now_and_max_distance(client, service):
    r = nearest(client, lon=121.47, lat=31.23, k=5, services="charging,microwave", open_now="true",
                at="2026-11-25T23:30:00%2B08:00")
    feats = r.json["features"]
    assert len(feats) == 5
    for f in feats:
        assert {"charging", "microwave"} <= set(f["properties"]["services"])
        assert f["properties"]["open_now"] is True
    dists = [f["properties"]["distance_m"] for f in feats]
    assert dists == sorted(dists)
    r = nearest(client, lon=121.47, lat=31.23, k=50, max_distance_m=500)
    assert all(f["properties"]["distance_m"] <= 500 for f in r.json["features"])


def test_nearest_services_accept_chinese_labels(client):
    a = nearest(client, lon=121.47, lat=31.23, k=3, services="充电").json
    b = nearest(client, lon=121.47, lat=31.23, k=3, services="charging").json
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]]


def test_nearest_crs_applies_to_query_point_and_output(client):
    wgs = nearest(client, lon=121.47, lat=31.23, k=3).json
    glon, glat = (float(v) for v in crs.wgs84_to_gcj02(121.47, 31.23))
    gcj = nearest(client, lon=glon, lat=glat, k=3, crs="gcj02").json
    assert [f["id"] for f in gcj["features"]] == [f["id"] for f in wgs["features"]]
    for fw, fg in zip(wgs["features"], gcj["features"]):
        want = [round(float(v), 6) for v in crs.wgs84_to_gcj02(*fw["geometry"]["coordinates"])]
        assert fg["geometry"]["coordinates"] == pytest.approx(want, abs=2e-6)
        assert fg["properties"]["distance_m"] == pytest.approx(fw["properties"]["distance_m"], abs=0.5)
    blon, blat = (float(v) for v in crs.wgs84_to_bd09(121.47, 31.23))
    bd = nearest(client, lon=blon, lat=blat, k=3, crs="bd09").json
    assert [f["id"] for f in bd["features"]] == [f["id"] for f in wgs["features"]]


def test_nearest_other_layers(client):
    r = nearest(client, lon=121.6, lat=31.35, layer="driver_homes", k=3, services="truck_parking")
    assert r.status_code == 200
    assert all("truck_parking" in f["properties"]["services"] for f in r.json["features"])
    assert len(nearest(client, lon=121.5, lat=31.2, layer="gig_markets", k=20).json["features"]) == 12


@pytest.mark.parametrize("params,parameter,fragment", [
    ({"lon": "abc", "lat": "31.2"}, "lon", "must be a number"),
    ({"lon": "nan", "lat": "31.2"}, "lon", "finite"),
    ({"lon": "inf", "lat": "31.2"}, "lon", "finite"),
    ({"lat": "31.2"}, "lon", "lon is required"),
    ({"lon": "121.4"}, "lat", "lat is required"),
    ({"lon": "31.23", "lat": "121.47"}, "lat", "did you swap lon and lat?"),
    ({"lon": "200", "lat": "31.2"}, "lon", "longitude range"),
    ({"lon": "116.40", "lat": "39.90"}, "lon", "far outside Shanghai"),
    ({"lon": "121.47", "lat": "31.23", "layer": "nope"}, "layer", "unknown layer 'nope'"),
    ({"lon": "121.47", "lat": "31.23", "layer": "districts"}, "layer", "not a point layer"),
    ({"lon": "121.47", "lat": "31.23", "services": "teleport"}, "services", "unknown service 'teleport'"),
    ({"lon": "121.47", "lat": "31.23", "k": "0"}, "k", "at least 1"),
    ({"lon": "121.47", "lat": "31.23", "k": "-3"}, "k", "at least 1"),
    ({"lon": "121.47", "lat": "31.23", "k": "100000"}, "k", "at most 500"),
    ({"lon": "121.47", "lat": "31.23", "k": "2.5"}, "k", "integer"),
    ({"lon": "121.47", "lat": "31.23", "max_distance_m": "-5"}, "max_distance_m", "greater than 0"),
    ({"lon": "121.47", "lat": "31.23", "open_now": "maybe"}, "open_now", "true or false"),
    ({"lon": "121.47", "lat": "31.23", "at": "yesterday"}, "at", "ISO 8601"),
    ({"lon": "121.47", "lat": "31.23", "crs": "epsg:3857"}, "crs", "unknown coordinate system"),
    ({"lon": "121.47", "lat": "31.23", "servces": "water"}, "servces", "unknown query parameter"),
    ({"lon": ["121.47", "5"], "lat": "31.23"}, "lon", "lon is given 2 times"),
    ({"lon": "1" * 5000, "lat": "31.23"}, "lon", "at most 2000 are accepted"),
])
def test_nearest_bad_input_names_parameter(client, params, parameter, fragment):
    r = client.get("/api/nearest", query_string=params)
    assert r.status_code == 400
    assert r.json["code"] == "InvalidParameterValue"
    assert r.json["parameter"] == parameter
    assert fragment in r.json["description"]


def test_batch_nearest_answers_each_point(client):
    body = {"layer": "stations", "k": 2, "services": ["charging"], "points": [
        [121.47, 31.23], {"id": "depot", "lon": 121.6, "lat": 31.35}, [31.23, 121.47], {"lon": "x", "lat": 1}]}
    r = client.post("/api/nearest", json=body)
    assert r.status_code == 200
    results = r.json["results"]
    assert [len(x.get("features", [])) for x in results] == [2, 2, 0, 0]
    single = nearest(client, lon=121.47, lat=31.23, k=2, services="charging").json
    assert [f["id"] for f in results[0]["features"]] == [f["id"] for f in single["features"]]
    assert results[1]["id"] == "depot"
    assert "did you swap lon and lat?" in results[2]["error"]["description"]
    assert results[3]["error"]["parameter"] == "points[3].lon"


def test_batch_huge_integer_coordinate_is_a_400_not_a_crash(client):
    r = client.post("/api/nearest", data=b'{"points": [[1' + b"0" * 400 + b', 31.2]]}',
                    content_type="application/json")
    assert r.status_code == 200
    assert "finite" in r.json["results"][0]["error"]["description"] or "number" in r.json["results"][0]["error"]["description"]


@pytest.mark.parametrize("body,parameter", [
    (None, "body"), ({"points": []}, "points"), ({"points": "x"}, "points"),
    ({"points": [[121.47, 31.23]], "k": 0}, "k"), ({"points": [[121.47, 31.23]], "layer": "x"}, "layer"),
    ({"points": [[121.47, 31.23]], "colour": "red"}, "colour"),
    ({"points": [[121.47, 31.23]] * 10001}, "points"),
])
def test_batch_bad_bodies(client, body, parameter):
    r = client.post("/api/nearest", data=orjson.dumps(body) if body is not None else b"not json",
                    content_type="application/json")
    assert r.status_code == 400
    assert r.json["parameter"] == parameter


def test_oversized_body_is_413_json(client):
    r = client.post("/api/nearest", data=b"[" + b"1," * (3 << 20) + b"1]", content_type="application/json")
    assert r.status_code == 413
    assert r.json["code"] == "RequestEntityTooLarge"


def test_unknown_path_and_method_are_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json["code"] == "NotFound"
    r = client.delete("/api/nearest")
    assert r.status_code == 405 and r.json["code"] == "MethodNotAllowed"


def test_cors_on_reads_and_preflight(client):
    r = client.get("/api/layers", headers={"Origin": "https://maps.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = client.options("/ogc/collections/stations/items", headers={
        "Origin": "https://maps.example", "Access-Control-Request-Method": "GET"})
    assert r.status_code == 200
    assert "GET" in r.headers["Access-Control-Allow-Methods"]


def test_gzip_when_asked(client):
    r = client.get("/api/layers", headers={"Accept-Encoding": "gzip"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(r.get_data()))["layers"][0]["id"] == "stations"
    r = client.get("/api/layers", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in r.headers


PRIVATE_KEYS = ("contact_phone", "contact_name")


def test_private_fields_never_in_public_responses(client, service):
    phones = set(service.layers["stations"].gdf["contact_phone"].head(50))
    paths = ["/healthz", "/api/layers", "/ogc", "/ogc/api", "/ogc/collections", "/ogc/collections/stations",
             "/ogc/collections/stations/items?limit=10000", "/ogc/collections/stations/items/ST00001",
             "/ogc/collections/driver_homes/items?crs=gcj02", "/api/nearest?lon=121.47&lat=31.23&k=100"]
    for path in paths:
        text = client.get(path).get_data(as_text=True)
        for key in PRIVATE_KEYS:
            assert f'"{key}"' not in text, path
        assert not any(p in text for p in phones), path
    batch = client.post("/api/nearest", json={"points": [[121.47, 31.23]], "k": 50}).get_data(as_text=True)
    assert "contact_phone" not in batch
