/**
 * Persistent configs on PostgreSQL: two nodes of one group (3.x start-up files naming one throwaway
 * PostgreSQL). A database created on A is served by B; every later change made on A is applied by B
 * (through NOTIFY, long before the 30 s poll set here), ending B's live feeds; a deletion on A
 * unloads it on B; a node of another group never sees it; and a restarted node serves it again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { req } from '../helpers/gateway.ts';
import { type Node, startBootstrapNode, startPgCluster } from '../helpers/postgres.ts';

const cluster = await startPgCluster();
const dir = mkdtempSync(join(tmpdir(), 'syncgate-pg-config-'));
const c = cluster.certs;
const bootstrap = (group = 'default') => ({
  bootstrap: { server: cluster.url(), x509_cert_path: c.clientCert, x509_key_path: c.clientKey, ca_cert_path: c.caCert, group_id: group, config_update_frequency: '30s' },
  logging: { console: { log_level: 'info', log_keys: ['Config', 'CRUD'] } },
});
const OPEN = { guest: { disabled: false, admin_channels: ['*'] } };
const js = (body: string) => ({ method: 'PUT', body, headers: { 'content-type': 'application/javascript' } });

/** Polls until `check` passes (a generous bound: the event itself is what is asserted). */
async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let a: Node;
let b: Node;
before(async () => { [a, b] = await Promise.all([startBootstrapNode(dir, bootstrap()), startBootstrapNode(dir, bootstrap())]); });
after(async () => {
  await Promise.all([a?.kill(), b?.kill()]);
  await cluster.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('persistent configs shared by two nodes on PostgreSQL', () => {
  it('a database created on A is served by B, with the same data', async () => {
    const r = await req(`${a.adminUrl}/shared/`, { method: 'PUT', json: OPEN });
    assert.equal(r.status, 201, r.text);
    await eventually('B serves the new database', async () => (await req(`${b.adminUrl}/shared/`)).status === 200);
    assert.equal((await req(`${a.publicUrl}/shared/doc`, { method: 'PUT', json: { from: 'a' } })).status, 201);
    assert.equal((await req(`${b.publicUrl}/shared/doc`)).body.from, 'a');
    const onB = await req(`${b.adminUrl}/shared/_config`);
    assert.equal(onB.headers.get('etag'), (await req(`${a.adminUrl}/shared/_config`)).headers.get('etag'));
    assert.equal((await req(`${b.adminUrl}/shared/`, { method: 'PUT', json: {} })).status, 412, 'one name per group, whichever node is asked');
  });

  it('a sync function changed on A applies on B, ending B\'s longpoll feed', async () => {
    const seq = (await req(`${b.adminUrl}/shared/`)).body.update_seq;
    const longpoll = req(`${b.adminUrl}/shared/_changes?feed=longpoll&since=${seq}&timeout=60000`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await req(`${a.adminUrl}/shared/_config/sync`, js('function(doc){ channel("from-a"); }'))).status, 200);
    const ended = await longpoll;
    assert.equal(ended.status, 200);
    assert.deepEqual(ended.body.results, [], 'the feed ended because of the reload, not a change');
    let n = 0;
    await eventually('B runs the new sync function', async () => {
      const id = `b-doc-${n++}`;
      const w = await req(`${b.publicUrl}/shared/${id}`, { method: 'PUT', json: {} });
      if (w.status !== 201) return false;
      const row = await req(`${b.adminUrl}/shared/_all_docs?channels=true&keys=["${id}"]`);
      return JSON.stringify(row.body.rows[0].value.channels) === '["from-a"]';
    });
  });

  it('a stale If-Match on B is refused after A changed the config', async () => {
    const etag = (await req(`${b.adminUrl}/shared/_config`)).headers.get('etag')!;
    assert.equal((await req(`${a.adminUrl}/shared/_config`, { method: 'POST', json: { revs_limit: 300 } })).status, 201);
    const r = await req(`${b.adminUrl}/shared/_config`, { method: 'POST', json: { revs_limit: 400 }, headers: { 'if-match': etag } });
    assert.equal(r.status, 412);
    assert.equal((await req(`${b.adminUrl}/shared/_config`)).body.revs_limit, 300);
  });

  it('another group on the same PostgreSQL does not see the database, and may not take its bucket', async () => {
    const other = await startBootstrapNode(dir, bootstrap('blue'));
    try {
      assert.equal((await req(`${other.adminUrl}/shared/`)).status, 404);
      const r = await req(`${other.adminUrl}/shared/`, { method: 'PUT', json: {} });
      assert.equal(r.status, 409);
      assert.match(r.body.reason, /bucket "shared" is already used by database shared \(group default\)/);
      assert.equal((await req(`${other.adminUrl}/mine/`, { method: 'PUT', json: {} })).status, 201);
      assert.equal((await req(`${a.adminUrl}/mine/`)).status, 404);
    } finally {
      await other.kill();
    }
  });

  it('while PostgreSQL is down a config change is refused with 503 and changes nothing; afterwards B follows again', async () => {
    const before = await req(`${a.adminUrl}/shared/_config`);
    await cluster.pause('fast');
    try {
      const r = await req(`${a.adminUrl}/shared/_config`, { method: 'POST', json: { revs_limit: 500 } });
      assert.equal(r.status, 503, r.text);
      assert.equal(r.body.error, 'Service Unavailable');
    } finally {
      await cluster.resume();
    }
    let after = await req(`${a.adminUrl}/shared/_config`);
    for (let i = 0; after.status !== 200 && i < 100; i++) { await new Promise((r) => setTimeout(r, 100)); after = await req(`${a.adminUrl}/shared/_config`); }
    assert.equal(after.headers.get('etag'), before.headers.get('etag'), 'nothing was written');
    assert.deepEqual(after.body, before.body);
    assert.equal((await req(`${a.adminUrl}/shared/_config`, { method: 'POST', json: { revs_limit: 300, local_doc_expiry_secs: 1000 } })).status, 201);
    await eventually('B applies the change made after the outage', async () => (await req(`${b.adminUrl}/shared/_config?include_runtime=true`)).body?.local_doc_expiry_secs === 1000);
  });

  it('a restarted node serves the database again; a deletion on A unloads it on B', async () => {
    await b.kill();
    b = await startBootstrapNode(dir, bootstrap());
    assert.equal((await req(`${b.publicUrl}/shared/doc`)).body.from, 'a');
    assert.equal((await req(`${b.adminUrl}/shared/_config`)).body.revs_limit, 300);
    const del = await req(`${a.adminUrl}/shared/`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await eventually('B unloads the deleted database', async () => (await req(`${b.adminUrl}/shared/`)).status === 404);
  });
});
