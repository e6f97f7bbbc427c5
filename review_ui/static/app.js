/* Keyboard shortcuts and the video player of the review pages. No libraries, no build step.
   Every shortcut has a visible button or link doing the same, so the pages work without it. */
(function () {
  "use strict";

  var page = document.body.dataset.page;

  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName;
    if (el.isContentEditable || tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && ["radio", "checkbox", "button", "submit"].indexOf(el.type) < 0;
  }

  function follow(id) {
    var link = document.getElementById(id);
    if (link) window.location.assign(link.href);
  }

  function send(form, button) {
    if (!form || form.dataset.sent) return;  // one decision per page, however fast the keys
    form.dataset.sent = "1";
    form.requestSubmit(button || undefined);
  }

  /* Queue-like lists: J/K move between rows, Enter opens (the focused link does it). */
  function setupList() {
    var links = Array.prototype.slice.call(
      document.querySelectorAll("tr[data-submission-id] a.open"));
    var at = 0;
    function select(i) {
      if (!links.length) return;
      links[at].closest("tr").classList.remove("selected");
      at = Math.max(0, Math.min(links.length - 1, i));
      links[at].closest("tr").classList.add("selected");
      links[at].focus();
    }
    if (links.length && !isTyping(document.activeElement)) select(0);
    return {
      j: function () { select(at + 1); },
      k: function () { select(at - 1); },
      "/": function () {
        var box = document.getElementById("f-patient");
        if (box) box.focus();
      }
    };
  }

  /* The item page: the player, the event markers and stills, and the verdict keys. */
  function setupItem() {
    var root = document.getElementById("item");
    var video = document.getElementById("video");
    var form = document.getElementById("verdict-form");
    var reasons = document.getElementById("reject-reasons");
    var key = parseFloat(root.dataset.keyMoment);
    var armed = false;

    function seek(t) {
      if (!video || isNaN(t)) return;
      video.currentTime = Math.max(0, t);
      video.focus();
    }
    function setRate(rate) {
      if (video) video.playbackRate = rate;
      document.querySelectorAll("button.speed").forEach(function (b) {
        b.setAttribute("aria-pressed", String(parseFloat(b.dataset.rate) === rate));
      });
    }
    function place(duration) {
      if (!duration || !isFinite(duration)) return;
      document.querySelectorAll("#timeline .marker").forEach(function (m) {
        var start = parseFloat(m.dataset.start), end = parseFloat(m.dataset.end);
        m.style.left = Math.min(100, start / duration * 100) + "%";
        m.style.width = Math.max(0.8, (end - start) / duration * 100) + "%";
      });
    }
    function arm(on) {
      armed = on;
      if (!reasons) return;
      reasons.classList.toggle("armed", on);
      if (on) reasons.querySelector("input").focus();
    }

    place(parseFloat(root.dataset.duration));
    if (video) {
      video.addEventListener("loadedmetadata", function () {
        place(video.duration);
        // Start where the scorer saw the pill go to the mouth.
        if (!isNaN(key) && key < video.duration) video.currentTime = key;
        var playing = video.play();
        if (playing) playing.catch(function () { /* autoplay refused: the poster shows */ });
      });
      video.addEventListener("timeupdate", function () {
        var head = document.getElementById("playhead");
        if (head && video.duration) head.style.left = video.currentTime / video.duration * 100 + "%";
      });
    }
    document.querySelectorAll("#timeline .marker").forEach(function (m) {
      m.addEventListener("click", function () { seek(parseFloat(m.dataset.start)); });
    });
    document.querySelectorAll("button.still").forEach(function (b) {
      b.addEventListener("click", function () { seek(parseFloat(b.dataset.t)); });
    });
    document.querySelectorAll("button.speed").forEach(function (b) {
      b.addEventListener("click", function () { setRate(parseFloat(b.dataset.rate)); });
    });
    var toKey = document.getElementById("to-key");
    if (toKey) toKey.addEventListener("click", function () { seek(key); });

    var keys = {
      a: function () { if (form) send(form, document.getElementById("btn-accept")); },
      u: function () { if (form) send(form, document.getElementById("btn-unclear")); },
      r: function () { if (form) arm(true); },
      n: function () {
        var note = document.getElementById("note");
        if (note) note.focus();
      },
      j: function () { follow("next"); },
      k: function () { follow("prev"); },
      m: function () { seek(key); },
      s: function () {
        var rates = [1, 1.5, 2];
        var now = video ? video.playbackRate : 1;
        setRate(rates[(rates.indexOf(now) + 1) % rates.length]);
      },
      " ": function () {
        if (video) { if (video.paused) video.play(); else video.pause(); }
      },
      arrowleft: function () { if (video) seek(video.currentTime - 2); },
      arrowright: function () { if (video) seek(video.currentTime + 2); }
    };
    ["1", "2", "3", "4"].forEach(function (digit) {
      keys[digit] = function () {
        if (!armed || !reasons) return;
        var choice = reasons.querySelectorAll("input[type=radio]")[parseInt(digit, 10) - 1];
        if (!choice) return;
        choice.checked = true;
        send(form, document.getElementById("btn-reject"));
      };
    });
    keys.enter = function () {
      if (armed && reasons.querySelector("input:checked")) {
        send(form, document.getElementById("btn-reject"));
      }
    };
    keys.escape = function () { arm(false); };
    return keys;
  }

  /* The follow-up list: J/K move, 1/2/3 record the call of the selected patient, N a note. */
  function setupFollowup() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-patient-id]"));
    var at = 0;
    function select(i) {
      if (!rows.length) return;
      rows[at].classList.remove("selected");
      at = Math.max(0, Math.min(rows.length - 1, i));
      rows[at].classList.add("selected");
      rows[at].querySelector("a.open").focus();
    }
    function record(form, outcome, note) {
      var data = new FormData(form);
      data.set("outcome", outcome);
      if (note !== undefined) data.set("note", note);
      var row = form.closest("tr");
      return fetch(form.action, {
        method: "POST", body: data, credentials: "same-origin",
        headers: {"X-Requested-With": "fetch", "Accept": "application/json"}
      }).then(function (reply) {
        return reply.json().then(function (body) {
          if (!reply.ok) throw new Error(body.error || "not recorded");
          var list = row.querySelector("ol.calls");
          var none = list.querySelector(".none");
          if (none) none.remove();
          var item = document.createElement("li");
          item.className = "just-now";
          item.textContent = outcome.replace("_", " ") + " (just now)" + (note ? ": " + note : "");
          list.insertBefore(item, list.firstChild);
          if (outcome === "reached") row.classList.add("reached");
          row.dataset.recorded = outcome;
          return body;
        });
      }).catch(function (err) {
        row.dataset.error = err.message;
        window.alert("The call was not recorded: " + err.message);
      });
    }
    rows.forEach(function (row) {
      var noteForm = row.querySelector("form.call-note");
      noteForm.addEventListener("submit", function (e) {
        e.preventDefault();
        var box = noteForm.querySelector("input[name=note]");
        if (!box.value.trim()) return;
        record(noteForm, "note", box.value).then(function () { box.value = ""; box.blur(); });
      });
    });
    if (rows.length && !isTyping(document.activeElement)) select(0);
    var keys = {
      j: function () { select(at + 1); },
      k: function () { select(at - 1); },
      n: function () { if (rows.length) rows[at].querySelector("form.call-note input[name=note]").focus(); },
      o: function () { if (rows.length) window.location.assign(rows[at].querySelector("a.open").href); }
    };
    [["1", "reached"], ["2", "no_answer"], ["3", "wrong_number"]].forEach(function (pair) {
      keys[pair[0]] = function () {
        if (!rows.length) return;
        var row = rows[at];
        record(row.querySelector("form.call"), pair[1]).then(function () { select(at + 1); });
      };
    });
    return keys;
  }

  var handlers = {};
  if (page === "queue" || page === "auto") handlers = setupList();
  if (page === "followup") handlers = setupFollowup();
  if (page === "item") handlers = setupItem();

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var k = e.key.toLowerCase();
    var target = e.target;
    if (isTyping(target)) {
      if (k === "escape") target.blur();  // leave the note box; the keys work again
      return;
    }
    // Keys the browser handles itself on these elements.
    if (target.tagName === "VIDEO" && (k === " " || k.indexOf("arrow") === 0)) return;
    if (target.type === "radio" && k.indexOf("arrow") === 0) return;
    if (k === "enter" && target.type === "radio") {
      e.preventDefault();  // implicit submission would press the first button (Accept)
    } else if (k === "enter" || (k === " " && target.tagName === "BUTTON")) {
      return;  // links and buttons do what they say
    }
    if (k === "z" && document.getElementById("undo-form")) {
      e.preventDefault();
      send(document.getElementById("undo-form"));
      return;
    }
    var action = handlers && handlers[k];
    if (action) {
      e.preventDefault();
      action();
    }
  });
})();
