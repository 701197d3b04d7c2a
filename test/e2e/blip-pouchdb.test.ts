/**
 * One engine: what Couchbase Lite pushes over BLIP, PouchDB pulls over REST, and the other way
 * round — the same revision ids, histories, attachments, deletions and per-user channel access.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, PouchDB } from '../helpers/pouchdb.ts';
import { BlipClient, LocalDb } from '../helpers/blip-client.ts';

const USERS = {
  alice: { password: 'alice-pw', admin_channels: ['a', 'shared'] },
  bob: { password: 'bob-pw', admin_channels: ['b', 'shared'] },
};
const SYNC = `function(doc) { if (doc.type === 'secret') requireUser('alice'); channel(doc.channels); }`;

function remoteAs(url: string, username: string, password: string): any {
  return new PouchDB(url, { skip_setup: true, auth: { username, password } });
}

async function winners(db: any): Promise<Map<string, any>> {
  const res = await db.allDocs({ include_docs: true });
  return new Map(res.rows.map((r: any) => [r.id, r.doc]));
}

describe('BLIP and PouchDB share one engine', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:', users: USERS, sync: SYNC } } });
    url = `${gw.publicUrl}/db`;
  });
  after(() => gw.stop());

  test('pushed over BLIP, pulled by PouchDB: same revs, attachments, deletions and access', async () => {
    const src = new LocalDb();
    for (let i = 0; i < 200; i++) {
      src.put(`cbl-${i}`, { i, channels: i % 4 === 0 ? ['shared'] : ['a'] }, {
        attachments: i % 20 === 0 ? { 'a.bin': { data: randomBytes(1000 + i), content_type: 'application/octet-stream' } } : undefined,
      });
    }
    for (let i = 0; i < 200; i += 25) src.put(`cbl-${i}`, { i, v: 2, channels: i % 4 === 0 ? ['shared'] : ['a'] });
    const c = await BlipClient.connect(url, { user: 'alice', password: 'alice-pw' });
    const pushed = await c.push(src);
    assert.equal(pushed.errors.size, 0);
    // Deleted after the first push: a tombstone leaves its channels, and the feed says so.
    const since = src.lastSeq;
    for (let i = 1; i < 200; i += 50) src.delete(`cbl-${i}`);
    assert.equal((await c.push(src, { since })).sent, 4);
    await c.close();

    const pouch = localDb();
    const rep = await pouch.replicate.from(remoteAs(url, 'alice', 'alice-pw'));
    assert.equal(rep.ok, true);
    const got = await winners(pouch);
    assert.equal(got.size, src.liveIds().length);
    for (const id of src.liveIds()) {
      const doc = got.get(id);
      assert.equal(doc._rev, src.current(id), id);
      const hist = (await pouch.get(id, { revs: true }))._revisions;
      assert.deepEqual(src.history(id, src.current(id)!).map((r) => r.slice(r.indexOf('-') + 1)), hist.ids, id);
      const atts = src.get(id)!.body!._attachments as Record<string, { digest: string }> | undefined;
      if (atts) {
        const blob = await pouch.getAttachment(id, 'a.bin');
        assert.deepEqual(Buffer.from(blob), src.blobs.get(atts['a.bin'].digest), id);
      }
    }
    const deleted = await pouch.get('cbl-1', { revs: true, open_revs: 'all' });
    assert.equal(deleted[0].ok._deleted, true);
    assert.equal(deleted[0].ok._rev, src.current('cbl-1'));

    const bobPouch = localDb();
    await bobPouch.replicate.from(remoteAs(url, 'bob', 'bob-pw'));
    const bobGot = await winners(bobPouch);
    const expected = src.liveIds().filter((id) => Number(id.slice(4)) % 4 === 0);
    assert.deepEqual([...bobGot.keys()].sort(), expected.sort());
  });

  test('pushed by PouchDB, pulled over BLIP: same revs, histories, attachments and access', async () => {
    const pouch = localDb();
    const docs = Array.from({ length: 200 }, (_, i) => ({
      _id: `pouch-${i}`, i, channels: i % 5 === 0 ? ['shared'] : ['a'],
      ...(i % 40 === 0 ? { _attachments: { 'p.txt': { content_type: 'text/plain', data: Buffer.from(`attachment ${i}`).toString('base64') } } } : {}),
    }));
    await pouch.bulkDocs(docs);
    const first = await pouch.get('pouch-7');
    await pouch.put({ ...first, v: 2 });
    const rep = await pouch.replicate.to(remoteAs(url, 'alice', 'alice-pw'));
    assert.equal(rep.ok, true);
    assert.equal(rep.doc_write_failures, 0);
    await pouch.remove(await pouch.get('pouch-8'));
    assert.equal((await pouch.replicate.to(remoteAs(url, 'alice', 'alice-pw'))).docs_written, 1);

    const dst = new LocalDb();
    const c = await BlipClient.connect(url, { user: 'alice', password: 'alice-pw' });
    const state = await c.pull(dst, { channels: ['a', 'shared'] });
    assert.equal(state.errors.length, 0);
    const mine = await winners(pouch);
    for (const [id, doc] of mine) {
      if (!id.startsWith('pouch-')) continue;
      assert.equal(dst.current(id), doc._rev, id);
      assert.equal(dst.get(id)!.body!.i, doc.i);
    }
    const seven = await pouch.get('pouch-7', { revs: true });
    assert.deepEqual(dst.history('pouch-7', seven._rev), seven._revisions.ids.map((d: string, k: number) => `${seven._revisions.start - k}-${d}`));
    assert.equal(dst.get('pouch-8')!.deleted, true);
    const att = dst.get('pouch-40')!.body!._attachments as Record<string, { digest: string }>;
    assert.equal(dst.blobs.get(att['p.txt'].digest)!.toString(), 'attachment 40');
    await c.close();

    const bobDb = new LocalDb();
    const b = await BlipClient.connect(url, { user: 'bob', password: 'bob-pw' });
    await b.pull(bobDb);
    const bobPouchIds = [...bobDb.docs.keys()].filter((id) => id.startsWith('pouch-'));
    assert.deepEqual(bobPouchIds.sort(), [...mine.keys()].filter((id) => id.startsWith('pouch-') && Number(id.slice(6)) % 5 === 0).sort());
    await b.close();
  });

  test('the sync function refuses the same write over both protocols', async () => {
    const pouch = localDb();
    await pouch.put({ _id: 'secret-p', type: 'secret', channels: ['b'] });
    const rep = await pouch.replicate.to(remoteAs(url, 'bob', 'bob-pw'));
    assert.equal(rep.doc_write_failures, 1);
    const cbl = new LocalDb();
    cbl.put('secret-c', { type: 'secret', channels: ['b'] });
    const c = await BlipClient.connect(url, { user: 'bob', password: 'bob-pw' });
    assert.equal((await c.push(cbl)).errors.get('secret-c'), 403);
    await c.close();
  });
});
