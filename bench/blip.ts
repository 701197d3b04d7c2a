/**
 * Couchbase Lite's protocol beside PouchDB's, same gateway, same run: N 1 KB documents pushed and
 * pulled over BLIP (the spec-written replicator in test/helpers/blip-client.ts, proposeChanges +
 * rev, subChanges + changes + rev) and over REST by PouchDB (_revs_diff/_bulk_docs,
 * _changes/_bulk_get). SQLite on a temp file. Prints docs/s and the BLIP/REST ratio per direction.
 *
 *   BENCH_DOCS=5000 npm run bench -- blip
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/index.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';
import { localDb, remoteDb } from '../test/helpers/pouchdb.ts';
import { BlipClient, LocalDb } from '../test/helpers/blip-client.ts';
import { runIfMain } from './main.ts';

/** Documents pushed each way before the measured runs (JIT and database warm-up). */
const WARMUP_DOCS = 200;

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const out = await fn();
  return [(performance.now() - t0) / 1000, out];
}

export async function run(): Promise<void> {
  const N = Number(process.env.BENCH_DOCS ?? 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-blip-'));
  const config = parseConfigText(JSON.stringify({
    databases: {
      blip: { server: `sqlite:${join(dir, 'blip.sqlite3')}`, users: { GUEST: { disabled: false, admin_channels: ['*'] } } },
      rest: { server: `sqlite:${join(dir, 'rest.sqlite3')}`, users: { GUEST: { disabled: false, admin_channels: ['*'] } } },
    },
  }), 'bench');
  const gateway = new Gateway(config, { logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0' });
  const addrs = await gateway.start();
  const base = `http://127.0.0.1:${addrs.public.port}`;
  try {
    console.log(`BLIP vs REST bench: ${N} docs of ~1 KB, ${os.cpus().length} cores, Node ${process.version}`);
    const filler = 'x'.repeat(900);
    const id = (i: number) => `doc-${String(i).padStart(7, '0')}`;

    // BLIP: a Couchbase Lite-style local database pushes, then a fresh one pulls.
    // A short unmeasured push each way first, so the measured compressed push (run first) does not
    // alone pay for JIT warm-up and the fresh database.
    const pusher = await BlipClient.connect(`${base}/blip`);
    for (const compress of [true, false]) {
      const warm = new LocalDb();
      for (let i = 0; i < WARMUP_DOCS; i++) warm.put(`warm-${compress}-${id(i)}`, { i, type: 'warm', filler });
      await pusher.push(warm, { compress });
    }
    const src = new LocalDb();
    for (let i = 0; i < N; i++) src.put(id(i), { i, type: 'bench', filler });
    const [blipPushSecs, pushed] = await time(() => pusher.push(src));
    if (pushed.sent !== N) throw new Error(`BLIP push sent ${pushed.sent} of ${N}`);
    // The same again with uncompressed rev frames: how much per-frame deflate/inflate costs.
    const plainSrc = new LocalDb();
    for (let i = 0; i < N; i++) plainSrc.put(`plain-${id(i)}`, { i, type: 'bench', filler });
    const [plainPushSecs, plainPushed] = await time(() => pusher.push(plainSrc, { compress: false }));
    if (plainPushed.sent !== N) throw new Error(`BLIP push sent ${plainPushed.sent} of ${N}`);
    await pusher.close();
    const dst = new LocalDb();
    const puller = await BlipClient.connect(`${base}/blip`);
    const [blipPullSecs, pulled] = await time(() => puller.pull(dst, {}, 600_000));
    await puller.close();
    const pullDocs = 2 * N + 2 * WARMUP_DOCS;
    if (pulled.received !== pullDocs) throw new Error(`BLIP pull received ${pulled.received} of ${pullDocs}`);

    // REST: PouchDB, as bench/pouchdb.ts runs it.
    const source = localDb();
    const docs = Array.from({ length: N }, (_, i) => ({ _id: id(i), i, type: 'bench', filler }));
    for (let i = 0; i < docs.length; i += 500) await source.bulkDocs(docs.slice(i, i + 500));
    const [restPushSecs, push] = await time<any>(() => source.replicate.to(remoteDb(`${base}/rest`), { batch_size: 100 }));
    if (push.docs_written !== N) throw new Error(`PouchDB push wrote ${push.docs_written} of ${N}`);
    const target = localDb();
    const [restPullSecs, pull] = await time<any>(() => target.replicate.from(remoteDb(`${base}/rest`), { batch_size: 100 }));
    if (pull.docs_written !== N) throw new Error(`PouchDB pull wrote ${pull.docs_written} of ${N}`);

    const rate = (secs: number) => Math.round(N / secs);
    console.log(`push: BLIP (proposeChanges + rev)        ${rate(blipPushSecs)} docs/s   (uncompressed revs: ${rate(plainPushSecs)} docs/s, compressed/uncompressed ${(plainPushSecs / blipPushSecs).toFixed(2)})`);
    console.log(`push: REST (PouchDB, batch 100)          ${rate(restPushSecs)} docs/s   BLIP/REST ${(restPushSecs / blipPushSecs).toFixed(2)}`);
    const pullRate = pullDocs / blipPullSecs;
    console.log(`pull: BLIP (subChanges, batch 200)       ${Math.round(pullRate)} docs/s   (revs > 256 bytes sent compressed)`);
    console.log(`pull: REST (PouchDB, batch 100)          ${rate(restPullSecs)} docs/s   BLIP/REST ${(pullRate / (N / restPullSecs)).toFixed(2)}`);
  } finally {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
