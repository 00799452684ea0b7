"""OGC API - Features under /ogc: Part 1 (Core, GeoJSON, OpenAPI 3.0) and Part 3 (filters in CQL2 text and JSON,
queryables), with sortby and properties on items.

Routing and HTTP only: queries go to the GeoService; parameters are declared and validated in serving/items.py,
filters read and applied by serving/cql.py.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from flask import Blueprint, current_app, request

from ..core.errors import InvalidQuery
from ..core.layers import UPDATED
from ..serving import cql
from ..serving.items import (FORMATS as FORMAT_VALUES, ITEM, ITEMS, feature_fragments, queryables,
                             select_page)
from . import openapi, tiles
from .http import (GEOJSON, JSON, Answer, answer_response, check_params, etag_for, feature_collection, host_url,
                   json_response, not_modified)

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    # Part 3: filtering (the filter, filter-lang and filter-crs parameters on items) and queryables
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    # CQL2: both encodings, and the classes of the language evaluated (serving/cql.py)
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
]
#: The link relation from a collection to its queryables (OGC API - Features Part 3).
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SCHEMA_JSON = "application/schema+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ITEMS_PARAMS = ITEMS.http_names
ITEM_PARAMS = ITEM.http_names
FORMATS = set(FORMAT_VALUES)


def service():
    return current_app.extensions["geoservice"]


@bp.record_once
def _warm_up(state) -> None:
    """The CQL2 parser and the layers' columns are built with the app (before a server forks its workers)."""
    cql.warm_up(state.app.extensions["geoservice"])


def base_url() -> str:
    return host_url().rstrip("/") + bp.url_prefix


def check_format(args=None) -> None:
    """``f``, when given, must be exactly one of the formats the API document lists."""
    f = (request.args if args is None else args).get("f")
    if f is not None and f not in FORMATS:
        raise InvalidQuery(f"unsupported format f={f[:40]!r}; this API serves json (GeoJSON for features): "
                           f"f={', '.join(openapi.FORMATS)}", "f")


@bp.get("", strict_slashes=False)
def landing():
    check_params({"f"})
    check_format()
    root = base_url()
    return json_response({
        "title": "Shanghai union service map / 上海工会服务地图",
        "description": "Union rest stations, driver homes, gig labour markets, canteens and fitness stations "
                       "for outdoor and gig workers in Shanghai. Facility data bundled with this server is "
                       "SAMPLE data (示例数据), not real facilities.",
        "links": [
            {"href": root, "rel": "self", "type": JSON, "title": "This document"},
            {"href": f"{root}/api", "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "The API definition (OpenAPI 3.0)"},
            {"href": f"{root}/conformance", "rel": "conformance", "type": JSON, "title": "Conformance classes"},
            {"href": f"{root}/collections", "rel": "data", "type": JSON, "title": "The feature collections"},
            *tiles.landing_links(root),
        ],
    })


@bp.get("/conformance")
def conformance():
    check_params({"f"})
    check_format()
    return json_response({"conformsTo": CONFORMANCE + tiles.TILES_CONFORMANCE})


@bp.get("/api")
def api_document():
    check_params({"f"})
    check_format()
    svc = service()
    versions = tuple(lay.version for lay in svc.layers.values())
    docs = current_app.extensions.setdefault("openapi_docs", {})
    key = (base_url(), versions)   # the document depends on the data (example ids, nullable fields)
    doc = docs.get(key)
    if doc is None:
        if len(docs) > 16:
            docs.clear()
        doc = docs[key] = orjson.dumps(openapi.build(svc, base_url()))
    return json_response(doc, content_type=openapi.OPENAPI_TYPE, etag=etag_for("openapi", base_url(), *versions))


def collection_doc(layer) -> dict:
    svc = service()
    root = f"{base_url()}/collections/{layer.spec.id}"
    spec = layer.spec
    doc = {
        "id": spec.id,
        "title": f"{spec.title_zh} / {spec.title_en}",
        "description": spec.description + (" SAMPLE data (示例数据)." if layer.has_sample_data else ""),
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [svc.bounds(layer)], "crs": CRS84}, "temporal": temporal_extent(layer)},
        "links": [
            {"href": root, "rel": "self", "type": JSON, "title": "This collection"},
            {"href": f"{root}/items", "rel": "items", "type": GEOJSON, "title": "Features (GeoJSON)"},
            {"href": f"{root}/queryables", "rel": QUERYABLES_REL, "type": SCHEMA_JSON,
             "title": "Queryables: the properties filter, sortby and properties can name"},
            *tiles.collection_links(base_url(), spec.id),
        ],
    }
    return doc


@bp.get("/collections")
def collections():
    check_params({"f"})
    check_format()
    svc = service()
    root = base_url()
    return json_response({
        "links": [{"href": f"{root}/collections", "rel": "self", "type": JSON, "title": "Collections"}],
        "collections": [collection_doc(layer) for layer in svc.layers.values()],
    }, etag=etag_for("collections", root, *(lay.version for lay in svc.layers.values())))


@bp.get("/collections/<layer_id>")
def collection(layer_id):
    check_params({"f"})
    check_format()
    layer = service().layer(layer_id)
    return json_response(collection_doc(layer), etag=etag_for("collection", base_url(), layer.version))


@bp.get("/collections/<layer_id>/queryables")
def queryables_document(layer_id):
    check_params({"f"})
    check_format()
    svc = service()
    layer = svc.layer(layer_id)
    url = f"{base_url()}/collections/{layer_id}/queryables"
    return json_response(queryables_schema(layer, svc.vocab, url), content_type=SCHEMA_JSON,
                         etag=etag_for("queryables", url, layer.version))


def temporal_extent(layer) -> dict:
    """The span of the features' ``updated`` times (what datetime filters on), in the Gregorian calendar (UTC)."""
    times = [p[UPDATED] for p in layer.properties]
    return {"interval": [[min(times), max(times)] if times else [None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}


def queryables_schema(layer, vocab, url: str) -> dict:
    """The queryables of a collection as a JSON Schema (OGC API - Features Part 3): each public property with its
    type and title, and the geometry."""
    cols = cql.columns(layer, vocab)
    props = {}
    for name, column in cols.columns.items():
        if column.kind == "array":
            schema = {"type": "array", "items": {"type": "string", "enum": cols.services}}
        elif column.kind == "timestamp":
            schema = dict(openapi.FIELD_SCHEMAS["datetime"])
        else:
            field = layer.spec.field(name)
            schema = {"type": "integer" if field is not None and field.type == "integer" else column.kind}
            if name in cols.enums:
                schema["enum"] = cols.enums[name]
        props[name] = {"title": column.title, **schema}
    props[cql.GEOMETRY] = {"title": cols.geometry_title, "format": cols.geometry_format}
    spec = layer.spec
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url, "type": "object",
            "title": f"{spec.title_zh} / {spec.title_en}",
            "description": "The properties a filter (CQL2), sortby and properties may name; services is a list of "
                           "service ids (A_CONTAINS and the other array functions), geometry is matched with the "
                           "spatial functions and S_DWITHIN (metres), updated (when what the public sees of the "
                           "feature last changed) with TIMESTAMP, DATE and INTERVAL and the temporal functions.",
            "properties": props, "additionalProperties": False}


@bp.get("/collections/<layer_id>/items")
def items(layer_id):
    return answer_response(items_answer(service(), layer_id, request.args, base_url(), request.environ))


def items_answer(svc, layer_id: str, args, root: str, environ) -> Answer:
    """One page of a collection's items (also answered by the fast lane, fastlane.py); ``root`` is /ogc's URL."""
    layer = svc.layer(layer_id)
    props = queryables(layer)
    check_params(ITEMS_PARAMS | set(props), args=args)
    check_format(args)
    req = ITEMS.parse_for(layer, args, svc)     # parameters declared in geoserver/serving/items.py
    datum, limit, offset = req.datum, req.limit, req.offset
    etag = etag_for("items", layer.version, layer.modified, root, layer_id, sorted(args.items(multi=True)))
    if not_modified(etag, environ):   # the client has this page: no query, no body
        return Answer(b"", GEOJSON, etag=etag, headers=_CRS_HEADERS[datum])
    page = select_page(svc, layer, req)
    # the links' query: the request's parameters but offset and limit (encoded once), then limit and offset
    here = urlencode({k: v for k, v in args.items() if k not in ("offset", "limit")})
    url = f"{root}/collections/{layer_id}/items?{here}&" if here else f"{root}/collections/{layer_id}/items?"

    def link(rel, off):
        return {"href": f"{url}limit={limit}&offset={off}", "rel": rel, "type": GEOJSON, "title": rel}

    links = [link("self", offset)]
    if offset + limit < page.number_matched:
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    links.append({"href": f"{root}/collections/{layer_id}", "rel": "collection", "type": JSON,
                  "title": layer.spec.title_en})
    body = feature_collection(feature_fragments(layer, page.positions.tolist(), datum, req.properties), {
        "numberMatched": page.number_matched, "numberReturned": int(len(page.positions)),
        "timeStamp": layer.modified.isoformat().replace("+00:00", "Z"), "links": links})
    return Answer(body, GEOJSON, etag=etag, headers=_CRS_HEADERS[datum])


@bp.get("/collections/<layer_id>/items/<feature_id>")
def item(layer_id, feature_id):
    return answer_response(item_answer(service(), layer_id, feature_id, request.args, base_url(), request.environ))


def item_answer(svc, layer_id: str, feature_id: str, args, root: str, environ) -> Answer:
    """One feature by id (also answered by the fast lane, fastlane.py)."""
    layer = svc.layer(layer_id)
    check_params(ITEM_PARAMS, args=args)
    check_format(args)
    req = ITEM.parse_for(layer, feature_id, args, svc)
    datum = req.datum
    pos = svc.feature_position(layer, feature_id)
    selection = () if req.properties is None else (",".join(req.properties),)
    etag = etag_for("item", layer.version, root, layer_id, feature_id, datum, *selection)
    if not_modified(etag, environ):
        return Answer(b"", GEOJSON, etag=etag, headers=_CRS_HEADERS[datum])
    links = orjson.dumps([
        {"href": f"{root}/collections/{layer_id}/items/{feature_id}", "rel": "self", "type": GEOJSON},
        {"href": f"{root}/collections/{layer_id}", "rel": "collection", "type": JSON},
    ])
    # the feature's fragment with "links" added last: the bytes of orjson.dumps({**feature, "links": links})
    body = b'%s,"links":%s}' % (feature_fragments(layer, [pos], datum, req.properties)[0][:-1], links)
    return Answer(body, GEOJSON, etag=etag, headers=_CRS_HEADERS[datum])


#: The header naming the coordinate system of an answer's coordinates, per datum.
_CRS_HEADERS = {"wgs84": (("Content-Crs", f"<{CRS84}>"),), "gcj02": (("X-Coordinate-System", "gcj02"),),
                "bd09": (("X-Coordinate-System", "bd09"),)}
