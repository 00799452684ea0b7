"""Curation use cases: thin declared operations over ``DataManager``.

Their ``run`` takes the DataManager (it holds the service, the store and the geocoder settings) where the serving
and planning operations take the GeoService.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core import query as q
from ..core.errors import InvalidQuery
from ..core.store import parse_version
from ..operations import Operation, Param, register

EXPORT_FORMATS = ("csv", "xlsx")


def _datum(param: Param, raw, service) -> str:
    return q.datum(None if raw is None else param.text(raw), param.name)


def _version(param: Param, raw, service):
    if raw is None or raw == "":
        if param.required:
            raise InvalidQuery(f"{param.name} is required", param.name)
        return None
    return parse_version(raw)


def _export_format(param: Param, raw, service) -> str:
    fmt = param.default if raw is None else param.text(raw).lower()
    if fmt not in param.choices:
        raise InvalidQuery(f"export format {fmt!r} is not supported; use one of {', '.join(param.choices)}",
                           param.name)
    return fmt


LAYER = Param("layer", "str", "Editable point layer", "图层", required=True)
WHO = Param("who", "str", "Name recorded in the history and audit log", "操作人", default_text="cli:<user>",
            http=False)
DRY_RUN = Param("dry_run", "bool", "Check and report only; change nothing", "仅检查", default=False)
CRS = Param("crs", "enum", "Coordinate system of the coordinates: wgs84 (GPS), gcj02 (Amap/Tencent) or bd09 (Baidu)",
            "坐标系", default="wgs84", choices=("wgs84", "gcj02", "bd09"), parser=_datum)


def _who(request_who: str | None) -> str:
    if request_who:
        return request_who
    from ..core.store import default_actor
    return default_actor()


def _editable(manager, layer_id: str) -> str:
    manager.editable(layer_id)
    return layer_id


@dataclass(frozen=True)
class ExportRequest:
    layer: str
    format: str
    datum: str
    version: int | None


@dataclass(frozen=True)
class ExportResult:
    request: ExportRequest
    data: bytes
    features: int

    def to_dict(self) -> dict:
        return {"layer": self.request.layer, "format": self.request.format, "crs": self.request.datum,
                "version": self.request.version, "features": self.features, "bytes": len(self.data)}


class Export(Operation):
    name = "export"
    summary = "A layer as an editable form (.csv or .xlsx, Chinese headers, WITH the private contact fields)"
    params = (LAYER,
              Param("format", "enum", "File format (the CLI takes it from the file name)", "格式", default="xlsx",
                    choices=EXPORT_FORMATS,
                    parser=_export_format),
              CRS,
              Param("version", "int", "Export this version from the history instead of the current data", "版本",
                    minimum=1, parser=_version))

    def build(self, values: dict, manager) -> ExportRequest:
        return ExportRequest(_editable(manager, values["layer"]), values["format"], values["crs"],
                             values["version"])

    def run(self, manager, request: ExportRequest) -> ExportResult:
        data, count = manager.export(request.layer, request.format, request.datum, request.version)
        return ExportResult(request, data, count)


@dataclass(frozen=True)
class LayerRequest:
    layer: str


@dataclass(frozen=True)
class HistoryResult:
    layer: str
    versions: tuple
    current: int | None

    def to_dict(self) -> dict:
        return {"layer": self.layer, "current": self.current,
                "versions": [v.to_dict() for v in self.versions]}


class History(Operation):
    name = "history"
    summary = "The recorded versions of a layer (oldest first) and the current one"
    params = (LAYER,)

    def build(self, values: dict, manager) -> LayerRequest:
        manager.service.layer(values["layer"])
        return LayerRequest(values["layer"])

    def run(self, manager, request: LayerRequest) -> HistoryResult:
        versions, current = manager.history(request.layer)
        return HistoryResult(request.layer, tuple(versions), None if current is None else current.number)


@dataclass(frozen=True)
class RollbackRequest:
    layer: str
    version: int
    who: str | None


@dataclass(frozen=True)
class RollbackResult:
    layer: str
    restored: object            # core.store.Version

    def to_dict(self) -> dict:
        v = self.restored
        return {"layer": self.layer, "version": v.number, "restored_version": v.summary.get("restored_version"),
                "features": v.features}


class Rollback(Operation):
    name = "rollback"
    summary = "Make a recorded version current again (recorded as a new version; nothing is deleted)"
    params = (LAYER,
              Param("version", "int", "The version to restore (7, v7)", "版本", required=True, minimum=1,
                    parser=_version),
              WHO)

    def build(self, values: dict, manager) -> RollbackRequest:
        return RollbackRequest(_editable(manager, values["layer"]), values["version"], values["who"])

    def run(self, manager, request: RollbackRequest) -> RollbackResult:
        return RollbackResult(request.layer, manager.rollback(request.layer, request.version,
                                                              who=_who(request.who)))


@dataclass(frozen=True)
class GeocodeRequest:
    layer: str
    retry_failed: bool
    dry_run: bool
    who: str | None


class Geocode(Operation):
    name = "geocode"
    summary = "Geocode a layer's pending rows (待定位) with the configured geocoder and publish the precise ones"
    params = (LAYER,
              Param("retry_failed", "bool", "Also ask again for rows the geocoder could not place before", "重试",
                    default=False),
              DRY_RUN, WHO)

    def build(self, values: dict, manager) -> GeocodeRequest:
        return GeocodeRequest(_editable(manager, values["layer"]), values["retry_failed"], values["dry_run"],
                              values["who"])

    def run(self, manager, request: GeocodeRequest, progress=None, should_stop=None):
        """The geocoding batch result (``core.locate.BatchResult``)."""
        return manager.geocode(request.layer, who=_who(request.who), retry_failed=request.retry_failed,
                               dry_run=request.dry_run, progress=progress, should_stop=should_stop)


@dataclass(frozen=True)
class ImportRequest:
    layer: str
    file: str
    datum: str | None
    mode: str
    dry_run: bool
    skip_invalid: bool
    encoding: str | None
    sheet: str | None
    source_layer: str | None
    source: str | None
    who: str | None
    filename: str | None = None     # the uploaded file's name (HTTP, a body that is the file itself)
    geocode: bool = True            # start a geocoding job for the pending rows afterwards (HTTP)


class Import(Operation):
    name = "import"
    summary = "Check a file (CSV, XLSX, GeoJSON, GPKG, SHP) and import its rows into a layer as a new version"
    params = (LAYER,
              Param("file", "str", "The file to import", "文件", required=True, http=False),
              Param("crs", "enum", "Coordinate system of the file's coordinates (needed when it has coordinates)",
                    "坐标系", choices=("wgs84", "gcj02", "bd09"), parser=lambda p, raw, s: None if raw in (None, "")
                    else q.datum(p.text(raw), p.name)),
              Param("mode", "enum", "Merge by id (add, update, keep the rest) or replace the whole layer", "模式",
                    default="merge", choices=("merge", "replace")),
              DRY_RUN,
              Param("skip_invalid", "bool", "Import the valid rows and report the rejected ones", "跳过无效行",
                    default=False),
              Param("encoding", "str", "Text encoding of a CSV file", "编码", default_text="detected"),
              Param("sheet", "str", "Worksheet of an XLSX file", "工作表", default_text="the first"),
              Param("source_layer", "str", "Layer of a GeoPackage with several", "源图层"),
              Param("source", "str", "Source recorded for rows without one", "来源", default_text="import:<file name>"),
              WHO,
              Param("filename", "str", "Name of the uploaded file when the body is the file itself (not multipart)",
                    "文件名", cli=False),
              Param("geocode", "bool", "Start a geocoding job for the pending rows afterwards (when a geocoder is "
                    "configured)", "导入后定位", default=True, cli=False))

    def build(self, values: dict, manager) -> ImportRequest:
        return ImportRequest(layer=_editable(manager, values["layer"]), file=values["file"], datum=values["crs"],
                             mode=values["mode"], dry_run=values["dry_run"], skip_invalid=values["skip_invalid"],
                             encoding=values["encoding"], sheet=values["sheet"], source_layer=values["source_layer"],
                             source=values["source"], who=values["who"], filename=values["filename"],
                             geocode=values["geocode"])

    def run(self, manager, request: ImportRequest, mapping: dict | None = None, data: bytes | None = None,
            progress=None):
        """The ``ImportOutcome`` (raises ``ImportRefused`` with the report when nothing was imported)."""
        from ..core.importer import ImportOptions
        opts = ImportOptions(datum=request.datum, encoding=request.encoding, sheet=request.sheet,
                             source_layer=request.source_layer, mapping=mapping or {}, source=request.source,
                             mode=request.mode)
        return manager.import_file(request.layer, Path(request.file), opts, who=_who(request.who),
                                   dry_run=request.dry_run, skip_invalid=request.skip_invalid, data=data,
                                   progress=progress)


EXPORT = register(Export())
HISTORY = register(History())
ROLLBACK = register(Rollback())
GEOCODE = register(Geocode())
IMPORT = register(Import())
