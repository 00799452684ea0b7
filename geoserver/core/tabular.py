"""Reading facility lists as users have them: CSV (UTF-8 or GBK/GB18030), Excel forms, GeoJSON, GeoPackage, Shapefile.

Everything becomes a :class:`RawTable`: the header texts as written, each data row's cells as text, and the row number
the user sees (the spreadsheet row, or the feature number of a GIS file), so every problem can be reported where the
user will look for it. Excel forms often have a title row above the header, two-level headers with merged cells
(坐标 over 经度/纬度) and merged cells down a column (one 行政区 for many rows); merged cells are filled with their value
and the header row is found by how many of its cells name known fields.

The unions' 申报汇总表 also carries a submitter block above the header (区局工会 / 联系人姓名 / 联系人邮箱 /
联系人电话): it is read into :attr:`RawTable.submitter` (private: recorded with the version, never published).
Rows that fill only form-only columns (the printed template's 序号 1…6 with nothing else) are not data.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from .errors import GeoServerError

TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")
GIS_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
HEADER_SCAN_ROWS = 15
XLSX_MAX_UNPACKED_BYTES = 256 << 20
SKIP_ROW_PREFIXES = ("合计", "总计", "小计", "注：", "注:", "说明", "填表说明", "填报说明", "备注")
#: Labels of the submitter block above a form's header, by what they name (normalised with normalise_header).
SUBMITTER_LABELS = {
    "union": ("区局工会", "区局(产业)工会", "区(局)工会", "填报单位", "报送单位", "申报单位", "填报工会"),
    "name": ("联系人姓名", "联系人", "填报人", "填表人"),
    "email": ("联系人邮箱", "邮箱", "电子邮箱", "e-mail", "email"),
    "phone": ("联系人电话", "联系电话", "电话", "手机", "联系人手机"),
}
_TOTAL_RE = re.compile(r"^[+-]?[\d,]*\.?\d+$")


class ImportFileError(GeoServerError):
    """The file cannot be read at all (format, encoding, no header); nothing was imported."""

    code = "InvalidFile"


@dataclass
class RawTable:
    """Cells as text, with the numbers users see."""

    headers: list[str]
    rows: list[list[str | None]]
    row_numbers: list[int]
    row_label: str = "row"            # "row" (spreadsheet/CSV row) or "feature" (GIS file)
    points: list[tuple[float, float] | str | None] | None = None   # GIS geometry per row, or a problem text
    notes: list[str] = field(default_factory=list)
    submitter: dict[str, str] = field(default_factory=dict)        # the form's 区局工会 / 联系人 block (private)

    def __len__(self) -> int:
        return len(self.rows)


def normalise_header(text) -> str:
    """Header text for matching: NFKC (full-width to ASCII), no spaces or line breaks, lower case, no * or colon."""
    s = unicodedata.normalize("NFKC", str(text or "")).lower()
    return "".join(ch for ch in s if not ch.isspace()).strip("*:：")


def cell_text(value) -> str | None:
    """A spreadsheet cell as text: integral floats without '.0' (phone numbers), times as HH:MM, blanks as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """Bytes of a CSV as text: the declared encoding, else UTF-8 (with or without BOM), else GB18030 (GBK superset)."""
    if encoding:
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ImportFileError(f"the file cannot be read as {encoding}: {exc}", "encoding") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text" (UTF-16, tab-separated)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for candidate in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("the file is neither UTF-8 nor GBK/GB18030 text; save it from Excel as 'CSV UTF-8' "
                          "(文件不是 UTF-8 或 GBK 编码，请另存为“CSV UTF-8”)", "encoding")


def _grid_from_csv(data: bytes, encoding: str | None) -> list[list[str | None]]:
    text = decode_text(data, encoding)
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    return [[cell_text(c) for c in row] for row in csv.reader(io.StringIO(text, newline=""), dialect)]


def _grid_from_xlsx(data: bytes, sheet: str | None) -> list[list[str | None]]:
    import openpyxl
    import zipfile
    try:
        unpacked = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"not a readable .xlsx workbook ({exc})", "file") from None
    if unpacked > XLSX_MAX_UNPACKED_BYTES:  # a "zip bomb" or a workbook far larger than any facility list
        raise ImportFileError(f"the workbook unpacks to {unpacked:,} bytes, more than the "
                              f"{XLSX_MAX_UNPACKED_BYTES:,} a facility list needs; save it as CSV", "file")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # any parser failure on an uploaded file means the same to the user
        raise ImportFileError(f"not a readable .xlsx workbook ({type(exc).__name__}: {str(exc)[:200]})",
                              "file") from None
    if sheet is not None:
        if sheet not in book.sheetnames:
            raise ImportFileError(f"the workbook has no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}",
                                  "sheet")
        ws = book[sheet]
    else:
        ws = book.worksheets[0]
    # from A1 (iter_rows would otherwise start at the first non-empty row/column, shifting row numbers)
    grid = [[cell_text(c) for c in row] for row in ws.iter_rows(min_row=1, min_col=1, values_only=True)]
    for merged in ws.merged_cells.ranges:  # fill every cell of a merged range with its value
        value = grid[merged.min_row - 1][merged.min_col - 1] if merged.min_row - 1 < len(grid) else None
        for r in range(merged.min_row - 1, min(merged.max_row, len(grid))):
            for c in range(merged.min_col - 1, merged.max_col):
                if c < len(grid[r]):
                    grid[r][c] = value
    return grid


def _pick_header(grid: list[list[str | None]], classify, is_header=None) -> tuple[list[str], int, int]:
    """(headers, index of the (first) header row, index of the first data row): the row naming most fields, joined
    with a second header level above or below it (坐标 over 经度 | 纬度; 地址 over 行政区 | 街镇 | 具体门牌号, the
    other titles merged down both rows or written in either of them). ``is_header(text)``: also a column title
    (form-only columns such as 序号 name no field but are titles all the same)."""
    is_header = is_header or classify
    best, best_score = None, 0
    for i, row in enumerate(grid[:HEADER_SCAN_ROWS]):
        score = len({classify(c) for c in row if c} - {None})
        if score > best_score:
            best, best_score = i, score
    if best is None or best_score < 2:
        raise ImportFileError("no header row found in the first 15 rows: expected column names such as 名称, 行政区, "
                              "具体门牌号, 经度, 纬度 (or name, district, address, lon, lat)", "file")
    headers = [c or "" for c in grid[best]]
    first_data, top = best + 1, best

    def level(other: list[str | None]) -> bool:
        """Another header level: it adds fields, and every cell names one, is a title, or repeats the cell beside
        it in the header (a vertical merge); a data row whose cell happens to read like a column name ("区", "x")
        is not taken for one."""
        mapped = {classify(c) for c in headers if c} - {None}
        adds = {classify(c) for c in other if c} - {None} - mapped
        return bool(adds) and all(not c or is_header(c) or c == h
                                  for c, h in zip(other, headers + [""] * len(other)))

    def join(lower: list[str | None], upper: list[str | None]) -> list[str]:
        width = max(len(lower), len(upper))
        lower, upper = lower + [None] * (width - len(lower)), upper + [None] * (width - len(upper))
        return [lo if (lo and classify(lo)) else up if (up and classify(up)) else (lo or up or "")
                for lo, up in zip(lower, upper)]

    if first_data < len(grid) and level(grid[first_data]):
        headers = join(grid[first_data], headers)
        first_data += 1
    elif best > 0 and level(grid[best - 1]):
        headers = join(headers, grid[best - 1])
        top = best - 1
    return headers, top, first_data


_SUBMITTER_KEYS = {normalise_header(label): key for key, labels in SUBMITTER_LABELS.items() for label in labels}


def read_submitter(rows: list[list[str | None]]) -> dict[str, str]:
    """The submitter block of a form (rows above its header): {"union", "name", "email", "phone"} as filled in.

    A label is followed by its value in the next cell that is not the label again (merged cells repeat it) nor
    another label; "区局工会：黄浦区总工会" in one cell works too."""
    out: dict[str, str] = {}
    for row in rows:
        cells = [c for c in row if c]
        for i, cell in enumerate(cells):
            label, sep, rest = cell.replace("：", ":").partition(":")
            key = _SUBMITTER_KEYS.get(normalise_header(label))
            if key is None or key in out:
                continue
            if sep and rest.strip():
                out[key] = rest.strip()
                continue
            for value in cells[i + 1:]:
                if value == cell:
                    continue
                if normalise_header(value) not in _SUBMITTER_KEYS:
                    out[key] = value.strip()
                break
    return out


def _is_note_row(row: list[str | None]) -> bool:
    cells = [c for c in row if c]
    if not cells:
        return True
    if not cells[0].startswith(SKIP_ROW_PREFIXES):
        return False
    # a note, or a 合计 row: its label (merged cells repeat it) and one total or several numeric totals
    others = set(cells) - {cells[0]}
    return len(others) <= 1 or all(_TOTAL_RE.match(c) for c in others)


def read_table(data: bytes, suffix: str, classify, *, encoding: str | None = None, sheet: str | None = None,
               is_header=None) -> RawTable:
    """A CSV or XLSX file as a RawTable; ``classify(header) -> field or None`` finds the header row, ``is_header``
    (default: classify) says which other texts are column titles too."""
    if suffix in (".xlsx", ".xlsm"):
        grid = _grid_from_xlsx(data, sheet)
    else:
        grid = _grid_from_csv(data, encoding)
    headers, header_row, start = _pick_header(grid, classify, is_header)
    stored = [i for i, h in enumerate(headers) if h and classify(h)]
    rows, numbers, template_rows = [], [], 0
    for i in range(start, len(grid)):
        row = (grid[i] + [None] * len(headers))[:len(headers)]
        if _is_note_row(grid[i]):
            continue
        if not any(row[j] for j in stored):  # only 序号 (the printed template's empty rows) or other form-only cells
            template_rows += 1
            continue
        rows.append(row)
        numbers.append(i + 1)
    table = RawTable(headers=headers, rows=rows, row_numbers=numbers, submitter=read_submitter(grid[:header_row]))
    if start > 1:
        table.notes.append(f"header found in row {start}; data starts in row {start + 1}")
    if template_rows:
        table.notes.append(f"{template_rows} rows with nothing but a number (序号) or form-only columns were skipped")
    return table


def read_gis(path: Path, *, encoding: str | None = None, source_layer: str | None = None) -> RawTable:
    """A GeoJSON, GeoPackage or Shapefile as a RawTable with one point (WGS84/CRS84 axis order) per feature."""
    import pyogrio
    import shapely

    kwargs = {"encoding": encoding} if encoding else {}
    if source_layer:
        kwargs["layer"] = source_layer
    try:
        gdf = pyogrio.read_dataframe(path, **kwargs)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise ImportFileError(f"cannot read {path.name}: {exc}", "file") from None
    if gdf.crs is not None and not gdf.crs.is_geographic:
        gdf = gdf.to_crs("EPSG:4326")  # a projected CRS (e.g. a local grid) to longitude/latitude first
    headers = [str(c) for c in gdf.columns if c != "geometry"]
    rows = [[cell_text(v) for v in values] for values in gdf[headers].itertuples(index=False, name=None)]
    points: list = []
    for geom in gdf.geometry.values:
        if geom is None or shapely.is_empty(geom):
            points.append(None)
        elif geom.geom_type == "Point":
            points.append((float(geom.x), float(geom.y)))
        elif geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
            points.append((float(geom.geoms[0].x), float(geom.geoms[0].y)))
        else:
            points.append(geom.geom_type)
    return RawTable(headers=headers, rows=rows, row_numbers=list(range(1, len(rows) + 1)), row_label="feature",
                    points=points)
