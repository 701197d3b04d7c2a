/**
 * Per-direction frame codec: running CRC32 over the uncompressed message bytes (never reset,
 * spec §2.6) and the direction's one deflate context. Encoder and decoder are stateful and must
 * see frames in wire order, one at a time (a returned promise must settle before the next call).
 */
import { crc32 } from './crc32.ts';
import { FrameDeflater, FrameInflater } from './compression.ts';
import { BlipProtocolError, CLOSE_MESSAGE_TOO_BIG } from './errors.ts';
import {
  FLAG_COMPRESSED, FLAG_MORECOMING, FrameType, decodeFrameHeader, isAckType, isKnownType, typeName,
} from './frame.ts';
import { decodeVarint, varintLength, writeVarint } from './varint.ts';

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

export interface FrameCodecOptions {
  /** Deflate/inflate synchronously when possible (default true); false forces the async zlib path (tests). */
  syncZlib?: boolean;
}

export class FrameEncoder {
  private crc = 0;
  private deflater: FrameDeflater | undefined;

  constructor(private readonly opts: FrameCodecOptions = {}) {}

  /**
   * Encodes one data frame; the COMPRESSED flag in `flags` decides whether the slice is deflated.
   * Returns the frame itself when it could be built synchronously (always, unless compressing on a
   * Node without the sync zlib path), else a promise; in that case the next call must wait for it.
   */
  encodeFrame(number: number, flags: number, data: Buffer): Buffer | Promise<Buffer> {
    let f = flags;
    // An empty slice is never sent compressed (spec §2.5).
    if ((f & FLAG_COMPRESSED) !== 0 && data.length === 0) f &= ~FLAG_COMPRESSED;
    if ((f & FLAG_COMPRESSED) === 0) return this.finish(number, f, data, data);
    this.deflater ??= new FrameDeflater(6, { sync: this.opts.syncZlib });
    const payload = this.deflater.compressFrame(data);
    return payload instanceof Promise ? payload.then((p) => this.finish(number, f, data, p)) : this.finish(number, f, data, payload);
  }

  /** As encodeFrame, always as a promise. */
  async encode(number: number, flags: number, data: Buffer): Promise<Buffer> {
    return this.encodeFrame(number, flags, data);
  }

  /** Header, payload and running CRC (of the uncompressed data) in one allocation. */
  private finish(number: number, flags: number, data: Buffer, payload: Buffer): Buffer {
    this.crc = crc32(data, this.crc);
    const headerLength = varintLength(number) + varintLength(flags);
    const frame = Buffer.allocUnsafe(headerLength + payload.length + CRC_BYTES);
    writeVarint(frame, writeVarint(frame, 0, number), flags);
    payload.copy(frame, headerLength);
    frame.writeUInt32BE(this.crc >>> 0, headerLength + payload.length);
    return frame;
  }

  close(): void { this.deflater?.close(); }
}

export class FrameDecoder {
  private crc = 0;
  private inflater: FrameInflater | undefined;

  constructor(private readonly opts: FrameCodecOptions = {}) {}

  /**
   * Decodes one WebSocket message. `maxOutput` bounds this frame's inflated size (the caller
   * passes what is left of its message-size budget). Throws BlipProtocolError on any violation.
   * Synchronous unless inflating on a Node without the sync zlib path (then a promise, which the
   * next call must wait for).
   */
  decodeFrame(frame: Buffer, maxOutput = Infinity): DecodedFrame | Promise<DecodedFrame> {
    const header = decodeFrameHeader(frame);
    const { number, flags, type } = header;
    if (!isKnownType(type)) throw new BlipProtocolError(`unknown frame type ${type}`);
    if (isAckType(type)) {
      const ack = decodeVarint(frame, header.length);
      return { kind: 'ack', number, type: type as AckFrame['type'], bytesReceived: ack.value };
    }
    if (frame.length < header.length + CRC_BYTES) throw new BlipProtocolError(`${typeName(type)} frame too short`);
    const payload = frame.subarray(header.length, frame.length - CRC_BYTES);
    const wireBytes = frame.length - header.length;
    const expected = frame.readUInt32BE(frame.length - CRC_BYTES);
    if ((flags & FLAG_COMPRESSED) === 0) {
      if (payload.length > maxOutput) throw new BlipProtocolError('message too big', CLOSE_MESSAGE_TOO_BIG);
      // copy: the message outlives the WebSocket frame buffer
      return this.finish(number, flags, type, false, Buffer.from(payload), expected, wireBytes);
    }
    this.inflater ??= new FrameInflater({ sync: this.opts.syncZlib });
    const data = this.inflater.decompressFrame(payload, maxOutput);
    return data instanceof Promise
      ? data.then((d) => this.finish(number, flags, type, true, d, expected, wireBytes))
      : this.finish(number, flags, type, true, data, expected, wireBytes);
  }

  /** As decodeFrame, always as a promise (errors reject). */
  async decode(frame: Buffer, maxOutput = Infinity): Promise<DecodedFrame> {
    return this.decodeFrame(frame, maxOutput);
  }

  private finish(number: number, flags: number, type: number, compressed: boolean, data: Buffer, expected: number, wireBytes: number): DataFrame {
    this.crc = crc32(data, this.crc);
    if (expected !== this.crc >>> 0) throw new BlipProtocolError('frame checksum mismatch');
    return {
      kind: 'data', number, flags, type: type as DataFrame['type'], moreComing: (flags & FLAG_MORECOMING) !== 0,
      compressed, data, wireBytes,
    };
  }

  close(): void { this.inflater?.close(); }
}
