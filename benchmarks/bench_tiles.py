"""Vector tiles (OGC API - Tiles) in-process through the Flask app: a tile built (the tile cache emptied before
each run; the layer's projection for tiles kept), served from the cache, and a 304; sizes raw and gzipped.

Usage: ``.venv/bin/python benchmarks/bench_tiles.py [--runs 50]``; writes benchmarks/results/tiles.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402

TILES = (("z12 People's Square, stations", "/ogc/collections/stations/tiles/WebMercatorQuad/12/3430/1673"),
         ("z9 most of the city, stations", "/ogc/collections/stations/tiles/WebMercatorQuad/9/428/209"),
         ("z8 whole city, stations", "/ogc/collections/stations/tiles/WebMercatorQuad/8/214/104"),
         ("z9 all point layers", "/ogc/tiles/WebMercatorQuad/9/428/209"),
         ("z9 districts (polygons)", "/ogc/collections/districts/tiles/WebMercatorQuad/9/428/209"),
         ("z12 stations, GCJ-02", "/ogc/collections/stations/tiles/WebMercatorQuad/12/3430/1673?crs=gcj02"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tiles.json")
    args = parser.parse_args()

    from geoserver.core.service import GeoService
    from geoserver.web import create_app

    app = create_app(service=GeoService())
    client = app.test_client()

    def median_ms(fn) -> float:
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return round(statistics.median(times) * 1000, 2)

    results = {}
    for name, url in TILES:
        assert client.get(url).status_code == 200
        builder = app.extensions["tiles"]

        def built():
            builder._tiles.clear()
            builder._bytes = 0
            assert client.get(url).status_code == 200

        entry = {"built_ms": median_ms(built)}
        client.get(url)
        entry["cached_ms"] = median_ms(lambda: client.get(url))
        etag = client.get(url).headers["ETag"]
        entry["not_modified_ms"] = median_ms(lambda: client.get(url, headers={"If-None-Match": etag}))
        entry["bytes"] = len(client.get(url).get_data())
        entry["gzip_bytes"] = len(client.get(url, headers={"Accept-Encoding": "gzip"}).get_data())
        results[name] = entry
        print(f"{name:<34} built {entry['built_ms']:>7} ms  cached {entry['cached_ms']:>5} ms  "
              f"304 {entry['not_modified_ms']:>5} ms  {entry['bytes']:>8,} B  gzip {entry['gzip_bytes']:>7,} B")
    web_map = map_payload(client)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "runs": args.runs, "results": results,
                                    "web_map": web_map}, indent=2, ensure_ascii=False) + "\n")


#: The workers' map on a phone (390 x 844 CSS pixels) at People's Square: the city, a district, the streets.
VIEWPORT = (390, 844)
CENTRE = (121.4737, 31.2304)
VIEWS = (("city (z11)", 11), ("district (z13)", 13), ("streets (z15)", 15))


def viewport_tiles(z: int) -> list[tuple[int, int]]:
    """The 256-pixel WebMercatorQuad tiles a phone's viewport centred on CENTRE touches at zoom ``z``."""
    import math
    lon, lat = CENTRE
    world = 256 * 2 ** z                        # the map's width in pixels at zoom z
    cx = (lon + 180) / 360 * world
    cy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * world
    xs = range(int((cx - VIEWPORT[0] / 2) // 256), int((cx + VIEWPORT[0] / 2) // 256) + 1)
    ys = range(int((cy - VIEWPORT[1] / 2) // 256), int((cy + VIEWPORT[1] / 2) // 256) + 1)
    return [(tx, ty) for tx in xs for ty in ys]


def map_payload(client) -> dict:
    """What the workers' map downloads for its facility points: /app/points.json (every public point of every
    layer, once; also the offline list's data) against the multi-layer vector tiles of the same views."""
    gz = {"Accept-Encoding": "gzip"}
    points = client.get("/app/points.json", headers=gz)
    assert points.status_code == 200
    out = {"points_json_gzip_bytes": len(points.get_data()),
           "points_json_bytes": len(client.get("/app/points.json").get_data()), "views": {}}
    session = 0
    for name, z in VIEWS:
        tiles = viewport_tiles(z)
        sizes = []
        for tx, ty in tiles:
            r = client.get(f"/ogc/tiles/WebMercatorQuad/{z}/{tx}/{ty}", headers=gz)
            assert r.status_code in (200, 204), r.status_code
            sizes.append(len(r.get_data()))
        out["views"][name] = {"tiles": len(tiles), "gzip_bytes": sum(sizes)}
        session += sum(sizes)
        print(f"web map, {name:<15} {len(tiles):>3} tiles {sum(sizes):>9,} B gzipped")
    out["session_gzip_bytes"] = session
    print(f"web map, the three views      {session:>9,} B gzipped in tiles; /app/points.json once "
          f"{out['points_json_gzip_bytes']:,} B gzipped (every point of every layer, also kept for offline use)")
    return out


if __name__ == "__main__":
    main()
