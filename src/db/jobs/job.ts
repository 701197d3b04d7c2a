/**
 * The one shape of a background job (resync, compaction, expiry): start / stop / status, a
 * persisted record holding its status, counters and checkpoint, and a lease in that record so a
 * cluster-wide job runs on one node at a time. The admin API, metrics and logs see every job alike.
 *
 * The record lives in the Store (`getJobRecord` / `putJobRecord`, compare-and-set). A job works in
 * small steps (a page of documents); after each it saves its checkpoint and renews its lease, so
 * memory stays flat and a stop, a crash or another node taking over loses at most one page of work
 * (which is redone: every step is idempotent).
 */
import { randomUUID } from 'node:crypto';
import { HttpError } from '../../errors.ts';
import type { Store } from '../../storage/store.ts';

export type JobStatus = 'running' | 'completed' | 'stopping' | 'stopped' | 'error';

/** Sync Gateway's zero time, the `start_time` of a job that never ran. */
export const NEVER_STARTED = '0001-01-01T00:00:00Z';

/** What a job persists. `counters` and `options` are the job's own; the rest is common. */
export interface JobRecord {
  status: JobStatus;
  start_time: string;
  last_error: string;
  /** `resync_id` / `compact_id`: the same across a stop and a resume. */
  id: string;
  counters: Record<string, number>;
  options: Record<string, unknown>;
  /** Where to go on from (a document id); absent before the first step. */
  checkpoint?: string;
  /** The node running it and when it last renewed its lease (ms since the epoch). */
  node?: string;
  heartbeat?: number;
}

export interface JobHooks {
  log(level: 'info' | 'warn', msg: string): void;
  /** Progress for metrics: called after every step and when the run ends. */
  progress?(job: string, counters: Record<string, number>, running: boolean): void;
}

/** Refusals that differ per job (Sync Gateway words them differently for each). */
export interface JobMessages {
  alreadyRunning: HttpError;
  notRunning: HttpError;
}

export interface JobSettings {
  /** Record name in the Store; undefined: the record is kept in memory only (node-local jobs). */
  persist?: string;
  /** A lease not renewed for this long is taken as a dead node's (Sync Gateway: 30 s heartbeat TTL). */
  leaseMs: number;
  messages: JobMessages;
  counters: string[];
}

export abstract class BackgroundJob {
  /** The record as last read or written by this node (the compare-and-set token when persisted). */
  private raw: string | undefined;
  private rec: JobRecord;
  private loop?: Promise<void>;
  private stopRequested = false;
  private readonly node = randomUUID();

  constructor(
    readonly name: string,
    protected readonly store: Store,
    private readonly settings: JobSettings,
    protected readonly hooks: JobHooks,
  ) {
    this.rec = this.idle();
  }

  /** Running on this node now. */
  get running(): boolean { return this.loop !== undefined; }

  /** One step of work; returns false once there is nothing left. Must be idempotent (a step may be redone). */
  protected abstract step(rec: JobRecord): Promise<boolean>;

  /** The status JSON Sync Gateway shows for this job (built from the record). */
  protected abstract view(rec: JobRecord): Record<string, unknown>;

  /** Called when a run ends on this node, whatever the outcome. */
  protected onEnd(): void {}

  /** Around a run on this node (e.g. a storage hint); errors in them end the run with `error`. */
  protected async beforeRun(): Promise<void> {}
  protected async afterRun(): Promise<void> {}

  private idle(): JobRecord {
    return { status: 'completed', start_time: NEVER_STARTED, last_error: '', id: '', counters: this.zero(), options: {} };
  }

  private zero(): Record<string, number> {
    return Object.fromEntries(this.settings.counters.map((c) => [c, 0]));
  }

  /** The current record: this node's run, else the persisted one (a dead node's run shows `stopped`, repaired). */
  private async current(): Promise<{ raw: string | undefined; rec: JobRecord }> {
    if (this.running || !this.settings.persist) return { raw: this.raw, rec: this.rec };
    const raw = await this.store.getJobRecord(this.settings.persist);
    if (raw === undefined) return { raw, rec: this.idle() };
    const rec = JSON.parse(raw) as JobRecord;
    if ((rec.status === 'running' || rec.status === 'stopping') && this.leaseExpired(rec)) {
      const repaired: JobRecord = { ...rec, status: 'stopped', node: undefined, heartbeat: undefined };
      const text = JSON.stringify(repaired);
      if (await this.store.putJobRecord(this.settings.persist, raw, text)) {
        this.hooks.log('warn', `${this.name}: the run ${rec.id} on another node stopped renewing its lease; marked stopped (a start resumes it)`);
        return { raw: text, rec: repaired };
      }
      return this.current();
    }
    return { raw, rec };
  }

  private leaseExpired(rec: JobRecord): boolean {
    return rec.node !== this.node && (rec.heartbeat ?? 0) < Date.now() - this.settings.leaseMs;
  }

  async status(): Promise<Record<string, unknown>> {
    return this.view((await this.current()).rec);
  }

  /**
   * Starts (or resumes) a run in the background and returns its status. An unfinished earlier run
   * (stopped, failed, or a crashed node's) is resumed with its id, counters and checkpoint unless
   * `reset`; the `options` of a resumed run are the ones it started with.
   */
  async start(options: Record<string, unknown>, reset = false): Promise<Record<string, unknown>> {
    if (this.running) throw this.settings.messages.alreadyRunning;
    const { raw, rec: prev } = await this.current();
    if (prev.status === 'running' || prev.status === 'stopping') throw this.settings.messages.alreadyRunning;
    const resume = !reset && prev.id !== '' && prev.status !== 'completed';
    const rec: JobRecord = resume
      ? { ...prev, status: 'running', last_error: '', node: this.node, heartbeat: Date.now(), start_time: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }
      : {
        status: 'running', start_time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), last_error: '', id: randomUUID(),
        counters: this.zero(), options, node: this.node, heartbeat: Date.now(),
      };
    const text = JSON.stringify(rec);
    // Another node may have started between our read and this write: exactly one of us wins.
    if (this.settings.persist && !(await this.store.putJobRecord(this.settings.persist, raw, text))) throw this.settings.messages.alreadyRunning;
    this.raw = text;
    this.rec = rec;
    this.stopRequested = false;
    this.hooks.log('info', `${this.name}: ${resume ? `resuming run ${rec.id} after ${rec.checkpoint ?? 'the start'}` : `starting run ${rec.id}`}`);
    this.loop = this.run().finally(() => { this.loop = undefined; });
    return this.view(rec);
  }

  /** Asks this node's run to stop after its current step; the status says `stopping`, then `stopped`. */
  async stop(): Promise<Record<string, unknown>> {
    if (!this.running) throw this.settings.messages.notRunning;
    this.stopRequested = true;
    this.rec.status = 'stopping'; // the running loop's own record: its next save persists it
    return this.view(this.rec);
  }

  /** Resolves when this node's run (if any) has ended. */
  async settled(): Promise<void> {
    await this.loop;
  }

  private async run(): Promise<void> {
    const rec = this.rec;
    let end: JobStatus = 'completed';
    try {
      await this.beforeRun();
      for (;;) {
        // An embedded store answers without I/O (its promises settle as microtasks): without this
        // yield a whole run would hold the event loop, and no request would be served until it ended.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.stopRequested) { end = 'stopped'; break; }
        const more = await this.step(rec);
        if (!more) { end = 'completed'; break; }
        rec.status = this.stopRequested ? 'stopping' : 'running';
        rec.heartbeat = Date.now();
        await this.save(rec);
        this.hooks.progress?.(this.name, rec.counters, true);
        this.hooks.log('info', `${this.name}: run ${rec.id} at ${rec.checkpoint ?? '-'}: ${this.describe(rec)}`);
      }
    } catch (err) {
      end = 'error';
      rec.last_error = err instanceof HttpError ? err.reason : (err as Error).message;
      this.hooks.log('warn', `${this.name}: run ${rec.id} failed: ${rec.last_error}`);
    }
    await this.afterRun().catch((err) => this.hooks.log('warn', `${this.name}: ${(err as Error).message}`));
    // The outcome and what follows from it (a resync's database back Offline) show at the same
    // moment: a client that reads `completed` must not then find the database still Resyncing.
    rec.status = end;
    this.onEnd();
    rec.node = undefined;
    rec.heartbeat = undefined;
    if (rec.status === 'completed') rec.checkpoint = undefined;
    try {
      await this.save(rec);
    } catch (err) {
      this.hooks.log('warn', `${this.name}: could not save the end of run ${rec.id}: ${(err as Error).message}`);
    }
    this.hooks.progress?.(this.name, rec.counters, false);
    this.hooks.log('info', `${this.name}: run ${rec.id} ${rec.status}: ${this.describe(rec)}`);
  }

  private describe(rec: JobRecord): string {
    return Object.entries(rec.counters).map(([k, v]) => `${k}=${v}`).join(' ');
  }

  /** Persists the record; fails if another node took the job over (our lease had lapsed). */
  private async save(rec: JobRecord): Promise<void> {
    const text = JSON.stringify(rec);
    if (this.settings.persist && !(await this.store.putJobRecord(this.settings.persist, this.raw, text))) {
      throw new Error('another node took over this job (its lease had lapsed)');
    }
    this.raw = text;
    this.rec = rec;
  }
}
