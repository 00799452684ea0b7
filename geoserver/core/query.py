"""Framework-neutral parsing and validation of query parameters.

Every function takes plain strings (a mapping of query parameters or JSON values) and either returns typed
values or raises ``InvalidQuery`` naming the parameter and the problem, so the web layer, the CLI and
notebooks share one set of rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from . import crs
from .errors import InvalidQuery
from .hours import as_shanghai

MAX_PARAM_LENGTH = 2000
MAX_K = 500
MAX_DISTANCE_M = 200_000.0
ITEMS_DEFAULT_LIMIT = 100
ITEMS_MAX_LIMIT = 10_000
MAX_OFFSET = 10_000_000
#: Points farther out than this box (Shanghai plus about 30 km) are refused as "far outside Shanghai".
SHANGHAI_REGION = (120.55, 30.38, 122.55, 32.17)
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off", "")


def text(args: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """A parameter as stripped text, refusing absurd lengths."""
    value = args.get(name)
    if value is None:
        return default
    value = str(value)
    if len(value) > MAX_PARAM_LENGTH:
        raise InvalidQuery(f"{name} is {len(value)} characters long; at most {MAX_PARAM_LENGTH} are accepted", name)
    return value.strip()


def number(value, name: str) -> float:
    """A finite float from a string or JSON number."""
    if isinstance(value, bool):
        raise InvalidQuery(f"{name} must be a number, not {value!r}", name)
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidQuery(f"{name} must be a number, got {str(value)[:50]!r}", name) from None
    if not math.isfinite(out):
        raise InvalidQuery(f"{name} must be a finite number, got {str(value)[:50]!r}", name)
    return out


def integer(value, name: str, minimum: int, maximum: int | None = None, clamp: bool = False) -> int:
    """An integer within [minimum, maximum]; above maximum either clamped or refused."""
    if isinstance(value, bool):
        raise InvalidQuery(f"{name} must be an integer, not {value!r}", name)
    try:
        out = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise InvalidQuery(f"{name} must be an integer, got {str(value)[:50]!r}", name) from None
    if out < minimum:
        raise InvalidQuery(f"{name} must be at least {minimum}, got {out}", name)
    if maximum is not None and out > maximum:
        if clamp:
            return maximum
        raise InvalidQuery(f"{name} must be at most {maximum}, got {out}", name)
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


def service_list(value: str | None, vocab, name: str = "services") -> tuple[str, ...]:
    """Comma-separated services (ids, Chinese or English labels) as vocabulary ids."""
    if not value:
        return ()
    out = []
    for term in value.split(","):
        if not term.strip():
            continue
        sid = vocab.resolve(term)
        if sid is None:
            raise InvalidQuery(f"unknown service {term.strip()[:50]!r}; known services: {', '.join(vocab.ids)}", name)
        if sid not in out:
            out.append(sid)
    return tuple(out)


def moment(value: str | None, name: str = "at") -> datetime:
    """An ISO 8601 date-time (naive = Shanghai local time), or now; returned as Asia/Shanghai."""
    if not value:
        return as_shanghai(None)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQuery(f"{name} must be an ISO 8601 date-time such as 2026-11-25T12:30:00+08:00, "
                           f"got {value[:50]!r}", name) from None
    return as_shanghai(parsed)


def bbox(value: str | None, name: str = "bbox") -> tuple[float, float, float, float] | None:
    """minLon,minLat,maxLon,maxLat (a 6-number box with heights is accepted, heights ignored)."""
    if value is None or value == "":
        return None
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


def nearest_options(args: Mapping, vocab, default_layer: str = "stations") -> dict:
    """The options shared by single and batch nearest queries (everything but the point)."""
    k = integer(text(args, "k", "5") if not isinstance(args.get("k"), int) else args["k"], "k", 1, MAX_K)
    raw_max = args.get("max_distance_m")
    max_d = None
    if raw_max not in (None, ""):
        max_d = number(raw_max, "max_distance_m")
        if not 0 < max_d <= MAX_DISTANCE_M:
            raise InvalidQuery(f"max_distance_m must be greater than 0 and at most {MAX_DISTANCE_M:g}", "max_distance_m")
    services = args.get("services")
    if isinstance(services, list):
        services = ",".join(str(s) for s in services)
    open_now = args.get("open_now")
    return dict(layer=text(args, "layer", default_layer) or default_layer, k=k, max_distance_m=max_d,
                services=service_list(text({"services": services}, "services"), vocab),
                open_now=False if open_now is None else boolean(open_now, "open_now"),
                at=moment(text(args, "at")), datum=datum(text(args, "crs")))
