/**
 * Delta sync, pull direction (spec collections-delta.md §2.1, §2.2, §2.6): the project's BLIP client,
 * speaking deltas with the project's codec, against a real gateway. A revision goes as a delta from
 * the first ancestor the client lists when the client announced deltas and `delta_sync.enabled`;
 * every fall-back sends the full body; a 422 or 404 reply gets the full body at once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, LocalDb, type PullOptions } from '../helpers/blip-client.ts';

/** A ~4 KB document: one small field changes, the rest stays. */
function bigDoc(i: number, counter: number): Record<string, unknown> {
  const fields: Record<string, unknown> = { counter, title: `document ${i}` };
  for (let f = 0; f < 20; f++) fields[`f${f}`] = `${'lorem ipsum dolor sit amet '.repeat(7)}${i}-${f}`;
  return fields;
}

describe('delta sync: pull', () => {
  let gw: TestGateway;
  let url: string;
  let admin: string;
  before(async () => {
    gw = await startGateway({
      databases: {
        delta: { server: 'memory:', delta_sync: { enabled: true } },
        plain: { server: 'memory:' },
      },
    });
    url = `${gw.publicUrl}/delta`;
    admin = `${gw.adminUrl}/delta`;
  });
  after(() => gw.stop());

  async function put(db: string, id: string, body: Record<string, unknown>, rev?: string): Promise<string> {
    const res = await req(`${gw.adminUrl}/${db}/${encodeURIComponent(id)}${rev ? `?rev=${rev}` : ''}`, { method: 'PUT', json: body });
    assert.equal(res.status, 201, res.text);
    return res.body.rev as string;
  }

  async function serverBody(db: string, id: string): Promise<Record<string, unknown>> {
    const res = await req(`${gw.adminUrl}/${db}/${encodeURIComponent(id)}`);
    assert.equal(res.status, 200, res.text);
    const { _id, _rev, ...body } = res.body as Record<string, unknown>;
    void _id; void _rev;
    return body;
  }

  async function pull(dbUrl: string, local: LocalDb, opts: PullOptions = {}) {
    const c = await BlipClient.connect(dbUrl);
    try {
      return await c.pull(local, opts);
    } finally {
      await c.close();
    }
  }

  test('an edited document comes as a delta from the revision the client has, with a short history', async () => {
    const r1 = await put('delta', 'd1', bigDoc(1, 0));
    const local = new LocalDb();
    const first = await pull(url, local, { deltas: true });
    assert.equal(first.received, 1);
    assert.equal(first.revProps[0].deltaSrc, undefined, 'nothing to diff against yet');
    const r2 = await put('delta', 'd1', bigDoc(1, 1), r1);
    const r3 = await put('delta', 'd1', bigDoc(1, 2), r2);
    const second = await pull(url, local, { deltas: true, since: first.lastSeq });
    assert.equal(second.received, 1);
    const p = second.revProps[0];
    assert.equal(p.rev, r3);
    assert.equal(p.deltaSrc, r1, 'from the first (only) ancestor the client listed');
    assert.equal(p.history, `${r2},${r1}`, 'parent down to and including deltaSrc');
    assert.equal(second.deltasApplied, 1);
    assert.ok(second.revBodyBytes < 60, `delta of ${second.revBodyBytes} bytes`);
    assert.deepEqual(local.get('d1')?.body, await serverBody('delta', 'd1'));
    assert.equal(local.current('d1'), r3);
  });

  test('the client must announce: without deltas: "true" the full body goes', async () => {
    const r1 = await put('delta', 'quiet', bigDoc(2, 0));
    const local = new LocalDb();
    const first = await pull(url, local, { docIDs: ['quiet'] });
    await put('delta', 'quiet', bigDoc(2, 1), r1);
    const second = await pull(url, local, { docIDs: ['quiet'], since: first.lastSeq });
    assert.equal(second.revProps.length, 1);
    assert.equal(second.revProps[0].deltaSrc, undefined);
    assert.deepEqual(local.get('quiet')?.body, await serverBody('delta', 'quiet'));
  });

  test('delta_sync off: full bodies even to a client that announces deltas', async () => {
    const r1 = await put('plain', 'p1', bigDoc(3, 0));
    const local = new LocalDb();
    const first = await pull(`${gw.publicUrl}/plain`, local, { deltas: true });
    await put('plain', 'p1', bigDoc(3, 1), r1);
    const second = await pull(`${gw.publicUrl}/plain`, local, { deltas: true, since: first.lastSeq });
    assert.equal(second.revProps.length, 1);
    assert.equal(second.revProps[0].deltaSrc, undefined);
    assert.deepEqual(local.get('p1')?.body, await serverBody('plain', 'p1'));
  });

  test('a source the server has no body for: the full body', async () => {
    const r1 = await put('delta', 'nosrc', bigDoc(4, 0));
    const local = new LocalDb();
    const first = await pull(url, local, { deltas: true, docIDs: ['nosrc'] });
    await put('delta', 'nosrc', bigDoc(4, 1), r1);
    // The client claims an ancestor the server never had.
    const second = await pull(url, local, {
      deltas: true, docIDs: ['nosrc'], since: first.lastSeq, knownFor: (_id, _rev, known) => ['1-0123456789abcdef', ...known],
    });
    assert.equal(second.revProps.length, 1);
    assert.equal(second.revProps[0].deltaSrc, undefined);
    assert.deepEqual(local.get('nosrc')?.body, await serverBody('delta', 'nosrc'));
  });

  test('a tombstone source: the full body; a deleted target: a full tombstone', async () => {
    const r1 = await put('delta', 'tomb', bigDoc(5, 0));
    const local = new LocalDb();
    const a = await pull(url, local, { deltas: true, docIDs: ['tomb'] });
    const del = await req(`${admin}/tomb?rev=${r1}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    const b = await pull(url, local, { deltas: true, docIDs: ['tomb'], since: a.lastSeq });
    assert.equal(b.revProps.length, 1);
    assert.equal(b.revProps[0].deleted, '1');
    assert.equal(b.revProps[0].deltaSrc, undefined, 'a deletion is sent whole');
    assert.equal(local.get('tomb')?.deleted, true);
    // Resurrected on top of the tombstone: the client lists the tombstone, whose body cannot be a source.
    await put('delta', 'tomb', bigDoc(5, 1), del.body.rev);
    const c = await pull(url, local, { deltas: true, docIDs: ['tomb'], since: b.lastSeq });
    assert.equal(c.revProps.length, 1);
    assert.equal(c.revProps[0].deltaSrc, undefined);
    assert.deepEqual(local.get('tomb')?.body, await serverBody('delta', 'tomb'));
  });

  test('an old revision past its retention is no source any more (expiry sweep)', async () => {
    const r1 = await put('delta', 'aged', bigDoc(6, 0));
    const local = new LocalDb();
    const a = await pull(url, local, { deltas: true, docIDs: ['aged'] });
    await put('delta', 'aged', bigDoc(6, 1), r1);
    const db = gw.gateway.get('delta')!;
    assert.ok((await db.store.getOldRevision('aged', r1, Math.floor(Date.now() / 1000))) !== undefined, 'kept for rev_max_age_seconds');
    await db.sweepExpired(Math.floor(Date.now() / 1000) + 86_400 + 60);
    assert.equal(await db.store.getOldRevision('aged', r1, 0), undefined, 'the sweep removed it');
    const b = await pull(url, local, { deltas: true, docIDs: ['aged'], since: a.lastSeq });
    assert.equal(b.revProps.length, 1);
    assert.equal(b.revProps[0].deltaSrc, undefined);
    assert.deepEqual(local.get('aged')?.body, await serverBody('delta', 'aged'));
  });

  for (const status of [422, 404]) {
    test(`a ${status} reply to a delta gets the full body at once`, async () => {
      const id = `resend${status}`;
      const r1 = await put('delta', id, bigDoc(7, 0));
      const local = new LocalDb();
      const a = await pull(url, local, { deltas: true, docIDs: [id] });
      const r2 = await put('delta', id, bigDoc(7, 1), r1);
      const b = await pull(url, local, { deltas: true, docIDs: [id], since: a.lastSeq, refuseDeltas: status });
      assert.equal(b.deltasRefused, 1);
      assert.deepEqual(b.revProps.map((p) => [p.rev, p.deltaSrc]), [[r2, r1], [r2, undefined]]);
      assert.equal(local.current(id), r2);
      assert.deepEqual(local.get(id)?.body, await serverBody('delta', id));
    });
  }

  test('a client that lost the source body answers 422 and gets the full body', async () => {
    const r1 = await put('delta', 'lost', bigDoc(8, 0));
    const local = new LocalDb();
    const a = await pull(url, local, { deltas: true, docIDs: ['lost'] });
    const r2 = await put('delta', 'lost', bigDoc(8, 1), r1);
    // Lists r1 but "loses" its body before the rev arrives (LiteCore's race: DeltaBaseUnknown → 422).
    const b = await pull(url, local, {
      deltas: true, docIDs: ['lost'], since: a.lastSeq,
      knownFor: (id, _rev, known) => { delete local.docs.get(id)!.revs.get(r1)!.body; return known.length ? known : [r1]; },
    });
    assert.deepEqual(b.revProps.map((p) => p.deltaSrc), [r1, undefined]);
    assert.equal(local.current('lost'), r2);
    assert.deepEqual(local.get('lost')?.body, await serverBody('delta', 'lost'));
  });

  test('attachment metadata is part of the diffed bodies', async () => {
    const r1 = await put('delta', 'att', bigDoc(9, 0));
    const local = new LocalDb();
    const a = await pull(url, local, { deltas: true, docIDs: ['att'] });
    const attRes = await req(`${admin}/att/hello.txt?rev=${r1}`, { method: 'PUT', body: 'hello world', headers: { 'content-type': 'text/plain' } });
    assert.equal(attRes.status, 201, attRes.text);
    const b = await pull(url, local, { deltas: true, docIDs: ['att'], since: a.lastSeq });
    assert.equal(b.revProps.length, 1);
    assert.equal(b.revProps[0].deltaSrc, r1);
    assert.equal(b.deltasApplied, 1);
    const body = local.get('att')!.body!;
    const stub = (body._attachments as Record<string, { digest: string; length: number; stub: boolean }>)['hello.txt'];
    assert.equal(stub.length, 11);
    assert.equal(stub.stub, true);
    assert.equal(local.blobs.get(stub.digest)?.toString(), 'hello world', 'the client fetched the new attachment');
    // An edit that keeps the attachment: the delta does not mention it, the stub survives.
    const r3 = await put('delta', 'att', { ...bigDoc(9, 5), _attachments: { 'hello.txt': { stub: true, digest: stub.digest, revpos: 2 } } }, attRes.body.rev);
    const c = await pull(url, local, { deltas: true, docIDs: ['att'], since: b.lastSeq });
    assert.equal(c.revProps[0].deltaSrc, attRes.body.rev);
    assert.equal(local.current('att'), r3);
    assert.deepEqual(local.get('att')?.body?._attachments, body._attachments);
    assert.equal(local.get('att')?.body?.counter, 5);
  });

  test('many documents in one pull, several edits each: every one a delta, every body right', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `many${i}`);
    const revs = new Map<string, string>();
    for (const [i, id] of ids.entries()) revs.set(id, await put('delta', id, bigDoc(100 + i, 0)));
    const local = new LocalDb();
    const a = await pull(url, local, { deltas: true, docIDs: ids });
    assert.equal(a.received, ids.length);
    for (let round = 1; round <= 3; round++) {
      for (const [i, id] of ids.entries()) revs.set(id, await put('delta', id, bigDoc(100 + i, round), revs.get(id)));
    }
    const b = await pull(url, local, { deltas: true, docIDs: ids, since: a.lastSeq, batch: 10 });
    assert.equal(b.received, ids.length);
    assert.equal(b.deltasApplied, ids.length);
    for (const id of ids) {
      assert.equal(local.current(id), revs.get(id));
      assert.deepEqual(local.get(id)?.body, await serverBody('delta', id));
    }
  });

  test('delta_sync metrics: requested, sent, a cache hit for the second client, bytes saved, old bodies kept', async () => {
    const stats = async () => {
      const res = await req(`${gw.metricsUrl}/_expvar`);
      assert.equal(res.status, 200);
      return res.body.syncgateway.per_db.delta.delta_sync as Record<string, number>;
    };
    const r1 = await put('delta', 'metered', bigDoc(50, 0));
    const a = new LocalDb();
    const b = new LocalDb();
    const pa = await pull(url, a, { deltas: true, docIDs: ['metered'] });
    const pb = await pull(url, b, { deltas: true, docIDs: ['metered'] });
    await put('delta', 'metered', bigDoc(50, 1), r1);
    const before = await stats();
    await pull(url, a, { deltas: true, docIDs: ['metered'], since: pa.lastSeq });
    await pull(url, b, { deltas: true, docIDs: ['metered'], since: pb.lastSeq });
    const after = await stats();
    assert.equal(after.deltas_requested - before.deltas_requested, 2);
    assert.equal(after.deltas_sent - before.deltas_sent, 2);
    assert.equal(after.delta_cache_miss - before.delta_cache_miss, 1, 'diffed once');
    assert.equal(after.delta_cache_hit - before.delta_cache_hit, 1, 'the second client got the cached delta');
    assert.equal(after.delta_pull_replication_count - before.delta_pull_replication_count, 2);
    assert.ok(after.delta_bytes_saved_pull - before.delta_bytes_saved_pull > 2 * 3000, 'about the body size, twice');
    assert.ok(after.old_revision_bodies >= 1 && after.old_revision_body_bytes > 3000, JSON.stringify(after));
    const text = (await req(`${gw.metricsUrl}/_metrics`)).text;
    assert.match(text, /syncgate_delta_sync_total\{database="delta",stat="delta_cache_hit"\} [1-9]/);
  });

  test('on the wire, the spec\'s Sync Gateway vectors S1 and S2 (attachment metadata stamped into both bodies)', async () => {
    const fixture = JSON.parse(readFileSync(new URL('../fixtures/delta-vectors.json', import.meta.url), 'utf8')) as { vectors: { name: string; old: Record<string, unknown>; new: Record<string, unknown>; delta: unknown }[] };
    const s1 = fixture.vectors.find((v) => v.name === 'S1')!;
    const s2 = fixture.vectors.find((v) => v.name === 'S2')!;
    const r1 = await put('delta', 'vectors', s1.old);
    const local = new LocalDb();
    const a = await pull(url, local, { deltas: true, docIDs: ['vectors'] });
    // S2: an attachment added at generation 2 (hello.txt = "hello world", as in Sync Gateway's test).
    const att = await req(`${admin}/vectors/hello.txt?rev=${r1}`, { method: 'PUT', body: 'hello world' });
    assert.equal(att.status, 201, att.text);
    const b = await pull(url, local, { deltas: true, docIDs: ['vectors'], since: a.lastSeq });
    assert.equal(b.revProps[0].deltaSrc, r1);
    const stamped = JSON.parse(b.revBodies[0]!) as { _attachments: [Record<string, Record<string, unknown>>] };
    // Our stub also names the content type the attachment was stored with; the rest is S2's delta.
    delete stamped._attachments[0]['hello.txt']!.content_type;
    assert.deepEqual(stamped, s2.delta);
    // S1: an array item appended, the attachment unchanged.
    const r3 = await put('delta', 'vectors', { ...s1.new, _attachments: { 'hello.txt': { stub: true, digest: 'sha1-Kq5sNclPz7QV2+lfQIuc6R7oRu0=', revpos: 2 } } }, att.body.rev);
    const c = await pull(url, local, { deltas: true, docIDs: ['vectors'], since: b.lastSeq });
    assert.equal(c.revProps[0].rev, r3);
    assert.equal(c.revProps[0].deltaSrc, att.body.rev);
    assert.deepEqual(JSON.parse(c.revBodies[0]!), s1.delta);
    // REST shows CouchDB's md5 digest where BLIP (and so the device) has Sync Gateway's sha1 one.
    const onServer = await serverBody('delta', 'vectors') as { _attachments: Record<string, Record<string, unknown>> };
    onServer._attachments['hello.txt'].digest = 'sha1-Kq5sNclPz7QV2+lfQIuc6R7oRu0=';
    assert.deepEqual(local.get('vectors')?.body, onServer);
  });
});
