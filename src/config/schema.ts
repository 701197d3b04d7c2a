/**
 * The shape of Sync Gateway's legacy 2.x JSON config (spec §1.1, §1.3, §8), as Go decodes it into
 * `ServerConfig` / `DbConfig`. Every key SG knows is listed here. `built: false` marks a key that
 * is accepted (type-checked, unknown sub-keys still fatal) but whose feature Syncgate does not
 * implement yet: loading it produces the warning "<path> is not supported yet and is ignored".
 * Implementing a feature = flip its flag to `built: true` and read the value in build.ts.
 */

import { LOCAL_JWT_FIELDS, OIDC_PROVIDER_FIELDS } from './jwt.ts';

export type Shape =
  | { readonly type: 'string' | 'boolean' | 'integer' | 'uint' | 'number' | 'any' }
  | { readonly type: 'enum'; readonly values: readonly string[] }
  | { readonly type: 'array'; readonly items: Shape }
  | { readonly type: 'object'; readonly fields: Fields }
  /** `nullIsEmpty`: a null value is an entry with nothing set (Go: a nil pointer in the map), not an absent one. */
  | { readonly type: 'map'; readonly values: Shape; readonly nullIsEmpty?: boolean }
  | { readonly type: 'oneOf'; readonly options: readonly Shape[] };

export interface Field {
  readonly shape: Shape;
  /** Implemented by Syncgate. A set key whose field is not built produces a warning. */
  readonly built: boolean;
  /** Deprecated key: the key path to use instead (produces a deprecation warning). */
  readonly deprecated?: string;
  /** Setting a not-built key to this value changes nothing, so it does not warn. */
  readonly inert?: string | number | boolean;
}

export type Fields = Readonly<Record<string, Field>>;

const string: Shape = { type: 'string' };
const boolean: Shape = { type: 'boolean' };
const integer: Shape = { type: 'integer' };
const uint: Shape = { type: 'uint' };
const number: Shape = { type: 'number' };
const any: Shape = { type: 'any' };
const strings: Shape = { type: 'array', items: string };
const object = (fields: Fields): Shape => ({ type: 'object', fields });
const mapOf = (values: Shape): Shape => ({ type: 'map', values });
const arrayOf = (items: Shape): Shape => ({ type: 'array', items });
const oneOf = (...options: Shape[]): Shape => ({ type: 'oneOf', options });
const enumOf = (...values: string[]): Shape => ({ type: 'enum', values });
const built = (shape: Shape, extra: Partial<Field> = {}): Field => ({ shape, built: true, ...extra });
const later = (shape: Shape, extra: Partial<Field> = {}): Field => ({ shape, built: false, ...extra });
/** The shape builders, for the 3.x schemas (schema3.ts). */
export const shapes = { string, boolean, integer, uint, number, any, strings, object, mapOf, arrayOf, oneOf, enumOf, built, later };

export const LOG_LEVELS = ['none', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export const TLS_VERSIONS = ['tlsv1', 'tlsv1.1', 'tlsv1.2', 'tlsv1.3'] as const;
export const REDACTION_LEVELS = ['none', 'partial', 'full'] as const;
/** Log keys of §8 (2.x and 3.x). A `+` suffix is also accepted. */
export const LOG_KEYS = [
  '*', 'Admin', 'Access', 'Auth', 'Bucket', 'Cache', 'Changes', 'SGCluster', 'CRUD', 'DCP', 'Events', 'gocb',
  'HTTP', 'Import', 'Javascript', 'Migrate', 'Query', 'Replicate', 'Sync', 'SyncMsg', 'WS', 'WSFrame',
  'Config', 'Diagnostic', 'VV', 'Walrus',
] as const;

// ---- logging (§8), all accepted as built ----
const ROTATION: Shape = object({
  max_size: built(integer), max_age: built(integer), localtime: built(boolean), rotated_logs_size_limit: built(integer),
});
const fileLoggerFields: Fields = {
  enabled: built(boolean), rotation: built(ROTATION), collation_buffer_size: built(integer),
};
export const FILE_LOGGER_FIELDS: Fields = fileLoggerFields;
export const CONSOLE_LOGGER_FIELDS: Fields = {
  ...fileLoggerFields,
  log_level: built(enumOf(...LOG_LEVELS)),
  log_keys: built(strings),
  color_enabled: built(boolean),
  file_output: built(string),
};
export const LOGGING_FIELDS: Fields = {
  log_file_path: built(string),
  redaction_level: built(enumOf(...REDACTION_LEVELS)),
  console: built(object(CONSOLE_LOGGER_FIELDS)),
  error: built(object(FILE_LOGGER_FIELDS)),
  warn: built(object(FILE_LOGGER_FIELDS)),
  info: built(object(FILE_LOGGER_FIELDS)),
  debug: built(object(FILE_LOGGER_FIELDS)),
  trace: built(object(FILE_LOGGER_FIELDS)),
  stats: built(object(FILE_LOGGER_FIELDS)),
  // 2.x LogAppenderConfig, deprecated
  default: built(object({
    LogFilePath: built(string), LogKeys: built(strings), LogLevel: built(string),
    Rotation: later(any), RedactionLevel: built(enumOf(...REDACTION_LEVELS)),
  }), { deprecated: 'logging.console / logging.log_file_path' }),
};

// ---- users and roles (§1.3, Go `db.PrincipalConfig`) ----
/** `collection_access` (SG 3.1 `auth.CollectionAccessConfig`): scope → collection → grants. */
const COLLECTION_ACCESS: Shape = mapOf(mapOf(object({
  admin_channels: built(strings),
  all_channels: later(strings), // read-only in SG, as the principal's own
  jwt_channels: later(strings),
  jwt_last_updated: later(string),
})));
export const USER_FIELDS: Fields = {
  name: built(string),
  password: built(string),
  admin_channels: built(strings),
  admin_roles: built(strings),
  email: built(string),
  disabled: built(boolean),
  all_channels: later(strings), // read-only in SG: output of GET /_user/, ignored on input
  roles: later(strings), // idem
  collection_access: built(COLLECTION_ACCESS),
};
export const ROLE_FIELDS: Fields = {
  name: built(string),
  admin_channels: built(strings),
  all_channels: later(strings),
  collection_access: built(COLLECTION_ACCESS),
};

/**
 * `scopes` (SG 3.1 `ScopesConfig`): scope → `collections` → name → functions. Sync Gateway refuses
 * it in a 2.x file ("scopes are not allowed with legacy config"); Syncgate accepts it there too, so
 * a start-up file can hold collections without running the persistent mode (build.ts).
 */
export const SCOPES_SHAPE: Shape = mapOf(object({
  // `"hotel": null` lists the collection, as in Sync Gateway (a nil *CollectionConfig).
  collections: built({ type: 'map', values: object({ sync: built(string), import_filter: built(string) }), nullIsEmpty: true }),
}));

// ---- per-database nested shapes ----
const EVENT: Shape = object({
  handler: built(string), url: built(string), filter: built(string), timeout: built(uint),
  options: built(object({ winning_rev_only: built(boolean) })),
  // Syncgate's own (document_changed only): delivery that follows the changes feed (README).
  delivery: built(enumOf('best_effort', 'at_least_once')), batch_size: built(uint), max_attempts: built(uint),
  retry_initial_ms: built(uint), retry_max_ms: built(uint),
});
export const EVENT_HANDLER_FIELDS: Fields = {
  max_processes: built(uint), wait_for_process: built(string),
  document_changed: built(arrayOf(EVENT)), db_state_changed: built(arrayOf(EVENT)),
};
export const CACHE_FIELDS: Fields = {
  rev_cache: built(object({ size: built(uint), shard_count: built(uint) })),
  channel_cache: built(object({
    max_number: built(integer), compact_high_watermark_pct: built(integer), compact_low_watermark_pct: built(integer),
    max_wait_pending: built(uint), max_num_pending: built(integer), max_wait_skipped: built(uint),
    enable_star_channel: built(boolean), max_length: built(integer), min_length: built(integer),
    expiry_seconds: built(integer), query_limit: built(integer),
  })),
  // 2.x DeprecatedCacheConfig
  max_wait_pending: built(uint), max_num_pending: built(integer), max_wait_skipped: built(uint),
  enable_star_channel: built(boolean), channel_cache_max_length: built(integer),
  channel_cache_min_length: built(integer), channel_cache_expiry: built(integer),
};

// ---- per database (`databases.<db>`, Go DbConfig + BucketConfig) ----
export const DATABASE_FIELDS: Fields = {
  server: built(string),
  bucket: built(string),
  pool: built(string),
  name: built(string),
  username: built(string),
  password: built(string),
  certpath: built(string),
  keypath: built(string),
  cacertpath: built(string),
  // Syncgate's own: connections in this node's PostgreSQL pool (postgres:// servers only).
  pool_size: built(uint),
  kv_tls_port: later(integer),
  sync: built(string),
  scopes: built(SCOPES_SHAPE),
  users: built(mapOf(object(USER_FIELDS))),
  roles: built(mapOf(object(ROLE_FIELDS))),
  revs_limit: built(uint),
  allow_conflicts: built(boolean),
  session_cookie_name: built(string),
  session_cookie_secure: built(boolean),
  session_cookie_http_only: built(boolean),
  send_www_authenticate_header: built(boolean),
  allow_empty_password: built(boolean),
  offline: built(boolean),
  local_doc_expiry_secs: built(uint),
  enable_shared_bucket_access: later(boolean, { inert: false }),
  import_docs: later(oneOf(boolean, enumOf('continuous')), { inert: false }),
  import_filter: later(string),
  import_partitions: later(uint),
  import_backup_old_rev: later(boolean, { inert: false }),
  event_handlers: built(object(EVENT_HANDLER_FIELDS)),
  cache: later(object(CACHE_FIELDS)),
  oidc: built(object({ default_provider: built(string), providers: built(mapOf(object(OIDC_PROVIDER_FIELDS))) })),
  local_jwt: built(mapOf(object(LOCAL_JWT_FIELDS))),
  old_rev_expiry_seconds: built(uint),
  view_query_timeout_secs: later(uint),
  use_views: later(boolean, { inert: false }),
  num_index_replicas: later(uint),
  bucket_op_timeout_ms: later(uint),
  delta_sync: built(object({ enabled: built(boolean), rev_max_age_seconds: built(uint) })),
  compact_interval_days: built(number),
  // Days a tombstone is kept before tombstone compaction purges it (Sync Gateway: 30).
  purge_interval: built(number),
  sgreplicate_enabled: built(boolean), // ISGR: false = this node runs none of the db's replications
  sgreplicate_websocket_heartbeat_secs: later(integer),
  replications: built(mapOf(any)), // §1.4, ISGR (src/config/replications.ts)
  serve_insecure_attachment_types: later(boolean, { inert: false }),
  feed_type: later(string),
  rev_cache_size: later(uint),
  unsupported: later(any), // db.UnsupportedOptions: many internal switches
  deprecated: later(any),
};

// ---- Syncgate's `limits` (top level): lockout, rate limits, sizes; 0 turns a limit off ----
export const LIMITS_FIELDS: Fields = {
  login_max_failures: built(uint),
  login_failure_window_secs: built(uint),
  login_lockout_secs: built(uint),
  requests_per_address: built(uint),
  requests_per_user: built(uint),
  rate_window_secs: built(uint),
  max_changes_feeds_per_user: built(uint),
  max_connections_per_address: built(uint),
  max_body_bytes: built(uint),
  max_document_bytes: built(uint),
  max_attachment_bytes: built(uint),
  max_bulk_docs: built(uint),
  max_channels_per_doc: built(uint),
  trusted_proxies: built(strings),
};

// ---- top level (Go ServerConfig) ----
export const TOP_LEVEL_FIELDS: Fields = {
  interface: built(string),
  adminInterface: built(string),
  metricsInterface: built(string),
  profileInterface: later(string),
  SSLCert: built(string),
  SSLKey: built(string),
  tls_minimum_version: built(enumOf(...TLS_VERSIONS)),
  ServerReadTimeout: built(uint),
  // Go's WriteTimeout cuts any response that outlives it, live changes feeds included: not applied.
  ServerWriteTimeout: later(uint, { inert: 0 }),
  ReadHeaderTimeout: built(uint),
  IdleTimeout: built(uint),
  MaxIncomingConnections: built(uint),
  MaxFileDescriptors: later(uint),
  CompressResponses: built(boolean),
  Pretty: built(boolean),
  MaxHeartbeat: later(uint),
  CORS: built(object({ Origin: built(strings), LoginOrigin: built(strings), Headers: built(strings), MaxAge: built(uint) })),
  Facebook: later(object({ Register: built(boolean) })),
  Google: later(object({ Register: built(boolean), app_client_id: built(strings) })),
  logging: built(object(LOGGING_FIELDS)),
  log: built(strings, { deprecated: 'logging.console.log_keys' }),
  logFilePath: built(string, { deprecated: 'logging.log_file_path' }),
  databases: built(mapOf(object(DATABASE_FIELDS))),
  replications: later(arrayOf(any)), // sg-replicate v1, deprecated
  cluster_config: later(object({
    server: built(string), pool: built(string), bucket: built(string), username: built(string), password: built(string),
    certpath: built(string), keypath: built(string), cacertpath: built(string), kv_tls_port: built(integer),
    data_dir: built(string), heartbeat_interval_seconds: built(uint),
  })),
  bcrypt_cost: built(integer),
  // Syncgate's own (Sync Gateway 2.x has no admin authentication): operator accounts for the admin
  // and metrics ports, stored as bcrypt hashes (`syncgate --hash-password` makes one).
  admin_users: built(mapOf(object({ password_hash: built(string) }))),
  metrics_users: built(mapOf(object({ password_hash: built(string) }))),
  // Syncgate's own abuse limits (Sync Gateway has none of these); defaults and meaning in build.ts
  // `buildLimits` and SECURITY.md.
  limits: built(object(LIMITS_FIELDS)),
  replicator_compression: later(integer),
  hide_product_version: later(boolean, { inert: false }),
  DeploymentID: later(string),
  StatsReportInterval: later(number),
  CouchbaseKeepaliveInterval: later(integer),
  SlowQueryWarningThreshold: later(integer),
  AdminUI: later(string),
  ConfigServer: later(string),
  unsupported: later(object({
    http2: built(object({ enabled: built(boolean) })), stats_log_freq_secs: built(uint), use_stdlib_json: built(boolean),
  })),
  // 3.x configs run in legacy mode with this set; Syncgate always runs in legacy mode.
  disable_persistent_config: later(boolean, { inert: true }),
};

export const CONFIG_SHAPE: Shape = object(TOP_LEVEL_FIELDS);
