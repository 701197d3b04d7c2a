/**
 * BLIP codec against the golden go-blip captures in test/fixtures/blip-vectors: every frame of
 * every file is decoded (one fresh decoder per direction, frames in capture order) and compared with
 * the capture's own decoding, then every message is re-encoded. Uncompressed frames and ACKs must
 * match byte for byte. Compressed frames cannot: go-blip uses klauspost/compress flate, we use
 * Node's zlib, and the two choose different (equally valid) Huffman codings and block splits. For
 * those we check header and running CRC (computed over uncompressed bytes, so they must match)
 * and that our compressed frames decode back to the same bytes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BlipProtocolError } from '../../src/replication/blip/codec/errors.ts';
import { FrameDecoder, FrameEncoder, type DecodedFrame } from '../../src/replication/blip/codec/frame-codec.ts';
import { FLAG_COMPRESSED, FrameType, encodeAckFrame, typeName } from '../../src/replication/blip/codec/frame.ts';
import { decodeMessage, encodeMessage, encodeProperties } from '../../src/replication/blip/codec/properties.ts';
import { decodeVarint, encodeVarint } from '../../src/replication/blip/codec/varint.ts';
import { BIG_FRAME_DATA } from '../../src/replication/blip/outbox.ts';

const VECTOR_DIR = join(import.meta.dirname, '../fixtures/blip-vectors'); // copied from the spec, see its README

interface ByteDesc { length: number; hex?: string; sha256?: string }
interface VectorFrame {
  index: number;
  dir: 'c2s' | 's2c';
  hex: string;
  decoded: {
    msg_no: number; flags: string; type: string; ack_bytes_received?: number; wire_payload_length?: number;
    checksum?: string; decoded_payload?: ByteDesc;
    complete_message?: { properties: Record<string, string>; properties_in_wire_order: { key: string; value: string }[]; body: ByteDesc; properties_block_hex: string };
  };
}
interface Delivered {
  at: 'server' | 'client'; msg_no: number; type: string; compressed_flag: boolean; noreply_flag: boolean; urgent_flag: boolean;
  properties: Record<string, string>; body: ByteDesc;
}
interface Vector { scenario: string; delivered: Delivered[]; messages: VectorFrame[] }

function assertBytes(actual: Buffer, desc: ByteDesc, what: string): void {
  assert.equal(actual.length, desc.length, `${what}: length`);
  if (desc.hex !== undefined) assert.equal(actual.toString('hex'), desc.hex, `${what}: bytes`);
  if (desc.sha256 !== undefined) assert.equal(createHash('sha256').update(actual).digest('hex'), desc.sha256, `${what}: sha256`);
}

function vectorType(frame: DecodedFrame): string {
  if (frame.kind === 'ack') return frame.type === FrameType.ACKMSG ? 'ACK_MSG' : 'ACK_RPY';
  return typeName(frame.type);
}

interface DecodedMessage { key: string; number: number; type: number; flags: number; compressed: boolean; data: Buffer; frames: VectorFrame[] }

/** Decodes one direction of a vector and checks every frame against the capture. */
async function decodeDirection(vector: Vector, dir: 'c2s' | 's2c'): Promise<DecodedMessage[]> {
  const decoder = new FrameDecoder();
  const partial = new Map<string, DecodedMessage>();
  const done: DecodedMessage[] = [];
  for (const vf of vector.messages.filter((m) => m.dir === dir)) {
    const where = `${vector.scenario} ${dir} frame ${vf.index}`;
    const frame = await decoder.decode(Buffer.from(vf.hex, 'hex'));
    assert.equal(frame.number, vf.decoded.msg_no, `${where}: number`);
    assert.equal(vectorType(frame), vf.decoded.type, `${where}: type`);
    if (frame.kind === 'ack') {
      assert.equal(frame.bytesReceived, vf.decoded.ack_bytes_received, `${where}: ack count`);
      continue;
    }
    assert.equal(frame.flags, Number.parseInt(vf.decoded.flags, 16), `${where}: flags`);
    assert.equal(frame.wireBytes - 4, vf.decoded.wire_payload_length, `${where}: wire payload length`);
    assertBytes(frame.data, vf.decoded.decoded_payload!, `${where}: decoded payload`);
    const key = `${frame.type === FrameType.MSG ? 'MSG' : 'RPY'}#${frame.number}`;
    let msg = partial.get(key);
    if (!msg) {
      msg = { key, number: frame.number, type: frame.type, flags: frame.flags, compressed: false, data: Buffer.alloc(0), frames: [] };
      partial.set(key, msg);
    }
    msg.data = Buffer.concat([msg.data, frame.data]);
    msg.compressed ||= frame.compressed;
    msg.frames.push(vf);
    if (frame.moreComing) {
      assert.equal(vf.decoded.complete_message, undefined, `${where}: capture says complete`);
      continue;
    }
    partial.delete(key);
    const expected = vf.decoded.complete_message!;
    const { properties, body } = decodeMessage(msg.data);
    assert.deepEqual(properties, expected.properties, `${where}: properties`);
    assert.deepEqual(Object.entries(properties), expected.properties_in_wire_order.map((p) => [p.key, p.value]), `${where}: wire order`);
    assertBytes(body, expected.body, `${where}: body`);
    done.push(msg);
  }
  assert.equal(partial.size, 0, `${vector.scenario} ${dir}: unfinished messages`);
  return done;
}

/** Re-encodes one direction's frames (same message slices, same order) and compares with the capture. */
async function reencodeDirection(vector: Vector, dir: 'c2s' | 's2c', messages: DecodedMessage[]): Promise<void> {
  const encoder = new FrameEncoder();
  const roundTrip = new FrameDecoder();
  const byKey = new Map<string, { msg: DecodedMessage; data: Buffer; offset: number }>();
  for (const msg of messages) {
    const wire = msg.frames.at(-1)!.decoded.complete_message!;
    const props = Object.fromEntries(wire.properties_in_wire_order.map((p) => [p.key, p.value]));
    assert.equal(encodeProperties(props).toString('hex'), wire.properties_block_hex);
    const data = encodeMessage(props, decodeMessage(msg.data).body);
    assert.ok(data.equals(msg.data), `${msg.key}: message bytes`);
    for (const f of msg.frames) byKey.set(`${f.index}`, { msg, data, offset: 0 });
  }
  const offsets = new Map<DecodedMessage, number>();
  for (const vf of vector.messages.filter((m) => m.dir === dir)) {
    const where = `${vector.scenario} ${dir} frame ${vf.index}`;
    const expectedHex = vf.hex;
    if (vf.decoded.type.startsWith('ACK')) {
      const type = vf.decoded.type === 'ACK_MSG' ? FrameType.ACKMSG : FrameType.ACKRPY;
      assert.equal(encodeAckFrame(type, vf.decoded.msg_no, vf.decoded.ack_bytes_received!).toString('hex'), expectedHex, where);
      continue;
    }
    const entry = byKey.get(`${vf.index}`)!;
    const offset = offsets.get(entry.msg) ?? 0;
    // Our sender cuts the same 16,374-byte slices as go-blip.
    const end = Math.min(offset + BIG_FRAME_DATA, entry.data.length);
    assert.equal(end - offset, vf.decoded.decoded_payload!.length, `${where}: frame slice size`);
    offsets.set(entry.msg, end);
    const flags = Number.parseInt(vf.decoded.flags, 16);
    const ours = await encoder.encode(vf.decoded.msg_no, flags, entry.data.subarray(offset, end));
    if ((flags & FLAG_COMPRESSED) === 0) {
      assert.equal(ours.toString('hex'), expectedHex, `${where}: bytes`);
    } else {
      assert.equal(ours.subarray(0, 2).toString('hex'), expectedHex.slice(0, 4), `${where}: header`);
      assert.equal(ours.subarray(-4).toString('hex'), vf.decoded.checksum, `${where}: running CRC`);
    }
    const back = await roundTrip.decode(ours);
    assert.ok(back.kind === 'data' && back.data.equals(entry.data.subarray(offset, end)), `${where}: round trip`);
  }
  encoder.close();
  roundTrip.close();
}

const files = readdirSync(VECTOR_DIR).filter((f) => f.endsWith('.json') && !f.startsWith('08-')).sort();

describe('BLIP golden vectors (go-blip captures)', () => {
  it('finds the vector files', () => assert.ok(files.length >= 9, files.join(',')));
  for (const file of files) {
    const vector = JSON.parse(readFileSync(join(VECTOR_DIR, file), 'utf8')) as Vector;
    it(`${file}: decodes every frame and delivers what go-blip delivered`, async () => {
      const c2s = await decodeDirection(vector, 'c2s');
      const s2c = await decodeDirection(vector, 's2c');
      for (const d of vector.delivered) {
        const pool = d.at === 'server' ? c2s : s2c;
        const msg = pool.find((m) => m.number === d.msg_no && typeName(m.type) === d.type);
        assert.ok(msg, `${file}: delivered ${d.type}#${d.msg_no}`);
        const { properties, body } = decodeMessage(msg.data);
        assert.deepEqual(properties, d.properties);
        assertBytes(body, d.body, `${file} delivered ${d.type}#${d.msg_no}`);
        assert.equal(msg.compressed, d.compressed_flag, 'compressed');
        assert.equal((msg.flags & 0x20) !== 0, d.noreply_flag, 'noreply');
        assert.equal((msg.flags & 0x10) !== 0, d.urgent_flag, 'urgent');
      }
    });
    it(`${file}: re-encodes every frame`, async () => {
      await reencodeDirection(vector, 'c2s', await decodeDirection(vector, 'c2s'));
      await reencodeDirection(vector, 's2c', await decodeDirection(vector, 's2c'));
    });
  }
});

describe('BLIP varints', () => {
  it('round-trips edge values like Go binary.PutUvarint', () => {
    const cases: [number, string][] = [[0, '00'], [1, '01'], [127, '7f'], [128, '8001'], [298, 'aa02'], [16384, '808001'], [2 ** 32, '8080808010']];
    for (const [n, hex] of cases) {
      assert.equal(encodeVarint(n).toString('hex'), hex);
      assert.deepEqual(decodeVarint(Buffer.from(hex, 'hex')), { value: n, length: hex.length / 2 });
    }
  });
  it('rejects a truncated varint as a protocol error', () => {
    assert.throws(() => decodeVarint(Buffer.from('8080', 'hex')), BlipProtocolError);
    assert.throws(() => decodeVarint(Buffer.alloc(0)), BlipProtocolError);
  });
});

describe('BLIP properties', () => {
  it('encodes no properties as a single 00 byte', () => {
    assert.equal(encodeMessage({}, Buffer.alloc(0)).toString('hex'), '00');
    assert.deepEqual(decodeMessage(Buffer.from('00', 'hex')), { properties: {}, body: Buffer.alloc(0) });
  });
  it('rejects malformed blocks', () => {
    const bad = (hex: string): void => assert.throws(() => decodeMessage(Buffer.from(hex, 'hex')), BlipProtocolError, hex);
    bad('03610062'); // "a\0b" not NUL-terminated
    bad('05610062'); // block longer than the message
    bad('026100'); // one string: odd count
    bad('086100620061006300'); // duplicate key "a"
    bad('80'); // truncated varint
  });
  it('refuses NUL inside keys or values', () => {
    assert.throws(() => encodeProperties({ 'a\0': 'b' }), TypeError);
  });
});

describe('BLIP frame decoder errors', () => {
  it('wrong checksum, unknown type, short frame and bad deflate data are protocol errors', async () => {
    const good = Buffer.from('01002850726f66696c6500676574436865636b706f696e7400636c69656e740074657374636c69656e74007d02c210', 'hex');
    const badCrc = Buffer.from(good);
    badCrc[badCrc.length - 1] ^= 1;
    await assert.rejects(new FrameDecoder().decode(badCrc), /checksum/);
    await assert.rejects(new FrameDecoder().decode(Buffer.from('0103000000000000', 'hex')), /unknown frame type/);
    await assert.rejects(new FrameDecoder().decode(Buffer.from('0100', 'hex')), /too short/);
    await assert.rejects(new FrameDecoder().decode(Buffer.from('01', 'hex')), /truncated varint/);
    await assert.rejects(new FrameDecoder().decode(Buffer.from('0108ffffffff00000000', 'hex')), BlipProtocolError);
    assert.ok(await new FrameDecoder().decode(good));
  });
});

describe('BLIP running CRC32', () => {
  it('the table fallback equals zlib.crc32, including when continued across chunks', async () => {
    const { crc32, tableCrc32 } = await import('../../src/replication/blip/codec/crc32.ts');
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) & 0xff));
    assert.equal(tableCrc32(Buffer.from('123456789')), 0xcbf43926);
    assert.equal(crc32(data), tableCrc32(data));
    assert.equal(tableCrc32(data.subarray(1000), tableCrc32(data.subarray(0, 1000))), crc32(data));
  });
});
