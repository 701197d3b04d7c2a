/**
 * PostgreSQL backend: PouchDB push and pull throughput on PostgreSQL beside SQLite (each Syncgate in
 * its own process, PostgreSQL a throwaway local cluster over TLS with a client certificate, fsync
 * on), and the latency from a write on one node to its arrival on the continuous feed of another
 * node, beside the same feed on the writing node.
 *
 *   npm run bench -- postgres        BENCH_PG_DOCS=5000 BENCH_PG_WRITES=300 npm run bench -- postgres
 */
import { localDb, remoteDb } from '../test/helpers/pouchdb.ts';
import { startPgCluster } from '../test/helpers/postgres.ts';
import { runIfMain } from './main.ts';
import { type BenchServer, docBody, docId, fmt, machine, median, percentile, report, startSyncgate, timed } from './servers.ts';

async function pushThenPull(server: BenchServer, n: number): Promise<{ push: number; pull: number }> {
  const source = localDb();
  for (let i = 0; i < n; i += 500) {
    await source.bulkDocs(Array.from({ length: Math.min(500, n - i) }, (_, k) => ({ _id: docId(i + k), ...docBody(i + k) })));
  }
  const [pushSecs, push] = await timed<any>(() => source.replicate.to(remoteDb(server.url), { batch_size: 100 }));
  if (push.docs_written !== n) throw new Error(`push wrote ${push.docs_written} of ${n}`);
  const target = localDb();
  const [pullSecs, pull] = await timed<any>(() => target.replicate.from(remoteDb(server.url), { batch_size: 100 }));
  if (pull.docs_written !== n) throw new Error(`pull wrote ${pull.docs_written} of ${n}`);
  await Promise.all([source.destroy(), target.destroy()]);
  return { push: n / pushSecs, pull: n / pullSecs };
}

/** Follows a continuous feed; resolves ids to their arrival time (performance.now()). */
function follow(dbUrl: string, since: number): { arrivals: Map<string, number>; stop: () => void; ready: Promise<void> } {
  const arrivals = new Map<string, number>();
  const ac = new AbortController();
  const ready = (async () => {
    const res = await fetch(`${dbUrl}/_changes?feed=continuous&since=${since}&heartbeat=5000`, { signal: ac.signal });
    const reader = res.body!.getReader();
    void (async () => {
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        const now = performance.now();
        buf += Buffer.from(value!).toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) arrivals.set((JSON.parse(line) as { id: string }).id, now);
        }
      }
    })();
  })();
  return { arrivals, stop: () => ac.abort(), ready };
}

async function latency(a: BenchServer, b: BenchServer, writes: number): Promise<{ remote: number[]; local: number[]; afterAck: number[] }> {
  const since = ((await (await fetch(`${a.url}/`)).json()) as { update_seq: number }).update_seq;
  const onB = follow(b.url, since);
  const onA = follow(a.url, since);
  await Promise.all([onB.ready, onA.ready]);
  await new Promise((r) => setTimeout(r, 200));
  const sent = new Map<string, number>();
  const acked = new Map<string, number>();
  for (let i = 0; i < writes; i++) {
    const id = `lat-${i}`;
    sent.set(id, performance.now());
    const r = await fetch(`${a.url}/${id}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(docBody(i)) });
    if (r.status !== 201) throw new Error(`PUT gave ${r.status}`);
    await r.arrayBuffer();
    acked.set(id, performance.now());
    // Spaced writes: each one's latency is measured alone, not behind a queue.
    const deadline = performance.now() + 5000;
    while (!(onB.arrivals.has(id) && onA.arrivals.has(id)) && performance.now() < deadline) await new Promise((res) => setTimeout(res, 1));
  }
  onA.stop();
  onB.stop();
  const delays = (m: Map<string, number>) => [...sent].map(([id, t]) => (m.get(id) ?? NaN) - t);
  const remote = delays(onB.arrivals);
  if (remote.some(Number.isNaN)) throw new Error('some writes never reached the other node\'s feed');
  // Arrival after the PUT's response: what the notification path itself adds (never below 0: a
  // feed line can arrive before the client has read the PUT's response).
  const afterAck = [...acked].map(([id, t]) => Math.max(0, onB.arrivals.get(id)! - t));
  return { remote, local: delays(onA.arrivals), afterAck };
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_PG_DOCS ?? 5000);
  const writes = Number(process.env.BENCH_PG_WRITES ?? 300);
  console.log(`PostgreSQL backend: PouchDB push/pull of ${fmt(n)} ~1 KB docs (batch 100); ${fmt(writes)} spaced writes for latency; ${machine()}`);
  const cluster = await startPgCluster({ fsync: true });
  try {
    const c = cluster.certs;
    const pgDb = (bucket: string) => ({ server: cluster.url(), bucket, certpath: c.clientCert, keypath: c.clientKey, cacertpath: c.caCert });
    const sqlite = await startSyncgate();
    const sq = await pushThenPull(sqlite, n).finally(() => sqlite.stop());
    const pgServer = await startSyncgate(pgDb('bench_pouch'));
    const pgr = await pushThenPull(pgServer, n).finally(() => pgServer.stop());
    report('PouchDB push, PostgreSQL vs SQLite', pgr.push, sq.push, 'docs/s');
    report('PouchDB pull, PostgreSQL vs SQLite', pgr.pull, sq.pull, 'docs/s');
    const [a, b] = await Promise.all([startSyncgate(pgDb('bench_latency')), startSyncgate(pgDb('bench_latency'))]);
    try {
      const { remote, local, afterAck } = await latency(a, b, writes);
      const ms = (x: number) => `${x.toFixed(1)} ms`;
      console.log(`${'write on A → feed on B (PUT sent → line read)'.padEnd(48)} median ${ms(median(remote))}  p99 ${ms(percentile(remote, 99))}`);
      console.log(`${'write on A → feed on A (same node, for scale)'.padEnd(48)} median ${ms(median(local))}  p99 ${ms(percentile(local, 99))}`);
      console.log(`${'PUT acknowledged by A → line read on B'.padEnd(48)} median ${ms(median(afterAck))}  p99 ${ms(percentile(afterAck, 99))}`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  } finally {
    await cluster.stop();
  }
}

runIfMain(import.meta.url, run);
