"""The command line through click's runner: layers listing and clear errors."""

from click.testing import CliRunner

from geoserver.cli import main


def test_layers_prints_counts_and_versions(service):
    """The CLI on the store the service reads (PostGIS and files give the same content different data versions)."""
    store = ["--database-url", service.storage.url] if service.storage.kind == "postgis" else []
    result = CliRunner().invoke(main, [*store, "layers"], env={"GEOSERVER_DATABASE_URL": None})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    stations = next(line for line in lines if line.startswith("stations "))
    assert "3400" in stations and service.layers["stations"].version in stations and "[SAMPLE DATA]" in stations
    districts = next(line for line in lines if line.startswith("districts "))
    assert " 16 " in districts and "SAMPLE" not in districts


def test_data_dir_option_and_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "layers"])
    assert result.exit_code == 1
    assert "Error: layer stations: data file stations.gpkg not found" in result.output
    assert "Traceback" not in result.output


def test_data_dir_from_environment(tmp_path, tiny_layers_dir):
    from tests.conftest import write_tiny_layers
    write_tiny_layers(tmp_path / "d")
    result = CliRunner().invoke(main, ["--layers-dir", str(tiny_layers_dir), "layers"],
                                env={"GEOSERVER_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code == 0, result.output
    assert next(line for line in result.output.splitlines() if line.startswith("stations ")).split()[1] == "4"


def test_serve_refuses_broken_data_with_one_clear_line(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from geoserver.core.service import DEFAULT_DATA_DIR
    for f in DEFAULT_DATA_DIR.glob("*.gpkg"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "stations.gpkg").write_text("not a geopackage")
    exe = Path(sys.executable).with_name("geoserver")
    result = subprocess.run([str(exe), "--data-dir", str(tmp_path), "serve", "--port", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: layer stations: cannot read stations.gpkg")
    assert "Traceback" not in result.stderr


# --- history, rollback, prune and export of old versions: the same commands and answers on both backends ----------
HISTORY_HEADER = "version  created (UTC)         who                   action           features  changes"


def history_rows(output: str) -> list[tuple]:
    """`geoserver history` as (version, mark, created, who, action, features, changes), by its fixed columns."""
    lines = output.splitlines()
    assert lines[0] == HISTORY_HEADER, output
    return [(line[:7].rstrip(), line[7], line[9:31].rstrip(), line[31:53].rstrip(), line[53:69].rstrip(),
             int(line[69:78]), line[80:]) for line in lines[1:]]


def test_history_rollback_prune_and_old_versions(stored_data, tmp_path):
    import re
    store = stored_data()
    original = store.data_version()
    header = "名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度\n"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(header + "甲站,黄浦区,人民大道1号,区总工会,补水,24/7,121.4737,31.2304\n", encoding="utf-8")
    b.write_text(header + "乙站,黄浦区,人民大道1号,区总工会,补水,24/7,121.4737,31.2304\n", encoding="utf-8")
    for path in (a, b):
        result = store.cli("import", "stations", path, "--crs", "wgs84", "--replace", "--who", "tester")
        assert result.exit_code == 0, result.output

    result = store.cli("history", "stations")
    assert result.exit_code == 0, result.output
    rows = history_rows(result.output)
    assert [row[:2] + row[3:6] for row in rows] == [
        ("v1", " ", "geoserver", "initial", 3400), ("v2", " ", "tester", "import-replace", 1),
        ("v3", "*", "tester", "import-replace", 1)]
    assert [row[6] for row in rows[1:]] == ["1 added, 3400 removed (a.csv)", "1 added, 1 removed (b.csv)"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[2]) for row in rows)

    # rollback: version 1 again (its data version too), recorded as version 4
    result = store.cli("rollback", "stations", "1", "--who", "tester")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "stations: version 1 restored as version 4 (3400 features)"
    assert store.data_version() == original and store.service().layer("stations").count == 3400
    rows = history_rows(store.cli("history", "stations").output)
    assert [(r[0], r[1], r[4], r[6]) for r in rows[2:]] == [("v3", " ", "import-replace", "1 added, 1 removed (b.csv)"),
                                                            ("v4", "*", "rollback", "restored v1")]

    # refused rollbacks: one clear line each, nothing written
    audit = store.audit()
    for version, fragment in (("4", "is already the current data"), ("v1", "is already the current data"),
                              ("99", "has no version 99; versions: 1, 2, 3, 4"), ("abc", "not a version number")):
        refused = store.cli("rollback", "stations", version)
        assert refused.exit_code == 1 and "Traceback" not in refused.output, refused.output
        assert refused.output.startswith("Error: ") and fragment in refused.output, (version, refused.output)
    assert store.versions() == [1, 2, 3, 4] and store.audit() == audit

    # an old version exports as it was
    assert store.cli("export", "stations", tmp_path / "v2.csv", "--version", "2").output.startswith(
        "stations: 1 features written")
    assert "甲站" in (tmp_path / "v2.csv").read_text(encoding="utf-8-sig")

    # prune keeps the newest and the current; pruned versions are gone for rollback and export
    result = store.cli("prune", "stations", "--keep", "2", "--who", "ops")
    assert result.exit_code == 0 and result.output == "stations: removed versions 1, 2; 2 kept\n", result.output
    assert store.versions() == [3, 4]
    assert [(r["who"], r["action"]) for r in store.audit()] == [
        ("ops", "prune"), ("tester", "rollback"), ("tester", "import-replace"), ("tester", "import-replace")]
    assert store.cli("prune", "stations", "--keep", "5").output == "stations: nothing to remove (2 versions)\n"
    assert store.cli("prune", "stations", "--keep", "0").exit_code == 2
    gone = store.cli("export", "stations", tmp_path / "v1.csv", "--version", "1")
    assert gone.exit_code == 1 and "has no version 1; versions: 3, 4" in gone.output, gone.output
    assert [(r[0], r[1]) for r in history_rows(store.cli("history", "stations").output)] == [("v3", " "), ("v4", "*")]
    assert store.data_version() == original
