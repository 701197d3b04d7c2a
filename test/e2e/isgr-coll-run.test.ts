/**
 * Gateway-to-gateway replication of named collections (`collections_enabled`, Sync Gateway 3.1):
 * two collections on one connection both ways, one-shot and continuous, each document landing in
 * its mapped collection only; a local collection mapped to a differently named remote one; a
 * remote without the collection, a missing local one and lists of different lengths end in `error`
 * with Sync Gateway's messages; each collection resumes from its own checkpoints.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, replicator, req, runOnce, startGateway, waitState, type TestGateway } from './isgr-run-helpers.ts';

const scopes = (...names: string[]) => ({ scopes: { inventory: { collections: Object.fromEntries(names.map((n) => [n, {}])) } } });

function startScoped(...names: string[]): Promise<TestGateway> {
  return startGateway({ databases: { db: { server: 'memory:', ...scopes(...names) } } });
}

async function put(gw: TestGateway, coll: string, id: string, body: Record<string, unknown>): Promise<string> {
  const r = await req(`${gw.adminUrl}/db.inventory.${coll}/${encodeURIComponent(id)}`, { method: 'PUT', json: body });
  if (r.status !== 201) throw new Error(`PUT ${coll}/${id}: ${r.status} ${r.text}`);
  return r.body.rev as string;
}

async function ids(gw: TestGateway, coll: string): Promise<string[]> {
  const r = await req(`${gw.adminUrl}/db.inventory.${coll}/_all_docs`);
  assert.equal(r.status, 200, r.text);
  return (r.body.rows as { id: string }[]).map((x) => x.id).sort();
}

async function localOf(gw: TestGateway, coll: string, id: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await gw.gateway.get('db')!.collection('inventory', coll)!.getLocal(id)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

describe('ISGR with collections_enabled', () => {
  let a: TestGateway;
  let b: TestGateway;
  before(async () => {
    a = await startScoped('airline', 'hotel', 'route');
    b = await startScoped('airline', 'hotel', 'flights');
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  test('one-shot pushAndPull of two collections on one connection, each into its own collection, resuming per collection', async () => {
    for (const id of range('a-air', 12)) await put(a, 'airline', id, { from: 'a', kind: 'airline' });
    for (const id of range('a-hot', 7)) await put(a, 'hotel', id, { from: 'a', kind: 'hotel' });
    for (const id of range('b-air', 5)) await put(b, 'airline', id, { from: 'b', kind: 'airline' });
    for (const id of range('b-hot', 9)) await put(b, 'hotel', id, { from: 'b', kind: 'hotel' });
    // Not replicated: a collection outside collections_local.
    await put(a, 'route', 'a-route-0', { from: 'a' });

    const over = {
      replication_id: 'c1', remote: `${b.adminUrl}/db`, direction: 'pushAndPull' as const, batch_size: 5,
      collections_enabled: true, collections_local: ['inventory.airline', 'inventory.hotel'],
    };
    const s = await runOnce(a, over);
    assert.equal(s.counters.docs_written, 19);
    assert.equal(s.counters.docs_read, 14);

    const airline = [...range('a-air', 12), ...range('b-air', 5)].sort();
    const hotel = [...range('a-hot', 7), ...range('b-hot', 9)].sort();
    assert.deepEqual(await ids(a, 'airline'), airline);
    assert.deepEqual(await ids(b, 'airline'), airline);
    assert.deepEqual(await ids(a, 'hotel'), hotel);
    assert.deepEqual(await ids(b, 'hotel'), hotel);
    assert.deepEqual(await ids(a, 'route'), ['a-route-0']);
    assert.deepEqual(await ids(b, 'flights'), []);
    const one = await req(`${b.adminUrl}/db.inventory.hotel/a-hot-3`);
    assert.equal(one.body.kind, 'hotel');

    // Each collection has its own checkpoints, on both sides, under Sync Gateway's ids.
    for (const coll of ['airline', 'hotel']) {
      const localPush = await localOf(a, coll, 'sgr2cp:push:c1');
      const remotePush = await localOf(b, coll, 'checkpoint/sgr2cp:push:c1');
      assert.ok(localPush?.last_sequence, `${coll}: local push checkpoint`);
      assert.equal(remotePush?.last_sequence, localPush?.last_sequence, coll);
      const localPull = await localOf(a, coll, 'sgr2cp:pull:c1');
      const remotePull = await localOf(b, coll, 'checkpoint/sgr2cp:pull:c1');
      assert.ok(localPull?.last_sequence, `${coll}: local pull checkpoint`);
      assert.equal(remotePull?.last_sequence, localPull?.last_sequence, coll);
    }
    assert.notEqual((await localOf(a, 'airline', 'sgr2cp:push:c1'))?.last_sequence, (await localOf(a, 'hotel', 'sgr2cp:push:c1'))?.last_sequence);

    // A second run resumes each collection from its own checkpoints: only the new documents are looked at.
    await put(a, 'airline', 'a-air-late', { late: true });
    await put(b, 'hotel', 'b-hot-late', { late: true });
    const s2 = await runOnce(a, over);
    // Pushed: a-air-late; b-hot-late, pulled into a's hotel feed, is offered back and only checked.
    assert.equal(s2.counters.docs_checked_push, 2);
    assert.equal(s2.counters.docs_written, 1);
    assert.equal(s2.counters.docs_read, 1);
    // The remote's feeds are read from each collection's checkpoint: what the first run pushed to b
    // may be offered back (at most 12 + 7, depending on when its pull caught up), b's own 14 never.
    // From the start, either collection alone would bring the count over 20.
    assert.ok(s2.counters.docs_checked_pull >= 1 && s2.counters.docs_checked_pull <= 20, String(s2.counters.docs_checked_pull));
    assert.equal((await req(`${b.adminUrl}/db.inventory.airline/a-air-late`)).body.late, true);
    assert.equal((await req(`${a.adminUrl}/db.inventory.hotel/b-hot-late`)).body.late, true);
    assert.equal((await req(`${b.adminUrl}/db.inventory.hotel/a-air-late`)).status, 404);
  });

  test('continuous pushAndPull follows both feeds of both collections', async () => {
    const { rep, logs } = replicator(a, {
      replication_id: 'c2', remote: `${b.adminUrl}/db`, direction: 'pushAndPull', continuous: true,
      collections_enabled: true, collections_local: ['inventory.airline', 'inventory.hotel'],
    });
    rep.start();
    try {
      await waitState(rep, 'running', 60_000, logs);
      await put(a, 'airline', 'cont-a-air', { n: 1 });
      await put(b, 'hotel', 'cont-b-hot', { n: 2 });
      await put(b, 'airline', 'cont-b-air', { n: 3 });
      await eventually(async () => (await req(`${b.adminUrl}/db.inventory.airline/cont-a-air`)).status === 200, 'cont-a-air on b');
      await eventually(async () => (await req(`${a.adminUrl}/db.inventory.hotel/cont-b-hot`)).status === 200, 'cont-b-hot on a');
      await eventually(async () => (await req(`${a.adminUrl}/db.inventory.airline/cont-b-air`)).status === 200, 'cont-b-air on a');
      // Only in the collection they were written to.
      assert.equal((await req(`${b.adminUrl}/db.inventory.hotel/cont-a-air`)).status, 404);
      assert.equal((await req(`${a.adminUrl}/db.inventory.airline/cont-b-hot`)).status, 404);
      assert.equal(rep.snapshot().state, 'running');
    } finally {
      await rep.stop();
    }
    assert.equal(rep.snapshot().state, 'stopped');
  });

  test('a local collection mapped to a differently named remote collection', async () => {
    await put(a, 'route', 'route-1', { v: 1 });
    await put(b, 'flights', 'flight-1', { v: 2 });
    const s = await runOnce(a, {
      replication_id: 'c3', remote: `${b.adminUrl}/db`, direction: 'pushAndPull',
      collections_enabled: true, collections_local: ['inventory.route'], collections_remote: ['inventory.flights'],
    });
    assert.equal(s.counters.docs_written >= 2, true); // a-route-0 and route-1
    assert.ok((await ids(b, 'flights')).includes('route-1'));
    assert.ok((await ids(b, 'flights')).includes('a-route-0'));
    assert.ok((await ids(a, 'route')).includes('flight-1'));
    // Nothing went to the remote collection of the local name, nor elsewhere.
    assert.equal((await req(`${b.adminUrl}/db.inventory.airline/route-1`)).status, 404);
    assert.equal((await req(`${a.adminUrl}/db.inventory.airline/flight-1`)).status, 404);
    // The remote keeps the checkpoint in the mapped collection.
    assert.ok((await localOf(b, 'flights', 'checkpoint/sgr2cp:push:c3'))?.last_sequence);
  });

  test('a null entry of collections_remote keeps the local name', async () => {
    await put(a, 'airline', 'null-map-1', { v: 1 });
    await runOnce(a, {
      replication_id: 'c4', remote: `${b.adminUrl}/db`, direction: 'push',
      collections_enabled: true, collections_local: ['inventory.airline'], collections_remote: [null],
    });
    assert.equal((await req(`${b.adminUrl}/db.inventory.airline/null-map-1`)).status, 200);
  });

  async function failsWith(over: Record<string, unknown>, message: RegExp): Promise<void> {
    const { rep, logs } = replicator(a, { replication_id: 'bad', remote: `${b.adminUrl}/db`, direction: 'pushAndPull', collections_enabled: true, ...over });
    rep.start();
    const s = await waitState(rep, ['error', 'stopped'], 60_000, logs);
    assert.equal(s.state, 'error', JSON.stringify(s));
    assert.match(s.error_message ?? '', message);
  }

  test('a remote without the mapped collection, a missing local one, and lists of different lengths are errors', async () => {
    // The remote lacks `route` (all of a's collections by default), or the named mapping.
    await failsWith({}, /peer does not have collection "inventory\.route"/);
    await failsWith({ collections_local: ['inventory.airline'], collections_remote: ['inventory.nope'] }, /peer does not have collection "inventory\.nope"/);
    await failsWith({ collections_local: ['inventory.nope'] }, /collection "inventory\.nope" does not exist on this database/);
    await failsWith({ collections_local: ['inventory.airline', 'inventory.hotel'], collections_remote: ['inventory.flights'] }, /local and remote collections must be the same length\.\.\. had 2 and 1/);
    await failsWith({ collections_remote: ['inventory.flights'] }, /local and remote collections must be the same length\.\.\. had 0 and 1/);
    // Nothing was written by the failed runs.
    assert.equal((await req(`${b.adminUrl}/db.inventory.flights/a-air-0`)).status, 404);
  });

  test('legacy mode on a database without the default collection is an error naming collections_enabled', async () => {
    const { rep, logs } = replicator(a, { replication_id: 'legacy', remote: `${b.adminUrl}/db`, direction: 'push' });
    rep.start();
    const s = await waitState(rep, ['error', 'stopped'], 60_000, logs);
    assert.equal(s.state, 'error');
    assert.match(s.error_message ?? '', /collections_enabled/);
  });

  test('the REST API accepts the three fields and checks their shapes', async () => {
    const url = `${a.adminUrl}/db/_replication/api-coll`;
    const ok = await req(url, {
      method: 'PUT',
      json: {
        remote: `${b.adminUrl}/db`, direction: 'push', initial_state: 'stopped',
        collections_enabled: true, collections_local: ['inventory.route'], collections_remote: ['inventory.flights'],
      },
    });
    assert.equal(ok.status, 201, ok.text);
    const got = await req(url);
    assert.equal(got.body.collections_enabled, true);
    assert.deepEqual(got.body.collections_local, ['inventory.route']);
    assert.deepEqual(got.body.collections_remote, ['inventory.flights']);
    for (const [body, why] of [
      [{ collections_enabled: 'yes' }, /collections_enabled" must be a boolean/],
      [{ collections_local: 'inventory.route' }, /collections_local" must be an array of strings/],
      [{ collections_local: ['inventory.a.b'] }, /scope and collection name must be specified/],
      [{ collections_remote: [3] }, /collections_remote" must be an array of strings or nulls/],
    ] as const) {
      const r = await req(`${a.adminUrl}/db/_replication/api-bad`, { method: 'PUT', json: { remote: `${b.adminUrl}/db`, direction: 'push', ...body } });
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.reason, why);
    }
    assert.equal((await req(`${a.adminUrl}/db/_replication/api-bad`)).status, 404);
  });
});
