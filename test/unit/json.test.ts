import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HttpError } from '../../src/errors.ts';
import { RawNumber, parseJson, canonicalJson, goJsonString } from '../../src/json/index.ts';

/** Replace RawNumbers by their JS number, so results can be compared with JSON.parse. */
function lossy(v: unknown): unknown {
  if (v instanceof RawNumber) return v.valueOf();
  if (Array.isArray(v)) return v.map(lossy);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(out, k, { value: lossy((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

/** Order-sensitive comparison (key order included), RawNumbers shown with their text. */
function shape(v: unknown): string {
  // The replacer sees toJSON()'s result, so look at the holder's raw value instead.
  return JSON.stringify(v, function (this: Record<string, unknown>, k: string, x: unknown) {
    const raw = this[k];
    return raw instanceof RawNumber ? `RawNumber(${raw.text})` : x;
  });
}

function assertBadJson(text: string): void {
  assert.throws(() => parseJson(text), (err: unknown) => {
    assert.ok(err instanceof HttpError, `expected HttpError for ${JSON.stringify(text)}`);
    assert.equal(err.status, 400);
    assert.match(err.message, /^Bad JSON: /);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Independent reference implementation of Go's encoding, built on JSON.stringify + Buffer.compare.
// ---------------------------------------------------------------------------------------------

/** A number literal as it appears in the source text (test-side, independent of RawNumber). */
class Lit { constructor(readonly text: string) {} }

function refGoString(s: string): string {
  // JSON.stringify escapes `"` `\` and C0 (with \b \f short forms) and writes lone surrogates as \udXXX.
  return JSON.stringify(s).replace(/\\(?:u[0-9a-f]{4}|.)|[<>&\u2028\u2029]/g, (m) => {
    if (m === '\\b') return '\\u0008';
    if (m === '\\f') return '\\u000c';
    if (/^\\ud[89a-f]/.test(m)) return '\ufffd';
    if (m.length === 1) return '\\u' + m.charCodeAt(0).toString(16).padStart(4, '0');
    return m;
  });
}

function refCanonical(v: unknown): string {
  if (v instanceof Lit) return v.text;
  if (v instanceof RawNumber) return v.text;
  if (typeof v === 'string') return refGoString(v);
  if (typeof v === 'number') return JSON.stringify(v); // tree numbers are written with JSON.stringify (so -0 → "0")
  if (v === null || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(refCanonical).join(',') + ']';
  const o = v as Record<string, unknown>;
  // Go's decoder turns lone surrogates into U+FFFD, so keys equal after that are one key: the last wins.
  const byBytes = new Map<string, string>();
  for (const k of Object.keys(o)) byBytes.set(Buffer.from(k).toString('latin1'), k);
  const keys = [...byBytes.values()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return '{' + keys.map((k) => refGoString(k) + ':' + refCanonical(o[k])).join(',') + '}';
}

/** Serialize with chosen whitespace and key order; Lit leaves are written verbatim. */
function toText(v: unknown, ws: string): string {
  if (v instanceof Lit) return v.text;
  if (Array.isArray(v)) return '[' + ws + v.map((x) => toText(x, ws)).join(ws + ',' + ws) + ws + ']';
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return '{' + ws + Object.keys(o).map((k) => JSON.stringify(k) + ws + ':' + ws + toText(o[k], ws)).join(',' + ws) + ws + '}';
  }
  return JSON.stringify(v);
}

/** Same value with every object's keys in reverse order (and rotated), recursively. */
function reorder(v: unknown, rot: number): unknown {
  if (Array.isArray(v)) return v.map((x) => reorder(x, rot));
  if (v !== null && typeof v === 'object' && !(v instanceof Lit)) {
    const keys = Object.keys(v).reverse();
    const r = keys.length ? rot % keys.length : 0;
    const out: Record<string, unknown> = {};
    for (const k of [...keys.slice(r), ...keys.slice(0, r)]) {
      // defineProperty: a "__proto__" key must stay an own property
      Object.defineProperty(out, k, { value: reorder((v as Record<string, unknown>)[k], rot), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return v;
}

// String.prototype.isWellFormed/toWellFormed exist in Node 20 but not in the ES2022 lib typings.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const toWellFormed = (s: string): string => s.replace(LONE_SURROGATE, '\ufffd');
const isWellFormed = (s: string): boolean => toWellFormed(s) === s;

// String units that exercise every escaping rule, sorting corner (U+E000..U+FFFF vs astral) and lone surrogates.
const SPECIAL_UNITS = ['<', '>', '&', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u0000', '\u001f', '\u007f',
  '\u2028', '\u2029', '\ue000', '\uffff', '\ufffd', '😀', '\u{10ffff}', 'é', '\ud800', '\udc00', '_', 'a', 'b', 'z', '0', '1'];
const unit = fc.oneof(fc.constantFrom(...SPECIAL_UNITS), fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)));
const anyString = fc.string({ unit, maxLength: 8 });
const wellFormedString = anyString.filter(isWellFormed);

const RISKY_LITERALS = ['1.0', '1e3', '1E3', '1e+3', '-1.50', '12345678901234567890', '-0', '0.0', '1e400', '-1e-400',
  '9007199254740993', '0.10000000000000000001', '2.50e-3', '1.0e0'];
const SAFE_LITERALS = ['0', '1', '-1', '1.5', '0.1', '123456789012345', '1e+21', '1.5e-7', '-2.25'];
const literal = fc.oneof(fc.constantFrom(...RISKY_LITERALS, ...SAFE_LITERALS).map((t) => new Lit(t)), fc.double({ noNaN: true, noDefaultInfinity: true }));

function makeTree(keyArb: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  return fc.letrec((tie) => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('arr'), tie('obj')),
    leaf: fc.oneof(literal, anyString, fc.boolean(), fc.constant(null)),
    arr: fc.array(tie('tree'), { maxLength: 4 }),
    obj: fc.dictionary(keyArb, tie('tree'), { maxKeys: 5, noNullPrototype: true }),
  })).tree;
}
/** Any keys, including ones that differ only by lone surrogates (one key to Go). */
const tree = makeTree(anyString);
/** Keys that stay distinct for Go, so key order can't matter. */
const distinctKeyTree = makeTree(wellFormedString);
const whitespace = fc.constantFrom('', ' ', '\n', '\t ', '\r\n  ');

describe('parseJson', () => {
  it('returns plain JS values for round-trippable numbers (fast path)', () => {
    assert.deepEqual(parseJson('{"a":1,"b":[1.5,-2,0.1,123456789012345],"c":"x","d":null,"e":true}'),
      { a: 1, b: [1.5, -2, 0.1, 123456789012345], c: 'x', d: null, e: true });
    assert.equal(parseJson('1.5e-7'), 1.5e-7);
    assert.equal(parseJson('1e+21'), 1e21);
    assert.equal(parseJson('"1.0"'), '1.0');
  });

  it('keeps literals that a JS number would change as RawNumber', () => {
    for (const lit of ['1.0', '1e3', '1E3', '12345678901234567890', '-0', '0.50', '1e400', '9007199254740993']) {
      const v = parseJson(`{"n":${lit}}`) as { n: unknown };
      assert.ok(v.n instanceof RawNumber, lit);
      assert.equal((v.n as RawNumber).text, lit);
      assert.equal(canonicalJson(v), `{"n":${lit}}`);
    }
    const top = parseJson(' 1.0 ');
    assert.ok(top instanceof RawNumber);
    assert.equal((top as RawNumber).text, '1.0');
    assert.equal(+(top as RawNumber), 1);
    assert.equal(JSON.stringify({ x: new RawNumber('1.0') }), '{"x":1}');
  });

  it('mixes raw and plain numbers and leaves look-alikes inside strings alone', () => {
    const v = parseJson('{"a":[1.0, 2, 3.5],"s":"x:1.0,[2.0","q":"\\"1.0","bs":"\\\\","b":1e3}');
    assert.equal(shape(v), '{"a":["RawNumber(1.0)",2,3.5],"s":"x:1.0,[2.0","q":"\\"1.0","bs":"\\\\","b":"RawNumber(1e3)"}');
  });

  it('resolves duplicate keys exactly like JSON.parse (last wins) on both paths', () => {
    const cases = [
      '{"a":1,"a":2}', // fast path
      '{"admin":false,"admin":true}',
      '{"a":1.0,"b":0,"a":2}', // slow path, raw value overwritten by a plain one
      '{"a":2,"b":0,"a":1.0}', // slow path, plain value overwritten by a raw one
      '{"x":{"roles":["a"],"roles":["admin"]},"n":1.0}',
      '{"a":{"p":1.0},"a":{"q":2}}',
      '{"__proto__":{"isAdmin":true},"__proto__":{"isAdmin":1.0}}',
    ];
    for (const text of cases) {
      const expected = JSON.parse(text) as unknown;
      const actual = parseJson(text);
      assert.deepEqual(lossy(actual), expected, text);
      assert.equal(shape(lossy(actual)), JSON.stringify(expected), `key order for ${text}`);
    }
    const raw = parseJson('{"a":2,"a":1.0}') as { a: unknown };
    assert.ok(raw.a instanceof RawNumber);
  });

  it('keeps "__proto__" an own property (no prototype pollution) on both paths', () => {
    const direct = parseJson('{"__proto__":1.0}') as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(direct), Object.prototype);
    assert.ok(Object.getOwnPropertyDescriptor(direct, '__proto__')?.value instanceof RawNumber);
    assert.equal(canonicalJson(direct), '{"__proto__":1.0}');
    for (const text of ['{"__proto__":{"polluted":1}}', '{"__proto__":{"polluted":1.0}}']) {
      const v = parseJson(text) as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(v), Object.prototype);
      assert.ok(Object.hasOwn(v, '__proto__'));
      assert.equal((({}) as Record<string, unknown>).polluted, undefined);
      assert.match(canonicalJson(v), /^\{"__proto__":\{"polluted":1(\.0)?\}\}$/);
    }
  });

  it('does not treat user strings that resemble the internal sentinel as numbers', () => {
    const v = parseJson('{"a":"\\u0000rawnum:0","b":"\\u0000rawnum:00000000000000000000000000000000:0","n":1.0}') as Record<string, unknown>;
    assert.equal(v.a, '\u0000rawnum:0');
    assert.equal(v.b, '\u0000rawnum:00000000000000000000000000000000:0');
    assert.ok(v.n instanceof RawNumber);
  });

  it('rejects malformed JSON with 400 Bad JSON on both paths', () => {
    for (const text of ['', ' ', '{', '{"a":}', '{"a":1,}', '[1,]', '{"a":1.}', '{"a":.5}', '[01]', '[1.0,]', '{"a":1.0',
      '[-]', '[1e]', '[1.0e+]', '{a:1}', "{'a':1}", '[NaN]', '[Infinity]', '[0x10]', '[1.0] x', '"abc', '{"a":"1.0}',
      '[1.0, "\u0001"]', '[+1]', '[1.0 2]', '{1:2}', '{1.0:2}', '{"a":{-0:1}}', '{1e3:1.0}']) {
      assertBadJson(text);
    }
  });

  it('property: agrees with JSON.parse on arbitrary JSON text (fc.json)', () => {
    fc.assert(fc.property(fc.json({ stringUnit: 'binary' }), (text) => {
      assert.deepEqual(parseJson(text), JSON.parse(text));
    }), { numRuns: 300 });
  });

  it('property: equals JSON.parse except that risky literals become RawNumber with their exact text', () => {
    fc.assert(fc.property(tree, whitespace, (t, ws) => {
      const text = toText(t, ws);
      const v = parseJson(text);
      assert.equal(shape(lossy(v)), JSON.stringify(JSON.parse(text)));
      assert.deepEqual(lossy(v), JSON.parse(text));
      // every number that JS would alter is kept verbatim
      assert.equal(canonicalJson(v), refCanonical(t));
    }), { numRuns: 500 });
  });

  it('property: duplicate keys in generated objects resolve like JSON.parse', () => {
    const entry = fc.tuple(fc.constantFrom('a', 'b', '__proto__', '0', '1'), fc.oneof(literal, fc.string({ maxLength: 3 })));
    fc.assert(fc.property(fc.array(entry, { maxLength: 8 }), (entries) => {
      const text = '{' + entries.map(([k, v]) => JSON.stringify(k) + ':' + toText(v, '')).join(',') + '}';
      const expected = JSON.parse(text) as unknown;
      const actual = parseJson(text);
      assert.deepEqual(lossy(actual), expected);
      assert.equal(shape(lossy(actual)), JSON.stringify(expected));
    }), { numRuns: 300 });
  });
});

describe('goJsonString', () => {
  it('escapes like Go json.Marshal (HTML-safe, \\b and \\f as \\u00XX)', () => {
    assert.equal(goJsonString('plain'), '"plain"');
    assert.equal(goJsonString('"\\/'), '"\\"\\\\/"');
    assert.equal(goJsonString('\b\f\n\r\t\u0000\u0001\u001f\u007f'), '"\\u0008\\u000c\\n\\r\\t\\u0000\\u0001\\u001f\u007f"');
    assert.equal(goJsonString('<a href="x">&</a>'), '"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"');
    assert.equal(goJsonString('\u2028\u2029'), '"\\u2028\\u2029"');
    assert.equal(goJsonString('é☃😀\ue000\uffff'), '"é☃😀\ue000\uffff"');
  });

  it('turns lone surrogates into U+FFFD (what Go\'s decoder stores for a lone \\udXXX escape)', () => {
    assert.equal(goJsonString('a\ud800b'), '"a\ufffdb"');
    assert.equal(goJsonString('\udc00'), '"\ufffd"');
    assert.equal(goJsonString('\ud83d'), '"\ufffd"');
    assert.equal(goJsonString('\ude00\ud83d'), '"\ufffd\ufffd"');
    assert.equal(goJsonString('😀\ud83d'), '"😀\ufffd"');
    assert.equal(goJsonString('<\udc00😀'), '"\\u003c\ufffd😀"');
  });

  it('property: matches the reference escaper on arbitrary strings', () => {
    fc.assert(fc.property(fc.oneof(anyString, fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })), (s) => {
      assert.equal(goJsonString(s), refGoString(s));
      const back = JSON.parse(goJsonString(s)) as string;
      assert.equal(back, toWellFormed(s));
    }), { numRuns: 1000 });
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and writes no whitespace', () => {
    const v = parseJson('{ "b" : 1, "a" : { "d" : [ 1, "<&>", { "y": 2, "x": 1 } ], "c" : null }, "A": true, "_": false }');
    assert.equal(canonicalJson(v), '{"A":true,"_":false,"a":{"c":null,"d":[1,"\\u003c\\u0026\\u003e",{"x":1,"y":2}]},"b":1}');
    assert.equal(canonicalJson({ 10: 'a', 9: 'b', '1a': 'c' }), '{"10":"a","1a":"c","9":"b"}');
    assert.equal(canonicalJson({}), '{}');
    assert.equal(canonicalJson([]), '[]');
  });

  it('sorts keys by UTF-8 bytes, not UTF-16 units (astral vs U+E000..U+FFFF)', () => {
    const v = { '😀': 1, '\ue000': 2, '\uffff': 3, z: 4, 'é': 5 };
    assert.equal(canonicalJson(v), '{"z":4,"é":5,"\ue000":2,"\uffff":3,"😀":1}');
    assert.equal(canonicalJson({ '𝒜': 1, '😀': 2, 'a😀': 3, 'a\uffff': 4 }), '{"a\uffff":4,"a😀":3,"𝒜":1,"😀":2}');
  });

  it('collapses keys that only differ by lone surrogates (Go decodes them all to U+FFFD): last one wins', () => {
    assert.equal(canonicalJson(parseJson('{"\\ud800":1,"a":0,"\\udc00":2}')), '{"a":0,"\ufffd":2}');
    assert.equal(canonicalJson(parseJson('{"\\ufffd":1,"\\udfff":2.0}')), '{"\ufffd":2.0}');
    assert.equal(canonicalJson({ 'x\ud800': 1, 'x\ud800\udc00': 2 }), '{"x\ufffd":1,"x\u{10000}":2}');
  });

  it('writes numbers verbatim and handles non-JSON JS values like JSON.stringify/Go', () => {
    assert.equal(canonicalJson([new RawNumber('1.0'), new RawNumber('1e400'), 1.5, -0, 1e21, 5e-7, 2n ** 64n]),
      '[1.0,1e400,1.5,-0,1e+21,5e-7,18446744073709551616]');
    assert.equal(canonicalJson({ a: undefined, b: 1, c: () => 1 }), '{"b":1}');
    assert.equal(canonicalJson([undefined]), '[null]');
    assert.equal(canonicalJson({ d: new Date('2021-03-04T10:11:12.345Z') }), '{"d":"2021-03-04T10:11:12.345Z"}');
    assert.throws(() => canonicalJson({ a: NaN }), TypeError);
    assert.throws(() => canonicalJson([Infinity]), TypeError);
    assert.throws(() => canonicalJson(undefined), TypeError);
  });

  it('property: output is independent of key order and whitespace in the input text', () => {
    fc.assert(fc.property(distinctKeyTree, whitespace, fc.nat(7), (t, ws, rot) => {
      const a = canonicalJson(parseJson(toText(t, '')));
      const b = canonicalJson(parseJson(toText(reorder(t, rot), ws)));
      assert.equal(a, b);
    }), { numRuns: 500 });
  });

  it('property: canonicalJson(parseJson(JSON.stringify(x))) is stable under key reordering', () => {
    fc.assert(fc.property(fc.jsonValue({ stringUnit: 'binary' }), fc.nat(7), (x, rot) => {
      assert.equal(canonicalJson(parseJson(JSON.stringify(x))), canonicalJson(parseJson(JSON.stringify(reorder(x, rot)))));
    }), { numRuns: 300 });
  });

  it('property: JSON.parse(canonicalJson(x)) round-trips plain JSON values', () => {
    fc.assert(fc.property(fc.jsonValue({ stringUnit: 'binary' }), (x) => {
      assert.deepEqual(JSON.parse(canonicalJson(x)), x);
    }), { numRuns: 500 });
    fc.assert(fc.property(tree, (t) => {
      // the reference tree with Lit leaves: strings lose only lone surrogates (→ U+FFFD)
      const c = canonicalJson(parseJson(toText(t, ' ')));
      assert.equal(c, refCanonical(t));
      JSON.parse(c);
    }), { numRuns: 300 });
  });

  it('property: well-formed strings survive the round trip unchanged', () => {
    fc.assert(fc.property(fc.dictionary(wellFormedString, wellFormedString, { noNullPrototype: true }), (o) => {
      assert.deepEqual(JSON.parse(canonicalJson(o)), o);
    }), { numRuns: 300 });
  });
});
