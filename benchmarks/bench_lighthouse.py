"""The workers' web map in Lighthouse (mobile) and its offline time to a list: what a rider's phone would see.

1. **Lighthouse**, the pinned CLI in tests/js/node_modules (``tests.browser_support.lighthouse``), in Debian's
   Chromium with Lighthouse's mobile defaults (Moto G Power screen, simulated slow 4G: 150 ms RTT, 1.6 Mbit/s
   down, 4x CPU slowdown), on ``/`` (a first visit: no position yet) and on a deep link to People's Square
   (``/?lon=121.4737&lat=31.2304&layer=stations``). ``--runs`` runs each; the medians of the category scores and
   of the metrics (first and largest contentful paint, total blocking time, cumulative layout shift, speed index).
2. **Offline time to list**, with Playwright in the same Chromium: a phone-sized context with geolocation granted
   at People's Square and service workers allowed opens ``/`` online and waits until the list shows entries and
   the network is idle; then the context goes offline (``context.set_offline(True)``) and the page is reloaded.
   The figure is the time from that navigation's start (``performance.now()`` in the reloaded document) until at
   least ``--min-entries`` (3) elements matching ``--selector`` (``#list [data-feature-id]``: the list's entries)
   are visible. Each run uses a fresh context (empty caches, service worker installed anew); median of
   ``--runs``. When the page cannot do it (it does not load offline, or shows fewer entries within
   ``--offline-timeout``), the figure is reported as "not available" with the reason.

Tiles come from a local stand-in tile server (256 px PNGs of about 19 kB, like real street-map tiles), set as the
page's OpenStreetMap base map, so nothing leaves the machine; outside requests are counted (and should be 0).
Timings are never asserted in tests: they are recorded here and in BENCHMARKS.md.

Usage: ``.venv/bin/python benchmarks/bench_lighthouse.py [--runs 3] [--selector '#list [data-feature-id]']
[--min-entries 3] [--skip-lighthouse] [--skip-offline]``
Writes benchmarks/results/lighthouse.json. Needs Chromium (scripts/install_browser.sh), static/node_modules
(scripts/install_assets.sh) and tests/js/node_modules (scripts/install_test_js.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_webmap import TileServer, warm_up  # noqa: E402
from common import ROOT, machine, our_server  # noqa: E402

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, PHONE, is_local_url, lighthouse  # noqa: E402

PAGES = {"first_visit": "/", "deep_link": "/?lon=121.4737&lat=31.2304&layer=stations"}
POSITION = {"latitude": 31.2304, "longitude": 121.4737, "accuracy": 30}  # People's Square
CATEGORIES = ("performance", "accessibility", "best-practices")
DEFAULT_SELECTOR = "#list [data-feature-id]"

#: The time since this document's navigation start once ``n`` elements matching ``sel`` are visible, else false
#: (polled every animation frame).
VISIBLE_ENTRIES_JS = """([sel, n]) => {
  const shown = [...document.querySelectorAll(sel)].filter(e => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'; });
  return shown.length >= n ? performance.now() : false; }"""
#: Whether a service worker is active for the page (waits up to 10 s for one that is installing).
SERVICE_WORKER_JS = """() => !navigator.serviceWorker ? false : Promise.race([
  navigator.serviceWorker.getRegistration().then(r => !r ? false : navigator.serviceWorker.ready.then(() => true)),
  new Promise(ok => setTimeout(() => ok(false), 10000))])"""


def run_lighthouse(base: str, runs: int) -> dict:
    out = {}
    for name, path in PAGES.items():
        report = lighthouse(base + path, form_factor="mobile", categories=CATEGORIES, runs=runs)
        out[name] = {"path": path, **{c: report[c] for c in CATEGORIES},
                     "metrics": {k: None if v is None else round(v, 3) if k == "cumulative-layout-shift" else round(v)
                                 for k, v in report["metrics"].items()},
                     "hosts": report["hosts"], "lighthouse_version": report["lighthouse_version"],
                     "failed_audits": {c: [a["id"] for a in audits]
                                       for c, audits in report["failed_audits"].items()}}
    return out


def offline_time_to_list(browser, base: str, selector: str, min_entries: int, runs: int,
                         timeout_ms: int) -> dict:
    """Median time from navigation start to ``min_entries`` visible list entries after an offline reload."""
    from playwright.sync_api import Error as PlaywrightError

    samples: list[float] = []
    outside: list[str] = []
    reason = None
    service_worker = None
    for _ in range(runs):
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                      geolocation=POSITION, permissions=["geolocation"], service_workers="allow")
        context.on("request", lambda req: None if is_local_url(req.url) else outside.append(req.url))
        try:
            page = context.new_page()
            page.goto(base + "/", wait_until="load", timeout=60_000)
            page.wait_for_selector(selector, state="visible", timeout=60_000)
            service_worker = bool(page.evaluate(SERVICE_WORKER_JS))
            page.wait_for_load_state("networkidle", timeout=60_000)
            context.set_offline(True)
            try:
                page.reload(wait_until="commit", timeout=timeout_ms)
            except PlaywrightError as exc:
                reason = f"the page does not load offline ({str(exc).splitlines()[0]})"
                break
            try:
                handle = page.wait_for_function(VISIBLE_ENTRIES_JS, arg=[selector, min_entries], polling="raf",
                                                timeout=timeout_ms)
            except PlaywrightError:
                reason = (f"fewer than {min_entries} '{selector}' visible {timeout_ms / 1000:g} s after an offline "
                          "reload")
                break
            samples.append(float(handle.json_value()))
        except PlaywrightError as exc:  # the online visit itself failed: report, do not crash
            reason = f"the online visit failed ({str(exc).splitlines()[0]})"
            break
        finally:
            context.close()
    available = reason is None and len(samples) == runs
    return {"available": available, "reason": reason, "selector": selector, "min_entries": min_entries,
            "service_worker_active": service_worker, "runs": len(samples),
            "median_ms": round(statistics.median(samples)) if available else None,
            "runs_ms": [round(s) for s in samples], "outside_requests": len(outside)}


def fmt(value, digits=2) -> str:
    if value is None:
        return "–"
    return f"{float(value):.{digits}f}" if digits else f"{round(value):,}"


def print_table(result: dict) -> None:
    pages = result.get("lighthouse") or {}
    if pages:
        print(f"Lighthouse {next(iter(pages.values()))['lighthouse_version']}, mobile (default throttling), "
              f"median of {result['runs']} runs")
        head = ("page", "perf", "a11y", "best-pr", "FCP ms", "LCP ms", "TBT ms", "CLS", "SI ms")
        rows = [head]
        for name, p in pages.items():
            m = p["metrics"]
            rows.append((p["path"], fmt(p["performance"]), fmt(p["accessibility"]), fmt(p["best-practices"]),
                         fmt(m["first-contentful-paint"], 0), fmt(m["largest-contentful-paint"], 0),
                         fmt(m["total-blocking-time"], 0), fmt(m["cumulative-layout-shift"], 3),
                         fmt(m["speed-index"], 0)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        for i, row in enumerate(rows):
            print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
            if i == 0:
                print("  ".join("-" * w for w in widths))
        for name, p in pages.items():
            failing = {c: ids for c, ids in p["failed_audits"].items() if ids and c != "performance"}
            if failing:
                print(f"  {p['path']}: not passed: "
                      + "; ".join(f"{c}: {', '.join(ids)}" for c, ids in failing.items()))
    off = result.get("offline_time_to_list")
    if off:
        what = f"offline time to list ({off['min_entries']} × '{off['selector']}' visible after an offline reload)"
        if off["available"]:
            print(f"{what}: {off['median_ms']:,} ms (median of {off['runs']}: {off['runs_ms']})")
        else:
            print(f"{what}: not available: {off['reason']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page and offline runs (3)")
    parser.add_argument("--selector", default=DEFAULT_SELECTOR,
                        help=f"what counts as a list entry for the offline time to list ({DEFAULT_SELECTOR!r})")
    parser.add_argument("--min-entries", type=int, default=3, help="entries that must be visible (3)")
    parser.add_argument("--offline-timeout", type=float, default=20.0, help="seconds to wait offline (20)")
    parser.add_argument("--skip-lighthouse", action="store_true")
    parser.add_argument("--skip-offline", action="store_true")
    args = parser.parse_args()

    tiles = TileServer()
    # the environment's tile settings are dropped: the stand-in is the page's OpenStreetMap base map
    for key in [k for k in os.environ if k.startswith(("GEOSERVER_TILES", "GEOSERVER_AMAP", "GEOSERVER_TIANDITU",
                                                        "GEOSERVER_BASEMAPS"))]:
        del os.environ[key]
    os.environ.update({"GEOSERVER_TILES_URL": tiles.url + "/osm/{z}/{x}/{y}.png",
                       "GEOSERVER_TILES_ATTRIBUTION": "stand-in tiles"})
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "chromium": CHROMIUM,
              "form_factor": "mobile", "throttling": "Lighthouse default (simulated: 150 ms RTT, 1.6 Mbit/s, CPU 4x)",
              "runs": args.runs, "tile_bytes": tiles.tile_bytes}
    try:
        with our_server(workers=2) as (base, _proc, _ready):
            warm_up(base)
            if not args.skip_lighthouse:
                result["lighthouse"] = run_lighthouse(base, args.runs)
            if not args.skip_offline:
                from playwright.sync_api import sync_playwright

                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                    try:
                        result["chromium_version"] = browser.version
                        result["offline_time_to_list"] = offline_time_to_list(
                            browser, base, args.selector, args.min_entries, args.runs,
                            int(args.offline_timeout * 1000))
                    finally:
                        browser.close()
    finally:
        tiles.close()
    print_table(result)
    out = ROOT / "benchmarks" / "results" / "lighthouse.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
