/* Data management page: sign in with an operator token, import a list (check first), see versions, restore one,
 * place pending rows (待定位) on a map, edit one facility.
 * Everything goes through the admin API (/api/admin/...) with the token in the Authorization header; the token is
 * kept in sessionStorage (this tab only). Text from files is always set with textContent, never as HTML.
 *
 * Positions: the server stores WGS84 and does every conversion of what it stores (?crs= on a write). The editor
 * keeps the position exactly as a person made it, in the datum they made it in: a pin placed on the map in the
 * base map's datum (GCJ-02 on Amap tiles), typed numbers in the datum chosen beside them, a search result or a
 * stored point in WGS84; that is sent unchanged with its ?crs=. The browser converts (datum.js) only to draw the
 * pin and the district outlines on the base map and to show the numbers in the chosen datum. */
(function () {
  "use strict";
  var KEY = "geoserver.admin.token";
  var $ = function (id) { return document.getElementById(id); };
  var boot = JSON.parse(document.getElementById("boot").textContent);
  var GD = window.GeoDatum;
  var state = { token: sessionStorage.getItem(KEY) || "", layers: [], layer: null, geocoder: null,
                editing: null, pos: null, start: null, job: null, pendingSeq: 0 };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    return append(node, children);
  }
  /** Append nodes and strings (as text) to `node`; null and "" are skipped. */
  function append(node, children) {
    (children || []).forEach(function (c) {
      if (c === null || c === undefined || c === "") return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  /** Chinese text, a line break, the English in the muted style. */
  function bi(zh, en) { return [zh, el("br"), el("span", { className: "en", text: en })]; }
  function enc(s) { return encodeURIComponent(s); }

  function api(method, path, body, opts) {
    opts = opts || {};
    var init = { method: method, headers: { "Authorization": "Bearer " + state.token } };
    if (opts.etag) init.headers["If-Match"] = opts.etag;
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    return fetch(path, init).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (resp.status === 401 && !opts.keep401) signOut("令牌无效或已撤销 / The token is not valid (unknown or revoked)");
        return { status: resp.status, ok: resp.ok, data: data, etag: resp.headers.get("ETag") };
      });
    }, function (err) {
      return { status: 0, ok: false, data: { description: "网络错误，请检查连接后重试 / Network error: check the connection and try again (" +
        err.message + ")" } };
    });
  }
  function errorText(r) {
    if (r.status === 403) return "此令牌不能修改该图层 / This token may not change this layer";
    return r.data.description || ("HTTP " + r.status);
  }

  function signOut(message) {
    state.token = "";
    sessionStorage.removeItem(KEY);
    stopJob();
    $("workspace").hidden = true; $("signout").hidden = true; $("who").hidden = true; $("signin").hidden = false;
    $("signin-error").hidden = !message; $("signin-error").textContent = message || "";
  }

  function signIn() {
    return api("GET", "/api/admin/layers").then(function (r) {
      if (!r.ok) { if (r.status !== 401) signOut(errorText(r)); return; }
      state.layers = r.data.layers.filter(function (l) { return l.may_edit; });
      state.geocoder = r.data.geocoder || null;
      $("who").textContent = "操作人 / Operator: " + r.data.operator; $("who").hidden = false;
      $("signin").hidden = true; $("workspace").hidden = false; $("signout").hidden = false;
      var select = $("layer"); select.textContent = "";
      state.layers.forEach(function (l) { select.appendChild(el("option", { value: l.id, text: l.title_zh + " (" + l.id + ")" })); });
      setupGeocoder();
      if (!state.layers.length) { $("layer-info").textContent = "此令牌不能修改任何图层 / This token may not change any layer"; return; }
      state.layer = state.layers[0].id;
      refresh();
    });
  }

  function refresh() {
    var layer = currentLayer();
    api("GET", "/api/admin/layers").then(function (r) {
      if (!r.ok) return;
      state.geocoder = r.data.geocoder || null;
      setupGeocoder();
      var now = r.data.layers.filter(function (l) { return l.id === state.layer; })[0] || layer;
      state.layers = state.layers.map(function (l) { return l.id === now.id ? now : l; });
      $("layer-info").textContent = now.features + " 个公开点位 / public features · " + (now.pending || 0) +
        " 个待定位 / pending · 版本 / version " + (now.version || "—") + " · 数据版本 / data " + now.data_version;
      showReasons(now.pending_by_reason || {});
    });
    loadPending(true);
    api("GET", "/api/admin/layers/" + state.layer + "/history").then(function (r) { if (r.ok) showHistory(r.data); });
    api("GET", "/api/admin/audit?limit=20&layer=" + enc(state.layer)).then(function (r) {
      if (r.ok) showAudit(r.data.records);
    });
  }

  function download(fmt, button) {
    button.disabled = true;
    fetch("/api/admin/layers/" + state.layer + "/export?format=" + fmt, { headers: { "Authorization": "Bearer " + state.token } })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.blob();
      }).then(function (blob) {
        var a = el("a", { href: URL.createObjectURL(blob), download: state.layer + "." + fmt });
        document.body.appendChild(a); a.click(); a.remove();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      }).catch(function (err) { window.alert("下载失败 / Download failed: " + err.message); })
      .then(function () { button.disabled = false; });
  }

  // --- the pending queue (待定位) --------------------------------------------------------------------------------
  /** Why a row is pending: the codes of geoserver/core/locate.py as short labels. */
  var REASONS = {
    no_coordinates: ["没有坐标", "No coordinates"],
    address_changed: ["地址已修改，位置待确认", "The address changed: the position needs checking"],
    no_address: ["没有可用于地理编码的地址或名称", "No address or name to geocode"],
    not_found: ["地理编码未找到该地址", "The geocoder did not find the address"],
    imprecise: ["地理编码结果不够精确", "The geocoder's answer is not precise enough"],
    other_district: ["地理编码结果在其他区", "The geocoder's answer lies in another district"],
    outside_shanghai: ["地理编码结果不在上海", "The geocoder's answer is outside Shanghai"],
    geocoder_error: ["地理编码服务暂不可用", "The geocoder could not be reached"]
  };
  function reasonLabel(code) {
    if (!code) return ["待定位", "Pending"];
    return REASONS[code] || [code, code];
  }
  var PROVIDERS = { amap: "高德 Amap", tianditu: "天地图 Tianditu", tencent: "腾讯 Tencent", baidu: "百度 Baidu" };
  var SOURCES = { file: ["导入的文件", "imported file"], map: ["地图标注", "placed on the map"],
                  typed: ["输入坐标", "typed coordinates"], admin: ["管理接口", "admin API"] };
  function sourceLabel(code) {
    if (!code) return ["未记录", "not recorded"];
    if (code.indexOf("geocoder:") === 0) {
      var p = code.slice(9);
      return ["地理编码（" + (PROVIDERS[p] || p).split(" ")[0] + "）", "geocoder (" + (PROVIDERS[p] || p).split(" ").pop() + ")"];
    }
    return SOURCES[code] || [code, code];
  }

  var QUEUE_PAGE = 50;
  function loadPending(reset) {
    var list = $("pending-list"), seq = ++state.pendingSeq, layer = state.layer;
    var offset = reset ? 0 : list.querySelectorAll("li[data-feature-id]").length;
    api("GET", "/api/admin/layers/" + layer + "/features?location_status=pending&limit=" + QUEUE_PAGE + "&offset=" + offset)
      .then(function (r) {
        if (seq !== state.pendingSeq || layer !== state.layer) return;   // a newer load (or another layer) won
        if (reset) list.textContent = "";
        if (!r.ok) { list.appendChild(el("li", { className: "error", text: errorText(r) })); return; }
        var n = r.data.numberMatched;
        $("pending-count").hidden = false;
        $("pending-count").textContent = n + " 个 / rows";
        list.setAttribute("data-count", String(n));
        if (!n) list.appendChild(el("li", { className: "muted empty" }, bi("没有待定位的点位：每一行都有位置。", "Nothing pending: every row has a position.")));
        r.data.features.forEach(function (f) { list.appendChild(queueItem(f)); });
        $("pending-more").hidden = list.querySelectorAll("li[data-feature-id]").length >= n;
      });
  }

  function queueItem(f) {
    var p = f.properties, why = reasonLabel(p.location_reason);
    var where = [p.district, p.subdistrict, p.address].filter(function (v) { return v; }).join(" · ");
    var button = el("button", { type: "button", className: "queue-row" }, [
      el("span", { className: "q-name" }, [p.name || "（无名称 / no name）", " ", el("span", { className: "q-id", text: f.id })]),
      el("span", { className: "q-addr", text: where || "（无地址 / no address）" }),
      el("span", { className: "q-reason" }, bi(why[0], why[1])),
      p.location_note ? el("span", { className: "q-note", text: p.location_note }) : null,
      f.geometry ? el("span", { className: "q-proposed", text: "有建议位置 / has a proposed position" }) : null
    ]);
    button.addEventListener("click", function () { openFeature(f.id); });
    return el("li", { "data-feature-id": f.id }, [button]);
  }

  function showReasons(byReason) {
    var parts = Object.keys(byReason).filter(function (k) { return byReason[k]; }).map(function (k) {
      var label = reasonLabel(k === "null" ? null : k);
      return label[0] + " " + byReason[k] + "（" + label[1] + "）";
    });
    $("pending-reasons").textContent = parts.length ? "原因 / Why: " + parts.join(" · ") : "";
  }

  // --- geocoding jobs ---------------------------------------------------------------------------------------------
  function setupGeocoder() {
    var has = !!state.geocoder;
    $("geocode-controls").hidden = !has;
    $("geocode-none").hidden = has;
    $("geocode-start").disabled = !has || !!state.job;
    $("geo-search").hidden = !has;
    $("geocode-provider").textContent = has ? "地理编码服务 / Geocoder: " + (PROVIDERS[state.geocoder] || state.geocoder) : "";
  }

  function jobStatus(children, kind) {
    var box = $("geocode-status"); box.textContent = "";
    box.appendChild(el("p", { className: kind || "" }, children));
    return box;
  }

  function startGeocode() {
    var button = $("geocode-start"), layer = state.layer;
    button.disabled = true;
    jobStatus(bi("正在启动地理编码…", "Starting the geocoder…"));
    api("POST", "/api/admin/layers/" + layer + "/geocode", { retry_failed: $("geocode-retry").checked, dry_run: false })
      .then(function (r) {
        if (r.status === 202) { watchJob(r.data, layer); return; }
        button.disabled = false;
        if (r.status === 409) jobStatus(bi("该图层已有地理编码任务在运行，请稍候再试。", "A geocoding job is already running for this layer: wait for it."), "error");
        else if (r.status === 503) jobStatus(bi("未配置地理编码服务：请在地图上标注。", "No geocoder configured: place rows on the map."), "error");
        else jobStatus(["地理编码未能启动 / Geocoding did not start: " + errorText(r)], "error");
      });
  }

  function watchJob(job, layer) {
    stopJob();
    state.job = { id: job.job_id, url: job.status_url, layer: layer, timer: null };
    $("geocode-start").disabled = true;
    $("geocode-cancel").hidden = false; $("geocode-cancel").disabled = false;
    $("geocode-progress").hidden = false; $("geocode-progress").value = 0;
    jobStatus(bi("地理编码中…", "Geocoding…"));
    pollJob(state.job);
  }

  function stopJob() {
    if (state.job && state.job.timer) clearTimeout(state.job.timer);
    state.job = null;
  }

  function pollJob(job) {
    api("GET", job.url).then(function (r) {
      if (state.job !== job) return;
      if (!r.ok) { finishJob(job, { state: "failed", message: errorText(r) }); return; }
      var s = r.data;
      $("geocode-progress").value = s.progress || 0;
      if (s.state === "running") {
        var done = s.message && /^\d+\/\d+$/.test(s.message) ? " " + s.message : "";
        jobStatus(bi("地理编码中…" + done, "Geocoding…" + done));
        job.timer = setTimeout(function () { pollJob(job); }, 600);
        return;
      }
      finishJob(job, s);
    });
  }

  function finishJob(job, s) {
    stopJob();
    $("geocode-cancel").hidden = true;
    $("geocode-progress").hidden = true;
    $("geocode-start").disabled = !state.geocoder;
    var res = s.result, lines = [];
    var head = {
      done: ["地理编码完成", "Geocoding finished"],
      cancelled: ["地理编码已停止：已处理的行已保存", "Geocoding stopped: the rows done so far are saved"],
      stopped: ["地理编码提前结束", "Geocoding stopped early"],
      failed: ["地理编码失败", "Geocoding failed"]
    }[s.state] || [s.state, s.state];
    var box = jobStatus(bi(head[0], head[1]), s.state === "done" ? "ok" : "error");
    if (s.state === "failed" && s.message) box.appendChild(el("p", { className: "error", text: s.message }));
    if (res) {
      var still = 0;
      Object.keys(res.pending || {}).forEach(function (k) { still += res.pending[k]; });
      lines.push(el("p", { className: "job-result" }, bi(
        "尝试 " + res.tried + " 行 · 已定位并公开 " + res.located + " 行 · 仍待定位 " + still + " 行" + (res.version ? " · 版本 v" + res.version : ""),
        "Tried " + res.tried + " · located and now public " + res.located + " · still pending " + still + (res.version ? " · version " + res.version : ""))));
      var reasons = Object.keys(res.pending || {}).filter(function (k) { return res.pending[k]; });
      if (reasons.length) {
        var ul = el("ul", { className: "job-reasons" });
        reasons.forEach(function (k) {
          var label = reasonLabel(k);
          ul.appendChild(el("li", {}, [label[0] + "：" + res.pending[k], " ", el("span", { className: "en", text: label[1] })]));
        });
        lines.push(ul);
      }
      if (res.stopped && s.state !== "cancelled") lines.push(el("p", { className: "error", text: res.stopped }));
      if (res.skipped) lines.push(el("p", { className: "muted" }, bi("跳过 " + res.skipped + " 行（处理期间被修改）",
        res.skipped + " rows skipped (edited meanwhile)")));
      lines.forEach(function (n) { box.appendChild(n); });
    }
    if (job.layer === state.layer) refresh();
  }

  function cancelGeocode() {
    var job = state.job;
    if (!job) return;
    $("geocode-cancel").disabled = true;
    jobStatus(bi("正在停止…", "Stopping…"));
    api("DELETE", job.url);
  }

  // --- the placing map ------------------------------------------------------------------------------------------
  var BASE_LABELS = { amap: "高德地图 / Amap (GCJ-02)", osm: "标准地图 / OpenStreetMap (WGS84)", none: "无底图 / No base map" };
  var DATUM_LABELS = { wgs84: "WGS84", gcj02: "GCJ-02", bd09: "BD-09" };
  var PIN_SVG = '<svg viewBox="0 0 32 44" aria-hidden="true" focusable="false"><path class="pin-body" ' +
    'd="M16 43C16 43 2 26.5 2 16a14 14 0 0 1 28 0C30 26.5 16 43 16 43z"/><circle class="pin-dot" cx="16" cy="16" r="5.5"/></svg>';
  var M = { map: null, L: null, tiles: null, base: boot.basemaps[0], shownCrs: null, pin: null, outlines: null,
            outlineData: null, leaflet: null, outlinePromise: null, districtGeom: null };

  function loadLeaflet() {
    if (M.leaflet) return M.leaflet;
    M.leaflet = new Promise(function (resolve, reject) {
      if (window.L) { resolve(window.L); return; }
      var waiting = boot.vendor.css.length + boot.vendor.js.length, failed = false;
      function done(ok) {
        if (!ok) failed = true;
        if (--waiting > 0) return;
        if (failed || !window.L) reject(new Error("Leaflet did not load")); else resolve(window.L);
      }
      boot.vendor.css.forEach(function (href) {
        var link = el("link", { rel: "stylesheet", href: href });
        link.onload = function () { done(true); };
        link.onerror = function () { done(false); };
        document.head.insertBefore(link, document.head.querySelector("link[rel=stylesheet]"));
      });
      boot.vendor.js.forEach(function (src) {
        var s = document.createElement("script");
        s.src = src; s.async = false;
        s.onload = function () { done(true); };
        s.onerror = function () { done(false); };
        document.head.appendChild(s);
      });
    });
    M.leaflet.catch(function () { M.leaflet = null; });  // try again next time
    return M.leaflet;
  }

  function loadOutlines() {
    if (!M.outlinePromise) {
      M.outlinePromise = fetch(boot.api.districts).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      }).then(function (gj) { M.outlineData = gj; return gj; });
      M.outlinePromise.catch(function () { M.outlinePromise = null; });
    }
    return M.outlinePromise;
  }

  function displayCrs() { return M.base.crs; }
  /** lon/lat in datum `from` as drawn on the base map shown. */
  function toDisplay(lon, lat, from) { return GD.convert(lon, lat, from, displayCrs()); }
  function mapCoords(coords, fn) {
    return typeof coords[0] === "number" ? fn(coords[0], coords[1]) : coords.map(function (c) { return mapCoords(c, fn); });
  }
  function displayGeometry(geom) {
    if (!geom) return null;
    return { type: geom.type, coordinates: mapCoords(geom.coordinates, function (x, y) { return toDisplay(x, y, "wgs84"); }) };
  }

  // point in polygon (even-odd ray casting over every ring: holes count as outside)
  function inRings(x, y, rings) {
    var inside = false;
    rings.forEach(function (ring) {
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
        if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
      }
    });
    return inside;
  }
  function inGeometry(x, y, geom) {
    if (!geom) return false;
    if (geom.type === "Polygon") return inRings(x, y, geom.coordinates);
    if (geom.type === "MultiPolygon") return geom.coordinates.some(function (poly) { return inRings(x, y, poly); });
    return false;
  }
  function bboxOf(geom) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    mapCoords(geom.coordinates, function (x, y) {
      b[0] = Math.min(b[0], x); b[1] = Math.min(b[1], y); b[2] = Math.max(b[2], x); b[3] = Math.max(b[3], y);
    });
    return b;
  }

  /** The row's 行政区 as typed in the form (or stored). */
  function districtName() {
    var input = $("f-district");
    return input ? input.value.trim() : "";
  }
  function districtFeature(name) {
    if (!M.outlineData || !name) return null;
    var fs = M.outlineData.features;
    return fs.filter(function (f) { return f.properties.name === name; })[0] ||
      fs.filter(function (f) { return f.properties.name === name + "区"; })[0] ||
      fs.filter(function (f) { return name.length >= 2 && f.properties.name.indexOf(name) === 0; })[0] || null;
  }
  function districtAt(lon, lat, crs) {  // the district (feature) a position lies in, by the outlines
    if (!M.outlineData) return null;
    var w = GD.convert(lon, lat, crs, "wgs84");
    return M.outlineData.features.filter(function (f) { return inGeometry(w[0], w[1], f.geometry); })[0] || null;
  }

  function ensureMap() {
    return Promise.all([loadLeaflet(), loadOutlines().catch(function () { return null; })]).then(function (res) {
      var L = res[0];
      if (M.map) return M.map;
      M.L = L;
      var b = boot.basemaps[0];
      M.map = L.map($("pick-map"), { center: [31.23, 121.47], zoom: 10, minZoom: 7, maxZoom: 19,
                                      attributionControl: true, zoomControl: true });
      M.map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
      var select = $("pick-base"); select.textContent = "";
      boot.basemaps.forEach(function (bm) { select.appendChild(el("option", { value: bm.id, text: BASE_LABELS[bm.id] || bm.id })); });
      $("base-box").hidden = boot.basemaps.length < 2;
      setBase(b.id);
      M.map.on("click", function (e) { placeFromMap(e.latlng); });
      $("pick-map").setAttribute("data-ready", "true");
      return M.map;
    });
  }

  function setBase(id) {
    var L = M.L, before = M.map.getCenter(), prev = M.shownCrs;
    M.base = boot.basemaps.filter(function (bm) { return bm.id === id; })[0] || boot.basemaps[0];
    $("pick-base").value = M.base.id;
    if (M.tiles) { M.map.removeLayer(M.tiles); M.tiles = null; }
    if (M.base.url) {
      M.tiles = L.tileLayer(M.base.url, { subdomains: M.base.subdomains || "abc", attribution: M.base.attribution || "",
        maxNativeZoom: M.base.max_native_zoom || 18, maxZoom: 19 }).addTo(M.map);
    }
    $("pick-map").classList.toggle("no-tiles", !M.base.url);
    $("pick-map").setAttribute("data-crs", M.base.crs);
    M.shownCrs = M.base.crs;
    if (prev && prev !== M.base.crs) {
      var c = GD.convert(before.lng, before.lat, prev, M.base.crs);
      M.map.setView([c[1], c[0]], M.map.getZoom(), { animate: false });
    }
    drawOutlines();
    showPin();
    checkInside();
  }

  function drawOutlines() {
    if (!M.map) return;
    var L = M.L, wanted = districtFeature(districtName());
    if (M.outlines) { M.map.removeLayer(M.outlines); M.outlines = null; }
    M.districtGeom = wanted ? displayGeometry(wanted.geometry) : null;
    if (!M.outlineData) return;
    var tiles = !!M.base.url, shown = { type: "FeatureCollection", features: M.outlineData.features.map(function (f) {
      return { type: "Feature", id: f.id, properties: f.properties, geometry: displayGeometry(f.geometry) };
    }) };
    M.outlines = L.geoJSON(shown, { interactive: false, style: function (f) {
      if (wanted && f.properties.name === wanted.properties.name) {
        return { color: "#a4161a", weight: 3.5, fill: true, fillColor: "#a4161a", fillOpacity: tiles ? 0.05 : 0.12 };
      }
      return { color: "#5b6068", weight: tiles ? 1.5 : 1.2, dashArray: tiles ? "4 4" : null, fill: !tiles,
               fillColor: "#ffffff", fillOpacity: 0.6 };
    } });
    M.outlines.eachLayer(function (lyr) {
      var on = wanted && lyr.feature.properties.name === wanted.properties.name;
      if (on || !tiles) {
        lyr.bindTooltip(lyr.feature.properties.name, { permanent: true, direction: "center", interactive: false,
          className: on ? "dlabel dlabel-on" : "dlabel" });
      }
      if (on) lyr.once("add", function () { lyr.bringToFront(); });
    });
    M.outlines.addTo(M.map);
  }

  /** Where the pin is drawn: the position (confirmed or not), else nothing. */
  function showPin() {
    if (!M.map) return;
    var L = M.L, p = state.pos;
    if (!p) { if (M.pin) { M.map.removeLayer(M.pin); M.pin = null; } return; }
    var d = toDisplay(p.lon, p.lat, p.crs), ll = [d[1], d[0]];
    if (!M.pin) {
      M.pin = L.marker(ll, { draggable: true, keyboard: true, autoPan: true, zIndexOffset: 1000, riseOnHover: true,
        title: "图钉：拖动或用方向键移动 / Pin: drag it or move it with the arrow keys",
        icon: L.divIcon({ className: "admin-pin", html: PIN_SVG, iconSize: [32, 44], iconAnchor: [16, 43] }) }).addTo(M.map);
      M.pin.on("dragend", function () { placeFromMap(M.pin.getLatLng()); });
      var node = M.pin.getElement();
      node.setAttribute("aria-label", "图钉：拖动或用方向键移动 / Pin: drag it or move it with the arrow keys");
      node.setAttribute("data-pin", "true");
      node.addEventListener("keydown", nudgePin);
    } else {
      M.pin.setLatLng(ll);
    }
    M.pin.getElement().classList.toggle("tentative", !p.confirmed);
  }

  function nudgePin(e) {
    var step = e.shiftKey ? 1 : 10;
    var d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    if (!d || !M.pin) return;
    e.preventDefault(); e.stopPropagation();
    var pt = M.map.latLngToContainerPoint(M.pin.getLatLng());
    placeFromMap(M.map.containerPointToLatLng([pt.x + d[0], pt.y + d[1]]));
  }

  /** The pin was put at `latlng` (a tap, a drag, the arrow keys): in the datum of the base map shown. */
  function placeFromMap(latlng) {
    state.pos = { lon: latlng.lng, lat: latlng.lat, crs: displayCrs(), source: "map", confirmed: true };
    showPin();
    showFields();
    checkInside();
    showHint();
  }

  /** How close to show a point: street level on tiles; without tiles only the outlines give context. */
  function closeZoom() { return M.base.url ? 17 : 15; }
  function centreOn(p, zoom) {
    if (!M.map || !p) return;
    var d = toDisplay(p.lon, p.lat, p.crs);
    M.map.setView([d[1], d[0]], zoom || Math.max(M.map.getZoom(), closeZoom()), { animate: false });
  }
  function panToPin() {
    if (!M.map || !M.pin) return;
    if (!M.map.getBounds().pad(-0.1).contains(M.pin.getLatLng())) centreOn(state.pos);
  }

  /** The first view of a feature: its point, else its district, else the city. */
  function initialView() {
    var p = state.pos, f = districtFeature(districtName());
    if (p && (p.confirmed || p.source === "proposed")) { centreOn(p, closeZoom()); return; }
    if (f) {
      var b = bboxOf(displayGeometry(f.geometry));
      M.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { padding: [10, 10], animate: false });
      return;
    }
    if (M.outlineData) {
      var all = { type: "MultiPolygon", coordinates: [] };
      M.outlineData.features.forEach(function (g) {
        all.coordinates = all.coordinates.concat(g.geometry.type === "Polygon" ? [g.geometry.coordinates] : g.geometry.coordinates);
      });
      var c = bboxOf(displayGeometry(all));
      M.map.fitBounds([[c[1], c[0]], [c[3], c[2]]], { animate: false });
    }
  }

  /** A tentative pin for a row without a point: the centre of its 行政区 (of the outline's bounds). */
  function districtCentre() {
    var f = districtFeature(districtName());
    if (!f) return null;
    var b = bboxOf(f.geometry);
    return { lon: (b[0] + b[2]) / 2, lat: (b[1] + b[3]) / 2, crs: "wgs84", source: "centre", confirmed: false,
             district: f.properties.name };
  }

  function checkInside() {
    var warn = $("pin-warning"), p = state.pos, name = districtName(), f = districtFeature(name);
    if (!p || !p.confirmed || !f) { warn.hidden = true; warn.textContent = ""; return; }
    var geom = M.map ? M.districtGeom : displayGeometry(f.geometry);
    var d = toDisplay(p.lon, p.lat, p.crs);
    if (inGeometry(d[0], d[1], geom)) { warn.hidden = true; warn.textContent = ""; return; }
    var at = districtAt(p.lon, p.lat, p.crs), dn = f.properties.name;
    warn.textContent = "";
    append(warn, bi("图钉不在" + dn + "内" + (at ? "（位于" + at.properties.name + "）" : "（在上海市界外）") +
       "：请核对位置或行政区。超出区界 150 米以上时，服务器会拒绝保存。",
       "The pin lies outside " + dn + " (" + (f.properties.name_en || dn) + ")" +
       (at ? ", in " + at.properties.name + " (" + (at.properties.name_en || "") + ")" : ", outside Shanghai") +
       ": check the position or the district. The server refuses a point more than 150 m outside its district."));
    warn.hidden = false;
  }

  function showHint() {
    var hint = $("pin-hint"), p = state.pos, e = state.editing, pending = e && e.feature &&
      e.feature.properties.location_status === "pending";
    hint.textContent = "";
    var text;
    if (!p) text = ["点击地图放置图钉。", "Tap the map to place the pin."];
    else if (!p.confirmed && p.source === "proposed") {
      text = ["图钉在地理编码给出的建议位置（未确认）：拖动图钉或点击地图上的准确位置。",
              "The pin is at the geocoder's proposed position (not confirmed): drag it or tap the exact spot on the map."];
    } else if (!p.confirmed) {
      text = ["图钉在" + (p.district || "行政区") + "中心（未确认）：点击地图上的准确位置，或拖动图钉。",
              "The pin is at the centre of " + (p.district || "the district") + " (not confirmed): tap the exact spot on the map, or drag the pin."];
    } else if (p.source === "stored") {
      text = ["当前位置。拖动图钉或点击地图可修改。", "The current position. Drag the pin or tap the map to change it."];
    } else {
      var how = p.source === "typed" ? ["按输入的坐标（" + DATUM_LABELS[p.crs] + "）", "from the typed coordinates (" + DATUM_LABELS[p.crs] + ")"]
        : p.source === "search" ? ["按查找结果", "from the address search"] : ["在地图上", "on the map"];
      text = ["位置已" + how[0] + "设定" + (pending || !e || !e.id ? "；保存后即公开。" : "；保存后生效。"),
              "Position set " + how[1] + (pending || !e || !e.id ? "; saving makes it public." : "; save to keep it.")];
    }
    append(hint, bi(text[0], text[1]));
    if (p && !p.confirmed && p.source === "proposed") {
      var use = el("button", { type: "button", id: "use-proposed", text: "使用建议位置 / Use the proposed position" });
      use.addEventListener("click", function () {
        state.pos = { lon: p.lon, lat: p.lat, crs: p.crs, source: "map", confirmed: true };
        showPin(); showFields(); checkInside(); showHint();
      });
      hint.appendChild(el("span", { className: "hint-action" }, [use]));
    }
  }

  // --- typed coordinates ----------------------------------------------------------------------------------------
  function datum() { return $("f-datum").value; }
  function parseNumber(text) {
    var t = text.replace(/[\uFF10-\uFF19]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xFEE0); })
      .replace(/\uFF0E/g, ".").replace(/[°\s]/g, "");
    return /^[+-]?\d+(\.\d+)?$/.test(t) ? Number(t) : null;
  }
  /** The fields show the position in the chosen datum (what was typed stays as typed). */
  function showFields() {
    var p = state.pos;
    coordsError("");
    if (!p || !p.confirmed) { $("f-lon").value = ""; $("f-lat").value = ""; return; }
    if (p.source === "typed" && p.crs === datum()) return;
    var c = GD.convert(p.lon, p.lat, p.crs, datum());
    $("f-lon").value = c[0].toFixed(6); $("f-lat").value = c[1].toFixed(6);
  }
  function coordsError(message) {
    var box = $("coords-error");
    box.hidden = !message; box.textContent = message || "";
    $("f-lon").setAttribute("aria-invalid", message ? "true" : "false");
    $("f-lat").setAttribute("aria-invalid", message ? "true" : "false");
  }
  /** What the fields say: null (both empty), "partial", "invalid", or {lon, lat}. */
  function readFields() {
    var lonText = $("f-lon").value.trim(), latText = $("f-lat").value.trim();
    if (!lonText && !latText) return null;
    if (!lonText || !latText) return "partial";
    var lon = parseNumber(lonText), lat = parseNumber(latText);
    if (lon === null || lat === null || Math.abs(lon) > 180 || Math.abs(lat) > 90) return "invalid";
    return { lon: lon, lat: lat };
  }
  function onTyped(e) {
    // "lon,lat" pasted into one field (as Amap's and Baidu's coordinate pickers copy it)
    var pair = e.target.value.match(/^\s*([+-]?\d+(?:\.\d+)?)\s*[,，;\s]\s*([+-]?\d+(?:\.\d+)?)\s*$/);
    if (pair) {
      var a = pair[1], b = pair[2];
      if (Math.abs(Number(a)) <= 90 && Math.abs(Number(b)) > 90) { var t = a; a = b; b = t; }
      $("f-lon").value = a; $("f-lat").value = b;
    }
    var v = readFields();
    if (v === null) { coordsError(""); unconfirm(); return; }
    if (v === "partial") { coordsError(""); return; }
    if (v === "invalid") { coordsError("请输入有效的经度（-180 至 180）和纬度（-90 至 90）/ Enter a valid longitude (−180 to 180) and latitude (−90 to 90)"); return; }
    coordsError("");
    state.pos = { lon: v.lon, lat: v.lat, crs: datum(), source: "typed", confirmed: true };
    showPin(); panToPin(); checkInside(); showHint();
  }
  function onDatum() {
    var p = state.pos;
    if (p && p.confirmed && p.source === "typed") {   // the typed numbers are read in the datum now chosen
      p.crs = datum();
      showPin(); panToPin(); checkInside(); showHint();
    } else {
      showFields();                                  // the same position, shown in the datum now chosen
    }
  }
  /** Back to no confirmed position: the pin returns to where the row started (tentative) or goes. */
  function unconfirm() {
    state.pos = state.start && !state.start.confirmed ? state.start : districtCentre();
    showPin(); showFields(); checkInside(); showHint();
  }

  // --- address search (with a configured geocoder) ----------------------------------------------------------------
  function searchAddress() {
    var q = $("geo-q").value.trim(), out = $("geo-status"), list = $("geo-candidates");
    list.textContent = "";
    if (!q) { $("geo-q").focus(); return; }
    out.textContent = "查找中… / Searching…";
    var district = districtName();
    api("GET", "/api/admin/geocode?q=" + enc(q) + (district ? "&district=" + enc(district) : "")).then(function (r) {
      out.textContent = "";
      if (!r.ok) {
        out.appendChild(el("p", { className: "error" }, r.status === 503 ?
          bi("未配置地理编码服务：请在地图上标注。", "No geocoder configured: place the pin on the map.") :
          ["查找失败 / Search failed: " + errorText(r)]));
        return;
      }
      var cs = r.data.candidates || [];
      if (!cs.length) { out.appendChild(el("p", { className: "muted" }, bi("没有找到：请换个写法，或直接在地图上点击。", "Nothing found: try other words, or tap the map."))); return; }
      out.appendChild(el("p", { className: "muted", text: cs.length + " 个结果 / results · " + (r.data.query || q) }));
      cs.forEach(function (c, i) {
        var where = c.in_district === false ? ["不在" + district + "内（" + (c.district || "上海市外") + "）", "not in " + district]
          : c.in_district ? ["在" + district + "内", "in " + district] : [c.district || "", ""];
        var b = el("button", { type: "button", className: "candidate" + (c.precise ? "" : " imprecise") + (c.in_district === false ? " elsewhere" : ""),
                               "data-index": String(i) }, [
          el("span", { className: "c-name", text: c.formatted || r.data.query || q }),
          el("span", { className: "c-meta" }, [
            (c.level || "—") + " · ",
            el("span", { className: c.precise ? "c-precise" : "c-imprecise", text: c.precise ? "精确 / precise" : "不精确 / not precise" }),
            " · ",
            el("span", { className: c.in_district === false ? "c-out" : "", text: where[0] + (where[1] ? " / " + where[1] : "") })
          ])
        ]);
        b.addEventListener("click", function () {
          Array.prototype.forEach.call(list.querySelectorAll("button"), function (x) { x.setAttribute("aria-pressed", "false"); });
          b.setAttribute("aria-pressed", "true");
          state.pos = { lon: c.lon, lat: c.lat, crs: "wgs84", source: "search", confirmed: true };
          showPin(); centreOn(state.pos, closeZoom() + (c.precise ? 1 : 0)); showFields(); checkInside(); showHint();
        });
        list.appendChild(el("li", {}, [b]));
      });
    });
  }

  // --- one feature ---------------------------------------------------------------------------------------------
  function currentLayer() { return state.layers.filter(function (l) { return l.id === state.layer; })[0]; }
  function isSystemField(name) { return name.indexOf("location_") === 0; }

  function search(q) {
    var list = $("matches"); list.textContent = "";
    api("GET", "/api/admin/layers/" + state.layer + "/features?limit=20&q=" + enc(q)).then(function (r) {
      if (!r.ok) { list.appendChild(el("li", { className: "error", text: errorText(r) })); return; }
      if (!r.data.features.length) list.appendChild(el("li", { className: "muted", text: "没有找到 / Nothing found" }));
      r.data.features.forEach(function (f) {
        var pending = f.properties.location_status === "pending";
        var b = el("button", { type: "button", text: f.id + " · " + (f.properties.name || "") + " · " + (f.properties.address || "") +
                               (pending ? " · 待定位 / pending" : "") });
        b.addEventListener("click", function () { openFeature(f.id); });
        list.appendChild(el("li", {}, [b]));
      });
      if (r.data.numberMatched > r.data.features.length) {
        list.appendChild(el("li", { className: "muted", text: "另有 " + (r.data.numberMatched - r.data.features.length) +
          " 个，请细化查找 / " + (r.data.numberMatched - r.data.features.length) + " more: narrow the search" }));
      }
    });
  }

  function fieldInput(f, value) {
    var id = "f-" + f.name, label = f.title_zh + " / " + f.title_en + (f.required ? " *" : "");
    if (f.type === "services") {
      var box = el("fieldset", { className: "services" }, [el("legend", { text: label })]);
      currentLayer().services.forEach(function (sv) {
        var input = el("input", { type: "checkbox", name: "svc", value: sv.id });
        input.checked = (value || []).indexOf(sv.id) >= 0;
        box.appendChild(el("label", { className: "inline" }, [input, sv.zh + " " + sv.en]));
      });
      return box;
    }
    var control;
    if (f.type === "boolean" || f.enum) {
      control = el("select", { id: id, name: f.name });
      var options = f.enum ? f.enum : ["是", "否"];
      control.appendChild(el("option", { value: "", text: "—" }));
      options.forEach(function (o) { control.appendChild(el("option", { value: o, text: o })); });
      control.value = value === true ? "是" : value === false ? "否" : (value || "");
    } else {
      control = el("input", { id: id, name: f.name, type: "text" });
      control.value = value === null || value === undefined ? "" : String(value);
      if (f.name === "id") control.readOnly = !!value;
    }
    return el("div", {}, [el("label", { for: id, text: label }), control]);
  }

  function showStatus(feature) {
    var box = $("feature-status"); box.textContent = ""; box.className = "status";
    if (!feature) {
      box.classList.add("new");
      append(box, bi("新点位：可以只保存信息（待定位，不公开），也可以在地图上标注位置后保存（公开）。",
         "New facility: save the details only (pending, not public), or place it on the map and save (public)."));
      return;
    }
    var p = feature.properties;
    if (p.location_status === "pending") {
      var why = reasonLabel(p.location_reason);
      box.classList.add("pending");
      box.appendChild(el("strong", { text: "待定位（未公开）/ Pending (not public)" }));
      box.appendChild(el("span", { className: "why" }, ["原因：" + why[0] + " / ", el("span", { className: "en", text: why[1] })]));
      if (p.location_note) box.appendChild(el("span", { className: "why muted", text: p.location_note }));
    } else {
      var src = sourceLabel(p.location_source);
      box.classList.add("located");
      box.appendChild(el("strong", { text: "已定位（公开）/ Located (public)" }));
      box.appendChild(el("span", { className: "why" }, ["位置来源：" + src[0] + " / ", el("span", { className: "en", text: "position from: " + src[1] })]));
    }
  }

  /** Fill the editor with `feature` (null: a new facility) and put the pin where it starts. */
  function showFeature(feature, etag, scroll) {
    var form = $("feature-form");
    state.editing = { id: feature ? feature.id : null, etag: etag, feature: feature };
    var props = feature ? feature.properties : {};
    $("feature-title").textContent = feature ? feature.id + " · " + (props.name || "") : "新增点位 / New facility";
    showStatus(feature);
    var box = $("feature-fields"); box.textContent = "";
    currentLayer().fields.forEach(function (f) {
      if (isSystemField(f.name)) return;               // kept by the system: shown in the status line above
      if (f.name === "source" && !feature) return;
      if (f.name === "id" && !feature) return;
      box.appendChild(fieldInput(f, props[f.name]));
    });
    var district = $("f-district");
    if (district) district.addEventListener("input", onDistrictChange);
    var pending = feature && props.location_status === "pending";
    var g = feature && feature.geometry && feature.geometry.coordinates;
    state.start = g ? { lon: g[0], lat: g[1], crs: "wgs84", source: pending ? "proposed" : "stored", confirmed: !pending } : null;
    state.pos = state.start;
    $("geo-q").value = props.address || props.name || "";
    $("geo-candidates").textContent = ""; $("geo-status").textContent = "";
    $("delete-feature").hidden = !feature;
    $("pin-warning").hidden = true;
    showFields();
    form.hidden = false;
    if (scroll !== false) form.scrollIntoView({ block: "start" });
    var hint = $("pin-hint"); hint.textContent = "地图加载中… / Loading the map…";
    var mapNode = $("pick-map"), editing = state.editing;
    mapNode.removeAttribute("data-feature");
    ensureMap().then(function () {
      if (state.editing !== editing) return;        // another feature was opened meanwhile
      M.map.invalidateSize(false);
      if (!state.pos) state.pos = state.start = districtCentre();
      drawOutlines();
      showPin();
      initialView();
      checkInside();
      showHint();
      mapNode.setAttribute("data-feature", feature ? feature.id : "new");   // ready for this feature
    }, function () {
      loadOutlines().then(function () {
        if (!state.pos) state.pos = state.start = districtCentre();
        checkInside();
      }, function () {});
      hint.textContent = "";
      append(hint, bi("地图无法加载：请直接输入坐标。", "The map could not be loaded: type the coordinates instead."));
    });
  }

  var districtTimer = null;
  function onDistrictChange() {
    clearTimeout(districtTimer);
    districtTimer = setTimeout(function () {
      drawOutlines();
      if (!state.pos || (!state.pos.confirmed && state.pos.source === "centre")) {   // follow the district typed
        state.pos = state.start = districtCentre();
        showPin(); initialView();
      }
      checkInside(); showHint();
    }, 250);
  }

  function openFeature(fid) {
    $("feature-result").textContent = "";
    if (!fid) { showFeature(null, null); return; }
    api("GET", "/api/admin/layers/" + state.layer + "/features/" + enc(fid)).then(function (r) {
      if (r.ok) { showFeature(r.data, r.etag); return; }
      $("feature-result").textContent = "";
      $("feature-result").appendChild(el("p", { className: "error", role: "alert", text: "无法打开 / Could not open " + fid + ": " + errorText(r) }));
    });
  }

  function featureBody() {
    var form = $("feature-form"), props = {};
    currentLayer().fields.forEach(function (f) {
      if (isSystemField(f.name)) return;
      if (f.type === "services") {
        props.services = Array.prototype.filter.call(form.querySelectorAll("input[name=svc]"), function (c) { return c.checked; })
          .map(function (c) { return c.value; });
        return;
      }
      var control = form.elements[f.name];
      if (!control) return;
      var v = control.value.trim();
      if (v !== "") props[f.name] = v;
      else if (state.editing.id && f.name !== "id") props[f.name] = null;
    });
    var p = state.pos, geometry = null, crs = "wgs84";
    if (p && p.confirmed) {
      geometry = { type: "Point", coordinates: [p.lon, p.lat] };
      crs = p.crs;
      props.location_source = p.source === "typed" ? "typed" : p.source === "stored" ? "admin" : "map";
    }
    return { body: { type: "Feature", geometry: geometry, properties: props }, crs: crs };
  }

  function showFeatureResult(r, okText) {
    var out = $("feature-result"); out.textContent = "";
    if (r.ok) { out.appendChild(el("p", { className: "ok", role: "status", text: okText })); return true; }
    var problems = r.data.report ? r.data.report.problems.filter(function (p) { return p.severity === "error"; }) : [];
    if (!problems.length) {
      out.appendChild(el("p", { className: "error", role: "alert", text: "未保存 / Not saved: " + errorText(r) }));
      return false;
    }
    var list = el("ul", { className: "problems", role: "alert" });
    var titles = { lon: "经度", lat: "纬度", geometry: "位置" };
    currentLayer().fields.forEach(function (f) { titles[f.name] = f.title_zh; });
    problems.forEach(function (p) {
      var column = titles[p.column] || p.column || "";
      list.appendChild(el("li", {}, [column + "：" + p.message_zh, el("br"), el("span", { className: "en", text: p.message_en })]));
    });
    out.appendChild(el("p", { className: "error", text: "未保存 / Not saved:" }));
    out.appendChild(list);
    return false;
  }

  function saveFeature() {
    var editing = state.editing;
    var typed = readFields();
    if (typed === "partial" || typed === "invalid") {
      coordsError("请填写经度和纬度两项（数字），或清除位置 / Fill in both longitude and latitude (numbers), or clear the position");
      $(typed === "partial" && !$("f-lon").value.trim() ? "f-lon" : "f-lat").focus();
      return;
    }
    var wasLocated = editing.feature && editing.feature.properties.location_status !== "pending";
    if (wasLocated && !(state.pos && state.pos.confirmed) &&
        !window.confirm("没有位置：保存后此点位变为待定位，不再公开。继续？\nNo position: saving makes this facility pending and removes it from the public map. Go on?")) return;
    var made = featureBody();
    var path = "/api/admin/layers/" + state.layer + "/features" + (editing.id ? "/" + enc(editing.id) : "") + "?crs=" + made.crs;
    var submits = $("feature-form").querySelectorAll("button[type=submit]");
    var busy = function (on) { Array.prototype.forEach.call(submits, function (b) { b.disabled = on; }); };
    busy(true);
    $("feature-result").textContent = "保存中… / Saving…";
    api(editing.id ? "PUT" : "POST", path, made.body, { etag: editing.etag, keep401: true }).then(function (r) {
      busy(false);
      var out = $("feature-result");
      if (r.status === 401) {
        out.textContent = "";
        var again = el("button", { type: "button", text: "重新登录 / Sign in again" });
        again.addEventListener("click", function () { signOut("请重新登录 / Sign in again"); });
        out.appendChild(el("div", { className: "error", role: "alert" }, [el("p", {}, bi(
          "未保存：令牌无效或已撤销。请重新登录后再修改。", "Not saved: the token is not valid (unknown or revoked). Sign in again, then redo the change.")), again]));
        out.scrollIntoView({ block: "nearest" });
        return;
      }
      if (r.status === 412) {
        out.textContent = "";
        var reopen = el("button", { type: "button", text: "重新打开此点位 / Open it again" });
        reopen.addEventListener("click", function () { openFeature(editing.id); });
        out.appendChild(el("div", { className: "error", role: "alert" }, [el("p", {}, bi(
          "未保存：在你编辑期间，此图层已被修改（他人或地理编码任务）。请重新打开此点位后再修改。",
          "Not saved: the layer changed while you were editing (someone else or a geocoding job). Open the facility again and redo the change.")), reopen]));
        out.scrollIntoView({ block: "nearest" });
        return;
      }
      var f = r.data.feature, version = r.data.change && r.data.change.version;
      var located = f && f.properties.location_status !== "pending";
      var text = (located ? "已定位，已公开 / Located and public" : "已保存，仍为待定位（未公开）/ Saved, still pending (not public)") +
        (version ? " · 已保存为版本 " + version + " / Saved as version " + version : " · 没有变化 / No changes") +
        (f ? " · " + f.id : "");
      if (r.ok) showFeature(f, r.etag, false);   // the saved state: the pin where the server put it
      if (showFeatureResult(r, text)) {
        out.firstChild.classList.toggle("located", located);
        refresh();                                   // the queue no longer lists a located row
      }
      out.scrollIntoView({ block: "nearest" });
    });
  }

  function showHistory(data) {
    var body = $("history").tBodies[0]; body.textContent = "";
    data.versions.forEach(function (v) {
      var action = el("td");
      if (v.number === data.current) action.appendChild(el("span", { className: "current", text: "当前 / current" }));
      else {
        var b = el("button", { type: "button", text: "恢复 v" + v.number + " / Restore" });
        b.addEventListener("click", function () {
          if (!window.confirm("恢复到版本 " + v.number + "？（会生成新版本，不删除任何数据）\nRestore version " + v.number +
                              "? (recorded as a new version; nothing is deleted)")) return;
          b.disabled = true;
          api("POST", "/api/admin/layers/" + state.layer + "/rollback", { version: v.number }).then(function (r) {
            b.disabled = false;
            if (!r.ok) window.alert(errorText(r));
            refresh();
          });
        });
        action.appendChild(b);
      }
      body.appendChild(el("tr", {}, [el("td", { text: "v" + v.number }), el("td", { text: v.created.replace("T", " ").replace("Z", "") }),
        el("td", { text: v.who }), el("td", { text: describe(v.action, v.summary) }), el("td", { text: String(v.features) }), action]));
    });
  }

  function describe(action, s) {
    var parts = [action];
    ["added", "updated", "removed"].forEach(function (k) { if (s && s[k]) parts.push(s[k] + " " + k); });
    if (s && s.restored_version) parts.push("← v" + s.restored_version);
    if (s && s.file) parts.push(s.file);
    return parts.join(" · ");
  }

  function showAudit(records) {
    var body = $("audit").tBodies[0]; body.textContent = "";
    records.forEach(function (a) {
      var ids = (a.added_ids || []).concat(a.updated_ids || [], a.removed_ids || []).slice(0, 5).join(", ");
      body.appendChild(el("tr", {}, [el("td", { text: a.time.replace("T", " ").replace("Z", "") }), el("td", { text: a.who }),
        el("td", { text: describe(a.action, a) }), el("td", { text: "v" + a.version }), el("td", { text: ids })]));
    });
  }

  function showReport(r, dryRun) {
    var out = $("result"); out.textContent = "";
    var data = r.data, report = data.report;
    if (!report) { out.appendChild(el("p", { className: "error", role: "alert", text: errorText(r) })); return; }
    var line;
    if (r.status === 422) line = el("p", { className: "summary error", role: "alert", text: "未导入任何数据 / Nothing was imported: " + data.description });
    else if (dryRun) line = el("p", { className: "summary " + (report.errors ? "error" : "ok"),
      text: "检查完成：" + report.valid_rows + "/" + report.rows + " 行有效，未修改数据 / Checked: " + report.valid_rows + " of " + report.rows + " rows valid; nothing changed" });
    else {
      var c = data.change || {};
      line = el("p", { className: "summary ok", text: (c.version ? "已导入为版本 " + c.version + " / Imported as version " + c.version : "没有变化 / No changes") +
        " · +" + (c.added || 0) + " ~" + (c.updated || 0) + " −" + (c.removed || 0) + " · " + (c.features || 0) + " 个点位 / features" });
    }
    out.appendChild(line);
    out.appendChild(el("p", { className: "muted", text: report.rows + " 行 / rows · " + report.errors + " 个错误 / errors · " +
      report.warnings + " 个提示 / warnings · 列 / columns: " + Object.keys(report.mapping).map(function (k) { return k + "→" + report.mapping[k]; }).join(", ") }));
    (report.notes || []).forEach(function (n) { out.appendChild(el("p", { className: "muted", text: n })); });
    if (!dryRun && data.pending) {
      out.appendChild(el("p", { className: "muted" }, bi(data.pending + " 行待定位（见上方“待定位”）" + (data.geocode_job ? "，地理编码已开始。" : "。"),
        data.pending + " rows pending (see “Pending” above)" + (data.geocode_job ? "; geocoding has started." : "."))));
    }
    if (!report.problems.length) return;
    var label = report.row_label === "row" ? "行 / Row" : "要素 / Feature";
    var table = el("table", { id: "problems" }, [el("thead", {}, [el("tr", {}, [el("th", { text: label }), el("th", { text: "列 / Column" }),
      el("th", { text: "" }), el("th", { text: "问题 / Problem" })])])]);
    var tbody = el("tbody");
    report.problems.forEach(function (p) {
      tbody.appendChild(el("tr", {}, [el("td", { text: p.row === null ? "文件 / file" : String(p.row) }), el("td", { text: p.column || "" }),
        el("td", { className: "sev-" + p.severity, text: p.severity === "error" ? "错误 error" : "提示 warning" }),
        el("td", {}, [el("div", { text: p.message_zh }), el("div", { className: "en", text: p.message_en })])]));
    });
    table.appendChild(tbody);
    out.appendChild(el("div", { className: "scroll" }, [table]));
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("signin-form").addEventListener("submit", function (e) {
      e.preventDefault();
      state.token = $("token").value.trim();
      sessionStorage.setItem(KEY, state.token);
      $("token").value = "";
      signIn();
    });
    $("signout").addEventListener("click", function () { signOut(""); });
    $("search-form").addEventListener("submit", function (e) { e.preventDefault(); search($("q").value.trim()); });
    $("new-feature").addEventListener("click", function () { openFeature(null); });
    $("cancel-feature").addEventListener("click", function () { $("feature-form").hidden = true; });
    $("feature-form").addEventListener("submit", function (e) { e.preventDefault(); saveFeature(); });
    $("f-lon").addEventListener("input", onTyped);
    $("f-lat").addEventListener("input", onTyped);
    $("f-datum").addEventListener("change", onDatum);
    $("clear-position").addEventListener("click", function () {
      $("f-lon").value = ""; $("f-lat").value = ""; coordsError("");
      state.pos = null; unconfirm();
    });
    $("pick-base").addEventListener("change", function () { if (M.map) setBase(this.value); });
    $("geo-go").addEventListener("click", searchAddress);
    $("geo-q").addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); searchAddress(); }   // not the editor's submit
    });
    $("geocode-start").addEventListener("click", startGeocode);
    $("geocode-cancel").addEventListener("click", cancelGeocode);
    $("pending-more").addEventListener("click", function () { loadPending(false); });
    $("delete-feature").addEventListener("click", function () {
      var editing = state.editing;
      if (!editing.id || !window.confirm("删除点位 " + editing.id + "？（可从旧版本恢复）\nDelete " + editing.id + "? (old versions can be restored)")) return;
      api("DELETE", "/api/admin/layers/" + state.layer + "/features/" + enc(editing.id), undefined, { etag: editing.etag })
        .then(function (r) {
          if (showFeatureResult(r, "已删除 / Deleted " + editing.id)) {
            $("feature-fields").textContent = ""; $("delete-feature").hidden = true; state.editing = { id: null, etag: null, feature: null };
            refresh();
          }
        });
    });
    ["xlsx", "csv"].forEach(function (fmt) {
      $("download-" + fmt).addEventListener("click", function () { download(fmt, this); });
    });
    $("layer").addEventListener("change", function () {
      state.layer = this.value; $("result").textContent = ""; $("matches").textContent = ""; $("feature-form").hidden = true;
      $("pending-list").textContent = "";
      refresh();
    });
    $("import-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var form = e.target, submitter = e.submitter || form.querySelector("button[value=import]");
      var dryRun = submitter.value === "check";
      if (!form.crs.value) { form.crs.focus(); return; }
      var params = new URLSearchParams({ crs: form.crs.value, mode: form.mode.value, dry_run: String(dryRun),
                                         skip_invalid: String($("skip").checked) });
      if (!dryRun && form.mode.value === "replace" &&
          !window.confirm("整体替换会删除文件中没有的点位（可恢复旧版本）。继续？\nReplace removes every feature not in the file (old versions can be restored). Go on?")) return;
      var data = new FormData(); data.append("file", $("file").files[0]);
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = true; });
      $("result").textContent = "处理中… / Working…";
      var layer = state.layer;
      api("POST", "/api/admin/layers/" + layer + "/import?" + params.toString(), data).then(function (r) {
        showReport(r, dryRun);
        if (r.ok && r.data.geocode_job) watchJob(r.data.geocode_job, layer);
        if (!dryRun) refresh();
      }).catch(function (err) {
        $("result").textContent = "请求失败 / Request failed: " + err;
      }).then(function () {
        Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = false; });
      });
    });

    // for tests and for people at the console: the map's state, in the base map's datum
    window.adminMap = {
      map: function () { return M.map; },
      displayCrs: displayCrs,
      position: function () { return state.pos ? JSON.parse(JSON.stringify(state.pos)) : null; },
      pin: function () { if (!M.pin) return null; var ll = M.pin.getLatLng(); return [ll.lng, ll.lat]; },
      /** Viewport pixel of a lon/lat given in the base map's datum. */
      pagePoint: function (lon, lat) {
        var pt = M.map.latLngToContainerPoint([lat, lon]), box = M.map.getContainer().getBoundingClientRect();
        return [box.left + pt.x, box.top + pt.y];
      }
    };
    if (state.token) signIn();
  });
})();
