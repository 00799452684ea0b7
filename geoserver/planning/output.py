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
    """One gap (an area one new site could serve): rank, ``newly_coverable`` (people a site at ``site_lon``/
    ``site_lat`` would newly cover, the ranking), ``uncovered`` (people in the area), cells, area, ``districts``
    (Chinese names) and ``district_codes`` (6-digit codes)."""
    site = gap.site or (None, None)
    return {"type": "Feature", "id": f"gap-{rank}", "geometry": rfc7946_geometry(gap.geometry),
            "properties": {"rank": rank, "newly_coverable": round(float(gap.coverable), 1),
                           "site_lon": site[0], "site_lat": site[1],
                           "uncovered": round(float(gap.uncovered), 1), "cells": int(gap.cells),
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
