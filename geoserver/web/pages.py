"""HTML pages: the interactive planning map (Folium, assets served locally, base tiles from configuration)."""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson
from flask import Blueprint, Response, current_app, request

from ..core.errors import InvalidQuery
from ..core.planning import sites_frame
from ..planning.coverage import PLANNING_PAGE
from .http import check_params, folium_page_csp, json_response, tile_sources

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


MODE_LABELS = {"walk": "步行 Walking", "ebike": "电动车 E-bike", "car": "驾车 Car"}


def tool_config(svc, req) -> dict:
    """What the planning tool's controls need before their first request (the rest comes from the map)."""
    from ..core.coverage import MAX_MINUTES, MAX_RADIUS_M, SPEEDS_KMH
    from ..core.planning import MAX_K
    from ..core.scenario import MAX_CHANGES

    cov = req.coverage
    layers = [svc.point_layer(lid) for lid, layer in svc.layers.items() if layer.index.is_point]
    params = {"layer": cov.layer}
    if cov.catchment.minutes is not None:
        params.update(minutes=cov.catchment.minutes, mode=cov.catchment.mode)
    else:
        params["radius_m"] = cov.catchment.radius_m
    if cov.services:
        params["services"] = ",".join(cov.services)
    return {"params": params,
            "layers": [{"id": layer.spec.id, "title_zh": layer.spec.title_zh, "title_en": layer.spec.title_en,
                        "services": [s for s in svc.vocab.ids if s in layer.spec.services]} for layer in layers],
            "default_radius_m": {layer.spec.id: layer.spec.catchment_radius_m for layer in layers},
            "services": {s.id: {"zh": s.zh, "en": s.en} for s in svc.vocab.services},
            "modes": dict(SPEEDS_KMH), "mode_labels": MODE_LABELS,
            "limits": {"max_radius_m": MAX_RADIUS_M, "max_minutes": MAX_MINUTES, "max_changes": MAX_CHANGES,
                       "max_k": MAX_K},
            "urls": {"data": "/planning/data", "scenario": "/api/coverage/scenario", "siting": "/api/siting",
                     "report": "/api/coverage/scenario/report"}}


def planning_html(svc, payload: dict) -> str:
    """The planning page for plain query arguments (and the tiles configuration); runs in a planning process."""
    from .workers import asset_version
    args, tiles = dict(payload["args"]), payload["tiles"]
    req = PLANNING_PAGE.parse(args, svc)     # without radius_m or minutes: the layer spec's catchment_radius_m
    page = PLANNING_PAGE.run(svc, req)
    result, gaps, k = page.result, list(page.gaps), req.k
    sites = sites_frame(page.plan) if page.plan is not None else None
    tool = {"config": tool_config(svc, req),
            "js_url": f"/static/app/planning.js?v={asset_version('planning.js')}",
            "css_url": f"/static/app/planning.css?v={asset_version('planning.css')}"}
    from ..render.assets import render_html
    from ..render.maps import planning_map
    return svc.cached(("page-html", svc.result_key(result), k, str(tiles), str(tool)), lambda: render_html(
        planning_map(svc, result, gaps, proposed_sites=sites, radius_m=result.catchment.straight_radius_m,
                     tiles=tiles, mode="served", tool=tool)))


def planning_data_body(svc, args: dict) -> bytes:
    """The /planning/data answer (JSON bytes): what the tool redraws; runs in a planning process."""
    from ..render.maps import planning_data
    facilities = args.pop("facilities", "") in ("1", "true")
    args["k"] = "0"
    req = PLANNING_PAGE.parse(args, svc)
    page = PLANNING_PAGE.run(svc, req)
    return orjson.dumps(planning_data(svc, page.result, page.gaps, facilities=facilities))


@bp.get("/planning")
def planning():
    """Coverage of a layer with its gaps, and (k > 0) k proposed new suburban sites from the fast solver; with the
    planning tool's controls (static/app/planning.js)."""
    check_params(PLANNING_PAGE.http_names)
    from .heavy import client_of
    html = current_app.extensions["planning"].run(
        "planning", {"args": request.args.to_dict(), "tiles": tiles_config()}, client_of(request))
    tiles = tiles_config()
    csp = folium_page_csp(tile_sources(tiles["url"] if tiles else None))
    return Response(html, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "Content-Security-Policy": csp})


@bp.get("/planning/data")
def planning_data():
    """The planning tool's data for its parameters (the query arguments of /planning, k ignored, plus
    facilities=1 for the facility markers): totals, district styles, heat points, gaps."""
    check_params({*PLANNING_PAGE.http_names, "facilities"})
    if request.args.get("facilities", "0") not in ("0", "1", "true", "false"):
        raise InvalidQuery("facilities must be 0 or 1", "facilities")
    from .heavy import client_of
    body = current_app.extensions["planning"].run("planning_data", request.args.to_dict(), client_of(request))
    return json_response(body, cache="no-cache")
