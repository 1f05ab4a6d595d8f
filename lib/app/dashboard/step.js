// The step panel (docs/stepping.md): the class is the scheduler. One column per increment of the
// stepped key, with its worker pid, the five steps of its critical section as code (the next one
// highlighted), the value it read and a Step button; above them the file's value, the lock's
// owner, the schedule so far, and what went wrong in the trace's own words (trace_analysis.cpp):
// "both inside the "locked" section at once", "one update lost".
//
// Steps are controls (the token, in api()'s header). A parked request blocks its worker thread,
// and with it the keep-alive connections that thread accepted: a request sent on one of those
// waits until it moves. So a step names the point it expects (at=): a step retried after a
// timeout can never move its request twice (the server answers 409 "stepped already").

import { api } from './page.js';

const $ = (id) => document.getElementById(id);
const POLL_MS = 300;
const STEP_TIMEOUT_MS = 4000;
const PARK_TIMEOUT_MS = 600000; // a class talks between steps: the gate waits up to 10 min
// The five steps, as the increment runs them; point_index i is parked before LINES[i].
const LINES = [['lock', 'lock(key)'], ['read', 'v = read(file)'], ['write', 'write(file, v + 1)'],
  ['unlock', 'unlock(key)'], ['done', 'return 200 to the client']];

// run: what this page started since it last turned step mode on (the columns' order, the answers).
const run = { key: null, sent: 0, answers: new Map(), columns: new Map(), seen: new Map(), inside: '' };

function status(text, kind = '') {
  const el = $('step-status');
  el.textContent = text;
  el.className = `status ${kind}`;
}

const keyName = () => $('step-form').elements.key.value.trim();

async function turnOn(event) {
  event.preventDefault();
  if (!$('step-form').reportValidity()) return;
  const key = keyName();
  const reset = await api('DELETE', `/counter/${encodeURIComponent(key)}`);
  if (reset.status !== 200) return status(`reset ${key}: ${reset.json.error}`, 'error');
  const r = await api('POST', `/control/step?key=${encodeURIComponent(key)}&on=1`);
  if (r.status !== 200) return status(`step mode for ${key}: ${r.status} ${r.json.error}`, 'error');
  Object.assign(run, { key, sent: 0, answers: new Map(), seen: new Map(), inside: '' });
  run.columns.clear();
  $('step-columns').replaceChildren();
  status(`${key} is at 0 and in step mode: send two increments`, 'good');
  await poll();
}

async function turnOff() {
  const key = run.key ?? keyName();
  const r = await api('POST', `/control/step?key=${encodeURIComponent(key)}&on=0`);
  status(r.status === 200 ? `step mode off for ${key}: every gate opened` : `${r.status} ${r.json.error}`,
         r.status === 200 ? 'good' : 'error');
  await poll();
}

// send: one increment on a connection of its own pool (api's `apart`), so that it never queues
// behind a connection of a parked thread; its answer is kept for its column.
async function send() {
  if (!run.key) return status('turn step mode on first', 'error');
  const name = String.fromCharCode(65 + run.sent++);
  const path = `/counter/${encodeURIComponent(run.key)}/increment?step_timeout_ms=${PARK_TIMEOUT_MS}`;
  status(`increment ${name} sent: it parks at "asked for the lock"`);
  const r = await api('POST', path, 0, true);
  run.answers.set(name, r);
  await poll();
}

// step: moves one request past its point; at= makes a retry after a timeout harmless.
async function step(req) {
  const path = `/control/step?request=${req.id}&at=${req.point_index}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await api('POST', path, STEP_TIMEOUT_MS);
    if (r.status === 200) return poll();
    if (r.status === 409 && /stepped already/.test(r.json.error ?? '')) return poll();
    if (r.status !== 0) { status(`${req.name}: ${r.json.error}`, 'error'); return poll(); }
  }
  status(`${req.name}: no answer to the step after 3 tries`, 'error');
}

function column(name) {
  if (run.columns.has(name)) return run.columns.get(name);
  const col = document.createElement('div');
  col.className = 'step-col';
  col.dataset.name = name;
  col.innerHTML = `<h3><b class="name"></b> <span class="who"></span></h3><ol class="code"></ol>
    <p class="local"></p><p class="where"></p><button type="button" class="step"></button>`;
  col.querySelector('.name').textContent = name;
  col.querySelector('.code').replaceChildren(...LINES.map(([verb, code]) =>
    Object.assign(document.createElement('li'), { textContent: code, className: `line-${verb}` })));
  col.querySelector('.step').addEventListener('click', () => {
    const req = run.seen.get(name);
    if (req && !col.classList.contains('finished')) step(req);
  });
  run.columns.set(name, col);
  $('step-columns').append(col);
  return col;
}

function fillColumn(name, req, answer) {
  const col = column(name);
  const finished = !req;
  const last = run.seen.get(name);
  const waiting = req?.state === 'waiting for the lock';
  const at = finished ? LINES.length : req.point_index;
  col.classList.toggle('finished', finished);
  col.classList.toggle('waiting', waiting);
  col.dataset.point = finished ? 'finished' : req.point;
  col.dataset.at = at; // the index of the next line; 5 once it answered
  col.querySelector('.who').textContent = last ? `pid ${last.pid} · tid ${last.tid}` : '';
  col.querySelectorAll('.code li').forEach((li, i) => {
    li.classList.toggle('next', i === at);
    li.classList.toggle('done', i < at);
  });
  const read = req?.read ?? last?.read;
  col.querySelector('.local').textContent = `v = ${read ?? '?'}`;
  col.querySelector('.where').textContent = finished
    ? (answer ? `answered ${answer.status}: ${answer.status === 200 ? `wrote ${answer.json.value}` : answer.json.error}` : 'finished')
    : waiting ? `waiting for the lock held by pid ${req.waiting_for_pid ?? '?'}: it goes on by itself once that pid unlocks`
    : `${req.state} at "${req.point.replace('V+1', `${(read ?? 0) + 1}`).replace('V', `${read}`)}"`;
  const button = col.querySelector('.step');
  button.disabled = finished || waiting || req.state !== 'parked';
  button.textContent = finished ? 'done' : `Step ${name}: ${LINES[at][0]}`;
}

// The trace's words for what the columns show: two holders at once, and writes of the same value.
function verdicts(key, requests) {
  const names = new Map([...run.seen.values()].map((r) => [r.pid, r.name]));
  // Once seen, two inside at once stays said: it is why the update is lost a step later.
  if (key.holders.length > 1) {
    const who = key.holders.map((pid) => `${names.get(pid) ?? '?'} (pid ${pid})`).join(' and ');
    run.inside = `${who}: ${key.holders.length === 2 ? 'both' : key.holders.length} inside the "locked" section at once`;
  }
  const lines = run.inside ? [run.inside] : [];
  const wrote = new Map(); // value written -> names
  for (const [name, r] of run.seen) {
    const answer = run.answers.get(name);
    const live = requests.find((x) => x.name === name);
    const written = answer?.status === 200 ? answer.json.value : live && live.point_index >= 3 && live.read !== null ? live.read + 1 : null;
    if (written !== null && r.read !== null) wrote.set(written, [...(wrote.get(written) ?? []), name]);
  }
  for (const [value, who] of wrote) {
    if (who.length < 2) continue;
    const lost = who.length === 2 ? 'one update lost' : `${who.length - 1} updates lost`;
    lines.push(`${who.join(' and ')} both read ${value - 1} and wrote ${value}: ${lost}`);
  }
  return lines;
}

function render(view) {
  const key = view.keys.find((k) => k.key === run.key);
  document.body.classList.toggle('stepping', Boolean(key) || run.columns.size > 0);
  if (!key) { $('step-verdict').textContent = ''; return; }
  const requests = view.requests.filter((r) => r.key === run.key);
  for (const r of requests) run.seen.set(r.name, { ...run.seen.get(r.name), ...r, read: r.read ?? run.seen.get(r.name)?.read ?? null });
  for (const name of run.seen.keys()) fillColumn(name, requests.find((r) => r.name === name), run.answers.get(name));
  $('step-value').textContent = `${run.key} in the file: ${key.value}`;
  const names = new Map([...run.seen.values()].map((r) => [r.pid, r.name]));
  $('step-owner').textContent = key.holders.length ? `inside the lock: ${key.holders.map((p) => `${names.get(p) ?? '?'} (pid ${p})`).join(', ')}`
    : key.owner_pid ? `lock owner: pid ${key.owner_pid}` : 'lock owner: nobody';
  const acked = [...run.answers.values()].filter((a) => a.status === 200).length;
  $('step-acks').textContent = `increments: ${run.sent} sent, ${acked} acknowledged`;
  $('step-schedule').textContent = `schedule: ${key.schedule || '(no step yet)'}`;
  const lines = verdicts(key, requests);
  $('step-verdict').textContent = lines.join('\n');
  $('step-verdict').classList.toggle('bad', lines.length > 0);
}

let busy = false;
async function poll() {
  if (busy) return;
  busy = true;
  try {
    const r = await api('GET', '/step', 1500);
    if (r.status === 200) render(r.json);
  } finally { busy = false; }
}

// exercise: the guided exercise's setup, through the mode form (its Apply is a control too).
function exercise(mode, preload) {
  const form = $('config-form');
  form.elements.mode.value = mode;
  form.elements.preload.checked = preload;
  form.elements.workers.value = 2;
  form.elements.threads.value = 2;
  form.requestSubmit();
}

export function installStep() {
  $('step-form').addEventListener('submit', turnOn);
  $('step-off').addEventListener('click', turnOff);
  $('step-send').addEventListener('click', send);
  $('ex-thread').addEventListener('click', () => exercise('thread', false));
  $('ex-mutex').addEventListener('click', () => exercise('mutex', true));
  setInterval(poll, POLL_MS);
}
