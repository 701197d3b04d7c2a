import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Logger, type LoggerOptions, messageKey, redactor, sanitizeQuery, sanitizeRequestTarget } from '../../src/log/index.ts';

const T0 = new Date('2026-01-01T00:00:00.000Z');

function capture(opts: LoggerOptions = {}) {
  const lines: string[] = [];
  const logger = new Logger({ clock: () => T0, write: (l) => lines.push(l), ...opts });
  return { logger, lines };
}

describe('line format and levels', () => {
  test("Sync Gateway's line format with level tags", () => {
    const { logger, lines } = capture({ level: 'trace' });
    logger.error('CRUD: e');
    logger.warn('CRUD: w');
    logger.info('CRUD: i');
    logger.debug('CRUD: d');
    logger.trace('CRUD: t');
    assert.deepEqual(lines, [
      '2026-01-01T00:00:00.000Z [ERR] CRUD: e',
      '2026-01-01T00:00:00.000Z [WRN] CRUD: w',
      '2026-01-01T00:00:00.000Z [INF] CRUD: i',
      // Debug-level lines show their key with `+`, as Sync Gateway prints them.
      '2026-01-01T00:00:00.000Z [DBG] CRUD+: d',
      '2026-01-01T00:00:00.000Z [TRC] CRUD+: t',
    ]);
  });

  test('the level cuts off more verbose lines; none is silent; level stays a settable property', () => {
    const { logger, lines } = capture({ level: 'warn' });
    logger.info('CRUD: no');
    logger.warn('CRUD: yes');
    logger.level = 'none';
    logger.error('CRUD: no');
    assert.equal(logger.getConsoleLevel(), 'none');
    logger.setConsoleLevel('info');
    logger.info('plain message');
    assert.deepEqual(lines.map((l) => l.slice(25)), ['[WRN] CRUD: yes', '[INF] plain message']);
  });

  test('default is info with every key (as the old console Logger)', () => {
    const { logger, lines } = capture();
    logger.info('Auth: x');
    logger.debug('Auth: hidden');
    assert.equal(lines.length, 1);
    assert.deepEqual(logger.getConsoleKeys().sort(), ['*', 'HTTP']);
  });
});

describe('log keys', () => {
  test('the key is the word before the first ": ", matched case-insensitively, + ignored', () => {
    assert.deepEqual(messageKey('CRUD: Opened database'), { key: 'CRUD', raw: 'CRUD' });
    assert.deepEqual(messageKey('crud: x'), { key: 'CRUD', raw: 'crud' });
    assert.deepEqual(messageKey('HTTP+: #001:     --> 200'), { key: 'HTTP', raw: 'HTTP+' });
    assert.deepEqual(messageKey('HTTP:  #001: GET /'), { key: 'HTTP', raw: 'HTTP' });
    assert.equal(messageKey('Received SIGINT: shutting down'), undefined);
    assert.equal(messageKey('Nope: not a key'), undefined);
    assert.equal(messageKey('no key at all'), undefined);
  });

  test('keys filter info and below; error and warn always pass; unknown keys pass; HTTP always on', () => {
    const { logger, lines } = capture({ level: 'debug', keys: ['crud'] });
    logger.info('CRUD: in');
    logger.debug('CRUD: in debug');
    logger.info('Auth: filtered');
    logger.debug('Changes: filtered');
    logger.warn('Auth: warn passes');
    logger.error('Cache: error passes');
    logger.info('HTTP:  #001: GET / (as GUEST)');
    logger.info('Logging: not a key, passes');
    assert.deepEqual(lines.map((l) => l.slice(25)), [
      '[INF] CRUD: in',
      '[DBG] CRUD+: in debug',
      '[WRN] Auth: warn passes',
      '[ERR] Cache: error passes',
      '[INF] HTTP:  #001: GET / (as GUEST)',
      '[INF] Logging: not a key, passes',
    ]);
    assert.deepEqual(logger.getConsoleKeys(), ['HTTP', 'CRUD']);
  });

  test('run-time key changes: replace, merge, disable, unknown keys, KEY+ raises to debug', () => {
    const { logger } = capture({ level: 'info', keys: ['CRUD'] });
    assert.deepEqual(logger.setConsoleKeys({ Auth: true, Bogus: true }, false), ['Bogus']);
    assert.deepEqual(logger.getConsoleKeys(), ['HTTP', 'CRUD', 'Auth']);
    logger.setConsoleKeys({ CRUD: false, HTTP: false }, false);
    assert.deepEqual(logger.getConsoleKeys(), ['HTTP', 'Auth']);
    logger.setConsoleKeys({ changes: true }, true);
    assert.deepEqual(logger.getConsoleKeys(), ['HTTP', 'Changes']);
    assert.equal(logger.level, 'info');
    logger.setConsoleKeys({ 'Cache+': true }, false);
    assert.equal(logger.level, 'debug');
  });
});

describe('HTTP request lines', () => {
  test('request at info naming who, response at debug under HTTP+, 3xx and more at info under HTTP', () => {
    const { logger, lines } = capture({ level: 'debug' });
    logger.httpRequest(1, 'GET', '/db/doc', { user: 'alice' });
    logger.httpRequest(2, 'GET', '/db/_all_docs?limit=2', 'ADMIN');
    logger.httpRequest(3, 'POST', '/db/_session?password=hunter2&x=1', 'GUEST');
    logger.httpResponse(1, 200, 1.234);
    logger.httpResponse(3, 404, 0.5, 'missing');
    assert.deepEqual(lines.map((l) => l.slice(25)), [
      '[INF] HTTP:  #001: GET /db/doc (as alice)',
      '[INF] HTTP:  #002: GET /db/_all_docs?limit=2 (as ADMIN)',
      '[INF] HTTP:  #003: POST /db/_session?password=******&x=1 (as GUEST)',
      '[DBG] HTTP+: #001:     --> 200   (1.2 ms)',
      '[INF] HTTP:  #003:     --> 404 missing  (0.5 ms)',
    ]);
  });

  test('at info, successful responses are not logged; the user name is redacted', () => {
    const { logger, lines } = capture({ level: 'info', redaction: 'partial' });
    logger.httpRequest(12, 'PUT', '/db/x', { user: 'bob' });
    logger.httpResponse(12, 201, 3);
    assert.deepEqual(lines.map((l) => l.slice(25)), ['[INF] HTTP:  #012: PUT /db/x (as <ud>bob</ud>)']);
  });
});

describe('redaction', () => {
  test('none, partial and full', () => {
    assert.equal(new Logger({ redaction: 'none' }).ud('alice'), 'alice');
    assert.equal(new Logger({ redaction: 'partial' }).ud('alice'), '<ud>alice</ud>');
    const full = new Logger({ redaction: 'full' });
    const a = full.ud('alice');
    assert.match(a, /^<ud>[0-9a-f]{16}<\/ud>$/);
    assert.ok(!a.includes('alice'));
    assert.equal(full.ud('alice'), a, 'stable within one logger, so lines correlate');
    assert.notEqual(full.ud('bob'), a);
    assert.notEqual(new Logger({ redaction: 'full' }).ud('alice'), a, 'salted per logger');
    assert.equal(new Logger().ud('x'), 'x', 'none by default (Sync Gateway 2.x)');
  });

  test('the redactor is per instance and can be destructured', () => {
    const { ud } = new Logger({ redaction: 'partial' });
    assert.equal(ud('doc1'), '<ud>doc1</ud>');
    assert.equal(redactor('partial')('c'), '<ud>c</ud>');
  });
});

describe('sanitizeQuery', () => {
  test('blanks passwords, tokens, keys and session ids, keeps the rest byte for byte', () => {
    assert.equal(sanitizeQuery('?password=s3cret&name=al%20ice'), '?password=******&name=al%20ice');
    assert.equal(sanitizeQuery('access_token=abc&id_token=def&refresh_token=x&limit=5'), 'access_token=******&id_token=******&refresh_token=******&limit=5');
    assert.equal(sanitizeQuery('code=oauth&state=s&SessionID=1&api_key=k&pwd=p&Client_Secret=z'), 'code=******&state=s&SessionID=******&api_key=******&pwd=******&Client_Secret=******');
    assert.equal(sanitizeQuery('pass%77ord=x&flag'), 'pass%77ord=******&flag');
    assert.equal(sanitizeQuery('since=now&feed=longpoll&style=all_docs'), 'since=now&feed=longpoll&style=all_docs');
    assert.equal(sanitizeQuery(''), '');
    assert.equal(sanitizeQuery('?'), '?');
    assert.equal(sanitizeRequestTarget('/db/_session?token=t&x=%'), '/db/_session?token=******&x=%');
    assert.equal(sanitizeRequestTarget('/db/doc'), '/db/doc');
  });
});
