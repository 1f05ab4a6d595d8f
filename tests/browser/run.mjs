// The browser suite's entry point (meson test --suite browser): checks what the tests need, so
// a machine without it fails with the command that installs it instead of skipping, then runs
// them (node:test runs a file's tests one after the other, and the files one at a time).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CHROMIUM } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const install = 'apt-get install chromium && npm ci --prefix tests/browser';
const missing = [];
if (!fs.existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (Debian's chromium)`);
if (!fs.existsSync(path.join(here, 'node_modules', 'playwright-core', 'package.json')))
  missing.push(`${path.join(here, 'node_modules', 'playwright-core')}`);
if (missing.length) {
  console.error(`The browser tests need ${missing.join(' and ')}: run\n  ${install}`);
  process.exit(1);
}
const tests = process.argv.slice(2).length ? process.argv.slice(2)
  : ['dashboard.test.mjs', 'security.test.mjs', 'step.test.mjs'].map((name) => path.join(here, name));
// One file after the other: each test runs a server and a browser, on a machine of 2 cores.
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...tests], { stdio: 'inherit' });
process.exit(result.status ?? 1);
