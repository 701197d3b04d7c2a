/**
 * The composition root: turns a loaded config into stores, databases and listeners, and takes them
 * down again. No globals: two gateways can live in one process, which is how the tests run them.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DatabaseConfig, type GatewayConfig, parseConfigText } from './config/index.ts';
import { Database } from './db/database.ts';
import { HttpError } from './errors.ts';
import type { HttpSettings, RequestContext } from './http/context.ts';
import type { DatabaseRegistry } from './http/registry.ts';
import { createListener, isLoopback, listen, type TlsSettings } from './http/server.ts';
import { pingRoute } from './http/routes/inspection.ts';
import { loadTls } from './http/tls.ts';
import { OperatorAuth } from './auth/operators.ts';
import { LoginLockout } from './auth/lockout.ts';
import { RequestGuard } from './http/limits.ts';
import { createLogger, type Logger } from './log/index.ts';
import { SqliteStore } from './storage/sqlite/index.ts';
import { SyncFunction } from './sync/index.ts';
import { Metrics, metricsRoutes } from './metrics/index.ts';
import { authenticate, createDbAuth, type DbAuth, principalReloader } from './auth/index.ts';
import type { Store } from './storage/store.ts';
import { openPostgresStore, type PostgresStore } from './storage/postgres/index.ts';
import { type PostgresSpec, redactServerUrl } from './config/server.ts';
import { EventHandlers, type HandlerStatus } from './events/handlers.ts';
import { EventFilterError } from './events/filter.ts';

export interface GatewayOptions {
  logger?: Logger;
  /** Overrides for tests: listen addresses (e.g. `127.0.0.1:0`). */
  interface?: string;
  adminInterface?: string;
  metricsInterface?: string;
  maxBodyBytes?: number;
  metrics?: Metrics;
}

export interface RunningAddresses {
  public: AddressInfo;
  admin: AddressInfo;
  metrics: AddressInfo;
}

export async function openStore(config: DatabaseConfig, logger?: Logger): Promise<Store> {
  switch (config.storage.kind) {
    case 'sqlite': return new SqliteStore({ path: config.storage.path });
    case 'memory': return new SqliteStore({ path: ':memory:' });
    case 'postgres': return openPostgres(config, config.storage, logger);
  }
}

/** Connects (TLS and client certificate as configured) and migrates; a failure is one line naming the database. */
async function openPostgres(config: DatabaseConfig, spec: PostgresSpec, logger?: Logger): Promise<Store> {
  let store: PostgresStore;
  try {
    store = await openPostgresStore({
      spec, username: config.username, password: config.password, certpath: config.certpath, keypath: config.keypath,
      cacertpath: config.cacertpath, poolSize: config.poolSize, schema: config.bucket, log: logger,
    });
  } catch (err) {
    throw new Error(`database "${config.name}": ${(err as Error).message}`);
  }
  const p = store.plan;
  logger?.always(`${p.tls ? 'Establishing TLS connection' : 'Establishing connection (without TLS)'} to PostgreSQL ${p.where} for database ${spec.database}`);
  logger?.always(`Bucket: database "${config.name}" authenticates to PostgreSQL as user "${p.user}" with ${p.auth}, schema "${config.bucket}", pool of ${p.config.max}`);
  return store;
}

/**
 * Seconds to receive a whole request when `ServerReadTimeout` is not set: bounds a client that
 * trickles its body, yet leaves a 32 MB upload about 2 Mbit/s. Responses are never cut by it.
 */
export const DEFAULT_SERVER_READ_TIMEOUT = 120;

export class Gateway implements DatabaseRegistry {
  readonly config: GatewayConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  private readonly options: GatewayOptions;
  private readonly ownsLogger: boolean;
  private requestCount = 0;
  private expiryTimer?: NodeJS.Timeout;
  private readonly databases = new Map<string, Database>();
  private readonly auths = new Map<string, DbAuth>();
  private readonly events = new Map<string, EventHandlers>();
  private servers: http.Server[] = [];
  /** Login lockout for every database and operator port of this gateway (SECURITY.md). */
  readonly lockout: LoginLockout;
  /** Rate limits and feed caps shared by this gateway's listeners. */
  readonly guard: RequestGuard;

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    this.config = config;
    this.options = options;
    this.metrics = options.metrics ?? new Metrics();
    this.ownsLogger = !options.logger;
    this.logger = options.logger ?? createLogger(config.logging);
    this.metrics.setEventHandlerSource(async () => {
      const out = [];
      for (const [database, events] of this.events) {
        for (const h of await events.status()) out.push({ ...h, database, handler: h.handler.replace(/^databases\.[^.]*\.event_handlers\./, '') });
      }
      return out;
    });
    const l = config.limits;
    this.lockout = new LoginLockout({
      maxFailures: l.loginMaxFailures, windowMs: l.loginFailureWindowSecs * 1000, lockoutMs: l.loginLockoutSecs * 1000,
      bcryptCost: config.bcryptCost, log: this.logger,
    });
    const window = l.rateWindowSecs * 1000;
    this.guard = new RequestGuard({
      perAddress: { requests: l.requestsPerAddress, windowMs: window }, perUser: { requests: l.requestsPerUser, windowMs: window },
      maxFeedsPerUser: l.maxChangesFeedsPerUser, trustedProxies: l.trustedProxies,
    });
  }

  get(name: string): Database | undefined { return this.databases.get(name); }
  authFor(name: string): DbAuth | undefined { return this.auths.get(name); }
  names(): string[] { return [...this.databases.keys()]; }
  async eventHandlerStatus(name: string): Promise<HandlerStatus[] | undefined> {
    if (!this.databases.has(name)) return undefined;
    return (await this.events.get(name)?.status()) ?? [];
  }

  /** Opens a database and applies its configured users and roles (re-applied at every start, as Sync Gateway does). */
  private async openDatabase(config: DatabaseConfig): Promise<Database> {
    // Compiled before the store opens: a sync function that does not compile stops start-up.
    const sync = config.sync !== undefined ? new SyncFunction(config.sync, config.name) : undefined;
    this.metrics.addDatabase(config.name);
    const stats = this.metrics.forDatabase(config.name);
    const db = new Database({
      name: config.name, store: await openStore(config, this.logger), revsLimit: config.revsLimit, allowConflicts: config.allowConflicts, sync, stats,
      maxAttachmentSize: this.config.limits.maxAttachmentBytes, maxDocumentBytes: this.config.limits.maxDocumentBytes,
      maxChannelsPerDoc: this.config.limits.maxChannelsPerDoc, initialState: 'Starting',
    });
    let events: EventHandlers | undefined;
    try {
      events = config.eventHandlers ? new EventHandlers({ db, config: config.eventHandlers, adminInterface: this.config.adminInterface, log: this.logger }) : undefined;
    } catch (err) {
      await db.close();
      throw err;
    }
    const auth = createDbAuth(db.store, config, {
      bcryptCost: this.config.bcryptCost, tls: !!this.config.sslCert, log: this.logger, onAuthFailure: (kind) => stats.authFailure(kind),
      lockout: this.lockout,
    });
    await auth.principals.applyConfig(config.users, config.roles);
    this.databases.set(config.name, db);
    this.auths.set(config.name, auth);
    if (events?.hasHandlers) this.events.set(config.name, events);
    events?.start();
    // Announced once the handlers listen: the start raises db_state_changed "online" (spec §4.2).
    db.setState('Online', 'DB loaded from config');
    this.logger.info(`CRUD: Opened database "${config.name}" on ${config.storage.kind === 'sqlite' ? 'sqlite:' + config.storage.path : config.storage.kind === 'postgres' ? redactServerUrl(config.server) : 'in-memory storage'}`);
    return db;
  }

  async create(name: string, body: Record<string, unknown>): Promise<void> {
    let parsed: GatewayConfig;
    try {
      parsed = parseConfigText(JSON.stringify({ databases: { [name]: body } }), `PUT /${name}/`);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    for (const w of parsed.warnings) this.logger.warn(`Config: ${w}`);
    try {
      await this.openDatabase(parsed.databases[name]);
    } catch (err) {
      if (err instanceof EventFilterError) throw new HttpError(400, err.message);
      throw err;
    }
  }

  async remove(name: string): Promise<boolean> {
    const db = this.databases.get(name);
    if (!db) return false;
    this.databases.delete(name);
    this.auths.delete(name);
    this.metrics.removeDatabase(name);
    db.setState('Offline', 'Database context closed');
    await this.events.get(name)?.close();
    this.events.delete(name);
    await db.close();
    return true;
  }

  /** Opens every configured database, then starts the admin and public listeners. */
  async start(): Promise<RunningAddresses> {
    for (const w of this.config.warnings) this.logger.warn(`Config: ${w}`);
    // Certificates are checked before anything opens: a bad file is one clear line and an exit.
    let tls: TlsSettings | undefined;
    if (this.config.sslCert && this.config.sslKey) {
      const loaded = loadTls(this.config.sslCert, this.config.sslKey, this.config.tlsMinimumVersion);
      for (const w of loaded.warnings) this.logger.warn(`HTTP: ${w}`);
      this.logger.info(`HTTP: TLS with certificate "${loaded.subject}" valid until ${loaded.validTo.toISOString()}, minimum ${loaded.settings.minVersion}`);
      tls = loaded.settings;
    }
    for (const dbc of Object.values(this.config.databases)) await this.openDatabase(dbc);
    const settings: HttpSettings = {
      maxBodyBytes: this.options.maxBodyBytes ?? this.config.limits.maxBodyBytes,
      maxBulkDocs: this.config.limits.maxBulkDocs,
      compressResponses: this.config.compressResponses,
      pretty: this.config.pretty,
    };
    const common = {
      registry: this, settings, logger: this.logger, tls, metrics: this.metrics,
      nextRequestNumber: () => ++this.requestCount,
      authenticate: async (ctx: RequestContext, publicPrivileges: boolean) => {
        const auth = ctx.auth!;
        ctx.principal = await authenticate(ctx, auth, publicPrivileges);
        ctx.reloadPrincipal = principalReloader(ctx.principal, auth.principals);
      },
      readHeaderTimeout: this.config.readHeaderTimeout, idleTimeout: this.config.idleTimeout,
      requestTimeout: this.config.serverReadTimeout ?? DEFAULT_SERVER_READ_TIMEOUT,
      maxConnections: this.config.maxIncomingConnections,
      maxConnectionsPerAddress: this.config.limits.maxConnectionsPerAddress, guard: this.guard,
    };
    const operators = (users: Record<string, string> | undefined, scope: string) => (users ? new OperatorAuth(users, { lockout: this.lockout, scope }) : undefined);
    const metricsServer = createListener({ ...common, admin: true, routes: [...metricsRoutes(this.metrics), pingRoute()], operators: operators(this.config.metricsUsers, 'metrics port') });
    const adminServer = createListener({ ...common, admin: true, operators: operators(this.config.adminUsers, 'admin port') });
    const publicServer = createListener({ ...common, admin: false, cors: this.config.cors });
    this.servers = [metricsServer, adminServer, publicServer];
    const metricsAddr = this.options.metricsInterface ?? this.config.metricsInterface;
    const adminAddr = this.options.adminInterface ?? this.config.adminInterface;
    const publicAddr = this.options.interface ?? this.config.interface;
    for (const [what, addr, users] of [['admin', adminAddr, this.config.adminUsers], ['metrics', metricsAddr, this.config.metricsUsers]] as const) {
      if (!isLoopback(addr) && !users) {
        this.logger.warn(`HTTP: the ${what} interface ${addr} is reachable from other machines: anyone who can connect to it has full ${what} access. Bind it to 127.0.0.1 unless that is what you want.`);
      }
    }
    const scheme = tls ? 'https' : 'http';
    // Sync Gateway's order: metrics, admin, then public.
    this.logger.always(`Starting metrics server on ${metricsAddr}`);
    const metrics = await listen(metricsServer, metricsAddr);
    this.logger.always(`Starting admin server on ${adminAddr}`);
    const admin = await listen(adminServer, adminAddr);
    this.logger.always(`Starting server on ${publicAddr}`);
    const pub = await listen(publicServer, publicAddr);
    // Expired documents (TTL from `_exp` or expiry()) are purged once a minute.
    this.expiryTimer = setInterval(() => {
      for (const db of this.databases.values()) {
        db.sweepExpired().catch((err) => this.logger.warn(`CRUD: expiry sweep of ${db.name} failed: ${(err as Error).message}`));
      }
    }, 60_000);
    this.expiryTimer.unref();
    if (tls) for (const a of [metricsAddr, adminAddr, publicAddr]) this.logger.info(`HTTP: Protocols enabled: [http/1.1] on ${a} (${scheme})`);
    return { public: pub, admin, metrics };
  }

  /** Stops accepting connections, ends live feeds, then closes the databases. */
  async stop(): Promise<void> {
    clearInterval(this.expiryTimer);
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const db of this.databases.values()) {
      db.setState('Offline', 'Database context closed');
      db.stopFeeds();
    }
    for (const s of this.servers) s.closeIdleConnections?.();
    const timer = setTimeout(() => { for (const s of this.servers) s.closeAllConnections?.(); }, 2000);
    await Promise.all(closing);
    clearTimeout(timer);
    await Promise.all([...this.events.values()].map((e) => e.close()));
    this.events.clear();
    for (const db of this.databases.values()) await db.close();
    this.databases.clear();
    this.auths.clear();
    this.servers = [];
    if (this.ownsLogger) await this.logger.close();
  }
}
