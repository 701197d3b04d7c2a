/**
 * REST keyspaces on databases with named collections, configured over REST as Sync Gateway 3.1 does
 * (`PUT /{db}/` with `scopes`): the resolution table of spec collections-delta.md §1.10 and every
 * keyspace route kept to its own collection, live feeds included. Requests go to the admin port,
 * so what is shown is the routing, not the per-collection grants (tested with the access model).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const TRAVEL = {
  scopes: {
    inventory: {
      collections: {
        airline: {},
        // Not the default `channel("hotel")`: each collection runs its own sync function.
        hotel: { sync: 'function (doc) { channel(doc.tag); }' },
      },
    },
  },
};

/** Database `mixed`: the default collection listed beside a named one of the `_default` scope. */
const MIXED = { scopes: { _default: { collections: { _default: {}, extra: {} } } } };

describe('REST keyspaces on a database with named collections', () => {
  let gw: TestGateway;
  let admin: string;
  before(async () => {
    gw = await startGateway({ bootstrap: { logging: { console: { log_level: 'warn' } } } });
    admin = gw.adminUrl;
    for (const [name, config] of [['travel', TRAVEL], ['mixed', MIXED]] as const) {
      const created = await req(`${admin}/${name}/`, { method: 'PUT', json: config });
      assert.equal(created.status, 201, created.text);
    }
  });
  after(() => gw?.stop());

  test('the resolution table: db.coll with one scope, db.scope.coll, unknown ones, a bare db without _default', async () => {
    assert.equal((await req(`${admin}/travel.airline/a1`, { method: 'PUT', json: { n: 1 } })).status, 201);
    // `db.coll` takes the database's only scope.
    const full = await req(`${admin}/travel.inventory.airline/a1`);
    assert.deepEqual([full.status, full.body.n], [200, 1]);
    assert.equal((await req(`${admin}/travel.inventory.hotel/h1`, { method: 'PUT', json: { n: 2, tag: 't' } })).status, 201);
    assert.equal((await req(`${admin}/travel.hotel/h1`)).body.n, 2);
    const notFound: [string, string][] = [
      ['travel.inventory.nope', 'keyspace travel.inventory.nope not found'],
      ['travel.other.airline', 'keyspace travel.other.airline not found'],
      ['travel.nope', 'keyspace travel.nope not found'],
      ['travel.inventory', 'keyspace travel.inventory not found'],
      ['travel._default', 'keyspace travel._default not found'],
      ['travel._default._default', 'keyspace travel._default._default not found'],
      // A bare database is `_default._default` even when the database has a single named collection.
      ['travel', 'keyspace travel._default._default not found'],
    ];
    for (const [ks, reason] of notFound) {
      for (const [method, path] of [['GET', `/${ks}/a1`], ['PUT', `/${ks}/a9`], ['GET', `/${ks}/_all_docs`], ['GET', `/${ks}/_changes`], ['POST', `/${ks}/_bulk_docs`], ['POST', `/${ks}/`]]) {
        const got = await req(`${admin}${path}`, { method, ...(method === 'GET' ? {} : { json: { docs: [] } }) });
        assert.equal(got.status, 404, `${method} ${path}`);
        assert.deepEqual(got.body, { error: 'not_found', reason }, `${method} ${path}`);
      }
    }
    assert.equal((await req(`${admin}/travel.airline/a9`)).status, 404, 'a refused write wrote nothing');
    // 4 parts or an empty part stay 400 whatever the database holds.
    assert.equal((await req(`${admin}/travel.inventory.airline.x/a1`)).status, 400);
    assert.equal((await req(`${admin}/travel..airline/a1`)).status, 400);
    // Database-level routes take the bare name and work without a default collection.
    const info = await req(`${admin}/travel/`);
    assert.deepEqual([info.status, info.body.db_name], [200, 'travel']);
    assert.equal((await req(`${admin}/travel/_user/`)).status, 200);
    assert.equal((await req(`${admin}/travel.airline/_user/`)).body.reason, 'no such database "travel.airline"');
  });

  test('the default collection beside a named one of the _default scope', async () => {
    assert.equal((await req(`${admin}/mixed/d1`, { method: 'PUT', json: { where: 'default' } })).status, 201);
    assert.equal((await req(`${admin}/mixed.extra/d1`, { method: 'PUT', json: { where: 'extra' } })).status, 201);
    assert.equal((await req(`${admin}/mixed._default._default/d1`)).body.where, 'default');
    assert.equal((await req(`${admin}/mixed._default/d1`)).body.where, 'default');
    assert.equal((await req(`${admin}/mixed._default.extra/d1`)).body.where, 'extra');
    const missing = await req(`${admin}/mixed.other/d1`);
    assert.deepEqual([missing.status, missing.body.reason], [404, 'keyspace mixed.other not found']);
  });

  test('every keyspace route stays in its collection', async () => {
    const air = `${admin}/travel.inventory.airline`;
    const hotel = `${admin}/travel.inventory.hotel`;
    const a = await req(`${air}/same`, { method: 'PUT', json: { kind: 'airline' } });
    const h = await req(`${hotel}/same`, { method: 'PUT', json: { kind: 'hotel', tag: 'rooms' } });
    assert.equal(a.status, 201);
    assert.equal(h.status, 201);
    assert.notEqual(a.body.rev, h.body.rev);
    assert.equal((await req(`${air}/same`)).body.kind, 'airline');
    assert.equal((await req(`${hotel}/same`)).body.kind, 'hotel');
    // Sequences are database-wide: the hotel's write came after the airline's.
    const airChanges = await req(`${air}/_changes`);
    const hotelChanges = await req(`${hotel}/_changes`);
    const airIds = airChanges.body.results.map((r: { id: string }) => r.id);
    const hotelIds = hotelChanges.body.results.map((r: { id: string }) => r.id);
    assert.deepEqual(airIds.sort(), ['a1', 'same']);
    assert.deepEqual(hotelIds.sort(), ['h1', 'same']);
    const seqOf = (rows: { id: string; seq: number }[]) => rows.find((r) => r.id === 'same')!.seq;
    assert.ok(seqOf(hotelChanges.body.results) > seqOf(airChanges.body.results));
    // _all_docs, _bulk_get, _revs_diff.
    assert.deepEqual((await req(`${air}/_all_docs`)).body.rows.map((r: { id: string }) => r.id), ['a1', 'same']);
    const bulkGet = await req(`${hotel}/_bulk_get`, { method: 'POST', headers: { accept: 'application/json' }, json: { docs: [{ id: 'same', rev: a.body.rev }, { id: 'a1' }] } });
    assert.equal(bulkGet.body.results[0].docs[0].error.error, 'not_found');
    assert.equal(bulkGet.body.results[1].docs[0].error.error, 'not_found');
    const diff = await req(`${hotel}/_revs_diff`, { method: 'POST', json: { same: [a.body.rev, h.body.rev] } });
    assert.deepEqual(diff.body, { same: { missing: [a.body.rev] } });
    // _bulk_docs writes into the keyspace it was sent to.
    const bulk = await req(`${hotel}/_bulk_docs`, { method: 'POST', json: { docs: [{ _id: 'b1', tag: 'rooms' }, { _id: '_local/cp', at: 'hotel' }] } });
    assert.equal(bulk.status, 201);
    assert.equal((await req(`${hotel}/b1`)).status, 200);
    assert.equal((await req(`${air}/b1`)).status, 404);
    // _local documents.
    assert.equal((await req(`${air}/_local/cp`, { method: 'PUT', json: { at: 'airline' } })).status, 201);
    assert.equal((await req(`${air}/_local/cp`)).body.at, 'airline');
    assert.equal((await req(`${hotel}/_local/cp`)).body.at, 'hotel');
    // Attachments.
    const att = await req(`${air}/same/ticket.txt?rev=${a.body.rev}`, { method: 'PUT', body: 'boarding pass', headers: { 'content-type': 'text/plain' } });
    assert.equal(att.status, 201);
    assert.equal((await req(`${air}/same/ticket.txt`)).text, 'boarding pass');
    assert.equal((await req(`${hotel}/same/ticket.txt`)).status, 404);
    // Each collection's own sync function: airline's default is channel("airline"), hotel's channel(doc.tag).
    const airRaw = await req(`${air}/_raw/same`);
    assert.deepEqual(Object.keys(airRaw.body._sync.channels), ['airline']);
    const hotelRaw = await req(`${hotel}/_raw/same`);
    assert.deepEqual(Object.keys(hotelRaw.body._sync.channels), ['rooms']);
    assert.equal((await req(`${air}/_raw/b1`)).status, 404);
    assert.equal((await req(`${hotel}/_revtree/same`)).text, `digraph graphname{"" -> "${h.body.rev}"; }`);
    assert.equal((await req(`${air}/_revtree/same`)).text, `digraph graphname{"${a.body.rev}" -> "${att.body.rev}"; }`);
    assert.match((await req(`${air}/_dumpchannel/airline`)).text, /<td>same<\/td>/);
    assert.equal((await req(`${hotel}/_dumpchannel/airline`)).status, 404);
    assert.match((await req(`${hotel}/_dumpchannel/rooms`)).text, /<td>b1<\/td>/);
    // _purge removes from its keyspace only.
    const purge = await req(`${hotel}/_purge`, { method: 'POST', json: { same: ['*'] } });
    assert.deepEqual(purge.body, { purged: { same: ['*'] } });
    assert.equal((await req(`${hotel}/same`)).status, 404);
    assert.equal((await req(`${air}/same`)).body.kind, 'airline');
  });

  test('on the public port a keyspace route sees what the user may see in that collection', async () => {
    const created = await req(`${admin}/travel/_user/alice`, {
      method: 'PUT', json: { password: 'alice-pw', collection_access: { inventory: { airline: { admin_channels: ['airline'] } } } },
    });
    assert.equal(created.status, 201, created.text);
    const auth = { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` };
    const pub = gw.publicUrl;
    assert.equal((await req(`${pub}/travel.airline/a1`, { headers: auth })).status, 200);
    assert.equal((await req(`${pub}/travel.hotel/h1`, { headers: auth })).status, 403);
    const airIds = (await req(`${pub}/travel.airline/_changes`, { headers: auth })).body.results.map((r: { id: string }) => r.id);
    assert.ok(airIds.includes('a1'), JSON.stringify(airIds));
    const hotelIds = (await req(`${pub}/travel.hotel/_changes`, { headers: auth })).body.results.map((r: { id: string }) => r.id);
    assert.ok(!hotelIds.includes('h1'), JSON.stringify(hotelIds));
    assert.deepEqual((await req(`${pub}/travel.hotel/_all_docs`, { headers: auth })).body.rows, []);
    // An unknown keyspace is told only to an authenticated user.
    assert.equal((await req(`${pub}/travel.nope/x`)).status, 401);
    assert.equal((await req(`${pub}/travel.nope/x`, { headers: auth })).body.reason, 'keyspace travel.nope not found');
    assert.equal((await req(`${pub}/travel/a1`, { headers: auth })).body.reason, 'keyspace travel._default._default not found');
  });

  test('live feeds on a named keyspace see and wake on that collection\'s commits only', async () => {
    const air = `${admin}/travel.airline`;
    const hotel = `${admin}/travel.hotel`;
    // Each keyspace's own position: a collection's feed ends at its own last entry (sequences are database-wide).
    const since = (await req(`${admin}/travel.hotel/_changes`)).body.last_seq;
    const sinceAir = (await req(`${admin}/travel.airline/_changes`)).body.last_seq;
    const longpoll = req(`${hotel}/_changes?feed=longpoll&since=${since}&timeout=120000`);
    const continuous = req(`${air}/_changes?feed=continuous&since=${sinceAir}&limit=1&timeout=120000`);
    const ws = new WebSocket(`${hotel.replace('http', 'ws')}/_changes?feed=websocket`);
    const wsMessages: string[] = [];
    const wsGot = new Promise<void>((resolve, reject) => {
      ws.on('message', (m) => { wsMessages.push(m.toString()); if (m.toString().includes('live-hotel')) resolve(); });
      ws.on('error', reject);
    });
    await new Promise<void>((resolve) => ws.on('open', () => { ws.send(JSON.stringify({ since })); resolve(); }));
    // The airline's commit first: the hotel's feeds must not report it, and still end on the hotel's.
    assert.equal((await req(`${air}/live-air`, { method: 'PUT', json: {} })).status, 201);
    assert.equal((await req(`${hotel}/live-hotel`, { method: 'PUT', json: { tag: 'rooms' } })).status, 201);
    const lp = await longpoll;
    assert.deepEqual(lp.body.results.map((r: { id: string }) => r.id), ['live-hotel']);
    const cont = (await continuous).text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l).id);
    assert.deepEqual(cont, ['live-air']);
    await wsGot;
    ws.close();
    const wsIds = wsMessages.filter((m) => m.startsWith('[')).flatMap((m) => (JSON.parse(m) as { id: string }[]).map((e) => e.id));
    assert.deepEqual(wsIds, ['live-hotel']);
  });
});
