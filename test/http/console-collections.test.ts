/**
 * The console's admin routes on a database with named collections: the sync function dry run runs
 * the named collection's own function (`POST /{db}.{scope}.{collection}/_sync`), and the access
 * explanation puts `collection_access` grants and a named collection's document grants under
 * `collections`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const TRAVEL = {
  scopes: {
    inventory: {
      collections: {
        airline: {},
        hotel: { sync: 'function (doc) { channel(doc.tag); if (doc.members) access(doc.members, doc.room); }' },
      },
    },
  },
};

describe('dry run and access provenance on named collections', () => {
  let gw: TestGateway;
  const admin = (path: string, init: Parameters<typeof req>[1] = {}) => req(`${gw.adminUrl}${path}`, init);
  before(async () => {
    gw = await startGateway({ bootstrap: { logging: { console: { log_level: 'warn' } } } });
    const created = await admin('/travel/', { method: 'PUT', json: TRAVEL });
    assert.equal(created.status, 201, created.text);
  });
  after(() => gw?.stop());

  test('each keyspace runs its own collection\'s function; doc_id reads that collection', async () => {
    let r = await admin('/travel.inventory.hotel/_sync', { method: 'POST', json: { doc: { tag: 't1', members: ['bob'], room: 'suite' } } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.body.channels, r.body.access], [['t1'], { bob: ['suite'] }]);
    // A named collection without a function of its own: Sync Gateway's default for it, channel("airline").
    r = await admin('/travel.airline/_sync', { method: 'POST', json: { doc: { channels: ['ignored'] } } });
    assert.deepEqual(r.body.channels, ['airline']);
    assert.equal((await admin('/travel.hotel/h1', { method: 'PUT', json: { tag: 'stored' } })).status, 201);
    r = await admin('/travel.hotel/_sync', { method: 'POST', json: { doc_id: 'h1' } });
    assert.deepEqual(r.body.channels, ['stored']);
    assert.equal((await admin('/travel.airline/_sync', { method: 'POST', json: { doc_id: 'h1' } })).status, 404, 'h1 is the hotel collection\'s');
    assert.equal((await admin('/travel.nope/_sync', { method: 'POST', json: { doc: {} } })).status, 404);
  });

  test('collection_access and a named collection\'s document grant show under collections', async () => {
    const put = await admin('/travel/_user/alice', { method: 'PUT', json: { password: 'alice-pw-1', collection_access: { inventory: { airline: { admin_channels: ['crew'] } } } } });
    assert.equal(put.status, 201, put.text);
    assert.equal((await admin('/travel.hotel/grant1', { method: 'PUT', json: { tag: 'x', members: ['alice'], room: 'suite-9' } })).status, 201);
    const r = await admin('/travel/_user/alice/_access');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body.channels), ['!'], 'nothing in the default collection');
    const air = r.body.collections['inventory.airline'];
    const hotel = r.body.collections['inventory.hotel'];
    assert.deepEqual(air.crew.sources.map((s: { type: string }) => s.type), ['admin']);
    assert.deepEqual(hotel['suite-9'].sources, [{ type: 'document', doc_id: 'grant1', since: hotel['suite-9'].since, collection: 'inventory.hotel' }]);
    // The same channels as the user's collection_access all_channels.
    const user = (await admin('/travel/_user/alice')).body;
    assert.deepEqual(Object.keys(air), user.collection_access.inventory.airline.all_channels);
    assert.deepEqual(Object.keys(hotel), user.collection_access.inventory.hotel.all_channels);
  });
});
