"""The edit use case: create, replace or delete one feature of an editable layer (the admin API's feature routes).

One declared operation over ``DataManager``/``LayerEditor.apply``: the GeoJSON feature goes through the same
checks as an imported row (422 with the import's messages), an ``If-Match`` data version makes the change
conditional (412 when the layer changed since; checked again under the write lock with ``expect_data_version``),
creating never overwrites (``create_only``: 409) and replacing never creates (``update_only``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import FeatureNotFound, GeoServerError, InvalidQuery
from ..core.layers import UPDATED
from ..operations import Operation, Param, register
from .operations import CRS, LAYER, WHO, _editable

ACTIONS = ("create", "replace", "delete")
#: How staff set a position through the admin API: dragged a pin on the /admin map, typed coordinates, or any client.
PLACED_BY = ("map", "typed", "admin")


class PreconditionFailed(GeoServerError):
    """The data version an ``If-Match`` names is not the current one (HTTP 412)."""

    code = "PreconditionFailed"
    http_status = 412


def _as_given(param: Param, raw, service):
    """The raw value, untouched (checked in ``Edit.build``, in the order the answers depend on)."""
    return raw


def _data_version(param: Param, raw, service) -> str | None:
    """The data version an If-Match header names (None without one or for ``*``)."""
    if raw is None or not str(raw).strip() or str(raw).strip() == "*":
        return None
    return str(raw).strip().removeprefix("W/").strip('"')


def existing(layer, fid: str) -> None:
    """404 unless the layer has a feature (public or pending) with this id."""
    if layer.position(fid) is None and fid not in layer.pending_ids:
        raise FeatureNotFound(f"layer {layer.spec.id!r} has no feature {str(fid)[:60]!r}", "featureId")


def check_version(layer, wanted: str | None) -> str | None:
    """``wanted`` if it is the layer's current data version (None stays None); 412 otherwise."""
    if wanted is not None and wanted != layer.version:
        raise PreconditionFailed(f"the layer changed: If-Match names version {wanted[:40]!r}, the current one is "
                                 f"{layer.version!r}; read the feature again", "If-Match")
    return wanted


def feature_body(body) -> dict:
    """A GeoJSON Feature with a Point geometry (or null: pending) and properties; 400 naming what is wrong."""
    if not isinstance(body, dict):
        raise InvalidQuery("the body must be a JSON object: a GeoJSON Feature with a Point geometry and properties",
                           "body")
    if body.get("type") != "Feature":
        raise InvalidQuery("the body must be a GeoJSON Feature (\"type\": \"Feature\")", "type")
    geom = body.get("geometry")
    coords = geom.get("coordinates") if isinstance(geom, dict) else None
    if geom is not None and not (
            isinstance(geom, dict) and geom.get("type") == "Point" and isinstance(coords, list) and len(coords) >= 2
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                    for c in coords[:2])):
        raise InvalidQuery("geometry must be a GeoJSON Point with numeric [longitude, latitude], or null for a "
                           "facility whose position is not known yet (stored as pending, 待定位)", "geometry")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise InvalidQuery("properties must be a JSON object", "properties")
    return body


def check_feature(manager, layer_id: str, body: dict, fid: str | None, datum: str, mode: str = "merge"):
    """(record, report) of one feature through the same checks as an imported row; 422 if it is not valid."""
    from ..core.importer import ColumnMapper, ImportOptions
    from ..core.manage import ImportRefused
    from ..core.tabular import RawTable, cell_text

    props = dict(body["properties"])
    if fid is not None:
        if "id" in props and str(props["id"]) != fid:
            raise InvalidQuery(f"the id in the body ({str(props['id'])[:40]!r}) differs from the URL ({fid!r})", "id")
        props["id"] = fid
    elif body.get("id") is not None and "id" not in props:
        props["id"] = body["id"]
    props.pop(UPDATED, None)     # derived from the history (a feature read from the API comes back with it)
    placed_by = props.pop("location_source", None) or "admin"
    if placed_by not in PLACED_BY:
        raise InvalidQuery(f"location_source may be {', '.join(PLACED_BY)} (how staff set the position)",
                           "location_source")
    headers, cells = [], []
    for key, value in props.items():
        if isinstance(value, (dict,)):
            raise InvalidQuery(f"property {str(key)[:40]!r} must be a value, not an object", str(key)[:40])
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        headers.append(str(key))
        cells.append(cell_text(value))
    point = tuple(body["geometry"]["coordinates"][:2]) if body["geometry"] is not None else None
    table = RawTable(headers=headers, rows=[cells], row_numbers=[1], row_label="feature", points=[point])
    opts = ImportOptions(datum=datum, mode=mode, source="admin", location_source=placed_by)
    importer = manager.importer(layer_id)
    report = importer.check(table, ColumnMapper(importer.spec), opts, "request")
    unknown = report.ignored_columns
    if unknown:
        raise InvalidQuery(f"unknown properties {unknown[:5]}; fields: "
                           f"{', '.join(f.name for f in importer.spec.fields)}", unknown[0][:40])
    if report.errors:
        raise ImportRefused("the feature is not valid: " + "; ".join(p.en for p in report.errors), report,
                            "properties")
    return report.records[0], report


@dataclass(frozen=True)
class EditRequest:
    layer: str
    action: str
    feature_id: str | None
    expect_data_version: str | None
    record: dict | None          # the checked row (create, replace)
    who: str | None


@dataclass(frozen=True)
class EditResult:
    layer: str
    action: str
    feature_id: str
    change: object               # core.edit's change (its ``summary()``)
    data_version: str

    def to_dict(self) -> dict:
        return {"layer": self.layer, "action": self.action, "feature_id": self.feature_id,
                "change": self.change.summary(), "data_version": self.data_version}


class Edit(Operation):
    name = "edit"
    summary = "Create, replace or delete one feature of an editable layer (checked like an imported row)"
    params = (LAYER,
              Param("action", "enum", "create (a new feature), replace (the whole feature) or delete", "操作",
                    choices=ACTIONS, required=True, http=False, cli=False),
              Param("feature_id", "str", "The feature's id (in the URL; a new feature's comes from its body or is "
                    "numbered)", "要素编号", parser=_as_given, http=False),
              Param("if_match", "str", "The layer's data version the change was made against (the ETag, sent as "
                    "If-Match): 412 if the layer changed since", "数据版本", parser=_data_version, http=False),
              Param("feature", "geojson", "The feature: a GeoJSON Feature with a Point geometry (null: pending, "
                    "待定位) and properties", "要素", parser=_as_given, http=False),
              CRS, WHO)

    def query_names(self, action: str) -> set[str]:
        """The query parameters an HTTP route for ``action`` accepts (the rest come from the path, headers, body)."""
        return set() if action == "delete" else {p.name for p in self.params if p.http and p is not LAYER}

    def build(self, values: dict, manager) -> EditRequest:
        """Checks in the order the answers depend on: the layer, the feature (404), the version (412), then the
        body (400/422). ``feature`` may be a callable giving the body, read only after the first checks."""
        layer_id, action, fid = _editable(manager, values["layer"]), values["action"], values["feature_id"]
        expect = None
        if action != "create":
            if fid is None:
                raise InvalidQuery(f"{action} needs the feature's id", "featureId")
            fid = str(fid)
            layer = manager.service.layer(layer_id)
            existing(layer, fid)
            expect = check_version(layer, values["if_match"])
        record = None
        if action != "delete":
            body = values["feature"]
            body = body() if callable(body) else body
            record, _ = check_feature(manager, layer_id, feature_body(body), fid if action == "replace" else None,
                                      values["crs"])
        return EditRequest(layer_id, action, fid, expect, record, values["who"])

    def run(self, manager, request: EditRequest, summary: dict | None = None) -> EditResult:
        from .operations import _who
        who, layer = _who(request.who), request.layer
        summary = summary if summary is not None else {"via": "cli"}
        if request.action == "create":
            change = manager.editor.apply(layer, upserts=[request.record], create_only=True, who=who,
                                          action="create", summary=summary)
        elif request.action == "replace":
            change = manager.editor.apply(layer, upserts=[request.record], update_only=True, partial=False, who=who,
                                          action="update", summary=summary,
                                          expect_data_version=request.expect_data_version)
        else:
            change = manager.editor.apply(layer, deletes=[request.feature_id], who=who, action="delete",
                                          summary=summary, expect_data_version=request.expect_data_version)
        manager.service.refresh(layer, force=True)
        # a new feature's id may have been renumbered under the write lock
        fid = change.added[0] if request.action == "create" else request.feature_id
        return EditResult(layer, request.action, fid, change, manager.service.layer(layer).version)


EDIT = register(Edit())
