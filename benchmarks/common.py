"""Helpers shared by the benchmark scripts: machine description, our server as a subprocess, wrk runs."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEOSERVER = Path(sys.executable).with_name("geoserver")


def machine() -> dict:
    """What the numbers were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 60.0) -> float:
    """Poll ``url`` until it answers 200; return the seconds waited."""
    start = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() - start > timeout_s:
            raise RuntimeError(f"server did not become ready at {url}")
        time.sleep(0.02)


@contextlib.contextmanager
def our_server(workers: int = 2, data_dir: str | None = None, extra_args: list[str] | None = None):
    """Run ``geoserver serve`` on a free loopback port; yields (base_url, process, seconds_to_ready)."""
    port = free_port()
    cmd = [str(GEOSERVER)]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    cmd += ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *(extra_args or [])]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/healthz", proc)
        yield url, proc, time.perf_counter() - start
    finally:  # stop the server's own process group: the main process and its workers
        stop_process_group(proc)


def stop_process_group(proc) -> None:
    """Stop a server started in its own session: SIGTERM to its process group (main process and workers), SIGKILL
    if it has not ended within 15 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def run_wrk(url: str, duration_s: int = 10, connections: int = 16, threads: int = 2,
            script: Path | None = None, headers: dict | None = None) -> dict:
    """Run wrk (bounded in time, loopback only) and return requests/s and latency percentiles in ms.
    ``headers`` are sent with every request (e.g. ``{"Accept-Encoding": "gzip"}``, as browsers send)."""
    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError("load is only ever sent to loopback")
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    cmd = [exe, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    if script:
        cmd += ["-s", str(script)]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration_s + 60).stdout
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        result[f"p{pct}_ms"] = round(_ms(m.group(1)), 3) if m else None
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    return result


def percentiles(samples_s, unit: str = "ms") -> dict:
    """Median and p99 of durations given in seconds, reported in ``unit`` (ms or us)."""
    import numpy as np
    arr = np.asarray(samples_s) * {"ms": 1e3, "us": 1e6}[unit]
    return {f"median_{unit}": round(float(np.median(arr)), 3), f"p99_{unit}": round(float(np.percentile(arr, 99)), 3),
            "n": int(arr.size)}
