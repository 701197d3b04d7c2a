/**
 * `npm test`'s runner: node's test runner over test/**\/*.test.ts (or the files given), two files
 * at a time, each file with a time limit, so a hang fails instead of running until CI gives up.
 *
 * Why not plain `node --test --test-timeout=N`: on Node 20 that limit applies to each file as a
 * whole (the tests inside run without one), and a file past it is ended with SIGTERM, reported
 * under its file name only. This runner also names the tests that were still running in that file,
 * which is where the hang is. (Helpers that start external servers stop them on SIGTERM, see
 * test/helpers/postgres.ts.)
 *
 * Usage: node --import tsx scripts/run-tests.ts [files...]
 * SYNCGATE_TEST_FILE_TIMEOUT_MS overrides the per-file limit (default 10 minutes: the slowest file
 * takes well under that on a loaded 2-core machine).
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';

const FILE_TIMEOUT_MS = Number(process.env.SYNCGATE_TEST_FILE_TIMEOUT_MS ?? 10 * 60_000);

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts'))
    .map((e) => join(e.parentPath ?? e.path, e.name))
    .sort();
}

const files = process.argv.length > 2 ? process.argv.slice(2) : testFiles('test');
const stream = run({ files, concurrency: 2, timeout: FILE_TIMEOUT_MS });

// Tests that started and have not finished, per file, innermost last: what a file's timeout cut off.
interface Running { name: string; nesting: number }
const running = new Map<string, Running[]>();
const finished = (d: { file?: string; name: string; nesting: number }) => {
  const list = running.get(d.file ?? '') ?? [];
  for (let i = list.length - 1; i >= 0; i--) {
    if (list[i].name === d.name && list[i].nesting === d.nesting) { list.splice(i, 1); return; }
  }
};
const hung: string[] = [];
stream.on('test:dequeue', (d) => {
  const list = running.get(d.file ?? '') ?? [];
  list.push({ name: d.name, nesting: d.nesting });
  running.set(d.file ?? '', list);
});
stream.on('test:pass', finished);
stream.on('test:fail', (d) => {
  process.exitCode = 1;
  if (d.nesting === 0 && d.file && d.name === d.file && (d.details.error as { failureType?: string }).failureType === 'testTimeoutFailure') {
    const cut = (running.get(d.file) ?? []).filter((r) => r.name !== d.file).map((r) => r.name);
    hung.push(`${relative(process.cwd(), d.file)} passed its ${FILE_TIMEOUT_MS / 1000} s limit while running: ${cut.join(' > ') || '(its top level)'}`);
  }
  finished(d);
});
// What `node --test` prints: spec on a terminal, TAP otherwise (CI logs); the hangs after it all.
const report = process.stdout.isTTY ? stream.compose(new spec()) : stream.compose(tap);
report.pipe(process.stdout, { end: false });
report.on('end', () => {
  for (const line of hung) process.stdout.write(`\n✖ timed out: ${line}\n`);
});
