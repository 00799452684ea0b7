"""The one coordinate policy of the project.

* Storage and GeoJSON output: WGS84 longitude/latitude (EPSG:4326 axis order lon, lat as in RFC 7946).
* Metric work (indexes, buffers, grids, areas of cells): ``METRIC_CRS``, a transverse Mercator on the
  WGS84 ellipsoid centred on Shanghai.  Its scale error is below 6e-5 anywhere in the city, so distances
  measured in it differ from geodesic ones by less than 6 m in 100 km (and by at most 0.05 % anywhere the
  service answers queries).
* Distances reported to users: geodesic distances on the WGS84 ellipsoid (``geodesic_distance_m``).
* GCJ-02 (Amap, Tencent) and BD-09 (Baidu) exist only at the edges: input parameters, imports and output.
  They are not pyproj CRSs but published obfuscation formulas applied to WGS84; the inverses here are
  iterative and accurate to far better than 1 mm.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pyproj import CRS, Geod, Transformer

Datum = Literal["wgs84", "gcj02", "bd09"]
DATUMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

#: URIs that clients may use for WGS84 lon/lat (OGC API - Features).
CRS84_URIS = (
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "crs84",
    "epsg:4326",
)

WGS84 = CRS.from_epsg(4326)
#: Shanghai transverse Mercator (WGS84 ellipsoid, central meridian 121.47 E, scale 1).
METRIC_CRS = CRS.from_proj4(
    "+proj=tmerc +lat_0=31.2 +lon_0=121.47 +k=1 +x_0=500000 +y_0=0 +ellps=WGS84 +units=m +no_defs"
)
#: Upper bound of (scale - 1) of METRIC_CRS within 200 km of its central meridian (the scale there is
#: 1 + x^2 / 2R^2 <= 1.0005), which covers Shanghai and the region around it that queries may come from.
METRIC_SCALE_ERROR = 5e-4

GEOD = Geod(ellps="WGS84")

_TO_METRIC = Transformer.from_crs(WGS84, METRIC_CRS, always_xy=True)
_FROM_METRIC = Transformer.from_crs(METRIC_CRS, WGS84, always_xy=True)

# Constants of the GCJ-02 formula: the Krasovsky 1940 ellipsoid.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_X_PI = math.pi * 3000.0 / 180.0


def normalise_datum(value: str) -> Datum:
    """Map a user-supplied datum name or CRS URI to one of ``DATUMS``; raise ValueError otherwise."""
    key = value.strip().lower()
    if key in ("wgs84", "wgs-84", "4326") or key in [u.lower() for u in CRS84_URIS]:
        return "wgs84"
    if key in ("gcj02", "gcj-02", "gcj"):
        return "gcj02"
    if key in ("bd09", "bd-09", "bd09ll", "baidu"):
        return "bd09"
    raise ValueError(f"unknown coordinate system {value!r}; use one of wgs84, gcj02, bd09 or the CRS84 URI")


def to_metric(lon, lat):
    """WGS84 lon/lat (scalars or arrays) to METRIC_CRS x/y in metres."""
    return _TO_METRIC.transform(lon, lat)


# -- METRIC_CRS for one point, in Python --------------------------------------------------------------------------
# pyproj releases the GIL around every transform; for one point in a busy server that is a handover to one of the
# other request threads and back (context switches costing ~30 us of CPU where the transform takes 4). The rider's
# query point is therefore projected here: the transverse Mercator by Krueger's series to order n^6 (Karney 2011,
# "Transverse Mercator with an accuracy of a few nanometers", eqs. 7-11, 35), the method PROJ's tmerc uses by
# default (Poder/Engsager). It agrees with pyproj to far below a micrometre within hundreds of km of 121.47 E
# (tests/test_crs.py checks it on random points); arrays still go through pyproj.
_A, _F = 6378137.0, 1 / 298.257223563
_N = _F / (2 - _F)
_E = math.sqrt(_F * (2 - _F))
_RECTIFYING = _A / (1 + _N) * (1 + _N ** 2 / 4 + _N ** 4 / 64 + _N ** 6 / 256)
_ALPHA = (
    _N / 2 - 2 * _N ** 2 / 3 + 5 * _N ** 3 / 16 + 41 * _N ** 4 / 180 - 127 * _N ** 5 / 288 + 7891 * _N ** 6 / 37800,
    13 * _N ** 2 / 48 - 3 * _N ** 3 / 5 + 557 * _N ** 4 / 1440 + 281 * _N ** 5 / 630 - 1983433 * _N ** 6 / 1935360,
    61 * _N ** 3 / 240 - 103 * _N ** 4 / 140 + 15061 * _N ** 5 / 26880 + 167603 * _N ** 6 / 181440,
    49561 * _N ** 4 / 161280 - 179 * _N ** 5 / 168 + 6601661 * _N ** 6 / 7257600,
    34729 * _N ** 5 / 80640 - 3418889 * _N ** 6 / 1995840,
    212378941 * _N ** 6 / 319334400,
)
_LON0, _LAT0, _X0 = 121.47, 31.2, 500000.0


def _tm_xi_eta(lon: float, lat: float) -> tuple[float, float]:
    phi, lam = math.radians(lat), math.radians(lon - _LON0)
    sin_phi = math.sin(phi)
    tau_prime = math.sinh(math.atanh(sin_phi) - _E * math.atanh(_E * sin_phi))   # tan of the conformal latitude
    xi_p = math.atan2(tau_prime, math.cos(lam))
    eta_p = math.asinh(math.sin(lam) / math.hypot(tau_prime, math.cos(lam)))
    xi, eta = xi_p, eta_p
    for j, alpha in enumerate(_ALPHA, start=1):
        xi += alpha * math.sin(2 * j * xi_p) * math.cosh(2 * j * eta_p)
        eta += alpha * math.cos(2 * j * xi_p) * math.sinh(2 * j * eta_p)
    return xi, eta


_Y_ORIGIN = _RECTIFYING * _tm_xi_eta(_LON0, _LAT0)[0]


def to_metric_point(lon: float, lat: float) -> tuple[float, float]:
    """One WGS84 point to METRIC_CRS x/y in metres, the same numbers as ``to_metric`` (see above), without
    releasing the GIL."""
    xi, eta = _tm_xi_eta(float(lon), float(lat))
    return _X0 + _RECTIFYING * eta, _RECTIFYING * xi - _Y_ORIGIN


def from_metric(x, y):
    """METRIC_CRS x/y in metres to WGS84 lon/lat."""
    return _FROM_METRIC.transform(x, y)


def geodesic_distance_m(lon1, lat1, lon2, lat2):
    """Geodesic (WGS84 ellipsoid) distance in metres; arrays broadcast like numpy."""
    lon1, lat1, lon2, lat2 = np.broadcast_arrays(
        np.asarray(lon1, float), np.asarray(lat1, float), np.asarray(lon2, float), np.asarray(lat2, float)
    )
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    return dist


def outside_china(lon, lat):
    """True where the point is outside the box in which GCJ-02 applies an offset (the formula's own rule)."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj_offsets(lon, lat):
    """The GCJ-02 shift (dlon, dlat) in degrees at WGS84 lon/lat."""
    x = lon - 105.0
    y = lat - 35.0
    common = (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + common
    dlat += (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + common
    dlon += (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * math.pi
    magic = 1.0 - _GCJ_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrtmagic * np.cos(radlat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    """WGS84 to GCJ-02 (the published forward formula); points outside China are returned unchanged."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    dlon, dlat = _gcj_offsets(lon, lat)
    out = outside_china(lon, lat)
    return np.where(out, lon, lon + dlon), np.where(out, lat, lat + dlat)


def gcj02_to_bd09(lon, lat):
    """GCJ-02 to BD-09 (Baidu's published forward formula)."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _invert(forward, lon, lat, tol_deg=1e-12, max_iter=30):
    """Invert a near-identity forward map by fixed-point iteration: x <- x - (f(x) - target)."""
    tlon = np.asarray(lon, float)
    tlat = np.asarray(lat, float)
    flon, flat = forward(tlon, tlat)
    xlon = tlon - (flon - tlon)
    xlat = tlat - (flat - tlat)
    for _ in range(max_iter):
        flon, flat = forward(xlon, xlat)
        elon = flon - tlon
        elat = flat - tlat
        xlon = xlon - elon
        xlat = xlat - elat
        if np.all(np.abs(elon) < tol_deg) and np.all(np.abs(elat) < tol_deg):
            break
    return xlon, xlat


def gcj02_to_wgs84(lon, lat):
    """GCJ-02 to WGS84: iterative inverse of ``wgs84_to_gcj02`` (residual below 1e-12 degrees)."""
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_gcj02(lon, lat):
    """BD-09 to GCJ-02: iterative inverse of ``gcj02_to_bd09``."""
    return _invert(gcj02_to_bd09, lon, lat)


def wgs84_to_bd09(lon, lat):
    """WGS84 to BD-09 (via GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat):
    """BD-09 to WGS84: iterative inverse of the composed forward map."""
    return _invert(wgs84_to_bd09, lon, lat)


_FROM_WGS84 = {"wgs84": lambda lon, lat: (np.asarray(lon, float), np.asarray(lat, float)),
               "gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}
_TO_WGS84 = {"wgs84": lambda lon, lat: (np.asarray(lon, float), np.asarray(lat, float)),
             "gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}


def from_wgs84(lon, lat, datum: str):
    """Convert WGS84 lon/lat to ``datum`` (one of DATUMS)."""
    return _FROM_WGS84[datum](lon, lat)


def to_wgs84(lon, lat, datum: str):
    """Convert lon/lat given in ``datum`` (one of DATUMS) to WGS84."""
    return _TO_WGS84[datum](lon, lat)


def transform_geometry(geom, datum: str):
    """Return a shapely geometry with every vertex converted from WGS84 to ``datum``."""
    import shapely

    if datum == "wgs84":
        return geom
    return shapely.transform(geom, lambda xy: np.column_stack(from_wgs84(xy[:, 0], xy[:, 1], datum)))


def geometry_to_wgs84(geom, datum: str):
    """Return a shapely geometry with every vertex converted from ``datum`` to WGS84."""
    import shapely

    if datum == "wgs84":
        return geom
    return shapely.transform(geom, lambda xy: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], datum)))
