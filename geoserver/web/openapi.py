"""The OpenAPI 3.0 document of the HTTP API, generated from the layer specs so it never drifts."""

from __future__ import annotations

from ..core import query as q

FIELD_SCHEMAS = {"string": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
                 "boolean": {"type": "boolean"}, "opening_hours": {"type": "string"},
                 "services": {"type": "array", "items": {"type": "string"}}}


def _param(name, description, schema, required=False, where="query", **extra):
    out = {"name": name, "in": where, "description": description, "required": required, "schema": schema,
           "style": "form", "explode": False}
    if where == "path":
        out.pop("style")
        out.pop("explode")
    out.update(extra)
    return out


def _responses(ok_description: str, content_type: str = "application/json", schema=None):
    error = {"description": "A JSON error naming the parameter and the problem",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/exception"}}}}
    return {"200": {"description": ok_description,
                    "content": {content_type: {"schema": schema or {"type": "object"}}}},
            "304": {"description": "Not modified (the ETag sent in If-None-Match is current)"},
            "400": error, "404": error}


COMMON = {
    "bbox": _param("bbox", "Only features intersecting minLon,minLat,maxLon,maxLat (in bbox-crs, default CRS84)",
                   {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}),
    "bbox-crs": _param("bbox-crs", "Coordinate system of bbox: CRS84 URI, wgs84, gcj02 or bd09",
                       {"type": "string", "default": "wgs84"}),
    "limit": _param("limit", f"Page size; values above {q.ITEMS_MAX_LIMIT} are reduced to {q.ITEMS_MAX_LIMIT}",
                    {"type": "integer", "minimum": 1, "maximum": q.ITEMS_MAX_LIMIT,
                     "default": q.ITEMS_DEFAULT_LIMIT}),
    "offset": _param("offset", "Number of matching features to skip (follow the next/prev links)",
                     {"type": "integer", "minimum": 0, "default": 0}),
    "crs": _param("crs", "Output coordinates: wgs84 (CRS84, default), gcj02 (Amap/Tencent) or bd09 (Baidu)",
                  {"type": "string", "default": "wgs84"}),
    "f": _param("f", "Output format (json only)", {"type": "string", "enum": ["json", "geojson"]}),
}


def build(svc, base_url: str) -> dict:
    """The OpenAPI document for ``svc``'s layers, with server URL ``base_url`` (the /ogc root)."""
    vocab_ids = list(svc.vocab.ids)
    services_param = _param("services", "Only features offering all these services (comma-separated ids)",
                            {"type": "array", "items": {"type": "string", "enum": vocab_ids}})
    paths = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage", "tags": ["Capabilities"],
                      "parameters": [COMMON["f"]], "responses": _responses("Links to the API")}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "getConformance",
                                 "tags": ["Capabilities"], "parameters": [COMMON["f"]],
                                 "responses": _responses("The conformance classes")}},
        "/api": {"get": {"summary": "This API definition", "operationId": "getApi", "tags": ["Capabilities"],
                         "responses": _responses("OpenAPI 3.0", "application/vnd.oai.openapi+json;version=3.0")}},
        "/collections": {"get": {"summary": "Feature collections", "operationId": "getCollections",
                                 "tags": ["Capabilities"], "parameters": [COMMON["f"]],
                                 "responses": _responses("The collections")}},
    }
    for lid, layer in svc.layers.items():
        spec = layer.spec
        props = {f.name: {**FIELD_SCHEMAS[f.type], "title": f"{f.title_zh} / {f.title_en}",
                          **({} if f.required else {"nullable": True})}   # e.g. opening_hours: null = unknown
                 for f in spec.public_fields}
        filters = [_param(f.name, f"Only features whose {f.name} equals one of these comma-separated values"
                          + (" (Chinese name, code or English name)" if f.name == "district" else ""),
                          {"type": "string"})
                   for f in spec.public_fields if f.type in ("string", "integer", "boolean")]
        item_params = [COMMON[k] for k in ("bbox", "bbox-crs", "limit", "offset", "crs", "f")] + filters
        if any(f.type == "services" for f in spec.fields):
            item_params.insert(4, services_param)
        feature_schema = {"type": "object", "properties": {"type": {"type": "string"}, "id": {"type": "string"},
                          "geometry": {"type": "object"}, "properties": {"type": "object", "properties": props}}}
        paths[f"/collections/{lid}"] = {"get": {
            "summary": f"{spec.title_en} ({spec.title_zh})", "operationId": f"describe_{lid}",
            "tags": [lid], "parameters": [COMMON["f"]], "responses": _responses("The collection")}}
        paths[f"/collections/{lid}/items"] = {"get": {
            "summary": f"Features of {spec.title_en}", "operationId": f"getFeatures_{lid}", "tags": [lid],
            "parameters": item_params,
            "responses": _responses("A GeoJSON FeatureCollection", "application/geo+json",
                                    {"type": "object", "properties": {
                                        "type": {"type": "string"},
                                        "features": {"type": "array", "items": feature_schema}}})}}
        paths[f"/collections/{lid}/items/{{featureId}}"] = {"get": {
            "summary": f"One feature of {spec.title_en}", "operationId": f"getFeature_{lid}", "tags": [lid],
            "parameters": [_param("featureId", "Feature id", {"type": "string"}, required=True, where="path"),
                           COMMON["crs"], COMMON["f"]],
            "responses": _responses("A GeoJSON Feature", "application/geo+json", feature_schema)}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Shanghai union service map - OGC API Features", "version": "1.0.0",
                 "description": ("Layers marked sample_data hold generated SAMPLE data (示例数据): "
                                 + (", ".join(lid for lid, lay in svc.layers.items() if lay.has_sample_data) or "none")
                                 + ". Coordinates are WGS84 lon/lat unless crs=gcj02 or crs=bd09 is asked for."),
                 "license": {"name": "See the project README"}},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {"schemas": {"exception": {
            "type": "object", "required": ["code"],
            "properties": {"code": {"type": "string"}, "description": {"type": "string"},
                           "parameter": {"type": "string"}}}}},
    }
