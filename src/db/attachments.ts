/**
 * Attachments on the write path: `_attachments` entries arrive inline (base64 `data`), as
 * multipart parts (`follows`) or as stubs pointing at an earlier revision. Bytes are stored once
 * per digest (`sha1-<base64>`) and shared by every revision and document that names them.
 */
import { createHash } from 'node:crypto';
import { HttpError } from '../errors.ts';
import type { AttachmentMap, AttachmentMeta } from '../storage/store.ts';
import { isJsonObject } from '../json/index.ts';

export const DEFAULT_MAX_ATTACHMENT_SIZE = 20 * 1024 * 1024;

export function attachmentDigest(data: Buffer): string {
  return 'sha1-' + createHash('sha1').update(data).digest('base64');
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
  maxSize: number;
}

export interface ProcessedAttachments {
  meta: AttachmentMap | null;
  blobs: Map<string, Buffer>;
  /** Stubs that did not match the parent: their digests must already be stored. */
  needDigests: string[];
}

function isBase64(s: string): boolean {
  return /^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(s);
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : undefined;
}

export function processAttachments(input: AttachmentInput): ProcessedAttachments {
  const blobs = new Map<string, Buffer>();
  const needDigests: string[] = [];
  const { entries } = input;
  if (entries === undefined || entries === null) return { meta: null, blobs, needDigests };
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
      blobs.set(digest, data);
      const m: AttachmentMeta = {
        digest, length: data.length,
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
      const revpos = positiveInt(e.revpos);
      if (revpos === undefined) throw new HttpError(400, `Missing/invalid revpos in stub attachment "${name}"`);
      const fromParent = input.parent?.[name];
      if (fromParent && (typeof e.digest !== 'string' || e.digest === fromParent.digest)) {
        meta[name] = { ...fromParent };
        continue;
      }
      if (typeof e.digest !== 'string') throw new HttpError(400, `Missing digest in stub attachment "${name}"`);
      needDigests.push(e.digest);
      const m: AttachmentMeta = { digest: e.digest, length: typeof e.length === 'number' ? e.length : 0, revpos };
      if (contentType) m.content_type = contentType;
      if (typeof e.encoding === 'string') m.encoding = e.encoding;
      if (typeof e.encoded_length === 'number') m.encoded_length = e.encoded_length;
      meta[name] = m;
      continue;
    }
    throw new HttpError(400, `Missing data of attachment "${name}"`);
  }
  return { meta: Object.keys(meta).length ? meta : null, blobs, needDigests };
}
