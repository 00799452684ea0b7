"""Geocoding of Chinese addresses through the web services union staff already use, behind one small interface.

``make_geocoder("amap", key)`` (or ``geocoder_from_env()``) gives a ``Geocoder``; wrap it in a ``CachedGeocoder``
so the same address is never paid for twice.  Every candidate comes back in WGS84 (converted with ``crs.to_wgs84``
from the provider's datum), with the provider's own precision level and a ``precise`` flag (see ``is_precise``).

Errors: ``GeocoderStop`` (quota, bad key, IP not allowed: a batch must stop), ``GeocoderUnavailable`` (timeouts,
connection errors, HTTP 5xx, unparseable answers, still failing after the retries), ``GeocoderError`` otherwise.
The key never appears in an exception message or a log line: providers echo it back, so it is scrubbed.

Protocols as documented by the providers (checked 2026; sources in the docstring of each subclass):
amap ``/v3/geocode/geo``, tianditu ``/geocoder?ds={"keyWord":…}``, tencent ``/ws/geocoder/v1/``,
baidu ``/geocoding/v3/``.  ``scripts/geocoder_standin.py`` speaks all four on 127.0.0.1 for tests.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from . import crs
from .errors import GeoServerError

log = logging.getLogger(__name__)

PROVIDERS = ("amap", "tianditu", "tencent", "baidu")
DEFAULT_CITY = "上海市"
_BACKOFF_CAP_S = 4.0


# --------------------------------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Candidate:
    """One place a provider proposes for an address, already in WGS84."""

    lon: float
    lat: float
    level: str  # the provider's own precision level text (Tencent's integer as text)
    precise: bool  # house number / building / POI level only (see is_precise)
    formatted: str | None = None  # the provider's formatted address or title
    adcode: str | None = None  # 6-digit district code, when the provider gives one

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GeocodeAnswer:
    """A definitive answer: ``candidates`` best first, ``()`` meaning "not found"."""

    provider: str
    query: str
    candidates: tuple[Candidate, ...]
    cached: bool = False

    def to_dict(self) -> dict:
        return {"provider": self.provider, "query": self.query, "cached": self.cached,
                "candidates": [c.to_dict() for c in self.candidates]}


class GeocoderError(GeoServerError):
    """A geocoding request failed (base class; a plain one concerns this address only, e.g. rejected input)."""

    code = "GeocoderError"


class GeocoderStop(GeocoderError):
    """Quota used up, key invalid or unauthorised, or this server's IP not allowed: the whole batch must stop.

    ``reason`` is "quota", "key" or "ip".
    """

    def __init__(self, message: str, reason: str = "key"):
        super().__init__(message)
        self.reason = reason


class GeocoderUnavailable(GeocoderError):
    """The provider could not be reached or did not answer usably, even after the retries: try again later."""


class _Retry(Exception):
    """A transient failure worth another attempt (timeout, connection error, HTTP 5xx, "too many requests")."""


# --------------------------------------------------------------------------------------------------- helpers


def normalise_query(text: str) -> str:
    """The cache key form of an address: NFKC (full-width digits and spaces become ASCII), trimmed, single spaces."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text or "")).strip()


def _text(value) -> str | None:
    """A non-empty string field, or None (Amap sends ``[]`` for empty fields)."""
    return (value.strip() or None) if isinstance(value, str) else None


def _adcode(value) -> str | None:
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    return text if re.fullmatch(r"\d{6}", text) else None


def _with_city(address: str, city: str) -> str:
    """Prefix the city when the address lacks it (Tencent and Tianditu take no separate city parameter)."""
    short = city.removesuffix("市")
    return address if not short or short in address else city + address


class _KeyRedactor(logging.Filter):
    """Scrubs registered keys from urllib3's DEBUG lines, which print the full request URL with its query."""

    def __init__(self):
        super().__init__()
        self.keys: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.keys:
            message = record.getMessage()
            scrubbed = _scrub(message, self.keys)
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


def _scrub(text: str, keys) -> str:
    """Replace every key (raw or URL-encoded) by ***; keys under 4 characters are test stubs, left alone."""
    for key in keys:
        if len(key) < 4:
            continue
        for form in {key, urllib.parse.quote(key, safe=""), urllib.parse.quote_plus(key)}:
            text = text.replace(form, "***")
    return text


_REDACTOR = _KeyRedactor()
logging.getLogger("urllib3.connectionpool").addFilter(_REDACTOR)


class RateLimiter:
    """Thread-safe spacing: successive ``wait()`` calls return at least ``1/qps`` seconds apart.

    The next slot is counted from the moment a caller was actually released (not from its planned slot), so a
    late wake-up on a busy machine never lets the following request go out early.
    """

    def __init__(self, qps: float):
        self.interval = 1.0 / qps if qps and qps > 0 else 0.0
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self) -> None:
        with self._lock:  # held while sleeping: waiting callers queue up behind it
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next = time.monotonic() + self.interval


_STOP_TEXT = {  # reason -> (Chinese, English, what to do)
    "quota": ("今日调用配额已用完或超限", "quota exceeded",
              ("批量地理编码已停止：请明天再试，或在服务商控制台提升配额。"
               " Batch stopped: try again tomorrow or raise the quota in the provider's console.")),
    "key": ("key 无效或未获授权", "invalid or unauthorised key",
            ("批量地理编码已停止：请检查 GEOSERVER_GEOCODER_KEY，并确认该 key 已开通 Web 服务（服务端）地理编码。"
             " Batch stopped: check GEOSERVER_GEOCODER_KEY and that the key is a web-service key allowed to geocode.")),
    "ip": ("本服务器 IP 不在 key 的白名单内", "this server's IP is not allowed for the key",
           ("批量地理编码已停止：请在服务商控制台把本服务器的出口 IP 加入白名单。"
            " Batch stopped: add this server's outgoing IP to the key's allow-list in the provider's console.")),
}


# --------------------------------------------------------------------------------------------------- providers


class Geocoder:
    """Base class: one subclass per provider fills in ``name``, ``datum``, ``default_url``, ``_request``, ``_parse``."""

    name = ""
    label = ""  # Chinese name for messages
    datum = "wgs84"
    default_url = ""

    def __init__(self, key: str, base_url: str | None = None, *, qps: float = 3.0, timeout_s: float = 5.0,
                 retries: int = 2, session=None, backoff_s: float = 0.5):
        if not key:
            raise GeocoderError(f"{self.name}: an API key is required (GEOSERVER_GEOCODER_KEY)")
        self._key = key
        _REDACTOR.keys.add(key)
        self.base_url = (base_url or self.default_url).rstrip("/")
        self.qps = qps
        self.timeout_s = timeout_s
        self.retries = max(0, int(retries))
        self.backoff_s = backoff_s
        self._session = session or requests.Session()
        self._limiter = RateLimiter(qps)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url} qps={self.qps:g}>"

    def geocode(self, address: str, city: str = DEFAULT_CITY) -> GeocodeAnswer:
        """Ask the provider (retrying transient failures with exponential backoff) and return its candidates."""
        query = normalise_query(address)
        if not query:
            raise GeocoderError("empty address / 地址为空")
        city = normalise_query(city)
        attempts = 1 + self.retries
        reason = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(self.backoff_s * 2 ** (attempt - 1), _BACKOFF_CAP_S))
            self._limiter.wait()
            try:
                return GeocodeAnswer(self.name, query, tuple(self._attempt(query, city)))
            except _Retry as exc:
                reason = self._scrub(str(exc))
                log.info("%s: attempt %d/%d failed: %s", self.name, attempt + 1, attempts, reason)
        raise GeocoderUnavailable(self._scrub(
            f"{self.label}（{self.name}）暂时不可用 / unavailable: {reason}; gave up after {attempts} attempt(s)"))

    # -- one HTTP exchange -------------------------------------------------------------------------------

    def _attempt(self, query: str, city: str) -> list[Candidate]:
        path, params = self._request(query, city)
        try:
            response = self._session.get(self.base_url + path, params=params, timeout=self.timeout_s)
        except requests.Timeout:
            raise _Retry(f"no answer within {self.timeout_s:g} s") from None
        except requests.RequestException as exc:
            raise _Retry(self._scrub(f"connection error ({type(exc).__name__}): {exc}")) from None
        status = response.status_code
        if status >= 500:
            raise _Retry(f"HTTP {status}")
        if status == 429:
            raise _Retry("HTTP 429 too many requests")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            candidates = self._parse(status, body)
            if candidates is not None:
                return candidates
        if status in (401, 403):
            self._stop("key", f"HTTP {status}")
        if status >= 400:
            raise GeocoderError(self._scrub(f"{self.name}: HTTP {status}: {response.text[:200]}"))
        raise GeocoderUnavailable(self._scrub(f"{self.name}: unparseable answer: {response.text[:200]!r}"))

    def _request(self, query: str, city: str) -> tuple[str, dict]:
        """Path and query parameters (key included) for one geocoding request."""
        raise NotImplementedError

    def _parse(self, http_status: int, body: dict) -> list[Candidate] | None:
        """Candidates from a JSON answer (``[]`` = not found), or raise; None = not this provider's format."""
        raise NotImplementedError

    # -- shared pieces -------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return _scrub(text, (self._key,))

    def _stop(self, reason: str, detail: str):
        zh, en, todo = _STOP_TEXT[reason]
        raise GeocoderStop(self._scrub(f"{self.label}（{self.name}）{zh} / {en} ({detail}). {todo}"), reason)

    def _fail(self, detail: str):
        raise GeocoderError(self._scrub(f"{self.label}（{self.name}）拒绝了请求 / rejected the request: {detail}"))

    def _candidates(self, rows: list[tuple[float, float, str, bool, str | None, str | None]]) -> list[Candidate]:
        """Convert (lon, lat, level, precise, formatted, adcode) rows from the provider's datum to WGS84."""
        rows = [r for r in rows if math.isfinite(r[0]) and math.isfinite(r[1])]
        if not rows:
            return []
        lon, lat = crs.to_wgs84([r[0] for r in rows], [r[1] for r in rows], self.datum)
        return [Candidate(float(x), float(y), level, precise, formatted, adcode)
                for x, y, (_, _, level, precise, formatted, adcode) in zip(lon, lat, rows, strict=True)]


def _int_status(body: dict) -> int | None:
    """A numeric ``status`` field (Tencent, Baidu), or None when the answer has none: not the provider's JSON."""
    try:
        return int(body["status"])
    except (KeyError, TypeError, ValueError):
        return None


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class AmapGeocoder(Geocoder):
    """高德 Web 服务 地理编码: GET /v3/geocode/geo?key&address&city; GCJ-02 "lon,lat".

    Sources: lbs.amap.com/api/webservice/guide/api/georegeo (parameters, answer); lbs.amap.com/news/geocoder_api
    ("地理编码接口优化公告", 2023-12-07: the level list below); lbs.amap.com/api/webservice/guide/tools/info and
    lbs.amap.com/api/web-service/tools/info (infocode table).  ``status`` "1" ok / "0" failed, ``info``, ``infocode``.
    """

    name, label, datum, default_url = "amap", "高德地图", "gcj02", "https://restapi.amap.com"
    QUOTA = frozenset({"10003", "10010", "10029", "10044", "10045"})  # daily / per-IP / per-user daily limits
    KEY = frozenset({"10001", "10002", "10006", "10007", "10008", "10009", "10012", "10013"})
    IP = frozenset({"10005"})
    BUSY = frozenset({"10004", "10014", "10015", "10016", "10017", "10019", "10020", "10021"})  # QPS, busy, gateway

    def _request(self, query, city):
        params = {"key": self._key, "address": query, "output": "JSON"}
        if city:
            params["city"] = city
        return "/v3/geocode/geo", params

    def _parse(self, http_status, body):
        if "status" not in body or ("infocode" not in body and "geocodes" not in body):
            return None
        if str(body.get("status")) != "1":
            code, info = str(body.get("infocode", "")), str(body.get("info", ""))
            detail = f"{info}, infocode {code}"
            if code in self.BUSY:
                raise _Retry(detail)
            for reason, codes in (("quota", self.QUOTA), ("key", self.KEY), ("ip", self.IP)):
                if code in codes:
                    self._stop(reason, detail)
            if code.startswith("1"):  # other 1xxxx: platform/auth problems
                self._stop("key", detail)
            self._fail(detail)
        rows = []
        for g in body.get("geocodes") or []:
            lon, _, lat = str(g.get("location") or "").partition(",")
            level = _text(g.get("level")) or ""
            rows.append((_float(lon), _float(lat), level, is_precise("amap", level),
                         _text(g.get("formatted_address")), _adcode(g.get("adcode"))))
        return self._candidates(rows)


class TiandituGeocoder(Geocoder):
    """天地图 地理编码: GET /geocoder?ds={"keyWord":…}&tk=KEY; CGCS2000, taken as WGS84 (they differ by centimetres).

    Sources: lbs.tianditu.gov.cn/server/geocodinginterface.html (``status`` "0" ok / "101" empty / "404" error,
    ``msg``, ``location.lon/lat/level/score/keyWord``).  No city parameter: the city is prefixed to the keyword.
    A bad ``tk`` is refused with HTTP 403 and ``{"msg", "resolve", "code"}`` (code 1 "非法Key", 12/18 "权限类型
    错误"), as recorded in public client code rather than on the official page; the quota answer is documented
    nowhere, so any such 403 stops the batch ("quota" when it speaks of 超限/配额/次数/访问量, else "key").
    """

    name, label, datum, default_url = "tianditu", "天地图", "wgs84", "https://api.tianditu.gov.cn"

    def _request(self, query, city):
        ds = json.dumps({"keyWord": _with_city(query, city)}, ensure_ascii=False)
        return "/geocoder", {"ds": ds, "tk": self._key}

    def _parse(self, http_status, body):
        if "resolve" in body or http_status in (401, 403):
            msg = " ".join(str(body[k]) for k in ("msg", "resolve") if body.get(k))
            msg += f", code {body['code']}" if "code" in body else ""
            quota = any(word in msg for word in ("超限", "配额", "次数", "访问量", "limit"))
            self._stop("quota" if quota else "key", f"HTTP {http_status}: {msg}")
        if "status" not in body:
            return None
        status = str(body.get("status"))
        if status == "101":
            return []
        if status != "0":
            self._fail(f"status {status}: {body.get('msg', '')}")
        loc = body.get("location") or {}
        if not isinstance(loc, dict) or "lon" not in loc:
            return []
        level = _text(loc.get("level")) or ""
        return self._candidates([(_float(loc.get("lon")), _float(loc.get("lat")), level, is_precise("tianditu", level),
                                  None, None)])


class TencentGeocoder(Geocoder):
    """腾讯位置服务 地址解析: GET /ws/geocoder/v1/?address&key; GCJ-02 ``result.location.lng/lat``.

    Sources: lbs.qq.com/service/webService/webServiceGuide/address/Geocoder (answer; ``level`` 1-11, "一般>=9即可
    采用"; ``reliability`` 1-10); lbs.qq.com/service/webService/webServiceGuide/status (status codes: 120 per-second
    limit, 121 daily limit, 110-113/190/199/301/311 key problems, 347 查询无结果).  The current page documents no
    ``region``/city parameter and wants the city inside the address, so the city is prefixed when missing.
    """

    name, label, datum, default_url = "tencent", "腾讯地图", "gcj02", "https://apis.map.qq.com"
    KEY = frozenset({110, 111, 113, 160, 161, 190, 199, 301, 311})

    def _request(self, query, city):
        return "/ws/geocoder/v1/", {"address": _with_city(query, city), "key": self._key}

    def _parse(self, http_status, body):
        status = _int_status(body)
        if status is None:
            return None
        detail = f"{body.get('message', '')}, status {status}"
        if status == 0:
            result = body.get("result") or {}
            loc = result.get("location") or {}
            level = result.get("level")
            level_text = "" if level is None else str(level)
            adcode = _adcode((result.get("ad_info") or {}).get("adcode"))
            return self._candidates([(_float(loc.get("lng")), _float(loc.get("lat")), level_text,
                                      is_precise("tencent", level), _text(result.get("title")), adcode)])
        if status == 347:
            return []
        if status == 120:
            raise _Retry(detail)
        if status == 121:
            self._stop("quota", detail)
        if status == 112:
            self._stop("ip", detail)
        if status in self.KEY:
            self._stop("key", detail)
        self._fail(detail)


class BaiduGeocoder(Geocoder):
    """百度地图 地理编码 v3: GET /geocoding/v3/?address&city&output=json&ak; BD-09 (bd09ll) ``result.location``.

    Sources: lbsyun.baidu.com/docs/webapi?title=geocoding/guide/webservice-geocoding-base (parameters;
    ``output`` defaults to xml; ``precise`` 1 = 精确打点, ``confidence``, ``comprehension``, ``level`` 地址类型);
    the level list (UNKNOWN、国家、省、城市、区县、乡镇、村庄、道路、地产小区、商务大厦、政府机构、交叉路口、
    商圈 … 门址) as quoted from the same page in public client code; lbsyun.baidu.com/faq/details?id=2273
    (status: 301/302 quota, 401/402 concurrency, 101-261 key/app problems).  Not found is
    ``status 1, "Internal Service Error:无相关结果"``
    (widely observed; other status 1 answers are server errors and are retried).
    """

    name, label, datum, default_url = "baidu", "百度地图", "bd09", "https://api.map.baidu.com"

    def _request(self, query, city):
        params = {"address": query, "output": "json", "ak": self._key}
        if city:
            params["city"] = city
        return "/geocoding/v3/", params

    def _parse(self, http_status, body):
        status = _int_status(body)
        if status is None:
            return None
        message = str(body.get("msg") or body.get("message") or "")
        detail = f"{message}, status {status}"
        if status == 0:
            result = body.get("result") or {}
            loc = result.get("location") or {}
            level = _text(result.get("level")) or ""
            precise = is_precise("baidu", level, result.get("precise"))
            return self._candidates([(_float(loc.get("lng")), _float(loc.get("lat")), level, precise, None, None)])
        if status == 1:
            if "无相关结果" in message:
                return []
            raise _Retry(detail)
        if status in (401, 402):
            raise _Retry(detail)
        if status in (4, 301, 302):
            self._stop("quota", detail)
        if status == 210:
            self._stop("ip", detail)
        if status in (3, 5, 101, 102) or 200 <= status < 300:
            self._stop("key", detail)
        self._fail(detail)


# --------------------------------------------------------------------------------------------------- precision

AMAP_PRECISE = frozenset({"门牌号", "门址", "单元号", "楼层", "房间", "兴趣点", "住宅区", "公交地铁站点", "地铁站"})
TENCENT_PRECISE_MIN = 9
BAIDU_COARSE = frozenset({"UNKNOWN", "未知", "国家", "省", "省份", "城市", "区县", "乡镇", "村庄", "道路", "交叉路口",
                          "商圈", "工业园区"})
TIANDITU_COARSE = frozenset({"行政区划", "国家", "省", "市", "城市", "区县", "乡镇", "村庄", "道路", "交叉路口", "商圈",
                             "未知", "UNKNOWN"})


def is_precise(provider: str, level, baidu_precise=None) -> bool:
    """Whether a provider's level means house number / building / POI (``Candidate.precise``).

    ======== ========= ======================================================================
    provider           levels
    ======== ========= ======================================================================
    amap     precise   门牌号 门址 单元号 楼层 房间 兴趣点 住宅区 公交地铁站点 地铁站
             not       国家 省 市 区县 开发区 乡镇 村庄 热点商圈 道路 道路交叉路口 小巷
                       公交站台线路 未知, and any level not listed
    tencent  precise   level >= 9: 9 门址, 10 小区/大厦, 11 POI 点
             not       1 城市 2 区县 3 乡镇/街道 4 村/社区 5 开发区 6 热点区域/商圈 7 道路
                       8 道路附属点 (交叉口、收费站、出入口)
    baidu    precise   ``precise == 1`` with a point level: 门址 地产小区 商务大厦 政府机构
                       and the other POI classes (教育 医疗 购物 旅游景点 …)
             not       ``precise == 0`` (模糊打点) whatever the level; UNKNOWN 国家 省 城市
                       区县 乡镇 村庄 道路 交叉路口 商圈 工业园区
    tianditu precise   any level but the coarse ones (seen in answers: 门址 地名地址 地产小区)
             not       行政区划 国家 省 市 城市 区县 乡镇 村庄 道路 交叉路口 商圈 未知, no level
    ======== ========= ======================================================================

    Sources: amap — "地理编码接口优化公告" (lbs.amap.com/news/geocoder_api, 2023-12-07; the older
    names 公交站台线路 and 地铁站 kept); tencent — the ``level`` table of
    lbs.qq.com/service/webService/webServiceGuide/address/Geocoder ("一般>=9即可采用（定位到点，
    精度较高）"); baidu — ``precise`` ("1为精确查找，即准确打点；0为不精确，即模糊打点") and the
    地址类型 list of the geocoding v3 page; tianditu — its page only says "类别名称": the coarse
    names are our assumption, the precise ones were seen in answers.  A 住宅区/小区 (housing
    estate) counts as building level; a 公交站台线路 (bus line) does not.
    """
    if provider == "amap":
        return level in AMAP_PRECISE
    if provider == "tencent":
        return isinstance(level, (int, float)) and not isinstance(level, bool) and level >= TENCENT_PRECISE_MIN
    if provider == "baidu":
        return baidu_precise == 1 and bool(level) and level not in BAIDU_COARSE
    if provider == "tianditu":
        return bool(level) and level not in TIANDITU_COARSE
    raise ValueError(f"unknown geocoder provider {provider!r}")


_CLASSES = {"amap": AmapGeocoder, "tianditu": TiandituGeocoder, "tencent": TencentGeocoder, "baidu": BaiduGeocoder}


def make_geocoder(provider: str, key: str, base_url: str | None = None, **kw) -> Geocoder:
    """The ``Geocoder`` for one of ``PROVIDERS``; ValueError for any other name."""
    cls = _CLASSES.get((provider or "").strip().lower())
    if cls is None:
        raise ValueError(f"unknown geocoder provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    return cls(key, base_url, **kw)


def geocoder_from_env(env: Mapping[str, str] = os.environ) -> Geocoder | None:
    """The geocoder configured by GEOSERVER_GEOCODER* variables, or None when GEOSERVER_GEOCODER is unset/empty."""
    provider = (env.get("GEOSERVER_GEOCODER") or "").strip().lower()
    if not provider:
        return None
    if provider not in PROVIDERS:
        raise GeocoderError(f"GEOSERVER_GEOCODER={provider!r} is not a known geocoder; use one of "
                            f"{', '.join(PROVIDERS)} (or leave it empty for none)", parameter="GEOSERVER_GEOCODER")
    key = (env.get("GEOSERVER_GEOCODER_KEY") or "").strip()
    if not key:
        raise GeocoderError(f"GEOSERVER_GEOCODER={provider} needs its API key in GEOSERVER_GEOCODER_KEY "
                            f"(地理编码服务的 key 未设置)", parameter="GEOSERVER_GEOCODER_KEY")

    def number(name: str, default: float) -> float:
        raw = (env.get(name) or "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            value = math.nan
        if not value > 0:
            raise GeocoderError(f"{name}={raw!r} must be a positive number", parameter=name)
        return value

    url = (env.get("GEOSERVER_GEOCODER_URL") or "").strip() or None
    return make_geocoder(provider, key, url, qps=number("GEOSERVER_GEOCODER_QPS", 3.0),
                         timeout_s=number("GEOSERVER_GEOCODER_TIMEOUT_S", 5.0))


# --------------------------------------------------------------------------------------------------- cache


class GeocodeCache:
    """A sqlite file of definitive answers (found or not found, never errors), shared safely by processes (WAL)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS geocode (provider TEXT NOT NULL, city TEXT NOT NULL, "
                       "query TEXT NOT NULL, candidates TEXT NOT NULL, stored_at REAL NOT NULL, "
                       "PRIMARY KEY (provider, city, query))")

    @contextlib.contextmanager
    def _connect(self):
        """This thread's autocommit connection (opened once per thread; sqlite connections must not be shared
        between threads). ``synchronous=NORMAL`` in WAL mode: a crash of the process loses nothing, a power cut
        at worst the last answers, which are asked again; each answer stored is one cheap append, not an fsync."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        yield db

    def get(self, provider: str, query: str, city: str) -> GeocodeAnswer | None:
        query = normalise_query(query)
        with self._connect() as db:
            row = db.execute("SELECT candidates FROM geocode WHERE provider=? AND city=? AND query=?",
                             (provider, normalise_query(city), query)).fetchone()
        if row is None:
            return None
        candidates = tuple(Candidate(**c) for c in json.loads(row[0]))
        return GeocodeAnswer(provider, query, candidates, cached=True)

    def put(self, answer: GeocodeAnswer, city: str) -> None:
        payload = json.dumps([c.to_dict() for c in answer.candidates], ensure_ascii=False)
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO geocode VALUES (?, ?, ?, ?, ?)",
                       (answer.provider, normalise_query(city), normalise_query(answer.query), payload, time.time()))

    def __len__(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM geocode").fetchone()[0]


class CachedGeocoder:
    """What callers use: answers come from the cache when present, so the same address is never paid for twice."""

    def __init__(self, geocoder: Geocoder, cache: GeocodeCache):
        self.geocoder = geocoder
        self.cache = cache
        self.name = geocoder.name

    def geocode(self, address: str, city: str = DEFAULT_CITY, refresh: bool = False) -> GeocodeAnswer:
        """Cached answer, or ask the provider and store it; ``refresh`` asks again (a "not found" may have improved)."""
        if not refresh:
            hit = self.cache.get(self.name, address, city)
            if hit is not None:
                return hit
        answer = self.geocoder.geocode(address, city)
        self.cache.put(answer, city)
        return answer
