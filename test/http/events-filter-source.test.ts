/**
 * Webhook filters given by URL or file, as Sync Gateway 3.x reads them (src/events/filter-source.ts):
 * an `http(s)://` value is fetched, a value naming an existing file is read, anything else is the
 * JavaScript itself. The filters here are served by a real HTTP server on a free port and written
 * to temp files; a filter that cannot be read refuses the config naming its key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

const hook = (url: string, extra: Record<string, unknown> = {}) => ({ handler: 'webhook', url, ...extra });

/** Serves JavaScript files from `files`; any other path is 404. Records the paths asked for. */
async function startJsServer(files: Record<string, string>) {
  const asked: string[] = [];
  const server = http.createServer((q, res) => {
    asked.push(`${q.url ?? ''}${q.headers.authorization ? ` (${q.headers.authorization})` : ''}`);
    const js = files[q.url ?? ''];
    if (js === undefined) res.writeHead(404).end('not here');
    else res.writeHead(200, { 'content-type': 'application/javascript' }).end(js);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('webhook filters read from a URL or a file', () => {
  let dir: string;
  let js: Awaited<ReturnType<typeof startJsServer>>;
  let rx: WebhookReceiver;
  let gw: TestGateway;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'syncgate-filters-'));
    writeFileSync(join(dir, 'notes.js'), 'function(doc) { return doc.kind === "note"; }\n');
    writeFileSync(join(dir, 'empty.js'), '');
    js = await startJsServer({ '/filters/orders.js': 'function(doc, oldDoc) { return doc.kind === "order"; }' });
    rx = await startReceiver();
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:',
          event_handlers: {
            max_processes: 1,
            document_changed: [
              hook(`${rx.url}/from-url`, { filter: `${js.base.replace('//', '//u:p@')}/filters/orders.js` }),
              hook(`${rx.url}/from-file`, { filter: join(dir, 'notes.js') }),
              hook(`${rx.url}/empty-file`, { filter: join(dir, 'empty.js') }),
              hook(`${rx.url}/inline`, { filter: 'function(doc) { return doc.kind === "order"; }' }),
            ],
          },
        },
      },
    });
  });
  after(async () => { await gw?.stop(); await rx?.close(); await js?.close(); rmSync(dir, { recursive: true, force: true }); });

  test('a filter fetched over HTTP and one read from a file decide like inline ones; an empty file is no filter', async () => {
    assert.deepEqual(js.asked, ['/filters/orders.js (Basic dTpw)'], 'fetched once, when the handlers were built, credentials as Basic auth');
    assert.ok(gw.logs.some((l) => l.includes(`document_changed[0].filter: loading content from [${js.base.replace('//', '//xxxxx:xxxxx@')}/filters/orders.js]`)), 'logged, redacted');
    assert.ok(gw.logs.some((l) => l.includes(`document_changed[1].filter: loading content from [${join(dir, 'notes.js')}]`)));
    assert.ok(!gw.logs.some((l) => l.includes('u:p@')));
    for (const [id, kind] of [['o1', 'order'], ['n1', 'note'], ['x1', 'other']]) {
      assert.equal((await req(`${gw.publicUrl}/db/${id}`, { method: 'PUT', json: { kind } })).status, 201);
    }
    // One at a time (max_processes 1): once x1 reached /empty-file, every earlier decision was made.
    await rx.until(() => rx.at('/empty-file').some((r) => r.body._id === 'x1'), 'the last event at /empty-file');
    const ids = (p: string) => rx.at(p).map((r) => r.body._id);
    assert.deepEqual(ids('/from-url'), ['o1']);
    assert.deepEqual(ids('/from-file'), ['n1']);
    assert.deepEqual(ids('/empty-file'), ['o1', 'n1', 'x1']);
    assert.deepEqual(ids('/inline'), ['o1']);
    // The config keeps what was given, not what was read.
    const cfg = await req(`${gw.adminUrl}/db/_config`);
    assert.equal(cfg.status, 200);
    assert.equal(cfg.body.event_handlers.document_changed[1].filter, join(dir, 'notes.js'));
  });
});

describe('a filter that cannot be read refuses the config naming its key', () => {
  test('a URL answering 404, a refused port, credentials redacted: start-up fails, PUT /{db}/ answers 400 and opens nothing', async () => {
    const js = await startJsServer({});
    const gone = await startJsServer({});
    await gone.close();
    try {
      await assert.rejects(
        startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [hook('http://127.0.0.1:9/', { filter: `${js.base}/missing.js` })] } } } }),
        new RegExp(`databases\\.db\\.event_handlers\\.document_changed\\[0\\]\\.filter: Error loading JavaScript \\(WebhookFilter\\) from "${js.base}/missing\\.js": 404 Not Found`),
      );
      const gw = await startGateway();
      try {
        const r = await req(`${gw.adminUrl}/other/`, {
          method: 'PUT',
          json: { server: 'memory:', event_handlers: { db_state_changed: [hook('http://127.0.0.1:9/'), hook('http://127.0.0.1:9/', { filter: `http://bob:pw@127.0.0.1:${new URL(gone.base).port}/f.js` })] } },
        });
        assert.equal(r.status, 400);
        assert.match(r.body.reason, /^databases\.other\.event_handlers\.db_state_changed\[1\]\.filter: Error loading JavaScript \(WebhookFilter\) from "http:\/\/xxxxx:xxxxx@127\.0\.0\.1:\d+\/f\.js": ECONNREFUSED$/);
        assert.doesNotMatch(r.body.reason, /pw/);
        assert.equal((await req(`${gw.adminUrl}/other/`)).status, 404, 'nothing was opened');
      } finally {
        await gw.stop();
      }
    } finally {
      await js.close();
    }
  });

  test('a path to no file, or to a directory, is taken as JavaScript (Sync Gateway\'s rule) and refused as such', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncgate-filters-'));
    try {
      for (const filter of [join(dir, 'no-such-file.js'), dir]) {
        await assert.rejects(
          startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [hook('http://127.0.0.1:9/', { filter })] } } } }),
          /databases\.db\.event_handlers\.document_changed\[0\]\.filter: the filter does not compile/,
        );
      }
      writeFileSync(join(dir, 'broken.js'), 'function(doc) {');
      await assert.rejects(
        startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [hook('http://127.0.0.1:9/', { filter: join(dir, 'broken.js') })] } } } }),
        /document_changed\[0\]\.filter: the filter does not compile/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
