"""Vector tiles (OGC API - Tiles, Mapbox Vector Tiles) through the Flask test client, and GDAL reading them.

A tile's features are checked against what an OGC items bbox query returns for the tile's bounds, computed here by
hand with the Web-Mercator formulas (not with the server's own code)."""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import geopandas as gpd
import mapbox_vector_tile
import pytest
import shapely
from shapely.geometry import Point, shape

from geoserver.core import crs
from geoserver.core.service import GeoService
from geoserver.web import create_app
from geoserver.web.tiles import TILES_CONFORMANCE
from tests.conftest import write_tiny_layers

MVT = "application/vnd.mapbox-vector-tile"
EXTENT, BUFFER = 4096, 64
#: The z=12 tile over People's Square (121.4737 E, 31.2304 N), and the z=9 tile holding most of the city.
PEOPLES_SQUARE = (12, 3430, 1673)
CITY = (9, 428, 209)
POINT_LAYERS = ["stations", "driver_homes", "gig_markets", "canteens", "fitness_stations", "rest_rooms"]
#: What a tile may carry: the id, a few public fields, the sample flag.
TILE_KEYS = {"id", "name", "name_en", "district", "address", "services", "opening_hours", "zone", "sample"}


def tile_url(layer: str | None, z: int, x: int, y: int, query: str = "") -> str:
    base = f"/ogc/collections/{layer}/tiles" if layer else "/ogc/tiles"
    return f"{base}/WebMercatorQuad/{z}/{x}/{y}" + (f"?{query}" if query else "")


def decode(resp) -> dict:
    assert resp.status_code == 200, (resp.status_code, resp.get_data()[:300])
    assert resp.mimetype == MVT
    data = resp.get_data()
    if resp.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


def unit_x(lon: float) -> float:
    return (lon + 180.0) / 360.0


def unit_y(lat: float) -> float:
    phi = math.radians(lat)
    return (1.0 - math.log(math.tan(phi) + 1.0 / math.cos(phi)) / math.pi) / 2.0


def lon_of(ux: float) -> float:
    return ux * 360.0 - 180.0


def lat_of(uy: float) -> float:
    return math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * uy))))


def bounds(z: int, x: int, y: int, pad_units: float = 0.0) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a tile, widened by ``pad_units`` tile units on each side."""
    n, pad = 2 ** z, pad_units / EXTENT
    return lon_of((x - pad) / n), lat_of((y + 1 + pad) / n), lon_of((x + 1 + pad) / n), lat_of((y - pad) / n)


def pixel(lon: float, lat: float, z: int, x: int, y: int) -> tuple[float, float]:
    n = 2 ** z
    return (unit_x(lon) * n - x) * EXTENT, (unit_y(lat) * n - y) * EXTENT


def items(client, layer: str, box, query: str = "") -> dict[str, list]:
    """id -> coordinates of the features an items bbox query returns."""
    url = f"/ogc/collections/{layer}/items?bbox={','.join(f'{v:.9f}' for v in box)}&limit=10000"
    fc = client.get(url + (f"&{query}" if query else "")).json
    assert fc["numberMatched"] == fc["numberReturned"]
    return {f["id"]: f["geometry"]["coordinates"] for f in fc["features"]}


def inside(coords, lo: float = 0.0, hi: float = EXTENT) -> bool:
    return lo <= coords[0] <= hi and lo <= coords[1] <= hi


# --- the features of a tile are those of the bbox query for its bounds ----------------------------------------------
@pytest.mark.parametrize("tile,expected,inner", [(PEOPLES_SQUARE, 317, 295), (CITY, 2792, 2722)])
def test_a_tile_holds_the_features_of_the_bbox_query_for_its_bounds(client, tile, expected, inner):
    layer = decode(client.get(tile_url("stations", *tile)))["stations"]
    assert layer["extent"] == EXTENT
    found = {f["properties"]["id"]: f["geometry"]["coordinates"] for f in layer["features"]}
    assert len(found) == len(layer["features"]) == expected
    # every feature within the tile's bounds plus the 64-unit buffer, and no other
    buffered = items(client, "stations", bounds(*tile, BUFFER))
    assert set(found) == set(buffered)
    # those drawn inside the tile are exactly the bbox query's for the tile itself
    exact = items(client, "stations", bounds(*tile))
    assert {fid for fid, xy in found.items() if inside(xy)} == set(exact)
    assert len(exact) == inner
    # each at its position, rounded to the tile's integer grid
    for fid, (lon, lat) in buffered.items():
        px, py = pixel(lon, lat, *tile)
        assert abs(found[fid][0] - px) <= 0.51 and abs(found[fid][1] - py) <= 0.51, (fid, found[fid], px, py)


def test_an_empty_tile_is_a_200_with_an_empty_layer(client, tmp_path):
    resp = client.get(tile_url("stations", 12, 0, 0))
    layers = decode(resp)
    assert list(layers) == ["stations"] and layers["stations"]["features"] == []
    assert 0 < len(resp.get_data()) < 100
    path = tmp_path / "12" / "0" / "0.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(resp.get_data())
    assert ogr_counts(path) == {"stations": 0}


def test_the_multi_layer_tile_has_every_point_layer(client):
    layers = decode(client.get(tile_url(None, *PEOPLES_SQUARE)))
    assert list(layers) == POINT_LAYERS          # no districts, every point layer even where empty
    for lid in POINT_LAYERS:
        alone = decode(client.get(tile_url(lid, *PEOPLES_SQUARE)))[lid]["features"]
        together = layers[lid]["features"]
        assert [f["properties"]["id"] for f in together] == [f["properties"]["id"] for f in alone]
        assert set(f["properties"]["id"] for f in together) == set(items(client, lid, bounds(*PEOPLES_SQUARE,
                                                                                             BUFFER)))
    assert sum(len(layer["features"]) for layer in layers.values()) == 317 + 0 + 2 + 50 + 8 + 80


def test_every_feature_is_in_the_whole_world_tile(client, service):
    for lid in POINT_LAYERS:
        features = decode(client.get(tile_url(lid, 0, 0, 0)))[lid]["features"]
        assert sorted(f["properties"]["id"] for f in features) == sorted(service.layers[lid].ids.tolist())


# --- GCJ-02 -----------------------------------------------------------------------------------------------------------
def test_gcj02_tiles_put_the_features_at_their_gcj02_positions(client):
    wgs = {f["properties"]["id"]: f["geometry"]["coordinates"]
           for f in decode(client.get(tile_url("stations", *PEOPLES_SQUARE)))["stations"]["features"]}
    resp = client.get(tile_url("stations", *PEOPLES_SQUARE, "crs=gcj02"))
    assert resp.headers["X-Coordinate-System"] == "gcj02"
    gcj = {f["properties"]["id"]: f["geometry"]["coordinates"] for f in decode(resp)["stations"]["features"]}
    # which features: those whose GCJ-02 position lies in the buffered tile (the WGS84 box around it is wider)
    west, south, east, north = bounds(*PEOPLES_SQUARE, BUFFER)
    around = items(client, "stations", (west - 0.02, south - 0.02, east + 0.02, north + 0.02))
    ids = list(around)
    lon, lat = crs.wgs84_to_gcj02([around[i][0] for i in ids], [around[i][1] for i in ids])
    expected = {fid for fid, x, y in zip(ids, lon.tolist(), lat.tolist()) if west <= x <= east and south <= y <= north}
    assert set(gcj) == expected and len(gcj) > 250
    # where: the GCJ-02 position (the items' crs=gcj02 coordinates are the same), some 500 m from the WGS84 one
    gcj_items = items(client, "stations", (west - 0.02, south - 0.02, east + 0.02, north + 0.02), "crs=gcj02")
    shifts = []
    for fid, (x, y) in zip(ids, zip(lon.tolist(), lat.tolist())):
        if fid not in gcj:
            continue
        assert gcj_items[fid] == pytest.approx([x, y], abs=1e-6)
        px, py = pixel(x, y, *PEOPLES_SQUARE)
        assert abs(gcj[fid][0] - px) <= 0.6 and abs(gcj[fid][1] - py) <= 0.6, (fid, gcj[fid], px, py)
        if fid in wgs:
            shifts.append(float(crs.geodesic_distance_m(*around[fid], x, y)))
            # on the grid: east and south of the WGS84 position, by hundreds of tile units (2 m each at z12)
            assert 150 < gcj[fid][0] - wgs[fid][0] < 260 and 60 < gcj[fid][1] - wgs[fid][1] < 140
    assert len(shifts) > 250 and 450 < min(shifts) <= max(shifts) < 600


def test_bd09_and_other_datums_are_refused(client):
    for value, fragment in (("bd09", "Baidu"), ("WGS84", "unknown coordinate system"), ("", "unknown")):
        r = client.get(tile_url("stations", *PEOPLES_SQUARE, f"crs={value}"))
        assert r.status_code == 400 and r.json["parameter"] == "crs" and fragment in r.json["description"], r.json


# --- GDAL reads the tiles -------------------------------------------------------------------------------------------
def ogr(*args) -> str:
    exe = shutil.which("ogrinfo")
    assert exe, "ogrinfo (Debian package gdal-bin) is required; .ci/run installs it"
    result = subprocess.run([exe, "-ro", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-2000:]
    return result.stdout


def ogr_counts(target) -> dict[str, int]:
    """Layer name -> feature count, as ``ogrinfo -al -so`` reports them."""
    out = ogr("-al", "-so", f"MVT:{target}")
    names = re.findall(r"^Layer name: (\S+)", out, re.M)
    counts = [int(n) for n in re.findall(r"^Feature Count: (\d+)", out, re.M)]
    assert len(names) == len(counts), out
    return dict(zip(names, counts))


def ogr_features(path: Path, layer: str, *options: str) -> dict[str, tuple[float, float]]:
    """id -> (lon, lat) of a tile's points as GDAL reads them (ogr2ogr to GeoJSON in WGS84)."""
    exe = shutil.which("ogr2ogr")
    assert exe, "ogr2ogr (Debian package gdal-bin) is required"
    result = subprocess.run([exe, *options, "-f", "GeoJSON", "-t_srs", "EPSG:4326", "/vsistdout/", f"MVT:{path}",
                             layer], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    fc = json.loads(result.stdout)
    return {f["properties"]["id"]: tuple(f["geometry"]["coordinates"]) for f in fc["features"]}


def write_tile(client, tmp_path: Path, layer: str | None, z: int, x: int, y: int, query: str = "") -> Path:
    """The tile's bytes in a {z}/{x}/{y}.pbf file (GDAL georeferences a single tile by that path)."""
    resp = client.get(tile_url(layer, z, x, y, query))
    assert resp.status_code == 200
    path = tmp_path / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(resp.get_data())
    return path


def test_gdal_reads_a_tile_and_finds_the_features_of_the_bbox_query(client, tmp_path):
    path = write_tile(client, tmp_path, "stations", *PEOPLES_SQUARE)
    assert ogr_counts(path) == {"stations": 317}       # the features encoded, the 64-unit buffer included
    # GDAL clips to the tile when it reads (its default): exactly the bbox query's features
    assert set(ogr_features(path, "stations")) == set(items(client, "stations", bounds(*PEOPLES_SQUARE)))
    found = ogr_features(path, "stations", "-oo", "CLIP=NO")
    assert set(found) == set(items(client, "stations", bounds(*PEOPLES_SQUARE, BUFFER)))
    # georeferenced: each within half a tile unit (about 1 m at z12) of the feature's position
    for fid, (lon, lat) in items(client, "stations", bounds(*PEOPLES_SQUARE, BUFFER)).items():
        assert float(crs.geodesic_distance_m(lon, lat, *found[fid])) < 1.5, fid


def test_gdal_reads_the_multi_layer_tile_and_the_district_polygons(client, tmp_path):
    path = write_tile(client, tmp_path / "all", None, *PEOPLES_SQUARE)
    assert ogr_counts(path) == {"stations": 317, "driver_homes": 0, "gig_markets": 2, "canteens": 50,
                                "fitness_stations": 8, "rest_rooms": 80}
    path = write_tile(client, tmp_path / "districts", "districts", *PEOPLES_SQUARE)
    out = ogr("-al", "-so", f"MVT:{path}")
    assert "Feature Count: 6" in out and re.search(r"Geometry: (Multi )?Polygon", out), out


@pytest.mark.external
def test_gdal_reads_a_tile_over_http_from_the_production_server(live_server):
    """GDAL's MVT driver opens a tile URL ending in .pbf as one georeferenced tile."""
    url = f"{live_server}{tile_url('stations', *PEOPLES_SQUARE)}.pbf"
    assert ogr_counts(url) == {"stations": 317}
    req = urllib.request.Request(url[:-4], headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"] == MVT and resp.headers["Content-Encoding"] == "gzip"
        layers = mapbox_vector_tile.decode(gzip.decompress(resp.read()))
    assert len(layers["stations"]["features"]) == 317


# --- the districts: polygons clipped to the tile --------------------------------------------------------------------
def test_district_tiles_are_valid_polygons_clipped_to_the_tile(client):
    features = decode(client.get(tile_url("districts", *PEOPLES_SQUARE)))["districts"]["features"]
    ids = {f["properties"]["id"] for f in features}
    assert len(ids) == len(features) == 6 and "310101" in ids    # 黄浦区 holds People's Square
    assert set(items(client, "districts", bounds(*PEOPLES_SQUARE, -8))) <= ids \
        <= set(items(client, "districts", bounds(*PEOPLES_SQUARE, BUFFER)))
    total = 0.0
    for f in features:
        geom = shape(f["geometry"])
        assert geom.geom_type in ("Polygon", "MultiPolygon") and geom.is_valid, f["properties"]
        minx, miny, maxx, maxy = geom.bounds
        assert -BUFFER <= minx and -BUFFER <= miny and maxx <= EXTENT + BUFFER and maxy <= EXTENT + BUFFER
        assert set(f["properties"]) == {"id", "name", "name_en", "zone"}
        total += geom.intersection(shapely.box(0, 0, EXTENT, EXTENT)).area
    # the districts cover the tile (it lies in the city), each part once
    assert total == pytest.approx(EXTENT * EXTENT, rel=0.01)


# --- TileJSON, tilesets, the tile matrix set ------------------------------------------------------------------------
def local(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def resolve(client, template: str, z: int, x: int, y: int):
    url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
    url = url.replace("{tileMatrix}", str(z)).replace("{tileCol}", str(x)).replace("{tileRow}", str(y))
    return client.get(local(url))


@pytest.mark.parametrize("layer", ["stations", "districts", None])
def test_tilejson(client, layer):
    base = f"/ogc/collections/{layer}/tiles" if layer else "/ogc/tiles"
    doc = client.get(f"{base}/WebMercatorQuad/tilejson.json").json
    assert {"tilejson", "tiles", "vector_layers"} <= set(doc) and doc["tilejson"] == "3.0.0"
    assert (doc["minzoom"], doc["maxzoom"]) == (0, 16) and doc["scheme"] == "xyz"
    names = [v["id"] for v in doc["vector_layers"]]
    assert names == ([layer] if layer else POINT_LAYERS)
    assert ("SAMPLE" in doc["attribution"]) == (layer != "districts")
    west, south, east, north = doc["bounds"]
    assert 120.8 < west < 121.2 and 30.6 < south < 30.8 and 121.9 < east < 122.3 and 31.7 < north < 31.9
    if layer:
        assert doc["bounds"] == client.get(f"/ogc/collections/{layer}").json["extent"]["spatial"]["bbox"][0]
    layers = decode(resolve(client, doc["tiles"][0], *CITY))
    assert list(layers) == names
    for v in doc["vector_layers"]:
        keys = {k for f in layers[v["id"]]["features"] for k in f["properties"]}
        assert keys and keys <= set(v["fields"]) <= TILE_KEYS, (v["id"], keys, v["fields"])
    # crs=gcj02: the templates ask for GCJ-02 tiles, the bounds are shifted (east, south: about 500 m)
    shifted = client.get(f"{base}/WebMercatorQuad/tilejson.json?crs=gcj02").json
    assert shifted["tiles"][0].endswith("?crs=gcj02")
    assert resolve(client, shifted["tiles"][0], *PEOPLES_SQUARE).headers["X-Coordinate-System"] == "gcj02"
    assert 0.003 < shifted["bounds"][0] - west < 0.006 and -0.004 < shifted["bounds"][1] - south < 0.0


def link(doc, rel):
    return next(ln for ln in doc["links"] if ln["rel"] == rel)


def test_tilesets_tileset_and_tile_matrix_set(client):
    listing = client.get("/ogc/collections/stations/tiles").json
    (entry,) = listing["tilesets"]
    assert entry["dataType"] == "vector" and entry["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    doc = client.get(local(link(entry, "self")["href"])).json
    assert doc["dataType"] == "vector" and doc["tileMatrixSetURI"].endswith("/WebMercatorQuad")
    item = link(doc, "item")
    assert item["type"] == MVT and item["templated"] is True
    assert "{tileMatrix}" in item["href"] and "{tileRow}" in item["href"] and "{tileCol}" in item["href"]
    assert len(decode(resolve(client, item["href"], *PEOPLES_SQUARE))["stations"]["features"]) == 317
    limits = {lim["tileMatrix"]: lim for lim in doc["tileMatrixSetLimits"]}
    assert sorted(limits, key=int) == [str(z) for z in range(17)]
    z12 = limits["12"]
    assert z12["minTileCol"] <= 3430 <= z12["maxTileCol"] and z12["minTileRow"] <= 1673 <= z12["maxTileRow"]
    assert limits["0"] == {"tileMatrix": "0", "minTileRow": 0, "maxTileRow": 0, "minTileCol": 0, "maxTileCol": 0}
    assert [la["id"] for la in doc["layers"]] == ["stations"] and doc["layers"][0]["geometryDimension"] == 0
    tms = client.get(local(link(doc, "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme")["href"])).json
    assert tms["id"] == "WebMercatorQuad" and tms["crs"] == "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert len(tms["tileMatrices"]) == 25 and tms["tileMatrices"][12]["matrixWidth"] == 4096
    sets = client.get("/ogc/tileMatrixSets").json["tileMatrixSets"]
    assert [s["id"] for s in sets] == ["WebMercatorQuad"]
    assert client.get(local(sets[0]["links"][0]["href"])).json == tms
    dataset = client.get("/ogc/tiles/WebMercatorQuad").json
    assert [la["id"] for la in dataset["layers"]] == POINT_LAYERS
    assert "crs=gcj02" in link(client.get("/ogc/tiles/WebMercatorQuad?crs=gcj02").json, "item")["href"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in TILES_CONFORMANCE
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core" in TILES_CONFORMANCE


# --- caching: ETag, 304, gzip, one build per data version -------------------------------------------------------------
def test_etag_304_and_gzip(client, app):
    url = tile_url("stations", 11, 1715, 836)
    raw = client.get(url)
    etag = raw.headers["ETag"]
    assert raw.status_code == 200 and "Content-Encoding" not in raw.headers and raw.headers["Vary"] == "Accept-Encoding"
    assert raw.headers["Access-Control-Allow-Origin"] == "*" and raw.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and packed.headers["ETag"] == etag[:-1] + '-gzip"'
    assert gzip.decompress(packed.get_data()) == raw.get_data()
    assert len(packed.get_data()) < len(raw.get_data()) / 3
    assert client.get(url, headers={"If-None-Match": packed.headers["ETag"]}).status_code == 304
    assert client.get(url + "?crs=gcj02").headers["ETag"] != etag
    assert client.get(url.replace("stations", "canteens")).headers["ETag"] != etag
    head = client.head(url)
    assert head.status_code == 200 and head.get_data() == b"" and head.headers["ETag"] == etag
    # the .pbf spelling is the same tile
    same = client.get(url + ".pbf")
    assert same.get_data() == raw.get_data() and same.headers["ETag"] == etag


def test_a_tile_is_built_once(client, app):
    builder = app.extensions["tiles"]
    url = tile_url("rest_rooms", 10, 857, 418, "crs=gcj02")
    first = client.get(url).get_data()
    builds, hits = builder.builds, builder.hits
    for _ in range(3):
        assert client.get(url).get_data() == first
    assert (builder.builds, builder.hits) == (builds, hits + 3)
    assert builder.cached_bytes <= builder.max_bytes


def test_the_cache_keeps_to_its_budget(service):
    from geoserver.serving.tiles import TileAddress, TileBuilder
    layer = service.layer("stations")
    builder = TileBuilder(max_bytes=120_000)      # room for about two z=12 tiles of the centre (49 KB each)
    tiles = [TileAddress(12, 3430 + i, 1673) for i in (-1, 0, 1, 2)]
    sizes = [len(builder.layer_tile(layer, "wgs84", a).data) for a in tiles]
    assert all(s > 20_000 for s in sizes[:3]), sizes
    assert builder.cached_bytes <= 120_000 and len(builder) < 4 and builder.builds == 4
    builder.layer_tile(layer, "wgs84", tiles[-1])          # the newest is kept
    assert builder.builds == 4 and builder.hits == 1


def test_a_new_data_version_makes_new_tiles(tmp_path, tiny_layers_dir):
    write_tiny_layers(tmp_path / "data")
    svc = GeoService(tmp_path / "data", tiny_layers_dir)
    client = create_app(service=svc).test_client()
    tile = (14, 13719, 6693)      # holds the tiny stations A (121.45, 31.25) and B (121.46, 31.25)
    url = tile_url("stations", *tile)
    first = client.get(url)
    assert sorted(f["properties"]["id"] for f in decode(first)["stations"]["features"]) == ["A", "B"]
    stations = gpd.read_file(tmp_path / "data" / "stations.gpkg")
    stations.loc[stations["id"] == "B", "geometry"] = Point(121.30, 31.10)
    stations.to_file(tmp_path / "data" / "stations.gpkg", layer="stations", driver="GPKG")
    assert svc.refresh(force=True) == ["stations"]
    second = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert [f["properties"]["id"] for f in decode(second)["stations"]["features"]] == ["A"]


# --- errors -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url,status,parameter", [
    (tile_url("stations", 17, 0, 0), 404, "z"),
    (tile_url("stations", 12, 4096, 0), 404, "x"),
    (tile_url("stations", 12, 0, 4096), 404, "y"),
    (tile_url("stations", 0, 1, 0), 404, "x"),
    ("/ogc/collections/stations/tiles/WebMercatorQuad/1x/0/0", 400, "z"),
    ("/ogc/collections/stations/tiles/WebMercatorQuad/12/-1/0", 400, "x"),
    ("/ogc/collections/stations/tiles/WebMercatorQuad/12/3430/1673.png", 400, "y"),
    ("/ogc/collections/nope/tiles/WebMercatorQuad/12/3430/1673", 404, "layer"),
    ("/ogc/collections/nope/tiles/WebMercatorQuad/tilejson.json", 404, "layer"),
    ("/ogc/collections/nope/tiles", 404, "layer"),
    ("/ogc/collections/stations/tiles/WorldCRS84Quad/12/3430/1673", 404, "tileMatrixSetId"),
    ("/ogc/collections/stations/tiles/WorldCRS84Quad", 404, "tileMatrixSetId"),
    ("/ogc/tileMatrixSets/WorldCRS84Quad", 404, "tileMatrixSetId"),
    ("/ogc/tiles/WorldCRS84Quad/tilejson.json", 404, "tileMatrixSetId"),
    (tile_url("stations", *PEOPLES_SQUARE, "bbox=1,2,3,4"), 400, "bbox"),
    (tile_url("stations", *PEOPLES_SQUARE, "f=png"), 400, "f"),
    (tile_url(None, *PEOPLES_SQUARE, "crs=bd09"), 400, "crs"),
    ("/ogc/collections/stations/tiles/WebMercatorQuad/tilejson.json?f=html", 400, "f"),
    ("/ogc/tileMatrixSets?crs=gcj02", 400, "crs"),
])
def test_errors_are_json_naming_the_problem(client, url, status, parameter):
    r = client.get(url)
    assert r.status_code == status, (url, r.status_code)
    assert r.mimetype == "application/json" and r.json["parameter"] == parameter, r.json
    assert r.json["code"] == ("NotFound" if status == 404 else "InvalidParameterValue") and r.json["description"]


def test_tile_formats_are_accepted(client):
    for query in ("f=mvt", "f=application/vnd.mapbox-vector-tile"):
        assert client.get(tile_url("stations", *PEOPLES_SQUARE, query)).mimetype == MVT


# --- nothing private ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [*POINT_LAYERS, "districts", None])
def test_tiles_carry_public_fields_only(client, service, layer):
    layers = decode(client.get(tile_url(layer, 9, 428, 209)))
    for lid, content in layers.items():
        spec = service.layers[lid].spec
        public = {f.name for f in spec.public_fields}
        keys = {k for f in content["features"] for k in f["properties"]}
        assert keys and keys <= TILE_KEYS and keys - {"sample"} <= public, (lid, keys)
        assert not keys & set(spec.private_fields) and not keys & {"contact_name", "contact_phone", "source"}
        samples = [f["properties"].get("sample") for f in content["features"]]
        assert set(samples) == ({True} if lid != "districts" else {None})   # the bundled facilities are samples
        values = json.dumps([f["properties"] for f in content["features"]], ensure_ascii=False)
        assert not re.search(r"1[3-9]\d{9}", values), lid       # no mobile numbers
