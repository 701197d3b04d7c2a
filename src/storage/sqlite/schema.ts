/**
 * Schema versions for the SQLite backend. Each migration runs once, in order, inside a transaction;
 * `PRAGMA user_version` records how far a file has come, so an older file is upgraded on open and a
 * newer one (written by a later Syncgate) is refused instead of being misread.
 */
import type Database from 'better-sqlite3';
import { createHash } from 'node:crypto';

/**
 * A migration: SQL for the file as a whole, or a change to every collection's tables.
 *
 * Named collections (see collectionTablesSql) have their own copies of the per-collection tables,
 * `c<id>_docs`, `c<id>_revs`, …, listed in the `collections` registry (migration 9). A migration
 * that changes a per-collection table after version 9 is therefore written as `perCollection`,
 * with `{c}` standing for the table prefix in every table and index name
 * (`ALTER TABLE {c}docs ADD COLUMN x TEXT; CREATE INDEX {c}docs_by_x ON {c}docs (x)`): the runner
 * applies it to the default collection's tables (prefix '') and then to each registered collection's
 * (prefix `c<id>_`), in the migration's one transaction. `shared` runs first, once. The same change
 * must also be made to collectionTablesSql, which creates a new collection's tables at the current
 * shape (a test compares them with the default tables, column by column and index by index).
 */
export type Migration = string | { shared?: string; perCollection?: string };

export const MIGRATIONS: readonly Migration[] = [
  // 1: documents, revision bodies, the channel index, attachments, local docs, metadata.
  `CREATE TABLE docs (
     id TEXT PRIMARY KEY,
     tree TEXT NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     seq INTEGER NOT NULL,
     channels TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE UNIQUE INDEX docs_by_seq ON docs (seq);
   CREATE TABLE revs (
     doc_id TEXT NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     body TEXT NOT NULL,
     atts TEXT,
     PRIMARY KEY (doc_id, rev)
   ) WITHOUT ROWID;
   CREATE TABLE channel_index (
     channel TEXT NOT NULL,
     doc_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     removed INTEGER NOT NULL,
     PRIMARY KEY (channel, doc_id)
   ) WITHOUT ROWID;
   CREATE INDEX channel_index_by_seq ON channel_index (channel, seq);
   CREATE TABLE attachments (digest TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
   CREATE TABLE local_docs (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
  // 2: access control: principals, document grants (revoked by a later revision), sessions, and
  // the channels of each stored revision.
  `CREATE TABLE principals (
     kind TEXT NOT NULL,
     name TEXT NOT NULL,
     data TEXT NOT NULL,
     seq INTEGER NOT NULL,
     PRIMARY KEY (kind, name)
   ) WITHOUT ROWID;
   CREATE TABLE grants (
     doc_id TEXT NOT NULL,
     grantee TEXT NOT NULL,
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     seq INTEGER NOT NULL,
     PRIMARY KEY (doc_id, grantee, kind, value)
   ) WITHOUT ROWID;
   CREATE INDEX grants_by_grantee ON grants (grantee);
   CREATE TABLE grant_changes (grantee TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
   CREATE TABLE sessions (
     id TEXT PRIMARY KEY,
     user TEXT NOT NULL,
     expires INTEGER NOT NULL,
     ttl INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX sessions_by_user ON sessions (user);
   ALTER TABLE revs ADD COLUMN channels TEXT;`,
  // 3: document expiry (TTL), from `_exp` or the sync function's expiry().
  `ALTER TABLE docs ADD COLUMN expiry INTEGER;
   CREATE INDEX docs_by_expiry ON docs (expiry) WHERE expiry IS NOT NULL;`,
  // 4: revision bodies in an ordinary (rowid) table. WITHOUT ROWID suits rows far smaller than a
  // page; with bodies of 1 KB and more each leaf held three or four rows and spilled to overflow
  // pages, and a point lookup of one body cost 3-5x what it costs through the (doc_id, rev) index
  // of a rowid table (measured: 40-48 µs against 8-14 µs on 20,000 1 KB bodies).
  `CREATE TABLE revs_v4 (
     doc_id TEXT NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     body TEXT NOT NULL,
     atts TEXT,
     channels TEXT,
     PRIMARY KEY (doc_id, rev)
   );
   INSERT INTO revs_v4 (doc_id, rev, deleted, body, atts, channels) SELECT doc_id, rev, deleted, body, atts, channels FROM revs;
   DROP TABLE revs;
   ALTER TABLE revs_v4 RENAME TO revs;`,
  // 5: the md5 digest of every attachment beside its sha1 one. REST clients (PouchDB, CouchDB) get
  // `md5-` digests, the kind they compute themselves, so that they recognize an attachment they
  // already hold; stubs that come back may name either kind. Existing bytes are hashed here, and
  // every stored `_attachments` entry gains its `md5` (a dangling digest keeps none).
  `ALTER TABLE attachments ADD COLUMN md5 TEXT;
   UPDATE attachments SET md5 = syncgate_md5_digest(data);
   CREATE INDEX attachments_by_md5 ON attachments (md5);
   UPDATE revs SET atts = (
     SELECT json_group_object(e.key, CASE WHEN a.md5 IS NULL THEN json(e.value) ELSE json_set(e.value, '$.md5', a.md5) END)
     FROM json_each(revs.atts) AS e LEFT JOIN attachments AS a ON a.digest = json_extract(e.value, '$.digest'))
   WHERE atts IS NOT NULL;`,
  // 6: live and deleted document counts (GET /{db}/ doc_count, doc_del_count), kept by every commit
  // and purge so reading them costs one row, not a scan of every document.
  `CREATE TABLE doc_counts (id INTEGER PRIMARY KEY CHECK (id = 1), live INTEGER NOT NULL, deleted INTEGER NOT NULL);
   INSERT INTO doc_counts (id, live, deleted)
     SELECT 1, coalesce(sum(deleted = 0), 0), coalesce(sum(deleted = 1), 0) FROM docs;`,
  // 7: when each tombstone was made (seconds), so that tombstone compaction can purge those older
  // than the purge interval. Tombstones made before this version count from the upgrade.
  `ALTER TABLE docs ADD COLUMN tombstoned_at INTEGER;
   UPDATE docs SET tombstoned_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE deleted = 1;
   CREATE INDEX docs_by_tombstone ON docs (tombstoned_at) WHERE tombstoned_at IS NOT NULL;`,
  // 8: old revision bodies, kept for a while after they stop being leaves so that delta sync can
  // use them as sources (Sync Gateway's `_sync:rev:` backups with a TTL). Apart from the leaf
  // bodies so that every other read path sees exactly what it saw before.
  `CREATE TABLE old_revs (
     doc_id TEXT NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     body TEXT NOT NULL,
     atts TEXT,
     channels TEXT,
     expires INTEGER NOT NULL,
     PRIMARY KEY (doc_id, rev)
   );
   CREATE INDEX old_revs_by_expiry ON old_revs (expires);`,
  // 9: named collections (scope.name). The default collection `_default._default` keeps the tables
  // above, untouched; each named one gets a small id here and its own tables, `c<id>_docs` and so on
  // (collectionTablesSql), made the first time the store names it. AUTOINCREMENT: an id is never
  // handed out twice, even if a collection's row were ever removed.
  `CREATE TABLE collections (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     scope TEXT NOT NULL,
     name TEXT NOT NULL,
     UNIQUE (scope, name)
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Refuses a file written by a newer Syncgate instead of misreading it. */
export function checkVersion(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`database file has schema version ${current}, newer than this Syncgate supports (${SCHEMA_VERSION})`);
  }
}

/**
 * Brings the file to `target` (the current version; tests build older files with a lower one, and
 * try the runner with a list of their own).
 */
export function migrate(db: Database.Database, target = SCHEMA_VERSION, migrations: readonly Migration[] = MIGRATIONS): void {
  checkVersion(db);
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current >= target) return;
  // Migration 5 hashes stored attachment bytes; SQLite has no md5 of its own.
  db.function('syncgate_md5_digest', { deterministic: true }, (data: unknown) => (
    Buffer.isBuffer(data) ? 'md5-' + createHash('md5').update(data).digest('base64') : null));
  for (let v = current; v < target; v++) {
    db.transaction(() => {
      const m = migrations[v];
      if (typeof m === 'string') {
        db.exec(m);
      } else {
        if (m.shared) db.exec(m.shared);
        if (m.perCollection) {
          const ids = db.prepare<[], { id: number }>('SELECT id FROM collections ORDER BY id').all().map((r) => r.id);
          for (const prefix of ['', ...ids.map(collectionPrefix)]) db.exec(m.perCollection.replaceAll('{c}', prefix));
        }
      }
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/** Table name prefix of a named collection's tables. */
export function collectionPrefix(id: number): string {
  return `c${id}_`;
}

/**
 * A named collection's tables and indexes at the current schema version, their names prefixed with
 * `prefix`: the same columns, keys and indexes the default collection's tables have after every
 * migration above (doc_counts starts at zero). Any migration that changes a per-collection table
 * changes this too (see Migration).
 */
export function collectionTablesSql(prefix: string): string {
  const p = prefix;
  return `CREATE TABLE IF NOT EXISTS ${p}docs (
     id TEXT PRIMARY KEY,
     tree TEXT NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     seq INTEGER NOT NULL,
     channels TEXT NOT NULL,
     expiry INTEGER,
     tombstoned_at INTEGER
   ) WITHOUT ROWID;
   CREATE UNIQUE INDEX IF NOT EXISTS ${p}docs_by_seq ON ${p}docs (seq);
   CREATE INDEX IF NOT EXISTS ${p}docs_by_expiry ON ${p}docs (expiry) WHERE expiry IS NOT NULL;
   CREATE INDEX IF NOT EXISTS ${p}docs_by_tombstone ON ${p}docs (tombstoned_at) WHERE tombstoned_at IS NOT NULL;
   CREATE TABLE IF NOT EXISTS ${p}revs (
     doc_id TEXT NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     body TEXT NOT NULL,
     atts TEXT,
     channels TEXT,
     PRIMARY KEY (doc_id, rev)
   );
   CREATE TABLE IF NOT EXISTS ${p}channel_index (
     channel TEXT NOT NULL,
     doc_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     removed INTEGER NOT NULL,
     PRIMARY KEY (channel, doc_id)
   ) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS ${p}channel_index_by_seq ON ${p}channel_index (channel, seq);
   CREATE TABLE IF NOT EXISTS ${p}local_docs (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, body TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE IF NOT EXISTS ${p}grants (
     doc_id TEXT NOT NULL,
     grantee TEXT NOT NULL,
     kind TEXT NOT NULL,
     value TEXT NOT NULL,
     seq INTEGER NOT NULL,
     PRIMARY KEY (doc_id, grantee, kind, value)
   ) WITHOUT ROWID;
   CREATE INDEX IF NOT EXISTS ${p}grants_by_grantee ON ${p}grants (grantee);
   CREATE TABLE IF NOT EXISTS ${p}doc_counts (id INTEGER PRIMARY KEY CHECK (id = 1), live INTEGER NOT NULL, deleted INTEGER NOT NULL);
   INSERT OR IGNORE INTO ${p}doc_counts (id, live, deleted) VALUES (1, 0, 0);
   CREATE TABLE IF NOT EXISTS ${p}old_revs (
     doc_id TEXT NOT NULL,
     rev TEXT NOT NULL,
     deleted INTEGER NOT NULL,
     body TEXT NOT NULL,
     atts TEXT,
     channels TEXT,
     expires INTEGER NOT NULL,
     PRIMARY KEY (doc_id, rev)
   );
   CREATE INDEX IF NOT EXISTS ${p}old_revs_by_expiry ON ${p}old_revs (expires);`;
}
