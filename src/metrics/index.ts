/**
 * Counters, gauges and histograms for one gateway, served as Prometheus text (`/_metrics`) and as
 * Sync Gateway style expvar JSON (`/_expvar`) on the metrics port.
 *
 * One `Metrics` per gateway, each with its own prom-client `Registry` (never the global one), so two
 * gateways in one process never mix their numbers. The hot-path methods do one prom-client update
 * each; label values are route PATTERNS, database names and small fixed sets, never raw paths.
 *
 * `/_expvar` is built from a snapshot of the same registry (`getMetricsAsJSON`), not from a second
 * set of plain counters: one source of truth, nothing to drift, and the hot path pays once.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { buildExpvar, type Expvar } from './expvar.ts';

export type { Expvar } from './expvar.ts';
export { metricsRoutes } from './routes.ts';

export type SyncOutcome = 'ok' | 'rejected' | 'error';
export type AuthFailureKind = 'basic' | 'session' | 'guest' | 'bearer';
export type JwtLoginOutcome = 'success' | 'failure';
export type FeedKind = 'longpoll' | 'continuous' | 'websocket';
export type WebSocketKind = 'changes' | 'blip';

/** Delta sync events, named as Sync Gateway's `delta_sync` stats (`base/stats.go`). */
export type DeltaSyncEvent = 'requested' | 'sent' | 'cache_hit' | 'cache_miss' | 'pull_replication' | 'push_applied';
export const DELTA_SYNC_STATS: Record<DeltaSyncEvent, string> = {
  requested: 'deltas_requested', sent: 'deltas_sent', cache_hit: 'delta_cache_hit', cache_miss: 'delta_cache_miss',
  pull_replication: 'delta_pull_replication_count', push_applied: 'delta_push_doc_count',
};
const DELTA_SYNC_EVENTS = Object.keys(DELTA_SYNC_STATS) as DeltaSyncEvent[];

/** What the old-revision store of a database holds (bodies kept as delta sources). */
export type OldRevisionUsageProvider = () => Promise<{ count: number; bytes: number }>;

export const SYNC_OUTCOMES: readonly SyncOutcome[] = ['ok', 'rejected', 'error'];
export const AUTH_FAILURE_KINDS: readonly AuthFailureKind[] = ['basic', 'session', 'guest', 'bearer'];
export const FEED_KINDS: readonly FeedKind[] = ['longpoll', 'continuous', 'websocket'];
export const WEBSOCKET_KINDS: readonly WebSocketKind[] = ['changes', 'blip'];

/** The route label for a request no route matched (404 `unknown URL`, 405, bad encodings). */
export const UNMATCHED_ROUTE = '(unmatched)';

/** Methods kept as label values; any other method a client invents is counted as `OTHER`. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH', 'COPY']);

/** Seconds. Request durations include live feeds, hence the long tail. */
export const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
export const SYNC_FUNCTION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5];
export const STORAGE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/** Metric names, exported so tests and dashboards spell them once. */
export const METRIC = {
  httpRequests: 'syncgate_http_requests_total',
  httpDuration: 'syncgate_http_request_duration_seconds',
  docWrites: 'syncgate_database_doc_writes_total',
  docReads: 'syncgate_database_doc_reads_total',
  syncFunctionDuration: 'syncgate_sync_function_duration_seconds',
  syncFunctionRuns: 'syncgate_sync_function_runs_total',
  authFailures: 'syncgate_auth_failures_total',
  jwtLogins: 'syncgate_jwt_logins_total',
  storageTransaction: 'syncgate_storage_transaction_duration_seconds',
  feedsOpen: 'syncgate_changes_feeds_open',
  websocketsOpen: 'syncgate_websocket_connections_open',
  blipConnections: 'syncgate_blip_connections_open',
  jobProgress: 'syncgate_background_job_progress',
  jobRunning: 'syncgate_background_job_running',
  deltaSync: 'syncgate_delta_sync_total',
  deltaBytesSaved: 'syncgate_delta_sync_bytes_saved_total',
  oldRevisions: 'syncgate_old_revision_bodies',
  oldRevisionBytes: 'syncgate_old_revision_body_bytes',
  eventHandlerEvents: 'syncgate_event_handler_events',
  eventHandlerPending: 'syncgate_event_handler_pending',
  eventHandlerCheckpoint: 'syncgate_event_handler_checkpoint',
  // ISGR (src/replication/isgr/): `syncgate_replication_<counter>` for each of REPLICATION_COUNTERS, and the state.
  replicationState: 'syncgate_replication_state',
} as const;

/** ISGR status counters (Sync Gateway's names), one gauge each: `syncgate_replication_docs_read` ... */
export const REPLICATION_COUNTERS = [
  'docs_read', 'docs_checked_pull', 'docs_purged', 'rejected_by_local',
  'docs_written', 'docs_checked_push', 'doc_write_failures', 'doc_write_conflict', 'rejected_by_remote',
] as const;

/** One replication this node runs (structural: metrics imports nothing of replication). */
export interface ReplicationSample {
  database: string;
  replication: string;
  state: string;
  counters: Record<(typeof REPLICATION_COUNTERS)[number], number>;
}

/** One webhook's numbers as `GET /{db}/_event_handlers` shows them (structural: metrics imports nothing of events). */
export interface EventHandlerSample {
  database: string;
  /** e.g. `document_changed[0]`. */
  handler: string;
  delivery: string;
  delivered: number;
  dropped: number;
  failed: number;
  filtered: number;
  pending: number;
  checkpoint?: number;
}

export const EVENT_OUTCOMES = ['delivered', 'dropped', 'failed', 'filtered'] as const;

export interface MetricsOptions {
  /**
   * Process metrics from prom-client's `collectDefaultMetrics` (memory, heap, event-loop lag, GC,
   * handles). Default true. Each call leaves an event-loop-delay monitor and a GC observer running
   * for the life of the process (prom-client offers no way to stop them), so a test that builds
   * hundreds of gateways in one process may turn this off.
   */
  processMetrics?: boolean;
  /** `cmdline` in `/_expvar`; default `process.argv`. */
  argv?: string[];
}

/**
 * One database's view of the metrics: what `Database` and the sync function runner call, with the
 * label object built once. Structural, so `src/db` can declare the same shape without importing
 * this module.
 */
export interface DatabaseMetrics {
  docsWritten(n: number): void;
  docsRead(n: number): void;
  syncFunction(seconds: number, outcome: SyncOutcome): void;
  authFailure(kind: AuthFailureKind): void;
  /** A Bearer or OIDC-callback login, by provider name (or `unknown` when no provider matched). */
  jwtLogin(provider: string, outcome: JwtLoginOutcome): void;
  storageTransaction(seconds: number): void;
  /** Call when a live feed starts; call the returned function when it ends (extra calls do nothing). */
  feedOpened(kind: FeedKind): () => void;
  /** A delta sync event; `bytesSaved` is what a delta spared against the full body. */
  deltaSync(event: DeltaSyncEvent, bytesSaved?: number): void;
}

/** For code paths (and tests) that run without a gateway's metrics. */
export const NO_DATABASE_METRICS: DatabaseMetrics = {
  docsWritten() {}, docsRead() {}, syncFunction() {}, authFailure() {}, jwtLogin() {}, storageTransaction() {},
  feedOpened: () => () => {}, deltaSync() {},
};

/** Per-database bookkeeping: the label object, and whether the database was removed since. */
interface DbEntry {
  labels: { database: string };
  sync: Record<SyncOutcome, { database: string; outcome: SyncOutcome }>;
  auth: Record<AuthFailureKind, { database: string; kind: AuthFailureKind }>;
  feed: Record<FeedKind, { database: string; kind: FeedKind }>;
  delta: Record<DeltaSyncEvent, { database: string; stat: string }>;
  saved: { pull: { database: string; direction: 'pull' }; push: { database: string; direction: 'push' } };
  /** JWT login series made so far (provider names come from config, plus `unknown`). */
  jwt: Map<string, { database: string; provider: string; outcome: JwtLoginOutcome }>;
  removed: boolean;
}

function labelsBy<K extends string, N extends string>(db: string, name: N, keys: readonly K[]): Record<K, { database: string } & Record<N, K>> {
  const out = {} as Record<K, { database: string } & Record<N, K>>;
  for (const k of keys) out[k] = { database: db, [name]: k } as { database: string } & Record<N, K>;
  return out;
}

/** Milliseconds from `performance.now()` to seconds elapsed: `m.storageTransaction(db, secondsSince(t0))`. */
export function secondsSince(startMs: number): number {
  return (performance.now() - startMs) / 1000;
}

export class Metrics {
  readonly registry: Registry;
  private readonly argv: string[];
  private readonly dbs = new Map<string, DbEntry>();
  private readonly websocketLabels: Record<WebSocketKind, { kind: WebSocketKind }> = { changes: { kind: 'changes' }, blip: { kind: 'blip' } };

  private readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  private readonly httpDuration: Histogram<'route' | 'method'>;
  private readonly docWrites: Counter<'database'>;
  private readonly docReads: Counter<'database'>;
  private readonly syncDuration: Histogram<'database'>;
  private readonly syncRuns: Counter<'database' | 'outcome'>;
  private readonly authFailures: Counter<'database' | 'kind'>;
  private readonly jwtLogins: Counter<'database' | 'provider' | 'outcome'>;
  private readonly storageDuration: Histogram<'database'>;
  private readonly feedsOpen: Gauge<'database' | 'kind'>;
  private readonly websocketsOpen: Gauge<'kind'>;
  private readonly blipOpen: Gauge<'database'>;
  private readonly jobProgressGauge: Gauge<'database' | 'job' | 'counter'>;
  private readonly jobRunningGauge: Gauge<'database' | 'job'>;
  /** Label sets of the job series per database, so removeDatabase can drop them. */
  private readonly jobSeries = new Map<string, Map<string, { database: string; job: string; counter?: string }>>();
  private readonly deltaSyncCount: Counter<'database' | 'stat'>;
  private readonly deltaBytesSaved: Counter<'database' | 'direction'>;
  /** Per database: how to read its old-revision store's size when metrics are collected. */
  private readonly oldRevisionUsage = new Map<string, OldRevisionUsageProvider>();
  private eventHandlerSource: () => Promise<EventHandlerSample[]> = async () => [];
  private replicationSource: () => ReplicationSample[] = () => [];

  constructor(options: MetricsOptions = {}) {
    this.argv = options.argv ?? process.argv;
    const registers = [this.registry = new Registry()];
    this.httpRequests = new Counter({
      name: METRIC.httpRequests, help: 'HTTP requests answered, by route pattern, method and status.',
      labelNames: ['route', 'method', 'status'], registers,
    });
    this.httpDuration = new Histogram({
      name: METRIC.httpDuration, help: 'Time from request to end of response, by route pattern and method (live feeds included).',
      labelNames: ['route', 'method'], buckets: REQUEST_BUCKETS, registers,
    });
    this.docWrites = new Counter({
      name: METRIC.docWrites, help: 'Document revisions written, by any API.', labelNames: ['database'], registers,
    });
    this.docReads = new Counter({
      name: METRIC.docReads, help: 'Documents read through the REST API.', labelNames: ['database'], registers,
    });
    this.syncDuration = new Histogram({
      name: METRIC.syncFunctionDuration, help: 'Time spent running the sync function.',
      labelNames: ['database'], buckets: SYNC_FUNCTION_BUCKETS, registers,
    });
    this.syncRuns = new Counter({
      name: METRIC.syncFunctionRuns, help: 'Sync function runs, by outcome: ok, rejected (throw({forbidden}) or a failed require*), error (exception or time limit).',
      labelNames: ['database', 'outcome'], registers,
    });
    this.jwtLogins = new Counter({
      name: METRIC.jwtLogins, help: 'JWT logins (Bearer ID tokens, OIDC callback and refresh), by provider and outcome.',
      labelNames: ['database', 'provider', 'outcome'], registers,
    });
    this.authFailures = new Counter({
      name: METRIC.authFailures, help: 'Failed authentications, by kind: basic (bad name or password), session (unknown or expired cookie), guest (no credentials and GUEST disabled), bearer (a refused JWT).',
      labelNames: ['database', 'kind'], registers,
    });
    this.storageDuration = new Histogram({
      name: METRIC.storageTransaction, help: 'Time spent in storage write transactions.',
      labelNames: ['database'], buckets: STORAGE_BUCKETS, registers,
    });
    this.feedsOpen = new Gauge({
      name: METRIC.feedsOpen, help: 'Live _changes feeds open now, by kind.', labelNames: ['database', 'kind'], registers,
    });
    this.websocketsOpen = new Gauge({
      name: METRIC.websocketsOpen, help: 'WebSocket connections open now, by kind.', labelNames: ['kind'], registers,
    });
    this.blipOpen = new Gauge({
      name: METRIC.blipConnections, help: 'BLIP replication connections (Couchbase Lite) open now, by database.', labelNames: ['database'], registers,
    });
    this.jobProgressGauge = new Gauge({
      name: METRIC.jobProgress, help: 'Counters of the latest run of a background job (resync, compaction) on this node, e.g. docs_processed.',
      labelNames: ['database', 'job', 'counter'], registers,
    });
    this.jobRunningGauge = new Gauge({
      name: METRIC.jobRunning, help: 'Whether a background job (resync, compaction) is running on this node (1) or not (0).',
      labelNames: ['database', 'job'], registers,
    });
    for (const kind of WEBSOCKET_KINDS) this.websocketsOpen.set({ kind }, 0);
    this.deltaSyncCount = new Counter({
      name: METRIC.deltaSync, help: "Delta sync over BLIP, by Sync Gateway's delta_sync stat: deltas_requested, deltas_sent, delta_cache_hit, delta_cache_miss, delta_pull_replication_count, delta_push_doc_count.",
      labelNames: ['database', 'stat'], registers,
    });
    this.deltaBytesSaved = new Counter({
      name: METRIC.deltaBytesSaved, help: 'Bytes deltas spared against full bodies (before BLIP compression), by direction: pull (sent) or push (received).',
      labelNames: ['database', 'direction'], registers,
    });
    // Read from each database's store when scraped: old revision bodies kept as delta sources.
    const usage = this.oldRevisionUsage;
    const read = async (): Promise<[string, { count: number; bytes: number }][]> => {
      const out: [string, { count: number; bytes: number }][] = [];
      for (const [db, provider] of usage) {
        try { out.push([db, await provider()]); } catch { /* a closed or unreachable store reports nothing */ }
      }
      return out;
    };
    let pending: Promise<[string, { count: number; bytes: number }][]> | undefined;
    /** One read per scrape for both gauges. */
    const once = () => {
      pending ??= read().finally(() => { setImmediate(() => { pending = undefined; }); });
      return pending;
    };
    new Gauge({
      name: METRIC.oldRevisions, help: 'Old revision bodies kept for delta sync (rev_max_age_seconds) or old_rev_expiry_seconds.',
      labelNames: ['database'], registers,
      async collect() { this.reset(); for (const [database, u] of await once()) this.set({ database }, u.count); },
    });
    new Gauge({
      name: METRIC.oldRevisionBytes, help: 'Bytes of the old revision bodies kept (their JSON).',
      labelNames: ['database'], registers,
      async collect() { this.reset(); for (const [database, u] of await once()) this.set({ database }, u.bytes); },
    });
    // Webhook numbers are read when scraped, from the same place as `_event_handlers` (at-least-once
    // counts live in the shared checkpoint, so they are the database's, not this process's): gauges.
    const source = () => this.eventHandlerSource();
    const handlerLabels = ['database', 'handler', 'delivery'] as const;
    new Gauge({
      name: METRIC.eventHandlerEvents, help: 'Webhook events by outcome: delivered, dropped (queue full), failed (no answer; at-least-once: given up after max_attempts), filtered (the filter said no).',
      labelNames: [...handlerLabels, 'outcome'], registers,
      async collect() {
        this.reset();
        for (const s of await source()) {
          for (const outcome of EVENT_OUTCOMES) this.set({ database: s.database, handler: s.handler, delivery: s.delivery, outcome }, s[outcome]);
        }
      },
    });
    new Gauge({
      name: METRIC.eventHandlerPending, help: 'Webhook events queued or in flight (best effort), or sequences after the checkpoint (at-least-once).',
      labelNames: handlerLabels, registers,
      async collect() {
        this.reset();
        for (const s of await source()) this.set({ database: s.database, handler: s.handler, delivery: s.delivery }, s.pending);
      },
    });
    new Gauge({
      name: METRIC.eventHandlerCheckpoint, help: 'Last sequence an at-least-once webhook has handled.',
      labelNames: handlerLabels, registers,
      async collect() {
        this.reset();
        for (const s of await source()) if (s.checkpoint !== undefined) this.set({ database: s.database, handler: s.handler, delivery: s.delivery }, s.checkpoint);
      },
    });
    // ISGR: the replications this node runs, read from their replicators when scraped. Gauges: a
    // reset (action=reset) or a hand-over to another node starts a replication's counters again.
    const replications = () => this.replicationSource();
    for (const counter of REPLICATION_COUNTERS) {
      new Gauge({
        name: `syncgate_replication_${counter}`, help: `ISGR ${counter} of each replication this node runs (as in _replicationStatus).`,
        labelNames: ['database', 'replication'], registers,
        collect() { this.reset(); for (const r of replications()) this.set({ database: r.database, replication: r.replication }, r.counters[counter]); },
      });
    }
    new Gauge({
      name: METRIC.replicationState, help: 'ISGR replications this node runs: 1 for the state each is in (starting, running, reconnecting, stopped, error).',
      labelNames: ['database', 'replication', 'state'], registers,
      collect() { this.reset(); for (const r of replications()) this.set({ database: r.database, replication: r.replication, state: r.state }, 1); },
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The Content-Type of `prometheusText()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  // ---- databases ----

  /**
   * Registers a database so its series exist (at zero) from the start and it appears in `/_expvar`
   * before its first request. Optional: the per-database methods register on first use.
   */
  addDatabase(db: string): void {
    this.entry(db);
  }

  /** Drops a removed database's series; its feeds still open then close without touching the gauges. */
  removeDatabase(db: string): void {
    const e = this.dbs.get(db);
    if (!e) return;
    e.removed = true;
    this.dbs.delete(db);
    const l = e.labels;
    this.docWrites.remove(l);
    this.docReads.remove(l);
    this.syncDuration.remove(l);
    this.storageDuration.remove(l);
    for (const outcome of SYNC_OUTCOMES) this.syncRuns.remove(e.sync[outcome]);
    for (const kind of AUTH_FAILURE_KINDS) this.authFailures.remove(e.auth[kind]);
    for (const labels of e.jwt.values()) this.jwtLogins.remove(labels);
    for (const kind of FEED_KINDS) this.feedsOpen.remove(e.feed[kind]);
    this.blipOpen.remove(l);
    // prom-client removes exact label sets only: drop each series this database's jobs set.
    for (const labels of this.jobSeries.get(db)?.values() ?? []) {
      if ('counter' in labels) this.jobProgressGauge.remove(labels); else this.jobRunningGauge.remove(labels);
    }
    this.jobSeries.delete(db);
    for (const ev of DELTA_SYNC_EVENTS) this.deltaSyncCount.remove(e.delta[ev]);
    this.deltaBytesSaved.remove(e.saved.pull);
    this.deltaBytesSaved.remove(e.saved.push);
    this.oldRevisionUsage.delete(db);
  }

  /** Reports a database's old-revision store in `syncgate_old_revision_*` (read at each scrape). */
  trackOldRevisions(db: string, provider: OldRevisionUsageProvider): void {
    this.oldRevisionUsage.set(db, provider);
  }

  /** Where the webhook gauges read their numbers when scraped (the gateway's event handlers). */
  setEventHandlerSource(source: () => Promise<EventHandlerSample[]>): void {
    this.eventHandlerSource = source;
  }

  /** Where the ISGR gauges read their numbers when scraped (the gateway's replication registries). */
  setReplicationSource(source: () => ReplicationSample[]): void {
    this.replicationSource = source;
  }

  /** The database names with series, in registration order. */
  databases(): string[] {
    return [...this.dbs.keys()];
  }

  private entry(db: string): DbEntry {
    let e = this.dbs.get(db);
    if (e) return e;
    e = {
      labels: { database: db },
      sync: labelsBy(db, 'outcome', SYNC_OUTCOMES),
      auth: labelsBy(db, 'kind', AUTH_FAILURE_KINDS),
      feed: labelsBy(db, 'kind', FEED_KINDS),
      delta: Object.fromEntries(DELTA_SYNC_EVENTS.map((ev) => [ev, { database: db, stat: DELTA_SYNC_STATS[ev] }])) as DbEntry['delta'],
      saved: { pull: { database: db, direction: 'pull' }, push: { database: db, direction: 'push' } },
      jwt: new Map(),
      removed: false,
    };
    this.dbs.set(db, e);
    const l = e.labels;
    this.docWrites.inc(l, 0);
    this.docReads.inc(l, 0);
    this.syncDuration.zero(l);
    this.storageDuration.zero(l);
    for (const outcome of SYNC_OUTCOMES) this.syncRuns.inc(e.sync[outcome], 0);
    for (const kind of AUTH_FAILURE_KINDS) this.authFailures.inc(e.auth[kind], 0);
    for (const kind of FEED_KINDS) this.feedsOpen.set(e.feed[kind], 0);
    for (const ev of DELTA_SYNC_EVENTS) this.deltaSyncCount.inc(e.delta[ev], 0);
    this.deltaBytesSaved.inc(e.saved.pull, 0);
    this.deltaBytesSaved.inc(e.saved.push, 0);
    return e;
  }

  /** A database's metrics with its labels bound once: hand this to `Database` and its sync runner. */
  forDatabase(db: string): DatabaseMetrics {
    // Resolved per call, not captured: after removeDatabase + re-create the new entry is used.
    return {
      docsWritten: (n) => this.docsWritten(db, n),
      docsRead: (n) => this.docsRead(db, n),
      syncFunction: (seconds, outcome) => this.syncFunction(db, seconds, outcome),
      authFailure: (kind) => this.authFailure(db, kind),
      jwtLogin: (provider, outcome) => this.jwtLogin(db, provider, outcome),
      storageTransaction: (seconds) => this.storageTransaction(db, seconds),
      feedOpened: (kind) => this.feedOpened(db, kind),
      deltaSync: (event, bytesSaved) => this.deltaSync(db, event, bytesSaved),
    };
  }

  // ---- hot paths ----

  /** Once per answered request, with the matched route's PATTERN (or `UNMATCHED_ROUTE`). */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    if (!KNOWN_METHODS.has(method)) method = 'OTHER';
    this.httpRequests.inc({ route, method, status }, 1);
    this.httpDuration.observe({ route, method }, seconds);
  }

  docsWritten(db: string, n: number): void {
    if (n > 0) this.docWrites.inc(this.entry(db).labels, n);
  }

  docsRead(db: string, n: number): void {
    if (n > 0) this.docReads.inc(this.entry(db).labels, n);
  }

  syncFunction(db: string, seconds: number, outcome: SyncOutcome): void {
    const e = this.entry(db);
    this.syncDuration.observe(e.labels, seconds);
    this.syncRuns.inc(e.sync[outcome], 1);
  }

  authFailure(db: string, kind: AuthFailureKind): void {
    this.authFailures.inc(this.entry(db).auth[kind], 1);
  }

  jwtLogin(db: string, provider: string, outcome: JwtLoginOutcome): void {
    const e = this.entry(db);
    const key = `${provider}\0${outcome}`;
    let labels = e.jwt.get(key);
    if (!labels) e.jwt.set(key, labels = { database: db, provider, outcome });
    this.jwtLogins.inc(labels, 1);
  }

  storageTransaction(db: string, seconds: number): void {
    this.storageDuration.observe(this.entry(db).labels, seconds);
  }

  /** A live feed opened; the returned function closes it, exactly once however often it is called. */
  feedOpened(db: string, kind: FeedKind): () => void {
    const e = this.entry(db);
    const labels = e.feed[kind];
    this.feedsOpen.inc(labels, 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      if (!e.removed) this.feedsOpen.dec(labels, 1);
    };
  }

  deltaSync(db: string, event: DeltaSyncEvent, bytesSaved?: number): void {
    const e = this.entry(db);
    this.deltaSyncCount.inc(e.delta[event], 1);
    if (bytesSaved !== undefined && bytesSaved > 0) {
      if (event === 'sent') this.deltaBytesSaved.inc(e.saved.pull, bytesSaved);
      else if (event === 'push_applied') this.deltaBytesSaved.inc(e.saved.push, bytesSaved);
    }
  }

  /**
   * A WebSocket connection opened; the returned function closes it, exactly once. A BLIP one names
   * its database, so the console can show replications per database.
   */
  websocketOpened(kind: WebSocketKind, db?: string): () => void {
    const labels = this.websocketLabels[kind];
    this.websocketsOpen.inc(labels, 1);
    const e = kind === 'blip' && db !== undefined ? this.entry(db) : undefined;
    if (e) this.blipOpen.inc(e.labels, 1);
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.websocketsOpen.dec(labels, 1);
      if (e && !e.removed) this.blipOpen.dec(e.labels, 1);
    };
  }

  /** A background job's progress, after each step and at its end. */
  jobProgress(db: string, job: string, counters: Record<string, number>, running: boolean): void {
    if (!this.dbs.has(db)) return;
    let series = this.jobSeries.get(db);
    if (!series) this.jobSeries.set(db, (series = new Map()));
    for (const [counter, value] of Object.entries(counters)) {
      const labels = { database: db, job, counter };
      series.set(`${job}\u0000${counter}`, labels);
      this.jobProgressGauge.set(labels, value);
    }
    const labels = { database: db, job };
    series.set(job, labels);
    this.jobRunningGauge.set(labels, running ? 1 : 0);
  }

  // ---- output ----

  prometheusText(): Promise<string> {
    return this.registry.metrics();
  }

  async expvar(): Promise<Expvar> {
    const snapshot = await this.registry.getMetricsAsJSON();
    return buildExpvar(snapshot, { argv: this.argv, memory: process.memoryUsage(), databases: this.databases() });
  }

  /** Unregisters every metric of this instance (the gateway is stopping). */
  close(): void {
    this.registry.clear();
    this.dbs.clear();
    this.oldRevisionUsage.clear();
  }
}
