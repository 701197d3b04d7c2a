/**
 * PouchDB pushes, then a fresh PouchDB pulls, N 1 KB documents through Syncgate
 * (SQLite on a temp file). Prints docs/s for each direction, and the ratio of each to a ceiling
 * measured in the same run: the same documents written straight into PouchDB's memory adapter
 * (so the figure says how much the network protocol + server cost, on this noisy machine).
 *
 *   npm run bench                          # all benchmarks; this one with 10,000 docs
 *   BENCH_DOCS=2000 npm run bench -- pouchdb  # this one only
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import os from 'node:os';
import { parseConfigText } from '../src/config/index.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';
import { localDb, remoteDb } from '../test/helpers/pouchdb.ts';
import { runIfMain } from './main.ts';


function makeDocs(n: number): Record<string, unknown>[] {
  const filler = 'x'.repeat(900);
  return Array.from({ length: n }, (_, i) => ({ _id: `doc-${String(i).padStart(7, '0')}`, i, type: 'bench', filler }));
}

async function time<T = any>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const out = await fn();
  return [(performance.now() - t0) / 1000, out];
}

export async function run(): Promise<void> {
  const N = Number(process.env.BENCH_DOCS ?? 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-'));
  const config = parseConfigText(JSON.stringify({ databases: { db: { server: `sqlite:${join(dir, 'db.sqlite3')}`, users: { GUEST: { disabled: false, admin_channels: ['*'] } } } } }), 'bench');
  const gateway = new Gateway(config, { logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0' });
  const addrs = await gateway.start();
  const url = `http://127.0.0.1:${addrs.public.port}/db`;
  try {
    console.log(`Syncgate bench: ${N} docs of ~1 KB, ${os.cpus().length} cores, Node ${process.version}`);
    const docs = makeDocs(N);

    const [ceilingSecs] = await time(async () => {
      const db = localDb();
      for (let i = 0; i < docs.length; i += 100) await db.bulkDocs(docs.slice(i, i + 100).map((d) => ({ ...d })));
    });

    const source = localDb();
    for (let i = 0; i < docs.length; i += 500) await source.bulkDocs(docs.slice(i, i + 500));
    const [pushSecs, push] = await time<any>(() => source.replicate.to(remoteDb(url), { batch_size: 100 }));
    if (push.docs_written !== N) throw new Error(`push wrote ${push.docs_written} of ${N}`);

    const target = localDb();
    const [pullSecs, pull] = await time<any>(() => target.replicate.from(remoteDb(url), { batch_size: 100 }));
    if (pull.docs_written !== N) throw new Error(`pull wrote ${pull.docs_written} of ${N}`);

    const rate = (secs: number) => Math.round(N / secs);
    const ceiling = rate(ceilingSecs);
    console.log(`ceiling: PouchDB memory adapter bulkDocs  ${ceiling} docs/s`);
    console.log(`push:    PouchDB -> Syncgate             ${rate(pushSecs)} docs/s  (${(rate(pushSecs) / ceiling).toFixed(2)} of ceiling)`);
    console.log(`pull:    Syncgate -> PouchDB             ${rate(pullSecs)} docs/s  (${(rate(pullSecs) / ceiling).toFixed(2)} of ceiling)`);
  } finally {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
