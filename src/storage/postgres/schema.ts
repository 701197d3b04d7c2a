/**
 * Tables of one Syncgate database inside PostgreSQL. Each Syncgate database (its `bucket`) gets a
 * schema of its own, so several databases can share one PostgreSQL database, and every node that
 * names the same server and bucket shares the same tables.
 *
 * Migrations run once, in order, each in its own transaction, recorded in `schema_migrations`.
 * Several nodes may start at once against an empty database: a transaction-scoped advisory lock
 * makes them take turns, and the second finds the work done.
 */
import type pg from 'pg';

/** Quotes an identifier ("a""b"). */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A migration: SQL for the schema as a whole, or a change to every collection's tables.
 *
 * Named collections (see collectionTablesSql) have their own copies of the per-collection tables,
 * `S.c<id>_docs`, `S.c<id>_revs`, …, listed in the `collections` registry (migration 7). A migration
 * that changes a per-collection table after version 7 is therefore written as `perCollection`, with
 * `{c}` standing for the table prefix in every table and index name
 * (`ALTER TABLE S.{c}docs ADD COLUMN x text; CREATE INDEX {c}docs_by_x ON S.{c}docs (x)`): the
 * runner applies it to the default collection's tables (prefix '') and then to each registered
 * collection's (prefix `c<id>_`), inside the migration's transaction and advisory lock, so no
 * collection can be created half-way. `shared` runs first, once. The same change must also be made
 * to collectionTablesSql, which creates a new collection's tables at the current shape (a test
 * compares them with the default tables, column by column and index by index). One difference
 * stays: the default collection's document counts are columns of `seq_counter` (migration 4), a
 * named collection's are its own `c<id>_doc_counts` row.
 */
export type Migration = string | { shared?: string; perCollection?: string };

/**
 * `S.` stands for the schema. Ids sort by UTF-8 bytes (Sync Gateway's order): COLLATE "C" compares
 * bytes, which in a UTF8 database is exactly that order.
 */
export const MIGRATIONS: readonly Migration[] = [
  // 1: everything the Store contract speaks of.
  `CREATE TABLE S.seq_counter (
     id integer PRIMARY KEY CHECK (id = 1),
     last_seq bigint NOT NULL,
     -- Bumped by every principal deletion (which takes no sequence), so that other nodes' access
     -- caches see it: see PostgresStore.accessVersion.
     principal_deletions bigint NOT NULL DEFAULT 0
   );
   INSERT INTO S.seq_counter (id, last_seq) VALUES (1, 0);
   CREATE TABLE S.meta (key text PRIMARY KEY, value text NOT NULL);
   CREATE TABLE S.docs (
     id text COLLATE "C" PRIMARY KEY,
     tree text NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     seq bigint NOT NULL,
     channels text NOT NULL,
     expiry bigint
   );
   CREATE INDEX docs_by_seq ON S.docs (seq);
   CREATE INDEX docs_by_expiry ON S.docs (expiry) WHERE expiry IS NOT NULL;
   CREATE TABLE S.revs (
     doc_id text COLLATE "C" NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     body text NOT NULL,
     atts text,
     channels text,
     PRIMARY KEY (doc_id, rev)
   );
   CREATE TABLE S.channel_index (
     channel text NOT NULL,
     doc_id text COLLATE "C" NOT NULL,
     seq bigint NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     removed boolean NOT NULL,
     PRIMARY KEY (channel, doc_id)
   );
   CREATE INDEX channel_index_by_seq ON S.channel_index (channel, seq);
   -- Other nodes find which channels a range of sequences touched (to wake their feeds).
   CREATE INDEX channel_index_seq ON S.channel_index (seq);
   CREATE TABLE S.attachments (digest text PRIMARY KEY, data bytea NOT NULL);
   CREATE TABLE S.local_docs (id text PRIMARY KEY, rev integer NOT NULL, body text NOT NULL);
   CREATE TABLE S.principals (
     kind text NOT NULL,
     name text COLLATE "C" NOT NULL,
     data text NOT NULL,
     seq bigint NOT NULL,
     PRIMARY KEY (kind, name)
   );
   CREATE INDEX principals_by_seq ON S.principals (seq);
   CREATE TABLE S.grants (
     doc_id text NOT NULL,
     grantee text NOT NULL,
     kind text NOT NULL,
     value text NOT NULL,
     seq bigint NOT NULL,
     PRIMARY KEY (doc_id, grantee, kind, value)
   );
   CREATE INDEX grants_by_grantee ON S.grants (grantee);
   CREATE TABLE S.grant_changes (grantee text PRIMARY KEY, seq bigint NOT NULL);
   CREATE INDEX grant_changes_by_seq ON S.grant_changes (seq);
   CREATE TABLE S.sessions (
     id text PRIMARY KEY,
     "user" text NOT NULL,
     expires bigint NOT NULL,
     ttl bigint NOT NULL
   );
   CREATE INDEX sessions_by_user ON S.sessions ("user");`,
  // 2: bumped by every change that can alter someone's access (principal saves, grant changes), so
  // the access version need not move with plain document writes (see PostgresStore.accessVersion).
  `ALTER TABLE S.seq_counter ADD COLUMN access_changes bigint NOT NULL DEFAULT 0;`,
  // 3: the md5 digest of every attachment beside its sha1 one. REST clients (PouchDB, CouchDB) get
  // `md5-` digests, the kind they compute themselves, so that they recognize an attachment they
  // already hold; stubs that come back may name either kind. Existing bytes are hashed here, and
  // every stored `_attachments` entry gains its `md5` (a dangling digest keeps none).
  `ALTER TABLE S.attachments ADD COLUMN md5 text;
   UPDATE S.attachments SET md5 = 'md5-' || encode(decode(md5(data), 'hex'), 'base64');
   CREATE INDEX attachments_by_md5 ON S.attachments (md5);
   UPDATE S.revs AS r SET atts = COALESCE((
     SELECT json_object_agg(e.key, CASE WHEN a.md5 IS NULL THEN e.value
                                        ELSE (e.value::jsonb || jsonb_build_object('md5', a.md5))::json END ORDER BY e.ord)::text
     FROM json_each(r.atts::json) WITH ORDINALITY AS e(key, value, ord)
     LEFT JOIN S.attachments AS a ON a.digest = e.value->>'digest'), r.atts)
   WHERE r.atts IS NOT NULL;`,
  // 4: live and deleted document counts (GET /{db}/ doc_count, doc_del_count), moved by every commit
  // and purge in the counter row they already update, so reading them scans nothing. The docs table
  // is locked while they are counted, so no write of a running node slips between count and column.
  `LOCK TABLE S.docs IN SHARE MODE;
   ALTER TABLE S.seq_counter ADD COLUMN live_docs bigint NOT NULL DEFAULT 0,
     ADD COLUMN deleted_docs bigint NOT NULL DEFAULT 0;
   UPDATE S.seq_counter SET live_docs = (SELECT count(*) FROM S.docs WHERE NOT deleted),
     deleted_docs = (SELECT count(*) FROM S.docs WHERE deleted);`,
  // 5: when each tombstone was made (seconds), so that tombstone compaction can purge those older
  // than the purge interval. Tombstones made before this version count from the upgrade.
  `ALTER TABLE S.docs ADD COLUMN tombstoned_at bigint;
   UPDATE S.docs SET tombstoned_at = extract(epoch FROM now())::bigint WHERE deleted;
   CREATE INDEX docs_by_tombstone ON S.docs (tombstoned_at) WHERE tombstoned_at IS NOT NULL;`,
  // 6: old revision bodies, kept for a while after they stop being leaves so that delta sync can
  // use them as sources (Sync Gateway's `_sync:rev:` backups with a TTL); apart from the leaf
  // bodies so that every other read path sees exactly what it saw before.
  `CREATE TABLE S.old_revs (
     doc_id text COLLATE "C" NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     body text NOT NULL,
     atts text,
     channels text,
     expires bigint NOT NULL,
     PRIMARY KEY (doc_id, rev)
   );
   CREATE INDEX old_revs_by_expiry ON S.old_revs (expires);`,
  // 7: named collections (scope.name). The default collection `_default._default` keeps the tables
  // above, untouched; each named one gets a small id here and its own tables, `S.c<id>_docs` and so
  // on (collectionTablesSql), made the first time a node names it.
  `CREATE TABLE S.collections (
     id serial PRIMARY KEY,
     scope text NOT NULL,
     name text NOT NULL,
     UNIQUE (scope, name)
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Thrown when the schema exists but was written by a newer Syncgate. */
export class SchemaTooNewError extends Error {}

/**
 * Creates the schema if needed and brings it to `target` (SCHEMA_VERSION). The schema's existence is checked
 * before CREATE SCHEMA: PostgreSQL checks the CREATE privilege on the database even for
 * `IF NOT EXISTS`, and an operator may have created the schema for a user without that privilege.
 */
export async function migrate(
  client: pg.ClientBase, schema: string, newUuid: () => string, target = SCHEMA_VERSION, migrations: readonly Migration[] = MIGRATIONS,
): Promise<void> {
  const s = ident(schema);
  await client.query('BEGIN');
  try {
    // One lock per schema name: nodes starting together migrate one after the other.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(schema)]);
    const exists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (exists.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (
      version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const r = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_migrations`);
    const current = Number(r.rows[0].v ?? 0);
    if (current > SCHEMA_VERSION) {
      throw new SchemaTooNewError(`PostgreSQL schema "${schema}" has version ${current}, newer than this Syncgate supports (${SCHEMA_VERSION})`);
    }
    // `target` below the current version: tests build a schema as an older Syncgate left it.
    const inSchema = (sql: string) => sql.replace(/\bS\./g, `${s}.`);
    for (let v = current; v < target; v++) {
      const m = migrations[v];
      if (typeof m === 'string') {
        await client.query(inSchema(m));
      } else {
        if (m.shared) await client.query(inSchema(m.shared));
        if (m.perCollection) {
          const ids = (await client.query<{ id: number }>(`SELECT id FROM ${s}.collections ORDER BY id`)).rows.map((r) => Number(r.id));
          for (const prefix of ['', ...ids.map(collectionPrefix)]) await client.query(inSchema(m.perCollection.replaceAll('{c}', prefix)));
        }
      }
      await client.query(`INSERT INTO ${s}.schema_migrations (version) VALUES ($1)`, [v + 1]);
    }
    await client.query(`INSERT INTO ${s}.meta (key, value) VALUES ('uuid', $1) ON CONFLICT (key) DO NOTHING`, [newUuid()]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * The advisory lock that serializes a schema's migrations and the creation of its collections'
 * tables (held for one transaction with pg_advisory_xact_lock(hashtext(key))).
 */
export function schemaLockKey(schema: string): string {
  return `syncgate:${schema}`;
}

/** Table name prefix of a named collection's tables. */
export function collectionPrefix(id: number): string {
  return `c${id}_`;
}

/**
 * A named collection's tables and indexes in schema `s` (quoted) at the current schema version,
 * their names prefixed with `prefix`: the same columns, keys and indexes the default collection's
 * tables have after every migration above, plus its own document counts row (the default's are in
 * seq_counter). Any migration that changes a per-collection table changes this too (see Migration).
 */
export function collectionTablesSql(s: string, prefix: string): string {
  const p = prefix;
  return `CREATE TABLE IF NOT EXISTS ${s}.${p}docs (
     id text COLLATE "C" PRIMARY KEY,
     tree text NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     seq bigint NOT NULL,
     channels text NOT NULL,
     expiry bigint,
     tombstoned_at bigint
   );
   CREATE INDEX IF NOT EXISTS ${p}docs_by_seq ON ${s}.${p}docs (seq);
   CREATE INDEX IF NOT EXISTS ${p}docs_by_expiry ON ${s}.${p}docs (expiry) WHERE expiry IS NOT NULL;
   CREATE INDEX IF NOT EXISTS ${p}docs_by_tombstone ON ${s}.${p}docs (tombstoned_at) WHERE tombstoned_at IS NOT NULL;
   CREATE TABLE IF NOT EXISTS ${s}.${p}revs (
     doc_id text COLLATE "C" NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     body text NOT NULL,
     atts text,
     channels text,
     PRIMARY KEY (doc_id, rev)
   );
   CREATE TABLE IF NOT EXISTS ${s}.${p}channel_index (
     channel text NOT NULL,
     doc_id text COLLATE "C" NOT NULL,
     seq bigint NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     removed boolean NOT NULL,
     PRIMARY KEY (channel, doc_id)
   );
   CREATE INDEX IF NOT EXISTS ${p}channel_index_by_seq ON ${s}.${p}channel_index (channel, seq);
   CREATE INDEX IF NOT EXISTS ${p}channel_index_seq ON ${s}.${p}channel_index (seq);
   CREATE TABLE IF NOT EXISTS ${s}.${p}local_docs (id text PRIMARY KEY, rev integer NOT NULL, body text NOT NULL);
   CREATE TABLE IF NOT EXISTS ${s}.${p}grants (
     doc_id text NOT NULL,
     grantee text NOT NULL,
     kind text NOT NULL,
     value text NOT NULL,
     seq bigint NOT NULL,
     PRIMARY KEY (doc_id, grantee, kind, value)
   );
   CREATE INDEX IF NOT EXISTS ${p}grants_by_grantee ON ${s}.${p}grants (grantee);
   CREATE TABLE IF NOT EXISTS ${s}.${p}old_revs (
     doc_id text COLLATE "C" NOT NULL,
     rev text NOT NULL,
     deleted boolean NOT NULL,
     body text NOT NULL,
     atts text,
     channels text,
     expires bigint NOT NULL,
     PRIMARY KEY (doc_id, rev)
   );
   CREATE INDEX IF NOT EXISTS ${p}old_revs_by_expiry ON ${s}.${p}old_revs (expires);
   CREATE TABLE IF NOT EXISTS ${s}.${p}doc_counts (
     id integer PRIMARY KEY CHECK (id = 1),
     live bigint NOT NULL,
     deleted bigint NOT NULL
   );
   INSERT INTO ${s}.${p}doc_counts (id, live, deleted) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING;`;
}
