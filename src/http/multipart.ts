/**
 * MIME multipart reading and writing (RFC 2046) for multipart/related and multipart/mixed
 * bodies: document GET/PUT with attachments, open_revs and _bulk_get (spec §0, §4.3).
 *
 * Bodies are size-limited and fully buffered before they reach us, so the reader works over a
 * single Buffer. Returned part bodies are zero-copy views (`subarray`) into that Buffer.
 */
import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { HttpError } from '../errors.ts';
import { decodeUtf8 } from '../json/index.ts';

export interface MimePart {
  /** Header names are lower-cased; repeated headers are joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const DASH = 0x2d;
const MAX_BOUNDARY = 70;

function bad(detail: string): HttpError {
  return new HttpError(400, `Invalid multipart body: ${detail}`);
}

// ---------------------------------------------------------------------------------------------
// Content-Type / Content-Disposition parameters

/**
 * Parses `type/subtype; name=value; name="quoted \"value\""` (also Content-Disposition).
 * The type and parameter names are lower-cased; quoted values are unquoted with backslash escapes
 * honoured; RFC 2231 extended values (`filename*=UTF-8''na%C3%AFve.txt`) are decoded and win over
 * the plain form. Malformed parameters are skipped rather than rejected.
 */
export function parseContentType(value: string | undefined): { type: string; params: Record<string, string> } {
  const params: Record<string, string> = {};
  if (!value) return { type: '', params };
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  if (semi < 0) return { type, params };
  const extended: Record<string, string> = {};
  const n = value.length;
  let i = semi + 1;
  while (i < n) {
    // Skip separators and whitespace before a parameter name.
    while (i < n && (value[i] === ';' || value[i] === ' ' || value[i] === '\t')) i++;
    if (i >= n) break;
    const nameStart = i;
    while (i < n && value[i] !== '=' && value[i] !== ';') i++;
    const name = value.slice(nameStart, i).trim().toLowerCase();
    if (i >= n || value[i] === ';') continue; // a parameter without a value: ignore it
    i++; // '='
    while (i < n && (value[i] === ' ' || value[i] === '\t')) i++;
    let val: string;
    if (value[i] === '"') {
      i++;
      let out = '';
      while (i < n && value[i] !== '"') {
        if (value[i] === '\\' && i + 1 < n) i++;
        out += value[i];
        i++;
      }
      i++; // closing quote (absent if unterminated: the rest of the header is taken)
      val = out;
      while (i < n && value[i] !== ';') i++; // ignore junk after the closing quote
    } else {
      const valStart = i;
      while (i < n && value[i] !== ';') i++;
      val = value.slice(valStart, i).trim();
    }
    if (!name || name === '__proto__' || name === '__proto__*') continue;
    if (name.endsWith('*')) {
      const decoded = decodeExtendedValue(val);
      if (decoded !== undefined) extended[name.slice(0, -1)] = decoded;
    } else if (!Object.hasOwn(params, name)) {
      params[name] = val;
    }
  }
  return { type, params: { ...params, ...extended } };
}

/** RFC 2231/5987 `charset'language'percent-encoded`. Undefined if malformed. */
function decodeExtendedValue(v: string): string | undefined {
  const m = /^([^']*)'[^']*'(.*)$/.exec(v);
  if (!m) return undefined;
  const charset = m[1]!.toLowerCase();
  const bytes: number[] = [];
  const s = m[2]!;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
    }
  }
  const buf = Buffer.from(bytes);
  if (charset === 'utf-8' || charset === 'utf8' || charset === '' || charset === 'us-ascii') return buf.toString('utf8');
  if (charset === 'iso-8859-1' || charset === 'latin1') return buf.toString('latin1');
  return undefined;
}

/** Quotes a header parameter value: `"` and `\` are escaped; CR/LF (never legal in a header) become spaces. */
export function quoteParam(value: string): string {
  return '"' + value.replace(/[\r\n]/g, ' ').replace(/["\\]/g, '\\$&') + '"';
}

/** A boundary is 1–70 printable ASCII characters (RFC 2046 allows a subset; we are a bit more lenient). */
function boundaryProblem(boundary: string | undefined): string | undefined {
  if (!boundary) return 'missing boundary';
  if (boundary.length > MAX_BOUNDARY) return `boundary longer than ${MAX_BOUNDARY} characters`;
  if (!/^[\x20-\x7e]+$/.test(boundary)) return 'invalid characters in boundary';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * If a `--boundary` delimiter occurring at `i` (already known to match the bytes) is a real
 * delimiter line, returns where the next part starts (after the line break) and whether it is the
 * close delimiter. Transport padding (spaces/tabs) before the line break is allowed; the close
 * delimiter may also end the body.
 */
function delimiterAt(body: Buffer, i: number, delimLen: number): { next: number; close: boolean } | undefined {
  let j = i + delimLen;
  let close = false;
  if (body[j] === DASH && body[j + 1] === DASH) {
    close = true;
    j += 2;
  }
  while (j < body.length && (body[j] === SP || body[j] === TAB)) j++;
  if (j >= body.length) return close ? { next: j, close } : undefined;
  if (body[j] === CR && body[j + 1] === LF) return { next: j + 2, close };
  if (body[j] === LF) return { next: j + 1, close };
  return undefined;
}

/**
 * Finds the first delimiter line at or after `from` that starts a line: at the very start of the
 * body, or right after an LF at index >= `minLf`.
 */
function findDelimiter(body: Buffer, delim: Buffer, from: number, minLf: number): { at: number; next: number; close: boolean } | undefined {
  let idx = body.indexOf(delim, from);
  while (idx >= 0) {
    const lineStart = idx === 0 || (body[idx - 1] === LF && idx - 1 >= minLf);
    if (lineStart) {
      const d = delimiterAt(body, idx, delim.length);
      if (d) return { at: idx, ...d };
    }
    idx = body.indexOf(delim, idx + 1);
  }
  return undefined;
}

/** Parses the header block at the start of a part's content; returns headers and where the body starts. */
function parsePartHeaders(body: Buffer, start: number, end: number): { headers: Record<string, string>; bodyStart: number } {
  const headers: Record<string, string> = {};
  let last: string | undefined;
  let p = start;
  while (p < end) {
    let lf = body.indexOf(LF, p);
    if (lf < 0 || lf >= end) lf = end; // the last header line runs into the delimiter (no blank line)
    let lineEnd = lf;
    if (lineEnd > p && body[lineEnd - 1] === CR) lineEnd--;
    if (lineEnd === p) return { headers, bodyStart: Math.min(lf + 1, end) }; // blank line: end of headers
    const line = body.toString('utf8', p, lineEnd);
    if ((line[0] === ' ' || line[0] === '\t') && last !== undefined) {
      headers[last] += ' ' + line.trim(); // obsolete line folding
    } else {
      const colon = line.indexOf(':');
      const name = colon > 0 ? line.slice(0, colon).trim().toLowerCase() : '';
      if (!name || /[\s]/.test(name)) throw bad('malformed part header');
      const value = line.slice(colon + 1).trim();
      if (name === '__proto__') { last = undefined; p = lf + 1; continue; } // never a real header
      headers[name] = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value;
      last = name;
    }
    p = lf + 1;
  }
  // Headers ended without a blank line: the part has headers and an empty body.
  return { headers, bodyStart: end };
}

/**
 * Splits a multipart body into parts. `contentType` is the full header value and must carry a
 * `boundary` parameter. Preamble and epilogue are ignored; CRLF and bare-LF line endings are both
 * accepted. A missing/overlong boundary, a body with no delimiter, or one with no close delimiter
 * is a 400.
 */
export function parseMultipart(body: Buffer, contentType: string): MimePart[] {
  const ct = parseContentType(contentType);
  if (!ct.type.startsWith('multipart/')) throw bad(`not a multipart content type (${ct.type || 'none'})`);
  const boundary = ct.params.boundary;
  const problem = boundaryProblem(boundary);
  if (problem) throw bad(problem);
  const delim = Buffer.from('--' + boundary, 'latin1');

  const first = findDelimiter(body, delim, 0, 0);
  if (!first) throw bad('no boundary delimiter found');
  const parts: MimePart[] = [];
  let cur = first;
  while (!cur.close) {
    const start = cur.next;
    // The part ends at the next delimiter line; the line break before it belongs to the delimiter.
    // An empty part's delimiter follows directly after the previous delimiter line's LF.
    const nextDelim = findDelimiter(body, delim, start, start - 1);
    if (!nextDelim) throw bad(parts.length === 0 && start >= body.length ? 'no parts and no closing delimiter' : 'unterminated part (no closing delimiter)');
    let end = nextDelim.at - 1; // the LF
    if (end > start && body[end - 1] === CR) end--;
    if (end < start) end = start;
    const { headers, bodyStart } = parsePartHeaders(body, start, end);
    parts.push({ headers, body: body.subarray(bodyStart, end) });
    cur = nextDelim;
  }
  return parts;
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A random boundary: 32 hex characters (128 bits), so it never occurs in the data by accident. */
export function makeBoundary(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Builds a multipart body incrementally. Each `part()` returns that part's bytes including its
 * leading delimiter, so callers can stream chunks as they are produced; `end()` returns the close
 * delimiter. The CRLF before every delimiter after the first is emitted with that delimiter
 * (as Go's mime/multipart does).
 */
export class MultipartWriter {
  readonly boundary: string;
  private started = false;
  private ended = false;
  private readonly delim: Buffer;

  constructor(boundary: string = makeBoundary()) {
    const problem = boundaryProblem(boundary);
    if (problem || /\s$/.test(boundary)) throw new Error(`MultipartWriter: bad boundary (${problem ?? 'trailing space'})`);
    this.boundary = boundary;
    this.delim = Buffer.from('--' + boundary, 'latin1');
  }

  contentType(subtype: 'mixed' | 'related'): string {
    return `multipart/${subtype}; boundary="${this.boundary}"`;
  }

  part(headers: Record<string, string>, body: Buffer | string): Buffer {
    if (this.ended) throw new Error('MultipartWriter: part() after end()');
    const data = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    // With a random boundary this cannot happen by chance; with a caller-chosen one it would
    // silently corrupt the body, so refuse.
    if (data.indexOf(this.delim) >= 0) throw new Error('MultipartWriter: part body contains the boundary');
    let head = (this.started ? '\r\n' : '') + '--' + this.boundary + '\r\n';
    for (const [name, value] of Object.entries(headers)) {
      if (/[\r\n:]/.test(name) || /[\r\n]/.test(value)) throw new Error(`MultipartWriter: invalid header ${JSON.stringify(name)}`);
      head += `${name}: ${value}\r\n`;
    }
    head += '\r\n';
    this.started = true;
    return Buffer.concat([Buffer.from(head, 'utf8'), data]);
  }

  end(): Buffer {
    if (this.ended) throw new Error('MultipartWriter: end() called twice');
    this.ended = true;
    return Buffer.from((this.started ? '\r\n' : '') + '--' + this.boundary + '--\r\n', 'latin1');
  }
}

// ---------------------------------------------------------------------------------------------
// Document uploads (multipart/related)

export interface RelatedDocumentOptions {
  /** Cap on a gunzipped part (413 beyond it). Default 32 MiB. */
  maxDecodedBytes?: number;
}

const DEFAULT_MAX_DECODED = 32 * 1024 * 1024;

function gunzipPart(data: Buffer, max: number, what: string): Buffer {
  try {
    return gunzipSync(data, { maxOutputLength: max });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
      throw new HttpError(413, `${what} is too large when decompressed (maximum ${max} bytes)`);
    }
    throw bad(`invalid gzip data in ${what}`);
  }
}

function contentEncoding(part: MimePart): string {
  return (part.headers['content-encoding'] ?? '').trim().toLowerCase();
}

/**
 * Parses a multipart/related document upload (PUT/POST doc, or one part of a multipart/mixed
 * body). The first part is the JSON document (Content-Type absent or application/json, optionally
 * `Content-Encoding: gzip`). Every following part is the body of one `_attachments` entry marked
 * `"follows": true`, matched by Content-Disposition filename when present, else by digest
 * (`sha1-…` or CouchDB's `md5-…`, as Sync Gateway does), else by the order of the follows entries.
 *
 * A part with `Content-Encoding: gzip` is gunzipped, unless its attachment's metadata declares
 * that same `encoding` (CouchDB's way of sending an attachment stored gzip-encoded): then the
 * encoded bytes are returned as they are.
 */
export function parseRelatedDocument(parts: MimePart[], opts: RelatedDocumentOptions = {}): { json: string; attachments: Map<string, Buffer> } {
  const max = opts.maxDecodedBytes ?? DEFAULT_MAX_DECODED;
  const first = parts[0];
  if (!first) throw bad('no JSON part');
  const ct = first.headers['content-type'];
  if (ct && !ct.trim().toLowerCase().startsWith('application/json')) throw new HttpError(415, `Invalid content type ${ct}`);
  let jsonBytes = first.body;
  const enc = contentEncoding(first);
  if (enc === 'gzip') jsonBytes = gunzipPart(jsonBytes, max, 'JSON part');
  else if (enc !== '' && enc !== 'identity') throw new HttpError(415, 'Unsupported Content-Encoding; use gzip');
  const json = decodeUtf8(jsonBytes); // invalid UTF-8 is a 400 here too, not U+FFFD

  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    throw new HttpError(400, `Bad JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Attachments with "follows": true, in _attachments order.
  const follows = new Map<string, Record<string, unknown>>();
  if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
    const atts = (doc as Record<string, unknown>)._attachments;
    if (atts && typeof atts === 'object' && !Array.isArray(atts)) {
      for (const [name, meta] of Object.entries(atts as Record<string, unknown>)) {
        if (meta && typeof meta === 'object' && (meta as Record<string, unknown>).follows === true) {
          follows.set(name, meta as Record<string, unknown>);
        }
      }
    }
  }

  const attachments = new Map<string, Buffer>();
  const pending = () => [...follows.keys()].filter((n) => !attachments.has(n));
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    const partNo = i + 1;
    const filename = parseContentType(part.headers['content-disposition']).params.filename;
    const partEnc = contentEncoding(part);
    const decode = (name: string | undefined): Buffer => {
      if (partEnc === '' || partEnc === 'identity') return part.body;
      const metaEnc = name !== undefined ? follows.get(name)?.encoding : undefined;
      if (typeof metaEnc === 'string' && metaEnc.toLowerCase() === partEnc) return part.body;
      if (partEnc === 'gzip') return gunzipPart(part.body, max, `MIME part #${partNo}`);
      throw new HttpError(415, `Unsupported Content-Encoding "${partEnc}" in MIME part #${partNo}`);
    };

    let name: string | undefined;
    if (filename !== undefined && follows.has(filename)) {
      if (attachments.has(filename)) throw bad(`duplicate MIME part for attachment ${JSON.stringify(filename)}`);
      name = filename;
    } else {
      const open = pending();
      // Digest match, as Sync Gateway does (it ignores filenames): try the bytes as sent and, if
      // gzipped, as decoded, since a digest may describe either.
      const candidates = [part.body];
      if (partEnc === 'gzip') {
        try { candidates.push(gunzipPart(part.body, max, `MIME part #${partNo}`)); } catch { /* reported by decode() */ }
      }
      const digests = new Set<string>();
      for (const c of candidates) {
        digests.add('sha1-' + createHash('sha1').update(c).digest('base64'));
        digests.add('md5-' + createHash('md5').update(c).digest('base64'));
      }
      name = open.find((n) => {
        const d = follows.get(n)!.digest;
        return typeof d === 'string' && digests.has(d);
      });
      if (name === undefined && filename === undefined) name = open[0];
      if (name === undefined) {
        const label = filename !== undefined ? ` (filename ${JSON.stringify(filename)})` : '';
        throw bad(`MIME part #${partNo}${label} doesn't match any attachment`);
      }
    }
    attachments.set(name, decode(name));
  }
  const missing = pending();
  if (missing.length > 0) throw new HttpError(400, `Missing attachment data for ${JSON.stringify(missing[0])}`);
  return { json, attachments };
}
