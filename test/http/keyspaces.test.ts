/**
 * REST keyspaces on databases without named collections (spec collections-delta.md §1.10-§1.11,
 * Sync Gateway 3.1 rest/routing.go and rest/handler.go): how the first path segment is parsed and
 * resolved, which routes read it as a keyspace and which as a database name, and every keyspace
 * route answering the same on the default keyspace however it is spelled.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

/** Opens a WebSocket and resolves with the HTTP status of a refused upgrade (or 101). */
function upgradeStatus(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => { ws.close(); resolve({ status: 101, body: '' }); });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', reject);
  });
}

/** The messages of a WebSocket `_changes` feed asked for `options`, until the server closes it. */
function websocketChanges(url: string, options: Record<string, unknown>): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const messages: string[] = [];
    ws.on('open', () => ws.send(JSON.stringify(options)));
    ws.on('message', (m) => messages.push(m.toString()));
    ws.on('close', () => resolve(messages));
    ws.on('error', reject);
  });
}

describe('REST keyspaces: parsing and resolution on a default-only database', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      databases: {
        db: { server: 'memory:' },
        private: { server: 'memory:', users: { alice: { password: 'alice-pw', admin_channels: ['*'] } } },
      },
    });
  });
  after(() => gw.stop());

  test('db, db._default and db._default._default are one keyspace; named ones are 404', async () => {
    const url = gw.publicUrl;
    assert.equal((await req(`${url}/db/a`, { method: 'PUT', json: { n: 1 } })).status, 201);
    assert.equal((await req(`${url}/db._default/b`, { method: 'PUT', json: { n: 2 } })).status, 201);
    assert.equal((await req(`${url}/db._default._default/c`, { method: 'PUT', json: { n: 3 } })).status, 201);
    for (const ks of ['db', 'db._default', 'db._default._default']) {
      for (const [id, n] of [['a', 1], ['b', 2], ['c', 3]] as const) {
        const got = await req(`${url}/${ks}/${id}`);
        assert.equal(got.status, 200, `${ks}/${id}`);
        assert.equal(got.body.n, n);
      }
    }
    // A named collection, with or without scope, is not on a database without `scopes`.
    const cases: [string, string][] = [
      ['db.airline', 'keyspace db.airline not found'],
      ['db.inventory.airline', 'keyspace db.inventory.airline not found'],
      ['db._default.airline', 'keyspace db._default.airline not found'],
      ['db.inventory._default', 'keyspace db.inventory._default not found'],
    ];
    for (const [ks, reason] of cases) {
      for (const path of [`/${ks}/a`, `/${ks}/_all_docs`, `/${ks}/_changes`, `/${ks}/_local/x`]) {
        const got = await req(`${url}${path}`);
        assert.equal(got.status, 404, path);
        assert.deepEqual(got.body, { error: 'not_found', reason }, path);
      }
      const put = await req(`${url}/${ks}/z`, { method: 'PUT', json: {} });
      assert.equal(put.status, 404);
    }
    // Nothing was written by the refused writes.
    assert.equal((await req(`${url}/db/z`)).status, 404);
    // The database is looked up before the keyspace is resolved.
    const nodb = await req(`${url}/nosuch.airline/a`);
    assert.deepEqual([nodb.status, nodb.body.reason], [404, 'no such database "nosuch"']);
  });

  test('4 or more parts, or an empty part, is 400 with Sync Gateway\'s message', async () => {
    const cases: [string, string][] = [
      ['db.s.c.x', 'unknown keyspace format: "db.s.c.x" - expected 1-3 fields'],
      ['a.b.c.d.e', 'unknown keyspace format: "a.b.c.d.e" - expected 1-3 fields'],
      ['db..c', 'keyspace fields cannot be empty: "db..c"'],
      ['db.', 'keyspace fields cannot be empty: "db."'],
      ['.c', 'keyspace fields cannot be empty: ".c"'],
      ['db.s.', 'keyspace fields cannot be empty: "db.s."'],
    ];
    for (const [ks, reason] of cases) {
      for (const [method, path] of [['GET', `/${ks}/doc`], ['PUT', `/${ks}/doc`], ['POST', `/${ks}/_bulk_docs`], ['GET', `/${ks}/_changes`]]) {
        const got = await req(`${gw.publicUrl}${path}`, { method, ...(method === 'GET' ? {} : { json: { docs: [] } }) });
        assert.equal(got.status, 400, `${method} ${path}`);
        assert.equal(got.body.reason, reason, `${method} ${path}`);
      }
    }
    // Parsed before the database is looked up or anyone authenticated (Sync Gateway's order).
    const anon = await req(`${gw.publicUrl}/private.a.b.c/doc`);
    assert.equal(anon.status, 400);
  });

  test('an unknown keyspace is answered only after authentication', async () => {
    const anon = await req(`${gw.publicUrl}/private.airline/doc`);
    assert.equal(anon.status, 401);
    const alice = await req(`${gw.publicUrl}/private.airline/doc`, { headers: { authorization: basic('alice', 'alice-pw') } });
    assert.deepEqual([alice.status, alice.body.reason], [404, 'keyspace private.airline not found']);
    const ok = await req(`${gw.publicUrl}/private._default/doc`, { method: 'PUT', json: {}, headers: { authorization: basic('alice', 'alice-pw') } });
    assert.equal(ok.status, 201);
  });

  test('database-level routes read the segment as a database name, as Sync Gateway\'s {db} routes', async () => {
    const admin = gw.adminUrl;
    const cases: [string, string, string][] = [
      ['GET', `${gw.publicUrl}/db._default/`, 'db._default'],
      ['GET', `${admin}/db._default._default/`, 'db._default._default'],
      ['GET', `${admin}/db._default/_user/`, 'db._default'],
      ['GET', `${admin}/db._default/_role/`, 'db._default'],
      ['GET', `${admin}/db._default/_config`, 'db._default'],
      ['POST', `${admin}/db._default/_offline`, 'db._default'],
      ['POST', `${admin}/db._default/_online`, 'db._default'],
      ['GET', `${admin}/db._default/_resync`, 'db._default'],
      ['GET', `${admin}/db._default/_compact`, 'db._default'],
      ['POST', `${gw.publicUrl}/db._default/_session`, 'db._default'],
      ['POST', `${gw.publicUrl}/db._default/_ensure_full_commit`, 'db._default'],
      // Not a keyspace route, so not parsed as one: a name with four dots is just an unknown database.
      ['GET', `${admin}/db.a.b.c/_user/`, 'db.a.b.c'],
    ];
    for (const [method, url, name] of cases) {
      const got = await req(url, { method });
      assert.equal(got.status, 404, `${method} ${url}`);
      assert.equal(got.body.reason, `no such database "${name}"`, `${method} ${url}`);
    }
    // The replication endpoint names the database alone; collections are chosen in-band.
    const blip = await upgradeStatus(`${gw.publicUrl.replace('http', 'ws')}/db._default/_blipsync`);
    assert.equal(blip.status, 404);
    assert.equal(JSON.parse(blip.body).reason, 'no such database "db._default"');
    // Creating a database with a dotted name is refused by the name check.
    const create = await req(`${admin}/db.airline/`, { method: 'PUT', json: {} });
    assert.deepEqual([create.status, create.body.reason], [400, 'Illegal database name: db.airline']);
    assert.equal((await req(`${admin}/db/_user/`)).status, 200);
  });

  test('a WebSocket _changes feed takes a keyspace; an unknown one is refused at the upgrade', async () => {
    const ws = gw.publicUrl.replace('http', 'ws');
    await req(`${gw.publicUrl}/db/wsdoc`, { method: 'PUT', json: {} });
    for (const ks of ['db', 'db._default', 'db._default._default']) {
      const messages = await websocketChanges(`${ws}/${ks}/_changes?feed=websocket`, { since: 0, limit: 100 });
      const ids = (JSON.parse(messages[0]) as { id: string }[]).map((e) => e.id);
      assert.ok(ids.includes('wsdoc'), `${ks}: ${messages[0]}`);
    }
    const unknown = await upgradeStatus(`${ws}/db.airline/_changes?feed=websocket`);
    assert.deepEqual([unknown.status, JSON.parse(unknown.body).reason], [404, 'keyspace db.airline not found']);
    const bad = await upgradeStatus(`${ws}/db.a.b.c/_changes?feed=websocket`);
    assert.deepEqual([bad.status, JSON.parse(bad.body).reason], [400, 'unknown keyspace format: "db.a.b.c" - expected 1-3 fields']);
  });
});

/**
 * One script over every keyspace route, run against three identical databases, each addressed by
 * a different spelling of its default keyspace: the three transcripts must be the same.
 */
describe('REST keyspaces: every keyspace route, three spellings of the default keyspace', () => {
  let gw: TestGateway;
  const names = ['ksa', 'ksb', 'ksc'];
  before(async () => {
    gw = await startGateway({ databases: Object.fromEntries(names.map((n) => [n, { server: 'memory:' }])) });
  });
  after(() => gw.stop());

  async function transcript(db: string, ks: string): Promise<string[]> {
    const pub = `${gw.publicUrl}/${ks}`;
    const adm = `${gw.adminUrl}/${ks}`;
    const out: string[] = [];
    const record = <R extends { status: number; headers: Headers; text: string }>(label: string, r: R): R => {
      let text = r.text.replaceAll(db, 'DB').replace(/"cluster_uuid":"[^"]*"/g, '"cluster_uuid":"UUID"');
      const boundary = /boundary="?([^";]+)"?/.exec(r.headers.get('content-type') ?? '')?.[1];
      if (boundary) text = text.replaceAll(boundary, 'BOUNDARY');
      out.push(`${label} -> ${r.status} ${r.headers.get('etag') ?? ''} ${text}`);
      return r;
    };
    const json = { 'content-type': 'application/json' };
    const put1 = record('PUT doc', await req(`${pub}/doc1`, { method: 'PUT', json: { channels: ['red'], v: 1 } }));
    const rev1 = put1.body.rev as string;
    record('GET doc', await req(`${pub}/doc1?revs=true`));
    record('HEAD doc', await req(`${pub}/doc1`, { method: 'HEAD' }));
    record('GET open_revs', await req(`${pub}/doc1?open_revs=all`, { headers: { accept: 'application/json' } }));
    const att = record('PUT attachment', await req(`${pub}/doc1/hello.txt?rev=${rev1}`, { method: 'PUT', body: 'hello world', headers: { 'content-type': 'text/plain' } }));
    record('GET attachment', await req(`${pub}/doc1/hello.txt`));
    record('GET doc multipart', await req(`${pub}/doc1?attachments=true`, { headers: { accept: 'multipart/related' } }));
    const delAtt = record('DELETE attachment', await req(`${pub}/doc1/hello.txt?rev=${att.body.rev}`, { method: 'DELETE' }));
    record('POST doc', await req(`${pub}/`, { method: 'POST', json: { _id: 'doc2', channels: ['red'] } }));
    const doc2 = await req(`${pub}/doc2`);
    record('DELETE doc', await req(`${pub}/doc2?rev=${doc2.body._rev}`, { method: 'DELETE' }));
    record('POST _bulk_docs', await req(`${pub}/_bulk_docs`, { method: 'POST', json: { docs: [{ _id: 'doc3', channels: ['blue'] }, { _id: 'doc4' }, { _id: '_local/l1', x: 1 }] } }));
    record('POST _bulk_get json', await req(`${pub}/_bulk_get?revs=true`, { method: 'POST', headers: { accept: 'application/json' }, json: { docs: [{ id: 'doc3' }, { id: 'nope' }, { id: 'doc1', rev: delAtt.body.rev }] } }));
    record('POST _bulk_get multipart', await req(`${pub}/_bulk_get`, { method: 'POST', json: { docs: [{ id: 'doc3' }, { id: 'doc4' }] } }));
    record('POST _revs_diff', await req(`${pub}/_revs_diff`, { method: 'POST', json: { doc3: ['1-abc', '9-zzz'], doc9: ['1-abc'] } }));
    record('GET _all_docs', await req(`${pub}/_all_docs?include_docs=true&update_seq=true&channels=true`));
    record('POST _all_docs', await req(`${pub}/_all_docs`, { method: 'POST', json: { keys: ['doc4', 'doc2', 'none'] } }));
    record('GET _changes', await req(`${pub}/_changes?since=0&style=all_docs&include_docs=true`));
    record('POST _changes', await req(`${pub}/_changes`, { method: 'POST', headers: json, body: JSON.stringify({ since: 0, filter: 'sync_gateway/bychannel', channels: 'red' }) }));
    record('GET _changes continuous', await req(`${pub}/_changes?feed=continuous&since=0&limit=2`));
    // A longpoll caught up with the keyspace wakes on its next write.
    const caughtUp = await req(`${pub}/_changes?since=0`);
    const longpoll = req(`${pub}/_changes?feed=longpoll&since=${caughtUp.body.last_seq}&timeout=120000`);
    record('PUT doc (wakes longpoll)', await req(`${pub}/doc5`, { method: 'PUT', json: {} }));
    record('GET _changes longpoll', await longpoll);
    const ws = await websocketChanges(`${pub.replace('http', 'ws')}/_changes?feed=websocket`, { since: 0, limit: 3 });
    out.push(`websocket _changes -> ${ws.join(' | ')}`);
    const local = record('PUT _local', await req(`${pub}/_local/cp`, { method: 'PUT', json: { seq: 7 } }));
    record('GET _local', await req(`${pub}/_local/cp`));
    record('GET _local (bulk)', await req(`${pub}/_local/l1`));
    record('DELETE _local', await req(`${pub}/_local/cp?rev=${local.body.rev}`, { method: 'DELETE' }));
    record('GET _local attachment', await req(`${pub}/_local/cp/att`));
    record('GET _raw', await req(`${adm}/_raw/doc3`));
    record('GET _revtree', await req(`${adm}/_revtree/doc1`));
    record('GET _dumpchannel', await req(`${adm}/_dumpchannel/red`));
    record('POST _purge', await req(`${adm}/_purge`, { method: 'POST', json: { doc4: ['*'] } }));
    record('GET purged doc', await req(`${adm}/doc4`));
    return out;
  }

  test('/db/, /db._default/ and /db._default._default/ answer every keyspace route identically', async () => {
    const spellings = ['ksa', 'ksb._default', 'ksc._default._default'];
    const runs: string[][] = [];
    for (let i = 0; i < names.length; i++) runs.push(await transcript(names[i], spellings[i]));
    // The script did real work: writes succeeded, reads found them, the longpoll woke.
    const status = (label: string) => Number(/-> (\d+)/.exec(runs[0].find((l) => l.startsWith(`${label} ->`))!)![1]);
    for (const label of ['PUT doc', 'PUT attachment', 'POST _bulk_docs', 'PUT _local']) assert.equal(status(label), 201, label);
    for (const label of ['GET doc', 'GET attachment', 'GET _all_docs', 'GET _changes', 'GET _changes longpoll', 'GET _raw', 'GET _revtree', 'GET _dumpchannel', 'POST _purge']) {
      assert.equal(status(label), 200, label);
    }
    assert.equal(status('GET purged doc'), 404);
    assert.match(runs[0].find((l) => l.startsWith('GET _changes longpoll'))!, /"id":"doc5"/);
    assert.match(runs[0].find((l) => l.startsWith('GET attachment'))!, /hello world/);
    for (let i = 1; i < runs.length; i++) {
      assert.equal(runs[i].length, runs[0].length);
      for (let k = 0; k < runs[0].length; k++) assert.equal(runs[i][k], runs[0][k], `${spellings[i]} vs ${spellings[0]}`);
    }
  });
});
