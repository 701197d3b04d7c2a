/**
 * The embedded default backend: one SQLite file per database, in WAL mode.
 * SQLite has a single writer, so sequences are assigned in commit order for free: a changes reader
 * can never see sequence N+1 before N.
 *
 * The store is its own default collection (collection.ts, on the original tables); named
 * collections get tables of their own, made the first time `collection()` names them, and share
 * the file's sequence counter, attachment bytes, principals and sessions.
 */
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CollectionStore, GrantRow, PrincipalKind, PrincipalPage, PrincipalRecord, SessionRecord, Store } from '../store.ts';
import { SqliteCollection, collectionTables } from './collection.ts';
import { SqliteShared, chunks, marks } from './shared.ts';
import { checkVersion, collectionPrefix, collectionTablesSql, migrate } from './schema.ts';

export interface SqliteOptions {
  /** File path, or ':memory:'. */
  path: string;
  /**
   * 'full' fsyncs every commit so that an acknowledged write survives power loss, not just a process
   * crash. 'normal' survives process crashes only.
   */
  synchronous?: 'full' | 'normal';
}

/** Page cache per database (KiB): SQLite's default is 2 MB. */
const CACHE_KIB = 64 * 1024;
/** Reads through mmap up to this much of the file (the cache above then holds mostly dirty pages). */
const MMAP_BYTES = 1024 * 1024 * 1024;
/** Page cache while a job reads the whole file once (bulkScan): it would only hold pages read once. */
const BULK_SCAN_CACHE_KIB = 2 * 1024;

/** Opens (creating if needed) and migrates the file; a file we refuse is closed again. */
function openFile(opts: SqliteOptions): Database.Database {
  if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
  const db = new Database(opts.path);
  try {
    // The version check comes first: a file we refuse is left exactly as it was.
    checkVersion(db);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    db.pragma('busy_timeout = 5000');
    // Reads of bodies and revision trees are point lookups spread over the whole file: with
    // SQLite's default 2 MB page cache nearly every one was a miss and a pread (a fifth of the
    // server's CPU when 1,000 users pulled at once). A larger cache plus memory-mapped reads
    // keep the hot part of the file in the process at no copy.
    db.pragma(`cache_size = -${CACHE_KIB}`);
    db.pragma(`mmap_size = ${MMAP_BYTES}`);
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** A named collection as the registry lists it. */
interface Registered { id: number; scope: string; name: string }

export class SqliteStore extends SqliteCollection implements Store {
  /** Named collections this process has opened, by `scope.name`. */
  private readonly named = new Map<string, SqliteCollection>();
  private readonly st;

  constructor(opts: SqliteOptions) {
    super(new SqliteShared(openFile(opts)), collectionTables(''));
    const db = this.db;
    this.st = {
      getPrincipal: db.prepare<[string, string], { data: string; seq: number }>('SELECT data, seq FROM principals WHERE kind = ? AND name = ?'),
      putPrincipal: db.prepare('INSERT OR REPLACE INTO principals (kind, name, data, seq) VALUES (?, ?, ?, ?)'),
      deletePrincipal: db.prepare('DELETE FROM principals WHERE kind = ? AND name = ?'),
      listPrincipals: db.prepare<[string, string, string, number, string, number], { name: string }>(
        'SELECT name FROM principals WHERE kind = ? AND name >= ? AND name > ? AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?'),
      putSession: db.prepare('INSERT OR REPLACE INTO sessions (id, user, expires, ttl) VALUES (?, ?, ?, ?)'),
      getSession: db.prepare<[string], { id: string; user: string; expires: number; ttl: number }>('SELECT id, user, expires, ttl FROM sessions WHERE id = ?'),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
      deleteUserSessions: db.prepare('DELETE FROM sessions WHERE user = ?'),
      registry: db.prepare<[], Registered>('SELECT id, scope, name FROM collections ORDER BY id'),
      register: db.prepare('INSERT OR IGNORE INTO collections (scope, name) VALUES (?, ?)'),
      registered: db.prepare<[string, string], { id: number }>('SELECT id FROM collections WHERE scope = ? AND name = ?'),
    };
    if (!this.sh.stmts.getMeta.get('uuid')) this.sh.stmts.setMeta.run('uuid', randomUUID().replace(/-/g, ''));
  }

  async accessVersion(): Promise<number> { return this.sh.accessEpoch; }

  /**
   * The default collection is this store; a named one gets its registry row and tables in one
   * (immediate) transaction the first time any process names it, then is cached.
   */
  async collection(scope: string, name: string): Promise<CollectionStore> {
    if (scope === '_default' && name === '_default') return this;
    // `scope.name` keys grants and wake-ups: a part that is empty or holds a dot would make it ambiguous.
    if (!/^[^.]+$/.test(scope) || !/^[^.]+$/.test(name)) throw new Error(`collection name "${scope}.${name}" needs two non-empty parts without dots`);
    const key = `${scope}.${name}`;
    let c = this.named.get(key);
    if (c) return c;
    const id = this.db.transaction(() => {
      this.st.register.run(scope, name);
      const { id } = this.st.registered.get(scope, name)!;
      this.db.exec(collectionTablesSql(collectionPrefix(id)));
      return id;
    }).immediate();
    c = new SqliteCollection(this.sh, collectionTables(collectionPrefix(id)));
    this.named.set(key, c);
    return c;
  }

  async listCollections(): Promise<{ scope: string; name: string }[]> {
    return this.st.registry.all().map((r) => ({ scope: r.scope, name: r.name }))
      .sort((a, b) => (a.scope === b.scope ? cmp(a.name, b.name) : cmp(a.scope, b.scope)));
  }

  /**
   * The default collection's table prefix ('') with no key, then every registered collection's, from
   * the file rather than the cache: a collection this process has not opened still has grants and
   * attachment references.
   */
  private everyCollection(): { prefix: string; key?: string }[] {
    return [{ prefix: '' }, ...this.st.registry.all().map((r) => ({ prefix: collectionPrefix(r.id), key: `${r.scope}.${r.name}` }))];
  }

  async getPrincipal(kind: PrincipalKind, name: string): Promise<PrincipalRecord | undefined> {
    const r = this.st.getPrincipal.get(kind, name);
    return r ? { ...JSON.parse(r.data), kind, name, seq: r.seq } : undefined;
  }

  async listPrincipals(kind: PrincipalKind, page: PrincipalPage = {}): Promise<string[]> {
    const prefix = page.prefix ?? '';
    // substr counts characters and names are ASCII (PRINCIPAL_NAME), so the prefix's length is its byte length.
    return this.st.listPrincipals.all(kind, prefix, page.after ?? '', prefix.length, prefix, page.limit || -1).map((r) => r.name);
  }

  async putPrincipal(p: Omit<PrincipalRecord, 'seq'>): Promise<number> {
    const tx = this.db.transaction(() => {
      const seq = this.sh.seq + 1;
      const { kind, name, ...data } = p;
      this.st.putPrincipal.run(kind, name, JSON.stringify(data), seq);
      this.sh.accessEpoch++;
      this.sh.advance(seq);
      return seq;
    });
    return this.sh.withSeqRollback(tx);
  }

  async deletePrincipal(kind: PrincipalKind, name: string): Promise<boolean> {
    this.sh.accessEpoch++;
    return this.st.deletePrincipal.run(kind, name).changes > 0;
  }

  /** Grants of every collection's documents; rows of a named collection carry its `scope.name`. */
  async grantsTo(grantees: string[]): Promise<GrantRow[]> {
    const out: GrantRow[] = [];
    const colls = this.everyCollection();
    for (const part of chunks([...new Set(grantees)])) {
      for (const { prefix, key } of colls) {
        const rows = this.sh.cached<string[], { doc_id: string; grantee: string; kind: 'channel' | 'role'; value: string; seq: number }>(
          `SELECT doc_id, grantee, kind, value, seq FROM ${prefix}grants WHERE grantee IN (${marks(part)})`,
        ).all(...part);
        for (const r of rows) {
          out.push({ docId: r.doc_id, grantee: r.grantee, kind: r.kind, value: r.value, seq: r.seq, ...(key ? { collection: key } : {}) });
        }
      }
    }
    return out;
  }

  async grantsChangedAt(grantees: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const part of chunks([...new Set(grantees)])) {
      const rows = this.sh.cached<string[], { grantee: string; seq: number }>(
        `SELECT grantee, seq FROM grant_changes WHERE grantee IN (${marks(part)})`,
      ).all(...part);
      for (const r of rows) out.set(r.grantee, r.seq);
    }
    return out;
  }

  async putSession(sess: SessionRecord): Promise<void> {
    this.st.putSession.run(sess.id, sess.user, sess.expires, sess.ttlMs);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const r = this.st.getSession.get(id);
    return r ? { id: r.id, user: r.user, expires: r.expires, ttlMs: r.ttl } : undefined;
  }

  async deleteSession(id: string): Promise<boolean> {
    return this.st.deleteSession.run(id).changes > 0;
  }

  async deleteUserSessions(user: string): Promise<number> {
    return this.st.deleteUserSessions.run(user).changes;
  }

  async compactAttachments(dryRun: boolean): Promise<{ referenced: number; removed: number }> {
    // One transaction (SQLite has one writer): no commit can add a reference between the count and
    // the delete. Every collection's revisions count, and so do retained old revisions (delta
    // sources, `GET ?rev=` of a replaced revision).
    const tx = this.db.transaction(() => {
      const used = this.everyCollection().flatMap(({ prefix }) => [`${prefix}revs`, `${prefix}old_revs`])
        .map((t) => `SELECT json_extract(e.value, '$.digest') AS digest FROM ${t}, json_each(${t}.atts) e
          WHERE ${t}.atts IS NOT NULL AND json_extract(e.value, '$.digest') IS NOT NULL`)
        .join(' UNION ');
      const referenced = this.sh.cached<[], { n: number }>(`SELECT count(DISTINCT digest) AS n FROM (${used})`).get()!.n;
      const removed = dryRun
        ? this.sh.cached<[], { n: number }>(`SELECT count(*) AS n FROM attachments WHERE digest NOT IN (${used})`).get()!.n
        : this.sh.cached(`DELETE FROM attachments WHERE digest NOT IN (${used})`).run().changes;
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
    return this.sh.stmts.getMeta.get(`job:${job}`)?.value;
  }

  /**
   * Compare-and-swap of a job record. It joins the turn's group commit (shared.ts): job records are
   * written while documents are (an at-least-once webhook's checkpoint every 250 ms, a resync's
   * progress, ISGR checkpoints), and a transaction of their own cost an fsync each on the event loop.
   */
  async putJobRecord(job: string, expected: string | undefined, value: string): Promise<boolean> {
    return this.sh.commitGrouped(this.db.transaction(() => {
      if (this.sh.stmts.getMeta.get(`job:${job}`)?.value !== expected) return false;
      this.sh.stmts.setMeta.run(`job:${job}`, value);
      return true;
    }));
  }

  async uuid(): Promise<string> { return this.sh.stmts.getMeta.get('uuid')!.value; }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
