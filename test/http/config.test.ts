/**
 * Database configs over REST in persistent mode (a 3.x start-up file, SQLite ConfigStore): create,
 * read, replace, merge, functions, versions with Etag / If-Match, every refusal leaving the stored
 * config as it was, reloads ending live feeds, and configs surviving a restart. Then a 2.x-file
 * gateway answering the same endpoints as Sync Gateway's non-persistent mode.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { openBlipSocket } from '../helpers/blip-client.ts';
import Database from 'better-sqlite3';

const OPEN = { guest: { disabled: false, admin_channels: ['*'] } };
const js = (body: string, headers: Record<string, string> = {}) => ({ method: 'PUT', body, headers: { 'content-type': 'application/javascript', ...headers } });

describe('database configs over REST (persistent mode, SQLite)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'syncgate-config-'));
  const bootstrap = { bootstrap: { server: `sqlite:${dataDir}` }, logging: { console: { log_level: 'warn' } } };
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ bootstrap }); });
  after(async () => { await gw?.stop(); rmSync(dataDir, { recursive: true, force: true }); });

  /** The stored config and its version: a refused request must leave both as they were. */
  const snapshot = async (db = 'db') => {
    const r = await req(`${gw.adminUrl}/${db}/_config`);
    return { status: r.status, etag: r.headers.get('etag'), body: r.body };
  };

  test('PUT /{db}/ creates a database; GET /{db}/_config returns it with its version', async () => {
    const r = await req(`${gw.adminUrl}/db/`, { method: 'PUT', json: { ...OPEN, revs_limit: 200 } });
    assert.equal(r.status, 201, r.text);
    assert.equal((await req(`${gw.adminUrl}/db/`)).body.state, 'Online');
    const c = await snapshot();
    assert.equal(c.status, 200);
    assert.match(c.etag!, /^"1-[0-9a-f]{32}"$/);
    assert.deepEqual(c.body, { ...OPEN, revs_limit: 200, name: 'db', bucket: 'db' });
    assert.equal((await req(`${gw.publicUrl}/db/d1`, { method: 'PUT', json: { a: 1 } })).status, 201);
    const dup = await req(`${gw.adminUrl}/db/`, { method: 'PUT', json: {} });
    assert.equal(dup.status, 412);
    assert.deepEqual(dup.body, { error: 'Precondition Failed', reason: 'Duplicate database name "db"' });
  });

  test('PUT replaces, POST deep-merges; every change has a new version in Etag', async () => {
    const v1 = (await snapshot()).etag!;
    const put = await req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: { ...OPEN, cache: { rev_cache: { size: 10 } } } });
    assert.equal(put.status, 201, put.text);
    assert.equal(put.text, '');
    const v2 = put.headers.get('etag')!;
    assert.match(v2, /^"2-/);
    assert.deepEqual((await snapshot()).body, { ...OPEN, cache: { rev_cache: { size: 10 } }, name: 'db', bucket: 'db' }, 'revs_limit is gone: PUT replaces');
    const post = await req(`${gw.adminUrl}/db/_config`, { method: 'POST', json: { cache: { rev_cache: { shard_count: 4 } }, offline: false }, headers: { 'if-match': v2 } });
    assert.equal(post.status, 201, post.text);
    assert.match(post.headers.get('etag')!, /^"3-/);
    assert.notEqual(post.headers.get('etag'), v1);
    assert.deepEqual((await snapshot()).body, { ...OPEN, cache: { rev_cache: { size: 10, shard_count: 4 } }, offline: false, name: 'db', bucket: 'db' });
    assert.equal((await req(`${gw.publicUrl}/db/d1`)).body.a, 1, 'documents survive a reload');
  });

  test('refusals: stale If-Match, unknown and forbidden keys, a sync function that does not compile, bad JSON, wrong name; nothing changes', async () => {
    const before = await snapshot();
    const cases: [RequestInit & { json?: unknown }, number, RegExp][] = [
      [{ method: 'PUT', json: { revs_limit: 300 }, headers: { 'if-match': '"1-00000000000000000000000000000000"' } }, 412, /^Provided If-Match header does not match current config version$/],
      [{ method: 'POST', json: { revs_limt: 300 } }, 400, /^JSON Unknown Field: json: unknown field "revs_limt"$/],
      [{ method: 'POST', json: { cache: { rev_cache: { sise: 1 } } } }, 400, /unknown field "sise" \(at cache\.rev_cache\.sise\)/],
      [{ method: 'POST', json: { server: 'sqlite:/tmp/x', password: 'p', users: { a: {} } } }, 400, /^3 errors:\nPersisted database config does not support customization of the "server" field\n.*"password".*\n.*"users" field$/],
      [{ method: 'POST', json: { sync: 'function(doc) { channel(' } }, 400, /^sync function error: invalid javascript syntax \(line \d+\): /],
      [{ method: 'POST', json: { revs_limit: 5 } }, 400, /cannot be set lower than 20/],
      [{ method: 'POST', json: { revs_limit: 'many' } }, 400, /revs_limit: expected a non-negative integer, got a string/],
      [{ method: 'POST', body: '{"revs_limit": 300', headers: { 'content-type': 'application/json' } }, 400, /^Bad JSON: /],
      [{ method: 'POST', body: '{}', headers: { 'content-type': 'text/plain' } }, 415, /Invalid content type/],
      [{ method: 'POST', json: { name: 'other' } }, 400, /^Cannot update database name/],
      [{ method: 'PUT', json: { bucket: 'elsewhere' } }, 404, /database config not found/],
    ];
    for (const [init, status, reason] of cases) {
      const r = await req(`${gw.adminUrl}/db/_config`, init);
      assert.equal(r.status, status, `${JSON.stringify(init)}: ${r.text}`);
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.match(r.body.reason, reason);
      assert.deepEqual(await snapshot(), before, `${JSON.stringify(init)} changed nothing`);
    }
    const badSync = await req(`${gw.adminUrl}/db/_config/sync`, js('function(doc) {'));
    assert.equal(badSync.status, 400);
    assert.match(badSync.body.reason, /^sync function error: invalid javascript syntax/);
    const staleSync = await req(`${gw.adminUrl}/db/_config/sync`, js('function(doc){}', { 'if-match': '"9-x"' }));
    assert.equal(staleSync.status, 412);
    assert.deepEqual(await snapshot(), before);
    assert.equal((await req(`${gw.publicUrl}/db/d1`)).status, 200, 'the running database kept serving');
    const badCreate = await req(`${gw.adminUrl}/other/`, { method: 'PUT', json: { users: {}, sync: 'nope(' } });
    assert.equal(badCreate.status, 400);
    assert.equal((await req(`${gw.adminUrl}/other/`)).status, 404, 'a refused create leaves no database');
    const named = await req(`${gw.adminUrl}/other/`, { method: 'PUT', json: { name: 'third' } });
    assert.equal(named.status, 400);
    assert.match(named.body.reason, /ensure it matches the name in the path/);
    const unset = await req(`${gw.adminUrl}/other/`, { method: 'PUT', body: '{"revs_limit": $SG_TEST_SURELY_UNSET}', headers: { 'content-type': 'application/json' } });
    assert.equal(unset.status, 400);
    assert.match(unset.body.reason, /undefined environment variable '\$\{SG_TEST_SURELY_UNSET\}'/);
    const file = new Database(join(dataDir, '_config.sqlite3'), { readonly: true });
    assert.deepEqual(file.prepare('SELECT db FROM db_configs ORDER BY db').all(), [{ db: 'db' }], 'no refused create left a config behind');
    file.close();
  });

  test('a config body may use back-quoted JavaScript and ${VAR:-default}', async () => {
    const body = '{"guest": {"disabled": false, "admin_channels": ["*"]}, "revs_limit": ${SG_TEST_SURELY_UNSET:-321},\n "sync": `function(doc) {\n  channel("bq");\n}`}';
    const r = await req(`${gw.adminUrl}/bq/`, { method: 'PUT', body, headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 201, r.text);
    const c = await req(`${gw.adminUrl}/bq/_config`);
    assert.equal(c.body.revs_limit, 321);
    assert.equal(c.body.sync, 'function(doc) {\n  channel("bq");\n}');
    assert.equal((await req(`${gw.adminUrl}/bq/`, { method: 'DELETE' })).status, 200);
  });

  test('_config/sync: GET, PUT and DELETE with Etag / If-Match; the new function applies to new writes', async () => {
    let r = await req(`${gw.adminUrl}/db/_config/sync`);
    assert.equal(r.status, 200);
    assert.equal(r.text, '', 'no custom function: empty body');
    assert.match(r.headers.get('content-type')!, /^application\/javascript/);
    const v = r.headers.get('etag')!;
    assert.equal(v, (await snapshot()).etag);
    r = await req(`${gw.adminUrl}/db/_config/sync`, js('function(doc){ channel("only-" + doc.kind); }', { 'if-match': v }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('etag'), null, 'no new Etag from these endpoints');
    r = await req(`${gw.adminUrl}/db/_config/sync`);
    assert.equal(r.text, 'function(doc){ channel("only-" + doc.kind); }');
    assert.notEqual(r.headers.get('etag'), v);
    assert.equal((await req(`${gw.publicUrl}/db/k1`, { method: 'PUT', json: { kind: 'x' } })).status, 201);
    const all = await req(`${gw.adminUrl}/db/_all_docs?channels=true&keys=["k1"]`);
    assert.deepEqual(all.body.rows[0].value.channels, ['only-x']);
    r = await req(`${gw.adminUrl}/db/_config/sync`, { method: 'DELETE', headers: { 'if-match': v } });
    assert.equal(r.status, 412);
    r = await req(`${gw.adminUrl}/db/_config/sync`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.equal((await req(`${gw.adminUrl}/db/_config/sync`)).text, '');
    // The import filter is kept and served back the same way.
    assert.equal((await req(`${gw.adminUrl}/db/_config/import_filter`, js('function(doc){ return true; }'))).status, 200);
    assert.equal((await req(`${gw.adminUrl}/db/_config/import_filter`)).text, 'function(doc){ return true; }');
    assert.equal((await req(`${gw.adminUrl}/db/_config/import_filter`, { method: 'DELETE' })).status, 200);
  });

  test('GET options: include_javascript=false, include_runtime=true, redact=false refused', async () => {
    await req(`${gw.adminUrl}/db/_config/sync`, js('function(doc){ channel(doc.c); }'));
    let r = await req(`${gw.adminUrl}/db/_config?include_javascript=false`);
    assert.equal(r.body.sync, undefined);
    r = await req(`${gw.adminUrl}/db/_config?include_runtime=true`);
    assert.equal(r.body.sync, 'function(doc){ channel(doc.c); }');
    assert.equal(r.body.local_doc_expiry_secs, 7776000, 'defaults are filled in');
    assert.equal(r.body.revs_limit, 100);
    r = await req(`${gw.adminUrl}/db/_config?redact=false`);
    assert.equal(r.status, 400);
    assert.equal(r.body.reason, 'redact=false is no longer supported');
    const server = await req(`${gw.adminUrl}/_config?include_runtime=true`);
    assert.equal(server.status, 200);
    assert.equal(server.body.bootstrap.group_id, 'default');
    assert.ok(server.body.databases.db);
    const put = await req(`${gw.adminUrl}/_config`, { method: 'PUT', json: { logging: { console: { log_level: 'debug', log_keys: ['CRUD'] }, info: { enabled: true } } } });
    assert.equal(put.status, 200, put.text);
    const now = (await req(`${gw.adminUrl}/_config?include_runtime=true`)).body.logging.console;
    assert.equal(now.log_level, 'debug');
    assert.ok(now.log_keys.includes('CRUD'));
    assert.equal((await req(`${gw.adminUrl}/_config`, { method: 'PUT', json: { logging: { console: { log_level: 'loud' } } } })).status, 400);
    const bad = await req(`${gw.adminUrl}/_config`, { method: 'PUT', json: { api: { pretty: true } } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.reason, /^Unable to configure given options at runtime/);
  });

  test('a config change ends live feeds cleanly; requests meanwhile get 200 or 503 "DB is Starting"', async () => {
    const seq = (await req(`${gw.adminUrl}/db/`)).body.update_seq;
    const longpoll = req(`${gw.adminUrl}/db/_changes?feed=longpoll&since=${seq}&timeout=60000`);
    await new Promise((r) => setTimeout(r, 200));
    let stop = false;
    const seen = new Map<string, number>();
    const hammer = (async () => {
      while (!stop) {
        const r = await req(`${gw.publicUrl}/db/d1`);
        const key = `${r.status} ${r.status === 200 ? '' : r.body.reason}`;
        seen.set(key, (seen.get(key) ?? 0) + 1);
      }
    })();
    const change = await req(`${gw.adminUrl}/db/_config/sync`, js('function(doc){ channel("after"); }'));
    assert.equal(change.status, 200);
    const ended = await longpoll;
    assert.equal(ended.status, 200, 'the feed ended with a complete response');
    assert.deepEqual(ended.body.results, []);
    stop = true;
    await hammer;
    for (const k of seen.keys()) assert.ok(k === '200 ' || k === '503 DB is Starting - try again later', `unexpected answer during the reload: ${k}`);
    assert.equal((await req(`${gw.publicUrl}/db/d1`)).status, 200);
    // A config that says offline brings the database up Offline.
    assert.equal((await req(`${gw.adminUrl}/db/_config`, { method: 'POST', json: { offline: true } })).status, 201);
    assert.equal((await req(`${gw.adminUrl}/db/`)).body.state, 'Offline');
    const off = await req(`${gw.publicUrl}/db/d1`);
    assert.equal(off.status, 503);
    assert.equal(off.body.reason, 'DB is currently under maintenance');
    assert.equal((await req(`${gw.adminUrl}/db/_config`, { method: 'POST', json: { offline: false } })).status, 201);
    assert.equal((await req(`${gw.publicUrl}/db/d1`)).status, 200);
  });

  test('a reload closes BLIP connections and continuous feeds cleanly; clients reconnect to the new database', async () => {
    const ws = await openBlipSocket(`${gw.publicUrl}/db`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const ac = new AbortController();
    const cont = await fetch(`${gw.publicUrl}/db/_changes?feed=continuous&since=now&heartbeat=30000`, { signal: ac.signal });
    const contEnded = cont.text();
    assert.equal((await req(`${gw.adminUrl}/db/_config`, { method: 'POST', json: { revs_limit: 250 } })).status, 201);
    assert.equal(await closed, 1001, 'the server closed the BLIP connection ("going away")');
    await contEnded; // the continuous response ended on its own: no abort needed
    ac.abort();
    const again = await openBlipSocket(`${gw.publicUrl}/db`);
    again.close();
  });

  test('a write still in flight on the replaced database wakes feeds opened on the new one', async () => {
    const old = gw.gateway.get('db')!;
    assert.equal((await req(`${gw.adminUrl}/db/_config`, { method: 'POST', json: { revs_limit: 260 } })).status, 201);
    assert.notEqual(gw.gateway.get('db'), old, 'a new database was swapped in');
    const since = (await req(`${gw.adminUrl}/db/`)).body.update_seq;
    const feed = req(`${gw.adminUrl}/db/_changes?feed=longpoll&since=${since}&timeout=20000`);
    await new Promise((r) => setTimeout(r, 200));
    // As a request that began before the reload: it commits through the old database.
    await old.put({ id: 'late-write', body: { late: true }, newEdits: true });
    const r = await feed;
    assert.deepEqual(r.body.results.map((e: { id: string }) => e.id), ['late-write']);
  });

  test('configs and their databases survive a restart; DELETE /{db}/ removes both', async () => {
    const before = await snapshot();
    await req(`${gw.adminUrl}/db2/`, { method: 'PUT', json: OPEN });
    await gw.stop();
    gw = await startGateway({ bootstrap });
    assert.deepEqual(await snapshot(), before);
    assert.equal((await req(`${gw.publicUrl}/db/d1`)).body.a, 1);
    assert.equal((await req(`${gw.adminUrl}/db2/`)).status, 200);
    const del = await req(`${gw.adminUrl}/db2/`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, {});
    assert.equal((await req(`${gw.adminUrl}/db2/`)).status, 404);
    await gw.stop();
    gw = await startGateway({ bootstrap });
    assert.equal((await req(`${gw.adminUrl}/db2/`)).status, 404, 'a deleted config stays deleted');
    assert.equal((await req(`${gw.adminUrl}/db/`)).status, 200);
  });
});

describe('two gateways of one group on one SQLite directory (polling, no notifications)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'syncgate-config-poll-'));
  const bootstrap = { bootstrap: { server: `sqlite:${dataDir}`, config_update_frequency: '200ms' }, logging: { console: { log_level: 'warn' } } };
  let a: TestGateway;
  let b: TestGateway;
  before(async () => { [a, b] = [await startGateway({ bootstrap }), await startGateway({ bootstrap })]; });
  after(async () => { await a?.stop(); await b?.stop(); rmSync(dataDir, { recursive: true, force: true }); });

  const eventually = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 15_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`not within 15 s: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  test('B picks up a database created on A, and each later change, within config_update_frequency', async () => {
    assert.equal((await req(`${a.adminUrl}/polled/`, { method: 'PUT', json: OPEN })).status, 201);
    await eventually('B serves it', async () => (await req(`${b.adminUrl}/polled/`)).status === 200);
    assert.equal((await req(`${a.publicUrl}/polled/x`, { method: 'PUT', json: { v: 1 } })).status, 201);
    assert.equal((await req(`${b.publicUrl}/polled/x`)).body.v, 1);
    const before = b.gateway.get('polled');
    assert.equal((await req(`${a.adminUrl}/polled/_config/sync`, js('function(doc){ channel("polled"); }'))).status, 200);
    await eventually('B reloads it', async () => b.gateway.get('polled') !== before && b.gateway.get('polled')?.state === 'Online');
    assert.equal(b.gateway.get('polled')!.sync?.source, 'function(doc){ channel("polled"); }');
    assert.equal((await req(`${a.adminUrl}/polled/`, { method: 'DELETE' })).status, 200);
    await eventually('B unloads it', async () => (await req(`${b.adminUrl}/polled/`)).status === 404);
  });

  test('GET /{db}/_config?refresh_config=true applies the stored config at once', async () => {
    const slow = await startGateway({ bootstrap: { ...bootstrap, bootstrap: { ...bootstrap.bootstrap, config_update_frequency: '1h' } } });
    try {
      assert.equal((await req(`${a.adminUrl}/fresh/`, { method: 'PUT', json: OPEN })).status, 201);
      assert.equal((await req(`${slow.adminUrl}/fresh/`)).status, 404, 'not polled yet');
      await slow.gateway.configs.sync(false); // as its next poll would
      const before = slow.gateway.get('fresh');
      assert.ok(before);
      assert.equal((await req(`${a.adminUrl}/fresh/_config`, { method: 'POST', json: { revs_limit: 222 } })).status, 201);
      assert.equal(slow.gateway.get('fresh'), before, 'an hour to its next poll');
      const r = await req(`${slow.adminUrl}/fresh/_config?refresh_config=true`);
      assert.equal(r.body.revs_limit, 222);
      assert.notEqual(slow.gateway.get('fresh'), before, 'reloaded');
      assert.equal(slow.gateway.running('fresh')?.revsLimit, 222);
    } finally {
      await slow.stop();
    }
  });
});

describe('database configs over REST with a 2.x file (non-persistent mode)', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ databases: { db: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] }, ann: { password: 'secret' } } } } }); });
  after(() => gw?.stop());

  test('answers as Sync Gateway does without persistent config', async () => {
    let r = await req(`${gw.adminUrl}/db/_config`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('etag'), null, 'no version');
    assert.equal(r.body.server, 'memory:');
    assert.equal(r.body.users.ann.password, 'xxxxx', 'passwords are redacted');
    r = await req(`${gw.adminUrl}/db/_config/sync`);
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.equal(r.headers.get('etag'), '""');
    for (const init of [js('function(doc){}'), { method: 'DELETE' }]) {
      r = await req(`${gw.adminUrl}/db/_config/sync`, init);
      assert.equal(r.status, 400);
      assert.equal(r.body.reason, 'endpoint only supports persistent config mode');
    }
    assert.equal((await req(`${gw.publicUrl}/db/keep`, { method: 'PUT', json: { v: 1 } })).status, 201);
    // PUT /{db}/_config replaces the running config in memory (not persisted), as SG's legacy mode does.
    // Without `server` the running storage is kept.
    r = await req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: { users: { GUEST: { disabled: false, admin_channels: ['*'] } }, revs_limit: 300 } });
    assert.equal(r.status, 201, r.text);
    assert.equal((await req(`${gw.adminUrl}/db/_config`)).body.revs_limit, 300);
    assert.equal((await req(`${gw.publicUrl}/db/keep`)).body.v, 1, 'the store is kept across the reload');
    r = await req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: { sync: 'function(' } });
    assert.equal(r.status, 400);
    assert.equal((await req(`${gw.adminUrl}/db/_config`)).body.revs_limit, 300, 'a refused change leaves the running config');
    // While the new database applies its users (20 bcrypt hashes here), it is Starting: requests get
    // 503 "DB is Starting" until it is Online; the old one no longer answers.
    const users: Record<string, unknown> = { GUEST: { disabled: false, admin_channels: ['*'] } };
    for (let i = 0; i < 20; i++) users[`u${i}`] = { password: `password-${i}`, admin_channels: ['x'] };
    const reload = req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: { server: 'memory:', users, revs_limit: 300 } });
    let reloaded = false;
    void reload.then(() => { reloaded = true; });
    const answers = new Set<string>();
    while (!reloaded) {
      const g = await req(`${gw.publicUrl}/db/keep`);
      answers.add(g.status === 200 ? '200' : `${g.status} ${g.body.reason}`);
    }
    assert.equal((await reload).status, 201);
    assert.ok(answers.has('503 DB is Starting - try again later'), `seen: ${[...answers]}`);
    for (const a of answers) assert.ok(a === '200' || a === '503 DB is Starting - try again later', a);
    assert.equal((await req(`${gw.publicUrl}/db/keep`)).status, 200);
    const srv = await req(`${gw.adminUrl}/_config`);
    assert.equal(srv.status, 200);
    assert.deepEqual(srv.body.bootstrap, {});
    assert.equal((await req(`${gw.adminUrl}/db/`, { method: 'DELETE' })).status, 200);
    assert.equal((await req(`${gw.adminUrl}/db/`, { method: 'DELETE' })).status, 404);
  });
});
