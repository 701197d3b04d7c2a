/**
 * More of the active replicator: a conflict-free remote (push falls back to proposeChanges),
 * reset (checkpoints and counters cleared, the next run starts over), the local sync function
 * refusing pulled revisions (rejected_by_local), stop() of a continuous replication saving its
 * checkpoints, and an X.509 client certificate presented to a remote that asks for one.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, describe, test } from 'node:test';
import { makeCerts } from '../helpers/certs.ts';
import {
  eventually, getDoc, localDoc, putDoc, replicator, runOnce, startDbGateway, waitState, winners, type TestGateway,
} from './isgr-run-helpers.ts';

const started: TestGateway[] = [];
after(async () => { for (const g of started) await g.stop(); });
async function gw(db: Record<string, unknown> = {}): Promise<TestGateway> {
  const g = await startDbGateway(db);
  started.push(g);
  return g;
}

describe('ISGR active replicator: more', () => {
  test('a conflict-free remote refuses "changes": push falls back to proposeChanges, and conflicts are not forced on it', async () => {
    const a = await gw();
    const b = await gw({ allow_conflicts: false });
    for (let i = 0; i < 5; i++) await putDoc(a, `nc-${i}`, { i });
    const s = await runOnce(a, { remote: `${b.adminUrl}/db`, direction: 'push' });
    assert.equal(s.counters.docs_written, 5);
    assert.ok(s.logs.some((l) => /proposeChanges/.test(l)), 'fell back to proposeChanges');
    // An edit on top of what the remote has goes through; a conflicting branch is refused.
    const cur = await getDoc(a, 'nc-0');
    await putDoc(a, 'nc-0', { _rev: cur.body._rev, i: 'edited' });
    const other = await getDoc(b, 'nc-1');
    await putDoc(b, 'nc-1', { _rev: other.body._rev, i: 'edited on b' });
    const mine = await getDoc(a, 'nc-1');
    await putDoc(a, 'nc-1', { _rev: mine.body._rev, i: 'edited on a' });
    const s2 = await runOnce(a, { remote: `${b.adminUrl}/db`, direction: 'push' });
    assert.equal(s2.counters.docs_written, 1);
    assert.equal(s2.counters.doc_write_conflict, 1);
    assert.equal((await getDoc(b, 'nc-0')).body.i, 'edited');
    assert.equal((await getDoc(b, 'nc-1')).body.i, 'edited on b');
  });

  test('reset clears both directions\' checkpoints and the counters; the next run starts over', async () => {
    const a = await gw();
    const b = await gw();
    for (let i = 0; i < 7; i++) await putDoc(b, `rs-${i}`, { i });
    const { rep, logs } = replicator(a, { replication_id: 'rs', remote: `${b.adminUrl}/db`, direction: 'pull' });
    rep.start();
    const first = await waitState(rep, 'stopped', 60_000, logs);
    assert.equal(first.counters.docs_checked_pull, 7);
    assert.ok(await localDoc(a, 'sgr2cp:pull:rs'));
    rep.start();
    const again = await waitState(rep, 'stopped', 60_000, logs);
    assert.equal(again.counters.docs_checked_pull, 7, 'resumed: nothing new checked');
    await rep.reset();
    assert.equal(rep.snapshot().counters.docs_checked_pull, 0);
    assert.equal(await localDoc(a, 'sgr2cp:pull:rs'), undefined);
    rep.start();
    const over = await waitState(rep, 'stopped', 60_000, logs);
    assert.equal(over.counters.docs_checked_pull, 7, 'started from the beginning');
    assert.equal(over.counters.docs_read, 0, 'everything was already there');
  });

  test('a changed definition (other channels) invalidates the checkpoints: the next run starts over', async () => {
    const a = await gw();
    const b = await gw();
    await putDoc(b, 'h-red', { channels: ['red'] });
    await putDoc(b, 'h-blue', { channels: ['blue'] });
    const base = { replication_id: 'hash', remote: `${b.adminUrl}/db`, direction: 'pull' as const, filter: 'sync_gateway/bychannel' };
    const first = await runOnce(a, { ...base, query_params: { channels: ['red'] } });
    assert.equal(first.counters.docs_read, 1);
    assert.equal(typeof (await localDoc(a, 'sgr2cp:pull:hash'))?.config_hash, 'string');
    const same = await runOnce(a, { ...base, query_params: { channels: ['red'] } });
    assert.equal(same.counters.docs_checked_pull, 0, 'same definition: resumed');
    const wider = await runOnce(a, { ...base, query_params: { channels: ['red', 'blue'] } });
    assert.equal(wider.counters.docs_checked_pull, 2, 'new definition: from the start');
    assert.equal(wider.counters.docs_read, 1);
    assert.equal((await getDoc(a, 'h-blue')).status, 200);
  });

  test('reset while running is refused', async () => {
    const a = await gw();
    const b = await gw();
    const { rep, logs } = replicator(a, { replication_id: 'busy', remote: `${b.adminUrl}/db`, direction: 'pull', continuous: true });
    rep.start();
    await waitState(rep, 'running', 30_000, logs);
    await assert.rejects(rep.reset(), /must be stopped/);
    await rep.stop();
  });

  test('pulled revisions go through the local sync function: refusals count as rejected_by_local', async () => {
    const a = await gw({ sync: `function(doc) { if (doc.bad) throw({forbidden: 'no bad docs here'}); channel('all'); }` });
    const b = await gw();
    await putDoc(b, 'good', { v: 1 });
    await putDoc(b, 'evil', { bad: true });
    const s = await runOnce(a, { remote: `${b.adminUrl}/db`, direction: 'pull' });
    assert.equal(s.counters.docs_read, 1);
    assert.equal(s.counters.rejected_by_local, 1);
    assert.equal((await getDoc(a, 'good')).status, 200);
    assert.equal((await getDoc(a, 'evil')).status, 404);
  });

  test('stop() of a continuous pushAndPull saves both checkpoints on both sides', async () => {
    const a = await gw();
    const b = await gw();
    const { rep, logs } = replicator(a, { replication_id: 'st', remote: `${b.adminUrl}/db`, continuous: true });
    rep.start();
    await waitState(rep, 'running', 30_000, logs);
    await putDoc(a, 'st-a', { v: 1 });
    await putDoc(b, 'st-b', { v: 1 });
    await eventually(async () => (await getDoc(a, 'st-b')).status === 200 && (await getDoc(b, 'st-a')).status === 200, 'both ways');
    await rep.stop();
    const snap = rep.snapshot();
    assert.equal(snap.state, 'stopped');
    for (const dir of ['push', 'pull']) {
      const seq = dir === 'push' ? snap.counters.last_seq_push : snap.counters.last_seq_pull;
      assert.ok(seq !== '', dir);
      assert.equal((await localDoc(a, `sgr2cp:${dir}:st`))?.last_sequence, seq, `local ${dir}`);
      assert.equal((await localDoc(b, `checkpoint/sgr2cp:${dir}:st`))?.last_sequence, seq, `remote ${dir}`);
    }
    assert.deepEqual([...(await winners(a)).keys()].sort(), [...(await winners(b)).keys()].sort());
  });

  test('the local gateway stopping ends a continuous replication in stopped', async () => {
    const { startDbGateway: start } = await import('./isgr-run-helpers.ts');
    const a = await start();
    const b = await gw();
    const { rep, logs } = replicator(a, { replication_id: 'closing', remote: `${b.adminUrl}/db`, continuous: true });
    rep.start();
    await waitState(rep, 'running', 30_000, logs);
    await a.stop();
    const s = await waitState(rep, 'stopped', 30_000, logs);
    assert.equal(s.state, 'stopped');
  });

  test('an X.509 client certificate is presented to a remote that asks for one', async () => {
    const certs = makeCerts();
    const p = (f: string) => join(certs.dir, f);
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: certs.dir, stdio: ['ignore', 'ignore', 'pipe'] });
    writeFileSync(p('client.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=edge-gateway']);
    openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2', '-extfile', 'client.ext']);
    // A TLS front that demands a client certificate from our CA and records whom it saw; it answers
    // 401 after the handshake, so the replication ends in error either way: the record is the test.
    const seen: string[] = [];
    const server = https.createServer({
      cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey), ca: readFileSync(certs.caCert), requestCert: true, rejectUnauthorized: true,
    }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push(String(peer.subject?.CN ?? ''));
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Unauthorized","reason":"test front"}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const a = await gw();
      const withCert = replicator(a, {
        replication_id: 'x509', remote: `https://127.0.0.1:${port}/db`, direction: 'pull',
        remote_ca_file: certs.caCert, remote_cert_file: p('client.pem'), remote_key_file: p('client.key'),
      });
      withCert.rep.start();
      const s = await waitState(withCert.rep, 'error', 30_000, withCert.logs);
      assert.match(s.error_message ?? '', /401/);
      assert.deepEqual(seen, ['edge-gateway']);
      // Without the certificate the TLS handshake itself fails.
      const without = replicator(a, { replication_id: 'nocert', remote: `https://127.0.0.1:${port}/db`, direction: 'pull', remote_ca_file: certs.caCert });
      without.rep.start();
      const s2 = await waitState(without.rep, ['error', 'reconnecting'], 30_000, without.logs);
      await without.rep.stop();
      assert.doesNotMatch(s2.error_message ?? '', /401/);
      assert.deepEqual(seen, ['edge-gateway'], 'no request got through without a certificate');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
