"""The report to hand on: ``geoserver report coverage`` and ``geoserver plan`` with the bundled data write
report.pdf beside report.html — A4 on every page, page numbers, the executive summary and the district table in
Chinese, fonts embedded, the static map in it — and keep report.html small. Checked with poppler's pdfinfo,
pdftotext, pdffonts and pdfimages on the real files; each report is written once per module."""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.render.assets import external_references
from geoserver.render.pdf import PdfError, write_pdf

pytestmark = pytest.mark.external

A4_PTS = ("595.28", "841.89")
HTML_GZIP_LIMIT = 500_000


def _poppler(tool: str, *args) -> str:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: install poppler-utils (scripts/setup.sh --with-test-tools)")
    return subprocess.run([tool, *map(str, args)], check=True, capture_output=True, text=True).stdout


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, env={"GEOSERVER_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def coverage_report(tmp_path_factory):
    """The stations' coverage at 1,000 m on the default 200 m grid, as a planner makes it."""
    out = tmp_path_factory.mktemp("pdf") / "coverage"
    printed = _run(["report", "coverage", "--layer", "stations", "--radius-m", "1000", "--out", str(out)])
    assert f"wrote {out / 'report.pdf'}" in printed
    return out


@pytest.fixture(scope="module")
def plan_report(tmp_path_factory):
    """Three new stations (a small k keeps the module quick; everything else is the default plan)."""
    out = tmp_path_factory.mktemp("pdf") / "plan"
    printed = _run(["plan", "--layer", "stations", "--k", "3", "--radius-m", "1000", "--out", str(out)])
    assert "3 new sites" in printed and f"wrote {out / 'report.pdf'}" in printed
    return out


def _pages(pdf) -> int:
    return int(re.search(r"^Pages:\s+(\d+)$", _poppler("pdfinfo", pdf), re.M).group(1))


def _page_texts(pdf) -> list[str]:
    return [_poppler("pdftotext", "-layout", "-f", i, "-l", i, pdf, "-") for i in range(1, _pages(pdf) + 1)]


@pytest.mark.parametrize("report", ["coverage_report", "plan_report"])
def test_pdf_is_a4_with_page_numbers_and_embedded_fonts(request, report):
    pdf = request.getfixturevalue(report) / "report.pdf"
    pages = _pages(pdf)
    assert 4 <= pages <= 12
    sizes = re.findall(r"^Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", _poppler("pdfinfo", "-f", 1, "-l", pages, pdf),
                       re.M)
    assert len(sizes) == pages and {(f"{float(w):.2f}", f"{float(h):.2f}") for w, h in sizes} == {A4_PTS}
    for number, text in enumerate(_page_texts(pdf), start=1):
        assert f"第 {number} 页 / 共 {pages} 页" in text, number
    fonts = _poppler("pdffonts", pdf).splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts   # the emb column
    assert any(re.search(r"CJK|WenQuanYi|Hei", line) for line in fonts), fonts   # a Chinese font is among them
    # nothing runs off the page: every word ends inside the right margin (12 mm)
    right = [float(x) for x in re.findall(r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="([\d.]+)"',
                                          _poppler("pdftotext", "-bbox", pdf, "-"))]
    assert len(right) > 1000 and max(right) <= 595.28 - 12 * 72 / 25.4 + 0.5, max(right)
    images = _poppler("pdfimages", "-list", pdf).splitlines()[2:]
    assert any(int(line.split()[3]) >= 1000 for line in images), images   # the static map, about 1,100 px wide


def test_coverage_pdf_says_what_to_do_in_chinese_first(coverage_report):
    summary = json.loads((coverage_report / "summary.json").read_text(encoding="utf-8"))
    assert summary["totals"]["covered_pct"] == 84.54   # the bundled sample stations at 1,000 m (README)
    text = "\n".join(_page_texts(coverage_report / "report.pdf"))
    first = _page_texts(coverage_report / "report.pdf")[0]
    assert "执行摘要 Executive summary" in first and "全市 84.54 % 的人口" in first
    assert first.index("执行摘要") < first.index("Within 1,000 m in a straight line")   # Chinese first, English below
    assert "最值得先做的 3 件事" in first and "示例数据" in first
    gap = json.loads((coverage_report / "gaps.geojson").read_text(encoding="utf-8"))["features"][0]["properties"]
    assert f"东经 {gap['site_lon']:.5f}°、北纬 {gap['site_lat']:.5f}°" in first
    # the district table is all there: every district, the last column of the last row and the total
    with open(coverage_report / "districts.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        line = next(line for line in text.splitlines() if line.strip().startswith(row["district"]) and "%" in line)
        assert f"{float(row['covered_pct']):.2f} %" in line and f"{float(row['p90_distance_m']):,.0f}" in line
    assert re.search(r"浦东新区\s+Pudong New Area\s+城郊兼有 mixed", text)
    assert re.search(r"合计\s+Shanghai\s+24,870,895\s+21,027,050\s+3,843,845\s+84\.54 %", text)
    for heading in ("方法 Method", "局限 Limitations", "数据来源 Data sources", "各区 Districts"):
        assert heading in text, heading


def test_plan_pdf_ranks_the_sites(plan_report):
    summary = json.loads((plan_report / "summary.json").read_text(encoding="utf-8"))
    before, after = summary["before"]["totals"]["covered_pct"], summary["after"]["totals"]["covered_pct"]
    assert before == 84.54 and after > before
    with open(plan_report / "proposed_sites.csv", encoding="utf-8-sig", newline="") as f:
        sites = list(csv.DictReader(f))
    assert [s["rank"] for s in sites] == ["1", "2", "3"]
    first = _page_texts(plan_report / "report.pdf")[0]
    assert "建议新增 3 个工会驿站" in first and f"由 84.54 % 提高到 {after:.2f} %" in first
    gain = sum(float(s["new_coverage"]) for s in sites)
    for s in sites:
        assert (f"第 {s['rank']} 号：{s['district_name']}，东经 {float(s['lon']):.5f}°、北纬 {float(s['lat']):.5f}°：新覆盖约 "
                f"{float(s['new_coverage']):,.0f} 人，占新增覆盖的 {100 * float(s['new_coverage']) / gain:.1f} %") in first
    assert "合计等于全部新增覆盖" in first and "规划后仍然最大的 3 个缺口" in first


@pytest.mark.parametrize("report", ["coverage_report", "plan_report"])
def test_report_html_is_small_and_self_contained(request, report):
    folder = request.getfixturevalue(report)
    raw = (folder / "report.html").read_bytes()
    assert len(gzip.compress(raw, 6)) < HTML_GZIP_LIMIT
    assert b"<iframe" in raw and b'class="static-map print-only"' in raw
    assert external_references(raw.decode("utf-8")) == []


@pytest.mark.parametrize("report", ["coverage_report", "plan_report"])
def test_csv_headers_machine_and_people(request, report):
    """districts.csv keeps the machine column names; districts_zh.csv heads the same columns Chinese first."""
    folder = request.getfixturevalue(report)
    with open(folder / "districts.csv", encoding="utf-8-sig", newline="") as f:
        machine = next(csv.reader(f))
    with open(folder / "districts_zh.csv", encoding="utf-8-sig", newline="") as f:
        people = next(csv.reader(f))
    assert machine[:4] == ["district_code", "district", "district_en", "zone"]
    assert people[:4] == ["区划代码 District code", "区 District", "英文名 English name", "类型 Zone"]
    assert len(people) == len(machine) and all(re.match(r"[^A-Za-z]*[\u4e00-\u9fff]", h) for h in people), people


def test_no_pdf_flag(tmp_path):
    out = tmp_path / "report"
    printed = _run(["report", "coverage", "--cell-m", "2000", "--no-pdf", "--out", str(out)])
    assert "report.pdf" not in printed and (out / "report.html").is_file() and not (out / "report.pdf").exists()


def test_pdf_refuses_to_fetch_anything(tmp_path):
    page = '<!DOCTYPE html><html><body><p>x</p><img src="https://tiles.example.org/1/1/1.png"></body></html>'
    with pytest.raises(PdfError, match="outside"):
        write_pdf(page, tmp_path / "x.pdf")
    info = write_pdf("<!DOCTYPE html><html><body><p>第一页</p></body></html>", tmp_path / "ok.pdf")
    assert info.pages == 1 and info.bytes > 1000
