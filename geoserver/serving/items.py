"""OGC API - Features items of a layer (``/ogc/collections/{layer}/items``) and one item by id.

The OpenAPI document of /ogc is generated from these declarations (``web/openapi.py``), so what it lists is exactly
what is parsed here: ``crs`` and ``bbox-crs`` take exactly the spellings of ``query.OGC_CRS_VALUES``, an empty
``bbox`` or ``services`` is refused, a ``limit`` above the maximum is served as the maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core import crs
from ..core import query as q
from ..core.errors import InvalidQuery
from ..operations import Operation, Param, register

FORMATS = ("json", "geojson", "application/json", "application/geo+json")


def _ogc_datum(param: Param, raw, service) -> str:
    return q.ogc_datum(raw, param.name)


def _strict_services(param: Param, raw, service) -> tuple[str, ...]:
    return q.service_list(None if raw is None else param.text(raw), service.vocab, param.name, strict=True)


def _format(param: Param, raw, service):
    if raw is not None and raw not in FORMATS:
        raise InvalidQuery(f"unsupported format f={str(raw)[:40]!r}; this API serves json (GeoJSON for features): "
                           f"f={', '.join(FORMATS)}", "f")
    return raw


def _services_schema(vocab_ids=(), **context) -> dict:
    return {"type": "array", "minItems": 1, "maxItems": len(vocab_ids), "items": {"type": "string",
                                                                                 "enum": list(vocab_ids)}}


CRS_PARAM = Param("crs", "enum", "Output coordinates: wgs84 (the default, = CRS84), gcj02 (Amap, Tencent), bd09 (Baidu) "
                  "or a CRS84 URI; exactly one of these values", "输出坐标系", default="wgs84",
                  choices=q.OGC_CRS_VALUES, parser=_ogc_datum)
FORMAT_PARAM = Param("f", "enum", "Output format: JSON (GeoJSON for features); exactly one of these values", "格式",
                     choices=FORMATS, parser=_format, cli=False)

ITEMS_PARAMS = (
    Param("bbox", "bbox", "Only features intersecting the box minLon,minLat,maxLon,maxLat (or the 6-number form with "
          "heights, heights ignored), in bbox-crs (default CRS84 / WGS84). Longitudes must lie in [-180, 180], "
          "latitudes in [-90, 90], each minimum at most its maximum (boxes across the antimeridian are not "
          "supported); other boxes are refused with 400.", "范围", empty_is_absent=False,
          schema={"type": "array", "oneOf": [{"minItems": 4, "maxItems": 4}, {"minItems": 6, "maxItems": 6}],
                  "items": {"type": "number"}}),
    Param("bbox-crs", "enum", "Coordinate system of bbox: wgs84 (the default, = CRS84), gcj02 (Amap, Tencent), bd09 "
          "(Baidu) or a CRS84 URI; exactly one of these values", "范围坐标系", default="wgs84",
          choices=q.OGC_CRS_VALUES, parser=_ogc_datum),
    Param("limit", "int", f"Page size (default {q.ITEMS_DEFAULT_LIMIT}). A value above {q.ITEMS_MAX_LIMIT} is not an "
          f"error: it is served as {q.ITEMS_MAX_LIMIT}, as OGC API - Features requires (the self link shows the "
          "limit used)", "每页数量", default=q.ITEMS_DEFAULT_LIMIT, minimum=1, maximum=q.ITEMS_MAX_LIMIT, clamp=True,
          empty_is_absent=False),
    Param("offset", "int", "Number of matching features to skip (follow the next/prev links)", "跳过数量", default=0,
          minimum=0, maximum=q.MAX_OFFSET, empty_is_absent=False),
    CRS_PARAM,
    FORMAT_PARAM,
    Param("services", "list", "Only features offering all these services (comma-separated ids; Chinese and English "
          "labels are understood too); an empty value or entry is refused", "所需服务", parser=_strict_services,
          schema=_services_schema),
)


def has_services(layer) -> bool:
    return any(f.type == "services" for f in layer.spec.fields)


def queryables(layer) -> list[str]:
    """Properties that items can be filtered on by equality (besides services)."""
    return [f.name for f in layer.spec.public_fields if f.type in ("string", "integer", "boolean")]


def bbox_to_wgs84(bbox, datum: str):
    """A bbox given in GCJ-02/BD-09 as the WGS84 envelope of its converted corners."""
    if datum == "wgs84":
        return bbox
    minx, miny, maxx, maxy = bbox
    lon, lat = crs.to_wgs84([minx, minx, maxx, maxx], [miny, maxy, miny, maxy], datum)
    return float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))


@dataclass(frozen=True)
class ItemsRequest:
    layer: str
    datum: str
    limit: int
    offset: int
    bbox: tuple | None          # WGS84
    services: tuple[str, ...]
    filters: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ItemsResult:
    request: ItemsRequest
    page: object                # service.items(...): positions and number_matched


class Items(Operation):
    name = "items"
    summary = "Features of a layer, paged, filtered by bbox, services and property values"
    what = "query parameter"
    params = ITEMS_PARAMS

    def openapi_for(self, layer, **context) -> list[dict]:
        """The parameters of one layer's items path, in the document's order (services only where the layer has
        them; its equality filters after)."""
        out = [p.openapi(**context) for p in self.params if p.name != "services"]
        if has_services(layer):
            out.insert(4, self.param("services").openapi(**context))
        return out

    def parse_for(self, layer, args, service) -> ItemsRequest:
        """The request for ``layer``: its queryable properties are accepted as equality filters too."""
        props = queryables(layer)
        self.check_known(args, self.names | set(props))
        values = {p.attr: p.parse(args.get(p.name), service) for p in self.params}
        bbox = values["bbox"]
        if bbox is not None:
            bbox = bbox_to_wgs84(bbox, values["bbox_crs"])
        filters = {name: q.text(args, name, max_length=q.OGC_TEXT_MAX_LENGTH) for name in props
                   if args.get(name) is not None}
        return ItemsRequest(layer=layer.spec.id, datum=values["crs"], limit=values["limit"], offset=values["offset"],
                            bbox=bbox, services=values["services"], filters=filters)

    def parse(self, mapping, service=None) -> ItemsRequest:
        mapping = dict(mapping)
        layer = service.layer(str(mapping.pop("collectionId", "stations")))
        return self.parse_for(layer, mapping, service)

    def run(self, service, request: ItemsRequest) -> ItemsResult:
        layer = service.layer(request.layer)
        return ItemsResult(request, service.items(layer, request.bbox, request.filters, request.services,
                                                  request.limit, request.offset))


@dataclass(frozen=True)
class ItemRequest:
    layer: str
    feature_id: str
    datum: str


class Item(Operation):
    name = "item"
    summary = "One feature of a layer by id"
    what = "query parameter"
    params = (CRS_PARAM, FORMAT_PARAM)

    def parse_for(self, layer, feature_id: str, args, service) -> ItemRequest:
        values = self.values(args, service)
        return ItemRequest(layer.spec.id, feature_id, values["crs"])

    def run(self, service, request: ItemRequest) -> int:
        return service.feature_position(service.layer(request.layer), request.feature_id)


ITEMS = register(Items())
ITEM = register(Item())
