/**
 * `_resync`: runs the current revision of every document through the database's (current) sync
 * function again, as the admin, and commits what changed (channels, access and role grants)
 * through the one write path. Pages of documents in id order from a persisted checkpoint: memory
 * stays flat, and a stop or a crash resumes where it was.
 */
import { HttpError } from '../../errors.ts';
import type { Database } from '../database.ts';
import { type Collection, DEFAULT_KEY, splitCollectionKey } from '../collection.ts';
import type { Store } from '../../storage/store.ts';
import { BackgroundJob, type JobHooks, type JobRecord } from './job.ts';

/** Documents per step: one storage round trip for the docs, one for bodies, one commit. */
export const RESYNC_PAGE = 500;

export interface ResyncOptions { regenerateSequences: boolean }

export class ResyncJob extends BackgroundJob {
  constructor(private readonly db: Database, store: Store, hooks: JobHooks, leaseMs: number, private readonly onFinish: () => void) {
    super('resync', store, {
      persist: 'resync', leaseMs, counters: ['docs_changed', 'docs_processed'],
      messages: {
        // Another node's run (its lease is live), or one starting there at the same moment.
        alreadyRunning: new HttpError(503, 'Process already running'),
        notRunning: new HttpError(400, 'Database _resync is not running'),
      },
    }, hooks);
  }

  /**
   * One page of one collection. A run lists its collections (`options.collections`, keys in order)
   * and its checkpoint is `<index>:<last doc id>`; a record written before collections has neither
   * and is the default collection with a bare doc id.
   */
  protected async step(rec: JobRecord): Promise<boolean> {
    const keys = Array.isArray(rec.options.collections) ? rec.options.collections as string[] : undefined;
    let index = 0;
    let after = rec.checkpoint;
    if (keys && after !== undefined) {
      const colon = after.indexOf(':');
      index = Number(after.slice(0, colon));
      after = after.slice(colon + 1);
    }
    for (;;) {
      const key = keys ? keys[index] : DEFAULT_KEY;
      if (key === undefined) return false;
      const coll = collectionByKey(this.db, key);
      // A collection gone from the config since the run started: nothing left to resync there.
      const rows = coll ? await coll.store.allDocs({ startkey: after, limit: RESYNC_PAGE + 1, includeDeleted: true }) : [];
      // allDocs' startkey is inclusive: ask for one more and drop the checkpoint itself.
      const ids = rows.map((r) => r.id).filter((id) => id !== after).slice(0, RESYNC_PAGE);
      if (ids.length === 0) {
        if (!keys) return false;
        index++;
        after = undefined;
        continue;
      }
      const changed = await coll!.resyncDocs(ids, rec.options.regenerate_sequences === true);
      rec.counters.docs_processed += ids.length;
      rec.counters.docs_changed += changed;
      rec.checkpoint = keys ? `${index}:${ids[ids.length - 1]}` : ids[ids.length - 1];
      return true;
    }
  }

  protected view(rec: JobRecord): Record<string, unknown> {
    const out: Record<string, unknown> = {
      status: rec.status, start_time: rec.start_time, last_error: rec.last_error, resync_id: rec.id,
      docs_changed: rec.counters.docs_changed ?? 0, docs_processed: rec.counters.docs_processed ?? 0,
    };
    // Sync Gateway 3.1 names the collections a run covers: `{scope: [collection, ...]}`.
    const keys = rec.options.collections;
    if (Array.isArray(keys) && !(keys.length === 1 && keys[0] === DEFAULT_KEY)) {
      const byScope: Record<string, string[]> = {};
      for (const key of rec.options.collections as string[]) {
        const [scope, name] = splitCollectionKey(key);
        (byScope[scope] ??= []).push(name);
      }
      out.collections_processing = byScope;
    }
    return out;
  }

  protected override onEnd(): void { this.onFinish(); }

  // Every document is read once: memory stays flat however large the database (Store.bulkScan).
  protected override async beforeRun(): Promise<void> { await this.store.bulkScan?.(true); }
  protected override async afterRun(): Promise<void> { await this.store.bulkScan?.(false); }
}

function collectionByKey(db: Database, key: string): Collection | undefined {
  const [scope, name] = splitCollectionKey(key);
  return db.collection(scope, name);
}

/**
 * The collections a `_resync` covers: `scopes` (`{scope: [collection, ...]}`, Sync Gateway 3.1)
 * names some, else every collection of the database. An unknown one is a 404 like any keyspace.
 */
export function resyncCollections(db: Database, scopes: unknown): string[] {
  if (scopes === undefined || scopes === null) return db.collections().map((c) => c.key);
  if (typeof scopes !== 'object' || Array.isArray(scopes)) throw new HttpError(400, 'scopes must be an object of scope names to collection name lists');
  const out: string[] = [];
  for (const [scope, names] of Object.entries(scopes as Record<string, unknown>)) {
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new HttpError(400, `scopes.${scope} must be a list of collection names`);
    for (const name of names as string[]) {
      const c = db.collection(scope, name);
      if (!c) throw new HttpError(404, `keyspace ${db.name}.${scope}.${name} not found`);
      if (!out.includes(c.key)) out.push(c.key);
    }
  }
  return out;
}
