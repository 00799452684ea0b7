"""Render the app icon (static/app/icon.svg) as the PNG sizes a web app manifest needs, with Debian's Chromium.

Usage: ``.venv/bin/python scripts/build_icons.py`` (needs the dev extra: Playwright; and /usr/bin/chromium). Writes
static/app/icon-192.png, icon-512.png and icon-maskable-512.png (the mark inside the maskable safe zone, 80 %).
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import sync_playwright

APP = Path(__file__).resolve().parents[1] / "static" / "app"
SVG = (APP / "icon.svg").read_text(encoding="utf-8")
PAGE = """<!doctype html><html><body style="margin:0;background:{bg}">
<div style="width:{size}px;height:{size}px;display:flex;align-items:center;justify-content:center">
<div style="width:{inner}px;height:{inner}px">{svg}</div></div></body></html>"""


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for name, size, inner, bg in (("icon-192.png", 192, 192, "transparent"), ("icon-512.png", 512, 512,
                                                                                  "transparent"),
                                      ("icon-maskable-512.png", 512, 410, "#a4161a")):
            page = browser.new_page(viewport={"width": size, "height": size})
            svg = SVG.replace("<svg ", f'<svg width="{inner}" height="{inner}" ', 1)
            page.set_content(PAGE.format(size=size, inner=inner, svg=svg, bg=bg))
            page.screenshot(path=str(APP / name), omit_background=bg == "transparent")
            page.close()
            print(f"wrote {APP / name}")
        browser.close()


if __name__ == "__main__":
    main()
