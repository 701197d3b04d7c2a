/**
 * The recent-winners cache (src/db/recent-winners.ts): what a commit keeps must be exactly what
 * storage gives back for that revision, on both backends (bodies, deletions, attachments as
 * stored), or feeds and pulls served from memory would differ from the same reads a moment later;
 * an entry is only served for the sequence it was committed at; and the bounds hold.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Database } from '../../src/db/database.ts';
import { changesSince } from '../../src/db/changes.ts';
import { RecentWinners } from '../../src/db/recent-winners.ts';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';
import { openPostgresStore } from '../../src/storage/postgres/index.ts';
import type { Store, StoredRevision } from '../../src/storage/store.ts';
import { SyncFunction } from '../../src/sync/index.ts';
import { DB_NAME, startPgCluster, type PgCluster } from '../helpers/postgres.ts';

const rev = (r: string, body = '{}'): StoredRevision => ({ rev: r, deleted: false, body, attachments: null });

describe('RecentWinners bounds', () => {
  it('serves an entry only for its sequence, id and revision', () => {
    const c = new RecentWinners();
    c.put(7, 'a', rev('1-x'));
    assert.equal(c.get(7, 'a', '1-x')?.rev, '1-x');
    assert.equal(c.get(8, 'a', '1-x'), undefined);
    assert.equal(c.get(7, 'b', '1-x'), undefined);
    assert.equal(c.get(7, 'a', '2-y'), undefined);
  });
  it('drops the oldest beyond its entry count and its byte budget', () => {
    const byCount = new RecentWinners(3, 1 << 20);
    for (let s = 1; s <= 5; s++) byCount.put(s, `d${s}`, rev('1-a'));
    assert.equal(byCount.size, 3);
    assert.equal(byCount.get(2, 'd2', '1-a'), undefined);
    assert.ok(byCount.get(5, 'd5', '1-a'));
    const big = 'x'.repeat(1000);
    const byBytes = new RecentWinners(100, 2500);
    for (let s = 1; s <= 4; s++) byBytes.put(s, `d${s}`, rev('1-a', `{"b":"${big}"}`));
    assert.equal(byBytes.size, 2);
    assert.ok(byBytes.get(4, 'd4', '1-a') && byBytes.get(3, 'd3', '1-a'));
    byBytes.put(5, 'huge', rev('1-a', `{"b":"${'y'.repeat(3000)}"}`)); // bigger than the whole budget: not kept, nothing evicted
    assert.equal(byBytes.size, 2);
  });
});

function suite(name: string, open: () => Promise<Store>): void {
  describe(`recent winners on ${name}`, () => {
    it('holds what storage holds for every kind of write, and feeds read the same from either', async () => {
      const store = await open();
      const db = new Database({ name: 'db', store, revsLimit: 100, allowConflicts: true });
      try {
        const att = { 'a.txt': { content_type: 'text/plain', data: Buffer.from('hello').toString('base64') } };
        await db.put({ id: 'plain', body: { n: 1, nested: { x: [1, 'two'] } }, newEdits: true });
        const withAtt = await db.put({ id: 'att', body: { _attachments: att }, newEdits: true });
        // An edit keeping the attachment as a stub: the stored revision carries it forward.
        await db.put({ id: 'att', body: { _rev: withAtt.rev, more: true, _attachments: { 'a.txt': { stub: true } } }, newEdits: true });
        const gone = await db.put({ id: 'gone', body: { v: 1 }, newEdits: true });
        await db.delete('gone', gone.rev);
        // A replicated branch that loses, then one that wins: only winners are kept.
        await db.put({ id: 'c', body: { _rev: '2-bbb', _revisions: { start: 2, ids: ['bbb', 'aaa'] }, side: 'b' }, newEdits: false });
        await db.put({ id: 'c', body: { _rev: '2-aaa', _revisions: { start: 2, ids: ['aaa', 'aaa'] }, side: 'a' }, newEdits: false });
        await db.put({ id: 'c', body: { _rev: '3-ccc', _revisions: { start: 3, ids: ['ccc', 'aaa', 'aaa'] }, side: 'a2' }, newEdits: false });

        let served = 0;
        for (const id of ['plain', 'att', 'gone', 'c']) {
          const doc = (await store.getDoc(id))!;
          const cached = db.recentWinners.get(doc.seq, id, doc.rev);
          assert.ok(cached, `${id}: its winner is kept`);
          served++;
          const stored = await store.getRevision(id, doc.rev);
          assert.deepEqual({ ...cached, channels: undefined }, { ...stored, channels: undefined }, `${id}: memory and storage agree`);
        }
        assert.equal(served, 4);
        assert.equal(db.recentWinners.get(0, 'c', '2-aaa'), undefined);

        // The same feed with include_docs from a database object that has not seen the writes.
        const cold = new Database({ name: 'db', store, revsLimit: 100, allowConflicts: true });
        const opts = { since: { seq: 0 }, includeDocs: true, conflicts: true, style: 'all_docs' as const };
        const warm = await changesSince(db, { channels: 'all' }, opts);
        const fresh = await changesSince(cold, { channels: 'all' }, opts);
        assert.equal(cold.recentWinners.size, 0);
        assert.deepEqual(warm.entries, fresh.entries);
        assert.deepEqual(warm.entries.map((e) => e.id).sort(), ['att', 'c', 'gone', 'plain']);
        const views = await db.getMany(['plain', 'att', 'c'].map((id) => ({ id, opts: { revs: true, attachments: true } })));
        const coldViews = await cold.getMany(['plain', 'att', 'c'].map((id) => ({ id, opts: { revs: true, attachments: true } })));
        assert.deepEqual(views, coldViews);
      } finally {
        await store.close();
      }
    });

    it('is one per database: named collections share it (one memory bound), each reading its own documents', async () => {
      const store = await open();
      const collections = [{ scope: 'inv', name: 'a', store: await store.collection('inv', 'a'), sync: new SyncFunction('function(doc){channel("x");}', 'db.inv.a') }];
      const db = new Database({ name: 'db', store, revsLimit: 100, allowConflicts: true, collections });
      try {
        const named = db.collection('inv', 'a')!;
        assert.equal(named.recentWinners, db.recentWinners);
        await named.put({ id: 'same', body: { in: 'a' }, newEdits: true });
        await db.put({ id: 'same', body: { in: 'default' }, newEdits: true });
        assert.equal(db.recentWinners.size, 2);
        const page = async (c: typeof named) => (await changesSince(c, { channels: 'all' }, { since: { seq: 0 }, includeDocs: true })).entries.map((e) => JSON.parse(e.doc!).in);
        assert.deepEqual(await page(named), ['a']);
        assert.deepEqual(await page(db), ['default']);
      } finally {
        await store.close();
      }
    });
  });
}

suite('SQLite', async () => new SqliteStore({ path: ':memory:' }));

const cluster: PgCluster = await startPgCluster();
after(() => cluster.stop());
let schemas = 0;
suite('PostgreSQL', () => openPostgresStore({
  spec: { host: '127.0.0.1', port: cluster.port, database: DB_NAME },
  certpath: cluster.certs.clientCert, keypath: cluster.certs.clientKey, cacertpath: cluster.certs.caCert,
  schema: `recent_winners_${++schemas}`, poolSize: 4,
}));
