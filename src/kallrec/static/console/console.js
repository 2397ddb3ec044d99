// kallrec console: plain JavaScript, no build step, nothing loaded from other hosts.
// The API key lives in this tab's sessionStorage and travels only in the Authorization header.
// Audio is played through short-lived playback links (POST /v1/recordings/{id}/links), since an
// <audio> element cannot send a header; the links are made when a player is first used.
"use strict";
(() => {
  const STORE = "kallrec.key";
  const PLAY_LINK_SECONDS = 4 * 3600;
  const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
  const SHARE_CHOICES = [["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"]];
  const CHANNEL_NAMES = { mixed: "Whole call", agent: "Agent", customer: "Customer" };
  let key = sessionStorage.getItem(STORE);
  let lastPath = null;
  let routing = 0; // the latest navigation: an older one that finishes later is dropped
  let players = [];
  let activePlayer = null;

  // -- small helpers -----------------------------------------------------------------------

  const $ = (sel, root = document) => root.querySelector(sel);

  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (name === "class") el.className = value;
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function icon(name) {
    const paths = {
      play: "M7 4.5v15l12-7.5z",
      pause: "M6 4h4v16H6zM14 4h4v16h-4z",
    };
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", paths[name]);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  function clock(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
    const s = Math.floor(seconds % 60), m = Math.floor(seconds / 60) % 60;
    const hours = Math.floor(seconds / 3600);
    const mm = hours ? String(m).padStart(2, "0") : String(m);
    return (hours ? hours + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const when = (iso) => (iso ? dateFormat.format(new Date(iso)) : "—");

  function pill(status) {
    return h("span", { class: "pill " + status }, status);
  }

  let toastTimer = null;
  function toast(message) {
    const el = $("#toast");
    el.textContent = message;
    el.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove("show"), 3500);
  }

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || "The request failed (HTTP " + status + ").");
      this.status = status;
      this.code = error.code;
    }
  }

  async function api(path, { method = "GET", body } = {}) {
    const headers = { Authorization: "Bearer " + key };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    const data = await response.json().catch(() => null);
    if (response.status === 401 && key) {
      signOut("Your key was refused (" + ((data && data.error && data.error.message) || "401") + ").");
      throw new ApiError(401, data);
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) if (value) q.set(name, value);
    const text = q.toString();
    return text ? "?" + text : "";
  }

  // -- signing in and out --------------------------------------------------------------------

  function showSignedIn(signedIn) {
    $("#sign-in").hidden = signedIn;
    $("#view").hidden = !signedIn;
    for (const el of document.querySelectorAll("[data-signed-in]")) el.hidden = !signedIn;
    if (signedIn) {
      const test = key.startsWith("sk_test_");
      const mode = $("#key-mode");
      mode.textContent = test ? "Test mode" : "Live mode";
      mode.className = "mode" + (test ? " test" : "");
    }
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $("#api-key");
    const error = $("#sign-in-error");
    const candidate = input.value.trim();
    error.textContent = "";
    if (!candidate) {
      error.textContent = "Enter an API key.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    const check = await fetch("/v1/recordings?limit=1", {
      headers: { Authorization: "Bearer " + candidate },
      cache: "no-store",
    }).catch(() => null);
    if (!check || check.status === 401) {
      const body = check ? await check.json().catch(() => null) : null;
      error.textContent = (body && body.error && body.error.message) || "The server cannot be reached.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    input.value = "";
    key = candidate;
    sessionStorage.setItem(STORE, key);
    lastPath = null;
    if (!location.hash || location.hash === "#") location.hash = "#/calls";
    else route();
  }

  function signOut(message) {
    stopPlayers();
    key = null;
    sessionStorage.removeItem(STORE);
    showSignedIn(false);
    $("#view").replaceChildren();
    $("#sign-in-error").textContent = typeof message === "string" ? message : "";
    $("#api-key").focus();
  }

  // -- routing -------------------------------------------------------------------------------

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/calls";
    const [path, search = ""] = raw.split("?");
    return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(search), path };
  }

  function go(path, params = {}) {
    location.hash = "#" + path + query(params);
  }

  async function route() {
    if (!key) {
      showSignedIn(false);
      return;
    }
    showSignedIn(true);
    const { parts, params, path } = parseHash();
    const [section = "calls", id] = parts;
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    stopPlayers();
    const view = $("#view");
    view.setAttribute("aria-busy", "true");
    const current = ++routing;
    let content;
    try {
      if (section === "calls" && id) content = await callView(id);
      else if (section === "calls") content = await callsView(params);
      else if (section === "recordings" && id) content = await recordingView(id);
      else if (section === "recordings") content = await recordingsView(params);
      else if (section === "webhooks" && id) content = await deliveriesView(id, params);
      else if (section === "webhooks") content = await endpointsView(params);
      else content = h("div", { class: "card" }, h("h1", { tabindex: "-1" }, "Not found"));
    } catch (error) {
      if (!key || current !== routing) return;
      content = h("div", { class: "card" },
        h("h1", { tabindex: "-1" }, "Something went wrong"),
        h("p", { class: "error", role: "alert" }, error.message));
    }
    if (current !== routing) {
      for (const p of players) if (!p.element.isConnected) p.destroy();
      players = players.filter((p) => p.element.isConnected);
      return;
    }
    view.replaceChildren(content);
    view.removeAttribute("aria-busy");
    const title = $("h1", view);
    document.title = (title ? title.textContent + " · " : "") + "kallrec console";
    if (path !== lastPath && title) title.focus({ preventScroll: false });
    lastPath = path;
  }

  // -- lists ---------------------------------------------------------------------------------

  function dateField(id, label, value) {
    return h("div", {}, h("label", { for: id }, label),
      h("input", { id, name: id, type: "date", value: value || "" }));
  }

  function selectField(id, label, choices, value) {
    return h("div", {}, h("label", { for: id }, label),
      h("select", { id, name: id },
        choices.map(([v, text]) => h("option", { value: v, selected: v === (value || "") }, text))));
  }

  function textField(id, label, value, placeholder) {
    return h("div", {}, h("label", { for: id }, label),
      h("input", { id, name: id, type: "search", value: value || "", placeholder }));
  }

  function filterForm(path, fields, params) {
    const form = h("form", { class: "filters", role: "search", "aria-label": "Filters" },
      fields,
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Apply"),
        h("button", { type: "button", class: "quiet", onclick: () => go(path) }, "Clear")));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const next = {};
      for (const [name, value] of new FormData(form).entries()) if (value) next[name] = value;
      go(path, next);
    });
    return form;
  }

  // The API's created[gte]/created[lt] from the form's dates (whole days, the viewer's zone).
  function createdBounds(params) {
    const bounds = {};
    const from = params.get("from"), to = params.get("to");
    if (from) bounds["created[gte]"] = new Date(from + "T00:00:00").toISOString();
    if (to) {
      const end = new Date(to + "T00:00:00");
      end.setDate(end.getDate() + 1);
      bounds["created[lt]"] = end.toISOString();
    }
    return bounds;
  }

  function listParams(params) {
    return { limit: "20", starting_after: params.get("after"), ending_before: params.get("before") };
  }

  function pager(path, params, page) {
    const data = page.data;
    const back = params.get("before"), forth = params.get("after");
    const newerPossible = Boolean(forth) || (Boolean(back) && page.has_more);
    const olderPossible = Boolean(back) || (!back && page.has_more);
    const keep = Object.fromEntries([...params.entries()].filter(([n]) => n !== "after" && n !== "before"));
    return h("nav", { class: "pager", "aria-label": "Pages" },
      h("button", {
        type: "button", disabled: !newerPossible || !data.length,
        onclick: () => go(path, { ...keep, before: data[0].id }),
      }, "← Newer"),
      h("span", { class: "muted" }, data.length ? data.length + " shown" : ""),
      h("button", {
        type: "button", disabled: !olderPossible || !data.length,
        onclick: () => go(path, { ...keep, after: data[data.length - 1].id }),
      }, "Older →"));
  }

  function table(caption, headings, rows, emptyText) {
    if (!rows.length) return h("p", { class: "empty" }, emptyText);
    return h("div", { class: "table-wrap" },
      h("table", {},
        h("caption", {}, caption),
        h("thead", {}, h("tr", {}, headings.map(([text, cls]) => h("th", { scope: "col", class: cls }, text)))),
        h("tbody", {}, rows)));
  }

  function tags(object) {
    const entries = Object.entries(object || {});
    if (!entries.length) return h("span", { class: "muted" }, "—");
    return h("div", { class: "tags" }, entries.map(([k, v]) => h("span", { class: "tag" }, k + ": " + v)));
  }

  // The carrier and its ids of the call (routing's call_sid / call_control_id), as tags.
  function carrierIds(session) {
    const routing = session.routing || {};
    const shown = ["call_sid", "call_control_id", "connection_id"]
      .filter((name) => routing[name]).map((name) => routing[name]);
    if (!shown.length && !session.provider) return h("span", { class: "muted" }, "—");
    return h("div", { class: "tags" },
      session.provider ? h("span", { class: "tag" }, session.provider) : null,
      shown.map((t) => h("span", { class: "tag mono" }, t)));
  }

  function callLength(session) {
    const seconds = session.duration || (session.recording && session.recording.duration);
    return seconds === null || seconds === undefined ? "—" : clock(seconds);
  }

  async function callsView(params) {
    const page = await api("/v1/sessions" + query({
      ...listParams(params), status: params.get("status"), q: params.get("q"),
      ...createdBounds(params),
    }));
    const rows = page.data.map((s) => h("tr", {},
      h("td", {}, h("a", { href: "#/calls/" + s.id }, s.phone_number || "Call"),
        h("div", { class: "muted mono" }, s.id)),
      h("td", {}, when(s.created_at)),
      h("td", {}, callLength(s)),
      h("td", {}, pill(s.status)),
      h("td", { class: "hide-narrow" }, tags(s.metadata)),
      h("td", { class: "hide-narrow" }, carrierIds(s))));
    return h("div", {},
      h("div", { class: "page-head" }, h("div", {},
        h("h1", { tabindex: "-1" }, "Calls"),
        h("p", { class: "muted" }, "Newest first. Search looks in metadata, carrier ids and numbers."))),
      h("div", { class: "card" }, filterForm("/calls", [
        textField("q", "Search", params.get("q"), "order 1234, CA5f…"),
        selectField("status", "Status", [["", "Any"], ["created", "Created"], ["active", "Active"], ["ended", "Ended"]], params.get("status")),
        dateField("from", "From", params.get("from")),
        dateField("to", "To", params.get("to")),
      ], params)),
      h("div", { class: "card" },
        table("Calls", [["Call"], ["Started"], ["Length"], ["Status"], ["Metadata", "hide-narrow"], ["Carrier ids", "hide-narrow"]],
          rows, "No calls match."),
        pager("/calls", params, page)));
  }

  async function recordingsView(params) {
    const page = await api("/v1/recordings" + query({
      ...listParams(params), channel: params.get("channel"), status: params.get("status"),
      session_id: params.get("session_id"), ...createdBounds(params),
    }));
    const rows = page.data.map((r) => h("tr", {},
      h("td", {}, h("a", { href: "#/recordings/" + r.id }, CHANNEL_NAMES[r.channel] || r.channel),
        h("div", { class: "muted mono" }, r.id)),
      h("td", {}, when(r.created_at)),
      h("td", {}, r.duration === null ? "—" : clock(r.duration)),
      h("td", {}, pill(r.status)),
      h("td", { class: "hide-narrow" }, h("a", { href: "#/calls/" + r.session_id, class: "mono" }, r.session_id))));
    return h("div", {},
      h("div", { class: "page-head" }, h("div", {},
        h("h1", { tabindex: "-1" }, "Recordings"),
        h("p", { class: "muted" }, "Every track of every call, newest first."))),
      h("div", { class: "card" }, filterForm("/recordings", [
        selectField("channel", "Track", [["", "Any"], ["mixed", "Whole call"], ["agent", "Agent"], ["customer", "Customer"]], params.get("channel")),
        selectField("status", "Status", [["", "Any"], ["processing", "Processing"], ["ready", "Ready"], ["failed", "Failed"], ["expired", "Expired"]], params.get("status")),
        dateField("from", "From", params.get("from")),
        dateField("to", "To", params.get("to")),
      ], params)),
      h("div", { class: "card" },
        table("Recordings", [["Track"], ["Made"], ["Length"], ["Status"], ["Call", "hide-narrow"]], rows, "No recordings match."),
        pager("/recordings", params, page)));
  }

  // -- a call and its players ----------------------------------------------------------------

  function facts(pairs) {
    return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
  }

  function trackPlayers(recordings) {
    const order = { mixed: 0, agent: 1, customer: 2 };
    const sorted = [...recordings].sort((a, b) => (order[a.channel] ?? 9) - (order[b.channel] ?? 9));
    const mixed = sorted.filter((r) => r.channel === "mixed").map(player);
    const sides = sorted.filter((r) => r.channel !== "mixed").map(player);
    return [
      ...mixed,
      sides.length ? h("section", { "aria-label": "Agent and customer tracks", class: "tracks" }, sides) : null,
    ];
  }

  async function callView(id) {
    const [session, recordings] = await Promise.all([
      api("/v1/sessions/" + encodeURIComponent(id)),
      api("/v1/sessions/" + encodeURIComponent(id) + "/recordings?limit=100"),
    ]);
    return h("div", {},
      h("a", { href: "#/calls", class: "back" }, "← Calls"),
      h("div", { class: "page-head" }, h("div", {},
        h("h1", { tabindex: "-1" }, session.phone_number ? "Call with " + session.phone_number : "Call"),
        h("p", { class: "muted mono" }, session.id)), pill(session.status)),
      h("div", { class: "card" }, facts([
        ["Started", when(session.started_at || session.created_at)],
        ["Ended", session.ended_at ? when(session.ended_at) : null],
        ["Length", callLength(session) === "—" ? null : callLength(session)],
        ["Direction", session.routing && session.routing.direction],
        ["Mode", session.mode],
        ["Carrier ids", carrierIds(session)],
        ["Metadata", tags(session.metadata)],
        ["End reason", session.end_reason],
      ])),
      recordings.data.length ? trackPlayers(recordings.data)
        : h("p", { class: "card empty" }, "This call has no recordings yet."),
      keyHelp());
  }

  async function recordingView(id) {
    const rec = await api("/v1/recordings/" + encodeURIComponent(id));
    return h("div", {},
      h("a", { href: "#/recordings", class: "back" }, "← Recordings"),
      h("div", { class: "page-head" }, h("div", {},
        h("h1", { tabindex: "-1" }, (CHANNEL_NAMES[rec.channel] || rec.channel) + " recording"),
        h("p", { class: "muted mono" }, rec.id)),
        h("a", { href: "#/calls/" + rec.session_id, class: "button" }, "Open the call")),
      player(rec),
      keyHelp());
  }

  function keyHelp() {
    return h("p", { class: "keys hide-narrow" }, "Keys: ", h("kbd", {}, "Space"), " play or pause · ",
      h("kbd", {}, "←"), " ", h("kbd", {}, "→"), " 5 s · ", h("kbd", {}, "J"), " ", h("kbd", {}, "L"),
      " 15 s · ", h("kbd", {}, "<"), " ", h("kbd", {}, ">"), " speed");
  }

  function stopPlayers() {
    for (const p of players) p.destroy();
    players = [];
    activePlayer = null;
  }

  function player(rec) {
    const name = CHANNEL_NAMES[rec.channel] || rec.channel;
    const headingId = "player-" + rec.id;
    const box = h("section", { class: "player", "aria-labelledby": headingId, "data-recording": rec.id, "data-channel": rec.channel });
    const head = h("div", { class: "player-head" },
      h("h2", { id: headingId }, name),
      h("span", { class: "muted" }, rec.duration ? clock(rec.duration) : "", " ", pill(rec.status)));
    box.append(head);
    if (rec.status !== "ready") {
      box.append(h("p", { class: "muted" }, rec.status === "processing"
        ? "Still processing; reload in a moment." : "No audio to play (" + rec.status + ")."));
      return box;
    }

    const duration = () => (Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : rec.duration || 0);
    const audio = h("audio", { preload: "none" });
    const canvas = h("canvas", { "aria-hidden": "true" });
    const wave = h("div", {
      class: "wave", role: "slider", tabindex: "0", "aria-label": name + " position",
      "aria-valuemin": "0", "aria-valuemax": String(Math.round(rec.duration || 0)), "aria-valuenow": "0",
      "aria-valuetext": "0:00 of " + clock(rec.duration),
    }, canvas);
    const playButton = h("button", { type: "button", class: "play", "aria-label": "Play " + name }, icon("play"));
    const time = h("span", { class: "time", "aria-hidden": "true" }, "0:00 / " + clock(rec.duration));
    const speedId = "speed-" + rec.id;
    const speed = h("select", { id: speedId },
      SPEEDS.map((s) => h("option", { value: String(s), selected: s === 1 }, s + "×")));
    const download = h("button", { type: "button" }, "Download");
    const expiryId = "expiry-" + rec.id;
    const expiry = h("select", { id: expiryId, "aria-label": "Link lasts" },
      SHARE_CHOICES.map(([v, text]) => h("option", { value: v }, text)));
    const copy = h("button", { type: "button" }, "Copy link");
    const shareOut = h("input", { type: "text", readonly: true, "aria-label": "Playback link for " + name });
    const madeLinks = h("ul", { class: "links", "aria-label": "Links made here" });
    const share = h("div", { class: "share", hidden: true }, shareOut);
    box.append(wave,
      h("div", { class: "controls" }, playButton, time,
        h("span", { class: "spacer" }),
        h("div", { class: "speed" }, h("label", { for: speedId }, "Speed"), speed)),
      h("div", { class: "actions" }, download,
        h("span", { class: "spacer" }),
        h("div", { class: "link-maker" }, expiry, copy)),
      share, madeLinks, audio);

    let peaks = null;
    let linkPromise = null;
    let frame = 0;
    let destroyed = false;

    function playbackUrl() {
      if (!linkPromise) {
        linkPromise = api("/v1/recordings/" + rec.id + "/links", {
          method: "POST", body: { expires_in: PLAY_LINK_SECONDS, disposition: "inline" },
        }).then((link) => link.url).catch((error) => {
          linkPromise = null;
          throw error;
        });
      }
      return linkPromise;
    }

    async function ensureSource() {
      if (!audio.src) {
        // Metadata only until played: a seek before playing then reads from the seek point
        // (a Range request) instead of the whole call from its start.
        audio.preload = "metadata";
        audio.src = await playbackUrl();
      }
    }

    async function toggle() {
      activePlayer = api_;
      try {
        await ensureSource();
        if (audio.paused) await audio.play();
        else audio.pause();
      } catch (error) {
        toast("Cannot play: " + error.message);
      }
    }

    async function seekTo(seconds) {
      activePlayer = api_;
      const total = duration();
      const target = Math.max(0, Math.min(total, seconds));
      try {
        await ensureSource();
      } catch (error) {
        toast("Cannot play: " + error.message);
        return;
      }
      if (audio.readyState === 0) {
        await new Promise((resolve) => audio.addEventListener("loadedmetadata", resolve, { once: true }));
      }
      audio.currentTime = target;
      update();
    }

    function update() {
      const now = audio.currentTime || 0;
      const total = duration();
      time.textContent = clock(now) + " / " + clock(total);
      wave.setAttribute("aria-valuenow", String(Math.round(now)));
      wave.setAttribute("aria-valuemax", String(Math.round(total)));
      wave.setAttribute("aria-valuetext", clock(now) + " of " + clock(total));
      draw();
    }

    function draw() {
      const rect = canvas.getBoundingClientRect();
      if (!rect.width) return;
      const ratio = window.devicePixelRatio || 1;
      canvas.width = Math.round(rect.width * ratio);
      canvas.height = Math.round(rect.height * ratio);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, rect.width, rect.height);
      const styles = getComputedStyle(document.documentElement);
      const played = styles.getPropertyValue("--wave-played").trim();
      const rest = styles.getPropertyValue("--wave").trim();
      const total = duration();
      const at = total ? (audio.currentTime || 0) / total : 0;
      const bar = 3, gap = 1;
      const count = Math.max(1, Math.floor(rect.width / (bar + gap)));
      const mid = rect.height / 2;
      let loudest = 1;
      if (peaks) for (const v of peaks.data) loudest = Math.max(loudest, v);
      // Quiet calls are scaled up (at most 6×) so that their shape is visible.
      const gain = peaks ? Math.min(6, 255 / loudest) : 1;
      for (let i = 0; i < count; i++) {
        let value = 0.06;
        if (peaks && peaks.data.length) {
          const from = Math.floor((i / count) * peaks.data.length);
          const to = Math.max(from + 1, Math.floor(((i + 1) / count) * peaks.data.length));
          let m = 0;
          for (let j = from; j < to; j++) m = Math.max(m, peaks.data[j]);
          value = Math.max(0.04, Math.min(1, (m * gain) / 255));
        }
        const height = Math.max(2, value * (rect.height - 12));
        ctx.fillStyle = i / count < at ? played : rest;
        ctx.fillRect(i * (bar + gap), mid - height / 2, bar, height);
      }
      if (total) {
        ctx.fillStyle = played;
        ctx.fillRect(Math.min(rect.width - 2, at * rect.width), 4, 2, rect.height - 8);
      }
    }

    function tick() {
      update();
      if (!audio.paused && !destroyed) frame = requestAnimationFrame(tick);
    }

    function positionOf(event) {
      const rect = wave.getBoundingClientRect();
      return Math.max(0, Math.min(1, (event.clientX - rect.left) / rect.width));
    }

    wave.addEventListener("pointerdown", (event) => {
      wave.focus();
      seekTo(positionOf(event) * duration());
    });
    wave.addEventListener("keydown", (event) => {
      const steps = { ArrowLeft: -5, ArrowRight: 5, ArrowDown: -5, ArrowUp: 5, PageDown: -30, PageUp: 30 };
      if (event.key in steps) seekTo((audio.currentTime || 0) + steps[event.key]);
      else if (event.key === "Home") seekTo(0);
      else if (event.key === "End") seekTo(duration());
      else return;
      event.preventDefault();
      event.stopPropagation();
    });
    playButton.addEventListener("click", toggle);
    speed.addEventListener("change", () => {
      audio.playbackRate = Number(speed.value);
      audio.defaultPlaybackRate = audio.playbackRate;
    });
    audio.addEventListener("play", () => {
      for (const other of players) if (other !== api_) other.pause();
      playButton.replaceChildren(icon("pause"));
      playButton.setAttribute("aria-label", "Pause " + name);
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(tick);
    });
    audio.addEventListener("pause", () => {
      playButton.replaceChildren(icon("play"));
      playButton.setAttribute("aria-label", "Play " + name);
      update();
    });
    audio.addEventListener("ended", update);
    audio.addEventListener("seeked", update);
    audio.addEventListener("loadedmetadata", update);
    audio.addEventListener("error", () => {
      if (audio.src) toast("The audio could not be loaded; its link may have been revoked.");
    });

    download.addEventListener("click", async () => {
      try {
        const link = await api("/v1/recordings/" + rec.id + "/links", {
          method: "POST", body: { expires_in: 300, disposition: "attachment" },
        });
        const a = h("a", { href: link.url, download: "" });
        document.body.append(a);
        a.click();
        a.remove();
      } catch (error) {
        toast("Cannot download: " + error.message);
      }
    });

    copy.addEventListener("click", async () => {
      let link;
      try {
        link = await api("/v1/recordings/" + rec.id + "/links", {
          method: "POST", body: { expires_in: Number(expiry.value), disposition: "inline" },
        });
      } catch (error) {
        toast("Cannot make a link: " + error.message);
        return;
      }
      share.hidden = false;
      shareOut.value = link.url;
      let copied = false;
      try {
        await navigator.clipboard.writeText(link.url);
        copied = true;
      } catch (_) {
        shareOut.select();
      }
      toast(copied ? "Link copied. It plays until " + when(link.expires_at) + "."
        : "Link made: copy it from the box.");
      const revoke = h("button", { type: "button", class: "quiet danger", "aria-label": "Revoke the link made " + when(link.created_at) }, "Revoke");
      const item = h("li", { "data-link": link.id },
        h("span", {}, "Link until " + when(link.expires_at)), revoke);
      revoke.addEventListener("click", async () => {
        try {
          await api("/v1/recordings/" + rec.id + "/links/" + link.id, { method: "DELETE" });
          item.replaceChildren(h("span", { class: "muted" }, "Link revoked"));
          if (shareOut.value === link.url) {
            shareOut.value = "";
            share.hidden = true;
          }
          toast("Link revoked: it no longer plays.");
        } catch (error) {
          toast("Cannot revoke: " + error.message);
        }
      });
      madeLinks.append(item);
    });

    const resize = new ResizeObserver(() => draw());
    resize.observe(wave);
    api("/v1/recordings/" + rec.id + "/peaks").then((data) => {
      peaks = data;
      draw();
    }).catch(() => {});

    const api_ = {
      toggle,
      seekBy: (seconds) => seekTo((audio.currentTime || 0) + seconds),
      speedBy(step) {
        const index = Math.max(0, Math.min(SPEEDS.length - 1, SPEEDS.indexOf(Number(speed.value)) + step));
        speed.value = String(SPEEDS[index]);
        speed.dispatchEvent(new Event("change"));
        toast("Speed " + SPEEDS[index] + "×");
      },
      pause: () => audio.pause(),
      destroy() {
        destroyed = true;
        cancelAnimationFrame(frame);
        resize.disconnect();
        audio.pause();
        audio.removeAttribute("src");
        audio.load();
      },
      element: box,
    };
    players.push(api_);
    box.addEventListener("focusin", () => { activePlayer = api_; });
    return box;
  }

  function onShortcut(event) {
    if (!key || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, select, textarea, button, a, [role=slider]")) {
      if (!(event.key === " " && target.closest("[role=slider]"))) return;
    }
    const p = activePlayer || players[0];
    if (!p) return;
    const actions = {
      " ": () => p.toggle(), k: () => p.toggle(),
      ArrowLeft: () => p.seekBy(-5), ArrowRight: () => p.seekBy(5),
      j: () => p.seekBy(-15), l: () => p.seekBy(15),
      "<": () => p.speedBy(-1), ">": () => p.speedBy(1), ",": () => p.speedBy(-1), ".": () => p.speedBy(1),
    };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  }

  // -- webhooks ------------------------------------------------------------------------------

  async function endpointsView(params) {
    let page;
    try {
      page = await api("/v1/webhook_endpoints" + query(listParams(params)));
    } catch (error) {
      if (error.status !== 403) throw error;
      return h("div", { class: "card" }, h("h1", { tabindex: "-1" }, "Webhooks"),
        h("p", {}, "This key lacks the ", h("code", {}, "webhooks:manage"), " scope."));
    }
    const rows = page.data.map((e) => h("tr", {},
      h("td", {}, h("a", { href: "#/webhooks/" + e.id }, e.url), h("div", { class: "muted" }, e.description || "")),
      h("td", { class: "hide-narrow" }, h("div", { class: "tags" }, e.enabled_events.map((t) => h("span", { class: "tag" }, t)))),
      h("td", {}, when(e.created_at))));
    return h("div", {},
      h("div", { class: "page-head" }, h("div", {},
        h("h1", { tabindex: "-1" }, "Webhooks"),
        h("p", { class: "muted" }, "Endpoints that receive this mode's events. Open one to see its deliveries."))),
      h("div", { class: "card" },
        table("Webhook endpoints", [["Endpoint"], ["Events", "hide-narrow"], ["Created"]], rows, "No webhook endpoints."),
        pager("/webhooks", params, page)));
  }

  async function deliveriesView(id, params) {
    const [endpoint, page] = await Promise.all([
      api("/v1/webhook_endpoints/" + encodeURIComponent(id)),
      api("/v1/webhook_endpoints/" + encodeURIComponent(id) + "/deliveries" + query({
        ...listParams(params), status: params.get("status"),
      })),
    ]);
    const rows = page.data.map((d) => {
      const last = d.attempts.length ? d.attempts[d.attempts.length - 1] : null;
      return h("tr", {},
        h("td", {}, d.event_type, h("div", { class: "muted mono" }, d.event_id)),
        h("td", {}, pill(d.status)),
        h("td", {}, String(d.attempt_count)),
        h("td", { class: "hide-narrow" }, last ? [last.response_status || last.category || "—",
          " · ", last.latency_ms + " ms"] : "—"),
        h("td", {}, when(d.created_at)));
    });
    return h("div", {},
      h("a", { href: "#/webhooks", class: "back" }, "← Webhooks"),
      h("div", { class: "page-head" }, h("div", {},
        h("h1", { tabindex: "-1" }, "Deliveries"),
        h("p", { class: "muted mono" }, endpoint.url))),
      h("div", { class: "card" }, filterForm("/webhooks/" + id, [
        selectField("status", "Status", [["", "Any"], ["pending", "Pending"], ["succeeded", "Succeeded"], ["failed", "Failed"], ["canceled", "Canceled"]], params.get("status")),
      ], params)),
      h("div", { class: "card" },
        table("Deliveries", [["Event"], ["Status"], ["Attempts"], ["Last answer", "hide-narrow"], ["Created"]], rows, "No deliveries."),
        pager("/webhooks/" + id, params, page)));
  }

  // -- start ---------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#sign-in-form").addEventListener("submit", signIn);
    $("#sign-out").addEventListener("click", () => signOut());
    document.addEventListener("keydown", onShortcut);
    window.addEventListener("hashchange", route);
    route();
  });
})();
