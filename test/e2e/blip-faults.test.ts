/**
 * Bad BLIP frames sent raw over a WebSocket: each closes that one connection with a protocol error
 * (the WebSocket close code says which), while a healthy replication on another connection and the
 * REST API carry on, and nothing half-received is stored.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, LocalDb, openBlipSocket, sha1Digest } from '../helpers/blip-client.ts';
import { BlipConnection } from '../../src/replication/blip/connection.ts';
import { FrameEncoder } from '../../src/replication/blip/codec/frame-codec.ts';
import { encodeMessage } from '../../src/replication/blip/codec/properties.ts';

const MSG = 0;
const COMPRESSED = 0x08;
const MORE = 0x40;
const USERS = { alice: { password: 'alice-pw', admin_channels: ['a'] } };
const alice = { user: 'alice', password: 'alice-pw' };

/** A raw connection: send frames by hand, learn how the server closed it. */
async function raw(url: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = await openBlipSocket(url, alice);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return { ws, closed };
}

/** Sends frames, then waits for the server to close the connection. */
async function expectClose(url: string, frames: (enc: FrameEncoder) => Promise<(Buffer | string)[]>): Promise<{ code: number; reason: string }> {
  const { ws, closed } = await raw(url);
  const enc = new FrameEncoder();
  for (const f of await frames(enc)) ws.send(f);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('server did not close the connection')), 10_000).unref());
  const result = await Promise.race([closed, timeout]);
  enc.close();
  return result;
}

const getCheckpoint = () => encodeMessage({ Profile: 'getCheckpoint', client: 'faults' }, Buffer.alloc(0));

describe('BLIP protocol faults', () => {
  let gw: TestGateway;
  let url: string;
  let healthy: BlipClient;
  let healthyDb: LocalDb;
  let pull: Awaited<ReturnType<BlipClient['startPull']>>;
  before(async () => {
    gw = await startGateway({ databases: { db: { server: 'memory:', users: USERS } } });
    url = `${gw.publicUrl}/db`;
    healthy = await BlipClient.connect(url, alice);
    healthyDb = new LocalDb();
    pull = await healthy.startPull(healthyDb, { continuous: true });
    await pull.waitFor(() => pull.caughtUp);
  });
  after(async () => {
    await healthy.close();
    await gw.stop();
  });

  /** After each fault: the other connection still replicates and REST still answers. */
  async function stillHealthy(tag: string): Promise<void> {
    const put = await req(`${gw.adminUrl}/db/ok-${tag}`, { method: 'PUT', json: { channels: ['a'] } });
    assert.equal(put.status, 201);
    await pull.waitFor(() => healthyDb.docs.has(`ok-${tag}`));
    assert.equal(await healthy.getCheckpoint('nothing'), undefined);
  }

  test('a wrong checksum', async () => {
    const closed = await expectClose(url, async (enc) => {
      const f = await enc.encode(1, MSG, getCheckpoint());
      f[f.length - 1] ^= 0xff;
      return [f];
    });
    assert.equal(closed.code, 1002);
    assert.match(closed.reason, /checksum/);
    await stillHealthy('crc');
  });

  test('an unknown frame type', async () => {
    const closed = await expectClose(url, async (enc) => [await enc.encode(1, 3, getCheckpoint())]);
    assert.equal(closed.code, 1002);
    await stillHealthy('type');
  });

  test('a truncated varint', async () => {
    const closed = await expectClose(url, async () => [Buffer.of(0x81)]);
    assert.equal(closed.code, 1002);
    assert.match(closed.reason, /varint/);
    await stillHealthy('varint');
  });

  test('compressed data that does not inflate', async () => {
    const closed = await expectClose(url, async () => [Buffer.concat([Buffer.of(1, MSG | COMPRESSED), Buffer.from('ffffffffffff0102030405', 'hex'), Buffer.alloc(4)])]);
    assert.equal(closed.code, 1002);
    await stillHealthy('inflate');
  });

  test('a message over the size limit, plain or as a deflate bomb', async () => {
    // 34 frames of 1,000,000 bytes: past the 32 MiB message limit.
    const plain = await expectClose(url, async (enc) => {
      const frames: Buffer[] = [];
      const chunk = Buffer.alloc(1_000_000, 0x61);
      frames.push(await enc.encode(1, MSG | MORE, Buffer.concat([encodeMessage({ Profile: 'rev', id: 'big', rev: '1-a' }, Buffer.alloc(0)), chunk])));
      for (let i = 0; i < 33; i++) frames.push(await enc.encode(1, MSG | MORE, chunk));
      return frames;
    });
    assert.equal(plain.code, 1009);
    // 64 MB of zeros deflate to ~64 KB: the inflated size is what counts.
    const bomb = await expectClose(url, async () => {
      const z = deflateRawSync(Buffer.alloc(64 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH });
      return [Buffer.concat([Buffer.of(1, MSG | COMPRESSED), z.subarray(0, z.length - 4), Buffer.alloc(4)])];
    });
    assert.equal(bomb.code, 1009);
    assert.equal((await req(`${gw.adminUrl}/db/big`)).status, 404);
    await stillHealthy('size');
  });

  test('a request number out of order', async () => {
    const closed = await expectClose(url, async (enc) => [await enc.encode(2, MSG, getCheckpoint())]);
    assert.equal(closed.code, 1002);
    assert.match(closed.reason, /out of order/);
    await stillHealthy('order');
  });

  test('a text WebSocket message', async () => {
    const closed = await expectClose(url, async () => ['{"Profile":"getCheckpoint"}']);
    assert.equal(closed.code, 1003);
    await stillHealthy('text');
  });

  test('nothing half-written: a rev cut by a bad frame, a rev whose attachment never arrives', async () => {
    const body = Buffer.from(JSON.stringify({ channels: ['a'], v: 1 }));
    const cut = await expectClose(url, async (enc) => {
      const msg = encodeMessage({ Profile: 'rev', id: 'half', rev: '1-abc', sequence: '1' }, body);
      const first = await enc.encode(1, MSG | MORE, msg.subarray(0, 20));
      const second = await enc.encode(1, MSG, msg.subarray(20));
      second[second.length - 2] ^= 0x55;
      return [first, second];
    });
    assert.equal(cut.code, 1002);
    assert.equal((await req(`${gw.adminUrl}/db/half`)).status, 404);

    // The server asks the client for a blob; the client hangs up instead of answering.
    const ws = await openBlipSocket(url, alice);
    const conn = new BlipConnection(ws, { role: 'client' });
    conn.on('error', () => {});
    const asked = new Promise<void>((resolve) => conn.onRequest((r) => {
      if (r.profile === 'getAttachment') { ws.terminate(); resolve(); }
    }));
    const data = randomBytes(5000);
    void conn.sendRequest({ Profile: 'rev', id: 'no-blob', rev: '1-abc', sequence: '1' }, {
      channels: ['a'], _attachments: { f: { stub: true, digest: sha1Digest(data), length: data.length, revpos: 1 } },
    }).catch(() => {});
    await asked;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await req(`${gw.adminUrl}/db/no-blob`)).status, 404);
    const blob = await fetch(`${gw.adminUrl}/db/no-blob/f`);
    assert.equal(blob.status, 404);
    await stillHealthy('half');
  });
});
