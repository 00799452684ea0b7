"""GCJ-02 and BD-09 of WGS84 points computed by the npm package gcoord (pinned in tests/js), independently of
``geoserver.core.crs``: the truth the geocoding tests give the stand-in geocoder to answer with."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "tests" / "js"
SCRIPT = ("const g = require(process.argv[1]); const pts = JSON.parse(process.argv[2]);"
          "console.log(JSON.stringify(pts.map(p => ({gcj02: g.transform(p, g.WGS84, g.GCJ02),"
          " bd09: g.transform(p, g.WGS84, g.BD09)}))));")


def gcoord_datums(points: list[tuple[float, float]]) -> list[dict]:
    """[{"gcj02": [lon, lat], "bd09": [lon, lat]}] of each WGS84 (lon, lat), computed by gcoord under node."""
    if not (JS / "node_modules" / "gcoord" / "package.json").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install_test_js.sh")], check=True, timeout=300)
    out = subprocess.run(["node", "-e", SCRIPT, str(JS / "node_modules" / "gcoord"),
                          json.dumps([list(p) for p in points])], check=True, capture_output=True, text=True,
                         timeout=60)
    return json.loads(out.stdout)
