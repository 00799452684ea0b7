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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "runs": args.runs, "results": results}, indent=2,
                                   ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
