"""OGC API - Features Part 1 through the Flask test client."""

import math
from urllib.parse import urlsplit

import pytest
import shapely
from openapi_spec_validator import validate as validate_openapi
from shapely.geometry import shape

from geoserver.core import crs

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"


def local(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def link(doc, rel):
    return next((ln for ln in doc["links"] if ln["rel"] == rel), None)


def test_landing_page_links(client):
    doc = client.get("/ogc").json
    for rel in ("self", "service-desc", "conformance", "data"):
        assert link(doc, rel) is not None, rel
    assert "SAMPLE" in doc["description"]
    assert client.get(local(link(doc, "data")["href"])).status_code == 200


def test_conformance(client):
    classes = client.get("/ogc/conformance").json["conformsTo"]
    assert CORE in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in classes
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in classes
    # Part 3: filtering with CQL2 (text and JSON) and queryables
    for part3 in ("ogcapi-features-3/1.0/conf/filter", "ogcapi-features-3/1.0/conf/features-filter",
                  "ogcapi-features-3/1.0/conf/queryables", "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json",
                  "cql2/1.0/conf/basic-cql2", "cql2/1.0/conf/basic-spatial-functions"):
        assert f"http://www.opengis.net/spec/{part3}" in classes


def test_openapi_document_is_valid(client):
    r = client.get("/ogc/api")
    assert r.mimetype == "application/vnd.oai.openapi+json"
    doc = r.json
    validate_openapi(doc)
    assert "/collections/stations/items" in doc["paths"]
    params = {p["name"]: p for p in doc["paths"]["/collections/stations/items"]["get"]["parameters"]}
    # no schema maximum: a larger limit is served as 10,000 (OGC API - Features), which the description states
    assert "maximum" not in params["limit"]["schema"] and params["limit"]["schema"]["default"] == 100
    assert "10000" in params["limit"]["description"]
    assert {"bbox", "offset", "crs", "district", "services", "filter-lang", "filter-crs"} <= set(params)
    assert "contact_phone" not in params
    # the parameters naming the collection's properties list its public ones
    assert {"properties", "sortby", "filter"} <= set(params)
    assert "contact_phone" not in params["properties"]["schema"]["items"]["enum"]
    assert "area_m2" in params["properties"]["schema"]["items"]["enum"]
    assert "/collections/stations/queryables" in doc["paths"]


def test_collections_and_collection(client):
    cols = client.get("/ogc/collections").json["collections"]
    assert [c["id"] for c in cols] == ["stations", "driver_homes", "gig_markets", "canteens", "fitness_stations",
                                       "rest_rooms", "districts"]
    st = client.get("/ogc/collections/stations").json
    minx, miny, maxx, maxy = st["extent"]["spatial"]["bbox"][0]
    assert 120.8 < minx < maxx < 122.3 and 30.6 < miny < maxy < 31.9
    assert link(st, "items")["type"] == "application/geo+json"
    queryables = link(st, "http://www.opengis.net/def/rel/ogc/1.0/queryables")
    assert local(queryables["href"]) == "/ogc/collections/stations/queryables"
    assert client.get(local(queryables["href"])).json["properties"]["geometry"]["format"] == "geometry-point"
    assert client.get("/ogc/collections/nope").status_code == 404


def assert_rfc7946(fc):
    assert fc["type"] == "FeatureCollection"
    for f in fc["features"]:
        assert f["type"] == "Feature" and isinstance(f["id"], str)
        geom = shape(f["geometry"])
        assert geom.is_valid
        coords = shapely.get_coordinates(geom)
        assert ((coords[:, 0] > 120) & (coords[:, 0] < 123) & (coords[:, 1] > 30) & (coords[:, 1] < 32)).all()
        for value in coords.ravel()[:20]:
            assert round(float(value), 6) == float(value)


def test_items_are_rfc7946_geojson(client):
    r = client.get("/ogc/collections/stations/items?limit=50")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    fc = r.json
    assert_rfc7946(fc)
    assert fc["numberMatched"] == 3400 and fc["numberReturned"] == 50
    assert fc["timeStamp"].endswith("Z")
    assert_rfc7946(client.get("/ogc/collections/districts/items").json)


def test_paging_with_filters_keeps_them_in_links(client, service):
    url = "/ogc/collections/stations/items?bbox=121.3,31.0,121.7,31.4&district=浦东新区&services=charging&limit=40"
    seen, matched = [], None
    while url:
        fc = client.get(url).json
        matched = fc["numberMatched"] if matched is None else matched
        assert fc["numberMatched"] == matched
        seen.extend(f["id"] for f in fc["features"])
        assert all(f["properties"]["district"] == "浦东新区" and "charging" in f["properties"]["services"]
                   for f in fc["features"])
        nxt = link(fc, "next")
        url = local(nxt["href"]) if nxt else None
    assert len(seen) == len(set(seen)) == matched > 40


def test_head_request(client):
    r = client.head("/ogc/collections/stations/items?limit=3")
    assert r.status_code == 200 and r.get_data() == b"" and r.headers["ETag"]


@pytest.mark.parametrize("layer,limit", [("stations", 500), ("stations", 1000), ("canteens", 77)])
def test_paging_walks_every_feature_exactly_once(client, service, layer, limit):
    seen = []
    url = f"/ogc/collections/{layer}/items?limit={limit}"
    pages = 0
    while url:
        fc = client.get(url).json
        seen.extend(f["id"] for f in fc["features"])
        nxt = link(fc, "next")
        url = local(nxt["href"]) if nxt else None
        pages += 1
    assert sorted(seen) == sorted(service.layers[layer].ids.tolist())
    assert len(seen) == len(set(seen))
    assert pages == math.ceil(service.layers[layer].count / limit)


def test_prev_link_and_offset(client):
    fc = client.get("/ogc/collections/stations/items?limit=10&offset=20").json
    assert [f["id"] for f in fc["features"]][0] == "ST00021"
    prev = client.get(local(link(fc, "prev")["href"])).json
    assert prev["features"][0]["id"] == "ST00011"


def test_limit_is_clamped_to_maximum(client):
    fc = client.get("/ogc/collections/stations/items?limit=20000").json
    assert fc["numberReturned"] == 3400
    assert "limit=10000" in link(fc, "self")["href"]


def test_bbox_filter_matches_geometry(client):
    box = (121.45, 31.20, 121.50, 31.25)
    fc = client.get("/ogc/collections/stations/items?bbox=121.45,31.20,121.50,31.25&limit=10000").json
    assert fc["numberMatched"] == fc["numberReturned"] > 0
    for f in fc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert box[0] <= lon <= box[2] and box[1] <= lat <= box[3]
    districts = client.get("/ogc/collections/districts/items?bbox=121.47,31.22,121.48,31.23").json
    assert sorted(f["properties"]["name"] for f in districts["features"]) == ["黄浦区"]


def test_property_filters(client):
    fc = client.get("/ogc/collections/stations/items?district=崇明区&limit=10000").json
    assert fc["numberMatched"] > 0
    assert {f["properties"]["district"] for f in fc["features"]} == {"崇明区"}
    assert client.get("/ogc/collections/stations/items?district=Chongming").json["numberMatched"] == fc["numberMatched"]
    fc = client.get("/ogc/collections/driver_homes/items?services=truck_parking,shower").json
    assert all({"truck_parking", "shower"} <= set(f["properties"]["services"]) for f in fc["features"])
    fc = client.get("/ogc/collections/gig_markets/items?market_type=industry").json
    assert fc["numberMatched"] == 4


def test_items_in_chinese_datums(client):
    w = client.get("/ogc/collections/stations/items/ST00001").json
    g = client.get("/ogc/collections/stations/items/ST00001?crs=gcj02").json
    b = client.get("/ogc/collections/stations/items/ST00001?crs=bd09").json
    lon, lat = w["geometry"]["coordinates"]
    assert g["geometry"]["coordinates"] == pytest.approx([float(v) for v in crs.wgs84_to_gcj02(lon, lat)], abs=2e-6)
    assert b["geometry"]["coordinates"] == pytest.approx([float(v) for v in crs.wgs84_to_bd09(lon, lat)], abs=2e-6)
    crs84 = client.get("/ogc/collections/stations/items/ST00001?crs=http://www.opengis.net/def/crs/OGC/1.3/CRS84")
    assert crs84.json["geometry"] == w["geometry"]
    assert crs84.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"


def test_bbox_in_gcj02(client):
    wgs = client.get("/ogc/collections/stations/items?bbox=121.45,31.20,121.50,31.25&limit=10000").json
    corners = crs.wgs84_to_gcj02([121.45, 121.50], [31.20, 31.25])
    box = f"{corners[0][0]:.7f},{corners[1][0]:.7f},{corners[0][1]:.7f},{corners[1][1]:.7f}"
    gcj = client.get(f"/ogc/collections/stations/items?bbox={box}&bbox-crs=gcj02&limit=10000").json
    assert abs(gcj["numberMatched"] - wgs["numberMatched"]) <= 2


def test_item_and_missing_item(client):
    f = client.get("/ogc/collections/stations/items/ST00042").json
    assert f["id"] == "ST00042" and link(f, "collection") is not None
    r = client.get("/ogc/collections/stations/items/NOPE")
    assert r.status_code == 404 and "NOPE" in r.json["description"]


def test_etag_and_304(client):
    r = client.get("/ogc/collections/stations/items?limit=5")
    etag = r.headers["ETag"]
    again = client.get("/ogc/collections/stations/items?limit=5", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    other = client.get("/ogc/collections/stations/items?limit=6", headers={"If-None-Match": etag})
    assert other.status_code == 200
    gz = client.get("/ogc/collections/stations/items?limit=50", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["ETag"].endswith('-gzip"')
    assert client.get("/ogc/collections/stations/items?limit=50", headers={
        "Accept-Encoding": "gzip", "If-None-Match": gz.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("query,parameter,fragment", [
    ("bbox=121.5,31.2,121.4,31.3", "bbox", "inverted"),
    ("bbox=121.4,31.3,121.5,31.2", "bbox", "inverted"),
    ("bbox=1,2,3", "bbox", "4 numbers"),
    ("bbox=a,b,c,d", "bbox", "number"),
    ("bbox=31.2,121.4,31.3,121.5", "bbox", "did you swap lon and lat?"),
    ("limit=0", "limit", "at least 1"),
    ("limit=ten", "limit", "integer"),
    ("offset=-1", "offset", "at least 0"),
    ("crs=epsg:2000", "crs", "unknown coordinate system"),
    ("services=teleport", "services", "unknown service"),
    ("colour=red", "colour", "unknown query parameter"),
    ("f=html", "f", "unsupported format"),
    ("filter=name%20%3D", "filter", "unexpected end of the filter at line 1, column 7"),
    ("filter=colour%20%3D%201", "filter", "unknown property 'colour'"),
    ("sortby=colour", "sortby", "cannot sort stations by 'colour'"),
    ("properties=colour", "properties", "'colour' is not a property of stations"),
    ("filter-crs=epsg:2000", "filter-crs", "unknown coordinate system"),
])
def test_items_bad_input(client, query, parameter, fragment):
    r = client.get(f"/ogc/collections/stations/items?{query}")
    assert r.status_code == 400
    assert r.json["parameter"] == parameter
    assert fragment in r.json["description"]
