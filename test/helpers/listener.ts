/**
 * A real HTTP listener serving a few routes through the production Router and RequestContext, for
 * testing route modules on their own. `prepare` runs after routing, before the handler (set the
 * context's auth, authenticate...).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RequestContext } from '../../src/http/context.ts';
import { type Match, type Route, Router } from '../../src/http/router.ts';

export interface RouteListener {
  url: string;
  close(): Promise<void>;
}

export function routeListener(
  routes: Route[], admin: boolean, prepare?: (ctx: RequestContext, match: Match) => Promise<void> | void,
): Promise<RouteListener> {
  const router = new Router(routes, admin);
  const server = http.createServer((rq, rs) => {
    const ctx = new RequestContext(rq, rs, admin, { maxBodyBytes: 1 << 20, compressResponses: false, pretty: false });
    (async () => {
      const m = router.resolve(ctx.method, ctx.path);
      if ('allow' in m) throw new Error('OPTIONS');
      ctx.params = m.params;
      await prepare?.(ctx, m);
      await m.route.handler(ctx);
    })().catch((e) => ctx.sendError(e));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  })));
}
