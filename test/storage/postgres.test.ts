/**
 * The PostgreSQL backend against a throwaway cluster: the shared Store contract, then what only a
 * shared server shows: two stores (two "nodes") racing on one schema with readers following the
 * feed, remote commit notifications, schema versions, and an outage in the middle.
 */
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { HttpError } from '../../src/errors.ts';
import { openPostgresStore, planConnection, type PostgresStore } from '../../src/storage/postgres/index.ts';
import pg from 'pg';
import { MIGRATIONS, SCHEMA_VERSION, migrate, type Migration } from '../../src/storage/postgres/schema.ts';
import type { RemoteCommit, Store } from '../../src/storage/store.ts';
import { DB_NAME, USERS, startPgCluster, type PgCluster } from '../helpers/postgres.ts';
import { digestOf, docWrite, linearTree, md5Of, storeContract } from './contract.ts';
import { collectionsContract } from './collections.ts';

const cluster: PgCluster = await startPgCluster();
after(() => cluster.stop());

let n = 0;
const schemas = new WeakMap<Store, string>();

function open(schema: string, extra: Partial<Parameters<typeof openPostgresStore>[0]> = {}): Promise<PostgresStore> {
  return openPostgresStore({
    spec: { host: '127.0.0.1', port: cluster.port, database: DB_NAME },
    certpath: cluster.certs.clientCert, keypath: cluster.certs.clientKey, cacertpath: cluster.certs.caCert,
    schema, poolSize: 12, ...extra,
  });
}

async function openContract(): Promise<PostgresStore> {
  const schema = `contract_${++n}`;
  const store = await open(schema);
  schemas.set(store, schema);
  return store;
}

async function closeContract(store: Store): Promise<void> {
  await store.close();
  await cluster.admin(`DROP SCHEMA IF EXISTS "${schemas.get(store)}" CASCADE`);
}

storeContract('PostgresStore (TLS, client certificate)', openContract, closeContract);
// The same contract for a named collection's store: its own tables, the schema's shared sequence.
storeContract('PostgresStore', openContract, closeContract, { collection: ['inventory', 'airline'] });

collectionsContract('PostgresStore', openContract, closeContract, async (store) => {
  const schema = schemas.get(store)!;
  await store.close();
  const again = await open(schema);
  schemas.set(again, schema);
  return again;
});

describe('PostgresStore: several nodes on one schema', () => {
  let a: PostgresStore;
  let b: PostgresStore;
  before(async () => {
    [a, b] = await Promise.all([open('nodes'), open('nodes')]);
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  it('the access version is shared: a grant made on one node moves it on the other; plain document writes do not', async () => {
    const v0 = await b.accessVersion();
    await a.commit([docWrite('av-plain', 0, { channels: ['c'] })]);
    assert.equal(await b.accessVersion(), v0, 'a document write that grants nothing');
    await a.commit([{ ...docWrite('av-grant', 0), grants: [{ grantee: 'ann', kind: 'channel' as const, value: 'c' }] }]);
    const v1 = await b.accessVersion();
    assert.notEqual(v1, v0, 'a grant on A');
    await a.putPrincipal({ kind: 'role', name: 'av-role', adminChannels: {}, adminRoles: {}, disabled: false });
    assert.notEqual(await b.accessVersion(), v1, 'a role save on A');
  });

  it('both nodes migrate concurrently to one schema and see the same uuid', async () => {
    assert.equal(await a.uuid(), await b.uuid());
    const v = await cluster.admin('SELECT max(version) AS v FROM nodes.schema_migrations');
    assert.equal(Number(v.rows[0].v), SCHEMA_VERSION);
  });

  it('concurrent writers on both nodes, readers following the feed: no gap, no duplicate, in order', async () => {
    const start = await a.lastSeq();
    const WRITERS = 6;
    const PER_WRITER = 60;
    let writing = true;
    const acknowledged = new Set<number>();
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      const store = w % 2 ? b : a;
      for (let i = 0; i < PER_WRITER; i++) {
        // Mixed batch sizes so that transactions of different lengths interleave.
        const size = 1 + ((i + w) % 3);
        const res = await store.commit(Array.from({ length: size }, (_, k) => docWrite(`w${w}-${i}-${k}`, 0, { channels: [`ch${k}`] })));
        for (const r of res) if (r.ok) acknowledged.add(r.seq);
      }
    });
    /** Follows the feed as a changes reader does: `until` = committed last seq, then continue from the last row. */
    const reader = async (store: PostgresStore, channels?: string[]) => {
      const seen: number[] = [];
      let since = start;
      for (;;) {
        const done = !writing;
        const until = await store.lastSeq();
        const rows = await store.changes({ since, until, channels, limit: 50 });
        for (const r of rows) if (seen[seen.length - 1] !== r.seq) seen.push(r.seq);
        if (rows.length) since = rows[rows.length - 1].seq;
        else if (done) return seen;
        else since = Math.max(since, until);
        if (rows.length === 0) await new Promise((r) => setTimeout(r, 1));
      }
    };
    const readers = [reader(a), reader(b), reader(a), reader(b, ['ch0', 'ch1', 'ch2'])];
    await Promise.all(writers);
    writing = false;
    const results = await Promise.all(readers);
    const total = WRITERS * PER_WRITER * 2; // sizes 1,2,3 in turn: 2 on average
    assert.equal(acknowledged.size, total);
    const expected = Array.from({ length: total }, (_, i) => start + i + 1);
    assert.deepEqual([...acknowledged].sort((x, y) => x - y), expected, 'sequences are gap-free');
    for (const seen of results) assert.deepEqual(seen, expected, 'each reader saw every sequence exactly once, in order');
  });

  it('a commit on one node is reported to the other node\'s watchers, with its channels', async () => {
    const got: RemoteCommit[] = [];
    const stop = b.watch((c) => got.push(c));
    try {
      await new Promise((r) => setTimeout(r, 300)); // LISTEN is up
      await a.commit([docWrite('remote-1', 0, { channels: ['red', 'blue'] })]);
      const deadline = Date.now() + 5000;
      while (!got.some((c) => c.channels.includes('red')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      const hit = got.find((c) => c.channels.includes('red'));
      assert.ok(hit, 'notified');
      assert.deepEqual([...hit.channels].sort(), ['blue', 'red']);
      // Grants and principal changes report their grantees.
      got.length = 0;
      await a.commit([{ ...docWrite('granting', 0), grants: [{ grantee: 'zed', kind: 'channel', value: 'z' }] }]);
      await a.putPrincipal({ kind: 'role', name: 'editors', adminChannels: {}, adminRoles: {}, disabled: false });
      await a.deletePrincipal('role', 'editors');
      const until = Date.now() + 5000;
      const grantees = () => new Set(got.flatMap((c) => c.grantees));
      while (!(grantees().has('zed') && grantees().has('role:editors')) && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.ok(grantees().has('zed'));
      assert.ok(grantees().has('role:editors'));
    } finally {
      stop();
    }
  });

  it('a collection made on one node is opened by the other, with its documents and grants', async () => {
    const ax = await a.collection('inventory', 'made-on-a');
    const s1 = (await ax.commit([{ ...docWrite('doc', 0, { channels: ['red'] }), grants: [{ grantee: 'nina', kind: 'channel', value: 'red' }] }]))[0];
    assert.ok(s1.ok);
    assert.ok((await b.listCollections()).some((c) => c.scope === 'inventory' && c.name === 'made-on-a'));
    // B had never named it: its grants count for B's grantsTo before B opens it.
    assert.deepEqual((await b.grantsTo(['nina'])).map((g) => [g.collection, g.value]), [['inventory.made-on-a', 'red']]);
    const bx = await b.collection('inventory', 'made-on-a');
    assert.equal((await bx.getDoc('doc'))?.seq, s1.seq);
    assert.deepEqual((await bx.changes({ since: 0, channels: ['red'] })).map((r) => r.id), ['doc']);
    assert.equal(await b.getDoc('doc'), undefined, 'not in the default collection');
    assert.deepEqual(await bx.docCounts(), { live: 1, deleted: 0 });
  });

  it('both nodes creating the same collections at once succeed, and share one set of tables', async () => {
    const names = Array.from({ length: 6 }, (_, i) => `race${i}`);
    const [onA, onB] = await Promise.all([
      Promise.all(names.map((nm) => a.collection('racing', nm))),
      Promise.all(names.map((nm) => b.collection('racing', nm))),
    ]);
    const registered = await cluster.admin("SELECT name, count(*) AS n FROM nodes.collections WHERE scope = 'racing' GROUP BY name ORDER BY name");
    assert.deepEqual(registered.rows.map((r) => [r.name, Number(r.n)]), names.map((nm) => [nm, 1]));
    for (let i = 0; i < names.length; i++) {
      const [r] = await onA[i].commit([docWrite(`on-a-${i}`, 0)]);
      assert.ok(r.ok);
      assert.equal((await onB[i].getDoc(`on-a-${i}`))?.seq, r.seq, `${names[i]}: B reads what A wrote`);
      const [r2] = await onB[i].commit([docWrite(`on-a-${i}`, r.seq, { rev: '2-b' })]);
      assert.ok(r2.ok);
      assert.equal((await onA[i].getDoc(`on-a-${i}`))?.rev, '2-b');
    }
  });

  it('commits and purges racing in one named collection on both nodes: none fails, and its counts stay those of its documents', async () => {
    const [ca, cb] = await Promise.all([a.collection('inventory', 'churn'), b.collection('inventory', 'churn')]);
    const grant = (i: number) => [{ grantee: `churner${i % 3}`, kind: 'channel' as const, value: `c${i}` }];
    // Documents to purge, half of them granting (a purge that revokes grants also takes a sequence).
    const seed = await ca.commit(Array.from({ length: 40 }, (_, i) => ({ ...docWrite(`p${i}`, 0, { channels: ['x'] }), ...(i % 2 ? { grants: grant(i) } : {}) })));
    assert.ok(seed.every((r) => r.ok));
    const work = [
      ...Array.from({ length: 40 }, (_, i) => (i % 2 ? ca : cb).purge(`p${i}`)),
      ...Array.from({ length: 20 }, (_, i) => (i % 2 ? cb : ca).commit([
        { ...docWrite(`n${i}`, 0, { channels: ['x'], deleted: i % 5 === 0 }), grants: grant(i) }, docWrite(`m${i}`, 0)])),
    ];
    const results = await Promise.allSettled(work);
    assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
    const docs = await cb.allDocs({ includeDeleted: true });
    assert.deepEqual(docs.filter((d) => d.id.startsWith('p')), [], 'every purge took');
    assert.deepEqual(await ca.docCounts(), { live: docs.filter((d) => !d.deleted).length, deleted: docs.filter((d) => d.deleted).length });
    assert.equal(docs.length, 40);
  });

  it('a commit in a named collection wakes the other node\'s watchers for that collection', async () => {
    const got: RemoteCommit[] = [];
    const stop = b.watch((c) => got.push(c));
    try {
      await new Promise((r) => setTimeout(r, 300)); // LISTEN is up
      // Made after B started watching: B learns of it from the registry.
      const ax = await a.collection('inventory', 'watched');
      await ax.commit([docWrite('w1', 0, { channels: ['red', 'green'] })]);
      await a.commit([docWrite('w1', 0, { channels: ['red'] })]);
      const deadline = Date.now() + 5000;
      const named = () => got.find((c) => c.collection === 'inventory.watched');
      const plain = () => got.find((c) => c.collection === undefined && c.channels.includes('red'));
      while (!(named() && plain()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual([...named()!.channels].sort(), ['green', 'red']);
      assert.deepEqual(named()!.grantees, []);
      assert.deepEqual(plain()!.channels, ['red'], 'the default collection\'s wake-up names only its own channels');
      assert.ok(!got.some((c) => c.collection === undefined && c.channels.includes('green')), 'green was only touched in the named collection');
    } finally {
      stop();
    }
  });

  it('a principal deletion on one node changes the access version seen by the other', async () => {
    await a.putPrincipal({ kind: 'role', name: 'gone', adminChannels: { x: 1 }, adminRoles: {}, disabled: false });
    const before = await b.accessVersion();
    assert.equal(await a.deletePrincipal('role', 'gone'), true);
    assert.notEqual(await b.accessVersion(), before);
    assert.equal(await b.getPrincipal('role', 'gone'), undefined);
  });
});

/**
 * The default collection's rows as an old schema had them (the columns every version since has),
 * for a comparison across a migration.
 */
async function defaultRows(schema: string): Promise<Record<string, Record<string, unknown>[]>> {
  const all = async (sql: string) => (await cluster.admin(sql.replaceAll('S.', `"${schema}".`))).rows as Record<string, unknown>[];
  return {
    docs: await all('SELECT id, tree, rev, deleted, seq, channels, expiry FROM S.docs ORDER BY id COLLATE "C"'),
    revs: await all('SELECT doc_id, rev, deleted, body, atts, channels FROM S.revs ORDER BY doc_id COLLATE "C", rev'),
    channel_index: await all('SELECT * FROM S.channel_index ORDER BY channel, doc_id COLLATE "C"'),
    local_docs: await all('SELECT * FROM S.local_docs ORDER BY id'),
    grants: await all('SELECT * FROM S.grants ORDER BY doc_id, grantee, kind, value'),
  };
}

describe('PostgresStore: schema versions', () => {
  it('refuses a schema written by a newer Syncgate, naming both versions', async () => {
    const s = await open('newer');
    await s.close();
    await cluster.admin('INSERT INTO newer.schema_migrations (version) VALUES ($1)', [SCHEMA_VERSION + 1]);
    await assert.rejects(open('newer'), new RegExp(`version ${SCHEMA_VERSION + 1}, newer than this Syncgate supports \\(${SCHEMA_VERSION}\\)`));
  });

  it('a version-2 schema (before doc counters) opens, and its counts are those of its documents', async () => {
    // Written by Syncgate at schema 2 (pg_dump): live1-3, back (deleted then resurrected),
    // conflicted (two leaves), gone and tomb (deleted), purged (gone entirely).
    // Loaded as the user the stores connect as, so that it owns the schema as if it had made it.
    await cluster.admin(`SET ROLE ${USERS.cert};\n` + readFileSync(fileURLToPath(new URL('../fixtures/postgres-schema-v2.sql', import.meta.url)), 'utf8'));
    assert.equal((await cluster.admin('SELECT max(version) AS v FROM fixture_v2.schema_migrations')).rows[0].v, 2);
    const before = await defaultRows('fixture_v2');
    // Upgraded to the collections registry (schema 7): the old documents are the default collection,
    // served as they were, and a named collection can be made beside them.
    const first = await open('fixture_v2');
    try {
      assert.deepEqual((await first.allDocs({ includeDeleted: true })).map((r) => [r.id, r.rev, r.seq, r.deleted, JSON.stringify(r.channels)]),
        before.docs.map((d) => [d.id, d.rev, Number(d.seq), d.deleted, d.channels]));
      assert.deepEqual((await first.changes({ since: 0, channels: ['a'] })).map((r) => [r.id, r.seq, r.removed ?? null]),
        before.channel_index.map((c) => [c.doc_id, Number(c.seq), c.removed ? 'a' : null]).sort((x, y) => Number(x[1]) - Number(y[1])));
      assert.equal((await first.getRevision('conflicted', '2-aaaa'))?.body, '{"v":1}');
      assert.deepEqual(await first.listCollections(), []);
      const last = await first.lastSeq();
      const air = await first.collection('inventory', 'airline');
      assert.deepEqual(await air.commit([docWrite('live1', 0, { channels: ['a'] })]), [{ ok: true, seq: last + 1 }]);
      assert.deepEqual(await air.docCounts(), { live: 1, deleted: 0 });
      assert.deepEqual(await first.docCounts(), { live: 5, deleted: 2 });
    } finally {
      await first.close();
    }
    assert.deepEqual(await defaultRows('fixture_v2'), before, 'no row of the default collection was rewritten');
    const s = await open('fixture_v2');
    try {
      assert.equal((await (await s.collection('inventory', 'airline')).getDoc('live1'))?.rev, '1-a', 'the named collection survives a reopen');
      assert.deepEqual(await s.docCounts(), { live: 5, deleted: 2 });
      assert.equal((await s.getDoc('conflicted'))?.rev, '2-bbbb');
      const gone = (await s.getDoc('gone'))!;
      await s.commit([docWrite('gone', gone.seq, { rev: '3-g' })]);
      await s.commit([docWrite('new', 0)]);
      assert.deepEqual(await s.docCounts(), { live: 7, deleted: 1 });
      await s.purge('tomb');
      assert.deepEqual(await s.docCounts(), { live: 7, deleted: 0 });
    } finally {
      await s.close();
    }
    assert.equal((await cluster.admin('SELECT max(version) AS v FROM fixture_v2.schema_migrations')).rows[0].v, SCHEMA_VERSION);
  });

  it('a version 4 schema (before tombstone times) opens: its tombstones count from the upgrade, its documents stay', async () => {
    const s = await open('v2');
    const a = (await s.commit([docWrite('gone', 0)]))[0] as { seq: number };
    await s.commit([docWrite('gone', a.seq, { rev: '2-g', deleted: true }), docWrite('live', 0)]);
    await s.close();
    // Back to the version 4 schema exactly (migration 5 only added the column and its index, 6 and 7 a table each).
    await cluster.admin('DROP TABLE v2.collections');
    await cluster.admin('DROP TABLE v2.old_revs');
    await cluster.admin('ALTER TABLE v2.docs DROP COLUMN tombstoned_at');
    await cluster.admin('DELETE FROM v2.schema_migrations WHERE version >= 5');
    const before = Math.floor(Date.now() / 1000);
    const again = await open('v2');
    try {
      assert.equal((await again.getDoc('gone'))?.deleted, true);
      assert.equal((await again.getDoc('live'))?.rev, '1-a');
      assert.deepEqual(await again.tombstonesBefore(before - 1, 10), []);
      assert.deepEqual(await again.tombstonesBefore(Math.floor(Date.now() / 1000) + 1, 10), ['gone']);
      const v = await cluster.admin('SELECT max(version) AS v FROM v2.schema_migrations');
      assert.equal(Number(v.rows[0].v), SCHEMA_VERSION);
    } finally {
      await again.close();
    }
  });

  it('a schema at version 5 (before old revision bodies) is upgraded on open and keeps its data', async () => {
    const s = await open('v5old');
    const [r1] = await s.commit([docWrite('doc', 0, { rev: '1-a', body: '{"v":1}' })]);
    assert.equal(r1?.ok, true);
    await s.close();
    // Back to exactly what schema 5 had: migrations 6 and 7 only added the old_revs and collections tables.
    await cluster.admin('DROP TABLE v5old.collections');
    await cluster.admin('DROP TABLE v5old.old_revs');
    await cluster.admin('DELETE FROM v5old.schema_migrations WHERE version > 5');
    const again = await open('v5old');
    try {
      assert.equal((await again.getRevision('doc', '1-a'))?.body, '{"v":1}');
      const [r2] = await again.commit([docWrite('doc', 1, { rev: '2-a', retireBodies: [{ rev: '1-a', until: 1000 }] })]);
      assert.equal(r2?.ok, true);
      assert.equal((await again.getOldRevision('doc', '1-a', 0))?.body, '{"v":1}');
      const v = await cluster.admin('SELECT max(version) AS v FROM v5old.schema_migrations');
      assert.equal(Number(v.rows[0].v), SCHEMA_VERSION);
    } finally {
      await again.close();
    }
  });

  it('opening twice migrates once; a schema made by an operator for a user without CREATE on the database is used', async () => {
    await cluster.admin(`CREATE SCHEMA operator_made AUTHORIZATION ${USERS.noPermission}`);
    const s = await open('operator_made', { certpath: undefined, keypath: undefined, username: USERS.noPermission, password: 'pw-secret' });
    await s.commit([docWrite('x', 0)]);
    await s.close();
    const again = await open('operator_made', { certpath: undefined, keypath: undefined, username: USERS.noPermission, password: 'pw-secret' });
    assert.equal((await again.getDoc('x'))?.rev, '1-a');
    await again.close();
  });
});

describe('PostgresStore: named collection tables', () => {
  /** The per-collection tables, by their default names (a named collection also has doc_counts). */
  const TABLES = ['docs', 'revs', 'channel_index', 'local_docs', 'grants', 'old_revs'];

  /** Columns and indexes of one table, with the schema and collection prefix taken out of every name. */
  async function shape(schema: string, table: string, prefix: string) {
    const columns = await cluster.admin(
      `SELECT column_name, data_type, is_nullable, column_default, collation_name FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [schema, prefix + table]);
    assert.ok(columns.rows.length > 0, `table ${prefix}${table} exists`);
    const indexes = await cluster.admin('SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2', [schema, prefix + table]);
    return {
      columns: columns.rows,
      indexes: indexes.rows.map((r) => String(r.indexdef).replaceAll(`${schema}.`, '').replaceAll(prefix, '')).sort(),
    };
  }

  /** Applies `extra` after every migration, as a later Syncgate would, as the owner of the schema. */
  async function migrateFurther(schema: string, extra: Migration): Promise<void> {
    const c = new pg.Client({ host: cluster.dir, port: cluster.port, user: 'postgres', database: DB_NAME });
    await c.connect();
    try {
      await migrate(c, schema, () => 'unused', SCHEMA_VERSION + 1, [...MIGRATIONS, extra]);
    } finally {
      await c.end();
    }
  }

  async function columnsOf(schema: string, table: string): Promise<string[]> {
    const r = await cluster.admin('SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [schema, table]);
    return r.rows.map((x) => String(x.column_name));
  }

  it('have the shape the migrations gave the default tables', async () => {
    const s = await open('shapes');
    try {
      await s.collection('inventory', 'airline');
      await s.collection('inventory', 'hotel');
    } finally {
      await s.close();
    }
    const ids = (await cluster.admin('SELECT id FROM shapes.collections ORDER BY id')).rows.map((r) => Number(r.id));
    assert.equal(ids.length, 2);
    for (const id of ids) {
      for (const t of TABLES) assert.deepEqual(await shape('shapes', t, `c${id}_`), await shape('shapes', t, ''), `c${id}_${t} is shaped like ${t}`);
    }
    const named = await cluster.admin("SELECT tablename FROM pg_tables WHERE schemaname = 'shapes' AND tablename LIKE $1", [`c${ids[0]}\_%`]);
    assert.deepEqual(named.rows.map((r) => r.tablename).sort(), [...TABLES, 'doc_counts'].map((t) => `c${ids[0]}_${t}`).sort());
  });

  it('a migration written per collection changes every collection\'s tables and the default ones', async () => {
    const s = await open('runner');
    await (await s.collection('inventory', 'hotel')).commit([docWrite('h', 0)]);
    await s.collection('inventory', 'airline');
    await s.close();
    await migrateFurther('runner', {
      shared: 'CREATE TABLE S.future_shared (x integer);',
      perCollection: 'ALTER TABLE S.{c}docs ADD COLUMN future text; CREATE INDEX {c}docs_by_future ON S.{c}docs (future);',
    });
    assert.equal(Number((await cluster.admin('SELECT max(version) AS v FROM runner.schema_migrations')).rows[0].v), SCHEMA_VERSION + 1);
    const ids = (await cluster.admin('SELECT id FROM runner.collections ORDER BY id')).rows.map((r) => Number(r.id));
    for (const p of ['', ...ids.map((id) => `c${id}_`)]) {
      assert.ok((await columnsOf('runner', `${p}docs`)).includes('future'), `${p}docs has the new column`);
      assert.equal((await cluster.admin("SELECT 1 FROM pg_indexes WHERE schemaname = 'runner' AND indexname = $1", [`${p}docs_by_future`])).rowCount, 1);
    }
    assert.equal((await cluster.admin("SELECT 1 FROM pg_tables WHERE schemaname = 'runner' AND tablename = 'future_shared'")).rowCount, 1);
  });

  it('a per-collection migration that fails on one collection changes none, and the schema stays at its version', async () => {
    const s = await open('runner_fail');
    await s.collection('inventory', 'hotel');
    await s.collection('inventory', 'airline');
    await s.close();
    const ids = (await cluster.admin('SELECT id FROM runner_fail.collections ORDER BY id')).rows.map((r) => Number(r.id));
    // Something the migration trips on in the last named collection only.
    await cluster.admin(`ALTER TABLE runner_fail.c${ids[1]}_docs ADD COLUMN future text`);
    await assert.rejects(migrateFurther('runner_fail', { perCollection: 'ALTER TABLE S.{c}docs ADD COLUMN future text;' }), /already exists/);
    assert.equal(Number((await cluster.admin('SELECT max(version) AS v FROM runner_fail.schema_migrations')).rows[0].v), SCHEMA_VERSION);
    for (const t of ['docs', `c${ids[0]}_docs`]) assert.ok(!(await columnsOf('runner_fail', t)).includes('future'), `${t} was left as it was`);
    const again = await open('runner_fail');
    try {
      assert.deepEqual((await again.listCollections()).map((c) => c.name), ['airline', 'hotel']);
    } finally {
      await again.close();
    }
  });
});

describe('PostgresStore: schema 3, md5 digests of attachments', () => {
  /** A schema as Syncgate left it at version 2 (before md5 digests): the old migrations only, then rows in their old form. */
  async function schema2(schema: string): Promise<{ a: Buffer; b: Buffer }> {
    const a = Buffer.from('attachment A, stored before md5 digests');
    const b = Buffer.from([0, 1, 2, 3, 0xfe, 0xff]);
    const c = new pg.Client({ host: cluster.dir, port: cluster.port, user: 'postgres', database: DB_NAME });
    await c.connect();
    try {
      await migrate(c, schema, () => 'fixture-uuid', 2);
      const s = `"${schema}"`;
      const meta = (d: Buffer, revpos: number) => ({ content_type: 'application/octet-stream', digest: digestOf(d), length: d.length, revpos });
      await c.query(`INSERT INTO ${s}.attachments (digest, data) VALUES ($1, $2), ($3, $4)`, [digestOf(a), a, digestOf(b), b]);
      await c.query(`INSERT INTO ${s}.docs (id, tree, rev, deleted, seq, channels) VALUES ('old', $1, '2-b', false, 1, '[]')`, [JSON.stringify(linearTree('2-b'))]);
      await c.query(`INSERT INTO ${s}.revs (doc_id, rev, deleted, body, atts, channels) VALUES ('old', '2-b', false, '{"v":2}', $1, '[]')`,
        [JSON.stringify({ 'a.bin': meta(a, 1), 'b.bin': meta(b, 2), 'lost.bin': { digest: 'sha1-lost', length: 1, revpos: 1 } })]);
      await c.query(`UPDATE ${s}.seq_counter SET last_seq = 1`);
      // The store's user owns what an older Syncgate would have created for it.
      await c.query(`ALTER SCHEMA ${s} OWNER TO ${USERS.cert}`);
      const tables = await c.query<{ t: string }>('SELECT tablename AS t FROM pg_tables WHERE schemaname = $1', [schema]);
      for (const { t } of tables.rows) await c.query(`ALTER TABLE ${s}."${t}" OWNER TO ${USERS.cert}`);
    } finally {
      await c.end();
    }
    return { a, b };
  }

  it('a version-2 schema is migrated: stored bytes get their md5, and every _attachments entry its md5', async () => {
    const { a, b } = await schema2('old_atts');
    const s = await open('old_atts');
    try {
      const rev = await s.getRevision('old', '2-b');
      assert.deepEqual(rev?.attachments, {
        'a.bin': { content_type: 'application/octet-stream', digest: digestOf(a), length: a.length, revpos: 1, md5: md5Of(a) },
        'b.bin': { content_type: 'application/octet-stream', digest: digestOf(b), length: b.length, revpos: 2, md5: md5Of(b) },
        'lost.bin': { digest: 'sha1-lost', length: 1, revpos: 1 },
      });
      assert.deepEqual(await s.findAttachments([md5Of(b)]), [{ digest: digestOf(b), md5: md5Of(b), length: b.length }]);
      assert.equal(await s.lastSeq(), 1);
      assert.equal(await s.uuid(), 'fixture-uuid');
    } finally {
      await s.close();
    }
    const v = await cluster.admin('SELECT max(version) AS v FROM old_atts.schema_migrations');
    assert.equal(Number(v.rows[0].v), SCHEMA_VERSION);
  });

  it('a failing migration leaves the schema at its old version, untouched', async () => {
    await schema2('old_fail');
    // Something the migration's CREATE INDEX trips on, after its UPDATEs have run.
    await cluster.admin('CREATE TABLE old_fail.attachments_by_md5 (x int)');
    await cluster.admin(`ALTER TABLE old_fail.attachments_by_md5 OWNER TO ${USERS.cert}`);
    await assert.rejects(open('old_fail'), /attachments_by_md5/);
    const v = await cluster.admin('SELECT max(version) AS v FROM old_fail.schema_migrations');
    assert.equal(Number(v.rows[0].v), 2);
    const cols = await cluster.admin("SELECT column_name FROM information_schema.columns WHERE table_schema = 'old_fail' AND table_name = 'attachments' ORDER BY ordinal_position");
    assert.deepEqual(cols.rows.map((r) => r.column_name), ['digest', 'data']);
    const atts = await cluster.admin("SELECT atts FROM old_fail.revs WHERE doc_id = 'old'");
    assert.ok(!String(atts.rows[0].atts).includes('md5'));
  });
});

describe('PostgresStore: an outage', () => {
  it('requests fail with 503 while PostgreSQL is down, and work again once it is back, without reopening', async () => {
    const s = await open('outage');
    try {
      await s.commit([docWrite('before', 0)]);
      await cluster.pause('fast');
      try {
        const err = await s.commit([docWrite('during', 0)]).then(() => undefined, (e: unknown) => e);
        assert.ok(err instanceof HttpError, `an HttpError, got ${String(err)}`);
        assert.equal(err.status, 503);
        await assert.rejects(s.getDoc('before'), (e: unknown) => e instanceof HttpError && e.status === 503);
      } finally {
        await cluster.resume();
      }
      assert.equal((await s.getDoc('before'))?.rev, '1-a');
      const [r] = await s.commit([docWrite('after', 0)]);
      assert.equal(r.ok, true);
    } finally {
      await s.close();
    }
  });
});

describe('planConnection: which TLS and authentication a config gets', () => {
  const target = { host: 'db.example.com', port: 5432, database: 'sg' };
  const files = () => ({ certpath: cluster.certs.clientCert, keypath: cluster.certs.clientKey, cacertpath: cluster.certs.caCert });

  it('a certificate wins over a password, with a warning; the user defaults to the certificate CN', () => {
    const p = planConnection({ spec: target, ...files(), password: 'pw' });
    assert.equal(p.user, USERS.cert);
    assert.equal(p.config.password, undefined);
    assert.match(p.auth, /X\.509 client certificate \(CN=sg_cert\)/);
    assert.ok(p.warnings.some((w) => /certificate is used and the password is ignored/.test(w)));
    assert.equal(p.tls, true);
    const ssl = p.config.ssl as { rejectUnauthorized?: boolean; ca?: Buffer };
    assert.equal(ssl.rejectUnauthorized, true);
    assert.ok(ssl.ca);
  });

  it('config credentials win over the URL\'s; no CA means no TLS, with a warning', () => {
    const p = planConnection({ spec: { ...target, username: 'url-user', password: 'url-pw' }, username: 'cfg-user', password: 'cfg-pw' });
    assert.equal(p.user, 'cfg-user');
    assert.equal(p.config.password, 'cfg-pw');
    assert.equal(p.tls, false);
    assert.ok(p.warnings.some((w) => /not encrypted/.test(w)));
  });

  it('sslmode=require encrypts without verifying (warned); verify-full needs a CA; disable refuses TLS files', () => {
    const p = planConnection({ spec: { ...target, sslmode: 'require' }, username: 'u' });
    assert.equal((p.config.ssl as { rejectUnauthorized?: boolean }).rejectUnauthorized, false);
    assert.ok(p.warnings.some((w) => /not verified/.test(w)));
    assert.throws(() => planConnection({ spec: { ...target, sslmode: 'verify-full' }, username: 'u' }), /needs cacertpath/);
    assert.throws(() => planConnection({ spec: { ...target, sslmode: 'disable' }, username: 'u', cacertpath: cluster.certs.caCert }), /sslmode=disable/);
  });

  it('missing or unreadable files and a missing user are one clear line', () => {
    assert.throws(() => planConnection({ spec: target, username: 'u', cacertpath: '/nonexistent/ca.pem' }), /cacertpath \/nonexistent\/ca\.pem cannot be read \(no such file\)/);
    assert.throws(() => planConnection({ spec: target, cacertpath: cluster.certs.caCert, certpath: cluster.certs.clientKey, keypath: cluster.certs.clientKey }), /is not a PEM certificate/);
    assert.throws(() => planConnection({ spec: target }), /no PostgreSQL user/);
  });
});
