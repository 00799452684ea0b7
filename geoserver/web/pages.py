"""HTML pages: the interactive planning map (Folium, assets served locally, base tiles from configuration)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request

from ..core.planning import sites_frame
from ..planning.coverage import PLANNING_PAGE
from .http import check_params, folium_page_csp, tile_sources

bp = Blueprint("pages", __name__)


def tiles_config() -> dict | None:
    """The planning page's base map: the first WGS84 one the workers' map offers (Folium draws in WGS84); None when
    tiles are off."""
    from .workers import base_maps
    first = next((b for b in base_maps() if b["url"] and b["crs"] == "wgs84"), None)
    if first is None:
        return None
    url = first["url"]   # Folium's tiles use Leaflet's default subdomains (abc); other providers get their first one
    if "{s}" in url and first["subdomains"] and first["subdomains"] != "abc":
        url = url.replace("{s}", first["subdomains"][0])
    host = urlsplit(url).hostname or "the configured tile server"
    return {"url": url, "attribution": first["attribution"] or f"底图 Base map: {host}", "name": "底图 Base map"}


def planning_html(svc, payload: dict) -> str:
    """The planning page for plain query arguments (and the tiles configuration); runs in a planning process."""
    args, tiles = dict(payload["args"]), payload["tiles"]
    req = PLANNING_PAGE.parse(args, svc)     # without radius_m or minutes: the layer spec's catchment_radius_m
    page = PLANNING_PAGE.run(svc, req)
    result, gaps, k = page.result, list(page.gaps), req.k
    sites = sites_frame(page.plan) if page.plan is not None else None
    from ..render.assets import render_html
    from ..render.maps import planning_map
    return svc.cached(("page-html", svc.result_key(result), k, str(tiles)), lambda: render_html(planning_map(
        svc, result, gaps, proposed_sites=sites, radius_m=result.catchment.straight_radius_m, tiles=tiles,
        mode="served")))


@bp.get("/planning")
def planning():
    """Coverage of a layer with its gaps, and (k > 0) k proposed new suburban sites from the fast solver."""
    check_params(PLANNING_PAGE.http_names)
    from .heavy import client_of
    html = current_app.extensions["planning"].run(
        "planning", {"args": request.args.to_dict(), "tiles": tiles_config()}, client_of(request))
    tiles = tiles_config()
    csp = folium_page_csp(tile_sources(tiles["url"] if tiles else None))
    return Response(html, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp})
