/* Service worker of the workers' map (served at /sw.js, scope /): the page opens and answers with no signal.
 *
 * The server fills in __SW_VERSION__ (a hash of the shell) and __SHELL_URLS__ (the page, the app's versioned files,
 * Leaflet, the geodesic library, the manifest). A release changes the version, so a new worker installs, precaches
 * the new shell (and, if not kept yet, the points and the hours) and, once active, deletes every other shell cache:
 * old assets never outlive their release.
 *
 *   the page (navigations)            network first (4 s, then the cached page; the network answer still updates it)
 *   /api/*                            network first; the last 40 GET answers are kept for when the network fails
 *                                     (given with "X-Served-From: cache", so the page says it is offline)
 *   /app/points.json, /app/hours      stale-while-revalidate (the page computes the nearest list from the points)
 *   /app/districts.geojson            stale-while-revalidate
 *   /static/app/*?v=…, /static/vendor/*, the manifest   cache first (versioned, or part of the shell)
 *   anything else (other origins: base-map tiles)        not handled: straight to the network, never cached
 */
'use strict';

var VERSION = '__SW_VERSION__';
var SHELL = __SHELL_URLS__;
var PREFIX = 'union-map-';
var SHELL_CACHE = PREFIX + 'shell-' + VERSION;
var DATA_CACHE = PREFIX + 'data-v1';   // points, hours, outlines: kept across releases (the data have own versions)
var API_CACHE = PREFIX + 'api-v1';     // recent /api answers, bounded
var API_ENTRIES = 40;
var PAGE_TIMEOUT_MS = 4000;
var DATA_URLS = ['/app/points.json', '/app/hours'];
var FROM_CACHE = 'X-Served-From'; // on /api answers given from the cache: the page then says it is offline

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(SHELL_CACHE).then(function (cache) {
    return cache.addAll(SHELL.map(function (url) { return new Request(url, { cache: 'reload' }); }));
  }).then(function () {
    // the data for the list without a connection, from the first visit on (the page asked for them before this
    // worker was there); a failure here only means they are kept on the next visit
    return caches.open(DATA_CACHE).then(function (cache) {
      return Promise.all(DATA_URLS.map(function (url) {
        return cache.match(url).then(function (hit) { return hit || cache.add(url); }).catch(function () {});
      }));
    });
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener('activate', function (event) {
  var keep = [SHELL_CACHE, DATA_CACHE, API_CACHE];
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf(PREFIX) === 0 && keep.indexOf(k) < 0; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener('fetch', function (event) {
  var req = event.request;
  if (req.method !== 'GET') return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return; // tiles and anything else: the browser's own fetch, not cached
  var path = url.pathname;
  if (req.mode === 'navigate' || (path === '/' && req.destination === 'document')) {
    if (path === '/') event.respondWith(page(req));
    return;
  }
  if (path.indexOf('/api/') === 0) { event.respondWith(networkFirst(req, API_CACHE)); return; }
  if (path === '/app/points.json' || path === '/app/hours' || path === '/app/districts.geojson') {
    event.respondWith(staleWhileRevalidate(event, req, DATA_CACHE));
    return;
  }
  if (path.indexOf('/static/app/') === 0 || path.indexOf('/static/vendor/') === 0 || path === '/app/manifest.webmanifest') {
    event.respondWith(cacheFirst(req));
  }
});

/** The page: from the network when it answers within PAGE_TIMEOUT_MS, else the cached copy (any query string:
 * deep links are read by the page itself). A late network answer still refreshes the cache. */
function page(req) {
  var fromNetwork = fetch(req).then(function (resp) {
    if (resp.ok) {
      var copy = resp.clone();
      caches.open(SHELL_CACHE).then(function (cache) { return cache.put('/', copy); });
    }
    return resp;
  });
  var cached = caches.open(SHELL_CACHE).then(function (cache) { return cache.match('/', { ignoreSearch: true }); });
  return new Promise(function (resolve, reject) {
    var settled = false;
    function fallback() {
      cached.then(function (hit) {
        if (settled) return;
        if (hit) { settled = true; resolve(hit); }
      });
    }
    var timer = setTimeout(fallback, PAGE_TIMEOUT_MS);
    fromNetwork.then(function (resp) {
      clearTimeout(timer);
      if (!settled) { settled = true; resolve(resp); }
    }, function () {
      clearTimeout(timer);
      cached.then(function (hit) {
        if (settled) return;
        settled = true;
        if (hit) resolve(hit); else reject(new TypeError('offline and no cached page'));
      });
    });
  });
}

function networkFirst(req, cacheName) {
  return fetch(req).then(function (resp) {
    if (resp.ok) {
      var copy = resp.clone();
      caches.open(cacheName).then(function (cache) {
        return cache.put(req, copy).then(function () { return trim(cache, API_ENTRIES); });
      });
    }
    return resp;
  }, function (err) {
    return caches.open(cacheName).then(function (cache) { return cache.match(req); }).then(function (hit) {
      if (!hit) throw err;
      var headers = new Headers(hit.headers);
      headers.set(FROM_CACHE, 'cache');
      return hit.blob().then(function (body) {
        return new Response(body, { status: hit.status, statusText: hit.statusText, headers: headers });
      });
    });
  });
}

/** Keep the newest `max` entries (cache keys are in insertion order). */
function trim(cache, max) {
  return cache.keys().then(function (keys) {
    return Promise.all(keys.slice(0, Math.max(0, keys.length - max)).map(function (k) { return cache.delete(k); }));
  });
}

function staleWhileRevalidate(event, req, cacheName) {
  return caches.open(cacheName).then(function (cache) {
    return cache.match(req).then(function (hit) {
      var update = fetch(req).then(function (resp) {
        if (resp.ok) return cache.put(req, resp.clone()).then(function () { return resp; });
        return resp;
      });
      if (hit) {
        event.waitUntil(update.catch(function () { /* offline: the cached copy stands */ }));
        return hit;
      }
      return update;
    });
  });
}

function cacheFirst(req) {
  return caches.open(SHELL_CACHE).then(function (cache) {
    return cache.match(req).then(function (hit) {
      if (hit) return hit;
      return fetch(req).then(function (resp) {
        var url = new URL(req.url);
        // versioned app files and vendor files join the current shell; stale-version URLs are not kept
        if (resp.ok && (url.pathname.indexOf('/static/vendor/') === 0 || url.searchParams.has('v'))) {
          cache.put(req, resp.clone());
        }
        return resp;
      });
    });
  });
}
