"""Benchmark of network distances on a generated district-sized street grid written as OSM XML and PBF.

The grid imitates a district extract: ``--side`` x ``--side`` intersections ``--spacing`` metres apart around
central Shanghai, jittered, with one intermediate node per block side, streets split into ways of ten blocks,
a share of oneway streets and footways, and building outlines (ways without ``highway``) that the reader must
skip.  Sources (stations) and targets (demand points) are uniform random points over the grid.

Usage: ``.venv/bin/python benchmarks/bench_network.py [--side 180] [--targets 50000] [--sources 3000]
[--out FILE]``; prints JSON (and writes it to FILE when given).  Each timing is the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402

from geoserver.core import crs  # noqa: E402
from geoserver.core.network import RoadNetwork  # noqa: E402

ORIGIN_X, ORIGIN_Y = 490000.0, -12000.0  # METRIC_CRS metres, south-west of People's Square


def grid_nodes(side: int, spacing: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Metric x, y of a (2 side - 1)^2 lattice: intersections at even indices, block midpoints between."""
    fine = 2 * side - 1
    jj, ii = np.meshgrid(np.arange(fine), np.arange(fine))
    x = ORIGIN_X + jj * spacing / 2 + rng.normal(0, spacing * 0.03, jj.shape)
    y = ORIGIN_Y + ii * spacing / 2 + rng.normal(0, spacing * 0.03, ii.shape)
    return x, y


def street_ways(side: int, rng) -> list[tuple[list[tuple[int, int]], dict[str, str]]]:
    """Rows and columns of the lattice (even indices only), cut into ways of ten blocks, with tags."""
    fine = 2 * side - 1
    ways = []
    for line in range(0, fine, 2):
        for start in range(0, fine - 1, 20):
            cells = range(start, min(start + 21, fine))
            for cells_of in ([(line, j) for j in cells], [(i, line) for i in cells]):
                roll = rng.random()
                tags = {"highway": "residential" if line % 10 else "secondary"}
                if roll < 0.15:
                    tags["oneway"] = "yes"
                elif roll < 0.22:
                    tags = {"highway": "footway"}
                ways.append((cells_of, tags))
    return ways


def write_osm(path: Path, side: int, spacing: float, buildings: int, seed: int = 7) -> dict:
    """Write the generated extract as OSM XML; return its size."""
    rng = np.random.default_rng(seed)
    x, y = grid_nodes(side, spacing, rng)
    lon, lat = crs.from_metric(x.ravel(), y.ravel())
    fine = 2 * side - 1
    node_id = np.arange(1, fine * fine + 1).reshape(fine, fine)
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="bench_network">\n')
        out.writelines(f'<node id="{i}" version="1" lat="{la:.7f}" lon="{lo:.7f}"/>\n'
                       for i, lo, la in zip(node_id.ravel(), lon, lat))
        first_building_node = fine * fine + 1
        corners = _building_corners(buildings, lon, lat, rng)
        out.writelines(f'<node id="{first_building_node + k}" version="1" lat="{la:.7f}" lon="{lo:.7f}"/>\n'
                       for k, (lo, la) in enumerate(corners))
        way_id = 1
        for cells, tags in street_ways(side, rng):
            refs = "".join(f'<nd ref="{node_id[i, j]}"/>' for i, j in cells)
            tag_xml = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
            out.write(f'<way id="{way_id}" version="1">{refs}{tag_xml}</way>\n')
            way_id += 1
        for b in range(buildings):
            ids = [first_building_node + 4 * b + c for c in (0, 1, 2, 3, 0)]
            refs = "".join(f'<nd ref="{i}"/>' for i in ids)
            out.write(f'<way id="{way_id}" version="1">{refs}<tag k="building" v="yes"/></way>\n')
            way_id += 1
        out.write("</osm>\n")
    return {"osm_nodes": int(fine * fine + 4 * buildings), "osm_ways": way_id - 1}


def _building_corners(count: int, lon: np.ndarray, lat: np.ndarray, rng) -> np.ndarray:
    """Four corners of a 20 m square near random lattice points, for each building."""
    pick = rng.integers(0, len(lon), count)
    d = 0.0002
    offsets = np.array([(0, 0), (d, 0), (d, d), (0, d)]) + d / 2
    return (np.column_stack([lon[pick], lat[pick]])[:, None, :] + offsets[None, :, :]).reshape(-1, 2)


def write_pbf(xml: Path, pbf: Path) -> None:
    """Convert the XML extract to PBF with pyosmium."""
    import osmium

    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)


def best_of(repeat: int, fn):
    """(best seconds, last result) of ``repeat`` calls."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return round(min(times), 3), result


def random_points(n: int, side: int, spacing: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Uniform WGS84 points over the grid's extent."""
    extent = (side - 1) * spacing
    return crs.from_metric(ORIGIN_X + rng.uniform(0, extent, n), ORIGIN_Y + rng.uniform(0, extent, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=185, help="intersections per side")
    parser.add_argument("--spacing", type=float, default=120.0, help="metres between intersections")
    parser.add_argument("--buildings", type=int, default=30000)
    parser.add_argument("--targets", type=int, default=50000)
    parser.add_argument("--sources", type=int, default=3000)
    parser.add_argument("--limit", type=float, default=1000.0, help="limit_m of the limited run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    result: dict = {"machine": machine(), "params": vars(args) | {"out": str(args.out)}}
    with tempfile.TemporaryDirectory() as tmp:
        xml, pbf = Path(tmp) / "grid.osm", Path(tmp) / "grid.osm.pbf"
        result["extract"] = write_osm(xml, args.side, args.spacing, args.buildings)
        write_pbf(xml, pbf)
        result["extract"] |= {"xml_mb": round(xml.stat().st_size / 2**20, 1),
                              "pbf_mb": round(pbf.stat().st_size / 2**20, 1)}
        result["load_s"] = {}
        nets = {}
        for mode in ("walk", "car"):
            for label, path in (("xml", xml), ("pbf", pbf)):
                seconds, nets[mode] = best_of(args.repeat, lambda p=path, m=mode: RoadNetwork.from_osm(p, m))
                result["load_s"][f"{mode}_{label}"] = seconds
    targets = random_points(args.targets, args.side, args.spacing, rng)
    sources = random_points(args.sources, args.side, args.spacing, rng)
    result["graph"] = {mode: {"nodes": net.node_count, "edges": net.edge_count} for mode, net in nets.items()}
    result["query_s"] = {}
    for mode, net in nets.items():
        seconds, dist = best_of(args.repeat, lambda n=net: n.distance_to_nearest(*sources, *targets))
        result["query_s"][f"{mode}_unlimited"] = seconds
        result["query_s"][f"{mode}_median_m"] = round(float(np.median(dist[np.isfinite(dist)])), 1)
        seconds, dist = best_of(args.repeat, lambda n=net: n.distance_to_nearest(*sources, *targets,
                                                                                 limit_m=args.limit))
        result["query_s"][f"{mode}_limit_{args.limit:g}m"] = seconds
        result["query_s"][f"{mode}_share_within_limit"] = round(float(np.isfinite(dist).mean()), 3)
        snapped = net.snap(*targets)
        seconds, _ = best_of(args.repeat, lambda n=net, t=snapped: n.nearest_source_snapped(n.snap(*sources), t))
        result["query_s"][f"{mode}_targets_snapped_beforehand"] = seconds
    seconds, _ = best_of(args.repeat, lambda: nets["walk"].snap(*targets))
    result["query_s"]["walk_snap_targets_only"] = seconds
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
