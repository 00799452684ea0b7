"""Network (road-graph) distances over an OpenStreetMap extract, for catchment and coverage analysis.

Straight-line distance times a detour factor is the default catchment measure elsewhere in the project; when a
planner supplies an OSM extract (``.osm``, ``.osm.pbf``, ``.osm.gz``, ``.osm.bz2``), ``RoadNetwork`` measures the
real distance along the roads a travel mode may use.

Design decisions (each one a deliberate choice, documented here once):

* **Graph.** Every OSM node of a usable way is a graph node and every pair of consecutive way nodes is a
  *segment*; its length is the geodesic distance on the WGS84 ellipsoid (``pyproj.Geod``, vectorised).  A segment
  becomes one or two directed edges according to the mode's oneway rules.  Where two ways share a node pair the
  shorter edge is kept.  Way nodes whose location is missing from the extract (ways clipped at its border) break
  the way there; the segments on either side are kept.
* **Largest component.** By default only the largest *weakly* connected component is kept, as routers usually do:
  fragments cut off at the extract border, car parks mapped without their access road and mapping errors would
  otherwise capture demand points that lie near them and report them unreachable, when the point is really
  served by the main network a few metres further away.  ``largest_component=False`` keeps every component.
  Within the kept component oneway streets can still make a node unreachable from the sources (distance ``inf``).
* **Snapping.** Sources and targets are snapped to the nearest point on a segment (not merely the nearest node),
  found with a shapely STRtree over the segments in ``crs.METRIC_CRS``.  The geodesic length of the snap leg
  (point to its projection on the road) is added at both ends, and the walk along the snapped segment to its end
  node respects that segment's direction.  A source and a target snapped to the same segment may also reach each
  other directly along it.  A point farther than ``max_snap_m`` (default 500 m) from every usable road is refused:
  as a target its distance is ``inf``, as a source it serves nobody.  A projection within ``NODE_TOLERANCE_M``
  (0.5 m) of a segment end counts as being on that node.  METRIC_CRS is centred on Shanghai, so extracts should
  lie within about 200 km of it (the whole municipality and its neighbours); elsewhere the nearest-segment search
  works in a distorted plane.
* **Shortest paths.** One multi-source run of ``scipy.sparse.csgraph.dijkstra`` (``min_only=True``) from one
  virtual node per snapped source, linked to the end(s) of its segment, gives every graph node its distance to
  the nearest source and which source that is; each target then takes the best of its segment's two ends (and of
  same-segment sources).  ``limit_m`` bounds the search and every result beyond it becomes ``inf``.
* **Cost.** Snapping dominates (the Dijkstra run over 100k nodes takes tens of milliseconds), so scenario runs
  over the same demand points snap them once (``snap``) and call ``nearest_source_snapped``.

Travel modes (``MODES``), tag rules shared by all: a way needs a ``highway`` value the mode uses; the most
specific access tag present decides (``access`` < ``vehicle`` < ``bicycle`` etc.), and ``no``, ``private``,
``agricultural``, ``forestry``, ``emergency``, ``military`` and ``use_sidepath`` exclude the way.  Some highway
types are *opt-in*: used only where the mode's own tag (``foot``/``bicycle``/``motor_vehicle``/``motorcar``)
explicitly allows it (``yes``, ``designated``, ``permissive``, ``destination``, ``delivery``, ...).

* ``walk``: streets, footways, paths, steps, pedestrian streets, tracks and cycleways; trunk roads and their links
  only with an explicit ``foot=yes``-like tag (an extract often lacks foot tags, and Shanghai's trunk roads are
  mostly expressway-like); never motorways, nor ``motorroad=yes`` roads (expressways and elevated roads), nor
  tunnels of primary, secondary or trunk roads without an explicit ``foot`` tag (the river-crossing road tunnels);
  ``foot=no`` excludes.  Oneway tags are ignored, except ``oneway:foot``.
* ``ebike``: in China e-bikes are non-motorised vehicles and use the non-motorised lanes, so they are treated as
  bicycles: streets, service roads, tracks and cycleways; trunk roads, paths, footways and pedestrian streets only
  with an explicit ``bicycle=yes``-like tag; never motorways, steps or ``motorroad=yes`` roads, nor tunnels of
  primary, secondary or trunk roads without an explicit ``bicycle`` tag.  Oneway rules
  are the vehicle ones (``oneway``, ``junction=roundabout``/``circular``), overridden by ``oneway:bicycle`` (so
  ``oneway:bicycle=no`` opens the contraflow); the older ``cycleway=opposite*`` tagging counts as
  ``oneway:bicycle=no``.
* ``car``: motorways to service roads and tracks; oneway from ``oneway`` (``yes``/``true``/``1``, ``-1``/
  ``reverse``), ``junction=roundabout``/``circular`` and the oneway that ``highway=motorway`` implies, overridden
  by ``oneway:vehicle``/``oneway:motor_vehicle``/``oneway:motorcar``.  ``reversible`` and ``alternating`` ways
  are treated as two-way (a lower bound of the distance).

Turn restrictions (relations), barriers on nodes, speeds and travel times are out of scope: results are
distances in metres.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from . import crs
from .errors import DataError


class NetworkError(DataError, ValueError):
    """The OSM extract cannot be used: missing, unreadable or corrupt, no usable ways, or an unknown mode.

    A ``DataError`` (the CLI reports it) and a ``ValueError`` (callers validating input may catch that).
    """


@dataclass(frozen=True)
class ModeProfile:
    """Which OSM ways a travel mode may use, and in which directions.

    ``access_keys`` and ``oneway_keys`` run from the most general to the most specific tag; the last one present
    on a way decides.  ``own_keys`` are the mode's own access tags, which alone can open an ``opt_in`` highway.
    """

    name: str
    highways: frozenset[str]
    opt_in: frozenset[str]
    access_keys: tuple[str, ...]
    own_keys: tuple[str, ...]
    oneway_keys: tuple[str, ...]
    implied_oneway_highways: frozenset[str] = frozenset()
    roundabouts_oneway: bool = False
    contraflow_tags: tuple[tuple[str, str], ...] = ()
    excluded_tags: tuple[tuple[str, str], ...] = ()
    #: Highway types that, as a tunnel, need the mode's own explicit access tag (road tunnels under the Huangpu)
    tunnels_need_access: frozenset[str] = frozenset()


_STREETS = frozenset({
    "primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link",
    "unclassified", "residential", "living_street", "service", "road",
})
_NO_EXPRESSWAYS = (("motorroad", "yes"),)
#: Roads whose tunnels people on foot or on e-bikes may use only where the way says so (foot=yes, bicycle=yes):
#: in Shanghai these are the river-crossing road tunnels, which have no footway.
_MAJOR_ROADS = frozenset({"trunk", "trunk_link", "primary", "primary_link", "secondary", "secondary_link"})

MODES: dict[str, ModeProfile] = {
    "walk": ModeProfile(
        name="walk",
        highways=_STREETS | {"pedestrian", "footway", "path", "steps", "track", "cycleway", "corridor",
                             "bridleway"},
        opt_in=frozenset({"trunk", "trunk_link"}),
        access_keys=("access", "foot"),
        own_keys=("foot",),
        oneway_keys=("oneway:foot",),
        excluded_tags=_NO_EXPRESSWAYS,
        tunnels_need_access=_MAJOR_ROADS,
    ),
    "ebike": ModeProfile(
        name="ebike",
        highways=_STREETS | {"cycleway", "track"},
        opt_in=frozenset({"trunk", "trunk_link", "path", "footway", "pedestrian", "bridleway"}),
        access_keys=("access", "vehicle", "bicycle"),
        own_keys=("bicycle",),
        oneway_keys=("oneway", "oneway:vehicle", "oneway:bicycle"),
        roundabouts_oneway=True,
        contraflow_tags=(("cycleway", "opposite"), ("cycleway", "opposite_lane"), ("cycleway", "opposite_track")),
        excluded_tags=_NO_EXPRESSWAYS,
        tunnels_need_access=_MAJOR_ROADS,
    ),
    "car": ModeProfile(
        name="car",
        highways=_STREETS | {"motorway", "motorway_link", "trunk", "trunk_link", "track"},
        opt_in=frozenset(),
        access_keys=("access", "vehicle", "motor_vehicle", "motorcar"),
        own_keys=("motor_vehicle", "motorcar"),
        oneway_keys=("oneway", "oneway:vehicle", "oneway:motor_vehicle", "oneway:motorcar"),
        implied_oneway_highways=frozenset({"motorway"}),
        roundabouts_oneway=True,
    ),
}

DENIED_ACCESS = frozenset({"no", "private", "agricultural", "forestry", "emergency", "military", "use_sidepath"})
EXPLICIT_ACCESS = frozenset({"yes", "designated", "permissive", "destination", "delivery", "customers", "official"})
_ONEWAY_FORWARD = frozenset({"yes", "true", "1"})
_ONEWAY_BACKWARD = frozenset({"-1", "reverse"})
_ROUNDABOUTS = frozenset({"roundabout", "circular"})
#: pyosmium's fixed-point coordinate of a node whose location the extract does not contain.
_UNDEFINED_COORD = 2147483647
DEFAULT_MAX_SNAP_M = 500.0
#: Snapped points this close to a segment end are put on the end node (see ``RoadNetwork._project``).
NODE_TOLERANCE_M = 0.5
#: Small STRtree nodes make nearest-segment search about 1.6 times faster than shapely's default of 10.
_TREE_NODE_CAPACITY = 4


def profile_for(mode: str) -> ModeProfile:
    """The profile of ``mode``; a NetworkError naming the known modes otherwise."""
    try:
        return MODES[mode]
    except (KeyError, TypeError):
        raise NetworkError(f"unknown travel mode {mode!r}; use one of {', '.join(MODES)}", "mode") from None


def _most_specific(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    """The value of the last of ``keys`` present in ``tags`` (OSM's most-specific-tag-wins rule)."""
    value = None
    for key in keys:
        if key in tags:
            value = tags[key].strip().lower()
    return value


def way_is_usable(tags: dict[str, str], profile: ModeProfile) -> bool:
    """Whether a way with these tags may be used by the mode at all (highway type, access, exclusions)."""
    highway = tags.get("highway")
    if highway in profile.highways:
        opened = True
    elif highway in profile.opt_in:
        opened = _most_specific(tags, profile.own_keys) in EXPLICIT_ACCESS
    else:
        return False
    if not opened or any(tags.get(key) == value for key, value in profile.excluded_tags):
        return False
    if highway in profile.tunnels_need_access and tags.get("tunnel", "no") not in ("no", "building_passage") \
            and _most_specific(tags, profile.own_keys) not in EXPLICIT_ACCESS:
        return False
    return _most_specific(tags, profile.access_keys) not in DENIED_ACCESS


def way_directions(tags: dict[str, str], profile: ModeProfile) -> tuple[bool, bool]:
    """(forward, backward): may the mode travel along the way's node order, and against it."""
    implied = tags.get("highway") in profile.implied_oneway_highways
    implied |= profile.roundabouts_oneway and tags.get("junction") in _ROUNDABOUTS
    value = _most_specific(tags, profile.oneway_keys)
    own_key_absent = profile.oneway_keys[-1] not in tags
    if own_key_absent and any(tags.get(key) == v for key, v in profile.contraflow_tags):
        value = "no"
    if value is None:
        return True, not implied
    if value in _ONEWAY_FORWARD:
        return True, False
    if value in _ONEWAY_BACKWARD:
        return False, True
    return True, True


class _WayNodes(NamedTuple):
    """Flat arrays of the usable ways' node lists: entry i is node ``ref[i]`` of way ``way[i]``."""

    ref: np.ndarray
    x: np.ndarray
    y: np.ndarray
    way: np.ndarray
    forward: np.ndarray
    backward: np.ndarray


def _open_osm(path: Path):
    """A pyosmium FileProcessor yielding only highway ways, with node locations filled in.

    osmium is imported here, not at module level, so importing the core does not load it.
    """
    import osmium

    processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    processor.with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
    return processor.with_filter(osmium.filter.KeyFilter("highway"))


def _read_ways(path: Path, profile: ModeProfile) -> _WayNodes:
    """Stream the file once and keep the node lists and directions of the ways the mode may use.

    Node ids and fixed-point coordinates go into typed arrays (8 bytes each) rather than lists of Python ints
    (about 36 bytes each), which matters for city-wide extracts with millions of way nodes.
    """
    refs, xs, ys = array("q"), array("q"), array("q")
    counts: list[int] = []
    forward: list[bool] = []
    backward: list[bool] = []
    try:
        for way in _open_osm(path):
            tags = {tag.k: tag.v for tag in way.tags}
            if not way_is_usable(tags, profile):
                continue
            fwd, bwd = way_directions(tags, profile)
            nodes = way.nodes
            for node in nodes:
                refs.append(node.ref)
                xs.append(node.x)
                ys.append(node.y)
            counts.append(len(nodes))
            forward.append(fwd)
            backward.append(bwd)
    except (RuntimeError, OSError) as exc:
        raise NetworkError(f"cannot read OSM file {path}: {exc}", "path") from exc
    way_index = np.repeat(np.arange(len(counts), dtype=np.int64), np.asarray(counts, dtype=np.int64))
    return _WayNodes(np.frombuffer(refs, dtype=np.int64), np.frombuffer(xs, dtype=np.int64),
                     np.frombuffer(ys, dtype=np.int64), way_index,
                     np.asarray(forward, dtype=bool), np.asarray(backward, dtype=bool))


class _Segments(NamedTuple):
    """Segments between consecutive way nodes over compact node indices, with node OSM ids and coordinates."""

    node_id: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    a: np.ndarray
    b: np.ndarray
    forward: np.ndarray
    backward: np.ndarray


def _segments(ways: _WayNodes) -> _Segments:
    """Pair consecutive nodes of each way; drop pairs with a missing location or a repeated node."""
    valid = (ways.x != _UNDEFINED_COORD) & (ways.y != _UNDEFINED_COORD)
    pair = ((ways.way[:-1] == ways.way[1:]) & valid[:-1] & valid[1:] & (ways.ref[:-1] != ways.ref[1:]))
    first = np.flatnonzero(pair)
    used = np.concatenate([first, first + 1])
    node_id, where, inverse = np.unique(ways.ref[used], return_index=True, return_inverse=True)
    entry = used[where]
    n = len(first)
    return _Segments(node_id, ways.x[entry] * 1e-7, ways.y[entry] * 1e-7, inverse[:n], inverse[n:],
                     ways.forward[ways.way[first]], ways.backward[ways.way[first]])


def _largest_component(segs: _Segments) -> _Segments:
    """Keep the segments of the largest weakly connected component, with node indices renumbered."""
    n = len(segs.node_lon)
    graph = sparse.coo_matrix((np.ones(len(segs.a)), (segs.a, segs.b)), shape=(n, n)).tocsr()
    _, labels = csgraph.connected_components(graph, directed=True, connection="weak")
    keep_node = labels == np.bincount(labels).argmax()
    new_index = np.cumsum(keep_node) - 1
    keep = keep_node[segs.a]
    return _Segments(segs.node_id[keep_node], segs.node_lon[keep_node], segs.node_lat[keep_node],
                     new_index[segs.a[keep]], new_index[segs.b[keep]], segs.forward[keep], segs.backward[keep])


class Snap(NamedTuple):
    """Where points meet the network: segment, fraction along it from its first node, snap-leg length.

    Only the points that snapped are listed; ``point`` holds their positions among the ``count`` input points.
    Snapping is most of the cost of a query, so a caller comparing scenarios snaps the demand points once
    (``RoadNetwork.snap``) and reuses the result with ``RoadNetwork.nearest_source_snapped``.
    """

    count: int
    point: np.ndarray
    segment: np.ndarray
    t: np.ndarray
    leg_m: np.ndarray


class Nearest(NamedTuple):
    """Per target: index of the nearest source (-1 where none is within reach) and the network distance."""

    index: np.ndarray
    distance_m: np.ndarray


class RoadNetwork:
    """A routable road graph for one travel mode; answers nearest-source network distances for many targets."""

    def __init__(self, node_lon, node_lat, seg_a, seg_b, forward, backward, mode: str = "custom",
                 node_id=None):
        """Build from segments between nodes (indices into ``node_lon``/``node_lat``, WGS84 degrees).

        ``forward``/``backward`` say whether each segment may be travelled from ``a`` to ``b`` and back.  Lengths
        are geodesic.  ``node_id`` (OSM ids) defaults to the positions.  ``from_osm`` is the usual way in; this
        constructor serves synthetic networks.
        """
        self.mode = mode
        self.source_path: Path | None = None
        self.node_id = np.arange(len(node_lon)) if node_id is None else np.asarray(node_id, dtype=np.int64)
        self.node_lon = np.asarray(node_lon, dtype=float)
        self.node_lat = np.asarray(node_lat, dtype=float)
        self.seg_a = np.asarray(seg_a, dtype=np.int64)
        self.seg_b = np.asarray(seg_b, dtype=np.int64)
        self.seg_forward = np.asarray(forward, dtype=bool)
        self.seg_backward = np.asarray(backward, dtype=bool)
        self.seg_length_m = crs.geodesic_distance_m(self.node_lon[self.seg_a], self.node_lat[self.seg_a],
                                                    self.node_lon[self.seg_b], self.node_lat[self.seg_b])
        self._rows, self._cols, self._weights = self._directed_edges()
        self._node_x, self._node_y = (np.asarray(v, float) for v in crs.to_metric(self.node_lon, self.node_lat))
        self._tree = shapely.STRtree(self._segment_lines(), node_capacity=_TREE_NODE_CAPACITY)

    @classmethod
    def from_osm(cls, path, mode: str, *, largest_component: bool = True) -> RoadNetwork:
        """Read an OSM extract (.osm, .osm.pbf, .osm.gz, .osm.bz2) and build the graph for ``mode``.

        Raises NetworkError for an unknown mode, a missing or unreadable file, or no usable ways.
        """
        profile = profile_for(mode)
        path = Path(path)
        if not path.is_file():
            raise NetworkError(f"OSM file {path} does not exist or is not a file", "path")
        segs = _segments(_read_ways(path, profile))
        if not len(segs.a):
            raise NetworkError(f"OSM file {path} has no ways that mode {mode!r} may use", "path")
        if largest_component:
            segs = _largest_component(segs)
        network = cls(segs.node_lon, segs.node_lat, segs.a, segs.b, segs.forward, segs.backward, mode=mode,
                      node_id=segs.node_id)
        network.source_path = path
        return network

    @property
    def node_count(self) -> int:
        """Graph nodes (OSM nodes of usable ways, after the component filter)."""
        return len(self.node_lon)

    @property
    def edge_count(self) -> int:
        """Directed edges of the graph: one per segment direction the mode may travel, duplicates merged."""
        return len(self._weights)

    @property
    def segment_count(self) -> int:
        """Undirected segments between consecutive way nodes (what points snap to)."""
        return len(self.seg_a)

    def _directed_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Directed (from, to, metres) edges, keeping the shortest of any parallel edges."""
        rows = np.concatenate([self.seg_a[self.seg_forward], self.seg_b[self.seg_backward]])
        cols = np.concatenate([self.seg_b[self.seg_forward], self.seg_a[self.seg_backward]])
        weights = np.concatenate([self.seg_length_m[self.seg_forward], self.seg_length_m[self.seg_backward]])
        order = np.lexsort((weights, cols, rows))
        rows, cols, weights = rows[order], cols[order], weights[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        return rows[first], cols[first], weights[first]

    def _segment_lines(self) -> np.ndarray:
        """Shapely line strings of the segments in METRIC_CRS, for the snapping tree."""
        coords = np.stack([np.column_stack([self._node_x[self.seg_a], self._node_y[self.seg_a]]),
                           np.column_stack([self._node_x[self.seg_b], self._node_y[self.seg_b]])], axis=1)
        return shapely.linestrings(coords)

    def snap(self, lon, lat, max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Snap:
        """Snap WGS84 points to the nearest point on a segment; points beyond ``max_snap_m`` are left out.

        Among equally near segments (a point on a node) the lowest-numbered is taken, so results are repeatable.
        The tree search has no distance bound: with one, GEOS visits far more tree nodes and is twice as slow;
        the geodesic snap leg is compared with ``max_snap_m`` afterwards instead.
        """
        lon, lat = _coordinates(lon, lat)
        finite = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
        x, y = (np.asarray(v, float) for v in crs.to_metric(lon[finite], lat[finite]))
        pairs = self._tree.query_nearest(shapely.points(x, y), all_matches=True)
        order = np.lexsort((pairs[1], pairs[0]))
        pairs = pairs[:, order]
        first = np.ones(pairs.shape[1], dtype=bool)
        first[1:] = pairs[0, 1:] != pairs[0, :-1]
        hit, segment = pairs[0, first], pairs[1, first]
        t, px, py = self._project(x[hit], y[hit], segment)
        plon, plat = crs.from_metric(px, py)
        leg = crs.geodesic_distance_m(lon[finite[hit]], lat[finite[hit]], plon, plat)
        within = leg <= max_snap_m
        return Snap(len(lon), finite[hit][within], segment[within], t[within], leg[within])

    def _project(self, x, y, segment):
        """Fraction t in [0, 1] along each segment of the point nearest (x, y), and that point, in metres.

        A projection within ``NODE_TOLERANCE_M`` of a segment end is moved onto that end node: a point at an
        intersection then belongs to the node, not to whichever incident segment won the tie (which may be a
        oneway leading away, with no way back to the node a centimetre behind).
        """
        ax, ay = self._node_x[self.seg_a[segment]], self._node_y[self.seg_a[segment]]
        dx, dy = self._node_x[self.seg_b[segment]] - ax, self._node_y[self.seg_b[segment]] - ay
        length2 = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(length2 > 0, ((x - ax) * dx + (y - ay) * dy) / length2, 0.0)
        t = np.clip(t, 0.0, 1.0)
        length = np.sqrt(length2)
        t = np.where(t * length < NODE_TOLERANCE_M, 0.0, np.where((1.0 - t) * length < NODE_TOLERANCE_M, 1.0, t))
        return t, ax + t * dx, ay + t * dy

    def _source_edges(self, src: Snap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edges from one virtual node per snapped source to the segment end(s) it may drive or walk to."""
        virtual = self.node_count + np.arange(len(src.segment))
        length = self.seg_length_m[src.segment]
        to_b = self.seg_forward[src.segment] | (src.t == 1.0)
        to_a = self.seg_backward[src.segment] | (src.t == 0.0)
        rows = np.concatenate([virtual[to_b], virtual[to_a]])
        cols = np.concatenate([self.seg_b[src.segment[to_b]], self.seg_a[src.segment[to_a]]])
        weights = np.concatenate([src.leg_m[to_b] + (1.0 - src.t[to_b]) * length[to_b],
                                  src.leg_m[to_a] + src.t[to_a] * length[to_a]])
        return rows, cols, weights

    def _node_distances(self, src: Snap, limit_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Distance from every graph node to its nearest source (including the source's snap leg), and which."""
        rows, cols, weights = self._source_edges(src)
        size = self.node_count + len(src.segment)
        graph = sparse.csr_matrix((np.concatenate([self._weights, weights]),
                                   (np.concatenate([self._rows, rows]), np.concatenate([self._cols, cols]))),
                                  shape=(size, size))
        dist, _, origin = csgraph.dijkstra(graph, directed=True, indices=self.node_count + np.arange(len(src.segment)),
                                           min_only=True, limit=limit_m, return_predecessors=True)
        which = np.where(origin >= self.node_count, origin - self.node_count, -1)
        return dist[:self.node_count], which[:self.node_count]

    def _via_segment_ends(self, tgt: Snap, dist: np.ndarray, which: np.ndarray):
        """Best distance to each snapped target through either end of its segment (direction permitting)."""
        a, b = self.seg_a[tgt.segment], self.seg_b[tgt.segment]
        length = self.seg_length_m[tgt.segment]
        from_a = np.where(self.seg_forward[tgt.segment] | (tgt.t == 0.0), dist[a] + tgt.t * length, np.inf)
        from_b = np.where(self.seg_backward[tgt.segment] | (tgt.t == 1.0), dist[b] + (1.0 - tgt.t) * length,
                          np.inf)
        use_b = from_b < from_a
        return np.where(use_b, from_b, from_a), np.where(use_b, which[b], which[a])

    def _along_same_segment(self, src: Snap, tgt: Snap):
        """Direct distances from sources to targets snapped to the same segment: (target, source, metres)."""
        order = np.argsort(src.segment, kind="stable")
        sorted_seg = src.segment[order]
        lo = np.searchsorted(sorted_seg, tgt.segment, side="left")
        counts = np.searchsorted(sorted_seg, tgt.segment, side="right") - lo
        target = np.repeat(np.arange(len(tgt.segment)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        source = order[np.repeat(lo, counts) + offset]
        segment = tgt.segment[target]
        step = tgt.t[target] - src.t[source]
        allowed = np.where(step >= 0, self.seg_forward[segment], self.seg_backward[segment]) | (step == 0)
        metres = np.where(allowed, src.leg_m[source] + np.abs(step) * self.seg_length_m[segment], np.inf)
        return target, source, metres

    def nearest_source(self, source_lon, source_lat, target_lon, target_lat, limit_m: float | None = None,
                       max_snap_m: float = DEFAULT_MAX_SNAP_M) -> Nearest:
        """The nearest source of each target along the network, and the distance in metres.

        Distances include the geodesic snap legs at both ends.  ``inf`` (and index -1) where the target is
        farther than ``max_snap_m`` from every road, no source can reach it, or the distance exceeds ``limit_m``.
        """
        if max_snap_m < 0:
            raise ValueError("max_snap_m must not be negative")
        src = self.snap(source_lon, source_lat, max_snap_m)
        tgt = self.snap(target_lon, target_lat, max_snap_m)
        return self.nearest_source_snapped(src, tgt, limit_m)

    def nearest_source_snapped(self, sources: Snap, targets: Snap, limit_m: float | None = None) -> Nearest:
        """``nearest_source`` for points already snapped with ``snap`` (of this network), e.g. reused targets."""
        src, tgt = sources, targets
        distance = np.full(tgt.count, np.inf)
        index = np.full(tgt.count, -1, dtype=np.int64)
        limit = np.inf if limit_m is None else float(limit_m)
        if limit < 0:
            raise ValueError("limit_m must not be negative")
        if not len(src.segment) or not len(tgt.segment):
            return Nearest(index, distance)
        best, which = self._via_segment_ends(tgt, *self._node_distances(src, limit))
        _take_shorter(best, which, *self._along_same_segment(src, tgt))
        total = best + tgt.leg_m
        reached = np.isfinite(total) & (total <= limit)
        distance[tgt.point[reached]] = total[reached]
        index[tgt.point[reached]] = src.point[which[reached]]
        return Nearest(index, distance)

    def distance_to_nearest(self, source_lon, source_lat, target_lon, target_lat, limit_m: float | None = None,
                            max_snap_m: float = DEFAULT_MAX_SNAP_M) -> np.ndarray:
        """Network distance in metres from each target to its nearest source (``inf`` where unreachable).

        See ``nearest_source`` for the rules; this returns only the distances.
        """
        return self.nearest_source(source_lon, source_lat, target_lon, target_lat, limit_m, max_snap_m).distance_m


def _take_shorter(best: np.ndarray, which: np.ndarray, target, source, metres) -> None:
    """In place: where a (target, source, metres) candidate beats ``best[target]``, take it (shortest wins)."""
    order = np.lexsort((metres, target))
    target, source, metres = target[order], source[order], metres[order]
    first = np.ones(len(target), dtype=bool)
    first[1:] = target[1:] != target[:-1]
    target, source, metres = target[first], source[first], metres[first]
    better = metres < best[target]
    best[target[better]] = metres[better]
    which[target[better]] = source[better]


def _coordinates(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Flatten lon/lat (scalars or arrays) to float arrays of equal length, or raise ValueError."""
    lon = np.atleast_1d(np.asarray(lon, dtype=float)).ravel()
    lat = np.atleast_1d(np.asarray(lat, dtype=float)).ravel()
    if lon.shape != lat.shape:
        raise ValueError(f"lon and lat differ in length ({len(lon)} and {len(lat)})")
    return lon, lat
