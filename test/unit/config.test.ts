import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  ConfigError, acceptedServerSchemes, convertBackQuotedStrings, defaultConfig, loadConfigFiles, parseConfigText,
  type GatewayConfig,
} from '../../src/config/index.ts';

const parse = (v: unknown): GatewayConfig => parseConfigText(typeof v === 'string' ? v : JSON.stringify(v), 'test.json');
const db = (dbConfig: Record<string, unknown>) => parse({ databases: { db: { server: 'memory:', ...dbConfig } } }).databases.db;

/** Asserts a ConfigError is thrown whose message contains every fragment; returns the message. */
function configError(fn: () => unknown, ...fragments: string[]): string {
  let message = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    message = err.message;
    assert.ok(!message.includes('\n'), `message must be one line: ${message}`);
    for (const f of fragments) assert.ok(message.includes(f), `"${message}" should contain "${f}"`);
    return true;
  });
  return message;
}

describe('config: keys', () => {
  it('matches keys case-insensitively and normalizes their spelling', () => {
    const c = parse({
      INTERFACE: ':5000', AdminInterface: '127.0.0.1:6000', sslcert: 'c.pem', SSLKEY: 'k.pem', pretty: true,
      compressresponses: false, Databases: { db: { SERVER: 'memory:', Revs_Limit: 200, ALLOW_CONFLICTS: true, Users: { bob: { Admin_Channels: ['a'] } } } },
    });
    assert.equal(c.interface, ':5000');
    assert.equal(c.adminInterface, '127.0.0.1:6000');
    assert.equal(c.sslCert, 'c.pem');
    assert.equal(c.sslKey, 'k.pem');
    assert.equal(c.pretty, true);
    assert.equal(c.compressResponses, false);
    assert.equal(c.databases.db.revsLimit, 200);
    assert.deepEqual(c.databases.db.users.bob.admin_channels, ['a']);
    assert.deepEqual(Object.keys(c.raw).sort(), ['SSLCert', 'SSLKey', 'Pretty', 'CompressResponses', 'adminInterface', 'databases', 'interface'].sort());
    assert.deepEqual(Object.keys(c.databases.db.raw).sort(), ['allow_conflicts', 'revs_limit', 'server', 'users']);
  });

  it('keeps map keys (database and user names) case-sensitive', () => {
    const c = parse({ databases: { db: { server: 'memory:', users: { Alice: { password: 'secret1' }, alice: { password: 'secret2' } } } } });
    assert.deepEqual(Object.keys(c.databases.db.users).sort(), ['Alice', 'alice']);
  });

  it('rejects unknown keys with their full path: top level, in a db, in a user, in a role', () => {
    configError(() => parse({ interfase: ':1' }), 'test.json', 'unknown key "interfase" at interfase');
    configError(() => parse({ databases: { db: { revs_limt: 100 } } }), 'unknown key "revs_limt" at databases.db.revs_limt');
    configError(() => parse({ databases: { db: { users: { alice: { passwd: 'x' } } } } }), 'databases.db.users.alice.passwd');
    configError(() => parse({ databases: { db: { roles: { r: { admin_channels: [], password: 'x' } } } } }), 'databases.db.roles.r.password');
    configError(() => parse({ logging: { console: { log_levl: 'info' } } }), 'logging.console.log_levl');
  });

  it('rejects unknown keys even inside a known but unbuilt section', () => {
    configError(() => parse({ databases: { db: { cache: { rev_cache: { sise: 5 } } } } }), 'databases.db.cache.rev_cache.sise');
  });

  it('rejects a known key with the wrong JSON type, naming its path', () => {
    configError(() => parse({ databases: { db: { revs_limit: 'abc' } } }), 'databases.db.revs_limit', 'expected a non-negative integer');
    configError(() => parse({ Pretty: 'yes' }), 'Pretty', 'true or false');
    configError(() => parse({ databases: { db: { users: { a: { admin_channels: 'x' } } } } }), 'databases.db.users.a.admin_channels');
    configError(() => parse({ databases: { db: { users: { a: { admin_channels: ['ok', 3] } } } } }), 'databases.db.users.a.admin_channels[1]');
    configError(() => parse({ databases: [] }), 'databases: expected an object');
    configError(() => parse({ tls_minimum_version: 'ssl3' }), 'tls_minimum_version', '"tlsv1.2"');
    configError(() => parse({ databases: { db: { import_docs: 'sometimes' } } }), 'databases.db.import_docs');
    configError(() => parse({ IdleTimeout: 1.5 }), 'IdleTimeout');
    configError(() => parse('[1]'), 'test.json', 'JSON object');
  });

  it('reports every problem at once', () => {
    const msg = configError(() => parse({ a: 1, databases: { db: { b: 2, revs_limit: 'x' } } }), 'at a', 'databases.db.b', 'databases.db.revs_limit');
    assert.match(msg, /^3 config errors/);
  });

  it('treats null as unset, like Go', () => {
    const c = parse({ interface: null, databases: { db: { server: 'memory:', revs_limit: null } } });
    assert.equal(c.interface, ':4984');
    assert.equal(c.databases.db.revsLimit, 100);
  });
});

describe('config: warnings', () => {
  it('accepts a known unbuilt key with a warning naming its path', () => {
    const c = parse({ MaxFileDescriptors: 5000, databases: { db: { server: 'memory:', import_docs: true, cache: { rev_cache: { size: 10 } } } } });
    assert.ok(c.warnings.includes('databases.db.import_docs is not supported yet and is ignored'), c.warnings.join('|'));
    assert.ok(c.warnings.includes('MaxFileDescriptors is not supported yet and is ignored'));
    assert.ok(c.warnings.includes('databases.db.cache is not supported yet and is ignored'));
    assert.ok(!c.warnings.some((w) => w.includes('rev_cache')), 'only the outermost unbuilt key warns');
    assert.equal(c.databases.db.raw.import_docs, true);
  });

  it('does not warn for built keys or for unbuilt keys set to an inert value', () => {
    const c = parse({ Pretty: true, logging: { console: { log_level: 'debug', log_keys: ['CRUD'] } }, databases: { db: { server: 'memory:', import_docs: false, enable_shared_bucket_access: false, revs_limit: 1000 } } });
    assert.deepEqual(c.warnings, []);
  });

  it('accepts the deprecated log and logFilePath with a deprecation warning', () => {
    const c = parse({ log: ['CRUD', 'Changes+'], logFilePath: '/var/log/sg' });
    assert.deepEqual(c.logging.logKeys, ['CRUD', 'Changes+', 'HTTP']);
    assert.equal(c.logging.logFilePath, '/var/log/sg');
    assert.ok(c.warnings.some((w) => w.includes('"log"') && w.includes('logging.console.log_keys')), c.warnings.join('|'));
    assert.ok(c.warnings.some((w) => w.includes('"logFilePath"') && w.includes('logging.log_file_path')));
  });
});

describe('config: back-quoted strings', () => {
  it('parses a multi-line back-quoted sync function with quotes, backslashes, tabs and CRLF', () => {
    const text = '{"databases": {"db": {"server": "memory:", "sync": `function(doc) {\r\n\tif (doc.type == "a\\b") {\n    channel(\'x\');\n  }\n}`}}}';
    const c = parse(text);
    assert.equal(c.databases.db.sync, 'function(doc) {\n\tif (doc.type == "a\\b") {\n    channel(\'x\');\n  }\n}');
  });

  it('leaves backquotes inside ordinary JSON strings alone', () => {
    const c = parse('{"interface": "a`b\\"`c", "databases": {"db": {"server": "memory:", "sync": `x`}}}');
    assert.equal(c.interface, 'a`b"`c');
    assert.equal(c.databases.db.sync, 'x');
  });

  it('escapes control characters and keeps a backslash-escaped backquote inside', () => {
    const { json } = convertBackQuotedStrings('[`a\u0001b`, `c\\`d`, ``]');
    assert.deepEqual(JSON.parse(json), ['a\u0001b', 'c\\`d', '']);
  });

  it('reports an unterminated back-quoted string with its line', () => {
    configError(() => parse('{\n"databases": {"db": {"sync": `function(){}\n}}}'), 'test.json', 'line 2', 'back-quoted');
  });
});

describe('config: databases', () => {
  it('maps server schemes to storage', () => {
    assert.deepEqual(db({ server: 'sqlite:data/x.sqlite3' }).storage, { kind: 'sqlite', path: resolve(process.cwd(), 'data/x.sqlite3') });
    assert.deepEqual(db({ server: 'sqlite:/tmp/abs.db' }).storage, { kind: 'sqlite', path: '/tmp/abs.db' });
    assert.deepEqual(db({ server: 'sqlite:///tmp/abs.db' }).storage, { kind: 'sqlite', path: '/tmp/abs.db' });
    assert.deepEqual(db({ server: 'memory:' }).storage, { kind: 'memory' });
    assert.deepEqual(db({ server: 'walrus:' }).storage, { kind: 'memory' });
    assert.deepEqual(db({ server: 'walrus:/var/walrus' }).storage, { kind: 'memory' });
    const dflt = parse({ databases: { db: {} } }).databases.db;
    assert.equal(dflt.server, 'walrus:');
    assert.deepEqual(dflt.storage, { kind: 'memory' });
    assert.equal(dflt.bucket, 'db');
  });

  it('refuses other servers, naming the db and the accepted schemes', () => {
    const accepted = 'sqlite:<path>, memory:, walrus:, postgres://host:port/dbname, postgresql://host:port/dbname';
    assert.equal(acceptedServerSchemes(), accepted);
    configError(() => db({ server: 'couchbase://x' }), `databases.db.server: unsupported server "couchbase://x"; accepted schemes: ${accepted}`);
    configError(() => db({ server: 'http://localhost:8091' }), 'databases.db.server', 'sqlite:<path>');
    configError(() => db({ server: 'postgres://h' }), 'databases.db.server', 'database name');
    assert.deepEqual(db({ server: 'postgresql://u:p%40ss@h:6543/sg?sslmode=require' }).storage,
      { kind: 'postgres', host: 'h', port: 6543, database: 'sg', username: 'u', password: 'p@ss', sslmode: 'require' });
    configError(() => db({ server: 'sqlite:' }), 'databases.db.server', 'file path');
  });

  it('applies the revs_limit rules', () => {
    assert.equal(db({}).revsLimit, 100);
    assert.equal(db({ allow_conflicts: false }).revsLimit, 50);
    configError(() => db({ revs_limit: 19 }), 'databases.db.revs_limit', 'The revs_limit (19) value in your Sync Gateway configuration cannot be set lower than 20.');
    const c = parse({ databases: { db: { server: 'memory:', revs_limit: 20 } } });
    assert.equal(c.databases.db.revsLimit, 20);
    assert.ok(c.warnings.some((w) => w.startsWith('databases.db.revs_limit') && w.includes('(20)')), c.warnings.join('|'));
    assert.deepEqual(parse({ databases: { db: { server: 'memory:', revs_limit: 100 } } }).warnings, []);
    configError(() => db({ allow_conflicts: false, revs_limit: 0 }), 'The revs_limit (0) value in your Sync Gateway configuration must be greater than zero.');
    const strict = parse({ databases: { db: { server: 'memory:', allow_conflicts: false, revs_limit: 5 } } });
    assert.equal(strict.databases.db.revsLimit, 5);
    assert.deepEqual(strict.warnings, []);
    configError(() => db({ allow_conflicts: false, revs_limit: -1 }), 'databases.db.revs_limit');
  });

  it('enforces the database name rule', () => {
    configError(() => parse({ databases: { DB: {} } }), 'Illegal database name: DB');
    configError(() => parse({ databases: { _users: {} } }), 'Illegal database name: _users');
    configError(() => parse({ databases: { '1db': {} } }), 'Illegal database name: 1db');
    assert.ok(parse({ databases: { 'a-b_c$(d)+e/f9': {} } }).databases['a-b_c$(d)+e/f9']);
  });

  it('fills per-database defaults', () => {
    const d = db({});
    assert.equal(d.name, 'db');
    assert.equal(d.allowConflicts, true);
    assert.equal(d.sessionCookieName, 'SyncGatewaySession');
    assert.equal(d.sessionCookieSecure, undefined);
    assert.equal(d.sessionCookieHttpOnly, false);
    assert.equal(d.sendWwwAuthenticateHeader, true);
    assert.equal(d.allowEmptyPassword, false);
    assert.equal(d.offline, false);
    assert.equal(d.localDocExpirySecs, 7776000);
    assert.equal(d.sync, undefined);
    const e = db({ session_cookie_name: 'C', session_cookie_secure: false, bucket: 'b', offline: true, username: 'u', local_doc_expiry_secs: 60 });
    assert.deepEqual([e.sessionCookieName, e.sessionCookieSecure, e.bucket, e.offline, e.username, e.localDocExpirySecs], ['C', false, 'b', true, 'u', 60]);
  });

  it('delta_sync and old_rev_expiry_seconds: defaults, values, and Sync Gateway\'s check between them', () => {
    const d = db({});
    assert.deepEqual(d.deltaSync, { enabled: false, revMaxAgeSecs: 86400 });
    assert.equal(d.oldRevExpirySecs, 300);
    const c = parse({ databases: { db: { server: 'memory:', delta_sync: { enabled: true, rev_max_age_seconds: 3600 }, old_rev_expiry_seconds: 600 } } });
    assert.deepEqual(c.databases.db.deltaSync, { enabled: true, revMaxAgeSecs: 3600 });
    assert.equal(c.databases.db.oldRevExpirySecs, 600);
    assert.ok(!c.warnings.some((w) => /delta_sync|old_rev_expiry/.test(w)), `built: no warning (${c.warnings.join('|')})`);
    assert.deepEqual(db({ delta_sync: { enabled: true, rev_max_age_seconds: 0 } }).deltaSync, { enabled: true, revMaxAgeSecs: 0 }, '0 = the old_rev_expiry policy');
    configError(() => db({ delta_sync: { enabled: true, rev_max_age_seconds: 100 } }),
      'databases.db.delta_sync.rev_max_age_seconds: 100 must not be less than the configured old_rev_expiry_seconds: 300');
    configError(() => db({ delta_sync: { enabled: 'yes' } }), 'delta_sync.enabled');
    configError(() => db({ delta_sync: { rev_max_age_seconds: -1 } }), 'delta_sync.rev_max_age_seconds');
    configError(() => db({ delta_sync: { enabeld: true } }), 'delta_sync.enabeld');
  });

  it('validates users and roles', () => {
    const d = db({
      users: { GUEST: { disabled: false, admin_channels: ['*'] }, alice: { password: 'pass', admin_roles: ['r'], email: 'a@b.c' } },
      roles: { r: { admin_channels: ['x', 'y'] } },
    });
    assert.deepEqual(d.users.GUEST, { admin_channels: ['*'], admin_roles: [], disabled: false });
    assert.deepEqual(d.users.alice, { password: 'pass', admin_channels: [], admin_roles: ['r'], email: 'a@b.c', disabled: false });
    const proto = parse('{"databases": {"db": {"server": "memory:", "users": {"__proto__": {"disabled": true}}}}}').databases.db;
    assert.ok(Object.prototype.hasOwnProperty.call(proto.users, '__proto__'), 'a "__proto__" user is a plain key');
    assert.equal(proto.users['__proto__'].disabled, true);
    assert.equal(({} as Record<string, unknown>).disabled, undefined);
    assert.deepEqual(d.roles, { r: { admin_channels: ['x', 'y'] } });
    configError(() => db({ users: { 'bad name': {} } }), 'databases.db.users.bad name', 'Invalid name "bad name"');
    configError(() => db({ roles: { 'r!': {} } }), 'Invalid name "r!"');
    configError(() => db({ users: { bob: { password: 'ab' } } }), 'databases.db.users.bob.password', 'at least three 3 characters');
    configError(() => db({ users: { bob: { password: '' } } }), 'databases.db.users.bob.password', 'allow_empty_password');
    assert.equal(db({ allow_empty_password: true, users: { bob: { password: '' } } }).users.bob.password, '');
  });

  it('never puts a password in an error or warning message', () => {
    const secret = 'hunter2-SECRET';
    const cases: unknown[] = [
      { databases: { db: { server: `couchbase://admin:${secret}@cb.example.com`, password: secret } } },
      { databases: { db: { users: { bob: { password: secret, admin_channels: 7 } } } } },
      { databases: { db: { users: { bob: { password: 12345 } } } } },
      { databases: { db: { password: { nested: secret } } } },
      { databases: { db: { users: { GUEST: { password: secret } }, import_docs: true, revs_limit: 30 } } },
      `{"databases": {"db": {"users": {"bob": {"password": "${secret}" "disabled": false}}}}}`,
      `{"databases": {"db": {"users": {"bob": {"password": ${secret}}}}}}`,
    ];
    let errors = 0;
    for (const c of cases) {
      try {
        const cfg = parse(c);
        for (const w of cfg.warnings) assert.ok(!w.includes(secret) && !w.includes('12345'), w);
      } catch (err) {
        errors++;
        assert.ok(err instanceof ConfigError);
        assert.ok(!err.message.includes(secret) && !err.message.includes('12345') && !err.message.includes("'h'"), err.message);
      }
    }
    assert.equal(errors, cases.length - 1);
  });
});

describe('config: server-wide settings', () => {
  it('has the documented defaults', () => {
    const c = parse({});
    assert.deepEqual(
      [c.interface, c.adminInterface, c.metricsInterface, c.tlsMinimumVersion, c.compressResponses, c.pretty],
      [':4984', '127.0.0.1:4985', '127.0.0.1:4986', 'tlsv1.2', true, false],
    );
    assert.deepEqual([c.readHeaderTimeout, c.idleTimeout, c.bcryptCost, c.maxIncomingConnections], [5, 90, 10, 0]);
    assert.equal(c.serverReadTimeout, undefined);
    assert.deepEqual(c.logging, { consoleEnabled: true, logLevel: 'info', logKeys: ['HTTP'], raw: {} });
    assert.deepEqual(c.databases, {});
  });

  it('requires SSLCert and SSLKey together', () => {
    configError(() => parse({ SSLCert: 'c.pem' }), 'SSLKey');
    configError(() => parse({ SSLKey: 'k.pem' }), 'SSLCert');
  });

  it('checks bcrypt_cost is between 10 and 31 (0 = default)', () => {
    assert.equal(parse({ bcrypt_cost: 12 }).bcryptCost, 12);
    assert.equal(parse({ bcrypt_cost: 0 }).bcryptCost, 10);
    configError(() => parse({ bcrypt_cost: 9 }), 'bcrypt_cost');
    configError(() => parse({ bcrypt_cost: 32 }), 'bcrypt_cost');
  });

  it('reads the logging block', () => {
    const c = parse({ logging: { log_file_path: '/logs', redaction_level: 'partial', console: { log_level: 'debug', log_keys: ['CRUD', 'HTTP'], color_enabled: true }, info: { enabled: true, rotation: { max_size: 10, max_age: 6 } } } });
    assert.deepEqual([c.logging.consoleEnabled, c.logging.logLevel, c.logging.logKeys, c.logging.logFilePath], [true, 'debug', ['CRUD', 'HTTP'], '/logs']);
    assert.equal(parse({ logging: { console: { enabled: false } } }).logging.consoleEnabled, false);
    assert.equal(parse({ logging: { console: { color_enabled: true } } }).logging.consoleEnabled, false);
    configError(() => parse({ logging: { console: { log_level: 'verbose' } } }), 'logging.console.log_level');
    assert.ok(parse({ logging: { console: { log_keys: ['Nope'] } } }).warnings.some((w) => w.includes('logging.console.log_keys') && w.includes('Nope')));
  });

  it('defaultConfig serves "db" from ./data/db.sqlite3 with an open GUEST', () => {
    const c = defaultConfig();
    assert.deepEqual([c.interface, c.adminInterface, c.metricsInterface], [':4984', '127.0.0.1:4985', '127.0.0.1:4986']);
    assert.deepEqual(Object.keys(c.databases), ['db']);
    assert.deepEqual(c.databases.db.storage, { kind: 'sqlite', path: join(process.cwd(), 'data', 'db.sqlite3') });
    assert.deepEqual(c.databases.db.users, { GUEST: { disabled: false, admin_channels: ['*'], admin_roles: [] } });
    assert.deepEqual(c.warnings, []);
  });
});

describe('config: CORS', () => {
  it('is unset by default and read case-insensitively when given', () => {
    assert.equal(parse({}).cors, undefined);
    const c = parse({ cors: { origin: ['https://app.example.com', '*'], LOGINORIGIN: ['https://app.example.com'], headers: ['Content-Type', 'Authorization'], maxage: 600 } });
    assert.deepEqual(c.cors, {
      origin: ['https://app.example.com', '*'], loginOrigin: ['https://app.example.com'], headers: ['Content-Type', 'Authorization'], maxAge: 600,
    });
    assert.deepEqual(c.warnings, [], 'CORS is built: no "not supported yet" warning');
    assert.deepEqual(parse({ CORS: {} }).cors, { origin: [], loginOrigin: [], headers: [], maxAge: 0 });
    assert.deepEqual(parse({ CORS: null }).cors, undefined);
  });

  it('rejects wrong types and unknown keys, naming the key path', () => {
    configError(() => parse({ CORS: ['*'] }), 'CORS: expected an object');
    configError(() => parse({ CORS: { Origin: 'https://a.example' } }), 'CORS.Origin: expected an array of strings');
    configError(() => parse({ CORS: { LoginOrigin: ['https://a.example', 7] } }), 'CORS.LoginOrigin[1]: expected a string');
    configError(() => parse({ CORS: { Headers: [true] } }), 'CORS.Headers[0]');
    configError(() => parse({ CORS: { MaxAge: '600' } }), 'CORS.MaxAge', 'non-negative integer');
    configError(() => parse({ CORS: { MaxAge: -1 } }), 'CORS.MaxAge', 'non-negative integer');
    configError(() => parse({ CORS: { Origins: ['*'] } }), 'unknown key "Origins" at CORS.Origins');
  });

  it('warns about an http(s) entry that no browser Origin can equal', () => {
    const c = parse({ CORS: { Origin: ['https://app.example.com/', 'HTTPS://App.example.com', 'http://a.example:80', 'https://ok.example:8443', 'capacitor://localhost', 'null', '*'], LoginOrigin: ['http://a.example/login'] } });
    assert.equal(c.warnings.length, 4, c.warnings.join('|'));
    assert.ok(c.warnings[0].startsWith('CORS.Origin[0]: "https://app.example.com/" is not an origin') && c.warnings[0].includes('"https://app.example.com"'), c.warnings[0]);
    assert.ok(c.warnings[1].startsWith('CORS.Origin[1]:'), c.warnings[1]);
    assert.ok(c.warnings[2].startsWith('CORS.Origin[2]:') && c.warnings[2].includes('"http://a.example"'), c.warnings[2]);
    assert.ok(c.warnings[3].startsWith('CORS.LoginOrigin[0]:'), c.warnings[3]);
    assert.equal(c.cors?.origin.length, 7, 'entries are kept as given');
  });
});

describe('config: files', () => {
  let dir = '';
  const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };
  before(() => { dir = mkdtempSync(join(tmpdir(), 'syncgate-config-')); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  it('merges several files; the first file wins for server keys', () => {
    const a = file('a.json', JSON.stringify({ interface: ':1111', log: ['CRUD'], databases: { one: { server: 'memory:' } } }));
    const b = file('b.json', JSON.stringify({ interface: ':2222', Pretty: true, log: ['Sync'], databases: { two: { server: 'walrus:' } } }));
    const c = loadConfigFiles([a, b]);
    assert.deepEqual(Object.keys(c.databases).sort(), ['one', 'two']);
    assert.equal(c.interface, ':1111');
    assert.equal(c.pretty, true);
    assert.deepEqual(c.logging.logKeys, ['CRUD', 'Sync', 'HTTP']);
  });

  it('refuses two files that define the same database', () => {
    const a = file('c.json', JSON.stringify({ databases: { x: { server: 'memory:' } } }));
    const b = file('d.json', JSON.stringify({ databases: { x: { server: 'memory:' } } }));
    configError(() => loadConfigFiles([a, b]), 'Database "x" already specified earlier', 'd.json');
  });

  it('names the file and line of malformed JSON, counting lines of back-quoted strings', () => {
    const p = file('bad.json', '{\n  "databases": {\n    "db": {\n      "sync": `function(doc) {\n  channel(doc.x);\n}`\n      "revs_limit": 100\n    }\n  }\n}\n');
    configError(() => loadConfigFiles([p]), 'bad.json', 'line 7', "expected ',' or '}'");
    const q = file('trunc.json', '{"interface": ":1",\n');
    configError(() => loadConfigFiles([q]), 'trunc.json', 'line 2', 'end of input');
  });

  it('names the file it cannot read', () => {
    configError(() => loadConfigFiles([join(dir, 'missing.json')]), 'missing.json');
  });

  it('prefixes validation errors with the file name', () => {
    const p = file('typo.json', JSON.stringify({ databases: { db: { revs_limt: 1 } } }));
    configError(() => loadConfigFiles([p]), `${p}: unknown key "revs_limt" at databases.db.revs_limt`);
  });
});
