/**
 * Go-compatible canonical JSON: what Sync Gateway's `json.Marshal` of a decoded
 * (UseNumber) `map[string]interface{}` produces. Used for rev-id digests, so it
 * must match byte for byte.
 *
 * - object keys sorted by UTF-8 byte order at every level, no whitespace;
 * - strings escaped like Go's encoder with HTML escaping on: `\"` `\\` `\n` `\r` `\t`,
 *   other C0 controls as `\u00XX` (so \b and \f become \u0008 / \u000c, as in the Go
 *   releases SG 2.x/3.x ships with), `<` `>` `&` U+2028 U+2029 as `\uXXXX`;
 *   everything else raw;
 * - lone surrogates become U+FFFD. In SG every string went through Go's decoder,
 *   which turns a lone `\udXXX` escape into a *raw* U+FFFD rune before marshalling,
 *   so the raw character (not the `\ufffd` escape) is what reproduces SG's digests;
 * - `RawNumber` → its literal text; other numbers → ES number formatting, which is
 *   also what Go uses for float64 (plus `-0` like Go); non-finite → TypeError.
 */
import { RawNumber } from './parse.ts';

/** Anything Go would escape, plus any surrogate (valid pairs are passed through by the loop). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;
const HEX = '0123456789abcdef';

/** One string, escaped the way Go's `json.Marshal` does (HTML-safe). */
export function goJsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  let out = '"';
  let last = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let rep: string;
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x3c && c !== 0x3e && c !== 0x26 && (c < 0x2028 || c > 0x2029) && (c < 0xd800 || c > 0xdfff)) {
      continue;
    } else if (c === 0x22) rep = '\\"';
    else if (c === 0x5c) rep = '\\\\';
    else if (c === 0x0a) rep = '\\n';
    else if (c === 0x0d) rep = '\\r';
    else if (c === 0x09) rep = '\\t';
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26) rep = '\\u00' + HEX[c >> 4] + HEX[c & 0xf];
    else if (c === 0x2028) rep = '\\u2028';
    else if (c === 0x2029) rep = '\\u2029';
    else if (c <= 0xdbff) {
      // High surrogate: keep a valid pair raw, replace a lone one.
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) { i++; continue; }
      rep = '\ufffd';
    } else {
      rep = '\ufffd'; // low surrogate not preceded by a high one (pairs are skipped above)
    }
    out += s.slice(last, i) + rep;
    last = i + 1;
  }
  return out + s.slice(last) + '"';
}

/** Any UTF-16 unit in the surrogate range or above: only then can UTF-16 order differ from UTF-8 byte order. */
const HIGH_UNIT = /[\ud800-\uffff]/;

/** Code-point comparison (equal to UTF-8 byte order); lone surrogates count as U+FFFD. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    x = codePointRank(a, i, x);
    y = codePointRank(b, i, y);
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function codePointRank(s: string, i: number, c: number): number {
  if (c < 0xd800 || c > 0xdfff) return c;
  if (c <= 0xdbff) {
    const d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
    return 0xfffd;
  }
  // Low surrogate at position i: if it's the tail of a pair, units before it were equal, so
  // both strings share the high half; compare by the tail value within the astral range.
  const p = i > 0 ? s.charCodeAt(i - 1) : 0;
  if (p >= 0xd800 && p <= 0xdbff) return 0x10000 + ((p - 0xd800) << 10) + (c - 0xdc00);
  return 0xfffd;
}

function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj).sort();
  for (let i = 0; i < keys.length; i++) {
    if (HIGH_UNIT.test(keys[i]!)) return sortedKeysSlow(Object.keys(obj));
  }
  return keys;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * UTF-8 order; and keys that differ only in lone surrogates are one key to Go (its decoder
 * made them all U+FFFD), so keep just one of them: the last in insertion order, which is
 * the last in the text unless the JS-level keys were themselves duplicated.
 */
function sortedKeysSlow(keys: string[]): string[] {
  const sorted = keys.slice().sort(compareCodePoints);
  if (!keys.some((k) => { LONE_SURROGATE.lastIndex = 0; return LONE_SURROGATE.test(k); })) return sorted;
  const order = new Map(keys.map((k, i) => [k, i]));
  const out: string[] = [];
  let prevNorm: string | undefined;
  for (const k of sorted) {
    const norm = k.replace(LONE_SURROGATE, '\ufffd');
    if (norm === prevNorm) {
      if (order.get(k)! > order.get(out[out.length - 1]!)!) out[out.length - 1] = k;
    } else {
      out.push(k);
      prevNorm = norm;
    }
  }
  return out;
}

function numberText(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`canonicalJson: unsupported number ${n}`);
  return n === 0 && 1 / n < 0 ? '-0' : String(n);
}

function write(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string': return goJsonString(v);
    case 'number': return numberText(v);
    case 'boolean': return v ? 'true' : 'false';
    case 'bigint': return v.toString();
    case 'undefined': case 'function': case 'symbol': return undefined;
  }
  if (v === null) return 'null';
  if (v instanceof RawNumber) return v.text;
  if (Array.isArray(v)) {
    const n = v.length;
    if (n === 0) return '[]';
    let out = '[';
    for (let i = 0; i < n; i++) {
      if (i > 0) out += ',';
      out += write(v[i]) ?? 'null';
    }
    return out + ']';
  }
  const obj = v as Record<string, unknown>;
  if (typeof obj.toJSON === 'function') return write((obj.toJSON as () => unknown)());
  const keys = sortedKeys(obj);
  let out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const s = write(obj[k]);
    if (s === undefined) continue;
    if (first) first = false; else out += ',';
    out += goJsonString(k) + ':' + s;
  }
  return out + '}';
}

/** Go `json.Marshal` of a decoded JSON value (maps sorted by key), byte-compatible with Sync Gateway. */
export function canonicalJson(value: unknown): string {
  const s = write(value);
  if (s === undefined) throw new TypeError(`canonicalJson: cannot encode ${typeof value}`);
  return s;
}
