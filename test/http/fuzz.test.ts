/**
 * Hostile input on the public port (issue 8, item 4): thousands of seeded malformed requests over raw
 * sockets. Every answer must be a 4xx with Sync Gateway's `{"error","reason"}` body, the gateway must
 * keep serving, and nothing may be written (document count and last sequence, read through the admin
 * API, are unchanged).
 *
 * Two kinds of input never reach Syncgate's code: Node's HTTP parser (llhttp) refuses them first and
 * the server's `clientError` handler answers a bare `400 Bad Request` (or `431`) with no body and
 * closes the connection, or the socket is simply closed. Those are marked `parser` below: headers
 * over Node's 16 KB limit, request lines that are not HTTP, unknown methods, raw control or
 * non-ASCII bytes in the request target, broken chunked framing, malformed Content-Length.
 *
 * The batch endpoints keep Sync Gateway's contract: a well-formed `_bulk_docs` body whose rows are
 * all bad is answered `201` with an error row (4xx status) per document; those cases check the rows.
 *
 * Seeded: the seed is printed; replay with `SEED=<n> node --import tsx --test test/http/fuzz.test.ts`
 * (FUZZ_COUNT changes the number of requests; FUZZ_VERBOSE=1 prints the answers by kind of request).
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { req, startGateway, storedState, type TestGateway } from '../helpers/gateway.ts';
import { type RawResponse, rawRequest, sendRaw } from '../helpers/raw-http.ts';
import { seededRandom as rng } from '../helpers/random.ts';

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
const MAX_BODY = 64 * 1024;


class Gen {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]; }
  chance(p: number): boolean { return this.next() < p; }
  word(n = 8): string { return Array.from({ length: n }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[this.int(0, 35)]).join(''); }
}

/** What a case must get back. */
type Expect =
  | 'http' // a 4xx with a JSON {"error","reason"} body
  | 'parser' // refused by Node's HTTP parser: a bare 4xx or a closed connection
  | 'rows'; // 201 from _bulk_docs, every row an error with a 4xx status

interface Case {
  name: string;
  /** The complete request bytes (request line, headers, body). */
  raw: Buffer;
  expect: Expect;
}

const request = rawRequest;
const send = sendRaw;
type Response = RawResponse;

const json = (method: string, path: string, body: Buffer | string, extra: Record<string, string> = {}) =>
  request(method, path, { 'Content-Type': 'application/json', ...extra }, body);

// ---------------------------------------------------------------------------------------------
// Generators. Each returns a request that is malformed by construction.

interface Fixture { rev: string }

const VALID_DOC = () => ({ name: 'x', n: 1, list: [1, 'two', { three: 3 }], nested: { a: { b: [true, null] } } });

/** Mutates valid JSON text until JSON.parse rejects it (truncate, delete, insert, swap). */
function brokenJson(g: Gen, valid: string): string {
  for (;;) {
    let s = valid;
    const edits = g.int(1, 3);
    for (let e = 0; e < edits; e++) {
      const at = g.int(0, Math.max(0, s.length - 1));
      switch (g.int(0, 5)) {
        case 0: s = s.slice(0, at); break;
        case 1: s = s.slice(0, at) + s.slice(at + 1); break;
        case 2: s = s.slice(0, at) + g.pick(['{', '}', '[', ']', ',', ':', '"', '\\', "'", 'NaN', 'undefined', '\u0000', '/*', '01', '.5', '+1', '0x1f', '\\u12']) + s.slice(at); break;
        case 3: s = s.replace(g.pick(['"', ':', ',', '}', ']']), ''); break;
        case 4: s = s + g.pick([',', '}', ' x', '{}', '"']); break;
        default: s = g.pick(['', ' ', 'nul', 'tru', '{"a":}', '{,}', '[1,]', '{"a" 1}', "{'a':1}", '{"a":1,}', '"\\x41"', '[1e]', '[-]', '{"\\ud800":1']) ; break;
      }
    }
    if (s.trim() === '') continue; // an empty body is optional on some endpoints
    try { JSON.parse(s); } catch { return s; }
  }
}

function deepJson(g: Gen): string {
  // Mostly within the body limit (so the depth check answers); sometimes far beyond it.
  const depth = g.int(1001, g.chance(0.1) ? 200_000 : 10_000);
  const [open, close] = g.chance(0.5) ? ['[', ']'] : ['{"a":', '}'];
  const inner = open.repeat(depth) + '1' + close.repeat(depth);
  return g.pick([`{"deep":${inner}}`, `{"deep":${inner},"channels":["a"]}`]);
}

function invalidUtf8(g: Gen): Buffer {
  const bad = g.pick([[0xff], [0xfe], [0xc0, 0x80], [0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3]]);
  const [a, b] = g.pick([['{"name":"a', 'b"}'], ['{"', '":1}'], ['{"channels":["', '"]}'], ['{"x":["', '"],"y":2}']]);
  return Buffer.concat([Buffer.from(a), Buffer.from(bad), Buffer.from(b)]);
}

function multipart(boundary: string, parts: { headers: Record<string, string>; body: Buffer | string }[], close = true): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${Object.entries(p.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`));
    chunks.push(Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body));
    chunks.push(Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function cases(g: Gen, fx: Fixture): Case[] {
  const id = () => `fz-${g.word(6)}`;
  const docTargets = () => g.pick([
    ['PUT', `/db/${id()}`], ['POST', '/db/'], ['PUT', `/db/seeded?rev=${fx.rev}`], ['PUT', `/db/${id()}?new_edits=false`],
  ] as const);
  const jsonTargets = () => g.pick([
    ...Array(4).fill(docTargets()), ['POST', '/db/_bulk_docs'], ['POST', '/db/_bulk_get'], ['POST', '/db/_revs_diff'],
    ['POST', '/db/_all_docs'], ['POST', '/db/_changes'], ['PUT', `/db/_local/${id()}`], ['POST', '/db/_session'],
  ] as [string, string][]);
  const out: Case[] = [];
  const add = (name: string, raw: Buffer, expect: Expect = 'http') => out.push({ name, raw, expect });
  const valid = JSON.stringify(VALID_DOC());
  const kind = g.int(0, 15);
  switch (kind) {
    case 0: { // broken JSON
      const [m, p] = jsonTargets();
      add(`broken JSON ${m} ${p}`, json(m, p, brokenJson(g, g.pick([valid, '{"docs":[{"_id":"a"}]}', '{"keys":["a"]}', '{"a":["1-x"]}', '{"since":0}']))));
      break;
    }
    case 1: { // deeply nested JSON
      const [m, p] = g.pick([...Array(3).fill(docTargets()), ['POST', '/db/_bulk_docs'], ['POST', '/db/_revs_diff'], ['POST', '/db/_bulk_get'], ['PUT', `/db/_local/${id()}`]] as [string, string][]);
      let body = deepJson(g);
      if (p === '/db/_bulk_docs') body = `{"docs":[${body}]}`;
      if (p === '/db/_bulk_get' || p === '/db/_revs_diff') body = `{"docs":${body}}`;
      add(`deep JSON ${m} ${p}`, json(m, p, body));
      break;
    }
    case 2: { // huge or absurd numbers where an integer is required
      const huge = g.pick(['1e400', '-1e400', '1e309', '99999999999999999999', '-1', '1.5', '"1"', '0', 'null', '9007199254740993']);
      const which = g.int(0, 3);
      if (which === 0) {
        const start = g.pick(['1e400', '1e309', '99999999999999999999', '-1', '0', '1.5', '"2"', 'null', '9007199254740993', '2.0']);
        add(`_revisions.start=${start}`, json('PUT', `/db/${id()}?new_edits=false`, `{"_rev":"2-abc","_revisions":{"start":${start},"ids":["abc","def"]},"v":1}`));
      } else if (which === 1) {
        const field = g.pick(['limit', 'since', 'heartbeat', 'timeout']);
        const v = field === 'since' ? g.pick(['1e400', '-1', '1.5', 'null', '{}', '[]', '99999999999999999999', '"abc"', '"1:2:3:4"']) : g.pick(['1e400', '1e309', '-1', '1.5', '"abc"', '99999999999999999999', '{}']);
        if (field === 'since' && v === 'null') break; // null means "from the start": valid
        add(`_changes body ${field}=${v}`, json('POST', '/db/_changes', `{"${field}":${v}}`));
      } else if (which === 2) {
        add(`_rev=${huge}`, json('PUT', '/db/seeded', `{"_rev":${huge},"v":2}`));
      } else {
        add(`_bulk_get revs_limit`, json('POST', '/db/_bulk_get', `{"docs":[{"id":"seeded","rev":${huge === '"1"' ? '5' : huge}}]}`));
      }
      break;
    }
    case 3: { // invalid UTF-8 inside JSON strings
      const [m, p] = g.pick([...Array(3).fill(docTargets()), ['PUT', `/db/_local/${id()}`], ['POST', '/db/_bulk_docs']] as [string, string][]);
      let body = invalidUtf8(g);
      if (p === '/db/_bulk_docs') body = Buffer.concat([Buffer.from('{"docs":['), body, Buffer.from(']}')]);
      add(`invalid UTF-8 ${m} ${p}`, json(m, p, body));
      if (g.chance(0.3)) {
        const b = 'b' + g.word(10);
        add('invalid UTF-8 in a multipart JSON part', request('PUT', `/db/${id()}`, { 'Content-Type': `multipart/related; boundary=${b}` },
          multipart(b, [{ headers: { 'Content-Type': 'application/json' }, body: invalidUtf8(g) }])));
      }
      break;
    }
    case 4: { // bad percent-encoding in the path
      const bad = g.pick(['%', '%Z1', '%2', '%E0%A4%A', '%FF', '%C0%AF', '%ED%A0%80', '%%', 'a%g0b']);
      const [m, tmpl] = g.pick([['GET', '/db/X'], ['PUT', '/db/X'], ['DELETE', '/db/X'], ['GET', '/X/'], ['GET', '/db/seeded/X'], ['PUT', '/db/_local/X'], ['GET', '/db/X/att']] as [string, string][]);
      add(`bad percent-encoding ${m} ${tmpl} ${bad}`, json(m, tmpl.replace('X', `d${bad}`), m === 'GET' ? '' : valid));
      break;
    }
    case 5: { // absurd query values on reads
      const q = g.pick([
        '/db/_changes?limit=-1', '/db/_changes?limit=abc', '/db/_changes?limit=1e309', '/db/_changes?limit=99999999999999999999',
        '/db/_changes?since=abc', '/db/_changes?since=-1', '/db/_changes?since=1e309', '/db/_changes?since=1:2:3:4', '/db/_changes?since=::',
        '/db/_changes?since=99999999999999999999', '/db/_changes?heartbeat=1e309', '/db/_changes?heartbeat=-5', '/db/_changes?heartbeat=abc',
        '/db/_changes?timeout=-1', '/db/_changes?timeout=1e309', '/db/_changes?feed=bogus', '/db/_changes?style=bogus',
        '/db/_changes?filter=bogus', '/db/_changes?filter=_doc_ids', '/db/_changes?filter=sync_gateway/bychannel',
        '/db/_changes?filter=_doc_ids&feed=longpoll', '/db/_changes?feed=websocket',
        '/db/_all_docs?limit=-1', '/db/_all_docs?limit=abc', '/db/_all_docs?skip=-3', '/db/_all_docs?skip=x', '/db/_all_docs?keys=%5B1%5D',
        '/db/_all_docs?keys=notjson', '/db/_all_docs?keys=%7B%7D', '/db/_all_docs?startkey=%22unterminated', '/db/_all_docs?limit=1e309',
        '/db/seeded?rev=bad', '/db/seeded?rev=1-', '/db/seeded?rev=-1-x', '/db/seeded?rev=0-x', '/db/seeded?rev=99999999999999999999-x',
        '/db/seeded?rev=%FF', '/db/seeded?open_revs=notjson', '/db/seeded?open_revs=%5B1%5D', '/db/seeded?open_revs=%7B%7D',
        '/db/seeded?revs_limit=-1', '/db/seeded?revs_limit=x', '/db/seeded?revs=true&revs_limit=1e309', '/db/seeded?atts_since=x',
        '/db/seeded?atts_since=%5B1%5D', '/db/seeded/att.txt?rev=bad', '/db/seeded/att.txt?rev=1-nope',
        '/db/_local/nope', '/db/nope', '/nodb/', '/db/_nope', '/_nope',
      ]);
      add(`query ${q}`, request('GET', q, {}));
      break;
    }
    case 6: { // oversized headers and request lines: Node's parser refuses them (431)
      const size = g.int(17 * 1024, 120 * 1024);
      const which = g.int(0, 2);
      if (which === 0) add('oversized header', request('GET', '/db/', { 'X-Big': 'a'.repeat(size) }), 'parser');
      else if (which === 1) add('oversized request line', request('GET', `/db/${'a'.repeat(size)}`, {}), 'parser');
      else add('many headers', request('PUT', `/db/${id()}`, Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`X-H${i}`, 'v'.repeat(12)]))), 'parser');
      break;
    }
    case 7: { // oversized bodies
      const [m, p] = jsonTargets();
      const which = g.int(0, 2);
      const size = g.int(MAX_BODY + 1, MAX_BODY * 3);
      if (which === 0) add(`oversized body ${m} ${p}`, json(m, p, `{"pad":"${'x'.repeat(size)}"}`));
      else if (which === 1) add(`declared oversized body ${m} ${p}`, request(m, p, { 'Content-Type': 'application/json', 'Content-Length': 10 * MAX_BODY }, '{"a":'));
      else add(`gzip bomb ${m} ${p}`, json(m, p, gzipSync(Buffer.from(`{"pad":"${'0'.repeat(size * 4)}"}`)), { 'Content-Encoding': 'gzip' }));
      break;
    }
    case 8: { // wrong content types and encodings
      const [m, p] = jsonTargets();
      const ct = g.pick(['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'image/png', 'text/html; charset=utf-8', 'multipart/form-data; boundary=x', 'application/octet-stream']);
      const body = p === '/db/_bulk_docs' ? '{"docs":[{"_id":"ct"}]}' : p === '/db/_all_docs' ? '{"keys":["a"]}' : p === '/db/_revs_diff' ? '{"a":["1-a"]}' : p === '/db/_bulk_get' ? '{"docs":[{"id":"seeded"}]}' : p === '/db/_session' ? '{"name":"nobody","password":"x"}' : valid;
      if (g.chance(0.7)) add(`content-type ${ct} ${m} ${p}`, request(m, p, { 'Content-Type': ct }, body));
      else if (g.chance(0.5)) add(`content-encoding ${m} ${p}`, json(m, p, body, { 'Content-Encoding': g.pick(['br', 'deflate', 'compress', 'x-gzip2']) }));
      else add(`not gzip ${m} ${p}`, json(m, p, body, { 'Content-Encoding': 'gzip' }));
      break;
    }
    case 9: { // bad multipart bodies
      const b = 'b' + g.word(12);
      const docPart = { headers: { 'Content-Type': 'application/json' }, body: '{"v":1,"_attachments":{"a.txt":{"follows":true,"content_type":"text/plain"}}}' };
      const attPart = { headers: { 'Content-Disposition': 'attachment; filename="a.txt"' }, body: 'hello' };
      const variants: [string, string, Buffer][] = [
        ['no boundary', 'multipart/related', multipart(b, [docPart, attPart])],
        ['empty boundary', 'multipart/related; boundary=', multipart(b, [docPart, attPart])],
        ['boundary too long', `multipart/related; boundary=${'x'.repeat(71)}`, multipart('x'.repeat(71), [docPart, attPart])],
        ['boundary absent from body', `multipart/related; boundary=${b}`, multipart('other', [docPart, attPart])],
        ['unterminated', `multipart/related; boundary=${b}`, multipart(b, [docPart, attPart], false).subarray(0, -3)],
        ['no parts', `multipart/related; boundary=${b}`, Buffer.from(`--${b}--\r\n`)],
        ['first part not JSON', `multipart/related; boundary=${b}`, multipart(b, [{ headers: { 'Content-Type': 'text/plain' }, body: 'hi' }])],
        ['first part broken JSON', `multipart/related; boundary=${b}`, multipart(b, [{ headers: {}, body: brokenJson(g, valid) }])],
        ['missing follows part', `multipart/related; boundary=${b}`, multipart(b, [docPart])],
        ['unmatched extra part', `multipart/related; boundary=${b}`, multipart(b, [docPart, attPart, { headers: { 'Content-Disposition': 'attachment; filename="zzz"' }, body: 'x' }])],
        ['garbage gzip part', `multipart/related; boundary=${b}`, multipart(b, [docPart, { headers: { 'Content-Disposition': 'attachment; filename="a.txt"', 'Content-Encoding': 'gzip' }, body: 'notgzip' }])],
        ['random bytes', `multipart/related; boundary=${b}`, Buffer.from(Array.from({ length: g.int(1, 400) }, () => g.int(0, 255)))],
        ['headers without blank line', `multipart/related; boundary=${b}`, Buffer.from(`--${b}\r\nContent-Type: application/json\r\n{"v":1}\r\n--${b}--`)],
      ];
      const [name, ct, body] = g.pick(variants);
      const [m, p] = g.chance(0.2) ? ['POST', '/db/'] : ['PUT', `/db/${id()}`];
      add(`multipart: ${name}`, request(m, p, { 'Content-Type': ct }, body));
      break;
    }
    case 10: { // bad revision ids
      const bad = g.pick(['"garbage"', '"0-x"', '"-1-a"', '"1-"', '"a-b"', '123', 'null', '"99999999999999999999-a"', '" 1-a"', '"1-a b"', '[]', '{}', 'true', '""', '"1-nope"']);
      const which = g.int(0, 4);
      if (which === 0) add(`PUT _rev=${bad}`, json('PUT', '/db/seeded', `{"_rev":${bad},"v":3}`));
      else if (which === 1) add(`PUT ?rev=${bad}`, json('PUT', `/db/seeded?rev=${encodeURIComponent(bad.replace(/"/g, ''))}`, '{"v":3}'));
      else if (which === 2) add(`If-Match ${bad}`, json('PUT', '/db/seeded', '{"v":3}', { 'If-Match': bad }));
      else if (which === 3) add(`DELETE ?rev=${bad}`, request('DELETE', `/db/seeded?rev=${encodeURIComponent(bad.replace(/"/g, '') || 'x')}`, {}));
      else add(`attachment PUT ?rev=${bad}`, request('PUT', `/db/seeded/new.txt?rev=${encodeURIComponent(bad.replace(/"/g, '') || 'x')}`, { 'Content-Type': 'text/plain' }, 'data'));
      break;
    }
    case 11: { // bad _revisions (replicator writes, new_edits=false)
      const revs = g.pick([
        '{"start":0,"ids":["a"]}', '{"start":-1,"ids":["a"]}', '{"start":1.5,"ids":["a"]}', '{"start":"2","ids":["a","b"]}',
        '{"start":2,"ids":[]}', '{"start":2,"ids":"ab"}', '{"start":1,"ids":["a","b"]}', '{"start":2,"ids":["a",""]}',
        '{"start":2,"ids":["a b","c"]}', '{"start":2,"ids":[1,2]}', '{"ids":["a"]}', '{"start":2}', 'null', '"x"', '[]', '{}',
        '{"start":1e400,"ids":["a"]}', '{"start":2,"ids":["a",null]}',
      ]);
      const body = g.pick([
        `{"_revisions":${revs},"v":1}`, `{"_rev":"3-zzz","_revisions":{"start":1,"ids":["yyy","x"]},"v":1}`, '{"v":1}', '{"_rev":"bad","v":1}',
        `{"_rev":"2-a","_revisions":${revs},"v":1}`,
      ]);
      if (g.chance(0.7)) add(`_revisions ${body}`, json('PUT', `/db/${id()}?new_edits=false`, body));
      else add(`_bulk_docs new_edits=false ${body}`, json('POST', '/db/_bulk_docs', `{"new_edits":false,"docs":[${body.replace('{', `{"_id":"${id()}",`)}]}`), 'rows');
      break;
    }
    case 12: { // document bodies of the wrong shape
      const body = g.pick([
        '[]', '"x"', '1', 'null', 'true', '{"_foo":1}', '{"channels":"a,b"}', '{"channels":[""]}', '{"_attachments":"x"}',
        '{"_attachments":{"a":{"data":"***not base64***"}}}', '{"_attachments":{"a":{"stub":true}}}',
        '{"_attachments":{"a":{"stub":true,"digest":"sha1-AAAA"}}}', '{"_attachments":{"a":{"follows":true}}}',
        '{"_attachments":{"a":"x"}}', '{"_attachments":{"a":{"data":5}}}', '{"_attachments":[]}',
      ]);
      const [m, p] = g.pick([['PUT', `/db/${id()}`], ['POST', '/db/'], ['PUT', `/db/seeded?rev=${fx.rev}`]] as const);
      add(`doc body ${body} ${m} ${p}`, json(m, p, body));
      if (g.chance(0.3)) add(`_bulk_docs row ${body}`, json('POST', '/db/_bulk_docs', `{"docs":[${body}]}`), 'rows');
      break;
    }
    case 13: { // other bodies of the wrong shape
      const [p, body] = g.pick([
        ['/db/', '{"_id":5}'], ['/db/', '{"_id":""}'], ['/db/', '{"_id":"_design/x"}'], ['/db/', '{"_rev":"1-a"}'],
        ['/db/_bulk_docs', '{"docs":"x"}'], ['/db/_bulk_docs', '{}'], ['/db/_bulk_docs', '[]'], ['/db/_bulk_docs', '{"docs":{}}'],
        ['/db/_revs_diff', '[]'], ['/db/_revs_diff', '{"a":"x"}'], ['/db/_revs_diff', '"x"'], ['/db/_revs_diff', '{"a":{"b":1}}'],
        ['/db/_bulk_get', '{}'], ['/db/_bulk_get', '{"docs":[{}]}'], ['/db/_bulk_get', '{"docs":[{"id":1}]}'], ['/db/_bulk_get', '{"docs":[{"id":"a","rev":5}]}'],
        ['/db/_bulk_get', '{"docs":"x"}'], ['/db/_bulk_get', '[]'],
        ['/db/_all_docs', '{}'], ['/db/_all_docs', '{"keys":"x"}'], ['/db/_all_docs', '{"keys":[1]}'], ['/db/_all_docs', '[]'],
        ['/db/_changes', '[]'], ['/db/_changes', '"x"'], ['/db/_changes', '{"feed":"bogus"}'], ['/db/_changes', '{"filter":"_doc_ids"}'],
        ['/db/_changes', '{"style":1}'], ['/db/_changes', '{"feed":["normal"]}'],
      ] as [string, string][]);
      add(`POST ${p} ${body}`, json('POST', p, body));
      if (g.chance(0.2)) add('_local PUT bad', json('PUT', `/db/_local/${id()}`, g.pick(['[]', '"x"', '{"_rev":5}', '{"_rev":"x"}', '{"_rev":"0-99"}'])));
      break;
    }
    case 14: { // methods and routes the public port does not serve
      const [m, p] = g.pick([
        ['PATCH', '/db/seeded'], ['PATCH', '/db/'], ['DELETE', '/db/'], ['PUT', '/db/'], ['PUT', '/'], ['POST', '/'], ['DELETE', '/db/_changes'],
        ['PUT', '/db/_all_docs'], ['GET', '/db/_bulk_docs'], ['GET', '/db/_revs_diff'], ['POST', '/db/_purge'], ['GET', '/_all_dbs'],
        ['PUT', '/_logging'], ['POST', '/db/_resync'], ['PUT', '/db/_user/x'], ['POST', '/db/_role/'], ['PUT', '/newdb/'],
      ] as [string, string][]);
      add(`${m} ${p}`, json(m, p, m === 'GET' || m === 'DELETE' ? '' : '{"name":"x","password":"y","admin_channels":["*"]}'));
      break;
    }
    default: { // framing Node's parser refuses
      const v = g.int(0, 8);
      if (v === 0) add('unknown method', Buffer.from(`FUZZ${g.word(3).toUpperCase()} /db/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), 'parser');
      else if (v === 1) add('not HTTP', Buffer.from(`${g.word(20)}\r\n\r\n`), 'parser');
      else if (v === 2) add('broken chunked body', Buffer.from(`PUT /db/${id()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{"a":1}\r\n0\r\n\r\n`), 'parser');
      else if (v === 3) add('bad Content-Length', Buffer.from(`PUT /db/${id()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${g.pick(['-1', 'abc', '1e3', '0x10', '5, 6'])}\r\nConnection: close\r\n\r\n{"a":1}`), 'parser');
      else if (v === 4) add('Content-Length with chunked', Buffer.from(`PUT /db/${id()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n`), 'parser');
      else if (v === 5) add('raw bytes in the target', Buffer.concat([Buffer.from('GET /db/'), Buffer.from([g.pick([0x00, 0x01, 0x7f, 0xff, 0x20])]), Buffer.from('x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]), 'parser');
      else if (v === 6) add('header without colon', Buffer.from(`GET /db/ HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nConnection: close\r\n\r\n`), 'parser');
      else if (v === 7) add('NUL in a header', Buffer.from(`GET /db/ HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\nConnection: close\r\n\r\n`), 'parser');
      else add('bad HTTP version', Buffer.from(`GET /db/ HTTP/${g.pick(['9.9', '1', 'x.y', '1.1.1'])}\r\nHost: x\r\nConnection: close\r\n\r\n`), 'parser');
      break;
    }
  }
  return out;
}

function check(c: Case, res: Response | null): string | undefined {
  if (c.expect === 'parser') {
    if (res === null) return undefined;
    return res.status >= 400 && res.status < 500 ? undefined : `parser case answered ${res.status}`;
  }
  if (res === null) return 'connection closed without an answer';
  if (c.expect === 'rows') {
    if (res.status >= 400 && res.status < 500) return checkErrorBody(res);
    if (res.status !== 201) return `status ${res.status}`;
    const rows = JSON.parse(res.body.toString()) as { error?: string; status?: number }[];
    if (!rows.every((r) => typeof r.error === 'string' && r.status! >= 400 && r.status! < 500)) return `a row succeeded: ${res.body}`;
    return undefined;
  }
  if (!(res.status >= 400 && res.status < 500)) return `status ${res.status}: ${res.body.subarray(0, 200)}`;
  return checkErrorBody(res);
}

function checkErrorBody(res: Response): string | undefined {
  if (!/^application\/json/.test(res.headers['content-type'] ?? '')) return `${res.status} without a JSON body (${res.headers['content-type']})`;
  let body: unknown;
  try { body = JSON.parse(res.body.toString()); } catch { return `${res.status} with an unparseable body: ${res.body.subarray(0, 200)}`; }
  const b = body as { error?: unknown; reason?: unknown };
  if (typeof b.error !== 'string' || typeof b.reason !== 'string' || Object.keys(b).length !== 2) return `not {"error","reason"}: ${res.body.subarray(0, 200)}`;
  return undefined;
}

describe(`hostile input on the public port (SEED=${SEED})`, () => {
  let gw: TestGateway;
  let port: number;
  let fx: Fixture;
  const state = () => storedState(gw);

  before(async () => {
    console.log(`fuzz seed: SEED=${SEED} (replay: SEED=${SEED} node --import tsx --test test/http/fuzz.test.ts)`);
    gw = await startGateway({ maxBodyBytes: MAX_BODY });
    port = Number(new URL(gw.publicUrl).port);
    const put = await req(`${gw.adminUrl}/db/seeded`, { method: 'PUT', json: { v: 1, channels: ['a'] } });
    const att = await req(`${gw.adminUrl}/db/seeded/att.txt?rev=${put.body.rev}`, { method: 'PUT', body: 'hello', headers: { 'Content-Type': 'text/plain' } });
    fx = { rev: att.body.rev };
    await req(`${gw.adminUrl}/db/other`, { method: 'PUT', json: { v: 1 } });
  });
  after(() => gw.stop());

  test(`${COUNT} seeded malformed requests: 4xx with {"error","reason"}, nothing written`, async () => {
    const before = await state();
    const g = new Gen(rng(SEED));
    const all: Case[] = [];
    while (all.length < COUNT) all.push(...cases(g, fx));
    const failures: string[] = [];
    const kinds = new Map<Expect, number>();
    const seen = new Map<string, number>(); // FUZZ_VERBOSE: answers by kind of request
    let i = 0;
    const worker = async () => {
      while (i < all.length) {
        const c = all[i++];
        kinds.set(c.expect, (kinds.get(c.expect) ?? 0) + 1);
        const res = await send(port, c.raw);
        const problem = check(c, res);
        if (problem) failures.push(`${c.name}: ${problem}`);
        if (process.env.FUZZ_VERBOSE) {
          const key = `${c.name.split(/[ =:]/)[0]} ${c.name.split(/[ =:]/)[1] ?? ''} -> ${res?.status ?? 'closed'} ${res ? res.body.subarray(0, 90).toString().replace(/\d+-[0-9a-f]+/g, 'REV') : ''}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    console.log(`fuzz: ${all.length} requests (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')})`);
    if (process.env.FUZZ_VERBOSE) for (const [k, n] of [...seen].sort()) console.log(`${n}\t${k}`);
    const unique = [...new Set(failures.map((f) => f.slice(0, 300)))];
    assert.deepEqual(unique.slice(0, 40), [], `SEED=${SEED}: ${failures.length} bad answers`);
    // Still up and serving, and nothing was written.
    assert.equal((await req(`${gw.publicUrl}/db/seeded`)).status, 200);
    assert.deepEqual(await state(), before, `SEED=${SEED}: the database changed`);
    assert.equal(gw.logs.filter((l) => /unhandled error|\[ERR\]/.test(l)).length, 0, gw.logs.filter((l) => /unhandled|\[ERR\]/.test(l)).slice(0, 5).join('\n'));
  });

  test('malformed first messages on a WebSocket changes feed: an error message or a protocol close', async () => {
    // The options of a websocket feed arrive as its first message. A bad one gets SG's
    // {"error","reason"} and close code 1008; frames the ws library refuses itself close with
    // 1007 (invalid UTF-8) or 1009 (over the 1 MB maxPayload).
    const before = await state();
    const g = new Gen(rng(SEED ^ 0x5eed));
    const messages: (string | Buffer)[] = [];
    for (let i = 0; i < 150; i++) {
      const k = g.int(0, 5);
      if (k === 0) messages.push(brokenJson(g, '{"since":0,"include_docs":true,"feed":"websocket"}'));
      else if (k === 1) messages.push(`{"since":0,"x":${'['.repeat(g.int(1001, 50_000))}${']'.repeat(1)}`);
      else if (k === 2) messages.push(g.pick(['{"since":"abc"}', '{"since":-1}', '{"limit":-1}', '{"limit":1e400}', '{"heartbeat":"x"}', '{"feed":["normal"]}', '{"style":5}', '{"filter":"bogus"}', '{"filter":"sync_gateway/bychannel"}', '[]', 'null', '"x"', '1', '{"since":99999999999999999999}', `{"feed":${'['.repeat(5000)}${']'.repeat(5000)}}`]));
      else if (k === 3) messages.push(invalidUtf8(g));
      else if (k === 4) messages.push(Buffer.alloc(g.int(1024 * 1024 + 1, 1200 * 1024), 0x20));
      else messages.push(Buffer.from(Array.from({ length: g.int(1, 200) }, () => g.int(0, 255))));
    }
    const problems: string[] = [];
    const wsUrl = `${gw.publicUrl.replace('http', 'ws')}/db/_changes?feed=websocket`;
    for (let i = 0; i < messages.length; i += 10) {
      await Promise.all(messages.slice(i, i + 10).map((m, j) => new Promise<void>((resolve) => {
        const sock = new WebSocket(wsUrl);
        const got: string[] = [];
        const timer = setTimeout(() => { problems.push(`message ${i + j} ${JSON.stringify(m.toString('latin1').slice(0, 60))}: no close within 5 s (${got.join(' | ').slice(0, 60)})`); sock.terminate(); resolve(); }, 5000);
        // Binary frames for the invalid-UTF-8 and random-byte cases, as an attacker would send them too.
        sock.on('open', () => sock.send(m, { binary: Buffer.isBuffer(m) && i % 20 === 0 }));
        sock.on('message', (d) => got.push(d.toString()));
        sock.on('error', () => {});
        sock.on('close', (code) => {
          clearTimeout(timer);
          if (code === 1008) {
            const last = got.at(-1) ?? '';
            let body: { error?: unknown; reason?: unknown } = {};
            try { body = JSON.parse(last); } catch { /* reported below */ }
            if (typeof body.error !== 'string' || typeof body.reason !== 'string') problems.push(`message ${i + j}: 1008 without an error body: ${last.slice(0, 100)}`);
            else if (/Internal/.test(String(body.error))) problems.push(`message ${i + j}: ${last.slice(0, 100)}`);
          } else if (code !== 1007 && code !== 1009 && code !== 1006) {
            problems.push(`message ${i + j}: closed with ${code} after ${got.join(' | ').slice(0, 100)}`);
          }
          resolve();
        });
      })));
    }
    assert.deepEqual(problems.slice(0, 20), [], `SEED=${SEED}`);
    assert.deepEqual(await state(), before);
    assert.equal((await req(`${gw.publicUrl}/db/seeded`)).status, 200);
  });
});
