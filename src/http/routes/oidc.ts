/**
 * The OpenID Connect authorization-code flow endpoints (spec §3.7), public and admin:
 * `_oidc` (302 to the provider), `_oidc_challenge` (401 with `WWW-Authenticate: OIDC login=...`),
 * `_oidc_callback` (code exchange, session cookie, JSON) and `_oidc_refresh`. Thin: the flow is
 * `src/auth/jwt/oidc-flow.ts`.
 */
import type { TLSSocket } from 'node:tls';
import { readCookie, sessionCookie, type FlowRequest, type OidcFlow } from '../../auth/index.ts';
import { HttpError } from '../../errors.ts';
import type { RequestContext } from '../context.ts';
import type { Route } from '../router.ts';
import { dbAuth } from './users-roles.ts';

const STATE_COOKIE = 'sg-oidc-state';

function flowOf(ctx: RequestContext): OidcFlow {
  const flow = dbAuth(ctx).oidcFlow;
  if (!flow) throw new HttpError(400, `OpenID Connect not configured for database ${ctx.params.db}`);
  return flow;
}

function flowRequest(ctx: RequestContext): FlowRequest {
  const secure = (ctx.req.socket as TLSSocket).encrypted === true;
  return { db: ctx.params.db, origin: `${secure ? 'https' : 'http'}://${ctx.header('host') ?? 'localhost'}`, secure };
}

async function authorize(ctx: RequestContext, challenge: boolean): Promise<void> {
  const flow = flowOf(ctx);
  const r = flowRequest(ctx);
  const provider = flow.provider(ctx.query.get('provider') ?? undefined, r.db);
  const redirect = await flow.authorization(provider, r, ctx.query.get('offline') === 'true');
  if (redirect.stateCookie) ctx.setHeader('Set-Cookie', redirect.stateCookie);
  if (challenge) {
    ctx.setHeader('WWW-Authenticate', `OIDC login="${redirect.url}"`);
    await ctx.sendJson(401, JSON.stringify({ error: 'Unauthorized', reason: 'Login required' }));
    return;
  }
  ctx.res.statusCode = 302;
  ctx.res.setHeader('Location', redirect.url);
  ctx.res.setHeader('Content-Length', 0);
  ctx.res.end();
}

async function callback(ctx: RequestContext): Promise<void> {
  const q = ctx.query;
  if (q.get('error')) throw new HttpError(401, `oidc callback received an error: ${q.get('error_description') ?? q.get('error')}`);
  const code = q.get('code');
  if (!code) throw new HttpError(400, 'Code must be present on oidc callback');
  const flow = flowOf(ctx);
  const r = flowRequest(ctx);
  const provider = flow.provider(q.get('provider') ?? undefined, r.db);
  const cookies: string[] = [];
  if (!provider.settings.disableCallbackState) {
    const state = readCookie(ctx.header('cookie'), STATE_COOKIE);
    if (state === undefined || state === '') throw new HttpError(400, 'No state cookie found for oidc callback');
    if (state !== q.get('state')) throw new HttpError(400, 'State mismatch');
    cookies.push(flow.clearStateCookie(r));
  }
  const login = await flow.callback(provider, r, code);
  await answer(ctx, login, cookies);
}

async function refresh(ctx: RequestContext): Promise<void> {
  const token = ctx.query.get('refresh_token');
  if (!token) throw new HttpError(400, 'Invalid empty refresh_token');
  const flow = flowOf(ctx);
  const provider = flow.provider(ctx.query.get('provider') ?? undefined, ctx.params.db);
  await answer(ctx, await flow.refresh(provider, token), []);
}

async function answer(ctx: RequestContext, login: Awaited<ReturnType<OidcFlow['callback']>>, cookies: string[]): Promise<void> {
  const auth = dbAuth(ctx);
  if (login.session) {
    cookies.push(sessionCookie(auth.cookieName, login.session.id, login.session.expires, {
      path: `/${ctx.params.db}`, secure: auth.cookieSecure, httpOnly: auth.cookieHttpOnly,
    }));
  }
  if (cookies.length) ctx.setHeader('Set-Cookie', cookies);
  ctx.setHeader('Cache-Control', 'private, no-store');
  await ctx.sendJson(200, JSON.stringify(login.body));
}

export function oidcRoutes(): Route[] {
  return [
    { methods: ['GET'], pattern: '/{db}/_oidc', handler: (ctx) => authorize(ctx, false), publicPrivileges: true },
    { methods: ['GET'], pattern: '/{db}/_oidc_challenge', handler: (ctx) => authorize(ctx, true), publicPrivileges: true },
    { methods: ['GET'], pattern: '/{db}/_oidc_callback', handler: callback, publicPrivileges: true },
    { methods: ['GET'], pattern: '/{db}/_oidc_refresh', handler: refresh, publicPrivileges: true },
  ];
}
