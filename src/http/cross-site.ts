/**
 * The admin and metrics ports refuse requests a browser sends on behalf of another site. Once an
 * operator has signed in to the console, the browser attaches the cached HTTP Basic credentials to
 * every request to the admin port, including ones a page from elsewhere (or an HTML attachment
 * served by the public port, which counts as the same site) fires with a form or a no-cors fetch,
 * or a WebSocket it opens; without `admin_users` any page could do so anyway. Browsers say where a
 * request comes from in `Sec-Fetch-Site`; curl, SDKs and other non-browser clients do not send it
 * and are unaffected (the `Origin` header alone is not checked: Sync Gateway's admin port ignores
 * it, and non-browser clients may send anything there).
 */
import type http from 'node:http';
import { HttpError } from '../errors.ts';

/** Throws 403 for a request a browser made from another origin (`same-site` included: other ports). */
export function refuseCrossSite(headers: http.IncomingHttpHeaders): void {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new HttpError(403, 'Cross-site requests to the admin port are refused');
  }
}

/**
 * For a WebSocket upgrade, where Chromium sends no `Sec-Fetch-Site`, a browser always sends
 * `Origin`: one naming another host than the request's is refused. Non-browser WebSocket clients
 * (Couchbase Lite, `ws`) send none.
 */
export function refuseCrossSiteUpgrade(headers: http.IncomingHttpHeaders): void {
  refuseCrossSite(headers);
  const origin = headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try { host = new URL(origin).host; } catch { /* "null" (a sandboxed frame, a file): not this origin */ }
  if (host !== headers.host) throw new HttpError(403, 'Cross-site requests to the admin port are refused');
}
