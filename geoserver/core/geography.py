"""Approximate, hand-placed geography used by models (not survey data).

* ``TOWN_CENTRES``: WGS84 positions of district seats, new towns and sub-centres of the suburban districts, with a
  relative weight (3 = district seat, 2 = large town, 1 = town). Placed by hand from general knowledge of Shanghai,
  good to about 1-2 km; used to spread the census *urban* population of a district (demand model) and to place
  sample facilities. Central districts have none: they are urban throughout.
* ``WATER``: rough outlines of the two largest lakes inside district polygons (Dianshan Lake, Dishui Lake), so
  neither population nor sample facilities are put in them.
"""

from __future__ import annotations

from shapely.geometry import Point, Polygon

TOWN_CENTRES: dict[str, list[tuple[float, float, int]]] = {
    "310112": [(121.385, 31.110, 3), (121.350, 31.160, 2), (121.405, 31.050, 2), (121.430, 31.120, 2),
               (121.500, 31.070, 1), (121.300, 31.200, 1)],
    "310113": [(121.420, 31.300, 3), (121.380, 31.350, 2), (121.480, 31.385, 2), (121.350, 31.415, 1),
               (121.430, 31.370, 1)],
    "310114": [(121.250, 31.380, 3), (121.160, 31.300, 2), (121.310, 31.300, 2), (121.320, 31.250, 1),
               (121.280, 31.340, 1)],
    "310115": [(121.510, 31.235, 3), (121.600, 31.210, 3), (121.550, 31.210, 3), (121.600, 31.260, 2),
               (121.570, 31.350, 1), (121.700, 31.190, 2), (121.570, 31.110, 2), (121.760, 31.050, 2),
               (121.920, 30.900, 1), (121.510, 31.150, 2), (121.650, 31.220, 1)],
    "310116": [(121.330, 30.725, 3), (121.160, 30.900, 1), (121.320, 30.880, 1), (121.020, 30.890, 1)],
    "310117": [(121.230, 31.030, 3), (121.320, 31.130, 2), (121.260, 31.110, 1), (121.210, 31.050, 1),
               (121.310, 31.070, 1)],
    "310118": [(121.120, 31.150, 3), (121.280, 31.180, 2), (121.050, 31.110, 1), (121.220, 31.230, 1)],
    "310120": [(121.460, 30.920, 3), (121.400, 30.890, 1), (121.640, 30.920, 1), (121.450, 30.980, 1)],
    "310151": [(121.400, 31.625, 3), (121.600, 31.520, 1), (121.720, 31.380, 1), (121.540, 31.570, 1),
               (121.850, 31.340, 1)],
}

WATER = [
    Polygon([(120.93, 31.09), (120.96, 31.07), (121.00, 31.09), (121.01, 31.13), (120.99, 31.17),
             (120.95, 31.17), (120.92, 31.14)]),  # Dianshan Lake
    Point(121.935, 30.905).buffer(0.013),  # Dishui Lake
]
