/* Workers' map (served at /): nearest union rest stations and services for riders and outdoor workers.
 *
 * Data flow: the page's bootstrap JSON (layers, services, districts, base maps, opening-hours state) ->
 * location (browser geolocation, else a tap on the map in pick mode, or a district) -> GET /api/nearest -> the list
 * (works before Leaflet has loaded). The map (Leaflet from /static/vendor) shows the listed points as numbered pins
 * and every other point of the layer in view, grouped per screen cell ("clusters") from /app/points.json: every
 * point layer's public data in columns, fetched once when the page is idle and kept by the service worker.
 *
 * With no signal (or a request that does not answer within 8 s) the list is computed here from /app/points.json,
 * with GeographicLib's geodesic on the WGS84 ellipsoid (the server's algorithm, so the order is the same), honouring
 * the layer and the filters, and marked as offline with the data's age. Each tab keeps its own filters and its last
 * list. Data stay in WGS84; markers are shifted to GCJ-02 only when the Amap base map is shown.
 * No framework, no build step; nothing is fetched from outside the app except the configured base-map tiles.
 */
(function () {
  'use strict';

  var boot = JSON.parse(document.getElementById('boot').textContent);
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var FETCH_TIMEOUT_MS = 8000;      // every request: no answer within 8 s counts as failed (a retry is offered)
  var BODY_TIMEOUT_MS = 60000;      // a large answer that has started may take longer to arrive (slow 3G)
  var GEO_WATCHDOG_MS = 15000;      // a location prompt nobody answers: fall back to tapping the map

  // --- text ----------------------------------------------------------------------------------------------------
  var TEXT = {
    zh: {
      title: '工会驿站地图', skip: '跳到附近地点列表', baseLabel: '底图', layersLabel: '地点类型', mapLabel: '地图',
      filtersLabel: '筛选', barLabel: '位置', listTitle: '附近地点', starting: '正在准备定位…',
      base_tianditu: '天地图', base_amap: '高德地图', base_osm: '标准地图', base_none: '无底图',
      locate: '定位我', locating: '定位中…', pick: '地图选点', district: '选区', districtLabel: '选择所在区',
      openNow: '营业中', clear: '清除筛选', clearShort: '清除', more: '显示更多', cancel: '取消',
      expand: '展开列表', collapse: '显示地图', filtersOn: '筛选：',
      sample: '示例数据：这些地点并非真实存在，请勿前往。',
      listFor: '离{where}最近的{layer}', whereGps: '我的位置', wherePick: '所选位置', whereLink: '指定位置',
      accuracy: '定位精度约 {d}。', loading: '正在查找附近地点…', updating: '正在更新…',
      loadError: '加载失败，请检查网络后重试。', retry: '重试', empty: '附近没有符合条件的地点。',
      offline: '离线', offlineText: '数据更新于{age}', offlineNoData: '上次的结果', localNote: '列表按本机保存的数据计算。',
      slow: '网络不佳', ageNow: '刚刚', ageMin: ' {n} 分钟前', ageHr: ' {n} 小时前', ageDay: ' {n} 天前',
      errDenied: '无法定位：定位权限被拒绝。', errUnavailable: '暂时无法获取您的位置。', errTimeout: '定位超时。',
      errUnsupported: '此浏览器不支持定位。', errInsecure: '定位需要安全连接（HTTPS）。',
      fallback: '请在地图上点一下您所在的位置，或在下方“选区”中选择所在区。', tryAgain: '再试一次定位',
      pickHint: '点一下地图，选择您的位置', districtHint: '已按{name}中心查找；点“地图选点”可选更准确的位置。',
      far: '您似乎不在上海，最近的地点也很远。', mapError: '地图加载失败，列表仍可使用。',
      tilesFailed: '底图加载失败，地点和列表仍可使用。', dismiss: '关闭提示',
      ebike: '电动车约 {t}', walk: '步行约 {t}', car: '驾车约 {t}', min: '{n} 分钟', hr: '{h} 小时', hrMin: '{h} 小时 {m} 分钟',
      m: '{n} 米', km: '{n} 公里', open: '营业中', closed: '已关闭', closes: '{t} 关门', opens: '{t} 开门',
      allDay: '24 小时开放', tomorrow: '明天', hoursUnknown: '开放时间未知（请先电话确认）',
      address: '地址', hours: '开放时间', host: '所属单位', district2: '所在区', services: '服务设施',
      hiring: '即时快招', area: '面积', truckSpaces: '货车车位', mealPrice: '参考餐价', smart: '智能站点（扫码开门）',
      m2: '{n} 平方米', yuan: '约 {n} 元', spaces: '{n} 个', yes: '是', marketType: '市场类型',
      market_comprehensive: '综合性零工市场', market_industry: '行业零工市场', industry: '行业', sep: '',
      navAmap: '高德导航', navBaidu: '百度导航', showOnMap: '在地图上查看', close: '关闭',
      servicesOf: '服务：', moreServices: '等 {n} 项', dirs: ['北', '东北', '东', '东南', '南', '西南', '西', '西北'],
      days: { Mo: '周一', Tu: '周二', We: '周三', Th: '周四', Fr: '周五', Sa: '周六', Su: '周日', PH: '法定节假日' },
      daily: '每天', through: '至', listSep: '、', closedOn: '{days}休息', h247: '24 小时开放', langBtn: 'English',
      you: '我的位置', picked: '所选位置', about: '约', cluster: '{n} 个地点，点击放大', zoomIn: '放大', zoomOut: '缩小'
    },
    en: {
      title: 'Union rest stops', skip: 'Skip to the list of nearby places', baseLabel: 'Base map',
      layersLabel: 'Type of place', mapLabel: 'Map', filtersLabel: 'Filters', barLabel: 'Location',
      listTitle: 'Nearby places', starting: 'Getting ready to find you…',
      base_tianditu: 'Tianditu', base_amap: 'Amap', base_osm: 'OSM map', base_none: 'No map',
      locate: 'Locate me', locating: 'Locating…', pick: 'Pick on map', district: 'District',
      districtLabel: 'Choose your district', openNow: 'Open now', clear: 'Clear filters', clearShort: 'Clear',
      more: 'Show more', cancel: 'Cancel', expand: 'Full list', collapse: 'Map', filtersOn: 'Filters: ',
      sample: 'Sample data: these places are not real; do not go there.',
      listFor: '{layer} near {where}', whereGps: 'you', wherePick: 'the chosen point',
      whereLink: 'the given point', accuracy: 'Location accurate to about {d}.',
      loading: 'Finding places near you…', updating: 'Updating…',
      loadError: 'Could not load. Check your connection and try again.', retry: 'Retry',
      empty: 'No matching places nearby.', offline: 'Offline', offlineText: 'data updated {age}',
      offlineNoData: 'last results', localNote: 'The list is worked out from the data saved on this phone.',
      slow: 'Poor connection', ageNow: 'just now',
      ageMin: '{n} min ago', ageHr: '{n} hours ago', ageDay: '{n} days ago',
      errDenied: 'Cannot locate you: location permission was denied.',
      errUnavailable: 'Your location is not available right now.', errTimeout: 'Locating took too long.',
      errUnsupported: 'This browser cannot locate you.', errInsecure: 'Locating needs a secure (HTTPS) connection.',
      fallback: 'Tap your position on the map, or choose your district with “District” below.',
      tryAgain: 'Try locating again', pickHint: 'Tap the map to choose your position',
      districtHint: 'Searched from the centre of {name}; use “Pick on map” for a more exact position.',
      far: 'You seem to be outside Shanghai; even the nearest places are far away.',
      mapError: 'The map could not be loaded; the list still works.',
      tilesFailed: 'The base map could not be loaded; the places and the list still work.', dismiss: 'Dismiss',
      ebike: '≈ {t} by e-bike', walk: '≈ {t} on foot', car: '≈ {t} by car', min: '{n} min', hr: '{h} h',
      hrMin: '{h} h {m} min',
      m: '{n} m', km: '{n} km', open: 'Open', closed: 'Closed', closes: 'closes {t}', opens: 'opens {t}',
      allDay: 'Open 24 hours', tomorrow: 'tomorrow', hoursUnknown: 'Opening hours unknown (call before going)',
      address: 'Address', hours: 'Hours', host: 'Host', district2: 'District', services: 'Services',
      hiring: 'Walk-in hiring', area: 'Floor area', truckSpaces: 'Truck spaces', mealPrice: 'Typical meal',
      smart: 'Smart station (QR unlock)', m2: '{n} m²', yuan: '≈ ¥{n}', spaces: '{n}', yes: 'yes',
      marketType: 'Market type', market_comprehensive: 'Comprehensive gig market',
      market_industry: 'Industry gig market', industry: 'Industry', sep: ' ',
      navAmap: 'Amap navigation', navBaidu: 'Baidu navigation', showOnMap: 'Show on map', close: 'Close',
      servicesOf: 'Services: ', moreServices: '{n} in all', dirs: ['N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW'],
      days: { Mo: 'Mon', Tu: 'Tue', We: 'Wed', Th: 'Thu', Fr: 'Fri', Sa: 'Sat', Su: 'Sun', PH: 'public holidays' },
      daily: 'Daily', through: '–', listSep: ', ', closedOn: 'Closed on {days}', h247: 'Open 24/7', langBtn: '中文',
      you: 'Your location', picked: 'Chosen point', about: '≈', cluster: '{n} places, tap to zoom in',
      zoomIn: 'Zoom in', zoomOut: 'Zoom out'
    }
  };
  /** Short English names of the services for chips and the list (the vocabulary's are for the card). */
  var SHORT_EN = { charging: 'Charging', microwave: 'Microwave', water: 'Water', toilet: 'Toilet', rest: 'Rest',
    heating: 'Warmth', cooling: 'Cooling', parking: 'Parking', truck_parking: 'Truck parking', meals: 'Meals',
    shower: 'Shower', laundry: 'Laundry', first_aid: 'First aid', wifi: 'Wi-Fi', reading: 'Reading',
    legal_aid: 'Legal aid', job_info: 'Jobs', wish_corner: 'Wishes', fitness: 'Fitness', fridge: 'Fridge',
    massage_chair: 'Massage', nursing_room: 'Nursing room', snacks: 'Snacks' };
  /** What riders look for most: first among the filters and in each list entry. */
  var PRIORITY = ['charging', 'microwave', 'water', 'toilet', 'rest', 'heating', 'cooling', 'meals', 'truck_parking',
    'parking', 'shower', 'job_info', 'legal_aid', 'fitness'];
  var FIRST_FILTERS = 4;            // charging, hot meals, water, toilet — then "open now", then the rest
  var LIST_SERVICES = 4;            // services shown with their names in a list entry (the card shows all)

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
    filters: readFilters(saved.filters), // layer -> {services: [...], openNow}: each tab keeps its own
    base: pick([saved.base], boot.basemaps.map(function (b) { return b.id; })) || boot.basemaps[0].id,
    origin: null,        // {lon, lat, source: 'gps'|'pick'|'district'|'link', accuracy, district}
    results: [],         // features of the list shown
    lists: {},           // layer -> the last list answered for it: {key, qs, results, source, at}
    source: null,        // 'server' | 'local' (computed here from /app/points.json) | 'kept' (a former answer)
    offline: null,       // null, or {reason: 'offline'|'slow', age: ms|null} while the list is not the server's
    k: 10,
    features: new Map(), // id -> {id, layer, lon, lat, p, partial}, WGS84
    selected: null,
    geoError: null,
    picking: false,
    expanded: false,
    hours: boot.hours,
    listState: 'idle',
    lastRefresh: 0
  };
  function pick(candidates, allowed) {
    for (var i = 0; i < candidates.length; i++) {
      if (candidates[i] != null && allowed.indexOf(candidates[i]) >= 0) return candidates[i];
    }
    return null;
  }
  function readFilters(raw) {
    var out = {};
    layers.forEach(function (l) {
      var f = raw && typeof raw === 'object' ? raw[l.id] : null;
      out[l.id] = {
        services: (f && Array.isArray(f.services) ? f.services : []).filter(function (s) {
          return boot.services[s] && l.services.indexOf(s) >= 0;
        }),
        openNow: !!(f && f.openNow === true && l.has_hours)
      };
    });
    return out;
  }
  function savePrefs() {
    try {
      localStorage.setItem(PREFS_KEY, JSON.stringify({ lang: S.lang, layer: S.layer, filters: S.filters, base: S.base }));
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
  function serviceName(id, short) {
    var s = boot.services[id];
    if (!s) return id;
    return S.lang === 'en' ? (short && SHORT_EN[id]) || s.en : s.zh;
  }

  // --- fetching: every request answers within 8 s or fails ---------------------------------------------------------
  function fetchJSON(url, opts) {
    opts = opts || {};
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(expire, opts.timeout || FETCH_TIMEOUT_MS);
      function expire() { if (ctrl) ctrl.abort(); reject(new Error('timeout')); }
      fetch(url, { headers: opts.headers || { Accept: 'application/json' }, signal: ctrl ? ctrl.signal : undefined })
        .then(function (r) {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          clearTimeout(timer);
          timer = setTimeout(expire, opts.bodyTimeout || FETCH_TIMEOUT_MS);
          return r.json().then(function (body) { return { body: body, response: r }; });
        })
        .then(function (out) { clearTimeout(timer); resolve(out); }, function (err) { clearTimeout(timer); reject(err); });
    });
  }
  var idle = window.requestIdleCallback ? function (fn, timeout) { return window.requestIdleCallback(fn, { timeout: timeout || 2000 }); }
    : function (fn) { return setTimeout(fn, 1); };

  // --- coordinates: GCJ-02 from datum.js (window.GeoDatum, the formulas of geoserver/core/crs.py) ------------
  var PI = Math.PI, RAD = PI / 180;
  var wgs84ToGcj02 = window.GeoDatum.wgs84ToGcj02, gcj02ToWgs84 = window.GeoDatum.gcj02ToWgs84;
  function displayCrs() { return baseById[S.base].crs; }
  function toDisplay(lon, lat) { return displayCrs() === 'gcj02' ? wgs84ToGcj02(lon, lat) : [lon, lat]; }
  function fromDisplay(lon, lat) { return displayCrs() === 'gcj02' ? gcj02ToWgs84(lon, lat) : [lon, lat]; }

  // --- distances and times -------------------------------------------------------------------------------------
  // README "Catchments": 4.5 / 15 / 25 km/h on foot, by e-bike, by car, with the detour factor of the planning
  var WALK_M_PER_MIN = 4500 / 60, EBIKE_M_PER_MIN = 15000 / 60, CAR_M_PER_MIN = 25000 / 60;
  var BY_CAR = { driver_homes: true }; // truck and ride-hailing drivers come by car
  function detour(d) { return 1.32 + 0.28 * Math.exp(-d / 1000); } // f(d) = 1.32 + 0.28·e^(−d/1 km)
  function haversine(lon1, lat1, lon2, lat2) {
    var dlat = (lat2 - lat1) * RAD, dlon = (lon2 - lon1) * RAD;
    var a = Math.pow(Math.sin(dlat / 2), 2) + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.pow(Math.sin(dlon / 2), 2);
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(a)));
  }
  function bearing(lon1, lat1, lon2, lat2) {
    var y = Math.sin((lon2 - lon1) * RAD) * Math.cos(lat2 * RAD);
    var x = Math.cos(lat1 * RAD) * Math.sin(lat2 * RAD) - Math.sin(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.cos((lon2 - lon1) * RAD);
    return (Math.atan2(y, x) / RAD + 360) % 360;
  }
  /** Geodesic distance (m) and azimuth on the WGS84 ellipsoid: GeographicLib, as pyproj.Geod on the server. */
  function geodesicInverse(lon1, lat1, lon2, lat2) {
    var g = window.geodesic && window.geodesic.Geodesic && window.geodesic.Geodesic.WGS84;
    if (!g) return { d: haversine(lon1, lat1, lon2, lat2), b: bearing(lon1, lat1, lon2, lat2) };
    var r = g.Inverse(lat1, lon1, lat2, lon2, window.geodesic.Geodesic.DISTANCE | window.geodesic.Geodesic.AZIMUTH);
    return { d: r.s12, b: (r.azi1 + 360) % 360 };
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
  function travel(distance, layerId) { // "≈ 6 min by e-bike · ≈ 20 min on foot"; by car for driver homes
    var d = distance * detour(distance);
    if (BY_CAR[layerId]) return t('car', { t: fmtMinutes(d / CAR_M_PER_MIN) });
    return t('ebike', { t: fmtMinutes(d / EBIKE_M_PER_MIN) }) + ' · ' + t('walk', { t: fmtMinutes(d / WALK_M_PER_MIN) });
  }
  function direction(deg) { return t('dirs')[Math.round(deg / 45) % 8]; }
  function relation(f) { // distance and bearing from the origin: the answer's values, else computed here
    if (!S.origin) return null;
    if (f.distance_m != null && f.originKey === originKey()) return { d: f.distance_m, b: f.bearing_deg };
    return geodesicInverse(S.origin.lon, S.origin.lat, f.lon, f.lat);
  }
  function originKey() { return S.origin ? S.origin.lon.toFixed(6) + ',' + S.origin.lat.toFixed(6) : ''; }
  function fmtAge(ms) {
    if (ms == null || !isFinite(ms)) return '';
    var min = Math.max(0, Math.round(ms / 60000));
    if (min < 1) return t('ageNow');
    if (min < 60) return t('ageMin', { n: min });
    if (min < 48 * 60) return t('ageHr', { n: Math.round(min / 60) });
    return t('ageDay', { n: Math.round(min / 1440) });
  }

  // --- opening hours -------------------------------------------------------------------------------------------
  // The server's state for each expression (bootstrap, /app/hours) holds until its next change; past that (an old
  // page from the cache, offline) the expression is evaluated here: days and times, public holidays unknown.
  function serverState(expr) {
    var st = expr ? S.hours.states[expr] : null;
    if (!st) return null;
    if (st[1] && Date.parse(st[1]) <= Date.now()) return null; // stale
    return st;
  }
  function openByExpr(expr) {
    if (!expr) return null;
    var st = serverState(expr);
    return st ? st[0] : evalHours(expr, Date.now());
  }
  var DAY_NAMES = ['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'];
  function evalHours(expr, now) { // true/false, or null when the expression is beyond this small reader
    var text = expr.trim();
    if (text === '24/7') return true;
    var local = new Date(now + 8 * 3600e3), day = DAY_NAMES[(local.getUTCDay() + 6) % 7];
    var minute = local.getUTCHours() * 60 + local.getUTCMinutes();
    var open = false, ok = true;
    text.split(/\s*;\s*/).filter(Boolean).forEach(function (rule) {
      var m = rule.match(/^((?:PH|Mo|Tu|We|Th|Fr|Sa|Su)(?:\s*[-,]\s*(?:PH|Mo|Tu|We|Th|Fr|Sa|Su))*)?\s*(.*)$/);
      if (!m) { ok = false; return; }
      if (m[1]) {
        var hit = m[1].split(/\s*,\s*/).some(function (part) {
          var r = part.split(/\s*-\s*/);
          if (r[0] === 'PH') return false; // holidays are not known here
          var a = DAY_NAMES.indexOf(r[0]), b = DAY_NAMES.indexOf(r[1] || r[0]), d = DAY_NAMES.indexOf(day);
          return a <= b ? d >= a && d <= b : d >= a || d <= b;
        });
        if (!hit) return;
      }
      var times = m[2].trim();
      if (/^(off|closed)$/.test(times)) { open = false; return; }
      var spans = times.split(/\s*,\s*/), any = false;
      spans.forEach(function (span) {
        var s = span.match(/^(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)$/);
        if (!s) { ok = false; return; }
        var from = +s[1] * 60 + +s[2], to = +s[3] * 60 + +s[4];
        if (to <= from ? minute >= from || minute < to : minute >= from && minute < to) any = true;
      });
      open = any;
    });
    return ok ? open : null;
  }
  function isOpen(f) {
    if (f.openNow !== undefined && f.originKey === originKey() && f.answeredAt && Date.now() - f.answeredAt < 600e3) {
      return f.openNow;
    }
    return openByExpr(f.p.opening_hours);
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
    var l = layerById[f.layer] || currentLayer();
    if (!l || !l.has_hours) return null;
    if (!f.p.opening_hours) return ['unknown', t('hoursUnknown'), ''];
    var open = isOpen(f);
    if (open == null) return null;
    var st = serverState(f.p.opening_hours), change = '';
    if (st && st[1]) change = t(open ? 'closes' : 'opens', { t: fmtChange(st[1]) });
    else if (open && f.p.opening_hours.trim() === '24/7') change = t('allDay');
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
  function filtersOf(layerId) {
    return S.filters[layerId] || (S.filters[layerId] = { services: [], openNow: false });
  }
  function layerServices(layerId) {
    var l = layerById[layerId || S.layer];
    return filtersOf(l.id).services.filter(function (s) { return l.services.indexOf(s) >= 0; });
  }
  function openNowOn(layerId) { var l = layerById[layerId || S.layer]; return !!(l.has_hours && filtersOf(l.id).openNow); }
  function byPriority(ids) {
    return ids.slice().sort(function (a, b) {
      var pa = PRIORITY.indexOf(a), pb = PRIORITY.indexOf(b);
      return (pa < 0 ? 99 : pa) - (pb < 0 ? 99 : pb);
    });
  }

  // --- static texts, layer tabs, filters -----------------------------------------------------------------------
  var els = {
    layers: $('#layers'), filters: $('#filters'), status: $('#status'), list: $('#list'), more: $('#more'),
    results: $('#results'), title: $('#results-title'), card: $('#card'), locate: $('#locate'), pick: $('#pick'),
    district: $('#district'), base: $('#base'), lang: $('#lang'), sample: $('#sample'), maphint: $('#maphint'),
    maphintText: $('#maphint-text'), pickCancel: $('#pick-cancel'), map: $('#map'), notice: $('#notice'),
    active: $('#active'), offline: $('#offline'), expand: $('#expand'), sheet: $('#sheet')
  };

  function applyLanguage() {
    document.documentElement.lang = S.lang === 'en' ? 'en' : 'zh-CN';
    document.title = t('title') + (S.lang === 'en' ? ' · Shanghai' : ' · 上海');
    $$('[data-i18n]').forEach(function (node) { node.textContent = t(node.getAttribute('data-i18n')); });
    $$('[data-i18n-aria]').forEach(function (node) { node.setAttribute('aria-label', t(node.getAttribute('data-i18n-aria'))); });
    els.lang.textContent = t('langBtn');            // the button names the language it switches to, in that language
    els.lang.setAttribute('lang', S.lang === 'en' ? 'zh-CN' : 'en');
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
    updateExpand();
    renderFilters();
    renderList();
    if (S.selected) renderCard(S.selected);
    updateMapHint();
    if (noticeKey) showNotice(noticeKey);
    if (mapApi) mapApi.refreshLabels();
  }

  function renderLayerTabs() {
    $$('button', els.layers).forEach(function (b) {
      var on = b.getAttribute('data-layer') === S.layer;
      b.setAttribute('aria-checked', String(on));
      b.tabIndex = on ? 0 : -1; // roving tabindex: the group is one tab stop, arrow keys move the choice
    });
    var l = currentLayer();
    document.documentElement.style.setProperty('--lc', safeColor(l.color));
  }

  /** The chips of the current tab: charging, hot meals, water, toilet, open now, then the layer's other services. */
  function filterOrder(l) {
    var ordered = byPriority(l.services);
    var first = ordered.filter(function (s) { return PRIORITY.indexOf(s) >= 0 && PRIORITY.indexOf(s) < FIRST_FILTERS; });
    var rest = ordered.filter(function (s) { return first.indexOf(s) < 0; });
    return first.concat(l.has_hours ? ['open_now'] : [], rest);
  }
  function renderFilters() {
    var l = currentLayer(), active = layerServices(), f = filtersOf(l.id);
    var chips = filterOrder(l).map(function (id) {
      if (id === 'open_now') {
        return h('button', { type: 'button', class: 'chip open-chip', 'aria-pressed': String(f.openNow),
          'data-filter': 'open_now', onclick: function () { f.openNow = !f.openNow; filtersChanged(); } },
          [icon('clock'), t('openNow')]);
      }
      return h('button', { type: 'button', class: 'chip', 'aria-pressed': String(active.indexOf(id) >= 0),
        'data-service': id, title: S.lang === 'en' ? boot.services[id].en : null,
        onclick: function () { toggleService(id); } }, [icon(boot.services[id].icon), serviceName(id, true)]);
    });
    var scroll = els.filters.scrollLeft;
    els.filters.replaceChildren.apply(els.filters, chips);
    els.filters.scrollLeft = scroll;
    renderActive();
  }
  /** The filters in force, in the list heading, with a one-tap clear. */
  function renderActive() {
    var names = layerServices().map(function (s) { return serviceName(s, true); });
    if (openNowOn()) names.push(t('openNow'));
    els.active.hidden = !names.length;
    if (!names.length) { els.active.replaceChildren(); return; }
    els.active.replaceChildren(
      h('span', { text: t('filtersOn') + names.join(t('listSep')) }),
      h('button', { type: 'button', class: 'clear', 'data-filter': 'clear', 'aria-label': t('clear'),
        onclick: function () {
          clearFilters();
          var first = els.filters.querySelector('button'); // the pressed button is gone: keep the focus nearby
          if (first) first.focus({ preventScroll: true });
        } }, [icon('close'), t('clearShort')]));
  }
  function updateFilterState() { // in place, so a keyboard user's focus stays on the chip just pressed
    var active = layerServices(), f = filtersOf(S.layer);
    $$('button', els.filters).forEach(function (b) {
      var id = b.getAttribute('data-service');
      if (id) b.setAttribute('aria-pressed', String(active.indexOf(id) >= 0));
      else if (b.getAttribute('data-filter') === 'open_now') b.setAttribute('aria-pressed', String(f.openNow));
    });
    renderActive();
  }
  function toggleService(id) {
    var list = filtersOf(S.layer).services, i = list.indexOf(id);
    if (i >= 0) list.splice(i, 1); else list.push(id);
    filtersChanged();
  }
  function clearFilters() {
    var f = filtersOf(S.layer);
    f.services = [];
    f.openNow = false;
    filtersChanged();
  }
  function filtersChanged() {
    savePrefs();
    updateFilterState();
    S.k = 10;
    refreshList();
    if (mapApi) mapApi.redraw();
  }
  function setLayer(id) {
    if (id === S.layer || !layerById[id]) return;
    S.layer = id;
    S.k = 10;
    savePrefs();
    closeCard();
    renderLayerTabs();
    renderFilters();
    var kept = S.lists[id];            // this tab's last list stays on screen until the new answer replaces it
    S.results = kept ? kept.results : [];
    S.source = kept ? 'kept' : null;
    renderList();
    refreshList();
    if (mapApi) mapApi.layerChanged();
  }
  function setExpanded(on) {
    S.expanded = on;
    document.body.classList.toggle('expanded', on);
    updateExpand();
    if (mapApi) mapApi.resized();
  }
  function updateExpand() {
    els.expand.setAttribute('aria-expanded', String(S.expanded));
    $('#expand-text').textContent = t(S.expanded ? 'collapse' : 'expand');
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
  function retryButton() {
    return h('button', { type: 'button', 'data-action': 'retry', onclick: function () { retry(); } }, [t('retry')]);
  }
  function retry() {
    refreshList();
    if (!P.data && !P.loading) loadPoints();
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
        // the districts one tap away (the same as the 选区 menu below)
        nodes.push(h('div', { class: 'district-grid', role: 'group', 'aria-label': t('districtLabel') },
          boot.districts.map(function (d) {
            return h('button', { type: 'button', 'data-district': d.id, onclick: function () { chooseDistrict(d.id); } },
              [S.lang === 'en' ? (d.name_en || d.name) : d.name]);
          })));
      } else {
        nodes.push(h('p', {}, [t(S.locating ? 'locating' : 'starting')]));
      }
      setStatus(nodes);
      return;
    }
    if (S.listState === 'loading') nodes.push(h('p', {}, [t(S.results.length ? 'updating' : 'loading')]));
    if (S.listState === 'error') {
      nodes.push(h('p', { class: 'err' }, [t('loadError')]));
      nodes.push(retryButton());
    }
    if (S.listState === 'empty') {
      nodes.push(h('p', { class: 'warn' }, [t('empty')]));
      if (layerServices().length || openNowOn()) {
        nodes.push(h('button', { type: 'button', 'data-filter': 'clear-empty', onclick: clearFilters }, [t('clear')]));
      }
    }
    if (S.listState === 'ready') {
      if (o.source === 'gps' && o.accuracy > 100) nodes.push(h('p', {}, [t('accuracy', { d: fmtDistance(o.accuracy) })]));
      if (o.source === 'district') nodes.push(h('p', {}, [t('districtHint', { name: whereText() })]));
      if (S.results.length && relation(S.results[0]).d > 60000) nodes.push(h('p', { class: 'warn' }, [t('far')]));
    }
    setStatus(nodes);
  }
  function renderOffline() {
    var off = S.offline;
    els.offline.hidden = !off;
    els.results.toggleAttribute('data-offline', !!off);
    document.body.classList.toggle('offline-list', !!off); // the map gives the banner its room: still three entries
    if (!off) { els.offline.replaceChildren(); return; }
    var text = off.age != null ? t('offlineText', { age: fmtAge(off.age) }) : t('offlineNoData');
    els.offline.replaceChildren(
      h('p', {}, [h('strong', { text: t(off.reason === 'offline' ? 'offline' : 'slow') }), ' · ' + text,
        h('span', { class: 'sr-only', text: ' ' + t('localNote') })]),
      retryButton());
  }

  function renderList() {
    var l = currentLayer();
    els.title.textContent = S.origin
      ? t('listFor', { where: whereText(), layer: label(l, 'short_zh', 'short_en') })
      : t('listTitle');
    renderStatus();
    renderOffline();
    var active = layerServices();
    var items = S.results.map(function (f, i) {
      var rel = relation(f), st = statusParts(f);
      var svcs = (f.p.services || []).filter(function (s) { return boot.services[s]; });
      var hits = svcs.filter(function (s) { return active.indexOf(s) >= 0; });
      var shown = hits.concat(byPriority(svcs.filter(function (s) { return hits.indexOf(s) < 0; })))
        .slice(0, Math.max(LIST_SERVICES - (S.lang === 'en' ? 1 : 0), hits.length)); // English names are longer
      var allNames = byPriority(svcs).map(function (s) { return serviceName(s); }).join(t('listSep'));
      var pills = shown.map(function (s) {
        return h('span', { class: 'svc' + (hits.indexOf(s) >= 0 ? ' hit' : ''), 'data-service': s, 'aria-hidden': 'true' },
          [icon(boot.services[s].icon), serviceName(s, true)]);
      });
      if (svcs.length > shown.length) {
        pills.push(h('span', { class: 'svc more', 'aria-hidden': 'true', text: '+' + (svcs.length - shown.length) }));
      }
      pills.push(h('span', { class: 'sr-only', text: t('servicesOf') + allNames }));
      return h('li', { class: 'item' + (st && st[0] === 'closed' ? ' closed' : '') + (S.selected === f.id ? ' sel' : ''),
        'data-feature-id': f.id }, [
        h('button', { type: 'button', 'aria-haspopup': 'dialog', onclick: function () { openCard(f.id, { pan: true }); } }, [
          h('span', { class: 'rank', style: '--c:' + safeColor(l.color), 'aria-hidden': 'true' }, [h('b', { text: String(i + 1) })]),
          h('span', { class: 'item-body' }, [
            h('span', { class: 'item-name', text: f.p.name }),
            h('span', { class: 'item-meta' }, [
              h('span', { class: 'dist', text: fmtDistance(rel.d) }),
              h('span', { class: 'dir', text: direction(rel.b) }),
              st ? h('span', { class: 'badge ' + st[0], text: st[1] }) : null,
              st && st[2] ? h('span', { class: 'change', text: st[2] }) : null
            ]),
            h('span', { class: 'times', 'data-mode': BY_CAR[f.layer] ? 'car' : 'ebike walk', text: travel(rel.d, f.layer) }),
            svcs.length ? h('span', { class: 'svcs' }, pills) : null
          ])
        ])
      ]);
    });
    els.list.replaceChildren.apply(els.list, items);
    els.list.setAttribute('data-source', S.source || '');
    // the sample-data notice under the list once there is something to say it about (shown earlier, it would be
    // pushed down by the list: a layout shift)
    els.sample.hidden = !(l.sample && (S.results.length || S.listState === 'empty' || S.listState === 'error' ||
      (!S.origin && S.geoError)));
    els.more.hidden = !(S.listState === 'ready' && S.results.length >= S.k && S.k < 50);
  }

  function listQuery() {
    var params = new URLSearchParams({ lon: S.origin.lon.toFixed(6), lat: S.origin.lat.toFixed(6), layer: S.layer, k: String(S.k) });
    var svcs = layerServices();
    if (svcs.length) params.set('services', svcs.join(','));
    if (openNowOn()) params.set('open_now', 'true');
    return params.toString();
  }
  var nearestSeq = 0; // a newer request supersedes older ones (their answers are ignored)
  function refreshList() {
    if (!S.origin) { renderList(); return Promise.resolve(); }
    var seq = ++nearestSeq, layer = S.layer, qs = listQuery(), key = qs;
    var kept = S.lists[layer];
    if (kept && kept.key === key && S.source !== 'server') { S.results = kept.results; S.source = 'kept'; }
    setListState('loading');
    renderStatus();
    return fetchJSON(boot.api.nearest + '?' + qs, { headers: { Accept: 'application/geo+json' } })
      .then(function (out) {
        if (seq !== nearestSeq) return;
        var fc = out.body, k = originKey(), now = Date.now();
        if (out.response.headers.get('X-Served-From') === 'cache') { // the service worker's copy: we are offline
          var at = Date.parse(out.response.headers.get('Date') || '');
          return fallback(seq, layer, key, qs, { body: fc, at: isFinite(at) ? at : null });
        }
        var results = fc.features.map(function (g) {
          var f = storeFeature(g, layer);
          f.distance_m = g.properties.distance_m;
          f.bearing_deg = g.properties.bearing_deg;
          f.openNow = g.properties.open_now;
          f.originKey = k;
          f.answeredAt = now;
          return f;
        });
        S.lists[layer] = { key: key, qs: qs, results: results, source: 'server', at: now };
        S.lastRefresh = now;
        if (fc.query && fc.query.at) els.list.setAttribute('data-at', fc.query.at);
        showList(results, 'server', qs, null);
        idle(function () { if (!P.data && !P.loading) loadPoints(); }, 3000); // for the map, and for next time offline
      }, function () {
        if (seq !== nearestSeq) return;
        return fallback(seq, layer, key, qs, null);
      });
  }
  /** No answer from the server: the list computed here from the saved points; else an answer the service worker
   * kept for this very question; else this tab's last list; else an error. Always with a retry. */
  function fallback(seq, layer, key, qs, cached) {
    return nearestHere(layer, qs).then(function (local) {
      if (seq !== nearestSeq) return;
      var reason = navigator.onLine === false || cached ? 'offline' : 'slow';
      if (local) {
        S.lists[layer] = { key: key, qs: qs, results: local, source: 'local', at: Date.now() };
        showList(local, 'local', qs, { reason: reason, age: P.age() });
      } else if (cached) {
        var k = originKey();
        var results = cached.body.features.map(function (g) {
          var f = storeFeature(g, layer);
          f.distance_m = g.properties.distance_m;
          f.bearing_deg = g.properties.bearing_deg;
          f.originKey = k;
          f.openNow = undefined; // open or not: from the hours, evaluated now
          return f;
        });
        S.lists[layer] = { key: key, qs: qs, results: results, source: 'kept', at: Date.now() };
        showList(results, 'kept', qs, { reason: reason, age: cached.at ? Date.now() - cached.at : null });
      } else if (S.lists[layer] && S.lists[layer].results.length) { // no saved data: the last answer for this tab
        var last = S.lists[layer];
        showList(last.results, 'kept', last.qs, { reason: reason, age: null });
      } else {
        S.offline = null;
        setListState('error');
        renderList();
      }
    });
  }
  function showList(results, source, qs, offline) {
    S.results = results;
    S.source = source;
    S.offline = offline;
    els.list.setAttribute('data-query', qs);
    setListState(results.length ? 'ready' : 'empty');
    renderList();
    if (!listReadyMarked && results.length) {
      listReadyMarked = true;
      if (window.performance && performance.mark) performance.mark('list-ready');
    }
    if (mapApi) mapApi.resultsChanged();
  }
  var listReadyMarked = false;

  function storeFeature(g, layerId) {
    var c = g.geometry.coordinates;
    var props = {};
    Object.keys(g.properties).forEach(function (k) {
      if (k !== 'distance_m' && k !== 'bearing_deg' && k !== 'open_now') props[k] = g.properties[k];
    });
    var f = S.features.get(String(g.id));
    if (!f) {
      f = { id: String(g.id), layer: layerId, lon: c[0], lat: c[1], p: props };
      S.features.set(f.id, f);
    } else {
      f.lon = c[0]; f.lat = c[1]; f.p = props;
    }
    f.partial = false;
    return f;
  }

  // --- every layer's points (/app/points.json), for the map and for the nearest list without a connection -----------
  var P = {
    data: null,        // {layers: {id: {feats: [f…], mask: [int…]}}, services: [ids in bit order], generated}
    loading: null,     // the promise while fetching
    fetchedAt: null,   // when the copy in use came from the server (its Date header; the service worker keeps it)
    failedAt: 0,
    age: function () {
      if (!P.data) return null;
      var at = P.fetchedAt || Date.parse(P.data.generated);
      return isFinite(at) ? Math.max(0, Date.now() - at) : null;
    }
  };
  function loadPoints() {
    if (P.loading) return P.loading;
    var geo = loadGeodesic();
    P.loading = fetchJSON(boot.api.points, { bodyTimeout: BODY_TIMEOUT_MS }).then(function (out) {
      var date = Date.parse(out.response.headers.get('Date') || '');
      return buildPoints(out.body).then(function (data) {
        P.data = data;
        P.fetchedAt = isFinite(date) ? date : null;
        els.map.setAttribute('data-points', 'ready');
        if (mapApi) mapApi.redraw();
        return geo;
      });
    }).then(function () { P.loading = null; return P.data; }, function () {
      P.loading = null;
      P.failedAt = Date.now();
      return P.data;
    });
    return P.loading;
  }
  /** Columns -> one small feature object per point, 1,000 rows per idle slice (keeps every task short). */
  function buildPoints(raw) {
    var jobs = [], CHUNK = 1000;
    var data = { layers: {}, services: raw.services || [], generated: raw.generated };
    Object.keys(raw.layers || {}).forEach(function (lid) {
      var src = raw.layers[lid], col = {};
      src.fields.forEach(function (name, i) { col[name] = i; });
      data.layers[lid] = { feats: [], mask: [] };
      for (var start = 0; start < src.rows.length; start += CHUNK) jobs.push([lid, src.rows, col, start]);
    });
    return new Promise(function (resolve) {
      function next() {
        var job = jobs.shift();
        if (!job) { resolve(data); return; }
        var lid = job[0], rows = job[1], col = job[2], into = data.layers[lid];
        for (var r = job[3]; r < Math.min(rows.length, job[3] + CHUNK); r++) {
          var row = rows[r], id = String(row[col.id]), mask = row[col.services] | 0, svcs = [];
          for (var b = 0; b < data.services.length; b++) if (mask & (1 << b)) svcs.push(data.services[b]);
          var f = S.features.get(id);
          if (!f) {
            f = { id: id, layer: lid, lon: row[col.lon], lat: row[col.lat], partial: true,
              p: { id: id, name: row[col.name], address: row[col.address], district: row[col.district], services: svcs,
                opening_hours: row[col.opening_hours] } };
            S.features.set(id, f);
          }
          into.feats.push(f);
          into.mask.push(mask);
        }
        idle(next, 500);
      }
      next();
    });
  }
  var geodesicLoading = null;
  function loadGeodesic() { // GeographicLib (the service worker keeps it): loaded when first needed
    if (window.geodesic) return Promise.resolve(true);
    if (geodesicLoading) return geodesicLoading;
    geodesicLoading = new Promise(function (resolve) {
      var s = document.createElement('script');
      s.src = boot.vendor.geodesic;
      s.onload = function () { resolve(true); };
      s.onerror = function () { geodesicLoading = null; resolve(false); };
      document.head.appendChild(s);
    });
    return geodesicLoading;
  }
  function serviceMask(ids) {
    var mask = 0;
    ids.forEach(function (s) { var b = P.data.services.indexOf(s); if (b >= 0) mask |= (1 << b); else mask = -1; });
    return mask;
  }
  /** The k nearest points of a layer to the origin, as /api/nearest orders them: geodesic distance on WGS84, ties by
   * position in the layer. A local flat-earth distance (within 1 % around Shanghai) picks the candidates; every one
   * that could be among the k nearest is measured on the ellipsoid. */
  function nearestLocal(layerId, lon, lat, k, services, openNow) {
    var L = P.data && P.data.layers[layerId];
    if (!L) return null;
    var need = serviceMask(services);
    if (need === -1) return [];
    var a = 6378137, e2 = 0.00669437999014, s = Math.sin(lat * RAD);
    var w = 1 - e2 * s * s, M = a * (1 - e2) / (w * Math.sqrt(w)) * RAD, N = a / Math.sqrt(w) * RAD;
    var cand = [];
    for (var i = 0; i < L.feats.length; i++) {
      if ((L.mask[i] & need) !== need) continue;
      var f = L.feats[i];
      if (openNow && openByExpr(f.p.opening_hours) !== true) continue;
      var dx = (f.lon - lon) * N * Math.cos((lat + f.lat) / 2 * RAD), dy = (f.lat - lat) * M;
      cand.push({ i: i, approx: Math.sqrt(dx * dx + dy * dy) });
    }
    cand.sort(function (x, y) { return x.approx - y.approx; });
    var exact = [];
    for (var j = 0; j < cand.length; j++) {
      if (exact.length >= k) {
        exact.sort(byDistance);
        if (cand[j].approx / 1.01 - 1 > exact[k - 1].d) break; // nothing farther on can enter the k nearest
      }
      var g = geodesicInverse(lon, lat, L.feats[cand[j].i].lon, L.feats[cand[j].i].lat);
      exact.push({ i: cand[j].i, d: g.d, b: g.b });
    }
    exact.sort(byDistance);
    return exact.slice(0, k).map(function (x) { return { f: L.feats[x.i], d: x.d, b: x.b }; });
  }
  function byDistance(x, y) { return x.d - y.d || x.i - y.i; }
  /** The list computed here (from the saved points), or null when they are not available. */
  function nearestHere(layerId, qs) {
    var o = S.origin;
    return Promise.all([P.data ? P.data : loadPoints(), loadGeodesic()]).then(function () {
      if (!P.data || !o || S.origin !== o) return null;
      var q = new URLSearchParams(qs), key = originKey();
      var found = nearestLocal(layerId, o.lon, o.lat, +q.get('k') || 10,
        q.get('services') ? q.get('services').split(',') : [], q.get('open_now') === 'true');
      return found && found.map(function (x) {
        var f = x.f;
        f.distance_m = Math.round(x.d * 10) / 10; // as the server rounds them
        f.bearing_deg = Math.round(x.b * 10) / 10;
        f.originKey = key;
        f.openNow = undefined;                    // open or not: from the hours, evaluated now
        return f;
      });
    });
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
  var geoWatchdog = null;
  function locate() {
    if (!('geolocation' in navigator)) { geoFailed('errUnsupported'); return; }
    if (window.isSecureContext === false) { geoFailed('errInsecure'); return; }
    S.locating = true;
    var started = Date.now(), answered = false;
    els.locate.setAttribute('aria-busy', 'true');
    els.locate.querySelector('span').textContent = t('locating');
    if (!S.origin) renderStatus();
    clearTimeout(geoWatchdog);
    geoWatchdog = setTimeout(function () { // a prompt nobody answers: offer the map and the districts meanwhile
      if (!answered) { locateDone(); geoFailed('errTimeout'); }
    }, GEO_WATCHDOG_MS);
    navigator.geolocation.getCurrentPosition(function (pos) {
      answered = true;
      locateDone();
      if (S.origin && S.origin.source !== 'gps' && S.originSetAt > started) return; // the user chose meanwhile
      setOrigin({ lon: pos.coords.longitude, lat: pos.coords.latitude, source: 'gps', accuracy: pos.coords.accuracy });
    }, function (err) {
      answered = true;
      locateDone();
      geoFailed(GEO_ERRORS[err && err.code] || 'errUnavailable');
    }, { enableHighAccuracy: true, timeout: 12000, maximumAge: 30000 });
  }
  function locateDone() {
    clearTimeout(geoWatchdog);
    S.locating = false;
    els.locate.removeAttribute('aria-busy');
    els.locate.querySelector('span').textContent = t('locate');
  }
  function geoFailed(key) {
    S.geoError = key;
    if (S.origin) return; // keep the list of the last known position
    setPicking(true);     // the first tap on the map sets the position (markers and clusters let it through)
    renderList();
    els.district.parentNode.classList.add('attention');
    setTimeout(function () { els.district.parentNode.classList.remove('attention'); }, 3200);
    loadPoints();
  }
  function setPicking(on) {
    if (S.picking === on) { updateMapHint(); return; }
    S.picking = on;
    els.pick.setAttribute('aria-pressed', String(on));
    document.body.classList.toggle('picking', on);
    // a bigger map when the rider asked for it (not when locating failed: nothing moves under their eyes)
    document.body.classList.toggle('picking-big', on && !!S.origin);
    if (on && S.expanded) setExpanded(false);
    updateMapHint();
    if (mapApi) mapApi.resized();
  }
  function updateMapHint() {
    els.maphint.hidden = !S.picking;
    els.maphintText.textContent = t('pickHint');
    els.pickCancel.hidden = !(S.picking && S.origin);
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
    var mode = BY_CAR[f.layer] ? 'car' : 'ride';
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
    var svcs = byPriority((p.services || []).filter(function (s) { return boot.services[s]; }));
    var children = [
      h('div', { class: 'card-head' }, [
        h('h2', { id: 'card-title', tabindex: '-1', text: p.name }),
        h('button', { type: 'button', class: 'close', 'aria-label': t('close'), onclick: function () { closeCard(); } }, [icon('close')])
      ]),
      st ? h('p', { class: 'card-status' }, [h('span', { class: 'badge ' + st[0], text: st[1] }),
        st[2] ? h('span', { class: 'change', text: st[2] }) : null]) : null,
      rel ? h('p', { class: 'card-dist' }, [h('span', { class: 'dist', text: fmtDistance(rel.d) }),
        h('span', { class: 'dir', text: direction(rel.b) }), h('span', { class: 'times', text: travel(rel.d, f.layer) })]) : null,
      h('div', { class: 'navs' }, [
        h('a', { class: 'nav nav-amap', href: amapUrl(f), target: '_blank', rel: 'noopener noreferrer',
          'data-feature-id': f.id, 'data-app': 'amap' }, [icon('nav'), t('navAmap')]),
        h('a', { class: 'nav nav-baidu', href: baiduUrl(f), target: '_blank', rel: 'noopener noreferrer',
          'data-feature-id': f.id, 'data-app': 'baidu' }, [icon('nav'), t('navBaidu')])
      ]),
      h('dl', { class: 'facts' }, facts),
      svcs.length ? h('h3', { text: t('services') }) : null,
      svcs.length ? h('ul', { class: 'svc-grid' }, svcs.map(function (s) {
        return h('li', { 'data-service': s }, [icon(boot.services[s].icon), serviceName(s)]);
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
    var f = S.features.get(id);
    if (!f) return;
    if (els.card.hidden) cardReturnFocus = document.activeElement;
    var previous = S.selected;
    S.selected = id;
    renderCard(id);
    els.card.hidden = false;
    $$('.item', els.list).forEach(function (li) { li.classList.toggle('sel', li.getAttribute('data-feature-id') === id); });
    if (mapApi) mapApi.select(id, opts && opts.pan, previous !== id ? previous : null);
    var title = $('#card-title');
    if (title) title.focus({ preventScroll: true });
    if (f.partial) { // known from the saved points only: the details (host, area…) come from the API when it answers
      var url = boot.api.items.replace('{layer}', encodeURIComponent(f.layer)) + '/' + encodeURIComponent(f.id);
      fetchJSON(url, { headers: { Accept: 'application/geo+json' } }).then(function (out) {
        storeFeature(out.body, f.layer);
        if (S.selected === id && !els.card.hidden) renderCard(id);
      }, function () { /* offline: the card shows what is saved */ });
    }
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
    if (S.expanded) setExpanded(false);
    if (mapApi) mapApi.select(id, true, null, 17);
  }

  // --- notices over the map (base-map tiles that do not load) ------------------------------------------------------
  var noticeKey = null, noticeDismissed = {};
  function showNotice(key) {
    if (noticeDismissed[key]) return;
    noticeKey = key;
    els.notice.hidden = false;
    els.notice.replaceChildren(h('p', { text: t(key) }),
      key === 'mapError' ? h('button', { type: 'button', class: 'text', 'data-action': 'retry-map', onclick: function () {
        hideNotice(); loadMap();
      } }, [t('retry')]) : null,
      h('button', { type: 'button', 'aria-label': t('dismiss'), onclick: function () {
        noticeDismissed[key] = true; hideNotice();
      } }, [icon('close')]));
  }
  function hideNotice() { noticeKey = null; els.notice.hidden = true; }

  // --- hours refresh, coming back to the page, the connection coming back -----------------------------------------
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
  function refreshHours(again) {
    return fetchJSON(boot.api.hours).then(function (out) {
      var js = out.body;
      if (!js || !js.states) return;
      S.hours = js;
      if (S.origin) refreshList(); else renderList();
      if (mapApi) mapApi.restyle();
      // the service worker answers from its copy first and refreshes it meanwhile: an old copy is asked again
      if (!again && Date.now() - Date.parse(js.at) > 120e3 && navigator.onLine !== false) setTimeout(function () { refreshHours(true); }, 3000);
    }).catch(function () { /* offline: the hours are evaluated here */ }).then(function () { if (!again) scheduleHours(); });
  }
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState !== 'visible' || !S.lastRefresh || Date.now() - S.lastRefresh < 120e3) return;
    refreshHours();
    if (S.origin && S.origin.source === 'gps') locate();
  });
  window.addEventListener('online', function () { // the signal is back: the server's answers replace the local ones
    if (S.origin) refreshList();
    refreshHours();
    if (!P.data && !P.loading) loadPoints();
  });
  window.addEventListener('offline', function () { if (S.origin) refreshList(); }); // the list from the saved data

  // --- the map (Leaflet, loaded after the list logic is running) -------------------------------------------------
  var mapApi = null;
  function loadMap() {
    if (mapApi) return;
    $$('link[data-vendor], script[data-vendor]').forEach(function (n) { n.remove(); }); // a retry starts afresh
    var pending = boot.vendor.css.length + boot.vendor.js.length, failed = false, finished = false;
    var watchdog = setTimeout(function () { finish(false); }, BODY_TIMEOUT_MS);
    function finish(ok) {
      if (finished) return;
      finished = true;
      clearTimeout(watchdog);
      if (!ok || !window.L) { showNotice('mapError'); return; }
      idle(function () {
        try { mapApi = createMap(); } catch (e) { showNotice('mapError'); throw e; }
      }, 1000);
    }
    function done(ok) {
      if (!ok) failed = true;
      if (--pending <= 0) finish(!failed);
    }
    boot.vendor.css.forEach(function (href) {
      var link = h('link', { rel: 'stylesheet', href: href, 'data-vendor': '' });
      link.onload = function () { done(true); };
      link.onerror = function () { done(false); };
      document.head.insertBefore(link, document.head.querySelector('link[rel=stylesheet]'));
    });
    boot.vendor.js.forEach(function (src) {
      var s = document.createElement('script');
      s.src = src;
      s.setAttribute('data-vendor', '');
      s.async = false; // download in parallel, run in order
      s.onload = function () { done(true); };
      s.onerror = function () { done(false); };
      document.head.appendChild(s);
    });
  }

  function createMap() {
    var Lf = window.L;
    var b = boot.bounds;
    var centre = toDisplay((b[0] + b[2]) / 2, (b[1] + b[3]) / 2);
    var map = Lf.map(els.map, { center: [centre[1], centre[0]], zoom: 10, minZoom: 8, maxZoom: 19, zoomControl: false,
      attributionControl: true, worldCopyJump: false, fadeAnimation: false });
    Lf.control.zoom({ position: 'topright', zoomInTitle: t('zoomIn'), zoomOutTitle: t('zoomOut') }).addTo(map);
    map.attributionControl.setPrefix(false); // one line for the tiles' own credit on a small map
    var tiles = null, labels = null, outline = null, outlineData = null;
    var drawn = Lf.layerGroup().addTo(map);   // points in view and clusters
    var drawnByKey = new Map();               // 'f:<id>' | 'c:<cell>:<n>' -> marker
    var resultMarkers = Lf.layerGroup().addTo(map);
    var resultById = new Map();
    var originMarker = null, accuracyCircle = null;
    var tileErrors = 0, tileLoads = 0;
    var redrawQueued = false;

    var FeatureIcon = Lf.DivIcon.extend({
      createIcon: function (old) {
        var div = Lf.DivIcon.prototype.createIcon.call(this, old);
        if (this.options.featureId) div.setAttribute('data-feature-id', this.options.featureId);
        if (this.options.count) div.setAttribute('data-count', this.options.count);
        // pictures with names, not controls: the list is the keyboard's way to every listed point (and markers
        // that may touch each other would be touch targets too small for WCAG 2.2)
        div.setAttribute('role', 'img');
        div.setAttribute('aria-label', this.options.label);
        div.style.setProperty('--c', this.options.color);
        return div;
      }
    });
    function layerIconName(l) { return SAFE_NAME.test(l.icon) ? l.icon : 'station'; }
    function markerIcon(f, rank) {
      var l = layerById[f.layer] || currentLayer(), open = isOpen(f), st = statusParts(f);
      var name = (rank ? rank + '. ' : '') + (f.p.name || f.id) + (st ? ' · ' + st[1] : '');
      return new FeatureIcon({
        featureId: f.id, label: name, color: safeColor(l.color),
        iconSize: rank ? [34, 40] : [26, 26], iconAnchor: rank ? [17, 39] : [13, 13],
        className: 'mk' + (open === false ? ' mk-closed' : '') + (rank ? ' mk-rank' : '') + (S.selected === f.id ? ' mk-sel' : ''),
        html: rank ? '<span class="pin"><b>' + rank + '</b></span>' : '<svg class="ic" aria-hidden="true"><use href="#i-' +
          layerIconName(l) + '"/></svg>'
      });
    }
    function clusterIcon(n) {
      var l = currentLayer(), w = 36 + 9 * String(n).length;
      return new FeatureIcon({ count: n, label: t('cluster', { n: n }), color: safeColor(l.color), className: 'cl',
        iconSize: [w, 28], iconAnchor: [w / 2, 14],
        html: '<svg class="ic" aria-hidden="true"><use href="#i-' + layerIconName(l) + '"/></svg><i>×</i>' + n });
    }
    function latlngOf(f) { var d = toDisplay(f.lon, f.lat); return [d[1], d[0]]; }
    function passes(f) {
      var need = layerServices(), have = f.p.services || [];
      for (var i = 0; i < need.length; i++) if (have.indexOf(need[i]) < 0) return false;
      return !(openNowOn() && isOpen(f) !== true);
    }

    // points in view, grouped per 84-pixel cell at the current zoom (none from zoom 17): only what is in view is
    // looked at, a few hundred markers at most, redrawn after each move
    var CELL_PX = 84;
    function redraw() {
      if (redrawQueued) return;
      redrawQueued = true;
      (window.requestAnimationFrame || setTimeout)(function () { redrawQueued = false; draw(); });
    }
    function draw() {
      var data = P.data && P.data.layers[S.layer];
      var want = new Map(), inView = 0;
      if (data) {
        var z = map.getZoom(), scale = 256 * Math.pow(2, z), cellPx = z >= 17 ? 0 : CELL_PX;
        var bounds = map.getBounds().pad(0.15);
        var south = bounds.getSouth(), north = bounds.getNorth(), west = bounds.getWest(), east = bounds.getEast();
        var gcj = displayCrs() === 'gcj02', cells = new Map();
        for (var i = 0; i < data.feats.length; i++) {
          var f = data.feats[i];
          var lon = f.lon, lat = f.lat;
          if (gcj) { if (!f.gcj) f.gcj = wgs84ToGcj02(lon, lat); lon = f.gcj[0]; lat = f.gcj[1]; }
          if (lat < south || lat > north || lon < west || lon > east) continue;
          if (resultById.has(f.id) || !passes(f)) continue;
          inView++;
          if (!cellPx) { want.set('f:' + f.id, { f: f }); continue; }
          var x = (lon + 180) / 360 * scale, s = Math.sin(lat * RAD);
          var y = (0.5 - Math.log((1 + s) / (1 - s)) / (4 * PI)) * scale;
          var key = Math.floor(x / cellPx) + ':' + Math.floor(y / cellPx);
          var c = cells.get(key);
          if (!c) cells.set(key, c = { n: 0, lat: 0, lon: 0, s: lat, w: lon, nn: lat, e: lon, f: f });
          c.n++; c.lat += lat; c.lon += lon;
          if (lat < c.s) c.s = lat; if (lat > c.nn) c.nn = lat; if (lon < c.w) c.w = lon; if (lon > c.e) c.e = lon;
        }
        cells.forEach(function (c, key) {
          if (c.n === 1) want.set('f:' + c.f.id, { f: c.f });
          else want.set('c:' + key + ':' + c.n + ':' + S.layer, { c: c });
        });
      }
      drawnByKey.forEach(function (m, key) { if (!want.has(key)) { drawn.removeLayer(m); drawnByKey.delete(key); } });
      want.forEach(function (item, key) {
        if (drawnByKey.has(key)) return;
        var m;
        if (item.f) {
          var f = item.f;
          m = Lf.marker(latlngOf(f), { icon: markerIcon(f), keyboard: false, riseOnHover: true });
          m.featureId = f.id;
          m.on('click', function () { openCard(f.id, { pan: false }); });
        } else {
          var c = item.c;
          m = Lf.marker([c.lat / c.n, c.lon / c.n], { icon: clusterIcon(c.n), keyboard: false });
          m.on('click', function () {
            var zNow = map.getZoom();
            if (c.nn - c.s < 1e-6 && c.e - c.w < 1e-6) map.setView([c.s, c.w], Math.min(zNow + 3, 19));
            else map.fitBounds([[c.s, c.w], [c.nn, c.e]], { padding: [40, 40], maxZoom: Math.min(zNow + 4, 19) });
          });
        }
        drawnByKey.set(key, m);
        drawn.addLayer(m);
      });
      if (data) els.map.setAttribute('data-loaded', S.layer + ':1'); // the layer's points are on the map (benchmarks wait for it)
      els.map.setAttribute('data-drawn', String(drawnByKey.size));
      els.map.setAttribute('data-in-view', String(inView));
      els.map.setAttribute('data-clusters', String($$('.cl', els.map).length));
    }
    function clearDrawn() { drawn.clearLayers(); drawnByKey = new Map(); }

    function renderResults() {
      resultMarkers.clearLayers();
      resultById = new Map();
      S.results.forEach(function (f, i) {
        var m = Lf.marker(latlngOf(f), { icon: markerIcon(f, i + 1), keyboard: false,
          zIndexOffset: 1000 - i, riseOnHover: true });
        m.featureId = f.id;
        m.on('click', function () { openCard(f.id, { pan: false }); });
        resultMarkers.addLayer(m);
        resultById.set(f.id, m);
      });
      clearDrawn();
      draw();
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
      var el = originMarker.getElement();
      el.setAttribute('role', 'img'); // a picture of where you are, with its name (not a control)
      el.setAttribute('aria-label', t(pin ? 'picked' : 'you'));
      el.setAttribute('data-origin', o.source);
    }
    function fitResults() {
      var o = S.origin;
      if (!o) return;
      var d = toDisplay(o.lon, o.lat), pts = [[d[1], d[0]]];
      S.results.slice(0, 3).forEach(function (f) { pts.push(latlngOf(f)); });
      if (pts.length === 1) { map.setView(pts[0], 15, { animate: false }); return; }
      map.fitBounds(Lf.latLngBounds(pts), { paddingTopLeft: [24, 46], paddingBottomRight: [56, 36], maxZoom: 16,
        animate: false }); // room for the pins' heads, the zoom buttons and the credit line
    }

    // base maps: data stay in WGS84; markers, the origin and the view move with the base map's datum
    function setBase(id) {
      var before = map.getCenter(), centreW = fromDisplay(before.lng, before.lat);
      S.base = baseById[id] ? id : 'none';
      els.base.value = S.base;
      if (tiles) { map.removeLayer(tiles); tiles = null; }
      if (labels) { map.removeLayer(labels); labels = null; }
      var cfg = baseById[S.base];
      tileErrors = tileLoads = 0;
      if (cfg.url) {
        var opts = { subdomains: cfg.subdomains || 'abc', attribution: cfg.attribution || '',
          maxNativeZoom: cfg.max_native_zoom || 18, maxZoom: 19, detectRetina: false, zIndex: 1 };
        tiles = Lf.tileLayer(cfg.url, opts).addTo(map);
        tiles.on('tileload', function () { tileLoads++; });
        tiles.on('tileerror', function () { // said once; not while offline, where the list says so already
          tileErrors++;
          if (tileErrors >= 3 && tileErrors > tileLoads && navigator.onLine !== false) showNotice('tilesFailed');
        });
        if (cfg.labels) { // Tianditu: the Chinese place names are a transparent layer of their own, on top
          labels = Lf.tileLayer(cfg.labels, { subdomains: cfg.subdomains || 'abc', maxNativeZoom: cfg.max_native_zoom || 18,
            maxZoom: 19, detectRetina: false, zIndex: 2 }).addTo(map);
        }
      }
      els.map.classList.toggle('no-tiles', !cfg.url);
      var c = toDisplay(centreW[0], centreW[1]);
      map.setView([c[1], c[0]], map.getZoom(), { animate: false });
      resultById.forEach(function (m, fid) { m.setLatLng(latlngOf(S.features.get(fid))); });
      clearDrawn();
      draw();
      renderOrigin();
      showOutline();
    }
    function showOutline() {
      var want = !baseById[S.base].url;
      if (!want) { if (outline) { map.removeLayer(outline); } return; }
      if (outline) { outline.addTo(map); return; }
      if (outlineData === 'loading') return;
      outlineData = 'loading';
      fetchJSON(boot.api.districts, { bodyTimeout: BODY_TIMEOUT_MS }).then(function (out) {
        var gj = out.body;
        outline = Lf.geoJSON(gj, { interactive: false, style: { color: '#6b7078', weight: 1.5, fill: true,
          fillColor: '#ffffff', fillOpacity: 0.55 } });
        outline.eachLayer(function (lyr) {
          var d = districtById[lyr.feature.id];
          if (d) lyr.bindTooltip(S.lang === 'en' ? d.name_en : d.name, { permanent: true, direction: 'center',
            className: 'dlabel', interactive: false });
        });
        if (!baseById[S.base].url) { outline.addTo(map); outline.bringToBack(); }
      }).catch(function () { outlineData = null; });
    }
    function refreshLabels() {
      if (outline) outline.eachLayer(function (lyr) {
        var d = districtById[lyr.feature.id];
        if (d && lyr.getTooltip()) lyr.setTooltipContent(S.lang === 'en' ? d.name_en : d.name);
      });
      var zin = $('.leaflet-control-zoom-in', els.map), zout = $('.leaflet-control-zoom-out', els.map);
      [[zin, 'zoomIn'], [zout, 'zoomOut']].forEach(function (p) {
        if (p[0]) { p[0].title = t(p[1]); p[0].setAttribute('aria-label', t(p[1])); }
      });
      restyle();
      renderOrigin();
    }
    function restyle() { clearDrawn(); renderResults(); }

    map.on('moveend resize', redraw);
    map.on('click', function (e) {
      if (!S.picking) return;
      var w = fromDisplay(e.latlng.lng, e.latlng.lat);
      pickAt(w[0], w[1]);
    });
    if (window.ResizeObserver) new ResizeObserver(function () { map.invalidateSize({ animate: false }); }).observe(els.map);

    setBase(S.base);
    if (S.origin) {
      renderOrigin();
      if (S.results.length) { renderResults(); fitResults(); }
      else { var d0 = toDisplay(S.origin.lon, S.origin.lat); map.setView([d0[1], d0[0]], 15, { animate: false }); }
    }
    els.map.setAttribute('data-ready', 'true');
    if (!P.data && !P.loading) idle(loadPoints, 3000);

    return {
      map: map,
      setBase: setBase,
      redraw: redraw,
      restyle: restyle,
      refreshLabels: refreshLabels,
      resized: function () { map.invalidateSize({ animate: false }); },
      layerChanged: function () {
        clearDrawn();
        renderResults();
      },
      originChanged: function () {
        renderOrigin();
        var d = toDisplay(S.origin.lon, S.origin.lat);
        if (S.origin.source === 'gps' || S.origin.source === 'link') map.setView([d[1], d[0]], 15, { animate: false });
      },
      resultsChanged: function () {
        renderResults();
        if (S.results.length && S.k === 10 && S.origin && S.origin.source !== 'pick') fitResults();
      },
      select: function (id, pan, previous, zoomTo) {
        [previous, id].forEach(function (fid) {
          if (!fid) return;
          var f = S.features.get(fid);
          if (!f) return;
          var rm = resultById.get(fid);
          if (rm) rm.setIcon(markerIcon(f, S.results.indexOf(f) + 1));
          var m = drawnByKey.get('f:' + fid);
          if (m) m.setIcon(markerIcon(f));
        });
        if (!id || !pan) return;
        var f = S.features.get(id), ll = latlngOf(f);
        map.setView(ll, zoomTo || Math.max(map.getZoom(), 15), { animate: false });
        if (!els.card.hidden && window.matchMedia('(min-width: 60rem)').matches) {
          map.panBy([-(els.card.offsetWidth / 2 + 8), 0], { animate: false }); // keep it beside the card
        }
      },
      markerLatLng: function (id) {
        var m = resultById.get(id) || drawnByKey.get('f:' + id);
        if (!m) return null;
        var ll = m.getLatLng();
        return [ll.lng, ll.lat];
      },
      originLatLng: function () { if (!originMarker) return null; var ll = originMarker.getLatLng(); return [ll.lng, ll.lat]; },
      tileLayer: function () { return tiles; },
      labelLayer: function () { return labels; }
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
  els.pick.addEventListener('click', function () { setPicking(!S.picking); });
  els.pickCancel.addEventListener('click', function () { setPicking(false); });
  els.expand.addEventListener('click', function () { setExpanded(!S.expanded); });
  els.district.addEventListener('change', function () { if (els.district.value) chooseDistrict(els.district.value); });
  els.more.addEventListener('click', function () { S.k = Math.min(50, S.k + 10); refreshList(); });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape') { if (!els.card.hidden) closeCard(); else if (S.picking && S.origin) setPicking(false); }
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
  if (navigator.onLine === false) loadPoints(); // no signal: the saved points are needed at once
  loadMap();

  // installable and offline: the service worker keeps the page, its files and the points (not on the first paint)
  if ('serviceWorker' in navigator && boot.api.sw && window.isSecureContext !== false) {
    var registerWorker = function () {
      navigator.serviceWorker.register(boot.api.sw, { scope: '/' }).catch(function () { /* not kept offline */ });
    };
    if (document.readyState === 'complete') idle(registerWorker, 3000); else window.addEventListener('load', function () { idle(registerWorker, 3000); });
  }

  // for tests and integrations: the same functions the page uses
  window.unionMap = {
    state: S, points: P, wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84, detour: detour,
    humanHours: humanHours, evalHours: evalHours, travel: travel,
    nearestLocal: function (layer, lon, lat, k, services, openNow) {
      return Promise.all([loadPoints(), loadGeodesic()]).then(function () {
        var list = nearestLocal(layer, lon, lat, k || 10, services || [], !!openNow);
        return list && list.map(function (x) { return [x.f.id, x.d, x.b]; });
      });
    },
    setOrigin: function (lon, lat) { return setOrigin({ lon: lon, lat: lat, source: 'pick' }); },
    map: function () { return mapApi; }
  };
})();
