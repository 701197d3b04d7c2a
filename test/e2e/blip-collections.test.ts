/**
 * Collection-aware BLIP (spec collections-delta.md §1.1-§1.8, Sync Gateway 3.1's handlers) on a
 * database that has only the default collection: every getCollections and `collection` misuse with
 * Sync Gateway's status and message, nothing written by a refused message and the connection still
 * usable; a Couchbase Lite 4-style client (getCollections for `_default` alone) end to end beside a
 * legacy client on the same data; one subChanges per collection index. Named collections are in
 * blip-collections-named.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, storedState, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, LocalDb } from '../helpers/blip-client.ts';
import type { BlipProperties } from '../../src/replication/blip/connection.ts';

/** The reply's error as `status message`, or `ok`. */
async function outcome(c: BlipClient, props: BlipProperties, body?: unknown): Promise<string> {
  const res = await c.conn.sendRequest(props, body as object | undefined);
  if (!res) return 'no reply';
  if (!res.isError) return 'ok';
  assert.equal(res.errorDomain, 'HTTP', `${props.Profile}: Sync Gateway answers every handler error in the HTTP domain`);
  return `${res.errorCode} ${res.body.toString()}`;
}

/** One message of every per-collection profile, each with a reply expected; writes if it were accepted. */
function perCollectionMessages(): { props: BlipProperties; body?: unknown }[] {
  return [
    { props: { Profile: 'getCheckpoint', client: 'cp-x' } },
    { props: { Profile: 'setCheckpoint', client: 'cp-refused' }, body: { local: 1 } },
    { props: { Profile: 'subChanges' } },
    { props: { Profile: 'unsubChanges' } },
    { props: { Profile: 'proposeChanges' }, body: [['refused-doc', '1-abc']] },
    { props: { Profile: 'changes' }, body: [[1, 'refused-doc', '1-abc']] },
    { props: { Profile: 'rev', id: 'refused-doc', rev: '1-abc' }, body: { v: 1 } },
    { props: { Profile: 'norev', id: 'refused-doc', rev: '1-abc', error: '404' } },
    { props: { Profile: 'getAttachment', digest: 'sha1-AAAA', docID: 'refused-doc' } },
    { props: { Profile: 'proveAttachment', digest: 'sha1-AAAA', docID: 'refused-doc' }, body: Buffer.from('nonce-nonce-nonce') },
  ];
}

describe('BLIP getCollections and the collection property on a default-only database', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:' } } });
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('getCollections body: not two string arrays is Sync Gateway\'s unmapped 500; lengths must match; paths must parse', async () => {
    const c = await BlipClient.connect(url);
    const gc = (body: unknown) => outcome(c, { Profile: 'getCollections' }, body);
    // Sync Gateway decodes into []string fields and does not map the decoding error: HTTP/500.
    for (const body of [Buffer.from('{"collections":'), Buffer.alloc(0), Buffer.from('"x"'), Buffer.from('[]'),
      { collections: 'x', checkpoint_ids: [] }, { collections: ['_default'], checkpoint_ids: [5] }, { collections: [null], checkpoint_ids: ['a'] }]) {
      assert.match(await gc(body), /^500 Internal error: Error deserializing json Sync err: /, JSON.stringify(body.toString()));
    }
    assert.equal(await gc({ collections: ['a', 'b'], checkpoint_ids: ['x'] }),
      '400 Length of collections must match length of checkpoint ids. Request body: Collections: [a b], CheckpointIds: [x]');
    assert.equal(await gc({ collections: ['_default'] }),
      '400 Length of collections must match length of checkpoint ids. Request body: Collections: [_default], CheckpointIds: []');
    const bad: [string, string][] = [
      ['a.b.c', 'unknown keyspace format: "a.b.c" - expected 1-2 fields'],
      ['', 'Collection in [scope.]collection can not be empty ""'],
      ['.', 'Scope in [scope.]collection can not be empty "."'],
      ['.bar', 'Scope in [scope.]collection can not be empty ".bar"'],
      ['foo.', 'Collection in [scope.]collection can not be empty "foo."'],
    ];
    for (const [path, why] of bad) {
      // A bad entry anywhere refuses the whole list, even after a good one.
      assert.equal(await gc({ collections: ['_default', path], checkpoint_ids: ['a', 'b'] }), `400 Invalid specification for collection: ${why}`);
    }
    // None of these switched the connection to collection-aware mode: legacy messages still work.
    assert.equal(await c.getCheckpoint('cp-none'), undefined);
    // Missing or empty arrays (and a JSON null) are an empty list: `[]`, still legacy mode.
    for (const body of [{}, { collections: [], checkpoint_ids: [] }, null]) {
      const res = await c.call({ Profile: 'getCollections' }, body === null ? Buffer.from('null') : body);
      assert.deepEqual(res.json(), []);
    }
    assert.equal(await outcome(c, { Profile: 'getCheckpoint', client: 'cp-none' }), '404 missing');
    assert.equal(await outcome(c, { Profile: 'getCheckpoint', client: 'cp-none', collection: '0' }), '400 Passing collection requires calling getCollections first');
    await c.close();
  });

  test('every per-collection message: the collection property misused is 400 with Sync Gateway\'s message, writes nothing, and the connection goes on', async () => {
    const before = await storedState(gw);
    const c = await BlipClient.connect(url);
    // Before getCollections, a collection index is refused.
    for (const m of perCollectionMessages()) {
      assert.equal(await outcome(c, { ...m.props, collection: '0' }, m.body), '400 Passing collection requires calling getCollections first', m.props.Profile);
    }
    // `_default` at 0 and `_default._default` at 1 (two ways to name it), an unknown collection at 2.
    assert.deepEqual(await c.getCollections(['_default', '_default._default', 'inventory.nope'], ['cp-a', 'cp-b', 'cp-c']), [{}, {}, null]);
    const cases: [string | undefined, string][] = [
      [undefined, 'GetCollections already occurred, subsequent messages need a Collection property'],
      ['x', 'collection property needs to be an int, was "x"'],
      ['', 'collection property needs to be an int, was ""'],
      ['1.0', 'collection property needs to be an int, was "1.0"'],
      ['99999999999999999999', 'collection property needs to be an int, was "99999999999999999999"'],
      ['3', 'Collection index 3 is outside range indexes set by GetCollections'],
      ['-1', 'Collection index -1 is outside range indexes set by GetCollections'],
      ['2', 'Collection index 2 was not a valid collection set by GetCollections'],
      ['+2', 'Collection index 2 was not a valid collection set by GetCollections'],
    ];
    for (const m of perCollectionMessages()) {
      for (const [index, message] of cases) {
        const props: BlipProperties = { ...m.props };
        if (index !== undefined) props.collection = index;
        assert.equal(await outcome(c, props, m.body), `400 ${message}`, `${m.props.Profile} collection=${index}`);
      }
    }
    // Nothing was written: no document, no change, no checkpoint.
    assert.deepEqual(await storedState(gw), before);
    assert.equal((await req(`${gw.adminUrl}/db/_local/checkpoint%2Fcp-refused`)).status, 404);
    // The connection still works for the valid indexes (Go's Atoi takes a sign and leading zeros).
    const idx0 = c.collection(0);
    assert.equal(await idx0.setCheckpoint('cp-a', { local: 1 }), '0-1');
    assert.deepEqual(await c.collection(1).getCheckpoint('cp-a'), { rev: '0-1', body: { local: 1 } });
    assert.equal(await outcome(c, { Profile: 'getCheckpoint', client: 'cp-a', collection: '+01' }), 'ok');
    const local = new LocalDb();
    local.put('after-refusals', { v: 1 });
    const push = await idx0.push(local);
    assert.equal(push.sent, 1);
    // The older `changes` push (revs-diff style) through an index too.
    const older = new LocalDb();
    older.put('after-refusals-changes', { v: 2 });
    const viaChanges = await c.collection(1).push(older, { mode: 'changes' });
    assert.deepEqual([viaChanges.sent, viaChanges.errors.size], [1, 0]);
    assert.equal((await req(`${gw.adminUrl}/db/after-refusals-changes`)).body.v, 2);
    assert.deepEqual(c.protocolErrors, []);
    await c.close();
  });

  test('one subChanges per collection index: a second is Sync Gateway\'s 500, another index may run its own, unsubChanges frees it', async () => {
    const c = await BlipClient.connect(url);
    await c.getCollections(['_default', '_default._default'], ['cp-1', 'cp-2']);
    const s0 = await c.collection(0).startPull(new LocalDb(), { continuous: true });
    assert.equal(await outcome(c, { Profile: 'subChanges', collection: '0' }),
      '500 Internal error: blipHandler for collection 0 already has an outstanding subChanges. Cannot open another one');
    const s1 = await c.collection(1).startPull(new LocalDb(), { continuous: true });
    await s0.waitFor(() => s0.caughtUp);
    await s1.waitFor(() => s1.caughtUp);
    assert.equal(await outcome(c, { Profile: 'unsubChanges', collection: '0' }), 'ok');
    assert.equal(await outcome(c, { Profile: 'subChanges', collection: '0', continuous: 'true' }), 'ok');
    await c.close();
    // Legacy mode names it "default collection".
    const l = await BlipClient.connect(url);
    await l.startPull(new LocalDb(), { continuous: true });
    assert.equal(await outcome(l, { Profile: 'subChanges' }),
      '500 Internal error: blipHandler for default collection already has an outstanding subChanges. Cannot open another one');
    await l.close();
  });
});

describe('Couchbase Lite 4 style: getCollections for the default collection alone', () => {
  let gw: TestGateway;
  let url: string;
  const alice = { user: 'alice', password: 'alice-pw' };
  before(async () => {
    gw = await startGateway({
      databases: { db: { server: 'memory:', users: { alice: { password: 'alice-pw', admin_channels: ['a'] }, GUEST: { disabled: false, admin_channels: ['*'] } } } },
    });
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('push, pull, checkpoints (rev and _rev both accepted back), every server message tagged; a legacy client sees the same collection', async () => {
    const src = new LocalDb();
    for (let i = 0; i < 30; i++) {
      src.put(`d${i}`, { i, channels: i % 3 === 0 ? ['a'] : ['b'] }, i === 5 ? { attachments: { 'x.bin': { data: randomBytes(300) } } } : {});
    }
    const pusher = await BlipClient.connect(url, alice);
    assert.deepEqual(await pusher.getCollections(['_default'], ['cp-push']), [{}]);
    const push = await pusher.collection(0).push(src);
    assert.equal(push.errors.size, 0, JSON.stringify([...push.errors]));
    assert.equal(push.sent, 30);
    // The server fetched the blob through the collection (tagged getAttachment; a mistagged one would be in protocolErrors).
    assert.deepEqual(pusher.collection(0).served, { getAttachment: 1, proveAttachment: 0 });
    const rev1 = await pusher.collection(0).setCheckpoint('cp-push', { local: push.lastSeq });
    assert.equal(rev1, '0-1');
    assert.deepEqual(pusher.protocolErrors, []);
    await pusher.close();

    // Alice pulls her channel as a CBL 4 client: every changes/rev is tagged with index 0.
    const dst = new LocalDb();
    const puller = await BlipClient.connect(url, alice);
    await puller.getCollections(['_default._default'], ['cp-pull']);
    const pull = await puller.collection(0).pull(dst);
    assert.equal(pull.errors.length, 0, pull.errors.map((e) => e.message).join('; '));
    assert.equal(pull.received, 10);
    assert.ok(pull.revProps.every((p) => p.collection === '0'), 'every rev names collection 0');
    assert.deepEqual(puller.protocolErrors, []);
    await puller.close();

    // Reconnecting: the checkpoint comes back in getCollections with its revision as rev and _rev.
    const again = await BlipClient.connect(url, alice);
    const [cp] = await again.getCollections(['_default'], ['cp-push']);
    assert.deepEqual(cp, { local: push.lastSeq, rev: '0-1', _rev: '0-1' });
    // A client that echoes the entry back (revision under `_rev`, or `rev`) replaces it; the keys are not stored.
    const echoed: Record<string, unknown> = { ...cp!, local: 99 };
    delete echoed.rev;
    const res2 = await again.call({ Profile: 'setCheckpoint', client: 'cp-push', collection: '0' }, echoed);
    assert.equal(res2.properties.rev, '0-2');
    const echoed2: Record<string, unknown> = { ...(await again.getCollections(['_default'], ['cp-push']))[0]!, local: 100 };
    delete echoed2._rev;
    const res3 = await again.call({ Profile: 'setCheckpoint', client: 'cp-push', collection: '0' }, echoed2);
    assert.equal(res3.properties.rev, '0-3');
    assert.deepEqual(await again.collection(0).getCheckpoint('cp-push'), { rev: '0-3', body: { local: 100 } });
    // A stale revision in the body is refused like a stale property.
    assert.equal(await outcome(again, { Profile: 'setCheckpoint', client: 'cp-push', collection: '0' }, { _rev: '0-1', local: 0 }), '409 Document update conflict');
    await again.close();

    // A legacy client on the same database: same documents, same checkpoint (the default collection's local doc).
    const legacy = await BlipClient.connect(url, alice);
    assert.deepEqual(await legacy.getCheckpoint('cp-push'), { rev: '0-3', body: { local: 100 } });
    const ldb = new LocalDb();
    const lpull = await legacy.pull(ldb);
    assert.equal(lpull.received, 10);
    assert.ok(lpull.revProps.every((p) => p.collection === undefined), 'legacy mode: nothing tagged');
    assert.deepEqual([...ldb.docs.keys()].sort(), [...dst.docs.keys()].sort());
    await legacy.close();
    assert.equal((await req(`${gw.adminUrl}/db/_local/checkpoint%2Fcp-push`)).body.local, 100);
  });
});
