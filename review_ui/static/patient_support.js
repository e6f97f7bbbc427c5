/* The patient's side effects and messages. Reports made offline wait on the phone and are sent
   when the network comes back; messages are plain text, shown as text (never as HTML). */
(function () {
  "use strict";

  const root = document.getElementById("patient");
  if (!root) return;
  const T = JSON.parse(document.getElementById("messages").textContent);
  const TOKEN = root.dataset.token;
  const LANG = root.dataset.lang;
  const API = "/api/v1/me";
  const QUEUE = "vot-side-effects-" + TOKEN.slice(-12);
  const $ = (id) => document.getElementById(id);
  function t(key, vars) {
    let text = T[key] || key;
    for (const name in vars || {}) text = text.split("{" + name + "}").join(String(vars[name]));
    return text;
  }

  async function call(method, path, body) {
    const headers = { Authorization: "Bearer " + TOKEN, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(API + path, {
      method: method, headers: headers, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error(data.error || String(res.status));
      err.status = res.status;
      throw err;
    }
    return data;
  }

  // ---- Side effects ----
  const form = $("side-effects-form");
  let aboutSubmission = null; // the video just sent, when the report follows it
  function pending() {
    try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch (e) { return []; }
  }
  function keep(list) {
    try { localStorage.setItem(QUEUE, JSON.stringify(list)); } catch (e) { /* private mode */ }
  }
  function say(text, kind) {
    const el = $("se-status");
    el.textContent = text;
    el.className = "small " + (kind || "");
    el.hidden = !text;
  }
  // Each report carries the phone's own key for it, so one sent twice (an answer lost on a bad
  // network, two "online" events at once) is recorded once.
  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  let flushing = false;
  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      let list = pending();
      while (list.length && navigator.onLine) {
        const sent = JSON.stringify(list[0]);
        try {
          const got = await call("POST", "/side-effects", list[0]);
          say(got.urgent ? t("se.sent_urgent") : t("se.sent"), got.urgent ? "warn" : "ok");
        } catch (e) {
          if (e.status && e.status < 500) say(t("se.refused", { error: e.message }), "warn");
          else return; // offline or the server is busy: try again later
        }
        list = pending();
        const at = list.findIndex((r) => JSON.stringify(r) === sent);
        if (at >= 0) list.splice(at, 1);
        keep(list);
      }
    } finally {
      flushing = false;
    }
  }
  if (form) {
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const symptoms = Array.from(form.querySelectorAll("input[name=symptom]:checked")).map((b) => b.value);
      if (!symptoms.length) { say(t("se.choose"), "warn"); return; }
      const severity = (form.querySelector("input[name=severity]:checked") || {}).value || "mild";
      const report = { key: newKey(), symptoms: symptoms, severity: severity, note: $("se-note").value || null };
      if (aboutSubmission) report.submission_id = aboutSubmission;
      keep(pending().concat([report]));
      form.reset();
      aboutSubmission = null;
      $("se-title").textContent = t("se.title");
      if (!navigator.onLine) say(t("se.queued"), "");
      flush();
    });
  }
  document.addEventListener("vot:sent", (e) => {
    aboutSubmission = e.detail.submission || null;
    if (aboutSubmission && $("se-title")) $("se-title").textContent = t("se.after_video");
  });

  // ---- Messages ----
  const when = new Intl.DateTimeFormat(LANG, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  function messageText(m) {
    if (m.kind !== "record_again") return m.text;
    const reason = m.reason_code ? t("reason." + m.reason_code) : "";
    return t("msg.record_again", { date: m.dose_date, reason: reason });
  }
  function renderThread(list) {
    const thread = $("thread");
    thread.replaceChildren();
    if (!list.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = t("msg.empty");
      thread.append(li);
    }
    list.forEach((m) => {
      const li = document.createElement("li");
      li.className = "from-" + m.from;
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = (m.from === "patient" ? t("msg.you") : t("msg.clinic")) + " · " + when.format(new Date(m.sent_at));
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = messageText(m); // text, never HTML
      li.append(meta, text);
      if (m.kind === "record_again") {
        const again = document.createElement("button");
        again.type = "button";
        again.className = "btn secondary";
        again.textContent = t("action.again");
        again.addEventListener("click", () => {
          const open = $("open-camera");
          (open && !open.hidden ? open : $("file")).click();
        });
        li.append(again);
      }
      thread.append(li);
    });
    thread.scrollTop = thread.scrollHeight;
  }
  function badge(n) {
    const el = $("msg-unread");
    el.textContent = t("msg.new", { n: n });
    el.hidden = !n;
  }
  let open = false;
  async function loadThread() {
    try {
      const data = await call("GET", "/messages");
      renderThread(data.messages);
      badge(0);
    } catch (e) { /* offline: keep what is shown */ }
  }
  async function checkUnread() {
    if (open) return loadThread();
    try { badge((await call("GET", "/messages/unread")).unread); } catch (e) { /* offline */ }
  }
  const box = $("messages-card");
  if (box) {
    box.addEventListener("toggle", () => { open = box.open; if (open) loadThread(); });
    $("message-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const input = $("message-text");
      const text = input.value.trim();
      if (!text) return;
      const status = $("msg-status");
      try {
        await call("POST", "/messages", { text: text });
        input.value = "";
        status.textContent = t("msg.sent");
        loadThread();
      } catch (err) {
        status.textContent = err.status ? t("msg.error", { error: err.message }) : t("msg.offline");
      }
      status.hidden = false;
    });
  }

  window.addEventListener("online", () => { flush(); checkUnread(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) checkUnread(); });
  setInterval(() => { if (!document.hidden) checkUnread(); }, 60000);
  flush();
  checkUnread();
})();
