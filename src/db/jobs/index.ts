/** A database's background jobs, in one place for the admin API, metrics and the console. */
import type { Database, DatabaseJobs } from '../database.ts';
import { ResyncJob } from './resync.ts';
import {
  AttachmentCompaction, DEFAULT_COMPACT_INTERVAL_DAYS, DEFAULT_PURGE_INTERVAL_DAYS, TombstoneCompaction, scheduleCompaction,
} from './compact.ts';
import type { JobHooks } from './job.ts';

export { BackgroundJob, NEVER_STARTED, type JobHooks, type JobRecord, type JobStatus } from './job.ts';
export { DEFAULT_COMPACT_INTERVAL_DAYS, DEFAULT_PURGE_INTERVAL_DAYS } from './compact.ts';

/** Sync Gateway's heartbeat TTL: a cluster-wide job whose node stopped renewing for this long is dead. */
export const LEASE_MS = 30_000;

export interface JobsSettings {
  /** `purge_interval` (days): tombstones older than this are purged by tombstone compaction. */
  purgeIntervalDays?: number;
  /** `compact_interval_days`: automatic tombstone compaction (0: never). */
  compactIntervalDays?: number;
  hooks: JobHooks;
}

export class DbJobs implements DatabaseJobs {
  readonly resync: ResyncJob;
  readonly tombstones: TombstoneCompaction;
  readonly attachments: AttachmentCompaction;
  private readonly timer?: NodeJS.Timeout;

  constructor(db: Database, s: JobsSettings) {
    // One process owns a SQLite file: a record naming another node is a dead process's. Shared
    // storage (PostgreSQL) waits for the lease to lapse instead.
    const leaseMs = db.store.watch ? LEASE_MS : 0;
    this.resync = new ResyncJob(db, db.store, s.hooks, leaseMs, () => {
      // Sync Gateway goes back Offline when a resync ends, however it ends; never online by itself.
      if (db.state === 'Resyncing') db.setState('Offline');
    });
    this.tombstones = new TombstoneCompaction(db, db.store, s.hooks, s.purgeIntervalDays ?? DEFAULT_PURGE_INTERVAL_DAYS);
    this.attachments = new AttachmentCompaction(db.store, s.hooks, leaseMs);
    this.timer = scheduleCompaction(db, this.tombstones, s.compactIntervalDays ?? DEFAULT_COMPACT_INTERVAL_DAYS);
    db.jobs = this;
  }

  get compactRunning(): boolean { return this.tombstones.running; }

  /** Stops every running job after its current step; their records keep the checkpoints. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const job of [this.resync, this.tombstones, this.attachments]) {
      if (job.running) await job.stop().catch(() => undefined);
      await job.settled();
    }
  }
}
