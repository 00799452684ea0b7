"""Schemathesis against the real server: /ogc/api must tell the truth about /ogc (finding 14 of the HTTP audit).

The test starts ``geoserver serve`` and runs the schemathesis CLI on its OpenAPI document with every check on
(``--checks all``) in every phase (examples: the example feature ids; coverage: boundary values and each
documented constraint broken in turn; fuzzing; stateful), bounded by ``--max-examples``, with a fixed seed, and
asserts that it finds nothing. On failure the report is printed with a ``curl`` line for each case.

This file is also schemathesis's hooks module (``SCHEMATHESIS_HOOKS``): the one rule of the document that
OpenAPI 3.0 cannot state as a schema is ``bbox``'s per-position ranges and order (longitudes in [-180, 180],
latitudes in [-90, 90], minimum <= maximum; an array schema has one ``items`` schema for all positions). The
parameter's description states it and the server refuses other boxes with 400; the hook below makes the boxes of
*positive* (schema-valid) cases follow it, exactly as the description says. Negative cases are left alone, and no
check and no failure is filtered.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

SEED = 20261114
MAX_EXAMPLES = 100
RUN_TIMEOUT_S = 240


def follow_bbox_rules(bbox):
    """A schema-valid bbox (4 or 6 numbers, as schemathesis's comma-joined string or as a list) put into the ranges
    and order its description states; anything else is returned unchanged."""
    parts = bbox.split(",") if isinstance(bbox, str) else bbox
    if not isinstance(parts, list) or len(parts) not in (4, 6):
        return bbox
    try:
        values = [float(v) for v in parts if not isinstance(v, bool)]
    except (TypeError, ValueError):
        return bbox
    if len(values) != len(parts) or not all(math.isfinite(v) for v in values):
        return bbox
    lon_at, lat_at = ((0, 2), (1, 3)) if len(values) == 4 else ((0, 3), (1, 4))
    for positions, limit in ((lon_at, 180.0), (lat_at, 90.0)):
        low, high = sorted(min(max(values[i], -limit), limit) for i in positions)
        values[positions[0]], values[positions[1]] = low, high
    if not isinstance(bbox, str):
        return values
    text = ",".join(repr(v) for v in values)
    if not hasattr(bbox, "encoded"):
        return text
    return type(bbox)(text, ",".join(quote(repr(v), safe="") for v in values))   # heights may hold an "e+"


if __name__ == "_schemathesis_hooks":  # loaded by schemathesis (SCHEMATHESIS_HOOKS=<this file>), not by pytest
    import schemathesis

    @schemathesis.hook
    def map_case(context, case):
        meta = case.meta
        if meta is not None and meta.generation.mode.is_positive and isinstance(case.query, dict) \
                and "bbox" in case.query:
            case.query["bbox"] = follow_bbox_rules(case.query["bbox"])
        return case

else:
    import pytest

    from tests.conftest import start_server, stop_server

    pytestmark = pytest.mark.external

    def schemathesis_command(url: str, report_dir: Path) -> list[str]:
        """The command (also printed in the failure message, so that it can be run by hand)."""
        return [str(Path(sys.executable).with_name("schemathesis")), "run", f"{url}/ogc/api",
                "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
                "--workers", "2", "--request-timeout", "30", "--generation-database", "none", "--no-color",
                "--report", "junit", "--report-dir", str(report_dir)]

    def test_openapi_document_holds_under_schemathesis(tmp_path):
        url, proc = start_server(workers=2)
        try:
            cmd = schemathesis_command(url, tmp_path)
            env = {**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).resolve()), "NO_COLOR": "1",
                   "COLUMNS": "120"}
            started = time.monotonic()
            run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,  # its crash store too
                                 timeout=RUN_TIMEOUT_S)
            took = time.monotonic() - started
        finally:
            stop_server(proc)
        report = run.stdout + run.stderr
        summary = re.search(r"Test cases:\s*\n\s*(\d+) generated", report)
        assert run.returncode == 0, (f"schemathesis found problems (exit {run.returncode}, {took:.0f} s):\n"
                                     f"{' '.join(cmd)}\n\n{report[-20000:]}")
        assert summary and int(summary.group(1)) > 1000, report[-5000:]   # it really ran
        for phase in ("Examples", "Coverage", "Fuzzing"):
            assert re.search(rf"✅ {phase}", report), f"phase {phase} did not pass:\n{report[-5000:]}"
        assert "Missing test data" not in report, report[-5000:]   # the example ids reach real features
