/**
 * Attachments over BLIP, both ways. The client fetches (`getAttachment`) or proves
 * (`proveAttachment`) only digests of revisions this connection is sending it right now; the server
 * fetches from the client the blobs of a pushed revision it does not have, and asks the client to
 * prove the ones it has (so a digest alone never grants access to someone else's bytes).
 */
import { createHash, randomBytes } from 'node:crypto';
import { HttpError } from '../../../errors.ts';
import { digestMatches } from '../../../db/attachments.ts';
import type { BlipRequest } from '../connection.ts';
import type { BlipCollection } from './collections.ts';
import { boolProp, requireProp, type SyncContext } from './context.ts';

/** Answer to `proveAttachment`: `sha1-` + base64(SHA1(byte(len(nonce)) ‖ nonce ‖ data)). */
export function attachmentProof(nonce: Buffer, data: Buffer): string {
  return 'sha1-' + createHash('sha1').update(Buffer.of(nonce.length & 0xff)).update(nonce).update(data).digest('base64');
}

/**
 * Digests the client may fetch: those of `rev` messages sent to it and not yet answered. One gate
 * per collection (a digest sent for a document of one collection is not fetchable through another).
 */
export class AttachmentGate {
  private readonly allowed = new Map<string, number>();

  /** Allows the digests of one document until the returned function is called. */
  allow(docId: string, digests: string[]): () => void {
    const keys = digests.map((d) => `${docId}\u0000${d}`);
    for (const k of keys) this.allowed.set(k, (this.allowed.get(k) ?? 0) + 1);
    return () => {
      for (const k of keys) {
        const n = (this.allowed.get(k) ?? 1) - 1;
        if (n <= 0) this.allowed.delete(k);
        else this.allowed.set(k, n);
      }
    };
  }

  /** CBMobile_3 names the document; CBMobile_2 does not, so any pending document will do. */
  isAllowed(docId: string | undefined, digest: string): boolean {
    if (docId !== undefined) return this.allowed.has(`${docId}\u0000${digest}`);
    for (const k of this.allowed.keys()) if (k.endsWith(`\u0000${digest}`)) return true;
    return false;
  }
}

function checkAllowed(ctx: SyncContext, bc: BlipCollection, req: BlipRequest): string {
  const digest = requireProp(req, 'digest');
  const docId = req.properties.docID;
  if (ctx.protocol >= 3 && docId === undefined) throw new HttpError(400, 'Missing "docID" property');
  if (!bc.attachments.isAllowed(docId, digest)) throw new HttpError(403, 'Attachment is not part of a revision being sent to you');
  return digest;
}

/** Client → server `getAttachment`: the raw bytes. */
export async function getAttachment(ctx: SyncContext, bc: BlipCollection, req: BlipRequest): Promise<void> {
  const digest = checkAllowed(ctx, bc, req);
  const data = await bc.coll.getAttachmentData(digest);
  if (!data) throw new HttpError(404, 'missing attachment');
  req.respond({}, data, { compressed: boolProp(req.properties.compress) });
}

/** Client → server `proveAttachment`: the proof that the server holds the bytes. */
export async function proveAttachment(ctx: SyncContext, bc: BlipCollection, req: BlipRequest): Promise<void> {
  const digest = checkAllowed(ctx, bc, req);
  const nonce = req.body;
  if (nonce.length === 0 || nonce.length > 255) throw new HttpError(400, 'Invalid nonce');
  const data = await bc.coll.getAttachmentData(digest);
  if (!data) throw new HttpError(404, 'missing attachment');
  req.respond({}, attachmentProof(nonce, data));
}

/** Server → client `getAttachment` during a push; the bytes must match the digest (and length when known). */
export async function fetchFromClient(ctx: SyncContext, bc: BlipCollection, docId: string, digest: string, length: number | undefined): Promise<Buffer> {
  const reply = await ctx.conn.sendRequest({ Profile: 'getAttachment', digest, docID: docId, compress: 'true', ...bc.tag });
  if (!reply) throw new HttpError(500, 'no reply to getAttachment');
  if (reply.isError) throw new HttpError(400, `Client could not send attachment ${digest}: ${reply.errorDomain}/${reply.errorCode}`);
  const data = reply.body;
  if (data.length > bc.coll.maxAttachmentSize) throw new HttpError(413, `Attachment ${digest} is too large`);
  if (!digestMatches(data, digest) || (length !== undefined && length !== data.length)) {
    throw new HttpError(400, `Incorrect data sent for attachment with digest: ${digest}`);
  }
  return data;
}

/**
 * Server → client `proveAttachment` for a digest the server already stores. True when proven;
 * false when the client cannot prove (no handler / 404): the caller then fetches the bytes.
 */
export async function proveWithClient(ctx: SyncContext, bc: BlipCollection, digest: string, data: Buffer): Promise<boolean> {
  const nonce = randomBytes(20);
  const reply = await ctx.conn.sendRequest({ Profile: 'proveAttachment', digest, ...bc.tag }, nonce);
  if (!reply) throw new HttpError(500, 'no reply to proveAttachment');
  if (reply.isError) {
    if (reply.errorCode === 404) return false;
    throw new HttpError(403, `Client could not prove attachment ${digest}`);
  }
  if (reply.body.toString('utf8') !== attachmentProof(nonce, data)) throw new HttpError(403, `Incorrect proof for attachment ${digest}`);
  return true;
}
