/**
 * The real active replicator behind the ISGR admin API and registry (src/replication/isgr/),
 * handed to the gateway as its `replication.createReplicator`: a replication defined over REST
 * runs, its status shows Sync Gateway's counters, a continuous one follows both feeds and stops on
 * `action=stop`.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/index.ts';
import { Gateway } from '../../src/gateway.ts';
import { Logger } from '../../src/log/index.ts';
import { createReplicator } from '../../src/replication/active/index.ts';
import { eventually, getDoc, putDoc, req, startDbGateway, type TestGateway } from './isgr-run-helpers.ts';

interface Edge { gateway: Gateway; adminUrl: string; stop(): Promise<void> }

async function edgeGateway(): Promise<Edge> {
  const config = parseConfigText(JSON.stringify({
    databases: { db: { server: 'memory:', users: { GUEST: { disabled: false, admin_channels: ['*'] } } } },
  }), 'isgr-run api test');
  const gateway = new Gateway(config, {
    logger: new Logger({ level: 'warn', write: () => {} }),
    interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0',
    replication: { createReplicator },
  });
  const a = await gateway.start();
  return { gateway, adminUrl: `http://127.0.0.1:${a.admin.port}`, stop: () => gateway.stop() };
}

describe('ISGR through the admin API with the real replicator', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => { for (const c of cleanup.reverse()) await c(); });

  test('one-shot pull defined over REST ends stopped with counters; continuous pushAndPull follows and stops', async () => {
    const central: TestGateway = await startDbGateway();
    cleanup.push(() => central.stop());
    const edge = await edgeGateway();
    cleanup.push(() => edge.stop());
    for (let i = 0; i < 12; i++) await putDoc(central, `c-${i}`, { i });

    const put = await req(`${edge.adminUrl}/db/_replication/pull1`, {
      method: 'PUT', json: { remote: `${central.adminUrl}/db`, direction: 'pull', continuous: false },
    });
    assert.equal(put.status, 201, put.text);
    const done = await eventually(async () => {
      const s = await req(`${edge.adminUrl}/db/_replicationStatus/pull1`);
      return s.body?.status === 'stopped' && s.body.docs_read === 12 ? s.body : undefined;
    }, 'one-shot pull to finish', 60_000);
    assert.equal(done.docs_checked_pull, 12);
    assert.ok(typeof done.last_seq_pull === 'string' && done.last_seq_pull !== '');
    assert.equal((await req(`${edge.adminUrl}/db/c-3`)).body.i, 3);

    const put2 = await req(`${edge.adminUrl}/db/_replication/sync1`, {
      method: 'PUT', json: { remote: `${central.adminUrl}/db`, direction: 'pushAndPull', continuous: true },
    });
    assert.equal(put2.status, 201, put2.text);
    await eventually(async () => ((await req(`${edge.adminUrl}/db/_replicationStatus/sync1`)).body?.status === 'running' ? true : undefined), 'running', 60_000);
    const r = await req(`${edge.adminUrl}/db/from-edge`, { method: 'PUT', json: { where: 'edge' } });
    assert.equal(r.status, 201);
    await putDoc(central, 'from-central', { where: 'central' });
    await eventually(async () => ((await getDoc(central, 'from-edge')).status === 200 ? true : undefined), 'edge → central', 60_000);
    await eventually(async () => ((await req(`${edge.adminUrl}/db/from-central`)).status === 200 ? true : undefined), 'central → edge', 60_000);
    const stop = await req(`${edge.adminUrl}/db/_replicationStatus/sync1?action=stop`, { method: 'PUT' });
    assert.equal(stop.status, 200, stop.text);
    const stopped = await eventually(async () => {
      const s = await req(`${edge.adminUrl}/db/_replicationStatus/sync1`);
      return s.body?.status === 'stopped' ? s.body : undefined;
    }, 'stopped', 60_000);
    assert.ok(stopped.docs_written >= 1, JSON.stringify(stopped));
    assert.ok(stopped.docs_read >= 1, JSON.stringify(stopped));
  });

  test('wrong credentials over REST: status error with a clear error_message', async () => {
    const central = await startDbGateway();
    cleanup.push(() => central.stop());
    const edge = await edgeGateway();
    cleanup.push(() => edge.stop());
    const put = await req(`${edge.adminUrl}/db/_replication/bad`, {
      method: 'PUT', json: { remote: `${central.publicUrl}/db`, remote_username: 'nobody', remote_password: 'nothing', direction: 'pull' },
    });
    assert.equal(put.status, 201, put.text);
    const s = await eventually(async () => {
      const st = await req(`${edge.adminUrl}/db/_replicationStatus/bad`);
      return st.body?.status === 'error' ? st.body : undefined;
    }, 'error', 60_000);
    assert.match(s.error_message, /401/);
  });
});
