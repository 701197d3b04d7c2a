import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient } from '../helpers/blip-client.ts';

/** Polls `GET /{db}/` until its state is `want` (bounded generously; no timing assertion). */
async function untilState(gw: TestGateway, want: string, db = 'db'): Promise<Record<string, unknown>> {
  for (let i = 0; i < 300; i++) {
    const r = await req(`${gw.adminUrl}/${db}/`);
    if (r.body.state === want) return r.body;
    await sleep(50);
  }
  throw new Error(`database never became ${want}`);
}

/** A continuous feed's whole response once the server ends it. */
function continuousFeed(url: string): { ended: Promise<string>; opened: Promise<void> } {
  let opened!: () => void;
  const openedP = new Promise<void>((r) => { opened = r; });
  const ended = new Promise<string>((resolve, reject) => {
    http.get(url, (res) => {
      let text = '';
      opened();
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve(text));
      res.on('error', reject);
    }).on('error', reject);
  });
  return { ended, opened: openedP };
}

describe('database states: _offline and _online', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(() => gw.stop());

  test('_offline ends live feeds (longpoll, continuous, websocket, BLIP) and refuses requests; _online serves feeds again', async () => {
    assert.equal((await req(`${gw.publicUrl}/db/a`, { method: 'PUT', json: { channels: ['x'] } })).status, 201);
    const since = (await req(`${gw.adminUrl}/db/`)).body.update_seq;
    const longpoll = req(`${gw.publicUrl}/db/_changes?feed=longpoll&since=${since}&timeout=600000`);
    const cont = continuousFeed(`${gw.publicUrl}/db/_changes?feed=continuous&since=${since}&timeout=600000`);
    await cont.opened;
    const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/db/_changes?feed=websocket`);
    const wsClosed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ since }));
    const blip = await BlipClient.connect(`${gw.publicUrl}/db`);
    const blipClosed = new Promise<void>((resolve) => blip.ws.once('close', () => resolve()));
    // Wait until every live feed is waiting on the notifier before going offline.
    const db = gw.gateway.get('db')!;
    for (let i = 0; i < 200 && db.notifier.waiting < 3; i++) await sleep(20);
    assert.ok(db.notifier.waiting >= 3);

    const off = await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' });
    assert.equal(off.status, 200);
    assert.equal(off.text, '');
    const lp = await longpoll;
    assert.equal(lp.status, 200);
    assert.deepEqual(lp.body.results, []);
    assert.equal(await cont.ended, '');
    assert.equal(await wsClosed, 1000);
    await blipClosed;

    const info = await req(`${gw.adminUrl}/db/`);
    assert.equal(info.body.state, 'Offline');
    assert.equal(info.body.update_seq, undefined);
    assert.equal(info.body.committed_update_seq, undefined);
    const refused = await req(`${gw.publicUrl}/db/a`);
    assert.equal(refused.status, 503);
    assert.deepEqual(refused.body, { error: 'Service Unavailable', reason: 'DB is currently under maintenance' });
    // Offline again is a no-op.
    assert.equal((await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);

    assert.equal((await req(`${gw.adminUrl}/db/_online`, { method: 'POST' })).status, 200);
    await untilState(gw, 'Online');
    assert.equal((await req(`${gw.adminUrl}/db/_online`, { method: 'POST' })).status, 200);
    // Feeds work again after going back online: a longpoll wakes on a new write.
    const seq2 = (await req(`${gw.adminUrl}/db/`)).body.update_seq;
    const lp2 = req(`${gw.publicUrl}/db/_changes?feed=longpoll&since=${seq2}&timeout=600000`);
    for (let i = 0; i < 200 && db.notifier.waiting < 1; i++) await sleep(20);
    assert.equal((await req(`${gw.publicUrl}/db/b`, { method: 'PUT', json: { channels: ['x'] } })).status, 201);
    assert.deepEqual((await lp2).body.results.map((r: { id: string }) => r.id), ['b']);
    // And replication over BLIP connects again.
    const again = await BlipClient.connect(`${gw.publicUrl}/db`);
    await again.close();
  });

  test('a write racing _offline either completes whole (it was in flight) or is refused whole', async () => {
    const docs = Array.from({ length: 2000 }, (_, i) => ({ _id: `race-${i}`, n: i, pad: 'x'.repeat(200) }));
    const write = req(`${gw.adminUrl}/db/_bulk_docs`, { method: 'POST', json: { docs } });
    const off = req(`${gw.adminUrl}/db/_offline`, { method: 'POST' });
    const [w, o] = await Promise.all([write, off]);
    assert.equal(o.status, 200);
    assert.ok(w.status === 201 || w.status === 503, `bulk: ${w.status}`);
    const store = gw.gateway.get('db')!.store;
    const stored = await store.getDocs(docs.map((d) => d._id));
    assert.equal(stored.size, w.status === 201 ? docs.length : 0, 'nothing half written');
    await req(`${gw.adminUrl}/db/_online`, { method: 'POST' });
    await untilState(gw, 'Online');
  });

  test('_online with a delay comes online later; _online while resyncing and _offline while starting are refused', async () => {
    assert.equal((await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
    assert.equal((await req(`${gw.adminUrl}/db/_online`, { method: 'POST', json: { delay: 3 } })).status, 200);
    // Right after the answer the database is still offline; it comes online by itself later.
    assert.equal((await req(`${gw.adminUrl}/db/`)).body.state, 'Offline');
    await untilState(gw, 'Online');

    const db = gw.gateway.get('db')!;
    db.setState('Resyncing');
    const r = await req(`${gw.adminUrl}/db/_online`, { method: 'POST' });
    assert.equal(r.status, 503);
    assert.equal(r.body.reason, 'Database _resync is in progress, this may take some time, try again later');
    db.setState('Starting');
    const s = await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' });
    assert.equal(s.status, 503);
    assert.equal(s.body.reason, 'Unable to take Database offline, database must be in Online state but was Starting');
    db.setState('Online');
    // A malformed body means no delay.
    assert.equal((await req(`${gw.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
    assert.equal((await req(`${gw.adminUrl}/db/_online`, { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } })).status, 200);
    await untilState(gw, 'Online');
    // Both are admin-only.
    assert.equal((await req(`${gw.publicUrl}/db/_offline`, { method: 'POST' })).status >= 400, true);
    assert.equal((await req(`${gw.adminUrl}/db/`)).body.state, 'Online');
  });
});
