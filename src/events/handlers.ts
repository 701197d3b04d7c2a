/**
 * A database's event handlers (spec §4): `document_changed` and `db_state_changed` webhooks.
 * Best-effort handlers are Sync Gateway's: the write path hands each committed revision to a
 * bounded queue (waiting at most `wait_for_process` when it is full, then dropping), and up to
 * `max_processes` events are filtered and POSTed at once. `at_least_once` handlers do not use the
 * queue at all: they follow the changes feed from a checkpoint in the database (reliable.ts), so
 * the write path never waits for them.
 */
import { splitCollectionKey } from '../db/collection.ts';
import { createHash, randomUUID } from 'node:crypto';
import type { EventHandlersConfig, WebhookConfig } from '../config/index.ts';
import type { Database, DocumentChange } from '../db/database.ts';
import type { DbState } from '../db/state.ts';
import { renderDoc } from '../db/render.ts';
import { EventFilter } from './filter.ts';
import { loadFilterSource } from './filter-source.ts';
import { BoundedQueue } from './queue.ts';
import { ReliableDelivery } from './reliable.ts';
import { Webhook } from './webhook.ts';

export interface EventLog {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

/** What `GET /{db}/_event_handlers` shows for one handler, and what metrics export. */
export interface HandlerStatus {
  event: 'document_changed' | 'db_state_changed';
  /** Config key path of the handler. */
  handler: string;
  /** The URL with credentials redacted. */
  url: string;
  delivery: 'best_effort' | 'at_least_once';
  /** Answered (best effort: any status; at-least-once: 2xx). */
  delivered: number;
  /** Best effort: lost to a full queue. */
  dropped: number;
  /** Best effort: POSTs that got no answer; at-least-once: changes given up after max_attempts. */
  failed: number;
  /** Not posted because the filter said no (or threw). */
  filtered: number;
  /** Best effort: events queued or in flight; at-least-once: sequences after the checkpoint. */
  pending: number;
  /** At-least-once only: the last sequence handled (delivered or failed), shared by every node. */
  checkpoint?: number;
  /** At-least-once only: whether this node holds the delivery lease. */
  leaseHeld?: boolean;
  /** At-least-once only: the most recent changes given up on. */
  recentFailures?: { seq: number; id: string; rev: string; error: string }[];
}

export interface EventHandlersOptions {
  db: Database;
  config: EventHandlersConfig;
  /** `api.admin_interface` as configured: part of the db_state_changed payload. */
  adminInterface: string;
  log: EventLog;
  /** Identifies this process in delivery leases (default: a random id). */
  nodeId?: string;
  /** Lease length for at-least-once delivery (default 15 s). */
  leaseMs?: number;
}

/** A best-effort webhook and its counters. */
class BestEffortHandler {
  readonly counts = { delivered: 0, failed: 0, filtered: 0 };
  readonly hook: Webhook;
  readonly filter?: EventFilter;
  constructor(readonly config: WebhookConfig, readonly event: HandlerStatus['event'], maxSockets: number, private readonly log: EventLog) {
    if (config.filter !== undefined) this.filter = new EventFilter(config.filter, `${config.path}.filter`);
    // Up to max_processes POSTs are in flight; the pipelining client opens a connection only when
    // every open one already carries its pipeline depth (pipelined-client.ts), so a receiver that
    // answers at once gets a few connections, a slow one up to max_processes.
    this.hook = new Webhook(config.url, config.timeoutSecs * 1000, maxSockets);
  }

  /** Filters, then POSTs. Any answer counts as delivered (Sync Gateway); failures are only logged. */
  async handle(payload: string, second: string | null): Promise<void> {
    if (this.filter && this.filter.run(payload, second) !== 'pass') { this.counts.filtered++; return; }
    const r = await this.hook.post(payload);
    if (r.ok) { this.counts.delivered++; return; }
    this.counts.failed++;
    this.log.warn(`Events: webhook ${this.hook.redactedUrl} (${this.config.path}) failed: ${r.error}`);
  }
}

export class EventHandlers {
  private readonly db: Database;
  private readonly log: EventLog;
  private readonly queue: BoundedQueue;
  private readonly docHandlers: BestEffortHandler[] = [];
  /** The document handlers that also want revisions that did not change the winner (not `winning_rev_only`). */
  private everyRevHandlers: BestEffortHandler[] = [];
  private readonly stateHandlers: BestEffortHandler[] = [];
  private readonly reliable: ReliableDelivery[] = [];
  private dropped = 0;
  private readonly unsubscribe: (() => void)[] = [];

  /**
   * Reads each filter given as a URL or a file path (filter-source.ts), then builds the handlers.
   * A filter that cannot be read or does not compile throws EventFilterError naming its key.
   */
  static async create(opts: EventHandlersOptions): Promise<EventHandlers> {
    const load = async (h: WebhookConfig): Promise<WebhookConfig> => {
      if (h.filter === undefined) return h;
      const source = await loadFilterSource(h.filter, `${h.path}.filter`, (from) => opts.log.info(`Events: ${h.path}.filter: loading content from [${from}]`));
      return { ...h, filter: source.trim() === '' ? undefined : source };
    };
    const { config } = opts;
    const [documentChanged, dbStateChanged] = await Promise.all([
      Promise.all(config.documentChanged.map(load)), Promise.all(config.dbStateChanged.map(load)),
    ]);
    return new EventHandlers({ ...opts, config: { ...config, documentChanged, dbStateChanged } });
  }

  /** Compiles every filter first (inline sources: `create` reads those given by URL or file). */
  constructor(private readonly opts: EventHandlersOptions) {
    const { db, config, log } = opts;
    this.db = db;
    this.log = log;
    this.queue = new BoundedQueue(config.maxProcesses, config.waitForProcessMs);
    const nodeId = opts.nodeId ?? randomUUID();
    try {
      this.build(config, nodeId);
    } catch (err) {
      // A later handler's filter did not compile: the earlier ones' endpoints hold nothing yet, but close them anyway.
      for (const h of [...this.docHandlers, ...this.stateHandlers]) h.hook.close();
      throw err;
    }
    // Events are raised only when a handler of their kind exists (spec §4.3).
    if (this.docHandlers.length) this.unsubscribe.push(db.onDocumentChange((changes) => this.documentsChanged(changes)));
    if (this.stateHandlers.length) this.unsubscribe.push(db.onStateChange((state, reason) => { void this.stateChanged(state, reason); }));
  }

  private build(config: EventHandlersConfig, nodeId: string): void {
    const { db, log } = this.opts;
    for (const h of config.documentChanged) {
      if (h.delivery === 'at_least_once') {
        const filter = h.filter !== undefined ? new EventFilter(h.filter, `${h.path}.filter`) : undefined;
        this.reliable.push(new ReliableDelivery({
          db, config: h, filter, nodeId, log, leaseMs: this.opts.leaseMs, checkpointName: checkpointName(db.name, h),
        }));
      } else this.docHandlers.push(new BestEffortHandler(h, 'document_changed', config.maxProcesses, log));
    }
    this.everyRevHandlers = this.docHandlers.filter((h) => !h.config.winningRevOnly);
    for (const h of config.dbStateChanged) this.stateHandlers.push(new BestEffortHandler(h, 'db_state_changed', config.maxProcesses, log));
  }

  /** Starts the at-least-once followers (best-effort handlers need no start). */
  start(): void {
    for (const r of this.reliable) r.start();
  }

  get hasHandlers(): boolean {
    return this.docHandlers.length + this.stateHandlers.length + this.reliable.length > 0;
  }

  /** Raised by the write path after commit, which waits at most `wait_for_process` in all for room. */
  private async documentsChanged(changes: DocumentChange[]): Promise<void> {
    // One deadline for the whole commit (a _bulk_docs batch raises one event per document).
    const deadline = performance.now() + this.queue.waitMs;
    for (const c of changes) {
      const handlers = c.winnerChanged ? this.docHandlers : this.everyRevHandlers;
      if (handlers.length === 0) continue;
      const job = () => this.deliverDocument(c, handlers);
      // Most events find room at once: only a full queue costs the write a wait (and a promise).
      if (this.queue.offer(job)) continue;
      const queued = await this.queue.push(job, deadline);
      if (!queued) {
        this.dropped++;
        this.log.warn(`Events: Event queue full - discarding event (document_changed ${c.id} ${c.rev})`);
      }
    }
  }

  /** The payload is the winning revision's body (spec §4.2), loaded here when the write did not have it. */
  private async deliverDocument(c: DocumentChange, handlers: BestEffortHandler[]): Promise<void> {
    // The winner's body from the document's own collection (a named collection's, not the default's).
    const rev = c.winnerRevision
      ?? await (this.db.collection(...splitCollectionKey(c.collection))?.store ?? this.db.store).getRevision(c.id, c.winner);
    if (!rev) return; // replaced and dropped meanwhile: a later event carries the newer winner
    const payload = renderDoc({ id: c.id, rev: c.winner, deleted: rev.deleted, body: rev.body, attachments: rev.attachments });
    if (handlers.length === 1) await handlers[0].handle(payload, c.oldDoc);
    else await Promise.all(handlers.map((h) => h.handle(payload, c.oldDoc)));
  }

  /** Sync Gateway posts `online` and `offline`; the passing states (Starting, Stopping, Resyncing) post nothing. */
  private async stateChanged(state: DbState, reason: string): Promise<void> {
    if (state !== 'Online' && state !== 'Offline') return;
    const payload = JSON.stringify({
      admininterface: this.opts.adminInterface, dbname: this.db.name, localtime: localTime(new Date()), reason, state: state.toLowerCase(),
    });
    const queued = await this.queue.push(() => Promise.all(this.stateHandlers.map((h) => h.handle(payload, null))).then(() => {}));
    if (!queued) {
      this.dropped++;
      this.log.warn(`Events: Event queue full - discarding event (db_state_changed ${state})`);
    }
  }

  async status(): Promise<HandlerStatus[]> {
    const best = (h: BestEffortHandler): HandlerStatus => ({
      event: h.event, handler: h.config.path, url: h.hook.redactedUrl, delivery: 'best_effort',
      ...h.counts, dropped: this.dropped, pending: this.queue.pending,
    });
    return [
      ...this.docHandlers.map(best),
      ...await Promise.all(this.reliable.map((r) => r.status())),
      ...this.stateHandlers.map(best),
    ];
  }

  /**
   * Stops raising, lets queued events go out for up to `drainMs` (the shutdown's own
   * db_state_changed among them), then stops the followers and closes connections.
   */
  async close(drainMs = 2000): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    await this.queue.idle(drainMs);
    await Promise.all(this.reliable.map((r) => r.stop()));
    for (const h of [...this.docHandlers, ...this.stateHandlers]) h.hook.close();
  }
}

/**
 * Where an at-least-once handler's checkpoint lives: by position and URL, so that reordering or
 * retargeting handlers starts a new checkpoint instead of inheriting another handler's position.
 */
export function checkpointName(dbName: string, h: WebhookConfig): string {
  const index = /\[(\d+)\]$/.exec(h.path)?.[1] ?? '0';
  return `events:${dbName}:document_changed:${index}:${createHash('sha256').update(h.url).digest('hex').slice(0, 16)}`;
}

/** ISO-8601 local time with milliseconds and zone offset, as Go's `time.Now().Format(...)` gives it. */
export function localTime(d: Date): string {
  const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off >= 0 ? '+' : '-'}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${zone}`;
}
