/**
 * More of `collections_enabled` replication: attachments both ways in a named collection (the
 * remote's getAttachment / proveAttachment and ours carry the collection index); `run_as` reads
 * each collection with the user's grants in that collection; a reset clears every collection's
 * local checkpoints, so the next run starts over.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { replicator, req, runOnce, startGateway, waitState, type TestGateway } from './isgr-run-helpers.ts';

const SYNC = 'function (doc) { channel(doc.channels); }';
const COLLS = { scopes: { inventory: { collections: { airline: { sync: SYNC }, hotel: { sync: SYNC } } } } };

async function put(gw: TestGateway, coll: string, id: string, body: Record<string, unknown>): Promise<void> {
  const r = await req(`${gw.adminUrl}/db.inventory.${coll}/${encodeURIComponent(id)}`, { method: 'PUT', json: body });
  if (r.status !== 201) throw new Error(`PUT ${coll}/${id}: ${r.status} ${r.text}`);
}

async function localOf(gw: TestGateway, coll: string, id: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await gw.gateway.get('db')!.collection('inventory', coll)!.getLocal(id)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

describe('ISGR with collections_enabled: attachments, run_as, reset', () => {
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    a = await startGateway({
      databases: {
        db: {
          server: 'memory:', ...COLLS,
          users: { ann: { password: 'secret-pw', collection_access: { inventory: { airline: { admin_channels: ['a1'] } } } } },
        },
      },
    });
    b = await startGateway({ databases: { db: { server: 'memory:', ...COLLS } } });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  test('attachments go both ways in a named collection', async () => {
    const mine = Buffer.from('bytes of an attachment pushed from a, in hotel').toString('base64');
    const theirs = Buffer.from('bytes of an attachment pulled from b, in hotel').toString('base64');
    await put(a, 'hotel', 'att-a', { _attachments: { 'a.txt': { content_type: 'text/plain', data: mine } } });
    await put(b, 'hotel', 'att-b', { _attachments: { 'b.txt': { content_type: 'text/plain', data: theirs } } });
    // The same bytes already on b under another document: b asks a to prove them instead.
    await put(b, 'hotel', 'att-same-b', { _attachments: { 's.txt': { content_type: 'text/plain', data: mine } } });
    await put(a, 'hotel', 'att-same-a', { _attachments: { 's.txt': { content_type: 'text/plain', data: mine } } });
    const s = await runOnce(a, {
      replication_id: 'att', remote: `${b.adminUrl}/db`, direction: 'pushAndPull', collections_enabled: true, collections_local: ['inventory.hotel'],
    });
    assert.equal(s.counters.doc_write_failures, 0);
    const onB = await req(`${b.adminUrl}/db.inventory.hotel/att-a/a.txt`);
    assert.equal(onB.status, 200);
    assert.equal(Buffer.from(onB.text).toString('base64'), mine);
    const onA = await req(`${a.adminUrl}/db.inventory.hotel/att-b/b.txt`);
    assert.equal(onA.status, 200);
    assert.equal(Buffer.from(onA.text).toString('base64'), theirs);
    assert.equal((await req(`${b.adminUrl}/db.inventory.hotel/att-same-a/s.txt`)).status, 200);
  });

  test('run_as pushes what the user sees in each collection', async () => {
    await put(a, 'airline', 'ra-air-a1', { channels: ['a1'] });
    await put(a, 'airline', 'ra-air-other', { channels: ['other'] });
    // ann's channel a1 is granted in airline only: hotel's a1 is not hers.
    await put(a, 'hotel', 'ra-hot-a1', { channels: ['a1'] });
    await runOnce(a, {
      replication_id: 'ra', remote: `${b.adminUrl}/db`, direction: 'push', run_as: 'ann', collections_enabled: true,
    });
    assert.equal((await req(`${b.adminUrl}/db.inventory.airline/ra-air-a1`)).status, 200);
    assert.equal((await req(`${b.adminUrl}/db.inventory.airline/ra-air-other`)).status, 404);
    assert.equal((await req(`${b.adminUrl}/db.inventory.hotel/ra-hot-a1`)).status, 404);
  });

  test('reset clears the local checkpoints of every collection', async () => {
    await put(a, 'airline', 'rs-air', { v: 1 });
    await put(a, 'hotel', 'rs-hot', { v: 1 });
    const over = { replication_id: 'rs', remote: `${b.adminUrl}/db`, direction: 'push' as const, collections_enabled: true };
    const first = await runOnce(a, over);
    assert.ok(first.counters.docs_checked_push >= 2);
    assert.ok((await localOf(a, 'airline', 'sgr2cp:push:rs'))?.last_sequence);
    assert.ok((await localOf(a, 'hotel', 'sgr2cp:push:rs'))?.last_sequence);
    // Resumed: nothing new to offer.
    const again = await runOnce(a, over);
    assert.equal(again.counters.docs_checked_push, 0);

    const { rep, logs } = replicator(a, over);
    await rep.reset();
    assert.equal(await localOf(a, 'airline', 'sgr2cp:push:rs'), undefined);
    assert.equal(await localOf(a, 'hotel', 'sgr2cp:push:rs'), undefined);
    rep.start();
    const s = await waitState(rep, ['stopped', 'error'], 60_000, logs);
    assert.equal(s.state, 'stopped', s.error_message);
    // From the start: every document of both collections is offered again, none written again.
    assert.equal(s.counters.docs_checked_push, first.counters.docs_checked_push);
    assert.equal(s.counters.docs_written, 0);
  });
});
