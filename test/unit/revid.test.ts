import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { HttpError } from '../../src/errors.ts';
import { parseJson, canonicalJson } from '../../src/json/index.ts';
import { parseRevId, createRevId, compareRevIds } from '../../src/revid.ts';

/** md5( byte(len(parent)) ‖ parent ‖ body ), built by hand, independent of createRevId. */
function md5Hex(parent: string, canonical: string): string {
  const p = Buffer.from(parent, 'utf8');
  return createHash('md5').update(Buffer.concat([Buffer.of(p.length & 0xff), p, Buffer.from(canonical, 'utf8')])).digest('hex');
}

const REV1_FOO_BAR = '1-cd809becc169215072fd567eebd8b8de';

// The digest of a canonical body. What the server feeds it (which properties are hashed, e.g. no
// _attachments, _deleted:true kept) is checked through the real write path, REST and BLIP, in
// test/e2e/revid-known-answers.test.ts.
describe('createRevId: known answers from Sync Gateway\'s own test suite', () => {
  it('{"foo":"bar"} → 1-cd809becc169215072fd567eebd8b8de', () => {
    assert.equal(createRevId('', canonicalJson(parseJson('{"foo": "bar"}'))), REV1_FOO_BAR);
  });

  it('{"foo":"bar"} again on top of it → 2-6433ff70e11791fcb7fdf16746f4b9e7', () => {
    assert.equal(createRevId(REV1_FOO_BAR, '{"foo":"bar"}'), '2-6433ff70e11791fcb7fdf16746f4b9e7');
  });

  it('{} → 1-ca9ad22802b66f662ff171f226211d5c; {"_deleted":true} → 1-2cac91faf7b3f5e5fd56ff377bdb5466', () => {
    assert.equal(createRevId('', '{}'), '1-ca9ad22802b66f662ff171f226211d5c');
    assert.equal(createRevId('', '{"_deleted":true}'), '1-2cac91faf7b3f5e5fd56ff377bdb5466');
  });
});

describe('createRevId: hand-built digests', () => {
  it('second generation on top of the known rev', () => {
    const canonical = '{"foo":"baz"}';
    const expected = '2-' + md5Hex(REV1_FOO_BAR, canonical);
    // the md5 input starts with 0x22 (= 34, the parent length), then the parent rev itself
    assert.equal(Buffer.byteLength(REV1_FOO_BAR), 34);
    assert.equal(createRevId(REV1_FOO_BAR, canonical), expected);
  });

  it('body needing HTML escaping, nested key sorting and verbatim numbers', () => {
    const parent = '2-6433ff70e11791fcb7fdf16746f4b9e7';
    const text = '{"z": {"b": "<a&b>", "a": [1.0, 1e3, 12345678901234567890, -0]}, "a": "\u2028 é 😀"}';
    const canonical = '{"a":"\\u2028 é 😀","z":{"a":[1.0,1e3,12345678901234567890,-0],"b":"\\u003ca\\u0026b\\u003e"}}';
    const body = parseJson(text);
    assert.equal(canonicalJson(body), canonical);
    const expected = '3-' + createHash('md5')
      .update(Buffer.concat([Buffer.of(0x22), Buffer.from(parent), Buffer.from(canonical, 'utf8')])).digest('hex');
    assert.equal(createRevId(parent, canonicalJson(body)), expected);
  });

  it('uses the UTF-8 byte length of the parent, truncated to one byte like Go', () => {
    const long = '7-' + 'ab'.repeat(150); // 302 bytes → byte(302) = 46
    assert.equal(createRevId(long, '{}'), '8-' + md5Hex(long, '{}'));
    assert.equal(md5Hex(long, '{}'), createHash('md5').update(Buffer.concat([Buffer.of(46), Buffer.from(long), Buffer.from('{}')])).digest('hex'));
    const pouch = '3-é'; // non-ASCII digest from a liberal replicator: 5 bytes, not 3 UTF-16 units
    assert.equal(createRevId(pouch, '{}'), '4-' + md5Hex(pouch, '{}'));
  });

  it('property: generation is parent + 1 and the digest is 32 lowercase hex', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e9 }), fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !/\s/.test(s)), fc.string(), (gen, digest, body) => {
      const parent = `${gen}-${digest}`;
      const rev = createRevId(parent, body);
      assert.match(rev, /^\d+-[0-9a-f]{32}$/);
      assert.deepEqual(parseRevId(rev), { gen: gen + 1, digest: md5Hex(parent, body) });
    }), { numRuns: 200 });
  });
});

describe('parseRevId', () => {
  it('accepts <gen>-<digest> with any non-whitespace digest', () => {
    assert.deepEqual(parseRevId(REV1_FOO_BAR), { gen: 1, digest: 'cd809becc169215072fd567eebd8b8de' });
    assert.deepEqual(parseRevId('12-abc'), { gen: 12, digest: 'abc' });
    assert.deepEqual(parseRevId('3-a-b'), { gen: 3, digest: 'a-b' });
    assert.deepEqual(parseRevId('2-ABCdef_+/='), { gen: 2, digest: 'ABCdef_+/=' });
  });

  it('rejects malformed ids with 400 Invalid revision ID', () => {
    for (const bad of ['', '1', '1-', '-abc', '0-abc', '00-abc', '01-abc', 'a-b', '1a-b', ' 1-abc', '1-abc ', '1-a b', '1-a\tb',
      '1-\n', '-1-abc', '+1-abc', '1.5-abc', '99999999999999999999-abc']) {
      assert.throws(() => parseRevId(bad), (err: unknown) => {
        assert.ok(err instanceof HttpError, bad);
        assert.equal(err.status, 400);
        assert.equal(err.message, 'Invalid revision ID');
        return true;
      }, JSON.stringify(bad));
    }
    assert.throws(() => createRevId('garbage', '{}'), HttpError);
  });
});

describe('compareRevIds', () => {
  it('orders by numeric generation, then digest string', () => {
    assert.ok(compareRevIds('2-a', '1-z') > 0);
    assert.ok(compareRevIds('9-z', '10-a') < 0);
    assert.ok(compareRevIds('3-abc', '3-abd') < 0);
    assert.ok(compareRevIds('3-b', '3-abc') > 0);
    assert.equal(compareRevIds('3-abc', '3-abc'), 0);
    const revs = ['2-b', '10-a', '2-a', '1-z', '3-0'];
    assert.deepEqual(revs.sort(compareRevIds), ['1-z', '2-a', '2-b', '3-0', '10-a']);
  });

  it('sorts unparseable ids lowest instead of throwing', () => {
    assert.ok(compareRevIds('garbage', '1-a') < 0);
    assert.ok(compareRevIds('1-a', '0-a') > 0);
  });

  it('property: antisymmetric and consistent with generations', () => {
    const rev = fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.stringMatching(/^[0-9a-f]{1,4}$/)).map(([g, d]) => `${g}-${d}`);
    fc.assert(fc.property(rev, rev, (a, b) => {
      // A sum, not sign(x) === -sign(y): strict equality tells 0 from -0, so equal ids (drawn now and
      // then) failed it.
      assert.equal(Math.sign(compareRevIds(a, b)) + Math.sign(compareRevIds(b, a)), 0);
      if (a === b) assert.equal(compareRevIds(a, b), 0);
      const ga = parseRevId(a).gen; const gb = parseRevId(b).gen;
      if (ga !== gb) assert.equal(Math.sign(compareRevIds(a, b)), Math.sign(ga - gb));
    }));
  });
});
