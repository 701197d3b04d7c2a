/** Document GET / PUT / POST / DELETE, including open_revs and multipart bodies. */
import { HttpError } from '../../errors.ts';
import { type GetOptions, newDocId, type WriteRequest, type WriteResult } from '../../db/database.ts';
import { type DocView, renderDoc } from '../../db/render.ts';
import { boolParam, intParam, jsonParam, parseJsonBody, type RequestContext, stringArrayParam } from '../context.ts';
import { MultipartWriter, parseMultipart, parseRelatedDocument, quoteParam } from '../multipart.ts';
import type { Route } from '../router.ts';
import { isJsonObject } from '../../json/index.ts';
import { parseRevId } from '../../revid.ts';
import { checkAttachmentNames } from '../../db/attachments.ts';
import type { Collection } from '../../db/collection.ts';

/** Attachments up to this size stay inline as base64 even in multipart responses (Sync Gateway's rule). */
const MAX_INLINE_ATTACHMENT = 200;

export function accepts(ctx: RequestContext, type: string): boolean {
  const accept = ctx.header('accept');
  if (!accept) return true;
  const a = accept.toLowerCase();
  const major = type.split('/')[0];
  return a.includes(type) || a.includes('*/*') || a.includes(`${major}/*`);
}

function getOptions(ctx: RequestContext): GetOptions & { attachments: boolean; attsSince?: string[] } {
  const q = ctx.query;
  const attsSince = stringArrayParam(q, 'atts_since');
  return {
    rev: q.get('rev') ?? undefined,
    revs: boolParam(q, 'revs'),
    revsLimit: intParam(q, 'revs_limit'),
    revsFrom: stringArrayParam(q, 'revs_from') ?? attsSince,
    attachments: boolParam(q, 'attachments'),
    attsSince,
    showExp: boolParam(q, 'show_exp'),
    // CouchDB's options (PouchDB sends them; Sync Gateway ignores them).
    latest: boolParam(q, 'latest'),
    conflicts: boolParam(q, 'conflicts'),
    deletedConflicts: boolParam(q, 'deleted_conflicts'),
    revsInfo: boolParam(q, 'revs_info'),
  };
}

/** Sets the Etag and revision for responses about one revision. */
function etag(rev: string): string {
  return `"${rev}"`;
}

/** The answer to every document or attachment write: `{"id","ok":true,"rev"}`, with the new Etag when asked. */
export async function sendWriteResult(ctx: RequestContext, status: number, result: WriteResult, withEtag: boolean): Promise<void> {
  if (withEtag) ctx.setHeader('Etag', etag(result.rev));
  await ctx.sendJson(status, JSON.stringify({ id: result.id, ok: true, rev: result.rev }));
}

export function ifMatch(ctx: RequestContext): string | undefined {
  const v = ctx.header('if-match');
  if (!v) return undefined;
  return v.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/**
 * Renders one revision as MIME parts for multipart/related: the JSON first, then each inlined
 * attachment over 200 bytes as its own part marked `follows`.
 */
export function relatedParts(view: DocView, inline: Map<string, Buffer>, w: MultipartWriter): Buffer[] {
  const follows = new Set<string>();
  const small = new Map<string, Buffer>();
  for (const [name, data] of inline) {
    if (data.length > MAX_INLINE_ATTACHMENT) follows.add(name);
    else small.set(name, data);
  }
  const chunks = [w.part({ 'Content-Type': 'application/json' }, renderDoc(view, { inline: small, follows }))];
  for (const name of follows) {
    const meta = view.attachments![name];
    const headers: Record<string, string> = { 'Content-Disposition': `attachment; filename=${quoteParam(name)}` };
    if (meta.content_type) headers['Content-Type'] = meta.content_type;
    if (meta.encoding) headers['Content-Encoding'] = meta.encoding;
    chunks.push(w.part(headers, inline.get(name)!));
  }
  chunks.push(w.end());
  return chunks;
}

async function getDoc(ctx: RequestContext): Promise<void> {
  const db = ctx.coll;
  const id = ctx.params.doc;
  const opts = getOptions(ctx);
  const openRevsParam = ctx.query.get('open_revs');
  if (openRevsParam !== null) return getOpenRevs(ctx, db, id, openRevsParam, opts);
  const view = await db.get(id, opts, ctx.principal);
  const inline = opts.attachments ? await db.attachmentsToInline(view.attachments, opts.attsSince, view) : new Map<string, Buffer>();
  ctx.setHeader('Etag', etag(view.rev));
  const multipart = accepts(ctx, 'multipart/') && (inline.size > 0 || !accepts(ctx, 'application/json'));
  if (multipart) {
    const w = new MultipartWriter();
    await ctx.send(200, Buffer.concat(relatedParts(view, inline, w)), w.contentType('related'));
    return;
  }
  await ctx.sendJson(200, renderDoc(view, { inline }));
}

async function getOpenRevs(ctx: RequestContext, db: Collection, id: string, param: string, opts: ReturnType<typeof getOptions>): Promise<void> {
  let revs: 'all' | string[];
  if (param === 'all') revs = 'all';
  else {
    const v = jsonParam(ctx.query, 'open_revs');
    if (!Array.isArray(v) || !v.every((r) => typeof r === 'string')) throw new HttpError(400, 'bad open_revs');
    // A malformed revision id is a bad request, as CouchDB answers (couch_doc:parse_revs), not a
    // `missing` row: no document can ever have it.
    for (const r of v) parseRevId(r);
    revs = v;
  }
  const results = await db.getOpenRevs(id, revs, opts, ctx.principal);
  // atts_since does not apply to open_revs (Sync Gateway treats it as empty).
  if (accepts(ctx, 'multipart/') && ctx.header('accept')?.toLowerCase() !== 'application/json') {
    const w = new MultipartWriter();
    const chunks: Buffer[] = [];
    for (const r of results) {
      if ('missing' in r) {
        chunks.push(w.part({ 'Content-Type': 'application/json' }, JSON.stringify({ missing: r.missing })));
        continue;
      }
      chunks.push(await revisionPart(db, r, opts.attachments, w));
    }
    chunks.push(w.end());
    await ctx.send(200, Buffer.concat(chunks), w.contentType('mixed'));
    return;
  }
  const rows: string[] = [];
  for (const r of results) {
    if ('missing' in r) { rows.push(JSON.stringify({ missing: r.missing })); continue; }
    const inline = opts.attachments ? await db.attachmentsToInline(r.attachments, undefined) : undefined;
    rows.push(`{"ok":${renderDoc(r, { inline })}}`);
  }
  await ctx.sendJson(200, `[${rows.join(',')}]`);
}

/** One revision as a part of a multipart/mixed body (open_revs, _bulk_get). */
export async function revisionPart(db: Collection, view: DocView, attachments: boolean, w: MultipartWriter, attsSince?: string[]): Promise<Buffer> {
  const inline = attachments ? await db.attachmentsToInline(view.attachments, attsSince, view) : new Map<string, Buffer>();
  const ids = { 'X-Doc-ID': view.id, 'X-Rev-ID': view.rev };
  const hasLarge = [...inline.values()].some((d) => d.length > MAX_INLINE_ATTACHMENT);
  if (!hasLarge) return w.part({ 'Content-Type': 'application/json', ...ids }, renderDoc(view, { inline }));
  const inner = new MultipartWriter();
  return w.part({ 'Content-Type': inner.contentType('related'), ...ids }, Buffer.concat(relatedParts(view, inline, inner)));
}

/** Reads a document body from JSON or multipart/related. */
export async function readDocumentBody(ctx: RequestContext): Promise<{ body: Record<string, unknown>; follows?: Map<string, Buffer> }> {
  const ct = ctx.contentType();
  let body: unknown;
  let follows: Map<string, Buffer> | undefined;
  if (ct.type === 'multipart/related') {
    const doc = parseRelatedDocument(parseMultipart(await ctx.body(), ctx.header('content-type')!));
    body = parseJsonBody(Buffer.from(doc.json));
    follows = doc.attachments;
  } else body = await ctx.json();
  if (!isJsonObject(body)) throw new HttpError(400, 'Document body must be a JSON object');
  checkAttachmentNames(body as Record<string, unknown>);
  return { body: body as Record<string, unknown>, follows };
}

async function putDoc(ctx: RequestContext): Promise<void> {
  const id = ctx.params.doc;
  const { body, follows } = await readDocumentBody(ctx);
  const newEdits = boolParam(ctx.query, 'new_edits', true);
  const req: WriteRequest = { id, body, newEdits, follows, parentRev: ctx.query.get('rev') ?? ifMatch(ctx), principal: ctx.principal };
  const result = await ctx.coll.put(req);
  await sendWriteResult(ctx, 201, result, newEdits);
}

async function postDoc(ctx: RequestContext): Promise<void> {
  const { body, follows } = await readDocumentBody(ctx);
  let id = body._id;
  if (id === undefined) {
    if (body._rev !== undefined) throw new HttpError(404, 'No previous revision to replace');
    id = newDocId();
  }
  if (typeof id !== 'string' || id === '' || id.startsWith('_')) throw new HttpError(400, 'Invalid doc ID');
  const result = await ctx.coll.put({ id, body, newEdits: true, follows, principal: ctx.principal });
  ctx.setHeader('Location', encodeURIComponent(result.id));
  await sendWriteResult(ctx, 200, result, true);
}

async function deleteDoc(ctx: RequestContext): Promise<void> {
  const rev = ctx.query.get('rev') ?? ifMatch(ctx);
  const result = await ctx.coll.delete(ctx.params.doc, rev, ctx.principal);
  await sendWriteResult(ctx, 200, result, false);
}

export function docRoutes(): Route[] {
  return [
    // `POST /{keyspace}/` writes to a collection; `GET /{db}/` (database.ts) is the database's.
    { methods: ['POST'], pattern: '/{db}/', handler: postDoc, keyspace: true },
    { methods: ['GET'], pattern: '/{db}/{doc}', handler: getDoc, keyspace: true },
    { methods: ['PUT'], pattern: '/{db}/{doc}', handler: putDoc, keyspace: true },
    { methods: ['DELETE'], pattern: '/{db}/{doc}', handler: deleteDoc, keyspace: true },
  ];
}
