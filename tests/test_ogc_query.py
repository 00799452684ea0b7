"""OGC API - Features query options through the Flask app: CQL2 filters (text and JSON, Part 3), queryables,
sortby and properties; and GDAL's OAPIF client passing a filter through to a real server."""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import quote, urlsplit

import geopandas as gpd
import pandas as pd
import pytest

from geoserver.serving import cql
from geoserver.serving.items import filter_pattern
from geoserver.web import create_app
from tests.conftest import write_tiny_layers

ITEMS = "/ogc/collections/stations/items"
BOX = "121.45,31.20,121.50,31.25"
PUDONG = "浦东新区"


def local(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def page(client, query: str, path: str = ITEMS) -> dict:
    r = client.get(f"{path}?{query}")
    assert r.status_code == 200, (query, r.get_json())
    return r.get_json()


def ids(client, query: str, path: str = ITEMS) -> list[str]:
    fc = page(client, f"{query}&limit=10000", path)
    assert fc["numberMatched"] == fc["numberReturned"]
    return [f["id"] for f in fc["features"]]


def filtered(client, cql_filter: str, path: str = ITEMS, extra: str = "") -> list[str]:
    return ids(client, f"filter={quote(cql_filter)}{extra}", path)


def error(client, query: str, path: str = ITEMS) -> dict:
    r = client.get(f"{path}?{query}")
    assert r.status_code == 400, (query, r.status_code, r.get_data()[:300])
    body = r.get_json()
    assert body["code"] == "InvalidParameterValue"
    return body


# --- CQL2 results equal the existing equality, bbox and services filters ----------------------------------------------
def test_cql2_text_and_json_equal_the_equality_filter(client):
    want = ids(client, f"district={quote(PUDONG)}")
    assert len(want) == 823
    assert filtered(client, f"district = '{PUDONG}'") == want
    assert filtered(client, f'"district" = \'{PUDONG}\'') == want                 # a quoted property name
    as_json = f'{{"op": "=", "args": [{{"property": "district"}}, "{PUDONG}"]}}'
    assert filtered(client, as_json, extra="&filter-lang=cql2-json") == want
    assert filtered(client, f"district = '{PUDONG}'", extra="&filter-lang=cql2-text") == want
    # two values: the equality filter's comma list, CQL2's IN and OR
    two = ids(client, f"district={quote(PUDONG + ',黄浦区')}")
    assert len(two) == 952
    assert filtered(client, f"district IN ('{PUDONG}', '黄浦区')") == two
    assert filtered(client, f"district = '{PUDONG}' OR district = '黄浦区'") == two
    assert filtered(client, '{"op": "in", "args": [{"property": "district"}, ["浦东新区", "黄浦区"]]}') == two


def test_cql2_spatial_forms_equal_the_bbox_filter(client):
    want = ids(client, f"bbox={BOX}")
    assert len(want) == 140
    for form in ("S_INTERSECTS(geometry, BBOX(121.45, 31.20, 121.50, 31.25))",
                 "S_INTERSECTS(geometry, ENVELOPE(121.45 121.50 31.20 31.25))",       # west east south north
                 "S_INTERSECTS(geometry, POLYGON((121.45 31.20, 121.50 31.20, 121.50 31.25, 121.45 31.25, "
                 "121.45 31.20)))",
                 "S_INTERSECTS(BBOX(121.45, 31.20, 121.50, 31.25), geometry)",
                 "BBOX(geometry, 121.45, 31.20, 121.50, 31.25)",
                 '{"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [121.45, 31.20, 121.50, 31.25]}]}',
                 '{"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Polygon", "coordinates": '
                 '[[[121.45, 31.20], [121.50, 31.20], [121.50, 31.25], [121.45, 31.25], [121.45, 31.20]]]}]}'):
        assert filtered(client, form) == want, form
    # no station lies on the box's edge, so within (interior only) is the same here; disjoint is the rest
    assert filtered(client, "S_WITHIN(geometry, BBOX(121.45, 31.20, 121.50, 31.25))") == want
    disjoint = filtered(client, "S_DISJOINT(geometry, BBOX(121.45, 31.20, 121.50, 31.25))")
    assert len(disjoint) == 3400 - 140 and not set(disjoint) & set(want)


def test_cql2_array_functions_equal_the_services_filter(client):
    want = ids(client, "services=charging,microwave")
    assert len(want) == 1478
    assert filtered(client, "A_CONTAINS(services, ('charging', 'microwave'))") == want
    assert filtered(client, '{"op": "a_contains", "args": [{"property": "services"}, ["charging", "microwave"]]}') \
        == want
    assert filtered(client, "A_CONTAINS(services, ('充电', 'microwave'))") == want          # labels resolve too


def test_cql2_combined_with_the_other_filters(client):
    want = ids(client, f"bbox=121.3,31.0,121.7,31.4&district={quote(PUDONG)}&services=charging")
    assert len(want) == 431
    cql_filter = (f"S_INTERSECTS(geometry, BBOX(121.3, 31.0, 121.7, 31.4)) AND district = '{PUDONG}' "
                  "AND A_CONTAINS(services, ('charging'))")
    assert filtered(client, cql_filter) == want
    # and a filter applies on top of them (AND)
    both = ids(client, f"bbox=121.3,31.0,121.7,31.4&district={quote(PUDONG)}&filter={quote('smart = TRUE')}")
    assert both == filtered(client, cql_filter.replace(" AND A_CONTAINS(services, ('charging'))", "")
                            + " AND smart = TRUE")
    assert len(both) == 57


# --- each kind of predicate -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stations(app):
    """Every public station as the API gives it: (id -> properties, id -> [lon, lat])."""
    fc = app.test_client().get(f"{ITEMS}?limit=10000").get_json()
    return ({f["id"]: f["properties"] for f in fc["features"]},
            {f["id"]: f["geometry"]["coordinates"] for f in fc["features"]})


@pytest.mark.parametrize("cql_filter,count,keep", [
    ("area_m2 > 100", 535, lambda p: p["area_m2"] > 100),
    ("area_m2 >= 100", 560, lambda p: p["area_m2"] >= 100),
    ("area_m2 < 20", 399, lambda p: p["area_m2"] < 20),
    ("100 < area_m2", 535, lambda p: p["area_m2"] > 100),                           # a literal first
    ("area_m2 <= 20", 430, lambda p: p["area_m2"] <= 20),
    ("area_m2 = 93", 36, lambda p: p["area_m2"] == 93),
    ("area_m2 <> 93", 3364, lambda p: p["area_m2"] != 93),
    ("area_m2 BETWEEN 20 AND 50", 877, lambda p: 20 <= p["area_m2"] <= 50),
    ("area_m2 NOT BETWEEN 20 AND 50", 2523, lambda p: not 20 <= p["area_m2"] <= 50),
    ("name LIKE '%便利店%'", 296, lambda p: "便利店" in p["name"]),
    ("name NOT LIKE '%便利店%'", 3104, lambda p: "便利店" not in p["name"]),
    ("name LIKE '黄浦区便利店户外职工爱心接力站（示例000_）'", 2,                        # _ is one character
     lambda p: re.fullmatch("黄浦区便利店户外职工爱心接力站（示例000.）", p["name"]) is not None),
    ("source ILIKE 'SAM%'", 3400, lambda p: p["source"].lower().startswith("sam")),
    ("CASEI(source) = CASEI('SAMPLE')", 3400, lambda p: p["source"].lower() == "sample"),
    ("source = 'SAMPLE'", 0, lambda p: p["source"] == "SAMPLE"),                   # = is case-sensitive
    ("district NOT IN ('浦东新区', '黄浦区')", 2448, lambda p: p["district"] not in ("浦东新区", "黄浦区")),
    ("opening_hours = '24/7'", 707, lambda p: p["opening_hours"] == "24/7"),
    ("subdistrict IS NULL", 3400, lambda p: p["subdistrict"] is None),
    ("subdistrict IS NOT NULL", 0, lambda p: p["subdistrict"] is not None),
    ("smart = TRUE", 292, lambda p: p["smart"] is True),
    ("smart <> TRUE", 3108, lambda p: p["smart"] is False),
    ("smart = 1", 292, lambda p: p["smart"] is True),                              # how GDAL writes booleans
    ("district = '浦东新区' OR smart = TRUE", 1038, lambda p: p["district"] == "浦东新区" or p["smart"]),
    ("NOT (district = '浦东新区')", 2577, lambda p: p["district"] != "浦东新区"),
    ("name LIKE '%便利店%' AND smart = TRUE", 33, lambda p: "便利店" in p["name"] and p["smart"]),
    ("A_EQUALS(services, ('water', 'rest'))", 3, lambda p: set(p["services"]) == {"water", "rest"}),
    ("A_CONTAINEDBY(services, ('water', 'rest', 'charging'))", 11,
     lambda p: set(p["services"]) <= {"water", "rest", "charging"}),
    ("A_OVERLAPS(services, ('legal_aid', 'wish_corner'))", 1226,
     lambda p: bool(set(p["services"]) & {"legal_aid", "wish_corner"})),
    ("id = 'ST00042'", 1, lambda p: p["id"] == "ST00042"),
    ("INCLUDE", 3400, lambda p: True),
    ("EXCLUDE", 0, lambda p: False),
])
def test_each_predicate(client, stations, cql_filter, count, keep):
    props, _ = stations
    got = filtered(client, cql_filter)
    assert len(got) == count
    assert got == [fid for fid, p in props.items() if keep(p)]


def test_spatial_functions_on_points_and_polygons(client, stations):
    _, coords = stations
    lon, lat = coords["ST00001"]
    assert (lon, lat) == (121.471607, 31.193477)
    point = f"POINT({lon} {lat})"
    for fn in ("S_INTERSECTS", "S_EQUALS", "S_CONTAINS"):
        assert filtered(client, f"{fn}(geometry, {point})") == ["ST00001"], fn
    assert filtered(client, f"S_TOUCHES(geometry, {point})") == []           # a point has no boundary
    assert len(filtered(client, f"S_DISJOINT(geometry, {point})")) == 3399
    districts = "/ogc/collections/districts/items"
    square = "POINT(121.4737 31.2304)"                                          # People's Square, in Huangpu
    assert filtered(client, f"S_CONTAINS(geometry, {square})", districts) == ["310101"]
    assert filtered(client, f"S_INTERSECTS({square}, geometry)", districts) == ["310101"]
    assert filtered(client, f"S_WITHIN({square}, geometry)", districts) == ["310101"]   # the converse
    assert filtered(client, "S_INTERSECTS(geometry, LINESTRING(121.40 31.20, 121.60 31.25))", districts) \
        == ["310101", "310104", "310105", "310115"]
    assert len(filtered(client, "S_WITHIN(geometry, BBOX(120, 30, 123, 32.5))", districts)) == 16
    assert filtered(client, "suburban = TRUE AND population_2020 > 1000000", districts) \
        == ["310112", "310113", "310114", "310117", "310118", "310120"]


def test_distance_is_geodesic_metres_as_nearest_measures(client, stations):
    """S_DWITHIN from a point selects exactly the stations /api/nearest finds within that distance."""
    near = client.get("/api/nearest?lon=121.4737&lat=31.2304&k=500&max_distance_m=1000").get_json()
    want = sorted(f["id"] for f in near["features"])
    assert len(want) == 21
    assert filtered(client, "S_DWITHIN(geometry, POINT(121.4737 31.2304), 1000)") == want
    as_json = ('{"op": "s_dwithin", "args": [{"property": "geometry"}, '
               '{"type": "Point", "coordinates": [121.4737, 31.2304]}, 1000]}')
    assert filtered(client, as_json) == want
    # the boundary: the farthest of them is in at its own distance (rounded up) and out just below it
    farthest = max(near["features"], key=lambda f: f["properties"]["distance_m"])
    d = farthest["properties"]["distance_m"]
    assert farthest["id"] in filtered(client, f"S_DWITHIN(geometry, POINT(121.4737 31.2304), {d + 0.1})")
    assert farthest["id"] not in filtered(client, f"S_DWITHIN(geometry, POINT(121.4737 31.2304), {d - 0.2})")
    # from a line: metres in the metric CRS
    assert len(filtered(client, "S_DWITHIN(geometry, LINESTRING(121.40 31.20, 121.50 31.30), 300)")) == 50


def test_three_valued_logic_and_nulls(tmp_path, tiny_layers_dir):
    """A comparison with a missing value is unknown, and NOT unknown is still unknown (SQL's logic)."""
    client = mixed_client(tmp_path, tiny_layers_dir)
    assert filtered(client, "area_m2 > 30") == ["A", "D"]
    assert filtered(client, "NOT (area_m2 > 30)") == ["C"]                       # B (no area) in neither
    assert filtered(client, "area_m2 IS NULL") == ["B"]
    assert filtered(client, "area_m2 > 30 OR area_m2 IS NULL") == ["A", "B", "D"]
    assert filtered(client, "NOT (area_m2 > 30 AND smart = TRUE)") == ["A", "C"]  # B: NOT (unknown AND true)
    assert filtered(client, "area_m2 > 30 OR smart = TRUE") == ["A", "B", "D"]    # unknown OR true = true


def mixed_client(tmp_path, layers_dir):
    """The tiny layers with area_m2 and smart set on some stations and missing on others."""
    data = tmp_path / "data"
    write_tiny_layers(data)
    stations = gpd.read_file(data / "stations.gpkg")
    stations["area_m2"] = [50.0, None, 20.0, 80.0]
    stations["smart"] = pd.array([False, True, None, True], dtype="boolean")
    stations.to_file(data / "stations.gpkg", layer="stations", driver="GPKG")
    from geoserver.core.service import GeoService
    return create_app(service=GeoService(data, layers_dir)).test_client()


def test_filter_crs_and_bbox_crs_agree(client):
    want = ids(client, "bbox=121.455,31.198,121.505,31.248&bbox-crs=gcj02")
    got = filtered(client, "S_INTERSECTS(geometry, BBOX(121.455, 31.198, 121.505, 31.248))", extra="&filter-crs=gcj02")
    assert got == want and len(got) == 139
    crs84 = quote("http://www.opengis.net/def/crs/OGC/1.3/CRS84", safe="")
    assert filtered(client, f"S_INTERSECTS(geometry, BBOX({BOX}))", extra=f"&filter-crs={crs84}") \
        == ids(client, f"bbox={BOX}")


# --- sortby -----------------------------------------------------------------------------------------------------------
def test_sortby_orders_by_several_keys_then_id(client, stations):
    props, _ = stations
    fc = page(client, "sortby=-area_m2,name&limit=10000")
    got = [f["id"] for f in fc["features"]]
    assert got[:3] == ["ST01977", "ST01876", "ST01644"]
    assert got == sorted(props, key=lambda fid: (-props[fid]["area_m2"], props[fid]["name"], fid))
    # ascending by default; + written encoded or arriving as a space (an unencoded + in a URL)
    by_district = [f["id"] for f in page(client, "sortby=district&limit=10000")["features"]]
    assert by_district == sorted(props, key=lambda fid: (props[fid]["district"], fid))
    assert [f["id"] for f in page(client, "sortby=%2Bdistrict&limit=10000")["features"]] == by_district
    assert [f["id"] for f in page(client, "sortby=+district&limit=10000")["features"]] == by_district
    desc = [f["id"] for f in page(client, "sortby=-district&limit=10000")["features"]]
    assert desc == sorted(sorted(props), key=lambda fid: props[fid]["district"], reverse=True)   # ties: id ascending
    assert desc[:2] == ["ST00001", "ST00002"] and desc != by_district[::-1]      # 黄浦区 has the highest code


def test_sortby_paging_follows_the_order(client):
    whole = [f["id"] for f in page(client, f"sortby=-area_m2,name&filter={quote('smart = TRUE')}&limit=10000")
             ["features"]]
    assert len(whole) == 292
    seen, url, pages = [], f"{ITEMS}?sortby=-area_m2,name&filter={quote('smart = TRUE')}&limit=50", 0
    while url:
        fc = client.get(url).get_json()
        assert fc["numberMatched"] == 292
        seen.extend(f["id"] for f in fc["features"])
        nxt = next((ln for ln in fc["links"] if ln["rel"] == "next"), None)
        assert "sortby=-area_m2%2Cname" in fc["links"][0]["href"]
        url = local(nxt["href"]) if nxt else None
        pages += 1
    assert seen == whole and pages == 6
    fc = page(client, f"sortby=-area_m2,name&filter={quote('smart = TRUE')}&limit=50&offset=100")
    prev = client.get(local(next(ln for ln in fc["links"] if ln["rel"] == "prev")["href"])).get_json()
    assert [f["id"] for f in prev["features"]] == whole[50:100]


def test_sortby_puts_missing_values_last(tmp_path, tiny_layers_dir):
    client = mixed_client(tmp_path, tiny_layers_dir)
    assert ids(client, "sortby=area_m2") == ["C", "A", "D", "B"]
    assert ids(client, "sortby=-area_m2") == ["D", "A", "C", "B"]
    assert ids(client, "sortby=-smart,name") == ["D", "B", "A", "C"]   # 丁 < 乙 by code point; C has no value


# --- properties -------------------------------------------------------------------------------------------------------
def test_properties_selects_public_properties(client):
    fc = page(client, "properties=name,district&limit=2")
    first = fc["features"][0]
    assert first["id"] == "ST00001" and first["geometry"] == {"type": "Point", "coordinates": [121.471607, 31.193477]}
    assert first["properties"] == {"name": "黄浦区环卫作息点户外职工爱心接力站（示例0001）", "district": "黄浦区"}
    # the collection's order, whatever the request's; the links keep the selection
    assert page(client, "properties=district,name&limit=2")["features"] == fc["features"]
    assert "properties=name%2Cdistrict" in fc["links"][0]["href"]
    one = client.get("/ogc/collections/stations/items/ST00042?properties=services").get_json()
    assert one["id"] == "ST00042" and list(one["properties"]) == ["services"] and one["geometry"]["type"] == "Point"
    # with a filter and sortby together
    fc = page(client, f"properties=area_m2&sortby=-area_m2&filter={quote('smart = TRUE')}&limit=3")
    assert [f["properties"] for f in fc["features"]] == [{"area_m2": 119.0}, {"area_m2": 118.0}, {"area_m2": 117.0}]


def test_properties_etag_differs(client):
    plain = client.get("/ogc/collections/stations/items/ST00042")
    chosen = client.get("/ogc/collections/stations/items/ST00042?properties=name")
    assert plain.headers["ETag"] != chosen.headers["ETag"]
    again = client.get("/ogc/collections/stations/items/ST00042?properties=name",
                       headers={"If-None-Match": chosen.headers["ETag"]})
    assert again.status_code == 304
    a = client.get(f"{ITEMS}?filter={quote('smart = TRUE')}").headers["ETag"]
    b = client.get(f"{ITEMS}?filter={quote('smart = FALSE')}").headers["ETag"]
    c = client.get(f"{ITEMS}?sortby=name").headers["ETag"]
    assert len({a, b, c, client.get(ITEMS).headers["ETag"]}) == 4


@pytest.mark.parametrize("query,parameter,fragment", [
    ("properties=colour", "properties", "'colour' is not a property of stations"),
    ("properties=name,colour,shape", "properties", "'colour', 'shape' are not properties of stations"),
    ("properties=contact_phone", "properties", "'contact_phone' is not a property of stations"),
    ("properties=name,%20district", "properties", "' district' is not a property"),
    ("properties=", "properties", "properties is empty"),
    ("sortby=colour", "sortby", "cannot sort stations by 'colour'"),
    ("sortby=services", "sortby", "services is a list and has no order"),
    ("sortby=contact_name", "sortby", "cannot sort stations by 'contact_name'"),
    ("sortby=name%20", "sortby", "cannot sort stations by 'name '"),
    ("sortby=*name", "sortby", "cannot sort stations by '*name'"),
    ("sortby=", "sortby", "sortby is empty"),
    ("filter=", "filter", "filter is empty"),
    ("filter-lang=cql", "filter-lang", "filter-lang must be cql2-text, cql2-json or cql-text"),
    ("filter-lang=", "filter-lang", "filter-lang must be"),
    ("filter-crs=EPSG%3A3857", "filter-crs", "unknown coordinate system"),
])
def test_bad_query_options(client, query, parameter, fragment):
    body = error(client, query)
    assert body["parameter"] == parameter
    assert fragment in body["description"], body


def test_private_fields_are_refused_exactly_like_unknown_ones(client):
    for param, good, private in (("properties", "colour", "contact_phone"), ("sortby", "colour", "contact_phone")):
        unknown = error(client, f"{param}={good}")["description"]
        secret = error(client, f"{param}={private}")["description"]
        assert secret == unknown.replace(good, private)
    unknown = error(client, f"filter={quote(chr(39).join(['colour = ', '1', '']))}")["description"]
    secret = error(client, f"filter={quote(chr(39).join(['contact_phone = ', '1', '']))}")["description"]
    assert secret == unknown.replace("colour", "contact_phone")
    assert error(client, "properties=contact_name", "/ogc/collections/stations/items/ST00001")["parameter"] \
        == "properties"


# --- errors with their position -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cql_filter,position,fragment", [
    ("name = = 'x'", {"line": 1, "column": 8}, "unexpected '=' at line 1, column 8: name = ⟨here⟩= 'x'"),
    ("district = '浦东新区' AND", {"line": 1, "column": 22}, "unexpected end of the filter at line 1, column 22"),
    ("district = '浦东新区'\nAND smart == TRUE", {"line": 2, "column": 12},
     "unexpected '=' at line 2, column 12: AND smart =⟨here⟩= TRUE"),
    ("name LIKE 'a' )", {"line": 1, "column": 15}, "unexpected ')' at line 1, column 15"),
    ("name = 'a' # x", {"line": 1, "column": 12}, "unexpected character '#' at line 1, column 12"),
    ("name = 'it''s'", {"line": 1, "column": 12}, "unexpected \"'s'\" at line 1, column 12"),
    ('{"op": "=", "args": [{"property": "name"}, "x"]', {"line": 1, "column": 48}, "at line 1, column 48"),
    ('{"op": "=",\n "args": [{"property": "name"} "x"]}', {"line": 2, "column": 32},
     "Expecting ',' delimiter at line 2, column 32"),
    ('{"op": "equals", "args": [{"property": "name"}, "x"]}', {"pointer": "/op"}, "unknown operator 'equals' at /op"),
    ('{"op": "and", "args": [{"op": "=", "args": [{"property": "name"}, "x"]}, {"op": "like", "args": 5}]}',
     {"pointer": "/args/1/args"}, "'like' needs an array of arguments at /args/1/args"),
    ('{"op": "not", "args": [{"op": "isNull", "args": [null]}]}', {"pointer": "/args/0/args/0"}, "null is not"),
])
def test_syntax_errors_give_the_position(client, cql_filter, position, fragment):
    body = error(client, f"filter={quote(cql_filter)}")
    assert body["parameter"] == "filter"
    assert body["position"] == position, body
    assert fragment in body["description"], body


@pytest.mark.parametrize("cql_filter,fragment", [
    ("area_m2 = 'big'", "area_m2 is a number property: compare it with a number, not the string 'big'"),
    ("district = 310115", "district is a string property: compare it with a string in single quotes, not the number "
                          "310115"),
    ("smart = 'yes'", "smart is a boolean property: compare it with TRUE or FALSE"),
    ("smart > TRUE", "smart is true or false: compare it with = or <>"),
    ("area_m2 LIKE '1%'", "LIKE applies to a string property, not area_m2 (number)"),
    ("name BETWEEN 1 AND 2", "BETWEEN applies to a number or time property, not name (string)"),
    ("services = 'water'", "services is a list of service ids; use A_CONTAINS(services"),
    ("A_CONTAINS(services, ('teleport'))", "unknown service 'teleport'"),
    ("A_CONTAINS(name, ('water'))", "array functions apply to the list property services, not name (string)"),
    ("colour = 'red'", "unknown property 'colour'; the queryables of stations are id, name"),
    ("S_INTERSECTS(name, POINT(121 31))", "name is not a geometry"),
    ("geometry = 'x'", "geometries are compared with the spatial functions"),
    ("S_INTERSECTS(geometry, BBOX(121.5, 31.2, 121.4, 31.3))", "BBOX is inverted: west 121.5 is east of east 121.4"),
    ("S_INTERSECTS(geometry, ENVELOPE(121.45 31.20 121.50 31.25))", "ENVELOPE(west east south north)"),
    ("S_INTERSECTS(geometry, POLYGON((121 31, 122 31, 121 32, 122 32, 121 31)))", "invalid Polygon literal"),
    ("S_INTERSECTS(geometry, SRID=3857;POINT(1 2))", "only SRID=4326"),
    ("S_DWITHIN(geometry, POINT(121.47 31.23), -5)", "distance must be a number of metres, at least 0"),
    ("UPPER(name) = 'X'", "unknown function 'UPPER'; supported: CASEI"),
    ("area_m2 + 1 > 5", "arithmetic (+, -, *, /) is not supported"),
    ("name T_AFTER TIMESTAMP('2020-01-01T00:00:00Z')", "T_AFTER compares a time property (updated) with a time, not name (string)"),
])
def test_type_and_name_errors_name_the_problem(client, cql_filter, fragment):
    body = error(client, f"filter={quote(cql_filter)}")
    assert body["parameter"] == "filter"
    assert fragment in body["description"], body


def test_filters_above_the_budget_are_refused_before_evaluation(client):
    long = "name = '" + "x" * 400 + "'"
    assert "filter is 409 characters long; at most 400 are accepted" in error(client, f"filter={quote(long)}")[
        "description"]
    many = "area_m2 IN (" + ",".join(["1"] * 190) + ")"
    assert len(many) <= 400
    assert f"more than {cql.MAX_FILTER_NODES} terms" in error(client, f"filter={quote(many)}")["description"]
    nested = "name = 'a'"
    for i in range(cql.MAX_FILTER_DEPTH + 1):
        nested = f"(name='{i}' {'AND' if i % 2 else 'OR'} {nested})"
    assert len(nested) <= 400
    assert f"more than {cql.MAX_FILTER_DEPTH} levels" in error(client, f"filter={quote(nested)}")["description"]
    flat = " OR ".join(f"name='n{i}'" for i in range(25))       # a long chain is one level, within the terms
    assert page(client, f"filter={quote(flat)}")["numberMatched"] == 0
    polygon = "S_INTERSECTS(geometry, POLYGON((" + ",".join(["1 1", "2 1", "2 2"] * 22) + ",1 1)))"
    assert len(polygon) <= 400
    assert "more than 64 vertices" in error(client, f"filter={quote(polygon)}")["description"]
    deep_json = '{"op":"=","args":[{"property":"name"},' + "[" * 60 + "]" * 60 + "]}"
    assert "nested more than 48 levels" in error(client, f"filter={quote(deep_json)}")["description"]


def test_like_patterns_cannot_backtrack_for_ever(client):
    """A regular expression with .* per % takes seconds on one name for '%%%%%%%%%%x' (exponential backtracking);
    the LIKE matcher takes time proportional to name times pattern."""
    import time

    started = time.monotonic()
    assert filtered(client, "name LIKE '" + "%" * 300 + "x'") == []
    assert filtered(client, "name LIKE '" + "%示" * 180 + "%'") == []
    assert len(filtered(client, "name LIKE '" + "%" * 50 + "站%示例%'")) == 3400
    assert time.monotonic() - started < 2.0


# --- queryables, conformance, the API document ----------------------------------------------------------------------------
def test_queryables_document(client):
    r = client.get("/ogc/collections/stations/queryables")
    assert r.status_code == 200 and r.mimetype == "application/schema+json" and r.headers["ETag"]
    doc = r.get_json()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"] == "http://localhost/ogc/collections/stations/queryables"
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    props = doc["properties"]
    assert list(props) == ["id", "name", "district_code", "district", "subdistrict", "address", "services",
                           "opening_hours", "host_org", "area_m2", "smart", "source", "updated", "geometry"]
    assert props["name"] == {"title": "名称 / Name", "type": "string"}
    assert props["updated"] == {"title": "更新时间 / Updated (last public change)", "type": "string",
                                "format": "date-time"}
    assert props["area_m2"]["type"] == "number" and props["smart"]["type"] == "boolean"
    assert props["services"]["type"] == "array" and "charging" in props["services"]["items"]["enum"]
    assert props["geometry"] == {"title": "位置 / Location", "format": "geometry-point"}
    districts = client.get("/ogc/collections/districts/queryables").get_json()["properties"]
    assert districts["population_2020"]["type"] == "integer" and districts["area_km2"]["type"] == "number"
    assert districts["geometry"]["format"] == "geometry-multipolygon"
    gig = client.get("/ogc/collections/gig_markets/queryables").get_json()["properties"]
    assert gig["market_type"]["enum"] == ["comprehensive", "industry"]
    assert client.get("/ogc/collections/nope/queryables").status_code == 404
    assert client.get("/ogc/collections/stations/queryables?x=1").status_code == 400
    collection = client.get("/ogc/collections/stations").get_json()
    link = next(ln for ln in collection["links"] if ln["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/queryables")
    assert local(link["href"]) == "/ogc/collections/stations/queryables" and link["type"] == "application/schema+json"


def test_conformance_lists_part_3_and_cql2(client):
    classes = set(client.get("/ogc/conformance").get_json()["conformsTo"])
    assert {"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
            "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
            "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
            "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
            "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
            "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
            "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions"} <= classes
    # not implemented, so not claimed
    assert not any(c.endswith(("/temporal-functions", "/arithmetic", "/functions", "/accent-insensitive-comparison",
                               "/queryables-query-parameters")) for c in classes)


def test_api_document_declares_the_query_options(client, service):
    doc = client.get("/ogc/api").get_json()
    by_name = {p["name"]: p for p in doc["paths"]["/collections/stations/items"]["get"]["parameters"]}
    assert by_name["properties"]["schema"]["items"]["enum"][:3] == ["id", "name", "district_code"]
    assert "contact_phone" not in by_name["properties"]["schema"]["items"]["enum"]
    assert re.fullmatch(by_name["sortby"]["schema"]["items"]["pattern"], "-area_m2")
    assert not re.fullmatch(by_name["sortby"]["schema"]["items"]["pattern"], "services")
    assert by_name["filter-lang"]["schema"]["enum"] == ["cql2-text", "cql2-json", "cql-text"]
    assert by_name["filter"]["schema"]["maxLength"] == 400
    assert "/collections/stations/queryables" in doc["paths"]
    item = {p["name"]: p for p in doc["paths"]["/collections/stations/items/{featureId}"]["get"]["parameters"]}
    assert item["properties"]["schema"]["items"]["enum"] == ["id"]          # the same for every collection


@pytest.mark.parametrize("layer_id", ["stations", "districts", "gig_markets"])
def test_every_filter_the_document_promises_is_accepted(client, service, layer_id):
    """The pattern the document gives for filter (what schemathesis draws from) only describes filters the
    collection accepts: a sample of them, drawn with a fixed seed, in every filter-lang."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pattern = filter_pattern(service.layer(layer_id))

    @settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(st.from_regex(re.compile(pattern), fullmatch=True), st.sampled_from(cql.FILTER_LANGS))
    def accepted(text, lang):
        r = client.get(f"/ogc/collections/{layer_id}/items?filter={quote(text)}&filter-lang={lang}&limit=1")
        assert r.status_code == 200, (text, r.get_json())

    accepted()


# --- GDAL's OGC API client ----------------------------------------------------------------------------------------------
def ogrinfo(*args) -> subprocess.CompletedProcess:
    exe = shutil.which("ogrinfo")
    assert exe, "ogrinfo (Debian package gdal-bin) is required"
    return subprocess.run([exe, "-ro", "--debug", "on", *args], capture_output=True, text=True, timeout=180)


@pytest.mark.external
@pytest.mark.parametrize("where,cql_filter,count", [
    (f"district = '{PUDONG}'", f"district = '{PUDONG}'", 823),
    ("name LIKE '%便利店%' AND smart = 1", "name LIKE '%便利店%' AND smart = TRUE", 33),
    (f"NOT (district = '{PUDONG}') AND opening_hours = '24/7'", f"NOT (district = '{PUDONG}') AND "
                                                               "opening_hours = '24/7'", None),
])
def test_gdal_passes_its_where_through_as_cql2(live_server, client, where, cql_filter, count):
    """GDAL (3.6) translates -where into CQL text when the API lists cql-text in filter-lang's enum; the server
    answers the filter and GDAL counts what came back."""
    want = len(filtered(client, cql_filter))
    if count is not None:
        assert want == count
    run = ogrinfo("-al", "-so", f"OAPIF:{live_server}/ogc/collections/stations", "-where", where)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"Feature Count: {want}" in run.stdout
    fetched = [line for line in run.stderr.splitlines() if "Fetch(" in line and "/items?" in line]
    assert any("filter-lang=cql-text" in line for line in fetched), fetched[:5]
    assert "evaluated on client side" not in run.stderr
