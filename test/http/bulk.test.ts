import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('bulk endpoints and local docs', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.publicUrl}/db`;
    const docs = Array.from({ length: 10 }, (_, i) => ({ _id: `doc${String(i).padStart(2, '0')}`, i }));
    const r = await req(`${db}/_bulk_docs`, { method: 'POST', json: { docs } });
    assert.equal(r.status, 201);
  });
  after(() => gw.stop());

  test('_bulk_docs: per-row results, new_edits=false, local docs last', async () => {
    const r = await req(`${db}/_bulk_docs`, {
      method: 'POST',
      json: {
        docs: [
          { _id: '_local/ck', v: 1 },
          { _id: 'b1', v: 1 },
          { _id: 'doc00', v: 2 }, // exists, no rev: conflict row
          { _id: '_bad', v: 1 },
          { v: 'no id gets one' },
        ],
      },
    });
    assert.equal(r.status, 201);
    assert.equal(r.body.length, 5);
    assert.equal(r.body[0].id, 'b1');
    assert.equal(r.body[0].ok, true, 'CouchDB marks every written row ok: PouchDB reads it');
    assert.match(r.body[0].rev, /^1-/);
    assert.deepEqual(r.body[1], { id: 'doc00', error: 'conflict', reason: 'Document exists', status: 409 });
    assert.equal(r.body[2].status, 400);
    assert.match(r.body[3].id, /^[0-9a-f]{32}$/);
    assert.deepEqual(r.body[4], { id: '_local/ck', ok: true, rev: '0-1' });
    const rep = await req(`${db}/_bulk_docs`, {
      method: 'POST',
      json: { new_edits: false, docs: [{ _id: 'r1', _rev: '3-c', _revisions: { start: 3, ids: ['c', 'b', 'a'] }, v: 3 }, { _id: 'r2', v: 1 }] },
    });
    assert.deepEqual(rep.body[0], { id: 'r1', ok: true, rev: '3-c' });
    assert.equal(rep.body[1].status, 400);
    const missing = await req(`${db}/_bulk_docs`, { method: 'POST', json: { nodocs: [] } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.reason, "missing 'docs' property");
  });

  test('_all_docs with keys, include_docs, startkey/endkey and limit', async () => {
    const all = await req(`${db}/_all_docs?startkey="doc02"&endkey="doc05"`);
    assert.deepEqual(all.body.rows.map((r: any) => r.id), ['doc02', 'doc03', 'doc04', 'doc05']);
    // CouchDB's total_rows (every live document) for a reader who sees the whole database.
    assert.equal(all.body.total_rows, (await req(`${db}/`)).body.doc_count);
    assert.equal(all.body.update_seq, undefined, 'CouchDB sends the database\'s update_seq only when asked');
    const withSeq = await req(`${db}/_all_docs?update_seq=true&limit=1`);
    assert.equal(withSeq.body.update_seq, (await req(`${db}/`)).body.update_seq);
    assert.equal(typeof withSeq.body.rows[0].update_seq, 'number', 'and each row\'s (Sync Gateway)');
    const lim = await req(`${db}/_all_docs?limit=2&include_docs=true`);
    assert.equal(lim.body.rows.length, 2);
    assert.equal(lim.body.rows[0].doc._id, lim.body.rows[0].id);
    const keys = await req(`${db}/_all_docs`, { method: 'POST', json: { keys: ['doc07', 'nope'] } });
    assert.equal(keys.body.rows[0].value.rev.slice(0, 2), '1-');
    assert.deepEqual(keys.body.rows[1], { key: 'nope', error: 'not_found', status: 404 });
    const getKeys = await req(`${db}/_all_docs?keys=${encodeURIComponent('["doc01"]')}`);
    assert.equal(getKeys.body.rows[0].id, 'doc01');
    const bad = await req(`${db}/_all_docs`, { method: 'POST', json: {} });
    assert.equal(bad.status, 400);
  });

  test('_revs_diff reports only what is missing', async () => {
    const cur = (await req(`${db}/doc03`)).body._rev;
    const r = await req(`${db}/_revs_diff`, { method: 'POST', json: { doc03: [cur, '2-zzz'], newdoc: ['1-a'] } });
    assert.deepEqual(r.body.doc03.missing, ['2-zzz']);
    assert.deepEqual(r.body.doc03.possible_ancestors, [cur]);
    assert.deepEqual(r.body.newdoc, { missing: ['1-a'] });
    const none = await req(`${db}/_revs_diff`, { method: 'POST', json: { doc03: [cur] } });
    assert.deepEqual(none.body, {});
  });

  test('_bulk_get: JSON for JSON clients, multipart/mixed otherwise', async () => {
    const rev = (await req(`${db}/doc04`)).body._rev;
    const json = await req(`${db}/_bulk_get?revs=true`, {
      method: 'POST', headers: { accept: 'application/json' },
      json: { docs: [{ id: 'doc04', rev }, { id: 'doc05' }, { id: 'ghost', rev: '1-x' }] },
    });
    assert.equal(json.status, 200);
    assert.equal(json.body.results.length, 3);
    assert.equal(json.body.results[0].docs[0].ok._rev, rev);
    assert.equal(json.body.results[0].docs[0].ok._revisions.start, 1);
    assert.equal(json.body.results[1].docs[0].ok._id, 'doc05');
    assert.equal(json.body.results[2].docs[0].error.error, 'not_found');
    const mp = await fetch(`${db}/_bulk_get`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ docs: [{ id: 'doc04', rev }, { id: 'ghost' }] }),
    });
    assert.match(mp.headers.get('content-type')!, /^multipart\/mixed/);
    const text = await mp.text();
    assert.match(text, new RegExp(`X-Rev-ID: ${rev}`, 'i'));
    assert.match(text, /Content-Type: application\/json; error="true"/i);
  });

  test('_local docs: 0-N revisions, conflicts, delete', async () => {
    const p1 = await req(`${db}/_local/check`, { method: 'PUT', json: { seq: 1 } });
    assert.deepEqual(p1.body, { id: '_local/check', ok: true, rev: '0-1' });
    const conflict = await req(`${db}/_local/check`, { method: 'PUT', json: { seq: 2 } });
    assert.equal(conflict.status, 409);
    const p2 = await req(`${db}/_local/check`, { method: 'PUT', json: { seq: 2, _rev: '0-1' } });
    assert.equal(p2.body.rev, '0-2');
    const g = await req(`${db}/_local/check`);
    assert.deepEqual(g.body, { _id: '_local/check', _rev: '0-2', seq: 2 });
    const noPrev = await req(`${db}/_local/none`, { method: 'PUT', json: { _rev: '0-3' } });
    assert.equal(noPrev.status, 404);
    assert.equal((await req(`${db}/_local/check?rev=0-1`, { method: 'DELETE' })).status, 409);
    assert.equal((await req(`${db}/_local/check?rev=0-2`, { method: 'DELETE' })).status, 200);
    assert.equal((await req(`${db}/_local/check`)).status, 404);
    // Local docs never show up in the feed or _all_docs.
    const feed = await req(`${db}/_changes`);
    assert.ok(feed.body.results.every((e: any) => !e.id.startsWith('_local')));
  });
});
