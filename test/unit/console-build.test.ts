/**
 * The console bundle (console/build.ts) is rebuilt when it is missing or older than its sources,
 * as `npm start` and the tests rely on after a `git pull` without `npm install`, and is left
 * alone otherwise.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundleStale, CONSOLE_BUNDLE, ensureConsoleBundle } from '../../console/build.ts';

test('a bundle older than its sources is rebuilt; a fresh one is kept', async () => {
  assert.equal(await ensureConsoleBundle(), undefined, 'esbuild is installed: the bundle builds');
  assert.equal(bundleStale(), false);
  const marker = join(CONSOLE_BUNDLE, 'index.html');
  const fresh = statSync(marker).mtimeMs;
  assert.equal(await ensureConsoleBundle(), undefined);
  assert.equal(statSync(marker).mtimeMs, fresh, 'not rebuilt when up to date');

  const past = new Date(Date.UTC(2000, 0, 1));
  utimesSync(marker, past, past);
  assert.equal(bundleStale(), true, 'older than the sources');
  assert.equal(await ensureConsoleBundle(), undefined);
  assert.equal(bundleStale(), false);
  assert.ok(statSync(marker).mtimeMs > past.getTime());
  const js = readFileSync(join(CONSOLE_BUNDLE, 'app.js'), 'utf8');
  assert.match(js, /Syncgate console/, 'the app is in the bundle');
  assert.doesNotMatch(js, /from\s*["'](preact|uplot)/, 'dependencies are bundled, not imported at run time');
  assert.match(readFileSync(join(CONSOLE_BUNDLE, 'app.css'), 'utf8'), /\.uplot/, "uPlot's CSS is bundled");
});
