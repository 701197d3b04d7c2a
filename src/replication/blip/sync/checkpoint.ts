/**
 * Replication checkpoints: `getCheckpoint`, `setCheckpoint` and (CBL 3.1+) `getCollections`. Each
 * collection keeps its clients' checkpoints as its own local documents `checkpoint/<client>` with
 * Sync Gateway's `0-N` revisions, so a checkpoint written over BLIP is the `_local` doc the REST API
 * shows in that keyspace (spec collections-delta.md §1.7).
 */
import { HttpError } from '../../../errors.ts';
import { isJsonObject } from '../../../json/index.ts';
import { parseJsonBytes } from '../../../json/index.ts';
import type { Collection } from '../../../db/collection.ts';
import type { BlipRequest } from '../connection.ts';
import { type BlipCollection, parseCollectionPath } from './collections.ts';
import { requireProp, type SyncContext } from './context.ts';

const PREFIX = 'checkpoint/';

/** The stored checkpoint body without `_id`, and its revision; undefined when none exists. */
async function readCheckpoint(coll: Collection, client: string): Promise<{ rev: string; body: Record<string, unknown> } | undefined> {
  let text: string;
  try {
    text = await coll.getLocal(PREFIX + client);
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) return undefined;
    throw err;
  }
  const body = JSON.parse(text) as Record<string, unknown>;
  const rev = String(body._rev);
  delete body._id;
  delete body._rev;
  return { rev, body };
}

export async function getCheckpoint(bc: BlipCollection, req: BlipRequest): Promise<void> {
  const found = await readCheckpoint(bc.coll, requireProp(req, 'client'));
  // Couchbase Lite expects exactly HTTP/404 for "no checkpoint yet"; anything else stops it.
  if (!found) throw new HttpError(404, 'missing');
  req.respond({ rev: found.rev }, found.body);
}

/**
 * The revision a `setCheckpoint` replaces: the `rev` property (what Couchbase Lite sends), else a
 * revision left in the body, under `_rev` (Sync Gateway's getCollections entry, echoed back) or
 * `rev` (ours and LiteCore's). Neither key is checkpoint content: both are dropped from the body.
 */
function expectedRev(req: BlipRequest, doc: Record<string, unknown>): unknown {
  const inBody = doc._rev ?? (typeof doc.rev === 'string' ? doc.rev : undefined);
  delete doc._rev;
  if (typeof doc.rev === 'string') delete doc.rev;
  return req.properties.rev || inBody || undefined;
}

export async function setCheckpoint(bc: BlipCollection, req: BlipRequest): Promise<void> {
  const client = requireProp(req, 'client');
  const body = req.json<unknown>();
  if (!isJsonObject(body)) throw new HttpError(400, 'checkpoint body must be a JSON object');
  const doc: Record<string, unknown> = { ...body };
  delete doc._id;
  // A stale or unknown rev is 409 (404 when a rev is given but nothing is stored), as in Sync Gateway.
  doc._rev = expectedRev(req, doc);
  const rev = await bc.coll.putLocal(PREFIX + client, doc);
  req.respond({ rev });
}

/** Go's `%v` of a string slice, as Sync Gateway prints the request body in its length error. */
function goList(list: string[]): string {
  return `[${list.join(' ')}]`;
}

/**
 * The body of `getCollections` as Sync Gateway decodes it into two string arrays. Anything else
 * fails its JSON decoding, which it answers as an unmapped error: HTTP/500 "Internal error: …".
 */
function parseGetCollections(body: Buffer): { names: string[]; ids: string[] } {
  const fail = (why: string): never => {
    throw new HttpError(500, `Internal error: Error deserializing json Sync err: ${why}`);
  };
  let parsed: unknown;
  if (body.length === 0) fail('EOF');
  try {
    parsed = parseJsonBytes(body);
  } catch (err) {
    fail(err instanceof HttpError ? err.reason : 'invalid JSON');
  }
  if (parsed === null) return { names: [], ids: [] };
  if (!isJsonObject(parsed)) return fail('json: cannot unmarshal into Go value of type db.GetCollectionsRequestBody');
  const strings = (key: string): string[] => {
    const v = parsed[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string')) {
      return fail(`json: cannot unmarshal into Go struct field GetCollectionsRequestBody.${key} of type []string`);
    }
    return v;
  };
  return { names: strings('collections'), ids: strings('checkpoint_ids') };
}

/**
 * `getCollections` (spec §1.3, §1.4): for each named collection, `null` when this database does not
 * have it, `{}` when it has no checkpoint under that ID, else the checkpoint with its revision under
 * `rev` (what Couchbase Lite reads) and `_rev` (what Sync Gateway sends, and its own replicator
 * reads). The list becomes the connection's collection index; a bad entry refuses the whole
 * request and changes nothing.
 */
export async function getCollections(ctx: SyncContext, req: BlipRequest): Promise<void> {
  const { names, ids } = parseGetCollections(req.body);
  if (names.length !== ids.length) {
    throw new HttpError(400, `Length of collections must match length of checkpoint ids. Request body: Collections: ${goList(names)}, CheckpointIds: ${goList(ids)}`);
  }
  const colls = names.map((path) => {
    let parsed: { scope: string; name: string };
    try {
      parsed = parseCollectionPath(path);
    } catch (err) {
      throw new HttpError(400, `Invalid specification for collection: ${(err as Error).message}`);
    }
    return ctx.db.collection(parsed.scope, parsed.name) ?? null;
  });
  const out: unknown[] = [];
  for (let i = 0; i < colls.length; i++) {
    const coll = colls[i];
    if (!coll) { out.push(null); continue; }
    let found: Awaited<ReturnType<typeof readCheckpoint>>;
    try {
      found = await readCheckpoint(coll, ids[i]);
    } catch (err) {
      ctx.log('warn', `getCollections: reading checkpoint ${PREFIX + ids[i]} of ${coll.key} failed: ${(err as Error).message}`);
      throw new HttpError(503, `Unable to fetch client checkpoint "${PREFIX + ids[i]}" for collection ${names[i]}`);
    }
    out.push(found ? { ...found.body, rev: found.rev, _rev: found.rev } : {});
  }
  ctx.collections.setList(colls);
  req.respond({}, out);
}
