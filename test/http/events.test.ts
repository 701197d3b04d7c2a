/**
 * Sync Gateway's event handlers (spec §4): document_changed and db_state_changed webhooks posted to
 * a real receiver on a free port, from REST and BLIP writes; filters, winning_rev_only, the queue's
 * drop policy, and configs refused naming the key.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/index.ts';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import { BlipClient, LocalDb } from '../helpers/blip-client.ts';

const hook = (url: string, extra: Record<string, unknown> = {}) => ({ handler: 'webhook', url, ...extra });

describe('document_changed webhooks', () => {
  let gw: TestGateway;
  let rx: WebhookReceiver;
  before(async () => {
    rx = await startReceiver();
    gw = await startGateway({
      databases: {
        db: {
          server: 'memory:',
          event_handlers: {
            // One at a time: events leave the queue in order, so "not posted" can be shown by a later event arriving.
            max_processes: 1,
            document_changed: [
              hook(`${rx.url}/all`),
              hook(`${rx.url}/winners`, { options: { winning_rev_only: true } }),
              hook(`${rx.url}/yes`, { filter: 'function(doc, oldDoc) { return doc.kind === "order"; }' }),
              hook(`${rx.url}/string`, { filter: 'function(doc) { return doc.kind === "order" ? "true" : "false"; }' }),
              hook(`${rx.url}/throws`, { filter: 'function(doc) { throw new Error("no"); }' }),
              hook(`${rx.url}/old`, { filter: 'function(doc, oldDoc) { return oldDoc !== null && oldDoc.n === 1; }' }),
              hook(`http://alice:s3cret@127.0.0.1:${rx.port}/auth`, { filter: 'function(doc) { return doc._id === "auth"; }' }),
            ],
          },
        },
      },
    });
  });
  after(async () => { await gw?.stop(); await rx?.close(); });

  test('a REST write posts the winning body with _id and _rev; an update and a deletion follow in order', async () => {
    const put = await req(`${gw.publicUrl}/db/rest1`, { method: 'PUT', json: { n: 1, kind: 'note' } });
    assert.equal(put.status, 201);
    const upd = await req(`${gw.publicUrl}/db/rest1?rev=${put.body.rev}`, { method: 'PUT', json: { n: 2, kind: 'note' } });
    const del = await req(`${gw.publicUrl}/db/rest1?rev=${upd.body.rev}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await rx.until(() => rx.at('/all').filter((r) => r.body._id === 'rest1').length === 3, 'three events of rest1');
    const got = rx.at('/all').filter((r) => r.body._id === 'rest1').map((r) => r.body);
    assert.deepEqual(got, [
      { _id: 'rest1', _rev: put.body.rev, n: 1, kind: 'note' },
      { _id: 'rest1', _rev: upd.body.rev, n: 2, kind: 'note' },
      { _id: 'rest1', _rev: del.body.rev, _deleted: true },
    ]);
    const r = rx.at('/all').find((x) => x.body._id === 'rest1')!;
    assert.equal(r.headers['content-type'], 'application/json');
    // oldDoc is the parent revision: only the update (whose parent has n=1) passes the /old filter.
    await rx.until(() => rx.at('/old').some((x) => x.body._id === 'rest1'), 'the update at /old');
    assert.deepEqual(rx.at('/old').filter((x) => x.body._id === 'rest1').map((x) => x.body._rev), [upd.body.rev]);
  });

  test('a BLIP push posts each pushed revision like a REST write', async () => {
    const c = await BlipClient.connect(`${gw.publicUrl}/db`);
    const local = new LocalDb();
    local.put('blip1', { from: 'cbl', kind: 'order' });
    assert.equal((await c.push(local)).sent, 1);
    await c.close();
    const rev = local.current('blip1')!;
    await rx.until(() => rx.at('/all').some((r) => r.body._id === 'blip1'), 'the BLIP write');
    assert.deepEqual(rx.at('/all').find((r) => r.body._id === 'blip1')!.body, { _id: 'blip1', _rev: rev, from: 'cbl', kind: 'order' });
  });

  test('a conflicting branch that does not win posts the winner body; winning_rev_only skips it', async () => {
    const w = await req(`${gw.adminUrl}/db/_bulk_docs`, {
      method: 'POST', json: { new_edits: false, docs: [{ _id: 'c1', _rev: '2-bbbb', _revisions: { start: 2, ids: ['bbbb', 'aaaa'] }, side: 'winner' }] },
    });
    assert.equal(w.status, 201);
    await req(`${gw.adminUrl}/db/_bulk_docs`, {
      method: 'POST', json: { new_edits: false, docs: [{ _id: 'c1', _rev: '2-0000', _revisions: { start: 2, ids: ['0000', 'aaaa'] }, side: 'loser' }] },
    });
    // A later write: once it has arrived at /winners, the loser's event (queued before it) was decided.
    await req(`${gw.publicUrl}/db/c1-after`, { method: 'PUT', json: {} });
    await rx.until(() => rx.at('/winners').some((r) => r.body._id === 'c1-after') && rx.at('/all').some((r) => r.body._id === 'c1-after'), 'the later write');
    const all = rx.at('/all').filter((r) => r.body._id === 'c1').map((r) => r.body);
    assert.deepEqual(all, [{ _id: 'c1', _rev: '2-bbbb', side: 'winner' }, { _id: 'c1', _rev: '2-bbbb', side: 'winner' }]);
    assert.deepEqual(rx.at('/winners').filter((r) => r.body._id === 'c1').map((r) => r.body._rev), ['2-bbbb']);
  });

  test('filters: true and "true" post, false and a throw do not; every other handler still gets the event', async () => {
    await req(`${gw.publicUrl}/db/f-order`, { method: 'PUT', json: { kind: 'order' } });
    await req(`${gw.publicUrl}/db/f-note`, { method: 'PUT', json: { kind: 'note' } });
    await req(`${gw.publicUrl}/db/f-last`, { method: 'PUT', json: {} });
    await rx.until(() => rx.at('/all').some((r) => r.body._id === 'f-last'), 'the last write');
    const ids = (p: string) => rx.at(p).map((r) => r.body._id).filter((id: string) => id.startsWith('f-'));
    assert.deepEqual(ids('/yes'), ['f-order']);
    assert.deepEqual(ids('/string'), ['f-order']);
    assert.deepEqual(rx.at('/throws'), []);
    const status = await req(`${gw.adminUrl}/db/_event_handlers`);
    assert.equal(status.status, 200);
    const throws = status.body.handlers.find((h: any) => h.url.endsWith('/throws'));
    assert.ok(throws.filtered >= 3, `throwing filter counted as filtered: ${JSON.stringify(throws)}`);
    assert.equal(throws.delivered, 0);
  });

  test('credentials in the URL go as Basic auth and never into the logs or the status', async () => {
    await req(`${gw.publicUrl}/db/auth`, { method: 'PUT', json: {} });
    await rx.until(() => rx.at('/auth').length === 1, 'the authenticated POST');
    assert.equal(rx.at('/auth')[0].headers.authorization, 'Basic ' + Buffer.from('alice:s3cret').toString('base64'));
    const status = await req(`${gw.adminUrl}/db/_event_handlers`);
    assert.ok(!status.text.includes('s3cret'));
    assert.ok(status.body.handlers.some((h: any) => h.url === `http://xxxxx:xxxxx@127.0.0.1:${rx.port}/auth`));
    assert.ok(!gw.logs.some((l) => l.includes('s3cret')));
  });

  test('Prometheus metrics show each handler\'s outcomes, as _event_handlers does', async () => {
    const status = (await req(`${gw.adminUrl}/db/_event_handlers`)).body.handlers;
    const text = (await req(`${gw.metricsUrl}/_metrics`)).text;
    const all = status.find((h: any) => h.url.endsWith('/all'));
    assert.ok(all.delivered > 0);
    const line = (outcome: string) => new RegExp(`^syncgate_event_handler_events\\{database="db",handler="document_changed\\[0\\]",delivery="best_effort",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1];
    assert.ok(Number(line('delivered')) >= all.delivered, text);
    assert.equal(line('dropped'), '0');
    assert.match(text, /^syncgate_event_handler_events\{database="db",handler="document_changed\[4\]",delivery="best_effort",outcome="filtered"\} [1-9]/m);
    assert.match(text, /^syncgate_event_handler_pending\{database="db",handler="document_changed\[0\]",delivery="best_effort"\} \d+$/m);
    assert.ok(!text.includes('s3cret'));
    const expvar = await req(`${gw.metricsUrl}/_expvar`);
    assert.equal(expvar.status, 200);
  });

  test('_event_handlers is admin only', async () => {
    assert.equal((await req(`${gw.publicUrl}/db/_event_handlers`)).status, 404);
  });
});

describe('the queue: full means wait up to wait_for_process, then drop; the write succeeds', () => {
  test('a receiver that never answers: writes go on, events beyond the queue are dropped and counted', async () => {
    const rx = await startReceiver();
    rx.answer = () => 'hang';
    const gw = await startGateway({
      databases: { db: { server: 'memory:', event_handlers: { max_processes: 1, wait_for_process: '0', document_changed: [hook(`${rx.url}/hang`)] } } },
    });
    try {
      for (let i = 0; i < 20; i++) assert.equal((await req(`${gw.publicUrl}/db/d${i}`, { method: 'PUT', json: { i } })).status, 201);
      const status = (await req(`${gw.adminUrl}/db/_event_handlers`)).body.handlers[0];
      // One in flight plus a queue of 3 × max_processes; the rest were dropped.
      assert.equal(status.dropped, 16, JSON.stringify(status));
      assert.equal(status.pending, 4);
      assert.ok(gw.logs.some((l) => l.includes('Event queue full - discarding event')));
      const all = await req(`${gw.adminUrl}/db/_all_docs`);
      assert.equal(all.body.rows.length, 20);
    } finally {
      await rx.close();
      await gw.stop();
    }
  });
});

describe('a receiver answering with a huge body', () => {
  test('a 64 MB answer per POST is drained, not kept: every event counts as delivered and none is left pending', async () => {
    const rx = await startReceiver();
    rx.answer = () => ({ bytes: 64 * 1024 * 1024 });
    const gw = await startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [hook(`${rx.url}/huge`)] } } } });
    try {
      for (let i = 0; i < 4; i++) assert.equal((await req(`${gw.publicUrl}/db/h${i}`, { method: 'PUT', json: { i } })).status, 201);
      await rx.until(() => rx.received.length === 4, 'four POSTs');
      let s: any;
      for (let tries = 0; tries < 600; tries++) {
        s = (await req(`${gw.adminUrl}/db/_event_handlers`)).body.handlers[0];
        if (s.delivered === 4) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual([s.delivered, s.failed, s.pending], [4, 0, 0]);
    } finally {
      await gw.stop();
      await rx.close();
    }
  });
});

describe('db_state_changed webhooks', () => {
  test('start posts online "DB loaded from config"; a state change and the shutdown post offline', async () => {
    const rx = await startReceiver();
    const gw = await startGateway({
      config: { adminInterface: '127.0.0.1:4985' },
      databases: {
        db: {
          server: 'memory:',
          event_handlers: {
            db_state_changed: [hook(`${rx.url}/state`), hook(`${rx.url}/onlyoffline`, { filter: 'function(s) { return s.state === "offline"; }' })],
          },
        },
      },
    });
    let stopped = false;
    try {
      await rx.until(() => rx.at('/state').length === 1, 'the start event');
      const first = rx.at('/state')[0].body;
      assert.deepEqual({ ...first, localtime: undefined }, { admininterface: '127.0.0.1:4985', dbname: 'db', localtime: undefined, reason: 'DB loaded from config', state: 'online' });
      assert.match(first.localtime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
      // The admin API's own transitions: Online -> Stopping -> Offline, Offline -> Starting -> Online;
      // the passing states post nothing.
      assert.equal((await fetch(`${gw.adminUrl}/db/_offline`, { method: 'POST' })).status, 200);
      await rx.until(() => rx.at('/state').length === 2, 'the offline event');
      assert.deepEqual([rx.at('/state')[1].body.state, rx.at('/state')[1].body.reason], ['offline', 'ADMIN Request']);
      assert.equal((await fetch(`${gw.adminUrl}/db/_online`, { method: 'POST' })).status, 200);
      await rx.until(() => rx.at('/state').length === 3, 'the online event');
      assert.equal(rx.at('/state')[2].body.reason, 'DB loaded from config');
      assert.equal(rx.at('/state')[2].body.state, 'online');
      await gw.stop();
      stopped = true;
      await rx.until(() => rx.at('/state').length === 4, 'the shutdown event');
      assert.deepEqual([rx.at('/state')[3].body.state, rx.at('/state')[3].body.reason], ['offline', 'Database context closed']);
      assert.deepEqual(rx.at('/onlyoffline').map((r) => r.body.reason), ['ADMIN Request', 'Database context closed']);
    } finally {
      if (!stopped) await gw.stop();
      await rx.close();
    }
  });
});

describe('filters run under a time limit', () => {
  test('an endless filter is stopped and counts as "no"; the write succeeded and the next event is handled', async () => {
    const rx = await startReceiver();
    const gw = await startGateway({
      databases: { db: { server: 'memory:', event_handlers: { max_processes: 1, document_changed: [
        hook(`${rx.url}/loops`, { filter: 'function(doc) { if (doc.loop) { while (true) {} } return true; }' }),
      ] } } },
    });
    try {
      assert.equal((await req(`${gw.publicUrl}/db/a`, { method: 'PUT', json: { loop: true } })).status, 201);
      assert.equal((await req(`${gw.publicUrl}/db/b`, { method: 'PUT', json: {} })).status, 201);
      await rx.until(() => rx.at('/loops').length === 1, 'the event after the endless filter');
      assert.deepEqual(rx.at('/loops').map((r) => r.body._id), ['b']);
      // `delivered` counts once the gateway has read the answer, which may be after the receiver
      // logged the POST (the client reads the answer after the receiver's handler has run).
      let status: any;
      for (let tries = 0; tries < 600; tries++) {
        status = (await req(`${gw.adminUrl}/db/_event_handlers`)).body.handlers[0];
        if (status.delivered === 1) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual([status.filtered, status.delivered], [1, 1]);
    } finally {
      await gw.stop();
      await rx.close();
    }
  });
});

describe('bad event_handlers configs are refused naming the key', () => {
  const load = (handlers: unknown) => () => parseConfigText(JSON.stringify({ databases: { db: { server: 'memory:', event_handlers: handlers } } }), 'test');
  test('handler type, url, options, delivery keys', () => {
    assert.throws(load({ document_changed: [{ handler: 'email', url: 'http://x' }] }), /databases\.db\.event_handlers\.document_changed\[0\]\.handler: Unknown event handler type "email"/);
    assert.throws(load({ document_changed: [{ handler: 'webhook' }] }), /document_changed\[0\]\.url: a webhook needs a url/);
    assert.throws(load({ document_changed: [{ handler: 'webhook', url: 'ftp://x/' }] }), /document_changed\[0\]\.url: not an http\(s\) URL/);
    assert.throws(load({ document_changed: [{ handler: 'webhook', url: 'not a url' }] }), /document_changed\[0\]\.url/);
    assert.throws(load({ document_changed: [{ handler: 'webhook', url: 'http://x/', options: { winning_rev_only: true, other: 1 } }] }), /document_changed\[0\]\.options\.other/);
    assert.throws(load({ document_changed: [{ handler: 'webhook', url: 'http://x/', options: { winning_rev_only: 'yes' } }] }), /options\.winning_rev_only/);
    assert.throws(load({ db_state_changed: [{ handler: 'webhook', url: 'http://x/', options: { winning_rev_only: true } }] }), /db_state_changed\[0\]\.options: db_state_changed handlers take no options/);
    assert.throws(load({ document_changed: [{ handler: 'webhook', url: 'http://x/', batch_size: 5 }] }), /document_changed\[0\]\.batch_size: applies only with "delivery": "at_least_once"/);
    assert.throws(load({ document_changed: [{ handler: 'webhook', url: 'http://x/', delivery: 'sometimes' }] }), /document_changed\[0\]\.delivery/);
    assert.throws(load({ max_processes: -1 }), /event_handlers\.max_processes/);
    assert.throws(load({ colour: 'red' }), /event_handlers\.colour/);
  });

  test('a filter that does not compile stops start-up, and PUT /{db}/ answers 400 naming it', async () => {
    await assert.rejects(startGateway({ databases: { db: { server: 'memory:', event_handlers: { document_changed: [hook('http://127.0.0.1:9/', { filter: 'function( {' })] } } } }),
      /databases\.db\.event_handlers\.document_changed\[0\]\.filter: the filter does not compile/);
    const gw = await startGateway();
    try {
      const r = await req(`${gw.adminUrl}/other/`, { method: 'PUT', json: { server: 'memory:', event_handlers: { db_state_changed: [hook('http://127.0.0.1:9/', { filter: '42' })] } } });
      assert.equal(r.status, 400);
      assert.match(r.body.reason, /databases\.other\.event_handlers\.db_state_changed\[0\]\.filter: the filter must be a function/);
      assert.equal((await req(`${gw.adminUrl}/other/`)).status, 404, 'nothing was opened');
    } finally {
      await gw.stop();
    }
  });
});
