// The dashboard in a real browser (issue 13): each test starts its own server, opens /dashboard
// in Debian's chromium and drives the page the way a teacher would, by its buttons.

import assert from 'node:assert/strict';
import test from 'node:test';

import { clippedText, keyRow, redPixels, setup, waitUntil } from './harness.mjs';

const TOKEN = 'browser-test-token-0123456789abcdef';

async function fireAndWait(page) {
  await page.click('#fire');
  await page.waitForSelector('#fire-status.good', { timeout: 30000 });
}

// The row once its value is the server's own: the page polls, the test asks directly.
async function settledRow(page, server, key) {
  const { value } = await server.json(`/counter/${key}`);
  return waitUntil(`the ${key} row to show value ${value}`, async () => {
    const row = await keyRow(page, key);
    return row && row.value === value && !Number.isNaN(row.overlaps) ? row : null;
  });
}

test('Dashboard: the page loads without console errors and shows every worker pid', async (t) => {
  const { server, page, errors } = await setup(t, ['--lock-mode', 'mutex'], 4);
  await page.goto(`${server.url}/dashboard`);
  const { workers } = await server.json('/workers');
  for (const w of workers)
    await page.waitForSelector(`#worker-table tr[data-id="${w.pid}"]`, { timeout: 10000 });
  const lanes = await page.$eval('#lanes', (c) => Number(c.dataset.lanes));
  assert.ok(lanes >= workers.length, `${lanes} lanes for ${workers.length} workers`);
  await page.waitForTimeout(1000); // a few polls of every endpoint
  assert.deepEqual(errors, []);
});

test('Dashboard: thread mode with 4 workers fires red overlaps and loses acknowledged updates', async (t) => {
  const { server, page, errors } = await setup(t, ['--lock-mode', 'thread'], 4);
  await page.goto(`${server.url}/dashboard`);
  await fireAndWait(page);
  assert.ok((await redPixels(page)) > 0, 'no overlap drawn in red');
  const total = await page.$eval('#overlaps', (e) => Number(e.dataset.total));
  assert.ok(total > 0, 'no overlap counted');
  const row = await settledRow(page, server, 'race');
  assert.equal(row.ack, 60);
  assert.equal(row.lost, row.ack - row.value);
  assert.ok(row.lost > 0, `thread mode across 4 workers lost nothing: ${JSON.stringify(row)}`);
  assert.ok(row.overlaps > 0);
  // The latest example: "-> one update lost", or "-> N updates lost" when N+1 read one value.
  await page.waitForFunction(() => /-> (one update|\d+ updates) lost/.test(document.getElementById('interleaving').textContent));
  // On a projector: the latest interleaving and the header's explanation whole, at both sizes.
  for (const [width, height] of [[1280, 720], [1024, 768]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    assert.deepEqual(await clippedText(page, ['#controls']), [], `clipped text at ${width}x${height}`);
  }
  assert.deepEqual(errors, []);
});

test('Dashboard: switching to mutex with preload from the page gives 0 overlaps and 0 lost', async (t) => {
  const { server, page, errors } = await setup(t, ['--lock-mode', 'thread'], 4);
  await page.goto(`${server.url}/dashboard`);
  await page.waitForFunction(() => document.body.dataset.mode === 'thread');
  await page.selectOption('#config-form select[name=mode]', 'mutex');
  await page.check('#config-form input[name=preload]');
  await page.click('#apply');
  await page.waitForSelector('#config-status.good', { timeout: 30000 });
  const w = await server.json('/workers');
  assert.equal(w.mode, 'mutex');
  assert.equal(w.preload, true);
  assert.ok(w.workers.every((x) => x.generation === w.generation && x.mode === 'mutex'));
  await page.waitForFunction(() => document.body.dataset.mode === 'mutex');
  await fireAndWait(page);
  const row = await settledRow(page, server, 'race');
  assert.deepEqual(row, { ack: 60, value: 60, lost: 0, overlaps: 0, traceLost: 0 });
  assert.equal(await redPixels(page), 0);
  assert.equal(await page.$eval('#overlaps', (e) => Number(e.dataset.total)), 0);
  assert.deepEqual(errors, []);
});

test('Dashboard: killing the holder shows the crash marker and the key usable again', async (t) => {
  const { server, page, errors } = await setup(t, ['--lock-mode', 'mutex', '--preload'], 4);
  await page.goto(`${server.url}/dashboard`);
  await page.click('#crash-act');
  await page.waitForSelector('#crash-status.good', { timeout: 20000 });
  const { deaths } = await server.json('/workers');
  assert.equal(deaths.length, 1);
  assert.equal(deaths[0].signal, 9);
  assert.deepEqual(deaths[0].held, ['race']);
  const item = await page.waitForSelector(`#crashes li.usable[data-pid="${deaths[0].pid}"]`, { timeout: 10000 });
  assert.match(await item.textContent(), /race usable again after [\d.]+ ms/);
  const marker = await page.$eval('#lanes', (c) => c.dataset.crashes);
  assert.equal(marker, '1');
  assert.equal((await server.json('/counter/race')).value, 1); // the probe after the crash
  // Only the kill's own fetch fails: the browser reports the dropped connection as an error.
  assert.ok(errors.every((e) => /Failed to load resource|ERR_EMPTY_RESPONSE/.test(e)), errors.join('\n'));
});

test('Dashboard: with lock recovery off the crash act shows the key still locked', async (t) => {
  const { server, page } = await setup(t, ['--lock-mode', 'semaphore', '--preload', '--no-lock-recovery'], 2);
  await page.goto(`${server.url}/dashboard`);
  await page.click('#crash-act');
  await page.waitForSelector('#crash-status.error', { timeout: 20000 });
  assert.match(await page.textContent('#crash-status'), /race still locked: timed out/);
  const { deaths } = await server.json('/workers');
  assert.equal(deaths.length, 1);
  const { keys } = await server.json('/locks');
  assert.equal(keys.find((k) => k.key === 'race').owner_pid, deaths[0].pid);
  const item = await page.waitForSelector(`#crashes li.locked[data-pid="${deaths[0].pid}"]`, { timeout: 5000 });
  assert.match(await item.textContent(), new RegExp(`race still locked by the dead pid ${deaths[0].pid}`));
});

test('Dashboard: a control without the token is refused and shown, with it accepted', async (t) => {
  const { server, page, errors } = await setup(
    t, ['--lock-mode', 'thread', '--dashboard-controls', 'token', '--dashboard-token', TOKEN], 2);
  await page.goto(`${server.url}/dashboard`);
  await page.waitForFunction(() => document.body.dataset.mode === 'thread');
  await page.click('#apply');
  const banner = await page.waitForSelector('#banner:not([hidden])', { timeout: 10000 });
  assert.match(await banner.textContent(), /Refused \(403\).*token/);
  assert.match(await page.textContent('#config-status'), /refused: 403/);
  assert.equal((await server.json('/workers')).generation, 0);

  await page.goto(`${server.url}/dashboard?token=${TOKEN}`);
  await page.waitForFunction(() => document.body.dataset.mode === 'thread');
  await page.click('#apply');
  await page.waitForSelector('#config-status.good', { timeout: 30000 });
  assert.ok((await server.json('/workers')).generation > 0);
  assert.ok(await page.$eval('#banner', (b) => b.hidden));
  assert.ok(errors.every((e) => /status of 403/.test(e)), errors.join('\n'));
});

// A late write after a 300 ms lease (issue 26): the holder waits 1.5 s between its last check and
// its write, the taker gets the key after the lease on the other worker.
async function lateWrite(server) {
  const late = fetch(`${server.url}/counter/k/increment?write_delay_ms=1500`, { method: 'POST' });
  await waitUntil('a worker to hold k', async () =>
    (await server.json('/locks')).keys?.some((k) => k.key === 'k' && k.owner_pid > 0));
  const taker = await fetch(`${server.url}/counter/k/increment?timeout_ms=5000`, { method: 'POST' });
  assert.equal(taker.status, 200);
  return (await late).status;
}

for (const fencing of [false, true]) {
  test(`Dashboard: ${fencing ? 'with' : 'without'} --fencing, a lease that ran out is drawn where it expired and the late write marked ${fencing ? 'refused' : 'late'}`, async (t) => {
    const args = ['--threads', '1', '--preload', '--lock-mode', 'semaphore', '--lock-lease-ms', '300'];
    const { server, page, errors } = await setup(t, fencing ? [...args, '--fencing'] : args, 2);
    await page.goto(`${server.url}/dashboard`);
    await page.waitForSelector('#worker-table tr[data-id]', { timeout: 10000 });
    assert.equal(await lateWrite(server), fencing ? 409 : 503);
    const marks = await waitUntil('the lease and the late write drawn', async () => {
      const d = await page.$eval('#lanes', (c) => ({ ...c.dataset }));
      return Number(d.leasesExpired) >= 1 && Number(fencing ? d.refused : d.lateWrites) === 1 ? d : null;
    });
    assert.equal(Number(fencing ? marks.lateWrites : marks.refused), 0);
    const verdict = await page.$eval('#h-verdict', (e) => e.textContent);
    assert.match(verdict, fencing ? /lease is refused/ : /loses an update/);
    assert.deepEqual(errors, []);
  });
}
