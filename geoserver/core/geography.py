"""Approximate, hand-placed geography used by models (not survey data).

* ``TOWN_CENTRES``: WGS84 positions of district seats, new towns and sub-centres of the suburban districts, with a
  relative weight (3 = district seat, 2 = large town, 1 = town). Placed by hand from general knowledge of Shanghai,
  good to about 1-2 km; used to spread the census *urban* population of a district (demand model) and to place
  sample facilities. Central districts have none: they are urban throughout.
* ``WATER``: rough outlines of the two largest lakes inside district polygons (Dianshan Lake, Dishui Lake), so
  neither population nor sample facilities are put in them.

What ``WATER`` does not hold, and why. The district polygons also contain the Huangpu (a few hundred metres wide),
Suzhou Creek (under 100 m), the tidal flats along Pudong's and Chongming's coasts and the shoals of the Yangtze
estuary, and the grid demand model puts people on them as on land. Outlines drawn by hand to the 1-2 km of the
positions above would be wider than the rivers and would cut land as often as water, and no coastline is bundled
that could separate the flats from land; so none are drawn. What the polygons themselves show: parts that are
islands known to be uninhabited, namely the two parts of Pudong's polygon in the estuary (the Jiuduansha shoals,
60.6 km2, at 121.88-122.01 E, 31.16-31.25 N), Jinshan's three islets and Sheshan island (Chongming's smallest part,
at 122.24 E, 31.42 N). On the 200 m grid they hold 20,352, 204 and 26 people. Leaving them out would move those
20,582 people to land in the same districts and change the verified coverage figures (stations at 1,000 m: 84.54 %
to 84.57 %; the 200 m grid: 198,698 cells to 197,172), so the model keeps them and says so (demand.MODEL_NOTE).
A population raster used as demand places people by its own data, and none of this applies to it.
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
