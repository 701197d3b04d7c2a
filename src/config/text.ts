/**
 * Config file text: back-quoted strings (`base.ConvertBackQuotedStrings`) and a small strict JSON
 * parser. Our own parser (instead of JSON.parse) gives line/column positions in the ORIGINAL file
 * and never echoes file content in its messages, so a password near a syntax error cannot leak.
 */

/** A syntax problem at a character offset of the original text. */
export class ConfigSyntaxError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.name = 'ConfigSyntaxError';
    this.offset = offset;
  }
}

interface Segment { conv: number; orig: number; origEnd?: number }

export interface ConvertedText {
  /** Pure JSON text. */
  json: string;
  /** Maps an offset in `json` back to an offset in the original text. */
  originalOffset(offset: number): number;
}

function escapeBackQuoted(ch: string): string {
  switch (ch) {
    case '\\': return '\\\\';
    case '"': return '\\"';
    case '\n': return '\\n';
    case '\t': return '\\t';
    case '\r': return ''; // SG strips carriage returns
    default: {
      const code = ch.charCodeAt(0);
      return code < 0x20 ? '\\u' + code.toString(16).padStart(4, '0') : ch;
    }
  }
}

/**
 * Turns each `` `...` `` outside a JSON string into a JSON string. A backquote preceded by a
 * backslash does not end the string (as SG's regexp `` `((?s).*?)[^\\]` ``). Backquotes inside
 * ordinary "..." strings are left alone.
 */
export function convertBackQuotedStrings(text: string): ConvertedText {
  const out: string[] = [];
  let outLen = 0;
  const push = (s: string) => { out.push(s); outLen += s.length; };
  const segments: Segment[] = [{ conv: 0, orig: 0 }];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      push(text.slice(i, j + 1));
      i = j + 1;
    } else if (ch === '`') {
      const start = i;
      let j = i + 1;
      while (j < text.length && !(text[j] === '`' && text[j - 1] !== '\\')) j++;
      if (j >= text.length) throw new ConfigSyntaxError('unterminated back-quoted string', start);
      segments.push({ conv: outLen, orig: start, origEnd: j });
      let s = '"';
      for (let k = start + 1; k < j; k++) s += escapeBackQuoted(text[k]);
      push(s + '"');
      i = j + 1;
      segments.push({ conv: outLen, orig: i });
    } else {
      let j = i + 1;
      while (j < text.length && text[j] !== '"' && text[j] !== '`') j++;
      push(text.slice(i, j));
      i = j;
    }
  }
  const json = out.join('');
  return {
    json,
    originalOffset(offset: number): number {
      let seg = segments[0];
      for (const s of segments) if (s.conv <= offset) seg = s; else break;
      const orig = seg.orig + (offset - seg.conv);
      return seg.origEnd !== undefined ? Math.min(orig, seg.origEnd) : orig;
    },
  };
}

/** 1-based line and column of an offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') { line++; lineStart = i + 1; }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Sets a key without ever touching the prototype (a config may contain "__proto__"). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/** Strict JSON (RFC 8259). Duplicate keys: the last one wins, like Go. */
export function parseJsonText(s: string): unknown {
  let pos = 0;
  const fail = (msg: string, at = pos): never => { throw new ConfigSyntaxError(msg, at); };
  // Only structural characters are quoted: anything else may be the start of a secret.
  const describe = (at: number): string => {
    if (at >= s.length) return 'end of input';
    const ch = s[at];
    if ('{}[]:,"'.includes(ch)) return `'${ch}'`;
    return /[A-Za-z]/.test(ch) ? 'a letter' : /[0-9]/.test(ch) ? 'a digit' : 'an unexpected character';
  };
  const ws = () => {
    while (pos < s.length && (s[pos] === ' ' || s[pos] === '\t' || s[pos] === '\n' || s[pos] === '\r')) pos++;
  };
  const expect = (ch: string, what: string) => {
    ws();
    if (s[pos] !== ch) fail(`expected ${what} but found ${describe(pos)}`);
    pos++;
  };
  const str = (): string => {
    const start = pos;
    pos++; // opening quote
    let result = '';
    for (;;) {
      if (pos >= s.length) fail('unterminated string', start);
      const ch = s[pos];
      if (ch === '"') { pos++; return result; }
      if (ch.charCodeAt(0) < 0x20) fail('control character in string (use an escape such as \\n)');
      if (ch === '\\') {
        const e = s[pos + 1];
        if (e === 'u') {
          const hex = s.slice(pos + 2, pos + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('invalid \\u escape in string');
          result += String.fromCharCode(parseInt(hex, 16));
          pos += 6;
        } else if (e !== undefined && ESCAPES[e] !== undefined) {
          result += ESCAPES[e];
          pos += 2;
        } else {
          fail('invalid escape in string');
        }
      } else {
        result += ch;
        pos++;
      }
    }
  };
  const value = (depth: number): unknown => {
    if (depth > 200) fail('nesting too deep');
    ws();
    const ch = s[pos];
    if (ch === '{') {
      pos++;
      const obj: Record<string, unknown> = {};
      ws();
      if (s[pos] === '}') { pos++; return obj; }
      for (;;) {
        ws();
        if (s[pos] !== '"') fail(`expected a property name in double quotes but found ${describe(pos)}`);
        const key = str();
        expect(':', "':' after property name");
        setOwn(obj, key, value(depth + 1));
        ws();
        if (s[pos] === ',') { pos++; continue; }
        if (s[pos] === '}') { pos++; return obj; }
        fail(`expected ',' or '}' after property value but found ${describe(pos)}`);
      }
    }
    if (ch === '[') {
      pos++;
      const arr: unknown[] = [];
      ws();
      if (s[pos] === ']') { pos++; return arr; }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (s[pos] === ',') { pos++; continue; }
        if (s[pos] === ']') { pos++; return arr; }
        fail(`expected ',' or ']' after array element but found ${describe(pos)}`);
      }
    }
    if (ch === '"') return str();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (s.startsWith(word, pos)) { pos += word.length; return v; }
    }
    NUMBER_RE.lastIndex = pos;
    const m = NUMBER_RE.exec(s);
    if (m) { pos += m[0].length; return Number(m[0]); }
    return fail(`expected a value but found ${describe(pos)}`);
  };
  const result = value(0);
  ws();
  if (pos < s.length) fail(`expected the end of the file after the JSON value but found ${describe(pos)}`);
  return result;
}

/** Back-quote conversion plus parsing; errors carry offsets in the original text. */
export function parseConfigJson(text: string): unknown {
  const converted = convertBackQuotedStrings(text);
  try {
    return parseJsonText(converted.json);
  } catch (err) {
    if (err instanceof ConfigSyntaxError) throw new ConfigSyntaxError(err.message, converted.originalOffset(err.offset));
    throw err;
  }
}
