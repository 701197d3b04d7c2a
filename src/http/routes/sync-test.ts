/**
 * Admin `POST /{keyspace}/_sync`: the sync function dry run (Sync Gateway 4.x serves it on its
 * diagnostic port, `handleSyncFnDryRun`; Syncgate on the admin port). Runs a sync function (the
 * request's `sync_function`, else the collection's) over one revision in the same sandbox and time
 * limit as a real write (src/sync/), and stores nothing.
 *
 * Body, as Sync Gateway's:
 * - `doc` only: that body is `doc`, `oldDoc` is null (or the given `oldDoc`);
 * - `doc_id` only: the stored document's current revision is `doc`;
 * - `doc` and `doc_id`: the body is `doc`, the stored current revision `oldDoc` (as a write would see it);
 * - `oldDoc` with `doc_id`: 400;
 * - `userCtx: {name, roles, channels}`: run as that (possibly imaginary) user; without it, as the admin.
 * Syncgate's own addition: `user: "name"` runs as that stored user, with the channels and roles
 * it really has (in this collection), so `requireAccess` answers as it would for that user's write.
 *
 * Answers 200 `{"channels":[...],"access":{grantee:[channels]},"roles":{user:[roles]},"expiry":secs}`
 * or, when the function rejects the revision (`throw({forbidden})`, a failed `require*`, an
 * exception, the time limit), 200 with `exception` (as Sync Gateway) and Syncgate's
 * `rejection: {status, error, reason}`: the status and reason the real write would have got.
 * A `sync_function` that does not compile is 400 naming the problem and the line.
 */
import { principalIn } from '../../auth/principal.ts';
import type { Collection } from '../../db/collection.ts';
import { HttpError } from '../../errors.ts';
import { canonicalJson, isJsonObject } from '../../json/index.ts';
import { createRevId, parseRevId } from '../../revid.ts';
import { SyncFunction, SyncFunctionError, type SyncResult, type SyncUser } from '../../sync/index.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { dbAuth } from './users-roles.ts';

type Obj = Record<string, unknown>;

/** Properties a write accepts and drops before the sync function sees the body (Database's SPECIAL_KEYS). */
const DROPPED = new Set(['_id', '_rev', '_revisions', '_attachments', '_exp', '_deleted', '_conflicts', '_deleted_conflicts', '_revs_info']);
const DEFAULT_DOC_ID = 'sync_dryrun';

/** `doc` / `oldDoc` as the sync function receives them: `_id`, `_rev`, `_deleted` and the user properties. */
function docJson(id: string, rev: string | undefined, deleted: boolean, body: string): string {
  const head = `{"_id":${JSON.stringify(id)}${rev ? `,"_rev":${JSON.stringify(rev)}` : ''}${deleted ? ',"_deleted":true' : ''}`;
  return body.length > 2 ? `${head},${body.slice(1)}` : `${head}}`;
}

/** A pasted body's user properties, refused as a write would refuse them. */
function userBody(doc: Obj, what: string): string {
  const out: Obj = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === '_sync') throw new HttpError(400, `${what}: top-level property '_sync' is a reserved internal property`);
    if (k.startsWith('_')) {
      if (DROPPED.has(k)) continue;
      throw new HttpError(400, `${what}: user defined top level properties beginning with '_' are not allowed in document body`);
    }
    out[k] = v;
  }
  return JSON.stringify(out);
}

async function storedCurrent(coll: Collection, id: string): Promise<{ json: string; rev: string } | undefined> {
  const doc = await coll.store.getDoc(id);
  if (!doc) return undefined;
  const rev = await coll.store.getRevision(id, doc.rev);
  return { json: docJson(id, doc.rev, doc.deleted, rev?.body ?? '{}'), rev: doc.rev };
}

function compile(source: unknown, coll: Collection, dbName: string): SyncFunction {
  if (source === undefined || source === null || source === '') return coll.sync ?? new SyncFunction(undefined, dbName);
  if (typeof source !== 'string') throw new HttpError(400, 'sync_function must be a string');
  try {
    return new SyncFunction(source, dbName);
  } catch (err) {
    if (err instanceof SyncFunctionError) throw new HttpError(400, err.message);
    throw err;
  }
}

async function runAs(ctx: RequestContext, body: Obj, coll: Collection): Promise<SyncUser | null> {
  if (body.user !== undefined && body.userCtx !== undefined) throw new HttpError(400, 'give either user or userCtx, not both');
  if (typeof body.user === 'string') {
    const p = await dbAuth(ctx).principals.loadUserAnyState(body.user);
    if (!p) throw new HttpError(404, `no such user "${body.user}"`);
    const seen = principalIn(p, coll.key);
    if (seen.kind !== 'user') return null;
    return { name: seen.isGuest ? '' : seen.name, roles: [...seen.roles.keys()], channels: [...seen.channels.keys()] };
  }
  if (body.user !== undefined) throw new HttpError(400, 'user must be a user name');
  if (body.userCtx === undefined || body.userCtx === null) return null;
  const u = body.userCtx;
  if (!isJsonObject(u)) throw new HttpError(400, 'userCtx must be an object');
  const uc = u as Obj;
  if (typeof uc.name !== 'string' || uc.name === '') throw new HttpError(400, 'no user name provided');
  const strings = (v: unknown, key: string): string[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new HttpError(400, `userCtx.${key} must be an array of strings`);
    return v;
  };
  return { name: uc.name, roles: strings(uc.roles, 'roles'), channels: strings(uc.channels, 'channels') };
}

async function dryRun(ctx: RequestContext): Promise<void> {
  const body = await ctx.json().catch((err: Error) => { throw new HttpError(400, `Error reading sync function payload: ${err.message}`); });
  if (!isJsonObject(body)) throw new HttpError(400, 'Error reading sync function payload: expected a JSON object');
  const b = body as Obj;
  const coll = (ctx.collection ?? ctx.database) as Collection;
  const docId = b.doc_id;
  if (docId !== undefined && (typeof docId !== 'string' || docId === '')) throw new HttpError(400, 'doc_id must be a document id');
  if (b.doc !== undefined && b.doc !== null && !isJsonObject(b.doc)) throw new HttpError(400, 'doc must be a JSON object');
  if (b.oldDoc !== undefined && b.oldDoc !== null && !isJsonObject(b.oldDoc)) throw new HttpError(400, 'oldDoc must be a JSON object');
  const doc = (b.doc ?? undefined) as Obj | undefined;
  const oldDoc = (b.oldDoc ?? undefined) as Obj | undefined;
  if (!doc && docId === undefined) throw new HttpError(400, 'must provide either doc_id or doc');
  if (oldDoc && docId !== undefined) throw new HttpError(400, 'cannot specify doc_id with a provided oldDoc');

  // Compile first: a broken function is the request's problem whatever the document.
  const sync = compile(b.sync_function, coll, ctx.database.name);
  const user = await runAs(ctx, b, coll);

  const id = (docId as string | undefined) ?? (typeof doc?._id === 'string' ? doc._id : DEFAULT_DOC_ID);
  let newJson: string;
  let oldJson: string | null = null;
  let rev: string;
  const stored = docId !== undefined ? await storedCurrent(coll, id) : undefined;
  if (doc) {
    const props = userBody(doc, 'doc');
    const parent = typeof doc._rev === 'string' ? doc._rev : stored?.rev ?? '';
    if (parent) parseRevId(parent);
    // The id the revision would get, as a write computes it.
    rev = createRevId(parent, canonicalJson(JSON.parse(props)));
    newJson = docJson(id, rev, doc._deleted === true, props);
    if (stored) oldJson = stored.json;
    else if (oldDoc) oldJson = docJson(id, typeof oldDoc._rev === 'string' ? oldDoc._rev : undefined, oldDoc._deleted === true, userBody(oldDoc, 'oldDoc'));
  } else {
    if (!stored) throw new HttpError(404, 'missing');
    newJson = stored.json;
    rev = stored.rev;
  }

  let result: SyncResult | undefined;
  let rejection: HttpError | undefined;
  try {
    result = sync.run(newJson, oldJson, user);
    if (coll.maxChannelsPerDoc > 0 && result.channels.length > coll.maxChannelsPerDoc) {
      rejection = new HttpError(403, `Document is in ${result.channels.length} channels; the limit is ${coll.maxChannelsPerDoc}`);
    }
  } catch (err) {
    if (!(err instanceof HttpError)) throw err;
    rejection = err;
  }
  const out: Obj = { doc_id: id, rev, user: user === null ? null : user.name };
  if (rejection) {
    out.exception = `${rejection.status} ${rejection.reason}`;
    out.rejection = { status: rejection.status, error: rejection.error, reason: rejection.reason };
  } else if (result) {
    out.channels = [...result.channels].sort();
    out.access = result.access;
    out.roles = result.roles;
    if (result.expiry !== undefined) out.expiry = result.expiry;
  }
  await ctx.sendJson(200, JSON.stringify(out));
}

export function syncTestRoutes(): Route[] {
  return [{ methods: ['POST'], pattern: '/{db}/_sync', handler: dryRun, adminOnly: true, keyspace: true }];
}
