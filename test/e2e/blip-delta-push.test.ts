/**
 * Delta sync, push direction (spec collections-delta.md §2.3): the server announces `deltas: "true"`
 * on proposeChanges/changes responses when `delta_sync.enabled`; a pushed delta is applied to its
 * `deltaSrc` (read with the pusher's access) and written on the one write path; 400 when deltas are
 * off, 422 when the source is missing, unreadable, a tombstone, or the delta does not apply, and
 * nothing is written on any refusal. PouchDB (REST, never deltas) sees the same revisions and bodies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, LocalDb } from '../helpers/blip-client.ts';
import { localDb, PouchDB } from '../helpers/pouchdb.ts';

function bigDoc(i: number, counter: number, channels = ['a']): Record<string, unknown> {
  const fields: Record<string, unknown> = { counter, title: `document ${i}`, channels };
  for (let f = 0; f < 20; f++) fields[`f${f}`] = `${'lorem ipsum dolor sit amet '.repeat(7)}${i}-${f}`;
  return fields;
}

const USERS = {
  alice: { password: 'alice-pw', admin_channels: ['a'] },
  bob: { password: 'bob-pw', admin_channels: ['b'] },
};
const ALICE = { user: 'alice', password: 'alice-pw' };

describe('delta sync: push', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway({
      databases: {
        delta: { server: 'memory:', delta_sync: { enabled: true }, users: USERS },
        plain: { server: 'memory:', users: USERS },
      },
    });
    url = `${gw.publicUrl}/delta`;
  });
  after(() => gw.stop());

  async function serverDoc(db: string, id: string): Promise<{ status: number; rev?: string; body?: Record<string, unknown> }> {
    const res = await req(`${gw.adminUrl}/${db}/${encodeURIComponent(id)}`);
    if (res.status !== 200) return { status: res.status };
    const { _id, _rev, ...body } = res.body as Record<string, unknown>;
    void _id;
    return { status: 200, rev: _rev as string, body };
  }

  async function withClient<T>(dbUrl: string, fn: (c: BlipClient) => Promise<T>): Promise<T> {
    const c = await BlipClient.connect(dbUrl, ALICE);
    try {
      return await fn(c);
    } finally {
      await c.close();
    }
  }

  test('proposeChanges and changes responses announce deltas only where they are enabled', async () => {
    for (const [db, expected] of [['delta', 'true'], ['plain', undefined]] as const) {
      await withClient(`${gw.publicUrl}/${db}`, async (c) => {
        const p = await c.call({ Profile: 'proposeChanges' }, [['announce', '1-abc']]);
        assert.equal(p.properties.deltas, expected, `${db} proposeChanges`);
        const ch = await c.call({ Profile: 'changes' }, [[1, 'announce', '1-abc']]);
        assert.equal(ch.properties.deltas, expected, `${db} changes`);
      });
    }
  });

  test('an edit is pushed as a delta; the server stores the client\'s revision id and the whole body', async () => {
    const pushed = async () => (await req(`${gw.metricsUrl}/_expvar`)).body.syncgateway.per_db.delta.delta_sync as Record<string, number>;
    const before = await pushed();
    const local = new LocalDb();
    local.put('p1', bigDoc(1, 0));
    await withClient(url, async (c) => {
      const first = await c.push(local, { deltas: true });
      assert.equal(first.sent, 1);
      assert.equal(first.deltasSent, 0, 'no base yet');
      for (let n = 1; n <= 3; n++) {
        local.put('p1', bigDoc(1, n));
        const r = await c.push(local, { deltas: true, since: first.lastSeq });
        assert.equal(r.serverDeltas, true);
        assert.equal(r.deltasSent, 1, `edit ${n} went as a delta`);
        assert.deepEqual(r.errors, new Map());
      }
    });
    const s = await serverDoc('delta', 'p1');
    assert.equal(s.rev, local.current('p1'));
    assert.deepEqual(s.body, local.get('p1')!.body);
    const after = await pushed();
    assert.equal(after.delta_push_doc_count - before.delta_push_doc_count, 3);
    assert.ok(after.delta_bytes_saved_push - before.delta_bytes_saved_push > 3 * 3000);
  });

  test('deltas pushed with changes (not proposeChanges) work the same', async () => {
    const local = new LocalDb();
    local.put('p2', bigDoc(2, 0));
    await withClient(url, async (c) => {
      const first = await c.push(local, { deltas: true, mode: 'changes' });
      local.put('p2', bigDoc(2, 1));
      const r = await c.push(local, { deltas: true, mode: 'changes', since: first.lastSeq });
      assert.equal(r.deltasSent, 1);
    });
    assert.deepEqual((await serverDoc('delta', 'p2')).body, local.get('p2')!.body);
  });

  /** Sends one `rev` by hand; returns the error code (0 = stored). */
  async function rawRev(c: BlipClient, props: Record<string, string>, body: object): Promise<number> {
    const res = await c.conn.sendRequest({ Profile: 'rev', ...props }, body);
    return res?.isError ? res.errorCode ?? -1 : 0;
  }

  /** A document alice can see, at 1-… on the server, pushed by alice. */
  async function seed(db: string, id: string, channels = ['a']): Promise<string> {
    const res = await req(`${gw.adminUrl}/${db}/${id}`, { method: 'PUT', json: bigDoc(3, 0, channels) });
    assert.equal(res.status, 201, res.text);
    return res.body.rev as string;
  }

  test('refusals: 400 when deltas are off; 422 for a missing, unreadable or tombstone source and a bad delta; nothing written', async () => {
    const r1 = await seed('plain', 'off');
    await withClient(`${gw.publicUrl}/plain`, async (c) => {
      assert.equal(await rawRev(c, { id: 'off', rev: '2-aaaa', history: r1, deltaSrc: r1 }, { counter: 9 }), 400);
    });
    assert.equal((await serverDoc('plain', 'off')).rev, r1);

    const d1 = await seed('delta', 'refuse');
    const hidden = await seed('delta', 'hidden', ['b']);
    const gone = await seed('delta', 'gone');
    const del = await req(`${gw.adminUrl}/delta/gone?rev=${gone}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await withClient(url, async (c) => {
      // A source the server does not have.
      assert.equal(await rawRev(c, { id: 'refuse', rev: '2-bbbb', history: '1-ffff', deltaSrc: '1-ffff' }, { counter: 9 }), 422);
      assert.equal(await rawRev(c, { id: 'nodoc', rev: '2-bbbb', history: '1-ffff', deltaSrc: '1-ffff' }, { counter: 9 }), 422);
      // A delta that does not apply to the source (deleting a key it lacks; a string patch of the wrong length).
      assert.equal(await rawRev(c, { id: 'refuse', rev: '2-cccc', history: d1, deltaSrc: d1 }, { nosuchkey: [] }), 422);
      assert.equal(await rawRev(c, { id: 'refuse', rev: '2-cccc', history: d1, deltaSrc: d1 }, { title: ['3=', 0, 2] }), 422);
      assert.equal(await rawRev(c, { id: 'refuse', rev: '2-cccc', history: d1, deltaSrc: d1 }, ['not', 'an', 'object', 'delta']), 422);
      // A source in a channel alice cannot read.
      assert.equal(await rawRev(c, { id: 'hidden', rev: '2-dddd', history: hidden, deltaSrc: hidden }, { counter: 9 }), 422);
      // A tombstone source.
      assert.equal(await rawRev(c, { id: 'gone', rev: '3-eeee', history: `${del.body.rev},${gone}`, deltaSrc: del.body.rev }, { counter: 9 }), 422);
      // The same deltas against a good source are stored.
      assert.equal(await rawRev(c, { id: 'refuse', rev: '2-cccc', history: d1, deltaSrc: d1 }, { counter: 9 }), 0);
    });
    const after = await serverDoc('delta', 'refuse');
    assert.equal(after.rev, '2-cccc');
    assert.deepEqual(after.body, { ...bigDoc(3, 0), counter: 9 });
    assert.equal((await serverDoc('delta', 'hidden')).rev, hidden);
    assert.equal((await serverDoc('delta', 'nodoc')).status, 404);
    const g = await req(`${gw.adminUrl}/delta/gone?open_revs=all`, { headers: { accept: 'application/json' } });
    assert.deepEqual((g.body as { ok: { _rev: string } }[]).map((r) => r.ok._rev), [del.body.rev], 'nothing written on refusal');
  });

  test('the server lost the source body: the client\'s delta gets 422 and the full body follows', async () => {
    const local = new LocalDb();
    const r1 = local.put('lost', bigDoc(4, 0));
    const r1Body = local.get('lost', r1)!.body!;
    await withClient(url, async (c) => {
      const a = await c.push(local, { mode: 'changes' });
      local.put('lost', bigDoc(4, 1));
      const b = await c.push(local, { mode: 'changes', since: a.lastSeq });
      assert.equal(b.sent, 1);
      // The client still believes the server has r1 as a base; the server's copy of r1 expires.
      local.remote.set('lost', r1);
      local.docs.get('lost')!.revs.get(r1)!.body = r1Body;
      await gw.gateway.get('delta')!.sweepExpired(Math.floor(Date.now() / 1000) + 86_400 + 60);
      local.put('lost', bigDoc(4, 2));
      const r = await c.push(local, { mode: 'changes', deltas: true, since: b.lastSeq });
      assert.equal(r.deltasRefused, 1);
      assert.equal(r.deltasSent, 0);
      assert.equal(r.sent, 1);
    });
    const s = await serverDoc('delta', 'lost');
    assert.equal(s.rev, local.current('lost'));
    assert.deepEqual(s.body, local.get('lost')!.body);
  });

  test('a document with an attachment: the delta leaves the stub alone and the server keeps the attachment', async () => {
    const local = new LocalDb();
    local.put('withatt', bigDoc(5, 0), { attachments: { 'a.bin': { data: Buffer.from('attachment bytes'), content_type: 'application/octet-stream' } } });
    await withClient(url, async (c) => {
      const a = await c.push(local, { deltas: true });
      assert.equal(a.sent, 1);
      local.put('withatt', bigDoc(5, 1));
      const b = await c.push(local, { deltas: true, since: a.lastSeq });
      assert.equal(b.deltasSent, 1);
      assert.deepEqual(b.errors, new Map());
    });
    const s = await serverDoc('delta', 'withatt');
    assert.equal(s.rev, local.current('withatt'));
    assert.equal(s.body!.counter, 1);
    const atts = s.body!._attachments as Record<string, { digest: string; length: number }>;
    assert.equal(atts['a.bin']!.length, 16);
    const data = await req(`${gw.adminUrl}/delta/withatt/a.bin`);
    assert.equal(data.text, 'attachment bytes');
  });

  test('PouchDB on the same database sees the same revisions and bodies as the delta pushers', async () => {
    const local = new LocalDb();
    const ids = Array.from({ length: 10 }, (_, i) => `pouch${i}`);
    for (const [i, id] of ids.entries()) local.put(id, bigDoc(10 + i, 0));
    await withClient(url, async (c) => {
      let since = (await c.push(local, { deltas: true })).lastSeq;
      for (let n = 1; n <= 3; n++) {
        for (const [i, id] of ids.entries()) local.put(id, bigDoc(10 + i, n));
        const r = await c.push(local, { deltas: true, since });
        assert.equal(r.deltasSent, ids.length);
        since = r.lastSeq;
      }
    });
    const pouch = localDb();
    const remote = new PouchDB(url, { skip_setup: true, auth: { username: 'alice', password: 'alice-pw' } });
    await pouch.replicate.from(remote, { doc_ids: ids });
    for (const id of ids) {
      const doc = await pouch.get(id, { revs: true });
      assert.equal(doc._rev, local.current(id));
      const { _id, _rev, _revisions, ...body } = doc;
      void _id; void _rev;
      assert.deepEqual(body, local.get(id)!.body);
      assert.deepEqual(
        _revisions.ids.map((h: string, k: number) => `${_revisions.start - k}-${h}`),
        local.history(id, local.current(id)!),
        'the same history as the Couchbase Lite side',
      );
    }
  });
});
