/** Server and database level endpoints: `/`, `/_all_dbs`, `/{db}/` and database lifecycle. */
import { HttpError } from '../../errors.ts';
import { boolParam, type RequestContext } from '../context.ts';
import type { DatabaseRegistry } from '../registry.ts';
import type { Route } from '../router.ts';
import { isJsonObject } from '../../json/index.ts';
import { dbConfigText } from './config.ts';

export const VERSION = '2.8.3';
const DB_NAME = /^[a-z][-a-z0-9_$()+/]*$/;

async function root(ctx: RequestContext): Promise<void> {
  const body: Record<string, unknown> = {
    couchdb: 'Welcome',
    vendor: { name: 'Couchbase Sync Gateway', version: '2.8' },
    version: `Couchbase Sync Gateway/${VERSION}(Syncgate) CE`,
  };
  if (ctx.isAdmin) body.ADMIN = true;
  await ctx.sendJson(200, JSON.stringify(body));
}

async function dbInfo(ctx: RequestContext): Promise<void> {
  const db = ctx.database;
  // Sync Gateway leaves the sequences out while the database is offline.
  const [seq, counts] = await Promise.all([db.state === 'Offline' ? undefined : db.store.lastSeq(), db.store.docCounts()]);
  // doc_count and doc_del_count are CouchDB's (Sync Gateway has neither): PouchDB reads doc_count.
  await ctx.sendJson(200, JSON.stringify({
    db_name: db.name, doc_count: counts.live, doc_del_count: counts.deleted,
    update_seq: seq, committed_update_seq: seq, instance_start_time: db.startTime,
    compact_running: db.jobs?.compactRunning ?? false, purge_seq: 0, disk_format_version: 0, state: db.state,
    server_uuid: await db.store.uuid(),
  }));
}

async function ensureFullCommit(ctx: RequestContext): Promise<void> {
  // Every acknowledged write is already durable: nothing to flush.
  await ctx.sendJson(201, JSON.stringify({ instance_start_time: ctx.database.startTime, ok: true }));
}

export function databaseRoutes(registry: DatabaseRegistry): Route[] {
  const allDbs = async (ctx: RequestContext) => ctx.sendJson(200, JSON.stringify(registry.names().sort()));

  const createDb = async (ctx: RequestContext) => {
    const name = ctx.params.db;
    if (!ctx.isAdmin) {
      if (registry.get(name)) throw new HttpError(412, 'Database already exists');
      throw new HttpError(403, 'Creating a DB over the public API is unsupported');
    }
    if (!DB_NAME.test(name)) throw new HttpError(400, `Illegal database name: ${name}`);
    if (registry.get(name)) throw new HttpError(412, `Duplicate database name ${JSON.stringify(name)}`);
    await registry.configs.create(name, await dbConfigText(ctx), { disableOidcValidation: boolParam(ctx.query, 'disable_oidc_validation', false) });
    // Sync Gateway answers 201 with an empty body; CouchDB (and PouchDB's http adapter, which
    // parses it) expects `{"ok":true}`. The JSON body costs Sync Gateway clients nothing.
    await ctx.sendJson(201, '{"ok":true}');
  };

  const deleteDb = async (ctx: RequestContext) => {
    if (!(await registry.configs.remove(ctx.params.db))) throw new HttpError(404, `no such database "${ctx.params.db}"`);
    await ctx.sendJson(200, '{}');
  };

  const purge = async (ctx: RequestContext) => {
    const body = await ctx.json();
    if (!isJsonObject(body)) throw new HttpError(400, 'Bad purge request');
    const purged: Record<string, string[]> = {};
    for (const [id, revs] of Object.entries(body as Record<string, unknown>)) {
      // Only the whole-document form is supported, as in Sync Gateway; other entries are skipped.
      if (!Array.isArray(revs) || revs.length !== 1 || revs[0] !== '*') continue;
      if (await ctx.coll.purge(id)) purged[id] = ['*'];
    }
    await ctx.sendJson(200, JSON.stringify({ purged }));
  };

  // `/{db}/` and `_ensure_full_commit` are the database's (Sync Gateway's `{db}` routes); `_purge`
  // purges from one collection (a `{keyspace}` route there).
  return [
    { methods: ['GET'], pattern: '/', handler: root },
    { methods: ['GET'], pattern: '/_all_dbs', handler: allDbs, adminOnly: true },
    { methods: ['GET'], pattern: '/{db}/', handler: dbInfo, offlineCapable: true },
    { methods: ['PUT'], pattern: '/{db}/', handler: createDb },
    { methods: ['DELETE'], pattern: '/{db}/', handler: deleteDb, adminOnly: true, offlineCapable: true },
    { methods: ['POST'], pattern: '/{db}/_ensure_full_commit', handler: ensureFullCommit },
    { methods: ['POST'], pattern: '/{db}/_purge', handler: purge, adminOnly: true, keyspace: true },
  ];
}
