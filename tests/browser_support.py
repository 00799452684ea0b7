"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright (sync API).

Playwright's own browser download does not work here, so tests launch the system browser
(``scripts/install_browser.sh`` installs it). Every request the page makes is recorded, and nothing leaves the
machine: ``browser_page`` contexts are kept offline (``keep_offline``), so base-map tiles from the real providers
(OpenStreetMap is the page's default) are answered locally with a tiny PNG and any other outside request is
aborted. A test can assert that a page loads nothing from outside (``log.external``: aborted outside requests;
``log.tiles``: outside tile requests answered locally).

    from tests.browser_support import browser_page, ARTIFACTS
    with browser_page(viewport=PHONE) as (page, log):
        page.goto(url)
        assert log.external == [] and log.console_errors == []

Also here: ``axe_violations`` (axe-core in the page) and ``lighthouse`` (the Lighthouse CLI against Debian's
Chromium), both from the test-only npm packages in tests/js (``scripts/install_test_js.sh``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored: screenshots for people to look at

CHROMIUM = os.environ.get("GEOSERVER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_local_url(url: str) -> bool:
    """file:, data:, blob:, about: and loopback http(s)/ws(s) URLs stay on this machine."""
    parts = urlsplit(url)
    if parts.scheme in ("file", "data", "blob", "about", "chrome-error"):
        return True
    host = (parts.hostname or "").lower()
    return parts.scheme in ("http", "https", "ws", "wss") and (host in LOCAL_HOSTS or host.startswith("127."))


@dataclass
class PageLog:
    """What a page did: every request URL, those that would have left the machine (``external``: aborted;
    ``tiles``: base-map tiles of outside hosts answered locally by ``keep_offline``, not a problem), console errors,
    page errors (uncaught exceptions) and failed requests."""

    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    tiles: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return ([f"external request {u}" for u in self.external] + [f"console error {t}" for t in self.console_errors]
                + [f"page error {t}" for t in self.page_errors] + [f"failed request {u}" for u in self.failed])


def require_vendor_assets():
    """Skip (locally) when static/node_modules is not installed; under CI that is a failure, not a skip."""
    from geoserver.render.assets import vendor_dir

    if not (vendor_dir() / "leaflet" / "dist" / "leaflet.js").exists():
        message = "static/node_modules is not installed: run scripts/install_assets.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def require_chromium():
    """Skip (locally) when the browser is missing; under CI a missing browser is a failure, not a skip."""
    if not chromium_available():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: scripts/install_browser.sh should have installed it")
        pytest.skip(f"{CHROMIUM} is not installed (scripts/install_browser.sh installs it)")
    pytest.importorskip("playwright.sync_api")


@contextmanager
def launch_browser():
    """Playwright + Debian's Chromium, headless; yields the Browser."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def record(page, log: PageLog | None = None) -> PageLog:
    """Record every request of ``page`` in a PageLog. A non-local request is aborted and listed in ``external``,
    except when the page's context is kept offline (``keep_offline``) and the request is a tile: then the
    context's route answers it with TILE_PNG and it is listed in ``tiles`` (in a context kept offline, every
    non-local request is handed on to keep_offline's route, so its list holds them all)."""
    log = log or PageLog()
    offline = getattr(page.context, "_keep_offline", None) is not None

    def route(r):
        url = r.request.url
        log.requests.append(url)
        if is_local_url(url):
            r.continue_()
            return
        (log.tiles if offline and is_tile_url(url) else log.external).append(url)
        if offline:
            r.fallback()  # keep_offline's route on the context answers the tile or aborts the request
        else:
            r.abort()

    def failed(req):  # outside tiles the page cancels itself (Leaflet, while zooming) are not failures
        if req.url not in log.external and req.url not in log.tiles:
            log.failed.append(req.url)

    page.route("**/*", route)
    page.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    page.on("requestfailed", failed)
    return log


@contextmanager
def browser_page(browser=None, viewport=DESKTOP, **context_options):
    """A fresh page (own context, ``viewport``, kept offline by ``keep_offline``) with a request recorder; yields
    ``(page, log)``.

    Service workers are blocked so that every request goes through the recorder."""
    if browser is None:
        with launch_browser() as b, browser_page(b, viewport, **context_options) as out:
            yield out
        return
    context = browser.new_context(viewport=viewport, service_workers="block", **context_options)
    try:
        keep_offline(context)
        page = context.new_page()
        log = record(page)
        yield page, log
    finally:
        context.close()


def screenshot(page, name: str) -> Path:
    """Save a PNG of the page under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


# --- helpers for map pages ------------------------------------------------------------------------------------------
#: A 1×1 light-grey PNG: every tile of the local tile stand-in.
TILE_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGN48uw+"
                            "AAVbAqreYAy2AAAAAElFTkSuQmCC")


@contextmanager
def tile_server():
    """A tile server on 127.0.0.1 answering every GET with TILE_PNG (no internet in tests); yields an object with
    ``url`` (``http://127.0.0.1:PORT``) and ``paths`` (the paths asked for, in order)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(TILE_PNG)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                self.wfile.write(TILE_PNG)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser cancelled the tile (Leaflet, while zooming)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    class Tiles:
        url = f"http://127.0.0.1:{server.server_address[1]}"

    Tiles.paths = paths
    try:
        yield Tiles
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 12) -> None:
    """Drag with the mouse from ``start`` to ``end`` (viewport pixels): down, move in ``steps``, up."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


# --- nothing leaves the machine -------------------------------------------------------------------------------------
#: Hosts of the base-map providers the workers' page knows (geoserver.web.workers.PROVIDERS): every request to them
#: is a tile. A host ending with one of the dotted names matches (t0.tianditu.gov.cn, webrd01.is.autonavi.com).
TILE_HOSTS = ("tile.openstreetmap.org", ".tile.openstreetmap.org", ".tianditu.gov.cn", ".is.autonavi.com")
#: A z/x/y tile path: /12/3425/1673.png, /osm/12/3425/1673@2x.webp, /tiles/12/3425/1673 …
TILE_PATH = re.compile(r"/\d{1,2}/\d+/\d+(@\dx)?(\.(png|jpe?g|webp|gif|pbf|mvt))?$", re.IGNORECASE)


def is_tile_url(url: str) -> bool:
    """A base-map tile request: any URL on a known provider's host, a path ending in z/x/y, a WMTS GetTile, or a
    query with x, y and z (Amap-style templates)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if any(host == h or (h.startswith(".") and host.endswith(h)) for h in TILE_HOSTS):
        return True
    if TILE_PATH.search(parts.path):
        return True
    query = {k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
    return query.get("request", "").lower() == "gettile" or {"x", "y", "z"} <= query.keys()


def keep_offline(context) -> list[str]:
    """Keep a Playwright BrowserContext off the internet: a route answers every request to a non-loopback host
    locally. Tiles (``is_tile_url``) get TILE_PNG (200, image/png, CORS-open); anything else is aborted.

    Returns a live list of the outside URLs requested, in order (tiles and aborted ones), so a test can assert e.g.
    that tiles were asked of tile.openstreetmap.org by default. While the context is offline
    (``context.set_offline(True)``), tiles fail too, as they would on a phone without network (a route's answer
    would otherwise bypass Chromium's offline emulation). Idempotent: a second call returns the same list.
    Routes registered on a page take precedence over this one (a page route that calls ``route.fallback()`` hands
    the request on to it); ``browser_page`` applies it to every context it makes."""
    existing = getattr(context, "_keep_offline", None)
    if existing is not None:
        return existing
    outside: list[str] = []
    state = {"offline": False}
    set_offline = context.set_offline

    def set_offline_too(offline: bool) -> None:  # a route's answer would bypass Chromium's offline emulation
        state["offline"] = bool(offline)
        set_offline(offline)

    def handle(route):
        url = route.request.url
        outside.append(url)
        if state["offline"]:
            route.abort("internetdisconnected")
        elif is_tile_url(url):
            route.fulfill(status=200, content_type="image/png", body=TILE_PNG,
                          headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"})
        else:
            route.abort()

    context.route(lambda url: not is_local_url(url), handle)
    context.set_offline = set_offline_too
    context._keep_offline = outside
    return outside


# --- accessibility: axe-core in the page ----------------------------------------------------------------------------
TEST_JS = ROOT / "tests" / "js" / "node_modules"
AXE_JS = TEST_JS / "axe-core" / "axe.min.js"
AXE_TAGS = ("wcag2a", "wcag2aa", "best-practice")


def require_test_js(path: Path) -> None:
    """Skip (locally) when a test-only npm package is missing; under CI that is a failure, not a skip."""
    if not path.exists():
        message = f"{path.relative_to(ROOT)} is missing: run scripts/install_test_js.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def axe_violations(page, impacts=("serious", "critical"), context=None) -> list[dict]:
    """Run axe-core (tests/js/node_modules/axe-core) on ``page`` with the WCAG 2 A, AA and best-practice rules;
    return the violations whose impact is in ``impacts`` (``None``: all), each as ``{"id", "impact", "help",
    "help_url", "targets", "html"}`` (``targets``: CSS selectors of the failing elements, ``html``: their opening
    tags, shortened). ``context``: what to check (an axe context: a selector or ``{"include": …, "exclude": …}``);
    the whole document by default.

    How axe gets into the page: ``page.add_script_tag(path=...)`` adds an inline script, which the workers'
    page's CSP (``script-src 'self'``) refuses, and the refusal is a console error that PageLog would count as a
    problem. So axe's source is evaluated through the DevTools protocol (``page.evaluate``), which CSP does not
    govern: no ``bypass_csp=True`` is needed and the page runs under its real CSP."""
    require_test_js(AXE_JS)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;void 0")
    result = page.evaluate(
        """async ([context, tags]) => {
             const r = await axe.run(context === null ? document : context,
                                     {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
             return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, help_url: v.helpUrl,
               targets: v.nodes.map(n => n.target.join(' ')), html: v.nodes.map(n => n.html.slice(0, 160))})); }""",
        [context, list(AXE_TAGS)])
    return [v for v in result if impacts is None or v["impact"] in impacts]


# --- Lighthouse -----------------------------------------------------------------------------------------------------
LIGHTHOUSE_JS = TEST_JS / "lighthouse" / "cli" / "index.js"
#: Debian's Chromium as Lighthouse starts it (through CHROME_PATH; Lighthouse downloads no browser).
LIGHTHOUSE_CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync")
LIGHTHOUSE_METRICS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
                      "cumulative-layout-shift", "speed-index")


def lighthouse(url: str, *, form_factor: str = "mobile",
               categories=("performance", "accessibility", "best-practices"), runs: int = 1,
               timeout_s: float = 300) -> dict:
    """Run the Lighthouse CLI (tests/js/node_modules/lighthouse) on ``url`` in Debian's Chromium, ``runs`` times,
    and return the medians:

    ``{"performance": 0.93, "accessibility": 1.0, "best-practices": 0.96,
    "metrics": {"first-contentful-paint": ms, "largest-contentful-paint": ms, "total-blocking-time": ms,
    "cumulative-layout-shift": x, "speed-index": ms}}``

    plus ``"runs"``, ``"lighthouse_version"``, ``"hosts"`` (the hosts the page asked anything of, all runs) and
    ``"failed_audits"`` (per category, the audits that did not pass in some run: pass/fail audits scored 0,
    metrics scored below 0.9; each ``{"id", "title", "weight", "targets"}``, weight 0 ones do not count in the
    score). A category Lighthouse could not score is ``None``. ``form_factor``: "mobile" (Lighthouse's
    default: a Moto G Power screen, simulated slow 4G and 4x CPU slowdown) or "desktop" (``--preset=desktop``).

    Only ever pointed at this machine (a ``http://127.0.0.1`` URL): Chromium has no internet here, so the page's
    tiles must come from a local tile server. Raises RuntimeError with Lighthouse's stderr if a run fails."""
    parts = urlsplit(url)
    assert parts.scheme in ("http", "https") and parts.hostname == "127.0.0.1", \
        f"Lighthouse is only pointed at 127.0.0.1, not {url}"
    if form_factor not in ("mobile", "desktop"):
        raise ValueError(f"form_factor is 'mobile' or 'desktop', not {form_factor!r}")
    require_chromium()
    require_test_js(LIGHTHOUSE_JS)
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node is needed for Lighthouse (scripts/install_test_js.sh installs npm and Node.js)")
    reports = []
    with tempfile.TemporaryDirectory(prefix="lighthouse-") as tmp:
        for i in range(runs):
            out = Path(tmp) / f"report-{i}.json"
            cmd = [node, str(LIGHTHOUSE_JS), url, "--output=json", f"--output-path={out}", "--quiet",
                   "--only-categories=" + ",".join(categories),
                   "--chrome-flags=" + " ".join(LIGHTHOUSE_CHROME_FLAGS)]
            cmd += ["--preset=desktop"] if form_factor == "desktop" else ["--form-factor=mobile"]
            env = {**os.environ, "CHROME_PATH": CHROMIUM, "TMPDIR": tmp}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
            report = json.loads(out.read_text(encoding="utf-8")) if out.exists() and out.stat().st_size else None
            error = (report or {}).get("runtimeError")
            if proc.returncode != 0 or report is None or error:
                raise RuntimeError(f"Lighthouse failed on {url} (exit {proc.returncode})"
                                   + (f": {error.get('code')} {error.get('message')}" if error else "")
                                   + f"\n{proc.stderr[-4000:]}")
            reports.append(report)

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    scores = {c: median([r["categories"].get(c, {}).get("score") for r in reports]) for c in categories}
    result: dict = {c: None if s is None else float(s) for c, s in scores.items()}
    result["metrics"] = {m: median([r["audits"].get(m, {}).get("numericValue") for r in reports])
                         for m in LIGHTHOUSE_METRICS}
    result["runs"] = runs
    result["lighthouse_version"] = reports[0]["lighthouseVersion"]
    hosts = set()
    for r in reports:
        for item in (r["audits"].get("network-requests", {}).get("details") or {}).get("items", []):
            if urlsplit(item["url"]).scheme in ("http", "https", "ws", "wss"):
                hosts.add(urlsplit(item["url"]).hostname)
    result["hosts"] = sorted(hosts)
    failed: dict[str, dict] = {}
    for r in reports:
        for c in categories:
            for ref in r["categories"].get(c, {}).get("auditRefs", []):
                audit = r["audits"][ref["id"]]
                mode, score = audit.get("scoreDisplayMode"), audit.get("score")
                if score is None or not ((mode == "binary" and score < 1) or (mode == "numeric" and score < 0.9)):
                    continue  # passed, or not a pass/fail audit (informative, insights, manual, not applicable)
                items = (audit.get("details") or {}).get("items") or []
                targets = [(it.get("node") or {}).get("selector") for it in items if isinstance(it, dict)]
                entry = failed.setdefault(f"{c}:{ref['id']}", {"category": c, "id": ref["id"],
                                                              "title": audit["title"], "weight": ref["weight"],
                                                              "targets": []})
                entry["targets"] += [t for t in targets if t and t not in entry["targets"]]
    result["failed_audits"] = {c: [{k: v for k, v in e.items() if k != "category"} for e in failed.values()
                                   if e["category"] == c] for c in categories}
    return result


def api_json(server: str, path: str, **params) -> dict:
    """GET a JSON answer of the server under test (loopback) with query parameters."""
    import json as _json
    import urllib.request as _request
    from urllib.parse import urlencode as _urlencode
    with _request.urlopen(f"{server}{path}?{_urlencode(params)}", timeout=10) as resp:
        return _json.loads(resp.read())
