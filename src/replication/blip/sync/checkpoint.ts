/**
 * Replication checkpoints: `getCheckpoint`, `setCheckpoint` and (CBL 3.1+) `getCollections`. Stored
 * as the local document `checkpoint/<client>` with Sync Gateway's `0-N` revisions, so a
 * checkpoint written over BLIP is the same `_local` doc the REST API shows.
 */
import { HttpError } from '../../../errors.ts';
import { isJsonObject } from '../../../json/index.ts';
import type { BlipRequest } from '../connection.ts';
import { requireProp, type SyncContext } from './context.ts';

const PREFIX = 'checkpoint/';

/** The stored checkpoint body without `_id`, and its revision; undefined when none exists. */
async function readCheckpoint(ctx: SyncContext, client: string): Promise<{ rev: string; body: Record<string, unknown> } | undefined> {
  let text: string;
  try {
    text = await ctx.db.getLocal(PREFIX + client);
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

export async function getCheckpoint(ctx: SyncContext, req: BlipRequest): Promise<void> {
  ctx.collections.check(req);
  const found = await readCheckpoint(ctx, requireProp(req, 'client'));
  // Couchbase Lite expects exactly HTTP/404 for "no checkpoint yet"; anything else stops it.
  if (!found) throw new HttpError(404, 'missing');
  req.respond({ rev: found.rev }, found.body);
}

export async function setCheckpoint(ctx: SyncContext, req: BlipRequest): Promise<void> {
  ctx.collections.check(req);
  const client = requireProp(req, 'client');
  const body = req.json<unknown>();
  if (!isJsonObject(body)) throw new HttpError(400, 'checkpoint body must be a JSON object');
  const doc: Record<string, unknown> = { ...body };
  delete doc._id;
  // A stale or unknown rev is 409 (404 when a rev is given but nothing is stored), as in Sync Gateway.
  doc._rev = req.properties.rev || undefined;
  const rev = await ctx.db.putLocal(PREFIX + client, doc);
  req.respond({ rev });
}

/**
 * `getCollections`: switches the connection to collection-aware mode. Only the default collection
 * exists; others answer `null` (Couchbase Lite then stops with "collection not found").
 */
export async function getCollections(ctx: SyncContext, req: BlipRequest): Promise<void> {
  const body = req.json<{ collections?: unknown; checkpoint_ids?: unknown }>();
  const names = body?.collections;
  const ids = body?.checkpoint_ids;
  if (!Array.isArray(names) || !Array.isArray(ids) || names.length !== ids.length) {
    throw new HttpError(400, 'getCollections needs "collections" and "checkpoint_ids" arrays of the same length');
  }
  const isDefault = names.map((n) => n === '_default' || n === '_default._default');
  const out: unknown[] = [];
  for (let i = 0; i < names.length; i++) {
    if (!isDefault[i]) { out.push(null); continue; }
    const found = typeof ids[i] === 'string' ? await readCheckpoint(ctx, ids[i] as string) : undefined;
    // LiteCore reads `rev`, Sync Gateway writes `_rev`: send both.
    out.push(found ? { ...found.body, rev: found.rev, _rev: found.rev } : {});
  }
  ctx.collections.setList(isDefault);
  req.respond({}, out);
}
