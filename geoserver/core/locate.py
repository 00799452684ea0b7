"""Placing pending rows (待定位) with a geocoder: build the query from the row's address, accept only precise answers
inside the row's district, keep the rest pending with the reason staff will read.

A row of the unions' forms has 行政区, 街镇 and 具体门牌号 but no coordinates. The query is 上海市 + 行政区 + 街镇 +
具体门牌号 (parts already written in the address are not repeated); when that is not found or not precise, the
facility's name in its district is tried (a well-known site is often a point of interest). An answer is accepted
only when the provider places it at a house number, building or point of interest (not a district, town or road)
and the point lies in the row's 行政区 (with the same 150 m boundary tolerance as imports). Everything else stays
pending, with the geocoder's point kept as a proposal where there is one, so staff start from it on the map.

Nothing here talks HTTP or writes files: the geocoder is passed in (``geocode.CachedGeocoder``) and the result is a
list of upserts for :class:`~geoserver.core.edit.LayerEditor`, guarded so that a row edited meanwhile is left alone.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .geocode import GeocodeAnswer, GeocoderError, GeocoderStop, GeocoderUnavailable
from .layers import PENDING

#: Why a row is pending: (Chinese, English). ``None`` / no_coordinates / address_changed rows are geocoded by a
#: plain run; the failures of an earlier run only with ``retry_failed`` (the provider's data may have improved).
REASONS = {
    "no_coordinates": ("没有坐标，尚未地理编码", "no coordinates; not geocoded yet"),
    "address_changed": ("地址已修改，位置待确认", "the address changed: the position needs checking"),
    "no_address": ("没有可供地理编码的地址或名称", "no address or name to geocode"),
    "not_found": ("地理编码未找到该地址", "the geocoder did not find the address"),
    "imprecise": ("地理编码结果不够精确（{level}）", "the geocoder's answer is not precise enough ({level})"),
    "other_district": ("地理编码结果位于{actual}，不在{stated}", "the geocoder's answer lies in {actual_en}, not in "
                                                             "{stated}"),
    "outside_shanghai": ("地理编码结果不在上海市", "the geocoder's answer is outside Shanghai"),
    "geocoder_error": ("地理编码服务暂时不可用，稍后重试", "the geocoder could not be reached; try again later"),
}
FRESH = {None, "", "no_coordinates", "address_changed", "geocoder_error"}
FAILED = {"not_found", "imprecise", "other_district", "outside_shanghai", "no_address"}
#: Consecutive unreachable answers after which a batch stops (the service or the network is down).
MAX_CONSECUTIVE_ERRORS = 5
#: Fields a geocoding result depends on: if any changed while the batch ran, its answer is not applied.
GUARDED = ("name", "district", "subdistrict", "address", "location_status")
PROVIDER_LABELS = {"amap": "高德", "tianditu": "天地图", "tencent": "腾讯", "baidu": "百度"}


def _clean(text) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text or ""))).strip()


def queries_for(rec: dict) -> list[str]:
    """The addresses to ask for, best first: 上海市 + 行政区 + 街镇 + 具体门牌号, then the name in its district."""
    district, sub = _clean(rec.get("district")), _clean(rec.get("subdistrict"))
    address = re.sub(r"^(中国)?上海(市)?", "", _clean(rec.get("address")))
    name = _clean(rec.get("name"))
    out = []
    if address:
        head = "".join(part for part in (district, sub) if part and part not in address)
        out.append("上海市" + head + address)
    if name:
        out.append("上海市" + (district if district not in name else "") + name)
    return list(dict.fromkeys(out))


@dataclass
class Placement:
    """What the geocoder made of one row: located (lon, lat in WGS84) or pending with a reason."""

    id: str
    reason: str | None                   # None: located
    note: str
    query: str | None = None
    lon: float | None = None             # the accepted point, or the proposal of a pending row
    lat: float | None = None
    district: tuple[str, str] | None = None   # (name, code) the point lies in, filled in when the row had none

    @property
    def located(self) -> bool:
        return self.reason is None

    def upsert(self, rec: dict, provider: str) -> dict:
        """The edit for LayerEditor.apply, guarded by the fields the answer depended on."""
        out = {"id": self.id, "_expect": {k: rec.get(k) for k in GUARDED}, "_location_note": self.note}
        if self.lon is not None:
            out["_lon"], out["_lat"] = round(self.lon, 7), round(self.lat, 7)
        if self.located:
            out["_location_source"] = f"geocoder:{provider}"
            if self.district is not None and not rec.get("district"):
                out["district"], out["district_code"] = self.district
        else:
            out.update(_pending=True, _pending_reason=self.reason)
        return out


def _message(reason: str, **kw) -> str:
    zh, en = REASONS[reason]
    return f"{zh.format(**kw)} / {en.format(**kw)}"


class Locator:
    """Places rows of one layer with one geocoder against the district polygons (``importer.Reference``)."""

    def __init__(self, geocoder, reference):
        self.geocoder = geocoder
        self.ref = reference
        self.label = PROVIDER_LABELS.get(geocoder.name, geocoder.name)
        self.requests = 0          # answers that were not in the cache (each cost one request to the provider)

    def place(self, rec: dict, refresh: bool = False) -> Placement:
        """One row: the first acceptable answer of its queries, else the most useful failure."""
        fid = str(rec["id"])
        queries = queries_for(rec)
        if not queries:
            return Placement(fid, "no_address", _message("no_address"))
        stated = self.ref.district_index(rec["district"]) if rec.get("district") else None
        failure: Placement | None = None
        for query in queries:
            answer = self.geocoder.geocode(query, refresh=refresh)
            self.requests += not answer.cached
            outcome = self._judge(fid, query, answer, stated)
            if outcome.located:
                return outcome
            if failure is None or (failure.lon is None and outcome.lon is not None):
                failure = outcome   # the first failure, unless a later one at least proposes a point
        return failure

    def _judge(self, fid: str, query: str, answer: GeocodeAnswer, stated: int | None) -> Placement:
        if not answer.candidates:
            return Placement(fid, "not_found", _message("not_found"), query)
        first: Placement | None = None
        for c in answer.candidates:
            k = int(self.ref.locate(np.array([c.lon]), np.array([c.lat]))[0])
            where = f"{self.label}“{c.level}”：{c.formatted or query}"
            if k < 0:
                outcome = Placement(fid, "outside_shanghai", _message("outside_shanghai"), query)
            elif stated is not None and k != stated and not self.ref.near_district(stated, c.lon, c.lat):
                actual, wanted = self.ref.districts[k], self.ref.districts[stated]
                outcome = Placement(fid, "other_district", _message("other_district", actual=actual.name,
                                                                    actual_en=f"{actual.name} ({actual.name_en})",
                                                                    stated=wanted.name), query, c.lon, c.lat)
            elif not c.precise:
                outcome = Placement(fid, "imprecise", f"{_message('imprecise', level=c.level)}；{where}", query,
                                    c.lon, c.lat)
            else:
                d = self.ref.districts[stated if stated is not None else k]
                return Placement(fid, None, where, query, c.lon, c.lat, (d.name, d.code))
            first = first or outcome
        return first


@dataclass
class BatchResult:
    """What one geocoding run did."""

    layer: str
    provider: str
    tried: int = 0
    located: list[str] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)   # reason -> rows still pending
    cached: int = 0                                          # rows answered from the cache alone
    stopped: str | None = None                               # why the run ended early (quota, key, network)
    skipped: int = 0                                         # rows edited while the run went on
    version: int | None = None
    dry_run: bool = False
    upserts: list[dict] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict:
        return {"layer": self.layer, "provider": self.provider, "tried": self.tried, "located": len(self.located),
                "located_ids": self.located[:50], "pending": self.pending, "from_cache": self.cached,
                "stopped": self.stopped, "skipped": self.skipped, "version": self.version, "dry_run": self.dry_run}


def select_rows(records: list[dict], retry_failed: bool = False) -> list[dict]:
    """The pending rows a run geocodes: those never tried (or whose address changed, or whose try failed for want
    of a connection); with ``retry_failed`` also those the geocoder could not place before."""
    wanted = FRESH | FAILED if retry_failed else FRESH
    return [r for r in records if r.get("location_status") == PENDING and (r.get("location_reason") or None) in wanted]


def run_batch(locator: Locator, rows: list[dict], result: BatchResult, *, refresh: bool = False, progress=None,
              should_stop=None) -> BatchResult:
    """Geocode ``rows`` one after another into ``result.upserts``; stops cleanly on a quota or key error, after
    MAX_CONSECUTIVE_ERRORS unreachable answers in a row, or when ``should_stop()`` says so (a cancelled job)."""
    errors_in_a_row = 0
    for i, rec in enumerate(rows):
        if should_stop is not None and should_stop():
            result.stopped = "cancelled / 已取消"
            break
        if progress is not None:
            progress(i, len(rows))
        try:
            before = locator.requests
            placement = locator.place(rec, refresh=refresh and rec.get("location_reason") in FAILED)
            errors_in_a_row = 0
            result.cached += locator.requests == before
        except GeocoderStop as exc:     # quota or key: nothing more can be asked today
            result.stopped = exc.message
            break
        except GeocoderError as exc:    # unreachable (counted: the service or network is down), or this address only
            placement = Placement(str(rec["id"]), "geocoder_error", f"{_message('geocoder_error')}（{exc.message}）")
            if isinstance(exc, GeocoderUnavailable):
                errors_in_a_row += 1
                if errors_in_a_row >= MAX_CONSECUTIVE_ERRORS:
                    result.stopped = (f"the geocoder failed {errors_in_a_row} times in a row ({exc.message}); "
                                      "stopped, the remaining rows stay pending / 地理编码服务连续失败，已停止")
        result.tried += 1
        result.upserts.append(placement.upsert(rec, locator.geocoder.name))
        if placement.located:
            result.located.append(placement.id)
        else:
            result.pending[placement.reason] = result.pending.get(placement.reason, 0) + 1
        if result.stopped:
            break
    if progress is not None:
        progress(len(rows), len(rows))
    return result
