"""Write the sample facility forms the import tests read (deterministically: the same bytes every run).

Usage: ``.venv/bin/python tests/data/import/make_forms.py [OUT_DIR]`` (default: this folder).

The forms imitate what district unions send in: the 申报汇总表 columns 序号 · 名称 · 行政区 · 街镇 · 具体门牌号 ·
点位联系人 · 手机号码 · 所属单位 · 面积 · 提供设施及服务 · 覆盖企业（单位）数 · 计划投入资金, plus 开放时间, 经度, 纬度.
Positions are real WGS84 positions of well-known places (each at least 500 m inside the district polygon of the
bundled districts layer); names, addresses and contacts are made up. Phone numbers start with 100, like the sample
data's, so that none is a real person's mobile number.

* ``stations_gbk.csv``: a 黄浦区 form saved by Excel as "CSV" on a Chinese Windows (GBK), with the title row above
  the header;
* ``stations_merged_header.xlsx``: an Excel form as users make it: merged title row, two-level header (坐标 merged
  over 经度 | 纬度, the other header cells merged down over both header rows), 行政区 merged down the rows of each
  district, phone numbers and areas as numbers, two opening-hours cells in Chinese, a 合计 row at the bottom;
* ``stations_gcj02.geojson``: points in GCJ-02 (as copied from Amap), with Chinese property names;
* ``stations_bd09.csv``: BD-09 (as copied from Baidu Maps) in one 坐标 column "lon,lat", UTF-8 with BOM.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from geoserver.core import crs  # noqa: E402

FIXED_TIME = (2026, 11, 25, 0, 0, 0)

# --- (a) 黄浦区, GBK CSV -----------------------------------------------------------------------------------
GBK_TITLE = "黄浦区工会驿站申报汇总表"
GBK_HEADER = ["序号", "名称", "行政区", "街镇", "具体门牌号", "点位联系人", "手机号码", "所属单位", "面积",
              "提供设施及服务", "覆盖企业（单位）数", "计划投入资金", "开放时间", "经度", "纬度"]
#: name, 街镇 (as written), address, contact, phone, host, area, services, companies, money, hours, lon, lat
GBK_ROWS = [
    ("人民广场户外职工爱心接力站", "南京东路街道", "人民大道200号东侧", "王敏", "10021000001", "黄浦区市容环境卫生管理所",
     "45", "补水、休憩、充电、热饭", "12", "3", "24/7", 121.4737, 31.2304),
    ("豫园商城工会驿站", "豫园", "方浜中路265号", "陈洁", "10021000002", "豫园街道总工会", "30",
     "补水、休憩、如厕、医药箱", "20", "2.5", "Mo-Su 08:00-20:00", 121.4921, 31.2272),
    ("新天地快递小哥驿站", "淮海中路街道", "马当路245号", "李强", "10021000003", "淮海中路街道工会联合会", "60",
     "补水、充电、热饭、无线网络", "35", "4", "Mo-Fr 09:00-21:00; Sa,Su 10:00-18:00", 121.4750, 31.2190),
    ("田子坊爱心接力站", "打浦桥街道", "泰康路210弄", "赵丽", "10021000004", "打浦桥街道总工会", "25",
     "补水、休憩、取暖、纳凉", "8", "1.5", "Mo-Fr 08:00-18:00", 121.4690, 31.2080),
    ("老西门环卫工人休息点", "老西门", "中华路1000号", "孙伟", "10021000005", "黄浦区环境卫生作业服务中心", "18",
     "补水、热饭、临时停车", "5", "1", "24/7", 121.4830, 31.2180),
    ("瑞金医院东门工会驿站", "瑞金二路街道", "瑞金二路197号", "周静", "10021000006", "瑞金二路街道总工会", "40",
     "补水、休憩、充电、阅读", "16", "2", "Mo-Sa 07:00-19:00", 121.4680, 31.2130),
    ("南京路步行街户外职工驿站", "南京东路街道", "南京东路300号", "吴刚", "10021000007", "南京东路街道总工会", "35",
     "补水、休憩、充电、微心愿", "40", "3", "Mo-Su 09:00-22:00", 121.4800, 31.2360),
]

# --- (b) 徐汇区 and 长宁区, Excel form with merged cells ----------------------------------------------------
XLSX_TITLE = "徐汇区、长宁区工会驿站（户外职工爱心接力站）申报汇总表"
XLSX_HEADER = ["序号", "名称", "行政区", "街镇", "具体门牌号", "点位联系人", "手机号码", "所属单位", "面积（平方米）",
               "提供设施及服务", "覆盖企业（单位）数", "计划投入资金（万元）", "开放时间", "坐标", "坐标"]
XLSX_SUBHEADER = {14: "经度", 15: "纬度"}   # column number -> text in the second header row
#: district, name, 街镇, address, contact, phone (number), host, area (number), services, companies, money, hours,
#: lon, lat. Rows of one district are consecutive: its 行政区 cell is merged down over them.
XLSX_ROWS = [
    ("徐汇区", "徐家汇商圈工会驿站", "徐家汇街道", "虹桥路1号", "郑敏", 10021000011, "徐家汇街道总工会", 50,
     "补水,休憩,充电,热饭", 30, 3, "全天", 121.4365, 31.1951),
    ("徐汇区", "衡山路户外职工爱心接力站", "天平路街道", "衡山路10号", "冯杰", 10021000012, "天平路街道总工会", 32.5,
     "补水,纳凉,取暖", 12, 2, "Mo-Fr 08:00-18:00", 121.4460, 31.2050),
    ("徐汇区", "龙华寺东侧环卫驿站", "龙华街道", "龙华路2853号", "褚红", 10021000013, "徐汇区绿化和市容管理局", 20,
     "补水,休憩,如厕", 4, 1, "周一至周五 9:00-17:00", 121.4510, 31.1750),
    ("徐汇区", "漕河泾开发区快递驿站", "漕河泾街道", "宜山路900号", "卫东", 10021000014, "漕河泾开发区工会", 80,
     "补水,充电,热饭,无线网络,临时停车", 60, 5, "24/7", 121.3980, 31.1700),
    ("徐汇区", "田林街道爱心接力站", "田林街道", "田林路140号", "蒋芳", 10021000015, "田林街道总工会", 28,
     "补水,休憩,医药箱", 9, 1.5, "Mo-Su 07:00-21:00", 121.4250, 31.1750),
    ("长宁区", "中山公园地铁站工会驿站", "华阳路街道", "长宁路1018号", "沈涛", 10021000016, "华阳路街道总工会", 42,
     "补水,休憩,充电", 25, 2, "24/7", 121.4168, 31.2197),
    ("长宁区", "天山路户外职工驿站", "天山路街道", "天山路600号", "韩雪", 10021000017, "天山路街道总工会", 36,
     "补水,热饭,法律服务", 18, 2, "Mo-Sa 08:00-20:00", 121.3990, 31.2120),
]
XLSX_FIRST_DATA_ROW = 4        # row 1 title, rows 2-3 the two-level header

# --- (c) GCJ-02 GeoJSON -------------------------------------------------------------------------------------
#: name, 行政区, 街镇, address, host, services, hours, WGS84 lon, lat (the file holds these converted to GCJ-02)
GCJ_FEATURES = [
    ("五角场万达广场工会驿站", "杨浦区", "五角场街道", "邯郸路600号", "五角场街道总工会", "补水、休憩、充电", "24/7",
     121.5140, 31.3017),
    ("陆家嘴金融城爱心接力站", "浦东新区", "陆家嘴街道", "世纪大道100号", "陆家嘴金融城工会", "补水、充电、热饭",
     "Mo-Fr 08:00-20:00", 121.5055, 31.2397),
    ("彭浦新村户外职工驿站", "静安区", "彭浦新村街道", "共和新路3500号", "彭浦新村街道总工会", "补水、纳凉、取暖",
     "Mo-Su 07:00-19:00", 121.4480, 31.3060),
    ("虹口足球场环卫驿站", "虹口区", "欧阳路街道", "东江湾路444号", "虹口区环境卫生管理所", "补水、休憩、如厕",
     "24/7", 121.4815, 31.2730),
    ("松江大学城快递小哥驿站", "松江区", "广富林街道", "文汇路1000号", "广富林街道总工会", "补水、充电、临时停车",
     "Mo-Su 08:00-22:00", 121.2100, 31.0500),
]

# --- (d) BD-09 CSV with one 坐标 column ---------------------------------------------------------------------
BD_HEADER = ["名称", "行政区", "街镇", "具体门牌号", "所属单位", "提供设施及服务", "开放时间", "坐标"]
#: name, 行政区, 街镇, address, host, services, hours, WGS84 lon, lat (the file holds these converted to BD-09)
BD_ROWS = [
    ("世纪公园北门工会驿站", "浦东新区", "花木街道", "锦绣路1001号", "花木街道总工会", "补水、休憩、充电", "24/7",
     121.5510, 31.2160),
    ("张江科学城户外职工爱心接力站", "浦东新区", "张江镇", "祖冲之路887弄", "张江镇总工会", "补水、热饭、无线网络",
     "Mo-Fr 08:00-20:00", 121.5870, 31.2030),
    ("控江路环卫工人驿站", "杨浦区", "控江路街道", "控江路1500号", "控江路街道总工会", "补水、休憩、如厕",
     "Mo-Su 06:00-20:00", 121.5300, 31.2800),
    ("上海南站快递驿站", "徐汇区", "长桥街道", "沪闵路9001号", "长桥街道总工会", "补水、充电、临时停车", "24/7",
     121.4300, 31.1550),
]


def _csv_text(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue()


def gbk_csv() -> bytes:
    """As Excel saves a form as "CSV (逗号分隔)" on Chinese Windows: GBK, CRLF, the merged title in one cell."""
    rows = [[GBK_TITLE] + [""] * (len(GBK_HEADER) - 1), GBK_HEADER]
    for i, (name, sub, addr, person, phone, host, area, services, companies, money, hours, lon, lat) in \
            enumerate(GBK_ROWS, start=1):
        rows.append([i, name, "黄浦区", sub, addr, person, phone, host, area, services, companies, money, hours,
                     f"{lon:.4f}", f"{lat:.4f}"])
    return _csv_text(rows).encode("gbk")


def _deterministic_zip(data: bytes) -> bytes:
    """The same workbook bytes every run: fixed times inside docProps/core.xml and on every zip entry."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2026-11-25T00:00:00Z",
                                 content)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=FIXED_TIME), content,
                         compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def merged_header_xlsx() -> bytes:
    import openpyxl
    from openpyxl.styles import Alignment, Font

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "申报汇总表"
    ncol = len(XLSX_HEADER)
    center = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws.cell(1, 1, XLSX_TITLE).font = Font(bold=True, size=14)
    ws.cell(1, 1).alignment = center
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncol)
    for col, text in enumerate(XLSX_HEADER, start=1):
        if col in XLSX_SUBHEADER:
            continue
        ws.cell(2, col, text).alignment = center
        ws.merge_cells(start_row=2, start_column=col, end_row=3, end_column=col)
    first = min(XLSX_SUBHEADER)
    ws.cell(2, first, "坐标").alignment = center
    ws.merge_cells(start_row=2, start_column=first, end_row=2, end_column=max(XLSX_SUBHEADER))
    for col, text in XLSX_SUBHEADER.items():
        ws.cell(3, col, text).alignment = center
    row = XLSX_FIRST_DATA_ROW
    district_start = {}
    for i, (district, name, sub, addr, person, phone, host, area, services, companies, money, hours, lon, lat) in \
            enumerate(XLSX_ROWS, start=1):
        values = [i, name, district, sub, addr, person, phone, host, area, services, companies, money, hours, lon,
                  lat]
        for col, value in enumerate(values, start=1):
            if col == 3 and district in district_start:
                continue    # only the first cell of a merged range holds the value
            ws.cell(row, col, value)
        district_start.setdefault(district, row)
        row += 1
    for district, start in district_start.items():
        end = start + sum(1 for r in XLSX_ROWS if r[0] == district) - 1
        ws.merge_cells(start_row=start, start_column=3, end_row=end, end_column=3)
        ws.cell(start, 3).alignment = center
    ws.cell(row, 1, "合计")
    ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=2)
    # the totals as values (what a reader sees of Excel's =SUM(...) cells: openpyxl stores no cached results)
    ws.cell(row, 9, sum(r[7] for r in XLSX_ROWS))
    ws.cell(row, 11, sum(r[9] for r in XLSX_ROWS))
    ws.cell(row, 12, sum(r[10] for r in XLSX_ROWS))
    for col, width in zip("ABCDEFGHIJKLMNO", (6, 28, 9, 12, 18, 10, 14, 22, 10, 26, 10, 10, 20, 11, 11)):
        ws.column_dimensions[col].width = width
    wb.properties.creator = "make_forms.py"
    buf = io.BytesIO()
    wb.save(buf)
    return _deterministic_zip(buf.getvalue())


def gcj02_geojson() -> bytes:
    features = []
    for name, district, sub, addr, host, services, hours, lon, lat in GCJ_FEATURES:
        glon, glat = crs.wgs84_to_gcj02(lon, lat)
        features.append({"type": "Feature",
                         "properties": {"名称": name, "行政区": district, "街镇": sub, "具体门牌号": addr,
                                        "所属单位": host, "提供设施及服务": services, "开放时间": hours},
                         "geometry": {"type": "Point", "coordinates": [round(float(glon), 7), round(float(glat), 7)]}})
    doc = {"type": "FeatureCollection", "name": "stations_gcj02", "features": features}
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def bd09_csv() -> bytes:
    rows = [BD_HEADER]
    for name, district, sub, addr, host, services, hours, lon, lat in BD_ROWS:
        blon, blat = crs.wgs84_to_bd09(lon, lat)
        rows.append([name, district, sub, addr, host, services, hours, f"{float(blon):.7f},{float(blat):.7f}"])
    return _csv_text(rows).encode("utf-8-sig")


FORMS = {
    "stations_gbk.csv": gbk_csv,
    "stations_merged_header.xlsx": merged_header_xlsx,
    "stations_gcj02.geojson": gcj02_geojson,
    "stations_bd09.csv": bd09_csv,
}


def write_all(out_dir: Path = HERE) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in FORMS.items():
        path = out_dir / name
        path.write_bytes(make())
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(f"wrote {p} ({p.stat().st_size} bytes)")
