/**
 * Database configs sent over REST (spec sg3-admin §1.2-§1.5): the body's text is sanitised like
 * Sync Gateway's `readSanitizeDbConfigJSON` (env expansion, back-quoted strings), checked against the
 * 3.x `DbConfig` shape, refused with the fields persistent mode forbids, merged (POST), redacted for
 * output, filled with defaults (`include_runtime`), and turned into the DatabaseConfig a database
 * runs with. Every refusal is an HttpError 400 whose reason names the problem.
 */
import { join } from 'node:path';
import { HttpError } from '../errors.ts';
import { buildDatabase, DB_NAME_RE, DEFAULT_LOCAL_DOC_EXPIRY_SECS, DEFAULT_REVS_LIMIT } from './build.ts';
import { EnvExpansionError, expandEnv } from './env.ts';
import { type Diagnostics, isPlainObject, normalizeValue } from './normalize.ts';
import { DB_CONFIG_SHAPE } from './schema3.ts';
import { ConfigSyntaxError, parseConfigJson, setOwn } from './text.ts';
import type { DatabaseConfig, PersistentConfig, StorageCredentials } from './types.ts';

type Obj = Record<string, unknown>;

/** Sync Gateway's `base.RedactedStr`. */
export const REDACTED = 'xxxxx';

/** `validatePersistentDbConfig`: keys a persisted config may not set (credentials come from the start-up file). */
export const PERSISTENT_FORBIDDEN = ['server', 'username', 'password', 'certpath', 'keypath', 'cacertpath', 'users', 'roles'];

/** One 400 for every problem, as SG's MultiError prints them. */
export function configProblems(problems: string[]): HttpError {
  return new HttpError(400, problems.length === 1 ? problems[0] : `${problems.length} errors:\n${problems.join('\n')}`);
}

/** Env expansion (unless turned off), back-quoted strings, strict JSON; 400 on any problem. */
export function parseDbConfigText(text: string, expandEnvVars: boolean): unknown {
  if (text.trim() === '') return {};
  let expanded = text;
  if (expandEnvVars) {
    try {
      expanded = expandEnv(text);
    } catch (err) {
      if (err instanceof EnvExpansionError) throw configProblems(err.problems);
      throw err;
    }
  }
  try {
    return parseConfigJson(expanded);
  } catch (err) {
    if (err instanceof ConfigSyntaxError) throw new HttpError(400, `Bad JSON: ${err.message}`);
    throw err;
  }
}

/**
 * Checks a database config body against the 3.x shape: unknown keys (SG: "JSON Unknown Field"),
 * wrong types, and in persistent mode the forbidden fields. Returns it with canonical key spelling
 * and nulls dropped (a null is an absent field, as Go decodes it). Warnings go to `warnings`.
 */
export function checkDbConfig(value: unknown, persistent: boolean, warnings: string[]): Obj {
  if (!isPlainObject(value)) throw new HttpError(400, 'The database config must be a JSON object');
  const diag: Diagnostics = { errors: [], warnings };
  const out = (normalizeValue(value, DB_CONFIG_SHAPE, '', diag) ?? {}) as Obj;
  const problems = diag.errors.map((e) => {
    const m = /^unknown key "(.*)" at (.*)$/.exec(e);
    return m ? `JSON Unknown Field: json: unknown field ${JSON.stringify(m[1])}${m[2] !== m[1] ? ` (at ${m[2]})` : ''}` : e;
  });
  if (persistent) {
    for (const k of PERSISTENT_FORBIDDEN) {
      if (out[k] !== undefined) problems.push(`Persisted database config does not support customization of the ${JSON.stringify(k)} field`);
    }
  }
  if (problems.length) throw configProblems(problems);
  return out;
}

/**
 * POST `/{db}/_config`: fields in `patch` replace stored ones (even `false` or `0`), absent ones are
 * kept, objects merge key by key, arrays are replaced (SG's mergo merge with override).
 */
export function mergeDbConfig(base: Obj, patch: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(base)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    const cur = out[k];
    setOwn(out, k, isPlainObject(cur) && isPlainObject(v) ? mergeDbConfig(cur, v) : v);
  }
  return out;
}

/** The functions a config holds for the default collection (db level, or `scopes._default.collections._default`). */
export function defaultCollection(config: Obj): Obj | undefined {
  const scopes = config.scopes;
  if (!isPlainObject(scopes)) return undefined;
  const scope = scopes._default;
  const collections = isPlainObject(scope) ? scope.collections : undefined;
  const c = isPlainObject(collections) ? collections._default : undefined;
  return isPlainObject(c) ? c : undefined;
}

export type ConfigFunction = 'sync' | 'import_filter';

/** The source of the sync function or import filter a config sets ('' when none). */
export function configFunction(config: Obj, which: ConfigFunction): string {
  const holder = isPlainObject(config.scopes) ? defaultCollection(config) ?? {} : config;
  return typeof holder[which] === 'string' ? holder[which] as string : '';
}

/** A copy of `config` with the function set (a string) or removed (undefined). */
export function withConfigFunction(config: Obj, which: ConfigFunction, source: string | undefined): Obj {
  const copy = structuredClone(config) as Obj;
  const holder = isPlainObject(copy.scopes) ? defaultCollection(copy) : copy;
  if (!holder) throw new HttpError(404, 'no such collection in the database config');
  if (source === undefined) delete holder[which];
  else holder[which] = source;
  return copy;
}

/** SG's `Redacted`: passwords (db, users, guest, replications) become "xxxxx", remote URLs lose theirs. */
export function redactDbConfig(config: Obj): Obj {
  const out = structuredClone(config) as Obj;
  const hide = (o: unknown, key = 'password') => {
    if (isPlainObject(o) && typeof o[key] === 'string' && o[key] !== '') o[key] = REDACTED;
  };
  hide(out);
  hide(out.guest);
  for (const u of Object.values(isPlainObject(out.users) ? out.users : {})) hide(u);
  for (const r of Object.values(isPlainObject(out.replications) ? out.replications : {})) {
    hide(r);
    if (isPlainObject(r) && typeof r.remote === 'string') r.remote = r.remote.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, `$1:${REDACTED}@`);
  }
  return out;
}

/** `include_javascript=false`: no sync function or import filter, blank event-handler filters. */
export function withoutJavascript(config: Obj): Obj {
  const out = structuredClone(config) as Obj;
  delete out.sync;
  delete out.import_filter;
  const c = defaultCollection(out);
  if (c) { delete c.sync; delete c.import_filter; }
  const eh = out.event_handlers;
  if (isPlainObject(eh)) {
    for (const list of [eh.document_changed, eh.db_state_changed]) {
      if (Array.isArray(list)) for (const e of list) if (isPlainObject(e)) e.filter = '';
    }
  }
  return out;
}

/** SG's `DefaultDbConfig` (CE), onto which `include_runtime` merges the running config. */
export function defaultDbConfig(tls: boolean): Obj {
  return {
    sync: 'function(doc){channel(doc.channels);}',
    revs_limit: DEFAULT_REVS_LIMIT,
    import_docs: false,
    import_backup_old_rev: false,
    allow_empty_password: false,
    cache: {
      rev_cache: { size: 5000, shard_count: 16 },
      channel_cache: {
        max_number: 50000, compact_high_watermark_pct: 80, compact_low_watermark_pct: 60, max_wait_pending: 5000,
        max_num_pending: 10000, max_wait_skipped: 3600000, enable_star_channel: false, max_length: 500, min_length: 50, expiry_seconds: 60,
      },
    },
    offline: false,
    old_rev_expiry_seconds: 300,
    view_query_timeout_secs: 75,
    local_doc_expiry_secs: DEFAULT_LOCAL_DOC_EXPIRY_SECS,
    enable_shared_bucket_access: true,
    session_cookie_secure: tls,
    session_cookie_http_only: false,
    allow_conflicts: true,
    num_index_replicas: 1,
    use_views: false,
    send_www_authenticate_header: true,
    slow_query_warning_threshold: 500,
    delta_sync: { enabled: false, rev_max_age_seconds: 86400 },
    compact_interval_days: 1,
    sgreplicate_enabled: true,
    sgreplicate_websocket_heartbeat_secs: 300,
    serve_insecure_attachment_types: false,
    query_pagination_limit: 5000,
    client_partition_window_secs: 2592000,
    javascript_timeout_secs: 60,
    suspendable: false,
    logging: {},
  };
}

/** SQLite file of a bucket in the bootstrap directory (`/` and friends escaped; `_` prefix is ours). */
export function bucketFile(dir: string, bucket: string): string {
  return join(dir, `${encodeURIComponent(bucket)}.sqlite3`);
}

/** `database_credentials[db]`, else `bucket_credentials[bucket]`, else the bootstrap credentials. */
export function credentialsFor(p: PersistentConfig, db: string, bucket: string): StorageCredentials {
  return Object.prototype.hasOwnProperty.call(p.databaseCredentials, db) ? p.databaseCredentials[db]
    : Object.prototype.hasOwnProperty.call(p.bucketCredentials, bucket) ? p.bucketCredentials[bucket] : p.credentials;
}

/**
 * The checks of SG's `DbConfig.validate` that apply here, then the DatabaseConfig the database runs
 * with. In persistent mode its storage is the bootstrap server's: a file per bucket in the SQLite
 * directory, or a schema per bucket in PostgreSQL. Throws a 400 naming every problem.
 */
export function runtimeDbConfig(name: string, config: Obj, persistent: PersistentConfig | undefined, cwd: string, warnings: string[]): DatabaseConfig {
  const problems: string[] = [];
  if (!DB_NAME_RE.test(name)) problems.push(`Illegal database name: ${name}`);
  const scopes = isPlainObject(config.scopes) ? config.scopes : undefined;
  if (scopes) {
    const names = Object.keys(scopes);
    if (names.length > 1) problems.push(`only one named scope is supported, but had ${names.length}`);
    for (const [s, sc] of Object.entries(scopes)) {
      const colls = isPlainObject(sc) && isPlainObject(sc.collections) ? Object.keys(sc.collections) : [];
      if (colls.length === 0) problems.push(`must specify at least one collection in scope ${s}`);
      else if (s !== '_default' || colls.some((c) => c !== '_default')) problems.push(`named scopes and collections are not supported yet (scope ${s}): use the default collection`);
    }
    if (config.sync !== undefined) problems.push('cannot specify a database-level sync function with named scopes and collections');
    if (config.import_filter !== undefined) problems.push('cannot specify a database-level import filter with named scopes and collections');
  }
  const bucket = typeof config.bucket === 'string' && config.bucket !== '' ? config.bucket : name;
  if (persistent && bucket.startsWith('_')) problems.push(`bucket: names starting with "_" are reserved (got ${JSON.stringify(bucket)})`);
  const legacy: Obj = { ...config };
  delete legacy.scopes;
  delete legacy.guest;
  const sync = configFunction(config, 'sync');
  if (sync.trim() !== '') legacy.sync = sync; else delete legacy.sync;
  if (isPlainObject(config.guest)) legacy.users = { ...(isPlainObject(config.users) ? config.users : {}), GUEST: config.guest };
  if (persistent) {
    const creds = credentialsFor(persistent, name, bucket);
    legacy.server = persistent.storage.kind === 'sqlite' ? `sqlite:${bucketFile(persistent.storage.dir, bucket)}` : 'postgres://placeholder/x';
    Object.assign(legacy, { username: creds.username, password: creds.password, certpath: creds.certpath, keypath: creds.keypath, cacertpath: creds.cacertpath });
  }
  const errors: string[] = [];
  const built = buildDatabase(name, legacy, { errors, warnings, source: 'config', dbSource: () => 'config', cwd });
  // "config: databases.<db>.revs_limit: The revs_limit ..." → SG's plain message.
  for (const e of errors) problems.push(e.replace(/^config: /, '').replace(/^databases\.[^ ]*?\.revs_limit: /, ''));
  if (problems.length || !built) throw configProblems(problems.length ? problems : ['invalid database config']);
  if (persistent && persistent.storage.kind === 'postgres') { built.storage = persistent.storage; built.server = persistent.server; }
  built.raw = config;
  return built;
}
