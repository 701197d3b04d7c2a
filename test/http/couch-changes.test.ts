/** `_changes` details PouchDB relies on: CouchDB's leaf order with style=all_docs, and `_doc_ids` on live feeds. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('_changes: CouchDB compatibility', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.adminUrl}/db`;
  });
  after(() => gw.stop());


  test('style=all_docs lists the winner first, then live leaves before deleted ones, newest and greatest first', async () => {
    // Leaves: 2-a (live), 3-b (live, winner), 2-c (live), 3-d (deleted), 4-e (deleted), 2-f (live).
    const docs = [
      { _id: 'tree', _rev: '2-a', _revisions: { start: 2, ids: ['a', 'root'] } },
      { _id: 'tree', _rev: '3-b', _revisions: { start: 3, ids: ['b', 'x', 'root'] } },
      { _id: 'tree', _rev: '2-c', _revisions: { start: 2, ids: ['c', 'root'] } },
      { _id: 'tree', _rev: '3-d', _revisions: { start: 3, ids: ['d', 'y', 'root'] }, _deleted: true },
      { _id: 'tree', _rev: '4-e', _revisions: { start: 4, ids: ['e', 'w', 'v', 'root'] }, _deleted: true },
      { _id: 'tree', _rev: '2-f', _revisions: { start: 2, ids: ['f', 'root'] } },
    ];
    const w = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs } });
    assert.ok(w.body.every((r: any) => !r.error), w.text);
    const feed = await req(`${db}/_changes?style=all_docs&filter=_doc_ids&doc_ids=["tree"]`);
    // CouchDB (couch_doc:to_doc_info): sorted descending by {not deleted, {generation, id}}.
    assert.deepEqual(feed.body.results[0].changes.map((c: any) => c.rev), ['3-b', '2-f', '2-c', '2-a', '4-e', '3-d']);
    assert.equal((await req(`${db}/tree`)).body._rev, '3-b');
    const main = await req(`${db}/_changes?filter=_doc_ids&doc_ids=["tree"]`);
    assert.deepEqual(main.body.results[0].changes, [{ rev: '3-b' }]);
  });
});
