/**
 * Per-direction frame codec: running CRC32 over the uncompressed message bytes (never reset,
 * spec §2.6) and the direction's one deflate context. Encoder and decoder are stateful and must
 * see frames in wire order, one at a time.
 */
import { crc32 } from './crc32.ts';
import { FrameDeflater, FrameInflater } from './compression.ts';
import { BlipProtocolError, CLOSE_MESSAGE_TOO_BIG } from './errors.ts';
import {
  FLAG_COMPRESSED, FLAG_MORECOMING, FrameType, decodeFrameHeader, encodeFrameHeader, isAckType, isKnownType, typeName,
} from './frame.ts';
import { decodeVarint } from './varint.ts';

const CRC_BYTES = 4;

export interface DataFrame {
  kind: 'data';
  number: number;
  flags: number;
  type: FrameType.MSG | FrameType.RPY | FrameType.ERR;
  moreComing: boolean;
  compressed: boolean;
  /** This frame's uncompressed slice of the message. */
  data: Buffer;
  /** Bytes after the header (payload as sent + CRC): what ACKs count. */
  wireBytes: number;
}

export interface AckFrame {
  kind: 'ack';
  number: number;
  type: FrameType.ACKMSG | FrameType.ACKRPY;
  bytesReceived: number;
}

export type DecodedFrame = DataFrame | AckFrame;

export class FrameEncoder {
  private crc = 0;
  private deflater: FrameDeflater | undefined;

  /** Encodes one data frame. The COMPRESSED flag in `flags` decides whether the slice is deflated. */
  async encode(number: number, flags: number, data: Buffer): Promise<Buffer> {
    let f = flags;
    let payload = data;
    // An empty slice is never sent compressed (spec §2.5).
    if ((f & FLAG_COMPRESSED) !== 0 && data.length === 0) f &= ~FLAG_COMPRESSED;
    if ((f & FLAG_COMPRESSED) !== 0) {
      this.deflater ??= new FrameDeflater();
      payload = await this.deflater.compress(data);
    }
    this.crc = crc32(data, this.crc);
    const trailer = Buffer.alloc(CRC_BYTES);
    trailer.writeUInt32BE(this.crc >>> 0);
    return Buffer.concat([encodeFrameHeader(number, f), payload, trailer]);
  }

  close(): void { this.deflater?.close(); }
}

export class FrameDecoder {
  private crc = 0;
  private inflater: FrameInflater | undefined;

  /**
   * Decodes one WebSocket message. `maxOutput` bounds this frame's inflated size (the caller
   * passes what is left of its message-size budget). Throws BlipProtocolError on any violation.
   */
  async decode(frame: Buffer, maxOutput = Infinity): Promise<DecodedFrame> {
    const header = decodeFrameHeader(frame);
    const { number, flags, type } = header;
    if (!isKnownType(type)) throw new BlipProtocolError(`unknown frame type ${type}`);
    if (isAckType(type)) {
      const ack = decodeVarint(frame, header.length);
      return { kind: 'ack', number, type: type as AckFrame['type'], bytesReceived: ack.value };
    }
    if (frame.length < header.length + CRC_BYTES) throw new BlipProtocolError(`${typeName(type)} frame too short`);
    const payload = frame.subarray(header.length, frame.length - CRC_BYTES);
    const compressed = (flags & FLAG_COMPRESSED) !== 0;
    let data: Buffer;
    if (compressed) {
      this.inflater ??= new FrameInflater();
      data = await this.inflater.decompress(payload, maxOutput);
    } else {
      if (payload.length > maxOutput) throw new BlipProtocolError('message too big', CLOSE_MESSAGE_TOO_BIG);
      data = Buffer.from(payload); // copy: the message outlives the WebSocket frame buffer
    }
    this.crc = crc32(data, this.crc);
    const expected = frame.readUInt32BE(frame.length - CRC_BYTES);
    if (expected !== this.crc >>> 0) throw new BlipProtocolError('frame checksum mismatch');
    return {
      kind: 'data', number, flags, type: type as DataFrame['type'], moreComing: (flags & FLAG_MORECOMING) !== 0,
      compressed, data, wireBytes: frame.length - header.length,
    };
  }

  close(): void { this.inflater?.close(); }
}
