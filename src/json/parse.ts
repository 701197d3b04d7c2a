/**
 * Number-preserving JSON parsing (Go's `json.Decoder.UseNumber` semantics).
 *
 * Fast path: plain `JSON.parse` whenever every number literal survives a JS
 * number round trip (`String(Number(lit)) === lit`). Slow path: a string-aware
 * tokenizer rewrites the risky literals into unguessable sentinel strings, runs
 * `JSON.parse`, then a small walk swaps the sentinels for `RawNumber`s. Both paths
 * therefore share JSON.parse's grammar and duplicate-key semantics (last one wins).
 * lossless-json is deliberately not used: it throws on duplicate keys, so it
 * would disagree with JSON.parse (and Go, where the last key also wins).
 */
import { randomBytes } from 'node:crypto';
import { HttpError } from '../errors.ts';

/** A number literal that would not survive a JS number round trip (1.0, 1e3, 12345678901234567890, -0). */
export class RawNumber {
  constructor(readonly text: string) {}
  valueOf(): number { return Number(this.text); }
  toJSON(): number { return Number(this.text); }
  toString(): string { return this.text; }
}

/**
 * True for a parsed JSON object: not null, not an array, and not a `RawNumber` (a top-level `-0` or
 * `1e309` parses to one, which `typeof` calls an object). Every layer that expects an object body
 * asks this one question, so none of them can store a number as `{"text": "-0"}`.
 */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RawNumber);
}

/**
 * Every real number literal is preceded (after JSON whitespace) by `[`, `:`, `,`
 * or the start of the text, so this never misses one; matches inside strings
 * are harmless false positives that only cost a trip through the slow path.
 */
const NUMBER_CANDIDATE = /(?:^|[[:,])[ \t\n\r]*(-?\d[\d.eE+-]*)/g;
/** Strict JSON number grammar: only these literals are ever rewritten. */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function badJson(err: unknown): HttpError {
  const detail = err instanceof Error ? err.message : String(err);
  return new HttpError(400, `Bad JSON: ${detail}`);
}

function hasRiskyNumber(text: string): boolean {
  NUMBER_CANDIDATE.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = NUMBER_CANDIDATE.exec(text)) !== null) {
    const lit = m[1]!;
    if (String(Number(lit)) !== lit) return true;
  }
  return false;
}

/**
 * Deepest nesting of arrays and objects accepted. JSON.parse itself copes with far more, but every
 * later layer walks documents recursively (canonical JSON for rev ids, the sync function's
 * JSON.parse/stringify, renderers) and would overflow the stack past ~10,000 levels: a 500 after
 * the body was accepted. No real document comes near this.
 */
export const MAX_JSON_DEPTH = 1000;

/** Parse JSON, keeping number literals that a JS number can't reproduce verbatim as `RawNumber`. */
export function parseJson(text: string): unknown {
  let value: unknown;
  if (!hasRiskyNumber(text)) {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw badJson(err);
    }
  } else value = parseSlow(text);
  // A valid text nested deeper than the limit has more than 2 × limit brackets: skip short ones.
  if (text.length > 2 * MAX_JSON_DEPTH && nestingExceeds(text, MAX_JSON_DEPTH)) {
    throw badJson(`nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return value;
}

/** True when the brackets of a (valid) JSON text nest deeper than `max`; strings are skipped. */
function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    } else if (c === 0x22 /* " */) {
      // Valid JSON: the string ends at the next quote preceded by an even number of backslashes.
      // Jumping quote to quote with indexOf, not char by char: document text is mostly strings,
      // and this scan was 2-3% of the server's CPU on a replicator's push of 1 KB documents.
      for (;;) {
        const q = text.indexOf('"', i + 1);
        if (q < 0) return false;
        let b = q - 1;
        while (text.charCodeAt(b) === 0x5c /* \ */) b--;
        i = q;
        if ((q - 1 - b) % 2 === 0) break;
      }
    }
  }
  return false;
}

// `fatal`: invalid UTF-8 is refused rather than silently turned into U+FFFD, which would make the
// stored text (and its rev id) differ from what the client sent. `ignoreBOM`: a BOM stays in the
// text, so JSON.parse refuses it, as Go does.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Request bytes as text: 400 on invalid UTF-8 (one rule for every layer that reads a body). */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new HttpError(400, 'Bad JSON: invalid UTF-8');
  }
}

/** parseJson over raw request bytes. */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  return parseJson(decodeUtf8(bytes));
}

// Sentinel strings: NUL + a per-process 128-bit random nonce + index. User data can't
// contain the nonce (it is never emitted anywhere), and a sentinel is only honoured
// when its index refers to a literal this very call replaced.
const NONCE_ID = `rawnum:${randomBytes(16).toString('hex')}:`;
const NONCE = `\u0000${NONCE_ID}`; // the decoded sentinel prefix
const NONCE_JSON = `\\u0000${NONCE_ID}`; // the same, as JSON string-literal text

function parseSlow(text: string): unknown {
  const raws: string[] = [];
  let out = '';
  let last = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string: the next quote preceded by an even number of backslashes ends it.
      // Unterminated → skip to the end and leave it for JSON.parse to reject.
      let q = i;
      for (;;) {
        q = text.indexOf('"', q + 1);
        if (q < 0) { q = n; break; }
        let b = q - 1;
        while (text.charCodeAt(b) === 0x5c /* \ */) b--;
        if ((q - 1 - b) % 2 === 0) break;
      }
      i = q + 1;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) i++;
        else break;
      }
      const lit = text.slice(start, i);
      if (String(Number(lit)) !== lit && JSON_NUMBER.test(lit)) {
        out += text.slice(last, start) + '"' + NONCE_JSON + raws.length + '"';
        raws.push(lit);
        last = i;
      }
    } else {
      i++;
    }
  }
  out += text.slice(last);
  let parsed: unknown;
  try {
    parsed = JSON.parse(out);
  } catch (err) {
    // Report positions relative to the original text, not the rewritten one.
    try { JSON.parse(text); } catch (orig) { throw badJson(orig); }
    throw badJson(err);
  }
  // Swap sentinels for RawNumbers in place (a JS walk is much cheaper than a JSON.parse reviver).
  // JSON.parse built the structure, so duplicate keys were already resolved exactly as in the fast path.
  const revive = (value: unknown): unknown => {
    if (typeof value === 'string') {
      if (!value.startsWith(NONCE)) return value;
      const idx = value.slice(NONCE.length);
      const lit = /^\d+$/.test(idx) ? raws[Number(idx)] : undefined;
      if (lit === undefined) throw badJson('unexpected number sentinel');
      return new RawNumber(lit);
    }
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) {
      for (let j = 0; j < value.length; j++) {
        const v = value[j];
        if (typeof v === 'string' ? v.startsWith(NONCE) : v !== null && typeof v === 'object') value[j] = revive(v);
      }
      return value;
    }
    const obj = value as Record<string, unknown>;
    for (const k of Object.keys(obj)) {
      // A sentinel in key position means a number was used as a key (`{1.0:2}`): malformed.
      if (k.startsWith(NONCE)) {
        try { JSON.parse(text); } catch (orig) { throw badJson(orig); }
        throw badJson('number used as an object key');
      }
      const v = obj[k]; // "__proto__" is an own data property here, so get/set hit it, not the prototype
      if (typeof v === 'string' ? v.startsWith(NONCE) : v !== null && typeof v === 'object') obj[k] = revive(v);
    }
    return obj;
  };
  return revive(parsed);
}
