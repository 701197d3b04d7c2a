/**
 * The Sync Gateway 3.x start-up file (spec sg3-admin §1.1): `bootstrap`, `api`, `logging`, `auth`,
 * `replicator`, `unsupported`, credentials maps. Its text gets `$VAR` / `${VAR:-default}` expansion
 * first; unknown keys are errors. It is turned into the same GatewayConfig as a 2.x file (its keys
 * mapped onto the 2.x ones, so defaults and checks are shared) plus `persistent`.
 */
import { isAbsolute, resolve } from 'node:path';
import { buildGatewayConfig, type BuildContext } from './build.ts';
import { type Diagnostics, isPlainObject, normalizeValue } from './normalize.ts';
import { BOOTSTRAP_SHAPE } from './schema3.ts';
import { parseServer, redactServerUrl } from './server.ts';
import { ConfigError, type GatewayConfig, type PersistentConfig, type StorageCredentials } from './types.ts';

type Obj = Record<string, unknown>;

const obj = (v: unknown): Obj => (isPlainObject(v) ? v : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);

export const DEFAULT_GROUP_ID = 'default';
export const MAX_GROUP_ID_LENGTH = 100;
export const DEFAULT_CONFIG_UPDATE_FREQUENCY_MS = 10_000;

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration ("10s", "1m30s", "250ms") in milliseconds, or undefined when malformed. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let pos = 0;
  let total = 0;
  const sign = text.startsWith('-') ? -1 : 1;
  if (text[0] === '-' || text[0] === '+') pos = 1;
  if (pos >= text.length) return undefined;
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]];
    pos = re.lastIndex;
  }
  return sign * total;
}

function credentials(raw: Obj): StorageCredentials {
  const c: StorageCredentials = {};
  if (str(raw.username) !== undefined) c.username = str(raw.username);
  if (str(raw.password) !== undefined) c.password = str(raw.password);
  if (str(raw.x509_cert_path)) c.certpath = str(raw.x509_cert_path);
  if (str(raw.x509_key_path)) c.keypath = str(raw.x509_key_path);
  return c;
}

function credentialMap(raw: unknown): Record<string, StorageCredentials> {
  const out: Record<string, StorageCredentials> = {};
  for (const [k, v] of Object.entries(obj(raw))) Object.defineProperty(out, k, { value: credentials(obj(v)), enumerable: true });
  return out;
}

function buildPersistent(top: Obj, err: (m: string) => void, cwd: string): PersistentConfig | undefined {
  const b = obj(top.bootstrap);
  const server = str(b.server);
  if (!server) {
    err('bootstrap.server: a server must be provided in the Bootstrap configuration: sqlite:<directory> or postgres://host:port/dbname');
    return undefined;
  }
  const groupId = str(b.group_id) || DEFAULT_GROUP_ID;
  if (groupId.length > MAX_GROUP_ID_LENGTH) err(`bootstrap.group_id: group_id must be at most ${MAX_GROUP_ID_LENGTH} characters in length`);
  let frequency = DEFAULT_CONFIG_UPDATE_FREQUENCY_MS;
  if (str(b.config_update_frequency) !== undefined) {
    const ms = parseGoDuration(str(b.config_update_frequency)!);
    if (ms === undefined || ms <= 0) err('bootstrap.config_update_frequency: must be a positive duration such as "10s" or "500ms"');
    else frequency = ms;
  }
  const creds = credentials(b);
  if (str(b.ca_cert_path)) creds.cacertpath = str(b.ca_cert_path);
  if (bool(b.server_tls_skip_verify) && creds.cacertpath) err('bootstrap.server_tls_skip_verify: cannot skip server TLS validation and use CA Cert');
  const persistent = (storage: PersistentConfig['storage']): PersistentConfig => ({
    server, storage, credentials: creds, groupId, configUpdateFrequencyMs: frequency,
    databaseCredentials: credentialMap(top.database_credentials), bucketCredentials: credentialMap(top.bucket_credentials),
    allowDbConfigEnvVars: bool(obj(top.unsupported).allow_dbconfig_env_vars) ?? true,
  });
  if (/^sqlite:/i.test(server)) {
    const rest = server.slice('sqlite:'.length).replace(/^\/\//, '');
    if (rest === '') { err('bootstrap.server: sqlite: needs a directory, e.g. sqlite:data/'); return undefined; }
    if (creds.username || creds.password || creds.cacertpath || creds.certpath) {
      err('bootstrap: username, password, ca_cert_path and x509 certificates apply to postgres:// servers only');
    }
    return persistent({ kind: 'sqlite', dir: isAbsolute(rest) ? rest : resolve(cwd, rest) });
  }
  const spec = parseServer(server, cwd);
  if (typeof spec === 'string' || spec.kind !== 'postgres') {
    err(`bootstrap.server: ${typeof spec === 'string' && /^postgres(ql)?:/i.test(server) ? spec : `unsupported server "${redactServerUrl(server)}"; accepted: sqlite:<directory>, postgres://host:port/dbname`}`);
    return undefined;
  }
  if (creds.certpath && !creds.keypath) err('bootstrap.x509_key_path: x509_cert_path is set but x509_key_path is missing');
  if (creds.keypath && !creds.certpath) err('bootstrap.x509_cert_path: x509_key_path is set but x509_cert_path is missing');
  // use_tls_server (SG's default is true) asks for TLS to the server; unset keeps what the URL says.
  if (bool(b.use_tls_server) === true && !spec.sslmode) spec.sslmode = creds.cacertpath ? 'verify-full' : 'require';
  if (bool(b.use_tls_server) === false && (creds.cacertpath || creds.certpath)) err('bootstrap.use_tls_server: is false, but ca_cert_path or x509 certificates need TLS');
  if (bool(b.use_tls_server) === false) spec.sslmode = 'disable';
  return persistent(spec);
}

const SECONDS = (ms: number | undefined) => (ms === undefined ? undefined : Math.ceil(ms / 1000));

/** 3.x keys → the 2.x names buildGatewayConfig reads; problems in 2.x names are renamed back. */
const RENAMED: [RegExp, string][] = [
  [/^SSLCert:/, 'api.https.tls_cert_path:'], [/^SSLKey:/, 'api.https.tls_key_path:'], [/^bcrypt_cost:/, 'auth.bcrypt_cost:'],
  [/^CORS\.Origin/, 'api.cors.origin'], [/^CORS\.LoginOrigin/, 'api.cors.login_origin'],
];

function toLegacyTop(top: Obj, err: (m: string) => void, warn: (m: string) => void): Obj {
  const api = obj(top.api);
  const https = obj(api.https);
  const cors = isPlainObject(api.cors) ? api.cors : undefined;
  const out: Obj = {};
  const set = (k: string, v: unknown) => { if (v !== undefined) out[k] = v; };
  const duration = (key: string): number | undefined => {
    const text = str(api[key]);
    if (text === undefined) return undefined;
    const ms = parseGoDuration(text);
    if (ms === undefined || ms < 0) { err(`api.${key}: must be a duration such as "30s" or "5m"`); return undefined; }
    return SECONDS(ms);
  };
  set('interface', str(api.public_interface));
  set('adminInterface', str(api.admin_interface));
  set('metricsInterface', str(api.metrics_interface));
  set('SSLCert', str(https.tls_cert_path));
  set('SSLKey', str(https.tls_key_path));
  set('tls_minimum_version', str(https.tls_minimum_version));
  set('Pretty', bool(api.pretty));
  set('CompressResponses', bool(api.compress_responses));
  set('MaxIncomingConnections', api.max_connections);
  set('ServerReadTimeout', duration('server_read_timeout'));
  set('ReadHeaderTimeout', duration('read_header_timeout'));
  set('IdleTimeout', duration('idle_timeout'));
  if (cors) set('CORS', { Origin: cors.origin, LoginOrigin: cors.login_origin, Headers: cors.headers, MaxAge: cors.max_age });
  set('logging', top.logging);
  set('bcrypt_cost', obj(top.auth).bcrypt_cost);
  set('limits', top.limits);
  // Admin and metrics authentication: Syncgate's operator accounts stand in for Couchbase Server RBAC.
  for (const [flag, key] of [['admin_interface_authentication', 'admin_users'], ['metrics_interface_authentication', 'metrics_users']] as const) {
    const on = bool(api[flag]);
    if (on === true && top[key] === undefined) err(`api.${flag}: is true, but Syncgate authenticates operators with ${key} (there is no Couchbase Server RBAC): add ${key}`);
    if (on !== false) set(key, top[key]);
    else if (top[key] !== undefined) warn(`${key} is ignored: api.${flag} is false, so that port asks for no credentials`);
  }
  return out;
}

/** Parses a 3.x start-up file's JSON value (already env-expanded). Throws ConfigError. */
export function buildBootstrapConfig(value: unknown, source: string, cwd = process.cwd()): GatewayConfig {
  const diag: Diagnostics = { errors: [], warnings: [] };
  const local: Diagnostics = { errors: [], warnings: diag.warnings };
  const top = (isPlainObject(value) ? normalizeValue(value, BOOTSTRAP_SHAPE, '', local) ?? {} : {}) as Obj;
  if (!isPlainObject(value)) diag.errors.push(`${source}: the config file must contain a JSON object`);
  for (const e of local.errors) diag.errors.push(`${source}: ${e}`);
  const err = (m: string) => { diag.errors.push(`${source}: ${m}`); };
  const persistent = buildPersistent(top, err, cwd);
  const legacyErrors: string[] = [];
  const ctx: BuildContext = { errors: legacyErrors, warnings: diag.warnings, source, dbSource: () => source, cwd };
  const config = buildGatewayConfig(toLegacyTop(top, err, (m) => diag.warnings.push(m)), ctx);
  for (const e of legacyErrors) {
    const rest = e.startsWith(`${source}: `) ? e.slice(source.length + 2) : e;
    diag.errors.push(`${source}: ${RENAMED.reduce((m, [re, to]) => m.replace(re, to), rest)}`);
  }
  if (diag.errors.length > 0) {
    throw new ConfigError(diag.errors.length === 1 ? diag.errors[0] : `${diag.errors.length} config errors: ${diag.errors.join('; ')}`, diag.errors);
  }
  config.raw = top;
  config.persistent = persistent;
  return config;
}
