/**
 * `scopes` in database configs over REST (issue 14): Sync Gateway 3.1's refusals as 400s that leave
 * nothing behind, the config served back as given (and with each collection's effective sync
 * function under `include_runtime`), the scope fixed while collections come and go, per-keyspace
 * `_config/sync|import_filter` for the default keyspace over REST and for named collections at the
 * DbConfigs level (until the Database layer resolves named keyspaces), and a 2.x start-up file
 * holding `scopes`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HttpError } from '../../src/errors.ts';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

type Obj = Record<string, unknown>;
const OPEN = { guest: { disabled: false, admin_channels: ['*'] } };
const js = (body: string, headers: Record<string, string> = {}) => ({ method: 'PUT', body, headers: { 'content-type': 'application/javascript', ...headers } });
const inventory = (collections: Obj) => ({ scopes: { inventory: { collections } } });
const AIRLINE = 'function(doc){channel("air-" + doc.kind);}';

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

  test('GET /{db}/_config serves scopes as given; include_runtime shows each collection\'s effective sync function', async () => {
    const body = { ...OPEN, ...inventory({ route: {}, airline: { sync: AIRLINE, import_filter: 'function(doc){return true;}' }, '42': {} }), sync: '' };
    const r = await req(`${gw.adminUrl}/travel/`, { method: 'PUT', json: body });
    assert.equal(r.status, 201, r.text);
    const c = await config('travel');
    assert.deepEqual(c.body.scopes, body.scopes);
    assert.deepEqual(Object.keys((c.body.scopes as any).inventory.collections), ['42', 'route', 'airline'], 'JavaScript object order: a name of digits first');
    const rt = await config('travel', '?include_runtime=true');
    assert.equal(rt.status, 200);
    assert.equal(rt.body.sync, undefined, 'no db-level sync beside scopes');
    assert.deepEqual((rt.body.scopes as any).inventory.collections, {
      route: { sync: 'function(doc){channel("route");}' },
      airline: { sync: AIRLINE, import_filter: 'function(doc){return true;}' },
      '42': { sync: 'function(doc){channel("42");}' },
    });
    const noJs = await config('travel', '?include_javascript=false');
    assert.deepEqual((noJs.body.scopes as any).inventory.collections, { route: {}, airline: {}, '42': {} });
    // The running config: collections in configuration order, blank functions unset.
    assert.deepEqual(gw.gateway.running('travel')?.collections?.map((x) => x.name), ['42', 'route', 'airline']);
    assert.equal(gw.gateway.running('travel')?.sync, undefined);
  });

  test('updates: the scope is fixed; collections may be added (POST merges) and removed (PUT replaces)', async () => {
    const before = await config('travel');
    for (const [method, body] of [
      ['PUT', { ...OPEN, scopes: { other: { collections: { airline: {} } } } }],
      ['PUT', { ...OPEN }],
      ['POST', { scopes: { other: { collections: { a: {} } } } }],
      ['POST', { sync: 'function(doc){}' }],
    ] as const) {
      const r = await req(`${gw.adminUrl}/travel/_config`, { method, json: body });
      assert.equal(r.status, 400, `${method} ${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.body.reason, method === 'POST' && 'sync' in body ? /^cannot specify a database-level sync function/ : /cannot change scopes after database creation/);
    }
    assert.deepEqual(await config('travel'), before, 'refusals change nothing');
    let r = await req(`${gw.adminUrl}/travel/_config`, { method: 'POST', json: inventory({ hotel: { sync: 'function(doc){channel("h");}' } }), headers: { 'if-match': before.etag! } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(Object.keys(((await config('travel')).body.scopes as any).inventory.collections), ['42', 'route', 'airline', 'hotel'], 'merged in');
    assert.deepEqual(gw.gateway.running('travel')?.collections?.map((x) => x.name), ['42', 'route', 'airline', 'hotel']);
    // Sync Gateway 3.1 accepts dropping a collection (its keyspace is then 404, its documents stay).
    r = await req(`${gw.adminUrl}/travel/_config`, { method: 'PUT', json: { ...OPEN, ...inventory({ airline: { sync: AIRLINE }, hotel: {} }) } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(gw.gateway.running('travel')?.collections, [
      { scope: 'inventory', name: 'airline', sync: AIRLINE }, { scope: 'inventory', name: 'hotel' },
    ]);
    r = await req(`${gw.adminUrl}/travel/_config`, { method: 'PUT', json: { ...OPEN, ...inventory({}) } });
    assert.equal(r.status, 400);
    assert.equal(r.body.reason, 'must specify at least one collection in scope inventory');
  });

  test('named collections\' functions at the DbConfigs level: read, set with If-Match, compile check naming the collection, removed', async () => {
    const configs = gw.gateway.configs;
    const airline = { scope: 'inventory', name: 'airline' };
    const hotel = { scope: 'inventory', name: 'hotel' };
    const v0 = (await config('travel')).etag!;
    assert.deepEqual(await configs.getFunction('travel', 'sync', airline), { source: AIRLINE, version: v0.slice(1, -1) });
    assert.deepEqual(await configs.getFunction('travel', 'sync', hotel), { source: '', version: v0.slice(1, -1) }, 'no function: empty, not the default');
    const fails = async (p: Promise<unknown>, status: number, reason: RegExp) => {
      await assert.rejects(p, (e: unknown) => e instanceof HttpError && e.status === status && reason.test(e.reason));
    };
    await fails(configs.setFunction('travel', 'sync', 'function(doc){}', '"1-00"', hotel), 412, /^Provided If-Match header does not match current config version$/);
    await fails(configs.setFunction('travel', 'sync', 'function(doc) {', undefined, hotel), 400, /^collection "hotel" sync function error: invalid javascript syntax/);
    await fails(configs.getFunction('travel', 'sync', { scope: 'inventory', name: 'route' }), 404, /^keyspace travel\.inventory\.route not found$/);
    await fails(configs.setFunction('travel', 'import_filter', 'function(doc){return true;}', undefined, { scope: 'inventory', name: 'route' }), 404, /^keyspace travel\.inventory\.route not found$/);
    await fails(configs.getFunction('travel', 'sync'), 404, /^keyspace travel\._default\._default not found$/);
    assert.equal((await config('travel')).etag, v0, 'refusals change nothing');

    await configs.setFunction('travel', 'sync', 'function(doc){channel("hh");}', v0, hotel);
    const v1 = (await config('travel')).etag!;
    assert.notEqual(v1, v0);
    assert.deepEqual((await configs.getFunction('travel', 'sync', hotel)).source, 'function(doc){channel("hh");}');
    assert.deepEqual(gw.gateway.running('travel')?.collections?.find((c) => c.name === 'hotel'), { ...hotel, sync: 'function(doc){channel("hh");}' }, 'applied');
    await configs.setFunction('travel', 'import_filter', 'function(doc){return false;}', undefined, hotel);
    assert.deepEqual(((await config('travel')).body.scopes as any).inventory.collections.hotel,
      { sync: 'function(doc){channel("hh");}', import_filter: 'function(doc){return false;}' });
    await configs.setFunction('travel', 'sync', undefined, undefined, airline);
    assert.deepEqual(((await config('travel')).body.scopes as any).inventory.collections.airline, {});
    const rt = await config('travel', '?include_runtime=true');
    assert.equal((rt.body.scopes as any).inventory.collections.airline.sync, 'function(doc){channel("airline");}', 'back to its default');
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

describe('scopes in a 2.x start-up file (non-persistent mode; Sync Gateway refuses them there)', () => {
  let gw: TestGateway;
  const users = {
    GUEST: { disabled: false, admin_channels: ['*'] },
    ann: { password: 'secret', collection_access: { inventory: { airline: { admin_channels: ['a1'] } } } },
  };
  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:', users, ...inventory({ airline: { sync: AIRLINE }, hotel: {} }) } } });
  });
  after(() => gw?.stop());

  test('loaded with its collections and collection_access; the scope is fixed on update, collections may be added', async () => {
    const running = gw.gateway.running('db')!;
    assert.deepEqual(running.collections, [{ scope: 'inventory', name: 'airline', sync: AIRLINE }, { scope: 'inventory', name: 'hotel' }]);
    assert.deepEqual(running.users.ann.collection_access, { inventory: { airline: { admin_channels: ['a1'] } } });
    let r = await req(`${gw.adminUrl}/db/_config`);
    assert.deepEqual(r.body.scopes, inventory({ airline: { sync: AIRLINE }, hotel: {} }).scopes);
    r = await req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: { users, scopes: { other: { collections: { a: {} } } } } });
    assert.equal(r.status, 400);
    assert.match(r.body.reason, /^2 errors:\n.*users\.ann\.collection_access: keyspace specified in collection_access \(db\.inventory\.airline\) not found\ncannot change scopes after database creation$/);
    r = await req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: { users: { ...users, bob: { password: 'secret', collection_access: { inventory: { route: {} } } } }, ...inventory({ airline: {}, hotel: {} }) } });
    assert.equal(r.status, 400);
    assert.match(r.body.reason, /users\.bob\.collection_access: keyspace specified in collection_access \(db\.inventory\.route\) not found/);
    r = await req(`${gw.adminUrl}/db/_config`, { method: 'PUT', json: { users: { ...users, bob: { password: 'secret', collection_access: { inventory: { route: {} } } } }, ...inventory({ airline: {}, hotel: {}, route: {} }) } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(gw.gateway.running('db')?.collections?.map((c) => c.name), ['airline', 'hotel', 'route']);
    assert.deepEqual(gw.gateway.running('db')?.users.bob.collection_access, { inventory: { route: { admin_channels: [] } } });
  });
});
