/**
 * The embedded default backend: one SQLite file per database, in WAL mode.
 * SQLite has a single writer, so sequences are assigned in commit order for free: a changes reader
 * can never see sequence N+1 before N.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  AllDocsQuery, AllDocsRow, ChangeRow, ChangesQuery, CommitResult, DocWrite, LocalDoc, Store,
  StoredDoc, StoredRevision,
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

interface DocRow { id: string; tree: string; rev: string; deleted: number; seq: number; channels: string }
interface RevRow { rev: string; deleted: number; body: string; atts: string | null }

function toStoredDoc(r: DocRow): StoredDoc {
  return {
    id: r.id, tree: JSON.parse(r.tree), rev: r.rev, deleted: r.deleted === 1, seq: r.seq,
    channels: JSON.parse(r.channels),
  };
}

function toRevision(r: RevRow): StoredRevision {
  return { rev: r.rev, deleted: r.deleted === 1, body: r.body, attachments: r.atts ? JSON.parse(r.atts) : null };
}

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
  private readonly stmts;
  private readonly commitTx: (writes: DocWrite[]) => CommitResult[];

  constructor(opts: SqliteOptions) {
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    try {
      // The version check comes first: a file we refuse is left exactly as it was.
      checkVersion(this.db);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
    const db = this.db;
    this.stmts = {
      getDoc: db.prepare<[string], DocRow>('SELECT id, tree, rev, deleted, seq, channels FROM docs WHERE id = ?'),
      getRev: db.prepare<[string, string], RevRow>('SELECT rev, deleted, body, atts FROM revs WHERE doc_id = ? AND rev = ?'),
      docSeq: db.prepare<[string], { seq: number }>('SELECT seq FROM docs WHERE id = ?'),
      upsertDoc: db.prepare(
        `INSERT INTO docs (id, tree, rev, deleted, seq, channels) VALUES (@id, @tree, @rev, @deleted, @seq, @channels)
         ON CONFLICT(id) DO UPDATE SET tree = excluded.tree, rev = excluded.rev, deleted = excluded.deleted,
           seq = excluded.seq, channels = excluded.channels`),
      insertRev: db.prepare(
        'INSERT OR REPLACE INTO revs (doc_id, rev, deleted, body, atts) VALUES (?, ?, ?, ?, ?)'),
      deleteRev: db.prepare('DELETE FROM revs WHERE doc_id = ? AND rev = ?'),
      upsertChannel: db.prepare(
        `INSERT INTO channel_index (channel, doc_id, seq, rev, deleted, removed) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(channel, doc_id) DO UPDATE SET seq = excluded.seq, rev = excluded.rev,
           deleted = excluded.deleted, removed = excluded.removed`),
      insertAtt: db.prepare('INSERT OR IGNORE INTO attachments (digest, data) VALUES (?, ?)'),
      getAtt: db.prepare<[string], { data: Buffer }>('SELECT data FROM attachments WHERE digest = ?'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      getLocal: db.prepare<[string], { rev: number; body: string }>('SELECT rev, body FROM local_docs WHERE id = ?'),
      putLocal: db.prepare('INSERT OR REPLACE INTO local_docs (id, rev, body) VALUES (?, ?, ?)'),
      deleteLocal: db.prepare('DELETE FROM local_docs WHERE id = ?'),
      countDocs: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM docs WHERE deleted = 0'),
      allChanges: db.prepare<[number, number, number], { seq: number; id: string; rev: string; deleted: number }>(
        'SELECT seq, id, rev, deleted FROM docs WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
    };
    this.seq = Number(this.stmts.getMeta.get('last_seq')?.value ?? 0);
    if (!this.stmts.getMeta.get('uuid')) this.stmts.setMeta.run('uuid', randomUUID().replace(/-/g, ''));
    this.commitTx = this.db.transaction((writes: DocWrite[]) => writes.map((w) => this.applyWrite(w)));
  }

  private applyWrite(w: DocWrite): CommitResult {
    const s = this.stmts;
    const current = s.docSeq.get(w.id)?.seq ?? 0;
    if (current !== w.expectedSeq) return { ok: false, reason: 'conflict' };
    const seq = this.seq + 1;
    if (w.attachments) for (const [digest, data] of w.attachments) s.insertAtt.run(digest, data);
    for (const rev of w.dropBodies) s.deleteRev.run(w.id, rev);
    for (const b of w.addBodies) {
      s.insertRev.run(w.id, b.rev, b.deleted ? 1 : 0, b.body, b.attachments ? JSON.stringify(b.attachments) : null);
    }
    s.upsertDoc.run({
      id: w.id, tree: JSON.stringify(w.tree), rev: w.rev, deleted: w.deleted ? 1 : 0, seq,
      channels: JSON.stringify(w.channels),
    });
    const del = w.deleted ? 1 : 0;
    for (const ch of w.channels) s.upsertChannel.run(ch, w.id, seq, w.rev, del, 0);
    for (const ch of w.previousChannels) {
      if (!w.channels.includes(ch)) s.upsertChannel.run(ch, w.id, seq, w.rev, del, 1);
    }
    this.seq = seq;
    s.setMeta.run('last_seq', String(seq));
    return { ok: true, seq };
  }

  async lastSeq(): Promise<number> { return this.seq; }

  async getDoc(id: string): Promise<StoredDoc | undefined> {
    const r = this.stmts.getDoc.get(id);
    return r ? toStoredDoc(r) : undefined;
  }

  async getDocs(ids: string[]): Promise<Map<string, StoredDoc>> {
    const out = new Map<string, StoredDoc>();
    for (const part of chunks([...new Set(ids)])) {
      const rows = this.db.prepare<string[], DocRow>(
        `SELECT id, tree, rev, deleted, seq, channels FROM docs WHERE id IN (${part.map(() => '?').join(',')})`,
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

  async commit(writes: DocWrite[]): Promise<CommitResult[]> {
    const before = this.seq;
    try {
      return this.commitTx(writes);
    } catch (err) {
      this.seq = before; // the transaction rolled back, and so does our counter
      throw err;
    }
  }

  async purge(id: string): Promise<boolean> {
    const tx = this.db.transaction(() => {
      const r = this.db.prepare('DELETE FROM docs WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM revs WHERE doc_id = ?').run(id);
      this.db.prepare('DELETE FROM channel_index WHERE doc_id = ?').run(id);
      return r.changes > 0;
    });
    return tx();
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
        const found = this.db.prepare<unknown[], { seq: number; id: string; rev: string; deleted: number }>(
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
      const cut = this.db.prepare<unknown[], { seq: number }>(
        `SELECT seq FROM channel_index WHERE ${chIn} AND seq > ? AND seq <= ? GROUP BY seq ORDER BY seq LIMIT 1 OFFSET ?`,
      ).get(...channels, since, until, limit - 1);
      if (cut) hi = cut.seq;
    }
    type Row = { channel: string; seq: number; doc_id: string; rev: string; deleted: number; removed: number };
    const raw: Row[] = [];
    for (const part of docIds ? chunks(docIds) : [undefined]) {
      const idIn = part ? ` AND doc_id IN (${part.map(() => '?').join(',')})` : '';
      raw.push(...this.db.prepare<unknown[], Row>(
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
    if (lo !== undefined) { where.push('id >= ?'); args.push(lo); }
    if (hi !== undefined) { where.push('id <= ?'); args.push(hi); }
    const sql = `SELECT id, rev, seq, deleted, channels FROM docs ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
      ORDER BY id ${q.descending ? 'DESC' : 'ASC'} LIMIT ? OFFSET ?`;
    args.push(q.limit !== undefined && q.limit >= 0 ? q.limit : -1, q.skip ?? 0);
    return this.db.prepare<unknown[], { id: string; rev: string; seq: number; deleted: number; channels: string }>(sql)
      .all(...args)
      .map((r) => ({ id: r.id, rev: r.rev, seq: r.seq, deleted: r.deleted === 1, channels: JSON.parse(r.channels) }));
  }

  async countDocs(): Promise<number> { return this.stmts.countDocs.get()!.n; }

  async getAttachment(digest: string): Promise<Buffer | undefined> {
    return this.stmts.getAtt.get(digest)?.data;
  }

  async hasAttachments(digests: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks([...new Set(digests)])) {
      const rows = this.db.prepare<string[], { digest: string }>(
        `SELECT digest FROM attachments WHERE digest IN (${part.map(() => '?').join(',')})`,
      ).all(...part);
      for (const r of rows) out.add(r.digest);
    }
    return out;
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

  async uuid(): Promise<string> { return this.stmts.getMeta.get('uuid')!.value; }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
