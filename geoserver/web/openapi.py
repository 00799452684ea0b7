"""The OpenAPI 3.0 document of the HTTP API, generated from the layer specs (and the loaded data) so it never drifts.

It tells the truth about what the server does, and schemathesis checks that it does (tests/test_schemathesis.py):

* every parameter's schema is what the server accepts; whatever falls outside it is refused with 400, and so are
  query parameters the operation does not list and parameters given twice;
* ``crs`` and ``bbox-crs`` are enums of exactly the values accepted (``query.OGC_CRS_VALUES``);
* ``limit`` has no ``maximum``: as OGC API - Features requires, a larger value is not an error but served as
  ``query.ITEMS_MAX_LIMIT`` (the description says so);
* ``bbox`` is the standard's 4 or 6 numbers; what a schema cannot say (longitudes in [-180, 180], latitudes in
  [-90, 90], minimum <= maximum, no box across the antimeridian) is in its description and refused with 400;
* feature properties are nullable where the layer spec says ``required = false`` or the loaded data holds a null;
* responses list their real status codes, content types and the ETag header; ``featureId`` has an example id of
  an existing public feature;
* the items parameters whose values depend on the collection (``properties`` and ``sortby``: its property names;
  ``filter``: a pattern of simple CQL2 filters over its properties, every one of which it accepts) are generated
  per collection; the one feature's ``properties`` is the same for every collection and its schema can only
  promise ``id`` (its description says the rest);
* a property selection leaves properties out of a feature, so the feature schemas require none.
"""

from __future__ import annotations

from ..core import query as q
from ..serving.items import FORMATS as ITEM_FORMATS, ITEM, ITEMS

FORMATS = ITEM_FORMATS
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
STRICT = ("Query parameters this operation does not list, or a parameter given twice, are refused with 400.")
FIELD_SCHEMAS = {"string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
                 "boolean": {"type": "boolean"}, "opening_hours": {"type": "string"},
                 "services": {"type": "array", "items": {"type": "string"}},
                 "datetime": {"type": "string", "format": "date-time"}}
TEXT = {"type": "string", "maxLength": q.OGC_TEXT_MAX_LENGTH}


def _param(name, description, schema, required=False, where="query", **extra):
    out = {"name": name, "in": where, "description": description, "required": required, "schema": schema,
           "style": "form", "explode": False}
    if where in ("path", "header"):
        out["style"] = "simple"
        out.pop("explode")
    out.update(extra)
    return out


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR = {"content": {"application/json": {"schema": _ref("exception")}}}
ETAG = {"ETag": {"description": "Strong entity tag of this representation (send it back in If-None-Match)",
                 "required": True, "schema": {"type": "string"}}}


def _responses(ok_description: str, schema: dict, content_type: str = "application/json", etag: bool = True,
               not_found: bool = False, long_uri: bool = False) -> dict:
    """200 (with ETag when the route sets one), 304 when it has an ETag, 400, 404 for a resource by id, and 414
    where parameters can make the URI longer than the HTTP server reads (about 64 KB; it answers without a body)."""
    ok = {"description": ok_description, "content": {content_type: {"schema": schema}}}
    out = {"200": ok}
    if etag:
        ok["headers"] = ETAG
        out["304"] = {"description": "Not modified: the ETag sent in If-None-Match is current", "headers": ETAG}
    out["400"] = {"description": "A bad parameter (value outside its schema, an unknown or repeated parameter); "
                                 "the JSON body names the parameter and the problem", **ERROR}
    if not_found:
        out["404"] = {"description": "No public feature with this id", **ERROR}
    if long_uri:
        out["414"] = {"description": "URI too long: the request line is longer than the HTTP server reads "
                                     "(about 64 KB), refused before the API sees it"}
    return out


#: The parameters of the items and item operations, generated from their declarations (geoserver/serving/items.py).
COMMON = {p.name: p.openapi() for p in ITEMS.params if p.name != "services"}


def _nullable_fields(layer) -> set[str]:
    """Public fields that may be null: optional in the spec, or null somewhere in the loaded data."""
    out = {f.name for f in layer.spec.public_fields if not f.required}
    for props in layer.properties:
        out.update(name for name, value in props.items() if value is None)
    return out


def _geometry_schema(layer) -> dict:
    position = {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}}
    if layer.index.is_point:
        return {"type": "object", "required": ["type", "coordinates"], "additionalProperties": False,
                "properties": {"type": {"type": "string", "enum": ["Point"]}, "coordinates": position}}
    ring = {"type": "array", "minItems": 4, "items": position}
    polygon = {"type": "array", "items": ring}
    return {"type": "object", "required": ["type", "coordinates"],
            "properties": {"type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
                           "coordinates": {"type": "array", "items": {"oneOf": [ring, polygon]}}}}


def _feature_schema(layer) -> dict:
    spec = layer.spec
    nullable = _nullable_fields(layer)
    props = {}
    for f in spec.feature_fields:
        schema = {**FIELD_SCHEMAS[f.type], "title": f"{f.title_zh} / {f.title_en}"}
        if f.type == "services":
            schema["items"] = {"type": "string", "enum": list(spec.services)} if spec.services else schema["items"]
        if f.enum:
            schema["enum"] = list(f.enum) + ([None] if f.name in nullable else [])
        if f.name in nullable:
            schema["nullable"] = True   # e.g. opening_hours: null = unknown (never counted as open)
        props[f.name] = schema
    return {"type": "object", "required": ["type", "id", "geometry", "properties"],
            "properties": {"type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "string"},
                           "geometry": _geometry_schema(layer),
                           "properties": {"type": "object", "additionalProperties": False, "properties": props},
                           "links": {"type": "array", "items": _ref("link")}}}


def _collection_schema() -> dict:
    return {"type": "object", "required": ["id", "links"],
            "properties": {"id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
                           "itemType": {"type": "string"}, "crs": {"type": "array", "items": {"type": "string"}},
                           "storageCrs": {"type": "string"},
                           "extent": {"type": "object", "properties": {"spatial": {"type": "object", "properties": {
                               "bbox": {"type": "array", "items": {"type": "array", "minItems": 4, "maxItems": 4,
                                                                  "items": {"type": "number"}}},
                               "crs": {"type": "string"}}}}},
                           "links": {"type": "array", "items": _ref("link")}}}


def _queryables_schema() -> dict:
    return {"type": "object", "required": ["$schema", "$id", "type", "properties"],
            "properties": {"$schema": {"type": "string"}, "$id": {"type": "string"}, "type": {"type": "string"},
                           "title": {"type": "string"}, "description": {"type": "string"},
                           "properties": {"type": "object", "additionalProperties": {"type": "object"}},
                           "additionalProperties": {"type": "boolean"}}}


def build(svc, base_url: str) -> dict:
    """The OpenAPI document for ``svc``'s layers, with server URL ``base_url`` (the /ogc root)."""
    vocab_ids = list(svc.vocab.ids)
    fmt = [COMMON["f"]]
    schemas = {
        "exception": {"type": "object", "required": ["code", "description"],
                      "properties": {"code": {"type": "string"}, "description": {"type": "string"},
                                     "parameter": {"type": "string"},
                                     "position": {"type": "object", "description": "Where reading a filter "
                                                  "stopped: line and column (1-based), or a JSON pointer",
                                                  "properties": {"line": {"type": "integer"},
                                                                 "column": {"type": "integer"},
                                                                 "pointer": {"type": "string"}}}}},
        "link": {"type": "object", "required": ["href", "rel"],
                 "properties": {"href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"},
                                "title": {"type": "string"}}},
        "landingPage": {"type": "object", "required": ["links"],
                        "properties": {"title": {"type": "string"}, "description": {"type": "string"},
                                       "links": {"type": "array", "items": _ref("link")}}},
        "confClasses": {"type": "object", "required": ["conformsTo"],
                        "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}}},
        "collection": _collection_schema(),
        "collections": {"type": "object", "required": ["links", "collections"],
                        "properties": {"links": {"type": "array", "items": _ref("link")},
                                       "collections": {"type": "array", "items": _ref("collection")}}},
    }
    paths = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage", "tags": ["Capabilities"],
                      "description": STRICT, "parameters": fmt,
                      "responses": _responses("Links to the API", _ref("landingPage"), etag=False)}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "getConformance",
                                 "tags": ["Capabilities"], "description": STRICT, "parameters": fmt,
                                 "responses": _responses("The conformance classes", _ref("confClasses"),
                                                         etag=False)}},
        "/api": {"get": {"summary": "This API definition", "operationId": "getApi", "tags": ["Capabilities"],
                         "description": STRICT, "parameters": fmt,
                         "responses": _responses("OpenAPI 3.0", {"type": "object"}, OPENAPI_TYPE)}},
        "/collections": {"get": {"summary": "Feature collections", "operationId": "getCollections",
                                 "tags": ["Capabilities"], "description": STRICT, "parameters": fmt,
                                 "responses": _responses("The collections", _ref("collections"))}},
    }
    for lid, layer in svc.layers.items():
        spec = layer.spec
        schemas[f"feature_{lid}"] = _feature_schema(layer)
        filters = [_param(f.name, f"Only features whose {f.name} equals one of these comma-separated values"
                          + (" (Chinese name, code or English name)" if f.name == "district" else ""), TEXT)
                   for f in spec.public_fields if f.type in ("string", "integer", "boolean")]
        item_params = (ITEMS.openapi_for(layer, vocab_ids=vocab_ids) + filters
                       + ITEMS.openapi_query_options(layer, vocab_ids=vocab_ids))
        collection_schema = {"type": "object", "required": ["type", "features", "numberMatched", "numberReturned",
                                                            "timeStamp", "links"],
                             "properties": {"type": {"type": "string", "enum": ["FeatureCollection"]},
                                            "features": {"type": "array", "items": _ref(f"feature_{lid}")},
                                            "numberMatched": {"type": "integer", "minimum": 0},
                                            "numberReturned": {"type": "integer", "minimum": 0},
                                            "timeStamp": {"type": "string", "format": "date-time"},
                                            "links": {"type": "array", "items": _ref("link")}}}
        paths[f"/collections/{lid}"] = {"get": {
            "summary": f"{spec.title_en} ({spec.title_zh})", "operationId": f"describe_{lid}",
            "tags": [lid], "description": STRICT, "parameters": fmt,
            "responses": _responses("The collection", _ref("collection"))}}
        paths[f"/collections/{lid}/queryables"] = {"get": {
            "summary": f"Queryables of {spec.title_en}", "operationId": f"getQueryables_{lid}", "tags": [lid],
            "description": "The properties filter, sortby and properties may name, as a JSON Schema (OGC API - "
                           "Features Part 3). " + STRICT, "parameters": fmt,
            "responses": _responses("The queryables", _queryables_schema(), "application/schema+json")}}
        paths[f"/collections/{lid}/items"] = {"get": {
            "summary": f"Features of {spec.title_en}", "operationId": f"getFeatures_{lid}", "tags": [lid],
            "description": STRICT, "parameters": item_params,
            "responses": _responses("A GeoJSON FeatureCollection", collection_schema, "application/geo+json",
                                    long_uri=True)}}
        feature_id = {"type": "string", "minLength": 1, "maxLength": q.OGC_TEXT_MAX_LENGTH}
        example = {"example": str(layer.ids[0])} if layer.count else {}
        paths[f"/collections/{lid}/items/{{featureId}}"] = {"get": {
            "summary": f"One feature of {spec.title_en}", "operationId": f"getFeature_{lid}", "tags": [lid],
            "description": STRICT,
            "parameters": [_param("featureId", "Feature id (e.g. from an items page)", feature_id, required=True,
                                  where="path", **example),
                           *ITEM.openapi_parameters()],
            "responses": _responses("A GeoJSON Feature", _ref(f"feature_{lid}"), "application/geo+json",
                                    not_found=True, long_uri=True)}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Shanghai union service map - OGC API Features", "version": "1.0.0",
                 "description": ("Layers marked sample_data hold generated SAMPLE data (示例数据): "
                                 + (", ".join(lid for lid, lay in svc.layers.items() if lay.has_sample_data) or "none")
                                 + ". Coordinates are WGS84 lon/lat unless crs=gcj02 or crs=bd09 is asked for. "
                                 + STRICT),
                 "license": {"name": "See the project README"}},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {"schemas": schemas},
    }
