/* The patient's page: record a dose with the front camera, keep the video on the phone until it
   is sent, send it in resumable pieces (tus 1.0), and show what became of it.
   Served as is: no framework, no build step, nothing loaded from elsewhere. */
(function () {
  "use strict";

  const root = document.getElementById("patient");
  if (!root) return;
  const T = JSON.parse(document.getElementById("messages").textContent);
  const TOKEN = root.dataset.token;
  const LANG = root.dataset.lang;
  const CHUNK = Number(root.dataset.chunkBytes);
  const MAX_BYTES = Number(root.dataset.maxBytes);
  const MAX_SECONDS = Number(root.dataset.maxSeconds);
  const API = "/api/v1";
  const STEP_SECONDS = 5; // the guide moves to the next step this often while recording
  const DARK = 40; // mean luma (0-255) of the middle of the frame below which the pill is hard to see
  const TAKEN = ["auto_accepted", "accepted"];
  const AGAIN = ["rejected", "unclear"];

  const $ = (id) => document.getElementById(id);
  function t(key, vars) {
    let text = T[key] || key;
    for (const name in vars || {}) text = text.split("{" + name + "}").join(String(vars[name]));
    return text;
  }
  function show(id, visible) { $(id).hidden = !visible; }

  // ---- Recordings waiting to be sent, kept in IndexedDB so they survive a closed page. ----
  const store = (function () {
    const memory = new Map(); // when IndexedDB is unavailable (private browsing)
    let opening = null;
    function open() {
      if (!opening) {
        opening = new Promise((resolve) => {
          if (!window.indexedDB) return resolve(null);
          const req = indexedDB.open("vot-patient", 1);
          req.onupgradeneeded = () => req.result.createObjectStore("pending", { keyPath: "id" });
          req.onsuccess = () => resolve(req.result);
          req.onerror = req.onblocked = () => resolve(null);
        });
      }
      return opening;
    }
    async function run(mode, work) {
      const db = await open();
      if (!db) return undefined;
      return new Promise((resolve, reject) => {
        const tx = db.transaction("pending", mode);
        const req = work(tx.objectStore("pending"));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = tx.onabort = () => reject(tx.error);
      });
    }
    return {
      async put(rec) {
        if (await open()) {
          try { await run("readwrite", (s) => s.put(rec)); return; }
          catch (e) { /* e.g. storage full: keep it for this visit at least */ }
        }
        memory.set(rec.id, rec);
      },
      async remove(id) {
        memory.delete(id);
        await run("readwrite", (s) => s.delete(id));
      },
      async all() {
        const saved = (await run("readonly", (s) => s.getAll())) || [];
        const rows = saved.concat(Array.from(memory.values()));
        // A shared phone may hold another patient's videos: send only this link's own.
        return rows.filter((r) => r.owner === TOKEN).sort((a, b) => a.createdAt - b.createdAt);
      },
    };
  })();

  // ---- A small tus 1.0 client. ----
  class SendError extends Error {
    constructor(kind, message, code) { super(message); this.kind = kind; this.code = code; }
  }
  function b64(text) {
    let bin = "";
    new TextEncoder().encode(text).forEach((b) => { bin += String.fromCharCode(b); });
    return btoa(bin);
  }
  async function call(method, url, headers, body) {
    const all = Object.assign({ "Tus-Resumable": "1.0.0", Authorization: "Bearer " + TOKEN }, headers);
    let res;
    try {
      res = await fetch(url, { method: method, headers: all, body: body, cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new SendError("retry", String(e), "network");
    }
    if (res.status === 401 || res.status === 403) throw new SendError("link", "", "link");
    return res;
  }
  async function failure(res) {
    let info = {};
    try { info = await res.json(); } catch (e) { /* a HEAD reply, or not JSON */ }
    const final = [400, 410, 413, 415, 422].indexOf(res.status) >= 0;
    return new SendError(final ? "refused" : "retry", info.error || "HTTP " + res.status, info.code);
  }
  async function create(rec) {
    const meta = ["filename " + b64(rec.filename), "recorded_at " + b64(rec.recordedAt),
      "filetype " + b64(rec.type || "")].join(",");
    const res = await call("POST", API + "/uploads",
      { "Upload-Length": String(rec.size), "Upload-Metadata": meta });
    if (res.status !== 201) throw await failure(res);
    return new URL(res.headers.get("Location"), location.href).href;
  }
  async function where(rec) {
    const res = await call("HEAD", rec.url);
    if (res.status === 404) return null; // expired or removed: start this video again
    if (res.status === 410) throw await failure(await call("GET", rec.url));
    if (!res.ok) throw await failure(res);
    return { offset: Number(res.headers.get("Upload-Offset")), done: res.headers.get("Vot-Submission-Id") };
  }
  async function send(rec, progress) {
    for (let round = 0; round < 4; round++) {
      if (!rec.url) { rec.url = await create(rec); await store.put(rec); }
      const state = await where(rec);
      if (state === null) { rec.url = null; await store.put(rec); continue; }
      if (state.done) return state.done;
      let offset = state.offset;
      while (offset < rec.size) {
        progress(offset / rec.size);
        const piece = rec.data.slice(offset, Math.min(offset + CHUNK, rec.size));
        const res = await call("PATCH", rec.url, { "Upload-Offset": String(offset),
          "Content-Type": "application/offset+octet-stream" }, piece);
        if (res.status === 409 || res.status === 404) break; // ask the server where it stands
        if (res.status !== 204) throw await failure(res);
        offset = Number(res.headers.get("Upload-Offset"));
        const done = res.headers.get("Vot-Submission-Id");
        if (done) { progress(1); return done; }
      }
      // Every byte is there but the last reply was lost: the next HEAD finishes it.
    }
    throw new SendError("retry", "the upload did not finish", "unfinished");
  }

  // ---- Sending the queue, whenever the network allows. ----
  let pumping = false;
  let retryTimer = null;
  let backoffMs = 2000;
  async function pump() {
    if (pumping) return;
    pumping = true;
    clearTimeout(retryTimer);
    show("retry", false);
    try {
      let pending = await store.all();
      while (pending.length) {
        queueText(pending.length);
        if (!navigator.onLine) { sending(t("send.offline"), null); return; }
        const rec = pending[0];
        try {
          sending(t("send.progress", { pct: 0 }), 0);
          const submission = await send(rec, (f) => sending(t("send.progress", { pct: Math.floor(f * 100) }), f));
          await store.remove(rec.id);
          // patient_support.js asks how the patient feels, about this video.
          document.dispatchEvent(new CustomEvent("vot:sent", { detail: { submission: Number(submission) } }));
          backoffMs = 2000;
          sending(t("send.received"), 1);
          $("sending").classList.add("ok");
          refresh();
        } catch (e) {
          if (e.kind === "refused") { await store.remove(rec.id); refused(e.code, e.message); refresh(); }
          else if (e.kind === "link") { linkGone(); return; }
          else {
            sending(navigator.onLine ? t("send.retrying") : t("send.offline"), null);
            show("retry", true);
            retryTimer = setTimeout(pump, backoffMs);
            backoffMs = Math.min(backoffMs * 2, 60000);
            return;
          }
        }
        pending = await store.all();
      }
      queueText(0);
    } finally {
      pumping = false;
    }
  }
  function sending(text, fraction) {
    show("sending", true);
    $("sending").classList.remove("ok");
    $("send-text").textContent = text;
    const bar = $("send-progress");
    if (fraction === null) bar.removeAttribute("value"); else bar.value = Math.round(fraction * 100);
  }
  function queueText(n) {
    show("send-queue", n > 1);
    $("send-queue").textContent = t("send.waiting", { n: n });
  }
  function refused(code, detail) {
    show("sending", false);
    show("refused", true);
    $("refused-text").textContent = code === "too_large" ? t("send.too_large") : t("refused.body");
    $("refused-detail").textContent = detail ? t("refused.detail", { detail: detail }) : "";
  }
  function linkGone() {
    ["today", "start", "recorder", "sending", "refused", "calendar-card", "history-card"]
      .forEach((id) => show(id, false));
    show("refused", true);
    $("refused").querySelector("h2").textContent = t("link.gone.title");
    $("refused-text").textContent = t("link.gone.body");
    $("refused-detail").textContent = "";
    show("again", false);
  }

  // ---- Keeping a video: the recorder's, or one from the phone's camera app. ----
  function pad(n) { return String(Math.floor(Math.abs(n))).padStart(2, "0"); }
  function isoLocal(d) { // ISO 8601 with the phone's UTC offset: the dose day is the local day
    const off = -d.getTimezoneOffset();
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      (off >= 0 ? "+" : "-") + pad(off / 60) + ":" + pad(off % 60);
  }
  async function keep(blob, type, when, filename) {
    if (!blob.size) return;
    if (blob.size > MAX_BYTES) { refused("too_large", ""); return; }
    show("refused", false);
    await store.put({ id: Date.now() + "-" + Math.random().toString(36).slice(2), owner: TOKEN,
      data: blob, type: type, size: blob.size, filename: filename, recordedAt: isoLocal(when),
      createdAt: Date.now(), url: null });
    pump();
  }
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) keep(file, file.type, new Date(file.lastModified || Date.now()), file.name || "video");
  });

  // ---- The recorder, with the guide and live hints. ----
  let stream = null, recorder = null, parts = [], startedAt = null, ticker = null, watcher = null;
  function hint(text, bad) {
    const el = $("hint");
    el.hidden = !text;
    el.textContent = text;
    el.classList.toggle("bad", Boolean(bad));
  }
  async function openCamera() {
    const message = $("camera-message");
    message.hidden = true;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      message.textContent = t("camera.unsupported");
      message.hidden = false;
      return;
    }
    show("refused", false);
    show("start", false);
    show("today", false); // the preview and the button must fit on a small screen
    show("recorder", true);
    hint(t("camera.opening"), false);
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: {
        facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 24 } } });
    } catch (e) {
      closeCamera();
      message.textContent = t("camera.denied");
      message.hidden = false;
      return;
    }
    $("preview").srcObject = stream;
    $("limit").textContent = t("rec.limit", { max: MAX_SECONDS });
    watch();
  }
  function closeCamera() {
    clearInterval(ticker);
    clearInterval(watcher);
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    $("preview").srcObject = null;
    show("recorder", false);
    show("start", true);
    show("today", true);
    show("rec-start", true);
    show("rec-stop", false);
    show("timer", false);
    document.querySelectorAll("#steps li").forEach((li) => li.classList.remove("now"));
  }
  function watch() {
    const canvas = document.createElement("canvas");
    canvas.width = 32;
    canvas.height = 24;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    let detector = null;
    try { if ("FaceDetector" in window) detector = new window.FaceDetector({ fastMode: true }); }
    catch (e) { detector = null; } // present but unsupported on this phone: no face hint
    let busy = false;
    watcher = setInterval(async () => {
      const video = $("preview");
      if (busy || !video.videoWidth) return;
      busy = true;
      try {
        // Only the middle of the frame, where the face and the pill are: a dark room behind a
        // well-lit face is fine, a face in shadow is not.
        const w = video.videoWidth, h = video.videoHeight;
        ctx.drawImage(video, w * 0.3, h * 0.15, w * 0.4, h * 0.6, 0, 0, canvas.width, canvas.height);
        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        for (let i = 0; i < px.length; i += 4) sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
        const luma = sum / (px.length / 4);
        root.dataset.luma = luma.toFixed(0);
        if (luma < DARK) return hint(t("hint.dark"), true);
        if (detector) {
          const faces = await detector.detect(video).catch(() => { detector = null; return null; });
          if (faces && !faceCentred(faces, video)) return hint(t("hint.face"), true);
        }
        hint(recorder && recorder.state === "recording" ? "" : t("hint.ready"), false);
      } finally {
        busy = false;
      }
    }, 700);
  }
  function faceCentred(faces, video) {
    if (faces.length !== 1) return false;
    const box = faces[0].boundingBox;
    const x = (box.x + box.width / 2) / video.videoWidth;
    const y = (box.y + box.height / 2) / video.videoHeight;
    // The preview crops a landscape frame to portrait, so the oval covers the middle columns.
    return Math.abs(x - 0.5) < 0.15 && y > 0.15 && y < 0.7;
  }
  function mimeType() {
    const types = ["video/webm;codecs=vp8", "video/webm", "video/mp4"];
    return types.find((type) => MediaRecorder.isTypeSupported && MediaRecorder.isTypeSupported(type)) || "";
  }
  function startRecording() {
    parts = [];
    const type = mimeType();
    recorder = new MediaRecorder(stream, Object.assign({ videoBitsPerSecond: 400000 }, type ? { mimeType: type } : {}));
    recorder.ondataavailable = (e) => { if (e.data && e.data.size) parts.push(e.data); };
    recorder.onstop = saveRecording;
    startedAt = new Date();
    recorder.start(1000);
    show("rec-start", false);
    show("rec-stop", true);
    show("timer", true);
    hint("", false);
    const steps = document.querySelectorAll("#steps li");
    const tick = () => {
      const s = Math.floor((Date.now() - startedAt.getTime()) / 1000);
      $("timer").textContent = t("rec.seconds", { s: s });
      const now = Math.min(steps.length - 1, Math.floor(s / STEP_SECONDS));
      steps.forEach((li, i) => li.classList.toggle("now", i === now));
      if (s >= MAX_SECONDS) stopRecording();
    };
    tick();
    ticker = setInterval(tick, 500);
  }
  function stopRecording() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }
  function saveRecording() {
    const type = (recorder.mimeType || "video/webm").split(";")[0];
    const blob = new Blob(parts, { type: type });
    const d = startedAt;
    const name = "dose-" + d.getFullYear() + pad(d.getMonth() + 1) + pad(d.getDate()) + "-" +
      pad(d.getHours()) + pad(d.getMinutes()) + pad(d.getSeconds()) + (type.indexOf("mp4") >= 0 ? ".mp4" : ".webm");
    recorder = null;
    closeCamera();
    keep(blob, type, d, name);
  }
  $("open-camera").addEventListener("click", openCamera);
  $("again").addEventListener("click", openCamera);
  $("rec-start").addEventListener("click", startRecording);
  $("rec-stop").addEventListener("click", stopRecording);
  $("rec-cancel").addEventListener("click", () => {
    if (recorder) { recorder.onstop = null; stopRecording(); recorder = null; }
    closeCamera();
  });
  $("retry").addEventListener("click", () => { backoffMs = 2000; pump(); });

  // ---- What became of the videos: today, the calendar and the list. ----
  async function getJSON(path) {
    const res = await call("GET", API + path);
    if (!res.ok) throw await failure(res);
    return res.json();
  }
  function parseDay(text) {
    const p = text.split("-").map(Number);
    return new Date(p[0], p[1] - 1, p[2]);
  }
  function reasonText(sub) {
    return sub.reason_code ? t("reason." + sub.reason_code) : "";
  }
  function renderToday(subs, cal) {
    const today = subs.filter((s) => s.dose_date === cal.today);
    const el = $("today-text");
    $("today").classList.remove("ok", "warn");
    if (today.some((s) => TAKEN.indexOf(s.status) >= 0)) {
      el.textContent = t("today.done");
      $("today").classList.add("ok");
    } else if (today.some((s) => AGAIN.indexOf(s.status) < 0)) {
      el.textContent = t("today.received");
    } else if (today.length) {
      el.textContent = t("today.again");
      $("today").classList.add("warn");
      if ($("recorder").hidden && $("sending").hidden) {
        show("refused", true);
        $("refused-text").textContent = reasonText(today[0]) || t("refused.body");
        $("refused-detail").textContent = t("refused.body");
      }
    } else {
      el.textContent = t("today.none");
    }
  }
  function renderHistory(subs) {
    const list = $("history");
    list.textContent = "";
    const when = new Intl.DateTimeFormat(LANG, { month: "long", day: "numeric", weekday: "short" });
    subs.slice(0, 10).forEach((s) => {
      const li = document.createElement("li");
      const state = document.createElement("span");
      state.className = "state" + (TAKEN.indexOf(s.status) >= 0 ? " done" : AGAIN.indexOf(s.status) >= 0 ? " again" : "");
      state.textContent = t("status." + s.status) + (reasonText(s) ? " · " + reasonText(s) : "");
      const date = document.createElement("span");
      date.className = "when";
      date.textContent = when.format(parseDay(s.dose_date));
      li.append(state, date);
      list.append(li);
    });
    if (!subs.length) {
      const li = document.createElement("li");
      li.textContent = t("history.empty");
      list.append(li);
    }
  }
  function renderCalendar(cal) {
    const summary = cal.today < cal.start ? t("calendar.not_started", { start: cal.start })
      : t("calendar.summary", { taken: cal.taken, expected: cal.expected });
    $("calendar-summary").textContent = summary;
    const focus = parseDay(cal.today < cal.start ? cal.start : cal.today);
    const month = cal.days.filter((d) => {
      const day = parseDay(d.date);
      return day.getMonth() === focus.getMonth() && day.getFullYear() === focus.getFullYear();
    });
    const grid = document.createElement("div");
    grid.className = "calendar";
    const title = document.createElement("div");
    title.className = "month";
    title.textContent = new Intl.DateTimeFormat(LANG, { year: "numeric", month: "long" }).format(focus);
    grid.append(title);
    t("calendar.weekdays").split(",").forEach((name) => {
      const wd = document.createElement("div");
      wd.className = "wd";
      wd.textContent = name;
      grid.append(wd);
    });
    const first = month.length ? parseDay(month[0].date) : focus;
    for (let i = 0; i < (first.getDay() + 6) % 7; i++) grid.append(document.createElement("div"));
    month.forEach((d) => {
      const cell = document.createElement("div");
      cell.className = "day " + d.state + (d.date === cal.today ? " today" : "");
      cell.textContent = String(parseDay(d.date).getDate());
      cell.title = t("state." + d.state);
      cell.setAttribute("aria-label", d.date + ": " + t("state." + d.state));
      cell.dataset.date = d.date;
      cell.dataset.state = d.state;
      grid.append(cell);
    });
    $("calendar").replaceChildren(grid);
  }
  async function refresh() {
    try {
      const [subs, cal] = await Promise.all([getJSON("/me/submissions"), getJSON("/me/calendar")]);
      renderToday(subs, cal);
      renderHistory(subs);
      renderCalendar(cal);
    } catch (e) {
      if (e.kind === "link") linkGone(); // otherwise offline: keep what is shown
    }
  }

  // Recording on the page needs a secure context (HTTPS): elsewhere the camera app is the way.
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
    show("open-camera", false);
    $("file-label").classList.replace("secondary", "primary");
  }
  window.addEventListener("online", () => { backoffMs = 2000; pump(); refresh(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) { pump(); refresh(); } });
  setInterval(() => { if (!document.hidden) refresh(); }, 60000);
  refresh();
  pump();
})();
