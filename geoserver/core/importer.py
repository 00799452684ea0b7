"""Importing a facility list into a layer: map its columns, convert its coordinates, check every row.

The result is an :class:`ImportReport`: the valid rows as records ready to store, and every problem with the row
and column the user sees and a message in Chinese and English. Nothing here writes a file; ``edit.py`` stores the
records (all or nothing, as a new version).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from scipy.spatial import cKDTree

from . import crs
from .districts import district_names, district_positions, resolve_district
from .hours import validate as hours_valid
from .layers import LOCATION_FIELDS, LayerSpec, ServiceVocabulary
from .export import FORMULA_PREFIXES, excel_safe_row
from .tabular import (GIS_SUFFIXES, MAX_FILE_BYTES, TABLE_SUFFIXES, ImportFileError, RawTable, check_file_size,
                      normalise_header, read_gis, read_table)

COORD = ("lon", "lat", "coordinates")
NEAR_DUPLICATE_M = 10.0        # two facilities of the same name closer than this are probably one
BOUNDARY_TOLERANCE_M = 150.0   # the district polygons are generalised: accept points this close to the stated one
COAST_TOLERANCE_M = 300.0      # ... and points this close to the city's outline (piers, shore)
SHANGHAI_BBOX = (120.8, 30.6, 122.3, 31.95)
SUBDISTRICTS_CSV = Path(__file__).resolve().parents[2] / "data" / "geo" / "subdistricts.csv"

# Header names forms and exports use for each field (besides the field name and its titles in layers/*.toml).
SYNONYMS = {
    "id": ["编号", "站点编号", "点位编号", "编码", "id", "code", "fid"],
    "name": ["名称", "站点名称", "驿站名称", "点位名称", "阵地名称", "休息室名称", "站点", "名字", "name", "title"],
    "district": ["行政区", "所属区", "所在区", "区", "区县", "区域", "district"],
    "district_code": ["行政区代码", "区划代码", "行政区划代码", "district_code", "adcode"],
    "subdistrict": ["街镇", "街道", "街道(镇)", "街道/镇", "街镇名称", "所属街镇", "乡镇", "镇", "subdistrict", "town",
                    "street"],
    "address": ["具体门牌号", "地址", "详细地址", "门牌号", "具体地址", "站点地址", "address", "addr"],
    "contact_name": ["点位联系人", "联系人", "负责人", "联系人姓名", "contact", "contact_name", "contactname"],
    "contact_phone": ["手机号码", "联系电话", "手机", "电话", "联系方式", "联系人电话", "phone", "mobile", "tel",
                      "contact_phone", "telephone"],
    "host_org": ["所属单位", "休息室所属单位", "驿站所属单位", "建设单位", "依托单位", "主办单位", "运营单位", "host",
                 "host_org", "organisation", "organization"],
    "area_m2": ["面积", "面积(平方米)", "面积(m2)", "面积(m²)", "建筑面积", "使用面积", "area", "area_m2"],
    "services": ["提供设施及服务", "设施及服务", "服务内容", "服务项目", "提供服务", "设施", "services",
                 "facilities"],
    "opening_hours": ["开放时间", "营业时间", "服务时间", "开放时段", "opening_hours", "hours", "openinghours"],
    "smart": ["智能站点", "是否智能", "智能", "smart"],
    "source": ["数据来源", "来源", "source"],
    "lon": ["经度", "lng", "lon", "long", "longitude", "x", "经度(e)"],
    "lat": ["纬度", "lat", "latitude", "y", "纬度(n)"],
    "coordinates": ["坐标", "经纬度", "经纬度坐标", "坐标(经度,纬度)", "location", "lnglat", "coordinates",
                    "coordinate"],
}
# Columns of the union's forms that are not stored (no warning for these).
FORM_ONLY = {"序号", "覆盖企业(单位)数", "覆盖企业数", "计划投入资金", "no", "no.", "序"}   # also with "(元)" etc.
#: Fields the system keeps (where a position came from, why a row is pending): an exported form carries them for
#: staff to read, but a file never sets them; they follow from the coordinates (or their absence).
SYSTEM_FIELDS = tuple(name for name, _, _ in LOCATION_FIELDS)

TRUE_WORDS = {"是", "有", "y", "yes", "true", "1", "√", "t"}
FALSE_WORDS = {"否", "无", "n", "no", "false", "0", "×", "f"}
PHONE_RE = re.compile(r"^(?:\+?86)?(?:1[3-9]\d{9}|0\d{2,3}\d{7,8}(?:\d{1,5})?|\d{7,8}|400\d{7}|100\d{8})$")


# --- messages ---------------------------------------------------------------------------------------------
MESSAGES = {
    "required_missing": ("必填项为空", "a required value is missing"),
    "coord_missing": ("缺少坐标", "coordinates are missing"),
    "coord_not_number": ("不是数字：“{value}”", "not a number: '{value}'"),
    "coord_pair": ("无法识别的坐标“{value}”，应为“经度,纬度”", "coordinates not understood: '{value}' (expected 'lon,lat')"),
    "coord_swapped": ("经纬度填反了：“{value}”应为纬度，另一列应为经度",
                      "longitude and latitude are swapped: '{value}' is a latitude and the other column a longitude"),
    "outside_shanghai": ("坐标（{lon}, {lat}）不在上海市范围内", "the point ({lon}, {lat}) is outside Shanghai"),
    "geometry_not_point": ("几何类型为{value}，应为点", "the geometry is a {value}, not a point"),
    "district_unknown": ("未知的行政区“{value}”{hint_zh}", "unknown district '{value}'{hint_en}"),
    "district_mismatch": ("坐标位于{actual}，与行政区“{value}”不符{hint_zh}",
                          "the point lies in {actual} ({actual_en}), not in '{value}'{hint_en}"),
    "subdistrict_unknown": ("{district}没有名为“{value}”的街镇{hint_zh}",
                            "{district} ({district_en}) has no sub-district (街镇) named '{value}'{hint_en}"),
    "service_unknown": ("未知的服务“{value}”{hint_zh}", "unknown service '{value}'{hint_en}"),
    "service_not_in_layer": ("本图层不提供服务“{value}”（可用：{allowed}）",
                             "service '{value}' is not offered by this layer (allowed: {allowed})"),
    "duplicate_id": ("编号“{value}”与{other_zh}重复", "id '{value}' is also used in {other_en}"),
    "near_duplicate": ("与{other_zh}同名且相距{dist}米，可能是同一设施",
                       "same name as {other_en}, {dist} m away: probably the same facility"),
    "hours_malformed": ("无法识别的开放时间“{value}”（示例：Mo-Fr 08:00-18:00 或 24/7）",
                        "opening hours not understood: '{value}' (use e.g. Mo-Fr 08:00-18:00 or 24/7)"),
    "phone_invalid": ("不是有效的电话号码：“{value}”", "not a phone number: '{value}'"),
    "number_invalid": ("不是数字：“{value}”", "not a number: '{value}'"),
    "number_negative": ("不能为负数：“{value}”", "must not be negative: '{value}'"),
    "boolean_invalid": ("应为“是”或“否”：“{value}”", "expected yes or no (是/否): '{value}'"),
    "enum_invalid": ("“{value}”不是允许的取值（{allowed}）", "'{value}' is not one of {allowed}"),
    "same_as_row": ("与{other_zh}的名称、行政区和地址都相同，可能是同一设施",
                    "same name, district and address as {other_en}: probably the same facility"),
}
WARNINGS = {
    "hours_normalised": ("开放时间“{value}”已按“{normalised}”导入", "opening hours '{value}' imported as '{normalised}'"),
    "district_filled": ("行政区为空，已按坐标填为{actual}", "district was empty; filled in from the point: {actual}"),
    "pending_no_coordinates": ("没有坐标：已存为待定位（地理编码或在地图上标注后公开）",
                               "no coordinates: stored as pending (待定位), public once geocoded or placed on the map"),
    "hours_unknown": ("开放时间为空：按“开放时间未知”保存，不计为开放",
                      "opening hours empty: stored as unknown (never counted as open)"),
    "host_missing": ("所属单位为空", "host organisation (所属单位) is empty"),
    "district_empty_pending": ("行政区为空且没有坐标：地理编码将在全市范围查找",
                               "no district and no coordinates: the geocoder will search all of Shanghai"),
    "formula_like": ("以{prefix_zh}开头，Excel 可能把它当作公式执行：已按原文保存（导出时前面会加单引号 '）",
                     "starts with {prefix_en}, which Excel may run as a formula: stored as written (exports put a "
                     "' in front of it)"),
}
#: How the warning names a formula character.
FORMULA_PREFIX_NAMES = {"\t": ("制表符", "a tab"), "\r": ("回车符", "a carriage return")}
#: File-level notices (row None): (code, severity, Chinese, English).
FILE_NOTICES = {
    "coord_columns_missing": ("warning", "没有坐标列：所有行存为待定位，地理编码或在地图上标注后公开",
                              "no coordinate columns: every row is stored as pending (待定位) until geocoded or "
                              "placed on the map"),
    "hours_column_missing": ("warning", "没有“开放时间”列：开放时间均按未知保存，不计为开放",
                             "no opening hours column (开放时间): hours are stored as unknown, never counted as open"),
    "host_column_missing": ("warning", "没有“所属单位”列", "no host organisation column (所属单位)"),
    "crs_missing": ("error", "文件含坐标，请指明坐标系：wgs84（GPS）、gcj02（高德/腾讯）或 bd09（百度）",
                    "the file has coordinates: say which system they are in: wgs84 (GPS), gcj02 (Amap/Tencent) or "
                    "bd09 (Baidu)"),
}


def _file_notice(code: str, column: str | None = None) -> Problem:
    severity, zh, en = FILE_NOTICES[code]
    return Problem(None, column, code, zh, en, severity=severity)


@dataclass
class Problem:
    """One problem with one cell (or row, or the whole file when ``row`` is None)."""

    row: int | None
    column: str | None
    code: str
    zh: str
    en: str
    value: str | None = None
    severity: str = "error"

    def to_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "code": self.code, "severity": self.severity,
                "value": self.value, "message_zh": self.zh, "message_en": self.en}


def _problem(row, column, code, value=None, severity="error", **kw) -> Problem:
    zh, en = (MESSAGES if severity == "error" else WARNINGS)[code]
    kw.setdefault("hint_zh", "")
    kw.setdefault("hint_en", "")
    return Problem(row, column, code, zh.format(value=value, **kw), en.format(value=value, **kw),
                   value, severity)


@dataclass
class ImportReport:
    """What an import found: mapping, problems, valid records."""

    layer: str
    filename: str
    row_label: str
    rows: int
    mapping: dict[str, str]
    ignored_columns: list[str]
    problems: list[Problem]
    records: list[dict]               # valid rows, ready to store (WGS84 lon/lat, cleaned fields)
    record_rows: list[int]            # their row numbers
    rejected_rows: list[int]          # row numbers with at least one error
    raw: RawTable | None = None
    notes: list[str] = field(default_factory=list)
    submitter: dict[str, str] = field(default_factory=dict)   # the form's 区局工会 / 联系人 block (private)

    @property
    def pending(self) -> int:
        """Valid rows without a position: stored as pending (待定位)."""
        return sum(1 for r in self.records if "_lon" not in r)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def file_errors(self) -> list[Problem]:
        return [p for p in self.errors if p.row is None]

    def where(self, p: Problem) -> tuple[str, str]:
        """('第12行，经度', 'row 12, 经度') for a problem."""
        if p.row is None:
            return "文件", "file"
        zh = f"第{p.row}行" if self.row_label == "row" else f"第{p.row}个要素"
        en = f"{self.row_label} {p.row}"
        if p.column:
            zh, en = f"{zh}，{p.column}", f"{en}, {p.column}"
        return zh, en

    def lines(self) -> list[str]:
        """Every problem as two lines: Chinese, then English."""
        out = []
        for p in self.problems:
            zh_where, en_where = self.where(p)
            tag_zh, tag_en = ("错误", "error") if p.severity == "error" else ("提示", "warning")
            out.append(f"{zh_where}：{p.zh}（{tag_zh}）")
            out.append(f"  {en_where}: {p.en} ({tag_en})")
        return out

    def summary(self) -> dict:
        return {"layer": self.layer, "file": self.filename, "rows": self.rows, "valid_rows": len(self.records),
                "pending_rows": self.pending, "rejected_rows": len(self.rejected_rows), "errors": len(self.errors),
                "warnings": len(self.problems) - len(self.errors)}

    def to_dict(self) -> dict:
        return {**self.summary(), "row_label": self.row_label, "mapping": self.mapping, "submitter": self.submitter,
                "ignored_columns": self.ignored_columns, "notes": self.notes,
                "problems": [p.to_dict() for p in self.problems]}

    def rejected_csv(self) -> bytes:
        """The rejected rows as they were, plus a problems column, as UTF-8 CSV with BOM (opens in Excel)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow([f"{self.row_label}_in_file 原行号", *(self.raw.headers if self.raw else []), "问题 / problems"])
        by_row: dict[int, list[str]] = {}
        for p in self.errors:
            if p.row is not None:
                by_row.setdefault(p.row, []).append(f"{p.column or ''}: {p.zh} / {p.en}")
        if self.raw is not None:
            for number, cells in zip(self.raw.row_numbers, self.raw.rows):
                if number in by_row:   # the cells as written, but none Excel would run as a formula
                    w.writerow(excel_safe_row([number, *[c if c is not None else "" for c in cells],
                                               "；".join(by_row[number])]))
        return buf.getvalue().encode("utf-8-sig")


# --- reference data ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class District:
    code: str
    name: str
    name_en: str
    geometry: object


@lru_cache(maxsize=4)
def load_subdistricts(path: Path = SUBDISTRICTS_CSV) -> dict[str, list[tuple[str, str]]]:
    """district code -> [(short name, full name)] of its 街道/镇/乡."""
    out: dict[str, list[tuple[str, str]]] = {}
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["district_code"], []).append((r["name"], r["full_name"]))
    return out


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


class Reference:
    """Districts (polygons, names) and sub-district names for checking rows."""

    def __init__(self, districts_layer, subdistricts_path: Path = SUBDISTRICTS_CSV):
        self.layer = districts_layer
        self.districts = [District(str(p["id"]), str(p["name"]), str(p.get("name_en") or ""), g)
                          for p, g in zip(districts_layer.properties, districts_layer.gdf.geometry.values)]
        self.metric = [shapely.transform(d.geometry, lambda xy: np.column_stack(crs.to_metric(xy[:, 0], xy[:, 1])))
                       for d in self.districts]
        self.subdistricts = load_subdistricts(subdistricts_path)
        self._names = district_names(districts_layer)
        self._position = {d.code: i for i, d in enumerate(self.districts)}

    def district_index(self, text: str) -> int | None:
        code = resolve_district(self.layer, text, self._names)
        return None if code is None else self._position[code]

    def district_suggestion(self, text: str) -> str | None:
        names = [d.name for d in self.districts]
        close = difflib.get_close_matches(_nfkc(text), names, n=1, cutoff=0.5)
        return close[0] if close else None

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index of the district each WGS84 point lies in; -1 outside Shanghai (beyond the coast tolerance)."""
        out = district_positions(self.layer, lon, lat)
        ok = np.isfinite(lon) & np.isfinite(lat)
        for j in np.flatnonzero(ok & (out < 0)):  # just off the generalised coast or river bank
            x, y = crs.to_metric(lon[j], lat[j])
            p = shapely.Point(float(x), float(y))
            dists = [shapely.distance(m, p) for m in self.metric]
            k = int(np.argmin(dists))
            if dists[k] <= COAST_TOLERANCE_M:
                out[j] = k
        return out

    def near_district(self, index: int, lon: float, lat: float, tolerance_m: float = BOUNDARY_TOLERANCE_M) -> bool:
        x, y = crs.to_metric(lon, lat)
        return shapely.distance(self.metric[index], shapely.Point(float(x), float(y))) <= tolerance_m

    def subdistrict(self, district: District, text: str) -> tuple[str | None, str | None, District | None]:
        """(canonical full name, None, None) for a 街镇 of ``district``; else (None, a close name or None, the
        district that has a 街镇 of exactly this name or None)."""
        value = re.sub(r"(办事处|人民政府)$", "", _nfkc(text).replace(" ", ""))
        options = self.subdistricts.get(district.code, [])
        for short, full in options:
            if value in (short, full) or value in (short + "街道", short + "镇", short + "乡"):
                return full, None, None
        for other in self.districts:
            if other.code != district.code and any(value in pair for pair in self.subdistricts.get(other.code, [])):
                return None, None, other
        labels = [full for _, full in options] + [short for short, _ in options]
        close = difflib.get_close_matches(value, labels, n=1, cutoff=0.6)
        if close:
            return None, next(f for s, f in options if close[0] in (s, f)), None
        return None, None, None


# --- column mapping ---------------------------------------------------------------------------------------
def read_mapping_file(path: Path | None) -> dict[str, str]:
    """A TOML mapping file: ``[columns]`` "header as in the file" = "field" (or lon, lat, coordinates, ignore)."""
    if path is None:
        return {}
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ImportFileError(f"cannot read mapping file {Path(path).name}: {exc}", "mapping") from None
    columns = raw.get("columns", raw)
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ImportFileError("mapping file: expected a [columns] table of \"header\" = \"field\"", "mapping")
    return {normalise_header(k): v.strip() for k, v in columns.items()}


class ColumnMapper:
    """Which field a header names, for one layer (synonyms, the layer's titles, and an optional mapping file)."""

    def __init__(self, spec: LayerSpec, overrides: dict[str, str] | None = None):
        self.spec = spec
        names = {f.name for f in spec.fields}
        self.lookup: dict[str, str] = {}
        for f in spec.fields:
            for key in (f.name, f.title_zh, f.title_en):
                self.lookup.setdefault(normalise_header(key), f.name)
        for target, words in SYNONYMS.items():
            if target in names or target in COORD:
                for w in words:
                    self.lookup.setdefault(normalise_header(w), target)
        self.overrides = dict(overrides or {})
        bad = [v for v in self.overrides.values() if v not in names and v not in COORD and v != "ignore"]
        if bad:
            raise ImportFileError(f"mapping file names fields the layer {spec.id!r} does not have: "
                                  f"{', '.join(sorted(set(bad)))}; fields: {', '.join(sorted(names))}", "mapping")

    def is_title(self, header) -> bool:
        """A column title: it names a field, or a form-only column (序号, 覆盖企业数 …)."""
        return self.classify(header) is not None or is_form_only(header)

    def classify(self, header) -> str | None:
        key = normalise_header(header)
        if not key:
            return None
        if key in self.overrides:
            target = self.overrides[key]
            return None if target == "ignore" else target
        if key in self.lookup:
            return self.lookup[key]
        bare = re.sub(r"\(.*?\)", "", key)  # 面积(平方米) -> 面积, 经度(gcj02) -> 经度
        if bare in self.lookup:
            return self.lookup[bare]
        # Shapefile (DBF) names are cut to 10 bytes: opening_ho, contact_ph, 提供设施及 — a prefix naming one field
        if len(key) >= 4 and (len(key.encode("utf-8")) >= 10 or len(key.encode("gbk", "replace")) >= 9):
            targets = {t for name, t in self.lookup.items() if name.startswith(key)}
            if len(targets) == 1:
                return targets.pop()
        return None


def is_form_only(header) -> bool:
    """A column of the union's forms that is not stored (序号, 覆盖企业（单位）数, 计划投入资金 (元) …)."""
    key = normalise_header(header)
    return key in FORM_ONLY or re.sub(r"\(.*?\)", "", key) in FORM_ONLY


# --- cell parsers -----------------------------------------------------------------------------------------
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DMS_RE = re.compile(r"^(\d{1,3})[°度]\s*(\d{1,2}(?:\.\d+)?)?['′分]?\s*(\d{1,2}(?:\.\d+)?)?(?:[\"″秒]|′′)?\s*([NSEWnsew东西南北])?$")


def parse_coordinate(text: str) -> float | None:
    """Decimal degrees (also 121.47°, 121°28′30″E); None if not a number."""
    s = _nfkc(text).replace(" ", "").rstrip("°度")
    s = s.rstrip("EeNn东北") if _NUM_RE.match(s.rstrip("EeNn东北") or "x") else s
    if _NUM_RE.match(s):
        value = float(s)
        return value if math.isfinite(value) else None   # '1e999' is not a coordinate
    m = _DMS_RE.match(_nfkc(text).replace(" ", ""))
    if m:
        deg = float(m.group(1)) + float(m.group(2) or 0) / 60 + float(m.group(3) or 0) / 3600
        return -deg if (m.group(4) or "").upper() in ("S", "W", "南", "西") else deg
    return None


def parse_number(text: str) -> float | None:
    """'120', '120.5', '120㎡', '120平方米', '1,200' as a number; None if not one."""
    s = _nfkc(text).replace(",", "").replace(" ", "")
    s = re.sub(r"(m2|m²|平方米|平米|㎡|元)$", "", s)
    return float(s) if _NUM_RE.match(s) else None


def split_list(text: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,，、;；/|\n]+", _nfkc(text)) if t.strip()]


_CN_DAYS = {"一": "Mo", "二": "Tu", "三": "We", "四": "Th", "五": "Fr", "六": "Sa", "日": "Su", "天": "Su", "七": "Su"}


def normalise_hours(text: str) -> str | None:
    """Common Chinese ways of writing hours as OSM opening_hours ('全天' -> '24/7', '周一至周五 9:00-17:00' ->
    'Mo-Fr 09:00-17:00'); None if the result is still not valid."""
    s = _nfkc(text).strip()
    if re.fullmatch(r"(全天|全天候|24小时|24h|24小时开放|全天24小时|7\*24小时|7x24小时|24/7)", s, re.I):
        return "24/7"
    s = re.sub(r"(周|星期)([一二三四五六日天七])\s*[至到~\-—－]\s*(周|星期)?([一二三四五六日天七])",
               lambda m: f"{_CN_DAYS[m.group(2)]}-{_CN_DAYS[m.group(4)]} ", s)
    s = re.sub(r"(周|星期)([一二三四五六日天七])", lambda m: f"{_CN_DAYS[m.group(2)]} ", s)
    s = re.sub(r"(每天|每日|全年)", "Mo-Su ", s)
    s = re.sub(r"(工作日)", "Mo-Fr ", s)
    s = re.sub(r"[,，、]?\s*(法定)?节假日(休息|不开放|闭馆|关闭)", "; PH off", s)
    s = re.sub(r"[,，、]?\s*(法定)?节假日(照常|正常)(开放|营业)?", "", s)
    s = s.replace("：", ":").replace("~", "-").replace("—", "-").replace("至", "-").replace("到", "-")
    s = re.sub(r"(\d{1,2})[点时](\d{2})?分?", lambda m: f"{m.group(1)}:{m.group(2) or '00'}", s)
    # 早8:00-晚8:00, 上午9:00-下午5:30: afternoon and evening hours below 12 are after noon
    s = re.sub(r"(早上|早|上午|中午)\s*(\d{1,2}:\d{2})", r"\2", s)
    s = re.sub(r"(下午|晚上|晚)\s*(\d{1,2}):(\d{2})",
               lambda m: f"{int(m.group(2)) + 12 if int(m.group(2)) < 12 else int(m.group(2))}:{m.group(3)}", s)
    s = re.sub(r"\s*[,，]\s*(?=(Mo|Tu|We|Th|Fr|Sa|Su|PH))", "; ", s)
    s = re.sub(r"\b(\d):(\d{2})", r"0\1:\2", s)
    s = re.sub(r"\s*-\s*", "-", s)
    s = re.sub(r"\s*[;；]\s*", "; ", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"(Mo|Tu|We|Th|Fr|Sa|Su)-(Mo|Tu|We|Th|Fr|Sa|Su)(?=\d)", r"\1-\2 ", s)
    return s if hours_valid(s) else None


def parse_phone(text: str) -> str | None:
    """Phone numbers as digits ('138 1234 5678', '021-6288 1234', several separated by /): None if not numbers."""
    parts = split_list(text)
    cleaned = []
    for part in parts:
        digits = re.sub(r"[\s\-()（）]", "", part)
        if digits.startswith("+"):
            digits = digits[1:]
        if not PHONE_RE.match(digits):
            return None
        cleaned.append(digits)
    return ",".join(cleaned) if cleaned else None


def name_key(text: str) -> str:
    return re.sub(r"[\s()（）\-·]", "", _nfkc(text)).lower()


# --- the import ---------------------------------------------------------------------------------------------
@dataclass
class ImportOptions:
    datum: str | None = "wgs84"         # None: not said (fine for a file without coordinates)
    encoding: str | None = None
    sheet: str | None = None
    source_layer: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    source: str | None = None           # value of the layer's ``source`` field when the file has no such column
    mode: str = "merge"                 # merge (by id) or replace (the whole layer)
    location_source: str = "file"       # recorded as where a row's position came from


def read_input(path: Path, data: bytes | None, mapper: ColumnMapper, opts: ImportOptions) -> RawTable:
    suffix = "".join(Path(path).suffixes[-1:]).lower()
    if suffix in TABLE_SUFFIXES:
        if data is None:
            check_file_size(Path(path))
        elif len(data) > MAX_FILE_BYTES:
            raise ImportFileError(f"the file is {len(data):,} bytes, more than the {MAX_FILE_BYTES:,} a facility list "
                                  "needs; split the file（文件过大，请拆分文件）", "file")
        raw = data if data is not None else Path(path).read_bytes()
        return read_table(raw, suffix, mapper.classify, encoding=opts.encoding, sheet=opts.sheet,
                          is_header=mapper.is_title)
    if suffix in GIS_SUFFIXES:
        return read_gis(Path(path), encoding=opts.encoding, source_layer=opts.source_layer)
    raise ImportFileError(f"unsupported file type {suffix or '(none)'!r}: use .csv, .xlsx, .geojson, .gpkg or .shp",
                          "file")


class Importer:
    """Checks rows of one file against one layer (its spec, vocabulary, the districts and the existing features)."""

    def __init__(self, spec: LayerSpec, vocab: ServiceVocabulary, reference: Reference, existing=None):
        self.spec = spec
        self.vocab = vocab
        self.ref = reference
        self.existing = existing            # the layer as loaded (Layer) for merge checks and new ids
        self.allowed_services = tuple(spec.services or vocab.ids)

    def run(self, path: Path, opts: ImportOptions, data: bytes | None = None, progress=None) -> ImportReport:
        mapper = ColumnMapper(self.spec, opts.mapping)
        table = read_input(path, data, mapper, opts)
        return self.check(table, mapper, opts, Path(path).name, progress)

    # .. mapping ..
    def _map_columns(self, table: RawTable, mapper: ColumnMapper, problems: list[Problem]):
        columns: dict[str, int] = {}
        mapping: dict[str, str] = {}
        ignored = []
        for i, header in enumerate(table.headers):
            target = mapper.classify(header)
            if target is None:
                if header and not is_form_only(header):
                    ignored.append(header)
                continue
            if target in columns:
                ignored.append(header)
                continue
            columns[target] = i
            mapping[header] = target
        has_xy = "lon" in columns and "lat" in columns
        if table.points is None and not has_xy and "coordinates" not in columns:
            problems.append(_file_notice("coord_columns_missing"))
        for code, name in (("hours_column_missing", "opening_hours"), ("host_column_missing", "host_org")):
            f = self.spec.field(name)
            if f is not None and name not in columns:
                problems.append(_file_notice(code, f.title_zh))
        for f in self.spec.fields:
            if f.required and f.name not in columns and f.name not in ("id", "district_code", "source", "district"):
                problems.append(Problem(None, f.title_zh, "column_missing", f"缺少必需的列“{f.title_zh}”",
                                        f"required column missing: {f.title_en} ({f.title_zh})"))
        return columns, mapping, ignored

    def _formula_cells(self, table: RawTable, columns: dict, problems: list[Problem]) -> None:
        """Cells Excel would run as formulas (=, +, -, @, tab, carriage return first): in a CSV or workbook, the ``'``
        Excel (and our export) puts before such text is removed; text that starts with one of them is kept as
        written, with a warning naming the row and column (the exports neutralise it again)."""
        text_columns = {i: self._header(table, columns, name) for name, i in columns.items()
                        if name not in COORD and name not in SYSTEM_FIELDS and self.spec.field(name) is not None
                        and self.spec.field(name).type == "string" and "phone" not in name}
        quoted = table.spreadsheet
        for cells, number in zip(table.rows, table.row_numbers):
            for i, text in enumerate(cells):
                if not text:
                    continue
                if quoted and text[0] == "'" and text[1:2] and text[1] in FORMULA_PREFIXES:
                    cells[i] = text[1:]
                elif i in text_columns and text.startswith(FORMULA_PREFIXES):
                    zh, en = FORMULA_PREFIX_NAMES.get(text[0], (f"“{text[0]}”", f"'{text[0]}'"))
                    problems.append(_problem(number, text_columns[i], "formula_like", text, "warning",
                                             prefix_zh=zh, prefix_en=en))

    def _header(self, table: RawTable, columns: dict, target: str) -> str:
        i = columns.get(target)
        return table.headers[i] if i is not None else target

    # .. coordinates ..
    def _coordinates(self, table: RawTable, columns: dict, datum: str, problems: list[Problem]):
        n = len(table)
        lon = np.full(n, np.nan)
        lat = np.full(n, np.nan)
        bad = np.zeros(n, bool)
        lon_col = self._header(table, columns, "lon")
        lat_col = self._header(table, columns, "lat")
        for j, (cells, number) in enumerate(zip(table.rows, table.row_numbers)):
            x_text = y_text = None
            x_col, y_col = lon_col, lat_col
            if table.points is not None and table.points[j] is not None and not ("lon" in columns and "lat" in columns
                                                                              and cells[columns["lon"]]):
                point = table.points[j]
                if isinstance(point, str):
                    problems.append(_problem(number, "geometry", "geometry_not_point", point))
                    bad[j] = True
                    continue
                lon[j], lat[j] = point
                x_col = y_col = "geometry"
            elif "lon" in columns and "lat" in columns:
                x_text, y_text = cells[columns["lon"]], cells[columns["lat"]]
            elif "coordinates" in columns and cells[columns["coordinates"]]:
                text = cells[columns["coordinates"]]
                x_col = y_col = self._header(table, columns, "coordinates")
                parts = [p for p in re.split(r"[,，;；\s]+", _nfkc(text)) if p]
                if len(parts) != 2:
                    problems.append(_problem(number, x_col, "coord_pair", text))
                    bad[j] = True
                    continue
                x_text, y_text = parts
            elif "coordinates" in columns:      # an empty 坐标 cell: report it under that column
                x_col = y_col = self._header(table, columns, "coordinates")
            elif table.points is not None:      # a feature without geometry
                x_col = y_col = "geometry"
            if np.isnan(lon[j]):
                if not x_text and not y_text:   # no position at all: stored as pending (待定位)
                    continue
                for text, col, target in ((x_text, x_col, lon), (y_text, y_col, lat)):
                    if not text:
                        problems.append(_problem(number, col, "coord_missing"))
                        bad[j] = True
                        continue
                    value = parse_coordinate(text)
                    if value is None:
                        problems.append(_problem(number, col, "coord_not_number", text))
                        bad[j] = True
                    else:
                        target[j] = value
            if bad[j]:
                continue
            x, y = lon[j], lat[j]
            in_box = SHANGHAI_BBOX[0] <= x <= SHANGHAI_BBOX[2] and SHANGHAI_BBOX[1] <= y <= SHANGHAI_BBOX[3]
            swapped = SHANGHAI_BBOX[0] <= y <= SHANGHAI_BBOX[2] and SHANGHAI_BBOX[1] <= x <= SHANGHAI_BBOX[3]
            if not in_box and swapped:
                problems.append(_problem(number, x_col, "coord_swapped", cell_value(x_text, x)))
                bad[j] = True
        lon[bad] = np.nan
        lat[bad] = np.nan
        wlon, wlat = lon.copy(), lat.copy()
        ok = np.isfinite(lon)
        if ok.any() and datum is None:
            problems.append(_file_notice("crs_missing", "crs"))
            return lon, lat, np.full(n, np.nan), np.full(n, np.nan), bad | ok, (lon_col, lat_col)
        if ok.any() and datum != "wgs84":
            wlon[ok], wlat[ok] = crs.to_wgs84(lon[ok], lat[ok], datum)
        return lon, lat, wlon, wlat, bad, (lon_col, lat_col)

    def _datum_hint(self, raw_lon, raw_lat, district_index, declared) -> tuple[str, str]:
        """A hint when the point would be in the stated district had the file been in another datum."""
        for other in ("wgs84", "gcj02", "bd09"):
            if other == declared:
                continue
            x, y = crs.to_wgs84(np.array([raw_lon]), np.array([raw_lat]), other)
            if self.ref.near_district(district_index, float(x[0]), float(y[0]), 0.0):
                label = {"wgs84": "WGS84", "gcj02": "GCJ-02（高德/腾讯）", "bd09": "BD-09（百度）"}[other]
                label_en = {"wgs84": "WGS84", "gcj02": "GCJ-02 (Amap/Tencent)", "bd09": "BD-09 (Baidu)"}[other]
                return (f"；若坐标为{label}则相符，请检查坐标系（--crs {other}）",
                        f"; it would match if the coordinates were {label_en}: check the declared system "
                        f"(--crs {other})")
        return "", ""

    # .. the check ..
    def check(self, table: RawTable, mapper: ColumnMapper, opts: ImportOptions, filename: str,
              progress=None) -> ImportReport:
        datum = None if opts.datum is None else crs.normalise_datum(opts.datum)
        problems: list[Problem] = []
        columns, mapping, ignored = self._map_columns(table, mapper, problems)
        self._columns_header = {target: table.headers[i] for target, i in columns.items()}
        report = ImportReport(layer=self.spec.id, filename=filename, row_label=table.row_label, rows=len(table),
                              mapping=mapping, ignored_columns=ignored, problems=problems, records=[],
                              record_rows=[], rejected_rows=[], raw=table, notes=list(table.notes),
                              submitter=dict(table.submitter))
        if ignored:
            report.notes.append("columns not stored (no matching field): " + ", ".join(ignored))
        if report.file_errors:
            report.rejected_rows = list(table.row_numbers)
            return report
        self._formula_cells(table, columns, problems)
        raw_lon, raw_lat, lon, lat, bad_xy, (lon_col, lat_col) = self._coordinates(table, columns, datum, problems)
        if report.file_errors:
            report.rejected_rows = list(table.row_numbers)
            return report
        located = self.ref.locate(lon, lat)
        records: list[dict] = []
        hours_cache: dict[str, tuple[str | None, bool]] = {}
        services_cache: dict[str, tuple[list[str], list[Problem]]] = {}
        fields = {f.name: f for f in self.spec.fields}
        tick = max(1, len(table) // 100)
        for j, (cells, number) in enumerate(zip(table.rows, table.row_numbers)):
            if progress is not None and j % tick == 0:
                progress(j, len(table))
            rec: dict = {}
            row_problems: list[Problem] = []

            def col(name):
                return self._header(table, columns, name)

            for name, i in columns.items():
                if name in COORD or name in SYSTEM_FIELDS:
                    continue
                f = fields[name]
                text = cells[i]
                if text is None or text == "":
                    if name != "id":
                        rec[name] = None  # an empty cell clears the field on merge (a missing column keeps it)
                    continue
                value, issue = self._cell(f, text, number, col(name), hours_cache, services_cache)
                row_problems.extend(issue)
                if value is not None:
                    rec[name] = value
            for f in self.spec.fields:
                if f.required and f.name not in ("id", "district", "district_code", "source") \
                        and f.name in columns and not cells[columns[f.name]]:
                    row_problems.append(_problem(number, col(f.name), "required_missing"))
            for name, code in (("opening_hours", "hours_unknown"), ("host_org", "host_missing")):
                if name in columns and not cells[columns[name]]:
                    row_problems.append(_problem(number, col(name), code, severity="warning"))
            # coordinates and districts
            if not bad_xy[j] and np.isfinite(lon[j]):
                k = located[j]
                if k < 0:
                    row_problems.append(_problem(number, lon_col if lon_col == lat_col else f"{lon_col}/{lat_col}",
                                                 "outside_shanghai", lon=_fmt(raw_lon[j]), lat=_fmt(raw_lat[j])))
                else:
                    rec["_lon"], rec["_lat"] = round(float(lon[j]), 7), round(float(lat[j]), 7)
                    rec["_location_source"] = opts.location_source
                    self._check_district(rec, cells, columns, table, number, k, raw_lon[j], raw_lat[j], datum,
                                         row_problems)
            elif not bad_xy[j]:  # no position: kept as pending (待定位) with its stated district
                where = "geometry" if table.points is not None else (
                    self._header(table, columns, "coordinates") if "lon" not in columns else
                    lon_col if lon_col == lat_col else f"{lon_col}/{lat_col}")
                if "lon" in columns or "coordinates" in columns or table.points is not None:
                    row_problems.append(_problem(number, where, "pending_no_coordinates", severity="warning"))
                self._check_district(rec, cells, columns, table, number, None, None, None, datum, row_problems)
            problems.extend(row_problems)
            records.append(rec)   # rows with errors too: duplicate ids and names are reported for every row
        if progress is not None:
            progress(len(table), len(table))
        self._adopt_ids(records, opts)
        self._check_ids(table, columns, records, problems, opts)
        self._check_near_duplicates(table, records, problems, opts)
        errors_by_row = {p.row for p in problems if p.severity == "error"}
        source = opts.source or f"import:{filename}"
        for rec, number in zip(records, table.row_numbers):
            if number in errors_by_row:
                continue
            if not rec.get("source"):
                rec["source"] = source
            report.records.append(rec)
            report.record_rows.append(number)
        report.rejected_rows = [n for n in table.row_numbers if n in errors_by_row]
        problems.sort(key=lambda p: (p.row is not None, p.row or 0))
        return report

    def _cell(self, f, text: str, number: int, column: str, hours_cache: dict, services_cache: dict):
        """(stored value, problems) of one cell."""
        if f.type == "services":
            if text not in services_cache:
                services_cache[text] = self._services(text)
            ids, issues = services_cache[text]
            return ",".join(ids) or None, [Problem(number, column, p.code, p.zh, p.en, p.value) for p in issues]
        if f.type == "opening_hours":
            if text not in hours_cache:
                if hours_valid(text):
                    hours_cache[text] = (text, False)
                else:
                    normalised = normalise_hours(text)
                    hours_cache[text] = (normalised, normalised is not None)
            value, changed = hours_cache[text]
            if value is None:
                return None, [_problem(number, column, "hours_malformed", text)]
            if changed:
                return value, [_problem(number, column, "hours_normalised", text, "warning", normalised=value)]
            return value, []
        if f.name == "contact_phone" or "phone" in f.name:
            phone = parse_phone(text)
            return (phone, []) if phone else (None, [_problem(number, column, "phone_invalid", text)])
        if f.type in ("number", "integer"):
            value = parse_number(text)
            if value is None:
                return None, [_problem(number, column, "number_invalid", text)]
            if value < 0:
                return None, [_problem(number, column, "number_negative", text)]
            return (int(value) if f.type == "integer" else value), []
        if f.type == "boolean":
            key = _nfkc(text).lower()
            if key in TRUE_WORDS:
                return True, []
            if key in FALSE_WORDS:
                return False, []
            return None, [_problem(number, column, "boolean_invalid", text)]
        value = _nfkc(text) if f.name in ("id", "district_code") else text.strip()
        if f.enum and value not in f.enum:
            return None, [_problem(number, column, "enum_invalid", text, allowed=", ".join(f.enum))]
        return value, []

    def _services(self, text: str) -> tuple[list[str], list[Problem]]:
        ids, issues = [], []
        for term in split_list(text):
            sid = self.vocab.resolve(term)
            if sid is None:
                hint = self._service_suggestion(term)
                hint_zh = f"，是否为“{hint.zh}”（{hint.id}）？" if hint else f"（可用：{self._allowed_text()}）"
                hint_en = f"; did you mean '{hint.en}' ({hint.zh}, {hint.id})?" if hint else \
                    f" (allowed: {self._allowed_text()})"
                issues.append(_problem(None, None, "service_unknown", term, hint_zh=hint_zh, hint_en=hint_en))
            elif sid not in self.allowed_services:
                issues.append(_problem(None, None, "service_not_in_layer", term, allowed=self._allowed_text()))
            elif sid not in ids:
                ids.append(sid)
        return sorted(ids), issues

    def _allowed_text(self) -> str:
        return "、".join(s.zh for s in self.vocab.services if s.id in self.allowed_services)

    def _service_suggestion(self, term: str):
        """The vocabulary term closest to a near miss (by label, alias or shared characters), or None."""
        key = _nfkc(term).lower()
        candidates = {}
        for s in self.vocab.services:
            if s.id not in self.allowed_services:
                continue
            for label in (s.id, s.zh, s.en, *s.aliases):
                candidates[label.lower()] = s
        close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.5)
        if close:
            return candidates[close[0]]
        for label, s in candidates.items():  # 饮水机 ~ 饮水, 充电宝 ~ 充电
            if len(label) >= 2 and (label in key or key in label) and not label.isascii():
                return s
        return None

    def _check_district(self, rec, cells, columns, table, number, k, raw_lon, raw_lat, datum, out):
        """The stated 行政区 and 街镇 of a row, checked against the district its point lies in (``k``; None for a
        row without a position, whose stated district is where the geocoder will look)."""
        actual = self.ref.districts[k] if k is not None else None
        if "district" in columns and cells[columns["district"]]:
            text = cells[columns["district"]]
            column = self._header(table, columns, "district")
            stated = self.ref.district_index(text)
            if stated is None:
                hint = self.ref.district_suggestion(text)
                out.append(_problem(number, column, "district_unknown", text,
                                    hint_zh=f"，是否为“{hint}”？" if hint else "",
                                    hint_en=f"; did you mean '{hint}'?" if hint else ""))
                return
            if k is not None and stated != k and not self.ref.near_district(stated, rec["_lon"], rec["_lat"]):
                hint_zh, hint_en = self._datum_hint(raw_lon, raw_lat, stated, datum)
                out.append(_problem(number, column, "district_mismatch", text, actual=actual.name,
                                    actual_en=actual.name_en, hint_zh=hint_zh, hint_en=hint_en))
                return
            district = self.ref.districts[stated]
        elif actual is None:
            out.append(_problem(number, self._header(table, columns, "district"), "district_empty_pending",
                                severity="warning"))
            return
        else:
            district = actual
            if "district" in columns:
                out.append(_problem(number, self._header(table, columns, "district"), "district_filled",
                                    None, "warning", actual=actual.name))
        rec["district"], rec["district_code"] = district.name, district.code
        if "subdistrict" in columns and cells[columns["subdistrict"]]:
            text = cells[columns["subdistrict"]]
            full, hint, elsewhere = self.ref.subdistrict(district, text)
            if full is None:
                if elsewhere is not None:  # the name exists, in another district
                    hint_zh = f"（“{text}”属于{elsewhere.name}）"
                    hint_en = f" ('{text}' is in {elsewhere.name}, {elsewhere.name_en})"
                else:
                    hint_zh = f"，是否为“{hint}”？" if hint else ""
                    hint_en = f"; did you mean '{hint}'?" if hint else ""
                out.append(_problem(number, self._header(table, columns, "subdistrict"), "subdistrict_unknown",
                                    text, district=district.name, district_en=district.name_en,
                                    hint_zh=hint_zh, hint_en=hint_en))
            else:
                rec["subdistrict"] = full

    def _existing_points(self):
        """(metric x, y, k-d tree) of the existing layer's features, or None."""
        layer = self.existing
        if layer is None or layer.count == 0 or not layer.index.is_point:
            return None
        ex_x, ex_y = crs.to_metric(layer.index.lon, layer.index.lat)
        return ex_x, ex_y, cKDTree(np.column_stack([ex_x, ex_y]))

    def _adopt_ids(self, records, opts):
        """Merge mode, rows without an id: one existing feature of the same name within a few metres is the same
        facility (a form sent again), so the row updates it instead of adding a duplicate. A row without
        coordinates is the one existing feature (placed or pending) of its name and district; a row with
        coordinates and no such neighbour may be the one pending row of its name and district (now placed)."""
        if opts.mode != "merge" or self.existing is None:
            return
        todo = [r for r in records if "id" not in r and "_lon" in r and r.get("name")]
        existing = self._existing_points() if todo else None
        if existing is not None:
            ex_x, ex_y, tree = existing
            x, y = crs.to_metric(np.array([r["_lon"] for r in todo]), np.array([r["_lat"] for r in todo]))
            for rec, near in zip(todo, tree.query_ball_point(np.column_stack([x, y]), NEAR_DUPLICATE_M)):
                same = [p for p in near if name_key(str(self.existing.properties[p].get("name", ""))) ==
                        name_key(rec["name"])]
                if len(same) == 1:
                    rec["id"] = str(self.existing.ids[same[0]])
        placed = [r for r in todo if "id" not in r]
        unplaced = [r for r in records if "id" not in r and "_lon" not in r and r.get("name")]
        self._adopt_by_name(unplaced, pending_only=False)
        self._adopt_by_name(placed, pending_only=True)

    def _adopt_by_name(self, todo: list[dict], pending_only: bool) -> None:
        """Give each row the id of the one existing feature with its name and district (pending ones only, or all)."""
        layer = self.existing
        if not todo:
            return
        rows = [] if pending_only else [(str(p["id"]), p.get("name"), p.get("district_code"))
                                        for p in layer.properties]
        if layer.pending_count:
            pend = layer.pending
            rows += [(str(i), n, d) for i, n, d in zip(pend["id"], pend["name"], pend.get(
                "district_code", [None] * len(pend)))]
        by_key: dict[tuple, list[str]] = {}
        for fid, name, code in rows:
            by_key.setdefault((name_key(str(name or "")), code or None), []).append(fid)
        for rec in todo:
            same = by_key.get((name_key(rec["name"]), rec.get("district_code")), [])
            if len(same) == 1:
                rec["id"] = same[0]

    def _check_ids(self, table, columns, records, problems, opts):
        """Duplicate ids in the file; new ids (prefix + number) for rows without one."""
        seen: dict[str, int] = {}
        column = self._header(table, columns, "id")
        for rec, number in zip(records, table.row_numbers):
            if "id" not in rec:
                continue
            fid = rec["id"]
            if fid in seen:
                problems.append(_problem(number, column, "duplicate_id", fid, other_zh=f"第{seen[fid]}行",
                                         other_en=f"{table.row_label} {seen[fid]}"))
            else:
                seen[fid] = number
        # New ids continue after the layer's highest in both modes: an id never names a different facility
        # than it did before (map apps cache them). The editor checks them again under the write lock.
        taken = set(seen)
        if self.existing is not None:
            taken |= set(map(str, self.existing.ids)) | self.existing.pending_ids
        fresh = new_ids(self.spec, taken)
        for rec in records:
            if "id" not in rec:
                rec["id"] = next(fresh)
                rec["_generated_id"] = True
                taken.add(rec["id"])

    def _check_near_duplicates(self, table, records, problems, opts):
        """Same name within NEAR_DUPLICATE_M metres: in the file, and against the layer's other features (merge);
        rows without coordinates: the same name, district and address twice in the file."""
        seen: dict[tuple, int] = {}
        for rec, number in zip(records, table.row_numbers):
            if "_lon" in rec or not rec.get("name"):
                continue
            key = (name_key(rec["name"]), rec.get("district_code"), name_key(str(rec.get("address") or "")))
            if key in seen:
                problems.append(_problem(number, self._name_column(table), "same_as_row", rec["name"],
                                         other_zh=f"第{seen[key]}行", other_en=f"{table.row_label} {seen[key]}"))
            else:
                seen[key] = number
        idx = [j for j, r in enumerate(records) if "_lon" in r and r.get("name")]
        if not idx:
            return
        lon = np.array([records[j]["_lon"] for j in idx])
        lat = np.array([records[j]["_lat"] for j in idx])
        x, y = crs.to_metric(lon, lat)
        pts = np.column_stack([x, y])
        keys = [name_key(records[j]["name"]) for j in idx]
        for a, b in sorted(cKDTree(pts).query_pairs(NEAR_DUPLICATE_M)):
            if keys[a] == keys[b]:
                first, second = sorted((a, b))
                dist = float(np.hypot(*(pts[first] - pts[second])))
                n_first, n_second = table.row_numbers[idx[first]], table.row_numbers[idx[second]]
                problems.append(_problem(n_second, self._name_column(table), "near_duplicate",
                                         records[idx[second]]["name"], other_zh=f"第{n_first}行",
                                         other_en=f"{table.row_label} {n_first}", dist=f"{dist:.1f}"))
        existing = self._existing_points() if opts.mode == "merge" else None
        if existing is None:
            return
        layer = self.existing
        ex_x, ex_y, tree = existing
        for a, near in enumerate(tree.query_ball_point(pts, NEAR_DUPLICATE_M)):
            rec = records[idx[a]]
            for pos in near:
                other_id = str(layer.ids[pos])
                if other_id == rec.get("id"):
                    continue
                if name_key(str(layer.properties[pos].get("name", ""))) == keys[a]:
                    dist = float(np.hypot(ex_x[pos] - pts[a][0], ex_y[pos] - pts[a][1]))
                    problems.append(_problem(table.row_numbers[idx[a]], self._name_column(table), "near_duplicate",
                                             rec["name"], other_zh=f"现有设施{other_id}",
                                             other_en=f"existing feature {other_id}", dist=f"{dist:.1f}"))

    def _name_column(self, table) -> str:
        return self._columns_header.get("name", "name")


def next_id(spec: LayerSpec, taken: set[str]) -> str:
    """The next free id of a layer: its prefix and a number after the highest one in ``taken`` (ST03401)."""
    return next(new_ids(spec, taken))


def new_ids(spec: LayerSpec, taken: set[str]):
    """Free ids after the highest one in ``taken``, one after another (ST03401, ST03402, ...). The highest is found
    once: asking next_id for each of n new rows would scan every taken id n times."""
    prefix = spec.new_id_prefix
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)$")
    counter = max((int(m.group(1)) for t in taken if (m := pattern.match(t))), default=0)
    while True:
        counter += 1
        if f"{prefix}{counter:05d}" not in taken:
            yield f"{prefix}{counter:05d}"


def cell_value(text, value) -> str:
    return text if text else _fmt(value)


def _fmt(value) -> str:
    return f"{float(value):.6f}".rstrip("0").rstrip(".") if np.isfinite(value) else "?"
