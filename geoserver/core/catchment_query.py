"""Parsing of a catchment (radius, or minutes with a mode) from plain strings or JSON values; the other coverage and
siting parameters are declared in geoserver/planning/."""

from __future__ import annotations

from typing import Mapping

from . import query as q
from .coverage import Catchment
from .errors import InvalidQuery

def _optional_number(args: Mapping, name: str) -> float | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return q.number(q.text(args, name) if isinstance(value, str) else value, name)


def parse_catchment(args: Mapping, default_radius_m: float | None = None, network=None,
                    network_name: str | None = None) -> Catchment:
    """radius_m, or minutes with mode (walk, ebike, car), plus optional speed_kmh, detour, detour_short.

    With a road ``network`` the mode says which roads may be used, so it may come with radius_m too.
    """
    radius = _optional_number(args, "radius_m")
    minutes = _optional_number(args, "minutes")
    mode = q.text(args, "mode")  # text() also turns a JSON number or list into a string (then refused)
    if radius is None and minutes is None:
        if default_radius_m is None:
            raise InvalidQuery("give radius_m (metres) or minutes with mode=walk|ebike|car", "radius_m")
        radius = default_radius_m
    if minutes is None and mode and network is None:
        raise InvalidQuery("mode needs minutes (e.g. minutes=10&mode=ebike)", "mode")
    extra = {}
    for name, key in (("detour", "detour_long"), ("detour_short", "detour_short")):
        value = _optional_number(args, name)
        if value is not None:
            extra[key] = value
    if "detour_long" in extra and "detour_short" not in extra:
        extra["detour_short"] = max(extra["detour_long"], Catchment.detour_short)
    return Catchment(radius_m=radius, minutes=minutes, mode=mode or None, speed_kmh=_optional_number(args, "speed_kmh"),
                     network=network, network_name=network_name, **extra)
