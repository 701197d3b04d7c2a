/**
 * Delta sync under random edits (seeded): documents of random shape (nested objects and arrays, long
 * strings with multi-byte characters and the string patch's op characters) are edited at random,
 * over REST for pulls and on the device for pushes. Every round, a client pulling with deltas, one
 * pulling without, and the server must hold the same bodies; the pusher's deltas must land as its
 * full bodies would.
 *
 * Seeded: the seed is printed; replay with `SEED=<n> node --import tsx --test test/e2e/blip-delta-fuzz.test.ts`
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, LocalDb } from '../helpers/blip-client.ts';
import { seededRandom } from '../helpers/random.ts';

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const DOCS = 12;
const ROUNDS = 8;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const PIECES = ['lorem ', 'ipsum ', 'é', '€', '😀', '|', '+', '-', '=', '12', '"quoted" ', '\n', 'dolor sit amet, '];

function generators(rnd: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const text = (min: number): string => {
    let s = '';
    while (s.length < min || rnd() < 0.3) s += pick(PIECES);
    return s;
  };
  const value = (depth: number): Json => {
    const r = rnd();
    if (depth > 2 || r < 0.35) return pick<Json>([null, true, false, Math.floor(rnd() * 1000), text(rnd() < 0.5 ? 5 : 80)]);
    if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 5) }, () => value(depth + 1));
    const o: { [k: string]: Json } = {};
    for (let i = Math.floor(rnd() * 5); i > 0; i--) o[pick(['a', 'b', 'c', 'name', 'list', 'é'])] = value(depth + 1);
    return o;
  };
  /** A few random edits, keeping most of the document (as real edits do). */
  const edit = (v: Json, depth = 0): Json => {
    const r = rnd();
    if (Array.isArray(v)) {
      if (r < 0.2) return [...v, value(depth + 1)];
      if (r < 0.3) return v.slice(0, Math.floor(rnd() * v.length));
      return v.map((x) => (rnd() < 0.3 ? edit(x, depth + 1) : x));
    }
    if (v !== null && typeof v === 'object') {
      const o: { [k: string]: Json } = {};
      for (const [k, x] of Object.entries(v)) {
        const q = rnd();
        if (q < 0.1) continue;
        o[k] = q < 0.5 ? edit(x, depth + 1) : x;
      }
      if (r < 0.3) o[pick(['d', 'e', 'new', 'ü'])] = value(depth + 1);
      return o;
    }
    if (typeof v === 'string' && r < 0.7) {
      const cps = Array.from(v);
      const at = Math.floor(rnd() * (cps.length + 1));
      return cps.slice(0, at).join('') + (rnd() < 0.5 ? text(1) : '') + cps.slice(at + Math.floor(rnd() * 4)).join('');
    }
    return r < 0.85 ? value(depth + 1) : v;
  };
  const doc = (): { [k: string]: Json } => {
    const o: { [k: string]: Json } = { title: text(70), body: value(0), tags: [text(3), text(3)] };
    for (let i = Math.floor(rnd() * 4); i > 0; i--) o[`field${i}`] = value(0);
    return o;
  };
  return { doc, edit: (d: { [k: string]: Json }) => {
    const e = edit(d) as { [k: string]: Json };
    return e !== null && typeof e === 'object' && !Array.isArray(e) ? e : { replaced: e };
  } };
}

describe(`delta sync under random edits (SEED=${SEED})`, () => {
  let gw: TestGateway;
  before(async () => {
    console.log(`delta fuzz seed: SEED=${SEED} (replay: SEED=${SEED} node --import tsx --test test/e2e/blip-delta-fuzz.test.ts)`);
    gw = await startGateway({ databases: { db: { server: 'memory:', delta_sync: { enabled: true } } } });
  });
  after(() => gw.stop());

  async function serverBody(id: string): Promise<unknown> {
    const res = await req(`${gw.adminUrl}/db/${encodeURIComponent(id)}`);
    assert.equal(res.status, 200, res.text);
    const { _id, _rev, ...body } = res.body as Record<string, unknown>;
    void _id; void _rev;
    return body;
  }

  test('pulled with deltas = pulled without = the server; pushed with deltas = the device', async () => {
    const rnd = seededRandom(SEED);
    const gen = generators(rnd);
    const url = `${gw.publicUrl}/db`;
    const ids = Array.from({ length: DOCS }, (_, i) => `fuzz${i}`);
    const bodies = new Map(ids.map((id) => [id, gen.doc()]));
    const revs = new Map<string, string>();
    const withDeltas = new LocalDb();
    const without = new LocalDb();
    const device = new LocalDb();
    const pushIds = ids.map((id) => `pushed-${id}`);
    for (const id of pushIds) device.put(id, gen.doc());
    const clients = { with: await BlipClient.connect(url), without: await BlipClient.connect(url), pusher: await BlipClient.connect(url) };
    const since = { with: undefined as unknown, without: undefined as unknown };
    let pushSince = 0;
    let deltasApplied = 0;
    let deltasPushed = 0;
    try {
      for (let round = 0; round <= ROUNDS; round++) {
        for (const id of ids) {
          if (round > 0) {
            if (rnd() < 0.3) continue; // not every document changes every round
            bodies.set(id, gen.edit(bodies.get(id)!));
          }
          const res = await req(`${gw.adminUrl}/db/${id}${revs.has(id) ? `?rev=${revs.get(id)}` : ''}`, { method: 'PUT', json: bodies.get(id) });
          assert.equal(res.status, 201, res.text);
          revs.set(id, res.body.rev);
        }
        const a = await clients.with.pull(withDeltas, { deltas: true, docIDs: ids, ...(since.with !== undefined ? { since: since.with } : {}) });
        const b = await clients.without.pull(without, { docIDs: ids, ...(since.without !== undefined ? { since: since.without } : {}) });
        since.with = a.lastSeq;
        since.without = b.lastSeq;
        deltasApplied += a.deltasApplied;
        assert.deepEqual(a.errors, []);
        assert.equal(a.deltasRefused, 0);
        for (const id of ids) {
          const server = await serverBody(id);
          assert.deepEqual(withDeltas.get(id)?.body, server, `round ${round}: ${id} pulled with deltas`);
          assert.deepEqual(without.get(id)?.body, server, `round ${round}: ${id} pulled without`);
          assert.equal(withDeltas.current(id), revs.get(id));
        }
        if (round > 0) for (const id of pushIds) if (rnd() < 0.7) device.put(id, gen.edit(device.get(id)!.body as { [k: string]: Json }));
        const p = await clients.pusher.push(device, { deltas: true, minDeltaBodySize: 0, since: pushSince });
        assert.deepEqual(p.errors, new Map());
        assert.equal(p.deltasRefused, 0);
        deltasPushed += p.deltasSent;
        pushSince = p.lastSeq;
        for (const id of pushIds) assert.deepEqual(await serverBody(id), device.get(id)!.body, `round ${round}: ${id} pushed`);
      }
    } finally {
      await Promise.all(Object.values(clients).map((c) => c.close()));
    }
    assert.ok(deltasApplied > DOCS, `deltas were used when pulling (${deltasApplied})`);
    assert.ok(deltasPushed > DOCS, `deltas were used when pushing (${deltasPushed})`);
  });
});
