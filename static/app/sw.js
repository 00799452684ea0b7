/* Service worker of the workers' map (placeholder: replaced by the offline implementation). */
const VERSION = '__SW_VERSION__';
const SHELL = __SHELL_URLS__;
self.addEventListener('install', function () { self.skipWaiting(); });
