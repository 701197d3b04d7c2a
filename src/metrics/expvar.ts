/**
 * Sync Gateway's `/_expvar` JSON, built from one snapshot of the Prometheus registry
 * (`Registry.getMetricsAsJSON()`), so `/_expvar` and `/_metrics` can never disagree.
 *
 * Shape: `{"cmdline":[...],"memstats":{...},"syncgateway":{"global":{"resource_utilization":{...}},
 * "per_db":{"<db>":{"database":{...},"security":{...}}}}}`. Key names follow Sync Gateway where it
 * has one (`num_doc_writes`, `num_doc_reads_rest`, `sync_function_count`, `sync_function_time`,
 * `sync_function_exception_count`, `auth_failed_count`, `num_docs_rejected`,
 * `process_memory_resident`); times are integer nanoseconds, as Sync Gateway reports them. Keys
 * Sync Gateway lacks are Syncgate's own (`storage_transaction_*`, `num_changes_feeds_*`, `node_*`,
 * `num_http_responses_{2,3,4,5}xx`).
 */
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';

export interface ExpvarDatabase {
  database: {
    num_doc_writes: number;
    num_doc_reads_rest: number;
    sync_function_count: number;
    sync_function_time: number;
    sync_function_exception_count: number;
    storage_transaction_count: number;
    storage_transaction_time: number;
    num_changes_feeds_longpoll: number;
    num_changes_feeds_continuous: number;
    num_changes_feeds_websocket: number;
    /** Syncgate's own: BLIP replication connections (Couchbase Lite) open now. */
    num_blip_connections: number;
  };
  security: {
    auth_failed_count: number;
    num_docs_rejected: number;
  };
  /** Sync Gateway's `delta_sync` group, plus Syncgate's bytes saved and old revision store size. */
  delta_sync: {
    deltas_requested: number;
    deltas_sent: number;
    delta_cache_hit: number;
    delta_cache_miss: number;
    delta_pull_replication_count: number;
    delta_push_doc_count: number;
    delta_bytes_saved_pull: number;
    delta_bytes_saved_push: number;
    old_revision_bodies: number;
    old_revision_body_bytes: number;
  };
}

/**
 * Syncgate's own: the request-duration histogram summed over every route but the live ones
 * (`_changes`, whose longpolls wait by design, and `_blipsync`, open for a whole replication), as
 * cumulative bucket counts: a client takes two samples and reads a percentile of the requests
 * between them (the console's p95 chart).
 */
export interface ExpvarLatency {
  /** Upper bounds (seconds) and how many requests took at most that long, cumulative; slower than the last bound: `count` minus its bucket. */
  buckets: { le: number; count: number }[];
  count: number;
  sum_seconds: number;
}

export interface Expvar {
  cmdline: string[];
  memstats: Record<string, number>;
  syncgateway: {
    global: {
      resource_utilization: Record<string, number>;
      http_request_duration: ExpvarLatency;
    };
    per_db: Record<string, ExpvarDatabase>;
  };
}

export interface ExpvarInputs {
  argv: string[];
  memory: NodeJS.MemoryUsage;
  /** Databases to list even when the snapshot has no series for them. */
  databases: string[];
}

type Snapshot = MetricObjectWithValues<MetricValue<string>>[];

function emptyDatabase(): ExpvarDatabase {
  return {
    database: {
      num_doc_writes: 0, num_doc_reads_rest: 0,
      sync_function_count: 0, sync_function_time: 0, sync_function_exception_count: 0,
      storage_transaction_count: 0, storage_transaction_time: 0,
      num_changes_feeds_longpoll: 0, num_changes_feeds_continuous: 0, num_changes_feeds_websocket: 0,
      num_blip_connections: 0,
    },
    security: { auth_failed_count: 0, num_docs_rejected: 0 },
    delta_sync: {
      deltas_requested: 0, deltas_sent: 0, delta_cache_hit: 0, delta_cache_miss: 0, delta_pull_replication_count: 0,
      delta_push_doc_count: 0, delta_bytes_saved_pull: 0, delta_bytes_saved_push: 0, old_revision_bodies: 0, old_revision_body_bytes: 0,
    },
  };
}

const nanos = (seconds: number) => Math.round(seconds * 1e9);

export function buildExpvar(snapshot: Snapshot, inputs: ExpvarInputs): Expvar {
  const byName = new Map(snapshot.map((m) => [m.name, m.values as MetricValueWithName<string>[]]));
  const values = (name: string) => byName.get(name) ?? [];
  const single = (name: string): number | undefined => byName.get(name)?.[0]?.value;

  const perDb: Record<string, ExpvarDatabase> = {};
  const db = (labels: MetricValue<string>['labels']): ExpvarDatabase | undefined => {
    const name = labels.database;
    if (name === undefined) return undefined;
    return (perDb[String(name)] ??= emptyDatabase());
  };
  for (const name of inputs.databases) perDb[name] ??= emptyDatabase();

  for (const v of values('syncgate_database_doc_writes_total')) { const d = db(v.labels); if (d) d.database.num_doc_writes += v.value; }
  for (const v of values('syncgate_database_doc_reads_total')) { const d = db(v.labels); if (d) d.database.num_doc_reads_rest += v.value; }
  for (const v of values('syncgate_sync_function_runs_total')) {
    const d = db(v.labels);
    if (!d) continue;
    d.database.sync_function_count += v.value;
    if (v.labels.outcome === 'error') d.database.sync_function_exception_count += v.value;
    if (v.labels.outcome === 'rejected') d.security.num_docs_rejected += v.value;
  }
  for (const v of values('syncgate_sync_function_duration_seconds')) {
    if (v.metricName?.endsWith('_sum')) { const d = db(v.labels); if (d) d.database.sync_function_time += nanos(v.value); }
  }
  for (const v of values('syncgate_storage_transaction_duration_seconds')) {
    const d = db(v.labels);
    if (!d) continue;
    if (v.metricName?.endsWith('_sum')) d.database.storage_transaction_time += nanos(v.value);
    else if (v.metricName?.endsWith('_count')) d.database.storage_transaction_count += v.value;
  }
  for (const v of values('syncgate_auth_failures_total')) { const d = db(v.labels); if (d) d.security.auth_failed_count += v.value; }
  for (const v of values('syncgate_changes_feeds_open')) {
    const d = db(v.labels);
    if (!d) continue;
    if (v.labels.kind === 'longpoll') d.database.num_changes_feeds_longpoll += v.value;
    else if (v.labels.kind === 'continuous') d.database.num_changes_feeds_continuous += v.value;
    else if (v.labels.kind === 'websocket') d.database.num_changes_feeds_websocket += v.value;
  }
  for (const v of values('syncgate_blip_connections_open')) { const d = db(v.labels); if (d) d.database.num_blip_connections += v.value; }

  for (const v of values('syncgate_delta_sync_total')) {
    const d = db(v.labels);
    const stat = String(v.labels.stat) as keyof ExpvarDatabase['delta_sync'];
    if (d && stat in d.delta_sync) d.delta_sync[stat] += v.value;
  }
  for (const v of values('syncgate_delta_sync_bytes_saved_total')) {
    const d = db(v.labels);
    if (!d) continue;
    if (v.labels.direction === 'pull') d.delta_sync.delta_bytes_saved_pull += v.value;
    else if (v.labels.direction === 'push') d.delta_sync.delta_bytes_saved_push += v.value;
  }
  for (const v of values('syncgate_old_revision_bodies')) { const d = db(v.labels); if (d) d.delta_sync.old_revision_bodies += v.value; }
  for (const v of values('syncgate_old_revision_body_bytes')) { const d = db(v.labels); if (d) d.delta_sync.old_revision_body_bytes += v.value; }

  const m = inputs.memory;
  const resource: Record<string, number> = {
    process_memory_resident: m.rss,
    node_heap_total: m.heapTotal,
    node_heap_used: m.heapUsed,
    node_external_memory: m.external,
    num_http_requests: values('syncgate_http_requests_total').reduce((n, v) => n + v.value, 0),
    num_websocket_connections: values('syncgate_websocket_connections_open').reduce((n, v) => n + v.value, 0),
  };
  // Responses by status class (Syncgate's own keys), so a client of `/_expvar` alone, such as the
  // console's chart, can tell errors from successes.
  for (const cls of ['2xx', '3xx', '4xx', '5xx']) resource[`num_http_responses_${cls}`] = 0;
  for (const v of values('syncgate_http_requests_total')) {
    const key = `num_http_responses_${String(v.labels.status ?? '').charAt(0)}xx`;
    if (key in resource) resource[key] += v.value;
  }
  for (const [key, metric] of [
    ['node_eventloop_lag_mean_seconds', 'nodejs_eventloop_lag_mean_seconds'],
    ['node_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_p99_seconds'],
    ['node_eventloop_lag_max_seconds', 'nodejs_eventloop_lag_max_seconds'],
    ['node_active_handles', 'nodejs_active_handles_total'],
    ['process_cpu_seconds_total', 'process_cpu_seconds_total'],
  ] as const) {
    const v = single(metric);
    if (v !== undefined && Number.isFinite(v)) resource[key] = v;
  }

  return {
    cmdline: inputs.argv,
    memstats: {
      // Node's names, then the Go memstats names tools written for Sync Gateway look for.
      rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers,
      Alloc: m.heapUsed, HeapAlloc: m.heapUsed, HeapSys: m.heapTotal, HeapInuse: m.heapUsed, Sys: m.rss,
    },
    syncgateway: { global: { resource_utilization: resource, http_request_duration: latency(values('syncgate_http_request_duration_seconds')) }, per_db: perDb },
  };
}

/** Routes whose requests stay open by design: left out of the latency histogram. */
const LIVE_ROUTE = /\/(_changes|_blipsync)$/;

function latency(values: MetricValueWithName<string>[]): ExpvarLatency {
  const buckets = new Map<number, number>();
  let count = 0;
  let sum = 0;
  for (const v of values) {
    if (LIVE_ROUTE.test(String(v.labels.route ?? ''))) continue;
    if (v.metricName?.endsWith('_bucket')) {
      const le = Number(v.labels.le);
      if (Number.isFinite(le)) buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    } else if (v.metricName?.endsWith('_count')) count += v.value;
    else if (v.metricName?.endsWith('_sum')) sum += v.value;
  }
  return { buckets: [...buckets].sort(([a], [b]) => a - b).map(([le, n]) => ({ le, count: n })), count, sum_seconds: sum };
}
