// The swimlanes: one row per worker thread (pid, tid), time left to right, the last
// WINDOW_MS of the server's monotonic clock. Waiting is hatched, holding solid, a section that
// held its key while another thread held it too is red. Each hold shows its fencing token when it
// is wide enough; with a lease, an orange tick marks where a hold outlived it, and a write that
// --fencing refused, or that landed after the lease was lost, is marked at its end. Redrawn every
// animation frame from the bounded window of records that dashboard.js keeps; nothing here fetches.

export const WINDOW_MS = 6000;
const LABEL_W = 118;
const AXIS_H = 16;
const PALETTE = ['#2f6fb3', '#2a9d8f', '#7b5ea7', '#b07d2b', '#3d7a3d', '#a34f7a'];
const OVERLAP = '#d62828';
const REFUSED = '#6c757d';
const LEASE = '#e76f00';

const patterns = new Map();

function hatch(ctx, color) {
  if (patterns.has(color)) return patterns.get(color);
  const tile = document.createElement('canvas');
  tile.width = tile.height = 6;
  const t = tile.getContext('2d');
  t.strokeStyle = color;
  t.lineWidth = 1.5;
  t.beginPath();
  t.moveTo(0, 6); t.lineTo(6, 0);
  t.moveTo(-1, 1); t.lineTo(1, -1);
  t.moveTo(5, 7); t.lineTo(7, 5);
  t.stroke();
  const p = { id: `hatch:${color}`, pattern: ctx.createPattern(tile, 'repeat') };
  patterns.set(color, p);
  return p;
}

export function keyColor(state, key) {
  if (!state.keyColors.has(key)) state.keyColors.set(key, PALETTE[state.keyColors.size % PALETTE.length]);
  return state.keyColors.get(key);
}

// The rows to draw: the live workers' threads first, then pids seen in the window (old
// generations draining, dead workers) so their last sections and crash stay visible.
function laneRows(state, fromNs) {
  const pids = [];
  const seen = new Set();
  for (const w of state.workers?.workers ?? []) { pids.push(w.pid); seen.add(w.pid); }
  const extra = new Set();
  for (const r of state.records) if (!seen.has(r.pid) && r.released_ns >= fromNs) extra.add(r.pid);
  for (const d of state.deaths.values()) if (!seen.has(d.pid) && d.died_ns >= fromNs) extra.add(d.pid);
  const rows = [];
  for (const pid of [...pids.sort((a, b) => a - b), ...[...extra].sort((a, b) => a - b)]) {
    const tids = [...(state.threads.get(pid) ?? [pid])].sort((a, b) => a - b);
    tids.forEach((tid, i) => rows.push({ pid, tid, first: i === 0, live: seen.has(pid), threads: tids.length }));
  }
  return rows;
}

function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return { ctx, width: canvas.clientWidth, height: canvas.clientHeight };
}

function drawAxis(ctx, width, height, x) {
  ctx.fillStyle = '#888';
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'center';
  for (let s = 0; s <= WINDOW_MS / 1000; s++) {
    const px = x(-s * 1e9);
    ctx.fillRect(px, AXIS_H - 4, 1, height - AXIS_H + 4);
    ctx.fillText(s === 0 ? 'now' : `−${s} s`, Math.min(px, width - 14), 11);
  }
  ctx.textAlign = 'left';
}

function drawLabels(ctx, rows, rowH, top) {
  ctx.font = `${Math.min(12, Math.max(9, rowH - 2))}px system-ui, sans-serif`;
  ctx.textBaseline = 'middle';
  const every = Math.ceil(11 / Math.max(rowH, 0.1)); // with many lanes, label one in `every`
  rows.forEach((row, i) => {
    if (i % every) return;
    ctx.fillStyle = row.live ? '#222' : '#aaa';
    const text = row.threads > 1 ? (row.first ? `${row.pid} · t${row.tid}` : `  t${row.tid}`) : `pid ${row.pid}`;
    ctx.fillText(text, 4, top + i * rowH + (every > 1 ? 5 : rowH / 2));
  });
  ctx.textBaseline = 'alphabetic';
}

// Rects batched by fill (one fill() per colour or hatch) and, per lane, merged while they touch:
// a thread serves one request at a time, so its sections arrive in time order, and thousands of
// sub-pixel sections in a busy window become a few rects.
class Batch {
  constructor(rows) { this.paths = new Map(); this.runs = Array.from({ length: rows }, () => new Map()); }
  add(row, style, x0, x1, y, h) {
    const runs = this.runs[row];
    const run = runs.get(style);
    if (run && x0 <= run.x1 + 0.75) { if (x1 > run.x1) run.x1 = x1; return; }
    if (run) this.emit(run);
    runs.set(style, { style, x0, x1, y, h });
  }
  emit(run) {
    let path = this.paths.get(run.style);
    if (!path) this.paths.set(run.style, (path = new Path2D()));
    path.rect(run.x0, run.y, Math.max(1.5, run.x1 - run.x0), run.h);
  }
  fill(ctx) {
    for (const runs of this.runs) for (const run of runs.values()) this.emit(run);
    // Red last: an overlap stays visible under a merged run of its neighbours.
    const paths = [...this.paths].sort(([a], [b]) => (a === OVERLAP) - (b === OVERLAP));
    for (const [style, path] of paths) { ctx.fillStyle = style.pattern ?? style; ctx.fill(path); }
  }
}

function drawSections(ctx, state, rowIndex, rowH, top, x, left, right) {
  const h = Math.max(2, rowH - (rowH > 8 ? 3 : 1));
  const waits = new Batch(rowIndex.size), holds = new Batch(rowIndex.size);
  const marked = [];
  for (const r of state.records) {
    if (x(r.released_ns) < left) continue;
    const row = rowIndex.get(r.lane);
    if (row === undefined) continue;
    const y = top + row * rowH + (rowH - h) / 2;
    const color = r.color;
    const wait0 = Math.max(left, x(r.requested_ns)), wait1 = Math.min(right, x(r.acquired_ns || r.released_ns));
    if (wait1 > wait0 + 0.5) waits.add(row, hatch(ctx, r.acquired_ns ? color : '#999'), wait0, wait1, y, h);
    if (!r.acquired_ns) continue;
    const hold0 = Math.max(left, x(r.acquired_ns)), hold1 = Math.min(right, x(r.unlock_ns));
    if (hold1 < left || hold0 > right) continue;
    // A refused write overlapped a holder, harmlessly: grey wins over red.
    const style = r.outcome === 'refused' ? REFUSED : r.overlap ? OVERLAP : r.outcome === 'reset' ? '#000' : color;
    holds.add(row, style, hold0, hold1, y, h);
    marked.push({ r, y, h, x0: hold0, x1: hold1 });
  }
  waits.fill(ctx);
  holds.fill(ctx);
  drawOpen(ctx, state, rowIndex, rowH, top, x, left, right, h);
  return drawMarks(ctx, state, marked, x, left, right);
}

// The fencing marks on the holds in view: with a lease (/locks lease_ms), an orange tick where a
// hold outlived it, labelled inside the hold (from there another holder can be inside); the token
// at the hold's right end when it fits; at the end of a write --fencing refused "✕ 409", of a write that landed after its
// lease was lost (outcome lost_lock) "late write". Returns how many of each were in view.
function drawMarks(ctx, state, marked, x, left, right) {
  const leaseNs = (state.locks?.lease_ms ?? 0) * 1e6;
  const seen = { expired: 0, refused: 0, late: 0 };
  ctx.font = '10px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  const label = (text, color, px, y) => {
    const w = ctx.measureText(text).width;
    ctx.fillStyle = color;
    ctx.fillText(text, px + 3 + w > right ? px - 3 - w : px + 3, y);
  };
  for (const { r, y, h, x0, x1 } of marked) {
    let free = x0 + 3; // where the token may start: after the lease's label, inside the hold
    if (leaseNs && r.unlock_ns - r.acquired_ns > leaseNs) {
      const px = x(r.acquired_ns + leaseNs);
      if (px >= left && px <= right) {
        seen.expired++;
        ctx.fillStyle = LEASE;
        ctx.fillRect(px - 1, y - 2, 3, h + 4);
        ctx.fillStyle = '#fff';
        ctx.fillText('lease expired', px + 4, y + h / 2);
        free = px + 8 + ctx.measureText('lease expired').width;
      }
    }
    const token = `#${r.token}`;
    const tokenX = x1 - 3 - ctx.measureText(token).width;
    if (r.token && tokenX >= free) {
      ctx.fillStyle = '#fff';
      ctx.fillText(token, tokenX, y + h / 2);
    }
    if (r.outcome === 'refused') { seen.refused++; label('✕ 409 refused', REFUSED, x1, y + h / 2); }
    if (r.outcome === 'lost_lock') { seen.late++; label('late write', OVERLAP, x1, y + h / 2); }
  }
  ctx.textBaseline = 'alphabetic';
  return seen;
}

// Keys held right now (from /locks), on their holder's first lane (/locks names no thread; two
// keys of one worker share the lane, one above the other), fading towards now.
function drawOpen(ctx, state, rowIndex, rowH, top, x, left, right, h) {
  const byRow = new Map();
  for (const [key, open] of state.open) {
    const tid = [...(state.threads.get(open.pid) ?? [open.pid])].sort((a, b) => a - b)[0];
    const row = rowIndex.get(`${open.pid}:${tid}`);
    if (row === undefined) continue;
    if (!byRow.has(row)) byRow.set(row, []);
    byRow.get(row).push([key, open]);
  }
  for (const [row, list] of byRow) {
    const part = h / list.length;
    list.forEach(([key, open], i) => {
      const x0 = Math.max(left, x(open.since_ns));
      const y = top + row * rowH + (rowH - h) / 2 + i * part;
      const fade = ctx.createLinearGradient(x0, 0, right, 0);
      fade.addColorStop(0, keyColor(state, key));
      fade.addColorStop(1, '#ffffff00');
      ctx.fillStyle = fade;
      ctx.fillRect(x0, y, Math.max(2, right - x0), Math.max(1, part - (list.length > 1 ? 1 : 0)));
    });
  }
}

// A death: a black line across the dead pid's lanes, what it held, the section it never
// finished (when this page's crash act saw it begin), and in green the wait until the key was
// taken again. Labels flip to the left of the line near the right edge.
function drawDeaths(ctx, state, rows, rowH, top, x, left, right) {
  ctx.font = '11px system-ui, sans-serif';
  let drawn = 0;
  for (const d of state.deaths.values()) {
    const px = x(d.died_ns);
    if (px < left || px > right) continue;
    drawn++;
    const first = rows.findIndex((r) => r.pid === d.pid);
    const y0 = first < 0 ? top : top + first * rowH;
    const span = Math.max(12, first < 0 ? rows.length * rowH : rows.filter((r) => r.pid === d.pid).length * rowH);
    if (d.heldSince) {
      ctx.fillStyle = '#555';
      const x0 = Math.max(left, x(d.heldSince));
      ctx.fillRect(x0, y0 + 3, px - x0, Math.max(2, Math.min(rowH, span) - 6));
    }
    ctx.fillStyle = '#000';
    ctx.fillRect(px - 1, y0 - 2, 3, span + 4);
    const text = (label, y) => {
      const w = ctx.measureText(label).width;
      ctx.fillText(label, px + 4 + w > right ? px - 4 - w : px + 4, y);
    };
    text(`✕ ${d.pid} ${d.signal ? 'killed' : 'exited'}${d.keys.length ? ` holding ${d.keys.join(', ')}` : ''}`, y0 + 10);
    for (const [key, ns] of Object.entries(d.usable)) {
      const ux = Math.min(right, x(ns));
      ctx.fillStyle = '#2a9d4a';
      ctx.fillRect(px, y0 + span - 2, Math.max(2, ux - px), 3);
      text(`${key} usable again after ${((ns - d.died_ns) / 1e6).toFixed(0)} ms`, y0 + span + 12);
    }
  }
  return drawn;
}

// draw: one frame at server time nowNs.
export function draw(canvas, state, nowNs) {
  const { ctx, width, height } = fitCanvas(canvas);
  ctx.clearRect(0, 0, width, height);
  const fromNs = nowNs - WINDOW_MS * 1e6;
  const left = LABEL_W, right = width - 4;
  const x = (ns) => left + ((ns - fromNs) / (WINDOW_MS * 1e6)) * (right - left);
  const xr = (rel) => x(nowNs + rel);
  drawAxis(ctx, width, height, xr);
  const rows = laneRows(state, fromNs);
  const top = AXIS_H + 2;
  const rowH = rows.length ? Math.min(44, (height - top - 14) / rows.length) : 0;
  const rowIndex = new Map(rows.map((r, i) => [`${r.pid}:${r.tid}`, i]));
  for (let i = 0; i < rows.length; i += 2) {
    ctx.fillStyle = '#f4f6f9';
    ctx.fillRect(0, top + i * rowH, width, rowH);
  }
  drawLabels(ctx, rows, rowH, top);
  const marks = drawSections(ctx, state, rowIndex, rowH, top, x, left, right);
  canvas.dataset.leasesExpired = marks.expired;
  canvas.dataset.refused = marks.refused;
  canvas.dataset.lateWrites = marks.late;
  canvas.dataset.crashes = drawDeaths(ctx, state, rows, rowH, top, x, left, right);
  canvas.dataset.lanes = rows.length;
}
