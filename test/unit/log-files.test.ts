import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { parseConfigText } from '../../src/config/index.ts';
import { createLogger, fileLoggerSettings, type LoggingSettings, LoggingSetupError } from '../../src/log/index.ts';

const root = mkdtempSync(join(tmpdir(), 'syncgate-log-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(root, `case${++n}`);

function settings(raw: Record<string, unknown>, extra: Partial<LoggingSettings> = {}): LoggingSettings {
  return { consoleEnabled: true, logLevel: 'info', logKeys: ['HTTP'], raw, ...extra, ...(typeof raw.log_file_path === 'string' ? { logFilePath: raw.log_file_path } : {}) };
}

const read = (dir: string, level: string) => readFileSync(join(dir, `sg_${level}.log`), 'utf8').trim().split('\n').map((l) => l.replace(/^\S+ /, ''));

describe('per-level files', () => {
  test('each file holds its level and the more severe ones, every key; console keeps its own filter', async () => {
    const dir = freshDir();
    const console: string[] = [];
    const logger = createLogger(settings({ log_file_path: dir, debug: { enabled: true } }), { write: (l) => console.push(l) });
    logger.error('CRUD: e1');
    logger.warn('Auth: w1');
    logger.info('Changes: i1');
    logger.debug('Cache: d1');
    logger.trace('Sync: t1');
    await logger.close();
    assert.deepEqual(read(dir, 'error'), ['[ERR] CRUD: e1']);
    assert.deepEqual(read(dir, 'warn'), ['[ERR] CRUD: e1', '[WRN] Auth: w1']);
    assert.deepEqual(read(dir, 'info'), ['[ERR] CRUD: e1', '[WRN] Auth: w1', '[INF] Changes: i1']);
    assert.deepEqual(read(dir, 'debug'), ['[ERR] CRUD: e1', '[WRN] Auth: w1', '[INF] Changes: i1', '[DBG] Cache+: d1']);
    assert.equal(existsSync(join(dir, 'sg_trace.log')), false, 'trace is off by default');
    // Console: level info, keys [HTTP]: the Changes info line is filtered there.
    assert.deepEqual(console.map((l) => l.replace(/^\S+ /, '')), ['[ERR] CRUD: e1', '[WRN] Auth: w1']);
    assert.deepEqual(logger.filePaths(), {
      error: join(dir, 'sg_error.log'), warn: join(dir, 'sg_warn.log'), info: join(dir, 'sg_info.log'), debug: join(dir, 'sg_debug.log'),
    });
    // Lines after close go to the console only.
    logger.error('CRUD: late');
    assert.equal(console.length, 3);
  });

  test('the directory is created with mode 0700, files 0600; start-up lines name it', async () => {
    const dir = join(freshDir(), 'nested', 'logs');
    const console: string[] = [];
    const logger = createLogger(settings({ log_file_path: dir, info: { enabled: false } }, { consoleEnabled: false }), { write: (l) => console.push(l) });
    logger.banner('==== Couchbase Sync Gateway/2.8.3(Syncgate) CE ====');
    logger.logConfiguration();
    logger.info('CRUD: not on the console (console off)');
    await logger.close();
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'sg_warn.log')).mode & 0o777, 0o600);
    assert.equal(existsSync(join(dir, 'sg_info.log')), false);
    assert.deepEqual(console.map((l) => l.replace(/^\S+ \[/, '[')), [
      '==== Couchbase Sync Gateway/2.8.3(Syncgate) CE ====',
      `[INF] Logging: Files to ${dir}`,
      '[INF] Logging: Console level: none',
      '[INF] Logging: Console keys: [HTTP]',
      '[INF] Logging: Redaction level: none',
    ]);
    assert.deepEqual(readFileSync(join(dir, 'sg_error.log'), 'utf8'), '==== Couchbase Sync Gateway/2.8.3(Syncgate) CE ====\n');
  });

  test('without log_file_path: "Files disabled" and the support warning', async () => {
    const console: string[] = [];
    const logger = createLogger(settings({ redaction_level: 'partial' }, { logKeys: ['HTTP', 'CRUD'] }), { write: (l) => console.push(l) });
    logger.logConfiguration();
    await logger.close();
    assert.equal(logger.logFilePath, undefined);
    assert.deepEqual(console.map((l) => l.replace(/^\S+ /, '')), [
      '[INF] Logging: Files disabled',
      '[ERR] No log_file_path property specified in config, and --defaultLogFilePath command line flag was not set. Log files required for product support are not being generated.',
      '[INF] Logging: Console level: info',
      '[INF] Logging: Console keys: [HTTP CRUD]',
      '[INF] Logging: Redaction level: partial',
    ]);
  });

  test('-verbose adds HTTP+ (debug); console disabled means level none', () => {
    assert.equal(createLogger(settings({}), { verbose: true }).level, 'debug');
    assert.equal(createLogger(settings({}, { consoleEnabled: false })).level, 'none');
  });
});

describe('from a config file', () => {
  test("the loaded config's logging block builds the logger", async () => {
    const dir = freshDir();
    const config = parseConfigText(JSON.stringify({
      logging: {
        log_file_path: dir, redaction_level: 'partial',
        console: { log_level: 'debug', log_keys: ['crud'] },
        debug: { enabled: true, rotation: { max_size: 5, max_age: 1 } },
      },
    }), 'test.json');
    const console: string[] = [];
    const logger = createLogger(config.logging, { write: (l) => console.push(l) });
    assert.equal(logger.level, 'debug');
    assert.deepEqual(logger.getConsoleKeys().sort(), ['CRUD', 'HTTP']);
    assert.equal(logger.ud('alice'), '<ud>alice</ud>');
    logger.debug(`CRUD: saved ${logger.ud('doc1')}`);
    logger.debug('Auth: not on the console');
    await logger.close();
    assert.equal(console.length, 1);
    assert.deepEqual(read(dir, 'debug'), ['[DBG] CRUD+: saved <ud>doc1</ud>', '[DBG] Auth+: not on the console']);
  });
});

describe('log file settings', () => {
  test("defaults: Sync Gateway's sizes and ages; error, warn, info on", () => {
    const s = fileLoggerSettings({});
    assert.deepEqual(s.map((f) => [f.level, f.enabled, f.maxSizeMB, f.maxAgeDays, f.rotatedLogsSizeLimitMB]), [
      ['error', true, 100, 360, 1024], ['warn', true, 100, 180, 1024], ['info', true, 100, 6, 1024],
      ['debug', false, 100, 2, 1024], ['trace', false, 100, 2, 1024],
    ]);
  });

  test('max_age below the minimum or above 9999, and a too small size limit, stop start-up naming the key', () => {
    const bad = (raw: Record<string, unknown>, key: string, what: RegExp) => assert.throws(() => fileLoggerSettings(raw), (e: LoggingSetupError) => {
      assert.ok(e instanceof LoggingSetupError);
      assert.equal(e.keyPath, key);
      assert.match(e.message, what);
      assert.ok(e.message.startsWith(key + ': '));
      return true;
    });
    bad({ error: { rotation: { max_age: 179 } } }, 'logging.error.rotation.max_age', /179 is below the minimum of 180 days/);
    bad({ info: { rotation: { max_age: 2 } } }, 'logging.info.rotation.max_age', /minimum of 3 days/);
    bad({ stats: { rotation: { max_age: 1 } } }, 'logging.stats.rotation.max_age', /minimum of 3 days/);
    bad({ warn: { rotation: { max_age: 10000 } } }, 'logging.warn.rotation.max_age', /maximum of 9999/);
    bad({ debug: { rotation: { rotated_logs_size_limit: 5 } } }, 'logging.debug.rotation.rotated_logs_size_limit', /minimum of 10 MB/);
    assert.equal(fileLoggerSettings({ info: { rotation: { max_age: 3 } } })[2].maxAgeDays, 3);
  });

  test('a log path that is a file, or not writable, is "invalid log file path"', () => {
    const file = join(freshDir() + '-file');
    writeFileSync(file, 'x');
    for (const p of [file, join(file, 'sub')]) {
      assert.throws(() => createLogger(settings({ log_file_path: p })), (e: LoggingSetupError) => {
        assert.equal(e.keyPath, 'logging.log_file_path');
        assert.match(e.message, /^logging\.log_file_path: invalid log file path ".*": not a directory$/);
        return true;
      });
    }
    if (process.getuid?.() !== 0) {
      const ro = freshDir();
      mkdirSync(ro);
      chmodSync(ro, 0o500);
      assert.throws(() => createLogger(settings({ log_file_path: ro })), /invalid log file path ".*": not writable/);
      chmodSync(ro, 0o700);
    }
  });
});

describe('rotation and reopening', () => {
  test('max_size rotates the file into a gzipped sg_info-<timestamp>.log.gz', async () => {
    const dir = freshDir();
    const logger = createLogger(settings({ log_file_path: dir, info: { rotation: { max_size: 1 } } }));
    const filler = 'x'.repeat(1000);
    for (let i = 0; i < 1100; i++) logger.info(`CRUD: line ${i} ${filler}`);
    logger.info('CRUD: after rotation');
    await logger.close();
    const rotated = readdirSync(dir).filter((f) => f.startsWith('sg_info-'));
    assert.equal(rotated.length, 1, readdirSync(dir).join(', '));
    assert.match(rotated[0], /^sg_info-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log\.gz$/);
    const old = gunzipSync(readFileSync(join(dir, rotated[0]))).toString('utf8').trim().split('\n');
    const current = readFileSync(join(dir, 'sg_info.log'), 'utf8').trim().split('\n');
    assert.ok(old.length >= 1000 && old[0].endsWith(`CRUD: line 0 ${filler}`));
    assert.ok(current.at(-1)!.endsWith('CRUD: after rotation'));
    assert.equal(old.length + current.length, 1101, 'no line lost or split');
    // The warn and error files did not reach their size: not rotated.
    assert.ok(!readdirSync(dir).some((f) => f.startsWith('sg_error-')));
  });

  test('rotated files older than max_age are removed after a rotation', async () => {
    const dir = freshDir();
    const logger = createLogger(settings({ log_file_path: dir, info: { rotation: { max_size: 1, max_age: 3 } } }));
    const stale = join(dir, 'sg_info-2020-01-01T00-00-00.000.log.gz');
    const recent = join(dir, 'sg_info-2020-01-02T00-00-00.000.log.gz');
    const other = join(dir, 'sg_warn-2020-01-01T00-00-00.000.log.gz');
    for (const f of [stale, recent, other]) writeFileSync(f, '');
    const old = new Date(Date.now() - 4 * 86_400_000);
    utimesSync(stale, old, old);
    utimesSync(other, old, old);
    for (let i = 0; i < 1100; i++) logger.info(`CRUD: ${'y'.repeat(1000)}`);
    await logger.close();
    assert.equal(existsSync(stale), false);
    assert.equal(existsSync(recent), true);
    assert.equal(existsSync(other), true, "another level's files follow that level's max_age");
  });

  test('reopen() after the file was moved away (logrotate, SIGHUP) writes to a new file', async () => {
    const dir = freshDir();
    const logger = createLogger(settings({ log_file_path: dir }));
    logger.warn('CRUD: before');
    await new Promise((r) => setTimeout(r, 50));
    renameSync(join(dir, 'sg_warn.log'), join(dir, 'moved.log'));
    const reopening = logger.reopen();
    logger.warn('CRUD: during');
    await reopening;
    logger.warn('CRUD: after');
    await logger.close();
    assert.deepEqual(readFileSync(join(dir, 'moved.log'), 'utf8').trim().split('\n').map((l) => l.slice(25)), ['[WRN] CRUD: before']);
    assert.deepEqual(read(dir, 'warn'), ['[WRN] CRUD: during', '[WRN] CRUD: after']);
  });

  test('close() right after reopen() still flushes every line', async () => {
    const dir = freshDir();
    const logger = createLogger(settings({ log_file_path: dir }));
    logger.error('CRUD: one');
    void logger.reopen();
    logger.error('CRUD: two');
    await logger.close();
    assert.deepEqual(read(dir, 'error'), ['[ERR] CRUD: one', '[ERR] CRUD: two']);
  });
});
