"""Hardening of data management after the audit of the running server (findings 5-12), one test per finding.

5 formulas in exports (CSV injection), 6 chunked uploads over the limit, 7 zip bombs and row limits, 8 the CSV
dialect, 9 id generation after a rollback, 10 the id high-water mark and kill -9, 11 a full disk while storing an
upload, 12 token scopes on the audit log (and history, export, jobs).
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import orjson
import pyogrio
import pytest
from click.testing import CliRunner
from shapely.geometry import Point

from tests.conftest import start_server, stop_server, write_tiny_layers
from geoserver.cli import main
from geoserver.core import importer, tabular
from geoserver.core.auth import TokenStore, tokens_path
from geoserver.core.importer import ImportOptions
from geoserver.core.manage import DataManager
from geoserver.core.service import DEFAULT_DATA_DIR, GeoService
from geoserver.core.store import FAULT_ENV, LayerStore
from geoserver.core.tabular import ImportFileError
from geoserver.web import create_app

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["名称", "行政区", "具体门牌号", "所属单位", "提供设施及服务", "开放时间", "经度", "纬度"]


@pytest.fixture(autouse=True)
def _no_fault_injection(monkeypatch):
    monkeypatch.delenv(FAULT_ENV, raising=False)


@pytest.fixture()
def tiny(tmp_path, tiny_layers_dir) -> tuple[Path, Path]:
    """(data dir, layers dir) of the tiny test layers: four stations (A-D) in two box-shaped districts."""
    write_tiny_layers(tmp_path / "data")
    return tmp_path / "data", tiny_layers_dir


@pytest.fixture()
def bundled(tmp_path) -> Path:
    target = tmp_path / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def csv_bytes(rows, header=HEADER, delimiter=",", encoding="utf-8") -> bytes:
    """Rows as Excel writes them: csv.excel quoting (fields with quotes, commas or line breaks quoted, quotes
    doubled), CRLF."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerows([header, *rows])
    return buf.getvalue().encode(encoding)


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_csv(path_or_bytes) -> list[list[str]]:
    raw = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


# --- 5. exports carry no live formulas ----------------------------------------------------------------------------
FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(1)", "-2+3"]
FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")   # what Excel takes for the start of a formula (OWASP)


def test_05_exports_neutralise_formulas_and_still_import_back_unchanged(stored_data, tmp_path):
    store = stored_data()       # the bundled data in files, or in a PostGIS database
    rows = [[name, "黄浦区", "=1+2" if i == 0 else f"人民大道{i}号", "-工会-" if i == 1 else "工会", "补水", "24/7",
             f"121.47{i}", "31.225"] for i, name in enumerate(FORMULAS)]
    form = tmp_path / "formulas.csv"
    form.write_bytes(csv_bytes(rows))

    # imported as written, each such text cell with a warning naming its row and column in Chinese and English
    result = store.cli("import", "stations", form, "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "第2行，名称：以“=”开头，Excel 可能把它当作公式执行：已按原文保存（导出时前面会加单引号 '）（提示）" in lines
    assert "  row 2, 名称: starts with '=', which Excel may run as a formula: stored as written (exports put a ' in " \
           "front of it) (warning)" in lines
    for row_number, column, char in ((2, "具体门牌号", "="), (3, "名称", "+"), (3, "所属单位", "-"), (4, "名称", "@"),
                                     (5, "名称", "-")):
        assert f"第{row_number}行，{column}：以“{char}”开头，Excel 可能把它当作公式执行：已按原文保存（导出时前面会加单引号 '）（提示）" \
            in lines, (row_number, column)
    assert "stations: version 2: 4 added" in result.output
    layer = store.service().layer("stations")
    stored = {p["name"]: p for p in layer.properties}
    assert set(FORMULAS) <= set(stored)
    assert stored[FORMULAS[0]]["address"] == "=1+2" and stored["+1+1"]["host_org"] == "-工会-"

    def check_csv(raw: bytes):
        table = read_csv(raw)
        header = table[0]
        by_name = {r[header.index("名称")]: r for r in table[1:]}
        for name in FORMULAS:
            cells = by_name["'" + name]
            assert cells[header.index("经度")].startswith("121.47") and cells[header.index("纬度")] == "31.225"
        assert by_name["'" + FORMULAS[0]][header.index("具体门牌号")] == "'=1+2"
        assert by_name["'+1+1"][header.index("所属单位")] == "'-工会-"
        assert not any(c.startswith(FORMULA_CHARS) for row in table for c in row)

    def check_xlsx(raw: bytes):
        ws = openpyxl.load_workbook(io.BytesIO(raw)).active   # formulas kept: a formula cell would show as one
        cells = [c for row in ws.iter_rows() for c in row]
        assert not [c.coordinate for c in cells if c.data_type == "f"]
        header = [c.value for c in next(ws.iter_rows())]
        by_name = {row[header.index("名称")].value: row for row in ws.iter_rows(min_row=2)}
        for name in FORMULAS:
            row = by_name["'" + name]
            assert row[header.index("名称")].data_type == "s"
            assert isinstance(row[header.index("经度")].value, float) and row[header.index("经度")].data_type == "n"
        assert by_name["'" + FORMULAS[0]][header.index("具体门牌号")].value == "'=1+2"

    # the CLI export, both formats; each imports back unchanged
    for name, check in (("list.csv", check_csv), ("list.xlsx", check_xlsx)):
        out = tmp_path / name
        assert store.cli("export", "stations", out).exit_code == 0
        check(out.read_bytes())
        back = store.cli("import", "stations", out, "--crs", "wgs84")
        assert back.exit_code == 0, back.output
        assert back.output.splitlines()[-1] == \
            "stations: no changes (3404 features already as in the file); no new version"
        assert "Excel 可能把它当作公式" not in back.output   # the quote says the text is safe: no warning again

    # the admin API's export, both formats
    service = store.service()
    token = service.storage.tokens().add("alice")
    client = create_app(service=service).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    check_csv(client.get("/api/admin/layers/stations/export?format=csv", headers=auth).data)
    check_xlsx(client.get("/api/admin/layers/stations/export?format=xlsx", headers=auth).data)

    # the rejected rows and the --report CSV: the cells as written, but neutralised
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes([["=HYPERLINK(\"http://evil\",\"点我\")", "黄浦区", "@地址", "工会", "补水", "24/7", "abc",
                                "31.225"]]))
    report = tmp_path / "report.csv"
    refused = store.cli("import", "stations", bad, "--crs", "wgs84", "--report", report)
    assert refused.exit_code == 1
    rejected = read_csv(tmp_path / "bad.rejected.csv")
    assert rejected[1][:4] == ["2", "'=HYPERLINK(\"http://evil\",\"点我\")", "黄浦区", "'@地址"]
    problems = read_csv(report)
    assert ["2", "名称", "warning", "formula_like", "'=HYPERLINK(\"http://evil\",\"点我\")"] in [p[:5] for p in problems]
    assert ["2", "经度", "error", "coord_not_number", "abc"] in [p[:5] for p in problems]
    for table in (rejected, problems):
        assert not any(c.startswith(FORMULA_CHARS) for row in table for c in row)


# --- 6. an upload over the limit, chunked or not, is a 413 and never a partial import ---------------------------
def test_06_chunked_upload_over_the_limit_is_413_never_a_partial_import(tiny, tmp_path):
    data, layers = tiny
    limit = 4000
    tokens = tmp_path / "tokens.json"
    token = TokenStore(tokens).add("alice")
    url, proc = start_server({"GEOSERVER_DATA_DIR": str(data), "GEOSERVER_LAYERS_DIR": str(layers),
                              "GEOSERVER_TOKENS_FILE": str(tokens), "GEOSERVER_ADMIN_MAX_UPLOAD_BYTES": str(limit)},
                             workers=1)
    port = int(url.rsplit(":", 1)[1])
    before = sha(data / "stations.gpkg")
    big = csv_bytes([[f"驿站{i}", "黄浦区", f"人民大道{i}号", "工会", "补水", "24/7", f"121.4{i:03d}", "31.25"]
                     for i in range(400)])        # ~20 KB: the first ~70 rows fit under the limit
    small = csv_bytes([[f"驿站{i}", "黄浦区", f"人民大道{i}号", "工会", "补水", "24/7", f"121.4{i:03d}", "31.25"]
                       for i in range(20)])
    assert len(big) > 4 * limit and len(small) < limit

    def multipart(payload: bytes) -> tuple[bytes, str]:
        boundary = "----geoserver-test"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"list.csv\"\r\n"
                f"Content-Type: text/csv\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
        return body, f"multipart/form-data; boundary={boundary}"

    def post(payload: bytes, kind: str, chunked: bool, query: str = "crs=wgs84&mode=replace&skip_invalid=true"):
        if kind == "multipart":
            body, content_type = multipart(payload)
        else:
            body, content_type, query = payload, "text/csv", query + "&filename=list.csv"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
            if chunked:
                conn.request("POST", f"/api/admin/layers/stations/import?{query}",
                             body=(body[i:i + 1000] for i in range(0, len(body), 1000)), headers=headers,
                             encode_chunked=True)
            else:
                conn.request("POST", f"/api/admin/layers/stations/import?{query}", body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), json.loads(resp.read())
        finally:
            conn.close()

    try:
        for kind in ("raw", "multipart"):
            for chunked in (True, False):
                status, content_type, body = post(big, kind, chunked)
                assert (status, content_type) == (413, "application/json"), (kind, chunked, body)
                assert body["code"] == "RequestEntityTooLarge" and body["parameter"] == "file"
                assert body["description"].startswith(f"the upload is larger than the {limit:,} bytes this server "
                                                      "accepts (GEOSERVER_ADMIN_MAX_UPLOAD_BYTES); nothing was "
                                                      "imported")
                assert sha(data / "stations.gpkg") == before, (kind, chunked)
        # a chunked body under the limit is read whole (checked, not stored: a dry run)
        for kind in ("raw", "multipart"):
            status, _, body = post(small, kind, True, "crs=wgs84&dry_run=true")
            assert status == 200, body
            assert (body["report"]["rows"], body["report"]["valid_rows"], body["imported"]) == (20, 20, False)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/admin/layers/stations/features?limit=1", headers={"Authorization": f"Bearer {token}"})
        assert json.loads(conn.getresponse().read())["numberMatched"] == 4
        conn.close()
    finally:
        stop_server(proc)
    assert sha(data / "stations.gpkg") == before
    assert LayerStore(data).versions("stations") == []


# --- 7. a .zip is a zipped Shapefile only; size and row limits for every format ---------------------------------
def _stations_frame(n: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [f"驿站{i}" for i in range(n)], "district": ["黄浦区"] * n,
                             "address": [f"人民大道{i}号" for i in range(n)], "host_org": ["工会"] * n,
                             "services": ["water"] * n, "hours": ["24/7"] * n},
                            geometry=[Point(121.47 + i * 1e-4, 31.225) for i in range(n)], crs="EPSG:4326")


def _zipped_shapefile(folder: Path, n: int, extra: dict[str, bytes] | None = None) -> Path:
    folder.mkdir()
    _stations_frame(n).to_file(folder / "stations.shp", driver="ESRI Shapefile", encoding="UTF-8")
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for part in sorted(folder.iterdir()):
            z.write(part, part.name)
        for name, content in (extra or {}).items():
            z.writestr(name, content)
    return archive


def test_07_zip_bombs_and_oversized_files_are_refused_before_they_are_read(bundled, tmp_path, monkeypatch):
    manager = DataManager(GeoService(data_dir=bundled))

    def check(path: Path):
        return manager.check("stations", path, ImportOptions(datum="wgs84"))

    # a zip bomb: 20,000 identical features of GeoJSON, highly compressible, in a .zip
    feature = {"type": "Feature", "properties": {"名称": "驿站", "行政区": "黄浦区", "具体门牌号": "人民大道1号"},
               "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]}}
    text = json.dumps({"type": "FeatureCollection", "features": [feature] * 20_000}, ensure_ascii=False)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("stations.geojson", text)
    assert bomb.stat().st_size * 50 < len(text.encode())
    with pytest.raises(ImportFileError) as err:
        check(bomb)
    assert err.value.message.startswith("bomb.zip may hold only one Shapefile's parts (.shp、.shx、.dbf、.prj、.cpg); it "
                                        "also holds stations.geojson")
    assert err.value.parameter == "file"

    # the same through the admin API: a 400 with the message, nothing changed
    token = TokenStore(tokens_path(bundled)).add("alice")
    client = create_app(service=manager.service).test_client()
    r = client.post("/api/admin/layers/stations/import?crs=wgs84", headers={"Authorization": f"Bearer {token}"},
                    data={"file": (io.BytesIO(bomb.read_bytes()), "bomb.zip")}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["code"] == "InvalidFile" and "stations.geojson" in r.json["description"]

    # a zipped Shapefile: other files beside it, two layers, too many members, too large unpacked
    ok = _zipped_shapefile(tmp_path / "ok", 3)
    assert check(ok).rows == 3
    with pytest.raises(ImportFileError, match=r"it also holds readme\.txt"):
        check(_zipped_shapefile(tmp_path / "extra", 3, {"readme.txt": b"hello"}))
    with pytest.raises(ImportFileError, match=r"must hold exactly one Shapefile"):
        check(_zipped_shapefile(tmp_path / "two", 3, {"other.shp": b"\x00\x00\x27\x0a", "other.dbf": b""}))
    with pytest.raises(ImportFileError, match=r"holds \d\d files; a zipped Shapefile has at most 5"):
        check(_zipped_shapefile(tmp_path / "many", 3, {f"d{i}/x.prj": b"" for i in range(35)}))
    unpacked = sum(i.file_size for i in zipfile.ZipFile(ok).infolist())
    monkeypatch.setattr(tabular, "ZIP_MAX_UNPACKED_BYTES", unpacked - 1)
    extracted = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: extracted.append(a) or pytest.fail("extracted"))
    with pytest.raises(ImportFileError) as err:
        check(ok)
    assert err.value.message.startswith(f"ok.zip unpacks to {unpacked:,} bytes, more than the {unpacked - 1:,}")
    assert extracted == []
    monkeypatch.undo()
    monkeypatch.delenv(FAULT_ENV, raising=False)

    # at most MAX_ROWS rows in every format, counted before the rows are loaded
    monkeypatch.setattr(tabular, "MAX_ROWS", 50)
    message = ("has 51 rows, more than the 50 a facility list can have; split the file（共 51 行，超过设施清单上限 50 行，"
               "请拆分文件）")
    rows = [[f"驿站{i}", "黄浦区", f"人民大道{i}号", "工会", "补水", "24/7", f"{121.47 + i * 1e-4:.4f}", "31.225"]
            for i in range(51)]
    form = tmp_path / "rows.csv"
    form.write_bytes(csv_bytes(rows[:50]))
    assert check(form).rows == 50                      # the limit itself is fine
    form.write_bytes(csv_bytes(rows))
    with pytest.raises(ImportFileError) as err:
        check(form)
    assert err.value.message == "the file " + message

    def workbook(n: int) -> Path:
        book = openpyxl.Workbook()
        for r in [HEADER, *[[f"驿站{i}", *cells[1:]] for i in range(n) for cells in rows[:1]]]:
            book.active.append(r)
        book.save(tmp_path / f"rows{n}.xlsx")
        return tmp_path / f"rows{n}.xlsx"

    with pytest.raises(ImportFileError) as err:
        check(workbook(51))
    assert err.value.message == "the file " + message
    full_loads = []
    real_load = openpyxl.load_workbook
    monkeypatch.setattr(openpyxl, "load_workbook",
                        lambda *a, **k: real_load(*a, **k) if k.get("read_only") else full_loads.append(k))
    with pytest.raises(ImportFileError) as err:      # far more: refused from the streamed count, never loaded whole
        check(workbook(100))
    assert err.value.message.startswith("sheet 'Sheet' has 101 rows, more than the 50 a facility list can have")
    assert full_loads == []
    monkeypatch.setattr(openpyxl, "load_workbook", real_load)
    form.write_bytes(csv_bytes(rows * 2))
    with pytest.raises(ImportFileError) as err:
        check(form)
    assert err.value.message.startswith("the file has 103 rows, more than the 50")

    frame = _stations_frame(51)
    frame.to_file(tmp_path / "rows.geojson", driver="GeoJSON")
    frame.to_file(tmp_path / "rows.gpkg", driver="GPKG")
    archive = _zipped_shapefile(tmp_path / "rows", 51)
    monkeypatch.setattr(pyogrio, "read_dataframe", lambda *a, **k: pytest.fail("the rows were loaded"))
    for path in (tmp_path / "rows.geojson", tmp_path / "rows.gpkg", archive):
        with pytest.raises(ImportFileError) as err:
            check(path)
        assert err.value.message == f"{path.name} " + message


# --- 8. CSV read as Excel writes it, whatever the first 8 KB hold ------------------------------------------------
def test_08_csv_quotes_and_commas_are_read_as_excel_writes_them(bundled, tmp_path):
    """Names with quotes and commas as Excel writes them (quoted, quotes doubled), after 8 KB of plain rows (no
    quotes there for csv.Sniffer to learn from) and at the start; comma, semicolon and tab files, UTF-8 and GBK."""
    manager = DataManager(GeoService(data_dir=bundled))
    tricky = ['阳光"之家"驿站', "驿站,有逗号", '"引号"开头的驿站', '逗号,和"引号"都有的驿站']

    def row(name, i, address="人民大道{i}号,近西藏路", hours="Mo-Fr 09:00-17:00; Sa 10:00-12:00"):
        return [name, "黄浦区", address.format(i=i), "黄浦区总工会", "补水、休憩", hours, f"{121.47 + i * 1e-4:.4f}",
                "31.225"]

    filler = [row(f"普通驿站{i}", 10 + i, "人民大道{i}号", "24/7") for i in range(150)]
    late = [*filler, *(row(name, i) for i, name in enumerate(tricky))]
    early = [*(row(name, i) for i, name in enumerate(tricky)), *filler]
    for rows, delimiter, encoding in ((late, ",", "utf-8"), (late, ",", "gbk"), (early, ",", "utf-8"),
                                      (late, ";", "utf-8"), (late, "\t", "utf-8")):
        form = tmp_path / "tricky.csv"
        form.write_bytes(csv_bytes(rows, delimiter=delimiter, encoding=encoding))
        if rows is late and delimiter == ",":
            assert b'"' not in form.read_bytes()[:8192] and form.read_bytes().index(b'"') > 8192
        report = manager.check("stations", form, ImportOptions(datum="wgs84"))
        assert report.errors == [], (delimiter, report.lines()[:4])
        by_name = {r["name"]: r for r in report.records}
        for i, name in enumerate(tricky):
            assert name in by_name, (delimiter, encoding, sorted(by_name)[-4:])
            rec = by_name[name]
            assert (rec["address"], rec["host_org"], rec["opening_hours"], rec["_lon"], rec["_lat"]) == \
                (f"人民大道{i}号,近西藏路", "黄浦区总工会", "Mo-Fr 09:00-17:00; Sa 10:00-12:00",
                 round(121.47 + i * 1e-4, 4), 31.225), (delimiter, name)
        assert len(report.records) == len(rows) == 154


# --- 9. id generation after a rollback is linear -------------------------------------------------------------------
def test_09_ids_after_a_rollback_are_generated_in_one_pass(tiny_service, monkeypatch):
    """Generated ids that fall under the issued high-water mark (after a rollback) are renumbered by one generator:
    the taken ids are scanned once, not once per row (20,000 rows took 54 s under the write lock)."""
    manager = DataManager(tiny_service)

    def rows(n):   # what the importer generates from the rolled-back layer: ST00001 ... (numbers given out before)
        return [{"id": f"ST{i:05d}", "_generated_id": True, "name": f"驿站{i}", "district": "黄浦区",
                 "district_code": "310101", "address": f"人民大道{i}号", "services": "water"} for i in range(1, n + 1)]

    first = manager.editor.apply("stations", upserts=rows(3), who="test", action="import-merge")
    assert first.added == ["ST00001", "ST00002", "ST00003"]
    manager.rollback("stations", 1, who="test")

    scans = []
    real = importer.new_ids

    def counted(spec, taken):
        scans.append(len(taken))
        if len(scans) > 3:
            raise AssertionError("the taken ids were scanned again for another row: quadratic")
        return real(spec, taken)

    monkeypatch.setattr(importer, "new_ids", counted)
    change = manager.editor.apply("stations", upserts=rows(20_000), who="test", action="import-merge")
    assert len(scans) == 1
    assert len(change.added) == 20_000 and len(set(change.added)) == 20_000
    assert change.added[0] == "ST00004" and change.added[-1] == "ST20003"   # never ST00001-3 again
    assert change.features == 20_004


# --- 10. the id high-water mark is on disk before the data it covers ----------------------------------------------
def run_cli(data, *args, fault: str | None = None) -> subprocess.CompletedProcess:
    """``geoserver`` in a process of its own on a data directory (a Path) or a ``stored_data()`` copy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSERVER_")}
    if fault:
        env[FAULT_ENV] = fault
    options = data.options() if hasattr(data, "options") else ["--data-dir", str(data)]
    return subprocess.run([sys.executable, "-m", "geoserver.cli", *options, *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def kill_test_forms(tmp_path: Path) -> tuple[Path, Path]:
    """Two forms without ids: 甲站 and 乙站 (the import that is killed), then 丙站."""
    header = "名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度"
    first = tmp_path / "first.csv"
    first.write_text(f"{header}\n甲站,黄浦区,人民大道1号,区总工会,补水,24/7,121.4737,31.2304\n"
                     f"乙站,徐汇区,漕溪北路1号,区总工会,补水,24/7,121.4365,31.1951\n", encoding="utf-8")
    second = tmp_path / "second.csv"
    second.write_text(f"{header}\n丙站,浦东新区,陆家嘴环路1号,区总工会,补水,24/7,121.5055,31.2397\n", encoding="utf-8")
    return first, second


def test_10_killed_after_the_swap_never_gives_an_id_out_twice(bundled, tmp_path):
    """The file backend: issued_ids.json is written before the swap, and each version records the mark too."""
    first, second = kill_test_forms(tmp_path)
    killed = run_cli(bundled, "import", "stations", first, "--crs", "wgs84", fault="kill:activated")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = LayerStore(bundled)
    names = dict(zip(*[pyogrio.read_dataframe(bundled / "stations.gpkg", columns=["id", "name"],
                                              read_geometry=False)[c] for c in ("name", "id")]))
    assert (names["甲站"], names["乙站"]) == ("ST03401", "ST03402")    # the killed import's data is current
    issued = store.history_dir("stations") / "issued_ids.json"
    assert orjson.loads(issued.read_bytes()) == {"ST": 3402}
    assert store.version("stations", 2).summary["id_high_water"] == 3402

    # its rows go away again (a rollback); the next rows without ids get new numbers, never ST03401 or ST03402
    assert cli("--data-dir", bundled, "rollback", "stations", "1").exit_code == 0
    result = cli("--data-dir", bundled, "import", "stations", second, "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    ids = dict(zip(*[pyogrio.read_dataframe(bundled / "stations.gpkg", columns=["id", "name"],
                                            read_geometry=False)[c] for c in ("name", "id")]))
    assert ids["丙站"] == "ST03403"
    assert "甲站" not in ids and "乙站" not in ids
    assert orjson.loads(issued.read_bytes()) == {"ST": 3403}

    # the mark a version records counts even if issued_ids.json is lost
    issued.unlink()
    result = cli("--data-dir", bundled, "rollback", "stations", "1")
    assert result.exit_code == 0, result.output
    again = cli("--data-dir", bundled, "import", "stations", second, "--crs", "wgs84")
    assert again.exit_code == 0, again.output
    ids = dict(zip(*[pyogrio.read_dataframe(bundled / "stations.gpkg", columns=["id", "name"],
                                            read_geometry=False)[c] for c in ("name", "id")]))
    assert ids["丙站"] == "ST03404"


def test_10_an_import_killed_as_it_commits_never_lets_an_id_name_two_facilities(stored_data, tmp_path):
    """Killed (kill -9) where its data becomes current, then rollbacks and imports: a new id never repeats one that
    any stored version held. What the kill leaves differs by design: the file backend's commit point, the swap,
    came just before it (the killed import is version 2, current); PostGIS stores the version, the table and the id
    mark in one transaction, which the kill aborts (version 1 stays current, its ids were never given out)."""
    store = stored_data()
    spec = store.specs["stations"]
    first, second = kill_test_forms(tmp_path)

    def ids() -> dict[str, str]:
        return {r["name"]: fid for fid, r in store.records().items()}

    def ever_stored() -> set[str]:
        storage = store.storage()
        return {r["id"] for n in store.versions() for r in storage.read_records(spec, n)[0]}

    killed = run_cli(store, "import", "stations", first, "--crs", "wgs84", fault="kill:activated")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if store.kind == "files":
        assert (ids()["甲站"], ids()["乙站"]) == ("ST03401", "ST03402") and store.versions() == [1, 2]
        assert store.storage().issued(spec) == 3402
        assert store.cli("rollback", "stations", "1").exit_code == 0       # its rows go away again
    else:
        assert "甲站" not in ids() and "乙站" not in ids() and store.versions() == [1]
        assert store.storage().issued(spec) == 0
    expected = {"files": 3403, "postgis": 3401}[store.kind]
    for _ in range(2):        # an import of rows without ids, rolled back: the next one takes the next number
        before = ever_stored()
        result = store.cli("import", "stations", second, "--crs", "wgs84")
        assert result.exit_code == 0, result.output
        now = ids()
        assert now["丙站"] == f"ST0{expected}" and now["丙站"] not in before
        assert "甲站" not in now and "乙站" not in now
        assert store.storage().issued(spec) == expected
        result = store.cli("rollback", "stations", "1")
        assert result.exit_code == 0, result.output
        expected += 1


# --- 11. a full disk while storing the upload is a 503 ---------------------------------------------------------
def test_11_disk_full_while_storing_the_upload_is_503(tiny_file_service, monkeypatch):
    token = TokenStore(tokens_path(tiny_file_service.data_dir)).add("alice")
    client = create_app(service=tiny_file_service).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    before = sha(tiny_file_service.data_dir / "stations.gpkg")
    form = csv_bytes([["外滩驿站", "黄浦区", "中山东一路1号", "工会", "补水", "24/7", "121.48", "31.24"]])
    monkeypatch.setenv(FAULT_ENV, "enospc:upload-write")
    answers = [
        client.post("/api/admin/layers/stations/import?crs=wgs84", headers=auth,
                    data={"file": (io.BytesIO(form), "list.csv")}, content_type="multipart/form-data"),
        client.post("/api/admin/layers/stations/import?crs=wgs84&filename=list.csv", headers=auth, data=form,
                    content_type="text/csv"),
    ]
    for r in answers:
        assert r.status_code == 503, r.get_data(as_text=True)
        assert r.json == {"code": "StoreError", "description": (
            "the server's disk is full: the uploaded file could not be stored (No space left on device); nothing was "
            "imported; try again later or tell the operator（服务器磁盘已满，上传的文件无法保存，未导入任何数据）")}
    assert sha(tiny_file_service.data_dir / "stations.gpkg") == before
    assert list((tiny_file_service.data_dir / ".geoserver" / "uploads").iterdir()) == []   # nothing left behind
    monkeypatch.delenv(FAULT_ENV)
    ok = client.post("/api/admin/layers/stations/import?crs=wgs84&filename=list.csv", headers=auth, data=form,
                     content_type="text/csv")
    assert ok.status_code == 200 and ok.json["change"]["added"] == 1


# --- 12. token scopes apply to the audit log, history, export and jobs ---------------------------------------------
def test_12_a_scoped_token_sees_only_its_layers_in_the_audit_log_history_export_and_jobs(tiny_service):
    store = tiny_service.storage.tokens()
    alice = {"Authorization": f"Bearer {store.add('alice')}"}                     # every layer
    bob = {"Authorization": f"Bearer {store.add('bob', ('canteens',))}"}          # canteens only
    carol = {"Authorization": f"Bearer {store.add('carol', ('stations',))}"}      # stations only
    app = create_app(service=tiny_service)
    client = app.test_client()
    r = client.delete("/api/admin/layers/stations/features/A", headers=alice)
    assert r.status_code == 200
    tiny_service.storage.audit({"who": "dave", "action": "import-merge", "layer": "canteens", "file": "食堂.csv",
                                "version": 2})

    def audit(headers, query=""):
        return client.get(f"/api/admin/audit{query}", headers=headers)

    assert [(a["who"], a["layer"]) for a in audit(alice).json["records"]] == [("dave", "canteens"),
                                                                              ("alice", "stations")]
    assert [(a["who"], a["layer"]) for a in audit(carol).json["records"]] == [("alice", "stations")]
    assert [(a["who"], a["layer"]) for a in audit(bob).json["records"]] == [("dave", "canteens")]
    assert "stations" not in audit(bob).get_data(as_text=True)
    refused = audit(bob, "?layer=stations")
    assert refused.status_code == 403
    assert refused.json == {"code": "Forbidden", "parameter": "layer",
                            "description": "operator 'bob' may not see the audit log of layer 'stations'"}
    assert [a["layer"] for a in audit(carol, "?layer=stations").json["records"]] == ["stations"]
    assert audit(carol, "?layer=canteens").status_code == 403
    assert [a["layer"] for a in audit(alice, "?layer=canteens").json["records"]] == ["canteens"]

    # history, export, rollback, the features, an import: the layer's scope (403), as for edits
    for method, path in (("get", "/history"), ("get", "/export?format=csv"), ("get", "/export?format=xlsx"),
                         ("post", "/rollback"), ("get", "/features"), ("get", "/features/B"), ("post", "/import")):
        r = getattr(client, method)(f"/api/admin/layers/stations{path}", headers=bob, json={"version": 1})
        assert r.status_code == 403, (method, path)
        assert r.json == {"code": "Forbidden", "parameter": "layer",
                          "description": "operator 'bob' may not change layer 'stations'"}
        assert "甲" not in r.get_data(as_text=True)
    assert client.get("/api/admin/layers/stations/history", headers=carol).status_code == 200

    # a geocoding job of the stations layer: its owner's scope only
    job = app.extensions["jobs"].create("geocode", {"layer": "stations", "retry_failed": False, "dry_run": False,
                                                     "operator": "alice"})
    for method in ("get", "delete"):
        r = getattr(client, method)(f"/api/admin/jobs/{job}", headers=bob)
        assert r.status_code == 403 and r.json["parameter"] == "layer"
    assert client.get(f"/api/admin/jobs/{job}", headers=carol).status_code == 200
