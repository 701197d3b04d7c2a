/**
 * The embedded default backend: one SQLite file per database, in WAL mode.
 * SQLite has a single writer, so sequences are assigned in commit order for free: a changes reader
 * can never see sequence N+1 before N.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CollectionStore,
  AllDocsQuery, AllDocsRow, AttachmentKey, ChangeRow, ChangesQuery, CommitResult, DocChannelRow, DocWrite, Grant, GrantRow, LocalDoc,
  OldRevisionUsage, PrincipalKind, PrincipalRecord, SessionRecord, Store, StoredDoc, StoredRevision,
} from '../store.ts';
import { bodyKey } from '../store.ts';
import { checkVersion, migrate } from './schema.ts';

export interface SqliteOptions {
  /** File path, or ':memory:'. */
  path: string;
  /**
   * 'full' fsyncs every commit so that an acknowledged write survives power loss, not just a process
   * crash. 'normal' survives process crashes only.
   */
  synchronous?: 'full' | 'normal';
}

interface DocRow { id: string; tree: string; rev: string; deleted: number; seq: number; channels: string; expiry: number | null }
interface RevRow { rev: string; deleted: number; body: string; atts: string | null; channels: string | null }

function toStoredDoc(r: DocRow): StoredDoc {
  const doc: StoredDoc = {
    id: r.id, tree: JSON.parse(r.tree), rev: r.rev, deleted: r.deleted === 1, seq: r.seq,
    channels: JSON.parse(r.channels),
  };
  if (r.expiry !== null) doc.expiry = r.expiry;
  return doc;
}

function toRevision(r: RevRow): StoredRevision {
  const out: StoredRevision = { rev: r.rev, deleted: r.deleted === 1, body: r.body, attachments: r.atts ? JSON.parse(r.atts) : null };
  if (r.channels) out.channels = JSON.parse(r.channels);
  return out;
}

/** Page cache per database (KiB): SQLite's default is 2 MB. */
const CACHE_KIB = 64 * 1024;
/** Reads through mmap up to this much of the file (the cache above then holds mostly dirty pages). */
const MMAP_BYTES = 1024 * 1024 * 1024;
/** Page cache while a job reads the whole file once (bulkScan): it would only hold pages read once. */
const BULK_SCAN_CACHE_KIB = 2 * 1024;

/** SQLite limits bound parameters per statement; chunk IN lists well below it. */
const IN_CHUNK = 500;

function chunks<T>(items: T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private seq: number;
  /**
   * Moves on every change that can alter someone's access (principal saves and deletions, grant
   * changes): the access version (see Store.accessVersion), so that document writes, which are
   * nearly all writes, leave every user's cached access valid. A process-local counter, never
   * reused, so a bump inside a transaction that rolls back only costs a recomputation.
   */
  private accessEpoch = 0;
  private readonly stmts;
  private readonly commitTx: (writes: DocWrite[]) => CommitResult[];
  /**
   * Statements whose SQL varies (IN lists of n placeholders), compiled once per distinct text:
   * compiling on every call was a tenth of server CPU on the authenticated-GET path.
   */
  private readonly dynamic = new Map<string, Database.Statement>();

  constructor(opts: SqliteOptions) {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    try {
      // The version check comes first: a file we refuse is left exactly as it was.
      checkVersion(this.db);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma('busy_timeout = 5000');
      // Reads of bodies and revision trees are point lookups spread over the whole file: with
      // SQLite's default 2 MB page cache nearly every one was a miss and a pread (a fifth of the
      // server's CPU when 1,000 users pulled at once). A larger cache plus memory-mapped reads
      // keep the hot part of the file in the process at no copy.
      this.db.pragma(`cache_size = -${CACHE_KIB}`);
      this.db.pragma(`mmap_size = ${MMAP_BYTES}`);
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
    const db = this.db;
    this.stmts = {
      getDoc: db.prepare<[string], DocRow>('SELECT id, tree, rev, deleted, seq, channels, expiry FROM docs WHERE id = ?'),
      getRev: db.prepare<[string, string], RevRow>('SELECT rev, deleted, body, atts, channels FROM revs WHERE doc_id = ? AND rev = ?'),
      docSeq: db.prepare<[string], { seq: number; deleted: number }>('SELECT seq, deleted FROM docs WHERE id = ?'),
      // A tombstone keeps the time it was first made through later writes that leave it deleted
      // (another tombstone branch, a resync): the purge interval counts from the deletion.
      upsertDoc: db.prepare(
        `INSERT INTO docs (id, tree, rev, deleted, seq, channels, expiry, tombstoned_at)
         VALUES (@id, @tree, @rev, @deleted, @seq, @channels, @expiry, CASE WHEN @deleted = 1 THEN @now END)
         ON CONFLICT(id) DO UPDATE SET tree = excluded.tree, rev = excluded.rev, deleted = excluded.deleted,
           seq = excluded.seq, channels = excluded.channels, expiry = excluded.expiry,
           tombstoned_at = CASE WHEN excluded.deleted = 0 THEN NULL
             WHEN docs.deleted = 1 AND docs.tombstoned_at IS NOT NULL THEN docs.tombstoned_at ELSE excluded.tombstoned_at END`),
      insertRev: db.prepare(
        'INSERT OR REPLACE INTO revs (doc_id, rev, deleted, body, atts, channels) VALUES (?, ?, ?, ?, ?, ?)'),
      deleteRev: db.prepare('DELETE FROM revs WHERE doc_id = ? AND rev = ?'),
      retireRev: db.prepare(
        `INSERT OR REPLACE INTO old_revs (doc_id, rev, deleted, body, atts, channels, expires)
         SELECT doc_id, rev, deleted, body, atts, channels, ? FROM revs WHERE doc_id = ? AND rev = ?`),
      getOldRev: db.prepare<[string, string, number], RevRow>(
        'SELECT rev, deleted, body, atts, channels FROM old_revs WHERE doc_id = ? AND rev = ? AND expires > ?'),
      expiredOldRevs: db.prepare<[number, number], { doc_id: string; rev: string }>(
        'SELECT doc_id, rev FROM old_revs WHERE expires <= ? ORDER BY expires LIMIT ?'),
      deleteOldRev: db.prepare('DELETE FROM old_revs WHERE doc_id = ? AND rev = ?'),
      oldRevUsage: db.prepare<[], { n: number; bytes: number | null }>('SELECT count(*) AS n, sum(length(CAST(body AS BLOB))) AS bytes FROM old_revs'),
      upsertChannel: db.prepare(
        `INSERT INTO channel_index (channel, doc_id, seq, rev, deleted, removed) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(channel, doc_id) DO UPDATE SET seq = excluded.seq, rev = excluded.rev,
           deleted = excluded.deleted, removed = excluded.removed`),
      insertAtt: db.prepare('INSERT OR IGNORE INTO attachments (digest, md5, data) VALUES (?, ?, ?)'),
      getAtt: db.prepare<[string], { data: Buffer }>('SELECT data FROM attachments WHERE digest = ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      getLocal: db.prepare<[string], { rev: number; body: string }>('SELECT rev, body FROM local_docs WHERE id = ?'),
      putLocal: db.prepare('INSERT OR REPLACE INTO local_docs (id, rev, body) VALUES (?, ?, ?)'),
      deleteLocal: db.prepare('DELETE FROM local_docs WHERE id = ?'),
      docCounts: db.prepare<[], { live: number; deleted: number }>('SELECT live, deleted FROM doc_counts WHERE id = 1'),
      addDocCounts: db.prepare('UPDATE doc_counts SET live = live + ?, deleted = deleted + ? WHERE id = 1'),
      docGrants: db.prepare<[string], Grant & { seq: number }>('SELECT grantee, kind, value, seq FROM grants WHERE doc_id = ?'),
      deleteDocGrants: db.prepare('DELETE FROM grants WHERE doc_id = ?'),
      insertGrant: db.prepare('INSERT OR REPLACE INTO grants (doc_id, grantee, kind, value, seq) VALUES (?, ?, ?, ?, ?)'),
      stampGrantee: db.prepare('INSERT OR REPLACE INTO grant_changes (grantee, seq) VALUES (?, ?)'),
      getPrincipal: db.prepare<[string, string], { data: string; seq: number }>('SELECT data, seq FROM principals WHERE kind = ? AND name = ?'),
      putPrincipal: db.prepare('INSERT OR REPLACE INTO principals (kind, name, data, seq) VALUES (?, ?, ?, ?)'),
      deletePrincipal: db.prepare('DELETE FROM principals WHERE kind = ? AND name = ?'),
      listPrincipals: db.prepare<[string], { name: string }>('SELECT name FROM principals WHERE kind = ? ORDER BY name'),
      putSession: db.prepare('INSERT OR REPLACE INTO sessions (id, user, expires, ttl) VALUES (?, ?, ?, ?)'),
      getSession: db.prepare<[string], { id: string; user: string; expires: number; ttl: number }>('SELECT id, user, expires, ttl FROM sessions WHERE id = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
      deleteUserSessions: db.prepare('DELETE FROM sessions WHERE user = ?'),
      expired: db.prepare<[number, number], { id: string }>('SELECT id FROM docs WHERE expiry IS NOT NULL AND expiry <= ? ORDER BY expiry LIMIT ?'),
      allChanges: db.prepare<[number, number, number], { seq: number; id: string; rev: string; deleted: number }>(
        'SELECT seq, id, rev, deleted FROM docs WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
    };
    this.seq = Number(this.stmts.getMeta.get('last_seq')?.value ?? 0);
    if (!this.stmts.getMeta.get('uuid')) this.stmts.setMeta.run('uuid', randomUUID().replace(/-/g, ''));
    this.commitTx = this.db.transaction((writes: DocWrite[]) => {
      const before = this.seq;
      const counts = { live: 0, deleted: 0 };
      const results = writes.map((w) => this.applyWrite(w, counts));
      // Once per transaction, not once per document: readers only see the committed whole anyway.
      if (this.seq !== before) this.stmts.setMeta.run('last_seq', String(this.seq));
      if (counts.live !== 0 || counts.deleted !== 0) this.stmts.addDocCounts.run(counts.live, counts.deleted);
      return results;
    });
  }

  private cached<P extends unknown[], R>(sql: string): Database.Statement<P, R> {
    let st = this.dynamic.get(sql);
    if (!st) {
      if (this.dynamic.size >= 500) this.dynamic.clear(); // bounded: IN-list sizes are few in practice
      st = this.db.prepare(sql);
      this.dynamic.set(sql, st);
    }
    return st as unknown as Database.Statement<P, R>;
  }

  /** Applies one write of a commit; `counts` gathers the change in live and deleted documents. */
  private applyWrite(w: DocWrite, counts: { live: number; deleted: number }): CommitResult {
    const s = this.stmts;
    const row = s.docSeq.get(w.id);
    if ((row?.seq ?? 0) !== w.expectedSeq) return { ok: false, reason: 'conflict' };
    if (row) counts[row.deleted ? 'deleted' : 'live']--;
    counts[w.deleted ? 'deleted' : 'live']++;
    const seq = this.seq + 1;
    if (w.attachments) for (const [digest, a] of w.attachments) s.insertAtt.run(digest, a.md5, a.data);
    for (const r of w.retireBodies ?? []) {
      s.retireRev.run(r.until, w.id, r.rev);
      s.deleteRev.run(w.id, r.rev);
    }
    for (const rev of w.dropBodies) s.deleteRev.run(w.id, rev);
    for (const b of w.addBodies) {
      s.insertRev.run(w.id, b.rev, b.deleted ? 1 : 0, b.body, b.attachments ? JSON.stringify(b.attachments) : null,
        b.channels ? JSON.stringify(b.channels) : null);
    }
    s.upsertDoc.run({
      id: w.id, tree: JSON.stringify(w.tree), rev: w.rev, deleted: w.deleted ? 1 : 0, seq,
      channels: JSON.stringify(w.channels), expiry: w.expiry ?? null, now: Math.floor(Date.now() / 1000),
    });
    const del = w.deleted ? 1 : 0;
    for (const ch of w.channels) s.upsertChannel.run(ch, w.id, seq, w.rev, del, 0);
    for (const ch of w.previousChannels) {
      if (!w.channels.includes(ch)) s.upsertChannel.run(ch, w.id, seq, w.rev, del, 1);
    }
    // A change to who can see what is a change of those users, with a sequence of its own (as Sync
    // Gateway bumps the user's sequence): their `_user/` feed entries never share the doc's sequence.
    // A document without a row yet has no grants rows either (purge removes both), so a new
    // document that grants nothing skips the lookup of its old grants.
    const noGrants = !w.grants || (w.grants.length === 0 && w.expectedSeq === 0);
    const grantees = noGrants ? [] : this.replaceGrants(w.id, w.grants!, seq, seq + 1);
    this.seq = grantees.length ? seq + 1 : seq;
    return grantees.length ? { ok: true, seq, grantees } : { ok: true, seq };
  }

  /** Swaps a document's grants; every grantee whose set changed is stamped with this sequence. */
  private replaceGrants(docId: string, grants: Grant[], seq: number, stampSeq: number): string[] {
    const s = this.stmts;
    const key = (g: Grant) => `${g.grantee}\u0000${g.kind}\u0000${g.value}`;
    const old = s.docGrants.all(docId);
    const oldKeys = new Set(old.map(key));
    const newKeys = new Set(grants.map(key));
    const changed = new Set<string>();
    for (const g of old) if (!newKeys.has(key(g))) changed.add(g.grantee);
    for (const g of grants) if (!oldKeys.has(key(g))) changed.add(g.grantee);
    if (changed.size === 0) return [];
    s.deleteDocGrants.run(docId);
    for (const g of grants) {
      // A grant that survives a new revision keeps the sequence it was first made at.
      const prev = old.find((o) => key(o) === key(g));
      s.insertGrant.run(docId, g.grantee, g.kind, g.value, prev ? prev.seq : seq);
    }
    for (const grantee of changed) s.stampGrantee.run(grantee, stampSeq);
    this.accessEpoch++;
    return [...changed];
  }

  async lastSeq(): Promise<number> { return this.seq; }

  async accessVersion(): Promise<number> { return this.accessEpoch; }

  async getDoc(id: string): Promise<StoredDoc | undefined> {
    const r = this.stmts.getDoc.get(id);
    return r ? toStoredDoc(r) : undefined;
  }

  async getDocs(ids: string[]): Promise<Map<string, StoredDoc>> {
    const out = new Map<string, StoredDoc>();
    for (const part of chunks([...new Set(ids)])) {
      const rows = this.cached<string[], DocRow>(
        `SELECT id, tree, rev, deleted, seq, channels, expiry FROM docs WHERE id IN (${part.map(() => '?').join(',')})`,
      ).all(...part);
      for (const r of rows) out.set(r.id, toStoredDoc(r));
    }
    return out;
  }

  async getRevision(id: string, rev: string): Promise<StoredRevision | undefined> {
    const r = this.stmts.getRev.get(id, rev);
    return r ? toRevision(r) : undefined;
  }

  async getRevisions(keys: { id: string; rev: string }[]): Promise<Map<string, StoredRevision>> {
    const out = new Map<string, StoredRevision>();
    // Point lookups on the primary key through one prepared statement beat a dynamic OR query.
    for (const k of keys) {
      const r = this.stmts.getRev.get(k.id, k.rev);
      if (r) out.set(bodyKey(k.id, k.rev), toRevision(r));
    }
    return out;
  }

  async getOldRevision(id: string, rev: string, nowSecs: number): Promise<StoredRevision | undefined> {
    const r = this.stmts.getOldRev.get(id, rev, nowSecs);
    return r ? toRevision(r) : undefined;
  }

  async dropOldRevisions(nowSecs: number, limit: number): Promise<number> {
    const s = this.stmts;
    return this.db.transaction(() => {
      const rows = s.expiredOldRevs.all(nowSecs, limit);
      for (const r of rows) s.deleteOldRev.run(r.doc_id, r.rev);
      return rows.length;
    })();
  }

  async oldRevisionUsage(): Promise<OldRevisionUsage> {
    const r = this.stmts.oldRevUsage.get()!;
    return { count: r.n, bytes: r.bytes ?? 0 };
  }

  async commit(writes: DocWrite[]): Promise<CommitResult[]> {
    return this.withSeqRollback(() => this.commitTx(writes));
  }

  async purge(id: string): Promise<boolean> {
    const tx = this.db.transaction(() => {
      const gone = this.stmts.docSeq.get(id);
      const r = this.cached('DELETE FROM docs WHERE id = ?').run(id);
      if (gone) this.stmts.addDocCounts.run(gone.deleted ? 0 : -1, gone.deleted ? -1 : 0);
      this.cached('DELETE FROM revs WHERE doc_id = ?').run(id);
      this.cached('DELETE FROM old_revs WHERE doc_id = ?').run(id);
      this.cached('DELETE FROM channel_index WHERE doc_id = ?').run(id);
      // Purging a granting document revokes its grants: stamp the grantees with a new sequence.
      if (this.stmts.docGrants.all(id).length > 0) {
        const seq = this.seq + 1;
        this.replaceGrants(id, [], seq, seq);
        this.seq = seq;
        this.stmts.setMeta.run('last_seq', String(seq));
      }
      return r.changes > 0;
    });
    return this.withSeqRollback(tx);
  }

  /**
   * Runs a transaction that may advance the in-memory sequence counter; if it rolls back, so does
   * the counter, so a failed transaction never burns a sequence.
   */
  private withSeqRollback<T>(tx: () => T): T {
    const before = this.seq;
    try {
      return tx();
    } catch (err) {
      this.seq = before;
      throw err;
    }
  }

  async expired(nowSecs: number, limit: number): Promise<string[]> {
    return this.stmts.expired.all(nowSecs, limit).map((r) => r.id);
  }

  async getPrincipal(kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    const r = this.stmts.getPrincipal.get(kind, name);
    return r ? { ...JSON.parse(r.data), kind, name, seq: r.seq } : undefined;
  }

  async listPrincipals(kind: PrincipalKind): Promise<string[]> {
    return this.stmts.listPrincipals.all(kind).map((r) => r.name);
  }

  async putPrincipal(p: Omit<PrincipalRecord, 'seq'>): Promise<number> {
    const tx = this.db.transaction(() => {
      const seq = this.seq + 1;
      const { kind, name, ...data } = p;
      this.stmts.putPrincipal.run(kind, name, JSON.stringify(data), seq);
      this.accessEpoch++;
      this.stmts.setMeta.run('last_seq', String(seq));
      this.seq = seq;
      return seq;
    });
    return this.withSeqRollback(tx);
  }

  async deletePrincipal(kind: PrincipalKind, name: string): Promise<boolean> {
    this.accessEpoch++;
    return this.stmts.deletePrincipal.run(kind, name).changes > 0;
  }

  async grantsBy(docId: string): Promise<GrantRow[]> {
    return this.stmts.docGrants.all(docId).map((g) => ({ docId, grantee: g.grantee, kind: g.kind, value: g.value, seq: g.seq }));
  }

  async grantsTo(grantees: string[]): Promise<GrantRow[]> {
    const out: GrantRow[] = [];
    for (const part of chunks([...new Set(grantees)])) {
      const rows = this.cached<string[], { doc_id: string; grantee: string; kind: 'channel' | 'role'; value: string; seq: number }>(
        `SELECT doc_id, grantee, kind, value, seq FROM grants WHERE grantee IN (${part.map(() => '?').join(',')})`,
      ).all(...part);
      for (const r of rows) out.push({ docId: r.doc_id, grantee: r.grantee, kind: r.kind, value: r.value, seq: r.seq });
    }
    return out;
  }

  async grantsChangedAt(grantees: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const part of chunks([...new Set(grantees)])) {
      const rows = this.cached<string[], { grantee: string; seq: number }>(
        `SELECT grantee, seq FROM grant_changes WHERE grantee IN (${part.map(() => '?').join(',')})`,
      ).all(...part);
      for (const r of rows) out.set(r.grantee, r.seq);
    }
    return out;
  }

  async putSession(sess: SessionRecord): Promise<void> {
    this.stmts.putSession.run(sess.id, sess.user, sess.expires, sess.ttlMs);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const r = this.stmts.getSession.get(id);
    return r ? { id: r.id, user: r.user, expires: r.expires, ttlMs: r.ttl } : undefined;
  }

  async deleteSession(id: string): Promise<boolean> {
    return this.stmts.deleteSession.run(id).changes > 0;
  }

  async deleteUserSessions(user: string): Promise<number> {
    return this.stmts.deleteUserSessions.run(user).changes;
  }

  async changes(q: ChangesQuery): Promise<ChangeRow[]> {
    const until = q.until ?? this.seq;
    const limit = q.limit && q.limit > 0 ? q.limit : -1;
    if (q.channels?.length === 0 || q.docIds?.length === 0) return [];
    if (!q.channels && !q.docIds) {
      return this.stmts.allChanges.all(q.since, until, limit).map((r) => ({
        seq: r.seq, id: r.id, rev: r.rev, deleted: r.deleted === 1,
      }));
    }
    if (!q.channels) {
      const rows: ChangeRow[] = [];
      for (const part of chunks([...new Set(q.docIds)])) {
        const found = this.cached<unknown[], { seq: number; id: string; rev: string; deleted: number }>(
          `SELECT seq, id, rev, deleted FROM docs WHERE seq > ? AND seq <= ? AND id IN (${part.map(() => '?').join(',')})`,
        ).all(q.since, until, ...part);
        for (const r of found) rows.push({ seq: r.seq, id: r.id, rev: r.rev, deleted: r.deleted === 1 });
      }
      rows.sort((a, b) => a.seq - b.seq);
      return limit > 0 ? rows.slice(0, limit) : rows;
    }
    return this.channelChanges(q.channels, q.since, until, limit, q.docIds ? [...new Set(q.docIds)] : undefined);
  }

  /**
   * Rows of several channels' index. One sequence can have a row in each channel (a doc in two
   * channels, or leaving one while staying in another), so `limit` counts distinct sequences: a
   * page never ends between two rows of the same sequence.
   */
  private channelChanges(channels: string[], since: number, until: number, limit: number, docIds?: string[]): ChangeRow[] {
    const chIn = `channel IN (${channels.map(() => '?').join(',')})`;
    let hi = until;
    if (limit > 0 && !docIds) {
      const cut = this.cached<unknown[], { seq: number }>(
        `SELECT seq FROM channel_index WHERE ${chIn} AND seq > ? AND seq <= ? GROUP BY seq ORDER BY seq LIMIT 1 OFFSET ?`,
      ).get(...channels, since, until, limit - 1);
      if (cut) hi = cut.seq;
    }
    type Row = { channel: string; seq: number; doc_id: string; rev: string; deleted: number; removed: number };
    const raw: Row[] = [];
    for (const part of docIds ? chunks(docIds) : [undefined]) {
      const idIn = part ? ` AND doc_id IN (${part.map(() => '?').join(',')})` : '';
      raw.push(...this.cached<unknown[], Row>(
        `SELECT channel, seq, doc_id, rev, deleted, removed FROM channel_index
         WHERE ${chIn} AND seq > ? AND seq <= ?${idIn} ORDER BY seq`,
      ).all(...channels, since, hi, ...(part ?? [])));
    }
    if (docIds) raw.sort((a, b) => a.seq - b.seq);
    let rows = raw.map((r): ChangeRow => ({
      seq: r.seq, id: r.doc_id, rev: r.rev, deleted: r.deleted === 1, ...(r.removed ? { removed: r.channel } : {}),
    }));
    if (limit > 0 && docIds) {
      const seqs = [...new Set(rows.map((r) => r.seq))];
      if (seqs.length > limit) rows = rows.filter((r) => r.seq <= seqs[limit - 1]);
    }
    return rows;
  }

  async allDocs(q: AllDocsQuery): Promise<AllDocsRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (!q.includeDeleted) where.push('deleted = 0');
    const [lo, hi] = q.descending ? [q.endkey, q.startkey] : [q.startkey, q.endkey];
    // The end bound is exclusive with inclusiveEnd: false; descending, the end is the low bound.
    const open = q.inclusiveEnd === false;
    if (lo !== undefined) { where.push(open && q.descending ? 'id > ?' : 'id >= ?'); args.push(lo); }
    if (hi !== undefined) { where.push(open && !q.descending ? 'id < ?' : 'id <= ?'); args.push(hi); }
    const sql = `SELECT id, rev, seq, deleted, channels FROM docs ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY id ${q.descending ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`;
    args.push(q.limit !== undefined && q.limit >= 0 ? q.limit : -1, q.skip ?? 0);
    return this.cached<unknown[], { id: string; rev: string; seq: number; deleted: number; channels: string }>(sql)
      .all(...args)
      .map((r) => ({ id: r.id, rev: r.rev, seq: r.seq, deleted: r.deleted === 1, channels: JSON.parse(r.channels) }));
  }

  async countDocs(): Promise<number> { return this.stmts.docCounts.get()!.live; }

  async docCounts(): Promise<{ live: number; deleted: number }> {
    const r = this.stmts.docCounts.get()!;
    return { live: r.live, deleted: r.deleted };
  }

  async docChannels(id: string): Promise<DocChannelRow[]> {
    // The index is keyed (channel, doc_id): this scans it, as purge does. Fine for an admin
    // inspection; an index on doc_id would make both point lookups.
    return this.cached<[string], { channel: string; seq: number; rev: string; deleted: number; removed: number }>(
      'SELECT channel, seq, rev, deleted, removed FROM channel_index WHERE doc_id = ? ORDER BY channel',
    ).all(id).map((r) => ({ channel: r.channel, seq: r.seq, rev: r.rev, deleted: r.deleted === 1, removed: r.removed === 1 }));
  }

  async channelTail(channel: string, limit: number): Promise<ChangeRow[]> {
    const rows = this.cached<[string, number], { seq: number; doc_id: string; rev: string; deleted: number; removed: number }>(
      'SELECT seq, doc_id, rev, deleted, removed FROM channel_index WHERE channel = ? ORDER BY seq DESC LIMIT ?',
    ).all(channel, limit);
    return rows.reverse().map((r) => ({
      seq: r.seq, id: r.doc_id, rev: r.rev, deleted: r.deleted === 1, ...(r.removed ? { removed: channel } : {}),
    }));
  }

  async getAttachment(digest: string): Promise<Buffer | undefined> {
    return this.stmts.getAtt.get(digest)?.data;
  }

  async hasAttachments(digests: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks([...new Set(digests)])) {
      const rows = this.cached<string[], { digest: string }>(
        `SELECT digest FROM attachments WHERE digest IN (${part.map(() => '?').join(',')})`,
      ).all(...part);
      for (const r of rows) out.add(r.digest);
    }
    return out;
  }

  async findAttachments(digests: string[]): Promise<AttachmentKey[]> {
    const out = new Map<string, AttachmentKey>();
    for (const part of chunks([...new Set(digests)], IN_CHUNK / 2)) {
      const marks = part.map(() => '?').join(',');
      const rows = this.cached<string[], AttachmentKey>(
        `SELECT digest, md5, length(data) AS length FROM attachments WHERE digest IN (${marks}) OR md5 IN (${marks})`,
      ).all(...part, ...part);
      for (const r of rows) out.set(r.digest, r);
    }
    return [...out.values()];
  }

  async getLocal(id: string): Promise<LocalDoc | undefined> {
    return this.stmts.getLocal.get(id);
  }

  async putLocal(id: string, expectedRev: number, body: string): Promise<number | null> {
    const tx = this.db.transaction(() => {
      const cur = this.stmts.getLocal.get(id)?.rev ?? 0;
      if (cur !== expectedRev) return null;
      this.stmts.putLocal.run(id, cur + 1, body);
      return cur + 1;
    });
    return tx();
  }

  async deleteLocal(id: string, expectedRev: number): Promise<boolean> {
    const tx = this.db.transaction(() => {
      const cur = this.stmts.getLocal.get(id)?.rev ?? 0;
      if (cur === 0 || cur !== expectedRev) return false;
      this.stmts.deleteLocal.run(id);
      return true;
    });
    return tx();
  }

  async tombstonesBefore(beforeSecs: number, limit: number): Promise<string[]> {
    return this.cached<[number, number], { id: string }>(
      'SELECT id FROM docs WHERE tombstoned_at IS NOT NULL AND tombstoned_at <= ? ORDER BY tombstoned_at LIMIT ?',
    ).all(beforeSecs, limit).map((r) => r.id);
  }

  async compactAttachments(dryRun: boolean): Promise<{ referenced: number; removed: number }> {
    // One transaction (SQLite has one writer): no commit can add a reference between the count and the delete.
    // Retained old revisions (delta sources, `GET ?rev=` of a replaced revision) reference bytes too.
    const used = `SELECT json_extract(e.value, '$.digest') AS digest FROM revs, json_each(revs.atts) e
      WHERE revs.atts IS NOT NULL AND json_extract(e.value, '$.digest') IS NOT NULL
      UNION SELECT json_extract(e.value, '$.digest') FROM old_revs, json_each(old_revs.atts) e
      WHERE old_revs.atts IS NOT NULL AND json_extract(e.value, '$.digest') IS NOT NULL`;
    const tx = this.db.transaction(() => {
      const referenced = this.cached<[], { n: number }>(`SELECT count(DISTINCT digest) AS n FROM (${used})`).get()!.n;
      const removed = dryRun
        ? this.cached<[], { n: number }>(`SELECT count(*) AS n FROM attachments WHERE digest NOT IN (${used})`).get()!.n
        : this.cached(`DELETE FROM attachments WHERE digest NOT IN (${used})`).run().changes;
      return { referenced, removed };
    });
    return tx();
  }

  /** Measured on a 100,000-document resync (bench/resync.ts): RSS grew by 265 MB with the map and cache, 36 MB without. */
  async bulkScan(on: boolean): Promise<void> {
    this.db.pragma(`cache_size = -${on ? BULK_SCAN_CACHE_KIB : CACHE_KIB}`);
    this.db.pragma(`mmap_size = ${on ? 0 : MMAP_BYTES}`);
  }

  async getJobRecord(job: string): Promise<string | undefined> {
    return this.stmts.getMeta.get(`job:${job}`)?.value;
  }

  async putJobRecord(job: string, expected: string | undefined, value: string): Promise<boolean> {
    const tx = this.db.transaction(() => {
      if (this.stmts.getMeta.get(`job:${job}`)?.value !== expected) return false;
      this.stmts.setMeta.run(`job:${job}`, value);
      return true;
    });
    return tx();
  }

  async uuid(): Promise<string> { return this.stmts.getMeta.get('uuid')!.value; }


  /** Named collections: built by the storage part of the collections work (not yet). */
  async collection(scope: string, name: string): Promise<CollectionStore> {
    if (scope === '_default' && name === '_default') return this;
    throw new Error(`collection ${scope}.${name}: named collections are not stored yet`);
  }
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
