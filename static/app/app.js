/* Workers' map (served at /): nearest union rest stations and services for riders and outdoor workers.
 *
 * Data flow: the page's bootstrap JSON (layers, services, districts, base maps, opening-hours state) ->
 * location (browser geolocation, else a map tap or a district) -> GET /api/nearest -> the list (works before
 * Leaflet has loaded) -> the map (Leaflet from /static/vendor, loaded in parallel) with the nearest points
 * numbered and every other point of the layer in view from GET /ogc/collections/{layer}/items?bbox=…, clustered.
 * Data stay in WGS84; markers are shifted to GCJ-02 only when the Amap base map is shown.
 * No framework, no build step; nothing is fetched from outside the app except configured base-map tiles.
 */
(function () {
  'use strict';

  var boot = JSON.parse(document.getElementById('boot').textContent);
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };

  // --- text ----------------------------------------------------------------------------------------------------
  var TEXT = {
    zh: {
      title: '工会驿站地图', skip: '跳到附近地点列表', baseLabel: '底图', layersLabel: '地点类型', mapLabel: '地图',
      filtersLabel: '筛选', barLabel: '位置', listTitle: '附近地点', starting: '正在准备定位…',
      base_amap: '高德地图', base_osm: '标准地图', base_none: '无底图',
      locate: '定位我', locating: '定位中…', pick: '地图选点', district: '选区', districtLabel: '选择所在区',
      openNow: '营业中', clear: '清除筛选', more: '显示更多',
      sample: '示例数据：这些地点并非真实存在，请勿前往。',
      listFor: '离{where}最近的{layer}', whereGps: '我的位置', wherePick: '所选位置', whereLink: '指定位置',
      accuracy: '定位精度约 {d}。', found: '共 {n} 个，按直线距离排序。', loading: '正在查找附近地点…',
      loadError: '加载失败，请检查网络后重试。', retry: '重试', empty: '附近没有符合条件的地点。',
      errDenied: '无法定位：定位权限被拒绝。', errUnavailable: '暂时无法获取您的位置。', errTimeout: '定位超时。',
      errUnsupported: '此浏览器不支持定位。', errInsecure: '定位需要安全连接（HTTPS）。',
      fallback: '请点击地图上您所在的位置，或在下方“选区”中选择所在区。', tryAgain: '再试一次定位',
      pickHint: '点击地图选择您的位置', districtHint: '已按{name}中心查找；点击“地图选点”可选更准确的位置。',
      far: '您似乎不在上海，最近的地点也很远。', mapError: '地图加载失败，列表仍可使用。',
      ebike: '电动车约 {t}', walk: '步行约 {t}', min: '{n} 分钟', hr: '{h} 小时', hrMin: '{h} 小时 {m} 分钟',
      m: '{n} 米', km: '{n} 公里', open: '营业中', closed: '已关闭', closes: '{t} 关门', opens: '{t} 开门',
      allDay: '24 小时开放', tomorrow: '明天', hoursUnknown: '开放时间未知（请先电话确认）',
      address: '地址', hours: '开放时间', host: '所属单位', district2: '所在区', services: '服务设施',
      hiring: '即时快招', area: '面积', truckSpaces: '货车车位', mealPrice: '参考餐价', smart: '智能站点（扫码开门）',
      m2: '{n} 平方米', yuan: '约 {n} 元', spaces: '{n} 个', yes: '是', marketType: '市场类型',
      market_comprehensive: '综合性零工市场', market_industry: '行业零工市场', industry: '行业', sep: '',
      navAmap: '高德导航', navBaidu: '百度导航', showOnMap: '在地图上查看', close: '关闭',
      servicesOf: '服务：', dirs: ['北', '东北', '东', '东南', '南', '西南', '西', '西北'],
      days: { Mo: '周一', Tu: '周二', We: '周三', Th: '周四', Fr: '周五', Sa: '周六', Su: '周日', PH: '法定节假日' },
      daily: '每天', through: '至', listSep: '、', closedOn: '{days}休息', h247: '24 小时开放', langBtn: 'EN',
      langLabel: 'Switch to English', you: '我的位置', picked: '所选位置', about: '约'
    },
    en: {
      title: 'Union rest stops', skip: 'Skip to the list of nearby places', baseLabel: 'Base map',
      layersLabel: 'Type of place', mapLabel: 'Map', filtersLabel: 'Filters', barLabel: 'Location',
      listTitle: 'Nearby places', starting: 'Getting ready to find you…',
      base_amap: 'Amap', base_osm: 'OSM map', base_none: 'No map',
      locate: 'Locate me', locating: 'Locating…', pick: 'Pick on map', district: 'District',
      districtLabel: 'Choose your district', openNow: 'Open now', clear: 'Clear filters', more: 'Show more',
      sample: 'Sample data: these places are not real; do not go there.',
      listFor: '{layer} nearest to {where}', whereGps: 'your location', wherePick: 'the chosen point',
      whereLink: 'the given point', accuracy: 'Location accurate to about {d}.',
      found: '{n} places, sorted by straight-line distance.', loading: 'Finding places near you…',
      loadError: 'Could not load. Check your connection and try again.', retry: 'Retry',
      empty: 'No matching places nearby.', errDenied: 'Cannot locate you: location permission was denied.',
      errUnavailable: 'Your location is not available right now.', errTimeout: 'Locating took too long.',
      errUnsupported: 'This browser cannot locate you.', errInsecure: 'Locating needs a secure (HTTPS) connection.',
      fallback: 'Tap your position on the map, or choose your district with “District” below.',
      tryAgain: 'Try locating again', pickHint: 'Tap the map to choose your position',
      districtHint: 'Searched from the centre of {name}; use “Pick on map” for a more exact position.',
      far: 'You seem to be outside Shanghai; even the nearest places are far away.',
      mapError: 'The map could not be loaded; the list still works.',
      ebike: '≈ {t} by e-bike', walk: '≈ {t} on foot', min: '{n} min', hr: '{h} h', hrMin: '{h} h {m} min',
      m: '{n} m', km: '{n} km', open: 'Open', closed: 'Closed', closes: 'closes {t}', opens: 'opens {t}',
      allDay: 'Open 24 hours', tomorrow: 'tomorrow', hoursUnknown: 'Opening hours unknown (call before going)',
      address: 'Address', hours: 'Hours', host: 'Host', district2: 'District', services: 'Services',
      hiring: 'Walk-in hiring', area: 'Floor area', truckSpaces: 'Truck spaces', mealPrice: 'Typical meal',
      smart: 'Smart station (QR unlock)', m2: '{n} m²', yuan: '≈ ¥{n}', spaces: '{n}', yes: 'yes',
      marketType: 'Market type', market_comprehensive: 'Comprehensive gig market',
      market_industry: 'Industry gig market', industry: 'Industry', sep: ' ',
      navAmap: 'Amap navigation', navBaidu: 'Baidu navigation', showOnMap: 'Show on map', close: 'Close',
      servicesOf: 'Services: ', dirs: ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'],
      days: { Mo: 'Mon', Tu: 'Tue', We: 'Wed', Th: 'Thu', Fr: 'Fri', Sa: 'Sat', Su: 'Sun', PH: 'public holidays' },
      daily: 'Daily', through: '–', listSep: ', ', closedOn: 'Closed on {days}', h247: 'Open 24/7', langBtn: '中文',
      langLabel: '切换到中文', you: 'Your location', picked: 'Chosen point', about: '≈'
    }
  };

  // --- preferences (remembered in localStorage) ------------------------------------------------------------------
  var PREFS_KEY = 'shanghai-union-map:prefs:v1';
  var layers = boot.layers;
  var layerById = {};
  layers.forEach(function (l) { layerById[l.id] = l; });
  var baseById = {};
  boot.basemaps.forEach(function (b) { baseById[b.id] = b; });
  var districtById = {};
  boot.districts.forEach(function (d) { districtById[d.id] = d; });

  function readPrefs() {
    try { return JSON.parse(localStorage.getItem(PREFS_KEY)) || {}; } catch (e) { return {}; }
  }
  var saved = readPrefs();
  var query = new URLSearchParams(location.search);
  var S = {
    lang: pick([query.get('lang'), saved.lang], ['zh', 'en']) || 'zh',
    layer: pick([query.get('layer'), saved.layer], layers.map(function (l) { return l.id; })) || layers[0].id,
    services: (Array.isArray(saved.services) ? saved.services : []).filter(function (s) { return boot.services[s]; }),
    openNow: saved.openNow === true,
    base: pick([saved.base], boot.basemaps.map(function (b) { return b.id; })) || boot.basemaps[0].id,
    origin: null,        // {lon, lat, source: 'gps'|'pick'|'district'|'link', accuracy, district}
    results: [],         // features of the last /api/nearest answer
    k: 10,
    features: new Map(), // id -> {id, layer, lon, lat, p}, WGS84
    selected: null,
    geoError: null,
    picking: false,
    hours: boot.hours,
    listState: 'idle',
    lastRefresh: 0,
    viewAllowed: false
  };
  function pick(candidates, allowed) {
    for (var i = 0; i < candidates.length; i++) {
      if (candidates[i] != null && allowed.indexOf(candidates[i]) >= 0) return candidates[i];
    }
    return null;
  }
  function savePrefs() {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify({ lang: S.lang, layer: S.layer, services: S.services,
        openNow: S.openNow, base: S.base }));
    } catch (e) { /* private mode: not remembered */ }
  }
  function t(key, vars) {
    var s = TEXT[S.lang][key];
    if (s == null) s = TEXT.zh[key];
    if (vars && typeof s === 'string') {
      s = s.replace(/\{(\w+)\}/g, function (_, k) { return vars[k] != null ? vars[k] : ''; });
    }
    return s;
  }
  function label(obj, zhKey, enKey) { return S.lang === 'en' ? (obj[enKey] || obj[zhKey]) : obj[zhKey]; }

  // --- coordinates: GCJ-02 from datum.js (window.GeoDatum, the formulas of geoserver/core/crs.py) ------------
  var PI = Math.PI;
  var wgs84ToGcj02 = window.GeoDatum.wgs84ToGcj02, gcj02ToWgs84 = window.GeoDatum.gcj02ToWgs84;
  function displayCrs() { return baseById[S.base].crs; }
  function toDisplay(lon, lat) { return displayCrs() === 'gcj02' ? wgs84ToGcj02(lon, lat) : [lon, lat]; }
  function fromDisplay(lon, lat) { return displayCrs() === 'gcj02' ? gcj02ToWgs84(lon, lat) : [lon, lat]; }

  // --- distances and times -------------------------------------------------------------------------------------
  var EBIKE_M_PER_MIN = 15000 / 60, WALK_M_PER_MIN = 4500 / 60;
  function detour(d) { return 1.32 + 0.28 * Math.exp(-d / 1000); } // README: f(d) = 1.32 + 0.28·e^(−d/1 km)
  function haversine(lon1, lat1, lon2, lat2) {
    var r = PI / 180, dlat = (lat2 - lat1) * r, dlon = (lon2 - lon1) * r;
    var a = Math.pow(Math.sin(dlat / 2), 2) + Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.pow(Math.sin(dlon / 2), 2);
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(a)));
  }
  function bearing(lon1, lat1, lon2, lat2) {
    var r = PI / 180, y = Math.sin((lon2 - lon1) * r) * Math.cos(lat2 * r);
    var x = Math.cos(lat1 * r) * Math.sin(lat2 * r) - Math.sin(lat1 * r) * Math.cos(lat2 * r) * Math.cos((lon2 - lon1) * r);
    return (Math.atan2(y, x) / r + 360) % 360;
  }
  function fmtDistance(m) {
    if (m < 1000) return t('m', { n: Math.max(10, Math.round(m / 10) * 10) });
    return t('km', { n: m < 10000 ? (m / 1000).toFixed(1) : Math.round(m / 1000) });
  }
  function fmtMinutes(min) {
    var n = Math.max(1, Math.ceil(min));
    if (n < 60) return t('min', { n: n });
    var h = Math.floor(n / 60), m = n % 60;
    return m ? t('hrMin', { h: h, m: m }) : t('hr', { h: h });
  }
  function travel(distance) {
    var d = distance * detour(distance);
    return { ebike: t('ebike', { t: fmtMinutes(d / EBIKE_M_PER_MIN) }), walk: t('walk', { t: fmtMinutes(d / WALK_M_PER_MIN) }) };
  }
  function direction(deg) { return t('dirs')[Math.round(deg / 45) % 8]; }
  function relation(f) { // distance and bearing from the origin: the API's values, else computed here
    if (!S.origin) return null;
    if (f.distance_m != null && f.originKey === originKey()) return { d: f.distance_m, b: f.bearing_deg };
    return { d: haversine(S.origin.lon, S.origin.lat, f.lon, f.lat), b: bearing(S.origin.lon, S.origin.lat, f.lon, f.lat) };
  }
  function originKey() { return S.origin ? S.origin.lon.toFixed(6) + ',' + S.origin.lat.toFixed(6) : ''; }

  // --- opening hours -------------------------------------------------------------------------------------------
  function hoursState(expr) { return expr ? S.hours.states[expr] : null; }
  function isOpen(f) {
    if (f.openNow != null && f.originKey === originKey()) return f.openNow;
    var st = hoursState(f.p.opening_hours);
    return st ? st[0] : null;
  }
  function shanghaiDate(ms) { return new Date(ms + 8 * 3600e3).toISOString().slice(0, 10); }
  function fmtChange(iso) { // '2026-11-26T08:00+08:00' -> '08:00' / '明天 08:00' / '周一 08:00'
    var day = iso.slice(0, 10), time = iso.slice(11, 16);
    var today = shanghaiDate(Date.now());
    var diff = Math.round((Date.parse(day) - Date.parse(today)) / 864e5);
    if (diff === 1 && time === '00:00') return '24:00';
    if (diff <= 0) return time;
    if (diff === 1) return t('tomorrow') + ' ' + time;
    var wd = ['Su', 'Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa'][new Date(day + 'T12:00:00Z').getUTCDay()];
    return t('days')[wd] + ' ' + time;
  }
  function statusParts(f) { // [badge class, badge text, change text]
    var open = isOpen(f);
    if (open == null) { // no hours in this layer: no badge; a feature without hours: say they are unknown
      var l = layerById[f.layer] || currentLayer();
      return l && l.has_hours && !f.p.opening_hours ? ['unknown', t('hoursUnknown'), ''] : null;
    }
    var st = hoursState(f.p.opening_hours), change = '';
    if (st && st[1]) change = t(open ? 'closes' : 'opens', { t: fmtChange(st[1]) });
    else if (open) change = t('allDay');
    return [open ? 'open' : 'closed', t(open ? 'open' : 'closed'), change];
  }
  var DAY_RE = /^((?:PH|Mo|Tu|We|Th|Fr|Sa|Su)(?:\s*[-,]\s*(?:PH|Mo|Tu|We|Th|Fr|Sa|Su))*)\s+(.+)$/;
  function humanHours(expr) { // OpenStreetMap opening_hours -> readable lines; unknown syntax is shown as is
    if (!expr) return [t('hoursUnknown')];
    if (expr.trim() === '24/7') return [t('h247')];
    var days = t('days');
    return expr.split(/\s*;\s*/).filter(Boolean).map(function (rule) {
      var m = rule.match(DAY_RE);
      if (!m) return rule;
      var dayText = m[1].split(/\s*,\s*/).map(function (part) {
        var r = part.split(/\s*-\s*/);
        if (r.length === 2 && r[0] === 'Mo' && r[1] === 'Su') return t('daily');
        if (r.length === 2) return days[r[0]] + t('through') + days[r[1]];
        return days[r[0]] || r[0];
      }).join(t('listSep'));
      var times = m[2].trim();
      if (/^(off|closed)$/.test(times)) return t('closedOn', { days: dayText });
      return dayText + ' ' + times.replace(/\s*-\s*/g, '–').replace(/\s*,\s*/g, ', ');
    });
  }

  // --- DOM helpers (data are always set as text, never as HTML) ---------------------------------------------------
  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v == null || v === false) return;
        if (k === 'text') node.textContent = v;
        else if (k === 'class') node.className = v;
        else if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? '' : v);
      });
    }
    (children || []).forEach(function (c) {
      if (c != null) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return node;
  }
  var SVG_NS = 'http://www.w3.org/2000/svg';
  var SAFE_NAME = /^[a-z0-9_]+$/;
  function icon(name, cls) {
    var svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'ic' + (cls ? ' ' + cls : ''));
    svg.setAttribute('aria-hidden', 'true');
    var use = document.createElementNS(SVG_NS, 'use');
    use.setAttribute('href', '#i-' + (SAFE_NAME.test(name) ? name : 'station'));
    svg.appendChild(use);
    return svg;
  }
  function safeColor(c) { return /^#[0-9a-fA-F]{3,8}$/.test(c || '') ? c : '#a4161a'; }
  function currentLayer() { return layerById[S.layer]; }
  function layerServices() {
    var allowed = currentLayer().services;
    return S.services.filter(function (s) { return allowed.indexOf(s) >= 0; });
  }

  // --- static texts, layer tabs, filters -----------------------------------------------------------------------
  var els = {
    layers: $('#layers'), filters: $('#filters'), status: $('#status'), list: $('#list'), more: $('#more'),
    results: $('#results'), title: $('#results-title'), card: $('#card'), locate: $('#locate'), pick: $('#pick'),
    district: $('#district'), base: $('#base'), lang: $('#lang'), sample: $('#sample'), maphint: $('#maphint'),
    map: $('#map')
  };

  function applyLanguage() {
    document.documentElement.lang = S.lang === 'en' ? 'en' : 'zh-CN';
    document.title = t('title') + (S.lang === 'en' ? ' · Shanghai' : ' · 上海');
    $$('[data-i18n]').forEach(function (node) { node.textContent = t(node.getAttribute('data-i18n')); });
    $$('[data-i18n-aria]').forEach(function (node) { node.setAttribute('aria-label', t(node.getAttribute('data-i18n-aria'))); });
    els.lang.textContent = t('langBtn');
    els.lang.setAttribute('lang', S.lang === 'en' ? 'zh-CN' : 'en');
    els.lang.setAttribute('aria-label', t('langLabel'));
    $$('option', els.base).forEach(function (o) { o.textContent = t('base_' + o.value) || o.value; });
    $$('option', els.district).forEach(function (o) {
      var d = districtById[o.value];
      if (d) o.textContent = S.lang === 'en' ? (d.name_en || d.name) : d.name;
    });
    updateDistrictText();
    $$('button', els.layers).forEach(function (b) {
      var l = layerById[b.getAttribute('data-layer')];
      if (l) {
        b.querySelector('span').textContent = label(l, 'short_zh', 'short_en');
        b.title = label(l, 'title_zh', 'title_en');
      }
    });
    renderFilters();
    renderList();
    if (S.selected) renderCard(S.selected);
    updateMapHint();
    if (mapApi) mapApi.refreshLabels();
  }

  function renderLayerTabs() {
    $$('button', els.layers).forEach(function (b) {
      var on = b.getAttribute('data-layer') === S.layer;
      b.setAttribute('aria-checked', String(on));
      b.tabIndex = on ? 0 : -1; // roving tabindex: the group is one tab stop, arrow keys move the choice
    });
    var l = currentLayer();
    els.sample.hidden = !l.sample;
    document.documentElement.style.setProperty('--lc', safeColor(l.color));
  }

  function renderFilters() {
    var l = currentLayer(), active = layerServices();
    var chips = [];
    if (l.has_hours) {
      chips.push(h('button', { type: 'button', class: 'chip open-chip', 'aria-pressed': String(S.openNow),
        'data-filter': 'open_now', onclick: function () { S.openNow = !S.openNow; filtersChanged(); } },
        [icon('clock'), t('openNow')]));
    }
    l.services.forEach(function (id) {
      var s = boot.services[id];
      chips.push(h('button', { type: 'button', class: 'chip', 'aria-pressed': String(active.indexOf(id) >= 0),
        'data-service': id, onclick: function () { toggleService(id); } }, [icon(s.icon), label(s, 'zh', 'en')]));
    });
    chips.push(h('button', { type: 'button', class: 'chip clear', 'data-filter': 'clear', hidden: !(active.length || S.openNow),
      onclick: function () {
        clearFilters();
        var first = els.filters.querySelector('button'); // the pressed button is now hidden: keep the focus nearby
        if (first) first.focus();
      } }, [t('clear')]));
    var scroll = els.filters.scrollLeft;
    els.filters.replaceChildren.apply(els.filters, chips);
    els.filters.scrollLeft = scroll;
  }
  function updateFilterState() { // in place, so a keyboard user's focus stays on the chip just pressed
    var active = layerServices();
    $$('button', els.filters).forEach(function (b) {
      var id = b.getAttribute('data-service'), f = b.getAttribute('data-filter');
      if (id) b.setAttribute('aria-pressed', String(active.indexOf(id) >= 0));
      else if (f === 'open_now') b.setAttribute('aria-pressed', String(S.openNow));
      else if (f === 'clear') b.hidden = !(active.length || S.openNow);
    });
  }
  function toggleService(id) {
    var i = S.services.indexOf(id);
    if (i >= 0) S.services.splice(i, 1); else S.services.push(id);
    filtersChanged();
  }
  function clearFilters() {
    var l = currentLayer();
    S.services = S.services.filter(function (s) { return l.services.indexOf(s) < 0; });
    S.openNow = false;
    filtersChanged();
  }
  function filtersChanged() {
    savePrefs();
    updateFilterState();
    S.k = 10;
    refreshList();
    if (mapApi) mapApi.syncMarkers();
  }
  function setLayer(id) {
    if (id === S.layer || !layerById[id]) return;
    S.layer = id;
    S.k = 10;
    savePrefs();
    closeCard();
    renderLayerTabs();
    renderFilters();
    S.results = [];
    renderList();
    refreshList();
    if (mapApi) mapApi.layerChanged();
  }

  // --- the list ------------------------------------------------------------------------------------------------
  function setStatus(nodes) { els.status.replaceChildren.apply(els.status, nodes); }
  function setListState(state) {
    S.listState = state;
    els.results.setAttribute('data-state', state);
    els.list.setAttribute('aria-busy', String(state === 'loading'));
  }

  function whereText() {
    var o = S.origin;
    if (!o) return '';
    if (o.source === 'gps') return t('whereGps');
    if (o.source === 'district') { var d = districtById[o.district]; return d ? (S.lang === 'en' ? d.name_en : d.name) : ''; }
    return t(o.source === 'link' ? 'whereLink' : 'wherePick');
  }

  function renderStatus() {
    var nodes = [];
    var o = S.origin;
    if (!o) {
      if (S.geoError) {
        nodes.push(h('p', { class: 'warn' }, [t(S.geoError) + t('sep') + t('fallback')]));
        if (S.geoError !== 'errUnsupported' && S.geoError !== 'errInsecure') {
          nodes.push(h('button', { type: 'button', onclick: function () { locate(); } }, [t('tryAgain')]));
        }
      } else {
        nodes.push(h('p', {}, [t(S.locating ? 'locating' : 'starting')]));
      }
      setStatus(nodes);
      return;
    }
    if (S.listState === 'loading') nodes.push(h('p', {}, [t('loading')]));
    if (S.listState === 'error') {
      nodes.push(h('p', { class: 'err' }, [t('loadError')]));
      nodes.push(h('button', { type: 'button', onclick: function () { refreshList(); } }, [t('retry')]));
    }
    if (S.listState === 'empty') {
      nodes.push(h('p', { class: 'warn' }, [t('empty')]));
      if (layerServices().length || S.openNow) {
        nodes.push(h('button', { type: 'button', onclick: clearFilters }, [t('clear')]));
      }
    }
    if (S.listState === 'ready') {
      var line = t('found', { n: S.results.length });
      if (o.source === 'gps' && o.accuracy) line = t('accuracy', { d: fmtDistance(o.accuracy) }) + t('sep') + line;
      nodes.push(h('p', {}, [line]));
      if (o.source === 'district') nodes.push(h('p', {}, [t('districtHint', { name: whereText() })]));
      if (S.results.length && S.results[0].distance_m > 60000) nodes.push(h('p', { class: 'warn' }, [t('far')]));
    }
    setStatus(nodes);
  }

  function renderList() {
    var l = currentLayer();
    els.title.textContent = S.origin
      ? t('listFor', { where: whereText(), layer: label(l, 'short_zh', 'short_en') })
      : t('listTitle');
    renderStatus();
    var active = layerServices();
    var items = S.results.map(function (f, i) {
      var rel = relation(f), st = statusParts(f), tr = travel(rel.d);
      var svcs = (f.p.services || []).filter(function (s) { return boot.services[s]; });
      var svcNames = svcs.map(function (s) { return label(boot.services[s], 'zh', 'en'); }).join(t('listSep'));
      return h('li', { class: 'item' + (st && st[0] === 'closed' ? ' closed' : '') + (S.selected === f.id ? ' sel' : ''),
        'data-feature-id': f.id }, [
        h('button', { type: 'button', 'aria-haspopup': 'dialog', onclick: function () { openCard(f.id, { pan: true }); } }, [
          h('span', { class: 'rank', style: '--c:' + safeColor(l.color), 'aria-hidden': 'true', text: String(i + 1) }),
          h('span', { class: 'item-body' }, [
            h('span', { class: 'item-name', text: f.p.name }),
            h('span', { class: 'item-meta' }, [
              h('span', { class: 'dist', text: fmtDistance(rel.d) }),
              h('span', { class: 'dir', text: direction(rel.b) }),
              st ? h('span', { class: 'badge ' + st[0], text: st[1] }) : null,
              st && st[2] ? h('span', { class: 'change', text: st[2] }) : null
            ]),
            h('span', { class: 'times', text: tr.ebike + ' · ' + tr.walk }),
            h('span', { class: 'svcs' }, svcs.map(function (s) {
              return icon(boot.services[s].icon, active.indexOf(s) >= 0 ? 'hit' : '');
            }).concat([h('span', { class: 'sr-only', text: t('servicesOf') + svcNames })]))
          ])
        ])
      ]);
    });
    els.list.replaceChildren.apply(els.list, items);
    els.more.hidden = !(S.listState === 'ready' && S.results.length >= S.k && S.k < 50);
  }

  var nearestSeq = 0; // a newer request supersedes older ones (their answers are ignored, not aborted)
  function refreshList() {
    if (!S.origin) { renderList(); return Promise.resolve(); }
    var seq = ++nearestSeq;
    var params = new URLSearchParams({ lon: S.origin.lon.toFixed(6), lat: S.origin.lat.toFixed(6), layer: S.layer, k: String(S.k) });
    var svcs = layerServices();
    if (svcs.length) params.set('services', svcs.join(','));
    if (S.openNow && currentLayer().has_hours) params.set('open_now', 'true');
    var qs = params.toString();
    setListState('loading');
    renderStatus();
    return fetch(boot.api.nearest + '?' + qs, { headers: { Accept: 'application/geo+json' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (fc) {
        if (seq !== nearestSeq) return;
        var key = originKey();
        S.results = fc.features.map(function (g) {
          var f = storeFeature(g, S.layer);
          f.distance_m = g.properties.distance_m;
          f.bearing_deg = g.properties.bearing_deg;
          f.openNow = g.properties.open_now;
          f.originKey = key;
          return f;
        });
        S.lastRefresh = Date.now();
        els.list.setAttribute('data-query', qs);
        if (fc.query && fc.query.at) els.list.setAttribute('data-at', fc.query.at);
        setListState(S.results.length ? 'ready' : 'empty');
        renderList();
        if (!listReadyMarked && S.results.length) {
          listReadyMarked = true;
          if (window.performance && performance.mark) performance.mark('list-ready');
        }
        S.viewAllowed = true;
        if (mapApi) mapApi.resultsChanged();
      })
      .catch(function () {
        if (seq !== nearestSeq) return;
        setListState('error');
        renderList();
      });
  }
  var listReadyMarked = false;

  function storeFeature(g, layerId) {
    var c = g.geometry.coordinates;
    var props = {};
    Object.keys(g.properties).forEach(function (k) {
      if (k !== 'distance_m' && k !== 'bearing_deg' && k !== 'open_now') props[k] = g.properties[k];
    });
    var f = S.features.get(g.id);
    if (!f) {
      f = { id: String(g.id), layer: layerId, lon: c[0], lat: c[1], p: props };
      S.features.set(f.id, f);
    } else {
      f.lon = c[0]; f.lat = c[1]; f.p = props;
    }
    return f;
  }

  // --- location ------------------------------------------------------------------------------------------------
  function setOrigin(o) {
    S.origin = o;
    S.originSetAt = Date.now();
    S.geoError = null;
    S.k = 10;
    setPicking(false);
    if (o.source !== 'district') els.district.value = '';
    updateDistrictText();
    var done = refreshList();
    if (mapApi) mapApi.originChanged();
    return done;
  }
  var GEO_ERRORS = { 1: 'errDenied', 2: 'errUnavailable', 3: 'errTimeout' };
  function locate() {
    if (!('geolocation' in navigator)) { geoFailed('errUnsupported'); return; }
    if (window.isSecureContext === false) { geoFailed('errInsecure'); return; }
    S.locating = true;
    var started = Date.now();
    els.locate.setAttribute('aria-busy', 'true');
    els.locate.querySelector('span').textContent = t('locating');
    if (!S.origin) renderStatus();
    navigator.geolocation.getCurrentPosition(function (pos) {
      locateDone();
      if (S.origin && S.origin.source !== 'gps' && S.originSetAt > started) return; // the user chose meanwhile
      setOrigin({ lon: pos.coords.longitude, lat: pos.coords.latitude, source: 'gps', accuracy: pos.coords.accuracy });
    }, function (err) {
      locateDone();
      geoFailed(GEO_ERRORS[err && err.code] || 'errUnavailable');
    }, { enableHighAccuracy: true, timeout: 12000, maximumAge: 30000 });
  }
  function locateDone() {
    S.locating = false;
    els.locate.removeAttribute('aria-busy');
    els.locate.querySelector('span').textContent = t('locate');
  }
  function geoFailed(key) {
    S.geoError = key;
    if (S.origin) return; // keep the list of the last known position
    S.viewAllowed = true;
    renderList();
    updateMapHint();
    els.district.parentNode.classList.add('attention');
    setTimeout(function () { els.district.parentNode.classList.remove('attention'); }, 3200);
    if (mapApi) mapApi.loadView();
  }
  function setPicking(on) {
    S.picking = on;
    els.pick.setAttribute('aria-pressed', String(on));
    document.body.classList.toggle('picking', on);
    updateMapHint();
  }
  function updateMapHint() {
    var show = S.picking || (!S.origin && !!S.geoError);
    els.maphint.hidden = !show;
    els.maphint.textContent = t('pickHint');
  }
  function updateDistrictText() {
    var d = S.origin && S.origin.source === 'district' ? districtById[S.origin.district] : null;
    $('#district-text').textContent = d ? (S.lang === 'en' ? (d.name_en || d.name) : d.name) : t('district');
  }
  function pickAt(lon, lat) { setOrigin({ lon: lon, lat: lat, source: 'pick' }); }
  function chooseDistrict(id) {
    var d = districtById[id];
    if (!d) return;
    setOrigin({ lon: d.lon, lat: d.lat, source: 'district', district: d.id });
  }

  // --- the card ------------------------------------------------------------------------------------------------
  var cardReturnFocus = null;
  function amapUrl(f) {
    var mode = f.layer === 'driver_homes' ? 'car' : 'ride';
    return 'https://uri.amap.com/navigation?to=' + f.lon.toFixed(6) + ',' + f.lat.toFixed(6) + ',' +
      encodeURIComponent(f.p.name || '') + '&mode=' + mode + '&policy=1&src=shanghai-union-map&coordinate=wgs84&callnative=1';
  }
  function baiduUrl(f) {
    return 'https://api.map.baidu.com/marker?location=' + f.lat.toFixed(6) + ',' + f.lon.toFixed(6) +
      '&title=' + encodeURIComponent(f.p.name || '') + '&content=' + encodeURIComponent(f.p.address || '') +
      '&output=html&coord_type=wgs84&src=webapp.shanghai-union.map';
  }
  function renderCard(id) {
    var f = S.features.get(id);
    if (!f) return;
    var l = layerById[f.layer] || currentLayer(), p = f.p, st = statusParts(f), rel = relation(f);
    var facts = [];
    function fact(name, value) { if (value != null && value !== '') facts.push(h('dt', { text: name }), h('dd', {}, [value])); }
    fact(t('address'), p.address);
    fact(t('district2'), [p.district, p.subdistrict].filter(Boolean).join(' '));
    fact(t('hours'), h('span', { class: 'hours-lines' }, humanHours(p.opening_hours).map(function (line) {
      return h('span', { text: line });
    })));
    if (p.hiring_hours) fact(t('hiring'), humanHours(p.hiring_hours).join(S.lang === 'en' ? '; ' : '；'));
    if (p.market_type) fact(t('marketType'), t('market_' + p.market_type) || p.market_type);
    if (p.industry) fact(t('industry'), p.industry);
    fact(t('host'), p.host_org);
    if (p.truck_parking_spaces != null) fact(t('truckSpaces'), t('spaces', { n: p.truck_parking_spaces }));
    if (p.meal_price_yuan != null) fact(t('mealPrice'), t('yuan', { n: p.meal_price_yuan }));
    if (p.area_m2 != null) fact(t('area'), t('m2', { n: Math.round(p.area_m2) }));
    if (p.smart) fact(t('smart'), t('yes'));
    var svcs = (p.services || []).filter(function (s) { return boot.services[s]; });
    var tr = rel ? travel(rel.d) : null;
    var children = [
      h('div', { class: 'card-head' }, [
        h('h2', { id: 'card-title', tabindex: '-1', text: p.name }),
        h('button', { type: 'button', class: 'close', 'aria-label': t('close'), onclick: function () { closeCard(); } }, [icon('close')])
      ]),
      st ? h('p', { class: 'card-status' }, [h('span', { class: 'badge ' + st[0], text: st[1] }),
        st[2] ? h('span', { class: 'change', text: st[2] }) : null]) : null,
      rel ? h('p', { class: 'card-dist' }, [h('span', { class: 'dist', text: fmtDistance(rel.d) }),
        h('span', { class: 'dir', text: direction(rel.b) }), h('span', { class: 'times', text: tr.ebike + ' · ' + tr.walk })]) : null,
      h('div', { class: 'navs' }, [
        h('a', { class: 'nav nav-amap', href: amapUrl(f), target: '_blank', rel: 'noopener noreferrer',
          'data-feature-id': f.id, 'data-app': 'amap' }, [icon('nav'), t('navAmap')]),
        h('a', { class: 'nav nav-baidu', href: baiduUrl(f), target: '_blank', rel: 'noopener noreferrer',
          'data-feature-id': f.id, 'data-app': 'baidu' }, [icon('nav'), t('navBaidu')])
      ]),
      h('dl', { class: 'facts' }, facts),
      svcs.length ? h('h3', { text: t('services') }) : null,
      svcs.length ? h('ul', { class: 'svc-grid' }, svcs.map(function (s) {
        return h('li', { 'data-service': s }, [icon(boot.services[s].icon), label(boot.services[s], 'zh', 'en')]);
      })) : null,
      h('div', { class: 'card-foot' }, [
        h('button', { type: 'button', onclick: function () { showOnMap(f.id); } }, [t('showOnMap')])
      ]),
      l.sample || p.source === 'sample' ? h('p', { class: 'sample', text: t('sample') }) : null
    ];
    els.card.replaceChildren.apply(els.card, children.filter(Boolean));
    els.card.setAttribute('data-feature-id', f.id);
    els.card.setAttribute('data-layer', f.layer);
  }
  function openCard(id, opts) {
    if (!S.features.get(id)) return;
    if (els.card.hidden) cardReturnFocus = document.activeElement;
    var previous = S.selected;
    S.selected = id;
    renderCard(id);
    els.card.hidden = false;
    $$('.item', els.list).forEach(function (li) { li.classList.toggle('sel', li.getAttribute('data-feature-id') === id); });
    if (mapApi) mapApi.select(id, opts && opts.pan, previous !== id ? previous : null);
    var title = $('#card-title');
    if (title) title.focus({ preventScroll: true });
  }
  function closeCard() {
    if (els.card.hidden) return;
    els.card.hidden = true;
    els.card.removeAttribute('data-feature-id');
    var was = S.selected;
    S.selected = null;
    $$('.item.sel', els.list).forEach(function (li) { li.classList.remove('sel'); });
    if (mapApi) mapApi.select(null, false, was);
    if (cardReturnFocus && document.contains(cardReturnFocus)) cardReturnFocus.focus({ preventScroll: true });
    cardReturnFocus = null;
  }
  function showOnMap(id) {
    closeCard();
    S.selected = id;
    $('#mapwrap').scrollIntoView({ block: 'start', behavior: 'smooth' });
    if (mapApi) mapApi.select(id, true, null, 17);
  }

  // --- hours refresh and coming back to the page -----------------------------------------------------------------
  var hoursTimer = null;
  function scheduleHours() {
    clearTimeout(hoursTimer);
    var next = Infinity, now = Date.now();
    Object.keys(S.hours.states).forEach(function (k) {
      var st = S.hours.states[k];
      if (st[1]) next = Math.min(next, Date.parse(st[1]));
    });
    var wait = Math.min(Math.max(next - now + 2000, 30e3), 30 * 60e3);
    hoursTimer = setTimeout(refreshHours, wait);
  }
  function refreshHours() {
    return fetch(boot.api.hours).then(function (r) { return r.ok ? r.json() : null; }).then(function (js) {
      if (js && js.states) {
        S.hours = js;
        if (S.origin) refreshList(); else renderList();
        if (mapApi) mapApi.restyle();
      }
    }).catch(function () { /* offline: keep the last state */ }).then(scheduleHours);
  }
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState !== 'visible' || !S.lastRefresh || Date.now() - S.lastRefresh < 120e3) return;
    refreshHours();
    if (S.origin && S.origin.source === 'gps') locate();
  });

  // --- the map (Leaflet, loaded after the list logic is running) -------------------------------------------------
  var mapApi = null;
  function loadMap() {
    var pending = boot.vendor.css.length + boot.vendor.js.length, failed = false;
    function done(ok) {
      if (!ok) failed = true;
      if (--pending > 0) return;
      if (failed || !window.L || !L.markerClusterGroup) {
        setStatusExtra(t('mapError'));
        return;
      }
      try { mapApi = createMap(); } catch (e) { setStatusExtra(t('mapError')); throw e; }
    }
    boot.vendor.css.forEach(function (href) {
      var link = h('link', { rel: 'stylesheet', href: href });
      link.onload = function () { done(true); };
      link.onerror = function () { done(false); };
      document.head.insertBefore(link, document.head.querySelector('link[rel=stylesheet]'));
    });
    boot.vendor.js.forEach(function (src) {
      var s = document.createElement('script');
      s.src = src;
      s.async = false; // download in parallel, run in order (Leaflet before the cluster plugin)
      s.onload = function () { done(true); };
      s.onerror = function () { done(false); };
      document.head.appendChild(s);
    });
  }
  function setStatusExtra(text) { els.maphint.hidden = false; els.maphint.textContent = text; }

  function createMap() {
    var Lf = window.L;
    var b = boot.bounds;
    var centre = toDisplay((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
    var map = Lf.map(els.map, { center: [centre[1], centre[0]], zoom: 10, minZoom: 8, maxZoom: 19, zoomControl: false,
      attributionControl: true, worldCopyJump: false });
    Lf.control.zoom({ position: 'topright', zoomInTitle: S.lang === 'en' ? 'Zoom in' : '放大',
      zoomOutTitle: S.lang === 'en' ? 'Zoom out' : '缩小' }).addTo(map);
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    var tiles = null, outline = null, outlineData = null, group = null, groupLayer = null;
    var inGroup = new Map();          // id -> marker in the cluster/plain group
    var resultMarkers = Lf.layerGroup().addTo(map);
    var resultById = new Map();
    var originMarker = null, accuracyCircle = null;
    var loaded = {};                  // layer -> [bbox, …] already fetched (WGS84)
    var pending = {};                 // layer -> [bbox, …] being fetched
    var viewTimer = null;

    var FeatureIcon = Lf.DivIcon.extend({
      createIcon: function (old) {
        var div = Lf.DivIcon.prototype.createIcon.call(this, old);
        div.setAttribute('data-feature-id', this.options.featureId);
        div.setAttribute('aria-label', this.options.label);
        div.style.setProperty('--c', this.options.color);
        return div;
      }
    });
    function markerIcon(f, rank) {
      var l = layerById[f.layer] || currentLayer(), open = isOpen(f), st = statusParts(f);
      var name = (rank ? rank + '. ' : '') + (f.p.name || f.id) + (st ? ' · ' + st[1] : '');
      return new FeatureIcon({
        featureId: f.id, label: name, color: safeColor(l.color),
        iconSize: rank ? [34, 40] : [30, 30], iconAnchor: rank ? [17, 39] : [15, 15],
        className: 'mk' + (open === false ? ' mk-closed' : '') + (rank ? ' mk-rank' : '') + (S.selected === f.id ? ' mk-sel' : ''),
        html: rank ? '<span class="pin"><b>' + rank + '</b></span>' : '<svg class="ic" aria-hidden="true"><use href="#i-' +
          (SAFE_NAME.test(l.icon) ? l.icon : 'station') + '"/></svg>'
      });
    }
    function latlngOf(f) { var d = toDisplay(f.lon, f.lat); return [d[1], d[0]]; }
    var markers = new Map();          // id -> plain marker (created once, reused)
    function markerFor(f) {
      var m = markers.get(f.id);
      if (!m) {
        m = Lf.marker(latlngOf(f), { icon: markerIcon(f), keyboard: true, title: f.p.name, riseOnHover: true });
        m.featureId = f.id;
        m.on('click', function () { openCard(f.id, { pan: false }); });
        markers.set(f.id, m);
      }
      return m;
    }
    function passes(f) {
      var need = layerServices(), have = f.p.services || [];
      for (var i = 0; i < need.length; i++) if (have.indexOf(need[i]) < 0) return false;
      return !(S.openNow && isOpen(f) === false);
    }
    function makeGroup() {
      if (groupLayer) map.removeLayer(groupLayer);
      inGroup = new Map();
      var l = currentLayer();
      if (l.cluster) {
        group = Lf.markerClusterGroup({ chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 55,
          disableClusteringAtZoom: 17, spiderfyOnMaxZoom: true, removeOutsideVisibleBounds: true,
          iconCreateFunction: function (c) {
            var n = c.getChildCount();
            var size = n < 10 ? 36 : n < 100 ? 42 : 50;
            return Lf.divIcon({ html: '<span>' + n + '</span>', className: 'cl', iconSize: [size, size] });
          } });
        groupLayer = group;
      } else {
        group = null;
        groupLayer = Lf.featureGroup();
      }
      groupLayer.addTo(map);
      els.map.style.setProperty('--lc', safeColor(l.color));
    }
    function syncMarkers() {
      var want = new Set();
      S.features.forEach(function (f) {
        if (f.layer === S.layer && !resultById.has(f.id) && passes(f)) want.add(f.id);
      });
      var remove = [], add = [];
      inGroup.forEach(function (m, id) { if (!want.has(id)) { remove.push(m); inGroup.delete(id); } });
      want.forEach(function (id) {
        if (!inGroup.has(id)) { var m = markerFor(S.features.get(id)); add.push(m); inGroup.set(id, m); }
      });
      if (group) {
        if (remove.length) group.removeLayers(remove);
        if (add.length) group.addLayers(add);
      } else {
        remove.forEach(function (m) { groupLayer.removeLayer(m); });
        add.forEach(function (m) { groupLayer.addLayer(m); });
      }
    }
    function renderResults() {
      resultMarkers.clearLayers();
      resultById = new Map();
      S.results.forEach(function (f, i) {
        var m = Lf.marker(latlngOf(f), { icon: markerIcon(f, i + 1), keyboard: true, title: f.p.name,
          zIndexOffset: 1000 - i, riseOnHover: true });
        m.featureId = f.id;
        m.on('click', function () { openCard(f.id, { pan: false }); });
        resultMarkers.addLayer(m);
        resultById.set(f.id, m);
      });
      syncMarkers();
    }
    function renderOrigin() {
      if (originMarker) { map.removeLayer(originMarker); originMarker = null; }
      if (accuracyCircle) { map.removeLayer(accuracyCircle); accuracyCircle = null; }
      var o = S.origin;
      if (!o) return;
      var d = toDisplay(o.lon, o.lat), ll = [d[1], d[0]];
      if (o.source === 'gps' && o.accuracy && o.accuracy < 3000) {
        accuracyCircle = Lf.circle(ll, { radius: o.accuracy, color: '#1565c0', weight: 1, fillOpacity: 0.1,
          interactive: false }).addTo(map);
      }
      var pin = o.source !== 'gps';
      originMarker = Lf.marker(ll, { interactive: false, keyboard: false, zIndexOffset: 2000,
        icon: Lf.divIcon({ className: pin ? 'me me-pick' : 'me', iconSize: pin ? [40, 40] : [22, 22],
          iconAnchor: pin ? [20, 38] : [11, 11],
          html: pin ? '<svg class="ic" aria-hidden="true"><use href="#i-pin"/></svg>' : '' }) }).addTo(map);
      originMarker.getElement().setAttribute('aria-label', t(pin ? 'picked' : 'you'));
      originMarker.getElement().setAttribute('data-origin', o.source);
    }
    function fitResults() {
      var o = S.origin;
      if (!o) return;
      var d = toDisplay(o.lon, o.lat), pts = [[d[1], d[0]]];
      S.results.slice(0, 5).forEach(function (f) { pts.push(latlngOf(f)); });
      if (pts.length === 1) { map.setView(pts[0], 15); return; }
      map.fitBounds(Lf.latLngBounds(pts), { padding: [28, 28], maxZoom: 16, animate: false });
    }

    // base maps: data stay in WGS84; markers, the origin and the view move with the base map's datum
    function setBase(id) {
      var before = map.getCenter(), centreW = fromDisplay(before.lng, before.lat);
      S.base = baseById[id] ? id : 'none';
      els.base.value = S.base;
      if (tiles) { map.removeLayer(tiles); tiles = null; }
      var cfg = baseById[S.base];
      if (cfg.url) {
        tiles = Lf.tileLayer(cfg.url, { subdomains: cfg.subdomains || 'abc', attribution: cfg.attribution || '',
          maxNativeZoom: cfg.max_native_zoom || 18, maxZoom: 19, detectRetina: false }).addTo(map);
        tiles.bringToBack();
      }
      els.map.classList.toggle('no-tiles', !cfg.url);
      var c = toDisplay(centreW[0], centreW[1]);
      map.setView([c[1], c[0]], map.getZoom(), { animate: false });
      markers.forEach(function (m, fid) { var f = S.features.get(fid); if (f) m.setLatLng(latlngOf(f)); });
      resultById.forEach(function (m, fid) { m.setLatLng(latlngOf(S.features.get(fid))); });
      if (group) group.refreshClusters();
      renderOrigin();
      showOutline();
    }
    function showOutline() {
      var want = !baseById[S.base].url;
      if (!want) { if (outline) { map.removeLayer(outline); } return; }
      if (outline) { outline.addTo(map); return; }
      if (outlineData === 'loading') return;
      outlineData = 'loading';
      fetch(boot.api.districts).then(function (r) { return r.ok ? r.json() : null; }).then(function (gj) {
        if (!gj) { outlineData = null; return; }
        outline = Lf.geoJSON(gj, { interactive: false, style: { color: '#6b7078', weight: 1.5, fill: true,
          fillColor: '#ffffff', fillOpacity: 0.55 } });
        outline.eachLayer(function (lyr) {
          var d = districtById[lyr.feature.id];
          if (d) lyr.bindTooltip(S.lang === 'en' ? d.name_en : d.name, { permanent: true, direction: 'center',
            className: 'dlabel', interactive: false });
        });
        outline.getLayers().forEach(function (lyr) { lyr.options.interactive = false; });
        if (!baseById[S.base].url) { outline.addTo(map); outline.bringToBack(); }
      }).catch(function () { outlineData = null; });
    }
    function refreshLabels() {
      if (outline) outline.eachLayer(function (lyr) {
        var d = districtById[lyr.feature.id];
        if (d && lyr.getTooltip()) lyr.setTooltipContent(S.lang === 'en' ? d.name_en : d.name);
      });
      restyle();
      renderOrigin();
    }
    function restyle() {
      markers.forEach(function (m, fid) { var f = S.features.get(fid); if (f) m.setIcon(markerIcon(f)); });
      renderResults();
      if (group) group.refreshClusters();
    }

    // features for the area in view (the whole layer when zoomed out), fetched once per area
    function viewBbox() {
      if (map.getZoom() <= 11) {
        var b = boot.bounds;
        return [b[0] - 0.2, b[1] - 0.2, b[2] + 0.2, b[3] + 0.2].map(function (v) { return Math.round(v * 1e4) / 1e4; });
      }
      var bounds = map.getBounds().pad(0.5), sw = bounds.getSouthWest(), ne = bounds.getNorthEast();
      var a = fromDisplay(sw.lng, sw.lat), c = fromDisplay(ne.lng, ne.lat);
      return [a[0], a[1], c[0], c[1]].map(function (v) { return Math.round(v * 1e4) / 1e4; });
    }
    function covered(list, bb) {
      return (list || []).some(function (x) { return x[0] <= bb[0] && x[1] <= bb[1] && x[2] >= bb[2] && x[3] >= bb[3]; });
    }
    function loadView() {
      if (!S.viewAllowed) return;
      var layer = S.layer, bb = viewBbox();
      if (covered(loaded[layer], bb)) { syncMarkers(); return; }
      if (covered(pending[layer], bb)) return;
      var mine = (pending[layer] = pending[layer] || []);
      mine.push(bb);
      var base = boot.api.items.replace('{layer}', encodeURIComponent(layer));
      var limit = 5000;
      function page(offset) {
        var url = base + '?bbox=' + bb.join(',') + '&limit=' + limit + '&offset=' + offset;
        return fetch(url, { headers: { Accept: 'application/geo+json' } })
          .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
          .then(function (fc) {
            fc.features.forEach(function (g) { storeFeature(g, layer); });
            if (layer === S.layer) syncMarkers();
            if (offset + fc.features.length < fc.numberMatched && fc.features.length) return page(offset + limit);
          });
      }
      page(0).then(function () {
        (loaded[layer] = loaded[layer] || []).push(bb);
        map.getContainer().setAttribute('data-loaded', layer + ':' + (loaded[layer].length));
      }, function () { /* offline or failed: tried again on the next move */ }).then(function () {
        mine.splice(mine.indexOf(bb), 1);
      });
    }

    map.on('moveend', function () { clearTimeout(viewTimer); viewTimer = setTimeout(loadView, 150); });
    map.on('click', function (e) {
      if (S.picking || (!S.origin && S.geoError)) {
        var w = fromDisplay(e.latlng.lng, e.latlng.lat);
        pickAt(w[0], w[1]);
      }
    });

    makeGroup();
    setBase(S.base);
    if (S.origin) {
      renderOrigin();
      if (S.results.length) { renderResults(); fitResults(); }
      else { var d0 = toDisplay(S.origin.lon, S.origin.lat); map.setView([d0[1], d0[0]], 15, { animate: false }); }
    }
    map.getContainer().setAttribute('data-ready', 'true');

    return {
      map: map,
      setBase: setBase,
      syncMarkers: syncMarkers,
      restyle: restyle,
      refreshLabels: refreshLabels,
      loadView: loadView,
      layerChanged: function () {
        resultMarkers.clearLayers();
        resultById = new Map();
        makeGroup();
        syncMarkers();
        loadView();
      },
      originChanged: function () {
        renderOrigin();
        var d = toDisplay(S.origin.lon, S.origin.lat);
        if (S.origin.source === 'gps' || S.origin.source === 'link') map.setView([d[1], d[0]], 15, { animate: false });
      },
      resultsChanged: function () {
        renderResults();
        if (S.results.length && S.k === 10) fitResults();
        loadView();
      },
      select: function (id, pan, previous, zoom) {
        [previous, id].forEach(function (fid) {
          if (!fid) return;
          var f = S.features.get(fid);
          if (!f) return;
          var rm = resultById.get(fid);
          if (rm) rm.setIcon(markerIcon(f, S.results.indexOf(f) + 1));
          var m = markers.get(fid);
          if (m) m.setIcon(markerIcon(f));
        });
        if (!id || !pan) return;
        var f = S.features.get(id), ll = latlngOf(f);
        var target = zoom || Math.max(map.getZoom(), 15);
        var m = resultById.get(id);
        if (!m && group && inGroup.has(id)) { group.zoomToShowLayer(inGroup.get(id), function () {}); return; }
        map.setView(ll, target, { animate: false });
        if (!els.card.hidden && window.matchMedia('(min-width: 60rem)').matches) {
          map.panBy([-(els.card.offsetWidth / 2 + 8), 0], { animate: false }); // keep it beside the card
        }
      },
      markerLatLng: function (id) {
        var m = resultById.get(id) || markers.get(id);
        if (!m) return null;
        var ll = m.getLatLng();
        return [ll.lng, ll.lat];
      },
      originLatLng: function () { if (!originMarker) return null; var ll = originMarker.getLatLng(); return [ll.lng, ll.lat]; },
      tileLayer: function () { return tiles; }
    };
  }

  // --- wiring --------------------------------------------------------------------------------------------------
  els.layers.addEventListener('click', function (e) {
    var b = e.target.closest('button[data-layer]');
    if (b) setLayer(b.getAttribute('data-layer'));
  });
  els.layers.addEventListener('keydown', function (e) { // radio group: arrow keys move the choice
    if (['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].indexOf(e.key) < 0) return;
    var ids = layers.map(function (l) { return l.id; }), i = ids.indexOf(S.layer);
    var next = ids[(i + (e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? ids.length - 1 : 1)) % ids.length];
    setLayer(next);
    var btn = els.layers.querySelector('[data-layer="' + next + '"]');
    if (btn) btn.focus();
    e.preventDefault();
  });
  els.lang.addEventListener('click', function () { S.lang = S.lang === 'en' ? 'zh' : 'en'; savePrefs(); applyLanguage(); });
  els.base.addEventListener('change', function () {
    if (mapApi) mapApi.setBase(els.base.value); else S.base = els.base.value;
    savePrefs();
  });
  els.locate.addEventListener('click', function () { locate(); });
  els.pick.addEventListener('click', function () {
    setPicking(!S.picking);
    if (S.picking) $('#mapwrap').scrollIntoView({ block: 'start', behavior: 'smooth' });
  });
  els.district.addEventListener('change', function () { if (els.district.value) chooseDistrict(els.district.value); });
  els.more.addEventListener('click', function () { S.k = Math.min(50, S.k + 10); refreshList(); });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') { if (!els.card.hidden) closeCard(); else if (S.picking) setPicking(false); }
  });

  // --- start ---------------------------------------------------------------------------------------------------
  els.base.value = S.base;
  renderLayerTabs();
  applyLanguage();
  scheduleHours();

  var linkLon = parseFloat(query.get('lon')), linkLat = parseFloat(query.get('lat'));
  if (isFinite(linkLon) && isFinite(linkLat) && Math.abs(linkLat) <= 90 && Math.abs(linkLon) <= 180) {
    setOrigin({ lon: linkLon, lat: linkLat, source: 'link' });
  } else if (navigator.permissions && navigator.permissions.query) {
    navigator.permissions.query({ name: 'geolocation' }).then(function (p) {
      if (p.state === 'denied') geoFailed('errDenied'); else locate();
    }, function () { locate(); });
  } else {
    locate();
  }
  loadMap();

  // for tests and integrations: the same functions the page uses
  window.unionMap = {
    state: S, wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84, detour: detour,
    humanHours: humanHours, setOrigin: function (lon, lat) { return setOrigin({ lon: lon, lat: lat, source: 'pick' }); },
    map: function () { return mapApi; }
  };
})();
