import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c, crc32cHex } from '../../src/crc32c.ts';

describe('crc32c', () => {
  it('matches the published check value and the RFC 3720 (iSCSI) vectors', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    assert.equal(crc32c(Buffer.alloc(32, 0x00)), 0x8a9136aa);
    assert.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
    assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i))), 0x46dd794e);
    assert.equal(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i))), 0x113fdb5c);
  });

  it('prints as Sync Gateway does: 0x and eight lower-case hex digits', () => {
    assert.equal(crc32cHex(Buffer.from('123456789')), '0xe3069283');
    assert.equal(crc32cHex(Buffer.alloc(0)), '0x00000000');
  });
});
