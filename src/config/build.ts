/**
 * Normalized (schema-checked) config objects → GatewayConfig: defaults, cross-field rules
 * (revs_limit, SSL pair, bcrypt cost, db and principal names) and the storage spec.
 */
import { isIP } from 'node:net';
import { buildLocalJwt, buildOidc } from './jwt.ts';
import { isPlainObject } from './normalize.ts';
import { LOG_KEYS, LOG_LEVELS } from './schema.ts';
import { buildEventHandlers } from './events.ts';
import { buildReplications } from './replications.ts';
import { buildCollectionAccess, parseScopes } from './collections.ts';
import { DEFAULT_SERVER, parseServer } from './server.ts';
import type {
  CollectionConfig, CorsConfig, DatabaseConfig, DeltaSyncConfig, GatewayConfig, LimitsConfig, LoggingConfig, LogLevel, RoleConfig, TlsVersion, UserConfig,
} from './types.ts';

export const DB_NAME_RE = /^[a-z][-a-z0-9_$()+/]*$/;
/** `auth/role.go`: user and role names. */
export const PRINCIPAL_NAME_RE = /^[-+.@%\w]*$/;
export const DEFAULT_REVS_LIMIT = 100;
export const DEFAULT_REVS_LIMIT_NO_CONFLICTS = 50;
export const MIN_REVS_LIMIT = 20;
export const DEFAULT_LOCAL_DOC_EXPIRY_SECS = 90 * 24 * 60 * 60;
export const DEFAULT_SESSION_COOKIE_NAME = 'SyncGatewaySession';
export const DEFAULT_BCRYPT_COST = 10;
export const MAX_BCRYPT_COST = 31;

type Obj = Record<string, unknown>;

/** Where problems go. `error` messages are prefixed with their source file. */
export interface BuildContext {
  errors: string[];
  warnings: string[];
  /** Source name for top-level problems. */
  source: string;
  /** Source name of the file that defined a database. */
  dbSource(name: string): string;
  cwd: string;
}

const obj = (v: unknown): Obj | undefined => (isPlainObject(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
const strs = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);

function buildLogging(top: Obj, ctx: BuildContext): LoggingConfig {
  const raw = obj(top.logging) ?? {};
  const consoleRaw = obj(raw.console);
  const legacy = obj(raw.default) ?? {};
  const legacyLevel = str(legacy.LogLevel)?.toLowerCase();
  if (legacyLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(legacyLevel)) {
    ctx.warnings.push(`logging.default.LogLevel: unknown log level "${legacy.LogLevel}" is ignored`);
  }
  const level = (str(consoleRaw?.log_level) ?? (LOG_LEVELS as readonly string[]).find((l) => l === legacyLevel)) as LogLevel | undefined;
  const keysPath = consoleRaw?.log_keys !== undefined ? 'logging.console.log_keys' : top.log !== undefined ? 'log' : 'logging.default.LogKeys';
  const keys = strs(consoleRaw?.log_keys) ?? strs(top.log) ?? strs(legacy.LogKeys);
  // §8: console logging is off when a console block says neither enabled, log_level nor log_keys.
  const consoleEnabled = bool(consoleRaw?.enabled) ?? (consoleRaw === undefined || level !== undefined || (keys?.length ?? 0) > 0);
  const logKeys: string[] = [];
  for (const k of [...(keys ?? []), 'HTTP']) {
    if (logKeys.includes(k)) continue;
    const base = k.endsWith('+') ? k.slice(0, -1) : k;
    if (!(LOG_KEYS as readonly string[]).some((known) => known.toLowerCase() === base.toLowerCase())) {
      ctx.warnings.push(`${keysPath}: unknown log key "${k}" is ignored`);
      continue;
    }
    logKeys.push(k);
  }
  const logFilePath = str(raw.log_file_path) ?? str(top.logFilePath) ?? str(legacy.LogFilePath);
  return { consoleEnabled, logLevel: level ?? 'info', logKeys, ...(logFilePath !== undefined ? { logFilePath } : {}), raw };
}

/**
 * `CORS` (§0). Types are checked by the schema; here, an http(s) entry that is not spelled the way
 * a browser sends `Origin` (a path, a trailing slash, upper case, a default port) can never match,
 * so it gets a warning naming it.
 */
function buildCors(top: Obj, ctx: BuildContext): CorsConfig | undefined {
  const raw = obj(top.CORS);
  if (!raw) return undefined;
  const origins = (key: 'Origin' | 'LoginOrigin'): string[] => {
    const list = strs(raw[key]) ?? [];
    list.forEach((o, i) => {
      if (!/^https?:/i.test(o)) return; // `*`, `null`, app schemes such as capacitor://localhost
      let origin: string | undefined;
      try { origin = new URL(o).origin; } catch { /* reported below */ }
      if (origin !== o) {
        ctx.warnings.push(`CORS.${key}[${i}]: ${JSON.stringify(o)} is not an origin as browsers send it${origin ? ` (${JSON.stringify(origin)})` : ' (scheme://host[:port])'}, so it never matches`);
      }
    });
    return list;
  };
  return { origin: origins('Origin'), loginOrigin: origins('LoginOrigin'), headers: strs(raw.Headers) ?? [], maxAge: num(raw.MaxAge) ?? 0 };
}

function buildPrincipals(
  db: Obj, name: string, collections: CollectionConfig[] | undefined, allowEmptyPassword: boolean, err: (m: string) => void, warn: (m: string) => void,
) {
  const path = `databases.${name}`;
  const dbName = name;
  const users: Record<string, UserConfig> = {};
  const roles: Record<string, RoleConfig> = {};
  const checkName = (name: string, p: string) => {
    if (name === '' || !PRINCIPAL_NAME_RE.test(name)) err(`${p}: Invalid name ${JSON.stringify(name)}`);
  };
  for (const [name, v] of Object.entries(obj(db.users) ?? {})) {
    const u = obj(v) ?? {};
    const p = `${path}.users.${name}`;
    checkName(name, p);
    const password = str(u.password);
    if (password !== undefined) {
      // Messages below must never contain the password itself.
      if (name === 'GUEST') warn(`${p}.password is ignored: the GUEST user has no password`);
      else if (password === '' && !allowEmptyPassword) err(`${p}.password: empty passwords are not allowed unless allow_empty_password is true`);
      else if (password !== '' && [...password].length < 3) err(`${p}.password: Passwords must be at least three 3 characters`);
    }
    if (u.name !== undefined && u.name !== name) warn(`${p}.name is ignored: the user is named by its key "${name}"`);
    const user: UserConfig = {
      admin_channels: strs(u.admin_channels) ?? [], admin_roles: strs(u.admin_roles) ?? [], disabled: bool(u.disabled) ?? false,
    };
    if (password !== undefined && name !== 'GUEST') user.password = password;
    if (str(u.email) !== undefined) user.email = str(u.email);
    const access = buildCollectionAccess(u.collection_access, dbName, collections, (m) => err(`${p}.collection_access: ${m}`));
    if (access) user.collection_access = access;
    Object.defineProperty(users, name, { value: user, enumerable: true, writable: true, configurable: true });
  }
  for (const [name, v] of Object.entries(obj(db.roles) ?? {})) {
    const r = obj(v) ?? {};
    const p = `${path}.roles.${name}`;
    checkName(name, p);
    if (r.name !== undefined && r.name !== name) warn(`${p}.name is ignored: the role is named by its key "${name}"`);
    const role: RoleConfig = { admin_channels: strs(r.admin_channels) ?? [] };
    const access = buildCollectionAccess(r.collection_access, dbName, collections, (m) => err(`${p}.collection_access: ${m}`));
    if (access) role.collection_access = access;
    Object.defineProperty(roles, name, { value: role, enumerable: true, writable: true, configurable: true });
  }
  return { users, roles };
}

export function buildDatabase(name: string, db: Obj, ctx: BuildContext): DatabaseConfig | undefined {
  const path = `databases.${name}`;
  const source = ctx.dbSource(name);
  const before = ctx.errors.length;
  const err = (m: string) => { ctx.errors.push(`${source}: ${m}`); };
  const warn = (m: string) => { ctx.warnings.push(m); };

  if (!DB_NAME_RE.test(name)) err(`${path}: Illegal database name: ${name}`);
  if (db.name !== undefined && db.name !== name) warn(`${path}.name is ignored: the database is named by its key "${name}"`);

  const server = str(db.server) ?? DEFAULT_SERVER;
  const storage = parseServer(server, ctx.cwd);
  if (typeof storage === 'string') err(`${path}.server: ${storage}`);

  const allowConflicts = bool(db.allow_conflicts) ?? true;
  let revsLimit = allowConflicts ? DEFAULT_REVS_LIMIT : DEFAULT_REVS_LIMIT_NO_CONFLICTS;
  const givenRevsLimit = num(db.revs_limit);
  if (givenRevsLimit !== undefined) {
    revsLimit = givenRevsLimit;
    const p = `${path}.revs_limit`;
    if (allowConflicts) {
      if (revsLimit < MIN_REVS_LIMIT) {
        err(`${p}: The revs_limit (${revsLimit}) value in your Sync Gateway configuration cannot be set lower than ${MIN_REVS_LIMIT}.`);
      } else if (revsLimit < DEFAULT_REVS_LIMIT) {
        warn(`${p}: Setting the revs_limit (${revsLimit}) to less than ${DEFAULT_REVS_LIMIT}, whilst having allow_conflicts set to true, may have unwanted results when documents are frequently updated. Please see documentation for details.`);
      }
    } else if (revsLimit <= 0) {
      err(`${p}: The revs_limit (${revsLimit}) value in your Sync Gateway configuration must be greater than zero.`);
    }
  }

  if (typeof storage !== 'string' && storage.kind === 'postgres') {
    if (str(db.certpath) && !str(db.keypath)) err(`${path}.keypath: certpath is set but keypath is missing; a client certificate needs its key`);
    if (str(db.keypath) && !str(db.certpath)) err(`${path}.certpath: keypath is set but certpath is missing`);
    if (num(db.pool_size) === 0) err(`${path}.pool_size: must be at least 1`);
  } else if (num(db.pool_size) !== undefined) warn(`${path}.pool_size is ignored: it applies to postgres:// servers only`);

  const compactDays = num(db.compact_interval_days);
  if (compactDays !== undefined && compactDays !== 0 && (compactDays < 0.04 || compactDays > 60)) {
    err(`${path}.compact_interval_days: compact_interval_days cannot be lower than 0.04 or greater than 60 (0 disables it)`);
  }
  const purgeDays = num(db.purge_interval);
  if (purgeDays !== undefined && purgeDays < 0) err(`${path}.purge_interval: must not be negative`);
  const deltaSync = buildDeltaSync(db, path, err);

  // `scopes` (collections.ts). Sync Gateway answers a 2.x file holding it with 400 "scopes are not
  // allowed with legacy config"; Syncgate accepts it there as in a REST config, same rules.
  const scoped = parseScopes(db);
  for (const m of scoped.problems) err(`${path}.scopes: ${m}`);
  const collections = scoped.collections;

  const allowEmptyPassword = bool(db.allow_empty_password) ?? false;
  const { users, roles } = buildPrincipals(db, name, collections, allowEmptyPassword, err, warn);
  const oidc = obj(db.oidc) ? buildOidc(obj(db.oidc)!, `${path}.oidc`, err, warn) : undefined;
  const localJwt = obj(db.local_jwt) ? buildLocalJwt(obj(db.local_jwt) as Record<string, Obj>, `${path}.local_jwt`, err) : undefined;
  const eventHandlers = buildEventHandlers(db.event_handlers, path, err);
  const replications = buildReplications(db.replications, path, err);
  if (ctx.errors.length > before || typeof storage === 'string') return undefined;

  const config: DatabaseConfig = {
    name, server, storage, bucket: str(db.bucket) ?? name, users, roles, revsLimit, allowConflicts,
    // Go zero value: an empty cookie name means the default.
    sessionCookieName: str(db.session_cookie_name) || DEFAULT_SESSION_COOKIE_NAME,
    sessionCookieHttpOnly: bool(db.session_cookie_http_only) ?? false,
    sendWwwAuthenticateHeader: bool(db.send_www_authenticate_header) ?? true,
    allowEmptyPassword,
    offline: bool(db.offline) ?? false,
    localDocExpirySecs: num(db.local_doc_expiry_secs) ?? DEFAULT_LOCAL_DOC_EXPIRY_SECS,
    deltaSync: deltaSync.config, oldRevExpirySecs: deltaSync.oldRevExpirySecs,
    raw: db,
  };
  if (collections) {
    config.collections = collections;
    const dflt = collections.find((c) => c.scope === '_default' && c.name === '_default');
    if (dflt?.sync !== undefined) config.sync = dflt.sync;
  } else if (str(db.sync) !== undefined) config.sync = str(db.sync);
  if (bool(db.session_cookie_secure) !== undefined) config.sessionCookieSecure = bool(db.session_cookie_secure);
  for (const k of ['username', 'password', 'certpath', 'keypath', 'cacertpath'] as const) {
    const v = str(db[k]);
    if (v !== undefined) config[k] = v;
  }
  if (num(db.pool_size) !== undefined) config.poolSize = num(db.pool_size);
  if (compactDays !== undefined) config.compactIntervalDays = compactDays;
  if (purgeDays !== undefined) config.purgeIntervalDays = purgeDays;
  if (oidc) config.oidc = oidc;
  if (localJwt && Object.keys(localJwt).length) config.localJwt = localJwt;
  if (eventHandlers) config.eventHandlers = eventHandlers;
  if (replications) config.replications = replications;
  if (bool(db.sgreplicate_enabled) === false) config.sgreplicateEnabled = false;
  return config;
}

/** Sync Gateway's defaults (`db.DefaultDeltaSyncRevMaxAge`, `base.DefaultOldRevExpirySeconds`). */
export const DEFAULT_DELTA_REV_MAX_AGE_SECS = 86_400;
export const DEFAULT_OLD_REV_EXPIRY_SECS = 300;

/** `delta_sync` and `old_rev_expiry_seconds`, with Sync Gateway's check between the two. */
function buildDeltaSync(db: Obj, path: string, err: (m: string) => void): { config: DeltaSyncConfig; oldRevExpirySecs: number } {
  const oldRevExpirySecs = num(db.old_rev_expiry_seconds) ?? DEFAULT_OLD_REV_EXPIRY_SECS;
  const d = obj(db.delta_sync) ?? {};
  const revMaxAgeSecs = num(d.rev_max_age_seconds) ?? DEFAULT_DELTA_REV_MAX_AGE_SECS;
  if (num(d.rev_max_age_seconds) !== undefined && revMaxAgeSecs !== 0 && revMaxAgeSecs < oldRevExpirySecs) {
    err(`${path}.delta_sync.rev_max_age_seconds: ${revMaxAgeSecs} must not be less than the configured old_rev_expiry_seconds: ${oldRevExpirySecs}`);
  }
  return { config: { enabled: bool(d.enabled) ?? false, revMaxAgeSecs }, oldRevExpirySecs };
}

const MIB = 1024 * 1024;

/**
 * `limits` defaults (SECURITY.md lists them). Lockout on, as CouchDB ships it; rate limits off,
 * since a reverse proxy or a load test sends everything from one address and a wrong guess would
 * break working deployments; sizes as Sync Gateway's (20 MB documents and attachments).
 */
export const DEFAULT_LIMITS: LimitsConfig = {
  loginMaxFailures: 5, loginFailureWindowSecs: 300, loginLockoutSecs: 900,
  requestsPerAddress: 0, requestsPerUser: 0, rateWindowSecs: 60,
  maxChangesFeedsPerUser: 100, maxConnectionsPerAddress: 0,
  maxBodyBytes: 32 * MIB, maxDocumentBytes: 20 * MIB, maxAttachmentBytes: 20 * MIB,
  maxBulkDocs: 10_000, maxChannelsPerDoc: 1000,
  // Loopback by default: the documented deployment is NGINX on the same host, where every request
  // arrives from 127.0.0.1 and, without this, one guesser would lock a user out for everyone. A
  // directly exposed listener never sees remote clients from loopback, so nobody else can forge it.
  trustedProxies: ['127.0.0.1', '::1'],
};

function buildLimits(top: Obj, err: (m: string) => void): LimitsConfig {
  const raw = obj(top.limits) ?? {};
  const n = (key: string, dflt: number) => num(raw[key]) ?? dflt;
  const d = DEFAULT_LIMITS;
  const limits: LimitsConfig = {
    loginMaxFailures: n('login_max_failures', d.loginMaxFailures),
    loginFailureWindowSecs: n('login_failure_window_secs', d.loginFailureWindowSecs),
    loginLockoutSecs: n('login_lockout_secs', d.loginLockoutSecs),
    requestsPerAddress: n('requests_per_address', d.requestsPerAddress),
    requestsPerUser: n('requests_per_user', d.requestsPerUser),
    rateWindowSecs: n('rate_window_secs', d.rateWindowSecs),
    maxChangesFeedsPerUser: n('max_changes_feeds_per_user', d.maxChangesFeedsPerUser),
    maxConnectionsPerAddress: n('max_connections_per_address', d.maxConnectionsPerAddress),
    maxBodyBytes: n('max_body_bytes', d.maxBodyBytes),
    maxDocumentBytes: n('max_document_bytes', d.maxDocumentBytes),
    maxAttachmentBytes: n('max_attachment_bytes', d.maxAttachmentBytes),
    maxBulkDocs: n('max_bulk_docs', d.maxBulkDocs),
    maxChannelsPerDoc: n('max_channels_per_doc', d.maxChannelsPerDoc),
    trustedProxies: strs(raw.trusted_proxies) ?? d.trustedProxies,
  };
  // A lockout or rate limit with a zero-length window would silently do nothing.
  if (limits.loginMaxFailures > 0) {
    if (limits.loginFailureWindowSecs === 0) err('limits.login_failure_window_secs: must be at least 1 while limits.login_max_failures is set');
    if (limits.loginLockoutSecs === 0) err('limits.login_lockout_secs: must be at least 1 while limits.login_max_failures is set');
  }
  if ((limits.requestsPerAddress > 0 || limits.requestsPerUser > 0) && limits.rateWindowSecs === 0) {
    err('limits.rate_window_secs: must be at least 1 while a request rate limit is set');
  }
  // Unbounded request bodies would be read whole into memory.
  if (limits.maxBodyBytes < 1024) err(`limits.max_body_bytes: must be at least 1024 (got ${limits.maxBodyBytes})`);
  limits.trustedProxies.forEach((p, i) => {
    if (!isIP(p.startsWith('::ffff:') ? p.slice(7) : p)) err(`limits.trusted_proxies[${i}]: ${JSON.stringify(p)} is not an IP address`);
  });
  return limits;
}

/** Builds the GatewayConfig; problems go to ctx (the caller throws if ctx.errors is not empty). */
export function buildGatewayConfig(top: Obj, ctx: BuildContext): GatewayConfig {
  const err = (m: string) => { ctx.errors.push(`${ctx.source}: ${m}`); };
  const sslCert = str(top.SSLCert) || undefined;
  const sslKey = str(top.SSLKey) || undefined;
  if (sslCert && !sslKey) err('SSLKey: SSLCert is set but SSLKey is missing; both are needed for HTTPS');
  if (sslKey && !sslCert) err('SSLCert: SSLKey is set but SSLCert is missing; both are needed for HTTPS');

  let bcryptCost = num(top.bcrypt_cost) ?? 0;
  if (bcryptCost === 0) bcryptCost = DEFAULT_BCRYPT_COST; // Go zero value: unset
  else if (bcryptCost < DEFAULT_BCRYPT_COST || bcryptCost > MAX_BCRYPT_COST) {
    err(`bcrypt_cost: the bcrypt cost (${bcryptCost}) must be between ${DEFAULT_BCRYPT_COST} and ${MAX_BCRYPT_COST}`);
  }

  const databases: Record<string, DatabaseConfig> = {};
  const buckets = new Map<string, string[]>();
  for (const [name, v] of Object.entries(obj(top.databases) ?? {})) {
    const db = buildDatabase(name, obj(v) ?? {}, ctx);
    if (!db) continue;
    Object.defineProperty(databases, name, { value: db, enumerable: true, writable: true, configurable: true });
    const key = `${db.server}\u0000${db.bucket}`;
    buckets.set(key, [...(buckets.get(key) ?? []), name]);
  }
  for (const [key, names] of buckets) {
    if (names.length > 1) {
      ctx.warnings.push(`databases: Bucket "${key.split('\u0000')[1]}" is shared among databases [${names.join(' ')}]. This may result in unexpected behaviour if security is not defined consistently.`);
    }
  }

  const config: GatewayConfig = {
    interface: str(top.interface) ?? ':4984',
    adminInterface: str(top.adminInterface) ?? '127.0.0.1:4985',
    metricsInterface: str(top.metricsInterface) ?? '127.0.0.1:4986',
    tlsMinimumVersion: (str(top.tls_minimum_version) ?? 'tlsv1.2') as TlsVersion,
    pretty: bool(top.Pretty) ?? false,
    compressResponses: bool(top.CompressResponses) ?? true,
    maxIncomingConnections: num(top.MaxIncomingConnections) ?? 0,
    readHeaderTimeout: num(top.ReadHeaderTimeout) ?? 5,
    idleTimeout: num(top.IdleTimeout) ?? 90,
    bcryptCost,
    limits: buildLimits(top, err),
    logging: buildLogging(top, ctx),
    databases,
    warnings: ctx.warnings,
    raw: top,
  };
  const cors = buildCors(top, ctx);
  if (cors) config.cors = cors;
  for (const [key, field] of [['admin_users', 'adminUsers'], ['metrics_users', 'metricsUsers']] as const) {
    const users = obj(top[key]);
    if (!users) continue;
    const out: Record<string, string> = {};
    for (const [name, v] of Object.entries(users)) {
      const hash = str(obj(v)?.password_hash);
      // Only hashes belong in a config file: a plain password here would be a secret at rest.
      if (!hash || !/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) {
        err(`${key}.${name}.password_hash: must be a bcrypt hash (make one with: syncgate --hash-password)`);
        continue;
      }
      out[name] = hash;
    }
    config[field] = out;
  }
  if (sslCert) config.sslCert = sslCert;
  if (sslKey) config.sslKey = sslKey;
  if (num(top.ServerReadTimeout) !== undefined) config.serverReadTimeout = num(top.ServerReadTimeout);
  if (num(top.ServerWriteTimeout) !== undefined) config.serverWriteTimeout = num(top.ServerWriteTimeout);
  return config;
}
