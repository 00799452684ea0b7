"""Population rasters (GeoTIFF, any CRS) as demand: tiny rasters written here with literal people in known cells."""

from __future__ import annotations

import re
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from pyproj import Geod, Transformer

from geoserver.core import demand as demand_module
from geoserver.core.demand import load_demand
from geoserver.core.errors import InvalidQuery
from geoserver.core.service import DEFAULT_DATA_DIR, DEFAULT_LAYERS_DIR, GeoService
from geoserver.web import create_app

GEOD = Geod(ellps="WGS84")
PEOPLES_SQUARE = (121.4737, 31.2304)     # Huangpu 310101
PUDONG = (121.5937, 31.2004)             # Pudong 310115 (12 cells of 0.01 degree east, 3 south)
KUNSHAN = (120.9837, 31.3804)            # Kunshan, Jiangsu: inside Shanghai's bounding box, outside its districts
JINGAN = (121.4437, 31.2304)             # Jing'an 310106: a cell with 0 people
XINTIANDI = (121.4837, 31.2204)          # Huangpu: a NaN cell
NODATA = -9999.0


@pytest.fixture(scope="module")
def raster_service(tmp_path_factory) -> GeoService:
    """The real districts and the bundled (sample) stations, with an empty demand/ folder for the rasters."""
    root = tmp_path_factory.mktemp("raster")
    (root / "data" / "demand").mkdir(parents=True)
    (root / "layers").mkdir()
    for name in ("services.toml", "stations.toml", "districts.toml"):
        shutil.copy(DEFAULT_LAYERS_DIR / name, root / "layers" / name)
    for name in ("stations.gpkg", "districts.gpkg"):
        shutil.copy(DEFAULT_DATA_DIR / name, root / "data" / name)
    return GeoService(root / "data", root / "layers")


@pytest.fixture(scope="module")
def client(raster_service):
    return create_app(service=raster_service).test_client()


def from_origin(west, north, xsize, ysize) -> Affine:
    """A north-up grid's transform from its north-west corner and cell size."""
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


def write_raster(path, values, crs, transform, nodata=NODATA, count=1, dtype="float32", driver="GTiff"):
    """A GeoTIFF of ``values`` (rows x cols) as band 1; other bands hold 7 everywhere."""
    values = np.asarray(values, dtype=dtype)
    profile = {"driver": driver, "width": values.shape[1], "height": values.shape[0], "count": count,
               "dtype": dtype, "transform": transform}
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
        for band in range(2, count + 1):
            dst.write(np.full(values.shape, 7, dtype=dtype), band)
    return path


def degree_raster(cells: dict, res: float = 0.01, fill: float = NODATA):
    """An EPSG:4326 grid of ``res`` degrees with a cell centred on KUNSHAN, so every point above (a whole number of
    0.01 degree steps from it) is a cell centre; ``cells`` ({(lon, lat): value}) set, everything else ``fill``.
    Returns (values, transform)."""
    west = KUNSHAN[0] - res / 2 - 2 * res
    north = KUNSHAN[1] + res / 2 + res
    cols, rows = 66, 21                       # to 2 cells east of PUDONG and 1 south of it
    values = np.full((rows, cols), fill)
    for (lon, lat), value in cells.items():
        row, col = round((north - lat) / res - 0.5), round((lon - west) / res - 0.5)
        assert 0 <= row < rows and 0 <= col < cols
        values[row, col] = value
    return values, from_origin(west, north, res, res)


def utm_raster(cells: dict, res: float = 500.0):
    """An EPSG:32651 (UTM 51N) grid of ``res`` metres; ``cells`` maps metre offsets from People's Square (east,
    north) to values; the cell centred on People's Square is one of them."""
    x0, y0 = Transformer.from_crs(4326, 32651, always_xy=True).transform(*PEOPLES_SQUARE)
    west, north = x0 - res / 2 - 100 * res, y0 + res / 2 + 40 * res
    values = np.full((60, 140), NODATA)
    for (dx, dy), value in cells.items():
        row, col = round((north - (y0 + dy)) / res - 0.5), round((x0 + dx - west) / res - 0.5)
        assert 0 <= row < 60 and 0 <= col < 140
        values[row, col] = value
    return values, from_origin(west, north, res, res)


def dropped(demand) -> float:
    found = re.search(r"([\d,]+) people outside Shanghai's districts not counted", demand.description)
    return float(found.group(1).replace(",", "")) if found else 0.0


def by_district(demand) -> dict:
    return {code: float(demand.weight[demand.district_code == code].sum()) for code in np.unique(demand.district_code)}


def geodesic_cell_size_m(crs, west, north, size) -> float:
    """Square root of the geodesic area of the square cell of ``size`` (in ``crs`` units) at west, north."""
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(
        [west, west + size, west + size, west], [north, north, north - size, north - size])
    area, _ = GEOD.polygon_area_perimeter(lon, lat)
    return abs(area) ** 0.5


def nearest_station_m(service, lon, lat) -> float:
    """Geodesic distance to the nearest station, from the station file itself (not through the service)."""
    stations = gpd.read_file(service.data_dir / "stations.gpkg")
    x, y = stations.geometry.x.to_numpy(), stations.geometry.y.to_numpy()
    _, _, dist = GEOD.inv(np.full(len(x), lon), np.full(len(x), lat), x, y)
    return float(dist.min())


# ---- rasters in three CRSs ---------------------------------------------------------------------------------------

def test_wgs84_raster_counts_cells_with_people_inside_the_districts(raster_service):
    values, transform = degree_raster({PEOPLES_SQUARE: 1000, PUDONG: 500, KUNSHAN: 300, JINGAN: 0,
                                       XINTIANDI: np.nan})
    path = write_raster(raster_service.data_dir / "demand" / "worldpop.tif", values, "EPSG:4326", transform)
    d = load_demand(raster_service, path)
    assert d.name == "worldpop" and d.size == 2 and d.total == 1500.0
    assert by_district(d) == {"310101": 1000.0, "310115": 500.0}
    assert dropped(d) == 300.0
    assert "300 people outside Shanghai's districts not counted" in d.description
    assert "EPSG:4326" in d.description and "1,500 people in 2 cells" in d.description
    order = np.argsort(-d.weight)
    assert np.allclose(d.lon[order], [PEOPLES_SQUARE[0], PUDONG[0]], atol=1e-9)
    assert np.allclose(d.lat[order], [PEOPLES_SQUARE[1], PUDONG[1]], atol=1e-9)
    # METRIC_CRS positions agree with the WGS84 ones
    x, y = Transformer.from_crs(4326, "+proj=tmerc +lat_0=31.2 +lon_0=121.47 +k=1 +x_0=500000 +y_0=0 +ellps=WGS84",
                                always_xy=True).transform(d.lon, d.lat)
    assert np.allclose(d.x, x, atol=1e-6) and np.allclose(d.y, y, atol=1e-6)
    # cell size: the square root of the geodesic area of the raster's middle cell (0.01 degree: about 1,027 m)
    t = transform
    col, row = 33, 10
    lons = [t.c + t.a * c for c in (col, col + 1, col + 1, col)]
    lats = [t.f + t.e * r for r in (row, row, row + 1, row + 1)]
    area, _ = GEOD.polygon_area_perimeter(lons, lats)
    assert d.cell_m == pytest.approx(abs(area) ** 0.5, abs=1.0)
    assert 1020 < d.cell_m < 1035


def test_projected_raster_utm(raster_service):
    values, transform = utm_raster({(0, 0): 2000, (12000, -3000): 700, (-47000, 17000): 400, (5000, 5000): 0})
    values[5, 5] = np.nan
    path = write_raster(raster_service.data_dir / "demand" / "utm.tif", values, "EPSG:32651", transform)
    d = raster_service.demand("utm")
    assert d.total == 2700.0 and d.size == 2
    assert by_district(d) == {"310101": 2000.0, "310115": 700.0}
    assert dropped(d) == 400.0
    lon, lat = d.lon[np.argmax(d.weight)], d.lat[np.argmax(d.weight)]
    assert GEOD.inv(lon, lat, *PEOPLES_SQUARE)[2] < 0.01          # the cell centre, back in WGS84
    # UTM 51N's scale here is about 0.99986: a 500 m cell is about 500.07 m on the ground
    x0, y0 = Transformer.from_crs(4326, 32651, always_xy=True).transform(*PEOPLES_SQUARE)
    assert geodesic_cell_size_m("EPSG:32651", x0 - 250, y0 + 250, 500) == pytest.approx(500.07, abs=0.01)
    assert d.cell_m == pytest.approx(500.07, abs=0.1)
    assert "EPSG:32651" in d.description and path.exists()


def test_mollweide_raster_multiband_uses_band_1(raster_service):
    """GHS-POP style: 1 km cells in World Mollweide (ESRI:54009), all in Pudong; band 2 is ignored."""
    rng = np.random.default_rng(20261202)
    values = rng.integers(0, 50, size=(10, 10)).astype("float64")
    values[0, :3] = -200.0                                        # GHS-POP's nodata
    write_raster(raster_service.data_dir / "demand" / "ghs.tif", values, "ESRI:54009",
                 from_origin(11_066_000, 3_787_000, 1000, 1000), nodata=-200.0, count=2)
    d = raster_service.demand("ghs")
    expected = values[values > 0]
    assert d.total == float(expected.sum()) and d.size == len(expected)
    assert set(d.district_code) == {"310115"} and dropped(d) == 0.0
    # Mollweide keeps areas of its sphere, not of the ellipsoid: the middle cell is 0.9968 km2 on WGS84
    assert d.cell_m == pytest.approx(geodesic_cell_size_m("ESRI:54009", 11_066_000 + 5_000, 3_787_000 - 5_000,
                                                          1000), abs=0.1)
    assert d.cell_m == 998.4
    assert "ESRI:54009" in d.description and "band 1 of 2" in d.description
    assert "not counted" not in d.description


# ---- only Shanghai is read; the cell budget -------------------------------------------------------------------

def test_only_the_window_over_shanghai_is_read(raster_service):
    """A raster of eastern China at 0.05 degree: Nanjing's people lie outside Shanghai's bounds, so they are
    neither read nor reported; Kunshan's are inside the bounds and reported as not counted."""
    res = 0.05
    west, north = PEOPLES_SQUARE[0] - res / 2 - 130 * res, PEOPLES_SQUARE[1] + res / 2 + 80 * res
    values = np.zeros((160, 200))
    values[80, 130] = 1000                                        # People's Square
    values[80 - 3, 130 - 10] = 300                                # 120.9737, 31.3804: Kunshan
    values[80 - 17, 130 - 54] = 5000                              # 118.7737, 32.0804: Nanjing
    path = write_raster(raster_service.data_dir / "demand" / "east.tif", values, "EPSG:4326",
                        from_origin(west, north, res, res), nodata=None)
    d = load_demand(raster_service, path)
    assert d.total == 1000.0 and by_district(d) == {"310101": 1000.0} and dropped(d) == 300.0


def test_aggregation_keeps_every_person(raster_service, monkeypatch):
    """More cells over Shanghai than MAX_DEMAND_CELLS: cells are summed in n x n blocks, never averaged."""
    monkeypatch.setattr(demand_module, "MAX_DEMAND_CELLS", 16)
    rng = np.random.default_rng(7)
    values = rng.integers(0, 100, size=(10, 10)).astype("float64")
    path = write_raster(raster_service.data_dir / "demand" / "ghs_blocks.tif", values, "ESRI:54009",
                        from_origin(11_066_000, 3_787_000, 1000, 1000), nodata=-200.0)
    d = load_demand(raster_service, path)
    assert d.total == float(values.sum()) == 5300.0
    assert d.size == 16                                           # 10 x 10 cells in 3 x 3 blocks: 4 x 4
    assert d.cell_m == 2995.2                                     # 3 x the 998.4 m of one cell (see above)
    assert "blocks of 3x3" in d.description and "people summed, not averaged" in d.description
    # across the border: the people kept and the people dropped still add up to the raster's
    monkeypatch.setattr(demand_module, "MAX_DEMAND_CELLS", 4)
    values, transform = degree_raster({PEOPLES_SQUARE: 1000, PUDONG: 500, KUNSHAN: 300})
    path = write_raster(raster_service.data_dir / "demand" / "coarse.tif", values, "EPSG:4326", transform)
    d = load_demand(raster_service, path)
    assert d.size <= 4 and d.total + dropped(d) == 1800.0
    assert "blocks of 21x21" in d.description


def test_a_raster_too_fine_to_read_is_refused(raster_service, monkeypatch):
    monkeypatch.setattr(demand_module, "MAX_RASTER_READ_CELLS", 1000)
    values, transform = degree_raster({PEOPLES_SQUARE: 1000})
    path = write_raster(raster_service.data_dir / "demand" / "fine.tif", values, "EPSG:4326", transform)
    with pytest.raises(InvalidQuery, match=r"fine.tif has about 1,386 cells over Shanghai, more than the 1,000"):
        load_demand(raster_service, path)


# ---- through the API ------------------------------------------------------------------------------------------

def test_coverage_api_with_a_raster(raster_service, client):
    values, transform = degree_raster({PEOPLES_SQUARE: 1000, PUDONG: 500, KUNSHAN: 300, JINGAN: 0})
    write_raster(raster_service.data_dir / "demand" / "pop_api.tif", values, "EPSG:4326", transform)
    # independently: the nearest sample station is 204.9 m from People's Square and 259.3 m from the Pudong cell
    assert nearest_station_m(raster_service, *PEOPLES_SQUARE) == pytest.approx(204.93, abs=0.01)
    assert nearest_station_m(raster_service, *PUDONG) == pytest.approx(259.34, abs=0.01)
    expected = {180: 0, 230: 1000, 300: 1500}
    for radius, covered in expected.items():
        r = client.get(f"/api/coverage?layer=stations&radius_m={radius}&demand=pop_api")
        assert r.status_code == 200, r.json
        body = r.json
        assert body["totals"]["demand"] == 1500 and body["totals"]["covered"] == covered
        assert body["totals"]["uncovered"] == 1500 - covered
    assert body["demand"]["name"] == "pop_api" and body["demand"]["points"] == 2
    assert "300 people outside Shanghai's districts not counted" in body["demand"]["model"]
    assert body["demand_sensitivity"]["applies"] is False
    rows = {row["district_code"]: (row["demand"], row["covered"]) for row in body["districts"] if row["demand"]}
    assert rows == {"310101": (1000, 1000), "310115": (500, 500)}
    gaps = client.get("/api/coverage/gaps?layer=stations&radius_m=230&demand=pop_api").json["features"]
    assert [(g["properties"]["uncovered"], g["properties"]["district_codes"]) for g in gaps] == [(500, ["310115"])]
    r = client.get("/api/coverage?layer=stations&radius_m=230&demand=pop_api&weight_column=population")
    assert r.status_code == 400 and r.json["parameter"] == "weight_column"
    assert "population raster" in r.json["description"]


# ---- what is refused, and how it is said ---------------------------------------------------------------------

def refused(service, path, *patterns):
    with pytest.raises(InvalidQuery) as info:
        load_demand(service, path)
    assert info.value.parameter == "demand"
    for pattern in patterns:
        assert re.search(pattern, info.value.message), info.value.message
    return info.value.message


def test_raster_without_crs(raster_service, client):
    values, transform = degree_raster({PEOPLES_SQUARE: 1000})
    path = write_raster(raster_service.data_dir / "demand" / "nocrs.tif", values, None, transform)
    refused(raster_service, path, r"^nocrs.tif has no coordinate reference system", r"EPSG:4326", r"ESRI:54009")
    r = client.get("/api/coverage?radius_m=500&demand=nocrs")
    assert r.status_code == 400
    assert r.json["code"] == "InvalidParameterValue" and r.json["parameter"] == "demand"
    assert r.json["description"].startswith("nocrs.tif has no coordinate reference system")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_files_that_are_not_geotiffs(raster_service, client, tmp_path):
    text = tmp_path / "notes.tif"
    text.write_text("population: lots\n", encoding="utf-8")
    refused(raster_service, text, r"^notes.tif cannot be read as a GeoTIFF: the file is damaged or is not a raster$")
    values, transform = degree_raster({PEOPLES_SQUARE: 1000})
    good = write_raster(tmp_path / "good.tif", values, "EPSG:4326", transform, dtype="float64")
    truncated = raster_service.data_dir / "demand" / "cut.tif"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    refused(raster_service, truncated, r"^cut.tif cannot be read as a GeoTIFF")
    r = client.get("/api/coverage?radius_m=500&demand=cut")
    assert r.status_code == 400 and r.json["parameter"] == "demand" and "cannot be read" in r.json["description"]
    png = tmp_path / "picture.png"
    write_raster(png, np.full((4, 4), 9), "EPSG:4326", transform, nodata=None, dtype="uint8", driver="PNG")
    disguised = tmp_path / "picture.tif"
    png.rename(disguised)
    refused(raster_service, disguised, r"^picture.tif is a PNG file, not a GeoTIFF")


def test_raster_that_does_not_overlap_shanghai(raster_service, client):
    path = write_raster(raster_service.data_dir / "demand" / "beijing.tif", np.full((10, 10), 50.0), "EPSG:4326",
                        from_origin(116.3, 40.0, 0.02, 0.02))
    message = refused(raster_service, path, r"^beijing.tif does not overlap Shanghai",
                      r"longitude 116.30 to 116.50, latitude 39.80 to 40.00", r"120.85 to 122.24")
    r = client.get("/api/coverage?radius_m=500&demand=beijing")
    assert r.status_code == 400 and r.json["description"] == message
    # WorldPop degrees mislabelled as UTM metres: a few metres from UTM 51N's origin, far from Shanghai
    values, transform = degree_raster({PEOPLES_SQUARE: 1000})
    path = write_raster(raster_service.data_dir / "demand" / "mislabelled.tif", values, "EPSG:32651", transform)
    refused(raster_service, path, r"does not overlap Shanghai", r"is the raster's CRS right\?")


def test_raster_with_nobody_in_shanghai(raster_service):
    values, transform = degree_raster({KUNSHAN: 300, PEOPLES_SQUARE: 0})
    path = write_raster(raster_service.data_dir / "demand" / "kunshan.tif", values, "EPSG:4326", transform)
    refused(raster_service, path, r"^kunshan.tif puts nobody in Shanghai's districts: its 300 people around "
                                  r"Shanghai all lie outside the districts$")
    values, transform = degree_raster({PEOPLES_SQUARE: 0})
    path = write_raster(raster_service.data_dir / "demand" / "empty.tif", values, "EPSG:4326", transform)
    refused(raster_service, path, r"it has no cell with people \(a value above 0\) over Shanghai")


def test_negative_values_are_refused(raster_service, client):
    """An undeclared nodata value (WorldPop's -99999) is refused, not read as people; declared, it is ignored."""
    values, transform = degree_raster({PEOPLES_SQUARE: -99999, PUDONG: 500})
    path = write_raster(raster_service.data_dir / "demand" / "undeclared.tif", values, "EPSG:4326", transform)
    refused(raster_service, path, r"^undeclared.tif has negative values \(e.g. -99999 at longitude 121.4737, "
                                  r"latitude 31.2304\), and people cannot be negative",
            r"declare it as the raster's nodata value")
    r = client.get("/api/coverage?radius_m=500&demand=undeclared")
    assert r.status_code == 400 and "negative values" in r.json["description"]
    values, transform = degree_raster({PEOPLES_SQUARE: -99999, PUDONG: 500}, fill=-99999)
    path = write_raster(raster_service.data_dir / "demand" / "declared.tif", values, "EPSG:4326", transform,
                        nodata=-99999)
    d = load_demand(raster_service, path)
    assert d.total == 500.0 and by_district(d) == {"310115": 500.0}


def test_rotated_raster_is_refused(raster_service):
    values, _ = degree_raster({PEOPLES_SQUARE: 1000})
    rotated = Affine(0.01, 0.002, 120.95, 0.002, -0.01, 31.40)
    path = write_raster(raster_service.data_dir / "demand" / "rotated.tif", values, "EPSG:4326", rotated)
    refused(raster_service, path, r"rotated or sheared grid")


def test_rasters_are_listed_as_demand_layers(raster_service):
    values, transform = degree_raster({PEOPLES_SQUARE: 1})
    write_raster(raster_service.data_dir / "demand" / "listed.tiff", values, "EPSG:4326", transform)
    files = raster_service.demand_files()
    assert files["listed"].name == "listed.tiff"
    with pytest.raises(InvalidQuery, match="unknown demand layer 'nope'; available: grid, .*listed"):
        raster_service.demand("nope")
    # a raster may not pass for the census grid model (whose sensitivity figures would then be computed on it)
    path = write_raster(raster_service.data_dir / "demand" / "grid_pop.tif", values, "EPSG:4326", transform)
    refused(raster_service, path, r"^grid_pop.tif: names starting with 'grid' belong to the census grid model")
