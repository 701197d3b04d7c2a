/**
 * The hostile-input rules of src/json (issue 8, item 4): a nesting limit that every later layer can
 * live with, and strict UTF-8 for request bytes. The HTTP-level behaviour is in test/http/fuzz.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpError } from '../../src/errors.ts';
import { MAX_JSON_DEPTH, canonicalJson, decodeUtf8, parseJson, parseJsonBytes } from '../../src/json/index.ts';

const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);
const is400 = (e: unknown) => e instanceof HttpError && e.status === 400;

describe('JSON nesting limit', () => {
  it(`accepts ${MAX_JSON_DEPTH} levels and refuses ${MAX_JSON_DEPTH + 1}, for arrays and objects`, () => {
    assert.ok(Array.isArray(parseJson(nested(MAX_JSON_DEPTH))));
    assert.throws(() => parseJson(nested(MAX_JSON_DEPTH + 1)), is400);
    const obj = (d: number) => '{"a":'.repeat(d) + '1' + '}'.repeat(d);
    assert.equal(typeof parseJson(obj(MAX_JSON_DEPTH)), 'object');
    assert.throws(() => parseJson(obj(MAX_JSON_DEPTH + 1)), is400);
    // Also on the number-preserving slow path.
    assert.throws(() => parseJson(`{"n":1.0,"x":${nested(MAX_JSON_DEPTH + 1)}}`), is400);
  });

  it('whatever it accepts, canonical JSON (the rev-id layer) can serialize', () => {
    const v = parseJson(`{"x":${nested(MAX_JSON_DEPTH - 1)}}`);
    assert.ok(canonicalJson(v as Record<string, unknown>).length > 2 * MAX_JSON_DEPTH);
  });

  it('brackets inside strings do not count, escaped quotes do not end a string', () => {
    const s = JSON.stringify({ s: '['.repeat(5000) + '\\"' + '{'.repeat(5000), t: ['"[[[', '\\'] });
    assert.deepEqual(parseJson(s), JSON.parse(s));
  });

  it('many shallow values are fine however long the text', () => {
    const wide = JSON.stringify(Array.from({ length: 20_000 }, (_, i) => [i, { a: [i] }]));
    assert.equal((parseJson(wide) as unknown[]).length, 20_000);
  });
});

describe('strict UTF-8 for request bytes', () => {
  it('decodes valid UTF-8, including 4-byte sequences', () => {
    assert.equal(decodeUtf8(Buffer.from('{"a":"héllo 😀"}')), '{"a":"héllo 😀"}');
    assert.deepEqual(parseJsonBytes(Buffer.from('{"a":"😀"}')), { a: '😀' });
  });

  it('refuses invalid sequences with a 400 instead of turning them into U+FFFD', () => {
    for (const bad of [[0xff], [0xc0, 0x80], [0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      const bytes = Buffer.concat([Buffer.from('{"a":"'), Buffer.from(bad), Buffer.from('"}')]);
      assert.throws(() => parseJsonBytes(bytes), is400, Buffer.from(bad).toString('hex'));
    }
  });

  it('keeps a byte-order mark, so JSON.parse refuses it as Go does', () => {
    assert.equal(decodeUtf8(Buffer.from('\ufeff{}')), '\ufeff{}');
    assert.throws(() => parseJsonBytes(Buffer.from('\ufeff{}')), is400);
  });
});
