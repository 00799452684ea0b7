"""Small Folium elements written with plain Leaflet only (no jQuery, Bootstrap or icon fonts).

Every string that ends up in the page goes through ``tojson`` or :func:`js_json` (both escape ``<``, ``>``, ``&``), so
data can never close a ``<script>``; HTML fragments are built in Python with :func:`html.escape` on the data.
"""

from __future__ import annotations

import json

from branca.element import MacroElement
from folium.template import Template


def js_json(obj) -> str:
    """Compact JSON for a ``<script>``: UTF-8 text kept as is (a third of ``tojson``'s ``\\uXXXX`` size for
    Chinese), with ``<``, ``>``, ``&``, ``'`` and the JS line separators escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027"),
                      ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, esc)
    return text


class LocalPopup(MacroElement):
    """A popup bound with plain Leaflet (``layer.bindPopup(html)``), replacing ``folium.Popup`` (which needs
    jQuery). ``html`` is markup: escape the data in it."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.bindPopup({{ this.html|tojson }}, {{ this.options|tojson }});
        {% endmacro %}
    """)

    def __init__(self, html: str, max_width: int = 320):
        super().__init__()
        self._name = "LocalPopup"
        self.html = html
        self.options = {"maxWidth": max_width}


class LocalTooltip(MacroElement):
    """A tooltip bound with plain Leaflet (``layer.bindTooltip(html)``); ``html`` is markup: escape the data."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.bindTooltip({{ this.html|tojson }}, {{ this.options|tojson }});
        {% endmacro %}
    """)

    def __init__(self, html: str, sticky: bool = False):
        super().__init__()
        self._name = "LocalTooltip"
        self.html = html
        self.options = {"sticky": sticky}


class CircleMarkerBatch(MacroElement):
    """Many circle markers added in one go to the parent layer (a MarkerCluster or FeatureGroup).

    ``rows`` are ``[lat, lon, title, line1, line2, ...]``; the popup (built lazily in the browser, escaped) shows
    the title in bold, then each non-empty line prefixed by its label from ``labels``. Much smaller than one
    folium CircleMarker per point (3,400 stations take ~0.3 MB instead of ~5 MB).
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var rows = {{ this.rows_json }};
            var labels = {{ this.labels|tojson }};
            var style = {{ this.style|tojson }};
            var note = {{ this.note|tojson }};
            function esc(s) {
                return String(s).replace(/[&<>"']/g, function (c) {
                    return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
                });
            }
            function popup(layer) {
                var r = layer.options.gsRow, out = ["<b>" + esc(r[2]) + "</b>"];
                for (var j = 3; j < r.length; j++) {
                    if (r[j] !== null && r[j] !== "") {
                        out.push("<br><span class=\\"gs-label\\">" + esc(labels[j - 3]) + "</span> " + esc(r[j]));
                    }
                }
                if (note) { out.push("<br><i class=\\"gs-note\\">" + esc(note) + "</i>"); }
                return out.join("");
            }
            var markers = new Array(rows.length);
            for (var i = 0; i < rows.length; i++) {
                var opts = Object.assign({gsRow: rows[i], gsIndex: i}, style);
                markers[i] = L.circleMarker([rows[i][0], rows[i][1]], opts).bindPopup(popup, {maxWidth: 320});
            }
            var target = {{ this._parent.get_name() }};
            if (target.addLayers) { target.addLayers(markers); }
            else { markers.forEach(function (m) { target.addLayer(m); }); }
        })();
        {% endmacro %}
    """)

    def __init__(self, rows: list[list], labels: list[str], style: dict, note: str = ""):
        super().__init__()
        self._name = "CircleMarkerBatch"
        self.rows, self.labels, self.style, self.note = rows, labels, style, note

    @property
    def rows_json(self) -> str:
        return js_json(self.rows)


class Legend(MacroElement):
    """A fixed legend box (a Leaflet control, class ``geoserver-legend``); ``html`` is trusted markup.

    It is a ``<details>`` element: open on wide screens, folded to its title on narrow ones (< 600 px)."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function () {
            var legend = L.control({position: {{ this.position|tojson }}});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "geoserver-legend");
                div.innerHTML = {{ this.html|tojson }};
                if (window.innerWidth < 600) {
                    var d = div.querySelector("details");
                    if (d) { d.removeAttribute("open"); }
                }
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
    """)

    def __init__(self, html: str, position: str = "bottomleft"):
        super().__init__()
        self._name = "Legend"
        self.html, self.position = html, position


class MapSetup(MacroElement):
    """Page styles; zoom limits (a map without a tile layer has none, and the cluster and heat plugins need a
    maximum); the attribution: Leaflet's prefix as plain text (no outside link) plus ``attribution``."""

    _template = Template("""
        {% macro header(this, kwargs) %}
            <style>{{ this.css }}</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.setMinZoom({{ this.min_zoom|tojson }});
            {{ this._parent.get_name() }}.setMaxZoom({{ this.max_zoom|tojson }});
            {{ this._parent.get_name() }}.attributionControl.setPrefix("Leaflet");
            {%- if this.attribution %}
            {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.attribution|tojson }});
            {%- endif %}
        {% endmacro %}
    """)

    def __init__(self, css: str, attribution: str = "", min_zoom: int = 7, max_zoom: int = 18):
        super().__init__()
        self._name = "MapSetup"
        self.css, self.attribution = css, attribution
        self.min_zoom, self.max_zoom = min_zoom, max_zoom


class PlanningTool(MacroElement):
    """The planning page's controls (``/static/app/planning.js`` and ``planning.css``, the app's own files): the
    script and style are linked in the header, and after the map is built ``GeoPlanning.init`` gets the map, the
    Folium layers it updates in place (by their JS names; None when the layer is absent) and ``config``."""

    _template = Template("""
        {% macro header(this, kwargs) %}
            <link rel="stylesheet" href="{{ this.css_url }}">
            <script src="{{ this.js_url }}"></script>
        {% endmacro %}
        {% macro script(this, kwargs) %}
            GeoPlanning.init({map: {{ this._parent.get_name() }}, layers: {
                {%- for key, name in this.layer_names.items() %}
                {{ key|tojson }}: {{ name if name else "null" }}{{ "," if not loop.last }}
                {%- endfor %}
            }, config: {{ this.config_json }}});
        {% endmacro %}
    """)

    def __init__(self, config: dict, layer_names: dict, js_url: str, css_url: str):
        super().__init__()
        self._name = "PlanningTool"
        self.config, self.layer_names = config, layer_names
        self.js_url, self.css_url = js_url, css_url

    @property
    def config_json(self) -> str:
        return js_json(self.config)
