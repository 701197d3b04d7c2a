/**
 * One collection's documents on SQLite: the statements of the CollectionStore contract, built over a
 * map of table names. The default collection (`_default._default`) uses the original tables (`docs`,
 * `revs`, …) and is the SqliteStore itself; a named collection uses its own copies (`c<id>_docs`, …).
 * What the database shares (the sequence counter, attachment bytes, grant change stamps, the access
 * epoch) lives in one SqliteShared (shared.ts) that every collection of the file holds.
 */
import type Database from 'better-sqlite3';
import type {
  AllDocsQuery, AllDocsRow, AttachmentKey, ChangeRow, ChangesQuery, CollectionStore, CommitResult, DocChannelRow, DocWrite, Grant,
  GrantRow, LocalDoc, OldRevisionUsage, StoredDoc, StoredRevision,
} from '../store.ts';
import { bodyKey } from '../store.ts';
import { IN_CHUNK, type SqliteShared, chunks, marks } from './shared.ts';

/** Names of one collection's tables. */
export interface CollectionTables {
  docs: string; revs: string; channels: string; oldRevs: string; locals: string; counts: string; grants: string;
}

/** The tables of the collection whose names carry `prefix` ('' is the default collection's). */
export function collectionTables(prefix: string): CollectionTables {
  return {
    docs: `${prefix}docs`, revs: `${prefix}revs`, channels: `${prefix}channel_index`, oldRevs: `${prefix}old_revs`,
    locals: `${prefix}local_docs`, counts: `${prefix}doc_counts`, grants: `${prefix}grants`,
  };
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

function prepare(db: Database.Database, t: CollectionTables) {
  return {
    getDoc: db.prepare<[string], DocRow>(`SELECT id, tree, rev, deleted, seq, channels, expiry FROM ${t.docs} WHERE id = ?`),
    getRev: db.prepare<[string, string], RevRow>(`SELECT rev, deleted, body, atts, channels FROM ${t.revs} WHERE doc_id = ? AND rev = ?`),
    docSeq: db.prepare<[string], { seq: number; deleted: number }>(`SELECT seq, deleted FROM ${t.docs} WHERE id = ?`),
    // A tombstone keeps the time it was first made through later writes that leave it deleted
    // (another tombstone branch, a resync): the purge interval counts from the deletion.
    upsertDoc: db.prepare(
      `INSERT INTO ${t.docs} AS cur (id, tree, rev, deleted, seq, channels, expiry, tombstoned_at)
       VALUES (@id, @tree, @rev, @deleted, @seq, @channels, @expiry, CASE WHEN @deleted = 1 THEN @now END)
       ON CONFLICT(id) DO UPDATE SET tree = excluded.tree, rev = excluded.rev, deleted = excluded.deleted,
         seq = excluded.seq, channels = excluded.channels, expiry = excluded.expiry,
         tombstoned_at = CASE WHEN excluded.deleted = 0 THEN NULL
           WHEN cur.deleted = 1 AND cur.tombstoned_at IS NOT NULL THEN cur.tombstoned_at ELSE excluded.tombstoned_at END`),
    insertRev: db.prepare(
      `INSERT OR REPLACE INTO ${t.revs} (doc_id, rev, deleted, body, atts, channels) VALUES (?, ?, ?, ?, ?, ?)`),
    deleteRev: db.prepare(`DELETE FROM ${t.revs} WHERE doc_id = ? AND rev = ?`),
    retireRev: db.prepare(
      `INSERT OR REPLACE INTO ${t.oldRevs} (doc_id, rev, deleted, body, atts, channels, expires)
       SELECT doc_id, rev, deleted, body, atts, channels, ? FROM ${t.revs} WHERE doc_id = ? AND rev = ?`),
    getOldRev: db.prepare<[string, string, number], RevRow>(
      `SELECT rev, deleted, body, atts, channels FROM ${t.oldRevs} WHERE doc_id = ? AND rev = ? AND expires > ?`),
    expiredOldRevs: db.prepare<[number, number], { doc_id: string; rev: string }>(
      `SELECT doc_id, rev FROM ${t.oldRevs} WHERE expires <= ? ORDER BY expires LIMIT ?`),
    deleteOldRev: db.prepare(`DELETE FROM ${t.oldRevs} WHERE doc_id = ? AND rev = ?`),
    oldRevUsage: db.prepare<[], { n: number; bytes: number | null }>(
      `SELECT count(*) AS n, sum(length(CAST(body AS BLOB))) AS bytes FROM ${t.oldRevs}`),
    upsertChannel: db.prepare(
      `INSERT INTO ${t.channels} (channel, doc_id, seq, rev, deleted, removed) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(channel, doc_id) DO UPDATE SET seq = excluded.seq, rev = excluded.rev,
         deleted = excluded.deleted, removed = excluded.removed`),
    getLocal: db.prepare<[string], { rev: number; body: string }>(`SELECT rev, body FROM ${t.locals} WHERE id = ?`),
    putLocal: db.prepare(`INSERT OR REPLACE INTO ${t.locals} (id, rev, body) VALUES (?, ?, ?)`),
    deleteLocal: db.prepare(`DELETE FROM ${t.locals} WHERE id = ?`),
    docCounts: db.prepare<[], { live: number; deleted: number }>(`SELECT live, deleted FROM ${t.counts} WHERE id = 1`),
    addDocCounts: db.prepare(`UPDATE ${t.counts} SET live = live + ?, deleted = deleted + ? WHERE id = 1`),
    docGrants: db.prepare<[string], Grant & { seq: number }>(`SELECT grantee, kind, value, seq FROM ${t.grants} WHERE doc_id = ?`),
    deleteDocGrants: db.prepare(`DELETE FROM ${t.grants} WHERE doc_id = ?`),
    insertGrant: db.prepare(`INSERT OR REPLACE INTO ${t.grants} (doc_id, grantee, kind, value, seq) VALUES (?, ?, ?, ?, ?)`),
    expired: db.prepare<[number, number], { id: string }>(
      `SELECT id FROM ${t.docs} WHERE expiry IS NOT NULL AND expiry <= ? ORDER BY expiry LIMIT ?`),
    allChanges: db.prepare<[number, number, number], { seq: number; id: string; rev: string; deleted: number }>(
      `SELECT seq, id, rev, deleted FROM ${t.docs} WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`),
    purgeDoc: db.prepare(`DELETE FROM ${t.docs} WHERE id = ?`),
    purgeRevs: db.prepare(`DELETE FROM ${t.revs} WHERE doc_id = ?`),
    purgeOldRevs: db.prepare(`DELETE FROM ${t.oldRevs} WHERE doc_id = ?`),
    purgeChannels: db.prepare(`DELETE FROM ${t.channels} WHERE doc_id = ?`),
    tombstones: db.prepare<[number, number], { id: string }>(
      `SELECT id FROM ${t.docs} WHERE tombstoned_at IS NOT NULL AND tombstoned_at <= ? ORDER BY tombstoned_at LIMIT ?`),
  };
}

export class SqliteCollection implements CollectionStore {
  protected readonly sh: SqliteShared;
  protected readonly db: Database.Database;
  readonly tables: CollectionTables;
  private readonly stmts;
  private readonly commitTx: (writes: DocWrite[]) => CommitResult[];

  constructor(shared: SqliteShared, tables: CollectionTables) {
    this.sh = shared;
    this.db = shared.db;
    this.tables = tables;
    this.stmts = prepare(this.db, tables);
    this.commitTx = this.db.transaction((writes: DocWrite[]) => {
      const before = this.sh.seq;
      const counts = { live: 0, deleted: 0 };
      const results = writes.map((w) => this.applyWrite(w, counts));
      // Once per transaction, not once per document: readers only see the committed whole anyway.
      if (this.sh.seq !== before) this.sh.advance(this.sh.seq);
      if (counts.live !== 0 || counts.deleted !== 0) this.stmts.addDocCounts.run(counts.live, counts.deleted);
      return results;
    });
  }

  /** Applies one write of a commit; `counts` gathers the change in live and deleted documents. */
  private applyWrite(w: DocWrite, counts: { live: number; deleted: number }): CommitResult {
    const s = this.stmts;
    const row = s.docSeq.get(w.id);
    if ((row?.seq ?? 0) !== w.expectedSeq) return { ok: false, reason: 'conflict' };
    if (row) counts[row.deleted ? 'deleted' : 'live']--;
    counts[w.deleted ? 'deleted' : 'live']++;
    const seq = this.sh.seq + 1;
    if (w.attachments) for (const [digest, a] of w.attachments) this.sh.stmts.insertAtt.run(digest, a.md5, a.data);
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
    this.sh.seq = grantees.length ? seq + 1 : seq;
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
    for (const grantee of changed) this.sh.stmts.stampGrantee.run(grantee, stampSeq);
    this.sh.accessEpoch++;
    return [...changed];
  }

  async lastSeq(): Promise<number> { return this.sh.seq; }

  async getDoc(id: string): Promise<StoredDoc | undefined> {
    const r = this.stmts.getDoc.get(id);
    return r ? toStoredDoc(r) : undefined;
  }

  async getDocs(ids: string[]): Promise<Map<string, StoredDoc>> {
    const out = new Map<string, StoredDoc>();
    for (const part of chunks([...new Set(ids)])) {
      const rows = this.sh.cached<string[], DocRow>(
        `SELECT id, tree, rev, deleted, seq, channels, expiry FROM ${this.tables.docs} WHERE id IN (${marks(part)})`,
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
    return this.sh.commitGrouped(() => this.commitTx(writes));
  }

  async purge(id: string): Promise<boolean> {
    const s = this.stmts;
    const tx = this.db.transaction(() => {
      const gone = s.docSeq.get(id);
      const r = s.purgeDoc.run(id);
      if (gone) s.addDocCounts.run(gone.deleted ? 0 : -1, gone.deleted ? -1 : 0);
      s.purgeRevs.run(id);
      s.purgeOldRevs.run(id);
      s.purgeChannels.run(id);
      // Purging a granting document revokes its grants: stamp the grantees with a new sequence.
      if (s.docGrants.all(id).length > 0) {
        const seq = this.sh.seq + 1;
        this.replaceGrants(id, [], seq, seq);
        this.sh.advance(seq);
      }
      return r.changes > 0;
    });
    return this.sh.withSeqRollback(tx);
  }

  async expired(nowSecs: number, limit: number): Promise<string[]> {
    return this.stmts.expired.all(nowSecs, limit).map((r) => r.id);
  }

  async grantsBy(docId: string): Promise<GrantRow[]> {
    return this.stmts.docGrants.all(docId).map((g) => ({ docId, grantee: g.grantee, kind: g.kind, value: g.value, seq: g.seq }));
  }

  async changes(q: ChangesQuery): Promise<ChangeRow[]> {
    const until = q.until ?? this.sh.seq;
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
        const found = this.sh.cached<unknown[], { seq: number; id: string; rev: string; deleted: number }>(
          `SELECT seq, id, rev, deleted FROM ${this.tables.docs} WHERE seq > ? AND seq <= ? AND id IN (${marks(part)})`,
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
    const t = this.tables.channels;
    const chIn = `channel IN (${marks(channels)})`;
    let hi = until;
    if (limit > 0 && !docIds) {
      const cut = this.sh.cached<unknown[], { seq: number }>(
        `SELECT seq FROM ${t} WHERE ${chIn} AND seq > ? AND seq <= ? GROUP BY seq ORDER BY seq LIMIT 1 OFFSET ?`,
      ).get(...channels, since, until, limit - 1);
      if (cut) hi = cut.seq;
    }
    type Row = { channel: string; seq: number; doc_id: string; rev: string; deleted: number; removed: number };
    const raw: Row[] = [];
    for (const part of docIds ? chunks(docIds) : [undefined]) {
      const idIn = part ? ` AND doc_id IN (${marks(part)})` : '';
      raw.push(...this.sh.cached<unknown[], Row>(
        `SELECT channel, seq, doc_id, rev, deleted, removed FROM ${t}
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
    const sql = `SELECT id, rev, seq, deleted, channels FROM ${this.tables.docs} ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY id ${q.descending ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`;
    args.push(q.limit !== undefined && q.limit >= 0 ? q.limit : -1, q.skip ?? 0);
    return this.sh.cached<unknown[], { id: string; rev: string; seq: number; deleted: number; channels: string }>(sql)
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
    return this.sh.cached<[string], { channel: string; seq: number; rev: string; deleted: number; removed: number }>(
      `SELECT channel, seq, rev, deleted, removed FROM ${this.tables.channels} WHERE doc_id = ? ORDER BY channel`,
    ).all(id).map((r) => ({ channel: r.channel, seq: r.seq, rev: r.rev, deleted: r.deleted === 1, removed: r.removed === 1 }));
  }

  async channelTail(channel: string, limit: number): Promise<ChangeRow[]> {
    const rows = this.sh.cached<[string, number], { seq: number; doc_id: string; rev: string; deleted: number; removed: number }>(
      `SELECT seq, doc_id, rev, deleted, removed FROM ${this.tables.channels} WHERE channel = ? ORDER BY seq DESC LIMIT ?`,
    ).all(channel, limit);
    return rows.reverse().map((r) => ({
      seq: r.seq, id: r.doc_id, rev: r.rev, deleted: r.deleted === 1, ...(r.removed ? { removed: channel } : {}),
    }));
  }

  // Attachment bytes are content-addressed and shared by every collection of the database.
  async getAttachment(digest: string): Promise<Buffer | undefined> {
    return this.sh.stmts.getAtt.get(digest)?.data;
  }

  async hasAttachments(digests: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks([...new Set(digests)])) {
      const rows = this.sh.cached<string[], { digest: string }>(`SELECT digest FROM attachments WHERE digest IN (${marks(part)})`).all(...part);
      for (const r of rows) out.add(r.digest);
    }
    return out;
  }

  async findAttachments(digests: string[]): Promise<AttachmentKey[]> {
    const out = new Map<string, AttachmentKey>();
    for (const part of chunks([...new Set(digests)], IN_CHUNK / 2)) {
      const rows = this.sh.cached<string[], AttachmentKey>(
        `SELECT digest, md5, length(data) AS length FROM attachments WHERE digest IN (${marks(part)}) OR md5 IN (${marks(part)})`,
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
    return this.stmts.tombstones.all(beforeSecs, limit).map((r) => r.id);
  }
}
