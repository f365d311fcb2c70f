// The worker phone's service worker (served at /sw.js, scope "/"; registered as a module).
// - App shell: the phone page, its scripts, styles, manifest and icons are cached on install,
//   so the app starts without a connection (the center's vocabulary: vocabulary.js keeps its
//   own copy). Network first (a deploy shows up at once), the cache when the center cannot be
//   reached.
// - Background Sync: the offline queue (phone-outbox.js) is flushed on "sync" even when the page
//   is closed; the page flushes it too (online event, reconnect, start), under a shared lock.
import { SYNC_TAG, flush } from "/static/phone-outbox.js";

const CACHE = "gridwatch-shell-v2"; // a new name drops the old shell (common.js, phone-text.js)
// Every module the phone page imports (tests/test_dashboard_modules.py keeps this list whole) and
// its styles.
const SHELL = [
  "/phone",
  "/manifest.webmanifest",
  "/static/phone.js",
  "/static/phone-outbox.js",
  "/static/phone-detail.js",
  "/static/wall-map-base.js", // the case map's base (phone-detail.js imports it when shown)
  "/static/gcj02.js",
  "/static/phone-format.js",
  "/static/phone-words.js",
  "/static/phone-duty.js",
  "/static/phone-urge.js",
  "/static/simulated-badge.js",
  "/static/simulated-words.js",
  "/static/handoff-words.js",
  "/static/staff-words.js",
  "/static/verdict.js",
  "/static/verdict-words.js",
  "/static/account.js",
  "/static/i18n.js",
  "/static/vocabulary.js",
  "/static/dom.js",
  "/static/format.js",
  "/static/http.js",
  "/static/errors.js",
  "/static/session.js",
  "/static/login.js",
  "/static/signed-urls.js",
  "/static/live-socket.js",
  "/static/ledger.js",
  "/static/live-words.js",
  "/static/account.css",
  "/static/style.css",
  "/static/phone.css",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
];
// Cached when present (the map library is optional).
const OPTIONAL = ["/vendor/leaflet/dist/leaflet-src.esm.js", "/vendor/leaflet/dist/leaflet.css"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL);
      await Promise.all(OPTIONAL.map((url) => cache.add(url).catch(() => undefined)));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

function isShell(url) {
  if (url.origin !== self.location.origin) return false;
  return url.pathname === "/phone" || url.pathname === "/manifest.webmanifest" ||
    url.pathname.startsWith("/static/") || url.pathname.startsWith("/vendor/leaflet/");
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url)) return; // API, websocket, other pages: straight to the network
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(request);
        if (response.ok) cache.put(url.pathname, response.clone());
        return response;
      } catch (err) {
        const cached = await cache.match(url.pathname);
        if (cached) return cached;
        throw err;
      }
    })(),
  );
});

self.addEventListener("sync", (event) => {
  if (event.tag !== SYNC_TAG) return;
  event.waitUntil(
    flush().then((r) => {
      if (r.stalled) throw new Error(`outbox stalled: ${r.error}`); // the browser retries later
    }),
  );
});
