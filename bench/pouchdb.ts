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
import { alternate, type BenchServer, docBody, docId, fmt, machine, median, reportRounds, startPeer, startSyncgate, timed } from './servers.ts';

interface Run { push: number; pull: number; pushSecs: number; pullSecs: number; pushClient: number; pullClient: number }

/** Seconds of CPU this process (the PouchDB client) spends in `fn`, beside its wall-clock seconds. */
async function clientTimed<T>(fn: () => Promise<T>): Promise<[number, number, T]> {
  const c0 = process.cpuUsage();
  const [secs, out] = await timed(fn);
  const c = process.cpuUsage(c0);
  return [secs, (c.user + c.system) / 1e6, out];
}

async function pushThenPull(start: () => Promise<BenchServer>, n: number): Promise<Run> {
  const server = await start();
  try {
    const source = localDb();
    for (let i = 0; i < n; i += 500) {
      await source.bulkDocs(Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ _id: docId(i + k), ...docBody(i + k) })));
    }
    const [pushSecs, pushClient, push] = await clientTimed<any>(() => source.replicate.to(remoteDb(server.url), { batch_size: 100 }));
    if (push.docs_written !== n) throw new Error(`${server.name}: push wrote ${push.docs_written} of ${n}`);
    const target = localDb();
    const [pullSecs, pullClient, pull] = await clientTimed<any>(() => target.replicate.from(remoteDb(server.url), { batch_size: 100 }));
    if (pull.docs_written !== n) throw new Error(`${server.name}: pull wrote ${pull.docs_written} of ${n}`);
    await Promise.all([source.destroy(), target.destroy()]);
    return { push: n / pushSecs, pull: n / pullSecs, pushSecs, pullSecs, pushClient, pullClient };
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
  // The client's own CPU is in both runs' time: even a server that took no time at all could not
  // beat the peer by more than (peer's run time) / (client CPU time).
  for (const dir of ['push', 'pull'] as const) {
    const client = median(ours.map((r) => r[`${dir}Client`]));
    const peerSecs = median(theirs.map((r) => r[`${dir}Secs`]));
    console.log(`  ${dir}: PouchDB client CPU ${client.toFixed(1)} s of Syncgate's ${median(ours.map((r) => r[`${dir}Secs`])).toFixed(1)} s (peer's run ${peerSecs.toFixed(1)} s); the best ratio a zero-cost server could reach: ${(peerSecs / client).toFixed(2)}`);
  }
}

runIfMain(import.meta.url, run);
