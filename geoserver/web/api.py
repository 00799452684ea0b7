"""The service API: health, layer summaries and nearest-service queries (single and batch)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..serving.nearest import NEAREST, NEAREST_BATCH
from .http import (GEOJSON, Answer, answer_response, check_params, etag_for, feature_collection, json_body,
                   json_response)

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


def nearest_answer(svc, args) -> Answer:
    """``GET /api/nearest`` for query arguments ``args`` (also answered by the fast lane, fastlane.py)."""
    check_params(NEAREST_PARAMS, args=args)
    req = NEAREST.parse(args, svc)      # parameters declared in geoserver/serving/nearest.py
    opts = req.options
    _, features = svc.nearest_json(opts.query(req.lon, req.lat))
    qp = {"lon": req.given[0], "lat": req.given[1], "crs": opts.datum, "at": opts.at.isoformat(timespec="seconds")}
    return Answer(feature_collection(features, {"numberReturned": len(features), "query": qp}), GEOJSON, "no-cache")


@bp.get("/api/nearest")
def nearest_get():
    return answer_response(nearest_answer(service(), request.args))


@bp.post("/api/nearest")
def nearest_batch():
    """Many points in one request: ``{"points": [[lon, lat] | {"id", "lon", "lat"}, ...], ...options}``.

    Each point gets its own FeatureCollection; a bad point gets an ``error`` instead, the others are answered.
    """
    svc = service()
    req = NEAREST_BATCH.parse(json_body(), svc)     # fields declared in geoserver/serving/nearest.py
    return json_response(NEAREST_BATCH.run(svc, req).to_dict(), cache="no-store")
