/* The service worker of one patient's page (/p/TOKEN; registered with that scope, so each
   patient link on a phone has its own worker and its own cache).

   - The page and its assets: from the network, kept in the cache; with no network, the copy
     last seen, so the page opens offline. Videos recorded then wait in IndexedDB (patient.js).
   - The patient's own answers (calendar, videos, reminders): always asked of the server; the
     last good answer is kept only as a fallback with no network, marked with the time it was
     saved, and the page is told it is showing that.
   - A change of the reminder settings goes to the server; its reply becomes the last answer.
   - Uploads and every other request are left alone.
   - A link the server no longer knows (revoked, erased) clears the cache.
   - A reminder (Web Push) is shown as a notification; a tap opens the page. */
"use strict";

const SCOPE = new URL(self.registration.scope);
const HOME = SCOPE.pathname.replace(/\/$/, ""); // "/p/TOKEN"
const TOKEN = HOME.split("/").pop();
const CACHE = "vot-page-v1:" + HOME;
const ASSETS = ["/static/patient.css", "/static/patient.js", "/static/reach.css",
  "/static/reach.js", "/static/icon.svg", "/static/icon-192.png"];
const REMINDERS = "/api/v1/me/reminders";
const ANSWERS = ["/api/v1/me/calendar", "/api/v1/me/submissions", REMINDERS];
// Changes whose reply is the reminder settings as they now are: kept as the last answer.
const CHANGES = [REMINDERS, "/api/v1/me/push-subscriptions"];
const SAVED = "X-Vot-Saved-At";
const PAGE_WAIT_MS = 6000; // a page from a very slow network gives way to the saved copy

function authorized(headers) {
  const h = new Headers(headers);
  h.set("Authorization", "Bearer " + TOKEN);
  return h;
}

async function keep(key, response) {
  // A copy marked with when it was saved; the page shows that time when it falls back to it.
  const headers = new Headers(response.headers);
  headers.set(SAVED, new Date().toISOString());
  const body = await response.clone().blob();
  const cache = await caches.open(CACHE);
  await cache.put(key, new Response(body, { status: response.status, headers: headers }));
}

async function forget() {
  // The link no longer works: nothing of this patient stays on the phone.
  await caches.delete(CACHE);
  await self.registration.unregister();
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll([HOME].concat(ASSETS));
    await Promise.all(ANSWERS.map(async (path) => {
      try {
        const res = await fetch(path, { headers: authorized(), cache: "no-store" });
        if (res.ok) await keep(path, res);
      } catch (e) { /* the page asks again soon */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("slow network")), ms);
    promise.then((v) => { clearTimeout(timer); resolve(v); },
      (e) => { clearTimeout(timer); reject(e); });
  });
}

async function page(request) {
  const cache = await caches.open(CACHE);
  const saved = await cache.match(HOME, { ignoreSearch: true, ignoreVary: true });
  try {
    const fresh = fetch(request);
    const res = await (saved ? withTimeout(fresh, PAGE_WAIT_MS) : fresh);
    if (res.ok) await cache.put(HOME, res.clone());
    else if (res.status === 403 || res.status === 404) await forget();
    return res;
  } catch (e) {
    return saved || Response.error();
  }
}

async function asset(request) {
  const cache = await caches.open(CACHE);
  try {
    const res = await fetch(request);
    if (res.ok) await cache.put(request, res.clone());
    return res;
  } catch (e) {
    return (await cache.match(request, { ignoreVary: true })) || Response.error();
  }
}

async function tell(clientId, message) {
  const client = clientId && await self.clients.get(clientId);
  if (client) client.postMessage(message);
}

async function answer(event, path) {
  try {
    const res = await fetch(event.request);
    if (res.ok) {
      await keep(path, res);
      tell(event.clientId, { type: "vot-online" });
    } else if (res.status === 401 || res.status === 403) {
      await caches.delete(CACHE);
    }
    return res;
  } catch (e) {
    const cache = await caches.open(CACHE);
    const saved = await cache.match(path, { ignoreVary: true });
    if (!saved) throw e;
    tell(event.clientId, { type: "vot-offline", savedAt: saved.headers.get(SAVED) });
    return saved;
  }
}

async function change(request) {
  const res = await fetch(request);
  if (res.ok) await keep(REMINDERS, res);
  return res;
}

function ours(request) {
  return request.headers.get("Authorization") === "Bearer " + TOKEN;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method !== "GET") {
    if (CHANGES.indexOf(url.pathname) >= 0 && ours(request)) event.respondWith(change(request));
    return; // uploads and everything else go straight to the network
  }
  if (request.mode === "navigate") {
    if (url.pathname === HOME) event.respondWith(page(request));
    return; // another patient's link, or any other page: not this worker's
  }
  if (ANSWERS.indexOf(url.pathname) >= 0 && !url.search) {
    // Only this link's own answers: the same URL with another patient's token is not ours.
    if (ours(request)) event.respondWith(answer(event, url.pathname));
    return;
  }
  if (url.pathname.startsWith("/static/")) event.respondWith(asset(request));
});

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  const title = data.title || "";
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "",
    tag: data.tag || "vot-dose",
    renotify: true,
    icon: "/static/icon-192.png",
    badge: "/static/icon-192.png",
    data: { url: HOME },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const here = open.find((c) => new URL(c.url).pathname === HOME);
    if (here) return here.focus();
    return self.clients.openWindow(HOME);
  })());
});

self.addEventListener("pushsubscriptionchange", (event) => {
  // The push service replaced the subscription: give the server the new one.
  const old = event.oldSubscription;
  if (!old || !old.options || !old.options.applicationServerKey) return;
  event.waitUntil((async () => {
    const fresh = event.newSubscription || await self.registration.pushManager.subscribe(
      { userVisibleOnly: true, applicationServerKey: old.options.applicationServerKey });
    const headers = authorized({ "Content-Type": "application/json" });
    await fetch("/api/v1/me/push-subscriptions", { method: "POST", headers: headers,
      body: JSON.stringify(fresh.toJSON()) });
  })());
});
