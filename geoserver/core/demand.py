"""Demand: where the people (or orders, or workers) are that facilities should serve.

A ``Demand`` is a set of weighted points in METRIC_CRS with the district each lies in. Two sources:

* ``grid_demand``: the default model. A regular grid over Shanghai's land (square cells of ``cell_m``, 200 m by
  default; a cell belongs to the district containing its centre, lakes excluded). Each district's 2020 census
  population is spread over its cells: the *rural* population (census total minus urban) evenly, the *urban*
  population in proportion to Gaussian kernels (sigma 3 km) around the district's town centres
  (``geography.TOWN_CENTRES``). Central districts are 100 % urban in the census and have no listed centres, so
  their population is spread evenly. The model knows nothing of individual buildings, parks, industrial land,
  rivers other than the district boundaries, or of where people work in the day: it is a planning approximation
  at district resolution, not a population map.
* ``load_demand``: any point or polygon layer (GeoPackage, GeoJSON, Shapefile) or a CSV of points (lon/lat columns)
  with a weight column, e.g. a population grid or rider order counts; polygons count at their representative
  point.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from . import crs
from .districts import assign_districts
from .errors import InvalidQuery
from .geography import TOWN_CENTRES, WATER

URBAN_SIGMA_M = 3000.0
WEIGHT_COLUMNS = ("weight", "population", "pop", "orders", "count", "value")
MIN_CELL_M, MAX_CELL_M = 50.0, 5000.0
#: The most demand cells one grid may have (the 200 m grid has 198,698; each cell costs its share of every
#: coverage, gap and siting computation): a finer grid is refused before it is built.
MAX_DEMAND_CELLS = 400_000

MODEL_NOTE = (
    "Demand model: the 2020 census population of each district spread over a regular grid of its land; the rural "
    "population evenly, the urban population in proportion to Gaussian kernels (sigma 3 km) around approximate town "
    "centres of each suburban district; central districts (100 % urban) evenly. District-level accuracy only: the "
    "model does not know buildings, parks, industrial land, or daytime (work) population."
)


@dataclass(frozen=True)
class Demand:
    """Weighted demand points (METRIC_CRS metres and WGS84), each with its district code."""

    name: str
    x: np.ndarray
    y: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray
    district_code: np.ndarray
    cell_m: float | None
    description: str

    @property
    def size(self) -> int:
        return len(self.weight)

    @property
    def total(self) -> float:
        return float(self.weight.sum())


def _district_table(service):
    """Districts in METRIC_CRS with their land (polygon minus lakes) prepared for point tests."""
    districts = service.layer("districts").gdf.to_crs(crs.METRIC_CRS)
    import geopandas as gpd
    water = gpd.GeoSeries(WATER, crs="EPSG:4326").to_crs(crs.METRIC_CRS).union_all()
    land = districts.geometry.difference(water).values
    shapely.prepare(land)
    return districts, land


def grid_demand(service, cell_m: float = 200.0) -> Demand:
    """The default demand model on a ``cell_m`` grid (see the module docstring)."""
    if not MIN_CELL_M <= cell_m <= MAX_CELL_M:
        raise InvalidQuery(f"cell_m must be between {MIN_CELL_M:g} and {MAX_CELL_M:g} metres", "cell_m")
    districts, land = _district_table(service)
    land_m2 = float(sum(poly.area for poly in land))
    if land_m2 / cell_m ** 2 > MAX_DEMAND_CELLS:
        finest = float(np.ceil(np.sqrt(land_m2 / MAX_DEMAND_CELLS) / 10.0) * 10.0)
        raise InvalidQuery(f"cell_m={cell_m:g} would make about {land_m2 / cell_m ** 2:,.0f} demand cells, more than "
                           f"the {MAX_DEMAND_CELLS:,} this server computes; use cell_m={finest:g} or more", "cell_m")
    xs, ys, ws, codes = [], [], [], []
    for (_, d), poly in zip(districts.iterrows(), land):
        minx, miny, maxx, maxy = poly.bounds
        gx = np.arange(np.floor(minx / cell_m), np.ceil(maxx / cell_m)) * cell_m + cell_m / 2
        gy = np.arange(np.floor(miny / cell_m), np.ceil(maxy / cell_m)) * cell_m + cell_m / 2
        X, Y = (a.ravel() for a in np.meshgrid(gx, gy))
        inside = shapely.contains_xy(poly, X, Y)
        X, Y = X[inside], Y[inside]
        if not len(X):
            continue
        ws.append(_district_weights(d, X, Y))
        xs.append(X)
        ys.append(Y)
        codes.append(np.full(len(X), d["id"], dtype=object))
    x, y = np.concatenate(xs), np.concatenate(ys)
    lon, lat = crs.from_metric(x, y)
    return Demand(name=f"grid{int(cell_m)}", x=x, y=y, lon=np.asarray(lon), lat=np.asarray(lat),
                  weight=np.concatenate(ws), district_code=np.concatenate(codes), cell_m=float(cell_m),
                  description=f"census 2020 population on a {cell_m:g} m grid. " + MODEL_NOTE)


def _district_weights(d, X: np.ndarray, Y: np.ndarray, sigma_m: float | None = URBAN_SIGMA_M) -> np.ndarray:
    """Census population of one district spread over its cells: rural evenly, urban around town centres (Gaussian
    kernels of ``sigma_m``; None: everyone evenly)."""
    population = float(d["population_2020"])
    if sigma_m is None:
        return np.full(len(X), population / len(X))
    urban = float(d["urban_population_2020"])
    centres = TOWN_CENTRES.get(d["id"], [])
    rural_share = np.full(len(X), (population - urban) / len(X))
    if not centres or urban >= population:
        return np.full(len(X), population / len(X))
    kernel = np.zeros(len(X))
    for lon, lat, w in centres:
        cx, cy = crs.to_metric(lon, lat)
        kernel += w * np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * sigma_m**2))
    if kernel.sum() <= 0:
        return np.full(len(X), population / len(X))
    return rural_share + urban * kernel / kernel.sum()


def load_demand(service, path: str | Path, weight_column: str | None = None, name: str | None = None) -> Demand:
    """A demand layer from a file: points or polygons (at their representative point) with a weight column."""
    import geopandas as gpd
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InvalidQuery(f"demand file {path.name} not found", "demand")
    try:
        if path.suffix.lower() in (".csv", ".txt"):
            frame = pd.read_csv(path, encoding="utf-8-sig")
            lon_col = next((c for c in frame.columns if c.lower() in ("lon", "lng", "longitude", "x", "经度")), None)
            lat_col = next((c for c in frame.columns if c.lower() in ("lat", "latitude", "y", "纬度")), None)
            if lon_col is None or lat_col is None:
                raise InvalidQuery(f"{path.name}: a CSV demand file needs lon and lat columns; found "
                                   f"{', '.join(map(str, frame.columns))}", "demand")
            lon = pd.to_numeric(frame[lon_col], errors="coerce")
            lat = pd.to_numeric(frame[lat_col], errors="coerce")
            bad = np.flatnonzero(lon.isna() | lat.isna())
            if len(bad):
                raise InvalidQuery(f"{path.name}: row {bad[0] + 2} has a missing or non-numeric coordinate", "demand")
            gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
        else:
            gdf = gpd.read_file(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidQuery(f"cannot read demand file {path.name}: {exc}", "demand") from None
    if gdf.crs is None:
        raise InvalidQuery(f"{path.name} has no coordinate reference system", "demand")
    gdf = gdf.to_crs(crs.WGS84)
    column = weight_column or next((c for c in gdf.columns if str(c).lower() in WEIGHT_COLUMNS), None)
    if column is None or column not in gdf.columns:
        raise InvalidQuery(f"{path.name}: no weight column (looked for {weight_column or ', '.join(WEIGHT_COLUMNS)})",
                           "weight_column")
    weight = pd.to_numeric(gdf[column], errors="coerce")
    if weight.isna().any() or (weight < 0).any():
        row = int(np.flatnonzero(weight.isna() | (weight < 0))[0])
        raise InvalidQuery(f"{path.name}: row {row + 2}, column {column}: weights must be numbers >= 0", "demand")
    points = gdf.geometry.representative_point()
    lon, lat = points.x.to_numpy(), points.y.to_numpy()
    x, y = crs.to_metric(lon, lat)
    return Demand(name=name or path.stem, x=np.asarray(x), y=np.asarray(y), lon=lon, lat=lat,
                  weight=weight.to_numpy(float), district_code=assign_districts(service.layer("districts"), lon, lat), cell_m=None,
                  description=f"{path.name}, weight column {column!r}")


#: The demand models a coverage figure is also computed under, to say how much it depends on the model: the urban
#: population around town centres with narrower and wider kernels, and everyone spread evenly over each district.
SENSITIVITY_MODELS = (("sigma 1.5 km", 1500.0), ("sigma 3 km (the model used)", URBAN_SIGMA_M),
                      ("sigma 6 km", 6000.0), ("uniform within each district", None))


def model_weights(service, demand: Demand, sigma_m: float | None) -> np.ndarray:
    """The grid demand's cells weighted by the census model with another kernel width (None: uniform)."""
    districts = service.layer("districts").gdf
    out = np.zeros(demand.size)
    for _, d in districts.iterrows():
        mask = demand.district_code == d["id"]
        if mask.any():
            out[mask] = _district_weights(d, demand.x[mask], demand.y[mask], sigma_m)
    return out
