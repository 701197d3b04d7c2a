/**
 * `scopes` in database configs over REST (issue 14): Sync Gateway 3.1's refusals as 400s that leave
 * nothing behind, per-keyspace `_config/sync|import_filter` for the default keyspace and for named
 * ones (each change applied to the collection's writes), the one scope change Sync Gateway allows,
 * and a 2.x start-up file holding `scopes`. Stored configs, versions and updates with named
 * collections in detail: test/unit/db-configs-collections.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

type Obj = Record<string, unknown>;
const OPEN = { guest: { disabled: false, admin_channels: ['*'] } };
const js = (body: string, headers: Record<string, string> = {}) => ({ method: 'PUT', body, headers: { 'content-type': 'application/javascript', ...headers } });
const inventory = (collections: Obj) => ({ scopes: { inventory: { collections } } });

describe('scopes in database configs over REST (persistent mode)', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ bootstrap: { logging: { console: { log_level: 'warn' } } } }); });
  after(() => gw?.stop());

  const config = async (db: string, query = '') => {
    const r = await req(`${gw.adminUrl}/${db}/_config${query}`);
    return { status: r.status, etag: r.headers.get('etag'), body: r.body as Obj };
  };

  test('creation: each of Sync Gateway\'s rules is a 400 in its words, and nothing is created', async () => {
    const cases: [Obj, RegExp][] = [
      [{ scopes: { a: { collections: { x: {} } }, b: { collections: { y: {} } } } }, /^only one named scope is supported, but had 2 \(a, b\)$/],
      [inventory({}), /^must specify at least one collection in scope inventory$/],
      [{ ...inventory({ a: {} }), sync: 'function(doc){}' }, /^cannot specify a database-level sync function with named scopes and collections$/],
      [{ ...inventory({ a: {} }), import_filter: 'function(doc){return true;}' }, /^cannot specify a database-level import filter with named scopes and collections$/],
      [inventory({ '_a': {} }), /^invalid scope\/collection name 'inventory\._a'$/],
      [{ scopes: { 'in:v': { collections: { a: {} } } } }, /^invalid scope\/collection name 'in:v\.a'$/],
      [inventory({ _default: {} }), /^invalid scope\/collection name 'inventory\._default'$/],
      [inventory({ a: { sync: 'function(doc) {' } }), /^collection "a" sync function error: invalid javascript syntax/],
      [inventory({ a: { import_filter: 'function(' } }), /^collection "a" import filter error: invalid javascript syntax/],
      [inventory({ a: { sync: 1 } }), /scopes\.inventory\.collections\.a\.sync: expected a string, got an integer/],
      [{ ...inventory({ a: {}, b: { sync: 'x x' } }), sync: 'function(doc){}' }, /^2 errors:\ncannot specify a database-level sync function.*\ncollection "b" sync function error/s],
    ];
    for (const [body, reason] of cases) {
      const r = await req(`${gw.adminUrl}/refused/`, { method: 'PUT', json: body });
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.body.reason, reason, JSON.stringify(body));
      assert.equal((await req(`${gw.adminUrl}/refused/`)).status, 404, 'nothing was created');
    }
  });

  test('the default keyspace over REST: /{db}/ and /{db}._default._default/ are the same function, with Etag and If-Match', async () => {
    assert.equal((await req(`${gw.adminUrl}/plain/`, { method: 'PUT', json: OPEN })).status, 201);
    const url = (ks: string, which = 'sync') => `${gw.adminUrl}/${ks}/_config/${which}`;
    let r = await req(url('plain._default._default'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, '');
    const v = r.headers.get('etag')!;
    assert.equal(v, (await config('plain')).etag);
    r = await req(url('plain._default._default'), js('function(doc){channel("ks-" + doc.k);}', { 'if-match': '"1-0"' }));
    assert.equal(r.status, 412);
    r = await req(url('plain._default._default'), js('function(doc){channel("ks-" + doc.k);}', { 'if-match': v }));
    assert.equal(r.status, 200, r.text);
    assert.equal((await req(url('plain'))).text, 'function(doc){channel("ks-" + doc.k);}');
    assert.equal((await config('plain')).body.sync, 'function(doc){channel("ks-" + doc.k);}', 'the db-level field');
    assert.equal((await req(`${gw.publicUrl}/plain/d1`, { method: 'PUT', json: { k: 'x' } })).status, 201);
    const all = await req(`${gw.adminUrl}/plain/_all_docs?channels=true&keys=["d1"]`);
    assert.deepEqual(all.body.rows[0].value.channels, ['ks-x'], 'applied');
    r = await req(url('plain._default', 'import_filter'), js('function(doc){return true;}'));
    assert.equal(r.status, 200, r.text);
    assert.equal((await req(url('plain', 'import_filter'))).text, 'function(doc){return true;}');
    r = await req(url('plain._default._default', 'import_filter'), { method: 'DELETE' });
    assert.deepEqual([r.status, r.text], [200, ''], 'a success below 300 has no body (SG writeStatus)');
    r = await req(url('plain._default._default'), { method: 'DELETE' });
    assert.deepEqual([r.status, r.text], [200, '']);
    assert.equal((await config('plain')).body.sync, undefined);
    // A database without scopes has no named collection; a malformed keyspace is 400.
    r = await req(url('plain.inventory.airline'));
    assert.deepEqual([r.status, r.body.reason], [404, 'keyspace plain.inventory.airline not found']);
    r = await req(url('plain.inventory.airline'), js('function(doc){}'));
    assert.equal(r.status, 404);
    assert.equal((await req(url('plain.a.b.c'))).status, 400);
    assert.equal((await req(url('plain..x'))).status, 400);
  });

  test('from no scopes to the explicit _default scope (the one change Sync Gateway allows); its _default entry is then the function', async () => {
    const body = { ...OPEN, scopes: { _default: { collections: { _default: { sync: 'function(doc){channel("explicit");}' } } } } };
    let r = await req(`${gw.adminUrl}/plain/_config`, { method: 'PUT', json: body });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual((await config('plain')).body.scopes, body.scopes);
    assert.equal((await req(`${gw.adminUrl}/plain/_config/sync`)).text, 'function(doc){channel("explicit");}');
    assert.equal((await req(`${gw.publicUrl}/plain/d2`, { method: 'PUT', json: {} })).status, 201);
    const all = await req(`${gw.adminUrl}/plain/_all_docs?channels=true&keys=["d2"]`);
    assert.deepEqual(all.body.rows[0].value.channels, ['explicit'], 'the default collection runs its entry\'s function');
    r = await req(`${gw.adminUrl}/plain/_config/sync`, js('function(doc){channel("again");}'));
    assert.equal(r.status, 200, r.text);
    assert.deepEqual((await config('plain')).body.scopes, { _default: { collections: { _default: { sync: 'function(doc){channel("again");}' } } } });
    assert.equal((await config('plain')).body.sync, undefined, 'written into the collection, not beside scopes');
    r = await req(`${gw.adminUrl}/plain/_config`, { method: 'PUT', json: OPEN });
    assert.deepEqual([r.status, r.body.reason], [400, 'cannot change scopes after database creation']);
  });
});

describe('named keyspaces\' _config/sync|import_filter over REST (persistent mode)', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ bootstrap: { logging: { console: { log_level: 'warn' } } } }); });
  after(() => gw?.stop());
  const AIRLINE = 'function(doc){channel("air-" + doc.kind);}';
  const url = (ks: string, which = 'sync') => `${gw.adminUrl}/${ks}/_config/${which}`;
  /** The channels a write to the collection gets now (the running database's sync function). */
  const channelsOf = async (collection: string, id: string, body: Obj) => {
    const c = gw.gateway.get('travel')!.collection('inventory', collection)!;
    await c.put({ id, body, newEdits: true });
    return (await c.getDocMeta(id))!.channels;
  };

  test('read per collection (full and short keyspace), set with If-Match, compiled, removed; each change applied', async () => {
    let r = await req(`${gw.adminUrl}/travel/`, { method: 'PUT', json: { ...OPEN, ...inventory({ airline: { sync: AIRLINE }, hotel: {} }) } });
    assert.equal(r.status, 201, r.text);
    const v1 = (await req(`${gw.adminUrl}/travel/_config`)).headers.get('etag')!;
    for (const ks of ['travel.inventory.airline', 'travel.airline']) {
      r = await req(url(ks));
      assert.deepEqual([r.status, r.text, r.headers.get('etag')], [200, AIRLINE, v1], ks);
    }
    r = await req(url('travel.inventory.hotel'));
    assert.deepEqual([r.status, r.text], [200, ''], 'no function of its own: empty, not the default');
    assert.deepEqual(await channelsOf('hotel', 'h1', {}), ['hotel'], 'the default: channel("hotel")');
    assert.deepEqual(await channelsOf('airline', 'a1', { kind: 'x' }), ['air-x']);

    r = await req(url('travel.inventory.hotel'), js('function(doc){channel("h-" + doc.k);}', { 'if-match': '"1-0"' }));
    assert.equal(r.status, 412);
    r = await req(url('travel.inventory.hotel'), js('function(doc) {'));
    assert.equal(r.status, 400);
    assert.match(r.body.reason, /^collection "hotel" sync function error: invalid javascript syntax/);
    r = await req(url('travel.inventory.hotel'), js('function(doc){channel("h-" + doc.k);}', { 'if-match': v1 }));
    assert.equal(r.status, 200, r.text);
    assert.equal((await req(url('travel.hotel'))).text, 'function(doc){channel("h-" + doc.k);}');
    assert.deepEqual(await channelsOf('hotel', 'h2', { k: 'y' }), ['h-y'], 'applied');
    assert.equal((await req(url('travel.airline'))).text, AIRLINE, 'the other collection keeps its own');
    const stored = (await req(`${gw.adminUrl}/travel/_config`)).body;
    assert.deepEqual(stored.scopes, inventory({ airline: { sync: AIRLINE }, hotel: { sync: 'function(doc){channel("h-" + doc.k);}' } }).scopes);

    r = await req(url('travel.inventory.airline', 'import_filter'), js('function(doc){return doc.ok;}'));
    assert.equal(r.status, 200, r.text);
    assert.equal((await req(url('travel.airline', 'import_filter'))).text, 'function(doc){return doc.ok;}');
    assert.equal((await req(url('travel.hotel', 'import_filter'))).text, '');
    r = await req(url('travel.inventory.airline'), { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.equal((await req(url('travel.airline'))).text, '');
    assert.deepEqual(await channelsOf('airline', 'a2', { kind: 'x' }), ['airline'], 'back to channel("airline")');
    assert.equal((await req(url('travel.airline', 'import_filter'))).text, 'function(doc){return doc.ok;}', 'the import filter stays');
  });

  test('keyspaces the database does not have: 404; a collection added later has its own at once', async () => {
    let r = await req(url('travel.inventory.route'));
    assert.deepEqual([r.status, r.body.reason], [404, 'keyspace travel.inventory.route not found']);
    r = await req(url('travel.inventory.route'), js('function(doc){}'));
    assert.equal(r.status, 404);
    r = await req(url('travel'));
    assert.deepEqual([r.status, r.body.reason], [404, 'keyspace travel._default._default not found'], '/{db}/ is _default._default, which this database does not list');
    r = await req(`${gw.adminUrl}/travel/_config`, { method: 'POST', json: inventory({ route: { sync: 'function(doc){channel("r");}' } }) });
    assert.equal(r.status, 201, r.text);
    r = await req(url('travel.inventory.route'));
    assert.deepEqual([r.status, r.text], [200, 'function(doc){channel("r");}']);
    assert.deepEqual(await channelsOf('route', 'r1', {}), ['r']);
  });

  test('a collection dropped by an update is gone from the database, its documents kept: listed again, it has them (as Sync Gateway 3.1)', async () => {
    const full = (await req(`${gw.adminUrl}/travel/_config`)).body;
    const { hotel, ...rest } = (full.scopes as any).inventory.collections;
    let r = await req(`${gw.adminUrl}/travel/_config`, { method: 'PUT', json: { ...full, scopes: { inventory: { collections: rest } } } });
    assert.equal(r.status, 201, r.text);
    assert.equal(gw.gateway.get('travel')!.collection('inventory', 'hotel'), undefined);
    r = await req(url('travel.inventory.hotel'));
    assert.deepEqual([r.status, r.body.reason], [404, 'keyspace travel.inventory.hotel not found']);
    r = await req(`${gw.adminUrl}/travel/_config`, { method: 'POST', json: inventory({ hotel }) });
    assert.equal(r.status, 201, r.text);
    assert.equal((await req(url('travel.hotel'))).text, hotel.sync);
    assert.deepEqual((await gw.gateway.get('travel')!.collection('inventory', 'hotel')!.getDocMeta('h2'))?.channels, ['h-y'], 'its documents are still there');
  });
});

describe('named keyspaces in a 2.x start-up file (non-persistent mode)', () => {
  let gw: TestGateway;
  const AIRLINE = 'function(doc){channel("air-" + doc.kind);}';
  before(async () => {
    gw = await startGateway({
      databases: {
        travel: {
          server: 'memory:', ...inventory({ airline: { sync: AIRLINE }, hotel: {} }),
          users: { GUEST: { disabled: false, admin_channels: ['*'] }, ann: { password: 'secret', collection_access: { inventory: { airline: { admin_channels: ['a1'] } } } } },
        },
      },
    });
  });
  after(() => gw?.stop());

  test('runs its collections; per-keyspace functions answer as Sync Gateway\'s non-persistent mode; collection_access reaches the user', async () => {
    const db = gw.gateway.get('travel')!;
    const airline = db.collection('inventory', 'airline')!;
    await airline.put({ id: 'a', body: { kind: 'k' }, newEdits: true });
    assert.deepEqual((await airline.getDocMeta('a'))!.channels, ['air-k']);
    let r = await req(`${gw.adminUrl}/travel.inventory.airline/_config/sync`);
    assert.deepEqual([r.status, r.text, r.headers.get('etag')], [200, '', '""']);
    r = await req(`${gw.adminUrl}/travel.inventory.airline/_config/sync`, js('function(doc){}'));
    assert.deepEqual([r.status, r.body.reason], [400, 'endpoint only supports persistent config mode']);
    r = await req(`${gw.adminUrl}/travel/_user/ann`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.collection_access?.inventory?.airline?.admin_channels, ['a1']);
    r = await req(`${gw.adminUrl}/travel/_config`);
    assert.deepEqual(r.body.scopes, inventory({ airline: { sync: AIRLINE }, hotel: {} }).scopes);
  });
});
