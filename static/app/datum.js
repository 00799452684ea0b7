/* China's three map datums in the browser, for display and for the coordinates people type or copy.
 *
 *   WGS84   GPS, OpenStreetMap, GeoJSON: what the server stores and serves.
 *   GCJ-02  Amap/高德, Tencent/腾讯 ("Mars coordinates"): WGS84 shifted by a published obfuscation formula.
 *   BD-09   Baidu/百度: GCJ-02 shifted once more.
 *
 * The same published formulas and constants as geoserver/core/crs.py (the server's one datum module, which does every
 * conversion of stored data); the inverses are the same fixed-point iteration, accurate to far below 1 mm. Pages use
 * this only to draw on a GCJ-02 base map and to show coordinates in the datum a person reads them in.
 *
 * One global object, window.GeoDatum: wgs84ToGcj02, gcj02ToWgs84, gcj02ToBd09, bd09ToGcj02, wgs84ToBd09,
 * bd09ToWgs84 (each (lon, lat) -> [lon, lat]), outOfChina(lon, lat), and convert(lon, lat, from, to) with from/to
 * one of DATUMS ('wgs84', 'gcj02', 'bd09').
 */
(function (root) {
  'use strict';

  // Constants of the GCJ-02 formula: the Krasovsky 1940 ellipsoid; Baidu's x_pi.
  var GCJ_A = 6378245.0, GCJ_EE = 0.00669342162296594323, PI = Math.PI, BD_X_PI = PI * 3000.0 / 180.0;

  /** True where GCJ-02 applies no offset (the formula's own box). */
  function outOfChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }

  /** The GCJ-02 shift [dlon, dlat] in degrees at WGS84 lon/lat. */
  function gcjOffsets(lon, lat) {
    var x = lon - 105.0, y = lat - 35.0;
    var common = (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + common;
    dlat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    dlat += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + common;
    dlon += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    dlon += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var radlat = lat / 180.0 * PI;
    var magic = 1.0 - GCJ_EE * Math.pow(Math.sin(radlat), 2);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrtmagic) * PI);
    dlon = (dlon * 180.0) / (GCJ_A / sqrtmagic * Math.cos(radlat) * PI);
    return [dlon, dlat];
  }

  /** WGS84 -> GCJ-02 (the published forward formula); points outside China are returned unchanged. */
  function wgs84ToGcj02(lon, lat) {
    if (outOfChina(lon, lat)) return [lon, lat];
    var d = gcjOffsets(lon, lat);
    return [lon + d[0], lat + d[1]];
  }

  /** GCJ-02 -> BD-09 (Baidu's published forward formula). */
  function gcj02ToBd09(lon, lat) {
    var z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * BD_X_PI);
    var theta = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * BD_X_PI);
    return [z * Math.cos(theta) + 0.0065, z * Math.sin(theta) + 0.006];
  }

  function wgs84ToBd09(lon, lat) { var g = wgs84ToGcj02(lon, lat); return gcj02ToBd09(g[0], g[1]); }

  /** Invert a near-identity forward map by fixed-point iteration x <- x - (f(x) - target), as crs._invert does. */
  function invert(forward, lon, lat) {
    var f = forward(lon, lat), x = lon - (f[0] - lon), y = lat - (f[1] - lat);
    for (var i = 0; i < 30; i++) {
      f = forward(x, y);
      var ex = f[0] - lon, ey = f[1] - lat;
      x -= ex; y -= ey;
      if (Math.abs(ex) < 1e-12 && Math.abs(ey) < 1e-12) break;
    }
    return [x, y];
  }

  function gcj02ToWgs84(lon, lat) { return invert(wgs84ToGcj02, lon, lat); }
  function bd09ToGcj02(lon, lat) { return invert(gcj02ToBd09, lon, lat); }
  function bd09ToWgs84(lon, lat) { return invert(wgs84ToBd09, lon, lat); }

  var FROM_WGS84 = { wgs84: function (lon, lat) { return [lon, lat]; }, gcj02: wgs84ToGcj02, bd09: wgs84ToBd09 };
  var TO_WGS84 = { wgs84: function (lon, lat) { return [lon, lat]; }, gcj02: gcj02ToWgs84, bd09: bd09ToWgs84 };

  /** lon/lat given in datum `from` expressed in datum `to` (through WGS84; the identity when they are the same). */
  function convert(lon, lat, from, to) {
    if (!TO_WGS84[from] || !FROM_WGS84[to]) throw new Error('unknown datum ' + (TO_WGS84[from] ? to : from));
    if (from === to) return [lon, lat];
    var w = TO_WGS84[from](lon, lat);
    return FROM_WGS84[to](w[0], w[1]);
  }

  root.GeoDatum = Object.freeze({
    DATUMS: Object.freeze(['wgs84', 'gcj02', 'bd09']),
    outOfChina: outOfChina,
    wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84,
    gcj02ToBd09: gcj02ToBd09, bd09ToGcj02: bd09ToGcj02,
    wgs84ToBd09: wgs84ToBd09, bd09ToWgs84: bd09ToWgs84,
    convert: convert
  });
})(window);
