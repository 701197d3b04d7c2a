/** Outgoing scheduling: round robin, urgent placement, "begin in order", and the ACK window. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameType } from '../../src/replication/blip/codec/frame.ts';
import { decodeMessage, encodeMessage } from '../../src/replication/blip/codec/properties.ts';
import { decodeVarint, encodeVarint } from '../../src/replication/blip/codec/varint.ts';
import { BIG_FRAME_DATA, MAX_UNACKED_BYTES, Outbox, SMALL_FRAME_DATA, type OutgoingMessage } from '../../src/replication/blip/outbox.ts';

function message(number: number, size: number, urgent = false, type: OutgoingMessage['type'] = FrameType.MSG): OutgoingMessage {
  return { number, type, urgent, noReply: false, compressed: false, data: Buffer.alloc(size), offset: 0, bytesSent: 0, bytesAcked: 0 };
}

/** Runs the outbox like the sender loop does (uncompressed frame = data + 4 CRC bytes), recording frame order. */
function drain(box: Outbox, limit = 1000): string[] {
  const order: string[] = [];
  while (order.length < limit) {
    const next = box.next();
    if (!next) break;
    const { msg, frameData } = next;
    const end = Math.min(msg.offset + frameData, msg.data.length);
    msg.bytesSent += end - msg.offset + 4;
    msg.offset = end;
    order.push(`${msg.number}${msg.urgent ? 'u' : ''}:${frameData === BIG_FRAME_DATA ? 'B' : 'S'}`);
    box.afterFrame(msg);
  }
  return order;
}

describe('BLIP outbox', () => {
  it('alternates two large messages frame by frame (as in vector 06)', () => {
    const box = new Outbox();
    box.add(message(1, 50_001));
    box.add(message(2, 50_001));
    assert.deepEqual(drain(box).map((s) => s[0]).join(''), '12121212');
  });

  it('an urgent message goes ahead, leaving one normal message before it; normal frames shrink meanwhile', () => {
    const box = new Outbox();
    box.add(message(1, 100_000));
    box.add(message(2, 100_000));
    drain(box, 2); // both started
    box.add(message(3, 10_000, true));
    const order = drain(box, 3);
    assert.deepEqual(order, ['1:S', '3u:B', '2:B']);
  });

  it('a new urgent message does not overtake a message that has not started', () => {
    const box = new Outbox();
    box.add(message(1, 100_000));
    box.add(message(2, 10));
    box.add(message(3, 10, true));
    assert.deepEqual(drain(box, 3).map((s) => s.split(':')[0]), ['1', '2', '3u']);
  });

  it('parks a message after 128,000 unacked bytes and resumes it on an ACK', () => {
    const box = new Outbox();
    const msg = message(1, 1_000_000);
    box.add(msg);
    const sent = drain(box);
    assert.equal(sent.length, 8); // 8 × 16,378 = 131,024 > 128,000, like go-blip
    assert.equal(box.parkedCount, 1);
    assert.equal(box.ack(FrameType.ACKRPY, 1, msg.bytesSent), false, 'ACKRPY does not acknowledge a request');
    assert.equal(box.ack(FrameType.ACKMSG, 1, msg.bytesSent + 1), false, 'an ACK beyond what was sent is ignored');
    assert.equal(box.ack(FrameType.ACKMSG, 1, msg.bytesSent - MAX_UNACKED_BYTES), true);
    assert.equal(drain(box).length, 1);
    assert.equal(SMALL_FRAME_DATA < BIG_FRAME_DATA, true);
  });
});

describe('BLIP codec properties (fast-check)', () => {
  it('varints round-trip', () => {
    fc.assert(fc.property(fc.maxSafeNat(), (n) => {
      const enc = encodeVarint(n);
      assert.deepEqual(decodeVarint(enc), { value: n, length: enc.length });
    }));
  });
  it('messages round-trip (properties in order, any body)', () => {
    const str = fc.string({ unit: 'grapheme' }).filter((s) => !s.includes('\0'));
    fc.assert(fc.property(fc.uniqueArray(fc.tuple(str, str), { selector: (p) => p[0], maxLength: 8 }), fc.uint8Array({ maxLength: 300 }), (pairs, body) => {
      const props = Object.fromEntries(pairs);
      const decoded = decodeMessage(encodeMessage(props, Buffer.from(body)));
      assert.deepEqual(Object.entries(decoded.properties), Object.entries(props));
      assert.ok(decoded.body.equals(Buffer.from(body)));
    }));
  });
});
