/*
 * omnichannel-bridge web chat widget. Plain JavaScript, no dependencies, no build step.
 *
 * Embed it in any page:
 *   <div id="chat"></div>
 *   <script src="https://bridge.example.com/channels/web/widget.js" data-target="#chat" defer></script>
 * or mount it yourself:
 *   OmnichannelChat.mount(element, {bridge: "https://bridge.example.com", channel: "web"});
 *
 * Messages the visitor writes are kept in localStorage until the bridge acknowledges them and sent again with
 * the same id after a failure or a reload, so nothing typed is lost and a retry is never a second message.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var counter = 0;

  function newId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function storage(prefix) {
    var memory = {};
    function get(name) {
      try { return window.localStorage.getItem(prefix + name); } catch (e) { return memory[name] || null; }
    }
    function set(name, value) {
      memory[name] = value;
      try { window.localStorage.setItem(prefix + name, value); } catch (e) { /* private mode: memory only */ }
    }
    function getJSON(name, fallback) {
      try { var v = JSON.parse(get(name)); return v === null ? fallback : v; } catch (e) { return fallback; }
    }
    return { get: get, set: set, getJSON: getJSON, setJSON: function (n, v) { set(n, JSON.stringify(v)); } };
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function safeUrl(url) {
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) { return null; }
  }

  function formatSize(size) {
    if (typeof size !== "number" || size <= 0) return "";
    if (size < 1024) return size + " B";
    if (size < 1024 * 1024) return (size / 1024).toFixed(1) + " KB";
    return (size / 1024 / 1024).toFixed(1) + " MB";
  }

  function ensureStylesheet(base, channel) {
    if (document.querySelector("link[data-ocb-stylesheet]")) return;
    var link = el("link", { rel: "stylesheet", href: base + "/channels/" + encodeURIComponent(channel) + "/chat.css" });
    link.setAttribute("data-ocb-stylesheet", "");
    document.head.appendChild(link);
  }

  function mount(target, options) {
    if (typeof target === "string") target = document.querySelector(target);
    if (!target) throw new Error("OmnichannelChat.mount: no element to mount into");
    if (!options || !options.bridge || !options.channel) {
      throw new Error("OmnichannelChat.mount: options.bridge and options.channel are required");
    }
    var base = String(options.bridge).replace(/\/+$/, "");
    var channel = String(options.channel);
    var socketUrl = base.replace(/^http/, "ws") + "/channels/" + encodeURIComponent(channel) + "/ws";
    var store = storage("omnichannel-bridge:" + base + ":" + channel + ":");
    var level = Math.min(Math.max(parseInt(options.headingLevel || "2", 10) || 2, 1), 6);
    var uid = "ocb-" + (++counter);
    ensureStylesheet(base, channel);

    // ------------------------------------------------------------------ the DOM
    var root = el("section", { "class": "ocb", "aria-labelledby": uid + "-title" });
    var header = el("header", { "class": "ocb-header" });
    var title = el("h" + level, { "class": "ocb-title", id: uid + "-title" }, options.title || "Chat");
    var status = el("p", { "class": "ocb-status", role: "status" }, "Connecting…");
    header.append(title, status);
    var log = el("div", { "class": "ocb-log", role: "log", "aria-live": "polite", "aria-relevant": "additions",
      "aria-label": "Conversation", tabindex: "0" });
    var form = el("form", { "class": "ocb-form", novalidate: "" });
    var label = el("label", { "for": uid + "-input", "class": "ocb-label" }, "Message");
    var row = el("div", { "class": "ocb-row" });
    var input = el("input", { id: uid + "-input", type: "text", "class": "ocb-input", autocomplete: "off",
      maxlength: "10000", enterkeyhint: "send" });
    var send = el("button", { type: "submit", "class": "ocb-send" }, "Send");
    row.append(input, send);
    form.append(label, row);
    var details = el("details", { "class": "ocb-profile" });
    var summary = el("summary", {}, "Your details (optional)");
    var profileForm = el("form", { "class": "ocb-profile-form", novalidate: "" });
    var nameLabel = el("label", { "for": uid + "-name" }, "Name");
    var nameInput = el("input", { id: uid + "-name", type: "text", autocomplete: "name", maxlength: "200" });
    var emailLabel = el("label", { "for": uid + "-email" }, "Email");
    var emailInput = el("input", { id: uid + "-email", type: "email", autocomplete: "email", maxlength: "254" });
    var save = el("button", { type: "submit", "class": "ocb-save" }, "Save");
    var saved = el("span", { "class": "ocb-saved", role: "status" });
    profileForm.append(nameLabel, nameInput, emailLabel, emailInput, save, saved);
    details.append(summary, profileForm);
    root.append(header, log, form, details);
    target.appendChild(root);

    // ------------------------------------------------------------------ state
    var profile = store.getJSON("profile", {});
    nameInput.value = profile.name || "";
    emailInput.value = profile.email || "";
    var outbox = store.getJSON("outbox", []);  // [{id, type: "text"|"button", text, button_id}]
    var rendered = new Map();                   // entry id -> element
    var socket = null, ready = false, closed = false, attempts = 0, reconnectTimer = null, retryTimer = null;

    function saveOutbox() { store.setJSON("outbox", outbox.map(function (m) {
      return { id: m.id, type: m.type, text: m.text, button_id: m.button_id };
    })); }

    function nearBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 80; }

    function timeOf(ts) {
      var d = new Date(ts * 1000);
      var t = el("time", { datetime: d.toISOString(), "class": "ocb-time" },
        d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
      return t;
    }

    function renderEntry(entry) {
      if (rendered.has(entry.id)) return rendered.get(entry.id);
      var stick = nearBottom();
      var item = el("div", { "class": "ocb-msg ocb-" + entry.sender + " ocb-kind-" + entry.kind });
      item.dataset.id = entry.id;
      item.appendChild(el("span", { "class": "ocb-visually-hidden" }, entry.sender === "agent" ? "Agent:" : "You:"));
      if (entry.kind === "text" || entry.kind === "button" || (entry.kind === "keyboard" && entry.text)) {
        item.appendChild(el("p", { "class": "ocb-text" }, entry.text || ""));
      }
      if (entry.kind === "keyboard") {
        var group = el("div", { "class": "ocb-buttons", role: "group", "aria-label": entry.text || "Choices" });
        (entry.rows || []).forEach(function (buttons) {
          var line = el("div", { "class": "ocb-button-row" });
          buttons.forEach(function (b) {
            var button = el("button", { type: "button", "class": "ocb-choice" }, b.text);
            button.dataset.buttonId = b.id;
            button.addEventListener("click", function () { press(b.id, b.text); });
            line.appendChild(button);
          });
          group.appendChild(line);
        });
        item.appendChild(group);
      }
      if (entry.kind === "file") {
        var p = el("p", { "class": "ocb-file" });
        var href = safeUrl(entry.url);
        var name = entry.name || "file";
        if (href) {
          var a = el("a", { href: href, target: "_blank", rel: "noopener noreferrer" }, name);
          p.appendChild(a);
        } else {
          p.textContent = name + " (" + entry.url + ")";
        }
        var size = formatSize(entry.size);
        if (size) p.appendChild(el("span", { "class": "ocb-size" }, " " + size));
        item.appendChild(p);
      }
      if (entry.ts) item.appendChild(timeOf(entry.ts));
      if (entry.sender === "visitor") item.appendChild(el("span", { "class": "ocb-state" }));
      log.appendChild(item);
      rendered.set(entry.id, item);
      if (stick) log.scrollTop = log.scrollHeight;
      return item;
    }

    function setState(id, text, failed) {
      var item = rendered.get("v:" + id);
      if (!item) return;
      var state = item.querySelector(".ocb-state");
      if (state) state.textContent = text;
      item.classList.toggle("ocb-pending", text !== "" && !failed);
      item.classList.toggle("ocb-failed", !!failed);
    }

    function renderPending(m) {
      renderEntry({ id: "v:" + m.id, sender: "visitor", kind: m.type, text: m.text, ts: m.ts || Date.now() / 1000 });
      setState(m.id, "Sending…", false);
    }

    function setStatus(text) { if (status.textContent !== text) status.textContent = text; }

    // ------------------------------------------------------------------ sending
    function flush() {
      if (!ready) return;
      outbox.forEach(function (m) {
        if (m.inflight || m.waiting) return;
        var frame = m.type === "button" ? { type: "button", id: m.id, button_id: m.button_id }
          : { type: "text", id: m.id, text: m.text };
        m.inflight = true;
        socket.send(JSON.stringify(frame));
      });
    }

    function enqueue(m) {
      m.ts = Date.now() / 1000;
      outbox.push(m);
      saveOutbox();
      renderPending(m);
      log.scrollTop = log.scrollHeight;
      flush();
    }

    function press(buttonId, text) { enqueue({ id: newId(), type: "button", button_id: buttonId, text: text }); }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      input.value = "";
      enqueue({ id: newId(), type: "text", text: text });
    });

    profileForm.addEventListener("submit", function (event) {
      event.preventDefault();
      profile = { name: nameInput.value.trim(), email: emailInput.value.trim() };
      store.setJSON("profile", profile);
      saved.textContent = "Saved.";
      if (ready) socket.send(JSON.stringify({ type: "profile", name: profile.name || null, email: profile.email || null }));
    });

    function scheduleRetry() {
      if (retryTimer) return;
      retryTimer = window.setTimeout(function () {
        retryTimer = null;
        outbox.forEach(function (m) { m.waiting = false; });
        flush();
      }, 3000);
    }

    // ------------------------------------------------------------------ receiving
    function onFrame(frame) {
      if (frame.type === "welcome") {
        store.set("visitor", frame.visitor);
        title.textContent = options.title || frame.title;
        log.textContent = "";
        rendered.clear();
        frame.history.forEach(renderEntry);
        outbox.forEach(function (m) { m.inflight = false; m.waiting = false; renderPending(m); });
        log.scrollTop = log.scrollHeight;
        ready = true;
        attempts = 0;
        setStatus("Connected");
        flush();
      } else if (frame.type === "message") {
        renderEntry(frame.entry);
      } else if (frame.type === "ack") {
        outbox = outbox.filter(function (m) { return m.id !== frame.id; });
        saveOutbox();
        setState(frame.id, "", false);
      } else if (frame.type === "failed") {
        var m = outbox.find(function (x) { return x.id === frame.id; });
        if (!m) return;
        m.inflight = false;
        if (frame.retry) {
          m.waiting = true;
          setState(m.id, "Not sent yet, retrying…", false);
          scheduleRetry();
        } else {
          outbox = outbox.filter(function (x) { return x.id !== frame.id; });
          saveOutbox();
          setState(m.id, "Not sent: " + frame.desc, true);
        }
      } else if (frame.type === "profile_saved") {
        saved.textContent = "Saved.";
      } else if (frame.type === "error") {
        if (window.console) window.console.warn("omnichannel-bridge chat:", frame.error, frame.desc);
      }
    }

    function connect() {
      reconnectTimer = null;
      if (closed) return;
      setStatus(attempts ? "Reconnecting…" : "Connecting…");
      socket = new WebSocket(socketUrl);
      socket.addEventListener("open", function () {
        socket.send(JSON.stringify({ type: "hello", visitor: store.get("visitor"),
          name: profile.name || null, email: profile.email || null }));
      });
      socket.addEventListener("message", function (event) {
        var frame;
        try { frame = JSON.parse(event.data); } catch (e) { return; }
        onFrame(frame);
      });
      socket.addEventListener("close", function () {
        ready = false;
        outbox.forEach(function (m) { m.inflight = false; });
        if (closed) return;
        attempts += 1;
        var delay = Math.min(500 * Math.pow(2, attempts - 1), 15000);
        setStatus("Offline. Reconnecting in " + Math.ceil(delay / 1000) + " s…");
        reconnectTimer = window.setTimeout(connect, delay);
      });
    }

    function onOnline() {
      if (!ready && reconnectTimer) { window.clearTimeout(reconnectTimer); connect(); }
    }
    window.addEventListener("online", onOnline);
    connect();

    return {
      element: root,
      destroy: function () {
        closed = true;
        window.removeEventListener("online", onOnline);
        if (reconnectTimer) window.clearTimeout(reconnectTimer);
        if (retryTimer) window.clearTimeout(retryTimer);
        if (socket) socket.close(1000);
        root.remove();
      }
    };
  }

  function autoMount() {
    if (!script || !script.dataset.target) return;
    var src = new URL(script.src, window.location.href);
    var match = src.pathname.match(/^(.*)\/channels\/([^/]+)\/widget\.js$/);
    var bridge = script.dataset.bridge || (match ? src.origin + match[1] : null);
    var channel = script.dataset.channel || (match ? decodeURIComponent(match[2]) : null);
    mount(script.dataset.target, { bridge: bridge, channel: channel, title: script.dataset.title,
      headingLevel: script.dataset.headingLevel });
  }

  window.OmnichannelChat = { mount: mount };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", autoMount);
  } else {
    autoMount();
  }
})();
