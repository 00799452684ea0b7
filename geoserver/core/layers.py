"""Layer specs (``layers/*.toml``): what each layer is, its fields, and the services vocabulary."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import DataError

FIELD_TYPES = ("string", "integer", "number", "boolean", "services", "opening_hours")

#: Where a facility's position stands. ``pending`` (待定位) rows have no confirmed position yet (a form without
#: coordinates, an address the geocoder could not place precisely): they are stored and shown to staff, never to
#: the public. The loader adds these fields, private, to every point layer, so each layer file need not list them.
LOCATED, PENDING = "located", "pending"
LOCATION_STATUS_LABELS = {LOCATED: "已定位", PENDING: "待定位"}
#: Every served feature's time of last change (derived from the layer's history, see ``core.history``; not a column
#: of its table, so a layer file cannot declare a field of this name).
UPDATED = "updated"
LOCATION_FIELDS = (
    ("location_status", "定位状态", "Location status"),        # located | pending
    ("location_source", "定位来源", "Location source"),        # file | geocoder:<provider> | map | typed
    ("location_reason", "待定位原因", "Why pending"),           # a code: no_coordinates, not_found, imprecise, ...
    ("location_note", "定位说明", "Location note"),            # the geocoder's level and address, or the reason
)


@dataclass(frozen=True)
class Service:
    """One term of the controlled services vocabulary."""

    id: str
    zh: str
    en: str
    icon: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceVocabulary:
    """The controlled list of services, with lookup by id, Chinese or English label or alias."""

    services: tuple[Service, ...]

    @classmethod
    def load(cls, path: Path) -> "ServiceVocabulary":
        raw = tomllib.loads(path.read_text(encoding="utf-8")).get("services", {})
        return cls(tuple(Service(id=k, zh=v["zh"], en=v["en"], icon=v.get("icon", k),
                                 aliases=tuple(v.get("aliases", ()))) for k, v in raw.items()))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.services)

    def bit(self, service_id: str) -> int:
        """The bit of a service in a feature's service mask."""
        return 1 << self.ids.index(service_id)

    def resolve(self, term: str) -> str | None:
        """The service id for an id, label or alias (case-insensitive), or None."""
        key = term.strip().lower()
        for s in self.services:
            if key in (s.id, s.zh.lower(), s.en.lower()) or key in (a.lower() for a in s.aliases):
                return s.id
        return None

    def to_dict(self) -> list[dict]:
        return [{"id": s.id, "zh": s.zh, "en": s.en, "icon": s.icon} for s in self.services]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    title_zh: str
    title_en: str
    required: bool = True
    enum: tuple[str, ...] | None = None


#: The served ``updated`` property as a field (type ``datetime``: an RFC 3339 UTC time such as 2026-12-02T08:30:00Z).
UPDATED_FIELD = FieldSpec(UPDATED, "datetime", "更新时间", "Updated (last public change)")


@dataclass(frozen=True)
class LayerSpec:
    """What a layer is: read from one TOML file in ``layers/``."""

    id: str
    title_zh: str
    title_en: str
    description: str
    geometry_type: str
    data_file: str
    fields: tuple[FieldSpec, ...]
    private_fields: tuple[str, ...] = ()
    catchment_radius_m: float | None = None
    id_prefix: str | None = None
    marker: dict = field(default_factory=dict)
    order: int = 100
    services: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path) -> "LayerSpec":
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{path.name}: {exc}") from exc
        try:
            fields = tuple(
                FieldSpec(name=name, type=f["type"], title_zh=f["title_zh"], title_en=f["title_en"],
                          required=f.get("required", True), enum=tuple(f["enum"]) if "enum" in f else None)
                for name, f in raw["fields"].items())
            spec = cls(id=raw["id"], title_zh=raw["title_zh"], title_en=raw["title_en"],
                       description=raw.get("description", ""), geometry_type=raw["geometry_type"],
                       data_file=raw["data_file"], fields=fields,
                       private_fields=tuple(raw.get("private_fields", ())),
                       catchment_radius_m=raw.get("catchment_radius_m"), id_prefix=raw.get("id_prefix"),
                       marker=dict(raw.get("marker", {})), order=int(raw.get("order", 100)),
                       services=tuple(raw.get("services", ())))
        except KeyError as exc:
            raise DataError(f"{path.name}: missing key {exc}") from exc
        if spec.is_point:  # the location fields every point layer has (see LOCATION_FIELDS), private
            extra = [FieldSpec(name, "string", zh, en, required=False) for name, zh, en in LOCATION_FIELDS
                     if name not in {f.name for f in fields}]
            fields = fields + tuple(extra)
            spec = replace(spec, fields=fields, private_fields=tuple(dict.fromkeys(
                spec.private_fields + tuple(name for name, _, _ in LOCATION_FIELDS))))
        if UPDATED in {f.name for f in fields}:
            raise DataError(f"{path.name}: {UPDATED!r} is the time each feature last changed, which the server "
                            "derives from the layer's history; name the field otherwise")
        bad = [f.name for f in fields if f.type not in FIELD_TYPES]
        if bad:
            raise DataError(f"{path.name}: unknown field type for {bad}; use one of {FIELD_TYPES}")
        if spec.id != path.stem:
            raise DataError(f"{path.name}: id {spec.id!r} must match the file name")
        return spec

    @property
    def is_point(self) -> bool:
        return self.geometry_type == "Point"

    @property
    def new_id_prefix(self) -> str:
        """Prefix of the ids given to new features (``id_prefix``, else the first two letters of the layer id)."""
        return self.id_prefix or self.id[:2].upper()

    @property
    def public_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.name not in self.private_fields)

    @property
    def feature_fields(self) -> tuple[FieldSpec, ...]:
        """The properties of a served feature, in their order: the public fields, then ``updated``."""
        return (*self.public_fields, UPDATED_FIELD)

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)


def load_specs(layers_dir: Path) -> tuple[ServiceVocabulary, dict[str, LayerSpec]]:
    """The services vocabulary and every layer spec in ``layers_dir``, ordered by file name."""
    vocab_path = layers_dir / "services.toml"
    if not vocab_path.exists():
        raise DataError(f"no services vocabulary at {vocab_path}")
    vocab = ServiceVocabulary.load(vocab_path)
    specs = {}
    for path in sorted(layers_dir.glob("*.toml")):
        if path.name != "services.toml":
            spec = LayerSpec.load(path)
            unknown = [s for s in spec.services if s not in vocab.ids]
            if unknown:
                raise DataError(f"{path.name}: services {unknown} are not in services.toml")
            specs[spec.id] = spec
    if not specs:
        raise DataError(f"no layer specs in {layers_dir}")
    return vocab, dict(sorted(specs.items(), key=lambda item: (item[1].order, item[0])))
