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
  Water: only the lakes of ``geography.WATER`` are excluded. The Huangpu, Suzhou Creek, the tidal flats along the
  coasts and the estuary shoals inside the district polygons get people like land (see geography.py for how much).
* ``load_demand``: any point or polygon layer (GeoPackage, GeoJSON, Shapefile) or a CSV of points (lon/lat columns)
  with a weight column, e.g. rider order counts; polygons count at their representative point. A GeoTIFF
  population raster (WorldPop, GHS-POP, ... in any CRS) counts each cell with people at its centre
  (``raster_demand``).
"""

from __future__ import annotations

import math
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
RASTER_SUFFIXES = (".tif", ".tiff")
#: The most raster cells read for one demand layer (the raster's window over Shanghai's bounds, before cells are
#: summed into blocks): a 100 m raster has about 2.4 million there, a 15 m one about 100 million. Finer rasters are
#: refused before anything is read.
MAX_RASTER_READ_CELLS = 100_000_000
#: Raster cells read at a time (strips of rows), so memory stays bounded whatever the raster's size.
RASTER_STRIP_CELLS = 4_000_000

MODEL_NOTE = (
    "Demand model: the 2020 census population of each district spread over a regular grid of its land; the rural "
    "population evenly, the urban population in proportion to Gaussian kernels (sigma 3 km) around approximate town "
    "centres of each suburban district; central districts (100 % urban) evenly. District-level accuracy only: the "
    "model does not know buildings, parks, industrial land, or daytime (work) population. Water inside the district "
    "polygons other than Dianshan and Dishui lakes (the Huangpu, Suzhou Creek, coastal tidal flats, the Jiuduansha "
    "shoals) gets people as if it were land."
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
    """A demand layer from a file: points or polygons (at their representative point) with a weight column, or a
    GeoTIFF population raster (``raster_demand``)."""
    import geopandas as gpd
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise InvalidQuery(f"demand file {path.name} not found", "demand")
    if path.suffix.lower() in RASTER_SUFFIXES:
        if weight_column:
            raise InvalidQuery(f"{path.name} is a population raster: its cell values are the weights; leave out "
                               "weight_column", "weight_column")
        return raster_demand(service, path, name)
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


def raster_demand(service, path: str | Path, name: str | None = None) -> Demand:
    """Band 1 of a GeoTIFF population raster in any CRS as demand: each cell holding people (a value > 0, not
    nodata, not NaN) is a point at its centre weighted by its value. Only the raster's window over Shanghai's
    bounds is read; when that window has more cells than MAX_DEMAND_CELLS, cells are summed in blocks of n x n
    (people conserved, never averaged) counted at the block's centre. Cells (blocks) whose centre lies outside every
    district are dropped and the people in them stated in the description. Negative values are refused: people
    cannot be negative, and an undeclared nodata value (such as -99999) would otherwise pass as data."""
    import rasterio
    from pyproj.exceptions import CRSError
    from rasterio.errors import CRSError as RasterCRSError
    from rasterio.errors import RasterioError

    path = Path(path)
    name = name or path.stem
    if name.startswith("grid"):
        # coverage answers treat demand named grid... as the census model (and compute its sensitivity)
        raise InvalidQuery(f"{path.name}: names starting with 'grid' belong to the census grid model; rename the "
                           "raster", "demand")
    try:
        with rasterio.open(path) as src:
            return _raster_demand(service, src, path.name, name)
    except RasterioError:
        raise InvalidQuery(f"{path.name} cannot be read as a GeoTIFF: the file is damaged or is not a raster",
                           "demand") from None
    except (CRSError, RasterCRSError):
        raise InvalidQuery(f"{path.name}: its coordinate reference system cannot be converted to longitude and "
                           "latitude", "demand") from None


def _raster_demand(service, src, filename: str, name: str) -> Demand:
    from pyproj import CRS, Transformer

    if src.driver != "GTiff":
        raise InvalidQuery(f"{filename} is a {src.driver} file, not a GeoTIFF; save the population raster as a "
                           "GeoTIFF", "demand")
    if src.crs is None:
        raise InvalidQuery(f"{filename} has no coordinate reference system, so its cells cannot be placed on the "
                           "map; save it with its CRS (WorldPop: EPSG:4326, GHS-POP: ESRI:54009)", "demand")
    t = src.transform
    if t.b or t.d:
        raise InvalidQuery(f"{filename} is a rotated or sheared grid; save it as a north-up raster", "demand")
    raster_crs = CRS.from_wkt(src.crs.to_wkt())
    to_wgs84 = Transformer.from_crs(raster_crs, crs.WGS84, always_xy=True)
    r0, r1, c0, c1 = _shanghai_window(service, src, filename)
    cells = (r1 - r0) * (c1 - c0)
    if cells > MAX_RASTER_READ_CELLS:
        raise InvalidQuery(f"{filename} has about {cells:,} cells over Shanghai, more than the "
                           f"{MAX_RASTER_READ_CELLS:,} this server reads; sum its cells into coarser ones first "
                           "(100 m cells are about 2.4 million)", "demand")
    n = _block_size(r1 - r0, c1 - c0, MAX_DEMAND_CELLS)
    sums = _block_sums(src, r0, r1, c0, c1, n, filename, to_wgs84)
    bi, bj = np.nonzero(sums > 0)
    weight = sums[bi, bj]
    # the centre of each block's cells (a block at the window's edge may hold fewer than n x n)
    col = (c0 + bj * n + np.minimum(c0 + (bj + 1) * n, c1)) / 2.0
    row = (r0 + bi * n + np.minimum(r0 + (bi + 1) * n, r1)) / 2.0
    lon, lat = (np.asarray(v, dtype=float) for v in to_wgs84.transform(t.a * col + t.c, t.e * row + t.f))
    codes = assign_districts(service.layer("districts"), lon, lat)
    inside = codes != ""
    dropped = float(weight[~inside].sum())
    if not inside.any():
        found = f"its {weight.sum():,.0f} people around Shanghai all lie outside the districts" if len(weight) \
            else "it has no cell with people (a value above 0) over Shanghai"
        raise InvalidQuery(f"{filename} puts nobody in Shanghai's districts: {found}", "demand")
    lon, lat, weight, codes = lon[inside], lat[inside], weight[inside], codes[inside]
    x, y = crs.to_metric(lon, lat)
    cell_m = round(n * _cell_size_m(t, to_wgs84, (r0 + r1) // 2, (c0 + c1) // 2), 1)
    authority = raster_crs.to_authority()
    band = "band 1" + (f" of {src.count}" if src.count > 1 else "")
    notes = [f"{filename}: population raster ({':'.join(authority) if authority else raster_crs.name}, {band}); "
             f"{weight.sum():,.0f} people in {len(weight):,} cells of about {cell_m:,.0f} m inside Shanghai's "
             "districts, each counted at its cell's centre"]
    if n > 1:
        notes.append(f"cells summed in blocks of {n}x{n} (about {cell_m:,.0f} m), as the {cells:,} cells over "
                     f"Shanghai's bounds are more than the {MAX_DEMAND_CELLS:,} a demand layer may have; people "
                     "summed, not averaged")
    if dropped > 0:
        notes.append(f"{dropped:,.0f} people outside Shanghai's districts not counted")
    notes.append("where people live is the raster's own data (the grid model's lake outlines are not applied)")
    return Demand(name=name, x=np.asarray(x), y=np.asarray(y), lon=lon, lat=lat, weight=weight,
                  district_code=codes, cell_m=float(cell_m), description="; ".join(notes))


def _shanghai_window(service, src, filename: str) -> tuple[int, int, int, int]:
    """Rows r0:r1 and columns c0:c1 of the raster's cells that meet Shanghai's bounding box (transformed into the
    raster's CRS); refused when there are none."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    west, south, east, north = (float(v) for v in service.layer("districts").gdf.total_bounds)
    t = src.transform
    try:
        left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, west, south, east, north, densify_pts=21)
    except Exception:  # Shanghai is outside the domain of the raster's projection
        left = bottom = right = top = math.nan
    window = None
    if all(math.isfinite(v) for v in (left, bottom, right, top)):
        # bounds in the order the grid runs (a south-up raster's rows go north)
        left, right = (right, left) if t.a < 0 else (left, right)
        bottom, top = (top, bottom) if t.e > 0 else (bottom, top)
        window = from_bounds(left, bottom, right, top, transform=t)
    if window is not None:
        c0, r0 = max(0, math.floor(window.col_off)), max(0, math.floor(window.row_off))
        c1 = min(src.width, math.ceil(window.col_off + window.width))
        r1 = min(src.height, math.ceil(window.row_off + window.height))
        if c0 < c1 and r0 < r1:
            return r0, r1, c0, c1
    raise InvalidQuery(f"{filename} does not overlap Shanghai: {_extent_text(src)}; Shanghai lies within longitude "
                       f"{west:.2f} to {east:.2f}, latitude {south:.2f} to {north:.2f} (is the raster's CRS "
                       "right?)", "demand")


def _extent_text(src) -> str:
    from rasterio.warp import transform_bounds
    try:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    except Exception:  # an extent outside the domain of its projection
        return "its extent cannot be expressed in longitude and latitude"
    return f"its cells cover longitude {w:.2f} to {e:.2f}, latitude {s:.2f} to {n:.2f}"


def _block_size(rows: int, cols: int, limit: int) -> int:
    """The smallest n for which n x n blocks of a rows x cols window number at most ``limit``."""
    n = max(1, math.isqrt(rows * cols // max(1, limit)))
    while math.ceil(rows / n) * math.ceil(cols / n) > max(1, limit):
        n += 1
    return n


def _block_sums(src, r0: int, r1: int, c0: int, c1: int, n: int, filename: str, to_wgs84) -> np.ndarray:
    """People in each n x n block of the window (nodata, NaN and infinite cells count as 0), read in strips of
    whole blocks; a negative value is refused with where it is."""
    from rasterio.windows import Window

    rows, cols = r1 - r0, c1 - c0
    sums = np.zeros((math.ceil(rows / n), math.ceil(cols / n)))
    strip = n * max(1, RASTER_STRIP_CELLS // (n * cols))
    for top in range(r0, r1, strip):
        height = min(strip, r1 - top)
        band = src.read(1, window=Window(c0, top, cols, height), masked=True)
        values = np.ma.filled(band.astype(np.float64), 0.0)
        values[~np.isfinite(values)] = 0.0
        if (values < 0).any():
            i, j = (int(v[0]) for v in np.nonzero(values < 0))
            t = src.transform
            lon, lat = to_wgs84.transform(t.a * (c0 + j + 0.5) + t.c, t.e * (top + i + 0.5) + t.f)
            raise InvalidQuery(f"{filename} has negative values (e.g. {values[i, j]:g} at longitude {lon:.4f}, "
                               f"latitude {lat:.4f}), and people cannot be negative; if {values[i, j]:g} marks cells "
                               "without data, declare it as the raster's nodata value", "demand")
        values = np.pad(values, ((0, -height % n), (0, -cols % n)))
        part = values.reshape(values.shape[0] // n, n, values.shape[1] // n, n).sum(axis=(1, 3))
        first = (top - r0) // n
        sums[first:first + len(part)] = part
    return sums


def _cell_size_m(t, to_wgs84, row: int, col: int) -> float:
    """Approximate size of one raster cell in metres: the square root of its area in METRIC_CRS."""
    cols = np.array([col, col + 1, col], dtype=float)
    rows = np.array([row, row, row + 1], dtype=float)
    lon, lat = to_wgs84.transform(t.a * cols + t.c, t.e * rows + t.f)
    x, y = (np.asarray(v, dtype=float) for v in crs.to_metric(lon, lat))
    area = abs((x[1] - x[0]) * (y[2] - y[0]) - (y[1] - y[0]) * (x[2] - x[0]))
    return math.sqrt(area)


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
