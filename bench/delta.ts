/**
 * Delta sync (issue 15): what deltas save on the wire and what they cost in throughput, measured in
 * the same run against the same gateway (one SQLite database with `delta_sync.enabled`).
 *
 * Pull: D documents of ~10 KB are pulled once by two Couchbase Lite-style clients (the spec-written
 * replicator in test/helpers/blip-client.ts): one announces deltas, the other does not. Then R
 * rounds: every document is edited in one 20-byte field (over the admin REST API, not measured) and
 * both clients pull the round (measured), in alternating order. Push: two clients each hold their
 * own D documents on the server; each round every document is edited locally in one 20-byte field
 * and pushed, one client with deltas and one without, in alternating order.
 *
 * Bytes are counted on the client's TCP socket (WebSocket and BLIP framing, BLIP compression
 * included): received for a pull, sent for a push, plus the other direction in brackets.
 *
 *   npm run bench -- delta                                 # 1,000 docs x 10 rounds (the figures)
 *   BENCH_DELTA_DOCS=200 BENCH_DELTA_ROUNDS=3 npm run bench -- delta   # a quick look
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/config/index.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';
import { BlipClient, LocalDb } from '../test/helpers/blip-client.ts';
import { runIfMain } from './main.ts';
import { machine } from './servers.ts';

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'ze', 'bri', 'cho', 'dra', 'fle', 'gri', 'plo', 'stu', 'an', 'el', 'or', 'ux'];

/**
 * Deterministic text with a large vocabulary and numbers, which deflate shrinks about as much as
 * real JSON prose (2-3x), not like a run of one character or a handful of repeated words.
 */
function prose(seed: number, bytes: number): string {
  let x = (seed * 2654435761) >>> 0;
  const next = () => (x = (x * 1103515245 + 12345) >>> 0) >>> 8;
  const out: string[] = [];
  let n = 0;
  while (n < bytes) {
    let w = '';
    const syl = 1 + (next() % 4);
    for (let k = 0; k < syl; k++) w += SYLLABLES[next() % SYLLABLES.length];
    if (next() % 7 === 0) w += String(next() % 10_000);
    out.push(w);
    n += w.length + 1;
  }
  return out.join(' ').slice(0, bytes);
}

/** A ~10 KB document whose `stamp` is the 20-byte field that changes. */
function doc(i: number, round: number): Record<string, unknown> {
  const body: Record<string, unknown> = { type: 'bench', owner: `user-${i % 50}`, stamp: `round-${String(round).padStart(3, '0')}-${String(i).padStart(10, '0')}` };
  for (let f = 0; f < 10; f++) body[`section${f}`] = prose(i * 16 + f, 1000);
  return body;
}

/** Bytes read and written on the client's socket so far (`ws` keeps it as `_socket`). */
function counters(c: BlipClient): () => { read: number; written: number } {
  const socket = (c.ws as unknown as { _socket: Socket })._socket;
  return () => ({ read: socket.bytesRead, written: socket.bytesWritten });
}

interface Round { secs: number; read: number; written: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function measure(c: BlipClient, fn: () => Promise<unknown>): Promise<Round> {
  const bytes = counters(c);
  const b0 = bytes();
  const t0 = performance.now();
  await fn();
  const secs = (performance.now() - t0) / 1000;
  const b1 = bytes();
  return { secs, read: b1.read - b0.read, written: b1.written - b0.written };
}

function report(what: string, docs: number, withDeltas: Round[], without: Round[], main: 'read' | 'written'): void {
  const other = main === 'read' ? 'written' : 'read';
  const sum = (rs: Round[], k: 'secs' | 'read' | 'written') => rs.reduce((n, r) => n + r[k], 0);
  const mb = (b: number) => (b / 1e6).toFixed(2);
  const rate = (rs: Round[]) => Math.round((docs * rs.length) / sum(rs, 'secs'));
  const saved = 1 - sum(withDeltas, main) / sum(without, main);
  const rateRatios = withDeltas.map((r, i) => without[i]!.secs / r.secs);
  console.log(`${what}: without deltas ${mb(sum(without, main))} MB (${mb(sum(without, other))} MB back), ${rate(without)} docs/s`);
  console.log(`${what}: with deltas    ${mb(sum(withDeltas, main))} MB (${mb(sum(withDeltas, other))} MB back), ${rate(withDeltas)} docs/s`);
  console.log(`${what}: bytes saved ${(saved * 100).toFixed(1)}% (target >= 80%); docs/s with/without: median ${median(rateRatios).toFixed(2)} ` +
    `(target >= 0.85), rounds ${rateRatios.map((r) => r.toFixed(2)).join(' ')}`);
}

export async function run(): Promise<void> {
  const D = Number(process.env.BENCH_DELTA_DOCS ?? 1000);
  const R = Number(process.env.BENCH_DELTA_ROUNDS ?? 10);
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-delta-'));
  const config = parseConfigText(JSON.stringify({
    databases: {
      db: { server: `sqlite:${join(dir, 'delta.sqlite3')}`, delta_sync: { enabled: true }, users: { GUEST: { disabled: false, admin_channels: ['*'] } } },
    },
  }), 'bench');
  const gateway = new Gateway(config, { logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0' });
  const addrs = await gateway.start();
  const base = `http://127.0.0.1:${addrs.public.port}/db`;
  const admin = `http://127.0.0.1:${addrs.admin.port}/db`;
  const id = (i: number) => `doc-${String(i).padStart(6, '0')}`;
  try {
    console.log(`Delta sync bench: ${D} docs of ~${Math.round(JSON.stringify(doc(0, 0)).length / 1000)} KB, ${R} rounds of one 20-byte edit each; ${machine()}`);

    // ---- pull ----
    const revs = new Map<string, string>();
    const write = async (round: number): Promise<void> => {
      for (let i = 0; i < D; i += 200) {
        const docs = [];
        for (let k = i; k < Math.min(D, i + 200); k++) docs.push({ _id: id(k), ...(revs.has(id(k)) ? { _rev: revs.get(id(k)) } : {}), ...doc(k, round) });
        const res = await fetch(`${admin}/_bulk_docs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ docs }) });
        const rows = await res.json() as { id: string; rev?: string; error?: string }[];
        for (const r of rows) {
          if (!r.rev) throw new Error(`bulk_docs: ${JSON.stringify(r)}`);
          revs.set(r.id, r.rev);
        }
      }
    };
    await write(0);
    const withDb = new LocalDb();
    const withoutDb = new LocalDb();
    const pullers = { with: await BlipClient.connect(base), without: await BlipClient.connect(base) };
    const since = { with: (await pullers.with.pull(withDb, { deltas: true }, 600_000)).lastSeq, without: (await pullers.without.pull(withoutDb, {}, 600_000)).lastSeq };
    const pullWith: Round[] = [];
    const pullWithout: Round[] = [];
    for (let round = 1; round <= R; round++) {
      await write(round);
      const order = round % 2 ? ['with', 'without'] as const : ['without', 'with'] as const;
      for (const who of order) {
        const c = pullers[who];
        let state: Awaited<ReturnType<BlipClient['pull']>> | undefined;
        const r = await measure(c, async () => { state = await c.pull(who === 'with' ? withDb : withoutDb, { deltas: who === 'with', since: since[who] }, 600_000); });
        if (state!.received !== D) throw new Error(`pull ${who} received ${state!.received} of ${D}`);
        if (who === 'with' && state!.deltasApplied !== D) throw new Error(`pull with deltas applied ${state!.deltasApplied} of ${D}`);
        since[who] = state!.lastSeq;
        (who === 'with' ? pullWith : pullWithout).push(r);
      }
    }
    for (const k of [id(0), id(D - 1)]) {
      if (JSON.stringify(withDb.get(k)?.body) !== JSON.stringify(withoutDb.get(k)?.body)) throw new Error(`pulled bodies of ${k} differ`);
    }
    await pullers.with.close();
    await pullers.without.close();
    report('pull', D, pullWith, pullWithout, 'read');

    // ---- push ----
    const pushers = { with: await BlipClient.connect(base), without: await BlipClient.connect(base) };
    const locals = { with: new LocalDb(), without: new LocalDb() };
    const pushSince = { with: 0, without: 0 };
    for (const who of ['with', 'without'] as const) {
      for (let i = 0; i < D; i++) locals[who].put(`push-${who}-${id(i)}`, doc(i, 0));
      pushSince[who] = (await pushers[who].push(locals[who])).lastSeq;
    }
    const pushWith: Round[] = [];
    const pushWithout: Round[] = [];
    for (let round = 1; round <= R; round++) {
      const order = round % 2 ? ['with', 'without'] as const : ['without', 'with'] as const;
      for (const who of order) {
        for (let i = 0; i < D; i++) locals[who].put(`push-${who}-${id(i)}`, doc(i, round));
        const c = pushers[who];
        let result: Awaited<ReturnType<BlipClient['push']>> | undefined;
        const r = await measure(c, async () => { result = await c.push(locals[who], { deltas: who === 'with', since: pushSince[who] }); });
        if (result!.sent !== D || result!.errors.size) throw new Error(`push ${who} sent ${result!.sent} of ${D}`);
        if (who === 'with' && result!.deltasSent !== D) throw new Error(`push with deltas sent ${result!.deltasSent} deltas of ${D}`);
        pushSince[who] = result!.lastSeq;
        (who === 'with' ? pushWith : pushWithout).push(r);
      }
    }
    await pushers.with.close();
    await pushers.without.close();
    report('push', D, pushWith, pushWithout, 'written');
    // The storage cost: bodies of replaced revisions kept as delta sources for rev_max_age_seconds.
    const kept = await gateway.get('db')!.store.oldRevisionUsage();
    const live = await gateway.get('db')!.store.countDocs();
    console.log(`storage: ${kept.count} old revision bodies kept (${(kept.bytes / 1e6).toFixed(1)} MB) beside ${live} documents, ` +
      `after ${R} edits of each within rev_max_age_seconds`);
  } finally {
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
