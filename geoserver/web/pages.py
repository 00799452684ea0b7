"""HTML pages: the interactive planning map (Folium, assets served locally, base tiles from configuration)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request

from ..core import query as q
from ..core.catchment_query import COVERAGE_PARAMS
from ..core.errors import InvalidQuery
from ..core.planning import build_problem, parse_siting_request, sites_frame, solve
from .analysis import coverage_from_args
from .http import check_params, folium_page_csp, tile_sources

bp = Blueprint("pages", __name__)

MAX_PAGE_K = 50


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
    if not args.get("minutes"):
        args.setdefault("radius_m", "1000")
    k = q.integer(q.text(args, "k", "10"), "k", 0, MAX_PAGE_K)
    layer, result = coverage_from_args(svc, args)
    gaps = svc.gaps(result)
    sites = None
    if k:
        if result.catchment.network is not None:
            raise InvalidQuery("the planning page proposes sites with straight-line catchments; drop network", "network")
        body = {key: args[key] for key in ("layer", "radius_m", "minutes", "mode", "speed_kmh", "services", "open_at",
                                           "demand", "cell_m") if args.get(key)}
        body["k"] = k
        req = parse_siting_request(body, svc)
        plan = svc.cached(("page-plan", req), lambda: solve(svc, build_problem(svc, req)))
        sites = sites_frame(plan)
    from ..render.assets import render_html
    from ..render.maps import planning_map
    return svc.cached(("page-html", svc.result_key(result), k, str(tiles)), lambda: render_html(planning_map(
        svc, result, gaps, proposed_sites=sites, radius_m=result.catchment.straight_radius_m, tiles=tiles,
        mode="served")))


@bp.get("/planning")
def planning():
    """Coverage of a layer with its gaps, and (k > 0) k proposed new suburban sites from the fast solver."""
    check_params(COVERAGE_PARAMS | {"k"})
    from .heavy import client_of
    html = current_app.extensions["planning"].run(
        "planning", {"args": request.args.to_dict(), "tiles": tiles_config()}, client_of(request))
    tiles = tiles_config()
    csp = folium_page_csp(tile_sources(tiles["url"] if tiles else None))
    return Response(html, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp})
