/**
 * CouchDB's document read options PouchDB uses: `latest`, `conflicts`, `deleted_conflicts` and
 * `revs_info`, on GET /{db}/{doc}, open_revs, `_bulk_get`, `_all_docs` and `_changes`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const J = { accept: 'application/json' };

describe('document reads: CouchDB options', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.publicUrl}/db`;
    // c: 1-a → 2-b → 3-c (live, the winner); 1-a → 2-d → 3-e (deleted); 1-a → 2-f and 1-a → 2-g (live).
    const h = (ids: string[]) => ({ start: ids.length, ids: [...ids].reverse() });
    const docs = [
      { _id: 'c', _rev: '3-c', _revisions: h(['a', 'b', 'c']), v: 'c' },
      { _id: 'c', _rev: '3-e', _revisions: h(['a', 'd', 'e']), _deleted: true },
      { _id: 'c', _rev: '2-f', _revisions: h(['a', 'f']), v: 'f' },
      { _id: 'c', _rev: '2-g', _revisions: h(['a', 'g']), v: 'g' },
      { _id: 'plain', _rev: '1-p', v: 1 },
    ];
    const r = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs } });
    assert.ok(r.body.every((x: any) => !x.error), r.text);
  });
  after(() => gw.stop());

  test('conflicts=true adds the other live leaves, deleted_conflicts=true the deleted ones, in CouchDB order', async () => {
    const plainGet = await req(`${db}/c`);
    assert.equal(plainGet.body._rev, '3-c');
    assert.equal(plainGet.body._conflicts, undefined, 'only when asked');
    const c = await req(`${db}/c?conflicts=true`);
    assert.deepEqual(c.body._conflicts, ['2-g', '2-f'], 'newest and greatest first');
    assert.equal(c.body._deleted_conflicts, undefined);
    const both = await req(`${db}/c?conflicts=true&deleted_conflicts=true`);
    assert.deepEqual(both.body._deleted_conflicts, ['3-e']);
    assert.equal(both.body.v, 'c');
    assert.equal((await req(`${db}/plain?conflicts=true`)).body._conflicts, undefined, 'none: no field');
    const open = await req(`${db}/c?open_revs=all`, { headers: J });
    assert.deepEqual(open.body.map((r: any) => r.ok._rev).sort(), ['2-f', '2-g', '3-c', '3-e']);
  });

  test('latest=true reads the leaf a named revision led to; without it the old revision is gone', async () => {
    assert.equal((await req(`${db}/c?rev=2-b`)).status, 404);
    const b = await req(`${db}/c?rev=2-b&latest=true`);
    assert.equal(b.status, 200);
    assert.equal(b.body._rev, '3-c');
    assert.equal(b.headers.get('etag'), '"3-c"');
    const d = await req(`${db}/c?rev=2-d&latest=true`);
    assert.equal(d.body._rev, '3-e');
    assert.equal(d.body._deleted, true);
    // The root leads to every leaf: the one that wins among them.
    assert.equal((await req(`${db}/c?rev=1-a&latest=true`)).body._rev, '3-c');
    assert.equal((await req(`${db}/c?rev=2-f&latest=true`)).body._rev, '2-f', 'a leaf is its own latest');
    assert.equal((await req(`${db}/c?rev=9-zz&latest=true`)).status, 404);
    const open = await req(`${db}/c?open_revs=${encodeURIComponent('["2-b","2-d","3-c","7-x"]')}&latest=true`, { headers: J });
    assert.deepEqual(open.body.map((r: any) => r.ok?._rev ?? r.missing), ['3-c', '3-e', '7-x']);
    const rootOpen = await req(`${db}/c?open_revs=${encodeURIComponent('["1-a"]')}&latest=true`, { headers: J });
    assert.deepEqual(rootOpen.body.map((r: any) => r.ok._rev), ['3-c', '2-g', '2-f', '3-e']);
  });

  test('_bulk_get with latest=true, in JSON and multipart', async () => {
    const body = { docs: [{ id: 'c', rev: '2-b' }, { id: 'c', rev: '2-f' }, { id: 'plain', rev: '1-p' }] };
    const json = await req(`${db}/_bulk_get?latest=true&revs=true`, { method: 'POST', headers: J, json: body });
    assert.equal(json.status, 200);
    const revs = json.body.results.map((r: any) => r.docs[0].ok._rev);
    assert.deepEqual(revs, ['3-c', '2-f', '1-p']);
    assert.deepEqual(json.body.results[0].docs[0].ok._revisions, { start: 3, ids: ['c', 'b', 'a'] });
    const mp = await fetch(`${db}/_bulk_get?latest=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await mp.text();
    assert.match(text, /X-Rev-ID: 3-c/i);
    assert.doesNotMatch(text, /"error"/);
    const old = await req(`${db}/_bulk_get`, { method: 'POST', headers: J, json: { docs: [{ id: 'c', rev: '2-b' }] } });
    assert.equal(old.body.results[0].docs[0].error.error, 'not_found', 'without latest the old revision is missing');
  });

  test('revs_info=true lists the history with each revision\'s status', async () => {
    const c = await req(`${db}/c?revs_info=true`);
    assert.deepEqual(c.body._revs_info, [
      { rev: '3-c', status: 'available' }, { rev: '2-b', status: 'missing' }, { rev: '1-a', status: 'missing' },
    ]);
    const e = await req(`${db}/c?rev=3-e&revs_info=true`);
    assert.deepEqual(e.body._revs_info.map((x: any) => x.status), ['deleted', 'missing', 'missing']);
    const p1 = await req(`${db}/edited`, { method: 'PUT', json: { v: 1 } });
    const p2 = await req(`${db}/edited?rev=${p1.body.rev}`, { method: 'PUT', json: { v: 2 } });
    const p3 = await req(`${db}/edited?rev=${p2.body.rev}`, { method: 'PUT', json: { v: 3 } });
    const info = await req(`${db}/edited?revs_info=true`);
    assert.deepEqual(info.body._revs_info.map((x: any) => x.rev), [p3.body.rev, p2.body.rev, p1.body.rev]);
    assert.equal(info.body._revs_info[0].status, 'available');
  });

  test('_all_docs and _changes with include_docs=true&conflicts=true carry _conflicts', async () => {
    const all = await req(`${db}/_all_docs?include_docs=true&conflicts=true&keys=${encodeURIComponent('["c","plain"]')}`);
    assert.deepEqual(all.body.rows[0].doc._conflicts, ['2-g', '2-f']);
    assert.equal(all.body.rows[1].doc._conflicts, undefined);
    const noConflicts = await req(`${db}/_all_docs?include_docs=true&keys=${encodeURIComponent('["c"]')}`);
    assert.equal(noConflicts.body.rows[0].doc._conflicts, undefined);
    const ch = await req(`${db}/_changes?include_docs=true&conflicts=true&filter=_doc_ids&doc_ids=${encodeURIComponent('["c","plain"]')}`);
    const byId = new Map(ch.body.results.map((e: any) => [e.id, e]));
    assert.deepEqual((byId.get('c') as any).doc._conflicts, ['2-g', '2-f']);
    assert.deepEqual((byId.get('c') as any).changes, [{ rev: '3-c' }], 'main_only still lists the winner only');
    assert.equal((byId.get('plain') as any).doc._conflicts, undefined);
  });
});
