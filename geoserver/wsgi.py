"""WSGI entry point for servers given a module path (``geoserver.wsgi:app``); reads GEOSERVER_DATA_DIR."""

from .web import create_app

app = create_app()
