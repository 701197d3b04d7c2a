/**
 * Database and server configuration over REST (spec sg3-admin §1.4-§1.9): `/{db}/_config`,
 * `/{keyspace}/_config/sync|import_filter` (per collection since SG 3.1), `/_config`. Thin: they read the request and call the
 * gateway's DbConfigService, which validates, stores, versions and reloads.
 */
import { HttpError } from '../../errors.ts';
import { boolParam, type RequestContext } from '../context.ts';
import type { DatabaseRegistry } from '../registry.ts';
import type { Route } from '../router.ts';

/** The body of a database config as text: `Content-Type` absent or JSON (415 otherwise). */
export async function dbConfigText(ctx: RequestContext): Promise<string> {
  const ct = ctx.header('content-type');
  if (ct && !ct.toLowerCase().startsWith('application/json')) throw new HttpError(415, `Invalid content type ${ct}`);
  return (await ctx.body()).toString('utf8');
}

/** `redact=false` is refused, as since SG 3.0. */
function checkRedact(ctx: RequestContext): void {
  if (!boolParam(ctx.query, 'redact', true)) throw new HttpError(400, 'redact=false is no longer supported');
}

/** A success without a body (SG's `writeStatus` below 300), keeping the headers already set. */
function sendEmpty(ctx: RequestContext, status: number): void {
  ctx.res.statusCode = status;
  ctx.res.setHeader('Content-Length', 0);
  ctx.res.end();
}

/** SG's `setEtag`: the version in double quotes (an empty one in non-persistent mode). */
const etag = (version: string) => `"${version}"`;

export function configRoutes(registry: DatabaseRegistry): Route[] {
  const configs = registry.configs;

  const getDbConfig = async (ctx: RequestContext) => {
    checkRedact(ctx);
    const { config, version } = await configs.get(ctx.params.db, {
      includeRuntime: boolParam(ctx.query, 'include_runtime', false),
      includeJavascript: boolParam(ctx.query, 'include_javascript', true),
      refresh: boolParam(ctx.query, 'refresh_config', false),
    });
    if (version !== undefined) ctx.setHeader('Etag', etag(version));
    await ctx.sendJson(200, JSON.stringify(config));
  };

  const putDbConfig = async (ctx: RequestContext) => {
    const version = await configs.update(ctx.params.db, await dbConfigText(ctx), {
      merge: ctx.method === 'POST', ifMatch: ctx.header('if-match'), disableOidcValidation: boolParam(ctx.query, 'disable_oidc_validation', false),
    });
    if (version !== undefined) ctx.setHeader('Etag', etag(version));
    sendEmpty(ctx, 201);
  };

  /** The keyspace the server resolved (`/{db}/` is `_default._default`). */
  const collOf = (ctx: RequestContext) => ({ scope: ctx.coll.scope, name: ctx.coll.collectionName });

  const fn = (which: 'sync' | 'import_filter') => ({
    get: async (ctx: RequestContext) => {
      const { source, version } = await configs.getFunction(ctx.params.db, which, collOf(ctx));
      ctx.setHeader('Etag', etag(version));
      await ctx.send(200, source, 'application/javascript; charset=UTF-8');
    },
    put: async (ctx: RequestContext) => {
      const ct = ctx.header('content-type');
      if (ct && !ct.toLowerCase().startsWith('application/javascript')) throw new HttpError(415, `Invalid content type ${ct}`);
      const source = (await ctx.body()).toString('utf8');
      await configs.setFunction(ctx.params.db, which, source, ctx.header('if-match'), collOf(ctx));
      throw new HttpError(200, 'updated');
    },
    delete: async (ctx: RequestContext) => {
      await configs.setFunction(ctx.params.db, which, undefined, ctx.header('if-match'), collOf(ctx));
      throw new HttpError(200, which === 'sync' ? 'sync function removed' : 'import filter removed');
    },
  });

  const getServerConfig = async (ctx: RequestContext) => {
    checkRedact(ctx);
    await ctx.sendJson(200, JSON.stringify(await configs.serverConfig(boolParam(ctx.query, 'include_runtime', false))));
  };

  const putServerConfig = async (ctx: RequestContext) => {
    await configs.updateServerConfig(await ctx.json());
    throw new HttpError(200, 'Updated');
  };

  const routes: Route[] = [
    { methods: ['GET'], pattern: '/{db}/_config', handler: getDbConfig, adminOnly: true, offlineCapable: true },
    { methods: ['PUT', 'POST'], pattern: '/{db}/_config', handler: putDbConfig, adminOnly: true, offlineCapable: true },
    { methods: ['GET'], pattern: '/_config', handler: getServerConfig, adminOnly: true },
    { methods: ['PUT'], pattern: '/_config', handler: putServerConfig, adminOnly: true },
  ];
  for (const which of ['sync', 'import_filter'] as const) {
    const h = fn(which);
    routes.push(
      { methods: ['GET'], pattern: `/{db}/_config/${which}`, handler: h.get, adminOnly: true, offlineCapable: true, keyspace: true },
      { methods: ['PUT'], pattern: `/{db}/_config/${which}`, handler: h.put, adminOnly: true, offlineCapable: true, keyspace: true },
      { methods: ['DELETE'], pattern: `/{db}/_config/${which}`, handler: h.delete, adminOnly: true, offlineCapable: true, keyspace: true },
    );
  }
  return routes;
}
