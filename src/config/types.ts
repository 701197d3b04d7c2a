/** The loaded, validated configuration that the rest of Syncgate reads. */
import type { PostgresSpec, StorageSpec } from './server.ts';
import type { LocalJwtProviderConfig, OidcConfig } from './jwt.ts';

import type { EventHandlersConfig } from './events.ts';

export type { LocalJwtProviderConfig, OidcConfig, OidcProviderConfig } from './jwt.ts';

export type { StorageSpec, EventHandlersConfig };
export type { WebhookConfig, EventDelivery } from './events.ts';

/** A config that stops start-up. The message is one line: source file, key path, what is wrong. */
export class ConfigError extends Error {
  /** Every problem found (the message joins them), each "<source>: <key path>: <what>". */
  readonly problems: readonly string[];
  constructor(message: string, problems: readonly string[] = [message]) {
    super(message);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export type LogLevel = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type TlsVersion = 'tlsv1' | 'tlsv1.1' | 'tlsv1.2' | 'tlsv1.3';

export interface UserConfig {
  password?: string;
  admin_channels: string[];
  admin_roles: string[];
  email?: string;
  disabled: boolean;
  /** Channels granted in named collections: scope → collection → channels (`admin_channels` is the default collection's). */
  collection_access?: CollectionAccessConfig;
}

export interface RoleConfig {
  admin_channels: string[];
  collection_access?: CollectionAccessConfig;
}

/** `collection_access`: scope → collection → `{admin_channels}`, each keyspace one of the database's. */
export type CollectionAccessConfig = Record<string, Record<string, { admin_channels: string[] }>>;

export interface DeltaSyncConfig {
  enabled: boolean;
  /** `rev_max_age_seconds`: how long replaced bodies are kept as delta sources; 0 = the `old_rev_expiry_seconds` policy. */
  revMaxAgeSecs: number;
}

/** One collection of a database's scope (`scopes` → scope → `collections` → name). */
export interface CollectionConfig {
  scope: string;
  name: string;
  /** The collection's sync function; unset means Sync Gateway's default for the collection (collection.ts). */
  sync?: string;
  /** `import_filter`: accepted and kept (Syncgate imports nothing from a bucket). */
  importFilter?: string;
}

export interface DatabaseConfig {
  name: string;
  server: string;
  storage: StorageSpec;
  bucket: string;
  /**
   * The default collection's sync function: the database-level `sync` without `scopes`; with
   * `scopes`, a copy of the `_default._default` entry's (when listed), so code that knows only the
   * default collection keeps running it. Unset: the default.
   */
  sync?: string;
  /**
   * `scopes`: the database's collections in configuration order. Unset: the database has only
   * `_default._default`, whose sync function is `sync`. When set, it may or may not list
   * `_default._default`; a database-level `sync` is refused beside it.
   */
  collections?: CollectionConfig[];
  users: Record<string, UserConfig>;
  roles: Record<string, RoleConfig>;
  revsLimit: number;
  allowConflicts: boolean;
  sessionCookieName: string;
  /** Unset means "true when SSLCert is set". */
  sessionCookieSecure?: boolean;
  sessionCookieHttpOnly: boolean;
  sendWwwAuthenticateHeader: boolean;
  allowEmptyPassword: boolean;
  offline: boolean;
  localDocExpirySecs: number;
  /** `delta_sync`: JSON deltas to and from Couchbase Lite over BLIP (an Enterprise feature of Sync Gateway). */
  deltaSync: DeltaSyncConfig;
  /** `old_rev_expiry_seconds`: how long a replaced revision's body is kept when delta sync does not set it. */
  oldRevExpirySecs: number;
  username?: string;
  password?: string;
  certpath?: string;
  keypath?: string;
  cacertpath?: string;
  /** `compact_interval_days`: automatic tombstone compaction (0: never; default 1). */
  compactIntervalDays?: number;
  /** `purge_interval` (days): age at which tombstone compaction purges a tombstone (default 30). */
  purgeIntervalDays?: number;
  /** `pool_size`: most connections this node opens to a PostgreSQL server (default 10). */
  poolSize?: number;
  /** `oidc`: OpenID Connect providers (Bearer ID tokens and the authorization-code flow). */
  oidc?: OidcConfig;
  /** `local_jwt`: providers whose keys are given inline or by `jwks_uri` (Bearer only). */
  localJwt?: Record<string, LocalJwtProviderConfig>;
  /** `event_handlers`: webhooks (src/events/). */
  eventHandlers?: EventHandlersConfig;
  /** `replications`: ISGR definitions as written, id → definition (validated when applied; src/replication/isgr/). */
  replications?: Record<string, Record<string, unknown>>;
  /** `sgreplicate_enabled: false`: this node takes no part in running the database's replications. */
  sgreplicateEnabled?: boolean;
  /** This db's keys as given (canonical spelling, nulls dropped, no defaults filled in). */
  raw: Record<string, unknown>;
}

export interface LoggingConfig {
  consoleEnabled: boolean;
  logLevel: LogLevel;
  logKeys: string[];
  logFilePath?: string;
  raw: Record<string, unknown>;
}

/** `CORS` (spec §0): browsers on other origins, public port only. */
export interface CorsConfig {
  /** Origins whose pages may call the public API with credentials; `*` matches any (sent as `*`). */
  origin: string[];
  /** Origins allowed to `POST`/`DELETE /{db}/_session` (log in, log out). */
  loginOrigin: string[];
  /** Request headers a page may send (`Access-Control-Allow-Headers`). */
  headers: string[];
  /** Seconds a browser may cache a preflight answer. */
  maxAge: number;
}

/** Syncgate's `limits` (SECURITY.md): abuse protection. A 0 count or size means no limit. */
export interface LimitsConfig {
  /** Failed logins for one user from one address that lock that pair out; 0 = no lockout. */
  loginMaxFailures: number;
  loginFailureWindowSecs: number;
  loginLockoutSecs: number;
  /** Requests per `rateWindowSecs` (also the burst), per client address / per user. */
  requestsPerAddress: number;
  requestsPerUser: number;
  rateWindowSecs: number;
  maxChangesFeedsPerUser: number;
  maxConnectionsPerAddress: number;
  maxBodyBytes: number;
  maxDocumentBytes: number;
  maxAttachmentBytes: number;
  maxBulkDocs: number;
  maxChannelsPerDoc: number;
  /** Reverse proxies whose `X-Forwarded-For` is believed. */
  trustedProxies: string[];
}

/** Credentials for the shared storage (`bootstrap`, or `database_credentials` / `bucket_credentials`). */
export interface StorageCredentials {
  username?: string;
  password?: string;
  cacertpath?: string;
  certpath?: string;
  keypath?: string;
}

/**
 * Sync Gateway 3.x persistent mode (a start-up file with `bootstrap`): database configs are made
 * over REST, kept with versions in the ConfigStore at `bootstrap.server`, and shared by every node
 * of the same `group_id` there.
 */
export interface PersistentConfig {
  /** `bootstrap.server` as given (it may hold a password: log it through redactServerUrl). */
  server: string;
  /** `sqlite:<dir>`: configs and each database's file in this directory; or a PostgreSQL server. */
  storage: { kind: 'sqlite'; dir: string } | PostgresSpec;
  credentials: StorageCredentials;
  databaseCredentials: Record<string, StorageCredentials>;
  bucketCredentials: Record<string, StorageCredentials>;
  groupId: string;
  /** How often every node re-reads the configs of its group (`config_update_frequency`). */
  configUpdateFrequencyMs: number;
  /** `unsupported.allow_dbconfig_env_vars`: `$VAR` expansion in database configs sent over REST. */
  allowDbConfigEnvVars: boolean;
}

export interface GatewayConfig {
  /** Set when started from a 3.x start-up file: databases come from the ConfigStore, not from here. */
  persistent?: PersistentConfig;
  interface: string;
  adminInterface: string;
  metricsInterface: string;
  sslCert?: string;
  sslKey?: string;
  tlsMinimumVersion: TlsVersion;
  pretty: boolean;
  compressResponses: boolean;
  /** 0 = unlimited. */
  maxIncomingConnections: number;
  /** Seconds to receive a whole request (headers and body); 0 = none. Never cuts a response. */
  serverReadTimeout?: number;
  serverWriteTimeout?: number;
  readHeaderTimeout: number;
  idleTimeout: number;
  bcryptCost: number;
  limits: LimitsConfig;
  /** Operator name → bcrypt hash. When set, the admin port requires HTTP Basic with one of them. */
  adminUsers?: Record<string, string>;
  /** Likewise for the metrics port. */
  metricsUsers?: Record<string, string>;
  logging: LoggingConfig;
  /** Unset: no CORS headers, and every login carrying an `Origin` is refused. */
  cors?: CorsConfig;
  databases: Record<string, DatabaseConfig>;
  /** Every warning produced while loading, each naming its key path. */
  warnings: string[];
  /** The merged top-level keys as given (canonical spelling, nulls dropped). */
  raw: Record<string, unknown>;
}
