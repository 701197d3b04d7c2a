/**
 * Bundles the operator console (console/*.tsx, Preact + uPlot, CSS included) with esbuild into
 * build/console/, which the admin port serves at `/_admin/`. Runs from `npm install` (the
 * `prepare` script) and, when the bundle is missing or older than its sources, at gateway start,
 * so a fresh clone serves the console after `npm install && npm start` with no separate step.
 * esbuild is a dev dependency: it is imported only when a build is needed.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONSOLE_SOURCE = fileURLToPath(new URL('.', import.meta.url));
export const CONSOLE_BUNDLE = fileURLToPath(new URL('../build/console/', import.meta.url));
/** Written last, so its presence and age stand for the whole bundle. */
const MARKER = 'index.html';

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** True when the bundle is missing or older than any console source file. */
export function bundleStale(): boolean {
  try {
    return statSync(join(CONSOLE_BUNDLE, MARKER)).mtimeMs < newestSource(CONSOLE_SOURCE);
  } catch {
    return true;
  }
}

/**
 * Each file is written to a temporary name and renamed into place, so a server (or a second
 * build running in parallel, as test processes do) never reads half a file.
 */
function writeAtomic(path: string, contents: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, contents);
  renameSync(tmp, path);
}

export async function buildConsole(): Promise<void> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { app: join(CONSOLE_SOURCE, 'main.tsx') },
    outdir: CONSOLE_BUNDLE,
    bundle: true, minify: true, format: 'esm', target: 'es2020', platform: 'browser',
    jsx: 'automatic', jsxImportSource: 'preact', write: false, logLevel: 'silent', legalComments: 'none',
  });
  mkdirSync(CONSOLE_BUNDLE, { recursive: true });
  for (const f of result.outputFiles) writeAtomic(join(CONSOLE_BUNDLE, basename(f.path)), f.contents);
  writeAtomic(join(CONSOLE_BUNDLE, MARKER), readFileSync(join(CONSOLE_SOURCE, MARKER)));
}

/** Builds when stale; returns why the console cannot be served, or undefined when it can. */
export async function ensureConsoleBundle(): Promise<string | undefined> {
  if (!bundleStale()) return undefined;
  try {
    await buildConsole();
    return undefined;
  } catch (err) {
    return `cannot build the operator console (run npm install with dev dependencies): ${(err as Error).message}`;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildConsole().then(() => console.log(`console bundled into ${CONSOLE_BUNDLE}`), (err: Error) => {
    console.error(err.message);
    process.exitCode = 1;
  });
}
