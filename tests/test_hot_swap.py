"""New data versions under load: ``geoserver serve`` (2 forked workers) keeps answering while layers are replaced.

Client threads stream requests over keep-alive connections to /api/nearest, /ogc/collections/stations/items and
/api/layers while the main thread runs three ``geoserver import --replace`` in a row on the server's data
directory. Every response must be a 200 with valid JSON showing one complete version of the layer (never a mix),
a worker must never go back to an older version, and within a few seconds of the last import every worker must
serve the final one.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from geoserver.core.data import file_version

from tests.conftest import ROOT, start_server, stop_server

HEADER = "名称,行政区,具体门牌号,所属单位,提供设施及服务,开放时间,经度,纬度"
# real WGS84 points inside the stated district (the importer checks that), distinct names in the two files
SMALL = [
    ("测试驿站甲", "黄浦区", "人民大道200号", "黄浦区总工会", 121.4737, 31.2304),
    ("测试驿站乙", "徐汇区", "漕溪北路1号", "徐汇区总工会", 121.4365, 31.1951),
    ("测试驿站丙", "浦东新区", "世纪大道1号", "浦东新区总工会", 121.5055, 31.2397),
]
BIG = [
    ("人民广场驿站", "黄浦区", "人民大道201号", "黄浦区总工会", 121.4738, 31.2305),
    ("南京东路驿站", "黄浦区", "南京东路300号", "黄浦区总工会", 121.4800, 31.2350),
    ("新天地驿站", "黄浦区", "马当路1号", "黄浦区总工会", 121.4740, 31.2190),
    ("徐家汇驿站", "徐汇区", "漕溪北路2号", "徐汇区总工会", 121.4366, 31.1952),
    ("漕河泾驿站", "徐汇区", "宜山路1号", "徐汇区总工会", 121.4010, 31.1720),
    ("陆家嘴驿站", "浦东新区", "世纪大道2号", "浦东新区总工会", 121.5056, 31.2398),
    ("世纪公园驿站", "浦东新区", "锦绣路1号", "浦东新区总工会", 121.5510, 31.2160),
    ("张江驿站", "浦东新区", "祖冲之路1号", "浦东新区总工会", 121.5900, 31.2030),
]
SMALL_NAMES = {row[0] for row in SMALL}
BIG_NAMES = {row[0] for row in BIG}
ITEMS_LIMIT = 50
NEAREST_K = 5
URLS = {
    "nearest": f"/api/nearest?lon=121.4737&lat=31.2304&layer=stations&k={NEAREST_K}",
    "items": f"/ogc/collections/stations/items?limit={ITEMS_LIMIT}",
    "layers": "/api/layers",
}
RELOAD_INTERVAL_S = 0.2
CONVERGE_WITHIN_S = 3.0
AGREEING_RESPONSES = 12          # consecutive fresh-connection answers that must all show the final version
CLIENT_THREADS = 3
RECONNECT_EVERY = 20             # requests per keep-alive connection (new connections may land on the other worker)
CLIENT_PAUSE_S = 0.02            # keeps the stream at a few hundred requests
CLIENT_DEADLINE_S = 30.0         # hard bound on the stream, whatever happens


def write_csv(path: Path, rows) -> Path:
    lines = [HEADER] + [f"{n},{d},{a},{h},补水、休憩,24/7,{lon},{lat}" for n, d, a, h, lon, lat in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Record:
    kind: str
    conn: str                    # thread/connection label: all its requests went to one worker
    started: float
    latency_s: float
    status: int | None = None
    body: dict | None = None
    error: str | None = None


@dataclass
class Stream:
    records: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def add(self, rec: Record) -> None:
        with self.lock:
            self.records.append(rec)


def client(port: int, index: int, stream: Stream) -> None:
    """Requests in a loop over keep-alive connections, reconnecting every RECONNECT_EVERY requests."""
    kinds = list(URLS)
    deadline = time.monotonic() + CLIENT_DEADLINE_S
    n, conn_no, conn = 0, 0, None
    while not stream.stop.is_set() and time.monotonic() < deadline:
        if conn is None or n % RECONNECT_EVERY == 0:
            if conn is not None:
                conn.close()
            conn_no += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        kind = kinds[(n + index) % len(kinds)]
        label = f"t{index}c{conn_no}"
        n += 1
        started = time.monotonic()
        try:
            conn.request("GET", URLS[kind], headers={"Accept": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            latency = time.monotonic() - started
            rec = Record(kind, label, started, latency, status=resp.status)
            try:
                rec.body = json.loads(data)
            except ValueError as exc:
                rec.error = f"invalid JSON ({exc}): {data[:200]!r}"
            if resp.status != 200:
                rec.error = f"HTTP {resp.status}: {data[:300]!r}"
        except (OSError, http.client.HTTPException) as exc:
            rec = Record(kind, label, started, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = None
        stream.add(rec)
        time.sleep(CLIENT_PAUSE_S)
    if conn is not None:
        conn.close()


def stations_entry(layers_body: dict) -> dict:
    return next(layer for layer in layers_body["layers"] if layer["id"] == "stations")


def fresh_layers(port: int) -> dict:
    """/api/layers over a new connection (closed after), so successive calls may reach either worker."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", URLS["layers"], headers={"Connection": "close"})
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200, data[:300]
        return stations_entry(json.loads(data))
    finally:
        conn.close()


def run_import(data_dir: Path, csv_path: Path) -> None:
    exe = Path(sys.executable).with_name("geoserver")
    out = subprocess.run([str(exe), "--data-dir", str(data_dir), "import", "stations", str(csv_path), "--crs", "wgs84",
                          "--replace", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def check_record(rec: Record, versions: dict[str, int], original_names: set[str]) -> str | None:
    """None if the response shows one complete, known version of the stations layer; else what is wrong."""
    body = rec.body
    counts = set(versions.values())
    if rec.kind == "layers":
        entry = stations_entry(body)
        if entry["data_version"] not in versions:
            return f"unknown data version {entry['data_version']} (count {entry['count']})"
        if entry["count"] != versions[entry["data_version"]]:
            return (f"data version {entry['data_version']} with {entry['count']} features; that version has "
                    f"{versions[entry['data_version']]}")
        return None
    names = [f["properties"]["name"] for f in body["features"]]
    if rec.kind == "items":
        matched = body["numberMatched"]
        if matched not in counts:
            return f"numberMatched {matched} is none of the versions' counts {sorted(counts)}"
        if body["numberReturned"] != len(names) or len(names) != min(ITEMS_LIMIT, matched):
            return f"{len(names)} features returned (numberReturned {body['numberReturned']}) of {matched}"
        expected = {len(SMALL): SMALL_NAMES, len(BIG): BIG_NAMES}.get(matched)
        if expected is not None and set(names) != expected:
            return f"{matched} features but names {sorted(names)}"
        if expected is None and not set(names) <= original_names:
            return f"original layer mixed with imported features: {sorted(set(names) - original_names)}"
        return None
    # nearest: the k nearest of one version, never a mix
    got = set(names)
    if got and got <= original_names and len(names) == NEAREST_K:
        return None
    if got == SMALL_NAMES and len(names) == len(SMALL):
        return None
    if got <= BIG_NAMES and len(names) == NEAREST_K:
        return None
    return f"nearest answered {len(names)} features {sorted(got)}: not one version's k nearest"


def test_imports_are_swapped_in_under_load_without_failures(tmp_path):
    data_dir = tmp_path / "geo"
    shutil.copytree(ROOT / "data" / "geo", data_dir)
    small = write_csv(tmp_path / "small.csv", SMALL)
    big = write_csv(tmp_path / "big.csv", BIG)
    import geopandas as gpd
    original = gpd.read_file(data_dir / "stations.gpkg", engine="pyogrio")
    original_names = set(original["name"])
    assert not (original_names & (SMALL_NAMES | BIG_NAMES))
    versions_in_order = [(file_version(data_dir / "stations.gpkg"), len(original))]

    url, proc = start_server({"GEOSERVER_DATA_DIR": str(data_dir),
                              "GEOSERVER_RELOAD_INTERVAL_S": str(RELOAD_INTERVAL_S)}, workers=2)
    port = int(url.rsplit(":", 1)[1])
    stream = Stream()
    threads = [threading.Thread(target=client, args=(port, i, stream), daemon=True) for i in range(CLIENT_THREADS)]
    converged_after = None
    agreeing: list[dict] = []
    try:
        assert fresh_layers(port)["count"] == len(original)
        for t in threads:
            t.start()
        time.sleep(0.5)  # the original data under load first
        for csv_path, count in ((small, len(SMALL)), (big, len(BIG)), (small, len(SMALL))):
            run_import(data_dir, csv_path)
            versions_in_order.append((file_version(data_dir / "stations.gpkg"), count))
            time.sleep(0.5)  # long enough for the workers to serve this version for a while
        final_version, final_count = versions_in_order[-1]
        last_import_done = time.monotonic()
        # every worker on the final version within CONVERGE_WITHIN_S: AGREEING_RESPONSES answers in a row
        while time.monotonic() - last_import_done < CONVERGE_WITHIN_S + 2.0:
            entry = fresh_layers(port)
            agreeing = agreeing + [entry] if (entry["data_version"], entry["count"]) == (final_version, final_count) \
                else []
            if len(agreeing) >= AGREEING_RESPONSES:
                converged_after = time.monotonic() - last_import_done
                break
            time.sleep(0.03)
        time.sleep(1.0)  # the keep-alive clients go on a little on the final version
    finally:
        stream.stop.set()
        for t in threads:
            t.join(timeout=30)
        stop_server(proc)
    server_log = proc.stderr.read().decode(errors="replace") if proc.stderr else ""

    records = stream.records
    failures = [r for r in records if r.error is not None]
    latencies = sorted(r.latency_s for r in records) or [0.0]
    seen_counts: dict[int, int] = {}
    for r in records:
        if r.kind == "layers" and r.body:
            count = stations_entry(r.body)["count"]
            seen_counts[count] = seen_counts.get(count, 0) + 1
    print(f"\nhot swap: {len(records)} requests ({', '.join(f'{k} {sum(r.kind == k for r in records)}' for k in URLS)})"
          f" from {CLIENT_THREADS} threads over {len({r.conn for r in records})} connections; "
          f"max latency {latencies[-1] * 1000:.0f} ms, median {latencies[len(latencies) // 2] * 1000:.1f} ms; "
          f"{len(failures)} failures; all workers on the final version "
          f"{'after %.2f s' % converged_after if converged_after is not None else 'NEVER'}; /api/layers answers "
          f"per stations count: {seen_counts}")

    assert not failures, f"{len(failures)} of {len(records)} requests failed, e.g. {failures[:5]}\n{server_log[-3000:]}"
    assert "Traceback" not in server_log and "unhandled error" not in server_log, server_log[-3000:]
    assert len(records) >= 200, f"only {len(records)} requests: the stream did not run"

    # one complete version in every response, never a partial state
    versions = dict(versions_in_order)
    bad = [(r.kind, r.conn, problem) for r in records
           if (problem := check_record(r, versions, original_names)) is not None]
    assert not bad, f"{len(bad)} responses show no single complete version, e.g. {bad[:5]}"

    # the stream saw the swaps: the original layer and an imported one, in each kind of answer
    assert {len(original), len(BIG), final_count} <= set(seen_counts), seen_counts
    matched = {r.body["numberMatched"] for r in records if r.kind == "items"}
    assert {len(original), final_count} <= matched, matched

    # a worker never goes back: along each keep-alive connection (one worker), versions follow the import order
    order = [v for v, _ in versions_in_order]
    by_conn: dict[str, list[Record]] = {}
    for r in sorted(records, key=lambda r: r.started):
        if r.kind == "layers":
            by_conn.setdefault(r.conn, []).append(r)
    for conn, recs in by_conn.items():
        position = 0
        for r in recs:
            version = stations_entry(r.body)["data_version"]
            later = [i for i in range(position, len(order)) if order[i] == version]
            assert later, f"connection {conn} went back to version {version} after {order[position]}"
            position = later[0]

    # all workers converged on the final version, soon after the last import
    assert converged_after is not None and converged_after <= CONVERGE_WITHIN_S, (
        f"no {AGREEING_RESPONSES} consecutive /api/layers answers agreed on the final version "
        f"{final_version} ({final_count} features) within {CONVERGE_WITHIN_S} s; last answers: {agreeing[-3:]}")
    # and every client connection's last look at /api/layers (more than a second later) shows it too
    for t_index in range(CLIENT_THREADS):
        last = [r for r in records if r.kind == "layers" and r.conn.startswith(f"t{t_index}c")][-1]
        entry = stations_entry(last.body)
        assert (entry["data_version"], entry["count"]) == (final_version, final_count), (last.conn, entry)

