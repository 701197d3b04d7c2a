/**
 * Inter-Sync Gateway Replication admin API (spec sg3-admin.md §5): definitions at
 * `/{db}/_replication/`, status and actions at `/{db}/_replicationStatus/`. Admin port only; the
 * database must be Online (the HTTP gate refuses other states). Thin: the rules live in
 * src/replication/isgr/.
 */
import { randomUUID } from 'node:crypto';
import { convertBackQuotedStrings } from '../../config/index.ts';
import { HttpError } from '../../errors.ts';
import { isJsonObject, parseJson } from '../../json/index.ts';
import type { ReplicationRegistry, StatusOptions } from '../../replication/isgr/registry.ts';
import type { RequestContext } from '../context.ts';
import type { DatabaseRegistry } from '../registry.ts';
import type { Route } from '../router.ts';

/** Sync Gateway's optional boolean query: only `true` is true; absent or empty gives the default. */
function optBool(q: URLSearchParams, name: string, dflt: boolean): boolean {
  const v = q.get(name);
  return v === null || v === '' ? dflt : v === 'true';
}

function statusOptions(ctx: RequestContext): StatusOptions {
  const q = ctx.query;
  return {
    activeOnly: optBool(q, 'activeOnly', false), localOnly: optBool(q, 'localOnly', false),
    includeError: optBool(q, 'includeError', true), includeConfig: optBool(q, 'includeConfig', false),
  };
}

/** The body as an object; back-quoted strings are allowed (for `custom_conflict_resolver`). */
async function definitionBody(ctx: RequestContext): Promise<Record<string, unknown>> {
  const text = (await ctx.body()).toString('utf8');
  let v: unknown;
  try {
    v = parseJson(convertBackQuotedStrings(text).json);
  } catch {
    throw new HttpError(400, 'Bad JSON');
  }
  if (!isJsonObject(v)) throw new HttpError(400, 'Request body must be a JSON object');
  return v;
}

const json = (ctx: RequestContext, value: unknown) => ctx.sendJson(200, JSON.stringify(value));

export function replicationRoutes(registry: DatabaseRegistry): Route[] {
  const of = (ctx: RequestContext): ReplicationRegistry => {
    const r = registry.replications?.(ctx.database.name);
    if (!r) throw new HttpError(503, 'Replications are not available for this database');
    return r;
  };

  const list = async (ctx: RequestContext) => json(ctx, await of(ctx).definitions());
  const get = async (ctx: RequestContext) => json(ctx, await of(ctx).definition(ctx.params.id));
  const remove = async (ctx: RequestContext) => {
    await of(ctx).remove(ctx.params.id);
    await ctx.send(200, '', 'application/json');
  };
  const put = async (ctx: RequestContext) => {
    const body = await definitionBody(ctx);
    let id: string;
    if (ctx.method === 'PUT') {
      id = ctx.params.id;
      if (typeof body.replication_id === 'string' && body.replication_id !== '' && body.replication_id !== id) {
        throw new HttpError(400, `Replication ID in body ${JSON.stringify(body.replication_id)} does not match request URI`);
      }
    } else {
      if (body.replication_id !== undefined && body.replication_id !== null && typeof body.replication_id !== 'string') {
        throw new HttpError(400, 'Replication field "replication_id" must be a string');
      }
      // Sync Gateway's docs promise a generated id when the body has none (its code stores ""): Syncgate generates one.
      id = (body.replication_id as string | undefined) || randomUUID();
    }
    const created = await of(ctx).upsert(id, body);
    ctx.setHeader('Location', `/${encodeURIComponent(ctx.database.name)}/_replication/${encodeURIComponent(id)}`);
    await ctx.send(created ? 201 : 200, '', 'application/json');
  };
  const statuses = async (ctx: RequestContext) => json(ctx, await of(ctx).statuses(statusOptions(ctx)));
  const status = async (ctx: RequestContext) => json(ctx, await of(ctx).status(ctx.params.id, statusOptions(ctx)));
  const act = async (ctx: RequestContext) => {
    const action = ctx.query.get('action') ?? '';
    if (action === '') throw new HttpError(400, "Query parameter 'action' must be specified");
    await json(ctx, await of(ctx).act(ctx.params.id, action));
  };

  return [
    { methods: ['GET'], pattern: '/{db}/_replication', handler: list, adminOnly: true },
    { methods: ['POST'], pattern: '/{db}/_replication', handler: put, adminOnly: true },
    // `+`: an id may start with `_` or hold a `/` (percent-encoded).
    { methods: ['GET'], pattern: '/{db}/_replication/{id+}', handler: get, adminOnly: true },
    { methods: ['PUT'], pattern: '/{db}/_replication/{id+}', handler: put, adminOnly: true },
    { methods: ['DELETE'], pattern: '/{db}/_replication/{id+}', handler: remove, adminOnly: true },
    { methods: ['GET'], pattern: '/{db}/_replicationStatus', handler: statuses, adminOnly: true },
    { methods: ['GET'], pattern: '/{db}/_replicationStatus/{id+}', handler: status, adminOnly: true },
    { methods: ['PUT'], pattern: '/{db}/_replicationStatus/{id+}', handler: act, adminOnly: true },
  ];
}
