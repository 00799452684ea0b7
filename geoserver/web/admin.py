"""The admin API: authenticated edits of single features, file imports, history and rollback, the audit log.

Every route needs ``Authorization: Bearer <token>`` (tokens made by ``geoserver token add``, stored hashed): 401
without a valid token, 403 for a layer the token may not change or a browser origin not configured in
``GEOSERVER_ADMIN_ORIGINS``. Private fields (contact person, mobile number) are returned here and nowhere else.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from flask import Blueprint, Response, current_app, g, request

from ..core.auth import TokenStore
from ..core.edit import EditConflict
from ..core.data import split_services
from ..core.errors import FeatureNotFound, GeoServerError, InvalidQuery
from ..core.layers import PENDING
from ..core.manage import DataManager, GeocoderNotConfigured
from ..core.store import StoreError, fault_point
from ..core.tabular import GIS_SUFFIXES, TABLE_SUFFIXES, ImportFileError
from ..curation.edit import EDIT
from ..curation.operations import EXPORT, GEOCODE, HISTORY, IMPORT, ROLLBACK
from .errors import Forbidden, Unauthorized, UploadTooLarge, error_response
from .http import check_params, json_body, json_response

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__, url_prefix="/api/admin")

FEATURE_MAX_BYTES = 64 << 10
ADMIN_METHODS = "GET, POST, PUT, DELETE, OPTIONS"
ADMIN_HEADERS = "Authorization, Content-Type, If-Match"


def manager() -> DataManager:
    ext = current_app.extensions
    if "data_manager" not in ext:
        cfg = current_app.config
        geocoder = {f"GEOSERVER_{k}": str(cfg[k]) for k in ("GEOCODER", "GEOCODER_KEY", "GEOCODER_URL",
                                                           "GEOCODER_QPS", "GEOCODER_TIMEOUT_S") if cfg.get(k)}
        ext["data_manager"] = DataManager(ext["geoservice"], geocoder_config=geocoder)
    return ext["data_manager"]


def tokens() -> TokenStore:
    ext = current_app.extensions
    if "admin_tokens" not in ext:
        path = current_app.config.get("ADMIN_TOKENS_FILE")   # a file set explicitly; else the storage's tokens
        ext["admin_tokens"] = TokenStore(path) if path else ext["geoservice"].storage.tokens()
    return ext["admin_tokens"]


def allowed_origins() -> set[str]:
    raw = current_app.config.get("ADMIN_ORIGINS") or ""
    items = raw if isinstance(raw, (list, tuple, set)) else str(raw).split(",")
    return {o.strip().rstrip("/") for o in items if o.strip()}


def admin_cors(resp):
    """CORS for admin routes: only configured origins, never ``*`` (called from the app's after_request)."""
    origin = request.headers.get("Origin")
    resp.headers.pop("Access-Control-Allow-Origin", None)
    resp.vary.add("Origin")
    if origin and origin.rstrip("/") in allowed_origins():  # cross-origin only: same-origin needs no CORS
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.headers["Access-Control-Allow-Methods"] = ADMIN_METHODS
        resp.headers["Access-Control-Allow-Headers"] = ADMIN_HEADERS
        resp.headers["Access-Control-Expose-Headers"] = "ETag, Location"
        resp.headers["Access-Control-Max-Age"] = "600"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def origin_allowed(origin: str) -> bool:
    """The server's own origin (the /admin page; browsers send Origin on same-origin writes) or a configured one."""
    origin = origin.rstrip("/")
    return origin == request.host_url.rstrip("/") or origin in allowed_origins()


@bp.before_request
def _guard():
    origin = request.headers.get("Origin")
    if origin and not origin_allowed(origin):
        raise Forbidden(f"origin {origin[:100]!r} may not use the admin API (allowed origins are set by the operator "
                        "in GEOSERVER_ADMIN_ORIGINS)", "Origin")
    if request.method == "OPTIONS":
        return Response(status=204)
    limit = current_app.config.get("ADMIN_MAX_UPLOAD_BYTES", 20 << 20)
    request.max_content_length = limit if request.path.endswith("/import") else FEATURE_MAX_BYTES
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("this endpoint needs 'Authorization: Bearer <token>' (an operator token from "
                           "'geoserver token add')", "Authorization")
    if scheme.lower() != "bearer":
        raise Unauthorized("use 'Authorization: Bearer <token>'", "Authorization")
    operator = tokens().verify(token.strip())
    if operator is None:
        raise Unauthorized("the token is not valid (unknown or revoked)", "Authorization")
    g.operator = operator
    layer_id = (request.view_args or {}).get("layer")
    if layer_id is not None:
        manager().editable(layer_id)
        if not operator.may_edit(layer_id):
            raise Forbidden(f"operator {operator.name!r} may not change layer {layer_id!r}", "layer")


@bp.errorhandler(GeoServerError)
def _admin_error(exc: GeoServerError):
    if isinstance(exc, (Unauthorized, Forbidden)):  # refused writes go to the server log (not the audit log,
        # which only records changes and must not grow with every bad request)
        log.warning("admin API refused %s %s from %s: %s", request.method, request.path[:200], request.remote_addr,
                    exc.message)
    body = exc.to_dict()
    report = getattr(exc, "report", None)
    if report is not None:
        body["report"] = report.to_dict()
    return error_response(exc, body)


# --- representations -----------------------------------------------------------------------------------------------
def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def admin_feature(layer, pos: int) -> dict:
    """A feature with its private fields (admins only)."""
    feature = layer.feature(pos, "wgs84")
    row = layer.gdf.iloc[pos]
    props = dict(feature["properties"])
    for name in layer.spec.private_fields:
        props[name] = _plain(row.get(name)) if name in layer.gdf.columns else None
    if props.get("location_status") is None:
        props["location_status"] = "located"   # data files from before the field
    feature["properties"] = props
    return feature


def pending_feature(layer, i: int) -> dict:
    """A pending row (待定位) as a Feature: every field, and its proposed point (a geocoder's imprecise answer, the
    position before the address changed) or no geometry."""
    row = layer.pending.iloc[i]
    props = {"id": str(row["id"])}
    for f in layer.spec.fields:
        if f.name == "id":
            continue
        value = _plain(row.get(f.name)) if f.name in layer.pending.columns else None
        props[f.name] = split_services(value) if f.type == "services" else value
    props["location_status"] = PENDING
    geom = row.geometry
    geometry = None if geom is None or geom.is_empty else {
        "type": "Point", "coordinates": [round(float(geom.x), 7), round(float(geom.y), 7)]}
    return {"type": "Feature", "id": props["id"], "geometry": geometry, "properties": props}


def staff_feature(layer, fid: str) -> dict:
    """One feature, public or pending, with its private fields; 404 if the layer has no such id."""
    pos = layer.position(fid)
    if pos is not None:
        return admin_feature(layer, pos)
    if fid in layer.pending_ids:
        return pending_feature(layer, int(np.flatnonzero(layer.pending["id"].astype(str).to_numpy() == fid)[0]))
    raise FeatureNotFound(f"layer {layer.spec.id!r} has no feature {str(fid)[:60]!r}", "featureId")


def _who() -> str:
    return g.operator.name


def _summary() -> dict:
    return {"via": "http", "remote_addr": request.remote_addr}


def _layer_etag(layer) -> str:
    return f'"{layer.version}"'


# --- routes ----------------------------------------------------------------------------------------------------------
@bp.get("/layers")
def layers():
    check_params(set())
    m = manager()
    try:
        geocoder = m.geocoder()
    except GeoServerError as exc:   # misconfigured (a provider without a key): say so, keep the page working
        log.error("geocoder not available: %s", exc.message)
        geocoder = None
    out = []
    for lid in m.editable_ids():
        layer = m.service.layer(lid)
        versions, current = m.history(lid)
        spec = layer.spec
        vocab = m.service.vocab
        out.append({"id": lid, "title_zh": spec.title_zh, "features": layer.count, "pending": layer.pending_count,
                    "pending_by_reason": layer.pending_by_reason(), "data_version": layer.version,
                    "version": current.number if current else None, "versions": len(versions),
                    "private_fields": list(spec.private_fields), "may_edit": g.operator.may_edit(lid),
                    "fields": [{"name": f.name, "type": f.type, "title_zh": f.title_zh, "title_en": f.title_en,
                                "required": f.required, "enum": list(f.enum) if f.enum else None,
                                "private": f.name in spec.private_fields}
                               for f in spec.fields if f.name not in ("district_code",)],
                    "services": [{"id": sv.id, "zh": sv.zh, "en": sv.en} for sv in vocab.services
                                 if sv.id in (spec.services or vocab.ids)]})
    return json_response({"operator": g.operator.name, "geocoder": geocoder.name if geocoder else None,
                          "layers": out}, cache="no-store")


LOCATION_STATUSES = ("located", PENDING)


@bp.get("/layers/<layer>/features")
def list_features(layer):
    """Features with their private fields: located ones first, then pending ones (待定位); ``location_status``
    keeps one kind, ``q`` those whose id, name or address contains the text."""
    check_params({"limit", "offset", "q", "location_status"})
    lay = manager().service.layer(layer)
    try:
        limit = min(max(int(request.args.get("limit", 100)), 1), 1000)
        offset = max(int(request.args.get("offset", 0)), 0)
    except ValueError:
        raise InvalidQuery("limit and offset must be whole numbers", "limit") from None
    status = request.args.get("location_status", "").strip().lower()
    if status and status not in LOCATION_STATUSES:
        raise InvalidQuery(f"location_status must be {' or '.join(LOCATION_STATUSES)}", "location_status")
    query = request.args.get("q", "").strip().lower()[:100]

    def hit(values) -> bool:  # id, name or address containing the text
        return not query or any(query in str(v or "").lower() for v in values)

    located = [] if status == PENDING else \
        [("l", i) for i, p in enumerate(lay.properties) if hit(p.get(k) for k in ("id", "name", "address"))]
    pending = []
    if status != "located" and lay.pending_count:
        rows = lay.pending
        columns = [rows[k].tolist() if k in rows.columns else [None] * len(rows) for k in ("id", "name", "address")]
        pending = [("p", i) for i, values in enumerate(zip(*columns)) if hit(values)]
    matches = located + pending
    feats = [admin_feature(lay, i) if kind == "l" else pending_feature(lay, i)
             for kind, i in matches[offset:offset + limit]]
    return json_response({"type": "FeatureCollection", "features": feats, "numberMatched": len(matches),
                          "numberReturned": len(feats), "numberPending": lay.pending_count},
                         content_type="application/geo+json", cache="no-store", headers={"ETag": _layer_etag(lay)})


@bp.get("/layers/<layer>/features/<fid>")
def get_feature(layer, fid):
    check_params(set())
    lay = manager().service.layer(layer)
    return json_response(staff_feature(lay, fid), content_type="application/geo+json", cache="no-store",
                         headers={"ETag": _layer_etag(lay)})


def _stored(layer_id: str, fid: str, change, status: int, headers: dict | None = None):
    lay = manager().service.layer(layer_id)
    body = {"feature": staff_feature(lay, fid), "change": change.summary(), "data_version": lay.version}
    return json_response(body, status=status, cache="no-store", headers={"ETag": _layer_etag(lay), **(headers or {})})


def _edit(layer: str, action: str, fid: str | None = None):
    """The edit operation (geoserver/curation/edit.py) on this request: its declared query parameters, the id in
    the URL, the If-Match header and the JSON body (read only once the feature and its version are checked)."""
    check_params(EDIT.query_names(action))
    m = manager()
    mapping = {**request.args.to_dict(), "layer": layer, "action": action, "feature_id": fid,
               "if_match": request.headers.get("If-Match"), "who": _who()}
    if action != "delete":
        mapping["feature"] = lambda: json_body(force=False)
    return EDIT.run(m, EDIT.parse(mapping, m), summary=_summary())


@bp.post("/layers/<layer>/features")
def create_feature(layer):
    result = _edit(layer, "create")
    fid = result.feature_id  # the id may have been renumbered under the write lock
    return _stored(layer, fid, result.change, 201, {"Location": f"/api/admin/layers/{layer}/features/{fid}"})


@bp.put("/layers/<layer>/features/<fid>")
def replace_feature(layer, fid):
    result = _edit(layer, "replace", fid)
    return _stored(layer, fid, result.change, 200)


@bp.delete("/layers/<layer>/features/<fid>")
def delete_feature(layer, fid):
    result = _edit(layer, "delete", fid)
    return json_response({"deleted": fid, "change": result.change.summary(), "data_version": result.data_version},
                         cache="no-store")


UPLOAD_CHUNK = 64 << 10
#: After the limit, this much more of a body is read and dropped (never stored), so a client that sends the whole
#: body before reading the answer gets the 413 rather than a reset connection; beyond it the connection is closed.
UPLOAD_DRAIN_BYTES = 4 << 20


def _upload_limit() -> int:
    return int(current_app.config.get("ADMIN_MAX_UPLOAD_BYTES", 20 << 20))


def _too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(f"the upload is larger than the {limit:,} bytes this server accepts "
                          f"(GEOSERVER_ADMIN_MAX_UPLOAD_BYTES); nothing was imported（上传的文件超过服务器上限 {limit:,} "
                          "字节，未导入任何数据）", "file")


class UploadBody:
    """The request body as it arrives, with a Content-Length or chunked (``Transfer-Encoding: chunked``), read from
    the WSGI input directly and counted: :class:`UploadTooLarge` as soon as it passes ``limit`` bytes, so a body
    is never cut at the limit and imported in part (werkzeug's own limit on a chunked stream just ends it there)."""

    def __init__(self, environ, limit: int):
        self.stream = environ["wsgi.input"]
        self.limit = limit
        self.received = 0
        length = environ.get("CONTENT_LENGTH", "").strip()
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        self.length = int(length) if length.isdigit() and not chunked else None
        if self.length is None and not (chunked or environ.get("wsgi.input_terminated")):
            self.length = 0   # no length and a server that does not end the stream: nothing to read safely
        self.remaining = self.length
        if self.length is not None and self.length > limit:
            raise self._refuse()

    def read(self, size: int = -1) -> bytes:
        if self.remaining == 0:
            return b""
        size = UPLOAD_CHUNK if size is None or size < 0 else min(size, UPLOAD_CHUNK)
        if self.remaining is not None:
            size = min(size, self.remaining)
        data = self.stream.read(size)
        self.received += len(data)
        if self.remaining is not None:
            self.remaining = self.remaining - len(data) if data else 0
        if self.received > self.limit:
            raise self._refuse()
        return data

    def _refuse(self) -> UploadTooLarge:
        """The 413, after dropping what is left of the body if that is at most UPLOAD_DRAIN_BYTES."""
        budget = UPLOAD_DRAIN_BYTES
        if self.remaining is None or self.remaining <= budget:
            try:
                while budget > 0 and self.remaining != 0:
                    data = self.stream.read(min(UPLOAD_CHUNK, budget, self.remaining or UPLOAD_CHUNK))
                    if not data:
                        break
                    budget -= len(data)
                    if self.remaining is not None:
                        self.remaining -= len(data)
            except Exception:   # noqa: BLE001 - the client went away: the 413 stands all the same
                pass
        self.remaining = 0
        return _too_large(self.limit)


class UploadFile:
    """A file the upload is written to, in the import's temporary folder (failure injection: ``upload-write``)."""

    def __init__(self, path: Path):
        self.path = path
        self.file = open(path, "w+b")

    def write(self, data: bytes) -> int:
        fault_point("upload-write")
        return self.file.write(data)

    def seek(self, *args) -> int:
        return self.file.seek(*args)

    def read(self, *args) -> bytes:
        return self.file.read(*args)

    def close(self) -> None:
        self.file.close()


def _disk_error(exc: OSError) -> StoreError:
    """A 503 for a failure to store the upload on the server (a full disk above all)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError("the server's disk is full: the uploaded file could not be stored (No space left on device);"
                          " nothing was imported; try again later or tell the operator（服务器磁盘已满，上传的文件无法"
                          "保存，未导入任何数据）")
    return StoreError(f"the server could not store the uploaded file ({exc.strerror or type(exc).__name__}); nothing "
                      "was imported; try again later or tell the operator（服务器无法保存上传的文件，未导入任何数据）")


def _upload_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in TABLE_SUFFIXES + GIS_SUFFIXES:
        raise ImportFileError("upload the file as multipart field 'file' (or as the body with ?filename=) named "
                              ".csv, .xlsx, .geojson, .gpkg or a zipped Shapefile (.zip)", "file")
    return suffix


def _receive_upload(body: UploadBody, folder: Path, filename: str | None) -> tuple[str, Path]:
    """(the user's file name, where it is now) of the uploaded file: a multipart field ``file`` or the raw body
    (``?filename=``), streamed to ``folder`` as it arrives."""
    if request.mimetype == "multipart/form-data":
        from werkzeug.exceptions import RequestEntityTooLarge
        from werkzeug.formparser import MultiPartParser
        boundary = request.mimetype_params.get("boundary", "")
        if not boundary:
            raise ImportFileError("the multipart upload has no boundary; send the file as multipart field 'file'",
                                  "file")
        parts: list[UploadFile] = []

        def part_file(**_) -> UploadFile:
            parts.append(UploadFile(folder / f"part-{len(parts)}"))
            return parts[-1]

        parser = MultiPartParser(stream_factory=part_file, max_form_memory_size=FEATURE_MAX_BYTES, max_form_parts=20)
        try:
            _, files = parser.parse(body, boundary.encode("latin-1"), body.length)
        except RequestEntityTooLarge:   # a form field (not the file) beyond the form-field limit
            raise _too_large(body.limit) from None
        except ValueError as exc:
            raise ImportFileError(f"the upload is not valid multipart/form-data ({str(exc)[:100]})", "file") from None
        finally:
            for part in parts:
                part.close()
        upload = files.get("file")
        if upload is None:
            raise ImportFileError("upload the file as multipart field 'file' (or as the body with ?filename=)", "file")
        name, received = upload.filename or "", upload.stream.path
        suffix = _upload_suffix(name)
    else:
        name = filename or ""
        suffix = _upload_suffix(name)
        received = folder / "body"
        out = UploadFile(received)
        try:
            while chunk := body.read(UPLOAD_CHUNK):
                out.write(chunk)
        finally:
            out.close()
    if received.stat().st_size == 0:
        raise ImportFileError("the uploaded file is empty", "file")
    # the user's file name (it is recorded in the history and audit log), made safe for the file system
    stem = re.sub(r"[^\w.\-]", "_", Path(name).stem)[:80].strip("._") or "upload"
    path = folder / (stem + suffix)
    os.replace(received, path)
    return name, path


@bp.post("/layers/<layer>/import")
def import_file(layer):
    """Check and import a file; rows without coordinates are stored as pending (待定位) and, when a geocoder is
    configured (and ``geocode`` is not false), a geocoding job is started for them (``geocode_job`` in the answer).

    The body (multipart field ``file``, or the file itself with ``?filename=``) is streamed to a temporary folder
    as it arrives, counted: 413 as soon as it passes GEOSERVER_ADMIN_MAX_UPLOAD_BYTES (never a partial import),
    503 if the server cannot store it (a full disk)."""
    check_params(IMPORT.http_names - {"layer"})     # declared in geoserver/curation/operations.py
    m = manager()
    args = request.args.to_dict()
    req = IMPORT.parse({**args, "layer": layer, "file": args.get("filename") or "upload", "who": _who()}, m)
    upload = UploadBody(request.environ, _upload_limit())
    uploads = m.store.scratch_dir / "uploads"
    try:
        uploads.mkdir(parents=True, exist_ok=True)
        folder = tempfile.TemporaryDirectory(dir=uploads, ignore_cleanup_errors=True)
    except OSError as exc:
        raise _disk_error(exc) from exc
    with folder as tmp:
        try:
            _, path = _receive_upload(upload, Path(tmp), req.filename)
        except OSError as exc:
            raise _disk_error(exc) from exc
        try:
            outcome = IMPORT.run(m, replace(req, file=str(path)))
        except OSError as exc:   # a temporary file of the import itself (StoreError covers the layer's files)
            raise _disk_error(exc) from exc
    body = outcome.to_dict()
    body["pending"] = m.service.layer(layer).pending_count
    if not outcome.dry_run and body["pending"] and req.geocode and m.geocoder() is not None:
        body["geocode_job"] = _start_geocode_job(layer, retry_failed=False, dry_run=False)
    return json_response(body, cache="no-store")


@bp.get("/layers/<layer>/export")
def export_layer(layer):
    """The layer as an editable form (CSV or XLSX, Chinese headers, with private fields) for correcting in Excel."""
    check_params(EXPORT.http_names - {"layer"})     # declared in geoserver/curation/operations.py
    req = EXPORT.parse({**request.args.to_dict(), "layer": layer}, manager())
    data, fmt, version = EXPORT.run(manager(), req).data, req.format, req.version
    kind = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = f"{layer}{'-v' + str(version) if version else ''}.{fmt}"
    resp = Response(data, content_type=kind)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


@bp.get("/layers/<layer>/history")
def layer_history(layer):
    check_params(set())
    answer = HISTORY(manager(), {"layer": layer})
    return json_response({"layer": layer, "current": answer.current,
                          "versions": [v.to_dict() for v in reversed(answer.versions)]}, cache="no-store")


@bp.post("/layers/<layer>/rollback")
def layer_rollback(layer):
    check_params(set())
    body = json_body(force=False)
    if not isinstance(body, dict) or "version" not in body:
        raise InvalidQuery('the body must be {"version": N}', "version")
    version = ROLLBACK(manager(), {"layer": layer, "version": str(body["version"]), "who": _who()}).restored
    return json_response({"layer": layer, "version": version.to_dict(),
                          "data_version": manager().service.layer(layer).version}, cache="no-store")


@bp.get("/audit")
def audit():
    """The audit log, newest first, within the token's scope: only the records of layers it may change (operator
    names, addresses and file names of other layers are not its business); 403 for ``?layer=`` outside it."""
    check_params({"layer", "limit"})
    try:
        limit = min(max(int(request.args.get("limit", 100)), 1), 1000)
    except ValueError:
        raise InvalidQuery("limit must be a whole number", "limit") from None
    operator = g.operator
    layer = request.args.get("layer")
    if layer is not None and not operator.may_edit(layer):
        raise Forbidden(f"operator {operator.name!r} may not see the audit log of layer {layer[:60]!r}", "layer")
    scope = None if "*" in operator.layers else frozenset(operator.layers)
    return json_response({"records": manager().store.audit_records(limit, layer, scope)}, cache="no-store")


# --- geocoding: jobs over a layer's pending rows, and an address search for the map --------------------------------
def _start_geocode_job(layer: str, *, retry_failed: bool, dry_run: bool) -> dict:
    """Start a background geocoding job for ``layer`` in this process (one per layer across all workers)."""
    m = manager()
    if m.geocoder() is None:
        raise GeocoderNotConfigured("no geocoder is configured on this server (GEOSERVER_GEOCODER); place pending "
                                    "rows on the map instead", "geocoder")
    handle = m.store.try_lock(f"geocode-{layer}")   # one run per layer across all workers (and replicas)
    if handle is None:
        raise EditConflict(f"a geocoding job for layer {layer!r} is already running; wait for it (or cancel it)",
                           "layer") from None
    store = current_app.extensions["jobs"]
    job_id = store.create("geocode", {"layer": layer, "retry_failed": retry_failed, "dry_run": dry_run,
                                      "operator": _who()})
    app = current_app._get_current_object()
    threading.Thread(target=_run_geocode_job, args=(app, m, store, job_id, handle, layer, _who(), retry_failed,
                                                    dry_run), daemon=True).start()
    url = f"/api/admin/jobs/{job_id}"
    return {"job_id": job_id, "state": "running", "status_url": url}


def _run_geocode_job(app, m: DataManager, store, job_id, handle, layer, who, retry_failed, dry_run) -> None:
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done >= total:
            last[0] = now
            store.update(job_id, progress=round(done / total, 4) if total else 1.0, message=f"{done}/{total}")

    try:
        result = m.geocode(layer, who=who, retry_failed=retry_failed, dry_run=dry_run, progress=progress,
                           should_stop=lambda: store.cancel_requested(job_id))
        state = "done" if not result.stopped else ("cancelled" if store.cancel_requested(job_id) else "stopped")
        final = dict(state=state, progress=1.0, message=result.stopped or "done", result=result.to_dict())
    except GeoServerError as exc:
        final = dict(state="failed", message=exc.message, error=exc.to_dict())
    except Exception:  # a job always ends in a state clients can read
        app.logger.exception("geocoding job %s failed", job_id)
        final = dict(state="failed", message="internal error; it has been logged")
    finally:
        handle.release()   # releases the per-layer lock first: a client seeing the final state may start the next job
    store.update(job_id, **final)


@bp.post("/layers/<layer>/geocode")
def geocode_layer(layer):
    """Geocode the layer's pending rows in the background: 202 with the job's URL."""
    check_params(set())
    body = json_body(force=False) if request.data else {}
    fields = GEOCODE.http_names - {"layer"}     # declared in geoserver/curation/operations.py
    if not isinstance(body, dict) or set(body) - fields:
        raise InvalidQuery('the body may be {"retry_failed": true|false, "dry_run": true|false}', "body")
    req = GEOCODE.parse({**body, "layer": layer, "who": _who()}, manager())
    job = _start_geocode_job(req.layer, retry_failed=req.retry_failed, dry_run=req.dry_run)
    return json_response(job, status=202, cache="no-store", headers={"Location": job["status_url"]})


def _geocode_job(job_id: str) -> dict:
    state = current_app.extensions["jobs"].get(job_id)
    if state.get("kind") != "geocode":
        raise FeatureNotFound(f"no geocoding job {job_id[:40]!r}", "jobId")
    layer = state["request"]["layer"]
    if not g.operator.may_edit(layer):
        raise Forbidden(f"operator {g.operator.name!r} may not see jobs of layer {layer!r}", "layer")
    return state


@bp.get("/jobs/<job_id>")
def geocode_job(job_id):
    check_params(set())
    return json_response(_geocode_job(job_id), cache="no-store")


@bp.delete("/jobs/<job_id>")
def cancel_geocode_job(job_id):
    """Stop a geocoding job: the rows answered so far are stored, the rest stay pending."""
    check_params(set())
    _geocode_job(job_id)
    state = current_app.extensions["jobs"].request_cancel(job_id)
    return json_response({"job_id": job_id, "state": state["state"], "cancel_requested": state["state"] == "running"},
                         status=202, cache="no-store")


@bp.get("/geocode")
def search_address():
    """Where the configured geocoder puts an address (the /admin map's search box): candidates in WGS84 with their
    level, whether they are precise, and the district each lies in."""
    check_params({"q", "district"})
    text = request.args.get("q", "").strip()
    if not text or len(text) > 200:
        raise InvalidQuery("q must be an address or place name of 1 to 200 characters", "q")
    m = manager()
    geocoder = m.geocoder()
    if geocoder is None:
        raise GeocoderNotConfigured("no geocoder is configured on this server (GEOSERVER_GEOCODER): tap the map to "
                                    "place the pin instead", "geocoder")
    from ..core.locate import queries_for
    district = request.args.get("district", "").strip()
    query = queries_for({"address": text, "district": district})[0]
    answer = geocoder.geocode(query)
    ref = m.reference
    wanted = ref.district_index(district) if district else None
    out = []
    for c in answer.candidates:
        k = int(ref.locate(np.array([c.lon]), np.array([c.lat]))[0])
        out.append({**c.to_dict(), "district": ref.districts[k].name if k >= 0 else None,
                    "in_district": None if wanted is None else bool(
                        k == wanted or (k >= 0 and ref.near_district(wanted, c.lon, c.lat)))})
    return json_response({"query": query, "provider": geocoder.name, "cached": answer.cached, "candidates": out},
                         cache="no-store")


@bp.get("/partners")
def partners():
    """Partners' keys (never the keys), layers, rates and usage: requests, features received, requests refused,
    the last change-feed cursor per layer, last seen. Operators of every layer (``*``) only: it is traffic data."""
    check_params(set())
    if "*" not in g.operator.layers:
        raise Forbidden(f"operator {g.operator.name!r} manages some layers only; partner usage is for operators of "
                        "every layer", "Authorization")
    from .partners import usage
    usage().flush()      # this process's counts first
    store = current_app.extensions["geoservice"].storage.partners()
    return json_response({"partners": store.list()}, cache="no-store")
