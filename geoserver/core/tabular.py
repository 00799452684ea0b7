"""Reading facility lists as users have them: CSV (UTF-8 or GBK/GB18030), Excel forms, GeoJSON, GeoPackage, Shapefile.

Everything becomes a :class:`RawTable`: the header texts as written, each data row's cells as text, and the row number
the user sees (the spreadsheet row, or the feature number of a GIS file), so every problem can be reported where the
user will look for it. Excel forms often have a title row above the header, two-level headers with merged cells
(坐标 over 经度/纬度) and merged cells down a column (one 行政区 for many rows); merged cells are filled with their value
and the header row is found by how many of its cells name known fields.

The unions' 申报汇总表 also carries a submitter block above the header (区局工会 / 联系人姓名 / 联系人邮箱 /
联系人电话): it is read into :attr:`RawTable.submitter` (private: recorded with the version, never published).
Rows that fill only form-only columns (the printed template's 序号 1…6 with nothing else) are not data.

A CSV is read as Excel writes it (``csv.excel``: ``"`` quotes, doubled inside); only the delimiter is chosen, by
which of comma, tab and semicolon splits the first lines most consistently. No file is ever read whole before its
size is known: at most :data:`MAX_ROWS` rows (counted while a CSV is read, from the sheet XML of a workbook, from
the feature count of a GIS file), and a ``.zip`` may only hold one Shapefile's parts, their unpacked size checked
before anything is extracted.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from .errors import GeoServerError

TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")
GIS_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
HEADER_SCAN_ROWS = 15
XLSX_MAX_UNPACKED_BYTES = 256 << 20
#: More rows than any facility list has (Shanghai has ~3,400 stations): a larger file is an error or an attack.
MAX_ROWS = 100_000
#: Cells a workbook may hold in all (openpyxl keeps every one in memory): 100,000 rows of 40 columns.
XLSX_MAX_CELLS = 4_000_000
#: A plain file (CSV, GeoJSON, GeoPackage, Shapefile) larger than this is not a facility list.
MAX_FILE_BYTES = 256 << 20
#: A zipped Shapefile: only these parts, of one layer, at most this much unpacked.
ZIP_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
ZIP_MAX_MEMBERS = 16
ZIP_MAX_UNPACKED_BYTES = 512 << 20     # DBF pads every text field to its width: 100,000 rows fit easily
#: Delimiters a CSV may use: comma, tab (Excel's "Unicode text"), semicolon (Excel with a decimal comma).
CSV_DELIMITERS = (",", "\t", ";")
DELIMITER_SAMPLE_ROWS = 20
DELIMITER_SAMPLE_CHARS = 1 << 20   # the first rows are well within this (a multi-line cell cut at its end is harmless)
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
    spreadsheet: bool = False         # a CSV or workbook (Excel's leading ' before a formula character is undone)

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


def too_many_rows(rows: int | str, what: str = "the file") -> ImportFileError:
    """The error for a file with more rows than :data:`MAX_ROWS` (``rows``: the count, or a text such as "more than
    100,000" when the reader stopped counting)."""
    count = f"{rows:,}" if isinstance(rows, int) else rows
    return ImportFileError(f"{what} has {count} rows, more than the {MAX_ROWS:,} a facility list can have; split the "
                           f"file（共 {count} 行，超过设施清单上限 {MAX_ROWS:,} 行，请拆分文件）", "file")


def _filled(row) -> bool:
    return any(c is not None and str(c).strip() for c in row)


def pick_delimiter(text: str) -> str:
    """The delimiter (comma, tab or semicolon) that splits the first lines of ``text`` (title rows, header, first
    data rows, read with Excel's quoting) into the most fields, most consistently; a comma when none splits them.

    Only the delimiter is chosen: quoting is always Excel's (csv.Sniffer guessed it from the first 8 KB, and a
    name with quotes or a comma written after those 8 KB came back changed or shifted the columns)."""
    best, best_score = ",", (0, 0)
    sample = text[:DELIMITER_SAMPLE_CHARS]
    for delimiter in CSV_DELIMITERS:
        counts: dict[int, int] = {}
        sampled = 0
        try:
            for row in csv.reader(io.StringIO(sample, newline=""), csv.excel, delimiter=delimiter):
                if not _filled(row):
                    continue
                counts[len(row)] = counts.get(len(row), 0) + 1
                sampled += 1
                if sampled >= DELIMITER_SAMPLE_ROWS:
                    break
        except csv.Error:       # an unbalanced quote under this delimiter ran past the field size limit
            continue
        if not counts:
            continue
        width, rows = max(counts.items(), key=lambda kv: (kv[1], kv[0]))   # the most common width, then the wider
        score = (width * rows, width) if width >= 2 else (0, 0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _grid_from_csv(data: bytes, encoding: str | None) -> list[list[str | None]]:
    text = decode_text(data, encoding)
    reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=pick_delimiter(text))
    grid: list[list[str | None]] = []
    filled = 0
    try:
        for row in reader:
            if _filled(row):
                filled += 1
                if filled > MAX_ROWS + HEADER_SCAN_ROWS:   # count the rest without keeping it, for the message
                    filled += sum(1 for rest in reader if _filled(rest))
                    raise too_many_rows(filled)
            grid.append([cell_text(c) for c in row])
    except csv.Error as exc:
        raise ImportFileError(f"the CSV cannot be read (line {reader.line_num}: {exc}); save it again from Excel"
                              "（CSV 文件无法读取，请用 Excel 重新保存）", "file") from None
    return grid


def _grid_from_xlsx(data: bytes, sheet: str | None) -> list[list[str | None]]:
    import openpyxl
    try:
        unpacked = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"not a readable .xlsx workbook ({exc})", "file") from None
    if unpacked > XLSX_MAX_UNPACKED_BYTES:  # a "zip bomb" or a workbook far larger than any facility list
        raise ImportFileError(f"the workbook unpacks to {unpacked:,} bytes, more than the "
                              f"{XLSX_MAX_UNPACKED_BYTES:,} a facility list needs; save it as CSV", "file")

    def pick(book):
        if sheet is not None:
            if sheet not in book.sheetnames:
                raise ImportFileError(f"the workbook has no sheet {sheet!r}; sheets: {', '.join(book.sheetnames)}",
                                      "sheet")
            return book[sheet]
        return book.worksheets[0]

    try:
        # first the sheets' XML as a stream (little memory): rows and cells are counted before a full load
        # keeps every cell of every sheet in memory
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            wanted = pick(book).title
            cells, filled, last = 0, 0, 0
            for ws in book.worksheets:
                ws.reset_dimensions()   # count what is there, not what the <dimension> element claims
                for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
                    cells += len(row)
                    if cells > XLSX_MAX_CELLS:
                        raise ImportFileError(f"the workbook has more than {XLSX_MAX_CELLS:,} cells, more than a "
                                              "facility list needs; save the list alone as CSV（工作簿的单元格过多，"
                                              "请只把清单另存为 CSV）", "file")
                    if ws.title == wanted and _filled(row):
                        filled, last = filled + 1, number
            if filled > MAX_ROWS + HEADER_SCAN_ROWS:
                raise too_many_rows(filled, f"sheet {wanted!r}")
        finally:
            book.close()
        book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except GeoServerError:
        raise
    except Exception as exc:  # any parser failure on an uploaded file means the same to the user
        raise ImportFileError(f"not a readable .xlsx workbook ({type(exc).__name__}: {str(exc)[:200]})",
                              "file") from None
    ws = pick(book)
    # from A1 (iter_rows would otherwise start at the first non-empty row/column, shifting row numbers), to the
    # last row with a value (formatting alone can reach row 1,048,576)
    grid = [[cell_text(c) for c in row]
            for row in ws.iter_rows(min_row=1, min_col=1, max_row=last, values_only=True)] if last else []
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
    if len(rows) > MAX_ROWS:
        raise too_many_rows(len(rows))
    table = RawTable(headers=headers, rows=rows, row_numbers=numbers, submitter=read_submitter(grid[:header_row]),
                     spreadsheet=True)
    if start > 1:
        table.notes.append(f"header found in row {start}; data starts in row {start + 1}")
    if template_rows:
        table.notes.append(f"{template_rows} rows with nothing but a number (序号) or form-only columns were skipped")
    return table


def check_file_size(path: Path) -> None:
    """Refuse a plain file larger than :data:`MAX_FILE_BYTES` before reading it."""
    size = Path(path).stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImportFileError(f"{Path(path).name} is {size:,} bytes, more than the {MAX_FILE_BYTES:,} a facility list "
                              "needs; split the file（文件过大，请拆分文件）", "file")


def extract_shapefile(archive: Path, folder: Path) -> Path:
    """Unpack the one Shapefile a ``.zip`` holds into ``folder``; return its ``.shp``.

    Only a Shapefile's parts (.shp .shx .dbf .prj .cpg) of one layer are accepted; anything else (a GeoJSON, a CSV,
    a second layer, folders of other files) is refused. The member count and the unpacked size (as the archive
    states it, and as written: extraction stops at the stated size) are checked before anything is written."""
    parts = "、".join(ZIP_SHAPEFILE_PARTS)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportFileError(f"{archive.name} is not a readable .zip ({exc})（不是有效的 .zip 文件）", "file") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > ZIP_MAX_MEMBERS:
            raise ImportFileError(f"{archive.name} holds {len(infos):,} files; a zipped Shapefile has at most "
                                  f"{len(ZIP_SHAPEFILE_PARTS)} ({parts})（压缩包只能包含一个 Shapefile 的文件）", "file")
        members, others = [], []
        for info in infos:
            name = info.filename.replace("\\", "/")
            base = name.rsplit("/", 1)[-1]
            if info.is_dir() or name.startswith("__MACOSX/"):   # folders; the Finder's resource forks
                continue
            suffix = Path(base).suffix.lower()
            (members if suffix in ZIP_SHAPEFILE_PARTS and not base.startswith(".") else others).append((info, base))
        if others:
            listed = ", ".join(base for _, base in others[:5]) + (" …" if len(others) > 5 else "")
            raise ImportFileError(f"{archive.name} may hold only one Shapefile's parts ({parts}); it also holds "
                                  f"{listed}. Upload a GeoJSON, CSV or Excel file as it is, not zipped"
                                  f"（.zip 只用于压缩的 Shapefile，请直接上传其他格式的文件）", "file")
        stems = {Path(base).stem.lower() for _, base in members}
        shps = [base for _, base in members if base.lower().endswith(".shp")]
        if len(shps) != 1 or len(stems) != 1 or len({base.lower() for _, base in members}) != len(members):
            raise ImportFileError(f"{archive.name} must hold exactly one Shapefile (one .shp with its .shx and .dbf "
                                  f"of the same name); it holds {', '.join(b for _, b in members) or 'none'}"
                                  f"（压缩包须且只能包含一个 Shapefile）", "file")
        suffixes = {Path(base).suffix.lower() for _, base in members}
        missing = [s for s in (".shp", ".shx", ".dbf") if s not in suffixes]
        if missing:
            raise ImportFileError(f"{archive.name}: the Shapefile lacks its {', '.join(missing)} part"
                                  f"（Shapefile 缺少 {'、'.join(missing)} 文件）", "file")
        unpacked = sum(info.file_size for info, _ in members)
        if unpacked > ZIP_MAX_UNPACKED_BYTES:
            raise ImportFileError(f"{archive.name} unpacks to {unpacked:,} bytes, more than the "
                                  f"{ZIP_MAX_UNPACKED_BYTES:,} a facility list needs（解压后过大）", "file")
        target = None
        try:
            for info, base in members:
                out = folder / (Path(base).stem + Path(base).suffix.lower())
                left = info.file_size
                with zf.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(min(1 << 20, left + 1)):
                        left -= len(chunk)
                        if left < 0:   # more than the archive said: a forged size
                            raise ImportFileError(f"{archive.name} is damaged or forged: {base} unpacks to more "
                                                  "than it says（压缩包已损坏）", "file")
                        dst.write(chunk)
                if out.suffix == ".shp":
                    target = out
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ImportFileError(f"{archive.name} cannot be unpacked ({exc})（压缩包无法解压）", "file") from None
        except OSError as exc:
            from .store import StoreError
            raise StoreError(f"could not unpack {archive.name} into a temporary folder: {exc.strerror or exc}; "
                             "nothing was imported（无法解压到临时文件夹，未导入任何数据）") from exc
    with open(target, "rb") as f:   # a Shapefile begins with its file code, 9994; GDAL would read other formats
        if f.read(4) != b"\x00\x00\x27\x0a":
            raise ImportFileError(f"{archive.name}: {target.name} is not a Shapefile（不是 Shapefile 文件）", "file")
    return target


def read_gis(path: Path, *, encoding: str | None = None, source_layer: str | None = None) -> RawTable:
    """A GeoJSON, GeoPackage or Shapefile (or a zipped one) as a RawTable with one point (WGS84/CRS84 axis order)
    per feature. At most :data:`MAX_ROWS` features: the count is read first (nothing is loaded beyond it)."""
    path = Path(path)
    check_file_size(path)
    if path.suffix.lower() == ".shp":   # its .dbf (the attributes) is the larger part
        for suffix in ZIP_SHAPEFILE_PARTS[1:]:
            for part in {path.with_suffix(suffix), path.with_suffix(suffix.upper())}:
                if part.exists():
                    check_file_size(part)
    if path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory(prefix="geoserver-zip-") as folder:
            return _read_gis_file(extract_shapefile(path, Path(folder)), path.name, encoding, None)
    return _read_gis_file(path, path.name, encoding, source_layer)


def _read_gis_file(path: Path, name: str, encoding: str | None, source_layer: str | None) -> RawTable:
    import pyogrio
    import shapely

    kwargs = {"encoding": encoding} if encoding else {}
    if source_layer:
        kwargs["layer"] = source_layer
    errors = (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError)
    try:
        count = int(pyogrio.read_info(path, force_feature_count=True, **kwargs)["features"])
    except errors as exc:
        raise ImportFileError(f"cannot read {name}: {exc}", "file") from None
    if count > MAX_ROWS:
        raise too_many_rows(count, name)
    try:
        gdf = pyogrio.read_dataframe(path, max_features=MAX_ROWS + 1, **kwargs)
    except errors as exc:
        raise ImportFileError(f"cannot read {name}: {exc}", "file") from None
    if len(gdf) > MAX_ROWS:   # a driver that did not know its count
        raise too_many_rows(f"more than {MAX_ROWS:,}", name)
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
