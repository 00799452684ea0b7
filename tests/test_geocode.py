"""Geocoding providers, the cache and the stand-in server: no internet, everything against 127.0.0.1.

The truth is a set of real Shanghai places given as literal WGS84 points.  Their GCJ-02 and BD-09 coordinates in
the stand-in's gazetteer are computed independently of ``geoserver.core.crs`` by the npm package gcoord (pinned
1.0.7 in tests/js, installed by scripts/install_test_js.sh) run with node; the stand-in repeats them verbatim, so
a candidate within 1 m of the truth proves our parsing and inverse datum conversion.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import itertools
import json
import logging
import math
import select
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from pathlib import Path

import pytest
import requests

from geoserver.core import crs
from tests.gcoord_truth import gcoord_datums
from geoserver.core.geocode import (
    PROVIDERS,
    CachedGeocoder,
    Candidate,
    GeocodeAnswer,
    GeocodeCache,
    GeocoderError,
    GeocoderStop,
    GeocoderUnavailable,
    geocoder_from_env,
    is_precise,
    make_geocoder,
    normalise_query,
)

ROOT = Path(__file__).resolve().parents[1]
STANDIN_PATH = ROOT / "scripts" / "geocoder_standin.py"

#: address, precision class, WGS84 truth (lon, lat), adcode, formatted
PLACES = [
    ("上海市黄浦区人民大道200号", "house", (121.4737, 31.2304), "310101", "上海市黄浦区人民大道200号（人民广场）"),
    ("上海市浦东新区世纪大道1号", "poi", (121.4951, 31.2419), "310115", "东方明珠广播电视塔（陆家嘴）"),
    ("上海市松江区文汇路300号", "building", (121.2172, 31.0504), "310117", "松江大学城"),
    ("上海市崇明区城桥镇", "town", (121.3973, 31.6231), "310151", "崇明区城桥镇"),
    ("上海市黄浦区南京东路", "road", (121.4806, 31.2389), "310101", "南京东路"),
    ("上海市浦东新区", "district", (121.5447, 31.2224), "310115", "浦东新区"),
    ("上海市嘉定区安亭镇墨玉南路888号", "none", (121.1650, 31.2950), "310114", None),
]
#: gcoord 1.0.7's WGS84 -> GCJ-02 of the first six truth points, as literals (guards the truth generator itself)
GCJ02_LITERAL = [(121.478223059, 31.228457738), (121.499549904, 31.239901118), (121.221629045, 31.048301618),
                 (121.401985344, 31.621358758), (121.485100740, 31.236942374), (121.548981917, 31.220254995)]
BD09_LITERAL = [(121.484781469, 31.234310594), (121.506160422, 31.245541046), (121.228070216, 31.054451015),
                (121.408522619, 31.627210008), (121.491685456, 31.242687964), (121.555420319, 31.226564967)]
#: the level text each provider answers for each precision class in the stand-in
LEVEL = {
    "amap": {"house": "门牌号", "building": "单元号", "poi": "兴趣点", "road": "道路", "town": "乡镇",
             "district": "区县"},
    "tianditu": {"house": "门址", "building": "地产小区", "poi": "地名地址", "road": "道路", "town": "乡镇",
                 "district": "区县"},
    "tencent": {"house": "9", "building": "10", "poi": "11", "road": "7", "town": "3", "district": "2"},
    "baidu": {"house": "门址", "building": "商务大厦", "poi": "政府机构", "road": "道路", "town": "乡镇",
              "district": "区县"},
}
SECRET = "sk-Se/cret+Key=42"  # characters that URL-encode, to catch the quoted form too
KEY_FORMS = (SECRET, urllib.parse.quote(SECRET, safe=""), urllib.parse.quote_plus(SECRET))
ADDRESS = PLACES[0][0]


def _load_standin_module():
    spec = importlib.util.spec_from_file_location("geocoder_standin", STANDIN_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


standin_module = _load_standin_module()


@pytest.fixture(scope="module")
def truth_datums():
    """GCJ-02 and BD-09 of every truth point, computed by gcoord under node (not by our crs module)."""
    return gcoord_datums([p[2] for p in PLACES])


@pytest.fixture(scope="module")
def gazetteer(truth_datums):
    return [{"address": address, "precision": precision, "wgs84": list(wgs), "gcj02": d["gcj02"], "bd09": d["bd09"],
             "formatted": formatted, "adcode": adcode}
            for (address, precision, wgs, adcode, formatted), d in zip(PLACES, truth_datums, strict=True)]


@pytest.fixture(scope="module")
def standin(gazetteer):
    server = standin_module.StandIn(gazetteer).start()
    yield server
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 3, "stop() must end sleeping (timeout-mode) handlers promptly"


@pytest.fixture(autouse=True)
def _mode_ok(request):
    if "standin" in request.fixturenames:
        server = request.getfixturevalue("standin")
        server.set_mode("ok")
        yield
        server.set_mode("ok")
    else:
        yield


def _since(server, n0, count=None):
    """The stand-in's log entries after the first n0; with ``count``, first wait (briefly) for that many to be
    logged, since a loaded machine may run the server's handler thread after the client has given up."""
    deadline = time.monotonic() + 3
    while count is not None and len(server.requests) - n0 < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.requests[n0:]


def _distance_m(c: Candidate, wgs) -> float:
    return float(crs.geodesic_distance_m(c.lon, c.lat, wgs[0], wgs[1]))


def _no_key(text: str) -> None:
    for form in KEY_FORMS:
        assert form not in text


# --------------------------------------------------------------------------------------------- truth and success


def test_gcoord_truth_matches_its_literals(truth_datums):
    for got, gcj, bd in zip(truth_datums, GCJ02_LITERAL, BD09_LITERAL, strict=False):
        assert got["gcj02"] == pytest.approx(list(gcj), abs=2e-9)
        assert got["bd09"] == pytest.approx(list(bd), abs=2e-9)
    # and the shift really is the ~500 m one, so the 1 m test below cannot pass by accident
    shift = crs.geodesic_distance_m(*PLACES[0][2], *truth_datums[0]["gcj02"])
    assert 400 < float(shift) < 700


@pytest.mark.parametrize("provider", PROVIDERS)
def test_success_is_within_one_metre_of_the_truth(standin, provider):
    geocoder = make_geocoder(provider, "test-key", standin.url, qps=100)
    for address, precision, wgs, adcode, formatted in PLACES:
        if precision == "none":
            continue
        answer = geocoder.geocode(address)
        assert answer.provider == provider and answer.query == address and not answer.cached
        (c,) = answer.candidates
        assert _distance_m(c, wgs) < 1.0, (provider, address, c)
        assert c.level == LEVEL[provider][precision]
        assert c.precise is (precision in ("house", "building", "poi"))
        if provider == "amap":
            assert (c.formatted, c.adcode) == (formatted, adcode)
        if provider == "tencent":
            assert (c.formatted, c.adcode) == (formatted, adcode)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_request_carries_the_documented_parameters(standin, provider):
    n0 = len(standin.requests)
    make_geocoder(provider, "test-key", standin.url).geocode(ADDRESS, city="上海市")
    (req,) = _since(standin, n0)
    params = req["params"]
    expected = {"amap": ("/v3/geocode/geo", {"key": "test-key", "address": ADDRESS, "city": "上海市"}),
                "tianditu": ("/geocoder", {"tk": "test-key"}),
                "tencent": ("/ws/geocoder/v1/", {"key": "test-key", "address": ADDRESS}),
                "baidu": ("/geocoding/v3/", {"ak": "test-key", "address": ADDRESS, "city": "上海市", "output": "json"})}
    path, subset = expected[provider]
    assert req["path"] == path
    assert subset.items() <= params.items()
    if provider == "tianditu":
        assert json.loads(params["ds"]) == {"keyWord": ADDRESS}


def test_city_is_prefixed_where_the_provider_has_no_city_parameter(standin):
    n0 = len(standin.requests)
    for provider in ("tencent", "tianditu"):
        answer = make_geocoder(provider, "k", standin.url).geocode("黄浦区人民大道200号")
        assert answer.candidates and answer.query == "黄浦区人民大道200号"
    tencent, tianditu = _since(standin, n0)
    assert tencent["params"]["address"] == ADDRESS
    assert json.loads(tianditu["params"]["ds"])["keyWord"] == ADDRESS


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("precision", ["road", "town", "district"])
def test_imprecise_levels(standin, provider, precision):
    address = next(p[0] for p in PLACES if p[1] == precision)
    (c,) = make_geocoder(provider, "k", standin.url).geocode(address).candidates
    assert c.precise is False
    assert c.level == LEVEL[provider][precision]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_not_found(standin, provider):
    geocoder = make_geocoder(provider, "k", standin.url)
    assert geocoder.geocode("上海市黄浦区没有这条路999号").candidates == ()
    assert geocoder.geocode(PLACES[-1][0]).candidates == ()  # known to the gazetteer, but "none"


def test_precise_tables():
    for level in ("门牌号", "门址", "单元号", "兴趣点", "住宅区", "公交地铁站点"):
        assert is_precise("amap", level)
    for level in ("国家", "省", "市", "区县", "开发区", "乡镇", "村庄", "热点商圈", "道路", "道路交叉路口",
                  "公交站台线路", "未知", "", "小巷"):
        assert not is_precise("amap", level)
    assert [is_precise("tencent", n) for n in range(1, 12)] == [False] * 8 + [True] * 3
    assert not is_precise("tencent", None) and not is_precise("tencent", "11")
    assert is_precise("baidu", "门址", 1) and is_precise("baidu", "地产小区", 1)
    assert not is_precise("baidu", "门址", 0)
    for level in ("UNKNOWN", "城市", "区县", "乡镇", "道路", "交叉路口", "商圈"):
        assert not is_precise("baidu", level, 1)
    assert is_precise("tianditu", "门址") and is_precise("tianditu", "地名地址")
    assert not any(is_precise("tianditu", lv) for lv in ("", "道路", "区县", "行政区划", "乡镇"))
    with pytest.raises(ValueError):
        is_precise("google", "门址")


def test_query_is_normalised(standin):
    n0 = len(standin.requests)
    answer = make_geocoder("amap", "k", standin.url).geocode("  上海市黄浦区人民大道２００号 \n")
    assert answer.query == ADDRESS and answer.candidates
    assert _since(standin, n0)[0]["params"]["address"] == ADDRESS
    assert normalise_query("上海市  浦东新区\u3000世纪大道１号") == "上海市 浦东新区 世纪大道1号"


def test_answer_to_dict():
    c = Candidate(121.0, 31.0, "门牌号", True, "某地", "310101")
    d = GeocodeAnswer("amap", "q", (c,)).to_dict()
    assert d == {"provider": "amap", "query": "q", "cached": False,
                 "candidates": [{"lon": 121.0, "lat": 31.0, "level": "门牌号", "precise": True, "formatted": "某地",
                                 "adcode": "310101"}]}
    json.dumps(d, ensure_ascii=False)


# --------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode,reason,words", [("quota", "quota", ("配额", "quota")),
                                               ("invalid_key", "key", ("key", "GEOSERVER_GEOCODER_KEY"))])
def test_quota_and_bad_key_stop_at_once_without_leaking_the_key(standin, provider, mode, reason, words, caplog):
    standin.set_mode(mode)
    n0 = len(standin.requests)
    geocoder = make_geocoder(provider, SECRET, standin.url, retries=2)
    with caplog.at_level(logging.DEBUG), pytest.raises(GeocoderStop) as info:
        geocoder.geocode(ADDRESS)
    assert len(_since(standin, n0, 1)) == 1, "quota/key errors are never retried"
    exc = info.value
    assert exc.reason == reason and isinstance(exc, GeocoderError)
    message = str(exc)
    assert all(w in message for w in words) and "Batch stopped" in message and "批量" in message
    _no_key(message)
    _no_key("".join(traceback.format_exception(exc)))
    _no_key(caplog.text)
    assert _since(standin, n0)[0]["params"][{"tianditu": "tk", "baidu": "ak"}.get(provider, "key")] == SECRET


@pytest.mark.parametrize("provider", PROVIDERS)
def test_badkey_always_gets_the_invalid_key_answer(standin, provider):
    with pytest.raises(GeocoderStop) as info:
        make_geocoder(provider, "BADKEY", standin.url).geocode(ADDRESS)
    assert info.value.reason == "key" and "BADKEY" not in str(info.value)


def test_timeout_is_retried_then_unavailable(standin):
    standin.set_mode("timeout")
    n0 = len(standin.requests)
    geocoder = make_geocoder("amap", SECRET, standin.url, timeout_s=0.3, retries=2)
    t0 = time.monotonic()
    with _no_gc_pauses(), pytest.raises(GeocoderUnavailable) as info:
        geocoder.geocode(ADDRESS)
    elapsed = time.monotonic() - t0
    log = _since(standin, n0, 3)
    assert len(log) == 3
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(log)]
    assert gaps[0] >= 0.3 + 0.5 - 0.1 and gaps[1] >= 0.3 + 1.0 - 0.1, gaps  # timeout + backoff of 0.5 s, then 1 s
    assert elapsed < 5
    _no_key(str(info.value))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_http500_is_retried_then_unavailable(standin, provider):
    standin.set_mode("http500")
    n0 = len(standin.requests)
    with pytest.raises(GeocoderUnavailable) as info:
        make_geocoder(provider, "k", standin.url, retries=1).geocode(ADDRESS)
    assert len(_since(standin, n0, 2)) == 2
    assert "HTTP 500" in str(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_busy_once_is_retried_and_succeeds(standin, provider):
    standin.set_mode("busy", count=1)
    n0 = len(standin.requests)
    answer = make_geocoder(provider, "k", standin.url, retries=2).geocode(ADDRESS)
    assert answer.candidates and answer.candidates[0].precise
    assert [r["mode"] for r in _since(standin, n0, 2)] == ["busy", "ok"]


def test_slow_answer_beyond_the_timeout_is_unavailable(standin):
    standin.set_mode("slow")
    n0 = len(standin.requests)
    with pytest.raises(GeocoderUnavailable):
        make_geocoder("baidu", "k", standin.url, timeout_s=0.3, retries=1).geocode(ADDRESS)
    assert len(_since(standin, n0, 2)) == 2


def test_slow_answer_within_the_timeout_is_fine(standin):
    standin.set_mode("slow", count=1)
    answer = make_geocoder("tencent", "k", standin.url, timeout_s=3, retries=0).geocode(ADDRESS)
    assert answer.candidates


def test_connection_refused_is_unavailable_without_the_key():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GeocoderUnavailable) as info:
        make_geocoder("amap", SECRET, f"http://127.0.0.1:{port}", retries=0).geocode(ADDRESS)
    _no_key(str(info.value))
    _no_key("".join(traceback.format_exception(info.value)))


def test_empty_address_is_refused_without_a_request(standin):
    n0 = len(standin.requests)
    with pytest.raises(GeocoderError):
        make_geocoder("amap", "k", standin.url).geocode("  \u3000 ")
    assert len(standin.requests) == n0


# --------------------------------------------------------------------------------------------- rate limit


@contextlib.contextmanager
def _no_gc_pauses():
    """Timing checks read the stand-in's clock on arrival: a full collection of this test process's large heap
    (~50 ms) would show up there as jitter that has nothing to do with the client's spacing."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _assert_spaced(log, interval, tolerance=0.06):
    """The i-th request reached the provider no sooner than i intervals after the first. (Measured where the provider
    sees them, cumulatively: on a loaded machine one request may reach the server late and the next on time, so
    single gaps can shrink without the client ever sending faster than its rate.)"""
    times = sorted(r["time"] for r in log)
    spans = [t - times[0] for t in times]
    assert all(span >= i * interval - tolerance for i, span in enumerate(spans)), spans


def test_rate_limit_spaces_requests(standin):
    geocoder = make_geocoder("amap", "k", standin.url, qps=10)
    n0 = len(standin.requests)
    with _no_gc_pauses():
        for i in range(8):
            geocoder.geocode(PLACES[i % 6][0])
    log = _since(standin, n0, 8)
    assert len(log) == 8
    _assert_spaced(log, 0.1)


def test_rate_limit_holds_across_threads(standin):
    geocoder = make_geocoder("baidu", "k", standin.url, qps=10)
    n0 = len(standin.requests)
    threads = [threading.Thread(target=lambda: [geocoder.geocode(ADDRESS) for _ in range(2)]) for _ in range(4)]
    with _no_gc_pauses():
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    log = _since(standin, n0, 8)
    assert len(log) == 8
    _assert_spaced(log, 0.1)


# --------------------------------------------------------------------------------------------- cache


def test_cache_never_pays_twice(standin, tmp_path):
    path = tmp_path / "geocode.sqlite"
    cached = CachedGeocoder(make_geocoder("amap", "k", standin.url), GeocodeCache(path))
    assert cached.name == "amap"
    n0 = len(standin.requests)
    first = cached.geocode(ADDRESS)
    assert not first.cached and len(standin.requests) == n0 + 1
    second = cached.geocode(" 上海市黄浦区人民大道２００号 ")
    assert second.cached and len(standin.requests) == n0 + 1
    assert second.candidates == first.candidates and second.query == first.query
    # another process would open its own GeocodeCache on the same file
    other = CachedGeocoder(make_geocoder("amap", "k", standin.url), GeocodeCache(path))
    assert other.geocode(ADDRESS).cached and len(standin.requests) == n0 + 1
    # a different city or provider is a different question
    assert not cached.geocode(ADDRESS, city="苏州市").cached
    assert len(GeocodeCache(path)) == 2


def test_not_found_is_cached_and_refresh_asks_again(standin, tmp_path):
    cached = CachedGeocoder(make_geocoder("tencent", "k", standin.url), GeocodeCache(tmp_path / "c.sqlite"))
    unknown = "上海市闵行区尚无此路1号"
    n0 = len(standin.requests)
    assert cached.geocode(unknown).candidates == ()
    again = cached.geocode(unknown)
    assert again.cached and again.candidates == () and len(standin.requests) == n0 + 1
    refreshed = cached.geocode(unknown, refresh=True)
    assert not refreshed.cached and len(standin.requests) == n0 + 2


def test_errors_are_not_cached(standin, tmp_path):
    cache = GeocodeCache(tmp_path / "c.sqlite")
    cached = CachedGeocoder(make_geocoder("baidu", "k", standin.url, retries=0), cache)
    for mode, error in (("quota", GeocoderStop), ("http500", GeocoderUnavailable)):
        standin.set_mode(mode, count=1)
        with pytest.raises(error):
            cached.geocode(ADDRESS)
        assert len(cache) == 0
    n0 = len(standin.requests)
    answer = cached.geocode(ADDRESS)
    assert not answer.cached and answer.candidates and len(standin.requests) == n0 + 1
    assert len(cache) == 1


def test_cache_is_shared_with_another_process(tmp_path):
    path = tmp_path / "shared.sqlite"
    cache = GeocodeCache(path)
    code = ("import sys; from pathlib import Path; from geoserver.core.geocode import *;"
            "GeocodeCache(Path(sys.argv[1])).put(GeocodeAnswer('baidu', '上海市浦东新区',"
            " (Candidate(121.5, 31.2, '区县', False, None, None),)), '上海市')")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60, cwd=ROOT)
    hit = cache.get("baidu", "上海市浦东新区", "上海市")
    assert hit is not None and hit.cached and hit.candidates[0].level == "区县"
    import sqlite3
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# --------------------------------------------------------------------------------------------- configuration


def test_make_geocoder_rejects_unknown_providers():
    with pytest.raises(ValueError) as info:
        make_geocoder("google", "k")
    assert all(p in str(info.value) for p in PROVIDERS)


def test_geocoder_from_env(standin):
    assert geocoder_from_env({}) is None
    assert geocoder_from_env({"GEOSERVER_GEOCODER": "  "}) is None
    with pytest.raises((ValueError, GeocoderError)) as info:
        geocoder_from_env({"GEOSERVER_GEOCODER": "google", "GEOSERVER_GEOCODER_KEY": "k"})
    assert all(p in str(info.value) for p in PROVIDERS)
    with pytest.raises(GeocoderError) as info:
        geocoder_from_env({"GEOSERVER_GEOCODER": "amap"})
    assert "GEOSERVER_GEOCODER_KEY" in str(info.value)
    with pytest.raises(GeocoderError):
        geocoder_from_env({"GEOSERVER_GEOCODER": "amap", "GEOSERVER_GEOCODER_KEY": "k",
                           "GEOSERVER_GEOCODER_QPS": "fast"})
    default = geocoder_from_env({"GEOSERVER_GEOCODER": "Baidu", "GEOSERVER_GEOCODER_KEY": "k"})
    assert (default.name, default.base_url, default.qps, default.timeout_s) == (
        "baidu", "https://api.map.baidu.com", 3.0, 5.0)
    env = {"GEOSERVER_GEOCODER": "tianditu", "GEOSERVER_GEOCODER_KEY": "k", "GEOSERVER_GEOCODER_URL": standin.url + "/",
           "GEOSERVER_GEOCODER_QPS": "20", "GEOSERVER_GEOCODER_TIMEOUT_S": "2.5"}
    geocoder = geocoder_from_env(env)
    assert (geocoder.name, geocoder.base_url, geocoder.qps, geocoder.timeout_s) == ("tianditu", standin.url, 20, 2.5)
    n0 = len(standin.requests)
    assert geocoder.geocode(ADDRESS).candidates
    assert _since(standin, n0)[0]["provider"] == "tianditu"


# --------------------------------------------------------------------------------------------- the stand-in itself


def test_standin_command_line_and_control_endpoints(gazetteer, tmp_path):
    gz = tmp_path / "gazetteer.json"
    gz.write_text(json.dumps(gazetteer, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(STANDIN_PATH), "--port", "0", "--gazetteer", str(gz)],
                            stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "the stand-in did not print its address"
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        geocoder = make_geocoder("amap", "cli-key", url, retries=0)
        assert geocoder.geocode(ADDRESS).candidates
        control = requests.post(url + "/_control", json={"mode": "quota", "count": 1}, timeout=5)
        assert control.status_code == 200 and control.json() == {"mode": "quota", "count": 1}
        with pytest.raises(GeocoderStop):
            geocoder.geocode(ADDRESS)
        assert geocoder.geocode(ADDRESS).candidates  # back to ok after count requests
        assert requests.post(url + "/_control", json={"mode": "nonsense"}, timeout=5).status_code == 400
        log = requests.get(url + "/_requests", timeout=5).json()
        assert [r["mode"] for r in log] == ["ok", "quota", "ok"]
        assert all(r["params"]["key"] == "cli-key" and r["provider"] == "amap" for r in log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0, "SIGTERM stops the stand-in cleanly"


def test_standin_stops_promptly_while_a_request_hangs(gazetteer):
    server = standin_module.StandIn(gazetteer).start()
    server.set_mode("timeout")
    geocoder = make_geocoder("amap", "k", server.url, timeout_s=10, retries=0)
    errors = []
    worker = threading.Thread(target=lambda: errors.append(_catch(geocoder, ADDRESS)))
    worker.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    server.stop()
    worker.join(10)
    assert time.monotonic() - t0 < 3
    assert errors and isinstance(errors[0], GeocoderUnavailable)


def _catch(geocoder, address):
    try:
        geocoder.geocode(address)
    except GeocoderError as exc:
        return exc
    return None


def test_standin_refuses_a_bad_gazetteer():
    with pytest.raises(ValueError):
        standin_module.StandIn([{"address": "x", "precision": "exact"}])
    with pytest.raises(ValueError):
        standin_module.StandIn([{"address": "x", "precision": "house", "wgs84": [1, 2]}])
    assert math.isclose(standin_module.SLOW_SLEEP_S, 1.0)
