/**
 * Documents leave the database as JSON text spliced from the stored body, never re-serialized:
 * number literals stay exactly as the client wrote them, and large bodies cost one string concat.
 */
import type { AttachmentMap, AttachmentMeta } from '../storage/store.ts';

export interface Revisions { start: number; ids: string[] }

export interface DocView {
  id: string;
  rev: string;
  deleted: boolean;
  /** Stored JSON object text without special properties. */
  body: string;
  attachments: AttachmentMap | null;
  revisions?: Revisions;
  /** The revision is not visible to the requester: only `_removed` is shown. */
  removed?: boolean;
  /** Expiry (seconds since the epoch), shown as `_exp` with show_exp=true. */
  expiry?: number;
  /** `_conflicts` / `_deleted_conflicts` (CouchDB's conflicts=true, deleted_conflicts=true). */
  conflicts?: string[];
  deletedConflicts?: string[];
  /** `_revs_info` (revs_info=true). */
  revsInfo?: { rev: string; status: string }[];
}

/**
 * Which digest an attachment shows as `digest`: `md5` for the CouchDB replication protocol (every
 * REST answer: PouchDB compares it with the md5 of its own copy before downloading), `sha1` for
 * Couchbase Lite over BLIP (as Sync Gateway: its `getAttachment` and proofs name that digest).
 */
export type DigestKind = 'md5' | 'sha1';

export interface RenderOptions {
  /** Attachment bytes to inline as base64 `data`, by name. */
  inline?: Map<string, Buffer>;
  /** Attachments sent as separate MIME parts: marked `follows` instead of `stub`. */
  follows?: Set<string>;
  /** Default `md5`: renderDoc is the REST rendering. */
  digests?: DigestKind;
  /**
   * CouchDB's shape for an inlined attachment: `content_type`, `revpos`, `digest`, `data`, no
   * `length` (couch_att:to_json writes `length` only beside `stub` or `follows`; PouchDB's suite
   * checks it is absent). `encoding`/`encoded_length` stay: our inlined bytes are the stored,
   * still-encoded form (CouchDB gunzips them instead), so the client must be told. renderDoc (REST)
   * sets it; BLIP bodies keep Sync Gateway's shape.
   */
  couchInline?: boolean;
}

/** One attachment's metadata as a client sees it: `digest` of the asked kind, no internal fields. */
function clientMeta(meta: AttachmentMeta, kind: DigestKind): Record<string, unknown> {
  const { md5, ...rest } = meta;
  // A digest the migration could not hash (its bytes were missing) has no md5: sha1 is all there is.
  if (kind === 'md5' && md5) rest.digest = md5;
  return rest;
}

export function renderAttachments(atts: AttachmentMap, opts: RenderOptions & { digests: DigestKind }): string {
  const out: Record<string, unknown> = {};
  for (const [name, meta] of Object.entries(atts)) {
    const m = clientMeta(meta, opts.digests);
    const data = opts.inline?.get(name);
    if (data) {
      m.data = data.toString('base64');
      if (opts.couchInline) delete m.length;
    } else if (opts.follows?.has(name)) m.follows = true;
    else m.stub = true;
    out[name] = m;
  }
  return JSON.stringify(out);
}

/** The REST rendering of a revision (`md5-` digests unless told otherwise). */
export function renderDoc(view: DocView, opts: RenderOptions = {}): string {
  let head = `{"_id":${JSON.stringify(view.id)},"_rev":${JSON.stringify(view.rev)}`;
  if (view.removed) head += ',"_removed":true';
  if (view.deleted) head += ',"_deleted":true';
  if (view.removed) {
    if (view.revisions) head += `,"_revisions":${JSON.stringify(view.revisions)}`;
    return head + '}';
  }
  if (view.attachments) head += `,"_attachments":${renderAttachments(view.attachments, { couchInline: true, ...opts, digests: opts.digests ?? 'md5' })}`;
  if (view.revisions) head += `,"_revisions":${JSON.stringify(view.revisions)}`;
  if (view.expiry !== undefined) head += `,"_exp":${JSON.stringify(new Date(view.expiry * 1000).toISOString())}`;
  if (view.conflicts) head += `,"_conflicts":${JSON.stringify(view.conflicts)}`;
  if (view.deletedConflicts) head += `,"_deleted_conflicts":${JSON.stringify(view.deletedConflicts)}`;
  if (view.revsInfo) head += `,"_revs_info":${JSON.stringify(view.revsInfo)}`;
  return view.body.length > 2 ? head + ',' + view.body.slice(1) : head + '}';
}

/** `_revisions` for a history list (newest first): digests without their generation prefix. */
export function toRevisions(history: string[]): Revisions {
  const first = history[0];
  const start = Number(first.slice(0, first.indexOf('-')));
  return { start, ids: history.map((r) => r.slice(r.indexOf('-') + 1)) };
}
