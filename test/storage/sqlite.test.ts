/**
 * The SQLite backend: the shared Store contract (file-backed and in memory), then what only a file
 * can show: reopening, crash survival, schema versions.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';
import { SCHEMA_VERSION } from '../../src/storage/sqlite/schema.ts';
import type { EncodedRevTree } from '../../src/revtree/index.ts';
import type { Store } from '../../src/storage/store.ts';
import { digestOf, docWrite, md5Of, storeContract } from './contract.ts';
import { collectionsContract } from './collections.ts';
import { writeSchema4File } from '../fixtures/sqlite-schema4.ts';

const dir = mkdtempSync(join(tmpdir(), 'syncgate-sqlite-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const freshPath = (): string => join(dir, `db-${++n}`, 'test.sqlite');
const paths = new WeakMap<Store, string>();

storeContract('SqliteStore (file)', () => {
  const path = freshPath();
  const store = new SqliteStore({ path });
  paths.set(store, path);
  return store;
}, async (store) => {
  await store.close();
  const path = paths.get(store);
  if (path) rmSync(join(path, '..'), { recursive: true, force: true });
});

storeContract('SqliteStore (:memory:)', () => new SqliteStore({ path: ':memory:' }));

storeContract('SqliteStore (file, synchronous=normal)', () => new SqliteStore({ path: freshPath(), synchronous: 'normal' }));

// The same contract for a named collection's store: its own tables, the file's shared sequence.
storeContract('SqliteStore (file)', () => new SqliteStore({ path: freshPath() }), undefined, { collection: ['inventory', 'airline'] });
storeContract('SqliteStore (:memory:)', () => new SqliteStore({ path: ':memory:' }), undefined, { collection: ['_default', 'notes'] });

collectionsContract('SqliteStore (file)', () => {
  const path = freshPath();
  const store = new SqliteStore({ path });
  paths.set(store, path);
  return store;
}, undefined, async (store) => {
  await store.close();
  const again = new SqliteStore({ path: paths.get(store)! });
  paths.set(again, paths.get(store)!);
  return again;
});
collectionsContract('SqliteStore (:memory:)', () => new SqliteStore({ path: ':memory:' }));

/** Open, run, always close. */
async function using<T>(path: string, fn: (s: SqliteStore) => Promise<T>): Promise<T> {
  const s = new SqliteStore({ path });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** File descriptors of this process that point at `path` (Linux only; [] elsewhere). */
function openFds(path: string): string[] {
  if (!existsSync('/proc/self/fd')) return [];
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(path)) out.push(fd);
    } catch { /* closed meanwhile */ }
  }
  return out;
}

describe('SqliteStore: the file', () => {
  it('reopening the same file sees every committed write, and the sequence continues', async () => {
    const path = freshPath();
    const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
    const before = await using(path, async (s) => {
      await s.commit([
        docWrite('a', 0, { rev: '1-a', channels: ['x'], body: '{"a":1}', attachments: new Map([[digestOf(bytes), bytes]]) }),
        docWrite('b', 0, { rev: '1-b', channels: ['x', 'y'] }),
        docWrite('gone', 0, { rev: '1-g' }),
      ]);
      await s.commit([docWrite('b', 2, { rev: '2-b', channels: ['y'], previousChannels: ['x', 'y'] })]);
      await s.commit([docWrite('a', 1, { rev: '2-a', deleted: true, body: '{}', previousChannels: ['x'] })]);
      await s.purge('gone');
      assert.deepEqual(await s.commit([docWrite('a', 1, { rev: '9-stale' })]), [{ ok: false, reason: 'conflict' }]);
      await s.putLocal('checkpoint', 0, '{"last":5}');
      await s.putLocal('checkpoint', 1, '{"last":6}');
      return {
        uuid: await s.uuid(),
        lastSeq: await s.lastSeq(),
        docs: await s.getDocs(['a', 'b', 'gone']),
        changes: await s.changes({ since: 0 }),
        x: await s.changes({ since: 0, channels: ['x'] }),
        y: await s.changes({ since: 0, channels: ['y'] }),
        all: await s.allDocs({ includeDeleted: true }),
      };
    });
    assert.equal(before.lastSeq, 5);

    await using(path, async (s) => {
      assert.equal(await s.uuid(), before.uuid);
      assert.equal(await s.lastSeq(), before.lastSeq);
      assert.deepEqual(await s.getDocs(['a', 'b', 'gone']), before.docs);
      assert.deepEqual(await s.changes({ since: 0 }), before.changes);
      assert.deepEqual(await s.changes({ since: 0, channels: ['x'] }), before.x);
      assert.deepEqual(await s.changes({ since: 0, channels: ['y'] }), before.y);
      assert.deepEqual(await s.allDocs({ includeDeleted: true }), before.all);
      assert.equal(await s.countDocs(), 1);
      assert.deepEqual(await s.getRevision('a', '1-a'), { rev: '1-a', deleted: false, body: '{"a":1}', attachments: null });
      assert.equal((await s.getRevision('a', '2-a'))?.deleted, true);
      assert.ok((await s.getAttachment(digestOf(bytes)))?.equals(bytes));
      assert.deepEqual(await s.getLocal('checkpoint'), { rev: 2, body: '{"last":6}' });
      // The sequence continues from where it was, not from what the docs table shows.
      assert.deepEqual(await s.commit([docWrite('c', 0)]), [{ ok: true, seq: 6 }]);
      // Compare-and-swap tokens still work across the reopen.
      assert.deepEqual(await s.commit([docWrite('b', 4, { rev: '3-b', channels: ['y'], previousChannels: ['y'] })]), [{ ok: true, seq: 7 }]);
    });

    await using(path, async (s) => {
      assert.equal(await s.lastSeq(), 7);
      assert.equal(await s.uuid(), before.uuid);
    });
  });

  it('the sequence never reuses a number even when the newest docs were purged', async () => {
    const path = freshPath();
    await using(path, async (s) => {
      await s.commit([docWrite('a', 0), docWrite('b', 0), docWrite('c', 0)]);
      await s.purge('c');
      await s.purge('b');
    });
    await using(path, async (s) => {
      assert.equal(await s.lastSeq(), 3);
      assert.deepEqual(await s.commit([docWrite('d', 0)]), [{ ok: true, seq: 4 }]);
    });
  });

  it('a second store opened on the file while the first is still open (as after a crash) sees its writes', async () => {
    const path = freshPath();
    const first = new SqliteStore({ path });
    try {
      await first.commit([docWrite('a', 0, { channels: ['c'] }), docWrite('b', 0)]);
      await first.putLocal('l', 0, '{}');
      // No close, so no checkpoint: everything is still in the WAL.
      await using(path, async (second) => {
        assert.equal(await second.lastSeq(), 2);
        assert.equal((await second.getDoc('a'))?.seq, 1);
        assert.deepEqual((await second.changes({ since: 0, channels: ['c'] })).map((r) => r.id), ['a']);
        assert.equal((await second.getLocal('l'))?.rev, 1);
        assert.equal(await second.uuid(), await first.uuid());
      });
    } finally {
      await first.close();
    }
  });

  it('a process killed right after its commits returned loses none of them', () => {
    const path = freshPath();
    const storeUrl = new URL('../../src/storage/sqlite/index.ts', import.meta.url).href;
    const script = `
      const { SqliteStore } = await import(${JSON.stringify(storeUrl)});
      const s = new SqliteStore({ path: ${JSON.stringify(path)} });
      for (let i = 0; i < 50; i++) {
        const r = await s.commit([{ id: 'k' + i, expectedSeq: 0, tree: { revs: ['1-a'], parents: [-1] }, rev: '1-a',
          deleted: false, channels: ['c'], previousChannels: [], addBodies: [], dropBodies: [] }]);
        if (!r[0].ok) process.exit(3);
      }
      await s.putLocal('after', 0, '{}');
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8', timeout: 30_000,
    });
    assert.equal(child.signal, 'SIGKILL', `child did not die by SIGKILL: ${child.status} ${child.stderr}`);
    return using(path, async (s) => {
      assert.equal(await s.lastSeq(), 50);
      assert.equal(await s.countDocs(), 50);
      assert.equal((await s.changes({ since: 0, channels: ['c'] })).length, 50);
      assert.equal((await s.getLocal('after'))?.rev, 1);
      assert.deepEqual(await s.commit([docWrite('next', 0)]), [{ ok: true, seq: 51 }]);
    });
  });

  it('creates missing parent folders', async () => {
    const path = join(dir, 'deep', 'er', 'still', 'db.sqlite');
    await using(path, async (s) => {
      await s.commit([docWrite('a', 0)]);
    });
    assert.ok(existsSync(path));
  });

  it('two :memory: stores are independent', async () => {
    const a = new SqliteStore({ path: ':memory:' });
    const b = new SqliteStore({ path: ':memory:' });
    try {
      await a.commit([docWrite('only-in-a', 0)]);
      assert.equal(await b.lastSeq(), 0);
      assert.equal(await b.getDoc('only-in-a'), undefined);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('close is idempotent', async () => {
    const s = new SqliteStore({ path: ':memory:' });
    await s.close();
    await s.close();
  });
});

describe('SqliteStore: access version', () => {
  it('document writes that change no grants leave it alone, so cached access stays valid', async () => {
    const s = new SqliteStore({ path: ':memory:' });
    try {
      await s.putPrincipal({ kind: 'user', name: 'ann', adminChannels: { c: 0 }, adminRoles: {}, disabled: false });
      const v = await s.accessVersion();
      await s.commit([docWrite('a', 0, { channels: ['c'] })]);
      await s.commit([{ ...docWrite('b', 0), grants: [] }]); // a new doc that grants nothing
      const seq = (await s.getDoc('a'))!.seq;
      await s.commit([docWrite('a', seq, { rev: '2-b', channels: ['c'] })]);
      assert.equal(await s.accessVersion(), v);
      await s.commit([{ ...docWrite('c', 0), grants: [{ grantee: 'ann', kind: 'channel', value: 'd' }] }]);
      assert.notEqual(await s.accessVersion(), v, 'a grant moves it');
    } finally {
      await s.close();
    }
  });
});

describe('SqliteStore: transactions', () => {
  it('a batch that throws part-way commits nothing and consumes no sequence', async () => {
    await using(':memory:', async (s) => {
      await s.commit([docWrite('before', 0)]);
      // JSON.stringify cannot serialize a BigInt, so the second write throws inside the transaction
      // after the first one was applied.
      const poison = { revs: ['1-p'], parents: [-1], boom: 1n } as unknown as EncodedRevTree;
      await assert.rejects(s.commit([
        docWrite('first', 0, { channels: ['c'], attachments: new Map([['sha1-rolled-back', Buffer.from('x')]]) }),
        docWrite('second', 0, { rev: '1-p', tree: poison }),
      ]), TypeError);
      assert.equal(await s.lastSeq(), 1);
      assert.equal(await s.getDoc('first'), undefined);
      assert.equal(await s.getRevision('first', '1-a'), undefined);
      assert.equal(await s.getAttachment('sha1-rolled-back'), undefined);
      assert.deepEqual(await s.changes({ since: 0, channels: ['c'] }), []);
      assert.deepEqual(await s.commit([docWrite('after', 0)]), [{ ok: true, seq: 2 }]);
      assert.deepEqual((await s.changes({ since: 0 })).map((r) => `${r.seq}:${r.id}`), ['1:before', '2:after']);
    });
  });

  it('a rolled-back batch does not advance the persisted sequence either', async () => {
    const path = freshPath();
    await using(path, async (s) => {
      await s.commit([docWrite('a', 0)]);
      const poison = { revs: ['1-p'], parents: [-1], boom: 1n } as unknown as EncodedRevTree;
      await assert.rejects(s.commit([docWrite('b', 0), docWrite('c', 0, { tree: poison })]));
    });
    await using(path, async (s) => {
      assert.equal(await s.lastSeq(), 1);
      assert.deepEqual(await s.commit([docWrite('b', 0)]), [{ ok: true, seq: 2 }]);
    });
  });
});

/**
 * The default collection's rows as an old schema had them (the columns every version since has),
 * for a byte-for-byte comparison across a migration.
 */
function defaultRows(db: Database.Database): Record<string, Record<string, unknown>[]> {
  const all = (sql: string) => db.prepare<[], Record<string, unknown>>(sql).all();
  return {
    docs: all('SELECT id, tree, rev, deleted, seq, channels, expiry FROM docs ORDER BY id'),
    revs: all('SELECT doc_id, rev, deleted, body, atts, channels FROM revs ORDER BY doc_id, rev'),
    channel_index: all('SELECT * FROM channel_index ORDER BY channel, doc_id'),
    local_docs: all('SELECT * FROM local_docs ORDER BY id'),
    grants: all('SELECT * FROM grants ORDER BY doc_id, grantee, kind, value'),
  };
}

describe('SqliteStore: schema versions', () => {
  it('a new file is migrated to the current user_version', async () => {
    const path = freshPath();
    await using(path, async () => {});
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all().map((r) => r.name);
      for (const t of ['attachments', 'channel_index', 'docs', 'local_docs', 'meta', 'revs']) assert.ok(tables.includes(t), `table ${t}`);
    } finally {
      db.close();
    }
    // Opening a current file again runs no migration (it would fail on CREATE TABLE) and keeps the version.
    await using(path, async (s) => assert.equal(await s.lastSeq(), 0));
  });

  it('a version-4 file (before doc counters) opens, and its counts are those of its documents', async () => {
    // Written by Syncgate at schema 4: live1-3, back (deleted then resurrected), conflicted (two
    // leaves), gone and tomb (deleted), purged (gone entirely).
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const raw = new Database(path);
    raw.exec(readFileSync(fileURLToPath(new URL('../fixtures/sqlite-schema-v4.sql', import.meta.url)), 'utf8'));
    assert.equal(raw.pragma('user_version', { simple: true }), 4);
    const before = defaultRows(raw);
    raw.close();
    // Upgraded to the collections registry (schema 9): the old documents are the default collection,
    // served as they were, and a named collection can be made beside them.
    await using(path, async (s) => {
      assert.deepEqual((await s.allDocs({ includeDeleted: true })).map((r) => [r.id, r.rev, r.seq, r.deleted ? 1 : 0, JSON.stringify(r.channels)]),
        before.docs.map((d) => [d.id, d.rev, d.seq, d.deleted, d.channels]));
      assert.deepEqual((await s.changes({ since: 0 })).map((r) => r.id), [...before.docs].sort((x, y) => Number(x.seq) - Number(y.seq)).map((d) => d.id));
      assert.deepEqual((await s.changes({ since: 0, channels: ['a'] })).map((r) => [r.id, r.seq, r.removed ?? null]),
        before.channel_index.map((c) => [c.doc_id, c.seq, c.removed ? 'a' : null]).sort((x, y) => Number(x[1]) - Number(y[1])));
      assert.equal((await s.getRevision('conflicted', '2-aaaa'))?.body, '{"v":1}');
      assert.deepEqual(await s.listCollections(), []);
      const air = await s.collection('inventory', 'airline');
      assert.deepEqual(await air.commit([docWrite('live1', 0, { channels: ['a'] })]), [{ ok: true, seq: 13 }], 'after the old last_seq');
      assert.deepEqual(await air.docCounts(), { live: 1, deleted: 0 });
      assert.deepEqual(await s.docCounts(), { live: 5, deleted: 2 });
      assert.deepEqual(await s.listCollections(), [{ scope: 'inventory', name: 'airline' }]);
    });
    const migrated = new Database(path, { readonly: true });
    try {
      assert.deepEqual(defaultRows(migrated), before, 'no row of the default collection was rewritten');
    } finally {
      migrated.close();
    }
    await using(path, async (s) => {
      assert.equal((await (await s.collection('inventory', 'airline')).getDoc('live1'))?.seq, 13, 'the named collection survives a reopen');
      assert.equal((await s.getDoc('live1'))?.seq, 1);
      assert.deepEqual(await s.docCounts(), { live: 5, deleted: 2 });
      assert.equal((await s.getDoc('conflicted'))?.rev, '2-bbbb');
      const gone = (await s.getDoc('gone'))!;
      await s.commit([docWrite('gone', gone.seq, { rev: '3-g' })]);
      await s.commit([docWrite('new', 0)]);
      assert.deepEqual(await s.docCounts(), { live: 7, deleted: 1 });
    });
    const check = new Database(path, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      check.close();
    }
  });

  it('a version 6 file (before tombstone times) opens: its tombstones count from the upgrade, its documents stay', async () => {
    const path = freshPath();
    await using(path, async (s) => {
      const a = (await s.commit([docWrite('gone', 0)]))[0] as { seq: number };
      await s.commit([docWrite('gone', a.seq, { rev: '2-g', deleted: true }), docWrite('live', 0)]);
    });
    // Back to the version 6 schema exactly (migration 7 only added the column and its index, 8 and 9 a table each).
    const raw = new Database(path);
    raw.exec('DROP TABLE collections; DROP TABLE old_revs; DROP INDEX docs_by_tombstone; ALTER TABLE docs DROP COLUMN tombstoned_at;');
    raw.pragma('user_version = 6');
    raw.close();
    const before = Math.floor(Date.now() / 1000);
    await using(path, async (s) => {
      assert.equal((await s.getDoc('gone'))?.deleted, true);
      assert.equal((await s.getDoc('live'))?.rev, '1-a');
      assert.deepEqual(await s.tombstonesBefore(before - 1, 10), [], 'an old tombstone is not taken as ancient');
      assert.deepEqual(await s.tombstonesBefore(Math.floor(Date.now() / 1000) + 1, 10), ['gone']);
      assert.equal(await s.lastSeq(), 3);
    });
    const check = new Database(path, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      check.close();
    }
  });

  it('a file written by schema 4 (before old revision bodies) opens, is upgraded, and keeps its data', async () => {
    // test/fixtures/sqlite-schema-v4.sqlite was written by Syncgate's SqliteStore at schema version 4
    // (main before delta sync): document "doc" with 1-a (body dropped) and leaf 2-b {"v":2}.
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    copyFileSync(fileURLToPath(new URL('../fixtures/sqlite-schema-v4.sqlite', import.meta.url)), path);
    const before = new Database(path, { readonly: true });
    assert.equal(before.pragma('user_version', { simple: true }), 4);
    before.close();
    await using(path, async (s) => {
      assert.equal(await s.lastSeq(), 2);
      assert.equal((await s.getDoc('doc'))?.rev, '2-b');
      assert.equal((await s.getRevision('doc', '2-b'))?.body, '{"v":2}');
      assert.deepEqual(await s.oldRevisionUsage(), { count: 0, bytes: 0 });
      const [r] = await s.commit([docWrite('doc', 2, { rev: '3-c', retireBodies: [{ rev: '2-b', until: 1000 }] })]);
      assert.equal(r?.ok, true);
      assert.equal((await s.getOldRevision('doc', '2-b', 0))?.body, '{"v":2}');
      // A named collection beside it: its own "doc", its own old revisions.
      const notes = await s.collection('_default', 'notes');
      assert.equal(await notes.getDoc('doc'), undefined);
      assert.deepEqual(await notes.commit([docWrite('doc', 0, { rev: '1-n' })]), [{ ok: true, seq: 4 }]);
      assert.deepEqual(await notes.oldRevisionUsage(), { count: 0, bytes: 0 });
      assert.equal((await s.getDoc('doc'))?.rev, '3-c');
    });
    const after = new Database(path, { readonly: true });
    try {
      assert.equal(after.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      after.close();
    }
  });

  it('a file from a newer Syncgate is refused, and left as it was', async () => {
    const path = freshPath();
    await using(path, async (s) => {
      await s.commit([docWrite('a', 0)]);
    });
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(() => new SqliteStore({ path }), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /newer/);
      assert.match(err.message, new RegExp(`${SCHEMA_VERSION + 1}`));
      return true;
    });
    const check = new Database(path, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
      assert.equal(check.prepare<[], { n: number }>('SELECT count(*) AS n FROM docs').get()!.n, 1);
    } finally {
      check.close();
    }
  });

  it('refusing a newer file does not leave it open', {
    skip: process.platform !== 'linux' ? 'needs /proc/self/fd' : undefined,
  }, async () => {
    const path = freshPath();
    await using(path, async () => {});
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 7}`);
    raw.close();
    assert.deepEqual(openFds(path), []);
    assert.throws(() => new SqliteStore({ path }), /newer/);
    assert.deepEqual(openFds(path), []);
  });
});

describe('SqliteStore: schema 5, md5 digests of attachments', () => {
  it('a schema-4 file is migrated: stored bytes get their md5, and every _attachments entry its md5', async () => {
    const path = freshPath();
    const { a, b } = writeSchema4File(path);
    await using(path, async (s) => {
      const rev = await s.getRevision('old', '2-b');
      assert.deepEqual(rev?.attachments, {
        'a.bin': { content_type: 'application/octet-stream', digest: digestOf(a), length: a.length, revpos: 1, md5: md5Of(a) },
        'b.bin': { content_type: 'application/octet-stream', digest: digestOf(b), length: b.length, revpos: 2, md5: md5Of(b) },
        'lost.bin': { digest: 'sha1-lost', length: 1, revpos: 1 },
      });
      assert.equal((await s.getRevision('plain', '1-a'))?.attachments, null);
      assert.deepEqual(await s.findAttachments([md5Of(a)]), [{ digest: digestOf(a), md5: md5Of(a), length: a.length }]);
      assert.ok((await s.getAttachment(digestOf(b)))?.equals(b));
      assert.equal(await s.lastSeq(), 1);
    });
    const raw = new Database(path, { readonly: true });
    try {
      assert.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    } finally {
      raw.close();
    }
  });

  it('a failing migration leaves the file at its old version, untouched', async () => {
    const path = freshPath();
    writeSchema4File(path);
    const raw = new Database(path);
    // Something the migration's CREATE INDEX will trip on, after its UPDATEs have run.
    raw.exec('CREATE TABLE attachments_by_md5 (x)');
    raw.close();
    assert.throws(() => new SqliteStore({ path }), /attachments_by_md5/);
    const check = new Database(path, { readonly: true });
    try {
      assert.equal(check.pragma('user_version', { simple: true }), 4);
      const cols = check.prepare<[], { name: string }>('PRAGMA table_info(attachments)').all().map((c) => c.name);
      assert.deepEqual(cols, ['digest', 'data']);
      const atts = check.prepare<[], { atts: string }>("SELECT atts FROM revs WHERE doc_id = 'old'").get()!.atts;
      assert.ok(!atts.includes('md5'), 'the _attachments entries are as they were');
    } finally {
      check.close();
    }
  });
});
