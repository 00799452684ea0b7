/* The planning tool on /planning: controls over the Folium planning map.
 *
 * The page is drawn once by the server (Folium); from then on everything changes in place:
 *  - the parameters (layer, catchment by distance or travel time, services) ask /planning/data for the map's
 *    data and restyle the district choropleth, redraw the uncovered-people heat, the gaps and the stations;
 *  - a scenario (sites added by clicking the map and dragged, stations removed by clicking them) is sent to
 *    /api/coverage/scenario and the numbers (before -> after, per site, per removed station, per district) change;
 *  - proposals come from /api/siting (a background job is followed until it ends) and can join the scenario;
 *  - scenarios are saved in this browser (localStorage), compared two at a time, downloaded as JSON (for
 *    `geoserver report scenario FILE`) or turned into the planning report (a zip with HTML and PDF) by
 *    /api/coverage/scenario/report.
 * No outside requests: only this server's API.
 */
(function () {
  "use strict";

  var STORE_KEY = "geoserver.planning.scenarios";
  var S = null;   // the tool's state (one map per page)

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function num(v) {
    return v == null || isNaN(v) ? "—" : Math.round(Number(v)).toLocaleString("en-US");
  }
  function pct(v) {
    // as precise as the server says (a scenario's 3 decimals show a change of a few hundred people)
    return v == null || isNaN(v) ? "—" : Number(v).toLocaleString("en-US", {maximumFractionDigits: 3}) + " %";
  }
  function signed(v) {
    if (v == null || isNaN(v)) { return "—"; }
    var r = Math.round(Number(v));
    return (r > 0 ? "+" : r < 0 ? "−" : "±") + Math.abs(r).toLocaleString("en-US");
  }
  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (html != null) { e.innerHTML = html; }
    return e;
  }
  function $(sel) { return S.panel.querySelector(sel); }

  // ---- parameters ----------------------------------------------------------------------------------------------
  function readParams() {
    var p = {layer: $("#gp-layer").value};
    var how = $("#gp-how").value;
    if (how === "radius") {
      p.radius_m = Number($("#gp-radius").value);
    } else {
      p.minutes = Number($("#gp-minutes").value);
      p.mode = how;
    }
    var services = [];
    S.panel.querySelectorAll("#gp-services input:checked").forEach(function (c) { services.push(c.value); });
    if (services.length) { p.services = services.join(","); }
    return p;
  }

  function query(p) {
    return Object.keys(p).filter(function (k) { return p[k] !== undefined && p[k] !== ""; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(p[k]); }).join("&");
  }

  function invalid(p) {
    if (p.radius_m !== undefined && !(p.radius_m > 0 && p.radius_m <= S.config.limits.max_radius_m)) {
      return "半径须在 0 到 " + S.config.limits.max_radius_m + " 米之间 Radius must be 0 – " +
        S.config.limits.max_radius_m + " m";
    }
    if (p.minutes !== undefined && !(p.minutes > 0 && p.minutes <= S.config.limits.max_minutes)) {
      return "时间须在 0 到 " + S.config.limits.max_minutes + " 分钟之间 Minutes must be 0 – " +
        S.config.limits.max_minutes;
    }
    return null;
  }

  function status(text, kind) {
    var s = $("#gp-status");
    s.textContent = text || "";
    s.className = "gp-status" + (kind ? " gp-" + kind : "");
  }

  function fetchJSON(url, options) {
    return fetch(url, Object.assign({headers: {"Accept": "application/json"}, credentials: "same-origin"},
                                    options || {}))
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          if (!r.ok) {
            var msg = body.description || body.detail || body.title || ("HTTP " + r.status);
            var err = new Error(msg);
            err.status = r.status;
            throw err;
          }
          return {status: r.status, body: body};
        });
      });
  }

  function applyParams() {
    var p = readParams();
    var bad = invalid(p);
    if (bad) { status(bad, "error"); return Promise.resolve(); }
    var layerChanged = p.layer !== S.params.layer || (p.services || "") !== (S.params.services || "");
    if (p.layer !== S.params.layer) { S.scenario = {add: [], remove: {}}; redrawScenario(); }
    S.params = p;
    history.replaceState(null, "", location.pathname + "?" + query(Object.assign({}, p, {k: 0})));
    var seq = ++S.seq;
    status("计算中… Computing…", "busy");
    S.panel.setAttribute("aria-busy", "true");
    var q = query(Object.assign({}, p, layerChanged ? {facilities: 1} : {}));
    return fetchJSON(S.config.urls.data + "?" + q).then(function (res) {
      if (seq !== S.seq) { return; }
      drawData(res.body);
      clearProposals();
      return runScenario(true);
    }).catch(function (err) {
      if (seq === S.seq) { status(err.message, "error"); }
    }).then(function () {
      if (seq === S.seq) { S.panel.setAttribute("aria-busy", "false"); }
    });
  }

  // ---- the map's layers ---------------------------------------------------------------------------------------
  function drawData(d) {
    S.data = d;
    S.radius = d.radius_m;
    var L_ = S.layers;
    if (L_.districts) {
      L_.districts.options.style = function (f) {
        var row = S.data.districts[f.properties.code] || {};
        return {fillColor: row.color || S.config.no_demand_color, fillOpacity: 0.55, color: "#555", weight: 1};
      };
      L_.districts.eachLayer(function (l) {
        var row = d.districts[l.feature.properties.code];
        if (row) {
          ["covered_pct", "covered_label", "uncovered_label", "demand_label", "color"].forEach(function (k) {
            l.feature.properties[k] = row[k];
          });
        }
      });
      L_.districts.resetStyle();
    }
    if (L_.heat && L_.heat.setLatLngs) { L_.heat.setLatLngs(d.heat); }
    if (L_.gaps) {
      L_.gaps.clearLayers();
      L_.gaps.options.style = function () {
        return {color: S.config.gap_color, weight: 1.5, dashArray: "4 3", fillOpacity: 0.08,
                fillColor: S.config.gap_color};
      };
      L_.gaps.addData(d.gaps);
    }
    if (d.facilities && L_.facilities) { drawFacilities(d.facilities); }
    drawGapList(d.gap_list);
    S.catchment = d.catchment;
    S.coverage = d.totals;
    // the Folium legend was drawn for the first parameters: keep its catchment line true
    document.querySelectorAll(".geoserver-legend .gs-note").forEach(function (n) {
      if (n.textContent.indexOf("服务范围 Catchment:") === 0) { n.textContent = "服务范围 Catchment: " + d.catchment; }
    });
    $("#gp-catchment").textContent = d.catchment;
    $("#gp-gaps").textContent = num(d.gap_count);
    var w = $("#gp-warnings");
    w.innerHTML = (d.warnings || []).map(function (t) { return "<p>" + esc(t) + "</p>"; }).join("");
    S.scenario.add.forEach(function (s) { s.circle.setRadius(S.radius); });
  }

  function facilityPopup(i) {
    var f = S.facilities, r = f.rows[i], out = ["<b>" + esc(r[2]) + "</b>"];
    for (var j = 3; j < r.length; j++) {
      if (r[j] !== null && r[j] !== "") {
        out.push("<br><span class=\"gs-label\">" + esc(f.labels[j - 3]) + "</span> " + esc(r[j]));
      }
    }
    if (f.note) { out.push("<br><i class=\"gs-note\">" + esc(f.note) + "</i>"); }
    return out.join("");
  }

  function drawFacilities(f) {
    S.facilities = f;
    var cluster = S.layers.facilities, style = S.config.facility_style;
    cluster.clearLayers();
    var markers = f.rows.map(function (r, i) {
      var opts = Object.assign({gsIndex: i}, style, {fillColor: f.color});
      return L.circleMarker([r[0], r[1]], opts).bindPopup(function () { return facilityPopup(i); }, {maxWidth: 320});
    });
    if (cluster.addLayers) { cluster.addLayers(markers); } else { markers.forEach(function (m) { cluster.addLayer(m); }); }
    $("#gp-facilities").textContent = num(f.ids.length);
  }

  function drawGapList(list) {
    S.gapList = list || [];
    $("#gp-gap-list").innerHTML = S.gapList.map(function (g, i) {
      return "<li data-i=\"" + i + "\"><span class=\"gp-g\">G" + g.rank + "</span><span class=\"gp-gap-text\">" +
        esc(g.districts) + " · +" + num(g.coverable) + " 人</span>" +
        (g.site ? "<button type=\"button\" class=\"gp-go\" aria-label=\"定位 Show gap " + g.rank + "\">定位</button>" +
          "<button type=\"button\" class=\"gp-use\" aria-label=\"在缺口 " + g.rank + " 加站 Add a site at gap " +
          g.rank + "\">加站</button>" : "") + "</li>";
    }).join("") || "<li class=\"gp-muted\">没有缺口 No gaps</li>";
  }

  // ---- the scenario -------------------------------------------------------------------------------------------
  function siteIcon(n) {
    return L.divIcon({className: "gp-site", html: "<span>" + n + "</span>", iconSize: [26, 26], iconAnchor: [13, 13]});
  }

  function addSite(latlng, silent) {
    if (S.scenario.add.length + Object.keys(S.scenario.remove).length >= S.config.limits.max_changes) {
      status("一个情景最多 " + S.config.limits.max_changes + " 项改动 At most " + S.config.limits.max_changes +
             " changes per scenario", "error");
      return;
    }
    var site = {lat: latlng.lat, lon: latlng.lng};
    site.circle = L.circle(latlng, {radius: S.radius, color: S.config.proposed_color, weight: 2, dashArray: "6 4",
                                    fillOpacity: 0.06, interactive: false}).addTo(S.group);
    site.marker = L.marker(latlng, {draggable: true, icon: siteIcon(S.scenario.add.length + 1), keyboard: true,
                                    title: "新站点 New site (拖动 drag to move)", autoPan: true}).addTo(S.group);
    site.marker.on("drag", function (e) { site.circle.setLatLng(e.target.getLatLng()); });
    site.marker.on("dragend", function (e) {
      var ll = e.target.getLatLng();
      site.lat = ll.lat;
      site.lon = ll.lng;
      runScenario();
    });
    site.marker.on("click", function () { if (S.mode === "remove") { removeSite(site); } });
    S.scenario.add.push(site);
    redrawScenario();
    if (!silent) { runScenario(); }
  }

  function removeSite(site) {
    S.group.removeLayer(site.circle);
    S.group.removeLayer(site.marker);
    S.scenario.add = S.scenario.add.filter(function (s) { return s !== site; });
    S.scenario.add.forEach(function (s, i) { s.marker.setIcon(siteIcon(i + 1)); });
    redrawScenario();
    runScenario();
  }

  function markRemoved(index) {
    var r = S.facilities.rows[index];
    var m = L.circleMarker([r[0], r[1]], {radius: 9, color: "#b2182b", weight: 3, fillColor: "#fff",
                                          fillOpacity: 0.8, dashArray: "3 2"}).addTo(S.group);
    m.bindTooltip("已移除 Removed: " + esc(r[2]));
    m.on("click", function () { toggleStation(index); });
    S.scenario.remove[S.facilities.ids[index]] = {index: index, name: r[2], marker: m};
  }

  function toggleStation(index) {
    var id = S.facilities.ids[index];
    if (S.scenario.remove[id]) {
      S.group.removeLayer(S.scenario.remove[id].marker);
      delete S.scenario.remove[id];
    } else {
      markRemoved(index);
    }
    redrawScenario();
    runScenario();
  }

  function clearScenario() {
    S.group.clearLayers();
    S.scenario = {add: [], remove: {}};
    S.result = null;
    redrawScenario();
    showResult(null);
  }

  function scenarioBody() {
    var b = Object.assign({}, S.params);
    if (b.services) { b.services = b.services.split(","); }
    b.add = S.scenario.add.map(function (s) { return [round6(s.lon), round6(s.lat)]; });
    b.remove = Object.keys(S.scenario.remove);
    return b;
  }
  function round6(v) { return Math.round(v * 1e6) / 1e6; }

  function runScenario(afterParams) {
    if (!S.scenario.add.length && !Object.keys(S.scenario.remove).length) {
      S.result = null;
      showResult(null);
      if (afterParams) { status(""); }
      return Promise.resolve();
    }
    var seq = ++S.scenarioSeq;
    status("计算中… Computing…", "busy");
    return fetchJSON(S.config.urls.scenario, {method: "POST", headers: {"Content-Type": "application/json",
                                                                        "Accept": "application/json"},
                                               body: JSON.stringify(scenarioBody())})
      .then(function (res) {
        if (seq !== S.scenarioSeq) { return; }
        S.result = res.body;
        showResult(res.body);
        status("");
      }).catch(function (err) {
        if (seq === S.scenarioSeq) { status(err.message, "error"); }
      });
  }

  function redrawScenario() {
    var adds = S.scenario.add, removes = S.scenario.remove;
    $("#gp-changes").hidden = !adds.length && !Object.keys(removes).length;
    $("#gp-added").innerHTML = adds.map(function (s, i) {
      return "<li data-i=\"" + i + "\"><span class=\"gp-n\">" + (i + 1) + "</span> <span class=\"gp-site-gain\">…</span>" +
        " <button type=\"button\" class=\"gp-x\" aria-label=\"删除新站点 Delete new site " + (i + 1) + "\">✕</button></li>";
    }).join("");
    $("#gp-removed").innerHTML = Object.keys(removes).map(function (id) {
      return "<li data-id=\"" + esc(id) + "\">" + esc(removes[id].name) + " <span class=\"gp-site-loss\">…</span>" +
        " <button type=\"button\" class=\"gp-x\" aria-label=\"恢复 Restore " + esc(removes[id].name) + "\">↺</button></li>";
    }).join("");
  }

  function showResult(r) {
    var box = $("#gp-result");
    $("#gp-summary-pct").textContent = r ? pct(r.totals.covered_after_pct) : pct((S.coverage || {}).covered_pct);
    if (!r) {
      var t = S.coverage || {};
      box.innerHTML = "<div class=\"gp-big\">" + pct(t.covered_pct) + "</div><div class=\"gp-sub\">覆盖 covered " +
        num(t.covered) + " / " + num(t.demand) + " 人 people</div>";
      $("#gp-districts").innerHTML = "";
      return;
    }
    var t = r.totals;
    box.innerHTML =
      "<div class=\"gp-big\"><span class=\"gp-before\">" + pct(t.covered_before_pct) + "</span> → " +
      "<span class=\"gp-after\">" + pct(t.covered_after_pct) + "</span></div>" +
      "<dl class=\"gp-dl\"><dt>变化 Change</dt><dd id=\"gp-change\">" + signed(t.change) + " 人</dd>" +
      "<dt>新增覆盖 Newly covered</dt><dd id=\"gp-newly\">" + num(t.newly_covered) + " 人</dd>" +
      "<dt>不再覆盖 No longer covered</dt><dd>" + num(t.no_longer_covered) + " 人</dd>" +
      "<dt>用时 Time</dt><dd>" + esc(r.runtime_ms) + " ms</dd></dl>";
    S.panel.querySelectorAll("#gp-added li").forEach(function (li, i) {
      var s = r.sites[i];
      if (s) {
        li.querySelector(".gp-site-gain").textContent = "+" + num(s.newly_covered) + " 人 · " + (s.district || "—");
        S.scenario.add[i] && S.scenario.add[i].marker.bindTooltip(
          "新站点 New site " + (i + 1) + ": +" + num(s.newly_covered) + " 人 people");
      }
    });
    var byId = {};
    (r.removed || []).forEach(function (x) { byId[x.id] = x; });
    S.panel.querySelectorAll("#gp-removed li").forEach(function (li) {
      var x = byId[li.getAttribute("data-id")];
      if (x) {
        var lost = Math.round(x.no_longer_covered);
        li.querySelector(".gp-site-loss").textContent = (lost ? "−" + num(lost) : "0") + " 人";
      }
    });
    var rows = (r.districts || []).filter(function (d) { return Math.round(d.change) !== 0; })
      .sort(function (a, b) { return Math.abs(b.change) - Math.abs(a.change); }).slice(0, 8);
    $("#gp-districts").innerHTML = rows.length ?
      "<table><caption>各区变化 Change by district</caption><tr><th>区 District</th><th>前 Before</th>" +
      "<th>后 After</th><th>变化 Change</th></tr>" + rows.map(function (d) {
        return "<tr><td>" + esc(d.district) + "</td><td>" + pct(d.covered_before_pct) + "</td><td>" +
          pct(d.covered_after_pct) + "</td><td>" + signed(d.change) + "</td></tr>";
      }).join("") + "</table>" : "";
  }

  // ---- proposals (siting) -------------------------------------------------------------------------------------
  function clearProposals() {
    if (S.layers.proposed) { S.layers.proposed.clearLayers(); }
    S.proposals = [];
    $("#gp-proposals").innerHTML = "";
    $("#gp-adopt").hidden = true;
  }

  function solve() {
    var body = Object.assign({}, S.params);
    if (body.services) { body.services = body.services.split(","); }
    var target = $("#gp-target").value, k = $("#gp-k").value;
    if ($("#gp-by").value === "target") {
      body.target_pct = Number(target);
    } else {
      body.k = Number(k);
    }
    body.area = $("#gp-area").value;
    body.solver = $("#gp-solver").value;
    clearProposals();
    status("求解中… Solving…", "busy");
    var seq = ++S.solveSeq;
    return fetchJSON(S.config.urls.siting, {method: "POST", headers: {"Content-Type": "application/json",
                                                                      "Accept": "application/json"},
                                             body: JSON.stringify(body)})
      .then(function (res) {
        if (res.status === 202) { return follow(res.body, seq); }
        return res.body;
      }).then(function (plan) {
        if (plan && seq === S.solveSeq) { showPlan(plan); status(""); }
      }).catch(function (err) {
        if (seq === S.solveSeq) { status(err.message, "error"); }
      });
  }

  function follow(job, seq) {
    return new Promise(function (resolve, reject) {
      function poll() {
        if (seq !== S.solveSeq) { resolve(null); return; }
        fetchJSON(job.status_url).then(function (res) {
          var st = res.body;
          if (st.state === "done" || st.state === "cancelled") { resolve(st.result); return; }
          if (st.state === "failed") { reject(new Error(st.message || "求解失败 solving failed")); return; }
          status("后台求解 " + Math.round((st.progress || 0) * 100) + " % Solving in the background", "busy");
          setTimeout(poll, 1000);
        }).catch(reject);
      }
      poll();
    });
  }

  function showPlan(plan) {
    var feats = (plan.sites && plan.sites.features) || [];
    S.proposals = feats.map(function (f) {
      return {lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1], p: f.properties};
    });
    var group = S.layers.proposed;
    S.proposals.forEach(function (s) {
      if (!group) { return; }
      L.circle([s.lat, s.lon], {radius: S.radius, color: S.config.proposed_color, weight: 2, dashArray: "6 4",
                                fill: true, fillOpacity: 0.08, interactive: false, pane: "gs-proposed"}).addTo(group);
      L.circleMarker([s.lat, s.lon], {radius: 8, color: "#fff", weight: 2, fillColor: S.config.proposed_color,
                                      fillOpacity: 1, pane: "gs-proposed"})
        .bindTooltip("建议站点 Proposed site #" + esc(s.p.rank) + ": +" + num(s.p.new_coverage) + " 人").addTo(group);
    });
    listProposals(plan.summary || {});
  }

  function listProposals(sum) {
    $("#gp-proposals").innerHTML =
      "<p>" + S.proposals.length + " 个建议站点 proposed sites" + (sum.solver ? " · " + esc(sum.solver) : "") +
      (sum.covered_before_pct != null ? " · 覆盖率 " + pct(sum.covered_before_pct) + " → " +
        pct(sum.covered_after_pct) : "") + "</p><ol>" +
      S.proposals.slice(0, 50).map(function (s) {
        return "<li>+" + num(s.p.new_coverage) + " 人 · " + esc(s.p.district || "—") + "</li>";
      }).join("") + "</ol>";
    $("#gp-adopt").hidden = !S.proposals.length;
  }

  function adoptProposals() {
    S.proposals.forEach(function (s) { addSite(L.latLng(s.lat, s.lon), true); });
    clearProposals();
    runScenario();
  }

  // ---- saving and comparing -----------------------------------------------------------------------------------
  function savedList() {
    try { return JSON.parse(localStorage.getItem(STORE_KEY) || "[]"); } catch (e) { return []; }
  }

  function currentScenario(name) {
    var body = scenarioBody();
    var t = S.result ? S.result.totals : null;
    return {name: name, saved_at: new Date().toISOString(), params: S.params, add: body.add, remove: body.remove,
            removed_names: Object.keys(S.scenario.remove).map(function (id) { return S.scenario.remove[id].name; }),
            totals: t || {covered_before_pct: S.coverage.covered_pct, covered_after_pct: S.coverage.covered_pct,
                          change: 0, newly_covered: 0, no_longer_covered: 0, demand: S.coverage.demand},
            catchment: S.catchment};
  }

  function save() {
    var name = $("#gp-name").value.trim() || ("情景 Scenario " + (savedList().length + 1));
    var list = savedList().filter(function (s) { return s.name !== name; });
    list.push(currentScenario(name));
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(list));
      status("已保存 Saved: " + name, "ok");
    } catch (e) {
      status("无法保存（浏览器存储已满）Could not save (browser storage full)", "error");
    }
    drawSaved();
  }

  function drawSaved() {
    var list = savedList();
    $("#gp-saved").innerHTML = list.map(function (s, i) {
      return "<li><label><input type=\"checkbox\" value=\"" + i + "\"> " + esc(s.name) + "</label> " +
        "<span class=\"gp-muted\">" + pct(s.totals.covered_after_pct) + "</span> " +
        "<button type=\"button\" class=\"gp-load\" data-i=\"" + i + "\">载入 Load</button> " +
        "<button type=\"button\" class=\"gp-del\" data-i=\"" + i + "\" aria-label=\"删除 Delete " + esc(s.name) +
        "\">✕</button></li>";
    }).join("");
    $("#gp-compare-box").hidden = list.length < 1;
  }

  function compare() {
    var list = savedList();
    var picked = [];
    S.panel.querySelectorAll("#gp-saved input:checked").forEach(function (c) { picked.push(list[Number(c.value)]); });
    if (picked.length < 2) { picked.push(currentScenario("当前 Current")); }
    picked = picked.slice(0, 2);
    var a = picked[0], b = picked[1];
    function row(label, f) { return "<tr><th>" + label + "</th><td>" + f(a) + "</td><td>" + f(b) + "</td></tr>"; }
    $("#gp-compare").innerHTML = "<table><caption>比较 Comparison</caption><tr><th></th><th>" + esc(a.name) +
      "</th><th>" + esc(b.name) + "</th></tr>" +
      row("服务范围 Catchment", function (s) { return esc(s.catchment || ""); }) +
      row("新增站点 Sites added", function (s) { return num(s.add.length); }) +
      row("移除站点 Removed", function (s) { return num(s.remove.length); }) +
      row("覆盖率 Covered", function (s) { return pct(s.totals.covered_after_pct); }) +
      row("变化 Change", function (s) { return signed(s.totals.change) + " 人"; }) +
      row("新增覆盖 Newly covered", function (s) { return num(s.totals.newly_covered) + " 人"; }) +
      "</table>";
  }

  function load(i) {
    var s = savedList()[i];
    if (!s) { return; }
    setControls(s.params);
    var restore = function () {
      clearScenario();
      s.add.forEach(function (p) { addSite(L.latLng(p[1], p[0]), true); });
      s.remove.forEach(function (id) {
        var idx = S.facilities.ids.indexOf(id);
        if (idx >= 0) { markRemoved(idx); }
      });
      redrawScenario();
      return runScenario();
    };
    applyParams().then(restore);
  }

  function download() {
    var name = $("#gp-name").value.trim() || "scenario";
    var blob = new Blob([JSON.stringify(currentScenario(name), null, 1)], {type: "application/json"});
    var a = el("a", {href: URL.createObjectURL(blob), download: name.replace(/[^\w\u4e00-\u9fff-]+/g, "_") + ".json"});
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function report() {
    if (!S.scenario.add.length && !Object.keys(S.scenario.remove).length) {
      status("先添加或移除站点 Add or remove a site first", "error");
      return Promise.resolve();
    }
    var body = scenarioBody();
    var name = $("#gp-name").value.trim();
    if (name) { body.name = name; }
    status("正在生成报告（约 10 秒）… Writing the report (about 10 s)…", "busy");
    return fetch(S.config.urls.report, {method: "POST", credentials: "same-origin",
                                        headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
      .then(function (r) {
        if (!r.ok) {
          return r.json().catch(function () { return {}; }).then(function (b) {
            throw new Error(b.description || ("HTTP " + r.status));
          });
        }
        return r.blob();
      }).then(function (blob) {
        var a = el("a", {href: URL.createObjectURL(blob), download: "scenario-report.zip"});
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
        status("报告已下载 Report downloaded", "ok");
      }).catch(function (err) { status(err.message, "error"); });
  }

  // ---- the panel ----------------------------------------------------------------------------------------------
  function setControls(p) {
    $("#gp-layer").value = p.layer;
    fillServices(p.layer, p.services ? String(p.services).split(",") : []);
    if (p.minutes) {
      $("#gp-how").value = p.mode || "walk";
      $("#gp-minutes").value = p.minutes;
    } else {
      $("#gp-how").value = "radius";
      $("#gp-radius").value = p.radius_m || S.config.default_radius_m[p.layer] || 1000;
    }
    showHow();
  }

  function fillServices(layerId, checked) {
    var layer = S.config.layers.filter(function (l) { return l.id === layerId; })[0] || {services: []};
    $("#gp-services").innerHTML = layer.services.map(function (id) {
      var s = S.config.services[id] || {zh: id, en: id};
      return "<label><input type=\"checkbox\" value=\"" + esc(id) + "\"" + (checked.indexOf(id) >= 0 ? " checked" : "") +
        "> " + esc(s.zh) + " <span class=\"gp-muted\">" + esc(s.en) + "</span></label>";
    }).join("") || "<span class=\"gp-muted\">—</span>";
  }

  function showHow() {
    var radius = $("#gp-how").value === "radius";
    $("#gp-radius-row").hidden = !radius;
    $("#gp-minutes-row").hidden = radius;
  }

  function setMode(mode) {
    S.mode = mode;
    S.panel.querySelectorAll(".gp-mode button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.getAttribute("data-mode") === mode));
    });
    S.map.getContainer().classList.toggle("gp-adding", mode === "add");
    S.map.getContainer().classList.toggle("gp-removing", mode === "remove");
  }

  function buildPanel() {
    var c = S.config;
    var layers = c.layers.map(function (l) {
      return "<option value=\"" + esc(l.id) + "\">" + esc(l.title_zh) + " " + esc(l.title_en) + "</option>";
    }).join("");
    var modes = Object.keys(c.modes).map(function (m) {
      return "<option value=\"" + esc(m) + "\">" + esc(c.mode_labels[m] || m) + "</option>";
    }).join("");
    var html =
      "<details open><summary><h1>规划工具 <span>Planning tool</span> <b id=\"gp-summary-pct\"></b></h1></summary>" +
      "<div class=\"gp-body\">" +
      "<section aria-labelledby=\"gp-h-params\"><h2 id=\"gp-h-params\">参数 Parameters</h2>" +
      "<label for=\"gp-layer\">设施图层 Layer</label><select id=\"gp-layer\">" + layers + "</select>" +
      "<label for=\"gp-how\">服务范围 Catchment</label><select id=\"gp-how\">" +
      "<option value=\"radius\">直线距离 Distance</option>" + modes + "</select>" +
      "<div id=\"gp-radius-row\" class=\"gp-row\"><label for=\"gp-radius\">半径 Radius (m)</label>" +
      "<input id=\"gp-radius\" type=\"number\" min=\"50\" max=\"" + c.limits.max_radius_m + "\" step=\"50\"></div>" +
      "<div id=\"gp-minutes-row\" class=\"gp-row\" hidden><label for=\"gp-minutes\">时间 Minutes</label>" +
      "<input id=\"gp-minutes\" type=\"number\" min=\"1\" max=\"" + c.limits.max_minutes + "\" step=\"1\"></div>" +
      "<fieldset><legend>所需服务 Services</legend><div id=\"gp-services\" class=\"gp-checks\"></div></fieldset>" +
      "<p class=\"gp-muted\"><span id=\"gp-catchment\"></span> · <span id=\"gp-facilities\"></span> 个设施 facilities · " +
      "<span id=\"gp-gaps\"></span> 个缺口 gaps</p><div id=\"gp-warnings\" class=\"gp-warn\"></div></section>" +
      "<section aria-labelledby=\"gp-h-cov\"><h2 id=\"gp-h-cov\">覆盖 Coverage</h2>" +
      "<div id=\"gp-result\" aria-live=\"polite\"></div>" +
      "<div id=\"gp-status\" class=\"gp-status\" role=\"status\"></div></section>" +
      "<section aria-labelledby=\"gp-h-scn\"><h2 id=\"gp-h-scn\">情景 What if</h2>" +
      "<div class=\"gp-mode\" role=\"group\" aria-label=\"地图点击 Map clicks\">" +
      "<button type=\"button\" data-mode=\"browse\" aria-pressed=\"true\">查看 Browse</button>" +
      "<button type=\"button\" data-mode=\"add\" aria-pressed=\"false\">添加站点 Add site</button>" +
      "<button type=\"button\" data-mode=\"remove\" aria-pressed=\"false\">移除站点 Remove</button></div>" +
      "<p class=\"gp-muted gp-hint\">添加：点击地图，可拖动 · 移除：点击现有站点 Add: click the map, drag to move · " +
      "Remove: click a station</p>" +
      "<div id=\"gp-changes\" hidden><ol id=\"gp-added\" class=\"gp-list\"></ol>" +
      "<ul id=\"gp-removed\" class=\"gp-list\"></ul><button type=\"button\" id=\"gp-clear\">清空情景 Clear</button></div>" +
      "<div id=\"gp-districts\"></div></section>" +
      "<section aria-labelledby=\"gp-h-gaps\"><h2 id=\"gp-h-gaps\">最大缺口 Largest gaps</h2>" +
      "<p class=\"gp-muted gp-hint\">一个新站放在建议点可新覆盖的人数 People one new site at the gap's point " +
      "would cover</p><ol id=\"gp-gap-list\" class=\"gp-list gp-gaps\"></ol></section>" +
      "<section aria-labelledby=\"gp-h-solve\"><h2 id=\"gp-h-solve\">选址建议 Propose sites</h2>" +
      "<div class=\"gp-row\"><select id=\"gp-by\" aria-label=\"按 By\"><option value=\"k\">站点数 k</option>" +
      "<option value=\"target\">目标覆盖率 target %</option></select>" +
      "<input id=\"gp-k\" type=\"number\" min=\"1\" max=\"" + c.limits.max_k + "\" value=\"10\" aria-label=\"k\">" +
      "<input id=\"gp-target\" type=\"number\" min=\"1\" max=\"100\" step=\"0.5\" value=\"90\" hidden " +
      "aria-label=\"目标覆盖率 Target %\"></div>" +
      "<div class=\"gp-row\"><select id=\"gp-area\" aria-label=\"规划范围 Area\">" +
      "<option value=\"suburban\">郊区 Suburban</option><option value=\"all\">全市 Whole city</option></select>" +
      "<select id=\"gp-solver\" aria-label=\"求解器 Solver\"><option value=\"greedy\">快速 Fast</option>" +
      "<option value=\"exact\">精确 Exact</option></select></div>" +
      "<button type=\"button\" id=\"gp-solve\">求解 Solve</button>" +
      "<div id=\"gp-proposals\"></div><button type=\"button\" id=\"gp-adopt\" hidden>全部加入情景 Add all to the " +
      "scenario</button></section>" +
      "<section aria-labelledby=\"gp-h-save\"><h2 id=\"gp-h-save\">保存与比较 Save and compare</h2>" +
      "<div class=\"gp-row\"><input id=\"gp-name\" type=\"text\" maxlength=\"60\" placeholder=\"情景名称 Name\" " +
      "aria-label=\"情景名称 Scenario name\"><button type=\"button\" id=\"gp-save\">保存 Save</button></div>" +
      "<ul id=\"gp-saved\" class=\"gp-list\"></ul><div id=\"gp-compare-box\" hidden>" +
      "<button type=\"button\" id=\"gp-compare-btn\">比较所选 Compare</button></div><div id=\"gp-compare\"></div>" +
      "<div class=\"gp-row\"><button type=\"button\" id=\"gp-download\">下载 JSON Download</button>" +
      "<button type=\"button\" id=\"gp-report\">报告 Report (HTML + PDF)</button></div>" +
      "<p class=\"gp-muted\">报告为 zip：report.html、report.pdf、CSV、GeoJSON。A zip of the planning report; also " +
      "<code>geoserver report scenario 文件.json --out 目录</code></p></section>" +
      (c.sample ? "<p class=\"gp-warn\">示例数据：站点为虚构样例 SAMPLE data: made-up facilities</p>" : "") +
      "</div></details>";
    var panel = el("aside", {id: "gp-panel", "aria-label": "规划工具 Planning tool"}, html);
    document.body.appendChild(panel);
    L.DomEvent.disableClickPropagation(panel);
    L.DomEvent.disableScrollPropagation(panel);
    return panel;
  }

  function wire() {
    var p = S.panel;
    $("#gp-layer").addEventListener("change", function () {
      fillServices($("#gp-layer").value, []);
      $("#gp-radius").value = S.config.default_radius_m[$("#gp-layer").value] || $("#gp-radius").value;
      applyParams();
    });
    $("#gp-how").addEventListener("change", function () {
      showHow();
      if ($("#gp-how").value !== "radius" && !$("#gp-minutes").value) { $("#gp-minutes").value = 15; }
      applyParams();
    });
    ["#gp-radius", "#gp-minutes"].forEach(function (sel) { $(sel).addEventListener("change", applyParams); });
    $("#gp-services").addEventListener("change", applyParams);
    $("#gp-by").addEventListener("change", function () {
      var t = $("#gp-by").value === "target";
      $("#gp-k").hidden = t;
      $("#gp-target").hidden = !t;
    });
    $("#gp-solve").addEventListener("click", solve);
    $("#gp-adopt").addEventListener("click", adoptProposals);
    $("#gp-clear").addEventListener("click", function () { clearScenario(); status(""); });
    $("#gp-save").addEventListener("click", save);
    $("#gp-download").addEventListener("click", download);
    $("#gp-report").addEventListener("click", report);
    $("#gp-compare-btn").addEventListener("click", compare);
    p.querySelectorAll(".gp-mode button").forEach(function (b) {
      b.addEventListener("click", function () { setMode(b.getAttribute("data-mode")); });
    });
    $("#gp-added").addEventListener("click", function (e) {
      if (e.target.classList.contains("gp-x")) {
        removeSite(S.scenario.add[Number(e.target.closest("li").getAttribute("data-i"))]);
      }
    });
    $("#gp-removed").addEventListener("click", function (e) {
      if (e.target.classList.contains("gp-x")) {
        toggleStation(S.scenario.remove[e.target.closest("li").getAttribute("data-id")].index);
      }
    });
    $("#gp-gap-list").addEventListener("click", function (e) {
      var li = e.target.closest("li[data-i]");
      var g = li && S.gapList[Number(li.getAttribute("data-i"))];
      if (!g || !g.site) { return; }
      var ll = L.latLng(g.site[1], g.site[0]);
      if (e.target.classList.contains("gp-go")) { S.map.setView(ll, Math.max(S.map.getZoom(), 13)); }
      if (e.target.classList.contains("gp-use")) { addSite(ll); }
    });
    $("#gp-saved").addEventListener("click", function (e) {
      var i = Number(e.target.getAttribute("data-i"));
      if (e.target.classList.contains("gp-load")) { load(i); }
      if (e.target.classList.contains("gp-del")) {
        var list = savedList();
        list.splice(i, 1);
        localStorage.setItem(STORE_KEY, JSON.stringify(list));
        drawSaved();
      }
    });
    S.map.on("click", function (e) { if (S.mode === "add") { addSite(e.latlng); } });
    if (S.layers.facilities) {
      S.layers.facilities.on("click", function (e) {
        if (S.mode === "remove" && e.layer && e.layer.options.gsIndex !== undefined) {
          e.layer.closePopup();
          toggleStation(e.layer.options.gsIndex);
        }
      });
    }
  }

  function init(opts) {
    S = {map: opts.map, layers: opts.layers, config: opts.config, mode: "browse", seq: 0, scenarioSeq: 0,
         solveSeq: 0, scenario: {add: [], remove: {}}, proposals: [], result: null,
         params: opts.config.params, radius: opts.config.radius_m, coverage: opts.config.totals,
         catchment: opts.config.catchment};
    S.facilities = {rows: opts.config.facility_rows || null, ids: opts.config.facility_ids,
                    labels: opts.config.facility_labels, note: opts.config.facility_note};
    S.group = L.featureGroup().addTo(S.map);
    S.panel = buildPanel();
    if (S.map.zoomControl) { S.map.zoomControl.setPosition("bottomright"); }
    setControls(S.params);
    $("#gp-catchment").textContent = S.catchment;
    $("#gp-facilities").textContent = num(S.facilities.ids.length);
    $("#gp-gaps").textContent = num(opts.config.gap_count);
    if (window.innerWidth < 700) { S.panel.querySelector("details").removeAttribute("open"); }
    wire();
    drawGapList(opts.config.gap_list);
    drawSaved();
    showResult(null);
    setMode("browse");
    // the stations' rows are in the Folium batch; the tool keeps its own copy for removed-station markers
    if (!S.facilities.rows && S.layers.facilities) {
      var rows = [];
      S.layers.facilities.eachLayer(function (l) { if (l.options.gsRow) { rows[l.options.gsIndex] = l.options.gsRow; } });
      S.facilities.rows = rows;
    }
    // sites the page was drawn with (/planning?k=10): listed, and they can join the scenario too
    S.proposals = (opts.config.proposals || []).map(function (p) { return {lon: p.lon, lat: p.lat, p: p}; });
    if (S.proposals.length) { listProposals({}); }
    window.GeoPlanning.state = S;
  }

  window.GeoPlanning = {init: init, state: null};
})();
