/**
 * Listeners: the public and admin APIs share one handler shape; the admin router simply holds more
 * routes. Plain HTTP or HTTPS (with SSLCert/SSLKey), plus the WebSocket upgrade for `_changes`.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { Metrics } from '../metrics/index.ts';
import { UNMATCHED_ROUTE } from '../metrics/index.ts';
import { HttpError } from '../errors.ts';
import { type HttpSettings, RequestContext, SERVER_HEADER } from './context.ts';
import type { Logger } from '../log/index.ts';
import type { OperatorAuth } from '../auth/operators.ts';
import { addCorsHeaders, addPreflightHeaders, checkLoginOrigin, type CorsConfig } from './cors.ts';
import { loggingRoutes } from './routes/logging.ts';
import type { DatabaseRegistry } from './registry.ts';
import { type Route, Router } from './router.ts';
import { attachmentRoutes } from './routes/attachments.ts';
import { bulkRoutes } from './routes/bulk.ts';
import { changesRoutes, websocketFeed } from './routes/changes.ts';
import { databaseRoutes } from './routes/database.ts';
import { docRoutes } from './routes/docs.ts';
import { localRoutes } from './routes/local.ts';
import { authRoutes as sessionRoutes } from './routes/session.ts';
import { authRoutes as userRoleRoutes } from './routes/users-roles.ts';

export interface TlsSettings {
  cert: string | Buffer;
  key: string | Buffer;
  minVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
}

/**
 * Authenticates a public-port request for a database: sets ctx.principal (and reloadPrincipal), or
 * throws a 401. The admin port never calls it: every admin request acts as the admin.
 */
export type Authenticator = (ctx: RequestContext, publicPrivileges: boolean) => Promise<void>;

export interface ListenerOptions {
  admin: boolean;
  /** The routes this listener serves; default: the public or admin REST API. */
  routes?: Route[];
  metrics?: Metrics;
  /** When set, every request on this listener needs an operator's HTTP Basic credentials. */
  operators?: OperatorAuth;
  /** Sync Gateway's `CORS` (public port only). */
  cors?: CorsConfig;
  authenticate?: Authenticator;
  registry: DatabaseRegistry;
  settings: HttpSettings;
  logger: Logger;
  tls?: TlsSettings;
  /** Request numbers for log lines, shared by every listener of a gateway, as Sync Gateway numbers them. */
  nextRequestNumber: () => number;
  /** Seconds; 0 disables. */
  readHeaderTimeout?: number;
  idleTimeout?: number;
}

export function allRoutes(registry: DatabaseRegistry): Route[] {
  // Order matters only among patterns that can match the same path: literals before {doc}.
  return [
    ...databaseRoutes(registry),
    ...changesRoutes(),
    ...bulkRoutes(),
    ...localRoutes(),
    ...userRoleRoutes(),
    ...sessionRoutes(),
    ...docRoutes(),
    ...attachmentRoutes(),
  ];
}

/** `:4984`, `127.0.0.1:4985`, `[::1]:4985`, `localhost:0` → host and port. */
export function parseAddress(address: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:(\d+)$/.exec(address.trim());
  if (!m) throw new Error(`invalid listen address "${address}": expected host:port or :port`);
  const host = m[1] ?? (m[2] || undefined);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid port in listen address "${address}"`);
  return { host, port };
}

export function createListener(opts: ListenerOptions): http.Server {
  const router = new Router(opts.routes ?? [...allRoutes(opts.registry), ...loggingRoutes(opts.logger)], opts.admin);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const ctx = new RequestContext(req, res, opts.admin, opts.settings);
    res.setHeader('Server', SERVER_HEADER);
    const t0 = performance.now();
    let route = UNMATCHED_ROUTE;
    // 'close', not 'finish': live feeds that the client aborts are counted too.
    res.once('close', () => opts.metrics?.observeRequest(route, ctx.method, res.statusCode, (performance.now() - t0) / 1000));
    const n = opts.nextRequestNumber();
    let requestLogged = false;
    // The request line names who it acts as, so it is written once authentication is known.
    const logRequest = () => {
      if (requestLogged) return;
      requestLogged = true;
      const p = ctx.principal;
      opts.logger.httpRequest(n, ctx.method, req.url ?? ctx.path, opts.admin ? 'ADMIN' : p.kind === 'user' && !p.isGuest ? { user: p.name } : 'GUEST');
    };
    res.once('finish', () => {
      logRequest();
      opts.logger.httpResponse(n, res.statusCode, performance.now() - t0, res.statusCode >= 300 ? res.statusMessage : '');
    });
    try {
      // Before routing, so that errors carry the CORS headers too and a page can read them.
      addCorsHeaders(ctx, opts.cors);
      if (opts.operators) await opts.operators.check(ctx.header('authorization'));
      const match = router.resolve(ctx.method, ctx.path);
      if ('allow' in match) {
        addPreflightHeaders(ctx, opts.cors, match.allow);
        res.statusCode = 204;
        res.setHeader('Allow', match.allow.join(', '));
        res.end();
        return;
      }
      route = match.route.pattern;
      ctx.params = match.params;
      const dbName = match.params.db;
      if (dbName !== undefined && !(match.route.pattern === '/{db}/' && ctx.method === 'PUT')) {
        const db = opts.registry.get(dbName);
        if (!db) throw new HttpError(404, `no such database "${dbName}"`);
        ctx.db = db;
        ctx.auth = opts.registry.authFor(dbName);
        if (!opts.admin && opts.authenticate) await opts.authenticate(ctx, match.route.publicPrivileges === true);
      }
      checkLoginOrigin(ctx, opts.cors, match.route);
      logRequest();
      await match.route.handler(ctx);
    } catch (err) {
      ctx.sendError(err, opts.logger);
    }
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((err) => {
      // Last line of defence: never let a request take the process down.
      opts.logger.error(`HTTP: unhandled error: ${(err as Error)?.stack ?? err}`);
      if (!res.headersSent) { res.statusCode = 500; res.end(); } else res.destroy();
    });
  };

  const server: http.Server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, minVersion: opts.tls.minVersion }, onRequest)
    : http.createServer(onRequest);
  if (opts.readHeaderTimeout) server.headersTimeout = opts.readHeaderTimeout * 1000;
  if (opts.idleTimeout) server.keepAliveTimeout = opts.idleTimeout * 1000;
  // Long feeds stream for minutes: no whole-request timeout.
  server.requestTimeout = 0;

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  server.on('upgrade', async (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, reason: string) => {
      const body = JSON.stringify({ error: new HttpError(status, reason).error, reason });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    try {
      if (opts.operators) await opts.operators.check(req.headers.authorization);
      const url = req.url ?? '/';
      const path = url.split('?')[0];
      const match = router.resolve('GET', path);
      if ('allow' in match || match.route.pattern !== '/{db}/_changes') return refuse(404, 'unknown URL');
      const db = opts.registry.get(match.params.db);
      if (!db) return refuse(404, `no such database "${match.params.db}"`);
      // Authenticated before the upgrade: a refused client gets a plain HTTP 401, never a socket.
      const ctx = new RequestContext(req, new http.ServerResponse(req), opts.admin, opts.settings);
      ctx.params = match.params;
      ctx.db = db;
      ctx.auth = opts.registry.authFor(match.params.db);
      if (!opts.admin && opts.authenticate) await opts.authenticate(ctx, false);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const done = opts.metrics?.websocketOpened('changes');
        if (done) ws.once('close', done);
        websocketFeed(ws, db, ctx);
      });
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, 'Internal error');
      refuse(e.status, e.reason);
    }
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  return server;
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(address: string): boolean {
  const { host } = parseAddress(address);
  if (host === undefined) return false;
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function listen(server: http.Server, address: string): Promise<AddressInfo> {
  const { host, port } = parseAddress(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
