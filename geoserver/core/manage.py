"""The data-management façade shared by the CLI and the admin API: import, edit, history, rollback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .edit import ChangeResult, LayerEditor
from .errors import InvalidQuery
from .importer import ImportOptions, ImportReport, Importer, Reference
from .store import Version


class GeocoderNotConfigured(InvalidQuery):
    """Geocoding was asked for but no geocoder is configured (the offline default)."""

    code = "GeocoderNotConfigured"


class ImportRefused(InvalidQuery):
    """The file has invalid rows and the mode is all-or-nothing: nothing was imported (``report`` says why)."""

    code = "ImportRefused"

    def __init__(self, message: str, report: ImportReport | None = None, parameter: str | None = "file"):
        super().__init__(message, parameter)
        self.report = report


@dataclass
class ImportOutcome:
    report: ImportReport
    change: ChangeResult | None     # None for a dry run or a refused file
    dry_run: bool = False

    def to_dict(self) -> dict:
        out = {"dry_run": self.dry_run, "imported": self.change is not None and self.change.version is not None,
               "report": self.report.to_dict()}
        if self.change is not None:
            out["change"] = self.change.summary()
            out["data_version"] = self.change.data_version
        out["pending_rows"] = self.report.pending
        return out


class DataManager:
    """Imports and edits the layers of one GeoService, in its storage (files or PostGIS)."""

    def __init__(self, service, geocoder_config: dict | None = None):
        self.service = service
        self.store = service.storage
        self.editor = LayerEditor(self.store, service.specs, service.vocab)
        self._reference = None
        self._geocoder_config = geocoder_config       # GEOSERVER_GEOCODER* settings; None: the environment
        self._geocoder = None

    @property
    def reference(self) -> Reference:
        if self._reference is None:
            self._reference = Reference(self.service.layer("districts"))
        return self._reference

    def editable(self, layer_id: str):
        """The layer, if it may be edited (point facility layers; not the reference districts)."""
        layer = self.service.layer(layer_id)
        if layer_id == "districts" or not layer.spec.is_point:
            raise InvalidQuery(f"layer {layer_id!r} is reference data and cannot be edited; editable layers: "
                               f"{', '.join(self.editable_ids())}", "layer")
        return layer

    def editable_ids(self) -> list[str]:
        return [lid for lid, spec in self.service.specs.items() if spec.is_point and lid != "districts"]

    def importer(self, layer_id: str) -> Importer:
        self.service.refresh(layer_id, force=True)   # check against the data as it is on disk now
        layer = self.editable(layer_id)
        return Importer(layer.spec, self.service.vocab, self.reference, existing=layer)

    def check(self, layer_id: str, path: Path, opts: ImportOptions, data: bytes | None = None,
              progress=None) -> ImportReport:
        return self.importer(layer_id).run(path, opts, data=data, progress=progress)

    def import_file(self, layer_id: str, path: Path, opts: ImportOptions, *, who: str, dry_run: bool = False,
                    skip_invalid: bool = False, data: bytes | None = None, progress=None) -> ImportOutcome:
        """Check a file and (unless ``dry_run``) store its rows as one new version.

        All or nothing by default: any invalid row refuses the whole file (raises ImportRefused with the report
        attached). ``skip_invalid`` stores the valid rows; the report lists the rejected ones.
        """
        report = self.check(layer_id, path, opts, data=data, progress=progress)
        if dry_run:
            return ImportOutcome(report, None, dry_run=True)
        missing_crs = next((p for p in report.file_errors if p.code == "crs_missing"), None)
        if missing_crs is not None:
            raise InvalidQuery(f"{missing_crs.en} ({missing_crs.zh}); nothing was imported", "crs")
        if report.file_errors or (report.errors and not skip_invalid):
            raise ImportRefused(f"{len(report.errors)} problems in {len(report.rejected_rows)} of {report.rows} rows; "
                                "nothing was imported (fix them, or import the valid rows with skip-invalid)", report)
        if not report.records and opts.mode == "replace":
            raise ImportRefused(f"no valid rows in {report.filename}: replacing the layer with it would remove all "
                                f"{self.service.layer(layer_id).count} features; nothing was changed", report)
        if not report.records:
            return ImportOutcome(report, ChangeResult(layer=layer_id, features=self.service.layer(layer_id).count))
        summary = {"file": report.filename, "rows": report.rows, "rejected_rows": len(report.rejected_rows),
                   "pending_rows": report.pending, "crs": opts.datum}
        if report.submitter:   # the form's 区局工会 / 联系人 block: kept with the version, never published
            summary["submitter"] = report.submitter
        change = self.editor.apply(
            layer_id, upserts=report.records, replace=opts.mode == "replace", partial=opts.mode != "replace",
            who=who, action=f"import-{opts.mode}", summary=summary)
        self.service.refresh(layer_id, force=True)
        return ImportOutcome(report, change)

    def export(self, layer_id: str, fmt: str, datum: str = "wgs84", version: int | None = None) -> tuple[bytes, int]:
        """(file bytes, feature count) of a layer as an editable form, current data or a recorded version."""
        from .export import EXPORT_FORMATS, export_rows, to_csv, to_xlsx
        if fmt not in EXPORT_FORMATS:
            raise InvalidQuery(f"export format {fmt!r} is not supported; use one of {', '.join(EXPORT_FORMATS)}",
                               "format")
        spec = self.editable(layer_id).spec
        records, geoms = self.store.read_records(spec, version)
        headers, rows = export_rows(spec, self.service.vocab, records, geoms, datum)
        data = to_csv(headers, rows) if fmt == "csv" else to_xlsx(headers, rows, spec.title_zh)
        return data, len(rows)

    # --- geocoding pending rows ---------------------------------------------------------------------------------
    def geocoder(self):
        """The configured geocoder with its cache in the state folder (the same address is never paid for twice),
        or None: no geocoder is the offline default (rows stay pending until staff place them)."""
        if self._geocoder is None:
            from .geocode import CachedGeocoder, geocoder_from_env
            config = self._geocoder_config if self._geocoder_config is not None else os.environ
            geocoder = geocoder_from_env(config)
            if geocoder is None:
                return None
            self._geocoder = CachedGeocoder(geocoder, self.store.geocode_cache())
        return self._geocoder

    def geocode(self, layer_id: str, *, who: str, retry_failed: bool = False, dry_run: bool = False, progress=None,
                should_stop=None, geocoder=None):
        """Geocode the layer's pending rows and store the answers as one new version (unless ``dry_run``).

        Precise answers inside the row's district are published; the rest stay pending with a reason. A quota or
        key error, a dead network or Ctrl-C end the run early: what was found until then is stored (answers are
        cached, so running again costs nothing for them)."""
        from .locate import BatchResult, Locator, run_batch, select_rows
        geocoder = geocoder or self.geocoder()
        if geocoder is None:
            raise GeocoderNotConfigured("no geocoder is configured: set GEOSERVER_GEOCODER (amap, tianditu, tencent "
                                        "or baidu) and GEOSERVER_GEOCODER_KEY; without one, place pending rows on "
                                        "the map in /admin", "geocoder")
        self.service.refresh(layer_id, force=True)
        spec = self.editable(layer_id).spec
        records, _ = self.store.read_records(spec)
        rows = select_rows(records, retry_failed)
        result = BatchResult(layer=layer_id, provider=geocoder.name, dry_run=dry_run)
        try:
            run_batch(Locator(geocoder, self.reference), rows, result, refresh=retry_failed, progress=progress,
                      should_stop=should_stop)
        except KeyboardInterrupt:
            result.stopped = "interrupted (Ctrl-C) / 已中断"
        if not dry_run and result.upserts:
            change = self.editor.apply(
                layer_id, upserts=result.upserts, who=who, action="geocode",
                summary={"geocoder": geocoder.name, "tried": result.tried, "located": len(result.located),
                         "still_pending": result.pending, **({"stopped": result.stopped} if result.stopped else {})})
            result.version, result.skipped = change.version, len(change.skipped)
            self.service.refresh(layer_id, force=True)
        return result

    def history(self, layer_id: str) -> tuple[list[Version], Version | None]:
        """(versions oldest first, the current one or None if the file was changed outside geoserver)."""
        spec = self.service.layer(layer_id).spec
        return self.store.versions(layer_id), self.store.current_version(spec)

    def rollback(self, layer_id: str, number: int, *, who: str) -> Version:
        self.editable(layer_id)
        version = self.editor.rollback(layer_id, number, who=who)
        self.service.refresh(layer_id, force=True)
        return version
