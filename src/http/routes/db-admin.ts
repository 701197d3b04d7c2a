/**
 * Operating a running database (admin port): its run state (`_offline`, `_online`) and its
 * background jobs (`_resync`, `_compact`). Thin: the transitions live in src/db/state.ts and the
 * jobs in src/db/jobs/.
 */
import { HttpError } from '../../errors.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import type { Database } from '../../db/database.ts';
import { DbJobs } from '../../db/jobs/index.ts';
import { resyncCollections } from '../../db/jobs/resync.ts';
import { scheduleOnline, takeOffline } from '../../db/state.ts';
import { parseJson } from '../../json/index.ts';

function jobsOf(db: Database): DbJobs {
  if (!(db.jobs instanceof DbJobs)) throw new HttpError(503, 'Background jobs are not available for this database');
  return db.jobs;
}

/** `action=start|stop` (default start), refused otherwise as Sync Gateway does. */
function actionOf(ctx: RequestContext): 'start' | 'stop' {
  const action = ctx.query.get('action') ?? 'start';
  if (action === '' || action === 'start') return 'start';
  if (action === 'stop') return 'stop';
  throw new HttpError(400, "Unknown parameter for 'action'. Must be start or stop");
}

const flag = (ctx: RequestContext, name: string) => ctx.query.get(name) === 'true';

async function sendStatus(ctx: RequestContext, status: Record<string, unknown>): Promise<void> {
  await ctx.sendJson(200, JSON.stringify(status));
}

/**
 * `POST /{db}/_resync`: start needs the database Offline (it goes Resyncing until the run ends,
 * then Offline again); stop needs it Resyncing. `GET` shows the latest run, cluster-wide.
 */
async function resync(ctx: RequestContext): Promise<void> {
  const db = ctx.database;
  const job = jobsOf(db).resync;
  if (ctx.method === 'GET') return sendStatus(ctx, await job.status());
  const action = actionOf(ctx);
  const body = (await ctx.optionalJsonObject()) ?? {};
  if (action === 'stop') {
    if (db.state !== 'Resyncing') throw new HttpError(400, 'Database _resync is not running');
    return sendStatus(ctx, await job.stop());
  }
  if (db.state === 'Resyncing') throw new HttpError(503, 'Database _resync already in progress');
  if (db.state !== 'Offline') throw new HttpError(503, 'Database must be _offline before calling _resync');
  const regenerate = flag(ctx, 'regenerate_sequences') || body.regenerate_sequences === true;
  // Checked before the state moves: a refused request changes nothing.
  const collections = resyncCollections(db, body.scopes);
  db.setState('Resyncing');
  try {
    await sendStatus(ctx, await job.start({ regenerate_sequences: regenerate, collections }, flag(ctx, 'reset')));
  } catch (err) {
    if (!job.running) db.setState('Offline');
    throw err;
  }
}

/** `/{db}/_compact?type=tombstone|attachment`: needs the database Online (the HTTP gate sees to it). */
async function compact(ctx: RequestContext): Promise<void> {
  const type = ctx.query.get('type') || 'tombstone';
  if (type !== 'tombstone' && type !== 'attachment') throw new HttpError(400, "Unknown parameter for 'type'. Must be 'tombstone' or 'attachment'");
  const jobs = jobsOf(ctx.database);
  const job = type === 'tombstone' ? jobs.tombstones : jobs.attachments;
  if (ctx.method === 'GET') return sendStatus(ctx, await job.status());
  const action = actionOf(ctx);
  if (action === 'stop') return sendStatus(ctx, await job.stop());
  const options = type === 'attachment' && flag(ctx, 'dry_run') ? { dry_run: true } : {};
  await sendStatus(ctx, await job.start(options, type === 'attachment' && flag(ctx, 'reset')));
}

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
    { methods: ['GET', 'POST'], pattern: '/{db}/_resync', handler: resync, adminOnly: true, offlineCapable: true },
    { methods: ['GET', 'POST'], pattern: '/{db}/_compact', handler: compact, adminOnly: true },
  ];
}
