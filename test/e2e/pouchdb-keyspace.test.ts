/**
 * PouchDB replicating through a keyspace URL (`http://host/db._default._default`) both ways, on a
 * database without named collections: the fully spelled default keyspace is the same collection as
 * `/db`. (Named collections: pouchdb-keyspace-collections.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, remoteDb } from '../helpers/pouchdb.ts';

async function contents(db: any): Promise<Map<string, any>> {
  const res = await db.allDocs({ include_docs: true, attachments: true });
  return new Map(res.rows.map((r: any) => [r.id, r.doc]));
}

describe('PouchDB replicates through the default keyspace URL', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(() => gw.stop());

  test('push and pull through /db._default._default, seen through /db', async () => {
    const keyspaceUrl = `${gw.publicUrl}/db._default._default`;
    const source = localDb();
    const docs = Array.from({ length: 50 }, (_, i) => ({ _id: `ks-${String(i).padStart(2, '0')}`, i }));
    await source.bulkDocs(docs);
    await source.putAttachment('ks-00', 'note.txt', (await source.get('ks-00'))._rev, Buffer.from('attached'), 'text/plain');
    const push = await source.replicate.to(remoteDb(keyspaceUrl));
    assert.equal(push.ok, true);
    assert.equal(push.docs_written, 50);
    // The same documents under the plain database URL.
    const viaDb = await req(`${gw.publicUrl}/db/_all_docs`);
    assert.equal(viaDb.body.rows.length, 50);
    // Edited on the server through the short spelling, pulled through the long one.
    const doc = await req(`${gw.publicUrl}/db._default/ks-01`);
    assert.equal((await req(`${gw.publicUrl}/db._default/ks-01`, { method: 'PUT', json: { ...doc.body, edited: true } })).status, 201);
    const target = localDb();
    const pull = await target.replicate.from(remoteDb(keyspaceUrl));
    assert.equal(pull.ok, true);
    assert.equal(pull.docs_written, 50);
    const got = await contents(target);
    assert.equal(got.size, 50);
    assert.equal(got.get('ks-01').edited, true);
    assert.equal(Buffer.from(got.get('ks-00')._attachments['note.txt'].data, 'base64').toString(), 'attached');
    // The checkpoint PouchDB wrote lives in the keyspace's local documents, which /db shares.
    const again = await target.replicate.from(remoteDb(keyspaceUrl));
    assert.equal(again.docs_written, 0);
  });
});
