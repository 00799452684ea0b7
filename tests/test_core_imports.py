"""core/ must import neither Flask nor folium, so notebooks, the CLI and tests share it without the web stack."""

import subprocess
import sys


def test_core_imports_neither_flask_nor_folium():
    code = ("import sys, geoserver.core.service, geoserver.core.query, geoserver.core.nearest; "
            "bad = [m for m in ('flask', 'folium', 'werkzeug') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
