/** `_local` documents: replication checkpoints, never replicated and never in a feed. */
import { HttpError } from '../../errors.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { ifMatch } from './docs.ts';
import { isJsonObject } from '../../json/index.ts';

async function getLocal(ctx: RequestContext): Promise<void> {
  await ctx.sendJson(200, await ctx.database.getLocal(ctx.params.id));
}

async function putLocal(ctx: RequestContext): Promise<void> {
  const body = await ctx.json();
  if (!isJsonObject(body)) throw new HttpError(400, 'Document body must be a JSON object');
  const rev = await ctx.database.putLocal(ctx.params.id, body as Record<string, unknown>);
  await ctx.sendJson(201, JSON.stringify({ id: `_local/${ctx.params.id}`, ok: true, rev }));
}

async function deleteLocal(ctx: RequestContext): Promise<void> {
  await ctx.database.deleteLocal(ctx.params.id, ctx.query.get('rev') ?? ifMatch(ctx));
  await ctx.sendJson(200, JSON.stringify({ id: `_local/${ctx.params.id}`, ok: true }));
}

export function localRoutes(): Route[] {
  return [
    { methods: ['GET'], pattern: '/{db}/_local/{id+}', handler: getLocal },
    { methods: ['PUT'], pattern: '/{db}/_local/{id+}', handler: putLocal },
    { methods: ['DELETE'], pattern: '/{db}/_local/{id+}', handler: deleteLocal },
  ];
}
