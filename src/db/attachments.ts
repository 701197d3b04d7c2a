/**
 * Attachments on the write path: `_attachments` entries arrive inline (base64 `data`), as
 * multipart parts (`follows`) or as stubs pointing at an earlier revision. Bytes are stored once
 * per digest (`sha1-<base64>`) and shared by every revision and document that names them.
 *
 * Every attachment has two digests, both computed here once, when its bytes arrive: Sync
 * Gateway's `sha1-` (the key of the bytes, what Couchbase Lite sees over BLIP) and CouchDB's `md5-`
 * (what REST clients see: PouchDB compares it with its own copy's before downloading). A stub that
 * comes back may name either.
 */
import { createHash } from 'node:crypto';
import { HttpError } from '../errors.ts';
import type { AttachmentKey, AttachmentMap, AttachmentMeta, NewAttachment } from '../storage/store.ts';
import { isJsonObject } from '../json/index.ts';

export const DEFAULT_MAX_ATTACHMENT_SIZE = 20 * 1024 * 1024;

/** Sync Gateway's digest: `sha1-<base64>`. */
export function attachmentDigest(data: Buffer): string {
  return 'sha1-' + createHash('sha1').update(data).digest('base64');
}

/** CouchDB's and PouchDB's digest: `md5-<base64>`. */
export function attachmentMd5(data: Buffer): string {
  return 'md5-' + createHash('md5').update(data).digest('base64');
}

/** Whether `digest` (either kind) names these bytes. */
export function digestMatches(data: Buffer, digest: string): boolean {
  if (digest.startsWith('md5-')) return attachmentMd5(data) === digest;
  return attachmentDigest(data) === digest;
}

/** Whether a stub's digest (either kind) names this stored attachment. */
export function namesAttachment(digest: string, meta: { digest: string; md5?: string }): boolean {
  return digest === meta.digest || (meta.md5 !== undefined && digest === meta.md5);
}

export interface AttachmentInput {
  /** The `_attachments` object from the request body (may be undefined). */
  entries: unknown;
  /** Generation of the revision being written: revpos of new attachments. */
  generation: number;
  /** Attachments of the parent revision, for stubs. */
  parent: AttachmentMap | null;
  /** Bodies of `follows` attachments from a multipart request. */
  follows?: Map<string, Buffer>;
  /** Replicated revisions keep the revpos the client sent. */
  keepRevpos: boolean;
  /**
   * New edits (CouchDB's interactive edits): a stub must name an attachment of the parent revision,
   * else 412 `missing_stub` (couch_att:merge_stubs). Replicated revisions (REST new_edits=false,
   * BLIP pushes) may also name bytes stored elsewhere by digest: their parent's body may be gone
   * (Syncgate keeps only leaf bodies for long), and a BLIP client proves such digests first.
   */
  parentStubsOnly?: boolean;
  maxSize: number;
}

export interface ProcessedAttachments {
  meta: AttachmentMap | null;
  /** New bytes by sha1 digest. */
  blobs: Map<string, NewAttachment>;
  /**
   * Stubs that did not match the parent: their digests (either kind) must already be stored, and
   * resolveStubs fills in the stored digests before the revision is written.
   */
  needDigests: string[];
  /** Names of those stubs. */
  stubNames: string[];
}

function isBase64(s: string): boolean {
  return /^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(s);
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : undefined;
}

/**
 * CouchDB refuses attachment names starting with `_` on every REST write (chttpd_db
 * validate_attachment_names). Sync Gateway accepts them, and Couchbase Lite may hold such names:
 * REST routes call this, BLIP pushes do not.
 */
export function checkAttachmentName(name: string): void {
  if (name.startsWith('_')) throw new HttpError(400, `Attachment name '${name}' starts with prohibited character '_'`);
}

/** checkAttachmentName for every entry of a REST body's `_attachments`. */
export function checkAttachmentNames(body: Record<string, unknown>): void {
  const atts = body._attachments;
  if (isJsonObject(atts)) for (const name of Object.keys(atts as Record<string, unknown>)) checkAttachmentName(name);
}

/** CouchDB's answer to a stub that names nothing it can use: 412 `missing_stub`. */
export function missingStub(docId: string | undefined, name: string): HttpError {
  return new HttpError(412, `Invalid attachment stub${docId ? ` in ${docId}` : ''} for ${name}`, undefined, 'missing_stub');
}

export function processAttachments(input: AttachmentInput & { docId?: string }): ProcessedAttachments {
  const blobs = new Map<string, NewAttachment>();
  const needDigests: string[] = [];
  const stubNames: string[] = [];
  const { entries } = input;
  if (entries === undefined || entries === null) return { meta: null, blobs, needDigests, stubNames };
  if (typeof entries !== 'object' || Array.isArray(entries)) throw new HttpError(400, 'Invalid _attachments');
  const meta: AttachmentMap = {};
  for (const [name, raw] of Object.entries(entries as Record<string, unknown>)) {
    if (!isJsonObject(raw)) throw new HttpError(400, `Invalid attachment "${name}"`);
    const e = raw as Record<string, unknown>;
    const contentType = typeof e.content_type === 'string' ? e.content_type : undefined;
    let data: Buffer | undefined;
    if (typeof e.data === 'string') {
      if (!isBase64(e.data)) throw new HttpError(400, `Invalid base64 data of attachment "${name}"`);
      data = Buffer.from(e.data, 'base64');
    } else if (e.follows === true) {
      data = input.follows?.get(name);
      if (!data) throw new HttpError(400, `Missing attachment data for "${name}"`);
    }
    if (data) {
      if (data.length > input.maxSize) throw new HttpError(413, `Attachment "${name}" is too large (maximum ${input.maxSize} bytes)`);
      const digest = attachmentDigest(data);
      const md5 = attachmentMd5(data);
      blobs.set(digest, { data, md5 });
      const m: AttachmentMeta = {
        digest, md5, length: data.length,
        revpos: (input.keepRevpos && positiveInt(e.revpos)) || input.generation,
      };
      if (contentType) m.content_type = contentType;
      if (typeof e.encoding === 'string') {
        m.encoding = e.encoding;
        m.encoded_length = data.length;
        if (typeof e.length === 'number') m.length = e.length;
      }
      meta[name] = m;
      continue;
    }
    if (e.stub === true || typeof e.digest === 'string') {
      const fromParent = input.parent?.[name];
      if (fromParent && (typeof e.digest !== 'string' || namesAttachment(e.digest, fromParent))) {
        meta[name] = { ...fromParent };
        continue;
      }
      if (input.parentStubsOnly) throw missingStub(input.docId, name);
      const revpos = positiveInt(e.revpos);
      if (revpos === undefined) throw new HttpError(400, `Missing/invalid revpos in stub attachment "${name}"`);
      if (typeof e.digest !== 'string') throw new HttpError(400, `Missing digest in stub attachment "${name}"`);
      needDigests.push(e.digest);
      stubNames.push(name);
      const m: AttachmentMeta = { digest: e.digest, length: typeof e.length === 'number' ? e.length : 0, revpos };
      if (contentType) m.content_type = contentType;
      if (typeof e.encoding === 'string') m.encoding = e.encoding;
      if (typeof e.encoded_length === 'number') m.encoded_length = e.encoded_length;
      meta[name] = m;
      continue;
    }
    throw new HttpError(400, `Missing data of attachment "${name}"`);
  }
  return { meta: Object.keys(meta).length ? meta : null, blobs, needDigests, stubNames };
}

/**
 * Gives stubs that did not match the parent the stored attachment their digest names (either kind):
 * both digests and, unless the client describes an encoded form, the stored length. 412
 * `missing_stub` (CouchDB's answer) for a digest nothing stored has, 400 for an md5 that names two different stored attachments (an md5
 * collision can be made on purpose: such a stub must not pick someone else's bytes).
 */
export function resolveStubs(atts: ProcessedAttachments, found: AttachmentKey[]): void {
  for (const name of atts.stubNames) {
    const m = atts.meta![name];
    const matches = found.filter((f) => namesAttachment(m.digest, f));
    if (matches.length === 0) throw missingStub(undefined, `${name} (unknown digest ${m.digest})`);
    if (matches.length > 1) throw new HttpError(400, `Ambiguous attachment digest ${m.digest}`);
    const [key] = matches;
    m.digest = key.digest;
    m.md5 = key.md5;
    if (m.encoding === undefined) m.length = key.length;
  }
}
