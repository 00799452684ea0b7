"""Declared operations: one declaration per parameter drives validation, the OpenAPI document and the CLI help."""

from dataclasses import FrozenInstanceError

import pytest
from click.testing import CliRunner

from geoserver import operations
from geoserver.cli import main
from geoserver.core.errors import GeoServerError, InvalidQuery, LayerNotFound
from geoserver.operations import Operation, Param, get, load_all
from geoserver.planning import solvers

REGISTRY = load_all()
#: CLI command -> the operation whose declarations make its options
COMMANDS = {("report", "coverage"): "coverage", ("plan",): "siting", ("nearest",): "nearest"}


def normalised(text: str) -> str:
    return " ".join(text.split())


def test_every_use_case_is_registered():
    assert {"nearest", "nearest_batch", "items", "item", "coverage", "gaps", "planning_page", "siting", "import",
            "geocode", "history", "rollback", "export"} <= set(REGISTRY)
    for op in REGISTRY.values():
        assert isinstance(op, Operation) and op.summary and op.params
        names = [p.name for p in op.params]
        assert len(names) == len(set(names)), op.name
        for p in op.params:
            assert p.help and p.help_zh, (op.name, p.name)


# --- the OpenAPI document ------------------------------------------------------------------------------------------
def test_ogc_document_parameters_are_the_declarations(client, service):
    doc = client.get("/ogc/api").json
    items, item = get("items"), get("item")
    vocab_ids = list(service.vocab.ids)
    for lid, layer in service.layers.items():
        documented = doc["paths"][f"/collections/{lid}/items"]["get"]["parameters"]
        declared = [p for p in items.params if p.name != "services" or any(f.type == "services"
                                                                            for f in layer.spec.fields)]
        by_name = {d["name"]: d for d in documented}
        for p in declared:
            got = by_name[p.name]
            assert got == p.openapi(vocab_ids=vocab_ids), (lid, p.name)
            schema = got["schema"]
            assert schema.get("default") == p.default
            assert schema.get("minimum") == p.minimum
            assert schema.get("maximum") == (None if p.clamp or p.maximum is None else p.maximum)
            if p.choices:
                assert schema["enum"] == list(p.choices)
        filters = [d["name"] for d in documented if d["name"] not in items.names]
        assert filters == [f.name for f in layer.spec.public_fields if f.type in ("string", "integer", "boolean")]
        one = doc["paths"][f"/collections/{lid}/items/{{featureId}}"]["get"]["parameters"]
        assert one[1:] == item.openapi_parameters()


def test_generated_parameters_carry_default_range_unit_and_choices():
    coverage, siting = get("coverage"), get("siting")
    radius = coverage.param("radius_m").openapi()
    assert radius["schema"] == {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 50_000.0}
    assert "(m)" in radius["description"] and "catchment_radius_m" in radius["description"]
    assert coverage.param("cell_m").openapi()["schema"]["default"] == 200.0
    solver = siting.param("solver").openapi()["schema"]
    assert solver == {"type": "string", "enum": list(solvers.choices()), "default": "fast"}
    assert [p["name"] for p in siting.openapi_parameters()] == [p.name for p in siting.params if p.http]


# --- the command line ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_cli_help_lists_every_declared_option_with_its_default(command):
    op = get(COMMANDS[command])
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = normalised(result.output)
    offered = [p for p in op.params if p.cli]
    assert offered
    for p in offered:
        assert p.flag in text, p.name
        label = p.default_label()
        if label is not None:
            assert f"{normalised(p.cli_help())} [default: {normalised(label)}]" in text, p.name
        for choice in p.choices:
            assert str(choice) in text
    for p in op.params:
        if not p.cli:
            assert p.flag + " " not in text


def test_cli_options_pass_only_what_was_given():
    siting = get("siting")
    assert siting.from_cli({"k": 3, "radius_m": None, "districts": "", "time_limit_s": 30.0, "out_dir": "x"}) == \
        {"k": 3, "time_limit_s": 30.0}


# --- parsing -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,mapping,parameter,message", [
    ("coverage", {"colour": "red"}, "colour", "unknown query parameter 'colour'; accepted: cell_m, demand"),
    ("coverage", {"radius_m": "0"}, "radius_m", "radius_m must be greater than 0 and at most 50000"),
    ("coverage", {"radius_m": "abc"}, "radius_m", "radius_m must be a number, got 'abc'"),
    ("coverage", {"minutes": "500", "mode": "walk"}, "minutes", "minutes must be greater than 0 and at most 120"),
    ("coverage", {"cell_m": "5"}, "cell_m", "cell_m must be between 50 and 5000 metres"),
    ("coverage", {"mode": "plane", "minutes": "5"}, "mode", "mode must be one of walk, ebike, car with minutes"),
    ("coverage", {"layer": "districts"}, "layer", "not a point layer"),
    ("gaps", {"limit": "0"}, "limit", "limit must be at least 1, got 0"),
    ("gaps", {"min_uncovered": "-1"}, "min_uncovered", "min_uncovered must be at least 0"),
    ("planning_page", {"k": "99"}, "k", "k must be at most 50, got 99"),
    ("siting", {"k": 2, "colour": "red"}, "colour", "unknown field 'colour'; accepted: area, async"),
    ("siting", {"k": 2, "solver": "quantum"}, "solver",
     "solver must be fast (greedy with swaps) or exact (MILP, HiGHS)"),
    ("siting", {"k": 2, "time_limit_s": 10000}, "time_limit_s", "time_limit_s must be between 1 and 600"),
    ("siting", {"k": 2, "spacing_m": 5}, "spacing_m", "spacing_m must be between 100 and 10000"),
    ("siting", {"target_pct": 150}, "target_pct", "target_pct must be greater than 0 and at most 100"),
    ("siting", {"k": 0}, "k", "k must be at least 1, got 0"),
    ("siting", {"k": 2, "candidates": "magic"}, "candidates", "candidates must be grid, layer or both"),
    ("siting", [], "body", "the body must be a JSON object"),
    ("nearest", {"lon": "121.47", "lat": "31.23", "k": "0"}, "k", "k must be at least 1, got 0"),
    ("nearest", {"lon": "121.47", "lat": "31.23", "max_distance_m": "-5"}, "max_distance_m",
     "max_distance_m must be greater than 0 and at most 200000"),
    ("nearest", {"lon": "121.47", "lat": "31.23", "servces": "water"}, "servces", "unknown query parameter"),
    ("nearest", {"lat": "31.2"}, "lon", "lon is required"),
    ("nearest_batch", {"points": [[121.47, 31.23]], "k": 0}, "k", "k must be at least 1"),
    ("nearest_batch", {"points": [[121.47, 31.23]] * 10_001}, "points", "at most 10000 points"),
    ("nearest_batch", {"points": [[121.47, 31.23]] * 200, "k": 500}, "k", "more than the 50,000"),
    ("items", {"collectionId": "stations", "limit": "0"}, "limit", "limit must be at least 1, got 0"),
    ("items", {"collectionId": "stations", "crs": "EPSG:4326"}, "crs", "unknown coordinate system"),
    ("items", {"collectionId": "stations", "bbox": ""}, "bbox", "bbox is empty"),
])
def test_parsing_refuses_unknown_and_out_of_range_values(service, name, mapping, parameter, message):
    with pytest.raises(InvalidQuery) as err:
        get(name).parse(mapping, service)
    assert err.value.parameter == parameter
    assert message in err.value.message


def test_parsed_requests_and_results_are_frozen(service):
    coverage = get("coverage")
    req = coverage.parse({"radius_m": "1000", "cell_m": "1000"}, service)
    with pytest.raises(FrozenInstanceError):
        req.layer = "canteens"
    answer = coverage.run(service, req)
    with pytest.raises(FrozenInstanceError):
        answer.runtime_s = 0
    body = answer.to_dict()
    assert body["catchment"]["radius_m"] == 1000.0 and len(body["districts"]) == 16
    nearest = get("nearest")
    result = nearest(service, {"lon": "121.47", "lat": "31.23", "k": "2"})
    assert result.to_geojson()["numberReturned"] == 2


def test_an_items_value_above_the_maximum_is_served_as_the_maximum(service):
    req = get("items").parse({"collectionId": "stations", "limit": "999999"}, service)
    assert req.limit == 10_000 and req.offset == 0 and req.datum == "wgs84"


# --- one default radius --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["stations", "canteens"])
def test_default_radius_is_the_layer_specs_everywhere(service, client, tmp_path, layer):
    radius = service.layer(layer).spec.catchment_radius_m
    assert get("coverage").parse({"layer": layer}, service).catchment.radius_m == radius
    assert get("planning_page").parse({"layer": layer, "k": "0"}, service).coverage.catchment.radius_m == radius
    assert get("siting").parse({"layer": layer, "k": 1}, service).catchment.radius_m == radius
    http = client.get(f"/api/coverage?layer={layer}&cell_m=1000")
    assert http.status_code == 200, http.json
    assert http.json["catchment"]["radius_m"] == radius
    cli = CliRunner().invoke(main, ["report", "coverage", "--layer", layer, "--cell-m", "1000",
                                    "--out", str(tmp_path / "r")])
    assert cli.exit_code == 0, cli.output
    assert http.json["catchment"]["method"] in cli.output
    assert f"radius {radius:g} m" in cli.output


# --- declarations themselves ---------------------------------------------------------------------------------------
def test_param_messages_and_types():
    p = Param("spacing_m", "float", "Grid spacing", "间距", unit="m", minimum=100, maximum=10_000)
    assert p.parse("500") == 500.0 and p.parse(None) is None and p.parse("") is None
    with pytest.raises(InvalidQuery, match="spacing_m must be between 100 and 10000"):
        p.parse("50")
    limit = Param("limit", "int", "Page size", "数量", default=100, minimum=1, maximum=10, clamp=True)
    assert limit.parse(None) == 100 and limit.parse("50") == 10
    mode = Param("mode", "enum", "Mode", "方式", choices=("walk", "car"))
    with pytest.raises(InvalidQuery, match="mode must be walk or car"):
        mode.parse("plane")
    assert Param("x", "list", "x", "x").parse("a, b,,c") == ("a", "b", "c")
    assert Param("async", "bool", "x", "x").attr == "async_"
    with pytest.raises(ValueError):
        Param("x", "colour", "x", "x")


def test_solvers_are_registered_one_file_each():
    from pathlib import Path
    files = {p.stem for p in Path(solvers.__file__).parent.glob("*.py") if p.stem != "__init__"}
    assert set(solvers.load()) == files == {"fast", "exact"}
    assert get("siting").param("solver").choices == solvers.choices()
    for solver in solvers.load().values():
        assert solver.label and solver.description


def test_one_coordinate_precision():
    from geoserver.core.data import COORD_DECIMALS
    from geoserver.planning.output import COORD_DECIMALS as PLANNING_DECIMALS
    assert PLANNING_DECIMALS == COORD_DECIMALS


# --- one error-to-HTTP map -----------------------------------------------------------------------------------------
def test_error_statuses_follow_the_class_hierarchy():
    from geoserver.core.network import NetworkError
    from geoserver.core.store import StoreError, VersionNotFound
    from geoserver.web import errors
    from geoserver.web.heavy import Busy, TooManyRequests

    class StorageUnavailable(GeoServerError):
        code = "StorageUnavailable"
        http_status = 503

    class ReplicaLagging(StorageUnavailable):
        pass

    class OddLayer(LayerNotFound):
        pass

    cases = {InvalidQuery("x"): 400, LayerNotFound("x"): 404, OddLayer("x"): 404, VersionNotFound("x"): 404,
             StoreError("x"): 503, NetworkError("x"): 400, StorageUnavailable("x"): 503, ReplicaLagging("x"): 503,
             Busy("x", 7): 503, TooManyRequests("x", 3): 429, errors.Unauthorized("x"): 401,
             errors.Forbidden("x"): 403, errors.UploadTooLarge("x"): 413}
    assert {type(e).__name__: errors.status_for(e) for e in cases} == \
        {type(e).__name__: status for e, status in cases.items()}
    assert errors.headers_for(TooManyRequests("x", 3), 429) == {"Retry-After": "3"}
    assert errors.headers_for(InvalidQuery("x"), 400) is None


def test_admin_and_app_share_the_map():
    from geoserver.web import admin, errors
    assert admin.Unauthorized is errors.Unauthorized and admin.Forbidden is errors.Forbidden
    assert not hasattr(admin, "STATUS")


def test_registry_refuses_a_second_operation_with_the_same_name():
    class Twin(Operation):
        name = "coverage"
        summary = "x"

    with pytest.raises(ValueError):
        operations.register(Twin())


def test_a_new_operation_is_one_class_with_a_generated_frozen_request(service):
    class Echo(Operation):
        name = "echo_test"
        summary = "Echo"
        params = (Param("layer", "str", "Layer", "图层", default="stations"),
                  Param("k", "int", "How many", "数量", default=3, minimum=1, maximum=9),
                  Param("async", "bool", "Later", "后台", default=False))

        def run(self, service, request):
            return (request.layer, request.k, request.async_)

    echo = Echo()
    req = echo.parse({"k": "4"}, service)
    assert type(req).__name__ == "EchoTestRequest" and echo.run(service, req) == ("stations", 4, False)
    with pytest.raises(FrozenInstanceError):
        req.k = 5
    with pytest.raises(InvalidQuery, match="k must be at most 9, got 10"):
        echo.parse({"k": "10"}, service)
    assert [p["name"] for p in echo.openapi_parameters()] == ["layer", "k", "async"]


# --- curation: the edit use case and the admin routes built on the declarations ------------------------------------
def _station(**props) -> dict:
    base = {"name": "人民广场驿站", "district": "黄浦区", "address": "人民大道1号", "services": ["water", "rest"],
            "opening_hours": "24/7", "host_org": "黄浦区总工会"}
    base.update(props)
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.47, 31.23]}, "properties": base}


def test_edit_declares_layer_feature_id_data_version_and_feature(tiny_service):
    from geoserver.core.errors import FeatureNotFound
    from geoserver.core.manage import DataManager
    from geoserver.curation.edit import EDIT, PreconditionFailed
    from geoserver.web.errors import PreconditionFailed as WebPreconditionFailed, status_for

    assert get("edit") is EDIT and WebPreconditionFailed is PreconditionFailed
    assert [p.name for p in EDIT.params] == ["layer", "action", "feature_id", "if_match", "feature", "crs", "who"]
    assert EDIT.param("action").choices == ("create", "replace", "delete")
    assert EDIT.query_names("create") == EDIT.query_names("replace") == {"crs"}
    assert EDIT.query_names("delete") == set()
    assert EDIT.param("if_match").parse('W/"abc"') == "abc" and EDIT.param("if_match").parse("*") is None
    assert status_for(PreconditionFailed("x")) == 412

    m = DataManager(tiny_service)
    version = tiny_service.layer("stations").version
    with pytest.raises(InvalidQuery, match="unknown parameter 'colour'; accepted: action, crs, feature,"):
        EDIT.parse({"layer": "stations", "action": "create", "colour": "red"}, m)
    with pytest.raises(InvalidQuery, match="action must be create, replace or delete"):
        EDIT.parse({"layer": "stations", "action": "patch"}, m)
    with pytest.raises(FeatureNotFound):
        EDIT.parse({"layer": "stations", "action": "delete", "feature_id": "NOPE"}, m)
    with pytest.raises(PreconditionFailed) as stale:
        EDIT.parse({"layer": "stations", "action": "delete", "feature_id": "A", "if_match": '"old"'}, m)
    assert stale.value.parameter == "If-Match"
    with pytest.raises(InvalidQuery) as not_geojson:
        EDIT.parse({"layer": "stations", "action": "create", "feature": {"name": "x"}}, m)
    assert not_geojson.value.parameter == "type"
    with pytest.raises(InvalidQuery) as crs:
        EDIT.parse({"layer": "stations", "action": "create", "feature": _station(), "crs": "gauss"}, m)
    assert crs.value.parameter == "crs"

    req = EDIT.parse({"layer": "stations", "action": "replace", "feature_id": "A", "if_match": f'"{version}"',
                      "feature": lambda: _station(name="新名字"), "who": "tester"}, m)
    assert (req.feature_id, req.expect_data_version, req.record["name"]) == ("A", version, "新名字")
    with pytest.raises(FrozenInstanceError):
        req.feature_id = "B"
    result = EDIT.run(m, req)
    assert result.to_dict()["change"]["updated"] == 1 and result.data_version != version
    assert tiny_service.layer("stations").properties[tiny_service.layer("stations").position("A")]["name"] == "新名字"


@pytest.mark.parametrize("method, path, accepted", [
    ("post", "/api/admin/layers/stations/features", "crs"),
    ("put", "/api/admin/layers/stations/features/A", "crs"),
    ("delete", "/api/admin/layers/stations/features/A", ""),
    ("post", "/api/admin/layers/stations/import",
     "crs, dry_run, encoding, filename, geocode, mode, sheet, skip_invalid, source, source_layer"),
    ("post", "/api/admin/layers/stations/geocode", ""),
])
def test_admin_routes_refuse_unknown_query_parameters_listing_the_declared_ones(tiny_service, method, path, accepted):
    from geoserver.web import create_app

    token = tiny_service.storage.tokens().add("alice")
    client = create_app({}, service=tiny_service).test_client()
    r = getattr(client, method)(f"{path}?colour=red", json=_station(),
                                headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400 and r.json["parameter"] == "colour"
    assert r.json["description"] == f"unknown query parameter 'colour'; accepted: {accepted}"
    assert tiny_service.layer("stations").count == 4


def test_admin_import_and_geocode_parse_through_their_operations(tiny_service):
    from geoserver.web import create_app

    token = tiny_service.storage.tokens().add("alice")
    client = create_app({}, service=tiny_service).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    mode = client.post("/api/admin/layers/stations/import?mode=append&filename=a.csv", data=b"x", headers=auth)
    assert mode.status_code == 400 and mode.json["description"] == "mode must be merge or replace"
    flag = client.post("/api/admin/layers/stations/import?dry_run=maybe&filename=a.csv", data=b"x", headers=auth)
    assert flag.status_code == 400 and flag.json["parameter"] == "dry_run"
    body = client.post("/api/admin/layers/stations/geocode", json={"who": "mallory"}, headers=auth)
    assert body.status_code == 400 and body.json["parameter"] == "body"
