/**
 * Named collections on SQLite, what only the file shows: a named collection's tables have exactly
 * the shape the migrations gave the default collection's, and a later migration written per
 * collection reaches every collection's tables, all or nothing.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/storage/sqlite/index.ts';
import { MIGRATIONS, SCHEMA_VERSION, migrate, type Migration } from '../../src/storage/sqlite/schema.ts';
import { docWrite } from './contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'syncgate-sqlite-coll-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = (): string => join(dir, `db-${++n}`, 'test.sqlite');

/** The per-collection tables, by their default names. */
const TABLES = ['docs', 'revs', 'channel_index', 'local_docs', 'grants', 'doc_counts', 'old_revs'];

/** Columns, rowid-ness and indexes of one table, with the collection prefix taken out of every name. */
function shape(db: Database.Database, table: string, prefix: string) {
  const sql = db.prepare<[string], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").get(prefix + table)?.sql;
  assert.ok(sql, `table ${prefix}${table} exists`);
  const columns = db.prepare(`PRAGMA table_info(${prefix}${table})`).all();
  const indexes = db.prepare<[string], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL")
    .all(prefix + table)
    .map((r) => r.sql.replace('IF NOT EXISTS ', '').replaceAll(prefix, '').replace(/\s+/g, ' '))
    .sort();
  const pk = db.prepare(`PRAGMA index_list(${prefix}${table})`).all()
    .map((r) => ({ ...(r as object), name: String((r as { name: string }).name).replace(prefix, '') }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return { withoutRowid: /WITHOUT ROWID\s*$/i.test(sql), columns, indexes, pk };
}

describe('SqliteStore: named collection tables', () => {
  it('have the shape the migrations gave the default tables of a file first written at schema 4', async () => {
    const path = freshPath();
    mkdirSync(dirname(path), { recursive: true });
    const raw = new Database(path);
    raw.exec(readFileSync(fileURLToPath(new URL('../fixtures/sqlite-schema-v4.sql', import.meta.url)), 'utf8'));
    raw.close();
    const s = new SqliteStore({ path });
    try {
      await s.collection('inventory', 'airline');
      await s.collection('inventory', 'hotel');
    } finally {
      await s.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      const ids = db.prepare<[], { id: number; scope: string; name: string }>('SELECT id, scope, name FROM collections ORDER BY id').all();
      assert.deepEqual(ids.map((r) => `${r.scope}.${r.name}`), ['inventory.airline', 'inventory.hotel']);
      for (const { id } of ids) {
        for (const t of TABLES) assert.deepEqual(shape(db, t, `c${id}_`), shape(db, t, ''), `c${id}_${t} is shaped like ${t}`);
      }
      // Only per-collection tables are copied: principals, sessions, attachments… exist once.
      const named = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c1\\_%' ESCAPE '\\'").all();
      assert.deepEqual(named.map((r) => r.name).sort(), TABLES.map((t) => `c1_${t}`).sort());
    } finally {
      db.close();
    }
  });

  it('a migration written per collection changes every collection\'s tables and the default ones, in one transaction', async () => {
    const path = freshPath();
    const s = new SqliteStore({ path });
    const hotel = await s.collection('inventory', 'hotel');
    await hotel.commit([docWrite('h', 0)]);
    await s.collection('inventory', 'airline');
    await s.close();
    const next: Migration = {
      shared: 'CREATE TABLE future_shared (x INTEGER);',
      perCollection: 'ALTER TABLE {c}docs ADD COLUMN future TEXT; CREATE INDEX {c}docs_by_future ON {c}docs (future);',
    };
    const db = new Database(path);
    try {
      migrate(db, SCHEMA_VERSION + 1, [...MIGRATIONS, next]);
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
      for (const p of ['', 'c1_', 'c2_']) {
        const cols = db.prepare<[], { name: string }>(`PRAGMA table_info(${p}docs)`).all().map((c) => c.name);
        assert.ok(cols.includes('future'), `${p}docs has the new column`);
        assert.ok(db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(`${p}docs_by_future`), `${p}docs has the new index`);
      }
      assert.ok(db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'future_shared'").get());
      assert.equal(db.prepare<[], { future: string | null }>("SELECT future FROM c1_docs WHERE id = 'h'").get()?.future, null, 'rows stay');
    } finally {
      db.close();
    }
  });

  it('a per-collection migration that fails on one collection changes none, and the file stays at its version', async () => {
    const path = freshPath();
    const s = new SqliteStore({ path });
    await s.collection('inventory', 'hotel');
    await s.collection('inventory', 'airline');
    await s.close();
    const db = new Database(path);
    try {
      // Something the migration trips on in the second named collection only.
      db.exec('ALTER TABLE c2_docs ADD COLUMN future TEXT');
      assert.throws(() => migrate(db, SCHEMA_VERSION + 1, [...MIGRATIONS, { perCollection: 'ALTER TABLE {c}docs ADD COLUMN future TEXT;' }]),
        /duplicate column/);
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      for (const p of ['', 'c1_']) {
        const cols = db.prepare<[], { name: string }>(`PRAGMA table_info(${p}docs)`).all().map((c) => c.name);
        assert.ok(!cols.includes('future'), `${p}docs was left as it was`);
      }
    } finally {
      db.close();
    }
    // And the store still opens it.
    const again = new SqliteStore({ path });
    try {
      assert.deepEqual((await again.listCollections()).map((c) => c.name), ['airline', 'hotel']);
    } finally {
      await again.close();
    }
  });
});

describe('SQLite group commit', () => {
  it('commits issued together from several collections each succeed or fail alone, and burn no sequence when they fail', async () => {
    const store = new SqliteStore({ path: ':memory:' });
    try {
      const a = await store.collection('inventory', 'a');
      const b = await store.collection('inventory', 'b');
      const write = (id: string | null) => docWrite(id as string, 0);
      // Issued in one turn: one group transaction; the bad one (a NULL id) fails inside its own savepoint.
      const results = await Promise.allSettled([a.commit([write('d1')]), b.commit([write(null)]), store.commit([write('d2')]), b.commit([write('d3')])]);
      assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      assert.ok(await a.getDoc('d1'));
      assert.ok(await store.getDoc('d2'));
      assert.ok(await b.getDoc('d3'));
      const seqs = [(await a.getDoc('d1'))!.seq, (await store.getDoc('d2'))!.seq, (await b.getDoc('d3'))!.seq];
      assert.deepEqual(seqs, [1, 2, 3], 'the failed commit took no sequence');
      assert.equal(await store.lastSeq(), 3);
    } finally { await store.close(); }
  });
});
