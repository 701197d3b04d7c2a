/**
 * Target 6, cost does not grow with the database: the push replay (20,000 new 1 KB docs by
 * default, random ids as PouchDB makes them, each in one of 1,000 channels) into a database that
 * already holds 10,000 docs, and into one that holds BENCH_GROWTH_DOCS (default 1,000,000). The
 * ratio big/small of the push rates should be at least 0.8. Rounds alternate small, big, ...
 *
 * Pre-filling goes straight into SQLite as a bulk load (see prefill; it is setup, not the measured
 * write); the measured push goes through HTTP to a Syncgate child process on the filled file, as
 * it runs in production (synchronous=FULL).
 *
 *   npm run bench -- growth         BENCH_GROWTH_DOCS=200000 npm run bench -- growth
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Sqlite from 'better-sqlite3';
import { SqliteStore } from '../src/storage/sqlite/index.ts';
import { runIfMain } from './main.ts';
import { replayPush } from './push.ts';
import { digestOf, docBody, docId, fmt, machine, median, replicatedDoc, startSyncgate } from './servers.ts';

const CHANNELS = 1_000;
/** Large fill transactions: each touches most of the 1,000 channels' index pages once, not once per few docs. */
const FILL_BATCH = 50_000;
const channelOf = (i: number) => `ch-${i % CHANNELS}`;

/**
 * Writes docs 0..n-1 (1 KB bodies, one channel each) into a new database file at `path`: the
 * store creates the file and its schema, then the rows go in the way a bulk load does it in
 * SQLite (no journal, no fsync, a large cache, the channel index built from the docs table in key
 * order). The rows are the ones `SqliteStore.commit` writes for these documents. Through the store
 * (one random channel-index insert per doc) filling 1,000,000 took 2-5 minutes on this machine.
 */
async function prefill(path: string, n: number): Promise<number> {
  await new SqliteStore({ path }).close();
  const t0 = performance.now();
  const db = new Sqlite(path);
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -1048576');
    const insDoc = db.prepare('INSERT INTO docs (id, tree, rev, deleted, seq, channels, expiry) VALUES (?, ?, ?, 0, ?, ?, NULL)');
    const insRev = db.prepare('INSERT INTO revs (doc_id, rev, deleted, body, atts, channels) VALUES (?, ?, 0, ?, NULL, ?)');
    const fill = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const rev = `1-${digestOf(i)}`;
        const channels = JSON.stringify([channelOf(i)]);
        insDoc.run(docId(i), JSON.stringify({ revs: [rev], parents: [-1] }), rev, i + 1, channels);
        insRev.run(docId(i), rev, JSON.stringify(docBody(i, channelOf(i))), channels);
      }
    });
    for (let start = 0; start < n; start += FILL_BATCH) fill(start, Math.min(n, start + FILL_BATCH));
    db.exec(`INSERT INTO channel_index (channel, doc_id, seq, rev, deleted, removed)
             SELECT json_extract(channels, '$[0]'), id, seq, rev, 0, 0 FROM docs ORDER BY 1, 2`);
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_seq', ?)").run(String(n));
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
  return (performance.now() - t0) / 1000;
}

/** Round r's docs to push: ids as random as PouchDB's, so they land all over the id index. */
function pushDocs(round: number, n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, k) => {
    const i = 10_000_000 * (round + 1) + k;
    return { ...replicatedDoc(i, { channel: channelOf(i) }), _id: createHash('md5').update(`id${i}`).digest('hex') };
  });
}

export async function run(): Promise<void> {
  const bigN = Number(process.env.BENCH_GROWTH_DOCS ?? 1_000_000);
  const smallN = 10_000;
  const pushN = Number(process.env.BENCH_GROWTH_PUSH ?? 20_000);
  const rounds = Number(process.env.BENCH_GROWTH_ROUNDS ?? 3);
  console.log(`growth: push ${fmt(pushN)} docs into a database of ${fmt(smallN)} vs ${fmt(bigN)} docs, ${rounds} rounds; ${machine()}`);
  const dir = mkdtempSync(join(tmpdir(), 'growth-bench-'));
  try {
    const files = { small: join(dir, 'small.sqlite3'), big: join(dir, 'big.sqlite3') };
    const smallSecs = await prefill(files.small, smallN);
    const bigSecs = await prefill(files.big, bigN);
    console.log(`prefill: ${fmt(smallN)} docs in ${smallSecs.toFixed(1)} s; ${fmt(bigN)} docs in ${bigSecs.toFixed(1)} s (${fmt(bigN / bigSecs)} docs/s), file ${fmt(statSync(files.big).size / 2 ** 20)} MB`);
    const rates: Record<'small' | 'big', number[]> = { small: [], big: [] };
    for (let r = 0; r < rounds; r++) {
      const docs = pushDocs(r, pushN);
      for (const which of ['small', 'big'] as const) {
        const server = await startSyncgate({}, { file: files[which] });
        try {
          rates[which].push(await replayPush(server.url, docs));
        } finally {
          await server.stop();
        }
      }
      console.log(`round ${r + 1}: small ${fmt(rates.small[r]!)} docs/s, big ${fmt(rates.big[r]!)} docs/s (${(rates.big[r]! / rates.small[r]!).toFixed(2)})`);
    }
    const ratio = median(rates.big.map((b, i) => b / rates.small[i]!));
    console.log(`push with ${fmt(bigN)} stored / with ${fmt(smallN)} stored: ${ratio.toFixed(2)} (median of rounds)  target ≥0.8: ${ratio >= 0.8 ? 'met' : 'NOT met'}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
