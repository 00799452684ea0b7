"""When each feature last changed: the ``updated`` timestamp every served feature carries.

A feature's ``updated`` is the time of the recorded version that last changed what the public sees of it — it
became public (added, or its position confirmed), or a public property or its position changed — as the change
feed reports it (``serving/feed.py``: the same version, the same time). Nothing new is stored: the times are
derived from the layer's versions through the storage interface (GeoPackage files or PostGIS alike, so every
replica computes the same times), each version read once per process (~60 ms for 3,400 stations) and the result
carried forward when a new version arrives.

Where the history cannot say more, the stated time is never earlier than the real change, so that a client asking
for "changed since T" cannot miss one:

* features unchanged since the oldest kept version carry that version's time: for the initial baseline (the data
  as it was before the first recorded change) the time that data was written, as served before; after a prune,
  when the oldest kept version was recorded (not when the feature was first entered);
* data not recorded in the history (the bundled sample files, or a file replaced by hand) carries the time the
  served data was written (``Layer.modified``);
* if the history cannot be read, the same.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import orjson
import shapely

from .errors import GeoServerError
from .layers import PENDING, UPDATED

log = logging.getLogger(__name__)
#: Versions whose public signatures are kept per process (about 1 MB each for 3,400 stations): the change feed
#: compares the same pairs of versions again for every client.
CACHED_SIGNATURES = 8


def iso_utc(moment: datetime) -> str:
    """``2026-12-02T19:40:49Z``: the form of version times (seconds, UTC)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def version_time(version) -> str:
    """The time a version's changes are stamped with: when it was recorded, or, for a version that records data
    found as it was (the initial baseline, a file changed by hand), when that data was written, the time its
    features were served with before it was recorded (``data_modified``)."""
    return (version.summary or {}).get("data_modified") or version.created


def epoch_seconds(text: str | None) -> float:
    """An ``updated`` value as seconds since 1970 (NaN for none)."""
    if not text:
        return float("nan")
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def public_signatures(spec, records: list[dict], geometries: list) -> dict[str, bytes]:
    """What the public sees of each public record (its public fields and position to 6 decimals), by id: two
    versions of a feature differ for a client exactly when these bytes differ."""
    names = [f.name for f in spec.public_fields]
    geoms = np.asarray(geometries, dtype=object)
    present = ~shapely.is_missing(geoms) if len(geoms) else np.zeros(0, bool)
    present[present] = ~shapely.is_empty(geoms[present])
    rounded = np.full(len(geoms), None, dtype=object)
    if present.any():
        rounded[present] = shapely.to_wkb(shapely.set_precision(geoms[present], 1e-6, mode="pointwise"))
    out = {}
    for rec, ok, wkb in zip(records, present, rounded):
        if not ok or rec.get("location_status") == PENDING:
            continue
        out[str(rec["id"])] = orjson.dumps([rec.get(n) for n in names], default=str,
                                           option=orjson.OPT_SERIALIZE_NUMPY) + wkb
    return out


@dataclass
class _State:
    number: int
    sha256: str
    signatures: dict[str, bytes]
    times: dict[str, str]


class UpdateTimes:
    """Per layer, the time each feature last changed (see the module docstring); one per service. Its
    :meth:`signatures` of a version are also what the change feed compares (``serving/feed.py``), so a feature's
    time moves exactly when the feed reports a change of it."""

    def __init__(self, storage):
        self.storage = storage
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._signatures: OrderedDict[tuple, dict[str, bytes]] = OrderedDict()
        self._signatures_lock = threading.Lock()

    def signatures(self, spec, version) -> dict[str, bytes]:
        """:func:`public_signatures` of a recorded version (read once, kept for the last CACHED_SIGNATURES)."""
        key = (spec.id, version.number, version.sha256)
        with self._signatures_lock:
            hit = self._signatures.get(key)
            if hit is not None:
                self._signatures.move_to_end(key)
                return hit
        found = public_signatures(spec, *self.storage.read_records(spec, version.number))
        with self._signatures_lock:
            self._signatures[key] = found
            while len(self._signatures) > CACHED_SIGNATURES:
                self._signatures.popitem(last=False)
        return found

    def stamp(self, layer) -> None:
        """Put ``updated`` into every property dict of a freshly loaded layer (before anything serialises it)."""
        baseline = iso_utc(layer.modified)
        try:
            times = self.times(layer)
        except GeoServerError as exc:     # the store cannot be read now: the safe upper bound for every feature
            log.warning("feature times of %s from the data's own time: %s", layer.spec.id, exc.message)
            times = {}
        for fid, props in zip(layer.ids, layer.properties):
            props[UPDATED] = times.get(fid, baseline)

    def times(self, layer) -> dict[str, str]:
        """id → time of the last public change, for the version the layer's data is (empty: not in the history)."""
        spec = layer.spec
        versions = list(self.storage.versions(spec.id))
        index = next((i for i in range(len(versions) - 1, -1, -1)
                      if str(versions[i].sha256).startswith(str(layer.version))), None)
        if index is None:
            return {}
        with self._lock:
            state = self._states.get(spec.id)
            start = None
            if state is not None:
                start = next((i for i, v in enumerate(versions[:index + 1])
                              if v.number == state.number and v.sha256 == state.sha256), None)
            if start is None:     # nothing carried forward: from the oldest kept version
                first = versions[0]
                signatures = self.signatures(spec, first)
                state = _State(first.number, first.sha256, signatures,
                               dict.fromkeys(signatures, version_time(first)))
                start = 0
            for version in versions[start + 1:index + 1]:
                signatures = self.signatures(spec, version)
                times = {}
                for fid, sig in signatures.items():
                    same = state.signatures.get(fid) == sig
                    times[fid] = state.times[fid] if same else version_time(version)
                state = _State(version.number, version.sha256, signatures, times)
            self._states[spec.id] = state
            return state.times


__all__ = ["UPDATED", "UpdateTimes", "epoch_seconds", "iso_utc", "public_signatures", "version_time"]
