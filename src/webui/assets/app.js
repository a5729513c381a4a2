// devenv ui: the page's script, plain JavaScript embedded in the binary.
// Everything arrives over one server-sent-events stream; buttons POST with
// the token header. Text from services is only ever set as textContent.
"use strict";

const TOKEN = document.querySelector('meta[name="token"]').content;
const KEEP = 5000;       // lines kept in the page
const SHOWN = 2000;      // lines drawn at once
const $ = (sel) => document.querySelector(sel);

let services = [];
let timeline = null;
let selected = 0;
let lines = [];          // sorted by time
const seqs = new Set();
let drawnUpTo = -1;      // index in `lines` of the last line drawn, or -1
let filter = { service: "", q: "" };
let follow = true;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function ago(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (isNaN(t)) return "";
  let s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m " + (s % 60) + "s";
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + "h " + (m % 60) + "m";
  return Math.floor(hr / 24) + "d";
}

// ---------------------------------------------------------------- actions

async function post(action, body) {
  const res = await fetch("/api/do/" + action, {
    method: "POST",
    headers: { "content-type": "application/json", "x-devenv-token": TOKEN },
    body: JSON.stringify(body || {}),
  });
  if (!res.ok) throw new Error(res.status + " " + (await res.text()));
  return res.json();
}

async function act(action, body, button) {
  const what = action + (body && body.service ? " " + body.service : "") + (body && body.name ? " " + body.name : "");
  note({ key: "", status: what + " …", kind: "running" });
  if (button) button.disabled = true;
  try {
    const answer = await post(action, body);
    note({ key: "", status: answer.message, kind: answer.ok ? "answer-ok" : "answer-failed" });
    if (answer.tests) showTests(answer);
    return answer;
  } catch (e) {
    note({ key: "", status: what + ": " + e.message, kind: "answer-failed" });
  } finally {
    if (button) button.disabled = false;
  }
}

function note(a) {
  const list = $("#activity");
  const li = h("li", { class: a.kind }, a.key ? h("span", { class: "k", text: a.key }) : null, a.status);
  list.append(li);
  while (list.children.length > 200) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

function showTests(answer) {
  const t = answer.tests;
  const box = $("#tests");
  box.hidden = false;
  box.className = "tests " + (answer.ok ? "pass" : "fail");
  box.replaceChildren(
    h("div", { class: "counts" },
      h("b", { text: answer.ok ? "tests passed" : "tests failed" }),
      h("span", { class: "p", text: (t.tests - t.failures - t.errors - t.skipped) + " passed" }),
      h("span", { class: "f", text: t.failures + " failed" }),
      h("span", { text: t.errors + " errors" }),
      h("span", { text: t.skipped + " skipped" })),
    t.failed.length ? h("ul", {}, t.failed.map((f) => h("li", { text: f }))) : null);
}

// --------------------------------------------------------------- services

function health(s) {
  if (s.state === "running" && s.ready) return "ready";
  if (s.state === "running" || s.state === "restarting" || s.state === "created") return "starting";
  return "down";
}

function badge(s) {
  const hl = health(s);
  const word = hl === "ready" ? "ready" : s.state === "running" ? "starting" : s.state;
  return h("span", { class: "badge " + hl, text: word });
}

function serviceRow(s, i) {
  const running = s.state === "running";
  const facts = [];
  if (running && s.ready && s.ready_since) facts.push(h("span", { class: "since", "data-since": s.ready_since }, "ready for ", h("b", { text: ago(s.ready_since) })));
  else if (running && s.started) facts.push(h("span", { class: "since", "data-since": s.started }, "up ", h("b", { text: ago(s.started) })));
  if (s.health) facts.push(h("span", {}, "health ", h("b", { text: s.health })));
  facts.push(h("span", {}, "restarts ", h("b", { class: "restarts", text: String(s.restarts) })));
  // A clean exit (a stop, a restart) is no alarm.
  if (s.last_exit) facts.push(h("span", { class: /code 0\b/.test(s.last_exit) ? "" : "exit", text: (running ? "last run " : "") + s.last_exit }));
  if (s.oom_killed) facts.push(h("span", { class: "exit", text: "OOM killed" }));

  const links = [];
  for (const u of s.urls) {
    links.push(u.url.startsWith("http")
      ? h("a", { href: u.url, target: "_blank", rel: "noopener noreferrer", title: u.url }, u.label + " ↗")
      : h("span", { class: "port", title: u.label }, u.label + " " + u.url));
  }
  const conn = s.connection.length
    ? h("div", { class: "conn", "data-service": s.service },
        s.connection.filter((d) => d.key !== "url").map((d) => h("span", { "data-key": d.key }, d.key + " ", h("b", { text: d.value }))),
        h("button", { type: "button", class: "small ghost", title: "show the secrets (this machine only)", onclick: (e) => reveal(s.service, e.target) }, "reveal"))
    : null;

  const buttons = h("div", { class: "buttons" },
    h("button", { type: "button", class: "small", "data-action": "restart", disabled: s.state === "not created", onclick: (e) => act("restart", { service: s.service }, e.target) }, "Restart"),
    running
      ? h("button", { type: "button", class: "small danger", "data-action": "stop", onclick: (e) => act("stop", { service: s.service }, e.target) }, "Stop")
      : h("button", { type: "button", class: "small", "data-action": "start", disabled: s.state === "not created", onclick: (e) => act("start", { service: s.service }, e.target) }, "Start"),
    s.rebuild ? h("button", { type: "button", class: "small", "data-action": "rebuild", onclick: (e) => act("rebuild", { service: s.service }, e.target) }, "Rebuild") : null,
    s.migrate ? h("button", { type: "button", class: "small", "data-action": "migrate", onclick: (e) => act("migrate", { service: s.service }, e.target) }, "Migrate") : null,
    s.seed ? h("button", { type: "button", class: "small", "data-action": "seed", onclick: (e) => act("seed", { service: s.service }, e.target) }, "Seed") : null,
    h("button", { type: "button", class: "small ghost", "data-action": "logs", title: "only this service's logs", onclick: () => showLogsOf(s.service) }, "Logs"));

  return h("div", {
    class: "svc" + (i === selected ? " selected" : ""), role: "listitem",
    dataset: { service: s.service, state: s.state, ready: String(s.ready), health: health(s) },
    onclick: () => { selected = i; markSelected(); },
  },
    h("span", { class: "mark" }),
    h("div", {}, h("div", { class: "name c" + s.colour, text: s.service }), badge(s)),
    h("div", {}, h("div", { class: "image", text: s.image }), h("div", { class: "facts" }, facts),
      links.length ? h("div", { class: "links" }, links) : null, conn),
    buttons);
}

function renderServices() {
  const box = $("#services");
  const focused = document.activeElement;
  const keep = focused && focused.closest && focused.closest(".svc")
    ? [focused.closest(".svc").dataset.service, focused.dataset.action] : null;
  box.replaceChildren(...services.map(serviceRow));
  if (keep) {
    const again = box.querySelector(`.svc[data-service="${CSS.escape(keep[0])}"] [data-action="${keep[1]}"]`);
    if (again) again.focus();
  }
  const ready = services.filter((s) => health(s) === "ready").length;
  $("#summary").replaceChildren(h("b", { text: ready + "/" + services.length }), " ready");
  const sel = $("#log-service");
  const have = new Set([...sel.options].map((o) => o.value));
  for (const s of services) if (!have.has(s.service)) sel.append(h("option", { value: s.service, text: s.service }));
}

function markSelected() {
  document.querySelectorAll(".svc").forEach((el, i) => el.classList.toggle("selected", i === selected));
  const el = document.querySelectorAll(".svc")[selected];
  if (el) el.scrollIntoView({ block: "nearest" });
}

async function reveal(service, button) {
  try {
    const details = await post("reveal", { service });
    const box = document.querySelector(`.conn[data-service="${CSS.escape(service)}"]`);
    for (const d of details) {
      const b = box && box.querySelector(`[data-key="${d.key}"] b`);
      if (b) b.textContent = d.value;
    }
    button.remove();
  } catch (e) {
    note({ key: service, status: "reveal: " + e.message, kind: "failed" });
  }
}

// --------------------------------------------------------------- timeline

const PHASES = [["build", "build"], ["create", "create"], ["deps", "waiting on dependencies"], ["start", "start"], ["wait", "until ready"], ["hooks", "hooks"], ["sync", "sync"]];

function renderTimeline() {
  const box = $("#timeline");
  if (!timeline || !timeline.marks || !timeline.marks.length) return;
  const keys = [];
  const byKey = {};
  for (const m of timeline.marks) {
    if (!byKey[m.key]) { byKey[m.key] = []; keys.push(m.key); }
    byKey[m.key].push(m);
  }
  const total = Math.max(timeline.took, 1);
  const pct = (ms) => (100 * ms / total).toFixed(3) + "%";
  const rows = keys.map((key) => {
    const marks = byKey[key];
    const first = marks[0].at;
    const last = marks[marks.length - 1];
    const end = last.phase === "done" || last.phase === "failed" ? last.at : timeline.took;
    const bar = h("div", { class: "tl-bar", "data-service": key, title: key });
    bar.style.left = pct(first);
    bar.style.width = pct(Math.max(end - first, 0));
    for (let i = 0; i < marks.length; i++) {
      const m = marks[i];
      if (m.phase === "done" || m.phase === "failed") break;
      const until = i + 1 < marks.length ? marks[i + 1].at : end;
      const seg = h("div", { class: "tl-seg ph-" + m.phase, title: `${m.status}: ${until - m.at} ms` });
      seg.style.flexGrow = String(Math.max(until - m.at, 1));
      bar.append(seg);
    }
    const failed = last.phase === "failed";
    return h("div", { class: "tl-row" },
      h("span", { class: "tl-name c" + colourOf(key), text: key }),
      h("div", { class: "tl-track" }, bar),
      h("span", { class: "tl-took" + (failed ? " exit" : ""), text: failed ? "failed" : ((end - first) / 1000).toFixed(2) + "s" }));
  });
  const ticks = h("div", { class: "ticks" }, [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { text: (total * f / 1000).toFixed(1) + "s" })));
  box.replaceChildren(...rows, h("div", { class: "tl-axis" }, h("span"), ticks, h("span")));
  const when = new Date(timeline.started);
  $("#timeline-meta").textContent = `${when.toLocaleString()} · ${(timeline.took / 1000).toFixed(2)}s · ${timeline.ok ? "all ready" : "did not finish"}`;
  $("#legend").replaceChildren(...PHASES.map(([p, label]) => h("span", {}, h("i", { class: "ph-" + p }), label)));
}

function colourOf(key) {
  const s = services.find((x) => x.service === key);
  return s ? s.colour : 4;
}

// ------------------------------------------------------------------- logs

const ANSI = /\x1b\[([0-9;]*)m/g;

function ansi(text, parent) {
  let at = 0, cls = [];
  const push = (s) => { if (s) parent.append(cls.length ? h("span", { class: cls.join(" "), text: s }) : document.createTextNode(s)); };
  for (const m of text.matchAll(ANSI)) {
    push(text.slice(at, m.index));
    at = m.index + m[0].length;
    for (const code of (m[1] || "0").split(";").map(Number)) {
      if (code === 0) cls = [];
      else if (code === 1) cls.push("a-bold");
      else if (code === 2) cls.push("a-dim");
      else if (code === 39) cls = cls.filter((c) => !/^a3/.test(c));
      else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) {
        cls = cls.filter((c) => !/^a3/.test(c));
        cls.push("a" + (code >= 90 ? code - 60 : code));
      }
    }
  }
  push(text.slice(at));
}

function matches(l) {
  if (filter.service && l.service !== filter.service) return false;
  if (filter.q && !l.text.toLowerCase().includes(filter.q)) return false;
  return true;
}

function lineEl(l) {
  const d = new Date(l.t / 1000);
  const t = d.toTimeString().slice(0, 8);
  const m = h("span", { class: "m" });
  ansi(l.text, m);
  return h("div", { class: "line" + (l.event ? " event" : ""), dataset: { service: l.service } },
    h("span", { class: "t", text: t }),
    h("span", { class: "s c" + colourOf(l.service), text: l.service }),
    m);
}

function addLines(batch) {
  let ordered = true;
  const last = lines.length ? lines[lines.length - 1].t : -Infinity;
  let latest = last;
  for (const l of batch) {
    if (seqs.has(l.seq)) continue;
    seqs.add(l.seq);
    if (l.t < latest) ordered = false;
    latest = Math.max(latest, l.t);
    lines.push(l);
  }
  if (!ordered) {
    lines.sort((a, b) => a.t - b.t || a.seq - b.seq);
  }
  if (lines.length > KEEP) {
    for (const l of lines.splice(0, lines.length - KEEP)) seqs.delete(l.seq);
    ordered = false;
  }
  if (ordered) appendLogs(); else drawLogs();
}

function drawLogs() {
  const box = $("#logs");
  const shown = lines.filter(matches).slice(-SHOWN);
  box.replaceChildren(...shown.map(lineEl));
  drawnUpTo = lines.length - 1;
  count(shown.length);
  if (follow) box.scrollTop = box.scrollHeight;
}

function appendLogs() {
  const box = $("#logs");
  const fresh = lines.slice(drawnUpTo + 1).filter(matches);
  drawnUpTo = lines.length - 1;
  if (!fresh.length) return;
  box.append(...fresh.map(lineEl));
  while (box.children.length > SHOWN) box.firstChild.remove();
  count(box.children.length);
  if (follow) box.scrollTop = box.scrollHeight;
}

function count(n) {
  $("#log-count").textContent = n + " of " + lines.length + " lines";
}

function showLogsOf(service) {
  filter.service = filter.service === service ? "" : service;
  $("#log-service").value = filter.service;
  drawLogs();
}

// ------------------------------------------------------------------ wiring

function connect() {
  const es = new EventSource("/api/events");
  const live = $("#live");
  es.onopen = () => { live.className = "live on"; $("#live-text").textContent = "live"; };
  es.onerror = () => { live.className = "live off"; $("#live-text").textContent = "reconnecting"; };
  es.addEventListener("state", (e) => { services = JSON.parse(e.data); selected = Math.min(selected, Math.max(services.length - 1, 0)); renderServices(); });
  es.addEventListener("logs", (e) => addLines(JSON.parse(e.data)));
  es.addEventListener("timeline", (e) => { timeline = JSON.parse(e.data); renderTimeline(); });
  es.addEventListener("activity", (e) => note(JSON.parse(e.data)));
}

async function loadMenus() {
  try {
    const res = await fetch("/api/state");
    const o = await res.json();
    const cmds = $("#commands");
    for (const c of o.commands) cmds.append(h("option", { value: c, text: c }));
    if (!o.commands.length) cmds.hidden = true;
    const rs = $("#restore");
    rs.replaceChildren(h("option", { value: "", text: "Restore…" }), ...o.snapshots.map((s) => h("option", { value: s, text: s })));
    if (!o.test) $("#run-test").hidden = true;
  } catch (e) { /* the menus stay empty */ }
}

function wire() {
  document.querySelectorAll("[data-global]").forEach((b) => b.addEventListener("click", async () => {
    const action = b.dataset.global;
    const answer = await act(action, {}, b);
    if (action === "snapshot" && answer && answer.ok) loadMenus();
  }));
  $("#restore").addEventListener("change", async (e) => {
    const name = e.target.value;
    if (!name) return;
    if (confirm(`Replace the database with snapshot “${name}”?`)) await act("restore", { name }, e.target);
    e.target.value = "";
  });
  $("#commands").addEventListener("change", async (e) => {
    const name = e.target.value;
    if (name) await act("command", { name }, e.target);
    e.target.value = "";
  });
  $("#log-service").addEventListener("change", (e) => { filter.service = e.target.value; drawLogs(); });
  $("#log-search").addEventListener("input", (e) => { filter.q = e.target.value.toLowerCase(); drawLogs(); });
  $("#log-follow").addEventListener("change", (e) => { follow = e.target.checked; if (follow) drawLogs(); });
  $("#logs").addEventListener("scroll", (e) => {
    const box = e.target;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 30;
    if (atBottom !== follow) { follow = atBottom; $("#log-follow").checked = follow; }
  });
  $("#help-button").addEventListener("click", () => $("#help").showModal());
  document.addEventListener("keydown", key);
  setInterval(() => document.querySelectorAll(".since").forEach((el) => {
    const b = el.querySelector("b");
    if (b) b.textContent = ago(el.dataset.since);
  }), 1000);
}

function key(e) {
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName);
  if (e.key === "Escape") { if (typing) e.target.blur(); return; }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  const s = services[selected];
  switch (e.key) {
    case "j": case "ArrowDown": selected = Math.min(selected + 1, services.length - 1); markSelected(); break;
    case "k": case "ArrowUp": selected = Math.max(selected - 1, 0); markSelected(); break;
    case "r": if (s) act("restart", { service: s.service }); break;
    case "s": if (s) act(s.state === "running" ? "stop" : "start", { service: s.service }); break;
    case "l": if (s) showLogsOf(s.service); break;
    case "/": $("#log-search").focus(); break;
    case "f": $("#log-follow").click(); break;
    case "t": if (!$("#run-test").hidden) $("#run-test").click(); break;
    case "?": $("#help").showModal(); break;
    default: return;
  }
  e.preventDefault();
}

wire();
connect();
loadMenus();
