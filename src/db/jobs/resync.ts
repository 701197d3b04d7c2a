/**
 * `_resync`: runs the current revision of every document through the database's (current) sync
 * function again, as the admin, and commits what changed (channels, access and role grants)
 * through the one write path. Pages of documents in id order from a persisted checkpoint: memory
 * stays flat, and a stop or a crash resumes where it was.
 */
import { HttpError } from '../../errors.ts';
import type { Database } from '../database.ts';
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

  protected async step(rec: JobRecord): Promise<boolean> {
    const after = rec.checkpoint;
    // allDocs' startkey is inclusive: ask for one more and drop the checkpoint itself.
    const rows = await this.store.allDocs({ startkey: after, limit: RESYNC_PAGE + 1, includeDeleted: true });
    const ids = rows.map((r) => r.id).filter((id) => id !== after).slice(0, RESYNC_PAGE);
    if (ids.length === 0) return false;
    const changed = await this.db.resyncDocs(ids, rec.options.regenerate_sequences === true);
    rec.counters.docs_processed += ids.length;
    rec.counters.docs_changed += changed;
    rec.checkpoint = ids[ids.length - 1];
    return true;
  }

  protected view(rec: JobRecord): Record<string, unknown> {
    return {
      status: rec.status, start_time: rec.start_time, last_error: rec.last_error, resync_id: rec.id,
      docs_changed: rec.counters.docs_changed ?? 0, docs_processed: rec.counters.docs_processed ?? 0,
    };
  }

  protected override onEnd(): void { this.onFinish(); }

  // Every document is read once: memory stays flat however large the database (Store.bulkScan).
  protected override async beforeRun(): Promise<void> { await this.store.bulkScan?.(true); }
  protected override async afterRun(): Promise<void> { await this.store.bulkScan?.(false); }
}
