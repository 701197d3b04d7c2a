/**
 * The JSON delta codec (src/delta) against Couchbase Lite's format: every vector of the spec
 * (collections-delta.md §2.8, vendored in test/fixtures/delta-vectors.json) both ways, at the string
 * threshold the vector was made with; malformed deltas throw DeltaError; fast-check properties.
 *
 * Seeded: a failure prints fast-check's seed and path; replay with
 *   FC_SEED=<seed> FC_PATH=<path> node --import tsx --test test/unit/delta.test.ts
 * FC_SEED=random draws a fresh seed (printed on failure); FC_RUNS sets the number of runs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { applyDelta, createDelta, DeltaError } from '../../src/delta/index.ts';
import { applyStringPatch } from '../../src/delta/string-patch.ts';

interface Vector { name: string; old: unknown; new: unknown; delta: unknown; threshold: number }
const fixture = JSON.parse(readFileSync(new URL('../fixtures/delta-vectors.json', import.meta.url), 'utf8')) as { vectors: Vector[] };

function params<T>(runs = 400): fc.Parameters<T> {
  const p: fc.Parameters<T> = { numRuns: Number(process.env.FC_RUNS ?? runs) };
  const seed = process.env.FC_SEED;
  if (seed === undefined || seed === '') p.seed = 0xde17a;
  else if (seed !== 'random') p.seed = Number(seed);
  if (process.env.FC_PATH) p.path = process.env.FC_PATH;
  return p;
}

const bytes = (v: unknown): number => Buffer.byteLength(JSON.stringify(v), 'utf8');
/** What the wire does to a delta: JSON text and back. */
const wire = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

describe('delta codec: the spec vectors (§2.8)', () => {
  assert.ok(fixture.vectors.length >= 25, 'all vectors vendored');
  for (const v of fixture.vectors) {
    it(`${v.name}: create gives the vector's delta`, () => {
      const d = createDelta(v.old, v.new, { minStringDiffLength: v.threshold });
      assert.deepStrictEqual(d, v.delta);
    });
    it(`${v.name}: apply gives the new value`, () => {
      assert.deepStrictEqual(applyDelta(v.old, v.delta), v.new);
    });
  }

  it('key order in an object delta is not significant (SG sorts, LiteCore does not)', () => {
    assert.deepStrictEqual(applyDelta({ foo: 1 }, { foo: [], bar: 2 }), { bar: 2 });
    assert.deepStrictEqual(applyDelta([1, 2, 3, 5, 6, 7], { '5-': [], '4': 5, '3': 4 }), [1, 2, 3, 4, 5]);
  });

  it('accepts the JsonDiffPatch forms it never generates', () => {
    assert.deepStrictEqual(applyDelta({ a: 1, b: 2 }, { a: [1, 5], b: [2, 0, 0] }), { a: 5 });
  });

  it('an object delta never touches the keys it does not name', () => {
    assert.deepStrictEqual(applyDelta({ a: { x: 1, y: 2 }, b: 3 }, { a: { y: [] } }), { a: { x: 1 }, b: 3 });
  });

  it('keeps a __proto__ key as data, never as a prototype', () => {
    const old = JSON.parse('{"__proto__":{"polluted":1},"a":1}') as unknown;
    const nuu = JSON.parse('{"__proto__":{"polluted":2},"a":1}') as unknown;
    const d = wire(createDelta(old, nuu));
    const out = applyDelta(old, d) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(JSON.stringify(out), JSON.stringify(nuu));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('delta codec: bad deltas throw DeltaError', () => {
  const bad: Array<[string, unknown, unknown]> = [
    ['delete a missing key', { a: 1 }, { b: [] }],
    ['JsonDiffPatch replace of a missing key', { a: 1 }, { b: [1, 2] }],
    ['object delta against a missing key', { a: 1 }, { b: { c: 1 } }],
    ['non-empty object delta against a scalar', 5, { a: 1 }],
    ['string patch against a number', { a: 1 }, { a: ['1=', 0, 2] }],
    ['string patch with an unknown mode', { a: 'x' }, { a: ['1=', 0, 7] }],
    ['array of four', { a: 1 }, { a: [1, 2, 3, 4] }],
    ['array remainder that is not an array', [1, 2], { '1-': 5 }],
    ['deleting the whole document', { a: 1 }, []],
    ['deleting an array item', [1, 2], { '0': [] }],
    ['string patch length mismatch', 'abcdef', ['3=', 0, 2]],
    ['string patch copying past the end', 'abc', ['4=', 0, 2]],
    ['string patch without the check character', 'abc', ['3=2+xyz', 0, 2]],
    ['string patch with an unknown op', 'abc', ['3*', 0, 2]],
    ['string patch with no count', 'abc', ['=', 0, 2]],
    ['empty string patch', 'abc', ['', 0, 2]],
    ['string patch splitting a UTF-8 character', 'é', ['1=1-', 0, 2]],
  ];
  for (const [name, old, delta] of bad) {
    it(name, () => assert.throws(() => applyDelta(old, delta), DeltaError));
  }

  it('random garbage deltas either apply or throw DeltaError, never anything else', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 }), (old, delta) => {
      try { applyDelta(old, delta); } catch (err) { assert.ok(err instanceof DeltaError, String(err)); }
    }), params(1000));
  });

  it('random string-patch ops either apply or throw DeltaError', () => {
    const ops = fc.array(fc.constantFrom('1', '2', '0', '9', '=', '-', '+', '|', 'x', 'é'), { maxLength: 12 }).map((a) => a.join(''));
    fc.assert(fc.property(fc.string({ maxLength: 8 }), ops, (old, op) => {
      try { applyStringPatch(old, op); } catch (err) { assert.ok(err instanceof DeltaError, String(err)); }
    }), params(2000));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties.

/** Strings that share a lot with each other, multi-byte characters and op characters included. */
const piece = fc.constantFrom('a', 'b', 'c', ' ', '.', 'the ', 'é', '€', '😀', 'Lj', '|', '+', '-', '=', '12', '"', '\n');
const text = fc.array(piece, { maxLength: 60 }).map((a) => a.join(''));

/** A pair (old, edited old): the edits keep most of the text, as real document edits do. */
const textPair = fc.tuple(text, fc.array(fc.tuple(fc.nat(), fc.nat(6), text.map((t) => t.slice(0, 8))), { maxLength: 4 }))
  .map(([old, edits]) => {
    let nuu = old;
    for (const [at, del, ins] of edits) {
      const cps = Array.from(nuu);
      const p = cps.length ? at % (cps.length + 1) : 0;
      nuu = cps.slice(0, p).join('') + ins + cps.slice(p + del).join('');
    }
    return [old, nuu] as const;
  });

const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.integer({ min: -5, max: 5 }), text, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', '0', '1', '_attachments', 'é'), tie('value'), { maxKeys: 5, noNullPrototype: true }),
})).value;

/** Mutates a JSON value in a few places, so old and new share structure (random pairs rarely do). */
function mutate(v: unknown, rnd: () => number, fresh: unknown): unknown {
  const r = rnd();
  if (Array.isArray(v)) {
    if (r < 0.15) return [...v, fresh];
    if (r < 0.25 && v.length) return v.slice(0, v.length - 1);
    return v.map((x) => (rnd() < 0.3 ? mutate(x, rnd, fresh) : x));
  }
  if (typeof v === 'object' && v !== null) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const q = rnd();
      if (q < 0.1) continue;
      o[k] = q < 0.4 ? mutate(x, rnd, fresh) : x;
    }
    if (r < 0.2) o[`k${Math.floor(r * 100)}`] = fresh;
    return o;
  }
  if (typeof v === 'string' && r < 0.7) return v.slice(0, Math.floor(v.length / 2)) + 'x' + v.slice(Math.floor(v.length / 2));
  return r < 0.5 ? fresh : v;
}

const related = fc.tuple(json, fc.infiniteStream(fc.double({ min: 0, max: 1, noNaN: true })), json).map(([old, stream, fresh]) => {
  const it = stream[Symbol.iterator]();
  return [old, mutate(old, () => it.next().value as number, fresh)] as const;
});

/**
 * The framing a delta may add to the new value's own bytes: per entry, a key the new value does not
 * have (an array index, a deleted key) plus `[...]` or `["…",0,2]` wrapping and a string patch's tail
 * count. Unchanged content never appears, so this is all a delta can cost beyond the new value.
 */
function framing(delta: unknown): number {
  if (Array.isArray(delta)) return 8 + 12;
  if (typeof delta === 'object' && delta !== null) {
    let n = 2;
    for (const [k, d] of Object.entries(delta)) n += bytes(k) + 2 + framing(d);
    return n;
  }
  return 0;
}

describe('delta codec: properties', () => {
  it('apply(old, create(old, new)) equals new, for random and for related JSON pairs', () => {
    const check = (old: unknown, nuu: unknown, threshold: number): void => {
      const d = wire(createDelta(old, nuu, { minStringDiffLength: threshold }));
      assert.deepStrictEqual(applyDelta(old, d), nuu);
    };
    fc.assert(fc.property(json, json, fc.constantFrom(0, 1, 10, 60), (o, n, t) => check(o, n, t)), params());
    fc.assert(fc.property(related, fc.constantFrom(0, 1, 10, 60), ([o, n], t) => check(o, n, t)), params());
  });

  it('string patches round-trip over UTF-8 bytes, multi-byte characters and op characters included', () => {
    fc.assert(fc.property(textPair, fc.constantFrom(0, 1, 20), ([old, nuu], t) => {
      const d = wire(createDelta({ s: old }, { s: nuu }, { minStringDiffLength: t }));
      assert.deepStrictEqual(applyDelta({ s: old }, d), { s: nuu });
    }), params(1000));
  });

  it('a string patch is used only when smaller than the string (Fleece give-up rule)', () => {
    fc.assert(fc.property(textPair, ([old, nuu]) => {
      const d = createDelta({ s: old }, { s: nuu }, { minStringDiffLength: 0 }) as Record<string, unknown>;
      const s = d.s;
      if (Array.isArray(s) && s.length === 3) {
        const opsBeforeTail = Buffer.byteLength(String(s[0]).replace(/\d+=$/, ''), 'utf8');
        assert.ok(opsBeforeTail + 6 < Buffer.byteLength(nuu, 'utf8'), JSON.stringify(s));
      }
    }), params(1000));
  });

  it('a delta is never larger than the new value plus its framing', () => {
    fc.assert(fc.property(fc.oneof(fc.tuple(json, json), related), ([o, n]) => {
      const d = createDelta(o, n);
      assert.ok(bytes(d) <= bytes([n]) + framing(d), `${bytes(d)} > ${bytes([n])} + ${framing(d)}: ${JSON.stringify(d)}`);
    }), params());
  });

  it('one changed field in a large document costs that field and its path, not the document', () => {
    const doc = fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), fc.string({ minLength: 100, maxLength: 200 }), { minKeys: 5, maxKeys: 20, noNullPrototype: true });
    fc.assert(fc.property(doc, fc.nat(), fc.string({ maxLength: 20 }), (d, pick, value) => {
      const keys = Object.keys(d);
      const key = keys[pick % keys.length]!;
      const edited = { ...d, nested: { deep: [1, 2, { x: 'y' }] } };
      const nuu = { ...edited, [key]: value, nested: { deep: [1, 2, { x: value }] } };
      const delta = createDelta(edited, nuu);
      assert.ok(bytes(delta) <= 2 * bytes(value) + bytes(key) + 40, JSON.stringify(delta));
      assert.deepStrictEqual(applyDelta(edited, wire(delta)), nuu);
    }), params(200));
  });

  it('equal values give {} and {} applies as no change', () => {
    fc.assert(fc.property(json, (v) => {
      assert.deepStrictEqual(createDelta(v, wire(v)), {});
      if (v !== null && typeof v === 'object') assert.deepStrictEqual(applyDelta(v, {}), v);
    }), params());
  });
});
