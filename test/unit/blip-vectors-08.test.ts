/**
 * Opening frames of a real Couchbase Lite 2.8 replicator (LiteCore zlib deflate, not go-blip):
 * what a real client sends first must decode, including the compressed urgent proposeChanges.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameDecoder } from '../../src/replication/blip/codec/frame-codec.ts';
import { decodeMessage } from '../../src/replication/blip/codec/properties.ts';

interface Frame {
  dir: string;
  hex: string;
  decoded: {
    msg_no: number; flags: string; compressed: boolean; urgent: boolean; wire_payload_length: number;
    decoded_length: number; properties: Record<string, string>; body_text: string;
  };
}
const vector = JSON.parse(readFileSync(join(import.meta.dirname, '../fixtures/blip-vectors/08-couchbase-lite-2.8-opening-frames.json'), 'utf8')) as {
  push_connection: Frame[]; pull_connection: Frame[];
};

describe('Couchbase Lite 2.8 opening frames', () => {
  for (const name of ['push_connection', 'pull_connection'] as const) {
    it(`${name}: every frame decodes to the captured message`, async () => {
      const decoder = new FrameDecoder(); // one per connection direction
      for (const f of vector[name]) {
        assert.equal(f.dir, 'c2s');
        const frame = await decoder.decode(Buffer.from(f.hex, 'hex'));
        assert.ok(frame.kind === 'data');
        assert.equal(frame.number, f.decoded.msg_no);
        assert.equal(frame.flags, Number.parseInt(f.decoded.flags, 16));
        assert.equal(frame.compressed, f.decoded.compressed);
        assert.equal((frame.flags & 0x10) !== 0, f.decoded.urgent);
        assert.equal(frame.moreComing, false);
        assert.equal(frame.wireBytes - 4, f.decoded.wire_payload_length);
        assert.equal(frame.data.length, f.decoded.decoded_length);
        const { properties, body } = decodeMessage(frame.data);
        assert.deepEqual(properties, f.decoded.properties);
        assert.equal(body.toString('utf8'), f.decoded.body_text);
      }
      decoder.close();
    });
  }

  it('the proposeChanges body parses as [docID, revID, serverRevID, bodySize] entries', async () => {
    const decoder = new FrameDecoder();
    await decoder.decode(Buffer.from(vector.push_connection[0].hex, 'hex'));
    const second = await decoder.decode(Buffer.from(vector.push_connection[1].hex, 'hex'));
    assert.ok(second.kind === 'data');
    const entries = JSON.parse(decodeMessage(second.data).body.toString('utf8')) as unknown[][];
    assert.equal(entries.length, 4);
    assert.deepEqual(entries[0], ['doc1', '1-dc658d95a93399043f9ac5c1d88a0ca4d4402593', '', 50]);
    decoder.close();
  });
});
