/**
 * Best-effort webhooks' HTTP client (src/events/pipelined-client.ts) against real
 * servers on loopback ports: node:http receivers, and raw TCP ones where an answer's framing must be
 * exact (chunked with extensions and trailers, byte-by-byte delivery, interim 100, close-delimited
 * bodies, HTTP/1.0). Every POST must be answered exactly once, in order per connection, and never
 * sent twice.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { PipelinedClient } from '../../src/events/pipelined-client.ts';
import type { PostOutcome } from '../../src/events/webhook.ts';
import { makeCerts } from '../helpers/certs.ts';
import { seededRandom } from '../helpers/random.ts';

type Seen = { conn: number; body: string; headers: http.IncomingHttpHeaders };

async function httpServer(answer: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void = (_q, res) => res.writeHead(204).end()) {
  const seen: Seen[] = [];
  let conns = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ conn: (req.socket as any).n, body, headers: req.headers });
      answer(req, res, body);
    });
  });
  server.on('connection', (s) => { (s as any).n = conns++; });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?x=1`);
  return { url, seen, conns: () => conns, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

/** A TCP server that answers each request (counted by its request line) with `answer(i)`, written by `write`. */
async function rawServer(answer: (i: number) => string, write: (s: net.Socket, text: string) => void = (s, t) => s.write(t)) {
  let requests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      // Each request is a head with Content-Length, then that many bytes.
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))![1]);
        if (buf.length < end + 4 + len) return;
        buf = buf.slice(end + 4 + len);
        write(s, answer(requests++));
      }
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  return { url, requests: () => requests, close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }) };
}

const postAll = (c: PipelinedClient, bodies: string[]) => Promise.all(bodies.map((b) => new Promise<PostOutcome>((r) => c.post(b, r))));
// Runs of ASCII-only bodies (written as latin1) and non-ASCII ones (UTF-8), mixed within writes.
const bodies = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ _id: `doc-${i}`, text: `${i % 40 < 20 ? 'plain' : 'é ✓'} ${i}`.repeat(1 + (i % 5)) }));

describe('pipelined webhook client', () => {
  test('a keep-alive receiver: 300 POSTs pipelined over few connections, each once, in order per connection, bodies and headers intact', async () => {
    const rx = await httpServer();
    const c = new PipelinedClient(rx.url, 'Basic dTpw', 10_000, 50, 16);
    try {
      const sent = bodies(300);
      const out = await postAll(c, sent);
      assert.deepEqual(out, sent.map(() => ({ ok: true, status: 204 })));
      assert.equal(c.mode, 'pipeline');
      assert.deepEqual(rx.seen.map((s) => s.body).sort(), [...sent].sort(), 'every body arrived once, byte-exact (non-ASCII included)');
      assert.ok(rx.conns() <= 300 / 16 + 2, `connections opened only when the open ones are full (${rx.conns()})`);
      assert.ok(rx.conns() < 300, 'connections were reused');
      // Per connection, requests arrive in the order they were posted.
      for (let k = 0; k < rx.conns(); k++) {
        const idx = rx.seen.filter((s) => s.conn === k).map((s) => sent.indexOf(s.body));
        assert.deepEqual(idx, [...idx].sort((a, b) => a - b), `connection ${k} kept order`);
      }
      assert.equal(rx.seen[0]!.headers.authorization, 'Basic dTpw');
      assert.equal(rx.seen[0]!.headers['content-type'], 'application/json');
      assert.equal(rx.seen[0]!.headers.host, rx.url.host);
    } finally { c.close(); await rx.close(); }
  });

  test('large bodies (16 of 2 MB, non-ASCII) pipelined on one connection arrive byte-exact', async () => {
    const rx = await httpServer();
    const c = new PipelinedClient(rx.url, undefined, 60_000, 1, 16);
    try {
      const sent = Array.from({ length: 16 }, (_, i) => JSON.stringify({ _id: `big-${i}`, text: `ü${i}`.repeat(700_000) }));
      const out = await postAll(c, sent);
      assert.ok(out.every((o) => o.ok));
      assert.deepEqual(rx.seen.map((x) => x.body), sent);
    } finally { c.close(); await rx.close(); }
  });

  test('answers with bodies: Content-Length, chunked (several writes), and a status other than 2xx all count, with their status', async () => {
    let i = 0;
    const rx = await httpServer((_q, res) => {
      const k = i++ % 3;
      if (k === 0) res.writeHead(200, { 'content-length': 5 }).end('hello');
      else if (k === 1) { res.writeHead(202); res.write('part one,'); setImmediate(() => res.end('part two')); }
      else res.writeHead(500).end('{"error":"no"}');
    });
    const c = new PipelinedClient(rx.url, undefined, 10_000, 4, 8);
    try {
      const out = await postAll(c, bodies(60));
      assert.deepEqual(out.map((o) => (o.ok ? o.status : o.error)).slice(0, 6), [200, 202, 500, 200, 202, 500]);
      assert.equal(out.filter((o) => o.ok).length, 60);
      assert.equal(rx.seen.length, 60);
    } finally { c.close(); await rx.close(); }
  });

  test('framing read byte by byte: interim 100, chunk extensions and trailers, zero-length and 304 answers', async () => {
    const answers = [
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc',
      'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: yes\r\n\r\n',
      'HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n',
      'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
    ];
    const rx = await rawServer((i) => answers[i % answers.length]!, (s, text) => {
      for (let k = 0; k < text.length; k++) s.write(text[k]!); // every byte its own write
    });
    const c = new PipelinedClient(rx.url, undefined, 10_000, 2, 8);
    try {
      const out = await postAll(c, bodies(12));
      assert.deepEqual(out.map((o) => (o.ok ? o.status : o.error)), [200, 201, 202, 304, 200, 201, 202, 304, 200, 201, 202, 304]);
      assert.equal(rx.requests(), 12);
    } finally { c.close(); await rx.close(); }
  });

  test('a receiver that closes every connection (Connection: close, HTTP/1.0, close-delimited bodies) gets one POST per connection, none twice', async () => {
    for (const answer of [
      'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok',
      'HTTP/1.1 200 OK\r\n\r\nthe body runs until the server closes',
    ]) {
      const rx = await rawServer(() => answer, (s, text) => s.end(text));
      const c = new PipelinedClient(rx.url, undefined, 10_000, 8, 16);
      try {
        const out = await postAll(c, bodies(20));
        assert.deepEqual(out.map((o) => (o.ok ? o.status : o.error)), Array(20).fill(200), JSON.stringify(answer));
        assert.equal(rx.requests(), 20, 'each POST was sent once');
        assert.equal(c.mode, 'single');
      } finally { c.close(); await rx.close(); }
    }
  });

  test('node:http closing a pipelined connection: what it did not answer fails, nothing is sent twice, pipelining stops', async () => {
    let n = 0;
    const rx = await httpServer((_q, res) => { if (++n === 5) res.setHeader('connection', 'close'); res.writeHead(200).end(); });
    const c = new PipelinedClient(rx.url, undefined, 10_000, 1, 16);
    try {
      const first = await postAll(c, bodies(1)); // the probe: keep-alive, so pipelining starts
      assert.equal(c.mode, 'pipeline');
      const out = await postAll(c, bodies(12));
      const ok = out.filter((o) => o.ok).length;
      assert.equal(first[0]!.ok, true);
      assert.equal(ok, 4, 'the answers up to the closing one');
      assert.ok(out.slice(4).every((o) => !o.ok && /closed the connection after an earlier answer/.test(o.error)));
      assert.equal(c.mode, 'single');
      assert.equal(rx.seen.length, 13, 'node:http handled the pipelined POSTs after its close too; none was sent again');
      const later = await postAll(c, bodies(3));
      assert.ok(later.every((o) => o.ok));
    } finally { c.close(); await rx.close(); }
  });

  test('a receiver that never answers: the POST and those behind it fail at the time limit; a refused port is unreachable', async () => {
    const rx = await httpServer(() => { /* never answers */ });
    const c = new PipelinedClient(rx.url, undefined, 300, 1, 16);
    try {
      const out = await postAll(c, bodies(3));
      assert.ok(out.every((o) => !o.ok && /no complete answer within 300 ms/.test(o.error)), JSON.stringify(out));
    } finally { c.close(); await rx.close(); }
    const gone = await httpServer();
    const url = gone.url;
    await gone.close();
    const d = new PipelinedClient(url, undefined, 5000, 2, 16);
    try {
      const out = await postAll(d, bodies(2));
      assert.ok(out.every((o) => !o.ok && o.unreachable), JSON.stringify(out));
    } finally { d.close(); }
  });

  test('a 32 MB answer is drained as it comes and the connection is used again', async () => {
    const rx = await httpServer((_q, res, body) => {
      if (!body.includes('doc-0"')) { res.writeHead(204).end(); return; }
      res.writeHead(200, { 'content-length': 32 << 20 });
      const chunk = Buffer.alloc(1 << 20);
      let left = 32;
      const more = () => { while (left > 0) { left--; if (!res.write(chunk)) { res.once('drain', more); return; } } res.end(); };
      more();
    });
    const c = new PipelinedClient(rx.url, undefined, 30_000, 1, 16);
    try {
      const out = await postAll(c, bodies(5));
      assert.deepEqual(out.map((o) => (o.ok ? o.status : o.error)), [200, 204, 204, 204, 204]);
      assert.equal(rx.conns(), 1);
    } finally { c.close(); await rx.close(); }
  });

  test('https: the receiver\'s certificate is verified (one from an unknown CA fails every POST, no body reaches it)', async () => {
    const certs = makeCerts();
    let handled = 0;
    const server = https.createServer({ cert: readFileSync(certs.chainCert), key: readFileSync(certs.serverKey) }, (_q, res) => { handled++; res.writeHead(204).end(); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const c = new PipelinedClient(new URL(`https://localhost:${(server.address() as AddressInfo).port}/`), undefined, 10_000, 2, 16);
    try {
      const out = await postAll(c, bodies(3));
      assert.ok(out.every((o) => !o.ok && /certificate/i.test(o.error)), JSON.stringify(out));
      assert.equal(handled, 0);
    } finally { c.close(); server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); rmSync(certs.dir, { recursive: true, force: true }); }
  });

  test('hostile answers (seeded): garbage, wrong framing, split anywhere, early closes; every POST settles once and nothing throws', async (t) => {
    // The client runs on the gateway's event loop: an exception in it would take the process down.
    const seed = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
    t.diagnostic(`seed ${seed} (replay: SEED=${seed} node --import tsx --test test/http/events-pipelined.test.ts)`);
    const rand = seededRandom(seed);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const answers = [
      () => 'HTTP/1.1 204 No Content\r\n\r\n',
      () => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
      () => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nT: 1\r\n\r\n',
      () => 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n',
      () => 'HTTP/1.1 500 Oops\r\nContent-Length: -4\r\n\r\n',
      () => 'HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nx',
      () => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      () => 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n',
      () => 'HTTP/1.0 200 OK\r\n\r\nbody until close',
      () => 'SSH-2.0-OpenSSH\r\n\r\n',
      () => 'HTTP/1.1 2000 What\r\n\r\n',
      () => Array.from({ length: Math.floor(rand() * 64) }, () => String.fromCharCode(Math.floor(rand() * 256))).join(''),
      () => 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n', // one answer too many
    ];
    for (let round = 0; round < 12; round++) {
      const rx = await rawServer(() => pick(answers)(), (sock, text) => {
        const how = rand();
        if (how < 0.15) { sock.destroy(); return; }
        // Split the answer at random points, sometimes across turns of the loop.
        let at = 0;
        while (at < text.length) {
          const n = 1 + Math.floor(rand() * (text.length - at));
          const part = text.slice(at, at + n);
          at += n;
          if (rand() < 0.3) setTimeout(() => { if (!sock.destroyed) sock.write(part, 'latin1'); }, 1); else sock.write(part, 'latin1');
        }
        if (how > 0.9) setTimeout(() => sock.end(), 2);
      });
      const c = new PipelinedClient(rx.url, undefined, 150, 1 + Math.floor(rand() * 4), 1 + Math.floor(rand() * 8));
      try {
        const settled = new Map<number, number>();
        await Promise.all(bodies(5 + Math.floor(rand() * 15)).map((b, i) => new Promise<void>((resolve) => c.post(b, (o) => {
          settled.set(i, (settled.get(i) ?? 0) + 1);
          assert.equal(typeof o.ok, 'boolean');
          resolve();
        }))));
        await new Promise((r) => setTimeout(r, 20)); // a second settlement would come after the first
        assert.ok([...settled.values()].every((n) => n === 1), `seed ${seed}, round ${round}: a POST settled twice`);
      } finally { c.close(); await rx.close(); }
    }
  });

  test('close() fails what is waiting or in flight, and later POSTs', async () => {
    const rx = await httpServer(() => { /* never answers */ });
    const c = new PipelinedClient(rx.url, undefined, 60_000, 1, 16);
    try {
      const pending = postAll(c, bodies(3));
      await new Promise((r) => setTimeout(r, 100));
      c.close();
      assert.ok((await pending).every((o) => !o.ok && o.error === 'webhook closed'));
      assert.deepEqual(await postAll(c, bodies(1)), [{ ok: false, error: 'webhook closed', unreachable: false }]);
    } finally { await rx.close(); }
  });
});
