/**
 * `"delivery": "at_least_once"` (Syncgate's own): a document_changed handler that follows the
 * database's changes feed (the one changes path, admin view) from a checkpoint kept in the
 * database, instead of taking events from the write path's queue. Changes go out one POST at a
 * time (or `batch_size` per POST) in sequence order, so each document's changes arrive in order.
 * Only a 2xx answer delivers; other answers and time-outs are retried with exponential backoff up
 * to `max_attempts`, then the change is recorded as failed and delivery moves on. A receiver that
 * cannot be reached at all does not use up attempts: delivery waits for it (backoff capped at
 * `retry_max_ms`), however long it is down. The checkpoint moves only after a change is handled,
 * so a restart or a crash redelivers at most the change in flight.
 *
 * The changes feed is the source of truth, but while delivery keeps up with the writes it does not
 * read back what this node just wrote: a run of announced commits that follows the checkpoint with
 * no gap is what the feed would give, and is delivered from memory (tip.ts); at any gap, delivery
 * reads the feed from the checkpoint. From memory, each revision of a document edited twice in
 * quick succession goes out; the feed shows only the latest.
 *
 * Several nodes on one PostgreSQL share the checkpoint record, which is also a lease: only the node
 * holding it (compare-and-swap on the record, renewed while it works) delivers, so each change is
 * delivered by one node. A node that dies stops renewing and another takes over when the lease
 * runs out. Like any lease, this assumes the nodes' clocks agree to well within the lease length.
 */
import type { WebhookConfig } from '../config/index.ts';
import { changesSince } from '../db/changes.ts';
import type { Database } from '../db/database.ts';
import type { Listener } from '../db/notifier.ts';
import { AnnouncedTip, type Item } from './tip.ts';
import type { EventFilter } from './filter.ts';
import type { EventLog, HandlerStatus } from './handlers.ts';
import { Webhook } from './webhook.ts';

export const DEFAULT_LEASE_MS = 15_000;
const PAGE = 100;
/**
 * The checkpoint is written after a page, on a failure, on stop, and at least this often while
 * delivering: not after every change, which would cost a storage commit (an fsync) per event. A
 * crash redelivers what was delivered since the last write; that is what at-least-once allows.
 */
const CHECKPOINT_EVERY_MS = 250;
const KEEP_FAILURES = 20;

interface Failure { seq: number; id: string; rev: string; error: string }

/** The checkpoint record, as stored (JSON) and shared by every node. */
interface Record {
  seq: number;
  owner: string;
  /** Lease end, ms since the epoch. */
  until: number;
  delivered: number;
  failed: number;
  filtered: number;
  failures: Failure[];
}

export interface ReliableOptions {
  db: Database;
  config: WebhookConfig;
  filter?: EventFilter;
  nodeId: string;
  log: EventLog;
  checkpointName: string;
  leaseMs?: number;
}


type Outcome = { delivered: true } | { delivered: false; error: string } | 'stopped' | 'lost';

export class ReliableDelivery {
  private readonly db: Database;
  private readonly config: WebhookConfig;
  private readonly hook: Webhook;
  private readonly leaseMs: number;
  /** One per collection: a commit in any of them wakes the delivery loop. */
  private readonly listeners: Listener[];
  private readonly abort = new AbortController();
  /** The record as this node last wrote it while holding the lease (undefined: not holding it). */
  private held?: { text: string; record: Record };
  /** Checkpoint writes (progress, renewals) go one at a time: each swaps from the one before. */
  private chain: Promise<unknown> = Promise.resolve();
  private loop?: Promise<void>;
  private heartbeat?: NodeJS.Timeout;
  /** Progress not yet written to the checkpoint. */
  private unsaved: { seq: number; delivered: number; filtered: number } | undefined;
  private savedAt = 0;
  /** Revisions this node committed, for delivery from memory while it keeps up (tip.ts). */
  private readonly tip = new AnnouncedTip();
  private unannounce?: () => void;

  constructor(private readonly opts: ReliableOptions) {
    this.db = opts.db;
    this.config = opts.config;
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    // One POST at a time, so never pipelined; the lean client costs a fraction of node:http's per POST.
    this.hook = new Webhook(opts.config.url, opts.config.timeoutSecs * 1000, 1);
    this.listeners = this.db.collections().map((c) => c.notifier.listener());
  }

  start(): void {
    if (this.loop) return;
    for (const l of this.listeners) l.follow(null);
    // Only the node delivering keeps them (PostgreSQL: the others hold no lease).
    this.unannounce = this.db.onDocumentChange((changes) => { if (this.held) this.tip.add(changes); });
    this.heartbeat = setInterval(() => { void this.serial(() => this.renew()); }, Math.max(50, Math.floor(this.leaseMs / 3)));
    this.heartbeat.unref();
    this.loop = this.run();
  }

  /** Stops after the change in flight and hands the lease back, so another node goes on at once. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.unannounce?.();
    this.tip.clear();
    for (const l of this.listeners) l.end();
    clearInterval(this.heartbeat);
    // A POST in flight ends at its own time limit; shutdown does not wait that long for it.
    await Promise.race([this.loop, new Promise((r) => setTimeout(r, 2000).unref())]);
    await this.serial(async () => {
      await this.flush();
      if (this.held) await this.swap({ ...this.held.record, until: 0 });
    });
    this.hook.close();
  }

  async status(): Promise<HandlerStatus> {
    const text = this.held?.text ?? await this.db.store.getJobRecord(this.opts.checkpointName);
    const r = text ? JSON.parse(text) as Record : undefined;
    const last = await this.db.store.lastSeq();
    return {
      event: 'document_changed', handler: this.config.path, url: this.hook.redactedUrl, delivery: 'at_least_once',
      delivered: (r?.delivered ?? 0) + (this.unsaved?.delivered ?? 0), dropped: 0, failed: r?.failed ?? 0,
      filtered: (r?.filtered ?? 0) + (this.unsaved?.filtered ?? 0),
      pending: Math.max(0, last - (this.unsaved?.seq ?? r?.seq ?? last)), checkpoint: this.unsaved?.seq ?? r?.seq ?? 0, leaseHeld: this.held !== undefined,
      recentFailures: r?.failures ?? [],
    };
  }

  private get stopped(): boolean { return this.abort.signal.aborted; }

  private async run(): Promise<void> {
    while (!this.stopped) {
      // The database is stopping (its feeds end): nothing more to follow.
      if (this.db.notifier.isClosed) break;
      try {
        if (!this.held && !(await this.serial(() => this.acquire()))) {
          await this.sleep(Math.min(1000, this.leaseMs / 3));
          continue;
        }
        for (const l of this.listeners) l.reading();
        const since = this.held!.record.seq;
        const fast = this.tip.after(since, PAGE);
        const { items, through } = fast.length ? { items: fast, through: fast[fast.length - 1].seq } : await this.nextPage(since);
        if (items.length === 0) {
          if (through > since) await this.serial(() => this.advance(through, {}));
          else await this.waitForCommit(Math.max(50, this.leaseMs / 3));
          continue;
        }
        for (let i = 0; i < items.length && !this.stopped && this.held; i += this.config.batchSize) {
          await this.handle(items.slice(i, i + this.config.batchSize));
        }
        await this.serial(() => this.flush());
      } catch (err) {
        if (this.stopped) break;
        this.opts.log.warn(`Events: at-least-once webhook ${this.hook.redactedUrl} (${this.config.path}): ${(err as Error).message}`);
        await this.sleep(1000);
      }
    }
  }

  /**
   * The next changes after `since` across every collection, in sequence order (sequences are
   * database-wide): each collection's page is read, and only what lies at or before the end of
   * the first page cut short by its limit is taken, since that collection may have more before
   * the others' later entries. `through`: how far the read covered (the checkpoint may move there
   * when nothing in it is to be delivered).
   */
  private async nextPage(since: number): Promise<{ items: Item[]; through: number }> {
    const pages = await Promise.all(this.db.collections().map((c) =>
      changesSince(c, { channels: 'all' }, { since: { seq: since }, limit: PAGE, includeDocs: true })));
    // A page cut short by its limit bounds what is known; complete pages bound nothing.
    const cut = pages.filter((p) => !p.complete).map((p) => p.last.seq);
    const through = cut.length ? Math.min(...cut) : Math.max(since, ...pages.map((p) => p.last.seq));
    const items: Item[] = pages.flatMap((p) => p.entries)
      .filter((e) => e.doc !== undefined && e.pos.seq <= through)
      .map((e) => ({ seq: e.pos.seq, id: e.id, rev: e.changes[0]?.rev ?? '', doc: e.doc! }))
      .sort((a, b) => a.seq - b.seq);
    return { items, through };
  }

  /** Waits for a commit in any collection (or the time-out); the next read covers whatever woke it. */
  private async waitForCommit(ms: number): Promise<void> {
    await Promise.race(this.listeners.map((l) => l.wait(ms)));
    for (const l of this.listeners) l.cancelWait();
  }

  /** Filters, delivers (with retries) and moves the checkpoint past the chunk. */
  private async handle(chunk: Item[]): Promise<void> {
    const passing = chunk.filter((it) => !this.opts.filter || this.opts.filter.run(it.doc, null) === 'pass');
    const filtered = chunk.length - passing.length;
    const last = chunk[chunk.length - 1].seq;
    if (passing.length === 0) { this.progress(last, 0, filtered); return; }
    const body = this.config.batchSize > 1 ? `[${passing.map((p) => p.doc).join(',')}]` : passing[0].doc;
    const outcome = await this.deliver(body);
    if (outcome === 'stopped' || outcome === 'lost') return; // the checkpoint stays: redelivered later
    if (outcome.delivered) { this.progress(last, passing.length, filtered); return; }
    const failures = passing.map((p) => ({ seq: p.seq, id: p.id, rev: p.rev, error: outcome.error }));
    for (const f of failures) this.opts.log.warn(`Events: giving up on ${f.id} ${f.rev} (seq ${f.seq}) for ${this.hook.redactedUrl} after ${this.config.maxAttempts} attempts: ${f.error}`);
    await this.serial(async () => { await this.flush(); await this.advance(last, { filtered, failed: failures }); });
  }

  /** Notes handled changes; writes them to the checkpoint when the last write is old enough. */
  private progress(seq: number, delivered: number, filtered: number): void {
    const u = this.unsaved ?? { seq, delivered: 0, filtered: 0 };
    this.unsaved = { seq: Math.max(u.seq, seq), delivered: u.delivered + delivered, filtered: u.filtered + filtered };
    if (Date.now() - this.savedAt >= CHECKPOINT_EVERY_MS) void this.serial(() => this.flush());
  }

  private async flush(): Promise<void> {
    const u = this.unsaved;
    if (!u) return;
    this.unsaved = undefined;
    this.savedAt = Date.now();
    await this.advance(u.seq, { delivered: u.delivered, filtered: u.filtered });
  }

  private async deliver(body: string): Promise<Outcome> {
    let attempts = 0;
    let delay = this.config.retryInitialMs;
    for (;;) {
      if (this.stopped) return 'stopped';
      if (!this.held) return 'lost';
      const r = await this.hook.post(body);
      if (r.ok && r.status >= 200 && r.status < 300) return { delivered: true };
      const error = r.ok ? `status ${r.status}` : r.error;
      // A receiver that is not there at all has not seen the change: that is waiting, not an attempt.
      if (r.ok || !r.unreachable) attempts++;
      if (attempts >= this.config.maxAttempts) return { delivered: false, error };
      this.opts.log.debug(`Events: ${this.hook.redactedUrl}: ${error}; retrying in ${delay} ms`);
      await this.sleep(delay);
      delay = Math.min(delay * 2, this.config.retryMaxMs);
    }
  }

  // ---- checkpoint and lease ---------------------------------------------------------------------

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => {});
    return next;
  }

  /** Takes the lease if it is free, expired or ours; creates the record (at the current end of the feed) on first use. */
  private async acquire(): Promise<boolean> {
    const store = this.db.store;
    let text = await store.getJobRecord(this.opts.checkpointName);
    if (text === undefined) {
      // A new handler starts with what happens from now on, as a best-effort one would.
      const fresh: Record = { seq: await store.lastSeq(), owner: '', until: 0, delivered: 0, failed: 0, filtered: 0, failures: [] };
      const t = JSON.stringify(fresh);
      if (!(await store.putJobRecord(this.opts.checkpointName, undefined, t))) return false;
      text = t;
    }
    const record = JSON.parse(text) as Record;
    // Only shared storage (PostgreSQL: `watch`) can have another live node; on SQLite a lease left
    // by this file's previous process (killed) is taken over at once instead of waiting it out.
    const shared = this.db.store.watch !== undefined;
    if (shared && record.owner !== this.opts.nodeId && record.until > Date.now()) return false;
    this.held = { text, record };
    this.unsaved = undefined; // progress of an earlier tenure: the stored checkpoint rules now
    const ok = await this.swap({ ...record, owner: this.opts.nodeId, until: Date.now() + this.leaseMs });
    if (ok) this.opts.log.info(`Events: this node delivers ${this.config.path} from sequence ${record.seq}`);
    return ok;
  }

  /** Extends the lease when a third of it is gone. */
  private async renew(): Promise<void> {
    if (!this.held || this.held.record.until - Date.now() > (this.leaseMs * 2) / 3) return;
    if (!(await this.swap({ ...this.held.record, until: Date.now() + this.leaseMs }))) {
      this.opts.log.warn(`Events: lost the delivery lease of ${this.config.path}; another node goes on`);
    }
  }

  private async advance(seq: number, d: { delivered?: number; filtered?: number; failed?: Failure[] }): Promise<void> {
    if (!this.held) return;
    const r = this.held.record;
    await this.swap({
      ...r, seq: Math.max(seq, r.seq), until: Date.now() + this.leaseMs,
      delivered: r.delivered + (d.delivered ?? 0), filtered: r.filtered + (d.filtered ?? 0), failed: r.failed + (d.failed?.length ?? 0),
      failures: d.failed ? [...r.failures, ...d.failed].slice(-KEEP_FAILURES) : r.failures,
    });
  }

  /** Compare-and-swap from the record this node holds; on failure the lease is gone. */
  private async swap(next: Record): Promise<boolean> {
    if (!this.held) return false;
    const text = JSON.stringify(next);
    if (await this.db.store.putJobRecord(this.opts.checkpointName, this.held.text, text)) {
      this.held = { text, record: next };
      return true;
    }
    this.held = undefined;
    return false;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const done = () => { clearTimeout(t); this.abort.signal.removeEventListener('abort', done); resolve(); };
      const t = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done);
    });
  }
}
