/**
 * Target 2, pull, server side: the light client replays a replicator's pull of N (default 20,000)
 * 1 KB documents, as PouchDB asks for them: `_changes?style=all_docs&since=S&limit=100` pages, each
 * followed by `_bulk_get?revs=true&attachments=true` for that page's revisions (JSON form). Both
 * servers are filled first by the push replay (not timed).
 *
 *   npm run bench -- pull            BENCH_PULL_DOCS=5000 npm run bench -- pull
 */
import { runIfMain } from './main.ts';
import { replayPush } from './push.ts';
import { alternate, type BenchServer, client, fmt, getJson, machine, postJson, replicatedDoc, reportRounds, startPeer, startSyncgate, timed } from './servers.ts';

const PAGE = 100;

/** Replays a replicator's pull from `url`; returns docs/s. Throws unless `n` docs came back. */
export async function replayPull(url: string, n: number): Promise<number> {
  const { pool, path } = client(url);
  try {
    const [secs, got] = await timed(async () => {
      let since: unknown = 0;
      let got = 0;
      for (;;) {
        const page = await getJson(pool, `${path}/_changes?style=all_docs&since=${encodeURIComponent(String(since))}&limit=${PAGE}`);
        since = page.last_seq;
        const docs = page.results.flatMap((r: any) => r.changes.map((c: any) => ({ id: r.id, rev: c.rev })));
        if (docs.length === 0) break;
        const res = await postJson(pool, `${path}/_bulk_get?revs=true&attachments=true`, { docs });
        for (const r of res.results) if (r.docs[0]?.ok) got++;
        if (page.results.length < PAGE) break;
      }
      return got;
    });
    if (got !== n) throw new Error(`pull got ${got} of ${n} docs`);
    return n / secs;
  } finally {
    await pool.close();
  }
}

async function pullFrom(start: () => Promise<BenchServer>, docs: Record<string, unknown>[]): Promise<number> {
  const server = await start();
  try {
    await replayPush(server.url, docs);
    return await replayPull(server.url, docs.length);
  } finally {
    await server.stop();
  }
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_PULL_DOCS ?? 20_000);
  console.log(`pull replay (_changes limit=${PAGE} + _bulk_get): ${fmt(n)} docs of ~1 KB; ${machine()}`);
  const docs = Array.from({ length: n }, (_, i) => replicatedDoc(i));
  const { ours, theirs } = await alternate(3, (side) => pullFrom(side === 'syncgate' ? () => startSyncgate() : startPeer, docs));
  reportRounds('pull, server side (docs/s)', ours, theirs, 'docs/s', { min: 3 });
}

runIfMain(import.meta.url, run);
