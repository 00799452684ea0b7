"""Local web assets for Folium maps: no CDN, nothing loaded from outside the app or the HTML file itself.

Leaflet and its plugins come from the npm registry, pinned in ``static/package.json`` / ``package-lock.json`` and
installed into ``static/node_modules`` by ``scripts/install_assets.sh`` (``npm ci``; not committed).

Folium's elements name the CDN files they need in ``default_js`` / ``default_css`` (class attributes).
:func:`localize` walks a map, replaces every such reference by a local one and fails (:class:`AssetError`) on any
it does not know, so an unforeseen CDN link can never slip into a page. Two modes:

``served``
    ``<script src="/static/vendor/leaflet/dist/leaflet.js">``: the web app serves ``static/node_modules`` under
    ``/static/vendor/`` with :func:`asset_file` (which refuses path traversal and anything outside the pinned
    packages). Relative ``url(images/...)`` references in the CSS resolve under the same prefix.
``inline``
    The JavaScript and CSS are embedded in the HTML (CSS images as ``data:`` URIs, CSS comments and source-map
    comments dropped), for self-contained report files that open from disk with no network.

Folium's defaults also list jQuery, Bootstrap, Font Awesome and Leaflet.awesome-markers. The maps here use none
of them (popups are bound with plain Leaflet, markers are circle markers), so they are dropped, and
:func:`localize` refuses a map holding an element that needs them (``folium.Popup`` uses jQuery's ``$``,
``folium.Icon`` uses awesome-markers): use ``elements.LocalPopup`` and circle markers instead.
"""

from __future__ import annotations

import base64
import html as html_lib
import json
import mimetypes
import os
import re
from functools import lru_cache
from pathlib import Path, PurePosixPath

import folium
from branca.element import Element, Figure
from folium.elements import JSCSSMixin

from ..core.service import PROJECT_ROOT

#: URL prefix under which the web app serves ``static/node_modules`` (route ``GET /static/vendor/<path:path>``).
VENDOR_URL_PREFIX = "/static/vendor/"
MODES = ("served", "inline")

#: Folium's asset names -> file under node_modules. Every name Folium may ask for must be here or in DROPPED.
VENDOR_FILES: dict[str, str] = {
    "leaflet": "leaflet/dist/leaflet.js",
    "leaflet_css": "leaflet/dist/leaflet.css",
    "markerclusterjs": "leaflet.markercluster/dist/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/dist/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/dist/MarkerCluster.Default.css",
    "leaflet-heat.js": "leaflet.heat/dist/leaflet-heat.js",
}

#: Folium ``Map`` defaults that the rendered maps do not use (see the module docstring).
DROPPED = frozenset({"jquery", "bootstrap", "awesome_markers", "bootstrap_css", "glyphicons_css",
                     "awesome_markers_font_css", "awesome_markers_css", "awesome_rotate_css"})

#: File types the vendor route serves.
SERVED_SUFFIXES = frozenset({".js", ".css", ".png", ".svg", ".gif", ".map", ".woff", ".woff2"})

#: ``http(s)://`` strings inside the inlined libraries that are never fetched: an XML namespace name used by
#: ``document.createElementNS`` and the URLs in the libraries' licence banners (comments). Anything else counts
#: as an external reference.
NON_FETCHED_URLS = frozenset({
    "http://www.w3.org/2000/svg",            # SVG namespace name in leaflet.js
    "https://leafletjs.com",                 # leaflet.js licence banner and default attribution prefix
    "https://github.com/Leaflet/Leaflet.heat",  # leaflet-heat.js licence banner
    "https://github.com/mourner/simpleheat",    # leaflet-heat.js licence banner
})


class AssetError(RuntimeError):
    """A map needs a web asset that has no local copy, or the local copies are not installed."""


# --- files ----------------------------------------------------------------------------------------------------
def static_dir() -> Path:
    """The folder holding ``package.json`` and ``node_modules`` ($GEOSERVER_STATIC_DIR, else ``static/``)."""
    return Path(os.environ.get("GEOSERVER_STATIC_DIR") or PROJECT_ROOT / "static")


def vendor_dir() -> Path:
    return static_dir() / "node_modules"


@lru_cache(maxsize=4)
def _pinned_packages(package_json: Path) -> frozenset[str]:
    try:
        deps = json.loads(package_json.read_text(encoding="utf-8")).get("dependencies", {})
    except (OSError, ValueError):
        return frozenset()
    return frozenset(deps)


def pinned_packages() -> frozenset[str]:
    """The npm packages named in ``static/package.json`` (the only ones :func:`asset_file` serves)."""
    return _pinned_packages(static_dir() / "package.json")


def asset_file(path: str) -> Path | None:
    """The file for URL path ``path`` (the part after ``/static/vendor/``), or None to answer 404.

    Only files of the packages pinned in ``static/package.json``, only the types in SERVED_SUFFIXES, never
    outside ``node_modules`` (no ``..``, absolute paths, backslashes, NUL, hidden files or symlink escapes).
    """
    if not isinstance(path, str) or not path or len(path) > 300 or "\\" in path or "\x00" in path:
        return None
    parts = path.split("/")  # not PurePosixPath.parts, which would hide "a//b", "./" and a leading "/"
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    pure = PurePosixPath(path)
    if parts[0] not in pinned_packages() or pure.suffix.lower() not in SERVED_SUFFIXES:
        return None
    base = vendor_dir().resolve()
    try:
        target = (base / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base / parts[0]) or not target.is_file():
        return None
    return target


def _read_vendor(rel: str) -> str:
    path = vendor_dir() / rel
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AssetError(f"web asset {rel} is not installed in {vendor_dir()}; run scripts/install_assets.sh "
                         "(npm ci --prefix static)") from None


_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_SOURCE_MAP = re.compile(r"^\s*//[#@] sourceMappingURL=.*$", re.M)


@lru_cache(maxsize=32)
def inline_code(rel: str) -> str:
    """The text of a vendor file ready to embed: CSS with images as data: URIs and no comments; JS without
    source-map comments. Refuses text that would end its ``<script>``/``<style>`` element early."""
    text = _read_vendor(rel)
    if rel.endswith(".css"):
        text = _CSS_COMMENT.sub("", text)
        folder = PurePosixPath(rel).parent

        def data_uri(match: re.Match) -> str:
            ref = match.group(2).strip()
            if ref.startswith(("data:", "#")):
                return match.group(0)
            if "://" in ref or ref.startswith("//"):
                raise AssetError(f"{rel} references {ref}, which cannot be inlined")
            target = vendor_dir() / folder / ref
            mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            try:
                payload = base64.b64encode(target.read_bytes()).decode("ascii")
            except FileNotFoundError:
                raise AssetError(f"{rel} references {ref}, which is not installed") from None
            return f'url("data:{mime};base64,{payload}")'

        text = _CSS_URL.sub(data_uri, text)
        closing = "</style"
    else:
        text = _SOURCE_MAP.sub("", text)
        closing = "</script"
    if closing in text.lower():
        raise AssetError(f"{rel} contains {closing!r} and cannot be embedded")
    return text


# --- folium elements --------------------------------------------------------------------------------------------
class VendorAsset(Element):
    """One vendor script or stylesheet in the page header, served or inline."""

    def __init__(self, rel: str, mode: str, url_prefix: str = VENDOR_URL_PREFIX):
        super().__init__()
        self._name = "VendorAsset"
        self.rel, self.mode, self.url_prefix = rel, mode, url_prefix

    def render(self, **kwargs) -> str:
        css = self.rel.endswith(".css")
        if self.mode == "inline":
            code = inline_code(self.rel)
            return f"<style>{code}</style>\n" if css else f"<script>{code}</script>\n"
        url = self.url_prefix + self.rel
        return f'<link rel="stylesheet" href="{url}"/>\n' if css else f'<script src="{url}"></script>\n'


def _walk(element):
    yield element
    for child in list(element._children.values()):
        yield from _walk(child)


def localize(m: folium.Map, mode: str = "served", url_prefix: str = VENDOR_URL_PREFIX) -> folium.Map:
    """Point every web asset of ``m`` (and its elements) at local copies; returns ``m``.

    Call it after the last element was added (``planning_map`` does); calling it again (e.g. in another mode,
    or after adding elements) is fine. Raises :class:`AssetError` for an asset with no local copy and for
    elements that need the dropped jQuery / awesome-markers.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if not url_prefix.endswith("/"):
        url_prefix += "/"
    root = m.get_root()
    if not isinstance(root, Figure):
        raise AssetError("the map is not in a Figure")
    wanted: list[str] = list(getattr(m, "_vendor_assets", []))
    for el in _walk(root):
        if isinstance(el, (folium.Popup, folium.Icon)):
            raise AssetError(f"{type(el).__name__} needs jQuery or awesome-markers, which are not bundled; "
                             "use geoserver.render.elements.LocalPopup / CircleMarker")
        if getattr(el, "objects_to_stay_in_front", None):
            raise AssetError("Map.keep_in_front needs jQuery, which is not bundled")
        if not isinstance(el, JSCSSMixin):
            continue
        for name, url in [*el.default_js, *el.default_css]:
            if name in DROPPED:
                continue
            rel = VENDOR_FILES.get(name)
            if rel is None:
                raise AssetError(f"{type(el).__name__} needs web asset {name!r} ({url}), which has no local "
                                 "copy: add its npm package to static/package.json and VENDOR_FILES")
            if rel not in wanted:
                wanted.append(rel)
        # instance attributes shadow the class lists, so no other map in the process is affected
        el.default_js, el.default_css = [], []
    # stylesheets first, then scripts in dependency order (Leaflet before its plugins)
    wanted.sort(key=lambda rel: (not rel.endswith(".css"), not rel.startswith("leaflet/")))
    m._vendor_assets = wanted
    if mode == "inline":
        for rel in wanted:
            inline_code(rel)  # fail now, not half-way through rendering
    # at the top of <head> (after the charset <meta>), so the page's own styles come after and win
    header = root.header
    for key in [k for k in header._children if k.startswith("vendor:")]:
        del header._children[key]
    start = 0
    for key in header._children:
        if not key.startswith("meta"):
            break
        start += 1
    for i, rel in enumerate(wanted):
        header.add_child(VendorAsset(rel, mode, url_prefix), name="vendor:" + rel, index=start + i)
    m._asset_mode = mode
    return m


def render_html(m: folium.Map, mode: str | None = None, url_prefix: str = VENDOR_URL_PREFIX) -> str:
    """The whole HTML page of ``m`` with local assets (``mode`` defaults to the one ``localize`` last used)."""
    localize(m, mode or getattr(m, "_asset_mode", "served"), url_prefix)
    return m.get_root().render()


# --- checking ---------------------------------------------------------------------------------------------------
_ABS_URL = re.compile(r"""(?i)\b(?:https?|wss?|ftp):(?://|\\/\\/)[^\s"'<>()\\`]+""")
_PROTOCOL_RELATIVE = re.compile(r"""(?i)(?:\b(?:src|href|action|poster|data)\s*=\s*["']?|url\(\s*["']?"""
                                r"""|@import\s+["'])(//[^\s"'<>)]+)""")


def external_references(html: str, allowed=()) -> list[str]:
    """Every URL in ``html`` that points outside the page or app: absolute ``http(s)``/``ws(s)``/``ftp`` URLs
    anywhere (attributes, CSS, script text) and protocol-relative ``//host`` in attributes and CSS, except the
    ``allowed`` strings (e.g. the configured tile URL template and its attribution links) and NON_FETCHED_URLS.
    Entities are decoded first, so URLs inside attribute values such as an ``<iframe srcdoc>`` count too."""
    allowed = set(allowed) | NON_FETCHED_URLS
    text = html_lib.unescape(html)  # attribute values (e.g. an iframe's srcdoc) as the browser reads them
    found = [u.rstrip(".,;") for u in _ABS_URL.findall(text)]
    found += _PROTOCOL_RELATIVE.findall(text)
    out = []
    for url in found:
        if url in allowed or url.replace("\\/", "/") in allowed:
            continue
        out.append(url)
    return out
