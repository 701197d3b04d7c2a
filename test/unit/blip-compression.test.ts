/**
 * The two ways of driving a direction's one deflate context (codec/compression.ts): the synchronous
 * native path and the asynchronous stream fallback must produce the same bytes, read each other's
 * output, keep the context across frames, and stop a deflate bomb at the limit; and a
 * BlipConnection works with either on each side.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { constants, deflateRawSync } from 'node:zlib';
import { WebSocket, WebSocketServer } from 'ws';
import { BlipConnection, type BlipRequest } from '../../src/replication/blip/connection.ts';
import { FrameDeflater, FrameInflater } from '../../src/replication/blip/codec/compression.ts';
import { FrameDecoder, FrameEncoder, type DataFrame } from '../../src/replication/blip/codec/frame-codec.ts';
import { BlipProtocolError } from '../../src/replication/blip/codec/errors.ts';
import { encodeFrameHeader } from '../../src/replication/blip/codec/frame.ts';

const COMPRESSED = 0x08;

/** Deterministic incompressible bytes (xorshift32), so byte-for-byte comparisons are reproducible. */
function noise(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Frame data of many shapes: JSON-like (compressible, repeating across frames), noise, sizes around the 16 KiB scratch. */
function samples(): Buffer[] {
  const json = (i: number) => Buffer.from(JSON.stringify({ _id: `doc-${i}`, type: 'bench', filler: 'x'.repeat(900), i }));
  const out: Buffer[] = [];
  for (let i = 0; i < 20; i++) out.push(json(i));
  for (const n of [1, 2, 100, 4086, 16_370, 16_374, 16_379, 16_383, 16_384, 16_385, 16_400, 40_000, 100_000]) out.push(noise(n, n));
  out.push(Buffer.alloc(16_374, 0x61), Buffer.alloc(200_000, 0x62), json(0));
  return out;
}

describe('BLIP compression: sync and async zlib paths', () => {
  it('this Node has the synchronous path (else everything runs on the async fallback)', () => {
    const d = new FrameDeflater();
    const i = new FrameInflater();
    assert.equal(d.synchronous, true);
    assert.equal(i.synchronous, true);
    assert.equal(new FrameDeflater(6, { sync: false }).synchronous, false);
    d.close();
    i.close();
  });

  it('deflate: identical bytes from both paths; each inflater reads both; the context carries over', async () => {
    const sync = new FrameDeflater();
    const async = new FrameDeflater(6, { sync: false });
    const inflaters = [new FrameInflater(), new FrameInflater({ sync: false })];
    for (const data of samples()) {
      const a = sync.compressFrame(data);
      assert.ok(Buffer.isBuffer(a), 'sync path returns the bytes, not a promise');
      const b = await async.compress(data);
      assert.deepEqual(a, b);
      for (const inf of inflaters) assert.deepEqual(await inf.decompress(a), data);
    }
    // Incompressible alone, tiny the second time: it back-references the previous frame (one context).
    const blob = noise(3000, 99);
    for (const d of [sync, async]) {
      const first = await d.compress(blob);
      const again = await d.compress(blob);
      assert.ok(first.length > 3000 && again.length < 50, `${first.length} then ${again.length}`);
      for (const inf of inflaters) {
        assert.deepEqual(await inf.decompress(first), blob);
        assert.deepEqual(await inf.decompress(again), blob);
      }
    }
    for (const z of [sync, async, ...inflaters]) z.close();
  });

  it('frame codec: both paths encode identical frames and decode them to the same data and CRC', async () => {
    const encoders = [new FrameEncoder(), new FrameEncoder({ syncZlib: false })];
    const decoders = [new FrameDecoder(), new FrameDecoder({ syncZlib: false })];
    let n = 0;
    for (const data of samples()) {
      n++;
      const flags = n % 3 === 0 ? 0 : COMPRESSED; // plain frames in between: the CRC runs over both
      const a = encoders[0].encodeFrame(n, flags, data);
      assert.ok(Buffer.isBuffer(a));
      const b = await encoders[1].encode(n, flags, data);
      assert.deepEqual(a, b);
      const d0 = decoders[0].decodeFrame(a);
      assert.ok(!(d0 instanceof Promise), 'sync decode returns the frame');
      const d1 = await decoders[1].decode(b);
      assert.deepEqual(d0, d1);
      assert.deepEqual((d0 as DataFrame).data, data);
      assert.equal((d0 as DataFrame).compressed, flags !== 0);
    }
  });

  it('a deflate bomb stops at maxOutput with 1009, on both paths, and poisons the context', async () => {
    // 64 MB of zeros deflates to ~64 KB: one frame that would inflate far past the limit.
    const bomb = deflateRawSync(Buffer.alloc(64 << 20), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    const frame = Buffer.concat([encodeFrameHeader(1, COMPRESSED), bomb, Buffer.alloc(4)]);
    for (const syncZlib of [true, false]) {
      const dec = new FrameDecoder({ syncZlib });
      const used = process.memoryUsage().arrayBuffers;
      await assert.rejects(dec.decode(frame, 1_000_000), (err: unknown) => {
        assert.ok(err instanceof BlipProtocolError);
        assert.equal(err.closeCode, 1009);
        assert.match(err.message, /too big/);
        return true;
      });
      // Stopped early: nowhere near 64 MB was ever buffered.
      assert.ok(process.memoryUsage().arrayBuffers - used < 16 << 20);
      await assert.rejects(dec.decode(frame, Infinity), /too big/);
      dec.close();
    }
    // Sync: thrown where it happens, not a promise.
    assert.throws(() => new FrameInflater().decompressFrame(bomb, 100_000), /too big/);
    // Exactly at the limit is fine; one byte over is not.
    const exact = deflateRawSync(Buffer.alloc(50_000, 1), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, -4);
    assert.equal((new FrameInflater().decompressFrame(exact, 50_000) as Buffer).length, 50_000);
    assert.throws(() => new FrameInflater().decompressFrame(exact, 49_999), /too big/);
  });

  it('invalid data and data past a final block are protocol errors, thrown synchronously, then the inflater stays failed', async () => {
    const inf = new FrameInflater();
    assert.throws(() => inf.decompressFrame(Buffer.from('ffffffffffff', 'hex')), (err: unknown) => {
      assert.ok(err instanceof BlipProtocolError);
      assert.equal(err.closeCode, 1002);
      assert.match(err.message, /invalid compressed data/);
      return true;
    });
    // A destroyed context must never reach the native handle again (that would abort the process).
    assert.throws(() => inf.decompressFrame(Buffer.from([0x03, 0x00])), BlipProtocolError);
    await new Promise((r) => setImmediate(r)); // the late 'error' event is absorbed
    // A final block (BFINAL) followed by the re-appended trailer: bytes after the end of the stream.
    const final = deflateRawSync(Buffer.from('the end'));
    assert.throws(() => new FrameInflater().decompressFrame(final), /after the end/);
    const dec = new FrameDecoder();
    assert.throws(() => dec.decodeFrame(Buffer.concat([encodeFrameHeader(1, COMPRESSED), Buffer.from('ffff', 'hex'), Buffer.alloc(4)])), BlipProtocolError);
  });
});

describe('BlipConnection with sync and async zlib on either side', () => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  let serverSync = true;
  const echo = (req: BlipRequest): void => req.respond({ n: req.properties.n ?? '' }, req.body, { compressed: true });
  wss.on('connection', (ws) => {
    const conn = new BlipConnection(ws, { role: 'server', syncZlib: serverSync });
    conn.on('error', () => {});
    conn.onRequest(echo);
  });
  before(async () => { if (!wss.address()) await once(wss, 'listening'); });
  after(() => new Promise<void>((resolve) => { for (const c of wss.clients) c.terminate(); wss.close(() => resolve()); }));

  for (const [clientSync, srvSync] of [[true, true], [false, false], [true, false], [false, true]]) {
    it(`client ${clientSync ? 'sync' : 'async'}, server ${srvSync ? 'sync' : 'async'}: many concurrent compressed messages, small and multi-frame, in order`, async () => {
      serverSync = srvSync;
      const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false });
      await once(ws, 'open');
      const conn = new BlipConnection(ws, { role: 'client', syncZlib: clientSync });
      const bodies = Array.from({ length: 60 }, (_, i) => (i % 10 === 9 ? randomBytes(70_000) : Buffer.from(JSON.stringify({ i, filler: 'y'.repeat(900 + i) }))));
      const replies = await Promise.all(bodies.map((b, i) => conn.sendRequest({ Profile: 'echo', n: String(i) }, b, { compressed: true })));
      replies.forEach((r, i) => {
        assert.equal(r?.properties.n, String(i));
        assert.deepEqual(r?.body, bodies[i]);
        assert.equal(r?.compressed, true);
      });
      const closed = once(ws, 'close');
      conn.close();
      await closed;
    });
  }
});
