"""The command line through click's runner: layers listing and clear errors."""

from click.testing import CliRunner

from geoserver.cli import main


def test_layers_prints_counts_and_versions(service):
    result = CliRunner().invoke(main, ["layers"])
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
