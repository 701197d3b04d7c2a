/**
 * Two BlipConnections over a real `ws` server on an ephemeral loopback port: request/response,
 * errors, noReply, big multi-frame messages (plain and compressed), multiplexing, flow control,
 * and protocol violations that must close only the offending connection.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { HttpError } from '../../src/errors.ts';
import { BlipConnection, type BlipRequest } from '../../src/replication/blip/connection.ts';
import { FrameEncoder } from '../../src/replication/blip/codec/frame-codec.ts';
import { encodeMessage } from '../../src/replication/blip/codec/properties.ts';

interface ServerSide { conn: BlipConnection; ws: WebSocket; errors: Error[]; closed: Promise<[number, string]> }

/** A ws server wrapping every accepted socket in a BlipConnection that runs `handle`. */
class TestServer {
  readonly wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  readonly accepted: ServerSide[] = [];
  private waiters: ((s: ServerSide) => void)[] = [];
  maxMessageBytes: number | undefined;

  constructor(handle: (req: BlipRequest) => void | Promise<void>) {
    this.wss.on('connection', (ws) => {
      const conn = new BlipConnection(ws, { role: 'server', maxMessageBytes: this.maxMessageBytes });
      const side: ServerSide = { conn, ws, errors: [], closed: closeOf(conn) };
      conn.on('error', (err: Error) => side.errors.push(err));
      conn.onRequest(handle);
      this.accepted.push(side);
      this.waiters.shift()?.(side);
    });
  }

  get url(): string { return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/db/_blipsync`; }

  async listening(): Promise<void> { if (!this.wss.address()) await once(this.wss, 'listening'); }

  /** Opens a raw client socket and returns it with its server side. */
  async rawClient(): Promise<{ ws: WebSocket; server: ServerSide }> {
    const server = new Promise<ServerSide>((resolve) => this.waiters.push(resolve));
    const ws = new WebSocket(this.url, { perMessageDeflate: false });
    await once(ws, 'open');
    return { ws, server: await server };
  }

  async client(): Promise<{ conn: BlipConnection; server: ServerSide }> {
    const { ws, server } = await this.rawClient();
    return { conn: new BlipConnection(ws, { role: 'client' }), server };
  }

  close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}

/** The echo/error handler every test server uses. */
async function handle(req: BlipRequest): Promise<void> {
  switch (req.profile) {
    case 'echo': req.respond({ ...req.properties, Profile: 'echoed' }, req.body, { compressed: req.properties.compress === 'true' }); return;
    case 'json': req.respond({}, { got: req.json() }); return;
    case 'conflict': throw new HttpError(409, 'Document update conflict');
    case 'crash': throw new Error('secret detail');
    case 'blipError': req.respondError('BLIP', 501, 'not here'); return;
    case 'slow': await new Promise((r) => setTimeout(r, 50)); req.respond({ slow: 'yes' }); return;
    case 'note': return; // noreply
    default: req.respondError('BLIP', 404, 'no handler for message');
  }
}

function patterned(size: number, seed: number): Buffer {
  // Compressible but not trivial: the vectors' LCG hex lines.
  const out = Buffer.alloc(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    if (i % 64 === 63) { out[i] = 0x0a; continue; }
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = '0123456789abcdef'.charCodeAt(x >>> 28);
  }
  return out;
}

/** Resolves on 'close' (events.once would reject on the 'error' that precedes a protocol close). */
function closeOf(conn: BlipConnection): Promise<[number, string]> {
  return new Promise((resolve) => conn.once('close', (code: number, reason: string) => resolve([code, reason])));
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `read()` has not changed for `quietMs` (at most 10 s): a sender stalled by flow control
 * has stopped, however slow the machine was to get there (a fixed sleep could look too early).
 */
async function settled(read: () => number, quietMs = 200): Promise<number> {
  let last = read();
  for (const stop = Date.now() + 10_000; Date.now() < stop;) {
    await sleep(quietMs);
    const now = read();
    if (now === last) return now;
    last = now;
  }
  return last;
}

describe('BlipConnection over a real WebSocket', () => {
  const server = new TestServer(handle);
  before(() => server.listening());
  after(() => server.close());

  it('request/response with properties and JSON body', async () => {
    const { conn } = await server.client();
    const res = await conn.sendRequest({ Profile: 'echo', client: 'cp-1', 'ключ': 'значение 🚀' }, { seq: 5 });
    assert.ok(res && !res.isError);
    assert.equal(res.profile, 'echoed');
    assert.equal(res.properties['ключ'], 'значение 🚀');
    assert.deepEqual(res.json(), { seq: 5 });
    const json = await conn.sendRequest({ Profile: 'json' }, '[1,2]');
    assert.deepEqual(json?.json(), { got: [1, 2] });
    const empty = await conn.sendRequest({ Profile: 'echo' });
    assert.equal(empty?.body.length, 0);
    assert.equal(empty?.json(), null);
    conn.close();
  });

  it('error replies: HttpError status, 500 without detail, BLIP domain, unknown profile, bad JSON', async () => {
    const { conn } = await server.client();
    const conflict = await conn.sendRequest({ Profile: 'conflict' });
    assert.deepEqual([conflict?.isError, conflict?.errorDomain, conflict?.errorCode], [true, 'HTTP', 409]);
    assert.equal(conflict?.body.toString(), 'Document update conflict');
    const crash = await conn.sendRequest({ Profile: 'crash' });
    assert.deepEqual([crash?.errorDomain, crash?.errorCode, crash?.body.toString()], ['HTTP', 500, 'Internal error']);
    const blip = await conn.sendRequest({ Profile: 'blipError' });
    assert.deepEqual([blip?.errorDomain, blip?.errorCode], ['BLIP', 501]);
    const unknown = await conn.sendRequest({ Profile: 'nope' });
    assert.deepEqual([unknown?.errorDomain, unknown?.errorCode], ['BLIP', 404]);
    const badJson = await conn.sendRequest({ Profile: 'json' }, '{not json');
    assert.deepEqual([badJson?.errorDomain, badJson?.errorCode], ['HTTP', 400]);
    assert.equal(conn.closed, false);
    conn.close();
  });

  it('noReply requests resolve undefined, get no reply, and keep numbering in order', async () => {
    const { conn, server: side } = await server.client();
    const seen: BlipRequest[] = [];
    side.conn.onRequest((req) => { seen.push(req); return handle(req); });
    assert.equal(await conn.sendRequest({ Profile: 'note' }, [], { noReply: true }), undefined);
    assert.equal(await conn.sendRequest({ Profile: 'echo' }, [], { noReply: true, urgent: true }), undefined);
    const res = await conn.sendRequest({ Profile: 'slow' });
    assert.equal(res?.properties.slow, 'yes');
    assert.deepEqual(seen.map((r) => [r.number, r.noReply]), [[1, true], [2, true], [3, false]]);
    assert.equal(seen[1].urgent, true);
    assert.equal(conn.closed, false);
    conn.close();
  });

  it('the server can send requests to the client too', async () => {
    const { conn, server: side } = await server.client();
    conn.onRequest((req) => req.respond({ pong: req.properties.n }, req.body));
    const res = await side.conn.sendRequest({ Profile: 'changes', n: '7' }, [[1, 'doc', '1-a']], { urgent: true });
    assert.equal(res?.properties.pong, '7');
    assert.equal(res?.urgent, true); // replies copy the request's Urgent flag
    assert.deepEqual(res?.json(), [[1, 'doc', '1-a']]);
    conn.close();
  });

  for (const [size, compress] of [[1_000_000, false], [5_000_000, false], [1_000_000, true], [5_000_000, true]] as const) {
    it(`${size / 1e6} MB message ${compress ? 'compressed' : 'plain'}, both ways, with ACKs`, async () => {
      const { conn, server: side } = await server.client();
      const body = patterned(size, 3);
      const res = await conn.sendRequest({ Profile: 'echo', compress: String(compress) }, body, { compressed: compress });
      assert.equal(res?.body.length, size);
      assert.equal(sha(res!.body), sha(body));
      assert.equal(res?.compressed, compress);
      assert.ok(side.conn.stats.acksSent > 0 && conn.stats.acksReceived > 0, 'server acknowledged the request');
      assert.ok(conn.stats.acksSent > 0 && side.conn.stats.acksReceived > 0, 'client acknowledged the reply');
      if (compress) assert.ok(conn.stats.bytesSent < size * 0.6, `compressed ${conn.stats.bytesSent}`);
      conn.close();
    });
  }

  it('incompressible data sent compressed still round-trips', async () => {
    const { conn } = await server.client();
    const body = randomBytes(1_500_000);
    const res = await conn.sendRequest({ Profile: 'echo', compress: 'true' }, body, { compressed: true });
    assert.equal(sha(res!.body), sha(body));
    conn.close();
  });

  it('multiplexes concurrent messages: small ones overtake a big one', async () => {
    const { conn } = await server.client();
    const order: string[] = [];
    const big = conn.sendRequest({ Profile: 'echo' }, patterned(4_000_000, 1)).then((r) => { order.push('big'); return r; });
    const bodies = [1, 2, 3, 4, 5].map((i) => patterned(200_000 * i, i + 10));
    const others = bodies.map((b, i) => conn.sendRequest({ Profile: 'echo', i: String(i) }, b, { compressed: i % 2 === 0 })
      .then((r) => { order.push(`m${i}`); return r; }));
    const small = conn.sendRequest({ Profile: 'echo' }, 'tiny', { urgent: true }).then((r) => { order.push('small'); return r; });
    const [bigRes, smallRes, ...rest] = await Promise.all([big, small, ...others]);
    assert.equal(sha(bigRes!.body), sha(patterned(4_000_000, 1)));
    assert.equal(smallRes?.body.toString(), 'tiny');
    rest.forEach((r, i) => { assert.equal(r?.properties.i, String(i)); assert.equal(sha(r!.body), sha(bodies[i])); });
    assert.notEqual(order[0], 'big');
    assert.equal(order.at(-1), 'big');
    conn.close();
  });

  it('flow control: a receiver that does not read gets at most one window of unacked data', async () => {
    const { conn, server: side } = await server.client();
    side.ws.pause(); // the server stops reading its socket: no frames decoded, no ACKs sent
    const body = patterned(5_000_000, 9);
    const reply = conn.sendRequest({ Profile: 'echo' }, body);
    const sent = await settled(() => conn.stats.bytesSent);
    assert.ok(sent > 0, 'the sender started');
    assert.ok(sent <= 128_000 + 2 * 16_384, `sent ${sent} bytes without an ACK`);
    await sleep(200);
    assert.equal(conn.stats.bytesSent, sent, 'sender stays paused');
    side.ws.resume();
    const res = await reply;
    assert.equal(sha(res!.body), sha(body));
    conn.close();
  });

  it('flow control the other way: a big reply to a client that stops reading', async () => {
    const { conn, server: side } = await server.client();
    const body = patterned(3_000_000, 4);
    const reply = conn.sendRequest({ Profile: 'slow' }); // warm up numbering
    await reply;
    side.conn.onRequest((req) => req.respond({}, body));
    (conn as unknown as { ws: WebSocket }).ws.pause();
    const big = conn.sendRequest({ Profile: 'x' });
    const sent = await settled(() => side.conn.stats.bytesSent);
    assert.ok(sent <= 200 + 128_000 + 2 * 16_384, `server sent ${sent}`);
    (conn as unknown as { ws: WebSocket }).ws.resume();
    assert.equal(sha((await big)!.body), sha(body));
    conn.close();
  });

  it('close: both sides see it, pending requests reject, later sends reject', async () => {
    const { conn, server: side } = await server.client();
    side.conn.onRequest(() => { /* never answers */ });
    const pending = conn.sendRequest({ Profile: 'hang' });
    await sleep(50);
    const closed = once(conn, 'close');
    conn.close(1000, 'done');
    await assert.rejects(pending, /closed/);
    assert.deepEqual(await side.closed, [1000, 'done']);
    await closed;
    assert.equal(conn.closed, true);
    await assert.rejects(conn.sendRequest({ Profile: 'echo' }), /closed/);
  });
});

describe('BlipConnection protocol errors close only the offending connection', () => {
  const server = new TestServer(handle);
  server.maxMessageBytes = 100_000;
  before(() => server.listening());
  after(() => server.close());

  /** Encodes data frames with a proper running CRC, as a well-behaved peer would. */
  async function frames(...msgs: [number, number, Buffer][]): Promise<Buffer[]> {
    const enc = new FrameEncoder();
    const out: Buffer[] = [];
    for (const [n, flags, data] of msgs) out.push(await enc.encode(n, flags, data));
    enc.close();
    return out;
  }
  const msg = (profile: string): Buffer => encodeMessage({ Profile: profile }, Buffer.alloc(0));

  const cases: [string, () => Promise<(Buffer | string)[]>, number, RegExp][] = [
    ['wrong checksum', async () => { const [f] = await frames([1, 0, msg('echo')]); f[f.length - 1] ^= 0xff; return [f]; }, 1002, /checksum/],
    ['unknown frame type', async () => [Buffer.concat([Buffer.from([1, 0x03]), msg('echo'), Buffer.alloc(4)])], 1002, /unknown frame type/],
    ['truncated varint', async () => [Buffer.from([0x81])], 1002, /truncated varint/],
    ['data that does not inflate', async () => [Buffer.from('0108ffffffffffff00000000', 'hex')], 1002, /compressed data/],
    ['request number out of order', async () => frames([2, 0, msg('echo')]), 1002, /out of order/],
    ['second request skipping a number', async () => frames([1, 0x20, msg('note')], [3, 0, msg('echo')]), 1002, /out of order/],
    ['response to an unknown request', async () => frames([1, 1, msg('x')]), 1002, /unknown request/],
    ['text WebSocket message', async () => ['hello'], 1003, /text/],
    ['over-size message (plain, many frames)', async () => {
      const big = encodeMessage({ Profile: 'echo' }, Buffer.alloc(150_000, 0x61));
      const parts: [number, number, Buffer][] = [];
      for (let o = 0; o < big.length; o += 16_000) parts.push([1, o + 16_000 < big.length ? 0x40 : 0, big.subarray(o, o + 16_000)]);
      return frames(...parts);
    }, 1009, /too big/],
    ['many half-sent messages holding too many bytes', async () => {
      const parts: [number, number, Buffer][] = [];
      for (let n = 1; n <= 5; n++) {
        const m = encodeMessage({ Profile: 'echo' }, Buffer.alloc(95_000, 0x62));
        for (let o = 0; o < 90_000; o += 15_000) parts.push([n, 0x40, m.subarray(o, o + 15_000)]);
      }
      return frames(...parts);
    }, 1009, /incomplete/],
    ['over-size message (a deflate bomb in one frame)', async () => frames([1, 0x08, encodeMessage({ Profile: 'echo' }, Buffer.alloc(1_000_000))]), 1009, /too big/],
  ];

  for (const [name, make, code, pattern] of cases) {
    it(`${name} → close ${code}`, async () => {
      const bystander = await server.client();
      const { ws, server: side } = await server.rawClient();
      const closed = once(ws, 'close') as Promise<[number, Buffer]>;
      for (const f of await make()) ws.send(f);
      const [gotCode, reason] = await closed;
      assert.equal(gotCode, code);
      assert.match(reason.toString(), pattern);
      assert.equal(side.conn.closed, true);
      assert.ok(side.errors.some((e) => pattern.test(e.message)), side.errors.map((e) => e.message).join());
      assert.deepEqual((await side.closed)[0], code);
      // The other connection on the same server is untouched.
      const res = await bystander.conn.sendRequest({ Profile: 'echo' }, 'still here');
      assert.equal(res?.body.toString(), 'still here');
      assert.equal(bystander.server.errors.length, 0);
      bystander.conn.close();
    });
  }

  it('a client-side BlipConnection sending an over-size message sees close 1009 and a rejected request', async () => {
    const { conn } = await server.client();
    const closed = closeOf(conn);
    await assert.rejects(conn.sendRequest({ Profile: 'echo' }, Buffer.alloc(200_000)), /closed/);
    assert.equal((await closed)[0], 1009);
  });
});
