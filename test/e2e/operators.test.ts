import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const basic = (name: string, pw: string) => ({ authorization: 'Basic ' + Buffer.from(`${name}:${pw}`).toString('base64') });

describe('operator authentication on the admin and metrics ports', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      config: {
        admin_users: { ops: { password_hash: bcrypt.hashSync('ops-pw', 10) } },
        metrics_users: { prom: { password_hash: bcrypt.hashSync('prom-pw', 10) } },
      },
    });
  });
  after(() => gw.stop());

  test('the admin port refuses requests without an operator\'s credentials', async () => {
    const none = await req(`${gw.adminUrl}/_all_dbs`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get('www-authenticate')!, /Basic/);
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`, { headers: basic('ops', 'wrong') })).status, 401);
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`, { headers: basic('nobody', 'ops-pw') })).status, 401);
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`, { headers: basic('prom', 'prom-pw') })).status, 401, 'metrics operators are not admins');
    const ok = await req(`${gw.adminUrl}/_all_dbs`, { headers: basic('ops', 'ops-pw') });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, ['db']);
  });

  test('the metrics port has its own operators', async () => {
    assert.equal((await req(`${gw.metricsUrl}/_metrics`)).status, 401);
    const m = await req(`${gw.metricsUrl}/_metrics`, { headers: basic('prom', 'prom-pw') });
    assert.equal(m.status, 200);
    assert.match(m.text, /syncgate_http_requests_total/);
    const ex = await req(`${gw.metricsUrl}/_expvar`, { headers: basic('prom', 'prom-pw') });
    assert.equal(ex.status, 200);
    assert.ok(ex.body.syncgateway);
  });

  test('the public port is unaffected', async () => {
    assert.equal((await req(`${gw.publicUrl}/db/`)).status, 200);
  });

  test('a plain password in admin_users is refused at start-up', async () => {
    await assert.rejects(startGateway({ config: { admin_users: { ops: { password_hash: 'plaintext' } } } }), /must be a bcrypt hash/);
  });
});

describe('metrics without operators', () => {
  test('requests, documents and feeds are counted', async () => {
    const gw = await startGateway();
    try {
      await req(`${gw.publicUrl}/db/m1`, { method: 'PUT', json: { a: 1 } });
      await req(`${gw.publicUrl}/db/m1`);
      await req(`${gw.publicUrl}/db/nope`);
      const text = (await req(`${gw.metricsUrl}/_metrics`)).text;
      assert.match(text, /syncgate_http_requests_total\{[^}]*route="\/\{db\}\/\{doc\}"[^}]*status="201"[^}]*\} 1/);
      assert.match(text, /syncgate_http_requests_total\{[^}]*route="\/\{db\}\/\{doc\}"[^}]*status="404"[^}]*\} 1/);
      assert.match(text, /syncgate_database_doc_writes_total\{database="db"\} 1/);
      assert.match(text, /syncgate_database_doc_reads_total\{database="db"\} 1/);
      assert.match(text, /process_resident_memory_bytes/);
      assert.match(text, /nodejs_eventloop_lag/);
    } finally {
      await gw.stop();
    }
  });
});
