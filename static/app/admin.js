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
    ["xlsx", "csv"].forEach(function (fmt) {
      $("download-" + fmt).addEventListener("click", function () { download(fmt, this); });
    });
    $("layer").addEventListener("change", function () { state.layer = this.value; $("result").textContent = ""; refresh(); });
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
