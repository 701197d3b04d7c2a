import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['BLIP_3+CBMobile_3']);
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('open', () => { ws.close(); reject(new Error('upgrade accepted')); });
    ws.on('error', reject);
  });
}

describe('database run state gates requests', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(() => gw.stop());

  test('a database that is not online answers 503 except on offline-capable routes', async () => {
    const db = gw.gateway.get('db')!;
    assert.equal((await req(`${gw.publicUrl}/db/a`, { method: 'PUT', json: { n: 1 } })).status, 201);
    for (const [state, reason] of [
      ['Offline', 'DB is currently under maintenance'],
      ['Starting', 'DB is Starting - try again later'],
      ['Resyncing', 'DB is Resyncing - try again later'],
    ] as const) {
      db.setState(state);
      const info = await req(`${gw.adminUrl}/db/`);
      assert.equal(info.status, 200);
      assert.equal(info.body.state, state);
      assert.equal((await req(`${gw.adminUrl}/_status`)).body.databases.db.state, state);
      for (const url of [`${gw.publicUrl}/db/a`, `${gw.adminUrl}/db/_changes`]) {
        const r = await req(url);
        assert.equal(r.status, 503, url);
        assert.deepEqual(r.body, { error: 'Service Unavailable', reason });
      }
      const put = await req(`${gw.publicUrl}/db/b`, { method: 'PUT', json: { n: 2 } });
      assert.equal(put.status, 503);
      // Live feeds and replications over WebSocket are refused at the upgrade the same way.
      assert.equal(await upgradeStatus(`${gw.publicUrl.replace('http', 'ws')}/db/_blipsync`), 503);
    }
    db.setState('Online');
    assert.equal((await req(`${gw.publicUrl}/db/b`)).status, 404);
    assert.equal((await req(`${gw.publicUrl}/db/a`)).body.n, 1);
  });
});
