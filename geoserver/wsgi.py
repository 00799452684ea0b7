"""WSGI entry point for servers given a module path: ``geoserver.wsgi:app`` (reads GEOSERVER_DATA_DIR).

``geoserver serve`` calls ``preload`` before the workers fork, so the layers are loaded once and shared
copy-on-write; other servers build the app on the first request of each worker.
"""

from .web import create_app

_app = None


def preload(service=None):
    """Build the app now (in the server's main process)."""
    global _app
    _app = create_app(service=service)
    return _app


def app(environ, start_response):
    if _app is None:
        preload()
    return _app(environ, start_response)
