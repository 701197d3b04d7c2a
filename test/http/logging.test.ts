import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loggingRoutes } from '../../src/http/routes/logging.ts';
import { createLogger, type Logger } from '../../src/log/index.ts';
import { req } from '../helpers/gateway.ts';
import { type RouteListener, routeListener } from '../helpers/listener.ts';

/** The routes through a real listener. */
function listener(logger: Logger, admin: boolean): Promise<RouteListener> {
  return routeListener(loggingRoutes(logger), admin);
}

describe('/_logging', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-logging-'));
  const console: string[] = [];
  let logger: Logger;
  let admin: { url: string; close(): Promise<void> };
  let pub: { url: string; close(): Promise<void> };

  before(async () => {
    logger = createLogger({ consoleEnabled: true, logLevel: 'info', logKeys: ['HTTP', 'CRUD'], logFilePath: dir, raw: { log_file_path: dir } }, { write: (l) => console.push(l) });
    admin = await listener(logger, true);
    pub = await listener(logger, false);
  });
  after(async () => {
    await admin.close();
    await pub.close();
    await logger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const lines = () => console.splice(0).map((l) => l.slice(25));

  test('GET lists the enabled console keys; admin port only', async () => {
    const r = await req(`${admin.url}/_logging`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { HTTP: true, CRUD: true });
    assert.equal((await req(`${pub.url}/_logging`)).status, 404);
  });

  test('PUT replaces keys, POST merges them; 200 with an empty body; the console follows', async () => {
    let r = await req(`${admin.url}/_logging`, { method: 'PUT', json: { Auth: true, Changes: true, CRUD: false } });
    assert.deepEqual([r.status, r.text], [200, '']);
    assert.deepEqual((await req(`${admin.url}/_logging`)).body, { HTTP: true, Auth: true, Changes: true });
    r = await req(`${admin.url}/_logging`, { method: 'POST', json: { Changes: false, cache: true, Nope: true } });
    assert.deepEqual([r.status, r.text], [200, '']);
    assert.deepEqual((await req(`${admin.url}/_logging`)).body, { HTTP: true, Auth: true, Cache: true });
    lines();
    logger.info('Auth: shown');
    logger.info('Changes: hidden');
    logger.info('CRUD: hidden');
    assert.deepEqual(lines(), ['[INF] Auth: shown']);
  });

  test('?logLevel= changes the console level at run time; the files keep theirs', async () => {
    let r = await req(`${admin.url}/_logging?logLevel=debug`, { method: 'PUT' });
    assert.deepEqual([r.status, r.text], [200, '']);
    assert.equal(logger.level, 'debug');
    lines();
    logger.debug('Auth: now visible');
    assert.deepEqual(lines(), ['[DBG] Auth+: now visible']);

    r = await req(`${admin.url}/_logging?logLevel=error`, { method: 'POST' });
    assert.equal(r.status, 200);
    logger.warn('Auth: hidden warning');
    logger.info('Auth: in the info file anyway');
    assert.deepEqual(lines(), []);
    await logger.reopen(); // flushes what was written so far
    const info = readFileSync(join(dir, 'sg_info.log'), 'utf8');
    assert.match(info, /\[WRN\] Auth: hidden warning\n.*\[INF\] Auth: in the info file anyway\n/);

    // Deprecated level=1..3 (info, warn, error), clamped; a body may come with it.
    r = await req(`${admin.url}/_logging?level=2`, { method: 'PUT', json: { CRUD: true } });
    assert.equal(r.status, 200);
    assert.equal(logger.level, 'warn');
    assert.deepEqual((await req(`${admin.url}/_logging`)).body, { HTTP: true, CRUD: true });
    await req(`${admin.url}/_logging?level=9`, { method: 'POST' });
    assert.equal(logger.level, 'error');
    await req(`${admin.url}/_logging?logLevel=info`, { method: 'POST' });
    assert.equal(logger.level, 'info');
  });

  test('bad levels and bodies are 400 and change nothing', async () => {
    const before = [logger.level, logger.getConsoleKeys()];
    const bad = async (path: string, init: RequestInit & { json?: unknown }, reason: string) => {
      const r = await req(`${admin.url}${path}`, init);
      assert.deepEqual([r.status, r.body?.reason], [400, reason], path);
    };
    await bad('/_logging?logLevel=loud', { method: 'PUT' }, 'unrecognized level: loud');
    await bad('/_logging?level=high', { method: 'PUT' }, 'Invalid value for level: high');
    await bad('/_logging', { method: 'PUT' }, 'Invalid JSON or non-boolean values');
    await bad('/_logging', { method: 'POST', json: { CRUD: 'yes' } }, 'Invalid JSON or non-boolean values');
    await bad('/_logging', { method: 'POST', json: ['CRUD'] }, 'Invalid JSON or non-boolean values');
    await bad('/_logging', { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } }, 'Invalid JSON or non-boolean values');
    assert.deepEqual([logger.level, logger.getConsoleKeys()], before);
  });
});
