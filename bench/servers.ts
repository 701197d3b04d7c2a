/**
 * Shared by the peer benchmarks: starts Syncgate and the peer (pouchdb-server's stack) each in a
 * child process of its own, so that on a small machine neither shares an event loop with the
 * client and both get a fair share of the CPU; plus the 1 KB documents and the figures' format.
 *
 * BENCH_CPU_PROF=<dir> starts every server child with `node --cpu-prof` writing there.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

export interface BenchServer {
  name: 'syncgate' | 'peer' | 'floor';
  /** Database URL on the public port (`http://127.0.0.1:port/db`). */
  url: string;
  /** Database URL on the admin port (Syncgate only). */
  adminUrl?: string;
  /** `http://127.0.0.1:port` of the metrics listener (Syncgate only). */
  metricsUrl?: string;
  pid: number;
  dir: string;
  stop(): Promise<void>;
}

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

function execArgv(name: string): string[] {
  const args = ['--import', 'tsx', '--no-warnings'];
  const prof = process.env.BENCH_CPU_PROF;
  // One folder per server: tsx's loader thread writes a (small, idle) profile of its own beside the main one.
  if (prof) args.push('--cpu-prof', `--cpu-prof-dir=${join(prof, name)}`);
  return args;
}

async function startChild(file: string, args: string[], name: string): Promise<{ child: ChildProcess; ports: { public: number; admin?: number; metrics?: number } }> {
  const child = fork(here(file), args, { execArgv: execArgv(name), stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const ports = await new Promise<{ public: number; admin?: number; metrics?: number }>((resolve, reject) => {
    child.once('message', (m: any) => (m?.ready ? resolve(m) : reject(new Error(`${name}: ${JSON.stringify(m)}`))));
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
  });
  return { child, ports };
}

function stopper(child: ChildProcess, dir: string | undefined): () => Promise<void> {
  return async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ stop: true });
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * Syncgate on a SQLite file (synchronous=FULL, its default) in a fresh temp folder, GUEST with
 * every channel unless `dbConfig` says otherwise; `file` reuses a prepared SQLite file; `top` adds
 * top-level config keys (e.g. `limits`).
 */
export async function startSyncgate(dbConfig: Record<string, unknown> = {}, opts: { file?: string; top?: Record<string, unknown> } = {}): Promise<BenchServer> {
  const file = opts.file;
  const dir = file ? undefined : mkdtempSync(join(tmpdir(), 'syncgate-bench-'));
  const path = file ?? join(dir!, 'db.sqlite3');
  const config = { server: `sqlite:${path}`, users: { GUEST: { disabled: false, admin_channels: ['*'] } }, ...dbConfig };
  const { child, ports } = await startChild('./syncgate-child.ts', [JSON.stringify({ ...opts.top, databases: { db: config } })], 'syncgate');
  return {
    name: 'syncgate', url: `http://127.0.0.1:${ports.public}/db`, adminUrl: `http://127.0.0.1:${ports.admin}/db`, metricsUrl: `http://127.0.0.1:${ports.metrics}`,
    pid: child.pid!, dir: dir ?? path, stop: stopper(child, dir),
  };
}

/**
 * Syncgate in persistent mode (a 3.x start-up file, `bootstrap.server` a SQLite directory in a fresh
 * temp folder): no database until one is made with `PUT /{db}/` on the admin port.
 */
export async function startSyncgatePersistent(top: Record<string, unknown> = {}): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-'));
  const { child, ports } = await startChild('./syncgate-child.ts', [JSON.stringify({ ...top, bootstrap: { server: `sqlite:${dir}` } })], 'syncgate');
  return {
    name: 'syncgate', url: `http://127.0.0.1:${ports.public}/db`, adminUrl: `http://127.0.0.1:${ports.admin}/db`, metricsUrl: `http://127.0.0.1:${ports.metrics}`,
    pid: child.pid!, dir, stop: stopper(child, dir),
  };
}

/** The peer: pouchdb-server's express-pouchdb + PouchDB on LevelDB, with database `db` created. */
export async function startPeer(): Promise<BenchServer> {
  const dir = mkdtempSync(join(tmpdir(), 'peer-bench-'));
  const { child, ports } = await startChild('./peer-child.ts', [dir], 'peer');
  const url = `http://127.0.0.1:${ports.public}/db`;
  const res = await fetch(url, { method: 'PUT' });
  if (res.status !== 201) throw new Error(`peer: PUT /db gave ${res.status}`);
  return { name: 'peer', url, pid: child.pid!, dir, stop: stopper(child, dir) };
}

/** The fan-out floor: a bare node:http + ws server holding listeners (see fanout-floor-child.ts). */
export async function startFloor(): Promise<BenchServer> {
  const { child, ports } = await startChild('./fanout-floor-child.ts', [], 'floor');
  return {
    name: 'floor', url: `http://127.0.0.1:${ports.public}/db`, metricsUrl: `http://127.0.0.1:${ports.metrics}`,
    pid: child.pid!, dir: '', stop: stopper(child, undefined),
  };
}

/** Resident memory of a process, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (100 Hz)
}

// ---- documents ------------------------------------------------------------------------------

/** A deterministic revision digest (32 hex) for doc i, so that both servers get identical input. */
export function digestOf(i: number, salt = ''): string {
  return createHash('md5').update(`${salt}${i}`).digest('hex');
}

/** Body properties of a ~1 KB JSON document (text that does not compress to nothing). */
export function docBody(i: number, channel?: string): Record<string, unknown> {
  const words = createHash('sha512').update(String(i)).digest('base64');
  return {
    type: 'bench', i, title: `Document number ${i}`, tags: ['alpha', 'beta', String(i % 97)],
    ...(channel ? { channels: [channel] } : {}),
    owner: { name: `user-${i % 1000}`, since: 1_700_000_000 + i },
    text: words.repeat(11).slice(0, 880),
  };
}

export const docId = (i: number, prefix = 'doc') => `${prefix}-${String(i).padStart(7, '0')}`;

/** Doc i as a replicator pushes it: generation 1, with `_revisions`. */
export function replicatedDoc(i: number, opts: { prefix?: string; channel?: string } = {}): Record<string, unknown> {
  const d = digestOf(i, opts.prefix);
  return { _id: docId(i, opts.prefix), _rev: `1-${d}`, _revisions: { start: 1, ids: [d] }, ...docBody(i, opts.channel) };
}

// ---- HTTP -----------------------------------------------------------------------------------

/** A light keep-alive client (undici) for one server. */
export function client(url: string, connections = 1): { pool: Pool; path: string } {
  const u = new URL(url);
  return { pool: new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 }), path: u.pathname };
}

export async function postJson(pool: Pool, path: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
  const res = await pool.request({
    method: 'POST', path, body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`POST ${path}: ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

export async function getJson(pool: Pool, path: string, headers: Record<string, string> = {}): Promise<any> {
  const res = await pool.request({ method: 'GET', path, headers: { accept: 'application/json', ...headers } });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`GET ${path}: ${res.statusCode} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

// ---- figures --------------------------------------------------------------------------------

export function machine(): string {
  // The load average says how much of the machine other work was using while this ran.
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  return `${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node ${process.version}, load average ${load}`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const out = await fn();
  return [(performance.now() - t0) / 1000, out];
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/**
 * Runs `measure` for Syncgate then the peer, `rounds` times, so that both sides see the same
 * spells of load from whatever else shares the machine; each round's ratio compares figures taken
 * seconds apart. BENCH_ROUNDS overrides the count.
 */
export async function alternate<T>(rounds: number, measure: (side: 'syncgate' | 'peer') => Promise<T>): Promise<{ ours: T[]; theirs: T[] }> {
  const n = Number(process.env.BENCH_ROUNDS ?? rounds);
  const ours: T[] = [];
  const theirs: T[] = [];
  for (let r = 0; r < n; r++) {
    ours.push(await measure('syncgate'));
    theirs.push(await measure('peer'));
  }
  return { ours, theirs };
}

/** Like report, for several rounds: medians, and the median and range of the per-round ratios. */
export function reportRounds(label: string, ours: number[], theirs: number[], unit: string, target?: { min: number }): void {
  const ratios = ours.map((o, i) => o / theirs[i]!);
  const r = median(ratios);
  const verdict = target ? `  target ≥${target.min}x: ${r >= target.min ? 'met' : 'NOT met'}` : '';
  console.log(`${label.padEnd(34)} Syncgate ${fmt(median(ours)).padStart(8)} ${unit}  vs ${fmt(median(theirs)).padStart(8)}  ratio ${r.toFixed(2)} (rounds ${ratios.map((x) => x.toFixed(2)).join(', ')})${verdict}`);
}

/** One line: `label  syncgate  peer  ratio (target)`. */
export function report(label: string, ours: number, theirs: number, unit: string, target?: { min: number; what?: string }): string {
  const ratio = ours / theirs;
  const verdict = target ? `  target ≥${target.min}x${target.what ? ' ' + target.what : ''}: ${ratio >= target.min ? 'met' : 'NOT met'}` : '';
  const line = `${label.padEnd(34)} Syncgate ${fmt(ours).padStart(8)} ${unit}  vs ${fmt(theirs).padStart(8)}  ratio ${ratio.toFixed(2)}${verdict}`;
  console.log(line);
  return line;
}

export { fmt };
