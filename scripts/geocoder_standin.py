#!/usr/bin/env python3
"""A local stand-in for the four geocoding web services (amap, tianditu, tencent, baidu), for tests, benchmarks
and developers without a key.  Stdlib only; listens on 127.0.0.1.

    python scripts/geocoder_standin.py --port 0 --gazetteer FILE.json   # prints "listening on http://127.0.0.1:PORT"

Point ``GEOSERVER_GEOCODER_URL`` (or ``make_geocoder(..., base_url=...)``) at it.  It answers each provider's
request path in that provider's JSON format and datum, taking the coordinates VERBATIM from the gazetteer (it never
converts), with the level text that provider uses for the entry's precision class.  A gazetteer is a JSON list of

    {"address": "上海市黄浦区人民大道200号", "precision": "house", "wgs84": [lon, lat], "gcj02": [lon, lat],
     "bd09": [lon, lat], "formatted": "…", "adcode": "310101"}

with precision one of house, building, poi, road, town, district, none ("none": the provider knows no place for
it and gives its no-result answer, as for an address not in the gazetteer).

Failure modes (``StandIn.set_mode(mode, count)`` or ``POST /_control {"mode": …, "count": n}``): ok, quota,
invalid_key, timeout (no answer for 30 s, ends at once on stop), http500, slow (answers after ~1 s), busy (the
provider's too-many-requests code).  ``count`` applies the mode to the next n requests only, then back to ok.  The
key ``BADKEY`` always gets the invalid-key answer.  ``GET /_requests`` returns the request log (keys included).

Tests import it by path (``scripts`` is not a package) with ``importlib.util.spec_from_file_location``.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import unicodedata
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

MODES = ("ok", "quota", "invalid_key", "timeout", "http500", "slow", "busy")
PRECISIONS = ("house", "building", "poi", "road", "town", "district", "none")
BAD_KEY = "BADKEY"
TIMEOUT_SLEEP_S = 30.0
SLOW_SLEEP_S = 1.0

#: request path -> provider
PATHS = {"/v3/geocode/geo": "amap", "/geocoder": "tianditu", "/ws/geocoder/v1/": "tencent",
         "/ws/geocoder/v1": "tencent", "/geocoding/v3/": "baidu", "/geocoding/v3": "baidu"}
#: the datum each provider answers in (Tianditu's CGCS2000 is given as the WGS84 values)
DATUM = {"amap": "gcj02", "tianditu": "wgs84", "tencent": "gcj02", "baidu": "bd09"}
KEY_PARAM = {"amap": "key", "tianditu": "tk", "tencent": "key", "baidu": "ak"}
#: the level each provider reports for a precision class (Tencent: its integer level)
LEVELS = {
    "amap": {"house": "门牌号", "building": "单元号", "poi": "兴趣点", "road": "道路", "town": "乡镇",
             "district": "区县"},
    "tianditu": {"house": "门址", "building": "地产小区", "poi": "地名地址", "road": "道路", "town": "乡镇",
                 "district": "区县"},
    "tencent": {"house": 9, "building": 10, "poi": 11, "road": 7, "town": 3, "district": 2},
    "baidu": {"house": "门址", "building": "商务大厦", "poi": "政府机构", "road": "道路", "town": "乡镇",
              "district": "区县"},
}
_POINT = ("house", "building", "poi")
_CONFIDENCE = {"house": 80, "building": 75, "poi": 70, "road": 30, "town": 20, "district": 15}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text or "")).strip()


def _strip_city(text: str) -> str:
    return text.removeprefix("上海市").removeprefix("上海")


def _error(provider: str, kind: str, key: str) -> tuple[int, dict]:
    """(HTTP status, JSON body) of the provider's own answer for quota / invalid_key / busy."""
    if provider == "amap":  # lbs.amap.com infocode table
        info, code = {"quota": ("DAILY_QUERY_OVER_LIMIT", "10003"), "invalid_key": ("INVALID_USER_KEY", "10001"),
                      "busy": ("CUQPS_HAS_EXCEEDED_THE_LIMIT", "10021")}[kind]
        return 200, {"status": "0", "info": info, "infocode": code}
    if provider == "tianditu":  # HTTP 403 {"msg","resolve","code"} for a bad tk; quota/busy wording assumed
        return {"quota": (403, {"msg": "单日访问量超限", "resolve": "请到API控制台查看配额，或次日再试"}),
                "invalid_key": (403, {"msg": "非法Key", "resolve": "请到API控制台重新申请Key", "code": 1}),
                "busy": (429, {"msg": "并发访问超限", "resolve": "请降低访问频率"})}[kind]
    if provider == "tencent":  # lbs.qq.com status codes
        status, message = {"quota": (121, "此key每日调用量已达到上限"), "invalid_key": (190, "无效的KEY"),
                           "busy": (120, "此key每秒请求量已达到上限")}[kind]
        return 200, {"status": status, "message": message, "request_id": uuid.uuid4().hex}
    # baidu: lbsyun status codes; the auth failure echoes the ak, as Baidu's "invaid AK : ${key}" answers do
    status, message = {"quota": (302, "天配额超限，限制访问"),
                       "invalid_key": (200, f"APP不存在，AK有误 (Failed to authenticate for invaid AK : {key})"),
                       "busy": (401, "当前并发量已经超过约定并发配额，限制访问")}[kind]
    return 200, {"status": status, "message": message}


def _not_found(provider: str) -> dict:
    return {"amap": {"status": "1", "info": "OK", "infocode": "10000", "count": "0", "geocodes": []},
            "tianditu": {"msg": "无结果", "status": "101", "searchVersion": "6.4.9V"},
            "tencent": {"status": 347, "message": "查询无结果", "request_id": uuid.uuid4().hex},
            "baidu": {"status": 1, "msg": "Internal Service Error:无相关结果", "results": []}}[provider]


def _found(provider: str, entry: dict, query: str) -> dict:
    lon, lat = entry[DATUM[provider]]
    precision = entry["precision"]
    level = LEVELS[provider][precision]
    point = precision in _POINT
    if provider == "amap":
        geocode = {"formatted_address": entry.get("formatted") or entry["address"], "country": "中国",
                   "province": "上海市", "citycode": "021", "city": "上海市", "district": entry.get("district", []),
                   "township": [], "neighborhood": {"name": [], "type": []}, "building": {"name": [], "type": []},
                   "adcode": entry.get("adcode") or [], "street": [], "number": [],
                   "location": f"{lon},{lat}", "level": level}
        return {"status": "1", "info": "OK", "infocode": "10000", "count": "1", "geocodes": [geocode]}
    if provider == "tianditu":
        return {"msg": "ok", "status": "0", "searchVersion": "6.4.9V",
                "location": {"score": 100 if point else 60, "level": level, "lon": str(lon), "lat": str(lat),
                             "keyWord": query}}
    if provider == "tencent":
        return {"status": 0, "message": "query ok", "request_id": uuid.uuid4().hex,
                "result": {"title": entry.get("formatted") or entry["address"], "location": {"lng": lon, "lat": lat},
                           "ad_info": {"adcode": entry.get("adcode") or ""},
                           "address_components": {"province": "上海市", "city": "上海市", "district": "",
                                                  "street": "", "street_number": ""},
                           "similarity": 0.8, "deviation": 1000, "reliability": 7 if point else 3, "level": level}}
    return {"status": 0, "result": {"location": {"lng": lon, "lat": lat}, "precise": 1 if point else 0,
                                    "confidence": _CONFIDENCE[precision], "comprehension": 100 if point else 60,
                                    "level": level}}


class _Server(ThreadingHTTPServer):
    """Stamps each connection when it is accepted, so the request log's clock is not delayed by thread start-up."""

    daemon_threads = True

    def get_request(self):
        sock, address = super().get_request()
        self.stamps[id(sock)] = time.monotonic()
        return sock, address


class StandIn:
    """The stand-in server: ``start()``, ``url``, ``set_mode()``, ``requests`` (the log), ``stop()``."""

    def __init__(self, gazetteer: list[dict], host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.requests: list[dict] = []
        self._index: dict[str, dict] = {}
        for entry in gazetteer:
            self._check(entry)
            self._index.setdefault(_norm(entry["address"]), entry)
            self._index.setdefault(_strip_city(_norm(entry["address"])), entry)
        self._lock = threading.Lock()
        self._mode, self._count = "ok", None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @staticmethod
    def _check(entry: dict) -> None:
        if not isinstance(entry.get("address"), str) or entry.get("precision") not in PRECISIONS:
            raise ValueError(f"gazetteer entry needs an address and a precision in {PRECISIONS}: {entry!r}")
        if entry["precision"] != "none":
            for datum in ("wgs84", "gcj02", "bd09"):
                value = entry.get(datum)
                if not (isinstance(value, (list, tuple)) and len(value) == 2
                        and all(isinstance(v, (int, float)) for v in value)):
                    raise ValueError(f"gazetteer entry {entry['address']!r} needs {datum}: [lon, lat]")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> StandIn:
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.stamps = {}
        self._server.standin = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="geocoder-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in timeout/slow mode
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def set_mode(self, mode: str, count: int | None = None) -> None:
        """Answer in ``mode`` from now on, or for the next ``count`` requests only."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")
        if count is not None and int(count) <= 0:
            mode, count = "ok", None
        with self._lock:
            self._mode = mode
            self._count = None if count is None or mode == "ok" else int(count)

    def lookup(self, query: str) -> dict | None:
        query = _norm(query)
        entry = self._index.get(query) or self._index.get(_strip_city(query))
        return None if entry is None or entry["precision"] == "none" else entry

    def _next_mode(self, key: str) -> str:
        if key == BAD_KEY:
            return "invalid_key"
        with self._lock:
            mode = self._mode
            if self._count is not None:
                self._count -= 1
                if self._count <= 0:
                    self._mode, self._count = "ok", None
            return mode


class _Handler(BaseHTTPRequestHandler):
    server_version = "GeocoderStandIn/1"

    def log_message(self, format, *args):  # quiet: the request log is StandIn.requests
        pass

    def handle(self):
        self.arrived = self.server.stamps.pop(id(self.request), None) or time.monotonic()
        super().handle()

    def _send(self, status: int, body, content_type: str = "application/json; charset=utf-8") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout mode)
            pass

    def do_POST(self):
        standin: StandIn = self.server.standin
        if urllib.parse.urlsplit(self.path).path != "/_control":
            return self._send(404, {"error": "not found"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            standin.set_mode(body.get("mode", "ok"), body.get("count"))
        except (ValueError, TypeError, AttributeError) as exc:
            return self._send(400, {"error": str(exc)})
        return self._send(200, {"mode": standin._mode, "count": standin._count})

    def do_GET(self):
        standin: StandIn = self.server.standin
        parts = urllib.parse.urlsplit(self.path)
        if parts.path == "/_requests":
            with standin._lock:
                log = list(standin.requests)
            return self._send(200, log)
        provider = PATHS.get(parts.path)
        if provider is None:
            return self._send(404, {"error": f"unknown path {parts.path}"})
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
        key = params.get(KEY_PARAM[provider], "")
        mode = standin._next_mode(key)
        with standin._lock:
            standin.requests.append({"time": self.arrived, "provider": provider, "path": parts.path,
                                     "params": params, "mode": mode})
        if mode == "timeout":
            standin._stopping.wait(TIMEOUT_SLEEP_S)
            return None  # no answer: the connection just closes
        if mode == "http500":
            return self._send(500, b"Internal Server Error", "text/plain; charset=utf-8")
        if mode == "slow" and standin._stopping.wait(SLOW_SLEEP_S):
            return None
        if mode in ("quota", "invalid_key", "busy"):
            return self._send(*_error(provider, mode, key))
        return self._send(200, self._answer(standin, provider, params))

    @staticmethod
    def _answer(standin: StandIn, provider: str, params: dict) -> dict:
        if provider == "tianditu":
            try:
                query = json.loads(params.get("ds") or "{}").get("keyWord", "")
            except (ValueError, AttributeError):
                return {"msg": "参数错误", "status": "404"}
        else:
            query = params.get("address", "")
        entry = standin.lookup(query)
        return _not_found(provider) if entry is None else _found(provider, entry, query)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed)")
    parser.add_argument("--gazetteer", required=True, help="JSON list of gazetteer entries")
    parser.add_argument("--mode", default="ok", choices=MODES, help="initial mode")
    args = parser.parse_args(argv)
    with open(args.gazetteer, encoding="utf-8") as f:
        gazetteer = json.load(f)
    standin = StandIn(gazetteer, args.host, args.port).start()
    standin.set_mode(args.mode)
    print(f"listening on {standin.url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
