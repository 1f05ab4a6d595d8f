// The buttons: fire increments, reset a counter, the crash act, the mode switch and the
// deadlock. Increments, resets and pairs are ordinary API calls; kill and config are controls,
// which the server refuses (403) without the token (in the X-Forklock-Token header, which api()
// sends when the page has one); api() turns a 403 into the banner.

import { api, keyState, serverNow, showBanner, state } from './page.js';

// What the controls ask of the page that installs them (dashboard.js): redraw the keys' table.
let renderKeys = () => {};

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function status(id, text, kind = '') {
  const el = $(id);
  el.textContent = text;
  el.className = `status ${kind}`;
}

function field(form, name) {
  const el = form.elements[name];
  return el.type === 'checkbox' ? el.checked : el.type === 'number' ? Number(el.value) : el.value.trim();
}

// firstFire: the key's state, with the value it had before this page first touched it, so that
// lost = acknowledged - (value - base) counts only what this page sent.
async function firstFire(key) {
  const k = keyState(key);
  if (k.fired) return k;
  const r = await api('GET', `/counter/${encodeURIComponent(key)}`, 3000);
  k.base = r.status === 200 ? r.json.value : 0;
  k.fired = true;
  return k;
}

const increment = (key, query) => api('POST', `/counter/${encodeURIComponent(key)}/increment?${query}`);

// fire: n increments of key from c concurrent loops; each 200 is one acknowledged update.
async function fire(key, n, c, hold) {
  const k = await firstFire(key);
  let started = 0, done = 0, failed = 0;
  let lastError = '';
  const loop = async () => {
    while (started < n) {
      started++;
      const r = await increment(key, `hold_ms=${hold}`);
      if (r.status === 200) k.ack++; else { failed++; lastError = r.json?.error ?? `status ${r.status}`; }
      done++;
      status('fire-status', `${key}: ${done}/${n} answered, ${k.ack} acknowledged since reset` +
             (failed ? `, ${failed} failed (${lastError})` : ''), failed ? 'error' : '');
    }
  };
  await Promise.all(Array.from({ length: c }, loop));
  status('fire-status', `done: ${key}: ${n - failed}/${n} acknowledged` + (failed ? `, ${failed} failed (${lastError})` : ''),
         failed ? 'error' : 'good');
  renderKeys();
}

async function onFire(event) {
  event.preventDefault();
  const form = $('fire-form');
  if (!form.reportValidity()) return;
  const c = Math.min(6, Math.max(1, field(form, 'c')));
  $('fire').disabled = true;
  try { await fire(field(form, 'key'), field(form, 'n'), c, field(form, 'hold')); } finally { $('fire').disabled = false; }
}

async function onReset() {
  const key = field($('fire-form'), 'key');
  const r = await api('DELETE', `/counter/${encodeURIComponent(key)}`);
  if (r.status !== 200) return status('fire-status', `reset ${key}: ${r.json.error}`, 'error');
  const k = keyState(key);
  k.ack = 0;
  k.base = 0;
  k.fired = true;
  k.value = 0;
  renderKeys();
  status('fire-status', `${key} reset to 0`, 'good');
}

async function kill(key) {
  const r = await api('POST', `/control/kill?key=${encodeURIComponent(key)}`, 3000);
  if (r.status !== 200) {
    status('crash-status', `kill the holder of ${key}: ${r.status} ${r.json.error}`, 'error');
    return null;
  }
  state.killedKeys.set(r.json.killed, { key, since_ns: state.holdSince.get(key) ?? 0 });
  status('crash-status', `killed pid ${r.json.killed}, which held ${key}`);
  return r.json.killed;
}

async function waitForOwner(key, ms) {
  for (const end = performance.now() + ms; performance.now() < end; await sleep(100)) {
    const r = await api('GET', '/locks', 500);
    const row = r.json?.keys?.find((k) => k.key === key);
    if (row?.owner_pid) return row.owner_pid;
  }
  return 0;
}

async function waitForDeath(pid, ms) {
  for (const end = performance.now() + ms; performance.now() < end; await sleep(100)) {
    const r = await api('GET', '/workers', 500);
    if (r.json?.deaths?.some((d) => d.pid === pid)) return true;
  }
  return false;
}

// The crash act: one increment holds the key for seconds, its worker is killed while it holds,
// and once the master has reaped it one more increment shows whether (and how fast) the key is
// usable again. The holding request goes on a connection of its own: a browser resends a
// request whose reused keep-alive connection closes before any answer (POST included), and
// that resend would take the key again.
async function onCrashAct() {
  const key = field($('fire-form'), 'key');
  $('crash-act').disabled = true;
  try {
    status('crash-status', `holding ${key} for 5 s…`);
    await firstFire(key);
    const held = api('POST', `/counter/${encodeURIComponent(key)}/increment?hold_ms=5000`, 0, true);
    state.holdSince.set(key, serverNow()); // its trace record is never written: it dies holding
    const owner = await waitForOwner(key, 3000);
    if (!owner) return status('crash-status', `nobody holds ${key}: is this mode without an owner (none, thread)?`, 'error');
    status('crash-status', `pid ${owner} holds ${key}; killing it in a moment…`);
    await sleep(1500); // long enough for the class to see who holds it
    const pid = await kill(key);
    if (!pid) return;
    await held;
    status('crash-status', `killed pid ${pid} holding ${key}; waiting for the master to reap it…`);
    if (!(await waitForDeath(pid, 5000))) return status('crash-status', `pid ${pid} is not reaped after 5 s`, 'error');
    status('crash-status', `pid ${pid} died holding ${key}; asking for ${key} again…`);
    const again = await increment(key, 'timeout_ms=3000'); // short: the death stays in view
    if (again.status === 200) {
      keyState(key).ack++;
      status('crash-status', `killed pid ${pid} holding ${key}; ${key} usable again: the next request waited ` +
             `${again.json.waited_ms.toFixed(1)} ms for it` +
             (again.json.recovered_from ? `, recovering it from the dead owner ${again.json.recovered_from}` : ''), 'good');
    } else {
      status('crash-status', `killed pid ${pid} holding ${key}; ${key} still locked: ${again.json.error}`, 'error');
    }
  } finally {
    $('crash-act').disabled = false;
  }
}

// The switch: the master applies the requested config on HUP; done when every worker in
// /workers runs the new generation and there are as many as asked for.
async function onApply(event) {
  event.preventDefault();
  const form = $('config-form');
  const q = new URLSearchParams({ mode: field(form, 'mode'), preload: String(field(form, 'preload')),
    workers: String(field(form, 'workers')), threads: String(field(form, 'threads')) });
  const r = await api('POST', `/control/config?${q}`);
  if (r.status !== 202) return status('config-status', `refused: ${r.status} ${r.json.error}`, 'error');
  const g = r.json.generation;
  status('config-status', `generation ${g} requested: ${r.json.mode}${r.json.preload ? ' + preload' : ''}, waiting for the workers…`);
  for (const end = performance.now() + 30000; performance.now() < end; await sleep(200)) {
    const w = state.workers?.workers ?? [];
    const ready = w.filter((x) => x.generation >= g).length;
    if (ready === w.length && ready >= r.json.workers) {
      return status('config-status', `applied: generation ${g}, ${r.json.mode}${r.json.preload ? ' + preload' : ''}, ` +
                    `${ready} workers × ${r.json.threads} threads`, 'good');
    }
    status('config-status', `generation ${g}: ${ready}/${r.json.workers} workers ready, old ones draining…`);
  }
  status('config-status', `generation ${g} not applied after 30 s`, 'error');
}

function pairText(label, r) {
  if (r.status === 200) return `${label}: both incremented (${r.json.first.key}=${r.json.first.value}, ${r.json.second.key}=${r.json.second.value})`;
  return `${label}: ${r.status} ${r.json.error}`;
}

async function pair(ordered) {
  const form = $('pair-form');
  const [a, b] = [field(form, 'a'), field(form, 'b')];
  const common = `hold_ms=${field(form, 'hold')}&timeout_ms=${field(form, 'timeout')}&ordered=${ordered ? 1 : 0}`;
  const url = (x, y) => `/pair/increment?first=${encodeURIComponent(x)}&second=${encodeURIComponent(y)}&${common}`;
  await Promise.all([firstFire(a), firstFire(b)]);
  status('pair-status', ordered ? 'both pairs, each in key order…' : `${a}→${b} and ${b}→${a} at once…`);
  const [one, two] = await Promise.all([api('POST', url(a, b)), api('POST', url(b, a))]);
  for (const r of [one, two]) {
    if (r.status !== 200) continue;
    for (const k of [keyState(r.json.first.key), keyState(r.json.second.key)]) { k.ack++; k.fired = true; }
  }
  const ok = one.status === 200 && two.status === 200;
  const verdict = ok ? 'no deadlock' : one.status === 503 || two.status === 503 ? 'DEADLOCK: each held one key and waited for the other' : 'failed';
  status('pair-status', `${verdict}. ${pairText(`${a}→${b}`, one)}. ${pairText(`${b}→${a}`, two)}.`, ok ? 'good' : 'error');
}

export function installControls(page) {
  renderKeys = page.renderKeys;
  $('fire-form').addEventListener('submit', onFire);
  $('reset').addEventListener('click', onReset);
  $('crash-act').addEventListener('click', onCrashAct);
  $('kill').addEventListener('click', () => kill(field($('fire-form'), 'key')));
  $('config-form').addEventListener('submit', onApply);
  $('pair-form').addEventListener('submit', (e) => { e.preventDefault(); pair(false); });
  $('ordered').addEventListener('click', () => pair(true));
  showBanner('');
}
