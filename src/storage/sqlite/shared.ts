/**
 * What every collection of one SQLite file shares: the connection, the database-wide sequence
 * counter, the access epoch, and the statements on shared tables (meta, attachments, grant stamps).
 */
import type Database from 'better-sqlite3';

/** SQLite limits bound parameters per statement; chunk IN lists well below it. */
export const IN_CHUNK = 500;

export function chunks<T>(items: T[], size = IN_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export const marks = (items: unknown[]): string => items.map(() => '?').join(',');

/** What every collection of one file shares: the connection, the sequence counter, attachments. */
export class SqliteShared {
  readonly db: Database.Database;
  /** Last committed sequence, database-wide: every collection's commits draw from it. */
  seq: number;
  /**
   * Moves on every change that can alter someone's access (principal saves and deletions, grant
   * changes in any collection): the access version (see Store.accessVersion), so that document
   * writes, which are nearly all writes, leave every user's cached access valid. A process-local
   * counter, never reused, so a bump inside a transaction that rolls back only costs a recomputation.
   */
  accessEpoch = 0;
  /**
   * Statements whose SQL varies (IN lists of n placeholders, per-collection tables), compiled once
   * per distinct text: compiling on every call was a tenth of server CPU on the authenticated-GET path.
   */
  private readonly dynamic = new Map<string, Database.Statement>();
  readonly stmts;
  /** Document commits waiting for this turn's group transaction (see `commitGrouped`). */
  private grouped: { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];

  constructor(db: Database.Database) {
    this.db = db;
    this.stmts = {
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      insertAtt: db.prepare('INSERT OR IGNORE INTO attachments (digest, md5, data) VALUES (?, ?, ?)'),
      getAtt: db.prepare<[string], { data: Buffer }>('SELECT data FROM attachments WHERE digest = ?'),
      stampGrantee: db.prepare('INSERT OR REPLACE INTO grant_changes (grantee, seq) VALUES (?, ?)'),
    };
    this.seq = Number(this.stmts.getMeta.get('last_seq')?.value ?? 0);
  }

  cached<P extends unknown[], R>(sql: string): Database.Statement<P, R> {
    let st = this.dynamic.get(sql);
    if (!st) {
      if (this.dynamic.size >= 500) this.dynamic.clear(); // bounded: IN-list sizes are few in practice
      st = this.db.prepare(sql);
      this.dynamic.set(sql, st);
    }
    return st as unknown as Database.Statement<P, R>;
  }

  /** Records a sequence taken inside the running transaction. */
  advance(seq: number): void {
    this.seq = seq;
    this.stmts.setMeta.run('last_seq', String(seq));
  }

  /**
   * Group commit: document commits issued in the same event-loop turn, from any collection (four
   * collections' BLIP write queues, several connections), run in one SQLite transaction, so one
   * fsync (synchronous=FULL) covers them all instead of one each. Each still succeeds or fails on
   * its own (a savepoint per commit); every promise settles only once the whole group is durable,
   * so an acknowledged write is never lost. Costs a writer one turn of latency.
   */
  commitGrouped<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.grouped.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (this.grouped.length === 1) setImmediate(() => this.flushGroup());
    });
  }

  private flushGroup(): void {
    const group = this.grouped;
    this.grouped = [];
    const before = this.seq;
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.db.transaction(() => {
        for (const g of group) {
          // A nested better-sqlite3 transaction is a savepoint: a failing commit undoes only itself.
          try { outcomes.push({ ok: true, value: this.withSeqRollback(g.run) }); } catch (error) { outcomes.push({ ok: false, error }); }
        }
      })();
    } catch (err) {
      // The group's COMMIT itself failed (disk full, I/O error): nothing of it is stored.
      this.seq = before;
      for (const g of group) g.reject(err);
      return;
    }
    group.forEach((g, i) => {
      const o = outcomes[i];
      if (o.ok) g.resolve(o.value); else g.reject(o.error);
    });
  }

  /**
   * Runs a transaction that may advance the in-memory sequence counter; if it rolls back, so does
   * the counter, so a failed transaction never burns a sequence.
   */
  withSeqRollback<T>(tx: () => T): T {
    const before = this.seq;
    try {
      return tx();
    } catch (err) {
      this.seq = before;
      throw err;
    }
  }
}
