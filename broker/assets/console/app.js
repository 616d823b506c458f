// The broker console: three views (streams, a stream, a shard's records) on
// hash routes, polling /console/api every 2 seconds. No framework, no build.
"use strict";

const POLL_MS = 2000;
const PAGE_SIZE = 50;
const ITERATOR_TYPES = ["TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "AT_TIMESTAMP"];

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (n, d = 1) => (n >= 1e6 ? (n / 1e6).toFixed(d) + "M" : n >= 1e3 ? (n / 1e3).toFixed(d) + "k" : Number(n).toFixed(n % 1 ? d : 0));
const bytes = (n) => (n >= 1048576 ? (n / 1048576).toFixed(2) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : Math.round(n) + " B");
const pct = (f) => (f * 100).toFixed(f < 0.1 ? 2 : 1) + "%";
const time = (ms) => (ms == null ? "" : new Date(ms).toISOString().replace("T", " ").replace("Z", ""));

// --- API ------------------------------------------------------------------

function authHeaders() {
  const t = sessionStorage.getItem("consoleToken");
  return t ? { Authorization: "Bearer " + t } : {};
}

async function api(path, body) {
  const init = { headers: authHeaders() };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch("/console/api/" + path, init);
  const text = await r.text();
  let v;
  try { v = text ? JSON.parse(text) : {}; } catch (e) { v = { error: "BadResponse", message: text }; }
  if (r.status === 401 || r.status === 403) {
    askToken(v.message);
    throw new Error(v.message || "not authorized");
  }
  if (!r.ok) throw new Error((v.error ? v.error + ": " : "") + (v.message || r.statusText));
  return v;
}

const action = (op, input) => api("action", { Operation: op, Input: input });

let asking = false;
function askToken(why) {
  if (asking) return;
  asking = true;
  dialog("Admin token needed", `<p class="muted">${esc(why || "")}</p>
    <label for="token-input">This broker protects its console like its admin endpoints. Token:</label>
    <input id="token-input" type="password" autocomplete="off">`, "Use token")
    .then((ok) => {
      asking = false;
      if (ok) { sessionStorage.setItem("consoleToken", $("#token-input").value.trim()); render(); }
    });
}

// --- UI helpers -----------------------------------------------------------

function toast(msg, error) {
  const t = $("#toast");
  t.textContent = msg;
  t.className = error ? "error" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, error ? 8000 : 4000);
}

// A modal confirmation; resolves true on OK. Every action goes through one.
function dialog(title, html, okLabel = "OK") {
  return new Promise((resolve) => {
    const back = $("#dialog-backdrop");
    $("#dialog-title").textContent = title;
    $("#dialog-body").innerHTML = html;
    $("#dialog-ok").textContent = okLabel;
    back.hidden = false;
    const first = $("#dialog-body input, #dialog-body textarea");
    if (first) first.focus(); else $("#dialog-ok").focus();
    const done = (v) => {
      $("#dialog").onsubmit = null;
      $("#dialog-cancel").onclick = null;
      back.hidden = true;
      resolve(v);
    };
    $("#dialog").onsubmit = (e) => { e.preventDefault(); done(true); };
    $("#dialog-cancel").onclick = () => done(false);
  });
}

async function run(what, f) {
  try {
    const out = await f();
    toast(what + ": done");
    await render();
    return out;
  } catch (e) {
    toast(what + ": " + e.message, true);
  }
}

function meter(value, limit) {
  const f = limit > 0 ? Math.min(value / limit, 1) : 0;
  const cls = f >= 0.9 ? "hot" : f >= 0.6 ? "warm" : "";
  return `<span class="meter ${cls}" title="${pct(value / (limit || 1))} of the limit"><i style="width:${(f * 100).toFixed(1)}%"></i></span>`;
}

function crumbs(parts) {
  $("#crumbs").innerHTML = parts.map(([label, href]) => (href ? `<a href="${href}">${esc(label)}</a>` : `<span>${esc(label)}</span>`)).join("/ ");
}

// Rates from two polls of cumulative counters.
const previous = new Map();
function rate(key, total, nowMs) {
  const p = previous.get(key);
  previous.set(key, { total, nowMs });
  if (!p || nowMs <= p.nowMs || total < p.total) return 0;
  return ((total - p.total) * 1000) / (nowMs - p.nowMs);
}

// --- Routing and polling --------------------------------------------------

const state = { page: 0, sort: "hot", stream: null, records: null };
let pollTimer = null;

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "stream" && parts[1]) return { view: "stream", stream: parts[1] };
  if (parts[0] === "records" && parts[1] && parts[2]) return { view: "records", stream: parts[1], shard: parts[2] };
  return { view: "streams" };
}

async function render() {
  const r = route();
  try {
    if (r.view === "streams") await renderStreams();
    else if (r.view === "stream") await renderStream(r.stream);
    else await renderRecords(r.stream, r.shard);
    $("#live").className = "";
    $("#live").textContent = "live · " + new Date().toLocaleTimeString();
  } catch (e) {
    $("#live").className = "stale";
    $("#live").textContent = "not updating: " + e.message;
  }
}

function schedule() {
  clearInterval(pollTimer);
  // The records view pages on request; the others follow the broker live.
  if (route().view !== "records") pollTimer = setInterval(render, POLL_MS);
}

window.addEventListener("hashchange", () => {
  state.page = 0;
  state.records = null;
  document.body.dataset.view = route().view;
  $("#view").innerHTML = '<p class="muted">Loading…</p>';
  render();
  schedule();
});

// --- Streams view ---------------------------------------------------------

async function renderStreams() {
  const v = await api("streams");
  if (route().view !== "streams") return;
  crumbs([["streams"]]);
  const view = $("#view");
  if (!$("#streams-table", view)) {
    view.innerHTML = `<h1>Streams</h1>
      <div class="card row">
        <label>New stream <input id="create-name" placeholder="name" pattern="[a-zA-Z0-9_.\\-]+" size="24"></label>
        <label>Shards <input id="create-shards" type="number" min="1" value="4" style="width:70px"></label>
        <button id="create-btn" class="primary">Create stream</button>
      </div>
      <table id="streams-table"><thead><tr><th>Name</th><th>Status</th><th>Mode</th><th class="num">Open shards</th>
      <th class="num">Closed</th><th class="num">Retention</th><th class="num">Consumers</th><th class="num">Records/s</th>
      <th class="num">Bytes/s</th><th class="num">Throttled</th></tr></thead><tbody></tbody></table>
      <p class="muted">Rates are over the last minute; throttled counts both directions since the broker started.</p>`;
    $("#create-btn").onclick = createStream;
  }
  const rows = v.streams.map((s) => `<tr data-stream="${esc(s.name)}">
      <td><a class="stream-link" href="#/stream/${encodeURIComponent(s.name)}">${esc(s.name)}</a></td>
      <td><span class="badge ${s.status === "ACTIVE" ? "ok" : "warn"}">${esc(s.status)}</span></td>
      <td>${esc(s.mode)}</td><td class="num">${s.open_shards}</td><td class="num">${s.closed_shards}</td>
      <td class="num">${s.retention_hours} h</td><td class="num">${s.consumers}</td>
      <td class="num">${fmt(s.records_per_sec)}</td><td class="num">${bytes(s.bytes_per_sec)}</td>
      <td class="num">${fmt(s.throttled_total)}</td></tr>`);
  $("#streams-table tbody").innerHTML = rows.join("") || '<tr><td colspan="10" class="muted">No streams yet.</td></tr>';
}

async function createStream() {
  const name = $("#create-name").value.trim();
  const shards = parseInt($("#create-shards").value, 10);
  if (!name) return toast("Give the stream a name", true);
  const ok = await dialog("Create stream", `<p>Create <b>${esc(name)}</b> with ${shards} shard(s)?</p>`, "Create");
  if (ok) await run("Create " + name, () => action("CreateStream", { StreamName: name, ShardCount: shards }));
}

// --- Stream view ----------------------------------------------------------

async function renderStream(name) {
  const v = await api("stream?name=" + encodeURIComponent(name));
  if (route().view !== "stream") return;
  state.stream = v;
  crumbs([["streams", "#/"], [name]]);
  const view = $("#view");
  if (!$("#shard-table", view)) {
    view.innerHTML = `<h1 id="stream-title"></h1>
      <div class="card"><div class="facts" id="stream-facts"></div>
        <div class="row" style="margin-top:10px">
          <button id="put-btn">Put test record</button>
          <button id="delete-btn" class="danger">Delete stream</button>
        </div></div>
      <div class="card callout" id="hot-card"></div>
      <h2>Hash-key space</h2>
      <canvas id="hashbar" height="46"></canvas><div id="hashbar-tip" class="muted">Open shards across the 128-bit hash-key space; colour shows write load against the shard limit. Point at a shard for details.</div>
      <h2>Shards</h2>
      <div class="pager"><label>Show <select id="shard-filter"><option value="open">open shards</option><option value="all">all shards</option></select></label>
        <label>sorted by <select id="shard-sort"><option value="hot">write rate</option><option value="range">hash range</option></select></label>
        <button id="prev-page">‹</button><span id="page-info"></span><button id="next-page">›</button></div>
      <table id="shard-table"><thead><tr><th>Shard</th><th>Hash range</th><th>Lineage</th><th>Writes (records/s · bytes/s)</th>
      <th>Reads bytes/s</th><th class="num">Throttled w/r</th><th>Hottest partition keys (last minute)</th><th></th></tr></thead><tbody></tbody></table>
      <h2>Enhanced fan-out consumers</h2><div id="consumers"></div>`;
    $("#put-btn").onclick = putTestRecord;
    $("#delete-btn").onclick = deleteStream;
    $("#prev-page").onclick = () => { state.page = Math.max(0, state.page - 1); drawStream(); };
    $("#next-page").onclick = () => { state.page += 1; drawStream(); };
    $("#shard-filter").onchange = () => { state.page = 0; drawStream(); };
    $("#shard-sort").onchange = () => { state.page = 0; drawStream(); };
    $("#shard-table").addEventListener("click", shardAction);
    $("#hashbar").addEventListener("mousemove", hashbarTip);
  }
  drawStream();
}

function drawStream() {
  const v = state.stream;
  const L = v.limits;
  const open = v.shards.filter((s) => s.open);
  $("#stream-title").textContent = v.name;
  $("#stream-facts").innerHTML = `<div><b>Status</b>${esc(v.status)}</div><div><b>Mode</b>${esc(v.mode)}</div>
    <div><b>Open shards</b>${open.length}</div><div><b>Closed shards</b>${v.shards.length - open.length}</div>
    <div><b>Retention</b>${v.retention_hours} h</div><div><b>Consumers</b>${v.consumers.length}</div>
    <div><b>Records/s</b>${fmt(v.shards.reduce((a, s) => a + s.records_per_sec, 0))}</div>
    <div><b>Bytes/s</b>${bytes(v.shards.reduce((a, s) => a + s.bytes_per_sec, 0))}</div>
    <div><b>Per-shard limits</b>${fmt(L.write_records_per_sec)} rec/s · ${bytes(L.write_bytes_per_sec)}/s in · ${bytes(L.read_bytes_per_sec)}/s out</div>`;

  // The hottest shard and why: its top partition keys.
  const hot = [...v.shards].sort((a, b) => b.records_per_sec - a.records_per_sec)[0];
  const card = $("#hot-card");
  if (hot && hot.window_records > 0) {
    const k = hot.hot_keys[0];
    const load = Math.max(hot.records_per_sec / L.write_records_per_sec, hot.bytes_per_sec / L.write_bytes_per_sec);
    card.innerHTML = `Hottest shard: <b id="hot-shard">${esc(hot.id)}</b> at ${fmt(hot.records_per_sec)} records/s,
      ${bytes(hot.bytes_per_sec)}/s (${pct(load)} of its write limit).
      ${hot.open ? "" : `It is closed now${hot.children.length ? `, its keys go to ${hot.children.map(esc).join(" and ")}` : ""}.`}
      ${k ? `Top partition key: <code id="hot-key">${esc(k.key)}</code> with ${pct(k.share)} of its records.` : ""}
      <span class="muted">A few keys carrying most records pin their shard; spread writes over more distinct partition keys.</span>`;
  } else {
    card.innerHTML = '<span class="muted">No writes in the last minute.</span>';
  }

  drawHashbar(open, L);

  // The table: one page of rows.
  let rows = $("#shard-filter").value === "open" ? open : v.shards;
  rows = [...rows].sort($("#shard-sort").value === "hot" ? (a, b) => b.records_per_sec - a.records_per_sec || a.lo - b.lo : (a, b) => a.lo - b.lo || (a.id < b.id ? -1 : 1));
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  $("#page-info").textContent = `page ${state.page + 1} of ${pages} (${rows.length} shards)`;
  const html = rows.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE).map((s) => {
    const readRate = rate("read:" + v.name + s.id, s.read_bytes_total, v.now_ms);
    const right = open.find((o) => s.open && o !== s && BigInt(o.starting_hash_key) === BigInt(s.ending_hash_key) + 1n);
    const lineage = [s.parent && `from ${esc(s.parent)}`, s.adjacent_parent && `+ ${esc(s.adjacent_parent)}`, s.children.length && `→ ${s.children.map(esc).join(", ")}`].filter(Boolean).join(" ");
    const keys = s.hot_keys.map((k) => `<li><code>${esc(k.key)}</code> <span class="muted">${pct(k.share)} · ${fmt(k.records)}</span></li>`).join("");
    return `<tr data-shard="${esc(s.id)}">
      <td class="shard-id"><a href="#/records/${encodeURIComponent(v.name)}/${encodeURIComponent(s.id)}">${esc(s.id)}</a><br>
        <span class="badge ${s.open ? "ok" : "closed"}">${s.open ? "OPEN" : "CLOSED"}</span></td>
      <td class="range"><span class="mono" title="${esc(s.starting_hash_key)} – ${esc(s.ending_hash_key)}">${pct(s.lo)} – ${pct(s.hi)}</span><br>
        <span class="mono muted hash-keys">${esc(s.starting_hash_key)}<br>${esc(s.ending_hash_key)}</span></td>
      <td>${lineage || '<span class="muted">original</span>'}</td>
      <td class="rate">${meter(s.records_per_sec, L.write_records_per_sec)}${fmt(s.records_per_sec)}/s<br>${meter(s.bytes_per_sec, L.write_bytes_per_sec)}${bytes(s.bytes_per_sec)}/s</td>
      <td class="rate">${meter(readRate, L.read_bytes_per_sec)}${bytes(readRate)}/s</td>
      <td class="num">${fmt(s.write_throttled_total)} / ${fmt(s.read_throttled_total)}</td>
      <td><ul class="keys">${keys || '<li class="muted">—</li>'}</ul></td>
      <td>${s.open ? `<button class="split" data-shard="${esc(s.id)}">Split</button>` : ""}
        ${right ? `<button class="merge" data-shard="${esc(s.id)}" data-with="${esc(right.id)}">Merge →</button>` : ""}</td></tr>`;
  });
  $("#shard-table tbody").innerHTML = html.join("");

  // Consumers and their live subscriptions.
  $("#consumers").innerHTML = v.consumers.length === 0 ? '<p class="muted">No consumers registered.</p>' : `<table id="consumer-table"><thead><tr><th>Consumer</th><th>Status</th><th>Live subscriptions</th><th>Delivered bytes/s per shard</th></tr></thead><tbody>${v.consumers.map((c) => {
    const subs = c.subscriptions.filter((x) => x.live);
    const per = c.subscriptions.slice(0, 20).map((x) => {
      const r = rate("efo:" + c.arn + x.shard, x.event_bytes_total, v.now_ms);
      return `<div>${esc(x.shard)} ${meter(r, L.fanout_bytes_per_sec)}${bytes(r)}/s <span class="muted">${x.live ? "live" : "ended"} · ${fmt(x.millis_behind)} ms behind</span></div>`;
    }).join("");
    return `<tr><td>${esc(c.name)}<br><span class="mono muted">${esc(c.arn)}</span></td><td>${esc(c.status)}</td><td class="num">${subs.length}</td><td>${per || '<span class="muted">none</span>'}${c.subscriptions.length > 20 ? `<div class="muted">and ${c.subscriptions.length - 20} more</div>` : ""}</td></tr>`;
  }).join("")}</tbody></table>`;
}

// One canvas for the whole hash-key space: a thousand shards stay cheap.
function drawHashbar(open, L) {
  const c = $("#hashbar");
  const w = (c.width = c.clientWidth || 1000);
  const h = c.height;
  const g = c.getContext("2d");
  g.clearRect(0, 0, w, h);
  for (const s of open) {
    const load = Math.min(1, Math.max(s.records_per_sec / L.write_records_per_sec, s.bytes_per_sec / L.write_bytes_per_sec));
    g.fillStyle = load >= 0.9 ? "#dc2626" : load >= 0.6 ? "#f59e0b" : load > 0 ? "#10b981" : "#c7d2fe";
    const x0 = s.lo * w;
    const x1 = Math.max(x0 + 1, (s.hi) * w);
    g.fillRect(x0, 0, x1 - x0, h);
    if (x1 - x0 > 3) {
      g.fillStyle = "#fff";
      g.fillRect(x1 - 1, 0, 1, h);
    }
    if (x1 - x0 > 70) {
      g.fillStyle = "#111827";
      g.font = "11px system-ui";
      g.fillText(s.id.replace("shardId-", "#"), x0 + 4, h / 2 + 4);
    }
  }
}

function hashbarTip(e) {
  const v = state.stream;
  if (!v) return;
  const c = $("#hashbar");
  const f = e.offsetX / c.clientWidth;
  const s = v.shards.find((s) => s.open && f >= s.lo && f <= s.hi);
  $("#hashbar-tip").innerHTML = s ? `<b>${esc(s.id)}</b> ${pct(s.lo)} – ${pct(s.hi)} · ${fmt(s.records_per_sec)} records/s · ${bytes(s.bytes_per_sec)}/s${s.hot_keys[0] ? ` · top key <code>${esc(s.hot_keys[0].key)}</code>` : ""}${s.parent ? ` · from ${esc(s.parent)}` : ""}` : "";
}

async function shardAction(e) {
  const b = e.target.closest("button");
  if (!b) return;
  const v = state.stream;
  const s = v.shards.find((x) => x.id === b.dataset.shard);
  if (!s) return;
  if (b.classList.contains("split")) {
    const mid = (BigInt(s.starting_hash_key) + BigInt(s.ending_hash_key) + 1n) / 2n;
    const ok = await dialog("Split shard", `<p>Split <b>${esc(s.id)}</b> into two children. The second starts at this hash key (the midpoint by default):</p>
      <label for="split-key">New starting hash key</label><input id="split-key" class="mono" value="${mid}">`, "Split");
    if (!ok) return;
    const key = $("#split-key").value.trim();
    await run("Split " + s.id, () => action("SplitShard", { StreamName: v.name, ShardToSplit: s.id, NewStartingHashKey: key }));
  } else if (b.classList.contains("merge")) {
    const ok = await dialog("Merge shards", `<p>Merge <b>${esc(s.id)}</b> with its neighbour <b>${esc(b.dataset.with)}</b>?</p>`, "Merge");
    if (ok) await run("Merge " + s.id, () => action("MergeShards", { StreamName: v.name, ShardToMerge: s.id, AdjacentShardToMerge: b.dataset.with }));
  }
}

async function putTestRecord() {
  const v = state.stream;
  const ok = await dialog("Put test record", `<label for="put-key">Partition key</label><input id="put-key" value="console-test">
    <label for="put-data">Data</label><textarea id="put-data" rows="3">{"hello": "from the console"}</textarea>`, "Put record");
  if (!ok) return;
  const data = btoa(String.fromCharCode(...new TextEncoder().encode($("#put-data").value)));
  const key = $("#put-key").value;
  const out = await run("Put record", () => action("PutRecord", { StreamName: v.name, PartitionKey: key, Data: data }));
  if (out) toast(`Stored in ${out.ShardId} as ${out.SequenceNumber}`);
}

async function deleteStream() {
  const v = state.stream;
  const ok = await dialog("Delete stream", `<p>Delete <b>${esc(v.name)}</b> and every record in it? This cannot be undone.</p>`, "Delete");
  if (!ok) return;
  const done = await run("Delete " + v.name, () => action("DeleteStream", { StreamName: v.name, EnforceConsumerDeletion: true }));
  if (done) location.hash = "#/";
}

// --- Records view ---------------------------------------------------------

async function renderRecords(name, shard) {
  crumbs([["streams", "#/"], [name, "#/stream/" + encodeURIComponent(name)], [shard]]);
  const view = $("#view");
  if ($("#records-table", view)) return;
  view.innerHTML = `<h1>Records of ${esc(shard)}</h1>
    <div class="card row">
      <label>Start at <select id="iterator-type">${ITERATOR_TYPES.map((t) => `<option>${t}</option>`).join("")}</select></label>
      <input id="start-seq" class="mono" placeholder="sequence number" size="40" hidden>
      <input id="start-ts" type="datetime-local" step="1" hidden>
      <label>Page size <input id="page-size" type="number" min="1" max="1000" value="25" style="width:70px"></label>
      <button id="records-start" class="primary">Read</button>
      <button id="records-next" disabled>Next page</button>
      <label>Show data as <select id="data-format"><option value="text">text</option><option value="json">JSON</option><option value="hex">hex</option></select></label>
    </div>
    <p id="records-status" class="muted">Pick a starting position and read.</p>
    <table id="records-table"><thead><tr><th>Sequence number</th><th>Arrival</th><th>Partition key</th><th class="num">Size</th><th>Data</th></tr></thead><tbody></tbody></table>
    <div id="record-detail"></div>`;
  const type = $("#iterator-type");
  type.onchange = () => {
    $("#start-seq").hidden = !type.value.includes("SEQUENCE");
    $("#start-ts").hidden = type.value !== "AT_TIMESTAMP";
  };
  $("#records-start").onclick = () => readRecords(name, shard, null);
  $("#records-next").onclick = () => readRecords(name, shard, state.records && state.records.next_iterator);
  $("#data-format").onchange = () => { drawRecords(); drawDetail(); };
  $("#records-table").addEventListener("click", (e) => {
    const tr = e.target.closest("tr.record");
    if (!tr) return;
    state.selected = Number(tr.dataset.index);
    drawRecords();
    drawDetail();
    $("#record-detail").scrollIntoView({ block: "start" });
  });
}

async function readRecords(name, shard, iterator) {
  const body = { Limit: parseInt($("#page-size").value, 10) || 25 };
  if (iterator) body.ShardIterator = iterator;
  else {
    Object.assign(body, { StreamName: name, ShardId: shard, ShardIteratorType: $("#iterator-type").value });
    if (body.ShardIteratorType.includes("SEQUENCE")) body.StartingSequenceNumber = $("#start-seq").value.trim();
    if (body.ShardIteratorType === "AT_TIMESTAMP") body.Timestamp = new Date($("#start-ts").value).getTime() / 1000;
  }
  try {
    state.records = await api("records", body);
    state.selected = null;
    drawRecords();
    drawDetail();
    const r = state.records;
    $("#records-status").textContent = `${r.records.length} record(s) in this page` +
      (r.millis_behind_latest != null ? `, ${r.millis_behind_latest} ms behind the tip` : "") +
      (r.next_iterator ? "" : r.child_shards ? `; the shard is closed and read to its end (children: ${r.child_shards.join(", ")})` : "; end of shard");
    $("#records-next").disabled = !r.next_iterator;
  } catch (e) {
    $("#records-status").textContent = e.message;
    toast(e.message, true);
  }
}

function decodeB64(b64) {
  const s = atob(b64);
  const a = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
  return a;
}

function showData(b64, full) {
  const raw = decodeB64(b64);
  const f = $("#data-format").value;
  const cut = full ? raw : raw.slice(0, 96);
  if (f === "hex") return [...cut].map((b) => b.toString(16).padStart(2, "0")).join(" ") + (cut.length < raw.length ? " …" : "");
  const text = new TextDecoder("utf-8", { fatal: false }).decode(raw);
  if (f === "json") {
    try { return JSON.stringify(JSON.parse(text), null, full ? 2 : 0); } catch (e) { return "(not JSON) " + text.slice(0, full ? undefined : 96); }
  }
  return full ? text : text.slice(0, 96) + (text.length > 96 ? " …" : "");
}

function drawRecords() {
  const r = state.records;
  if (!r) return;
  $("#records-table tbody").innerHTML = r.records.map((x, i) => `<tr class="record${state.selected === i ? " selected" : ""}" data-index="${i}" data-seq="${esc(x.sequence_number)}">
      <td class="mono">${esc(x.sequence_number)}</td><td class="mono">${time(x.arrival_ms)}</td><td><code>${esc(x.partition_key)}</code></td>
      <td class="num">${bytes(x.size)}</td>
      <td>${x.aggregated ? `<button class="expand">KPL aggregate · ${x.user_records.length} user records</button>` : `<span class="mono">${esc(showData(x.data, false))}</span>`}</td></tr>`).join("")
    || '<tr><td colspan="5" class="muted">No records in this page.</td></tr>';
}

function drawDetail() {
  const r = state.records;
  const d = $("#record-detail");
  if (!r || state.selected == null || !r.records[state.selected]) { d.innerHTML = ""; return; }
  const x = r.records[state.selected];
  let html = `<div class="card" id="record-card"><h2>Record <span class="mono">${esc(x.sequence_number)}</span></h2>
    <div class="facts"><div><b>Partition key</b><code>${esc(x.partition_key)}</code></div><div><b>Arrival</b>${time(x.arrival_ms)}</div><div><b>Size</b>${bytes(x.size)}</div>
    <div><b>Kind</b>${x.aggregated ? '<span class="badge agg">KPL aggregate</span>' : "plain record"}</div></div>`;
  if (x.aggregated) {
    html += `<h2>${x.user_records.length} user records</h2><table id="user-records"><thead><tr><th class="num">Sub-sequence</th><th>Partition key</th><th>Explicit hash key</th><th class="num">Size</th><th>Data</th></tr></thead><tbody>` +
      x.user_records.map((u) => `<tr class="user-record"><td class="num">${u.sub_sequence_number}</td><td><code>${esc(u.partition_key)}</code></td><td class="mono">${esc(u.explicit_hash_key || "")}</td><td class="num">${bytes(u.size)}</td><td><pre>${esc(showData(u.data, true))}</pre></td></tr>`).join("") + "</tbody></table>";
  } else {
    html += `<pre id="record-data">${esc(showData(x.data, true))}</pre>`;
  }
  d.innerHTML = html + "</div>";
}

document.body.dataset.view = route().view;
render();
schedule();
