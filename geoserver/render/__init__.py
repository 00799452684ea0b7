"""Rendering: Folium maps with local (npm-installed) web assets, and self-contained HTML/CSV/GeoJSON reports.

This package may import folium, branca and matplotlib; ``geoserver.core`` never imports it.

* :mod:`.assets` — make a folium Map load Leaflet and its plugins from ``static/node_modules`` (``served`` mode,
  URLs under ``/static/vendor/``) or embed them in the HTML (``inline`` mode); ``asset_file`` for the web route.
* :mod:`.maps` — ``planning_map``: coverage choropleth, uncovered-demand heat, facilities, proposed sites, gaps.
* :mod:`.report` — ``write_coverage_report`` and ``write_plan_report`` (atomic directory writes).
"""

from .assets import AssetError, asset_file, external_references, localize, render_html
from .maps import planning_map

__all__ = ["AssetError", "asset_file", "external_references", "localize", "planning_map", "render_html"]
