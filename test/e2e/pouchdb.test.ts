import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, PouchDB, remoteDb } from '../helpers/pouchdb.ts';

/** Every live doc of a PouchDB, winners only, without revision noise. */
async function contents(db: any): Promise<Map<string, any>> {
  const res = await db.allDocs({ include_docs: true });
  return new Map(res.rows.map((r: any) => [r.id, r.doc]));
}

describe('PouchDB replicates with Syncgate', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway();
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('push 1,000 docs, pull them into a fresh replica, identical', async () => {
    const source = localDb();
    const docs = Array.from({ length: 1000 }, (_, i) => ({ _id: `doc-${String(i).padStart(4, '0')}`, i, text: `value ${i}`, nested: { a: [i, i * 2] } }));
    await source.bulkDocs(docs);
    const push = await source.replicate.to(remoteDb(url));
    assert.equal(push.ok, true);
    assert.equal(push.docs_written, 1000);
    const info = await req(`${url}/_all_docs?limit=0`);
    assert.equal(info.status, 200);
    const target = localDb();
    const pull = await target.replicate.from(remoteDb(url));
    assert.equal(pull.ok, true);
    assert.equal(pull.docs_written, 1000);
    const [a, b] = [await contents(source), await contents(target)];
    assert.equal(b.size, 1000);
    for (const [id, doc] of a) assert.deepEqual(b.get(id), doc, id);
  });

  test('deletions replicate both ways', async () => {
    const a = localDb();
    const b = localDb();
    const remote = remoteDb(url);
    const put = await a.put({ _id: 'del-1', v: 1 });
    await a.put({ _id: 'del-2', v: 2 });
    await a.replicate.to(remote);
    await b.replicate.from(remote);
    await a.remove('del-1', put.rev);
    await a.replicate.to(remote);
    assert.equal((await req(`${url}/del-1`)).body.reason, 'deleted');
    await b.replicate.from(remote);
    await assert.rejects(b.get('del-1'), (e: any) => e.status === 404);
    // And from the other side: b deletes, a learns it.
    const d2 = await b.get('del-2');
    await b.remove(d2);
    await b.replicate.to(remote);
    await a.replicate.from(remote);
    await assert.rejects(a.get('del-2'), (e: any) => e.status === 404);
  });

  test('binary attachments replicate byte for byte, both ways', async () => {
    const a = localDb();
    const remote = remoteDb(url);
    const bytes = randomBytes(50_000);
    const small = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
    await a.put({
      _id: 'att-doc',
      _attachments: {
        'big.bin': { content_type: 'application/octet-stream', data: bytes },
        'small.bin': { content_type: 'application/octet-stream', data: small },
      },
    });
    await a.replicate.to(remote);
    const direct = await fetch(`${url}/att-doc/big.bin`);
    assert.equal(direct.status, 200);
    assert.ok(Buffer.from(await direct.arrayBuffer()).equals(bytes), 'served bytes equal the pushed bytes');
    const b = localDb();
    await b.replicate.from(remote);
    const got = await b.getAttachment('att-doc', 'big.bin');
    assert.ok(Buffer.from(got).equals(bytes));
    assert.ok(Buffer.from(await b.getAttachment('att-doc', 'small.bin')).equals(small));
    // b adds an attachment; a pulls it back.
    const doc = await b.get('att-doc');
    const extra = randomBytes(3000);
    await b.putAttachment('att-doc', 'extra.bin', doc._rev, extra, 'application/octet-stream');
    await b.replicate.to(remote);
    await a.replicate.from(remote);
    assert.ok(Buffer.from(await a.getAttachment('att-doc', 'extra.bin')).equals(extra));
    assert.ok(Buffer.from(await a.getAttachment('att-doc', 'big.bin')).equals(bytes));
  });

  test('a pull does not download an attachment the replica already has (md5 digests over REST)', async () => {
    const gets: string[] = [];
    // The real fetch underneath; only the attachment GETs (/{db}/{doc}/{att}) are noted.
    const counting = () => new PouchDB(url, {
      skip_setup: true,
      fetch: (u: string, o: any) => {
        const parts = new URL(u).pathname.split('/').filter(Boolean);
        if ((o?.method ?? 'GET') === 'GET' && parts.length === 3 && !parts[1].startsWith('_')) gets.push(u);
        return (PouchDB as any).fetch(u, o);
      },
    });
    const writer = localDb();
    const bytes = (i: number) => Buffer.from(`attachment of keep-${i} `.repeat(20));
    await writer.bulkDocs(Array.from({ length: 20 }, (_, i) => ({ _id: `keep-${i}`, v: 1, _attachments: { 'k.bin': { content_type: 'application/octet-stream', data: bytes(i) } } })));
    await writer.replicate.to(remoteDb(url));
    const reader = localDb();
    assert.equal((await reader.replicate.from(counting(), { doc_ids: Array.from({ length: 20 }, (_, i) => `keep-${i}`) })).docs_written, 20);
    assert.equal(gets.length, 20, 'the first pull fetches each attachment once');
    gets.length = 0;
    const all = await writer.allDocs({ include_docs: true, keys: Array.from({ length: 20 }, (_, i) => `keep-${i}`) });
    await writer.bulkDocs(all.rows.map((r: any) => ({ ...r.doc, v: 2 })));
    await writer.replicate.to(remoteDb(url));
    assert.equal((await reader.replicate.from(counting(), { doc_ids: Array.from({ length: 20 }, (_, i) => `keep-${i}`) })).docs_written, 20);
    assert.deepEqual(gets, [], 'bodies changed, attachments did not: nothing downloaded again');
    for (let i = 0; i < 20; i++) assert.ok(Buffer.from(await reader.getAttachment(`keep-${i}`, 'k.bin')).equals(bytes(i)));
  });

  test('changes and allDocs with include_docs, attachments and binary decode the inline bytes', async () => {
    const data = randomBytes(3000);
    const r = await req(`${url}/inline-att`, { method: 'PUT', json: { v: 1, _attachments: { 'i.bin': { content_type: 'application/octet-stream', data: data.toString('base64') } } } });
    assert.equal(r.status, 201);
    const remote = remoteDb(url);
    const changes = await remote.changes({ include_docs: true, attachments: true, binary: true, doc_ids: ['inline-att'] });
    const fromChanges = changes.results.find((x: any) => x.id === 'inline-att').doc._attachments['i.bin'];
    assert.ok(Buffer.from(fromChanges.data).equals(data));
    assert.equal(fromChanges.content_type, 'application/octet-stream');
    const all = await remote.allDocs({ include_docs: true, attachments: true, binary: true, keys: ['inline-att'] });
    assert.ok(Buffer.from(all.rows[0].doc._attachments['i.bin'].data).equals(data));
    const got = await remote.get('inline-att', { attachments: true, binary: true });
    assert.ok(Buffer.from(got._attachments['i.bin'].data).equals(data));
  });

  test('conflicts: both sides agree on the winner and keep the loser', async () => {
    const a = localDb();
    const b = localDb();
    const remote = remoteDb(url);
    await a.put({ _id: 'conflicted', v: 'base' });
    await a.replicate.to(remote);
    await b.replicate.from(remote);
    const da = await a.get('conflicted');
    const db = await b.get('conflicted');
    await a.put({ ...da, v: 'from a' });
    await b.put({ ...db, v: 'from b', more: true });
    await a.replicate.to(remote);
    await b.replicate.to(remote);
    await a.replicate.from(remote);
    await b.replicate.from(remote);
    const wa = await a.get('conflicted', { conflicts: true });
    const wb = await b.get('conflicted', { conflicts: true });
    const server = await req(`${url}/conflicted`);
    assert.equal(wa._rev, wb._rev);
    assert.equal(server.body._rev, wa._rev);
    assert.equal(wa._conflicts.length, 1);
    assert.deepEqual(wa._conflicts, wb._conflicts);
    const open = await req(`${url}/conflicted?open_revs=all`, { headers: { accept: 'application/json' } });
    assert.equal(open.body.length, 2);
  });

  test('a live pull delivers a server-side write', async () => {
    const local = localDb();
    const rep = local.replicate.from(remoteDb(url), { live: true, retry: false });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      assert.equal((await req(`${url}/live-doc`, { method: 'PUT', json: { hello: 'live' } })).status, 201);
      for (;;) {
        try {
          const d = await local.get('live-doc');
          assert.equal(d.hello, 'live');
          break;
        } catch {
          if (Date.now() - started > 60_000) assert.fail('live pull did not deliver the write (waited 60 s)');
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    } finally {
      rep.cancel();
    }
  });

  test('a second replication transfers only what is new', async () => {
    const a = localDb();
    const remote = remoteDb(url);
    await a.bulkDocs(Array.from({ length: 50 }, (_, i) => ({ _id: `inc-${i}`, i })));
    const first = await a.replicate.to(remote);
    assert.equal(first.docs_written, 50);
    await a.bulkDocs(Array.from({ length: 10 }, (_, i) => ({ _id: `inc-new-${i}`, i })));
    const second = await a.replicate.to(remote);
    assert.equal(second.docs_read, 10);
    assert.equal(second.docs_written, 10);
    const b = localDb();
    await b.replicate.from(remote);
    await b.put({ _id: 'only-local' });
    await req(`${url}/_bulk_docs`, { method: 'POST', json: { docs: Array.from({ length: 10 }, (_, i) => ({ _id: `srv-${i}` })) } });
    const pull = await b.replicate.from(remote);
    assert.equal(pull.docs_read, 10);
  });
});
