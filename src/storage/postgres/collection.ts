/**
 * One collection's documents on PostgreSQL: the CollectionStore contract over a map of table names.
 * The default collection (`_default._default`) uses the original tables and is the PostgresStore
 * itself; a named collection uses its own copies (`c<id>_docs`, …). What the database shares (the
 * sequence counter, attachment bytes, grant change stamps, the pool and the NOTIFY channel) lives in
 * one PgShared that every collection of the schema holds.
 */
import type pg from 'pg';
import { HttpError } from '../../errors.ts';
import type {
  AllDocsQuery, AllDocsRow, AttachmentKey, ChangeRow, ChangesQuery, CollectionStore, CommitResult, DocChannelRow, DocWrite,
  GrantRow, LocalDoc, OldRevisionUsage, StoredDoc, StoredRevision,
} from '../store.ts';
import { bodyKey } from '../store.ts';
import { commitWrites, type Tables } from './commit.ts';
import { isUnavailable } from './connect.ts';

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

/** Names of one collection's tables (schema-qualified) and of the shared ones it writes. */
export interface CollectionTables extends Tables {
  locals: string;
}

/**
 * The tables of the collection whose names carry `prefix` in schema `s` (quoted): '' is the default
 * collection's, whose document counts are columns of the counter row rather than a table.
 */
export function collectionTables(s: string, prefix: string): CollectionTables {
  return {
    counter: `${s}.seq_counter`, attachments: `${s}.attachments`, grantChanges: `${s}.grant_changes`,
    docs: `${s}.${prefix}docs`, revs: `${s}.${prefix}revs`, oldRevs: `${s}.${prefix}old_revs`, channels: `${s}.${prefix}channel_index`,
    grants: `${s}.${prefix}grants`, locals: `${s}.${prefix}local_docs`,
    ...(prefix ? { counts: `${s}.${prefix}doc_counts` } : {}),
  };
}

/** The pool and what every collection of one schema shares. */
export class PgShared {
  constructor(
    readonly pool: pg.Pool,
    /** The schema, quoted. */
    readonly s: string,
    readonly notifyChannel: string,
    readonly node: string,
  ) {}

  get note() { return { channel: this.notifyChannel, node: this.node }; }

  async q<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw storageError(err);
    }
  }

  /** Runs `fn` in a transaction; a deadlock or serialization failure is retried a few times. */
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
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

export class PgCollection implements CollectionStore {
  protected readonly sh: PgShared;
  readonly t: CollectionTables;

  constructor(shared: PgShared, tables: CollectionTables) {
    this.sh = shared;
    this.t = tables;
  }

  protected q<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.sh.q<R>(text, values);
  }

  async lastSeq(): Promise<number> {
    return (await this.q<{ last_seq: number }>(`SELECT last_seq FROM ${this.t.counter} WHERE id = 1`)).rows[0].last_seq;
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
    return this.sh.tx((c) => commitWrites(c, this.t, writes, this.sh.note));
  }

  /**
   * Locks in the order commits take them (the document, then the counter, then a named collection's
   * counts row), so a purge and a commit never wait on each other in a cycle.
   */
  async purge(id: string): Promise<boolean> {
    const t = this.t;
    return this.sh.tx(async (c) => {
      const del = await c.query<{ deleted: boolean }>(`DELETE FROM ${t.docs} WHERE id = $1 RETURNING deleted`, [id]);
      const gone = del.rows[0];
      if (gone && !t.counts) {
        const col = gone.deleted ? 'deleted_docs' : 'live_docs';
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
           SELECT pg_notify($2, $3 || ' ' || last_seq) FROM s`, [g.rows.map((r) => r.grantee), this.sh.notifyChannel, this.sh.node]);
      }
      if (gone && t.counts) {
        const col = gone.deleted ? 'deleted' : 'live';
        await c.query(`UPDATE ${t.counts} SET ${col} = ${col} - 1 WHERE id = 1`);
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
    const r = this.t.counts
      ? await this.q<{ live: number; deleted: number }>(`SELECT live, deleted FROM ${this.t.counts} WHERE id = 1`)
      : await this.q<{ live: number; deleted: number }>(`SELECT live_docs AS live, deleted_docs AS deleted FROM ${this.t.counter} WHERE id = 1`);
    return r.rows[0];
  }

  // Attachment bytes are content-addressed and shared by every collection of the database.
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

  async grantsBy(docId: string): Promise<GrantRow[]> {
    const r = await this.q<{ grantee: string; kind: 'channel' | 'role'; value: string; seq: number }>(
      `SELECT grantee, kind, value, seq FROM ${this.t.grants} WHERE doc_id = $1`, [docId]);
    return r.rows.map((g) => ({ docId, grantee: g.grantee, kind: g.kind, value: g.value, seq: g.seq }));
  }

  async tombstonesBefore(beforeSecs: number, limit: number): Promise<string[]> {
    const r = await this.q<{ id: string }>(
      `SELECT id FROM ${this.t.docs} WHERE tombstoned_at IS NOT NULL AND tombstoned_at <= $1 ORDER BY tombstoned_at LIMIT $2`, [beforeSecs, limit]);
    return r.rows.map((x) => x.id);
  }
}
