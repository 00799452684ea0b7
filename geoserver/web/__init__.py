"""The Flask application factory: thin adapters over one GeoService built per process."""

from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from ..core.errors import DataError, FeatureNotFound, GeoServerError, LayerNotFound
from ..core.service import GeoService
from .http import GzipCache, finish, json_response

log = logging.getLogger(__name__)

STATUS = {LayerNotFound: 404, FeatureNotFound: 404, DataError: 500}
MAX_BODY_BYTES = 5 << 20


def create_app(test_config: dict | None = None, service: GeoService | None = None) -> Flask:
    """Build the app. ``test_config`` may set DATA_DIR / LAYERS_DIR; ``service`` reuses a loaded GeoService."""
    app = Flask(__name__, static_folder=None)
    app.config.update(DATA_DIR=None, LAYERS_DIR=None, MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_AS_ASCII=False)
    if test_config:
        app.config.update(test_config)
    app.extensions["geoservice"] = service or GeoService(app.config["DATA_DIR"], app.config["LAYERS_DIR"])
    gzip_cache = GzipCache()

    from . import analysis, api, ogc
    app.register_blueprint(api.bp)
    app.register_blueprint(ogc.bp)
    app.register_blueprint(analysis.bp)

    @app.after_request
    def _finish(resp):
        return finish(resp, gzip_cache)

    @app.errorhandler(GeoServerError)
    def _domain_error(exc: GeoServerError):
        return json_response(exc.to_dict(), status=STATUS.get(type(exc), 400), cache="no-store")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        body = {"code": exc.name.replace(" ", ""), "description": exc.description}
        if exc.code == 404:
            body["description"] = f"no such path {request.path[:100]!r}; start at /ogc or /api/layers"
        headers = dict(exc.get_response().headers)
        headers.pop("Content-Type", None)
        headers.pop("Content-Length", None)
        return json_response(body, status=exc.code or 500, cache="no-store", headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"code": "ServerError", "description": "internal error; it has been logged"},
                             status=500, cache="no-store")

    return app
