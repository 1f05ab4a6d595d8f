// Issue 23 in a real browser: a page of another origin (a second server on another loopback
// port, which Chromium calls the same site, not the same origin) tries the controls with fetch
// and with a form POST and changes nothing; the dashboard itself still controls the server, and
// a token given in its URL leaves the address bar and never goes into a request's URL.

import assert from 'node:assert/strict';
import http from 'node:http';
import test from 'node:test';

import { setup, waitUntil } from './harness.mjs';

const TOKEN = 'browser-security-token-0123456789';

// evilSite: another origin serving `html` at /, closed when the test ends.
async function evilSite(t, html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${server.address().port}`;
}

// holdKey: one increment that holds `key` for `ms` in some worker; resolves with its answer.
async function holdKey(server, key, ms) {
  const held = fetch(`${server.url}/counter/${key}/increment?hold_ms=${ms}`, { method: 'POST' })
    .then(async (r) => ({ status: r.status, json: await r.json() }));
  const owner = await waitUntil(`a worker holding ${key}`, async () =>
    (await server.json('/locks')).keys?.find((k) => k.key === key)?.owner_pid);
  return { held, owner };
}

test('Security: a page of another origin cannot kill a worker or switch the mode, by fetch or form',
  async (t) => {
    const { server, page } = await setup(t, ['--lock-mode', 'mutex', '--preload'], 2);
    const { held, owner } = await holdKey(server, 'held', 4000);
    const target = `${server.url}/control/kill?key=held`;
    const evil = await evilSite(t, `<!doctype html><title>evil</title>
      <form id="f" method="POST" action="${target}" enctype="text/plain">
        <input name="x" value="y"></form>
      <script>
        const opts = { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: 'x' };
        Promise.allSettled([fetch(${JSON.stringify(target)}, opts),
                            fetch(${JSON.stringify(`${server.url}/control/config?mode=none`)}, opts)])
          .then((all) => { document.title = 'fetched ' + all.map((r) => r.status).join(); });
      </script>`);
    await page.goto(evil);
    await page.waitForFunction(() => document.title.startsWith('fetched'), null, { timeout: 10000 });
    // The form: a top-level navigation to the control, whose answer the browser then shows.
    await Promise.all([page.waitForURL(target, { timeout: 10000 }), page.evaluate(() => document.getElementById('f').submit())]);
    const answer = JSON.parse(await page.textContent('body'));
    assert.match(answer.error, /Origin|Sec-Fetch-Site/);

    const { status, json } = await held; // the holder finished its increment: it was not killed
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal(json.pid, owner);
    const w = await server.json('/workers');
    assert.deepEqual(w.deaths, []);
    assert.equal(w.mode, 'mutex');
    assert.equal(w.generation, 0);
    assert.ok(w.workers.some((x) => x.pid === owner));
  });

test('Security: in loopback mode the dashboard opened without ?token= kills the holder', async (t) => {
  const { server, page, errors } = await setup(t, ['--lock-mode', 'mutex', '--preload'], 2);
  await page.goto(`${server.url}/dashboard`);
  await page.waitForFunction(() => document.body.dataset.mode === 'mutex');
  assert.match(await page.textContent('#h-controls'), /controls loopback · token given/);
  await page.click('#crash-act');
  await page.waitForSelector('#crash-status.good', { timeout: 20000 });
  const { deaths } = await server.json('/workers');
  assert.equal(deaths.length, 1);
  assert.deepEqual(deaths[0].held, ['race']);
  assert.ok(errors.every((e) => /Failed to load resource|ERR_EMPTY_RESPONSE/.test(e)), errors.join('\n'));
});

test('Security: in token mode the page takes ?token= once, drops it from the address bar and URLs',
  async (t) => {
    const { server, page, errors } = await setup(
      t, ['--lock-mode', 'thread', '--dashboard-controls', 'token', '--dashboard-token', TOKEN], 2);
    const urls = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(`${server.url}/dashboard?token=${TOKEN}#top`);
    await page.waitForFunction(() => document.body.dataset.mode === 'thread');
    assert.equal(page.url(), `${server.url}/dashboard#top`);
    await page.click('#apply');
    await page.waitForSelector('#config-status.good', { timeout: 30000 });
    assert.ok((await server.json('/workers')).generation > 0);
    const leaked = urls.filter((u) => u.includes(TOKEN)).slice(1); // the one the test opened
    assert.deepEqual(leaked, []);
    assert.ok(urls.some((u) => u.includes('/control/config?')), urls.join('\n'));
    assert.deepEqual(errors, []);
  });
