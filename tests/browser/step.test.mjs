// The step panel in a real browser (issue 25): the guided exercise with 2 workers of 2 threads,
// driven by the page's own buttons, and the page on a projector's sizes without clipped text.

import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import test from 'node:test';

import { clippedText, setup, waitUntil } from './harness.mjs';

const VERBS = ['lock', 'read', 'write', 'unlock', 'done'];
const column = (name) => `#step-columns .step-col[data-name="${name}"]`;
const at = (page, name) => page.$eval(column(name), (c) => Number(c.dataset.at)).catch(() => -1);

async function turnOn(page, key) {
  await page.fill('#step-form input[name=key]', key);
  await page.click('#step-on');
  await page.waitForSelector('#step-status.good', { timeout: 10000 });
}

// send: one increment from the page's button; done once its column shows it parked.
async function send(page, name) {
  await page.click('#step-send');
  await page.waitForSelector(`${column(name)}[data-at="0"]:not(.waiting) button.step:enabled`, { timeout: 10000 });
}

// stepTo: "NAME:verb" of a schedule, by the column's Step button: click until NAME has done verb.
async function stepTo(page, name, verb) {
  const target = VERBS.indexOf(verb);
  for (let now = await at(page, name); now <= target; now = await at(page, name)) {
    await page.click(`${column(name)} button.step:enabled`, { timeout: 10000 });
    await waitUntil(`${name} to pass '${VERBS[now]}'`, async () => (await at(page, name)) > now, 10000, 50);
  }
}

// A GET on a connection of its own: a kept-alive one may belong to a thread parked at a gate.
function fresh(server, route) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${server.url}${route}`, { agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${route} in 5 s`)));
    req.on('error', reject);
  });
}

const stepView = (server) => fresh(server, '/step');

async function screenshot(page, name) {
  const dir = process.env.FORKLOCK_SCREENSHOT_DIR ?? '/tmp/forklock-screenshots';
  for (const [width, height] of [[1280, 720], [1024, 768]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(400); // one poll and a frame at this size
    assert.deepEqual(await clippedText(page, ['#controls']), [], `clipped text at ${width}x${height}`);
    await page.screenshot({ path: path.join(dir, `${name}-${width}x${height}.png`) });
  }
}

test('Step: in thread mode with 2 workers, A read, B read, A write, B write lose one update', async (t) => {
  const { server, page, errors } = await setup(t, ['--lock-mode', 'thread', '--threads', '2'], 2);
  await page.goto(`${server.url}/dashboard`);
  await turnOn(page, 'lesson');
  await send(page, 'A');
  await send(page, 'B');
  const parked = (await stepView(server)).requests;
  assert.notEqual(parked[0].pid, parked[1].pid, 'A and B landed on one worker');

  await stepTo(page, 'A', 'read');
  await stepTo(page, 'B', 'read');
  await page.waitForFunction(() => /A \(pid \d+\) and B \(pid \d+\): both inside the "locked" section at once/
    .test(document.getElementById('step-verdict').textContent));
  assert.equal(await page.textContent(`${column('B')} .local`), 'v = 0');
  await stepTo(page, 'A', 'write');
  await stepTo(page, 'B', 'write');
  await page.waitForFunction(() => /A and B both read 0 and wrote 1: one update lost/
    .test(document.getElementById('step-verdict').textContent));
  for (const name of ['A', 'B']) await stepTo(page, name, 'done');
  await page.waitForFunction(() => /2 sent, 2 acknowledged/.test(document.getElementById('step-acks').textContent));
  assert.equal((await fresh(server, '/counter/lesson')).value, 1);
  const { keys } = await stepView(server);
  assert.equal(keys[0].schedule, 'A:lock A:read B:lock B:read A:write B:write A:unlock A:done B:unlock B:done');
  await screenshot(page, 'step-thread-lost-update');
  assert.deepEqual(errors, []);
});

test('Step: in mutex mode with preload, B waits at the lock until A unlocks, and the file ends at 2', async (t) => {
  const { server, page, errors } = await setup(t, ['--lock-mode', 'mutex', '--preload', '--threads', '2'], 2);
  await page.goto(`${server.url}/dashboard`);
  await turnOn(page, 'lesson');
  await send(page, 'A');
  await send(page, 'B');
  await stepTo(page, 'A', 'read');
  await page.click(`${column('B')} button.step:enabled`); // B: lock, blocks inside lock()
  const a = (await stepView(server)).requests.find((r) => r.name === 'A');
  const waiting = await page.waitForSelector(`${column('B')}.waiting`, { timeout: 10000 });
  assert.match(await waiting.textContent(), new RegExp(`waiting for the lock held by pid ${a.pid}`));
  assert.ok(await page.$eval(`${column('B')} button.step`, (b) => b.disabled), 'B can be stepped past the lock');
  await screenshot(page, 'step-mutex-b-waits');
  await stepTo(page, 'A', 'unlock');
  // B takes the lock by itself and parks, holding it, before its read.
  await page.waitForSelector(`${column('B')}[data-at="1"]:not(.waiting)`, { timeout: 10000 });
  await stepTo(page, 'B', 'read');
  assert.equal(await page.textContent(`${column('B')} .local`), 'v = 1');
  for (const name of ['A', 'B']) await stepTo(page, name, 'done');
  await page.waitForFunction(() => /2 sent, 2 acknowledged/.test(document.getElementById('step-acks').textContent));
  assert.equal((await fresh(server, '/counter/lesson')).value, 2);
  assert.equal(await page.textContent('#step-verdict'), '');
  assert.deepEqual(errors, []);
});
