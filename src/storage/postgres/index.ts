/**
 * The PostgreSQL backend: one PostgreSQL database shared by several Syncgate nodes. Each Syncgate
 * database lives in a schema named after its bucket. Sequence allocation (commit.ts) keeps
 * sequence order equal to commit order across nodes; notify.ts wakes other nodes' feeds.
 * A PostgreSQL outage during a request is an HttpError 503; the pool reconnects by itself.
 */
import { createHash, randomUUID } from 'node:crypto';
import pg from 'pg';
import { HttpError } from '../../errors.ts';
import type { CollectionStore,
  AllDocsQuery, AllDocsRow, AttachmentKey, ChangeRow, ChangesQuery, CommitResult, DocChannelRow, DocWrite, GrantRow, LocalDoc,
  OldRevisionUsage, PrincipalKind, PrincipalRecord, RemoteCommit, SessionRecord, Store, StoredDoc, StoredRevision,
} from '../store.ts';
import { bodyKey } from '../store.ts';
import { commitWrites, type Tables } from './commit.ts';
import {
  type ConnectPlan, PostgresConnectError, type PostgresConnectOptions, describeConnectError, isUnavailable, planConnection,
} from './connect.ts';
import { CommitWatcher } from './notify.ts';
import { SchemaTooNewError, ident, migrate } from './schema.ts';

export { PostgresConnectError, planConnection, type PostgresConnectOptions } from './connect.ts';

export interface PostgresStoreOptions extends PostgresConnectOptions {
  /** The schema holding this database's tables (the Syncgate bucket name). */
  schema: string;
  log?: { info(msg: string): void; warn(msg: string): void };
}

interface DocRow { id: string; tree: string; rev: string; deleted: boolean; seq: number; channels: string; expiry: number | null }
interface RevRow { doc_id: string; rev: string; deleted: boolean; body: string; atts: string | null; channels: string | null }

function toStoredDoc(r: DocRow): StoredDoc {
  const doc: StoredDoc = { id: r.id, tree: JSON.parse(r.tree), rev: r.rev, deleted: r.deleted, seq: r.seq, channels: JSON.parse(r.channels) };
  if (r.expiry !== null) doc.expiry = r.expiry;
  return doc;
}

function toRevision(r: RevRow): StoredRevision {
  const out: StoredRevision = { rev: r.rev, deleted: r.deleted, body: r.body, attachments: r.atts ? JSON.parse(r.atts) : null };
  if (r.channels) out.channels = JSON.parse(r.channels);
  return out;
}

/** bigint (int8) columns as numbers: sequences stay far below 2^53. Per pool, not global. */
const TYPES = {
  getTypeParser: ((oid: number, format?: string) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')))
} as unknown as pg.CustomTypesConfig;

/** Errors a request can act on: an outage is a 503, a NUL in text a 400; anything else is a bug (500). */
export function storageError(err: unknown): unknown {
  if (err instanceof HttpError) return err;
  if (isUnavailable(err)) return new HttpError(503, 'Database unavailable (PostgreSQL cannot be reached), try again');
  const code = (err as { code?: string }).code;
  // Still deadlocked or conflicting after the retries in tx(): a retry later will do.
  if (code === '40P01' || code === '40001') return new HttpError(503, 'Too much contention in the database, try again');
  if (code === '22021' || code === '22P05') return new HttpError(400, 'Text may not contain the NUL character (\\u0000)');
  return err;
}

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

export class PostgresStore implements Store {
  readonly plan: ConnectPlan;
  private readonly pool: pg.Pool;
  private readonly t: Tables & { meta: string; locals: string; principals: string; sessions: string };
  private readonly notifyChannel: string;
  private readonly node = randomUUID();
  private readonly watcher: CommitWatcher;
  private closed = false;

  constructor(pool: pg.Pool, schema: string, plan: ConnectPlan, log?: { info(msg: string): void; warn(msg: string): void }) {
    this.pool = pool;
    this.plan = plan;
    const s = ident(schema);
    this.t = {
      counter: `${s}.seq_counter`, docs: `${s}.docs`, revs: `${s}.revs`, oldRevs: `${s}.old_revs`, channels: `${s}.channel_index`, attachments: `${s}.attachments`,
      grants: `${s}.grants`, grantChanges: `${s}.grant_changes`, meta: `${s}.meta`, locals: `${s}.local_docs`,
      principals: `${s}.principals`, sessions: `${s}.sessions`,
    };
    // One NOTIFY channel per schema; identifiers are limited to 63 bytes, so a hash names it.
    this.notifyChannel = `syncgate_${createHash('sha1').update(schema).digest('hex').slice(0, 24)}`;
    const t = this.t;
    this.watcher = new CommitWatcher({
      pool, config: { ...plan.config, types: TYPES } as pg.ClientConfig, channel: this.notifyChannel, node: this.node,
      counterSql: `SELECT last_seq FROM ${t.counter} WHERE id = 1`,
      rangeSql: `SELECT DISTINCT channel AS k, 'c' AS t FROM ${t.channels} WHERE seq > $1 AND seq <= $2
        UNION SELECT grantee, 'g' FROM ${t.grantChanges} WHERE seq > $1 AND seq <= $2
        UNION SELECT CASE kind WHEN 'role' THEN 'role:' || name ELSE name END, 'g' FROM ${t.principals} WHERE seq > $1 AND seq <= $2`,
      log: (m) => log?.warn(`Bucket: ${m}`),
    });
  }

  private async q<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Runs `fn` in a transaction; a deadlock or serialization failure is retried a few times. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw storageError(err);
      }
      let broken = false;
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        broken = isUnavailable(err);
        if (!broken) await client.query('ROLLBACK').catch(() => { broken = true; });
        const code = (err as { code?: string }).code;
        if ((code === '40P01' || code === '40001') && attempt < 5) continue;
        throw storageError(err);
      } finally {
        client.release(broken || undefined);
      }
    }
  }

  private get note() { return { channel: this.notifyChannel, node: this.node }; }

  async lastSeq(): Promise<number> {
    return (await this.q<{ last_seq: number }>(`SELECT last_seq FROM ${this.t.counter} WHERE id = 1`)).rows[0].last_seq;
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

  async getDoc(id: string): Promise<StoredDoc | undefined> {
    const r = await this.q<DocRow>(`SELECT id, tree, rev, deleted, seq, channels, expiry FROM ${this.t.docs} WHERE id = $1`, [id]);
    return r.rows[0] ? toStoredDoc(r.rows[0]) : undefined;
  }

  async getDocs(ids: string[]): Promise<Map<string, StoredDoc>> {
    const out = new Map<string, StoredDoc>();
    if (ids.length === 0) return out;
    const r = await this.q<DocRow>(`SELECT id, tree, rev, deleted, seq, channels, expiry FROM ${this.t.docs} WHERE id = ANY($1::text[])`, [[...new Set(ids)]]);
    for (const row of r.rows) out.set(row.id, toStoredDoc(row));
    return out;
  }

  async getRevision(id: string, rev: string): Promise<StoredRevision | undefined> {
    const r = await this.q<RevRow>(`SELECT doc_id, rev, deleted, body, atts, channels FROM ${this.t.revs} WHERE doc_id = $1 AND rev = $2`, [id, rev]);
    return r.rows[0] ? toRevision(r.rows[0]) : undefined;
  }

  async getRevisions(keys: { id: string; rev: string }[]): Promise<Map<string, StoredRevision>> {
    const out = new Map<string, StoredRevision>();
    if (keys.length === 0) return out;
    const r = await this.q<RevRow>(
      `SELECT doc_id, rev, deleted, body, atts, channels FROM ${this.t.revs} WHERE (doc_id, rev) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [keys.map((k) => k.id), keys.map((k) => k.rev)]);
    for (const row of r.rows) out.set(bodyKey(row.doc_id, row.rev), toRevision(row));
    return out;
  }

  async getOldRevision(id: string, rev: string, nowSecs: number): Promise<StoredRevision | undefined> {
    const r = await this.q<RevRow>(
      `SELECT doc_id, rev, deleted, body, atts, channels FROM ${this.t.oldRevs} WHERE doc_id = $1 AND rev = $2 AND expires > $3`, [id, rev, nowSecs]);
    return r.rows[0] ? toRevision(r.rows[0]) : undefined;
  }

  async dropOldRevisions(nowSecs: number, limit: number): Promise<number> {
    const r = await this.q(
      `DELETE FROM ${this.t.oldRevs} WHERE (doc_id, rev) IN (SELECT doc_id, rev FROM ${this.t.oldRevs} WHERE expires <= $1 ORDER BY expires LIMIT $2)`,
      [nowSecs, limit]);
    return r.rowCount ?? 0;
  }

  async oldRevisionUsage(): Promise<OldRevisionUsage> {
    const r = await this.q<{ n: string; bytes: string | null }>(`SELECT count(*) AS n, sum(octet_length(body)) AS bytes FROM ${this.t.oldRevs}`);
    return { count: Number(r.rows[0]!.n), bytes: Number(r.rows[0]!.bytes ?? 0) };
  }

  async commit(writes: DocWrite[]): Promise<CommitResult[]> {
    if (writes.length === 0) return [];
    return this.tx((c) => commitWrites(c, this.t, writes, this.note));
  }

  async purge(id: string): Promise<boolean> {
    const t = this.t;
    return this.tx(async (c) => {
      const del = await c.query<{ deleted: boolean }>(`DELETE FROM ${t.docs} WHERE id = $1 RETURNING deleted`, [id]);
      if (del.rows[0]) {
        const col = del.rows[0].deleted ? 'deleted_docs' : 'live_docs';
        await c.query(`UPDATE ${t.counter} SET ${col} = ${col} - 1 WHERE id = 1`);
      }
      await c.query(`DELETE FROM ${t.revs} WHERE doc_id = $1`, [id]);
      await c.query(`DELETE FROM ${t.oldRevs} WHERE doc_id = $1`, [id]);
      await c.query(`DELETE FROM ${t.channels} WHERE doc_id = $1`, [id]);
      const g = await c.query<{ grantee: string }>(`DELETE FROM ${t.grants} WHERE doc_id = $1 RETURNING grantee`, [id]);
      if (g.rowCount) {
        // Purging a granting document revokes its grants: stamp the grantees with a new sequence.
        await c.query(
          `WITH s AS (UPDATE ${t.counter} SET last_seq = last_seq + 1, access_changes = access_changes + 1 WHERE id = 1 RETURNING last_seq),
           gc AS (INSERT INTO ${t.grantChanges} (grantee, seq) SELECT DISTINCT x, s.last_seq FROM unnest($1::text[]) AS x, s
             ON CONFLICT (grantee) DO UPDATE SET seq = excluded.seq)
           SELECT pg_notify($2, $3 || ' ' || last_seq) FROM s`, [g.rows.map((r) => r.grantee), this.notifyChannel, this.node]);
      }
      return (del.rowCount ?? 0) > 0;
    });
  }

  async expired(nowSecs: number, limit: number): Promise<string[]> {
    const r = await this.q<{ id: string }>(`SELECT id FROM ${this.t.docs} WHERE expiry IS NOT NULL AND expiry <= $1 ORDER BY expiry LIMIT $2`, [nowSecs, limit]);
    return r.rows.map((x) => x.id);
  }

  async changes(q: ChangesQuery): Promise<ChangeRow[]> {
    if (q.channels?.length === 0 || q.docIds?.length === 0) return [];
    const t = this.t;
    const limit = q.limit && q.limit > 0 ? q.limit : null;
    const until = `coalesce($2::bigint, (SELECT last_seq FROM ${t.counter} WHERE id = 1))`;
    const docIds = q.docIds ? [...new Set(q.docIds)] : null;
    if (!q.channels) {
      const r = await this.q<{ seq: number; id: string; rev: string; deleted: boolean }>(
        `SELECT seq, id, rev, deleted FROM ${t.docs} WHERE seq > $1 AND seq <= ${until}
         AND ($4::text[] IS NULL OR id = ANY($4::text[])) ORDER BY seq LIMIT $3`, [q.since, q.until ?? null, limit, docIds]);
      return r.rows.map((x) => ({ seq: x.seq, id: x.id, rev: x.rev, deleted: x.deleted }));
    }
    // One sequence can have a row in each channel, so `limit` counts distinct sequences: the page
    // ends at the limit-th distinct sequence and never splits one. One statement, one snapshot.
    const match = `channel = ANY($1::text[]) AND seq > $3 AND ($4::text[] IS NULL OR doc_id = ANY($4::text[]))`;
    const hi = limit
      ? `coalesce((SELECT seq FROM (SELECT DISTINCT seq FROM ${t.channels}, u WHERE ${match} AND seq <= u.until ORDER BY seq LIMIT 1 OFFSET $5::int - 1) cut), u.until)`
      : 'u.until';
    const r = await this.q<{ channel: string; seq: number; doc_id: string; rev: string; deleted: boolean; removed: boolean }>(
      `WITH u AS (SELECT ${until} AS until)
       SELECT channel, seq, doc_id, rev, deleted, removed FROM ${t.channels}, u WHERE ${match} AND seq <= ${hi} ORDER BY seq, channel`,
      [q.channels, q.until ?? null, q.since, docIds, ...(limit ? [limit] : [])]);
    return r.rows.map((x): ChangeRow => ({ seq: x.seq, id: x.doc_id, rev: x.rev, deleted: x.deleted, ...(x.removed ? { removed: x.channel } : {}) }));
  }

  async allDocs(q: AllDocsQuery): Promise<AllDocsRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (!q.includeDeleted) where.push('NOT deleted');
    const [lo, hi] = q.descending ? [q.endkey, q.startkey] : [q.startkey, q.endkey];
    // The end bound is exclusive with inclusiveEnd: false; descending, the end is the low bound.
    const open = q.inclusiveEnd === false;
    if (lo !== undefined) { args.push(lo); where.push(`id ${open && q.descending ? '>' : '>='} $${args.length}`); }
    if (hi !== undefined) { args.push(hi); where.push(`id ${open && !q.descending ? '<' : '<='} $${args.length}`); }
    args.push(q.limit !== undefined && q.limit >= 0 ? q.limit : null, q.skip ?? 0);
    const r = await this.q<{ id: string; rev: string; seq: number; deleted: boolean; channels: string }>(
      `SELECT id, rev, seq, deleted, channels FROM ${this.t.docs} ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
       ORDER BY id ${q.descending ? 'DESC' : 'ASC'} LIMIT $${args.length - 1} OFFSET $${args.length}`, args);
    return r.rows.map((x) => ({ id: x.id, rev: x.rev, seq: x.seq, deleted: x.deleted, channels: JSON.parse(x.channels) }));
  }

  async docChannels(id: string): Promise<DocChannelRow[]> {
    // The index is keyed (channel, doc_id): this scans it, as purge does. Fine for an admin
    // inspection; an index on doc_id would make both point lookups.
    const r = await this.q<{ channel: string; seq: number; rev: string; deleted: boolean; removed: boolean }>(
      `SELECT channel, seq, rev, deleted, removed FROM ${this.t.channels} WHERE doc_id = $1 ORDER BY channel COLLATE "C"`, [id]);
    return r.rows.map((x) => ({ channel: x.channel, seq: x.seq, rev: x.rev, deleted: x.deleted, removed: x.removed }));
  }

  async channelTail(channel: string, limit: number): Promise<ChangeRow[]> {
    const r = await this.q<{ seq: number; doc_id: string; rev: string; deleted: boolean; removed: boolean }>(
      `SELECT seq, doc_id, rev, deleted, removed FROM ${this.t.channels} WHERE channel = $1 ORDER BY seq DESC LIMIT $2`, [channel, limit]);
    return r.rows.reverse().map((x): ChangeRow => ({
      seq: x.seq, id: x.doc_id, rev: x.rev, deleted: x.deleted, ...(x.removed ? { removed: channel } : {}),
    }));
  }

  async countDocs(): Promise<number> {
    return (await this.docCounts()).live;
  }

  async docCounts(): Promise<{ live: number; deleted: number }> {
    const r = await this.q<{ live: number; deleted: number }>(`SELECT live_docs AS live, deleted_docs AS deleted FROM ${this.t.counter} WHERE id = 1`);
    return r.rows[0];
  }

  async getAttachment(digest: string): Promise<Buffer | undefined> {
    return (await this.q<{ data: Buffer }>(`SELECT data FROM ${this.t.attachments} WHERE digest = $1`, [digest])).rows[0]?.data;
  }

  async hasAttachments(digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const r = await this.q<{ digest: string }>(`SELECT digest FROM ${this.t.attachments} WHERE digest = ANY($1::text[])`, [[...new Set(digests)]]);
    return new Set(r.rows.map((x) => x.digest));
  }

  async findAttachments(digests: string[]): Promise<AttachmentKey[]> {
    if (digests.length === 0) return [];
    const r = await this.q<AttachmentKey>(
      `SELECT digest, md5, octet_length(data) AS length FROM ${this.t.attachments} WHERE digest = ANY($1::text[]) OR md5 = ANY($1::text[])`,
      [[...new Set(digests)]]);
    return r.rows;
  }

  async getLocal(id: string): Promise<LocalDoc | undefined> {
    return (await this.q<LocalDoc>(`SELECT rev, body FROM ${this.t.locals} WHERE id = $1`, [id])).rows[0];
  }

  async putLocal(id: string, expectedRev: number, body: string): Promise<number | null> {
    // Both forms are single atomic statements: of concurrent writers with the same expectedRev, one wins.
    const r = expectedRev === 0
      ? await this.q<{ rev: number }>(`INSERT INTO ${this.t.locals} (id, rev, body) VALUES ($1, 1, $2) ON CONFLICT (id) DO NOTHING RETURNING rev`, [id, body])
      : await this.q<{ rev: number }>(`UPDATE ${this.t.locals} SET rev = rev + 1, body = $3 WHERE id = $1 AND rev = $2 RETURNING rev`, [id, expectedRev, body]);
    return r.rows[0]?.rev ?? null;
  }

  async deleteLocal(id: string, expectedRev: number): Promise<boolean> {
    if (expectedRev === 0) return false;
    return ((await this.q(`DELETE FROM ${this.t.locals} WHERE id = $1 AND rev = $2`, [id, expectedRev])).rowCount ?? 0) > 0;
  }

  async getPrincipal(kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    const r = await this.q<{ data: string; seq: number }>(`SELECT data, seq FROM ${this.t.principals} WHERE kind = $1 AND name = $2`, [kind, name]);
    const row = r.rows[0];
    return row ? { ...JSON.parse(row.data), kind, name, seq: row.seq } : undefined;
  }

  async listPrincipals(kind: PrincipalKind): Promise<string[]> {
    return (await this.q<{ name: string }>(`SELECT name FROM ${this.t.principals} WHERE kind = $1 ORDER BY name`, [kind])).rows.map((x) => x.name);
  }

  async putPrincipal(p: Omit<PrincipalRecord, 'seq'>): Promise<number> {
    const { kind, name, ...data } = p;
    const t = this.t;
    // One statement: the counter lock orders it with document commits (see commit.ts).
    const r = await this.q<{ last_seq: number }>(
      `WITH s AS (UPDATE ${t.counter} SET last_seq = last_seq + 1, access_changes = access_changes + 1 WHERE id = 1 RETURNING last_seq),
       p AS (INSERT INTO ${t.principals} (kind, name, data, seq) SELECT $1, $2, $3, s.last_seq FROM s
         ON CONFLICT (kind, name) DO UPDATE SET data = excluded.data, seq = excluded.seq)
       SELECT last_seq, pg_notify($4, $5 || ' ' || last_seq) FROM s`,
      [kind, name, JSON.stringify(data), this.notifyChannel, this.node]);
    return r.rows[0].last_seq;
  }

  async deletePrincipal(kind: PrincipalKind, name: string): Promise<boolean> {
    const t = this.t;
    return this.tx(async (c) => {
      // The counter first, as every other writer locks it last: no lock cycle with putPrincipal.
      const s = await c.query<{ last_seq: number }>(
        `UPDATE ${t.counter} SET principal_deletions = principal_deletions + 1 WHERE id = 1 RETURNING last_seq`);
      const del = await c.query(`DELETE FROM ${t.principals} WHERE kind = $1 AND name = $2`, [kind, name]);
      if (!del.rowCount) return false;
      await c.query('SELECT pg_notify($1, $2)', [this.notifyChannel, `${this.node} ${s.rows[0].last_seq} ${kind} ${name}`]);
      return true;
    });
  }

  async grantsBy(docId: string): Promise<GrantRow[]> {
    const r = await this.q<{ grantee: string; kind: 'channel' | 'role'; value: string; seq: number }>(
      `SELECT grantee, kind, value, seq FROM ${this.t.grants} WHERE doc_id = $1`, [docId]);
    return r.rows.map((g) => ({ docId, grantee: g.grantee, kind: g.kind, value: g.value, seq: g.seq }));
  }

  async grantsTo(grantees: string[]): Promise<GrantRow[]> {
    if (grantees.length === 0) return [];
    const r = await this.q<{ doc_id: string; grantee: string; kind: 'channel' | 'role'; value: string; seq: number }>(
      `SELECT doc_id, grantee, kind, value, seq FROM ${this.t.grants} WHERE grantee = ANY($1::text[])`, [[...new Set(grantees)]]);
    return r.rows.map((g) => ({ docId: g.doc_id, grantee: g.grantee, kind: g.kind, value: g.value, seq: g.seq }));
  }

  async grantsChangedAt(grantees: string[]): Promise<Map<string, number>> {
    if (grantees.length === 0) return new Map();
    const r = await this.q<{ grantee: string; seq: number }>(
      `SELECT grantee, seq FROM ${this.t.grantChanges} WHERE grantee = ANY($1::text[])`, [[...new Set(grantees)]]);
    return new Map(r.rows.map((x) => [x.grantee, x.seq]));
  }

  async putSession(s: SessionRecord): Promise<void> {
    await this.q(`INSERT INTO ${this.t.sessions} (id, "user", expires, ttl) VALUES ($1, $2, $3, $4)
      ON CONFLICT (id) DO UPDATE SET "user" = excluded."user", expires = excluded.expires, ttl = excluded.ttl`, [s.id, s.user, s.expires, s.ttlMs]);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const r = await this.q<{ id: string; user: string; expires: number; ttl: number }>(`SELECT id, "user", expires, ttl FROM ${this.t.sessions} WHERE id = $1`, [id]);
    const row = r.rows[0];
    return row ? { id: row.id, user: row.user, expires: row.expires, ttlMs: row.ttl } : undefined;
  }

  async deleteSession(id: string): Promise<boolean> {
    return ((await this.q(`DELETE FROM ${this.t.sessions} WHERE id = $1`, [id])).rowCount ?? 0) > 0;
  }

  async deleteUserSessions(user: string): Promise<number> {
    return (await this.q(`DELETE FROM ${this.t.sessions} WHERE "user" = $1`, [user])).rowCount ?? 0;
  }

  async tombstonesBefore(beforeSecs: number, limit: number): Promise<string[]> {
    const r = await this.q<{ id: string }>(
      `SELECT id FROM ${this.t.docs} WHERE tombstoned_at IS NOT NULL AND tombstoned_at <= $1 ORDER BY tombstoned_at LIMIT $2`, [beforeSecs, limit]);
    return r.rows.map((x) => x.id);
  }

  /**
   * One statement: the digests in use are read from the snapshot the delete runs in. A commit still
   * in flight that reuses an existing body by digest (no new bytes) is not seen by it: a narrow race
   * that Sync Gateway's mark-and-sweep has too for bodies marked before a reference lands.
   */
  async compactAttachments(dryRun: boolean): Promise<{ referenced: number; removed: number }> {
    const t = this.t;
    // Retained old revisions (delta sources, `GET ?rev=` of a replaced revision) reference bytes too.
    const used = `SELECT e.value->>'digest' AS digest FROM ${t.revs} r, json_each(r.atts::json) e
      WHERE r.atts IS NOT NULL AND e.value->>'digest' IS NOT NULL
      UNION SELECT e.value->>'digest' FROM ${t.oldRevs} o, json_each(o.atts::json) e
      WHERE o.atts IS NOT NULL AND e.value->>'digest' IS NOT NULL`;
    return this.tx(async (c) => {
      const referenced = Number((await c.query<{ n: number }>(`SELECT count(*) AS n FROM (${used}) u`)).rows[0].n);
      const removed = dryRun
        ? Number((await c.query<{ n: number }>(`SELECT count(*) AS n FROM ${t.attachments} a WHERE NOT EXISTS (SELECT 1 FROM (${used}) u WHERE u.digest = a.digest)`)).rows[0].n)
        : (await c.query(`DELETE FROM ${t.attachments} a WHERE NOT EXISTS (SELECT 1 FROM (${used}) u WHERE u.digest = a.digest)`)).rowCount ?? 0;
      return { referenced, removed };
    });
  }

  async getJobRecord(job: string): Promise<string | undefined> {
    return (await this.q<{ value: string }>(`SELECT value FROM ${this.t.meta} WHERE key = $1`, [`job:${job}`])).rows[0]?.value;
  }

  /** Compare-and-set in one statement: of two nodes racing from the same record, exactly one wins. */
  async putJobRecord(job: string, expected: string | undefined, value: string): Promise<boolean> {
    const key = `job:${job}`;
    const r = expected === undefined
      ? await this.q(`INSERT INTO ${this.t.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [key, value])
      : await this.q(`UPDATE ${this.t.meta} SET value = $2 WHERE key = $1 AND value = $3`, [key, value, expected]);
    return (r.rowCount ?? 0) === 1;
  }

  async uuid(): Promise<string> {
    return (await this.q<{ value: string }>(`SELECT value FROM ${this.t.meta} WHERE key = 'uuid'`)).rows[0].value;
  }


  /** Named collections: built by the storage part of the collections work (not yet). */
  async collection(scope: string, name: string): Promise<CollectionStore> {
    if (scope === '_default' && name === '_default') return this;
    throw new Error(`collection ${scope}.${name}: named collections are not stored yet`);
  }
  async listCollections(): Promise<{ scope: string; name: string }[]> { return []; }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher.stop();
    await this.pool.end();
  }
}
