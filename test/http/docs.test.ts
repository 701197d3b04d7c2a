import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

/** Sync Gateway's rev id algorithm, written out independently of src/revid.ts. */
function expectedRev(parent: string, canonical: string): string {
  const gen = parent ? Number(parent.split('-')[0]) + 1 : 1;
  const md5 = createHash('md5').update(Buffer.from([parent.length])).update(parent).update(canonical).digest('hex');
  return `${gen}-${md5}`;
}

describe('documents over the public API', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway({
      databases: {
        db: { server: 'memory:' },
        strict: { server: 'memory:', allow_conflicts: false },
        short: { server: 'memory:', revs_limit: 20 },
      },
    });
    db = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('server and database info', async () => {
    const root = await req(`${gw.publicUrl}/`);
    assert.equal(root.status, 200);
    assert.equal(root.body.couchdb, 'Welcome');
    assert.equal(root.body.ADMIN, undefined);
    const adminRoot = await req(`${gw.adminUrl}/`);
    assert.equal(adminRoot.body.ADMIN, true);
    const info = await req(`${db}/`);
    assert.equal(info.status, 200);
    assert.equal(info.body.db_name, 'db');
    assert.equal(info.body.state, 'Online');
    const head = await fetch(`${db}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const missing = await req(`${gw.publicUrl}/nosuchdb/`);
    assert.equal(missing.status, 404);
    assert.deepEqual(missing.body, { error: 'not_found', reason: 'no such database "nosuchdb"' });
  });

  test('known revision ids for known edits, as Sync Gateway computes them', async () => {
    const r1 = await req(`${db}/known`, { method: 'PUT', json: { foo: 'bar' } });
    assert.equal(r1.status, 201);
    assert.equal(r1.body.rev, '1-cd809becc169215072fd567eebd8b8de');
    assert.equal(r1.headers.get('etag'), '"1-cd809becc169215072fd567eebd8b8de"');
    // Second generation: nested keys sorted, <>& escaped as Go does.
    const r2 = await req(`${db}/known?rev=${r1.body.rev}`, { method: 'PUT', json: { z: 1, a: { y: '<&>', b: [true, null] } } });
    assert.equal(r2.body.rev, expectedRev(r1.body.rev, '{"a":{"b":[true,null],"y":"\\u003c\\u0026\\u003e"},"z":1}'));
    // A deletion hashes {"_deleted":true}.
    const del = await req(`${db}/known?rev=${r2.body.rev}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(del.body.rev, expectedRev(r2.body.rev, '{"_deleted":true}'));
    // Number literals are kept verbatim, not normalized.
    const n = await req(`${db}/numbers`, { method: 'PUT', body: '{"a":1.0,"b":1e3}', headers: { 'content-type': 'application/json' } });
    assert.equal(n.body.rev, expectedRev('', '{"a":1.0,"b":1e3}'));
    const got = await req(`${db}/numbers`);
    assert.match(got.text, /"a":1\.0/);
  });

  test('get, update, conflicts, tombstones and resurrection', async () => {
    const c = await req(`${db}/doc1`, { method: 'PUT', json: { n: 1 } });
    assert.equal(c.status, 201);
    const exists = await req(`${db}/doc1`, { method: 'PUT', json: { n: 2 } });
    assert.equal(exists.status, 409);
    assert.deepEqual(exists.body, { error: 'conflict', reason: 'Document exists' });
    const u = await req(`${db}/doc1`, { method: 'PUT', json: { n: 2, _rev: c.body.rev } });
    assert.equal(u.status, 201);
    assert.match(u.body.rev, /^2-[0-9a-f]{32}$/);
    const stale = await req(`${db}/doc1`, { method: 'PUT', json: { n: 3, _rev: c.body.rev } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Document revision conflict');
    const get = await req(`${db}/doc1?revs=true`);
    assert.deepEqual(get.body, { _id: 'doc1', _rev: u.body.rev, n: 2, _revisions: { start: 2, ids: [u.body.rev.slice(2), c.body.rev.slice(2)] } });
    // If-Match carries the parent rev too.
    const im = await req(`${db}/doc1`, { method: 'DELETE', headers: { 'If-Match': `"${u.body.rev}"` } });
    assert.equal(im.status, 200);
    const gone = await req(`${db}/doc1`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.reason, 'deleted');
    const tomb = await req(`${db}/doc1?rev=${im.body.rev}`);
    assert.equal(tomb.status, 200);
    assert.equal(tomb.body._deleted, true);
    // PUT without a rev over a tombstone resurrects it, continuing the generation.
    const res = await req(`${db}/doc1`, { method: 'PUT', json: { back: true } });
    assert.equal(res.status, 201);
    assert.match(res.body.rev, /^4-/);
    // A replaced revision stays readable while its body is retained (old_rev_expiry_seconds).
    const old = await req(`${db}/doc1?rev=${c.body.rev}`);
    assert.equal(old.status, 200);
    assert.equal(old.body._rev, c.body.rev);
    assert.equal((await req(`${db}/doc1?rev=3-${'0'.repeat(32)}`)).body.reason, 'missing');
    assert.equal((await req(`${db}/never`)).body.reason, 'missing');
  });

  test('POST creates a document with a generated id', async () => {
    const p = await req(`${db}/`, { method: 'POST', json: { hello: 'world' } });
    assert.equal(p.status, 200);
    assert.match(p.body.id, /^[0-9a-f]{32}$/);
    assert.equal(p.headers.get('location'), p.body.id);
    const g = await req(`${db}/${p.body.id}`);
    assert.equal(g.body.hello, 'world');
  });

  test('replicated revisions: new_edits=false, conflicts and the winner rule', async () => {
    const put = (rev: string, revisions: { start: number; ids: string[] }, body: object = {}) =>
      req(`${db}/conf?new_edits=false`, { method: 'PUT', json: { ...body, _rev: rev, _revisions: revisions } });
    const a = await put('2-aaa', { start: 2, ids: ['aaa', 'root'] }, { side: 'a' });
    assert.equal(a.status, 201);
    assert.equal(a.body.rev, '2-aaa');
    const b = await put('2-bbb', { start: 2, ids: ['bbb', 'root'] }, { side: 'b' });
    assert.equal(b.status, 201);
    // Same revision again is a no-op success.
    assert.equal((await put('2-bbb', { start: 2, ids: ['bbb', 'root'] }, { side: 'b' })).status, 201);
    const win = await req(`${db}/conf`);
    assert.equal(win.body._rev, '2-bbb', 'higher digest wins among equal generations');
    const all = await req(`${db}/conf?open_revs=all`, { headers: { accept: 'application/json' } });
    assert.deepEqual(all.body.map((r: any) => r.ok._rev).sort(), ['2-aaa', '2-bbb']);
    // Deleting the winning branch hands the win to the other live leaf.
    const d = await req(`${db}/conf?rev=2-bbb`, { method: 'DELETE' });
    assert.equal(d.status, 200);
    assert.equal((await req(`${db}/conf`)).body._rev, '2-aaa');
    // A live leaf of lower generation beats a tombstone of higher generation.
    assert.match(d.body.rev, /^3-/);
    const bad = await req(`${db}/conf?new_edits=false`, { method: 'PUT', json: { x: 1 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.reason, 'Bad _revisions');
    const badRev = await req(`${db}/conf?new_edits=false`, { method: 'PUT', json: { _rev: 'nonsense' } });
    assert.equal(badRev.status, 400);
    assert.equal(badRev.body.reason, 'Invalid revision ID');
  });

  test('open_revs as multipart/mixed', async () => {
    await req(`${db}/mp?new_edits=false`, { method: 'PUT', json: { _rev: '1-x1', v: 1 } });
    const r = await fetch(`${db}/mp?open_revs=["1-x1","1-nope"]`, { headers: { accept: 'multipart/mixed' } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^multipart\/mixed; boundary=/);
    const text = await r.text();
    assert.match(text, /X-Rev-ID: 1-x1/i);
    assert.match(text, /"missing":"1-nope"/);
  });

  test('open_revs naming a malformed revision id is 400, as CouchDB (a well-formed unknown one is a missing row)', async () => {
    await req(`${db}/orv`, { method: 'PUT', json: { v: 1 } });
    for (const accept of ['application/json', 'multipart/mixed']) {
      const bad = await req(`${db}/orv?open_revs=${encodeURIComponent('["1-almost","2-correct","keys"]')}`, { headers: { accept } });
      assert.equal(bad.status, 400, bad.text);
      assert.equal(bad.body.reason, 'Invalid revision ID');
    }
    const ok = await req(`${db}/orv?open_revs=${encodeURIComponent('["1-almost","2-correct"]')}`, { headers: { accept: 'application/json' } });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, [{ missing: '1-almost' }, { missing: '2-correct' }]);
  });

  test('allow_conflicts:false refuses branches but allows deleting a losing leaf', async () => {
    const s = `${gw.publicUrl}/strict`;
    const one = await req(`${s}/d?new_edits=false`, { method: 'PUT', json: { _revisions: { start: 1, ids: ['a'] } } });
    assert.equal(one.status, 201);
    const two = await req(`${s}/d?new_edits=false`, { method: 'PUT', json: { _revisions: { start: 2, ids: ['b', 'a'] } } });
    assert.equal(two.status, 201);
    const branch = await req(`${s}/d?new_edits=false`, { method: 'PUT', json: { _revisions: { start: 2, ids: ['c', 'a'] } } });
    assert.equal(branch.status, 409);
    const stale = await req(`${s}/d?rev=1-a`, { method: 'PUT', json: { v: 1 } });
    assert.equal(stale.status, 409);
  });

  test('revs_limit prunes old revisions but keeps the leaves', async () => {
    const s = `${gw.publicUrl}/short`;
    let rev = '';
    for (let i = 0; i < 30; i++) {
      const r = await req(`${s}/long${rev ? `?rev=${rev}` : ''}`, { method: 'PUT', json: { i } });
      assert.equal(r.status, 201);
      rev = r.body.rev;
    }
    const g = await req(`${s}/long?revs=true`);
    assert.equal(g.body._revisions.start, 30);
    assert.equal(g.body._revisions.ids.length, 20);
  });

  test('bad input: clear errors, nothing written', async () => {
    const badJson = await req(`${db}/bad`, { method: 'PUT', body: '{"a":', headers: { 'content-type': 'application/json' } });
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.error, 'Bad Request');
    assert.match(badJson.body.reason, /^Bad JSON/);
    const ct = await req(`${db}/bad`, { method: 'PUT', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(ct.status, 415);
    const underscore = await req(`${db}/bad`, { method: 'PUT', json: { _secret: 1 } });
    assert.equal(underscore.status, 400);
    const arr = await req(`${db}/bad`, { method: 'PUT', json: [1, 2] });
    assert.equal(arr.status, 400);
    const empty = await req(`${db}/bad`, { method: 'PUT', body: '', headers: { 'content-type': 'application/json' } });
    assert.equal(empty.status, 400);
    const invalidRev = await req(`${db}/bad?rev=xyz`, { method: 'PUT', json: {} });
    assert.equal(invalidRev.status, 400);
    assert.equal((await req(`${db}/bad`)).status, 404, 'no rejected request wrote anything');
    const unknown = await req(`${db}/_nonsense`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.reason, 'unknown URL');
    const method = await req(`${db}/_bulk_docs`);
    assert.equal(method.status, 405);
    assert.match(method.headers.get('allow')!, /POST/);
    for (const r of [badJson, ct, unknown]) assert.doesNotMatch(r.text, /at .*\.ts:\d+/);
  });

  test('oversized bodies are refused with 413', async () => {
    const small = await startGateway({ maxBodyBytes: 1000 });
    try {
      const r = await req(`${small.publicUrl}/db/big`, { method: 'PUT', json: { pad: 'x'.repeat(5000) } });
      assert.equal(r.status, 413);
      assert.equal((await req(`${small.publicUrl}/db/big`)).status, 404);
    } finally {
      await small.stop();
    }
  });

  test('doc ids with slashes travel as %2F', async () => {
    const r = await req(`${db}/a%2Fb`, { method: 'PUT', json: { slash: true } });
    assert.equal(r.status, 201);
    assert.equal(r.body.id, 'a/b');
    assert.equal((await req(`${db}/a%2Fb`)).body.slash, true);
  });

  test('admin-only routes are not served on the public port', async () => {
    assert.equal((await req(`${gw.publicUrl}/_all_dbs`)).status, 404);
    const adminDbs = await req(`${gw.adminUrl}/_all_dbs`);
    assert.deepEqual(adminDbs.body, ['db', 'short', 'strict']);
    const pubCreate = await req(`${gw.publicUrl}/newdb/`, { method: 'PUT' });
    assert.equal(pubCreate.status, 403);
    const create = await req(`${gw.adminUrl}/newdb/`, { method: 'PUT', json: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] } } } });
    assert.equal(create.status, 201);
    // CouchDB's body (Sync Gateway sends none): PouchDB's http adapter parses it to create a database.
    assert.deepEqual(create.body, { ok: true });
    assert.equal((await req(`${gw.adminUrl}/newdb/`, { method: 'PUT', json: {} })).status, 412);
    assert.equal((await req(`${gw.publicUrl}/newdb/`)).status, 200);
    assert.equal((await req(`${gw.adminUrl}/newdb/`, { method: 'DELETE' })).status, 200);
    assert.equal((await req(`${gw.publicUrl}/newdb/`)).status, 404);
    assert.equal((await req(`${gw.publicUrl}/db/`, { method: 'DELETE' })).status, 405);
  });

  test('a body that is a number JSON cannot hold exactly (-0, 1e309, 1.0) is refused, never stored', async () => {
    const before = (await req(`${gw.adminUrl}/db/`)).body.update_seq;
    for (const text of ['-0', '1e309', '1.0', '12345678901234567890']) {
      const init = { headers: { 'content-type': 'application/json' }, body: text };
      for (const [method, url] of [['PUT', `${db}/num`], ['POST', `${db}/`], ['PUT', `${db}/_local/num`]] as const) {
        const r = await req(url, { ...init, method });
        assert.equal(r.status, 400, `${method} ${url} with ${text}: ${r.text}`);
        assert.equal(r.body.error, 'Bad Request');
      }
      const bulk = await req(`${db}/_bulk_docs`, { method: 'POST', headers: init.headers, body: `{"docs":[${text}]}` });
      assert.ok(bulk.status === 400 || (bulk.status === 201 && bulk.body[0].status === 400), `_bulk_docs with ${text}: ${bulk.text}`);
    }
    assert.equal((await req(`${db}/num`)).status, 404);
    assert.equal((await req(`${db}/_local/num`)).status, 404);
    assert.equal((await req(`${gw.adminUrl}/db/`)).body.update_seq, before);
  });
});

describe('replaced revision bodies are readable while retained (Sync Gateway serves its revision backups)', () => {
  let gw: TestGateway;
  const J = { headers: { accept: 'application/json' } };
  before(async () => {
    gw = await startGateway({
      databases: {
        db: { server: 'memory:' },
        none: { server: 'memory:', old_rev_expiry_seconds: 0 },
      },
    });
  });
  after(() => gw.stop());

  /** rev 1 with an attachment, rev 2 changing the body and dropping the attachment, rev 3 a tombstone. */
  async function history(db: string, id: string): Promise<string[]> {
    const data = Buffer.from('first attachment').toString('base64');
    const r1 = await req(`${db}/${id}`, { method: 'PUT', json: { v: 1, _attachments: { 'a.txt': { content_type: 'text/plain', data } } } });
    const r2 = await req(`${db}/${id}?rev=${r1.body.rev}`, { method: 'PUT', json: { v: 2 } });
    const r3 = await req(`${db}/${id}?rev=${r2.body.rev}`, { method: 'DELETE' });
    assert.equal(r3.status, 200, r3.text);
    return [r1.body.rev, r2.body.rev, r3.body.rev];
  }

  test('GET ?rev=, its attachment, revs=true, revs_info, open_revs and _bulk_get read an old revision', async () => {
    const db = `${gw.publicUrl}/db`;
    const [r1, r2, r3] = await history(db, 'old');
    assert.equal((await req(`${db}/old`)).status, 404, 'the document is deleted');
    const g1 = await req(`${db}/old?rev=${r1}&revs=true`);
    assert.equal(g1.status, 200, g1.text);
    assert.equal(g1.body.v, 1);
    assert.equal(g1.body._rev, r1);
    assert.deepEqual(g1.body._revisions, { start: 1, ids: [r1.slice(2)] });
    assert.equal(g1.body._attachments['a.txt'].stub, true);
    const att = await fetch(`${db}/old/a.txt?rev=${r1}`);
    assert.equal(att.status, 200);
    assert.equal(await att.text(), 'first attachment');
    const inline = await req(`${db}/old?rev=${r1}&attachments=true`, J);
    assert.equal(Buffer.from(inline.body._attachments['a.txt'].data, 'base64').toString(), 'first attachment');
    const g2 = await req(`${db}/old?rev=${r2}&revs=true&revs_info=true`);
    assert.equal(g2.body.v, 2);
    assert.equal(g2.body._attachments, undefined);
    assert.deepEqual(g2.body._revisions.ids, [r2.slice(2), r1.slice(2)]);
    assert.deepEqual(g2.body._revs_info, [{ rev: r2, status: 'available' }, { rev: r1, status: 'available' }]);
    const open = await req(`${db}/old?open_revs=${encodeURIComponent(JSON.stringify([r1, r2, r3]))}`, J);
    assert.deepEqual(open.body.map((r: any) => [r.ok._rev, r.ok.v, r.ok._deleted]), [[r1, 1, undefined], [r2, 2, undefined], [r3, undefined, true]]);
    const bulk = await req(`${db}/_bulk_get`, { method: 'POST', json: { docs: [{ id: 'old', rev: r1 }, { id: 'old', rev: r2 }] }, ...J });
    assert.deepEqual(bulk.body.results.map((r: any) => r.docs[0].ok.v), [1, 2]);
    // An old revision cannot be edited: it is not a leaf.
    assert.equal((await req(`${db}/old?rev=${r1}`, { method: 'PUT', json: { v: 'branch' } })).status, 409);
    // Once retention runs out (the sweep, an hour on), they are gone: 404 missing, as before.
    await gw.gateway.get('db')!.sweepExpired(Math.floor(Date.now() / 1000) + 3600);
    const gone = await req(`${db}/old?rev=${r1}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.reason, 'missing');
    assert.deepEqual((await req(`${db}/old?open_revs=${encodeURIComponent(JSON.stringify([r2]))}`, J)).body, [{ missing: r2 }]);
    const bulkGone = await req(`${db}/_bulk_get`, { method: 'POST', json: { docs: [{ id: 'old', rev: r2 }] }, ...J });
    assert.equal(bulkGone.body.results[0].docs[0].error.error, 'not_found', bulkGone.text);
  });

  test('with old_rev_expiry_seconds: 0 nothing is kept: GET ?rev=<old> is 404 missing', async () => {
    const db = `${gw.publicUrl}/none`;
    const [r1, r2] = await history(db, 'old');
    assert.equal((await req(`${db}/old?rev=${r1}`)).status, 404);
    assert.equal((await req(`${db}/old?rev=${r2}`)).status, 404);
    const info = await req(`${db}/old?rev=${r2}&revs_info=true&open_revs=${encodeURIComponent(JSON.stringify([r2]))}`, J);
    assert.deepEqual(info.body, [{ missing: r2 }]);
  });
});
