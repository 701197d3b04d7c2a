/**
 * BLIP message encoding (spec blip.md §2.3): varint properties length, then `key\0value\0…`
 * (UTF-8, every string NUL-terminated), then the body with no length prefix. v3 has no tokenizing.
 */
import { BlipProtocolError } from './errors.ts';
import { decodeVarint, encodeVarint } from './varint.ts';

export type Properties = Record<string, string>;

/** LiteCore refuses properties blocks above 100 KiB; so do we, in both directions. */
export const MAX_PROPERTIES_BYTES = 100 * 1024;

/** Encodes properties in the object's own key order (the order on the wire is not significant). */
export function encodeProperties(properties: Properties): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(properties)) {
    if (typeof value !== 'string') throw new TypeError(`BLIP property ${key} must be a string`);
    if (key.includes('\0') || value.includes('\0')) throw new TypeError(`BLIP property ${key} contains NUL`);
    parts.push(Buffer.from(key, 'utf8'), Buffer.of(0), Buffer.from(value, 'utf8'), Buffer.of(0));
  }
  const block = Buffer.concat(parts);
  if (block.length > MAX_PROPERTIES_BYTES) throw new RangeError('BLIP properties too large');
  return Buffer.concat([encodeVarint(block.length), block]);
}

/** The whole message bytes that get cut into frames. */
export function encodeMessage(properties: Properties, body: Buffer): Buffer {
  return Buffer.concat([encodeProperties(properties), body]);
}

/**
 * Splits a complete message into properties and body. The properties block must end with NUL,
 * hold an even number of strings and no duplicate key (go-blip rejects duplicates too).
 */
export function decodeMessage(data: Buffer): { properties: Properties; body: Buffer } {
  const { value: length, length: varLen } = decodeVarint(data, 0);
  if (length > MAX_PROPERTIES_BYTES) throw new BlipProtocolError('properties too large');
  const end = varLen + length;
  if (end > data.length) throw new BlipProtocolError('properties truncated');
  const properties: Properties = Object.create(null) as Properties;
  if (length > 0) {
    if (data[end - 1] !== 0) throw new BlipProtocolError('properties not NUL-terminated');
    const strings = data.toString('utf8', varLen, end - 1).split('\0');
    if (strings.length % 2 !== 0) throw new BlipProtocolError('odd number of property strings');
    for (let i = 0; i < strings.length; i += 2) {
      if (Object.prototype.hasOwnProperty.call(properties, strings[i])) {
        throw new BlipProtocolError(`duplicate property ${strings[i]}`);
      }
      properties[strings[i]] = strings[i + 1];
    }
  }
  return { properties: { ...properties }, body: data.subarray(end) };
}
