/**
 * Running CRC-32 (IEEE, as zlib's crc32). Node ≥ 20.15 has `zlib.crc32`; package.json allows any
 * Node 20, so older runtimes get an equivalent table-driven version.
 */
import * as zlib from 'node:zlib';

/** The standard reflected CRC-32 table (polynomial 0xEDB88320); constant data. */
const TABLE: Readonly<Uint32Array> = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function tableCrc32(data: Uint8Array, previous = 0): number {
  let crc = (previous ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data` continuing from `previous` (0 to start). */
export const crc32: (data: Uint8Array, previous?: number) => number =
  typeof native === 'function' ? (data, previous = 0) => native(data, previous) >>> 0 : tableCrc32;
