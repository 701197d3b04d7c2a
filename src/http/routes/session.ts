/**
 * Login sessions (spec §3, §4.1, §4.2). Public: `GET/POST/DELETE /{db}/_session` (who am I, log in
 * with a cookie, log out); these have public privileges (`Route.publicPrivileges`): a bad cookie is
 * ignored and a disabled GUEST gets through. Admin: `POST /{db}/_session` makes a session
 * for a named user; `GET/DELETE /{db}/_session/{sid}`.
 */
import {
  DEFAULT_SESSION_TTL_MS, GUEST_NAME, PRINCIPAL_NAME, UnauthorizedError, expiredSessionCookie, readCookie, sessionCookie,
  verifyLogin, type DbAuth, type UserPrincipal,
} from '../../auth/index.ts';
import { HttpError } from '../../errors.ts';
import { RawNumber, isJsonObject } from '../../json/index.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { dbAuth } from './users-roles.ts';

const SESSION_PATTERN = '/{db}/_session';

/** Go marshals this map-typed body with sorted keys; so do we. */
function sessionInfo(user: UserPrincipal | undefined): string {
  const channels: Record<string, number> = {};
  if (user) for (const ch of [...user.channels.keys()].sort()) channels[ch] = user.channels.get(ch)!;
  const name = user && !user.isGuest ? user.name : null;
  return JSON.stringify({ authentication_handlers: ['default', 'cookie'], ok: true, userCtx: { channels, name } });
}

async function sendSessionInfo(ctx: RequestContext, user: UserPrincipal | undefined): Promise<void> {
  ctx.setHeader('Cache-Control', 'private');
  await ctx.sendJson(200, sessionInfo(user));
}

function cookieAttrs(ctx: RequestContext, auth: DbAuth) {
  return { path: `/${ctx.db?.name ?? ctx.params.db}`, secure: auth.cookieSecure, httpOnly: auth.cookieHttpOnly };
}

// ---- public ----

async function getSession(ctx: RequestContext): Promise<void> {
  const p = ctx.principal;
  await sendSessionInfo(ctx, p?.kind === 'user' ? p : undefined);
}

/** Log in with `{name, password}`, or with the Basic credentials the request was authenticated by. */
async function login(ctx: RequestContext): Promise<void> {
  const auth = dbAuth(ctx);
  const body = await ctx.optionalJsonObject();
  let user: UserPrincipal | undefined;
  if (body && typeof body.name === 'string') {
    // Through the login lockout, like Basic auth: this is the other door for password guessing.
    user = await verifyLogin(auth, ctx.db?.name ?? ctx.params.db ?? '', ctx.clientAddress, body.name, typeof body.password === 'string' ? body.password : '');
    if (!user) auth.log?.info(`Auth: login failed for ${auth.log.ud ? `username="${auth.log.ud(body.name)}"` : `username=${JSON.stringify(body.name)}`}`);
  }
  const p = ctx.principal;
  if (!user && p?.kind === 'user' && !p.isGuest) user = p;
  // Sync Gateway answers a failed login without WWW-Authenticate (it is not an auth challenge).
  if (!user) throw new UnauthorizedError('Invalid login', false);
  const session = await auth.sessions.create(user.name, DEFAULT_SESSION_TTL_MS);
  ctx.setHeader('Set-Cookie', sessionCookie(auth.cookieName, session.id, session.expires, cookieAttrs(ctx, auth)));
  await sendSessionInfo(ctx, user);
}

async function logout(ctx: RequestContext): Promise<void> {
  const auth = dbAuth(ctx);
  const sid = readCookie(ctx.header('cookie'), auth.cookieName);
  if (sid === undefined) throw new HttpError(404, 'no session');
  if (sid !== '') await auth.sessions.delete(sid);
  ctx.setHeader('Set-Cookie', expiredSessionCookie(auth.cookieName, Date.now(), cookieAttrs(ctx, auth)));
  ctx.res.statusCode = 200;
  ctx.res.setHeader('Content-Length', 0);
  ctx.res.end();
}

async function publicSession(ctx: RequestContext): Promise<void> {
  if (ctx.method === 'POST') return login(ctx);
  if (ctx.method === 'DELETE') {
    // Logging out is a public-port operation only, as in Sync Gateway's admin router.
    if (ctx.isAdmin) {
      const err = new HttpError(405, `Method ${ctx.method} not allowed`);
      (err as HttpError & { allow?: string[] }).allow = ['GET', 'HEAD', 'POST'];
      throw err;
    }
    return logout(ctx);
  }
  return getSession(ctx);
}

// ---- admin ----

function ttlSeconds(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'number' ? v : v instanceof RawNumber ? Number(v.text) : NaN;
  if (!Number.isInteger(n) || n < 1) throw new HttpError(400, 'Invalid or missing ttl');
  return n;
}

/** `POST /{db}/_session` on the admin port: `{"name","ttl"}` → `{"session_id","expires","cookie_name"}`. */
async function createUserSession(ctx: RequestContext): Promise<void> {
  const auth = dbAuth(ctx);
  const body = await ctx.json();
  if (!isJsonObject(body)) throw new HttpError(400, 'Bad JSON: expected an object');
  const { name, ttl } = body as Record<string, unknown>;
  if (typeof name !== 'string' || name === '' || name === GUEST_NAME || !PRINCIPAL_NAME.test(name)) {
    throw new HttpError(400, 'Invalid or missing user name');
  }
  const seconds = ttlSeconds(ttl);
  if (!(await auth.principals.exists('user', name))) throw new HttpError(404, `No such user ${JSON.stringify(name)}`);
  const session = await auth.sessions.create(name, seconds === undefined ? DEFAULT_SESSION_TTL_MS : seconds * 1000);
  await ctx.sendJson(200, JSON.stringify({
    session_id: session.id, expires: new Date(session.expires).toISOString(), cookie_name: auth.cookieName,
  }));
}

async function adminSession(ctx: RequestContext): Promise<void> {
  const auth = dbAuth(ctx);
  if (ctx.method === 'DELETE') {
    await auth.sessions.delete(ctx.params.sid);
    throw new HttpError(200, 'OK');
  }
  const session = await auth.sessions.get(ctx.params.sid);
  if (!session) throw new HttpError(404, 'missing');
  await sendSessionInfo(ctx, await auth.principals.loadUserAnyState(session.user));
}

export function authRoutes(): Route[] {
  return [
    // Before the public route so that the admin port's POST creates a session for a named user.
    { methods: ['POST'], pattern: SESSION_PATTERN, handler: createUserSession, adminOnly: true },
    { methods: ['GET', 'POST', 'DELETE'], pattern: SESSION_PATTERN, handler: publicSession, publicPrivileges: true },
    { methods: ['GET', 'DELETE'], pattern: '/{db}/_session/{sid}', handler: adminSession, adminOnly: true },
  ];
}
