/**
 * `_bulk_docs` as a replicator (PouchDB) uses it: many revisions of one document in one request,
 * `_revisions` that rule over `_rev`, and documents the sync function refuses among ones it takes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const SYNC = `function (doc, oldDoc) {
  if (doc.secret) throw({ forbidden: 'no secrets here' });
  channel(doc.channels);
}`;

describe('_bulk_docs for replicators', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:', sync: SYNC } } });
    db = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  const bulk = (docs: unknown[], newEdits = false) => req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: newEdits, docs } });
  const openRevs = async (id: string) => {
    const r = await req(`${db}/${id}?open_revs=all&revs=true`, { headers: { accept: 'application/json' } });
    return r.body.map((x: any) => x.ok._rev).sort();
  };

  test('60 revisions of one document (a chain and side branches) in one request are all written, in order', async () => {
    const docs: Record<string, unknown>[] = [];
    const ids: string[] = [];
    for (let g = 1; g <= 40; g++) {
      ids.unshift(`c${g}`);
      docs.push({ _id: 'many', _rev: `${g}-c${g}`, _revisions: { start: g, ids: [...ids] }, g });
    }
    // Twenty branches off generation 20, each a leaf of generation 21.
    for (let b = 0; b < 20; b++) {
      docs.push({ _id: 'many', _rev: `21-b${String(b).padStart(2, '0')}`, _revisions: { start: 21, ids: [`b${String(b).padStart(2, '0')}`, ...ids.slice(20)] }, b });
    }
    docs.push({ _id: 'other', _rev: '1-o', v: 1 });
    const r = await bulk(docs);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.length, 61);
    for (const row of r.body) assert.equal(row.error, undefined, JSON.stringify(row));
    assert.equal((await req(`${db}/many`)).body._rev, '40-c40');
    const leaves = await openRevs('many');
    assert.equal(leaves.length, 21);
    assert.ok(leaves.includes('40-c40') && leaves.includes('21-b07'));
    const hist = await req(`${db}/many?revs=true`);
    assert.equal(hist.body._revisions.ids.length, 40, 'the chain arrived whole, each revision on its parent');
    // The same request again changes nothing and fails nothing.
    const seq = (await req(`${gw.adminUrl}/db/`)).body.update_seq;
    const again = await bulk(docs);
    assert.ok(again.body.every((row: any) => row.error === undefined));
    assert.equal((await req(`${gw.adminUrl}/db/`)).body.update_seq, seq);
  });

  test('a refused revision among revisions of one document writes nothing of its own; the others land', async () => {
    const r = await bulk([
      { _id: 'mixed', _rev: '1-a', v: 1 },
      { _id: 'mixed', _rev: '2-b', _revisions: { start: 2, ids: ['b', 'a'] }, secret: true },
      { _id: 'mixed', _rev: '2-c', _revisions: { start: 2, ids: ['c', 'a'] }, v: 2 },
      { _id: 'mixed', _rev: '3-d', _revisions: { start: 3, ids: ['d', 'c', 'a'] }, v: 3 },
    ]);
    assert.equal(r.status, 201);
    assert.deepEqual(r.body[1], { id: 'mixed', error: 'forbidden', reason: 'no secrets here', status: 403 });
    assert.deepEqual([r.body[0].rev, r.body[2].rev, r.body[3].rev], ['1-a', '2-c', '3-d']);
    assert.deepEqual(await openRevs('mixed'), ['3-d']);
    assert.equal((await req(`${db}/mixed?rev=2-b`)).status, 404);
  });

  test('_revisions rules: a _rev that is not its head is ignored, as Sync Gateway and CouchDB do', async () => {
    const r = await bulk([{ _id: 'headless', _rev: '1-a', _revisions: { start: 2, ids: ['b', 'a'] }, v: 2 }]);
    assert.equal(r.status, 201);
    assert.deepEqual(r.body[0], { id: 'headless', ok: true, rev: '2-b' });
    const doc = await req(`${db}/headless?revs=true`);
    assert.equal(doc.body._rev, '2-b');
    assert.deepEqual(doc.body._revisions, { start: 2, ids: ['b', 'a'] });
    const put = await req(`${db}/headless2?new_edits=false`, { method: 'PUT', json: { _rev: '9-zz', _revisions: { start: 3, ids: ['c', 'b', 'a'] } } });
    assert.equal(put.status, 201);
    assert.equal(put.body.rev, '3-c');
  });

  test('a _local doc with _deleted is deleted; a wrong rev is a row error, the other rows written', async () => {
    const made = await req(`${db}/_local/cp`, { method: 'PUT', json: { seq: 1 } });
    assert.equal(made.body.rev, '0-1');
    await req(`${db}/_local/cp2`, { method: 'PUT', json: { seq: 1 } });
    const r = await bulk([
      { _id: '_local/cp', _rev: '0-1', _deleted: true },
      { _id: '_local/cp2', _rev: '0-7', _deleted: true },
      { _id: 'beside-local', v: 1 },
    ], true);
    assert.equal(r.status, 201);
    assert.deepEqual(r.body[0], { id: 'beside-local', ok: true, rev: r.body[0].rev });
    assert.deepEqual(r.body[1], { id: '_local/cp', ok: true, rev: '0-0' });
    assert.equal(r.body[2].status, 409);
    assert.equal((await req(`${db}/_local/cp`)).status, 404);
    assert.equal((await req(`${db}/_local/cp2`)).body.seq, 1);
  });

  test('_conflicts, _deleted_conflicts and _revs_info in a written body are ignored, as CouchDB does', async () => {
    const r = await bulk([{ _id: 'with-meta', _rev: '1-123', _conflicts: [], _deleted_conflicts: ['1-x'], _revs_info: [], v: 1 }]);
    assert.equal(r.body[0].ok, true, r.text);
    const doc = await req(`${db}/with-meta`);
    assert.deepEqual(doc.body, { _id: 'with-meta', _rev: '1-123', v: 1 });
    // A body read with conflicts=true can be written back as it is.
    const read = (await req(`${db}/mixed?conflicts=true&revs_info=true`)).body;
    const put = await req(`${db}/mixed`, { method: 'PUT', json: { ...read, v: 4 } });
    assert.equal(put.status, 201, put.text);
    assert.equal((await req(`${db}/plain-underscore`, { method: 'PUT', json: { _other: 1 } })).status, 400, 'other _ properties are still refused');
  });

  test('documents the sync function refuses get forbidden rows; every other document is written', async () => {
    const r = await bulk([
      { _id: 'ok1', _rev: '1-a', v: 1 },
      { _id: 'no1', _rev: '1-a', secret: 1 },
      { _id: 'ok2', _rev: '1-a', v: 2 },
      { _id: 'no2', _rev: '1-a', secret: 2 },
    ]);
    assert.equal(r.status, 201);
    assert.deepEqual(r.body.map((x: any) => x.error ?? 'ok'), ['ok', 'forbidden', 'ok', 'forbidden']);
    assert.deepEqual(r.body[3], { id: 'no2', error: 'forbidden', reason: 'no secrets here', status: 403 });
    assert.equal((await req(`${db}/ok2`)).status, 200);
    assert.equal((await req(`${db}/no1`)).status, 404);
    // The same with new edits.
    const n = await bulk([{ _id: 'ne1' }, { _id: 'ne2', secret: true }], true);
    assert.deepEqual(n.body.map((x: any) => x.error ?? x.ok), [true, 'forbidden']);
  });
});
