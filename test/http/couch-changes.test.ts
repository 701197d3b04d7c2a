/** `_changes` details PouchDB relies on: CouchDB's leaf order with style=all_docs, and `_doc_ids` on live feeds. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'node:http';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('_changes: CouchDB compatibility', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.adminUrl}/db`;
  });
  after(() => gw.stop());

  const lastSeq = async () => (await req(`${db}/_changes`)).body.last_seq;
  /** Resolves once `n` longpoll feeds are waiting (the gauge counts a longpoll once its first read came back empty). */
  const longpollsWaiting = async (n: number) => {
    const line = `syncgate_changes_feeds_open{database="db",kind="longpoll"} ${n}`;
    for (let i = 0; i < 500; i++) {
      if ((await (await fetch(`${gw.metricsUrl}/metrics`)).text()).includes(line)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail(`no ${line}`);
  };

  test('style=all_docs lists the winner first, then live leaves before deleted ones, newest and greatest first', async () => {
    // Leaves: 2-a (live), 3-b (live, winner), 2-c (live), 3-d (deleted), 4-e (deleted), 2-f (live).
    const docs = [
      { _id: 'tree', _rev: '2-a', _revisions: { start: 2, ids: ['a', 'root'] } },
      { _id: 'tree', _rev: '3-b', _revisions: { start: 3, ids: ['b', 'x', 'root'] } },
      { _id: 'tree', _rev: '2-c', _revisions: { start: 2, ids: ['c', 'root'] } },
      { _id: 'tree', _rev: '3-d', _revisions: { start: 3, ids: ['d', 'y', 'root'] }, _deleted: true },
      { _id: 'tree', _rev: '4-e', _revisions: { start: 4, ids: ['e', 'w', 'v', 'root'] }, _deleted: true },
      { _id: 'tree', _rev: '2-f', _revisions: { start: 2, ids: ['f', 'root'] } },
    ];
    const w = await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs } });
    assert.ok(w.body.every((r: any) => !r.error), w.text);
    const feed = await req(`${db}/_changes?style=all_docs&filter=_doc_ids&doc_ids=["tree"]`);
    // CouchDB (couch_doc:to_doc_info): sorted descending by {not deleted, {generation, id}}.
    assert.deepEqual(feed.body.results[0].changes.map((c: any) => c.rev), ['3-b', '2-f', '2-c', '2-a', '4-e', '3-d']);
    assert.equal((await req(`${db}/tree`)).body._rev, '3-b');
    const main = await req(`${db}/_changes?filter=_doc_ids&doc_ids=["tree"]`);
    assert.deepEqual(main.body.results[0].changes, [{ rev: '3-b' }]);
  });

  test('a longpoll feed with doc_ids (in the query or a POST body) waits past other documents for a listed one', async () => {
    for (const viaBody of [false, true]) {
      const since = await lastSeq();
      const pending = viaBody
        ? req(`${db}/_changes?feed=longpoll&since=${since}&filter=_doc_ids`, { method: 'POST', json: { doc_ids: ['lp-wanted'] } })
        : req(`${db}/_changes?feed=longpoll&since=${since}&filter=_doc_ids&doc_ids=${encodeURIComponent('["lp-wanted"]')}`);
      await longpollsWaiting(1);
      // Written one after the other: the waiting feed must skip the first and answer with the second.
      await req(`${db}/lp-other-${viaBody}`, { method: 'PUT', json: {} });
      const put = await req(`${db}/lp-wanted`, { method: 'PUT', json: {}, ...(viaBody ? { headers: { 'if-match': (await req(`${db}/lp-wanted`)).body._rev } } : {}) });
      assert.equal(put.status, 201, put.text);
      const res = await pending;
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.results.map((e: any) => e.id), ['lp-wanted']);
    }
  });

  test('a continuous feed with doc_ids streams only the listed documents, old and new', async () => {
    await req(`${db}/ct-a`, { method: 'PUT', json: { v: 0 } });
    await req(`${db}/ct-skip`, { method: 'PUT', json: {} });
    const lines: any[] = [];
    await new Promise<void>((resolve, reject) => {
      const r = request(`${db}/_changes?feed=continuous&filter=_doc_ids&doc_ids=ct-a,ct-b`, (res) => {
        assert.equal(res.statusCode, 200);
        let buf = '';
        res.on('data', (chunk) => {
          buf += chunk;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            lines.push(JSON.parse(line));
            if (lines.length === 1) {
              void (async () => {
                await req(`${db}/ct-skip2`, { method: 'PUT', json: {} });
                await req(`${db}/ct-b`, { method: 'PUT', json: {} });
              })();
            }
            if (lines.length === 2) { r.destroy(); resolve(); }
          }
        });
      });
      r.on('error', (e) => (lines.length >= 2 ? resolve() : reject(e)));
      r.end();
    });
    assert.deepEqual(lines.map((l) => l.id), ['ct-a', 'ct-b']);
  });

  test('a websocket feed with doc_ids sends only the listed documents', async () => {
    await req(`${db}/ws-a`, { method: 'PUT', json: {} });
    const ws = new WebSocket(`${db.replace('http', 'ws')}/_changes?feed=websocket`);
    const batches: any[][] = [];
    const got = new Promise<void>((resolve, reject) => {
      ws.on('message', (m) => {
        const text = m.toString();
        if (text === '') return;
        const batch = JSON.parse(text);
        if (!Array.isArray(batch)) return reject(new Error(text));
        batches.push(batch);
        if (text === '[]') {
          void (async () => {
            await req(`${db}/ws-skip`, { method: 'PUT', json: {} });
            await req(`${db}/ws-b`, { method: 'PUT', json: {} });
          })();
        }
        if (batch.some((e: any) => e.id === 'ws-b')) resolve();
      });
      ws.on('error', reject);
    });
    ws.on('open', () => ws.send(JSON.stringify({ since: 0, filter: '_doc_ids', doc_ids: ['ws-a', 'ws-b'] })));
    await got;
    ws.close();
    assert.deepEqual(batches.flat().map((e) => e.id), ['ws-a', 'ws-b']);
  });
});
