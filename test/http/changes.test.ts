import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'node:http';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

describe('_changes feeds (admin view: every document)', () => {
  let gw: TestGateway;
  let db: string;
  before(async () => {
    gw = await startGateway();
    db = `${gw.adminUrl}/db`;
    for (let i = 1; i <= 5; i++) await req(`${db}/d${i}`, { method: 'PUT', json: { i, channels: i % 2 ? ['odd'] : ['even'] } });
  });
  after(() => gw.stop());

  test('normal feed: exact body framing, since, limit, last_seq as a string', async () => {
    const raw = await fetch(`${db}/_changes?limit=2`);
    assert.equal(raw.headers.get('cache-control'), 'private, max-age=0, no-cache, no-store');
    const text = await raw.text();
    // The GUEST user saved at start-up took a sequence of its own: d1 follows it.
    const s1 = JSON.parse(text).results[0].seq;
    assert.ok(text.startsWith(`{"results":[\r\n{"seq":${s1},"id":"d1","changes":[{"rev":"1-`), text);
    assert.ok(text.includes(`\n,{"seq":${s1 + 1},"id":"d2"`), text);
    assert.ok(text.endsWith(`],\n"last_seq":"${s1 + 1}"}\n`), text);
    const rest = await req(`${db}/_changes?since=${s1 + 1}`);
    assert.deepEqual(rest.body.results.map((e: any) => e.id), ['d3', 'd4', 'd5']);
    assert.equal(rest.body.last_seq, String(s1 + 4));
    const none = await req(`${db}/_changes?since=${s1 + 4}`);
    assert.deepEqual(none.body, { results: [], last_seq: String(s1 + 4) });
    assert.equal((await req(`${db}/_changes?since=abc`)).status, 400);
    assert.equal((await req(`${db}/_changes?feed=bogus`)).status, 400);
  });

  test('each doc only at its latest sequence; deletions flagged; style=all_docs; include_docs; active_only', async () => {
    const d1 = (await req(`${db}/d1`)).body._rev;
    const del = await req(`${db}/d1?rev=${d1}`, { method: 'DELETE' });
    const feed = await req(`${db}/_changes?include_docs=true`);
    const ids = feed.body.results.map((e: any) => e.id);
    assert.equal(ids.filter((i: string) => i === 'd1').length, 1);
    const last = feed.body.results.at(-1);
    assert.equal(last.id, 'd1');
    assert.equal(last.deleted, true);
    assert.deepEqual(last.changes, [{ rev: del.body.rev }]);
    assert.equal(last.doc._deleted, true);
    assert.equal(feed.body.results[0].doc.i, 2);
    const active = await req(`${db}/_changes?active_only=true`);
    assert.ok(!active.body.results.some((e: any) => e.id === 'd1'));
    await req(`${db}/_bulk_docs`, { method: 'POST', json: { new_edits: false, docs: [{ _id: 'cf', _rev: '1-a' }, { _id: 'cf', _rev: '1-b' }] } });
    const all = await req(`${db}/_changes?style=all_docs&filter=_doc_ids&doc_ids=["cf"]`);
    assert.deepEqual(all.body.results[0].changes, [{ rev: '1-b' }, { rev: '1-a' }]);
    const post = await req(`${db}/_changes`, { method: 'POST', json: { filter: '_doc_ids', doc_ids: ['d2', 'd4'] } });
    assert.deepEqual(post.body.results.map((e: any) => e.id), ['d2', 'd4']);
    const ch = await req(`${db}/_changes?filter=sync_gateway/bychannel&channels=even`);
    assert.deepEqual(ch.body.results.map((e: any) => e.id), ['d2', 'd4']);
  });

  test('a design doc filter or view is 404 (no design documents exist), other unknown filters 400', async () => {
    for (const q of ['filter=foo/odd', 'filter=_view&view=foo/odd']) {
      const r = await req(`${db}/_changes?${q}`);
      assert.equal(r.status, 404, q);
      assert.deepEqual(r.body, { error: 'not_found', reason: 'missing' }, q);
    }
    const posted = await req(`${db}/_changes`, { method: 'POST', json: { filter: 'foo/odd' } });
    assert.equal(posted.status, 404);
    for (const q of ['filter=_view', 'filter=nonsense']) assert.equal((await req(`${db}/_changes?${q}`)).status, 400, q);
  });

  test('longpoll waits for the next write, then returns it', async () => {
    const since = (await req(`${db}/_changes`)).body.last_seq;
    const started = Date.now();
    const pending = req(`${db}/_changes?feed=longpoll&since=${since}`);
    await new Promise((r) => setTimeout(r, 200));
    await req(`${db}/lp`, { method: 'PUT', json: { x: 1 } });
    const res = await pending;
    assert.deepEqual(res.body.results.map((e: any) => e.id), ['lp']);
    assert.ok(Date.now() - started < 5000);
    const timeout = await req(`${db}/_changes?feed=longpoll&since=${res.body.last_seq}&timeout=300`);
    assert.deepEqual(timeout.body, { results: [], last_seq: res.body.last_seq });
  });

  test('continuous feed streams lines, including later writes', async () => {
    const since = (await req(`${db}/_changes`)).body.last_seq;
    const lines: any[] = [];
    await new Promise<void>((resolve, reject) => {
      const r = request(`${db}/_changes?feed=continuous&since=${Number(since) - 1}`, (res) => {
        assert.equal(res.headers['content-type'], 'application/octet-stream');
        let buf = '';
        res.on('data', (chunk) => {
          buf += chunk;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim()) lines.push(JSON.parse(line));
            if (lines.length === 1 && line.trim()) void req(`${db}/cont`, { method: 'PUT', json: {} });
            if (lines.length === 2) { r.destroy(); resolve(); }
          }
        });
      });
      r.on('error', (e) => (lines.length >= 2 ? resolve() : reject(e)));
      r.end();
    });
    assert.equal(lines[1].id, 'cont');
    assert.ok(lines[1].seq > lines[0].seq);
  });

  test('websocket feed: options as first message, batches as arrays, live changes', async () => {
    const ws = new WebSocket(`${db.replace('http', 'ws')}/_changes?feed=websocket`);
    const messages: string[] = [];
    const got = new Promise<void>((resolve, reject) => {
      ws.on('message', (m) => {
        messages.push(m.toString());
        if (m.toString() === '[]') void req(`${db}/wsdoc`, { method: 'PUT', json: {} });
        if (m.toString().includes('wsdoc')) resolve();
      });
      ws.on('error', reject);
    });
    ws.on('open', () => ws.send(JSON.stringify({ since: 0, include_docs: false })));
    await got;
    ws.close();
    const first = JSON.parse(messages[0]);
    assert.ok(Array.isArray(first) && first.length > 0);
    assert.ok(messages.includes('[]'), 'caught-up marker sent');
  });
});
