"""The Flask application factory: thin adapters over one GeoService built per process."""

from __future__ import annotations

import logging
import os

from flask import Flask, abort, request
from werkzeug.exceptions import HTTPException

from ..core.errors import GeoServerError
from ..core.service import GeoService
from .fastlane import FastLane, enabled as fast_lane_enabled
from .http import GeoRequest, GzipCache, finish, json_response, static_file

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 << 20


def create_app(test_config: dict | None = None, service: GeoService | None = None) -> Flask:
    """Build the app. ``test_config`` may set DATA_DIR / LAYERS_DIR; ``service`` reuses a loaded GeoService."""
    app = Flask(__name__, static_folder=None)
    app.request_class = GeoRequest   # query parameters looked up without an exception per absent name
    app.config.update(DATA_DIR=None, LAYERS_DIR=None, JOBS_DIR=None, MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
                      TILES_URL=os.environ.get("GEOSERVER_TILES_URL"),
                      TILES_ATTRIBUTION=os.environ.get("GEOSERVER_TILES_ATTRIBUTION"),
                      TILES_SUBDOMAINS=os.environ.get("GEOSERVER_TILES_SUBDOMAINS") or "abc",
                      # Amap (GCJ-02) base map for the workers' map at /; none unless configured
                      AMAP_TILES_URL=os.environ.get("GEOSERVER_AMAP_TILES_URL"),
                      AMAP_TILES_ATTRIBUTION=os.environ.get("GEOSERVER_AMAP_TILES_ATTRIBUTION"),
                      AMAP_TILES_SUBDOMAINS=os.environ.get("GEOSERVER_AMAP_TILES_SUBDOMAINS") or "1234",
                      # base maps offered, first the default (tianditu, amap, osm, none): see workers.base_maps
                      BASEMAPS=os.environ.get("GEOSERVER_BASEMAPS"),
                      TIANDITU_KEY=os.environ.get("GEOSERVER_TIANDITU_KEY"),
                      # admin API: browser origins allowed to write (comma-separated); none by default
                      ADMIN_ORIGINS=os.environ.get("GEOSERVER_ADMIN_ORIGINS", ""),
                      ADMIN_TOKENS_FILE=os.environ.get("GEOSERVER_TOKENS_FILE"),
                      ADMIN_MAX_UPLOAD_BYTES=int(os.environ.get("GEOSERVER_ADMIN_MAX_UPLOAD_BYTES", 20 << 20)),
                      # geocoding of pending rows (admin only): none by default (offline, intranet)
                      GEOCODER=os.environ.get("GEOSERVER_GEOCODER"),
                      GEOCODER_KEY=os.environ.get("GEOSERVER_GEOCODER_KEY"),
                      GEOCODER_URL=os.environ.get("GEOSERVER_GEOCODER_URL"),
                      GEOCODER_QPS=os.environ.get("GEOSERVER_GEOCODER_QPS"),
                      GEOCODER_TIMEOUT_S=os.environ.get("GEOSERVER_GEOCODER_TIMEOUT_S"),
                      # the hot reads answered without Flask's request machinery (fastlane.py); same answers
                      FAST_LANE=fast_lane_enabled())
    if test_config:
        app.config.update(test_config)
    app.extensions["geoservice"] = service or GeoService(app.config["DATA_DIR"], app.config["LAYERS_DIR"])
    gzip_cache = GzipCache()

    storage = app.extensions["geoservice"].storage
    app.extensions["jobs"] = storage.jobs(app.config.get("JOBS_DIR"))
    app.extensions["jobs_locator"] = storage.jobs_locator(app.config.get("JOBS_DIR"))
    # planning work (coverage, gaps, /planning, siting) away from the request threads, behind admission limits
    from .heavy import Limits, PlanningPool
    app.extensions["planning"] = PlanningPool(app.extensions["geoservice"],
                                              Limits.from_env(**(app.config.get("PLANNING_LIMITS") or {})))

    from . import admin, analysis, api, ogc, pages, siting, tiles, workers
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(ogc.bp)
    app.register_blueprint(tiles.bp)
    app.register_blueprint(analysis.bp)
    app.register_blueprint(siting.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(workers.bp)
    from . import feed, partners
    app.register_blueprint(feed.bp)
    partners.install(app)

    @app.get("/static/vendor/<path:path>")
    def vendor_asset(path):
        """Leaflet and plugins installed from the npm registry (static/node_modules), served locally: no CDN."""
        from ..render.assets import asset_file
        found = asset_file(path)
        if found is None:
            abort(404)
        return static_file(found, max_age=86400)  # text assets gzipped (once, in memory)

    @app.before_request
    def _pick_up_new_data():
        """A new version of a layer (an import, an edit in another worker or replica) is loaded without a restart."""
        svc = app.extensions["geoservice"]
        svc.follow()    # once per process: a PostGIS store's watcher thread (after the fork, in each worker)
        svc.refresh()

    @app.after_request
    def _finish(resp):
        resp = finish(resp, gzip_cache)
        if request.path.startswith("/api/admin"):
            resp = admin.admin_cors(resp)
        return resp

    @app.errorhandler(GeoServerError)
    def _domain_error(exc: GeoServerError):
        """Statuses and headers (Retry-After when planning capacity is taken) from the one map in errors.py."""
        from .errors import error_response
        return error_response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        body = {"code": exc.name.replace(" ", ""), "description": exc.description}
        if exc.code == 404:
            body["description"] = f"no such path {request.path[:100]!r}; start at /ogc or /api/layers"
        if exc.code == 413:
            body["description"] = (f"the request body is larger than this endpoint accepts "
                                   f"({request.max_content_length:,} bytes)")
        headers = dict(exc.get_response().headers)
        headers.pop("Content-Type", None)
        headers.pop("Content-Length", None)
        return json_response(body, status=exc.code or 500, cache="no-store", headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_response({"code": "ServerError", "description": "internal error; it has been logged"},
                             status=500, cache="no-store")

    if app.config["FAST_LANE"]:
        app.wsgi_app = FastLane(app.wsgi_app, app.extensions["geoservice"], gzip_cache)
    return app
