"""OGC API - Features items of a layer (``/ogc/collections/{layer}/items``) and one item by id.

The OpenAPI document of /ogc is generated from these declarations (``web/openapi.py``), so what it lists is exactly
what is parsed here: ``crs`` and ``bbox-crs`` take exactly the spellings of ``query.OGC_CRS_VALUES``, an empty
``bbox`` or ``services`` is refused, a ``limit`` above the maximum is served as the maximum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import orjson

from ..core import crs
from ..core import query as q
from ..core.errors import InvalidQuery
from ..core.layers import UPDATED
from ..core.service import ItemsPage
from ..operations import Operation, Param, register
from . import cql

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


def _raw_text(param: Param, raw, service) -> str | None:
    """The value as given (no stripping: ``sortby= name`` is ``+name`` with its plus decoded as a space), checked
    for length; an empty value is refused (leave the parameter out instead)."""
    if raw is None:
        return None
    value = str(raw)
    if len(value) > param.max_length:
        raise InvalidQuery(f"{param.name} is {len(value)} characters long; at most {param.max_length} are accepted",
                           param.name)
    if not value.strip():
        raise InvalidQuery(f"{param.name} is empty; {param.message or 'leave it out instead'}", param.name)
    return value


def _datetime(param: Param, raw, service) -> tuple[float, float] | None:
    """``datetime`` as (first, last) seconds since 1970, inclusive (see DATETIME_PARAM)."""
    if raw is None:
        return None
    text = str(raw)
    if len(text) > param.max_length:
        raise InvalidQuery(f"datetime is {len(text)} characters long; at most {param.max_length} are accepted",
                           "datetime")
    parts = text.split("/")
    if len(parts) > 2 or not text.strip():
        raise InvalidQuery(f"datetime={text[:60]!r} is neither a time nor an interval start/end; "
                           f"{DATETIME_EXAMPLES}", "datetime")
    if len(parts) == 1:
        if parts[0].strip() in ("", ".."):
            raise InvalidQuery(f"datetime={text[:60]!r}: an instant cannot be open; {DATETIME_EXAMPLES}", "datetime")
        return _datetime_bound(parts[0], "datetime"), _datetime_bound(parts[0], "datetime", end=True)
    if all(p.strip() in ("", "..") for p in parts):
        raise InvalidQuery(f"datetime={text[:60]!r} is open at both ends, which selects everything: leave datetime "
                           f"out, or give one end; {DATETIME_EXAMPLES}", "datetime")
    start, end = (_datetime_bound(p, "datetime", end=i == 1, open_ok=True) for i, p in enumerate(parts))
    if start > end:
        raise InvalidQuery(f"datetime={text[:60]!r} starts after it ends; give start/end", "datetime")
    return start, end


DATETIME_EXAMPLES = ("e.g. 2026-12-02T08:00:00Z, 2026-12-02 (the whole day, UTC), 2026-11-01T00:00:00Z/.. (since), "
                     "../2026-12-01 (until) or 2026-11-01/2026-11-30")


def _datetime_bound(text: str, name: str, end: bool = False, open_ok: bool = False) -> float:
    """One end of ``datetime`` as seconds since 1970: '..' or nothing (open, where allowed), a date (its first or,
    as an ``end``, its last instant), or an RFC 3339 date-time."""
    from datetime import date
    value = text.strip()
    try:
        if value in ("", ".."):
            if open_ok:
                return np.inf if end else -np.inf
        elif re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            return cql.instant(date.fromisoformat(value), end_of_day=end)
        else:
            return cql.parse_rfc3339(value).timestamp()
    except ValueError:
        pass
    raise InvalidQuery(f"{name}: {value[:40]!r} is not an RFC 3339 date-time or date; {DATETIME_EXAMPLES}", name)


def _properties_schema(layer=None, **context) -> dict:
    names = [f.name for f in layer.spec.feature_fields] if layer is not None else []
    items = {"type": "string", "enum": names} if layer is not None else {"type": "string"}
    return {"type": "array", "minItems": 1, "items": items}


def _sortby_schema(layer=None, **context) -> dict:
    if layer is None:
        return {"type": "array", "minItems": 1, "items": {"type": "string"}}
    names = [f.name for f in layer.spec.feature_fields if cql.KINDS[f.type] != "array"]
    return {"type": "array", "minItems": 1,
            "items": {"type": "string", "pattern": f"^[+ -]?(?:{'|'.join(map(re.escape, names))})$"}}


def _filter_schema(layer=None, vocab_ids=(), **context) -> dict:
    schema = {"type": "string", "minLength": 1, "maxLength": cql.MAX_FILTER_CHARS}
    if layer is not None:
        schema["pattern"] = filter_pattern(layer)
    return schema


def _services_schema(vocab_ids=(), **context) -> dict:
    return {"type": "array", "minItems": 1, "maxItems": len(vocab_ids), "items": {"type": "string",
                                                                                 "enum": list(vocab_ids)}}


CRS_PARAM = Param("crs", "enum", "Output coordinates: wgs84 (the default, = CRS84), gcj02 (Amap, Tencent), bd09 (Baidu) "
                  "or a CRS84 URI; exactly one of these values", "输出坐标系", default="wgs84",
                  choices=q.OGC_CRS_VALUES, parser=_ogc_datum)
FORMAT_PARAM = Param("f", "enum", "Output format: JSON (GeoJSON for features); exactly one of these values", "格式",
                     choices=FORMATS, parser=_format, cli=False)

CRS84 = crs.CRS84_URIS[0]

#: The parameters of OGC API - Features Part 3 and property selection whose allowed values depend on the collection
#: (its properties): declared here like the others, documented per collection (``Items.openapi_query_options``).
PROPERTIES_PARAM = Param(
    "properties", "list", "Only these properties in each feature: comma-separated names of the collection's public "
    "properties (its queryables document lists them); the feature's id and geometry are always there. An unknown "
    "name, or a property that is not public, is refused with 400", "返回的属性", parser=_raw_text,
    message="give comma-separated property names such as name,district, or leave properties out to get them all",
    schema=_properties_schema)
#: The same for one feature, whose operation's parameters are the same for every collection: the schema can only
#: promise id, which every collection has; the description says the rest.
ITEM_PROPERTIES_PARAM = Param(
    "properties", "list", "Only these properties in the feature: comma-separated names of the collection's public "
    "properties (as listed for properties on its items, or in its queryables document; the schema lists only id, "
    "the one every collection has); the feature's id and geometry are always there. An unknown name, or a property "
    "that is not public, is refused with 400", "返回的属性", parser=_raw_text,
    message="give comma-separated property names such as name,district, or leave properties out to get them all",
    schema={"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["id"]}})
LAYER_ITEMS_PARAMS = (
    PROPERTIES_PARAM,
    Param("sortby", "list", "Order of the features: comma-separated property names (not services), each optionally "
          "prefixed with + (ascending, the default; an unencoded + arrives as a space, which is read the same) or - "
          "(descending). Ties are ordered by the next name and finally by id; features without a value come last in "
          "either direction; strings are ordered by their Unicode code points. Paging (offset, the next and prev "
          "links) follows the order", "排序", parser=_raw_text,
          message="give comma-separated property names such as -area_m2,name, or leave sortby out",
          schema=_sortby_schema),
    Param("filter", "str", "A CQL2 filter (OGC API - Features Part 3), in CQL2 text, e.g. district = '浦东新区' AND "
          "A_CONTAINS(services, ('charging')), or CQL2 JSON (a JSON object), at most "
          f"{cql.MAX_FILTER_CHARS} characters, {cql.MAX_FILTER_NODES} terms and {cql.MAX_FILTER_DEPTH} levels of "
          "nested conditions. Comparisons (= <> < <= > >=), LIKE and ILIKE (% any text, _ one character), IN, "
          "BETWEEN, IS NULL, AND/OR/NOT, CASEI, the array functions A_EQUALS/A_CONTAINS/A_CONTAINEDBY/A_OVERLAPS "
          "on services (ids, as a set), the spatial functions S_INTERSECTS/S_DISJOINT/S_WITHIN/S_CONTAINS/S_EQUALS/"
          "S_TOUCHES/S_CROSSES/S_OVERLAPS on the property geometry with POINT, LINESTRING, POLYGON, MULTI*, "
          "GEOMETRYCOLLECTION, BBOX(west,south,east,north) or ENVELOPE(west east south north) literals in "
          "filter-crs, and S_DWITHIN(geometry, <geometry>, <metres>) (geodesic distance from a point, as "
          "/api/nearest measures). The properties a filter may name are the collection's queryables "
          "(/collections/{collectionId}/queryables). The schema's pattern states the simple forms (up to four "
          "predicates joined by AND or OR); every filter of the grammar above is accepted. A filter that cannot "
          "be read is refused with 400 giving the line and column (or JSON pointer) where reading stopped; one "
          "naming an unknown property, comparing a property with a value of another type, or above the limits "
          "is refused with 400 saying so", "过滤条件", max_length=cql.MAX_FILTER_CHARS, parser=_raw_text,
          message="give a CQL2 expression such as district = '浦东新区', or leave filter out", schema=_filter_schema),
)
#: Part 3's language and coordinate system of a filter (the same for every collection).
FILTER_PARAMS = (
    Param("filter-lang", "enum", "Language of filter: cql2-text (the default) or cql2-json; cql-text, the name of "
          "earlier drafts, is read as cql2-text. A JSON object is read as CQL2 JSON and anything else as CQL2 text "
          "whatever this says (the two cannot be mistaken for each other)", "过滤语言", default="cql2-text",
          choices=cql.FILTER_LANGS, empty_is_absent=False),
    Param("filter-crs", "enum", "Coordinate system of the geometries in filter: CRS84 (the default, = wgs84), "
          "gcj02 (Amap, Tencent) or bd09 (Baidu); exactly one of these values", "过滤坐标系", default=CRS84,
          choices=q.OGC_CRS_VALUES, parser=_ogc_datum),
)


#: OGC API - Features Part 1's datetime, on the time each feature last changed (its ``updated`` property).
DATETIME_PARAM = Param(
    "datetime", "str", "Only features whose last change (the updated property: when what the public sees of it "
    "last changed) lies in this time or interval: an RFC 3339 date-time (2026-12-02T08:00:00Z; without an offset "
    "it is UTC), a date (the whole day, UTC), or start/end with either end open as .. (2026-11-01T00:00:00Z/.. is "
    "'changed since'). Ends are included. To follow every change, deletions included, use the change feed "
    "(/api/feed/{layer}/changes) rather than repeated datetime queries", "更新时间范围",
    max_length=q.OGC_TEXT_MAX_LENGTH, parser=_datetime, empty_is_absent=False,
    schema={"type": "string", "minLength": 1, "maxLength": q.OGC_TEXT_MAX_LENGTH, "pattern": "^(?:{t}|\\.\\./{t}|{t}/\\.\\.)$"
            .replace("{t}", r"20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9]"
                            r":[0-5][0-9]Z)?")})

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
    DATETIME_PARAM,
    *FILTER_PARAMS,
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


def select_properties(layer, text: str | None, name: str = "properties") -> tuple[str, ...] | None:
    """The public properties named in ``text``, in the collection's order (None: all of them). A name that is not
    a public property — unknown or private — is refused, naming it, exactly as an unknown one."""
    if text is None:
        return None
    public = [f.name for f in layer.spec.feature_fields]
    if "id" not in public:     # every feature's properties hold its id
        public.insert(0, "id")
    wanted = text.split(",")
    unknown = [w for w in wanted if w not in public]
    if unknown:
        shown = ", ".join(repr(u[:40]) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise InvalidQuery(f"{name}: {shown} {'is not a property' if len(unknown) == 1 else 'are not properties'} "
                           f"of {layer.spec.id}; its properties: {', '.join(public)}", name)
    return tuple(p for p in public if p in wanted)


_SORT_TERM = re.compile(r"([+ -]?)(.*)", re.DOTALL)


def parse_sortby(layer, text: str | None) -> tuple[tuple[str, bool], ...]:
    """``+name,-district`` as ((name, descending), ...); only properties that have an order (not services)."""
    if text is None:
        return ()
    sortable = [f.name for f in layer.spec.feature_fields if cql.KINDS[f.type] != "array"]
    keys, unknown, seen = [], [], set()
    for term in text.split(","):
        sign, name = _SORT_TERM.fullmatch(term).groups()
        if name not in sortable:
            unknown.append(term)
        elif name not in seen:        # a name given twice: its first direction counts
            seen.add(name)
            keys.append((name, sign == "-"))
    if unknown:
        shown = ", ".join(repr(u[:40]) for u in unknown[:5])
        lists = [f.name for f in layer.spec.feature_fields if cql.KINDS[f.type] == "array"]
        hint = f" ({', '.join(lists)} is a list and has no order)" if any(
            _SORT_TERM.fullmatch(u).group(2) in lists for u in unknown) else ""
        raise InvalidQuery(f"sortby: cannot sort {layer.spec.id} by {shown}{hint}; give comma-separated names, "
                           f"each optionally prefixed with + or -, of: {', '.join(sortable)}", "sortby")
    return tuple(keys)


def filter_pattern(layer) -> str:
    """A regular expression of simple filters every one of which the collection accepts: up to four predicates
    joined by AND or OR in CQL2 text, or one CQL2 JSON comparison (all shorter than MAX_FILTER_CHARS).
    The OpenAPI document states it as the ``filter`` schema's pattern, so a client (or a tester generating
    requests from the document) has forms it can rely on; richer filters are accepted too."""
    fields = layer.spec.feature_fields
    names = {kind: [re.escape(f.name) for f in fields if cql.KINDS[f.type] == kind]
             for kind in ("string", "number", "boolean", "array", "timestamp")}
    text = r"'[^'\x00-\x1f\x7f]{0,16}'"
    number = r"-?(?:0|[1-9][0-9]{0,6})(?:\.[0-9]{1,4})?"
    compare = r"(?:=|<>|<|<=|>|>=)"
    lon, lat = r"12[01]\.[0-9]{1,4}", r"3[01]\.[0-9]{1,4}"
    point = rf"POINT\({lon} {lat}\)"
    box = r"BBOX\(12[01]\.[0-9]{1,4}, ?30\.[0-9]{1,4}, ?12[23]\.[0-9]{1,4}, ?31\.[0-9]{1,4}\)"
    predicates = [rf"S_(?:INTERSECTS|DISJOINT|WITHIN)\(geometry, (?:{box}|{point})\)",
                  rf"S_DWITHIN\(geometry, {point}, (?:0|[1-9][0-9]{{0,4}})(?:\.[0-9]{{1,2}})?\)"]
    if names["string"]:
        s = "|".join(names["string"])
        predicates.append(rf"(?:{s}) (?:{compare} {text}|(?:NOT )?(?:LIKE|ILIKE) {text}|(?:NOT )?IN \({text}"
                          rf"(?:, {text}){{0,2}}\)|IS (?:NOT )?NULL)")
        predicates.append(rf"CASEI\((?:{s})\) = CASEI\({text}\)")
    if names["number"]:
        n = "|".join(names["number"])
        predicates.append(rf"(?:{n}) (?:{compare} {number}|(?:NOT )?BETWEEN {number} AND {number}|IS (?:NOT )?NULL)")
    if names["boolean"]:
        predicates.append(rf"(?:{'|'.join(names['boolean'])}) (?:=|<>) (?:TRUE|FALSE)")
    if names["timestamp"]:
        t = "|".join(names["timestamp"])
        day = r"20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
        moment = rf"TIMESTAMP\('{day}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z'\)"
        predicates.append(rf"(?:{t}) {compare} (?:{moment}|DATE\('{day}'\))")
        predicates.append(rf"T_(?:AFTER|BEFORE|INTERSECTS|DISJOINT)\((?:{t}), (?:{moment}|DATE\('{day}'\))\)")
    services = [re.escape(sid) for sid in (layer.spec.services or ())]
    if names["array"] and services:
        sid = rf"'(?:{'|'.join(services)})'"
        predicates.append(rf"A_(?:EQUALS|CONTAINS|CONTAINEDBY|OVERLAPS)\((?:{'|'.join(names['array'])}), "
                          rf"\({sid}(?:, {sid}){{0,2}}\)\)")
    predicate = f"(?:{'|'.join(predicates)})"
    cql2_text = rf"(?:{predicate} (?:AND|OR) ){{0,3}}{predicate}"
    json_text = r'"[^"\\\x00-\x1f\x7f]{0,16}"'
    json_forms = []
    if names["string"]:
        json_forms.append(rf'\{{"op":"(?:=|<>)","args":\[\{{"property":"(?:{"|".join(names["string"])})"\}},'
                          rf'{json_text}\]\}}')
    if names["number"]:
        json_forms.append(rf'\{{"op":"(?:<|<=|>|>=)","args":\[\{{"property":"(?:{"|".join(names["number"])})"\}},'
                          rf'{number}\]\}}')
    return f"^(?:{cql2_text}{''.join('|' + j for j in json_forms)})$"


@dataclass(frozen=True)
class ItemsRequest:
    layer: str
    datum: str
    limit: int
    offset: int
    bbox: tuple | None          # WGS84
    services: tuple[str, ...]
    filters: dict = field(default_factory=dict, hash=False)
    properties: tuple[str, ...] | None = None          # None: every public property
    sortby: tuple[tuple[str, bool], ...] = ()           # (name, descending)
    filter: cql.CompiledFilter | None = field(default=None, hash=False, compare=False)
    datetime: tuple[float, float] | None = None          # first, last (seconds since 1970, inclusive)


@dataclass(frozen=True)
class ItemsResult:
    request: ItemsRequest
    page: object                # ItemsPage: positions and number_matched


def select_page(service, layer, request: ItemsRequest) -> ItemsPage:
    """One page of the features the request selects, in its order. Without a filter or sortby this is exactly
    ``service.items``; with them, every match is found there, the filter's mask (computed once per filter and
    data version) applied, then the precomputed order for the sortby keys, then the page cut."""
    if request.filter is None and not request.sortby and request.datetime is None:
        return service.items(layer, request.bbox, request.filters, request.services, request.limit, request.offset)
    if request.bbox is None and not request.filters and not request.services and request.filter is not None:
        matched = np.flatnonzero(request.filter.mask())
    else:
        matched = service.items(layer, request.bbox, request.filters, request.services, layer.count, 0).positions
        if request.filter is not None:
            matched = matched[request.filter.mask()[matched]]
    if request.datetime is not None:
        first, last = request.datetime
        times = cql.columns(layer, service.vocab).columns[UPDATED].values[matched]
        matched = matched[(times >= first) & (times <= last)]
    if request.sortby:
        order = cql.sort_order(layer, service.vocab, request.sortby)
        keep = np.zeros(layer.count, bool)
        keep[matched] = True
        matched = order[keep[order]]
    return ItemsPage(matched[request.offset:request.offset + request.limit], int(len(matched)))


def feature_fragments(layer, positions, datum: str, properties: tuple[str, ...] | None) -> list[bytes]:
    """The features at ``positions`` as GeoJSON bytes: the fragments serialised once per datum, or, with a
    property selection, each fragment up to its properties followed by the selected ones (the bytes orjson makes
    of the Feature with only those properties)."""
    fragments = layer.fragments(datum)
    if properties is None:
        return [fragments[p] for p in positions]
    props = layer.properties
    out = []
    for p in positions:
        fragment = fragments[p]
        cut = fragment.index(b',"properties":')    # the key: a string value cannot hold this unescaped
        chosen = props[p]
        out.append(b'%s,"properties":%s}' % (fragment[:cut], orjson.dumps({k: chosen[k] for k in properties})))
    return out


class Items(Operation):
    name = "items"
    summary = "Features of a layer, paged, filtered by bbox, services, property values and CQL2, sorted, with a " \
              "choice of properties"
    what = "query parameter"
    params = ITEMS_PARAMS
    #: Declared parameters whose schema depends on the collection (documented per collection's path).
    layer_params = LAYER_ITEMS_PARAMS

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in (*self.params, *self.layer_params))

    @property
    def http_names(self) -> set[str]:
        return super().http_names | {p.name for p in self.layer_params}

    def openapi_for(self, layer, **context) -> list[dict]:
        """The parameters of one layer's items path, in the document's order (services only where the layer has
        them; its equality filters after)."""
        out = [p.openapi(**context) for p in self.params if p.name != "services"]
        if has_services(layer):
            out.insert(4, self.param("services").openapi(**context))
        return out

    def openapi_query_options(self, layer, **context) -> list[dict]:
        """The parameters naming the layer's properties (properties, sortby, filter), generated for the layer."""
        return [p.openapi(layer=layer, **context) for p in self.layer_params]

    def parse_for(self, layer, args, service) -> ItemsRequest:
        """The request for ``layer``: its queryable properties are accepted as equality filters too."""
        props = queryables(layer)
        self.check_known(args, self.names | set(props))
        values = {p.attr: p.parse(args.get(p.name), service) for p in (*self.params, *self.layer_params)}
        bbox = values["bbox"]
        if bbox is not None:
            bbox = bbox_to_wgs84(bbox, values["bbox_crs"])
        filters = {name: q.text(args, name, max_length=q.OGC_TEXT_MAX_LENGTH) for name in props
                   if args.get(name) is not None}
        compiled = None
        if values["filter"] is not None:
            compiled = cql.compile_filter(layer, service.vocab, values["filter"], values["filter_crs"])
        return ItemsRequest(layer=layer.spec.id, datum=values["crs"], limit=values["limit"], offset=values["offset"],
                            bbox=bbox, services=values["services"], filters=filters,
                            properties=select_properties(layer, values["properties"]),
                            sortby=parse_sortby(layer, values["sortby"]), filter=compiled,
                            datetime=values["datetime"])

    def parse(self, mapping, service=None) -> ItemsRequest:
        mapping = dict(mapping)
        layer = service.layer(str(mapping.pop("collectionId", "stations")))
        return self.parse_for(layer, mapping, service)

    def run(self, service, request: ItemsRequest) -> ItemsResult:
        return ItemsResult(request, select_page(service, service.layer(request.layer), request))


@dataclass(frozen=True)
class ItemRequest:
    layer: str
    feature_id: str
    datum: str
    properties: tuple[str, ...] | None = None


class Item(Operation):
    name = "item"
    summary = "One feature of a layer by id"
    what = "query parameter"
    params = (CRS_PARAM, FORMAT_PARAM, ITEM_PROPERTIES_PARAM)

    def parse_for(self, layer, feature_id: str, args, service) -> ItemRequest:
        values = self.values(args, service)
        return ItemRequest(layer.spec.id, feature_id, values["crs"], select_properties(layer, values["properties"]))

    def run(self, service, request: ItemRequest) -> int:
        return service.feature_position(service.layer(request.layer), request.feature_id)


ITEMS = register(Items())
ITEM = register(Item())
