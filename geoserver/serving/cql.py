"""CQL2 filters (OGC API - Features Part 3) evaluated on a layer's in-memory data, plus the per-layer columns that
filters, ``sortby`` and ``properties`` work on.

Reading a filter is pygeofilter's work, never this module's: CQL2 text goes through pygeofilter's own CQL2-text
grammar and transformer (Lark, LALR), with CQL2's precedence of AND over OR and NOT over any condition put right, and
extended by the rules that grammar lacks — ``S_DWITHIN``, the array functions
``A_EQUALS``/``A_CONTAINS``/``A_CONTAINEDBY``/``A_OVERLAPS`` and ``[NOT] ILIKE`` — and CQL2 JSON through pygeofilter's
JSON reader, after a pass over the decoded JSON that bounds its size and nesting and fills in what that reader
lacks (``s_dwithin``, ``between`` with three arguments, a ``bbox`` literal in west, south, east, north order).
Every error the parser reports keeps its position (line and column for text, a JSON pointer or line and column for
JSON) in the 400 answer.

The AST is then checked against the layer (only public properties exist; a number compared with a string, LIKE on
a number, an unknown function are 400s naming the property or function) and compiled once into numpy and shapely
operations over the layer's columns, evaluated with SQL's three-valued logic (a comparison with a null value is
unknown, and NOT unknown is still unknown). Nothing goes back to the storage: a layer is a few thousand features
held in memory, and a compiled filter is kept per layer version and filter text, with its result.

Distances (``S_DWITHIN``) are in metres: from a point literal, the geodesic distance on the WGS84 ellipsoid, as
/api/nearest measures; from a line or polygon literal (and on the districts' polygons), the distance in the metric
CRS of ``core.crs`` (scale error below 0.05 %).
"""

from __future__ import annotations

import json
import math
import re
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cached_property, lru_cache
from typing import Callable

import numpy as np
import shapely
import shapely.geometry

from ..core import crs
from ..core import query as q
from ..core.errors import InvalidQuery
from ..core.history import epoch_seconds

#: Filters longer than this many characters are refused before they are parsed: the limit of every free-text
#: parameter of the OGC API, so that a request with each parameter at its longest still fits the HTTP server's
#: request line (64 KB; up to 12 bytes a character once percent-encoded).
MAX_FILTER_CHARS = q.OGC_TEXT_MAX_LENGTH
#: At most this many AST nodes (predicates, property references, literals, list items) in one filter.
MAX_FILTER_NODES = 128
#: At most this many levels of nested conditions (a chain of ANDs or of ORs counts as one level).
MAX_FILTER_DEPTH = 16
#: CQL2 JSON nested deeper than this (arrays and objects, geometry coordinates included) is refused.
MAX_JSON_DEPTH = 48
#: At most this many vertices in all geometry literals of one filter together.
MAX_GEOMETRY_VERTICES = 64
#: The values of ``filter-lang``: CQL2 text and JSON, and ``cql-text``, the name of earlier drafts of Part 3 that
#: GDAL's OGC API client looks for before it translates an attribute filter (read as cql2-text).
FILTER_LANGS = ("cql2-text", "cql2-json", "cql-text")
GEOMETRY = "geometry"
#: The functions a filter may call (besides the spatial and array predicates).
FUNCTIONS = ("CASEI",)

_CACHE_MAX = 256


class InvalidFilter(InvalidQuery):
    """A filter that cannot be read or applied. ``position`` says where the parser stopped: ``{"line", "column"}``
    (1-based) for text, ``{"pointer"}`` (a JSON pointer) for a JSON value."""

    def __init__(self, message: str, parameter: str | None = "filter", position: dict | None = None):
        super().__init__(message, parameter)
        self.position = position

    def __reduce__(self):
        return self.__class__, (self.message, self.parameter, self.position)

    def to_dict(self) -> dict:
        body = super().to_dict()
        if self.position:
            body["position"] = self.position
        return body


# --------------------------------------------------------------------------------------------------------------
# The layer's data as columns
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """One public property of every feature. ``kind``: string, number, boolean, timestamp or array (the services
    list).

    Strings are held as their sorted distinct values (``uniques``) and each feature's index into them (``codes``),
    so a comparison or LIKE is evaluated once per distinct value; numbers as float64 (NaN where null)."""

    name: str
    kind: str
    title: str
    null: np.ndarray
    values: np.ndarray | None = None      # number: float64; timestamp: float64 seconds since 1970 (UTC);
    #                                       boolean: bool; array: the uint64 service masks
    uniques: np.ndarray | None = None     # string: sorted distinct values (str array)
    codes: np.ndarray | None = None       # string: index of each feature's value in uniques

    @cached_property
    def lower_uniques(self) -> np.ndarray:
        return np.char.lower(self.uniques) if len(self.uniques) else self.uniques

    @cached_property
    def rank(self) -> np.ndarray:
        """Each feature's place in ascending order (ties share a place); only meaningful where not null."""
        if self.kind == "string":
            return self.codes
        if self.kind in ("number", "timestamp"):
            out = np.zeros(len(self.null), np.int64)
            if (~self.null).any():
                out[~self.null] = np.unique(self.values[~self.null], return_inverse=True)[1].ravel()
            return out
        if self.kind == "boolean":
            return self.values.astype(np.int64)
        raise TypeError(f"{self.name} cannot be ordered")


#: How each field type of the layer specs is filtered and ordered.
KINDS = {"string": "string", "opening_hours": "string", "integer": "number", "number": "number",
         "boolean": "boolean", "services": "array", "datetime": "timestamp"}
#: The temporal predicates, on the instant a timestamp property holds (CQL2's semantics for an instant i against
#: an instant j or an interval [start, end], open ends with '..'): the ones an instant can satisfy.
TEMPORAL_PREDICATES = ("T_AFTER", "T_BEFORE", "T_DISJOINT", "T_DURING", "T_EQUALS", "T_INTERSECTS")


class LayerColumns:
    """Everything filters, sortby and property selection need from one loaded layer, built once per layer."""

    def __init__(self, layer, vocab):
        self.layer_id = layer.spec.id
        self.n = layer.count
        self.is_point = layer.index.is_point
        self.geometries = layer.index.geometries
        self.lon = layer.index.lon
        self.lat = layer.index.lat
        self.service_bits = {sid: vocab.bit(sid) for sid in (layer.spec.services or vocab.ids)}
        self.vocab = vocab
        self.geometry_title = "位置 / Location"
        self.geometry_format = _GEOMETRY_FORMATS.get(layer.spec.geometry_type, "geometry-any")
        props = layer.properties
        self.columns: dict[str, Column] = {}
        for f in layer.spec.feature_fields:
            kind = KINDS[f.type]
            title = f"{f.title_zh} / {f.title_en}"
            raw = [p.get(f.name) for p in props]
            null = np.fromiter((v is None for v in raw), bool, count=self.n)
            if kind == "string":
                text = np.array(["" if v is None else str(v) for v in raw], dtype=str) if self.n else np.array([], str)
                uniques, codes = np.unique(text, return_inverse=True)
                column = Column(f.name, kind, title, null, uniques=uniques, codes=codes.ravel().astype(np.int64))
            elif kind == "number":
                values = np.array([np.nan if v is None else float(v) for v in raw], dtype=float)
                column = Column(f.name, kind, title, null, values=values)
            elif kind == "boolean":
                column = Column(f.name, kind, title, null, values=np.array([bool(v) for v in raw], dtype=bool))
            elif kind == "timestamp":
                values = np.fromiter((epoch_seconds(v) for v in raw), float, count=self.n)
                column = Column(f.name, kind, title, null, values=values)
            else:
                column = Column(f.name, kind, title, np.zeros(self.n, bool), values=layer.service_mask)
            self.columns[f.name] = column
        self.enums = {f.name: list(f.enum) for f in layer.spec.public_fields if f.enum}
        self.services = list(self.service_bits)

    # .. names ..
    @property
    def queryables(self) -> list[str]:
        """What a filter may name: every public property, then ``geometry``."""
        return [*self.columns, GEOMETRY]

    # .. derived arrays, on first use ..
    @cached_property
    def id_rank(self) -> np.ndarray:
        return self.columns["id"].rank

    @cached_property
    def metric_geometries(self) -> np.ndarray:
        """The features in METRIC_CRS (metres), for distances to lines and polygons."""
        if self.is_point:
            x, y = crs.to_metric(self.lon, self.lat)
            return shapely.points(np.asarray(x, float), np.asarray(y, float))
        return np.array([_to_metric(g) for g in self.geometries], dtype=object)


_GEOMETRY_FORMATS = {"Point": "geometry-point", "MultiPoint": "geometry-multipoint",
                     "LineString": "geometry-linestring", "MultiLineString": "geometry-multilinestring",
                     "Polygon": "geometry-polygon", "MultiPolygon": "geometry-multipolygon"}
_columns: dict[int, tuple[weakref.ref, LayerColumns]] = {}
_columns_lock = threading.Lock()


def columns(layer, vocab) -> LayerColumns:
    """The columns of ``layer`` (a loaded layer never changes: a new version is a new Layer object)."""
    key = id(layer)
    hit = _columns.get(key)
    if hit is not None and hit[0]() is layer:
        return hit[1]
    built = LayerColumns(layer, vocab)
    with _columns_lock:
        _columns[key] = (weakref.ref(layer, lambda _ref, key=key: _columns.pop(key, None)), built)
    return built


def _to_metric(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(crs.to_metric(xy[:, 0], xy[:, 1])))


def _trim_fraction(text: str) -> str:
    """Fractions of a second to 6 digits (datetime's precision)."""
    head, dot, rest = text.replace("Z", "+00:00").replace("z", "+00:00").partition(".")
    if not dot:
        return head
    digits = re.match(r"[0-9]*", rest).group(0)
    return f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"


def instant(value, end_of_day: bool = False) -> float:
    """A DATE or TIMESTAMP literal as seconds since 1970 (a naive time is UTC; a date is its first second, or
    with ``end_of_day`` its last instant)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return moment.timestamp()
    start = datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp()
    return start + 86400.0 - 1e-6 if end_of_day else start


def _is_interval(value) -> bool:
    from pygeofilter import values
    return isinstance(value, values.Interval)


def _time_intersects(lhs, rhs):
    """CQL2's T_INTERSECTS (pygeofilter has no node of its own for it: its JSON reader makes it T_OVERLAPS)."""
    return _intersects_class()(lhs, rhs)


@lru_cache(maxsize=1)
def _intersects_class():
    from pygeofilter import ast as pgf_ast
    return type("TimeIntersects", (pgf_ast.TemporalPredicate,), {"op": pgf_ast.TemporalComparisonOp.TOVERLAPS})


def _time_token(token, text: str, what: str, interval: bool = False, day: bool = False):
    """A time literal of CQL2 text, read strictly (RFC 3339; pygeofilter's reader accepts month 13 by swapping
    day and month): '..' (an open end of an interval), a date, or a date-time (without an offset: UTC). Anything
    else is a 400 at the literal's line and column."""
    value = text.strip()
    if interval and value in ("..", ""):
        return None
    try:
        if day or len(value) == 10:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
                raise ValueError
            return date.fromisoformat(value)
        return parse_rfc3339(value)
    except ValueError:
        line, column = getattr(token, "line", None), getattr(token, "column", None)
        allowed = "a date (2026-12-02), a date-time (2026-12-02T08:00:00Z)" + (" or '..'" if interval else "")
        raise InvalidFilter(f"filter (cql2-text): {what} {value[:40]!r} at line {line}, column {column} is not "
                            f"{allowed}", position={"line": line, "column": column} if line else None) from None


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time (an offset or Z; without one, UTC), strictly: ValueError otherwise."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:"
                        r"[0-9]{2})?", text):
        raise ValueError(text)
    moment = datetime.fromisoformat(_trim_fraction(text))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------------------------
# Parsing (pygeofilter)
# --------------------------------------------------------------------------------------------------------------
#: What pygeofilter's CQL2-text grammar lacks, changed with Lark's %override and %extend on its own rules: AND binds
#: tighter than OR (CQL2's booleanTerm; pygeofilter's grammar binds them equally, reading a OR b AND c as
#: (a OR b) AND c), NOT applies to any condition (pygeofilter's only to a single predicate: NOT (a AND b) was a
#: syntax error), line breaks are white space as in CQL2, and the predicates S_DWITHIN, A_* and ILIKE.
_GRAMMAR_EXTENSION = r"""
%override ?condition: condition_and
                    | condition "OR"i condition_and -> or_
?condition_and: condition_1
              | condition_and "AND"i condition_1 -> and_
%override ?condition_1: predicate
                      | "NOT"i condition_1 -> not_
                      | "(" condition ")"
%extend predicate: _DISTANCE_FUNCTION "(" expression "," expression "," full_number ")" -> distance_within
                 | _array_function "(" expression "," array_literal ")" -> array_predicate
                 | expression "ILIKE"i expression -> ilike
                 | expression "NOT"i "ILIKE"i expression -> not_ilike
                 | _temporal_function "(" expression "," expression ")" -> temporal_call
%override ?interval: "INTERVAL"i "(" INTERVAL_BOUND "," INTERVAL_BOUND ")" -> interval_literal
INTERVAL_BOUND: /'[^']*'/
_DISTANCE_FUNCTION: "S_DWITHIN"i
!_temporal_function: "T_AFTER"i | "T_BEFORE"i | "T_DISJOINT"i | "T_EQUALS"i | "T_INTERSECTS"i | "T_DURING"i | "T_MEETS"i | "T_METBY"i | "T_OVERLAPS"i | "T_OVERLAPPEDBY"i | "T_BEGINS"i | "T_BEGUNBY"i | "T_ENDS"i | "T_ENDEDBY"i | "T_CONTAINS"i
!_array_function: "A_EQUALS"i | "A_CONTAINS"i | "A_CONTAINEDBY"i | "A_OVERLAPS"i
array_literal: "(" [expression ("," expression)*] ")"
%ignore /[\r\n]+/
"""
_parser = None
_parser_lock = threading.Lock()
#: Readable names of the grammar's terminals in "expected ..." messages.
_TERMINAL_NAMES = {"SINGLE_QUOTED": "'text'", "DOUBLE_QUOTED": '"property"', "INT": "a number",
                   "FLOAT": "a number", "SIGNED_NUMBER": "a number", "NUMBER": "a number", "BOOLEAN": "TRUE or FALSE",
                   "$END": "the end of the filter"}


def warm_up(service) -> None:
    """Build the CQL2-text parser (about 0.3 s with the imports) and every layer's columns now: called while the
    app is made, so a server that forks its workers after that shares them and no first filter waits."""
    _text_parser()
    for layer in service.layers.values():
        columns(layer, service.vocab)


def _text_parser():
    """pygeofilter's CQL2-text parser with the extension above (built once, on first use: about 0.1 s)."""
    global _parser
    if _parser is None:
        with _parser_lock:
            if _parser is None:
                _parser = _build_text_parser()
    return _parser


def _build_text_parser():
    import os

    from lark import Lark, v_args
    from pygeofilter import ast as pgf_ast
    from pygeofilter import values
    from pygeofilter.parsers.cql2_text import parser as pgf_text

    _TEMPORAL_NODES = {f"T_{n.upper()}": getattr(pgf_ast, f"Time{n}") for n in (
        "After", "Before", "Disjoint", "Equals", "During", "Meets", "MetBy", "Overlaps", "OverlappedBy", "Begins",
        "BegunBy", "Ends", "EndedBy", "Contains")}
    _TEMPORAL_NODES["T_INTERSECTS"] = _time_intersects

    base = os.path.dirname(pgf_text.__file__)
    with open(os.path.join(base, "grammar.lark"), encoding="utf-8") as f:
        grammar = f.read() + _GRAMMAR_EXTENSION

    @v_args(meta=False, inline=True)
    class Transformer(pgf_text.CQLTransformer):
        """pygeofilter's transformer, plus the extension's rules (and without its debugging prints)."""

        def distance_within(self, lhs, rhs, distance):
            return pgf_ast.DistanceWithin(lhs, rhs, distance, "metre")

        def array_predicate(self, name, lhs, items):
            return {"a_equals": pgf_ast.ArrayEquals, "a_contains": pgf_ast.ArrayContains,
                    "a_containedby": pgf_ast.ArrayContainedBy,
                    "a_overlaps": pgf_ast.ArrayOverlaps}[str(name).lower()](lhs, items)

        def array_literal(self, *items):
            return [item for item in items if item is not None]

        def temporal_call(self, name, lhs, rhs):
            return _TEMPORAL_NODES[str(name).upper()](lhs, rhs)

        def interval_literal(self, start, end):
            return values.Interval(start, end)

        def INTERVAL_BOUND(self, token):
            return _time_token(token, token[1:-1], "an INTERVAL's end", interval=True)

        def DATETIME(self, token):
            return _time_token(token, str(token), "TIMESTAMP")

        def DATE(self, token):
            return _time_token(token, str(token), "DATE", day=True)

        def wkt__geometry_with_srid(self, srid, geometry):
            return {**geometry, "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}}

        def wkt__multipoint_2(self, *coordinates):
            return {"type": "MultiPoint", "coordinates": coordinates}

    return Lark(grammar, parser="lalr", maybe_placeholders=False, propagate_positions=True,
                transformer=Transformer(), import_paths=[os.path.dirname(base)])


def _expected(exc, parser) -> str:
    names = []
    for name in sorted(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()):
        shown = _TERMINAL_NAMES.get(name)
        if shown is None:
            try:
                pattern = parser.get_terminal(name).pattern
            except KeyError:
                continue
            shown = f"'{pattern.value}'" if pattern.type == "str" else "a property name"
        if shown not in names:
            names.append(shown)
    if not names:
        return ""
    return "; expected " + (", ".join(names[:14]) + (", …" if len(names) > 14 else ""))


def _excerpt(text: str, line: int, column: int) -> str:
    """The line of ``text`` with the error, marked where it is: «name = = 'x'» → «name = ⟨here⟩= 'x'»."""
    lines = text.splitlines() or [""]
    row = lines[min(max(line, 1), len(lines)) - 1]
    at = min(max(column - 1, 0), len(row))
    start = max(0, at - 40)
    return f"{'…' if start else ''}{row[start:at]}⟨here⟩{row[at:at + 40]}{'…' if at + 40 < len(row) else ''}"


def parse_text(text: str):
    """A CQL2-text filter as pygeofilter's AST; a syntax error is an InvalidFilter with its line and column."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

    parser = _text_parser()
    try:
        return parser.parse(text)
    except UnexpectedInput as exc:
        line, column = getattr(exc, "line", -1), getattr(exc, "column", -1)
        at_end = isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END")
        if at_end or line is None or line < 1:   # Lark places the end at the last token: give the end of the text
            lines = text.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        if isinstance(exc, UnexpectedCharacters):
            what = f"unexpected character {exc.char!r}"
        elif at_end:
            what = "unexpected end of the filter"
        elif isinstance(exc, UnexpectedToken):
            what = f"unexpected {str(exc.token)[:40]!r}"
        else:
            what = "syntax error"
        raise InvalidFilter(f"filter (cql2-text): {what} at line {line}, column {column}: "
                            f"{_excerpt(text, line, column)}{_expected(exc, parser)}",
                            position={"line": line, "column": column}) from None
    except VisitError as exc:   # a value the grammar matched but pygeofilter could not convert (a date, a number)
        meta = getattr(exc.obj, "meta", None)
        line = getattr(meta, "line", None) or getattr(exc.obj, "line", None)
        column = getattr(meta, "column", None) or getattr(exc.obj, "column", None)
        where = f" at line {line}, column {column}" if line else ""
        raise InvalidFilter(f"filter (cql2-text): cannot read {exc.rule or 'a value'}{where}: "
                            f"{str(exc.orig_exc)[:200]}",
                            position={"line": line, "column": column} if line else None) from None


@lru_cache(maxsize=1)
def _json_ops() -> frozenset:
    """CQL2 JSON operators: pygeofilter's, and s_dwithin (added here)."""
    from pygeofilter.cql2 import BINARY_OP_PREDICATES_MAP
    return frozenset(BINARY_OP_PREDICATES_MAP) | {"and", "or", "not", "isNull", "between", "like", "in", "casei",
                                                  "s_dwithin", "t_disjoint", "t_intersects"}


def parse_json(text: str):
    """A CQL2-JSON filter as pygeofilter's AST; errors name where they are (line and column, or a JSON pointer)."""
    from pygeofilter.parsers.cql2_json import parse as pgf_parse

    def constant(name):
        raise ValueError(f"{name} is not a JSON number")

    try:
        doc = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise InvalidFilter(f"filter (cql2-json): {exc.msg} at line {exc.lineno}, column {exc.colno}: "
                            f"{_excerpt(text, exc.lineno, exc.colno)}",
                            position={"line": exc.lineno, "column": exc.colno}) from None
    except ValueError as exc:
        raise InvalidFilter(f"filter (cql2-json): {exc}") from None
    except RecursionError:
        raise InvalidFilter(f"filter (cql2-json) is nested too deeply; at most {MAX_JSON_DEPTH} levels of arrays "
                            "and objects are accepted") from None
    prepared = _prepare_json(doc, "", 0, _json_ops())
    try:
        return pgf_parse(prepared)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise InvalidFilter(f"filter (cql2-json): cannot read the expression: {str(exc)[:200]}",
                            position={"pointer": ""}) from None


def _prepare_json(node, pointer: str, depth: int, ops: frozenset):
    """The decoded JSON with the forms pygeofilter's reader lacks turned into its AST nodes, every operator checked
    against the ones it knows, and its nesting bounded (pygeofilter's reader recurses)."""
    from pygeofilter import ast as pgf_ast
    from pygeofilter import values

    if depth > MAX_JSON_DEPTH:
        raise InvalidFilter(f"filter (cql2-json) is nested more than {MAX_JSON_DEPTH} levels deep at {pointer}",
                            position={"pointer": pointer})
    if isinstance(node, list):
        return [_prepare_json(v, f"{pointer}/{i}", depth + 1, ops) for i, v in enumerate(node)]
    if not isinstance(node, dict):
        if node is None:
            raise InvalidFilter(f"filter (cql2-json): null is not a value CQL2 knows, at {pointer or '/'}",
                                position={"pointer": pointer})
        return node
    if "type" in node and ("coordinates" in node or "geometries" in node):
        return values.Geometry(node)
    if len(node) == 1 and next(iter(node)) in ("timestamp", "date", "interval"):   # read strictly (RFC 3339)
        kind, value = next(iter(node.items()))
        where = f"{pointer}/{kind}"
        if kind == "interval":
            if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
                raise InvalidFilter(f"filter (cql2-json): an interval is two strings (dates, date-times or '..'), "
                                    f"at {where}", position={"pointer": where})
            return values.Interval(*(_json_time(v, f"{where}/{i}", interval=True) for i, v in enumerate(value)))
        return _json_time(value, where, day=kind == "date")
    if "bbox" in node and "op" not in node:
        box = node["bbox"]
        if not (isinstance(box, list) and len(box) in (4, 6) and all(_is_number(v) for v in box)):
            raise InvalidFilter(f"filter (cql2-json): a bbox is 4 or 6 numbers, at {pointer}/bbox",
                                position={"pointer": f"{pointer}/bbox"})
        west, south, east, north = (box[0], box[1], box[3], box[4]) if len(box) == 6 else box
        return values.Envelope(west, east, south, north)   # pygeofilter's Envelope is (minx, maxx, miny, maxy)
    if "op" in node:
        op = node["op"]
        args = node.get("args")
        if not isinstance(op, str) or op not in ops:
            raise InvalidFilter(f"filter (cql2-json): unknown operator {str(op)[:40]!r} at {pointer}/op",
                                position={"pointer": f"{pointer}/op"})
        if not isinstance(args, list):
            raise InvalidFilter(f"filter (cql2-json): {op!r} needs an array of arguments at {pointer}/args",
                                position={"pointer": f"{pointer}/args"})
        args = [_prepare_json(v, f"{pointer}/args/{i}", depth + 1, ops) for i, v in enumerate(args)]
        if op == "s_dwithin":
            if len(args) != 3 or not _is_number(args[2]):
                raise InvalidFilter("filter (cql2-json): s_dwithin takes a geometry, a geometry and a distance in "
                                    f"metres, at {pointer}/args", position={"pointer": f"{pointer}/args"})
            from pygeofilter.parsers.cql2_json.parser import walk_cql_json
            return pgf_ast.DistanceWithin(walk_cql_json(args[0]), walk_cql_json(args[1]), args[2], "metre")
        if op in ("t_intersects", "t_disjoint"):   # pygeofilter reads t_intersects as t_overlaps, lacks t_disjoint
            if len(args) != 2:
                raise InvalidFilter(f"filter (cql2-json): {op} takes two arguments, at {pointer}/args",
                                    position={"pointer": f"{pointer}/args"})
            from pygeofilter.parsers.cql2_json.parser import walk_cql_json
            node_class = _time_intersects if op == "t_intersects" else pgf_ast.TimeDisjoint
            return node_class(*(walk_cql_json(a) for a in args))
        if op == "between" and len(args) == 3:   # CQL2 1.0's form; pygeofilter reads the draft's [a, [low, high]]
            args = [args[0], [args[1], args[2]]]
        arity = {"not": 1, "isNull": 1, "like": 2, "in": 2, "between": 2}.get(op)
        if arity is not None and len(args) != arity or op in ("and", "or") and len(args) < 2:
            raise InvalidFilter(f"filter (cql2-json): wrong number of arguments for {op!r} at {pointer}/args",
                                position={"pointer": f"{pointer}/args"})
        return {**node, "args": args}
    return {k: _prepare_json(v, f"{pointer}/{k}", depth + 1, ops) for k, v in node.items()}


def _json_time(value, pointer: str, interval: bool = False, day: bool = False):
    if not isinstance(value, str):
        raise InvalidFilter(f"filter (cql2-json): a time is a string, at {pointer}", position={"pointer": pointer})
    try:
        return _time_token(None, value, "date" if day else "time", interval=interval, day=day)
    except InvalidFilter:
        allowed = "a date (2026-12-02)" if day else "a date-time (2026-12-02T08:00:00Z)"
        raise InvalidFilter(f"filter (cql2-json): {value[:40]!r} at {pointer} is not {allowed}"
                            + (" or '..'" if interval else ""), position={"pointer": pointer}) from None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def detect_language(text: str) -> str:
    """cql2-json for a JSON object, else cql2-text. The two never look alike (CQL2 text cannot start with "{"), so
    the filter decides; ``filter-lang`` only declares it, and a mismatch cannot turn a valid filter into an error."""
    return "cql2-json" if text.lstrip().startswith("{") else "cql2-text"


# --------------------------------------------------------------------------------------------------------------
# The budget
# --------------------------------------------------------------------------------------------------------------
def check_budget(root) -> None:
    """Refuse a filter above the limits before anything is evaluated (iterative: deep ASTs cannot recurse here)."""
    from pygeofilter import ast as pgf_ast
    from pygeofilter import values

    nodes, deepest, vertices = 0, 0, 0
    stack = [(root, 1, None)]
    while stack:
        node, depth, parent_type = stack.pop()
        nodes += 1
        if nodes > MAX_FILTER_NODES:
            raise InvalidFilter(f"filter has more than {MAX_FILTER_NODES} terms (predicates, properties and "
                                "values); split it into simpler requests")
        if isinstance(node, (pgf_ast.And, pgf_ast.Or)) and type(node) is parent_type:
            level = depth                   # a chain of ANDs (or of ORs) is one level
        else:
            level = depth + (1 if isinstance(node, pgf_ast.Condition) else 0)
        deepest = max(deepest, level)
        if deepest > MAX_FILTER_DEPTH:
            raise InvalidFilter(f"filter nests conditions more than {MAX_FILTER_DEPTH} levels deep")
        if isinstance(node, (values.Geometry, values.Envelope)):
            vertices += _count_vertices(node.geometry) if isinstance(node, values.Geometry) else 4
            if vertices > MAX_GEOMETRY_VERTICES:
                raise InvalidFilter(f"filter's geometries have more than {MAX_GEOMETRY_VERTICES} vertices")
            continue
        if isinstance(node, pgf_ast.Node):
            for child in node.get_sub_nodes():
                stack.append((child, level, type(node)))
        elif isinstance(node, list):
            for child in node:
                stack.append((child, level, None))


def _count_vertices(value) -> int:
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.get("coordinates", ()) if "coordinates" in item else item.get("geometries", ()))
        elif isinstance(item, (list, tuple)) and item and all(isinstance(v, (int, float)) for v in item):
            count += 1
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return count


# --------------------------------------------------------------------------------------------------------------
# Compiling: AST → numpy/shapely over the columns
# --------------------------------------------------------------------------------------------------------------
Truth = tuple  # (true, unknown): boolean arrays over the layer's features; false is neither


@dataclass(frozen=True)
class _Ref:
    column: Column
    lower: bool = False


@dataclass(frozen=True)
class _GeometryRef:
    pass


@dataclass(frozen=True)
class _Literal:
    value: object


@dataclass(frozen=True)
class _Shape:
    """A geometry literal in WGS84; ``box`` = (minx, miny, maxx, maxy) when it is an axis-aligned box."""

    geometry: object
    box: tuple | None = None


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}
_COMPARE = {"=": np.equal, "<>": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
            ">=": np.greater_equal}
_CONVERSE = {"intersects": "intersects", "disjoint": "disjoint", "equals": "equals", "touches": "touches",
             "crosses": "crosses", "overlaps": "overlaps", "within": "contains", "contains": "within"}


class Compiler:
    """Turns pygeofilter's AST into a function returning (true, unknown) masks over the layer's features."""

    def __init__(self, cols: LayerColumns, datum: str):
        from pygeofilter import ast as pgf_ast
        self.ast = pgf_ast
        self.cols = cols
        self.datum = datum
        self.n = cols.n

    # .. helpers ..
    def const(self, value: bool) -> Callable[[], Truth]:
        n = self.n
        return lambda: (np.full(n, value), np.zeros(n, bool))

    @staticmethod
    def refuse(message: str):
        raise InvalidFilter(f"filter: {message}")

    def compile(self, node) -> Callable[[], Truth]:
        a = self.ast
        if isinstance(node, (a.And, a.Or)):
            parts, stack = [], [node]
            while stack:                      # a chain of ANDs (ORs) is one list: no recursion along it
                item = stack.pop()
                if type(item) is type(node):
                    stack.extend((item.rhs, item.lhs))
                else:
                    parts.append(self.compile(item))
            return _all(parts) if isinstance(node, a.And) else _any(parts)
        if isinstance(node, a.Not):
            inner = self.compile(node.sub_node)
            return lambda: _negate(inner())
        if isinstance(node, a.Include):
            return self.const(not node.not_)
        if isinstance(node, a.Comparison):
            return self.comparison(node)
        if isinstance(node, a.Like):
            return self.like(node)
        if isinstance(node, a.In):
            return self.in_(node)
        if isinstance(node, a.Between):
            return self.between(node)
        if isinstance(node, a.IsNull):
            return self.is_null(node)
        if isinstance(node, a.SpatialComparisonPredicate):
            return self.spatial(node.op.value.lower(), node.lhs, node.rhs)
        if isinstance(node, a.BBox):
            if node.crs is not None and not _is_crs84(node.crs):
                self.refuse(f"BBOX's coordinate system {str(node.crs)[:60]!r} is not supported; give the box in "
                            "filter-crs")
            box = self.box((node.minx, node.miny, node.maxx, node.maxy), "BBOX")
            return self.spatial("intersects", node.lhs, box)
        if isinstance(node, a.Relate):
            return self.spatial("relate", node.lhs, node.rhs, pattern=node.pattern)
        if isinstance(node, a.DistanceWithin):
            return self.distance(node)
        if isinstance(node, a.ArrayPredicate):
            return self.array(node)
        if isinstance(node, a.TemporalPredicate):
            return self.temporal(node)
        if isinstance(node, bool):
            return self.const(node)
        if isinstance(node, a.Function):
            self.refuse(f"the function {node.name.upper()!r} is not a condition here; supported functions: "
                        f"{', '.join(FUNCTIONS)}, the spatial S_* and array A_* predicates")
        self.refuse(f"{_describe(node)} is not a condition (a filter is a predicate such as name = 'x', "
                    "or predicates joined with AND, OR and NOT)")

    def operand(self, node):
        """A property reference, CASEI of one, a literal, or a geometry (literal or the features')."""
        a = self.ast
        from pygeofilter import values
        if isinstance(node, a.Attribute):
            name = node.name
            if name == GEOMETRY:
                return _GeometryRef()
            column = self.cols.columns.get(name)
            if column is None:
                raise InvalidFilter(f"filter: unknown property {name[:60]!r}; the queryables of "
                                    f"{self.cols.layer_id} are {', '.join(self.cols.queryables)}", "filter")
            return _Ref(column)
        if isinstance(node, a.Function):
            name = node.name.lower()
            if name == "lower" and len(node.arguments) == 1:     # CASEI
                inner = self.operand(node.arguments[0])
                if isinstance(inner, _Ref) and inner.column.kind == "string":
                    return _Ref(inner.column, lower=True)
                if isinstance(inner, _Literal) and isinstance(inner.value, str):
                    return _Literal(inner.value.lower())
                self.refuse(f"CASEI takes a string property or a string, not {_describe(node.arguments[0])}")
            if name == "bbox":
                return self.box(node.arguments, "BBOX")
            self.refuse(f"unknown function {node.name.upper()[:40]!r}; supported: {', '.join(FUNCTIONS)}")
        if isinstance(node, (values.Geometry, values.Envelope)):
            return self.shape(node)
        if isinstance(node, bool) or isinstance(node, str) or _is_number(node):
            return _Literal(node)
        if isinstance(node, (int, float)):
            self.refuse(f"{node!r} is not a finite number")
        if isinstance(node, (date, datetime, values.Interval)):
            return _Literal(node)
        if isinstance(node, timedelta):
            self.refuse(f"{_describe(node)} is a duration; compare {self.time_names} with a TIMESTAMP, a DATE or "
                        "an INTERVAL")
        if isinstance(node, a.Arithmetic):
            self.refuse("arithmetic (+, -, *, /) is not supported; compare a property with a value")
        if isinstance(node, list):
            self.refuse("a list of values belongs in IN (...) or an array function such as A_CONTAINS")
        self.refuse(f"{_describe(node)} is not a value or property this filter can use")

    # .. literals ..
    def box(self, numbers, what: str) -> _Shape:
        nums = list(numbers)
        if len(nums) not in (4, 6) or not all(_is_number(v) for v in nums):
            self.refuse(f"{what} takes 4 numbers: west, south, east, north")
        west, south, east, north = (nums[0], nums[1], nums[3], nums[4]) if len(nums) == 6 else nums
        return self.envelope(west, south, east, north, what)

    def envelope(self, west, south, east, north, what: str) -> _Shape:
        order = "ENVELOPE(west east south north)" if what == "ENVELOPE" else "BBOX(west, south, east, north)"
        if south > north:
            self.refuse(f"{what} is inverted: south {south:g} is above north {north:g}; it is read as {order}")
        if west > east:
            self.refuse(f"{what} is inverted: west {west:g} is east of east {east:g} (boxes across the antimeridian "
                        f"are not supported); it is read as {order}")
        if self.datum != "wgs84":
            lon, lat = crs.to_wgs84([west, west, east, east], [south, north, south, north], self.datum)
            west, south, east, north = float(min(lon)), float(min(lat)), float(max(lon)), float(max(lat))
        box = (float(west), float(south), float(east), float(north))
        return _Shape(shapely.box(*box), box)

    def shape(self, value) -> _Shape:
        from pygeofilter import values
        if isinstance(value, values.Envelope):
            return self.envelope(value.x1, value.y1, value.x2, value.y2, "ENVELOPE")
        geo = dict(value.geometry)
        named = (geo.pop("crs", None) or {}).get("properties", {}).get("name")
        if named is not None and not _is_crs84(named):
            self.refuse(f"geometry literal in {str(named)[:60]!r}: only SRID=4326 (longitude, latitude) is "
                        "accepted; give coordinates in filter-crs")
        try:
            geom = shapely.geometry.shape(geo)
        except Exception as exc:   # noqa: BLE001 - shapely and GEOS raise several kinds for malformed coordinates
            self.refuse(f"invalid {geo.get('type', 'geometry')} literal: {str(exc)[:120]}")
        if geom.is_empty:
            self.refuse(f"empty {geom.geom_type} literal")
        if not shapely.is_valid(geom):
            self.refuse(f"invalid {geom.geom_type} literal: {shapely.is_valid_reason(geom)[:120]}")
        geom = crs.geometry_to_wgs84(geom, self.datum)
        shapely.prepare(geom)
        return _Shape(geom)

    # .. predicates ..
    def comparison(self, node) -> Callable[[], Truth]:
        op = node.op.value
        lhs, rhs = self.operand(node.lhs), self.operand(node.rhs)
        if isinstance(lhs, _Literal) and isinstance(rhs, _Ref):
            lhs, rhs, op = rhs, lhs, _FLIP[op]
        for side in (lhs, rhs):
            if isinstance(side, (_GeometryRef, _Shape)):
                self.refuse(f"geometries are compared with the spatial functions (S_INTERSECTS, S_WITHIN, …), "
                            f"not with {op}")
        if isinstance(lhs, _Literal) and isinstance(rhs, _Literal):
            self.check_same_type(lhs.value, rhs.value, op)
            return self.const(bool(_COMPARE[op](lhs.value, rhs.value)))
        compare = _COMPARE[op]
        column = lhs.column
        if column.kind == "array":
            self.refuse(f"{column.name} is a list of service ids; use A_CONTAINS({column.name}, "
                        f"('{self.example_service}')) or A_OVERLAPS, not {op}")
        if isinstance(rhs, _Ref):
            other = rhs.column
            if other.kind != column.kind or other.kind == "array":
                self.refuse(f"{column.name} ({column.kind}) cannot be compared with {other.name} ({other.kind})")
            if column.kind == "boolean" and op not in ("=", "<>"):
                self.refuse(f"{column.name} is true or false: compare it with = or <>")
            left, right = self.feature_values(lhs), self.feature_values(rhs)
            unknown = column.null | other.null
            return lambda: (compare(left, right) & ~unknown, unknown)
        if column.kind == "timestamp" and isinstance(rhs.value, date) and not isinstance(rhs.value, datetime):
            return self.day_comparison(column, rhs.value, op)
        value = self.literal_for(column, rhs.value, op)
        null = column.null
        if column.kind == "string":
            uniques = column.lower_uniques if lhs.lower else column.uniques
            codes = column.codes
            return lambda: (compare(uniques, value)[codes] & ~null, null)
        if column.kind == "boolean" and op not in ("=", "<>"):
            self.refuse(f"{column.name} is true or false: compare it with = or <>")
        values = column.values
        return lambda: (compare(values, value) & ~null, null)

    def feature_values(self, ref: _Ref) -> np.ndarray:
        column = ref.column
        if column.kind == "string":
            return (column.lower_uniques if ref.lower else column.uniques)[column.codes]
        return column.values

    def literal_for(self, column: Column, value, op: str = "="):
        """``value`` checked against the column's type (400 naming the property when they differ)."""
        kind = column.kind
        if kind == "string" and isinstance(value, str):
            return value
        if kind == "number" and _is_number(value):
            return float(value)
        if kind == "boolean" and isinstance(value, bool):
            return value
        if kind == "boolean" and _is_number(value) and value in (0, 1):   # as GDAL writes OGR's booleans
            return bool(value)
        if kind == "timestamp" and isinstance(value, (date, datetime)):
            return instant(value)
        wanted = {"string": "a string in single quotes", "number": "a number", "boolean": "TRUE or FALSE",
                  "timestamp": "TIMESTAMP('2026-12-02T08:00:00Z') or DATE('2026-12-02')"}[kind]
        self.refuse(f"{column.name} is a {kind} property: compare it with {wanted}, not {_describe(value)}")

    @property
    def time_names(self) -> str:
        return ", ".join(c.name for c in self.cols.columns.values() if c.kind == "timestamp") or "a time property"

    def day_comparison(self, column: Column, day: date, op: str) -> Callable[[], Truth]:
        """A time compared with a DATE: with the whole day (UTC), so updated = DATE('2026-12-02') is any time that
        day and updated > DATE('2026-12-02') is from the next day on."""
        start = instant(day)
        end = start + 86400.0
        values, null = column.values, column.null
        test = {"=": lambda: (values >= start) & (values < end), "<>": lambda: (values < start) | (values >= end),
                "<": lambda: values < start, "<=": lambda: values < end, ">": lambda: values >= end,
                ">=": lambda: values >= start}[op]
        return lambda: (test() & ~null, null)

    def temporal(self, node) -> Callable[[], Truth]:
        """T_AFTER, T_BEFORE, T_EQUALS, T_INTERSECTS, T_DISJOINT, T_DURING of a time property (an instant) with an
        instant or an interval, as CQL2 defines them for an instant; the others need two intervals."""
        name = "T_" + type(node).__name__.removeprefix("Time").upper()
        lhs, rhs = self.operand(node.lhs), self.operand(node.rhs)
        if isinstance(lhs, _Literal) and isinstance(rhs, _Ref):
            lhs, rhs = rhs, lhs
            name = {"T_AFTER": "T_BEFORE", "T_BEFORE": "T_AFTER"}.get(name, name)
            if name == "T_DURING":
                self.refuse("T_DURING(interval, property) cannot hold: an instant has no duration; write "
                            "T_DURING(property, INTERVAL(...))")
        if not isinstance(lhs, _Ref) or lhs.column.kind != "timestamp":
            shown = f"{lhs.column.name} ({lhs.column.kind})" if isinstance(lhs, _Ref) else _describe(node.lhs)
            self.refuse(f"{name} compares a time property ({self.time_names}) with a time, not {shown}")
        if not isinstance(rhs, _Literal) or not isinstance(rhs.value, (date, datetime)) and not _is_interval(
                rhs.value):
            self.refuse(f"{name}({lhs.column.name}, …) needs a TIMESTAMP, a DATE or an INTERVAL, not "
                        f"{_describe(node.rhs)}")
        if name not in TEMPORAL_PREDICATES:
            self.refuse(f"{name} relates two intervals; {lhs.column.name} is an instant: use one of "
                        f"{', '.join(TEMPORAL_PREDICATES)}")
        value = rhs.value
        if _is_interval(value):
            start = -np.inf if value.start is None else instant(value.start)
            end = np.inf if value.end is None else instant(value.end, end_of_day=True)
            if start > end:
                self.refuse(f"INTERVAL starts after it ends ({value.start} > {value.end})")
        elif isinstance(value, datetime):
            start = end = instant(value)
        else:       # a DATE is the interval of that day
            start, end = instant(value), instant(value, end_of_day=True)
        values, null = lhs.column.values, lhs.column.null
        if name == "T_DURING" and start == end:
            self.refuse("T_DURING needs an INTERVAL (an instant cannot lie strictly inside another instant)")
        test = {"T_AFTER": lambda: values > end, "T_BEFORE": lambda: values < start,
                "T_EQUALS": lambda: (values == start) & (values == end),
                "T_INTERSECTS": lambda: (values >= start) & (values <= end),
                "T_DISJOINT": lambda: (values < start) | (values > end),
                "T_DURING": lambda: (values > start) & (values < end)}[name]
        return lambda: (test() & ~null, null)

    def check_same_type(self, a, b, op):
        kinds = {type(a) if not _is_number(a) else float, type(b) if not _is_number(b) else float}
        if len(kinds) > 1:
            self.refuse(f"{_describe(a)} and {_describe(b)} cannot be compared with {op}")

    def string_ref(self, node, what: str) -> _Ref:
        ref = self.operand(node)
        if not isinstance(ref, _Ref) or ref.column.kind != "string":
            shown = ref.column.name if isinstance(ref, _Ref) else _describe(node)
            kind = f" ({ref.column.kind})" if isinstance(ref, _Ref) else ""
            self.refuse(f"{what} applies to a string property, not {shown}{kind}")
        return ref

    def like(self, node) -> Callable[[], Truth]:
        ref = self.string_ref(node.lhs, "LIKE")
        pattern = self.operand(node.pattern)
        if not isinstance(pattern, _Literal) or not isinstance(pattern.value, str):
            self.refuse("LIKE needs a pattern in single quotes, such as '%驿站%'")
        nocase = node.nocase or ref.lower
        matches = like_matcher(pattern.value.lower() if nocase else pattern.value)
        column = ref.column
        uniques = column.lower_uniques if nocase else column.uniques
        codes, null, negate = column.codes, column.null, node.not_

        def run():
            hits = np.fromiter((matches(u) for u in uniques.tolist()), bool, count=len(uniques))
            true = hits[codes] & ~null
            return (~true & ~null, null) if negate else (true, null)
        return run

    def in_(self, node) -> Callable[[], Truth]:
        ref = self.operand(node.lhs)
        if not isinstance(ref, _Ref) or ref.column.kind == "array":
            if isinstance(ref, _Ref):
                self.refuse(f"{ref.column.name} is a list of service ids; use A_OVERLAPS({ref.column.name}, (...)) "
                            "to match any of several")
            self.refuse(f"IN applies to a property, not {_describe(node.lhs)}")
        column = ref.column
        wanted = []
        for item in node.sub_nodes:
            literal = self.operand(item)
            if not isinstance(literal, _Literal):
                self.refuse(f"IN (...) lists values, not {_describe(item)}")
            wanted.append(self.literal_for(column, literal.value, "IN"))
        null, negate = column.null, node.not_
        if column.kind == "string":
            uniques = column.lower_uniques if ref.lower else column.uniques
            hits = np.isin(uniques, np.array(wanted, dtype=str))[column.codes]
        else:
            hits = np.isin(column.values, np.array(wanted, dtype=column.values.dtype))
        true = hits & ~null
        result = (~true & ~null, null) if negate else (true, null)
        return lambda: result

    def between(self, node) -> Callable[[], Truth]:
        ref = self.operand(node.lhs)
        if not isinstance(ref, _Ref) or ref.column.kind not in ("number", "timestamp"):
            shown = f"{ref.column.name} ({ref.column.kind})" if isinstance(ref, _Ref) else _describe(node.lhs)
            self.refuse(f"BETWEEN applies to a number or time property, not {shown}")
        bounds = []
        for is_high, bound in ((False, node.low), (True, node.high)):
            literal = self.operand(bound)
            if not isinstance(literal, _Literal):
                self.refuse(f"BETWEEN's bounds are values, not {_describe(bound)}")
            value = literal.value
            if ref.column.kind == "timestamp" and isinstance(value, date) and not isinstance(value, datetime):
                bounds.append(instant(value, end_of_day=is_high))   # a date bound: its whole day
            else:
                bounds.append(self.literal_for(ref.column, value))
        low, high = bounds
        values, null, negate = ref.column.values, ref.column.null, node.not_

        def run():
            true = (values >= low) & (values <= high) & ~null
            return (~true & ~null, null) if negate else (true, null)
        return run

    def is_null(self, node) -> Callable[[], Truth]:
        ref = self.operand(node.lhs)
        if isinstance(ref, _GeometryRef):
            return self.const(bool(node.not_))   # every public feature has a geometry
        if not isinstance(ref, _Ref):
            self.refuse(f"IS NULL applies to a property, not {_describe(node.lhs)}")
        null, negate = ref.column.null, node.not_
        return lambda: ((~null if negate else null.copy()), np.zeros(len(null), bool))

    def array(self, node) -> Callable[[], Truth]:
        kind = type(node).__name__   # ArrayEquals, ArrayContains, ArrayContainedBy, ArrayOverlaps
        ref = self.operand(node.lhs)
        if not isinstance(ref, _Ref) or ref.column.kind != "array":
            shown = f"{ref.column.name} ({ref.column.kind})" if isinstance(ref, _Ref) else _describe(node.lhs)
            self.refuse(f"array functions apply to the list property services, not {shown}")
        items = node.rhs
        if not isinstance(items, list):
            self.refuse("array functions compare services with a list of service ids in parentheses, such as "
                        f"A_CONTAINS(services, ('{self.example_service}'))")
        required = 0
        for item in items:
            literal = self.operand(item)
            if not isinstance(literal, _Literal) or not isinstance(literal.value, str):
                self.refuse(f"{ref.column.name} holds service ids: list them as strings, not {_describe(item)}")
            sid = self.cols.vocab.resolve(literal.value)
            if sid is None or sid not in self.cols.service_bits:
                self.refuse(f"unknown service {literal.value[:50]!r} for {self.cols.layer_id}; its services are "
                            f"{', '.join(self.cols.services)}")
            required |= self.cols.service_bits[sid]
        masks = ref.column.values
        want = np.uint64(required)
        unknown = np.zeros(self.n, bool)
        if kind == "ArrayContains":
            true = (masks & want) == want
        elif kind == "ArrayContainedBy":
            true = (masks & ~want) == 0
        elif kind == "ArrayOverlaps":
            true = (masks & want) != 0
        else:
            true = masks == want
        return lambda: (true, unknown)

    def spatial(self, op: str, lhs_node, rhs_node, pattern: str | None = None) -> Callable[[], Truth]:
        lhs = lhs_node if isinstance(lhs_node, _Shape) else self.operand(lhs_node)
        rhs = rhs_node if isinstance(rhs_node, _Shape) else self.operand(rhs_node)
        if isinstance(lhs, _Shape) and isinstance(rhs, _GeometryRef):
            if op == "relate":
                self.refuse("RELATE takes the geometry property first")
            lhs, rhs, op = rhs, lhs, _CONVERSE[op]
        for side in (lhs, rhs):
            if isinstance(side, _Ref):
                self.refuse(f"{side.column.name} is not a geometry; the geometry property of "
                            f"{self.cols.layer_id} is {GEOMETRY}")
            if isinstance(side, _Literal):
                self.refuse(f"spatial functions compare geometries, not {_describe(side.value)}")
        if isinstance(lhs, _Shape) and isinstance(rhs, _Shape):
            value = bool(shapely.relate_pattern(lhs.geometry, rhs.geometry, pattern) if op == "relate"
                         else _shapely_predicate(op)(lhs.geometry, rhs.geometry))
            return self.const(value)
        if isinstance(rhs, _GeometryRef):
            self.refuse("spatial functions compare the geometry property with a geometry literal")
        true = self.spatial_mask(op, rhs, pattern)
        unknown = np.zeros(self.n, bool)
        return lambda: (true, unknown)

    def spatial_mask(self, op: str, shape: _Shape, pattern: str | None) -> np.ndarray:
        cols, geom = self.cols, shape.geometry
        if cols.n == 0:
            return np.zeros(0, bool)
        if cols.is_point and op in ("intersects", "disjoint", "within"):
            lon, lat = cols.lon, cols.lat
            if shape.box is not None:
                w, s, e, n = shape.box
                if op == "within":
                    return (lon > w) & (lon < e) & (lat > s) & (lat < n)
                inside = (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)
                return inside if op == "intersects" else ~inside
            if op == "within":
                return shapely.contains_xy(geom, lon, lat)
            inside = shapely.intersects_xy(geom, lon, lat)
            return inside if op == "intersects" else ~inside
        if op == "relate":
            return np.asarray(shapely.relate_pattern(cols.geometries, geom, pattern), dtype=bool)
        # the literal (prepared) first: GEOS uses its prepared form; within and contains swap roles
        return np.asarray(_shapely_predicate(_CONVERSE[op])(geom, cols.geometries), dtype=bool)

    def distance(self, node) -> Callable[[], Truth]:
        distance = node.distance
        if not _is_number(distance) or distance < 0:
            self.refuse(f"S_DWITHIN's distance must be a number of metres, at least 0, not {_describe(distance)}")
        lhs, rhs = self.operand(node.lhs), self.operand(node.rhs)
        if isinstance(lhs, _Shape) and isinstance(rhs, _GeometryRef):
            lhs, rhs = rhs, lhs
        if not (isinstance(lhs, _GeometryRef) and isinstance(rhs, _Shape)):
            if isinstance(lhs, _Shape) and isinstance(rhs, _Shape):
                self.refuse("S_DWITHIN compares the geometry property with a geometry literal, not two literals")
            self.refuse("S_DWITHIN takes the geometry property, a geometry literal and a distance in metres, "
                        "e.g. S_DWITHIN(geometry, POINT(121.47 31.23), 500)")
        true = self.within_distance(rhs.geometry, float(distance))
        unknown = np.zeros(self.n, bool)
        return lambda: (true, unknown)

    def within_distance(self, geom, distance_m: float) -> np.ndarray:
        """Features within ``distance_m`` metres of ``geom``: geodesic from points (as /api/nearest measures),
        METRIC_CRS distance from lines and polygons and for polygon layers."""
        cols = self.cols
        if cols.n == 0:
            return np.zeros(0, bool)
        if cols.is_point and geom.geom_type in ("Point", "MultiPoint"):
            out = np.zeros(cols.n, bool)
            for point in getattr(geom, "geoms", [geom]):
                px, py = point.x, point.y
                # a box of degrees sure to hold every point within the distance, then geodesics for those only
                dlat = distance_m / 110_574.0 * 1.01 + 1e-6
                dlon = distance_m / (111_320.0 * max(math.cos(math.radians(min(abs(py) + dlat, 89.9))), 1e-6)) \
                    * 1.01 + 1e-6
                near = np.flatnonzero((np.abs(cols.lat - py) <= dlat) & (np.abs(cols.lon - px) <= dlon) & ~out)
                if len(near):
                    dist = crs.geodesic_distance_m(px, py, cols.lon[near], cols.lat[near])
                    out[near[dist <= distance_m]] = True
            return out
        return np.asarray(shapely.dwithin(cols.metric_geometries, _to_metric(geom), distance_m), dtype=bool)

    @property
    def example_service(self) -> str:
        return self.cols.services[0] if self.cols.services else "water"


def _shapely_predicate(op: str):
    return {"intersects": shapely.intersects, "disjoint": shapely.disjoint, "within": shapely.within,
            "contains": shapely.contains, "equals": shapely.equals, "touches": shapely.touches,
            "crosses": shapely.crosses, "overlaps": shapely.overlaps}[op]


def _negate(result: Truth) -> Truth:
    true, unknown = result
    return ~true & ~unknown, unknown


def _all(parts) -> Callable[[], Truth]:
    def run():
        true = unknown = false = None
        for part in parts:
            t, u = part()
            f = ~t & ~u
            true = t if true is None else true & t
            false = f if false is None else false | f
            unknown = u if unknown is None else unknown | u
        return true, unknown & ~false
    return run


def _any(parts) -> Callable[[], Truth]:
    def run():
        true = unknown = None
        for part in parts:
            t, u = part()
            true = t if true is None else true | t
            unknown = u if unknown is None else unknown | u
        return true, unknown & ~true
    return run


def _is_crs84(name) -> bool:
    key = str(name).strip().lower()
    return key in {u.lower() for u in crs.CRS84_URIS} or key in ("urn:ogc:def:crs:epsg::4326", "epsg:4326",
                                                              "http://www.opengis.net/def/crs/epsg/0/4326")


def _describe(value) -> str:
    from pygeofilter import ast as pgf_ast
    from pygeofilter import values
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, pgf_ast.Attribute):
        return f"the property {value.name[:40]!r}"
    if isinstance(value, values.Geometry):
        return f"a {value.geometry.get('type', 'geometry')} literal"
    if isinstance(value, values.Envelope):
        return "an ENVELOPE literal"
    if isinstance(value, (datetime, date, timedelta, values.Interval)):
        return f"the time value {str(value)[:40]}"
    if isinstance(value, pgf_ast.Function):
        return f"the function {value.name.upper()[:40]}(...)"
    return type(value).__name__


def like_matcher(pattern: str) -> Callable[[str], bool]:
    """A CQL2 LIKE pattern as a test of one string: % any text, _ one character, a backslash escapes the next.

    The pattern is cut at its %s into pieces of fixed length, matched left to right, each at its leftmost place
    (enough for such patterns, in time proportional to the text's length times the pattern's: a regular expression
    with .* for each % backtracks exponentially, '%%%%%%%%%%x' taking seconds on a 30-character name)."""
    pieces, piece, chars = [], [], iter(pattern)
    for ch in chars:
        if ch == "%":
            pieces.append(piece)
            piece = []
        elif ch == "_":
            piece.append(".")
        else:
            piece.append(re.escape(next(chars, "\\") if ch == "\\" else ch))
    pieces.append(piece)
    regexes = [re.compile("".join(p), re.DOTALL) for p in pieces]
    if len(regexes) == 1:
        return lambda text: regexes[0].fullmatch(text) is not None
    first, middle, last = regexes[0], regexes[1:-1], regexes[-1]
    last_length = len(pieces[-1])

    def match(text: str) -> bool:
        head = first.match(text)
        end = len(text) - last_length
        if head is None or end < head.end() or last.fullmatch(text, end) is None:
            return False
        at = head.end()
        for regex in middle:
            found = regex.search(text, at, end)
            if found is None:
                return False
            at = found.end()
        return True
    return match


# --------------------------------------------------------------------------------------------------------------
# The compiled filters, kept per layer version and filter
# --------------------------------------------------------------------------------------------------------------
class CompiledFilter:
    """A filter checked and compiled against one loaded layer; ``mask()`` is computed once (the layer is fixed)."""

    def __init__(self, run: Callable[[], Truth], text: str, language: str):
        self._run = run
        self.text = text
        self.language = language
        self._mask: np.ndarray | None = None

    def mask(self) -> np.ndarray:
        if self._mask is None:
            true, _unknown = self._run()
            self._mask = np.asarray(true, dtype=bool)
        return self._mask


_compiled: OrderedDict = OrderedDict()
_compiled_lock = threading.Lock()


def compile_filter(layer, vocab, text: str, datum: str = "wgs84") -> CompiledFilter:
    """``text`` (CQL2 text or JSON) parsed, checked against ``layer`` and compiled; cached per layer object and
    filter. Raises InvalidFilter (a 400) for anything it cannot apply."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidFilter(f"filter is {len(text)} characters long; at most {MAX_FILTER_CHARS} are accepted")
    if not text.strip():
        raise InvalidFilter("filter is empty; give a CQL2 expression such as district = '浦东新区', or leave filter "
                            "out")
    language = detect_language(text)
    key = (id(layer), layer.version, language, text, datum)
    with _compiled_lock:
        hit = _compiled.get(key)
        if hit is not None and hit[0]() is layer:
            _compiled.move_to_end(key)
            return hit[1]
    root = parse_json(text) if language == "cql2-json" else parse_text(text)
    check_budget(root)
    compiled = CompiledFilter(Compiler(columns(layer, vocab), datum).compile(root), text, language)
    with _compiled_lock:
        _compiled[key] = (weakref.ref(layer), compiled)
        while len(_compiled) > _CACHE_MAX:
            _compiled.popitem(last=False)
    return compiled


# --------------------------------------------------------------------------------------------------------------
# sortby
# --------------------------------------------------------------------------------------------------------------
_orders: OrderedDict = OrderedDict()


def sort_order(layer, vocab, keys: tuple[tuple[str, bool], ...]) -> np.ndarray:
    """Every position of ``layer`` ordered by ``keys`` ((name, descending) pairs), ties by id; nulls last in
    either direction. Cached per layer object and keys."""
    cache_key = (id(layer), layer.version, keys)
    with _compiled_lock:
        hit = _orders.get(cache_key)
        if hit is not None and hit[0]() is layer:
            _orders.move_to_end(cache_key)
            return hit[1]
    cols = columns(layer, vocab)
    sort_keys = [cols.id_rank]                       # np.lexsort: the last key is the primary one
    for name, descending in reversed(keys):
        column = cols.columns[name]
        rank = column.rank
        key = np.where(column.null, np.iinfo(np.int64).max, -rank if descending else rank)
        sort_keys.append(key)
    order = np.lexsort(sort_keys) if cols.n else np.zeros(0, np.int64)
    with _compiled_lock:
        _orders[cache_key] = (weakref.ref(layer), order)
        while len(_orders) > 64:
            _orders.popitem(last=False)
    return order
