"""The fast paths of the hot routes give exactly what the plain ways of computing them give: spliced feature bytes,
joined FeatureCollections, the nearest-first geodesic search, the point-layer bbox, the query-argument lookups, the
remembered host URL, and no gzip for bodies that fit one packet."""

from __future__ import annotations

import gzip
from datetime import datetime

import numpy as np
import orjson
import pytest

from geoserver.core import nearest as nearest_module
from geoserver.core.hours import as_shanghai
from geoserver.core.query import NearestQuery
from geoserver.core.service import GeoService
from geoserver.web import create_app
from geoserver.web.http import GZIP_MIN_BYTES, QueryArgs, feature_collection


@pytest.fixture(scope="module")
def svc() -> GeoService:
    return GeoService()


@pytest.fixture(scope="module")
def client(svc):
    return create_app(service=svc).test_client()


@pytest.mark.parametrize("datum", ["wgs84", "gcj02", "bd09"])
def test_feature_json_is_the_bytes_of_the_feature_dict(svc, datum):
    layer = svc.layer("stations")
    for pos in (0, 1, layer.count // 2, layer.count - 1):
        assert layer.feature_json(pos, datum) == orjson.dumps(layer.feature(pos, datum))
        extra = {"distance_m": 12.3, "bearing_deg": 359.9, "open_now": None}
        assert layer.feature_json(pos, datum, extra) == orjson.dumps(layer.feature(pos, datum, extra))
        clash = {"name": "replaced in place", "distance_m": 1.0}   # a property of the same name keeps its position
        assert layer.feature_json(pos, datum, clash) == orjson.dumps(layer.feature(pos, datum, clash))


def test_feature_collection_is_the_bytes_of_the_dict(svc):
    layer = svc.layer("stations")
    features = [layer.feature(i, "wgs84") for i in range(3)]
    members = {"numberReturned": 3, "query": {"lon": 121.47, "lat": 31.23, "crs": "wgs84"}}
    joined = feature_collection([orjson.dumps(f) for f in features], members)
    assert joined == orjson.dumps({"type": "FeatureCollection", "features": features, **members})
    assert feature_collection([]) == orjson.dumps({"type": "FeatureCollection", "features": []})


def test_nearest_json_matches_the_feature_dicts(svc):
    at = as_shanghai(datetime(2026, 11, 25, 22, 0))
    for lon, lat, kwargs in ((121.4737, 31.2304, {}), (121.3, 31.0, {"services": ("charging",), "open_now": True}),
                             (121.6, 31.3, {"k": 40, "datum": "bd09"}), (121.47, 31.23, {"max_distance_m": 300.0})):
        q = NearestQuery(layer="stations", lon=lon, lat=lat, at=at, **kwargs)
        _, dicts = svc.nearest(q)
        _, blobs = svc.nearest_json(q)
        assert blobs == [orjson.dumps(d) for d in dicts]


def test_nearest_first_search_equals_the_array_search(svc, monkeypatch):
    rng = np.random.default_rng(3)
    index = svc.layer("stations").index
    allowed = rng.random(index.size) < 0.1
    queries = []
    for _ in range(400):
        lon, lat = rng.uniform(120.8, 122.2), rng.uniform(30.6, 31.9)
        k = int(rng.integers(1, nearest_module.SCALAR_K + 1))
        max_d = None if rng.random() < 0.6 else float(rng.uniform(100, 20000))
        use = rng.random() < 0.3
        queries.append((lon, lat, k, max_d, (lambda p: allowed[p]) if use else None))
    fast = [nearest_module.nearest(index, *q) for q in queries]
    monkeypatch.setattr(nearest_module, "SCALAR_K", 0)
    for q, got in zip(queries, fast):
        want = nearest_module.nearest(index, *q)
        assert got.positions.tolist() == want.positions.tolist()
        assert got.distances_m.tolist() == want.distances_m.tolist()
        assert got.azimuths_deg.tolist() == want.azimuths_deg.tolist()


def test_point_bbox_is_every_point_in_the_box_edges_included(svc):
    index = svc.layer("stations").index
    rng = np.random.default_rng(5)
    for _ in range(300):
        i, j = rng.integers(index.size, size=2)   # edges exactly on points
        minx, maxx = sorted([float(index.lon[i]), float(index.lon[j])])
        miny, maxy = sorted([float(index.lat[i]), float(index.lat[j])])
        inside = (index.lon >= minx) & (index.lon <= maxx) & (index.lat >= miny) & (index.lat <= maxy)
        got = index.bbox(minx, miny, maxx, maxy)
        assert got.dtype == np.int64 and got.tolist() == np.flatnonzero(inside).tolist()


def test_query_args_get_keeps_werkzeugs_meaning():
    args = QueryArgs([("k", "5"), ("k", "6"), ("x", "abc")])
    assert args.get("k") == "5" and args.get("k", type=int) == 5
    assert args.get("missing") is None and args.get("missing", "d") == "d"
    assert args.get("x", 7, type=int) == 7   # a failed conversion gives the default, as in werkzeug
    with pytest.raises(KeyError):
        args["missing"]


def test_small_bodies_are_not_gzipped_large_ones_are(client):
    small = client.get("/ogc/collections/stations/items/ST00002", headers={"Accept-Encoding": "gzip"})
    assert len(small.data) < GZIP_MIN_BYTES and "Content-Encoding" not in small.headers
    assert not small.headers["ETag"].endswith('-gzip"') and "Accept-Encoding" in small.headers["Vary"]
    big = client.get("/api/nearest?lon=121.4737&lat=31.2304&k=5", headers={"Accept-Encoding": "gzip"})
    assert big.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in big.headers["Vary"]
    assert orjson.loads(gzip.decompress(big.data))["numberReturned"] == 5
    for r in (small, big):   # the security headers are on every answer
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_links_follow_each_hosts_url(client):
    for host in ("maps.example.org", "127.0.0.1:8000", "maps.example.org"):
        doc = client.get("/ogc/collections/stations/items/ST00002", base_url=f"http://{host}").json
        assert doc["links"][0]["href"] == f"http://{host}/ogc/collections/stations/items/ST00002"


def test_not_modified_before_any_work(client):
    r = client.get("/ogc/collections/stations/items?limit=3")
    again = client.get("/ogc/collections/stations/items?limit=3", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.headers["ETag"] == r.headers["ETag"] and not again.data
    one = client.get("/ogc/collections/stations/items/ST00002?crs=gcj02")
    again = client.get("/ogc/collections/stations/items/ST00002?crs=gcj02",
                       headers={"If-None-Match": one.headers["ETag"]})
    assert again.status_code == 304 and again.headers["X-Coordinate-System"] == "gcj02"
