"""Change feed for partners that sync a layer (map companies, 随申办): a snapshot once, then the changes since.

The feed is derived from the layer's recorded versions (the same history the admin API and ``geoserver history``
show, in either storage backend): version *n*'s changes are the public difference between version *n - 1* and
version *n* — features that became public (``added``), whose public properties or position changed (``updated``)
and that stopped being public (``removed``: deleted, or back to pending) — in id order, each stamped with the time
version *n* was recorded (for a data file changed by hand, when it was written). What counts as a change is
``core.history``'s comparison of the versions' public signatures, the same that gives every feature its
``updated`` time, which added and updated features carry. Private fields and pending rows never appear, exactly as
in the OGC items: of a feature that is not public now, a client sees only the tombstone, and only if the feature was public at its cursor (it may
hold it); pages hold at most ``limit`` changes (fewer when some are not shown).

A **cursor** ``<v>`` or ``<v>-<k>`` says what a client holds: version *v* of the layer plus the first *k* changes
of version *v + 1*. ``0`` is the data as it was before the first recorded change (the bundled data, or a fresh
import's baseline). A snapshot carries the cursor it is consistent with. A cursor whose version the history no
longer holds (pruned) cannot be continued: the answer is 410 "re-sync from the snapshot". Every replica derives the
same changes from the same stored versions, so a partner may switch servers between requests.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import orjson

from ..core.errors import GeoServerError, InvalidQuery
from ..core.history import version_time
from ..core.layers import UPDATED

CURSOR = re.compile(r"^(0|[1-9][0-9]{0,8})(?:-(0|[1-9][0-9]{0,8}))?$")
FEED_DEFAULT_LIMIT = 1000
FEED_MAX_LIMIT = 10_000
#: Layers built from old versions kept in memory (one per version; a few MB each for 3,400 stations).
CACHED_VERSIONS = 6


class CursorExpired(GeoServerError):
    """The cursor's version is no longer in the history (pruned): the client must take a new snapshot."""

    code = "CursorExpired"
    http_status = 410


@dataclass(frozen=True)
class Cursor:
    version: int
    offset: int = 0

    @classmethod
    def parse(cls, text: str | None, parameter: str = "since") -> "Cursor":
        if text is None or text == "":
            raise InvalidQuery(f"{parameter} is required: the cursor of your snapshot or of the last 'next' (0 for "
                               "the data before the first recorded change)", parameter)
        m = CURSOR.match(str(text))
        if not m:
            raise InvalidQuery(f"{parameter}={str(text)[:40]!r} is not a cursor; cursors look like 12 or 12-300 "
                               "(take them from a snapshot or a 'next' link, never build them)", parameter)
        return cls(int(m.group(1)), int(m.group(2) or 0))

    def __str__(self) -> str:
        return f"{self.version}-{self.offset}" if self.offset else str(self.version)


@dataclass(frozen=True)
class Change:
    op: str             # added | updated | removed
    id: str
    version: int
    time: str


class ChangeFeed:
    """Changes between a layer's recorded versions, computed once per version and kept (see the module docstring)."""

    def __init__(self, service):
        self.service = service
        self._lock = threading.Lock()
        self._layers: OrderedDict[tuple, object] = OrderedDict()
        self._diffs: dict[tuple, tuple[Change, ...]] = {}

    # --- versions ----------------------------------------------------------------------------------------------
    def history(self, layer_id: str) -> list:
        return list(self.service.storage.versions(layer_id))

    def current_cursor(self, layer) -> Cursor:
        """The cursor the served data is consistent with: the newest version whose content it is (0 before any)."""
        versions = self.history(layer.spec.id)
        if not versions:
            return Cursor(0)
        match = next((v for v in reversed(versions) if str(v.sha256).startswith(str(layer.version))), None)
        return Cursor((match or versions[-1]).number)

    def _layer_at(self, spec, number: int):
        key = (spec.id, number)
        with self._lock:
            found = self._layers.get(key)
            if found is not None:
                self._layers.move_to_end(key)
                return found
        from ..core.data import build_layer
        from ..core.edit import to_frame
        records, geometries = self.service.storage.read_records(spec, number)
        layer = build_layer(spec, self.service.vocab, to_frame(spec, records, geometries), f"v{number}",
                            self.service.layer(spec.id).modified, f"version {number}")
        with self._lock:
            self._layers[key] = layer
            while len(self._layers) > CACHED_VERSIONS:
                self._layers.popitem(last=False)
        return layer

    def diff(self, spec, versions: list, index: int) -> tuple[Change, ...]:
        """The changes version ``versions[index]`` made to the one before it (none for the initial baseline)."""
        version = versions[index]
        key = (spec.id, version.number, version.sha256)
        cached = self._diffs.get(key)
        if cached is not None:
            return cached
        if index == 0:
            if version.action != "initial":
                raise CursorExpired("the history before this version was pruned; re-sync from the snapshot",
                                    "since")
            changes: tuple[Change, ...] = ()
        else:
            signatures = self.service.update_times.signatures
            old, new = signatures(spec, versions[index - 1]), signatures(spec, version)
            time = version_time(version)
            out = []
            for fid in sorted(old.keys() | new.keys()):
                if fid not in old:
                    out.append(Change("added", fid, version.number, time))
                elif fid not in new:
                    out.append(Change("removed", fid, version.number, time))
                elif old[fid] != new[fid]:
                    out.append(Change("updated", fid, version.number, time))
            changes = tuple(out)
        self._diffs[key] = changes
        return changes

    # --- the feed ------------------------------------------------------------------------------------------------
    def changes(self, layer_id: str, since: Cursor, limit: int, datum: str) -> dict:
        """The changes after ``since``, at most ``limit``, with the cursor to continue from (see the module
        docstring). Raises CursorExpired (410) for a cursor the history no longer covers."""
        layer = self.service.layer(layer_id)
        spec = layer.spec
        versions = self.history(layer_id)
        numbers = [v.number for v in versions]
        latest = numbers[-1] if numbers else 0
        if since.version > latest:
            raise InvalidQuery(f"cursor {since} is ahead of this layer's history (latest version {latest}); take "
                               "cursors from this server's snapshot or 'next'", "since")
        # where the client's version sits: a kept version, or 0 when the history starts with the baseline
        if since.version == 0:
            start = 0
            if versions and versions[0].action != "initial":
                raise CursorExpired(f"cursor {since} is older than the history kept for {layer_id!r} (oldest "
                                    f"version {numbers[0]}); re-sync from the snapshot", "since")
        elif since.version in numbers:
            start = numbers.index(since.version) + 1
        else:
            raise CursorExpired(f"cursor {since} is older than the history kept for {layer_id!r} (oldest version "
                                f"{numbers[0] if numbers else 0}); re-sync from the snapshot", "since")
        out: list[tuple[Change, object]] = []
        offset = since.offset
        next_cursor = since
        index = start
        while index < len(versions) and len(out) < limit:
            version = versions[index]
            changes = self.diff(spec, versions, index)
            if offset > len(changes):
                raise InvalidQuery(f"cursor {since} points past the {len(changes)} changes of version "
                                   f"{version.number}", "since")
            take = changes[offset:offset + (limit - len(out))]
            layer_then = self._layer_at(spec, version.number) if any(c.op != "removed" for c in take) else None
            out += [(c, layer_then) for c in take]
            offset += len(take)
            if offset >= len(changes):
                next_cursor, offset, index = Cursor(version.number), 0, index + 1
            else:
                next_cursor = Cursor(versions[index - 1].number if index > 0 else 0, offset)
                break
        complete = index >= len(versions)
        # what this client is told: nothing of a feature that is not public now unless it may hold it (public at
        # the cursor's version): then only its tombstone. So a row that was public for a while and is pending now
        # (its address changed) or deleted shows up as a tombstone to those who had it, and not at all to others.
        if out:
            signatures = self.service.update_times.signatures
            now = signatures(spec, versions[-1]).keys()
            held = signatures(spec, versions[numbers.index(since.version)] if since.version else versions[0]).keys()
            out = [(c, lay) for c, lay in out
                   if c.id in now or (c.op == "removed" and c.id in held)]
        return {"layer": layer_id, "crs": datum, "since": str(since), "next": str(next_cursor),
                "complete": complete, "changes": [self._change_json(c, lay, datum) for c, lay in out]}

    @staticmethod
    def _change_json(change: Change, layer, datum: str) -> dict:
        out = {"op": change.op, "id": change.id, "version": change.version, "time": change.time}
        if change.op != "removed":   # as served now: with the time of its change (core.history)
            out["feature"] = orjson.Fragment(layer.feature_json(layer.position(change.id), datum,
                                                                {UPDATED: change.time}))
        return out


__all__ = ["ChangeFeed", "Cursor", "CursorExpired", "FEED_DEFAULT_LIMIT", "FEED_MAX_LIMIT"]
