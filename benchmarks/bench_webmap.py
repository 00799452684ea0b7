"""The workers' web map at / in headless Chromium under throttled networks: page weight and time to a usable list.

For each network profile, fresh browser contexts (empty cache) open the page on a phone-sized viewport with a
simulated position at People's Square; the script records

* bytes over the wire (``Network.loadingFinished.encodedDataLength``: compressed bodies plus headers), split into
  page, scripts, styles, API answers and base-map tiles, and the first load's total excluding tiles;
* time from navigation start to the nearest list being on screen (the page's ``list-ready`` performance mark), to
  the map being ready (Leaflet loaded, markers drawn), to the public point data of every layer loaded (the map's
  and the offline list's source, ``/app/points.json``), and to the last tile of the first view;
* the same for a repeat visit (warm cache) and for the heaviest first load: location refused, so the whole city
  is shown with all 3,400 stations clustered.

Profiles follow Chrome DevTools' presets: "Slow 3G" (2,000 ms latency per request, 50 kB/s down) and "Fast 3G"
(562.5 ms, 180 kB/s down, 84 kB/s up), each with the CPU slowed 4× like a mid-range phone; plus unthrottled
loopback. Tiles come from a local stand-in tile server (256 px PNGs of about 19 kB, like typical street-map
tiles), so they compete for the throttled bandwidth as real tiles would; nothing leaves the machine.

Usage: ``.venv/bin/python benchmarks/bench_webmap.py [--runs 3] [--profiles slow3g,fast3g,none]``
Writes benchmarks/results/webmap.json. Needs Chromium (scripts/install_browser.sh) and static/node_modules.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import GEOSERVER, ROOT, free_port, machine, wait_ready  # noqa: E402

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, PHONE  # noqa: E402

PROFILES = {
    "slow3g": {"title": "Slow 3G (DevTools preset), CPU 4x", "latency": 2000.0, "down": 500_000 / 8 * 0.8,
               "up": 500_000 / 8 * 0.8, "cpu": 4},
    "fast3g": {"title": "Fast 3G (DevTools preset), CPU 4x", "latency": 562.5, "down": 1_600_000 / 8 * 0.9,
               "up": 750_000 / 8 * 0.9, "cpu": 4},
    "none": {"title": "unthrottled loopback", "latency": 0.0, "down": -1, "up": -1, "cpu": 1},
}
POSITION = {"latitude": 31.2304, "longitude": 121.4737, "accuracy": 30}
BUDGET_BYTES = 400_000


def tile_png() -> bytes:
    """A 256 px PNG of about 19 kB (sparse noise over a flat colour: the size of a typical street-map tile)."""
    from PIL import Image

    rng = random.Random(1)
    img = Image.new("RGB", (256, 256), (236, 233, 225))
    px = img.load()
    for _ in range(2500):
        x, y = rng.randrange(256), rng.randrange(256)
        px[x, y] = (rng.randrange(180, 255), rng.randrange(180, 255), rng.randrange(170, 240))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


class TileServer:
    """Loopback stand-in for a tile server: every /…/{z}/{x}/{y}.png is the same PNG."""

    def __init__(self):
        body = tile_png()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=3600")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # Leaflet cancels tiles that scroll out of view

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.tile_bytes = len(body)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def start_server(env: dict) -> tuple[str, subprocess.Popen]:
    port = free_port()
    proc = subprocess.Popen([str(GEOSERVER), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    wait_ready(url + "/healthz", proc)
    return url, proc


def warm_up(base: str) -> None:
    """Requests that build the server's per-process caches (first answers of a fresh worker are slower), so the
    figures are those of a running service."""
    import urllib.request

    for _ in range(6):
        for path in ("/", "/api/nearest?lon=121.4737&lat=31.2304&k=10",
                     "/app/points.json", "/app/hours", "/app/districts.geojson"):
            with urllib.request.urlopen(base + path, timeout=30) as resp:
                resp.read()


def kind(url: str, tiles: str) -> str:
    path = urlsplit(url).path
    if url.startswith(tiles):
        return "tiles"
    if path == "/":
        return "page"
    if path.endswith(".js"):
        return "scripts"
    if path.endswith(".css"):
        return "styles"
    if path.startswith(("/api/", "/ogc/", "/app/")):
        return "api"
    return "other"


def measure(browser, base: str, tiles: str, profile: dict, geolocation: bool, repeat: bool = False) -> dict:
    """One page load in a fresh context (``repeat``: a second load in the same context, warm cache)."""
    options = {"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
               "service_workers": "block"}
    if geolocation:
        options.update(geolocation=POSITION, permissions=["geolocation"])
    context = browser.new_context(**options)
    try:
        page = context.new_page()
        if repeat:  # the first visit, unthrottled, fills the cache
            page.goto(base + "/")
            page.wait_for_function("() => performance.getEntriesByName('list-ready').length > 0", timeout=60_000)
            page.wait_for_load_state("networkidle")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": profile["latency"],
                                                      "downloadThroughput": profile["down"],
                                                      "uploadThroughput": profile["up"]})
        if profile["cpu"] > 1:
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": profile["cpu"]})
        urls, sizes = {}, {}
        cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        page.goto(base + "/", wait_until="commit", timeout=120_000)
        if geolocation:
            page.wait_for_function("() => performance.getEntriesByName('list-ready').length > 0", timeout=120_000)
        else:
            page.wait_for_function("() => ((document.getElementById('map') || {dataset: {}}).dataset.loaded || '').startsWith('stations')",
                                   timeout=180_000)
        page.wait_for_function("() => (document.getElementById('map') || {dataset: {}}).dataset.ready === 'true'", timeout=120_000)
        page.wait_for_load_state("networkidle", timeout=180_000)
        time.sleep(0.3)
        timing = page.evaluate("""() => {
            const mark = performance.getEntriesByName('list-ready')[0];
            const tiles = performance.getEntriesByType('resource').filter(r => r.initiatorType === 'img'
                && /\\/(amap|osm)\\//.test(r.name));
            const items = performance.getEntriesByType('resource').filter(r => r.name.includes('/app/points.json'));
            const paint = performance.getEntriesByName('first-contentful-paint')[0];
            return {list: mark ? mark.startTime : null, fcp: paint ? paint.startTime : null,
                    tiles_first: tiles.length ? Math.min(...tiles.map(r => r.responseEnd)) : null,
                    tiles_last: tiles.length ? Math.max(...tiles.map(r => r.responseEnd)) : null,
                    tiles_n: tiles.length,
                    map_features: items.length ? Math.max(...items.map(r => r.responseEnd)) : null,
                    features: window.unionMap && window.unionMap.points.data
                        ? Object.values(window.unionMap.points.data.layers).reduce((n, l) => n + l.feats.length, 0)
                        : 0}; }""")
        by_kind: dict[str, int] = {}
        requests = []
        for rid, url in urls.items():
            size = sizes.get(rid, 0)
            k = kind(url, tiles)
            by_kind[k] = by_kind.get(k, 0) + size
            requests.append({"url": url.replace(base, "").replace(tiles, "<tiles>"), "bytes": size, "kind": k})
        excluding_tiles = sum(v for k, v in by_kind.items() if k != "tiles")
        return {
            "time_to_list_ms": None if timing["list"] is None else round(timing["list"]),
            "first_contentful_paint_ms": None if timing["fcp"] is None else round(timing["fcp"]),
            "map_features_loaded_ms": None if timing["map_features"] is None else round(timing["map_features"]),
            "first_tile_ms": None if timing["tiles_first"] is None else round(timing["tiles_first"]),
            "last_tile_ms": None if timing["tiles_last"] is None else round(timing["tiles_last"]),
            "tiles": timing["tiles_n"],
            "features_in_memory": timing["features"],
            "bytes_excluding_tiles": excluding_tiles,
            "bytes_by_kind": dict(sorted(by_kind.items())),
            "requests": sorted(requests, key=lambda r: -r["bytes"]),
        }
    finally:
        context.close()


def summarise(runs: list[dict]) -> dict:
    def med(key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return round(statistics.median(values)) if values else None

    keys = ("time_to_list_ms", "first_contentful_paint_ms", "map_features_loaded_ms", "first_tile_ms",
            "last_tile_ms", "bytes_excluding_tiles")
    out = {f"median_{k}": med(k) for k in keys}
    out["runs"] = len(runs)
    out["list_before_last_tile"] = all(r["time_to_list_ms"] is not None and r["last_tile_ms"] is not None
                                       and r["time_to_list_ms"] < r["last_tile_ms"] for r in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profiles", default="slow3g,fast3g,none")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    tile_server = TileServer()
    tiles = tile_server.url
    env = {"GEOSERVER_AMAP_TILES_URL": tiles + "/amap/{z}/{x}/{y}.png",
           "GEOSERVER_AMAP_TILES_ATTRIBUTION": "stand-in tiles",
           "GEOSERVER_TILES_URL": tiles + "/osm/{z}/{x}/{y}.png"}
    base, proc = start_server(env)
    warm_up(base)
    result = {"machine": machine(), "chromium": CHROMIUM, "viewport": PHONE, "position": POSITION,
              "tile_bytes": tile_server.tile_bytes, "budget_bytes_excluding_tiles": BUDGET_BYTES,
              "date": time.strftime("%Y-%m-%d"), "profiles": {}}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            result["chromium_version"] = browser.version
            for name in [n.strip() for n in args.profiles.split(",") if n.strip()]:
                profile = PROFILES[name]
                located = [measure(browser, base, tiles, profile, True) for _ in range(args.runs)]
                entry = {"profile": {k: v for k, v in profile.items()}, "first_visit": summarise(located),
                         "first_visit_runs": located}
                entry["repeat_visit"] = measure(browser, base, tiles, profile, True, repeat=True)
                entry["location_refused_whole_city"] = measure(browser, base, tiles, profile, False)
                result["profiles"][name] = entry
                first = entry["first_visit"]
                refused = entry["location_refused_whole_city"]
                print(f"{name:7s} {profile['title']}")
                print(f"  first visit  : list {first['median_time_to_list_ms']} ms, map features "
                      f"{first['median_map_features_loaded_ms']} ms, last tile {first['median_last_tile_ms']} ms, "
                      f"{first['median_bytes_excluding_tiles']:,} B excluding tiles "
                      f"(list before last tile: {first['list_before_last_tile']})")
                print(f"  repeat visit : list {entry['repeat_visit']['time_to_list_ms']} ms, "
                      f"{entry['repeat_visit']['bytes_excluding_tiles']:,} B excluding tiles")
                print(f"  no location  : all {refused['features_in_memory']} stations clustered after "
                      f"{refused['map_features_loaded_ms']} ms, {refused['bytes_excluding_tiles']:,} B excluding tiles")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        tile_server.close()
    out = ROOT / "benchmarks" / "results" / "webmap.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
