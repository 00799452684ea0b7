"""The nearest facilities to one point (``GET /api/nearest``) or to many (``POST /api/nearest``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..core import query as q
from ..core.errors import GeoServerError, InvalidQuery, LayerNotFound
from ..operations import Operation, Param, register

MAX_BATCH_POINTS = 10_000
#: The most features one batch answer may hold (points x k): about 30 MB of JSON.
MAX_BATCH_FEATURES = 50_000


def _services(param: Param, raw, service) -> tuple[str, ...]:
    if isinstance(raw, list):
        raw = ",".join(str(s) for s in raw)
    return q.service_list(q.text({param.name: raw}, param.name), service.vocab, param.name)


def _moment(param: Param, raw, service) -> datetime:
    return q.moment(q.text({param.name: raw}, param.name), param.name)


def _datum(param: Param, raw, service) -> str:
    return q.datum(q.text({param.name: raw}, param.name), param.name)


def _coordinate(param: Param, raw, service):
    """Kept as given (text or a JSON number): ``q.point`` checks the pair together (range, swapped axes)."""
    return q.text({param.name: raw}, param.name) if isinstance(raw, str) else raw


OPTIONS = (
    Param("layer", "str", "Point layer to search", "搜索的图层", default="stations"),
    Param("k", "int", "How many facilities to return", "返回数量", default=5, minimum=1, maximum=q.MAX_K,
          empty_is_absent=False),
    Param("max_distance_m", "float", "Only facilities within this geodesic distance", "最大距离", unit="m",
          minimum=0, exclusive_minimum=True, maximum=q.MAX_DISTANCE_M),
    Param("services", "list", "Only facilities offering all these services (comma-separated ids or Chinese labels, "
          "e.g. charging,microwave or 充电,热饭)", "所需服务", parser=_services),
    Param("open_now", "bool", "Only facilities open at `at` (unknown opening hours never count as open)",
          "仅显示营业中", default=False),
    Param("at", "datetime", "Time to evaluate opening hours at (ISO 8601; naive = Shanghai time)", "时间",
          default_text="now (Asia/Shanghai)", parser=_moment),
    Param("crs", "enum", "Coordinate system of the query point and of the returned coordinates", "坐标系",
          default="wgs84", choices=("wgs84", "gcj02", "bd09"), parser=_datum),
)


@dataclass(frozen=True)
class NearestOptions:
    """Everything of a nearest question but the point."""

    layer: str
    k: int
    max_distance_m: float | None
    services: tuple[str, ...]
    open_now: bool
    at: datetime
    datum: str

    def as_dict(self) -> dict:
        """The keyword arguments of ``query.NearestQuery`` (besides lon, lat)."""
        return dict(layer=self.layer, k=self.k, max_distance_m=self.max_distance_m, services=self.services,
                    open_now=self.open_now, at=self.at, datum=self.datum)

    def query(self, lon: float, lat: float) -> q.NearestQuery:
        return q.NearestQuery(lon=lon, lat=lat, **self.as_dict())


def _options(values: dict, service) -> NearestOptions:
    layer = values["layer"] or "stations"
    try:
        service.point_layer(layer)
    except LayerNotFound as exc:
        raise InvalidQuery(exc.message, "layer") from None
    return NearestOptions(layer=layer, k=values["k"], max_distance_m=values["max_distance_m"],
                          services=values["services"], open_now=bool(values["open_now"]), at=values["at"],
                          datum=values["crs"])


@dataclass(frozen=True)
class NearestRequest:
    options: NearestOptions
    lon: float          # WGS84
    lat: float
    given: tuple        # the point as given (in options.datum)


@dataclass(frozen=True)
class NearestResult:
    features: tuple
    query: dict

    def to_geojson(self) -> dict:
        return {"type": "FeatureCollection", "features": list(self.features), "numberReturned": len(self.features),
                "query": self.query}

    to_dict = to_geojson


class Nearest(Operation):
    name = "nearest"
    summary = "The nearest facilities to a point, sorted by geodesic distance"
    what = "query parameter"
    params = (Param("lon", "float", "Longitude of the query point", "经度", unit="degree", required=True,
                    minimum=-180, maximum=180, parser=_coordinate),
              Param("lat", "float", "Latitude of the query point", "纬度", unit="degree", required=True,
                    minimum=-90, maximum=90, parser=_coordinate),
              *OPTIONS)

    def build(self, values: dict, service) -> NearestRequest:
        opts = _options(values, service)
        lon, lat = q.point(values["lon"], values["lat"], opts.datum)
        return NearestRequest(opts, lon, lat, (float(values["lon"]), float(values["lat"])))

    def run(self, service, request: NearestRequest) -> NearestResult:
        _, features = service.nearest(request.options.query(request.lon, request.lat))
        query = {"lon": request.given[0], "lat": request.given[1], "crs": request.options.datum,
                 "at": request.options.at.isoformat(timespec="seconds")}
        return NearestResult(tuple(features), query)


def _points(param: Param, raw, service) -> tuple:
    if not isinstance(raw, list) or not raw:
        raise InvalidQuery("points must be a non-empty list of [lon, lat] or {id, lon, lat}", "points")
    if len(raw) > MAX_BATCH_POINTS:
        raise InvalidQuery(f"at most {MAX_BATCH_POINTS} points per request, got {len(raw)}", "points")
    return tuple(raw)


@dataclass(frozen=True)
class BatchRequest:
    options: NearestOptions
    points: tuple       # as given: each checked when answered (a bad point gets its own error)


@dataclass(frozen=True)
class BatchResult:
    options: NearestOptions
    results: tuple

    def to_dict(self) -> dict:
        return {"layer": self.options.layer, "k": self.options.k, "crs": self.options.datum,
                "at": self.options.at.isoformat(timespec="seconds"), "results": list(self.results)}


class BatchNearest(Operation):
    name = "nearest_batch"
    summary = "The nearest facilities to each of many points (one FeatureCollection, or an error, per point)"
    what = "field"
    body_example = '{"layer": "stations", "k": 3, "points": [[121.47, 31.23]]}'
    params = (Param("points", "list", f"Up to {MAX_BATCH_POINTS:,} points, each [lon, lat] or {{id, lon, lat}}",
                    "查询点", required=True, parser=_points, cli=False,
                    schema={"type": "array", "minItems": 1, "maxItems": MAX_BATCH_POINTS}),
              *OPTIONS)

    def build(self, values: dict, service) -> BatchRequest:
        opts = _options(values, service)
        points = values["points"]
        if len(points) * opts.k > MAX_BATCH_FEATURES:
            raise InvalidQuery(f"{len(points):,} points x k={opts.k} asks for {len(points) * opts.k:,} features, "
                               f"more than the {MAX_BATCH_FEATURES:,} one answer may hold; send at most "
                               f"{MAX_BATCH_FEATURES // opts.k:,} points per request with this k, or a smaller k", "k")
        return BatchRequest(opts, points)

    def run(self, service, request: BatchRequest) -> BatchResult:
        return BatchResult(request.options, tuple(answer_point(service, i, item, request.options)
                                                  for i, item in enumerate(request.points)))


def answer_point(service, i: int, item, opts: NearestOptions) -> dict:
    """One point of a batch: its FeatureCollection, or its own error."""
    pid = None
    try:
        if isinstance(item, dict):
            pid = item.get("id")
            raw_lon, raw_lat = item.get("lon"), item.get("lat")
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            raw_lon, raw_lat = item
        else:
            raise InvalidQuery("each point must be [lon, lat] or {id, lon, lat}", f"points[{i}]")
        lon, lat = q.point(raw_lon, raw_lat, opts.datum, f"points[{i}].lon", f"points[{i}].lat")
        _, features = service.nearest(opts.query(lon, lat))
        out = NearestResult(tuple(features), {"lon": float(raw_lon), "lat": float(raw_lat)}).to_geojson()
        out.update({"index": i, "id": pid})
        return out
    except GeoServerError as exc:
        return {"index": i, "id": pid if isinstance(pid, (str, int)) else None, "error": exc.to_dict()}


NEAREST = register(Nearest())
NEAREST_BATCH = register(BatchNearest())
