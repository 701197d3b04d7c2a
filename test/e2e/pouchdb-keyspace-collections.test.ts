/**
 * PouchDB replicating one named collection through its keyspace URL
 * (`http://host/travel.inventory.airline`, and the short `travel.airline`) both ways, while the
 * database's other collection keeps its own documents. The database is configured over REST with
 * `scopes`, as in Sync Gateway 3.1; replication runs against the admin port (per-collection grants
 * are the access model's tests).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { localDb, remoteDb } from '../helpers/pouchdb.ts';

async function contents(db: any): Promise<Map<string, any>> {
  const res = await db.allDocs({ include_docs: true, attachments: true });
  return new Map(res.rows.map((r: any) => [r.id, r.doc]));
}

describe('PouchDB replicates one named collection through its keyspace URL', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ bootstrap: { logging: { console: { log_level: 'warn' } } } });
    const created = await req(`${gw.adminUrl}/travel/`, {
      method: 'PUT', json: { scopes: { inventory: { collections: { airline: {}, hotel: {} } } } },
    });
    assert.equal(created.status, 201, created.text);
  });
  after(() => gw?.stop());

  test('push to travel.inventory.airline, pull from travel.airline; the hotel keeps its own', async () => {
    const airline = `${gw.adminUrl}/travel.inventory.airline`;
    const hotel = `${gw.adminUrl}/travel.inventory.hotel`;
    // A document of the same id in the other collection must stay as it is.
    assert.equal((await req(`${hotel}/fl-00`, { method: 'PUT', json: { hotel: true } })).status, 201);
    const source = localDb();
    await source.bulkDocs(Array.from({ length: 40 }, (_, i) => ({ _id: `fl-${String(i).padStart(2, '0')}`, i })));
    await source.putAttachment('fl-01', 'ticket.txt', (await source.get('fl-01'))._rev, Buffer.from('seat 12A'), 'text/plain');
    const push = await source.replicate.to(remoteDb(airline));
    assert.equal(push.ok, true);
    assert.equal(push.docs_written, 40);
    assert.equal((await req(`${airline}/_all_docs`)).body.rows.length, 40);
    assert.deepEqual((await req(`${hotel}/_all_docs`)).body.rows.map((r: { id: string }) => r.id), ['fl-00']);
    assert.equal((await req(`${hotel}/fl-00`)).body.hotel, true);
    // A server-side edit in the airline collection, then a pull through the short keyspace.
    const doc = await req(`${airline}/fl-02`);
    assert.equal((await req(`${airline}/fl-02`, { method: 'PUT', json: { ...doc.body, edited: true } })).status, 201);
    const target = localDb();
    const pull = await target.replicate.from(remoteDb(`${gw.adminUrl}/travel.airline`));
    assert.equal(pull.ok, true);
    assert.equal(pull.docs_written, 40);
    const got = await contents(target);
    assert.equal(got.size, 40);
    assert.equal(got.get('fl-00').i, 0);
    assert.equal(got.get('fl-02').edited, true);
    assert.equal(Buffer.from(got.get('fl-01')._attachments['ticket.txt'].data, 'base64').toString(), 'seat 12A');
    // The checkpoints are the keyspace's: a second pull starts where the first ended.
    assert.equal((await target.replicate.from(remoteDb(`${gw.adminUrl}/travel.airline`))).docs_written, 0);
    // And the other way round: the puller edits, pushes back, the airline has it and the hotel does not.
    await target.put({ ...got.get('fl-03'), back: true });
    const pushBack = await target.replicate.to(remoteDb(airline));
    assert.equal(pushBack.docs_written, 1);
    assert.equal((await req(`${airline}/fl-03`)).body.back, true);
    assert.equal((await req(`${hotel}/fl-03`)).status, 404);
    // Pulling the hotel collection gets only its one document.
    const hotelCopy = localDb();
    assert.equal((await hotelCopy.replicate.from(remoteDb(hotel))).docs_written, 1);
  });
});
