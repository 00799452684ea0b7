"""GeoService: the one object that owns the layers; built once per process, shared by web, CLI and notebooks."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from .data import Layer
from .errors import DataError, FeatureNotFound, GeoServerError, InvalidQuery, LayerNotFound
from .history import UpdateTimes
from .layers import load_specs
from .nearest import nearest
from .query import NearestQuery

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "geo"
DEFAULT_LAYERS_DIR = PROJECT_ROOT / "layers"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else $GEOSERVER_DATA_DIR, else the bundled data/geo/."""
    return Path(data_dir or os.environ.get("GEOSERVER_DATA_DIR") or DEFAULT_DATA_DIR)


def resolve_layers_dir(layers_dir: str | os.PathLike | None = None) -> Path:
    """``layers_dir``, else $GEOSERVER_LAYERS_DIR, else the bundled layers/."""
    return Path(layers_dir or os.environ.get("GEOSERVER_LAYERS_DIR") or DEFAULT_LAYERS_DIR)


def approx_nbytes(value, _seen: set | None = None, _depth: int = 0) -> int:
    """A rough size in bytes of a cached value: numpy arrays, sparse matrices, data frames, geometries, strings and
    the containers and objects holding them (each array counted once per value; 6 levels deep at most)."""
    seen = set() if _seen is None else _seen
    if id(value) in seen or _depth > 6:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + (64 * value.size if value.dtype == object else 0)
    if isinstance(value, (bytes, bytearray, str)):
        return len(value) + 50
    if hasattr(value, "memory_usage") and hasattr(value, "columns"):   # a (Geo)DataFrame
        return int(value.memory_usage(index=True, deep=False).sum()) + 64 * len(value)
    if hasattr(value, "tocsr") and hasattr(value, "nnz"):              # a scipy sparse matrix
        return sum(int(getattr(value, a).nbytes) for a in ("data", "indices", "indptr") if hasattr(value, a))
    if isinstance(value, shapely.Geometry):
        return 16 * int(shapely.get_num_coordinates(value)) + 100
    if isinstance(value, dict):
        items = list(value.items())
        step = max(1, len(items) // 1000)   # a sample of a big container, scaled up
        return 64 * len(items) + step * sum(approx_nbytes(k, seen, _depth + 1) + approx_nbytes(v, seen, _depth + 1)
                                            for k, v in items[::step])
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        step = max(1, len(items) // 1000)
        return 8 * len(items) + step * sum(approx_nbytes(v, seen, _depth + 1) for v in items[::step])
    fields = getattr(value, "__dict__", None)
    if fields is None and hasattr(value, "__slots__"):
        fields = {name: getattr(value, name, None) for name in value.__slots__}
    if fields:
        return 64 + sum(approx_nbytes(v, seen, _depth + 1) for v in fields.values())
    return 32


@dataclass(frozen=True)
class ItemsPage:
    """Positions of one page of features, plus how many matched in all."""

    positions: np.ndarray
    number_matched: int


class GeoService:
    """All layers, loaded and indexed; answers feature, nearest and summary queries."""

    def __init__(self, data_dir=None, layers_dir=None, storage=None, database_url: str | None = None):
        """``storage``: where the layers are stored (default: the PostGIS database of ``database_url`` or
        $GEOSERVER_DATABASE_URL if set, else the GeoPackage files of ``data_dir``). ``data_dir`` also holds the
        planning inputs (demand/, networks/) whatever the storage."""
        from ..storage import open_storage
        self.data_dir = resolve_data_dir(data_dir)
        self.layers_dir = resolve_layers_dir(layers_dir)
        self.vocab, self.specs = load_specs(self.layers_dir)
        self.storage = storage if storage is not None else open_storage(self.data_dir, database_url)
        self._signatures = self.storage.signatures(self.specs, force=True)
        self.update_times = UpdateTimes(self.storage)
        self.layers: dict[str, Layer] = {lid: self._load(spec) for lid, spec in self.specs.items()}
        self._cache: OrderedDict = OrderedDict()   # key -> (value, estimated bytes)
        self._cache_bytes = 0
        self.cache_budget_bytes = int(float(os.environ.get("GEOSERVER_CACHE_MB", "512")) * (1 << 20))
        self._cache_lock = threading.Lock()
        self.refresh_interval_s = float(os.environ.get("GEOSERVER_RELOAD_INTERVAL_S", "1.0"))
        self._checked = time.monotonic()
        self._refresh_lock = threading.Lock()

    def _load(self, spec) -> Layer:
        """A layer from the store, each feature stamped with the time it last changed (``core.history``)."""
        layer = self.storage.load_layer(spec, self.vocab)
        self.update_times.stamp(layer)
        return layer

    # --- new data versions, picked up while serving ------------------------------------------------------
    def follow(self) -> None:
        """Serving: load new versions as soon as the store announces them (PostGIS replicas: a background thread
        per process LISTENs for them; files: the per-request check below is enough)."""
        self.storage.watch(lambda: self.refresh(force=True))

    def refresh(self, layer_id: str | None = None, force: bool = False) -> list[str]:
        """Reload layers whose data file was replaced (a new version); returns the ids reloaded.

        Cheap enough to call on every request: at most one stat per layer per ``refresh_interval_s`` (unless
        ``force``). Loading happens while other threads keep answering from the old layer; the new one is swapped
        in with one assignment, so a request in flight finishes on the data it started with.
        """
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_interval_s:
            return []
        if not self._refresh_lock.acquire(blocking=force):
            return []  # another thread is reloading: keep serving the current data
        try:
            self._checked = now
            changed = []
            try:
                signatures = self.storage.signatures(self.specs, force=force)
            except GeoServerError as exc:   # the store is unreachable: go on serving what is loaded
                log.warning("not checking for new data: %s", exc.message)
                return []
            for lid, spec in self.specs.items():
                if layer_id is not None and lid != layer_id:
                    continue
                signature = signatures.get(lid)
                if signature == self._signatures.get(lid) or signature is None:
                    continue
                try:
                    layer = self._load(spec)
                except DataError as exc:  # never swap in data that does not load; keep the old layer
                    log.error("not reloading layer %s: %s", lid, exc.message)
                    self._signatures[lid] = signature
                    continue
                except GeoServerError as exc:   # unreachable meanwhile: try again at the next check
                    log.warning("not reloading layer %s now: %s", lid, exc.message)
                    continue
                self.layers = {**self.layers, lid: layer}
                self._signatures[lid] = signature
                changed.append(lid)
            if changed:
                with self._cache_lock:
                    self._cache.clear()
                    self._cache_bytes = 0
                log.info("reloaded layers %s", ", ".join(changed))
            return changed
        finally:
            self._refresh_lock.release()

    # --- analysis inputs and results, cached (demand grids and coverage cost ~0.1-1 s each) -----------
    def cached(self, key, build, max_items: int = 24):
        """``build()`` once per ``key``, keeping the most recently used results within ``max_items`` entries and
        ``cache_budget_bytes`` in all (each entry's size estimated once, when stored: many distinct radii or grid
        sizes cannot pile up in memory). A value larger than the whole budget is returned but not kept."""
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key][0]
        value = build()
        size = approx_nbytes(value)
        with self._cache_lock:
            if size <= self.cache_budget_bytes:
                old = self._cache.pop(key, None)
                self._cache_bytes -= old[1] if old else 0
                self._cache[key] = (value, size)
                self._cache_bytes += size
            while self._cache and (len(self._cache) > max_items or self._cache_bytes > self.cache_budget_bytes):
                _, (_, dropped) = self._cache.popitem(last=False)
                self._cache_bytes -= dropped
        return value

    @property
    def cache_bytes(self) -> int:
        """Estimated bytes held by the analysis cache."""
        return self._cache_bytes

    def demand_files(self) -> dict[str, Path]:
        """Demand layers a planner put in <data dir>/demand/ (GeoPackage, GeoJSON, Shapefile, CSV or a GeoTIFF
        population raster)."""
        folder = self.data_dir / "demand"
        if not folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(folder.iterdir())
                if p.suffix.lower() in (".gpkg", ".geojson", ".json", ".shp", ".csv", ".tif", ".tiff")}

    def demand(self, name: str = "grid", cell_m: float = 200.0, weight_column: str | None = None):
        """The named demand layer: ``grid`` (census model on a cell_m grid) or a file from demand_files() (cell_m
        applies to the grid only; a raster's cells are its own)."""
        from .demand import grid_demand, load_demand
        if name in ("grid", "", None):
            return self.cached(("demand", "grid", float(cell_m)), lambda: grid_demand(self, float(cell_m)))
        files = self.demand_files()
        if name not in files:
            known = ", ".join(["grid", *files])
            raise InvalidQuery(f"unknown demand layer {str(name)[:60]!r}; available: {known}", "demand")
        return self.cached(("demand", name, weight_column),
                           lambda: load_demand(self, files[name], weight_column, name))

    def network_files(self) -> dict[str, Path]:
        """Road networks a planner put in <data dir>/networks/ (OpenStreetMap .osm, .osm.pbf, .osm.gz, .osm.bz2)."""
        folder = self.data_dir / "networks"
        if not folder.is_dir():
            return {}
        out = {}
        for p in sorted(folder.iterdir()):
            for suffix in (".osm.pbf", ".osm.gz", ".osm.bz2", ".osm", ".pbf"):
                if p.name.lower().endswith(suffix):
                    out[p.name[: -len(suffix)]] = p
                    break
        return out

    def network(self, name: str, mode: str):
        """The named road network for a travel mode (loaded once, then cached)."""
        from .network import RoadNetwork
        files = self.network_files()
        if name not in files:
            known = ", ".join(files) or "none configured: put .osm/.osm.pbf files in <data dir>/networks/"
            raise InvalidQuery(f"unknown road network {str(name)[:60]!r}; available: {known}", "network")
        if mode not in ("walk", "ebike", "car"):
            raise InvalidQuery("a road network needs mode=walk, ebike or car", "mode")
        return self.cached(("network", name, mode), lambda: RoadNetwork.from_osm(files[name], mode), max_items=24)

    def coverage(self, layer_id: str, catchment, demand, services=(), open_at=None):
        """Coverage of ``demand`` by a layer (cached by all its inputs)."""
        from .coverage import compute_coverage
        key = ("coverage", layer_id, self.layer(layer_id).version, catchment, demand.name, demand.cell_m,
               tuple(services), open_at)
        return self.cached(key, lambda: compute_coverage(self, layer_id, catchment, demand, services, open_at))

    @staticmethod
    def result_key(result) -> tuple:
        """What a coverage result was computed from (a cache key for things derived from it)."""
        return (result.layer, result.catchment, result.demand.name, result.demand.cell_m,
                tuple(result.filters["services"]), result.filters["open_at"])

    def gaps(self, result, min_uncovered: float = 0.0):
        """The gaps a coverage result leaves (cached)."""
        from .coverage import find_gaps
        return self.cached(("gaps", self.result_key(result), float(min_uncovered)),
                           lambda: find_gaps(result, min_uncovered=min_uncovered))

    # --- lookup -----------------------------------------------------------------------------------------
    def layer(self, layer_id: str) -> Layer:
        layer = self.layers.get(layer_id)
        if layer is None:
            raise LayerNotFound(f"unknown layer {str(layer_id)[:60]!r}; layers: {', '.join(self.layers)}", "layer")
        return layer

    def point_layer(self, layer_id: str) -> Layer:
        layer = self.layer(layer_id)
        if not layer.index.is_point:
            points = [lid for lid, lay in self.layers.items() if lay.index.is_point]
            raise InvalidQuery(f"layer {layer_id!r} is not a point layer; nearest works on {', '.join(points)}",
                               "layer")
        return layer

    def feature_position(self, layer: Layer, feature_id: str) -> int:
        pos = layer.position(feature_id)
        if pos is None:
            raise FeatureNotFound(f"layer {layer.spec.id!r} has no feature {str(feature_id)[:60]!r}", "featureId")
        return pos

    # --- queries ----------------------------------------------------------------------------------------
    def filter_mask(self, layer: Layer, positions: np.ndarray, services=(), open_at=None) -> np.ndarray:
        """Which of ``positions`` offer all ``services`` and (if ``open_at``) are open then."""
        keep = np.ones(len(positions), bool)
        if services:
            required = np.uint64(sum(self.vocab.bit(s) for s in services))
            keep &= (layer.service_mask[positions] & required) == required
        if open_at is not None:
            if layer.hours is None:
                raise InvalidQuery(f"layer {layer.spec.id!r} has no opening hours to filter on", "open_now")
            keep[keep] = layer.hours.open_mask(positions[keep], open_at)
        return keep

    def nearest(self, q: NearestQuery) -> tuple[Layer, list[dict]]:
        """The k nearest features as GeoJSON Feature dicts in ``q.datum`` with distance_m, bearing and open_now."""
        layer, found = self._nearest_found(q)
        return layer, [layer.feature(pos, q.datum, extra) for pos, extra in found]

    def nearest_json(self, q: NearestQuery) -> tuple[Layer, list[bytes]]:
        """``nearest`` with each Feature as JSON bytes (the same bytes orjson makes of each dict), spliced from the
        features' fragments serialised once per data version and datum."""
        layer, found = self._nearest_found(q)
        return layer, [layer.feature_json(pos, q.datum, extra) for pos, extra in found]

    def _nearest_found(self, q: NearestQuery) -> tuple[Layer, list[tuple[int, dict]]]:
        """The k nearest positions, each with the properties added to it (distance_m, bearing_deg, open_now)."""
        layer = self.point_layer(q.layer)
        open_at = q.at if q.open_now else None
        filtered = bool(q.services) or open_at is not None
        predicate = (lambda pos: self.filter_mask(layer, pos, q.services, open_at)) if filtered else None
        found = nearest(layer.index, q.lon, q.lat, q.k, q.max_distance_m, predicate)
        hours = layer.hours if q.at is not None else None
        out = []
        for pos, dist, az in zip(found.positions.tolist(), found.distances_m.tolist(), found.azimuths_deg.tolist()):
            extra = {"distance_m": round(dist, 1), "bearing_deg": round(az, 1)}
            if hours is not None:
                extra["open_now"] = hours.state(pos, q.at)  # None: hours unknown
            out.append((pos, extra))
        return layer, out

    def items(self, layer: Layer, bbox=None, filters: dict | None = None, services=(), limit=100,
              offset=0) -> ItemsPage:
        """One page of features matching a WGS84 bbox, property equality filters and services."""
        positions = layer.index.bbox(*bbox) if bbox is not None else np.arange(layer.count)
        if services:
            positions = positions[self.filter_mask(layer, positions, services)]
        for name, wanted in (filters or {}).items():
            positions = positions[self._property_matches(layer, positions, name, wanted)]
        return ItemsPage(positions[offset:offset + limit], int(len(positions)))

    def _property_matches(self, layer: Layer, positions: np.ndarray, name: str, wanted: str) -> np.ndarray:
        """Equality on a public property; ``district`` also matches the code and the English name."""
        values = {v.strip().lower() for v in wanted.split(",") if v.strip()}
        if name == "district" and "districts" in self.layers:
            values |= self._district_aliases(values)
        props = layer.properties
        keys = ("district", "district_code") if name == "district" else (name,)
        return np.fromiter((any(str(props[p].get(k)).lower() in values for k in keys) for p in positions),
                           dtype=bool, count=len(positions))

    def _district_aliases(self, values: set[str]) -> set[str]:
        """Chinese names for district codes, English names, names without 区 or former names."""
        from .districts import district_names, resolve_district
        districts = self.layers["districts"]
        names = district_names(districts)
        chinese = {p["id"]: str(p.get("name", "")).lower() for p in districts.properties}
        codes = {resolve_district(districts, v, names) for v in values} - {None}
        return {chinese[c] for c in codes}

    def bounds(self, layer: Layer) -> list[float]:
        """WGS84 extent of a layer (or of Shanghai for an empty layer)."""
        if layer.count == 0:
            return [120.85, 30.67, 122.25, 31.88]
        return [round(float(v), 6) for v in layer.gdf.total_bounds]
