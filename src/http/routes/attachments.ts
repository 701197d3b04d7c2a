/** Attachment GET (with Range) / PUT / DELETE: `/{db}/{doc}/{att+}`. */
import { HttpError } from '../../errors.ts';
import { parseJson } from '../../json/index.ts';
import type { DocView } from '../../db/render.ts';
import { boolParam, type RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { ifMatch, sendWriteResult } from './docs.ts';
import { checkAttachmentName } from '../../db/attachments.ts';
import { decodeRevTree, isLeaf } from '../../revtree/index.ts';

/** Types a browser would render in our origin: served as downloads unless the operator opts in. */
const UNSAFE_TYPES = new Set(['text/html', 'application/xhtml+xml', 'image/svg+xml']);

function parseRange(header: string, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // not a single byte range: serve it all
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (start > end || start >= size) return 'unsatisfiable';
  }
  return { start, end };
}

async function getAttachment(ctx: RequestContext): Promise<void> {
  const db = ctx.coll;
  const name = ctx.params.att;
  const view = await db.get(ctx.params.doc, { rev: ctx.query.get('rev') ?? undefined }, ctx.principal);
  if (view.removed) throw new HttpError(403, 'forbidden');
  const meta = view.attachments?.[name];
  if (!meta) throw new HttpError(404, `missing attachment ${name}`);
  const data = await db.getAttachmentData(meta.digest);
  if (!data) throw new HttpError(404, `missing attachment ${name}`);
  const type = meta.content_type ?? '';
  ctx.setHeader('Etag', `"${meta.digest}"`);
  ctx.setHeader('Accept-Ranges', 'bytes');
  if (ctx.isAdmin || type === '' || UNSAFE_TYPES.has(type.split(';')[0].trim().toLowerCase())) {
    ctx.setHeader('Content-Disposition', 'attachment');
  }
  let contentType = type || 'application/octet-stream';
  if (meta.encoding) {
    if (boolParam(ctx.query, 'content_encoding', true)) ctx.setHeader('Content-Encoding', meta.encoding);
    else {
      ctx.setHeader('X-Content-Encoding', meta.encoding);
      contentType = 'application/gzip';
    }
  }
  const rangeHeader = ctx.header('range');
  const range = rangeHeader && !meta.encoding ? parseRange(rangeHeader, data.length) : undefined;
  if (range === 'unsatisfiable') {
    ctx.setHeader('Content-Range', `bytes */${data.length}`);
    throw new HttpError(416, 'Requested range not satisfiable');
  }
  const res = ctx.res;
  res.setHeader('Content-Type', contentType);
  if (range) {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${data.length}`);
    res.setHeader('Content-Length', range.end - range.start + 1);
    res.end(data.subarray(range.start, range.end + 1));
    return;
  }
  res.statusCode = 200;
  res.setHeader('Content-Length', data.length);
  res.end(data);
}

/** The current body of `rev` as a writable object, attachments as stubs the write path understands. */
function editableBody(view: DocView): Record<string, unknown> {
  const body = parseJson(view.body) as Record<string, unknown>;
  const atts: Record<string, unknown> = {};
  for (const [n, m] of Object.entries(view.attachments ?? {})) atts[n] = { ...m, stub: true };
  body._attachments = atts;
  return body;
}

async function loadForEdit(ctx: RequestContext, rev: string | undefined): Promise<DocView | undefined> {
  const db = ctx.coll;
  const doc = await db.getDocMeta(ctx.params.doc);
  if (!doc || (doc.deleted && rev === undefined)) {
    if (rev !== undefined) throw new HttpError(404, 'missing');
    return undefined;
  }
  if (rev === undefined) throw new HttpError(409, 'Cannot modify attachments without a specific rev ID');
  // The document exists, so a revision that is not a leaf (its body dropped, or still retained as
  // an old revision) or none of its own is a conflict: 409 as CouchDB and a document PUT answer.
  const tree = decodeRevTree(doc.tree);
  if (tree.has(rev) && !isLeaf(tree, rev)) throw new HttpError(409, 'Document revision conflict');
  const view = await db.get(ctx.params.doc, { rev }, ctx.principal).catch((err: unknown) => {
    if (err instanceof HttpError && err.status === 404) throw new HttpError(409, 'Document revision conflict');
    throw err;
  });
  if (view.removed) throw new HttpError(403, 'forbidden');
  return view;
}

async function putAttachment(ctx: RequestContext): Promise<void> {
  const rev = ctx.query.get('rev') ?? ifMatch(ctx);
  const name = ctx.params.att;
  checkAttachmentName(name);
  const data = await ctx.body();
  if (data.length > ctx.coll.maxAttachmentSize) throw new HttpError(413, `Attachment "${name}" is too large`);
  const current = await loadForEdit(ctx, rev);
  const body = current ? editableBody(current) : { _attachments: {} };
  (body._attachments as Record<string, unknown>)[name] = {
    follows: true, content_type: ctx.header('content-type') ?? 'application/octet-stream',
  };
  const result = await ctx.coll.put({
    id: ctx.params.doc, body, newEdits: true, parentRev: current?.rev, follows: new Map([[name, data]]), principal: ctx.principal,
  });
  await sendWriteResult(ctx, 201, result, true);
}

async function deleteAttachment(ctx: RequestContext): Promise<void> {
  const rev = ctx.query.get('rev') ?? ifMatch(ctx);
  const name = ctx.params.att;
  const current = await loadForEdit(ctx, rev);
  if (!current?.attachments?.[name]) throw new HttpError(404, `Attachment ${name} is not found`);
  const body = editableBody(current);
  delete (body._attachments as Record<string, unknown>)[name];
  const result = await ctx.coll.put({ id: ctx.params.doc, body, newEdits: true, parentRev: current.rev, principal: ctx.principal });
  await sendWriteResult(ctx, 200, result, true);
}

export function attachmentRoutes(): Route[] {
  return [
    { methods: ['GET'], pattern: '/{db}/{doc}/{att+}', handler: getAttachment, keyspace: true },
    { methods: ['PUT'], pattern: '/{db}/{doc}/{att+}', handler: putAttachment, keyspace: true },
    { methods: ['DELETE'], pattern: '/{db}/{doc}/{att+}', handler: deleteAttachment, keyspace: true },
  ];
}
