/**
 * `_resync` on a database with named collections (Sync Gateway 3.1): every collection by default,
 * or those named in `scopes`; an unknown one is a 404 and starts nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('_resync over named collections', () => {
  let gw: TestGateway;
  const admin = (path: string, init: Parameters<typeof req>[1] = {}) => req(`${gw.adminUrl}${path}`, init);

  async function finished(): Promise<Record<string, unknown>> {
    for (let i = 0; i < 600; i++) {
      const r = (await admin('/travel/_resync')).body;
      if (r.status !== 'running' && r.status !== 'stopping') return r;
      await sleep(50);
    }
    throw new Error('_resync never ended');
  }

  before(async () => {
    gw = await startGateway({
      databases: {
        travel: {
          server: 'memory:',
          scopes: { inventory: { collections: { airline: { sync: 'function(doc){ channel(doc.region); }' }, hotel: {}, car: {} } } },
        },
      },
    });
    for (let i = 0; i < 5; i++) assert.equal((await admin(`/travel.inventory.airline/a${i}`, { method: 'PUT', json: { region: 'eu' } })).status, 201);
    for (let i = 0; i < 3; i++) assert.equal((await admin(`/travel.inventory.hotel/h${i}`, { method: 'PUT', json: {} })).status, 201);
    for (let i = 0; i < 2; i++) assert.equal((await admin(`/travel.inventory.car/c${i}`, { method: 'PUT', json: {} })).status, 201);
    assert.equal((await admin('/travel/_offline', { method: 'POST' })).status, 200);
  });
  after(() => gw?.stop());

  test('scopes names the collections a run covers; its status lists them', async () => {
    const started = await admin('/travel/_resync?action=start', { method: 'POST', json: { scopes: { inventory: ['hotel', 'car'] } } });
    assert.equal(started.status, 200, started.text);
    const done = await finished();
    assert.equal(done.status, 'completed');
    assert.equal(done.docs_processed, 5, 'hotel and car only');
    assert.deepEqual(done.collections_processing, { inventory: ['hotel', 'car'] });
  });

  test('without scopes every collection is covered', async () => {
    assert.equal((await admin('/travel/_resync?action=start', { method: 'POST' })).status, 200);
    const done = await finished();
    assert.equal(done.docs_processed, 10);
    assert.deepEqual(done.collections_processing, { inventory: ['airline', 'hotel', 'car'] });
  });

  test('an unknown collection is a 404 and starts nothing', async () => {
    const before = (await admin('/travel/_resync')).body;
    const r = await admin('/travel/_resync?action=start', { method: 'POST', json: { scopes: { inventory: ['boat'] } } });
    assert.equal(r.status, 404);
    assert.equal(r.body.reason, 'keyspace travel.inventory.boat not found');
    assert.equal((await admin('/travel/')).body.state, 'Offline', 'the database did not go Resyncing');
    assert.equal((await admin('/travel/_resync')).body.resync_id, before.resync_id);
  });
});
