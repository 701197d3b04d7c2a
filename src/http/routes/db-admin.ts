/**
 * Operating a running database (admin port): its run state (`_offline`, `_online`) and its
 * background jobs (`_resync`, `_compact`). Thin: the transitions live in src/db/state.ts and the
 * jobs in src/db/jobs/.
 */
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { scheduleOnline, takeOffline } from '../../db/state.ts';
import { parseJson } from '../../json/index.ts';

async function offline(ctx: RequestContext): Promise<void> {
  await takeOffline(ctx.database);
  await ctx.send(200, '', 'application/json');
}

/** `{"delay": seconds}`; a missing or unparsable body means no delay (Sync Gateway ignores it). */
async function online(ctx: RequestContext): Promise<void> {
  let delay = 0;
  try {
    const text = (await ctx.body()).toString('utf8');
    const parsed = text.trim() ? parseJson(text) as { delay?: unknown } : undefined;
    if (parsed && typeof parsed.delay === 'number' && Number.isFinite(parsed.delay)) delay = parsed.delay;
  } catch {
    delay = 0;
  }
  const db = ctx.database;
  scheduleOnline(db, delay);
  await ctx.send(200, '', 'application/json');
}

export function dbAdminRoutes(): Route[] {
  return [
    { methods: ['POST'], pattern: '/{db}/_offline', handler: offline, adminOnly: true, offlineCapable: true },
    { methods: ['POST'], pattern: '/{db}/_online', handler: online, adminOnly: true, offlineCapable: true },
  ];
}
