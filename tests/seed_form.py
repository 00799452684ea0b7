"""The unions' 申报汇总表 exactly as the 2024 circular prints it (seed 003, 附件 2-1-1), filled in, as a workbook and as
the GBK CSV that Chinese Excel saves from it.

Layout (12 columns, A–L): a title row; the submitter block (区局工会 | value | 联系人姓名 | value, then 联系人邮箱 |
value | 联系人电话 | value); the 明细 caption; two header rows — 序号, 休息室名称, 点位联系人, 手机号码, 休息室所属单位,
面积 (m ²), 提供设施及服务, 覆盖企业（单位）数 and 计划投入资金 (元) merged down both rows, 地址（请尽量详细）merged across
行政区 | 街镇 | 具体门牌号 （**路**弄 **号**室）below it; the filled rows; the template's empty numbered rows; the
备注 row. No coordinates, no opening hours. In the CSV a merged cell keeps its text in its first cell only, and the
² of "m ²", which GBK cannot encode, becomes "?" as Excel writes it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl

TITLE = "2024 年建设改善“职工工间休息室”申报汇总表"
HEADER_TOP = ["序号", "休息室名称", "地址（请尽量详细）", None, None, "点位联系人", "手机号码", "休息室所属单位",
              "面积 (m ²)", "提供设施及服务", "覆盖企业（单位）数", "计划投入资金 (元)"]
HEADER_SUB = [None, None, "行政区", "街镇", "具体门牌号 （**路**弄 **号**室）", None, None, None, None, None, None, None]
SUBMITTER = {"union": "黄浦区总工会", "name": "张三", "email": "hpzgh@example.cn", "phone": "021-63211939"}
#: Filled rows: 名称, 行政区, 街镇, 具体门牌号, 点位联系人, 手机号码, 所属单位, 面积, 提供设施及服务, 覆盖企业数, 计划投入资金.
ROWS = [
    ["上海地铁人民广场站职工工间休息室", "黄浦区", "南京东路街道", "人民大道120号", "王建国", "13800138001",
     "上海地铁第一运营有限公司", 25, "休息、饮水、微波炉、冰箱", 3, 20000],
    ["瑞金医院门急诊职工工间休息室", "黄浦区", "瑞金二路街道", "瑞金二路197号", "李梅", "13900139002", None, 40,
     "休息、空调、微波炉", 1, 35000],
    ["外滩环卫作业职工工间休息室", "黄浦区", "外滩街道", "中山东一路1号", "赵强", "13700137003", "黄浦区环境卫生管理所", 18,
     "休息、饮水、按摩椅", 5, 50000],
]
TEMPLATE_ROWS = 3     # numbered rows left empty, as in the printed form


def grid(rows=ROWS, submitter=SUBMITTER, template_rows=TEMPLATE_ROWS) -> list[list]:
    """The form's cells row by row (merged cells: the value in the first cell, None in the others)."""
    out = [[TITLE] + [None] * 11,
           ["区局工会", submitter["union"], None, None, None, "联系人姓名", None, submitter["name"]] + [None] * 4,
           ["联系人邮箱", submitter["email"], None, None, None, "联系人电话", None, submitter["phone"]] + [None] * 4,
           ["职工工间休息室明细（可附页）"] + [None] * 11,
           list(HEADER_TOP), list(HEADER_SUB)]
    for n, row in enumerate(rows, start=1):
        out.append([n, *row])
    for n in range(len(rows) + 1, len(rows) + 1 + template_rows):
        out.append([n] + [None] * 11)
    out.append(["备注 (其他需说明事项)"] + [None] * 11)
    return out


def write_xlsx(path: Path, rows=ROWS, submitter=SUBMITTER) -> Path:
    cells = grid(rows, submitter)
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "申报汇总表"
    for row in cells:
        ws.append(row)
    last = len(cells)
    for rng in ("A1:L1", "B2:E2", "F2:G2", "H2:L2", "B3:E3", "F3:G3", "H3:L3", "A4:L4", "C5:E5", f"A{last}:L{last}"):
        ws.merge_cells(rng)
    for col in "ABFGHIJKL":
        ws.merge_cells(f"{col}5:{col}6")
    book.save(path)
    return path


def write_gbk_csv(path: Path, rows=ROWS, submitter=SUBMITTER) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in grid(rows, submitter):
        w.writerow(["" if c is None else c for c in row])
    path.write_bytes(buf.getvalue().encode("gbk", errors="replace"))
    return path
