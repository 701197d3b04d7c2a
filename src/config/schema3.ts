/**
 * Sync Gateway 3.x shapes (spec sg3-admin §1.1, §1.2): the start-up ("bootstrap") file,
 * `rest/config_startup.go` StartupConfig, and the database config of the REST API, `DbConfig`
 * (the 2.x database keys plus the 3.x additions). Same rules as schema.ts: unknown keys are errors,
 * `later` keys are accepted and warned about as not supported yet.
 */
import {
  DATABASE_FIELDS, type Fields, LIMITS_FIELDS, LOG_LEVELS, LOGGING_FIELDS, type Shape, TLS_VERSIONS, USER_FIELDS, shapes,
} from './schema.ts';

const { string, boolean, integer, uint, any, strings, object, mapOf, enumOf, built, later } = shapes;

const CREDENTIALS: Shape = object({
  username: built(string), password: built(string), x509_cert_path: built(string), x509_key_path: built(string),
});

/** Operator accounts (Syncgate's own, as in the 2.x file): SG's admin auth needs Couchbase Server RBAC. */
const OPERATORS: Shape = mapOf(object({ password_hash: built(string) }));

export const BOOTSTRAP_FIELDS: Fields = {
  bootstrap: built(object({
    server: built(string), username: built(string), password: built(string), ca_cert_path: built(string),
    server_tls_skip_verify: built(boolean), x509_cert_path: built(string), x509_key_path: built(string),
    use_tls_server: built(boolean), group_id: built(string), config_update_frequency: built(string),
  })),
  api: built(object({
    public_interface: built(string), admin_interface: built(string), metrics_interface: built(string),
    profile_interface: later(string),
    admin_interface_authentication: built(boolean), metrics_interface_authentication: built(boolean),
    enable_advanced_auth_dp: later(boolean, { inert: false }),
    server_read_timeout: built(string),
    // Go's write timeout cuts live feeds: accepted, not applied (as ServerWriteTimeout in 2.x).
    server_write_timeout: later(string),
    read_header_timeout: built(string), idle_timeout: built(string),
    pretty: built(boolean), max_connections: built(uint), compress_responses: built(boolean),
    hide_product_version: later(boolean, { inert: false }),
    https: built(object({ tls_minimum_version: built(enumOf(...TLS_VERSIONS)), tls_cert_path: built(string), tls_key_path: built(string) })),
    cors: built(object({ origin: built(strings), login_origin: built(strings), headers: built(strings), max_age: built(uint) })),
  })),
  logging: built(object(LOGGING_FIELDS)),
  auth: built(object({ bcrypt_cost: built(integer) })),
  replicator: later(object({
    max_heartbeat: built(string), blip_compression: built(integer), max_concurrent_changes_batches: built(integer), max_concurrent_revs: built(integer),
  })),
  unsupported: built(object({
    stats_log_frequency: later(string), use_stdlib_json: later(boolean),
    serverless: later(object({ enabled: built(boolean), min_config_fetch_interval: built(string) })),
    http2: later(object({ enabled: built(boolean) })), user_queries: later(boolean, { inert: false }),
    use_xattr_config: later(boolean), allow_dbconfig_env_vars: built(boolean),
  })),
  database_credentials: built(mapOf(CREDENTIALS)),
  bucket_credentials: built(mapOf(CREDENTIALS)),
  max_file_descriptors: later(uint),
  couchbase_keepalive_interval: later(integer),
  admin_users: built(OPERATORS),
  metrics_users: built(OPERATORS),
  limits: built(object(LIMITS_FIELDS)),
};

/** Top-level keys only a 3.x start-up file has: one of them makes a file a bootstrap config. */
export const BOOTSTRAP_ONLY_KEYS = [
  'bootstrap', 'api', 'auth', 'replicator', 'database_credentials', 'bucket_credentials', 'max_file_descriptors', 'couchbase_keepalive_interval',
];

/** The 3.x database config (`DbConfig`): the 2.x keys (Syncgate's `pool_size` aside) plus 3.x's. */
const { pool_size: _poolSize, ...DB2_FIELDS } = DATABASE_FIELDS;
export const DB_CONFIG_FIELDS: Fields = {
  ...DB2_FIELDS,
  // Kept and served back; Syncgate has no Couchbase Server documents to import.
  import_filter: built(string),
  guest: built(object(USER_FIELDS)),
  javascript_timeout_secs: later(uint),
  disable_password_auth: later(boolean, { inert: false }),
  user_xattr_key: later(string),
  query_pagination_limit: later(integer),
  slow_query_warning_threshold: later(uint),
  client_partition_window_secs: later(integer),
  max_concurrent_query_ops: later(integer),
  local_jwt: later(mapOf(any)),
  changes_request_plus: later(boolean, { inert: false }),
  suspendable: later(boolean, { inert: false }),
  cors: later(object({ origin: built(strings), login_origin: built(strings), headers: built(strings), max_age: built(uint) })),
  logging: later(object({ console: built(object({ log_level: built(enumOf(...LOG_LEVELS)), log_keys: built(strings) })) })),
  functions: later(any),
  graphql: later(any),
};

export const DB_CONFIG_SHAPE: Shape = object(DB_CONFIG_FIELDS);
export const BOOTSTRAP_SHAPE: Shape = object(BOOTSTRAP_FIELDS);
