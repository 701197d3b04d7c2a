/**
 * Admin `GET /{db}/_user/{name}/_access` (Syncgate's own): where each of a user's channels and roles
 * comes from — the public channel, an admin grant, a JWT claim, a document's `access()`/`role()`
 * grant (naming the document), or a role (and how that role has the channel) — each with the
 * sequence from which it counts (src/auth/access-explain.ts). Sync Gateway 4.x's diagnostic
 * `/{db}/_user/{name}/_all_channels` answers a similar question with grant history; this one
 * names the granting documents, which is what "why can this user see it" needs.
 */
import { loadAccessExplanation } from '../../auth/access-explain.ts';
import { HttpError } from '../../errors.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';

async function explain(ctx: RequestContext): Promise<void> {
  const out = await loadAccessExplanation(ctx.database.store, ctx.params.name);
  if (!out) throw new HttpError(404, 'missing');
  await ctx.sendJson(200, JSON.stringify(out));
}

export function accessExplainRoutes(): Route[] {
  return [{ methods: ['GET'], pattern: '/{db}/_user/{name}/_access', handler: explain, adminOnly: true }];
}
