import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { register as globalRegister } from 'prom-client';
import {
  METRIC, Metrics, NO_DATABASE_METRICS, UNMATCHED_ROUTE, metricsRoutes, secondsSince, type DatabaseMetrics,
} from '../../src/metrics/index.ts';
import type { Route } from '../../src/http/router.ts';

type Labels = Record<string, string | number | undefined>;

/** The value of one series (a counter or gauge sample, or a histogram `_bucket`/`_sum`/`_count`). */
async function sample(m: Metrics, name: string, labels: Labels, metricName?: string): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  assert.ok(metric, `metric ${name} is registered`);
  const { values } = await metric.get();
  const hit = values.find((v) =>
    (metricName === undefined || (v as { metricName?: string }).metricName === metricName) &&
    Object.entries(labels).every(([k, want]) => (v.labels as Labels)[k] === want));
  return hit?.value;
}

interface Family { help?: string; type?: string; samples: { name: string; labels: Record<string, string>; value: number }[] }

/** A strict reader of the Prometheus text format (0.0.4): enough to prove the output is well formed. */
function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, f = { samples: [] });
    return f;
  };
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2]);
      if (meta[1] === 'HELP') f.help = meta[3];
      else {
        assert.match(meta[3], /^(counter|gauge|histogram|summary|untyped)$/, line);
        assert.equal(f.samples.length, 0, `TYPE before samples: ${line}`);
        f.type = meta[3];
      }
      continue;
    }
    assert.ok(!line.startsWith('#'), `unknown comment line: ${line}`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let rest = m[2];
      while (rest.length > 0) {
        re.lastIndex = 0;
        const l = re.exec(rest);
        assert.ok(l, `labels of: ${line}`);
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
        rest = rest.slice(l[0].length);
      }
    }
    const value = Number(m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3]);
    // Go's ParseFloat (what Prometheus uses) reads NaN case-insensitively; prom-client writes `Nan`.
    assert.ok(!Number.isNaN(value) || /^nan$/i.test(m[3]), `value of: ${line}`);
    // A sample belongs to the family declared for its name, or for its name minus a histogram suffix.
    const base = families.has(m[1]) ? m[1] : m[1].replace(/_(bucket|sum|count)$/, '');
    const f = families.get(base);
    assert.ok(f?.type, `sample without a TYPE line: ${line}`);
    f.samples.push({ name: m[1], labels, value });
  }
  return families;
}

describe('Metrics', () => {
  test('request counter and duration histogram move per route pattern, method and status', async () => {
    const m = new Metrics({ processMetrics: false });
    m.observeRequest('/{db}/_changes', 'GET', 200, 0.002);
    m.observeRequest('/{db}/_changes', 'GET', 200, 0.004);
    m.observeRequest('/{db}/{doc}', 'PUT', 201, 0.01);
    m.observeRequest(UNMATCHED_ROUTE, 'BREW', 404, 0.0001);
    assert.equal(await sample(m, METRIC.httpRequests, { route: '/{db}/_changes', method: 'GET', status: 200 }), 2);
    assert.equal(await sample(m, METRIC.httpRequests, { route: '/{db}/{doc}', method: 'PUT', status: 201 }), 1);
    // Methods a client invents do not become label values.
    assert.equal(await sample(m, METRIC.httpRequests, { route: UNMATCHED_ROUTE, method: 'OTHER', status: 404 }), 1);
    assert.equal(await sample(m, METRIC.httpDuration, { route: '/{db}/_changes', method: 'GET' }, `${METRIC.httpDuration}_count`), 2);
    const sum = await sample(m, METRIC.httpDuration, { route: '/{db}/_changes', method: 'GET' }, `${METRIC.httpDuration}_sum`);
    assert.ok(Math.abs(sum! - 0.006) < 1e-12);
  });

  test('histogram buckets are cumulative with le labels and +Inf', async () => {
    const m = new Metrics({ processMetrics: false });
    m.storageTransaction('db', 0.0003); // in (0.00025, 0.0005]
    m.storageTransaction('db', 0.02); // in (0.01, 0.025]
    m.storageTransaction('db', 9); // past the last bound
    const bucket = (le: number | string) => sample(m, METRIC.storageTransaction, { database: 'db', le }, `${METRIC.storageTransaction}_bucket`);
    assert.equal(await bucket(0.00025), 0);
    assert.equal(await bucket(0.0005), 1);
    assert.equal(await bucket(0.01), 1);
    assert.equal(await bucket(0.025), 2);
    assert.equal(await bucket(5), 2);
    assert.equal(await bucket('+Inf'), 3);
    assert.equal(await sample(m, METRIC.storageTransaction, { database: 'db' }, `${METRIC.storageTransaction}_count`), 3);
  });

  test('documents, sync function runs and auth failures count per database', async () => {
    const m = new Metrics({ processMetrics: false });
    m.docsWritten('a', 3);
    m.docsWritten('a', 2);
    m.docsWritten('b', 1);
    m.docsRead('a', 4);
    m.docsRead('a', 0);
    m.syncFunction('a', 0.001, 'ok');
    m.syncFunction('a', 0.002, 'ok');
    m.syncFunction('a', 0.003, 'rejected');
    m.syncFunction('a', 0.5, 'error');
    m.authFailure('a', 'basic');
    m.authFailure('a', 'basic');
    m.authFailure('a', 'session');
    assert.equal(await sample(m, METRIC.docWrites, { database: 'a' }), 5);
    assert.equal(await sample(m, METRIC.docWrites, { database: 'b' }), 1);
    assert.equal(await sample(m, METRIC.docReads, { database: 'a' }), 4);
    assert.equal(await sample(m, METRIC.docReads, { database: 'b' }), 0, 'a database seen once has every series at zero');
    assert.equal(await sample(m, METRIC.syncFunctionRuns, { database: 'a', outcome: 'ok' }), 2);
    assert.equal(await sample(m, METRIC.syncFunctionRuns, { database: 'a', outcome: 'rejected' }), 1);
    assert.equal(await sample(m, METRIC.syncFunctionRuns, { database: 'a', outcome: 'error' }), 1);
    assert.equal(await sample(m, METRIC.syncFunctionDuration, { database: 'a' }, `${METRIC.syncFunctionDuration}_count`), 4);
    assert.equal(await sample(m, METRIC.authFailures, { database: 'a', kind: 'basic' }), 2);
    assert.equal(await sample(m, METRIC.authFailures, { database: 'a', kind: 'session' }), 1);
    assert.equal(await sample(m, METRIC.authFailures, { database: 'a', kind: 'guest' }), 0);
  });

  test('forDatabase binds the database; NO_DATABASE_METRICS accepts every call', async () => {
    const m = new Metrics({ processMetrics: false });
    const d: DatabaseMetrics = m.forDatabase('db');
    d.docsWritten(2);
    d.docsRead(1);
    d.syncFunction(0.001, 'ok');
    d.authFailure('guest');
    d.storageTransaction(0.001);
    const close = d.feedOpened('longpoll');
    assert.equal(await sample(m, METRIC.docWrites, { database: 'db' }), 2);
    assert.equal(await sample(m, METRIC.docReads, { database: 'db' }), 1);
    assert.equal(await sample(m, METRIC.authFailures, { database: 'db', kind: 'guest' }), 1);
    assert.equal(await sample(m, METRIC.feedsOpen, { database: 'db', kind: 'longpoll' }), 1);
    close();
    assert.equal(await sample(m, METRIC.feedsOpen, { database: 'db', kind: 'longpoll' }), 0);
    const n = NO_DATABASE_METRICS;
    n.docsWritten(1); n.docsRead(1); n.syncFunction(1, 'error'); n.authFailure('basic'); n.storageTransaction(1);
    n.feedOpened('continuous')();
  });

  test('feed and WebSocket gauges go up and down, and a second close() does nothing', async () => {
    const m = new Metrics({ processMetrics: false });
    const feed = (kind: string) => sample(m, METRIC.feedsOpen, { database: 'db', kind });
    const a = m.feedOpened('db', 'continuous');
    const b = m.feedOpened('db', 'continuous');
    const c = m.feedOpened('db', 'websocket');
    assert.equal(await feed('continuous'), 2);
    assert.equal(await feed('websocket'), 1);
    assert.equal(await feed('longpoll'), 0);
    a(); a(); a();
    assert.equal(await feed('continuous'), 1, 'closing one feed three times closes it once');
    b(); b();
    c(); c();
    assert.equal(await feed('continuous'), 0);
    assert.equal(await feed('websocket'), 0);

    const ws = (kind: string) => sample(m, METRIC.websocketsOpen, { kind });
    assert.equal(await ws('changes'), 0);
    const w1 = m.websocketOpened('changes');
    const w2 = m.websocketOpened('blip');
    assert.equal(await ws('changes'), 1);
    w1(); w1();
    w2(); w2();
    assert.equal(await ws('changes'), 0);
    assert.equal(await ws('blip'), 0);
    // A BLIP connection that names its database is counted for it too, once.
    const blip = (db: string) => sample(m, METRIC.blipConnections, { database: db });
    const b1 = m.websocketOpened('blip', 'db');
    const b2 = m.websocketOpened('blip', 'db');
    m.websocketOpened('blip', 'other')();
    assert.deepEqual([await ws('blip'), await blip('db'), await blip('other')], [2, 2, 0]);
    b1(); b1(); b2();
    assert.deepEqual([await ws('blip'), await blip('db')], [0, 0]);
  });

  test('removing a database drops its series; its feeds that close later leave no negative gauge', async () => {
    const m = new Metrics({ processMetrics: false });
    m.addDatabase('gone');
    m.docsWritten('gone', 1);
    const close = m.feedOpened('gone', 'longpoll');
    m.removeDatabase('gone');
    assert.deepEqual(m.databases(), []);
    assert.equal(await sample(m, METRIC.docWrites, { database: 'gone' }), undefined);
    close();
    assert.equal(await sample(m, METRIC.feedsOpen, { database: 'gone', kind: 'longpoll' }), undefined);
    // Re-created under the same name: starts at zero, and the old feed's close() cannot touch it.
    m.addDatabase('gone');
    close();
    assert.equal(await sample(m, METRIC.feedsOpen, { database: 'gone', kind: 'longpoll' }), 0);
    assert.equal(await sample(m, METRIC.docWrites, { database: 'gone' }), 0);
  });

  test('Prometheus text is well formed: HELP and TYPE lines, label values, escaping', async () => {
    const m = new Metrics();
    m.observeRequest('/{db}/_changes', 'GET', 200, 0.003);
    m.docsWritten('db "quoted"\\name', 1);
    m.syncFunction('db', 0.0002, 'ok');
    m.feedOpened('db', 'websocket');
    m.websocketOpened('changes');
    const text = await m.prometheusText();
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(text);
    const expectTypes: Record<string, string> = {
      [METRIC.httpRequests]: 'counter', [METRIC.httpDuration]: 'histogram', [METRIC.docWrites]: 'counter',
      [METRIC.docReads]: 'counter', [METRIC.syncFunctionDuration]: 'histogram', [METRIC.syncFunctionRuns]: 'counter',
      [METRIC.authFailures]: 'counter', [METRIC.storageTransaction]: 'histogram', [METRIC.feedsOpen]: 'gauge',
      [METRIC.websocketsOpen]: 'gauge',
      // Process metrics from collectDefaultMetrics: memory and event-loop lag.
      process_resident_memory_bytes: 'gauge', nodejs_heap_size_used_bytes: 'gauge',
      nodejs_eventloop_lag_seconds: 'gauge', nodejs_eventloop_lag_p99_seconds: 'gauge',
    };
    for (const [name, type] of Object.entries(expectTypes)) {
      const f = families.get(name);
      assert.ok(f, `${name} present`);
      assert.equal(f.type, type, `${name} type`);
      assert.ok(f.help && f.help.length > 0, `${name} has HELP`);
    }
    const req = families.get(METRIC.httpRequests)!.samples;
    assert.deepEqual(req, [{ name: METRIC.httpRequests, labels: { route: '/{db}/_changes', method: 'GET', status: '200' }, value: 1 }]);
    const writes = families.get(METRIC.docWrites)!.samples.filter((x) => x.value > 0);
    assert.deepEqual(writes, [{ name: METRIC.docWrites, labels: { database: 'db "quoted"\\name' }, value: 1 }]);
    const buckets = families.get(METRIC.httpDuration)!.samples.filter((s) => s.name.endsWith('_bucket'));
    assert.equal(buckets.at(-1)!.labels.le, '+Inf');
    assert.equal(buckets.find((s) => s.labels.le === '0.005')!.value, 1);
    assert.equal(buckets.find((s) => s.labels.le === '0.001')!.value, 0);
    assert.ok(families.get('process_resident_memory_bytes')!.samples[0].value > 0);
  });

  test('two instances in one process are independent, each with its own process metrics', async () => {
    const before = (await globalRegister.getMetricsAsJSON()).length;
    const a = new Metrics();
    const b = new Metrics();
    a.observeRequest('/{db}/', 'GET', 200, 0.001);
    a.docsWritten('db', 7);
    b.docsWritten('db', 1);
    assert.equal(await sample(a, METRIC.docWrites, { database: 'db' }), 7);
    assert.equal(await sample(b, METRIC.docWrites, { database: 'db' }), 1);
    assert.equal(await sample(b, METRIC.httpRequests, { route: '/{db}/', method: 'GET', status: 200 }), undefined);
    for (const m of [a, b]) {
      const families = parsePrometheus(await m.prometheusText());
      assert.ok(families.has('nodejs_eventloop_lag_seconds'));
      assert.ok(families.has('process_resident_memory_bytes'));
    }
    // Nothing went to prom-client's global registry.
    assert.equal((await globalRegister.getMetricsAsJSON()).length, before);
    a.close();
    assert.equal(a.registry.getSingleMetric(METRIC.docWrites), undefined);
    assert.equal(await sample(b, METRIC.docWrites, { database: 'db' }), 1, 'closing one leaves the other');
  });

  test('expvar has Sync Gateway\'s shape, from the same counters', async () => {
    const m = new Metrics({ argv: ['node', 'syncgate', 'config.json'] });
    m.addDatabase('quiet');
    m.docsWritten('db', 3);
    m.docsRead('db', 2);
    m.syncFunction('db', 0.001, 'ok');
    m.syncFunction('db', 0.002, 'rejected');
    m.syncFunction('db', 0.003, 'error');
    m.authFailure('db', 'basic');
    m.authFailure('db', 'guest');
    m.storageTransaction('db', 0.004);
    m.feedOpened('db', 'continuous');
    const closeLongpoll = m.feedOpened('db', 'longpoll');
    closeLongpoll();
    m.websocketOpened('changes');
    m.websocketOpened('blip', 'db');
    m.observeRequest('/{db}/{doc}', 'GET', 200, 0.001);
    m.observeRequest('/{db}/{doc}', 'PUT', 201, 0.02);
    m.observeRequest('/{db}/_changes', 'GET', 200, 30);
    m.deltaSync('db', 'pull_replication');
    m.deltaSync('db', 'requested');
    m.deltaSync('db', 'requested');
    m.deltaSync('db', 'cache_miss');
    m.deltaSync('db', 'sent', 900);
    m.deltaSync('db', 'push_applied', 400);
    m.trackOldRevisions('db', async () => ({ count: 7, bytes: 7000 }));
    m.trackOldRevisions('quiet', async () => { throw new Error('closed store'); });
    const ev = await m.expvar();
    // Round-trips through JSON unchanged: plain numbers and strings only.
    assert.deepEqual(JSON.parse(JSON.stringify(ev)), ev);
    assert.deepEqual(ev.cmdline, ['node', 'syncgate', 'config.json']);
    assert.ok(ev.memstats.heapUsed > 0 && ev.memstats.rss > 0 && ev.memstats.HeapAlloc === ev.memstats.heapUsed);
    const db = ev.syncgateway.per_db.db;
    assert.deepEqual(db, {
      database: {
        num_doc_writes: 3, num_doc_reads_rest: 2,
        sync_function_count: 3, sync_function_time: 6_000_000, sync_function_exception_count: 1,
        storage_transaction_count: 1, storage_transaction_time: 4_000_000,
        num_changes_feeds_longpoll: 0, num_changes_feeds_continuous: 1, num_changes_feeds_websocket: 0,
        num_blip_connections: 1,
      },
      security: { auth_failed_count: 2, num_docs_rejected: 1 },
      delta_sync: {
        deltas_requested: 2, deltas_sent: 1, delta_cache_hit: 0, delta_cache_miss: 1, delta_pull_replication_count: 1,
        delta_push_doc_count: 1, delta_bytes_saved_pull: 900, delta_bytes_saved_push: 400, old_revision_bodies: 7, old_revision_body_bytes: 7000,
      },
    });
    assert.equal(ev.syncgateway.per_db.quiet.delta_sync.old_revision_bodies, 0, 'a store that cannot answer reports nothing');
    const text = await m.prometheusText();
    assert.match(text, /syncgate_delta_sync_total\{database="db",stat="deltas_sent"\} 1/);
    assert.match(text, /syncgate_delta_sync_bytes_saved_total\{database="db",direction="pull"\} 900/);
    assert.match(text, /syncgate_old_revision_body_bytes\{database="db"\} 7000/);
    assert.equal(ev.syncgateway.per_db.quiet.database.num_doc_writes, 0, 'a registered database is listed before any activity');
    assert.deepEqual(Object.keys(ev.syncgateway.per_db).sort(), ['db', 'quiet']);
    const ru = ev.syncgateway.global.resource_utilization;
    assert.ok(ru.process_memory_resident > 0);
    assert.equal(ru.num_http_requests, 3);
    assert.deepEqual([ru.num_http_responses_2xx, ru.num_http_responses_3xx, ru.num_http_responses_4xx, ru.num_http_responses_5xx], [3, 0, 0, 0]);
    assert.equal(ru.num_websocket_connections, 2);
    // Latency buckets of every route but the live feeds (the 30 s _changes request is left out).
    const lat = ev.syncgateway.global.http_request_duration;
    assert.equal(lat.count, 2);
    assert.ok(Math.abs(lat.sum_seconds - 0.021) < 1e-9);
    const at = (le: number) => lat.buckets.find((b) => b.le === le)?.count;
    assert.deepEqual([at(0.001), at(0.01), at(0.025), at(60), at(300)], [1, 1, 2, 2, 2]);
    assert.equal(typeof ru.node_eventloop_lag_p99_seconds, 'number');
  });

  test('metricsRoutes fit the router\'s Route type; secondsSince measures', () => {
    const routes: Route[] = metricsRoutes(new Metrics({ processMetrics: false }));
    assert.deepEqual(routes.map((r) => `${r.methods.join(',')} ${r.pattern}`), ['GET /_metrics', 'GET /metrics', 'GET /_expvar']);
    const t0 = performance.now() - 1500;
    const s = secondsSince(t0);
    assert.ok(s >= 1.5 && s < 60);
  });
});
