/**
 * The metrics listener of a real gateway (src/gateway.ts + src/http/server.ts): every answered
 * request on the public port is counted under its route pattern, aborted live feeds included (a
 * feed never 'finish'es when its client goes away), and the metrics routes serve Prometheus text
 * and expvar JSON.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';
import { METRIC } from '../../src/metrics/index.ts';
import { BlipClient } from '../helpers/blip-client.ts';

/** Re-reads /_metrics until `pattern` matches (a closed request is counted a moment after the client sees it). */
async function metricsMatching(url: string, pattern: RegExp, ms = 30_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await (await fetch(`${url}/_metrics`)).text();
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) assert.fail(`no ${pattern} in /_metrics after ${ms} ms:\n${text.split('\n').filter((l) => l.startsWith('syncgate_http')).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Opens a live feed, waits until `isOpen`, then drops the connection as a closed app would. */
async function openAndAbort(url: string, isOpen: (res: Promise<http.IncomingMessage>) => Promise<unknown>): Promise<void> {
  const r = http.get(url);
  r.on('error', () => {}); // the abort below
  const res = new Promise<http.IncomingMessage>((resolve) => r.once('response', resolve));
  await isOpen(res);
  r.destroy();
}

/** Resolves once the database counts `n` open feeds of `kind` (a longpoll sends no headers while it waits). */
async function feedsOpen(metricsUrl: string, kind: 'longpoll' | 'continuous', n: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const body = await (await fetch(`${metricsUrl}/_expvar`)).json() as any;
    if (body.syncgateway.per_db.db.database[`num_changes_feeds_${kind}`] === n) return;
    if (Date.now() > deadline) assert.fail(`never ${n} open ${kind} feeds`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('metrics listener', () => {
  let gw: TestGateway;
  let metricsUrl: string;
  let publicUrl: string;

  before(async () => {
    gw = await startGateway();
    metricsUrl = gw.metricsUrl;
    publicUrl = gw.publicUrl;
  });
  after(() => gw.stop());

  test('GET /_metrics and /metrics serve Prometheus text with the route patterns', async () => {
    const put = (id: string) => fetch(`${publicUrl}/db/${id}`, { method: 'PUT', body: '{"n":1}', headers: { 'content-type': 'application/json' } });
    assert.equal((await put('doc1')).status, 201);
    assert.equal((await put('doc2')).status, 201);
    assert.equal((await fetch(`${publicUrl}/db/doc1`)).status, 200);
    assert.equal((await fetch(`${publicUrl}/db/doc2`)).status, 200);
    assert.equal((await fetch(`${publicUrl}/_nowhere`)).status, 404);
    for (const path of ['/_metrics', '/metrics']) {
      const res = await fetch(`${metricsUrl}${path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.match(text, new RegExp(`^# TYPE ${METRIC.httpRequests} counter$`, 'm'));
      // Two GETs of different documents share one series: the label is the pattern, not the path.
      assert.match(text, /^syncgate_http_requests_total\{route="\/\{db\}\/\{doc\}",method="GET",status="200"\} 2$/m);
      assert.match(text, /^syncgate_http_requests_total\{route="\/\{db\}\/\{doc\}",method="PUT",status="201"\} 2$/m);
      assert.match(text, /^syncgate_http_requests_total\{route="\(unmatched\)",method="GET",status="404"\} 1$/m);
      assert.doesNotMatch(text, /doc1|doc2|_nowhere/);
      assert.match(text, /^syncgate_database_doc_writes_total\{database="db"\} 2$/m);
      assert.match(text, /^syncgate_database_doc_reads_total\{database="db"\} 2$/m);
      assert.match(text, /^process_resident_memory_bytes \d+/m);
      assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    }
    // The scrapes above were themselves requests on the metrics listener.
    const again = await (await fetch(`${metricsUrl}/_metrics`)).text();
    assert.match(again, /^syncgate_http_requests_total\{route="\/_metrics",method="GET",status="200"\} [1-9]/m);
  });

  test('live feeds whose client goes away are counted when the connection closes', async () => {
    await openAndAbort(`${publicUrl}/db/_changes?feed=continuous&heartbeat=0&timeout=0`, async (res) => assert.equal((await res).statusCode, 200));
    const now = (await (await fetch(`${publicUrl}/db/_changes`)).json() as { last_seq: unknown }).last_seq;
    await openAndAbort(`${publicUrl}/db/_changes?feed=longpoll&since=${now}&timeout=600000`, () => feedsOpen(metricsUrl, 'longpoll', 1));
    await feedsOpen(metricsUrl, 'longpoll', 0);
    await metricsMatching(metricsUrl, /^syncgate_http_requests_total\{route="\/\{db\}\/_changes",method="GET",status="200"\} 3$/m); // with the one-shot read of last_seq
  });

  test('GET /_expvar serves the JSON tree', async () => {
    const res = await fetch(`${metricsUrl}/_expvar`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^application\/json/);
    const body = await res.json() as Record<string, any>;
    assert.deepEqual(body.cmdline, process.argv);
    assert.ok(body.memstats.heapUsed > 0);
    assert.equal(body.syncgateway.per_db.db.database.num_doc_writes, 2);
    assert.equal(body.syncgateway.per_db.db.database.num_doc_reads_rest, 2);
    assert.ok(body.syncgateway.global.resource_utilization.process_memory_resident > 0);
  });

  test('HEAD works, other methods get 405, unknown paths 404', async () => {
    const head = await fetch(`${metricsUrl}/_metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(`${metricsUrl}/_expvar`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.match(post.headers.get('allow')!, /GET/);
    assert.equal((await fetch(`${metricsUrl}/db/doc1`)).status, 404);
  });

  test('gzip when the scraper asks for it', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${metricsUrl}/_metrics`, { headers: { 'accept-encoding': 'gzip' } }, resolve).on('error', reject);
    });
    res.resume();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
  });

  test('/_expvar counts BLIP connections per database and the latency of requests other than live feeds', async () => {
    const expvar = async () => (await (await fetch(`${metricsUrl}/_expvar`)).json()) as any;
    const before = (await expvar()).syncgateway.global.http_request_duration;
    const client = await BlipClient.connect(`${publicUrl.replace('http', 'ws')}/db`);
    try {
      const deadline = Date.now() + 30_000;
      while ((await expvar()).syncgateway.per_db.db.database.num_blip_connections !== 1) {
        if (Date.now() > deadline) assert.fail('the BLIP connection was never counted');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally { await client.close(); }
    const deadline = Date.now() + 30_000;
    while ((await expvar()).syncgateway.per_db.db.database.num_blip_connections !== 0) {
      if (Date.now() > deadline) assert.fail('the closed BLIP connection was still counted');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await fetch(`${publicUrl}/db/doc1`)).status, 200);
    const after = (await expvar()).syncgateway.global.http_request_duration;
    assert.ok(after.count > before.count, 'the document read is in the histogram');
    assert.ok(after.buckets.length > 5 && after.buckets.every((b: { le: number; count: number }, i: number, all: { count: number }[]) => i === 0 || b.count >= all[i - 1].count), 'cumulative buckets');
    assert.ok(after.buckets.at(-1).count <= after.count);
  });
});
