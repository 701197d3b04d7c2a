/**
 * What collections cost Couchbase Lite replication (issue 14's check: at most 10%). Same gateway,
 * same run: N 1 KB documents pushed and then pulled over BLIP through a default-only database
 * (legacy mode, as a CBL 3 replicator of the default collection speaks), and through a database of
 * 4 named collections, the documents spread over them, all 4 replicated in one connection
 * (getCollections, then each collection's proposeChanges/rev and subChanges/changes/rev side by side).
 * Rounds alternate which database goes first; each pull reads only that round's documents (from the
 * sequence before its push, as a checkpoint would). SQLite on temp files. Prints docs/s and CPU per
 * document per round and, per direction, the median of the rounds' 4-collection / default-only
 * ratios of each (CPU per document is the steadier figure on a machine shared with other work).
 *
 *   BENCH_DOCS=2000 BENCH_ROUNDS=5 npm run bench -- collections
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/index.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';
import { BlipClient, type CollectionReplicator, LocalDb } from '../test/helpers/blip-client.ts';
import { runIfMain } from './main.ts';

const COLLECTIONS = ['c1', 'c2', 'c3', 'c4'];
const WARMUP_DOCS = 200;
const ALL = { admin_channels: ['*'] };
/**
 * The same sync function on every side: a named collection always runs one (Sync Gateway's default
 * is `channel("<name>")`), while a default collection without one maps `doc.channels` natively, and
 * running the JavaScript sandbox per write, not collections, would then be what is measured.
 */
const SYNC = 'function (doc) { channel(doc.channels); }';

/** Wall seconds and CPU seconds (user + system, this process: gateway and client both) of `fn`. */
async function time(fn: () => Promise<void>): Promise<[number, number]> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return [(performance.now() - t0) / 1000, (c.user + c.system) / 1e6];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Documents `prefix-<i>` for i in [0, n), ~1 KB each. */
function docs(prefix: string, n: number, offset = 0): LocalDb {
  const db = new LocalDb();
  const filler = 'x'.repeat(900);
  for (let i = offset; i < offset + n; i++) db.put(`${prefix}-${String(i).padStart(7, '0')}`, { i, type: 'bench', channels: ['bench'], filler });
  return db;
}

/** The sides of the comparison: how one round pushes N documents and pulls them back. */
interface Side {
  name: string;
  push(round: string, n: number): Promise<void>;
  pull(since: number, n: number): Promise<void>;
}

export async function run(): Promise<void> {
  const N = Number(process.env.BENCH_DOCS ?? 2000);
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-collections-'));
  const config = parseConfigText(JSON.stringify({
    databases: {
      single: { server: `sqlite:${join(dir, 'single.sqlite3')}`, sync: SYNC, users: { GUEST: { disabled: false, ...ALL } } },
      quad: {
        server: `sqlite:${join(dir, 'quad.sqlite3')}`,
        scopes: { inventory: { collections: Object.fromEntries(COLLECTIONS.map((c) => [c, { sync: SYNC }])) } },
        users: { GUEST: { disabled: false, collection_access: { inventory: Object.fromEntries(COLLECTIONS.map((c) => [c, ALL])) } } },
      },
    },
  }), 'bench');
  const gateway = new Gateway(config, { logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0' });
  const addrs = await gateway.start();
  const base = `http://127.0.0.1:${addrs.public.port}`;
  const admin = `http://127.0.0.1:${addrs.admin.port}`;
  const updateSeq = async (db: string): Promise<number> => Number((await (await fetch(`${admin}/${db}/`)).json()).update_seq);
  const check = (what: string, got: number, want: number) => { if (got !== want) throw new Error(`${what}: ${got} of ${want}`); };

  const single: Side = {
    name: 'default-only database (legacy mode)',
    async push(round, n) {
      const c = await BlipClient.connect(`${base}/single`);
      check('single push', (await c.push(docs(round, n))).sent, n);
      await c.close();
    },
    async pull(since, n) {
      const c = await BlipClient.connect(`${base}/single`);
      check('single pull', (await c.pull(new LocalDb(), { since }, 600_000)).received, n);
      await c.close();
    },
  };
  /** One connection, getCollections for all 4, each collection's replication side by side. */
  const aware = async (): Promise<[BlipClient, CollectionReplicator[]]> => {
    const c = await BlipClient.connect(`${base}/quad`);
    await c.getCollections(COLLECTIONS.map((n) => `inventory.${n}`), COLLECTIONS.map((n) => `cp-${n}`));
    return [c, COLLECTIONS.map((_, i) => c.collection(i))];
  };
  const quad: Side = {
    name: `${COLLECTIONS.length} collections in one connection`,
    async push(round, n) {
      const [c, lanes] = await aware();
      const share = n / lanes.length;
      const results = await Promise.all(lanes.map((lane, i) => lane.push(docs(round, share, i * share))));
      check('quad push', results.reduce((s, r) => s + r.sent, 0), n);
      await c.close();
    },
    async pull(since, n) {
      const [c, lanes] = await aware();
      const results = await Promise.all(lanes.map((lane) => lane.pull(new LocalDb(), { since }, 600_000)));
      check('quad pull', results.reduce((s, r) => s + r.received, 0), n);
      await c.close();
    },
  };

  try {
    if (N % COLLECTIONS.length) throw new Error(`BENCH_DOCS must be a multiple of ${COLLECTIONS.length}`);
    console.log(`BLIP collections bench: ${N} docs of ~1 KB per round, ${ROUNDS} rounds, ${os.cpus().length} cores, Node ${process.version}`);
    // One unmeasured round each first: CPU per document kept falling over the first rounds (JIT).
    for (const side of [single, quad, single, quad]) {
      const db = side === single ? 'single' : 'quad';
      const since = await updateSeq(db);
      const n = Math.max(WARMUP_DOCS, Math.floor(N / 2 / COLLECTIONS.length) * COLLECTIONS.length);
      await side.push(`warm-${since}`, n);
      await side.pull(since, n);
    }
    const rates: Record<string, { push: number[]; pull: number[] }> = { single: { push: [], pull: [] }, quad: { push: [], pull: [] } };
    /** CPU microseconds per document: less at the mercy of other work on a shared machine than docs/s. */
    const cpu: Record<string, { push: number[]; pull: number[] }> = { single: { push: [], pull: [] }, quad: { push: [], pull: [] } };
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? [quad, single] : [single, quad];
      for (const side of order) {
        const key = side === single ? 'single' : 'quad';
        const since = await updateSeq(key);
        const [pushSecs, pushCpu] = await time(() => side.push(`r${r}`, N));
        const [pullSecs, pullCpu] = await time(() => side.pull(since, N));
        rates[key].push.push(N / pushSecs);
        rates[key].pull.push(N / pullSecs);
        cpu[key].push.push((pushCpu * 1e6) / N);
        cpu[key].pull.push((pullCpu * 1e6) / N);
        console.log(`round ${r + 1}  ${side.name.padEnd(40)} push ${Math.round(N / pushSecs)} docs/s (${Math.round((pushCpu * 1e6) / N)} us CPU/doc)`
          + `   pull ${Math.round(N / pullSecs)} docs/s (${Math.round((pullCpu * 1e6) / N)} us CPU/doc)`);
      }
    }
    // The machine's speed drifts between rounds (other work shares the cores): each round's own
    // ratio compares the two sides measured back to back, and the median of those is the figure.
    for (const dir of ['push', 'pull'] as const) {
      const ratios = rates.quad[dir].map((q, r) => q / rates.single[dir][r]);
      const ratio = median(ratios);
      console.log(`${dir}: median ${Math.round(median(rates.single[dir]))} docs/s default-only, ${Math.round(median(rates.quad[dir]))} docs/s with ${COLLECTIONS.length} collections;`
        + ` per-round ratios ${ratios.map((x) => x.toFixed(2)).join(' ')}: median ${ratio.toFixed(2)} (cost ${((1 - ratio) * 100).toFixed(0)}%, target ≤ 10%)`);
      const cpuRatios = cpu.quad[dir].map((q, r) => q / cpu.single[dir][r]);
      const cpuRatio = median(cpuRatios);
      console.log(`${dir}: CPU per doc ${Math.round(median(cpu.single[dir]))} us default-only, ${Math.round(median(cpu.quad[dir]))} us with ${COLLECTIONS.length} collections;`
        + ` per-round ratios ${cpuRatios.map((x) => x.toFixed(2)).join(' ')}: median ${cpuRatio.toFixed(2)} (cost ${((cpuRatio - 1) * 100).toFixed(0)}%)`);
    }
  } finally {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
