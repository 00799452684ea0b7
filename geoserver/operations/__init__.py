"""Use cases as declared operations: parameters declared once → a frozen request → run on the service → a frozen
result that knows its JSON/GeoJSON form.

A ``Param`` says everything about one input (name, type, unit, default, range, choices, help text); from that one
declaration come the validation (``Param.parse``, raising ``InvalidQuery`` that names the parameter), the OpenAPI
parameter object (``Param.openapi``) and the click option (``Param.click_option``), so the HTTP API, its document
and the command line cannot drift apart. An ``Operation`` is a named list of params with ``build`` (the checks that
involve several params or the loaded data) and ``run``. The web blueprints and click commands only route, call
``op.parse(mapping, service)`` and ``op.run(service, request)``, and format.

Pure Python: nothing here imports Flask, werkzeug, folium, ``geoserver.web`` or ``geoserver.render`` (click is
imported only when a command line asks for options).

Example::

    from geoserver.operations import get
    coverage = get("coverage")
    request = coverage.parse({"layer": "stations", "minutes": "10", "mode": "ebike"}, service)
    body = coverage.run(service, request).to_dict()
"""

from __future__ import annotations

import keyword
from functools import cached_property
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, Callable, Mapping

from ..core import query as q
from ..core.errors import InvalidQuery

#: The types a parameter may have (how its text is read, and its OpenAPI schema).
TYPES = ("int", "float", "bool", "str", "enum", "list", "datetime", "bbox", "point", "geojson")
_SCHEMAS = {"int": {"type": "integer"}, "float": {"type": "number"}, "bool": {"type": "boolean"},
            "str": {"type": "string"}, "enum": {"type": "string"},
            "list": {"type": "array", "items": {"type": "string"}},
            "datetime": {"type": "string", "format": "date-time"},
            "bbox": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
            "point": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}},
            "geojson": {"type": "object"}}


def _or(values) -> str:
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


@dataclass(frozen=True)
class Param:
    """One declared input of an operation.

    ``default`` is used when the parameter is absent; a default that depends on the request (the layer spec's
    ``catchment_radius_m``) is ``None`` here and described by ``default_text``. ``minimum``/``maximum`` bound
    numbers (``exclusive_minimum``: greater than); with ``clamp`` a larger value is served as ``maximum`` (the OGC
    ``limit``). ``message`` replaces the generated text for a value out of range or not among ``choices``.
    ``parser(param, raw, service)`` reads what the generic types cannot (service vocabulary, coordinate systems);
    ``schema`` overrides the generated OpenAPI schema (a callable gets the document's context, e.g. ``vocab_ids``). ``http``/``cli`` say where the parameter is offered.
    """

    name: str
    type: str
    help: str
    help_zh: str = ""
    unit: str | None = None
    default: Any = None
    default_text: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    clamp: bool = False
    choices: tuple = ()
    required: bool = False
    max_length: int = q.MAX_PARAM_LENGTH
    message: str | None = None
    empty_is_absent: bool = True
    parser: Callable | None = None
    schema: dict | None = None
    http: bool = True
    cli: bool = True

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name}: unknown type {self.type!r} (one of {', '.join(TYPES)})")

    # .. names ..
    @cached_property   # computed once per declaration, not on every request
    def attr(self) -> str:
        """The Python name of the parameter (a request's field, a click function argument)."""
        name = self.name.replace("-", "_")
        return name + "_" if keyword.iskeyword(name) else name

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    # .. validation ..
    def is_absent(self, raw) -> bool:
        return raw is None or (self.empty_is_absent and isinstance(raw, str) and not raw.strip())

    def parse(self, raw, service=None):
        """The typed value of ``raw`` (query text or a JSON value), its default when absent, or InvalidQuery."""
        if self.parser is not None:
            return self.parser(self, raw, service)
        if self.is_absent(raw):
            if self.required:
                raise InvalidQuery(f"{self.name} is required", self.name)
            return self.default
        return getattr(self, f"_parse_{self.type}")(raw)

    def text(self, raw) -> str:
        return q.text({self.name: raw}, self.name, max_length=self.max_length)

    def range_message(self) -> str:
        if self.message:
            return self.message
        n, lo, hi = self.name, self.minimum, self.maximum
        if lo is not None and hi is not None:
            return (f"{n} must be greater than {lo:g} and at most {hi:g}" if self.exclusive_minimum
                    else f"{n} must be between {lo:g} and {hi:g}")
        if lo is not None:
            return f"{n} must be greater than {lo:g}" if self.exclusive_minimum else f"{n} must be at least {lo:g}"
        return f"{n} must be at most {hi:g}"

    def check_range(self, value: float) -> float:
        lo, hi = self.minimum, self.maximum
        if lo is not None and (value <= lo if self.exclusive_minimum else value < lo):
            raise InvalidQuery(self.range_message(), self.name)
        if hi is not None and value > hi:
            if self.clamp:
                return hi
            raise InvalidQuery(self.range_message(), self.name)
        return value

    def check_choice(self, value):
        if self.choices and value not in self.choices:
            raise InvalidQuery(self.message or f"{self.name} must be {_or(self.choices)}", self.name)
        return value

    def _parse_int(self, raw) -> int:
        value = raw if isinstance(raw, int) and not isinstance(raw, bool) else self.text(raw)
        lo = int(self.minimum) if self.minimum is not None else -(10 ** q.MAX_INTEGER_DIGITS)
        hi = int(self.maximum) if self.maximum is not None else None
        return q.integer(value, self.name, lo, hi, clamp=self.clamp)

    def _parse_float(self, raw) -> float:
        value = raw if isinstance(raw, (int, float)) and not isinstance(raw, bool) else self.text(raw)
        return self.check_range(q.number(value, self.name))

    def _parse_bool(self, raw) -> bool:
        return q.boolean(raw if isinstance(raw, bool) else self.text(raw), self.name)

    def _parse_str(self, raw) -> str:
        return self.check_choice(self.text(raw))

    def _parse_enum(self, raw) -> str:
        return self.check_choice(self.text(raw))

    def _parse_list(self, raw) -> tuple[str, ...]:
        if isinstance(raw, (list, tuple)):
            return tuple(str(v).strip() for v in raw if str(v).strip())
        return tuple(v.strip() for v in self.text(raw).split(",") if v.strip())

    def _parse_datetime(self, raw):
        return q.moment(self.text(raw), self.name)

    def _parse_bbox(self, raw):
        return q.bbox(self.text(raw), self.name)

    def _parse_point(self, raw) -> tuple[float, float]:
        if isinstance(raw, (list, tuple)) and len(raw) == 2:
            return q.point(raw[0], raw[1], "wgs84", f"{self.name}.lon", f"{self.name}.lat")
        parts = self.text(raw).split(",")
        if len(parts) != 2:
            raise InvalidQuery(f"{self.name} must be lon,lat", self.name)
        return q.point(parts[0], parts[1], "wgs84", f"{self.name}.lon", f"{self.name}.lat")

    def _parse_geojson(self, raw):
        if not isinstance(raw, dict):
            raise InvalidQuery(f"{self.name} must be a GeoJSON object", self.name)
        return raw

    # .. documentation ..
    def default_label(self) -> str | None:
        """The default as documentation shows it (None: no default)."""
        if self.default_text:
            return self.default_text
        if self.default is None:
            return None
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, (tuple, list)):
            return ",".join(map(str, self.default)) or None
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def description(self) -> str:
        """The help text with the unit and a request-dependent default (the OpenAPI description)."""
        out = self.help
        if self.unit and f"({self.unit})" not in out:
            out += f" ({self.unit})"
        if self.default_text:
            out += f"; default: {self.default_text}"
        return out

    def openapi_schema(self, **context) -> dict:
        if callable(self.schema):
            return self.schema(**context)
        if self.schema is not None:
            return dict(self.schema)
        schema = dict(_SCHEMAS[self.type])
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.minimum is not None and self.type in ("int", "float"):
            schema["minimum"] = int(self.minimum) if self.type == "int" else self.minimum
            if self.exclusive_minimum:
                schema["exclusiveMinimum"] = True
        if self.maximum is not None and self.type in ("int", "float") and not self.clamp:
            schema["maximum"] = int(self.maximum) if self.type == "int" else self.maximum
        if self.default is not None and not isinstance(self.default, (tuple, list)):
            schema["default"] = self.default
        if self.type == "str" and self.max_length != q.MAX_PARAM_LENGTH:
            schema["maxLength"] = self.max_length
        return schema

    def openapi(self, where: str = "query", **context) -> dict:
        """The OpenAPI 3.0 parameter object."""
        out = {"name": self.name, "in": where, "description": self.description(),
               "required": self.required or where == "path", "schema": self.openapi_schema(**context)}
        if where == "query":
            out.update(style="form", explode=False)
        else:
            out["style"] = "simple"
        return out

    def cli_help(self) -> str:
        out = self.help
        if self.unit and f"({self.unit})" not in out:
            out += f" ({self.unit})"
        return out

    def click_option(self):
        """A click option for this parameter: ``--radius-m``, with its type, choices and help ending in the default.

        Unset options are None and left out of the request (``Operation.from_cli``), so the default applied is
        the declared one, exactly as over HTTP."""
        import click

        kind = {"int": int, "float": float}.get(self.type, str)
        if self.choices:
            kind = click.Choice([str(c) for c in self.choices])
        label = self.default_label()
        text = self.cli_help() + (f"  [default: {label}]" if label is not None else "")
        if self.type == "bool":
            return click.option(f"{self.flag}/--no-{self.flag[2:]}", self.attr, default=None, help=text)
        return click.option(self.flag, self.attr, type=kind, default=None, help=text, required=self.required)


class Operation:
    """One use case: declared params → ``parse`` → frozen request → ``run`` → frozen result.

    Subclasses set ``name``, ``summary`` and ``params``, implement ``run`` and, where params depend on each other
    or on the loaded data, ``build``. Without a ``Request`` class of their own, requests are frozen dataclasses
    with one field per param (``request_type``).
    """

    name: str = ""
    summary: str = ""
    params: tuple[Param, ...] = ()
    Request: type | None = None
    #: what an input is called in messages: "query parameter" (HTTP GET), "field" (a JSON body)
    what = "parameter"
    body_example = '{"layer": "stations"}'

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)

    @property
    def http_names(self) -> set[str]:
        return {p.name for p in self.params if p.http}

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def check_known(self, mapping: Mapping, allowed: set[str] | None = None) -> None:
        if not isinstance(mapping, Mapping):
            raise InvalidQuery(f"the body must be a JSON object such as {self.body_example}", "body")
        allowed = self.names if allowed is None else allowed
        unknown = sorted(str(k) for k in set(mapping) - allowed)
        if unknown:
            name = unknown[0][:40]
            raise InvalidQuery(f"unknown {self.what} {name!r}; accepted: {', '.join(sorted(allowed))}", name)

    def values(self, mapping: Mapping, service=None) -> dict:
        """Each declared param's typed value (by ``attr``), after refusing undeclared ones."""
        self.check_known(mapping)
        return {p.attr: p.parse(mapping.get(p.name), service) for p in self.params}

    def parse(self, mapping: Mapping, service=None):
        """A frozen request from a mapping of raw values (query arguments, a JSON body, CLI options)."""
        return self.build(self.values(mapping, service), service)

    def build(self, values: dict, service):
        """Checks across params and against the loaded data; the default makes ``Request(**values)``."""
        request_type = self.request_type()
        names = {f.name for f in fields(request_type)}
        return request_type(**{k: v for k, v in values.items() if k in names})

    def request_type(self) -> type:
        """``Request``, or a frozen dataclass with one field per declared param (made once per operation)."""
        if self.Request is None:
            name = "".join(part.title() for part in self.name.split("_")) + "Request"
            self.Request = make_dataclass(name, [(p.attr, Any, field(default=p.default)) for p in self.params],
                                          frozen=True)
        return self.Request

    def run(self, service, request):
        raise NotImplementedError

    def __call__(self, service, mapping: Mapping):
        return self.run(service, self.parse(mapping, service))

    # .. adapters ..
    def openapi_parameters(self, **context) -> list[dict]:
        return [p.openapi(**context) for p in self.params if p.http]

    def click_options(self, skip: tuple[str, ...] = ()):
        """A decorator adding a click option for every declared param offered on the command line."""
        chosen = [p for p in self.params if p.cli and p.name not in skip]

        def decorate(fn):
            for p in reversed(chosen):
                fn = p.click_option()(fn)
            return fn
        return decorate

    def from_cli(self, options: Mapping) -> dict:
        """The raw mapping for ``parse`` from click's keyword arguments (unset options left out)."""
        by_attr = {p.attr: p.name for p in self.params}
        return {by_attr[k]: v for k, v in options.items() if k in by_attr and v not in (None, "")}


REGISTRY: dict[str, Operation] = {}
#: The modules declaring operations, one per use case, in the folders of their sub-domain.
USE_CASE_MODULES = ("geoserver.serving.nearest", "geoserver.serving.items", "geoserver.planning.coverage",
                    "geoserver.planning.siting", "geoserver.curation.operations", "geoserver.curation.edit")


def register(op: Operation) -> Operation:
    """Add an operation to the registry (by name); returns it, so modules write ``NEAREST = register(Nearest())``."""
    if op.name in REGISTRY and REGISTRY[op.name] is not op:
        raise ValueError(f"an operation named {op.name!r} is already registered")
    REGISTRY[op.name] = op
    return op


def load_all() -> dict[str, Operation]:
    """Import every use-case module (each registers its operations); the registry by name."""
    import importlib

    for module in USE_CASE_MODULES:
        importlib.import_module(module)
    return REGISTRY


def get(name: str) -> Operation:
    """The operation registered as ``name``, importing use-case modules until it is found."""
    import importlib

    for module in USE_CASE_MODULES:
        if name in REGISTRY:
            break
        importlib.import_module(module)
    return REGISTRY[name]
