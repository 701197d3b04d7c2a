/**
 * Unsigned LEB128 varints (7 data bits per byte, low group first, high bit = "more"), the same as
 * Go's binary.PutUvarint. Values stay below 2^53 so plain numbers are exact.
 */
import { BlipProtocolError } from './errors.ts';

/** Longest varint we accept: 8 bytes carry 56 bits, more than any message number or byte count. */
const MAX_VARINT_BYTES = 8;

export function encodeVarint(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** Writes `value` (a non-negative safe integer) at `offset`; returns the offset after it. */
export function writeVarint(buf: Uint8Array, offset: number, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
  let v = value;
  let pos = offset;
  while (v >= 0x80) {
    buf[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[pos++] = v;
  return pos;
}

export function varintLength(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) n++;
  return n;
}

/** Reads a varint at `offset`; throws BlipProtocolError when the buffer ends mid-varint. */
export function decodeVarint(buf: Uint8Array, offset = 0): { value: number; length: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    const pos = offset + i;
    if (pos >= buf.length) throw new BlipProtocolError('truncated varint');
    const byte = buf[pos];
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return { value, length: i + 1 };
    scale *= 0x80;
  }
  throw new BlipProtocolError('varint too long');
}
