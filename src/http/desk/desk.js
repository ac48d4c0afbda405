// The desk: the wire from /events (server-sent events), filtered by the server
// with the parameters of /events; a story's versions from /api/story/<id>; the
// counters from /api/stats. Errors are kept in window.deskErrors (tests read it).
"use strict";

window.deskErrors = [];
window.addEventListener("error", (e) => window.deskErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.deskErrors.push(String(e.reason)));
const consoleError = console.error.bind(console);
console.error = (...args) => { window.deskErrors.push(args.map(String).join(" ")); consoleError(...args); };

const LAST = 200;         // records replayed when the page opens or a filter changes
const MAX_ITEMS = 500;    // items kept on the page
const MAX_SEEN = 20000;   // versions remembered so that a replay does not list one twice
const FLUSH_MS = 400;     // how long records wait to be put on the page together (one redraw)
const MAX_RATE = 100;     // briefs the server sends a second (max_rate), past a first burst of 5 s' worth
const FIELD_NAMES = { q: "text", person: "person", place: "place", org: "organization", dateline: "dateline" };

const $ = (sel) => document.querySelector(sel);
const state = { filters: [], seen: new Set(), pending: [], unshown: 0, unshownShown: -1, flush: null, wire: null, rejects: null, prev: null, opener: null };

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function ago(t) {
  const s = Math.round((Date.now() - t.getTime()) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function when(stamp) {
  if (!stamp) return null;
  const t = new Date(stamp);
  if (Number.isNaN(t.getTime())) return el("span", { text: stamp });
  return el("time", { datetime: stamp, title: stamp, text: `${t.toLocaleString()} (${ago(t)})` });
}

function refreshTimes() {
  for (const t of document.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    t.textContent = `${d.toLocaleString()} (${ago(d)})`;
  }
}

// --- filters: the server applies them (the same rules as /events and tail) ---

function addFilter(key, value) {
  value = value.trim();
  if (!value || state.filters.some((f) => f.key === key && f.value === value)) return;
  state.filters.push({ key, value });
  renderFilters();
  openWire();
}

function renderFilters() {
  const box = $("#filters");
  box.replaceChildren(...state.filters.map((f, i) => {
    const b = el("button", { type: "button", class: "chip filter", "data-key": f.key, text: `${FIELD_NAMES[f.key]}: ${f.value}` });
    b.addEventListener("click", () => { state.filters.splice(i, 1); renderFilters(); openWire(); });
    return b;
  }));
}

function query() {
  const p = new URLSearchParams();
  for (const f of state.filters) p.append(f.key, f.value);
  return p;
}

// --- the wire ---

function setConn(text, live) {
  const c = $("#conn");
  c.textContent = text;
  c.classList.toggle("live", live);
}

function openWire() {
  if (state.wire) state.wire.close();
  state.seen.clear();
  state.pending = [];
  state.unshown = 0;
  showUnshown();
  $("#wire").replaceChildren();
  const p = query();
  p.set("last", String(LAST));
  p.set("view", "brief");
  p.set("max_rate", String(MAX_RATE));
  const es = new EventSource(`/events?${p}`);
  // view=brief: the records come together, as one array per event. Faster than
  // anyone reads (max_rate), the server sends the newest and counts the others.
  es.addEventListener("records", (ev) => { for (const r of JSON.parse(ev.data)) addRecord(r); });
  es.addEventListener("skipped", (ev) => { state.unshown += JSON.parse(ev.data).records; later(); });
  es.onopen = () => setConn("live", true);
  // EventSource reconnects by itself, sending Last-Event-ID: the server resumes.
  es.onerror = () => setConn("reconnecting…", false);
  state.wire = es;
}

function chip(kind, key, name) {
  const b = el("button", { type: "button", class: `chip ${kind}`, "data-key": key, text: name, title: `Only ${FIELD_NAMES[key]} ${name}` });
  b.addEventListener("click", (e) => { e.stopPropagation(); addFilter(key, name); });
  return b;
}

function chips(r) {
  const box = el("div", { class: "chips" });
  for (const p of r.people || []) box.append(chip("person", "person", p.name));
  for (const p of r.places || []) box.append(chip("place", "place", p.name));
  for (const o of r.organizations || []) box.append(chip("org", "org", o.name));
  return box.childElementCount ? box : null;
}

function firstQuote(r) {
  const q = (r.quotes || [])[0];
  if (!q) return null;
  return el("blockquote", {}, `“${q.text}”`, q.speaker ? el("span", { class: "speaker", text: ` — ${q.speaker}` }) : null);
}

function item(r) {
  const rev = r.revision > 1 ? el("span", { class: "rev", text: `rev ${r.revision}` }) : null;
  const meta = el("div", { class: "meta" });
  if (r.dateline) meta.append(el("strong", { text: r.dateline }), " · ");
  if (r.posted_at) meta.append("posted ", when(r.posted_at));
  if (r.updated_at) meta.append(" · updated ", when(r.updated_at));
  const item = el("article", { class: "item", tabindex: "0", "data-article": r.article_id, "data-rev": String(r.revision || 1) },
    el("h3", {}, r.title || "(no title)", rev), meta, chips(r), firstQuote(r));
  const open = () => openStory(r.article_id, item);
  item.addEventListener("click", open);
  item.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target === item) open(); });
  return item;
}

// Records are put on the page together, at most every FLUSH_MS: one layout for
// a burst instead of one per record.
function addRecord(r) {
  // One item per version: a replay after a reconnect never doubles one.
  const key = `${r.article_id}/${r.revision}`;
  if (state.seen.has(key)) return;
  state.seen.add(key);
  // Bounded: the oldest keys go (a Set iterates in insertion order).
  for (const k of state.seen) { if (state.seen.size <= MAX_SEEN) break; state.seen.delete(k); }
  state.pending.push(r);
  // More than the page keeps, waiting for one redraw: the oldest are counted.
  if (state.pending.length > MAX_ITEMS) { state.pending.shift(); state.unshown++; }
  later();
}

// What changed goes on the page with the next flush (one redraw).
function later() { if (!state.flush) state.flush = setTimeout(flush, FLUSH_MS); }

function showUnshown() {
  // Untouched when unchanged: no redraw for nothing.
  if (state.unshown === state.unshownShown) return;
  state.unshownShown = state.unshown;
  $("#unshown").hidden = state.unshown === 0;
  $("#unshown").textContent = `${state.unshown.toLocaleString()} versions landed faster than the wire shows (newest shown; filter to narrow, or see /api/story)`;
}

function flush() {
  state.flush = null;
  const batch = state.pending;
  state.pending = [];
  showUnshown();
  if (!batch.length) return;
  const box = document.createDocumentFragment();
  for (let i = batch.length - 1; i >= 0; i--) box.append(item(batch[i]));
  const wire = $("#wire");
  wire.prepend(box);
  while (wire.childElementCount > MAX_ITEMS) wire.lastElementChild.remove();
}

// --- a story: every version, the changes of each update ---

function tokens(s) { return s.split(/(\s+)/).filter((t) => t !== ""); }

// A word diff (longest common subsequence): <del> and <ins> runs.
function wordDiff(before, after) {
  const a = tokens(before), b = tokens(after);
  const box = el("span", { class: "para diff" });
  if (a.length * b.length > 4e6) { box.append(el("del", { text: before }), " ", el("ins", { text: after })); return box; }
  const n = a.length, m = b.length, L = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  let i = 0, j = 0;
  const run = (tag, text) => { const last = box.lastChild; if (last && last.nodeName.toLowerCase() === tag) last.textContent += text; else box.append(tag === "#text" ? text : el(tag, { text })); };
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { box.append(a[i]); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { run("ins", b[j]); j++; }
    else { run("del", a[i]); i++; }
  }
  return box;
}

// A paragraph with its quotes marked (`paragraph` counts 0 for the lede, then 1..).
function quoted(text, index, quotes) {
  const p = el("p");
  let rest = text;
  for (const q of quotes.filter((q) => q.paragraph === index)) {
    const at = rest.indexOf(q.text);
    if (at < 0) continue;
    p.append(rest.slice(0, at), el("mark", { class: "quote" }, q.text, q.speaker ? el("span", { class: "speaker", text: ` — ${q.speaker}` }) : null));
    rest = rest.slice(at + q.text.length);
  }
  p.append(rest);
  return p;
}

function paragraphs(r) { return (r.sections || []).flatMap((s) => s.paragraphs || []); }

function names(label, d) {
  if (!d || (!d.added.length && !d.removed.length)) return null;
  return el("p", {}, `${label}: `, ...d.added.map((n) => el("ins", { text: `+ ${n} ` })), ...d.removed.map((n) => el("del", { text: `− ${n} ` })));
}

function version(v) {
  const r = v.record, c = r.changes;
  const box = el("div", { class: "version", "data-rev": String(r.revision || 1) },
    el("h4", {}, `rev ${r.revision || 1}`, " · ", when(r.updated_at || r.posted_at) || "", r.emitted_at ? ` · emitted ${new Date(r.emitted_at).toLocaleString()}` : ""));
  if (!c) { box.append(el("p", { class: "meta", text: "First version." })); return box; }
  const paras = paragraphs(r);
  if (c.lede_changed) box.append(el("h5", { text: "Lede" }), wordDiff(c.lede_before || "", r.lede || ""));
  for (const i of c.paragraphs.added) box.append(el("ins", { class: "para added-para", text: paras[i - 1] || "" }));
  for (const t of c.paragraphs.removed) box.append(el("del", { class: "para removed-para", text: t }));
  for (const e of c.paragraphs.edited) box.append(wordDiff(e.before, e.after));
  box.append(names("People", c.people), names("Places", c.places), names("Organizations", c.organizations), names("Headings", c.headings));
  if (c.quotes && c.quotes.added.length) box.append(el("p", {}, "Quotes added: ", ...c.quotes.added.map((q) => el("ins", { text: `“${q}” ` }))));
  box.append(el("p", { class: "meta", text: `${c.word_count_delta >= 0 ? "+" : ""}${c.word_count_delta} words` }));
  return box;
}

function whole(r) {
  const quotes = r.quotes || [];
  const meta = el("div", { class: "meta" });
  if (r.dateline) meta.append(el("strong", { text: r.dateline }), " · ");
  if (r.posted_at) meta.append("posted ", when(r.posted_at));
  if (r.updated_at) meta.append(" · updated ", when(r.updated_at));
  const body = el("div", {}, el("h2", { id: "story-title", text: r.title || "(no title)" }), meta, chips(r), quoted(r.lede || "", 0, quotes));
  let n = 0;
  for (const s of r.sections || []) {
    if (s.heading) body.append(el("h4", { text: s.heading }));
    for (const p of s.paragraphs || []) body.append(quoted(p, ++n, quotes));
  }
  return body;
}

async function openStory(id, opener) {
  state.opener = opener || null;
  const panel = $("#story"), out = $("#story-body");
  out.replaceChildren(el("p", { text: "Loading…" }));
  panel.hidden = false;
  panel.focus();
  try {
    const res = await fetch(`/api/story/${encodeURIComponent(id)}`);
    const data = await res.json();
    if (!res.ok) { out.replaceChildren(el("p", { text: data.error || res.statusText })); return; }
    const versions = data.versions;
    const latest = versions[versions.length - 1].record;
    out.replaceChildren(whole(latest), el("h3", { text: `Versions (${versions.length})` }), ...versions.slice().reverse().map(version));
  } catch (e) {
    out.replaceChildren(el("p", { text: `Cannot load the story: ${e}` }));
  }
}

function closeStory() {
  $("#story").hidden = true;
  if (state.opener && state.opener.isConnected) state.opener.focus();
}

// --- the desk's health ---

function dl(box, rows) { box.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })])); }

async function poll() {
  try {
    const res = await fetch("/api/stats");
    const s = await res.json();
    const prev = state.prev;
    const rate = prev && s.now > prev.now ? ((s.files_seen - prev.files_seen) / (s.now - prev.now)).toFixed(1) : "–";
    state.prev = s;
    dl($("#counters"), [["files/s", rate], ["files seen", s.files_seen], ["emitted", s.emitted], ["updates", s.updates], ["duplicates", s.duplicates], ["stale", s.stale], ["rejected", s.rejected], ["unchanged", s.unchanged], ["commits", s.commits],
      ["last commit", s.last_commit ? `${new Date(s.last_commit * 1000).toLocaleTimeString()} (${ago(new Date(s.last_commit * 1000))})` : "none yet"]]);
    dl($("#queues"), Object.entries(s.queue_depth));
    const st = $("#status");
    st.textContent = s.status === "ok" ? "healthy" : `unhealthy: ${s.reasons.join("; ")}`;
    st.classList.toggle("bad", s.status !== "ok");
  } catch (e) {
    $("#status").textContent = `no answer from the daemon (${e.message})`;
  }
}

function rejectItem(kind, path, reason) {
  return el("li", { "data-path": path }, el("strong", { text: kind }), ` ${path.split("/").pop()}: ${reason}`);
}

// Live rejects first, then the latest ones from the rejects file below them (a
// file already listed by the live stream is not listed twice).
async function openRejects() {
  const list = $("#rejects");
  const es = new EventSource("/events?outcome=rejected");
  es.addEventListener("rejected", (ev) => {
    const r = JSON.parse(ev.data);
    list.prepend(rejectItem(r.kind, r.path, r.reason));
    while (list.childElementCount > 10) list.lastElementChild.remove();
  });
  state.rejects = es;
  try {
    const res = await fetch("/api/rejects?last=10");
    if (!res.ok) return;
    const live = new Set([...list.children].map((li) => li.dataset.path));
    for (const r of (await res.json()).rejects) {
      if (list.childElementCount >= 10) break;
      if (!live.has(r.path)) list.append(rejectItem(r.error.kind, r.path, r.error.message));
    }
  } catch (e) {
    $("#status").textContent = `cannot read the latest rejects (${e.message})`;
  }
}

// --- start ---

$("#search").addEventListener("submit", (e) => {
  e.preventDefault();
  addFilter($("#field").value, $("#needle").value);
  $("#needle").value = "";
});
$("#close").addEventListener("click", closeStory);
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("#story").hidden) closeStory(); });
// A listener with an access token ([http] token) answers 401 until the page has it:
// ask once, keep it in a session cookie (EventSource and fetch send it by themselves).
async function authorize() {
  for (;;) {
    const res = await fetch("/api/stats", { cache: "no-store" });
    if (res.status !== 401) return true;
    const t = (window.prompt("This desk needs the daemon's access token ([http] token):") || "").trim();
    if (!t) { $("#conn").textContent = "no access token: reload the page to give it"; return false; }
    if (!/^[A-Za-z0-9._~+\/=-]+$/.test(t)) { window.alert("A token has only letters, digits and - . _ ~ + / ="); continue; }
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = `wirewatch_token=${t}; path=/; SameSite=Strict${secure}`;
  }
}

authorize().then((ok) => {
  if (!ok) return;
  openWire();
  openRejects();
  poll();
  setInterval(poll, 2000);
  setInterval(refreshTimes, 30000);
});
