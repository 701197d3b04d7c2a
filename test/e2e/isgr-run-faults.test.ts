/**
 * The active replicator against remotes that refuse or fail: wrong credentials, a certificate
 * from another CA, a remote that is down (reconnecting, then giving up with max_backoff_time 0),
 * credentials in the fields, run_as, and purge_on_removal.
 */
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { makeCerts } from '../helpers/certs.ts';
import { freePort } from '../helpers/cli-process.ts';
import {
  eventually, getDoc, putDoc, replicator, runOnce, startDbGateway, startGateway, waitState, winners, type TestGateway,
} from './isgr-run-helpers.ts';

const started: TestGateway[] = [];
after(async () => { for (const g of started) await g.stop(); });

async function gatewayWithUsers(): Promise<TestGateway> {
  const gw = await startGateway({
    openGuest: false,
    databases: {
      db: {
        server: 'memory:',
        users: { alice: { password: 'alice-pass', admin_channels: ['red'] }, bob: { password: 'bob-pass', admin_channels: ['*'] } },
      },
    },
  });
  started.push(gw);
  return gw;
}

describe('ISGR active replicator: refusals and failures', () => {
  test('wrong credentials: error with a clear message, no retry', async () => {
    const a = await startDbGateway();
    started.push(a);
    const b = await gatewayWithUsers();
    const remote = b.publicUrl.replace('http://', 'http://alice:wrong@') + '/db';
    const { rep, logs } = replicator(a, { remote, direction: 'pull' });
    rep.start();
    const s = await waitState(rep, 'error', 30_000, logs);
    assert.match(s.error_message ?? '', /401/);
    assert.match(s.error_message ?? '', /credentials/);
    assert.doesNotMatch(s.error_message ?? '', /wrong@/, 'no password in the message');
  });

  test('credentials in remote_username/remote_password; the remote user\'s channels bound the pull', async () => {
    const a = await startDbGateway();
    started.push(a);
    const b = await gatewayWithUsers();
    await putDoc(b, 'red-doc', { channels: ['red'] });
    await putDoc(b, 'blue-doc', { channels: ['blue'] });
    const s = await runOnce(a, { remote: `${b.publicUrl}/db`, remote_username: 'alice', remote_password: 'alice-pass', direction: 'pull' });
    assert.equal(s.counters.docs_read, 1);
    assert.equal((await getDoc(a, 'red-doc')).status, 200);
    assert.equal((await getDoc(a, 'blue-doc')).status, 404);
  });

  test('run_as: push reads only what the local user sees', async () => {
    const a = await gatewayWithUsers();
    const b = await startDbGateway();
    started.push(b);
    await putDoc(a, 'mine', { channels: ['red'] });
    await putDoc(a, 'not-mine', { channels: ['green'] });
    const s = await runOnce(a, { remote: `${b.adminUrl}/db`, direction: 'push', run_as: 'alice' });
    assert.equal(s.counters.docs_written, 1);
    assert.equal((await getDoc(b, 'mine')).status, 200);
    assert.equal((await getDoc(b, 'not-mine')).status, 404);
  });

  test('run_as naming an unknown user is an error', async () => {
    const a = await startDbGateway();
    started.push(a);
    const b = await startDbGateway();
    started.push(b);
    const { rep, logs } = replicator(a, { remote: `${b.adminUrl}/db`, direction: 'push', run_as: 'nobody' });
    rep.start();
    const s = await waitState(rep, 'error', 30_000, logs);
    assert.match(s.error_message ?? '', /run_as user "nobody"/);
  });

  test('purge_on_removal: a document the remote user lost access to is purged locally', async () => {
    const a = await startDbGateway();
    started.push(a);
    const b = await gatewayWithUsers();
    const rev = await putDoc(b, 'leaving', { channels: ['red'] });
    await putDoc(b, 'staying', { channels: ['red'] });
    const creds = { remote: `${b.publicUrl}/db`, remote_username: 'alice', remote_password: 'alice-pass', direction: 'pull' as const };
    await runOnce(a, { ...creds, replication_id: 'keep' });
    await runOnce(a, { ...creds, replication_id: 'purge', purge_on_removal: true });
    assert.equal((await getDoc(a, 'leaving')).status, 200);
    await putDoc(b, 'leaving', { _rev: rev, channels: ['blue'] });
    // Without purge_on_removal the local copy stays.
    const kept = await runOnce(a, { ...creds, replication_id: 'keep' });
    assert.equal(kept.counters.docs_purged, 0);
    assert.equal((await getDoc(a, 'leaving')).status, 200);
    const purged = await runOnce(a, { ...creds, replication_id: 'purge', purge_on_removal: true });
    assert.equal(purged.counters.docs_purged, 1);
    assert.equal((await getDoc(a, 'leaving')).status, 404);
    assert.equal((await winners(a)).has('leaving'), false, 'purged, not deleted');
    assert.equal((await getDoc(a, 'staying')).status, 200);
  });

  test('purge_on_removal: the remote user losing a channel (revocation) purges its documents here', async () => {
    const a = await startDbGateway();
    started.push(a);
    const b = await gatewayWithUsers();
    await putDoc(b, 'rv-red', { channels: ['red'] });
    await putDoc(b, 'rv-both', { channels: ['red', 'blue'] });
    const { rep, logs } = replicator(a, {
      replication_id: 'revoke', remote: `${b.publicUrl}/db`, remote_username: 'alice', remote_password: 'alice-pass', direction: 'pull', continuous: true, purge_on_removal: true,
    });
    rep.start();
    await eventually(async () => (await getDoc(a, 'rv-red')).status === 200 && (await getDoc(a, 'rv-both')).status === 200, 'pulled');
    const { req } = await import('./isgr-run-helpers.ts');
    const r = await req(`${b.adminUrl}/db/_user/alice`, { method: 'PUT', json: { admin_channels: ['blue'] } });
    assert.ok(r.status === 200 || r.status === 201, r.text);
    await eventually(async () => (await getDoc(a, 'rv-red')).status === 404, 'revoked doc purged');
    assert.equal((await getDoc(a, 'rv-both')).status, 200, 'still visible through blue');
    assert.equal((await winners(a)).has('rv-red'), false, 'purged, not deleted');
    await rep.stop();
    assert.equal(rep.snapshot().counters.docs_purged, 1, logs.join('\n'));
  });

  test('a certificate from another CA is an error naming TLS; the right CA replicates over wss', async () => {
    const certs = makeCerts();
    const other = makeCerts();
    const b = await startGateway({ config: { SSLCert: certs.serverCert, SSLKey: certs.serverKey } });
    started.push(b);
    const a = await startDbGateway();
    started.push(a);
    await b.gateway.get('db')!.put({ id: 'over-tls', body: { ok: true }, newEdits: true });
    const { rep, logs } = replicator(a, { remote: `${b.adminUrl}/db`, direction: 'pull', remote_ca_file: other.caCert });
    rep.start();
    const s = await waitState(rep, 'error', 30_000, logs);
    assert.match(s.error_message ?? '', /TLS/);
    assert.match(s.error_message ?? '', /certificate/i);
    const ok = await runOnce(a, { replication_id: 'tls-ok', remote: `${b.adminUrl}/db`, direction: 'pull', remote_ca_file: certs.caCert });
    assert.equal(ok.counters.docs_read, 1);
    assert.equal((await getDoc(a, 'over-tls')).body.ok, true);
  });

  test('a remote that is down: reconnecting, then caught up once it listens', async () => {
    const a = await startDbGateway();
    started.push(a);
    await putDoc(a, 'waiting', { v: 1 });
    // A port that refuses connections until a gateway-shaped proxy starts forwarding to b.
    const port = await freePort();
    const { rep, logs } = replicator(a, { remote: `http://127.0.0.1:${port}/db`, direction: 'push', continuous: true });
    rep.start();
    const s = await waitState(rep, 'reconnecting', 30_000, logs);
    assert.match(s.error_message ?? '', /ECONNREFUSED|Cannot reach/);
    const b = await startDbGateway();
    started.push(b);
    const target = Number(new URL(b.adminUrl).port);
    const proxy = createServer((sock) => {
      const up = connect(target, '127.0.0.1');
      sock.pipe(up).pipe(sock);
      sock.on('error', () => up.destroy());
      up.on('error', () => sock.destroy());
    });
    await new Promise<void>((r) => proxy.listen(port, '127.0.0.1', () => r()));
    try {
      await waitState(rep, 'running', 60_000, logs);
      await eventually(async () => (await getDoc(b, 'waiting')).status === 200, 'pushed after reconnect', 60_000);
      await rep.stop();
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
  });

  test('a remote refusing subChanges (bychannel filter without channels) is an error, not a retry loop', async () => {
    const a = await startDbGateway();
    started.push(a);
    const b = await startDbGateway();
    started.push(b);
    const { rep, logs } = replicator(a, { remote: `${b.adminUrl}/db`, direction: 'pull', filter: 'sync_gateway/bychannel', query_params: { channels: [] } });
    rep.start();
    const s = await waitState(rep, 'error', 30_000, logs);
    assert.match(s.error_message ?? '', /subChanges refused by the remote/);
  });

  test('max_backoff_time 0: gives up with error after the give-up time', async () => {
    const a = await startDbGateway();
    started.push(a);
    const port = await freePort();
    const { rep, logs } = replicator(a, { remote: `http://127.0.0.1:${port}/db`, direction: 'pull', max_backoff_time: 0 }, { firstBackoffMs: 100, giveUpMs: 1_500 });
    rep.start();
    const s = await waitState(rep, 'error', 30_000, logs);
    assert.match(s.error_message ?? '', /gave up reconnecting/);
  });
});
