/**
 * The PostgreSQL backend: one PostgreSQL database shared by several Syncgate nodes. Each Syncgate
 * database lives in a schema named after its bucket. Sequence allocation (commit.ts) keeps
 * sequence order equal to commit order across nodes; notify.ts wakes other nodes' feeds.
 * A PostgreSQL outage during a request is an HttpError 503; the pool reconnects by itself.
 *
 * The store is its own default collection (collection.ts, on the original tables); named
 * collections get tables of their own, made the first time any node names them, and share the
 * schema's sequence counter, attachment bytes, principals and sessions.
 */
import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { CollectionStore, GrantRow, PrincipalKind, PrincipalPage, PrincipalRecord, RemoteCommit, SessionRecord, Store } from '../store.ts';
import { PgCollection, PgShared, collectionTables } from './collection.ts';
import {
  type ConnectPlan, PostgresConnectError, type PostgresConnectOptions, describeConnectError, planConnection,
} from './connect.ts';
import { CommitWatcher } from './notify.ts';
import { SchemaTooNewError, collectionPrefix, collectionTablesSql, ident, migrate, schemaLockKey } from './schema.ts';

export { PostgresConnectError, planConnection, type PostgresConnectOptions } from './connect.ts';
export { storageError } from './collection.ts';

export interface PostgresStoreOptions extends PostgresConnectOptions {
  /** The schema holding this database's tables (the Syncgate bucket name). */
  schema: string;
  log?: { info(msg: string): void; warn(msg: string): void };
}

/** bigint (int8) columns as numbers: sequences stay far below 2^53. Per pool, not global. */
const TYPES = {
  getTypeParser: ((oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')))
} as unknown as pg.CustomTypesConfig;

/** Connects, creates or upgrades the schema, and returns the store. Failures are PostgresConnectError with one clear line. */
export async function openPostgresStore(o: PostgresStoreOptions): Promise<PostgresStore> {
  const plan = planConnection(o);
  for (const w of plan.warnings) o.log?.warn(`Bucket: ${w}`);
  const pool = new pg.Pool({ ...plan.config, types: TYPES });
  // An idle connection dropped by the server (restart, failover) must not crash the process.
  pool.on('error', (err) => o.log?.warn(`Bucket: idle PostgreSQL connection lost: ${err.message}`));
  try {
    const client = await pool.connect();
    try {
      await migrate(client, o.schema, () => randomUUID().replace(/-/g, ''));
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => {});
    if (err instanceof PostgresConnectError) throw err;
    if (err instanceof SchemaTooNewError) throw new PostgresConnectError(err.message);
    throw new PostgresConnectError(describeConnectError(err, plan, o));
  }
  return new PostgresStore(pool, o.schema, plan, o.log);
}

/** A named collection as the registry lists it. */
interface Registered { id: number; scope: string; name: string }

export class PostgresStore extends PgCollection implements Store {
  readonly plan: ConnectPlan;
  private readonly schema: string;
  private readonly w: { meta: string; principals: string; sessions: string; registry: string };
  private readonly watcher: CommitWatcher;
  /** Named collections this process has opened (or is opening), by `scope.name`. */
  private readonly named = new Map<string, Promise<PgCollection>>();
  private closed = false;

  constructor(pool: pg.Pool, schema: string, plan: ConnectPlan, log?: { info(msg: string): void; warn(msg: string): void }) {
    const s = ident(schema);
    // One NOTIFY channel per schema; identifiers are limited to 63 bytes, so a hash names it.
    const channel = `syncgate_${createHash('sha1').update(schema).digest('hex').slice(0, 24)}`;
    super(new PgShared(pool, s, channel, randomUUID()), collectionTables(s, ''));
    this.plan = plan;
    this.schema = schema;
    this.w = { meta: `${s}.meta`, principals: `${s}.principals`, sessions: `${s}.sessions`, registry: `${s}.collections` };
    this.watcher = new CommitWatcher({
      pool, config: { ...plan.config, types: TYPES } as pg.ClientConfig, channel, node: this.sh.node,
      counterSql: `SELECT last_seq FROM ${this.t.counter} WHERE id = 1`,
      range: (from, to) => this.remoteRange(from, to),
      log: (m) => log?.warn(`Bucket: ${m}`),
    });
  }

  /**
   * What sequences (from, to] touched: the default collection's channels with every grantee whose
   * access changed, then each named collection's channels with its `scope.name`. The registry is
   * read first: a collection is registered before any commit in it, so every commit up to `to`
   * (already committed when the watcher learned of `to`) is in a listed collection.
   */
  private async remoteRange(from: number, to: number): Promise<RemoteCommit[]> {
    const colls = await this.registry();
    const t = this.t;
    const named = colls.map((c) => `UNION SELECT DISTINCT channel, 'c', ${c.id} FROM ${this.sh.s}.${collectionPrefix(c.id)}channel_index
      WHERE seq > $1 AND seq <= $2`).join('\n');
    const r = await this.sh.pool.query<{ k: string; t: string; c: number }>(
      `SELECT DISTINCT channel AS k, 'c' AS t, 0 AS c FROM ${t.channels} WHERE seq > $1 AND seq <= $2
       UNION SELECT grantee, 'g', 0 FROM ${t.grantChanges} WHERE seq > $1 AND seq <= $2
       UNION SELECT CASE kind WHEN 'role' THEN 'role:' || name ELSE name END, 'g', 0 FROM ${this.w.principals} WHERE seq > $1 AND seq <= $2
       ${named}`, [from, to]);
    const own = r.rows.filter((x) => x.c === 0);
    const out: RemoteCommit[] = [{ channels: own.filter((x) => x.t === 'c').map((x) => x.k), grantees: own.filter((x) => x.t === 'g').map((x) => x.k) }];
    for (const c of colls) {
      const channels = r.rows.filter((x) => x.c === c.id).map((x) => x.k);
      if (channels.length) out.push({ channels, grantees: [], collection: `${c.scope}.${c.name}` });
    }
    return out;
  }

  /** Every named collection, from the registry: other nodes may have made some this one has not opened. */
  private async registry(c?: pg.PoolClient): Promise<Registered[]> {
    const sql = `SELECT id, scope, name FROM ${this.w.registry} ORDER BY id`;
    const r = c ? await c.query<Registered>(sql) : await this.q<Registered>(sql);
    return r.rows.map((x) => ({ id: Number(x.id), scope: x.scope, name: x.name }));
  }

  /**
   * The default collection is this store. A named one is looked up in the registry; the first node
   * to name it registers it and creates its tables in one transaction, under the schema's advisory
   * lock (the one migrations take), so two nodes creating it at once take turns and the second
   * finds it made. Cached per process.
   */
  async collection(scope: string, name: string): Promise<CollectionStore> {
    if (scope === '_default' && name === '_default') return this;
    // `scope.name` keys grants and wake-ups: a part that is empty or holds a dot would make it ambiguous.
    if (!/^[^.]+$/.test(scope) || !/^[^.]+$/.test(name)) throw new Error(`collection name "${scope}.${name}" needs two non-empty parts without dots`);
    const key = `${scope}.${name}`;
    let c = this.named.get(key);
    if (!c) {
      c = this.openCollection(scope, name);
      this.named.set(key, c);
      c.catch(() => this.named.delete(key)); // a failure (an outage) is not remembered
    }
    return c;
  }

  private async openCollection(scope: string, name: string): Promise<PgCollection> {
    const s = this.sh.s;
    const find = `SELECT id FROM ${this.w.registry} WHERE scope = $1 AND name = $2`;
    let id = (await this.q<{ id: number }>(find, [scope, name])).rows[0]?.id;
    if (id === undefined) {
      id = await this.sh.tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [schemaLockKey(this.schema)]);
        await c.query(`INSERT INTO ${this.w.registry} (scope, name) VALUES ($1, $2) ON CONFLICT (scope, name) DO NOTHING`, [scope, name]);
        const got = Number((await c.query<{ id: number }>(find, [scope, name])).rows[0].id);
        // IF NOT EXISTS: the tables of a registered collection are made in its registering transaction.
        await c.query(collectionTablesSql(s, collectionPrefix(got)));
        return got;
      });
    }
    return new PgCollection(this.sh, collectionTables(s, collectionPrefix(Number(id))));
  }

  async listCollections(): Promise<{ scope: string; name: string }[]> {
    const r = await this.q<{ scope: string; name: string }>(
      `SELECT scope, name FROM ${this.w.registry} ORDER BY scope COLLATE "C", name COLLATE "C"`);
    return r.rows.map((x) => ({ scope: x.scope, name: x.name }));
  }

  /**
   * Moves on principal saves and deletions and on grant changes made by any node, not on plain
   * document writes, so they leave cached access valid (it still costs this one query per check).
   */
  async accessVersion(): Promise<string> {
    const r = await this.q<{ a: string; d: string }>(`SELECT access_changes AS a, principal_deletions AS d FROM ${this.t.counter} WHERE id = 1`);
    return `${r.rows[0].a}:${r.rows[0].d}`;
  }

  watch(onCommit: (c: RemoteCommit) => void): () => void {
    return this.watcher.subscribe(onCommit);
  }

  async getPrincipal(kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    const r = await this.q<{ data: string; seq: number }>(`SELECT data, seq FROM ${this.w.principals} WHERE kind = $1 AND name = $2`, [kind, name]);
    const row = r.rows[0];
    return row ? { ...JSON.parse(row.data), kind, name, seq: row.seq } : undefined;
  }

  async listPrincipals(kind: PrincipalKind, page: PrincipalPage = {}): Promise<string[]> {
    const prefix = page.prefix ?? '';
    const sql = `SELECT name FROM ${this.w.principals} WHERE kind = $1 AND name >= $2 AND name > $3 AND left(name, $4) = $2
      ORDER BY name${page.limit ? ' LIMIT $5' : ''}`;
    const args: unknown[] = [kind, prefix, page.after ?? '', prefix.length];
    if (page.limit) args.push(page.limit);
    return (await this.q<{ name: string }>(sql, args)).rows.map((x) => x.name);
  }

  async putPrincipal(p: Omit<PrincipalRecord, 'seq'>): Promise<number> {
    const { kind, name, ...data } = p;
    const t = this.t;
    // One statement: the counter lock orders it with document commits (see commit.ts).
    const r = await this.q<{ last_seq: number }>(
      `WITH s AS (UPDATE ${t.counter} SET last_seq = last_seq + 1, access_changes = access_changes + 1 WHERE id = 1 RETURNING last_seq),
       p AS (INSERT INTO ${this.w.principals} (kind, name, data, seq) SELECT $1, $2, $3, s.last_seq FROM s
         ON CONFLICT (kind, name) DO UPDATE SET data = excluded.data, seq = excluded.seq)
       SELECT last_seq, pg_notify($4, $5 || ' ' || last_seq) FROM s`,
      [kind, name, JSON.stringify(data), this.sh.notifyChannel, this.sh.node]);
    return r.rows[0].last_seq;
  }

  async deletePrincipal(kind: PrincipalKind, name: string): Promise<boolean> {
    const t = this.t;
    return this.sh.tx(async (c) => {
      // The counter first, as every other writer locks it last: no lock cycle with putPrincipal.
      const s = await c.query<{ last_seq: number }>(
        `UPDATE ${t.counter} SET principal_deletions = principal_deletions + 1 WHERE id = 1 RETURNING last_seq`);
      const del = await c.query(`DELETE FROM ${this.w.principals} WHERE kind = $1 AND name = $2`, [kind, name]);
      if (!del.rowCount) return false;
      await c.query('SELECT pg_notify($1, $2)', [this.sh.notifyChannel, `${this.sh.node} ${s.rows[0].last_seq} ${kind} ${name}`]);
      return true;
    });
  }

  /** Grants of every collection's documents; rows of a named collection carry its `scope.name`. */
  async grantsTo(grantees: string[]): Promise<GrantRow[]> {
    if (grantees.length === 0) return [];
    const colls = await this.registry();
    const named = colls.map((c) => `UNION ALL SELECT doc_id, grantee, kind, value, seq, ${c.id}
      FROM ${this.sh.s}.${collectionPrefix(c.id)}grants WHERE grantee = ANY($1::text[])`).join('\n');
    const r = await this.q<{ doc_id: string; grantee: string; kind: 'channel' | 'role'; value: string; seq: number; c: number }>(
      `SELECT doc_id, grantee, kind, value, seq, 0 AS c FROM ${this.t.grants} WHERE grantee = ANY($1::text[]) ${named}`, [[...new Set(grantees)]]);
    const keys = new Map(colls.map((c) => [c.id, `${c.scope}.${c.name}`]));
    return r.rows.map((g) => ({
      docId: g.doc_id, grantee: g.grantee, kind: g.kind, value: g.value, seq: g.seq, ...(g.c ? { collection: keys.get(g.c)! } : {}),
    }));
  }

  async grantsChangedAt(grantees: string[]): Promise<Map<string, number>> {
    if (grantees.length === 0) return new Map();
    const r = await this.q<{ grantee: string; seq: number }>(
      `SELECT grantee, seq FROM ${this.t.grantChanges} WHERE grantee = ANY($1::text[])`, [[...new Set(grantees)]]);
    return new Map(r.rows.map((x) => [x.grantee, x.seq]));
  }

  async putSession(s: SessionRecord): Promise<void> {
    await this.q(`INSERT INTO ${this.w.sessions} (id, "user", expires, ttl) VALUES ($1, $2, $3, $4)
      ON CONFLICT (id) DO UPDATE SET "user" = excluded."user", expires = excluded.expires, ttl = excluded.ttl`, [s.id, s.user, s.expires, s.ttlMs]);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const r = await this.q<{ id: string; user: string; expires: number; ttl: number }>(`SELECT id, "user", expires, ttl FROM ${this.w.sessions} WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row ? { id: row.id, user: row.user, expires: row.expires, ttlMs: row.ttl } : undefined;
  }

  async deleteSession(id: string): Promise<boolean> {
    return ((await this.q(`DELETE FROM ${this.w.sessions} WHERE id = $1`, [id])).rowCount ?? 0) > 0;
  }

  async deleteUserSessions(user: string): Promise<number> {
    return (await this.q(`DELETE FROM ${this.w.sessions} WHERE "user" = $1`, [user])).rowCount ?? 0;
  }

  /**
   * One statement: the digests in use are read from the snapshot the delete runs in. A commit still
   * in flight that reuses an existing body by digest (no new bytes) is not seen by it: a narrow race
   * that Sync Gateway's mark-and-sweep has too for bodies marked before a reference lands.
   */
  async compactAttachments(dryRun: boolean): Promise<{ referenced: number; removed: number }> {
    const t = this.t;
    return this.sh.tx(async (c) => {
      // Every collection's revisions count, and so do retained old revisions (delta sources,
      // `GET ?rev=` of a replaced revision).
      const prefixes = ['', ...(await this.registry(c)).map((x) => collectionPrefix(x.id))];
      const used = prefixes.flatMap((p) => [`${this.sh.s}.${p}revs`, `${this.sh.s}.${p}old_revs`])
        .map((table) => `SELECT e.value->>'digest' AS digest FROM ${table} r, json_each(r.atts::json) e
          WHERE r.atts IS NOT NULL AND e.value->>'digest' IS NOT NULL`)
        .join(' UNION ');
      const referenced = Number((await c.query<{ n: number }>(`SELECT count(*) AS n FROM (${used}) u`)).rows[0].n);
      const removed = dryRun
        ? Number((await c.query<{ n: number }>(`SELECT count(*) AS n FROM ${t.attachments} a WHERE NOT EXISTS (SELECT 1 FROM (${used}) u WHERE u.digest = a.digest)`)).rows[0].n)
        : (await c.query(`DELETE FROM ${t.attachments} a WHERE NOT EXISTS (SELECT 1 FROM (${used}) u WHERE u.digest = a.digest)`)).rowCount ?? 0;
      return { referenced, removed };
    });
  }

  async getJobRecord(job: string): Promise<string | undefined> {
    return (await this.q<{ value: string }>(`SELECT value FROM ${this.w.meta} WHERE key = $1`, [`job:${job}`])).rows[0]?.value;
  }

  /** Compare-and-set in one statement: of two nodes racing from the same record, exactly one wins. */
  async putJobRecord(job: string, expected: string | undefined, value: string): Promise<boolean> {
    const key = `job:${job}`;
    const r = expected === undefined
      ? await this.q(`INSERT INTO ${this.w.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, value])
      : await this.q(`UPDATE ${this.w.meta} SET value = $2 WHERE key = $1 AND value = $3`, [key, value, expected]);
    return (r.rowCount ?? 0) === 1;
  }

  async uuid(): Promise<string> {
    return (await this.q<{ value: string }>(`SELECT value FROM ${this.w.meta} WHERE key = 'uuid'`)).rows[0].value;
  }


  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher.stop();
    await this.sh.pool.end();
  }
}
