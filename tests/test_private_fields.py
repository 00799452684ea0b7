"""Private fields (contact_name, contact_phone) never leave the server except through the token-protected admin API;
nor do pending rows (待定位: no confirmed position) and the submitter block of the unions' forms.

Features of every editable layer get unique marker values in their private fields (an admin create, an admin
replace of the first feature of each layer, an admin CSV import). Then every public route of the app is visited
(generically, from the URL map, with real layer, feature and job ids and queries that make each return data), the
public POST routes are called, filters on private fields are tried, and the CLI reports are written: the markers
must appear nowhere, in no encoding, while the admin API shows them. Pending rows carry a marker in their names (the
printed 申报汇总表 imported without coordinates, a facility created without a position, a placed one whose address
then changed, keeping its old point as a proposal) and the form's submitter a marker name: neither may appear in a
public answer, and no public answer may carry a pending row's id.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.core.auth import TokenStore, tokens_path
from geoserver.core.service import GeoService
from geoserver.web import create_app
from geoserver.web.workers import VENDOR_CSS, VENDOR_JS
from tests import seed_form
from tests.conftest import ROOT

MARK_NAME = "私密联系人甲"
MARK_PHONE = "13912340000"
MARK_PENDING = "待定位标记丙"        # in the names of pending rows
MARK_SUBMITTER = "填报人标记丁"      # the form's 联系人姓名
PRIVATE = ("contact_name", "contact_phone")
SKIP_METHODS = {"HEAD", "OPTIONS"}
#: Files to ask the static-asset routes for (those routes are visited too, though not counted as public data).
STATIC_FILES = {"/static/app/<path:path>": ["app.js", "app.css"],
                "/static/vendor/<path:path>": [VENDOR_JS[0], VENDOR_CSS[0]]}


def marker_forms() -> list[str]:
    """The markers as they could appear in a body: raw, JSON \\u-escaped, HTML entities, URL-encoded, and the phone
    number with the usual separators."""
    out = []
    for s in (MARK_NAME, MARK_PHONE, MARK_PENDING, MARK_SUBMITTER):
        out += [s, json.dumps(s)[1:-1], "".join(f"&#{ord(c)};" for c in s), "".join(f"&#x{ord(c):x};" for c in s),
                urllib.parse.quote(s)]
    parts = (MARK_PHONE[:3], MARK_PHONE[3:7], MARK_PHONE[7:])
    out += [" ".join(parts), "-".join(parts)]
    return sorted({f.lower() for f in out})


FORMS = marker_forms()


def leaks(text: str) -> list[str]:
    low = text.lower()
    return [f for f in FORMS if f in low]


def body_text(resp) -> str:
    data = resp.get_data()
    if resp.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    if resp.mimetype == "application/zip":   # a report: every text file in it (the PDF's text is not searched)
        import io
        import zipfile
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "\n".join(archive.read(n).decode("utf-8", errors="replace") for n in archive.namelist()
                             if not n.endswith(".pdf"))
    return data.decode("utf-8", errors="replace")


def station_feature(name, lon, lat, district, address, **extra) -> dict:
    props = {"name": name, "district": district, "address": address, "services": ["water", "rest"],
             "opening_hours": "24/7", "host_org": f"{district}总工会", "contact_name": MARK_NAME,
             "contact_phone": MARK_PHONE, **extra}
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": props}


class World:
    """A tmp copy of the data with marker features, its app, an admin token, the marker ids and a finished job."""

    def __init__(self, tmp: Path):
        self.data_dir = tmp / "geo"
        shutil.copytree(ROOT / "data" / "geo", self.data_dir)
        self.service = GeoService(data_dir=self.data_dir)
        self.app = create_app({"JOBS_DIR": str(tmp / "jobs")}, service=self.service)
        self.client = self.app.test_client()
        self.admin = {"Authorization": f"Bearer {TokenStore(tokens_path(self.data_dir)).add('tester')}"}
        self.markers: dict[str, list[str]] = {}      # layer -> ids of features holding the markers
        self.pending: dict[str, list[str]] = {}      # layer -> ids of pending rows
        self.proposals: list[tuple[float, float]] = []   # points pending rows hold as proposals
        self.job_id = None

    def add_markers(self) -> None:
        c = self.client
        # a new station (admin create)
        r = c.post("/api/admin/layers/stations/features", headers=self.admin,
                   json=station_feature("标记驿站甲", 121.4737, 31.2304, "黄浦区", "人民大道200号"))
        assert r.status_code == 201, r.json
        self.markers.setdefault("stations", []).append(r.json["feature"]["id"])
        # the first feature of every editable layer (admin replace: what an OpenAPI example or a "first feature"
        # shortcut would pick)
        editable = c.get("/api/admin/layers", headers=self.admin).json["layers"]
        for entry in editable:
            lid = entry["id"]
            if not set(PRIVATE) <= set(entry["private_fields"]):
                continue
            fid = str(self.service.layer(lid).ids[0])
            current = c.get(f"/api/admin/layers/{lid}/features/{fid}", headers=self.admin)
            assert current.status_code == 200, current.json
            props = {**current.json["properties"], "contact_name": MARK_NAME, "contact_phone": MARK_PHONE}
            r = c.put(f"/api/admin/layers/{lid}/features/{fid}", headers=self.admin,
                      json={"type": "Feature", "geometry": current.json["geometry"], "properties": props})
            assert r.status_code == 200, r.json
            self.markers.setdefault(lid, []).append(fid)
        # a new station from an uploaded spreadsheet (admin import, merge), private columns under their Chinese names
        csv_text = ("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度,点位联系人,手机号码\n"
                    f"标记驿站乙,徐汇区,漕溪北路1号,徐汇区总工会,补水、休憩,24/7,121.4365,31.1951,{MARK_NAME},{MARK_PHONE}\n")
        r = c.post("/api/admin/layers/stations/import?crs=wgs84&mode=merge", headers=self.admin,
                   data={"file": (io.BytesIO(csv_text.encode("utf-8")), "markers.csv")},
                   content_type="multipart/form-data")
        assert r.status_code == 200 and r.json["imported"], r.json
        stations = self.service.layer("stations")
        new_id = next(str(fid) for fid, p in zip(stations.ids, stations.properties) if p["name"] == "标记驿站乙")
        self.markers["stations"].append(new_id)

    def add_pending(self) -> None:
        c = self.client
        # the printed form, without coordinates (every row pending), its submitter block holding a marker
        rows = [[f"{MARK_PENDING}{i}号休息室", *row[1:]] for i, row in enumerate(seed_form.ROWS)]
        buf = io.BytesIO()
        seed_form.write_xlsx(buf, rows, {**seed_form.SUBMITTER, "name": MARK_SUBMITTER})
        r = c.post("/api/admin/layers/rest_rooms/import", headers=self.admin,
                   data={"file": (io.BytesIO(buf.getvalue()), "申报汇总表.xlsx")}, content_type="multipart/form-data")
        assert r.status_code == 200 and r.json["imported"] and r.json["pending_rows"] == 3, r.json
        # a facility created without a position
        body = {"type": "Feature", "geometry": None, "properties": {"name": f"{MARK_PENDING}驿站", "district": "黄浦区",
                                                                    "address": "人民大道201号", "services": ["water"]}}
        r = c.post("/api/admin/layers/stations/features", headers=self.admin, json=body)
        assert r.status_code == 201, r.json
        self.pending["stations"] = [r.json["feature"]["id"]]
        # a placed rest room whose address then changes: pending again, its point kept as a proposal
        body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.4760, 31.2320]},
                "properties": {"name": f"{MARK_PENDING}提议休息室", "district": "黄浦区", "address": "人民大道202号",
                               "services": ["rest"]}}
        r = c.post("/api/admin/layers/rest_rooms/features", headers=self.admin, json=body)
        assert r.status_code == 201, r.json
        fid = r.json["feature"]["id"]
        moved = f"编号,休息室名称,行政区,具体门牌号,提供设施及服务\n{fid},{MARK_PENDING}提议休息室,黄浦区,人民大道203号,休息\n"
        r = c.post("/api/admin/layers/rest_rooms/import?mode=merge", headers=self.admin,
                   data={"file": (io.BytesIO(moved.encode("utf-8")), "moved.csv")}, content_type="multipart/form-data")
        assert r.status_code == 200 and r.json["change"]["updated"] == 1, r.json
        listing = c.get("/api/admin/layers/rest_rooms/features?location_status=pending", headers=self.admin).json
        self.pending["rest_rooms"] = [f["id"] for f in listing["features"]]
        proposal = next(f for f in listing["features"] if f["id"] == fid)
        assert proposal["properties"]["location_reason"] == "address_changed" and proposal["geometry"], proposal
        self.proposals.append(tuple(proposal["geometry"]["coordinates"]))
        assert len(self.pending["rest_rooms"]) == 4

    def run_job(self) -> None:
        """A finished background siting job, so /api/siting/jobs/<job_id> has a real id with a result."""
        r = self.client.post("/api/siting", json={"layer": "stations", "k": 2, "candidates": "both",
                                                   "candidate_layer": "stations", "async": True})
        assert r.status_code == 202, r.json
        self.job_id = r.json["job_id"]
        deadline = time.monotonic() + 60
        while self.client.get(f"/api/siting/jobs/{self.job_id}").json["state"] == "running":
            assert time.monotonic() < deadline, "the siting job did not finish"
            time.sleep(0.1)
        assert self.client.get(f"/api/siting/jobs/{self.job_id}").json["state"] == "done"

    def marker_point(self, layer_id: str) -> tuple[float, float]:
        layer = self.service.layer(layer_id)
        pos = layer.position(self.markers[layer_id][0])
        return float(layer.index.lon[pos]), float(layer.index.lat[pos])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("private"))
    w.add_markers()
    w.add_pending()
    w.run_job()
    return w


# --- the markers are really stored --------------------------------------------------------------------------------
def test_admin_api_shows_the_markers(world):
    assert sum(len(v) for v in world.markers.values()) >= 3 and len(world.markers) >= 5, world.markers
    for lid, ids in world.markers.items():
        for fid in ids:
            r = world.client.get(f"/api/admin/layers/{lid}/features/{fid}", headers=world.admin)
            assert r.status_code == 200
            props = r.json["properties"]
            assert (props["contact_name"], props["contact_phone"]) == (MARK_NAME, MARK_PHONE), (lid, fid, props)
    listing = world.client.get("/api/admin/layers/stations/features?limit=1000&offset=3000", headers=world.admin)
    assert MARK_NAME in body_text(listing) and MARK_PHONE in body_text(listing)
    # and without the token the admin API says nothing
    anonymous = world.client.get(f"/api/admin/layers/stations/features/{world.markers['stations'][0]}")
    assert anonymous.status_code == 401 and not leaks(body_text(anonymous))


def test_admin_api_shows_the_pending_rows_and_the_submitter(world):
    c, auth = world.client, world.admin
    for lid, ids in world.pending.items():
        listing = c.get(f"/api/admin/layers/{lid}/features?location_status=pending", headers=auth).json
        assert {f["id"] for f in listing["features"]} == set(ids)
        assert all(MARK_PENDING in f["properties"]["name"] for f in listing["features"])
    history = c.get("/api/admin/layers/rest_rooms/history", headers=auth).json["versions"]
    assert any(v["summary"].get("submitter", {}).get("name") == MARK_SUBMITTER for v in history)
    audit = c.get("/api/admin/audit?layer=rest_rooms", headers=auth).json["records"]
    assert any(r.get("submitter", {}).get("name") == MARK_SUBMITTER for r in audit)
    assert c.get("/api/admin/audit").status_code == 401


# --- every public route ---------------------------------------------------------------------------------------------
def is_public(rule) -> bool:
    return not rule.rule.startswith("/api/admin")


def is_static(rule) -> bool:
    return rule.rule.startswith("/static/")


def path_values(world: World, rule) -> list[dict]:
    """Every combination of real values for the rule's path variables (unknown variables fail the test)."""
    args = set(rule.arguments)
    layer_arg = next((a for a in ("layer_id", "layer") if a in args), None)
    feature_arg = next((a for a in ("feature_id", "fid", "featureId") if a in args), None)
    unknown = args - {layer_arg, feature_arg, "job_id", "path"} - TILE_ARGS
    assert not unknown, f"the crawl does not know how to fill {sorted(unknown)} in {rule.rule}: teach it"
    combos = [{}]
    if layer_arg:
        combos = [{layer_arg: lid} for lid in world.service.layers]
    if feature_arg:
        assert layer_arg, rule.rule
        combos = [{**c, feature_arg: fid} for c in combos
                  for fid in world.markers.get(c[layer_arg], [str(world.service.layer(c[layer_arg]).ids[0])])]
    if "job_id" in args:
        combos = [{**c, "job_id": world.job_id} for c in combos]
    if "path" in args:
        assert rule.rule in STATIC_FILES, f"the crawl has no file to ask {rule.rule} for: add one to STATIC_FILES"
        combos = [{**c, "path": p} for c in combos for p in STATIC_FILES[rule.rule]]
    if "tile_matrix_set_id" in args:
        combos = [{**c, "tile_matrix_set_id": "WebMercatorQuad"} for c in combos]
    if "z" in args:
        combos = [{**c, **tile} for c in combos for tile in tile_values(world, c.get(layer_arg))]
    return combos


#: The path variables of the vector tile routes.
TILE_ARGS = {"tile_matrix_set_id", "z", "x", "y"}


def tile_values(world: World, layer_id: str | None) -> list[dict]:
    """The whole world at z=0 (every feature of the layer in one tile) and the z=12 tile around the layer's first
    marker (People's Square for the layers without markers and for the tiles of all point layers)."""
    import morecantile
    lon, lat = world.marker_point(layer_id) if layer_id in world.markers else (121.4737, 31.2304)
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 12)
    return [{"z": 0, "x": 0, "y": 0}, {"z": tile.z, "x": tile.x, "y": tile.y}]


def queries(world: World, rule, values: dict) -> list[str]:
    """Query strings that make the route return data (with the markers nearby), plus f=json / f=html."""
    svc = world.service
    point_layers = [lid for lid, lay in svc.layers.items() if lay.index.is_point]
    lid = values.get("layer_id") or values.get("layer")
    out = ["", "f=json", "f=html"]
    if rule.rule == "/api/nearest":
        for layer_id in point_layers:
            lon, lat = world.marker_point(layer_id) if layer_id in world.markers else (121.4737, 31.2304)
            base = f"lon={lon}&lat={lat}&layer={layer_id}&k=50"
            out += [base, base + "&crs=gcj02", base + "&crs=bd09", base + "&services=water", base + "&open_now=true",
                    base + "&max_distance_m=5000"]
        out += [f"lon={lon}&lat={lat}&layer=rest_rooms&k=500" for lon, lat in world.proposals]
    elif rule.rule.endswith("/items") and lid:
        out += ["limit=10000", "limit=10000&crs=gcj02", "limit=10000&f=json", "limit=10000&f=html",
                "limit=10000&offset=0&crs=bd09"]
        if lid in world.markers:
            lon, lat = world.marker_point(lid)
            out += [f"bbox={lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}&limit=10000",
                    "limit=10000&district=" + urllib.parse.quote("黄浦区")]
    elif "/items/" in rule.rule:
        out += ["crs=gcj02", "crs=bd09"]
    elif rule.rule in ("/api/coverage", "/api/coverage/gaps"):
        extra = "&limit=1000" if rule.rule.endswith("gaps") else ""
        # coverage answers are per district, not per feature: the marker layers with the most and the fewest
        # features are enough
        out += [f"layer={layer_id}&radius_m=1000{extra}" for layer_id in ("stations", "gig_markets")]
        out += [f"minutes=10&mode=walk{extra}"]
    elif rule.rule == "/planning":
        out += ["k=0", "k=2", "k=0&layer=canteens"]
    elif rule.rule == "/api/feed/<layer_id>/changes":   # every feature the markers' imports added, public form
        out += ["since=0&limit=10000", "since=0&limit=10000&crs=gcj02"]
    elif rule.rule == "/api/feed/<layer_id>/snapshot":
        out += ["format=csv", "crs=bd09", "format=csv&crs=gcj02"]
    elif "/tiles" in rule.rule:      # vector tiles and their documents, also with GCJ-02 positions
        out += ["crs=gcj02"]
    elif rule.rule == "/":
        lon, lat = world.marker_point("stations")
        out += ["lang=en", f"layer=stations&lon={lon}&lat={lat}"]
    return out


#: Bodies for the public POST routes (a new public POST route fails the test until it is given one here).
def post_bodies(world: World) -> dict[str, list[dict]]:
    lon, lat = world.marker_point("stations")
    points = [[lon, lat]] + [{"id": lid, "lon": world.marker_point(lid)[0], "lat": world.marker_point(lid)[1]}
                             for lid in world.markers]
    return {
        "/api/nearest": [{"layer": lid, "k": 50, "points": points} for lid in world.markers],
        "/api/coverage/scenario": [{"layer": "stations", "add": [[lon, lat]],
                                    "remove": list(world.markers["stations"])[:2]}],
        "/api/coverage/scenario/report": [{"layer": "stations", "add": [[lon, lat]], "name": "sweep",
                                           "remove": list(world.markers["stations"])[:1]}],
        "/api/siting": [{"layer": "stations", "k": 2},
                        {"layer": "stations", "k": 2, "candidates": "both", "candidate_layer": "stations"},
                        {"layer": "canteens", "k": 2, "candidates": "layer", "candidate_layer": "stations"}],
    }


def test_no_public_route_shows_private_fields(world):
    app, client = world.app, world.client
    rules = [r for r in app.url_map.iter_rules() if is_public(r)]
    public_get = {r.rule for r in rules if "GET" in r.methods and not is_static(r)}
    bodies = post_bodies(world)
    visited: set[str] = set()        # rules that answered 200 at least once
    found: list[tuple] = []
    seen_ids: set[str] = set()
    all_ids = {fid for ids in world.markers.values() for fid in ids}
    pending_ids = {fid for ids in world.pending.values() for fid in ids}
    requests = 0

    def check(method: str, url: str, resp) -> None:
        text = body_text(resp)
        hits = leaks(text) + [f"header:{f}" for f in leaks(str(resp.headers))]
        hits += [f"pending id {fid}" for fid in pending_ids if f'"{fid}"' in text]
        if hits:
            found.append((method, url, resp.status_code, hits))
        seen_ids.update(fid for fid in all_ids if f'"{fid}"' in text)

    for rule in sorted(rules, key=lambda r: r.rule):
        methods = rule.methods - SKIP_METHODS
        unknown = methods - {"GET", "POST", "DELETE"}
        assert not unknown, f"the crawl does not call {sorted(unknown)} {rule.rule}: teach it"
        if "GET" in methods:
            for values in path_values(world, rule):
                path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>",
                              lambda m: urllib.parse.quote(str(values[m.group(1)]), safe="/"), rule.rule)
                for query in queries(world, rule, values):
                    url = path + ("?" + query if query else "")
                    for encoding in ("gzip", None):
                        headers = {"Accept-Encoding": encoding} if encoding else {}
                        resp = client.get(url, headers=headers)
                        requests += 1
                        check("GET", url, resp)
                        if resp.status_code == 200:
                            visited.add(rule.rule)
        if "POST" in methods:
            assert rule.rule in bodies, f"no body to POST to the public route {rule.rule}: add one to post_bodies"
            for body in bodies[rule.rule]:
                resp = client.post(rule.rule, json=body, headers={"Accept-Encoding": "gzip"})
                requests += 1
                check("POST", rule.rule, resp)
                assert resp.status_code == 200, (rule.rule, body, resp.json)
        if "DELETE" in methods:
            assert "job_id" in rule.arguments, f"the crawl does not know how to call DELETE {rule.rule}: teach it"
            url = rule.rule.replace("<job_id>", world.job_id)
            resp = client.delete(url)
            requests += 1
            check("DELETE", url, resp)

    assert not found, f"private field values in public responses: {found[:10]}"
    missing = public_get - visited
    assert not missing, f"public routes the crawl got no data from (give them queries): {sorted(missing)}"
    assert len(visited - {r.rule for r in rules if is_static(r)}) >= len(public_get)
    # the crawl really served the marker features publicly (so their absence is not vacuous)
    assert seen_ids == all_ids, f"marker features never served publicly: {sorted(all_ids - seen_ids)}"
    assert requests > 200


def test_the_public_feature_has_no_private_keys(world):
    for lid, ids in world.markers.items():
        for fid in ids:
            r = world.client.get(f"/ogc/collections/{lid}/items/{fid}")
            assert r.status_code == 200
            assert not set(PRIVATE) & set(r.json["properties"]), r.json["properties"]
    lon, lat = world.marker_point("stations")
    near = world.client.get(f"/api/nearest?lon={lon}&lat={lat}&layer=stations&k=1").json["features"][0]
    assert near["id"] == world.markers["stations"][0] and not set(PRIVATE) & set(near["properties"])


# --- no filtering on private fields (it would answer "is this the phone number of station X?") ----------------------
def test_filters_on_private_fields_are_refused(world):
    c = world.client
    lon, lat = world.marker_point("stations")
    for lid in world.markers:
        for name, value in (("contact_phone", MARK_PHONE), ("contact_name", MARK_NAME)):
            q = f"{name}={urllib.parse.quote(value)}"
            for url in (f"/ogc/collections/{lid}/items?{q}", f"/ogc/collections/{lid}/items?limit=10000&{q}",
                        f"/ogc/collections/{lid}/items/{world.markers[lid][0]}?{q}"):
                r = c.get(url)
                assert r.status_code == 400, (url, r.status_code, body_text(r)[:300])
                assert r.json["code"] == "InvalidParameterValue" or r.json.get("parameter") == name, r.json
                assert "features" not in r.json and "numberMatched" not in r.json
    for url in (f"/api/nearest?lon={lon}&lat={lat}&k=50&contact_phone={MARK_PHONE}",
                f"/api/coverage?radius_m=1000&contact_phone={MARK_PHONE}",
                f"/api/coverage/gaps?radius_m=1000&contact_name={urllib.parse.quote(MARK_NAME)}",
                f"/planning?k=0&contact_phone={MARK_PHONE}"):
        r = c.get(url)
        assert r.status_code == 400, (url, r.status_code)
    # and the API document offers no such filter
    doc = c.get("/ogc/api").json
    params = {p["name"] for op in doc["paths"].values() for verb in op.values() for p in verb.get("parameters", [])}
    assert not set(PRIVATE) & params


# --- the CLI reports ------------------------------------------------------------------------------------------------
def test_reports_do_not_contain_private_fields(world, tmp_path):
    runner = CliRunner()
    runs = {
        "coverage": ["report", "coverage", "--out", str(tmp_path / "coverage"), "--radius-m", "1000"],
        "plan": ["plan", "--out", str(tmp_path / "plan"), "--k", "2", "--candidates", "both",
                 "--candidate-layer", "stations"],
        "plan-canteens": ["plan", "--layer", "canteens", "--out", str(tmp_path / "plan-canteens"), "--k", "2"],
    }
    written = []
    for name, args in runs.items():
        result = runner.invoke(main, ["--data-dir", str(world.data_dir), *args])
        assert result.exit_code == 0, (name, result.output, result.exception)
        assert not leaks(result.output), (name, leaks(result.output))
        files = [p for p in Path(args[args.index("--out") + 1]).rglob("*") if p.is_file()]
        assert files, name
        for path in files:
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            hits = leaks(data.decode("utf-8", errors="replace"))
            assert not hits, f"{path.relative_to(tmp_path)} holds private field values: {hits}"
            written.append(path)
    assert {p.suffix for p in written} >= {".html", ".csv", ".geojson"}, sorted({p.suffix for p in written})
    # the reports did read the layers with the markers (the facility lists name the marker stations)
    html_text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in written if p.suffix == ".html")
    assert re.search("标记驿站甲|\\\\u6807\\\\u8bb0\\\\u9a7f\\\\u7ad9\\\\u7532", html_text), \
        "the coverage report did not list the marker station"


# --- a replacement file does not hand old private data to new facilities ------------------------------------------
def test_replace_import_gives_new_rows_no_private_data_of_removed_features(tmp_path):
    """Rows without an id in a --replace file are new facilities: they must not take the id, and with it the contact
    person and phone (and other fields the file lacks), of whichever old feature happened to have that number."""
    data_dir = tmp_path / "geo"
    shutil.copytree(ROOT / "data" / "geo", data_dir)
    old = GeoService(data_dir=data_dir).layer("stations")
    old_ids = set(map(str, old.ids))
    csv_path = tmp_path / "new.csv"
    csv_path.write_text("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度\n"
                        "新驿站甲,黄浦区,人民大道200号,黄浦区总工会,补水、休憩,24/7,121.4737,31.2304\n"
                        "新驿站乙,徐汇区,漕溪北路1号,徐汇区总工会,补水、休憩,24/7,121.4365,31.1951\n"
                        "新驿站丙,浦东新区,世纪大道1号,浦东新区总工会,补水、休憩,24/7,121.5055,31.2397\n",
                        encoding="utf-8")
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "import", "stations", str(csv_path), "--crs",
                                       "wgs84", "--replace", "--no-progress"])
    assert result.exit_code == 0, result.output
    svc = GeoService(data_dir=data_dir)
    app = create_app({"JOBS_DIR": str(tmp_path / "jobs")}, service=svc)
    token = TokenStore(tokens_path(data_dir)).add("tester")
    listing = app.test_client().get("/api/admin/layers/stations/features?limit=1000",
                                    headers={"Authorization": f"Bearer {token}"}).json
    assert listing["numberMatched"] == 3
    for feature in listing["features"]:
        props = feature["properties"]
        assert (props["contact_name"], props["contact_phone"]) == (None, None), \
            f"new station {props['name']} ({feature['id']}) got the contact of a removed station: {props}"
        assert (props["area_m2"], props["smart"], props["subdistrict"]) == (None, None, None), props
        assert feature["id"] not in old_ids, f"new station {props['name']} took the id of a removed one"
