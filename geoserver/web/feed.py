"""The partners' change feed (geoserver/serving/feed.py): a layer's snapshot with its cursor, then the changes.

``GET /api/feed/{layer}/snapshot?crs=wgs84|gcj02|bd09&format=geojson|csv`` — every public feature and the cursor
the snapshot is consistent with (``cursor`` member, ``X-Feed-Cursor`` header; ETag per data version and datum).
``GET /api/feed/{layer}/changes?since=<cursor>&crs=…&limit=`` — the changes after the cursor, in order, with
``next`` and ``complete``; 410 when the cursor is older than the kept history.
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, request

from ..core import query as q
from ..core.errors import InvalidQuery
from ..serving.feed import FEED_DEFAULT_LIMIT, FEED_MAX_LIMIT, ChangeFeed, Cursor
from .partners import note
from .http import GEOJSON, check_params, etag_for, feature_collection, json_response, not_modified

bp = Blueprint("feed", __name__, url_prefix="/api/feed")
SNAPSHOT_FORMATS = ("geojson", "csv")


def feed() -> ChangeFeed:
    found = current_app.extensions.get("feed")
    if found is None:
        found = current_app.extensions["feed"] = ChangeFeed(current_app.extensions["geoservice"])
    return found


@bp.get("/<layer_id>/changes")
def changes(layer_id):
    check_params({"since", "crs", "limit"})
    svc = current_app.extensions["geoservice"]
    svc.layer(layer_id)                       # 404 for an unknown layer before anything else
    since = Cursor.parse(request.args.get("since"))
    datum = q.datum(request.args.get("crs"))
    limit = q.integer(request.args.get("limit", FEED_DEFAULT_LIMIT), "limit", 1, FEED_MAX_LIMIT)
    body = feed().changes(layer_id, since, limit, datum)
    note(len(body["changes"]), (layer_id, body["next"]))
    body["links"] = [{"rel": "next", "href": f"{request.base_url}?since={body['next']}&crs={datum}&limit={limit}"},
                     {"rel": "snapshot", "href": request.base_url.rsplit("/", 1)[0] + f"/snapshot?crs={datum}"}]
    return json_response(body, cache="no-cache")


@bp.get("/<layer_id>/snapshot")
def snapshot(layer_id):
    check_params({"crs", "format"})
    svc = current_app.extensions["geoservice"]
    layer = svc.layer(layer_id)
    datum = q.datum(request.args.get("crs"))
    fmt = request.args.get("format", "geojson")
    if fmt not in SNAPSHOT_FORMATS:
        raise InvalidQuery(f"format must be one of {', '.join(SNAPSHOT_FORMATS)}", "format")
    cursor = str(feed().current_cursor(layer))
    etag = etag_for("feed-snapshot", layer.version, layer_id, datum, fmt, cursor)
    headers = {"X-Feed-Cursor": cursor, "ETag": etag}
    if not_modified(etag):
        return Response(status=304, headers=headers)
    note(layer.count, (layer_id, cursor))
    if fmt == "csv":
        return Response(_csv(layer, datum), content_type="text/csv; charset=utf-8",
                        headers={**headers, "Cache-Control": "no-cache",
                                 "Content-Disposition": f'attachment; filename="{layer_id}-{cursor}.csv"'})
    body = feature_collection(layer.fragments(datum), {
        "layer": layer_id, "crs": datum, "cursor": cursor, "numberReturned": layer.count,
        "sample_data": layer.has_sample_data,
        "changes": request.base_url.rsplit("/", 1)[0] + f"/changes?since={cursor}&crs={datum}"})
    return json_response(body, content_type=GEOJSON, cache="no-cache", headers=headers)


def _csv(layer, datum: str) -> bytes:
    """Every public feature as a CSV row: id, lon, lat (points; in ``datum``), then the public properties (lists
    joined with ';'); UTF-8 with a BOM so spreadsheet programs read the Chinese right."""
    names = [n for n in dict.fromkeys(k for p in layer.properties for k in p) if n != "id"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "lon", "lat", *names])
    coords = layer.point_coordinates(datum) if layer.index.is_point else None
    for pos, props in enumerate(layer.properties):
        lon, lat = coords[pos] if coords else (None, None)
        row = [layer.ids[pos], lon, lat]
        for n in names:
            v = props.get(n)
            row.append(";".join(map(str, v)) if isinstance(v, (list, tuple)) else ("" if v is None else v))
        writer.writerow(row)
    return ("\ufeff" + out.getvalue()).encode("utf-8")
