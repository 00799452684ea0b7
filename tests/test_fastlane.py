"""The fast lane (geoserver/web/fastlane.py) answers exactly as Flask does: status, every header, every byte.

Each request is sent to two apps over the same data: one with the fast lane (the default) and one without it
(``FAST_LANE: False``, Flask answers everything). The fast lane must answer the plain successful reads itself and
step aside for everything else (errors, conditional requests, other methods), so the answers cannot differ.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import orjson
import pytest

from geoserver.web import create_app
from geoserver.web.fastlane import FastLane

AT = "at=2026-11-30T10:00"
CENTRE = "lon=121.4737&lat=31.2304"
BBOX = "bbox=121.468,31.226,121.478,31.235"
GZIP = {"Accept-Encoding": "gzip"}
FILTER = "district = '黄浦区' AND A_CONTAINS(services, ('charging'))"
FILTER_JSON = '{"op": "=", "args": [{"property": "district"}, "黄浦区"]}'
NEAR = "S_DWITHIN(geometry, POINT(121.4737 31.2304), 1500)"


@pytest.fixture(scope="module")
def apps(service):
    fast = create_app(service=service)
    slow = create_app({"FAST_LANE": False}, service=service)
    assert isinstance(fast.wsgi_app, FastLane) and not isinstance(slow.wsgi_app, FastLane)
    # the OGC routes need the host's URL, which werkzeug checks on its first request from a host: once via Flask
    assert slow.test_client().get("/ogc/collections/stations/items?limit=1").status_code == 200
    return fast, slow


@pytest.fixture(scope="module")
def feature_id(apps) -> str:
    page = apps[1].test_client().get(f"/ogc/collections/stations/items?{BBOX}&limit=1").get_json()
    return page["features"][0]["id"]


def answer(app, url: str, headers: dict | None = None, method: str = "GET"):
    resp = app.test_client().open(url, method=method, headers=headers or {})
    return resp.status_code, sorted(resp.headers.items()), resp.get_data()


def compare(apps, url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, int, bytes]:
    """(status, how many requests the fast lane answered, body) after checking both apps answer the same."""
    fast, slow = apps
    before = fast.wsgi_app.answered
    got = answer(fast, url, headers, method)
    want = answer(slow, url, headers, method)
    assert got[0] == want[0], url
    assert got[1] == want[1], url
    assert got[2] == want[2], url
    return got[0], fast.wsgi_app.answered - before, got[2]


NEAREST = [
    f"/api/nearest?{CENTRE}&{AT}",
    f"/api/nearest?{CENTRE}&layer=stations&k=5&{AT}",
    f"/api/nearest?{CENTRE}&k=12&crs=gcj02&{AT}",
    f"/api/nearest?{CENTRE}&k=3&services=charging,microwave&{AT}",
    f"/api/nearest?{CENTRE}&open_now=true&{AT}",
    f"/api/nearest?{CENTRE}&max_distance_m=800&k=50&{AT}",
    f"/api/nearest?lon=121.48&lat=31.23&crs=bd09&layer=driver_homes&{AT}",
    f"/api/nearest?{CENTRE}&services={quote('充电')}&{AT}",
]


@pytest.mark.parametrize("url", NEAREST)
@pytest.mark.parametrize("headers", [None, GZIP], ids=["plain", "gzip"])
def test_nearest_answered_by_the_fast_lane_as_by_flask(apps, url, headers):
    status, answered, body = compare(apps, url, headers)
    assert (status, answered) == (200, 1)
    if headers is None:
        assert orjson.loads(body)["type"] == "FeatureCollection"


ITEMS = [
    "/ogc/collections/stations/items",
    f"/ogc/collections/stations/items?{BBOX}&limit=10",
    f"/ogc/collections/stations/items?{BBOX}&limit=2&offset=3",
    "/ogc/collections/stations/items?crs=gcj02&limit=3",
    "/ogc/collections/stations/items?f=json&limit=2",
    f"/ogc/collections/stations/items?district={quote('黄浦区')}&limit=5",
    "/ogc/collections/stations/items?limit=100000",
    "/ogc/collections/districts/items?limit=2",
    "/ogc/collections/gig_markets/items?bbox-crs=gcj02&bbox=121.0,30.7,122.0,31.8",
    # OGC API - Features Part 3 filters, sortby and properties
    f"/ogc/collections/stations/items?filter={quote(FILTER)}&limit=5",
    f"/ogc/collections/stations/items?filter={quote(FILTER_JSON)}&filter-lang=cql2-json&limit=3",
    f"/ogc/collections/stations/items?filter={quote(NEAR)}&sortby=-area_m2,name&properties=name,area_m2",
    "/ogc/collections/stations/items?sortby=%2Bdistrict,-area_m2&limit=7&offset=20",
    "/ogc/collections/stations/items?properties=name,services&limit=3&crs=gcj02",
    f"/ogc/collections/stations/items?{BBOX}&filter={quote('smart = TRUE')}&sortby=name&properties=name",
    f"/ogc/collections/districts/items?filter={quote('S_CONTAINS(geometry, POINT(121.4737 31.2304))')}",
    f"/ogc/collections/stations/items?filter={quote('S_INTERSECTS(geometry, BBOX(121.46, 31.22, 121.48, 31.24))')}"
    "&filter-crs=gcj02&limit=2",
]


@pytest.mark.parametrize("url", ITEMS)
@pytest.mark.parametrize("headers", [None, GZIP], ids=["plain", "gzip"])
def test_items_answered_by_the_fast_lane_as_by_flask(apps, url, headers):
    status, answered, _ = compare(apps, url, headers)
    assert (status, answered) == (200, 1)


@pytest.mark.parametrize("query", ["", "?crs=bd09", "?crs=gcj02&f=json",
                                   "?crs=http%3A%2F%2Fwww.opengis.net%2Fdef%2Fcrs%2FOGC%2F1.3%2FCRS84",
                                   "?properties=name,services", "?properties=district&crs=bd09"])
@pytest.mark.parametrize("headers", [None, GZIP], ids=["plain", "gzip"])
def test_item_answered_by_the_fast_lane_as_by_flask(apps, feature_id, query, headers):
    status, answered, body = compare(apps, f"/ogc/collections/stations/items/{feature_id}{query}", headers)
    assert (status, answered) == (200, 1)
    if headers is None:
        assert orjson.loads(body)["id"] == feature_id


#: Requests the fast lane leaves to Flask, and the status Flask gives them.
DELEGATED = [
    (f"/api/nearest?{CENTRE}&kk=5", 400),                       # unknown parameter
    ("/api/nearest?lon=abc&lat=31.2", 400),
    ("/api/nearest?lon=121.47&lat=31.23&lon=121.48", 400),        # a parameter given twice
    (f"/api/nearest?{CENTRE}&layer=nope", 400),
    ("/api/nearest?lat=31.2", 400),                             # lon missing
    (f"/api/nearest?{CENTRE}&k=0", 400),
    ("/api/nearest?lon=121.47&lat=91", 400),
    ("/ogc/collections/nope/items", 404),
    ("/ogc/collections/stations/items/no-such-station", 404),
    ("/ogc/collections/stations/items?limit=0", 400),
    ("/ogc/collections/stations/items?bbox=1,2,3", 400),
    ("/ogc/collections/stations/items?f=xml", 400),
    ("/ogc/collections/stations/items?colour=red", 400),
    (f"/ogc/collections/stations/items?filter={quote('name = = 1')}", 400),       # with the position
    (f"/ogc/collections/stations/items?filter={quote('area_m2 = 1 AND colour = 2')}", 400),
    ("/ogc/collections/stations/items?sortby=services", 400),
    ("/ogc/collections/stations/items?properties=contact_phone", 400),
    ("/ogc/collections/stations/items?filter-lang=cql", 400),
    ("/ogc/collections/stations/items/ST00001?properties=nope", 400),
    ("/ogc/collections/stations/items/", 404),                  # an empty feature id: not a route
    ("/ogc/collections/stations/items/a/b", 404),
    ("/ogc/collections//items", 308),                          # werkzeug merges the slashes
    ("/api/nearest/", 404),
]


@pytest.mark.parametrize("url,status", DELEGATED)
def test_errors_are_flasks_to_answer(apps, url, status):
    got, answered, body = compare(apps, url)
    assert (got, answered) == (status, 0)
    if status != 308:
        assert "description" in orjson.loads(body)


def test_conditional_head_and_post_requests_go_to_flask(apps, feature_id):
    fast, _ = apps
    url = f"/ogc/collections/stations/items/{feature_id}"
    etag = fast.test_client().get(url).headers["ETag"]
    assert compare(apps, url, {"If-None-Match": etag})[:2] == (304, 0)
    assert compare(apps, url, method="HEAD")[:2] == (200, 0)
    assert compare(apps, f"/api/nearest?{CENTRE}", method="POST")[:2] == (400, 0)
    assert compare(apps, f"/ogc/collections/stations/items?{BBOX}", method="OPTIONS")[:2] == (200, 0)


def test_a_new_host_is_checked_by_werkzeug_first(apps, feature_id):
    """The links of OGC answers carry the request's host: the first request from a host goes through Flask
    (werkzeug checks the Host header), later ones take the fast lane; both give that host's links."""
    fast, _ = apps
    host = f"maps-{id(apps)}.example.org:8443"     # a host no other test has used
    headers = {"Host": host}
    url = f"/ogc/collections/stations/items/{feature_id}"
    status, answered, body = compare(apps, url, headers)
    assert (status, answered) == (200, 0)
    status, answered, again = compare(apps, url, headers)
    assert (status, answered, again) == (200, 1, body)
    assert orjson.loads(body)["links"][0]["href"] == f"http://{host}/ogc/collections/stations/items/{feature_id}"


def test_a_non_ascii_query_goes_to_flask(apps):
    """A query string with raw (not percent-encoded) UTF-8 is decoded the way werkzeug decodes it: by Flask."""
    fast, slow = apps
    environ_query = "district=" + "黄浦区".encode().decode("latin-1") + "&limit=2"
    before = fast.wsgi_app.answered
    raw = {"QUERY_STRING": environ_query}
    got = fast.test_client().get("/ogc/collections/stations/items", environ_overrides=raw)
    want = slow.test_client().get("/ogc/collections/stations/items", environ_overrides=raw)
    assert got.status_code == want.status_code == 200
    assert got.get_data() == want.get_data()
    assert fast.wsgi_app.answered == before


def test_the_fast_lane_can_be_turned_off(service, monkeypatch):
    monkeypatch.setenv("GEOSERVER_FAST_LANE", "0")
    assert not isinstance(create_app(service=service).wsgi_app, FastLane)
    monkeypatch.setenv("GEOSERVER_FAST_LANE", "1")
    assert isinstance(create_app(service=service).wsgi_app, FastLane)


def test_a_new_version_is_served_by_the_fast_lane(tiny_service):
    """An edit (as the admin API makes it) is seen by the next fast-lane read: the lane checks for new versions
    as the app's before_request does."""
    from geoserver.core.manage import DataManager

    app = create_app(service=tiny_service)
    client = app.test_client()
    assert client.get("/ogc/collections/stations/items?limit=1").status_code == 200   # the host, once
    first = client.get("/ogc/collections/stations/items?limit=1").get_json()["features"][0]
    DataManager(tiny_service).editor.apply("stations", upserts=[{"id": first["id"], "name": "新名字驿站"}], who="test",
                                           action="edit")
    tiny_service.refresh_interval_s = 0     # files: checked on the next request; PostGIS: announced by NOTIFY
    answered = app.wsgi_app.answered
    deadline = time.monotonic() + 5
    while True:
        after = client.get(f"/ogc/collections/stations/items/{first['id']}").get_json()
        if after["properties"]["name"] == "新名字驿站" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after["properties"]["name"] == "新名字驿站"
    assert app.wsgi_app.answered > answered
