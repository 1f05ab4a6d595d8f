// The dashboard's data: polls the read-only JSON API, keeps a bounded window of trace records
// and renders the header and tables; lanes.js draws the timeline, controls.js the buttons, and
// page.js holds the state they share and the one way to ask the server.
// Everything comes from the server that served this page; nothing is fetched from elsewhere.

import { draw, keyColor, WINDOW_MS } from './lanes.js';
import { installControls } from './controls.js';
import { installStep } from './step.js';
import { api, keyState, serverNow, showBanner, state } from './page.js';

const KEEP_NS = (WINDOW_MS + 2000) * 1e6;
const MAX_RECORDS = 30000;
const OVERLAP_SCAN = 256;
const POLL_TIMEOUT_MS = 1500;

const $ = (id) => document.getElementById(id);

function checkOverlap(r) {
  const list = state.byKey.get(r.key) ?? [];
  for (let i = list.length - 1, n = 0; i >= 0 && n < OVERLAP_SCAN; --i, ++n) {
    const o = list[i];
    if ((o.pid !== r.pid || o.tid !== r.tid) && o.acquired_ns < r.unlock_ns && r.acquired_ns < o.unlock_ns) {
      o.overlap = r.overlap = true;
      state.overlapsTotal++;
    }
  }
  list.push(r);
  state.byKey.set(r.key, list);
}

function resolveDeaths(r) {
  for (const d of state.deaths.values())
    if (d.keys.includes(r.key) && !(r.key in d.usable) && r.acquired_ns > d.died_ns) d.usable[r.key] = r.acquired_ns;
}

function ingest(records) {
  for (const r of records) {
    if (!state.threads.has(r.pid)) state.threads.set(r.pid, new Set());
    state.threads.get(r.pid).add(r.tid);
    r.lane = `${r.pid}:${r.tid}`; // computed once: the lanes look records up every frame
    r.color = keyColor(state, r.key);
    if (r.acquired_ns) { checkOverlap(r); resolveDeaths(r); }
    state.records.push(r);
    if (!state.clock || r.released_ns > serverNow()) state.clock = { serverNs: r.released_ns, perfMs: performance.now() };
  }
}

function prune() {
  const from = serverNow() - KEEP_NS;
  let drop = 0;
  while (drop < state.records.length && (state.records[drop].released_ns < from || state.records.length - drop > MAX_RECORDS)) drop++;
  if (drop) state.records.splice(0, drop);
  for (const [key, list] of state.byKey) {
    let k = 0;
    while (k < list.length && list[k].released_ns < from) k++;
    if (k === list.length) state.byKey.delete(key); else if (k) list.splice(0, k);
  }
}

async function pollTrace() {
  if (!state.tracing) return;
  const t0 = performance.now();
  for (let page = 0; page < 20; page++) {
    const { status, json } = await api('GET', `/trace?since=${state.since}`, POLL_TIMEOUT_MS);
    if (status === 404) { state.tracing = false; showBanner('Tracing is off on this server (--no-trace): no timeline.'); return; }
    if (status !== 200) return;
    ingest(json.records);
    state.since = json.next;
    if (json.records.length < 1000) break;
  }
  prune();
  state.pollMs = 0.8 * (state.pollMs ?? 0) + 0.2 * (performance.now() - t0);
  $('lanes').dataset.pollMs = state.pollMs.toFixed(1);
}

function addDeaths(deaths) {
  for (const d of deaths ?? []) {
    const id = `${d.pid}:${d.died_ns}`;
    if (state.deaths.has(id)) continue;
    const killed = state.killedKeys.get(d.pid);
    const keys = d.held?.length ? d.held : killed ? [killed.key] : [];
    const death = { ...d, keys, usable: {}, heldSince: killed?.since_ns ?? 0 };
    state.deaths.set(id, death);
    for (const r of state.records) if (r.acquired_ns) resolveDeaths(r);
  }
}

async function pollWorkers() {
  const t0 = performance.now();
  const { status, json } = await api('GET', '/workers', POLL_TIMEOUT_MS);
  if (status !== 200) return;
  if (typeof json.now_ns === 'number') state.clock = { serverNs: json.now_ns, perfMs: (t0 + performance.now()) / 2 };
  state.workers = json;
  addDeaths(json.deaths);
  renderHeader();
  renderWorkers();
  renderCrashes();
}

async function pollLocks() {
  const { status, json } = await api('GET', '/locks', POLL_TIMEOUT_MS);
  if (status !== 200) return;
  state.locks = json;
  for (const k of json.keys) keyState(k.key);
  // A section enters the trace when it ends: a key held for seconds is drawn open until then.
  // Only a shared table knows every worker's holds (thread mode: the answering worker's only).
  const owned = new Map(json.shared ? json.keys.filter((k) => k.owner_pid).map((k) => [k.key, k.owner_pid]) : []);
  for (const key of state.open.keys()) if (owned.get(key) !== state.open.get(key).pid) state.open.delete(key);
  for (const [key, pid] of owned) if (!state.open.has(key)) state.open.set(key, { pid, since_ns: serverNow() });
  renderLocks();
}

const shownKeys = () => [...state.keys.keys()].slice(-8);

async function pollCounters() {
  await Promise.all(shownKeys().map(async (key) => {
    const r = await api('GET', `/counter/${encodeURIComponent(key)}`, POLL_TIMEOUT_MS);
    if (r.status === 200) keyState(key).value = r.json.value;
  }));
  renderKeys();
}

// Less often than the counters: each /analysis reads the whole trace ring.
async function pollAnalyses() {
  if (!state.tracing) return;
  await Promise.all(shownKeys().map(async (key) => {
    const r = await api('GET', `/analysis?key=${encodeURIComponent(key)}`, POLL_TIMEOUT_MS);
    if (r.status === 200) keyState(key).analysis = r.json;
  }));
  renderKeys();
}

function cells(row, values) {
  row.replaceChildren(...values.map((v) => {
    const td = document.createElement('td');
    if (v && typeof v === 'object') {
      td.textContent = v.text;
      if (v.cls) td.className = v.cls;
      if (v.field) td.dataset.field = v.field;
      if (v.title) td.title = v.title;
      if (v.swatch) td.prepend(Object.assign(document.createElement('i'), { className: 'swatch', style: `background:${v.swatch}` }));
    }
    else td.textContent = v ?? '–';
    return td;
  }));
  return row;
}

function renderRows(tbody, items, keyOf, fill) {
  const rows = items.map((item) => {
    const tr = tbody.querySelector(`tr[data-id="${CSS.escape(String(keyOf(item)))}"]`) ?? document.createElement('tr');
    tr.dataset.id = keyOf(item);
    return fill(tr, item);
  });
  tbody.replaceChildren(...rows);
}

function renderHeader() {
  const w = state.workers;
  const mode = w.mode ?? state.locks?.mode ?? '?';
  $('h-mode').textContent = `mode ${mode}`;
  $('h-preload').textContent = w.preload === undefined ? 'preload ?' : w.preload ? 'preload on' : 'preload off';
  $('h-shape').textContent = `${w.workers_target ?? w.workers.length} workers × ${w.threads ?? '?'} threads`;
  $('h-generation').textContent = `generation ${w.generation ?? '?'}`;
  const verdict = $('h-verdict');
  verdict.className = `verdict ${w.safe === true ? 'safe' : w.safe === false ? 'unsafe' : ''}`;
  verdict.textContent = w.safe === undefined ? 'theory: ?' : w.safe ? 'theory: safe, no update lost' : 'theory: loses updates';
  // A lease trades safety for liveness: a holder paused past it can write late, unless fenced.
  const lease = state.locks?.lease_ms ?? 0;
  if (w.safe === true && lease > 0) {
    const fenced = state.locks.fencing === true;
    verdict.className = `verdict ${fenced ? 'safe' : 'unsafe'}`;
    verdict.textContent = fenced ? `theory: safe, a write after the ${lease} ms lease is refused`
                                 : `theory: a holder paused past the ${lease} ms lease loses an update`;
  }
  $('h-explain').textContent = w.explain ?? '';
  $('h-controls').textContent = `controls ${w.controls ?? '?'}${state.token ? ' · token given' : ''}`;
  document.body.dataset.mode = mode;
  if (!state.configShown && w.mode) {
    // The mode form starts from what runs, so "Apply" without a change is a plain restart.
    const form = $('config-form');
    form.elements.mode.value = w.mode;
    form.elements.preload.checked = !!w.preload;
    form.elements.workers.value = w.workers_target ?? w.workers.length;
    form.elements.threads.value = w.threads ?? 1;
    state.configShown = true;
  }
  document.body.dataset.generation = w.generation ?? '';
}

function renderWorkers() {
  const w = state.workers;
  $('workers-summary').textContent = `master ${w.master_pid} · restarts ${w.restarts}`;
  renderRows($('worker-table').tBodies[0], w.workers, (x) => x.pid, (tr, x) =>
    cells(tr, [x.pid, x.generation, x.mode ? `${x.mode}${x.preload ? '+preload' : ''}` : null, `${x.age_s.toFixed(1)} s`, x.requests, x.state]));
}

function renderLocks() {
  const l = state.locks;
  // Without a shared table each worker counts its own: say whose this one is.
  const whose = l.shared ? 'shared' : `pid ${l.pid}'s own`;
  $('locks-summary').textContent = `${l.mode} · ${whose} · ${l.keys_in_use}/${l.capacity} keys · recoveries ${l.recoveries}`;
  renderRows($('lock-table').tBodies[0], l.keys, (k) => k.key, (tr, k) =>
    cells(tr, [k.key, k.owner_pid || '–', k.waiters, k.acquisitions, k.contended, k.recoveries, k.last_dead_owner || '–']));
}

function renderKeys() {
  const items = [...state.keys.entries()];
  renderRows($('key-table').tBodies[0], items, ([key]) => key, (tr, [key, k]) => {
    // Only what this page fired is acknowledged here: other clients' increments are not known.
    const lost = k.value === null || !k.fired ? null : k.ack - (k.value - k.base);
    const a = k.analysis;
    const badge = (n, field) => ({ text: n ?? '–', cls: n > 0 ? 'bad' : n === 0 ? 'zero' : '', field });
    return cells(tr, [{ text: key, swatch: keyColor(state, key) }, { text: k.fired ? k.ack : '–', field: 'ack' }, { text: k.value ?? '–', field: 'value', title: k.base ? `it was ${k.base} before this page's first increment` : '' },
      badge(lost, 'lost'), badge(a?.overlaps, 'overlaps'), badge(a?.lost, 'trace-lost')]);
  });
  const latest = items.map(([key, k]) => ({ key, ex: k.analysis?.examples?.at(-1) })).filter((x) => x.ex).at(-1);
  $('interleaving').textContent = latest ? `Latest lost update on ${latest.key} (${state.keys.get(latest.key).analysis.times}):\n${latest.ex.text}` : '';
}

function renderCrashes() {
  const items = [...state.deaths.values()].slice(-6).reverse();
  const list = $('crashes');
  if (!items.length) {
    list.innerHTML = '<li class="dim">none yet: the crash act kills the worker holding a key</li>';
    return;
  }
  list.replaceChildren(...items.map((d) => {
    const li = document.createElement('li');
    const how = d.signal ? `killed by signal ${d.signal}` : `exited with status ${d.status}`;
    const ago = state.clock ? `${((serverNow() - d.died_ns) / 1e9).toFixed(1)} s ago` : '';
    const parts = d.keys.map((key) => {
      if (key in d.usable) return `${key} usable again after ${((d.usable[key] - d.died_ns) / 1e6).toFixed(1)} ms`;
      const row = state.locks?.keys.find((k) => k.key === key);
      if (row && row.owner_pid === d.pid) return `${key} still locked by the dead pid ${d.pid}`;
      return `${key} not asked for since`;
    });
    li.className = parts.some((p) => p.includes('still locked')) ? 'locked' : parts.some((p) => p.includes('usable')) ? 'usable' : '';
    li.dataset.pid = d.pid;
    li.textContent = `pid ${d.pid} ${how} ${ago}${d.keys.length ? `, holding ${d.keys.join(', ')}: ${parts.join('; ')}` : ', holding no key'}` +
      (d.released ? ` (master released ${d.released})` : '');
    return li;
  }));
}

function every(ms, fn) {
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try { await fn(); } catch (e) { console.warn(e); } finally { busy = false; }
  };
  tick();
  setInterval(tick, ms);
}

function frame() {
  const canvas = $('lanes');
  const t0 = performance.now();
  draw(canvas, state, serverNow());
  // What one frame costs, smoothed: the page's own budget, apart from the machine's load.
  state.drawMs = 0.9 * (state.drawMs ?? 0) + 0.1 * (performance.now() - t0);
  canvas.dataset.drawMs = state.drawMs.toFixed(2);
  let inView = 0;
  const from = serverNow() - WINDOW_MS * 1e6;
  for (const r of state.records) if (r.overlap && r.unlock_ns >= from) inView++;
  const count = $('overlaps');
  count.dataset.count = inView;
  count.dataset.total = state.overlapsTotal;
  count.textContent = `overlapping sections in view ${inView} · overlaps since load ${state.overlapsTotal}`;
  count.classList.toggle('red', inView > 0);
  requestAnimationFrame(frame);
}

installControls({ renderKeys });
installStep();
every(250, pollTrace);
every(500, pollWorkers);
every(500, pollLocks);
every(500, pollCounters);
every(1000, pollAnalyses);
requestAnimationFrame(frame);
