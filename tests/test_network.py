"""Network distances over a small hand-made OSM street grid with literal expected lengths.

The grid is laid out in local metres (x east, y north) around 121.47 E, 31.20 N and converted to WGS84 with
the ellipsoid's meridian and prime-vertical radii of curvature, a formula independent of the code under test
(which measures geodesics with pyproj).  Over a few hundred metres the two agree to millimetres.

    y=250   7 ---<--- 8 ---<--- 9      row 2: oneway=-1 (cars westbound only), oneway:bicycle=no
            |         |       / |
    y=100   4 ------- 5 ----/-- 6      row 1: two-way;  footway 5-9 (diagonal)
            |         |         |
    y=0     1 --->--- 2 --->--- 3 ===> 20 (x=1800)   row 0: oneway=yes;  motorway 3-20
          x=0      x=120      x=300

Plus: a private road 7-30-31 (north then west), a foot=no service road 9-40-41 (north then east), an isolated
street 50-51 far away, and ways that reference nodes missing from the extract.
"""

from __future__ import annotations

import gzip
import heapq
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geoserver.core.network import MODES, NetworkError, RoadNetwork, way_directions, way_is_usable

LON0, LAT0 = 121.47, 31.20
WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
E2 = WGS84_F * (2 - WGS84_F)
TOL_M = 0.05


def meridian_radius(lat_deg: float) -> float:
    """M: radius of curvature of the meridian at a latitude (WGS84)."""
    s = math.sin(math.radians(lat_deg))
    return WGS84_A * (1 - E2) / (1 - E2 * s * s) ** 1.5


def parallel_radius(lat_deg: float) -> float:
    """N cos(lat): radius of the parallel at a latitude (WGS84)."""
    s = math.sin(math.radians(lat_deg))
    return WGS84_A / math.sqrt(1 - E2 * s * s) * math.cos(math.radians(lat_deg))


def to_lonlat(x: float, y: float) -> tuple[float, float]:
    """Local metres east/north of (LON0, LAT0) to WGS84 lon/lat."""
    lat = LAT0 + math.degrees(y / meridian_radius(LAT0 + math.degrees(y / meridian_radius(LAT0)) / 2))
    return LON0 + math.degrees(x / parallel_radius(lat)), lat


def lonlat(points) -> tuple[np.ndarray, np.ndarray]:
    """Arrays of lon and lat for a list of local (x, y) points."""
    pairs = [to_lonlat(x, y) for x, y in points]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


GRID_X = (0.0, 120.0, 300.0)
GRID_Y = (0.0, 100.0, 250.0)
NODES = {1 + 3 * r + c: (x, y) for r, y in enumerate(GRID_Y) for c, x in enumerate(GRID_X)}
NODES.update({20: (1800.0, 0.0), 30: (0.0, 400.0), 31: (-200.0, 400.0), 40: (300.0, 450.0),
              41: (500.0, 450.0), 50: (3000.0, 3000.0), 51: (3100.0, 3000.0)})
FOOTWAY_M = math.hypot(180.0, 150.0)
WAYS = [
    (101, [1, 2, 3], {"highway": "residential", "oneway": "yes"}),
    (102, [4, 5, 6], {"highway": "residential"}),
    (103, [7, 8, 9], {"highway": "residential", "oneway": "-1", "oneway:bicycle": "no"}),
    (104, [1, 4, 7], {"highway": "residential"}),
    (105, [2, 5, 8], {"highway": "tertiary"}),
    (106, [3, 6, 9], {"highway": "residential"}),
    (107, [5, 9], {"highway": "footway"}),
    (108, [3, 20], {"highway": "motorway"}),
    (109, [7, 30, 31], {"highway": "residential", "access": "private"}),
    (110, [9, 40, 41], {"highway": "service", "foot": "no"}),
    (111, [50, 51], {"highway": "residential"}),
    (112, [4, 998, 997], {"highway": "residential"}),
    (113, [2, 999, 6], {"highway": "residential", "name": "clipped"}),
    (114, [1, 6], {"building": "yes"}),
]


def osm_xml(nodes: dict[int, tuple[float, float]], ways) -> str:
    """An OSM XML document; node positions in local metres."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test_network">']
    for node_id, (x, y) in sorted(nodes.items()):
        lon, lat = to_lonlat(x, y)
        lines.append(f'  <node id="{node_id}" version="1" lat="{lat:.9f}" lon="{lon:.9f}"/>')
    for way_id, refs, tags in ways:
        lines.append(f'  <way id="{way_id}" version="1">')
        lines += [f'    <nd ref="{ref}"/>' for ref in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def osm_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("osm") / "grid.osm"
    path.write_text(osm_xml(NODES, WAYS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def nets(osm_file) -> dict[str, RoadNetwork]:
    return {mode: RoadNetwork.from_osm(osm_file, mode) for mode in MODES}


def dist(net: RoadNetwork, sources, targets, **kwargs) -> np.ndarray:
    """Network distances from local-metre sources to local-metre targets."""
    return net.distance_to_nearest(*lonlat(sources), *lonlat(targets), **kwargs)


def node(i: int) -> tuple[float, float]:
    return NODES[i]


def test_graph_sizes_follow_the_mode_rules(nets):
    # walk: the 9 grid nodes; 12 two-way grid segments + the footway.  No motorway, private or foot=no road.
    assert (nets["walk"].node_count, nets["walk"].edge_count, nets["walk"].segment_count) == (9, 26, 13)
    # car: + motorway node 20 and service-road nodes 40, 41; rows 0 and 2 one direction only; motorway oneway.
    assert (nets["car"].node_count, nets["car"].edge_count) == (12, 2 + 4 + 2 + 12 + 1 + 4)
    # ebike: like car without the motorway, but row 2 two-way thanks to oneway:bicycle=no.
    assert (nets["ebike"].node_count, nets["ebike"].edge_count) == (11, 2 + 4 + 4 + 12 + 4)
    assert sorted(nets["car"].node_id.tolist()) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 40, 41]  # OSM ids kept


def test_l_shaped_path_is_longer_than_the_straight_line(nets):
    straight = math.hypot(300, 250)
    assert dist(nets["car"], [node(1)], [node(9)])[0] == pytest.approx(550.0, abs=TOL_M)
    assert dist(nets["ebike"], [node(1)], [node(9)])[0] == pytest.approx(550.0, abs=TOL_M)
    walk = dist(nets["walk"], [node(1)], [node(9)])[0]
    assert walk == pytest.approx(220.0 + FOOTWAY_M, abs=TOL_M)  # the footway diagonal, walkers only
    assert straight < walk < 550.0


def test_oneway_binds_cars_not_walkers(nets):
    # row 0 is eastbound only: from node 3 back to node 1 a car must go round the block
    assert dist(nets["car"], [node(3)], [node(1)])[0] == pytest.approx(500.0, abs=TOL_M)
    assert dist(nets["walk"], [node(3)], [node(1)])[0] == pytest.approx(300.0, abs=TOL_M)
    assert dist(nets["ebike"], [node(3)], [node(1)])[0] == pytest.approx(500.0, abs=TOL_M)
    assert dist(nets["car"], [node(1)], [node(3)])[0] == pytest.approx(300.0, abs=TOL_M)


def test_oneway_minus_one_and_bicycle_contraflow(nets):
    # row 2 is drawn west to east with oneway=-1: cars may only go west; e-bikes both ways (oneway:bicycle=no)
    assert dist(nets["car"], [node(7)], [node(9)])[0] == pytest.approx(600.0, abs=TOL_M)
    assert dist(nets["car"], [node(9)], [node(7)])[0] == pytest.approx(300.0, abs=TOL_M)
    assert dist(nets["ebike"], [node(7)], [node(9)])[0] == pytest.approx(300.0, abs=TOL_M)
    assert dist(nets["walk"], [node(7)], [node(9)])[0] == pytest.approx(300.0, abs=TOL_M)


def test_snap_legs_are_added_at_both_ends(nets):
    # source 20 m west of column 0 at y=50, target 30 m south of row 0 at x=60: 20 + 50 + 60 + 30
    for mode in ("walk", "car", "ebike"):
        assert dist(nets[mode], [(-20, 50)], [(60, -30)])[0] == pytest.approx(160.0, abs=TOL_M), mode


def test_snapped_points_respect_the_direction_of_their_segment(nets):
    # source beside row 0 at x=200 (eastbound), target beside it at x=60: cars go all round the block
    assert dist(nets["car"], [(200, -20)], [(60, -30)])[0] == pytest.approx(100 + 100 + 300 + 100 + 60 + 50,
                                                                             abs=TOL_M)
    assert dist(nets["walk"], [(200, -20)], [(60, -30)])[0] == pytest.approx(140 + 50, abs=TOL_M)


def test_source_and_target_on_the_same_segment(nets):
    assert dist(nets["walk"], [(10, -5)], [(90, -5)])[0] == pytest.approx(90.0, abs=TOL_M)
    assert dist(nets["walk"], [(90, -5)], [(10, -5)])[0] == pytest.approx(90.0, abs=TOL_M)
    assert dist(nets["car"], [(10, -5)], [(90, -5)])[0] == pytest.approx(90.0, abs=TOL_M)
    # backwards against row 0: east to node 2, round the block 2-5-4-1, east again to x=10
    assert dist(nets["car"], [(90, -5)], [(10, -5)])[0] == pytest.approx(30 + 100 + 120 + 100 + 10 + 10,
                                                                         abs=TOL_M)


def test_footway_is_for_walkers_only(nets):
    # a point a third of the way along the footway from node 5; cars and e-bikes snap to row 1 instead (50 m)
    target = [(180, 150)]
    assert dist(nets["walk"], [node(5)], target)[0] == pytest.approx(FOOTWAY_M / 3, abs=TOL_M)
    assert dist(nets["car"], [node(5)], target)[0] == pytest.approx(60 + 50, abs=TOL_M)
    assert dist(nets["ebike"], [node(5)], target)[0] == pytest.approx(60 + 50, abs=TOL_M)


def test_motorway_is_for_cars_only_and_oneway(nets):
    assert dist(nets["car"], [node(1)], [node(20)])[0] == pytest.approx(1800.0, abs=TOL_M)
    assert dist(nets["car"], [node(1)], [(1000, -40)])[0] == pytest.approx(1000 + 40, abs=TOL_M)
    assert dist(nets["car"], [node(20)], [node(1)])[0] == np.inf  # implied oneway: no way back
    assert dist(nets["walk"], [node(1)], [node(20)])[0] == np.inf  # 1.5 km from any walkable road
    assert dist(nets["ebike"], [node(1)], [node(20)])[0] == np.inf


def test_foot_no_and_private_roads(nets):
    # the foot=no service road (9-40-41) is for vehicles; walkers reach node 41 only by the straight snap leg
    assert dist(nets["car"], [node(9)], [node(41)])[0] == pytest.approx(400.0, abs=TOL_M)
    assert dist(nets["ebike"], [node(9)], [node(41)])[0] == pytest.approx(400.0, abs=TOL_M)
    assert dist(nets["walk"], [node(9)], [node(41)])[0] == pytest.approx(math.hypot(200, 200), abs=TOL_M)
    # the private road (7-30-31, 350 m) is used by nobody: node 31 is a 250 m snap leg from node 7
    for mode in ("walk", "car", "ebike"):
        assert dist(nets[mode], [node(7)], [node(31)])[0] == pytest.approx(250.0, abs=TOL_M), mode


def test_nearest_source_index_and_distance(nets):
    sources = [node(9), node(1)]
    targets = [(10, -5), (295, 200), (5000, 5000)]
    result = nets["walk"].nearest_source(*lonlat(sources), *lonlat(targets))
    assert result.index.tolist() == [1, 0, -1]
    np.testing.assert_allclose(result.distance_m[:2], [10 + 5, 50 + 5], atol=TOL_M)
    assert result.distance_m[2] == np.inf


def test_snapped_targets_can_be_reused(nets):
    walk = nets["walk"]
    targets = walk.snap(*lonlat([(10, -5), (295, 200), (5000, 5000)]))
    assert targets.count == 3 and targets.point.tolist() == [0, 1]
    first = walk.nearest_source_snapped(walk.snap(*lonlat([node(1)])), targets)
    second = walk.nearest_source_snapped(walk.snap(*lonlat([node(9), node(1)])), targets, limit_m=100)
    np.testing.assert_allclose(first.distance_m, [15, 305 + 200, np.inf], atol=TOL_M)
    np.testing.assert_allclose(second.distance_m, [15, 55, np.inf], atol=TOL_M)
    assert second.index.tolist() == [1, 0, -1]


def test_limit_m(nets):
    full = 220.0 + FOOTWAY_M
    assert dist(nets["walk"], [node(1)], [node(9)], limit_m=full + 1)[0] == pytest.approx(full, abs=TOL_M)
    assert dist(nets["walk"], [node(1)], [node(9)], limit_m=full - 1)[0] == np.inf
    # the limit counts the snap legs too
    assert dist(nets["walk"], [(-20, 50)], [(60, -30)], limit_m=150)[0] == np.inf
    assert dist(nets["walk"], [(-20, 50)], [(60, -30)], limit_m=0)[0] == np.inf
    assert dist(nets["walk"], [node(1)], [node(1)], limit_m=0)[0] == 0.0


def test_max_snap_distance(nets):
    assert dist(nets["walk"], [node(1)], [(60, -30)], max_snap_m=29)[0] == np.inf
    assert dist(nets["walk"], [node(1)], [(60, -30)], max_snap_m=31)[0] == pytest.approx(90.0, abs=TOL_M)
    # a source too far from the roads serves nobody
    assert dist(nets["walk"], [(60, -30)], [node(1)], max_snap_m=29)[0] == np.inf
    assert dist(nets["walk"], [node(1)], [(150, -600)])[0] == np.inf  # default 500 m


def test_unreachable_and_empty_and_non_finite(nets):
    walk = nets["walk"]
    assert dist(walk, [node(1)], [node(50)])[0] == np.inf  # the isolated street is not in the graph
    assert walk.distance_to_nearest([], [], *lonlat([node(1)]))[0] == np.inf
    assert walk.distance_to_nearest(*lonlat([node(1)]), [], []).shape == (0,)
    out = walk.distance_to_nearest(*lonlat([node(1)]), [np.nan, LON0], [LAT0, LAT0])
    assert out[0] == np.inf and out[1] == pytest.approx(0.0, abs=TOL_M)
    with pytest.raises(ValueError, match="differ in length"):
        walk.distance_to_nearest([LON0], [LAT0], [LON0, LON0], [LAT0])
    with pytest.raises(ValueError, match="negative"):
        walk.distance_to_nearest([LON0], [LAT0], [LON0], [LAT0], limit_m=-1)
    with pytest.raises(ValueError, match="negative"):
        walk.distance_to_nearest([LON0], [LAT0], [LON0], [LAT0], max_snap_m=-1)


def test_all_components_kept_when_asked(osm_file):
    net = RoadNetwork.from_osm(osm_file, "walk", largest_component=False)
    assert net.node_count == 11
    assert dist(net, [node(1)], [node(51)])[0] == np.inf  # snapped, but no path from the grid
    assert dist(net, [node(50)], [node(51)])[0] == pytest.approx(100.0, abs=TOL_M)


def test_pbf_and_gzip_read_like_xml(osm_file, nets, tmp_path):
    import osmium

    pbf = tmp_path / "grid.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(osm_file)):
            writer.add(obj)
    gz = tmp_path / "grid.osm.gz"
    gz.write_bytes(gzip.compress(osm_file.read_bytes()))
    sources, targets = [node(3), (-20, 50)], [node(1), node(9), (60, -30), (180, 150), node(20)]
    for mode in MODES:
        expected = dist(nets[mode], sources, targets)
        for path in (pbf, gz):
            net = RoadNetwork.from_osm(path, mode)
            assert (net.node_count, net.edge_count) == (nets[mode].node_count, nets[mode].edge_count)
            np.testing.assert_allclose(dist(net, sources, targets), expected, atol=1e-6)


def test_errors_name_the_file_and_the_problem(tmp_path, osm_file):
    missing = tmp_path / "nowhere.osm"
    with pytest.raises(NetworkError, match="nowhere.osm does not exist"):
        RoadNetwork.from_osm(missing, "walk")
    truncated = tmp_path / "truncated.osm"
    truncated.write_text(osm_xml(NODES, WAYS)[:700])
    with pytest.raises(NetworkError, match=r"cannot read OSM file .*truncated\.osm: XML parsing error"):
        RoadNetwork.from_osm(truncated, "walk")
    garbage = tmp_path / "garbage.osm.pbf"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(NetworkError, match=r"cannot read OSM file .*garbage\.osm\.pbf: PBF error"):
        RoadNetwork.from_osm(garbage, "walk")
    with pytest.raises(NetworkError, match=r"unknown travel mode 'bus'; use one of walk, ebike, car") as info:
        RoadNetwork.from_osm(osm_file, "bus")
    assert isinstance(info.value, ValueError) and info.value.parameter == "mode"
    footways = tmp_path / "footways.osm"
    footways.write_text(osm_xml({1: (0, 0), 2: (50, 0)}, [(1, [1, 2], {"highway": "footway"})]))
    with pytest.raises(NetworkError, match=r"footways\.osm has no ways that mode 'car' may use"):
        RoadNetwork.from_osm(footways, "car")
    assert RoadNetwork.from_osm(footways, "walk").node_count == 2


@pytest.mark.parametrize("mode, tags, usable, directions", [
    ("car", {"highway": "primary", "junction": "roundabout"}, True, (True, False)),
    ("car", {"highway": "primary", "junction": "roundabout", "oneway": "no"}, True, (True, True)),
    ("car", {"highway": "motorway"}, True, (True, False)),
    ("car", {"highway": "motorway_link"}, True, (True, True)),
    ("car", {"highway": "secondary", "oneway": "reverse"}, True, (False, True)),
    ("car", {"highway": "secondary", "oneway": "yes", "oneway:motor_vehicle": "no"}, True, (True, True)),
    ("car", {"highway": "residential", "access": "no", "motor_vehicle": "yes"}, True, (True, True)),
    ("car", {"highway": "residential", "motorcar": "private"}, False, None),
    ("car", {"highway": "cycleway"}, False, None),
    ("walk", {"highway": "primary", "oneway": "yes", "junction": "roundabout"}, True, (True, True)),
    ("walk", {"highway": "footway", "oneway:foot": "-1"}, True, (False, True)),
    ("walk", {"highway": "trunk"}, False, None),                # even when the extract lacks foot tags
    ("walk", {"highway": "trunk_link"}, False, None),
    ("walk", {"highway": "trunk", "foot": "yes"}, True, (True, True)),
    ("walk", {"highway": "trunk", "motorroad": "yes"}, False, None),
    ("walk", {"highway": "trunk", "motorroad": "yes", "foot": "yes"}, False, None),
    ("walk", {"highway": "primary", "tunnel": "yes"}, False, None),  # a river-crossing road tunnel
    ("walk", {"highway": "primary", "tunnel": "yes", "foot": "yes"}, True, (True, True)),
    ("walk", {"highway": "residential", "tunnel": "yes"}, True, (True, True)),   # an underpass of a street
    ("walk", {"highway": "footway", "tunnel": "yes"}, True, (True, True)),
    ("walk", {"highway": "primary", "bridge": "yes"}, True, (True, True)),
    ("walk", {"highway": "secondary", "tunnel": "building_passage"}, True, (True, True)),
    ("ebike", {"highway": "secondary", "tunnel": "yes"}, False, None),
    ("ebike", {"highway": "secondary", "tunnel": "yes", "bicycle": "yes"}, True, (True, True)),
    ("walk", {"highway": "motorway", "foot": "yes"}, False, None),
    ("walk", {"highway": "service", "access": "private", "foot": "yes"}, True, (True, True)),
    ("walk", {"highway": "steps"}, True, (True, True)),
    ("walk", {"highway": "construction"}, False, None),
    ("ebike", {"highway": "residential", "oneway": "yes"}, True, (True, False)),
    ("ebike", {"highway": "residential", "oneway": "yes", "oneway:bicycle": "no"}, True, (True, True)),
    ("ebike", {"highway": "residential", "oneway": "yes", "cycleway": "opposite_lane"}, True, (True, True)),
    ("ebike", {"highway": "tertiary", "junction": "roundabout"}, True, (True, False)),
    ("ebike", {"highway": "trunk"}, False, None),
    ("ebike", {"highway": "trunk", "bicycle": "yes"}, True, (True, True)),
    ("ebike", {"highway": "footway"}, False, None),
    ("ebike", {"highway": "footway", "bicycle": "designated"}, True, (True, True)),
    ("ebike", {"highway": "motorway", "bicycle": "yes"}, False, None),
    ("ebike", {"highway": "steps"}, False, None),
    ("ebike", {"highway": "cycleway", "vehicle": "no", "bicycle": "yes"}, True, (True, True)),
])
def test_tag_rules(mode, tags, usable, directions):
    profile = MODES[mode]
    assert way_is_usable(tags, profile) is usable
    if directions is not None:
        assert way_directions(tags, profile) == directions


def grid_network(n: int, spacing: float, oneway_bits: int) -> RoadNetwork:
    """An n x n street grid built directly (no file); segment i is oneway where bit i % 60 is set."""
    ids = np.arange(n * n).reshape(n, n)
    a = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    b = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    backward = np.array([not (oneway_bits >> (i % 60)) & 1 for i in range(len(a))])
    lon, lat = lonlat([(c * spacing, r * spacing) for r in range(n) for c in range(n)])
    return RoadNetwork(lon, lat, a, b, np.ones(len(a), bool), backward, mode="grid")


def reference_distances(net: RoadNetwork, src, tgt, limit_m: float) -> np.ndarray:
    """Brute force: split every segment at the snapped points on it and run a plain heap Dijkstra."""
    arcs: dict[int, list[tuple[int, float]]] = {}
    on_segment: dict[int, list[tuple[float, int]]] = {}
    point_node = {}
    for kind, snap in (("s", src), ("t", tgt)):
        for k, (seg, t) in enumerate(zip(snap.segment, snap.t)):
            point_node[kind, k] = net.node_count + len(point_node)
            on_segment.setdefault(int(seg), []).append((float(t), point_node[kind, k]))
    for seg in range(net.segment_count):
        chain = [(0.0, int(net.seg_a[seg]))] + sorted(on_segment.get(seg, [])) + [(1.0, int(net.seg_b[seg]))]
        for (t0, u), (t1, v) in zip(chain[:-1], chain[1:]):
            metres = (t1 - t0) * net.seg_length_m[seg]
            if net.seg_forward[seg] or metres == 0:
                arcs.setdefault(u, []).append((v, metres))
            if net.seg_backward[seg] or metres == 0:
                arcs.setdefault(v, []).append((u, metres))
    best = {point_node["s", k]: float(leg) for k, leg in enumerate(src.leg_m)}
    heap = [(d, u) for u, d in best.items()]
    heapq.heapify(heap)
    while heap:
        d, u = heapq.heappop(heap)
        if d > best.get(u, math.inf):
            continue
        for v, w in arcs.get(u, []):
            if d + w < best.get(v, math.inf):
                best[v] = d + w
                heapq.heappush(heap, (d + w, v))
    out = np.array([best.get(point_node["t", k], math.inf) + leg for k, leg in enumerate(tgt.leg_m)])
    return np.where(out <= limit_m, out, np.inf)


anywhere = st.tuples(st.floats(-50, 450), st.floats(-50, 450))
near_a_street = st.tuples(st.floats(-50, 450), st.sampled_from([0.0, 100.0, 200.0]).flatmap(
    lambda y: st.floats(y - 15, y + 15)))
points = st.lists(st.one_of(anywhere, near_a_street), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(sources=points, targets=points, oneway_bits=st.integers(0, 2**60 - 1),
       limit_m=st.one_of(st.none(), st.floats(0, 800)))
def test_matches_brute_force_on_random_grids(sources, targets, oneway_bits, limit_m):
    """Equal to a brute-force split-graph Dijkstra; never below the straight line; the chosen source agrees."""
    net = grid_network(5, 100.0, oneway_bits)
    (slon, slat), (tlon, tlat) = lonlat(sources), lonlat(targets)
    result = net.nearest_source(slon, slat, tlon, tlat, limit_m=limit_m)
    src, tgt = net.snap(slon, slat), net.snap(tlon, tlat)
    expected = np.full(len(targets), np.inf)
    expected[tgt.point] = reference_distances(net, src, tgt, np.inf if limit_m is None else limit_m)
    np.testing.assert_allclose(result.distance_m, expected, rtol=0, atol=1e-6)
    for j, (i, d) in enumerate(zip(result.index, result.distance_m)):
        assert d >= min(math.dist(s, targets[j]) for s in sources) - 0.01
        assert (i >= 0) == np.isfinite(d)
        if i >= 0:
            assert net.distance_to_nearest(slon[i], slat[i], tlon[j], tlat[j])[0] == pytest.approx(d, abs=1e-6)


def test_walking_and_e_bikes_never_take_a_trunk_road_or_a_road_tunnel(tmp_path):
    """A trunk road (no foot/bicycle tags, as extracts often are) and a primary-road tunnel run straight from A to
    B; a street runs round: walking and e-bikes go round (2,000 m), cars take the trunk road (1,000 m)."""
    nodes = {1: (0, 0), 2: (1000, 0), 3: (0, 500), 4: (1000, 500), 5: (0, -300), 6: (1000, -300)}
    ways = [(1, [1, 2], {"highway": "trunk"}),
            (2, [1, 3, 4, 2], {"highway": "residential"}),
            (3, [5, 6], {"highway": "primary", "tunnel": "yes"}),
            (4, [1, 5], {"highway": "residential"}), (5, [6, 2], {"highway": "residential"})]
    path = tmp_path / "shortcut.osm"
    path.write_text(osm_xml(nodes, ways), encoding="utf-8")
    a, b = lonlat([(0, 0)]), lonlat([(1000, 0)])
    got = {mode: float(RoadNetwork.from_osm(path, mode).nearest_source(*a, *b).distance_m[0])
           for mode in ("walk", "ebike", "car")}
    assert got["walk"] == pytest.approx(2000, abs=2)
    assert got["ebike"] == pytest.approx(2000, abs=2)
    assert got["car"] == pytest.approx(1000, abs=1)
