/**
 * The active replicator between two real gateways: one-shot and continuous push, pull and
 * pushAndPull; attachments; tombstones; checkpoints on both sides (a second run resumes); the
 * bychannel filter; run_as.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  eventually, getDoc, localDoc, putDoc, replicator, req, runOnce, startDbGateway, waitState, winners, type TestGateway,
} from './isgr-run-helpers.ts';

describe('ISGR active replicator between two gateways', () => {
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    a = await startDbGateway();
    b = await startDbGateway();
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  test('one-shot push copies documents, attachments and tombstones, and checkpoints both sides', async () => {
    for (let i = 0; i < 30; i++) await putDoc(a, `push-${i}`, { n: i, channels: ['x'] });
    const att = Buffer.from('attachment bytes for the push test').toString('base64');
    await putDoc(a, 'push-att', { _attachments: { 'a.txt': { content_type: 'text/plain', data: att } } });
    const rev = await putDoc(a, 'push-gone', { v: 1 });
    await req(`${a.adminUrl}/db/push-gone?rev=${rev}`, { method: 'DELETE' });

    const s = await runOnce(a, { replication_id: 'p1', remote: `${b.adminUrl}/db`, direction: 'push', batch_size: 10 });
    assert.equal(s.counters.docs_written, 32);
    assert.equal(s.counters.docs_checked_push, 32);
    assert.equal(s.counters.doc_write_failures, 0);
    assert.ok(Number(s.counters.last_seq_push) > 0);

    const wa = await winners(a);
    const wb = await winners(b);
    for (const [id, r] of wa) if (id.startsWith('push-')) assert.equal(wb.get(id), r, id);
    const got = await getDoc(b, 'push-att', '/a.txt');
    assert.equal(got.status, 200);
    const gone = await getDoc(b, 'push-gone');
    assert.equal(gone.status, 404);

    // Both checkpoints name the same position.
    assert.equal((await localDoc(a, 'sgr2cp:push:p1'))?.last_sequence, s.counters.last_seq_push);
    assert.equal((await localDoc(b, 'checkpoint/sgr2cp:push:p1'))?.last_sequence, s.counters.last_seq_push);

    // A second run resumes from the checkpoint: nothing is offered again.
    await putDoc(a, 'push-late', { late: true });
    const s2 = await runOnce(a, { replication_id: 'p1', remote: `${b.adminUrl}/db`, direction: 'push' });
    assert.equal(s2.counters.docs_checked_push, 1);
    assert.equal(s2.counters.docs_written, 1);
    assert.equal((await getDoc(b, 'push-late')).body.late, true);
  });

  test('push of an attachment the remote already stores: the remote asks us to prove it, and it is not sent again', async () => {
    const bytes = Buffer.from('the same bytes on both gateways, under two documents').toString('base64');
    await putDoc(b, 'prove-theirs', { _attachments: { 'x.txt': { content_type: 'text/plain', data: bytes } } });
    await putDoc(a, 'prove-mine', { _attachments: { 'y.txt': { content_type: 'text/plain', data: bytes } } });
    const s = await runOnce(a, { replication_id: 'prove', remote: `${b.adminUrl}/db`, direction: 'push' });
    assert.equal(s.counters.doc_write_failures, 0, s.logs.join('\n'));
    const got = await req(`${b.adminUrl}/db/prove-mine/y.txt`);
    assert.equal(got.status, 200);
    assert.equal(got.text, 'the same bytes on both gateways, under two documents');
    assert.ok(s.logs.some((l) => /received MSG#\d+ proveAttachment/.test(l)), 'the remote asked for a proof');
    assert.ok(!s.logs.some((l) => /received MSG#\d+ getAttachment/.test(l)), 'the bytes were not fetched');
  });

  test('one-shot pull copies documents, attachments and tombstones through the local write path', async () => {
    for (let i = 0; i < 25; i++) await putDoc(b, `pull-${i}`, { n: i });
    const att = Buffer.from('pulled attachment').toString('base64');
    await putDoc(b, 'pull-att', { _attachments: { 'b.bin': { content_type: 'application/octet-stream', data: att } } });
    const rev = await putDoc(b, 'pull-gone', { v: 1 });
    await req(`${b.adminUrl}/db/pull-gone?rev=${rev}`, { method: 'DELETE' });

    const s = await runOnce(a, { replication_id: 'l1', remote: `${b.adminUrl}/db`, direction: 'pull', batch_size: 10 });
    assert.ok(s.counters.docs_read >= 27, JSON.stringify(s.counters));
    assert.equal(s.counters.rejected_by_local, 0);
    const wa = await winners(a);
    const wb = await winners(b);
    for (const [id, r] of wb) if (id.startsWith('pull-')) assert.equal(wa.get(id), r, id);
    const got = await getDoc(a, 'pull-att', '/b.bin');
    assert.equal(got.status, 200);
    assert.equal((await getDoc(a, 'pull-gone')).status, 404);
    assert.ok(s.counters.last_seq_pull !== '');
    assert.equal((await localDoc(a, 'sgr2cp:pull:l1'))?.last_sequence, s.counters.last_seq_pull);
    assert.equal((await localDoc(b, 'checkpoint/sgr2cp:pull:l1'))?.last_sequence, s.counters.last_seq_pull);

    const s2 = await runOnce(a, { replication_id: 'l1', remote: `${b.adminUrl}/db`, direction: 'pull' });
    assert.equal(s2.counters.docs_read, 0);
  });

  test('continuous pushAndPull follows both feeds until stopped', async () => {
    const { rep, logs } = replicator(a, { replication_id: 'c1', remote: `${b.adminUrl}/db`, direction: 'pushAndPull', continuous: true });
    rep.start();
    await waitState(rep, 'running', 30_000, logs);
    const ra = await putDoc(a, 'live-from-a', { side: 'a' });
    const rb = await putDoc(b, 'live-from-b', { side: 'b' });
    await eventually(async () => (await getDoc(b, 'live-from-a')).body?._rev === ra, 'a → b', 30_000);
    await eventually(async () => (await getDoc(a, 'live-from-b')).body?._rev === rb, 'b → a', 30_000);
    const ra2 = (await req(`${a.adminUrl}/db/live-from-b`, { method: 'PUT', json: { _rev: rb, side: 'a edited' } })).body.rev as string;
    await eventually(async () => (await getDoc(b, 'live-from-b')).body?._rev === ra2, 'edit a → b', 30_000);
    assert.equal(rep.snapshot().state, 'running');
    await rep.stop();
    assert.equal(rep.snapshot().state, 'stopped');
    assert.ok(await localDoc(a, 'sgr2cp:push:c1'));
    assert.ok(await localDoc(b, 'checkpoint/sgr2cp:pull:c1'));
  });

  test('bychannel filter: only the named channels are pulled and pushed', async () => {
    await putDoc(b, 'ch-red', { channels: ['red'] });
    await putDoc(b, 'ch-blue', { channels: ['blue'] });
    await putDoc(a, 'ch-red-a', { channels: ['red'] });
    await putDoc(a, 'ch-green-a', { channels: ['green'] });
    await runOnce(a, {
      replication_id: 'f1', remote: `${b.adminUrl}/db`, direction: 'pushAndPull', filter: 'sync_gateway/bychannel', query_params: { channels: ['red'] },
    });
    assert.equal((await getDoc(a, 'ch-red')).status, 200);
    assert.equal((await getDoc(a, 'ch-blue')).status, 404);
    assert.equal((await getDoc(b, 'ch-red-a')).status, 200);
    assert.equal((await getDoc(b, 'ch-green-a')).status, 404);
  });
});
