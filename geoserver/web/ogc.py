"""OGC API - Features Part 1 (Core, GeoJSON, OpenAPI 3.0) under /ogc.

Routing and HTTP only: queries go to the GeoService; parameters are validated by core.query.
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from flask import Blueprint, current_app, request

from ..core import crs
from ..core import query as q
from ..core.errors import InvalidQuery
from . import openapi
from .http import GEOJSON, JSON, check_params, etag_for, json_response

bp = Blueprint("ogc", __name__, url_prefix="/ogc")

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ITEMS_PARAMS = {"bbox", "bbox-crs", "limit", "offset", "crs", "f", "services"}
FORMATS = set(openapi.FORMATS)


def service():
    return current_app.extensions["geoservice"]


def base_url() -> str:
    return request.host_url.rstrip("/") + bp.url_prefix


def check_format() -> None:
    """``f``, when given, must be exactly one of the formats the API document lists."""
    f = request.args.get("f")
    if f is not None and f not in FORMATS:
        raise InvalidQuery(f"unsupported format f={f[:40]!r}; this API serves json (GeoJSON for features): "
                           f"f={', '.join(openapi.FORMATS)}", "f")


def queryables(layer) -> list[str]:
    """Properties that items can be filtered on by equality (besides services)."""
    return [f.name for f in layer.spec.public_fields if f.type in ("string", "integer", "boolean")]


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
        ],
    })


@bp.get("/conformance")
def conformance():
    check_params({"f"})
    check_format()
    return json_response({"conformsTo": CONFORMANCE})


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
        "extent": {"spatial": {"bbox": [svc.bounds(layer)], "crs": CRS84}},
        "links": [
            {"href": root, "rel": "self", "type": JSON, "title": "This collection"},
            {"href": f"{root}/items", "rel": "items", "type": GEOJSON, "title": "Features (GeoJSON)"},
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


@bp.get("/collections/<layer_id>/items")
def items(layer_id):
    svc = service()
    layer = svc.layer(layer_id)
    props = queryables(layer)
    check_params(ITEMS_PARAMS | set(props))
    check_format()
    args = request.args
    datum = q.ogc_datum(args.get("crs"), "crs")
    limit = q.integer(q.text(args, "limit", str(q.ITEMS_DEFAULT_LIMIT)), "limit", 1, q.ITEMS_MAX_LIMIT, clamp=True)
    offset = q.integer(q.text(args, "offset", "0"), "offset", 0, q.MAX_OFFSET)
    bbox = q.bbox(q.text(args, "bbox"))
    if bbox is not None:
        bbox = _bbox_to_wgs84(bbox, q.ogc_datum(args.get("bbox-crs"), "bbox-crs"))
    elif "bbox-crs" in args:
        q.ogc_datum(args.get("bbox-crs"), "bbox-crs")  # checked even without a bbox
    services = q.service_list(q.text(args, "services"), svc.vocab, strict=True)
    filters = {name: q.text(args, name, max_length=q.OGC_TEXT_MAX_LENGTH) for name in props
               if args.get(name) is not None}

    root = base_url()
    etag = etag_for("items", layer.version, layer.modified, root, layer_id, sorted(args.items(multi=True)))
    page = svc.items(layer, bbox, filters, services, limit, offset)
    fragments = layer.fragments(datum)
    here = {k: v for k, v in args.items() if k not in ("offset", "limit")}
    url = f"{root}/collections/{layer_id}/items"

    def link(rel, off):
        return {"href": f"{url}?{urlencode({**here, 'limit': limit, 'offset': off})}", "rel": rel,
                "type": GEOJSON, "title": rel}

    links = [link("self", offset)]
    if offset + limit < page.number_matched:
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    links.append({"href": f"{root}/collections/{layer_id}", "rel": "collection", "type": JSON,
                  "title": layer.spec.title_en})
    tail = orjson.dumps({"numberMatched": page.number_matched, "numberReturned": int(len(page.positions)),
                         "timeStamp": layer.modified.isoformat().replace("+00:00", "Z"), "links": links})
    body = b'{"type":"FeatureCollection","features":[' + b",".join(fragments[p] for p in page.positions) + \
        b"]," + tail[1:]
    return json_response(body, content_type=GEOJSON, etag=etag, headers=_crs_header(datum))


@bp.get("/collections/<layer_id>/items/<feature_id>")
def item(layer_id, feature_id):
    svc = service()
    layer = svc.layer(layer_id)
    check_params({"crs", "f"})
    check_format()
    datum = q.ogc_datum(request.args.get("crs"), "crs")
    pos = svc.feature_position(layer, feature_id)
    root = base_url()
    feature = orjson.loads(layer.fragments(datum)[pos])
    feature["links"] = [
        {"href": f"{root}/collections/{layer_id}/items/{feature_id}", "rel": "self", "type": GEOJSON},
        {"href": f"{root}/collections/{layer_id}", "rel": "collection", "type": JSON},
    ]
    return json_response(feature, content_type=GEOJSON, headers=_crs_header(datum),
                         etag=etag_for("item", layer.version, root, layer_id, feature_id, datum))


def _crs_header(datum: str) -> dict:
    return {"Content-Crs": f"<{CRS84}>"} if datum == "wgs84" else {"X-Coordinate-System": datum}


def _bbox_to_wgs84(bbox, datum: str):
    """A bbox given in GCJ-02/BD-09 as the WGS84 envelope of its converted corners."""
    if datum == "wgs84":
        return bbox
    minx, miny, maxx, maxy = bbox
    lon, lat = crs.to_wgs84([minx, minx, maxx, maxx], [miny, maxy, miny, maxy], datum)
    return float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))
