/**
 * CORS for browsers (spec §0, Sync Gateway's `rest/routing.go` `wrapRouter` and the `_session`
 * handlers). Public port only: the admin and metrics listeners never emit CORS headers, whatever
 * the request says. Three calls, in the listener's order:
 *
 *   1. `addCorsHeaders` for every request, before routing, so errors (401, 404...) carry the headers
 *      too and a page can read them (PouchDB reads the 404 of a missing checkpoint);
 *   2. `addPreflightHeaders` where the router answers `OPTIONS` with its `Allow` list;
 *   3. `checkLoginOrigin` just before the handler runs: `POST`/`DELETE /{db}/_session` from an
 *      `Origin` that `LoginOrigin` does not match is 400 `No CORS` (Sync Gateway #115, #762), so a
 *      foreign page can neither log a browser in nor out. Requests without an `Origin` (apps, curl)
 *      are not affected.
 */
import type { CorsConfig } from '../config/types.ts';
import { HttpError } from '../errors.ts';
import type { RequestContext } from './context.ts';
import type { Route } from './router.ts';

export type { CorsConfig };

const SESSION_PATTERN = '/{db}/_session';

/**
 * Sync Gateway's `matchedOrigin`: the request's origin when the list holds it exactly, else `*`
 * when the list holds `*`, else undefined (no match).
 *
 * `*` is sent as the literal `*`, as Sync Gateway 2.x and 3.x do. With
 * `Access-Control-Allow-Credentials: true` a browser refuses `*` for a request made with
 * credentials (cookies, cached Basic auth; PouchDB's http adapter always uses
 * `credentials: 'include'`), and accepts it for one made without. So `*` opens anonymous reads to
 * every site and never lets a foreign page act with the user's session; a PouchDB web app must list
 * its origin. Echoing the request's origin instead would let any site read a logged-in user's data.
 */
export function matchOrigin(allowed: readonly string[], origin: string): string | undefined {
  if (allowed.includes(origin)) return origin;
  if (allowed.includes('*')) return '*';
  return undefined;
}

function requestOrigin(ctx: RequestContext): string | undefined {
  return ctx.isAdmin ? undefined : ctx.header('origin');
}

/**
 * Every public-port response to a request with an `Origin`: `Access-Control-Allow-Origin` (only
 * when the origin matches `CORS.Origin`: without it the browser refuses the response),
 * `Access-Control-Allow-Credentials: true` and `Access-Control-Allow-Headers`.
 */
export function addCorsHeaders(ctx: RequestContext, cors: CorsConfig | undefined): void {
  const origin = requestOrigin(ctx);
  if (!cors || origin === undefined) return;
  const allowed = matchOrigin(cors.origin, origin);
  // Sync Gateway sends an empty Access-Control-Allow-Origin when nothing matches; no header at all
  // has the same effect in a browser.
  if (allowed !== undefined) ctx.setHeader('Access-Control-Allow-Origin', allowed);
  ctx.setHeader('Access-Control-Allow-Credentials', 'true');
  ctx.setHeader('Access-Control-Allow-Headers', cors.headers.join(', '));
}

/**
 * A preflight (`OPTIONS` on a known path, which the router answers with `allow`) from a request with
 * an `Origin` also gets `Access-Control-Max-Age` and `Access-Control-Allow-Methods` (the path's
 * methods, the same list as `Allow`). As in Sync Gateway, any `OPTIONS` with an `Origin` counts,
 * with or without `Access-Control-Request-Method`.
 */
export function addPreflightHeaders(ctx: RequestContext, cors: CorsConfig | undefined, allow: readonly string[]): void {
  if (!cors || requestOrigin(ctx) === undefined) return;
  ctx.setHeader('Access-Control-Max-Age', String(cors.maxAge));
  ctx.setHeader('Access-Control-Allow-Methods', allow.join(', '));
}

/**
 * Throws 400 `No CORS` for a public-port `POST`/`DELETE /{db}/_session` whose `Origin` is not
 * matched by `CORS.LoginOrigin` (`*` matches any). With no `CORS` config at all, every login or
 * logout carrying an `Origin` is refused, as in Sync Gateway.
 */
export function checkLoginOrigin(ctx: RequestContext, cors: CorsConfig | undefined, route: Pick<Route, 'pattern'>): void {
  if (route.pattern !== SESSION_PATTERN || (ctx.method !== 'POST' && ctx.method !== 'DELETE')) return;
  const origin = requestOrigin(ctx);
  if (origin === undefined) return;
  if (matchOrigin(cors?.loginOrigin ?? [], origin) === undefined) throw new HttpError(400, 'No CORS');
}
