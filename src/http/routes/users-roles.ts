/**
 * Admin API for users and roles (`/{db}/_user/`, `/{db}/_role/`, spec §4.2): list, read, create,
 * replace, delete, and end a user's sessions. Successes without a body go through the error path
 * (empty body), as Sync Gateway's `writeStatus` does.
 */
import type { DbAuth, Principals } from '../../auth/index.ts';
import { HttpError } from '../../errors.ts';
import { boolParam, intParam, type RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { isJsonObject } from '../../json/index.ts';

/** The database's access-control services, set on the context by the server. */
export function dbAuth(ctx: RequestContext): DbAuth {
  const auth = (ctx as RequestContext & { auth?: DbAuth }).auth;
  if (!auth) throw new HttpError(500, 'access control is not configured for this database');
  return auth;
}

async function objectBody(ctx: RequestContext): Promise<Record<string, unknown>> {
  const body = await ctx.json();
  if (!isJsonObject(body)) throw new HttpError(400, 'Bad JSON: expected an object');
  return body as Record<string, unknown>;
}

function written(result: 'created' | 'replaced'): never {
  throw result === 'created' ? new HttpError(201, 'Created') : new HttpError(200, 'OK');
}

type Kind = 'user' | 'role';

/** Saves a principal, then wakes that user's (or role's users') live feeds so they reload it. */
async function put(ctx: RequestContext, p: Principals, kind: Kind, name: string, body: Record<string, unknown>, creating: boolean) {
  const result = kind === 'user' ? await p.putUser(name, body, { creating }) : await p.putRole(name, body, { creating });
  ctx.db?.principalChanged(kind, name);
  return result;
}

function principalRoutes(kind: Kind): Route[] {
  const seg = kind === 'user' ? '_user' : '_role';

  /**
   * Sync Gateway's `name_only` and `limit` (users: `limit` only with `name_only=false`, whose rows
   * are `{"name","email","disabled"}`), plus Syncgate's `prefix` and `startafter` for paging and
   * searching, both in byte order and read a page at a time from the store's index. Roles are
   * listed by name only, with `limit` too.
   */
  const list = async (ctx: RequestContext) => {
    const p = dbAuth(ctx).principals;
    const q = ctx.query;
    const nameOnly = kind === 'role' || q.get('name_only') === null || boolParam(q, 'name_only');
    const limit = intParam(q, 'limit', 0)!;
    if (kind === 'user' && limit > 0 && nameOnly) throw new HttpError(400, 'Use of limit only supported when name_only=false');
    const page = { prefix: q.get('prefix') ?? undefined, after: q.get('startafter') ?? undefined, limit };
    const names = kind === 'user' ? await p.listUsers(page) : await p.listRoles(page);
    if (nameOnly) {
      await ctx.sendJson(200, JSON.stringify(names));
      return;
    }
    // Only this page's records are read.
    const rows = await Promise.all(names.map((n) => p.getUserJson(n)));
    const summaries = rows.filter((u) => u !== undefined)
      .map((u) => ({ name: u.name, ...(u.email ? { email: u.email } : {}), disabled: u.disabled === true }));
    await ctx.sendJson(200, JSON.stringify(summaries));
  };

  const post = async (ctx: RequestContext) => {
    const body = await objectBody(ctx);
    if (body.name === undefined || body.name === null) throw new HttpError(400, 'Missing name property');
    if (typeof body.name !== 'string') throw new HttpError(400, 'Bad JSON: name must be a string');
    written(await put(ctx, dbAuth(ctx).principals, kind, body.name, body, true));
  };

  const get = async (ctx: RequestContext) => {
    const p = dbAuth(ctx).principals;
    const json = kind === 'user' ? await p.getUserJson(ctx.params.name) : await p.getRoleJson(ctx.params.name);
    if (!json) throw new HttpError(404, 'missing');
    await ctx.sendJson(200, JSON.stringify(json));
  };

  const replace = async (ctx: RequestContext) => {
    const name = ctx.params.name;
    const body = await objectBody(ctx);
    if (body.name !== undefined && body.name !== null && body.name !== name) throw new HttpError(400, "Name mismatch (can't change name)");
    written(await put(ctx, dbAuth(ctx).principals, kind, name, body, false));
  };

  const remove = async (ctx: RequestContext) => {
    const p = dbAuth(ctx).principals;
    if (kind === 'user') await p.deleteUser(ctx.params.name);
    else await p.deleteRole(ctx.params.name);
    ctx.db?.principalChanged(kind, ctx.params.name);
    throw new HttpError(200, 'OK');
  };

  return [
    { methods: ['GET'], pattern: `/{db}/${seg}/`, handler: list, adminOnly: true },
    { methods: ['POST'], pattern: `/{db}/${seg}/`, handler: post, adminOnly: true },
    { methods: ['GET', 'PUT', 'DELETE'], pattern: `/{db}/${seg}/{name}`, adminOnly: true,
      handler: (ctx) => (ctx.method === 'PUT' ? replace(ctx) : ctx.method === 'DELETE' ? remove(ctx) : get(ctx)) },
  ];
}

async function deleteUserSessions(ctx: RequestContext): Promise<void> {
  const { principals, sessions } = dbAuth(ctx);
  if (!(await principals.exists('user', ctx.params.name))) throw new HttpError(404, 'missing');
  await sessions.deleteUser(ctx.params.name);
  throw new HttpError(200, 'OK');
}

/** Deletes one session, only if it belongs to that user (`deleteUserSessionWithValidation`). */
async function deleteUserSession(ctx: RequestContext): Promise<void> {
  const { sessions } = dbAuth(ctx);
  const s = await sessions.get(ctx.params.sid);
  if (!s || s.user !== ctx.params.name) throw new HttpError(404, 'missing');
  await sessions.delete(s.id);
  throw new HttpError(200, 'OK');
}

export function authRoutes(): Route[] {
  return [
    ...principalRoutes('user'),
    ...principalRoutes('role'),
    { methods: ['DELETE'], pattern: '/{db}/_user/{name}/_session', handler: deleteUserSessions, adminOnly: true },
    { methods: ['DELETE'], pattern: '/{db}/_user/{name}/_session/{sid}', handler: deleteUserSession, adminOnly: true },
  ];
}
