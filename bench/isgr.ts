/**
 * Gateway-to-gateway one-shot pull (the ISGR active replicator, src/replication/active/) beside
 * the same pull by the project's Couchbase Lite-style BLIP client (test/helpers/blip-client.ts),
 * same source gateway, same run: N documents of ~1 KB on a SQLite file; the pulling gateway writes
 * into its own SQLite file through its write path (sync function, revision trees, one transaction
 * per group), the BLIP client into memory. Prints docs/s and the ISGR/client ratio.
 *
 *   BENCH_ISGR_DOCS=20000 node --import tsx bench/isgr.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/index.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';
import { createReplicator } from '../src/replication/active/index.ts';
import type { ReplicationConfig, ReplicatorSnapshot } from '../src/replication/isgr/types.ts';
import { BlipClient, LocalDb } from '../test/helpers/blip-client.ts';
import { runIfMain } from './main.ts';

async function gateway(dir: string, name: string): Promise<{ gw: Gateway; admin: string }> {
  const config = parseConfigText(JSON.stringify({
    databases: { db: { server: `sqlite:${join(dir, `${name}.sqlite3`)}`, users: { GUEST: { disabled: false, admin_channels: ['*'] } } } },
  }), 'bench');
  const gw = new Gateway(config, { logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0' });
  const addrs = await gw.start();
  return { gw, admin: `http://127.0.0.1:${addrs.admin.port}/db` };
}

async function isgrPull(target: Gateway, remote: string, id: string): Promise<[number, ReplicatorSnapshot]> {
  const config: ReplicationConfig = {
    replication_id: id, remote, direction: 'pull', continuous: false, purge_on_removal: false, conflict_resolution_type: 'default',
    batch_size: 200, max_backoff_time: 5, initial_state: 'running', adhoc: false,
  };
  const rep = createReplicator(target.get('db')!, config, { log: () => {} });
  const t0 = performance.now();
  const done = new Promise<ReplicatorSnapshot>((resolve) => rep.onChange((s) => { if (s.state === 'stopped' || s.state === 'error') resolve(s); }));
  rep.start();
  const s = await done;
  if (s.state !== 'stopped') throw new Error(`ISGR pull ended in ${s.state}: ${s.error_message}`);
  return [(performance.now() - t0) / 1000, s];
}

export async function run(): Promise<void> {
  const N = Number(process.env.BENCH_ISGR_DOCS ?? 20_000);
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-isgr-'));
  const source = await gateway(dir, 'source');
  const targets = [await gateway(dir, 'warm'), await gateway(dir, 'target')];
  try {
    console.log(`ISGR pull bench: ${N} docs of ~1 KB, gateway to gateway vs the BLIP test client, ${os.cpus().length} cores, Node ${process.version}`);
    const filler = 'x'.repeat(900);
    const src = source.gw.get('db')!;
    for (let i = 0; i < N; i += 500) {
      const reqs = [];
      for (let k = i; k < Math.min(i + 500, N); k++) reqs.push({ id: `doc-${String(k).padStart(7, '0')}`, body: { k, type: 'bench', filler }, newEdits: true });
      await src.bulkWrite(reqs);
    }
    // Unmeasured: a first pull into a throwaway gateway (JIT, page cache).
    await isgrPull(targets[0].gw, source.admin, 'warm');
    const [isgrSecs, snap] = await isgrPull(targets[1].gw, source.admin, 'bench');
    if (snap.counters.docs_read !== N) throw new Error(`ISGR pull read ${snap.counters.docs_read} of ${N}`);

    const client = await BlipClient.connect(source.admin);
    const t0 = performance.now();
    const pulled = await client.pull(new LocalDb(), {}, 600_000);
    const clientSecs = (performance.now() - t0) / 1000;
    await client.close();
    if (pulled.received !== N) throw new Error(`BLIP client pull received ${pulled.received} of ${N}`);

    const isgrRate = N / isgrSecs;
    const clientRate = N / clientSecs;
    console.log(`pull: ISGR gateway → gateway (SQLite)     ${Math.round(isgrRate)} docs/s`);
    console.log(`pull: BLIP test client (memory)           ${Math.round(clientRate)} docs/s   ISGR/client ${(isgrRate / clientRate).toFixed(2)}`);
  } finally {
    for (const t of targets) await t.gw.stop();
    await source.gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
