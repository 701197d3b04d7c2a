/**
 * BLIP v3 frame header: varint message number, varint flags (spec blip.md §2.2).
 */
import { BlipProtocolError } from './errors.ts';
import { decodeVarint, encodeVarint } from './varint.ts';

export const enum FrameType { MSG = 0, RPY = 1, ERR = 2, ACKMSG = 4, ACKRPY = 5 }

export const TYPE_MASK = 0x07;
export const FLAG_COMPRESSED = 0x08;
export const FLAG_URGENT = 0x10;
export const FLAG_NOREPLY = 0x20;
export const FLAG_MORECOMING = 0x40;

export function isAckType(type: number): boolean {
  return type === FrameType.ACKMSG || type === FrameType.ACKRPY;
}

export function isKnownType(type: number): boolean {
  return type === FrameType.MSG || type === FrameType.RPY || type === FrameType.ERR || isAckType(type);
}

export interface FrameHeader { number: number; flags: number; type: number; length: number }

/** Parses the two header varints; an empty or truncated header is a protocol error. */
export function decodeFrameHeader(frame: Uint8Array): FrameHeader {
  if (frame.length === 0) throw new BlipProtocolError('empty frame');
  const num = decodeVarint(frame, 0);
  const flags = decodeVarint(frame, num.length);
  return { number: num.value, flags: flags.value, type: flags.value & TYPE_MASK, length: num.length + flags.length };
}

export function encodeFrameHeader(number: number, flags: number): Buffer {
  return Buffer.concat([encodeVarint(number), encodeVarint(flags)]);
}

/** An ACK frame: header (flags type|Urgent|NoReply as LiteCore and go-blip send them) + varint byte count; no CRC. */
export function encodeAckFrame(type: FrameType.ACKMSG | FrameType.ACKRPY, number: number, bytesReceived: number): Buffer {
  return Buffer.concat([encodeFrameHeader(number, type | FLAG_URGENT | FLAG_NOREPLY), encodeVarint(bytesReceived)]);
}

export function typeName(type: number): string {
  return ['MSG', 'RPY', 'ERR', 'type3', 'ACKMSG', 'ACKRPY', 'type6', 'type7'][type & TYPE_MASK];
}
