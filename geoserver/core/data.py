"""Loading a layer's data file into a GeoDataFrame plus everything queries need, once, at start-up."""

from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import orjson
import pandas as pd
import pyogrio
import shapely

from . import crs
from .errors import DataError
from .hours import HoursTable
from .index import SpatialIndex
from .layers import PENDING, LayerSpec, ServiceVocabulary

COORD_DECIMALS = 6  # about 0.1 m: RFC 7946 advises no more precision than the data has


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file, read once per file identity: every commit replaces the file (a new inode), so
    (inode, size, mtime) names its content and repeated asks (history listings, If-Match) cost a stat."""
    st = os.stat(path)
    return _digest(str(path), st.st_ino, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=256)
def _digest(path: str, inode: int, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_version(path: Path) -> str:
    """Content hash of a data file: the layer's data version (changes whenever the data does)."""
    return file_digest(path)[:16]


def _clean(value, ftype: str):
    """One cell as a JSON-ready Python value of the field's type (None for missing)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if ftype in ("string", "opening_hours"):
        text = str(value).strip()
        return text or None
    if ftype == "integer":
        return int(value)
    if ftype == "number":
        return float(value)
    if ftype == "boolean":
        return bool(value)
    raise ValueError(ftype)


def split_services(value) -> list[str]:
    """A stored services cell ("water,rest") as a list of ids."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [s.strip() for s in str(value).split(",") if s.strip()]


def _round_geometry(geom):
    return shapely.transform(geom, lambda xy: np.round(xy, COORD_DECIMALS))


@dataclass
class Layer:
    """A loaded layer: spec, data, index and the per-feature values queries use."""

    spec: LayerSpec
    gdf: gpd.GeoDataFrame
    version: str
    modified: datetime
    index: SpatialIndex
    ids: np.ndarray
    properties: list[dict]
    service_mask: np.ndarray
    hours: HoursTable | None
    pending: gpd.GeoDataFrame | None = None   # rows without a confirmed position (staff only; see below)
    _position_of: dict = field(default_factory=dict, repr=False)
    _fragments: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def count(self) -> int:
        return len(self.ids)

    @cached_property
    def has_sample_data(self) -> bool:
        """True if any feature is generated sample data (``source == "sample"``): every view must say so."""
        return any(p.get("source") == "sample" for p in self.properties)

    def position(self, feature_id: str) -> int | None:
        return self._position_of.get(feature_id)

    @property
    def pending_count(self) -> int:
        return 0 if self.pending is None else len(self.pending)

    @cached_property
    def pending_ids(self) -> frozenset[str]:
        return frozenset() if self.pending is None else frozenset(self.pending["id"].astype(str))

    def pending_by_reason(self) -> dict[str, int]:
        """How many pending rows there are for each reason code (``location_reason``; "" when none is recorded)."""
        if not self.pending_count or "location_reason" not in self.pending.columns:
            return {"": self.pending_count} if self.pending_count else {}
        reasons = self.pending["location_reason"].fillna("").astype(str)
        return {str(k): int(v) for k, v in reasons.value_counts().sort_index().items()}

    def point_coordinates(self, datum: str) -> list[list[float]]:
        """[lon, lat] of every point in ``datum``, rounded to 6 decimals (computed once per datum)."""
        cached = self._fragments.get(("points", datum))
        if cached is None:
            lon, lat = crs.from_wgs84(self.index.lon, self.index.lat, datum)
            cached = np.column_stack([np.round(lon, COORD_DECIMALS), np.round(lat, COORD_DECIMALS)]).tolist()
            self._fragments[("points", datum)] = cached
        return cached

    def geometry_json(self, pos: int, datum: str):
        """GeoJSON geometry dict of one feature in ``datum``, coordinates rounded to 6 decimals."""
        if self.index.is_point:
            return {"type": "Point", "coordinates": self.point_coordinates(datum)[pos]}
        geom = crs.transform_geometry(self.index.geometries[pos], datum)
        return shapely.geometry.mapping(_round_geometry(geom))

    def feature(self, pos: int, datum: str, extra: dict | None = None) -> dict:
        """One public GeoJSON Feature (dict)."""
        props = self.properties[pos] if not extra else {**self.properties[pos], **extra}
        return {"type": "Feature", "id": self.ids[pos], "geometry": self.geometry_json(pos, datum),
                "properties": props}

    def feature_json(self, pos: int, datum: str, extra: dict | None = None) -> bytes:
        """One public GeoJSON Feature as JSON bytes, the same bytes as ``orjson.dumps(self.feature(pos, datum,
        extra))``: the feature's fragment (serialised once per datum) with ``extra`` added at the end of its
        properties, so only ``extra`` is serialised per call."""
        fragment = (self._fragments.get(datum) or self.fragments(datum))[pos]
        if not extra:
            return fragment
        props = self.properties[pos]
        if not props or not extra.keys().isdisjoint(props):   # a property replaced in place: serialise it all
            return orjson.dumps(self.feature(pos, datum, extra))
        return b"%s,%s}" % (fragment[:-2], orjson.dumps(extra)[1:])   # properties and the feature end in "}}"

    def fragments(self, datum: str) -> list[bytes]:
        """Every feature serialised once per datum (built on first use, then reused by every request)."""
        cached = self._fragments.get(datum)
        if cached is None:
            with self._lock:
                cached = self._fragments.get(datum)
                if cached is None:
                    cached = [orjson.dumps(self.feature(i, datum)) for i in range(self.count)]
                    self._fragments[datum] = cached
        return cached


def pending_mask(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """Rows that are not public: no geometry, or ``location_status`` says pending (a position proposed by a
    geocoder or kept after the address changed, waiting for staff to confirm it)."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    missing = shapely.is_missing(geoms)
    unplaced = missing.copy()
    unplaced[~missing] = shapely.is_empty(geoms[~missing])
    if "location_status" in gdf.columns:
        unplaced |= (gdf["location_status"].astype(object) == PENDING).to_numpy(dtype=bool, na_value=False)
    return unplaced


def load_layer(spec: LayerSpec, vocab: ServiceVocabulary, data_dir: Path) -> Layer:
    """Read ``spec.data_file`` from ``data_dir`` and build the index and derived arrays."""
    path = data_dir / spec.data_file
    if not path.exists():
        raise DataError(f"layer {spec.id}: data file {path.name} not found in the data directory")
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise DataError(f"layer {spec.id}: cannot read {path.name}: {exc}") from exc
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc).replace(microsecond=0)
    return build_layer(spec, vocab, gdf, file_version(path), modified, path.name)


def build_layer(spec: LayerSpec, vocab: ServiceVocabulary, gdf: gpd.GeoDataFrame, version: str, modified: datetime,
                source: str) -> Layer:
    """A layer from its table (any storage backend): checks it, splits off pending rows, builds the index and the
    per-feature values. ``source`` names where the table came from in error messages."""
    if gdf.crs is None:
        raise DataError(f"layer {spec.id}: {source} has no coordinate reference system")
    if not gdf.crs.equals(crs.WGS84):
        gdf = gdf.to_crs(crs.WGS84)
    missing = [f.name for f in spec.fields if f.required and f.name not in gdf.columns]
    if missing:
        raise DataError(f"layer {spec.id}: {source} lacks required fields {missing}")
    all_ids = gdf["id"].astype(str).to_numpy()
    if len(set(all_ids)) != len(all_ids):
        raise DataError(f"layer {spec.id}: {source} has duplicate ids")
    unplaced = pending_mask(gdf)
    pending = None
    if spec.is_point:  # rows without a confirmed position are kept for staff, apart from everything public
        pending = gdf[unplaced].reset_index(drop=True)
        gdf = gdf[~unplaced].reset_index(drop=True)
    elif unplaced.any():
        raise DataError(f"layer {spec.id}: {source} has features without geometry")
    geoms = gdf.geometry.values
    if spec.is_point and len(geoms) and not bool(np.all(shapely.get_type_id(np.asarray(geoms, dtype=object)) == 0)):
        raise DataError(f"layer {spec.id}: {source} has geometries that are not points, but the layer is a point "
                        "layer")
    ids = gdf["id"].astype(str).to_numpy()

    bits = {sid: vocab.bit(sid) for sid in (spec.services or vocab.ids)}
    mask = np.zeros(len(gdf), dtype=np.uint64)
    columns = {f.name: (gdf[f.name].tolist() if f.name in gdf.columns else [None] * len(gdf)) for f in spec.fields}
    properties = []
    public = [f for f in spec.public_fields if f.name != "id"]
    for i in range(len(gdf)):
        props = {"id": str(ids[i])}
        for f in public:
            value = columns[f.name][i]
            if f.type == "services":
                services = split_services(value)
                unknown = [s for s in services if s not in bits]
                if unknown:
                    raise DataError(f"layer {spec.id}: feature {ids[i]} has services {unknown} that are not in "
                                    f"the layer's vocabulary ({', '.join(bits)})")
                mask[i] = sum(bits[s] for s in services)
                props[f.name] = services
            else:
                props[f.name] = _clean(value, f.type)
        properties.append(props)
    has_hours = spec.field("opening_hours") is not None and "opening_hours" in gdf.columns
    return Layer(
        spec=spec, gdf=gdf, version=version, modified=modified,
        index=SpatialIndex(np.asarray(geoms, dtype=object), point_layer=spec.is_point), ids=ids, properties=properties,
        service_mask=mask, hours=HoursTable(gdf["opening_hours"].tolist()) if has_hours else None, pending=pending,
        _position_of={fid: i for i, fid in enumerate(ids)},
    )
