/** `_all_docs`, `_bulk_docs`, `_bulk_get` and `_revs_diff`: the batch endpoints replicators live on. */
import { HttpError } from '../../errors.ts';
import { newDocId, type WriteRequest } from '../../db/database.ts';
import { canSee } from '../../auth/principal.ts';
import { renderDoc } from '../../db/render.ts';
import { boolParam, intParam, jsonParam, type RequestContext } from '../context.ts';
import { MultipartWriter } from '../multipart.ts';
import type { Route } from '../router.ts';
import { accepts, revisionPart } from './docs.ts';
import { allDocsValue } from './inspection.ts';
import { isJsonObject } from '../../json/index.ts';
import { checkAttachmentNames } from '../../db/attachments.ts';

/** `startkey` and friends: a JSON string, or (as Sync Gateway also accepts) the bare id. */
function keyParam(q: URLSearchParams, ...names: string[]): string | undefined {
  for (const name of names) {
    const v = q.get(name);
    if (v === null) continue;
    if (v.startsWith('"')) {
      const parsed = jsonParam(q, name);
      if (typeof parsed !== 'string') throw new HttpError(400, `Invalid ${name}`);
      return parsed;
    }
    return v;
  }
  return undefined;
}

async function allDocs(ctx: RequestContext): Promise<void> {
  const db = ctx.coll;
  const q = ctx.query;
  const includeDocs = boolParam(q, 'include_docs');
  const withSeq = boolParam(q, 'update_seq');
  const extras = { channels: boolParam(q, 'channels'), access: boolParam(q, 'access') };
  const withAttachments = includeDocs && boolParam(q, 'attachments');
  const conflicts = includeDocs && boolParam(q, 'conflicts');
  const descending = boolParam(q, 'descending');
  const skip = intParam(q, 'skip', 0)!;
  if (skip < 0) throw new HttpError(400, 'Invalid skip');
  let keys: unknown = jsonParam(q, 'keys');
  if (ctx.method === 'POST') {
    const body = await ctx.json();
    keys = (body as { keys?: unknown })?.keys;
    if (!Array.isArray(keys)) throw new HttpError(400, 'Bad/missing keys');
  }
  if (keys !== undefined && (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string'))) {
    throw new HttpError(400, 'Bad/missing keys');
  }
  // CouchDB's `key` is a range of one; `keys` cannot be combined with any range.
  const key = keyParam(q, 'key');
  const ranged = key !== undefined || ['startkey', 'start_key', 'endkey', 'end_key'].some((n) => q.has(n));
  if (keys !== undefined && ranged) throw new HttpError(400, '`keys` is incompatible with `key`, `start_key` and `end_key`');
  const rows: string[] = [];
  const limit = intParam(q, 'limit');
  const [lastSeq, counts] = await Promise.all([db.store.lastSeq(), db.store.docCounts()]);
  const p = ctx.principal;
  const seesAll = p.kind === 'admin' || p.channels.has('*');
  const rowText = async (id: string, rev: string, seq: number, channels: string[]) => {
    const value = await allDocsValue(db, p, { id, rev, channels }, extras);
    let s = `{"key":${JSON.stringify(id)},"id":${JSON.stringify(id)},"value":${JSON.stringify(value)}`;
    if (includeDocs) {
      const view = await db.get(id, { rev, conflicts }, p);
      // attachments=true inlines every attachment's bytes as base64 (PouchDB's `attachments: true`).
      const inline = withAttachments ? await db.attachmentsToInline(view.attachments, undefined) : undefined;
      s += `,"doc":${renderDoc(view, { inline })}`;
    }
    if (withSeq) s += `,"update_seq":${seq}`;
    return s + '}';
  };
  if (Array.isArray(keys)) {
    const docs = await db.store.getDocs(keys as string[]);
    // As CouchDB: the keys in the order asked (reversed when descending), then skip, then limit.
    let wanted = (descending ? [...keys].reverse() : keys) as string[];
    wanted = wanted.slice(skip, limit !== undefined && limit >= 0 ? skip + limit : undefined);
    for (const key of wanted) {
      const d = docs.get(key);
      if (!d) rows.push(JSON.stringify({ key, error: 'not_found', status: 404 }));
      else if (d.deleted) {
        // CouchDB names the tombstone (PouchDB reads value.deleted); a user who does not see every
        // channel gets Sync Gateway's not_found, which says nothing about a document it cannot see.
        if (!seesAll) rows.push(JSON.stringify({ key, error: 'not_found', status: 404 }));
        else rows.push(`{"key":${JSON.stringify(key)},"id":${JSON.stringify(key)},"value":${JSON.stringify({ rev: d.rev, deleted: true })}${includeDocs ? ',"doc":null' : ''}}`);
      } else if (!canSee(p, d.channels)) rows.push(JSON.stringify({ key, error: 'forbidden', status: 403 }));
      else rows.push(await rowText(d.id, d.rev, d.seq, d.channels));
    }
  } else {
    const max = limit !== undefined && limit >= 0 ? limit : undefined;
    const filtered = !seesAll;
    // A user's rows are filtered after the scan, so limit and skip count only rows the user can see.
    const found = await db.store.allDocs({
      startkey: key ?? keyParam(q, 'startkey', 'start_key'), endkey: key ?? keyParam(q, 'endkey', 'end_key'),
      inclusiveEnd: boolParam(q, 'inclusive_end', true),
      limit: filtered ? undefined : max, skip: filtered ? 0 : skip,
      descending,
    });
    let toSkip = filtered ? skip : 0;
    for (const r of found) {
      if (!canSee(p, r.channels)) continue;
      if (toSkip > 0) { toSkip--; continue; }
      if (max !== undefined && rows.length >= max) break;
      rows.push(await rowText(r.id, r.rev, r.seq, r.channels));
    }
  }
  // CouchDB's total_rows counts the whole database; a user who does not see all of it gets Sync
  // Gateway's count of the rows sent, which does not reveal how many documents it cannot see.
  const total = seesAll ? counts.live : rows.length;
  // The database's update_seq only when asked (CouchDB; PouchDB's tests check its absence).
  const trailer = withSeq ? `,"update_seq":${lastSeq}` : '';
  // offset: the rows skipped, as PouchDB's own adapters report it (CouchDB counts the index rows
  // before the range too; with no range the two agree).
  await ctx.sendJson(200, `{"rows":[${rows.join(',\n')}],\n"total_rows":${total},"offset":${skip}${trailer}}`);
}

/**
 * `limits.max_bulk_docs`: one request is one storage transaction and one response held in memory.
 * 413, as CouchDB answers past its `max_bulk_docs_count` (Sync Gateway has no such limit).
 */
function checkBatchSize(ctx: RequestContext, n: number, what: string): void {
  const max = ctx.settings.maxBulkDocs ?? 0;
  if (max > 0 && n > max) throw new HttpError(413, `Too many documents in ${what}: ${n} (the limit is ${max})`);
}

async function bulkDocs(ctx: RequestContext): Promise<void> {
  const db = ctx.coll;
  const body = await ctx.json() as { docs?: unknown; new_edits?: unknown };
  if (!body || typeof body !== 'object' || !Array.isArray(body.docs)) throw new HttpError(400, "missing 'docs' property");
  const newEdits = body.new_edits === undefined ? true : body.new_edits !== false;
  const docs = body.docs as unknown[];
  checkBatchSize(ctx, docs.length, '_bulk_docs');
  const rows: ({ id: string; ok?: true; rev?: string; error?: string; reason?: string; status?: number } | undefined)[] = new Array(docs.length);
  const writes: { i: number; req: WriteRequest }[] = [];
  const locals: number[] = [];
  docs.forEach((raw, i) => {
    if (!isJsonObject(raw)) {
      rows[i] = { id: '', error: 'bad_request', reason: 'Document body must be a JSON object', status: 400 };
      return;
    }
    const doc = raw as Record<string, unknown>;
    let id = doc._id;
    if (typeof id === 'string' && id.startsWith('_local/')) { locals.push(i); return; }
    if (id === undefined && newEdits) id = newDocId();
    if (typeof id !== 'string' || id === '' || id.startsWith('_')) {
      rows[i] = { id: typeof id === 'string' ? id : '', error: 'bad_request', reason: 'Invalid doc ID', status: 400 };
      return;
    }
    try {
      checkAttachmentNames(doc);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      rows[i] = { id, error: err.couchName, reason: err.reason, status: err.status };
      return;
    }
    writes.push({ i, req: { id, body: doc, newEdits, principal: ctx.principal } });
  });
  const results = await db.bulkWrite(writes.map((w) => w.req));
  results.forEach((r, k) => {
    const { i, req } = writes[k];
    rows[i] = r instanceof HttpError
      ? { id: req.id, error: r.couchName, reason: r.reason, status: r.status }
      : { id: r.id, ok: true, rev: r.rev }; // CouchDB's row shape: PouchDB's bulkDocs callers test `ok`
  });
  // Local docs go after the normal ones, as Sync Gateway does.
  const localRows = [];
  for (const i of locals) {
    const doc = docs[i] as Record<string, unknown>;
    const id = (doc._id as string).slice('_local/'.length);
    try {
      // `_deleted` removes a local doc, as CouchDB does (PouchDB deletes checkpoints this way).
      if (doc._deleted === true) {
        await db.deleteLocal(id, doc._rev);
        localRows.push({ id: doc._id as string, ok: true, rev: '0-0' });
        continue;
      }
      const rev = await db.putLocal(id, doc);
      localRows.push({ id: doc._id as string, ok: true, rev });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      localRows.push({ id: doc._id as string, error: err.couchName, reason: err.reason, status: err.status });
    }
  }
  await ctx.sendJson(201, JSON.stringify([...rows.filter((r) => r !== undefined), ...localRows]));
}

interface BulkGetItem { id: string; rev?: string; atts_since?: string[]; revs_limit?: number; revs_from?: string[] }

function parseBulkGetItems(body: unknown): BulkGetItem[] {
  const docs = (body as { docs?: unknown })?.docs;
  if (!Array.isArray(docs)) throw new HttpError(400, "missing 'docs' property");
  return docs.map((d) => {
    if (!d || typeof d !== 'object' || typeof (d as BulkGetItem).id !== 'string') throw new HttpError(400, 'Bad _bulk_get request: each doc needs an id');
    const item = d as BulkGetItem;
    if (item.rev !== undefined && typeof item.rev !== 'string') throw new HttpError(400, 'Bad _bulk_get request: rev must be a string');
    return item;
  });
}

async function bulkGet(ctx: RequestContext): Promise<void> {
  const db = ctx.coll;
  const q = ctx.query;
  const revs = boolParam(q, 'revs');
  const attachments = boolParam(q, 'attachments');
  const revsLimit = intParam(q, 'revs_limit');
  // CouchDB's: PouchDB 9's replicator asks for the latest leaf of each named revision's branch.
  const latest = boolParam(q, 'latest');
  const conflicts = boolParam(q, 'conflicts');
  const items = parseBulkGetItems(await ctx.json());
  checkBatchSize(ctx, items.length, '_bulk_get');
  const results = await db.getMany(items.map((it) => ({
    id: it.id, rev: it.rev,
    opts: { revs, revsLimit: it.revs_limit ?? revsLimit, revsFrom: it.revs_from ?? it.atts_since, latest, conflicts },
  })), ctx.principal);
  const accept = ctx.header('accept')?.toLowerCase() ?? '';
  // CouchDB's JSON form for clients that ask for JSON only (PouchDB); Sync Gateway's multipart otherwise.
  if (accept.includes('application/json') && !accept.includes('multipart/')) {
    const out: string[] = [];
    for (let i = 0; i < items.length; i++) {
      const r = results[i];
      const it = items[i];
      if (r instanceof HttpError) {
        const error = { id: it.id, rev: it.rev ?? '', error: r.couchName, reason: r.reason };
        out.push(`{"id":${JSON.stringify(it.id)},"docs":[{"error":${JSON.stringify(error)}}]}`);
        continue;
      }
      const inline = attachments ? await db.attachmentsToInline(r.attachments, it.atts_since, r) : undefined;
      out.push(`{"id":${JSON.stringify(it.id)},"docs":[{"ok":${renderDoc(r, { inline })}}]}`);
    }
    await ctx.sendJson(200, `{"results":[${out.join(',')}]}`);
    return;
  }
  if (!accepts(ctx, 'multipart/')) throw new HttpError(406, 'Response is multipart');
  const w = new MultipartWriter();
  const res = ctx.res;
  res.statusCode = 200;
  res.setHeader('Content-Type', w.contentType('mixed'));
  // Streamed part by part: a large _bulk_get is never held whole in memory.
  for (let i = 0; i < items.length; i++) {
    const r = results[i];
    const it = items[i];
    let part: Buffer;
    if (r instanceof HttpError) {
      const error: Record<string, unknown> = { id: it.id, error: r.couchName, reason: r.reason, status: r.status };
      if (it.rev) error.rev = it.rev;
      part = w.part({ 'Content-Type': 'application/json; error="true"' }, JSON.stringify(error));
    } else {
      part = await revisionPart(db, r, attachments, w, it.atts_since);
    }
    if (!res.write(part)) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end(w.end());
}

async function revsDiff(ctx: RequestContext): Promise<void> {
  const body = await ctx.json();
  if (!isJsonObject(body)) throw new HttpError(400, 'Bad revs_diff request');
  const result = await ctx.coll.revsDiff(body as Record<string, string[]>, ctx.principal);
  await ctx.sendJson(200, JSON.stringify(result));
}

export function bulkRoutes(): Route[] {
  return [
    { methods: ['GET', 'POST'], pattern: '/{db}/_all_docs', handler: allDocs, keyspace: true },
    { methods: ['POST'], pattern: '/{db}/_bulk_docs', handler: bulkDocs, keyspace: true },
    { methods: ['POST'], pattern: '/{db}/_bulk_get', handler: bulkGet, keyspace: true },
    { methods: ['POST'], pattern: '/{db}/_revs_diff', handler: revsDiff, keyspace: true },
  ];
}
