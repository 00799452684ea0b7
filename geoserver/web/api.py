"""The service API: health, layer summaries and nearest-service queries (single and batch)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..core import query as q
from ..core.errors import GeoServerError, InvalidQuery
from ..serving.nearest import NEAREST, NEAREST_BATCH
from .http import GEOJSON, check_params, etag_for, feature_collection, json_body, json_response

bp = Blueprint("api", __name__)

NEAREST_PARAMS = NEAREST.http_names


def service():
    return current_app.extensions["geoservice"]


@bp.get("/healthz")
def healthz():
    """200 while the server can answer reads. ``degraded`` (still 200: reads go on from memory) when the shared
    store is unreachable: ``reason`` says why; writes answer 503 until it is back."""
    svc = service()
    health = svc.storage.health()
    body = {**health, "storage": svc.storage.kind,
            "layers": {lid: layer.count for lid, layer in svc.layers.items()}}
    return json_response(body, cache="no-store")


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
    req = NEAREST.parse(args, svc)      # parameters declared in geoserver/serving/nearest.py
    opts, lon, lat = req.options.as_dict(), req.lon, req.lat
    _, features = svc.nearest_json(q.NearestQuery(lon=lon, lat=lat, **opts))
    qp = {"lon": float(args["lon"]), "lat": float(args["lat"]), "crs": opts["datum"],
          "at": opts["at"].isoformat(timespec="seconds")}
    return json_response(feature_collection(features, {"numberReturned": len(features), "query": qp}),
                         content_type=GEOJSON, cache="no-cache")


@bp.post("/api/nearest")
def nearest_batch():
    """Many points in one request: ``{"points": [[lon, lat] | {"id", "lon", "lat"}, ...], ...options}``.

    Each point gets its own FeatureCollection; a bad point gets an ``error`` instead, the others are answered.
    """
    svc = service()
    body = json_body()
    req = NEAREST_BATCH.parse(body, svc)     # fields declared in geoserver/serving/nearest.py
    points, opts = req.points, req.options.as_dict()
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
