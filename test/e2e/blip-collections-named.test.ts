/**
 * Collection-aware BLIP against named collections configured as Sync Gateway 3.1 does (`PUT /{db}/`
 * with `scopes` on the admin port): a legacy client refused where the database lacks the default
 * collection; one connection replicating two collections both ways, each with its own checkpoint and
 * channel filter, resuming from its checkpoints after reconnecting; a user granted channel `x` in one
 * collection seeing nothing of the other's `x`; delta sync per collection. On both backends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startPgCluster } from '../helpers/postgres.ts';
import { randomBytes } from 'node:crypto';
import { BlipClient, type CollectionReplicator, LocalDb, sha1Digest } from '../helpers/blip-client.ts';

const CHANNELS_SYNC = 'function (doc) { channel(doc.channels); }';

/** `travel`: two named collections (same sync function, so the same channel names mean different things). */
const TRAVEL = {
  scopes: { inventory: { collections: { airline: { sync: CHANNELS_SYNC }, hotel: { sync: CHANNELS_SYNC } } } },
  delta_sync: { enabled: true },
};
/** `mixed`: the default collection listed beside a named one of the `_default` scope. */
const MIXED = { scopes: { _default: { collections: { _default: {}, extra: { sync: CHANNELS_SYNC } } } } };

const ALL = { admin_channels: ['*'] };

async function allDocIds(admin: string, keyspace: string): Promise<string[]> {
  const res = await req(`${admin}/${keyspace}/_all_docs`);
  assert.equal(res.status, 200, res.text);
  return res.body.rows.map((r: { id: string }) => r.id).sort();
}

/** Airline documents of the two-collection test in channel x (odd numbers, and 100-103). */
function airlineX(id: string): boolean {
  const n = Number(id.slice(4));
  return id.startsWith('doc-') && (n % 2 === 1 || n >= 100);
}

function fill(db: LocalDb, prefix: string, n: number, channelOf: (i: number) => string, from = 0): void {
  for (let i = from; i < from + n; i++) db.put(`${prefix}-${String(i).padStart(3, '0')}`, { i, where: prefix, channels: [channelOf(i)] });
}

async function pushAll(lane: CollectionReplicator, db: LocalDb, since = 0): Promise<number> {
  const res = await lane.push(db, { since });
  assert.equal(res.errors.size, 0, JSON.stringify([...res.errors]));
  return res.lastSeq;
}

/** Where the bootstrap config keeps configs and databases: SQLite files, or a throwaway PostgreSQL. */
async function bootstrapOn(backend: 'sqlite' | 'postgres'): Promise<{ bootstrap: Record<string, unknown>; stop(): Promise<void> }> {
  if (backend === 'sqlite') return { bootstrap: {}, stop: async () => {} };
  const cluster = await startPgCluster();
  const c = cluster.certs;
  return {
    bootstrap: { server: cluster.url(), x509_cert_path: c.clientCert, x509_key_path: c.clientKey, ca_cert_path: c.caCert },
    stop: () => cluster.stop(),
  };
}

for (const backend of ['sqlite', 'postgres'] as const) describe(`BLIP with named collections (${backend})`, () => {
  let gw: TestGateway;
  let admin: string;
  let travel: string;
  let storage: Awaited<ReturnType<typeof bootstrapOn>> | undefined;
  before(async () => {
    storage = await bootstrapOn(backend);
    gw = await startGateway({ bootstrap: { bootstrap: storage.bootstrap, logging: { console: { log_level: 'warn' } } } });
    admin = gw.adminUrl;
    for (const [name, config] of [['travel', TRAVEL], ['mixed', MIXED]] as const) {
      const created = await req(`${admin}/${name}/`, { method: 'PUT', json: config });
      assert.equal(created.status, 201, created.text);
    }
    const users: [string, Record<string, unknown>][] = [
      ['travel', { name: 'agent', password: 'agent-pw', collection_access: { inventory: { airline: ALL, hotel: ALL } } }],
      // carol has channel x in airline only; hotel has an x too.
      ['travel', { name: 'carol', password: 'carol-pw', collection_access: { inventory: { airline: { admin_channels: ['x'] } } } }],
      ['mixed', { name: 'agent', password: 'agent-pw', admin_channels: ['*'], collection_access: { _default: { extra: ALL } } }],
    ];
    for (const [db, u] of users) {
      const res = await req(`${admin}/${db}/_user/${u.name}`, { method: 'PUT', json: u });
      assert.equal(res.status, 201, res.text);
    }
    travel = `${gw.publicUrl}/travel`;
  });
  after(async () => {
    await gw?.stop();
    await storage?.stop();
  });

  const agent = { user: 'agent', password: 'agent-pw' };

  test('no default collection: a legacy client is refused with 400; getCollections gives null for what the database lacks', async () => {
    const c = await BlipClient.connect(travel, agent);
    const legacy: Record<string, string>[] = [{ Profile: 'getCheckpoint', client: 'cp' }, { Profile: 'subChanges' }, { Profile: 'proposeChanges' }];
    for (const props of legacy) {
      await assert.rejects(c.call(props, props.Profile === 'proposeChanges' ? [['d', '1-a']] : undefined),
        (e: any) => e.status === 400 && /Collection property not specified and default collection is not configured for this database/.test(e.message));
    }
    const list = await c.getCollections(['inventory.hotel', '_default', 'inventory.nope', 'airline', 'other.airline', 'inventory.airline'], ['a', 'b', 'c', 'd', 'e', 'f']);
    // `airline` alone is `_default.airline`: not this database's (its scope is `inventory`).
    assert.deepEqual(list, [{}, null, null, null, null, {}]);
    await c.close();
  });

  test('the default collection beside a named one: legacy mode is the default, and both by index', async () => {
    const c = await BlipClient.connect(`${gw.publicUrl}/mixed`, agent);
    const d = new LocalDb();
    fill(d, 'legacy', 3, () => 'm');
    const legacyPush = await c.push(d);
    assert.equal(legacyPush.sent, 3, JSON.stringify([...legacyPush.errors]));
    await c.close();
    assert.deepEqual(await allDocIds(admin, 'mixed'), ['legacy-000', 'legacy-001', 'legacy-002']);
    const a = await BlipClient.connect(`${gw.publicUrl}/mixed`, agent);
    assert.deepEqual(await a.getCollections(['extra', '_default'], ['cp-e', 'cp-d']), [{}, {}]);
    const e = new LocalDb();
    fill(e, 'extra', 2, () => 'm');
    await pushAll(a.collection(0), e);
    const pulled = await a.collection(1).pull(new LocalDb());
    assert.equal(pulled.received, 3);
    await a.close();
    assert.deepEqual(await allDocIds(admin, 'mixed._default.extra'), ['extra-000', 'extra-001']);
    assert.deepEqual(await allDocIds(admin, 'mixed'), ['legacy-000', 'legacy-001', 'legacy-002']);
  });

  test('two collections in one connection, both ways, each with its own checkpoint and channel filter; reconnecting resumes from each', async () => {
    // One device pushes into both collections at once, the same document IDs in each.
    const airline = new LocalDb();
    const hotel = new LocalDb();
    fill(airline, 'doc', 20, (i) => (i % 2 ? 'x' : 'y'));
    fill(hotel, 'doc', 30, (i) => (i % 3 ? 'x' : 'y'));
    const pusher = await BlipClient.connect(travel, agent);
    assert.deepEqual(await pusher.getCollections(['inventory.airline', 'inventory.hotel'], ['cp-push-a', 'cp-push-h']), [{}, {}]);
    const [pa, ph] = await Promise.all([pushAll(pusher.collection(0), airline), pushAll(pusher.collection(1), hotel)]);
    assert.equal(await pusher.collection(0).setCheckpoint('cp-push-a', { local: pa }), '0-1');
    assert.equal(await pusher.collection(1).setCheckpoint('cp-push-h', { local: ph }), '0-1');
    assert.equal(await pusher.collection(1).setCheckpoint('cp-push-h', { local: ph }, '0-1'), '0-2');
    assert.deepEqual(pusher.protocolErrors, []);
    await pusher.close();
    // Each document went to its own collection, with its own body.
    assert.equal((await allDocIds(admin, 'travel.inventory.airline')).length, 20);
    assert.equal((await allDocIds(admin, 'travel.inventory.hotel')).length, 30);
    assert.equal((await req(`${admin}/travel.inventory.hotel/doc-025`)).body.where, 'doc');
    assert.deepEqual((await req(`${admin}/travel.inventory.airline/doc-001`)).body.channels, ['x']);
    assert.deepEqual((await req(`${admin}/travel.inventory.hotel/doc-001`)).body.channels, ['x']);
    // The checkpoints are each collection's own local documents.
    assert.equal((await req(`${admin}/travel.inventory.airline/_local/checkpoint%2Fcp-push-a`)).body._rev, '0-1');
    assert.equal((await req(`${admin}/travel.inventory.hotel/_local/checkpoint%2Fcp-push-h`)).body._rev, '0-2');
    assert.equal((await req(`${admin}/travel.inventory.hotel/_local/checkpoint%2Fcp-push-a`)).status, 404);

    // Another device pulls both in one connection: airline filtered to x, hotel to y.
    const pullA = new LocalDb();
    const pullH = new LocalDb();
    const puller = await BlipClient.connect(travel, agent);
    await puller.getCollections(['inventory.airline', 'inventory.hotel'], ['cp-pull-a', 'cp-pull-h']);
    const [sa, sh] = await Promise.all([
      puller.collection(0).pull(pullA, { channels: ['x'] }),
      puller.collection(1).pull(pullH, { channels: ['y'] }),
    ]);
    assert.equal(sa.received, 10);
    assert.equal(sh.received, 10);
    assert.ok([...pullA.docs.keys()].every((id) => airline.get(id)!.body!.channels!.toString() === 'x'));
    assert.ok([...pullH.docs.keys()].every((id) => hotel.get(id)!.body!.channels!.toString() === 'y'));
    for (const id of pullH.docs.keys()) assert.equal(pullH.current(id), hotel.current(id), `${id} is hotel's revision`);
    assert.ok(sa.revProps.every((p) => p.collection === '0') && sh.revProps.every((p) => p.collection === '1'));
    await puller.collection(0).setCheckpoint('cp-pull-a', { remote: sa.lastSeq });
    await puller.collection(1).setCheckpoint('cp-pull-h', { remote: sh.lastSeq });
    assert.deepEqual(puller.protocolErrors, []);
    await puller.close();

    // More changes in both collections, then both devices come back.
    fill(airline, 'doc', 4, () => 'x', 100);
    fill(hotel, 'doc', 6, () => 'y', 100);
    const pusher2 = await BlipClient.connect(travel, agent);
    const cps = await pusher2.getCollections(['inventory.airline', 'inventory.hotel'], ['cp-push-a', 'cp-push-h']);
    assert.deepEqual(cps, [{ local: pa, rev: '0-1', _rev: '0-1' }, { local: ph, rev: '0-2', _rev: '0-2' }]);
    const [pushedA, pushedH] = await Promise.all([
      pusher2.collection(0).push(airline, { since: cps[0]!.local as number }),
      pusher2.collection(1).push(hotel, { since: cps[1]!.local as number }),
    ]);
    assert.deepEqual([pushedA.sent, pushedH.sent], [4, 6], 'only what changed since each checkpoint is pushed');
    await pusher2.close();

    const puller2 = await BlipClient.connect(travel, agent);
    const pcs = await puller2.getCollections(['inventory.airline', 'inventory.hotel'], ['cp-pull-a', 'cp-pull-h']);
    const [ra, rh] = await Promise.all([
      puller2.collection(0).pull(pullA, { channels: ['x'], since: pcs[0]!.remote }),
      puller2.collection(1).pull(pullH, { channels: ['y'], since: pcs[1]!.remote }),
    ]);
    assert.deepEqual([ra.received, rh.received], [4, 6], 'only what changed since each checkpoint is pulled');
    assert.ok(ra.rows.every((r) => String(r[1]).startsWith('doc-1')) && rh.rows.every((r) => String(r[1]).startsWith('doc-1')));
    await puller2.close();
  });

  test('a user granted channel x in one collection sees nothing of the other collection\'s x', async () => {
    const airline = new LocalDb();
    const hotel = new LocalDb();
    fill(airline, 'secret-a', 5, () => 'x');
    fill(hotel, 'secret-h', 5, () => 'x');
    const w = await BlipClient.connect(travel, agent);
    await w.getCollections(['inventory.airline', 'inventory.hotel'], ['w1', 'w2']);
    await pushAll(w.collection(0), airline);
    await pushAll(w.collection(1), hotel);
    await w.close();

    const c = await BlipClient.connect(travel, { user: 'carol', password: 'carol-pw' });
    await c.getCollections(['inventory.airline', 'inventory.hotel'], ['c1', 'c2']);
    const ca = new LocalDb();
    const ch = new LocalDb();
    const [pa, ph] = await Promise.all([c.collection(0).pull(ca), c.collection(1).pull(ch, { channels: ['x'] })]);
    // Airline's x: these five, and the x documents of the test before.
    assert.ok(['000', '001', '002', '003', '004'].every((n) => ca.docs.has(`secret-a-${n}`)), [...ca.docs.keys()].join());
    assert.ok([...ca.docs.keys()].every((id) => id.startsWith('secret-a') || airlineX(id)), [...ca.docs.keys()].join());
    assert.equal(ph.received, 0, 'nothing of hotel');
    assert.equal(ch.docs.size, 0);
    await c.close();
  });

  test('attachments per collection: the server\'s getAttachment/proveAttachment name the collection; a digest is fetchable only through its own', async () => {
    const blob = randomBytes(2000);
    const src = new LocalDb();
    src.put('att-1', { channels: ['y'] }, { attachments: { 'a.bin': { data: blob } } });
    const w = await BlipClient.connect(travel, agent);
    await w.getCollections(['inventory.airline', 'inventory.hotel'], ['aw1', 'aw2']);
    await pushAll(w.collection(1), src);
    src.put('att-2', { channels: ['y'] }, { attachments: { 'b.bin': { data: blob } } });
    await pushAll(w.collection(1), src, 1);
    // The first document's blob was fetched, the second's (same bytes, now stored) proven: both asked as collection 1.
    assert.deepEqual(w.collection(1).served, { getAttachment: 1, proveAttachment: 1 });
    assert.deepEqual(w.collection(0).served, { getAttachment: 0, proveAttachment: 0 });
    assert.deepEqual(w.protocolErrors, []);
    await w.close();

    // A puller fetches the blob while hotel's rev is pending, as collection 1; through airline it is 403.
    const r = await BlipClient.connect(travel, agent);
    await r.getCollections(['inventory.airline', 'inventory.hotel'], ['ar1', 'ar2']);
    const dst = new LocalDb();
    const asked: (number | undefined)[] = [];
    const pulled = await r.collection(1).pull(dst, {
      docIDs: ['att-1'],
      beforeBlobs: async () => {
        // While hotel's rev awaits its reply the digest is fetchable, but only as collection 1.
        const viaAirline = await r.conn.sendRequest({ Profile: 'getAttachment', digest: sha1Digest(blob), docID: 'att-1', collection: '0' });
        asked.push(viaAirline?.isError ? viaAirline.errorCode : 200);
      },
    });
    assert.equal(pulled.errors.length, 0, pulled.errors.map((e) => e.message).join('; '));
    assert.deepEqual(asked, [403]);
    assert.deepEqual(dst.blobs.get(sha1Digest(blob)), blob);
    await r.close();
  });

  test('a live pull in one collection follows a grant made for that collection only', async () => {
    await req(`${admin}/travel/_user/dave`, { method: 'PUT', json: { name: 'dave', password: 'dave-pw' } });
    const c = await BlipClient.connect(travel, { user: 'dave', password: 'dave-pw' });
    await c.getCollections(['inventory.airline', 'inventory.hotel'], ['g1', 'g2']);
    const air = new LocalDb();
    const hot = new LocalDb();
    const la = await c.collection(0).startPull(air, { continuous: true });
    const lh = await c.collection(1).startPull(hot, { continuous: true });
    await la.waitFor(() => la.caughtUp);
    await lh.waitFor(() => lh.caughtUp);
    assert.equal(air.docs.size + hot.docs.size, 0);
    // Grant x in hotel: hotel's feed backfills hotel's x documents; airline's x stays out of reach.
    const g = await req(`${admin}/travel/_user/dave`, { method: 'PUT', json: { name: 'dave', collection_access: { inventory: { hotel: { admin_channels: ['x'] } } } } });
    assert.equal(g.status, 200, g.text);
    await lh.waitFor(() => ['000', '001', '002', '003', '004'].every((n) => hot.docs.has(`secret-h-${n}`)), 20_000);
    assert.ok(lh.revProps.every((p) => p.collection === '1'));
    assert.equal(air.docs.size, 0, 'nothing of airline');
    await c.close();
  });

  test('delta sync per collection: pulled revisions come as deltas tagged with their collection, pushed ones are applied', async () => {
    const src = new LocalDb();
    const big = 'lorem ipsum dolor sit amet '.repeat(20);
    src.put('dh', { text: big, n: 1, channels: ['y'] });
    const w = await BlipClient.connect(travel, agent);
    await w.getCollections(['inventory.airline', 'inventory.hotel'], ['dw1', 'dw2']);
    await pushAll(w.collection(1), src);

    const dst = new LocalDb();
    const r = await BlipClient.connect(travel, agent);
    await r.getCollections(['inventory.airline', 'inventory.hotel'], ['dr1', 'dr2']);
    const live = await r.collection(1).startPull(dst, { continuous: true, deltas: true, docIDs: undefined });
    await live.waitFor(() => live.caughtUp && dst.docs.has('dh'));
    src.put('dh', { text: big, n: 2, channels: ['y'] });
    const pushed = await w.collection(1).push(src, { deltas: true, since: 1 });
    assert.equal(pushed.errors.size, 0);
    assert.equal(pushed.deltasSent, 1, 'the pushed revision went as a delta and was applied in hotel');
    await live.waitFor(() => dst.current('dh') === src.current('dh'));
    assert.equal(live.deltasApplied, 1, 'the pulled revision came as a delta');
    assert.ok(live.revProps.every((p) => p.collection === '1'));
    assert.equal((await req(`${admin}/travel.inventory.hotel/dh`)).body.n, 2);
    assert.equal((await req(`${admin}/travel.inventory.airline/dh`)).status, 404);
    await w.close();
    await r.close();
  });
});

