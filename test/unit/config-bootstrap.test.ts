/** The 3.x start-up file: told apart from a 2.x file by its keys, env expansion, unknown keys, mapping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, expandEnv, parseConfigText, parseGoDuration } from '../../src/config/index.ts';

const parse = (v: unknown, env: NodeJS.ProcessEnv = {}) => parseConfigText(typeof v === 'string' ? v : JSON.stringify(v), 'sg.json', env);

function configError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `"${err.message}" should contain "${f}"`);
    return true;
  });
}

describe('3.x start-up file', () => {
  it('is told apart from a 2.x file by its keys and mapped onto the same model', () => {
    const c = parse({
      bootstrap: { server: 'sqlite:/var/sg', group_id: 'blue', config_update_frequency: '2s' },
      api: { public_interface: ':5984', admin_interface: '127.0.0.1:5985', pretty: true, max_connections: 7, https: { tls_minimum_version: 'tlsv1.3' }, idle_timeout: '1m30s' },
      logging: { console: { log_level: 'debug', log_keys: ['CRUD'] } },
      auth: { bcrypt_cost: 12 },
    });
    assert.deepEqual(c.persistent?.storage, { kind: 'sqlite', dir: '/var/sg' });
    assert.equal(c.persistent?.groupId, 'blue');
    assert.equal(c.persistent?.configUpdateFrequencyMs, 2000);
    assert.equal(c.interface, ':5984');
    assert.equal(c.adminInterface, '127.0.0.1:5985');
    assert.equal(c.metricsInterface, '127.0.0.1:4986');
    assert.equal(c.pretty, true);
    assert.equal(c.maxIncomingConnections, 7);
    assert.equal(c.tlsMinimumVersion, 'tlsv1.3');
    assert.equal(c.idleTimeout, 90);
    assert.equal(c.bcryptCost, 12);
    assert.equal(c.logging.logLevel, 'debug');
    assert.deepEqual(c.databases, {});
    // A 2.x file stays a 2.x file.
    const legacy = parse({ databases: { db: { server: 'memory:' } }, logging: { console: { log_level: 'info' } } });
    assert.equal(legacy.persistent, undefined);
    assert.ok(legacy.databases.db);
  });

  it('defaults: group "default", 10 s polling; PostgreSQL credentials from bootstrap', () => {
    const c = parse({ bootstrap: { server: 'postgres://pg.example:5433/sg', username: 'u', password: 'p', ca_cert_path: '/ca.pem', x509_cert_path: '/c.pem', x509_key_path: '/k.pem' } });
    assert.equal(c.persistent?.groupId, 'default');
    assert.equal(c.persistent?.configUpdateFrequencyMs, 10_000);
    assert.deepEqual(c.persistent?.storage, { kind: 'postgres', host: 'pg.example', port: 5433, database: 'sg' });
    assert.deepEqual(c.persistent?.credentials, { username: 'u', password: 'p', certpath: '/c.pem', keypath: '/k.pem', cacertpath: '/ca.pem' });
  });

  it('expands $VAR and ${VAR:-default} in the text, including non-string values; $$ is a dollar', () => {
    const text = '{"bootstrap": {"server": "$SERVER", "password": "pa$$word", "group_id": "${GROUP:-fallback}"}, "api": {"max_connections": ${MAXC}}}';
    const c = parse(text, { SERVER: 'postgres://h/db', MAXC: '42' });
    assert.deepEqual(c.persistent?.storage, { kind: 'postgres', host: 'h', port: 5432, database: 'db' });
    assert.equal(c.persistent?.credentials.password, 'pa$word');
    assert.equal(c.persistent?.groupId, 'fallback');
    assert.equal(c.maxIncomingConnections, 42);
    assert.equal(expandEnv('${A:-x}-$B-${C}', { A: 'a', B: 'b', C: 'c' }), 'a-b-c');
  });

  it('an unset variable without a default is an error naming it', () => {
    configError(() => parse('{"bootstrap": {"server": "$NOPE_NOT_SET"}}'), 'sg.json', "undefined environment variable '${NOPE_NOT_SET}' is specified in the config without default value");
  });

  it('refuses unknown keys with their path, and 2.x keys in a 3.x file', () => {
    configError(() => parse({ bootstrap: { server: 'sqlite:d', sever: 'x' } }), 'unknown key "sever" at bootstrap.sever');
    configError(() => parse({ bootstrap: { server: 'sqlite:d' }, api: { https: { tls_cert: 'x' } } }), 'api.https.tls_cert');
    configError(() => parse({ bootstrap: { server: 'sqlite:d' }, interface: ':1' }), 'unknown key "interface"');
    configError(() => parse({ bootstrap: { server: 'sqlite:d' }, databases: {} }), 'cannot hold "databases"');
  });

  it('refuses a missing or unsupported server, bad durations and a long group_id', () => {
    configError(() => parse({ api: { public_interface: ':1' } }), 'bootstrap.server: a server must be provided');
    configError(() => parse({ bootstrap: { server: 'couchbase://cb' } }), 'bootstrap.server', 'unsupported server');
    configError(() => parse({ bootstrap: { server: 'sqlite:d', config_update_frequency: '10 seconds' } }), 'bootstrap.config_update_frequency');
    configError(() => parse({ bootstrap: { server: 'sqlite:d', group_id: 'g'.repeat(101) } }), 'group_id must be at most 100 characters');
    configError(() => parse({ bootstrap: { server: 'sqlite:d' }, api: { https: { tls_cert_path: 'c.pem' } } }), 'api.https.tls_key_path');
  });

  it('admin and metrics authentication: operator accounts, required when asked for, dropped with a warning when turned off', () => {
    const hash = '$2a$10$' + 'a'.repeat(53);
    // Env expansion applies to the whole text: a bcrypt hash's `$` is written `$$` in a 3.x file.
    const escaped = hash.replace(/\$/g, '$$$$');
    assert.deepEqual(parse({ bootstrap: { server: 'sqlite:d' }, admin_users: { ops: { password_hash: escaped } } }).adminUsers, { ops: hash });
    configError(() => parse({ bootstrap: { server: 'sqlite:d' }, api: { admin_interface_authentication: true } }), 'api.admin_interface_authentication', 'admin_users');
    const off = parse({ bootstrap: { server: 'sqlite:d' }, api: { metrics_interface_authentication: false }, metrics_users: { m: { password_hash: escaped } } });
    assert.equal(off.metricsUsers, undefined);
    assert.ok(off.warnings.some((w) => w.includes('metrics_users is ignored')), off.warnings.join());
  });

  it('parses Go durations', () => {
    assert.equal(parseGoDuration('10s'), 10_000);
    assert.equal(parseGoDuration('1m30s'), 90_000);
    assert.equal(parseGoDuration('250ms'), 250);
    assert.equal(parseGoDuration('1.5h'), 5_400_000);
    assert.equal(parseGoDuration('10'), undefined);
    assert.equal(parseGoDuration(''), undefined);
  });
});
