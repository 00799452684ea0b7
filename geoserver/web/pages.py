"""HTML pages: the interactive planning map (Folium, assets served locally, base tiles from configuration)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from ..core import query as q
from ..core.catchment_query import COVERAGE_PARAMS
from ..core.errors import InvalidQuery
from ..core.planning import build_problem, parse_siting_request, sites_frame, solve
from .analysis import coverage_from_args
from .http import check_params

bp = Blueprint("pages", __name__)

MAX_PAGE_K = 50


def tiles_config() -> dict | None:
    """Base-map tiles from configuration (TILES_URL / TILES_ATTRIBUTION, or $GEOSERVER_TILES_*); None: no tiles."""
    url = current_app.config.get("TILES_URL")
    if not url:
        return None
    return {"url": url, "attribution": current_app.config.get("TILES_ATTRIBUTION") or "", "name": "底图 Base map"}


@bp.get("/planning")
def planning():
    """Coverage of a layer with its gaps, and (k > 0) k proposed new suburban sites from the fast solver."""
    check_params(COVERAGE_PARAMS | {"k"})
    svc = current_app.extensions["geoservice"]
    args = request.args.to_dict()
    if not args.get("minutes"):
        args.setdefault("radius_m", "1000")
    k = q.integer(q.text(args, "k", "10"), "k", 0, MAX_PAGE_K)
    layer, result = coverage_from_args(args)
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
    html = svc.cached(("page-html", svc.result_key(result), k, str(tiles_config())), lambda: render_html(planning_map(
        svc, result, gaps, proposed_sites=sites, radius_m=result.catchment.straight_radius_m, tiles=tiles_config(),
        mode="served")))
    return Response(html, content_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})
