/**
 * Target 3, end to end: an unmodified PouchDB (memory adapter, in this process) pushes N (default
 * 20,000) 1 KB documents to the server, then a fresh PouchDB pulls them all; against Syncgate and
 * against the peer, each server in its own process. PouchDB's default protocol: `_revs_diff` +
 * `_bulk_docs` (new_edits=false) for the push, `_changes` + `_bulk_get` for the pull, batch size 100.
 *
 *   npm run bench -- pouchdb          BENCH_DOCS=5000 npm run bench -- pouchdb
 */
import { localDb, remoteDb } from '../test/helpers/pouchdb.ts';
import { runIfMain } from './main.ts';
import { alternate, type BenchServer, docBody, docId, fmt, machine, reportRounds, startPeer, startSyncgate, timed } from './servers.ts';

async function pushThenPull(start: () => Promise<BenchServer>, n: number): Promise<{ push: number; pull: number }> {
  const server = await start();
  try {
    const source = localDb();
    for (let i = 0; i < n; i += 500) {
      await source.bulkDocs(Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ _id: docId(i + k), ...docBody(i + k) })));
    }
    const [pushSecs, push] = await timed<any>(() => source.replicate.to(remoteDb(server.url), { batch_size: 100 }));
    if (push.docs_written !== n) throw new Error(`${server.name}: push wrote ${push.docs_written} of ${n}`);
    const target = localDb();
    const [pullSecs, pull] = await timed<any>(() => target.replicate.from(remoteDb(server.url), { batch_size: 100 }));
    if (pull.docs_written !== n) throw new Error(`${server.name}: pull wrote ${pull.docs_written} of ${n}`);
    await Promise.all([source.destroy(), target.destroy()]);
    return { push: n / pushSecs, pull: n / pullSecs };
  } finally {
    await server.stop();
  }
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_DOCS ?? 20_000);
  console.log(`PouchDB end to end (memory adapter client, batch 100): ${fmt(n)} docs of ~1 KB; ${machine()}`);
  const { ours, theirs } = await alternate(2, (side) => pushThenPull(side === 'syncgate' ? () => startSyncgate() : startPeer, n));
  reportRounds('PouchDB push (docs/s)', ours.map((r) => r.push), theirs.map((r) => r.push), 'docs/s', { min: 2 });
  reportRounds('PouchDB pull (docs/s)', ours.map((r) => r.pull), theirs.map((r) => r.pull), 'docs/s', { min: 2 });
}

runIfMain(import.meta.url, run);
