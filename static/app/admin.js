/* Data management page: sign in with an operator token, import a list (check first), see versions, restore one.
 * Everything goes through the admin API (/api/admin/...) with the token in the Authorization header; the token is
 * kept in sessionStorage (this tab only). Text from files is always set with textContent, never as HTML. */
(function () {
  "use strict";
  var KEY = "geoserver.admin.token";
  var $ = function (id) { return document.getElementById(id); };
  var state = { token: sessionStorage.getItem(KEY) || "", layers: [], layer: null };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function api(method, path, body) {
    var opts = { method: method, headers: { "Authorization": "Bearer " + state.token } };
    if (body instanceof FormData) opts.body = body;
    else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
    return fetch(path, opts).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (resp.status === 401) signOut("令牌无效或已撤销 / The token is not valid (unknown or revoked)");
        return { status: resp.status, ok: resp.ok, data: data };
      });
    });
  }

  function signOut(message) {
    state.token = "";
    sessionStorage.removeItem(KEY);
    $("workspace").hidden = true; $("signout").hidden = true; $("who").hidden = true; $("signin").hidden = false;
    $("signin-error").hidden = !message; $("signin-error").textContent = message || "";
  }

  function signIn() {
    return api("GET", "/api/admin/layers").then(function (r) {
      if (!r.ok) { if (r.status !== 401) signOut(r.data.description || ("HTTP " + r.status)); return; }
      state.layers = r.data.layers.filter(function (l) { return l.may_edit; });
      $("who").textContent = "操作人 / Operator: " + r.data.operator; $("who").hidden = false;
      $("signin").hidden = true; $("workspace").hidden = false; $("signout").hidden = false;
      var select = $("layer"); select.textContent = "";
      state.layers.forEach(function (l) { select.appendChild(el("option", { value: l.id, text: l.title_zh + " (" + l.id + ")" })); });
      if (!state.layers.length) { $("layer-info").textContent = "此令牌不能修改任何图层 / This token may not change any layer"; return; }
      state.layer = state.layers[0].id;
      refresh();
    });
  }

  function refresh() {
    var layer = state.layers.filter(function (l) { return l.id === state.layer; })[0];
    api("GET", "/api/admin/layers").then(function (r) {
      if (!r.ok) return;
      var now = r.data.layers.filter(function (l) { return l.id === state.layer; })[0] || layer;
      $("layer-info").textContent = now.features + " 个点位 / features · 版本 / version " + (now.version || "—") +
        " · 数据版本 / data " + now.data_version;
    });
    api("GET", "/api/admin/layers/" + state.layer + "/history").then(function (r) { if (r.ok) showHistory(r.data); });
    api("GET", "/api/admin/audit?limit=20&layer=" + encodeURIComponent(state.layer)).then(function (r) {
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

  // --- one feature ---------------------------------------------------------------------------------------
  function currentLayer() { return state.layers.filter(function (l) { return l.id === state.layer; })[0]; }

  function search(q) {
    var list = $("matches"); list.textContent = "";
    api("GET", "/api/admin/layers/" + state.layer + "/features?limit=20&q=" + encodeURIComponent(q)).then(function (r) {
      if (!r.ok) { list.appendChild(el("li", { className: "error", text: r.data.description || ("HTTP " + r.status) })); return; }
      if (!r.data.features.length) list.appendChild(el("li", { className: "muted", text: "没有找到 / Nothing found" }));
      r.data.features.forEach(function (f) {
        var b = el("button", { type: "button", text: f.id + " · " + (f.properties.name || "") + " · " + (f.properties.address || "") });
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

  function openFeature(fid) {
    var form = $("feature-form");
    $("feature-result").textContent = "";
    var show = function (feature, etag) {
      state.editing = { id: feature ? feature.id : null, etag: etag };
      var props = feature ? feature.properties : {};
      $("feature-title").textContent = feature ? feature.id + " · " + props.name : "新增点位 / New facility";
      var box = $("feature-fields"); box.textContent = "";
      currentLayer().fields.forEach(function (f) {
        if (f.name === "source" && !feature) return;
        if (f.name === "id" && !feature) return;
        box.appendChild(fieldInput(f, props[f.name]));
      });
      $("f-lon").value = feature ? feature.geometry.coordinates[0] : "";
      $("f-lat").value = feature ? feature.geometry.coordinates[1] : "";
      $("delete-feature").hidden = !feature;
      form.hidden = false;
      form.scrollIntoView({ block: "start" });
    };
    if (!fid) { show(null, null); return; }
    fetch("/api/admin/layers/" + state.layer + "/features/" + encodeURIComponent(fid),
          { headers: { "Authorization": "Bearer " + state.token } }).then(function (resp) {
      return resp.json().then(function (data) { if (resp.ok) show(data, resp.headers.get("ETag")); });
    });
  }

  function featureBody() {
    var form = $("feature-form"), props = {};
    currentLayer().fields.forEach(function (f) {
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
    return { type: "Feature", geometry: { type: "Point", coordinates: [Number($("f-lon").value), Number($("f-lat").value)] },
             properties: props };
  }

  function showFeatureResult(r, okText) {
    var out = $("feature-result"); out.textContent = "";
    if (r.ok) { out.appendChild(el("p", { className: "ok", text: okText })); return true; }
    var problems = r.data.report ? r.data.report.problems.filter(function (p) { return p.severity === "error"; }) : [];
    if (!problems.length) { out.appendChild(el("p", { className: "error", role: "alert", text: r.data.description || ("HTTP " + r.status) })); return false; }
    var list = el("ul", { className: "problems", role: "alert" });
    var titles = {};
    currentLayer().fields.forEach(function (f) { titles[f.name] = f.title_zh; });
    problems.forEach(function (p) {
      var column = titles[p.column] || p.column || "";
      list.appendChild(el("li", {}, [column + "：" + p.message_zh, el("br"), el("span", { className: "en", text: p.message_en })]));
    });
    out.appendChild(list);
    return false;
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
            if (!r.ok) window.alert(r.data.description || ("HTTP " + r.status));
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
    if (!report) { out.appendChild(el("p", { className: "error", role: "alert", text: data.description || ("HTTP " + r.status) })); return; }
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
    $("feature-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var editing = state.editing, body = featureBody();
      var path = "/api/admin/layers/" + state.layer + "/features" + (editing.id ? "/" + encodeURIComponent(editing.id) : "");
      var opts = { method: editing.id ? "PUT" : "POST", headers: { "Authorization": "Bearer " + state.token,
                   "Content-Type": "application/json" }, body: JSON.stringify(body) };
      if (editing.etag) opts.headers["If-Match"] = editing.etag;
      fetch(path, opts).then(function (resp) {
        return resp.json().then(function (data) {
          var r = { ok: resp.ok, status: resp.status, data: data };
          if (resp.status === 412) data.description = "点位已被他人修改，请重新打开 / Changed by someone else meanwhile: open it again";
          var f = data.feature;
          if (showFeatureResult(r, "已保存为版本 " + (data.change && data.change.version) + " / Saved as version " +
                                (data.change && data.change.version) + (f ? " · " + f.id : ""))) {
            state.editing = { id: f.id, etag: resp.headers.get("ETag") };
            $("feature-title").textContent = f.id + " · " + f.properties.name;
            $("delete-feature").hidden = false;
            refresh();
          }
        });
      });
    });
    $("delete-feature").addEventListener("click", function () {
      var editing = state.editing;
      if (!editing.id || !window.confirm("删除点位 " + editing.id + "？（可从旧版本恢复）\nDelete " + editing.id + "? (old versions can be restored)")) return;
      var headers = { "Authorization": "Bearer " + state.token };
      if (editing.etag) headers["If-Match"] = editing.etag;
      fetch("/api/admin/layers/" + state.layer + "/features/" + encodeURIComponent(editing.id), { method: "DELETE", headers: headers })
        .then(function (resp) { return resp.json().then(function (data) {
          if (showFeatureResult({ ok: resp.ok, status: resp.status, data: data }, "已删除 / Deleted " + editing.id)) {
            $("feature-fields").textContent = ""; $("delete-feature").hidden = true; state.editing = { id: null, etag: null };
            refresh();
          }
        }); });
    });
    ["xlsx", "csv"].forEach(function (fmt) {
      $("download-" + fmt).addEventListener("click", function () { download(fmt, this); });
    });
    $("layer").addEventListener("change", function () {
      state.layer = this.value; $("result").textContent = ""; $("matches").textContent = ""; $("feature-form").hidden = true;
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
      api("POST", "/api/admin/layers/" + state.layer + "/import?" + params.toString(), data).then(function (r) {
        showReport(r, dryRun);
        if (!dryRun) refresh();
      }).catch(function (err) {
        $("result").textContent = "请求失败 / Request failed: " + err;
      }).then(function () {
        Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = false; });
      });
    });
    if (state.token) signIn();
  });
})();
