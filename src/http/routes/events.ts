/** `GET /{db}/_event_handlers` (admin, Syncgate's own): what each webhook delivered, dropped, failed and has pending. */
import type { RequestContext } from '../context.ts';
import type { DatabaseRegistry } from '../registry.ts';
import type { Route } from '../router.ts';

export function eventRoutes(registry: DatabaseRegistry): Route[] {
  const status = async (ctx: RequestContext) => {
    const handlers = (await registry.eventHandlerStatus?.(ctx.database.name)) ?? [];
    await ctx.sendJson(200, JSON.stringify({ db_name: ctx.database.name, handlers }));
  };
  return [{ methods: ['GET'], pattern: '/{db}/_event_handlers', handler: status, adminOnly: true, offlineCapable: true }];
}
