/**
 * The composition root: turns a loaded config into stores, databases and listeners, and takes them
 * down again. No globals: two gateways can live in one process, which is how the tests run them.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CollectionConfig, type DatabaseConfig, defaultSyncSource, type GatewayConfig, type PersistentConfig } from './config/index.ts';
import { DbConfigs } from './db-configs.ts';
import type { ConfigStore } from './storage/config-store.ts';
import { SqliteConfigStore } from './storage/sqlite/config-store.ts';
import { openPostgresConfigStore } from './storage/postgres/config-store.ts';
import { Database, principalKey } from './db/database.ts';
import { DbJobs } from './db/jobs/index.ts';
import { HttpError } from './errors.ts';
import type { HttpSettings, RequestContext } from './http/context.ts';
import type { DatabaseRegistry } from './http/registry.ts';
import { createListener, isLoopback, listen, type TlsSettings } from './http/server.ts';
import { pingRoute } from './http/routes/inspection.ts';
import { loadTls } from './http/tls.ts';
import { OperatorAuth } from './auth/operators.ts';
import { CONSOLE_BUNDLE, ensureConsoleBundle } from '../console/build.ts';
import { LoginLockout } from './auth/lockout.ts';
import { RequestGuard } from './http/limits.ts';
import { createLogger, type Logger } from './log/index.ts';
import { SqliteStore } from './storage/sqlite/index.ts';
import { SyncFunction } from './sync/index.ts';
import { Metrics, metricsRoutes } from './metrics/index.ts';
import { authenticate, createDbAuth, type DbAuth, type DbAuthOptions, oidcDiscoveryProblems, principalReloader } from './auth/index.ts';
import type { CollectionStore, Store } from './storage/store.ts';
import { DEFAULT_COLLECTION, DEFAULT_KEY, DEFAULT_SCOPE, collectionKey, splitCollectionKey } from './db/collection.ts';
import { openPostgresStore, type PostgresStore } from './storage/postgres/index.ts';
import { type PostgresSpec, redactServerUrl } from './config/server.ts';
import { EventHandlers, type HandlerStatus } from './events/handlers.ts';
import { EventFilterError } from './events/filter.ts';
// ISGR hook (h-isgr-api): each database's replication registry.
import { randomUUID } from 'node:crypto';
import { ReplicationRegistry } from './replication/isgr/registry.ts';
import { upsertDefinition } from './replication/isgr/definition.ts';
import { type CreateReplicator, defaultCreateReplicator } from './replication/isgr/runner.ts';
import { zeroCounters } from './replication/isgr/types.ts';

export interface GatewayOptions {
  logger?: Logger;
  /** Overrides for tests: listen addresses (e.g. `127.0.0.1:0`). */
  interface?: string;
  adminInterface?: string;
  metricsInterface?: string;
  maxBodyBytes?: number;
  metrics?: Metrics;
  /** How JWT providers' metadata and keys are fetched (tests: a test CA, a short re-fetch cooldown). */
  jwt?: DbAuthOptions['jwt'];
  /**
   * ISGR: the factory of active replicators (src/replication/active/; until it is wired in, a stand-in
   * that reports `error`), this process's node id (default: a new uuid) and the lease length (tests shorten it).
   */
  replication?: { createReplicator?: CreateReplicator; nodeId?: string; leaseMs?: number };
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

/** How long a store replaced by a reload stays open for the requests that were using it. */
const STORE_CLOSE_GRACE_MS = 30_000;

/**
 * The store as one database uses it. A request that began on a database replaced meanwhile by a
 * reload still commits through it, and that database's notifier is closed: its commits would not
 * wake the feeds clients have opened on the successor since. So a commit made once the database is
 * no longer the current one also notifies the current one (same shared store, same channels).
 */
function handOverCommits<S extends CollectionStore>(store: S, key: string, self: () => Database | undefined, current: () => { db?: Database; store?: Store }, raw: Store): S {
  const commit: CollectionStore['commit'] = async (writes) => {
    const results = await store.commit(writes);
    const { db: now, store: nowStore } = current();
    if (now && now !== self() && nowStore === raw) {
      const channels = new Set<string>();
      const principals = new Set<string>();
      results.forEach((r, i) => {
        if (!r.ok) return;
        for (const ch of writes[i].channels) channels.add(ch);
        for (const ch of writes[i].previousChannels) channels.add(ch);
        for (const g of r.grantees ?? []) principals.add(principalKey(g));
      });
      const [scope, name] = splitCollectionKey(key);
      if (channels.size) now.collection(scope, name)?.notifier.notify(channels);
      if (principals.size) now.notifyPrincipals(principals);
    }
    return results;
  };
  // Methods are bound once (the read paths call them per request).
  const bound = new Map<PropertyKey, unknown>([['commit', commit]]);
  return new Proxy(store, {
    get(target, prop) {
      const b = bound.get(prop);
      if (b !== undefined) return b;
      const v = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const fn = v.bind(target);
      bound.set(prop, fn);
      return fn;
    },
  });
}

/** A collection's sync function: its own source, else Sync Gateway's default for a named collection. */
function collectionSync(db: string, c: CollectionConfig): SyncFunction | undefined {
  const where = `${db}.${c.scope}.${c.name}`;
  if (c.sync !== undefined) return new SyncFunction(c.sync, where);
  // `_default._default` keeps the built-in `channel(doc.channels)` path (no sandbox call per write).
  if (c.scope === DEFAULT_SCOPE && c.name === DEFAULT_COLLECTION) return undefined;
  return new SyncFunction(defaultSyncSource(c.scope, c.name), where);
}

/** Same backend, same place, same credentials: a reload can keep the open store. */
function sameStorage(a: DatabaseConfig, b: DatabaseConfig): boolean {
  const key = (c: DatabaseConfig) => JSON.stringify([c.storage, c.bucket, c.username, c.password, c.certpath, c.keypath, c.cacertpath, c.poolSize]);
  return key(a) === key(b);
}

/** The ConfigStore at `bootstrap.server`: the SQLite directory's config file, or a table in PostgreSQL. */
export async function openConfigStore(p: PersistentConfig, logger?: Logger): Promise<ConfigStore> {
  if (p.storage.kind === 'sqlite') return new SqliteConfigStore(p.storage.dir);
  const c = p.credentials;
  const store = await openPostgresConfigStore({
    spec: p.storage, username: c.username, password: c.password, certpath: c.certpath, keypath: c.keypath, cacertpath: c.cacertpath,
  }, logger);
  logger?.always(`Config: database configs of group "${p.groupId}" in PostgreSQL ${redactServerUrl(p.server)}`);
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
  private readonly runningConfigs = new Map<string, DatabaseConfig>();
  /** Each database's store as opened (a reload with the same storage hands it to the new database). */
  private readonly rawStores = new Map<string, Store>();
  /** Stores of replaced databases, closed after a grace period. */
  private readonly closing = new Map<Store, NodeJS.Timeout>();
  /** Database configs over REST (persistent mode: the ConfigStore at `bootstrap.server`). */
  readonly configs: DbConfigs;
  private readonly events = new Map<string, EventHandlers>();
  /** ISGR: each database's replications (they stop with it and start again with its successor). */
  private readonly replicationRegistries = new Map<string, ReplicationRegistry>();
  /** This process's node id in ISGR's assignment (one per gateway, the same for every database). */
  readonly nodeId: string;
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
    this.nodeId = options.replication?.nodeId ?? randomUUID();
    this.metrics.setReplicationSource(() => {
      const out = [];
      for (const [database, r] of this.replicationRegistries) {
        for (const { id, snapshot } of r.localSnapshots()) {
          const { last_seq_pull: _p, last_seq_push: _q, ...counters } = { ...zeroCounters(), ...snapshot.counters };
          out.push({ database, replication: id, state: snapshot.state, counters });
        }
      }
      return out;
    });
    const persistent = config.persistent;
    this.configs = new DbConfigs(this, persistent ? () => openConfigStore(persistent, this.logger) : undefined);
  }

  get(name: string): Database | undefined { return this.databases.get(name); }
  authFor(name: string): DbAuth | undefined { return this.auths.get(name); }
  names(): string[] { return [...this.databases.keys()]; }
  has(name: string): boolean { return this.databases.has(name); }
  running(name: string): DatabaseConfig | undefined { return this.runningConfigs.get(name); }
  replications(name: string): ReplicationRegistry | undefined { return this.replicationRegistries.get(name); }
  async eventHandlerStatus(name: string): Promise<HandlerStatus[] | undefined> {
    if (!this.databases.has(name)) return undefined;
    return (await this.events.get(name)?.status()) ?? [];
  }

  /**
   * Builds a database from its config and swaps it in for the running one, if any (spec §1.8): the
   * new one starts `Starting` (requests get 503 "DB is Starting"), the old one's live feeds and BLIP
   * connections end (clients reconnect, to the new one), the configured users and roles are applied,
   * then it goes `Online` (or `Offline` if its config says so). The store is kept across a reload
   * when the storage is the same, so in-flight requests of the old database still complete.
   */
  async apply(config: DatabaseConfig): Promise<void> {
    // Compiled before anything changes: a sync function that does not compile changes nothing.
    const sync = config.sync !== undefined ? new SyncFunction(config.sync, config.name) : undefined;
    const collectionSyncs = (config.collections ?? []).map((c) => collectionSync(config.name, c));
    // ISGR: the config's replications are checked before anything changes (a bad one refuses the config).
    for (const [id, raw] of Object.entries(config.replications ?? {})) {
      try {
        upsertDefinition(id, undefined, raw, { fromConfig: true });
      } catch (err) {
        throw new HttpError(400, `database "${config.name}": replications.${id}: ${err instanceof HttpError ? err.reason : (err as Error).message}`);
      }
    }
    const old = this.databases.get(config.name);
    const oldConfig = this.runningConfigs.get(config.name);
    const oldStore = this.rawStores.get(config.name);
    const sameStore = old && oldConfig && oldStore && sameStorage(oldConfig, config);
    const raw = sameStore ? oldStore : await openStore(config, this.logger);
    let db: Database | undefined;
    const current = () => ({ db: this.databases.get(config.name), store: this.rawStores.get(config.name) });
    const store = handOverCommits(raw, DEFAULT_KEY, () => db, current, raw);
    const collections = [];
    for (const [i, c] of (config.collections ?? []).entries()) {
      const isDefault = c.scope === DEFAULT_SCOPE && c.name === DEFAULT_COLLECTION;
      const cstore = isDefault ? store : handOverCommits(await raw.collection(c.scope, c.name), collectionKey(c.scope, c.name), () => db, current, raw);
      collections.push({ scope: c.scope, name: c.name, store: cstore, sync: collectionSyncs[i] });
    }
    this.metrics.addDatabase(config.name);
    const stats = this.metrics.forDatabase(config.name);
    db = new Database({
      name: config.name, store, revsLimit: config.revsLimit, allowConflicts: config.allowConflicts, sync, stats,
      maxAttachmentSize: this.config.limits.maxAttachmentBytes, maxDocumentBytes: this.config.limits.maxDocumentBytes,
      maxChannelsPerDoc: this.config.limits.maxChannelsPerDoc, initialState: 'Starting',
      deltaSync: config.deltaSync, oldRevExpirySecs: config.oldRevExpirySecs, collections,
    });
    // Built before anything is swapped: a filter that does not compile changes nothing.
    let events: EventHandlers | undefined;
    try {
      events = config.eventHandlers ? await EventHandlers.create({ db, config: config.eventHandlers, adminInterface: this.config.adminInterface, log: this.logger }) : undefined;
    } catch (err) {
      if (!sameStore) await raw.close().catch(() => {});
      if (err instanceof EventFilterError) throw new HttpError(400, err.message);
      throw err;
    }
    this.metrics.trackOldRevisions(config.name, () => store.oldRevisionUsage());
    new DbJobs(db, {
      purgeIntervalDays: config.purgeIntervalDays, compactIntervalDays: config.compactIntervalDays,
      hooks: {
        log: (level, msg) => this.logger[level](`DB: ${config.name}: ${msg}`),
        progress: (job, counters, running) => this.metrics.jobProgress(config.name, job, counters, running),
      },
    });
    const auth = createDbAuth(store, config, {
      bcryptCost: this.config.bcryptCost, tls: !!this.config.sslCert, log: this.logger, onAuthFailure: (kind) => stats.authFailure(kind), onJwtLogin: (provider, outcome) => stats.jwtLogin(provider, outcome),
      lockout: this.lockout, jwt: this.options.jwt,
    });
    const replications = new ReplicationRegistry({
      db, nodeId: this.nodeId, createReplicator: this.options.replication?.createReplicator ?? defaultCreateReplicator,
      loadUser: (name: string) => auth.principals.loadUser(name),
      leaseMs: this.options.replication?.leaseMs, configReplications: config.replications, takesPart: config.sgreplicateEnabled !== false,
      log: (level, msg) => this.logger[level](`Replicate: ${config.name}: ${msg}`),
    });
    const oldReplications = this.replicationRegistries.get(config.name);
    this.replicationRegistries.set(config.name, replications);
    this.databases.set(config.name, db);
    this.auths.set(config.name, auth);
    this.runningConfigs.set(config.name, config);
    this.rawStores.set(config.name, raw);
    const oldEvents = this.events.get(config.name);
    if (events?.hasHandlers) this.events.set(config.name, events); else this.events.delete(config.name);
    if (old) {
      // No offline event for a reload (spec §1.8): the old database's handlers just stop.
      old.stopFeeds();
      oldEvents?.close().catch((err) => this.logger.warn(`Events: ${config.name}: stopping the replaced database's handlers: ${(err as Error).message}`));
      // Background jobs stop with the database they run on (spec §1.8); their records keep the checkpoints.
      old.jobs?.close().catch((err) => this.logger.warn(`DB: ${config.name}: stopping the replaced database's jobs: ${(err as Error).message}`));
      if (!sameStore && oldStore) this.closeLater(oldStore);
    }
    try {
      await auth.principals.applyConfig(config.users, config.roles);
    } catch (err) {
      // A first open fails as a whole (start-up stops, a create is refused); a reload keeps the new
      // database: its users and roles are those already stored.
      if (!old) {
        if (this.databases.get(config.name) === db) await this.unload(config.name);
        throw err;
      }
      this.logger.warn(`Config: database "${config.name}": cannot apply its users and roles: ${(err as Error).message}`);
    }
    // Announced once the handlers listen: coming online raises db_state_changed "online" (spec §4.2).
    events?.start();
    if (this.databases.get(config.name) === db) db.setState(config.offline ? 'Offline' : 'Online', 'DB loaded from config');
    // ISGR: the replaced database's replications stop (handing their leases back), then this one's start.
    await oldReplications?.stop().catch((err) => this.logger.warn(`Replicate: ${config.name}: stopping the replaced database's replications: ${(err as Error).message}`));
    if (this.replicationRegistries.get(config.name) === replications) {
      await replications.start().catch((err) => this.logger.warn(`Replicate: ${config.name}: cannot start replications: ${(err as Error).message}`));
    }
    this.logger.info(`CRUD: ${old ? 'Reloaded' : 'Opened'} database "${config.name}" on ${config.storage.kind === 'sqlite' ? 'sqlite:' + config.storage.path : config.storage.kind === 'postgres' ? redactServerUrl(config.server) : 'in-memory storage'}${config.offline ? ' (offline)' : ''}`);
  }

  /** A replaced store is closed once the requests already using it have had time to finish. */
  private closeLater(store: Store): void {
    const close = () => { this.closing.delete(store); store.close().catch(() => {}); };
    this.closing.set(store, setTimeout(close, STORE_CLOSE_GRACE_MS).unref());
  }

  /**
   * A config's OIDC providers checked against their discovery documents, fetched the way the
   * running database will fetch them (the same CA and timeout); one problem per failing provider.
   */
  oidcProblems(config: DatabaseConfig): Promise<string[]> {
    return oidcDiscoveryProblems(Object.values(config.oidc?.providers ?? {}), { ca: this.options.jwt?.ca, timeoutMs: this.options.jwt?.timeoutMs });
  }

  async unload(name: string): Promise<boolean> {
    const db = this.databases.get(name);
    if (!db) return false;
    this.databases.delete(name);
    this.auths.delete(name);
    this.runningConfigs.delete(name);
    this.rawStores.delete(name);
    this.metrics.removeDatabase(name);
    db.setState('Offline', 'Database context closed');
    const replications = this.replicationRegistries.get(name);
    this.replicationRegistries.delete(name);
    await replications?.stop();
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
    for (const dbc of Object.values(this.config.databases)) await this.apply(dbc);
    await this.configs.start();
    // The console bundle is rebuilt here when its sources are newer (a git pull without npm install).
    const consoleUnavailable = await ensureConsoleBundle();
    if (consoleUnavailable) this.logger.warn(`HTTP: ${consoleUnavailable}`);
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
    const adminServer = createListener({
      ...common, admin: true, operators: operators(this.config.adminUsers, 'admin port'),
      console: { root: CONSOLE_BUNDLE, unavailable: () => consoleUnavailable },
    });
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
        for (const c of db.collections()) c.sweepExpired().catch((err) => this.logger.warn(`CRUD: expiry sweep of ${c.key === DEFAULT_KEY ? db.name : `${db.name}.${c.key}`} failed: ${(err as Error).message}`));
      }
    }, 60_000);
    this.expiryTimer.unref();
    if (tls) for (const a of [metricsAddr, adminAddr, publicAddr]) this.logger.info(`HTTP: Protocols enabled: [http/1.1] on ${a} (${scheme})`);
    return { public: pub, admin, metrics };
  }

  /** Stops accepting connections, ends live feeds, then closes the databases. */
  async stop(): Promise<void> {
    clearInterval(this.expiryTimer);
    await this.configs.stop();
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
    await Promise.all([...this.replicationRegistries.values()].map((r) => r.stop().catch(() => undefined)));
    this.replicationRegistries.clear();
    for (const db of this.databases.values()) await db.close();
    for (const [store, timer] of this.closing) { clearTimeout(timer); await store.close().catch(() => {}); }
    this.closing.clear();
    this.databases.clear();
    this.runningConfigs.clear();
    this.rawStores.clear();
    this.auths.clear();
    this.servers = [];
    if (this.ownsLogger) await this.logger.close();
  }
}
