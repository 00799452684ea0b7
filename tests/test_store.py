"""Versioned, crash-safe layer storage: history and rollback through the CLI, the audit log, killed and failing
writers (injected faults and a real file size limit), concurrent writers and readers during commits.

Every test works on a copy of the bundled data directory; the bundled data/geo/ is never written.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyogrio
import pytest
from click.testing import CliRunner

from geoserver.cli import main
from geoserver.core.service import DEFAULT_DATA_DIR, GeoService
from geoserver.core.store import FAULT_ENV, LayerStore

ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_COUNT = 3400   # stations in the bundled data
HEADER = "名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度"
ROWS_A = ["测试驿站甲,黄浦区,人民大道100号,黄浦区总工会,补水、休憩,24/7,121.4737,31.2304",
          "测试驿站乙,徐汇区,漕溪北路1号,徐汇区总工会,补水、休憩,24/7,121.4365,31.1951"]
ROWS_B = ["测试驿站丙,浦东新区,陆家嘴环路1号,浦东新区总工会,补水、休憩,24/7,121.5055,31.2397"]
HISTORY_HEADER = "version  created (UTC)         who                   action           features  changes"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --- helpers ------------------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_fault_injection(monkeypatch):
    """In-process CLI runs of this file never inherit a fault point from the caller's environment."""
    monkeypatch.delenv(FAULT_ENV, raising=False)


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    target = tmp_path / "geo"
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def write_csv(path: Path, rows: list[str], ids: list[str] | None = None) -> Path:
    lines = [HEADER] + rows
    if ids is not None:
        lines = ["编号," + HEADER] + [f"{fid},{row}" for fid, row in zip(ids, rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def history_dir(data: Path) -> Path:
    return data / ".geoserver" / "history" / "stations"


def leftovers(data: Path) -> list[Path]:
    """Temporary files or folders a writer left in the data directory or the layer's history."""
    found = list(data.glob(".*.tmp*"))
    if history_dir(data).is_dir():
        found += list(history_dir(data).glob(".*.tmp*"))
    return found


def cli_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOSERVER_")}
    return {**env, **extra}


def run_cli(data: Path, *args, env: dict | None = None, preexec_fn=None) -> subprocess.CompletedProcess:
    """The real CLI in its own process: ``python -m geoserver.cli --data-dir DATA ...``."""
    return subprocess.run([sys.executable, "-m", "geoserver.cli", "--data-dir", str(data), *map(str, args)],
                          cwd=ROOT, env=env or cli_env(), capture_output=True, text=True, timeout=120,
                          preexec_fn=preexec_fn)


def invoke(data: Path, *args):
    """The CLI in this process (click's CliRunner)."""
    return CliRunner().invoke(main, ["--data-dir", str(data), *map(str, args)])


def assert_one_line_error(result, *fragments: str) -> str:
    """A CliRunner result that failed with exit code 1 and one 'Error: ...' line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def history_rows(output: str) -> list[dict]:
    """`geoserver history` output as rows, by the columns of its fixed-width header."""
    lines = output.splitlines()
    assert lines[0] == HISTORY_HEADER
    rows = []
    for line in lines[1:]:
        if line.startswith("note:"):
            continue
        rows.append({"version": line[:7].rstrip(), "mark": line[7], "created": line[9:31].rstrip(),
                     "who": line[31:53].rstrip(), "action": line[53:69].rstrip(), "features": int(line[69:78]),
                     "changes": line[80:], "line": line})
        assert line[8] == " " and line[78:80] == "  ", line
    return rows


def station_names(data: Path) -> list[str]:
    return list(pyogrio.read_dataframe(data / "stations.gpkg", columns=["name"], read_geometry=False)["name"])


# --- 1. history, rollback, hand edits, audit log (in-process CLI) -------------------------------------------------
def test_history_rollback_found_on_disk_and_audit(data_dir, tmp_path):
    store = LayerStore(data_dir)
    original = sha256(data_dir / "stations.gpkg")
    file_a = write_csv(tmp_path / "a.csv", ROWS_A)
    file_b = write_csv(tmp_path / "b.csv", ROWS_B)

    result = invoke(data_dir, "history", "stations")
    assert result.exit_code == 0 and "no recorded versions yet" in result.output

    # first import: the previous data becomes version 1 ("initial"), the import version 2
    result = invoke(data_dir, "import", "stations", file_a, "--crs", "wgs84", "--who", "tester")
    assert result.exit_code == 0, result.output
    assert f"stations: version 2: 2 added, 0 updated, 0 removed, {ORIGINAL_COUNT} unchanged; " \
           f"{ORIGINAL_COUNT + 2} features" in result.output
    assert sha256(history_dir(data_dir) / "000001.gpkg") == original
    assert [v.number for v in store.versions("stations")] == [1, 2]

    result = invoke(data_dir, "history", "stations")
    assert result.exit_code == 0, result.output
    v1, v2 = history_rows(result.output)
    assert (v1["version"], v1["mark"], v1["who"], v1["action"], v1["features"]) == \
        ("v1", " ", "geoserver", "initial", ORIGINAL_COUNT)
    assert v1["changes"] == "the data as it was before the first recorded change"
    assert (v2["version"], v2["mark"], v2["who"], v2["action"], v2["features"], v2["changes"]) == \
        ("v2", "*", "tester", "import-merge", ORIGINAL_COUNT + 2, "2 added (a.csv)")
    assert ISO_UTC.match(v1["created"]) and ISO_UTC.match(v2["created"])
    assert re.fullmatch(r"v2     \* \S+Z  tester {16}import-merge {9}3402  2 added \(a\.csv\)", v2["line"])

    # rollback to version 1: the original bytes come back, as a new version 3
    result = invoke(data_dir, "rollback", "stations", "1", "--who", "tester")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"stations: version 1 restored as version 3 ({ORIGINAL_COUNT} features)"
    assert sha256(data_dir / "stations.gpkg") == original
    assert GeoService(data_dir=data_dir).layer("stations").count == ORIGINAL_COUNT
    rows = history_rows(invoke(data_dir, "history", "stations").output)
    assert [(r["version"], r["mark"]) for r in rows] == [("v1", " "), ("v2", " "), ("v3", "*")]
    assert (rows[2]["action"], rows[2]["features"], rows[2]["changes"]) == ("rollback", ORIGINAL_COUNT,
                                                                            "restored v1")

    # clear one-line errors, nothing written
    audit_before = store.audit_path.read_bytes()
    assert_one_line_error(invoke(data_dir, "rollback", "stations", "3"), "already the current data")
    assert_one_line_error(invoke(data_dir, "rollback", "stations", "v1"), "version 1", "already the current data")
    assert_one_line_error(invoke(data_dir, "rollback", "stations", "99"), "no version 99", "versions: 1, 2, 3")
    assert_one_line_error(invoke(data_dir, "rollback", "stations", "abc"), "not a version number", "'abc'")
    assert_one_line_error(invoke(data_dir, "rollback", "stations", "0"), "not a version number")
    assert [v.number for v in store.versions("stations")] == [1, 2, 3]
    assert store.audit_path.read_bytes() == audit_before
    assert sha256(data_dir / "stations.gpkg") == original

    # a data file replaced by hand is kept as a version ("found-on-disk") before the next change
    hand = pyogrio.read_dataframe(data_dir / "stations.gpkg").iloc[:100]
    hand_path = tmp_path / "hand.gpkg"
    pyogrio.write_dataframe(hand, hand_path, layer="stations", driver="GPKG")
    shutil.copyfile(hand_path, data_dir / "stations.gpkg")
    hand_sha = sha256(data_dir / "stations.gpkg")
    result = invoke(data_dir, "history", "stations")
    assert "*" not in "".join(r["mark"] for r in history_rows(result.output))
    assert result.output.splitlines()[-1].startswith("note: the current data file matches no recorded version")

    result = invoke(data_dir, "import", "stations", file_b, "--crs", "wgs84", "--who", "tester2")
    assert result.exit_code == 0, result.output
    assert "stations: version 5: 1 added, 0 updated, 0 removed, 100 unchanged; 101 features" in result.output
    rows = history_rows(invoke(data_dir, "history", "stations").output)
    assert [(r["version"], r["mark"], r["who"], r["action"], r["features"]) for r in rows[3:]] == [
        ("v4", " ", "geoserver", "found-on-disk", 100), ("v5", "*", "tester2", "import-merge", 101)]
    assert rows[3]["changes"] == "the data file was changed outside geoserver; kept so it can be restored"
    assert sha256(history_dir(data_dir) / "000004.gpkg") == hand_sha
    assert store.version("stations", 4).sha256 == hand_sha

    # the audit log: one line per write (snapshots of older data are not writes), each with who/when/what
    records = [orjson.loads(line) for line in store.audit_path.read_bytes().splitlines()]
    assert [(r["who"], r["action"], r["layer"], r["version"]) for r in records] == [
        ("tester", "import-merge", "stations", 2), ("tester", "rollback", "stations", 3),
        ("tester2", "import-merge", "stations", 5)]
    for record in records:
        assert ISO_UTC.match(record["time"])
    assert records[0]["file"] == "a.csv" and records[0]["added"] == 2 and len(records[0]["added_ids"]) == 2
    assert records[0]["features"] == ORIGINAL_COUNT + 2 and records[0]["crs"] == "wgs84"
    assert records[1]["restored_version"] == 1 and records[1]["features"] == ORIGINAL_COUNT
    assert records[2]["file"] == "b.csv" and records[2]["features"] == 101
    assert store.audit_records(limit=1, layer="stations")[0]["version"] == 5
    assert leftovers(data_dir) == []


# --- 2. killed and failing writers (the real CLI in a subprocess, faults injected) --------------------------------
def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "geoserver.cli", "--help"], cwd=ROOT, env=cli_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "rollback" in result.stdout and "history" in result.stdout


@pytest.mark.parametrize("point", ["temp-written", "history-copied", "version-recorded", "before-activate"])
def test_killed_import_leaves_the_data_intact(data_dir, tmp_path, point):
    original = sha256(data_dir / "stations.gpkg")
    file_a = write_csv(tmp_path / "a.csv", ROWS_A)

    killed = run_cli(data_dir, "import", "stations", file_a, "--crs", "wgs84",
                     env=cli_env(**{FAULT_ENV: f"kill:{point}"}))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sha256(data_dir / "stations.gpkg") == original
    assert leftovers(data_dir), "a killed writer leaves its temporary files (this test checks they are cleaned)"
    assert GeoService(data_dir=data_dir).layer("stations").count == ORIGINAL_COUNT
    listing = invoke(data_dir, "layers")
    assert listing.exit_code == 0, listing.output
    assert re.search(rf"^stations +{ORIGINAL_COUNT} ", listing.output, re.M)
    store = LayerStore(data_dir)
    current = store.current_version("stations", "stations.gpkg")
    if point in ("version-recorded", "before-activate"):   # recorded, never made current
        assert [v.number for v in store.versions("stations")] == [1, 2] and current.number == 1
    else:
        assert current is None and store.versions("stations") == []

    # the next import works and removes what the killed one left
    result = invoke(data_dir, "import", "stations", file_a, "--crs", "wgs84")
    assert result.exit_code == 0, result.output
    assert f"{ORIGINAL_COUNT + 2} features" in result.output
    assert leftovers(data_dir) == []
    versions = store.versions("stations")
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    assert versions[0].action == "initial" and versions[0].sha256 == original
    assert store.current_version("stations", "stations.gpkg").number == versions[-1].number
    assert GeoService(data_dir=data_dir).layer("stations").count == ORIGINAL_COUNT + 2


@pytest.mark.parametrize("point", ["temp-written", "history-copied", "version-recorded", "before-activate"])
def test_disk_full_gives_one_clear_line_and_changes_nothing(data_dir, tmp_path, point):
    original = sha256(data_dir / "stations.gpkg")
    result = run_cli(data_dir, "import", "stations", write_csv(tmp_path / "a.csv", ROWS_A), "--crs", "wgs84",
                     env=cli_env(**{FAULT_ENV: f"enospc:{point}"}))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == "Error: could not write layer 'stations': No space left on device; the layer's data is " \
                       "unchanged"
    assert sha256(data_dir / "stations.gpkg") == original
    assert leftovers(data_dir) == []
    assert GeoService(data_dir=data_dir).layer("stations").count == ORIGINAL_COUNT
    store = LayerStore(data_dir)
    versions, current = store.versions("stations"), store.current_version("stations", "stations.gpkg")
    assert (current is None) if not versions else (current.number == 1 and versions[0].action == "initial")
    assert not store.audit_path.exists()   # nothing was changed, so nothing is logged


# --- 3. a real write failure: a file size limit (EFBIG), no root needed ---------------------------------------------
@pytest.mark.parametrize("fraction", [0.05, 0.33, None])
def test_file_size_limit_gives_a_clean_error(data_dir, tmp_path, fraction):
    """RLIMIT_FSIZE below the new file's size: GDAL's write (small limits) or the store's copies (just below the
    current file's size, None) fail with EFBIG (SIGXFSZ ignored); reading is not limited."""
    size = (data_dir / "stations.gpkg").stat().st_size
    limit = int(size * fraction) if fraction else size - 1
    original = sha256(data_dir / "stations.gpkg")

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    result = run_cli(data_dir, "import", "stations", write_csv(tmp_path / "a.csv", ROWS_A), "--crs", "wgs84",
                     preexec_fn=limit_file_size)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: could not write layer 'stations': ")
    assert lines[0].endswith("; the layer's data is unchanged")
    assert sha256(data_dir / "stations.gpkg") == original
    assert leftovers(data_dir) == []
    assert GeoService(data_dir=data_dir).layer("stations").count == ORIGINAL_COUNT


# --- 4. concurrent writers ---------------------------------------------------------------------------------
def _blocked_on(lock: Path) -> int:
    """How many processes wait for the flock on ``lock`` (Linux /proc/locks: blocked requests are marked ->)."""
    inode = os.stat(lock).st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if " -> " in line and re.search(rf":{inode} ", line))


def _concurrent_imports(data: Path, tmp_path: Path, with_ids: bool):
    """Two imports into the same layer, both checked against the same data, then released together."""
    file_a = write_csv(tmp_path / "a.csv", ROWS_A, ["TA1", "TA2"] if with_ids else None)
    file_b = write_csv(tmp_path / "b.csv", ROWS_B, ["TB1"] if with_ids else None)
    lock = history_dir(data) / ".lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)   # hold the layer's write lock while both start
        procs = [subprocess.Popen([sys.executable, "-m", "geoserver.cli", "--data-dir", str(data), "import",
                                   "stations", str(f), "--crs", "wgs84"], cwd=ROOT, env=cli_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for f in (file_a, file_b)]
        try:
            deadline = time.monotonic() + 60
            while _blocked_on(lock) < 2:
                assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
                assert time.monotonic() < deadline, "the imports never reached the layer lock"
                time.sleep(0.05)
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, out + err
    done = sorted(re.search(r"stations: version (\d+)", out).group(1) for out, _ in outputs)
    assert done == ["2", "3"]
    store = LayerStore(data)
    versions = store.versions("stations")
    assert [(v.number, v.action) for v in versions] == [(1, "initial"), (2, "import-merge"), (3, "import-merge")]
    assert store.current_version("stations", "stations.gpkg").number == 3
    assert leftovers(data) == []
    names = station_names(data)
    assert {"测试驿站甲", "测试驿站乙", "测试驿站丙"} <= set(names), "a row of one of the files was lost"
    assert len(names) == ORIGINAL_COUNT + 3 == versions[-1].features


def test_concurrent_imports_are_serialised(data_dir, tmp_path):
    _concurrent_imports(data_dir, tmp_path, with_ids=True)


def test_concurrent_imports_of_rows_without_ids_keep_both(data_dir, tmp_path):
    _concurrent_imports(data_dir, tmp_path, with_ids=False)


# --- 5. readers during commits --------------------------------------------------------------------------------
COMMIT_LOOP = """
import sys
from geoserver.cli import main
data, a, b = sys.argv[1:4]
for args in (["import", "stations", a, "--crs", "wgs84", "--replace"], ["rollback", "stations", "1"],
             ["import", "stations", b, "--crs", "wgs84", "--replace"], ["rollback", "stations", "1"],
             ["import", "stations", a, "--crs", "wgs84", "--replace"]):
    main(["--data-dir", data, *args], standalone_mode=False)
"""


def test_readers_never_see_a_partial_file(data_dir, tmp_path):
    file_a = write_csv(tmp_path / "a.csv", ROWS_A)
    file_b = write_csv(tmp_path / "b.csv", ROWS_B)
    path = data_dir / "stations.gpkg"
    expected = {ORIGINAL_COUNT, len(ROWS_A), len(ROWS_B)}
    proc = subprocess.Popen([sys.executable, "-c", COMMIT_LOOP, str(data_dir), str(file_a), str(file_b)], cwd=ROOT,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    counts = []
    try:
        while proc.poll() is None:
            frame = pyogrio.read_dataframe(path, columns=["id", "name"])
            assert len(frame) in expected
            assert frame["id"].notna().all() and frame["id"].is_unique and frame.geometry.notna().all()
            counts.append(len(frame))
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert len(counts) >= 50, f"only {len(counts)} reads while the commits ran"
    assert len(set(counts)) >= 2, "no read happened between two commits"
    versions = LayerStore(data_dir).versions("stations")
    assert [(v.number, v.action, v.features) for v in versions] == [
        (1, "initial", ORIGINAL_COUNT), (2, "import-replace", 2), (3, "rollback", ORIGINAL_COUNT),
        (4, "import-replace", 1), (5, "rollback", ORIGINAL_COUNT), (6, "import-replace", 2)]
    assert len(pyogrio.read_dataframe(path, columns=["id"])) == len(ROWS_A)
    assert leftovers(data_dir) == []


def test_prune_keeps_the_newest_and_the_current(data_dir, tmp_path):
    run = CliRunner()
    cli_main = main
    a = tmp_path / "a.csv"
    a.write_text("名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度\n"
                 "甲站,黄浦区,人民大道1号,区总工会,补水,24/7,121.4737,31.2304\n", encoding="utf-8")
    b = tmp_path / "b.csv"
    b.write_text(a.read_text(encoding="utf-8").replace("甲站", "乙站"), encoding="utf-8")
    for path in (a, b, a):
        assert run.invoke(cli_main, ["--data-dir", str(data_dir), "import", "stations", str(path), "--crs", "wgs84",
                                     "--replace"]).exit_code == 0
    assert run.invoke(cli_main, ["--data-dir", str(data_dir), "rollback", "stations", "1"]).exit_code == 0
    # versions 1 (initial), 2 (a), 3 (b), 4 (a), 5 (= 1, current)
    out = run.invoke(cli_main, ["--data-dir", str(data_dir), "prune", "stations", "--keep", "2"])
    assert out.exit_code == 0 and out.output == "stations: removed versions 1, 2, 3; 2 kept\n"
    store = LayerStore(data_dir)
    assert [v.number for v in store.versions("stations")] == [4, 5]
    assert sorted(p.name for p in store.history_dir("stations").glob("0*")) == [
        "000004.gpkg", "000004.json", "000005.gpkg", "000005.json"]
    assert store.audit_records(1)[0]["action"] == "prune"
    again = run.invoke(cli_main, ["--data-dir", str(data_dir), "prune", "stations", "--keep", "5"])
    assert again.output == "stations: nothing to remove (2 versions)\n"
    bad = run.invoke(cli_main, ["--data-dir", str(data_dir), "prune", "stations", "--keep", "0"])
    assert bad.exit_code == 2
