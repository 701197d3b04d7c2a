/**
 * Conflicts made on both gateways while no replication runs, then resolved by the pulling side with
 * each resolution type; the resolution is replicated back and both gateways end with the same
 * winning revision and body.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { ReplicationConfig } from '../../src/replication/isgr/types.ts';
import { getDoc, putDoc, req, runOnce, startDbGateway, winners, type TestGateway } from './isgr-run-helpers.ts';

const started: TestGateway[] = [];
after(async () => { for (const g of started) await g.stop(); });

async function pair(): Promise<[TestGateway, TestGateway]> {
  const a = await startDbGateway();
  const b = await startDbGateway();
  started.push(a, b);
  return [a, b];
}

async function update(gw: TestGateway, id: string, body: Record<string, unknown>): Promise<string> {
  const cur = await getDoc(gw, id);
  return putDoc(gw, id, { ...body, _rev: cur.body._rev });
}

/** A doc both sides share at 1-, then edited apart: A twice (generation 3), B once (generation 2). */
async function conflicted(a: TestGateway, b: TestGateway, id: string, more: string[] = []): Promise<{ local: string; remote: string }> {
  for (const d of [id, ...more]) await putDoc(a, d, { v: 'base' });
  await runOnce(a, { replication_id: `seed-${id}`, remote: `${b.adminUrl}/db`, direction: 'push' });
  let out = { local: '', remote: '' };
  for (const d of [id, ...more]) {
    await update(a, d, { v: 'local-1' });
    const local = await update(a, d, { v: 'local' });
    const remote = await update(b, d, { v: 'remote' });
    if (d === id) out = { local, remote };
  }
  return out;
}

async function resolveAndSync(a: TestGateway, b: TestGateway, over: Partial<ReplicationConfig>): Promise<void> {
  const pull = await runOnce(a, { replication_id: 'cr', remote: `${b.adminUrl}/db`, direction: 'pull', ...over });
  assert.equal(pull.counters.rejected_by_local, 0, pull.logs.join('\n'));
  await runOnce(a, { replication_id: 'cr-push', remote: `${b.adminUrl}/db`, direction: 'push' });
  // And a pushAndPull round afterwards changes nothing: the replicas agree.
  await runOnce(a, { replication_id: 'cr-both', remote: `${b.adminUrl}/db`, direction: 'pushAndPull', ...over });
}

async function assertAgree(a: TestGateway, b: TestGateway, id: string): Promise<any> {
  const wa = await winners(a);
  const wb = await winners(b);
  assert.equal(wa.get(id), wb.get(id), `${id}: ${wa.get(id)} vs ${wb.get(id)}`);
  const da = await getDoc(a, id);
  const db = await getDoc(b, id);
  assert.deepEqual(da.body, db.body);
  return da.body;
}

describe('ISGR conflict resolution (pull side), replicated back', () => {
  test('default: the greater revision wins (here the local generation 3); both agree', async () => {
    const [a, b] = await pair();
    await conflicted(a, b, 'd1');
    await resolveAndSync(a, b, { conflict_resolution_type: 'default' });
    const body = await assertAgree(a, b, 'd1');
    assert.equal(body.v, 'local');
    // Local won: its body moved onto a child of the remote revision (Sync Gateway's localWins).
    assert.equal(Number(String(body._rev).split('-')[0]), 3);
  });

  test('default: a deletion wins over an edit', async () => {
    const [a, b] = await pair();
    await putDoc(a, 'd2', { v: 'base' });
    await runOnce(a, { replication_id: 'seed', remote: `${b.adminUrl}/db`, direction: 'push' });
    await update(a, 'd2', { v: 'edited locally' });
    await update(a, 'd2', { v: 'edited locally again' });
    const cur = await getDoc(b, 'd2');
    assert.equal((await req(`${b.adminUrl}/db/d2?rev=${cur.body._rev}`, { method: 'DELETE' })).status, 200);
    await resolveAndSync(a, b, { conflict_resolution_type: 'default' });
    assert.equal((await getDoc(a, 'd2')).status, 404);
    assert.equal((await getDoc(b, 'd2')).status, 404);
    const wa = await winners(a);
    const wb = await winners(b);
    assert.match(wa.get('d2')!, /\(deleted\)$/);
    assert.equal(wa.get('d2'), wb.get('d2'));
  });

  test('remoteWins: the remote body wins on both sides', async () => {
    const [a, b] = await pair();
    const { remote } = await conflicted(a, b, 'r1');
    await resolveAndSync(a, b, { conflict_resolution_type: 'remoteWins' });
    const body = await assertAgree(a, b, 'r1');
    assert.equal(body.v, 'remote');
    assert.equal(body._rev, remote);
  });

  test('localWins: the local body wins on both sides, as a child of the remote revision', async () => {
    const [a, b] = await pair();
    const { remote } = await conflicted(a, b, 'l1');
    await resolveAndSync(a, b, { conflict_resolution_type: 'localWins' });
    const body = await assertAgree(a, b, 'l1');
    assert.equal(body.v, 'local');
    const revs = await getDoc(a, 'l1', '?revs=true');
    const history = (revs.body._revisions.ids as string[]).map((d, i) => `${revs.body._revisions.start - i}-${d}`);
    assert.equal(history[1], remote, 'the resolution extends the remote revision');
  });

  test('custom: a merged body, replicated back; null from the resolver deletes', async () => {
    const [a, b] = await pair();
    await conflicted(a, b, 'm1', ['m2']);
    const resolver = `function(conflict) {
      if (conflict.LocalDocument._id === 'm2') return null;
      return { v: [conflict.LocalDocument.v, conflict.RemoteDocument.v].sort().join('+'), merged: true };
    }`;
    await resolveAndSync(a, b, { conflict_resolution_type: 'custom', custom_conflict_resolver: resolver });
    const body = await assertAgree(a, b, 'm1');
    assert.equal(body.v, 'local+remote');
    assert.equal(body.merged, true);
    assert.equal((await getDoc(a, 'm2')).status, 404);
    assert.equal((await getDoc(b, 'm2')).status, 404);
    assert.equal((await winners(a)).get('m2'), (await winners(b)).get('m2'));
  });

  for (const type of ['default', 'localWins', 'remoteWins'] as const) {
    test(`${type}: a single one-shot pushAndPull run leaves both sides agreeing`, async () => {
      const [a, b] = await pair();
      await conflicted(a, b, 'one', ['two', 'three']);
      await runOnce(a, { replication_id: 'single', remote: `${b.adminUrl}/db`, direction: 'pushAndPull', conflict_resolution_type: type });
      for (const id of ['one', 'two', 'three']) await assertAgree(a, b, id);
    });
  }

  test('custom: a resolver that loops forever is stopped by the time limit; the document is not written', async () => {
    const [a, b] = await pair();
    await conflicted(a, b, 't1');
    const before = (await winners(a)).get('t1');
    const s = await runOnce(a, {
      replication_id: 'cr', remote: `${b.adminUrl}/db`, direction: 'pull', conflict_resolution_type: 'custom',
      custom_conflict_resolver: 'function(c) { for (;;) {} }',
    });
    assert.equal(s.counters.rejected_by_local, 1);
    assert.ok(s.logs.some((l) => /timed out/.test(l)), s.logs.join('\n'));
    assert.equal((await winners(a)).get('t1'), before);
  });

  test('custom: a resolver that does not compile puts the replication in error', async () => {
    const [a, b] = await pair();
    const { replicator, waitState } = await import('./isgr-run-helpers.ts');
    const { rep, logs } = replicator(a, {
      replication_id: 'bad', remote: `${b.adminUrl}/db`, direction: 'pull', conflict_resolution_type: 'custom', custom_conflict_resolver: 'function( {',
    });
    rep.start();
    const s = await waitState(rep, 'error', 30_000, logs);
    assert.match(s.error_message ?? '', /does not compile/);
  });
});
