"""WSGI entry point for servers given a module path: ``geoserver.wsgi:app`` (reads GEOSERVER_DATA_DIR).

``geoserver serve`` calls ``preload`` before the workers fork, so the layers are loaded once and shared
copy-on-write; other servers build the app on the first request of each worker.
"""

import os
import weakref

from .web import create_app

_app = None


def preload(service=None):
    """Build the app now (in the server's main process). Each worker forked from it starts following the store
    (a PostGIS replica's LISTEN thread) as soon as it is born, not at its first request: a worker that had no
    request yet when the database went away would otherwise serve the version it was forked with."""
    global _app
    _app = create_app(service=service)
    svc = weakref.ref(_app.extensions["geoservice"])
    os.register_at_fork(after_in_child=lambda: _follow(svc))
    return _app


def _follow(service_ref) -> None:
    svc = service_ref()
    if svc is not None:
        svc.follow()


def app(environ, start_response):
    if _app is None:
        preload()
    return _app(environ, start_response)
