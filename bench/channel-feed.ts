/**
 * A user's initial changes feed costs what the user can see, not the size of the database.
 *
 * Two SQLite-file databases over the same 10,000 channels: "big" with BENCH_FEED_DOCS documents
 * (default 200,000; 1,000,000 in BENCHMARKS.md's table) and "small" with a tenth of that. In both, the user `bench` has 5 channels
 * holding 50 documents each (250 in all, spread evenly through the sequence range); every other
 * document is in one of the other 9,995 channels. So the user's work is identical and only the
 * database differs: the ratio big/small of the feed times should be near 1.
 *
 * Each feed is `GET /{db}/_changes?since=0` as the user (HTTP Basic), measured two ways: one
 * unlimited request, and paging with `limit=100` until a short page. Median of interleaved runs.
 * The databases are filled through `Database.bulkWrite` (new_edits=false, batches of 1,000), not HTTP.
 *
 *   npm run bench -- feed
 *   BENCH_FEED_DOCS=1000000 npm run bench -- feed    # full size: 1,000,000 vs 100,000 docs
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/index.ts';
import type { Database, WriteRequest } from '../src/db/database.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';
import { runIfMain } from './main.ts';

const CHANNELS = 10_000;
const USER_CHANNELS = 5;
const PER_USER_CHANNEL = 50;
const USER_DOCS = USER_CHANNELS * PER_USER_CHANNEL;
const BATCH = 1_000;
const PAGE = 100;
const PASSWORD = 'bench-password';

const channel = (i: number) => `ch-${String(i).padStart(5, '0')}`;
const USER_CHANNEL_NAMES = Array.from({ length: USER_CHANNELS }, (_, i) => channel(i));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Fills `db` with n docs; every (n / 250)th one goes to one of the user's channels in turn, the
 * others round-robin over the remaining channels. Returns the user's doc ids and the seconds taken.
 */
async function fill(db: Database, n: number): Promise<{ userIds: Set<string>; secs: number; firstTenth: number; lastTenth: number }> {
  const t0 = performance.now();
  const tenth = Math.max(BATCH, Math.floor(n / 10 / BATCH) * BATCH);
  let tFirst = 0;
  let tLast = 0;
  const stride = Math.floor(n / USER_DOCS);
  const userIds = new Set<string>();
  let other = 0;
  for (let start = 0; start < n; start += BATCH) {
    if (tLast === 0 && start >= n - tenth) tLast = performance.now();
    const reqs: WriteRequest[] = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) {
      const id = `doc-${String(i).padStart(7, '0')}`;
      let ch: string;
      if (i % stride === 0 && userIds.size < USER_DOCS) {
        ch = USER_CHANNEL_NAMES[userIds.size % USER_CHANNELS];
        userIds.add(id);
      } else {
        ch = channel(USER_CHANNELS + (other++ % (CHANNELS - USER_CHANNELS)));
      }
      reqs.push({ id, body: { _id: id, _rev: `1-${i.toString(16).padStart(32, '0')}`, channels: [ch] }, newEdits: false });
    }
    const results = await db.bulkWrite(reqs);
    const failed = results.find((r) => r instanceof Error);
    if (failed) throw failed;
    if (start + BATCH === tenth) tFirst = performance.now() - t0;
  }
  if (userIds.size !== USER_DOCS) throw new Error(`only ${userIds.size} user docs in ${n}`);
  const end = performance.now();
  return { userIds, secs: (end - t0) / 1000, firstTenth: tenth / (tFirst / 1000), lastTenth: (n - Math.ceil((n - tenth) / BATCH) * BATCH) / ((end - tLast) / 1000) };
}

export async function run(): Promise<void> {
  // 200,000 by default so that `npm run bench` stays near ten minutes; BENCH_FEED_DOCS=1000000 for the full size.
  const bigN = Number(process.env.BENCH_FEED_DOCS ?? 200_000);
  const smallN = Math.round(bigN / 10);
  const runs = Number(process.env.BENCH_FEED_RUNS ?? 15);
  if (smallN < USER_DOCS * 2) throw new Error(`BENCH_FEED_DOCS must be at least ${USER_DOCS * 20}`);
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-feed-'));
  const user = { password: PASSWORD, admin_channels: USER_CHANNEL_NAMES };
  const config = parseConfigText(JSON.stringify({
    databases: {
      big: { server: `sqlite:${join(dir, 'big.sqlite3')}`, users: { bench: user } },
      small: { server: `sqlite:${join(dir, 'small.sqlite3')}`, users: { bench: user } },
    },
  }), 'bench');
  const gateway = new Gateway(config, { logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0' });
  const addrs = await gateway.start();
  const base = `http://127.0.0.1:${addrs.public.port}`;
  const auth = { authorization: 'Basic ' + Buffer.from(`bench:${PASSWORD}`).toString('base64') };
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  try {
    console.log(`channel feed bench: user with ${USER_CHANNELS} channels x ${PER_USER_CHANNEL} docs; databases of ${fmt(bigN)} and ${fmt(smallN)} docs over ${fmt(CHANNELS)} channels; ${os.cpus().length} cores, Node ${process.version}`);
    const expected: Record<string, Set<string>> = {};
    for (const [name, n] of [['small', smallN], ['big', bigN]] as const) {
      const { userIds, secs, firstTenth, lastTenth } = await fill(gateway.get(name)!, n);
      expected[name] = userIds;
      const mb = (statSync(join(dir, `${name}.sqlite3`)).size + (statSync(join(dir, `${name}.sqlite3-wal`), { throwIfNoEntry: false })?.size ?? 0)) / 1e6;
      console.log(`setup ${name.padEnd(5)}: ${fmt(n)} docs in ${secs.toFixed(1)} s (${fmt(n / secs)} docs/s, bulkWrite of ${fmt(BATCH)}; first tenth ${fmt(firstTenth)}/s, last tenth ${fmt(lastTenth)}/s), file ${fmt(mb)} MB`);
    }

    /** One feed read; checks it holds exactly the user's docs. Returns milliseconds. */
    const feed = async (db: string, limit?: number): Promise<number> => {
      const t0 = performance.now();
      const ids: string[] = [];
      let since: unknown = 0;
      for (;;) {
        const res = await fetch(`${base}/${db}/_changes?since=${since}${limit ? `&limit=${limit}` : ''}`, { headers: auth });
        if (res.status !== 200) throw new Error(`${db} _changes: ${res.status} ${await res.text()}`);
        const body = await res.json() as { results: { id: string }[]; last_seq: unknown };
        for (const r of body.results) ids.push(r.id);
        since = body.last_seq;
        if (!limit || body.results.length < limit) break;
      }
      const ms = performance.now() - t0;
      const docIds = ids.filter((id) => !id.startsWith('_user/'));
      if (docIds.length !== USER_DOCS || !docIds.every((id) => expected[db].has(id))) {
        throw new Error(`${db} feed: ${docIds.length} docs, expected exactly the user's ${USER_DOCS}`);
      }
      return ms;
    };

    for (let i = 0; i < 3; i++) for (const db of ['small', 'big']) { await feed(db); await feed(db, PAGE); } // warm-up
    const times: Record<string, number[]> = { 'small/all': [], 'big/all': [], 'small/paged': [], 'big/paged': [] };
    for (let r = 0; r < runs; r++) {
      // Alternate which database goes first, so neither always follows the other.
      const order = r % 2 ? ['big', 'small'] : ['small', 'big'];
      for (const db of order) times[`${db}/all`].push(await feed(db));
      for (const db of order) times[`${db}/paged`].push(await feed(db, PAGE));
    }
    for (const kind of ['all', 'paged']) {
      const big = times[`big/${kind}`];
      const small = times[`small/${kind}`];
      const ratio = median(big.map((b, i) => b / small[i]));
      const label = kind === 'all' ? 'one unlimited request' : `paged, limit=${PAGE} (${Math.ceil((USER_DOCS + 1) / PAGE)} requests)`;
      console.log(`feed ${label}: ${fmt(bigN)} docs ${median(big).toFixed(2)} ms, ${fmt(smallN)} docs ${median(small).toFixed(2)} ms, big/small ${ratio.toFixed(2)}  (median of ${runs}; ratio = median of paired runs)`);
    }
  } finally {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
