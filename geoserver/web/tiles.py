"""OGC API - Tiles under /ogc: Mapbox vector tiles of every layer and of all point layers together, their tilesets
(OGC tileset metadata and TileJSON 3.0.0) and the WebMercatorQuad tile matrix set.

Routing and HTTP only: tiles are built (and cached per data version) by geoserver.serving.tiles. Tile paths are
``{z}/{x}/{y}`` (tileMatrix/tileCol/tileRow); the tilesets' ``item`` links give the template.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ..core.errors import InvalidQuery
from ..serving import tiles as t
from .http import (DATA_CSP, GZIP_MIN_BYTES, JSON, GzipCache, accepts_gzip, check_params, etag_for, host_url,
                   json_response, not_modified)

bp = Blueprint("ogc_tiles", __name__, url_prefix="/ogc")

#: The OGC API - Tiles 1.0 and 2D Tile Matrix Set 2.0 conformance classes these routes implement.
TILES_CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilesetmetadata",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixsetlimits",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixsetlimits",
]
#: Link relations of OGC API - Tiles, for the landing page and the collections (see ``landing_links``).
REL_TILING_SCHEMES = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"
REL_TILESETS_VECTOR = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
REL_GEODATA = "http://www.opengis.net/def/rel/ogc/1.0/geodata"
JSON_FORMATS = ("json", "application/json")
TILE_FORMATS = ("mvt", t.MVT_TYPE)
#: Compressed tiles kept per process, keyed by ETag (the encoded tiles themselves: serving.tiles.CACHE_MAX_BYTES).
GZIP_CACHE_BYTES = 16 << 20


@bp.record_once
def _setup(state) -> None:
    state.app.extensions["tiles"] = t.TileBuilder()
    state.app.extensions["tiles_gzip"] = GzipCache(GZIP_CACHE_BYTES)


def service():
    return current_app.extensions["geoservice"]


def builder() -> t.TileBuilder:
    return current_app.extensions["tiles"]


def base_url() -> str:
    return host_url().rstrip("/") + bp.url_prefix


def landing_links(root: str) -> list[dict]:
    """Links for the /ogc landing page (``root`` is /ogc's URL): the tile matrix sets and the multi-layer tiles."""
    return [{"href": f"{root}/tileMatrixSets", "rel": REL_TILING_SCHEMES, "type": JSON,
             "title": "Tile matrix sets"},
            {"href": f"{root}/tiles", "rel": REL_TILESETS_VECTOR, "type": JSON,
             "title": "Vector tiles of all point layers"}]


def collection_links(root: str, layer_id: str) -> list[dict]:
    """Links for a collection's document: its vector tilesets."""
    return [{"href": f"{root}/collections/{layer_id}/tiles", "rel": REL_TILESETS_VECTOR, "type": JSON,
             "title": "Vector tiles"}]


def _check_format(choices: tuple[str, ...]) -> None:
    f = request.args.get("f")
    if f is not None and f not in choices:
        raise InvalidQuery(f"unsupported format f={f[:40]!r}; this resource is served as f={', '.join(choices)}", "f")


def _metadata_params(datum: bool = True) -> str:
    """Check a metadata document's query (``f``, and ``crs`` where the document has links to tiles); the datum."""
    check_params({"f", "crs"} if datum else {"f"})
    _check_format(JSON_FORMATS)
    return t.parse_datum(request.args.get("crs")) if datum else "wgs84"


def _point_layers() -> list:
    return [layer for layer in service().layers.values() if layer.index.is_point]


def _tms_url(root: str) -> str:
    return f"{root}/tileMatrixSets/{t.TMS_ID}"


# --- tile matrix sets -----------------------------------------------------------------------------------------
@bp.get("/tileMatrixSets")
def tile_matrix_sets():
    _metadata_params(datum=False)
    root = base_url()
    return json_response({"tileMatrixSets": t.tile_matrix_sets_list(_tms_url(root), JSON),
                          "links": [{"href": f"{root}/tileMatrixSets", "rel": "self", "type": JSON,
                                     "title": "Tile matrix sets"}]},
                         etag=etag_for("tileMatrixSets", root), cache="public, max-age=86400")


@bp.get("/tileMatrixSets/<tile_matrix_set_id>")
def tile_matrix_set(tile_matrix_set_id):
    _metadata_params(datum=False)
    t.check_tile_matrix_set(tile_matrix_set_id)
    return json_response(t.tile_matrix_set_document(), etag=etag_for("tileMatrixSet", t.TMS_ID),
                         cache="public, max-age=86400")


# --- one layer --------------------------------------------------------------------------------------------------
def _layer_tiles_root(root: str, layer_id: str) -> str:
    return f"{root}/collections/{layer_id}/tiles/{t.TMS_ID}"


@bp.get("/collections/<layer_id>/tiles")
def layer_tilesets(layer_id):
    datum = _metadata_params()
    layer = service().layer(layer_id)
    root = base_url()
    tiles_root = _layer_tiles_root(root, layer_id)
    body = {"links": [{"href": f"{root}/collections/{layer_id}/tiles", "rel": "self", "type": JSON,
                       "title": "Tilesets"},
                      {"href": f"{root}/collections/{layer_id}", "rel": "collection", "type": JSON,
                       "title": layer.spec.title_en}],
            "tilesets": [t.tileset_summary(tiles_root, datum, f"{layer.spec.title_en} ({t.TMS_ID})", JSON,
                                           _tms_url(root))]}
    return json_response(body, etag=etag_for("tilesets", root, layer_id, datum))


@bp.get("/collections/<layer_id>/tiles/<tile_matrix_set_id>")
def layer_tileset(layer_id, tile_matrix_set_id):
    datum = _metadata_params()
    layer = service().layer(layer_id)
    t.check_tile_matrix_set(tile_matrix_set_id)
    root = base_url()
    spec = layer.spec
    doc = t.tileset([layer], service().bounds(layer), _layer_tiles_root(root, layer_id), datum,
                    f"{spec.title_zh} / {spec.title_en}", _description(layer), JSON, _tms_url(root),
                    [{"href": f"{root}/collections/{layer_id}", "rel": REL_GEODATA, "type": JSON,
                      "title": spec.title_en}])
    return json_response(doc, etag=etag_for("tileset", root, layer_id, layer.version, layer.modified, datum))


@bp.get("/collections/<layer_id>/tiles/<tile_matrix_set_id>/tilejson.json")
def layer_tilejson(layer_id, tile_matrix_set_id):
    datum = _metadata_params()
    layer = service().layer(layer_id)
    t.check_tile_matrix_set(tile_matrix_set_id)
    root = base_url()
    doc = t.tilejson([layer], service().bounds(layer), _layer_tiles_root(root, layer_id), datum, layer_id,
                     _description(layer))
    return json_response(doc, etag=etag_for("tilejson", root, layer_id, layer.version, layer.modified, datum))


@bp.get("/collections/<layer_id>/tiles/<tile_matrix_set_id>/<z>/<x>/<y>")
def layer_tile(layer_id, tile_matrix_set_id, z, x, y):
    datum, address = _tile_params(tile_matrix_set_id, z, x, y)
    layer = service().layer(layer_id)
    etag = etag_for("tile", layer_id, layer.version, layer.modified, datum, *address.key)
    if not_modified(etag):
        return _tile_response(None, etag, datum)
    return _tile_response(builder().layer_tile(layer, datum, address), etag, datum)


def _description(layer) -> str:
    spec = layer.spec
    text = spec.description
    if layer.has_sample_data:
        text += " SAMPLE data (示例数据), not real facilities."
    return text


# --- all point layers -------------------------------------------------------------------------------------------
def _dataset_tiles_root(root: str) -> str:
    return f"{root}/tiles/{t.TMS_ID}"


_DATASET_TITLE = "上海工会服务地图：全部点图层 / Shanghai union service map: all point layers"
_DATASET_DESCRIPTION = ("Every point layer of the map (union rest stations, driver homes, gig labour markets, "
                        "canteens, fitness stations, workplace rest rooms), one vector tile layer each.")


@bp.get("/tiles")
def dataset_tilesets():
    datum = _metadata_params()
    root = base_url()
    body = {"links": [{"href": f"{root}/tiles", "rel": "self", "type": JSON, "title": "Tilesets"}],
            "tilesets": [t.tileset_summary(_dataset_tiles_root(root), datum, f"{_DATASET_TITLE} ({t.TMS_ID})",
                                           JSON, _tms_url(root))]}
    return json_response(body, etag=etag_for("dataset-tilesets", root, datum))


def _dataset_layers():
    layers = _point_layers()
    bounds = t.union_bounds(service().bounds(layer) for layer in layers)
    versions = [(layer.spec.id, layer.version, layer.modified) for layer in layers]
    return layers, bounds, versions


@bp.get("/tiles/<tile_matrix_set_id>")
def dataset_tileset(tile_matrix_set_id):
    datum = _metadata_params()
    t.check_tile_matrix_set(tile_matrix_set_id)
    root = base_url()
    layers, bounds, versions = _dataset_layers()
    data_links = [{"href": f"{root}/collections/{layer.spec.id}", "rel": REL_GEODATA, "type": JSON,
                   "title": layer.spec.title_en} for layer in layers]
    doc = t.tileset(layers, bounds, _dataset_tiles_root(root), datum, _DATASET_TITLE, _DATASET_DESCRIPTION, JSON,
                    _tms_url(root), data_links)
    return json_response(doc, etag=etag_for("dataset-tileset", root, datum, *versions))


@bp.get("/tiles/<tile_matrix_set_id>/tilejson.json")
def dataset_tilejson(tile_matrix_set_id):
    datum = _metadata_params()
    t.check_tile_matrix_set(tile_matrix_set_id)
    root = base_url()
    layers, bounds, versions = _dataset_layers()
    doc = t.tilejson(layers, bounds, _dataset_tiles_root(root), datum, "shanghai-union-service-map",
                     _DATASET_DESCRIPTION)
    return json_response(doc, etag=etag_for("dataset-tilejson", root, datum, *versions))


@bp.get("/tiles/<tile_matrix_set_id>/<z>/<x>/<y>")
def dataset_tile(tile_matrix_set_id, z, x, y):
    datum, address = _tile_params(tile_matrix_set_id, z, x, y)
    layers = _point_layers()
    versions = [(layer.spec.id, layer.version, layer.modified) for layer in layers]
    etag = etag_for("tiles", datum, *address.key, *versions)
    if not_modified(etag):
        return _tile_response(None, etag, datum)
    return _tile_response(builder().multi_tile(layers, datum, address), etag, datum)


# --- tile responses ---------------------------------------------------------------------------------------------
def _tile_params(tile_matrix_set_id: str, z: str, x: str, y: str) -> tuple[str, t.TileAddress]:
    check_params({"crs", "f"})
    _check_format(TILE_FORMATS)
    datum = t.parse_datum(request.args.get("crs"))
    t.check_tile_matrix_set(tile_matrix_set_id)
    return datum, t.parse_address(z, x, y)


def _tile_response(tile: t.EncodedTile | None, etag: str, datum: str) -> Response:
    """200 with the tile (gzipped, compressed once per ETag, when the client accepts it and it is worth it), or 304
    when ``tile`` is None. An empty tile is a 200 too: its MVT layer with no features."""
    headers = {"Cache-Control": "public, max-age=60", "Vary": "Accept-Encoding",
               "Content-Security-Policy": DATA_CSP}
    if datum != "wgs84":
        headers["X-Coordinate-System"] = datum
    if tile is None:
        resp = Response(status=304, headers=headers)
        resp.headers["ETag"] = etag
        return resp
    body = tile.data
    if len(body) >= GZIP_MIN_BYTES and accepts_gzip():
        body = current_app.extensions["tiles_gzip"].get_or_compress(etag, body)
        headers["Content-Encoding"] = "gzip"
        etag = etag[:-1] + '-gzip"'
    resp = Response(body, status=200, content_type=t.MVT_TYPE, headers=headers)
    resp.headers["ETag"] = etag
    return resp
