// The page's shared state and its one way to talk to the server: dashboard.js, which polls and
// renders, and controls.js, which acts, both build on this module and on nothing of each other.
// Everything comes from the server that served this page; nothing is fetched from elsewhere.

// takeToken: the controls' token, from the page (the server puts it there for a loopback browser
// in --dashboard-controls loopback) or from ?token= in the address, which is then removed from the
// address bar and history: the token goes out in the X-Forklock-Token header only, never in a URL.
function takeToken() {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl !== null) {
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  return document.querySelector('meta[name="forklock-token"]')?.content || fromUrl || '';
}

export const state = {
  token: takeToken(),
  since: 0,
  tracing: true,
  records: [], // held or timed-out sections, oldest first, pruned to the window
  byKey: new Map(), // key -> its recent records that held it, for overlap checks
  threads: new Map(), // pid -> Set of tids seen
  keyColors: new Map(),
  overlapsTotal: 0,
  workers: null,
  locks: null,
  keys: new Map(), // key -> {ack, value, analysis}
  deaths: new Map(), // "pid:died_ns" -> {pid, died_ns, signal, keys, usable: {key: ns}}
  killedKeys: new Map(), // pid -> {key, since_ns}: what this page killed it for, and since when
  holdSince: new Map(), // key -> server time this page's crash act saw its holder
  open: new Map(), // key -> {pid, since_ns}: held now (a shared /locks), not yet in the trace
  clock: null, // {serverNs, perfMs}: server time = serverNs + (performance.now() - perfMs) ms
};

export function showBanner(text) {
  const b = document.getElementById('banner');
  b.textContent = text;
  b.hidden = !text;
}

// api: one request to this server, with the token (in its header) when the page has one. A worker
// blocked while it holds a key (hold_ms) also stalls the other keep-alive connections it
// accepted, so reads give up after timeoutMs: aborting closes that connection, the next request
// takes another one.
// `credentials: 'omit'` puts a request in a socket pool of its own (`apart`): see controls.js.
export async function api(method, path, timeoutMs = 0, apart = false) {
  const headers = state.token ? { 'X-Forklock-Token': state.token } : {};
  let response;
  try {
    const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
    const credentials = apart ? 'omit' : 'same-origin';
    response = await fetch(path, { method, headers, cache: 'no-store', signal, credentials });
  } catch (e) {
    return { status: 0, json: { error: `no answer from the server (${e.message})` } };
  }
  let json = null;
  try {
    json = await response.json();
  } catch (e) {
    // A body cut short (the timeout can fire between the headers and the body) is no answer,
    // whatever its status said: a caller that sees 200 reads the JSON.
    const error = `${response.status} without JSON (${e.message})`;
    return { status: response.ok ? 0 : response.status, json: { error } };
  }
  if (response.status === 403) {
    showBanner(`Refused (403): ${json.error ?? 'forbidden'}` + (state.token ? '' :
               ' — open this page with ?token=TOKEN, the token the server printed at start.'));
  }
  return { status: response.status, json };
}

export function keyState(key) {
  if (!state.keys.has(key)) state.keys.set(key, { ack: 0, base: 0, fired: false, value: null, analysis: null });
  return state.keys.get(key);
}

export function serverNow() {
  if (!state.clock) return 0;
  return state.clock.serverNs + (performance.now() - state.clock.perfMs) * 1e6;
}
