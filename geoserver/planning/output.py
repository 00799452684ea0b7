"""The GeoJSON of planning answers, written once: gaps (uncovered areas) and proposed sites."""

from __future__ import annotations

import numpy as np
import shapely

from ..core.districts import name_by_code

#: As every GeoJSON answer of this server (core.data.COORD_DECIMALS; not imported here to keep the CLI light).
COORD_DECIMALS = 6


def rfc7946_geometry(geom) -> dict:
    """A WGS84 geometry as RFC 7946 GeoJSON: exterior rings counter-clockwise, 6 decimals."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        geom = shapely.orient_polygons(geom, exterior_cw=False)
    geom = shapely.transform(geom, lambda xy: np.round(xy, COORD_DECIMALS))
    return shapely.geometry.mapping(geom)


def gap_feature(gap, rank: int, names: dict[str, str]) -> dict:
    """One gap: rank, uncovered people, cells, area, ``districts`` (Chinese names, as /api/coverage/gaps always
    gave them) and ``district_codes`` (6-digit codes)."""
    return {"type": "Feature", "id": f"gap-{rank}", "geometry": rfc7946_geometry(gap.geometry),
            "properties": {"rank": rank, "uncovered": round(float(gap.uncovered), 1), "cells": int(gap.cells),
                           "area_km2": round(float(gap.area_km2), 4),
                           "districts": [names.get(c, c) for c in gap.districts],
                           "district_codes": list(gap.districts)}}


def gaps_collection(service, gaps, limit: int | None = None) -> dict:
    """The gaps (ranked, the first ``limit``) as a FeatureCollection."""
    names = name_by_code(service.layer("districts"))
    chosen = gaps if limit is None else gaps[:limit]
    return {"type": "FeatureCollection",
            "features": [gap_feature(gap, rank, names) for rank, gap in enumerate(chosen, start=1)]}


def sites_collection(sites) -> dict:
    """Proposed sites (the rows of ``PlanResult.sites``) as a FeatureCollection of points."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": s["candidate_id"],
         "geometry": {"type": "Point", "coordinates": [s["lon"], s["lat"]]}, "properties": s} for s in sites]}
