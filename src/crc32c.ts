/**
 * CRC-32C (Castagnoli), the checksum Couchbase Server keeps of each document body and Sync Gateway
 * shows as `_sync.value_crc32c`. Node's zlib has only the IEEE polynomial. Pure and table-driven.
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Sync Gateway's form (`base.Crc32cHashString`): `0x` and eight lower-case hex digits. */
export function crc32cHex(data: Uint8Array): string {
  return `0x${crc32c(data).toString(16).padStart(8, '0')}`;
}
