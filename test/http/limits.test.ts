/**
 * Connection and size limits over real listeners: MaxIncomingConnections and per-address caps,
 * slowloris (headers, body) and idle connections with raw sockets, long feeds that must outlive
 * the request timeout, and document / attachment / body / batch / channel limits.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const portOf = (url: string) => Number(new URL(url).port);

/** A raw client: what it received, and when (ms after connecting) the server closed it. */
function rawClient(url: string, onConnect?: (s: net.Socket) => void) {
  const t0 = Date.now();
  const socket = net.connect(portOf(url), '127.0.0.1');
  let data = '';
  socket.on('data', (d) => { data += d.toString(); });
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - t0)));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => { onConnect?.(socket); resolve(); }));
  return { socket, closed, connected, data: () => data };
}

/**
 * Resolves with ms until the socket closed, or 'open' if it is still open after `ms`. The bounds
 * below are generous (a loaded 2-core CI machine): they catch a close that never comes, while what
 * closed the socket is told by content (no answer, a 408) and lower bounds, never by speed.
 */
const BOUND_MS = 30_000;
async function closedWithin(closed: Promise<number>, ms = BOUND_MS): Promise<number | 'open'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([closed, new Promise<'open'>((r) => { timer = setTimeout(() => r('open'), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** GET /db/ on a fresh connection, retried while the server has not yet seen the freed slots close. */
async function servedOnceFree(url: string, ms = BOUND_MS): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return (await req(`${url}/db/`, { headers: { connection: 'close' } })).status;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('MaxIncomingConnections', () => {
  // Its own gateway, with the default (long) header and idle timeouts: the held connections stay
  // open however slow the machine, so only the limit can close the extra one.
  test('connections past the limit are closed without an answer, and slots come back', async () => {
    const gw = await startGateway({ config: { MaxIncomingConnections: 4 } });
    try {
      const held = Array.from({ length: 4 }, () => rawClient(gw.publicUrl));
      await Promise.all(held.map((c) => c.connected));
      await new Promise((r) => setTimeout(r, 50));
      const extra = rawClient(gw.publicUrl, (s) => s.write('GET /db/ HTTP/1.1\r\nHost: x\r\n\r\n'));
      const t = await closedWithin(extra.closed);
      assert.notEqual(t, 'open', 'the fifth connection is closed');
      assert.equal(extra.data(), '', 'without an answer to its complete request: dropped, not served and timed out');
      for (const c of held) c.socket.destroy();
      await Promise.all(held.map((c) => c.closed));
      assert.equal(await servedOnceFree(gw.publicUrl), 200);
      assert.ok(gw.logs.some((l) => /MaxIncomingConnections \(4\) reached/.test(l)));
    } finally {
      await gw.stop();
    }
  });
});

describe('connections and timeouts', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ config: { ReadHeaderTimeout: 1, IdleTimeout: 1, ServerReadTimeout: 2 } });
  });
  after(() => gw.stop());

  test('slowloris: headers trickled forever get 408 and are closed after ReadHeaderTimeout', async () => {
    let timer: NodeJS.Timeout | undefined;
    const slow = rawClient(gw.publicUrl, (s) => {
      s.write('GET /db/ HTTP/1.1\r\nHost: x\r\n');
      timer = setInterval(() => s.write('X-Slow: y\r\n'), 200);
    });
    // Meanwhile the server answers others.
    await slow.connected;
    assert.equal((await req(`${gw.publicUrl}/db/`, { headers: { connection: 'close' } })).status, 200);
    const t = await closedWithin(slow.closed);
    clearInterval(timer);
    assert.notEqual(t, 'open');
    assert.ok((t as number) >= 900, `closed after ${t} ms`);
    assert.match(slow.data(), /^HTTP\/1\.1 408/);
  });

  test('a connection that never sends a byte is closed after ReadHeaderTimeout', async () => {
    const silent = rawClient(gw.publicUrl);
    assert.notEqual(await closedWithin(silent.closed), 'open');
  });

  test('a body trickled forever is cut after ServerReadTimeout', async () => {
    let timer: NodeJS.Timeout | undefined;
    const slow = rawClient(gw.publicUrl, (s) => {
      s.write('PUT /db/slowbody HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"a":"');
      timer = setInterval(() => s.write('a'), 200);
    });
    const t = await closedWithin(slow.closed);
    clearInterval(timer);
    assert.notEqual(t, 'open');
    assert.ok((t as number) >= 1900, `closed after ${t} ms`);
    assert.equal((await req(`${gw.publicUrl}/db/slowbody`)).status, 404, 'nothing was written');
  });

  test('an idle keep-alive connection is closed after IdleTimeout', async () => {
    const c = rawClient(gw.publicUrl, (s) => s.write('GET /db/ HTTP/1.1\r\nHost: x\r\n\r\n'));
    const t = await closedWithin(c.closed);
    assert.match(c.data(), /^HTTP\/1\.1 200/);
    assert.notEqual(t, 'open');
  });

  test('long feeds are legitimate long requests: longpoll and continuous outlive the request timeout', async () => {
    const since = (await req(`${gw.publicUrl}/db/_changes`)).body.last_seq;
    const t0 = Date.now();
    const longpoll = req(`${gw.publicUrl}/db/_changes?feed=longpoll&since=${since}&timeout=60000`);
    const continuous = fetch(`${gw.publicUrl}/db/_changes?feed=continuous&since=${since}&timeout=60000`);
    // Write after both timeouts (header 1 s, request 2 s) have passed.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await req(`${gw.publicUrl}/db/late`, { method: 'PUT', json: { v: 1 } })).status, 201);
    const lp = await longpoll;
    assert.equal(lp.status, 200);
    assert.deepEqual(lp.body.results.map((r: { id: string }) => r.id), ['late']);
    assert.ok(Date.now() - t0 >= 3000);
    const res = await continuous;
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"late"')) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the continuous feed is still open');
      text += Buffer.from(value!).toString();
    }
    await reader.cancel();
  });
});

describe('max_connections_per_address', () => {
  test('one address cannot take more than its share of connections', async () => {
    const gw = await startGateway({ config: { limits: { max_connections_per_address: 2 } } });
    try {
      const held = [rawClient(gw.publicUrl), rawClient(gw.publicUrl)];
      await Promise.all(held.map((c) => c.connected));
      await new Promise((r) => setTimeout(r, 50));
      // A complete request: a connection over the cap is dropped without an answer, not served.
      const extra = rawClient(gw.publicUrl, (s) => s.write('GET /db/ HTTP/1.1\r\nHost: x\r\n\r\n'));
      assert.notEqual(await closedWithin(extra.closed), 'open');
      assert.equal(extra.data(), '', 'the third connection gets no answer');
      assert.equal((await req(`${gw.adminUrl}/db/`)).status, 200, 'each listener counts its own connections');
      for (const c of held) c.socket.destroy();
      await Promise.all(held.map((c) => c.closed));
      assert.equal(await servedOnceFree(gw.publicUrl), 200);
    } finally {
      await gw.stop();
    }
  });
});

describe('size, batch and channel limits', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      config: {
        limits: { max_document_bytes: 1000, max_attachment_bytes: 300, max_body_bytes: 4096, max_bulk_docs: 3, max_channels_per_doc: 3 },
      },
    });
  });
  after(() => gw.stop());
  const url = (p: string) => `${gw.publicUrl}/db/${p}`;

  test('documents over max_document_bytes: 413 "Document too large!" (as Sync Gateway), on every write path', async () => {
    assert.equal((await req(url('small'), { method: 'PUT', json: { s: 'x'.repeat(900) } })).status, 201);
    const big = await req(url('big'), { method: 'PUT', json: { s: 'x'.repeat(1200) } });
    assert.equal(big.status, 413);
    assert.deepEqual(big.body, { error: 'Request Entity Too Large', reason: 'Document too large!' });
    assert.equal((await req(url('big'))).status, 404);
    const bulk = await req(url('_bulk_docs'), { method: 'POST', json: { docs: [{ _id: 'b1', s: 'x'.repeat(1200) }, { _id: 'b2' }] } });
    assert.equal(bulk.status, 201);
    assert.equal(bulk.body[0].status, 413);
    assert.equal(bulk.body[1].rev.startsWith('1-'), true);
    const replicated = await req(url('_bulk_docs'), {
      method: 'POST', json: { new_edits: false, docs: [{ _id: 'r1', _rev: '1-abc', s: 'x'.repeat(1200) }] },
    });
    assert.equal(replicated.body[0].status, 413);
    // The admin port is held to the same limit: it is about storage, not trust.
    assert.equal((await req(`${gw.adminUrl}/db/big`, { method: 'PUT', json: { s: 'x'.repeat(1200) } })).status, 413);
  });

  test('attachments over max_attachment_bytes: 413, inline or standalone', async () => {
    const small = await req(url('att1/a.txt'), { method: 'PUT', body: 'x'.repeat(300), headers: { 'content-type': 'text/plain' } });
    assert.equal(small.status, 201);
    const big = await req(url('att2/a.txt'), { method: 'PUT', body: 'x'.repeat(301), headers: { 'content-type': 'text/plain' } });
    assert.equal(big.status, 413);
    const inline = await req(url('att3'), {
      method: 'PUT', json: { _attachments: { 'a.bin': { content_type: 'application/octet-stream', data: Buffer.alloc(400).toString('base64') } } },
    });
    assert.equal(inline.status, 413);
    assert.match(inline.body.reason, /too large/);
  });

  test('request bodies over max_body_bytes: 413 before they are parsed', async () => {
    const r = await req(url('huge'), { method: 'PUT', body: JSON.stringify({ s: 'x'.repeat(5000) }), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 413);
    assert.match(r.body.reason, /Request body too large \(maximum 4096 bytes\)/);
  });

  test('_bulk_docs and _bulk_get over max_bulk_docs: 413, nothing written', async () => {
    const docs = (n: number, p: string) => Array.from({ length: n }, (_, i) => ({ _id: `${p}${i}` }));
    const over = await req(url('_bulk_docs'), { method: 'POST', json: { docs: docs(4, 'over') } });
    assert.equal(over.status, 413);
    assert.equal(over.body.reason, 'Too many documents in _bulk_docs: 4 (the limit is 3)');
    assert.equal((await req(url('over0'))).status, 404);
    assert.equal((await req(url('_bulk_docs'), { method: 'POST', json: { docs: docs(3, 'ok') } })).status, 201);
    const get = await req(url('_bulk_get'), { method: 'POST', json: { docs: docs(4, 'ok').map((d) => ({ id: d._id })) }, headers: { accept: 'application/json' } });
    assert.equal(get.status, 413);
  });

  test('more channels than max_channels_per_doc: 403, a rejection replicators skip past', async () => {
    assert.equal((await req(url('ch3'), { method: 'PUT', json: { channels: ['a', 'b', 'c'] } })).status, 201);
    const r = await req(url('ch4'), { method: 'PUT', json: { channels: ['a', 'b', 'c', 'd'] } });
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, { error: 'Forbidden', reason: 'Document is in 4 channels; the limit is 3' });
    assert.equal((await req(url('ch4'))).status, 404);
  });

  test('the channel limit applies to what a sync function assigns', async () => {
    const sync = await startGateway({
      databases: { db: { server: 'memory:', sync: 'function(doc){ for (var i = 0; i < doc.n; i++) channel("c" + i); }' } },
      config: { limits: { max_channels_per_doc: 10 } },
    });
    try {
      assert.equal((await req(`${sync.publicUrl}/db/d10`, { method: 'PUT', json: { n: 10 } })).status, 201);
      assert.equal((await req(`${sync.publicUrl}/db/d11`, { method: 'PUT', json: { n: 11 } })).status, 403);
    } finally {
      await sync.stop();
    }
  });

  test('defaults: 20 MB documents are fine, more is 413; bulk batches of 1000 are fine', async () => {
    const plain = await startGateway();
    try {
      const docs = Array.from({ length: 1000 }, (_, i) => ({ _id: `d${i}` }));
      assert.equal((await req(`${plain.publicUrl}/db/_bulk_docs`, { method: 'POST', json: { docs } })).status, 201);
      const big = await req(`${plain.publicUrl}/db/big`, { method: 'PUT', json: { s: 'x'.repeat(20 * 1024 * 1024) } });
      assert.equal(big.status, 413);
      assert.equal(big.body.reason, 'Document too large!');
    } finally {
      await plain.stop();
    }
  });
});
