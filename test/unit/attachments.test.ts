/**
 * The write path's attachment processing (src/db/attachments.ts): both digests computed once from
 * the bytes, stubs matched to the parent by either digest, other stubs resolved against what the
 * store found, and an md5 that names two stored attachments refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { HttpError } from '../../src/errors.ts';
import { digestMatches, processAttachments, resolveStubs } from '../../src/db/attachments.ts';
import type { AttachmentMap } from '../../src/storage/store.ts';
import { renderAttachments } from '../../src/db/render.ts';

const sha1 = (b: Buffer) => 'sha1-' + createHash('sha1').update(b).digest('base64');
const md5 = (b: Buffer) => 'md5-' + createHash('md5').update(b).digest('base64');
const base = { generation: 2, keepRevpos: false, maxSize: 1 << 20 };
const bad = (re: RegExp) => (e: unknown) => e instanceof HttpError && e.status === 400 && re.test(e.reason);

describe('attachment digests on the write path', () => {
  const data = Buffer.from('some bytes');
  const parent: AttachmentMap = { 'p.bin': { digest: sha1(data), md5: md5(data), length: data.length, revpos: 1, content_type: 'x/y' } };

  test('new bytes get both digests, and are handed to the store with their md5', () => {
    const r = processAttachments({ ...base, entries: { 'n.bin': { data: data.toString('base64') } }, parent: null });
    assert.deepEqual(r.meta, { 'n.bin': { digest: sha1(data), md5: md5(data), length: data.length, revpos: 2 } });
    assert.deepEqual([...r.blobs], [[sha1(data), { data, md5: md5(data) }]]);
    assert.deepEqual(r.needDigests, []);
  });

  test("a stub naming the parent's attachment by md5, by sha1 or by no digest keeps the parent's metadata", () => {
    for (const digest of [md5(data), sha1(data), undefined]) {
      const r = processAttachments({ ...base, entries: { 'p.bin': { stub: true, revpos: 1, ...(digest ? { digest } : {}) } }, parent });
      assert.deepEqual(r.meta, parent, String(digest));
      assert.deepEqual(r.needDigests, []);
    }
  });

  test('other stubs are resolved from what the store found by either digest: its digests and length', () => {
    const other = Buffer.from('stored elsewhere');
    const r = processAttachments({ ...base, entries: { 'o.bin': { stub: true, revpos: 1, digest: md5(other), length: 999 } }, parent });
    assert.deepEqual(r.needDigests, [md5(other)]);
    resolveStubs(r, [{ digest: sha1(other), md5: md5(other), length: other.length }]);
    assert.deepEqual(r.meta, { 'o.bin': { digest: sha1(other), md5: md5(other), length: other.length, revpos: 1 } });
  });

  test('an unknown digest, and an md5 naming two stored attachments, are refused', () => {
    const stub = () => processAttachments({ ...base, entries: { 'o.bin': { stub: true, revpos: 1, digest: 'md5-same' } }, parent: null });
    // CouchDB's missing_stub (412): PouchDB's suite expects it for a stub naming nothing known.
    assert.throws(() => resolveStubs(stub(), []), (e: unknown) => e instanceof HttpError && e.status === 412 && /unknown digest md5-same/.test(e.reason));
    assert.throws(() => resolveStubs(stub(), [
      { digest: 'sha1-one', md5: 'md5-same', length: 1 }, { digest: 'sha1-two', md5: 'md5-same', length: 1 },
    ]), bad(/Ambiguous attachment digest md5-same/));
  });

  test('digestMatches checks bytes against a digest of either kind', () => {
    assert.ok(digestMatches(data, md5(data)));
    assert.ok(digestMatches(data, sha1(data)));
    assert.ok(!digestMatches(data, md5(Buffer.from('other'))));
    assert.ok(!digestMatches(data, 'sha1-nonsense'));
  });

  test('rendering: md5 for REST, sha1 for BLIP, never the internal md5 field', () => {
    assert.deepEqual(JSON.parse(renderAttachments(parent, { digests: 'md5' })), { 'p.bin': { digest: md5(data), length: data.length, revpos: 1, content_type: 'x/y', stub: true } });
    assert.deepEqual(JSON.parse(renderAttachments(parent, { digests: 'sha1' })), { 'p.bin': { digest: sha1(data), length: data.length, revpos: 1, content_type: 'x/y', stub: true } });
    // An attachment whose bytes were missing at migration has no md5: its sha1 is all there is.
    assert.equal(JSON.parse(renderAttachments({ l: { digest: 'sha1-lost', length: 1, revpos: 1 } }, { digests: 'md5' })).l.digest, 'sha1-lost');
  });
});
