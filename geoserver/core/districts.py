"""The districts layer as users name it and as points fall in it: one place for both.

``resolve_district`` accepts every way people write a district (code 310101, 黄浦区, 黄浦, Huangpu, "Huangpu District",
上海市黄浦区, and names merged away: 卢湾, 闸北, 南汇, 崇明县); ``district_positions`` says which district polygon each
WGS84 point lies in. Used by the items filter, planning areas, demand layers and the importer.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import shapely

# Districts merged away, as older forms still name them: 南汇 (into 浦东, 2009), 卢湾 (into 黄浦, 2011),
# 闸北 (into 静安, 2015); 崇明 was a county (崇明县) until 2016.
FORMER_DISTRICTS = {"南汇": "310115", "卢湾": "310101", "闸北": "310106", "崇明": "310151"}


def _key(text) -> str:
    return "".join(unicodedata.normalize("NFKC", str(text)).lower().split())


def name_by_code(districts_layer) -> dict[str, str]:
    """District code -> Chinese name (310101 -> 黄浦区): the one place outputs look names up."""
    return {str(code): str(p.get("name") or "") for code, p in zip(districts_layer.ids, districts_layer.properties)}


def district_names(districts_layer) -> dict[str, str]:
    """Every accepted spelling (normalised) -> district code."""
    out: dict[str, str] = {}
    for props in districts_layer.properties:
        code, name, name_en = str(props["id"]), str(props.get("name") or ""), str(props.get("name_en") or "")
        for spelling in (code, name, name.removesuffix("区"), name.replace("新区", ""), name_en,
                         f"{name_en} district", f"上海市{name}"):
            if spelling:
                out[_key(spelling)] = code
    codes = set(out.values())
    for old, code in FORMER_DISTRICTS.items():
        if code in codes:
            for spelling in (old, old + "区", old + "县", f"上海市{old}区"):
                out.setdefault(_key(spelling), code)
    return out


def resolve_district(districts_layer, text, names: dict[str, str] | None = None) -> str | None:
    """The district code ``text`` names, or None (``names``: a district_names() result to reuse)."""
    return (names if names is not None else district_names(districts_layer)).get(_key(text))


def district_positions(districts_layer, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Position (in the districts layer) of the district each WGS84 point lies in; -1 outside every district."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    out = np.full(len(lon), -1, dtype=np.int64)
    todo = np.isfinite(lon) & np.isfinite(lat)
    for pos in range(districts_layer.count):
        if not todo.any():
            break
        poly = districts_layer.index.geometries[pos]
        shapely.prepare(poly)
        hit = np.flatnonzero(todo)[shapely.contains_xy(poly, lon[todo], lat[todo])]
        out[hit] = pos
        todo[hit] = False
    return out


def assign_districts(districts_layer, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """District code of each point ('' outside every district)."""
    pos = district_positions(districts_layer, lon, lat)
    codes = np.array([str(i) for i in districts_layer.ids] + [""], dtype=object)
    return codes[pos]  # position -1 picks the trailing ''
