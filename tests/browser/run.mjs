// The browser suite's entry point (meson test --suite browser): checks what the tests need, so
// a machine without it fails with the command that installs it instead of skipping, then runs
// them (one file: node:test runs its tests one after the other).

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
const tests = process.argv.slice(2).length ? process.argv.slice(2) : [path.join(here, 'dashboard.test.mjs')];
const result = spawnSync(process.execPath, ['--test', ...tests], { stdio: 'inherit' });
process.exit(result.status ?? 1);
