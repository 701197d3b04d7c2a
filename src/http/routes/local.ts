/** `_local` documents: replication checkpoints, never replicated and never in a feed. */
import { HttpError } from '../../errors.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { ifMatch } from './docs.ts';
import { isJsonObject } from '../../json/index.ts';

async function getLocal(ctx: RequestContext): Promise<void> {
  await ctx.sendJson(200, await ctx.coll.getLocal(ctx.params.id));
}

async function putLocal(ctx: RequestContext): Promise<void> {
  const body = await ctx.json();
  if (!isJsonObject(body)) throw new HttpError(400, 'Document body must be a JSON object');
  const rev = await ctx.coll.putLocal(ctx.params.id, body as Record<string, unknown>);
  await ctx.sendJson(201, JSON.stringify({ id: `_local/${ctx.params.id}`, ok: true, rev }));
}

async function deleteLocal(ctx: RequestContext): Promise<void> {
  await ctx.coll.deleteLocal(ctx.params.id, ctx.query.get('rev') ?? ifMatch(ctx));
  await ctx.sendJson(200, JSON.stringify({ id: `_local/${ctx.params.id}`, ok: true }));
}

/** CouchDB's answer to any attachment request on a local document (`/{db}/_local/{id}/{att}`). */
async function localAttachment(): Promise<void> {
  throw new HttpError(400, '_local documents do not accept attachments.');
}

export function localRoutes(): Route[] {
  return [
    // Before `{id+}`, which would read `_local/doc/att` as a local doc named "doc/att". A local id
    // with a slash in it comes as one segment (`%2F`), which `{id}` takes whole.
    // Local documents belong to a collection: every route is a keyspace route.
    { methods: ['GET', 'PUT', 'DELETE'], pattern: '/{db}/_local/{id}/{att+}', handler: localAttachment, keyspace: true },
    { methods: ['GET'], pattern: '/{db}/_local/{id+}', handler: getLocal, keyspace: true },
    { methods: ['PUT'], pattern: '/{db}/_local/{id+}', handler: putLocal, keyspace: true },
    { methods: ['DELETE'], pattern: '/{db}/_local/{id+}', handler: deleteLocal, keyspace: true },
  ];
}
