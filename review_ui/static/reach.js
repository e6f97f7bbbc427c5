/* The patient's page as a companion: the service worker that opens it with no network, the
   reminder time, and reminders shown on this phone (Web Push). Served as is, no build step. */
(function () {
  "use strict";

  const root = document.getElementById("patient");
  const card = document.getElementById("reminders-card");
  if (!root || !card) return;
  const T = JSON.parse(document.getElementById("messages").textContent);
  const TOKEN = root.dataset.token;
  const LANG = root.dataset.lang;
  const HOME = "/p/" + TOKEN;
  const $ = (id) => document.getElementById(id);
  function t(key, vars) {
    let text = T[key] || key;
    for (const name in vars || {}) text = text.split("{" + name + "}").join(String(vars[name]));
    return text;
  }

  // ---- Offline: the service worker keeps this page, its assets and its last answers. ----
  function showOffline(savedAt) {
    const note = $("offline-note");
    if (!savedAt) { note.hidden = true; return; }
    const when = new Intl.DateTimeFormat(LANG, { month: "long", day: "numeric", hour: "2-digit",
      minute: "2-digit" }).format(new Date(savedAt));
    note.textContent = t("offline.note", { when: when });
    note.hidden = false;
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (event) => {
      const data = event.data || {};
      if (data.type === "vot-offline") showOffline(data.savedAt);
      if (data.type === "vot-online") showOffline(null);
    });
    // One worker per patient link: its scope is this page, so on a shared phone each link's
    // worker keeps only its own page and answers.
    navigator.serviceWorker.register("/p/sw.js", { scope: HOME }).catch(() => {
      /* no service worker (private browsing, plain HTTP): the page still works online */
    });
  }
  window.addEventListener("online", () => showOffline(null));

  // ---- The reminder time. ----
  async function api(method, path, body) {
    const res = await fetch("/api/v1/me/" + path, { method: method, cache: "no-store",
      credentials: "omit", headers: Object.assign({ Authorization: "Bearer " + TOKEN },
        body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined });
    if (!res.ok) throw new Error("HTTP " + res.status);
    return res.json();
  }
  function render(state) {
    $("remind-at").value = state.remind_at || "";
    $("remind-state").textContent = state.remind_at ? t("remind.saved", { time: state.remind_at })
      : t("remind.none");
    $("remind-off").hidden = !state.remind_at;
    $("sms-state").hidden = !(state.sms && state.remind_at);
    // A time with no way to reach the patient: point at the button below.
    if (state.remind_at && !state.push && !state.sms && !$("push-on").hidden) {
      pushState(t("remind.no_channel"), false);
    }
  }
  async function save(value) {
    $("remind-save").disabled = true;
    try {
      render(await api("PUT", "reminders", { remind_at: value || null, language: LANG }));
    } catch (e) {
      $("remind-state").textContent = t("remind.error");
    } finally {
      $("remind-save").disabled = false;
    }
  }
  $("remind-form").addEventListener("submit", (event) => {
    event.preventDefault();
    save($("remind-at").value);
  });
  $("remind-off").addEventListener("click", () => save(null));

  // ---- Reminders on this phone: a push subscription for the clinic's server. ----
  function pushState(text, hideButton) {
    $("push-state").textContent = text;
    $("push-on").hidden = Boolean(hideButton);
  }
  function keyBytes(b64) {
    const raw = atob((b64 + "=".repeat((4 - (b64.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0));
  }
  async function turnOnPush() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      return pushState(t("remind.push_unsupported"), false);
    }
    const allowed = await Notification.requestPermission();
    if (allowed !== "granted") return pushState(t("remind.push_denied"), false);
    try {
      const registration = await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true,
        applicationServerKey: keyBytes(card.dataset.vapidKey) });
      render(await api("POST", "push-subscriptions", subscription.toJSON()));
      pushState(t("remind.push_enabled"), true);
    } catch (e) {
      pushState(t("remind.push_failed"), false);
    }
  }
  $("push-on").addEventListener("click", turnOnPush);
  async function pushOnThisPhone() {
    // Whether this browser has a subscription (the server's "push" counts every phone).
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
      return pushState(t("remind.push_unsupported"), true);
    }
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.getSubscription();
    if (subscription && Notification.permission === "granted") {
      pushState(t("remind.push_enabled"), true);
    }
  }

  api("GET", "reminders").then(render).catch(() => { /* offline: the form still shows */ })
    .then(pushOnThisPhone);
})();
