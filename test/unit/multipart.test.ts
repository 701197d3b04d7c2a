import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { HttpError } from '../../src/errors.ts';
import {
  MultipartWriter, makeBoundary, parseContentType, parseMultipart, parseRelatedDocument, quoteParam,
  type MimePart,
} from '../../src/http/multipart.ts';

function crlf(s: string): Buffer {
  return Buffer.from(s.replace(/\n/g, '\r\n'), 'utf8');
}

function httpError(status: number, reason?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof HttpError, `expected HttpError, got ${String(err)}`);
    assert.equal(err.status, status);
    if (reason) assert.match(err.reason, reason);
    return true;
  };
}

function part(headers: Record<string, string>, body: string | Buffer): MimePart {
  return { headers, body: typeof body === 'string' ? Buffer.from(body) : body };
}

describe('parseContentType', () => {
  it('lower-cases type and parameter names, keeps value case', () => {
    const ct = parseContentType('Multipart/Related; Boundary=AbC123 ; charset=UTF-8');
    assert.equal(ct.type, 'multipart/related');
    assert.deepEqual(ct.params, { boundary: 'AbC123', charset: 'UTF-8' });
  });

  it('unquotes quoted values with backslash escapes and separators inside', () => {
    const ct = parseContentType('attachment; filename="a \\"b\\" c;d=e\\\\.txt"; size=3');
    assert.equal(ct.type, 'attachment');
    assert.deepEqual(ct.params, { filename: 'a "b" c;d=e\\.txt', size: '3' });
  });

  it('handles missing, empty and valueless input', () => {
    assert.deepEqual(parseContentType(undefined), { type: '', params: {} });
    assert.deepEqual(parseContentType(''), { type: '', params: {} });
    assert.deepEqual(parseContentType('application/json'), { type: 'application/json', params: {} });
    assert.deepEqual(parseContentType('text/plain; ; flag; x=1;'), { type: 'text/plain', params: { x: '1' } });
  });

  it('decodes RFC 2231 extended values, preferring them over the plain form', () => {
    const ct = parseContentType(`attachment; filename="naive.txt"; filename*=UTF-8''na%C3%AFve%20file.txt`);
    assert.equal(ct.params.filename, 'naïve file.txt');
  });

  it('round-trips quoteParam', () => {
    const name = 'we"ird\\name; x="y".png';
    assert.equal(parseContentType(`attachment; filename=${quoteParam(name)}`).params.filename, name);
  });
});

describe('parseMultipart', () => {
  it('parses a CRLF body with preamble, epilogue, headers and a header-less part', () => {
    const body = crlf(
      'This is the preamble.\n' +
      '--xyz\n' +
      'Content-Type: text/plain\n' +
      'X-Folded: one\n' +
      '  two\n' +
      '\n' +
      'hello\n' +
      '--xyz\n' +
      '\n' +
      'no headers here\n' +
      '--xyz--\n' +
      'This is the epilogue.\n' +
      '--xyz\n',
    );
    const parts = parseMultipart(body, 'multipart/mixed; boundary=xyz');
    assert.equal(parts.length, 2);
    assert.deepEqual(parts[0]!.headers, { 'content-type': 'text/plain', 'x-folded': 'one two' });
    assert.equal(parts[0]!.body.toString(), 'hello');
    assert.deepEqual(parts[1]!.headers, {});
    assert.equal(parts[1]!.body.toString(), 'no headers here');
  });

  it('accepts bare LF line endings', () => {
    const body = Buffer.from('--b\nContent-Type: application/json\n\n{"a":1}\n--b\nContent-Disposition: attachment; filename="x"\n\nline1\nline2\n\n--b--');
    const parts = parseMultipart(body, 'multipart/related; boundary=b');
    assert.equal(parts.length, 2);
    assert.equal(parts[0]!.headers['content-type'], 'application/json');
    assert.equal(parts[0]!.body.toString(), '{"a":1}');
    assert.equal(parts[1]!.body.toString(), 'line1\nline2\n');
  });

  it('accepts mixed CRLF/LF, transport padding after delimiters and a leading CRLF', () => {
    const body = Buffer.from('\r\n--b \t\r\nA: 1\n\r\none\r\n--b\t\nB: 2\r\n\r\ntwo\n--b--  \r\n');
    const parts = parseMultipart(body, 'multipart/mixed; boundary="b"');
    assert.deepEqual(parts.map((p) => [p.headers, p.body.toString()]), [[{ a: '1' }, 'one'], [{ b: '2' }, 'two']]);
  });

  it('does not mistake near-delimiters inside a body for delimiters', () => {
    const tricky = [
      '\r\n--bound', // prefix of the delimiter
      '\r\n--boundaryX\r\n', // delimiter followed by a boundary character
      '\r\n--boundary--X', // close delimiter followed by junk
      'x--boundary\r\n', // not at the start of a line
      '\r\n--boundary-\r\n', // a single dash is not the close marker
      '\n--boundary\rX', // a lone CR is not a line break
    ];
    for (const t of tricky) {
      const body = Buffer.concat([Buffer.from('--boundary\r\n\r\n'), Buffer.from(t), Buffer.from('\r\n--boundary--\r\n')]);
      const parts = parseMultipart(body, 'multipart/mixed; boundary=boundary');
      assert.equal(parts.length, 1, JSON.stringify(t));
      assert.equal(parts[0]!.body.toString('latin1'), t);
    }
  });

  it('handles empty parts and a part whose headers run into the delimiter', () => {
    const body = crlf('--b\n--b\n\n--b\nContent-Type: text/plain\n--b--');
    const parts = parseMultipart(body, 'multipart/mixed; boundary=b');
    assert.equal(parts.length, 3);
    assert.deepEqual(parts[0], { headers: {}, body: Buffer.alloc(0) });
    assert.deepEqual(parts[1], { headers: {}, body: Buffer.alloc(0) });
    assert.deepEqual(parts[2]!.headers, { 'content-type': 'text/plain' });
    assert.equal(parts[2]!.body.length, 0);
  });

  it('returns no parts for a body that is only a close delimiter', () => {
    assert.deepEqual(parseMultipart(Buffer.from('--b--'), 'multipart/mixed; boundary=b'), []);
  });

  it('supports quoted boundaries with special characters', () => {
    const boundary = `simple boundary'()+_,-./:=?`;
    const body = crlf(`preamble\n--${boundary}\nX: y\n\nbody one\n--${boundary}--\n`);
    const parts = parseMultipart(body, `multipart/mixed; boundary="${boundary}"`);
    assert.equal(parts.length, 1);
    assert.equal(parts[0]!.body.toString(), 'body one');
    // An escaped quote inside the quoted boundary is unescaped.
    const b2 = 'a"b';
    const parts2 = parseMultipart(crlf(`--${b2}\n\nz\n--${b2}--`), 'multipart/mixed; boundary="a\\"b"');
    assert.equal(parts2[0]!.body.toString(), 'z');
  });

  it('joins repeated headers', () => {
    const parts = parseMultipart(crlf('--b\nX-A: 1\nx-a: 2\n\n.\n--b--'), 'multipart/mixed; boundary=b');
    assert.equal(parts[0]!.headers['x-a'], '1, 2');
  });

  it('treats prototype-ish header names as plain data', () => {
    const parts = parseMultipart(crlf('--b\nConstructor: 1\nconstructor: 2\n__proto__: x\n\n.\n--b--'), 'multipart/mixed; boundary=b');
    assert.equal(parts[0]!.headers.constructor, '1, 2');
    assert.equal(Object.getPrototypeOf(parts[0]!.headers), Object.prototype);
    assert.equal(parseContentType('a/b; constructor=1; __proto__=2').params.constructor, '1');
  });

  it('rejects a missing boundary', () => {
    assert.throws(() => parseMultipart(Buffer.from('--b--'), 'multipart/related'), httpError(400, /missing boundary/));
    assert.throws(() => parseMultipart(Buffer.from('--b--'), 'multipart/related; boundary=""'), httpError(400, /missing boundary/));
  });

  it('rejects an overlong boundary', () => {
    const b = 'x'.repeat(71);
    assert.throws(() => parseMultipart(Buffer.from(`--${b}--`), `multipart/mixed; boundary=${b}`), httpError(400, /longer than 70/));
    const ok = 'x'.repeat(70);
    assert.deepEqual(parseMultipart(Buffer.from(`--${ok}--`), `multipart/mixed; boundary=${ok}`), []);
  });

  it('rejects a body with no closing delimiter', () => {
    const body = crlf('--b\nContent-Type: text/plain\n\nhello\n');
    assert.throws(() => parseMultipart(body, 'multipart/mixed; boundary=b'), httpError(400, /unterminated part/));
    assert.throws(() => parseMultipart(crlf('--b\n\none\n--b\n\ntwo'), 'multipart/mixed; boundary=b'), httpError(400, /unterminated/));
    assert.throws(() => parseMultipart(crlf('--b\n\none\n--b'), 'multipart/mixed; boundary=b'), httpError(400, /unterminated/));
  });

  it('rejects a body with no delimiter at all, and non-multipart types', () => {
    assert.throws(() => parseMultipart(Buffer.from('{"a":1}'), 'multipart/mixed; boundary=b'), httpError(400, /no boundary delimiter/));
    assert.throws(() => parseMultipart(Buffer.from(''), 'multipart/mixed; boundary=b'), httpError(400));
    assert.throws(() => parseMultipart(Buffer.from('--b--'), 'application/json; boundary=b'), httpError(400, /not a multipart/));
  });

  it('rejects malformed part headers', () => {
    assert.throws(() => parseMultipart(crlf('--b\nnot a header\n\nx\n--b--'), 'multipart/mixed; boundary=b'), httpError(400, /malformed part header/));
  });

  it('parses a nested multipart/related part inside multipart/mixed', () => {
    const outer = new MultipartWriter();
    const inner = new MultipartWriter();
    const innerBody = Buffer.concat([
      inner.part({ 'Content-Type': 'application/json' }, '{"_id":"d"}'),
      inner.part({ 'Content-Disposition': 'attachment; filename="a.bin"' }, Buffer.from([0, 1, 2, 13, 10])),
      inner.end(),
    ]);
    const body = Buffer.concat([
      outer.part({ 'Content-Type': 'application/json', 'X-Doc-ID': 'e' }, '{"_id":"e"}'),
      outer.part({ 'Content-Type': inner.contentType('related'), 'X-Doc-ID': 'd' }, innerBody),
      outer.end(),
    ]);
    const parts = parseMultipart(body, outer.contentType('mixed'));
    assert.equal(parts.length, 2);
    assert.equal(parts[1]!.headers['x-doc-id'], 'd');
    const nested = parseMultipart(parts[1]!.body, parts[1]!.headers['content-type']!);
    assert.equal(nested.length, 2);
    assert.deepEqual(nested[1]!.body, Buffer.from([0, 1, 2, 13, 10]));
  });
});

describe('MultipartWriter', () => {
  it('makes random 32-hex-char boundaries', () => {
    const a = makeBoundary();
    assert.match(a, /^[0-9a-f]{32}$/);
    assert.notEqual(a, makeBoundary());
    assert.match(new MultipartWriter().boundary, /^[0-9a-f]{32}$/);
  });

  it('writes the expected bytes', () => {
    const w = new MultipartWriter('BB');
    assert.equal(w.contentType('mixed'), 'multipart/mixed; boundary="BB"');
    assert.equal(w.contentType('related'), 'multipart/related; boundary="BB"');
    const out = Buffer.concat([w.part({ 'Content-Type': 'text/plain' }, 'one'), w.part({}, Buffer.from('two')), w.end()]);
    assert.equal(out.toString(), '--BB\r\nContent-Type: text/plain\r\n\r\none\r\n--BB\r\n\r\ntwo\r\n--BB--\r\n');
    assert.throws(() => w.part({}, 'late'));
  });

  it('writes a valid empty body', () => {
    const w = new MultipartWriter();
    assert.deepEqual(parseMultipart(w.end(), w.contentType('mixed')), []);
  });

  it('refuses bad boundaries, header injection and bodies containing the boundary', () => {
    assert.throws(() => new MultipartWriter(''));
    assert.throws(() => new MultipartWriter('x'.repeat(71)));
    const w = new MultipartWriter('BB');
    assert.throws(() => w.part({ 'X-A': 'a\r\nX-B: b' }, ''));
    assert.throws(() => w.part({}, 'oops\r\n--BB\r\n'));
  });

  it('round-trips binary bodies containing delimiter-like bytes', () => {
    const boundary = makeBoundary();
    const w = new MultipartWriter(boundary);
    const bodies = [
      Buffer.concat([Buffer.from('\r\n--'), Buffer.from(boundary.slice(0, 31)), Buffer.from('\r\n')]),
      Buffer.from('--\r\n--\n--\r\r\n\n'),
      Buffer.from('\r\n\r\n\r\n'),
      Buffer.from('\n'),
      Buffer.alloc(0),
      Buffer.from([0xff, 0x00, 0x0d, 0x0a, 0x2d, 0x2d, 0x0d, 0x0a, 0x0d]),
      Buffer.from('ends with CR\r'),
      Buffer.from('-'),
    ];
    const chunks = bodies.map((b, i) => w.part({ 'Content-Type': 'application/octet-stream', 'X-Index': String(i) }, b));
    chunks.push(w.end());
    const parts = parseMultipart(Buffer.concat(chunks), w.contentType('mixed'));
    assert.equal(parts.length, bodies.length);
    parts.forEach((p, i) => {
      assert.equal(p.headers['x-index'], String(i));
      assert.deepEqual(p.body, bodies[i], `body ${i}`);
    });
  });

  it('round-trips arbitrary bodies (property)', () => {
    const boundary = 'b0und';
    const fragment = fc.oneof(
      fc.uint8Array({ maxLength: 20 }),
      fc.constantFrom('\r\n', '\n', '\r', '--', '--b0un', '\r\n--b0un', '\n--b0unX', '\r\n\r\n', ' ', '\t').map((s) => Buffer.from(s)),
    );
    const bodyArb = fc.array(fragment, { maxLength: 10 })
      .map((fs) => Buffer.concat(fs.map((f) => Buffer.from(f))))
      .filter((b) => b.indexOf('--' + boundary) < 0);
    fc.assert(fc.property(fc.array(bodyArb, { maxLength: 5 }), fc.boolean(), (bodies, withHeaders) => {
      const w = new MultipartWriter(boundary);
      const chunks = bodies.map((b) => w.part(withHeaders ? { 'X-Len': String(b.length) } : {}, b));
      chunks.push(w.end());
      const parts = parseMultipart(Buffer.concat(chunks), w.contentType('related'));
      assert.deepEqual(parts.map((p) => p.body), bodies);
    }), { numRuns: 300 });
  });
});

describe('parseRelatedDocument', () => {
  // What CouchDB documents for PUT multipart/related: attachment parts without headers, in order.
  const couchDocsExample = crlf(
    '--abc123\n' +
    'Content-Type: application/json\n' +
    '\n' +
    '{"body":"This is a body.","_attachments":{"foo.txt":{"follows":true,"content_type":"text/plain","length":21},' +
    '"bar.txt":{"follows":true,"content_type":"text/plain","length":20}}}\n' +
    '--abc123\n' +
    '\n' +
    'this is 21 chars long\n' +
    '--abc123\n' +
    '\n' +
    'this is 20 chars lon\n' +
    '--abc123--\n',
  );

  it('parses the CouchDB documentation example (matching by order)', () => {
    const { json, attachments } = parseRelatedDocument(parseMultipart(couchDocsExample, 'multipart/related;boundary="abc123"'));
    assert.equal(JSON.parse(json).body, 'This is a body.');
    assert.deepEqual([...attachments.keys()], ['foo.txt', 'bar.txt']);
    assert.equal(attachments.get('foo.txt')!.toString(), 'this is 21 chars long');
    assert.equal(attachments.get('bar.txt')!.toString(), 'this is 20 chars lon');
  });

  it('parses a CouchDB-replicator-style body (matching by filename, parts out of order)', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x2d, 0x2d, 0x0d, 0x0a]);
    const doc = {
      _id: 'doc1', _rev: '2-7051cbe5c8faecd085a3fa619e6e6337', _revisions: { start: 2, ids: ['7051cbe5c8faecd085a3fa619e6e6337', '967a00dff5e02add41819138abb3284d'] },
      _attachments: {
        'img.png': { content_type: 'image/png', revpos: 2, digest: 'md5-x', length: png.length, follows: true },
        'notes.txt': { content_type: 'text/plain', revpos: 1, digest: 'md5-y', length: 5, follows: true },
        'old.txt': { content_type: 'text/plain', revpos: 1, digest: 'md5-z', length: 3, stub: true },
      },
    };
    const B = '40bce7ad9d5fe3e7cb12ba2f3e3e1c41';
    const body = Buffer.concat([
      Buffer.from(`--${B}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(doc)}\r\n`),
      Buffer.from(`--${B}\r\nContent-Disposition: attachment; filename="notes.txt"\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nnotes\r\n`),
      Buffer.from(`--${B}\r\nContent-Disposition: attachment; filename="img.png"\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`),
      png,
      Buffer.from(`\r\n--${B}--`),
    ]);
    const { json, attachments } = parseRelatedDocument(parseMultipart(body, `multipart/related; boundary="${B}"`));
    assert.deepEqual(JSON.parse(json), doc);
    assert.equal(attachments.size, 2);
    assert.deepEqual(attachments.get('img.png'), png);
    assert.equal(attachments.get('notes.txt')!.toString(), 'notes');
  });

  it('matches by digest when there is no filename (Sync Gateway / Couchbase Lite style)', () => {
    const a = Buffer.from('aaaa');
    const b = Buffer.from('bbbb');
    const sha1 = (d: Buffer) => 'sha1-' + createHash('sha1').update(d).digest('base64');
    const doc = { _attachments: { a: { follows: true, digest: sha1(a) }, b: { follows: true, digest: sha1(b) } } };
    const parts = [part({ 'content-type': 'application/json' }, JSON.stringify(doc)), part({}, b), part({}, a)];
    const { attachments } = parseRelatedDocument(parts);
    assert.equal(attachments.get('a')!.toString(), 'aaaa');
    assert.equal(attachments.get('b')!.toString(), 'bbbb');
  });

  it('uses order for parts without filenames once named parts are taken', () => {
    const doc = { _attachments: { x: { follows: true }, y: { follows: true }, z: { follows: true } } };
    const parts = [
      part({}, JSON.stringify(doc)),
      part({ 'content-disposition': 'attachment; filename="y"' }, 'Y'),
      part({}, 'X'),
      part({}, 'Z'),
    ];
    const { attachments } = parseRelatedDocument(parts);
    assert.deepEqual(Object.fromEntries([...attachments].map(([k, v]) => [k, v.toString()])), { x: 'X', y: 'Y', z: 'Z' });
  });

  it('gunzips parts with Content-Encoding: gzip, including the JSON part', () => {
    const text = Buffer.from('hello '.repeat(100));
    const doc = { _attachments: { 't.txt': { follows: true, content_type: 'text/plain' } } };
    const parts = [
      part({ 'content-type': 'application/json', 'content-encoding': 'gzip' }, gzipSync(JSON.stringify(doc))),
      part({ 'content-disposition': 'attachment; filename="t.txt"', 'content-encoding': 'gzip' }, gzipSync(text)),
    ];
    const { json, attachments } = parseRelatedDocument(parts);
    assert.deepEqual(JSON.parse(json), doc);
    assert.deepEqual(attachments.get('t.txt'), text);
  });

  it('keeps gzip bytes when the attachment itself declares encoding gzip (CouchDB)', () => {
    const gz = gzipSync('compressed attachment');
    const doc = { _attachments: { 'c.txt': { follows: true, encoding: 'gzip', encoded_length: gz.length, length: 21 } } };
    const parts = [part({}, JSON.stringify(doc)), part({ 'content-disposition': 'attachment; filename="c.txt"', 'content-encoding': 'gzip' }, gz)];
    assert.deepEqual(parseRelatedDocument(parts).attachments.get('c.txt'), gz);
  });

  it('rejects bad gzip data, unsupported encodings and gzip bombs', () => {
    const doc = JSON.stringify({ _attachments: { a: { follows: true } } });
    assert.throws(() => parseRelatedDocument([part({}, doc), part({ 'content-encoding': 'gzip' }, 'not gzip')]), httpError(400, /gzip/));
    assert.throws(() => parseRelatedDocument([part({ 'content-encoding': 'br' }, doc)]), httpError(415));
    assert.throws(() => parseRelatedDocument([part({}, doc), part({ 'content-encoding': 'br' }, 'x')]), httpError(415));
    const bomb = gzipSync(Buffer.alloc(1 << 20));
    assert.throws(() => parseRelatedDocument([part({}, doc), part({ 'content-encoding': 'gzip' }, bomb)], { maxDecodedBytes: 1000 }), httpError(413));
  });

  it('rejects a missing attachment part', () => {
    const doc = { _attachments: { 'a.txt': { follows: true }, 'b.txt': { follows: true } } };
    const parts = [part({}, JSON.stringify(doc)), part({ 'content-disposition': 'attachment; filename="b.txt"' }, 'B')];
    assert.throws(() => parseRelatedDocument(parts), httpError(400, /Missing attachment data for "a\.txt"/));
  });

  it('rejects a part that matches nothing', () => {
    const doc = JSON.stringify({ _attachments: { 'a.txt': { follows: true }, 'i.txt': { data: 'aGk=' } } });
    assert.throws(() => parseRelatedDocument([part({}, doc), part({}, 'A'), part({}, 'extra')]), httpError(400, /part #3 doesn't match/));
    assert.throws(() => parseRelatedDocument([part({}, doc), part({ 'content-disposition': 'attachment; filename="i.txt"' }, 'A')]), httpError(400, /doesn't match/));
    assert.throws(() => parseRelatedDocument([
      part({}, doc),
      part({ 'content-disposition': 'attachment; filename="a.txt"' }, 'A'),
      part({ 'content-disposition': 'attachment; filename="a.txt"' }, 'A'),
    ]), httpError(400, /duplicate/));
    assert.throws(() => parseRelatedDocument([part({}, '{"x":1}'), part({}, 'stray')]), httpError(400, /doesn't match/));
  });

  it('rejects no JSON part, bad JSON and a non-JSON first part', () => {
    assert.throws(() => parseRelatedDocument([]), httpError(400, /no JSON part/));
    assert.throws(() => parseRelatedDocument([part({ 'content-type': 'application/json' }, '{nope')]), httpError(400, /^Bad JSON/));
    assert.throws(() => parseRelatedDocument([part({ 'content-type': 'text/plain' }, '{}')]), httpError(415, /Invalid content type text\/plain/));
  });

  it('accepts a document with no attachments', () => {
    const { json, attachments } = parseRelatedDocument([part({ 'content-type': 'application/json; charset=utf-8' }, '{"n":1.0}')]);
    assert.equal(json, '{"n":1.0}');
    assert.equal(attachments.size, 0);
  });

  it('round-trips through MultipartWriter', () => {
    const big = Buffer.alloc(1000, 7);
    const w = new MultipartWriter();
    const body = Buffer.concat([
      w.part({ 'Content-Type': 'application/json' }, JSON.stringify({ _attachments: { 'q"uote.bin': { follows: true, length: 1000 } } })),
      w.part({ 'Content-Disposition': `attachment; filename=${quoteParam('q"uote.bin')}`, 'Content-Type': 'application/octet-stream' }, big),
      w.end(),
    ]);
    const { attachments } = parseRelatedDocument(parseMultipart(body, w.contentType('related')));
    assert.deepEqual(attachments.get('q"uote.bin'), big);
  });
});
