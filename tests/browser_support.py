"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright (sync API).

Playwright's own browser download does not work here, so tests launch the system browser
(``scripts/install_browser.sh`` installs it). Every request the page makes is recorded, and anything that
would leave the machine is aborted, so a test can assert that a page loads nothing from outside.

    from tests.browser_support import browser_page, ARTIFACTS
    with browser_page(viewport=PHONE) as (page, log):
        page.goto(url)
        assert log.external == [] and log.console_errors == []
"""

from __future__ import annotations

import base64
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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
    """What a page did: every request URL, those that would have left the machine, console errors, page
    errors (uncaught exceptions) and failed requests."""

    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
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
    """Record every request of ``page`` in a PageLog; abort (and list as external) any non-local one."""
    log = log or PageLog()

    def route(r):
        url = r.request.url
        log.requests.append(url)
        if is_local_url(url):
            r.continue_()
        else:
            log.external.append(url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: log.page_errors.append(str(exc)))
    page.on("requestfailed", lambda req: None if req.url in log.external else log.failed.append(req.url))
    return log


@contextmanager
def browser_page(browser=None, viewport=DESKTOP, **context_options):
    """A fresh page (own context, ``viewport``) with a request recorder; yields ``(page, log)``.

    Service workers are blocked so that every request goes through the recorder."""
    if browser is None:
        with launch_browser() as b, browser_page(b, viewport, **context_options) as out:
            yield out
        return
    context = browser.new_context(viewport=viewport, service_workers="block", **context_options)
    try:
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
            self.wfile.write(TILE_PNG)

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
