/**
 * Listeners: the public and admin APIs share one handler shape; the admin router simply holds more
 * routes. Plain HTTP or HTTPS (with SSLCert/SSLKey), plus the WebSocket upgrade for `_changes`.
 */
import { enterKeyspace, parseKeyspace } from './keyspace.ts';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
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
import { consoleRoutes } from './routes/console.ts';
import { logTailRoutes } from './routes/log-tail.ts';
import { syncTestRoutes } from './routes/sync-test.ts';
import { accessExplainRoutes } from './routes/access-explain.ts';
import { refuseCrossSite, refuseCrossSiteUpgrade } from './cross-site.ts';
import { metricsRoutes } from '../metrics/routes.ts';
import type { DatabaseRegistry } from './registry.ts';
import { type Route, Router } from './router.ts';
import { attachmentRoutes } from './routes/attachments.ts';
import { bulkRoutes } from './routes/bulk.ts';
import { changesRoutes, websocketFeed } from './routes/changes.ts';
import { databaseRoutes } from './routes/database.ts';
import { configRoutes } from './routes/config.ts';
import { dbAdminRoutes } from './routes/db-admin.ts';
import { eventRoutes } from './routes/events.ts';
import { docRoutes } from './routes/docs.ts';
import { inspectionRoutes } from './routes/inspection.ts';
import { localRoutes } from './routes/local.ts';
import { authRoutes as sessionRoutes } from './routes/session.ts';
import { oidcRoutes } from './routes/oidc.ts';
import { replicationRoutes } from './routes/replication.ts';
import { authRoutes as userRoleRoutes } from './routes/users-roles.ts';
import { normalizeAddress, type RequestGuard, TooManyRequestsError } from './limits.ts';
import { UnauthorizedError, WWW_AUTHENTICATE } from '../auth/authenticate.ts';
import { notOnlineError } from '../db/state.ts';
import { adoptSubprotocolSession, BLIPSYNC_PATTERN, BlipSyncEndpoint, blipSyncRoutes } from '../replication/blip/sync/handshake.ts';

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
  /** Seconds to receive a whole request, body included (`ServerReadTimeout`); 0 disables. Never cuts a response. */
  requestTimeout?: number;
  /** `MaxIncomingConnections`: open connections beyond this are closed at once; 0 = unlimited. */
  maxConnections?: number;
  /** `limits.max_connections_per_address`; 0 = unlimited. */
  maxConnectionsPerAddress?: number;
  /** The operator console's bundle folder, served at `/_admin/` (admin port only); `unavailable` says why it is not built. */
  console?: { root: string; unavailable?: () => string | undefined };
  /** Rate limits, feed caps and the client address (src/http/limits.ts); shared by a gateway's listeners. */
  guard?: RequestGuard;
}

export function allRoutes(registry: DatabaseRegistry): Route[] {
  // Order matters only among patterns that can match the same path: literals before {doc}.
  return [
    ...databaseRoutes(registry),
    ...inspectionRoutes(registry),
    ...configRoutes(registry),
    ...dbAdminRoutes(),
    ...syncTestRoutes(),
    ...accessExplainRoutes(),
    ...eventRoutes(registry),
    ...replicationRoutes(registry),
    ...changesRoutes(),
    ...bulkRoutes(),
    ...localRoutes(),
    ...userRoleRoutes(),
    ...sessionRoutes(),
    ...oidcRoutes(),
    ...blipSyncRoutes(),
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
  const router = new Router(opts.routes ?? [
    ...allRoutes(opts.registry), ...loggingRoutes(opts.logger), ...logTailRoutes(opts.logger),
    // Sync Gateway serves `/_expvar` on the admin port as well as the metrics port; the console charts it.
    ...(opts.metrics ? metricsRoutes(opts.metrics).filter((r) => r.pattern === '/_expvar').map((r) => ({ ...r, adminOnly: true })) : []),
    ...(opts.console ? consoleRoutes(opts.console.root, opts.console.unavailable) : []),
  ], opts.admin);

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const ctx = new RequestContext(req, res, opts.admin, opts.settings);
    if (opts.guard) ctx.clientAddress = opts.guard.clientAddress(req);
    res.setHeader('Server', SERVER_HEADER);
    const t0 = performance.now();
    let route = UNMATCHED_ROUTE;
    // 'close', not 'finish': live feeds that the client aborts are counted too.
    res.once('close', () => opts.metrics?.observeRequest(route, ctx.method, res.statusCode, (performance.now() - t0) / 1000));
    const n = opts.nextRequestNumber();
    let requestLogged = false;
    let quiet = false;
    // The request line names who it acts as, so it is written once authentication is known.
    const logRequest = () => {
      if (requestLogged) return;
      requestLogged = true;
      const p = ctx.principal;
      opts.logger.httpRequest(n, ctx.method, req.url ?? ctx.path, opts.admin ? 'ADMIN' : p.kind === 'user' && !p.isGuest ? { user: p.name } : 'GUEST', quiet ? 'debug' : 'info');
    };
    res.once('finish', () => {
      logRequest();
      opts.logger.httpResponse(n, res.statusCode, performance.now() - t0, res.statusCode >= 300 ? res.statusMessage : '');
    });
    try {
      // Before routing, so that errors carry the CORS headers too and a page can read them.
      addCorsHeaders(ctx, opts.cors);
      // Before any bcrypt or storage work, so a flood costs as little as possible.
      if (!opts.admin) opts.guard?.checkAddress(ctx.clientAddress);
      else refuseCrossSite(req.headers);
      // Resolved before the operator check so that an unauthenticated route (`/_ping`) skips it;
      // an unknown path still answers only after the credentials are checked.
      let match: ReturnType<Router['resolve']> | undefined;
      let routeError: unknown;
      try { match = router.resolve(ctx.method, ctx.path); } catch (err) { routeError = err; }
      const open = match !== undefined && !('allow' in match) && match.route.unauthenticated === true;
      if (opts.operators && !open) await opts.operators.check(ctx.header('authorization'), ctx.clientAddress);
      if (!match) throw routeError;
      if ('allow' in match) {
        addPreflightHeaders(ctx, opts.cors, match.allow);
        res.statusCode = 204;
        res.setHeader('Allow', match.allow.join(', '));
        res.end();
        return;
      }
      route = match.route.pattern;
      quiet = match.route.quiet === true;
      ctx.params = match.params;
      // A keyspace route reads `{db}` as `db[.scope].collection`; every other route as a database
      // name, so a collection named there is a database that does not exist (as in Sync Gateway).
      const keyspace = match.route.keyspace && match.params.db !== undefined ? parseKeyspace(match.params.db) : undefined;
      const dbName = keyspace ? keyspace.db : match.params.db;
      if (dbName !== undefined && !(match.route.pattern === '/{db}/' && ctx.method === 'PUT')) {
        ctx.params.db = dbName;
        const db = opts.registry.get(dbName);
        if (!db) throw new HttpError(404, `no such database "${dbName}"`);
        if (db.state !== 'Online' && !match.route.offlineCapable) throw notOnlineError(db.state);
        ctx.db = db;
        ctx.auth = opts.registry.authFor(dbName);
        if (!opts.admin && opts.authenticate) await opts.authenticate(ctx, match.route.publicPrivileges === true);
        if (!opts.admin && opts.guard) {
          opts.guard.checkUser(dbName, ctx.principal);
          // Every `_changes` request counts while it is open; live ones are what the cap is for.
          if (match.route.pattern === '/{db}/_changes') res.once('close', opts.guard.openFeed(dbName, ctx.principal, ctx.clientAddress));
        }
        // After authentication, as Sync Gateway: a stranger learns nothing about the collections.
        if (keyspace) enterKeyspace(ctx, db, keyspace);
      }
      checkLoginOrigin(ctx, opts.cors, match.route);
      logRequest();
      // Work on an online database is tracked: `_offline` waits for it to finish (live feeds end first).
      if (ctx.db && !match.route.offlineCapable) await ctx.db.track(() => match.route.handler(ctx));
      else await match.route.handler(ctx);
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

  // Node checks the header and request timeouts on this interval (default 30 s, which would let a
  // slowloris client hold a socket six times longer than ReadHeaderTimeout says).
  const connectionsCheckingInterval = 1000;
  const server: http.Server = opts.tls
    ? https.createServer({
      cert: opts.tls.cert, key: opts.tls.key, minVersion: opts.tls.minVersion, connectionsCheckingInterval,
      // A client that opens TLS and stalls the handshake is held no longer than one that stalls its headers (as Go).
      ...(opts.readHeaderTimeout ? { handshakeTimeout: opts.readHeaderTimeout * 1000 } : {}),
    }, onRequest)
    : http.createServer({ connectionsCheckingInterval }, onRequest);
  if (opts.readHeaderTimeout) server.headersTimeout = opts.readHeaderTimeout * 1000;
  if (opts.idleTimeout) server.keepAliveTimeout = opts.idleTimeout * 1000;
  // Node's requestTimeout bounds only the receipt of a request (headers and body), not the response:
  // long-running feeds (longpoll, continuous) are answered long after their request is in and are
  // never cut by it, while a client trickling a body byte by byte is.
  server.requestTimeout = (opts.requestTimeout ?? 0) * 1000;
  if (opts.maxConnections) limitConnections(server, opts.maxConnections, opts.logger);
  if (opts.maxConnectionsPerAddress) limitConnectionsPerAddress(server, opts.maxConnectionsPerAddress);

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const blipSync = new BlipSyncEndpoint();
  server.on('upgrade', async (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, reason: string, extraHeaders = '') => {
      const body = JSON.stringify({ error: new HttpError(status, reason).error, reason });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${extraHeaders}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    };
    let releaseFeed: (() => void) | undefined;
    try {
      const address = opts.guard ? opts.guard.clientAddress(req) : req.socket.remoteAddress ?? '';
      if (!opts.admin) opts.guard?.checkAddress(address);
      else refuseCrossSiteUpgrade(req.headers);
      if (opts.operators) await opts.operators.check(req.headers.authorization, address);
      const url = req.url ?? '/';
      const path = url.split('?')[0];
      const match = router.resolve('GET', path);
      const blip = !('allow' in match) && match.route.pattern === BLIPSYNC_PATTERN;
      if ('allow' in match || (match.route.pattern !== '/{db}/_changes' && !blip)) return refuse(404, 'unknown URL');
      // `_changes` is a keyspace route (see `handle`); `_blipsync` names the database alone.
      const keyspace = match.route.keyspace ? parseKeyspace(match.params.db) : undefined;
      if (keyspace) match.params.db = keyspace.db;
      const db = opts.registry.get(match.params.db);
      if (!db) return refuse(404, `no such database "${match.params.db}"`);
      if (db.state !== 'Online') { const e = notOnlineError(db.state); return refuse(e.status, e.reason); }
      // Authenticated before the upgrade: a refused client gets a plain HTTP 401, never a socket.
      const ctx = new RequestContext(req, new http.ServerResponse(req), opts.admin, opts.settings);
      ctx.params = match.params;
      ctx.db = db;
      ctx.auth = opts.registry.authFor(match.params.db);
      ctx.clientAddress = address;
      if (blip && ctx.auth) adoptSubprotocolSession(req, ctx.auth.cookieName);
      if (!opts.admin && opts.authenticate) await opts.authenticate(ctx, false);
      if (!opts.admin && opts.guard) {
        opts.guard.checkUser(match.params.db, ctx.principal);
        // A WebSocket feed or a BLIP replication is a live feed for as long as its socket lives.
        releaseFeed = opts.guard.openFeed(match.params.db, ctx.principal, address);
        socket.once('close', releaseFeed);
      }
      if (blip) {
        return blipSync.accept(req, socket, head, {
          db, principal: ctx.principal, reloadPrincipal: ctx.reloadPrincipal, setCookie: ctx.res.getHeader('Set-Cookie'),
          log: (level, msg) => opts.logger[level](`BLIP: ${msg}`),
          opened: () => opts.metrics?.websocketOpened('blip', db.name) ?? (() => {}),
        });
      }
      if (keyspace) enterKeyspace(ctx, db, keyspace);
      wss.handleUpgrade(req, socket, head, (ws) => {
        const done = opts.metrics?.websocketOpened('changes');
        if (done) ws.once('close', done);
        websocketFeed(ws, ctx.coll, ctx);
      });
    } catch (err) {
      releaseFeed?.();
      const e = err instanceof HttpError ? err : new HttpError(500, 'Internal error');
      // Couchbase Lite 2.8 only sends its credentials after a 401 that asks for them.
      refuse(e.status, e.reason, e instanceof UnauthorizedError && !e.noWwwAuthenticate ? `WWW-Authenticate: ${WWW_AUTHENTICATE}\r\n`
        : err instanceof TooManyRequestsError ? `Retry-After: ${err.retryAfter}\r\n` : '');
    }
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // A client too slow to send its request (ReadHeaderTimeout, ServerReadTimeout) hears 408, as from Node's default handler.
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    else socket.destroy();
  });
  return server;
}

/**
 * `MaxIncomingConnections`: Node closes each connection past the limit as it arrives (its 'drop'
 * event), which a client sees at once, unlike a backlog it would hang in. Logged at most every 10 s.
 */
function limitConnections(server: http.Server, max: number, logger: Logger): void {
  server.maxConnections = max;
  let lastWarned = 0;
  server.on('drop', (data?: { remoteAddress?: string }) => {
    const now = Date.now();
    if (now - lastWarned < 10_000) return;
    lastWarned = now;
    logger.warn(`HTTP: MaxIncomingConnections (${max}) reached: refusing connections (latest from ${data?.remoteAddress ?? 'unknown'})`);
  });
}

/** `limits.max_connections_per_address`: one host cannot take every connection slot (slowloris). */
function limitConnectionsPerAddress(server: http.Server, max: number): void {
  const open = new Map<string, number>();
  // 'connection' fires for TLS sockets too, before the handshake: a refused client costs no crypto.
  server.on('connection', (socket: Socket) => {
    const addr = normalizeAddress(socket.remoteAddress ?? '');
    const n = open.get(addr) ?? 0;
    if (n >= max) { socket.destroy(); return; }
    open.set(addr, n + 1);
    socket.once('close', () => {
      const left = (open.get(addr) ?? 1) - 1;
      if (left <= 0) open.delete(addr);
      else open.set(addr, left);
    });
  });
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(address: string): boolean {
  const { host } = parseAddress(address);
  if (host === undefined) return false;
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Pending-connection queue asked of the kernel (capped by net.core.somaxconn). Node's default, 511,
 * overflows when thousands of live clients reconnect at once (after a restart or a network blip):
 * the overflow is reset or retried a second later, so clients see ECONNRESET or stall.
 */
const LISTEN_BACKLOG = 4096;

export function listen(server: http.Server, address: string): Promise<AddressInfo> {
  const { host, port } = parseAddress(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
