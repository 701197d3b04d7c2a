/**
 * PouchDB behaviours that depend on CouchDB details Sync Gateway leaves out (issue 20): an
 * unmodified PouchDB client against a real gateway, one behaviour per test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, PouchDB, remoteDb } from '../helpers/pouchdb.ts';

describe('PouchDB against Syncgate: CouchDB details', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway();
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('the http adapter creates a database (PUT /{db}/ answers {"ok":true})', async () => {
    // Without skip_setup PouchDB GETs the database and, on 404, PUTs it and parses the answer.
    const remote = new PouchDB(`${gw.adminUrl}/made_by_pouch`);
    const info = await remote.info();
    assert.equal(info.db_name, 'made_by_pouch');
    const put = await remote.put({ _id: 'x', channels: ['*'] });
    assert.equal(put.ok, true);
    assert.equal((await req(`${gw.adminUrl}/made_by_pouch/x`)).status, 200);
  });

  test('info() reports doc_count and doc_del_count', async () => {
    const remote = remoteDb(`${gw.adminUrl}/counted`);
    await req(`${gw.adminUrl}/counted/`, { method: 'PUT', json: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] } } } });
    const local = localDb();
    const put = await local.bulkDocs([{ _id: 'a' }, { _id: 'b' }, { _id: 'c' }]);
    await local.remove('b', put[1].rev);
    await local.replicate.to(remote);
    const info = await remote.info();
    assert.equal(info.doc_count, 2);
    assert.equal(info.doc_del_count, 1);
  });

  test('a live pull with doc_ids delivers later writes of the listed documents only', async () => {
    const local = localDb();
    await req(`${url}/_bulk_docs`, { method: 'POST', json: { docs: [{ _id: 'ids-1', v: 0 }, { _id: 'ids-other', v: 0 }] } });
    const rep = local.replicate.from(remoteDb(url), { live: true, retry: false, doc_ids: ['ids-1', 'ids-2'] });
    const failed = new Promise((_, reject) => rep.on('error', reject));
    const seen = async (id: string, v: number) => {
      for (let i = 0; i < 400; i++) {
        const d = await local.get(id).catch(() => undefined);
        if (d?.v === v) return;
        await Promise.race([new Promise((r) => setTimeout(r, 25)), failed]);
      }
      assert.fail(`${id} v${v} never arrived`);
    };
    try {
      await seen('ids-1', 0);
      // Written after the replication caught up: they reach it over the live (longpoll) feed.
      await req(`${url}/ids-other?rev=${(await req(`${url}/ids-other`)).body._rev}`, { method: 'PUT', json: { v: 1 } });
      await req(`${url}/ids-2`, { method: 'PUT', json: { v: 1 } });
      await seen('ids-2', 1);
      const all = await local.allDocs();
      assert.deepEqual(all.rows.map((r: any) => r.id), ['ids-1', 'ids-2']);
    } finally {
      rep.cancel();
    }
  });

  test('a pull whose revisions are superseded between _changes and _bulk_get gets the latest (latest=true)', async () => {
    const first = await req(`${url}/racing`, { method: 'PUT', json: { v: 1 } });
    let raced = false;
    // A real client and server; only the interleaving is arranged: the server-side edit lands
    // just before the replicator's _bulk_get for a revision it read from _changes.
    const remote = new PouchDB(url, {
      skip_setup: true,
      fetch: async (u: string, opts: any) => {
        if (!raced && String(u).includes('/_bulk_get')) {
          raced = true;
          const r = await req(`${url}/racing?rev=${first.body.rev}`, { method: 'PUT', json: { v: 2 } });
          assert.equal(r.status, 201);
        }
        return PouchDB.fetch(u, opts);
      },
    });
    const local = localDb();
    const res = await local.replicate.from(remote, { doc_ids: ['racing'] });
    assert.equal(raced, true);
    assert.equal(res.ok, true);
    assert.equal(res.doc_write_failures, 0);
    const doc = await local.get('racing');
    assert.equal(doc.v, 2, 'the replicator stored the branch\'s current leaf');
    assert.equal(doc._rev, (await req(`${url}/racing`)).body._rev);
  });

  test('get with conflicts: true reads _conflicts in CouchDB order', async () => {
    await req(`${url}/_bulk_docs`, {
      method: 'POST',
      json: { new_edits: false, docs: ['1-a', '1-c', '1-b'].map((rev) => ({ _id: 'tri', _rev: rev, rev })) },
    });
    const doc = await remoteDb(url).get('tri', { conflicts: true });
    assert.equal(doc._rev, '1-c');
    assert.deepEqual(doc._conflicts, ['1-b', '1-a']);
  });
});

describe('PouchDB against Syncgate: a push the sync function partly refuses', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway({
      databases: { db: { server: 'memory:', sync: `function (doc) { if (doc.foo) throw({ forbidden: 'go away, no picture' }); channel('all'); }` } },
    });
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('denied documents are reported as denied events; the others are written and the push completes', async () => {
    const local = localDb();
    await local.bulkDocs([{ _id: 'foo1', foo: 'string' }, { _id: 'nofoo' }, { _id: 'foo2', foo: 'object' }, { _id: 'nofoo2' }]);
    const denied: any[] = [];
    const rep = local.replicate.to(remoteDb(url));
    rep.on('denied', (e: any) => denied.push(e));
    const res = await rep;
    assert.equal(res.ok, true);
    assert.equal(res.docs_written, 2);
    assert.equal(res.doc_write_failures, 2);
    assert.deepEqual(denied.map((e) => [e.id, e.name, e.status]).sort(), [['foo1', 'forbidden', 403], ['foo2', 'forbidden', 403]]);
    assert.equal((await req(`${url}/nofoo2`)).status, 200);
    assert.equal((await req(`${url}/foo1`)).status, 404);
    // The push went on: a later write replicates.
    await local.put({ _id: 'later' });
    const again = await local.replicate.to(remoteDb(url));
    assert.equal(again.docs_written, 1);
  });
  test('attachments: true returns CouchDB\'s inline shape (no length); a stub the parent lacks is 412', async () => {
    const remote = remoteDb(url);
    const data = Buffer.from('inline me').toString('base64');
    const put = await remote.put({ _id: 'inl', channels: ['*'], _attachments: { 'a.txt': { content_type: 'text/plain', data } } });
    const doc = await remote.get('inl', { attachments: true });
    const att = doc._attachments!['a.txt'] as any;
    assert.equal(att.data, data);
    assert.equal(att.length, undefined);
    assert.deepEqual(Object.keys(att).sort(), ['content_type', 'data', 'digest', 'revpos']);
    const all = await remote.allDocs({ include_docs: true, attachments: true, keys: ['inl'] });
    assert.equal((all.rows[0] as any).doc._attachments['a.txt'].length, undefined);
    const err = await remote.put({ _id: 'inl', _rev: put.rev, _attachments: { 'a.txt': { stub: true }, 'bar.txt': { stub: true, digest: 'md5-sorryIDoNotReallyExist==' } } } as any).then(() => undefined, (e: any) => e);
    assert.equal(err?.status, 412);
  });

  test('get with an older rev reads the replaced revision while its body is retained', async () => {
    const remote = remoteDb(url);
    const r1 = await remote.put({ _id: 'oldrev', channels: ['*'], v: 1 });
    const r2 = await remote.put({ _id: 'oldrev', _rev: r1.rev, channels: ['*'], v: 2 });
    const old = await remote.get('oldrev', { rev: r1.rev, revs: true }) as any;
    assert.equal(old.v, 1);
    assert.deepEqual(old._revisions, { start: 1, ids: [r1.rev.slice(2)] });
    assert.equal((await remote.get('oldrev') as any)._rev, r2.rev);
  });
});
