/** GET /{db}/: CouchDB's doc_count and doc_del_count beside Sync Gateway's fields, on both backends' write paths. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('GET /{db}/ document counts', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  const counts = async () => {
    const r = await req(`${db}/`);
    assert.equal(r.status, 200);
    return [r.body.doc_count, r.body.doc_del_count];
  };

  test('an empty database counts 0 and 0, next to update_seq', async () => {
    const r = await req(`${db}/`);
    assert.equal(r.body.db_name, 'db');
    assert.equal(typeof r.body.update_seq, 'number');
    assert.deepEqual(await counts(), [0, 0]);
  });

  test('counts follow creates, updates, deletes, resurrections, conflicts, tombstones and purges', async () => {
    const rows = (await req(`${db}/_bulk_docs`, { method: 'POST', json: { docs: [{ _id: 'a' }, { _id: 'b' }, { _id: 'c' }] } })).body;
    assert.deepEqual(await counts(), [3, 0]);
    await req(`${db}/a?rev=${rows[0].rev}`, { method: 'PUT', json: { v: 2 } });
    assert.deepEqual(await counts(), [3, 0], 'an update is still one document');
    await req(`${db}/b?rev=${rows[1].rev}`, { method: 'DELETE' });
    assert.deepEqual(await counts(), [2, 1]);
    await req(`${db}/b`, { method: 'PUT', json: { back: true } });
    assert.deepEqual(await counts(), [3, 0], 'resurrected');
    // A second branch is the same document; a replicated tombstone of a new id is a deleted one.
    await req(`${db}/_bulk_docs`, {
      method: 'POST',
      json: { new_edits: false, docs: [{ _id: 'c', _rev: '2-zz', _revisions: { start: 2, ids: ['zz', 'yy'] } }, { _id: 't', _rev: '1-t', _deleted: true }] },
    });
    assert.deepEqual(await counts(), [3, 1]);
    const purge = await req(`${gw.adminUrl}/db/_purge`, { method: 'POST', json: { t: ['*'], a: ['*'] } });
    assert.equal(purge.status, 200);
    assert.deepEqual(await counts(), [2, 0]);
    // A refused write counts nothing.
    assert.equal((await req(`${db}/c`, { method: 'PUT', json: {} })).status, 409);
    assert.deepEqual(await counts(), [2, 0]);
  });
});
