/**
 * Target 1, push, server side: a light HTTP client (undici, no PouchDB) replays what a replicator
 * sends for N (default 20,000) 1 KB documents, 100 a batch: `_revs_diff`, then `_bulk_docs` with
 * `new_edits: false` carrying the missing ones. Against Syncgate and against the peer, each in its
 * own process; and the storage ceiling: the same documents inserted straight into better-sqlite3
 * (WAL, synchronous=FULL as Syncgate runs) in 100-document transactions.
 *
 *   npm run bench -- push            BENCH_PUSH_DOCS=5000 npm run bench -- push
 */
import Sqlite from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runIfMain } from './main.ts';
import { alternate, type BenchServer, client, fmt, machine, median, postJson, replicatedDoc, reportRounds, startPeer, startSyncgate, timed } from './servers.ts';

const BATCH = 100;

/** Replays a replicator's push of `docs`; returns docs/s. Throws unless every doc was written. */
export async function replayPush(url: string, docs: Record<string, unknown>[]): Promise<number> {
  const { pool, path } = client(url);
  try {
    const [secs] = await timed(async () => {
      for (let i = 0; i < docs.length; i += BATCH) {
        const batch = docs.slice(i, i + BATCH);
        const diff: Record<string, string[]> = {};
        for (const d of batch) diff[d._id as string] = [d._rev as string];
        const missing = await postJson(pool, `${path}/_revs_diff`, diff);
        const send = batch.filter((d) => missing[d._id as string]);
        if (send.length !== batch.length) throw new Error(`_revs_diff: ${send.length} of ${batch.length} missing`);
        const res: any[] = await postJson(pool, `${path}/_bulk_docs`, { docs: send, new_edits: false });
        // CouchDB answers [] for new_edits=false; Sync Gateway lists every doc. Errors count either way.
        const bad = res.find((r) => r.error);
        if (bad) throw new Error(`_bulk_docs: ${JSON.stringify(bad)}`);
      }
    });
    return docs.length / secs;
  } finally {
    await pool.close();
  }
}

/** The same documents straight into better-sqlite3, 100 per transaction: what the disk allows. */
export function storageCeiling(docs: Record<string, unknown>[]): number {
  const dir = mkdtempSync(join(tmpdir(), 'ceiling-bench-'));
  const db = new Sqlite(join(dir, 'ceiling.sqlite3'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE docs (id TEXT PRIMARY KEY, rev TEXT NOT NULL, body TEXT NOT NULL) WITHOUT ROWID');
    const insert = db.prepare('INSERT INTO docs (id, rev, body) VALUES (?, ?, ?)');
    const tx = db.transaction((batch: Record<string, unknown>[]) => {
      for (const d of batch) insert.run(d._id, d._rev, JSON.stringify(d));
    });
    const t0 = performance.now();
    for (let i = 0; i < docs.length; i += BATCH) tx(docs.slice(i, i + BATCH));
    return docs.length / ((performance.now() - t0) / 1000);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pushTo(start: () => Promise<BenchServer>, docs: Record<string, unknown>[]): Promise<number> {
  const server = await start();
  try {
    return await replayPush(server.url, docs);
  } finally {
    await server.stop();
  }
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_PUSH_DOCS ?? 20_000);
  console.log(`push replay (_revs_diff + _bulk_docs new_edits=false, ${BATCH}/batch): ${fmt(n)} docs of ~1 KB; ${machine()}`);
  const docs = Array.from({ length: n }, (_, i) => replicatedDoc(i));
  const ceilings: number[] = [];
  const { ours, theirs } = await alternate(3, async (side) => {
    if (side === 'syncgate') ceilings.push(storageCeiling(docs));
    return pushTo(side === 'syncgate' ? () => startSyncgate() : startPeer, docs);
  });
  console.log(`storage ceiling (better-sqlite3, ${BATCH}-doc transactions): ${fmt(median(ceilings))} docs/s (rounds ${ceilings.map(fmt).join(', ')})`);
  reportRounds('push, server side (docs/s)', ours, theirs, 'docs/s', { min: 3 });
  // The peer (LevelDB) does not fsync its writes; Syncgate and the ceiling fsync every commit. So
  // the ceiling over the peer bounds what any server on this storage can reach against it here.
  const bound = median(ceilings.map((c, i) => c / theirs[i]!));
  console.log(`storage ceiling / peer: ${bound.toFixed(2)} (the most a server fsyncing each 100-doc batch could reach)`);
  const share = median(ceilings.map((c, i) => ours[i]! / c));
  console.log(`push, of storage ceiling: ${share.toFixed(2)} (rounds ${ceilings.map((c, i) => (ours[i]! / c).toFixed(2)).join(', ')})  target ≥0.30: ${share >= 0.3 ? 'met' : 'NOT met'}`);
}

runIfMain(import.meta.url, run);
