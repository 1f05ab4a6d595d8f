// What every browser test needs: a real forklock server of its own (own process group, own data
// dir, a free loopback port) and Debian's chromium driven by playwright-core, each torn down when
// the test ends, failed or not, with a screenshot saved under the build directory first.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.FORKLOCK_CHROMIUM ?? '/usr/bin/chromium';
const INSTALL = 'apt-get install chromium && npm ci --prefix tests/browser';

// prerequisites: a clear failure (not a skip) when the browser or the driver is missing.
export async function loadPlaywright() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run ${INSTALL}`);
  try {
    return await import('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is not installed (${e.code ?? e.message}): run ${INSTALL}`);
  }
}

const live = new Set();
function killAll() {
  for (const child of live) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { killAll(); process.exit(1); });

function waitForListening(child, log, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "Listening at" in ${ms} ms:\n${log.text}`)), ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}):\n${log.text}`));
    });
    child.stderr.on('data', (chunk) => {
      log.text += chunk;
      const m = /Listening at: http:\/\/127\.0\.0\.1:(\d+) /.exec(log.text);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
  });
}

export async function waitUntil(what, predicate, ms = 15000, every = 100) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

export class Server {
  static async start(args, workers) {
    const bin = process.env.FORKLOCK_BIN;
    if (!bin) throw new Error('FORKLOCK_BIN is not set: run these tests with meson test --suite browser');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forklock-browser-'));
    const child = spawn(bin, ['-b', '127.0.0.1:0', '-w', String(workers), '--data-dir', path.join(dir, 'data'), ...args],
      { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    const server = new Server(child, dir);
    try {
      server.port = await waitForListening(child, server.log, 10000);
      server.url = `http://127.0.0.1:${server.port}`;
      await waitUntil(`${workers} workers`, async () => (await server.json('/workers')).workers?.length === workers);
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  constructor(child, dir) {
    this.child = child;
    this.dir = dir;
    this.log = { text: '' };
    this.exited = new Promise((resolve) => child.on('exit', resolve));
  }

  async json(route, method = 'GET') {
    const response = await fetch(this.url + route, { method });
    return response.json();
  }

  // stop: TERM to the whole process group, KILL after 5 s; removes the data dir.
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      try { process.kill(-this.child.pid, 'SIGTERM'); } catch { /* gone */ }
      const timer = setTimeout(() => { try { process.kill(-this.child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await this.exited;
      clearTimeout(timer);
    }
    try { process.kill(-this.child.pid, 'SIGKILL'); } catch { /* the group is gone */ }
    live.delete(this.child);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function openBrowser() {
  const { chromium } = await loadPlaywright();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'forklock-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport: { width: 1280, height: 720 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? await context.newPage();
  const errors = [];
  // With the URL: "Failed to load resource" alone does not say which request.
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${m.text()} (${m.location().url ?? ''})`);
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return {
    page, errors,
    async close() { await context.close(); fs.rmSync(profile, { recursive: true, force: true }); },
  };
}

// setup: a server and a browser for one test; both go, after a screenshot, when it ends.
export async function setup(t, args, workers) {
  const server = await Server.start(args, workers);
  let browser;
  try {
    browser = await openBrowser();
  } catch (e) {
    await server.stop();
    throw e;
  }
  t.after(async () => {
    const dir = process.env.FORKLOCK_SCREENSHOT_DIR ?? path.join(os.tmpdir(), 'forklock-screenshots');
    fs.mkdirSync(dir, { recursive: true });
    const name = t.name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
    try { await browser.page.screenshot({ path: path.join(dir, `${name}.png`) }); } catch { /* page gone */ }
    await browser.close();
    await server.stop();
  });
  return { server, page: browser.page, errors: browser.errors };
}

// Pixels of the lanes canvas drawn red (the overlaps; no key colour and no marker is red).
export function redPixels(page) {
  return page.evaluate(() => {
    const c = document.getElementById('lanes');
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] > 180 && data[i + 1] < 90 && data[i + 2] < 90) n++;
    return n;
  });
}

// One row of the keys table: {ack, value, lost, overlaps, traceLost} as numbers (NaN for –).
export async function keyRow(page, key) {
  return page.evaluate((k) => {
    const row = document.querySelector(`#key-table tr[data-id="${CSS.escape(k)}"]`);
    if (!row) return null;
    const cell = (f) => Number(row.querySelector(`[data-field="${f}"]`).textContent);
    return { ack: cell('ack'), value: cell('value'), lost: cell('lost'), overlaps: cell('overlaps'), traceLost: cell('trace-lost') };
  }, key);
}

// Text the page cuts off: an element with text of its own whose box is wider or taller than
// what shows (an ellipsis, a line clamp, a scroll box), or that sticks out of an ancestor that
// clips. `scrollers`: selectors of boxes allowed to scroll vertically (a long column of
// controls). Each entry says which element and by how much.
export function clippedText(page, scrollers = []) {
  return page.evaluate((allowed) => {
    const out = [];
    const ownText = (el) => [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const name = (el) => el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${el.className}`;
    const clips = (el) => getComputedStyle(el).overflowX !== 'visible' || getComputedStyle(el).overflowY !== 'visible';
    const mayScroll = (el) => allowed.some((s) => el.closest(s) === el);
    for (const el of document.querySelectorAll('body *')) {
      if (!ownText(el) || !visible(el) || el.closest('[hidden], details:not([open]) > :not(summary)')) continue;
      if (el.scrollWidth > el.clientWidth + 1 && clips(el)) out.push(`${name(el)} cut on the right by ${el.scrollWidth - el.clientWidth}px`);
      if (el.scrollHeight > el.clientHeight + 1 && clips(el)) out.push(`${name(el)} cut at the bottom by ${el.scrollHeight - el.clientHeight}px`);
      const r = el.getBoundingClientRect();
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (!clips(a)) continue;
        const b = a.getBoundingClientRect();
        if (r.right > b.right + 1) out.push(`${name(el)} sticks out of ${name(a)} on the right by ${Math.round(r.right - b.right)}px`);
        if (r.bottom > b.bottom + 1 && !mayScroll(a)) out.push(`${name(el)} sticks out of ${name(a)} at the bottom by ${Math.round(r.bottom - b.bottom)}px`);
      }
      if (r.right > document.documentElement.clientWidth + 1) out.push(`${name(el)} past the window's right edge`);
    }
    return out;
  }, scrollers);
}
