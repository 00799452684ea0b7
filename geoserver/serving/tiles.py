"""Vector tiles of the loaded layers: Mapbox Vector Tiles on the WebMercatorQuad grid (OGC API - Tiles), their
TileJSON and OGC tileset documents.

Tiles are cut from the layers already in memory, never read from disk per request: a point layer's positions are
projected once per data version and datum to Web-Mercator unit coordinates (0..1 across the world, sorted by x), so a
tile is two binary searches, one comparison and the encoding of the points it holds. Polygon layers (the districts)
are projected once too and clipped to each tile. Encoded tiles are kept in a bounded LRU keyed by (layer, data
version, datum, z, x, y): a new version of a layer makes new keys, and its old tiles age out.

``crs=gcj02``: the features sit at their GCJ-02 positions on the same Web-Mercator grid, which is how Amap and
Tencent raster base maps draw GCJ-02 coordinates, so they land on the right streets there. BD-09 is not offered:
Baidu's base maps use a grid of their own, on which no WebMercatorQuad tile lines up.

Flask-free: the web layer (``geoserver.web.tiles``) routes, checks the HTTP parameters and writes the responses.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import mapbox_vector_tile
import morecantile
import numpy as np
import shapely
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid

from ..core import crs
from ..core.errors import GeoServerError, InvalidQuery

TMS_ID = "WebMercatorQuad"
WEB_MERCATOR_QUAD = morecantile.tms.get(TMS_ID)
#: Zoom levels (tile matrices) served. The layers are points in one city: at z16 a tile is about 520 m wide in
#: Shanghai and its 4096 units place a point to 0.13 m, so clients draw the z16 tiles larger (overzoom) beyond it.
MIN_ZOOM, MAX_ZOOM = 0, 16
#: Tile coordinates run 0..EXTENT across a tile (the MVT default).
EXTENT = 4096
#: Features this far outside the tile (in tile units, 64 = 4 px of a 256 px tile) are in it too, so a symbol drawn
#: across the edge is not cut in half; their coordinates lie outside 0..EXTENT.
BUFFER = 64
MVT_TYPE = "application/vnd.mapbox-vector-tile"
#: A tile's row may be written with one of these suffixes (…/12/3430/1673.pbf): GDAL's MVT driver opens a URL as a
#: single tile, georeferenced by its z/x/y, only when it ends so.
TILE_SUFFIXES = (".pbf", ".mvt")
TILEJSON_VERSION = "3.0.0"
EPSG_3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: Datums a tile's features may be placed in (``crs``); wgs84 is the default.
TILE_DATUMS = ("wgs84", "gcj02")
#: The properties a tile carries, each where the layer has it as a public field (``id`` always; ``sample`` on
#: sample data). A tile is for drawing and a first look; the feature itself is at /ogc/collections/{layer}/items/{id}.
TILE_PROPERTIES = ("name", "name_en", "district", "address", "services", "opening_hours", "zone")
#: Bytes of encoded tiles kept per process (plus about 200 bytes of bookkeeping per tile, counted too).
CACHE_MAX_BYTES = 48 << 20
_ENTRY_OVERHEAD_BYTES = 200
#: Projected layers kept (one per layer, data version and datum).
SOURCES_MAX = 64
_MAX_LAT = 85.0511287798066   # the latitude where Web Mercator's square world ends
_DIGITS = re.compile(r"[0-9]{1,12}")
_FIELD_TYPES = {"string": "String", "opening_hours": "String", "services": "String", "integer": "Number",
                "number": "Number", "boolean": "Boolean"}
_SCHEMA_TYPES = {"String": "string", "Number": "number", "Boolean": "boolean"}


class TileNotFound(GeoServerError):
    """No such tile: a zoom level outside MIN_ZOOM..MAX_ZOOM, a column or row outside the tile matrix, or a tile
    matrix set other than WebMercatorQuad."""

    code = "NotFound"


@dataclass(frozen=True)
class TileAddress:
    z: int
    x: int
    y: int

    @property
    def key(self) -> tuple[int, int, int]:
        return self.z, self.x, self.y


@dataclass(frozen=True)
class EncodedTile:
    """One encoded tile: its bytes and how many features each of its layers holds."""

    data: bytes
    counts: tuple[tuple[str, int], ...]

    @property
    def features(self) -> int:
        return sum(n for _, n in self.counts)


# --- parsing ----------------------------------------------------------------------------------------------------
def check_tile_matrix_set(tms_id: str) -> None:
    if tms_id != TMS_ID:
        raise TileNotFound(f"unknown tile matrix set {str(tms_id)[:60]!r}; this server tiles {TMS_ID} only",
                           "tileMatrixSetId")


def parse_address(z: str, x: str, y: str) -> TileAddress:
    """A tile address from its path segments (``y`` may end in .pbf or .mvt): not whole numbers → InvalidQuery
    (400); outside the served zoom levels or the tile matrix → TileNotFound (404)."""
    values = {}
    y = y[:-4] if isinstance(y, str) and y.endswith(TILE_SUFFIXES) else y
    for name, raw, what in (("z", z, "the zoom level (tile matrix)"), ("x", x, "the tile column"),
                            ("y", y, "the tile row, counted from the north")):
        if _DIGITS.fullmatch(str(raw)) is None:
            raise InvalidQuery(f"{name}={str(raw)[:40]!r} must be a whole number 0 or more: {what}", name)
        values[name] = int(raw)
    zoom = values["z"]
    if not MIN_ZOOM <= zoom <= MAX_ZOOM:
        raise TileNotFound(f"zoom level z={zoom} is not served: tiles exist for z={MIN_ZOOM}..{MAX_ZOOM} (at higher "
                           f"zoom levels draw the z={MAX_ZOOM} tiles larger)", "z")
    size = 1 << zoom
    for name in ("x", "y"):
        if values[name] >= size:
            raise TileNotFound(f"{name}={values[name]} is outside tile matrix {zoom}, whose columns and rows run "
                               f"0..{size - 1}", name)
    return TileAddress(zoom, values["x"], values["y"])


def parse_datum(raw: str | None) -> str:
    """``crs`` of a tile request: wgs84 (default) or gcj02."""
    if raw is None:
        return "wgs84"
    if raw == "bd09":
        raise InvalidQuery("crs=bd09 is not offered for tiles: Baidu's base maps use their own tile grid, on which "
                           f"{TMS_ID} tiles do not line up; use the features with crs=bd09 "
                           "(/ogc/collections/{layer}/items?crs=bd09) instead", "crs")
    if raw not in TILE_DATUMS:
        raise InvalidQuery(f"unknown coordinate system {raw[:60]!r} for crs; tiles take one of "
                           f"{', '.join(TILE_DATUMS)} (gcj02: for Amap and Tencent base maps)", "crs")
    return raw


# --- geometry ---------------------------------------------------------------------------------------------------
def to_unit(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude to Web-Mercator unit coordinates: x 0..1 west to east, y 0..1 north to south."""
    lon = np.asarray(lon, float)
    lat = np.radians(np.clip(np.asarray(lat, float), -_MAX_LAT, _MAX_LAT))
    return (lon + 180.0) / 360.0, 0.5 - np.arcsinh(np.tan(lat)) / (2.0 * math.pi)


def tile_bounds(address: TileAddress) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a tile in degrees."""
    b = WEB_MERCATOR_QUAD.bounds(address.x, address.y, address.z)
    return b.left, b.bottom, b.right, b.top


def public_tile_fields(layer) -> list:
    """The layer's public fields a tile carries (TILE_PROPERTIES order)."""
    public = {f.name: f for f in layer.spec.public_fields}
    return [public[name] for name in TILE_PROPERTIES if name in public]


def _tile_properties(layer) -> list[dict]:
    """Each feature's tile properties: id, the public fields of TILE_PROPERTIES it has a value for (services as a
    comma-separated string), and ``sample: true`` on sample data. Values MVT cannot hold (None) are left out."""
    names = [f.name for f in public_tile_fields(layer)]
    out = []
    for props in layer.properties:
        row = {"id": str(props["id"])}
        for name in names:
            value = props.get(name)
            if isinstance(value, list):
                value = ",".join(value) if value else None
            if value is not None:
                row[name] = value
        if props.get("source") == "sample":
            row["sample"] = True
        out.append(row)
    return out


class _PointSource:
    """A point layer's positions in one datum as unit coordinates, sorted by x, with its tile properties."""

    def __init__(self, layer, datum: str, properties: list[dict]):
        coords = np.asarray(layer.point_coordinates(datum), float).reshape(-1, 2)   # the positions items serve
        ux, uy = to_unit(coords[:, 0], coords[:, 1])
        self.order = np.argsort(ux, kind="stable")
        self.ux_sorted = ux[self.order]
        self.ux, self.uy = ux, uy
        self.properties = properties

    def features(self, address: TileAddress) -> list[dict]:
        n = 1 << address.z
        pad = BUFFER / EXTENT
        lo = np.searchsorted(self.ux_sorted, (address.x - pad) / n, side="left")
        hi = np.searchsorted(self.ux_sorted, (address.x + 1 + pad) / n, side="right")
        candidates = self.order[lo:hi]
        uy = self.uy[candidates]
        positions = np.sort(candidates[(uy >= (address.y - pad) / n) & (uy <= (address.y + 1 + pad) / n)])
        if not len(positions):
            return []
        px = np.rint((self.ux[positions] * n - address.x) * EXTENT)
        py = np.rint((self.uy[positions] * n - address.y) * EXTENT)
        points = shapely.points(np.column_stack([px, py]))
        props = self.properties
        return [{"geometry": g, "properties": props[p]} for p, g in zip(positions.tolist(), points)]


class _PolygonSource:
    """A polygon layer's geometries in one datum as unit coordinates, with their bounds and tile properties."""

    def __init__(self, layer, datum: str, properties: list[dict]):
        geoms = np.array([crs.transform_geometry(g, datum) for g in layer.index.geometries], dtype=object)
        self.geoms = shapely.transform(geoms, lambda xy: np.column_stack(to_unit(xy[:, 0], xy[:, 1]))) \
            if len(geoms) else geoms
        self.bounds = shapely.bounds(self.geoms) if len(geoms) else np.empty((0, 4))
        self.properties = properties

    def features(self, address: TileAddress) -> list[dict]:
        n = 1 << address.z
        pad = BUFFER / EXTENT
        west, north = (address.x - pad) / n, (address.y - pad) / n
        east, south = (address.x + 1 + pad) / n, (address.y + 1 + pad) / n
        b = self.bounds
        hits = np.nonzero((b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= south) & (b[:, 3] >= north))[0]
        if not len(hits):
            return []
        offset = np.array([address.x, address.y], float)
        in_tile = shapely.transform(self.geoms[hits], lambda xy: (xy * n - offset) * EXTENT)
        clipped = shapely.clip_by_rect(in_tile, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
        # detail below one tile unit dropped (at z9 the districts tile is 13 KB instead of 24, built in a quarter of
        # the time), then snapped to the tile's integer grid, kept valid
        snapped = shapely.set_precision(shapely.simplify(clipped, 1.0), 1.0)
        out = []
        for pos, geom in zip(hits.tolist(), snapped):
            geom = _polygonal(geom)
            if geom is not None:
                out.append({"geometry": geom, "properties": self.properties[pos]})
        return out


def _polygonal(geom):
    """The polygons of a clipped geometry (None if nothing of area is left)."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


# --- building and caching ---------------------------------------------------------------------------------------
class TileBuilder:
    """Encoded tiles of the loaded layers, built on demand and kept in an LRU of at most ``max_bytes``.

    Thread-safe: two threads asking for the same new tile may both build it (the same bytes); nothing waits on a
    build but the thread doing it."""

    def __init__(self, max_bytes: int = CACHE_MAX_BYTES):
        self.max_bytes = max_bytes
        self._tiles: OrderedDict[tuple, EncodedTile] = OrderedDict()
        self._bytes = 0
        self._sources: OrderedDict[tuple, object] = OrderedDict()
        self._properties: dict[tuple, list[dict]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.builds = 0

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._tiles)

    def layer_tile(self, layer, datum: str, address: TileAddress) -> EncodedTile:
        """The tile of one layer (points, or polygons clipped to the tile): one MVT layer named by the layer id."""
        return self._cached(("layer", _version(layer), datum, address.key),
                            lambda: self._encode([layer], datum, address))

    def multi_tile(self, layers: list, datum: str, address: TileAddress) -> EncodedTile:
        """One tile of several layers, one MVT layer each (in the order given), empty ones included."""
        key = ("multi", tuple(_version(layer) for layer in layers), datum, address.key)
        return self._cached(key, lambda: self._encode(layers, datum, address))

    def _cached(self, key: tuple, build) -> EncodedTile:
        with self._lock:
            hit = self._tiles.get(key)
            if hit is not None:
                self._tiles.move_to_end(key)
                self.hits += 1
                return hit
        tile = build()
        size = len(tile.data) + _ENTRY_OVERHEAD_BYTES
        with self._lock:
            self.builds += 1
            if size <= self.max_bytes and key not in self._tiles:
                self._tiles[key] = tile
                self._bytes += size
                while self._bytes > self.max_bytes and self._tiles:
                    _, old = self._tiles.popitem(last=False)
                    self._bytes -= len(old.data) + _ENTRY_OVERHEAD_BYTES
        return tile

    def _encode(self, layers: list, datum: str, address: TileAddress) -> EncodedTile:
        out, counts = [], []
        for layer in layers:
            features = self._source(layer, datum).features(address)
            out.append({"name": layer.spec.id, "features": features})
            counts.append((layer.spec.id, len(features)))
        options = {"extents": EXTENT, "y_coord_down": True, "check_winding_order": True,
                   "on_invalid_geometry": on_invalid_geometry_make_valid}
        return EncodedTile(mapbox_vector_tile.encode(out, default_options=options), tuple(counts))

    def _source(self, layer, datum: str):
        """The layer projected for tiles (once per data version and datum)."""
        key = (*_version(layer), datum)
        with self._lock:
            source = self._sources.get(key)
            if source is not None:
                self._sources.move_to_end(key)
                return source
        source = (_PointSource if layer.index.is_point else _PolygonSource)(layer, datum, self._tile_props(layer))
        with self._lock:
            # a new version replaces the layer's older ones at once; otherwise the least recently used goes
            for old in [k for k in self._sources if k[0] == key[0] and k[1:3] != key[1:3]]:
                del self._sources[old]
            self._sources[key] = source
            while len(self._sources) > SOURCES_MAX:
                self._sources.popitem(last=False)
        return source

    def _tile_props(self, layer) -> list[dict]:
        key = _version(layer)
        props = self._properties.get(key)
        if props is None:
            props = _tile_properties(layer)
            with self._lock:
                for old in [k for k in self._properties if k[0] == key[0] and k != key]:
                    del self._properties[old]
                self._properties[key] = props
        return props


def _version(layer) -> tuple[str, str, str]:
    """What a layer's tiles depend on: its id and data version (and load time, as the items' ETag has it)."""
    return layer.spec.id, layer.version, layer.modified.isoformat()


# --- documents: TileJSON, OGC tilesets, tile matrix sets ----------------------------------------------------------
def datum_bounds(bounds, datum: str) -> list[float]:
    """A WGS84 (west, south, east, north) box as the envelope of its corners in ``datum``, 6 decimals."""
    west, south, east, north = bounds
    if datum != "wgs84":
        lon, lat = crs.from_wgs84([west, west, east, east], [south, north, south, north], datum)
        west, south, east, north = float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))
    return [round(float(v), 6) for v in (west, south, east, north)]


def union_bounds(boxes) -> list[float]:
    boxes = list(boxes)
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]


def tile_fields(layer) -> list[tuple[str, str, str]]:
    """(name, type, description) of each property a layer's tiles carry; type is a TileJSON type name (String,
    Number, Boolean)."""
    spec = layer.spec
    out = [("id", "String", f"the feature id (its OGC item: /ogc/collections/{spec.id}/items/{{id}})")]
    for f in public_tile_fields(layer):
        extra = " (comma-separated ids)" if f.type == "services" else ""
        out.append((f.name, _FIELD_TYPES.get(f.type, "String"), f"{f.title_en} / {f.title_zh}{extra}"))
    if layer.has_sample_data:
        out.append(("sample", "Boolean", "true on SAMPLE data (示例数据), not a real facility"))
    return out


def vector_layer(layer) -> dict:
    """The TileJSON ``vector_layers`` entry of a layer: its MVT layer name, fields and zoom levels."""
    spec = layer.spec
    return {"id": spec.id, "description": f"{spec.title_zh} / {spec.title_en}", "minzoom": MIN_ZOOM,
            "maxzoom": MAX_ZOOM, "fields": {name: f"{kind}: {text}" for name, kind, text in tile_fields(layer)}}


def attribution(layers) -> str:
    text = "上海工会服务地图 / Shanghai union service map"
    if any(layer.has_sample_data for layer in layers):
        text += " — SAMPLE data (示例数据), not real facilities"
    return text


def _query(datum: str) -> str:
    return "" if datum == "wgs84" else f"?crs={datum}"


def tilejson(layers, bounds, tiles_root: str, datum: str, name: str, description: str) -> dict:
    """A TileJSON 3.0.0 document for the tiles under ``tiles_root`` (…/tiles/WebMercatorQuad); ``bounds`` in
    WGS84."""
    box = datum_bounds(bounds, datum)
    center = [round((box[0] + box[2]) / 2, 6), round((box[1] + box[3]) / 2, 6), 9]
    shifted = " Positions in GCJ-02 (for Amap and Tencent base maps)." if datum == "gcj02" else ""
    return {
        "tilejson": TILEJSON_VERSION,
        "name": name,
        "description": description + shifted,
        "version": "1.0.0",
        "attribution": attribution(layers),
        "scheme": "xyz",
        "tiles": [f"{tiles_root}/{{z}}/{{x}}/{{y}}{_query(datum)}"],
        "minzoom": MIN_ZOOM,
        "maxzoom": MAX_ZOOM,
        "bounds": box,
        "center": center,
        "vector_layers": [vector_layer(layer) for layer in layers],
    }


def tile_matrix_set_limits(bounds) -> list[dict]:
    """The tiles of each served zoom level that hold data within ``bounds`` (degrees, in the tiles' datum)."""
    west, south, east, north = bounds
    out = []
    for z in range(MIN_ZOOM, MAX_ZOOM + 1):
        top_left = WEB_MERCATOR_QUAD.tile(west, north, z)
        bottom_right = WEB_MERCATOR_QUAD.tile(east, south, z)
        out.append({"tileMatrix": str(z), "minTileRow": top_left.y, "maxTileRow": bottom_right.y,
                    "minTileCol": top_left.x, "maxTileCol": bottom_right.x})
    return out


def _geometry_dimension(layer) -> int:
    return 0 if layer.index.is_point else 2


def tileset(layers, bounds, tiles_root: str, datum: str, title: str, description: str, json_type: str,
            tms_url: str, data_links: list[dict]) -> dict:
    """An OGC tileset metadata document (2D TMS 2.0 TileSetMetadata, JSON) of vector tiles under ``tiles_root``."""
    box = datum_bounds(bounds, datum)
    q = _query(datum)
    layer_docs = []
    for layer in layers:
        spec = layer.spec
        layer_docs.append({
            "id": spec.id, "title": f"{spec.title_zh} / {spec.title_en}", "dataType": "vector",
            "geometryDimension": _geometry_dimension(layer), "minTileMatrix": str(MIN_ZOOM),
            "maxTileMatrix": str(MAX_ZOOM),
            "propertiesSchema": {"type": "object", "properties": {
                name: {"type": _SCHEMA_TYPES[kind], "description": text} for name, kind, text in tile_fields(layer)}},
        })
    return {
        "title": title,
        "description": description + (" Positions in GCJ-02 (for Amap and Tencent base maps)." if datum == "gcj02"
                                      else ""),
        "attribution": attribution(layers),
        "dataType": "vector",
        "crs": EPSG_3857,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD.uri,
        # in GCJ-02 degrees with crs=gcj02, which no CRS URI names
        "boundingBox": {"lowerLeft": box[:2], "upperRight": box[2:], **({"crs": CRS84} if datum == "wgs84" else {})},
        "tileMatrixSetLimits": tile_matrix_set_limits(box),
        "layers": layer_docs,
        "links": [
            {"href": f"{tiles_root}{q}", "rel": "self", "type": json_type, "title": "This tileset"},
            {"href": tms_url, "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": json_type,
             "title": f"The {TMS_ID} tile matrix set"},
            {"href": f"{tiles_root}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}{q}", "rel": "item", "type": MVT_TYPE,
             "templated": True, "title": "Mapbox vector tiles (path order: tileMatrix/tileCol/tileRow, i.e. z/x/y)"},
            {"href": f"{tiles_root}/tilejson.json{q}", "rel": "describedby", "type": json_type,
             "title": "TileJSON 3.0.0"},
            *data_links,
        ],
    }


def tileset_summary(tiles_root: str, datum: str, title: str, json_type: str, tms_url: str) -> dict:
    """One entry of a tilesets list."""
    q = _query(datum)
    return {
        "title": title,
        "dataType": "vector",
        "crs": EPSG_3857,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD.uri,
        "links": [
            {"href": f"{tiles_root}{q}", "rel": "self", "type": json_type, "title": f"{TMS_ID} tileset"},
            {"href": tms_url, "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme", "type": json_type,
             "title": f"The {TMS_ID} tile matrix set"},
            {"href": f"{tiles_root}/{{tileMatrix}}/{{tileCol}}/{{tileRow}}{q}", "rel": "item", "type": MVT_TYPE,
             "templated": True, "title": "Mapbox vector tiles"},
        ],
    }


@lru_cache(maxsize=1)
def tile_matrix_set_document() -> dict:
    """The WebMercatorQuad tile matrix set (OGC 2D TMS 2.0, JSON); callers must not change it."""
    return WEB_MERCATOR_QUAD.model_dump(exclude_none=True, mode="json")


def tile_matrix_sets_list(tms_url: str, json_type: str) -> list[dict]:
    return [{"id": TMS_ID, "title": WEB_MERCATOR_QUAD.title, "uri": WEB_MERCATOR_QUAD.uri, "crs": EPSG_3857,
             "links": [{"href": tms_url, "rel": "self", "type": json_type, "title": f"The {TMS_ID} tile matrix set"}]}]
