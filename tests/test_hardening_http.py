"""Findings 11, 13, 14 and 15 of the audit of the running server, one test each (finding 14 is also exercised by
schemathesis against the live server: tests/test_schemathesis.py).

11. extreme dates (``at=9999-12-31T23:59:59-14:00``), deeply nested JSON bodies and non-finite or huge numbers gave
    500s: now every one is a 400 naming the parameter;
13. JSON and pages lacked ``X-Content-Type-Options: nosniff`` and /planning had no CSP: every answer of every route
    now has nosniff and a Referrer-Policy, every HTML page a CSP with frame-ancestors;
14. /ogc/api did not tell the truth (free-string crs, wrong nullability, no example ids, ...);
15. a second ``geoserver serve`` on a held port started silently and shared it (SO_REUSEPORT).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_openapi

from geoserver.core import query as q
from geoserver.core.auth import TokenStore
from geoserver.core.service import GeoService
from geoserver.web import create_app
from geoserver.web.workers import VENDOR_CSS, VENDOR_JS
from tests.conftest import ROOT, start_server, stop_server

EXTREME = "9999-12-31T23:59:59-14:00"   # converting it to Shanghai time (UTC+8) overflows datetime
DEEP = 1000


class World:
    """A copy of the bundled data with its own app and an operator token (admin routes are called too)."""

    def __init__(self, tmp: Path):
        data_dir = tmp / "geo"
        shutil.copytree(ROOT / "data" / "geo", data_dir)
        self.service = GeoService(data_dir=data_dir)
        tokens = tmp / "tokens.json"
        self.config = {"JOBS_DIR": str(tmp / "jobs"), "ADMIN_TOKENS_FILE": str(tokens)}
        self.app = create_app(self.config, service=self.service)
        self.client = self.app.test_client()
        self.admin = {"Authorization": f"Bearer {TokenStore(tokens).add('tester')}"}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("hardening"))


def bad(resp, parameter: str, *fragments: str) -> None:
    """A 400 JSON error naming ``parameter`` (and containing each fragment in its description)."""
    body = resp.get_json(silent=True)
    assert resp.status_code == 400, (resp.status_code, resp.get_data()[:300])
    assert body and body.get("parameter") == parameter, body
    for fragment in fragments:
        assert fragment in body["description"], (fragment, body)


# --- 11: 500 instead of 400 -----------------------------------------------------------------------------------------
def test_11_extreme_dates_deep_json_and_odd_numbers_are_400_not_500(world):
    c, admin = world.client, world.admin
    near = "/api/nearest?lon=121.47&lat=31.23"
    coverage = "radius_m=1000&cell_m=3000"
    quote = urllib.parse.quote

    # dates: one parser, years 2000-2100, in every place a date/time is read
    for value in (EXTREME, "0001-01-01T00:00:00+14:00", "1999-12-31T23:59:59", "2101-01-01T00:00", "2026-02-30T12:00",
                  "soon", "2026-13-01"):
        bad(c.get(f"{near}&at={quote(value)}"), "at")
    bad(c.get(f"{near}&at={quote(EXTREME)}"), "at", "2000", "2100")
    for path in ("/api/coverage", "/api/coverage/gaps"):
        bad(c.get(f"{path}?{coverage}&open_at={quote(EXTREME)}"), "open_at", "2000", "2100")
    bad(c.get(f"/planning?k=0&{coverage}&open_at={quote(EXTREME)}"), "open_at", "2000", "2100")
    bad(c.post("/api/siting", json={"k": 1, "cell_m": 3000, "open_at": EXTREME}), "open_at", "2000", "2100")
    bad(c.post("/api/nearest", json={"at": EXTREME, "points": [[121.47, 31.23]]}), "at", "2000", "2100")
    for value in ("2000-01-01T00:00:00", "2100-12-31T23:59:59-14:00", "2026-11-25T22:00"):  # the range's edges work
        r = c.get(f"{near}&at={quote(value)}")
        assert r.status_code == 200, (value, r.get_json())

    # JSON nested 1,000 deep: refused before parsing, on every route that reads JSON
    deep = "[" * DEEP + "]" * DEEP
    bad(c.post("/api/nearest", data=deep, content_type="application/json"), "body", f"nested {DEEP} levels deep")
    bad(c.post("/api/nearest", data='{"points": ' + deep + "}", content_type="application/json"), "body",
        f"nested {DEEP + 1} levels deep")
    bad(c.post("/api/siting", data='{"k": 1, "polygon": ' + deep + "}", content_type="application/json"), "body")
    bad(c.post("/api/siting", data=deep, content_type="text/plain"), "body")   # force=True: any content type
    fid = str(world.service.layer("stations").ids[0])
    for method, path in (("POST", "/api/admin/layers/stations/features"),
                         ("PUT", f"/api/admin/layers/stations/features/{fid}"),
                         ("POST", "/api/admin/layers/stations/rollback"),
                         ("POST", "/api/admin/layers/stations/geocode")):
        r = c.open(path, method=method, data='{"a": ' + deep + "}", content_type="application/json", headers=admin)
        bad(r, "body", "nested")
    # brackets inside strings do not count, and 32 levels are fine
    ok = {"points": [[121.47, 31.23]], "layer": "stations"}
    assert c.post("/api/nearest", data=json.dumps(ok)[:-1] + ', "k": 1}', content_type="application/json"
                  ).status_code == 200
    text = c.post("/api/nearest", json={**ok, "services": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})
    assert "nested" not in text.get_json()["description"]
    at_limit = c.post("/api/nearest", data='{"points": ' + "[" * 31 + "]" * 31 + "}", content_type="application/json")
    assert at_limit.status_code == 200, at_limit.get_json()   # 32 levels: read (and the odd point answered alone)
    bad(c.post("/api/nearest", data='{"points": ' + "[" * 32 + "]" * 32 + "}", content_type="application/json"),
        "body", "nested 33 levels deep; at most 32")

    # numbers: NaN, infinities, huge integers and non-ASCII digits are 400s naming the parameter
    for value in ("nan", "inf", "-inf", "1e309", "9" * 40, "１２", "1_0", "3.0", "0x10"):
        bad(c.get(f"{near}&k={quote(value)}"), "k")
    for value in ("nan", "inf", "1e309", "Infinity"):
        bad(c.get(f"{near}&max_distance_m={value}"), "max_distance_m")
        bad(c.get(f"/api/coverage?cell_m=3000&radius_m={value}"), "radius_m")
        bad(c.get(f"/api/coverage?radius_m=1000&cell_m={value}"), "cell_m")
        bad(c.get(f"/api/coverage?cell_m=3000&minutes={value}&mode=walk"), "minutes")
        bad(c.get(f"/api/coverage/gaps?{coverage}&limit={value}"), "limit")
        bad(c.get(f"/ogc/collections/stations/items?limit={value}"), "limit")
        bad(c.get(f"/ogc/collections/stations/items?offset={value}"), "offset")
        bad(c.get(f"/planning?{coverage}&k={value}"), "k")
    bad(c.get("/ogc/collections/stations/items?offset=" + "9" * 40), "offset", "at most")
    assert c.get("/ogc/collections/stations/items?limit=" + "9" * 40).status_code == 200   # clamped, as OGC says
    assert c.get("/ogc/collections/stations/items?limit=" + "9" * 5000).status_code == 400   # over 2,000 characters
    for field, raw in (("k", "NaN"), ("k", "1e400"), ("k", "1" + "0" * 60), ("radius_m", "Infinity"),
                       ("cell_m", "NaN"), ("minutes", "1e999"), ("spacing_m", "-Infinity"), ("time_limit_s", "NaN"),
                       ("target_pct", "NaN")):
        body = {"k": "1", "cell_m": "3000", "mode": "walk" if field == "minutes" else None}
        body = {key: value for key, value in body.items() if value is not None and key != field}
        if field == "target_pct":
            body.pop("k")
        text = "{" + ", ".join(f'"{key}": {value}' if key != "mode" else f'"mode": "{value}"'
                               for key, value in {**body, field: raw}.items()) + "}"
        bad(c.post("/api/siting", data=text, content_type="application/json"), field)
    bad(c.post("/api/nearest", data='{"k": NaN, "points": [[121.47, 31.23]]}', content_type="application/json"), "k")
    r = c.post("/api/nearest", data='{"points": [[NaN, 31.23], [121.47, Infinity], [121.47, 31.23]]}',
               content_type="application/json")
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert [("error" in res) for res in results] == [True, True, False], results


# --- 13: security headers ----------------------------------------------------------------------------------------
#: Files to ask the static routes for.
STATIC_FILES = {"/static/app/<path:path>": ["app.js", "app.css", "nope.js"],
                "/static/vendor/<path:path>": [VENDOR_JS[0], VENDOR_CSS[0], "leaflet/nope.js"]}
#: Queries that make the data routes answer 200 (plus the bare route, which mostly answers 400).
QUERIES = {"/api/nearest": ["lon=121.47&lat=31.23"], "/api/coverage": ["radius_m=1000&cell_m=3000"],
           "/api/coverage/gaps": ["radius_m=1000&cell_m=3000"], "/planning": ["k=0&cell_m=3000"],
           "/ogc/collections/<layer_id>/items": ["limit=2"], "/api/feed/<layer_id>/changes": ["since=0"], "/api/admin/layers/<layer>/features": ["limit=2"]}
PAGE_DIRECTIVES = ("frame-ancestors", "object-src 'none'", "base-uri 'self'")


def fill(rule, world: World) -> list[str]:
    """The rule's path with real (and one made-up) values for its variables."""
    values = {"layer_id": ["stations", "nope"], "layer": ["stations"], "feature_id": ["ST00001", "NOPE"],
              "fid": ["ST00001"], "job_id": ["0123456789abcdef"],
              # vector tiles: the z=12 tile over People's Square, and a zoom level that is not served
              "tile_matrix_set_id": ["WebMercatorQuad", "nope"], "z": ["12", "17"], "x": ["3430"], "y": ["1673"]}
    unknown = set(rule.arguments) - set(values) - {"path"}
    assert not unknown, f"the crawl does not know how to fill {sorted(unknown)} in {rule.rule}: teach it"
    paths = [rule.rule]
    for name in rule.arguments:
        choices = STATIC_FILES[rule.rule] if name == "path" else values[name]
        pattern = re.compile(rf"<(?:[^:<>]+:)?{name}>")
        paths = [pattern.sub(urllib.parse.quote(v, safe="/"), p) for p in paths for v in choices]
    return paths


def test_13_every_answer_has_nosniff_and_referrer_policy_and_every_page_a_csp(world):
    c = world.client
    answers = []   # (method, url, status, headers)

    def call(method: str, url: str, **kw):
        resp = c.open(url, method=method, **kw)
        answers.append((method, url, resp.status_code, resp.headers, resp.mimetype))
        return resp

    for rule in sorted(world.app.url_map.iter_rules(), key=lambda r: r.rule):
        for path in fill(rule, world):
            admin = path.startswith("/api/admin")
            for method in sorted(rule.methods):
                if method in ("GET", "HEAD"):
                    for query in [""] + QUERIES.get(rule.rule, []):
                        url = path + ("?" + query if query else "")
                        call(method, url)
                        if admin:
                            call(method, url, headers=world.admin)
                        r = call(method, url, headers={"Accept-Encoding": "gzip"})
                        if r.headers.get("ETag"):
                            call(method, url, headers={"If-None-Match": r.headers["ETag"]})
                elif method == "OPTIONS":
                    call(method, path, headers={"Origin": "https://example.org",
                                                "Access-Control-Request-Method": "GET"})
                else:   # writes: never with the token (nothing may change); a bad body for the public ones
                    call(method, path, json={})
    call("GET", "/no/such/path")
    call("POST", "/ogc")                                   # 405
    call("POST", "/api/nearest", data=b"x" * (6 << 20))    # 413
    call("GET", "/api/siting/jobs/" + "x" * 50)

    statuses = {status for *_, status, _, _ in answers}
    assert {200, 304, 400, 401, 404, 405, 413} <= statuses, statuses
    assert len(answers) > 150
    missing = [(m, u, s) for m, u, s, h, _ in answers
               if h.get("X-Content-Type-Options") != "nosniff" or not h.get("Referrer-Policy")]
    assert not missing, f"answers without nosniff / Referrer-Policy: {missing[:10]}"
    pages = [(m, u, s, h) for m, u, s, h, mime in answers if mime == "text/html" and s == 200]
    assert {u.split("?")[0] for _, u, _, _ in pages} >= {"/", "/admin", "/planning"}, pages
    for method, url, status, headers in pages:
        csp = headers.get("Content-Security-Policy", "")
        for directive in PAGE_DIRECTIVES:
            assert directive in csp, (method, url, directive, csp)
    data = [(m, u, h) for m, u, s, h, mime in answers if mime in ("application/json", "application/geo+json")]
    assert data and all("frame-ancestors 'none'" in h.get("Content-Security-Policy", "") for _, _, h in data)

    # /planning: a Folium page (inline scripts and styles) that nobody else may frame
    planning = c.get("/planning?k=0&cell_m=3000")
    csp = planning.headers["Content-Security-Policy"]
    for directive in ("frame-ancestors 'self'", "object-src 'none'", "base-uri 'self'", "connect-src 'self'",
                      "script-src 'self' 'unsafe-inline'", "style-src 'self' 'unsafe-inline'"):
        assert directive in csp, (directive, csp)
    # images from this server and the default base map's tile host only (OpenStreetMap when nothing is configured)
    assert "img-src 'self' data: blob: https://tile.openstreetmap.org;" in csp, csp
    assert " http: " not in csp and " https: " not in csp
    tiled = create_app({**world.config, "TILES_URL": "https://{s}.tile.example.org/{z}/{x}/{y}.png",
                        "TILES_ATTRIBUTION": "© example"},
                       service=world.service).test_client()
    csp = tiled.get("/planning?k=0&cell_m=3000").headers["Content-Security-Policy"]
    assert re.search(r"img-src [^;]*https://\*\.tile\.example\.org", csp), csp
    assert "frame-ancestors 'self'" in csp


# --- 14: the OpenAPI document tells the truth -----------------------------------------------------------------------
def _inline(node, schemas: dict):
    """``node`` with every ``#/components/schemas/...`` reference replaced by the schema itself."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(schemas[node["$ref"].rsplit("/", 1)[1]], schemas)
        return {k: _inline(v, schemas) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, schemas) for v in node]
    return node


def _longest_value(schema: dict) -> int:
    """The longest a valid value of a query parameter can be on the wire (percent-encoded UTF-8: up to 12 bytes
    per character; numbers up to 40 characters)."""
    if schema.get("type") == "array":
        item = schema.get("items", {})
        longest_item = max((len(v) for v in item.get("enum", [])), default=40)
        return schema.get("maxItems", 6) * (longest_item + 1)
    if "enum" in schema:
        return max(len(urllib.parse.quote(str(v), safe="")) for v in schema["enum"])
    if schema.get("type") == "string":
        return 12 * schema["maxLength"]
    return 40


def test_14_the_openapi_document_tells_the_truth(client, service):
    doc = client.get("/ogc/api").get_json()
    validate_openapi(doc)
    schemas = doc["components"]["schemas"]
    base = "/ogc"
    for template, item in doc["paths"].items():
        op = item["get"]
        params = {p["name"]: p for p in op.get("parameters", [])}
        example = params.get("featureId", {}).get("example")
        path = base + template.replace("{featureId}", example or "")
        if "featureId" in params:
            assert example, f"{template} has no example id"
        ok = client.get(path)
        assert ok.status_code == 200, (path, ok.get_data()[:200])   # example ids are real, public features
        # the 200's content type, schema and headers are what the document says
        declared = op["responses"]["200"]
        (content_type, media), = declared["content"].items()
        assert ok.headers["Content-Type"] == content_type, (template, ok.headers["Content-Type"])
        OAS30Validator(_inline(media["schema"], schemas)).validate(ok.get_json())
        assert ("ETag" in ok.headers) == ("ETag" in declared.get("headers", {})) == ("304" in op["responses"])
        if "ETag" in ok.headers:
            assert client.get(path, headers={"If-None-Match": ok.headers["ETag"]}).status_code == 304
        # anything not listed is refused: unknown and repeated parameters, values outside the enums
        bad(client.get(f"{path}?zz=1"), "zz", "unknown query parameter")
        if "f" in params:
            assert params["f"]["schema"]["enum"]
            for value in params["f"]["schema"]["enum"]:
                assert client.get(f"{path}?f={urllib.parse.quote(value)}").status_code == 200, value
            bad(client.get(f"{path}?f=JSON"), "f")
            bad(client.get(f"{path}?f=json&f=json"), "f")
        for name in ("crs", "bbox-crs"):
            if name not in params:
                continue
            assert params[name]["schema"]["enum"] == list(q.OGC_CRS_VALUES)
            for value in q.OGC_CRS_VALUES:
                assert client.get(f"{path}?{name}={urllib.parse.quote(value)}").status_code == 200, (name, value)
            for value in ("WGS84", "", "crs84", "EPSG:4326", "gcj-02", " wgs84",
                          "http://www.opengis.net/def/crs/EPSG/0/4326"):
                bad(client.get(f"{path}?{name}={urllib.parse.quote(value)}"), name, "unknown coordinate system")
        if template.endswith("/items"):
            lid = template.split("/")[2]
            # every feature of the layer (nulls included) matches the declared schema
            page = client.get(f"{path}?limit=10000").get_json()
            OAS30Validator(_inline(media["schema"], schemas)).validate(page)
            nullable = {name for name, s in schemas[f"feature_{lid}"]["properties"]["properties"]["properties"].items()
                        if s.get("nullable")}
            spec = service.layers[lid].spec
            assert {f.name for f in spec.public_fields if not f.required} <= nullable
            assert {k for f in page["features"] for k, v in f["properties"].items() if v is None} <= nullable
            # limit: no maximum (a larger value is served as the maximum); offset: a real maximum
            assert "maximum" not in params["limit"]["schema"]
            assert str(q.ITEMS_MAX_LIMIT) in params["limit"]["description"]
            assert client.get(f"{path}?limit={q.ITEMS_MAX_LIMIT * 3}").status_code == 200
            assert params["offset"]["schema"]["maximum"] == q.MAX_OFFSET
            bad(client.get(f"{path}?offset={q.MAX_OFFSET + 1}"), "offset")
            bad(client.get(f"{path}?bbox="), "bbox")
            if "services" in params:
                assert params["services"]["schema"]["minItems"] == 1
                for value in ("", "water,", ",water", ",".join(["water"] * 40)):
                    bad(client.get(f"{path}?services={value}"), "services")
            # every valid request fits the HTTP server's request line (64 KB; longer ones get 414)
            longest = len(path) + sum(len(n) + 2 + _longest_value(p["schema"]) for n, p in params.items())
            assert longest < 65_000, (template, longest)
            text_params = [p for p in params.values()
                           if p["schema"].get("type") == "string" and "enum" not in p["schema"]]
            for p in text_params:
                assert p["schema"]["maxLength"] == q.OGC_TEXT_MAX_LENGTH
            name = next(p["name"] for p in text_params if "pattern" not in p["schema"])   # free text
            bad(client.get(f"{path}?{name}={'x' * (q.OGC_TEXT_MAX_LENGTH + 1)}"), name, "characters long")
            assert client.get(f"{path}?{name}={'x' * q.OGC_TEXT_MAX_LENGTH}").status_code == 200
        if "featureId" in params:
            missing = client.get(base + template.replace("{featureId}", "NO-SUCH-ID"))
            assert missing.status_code == 404 and "404" in op["responses"]


# --- 15: a second server on a held port -------------------------------------------------------------------------
def _read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """stderr of ``proc`` until a line holding ``needle`` (or its exit, or the timeout)."""
    import selectors
    out = ""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while needle not in out and time.monotonic() < deadline:
        if sel.select(timeout=0.2):
            line = proc.stderr.readline()
            if not line:
                break
            out += line.decode(errors="replace")
    return out


@pytest.mark.external
def test_15_a_second_serve_on_a_held_port_exits_with_a_one_line_error():
    url, first = start_server(workers=1)
    port = urllib.parse.urlsplit(url).port
    exe = str(Path(sys.executable).with_name("geoserver"))
    try:
        started = time.monotonic()
        second = subprocess.run([exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
        err = second.stderr.strip()
        assert second.returncode == 1, (second.returncode, err)
        assert f"port {port} on 127.0.0.1 is already in use (another geoserver serve?); stop it or choose --port" \
            in err, err
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert took < 10, took
        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:   # the first one is undisturbed
            assert resp.status == 200
        # --reuse-port: a deliberate handover starts next to the old server
        handover = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                     "--reuse-port"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True)
        try:
            out = _read_until(handover, "serving", 60)
            assert "serving" in out and "already in use" not in out, out
            time.sleep(1)
            assert handover.poll() is None, out
        finally:
            stop_server(handover)
    finally:
        stop_server(first)


def test_odd_edges_found_along_the_way(service, tiny_service):
    """A tile URL configured without an attribution still gives a planning page; an admin feature with NaN
    coordinates is refused, not stored as a facility without a position."""
    page = create_app({"TILES_URL": "https://{s}.tile.example.org/{z}/{x}/{y}.png"}, service=service).test_client()
    r = page.get("/planning?k=0&radius_m=1000&cell_m=500")
    assert r.status_code == 200 and "tile.example.org" in r.get_data(as_text=True)
    admin = create_app(service=tiny_service).test_client()
    auth = {"Authorization": f"Bearer {tiny_service.storage.tokens().add('staff')}",
            "Content-Type": "application/json"}
    body = ('{"type": "Feature", "geometry": {"type": "Point", "coordinates": [NaN, 31.2]}, "properties": '
            '{"name": "x", "district": "黄浦区", "address": "y", "services": ["water"]}}')
    r = admin.post("/api/admin/layers/stations/features", data=body, headers=auth)
    assert r.status_code == 400 and r.json["parameter"] == "geometry"
    assert tiny_service.layer("stations").pending_count == 0
