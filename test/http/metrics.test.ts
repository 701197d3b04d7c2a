/**
 * The metrics routes behind a real listener: `http.createServer` + `Router` + `RequestContext`, the
 * way src/http/server.ts dispatches, with `observeRequest` called on each response's `close` (fires for aborted feeds too)
 * (the wiring server.ts is meant to get), and one more listener standing in for the public port.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RequestContext, type HttpSettings } from '../../src/http/context.ts';
import { type Route, Router } from '../../src/http/router.ts';
import { METRIC, Metrics, UNMATCHED_ROUTE, metricsRoutes } from '../../src/metrics/index.ts';

const settings: HttpSettings = { maxBodyBytes: 1024 * 1024, compressResponses: true, pretty: false };

/** A listener that serves `routes` and records every answered request in `metrics`. */
async function serve(routes: Route[], metrics: Metrics): Promise<{ url: string; close(): Promise<void> }> {
  const router = new Router(routes, true);
  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    const ctx = new RequestContext(req, res, true, settings);
    let route = UNMATCHED_ROUTE;
    res.once('close', () => metrics.observeRequest(route, ctx.method, res.statusCode, (performance.now() - t0) / 1000));
    (async () => {
      try {
        const match = router.resolve(ctx.method, ctx.path);
        if ('allow' in match) { res.statusCode = 204; res.setHeader('Allow', match.allow.join(', ')); res.end(); return; }
        route = match.route.pattern;
        ctx.params = match.params;
        await match.route.handler(ctx);
      } catch (err) {
        ctx.sendError(err);
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

describe('metrics listener', () => {
  const metrics = new Metrics({ argv: ['node', 'syncgate'] });
  let metricsPort: { url: string; close(): Promise<void> };
  let publicPort: { url: string; close(): Promise<void> };

  before(async () => {
    metricsPort = await serve(metricsRoutes(metrics), metrics);
    const docRoutes: Route[] = [
      {
        methods: ['GET', 'PUT'], pattern: '/{db}/{doc}',
        handler: async (ctx) => {
          const db = ctx.params.db;
          if (ctx.method === 'PUT') { metrics.docsWritten(db, 1); await ctx.sendJson(201, '{"ok":true}'); return; }
          metrics.docsRead(db, 1);
          await ctx.sendJson(200, '{}');
        },
      },
    ];
    publicPort = await serve(docRoutes, metrics);
  });
  after(async () => {
    await metricsPort.close();
    await publicPort.close();
    metrics.close();
  });

  test('GET /_metrics and /metrics serve Prometheus text with the route patterns', async () => {
    assert.equal((await fetch(`${publicPort.url}/db/doc1`, { method: 'PUT' })).status, 201);
    assert.equal((await fetch(`${publicPort.url}/db/doc1`)).status, 200);
    assert.equal((await fetch(`${publicPort.url}/db/doc2`)).status, 200);
    assert.equal((await fetch(`${publicPort.url}/_nowhere`)).status, 404);
    for (const path of ['/_metrics', '/metrics']) {
      const res = await fetch(`${metricsPort.url}${path}`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.match(text, new RegExp(`^# TYPE ${METRIC.httpRequests} counter$`, 'm'));
      // Two GETs of different documents share one series: the label is the pattern, not the path.
      assert.match(text, /^syncgate_http_requests_total\{route="\/\{db\}\/\{doc\}",method="GET",status="200"\} 2$/m);
      assert.match(text, /^syncgate_http_requests_total\{route="\/\{db\}\/\{doc\}",method="PUT",status="201"\} 1$/m);
      assert.match(text, /^syncgate_http_requests_total\{route="\(unmatched\)",method="GET",status="404"\} 1$/m);
      assert.doesNotMatch(text, /doc1|doc2|_nowhere/);
      assert.match(text, /^syncgate_database_doc_writes_total\{database="db"\} 1$/m);
      assert.match(text, /^syncgate_database_doc_reads_total\{database="db"\} 2$/m);
      assert.match(text, /^process_resident_memory_bytes \d+/m);
      assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    }
    // The scrapes above were themselves requests on the metrics listener.
    const again = await (await fetch(`${metricsPort.url}/_metrics`)).text();
    assert.match(again, /^syncgate_http_requests_total\{route="\/_metrics",method="GET",status="200"\} [1-9]/m);
  });

  test('GET /_expvar serves the JSON tree', async () => {
    const res = await fetch(`${metricsPort.url}/_expvar`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^application\/json/);
    const body = await res.json() as Record<string, any>;
    assert.deepEqual(body.cmdline, ['node', 'syncgate']);
    assert.ok(body.memstats.heapUsed > 0);
    assert.equal(body.syncgateway.per_db.db.database.num_doc_writes, 1);
    assert.equal(body.syncgateway.per_db.db.database.num_doc_reads_rest, 2);
    assert.ok(body.syncgateway.global.resource_utilization.process_memory_resident > 0);
  });

  test('HEAD works, other methods get 405, unknown paths 404', async () => {
    const head = await fetch(`${metricsPort.url}/_metrics`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(`${metricsPort.url}/_expvar`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.match(post.headers.get('allow')!, /GET/);
    assert.equal((await fetch(`${metricsPort.url}/db/doc1`)).status, 404);
  });

  test('gzip when the scraper asks for it', async () => {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${metricsPort.url}/_metrics`, { headers: { 'accept-encoding': 'gzip' } }, resolve).on('error', reject);
    });
    res.resume();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
  });
});
