"""Exporting a layer as the form union staff edit: Chinese headers, services as Chinese labels, one row per feature.

The export imports back unchanged (``geoserver import LAYER FILE --crs <same>`` reports no changes), so the
round trip "download the list, correct it in Excel, upload it" merges by the 编号 column. It includes the private
fields (contact person, phone): it is for administrators only (the CLI, or the admin API with a token).

Every file the project writes for Excel (this export, the rejected rows, the CLI's CSV report) goes through
:func:`excel_safe`: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be taken
by Excel for a formula ("CSV injection"), so it gets a leading ``'`` (OWASP's advice); the importer removes that
quote again, so the round trip stays unchanged. XLSX cells are always written as strings or numbers, never formulas.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from . import crs
from .layers import LOCATION_STATUS_LABELS, PENDING, LayerSpec, ServiceVocabulary

EXPORT_FORMATS = ("csv", "xlsx")
#: First characters that make a spreadsheet read a cell as a formula (OWASP, "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def excel_safe(value):
    """A cell for a spreadsheet: text that Excel would run as a formula gets a leading ``'``; other values (numbers,
    empty cells, ordinary text) unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def excel_safe_row(row) -> list:
    """:func:`excel_safe` applied to every cell of a row."""
    return [excel_safe(v) for v in row]


def _cell(value, ftype: str, vocab: ServiceVocabulary):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if ftype == "services":
        labels = {s.id: s.zh for s in vocab.services}
        return "、".join(labels.get(s.strip(), s.strip()) for s in str(value).split(",") if s.strip())
    if ftype == "boolean":
        return "是" if bool(value) else "否"
    if ftype == "number":
        number = float(value)
        return int(number) if number.is_integer() else number
    if ftype == "integer":
        return int(value)
    return str(value)


def export_rows(spec: LayerSpec, vocab: ServiceVocabulary, records: list[dict], geometries: list,
                datum: str = "wgs84") -> tuple[list[str], list[list]]:
    """(headers, rows): every field by its Chinese title, then 经度 and 纬度 in ``datum`` (7 decimals, ~1 cm)."""
    names = [f for f in spec.fields if f.name not in ("district_code",)]
    headers = [f.title_zh for f in names] + ["经度", "纬度"]
    # a pending row's point is only a proposal (a geocoder's imprecise answer, a position before the address
    # changed): the form leaves its coordinates empty, so typing coordinates there is what places it
    placed = [g is not None and not g.is_empty and rec.get("location_status") != PENDING
              for rec, g in zip(records, geometries)]
    lon = np.array([g.x if ok else np.nan for g, ok in zip(geometries, placed)], dtype=float)
    lat = np.array([g.y if ok else np.nan for g, ok in zip(geometries, placed)], dtype=float)
    if placed and any(placed) and datum != "wgs84":
        ok = np.array(placed)
        lon[ok], lat[ok] = crs.from_wgs84(lon[ok], lat[ok], datum)
    rows = []
    for rec, x, y, ok in zip(records, lon, lat, placed):
        cells = [LOCATION_STATUS_LABELS.get(rec.get(f.name), rec.get(f.name) or "") if f.name == "location_status"
                 else _cell(rec.get(f.name), f.type, vocab) for f in names]
        rows.append(cells + ([round(float(x), 7), round(float(y), 7)] if ok else ["", ""]))
    return headers, rows


def to_csv(headers: list[str], rows: list[list]) -> bytes:
    """UTF-8 with BOM, CRLF: Excel opens it with the Chinese intact."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(excel_safe_row(headers))
    w.writerows(excel_safe_row(row) for row in rows)
    return buf.getvalue().encode("utf-8-sig")


def to_xlsx(headers: list[str], rows: list[list], title: str) -> bytes:
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = title[:31]
    ws.append(excel_safe_row(headers))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in rows:
        ws.append(excel_safe_row(row))
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"   # a string, never a formula (openpyxl makes "=..." a formula otherwise)
    ws.freeze_panes = "A2"
    for i, header in enumerate(headers, start=1):  # phone numbers and ids stay text; widths fit the headers
        ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width = max(10, min(40, 2.2 * len(header) + 4))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
