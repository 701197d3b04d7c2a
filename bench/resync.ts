/**
 * Issue 13, resync: N (default 100,000) stored ~1 KB documents re-run through a changed sync
 * function (`POST /db/_resync` on the offline database), against the push write rate measured in
 * the same run on the same machine (the push replay of bench/push.ts, which also fills the file).
 * Resident memory of the server is sampled during the resync: its growth must stay under 100 MB.
 *
 *   npm run bench -- resync          BENCH_RESYNC_DOCS=10000 npm run bench -- resync
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runIfMain } from './main.ts';
import { replayPush } from './push.ts';
import { client, fmt, getJson, machine, postJson, replicatedDoc, rssBytes, startSyncgate } from './servers.ts';

/** Before: every document in its own channel of ten; after: another channel set and a grant per 1,000. */
const SYNC_BEFORE = `function (doc) { channel('c' + (doc.i % 10)); }`;
const SYNC_AFTER = `function (doc) {
  channel(doc.i % 3 === 0 ? 'moved' : 'c' + (doc.i % 10));
  if (doc.i % 1000 === 0) access(doc.owner.name, 'moved');
}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Resident memory split as /proc shows it: anonymous (heap, stacks: what the process holds) and
 * file-backed (pages of the SQLite file it maps with mmap_size, which the kernel can drop at will).
 */
function rssParts(pid: number): { anon: number; file: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN) * 1024;
  return { anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
}

export async function run(): Promise<void> {
  const n = Number(process.env.BENCH_RESYNC_DOCS ?? 100_000);
  console.log(`resync: ${fmt(n)} stored docs of ~1 KB, changed sync function; push rate measured in the same run; ${machine()}`);
  const docs = Array.from({ length: n }, (_, i) => replicatedDoc(i));
  // A folder of our own: the second gateway opens the first one's file with the new sync function.
  const dir = mkdtempSync(join(tmpdir(), 'resync-bench-'));
  const file = join(dir, 'db.sqlite3');
  const first = await startSyncgate({ sync: SYNC_BEFORE }, { file });
  let pushRate: number;
  try {
    pushRate = await replayPush(first.url, docs);
  } finally {
    await first.stop();
  }
  docs.length = 0;

  const server = await startSyncgate({ sync: SYNC_AFTER }, { file });
  const { pool, path } = client(server.adminUrl!);
  try {
    // `_offline` answers 200 with an empty body.
    const off = await pool.request({ method: 'POST', path: `${path}/_offline` });
    await off.body.text();
    if (off.statusCode !== 200) throw new Error(`_offline: ${off.statusCode}`);
    const rssBefore = rssBytes(server.pid);
    let rssMax = rssBefore;
    const partsBefore = rssParts(server.pid);
    let anonMax = partsBefore.anon;
    let fileMax = partsBefore.file;
    // The server's JS heap in use, from its own metrics (prom-client's process metrics).
    const heapUsed = async () => {
      const text = await (await fetch(`${server.metricsUrl}/_metrics`)).text();
      return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? NaN);
    };
    const heapBefore = await heapUsed();
    let heapMax = heapBefore;
    const sample = () => {
      rssMax = Math.max(rssMax, rssBytes(server.pid));
      const p = rssParts(server.pid);
      anonMax = Math.max(anonMax, p.anon);
      fileMax = Math.max(fileMax, p.file);
    };
    const t0 = performance.now();
    const started = await postJson(pool, `${path}/_resync?action=start`, {});
    let status = started;
    while (status.status !== 'completed') {
      if (status.status === 'error' || status.status === 'stopped') throw new Error(`resync ${status.status}: ${status.last_error}`);
      await sleep(100);
      sample();
      heapMax = Math.max(heapMax, await heapUsed());
      status = await getJson(pool, `${path}/_resync`);
    }
    const secs = (performance.now() - t0) / 1000;
    sample();
    if (status.docs_processed !== n) throw new Error(`resync processed ${status.docs_processed} of ${n}`);
    const rate = n / secs;
    const growthMb = (rssMax - rssBefore) / (1024 * 1024);
    console.log(`push (write path, same run): ${fmt(pushRate)} docs/s`);
    console.log(`resync: ${fmt(rate)} docs/s (${fmt(status.docs_changed)} changed, ${secs.toFixed(1)} s)  of push: ${(rate / pushRate).toFixed(2)}  target ≥0.50: ${rate / pushRate >= 0.5 ? 'met' : 'NOT met'}`);
    const mb = (b: number) => (b / 1048576).toFixed(1);
    console.log(`resident memory growth during the resync: ${growthMb.toFixed(1)} MB (${mb(rssBefore)} → ${mb(rssMax)} MB)  target <100 MB: ${growthMb < 100 ? 'met' : 'NOT met'}`);
    console.log(`  of which anonymous (heap and the like): +${mb(anonMax - partsBefore.anon)} MB (${mb(partsBefore.anon)} → ${mb(anonMax)}); file-backed (the SQLite file mapped by mmap_size): +${mb(fileMax - partsBefore.file)} MB`);
    console.log(`  JS heap in use: ${mb(heapBefore)} → peak ${mb(heapMax)} MB`);
  } finally {
    await pool.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
