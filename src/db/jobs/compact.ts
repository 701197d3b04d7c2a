/**
 * `_compact`: tombstone compaction purges tombstones older than the purge interval (node-local, as
 * in Sync Gateway; also run every `compact_interval_days`); attachment compaction removes the
 * attachment bodies no revision references (cluster-wide, one node at a time).
 */
import { HttpError } from '../../errors.ts';
import type { Database } from '../database.ts';
import type { Store } from '../../storage/store.ts';
import type { Collection } from '../collection.ts';
import { BackgroundJob, type JobHooks, type JobRecord } from './job.ts';

/** Sync Gateway's default metadata purge interval when the bucket gives none: 30 days. */
export const DEFAULT_PURGE_INTERVAL_DAYS = 30;
/** Sync Gateway's default `compact_interval_days`. */
export const DEFAULT_COMPACT_INTERVAL_DAYS = 1;
const DAY_MS = 24 * 3600 * 1000;
const PAGE = 500;

export class TombstoneCompaction extends BackgroundJob {
  constructor(private readonly db: Database, store: Store, hooks: JobHooks, private readonly purgeIntervalDays: number) {
    super('tombstone_compaction', store, {
      leaseMs: 0, counters: ['docs_purged'],
      messages: {
        alreadyRunning: new HttpError(503, 'Database compact already in progress'),
        notRunning: new HttpError(400, 'Database compact is not running'),
      },
    }, hooks);
  }

  protected async step(rec: JobRecord): Promise<boolean> {
    const cutoff = Math.floor((Date.now() - this.purgeIntervalDays * DAY_MS) / 1000);
    // Every collection's tombstones, one page from the first that has any.
    let ids: string[] = [];
    let coll: Collection = this.db;
    for (const c of this.db.collections()) {
      ids = await c.store.tombstonesBefore(cutoff, PAGE);
      coll = c;
      if (ids.length) break;
    }
    // Through the collection's purge: feeds and grantees are woken as for `_purge`.
    for (const id of ids) if (await coll.purge(id)) rec.counters.docs_purged++;
    // A short page from one collection says nothing of the next: done only when a pass finds none.
    return ids.length > 0;
  }

  protected view(rec: JobRecord): Record<string, unknown> {
    return { status: rec.status, start_time: rec.start_time, last_error: rec.last_error, docs_purged: rec.counters.docs_purged ?? 0 };
  }
}

export class AttachmentCompaction extends BackgroundJob {
  constructor(store: Store, hooks: JobHooks, leaseMs: number) {
    super('attachment_compaction', store, {
      persist: 'attachment_compaction', leaseMs, counters: ['marked_attachments', 'purged_attachments'],
      messages: {
        alreadyRunning: new HttpError(503, 'Process already running'),
        notRunning: new HttpError(503, 'Process already stopped'),
      },
    }, hooks);
  }

  /** Mark and sweep in one storage transaction (the store's compactAttachments): a single step. */
  protected async step(rec: JobRecord): Promise<boolean> {
    const r = await this.store.compactAttachments(rec.options.dry_run === true);
    rec.counters.marked_attachments = r.referenced;
    rec.counters.purged_attachments = r.removed;
    return false;
  }

  protected view(rec: JobRecord): Record<string, unknown> {
    const out: Record<string, unknown> = {
      status: rec.status, start_time: rec.start_time, last_error: rec.last_error,
      marked_attachments: rec.counters.marked_attachments ?? 0, purged_attachments: rec.counters.purged_attachments ?? 0,
      compact_id: rec.id,
    };
    if (rec.options.dry_run === true) out.dry_run = true;
    return out;
  }
}

/** How often the schedule looks whether a run is due (timers cannot wait past 2^31 ms, ~24.8 days). */
const SCHEDULE_TICK_MS = 3600 * 1000;

/** Runs tombstone compaction every `intervalDays` (0: never) while the database is online. */
export function scheduleCompaction(db: Database, job: TombstoneCompaction, intervalDays: number): NodeJS.Timeout | undefined {
  if (!(intervalDays > 0)) return undefined;
  const intervalMs = intervalDays * DAY_MS;
  let last = Date.now();
  const timer = setInterval(() => {
    if (Date.now() - last < intervalMs || db.state !== 'Online' || job.running) return;
    last = Date.now();
    job.start({}).catch(() => { /* already running: the next tick tries again */ });
  }, Math.min(intervalMs, SCHEDULE_TICK_MS));
  timer.unref();
  return timer;
}
