"""Changing a layer's data: imports (merge or replace by id) and single-feature edits, each one new version.

Every change reads the current data under the layer's write lock, builds the new table and commits it through the
storage (:mod:`geoserver.storage`), which first loads it exactly as the server will (so data the server cannot load
is never made current).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from . import crs
from .errors import FeatureNotFound, GeoServerError
from .layers import LOCATED, PENDING, LayerSpec, ServiceVocabulary


class EditConflict(GeoServerError):
    """The edit does not fit the data (the id exists already, or the layer changed since the client read it)."""

    code = "Conflict"


@dataclass
class ChangeResult:
    """What a change did."""

    layer: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)   # upserts whose ``_expect`` no longer held (changed meanwhile)
    features: int = 0
    version: int | None = None        # None when nothing changed (no new version)
    data_version: str | None = None   # content hash prefix the server reports as the layer version

    def summary(self) -> dict:
        out = {"added": len(self.added), "updated": len(self.updated), "removed": len(self.removed),
               "unchanged": self.unchanged, "features": self.features, "version": self.version}
        if self.skipped:
            out["skipped"] = len(self.skipped)
        return out


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _plain(value):
    """A cell from a data frame as a plain Python value (None for missing)."""
    if _blank(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_records(path: Path, spec: LayerSpec) -> tuple[list[dict], list]:
    """A layer data file (current or a version) as (records of the spec's fields, WGS84 geometries)."""
    if not path.exists():
        return [], []
    gdf = pyogrio.read_dataframe(path)
    if gdf.crs is not None and not gdf.crs.equals(crs.WGS84):
        gdf = gdf.to_crs(crs.WGS84)
    names = [f.name for f in spec.fields if f.name in gdf.columns]
    records = [{n: _plain(v) for n, v in zip(names, values)}
               for values in gdf[names].itertuples(index=False, name=None)]
    geometries = list(gdf.geometry.values)
    has_status = spec.field("location_status") is not None
    for r, g in zip(records, geometries):
        r["id"] = str(r["id"])
        if has_status and r.get("location_status") is None:   # files from before the field
            r["location_status"] = PENDING if g is None or g.is_empty else LOCATED
    return records, geometries


def to_frame(spec: LayerSpec, records: list[dict], geometries: list) -> gpd.GeoDataFrame:
    """Records (fields of the spec) and geometries as a typed GeoDataFrame in the spec's field order."""
    data = {}
    for f in spec.fields:
        values = [r.get(f.name) for r in records]
        if f.type == "number":
            data[f.name] = pd.array([None if _blank(v) else float(v) for v in values], dtype="Float64")
        elif f.type == "integer":
            data[f.name] = pd.array([None if _blank(v) else int(v) for v in values], dtype="Int64")
        elif f.type == "boolean":
            data[f.name] = pd.array([None if _blank(v) else bool(v) for v in values], dtype="boolean")
        else:
            data[f.name] = pd.array([None if _blank(v) else str(v) for v in values], dtype=object)
    return gpd.GeoDataFrame(data, geometry=list(geometries), crs=crs.WGS84)


def _same(a: dict, b: dict, names) -> bool:
    for n in names:
        x, y = a.get(n), b.get(n)
        if _blank(x) and _blank(y):
            continue
        if isinstance(x, float) or isinstance(y, float):
            try:
                if abs(float(x) - float(y)) < 1e-9:
                    continue
            except (TypeError, ValueError):
                pass
        if x != y:
            return False
    return True


def _same_point(a, b) -> bool:
    # 2e-7° is about 2 cm: positions are stored to 7 decimals, so a round trip through another datum is "same"
    if a is None or b is None:
        return a is None and b is None
    return shapely.equals_exact(a, b, tolerance=2e-7)


#: Fields that say where a facility is: a change of any of them, without new coordinates, makes a placed facility
#: pending again (its old point is kept as a proposal for staff to confirm or move).
ADDRESS_FIELDS = ("district", "subdistrict", "address")


def locate_record(rec: dict, fields: dict, old: tuple[dict, object] | None, carry: bool = True
                  ) -> tuple[dict, object]:
    """(fields with the location fields set, geometry) of an upsert; ``old`` is the current (record, geometry) of
    the same id, if any. ``carry``: a merge (an upsert without coordinates keeps the old position); a replace
    takes the row as it is (no coordinates: pending), though an unchanged position keeps its recorded source.

    The location fields are the system's, never the caller's: an upsert says ``_lon``/``_lat`` (a position, from
    ``_location_source`` with ``_location_note``), or ``_pending`` with ``_pending_reason`` (a position that is only
    a proposal, or none), or nothing (a field update: the position stays, unless the address changed)."""
    fields = {k: v for k, v in fields.items() if not k.startswith("location_")}
    has_point = "_lon" in rec
    point = shapely.Point(rec["_lon"], rec["_lat"]) if has_point else None
    old_rec, old_point = old if old is not None else ({}, None)
    location = {k: old_rec.get(k) for k in ("location_status", "location_source", "location_reason",
                                            "location_note")}
    if rec.get("_pending"):
        geometry = point if has_point else old_point
        location.update(location_status=PENDING, location_reason=rec.get("_pending_reason"),
                        location_note=rec.get("_location_note"))
    elif has_point:
        geometry = point
        if not (_same_point(point, old_point) and old_rec.get("location_status") != PENDING):
            location.update(location_status=LOCATED, location_source=rec.get("_location_source"),
                            location_reason=None, location_note=rec.get("_location_note"))
    elif old is not None and carry:
        geometry = old_point
        moved = any(n in fields and fields[n] != old_rec.get(n) for n in ADDRESS_FIELDS)
        if moved and (old_point is not None or location["location_status"] == PENDING):
            # a placed facility waits for staff to confirm its old point; a pending one is geocoded again
            location.update(location_status=PENDING, location_reason="address_changed",
                            location_note="地址已修改，位置待确认 / the address changed: the position needs checking")
    else:
        geometry = None
        location.update(location_status=PENDING, location_source=None, location_note=None,
                        location_reason=rec.get("_pending_reason") or "no_coordinates")
    if geometry is None:
        location["location_status"] = PENDING
    elif location["location_status"] is None:
        location["location_status"] = LOCATED
    return {**fields, **location}, geometry


class LayerEditor:
    """Applies changes to the layers of one storage (GeoPackage files or PostGIS; see geoserver.storage)."""

    def __init__(self, store, specs: dict[str, LayerSpec], vocab: ServiceVocabulary):
        self.store = store
        self.specs = specs
        self.vocab = vocab

    def apply(self, layer_id: str, *, upserts: list[dict] = (), deletes: list[str] = (), replace: bool = False,
              partial: bool = True, create_only: bool = False, update_only: bool = False, who: str, action: str,
              summary: dict | None = None, expect_data_version: str | None = None) -> ChangeResult:
        """Insert/update ``upserts`` by id (records with ``_lon``/``_lat`` in WGS84), delete ``deletes``.

        ``replace``: the upserts become the whole layer. ``partial``: an update keeps fields the record lacks.
        ``create_only``/``update_only``: refuse ids that exist / do not exist. ``expect_data_version``: refuse if
        the layer changed since (optimistic concurrency for HTTP clients sending If-Match).
        """
        spec = self.specs[layer_id]
        names = [f.name for f in spec.fields]
        with self.store.writing(spec):
            if expect_data_version is not None:
                current = self.store.data_version(spec)
                if current != expect_data_version:
                    raise EditConflict(f"layer {layer_id!r} changed since version {expect_data_version} (now "
                                       f"{current}); read it again and retry", "If-Match")
            records, geoms = self.store.read_records(spec)
            before = len(records)
            position = {r["id"]: i for i, r in enumerate(records)}
            issued = self.store.issued(spec)
            upserts = self._fresh_ids(spec, upserts, position, issued)
            result = ChangeResult(layer=layer_id)
            for fid in deletes:
                if fid not in position:
                    raise FeatureNotFound(f"layer {layer_id!r} has no feature {str(fid)[:60]!r}", "featureId")
            if replace:
                keep_ids = {u["id"] for u in upserts}
                result.removed = [r["id"] for r in records if r["id"] not in keep_ids]
            else:
                result.removed = list(deletes)
            removed = set(result.removed)
            new_records = {r["id"]: (r, g) for r, g in zip(records, geoms) if r["id"] not in removed}
            for rec in upserts:
                fid = rec["id"]
                fields = {n: rec.get(n) for n in names if n in rec}
                old = new_records.get(fid)
                expect = rec.get("_expect")   # fields that must still hold (else it changed meanwhile: skip it)
                if old is None:
                    if expect is not None:      # deleted meanwhile
                        result.skipped.append(fid)
                        continue
                    if update_only:
                        raise FeatureNotFound(f"layer {layer_id!r} has no feature {str(fid)[:60]!r}", "featureId")
                    located, point = locate_record(rec, fields, None)
                    new_records[fid] = ({n: located.get(n) for n in names}, point)
                    result.added.append(fid)
                    continue
                if create_only:
                    raise EditConflict(f"layer {layer_id!r} already has a feature {fid!r}; use PUT to change it",
                                       "id")
                if expect is not None and not _same(expect, old[0], list(expect)):
                    result.skipped.append(fid)
                    continue
                located, point = locate_record(rec, fields, old, carry=partial)
                merged = {**old[0], **located} if partial else {n: located.get(n) for n in names}
                if _same(merged, old[0], names) and _same_point(point, old[1]):
                    continue
                new_records[fid] = (merged, point)
                result.updated.append(fid)
            result.features = len(new_records)
            result.unchanged = result.features - len(result.added) - len(result.updated)
            if not (result.added or result.updated or result.removed):
                result.data_version = self.store.data_version(spec)
                return result
            frame = to_frame(spec, [r for r, _ in new_records.values()], [g for _, g in new_records.values()])
            info = {**(summary or {}), **{k: v for k, v in result.summary().items() if k != "version"}}
            for key, ids in (("added_ids", result.added), ("updated_ids", result.updated),
                             ("removed_ids", result.removed)):
                if ids:
                    info[key] = ids[:20] + ([f"... {len(ids) - 20} more"] if len(ids) > 20 else [])
            # the high-water mark of generated ids is on disk BEFORE the new data becomes current: a crash after
            # this point can only skip numbers, never give an id out twice; the version records it too
            high = self._high_water(spec, issued, result.added)
            if high > issued:
                self.store.remember_issued(spec, high)
                info["id_high_water"] = high
            version = self.store.commit(spec, self.vocab, frame, who=who, action=action, summary=info,
                                        previous_features=before)
            result.version = version.number
            result.data_version = version.sha256[:16]  # what the server reports as the layer's version
        return result

    def _high_water(self, spec: LayerSpec, issued: int, added: list[str]) -> int:
        prefix = spec.new_id_prefix
        numbers = [int(fid[len(prefix):]) for fid in added if fid.startswith(prefix) and fid[len(prefix):].isdigit()]
        return max([issued, *numbers])

    def _fresh_ids(self, spec: LayerSpec, upserts, position: dict, issued: int) -> list[dict]:
        """Ids the importer generated (``_generated_id``) were free when it read the layer; another writer may have
        taken them since, and numbers up to ``issued`` were given out before. Checked again here, under the lock,
        in one pass with one generator of fresh ids (after the highest taken or issued number): linear however many
        rows need a new number."""
        from .importer import new_ids
        taken = set(position) | {u["id"] for u in upserts if not u.get("_generated_id")}
        if issued:
            taken.add(f"{spec.new_id_prefix}{issued:05d}")
        fresh = None
        out = []
        for u in upserts:
            if u.get("_generated_id") and (u["id"] in taken or self._number(spec, u["id"]) <= issued):
                if fresh is None:   # scans ``taken`` once; afterwards it checks each candidate against it
                    fresh = new_ids(spec, taken)
                u = {**u, "id": next(fresh)}
            taken.add(u["id"])
            out.append(u)
        return out

    def _number(self, spec: LayerSpec, fid: str) -> int:
        tail = fid[len(spec.new_id_prefix):]
        return int(tail) if fid.startswith(spec.new_id_prefix) and tail.isdigit() else 0

    def rollback(self, layer_id: str, number: int, *, who: str):
        return self.store.rollback(self.specs[layer_id], self.vocab, number, who=who)
