"""Framework-neutral parsing and validation of query parameters.

Every function takes plain strings (a mapping of query parameters or JSON values) and either returns typed
values or raises ``InvalidQuery`` naming the parameter and the problem, so the web layer, the CLI and
notebooks share one set of rules.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from . import crs
from .errors import InvalidQuery
from .hours import as_shanghai

MAX_PARAM_LENGTH = 2000
#: The OGC API's equality filters (district=…, name=…) and feature ids: at most this many characters, so that a
#: request with every filter at its longest still fits the HTTP server's request line (64 KB; 414 beyond).
OGC_TEXT_MAX_LENGTH = 400
MAX_K = 500
MAX_DISTANCE_M = 200_000.0
ITEMS_DEFAULT_LIMIT = 100
ITEMS_MAX_LIMIT = 10_000
MAX_OFFSET = 10_000_000
#: Points farther out than this box (Shanghai plus about 30 km) are refused as "far outside Shanghai".
SHANGHAI_REGION = (120.55, 30.38, 122.55, 32.17)
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off", "")
#: Dates and times (``at``, ``open_at``) are accepted in these years only: opening hours and holidays mean
#: nothing far away, and converting an extreme value such as 9999-12-31T23:59:59-14:00 to Shanghai time overflows.
MIN_YEAR, MAX_YEAR = 2000, 2100
#: What ``crs`` and ``bbox-crs`` of the OGC API accept, exactly as written (its OpenAPI document lists these).
OGC_CRS_VALUES = (*crs.DATUMS, *crs.CRS84_URIS[:3])
#: Plain decimal numbers as text (ASCII digits only: float() would also take "1_000", "nan" or "١٢").
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: Integers longer than this are refused before conversion (they are out of every range anyway).
MAX_INTEGER_DIGITS = 30


def text(args: Mapping[str, str], name: str, default: str | None = None,
         max_length: int = MAX_PARAM_LENGTH) -> str | None:
    """A parameter as stripped text, refusing absurd lengths."""
    value = args.get(name)
    if value is None:
        return default
    value = str(value)
    if len(value) > max_length:
        raise InvalidQuery(f"{name} is {len(value)} characters long; at most {max_length} are accepted", name)
    return value.strip()


def number(value, name: str) -> float:
    """A finite float from a string (plain decimal notation, e.g. 121.47 or 1e3) or a JSON number."""
    if isinstance(value, bool):
        raise InvalidQuery(f"{name} must be a number, not {value!r}", name)
    if isinstance(value, str):
        value = value.strip()
        if _NUMBER.fullmatch(value) is None:
            low = value.lower().lstrip("+-")
            what = "a finite number" if low in ("nan", "inf", "infinity") else "a number"
            raise InvalidQuery(f"{name} must be {what}, got {value[:50]!r}", name)
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidQuery(f"{name} must be a number, got {str(value)[:50]!r}", name) from None
    if not math.isfinite(out):
        raise InvalidQuery(f"{name} must be a finite number, got {str(value)[:50]!r}", name)
    return out


def integer(value, name: str, minimum: int, maximum: int | None = None, clamp: bool = False) -> int:
    """An integer within [minimum, maximum] (ASCII digits, optional sign); above maximum clamped or refused."""
    if isinstance(value, bool):
        raise InvalidQuery(f"{name} must be an integer, not {value!r}", name)
    shown = str(value).strip()[:50]
    if isinstance(value, numbers.Integral):   # also numpy integers
        out = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        text_value = value.strip()
        # int() of thousands of digits is slow (and refused past 4300): such values are beyond every range
        if len(text_value.lstrip("+-").lstrip("0")) > MAX_INTEGER_DIGITS:
            out = -(10 ** MAX_INTEGER_DIGITS) if text_value.startswith("-") else 10 ** MAX_INTEGER_DIGITS
        else:
            out = int(text_value)
    else:
        raise InvalidQuery(f"{name} must be an integer, got {shown!r}", name)
    if out < minimum:
        raise InvalidQuery(f"{name} must be at least {minimum}, got {shown}", name)
    if maximum is not None and out > maximum:
        if clamp:
            return maximum
        raise InvalidQuery(f"{name} must be at most {maximum}, got {shown}", name)
    return out


def boolean(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    key = str(value).strip().lower()
    if key in TRUE_WORDS:
        return True
    if key in FALSE_WORDS:
        return False
    raise InvalidQuery(f"{name} must be true or false, got {str(value)[:50]!r}", name)


def datum(value: str | None, name: str = "crs") -> str:
    """wgs84 (default), gcj02 or bd09, also accepting the CRS84 URI."""
    if value is None or value == "":
        return "wgs84"
    try:
        return crs.normalise_datum(value)
    except ValueError as exc:
        raise InvalidQuery(str(exc), name) from None


def ogc_datum(value: str | None, name: str = "crs") -> str:
    """``crs`` / ``bbox-crs`` of the OGC API: absent (wgs84) or exactly one of OGC_CRS_VALUES, as its OpenAPI
    document declares (no other spelling, no empty value)."""
    if value is None:
        return "wgs84"
    if value not in OGC_CRS_VALUES:
        raise InvalidQuery(f"unknown coordinate system {value[:60]!r} for {name}; use one of "
                           f"{', '.join(OGC_CRS_VALUES)}", name)
    return crs.normalise_datum(value)


def point(lon_value, lat_value, in_datum: str, lon_name: str = "lon", lat_name: str = "lat",
          region=SHANGHAI_REGION) -> tuple[float, float]:
    """A query point as WGS84 (lon, lat), checked for range, swapped axes and distance from Shanghai."""
    if lon_value is None or lon_value == "":
        raise InvalidQuery(f"{lon_name} is required (longitude in degrees, e.g. 121.47)", lon_name)
    if lat_value is None or lat_value == "":
        raise InvalidQuery(f"{lat_name} is required (latitude in degrees, e.g. 31.23)", lat_name)
    lon = number(lon_value, lon_name)
    lat = number(lat_value, lat_name)
    minx, miny, maxx, maxy = region
    swapped_inside = minx <= lat <= maxx and miny <= lon <= maxy
    hint = "; did you swap lon and lat?" if swapped_inside else ""
    if not -90.0 <= lat <= 90.0:
        raise InvalidQuery(f"{lat_name}={lat:g} is outside the latitude range [-90, 90]{hint}", lat_name)
    if not -180.0 <= lon <= 180.0:
        raise InvalidQuery(f"{lon_name}={lon:g} is outside the longitude range [-180, 180]{hint}", lon_name)
    wlon, wlat = (float(v) for v in crs.to_wgs84(lon, lat, in_datum))
    if not (minx <= wlon <= maxx and miny <= wlat <= maxy):
        raise InvalidQuery(
            f"the point ({lon:g}, {lat:g}) is far outside Shanghai (this service covers lon {minx}..{maxx}, "
            f"lat {miny}..{maxy}){hint}", lon_name if not hint else f"{lon_name},{lat_name}")
    return wlon, wlat


def service_list(value: str | None, vocab, name: str = "services", strict: bool = False) -> tuple[str, ...]:
    """Comma-separated services (ids, Chinese or English labels) as vocabulary ids. ``strict`` (the OGC API, whose
    document declares a list of ids): an empty value or an empty entry is refused instead of skipped."""
    if value is None or (not value and not strict):
        return ()
    terms = value.split(",")
    if strict and len(terms) > len(vocab.ids):
        raise InvalidQuery(f"{name} lists {len(terms)} services; at most {len(vocab.ids)} (each service once is "
                           "enough)", name)
    out = []
    for term in terms:
        if not term.strip():
            if strict:
                raise InvalidQuery(f"{name} has an empty entry; give comma-separated service ids such as "
                                   f"{','.join(vocab.ids[:2])}, or leave {name} out", name)
            continue
        sid = vocab.resolve(term)
        if sid is None:
            raise InvalidQuery(f"unknown service {term.strip()[:50]!r}; known services: {', '.join(vocab.ids)}", name)
        if sid not in out:
            out.append(sid)
    return tuple(out)


def moment(value: str | None, name: str = "at") -> datetime:
    """An ISO 8601 date-time (naive = Shanghai local time), or now; returned as Asia/Shanghai.

    The one parser of every date/time parameter (``at``, ``open_at``, in query strings, JSON bodies and the CLI):
    anything unparseable or outside the years MIN_YEAR..MAX_YEAR is an InvalidQuery naming the parameter."""
    if value is None or value == "":
        return as_shanghai(None)
    example = "2026-11-25T12:30:00+08:00"
    if not isinstance(value, str):
        raise InvalidQuery(f"{name} must be an ISO 8601 date-time such as {example}, got {str(value)[:50]!r}", name)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise InvalidQuery(f"{name} must be an ISO 8601 date-time such as {example}, "
                           f"got {value[:50]!r}", name) from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise InvalidQuery(f"{name} must be a date-time in the years {MIN_YEAR} to {MAX_YEAR}, got {value[:50]!r}",
                           name)
    try:
        return as_shanghai(parsed)
    except (ValueError, OverflowError):  # not reachable inside the year range; never a 500
        raise InvalidQuery(f"{name}={value[:50]!r} cannot be expressed in Shanghai time", name) from None


def bbox(value: str | None, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """minLon,minLat,maxLon,maxLat (a 6-number box with heights is accepted, heights ignored)."""
    if value is None:
        return None
    if value == "":
        raise InvalidQuery(f"{name} is empty; give 4 numbers minLon,minLat,maxLon,maxLat or leave {name} out", name)
    parts = value.split(",")
    if len(parts) not in (4, 6):
        raise InvalidQuery(f"{name} must be 4 numbers minLon,minLat,maxLon,maxLat; got {len(parts)} values", name)
    nums = [number(p, name) for p in parts]
    minx, miny, maxx, maxy = (nums[0], nums[1], nums[3], nums[4]) if len(nums) == 6 else nums
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        hint = "; did you swap lon and lat?" if (abs(miny) > 90 or abs(maxy) > 90) else ""
        raise InvalidQuery(f"{name} is outside lon [-180, 180] / lat [-90, 90]{hint}", name)
    if miny > maxy:
        raise InvalidQuery(f"{name} is inverted: minimum latitude {miny:g} is above maximum {maxy:g}", name)
    if minx > maxx:
        raise InvalidQuery(f"{name} is inverted: minimum longitude {minx:g} is east of maximum {maxx:g} "
                           "(boxes across the antimeridian are not supported)", name)
    return minx, miny, maxx, maxy


@dataclass(frozen=True)
class NearestQuery:
    """A validated nearest-service question; lon/lat are WGS84."""

    layer: str
    lon: float
    lat: float
    k: int = 5
    max_distance_m: float | None = None
    services: tuple[str, ...] = ()
    open_now: bool = False
    at: datetime | None = None
    datum: str = "wgs84"
