"""The service API: health, layer summaries and nearest-service queries (single and batch)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..core import query as q
from ..core.errors import GeoServerError, InvalidQuery, LayerNotFound
from .http import GEOJSON, check_params, etag_for, json_body, json_response

bp = Blueprint("api", __name__)

NEAREST_PARAMS = {"lon", "lat", "layer", "k", "max_distance_m", "services", "open_now", "at", "crs"}
MAX_BATCH_POINTS = 10_000
#: The most features one batch answer may hold (points x k): about 30 MB of JSON.
MAX_BATCH_FEATURES = 50_000


def service():
    return current_app.extensions["geoservice"]


@bp.get("/healthz")
def healthz():
    svc = service()
    return json_response({"status": "ok", "layers": {lid: layer.count for lid, layer in svc.layers.items()}},
                         cache="no-store")


@bp.get("/api/layers")
def layers():
    svc = service()
    out = []
    for lid, layer in svc.layers.items():
        spec = layer.spec
        out.append({
            "id": lid, "title_zh": spec.title_zh, "title_en": spec.title_en, "description": spec.description,
            "geometry_type": spec.geometry_type, "count": layer.count, "data_version": layer.version,
            "catchment_radius_m": spec.catchment_radius_m, "marker": spec.marker,
            "sample_data": layer.has_sample_data,
            "fields": [{"name": f.name, "type": f.type, "title_zh": f.title_zh, "title_en": f.title_en}
                       for f in spec.public_fields],
            "services": [s for s in svc.vocab.to_dict() if s["id"] in spec.services],
        })
    return json_response({"layers": out, "services": svc.vocab.to_dict()},
                         etag=etag_for("layers", *(lay.version for lay in svc.layers.values())))


def _point_layer(svc, layer_id):
    try:
        return svc.point_layer(layer_id)
    except LayerNotFound as exc:
        raise InvalidQuery(exc.message, "layer") from None


def _collection(features, query_point, extra=None) -> dict:
    out = {"type": "FeatureCollection", "features": features, "numberReturned": len(features),
           "query": query_point}
    out.update(extra or {})
    return out


@bp.get("/api/nearest")
def nearest_get():
    svc = service()
    args = request.args
    check_params(NEAREST_PARAMS)
    opts = q.nearest_options(args, svc.vocab)
    _point_layer(svc, opts["layer"])
    lon, lat = q.point(q.text(args, "lon"), q.text(args, "lat"), opts["datum"])
    _, features = svc.nearest(q.NearestQuery(lon=lon, lat=lat, **opts))
    qp = {"lon": float(args["lon"]), "lat": float(args["lat"]), "crs": opts["datum"],
          "at": opts["at"].isoformat(timespec="seconds")}
    return json_response(_collection(features, qp), content_type=GEOJSON, cache="no-cache")


@bp.post("/api/nearest")
def nearest_batch():
    """Many points in one request: ``{"points": [[lon, lat] | {"id", "lon", "lat"}, ...], ...options}``.

    Each point gets its own FeatureCollection; a bad point gets an ``error`` instead, the others are answered.
    """
    svc = service()
    body = json_body()
    if not isinstance(body, dict):
        raise InvalidQuery("the body must be a JSON object such as "
                           '{"layer": "stations", "k": 3, "points": [[121.47, 31.23]]}', "body")
    unknown = sorted(set(body) - (NEAREST_PARAMS - {"lon", "lat"}) - {"points"})
    if unknown:
        raise InvalidQuery(f"unknown field {str(unknown[0])[:40]!r} in the body", str(unknown[0])[:40])
    points = body.get("points")
    if not isinstance(points, list) or not points:
        raise InvalidQuery("points must be a non-empty list of [lon, lat] or {id, lon, lat}", "points")
    if len(points) > MAX_BATCH_POINTS:
        raise InvalidQuery(f"at most {MAX_BATCH_POINTS} points per request, got {len(points)}", "points")
    opts = q.nearest_options({k: v for k, v in body.items() if k != "points"}, svc.vocab)
    _point_layer(svc, opts["layer"])
    if len(points) * opts["k"] > MAX_BATCH_FEATURES:
        raise InvalidQuery(f"{len(points):,} points x k={opts['k']} asks for {len(points) * opts['k']:,} features, more "
                           f"than the {MAX_BATCH_FEATURES:,} one answer may hold; send at most "
                           f"{MAX_BATCH_FEATURES // opts['k']:,} points per request with this k, or a smaller k", "k")
    results = []
    for i, item in enumerate(points):
        results.append(_answer_one(svc, i, item, opts))
    return json_response({"layer": opts["layer"], "k": opts["k"], "crs": opts["datum"],
                          "at": opts["at"].isoformat(timespec="seconds"), "results": results}, cache="no-store")


def _answer_one(svc, i: int, item, opts) -> dict:
    pid = None
    try:
        if isinstance(item, dict):
            pid = item.get("id")
            raw_lon, raw_lat = item.get("lon"), item.get("lat")
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            raw_lon, raw_lat = item
        else:
            raise InvalidQuery("each point must be [lon, lat] or {id, lon, lat}", f"points[{i}]")
        lon, lat = q.point(raw_lon, raw_lat, opts["datum"], f"points[{i}].lon", f"points[{i}].lat")
        _, features = svc.nearest(q.NearestQuery(lon=lon, lat=lat, **opts))
        return _collection(features, {"lon": float(raw_lon), "lat": float(raw_lat)}, {"index": i, "id": pid})
    except GeoServerError as exc:
        return {"index": i, "id": pid if isinstance(pid, (str, int)) else None, "error": exc.to_dict()}
