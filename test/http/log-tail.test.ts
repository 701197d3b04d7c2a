/**
 * The in-memory log buffer (src/log/buffer.ts) and admin `GET /_log_tail`: bounded by lines and by
 * bytes, followed with `since`, redacted exactly like the log files, admin port only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { logTailRoutes } from '../../src/http/routes/log-tail.ts';
import { loggingRoutes } from '../../src/http/routes/logging.ts';
import { LogBuffer, Logger } from '../../src/log/index.ts';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { type RouteListener, routeListener } from '../helpers/listener.ts';

describe('LogBuffer', () => {
  test('keeps the newest lines within its line bound; serials go on across drops', () => {
    const b = new LogBuffer({ maxLines: 3 });
    for (let i = 1; i <= 5; i++) b.push(`line ${i}`);
    const r = b.read();
    assert.deepEqual(r.lines, [{ seq: 3, line: 'line 3' }, { seq: 4, line: 'line 4' }, { seq: 5, line: 'line 5' }]);
    assert.equal(r.last_seq, 5);
    assert.equal(r.dropped, 2, 'lines 1 and 2 are gone');
    assert.deepEqual(b.read(4).lines.map((l) => l.seq), [5]);
    assert.equal(b.read(4).dropped, 0);
    assert.deepEqual(b.read(5), { lines: [], last_seq: 5, dropped: 0 });
    assert.deepEqual(b.read(0, 1).lines.map((l) => l.seq), [5], 'limit keeps the newest');
  });

  test('keeps within its byte bound; a giant line is cut to a quarter of it', () => {
    const b = new LogBuffer({ maxLines: 10_000, maxBytes: 1000 });
    for (let i = 0; i < 500; i++) b.push(`${String(i).padStart(4, '0')} ${'x'.repeat(45)}`);
    assert.ok(b.size().bytes <= 1000, `${b.size().bytes} bytes held`);
    assert.equal(b.size().lines, 20, '50-byte lines: 20 fit in 1000 bytes');
    assert.equal(b.read().lines[19].line.slice(0, 4), '0499');
    b.push('é'.repeat(5000));
    const giant = b.read().lines.at(-1)!.line;
    assert.ok(Buffer.byteLength(giant) <= 250, `${Buffer.byteLength(giant)} bytes`);
    assert.match(giant, /^é+ …\[cut\]$/, 'cut on a character boundary, and marked');
    assert.ok(b.size().bytes <= 1000);
    // Many more pushes than the bound: still bounded (the dropped entries are really let go).
    for (let i = 0; i < 50_000; i++) b.push(`n${i}`);
    assert.equal(b.read().lines.at(-1)!.line, 'n49999');
    assert.ok(b.size().bytes <= 1000 && b.size().lines <= 10_000);
  });

  test('the Logger feeds it console lines and info-and-above lines of every key, redacted', () => {
    const console: string[] = [];
    const logger = new Logger({ level: 'warn', keys: ['HTTP'], write: (l) => console.push(l), redaction: 'full', buffer: new LogBuffer({ maxLines: 50 }) });
    logger.info(`CRUD: Stored doc ${logger.ud('private-doc-id')}`);
    logger.debug('CRUD: a debug line nobody asked for');
    // Secrets that cannot appear by chance in the hex of a salted <ud> hash (`abc` once did).
    logger.httpRequest(7, 'GET', '/db/_session?password=hunter2&token=tok-xyz&x=1', { user: 'alice' });
    logger.warn('Auth: a warning');
    const lines = logger.buffer.read().lines.map((l) => l.line.slice(25));
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0], /^\[INF\] CRUD: Stored doc <ud>[0-9a-f]{16}<\/ud>$/);
    assert.equal(lines[1].replace(/<ud>[0-9a-f]{16}<\/ud>/, '<ud>…</ud>'), '[INF] HTTP:  #007: GET /db/_session?password=******&token=******&x=1 (as <ud>…</ud>)');
    assert.equal(lines[2], '[WRN] Auth: a warning');
    const all = JSON.stringify(logger.buffer.read());
    for (const secret of ['hunter2', 'tok-xyz', 'alice', 'private-doc-id']) assert.ok(!all.includes(secret), `${secret} leaked`);
    assert.deepEqual(console.map((l) => l.slice(25)), ['[WRN] Auth: a warning'], 'the console keeps its own level');
  });
});

describe('GET /_log_tail', () => {
  let logger: Logger;
  let admin: RouteListener;
  let pub: RouteListener;
  before(async () => {
    logger = new Logger({ level: 'info', write: () => {}, buffer: new LogBuffer({ maxLines: 5 }) });
    admin = await routeListener([...logTailRoutes(logger), ...loggingRoutes(logger)], true);
    pub = await routeListener(logTailRoutes(logger), false);
  });
  after(async () => { await admin.close(); await pub.close(); });

  test('answers the last lines with the console level and keys; since/limit follow the log', async () => {
    for (let i = 1; i <= 7; i++) logger.info(`CRUD: line ${i}`);
    let r = await req(`${admin.url}/_log_tail`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.lines.map((l: { line: string }) => l.line.slice(25)), [3, 4, 5, 6, 7].map((i) => `[INF] CRUD: line ${i}`));
    assert.equal(r.body.last_seq, 7);
    assert.equal(r.body.dropped, 2);
    assert.deepEqual(r.body.console, { log_level: 'info', log_keys: ['HTTP', '*'] });
    logger.info('CRUD: line 8');
    r = await req(`${admin.url}/_log_tail?since=7`);
    assert.deepEqual(r.body.lines, [{ seq: 8, line: r.body.lines[0].line }]);
    assert.match(r.body.lines[0].line, /\[INF\] CRUD: line 8$/);
    r = await req(`${admin.url}/_log_tail?limit=2`);
    assert.deepEqual(r.body.lines.map((l: { seq: number }) => l.seq), [7, 8]);
    // The level is changed through /_logging; the tail reports it.
    assert.equal((await req(`${admin.url}/_logging?logLevel=debug`, { method: 'PUT' })).status, 200);
    assert.equal((await req(`${admin.url}/_log_tail?limit=1`)).body.console.log_level, 'debug');
  });

  test('bad parameters are 400; the public port has no such route', async () => {
    assert.equal((await req(`${admin.url}/_log_tail?since=-1`)).status, 400);
    assert.equal((await req(`${admin.url}/_log_tail?limit=lots`)).status, 400);
    assert.equal((await req(`${pub.url}/_log_tail`)).status, 404);
  });
});

describe('/_log_tail on a running gateway', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(async () => { await gw.stop(); });

  test('a request just made shows, its token blanked; the tail does not log itself', async () => {
    assert.equal((await req(`${gw.adminUrl}/db/?access_token=s3cr3t-value`)).status, 200);
    const r = await req(`${gw.adminUrl}/_log_tail`);
    assert.equal(r.status, 200);
    const lines: string[] = r.body.lines.map((l: { line: string }) => l.line);
    assert.ok(lines.some((l) => /HTTP: {2}#\d+: GET \/db\/\?access_token=\*{6} \(as ADMIN\)$/.test(l)), lines.join('\n'));
    assert.ok(!JSON.stringify(r.body).includes('s3cr3t-value'));
    // At the console's info level (the test gateway's starts at debug), polling the tail adds nothing.
    assert.equal((await req(`${gw.adminUrl}/_logging?logLevel=info`, { method: 'PUT' })).status, 200);
    const mark = (await req(`${gw.adminUrl}/_log_tail?limit=1`)).body.last_seq;
    const again = await req(`${gw.adminUrl}/_log_tail?since=${mark}`);
    assert.deepEqual(again.body.lines, [], 'a console polling the tail does not fill it');
  });
});
