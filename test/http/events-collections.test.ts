/**
 * Webhooks on a database with named collections: a write in any collection raises
 * document_changed with that collection's document (the winner read from its own collection,
 * never the default one's same id).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';

describe('document_changed webhooks with named collections', () => {
  let gw: TestGateway;
  let rx: WebhookReceiver;
  before(async () => {
    rx = await startReceiver();
    gw = await startGateway({
      databases: {
        travel: {
          server: 'memory:',
          scopes: { inventory: { collections: { airline: {}, hotel: {} } } },
          event_handlers: { max_processes: 1, document_changed: [{ handler: 'webhook', url: `${rx.url}/all` }] },
        },
      },
    });
  });
  after(async () => { await gw?.stop(); await rx?.close(); });

  test('each collection\'s write posts its own body; a conflict that keeps the old winner posts that winner from the same collection', async () => {
    const admin = gw.adminUrl;
    assert.equal((await req(`${admin}/travel.inventory.airline/same`, { method: 'PUT', json: { where: 'airline' } })).status, 201);
    assert.equal((await req(`${admin}/travel.inventory.hotel/same`, { method: 'PUT', json: { where: 'hotel' } })).status, 201);
    await rx.until(() => rx.at('/all').length >= 2, 'two posts');
    assert.deepEqual(rx.at('/all').map((r) => r.body.where), ['airline', 'hotel']);
    // A replicated losing branch (new_edits=false) leaves the winner in place: the post carries the
    // winner, which the handler has to read from the document's collection.
    const winner = (await req(`${admin}/travel.inventory.hotel/same`)).body._rev as string;
    const loser = { _id: 'same', _rev: '1-0000', _revisions: { start: 1, ids: ['0000'] }, where: 'losing branch' };
    assert.equal((await req(`${admin}/travel.inventory.hotel/_bulk_docs`, { method: 'POST', json: { docs: [loser], new_edits: false } })).status, 201);
    await rx.until(() => rx.at('/all').length >= 3, 'a third post');
    const third = rx.at('/all')[2].body;
    assert.equal(third._rev, winner);
    assert.equal(third.where, 'hotel');
  });
});

describe('at-least-once webhooks with named collections', () => {
  let gw: TestGateway;
  let rx: WebhookReceiver;
  before(async () => {
    rx = await startReceiver();
    gw = await startGateway({
      databases: {
        travel: {
          server: 'memory:',
          scopes: { inventory: { collections: { airline: {}, hotel: {} } } },
          event_handlers: { document_changed: [{ handler: 'webhook', url: `${rx.url}/reliable`, delivery: 'at_least_once' }] },
        },
      },
    });
  });
  after(async () => { await gw?.stop(); await rx?.close(); });

  test('follows every collection\'s changes, delivered in database sequence order', async () => {
    const order: string[] = [];
    for (let i = 0; i < 12; i++) {
      const coll = i % 3 === 0 ? 'hotel' : 'airline';
      const id = `d${i}`;
      assert.equal((await req(`${gw.adminUrl}/travel.inventory.${coll}/${id}`, { method: 'PUT', json: { coll, i } })).status, 201);
      order.push(`${coll}/${id}`);
    }
    await rx.until(() => rx.at('/reliable').length >= 12, 'twelve deliveries');
    assert.deepEqual(rx.at('/reliable').map((r) => `${r.body.coll}/${r.body._id}`), order);
  });

  test('pages cut short in one collection hold back the other\'s later changes until their turn', async () => {
    // Runs of 70 in one collection then the other: every read of 100 per collection is cut short
    // somewhere, so the merge must stop at the cut and pick up from there.
    const order: string[] = [];
    for (let run = 0; run < 6; run++) {
      const coll = run % 2 === 0 ? 'airline' : 'hotel';
      const docs = Array.from({ length: 70 }, (_, k) => ({ _id: `r${run}-${k}`, coll }));
      assert.equal((await req(`${gw.adminUrl}/travel.inventory.${coll}/_bulk_docs`, { method: 'POST', json: { docs } })).status, 201);
      order.push(...docs.map((d) => `${coll}/${d._id}`));
    }
    await rx.until(() => rx.at('/reliable').length >= 12 + order.length, 'every bulk change', 120_000);
    assert.deepEqual(rx.at('/reliable').slice(12).map((r) => `${r.body.coll}/${r.body._id}`), order);
  });
});
