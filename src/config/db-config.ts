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
import { collectionHolder, configuredFunctions, defaultSyncSource, jsSet, scopeChangeProblem } from './collections.ts';

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

export type ConfigFunction = 'sync' | 'import_filter';

/** A collection by its scope and name (`_default`, `_default` when not given). */
export interface CollectionRef { scope: string; name: string }
const DEFAULT_REF: CollectionRef = { scope: '_default', name: '_default' };

/**
 * The source of a collection's sync function or import filter in a config ('' when none): the
 * db-level field for `_default._default` without `scopes`, else the collection's entry. A
 * collection the config does not have is 404 `keyspace db.scope.collection not found`.
 */
export function configFunction(config: Obj, which: ConfigFunction, coll: CollectionRef = DEFAULT_REF): string {
  const holder = collectionHolder(config, coll.scope, coll.name);
  if (!holder) throw keyspaceNotFound(config, coll);
  return typeof holder[which] === 'string' ? holder[which] as string : '';
}

/** A copy of `config` with the collection's function set (a string) or removed (undefined). */
export function withConfigFunction(config: Obj, which: ConfigFunction, source: string | undefined, coll: CollectionRef = DEFAULT_REF): Obj {
  const copy = structuredClone(config) as Obj;
  const holder = collectionHolder(copy, coll.scope, coll.name);
  if (!holder) throw keyspaceNotFound(config, coll);
  if (source === undefined) delete holder[which];
  else holder[which] = source;
  return copy;
}

function keyspaceNotFound(config: Obj, coll: CollectionRef): HttpError {
  return new HttpError(404, `keyspace ${typeof config.name === 'string' ? config.name : 'db'}.${coll.scope}.${coll.name} not found`);
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
  for (const sc of Object.values(isPlainObject(out.scopes) ? out.scopes : {})) {
    const colls = isPlainObject(sc) && isPlainObject(sc.collections) ? sc.collections : {};
    for (const c of Object.values(colls)) if (isPlainObject(c)) { delete c.sync; delete c.import_filter; }
  }
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

/**
 * `include_runtime` with `scopes`: each collection shows the sync function it runs (its own, else
 * its default, see defaultSyncSource), and the db-level default `sync` is left out, since a
 * database-level function beside `scopes` is refused (the output can be sent back as it is).
 * Sync Gateway 3.1 instead shows the collections as stored next to a db-level default `sync`.
 */
export function withRuntimeFunctions(config: Obj): Obj {
  if (!isPlainObject(config.scopes) || Object.keys(config.scopes).length === 0) return config;
  const out = structuredClone(config) as Obj;
  delete out.sync;
  for (const [scope, sc] of Object.entries(out.scopes as Obj)) {
    const colls = isPlainObject(sc) && isPlainObject(sc.collections) ? sc.collections : {};
    for (const [name, c] of Object.entries(colls)) {
      if (!isPlainObject(c)) { colls[name] = { sync: defaultSyncSource(scope, name) }; continue; }
      if (!jsSet(c.sync)) c.sync = defaultSyncSource(scope, name);
    }
  }
  return out;
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
 * Compiles one function: undefined when it compiles, else what is wrong ("(line 2): Unexpected
 * token"). Given by the caller, so config depends on no JavaScript engine of ours.
 */
export type CompileCheck = (source: string) => string | undefined;

/**
 * Every sync function and import filter of the config compiles (SG's `validateJavascriptFunction`),
 * each problem worded as SG's: "sync function error: invalid javascript syntax...", or for a
 * collection's, `collection "airline" sync function error: ...`.
 */
function compileProblems(config: Obj, compile: CompileCheck, which: 'database' | 'collections'): string[] {
  const problems: string[] = [];
  for (const { label, source } of configuredFunctions(config)) {
    if (label.startsWith('collection ') !== (which === 'collections')) continue;
    const detail = compile(source);
    if (detail !== undefined) problems.push(`${label} error: invalid javascript syntax${detail.startsWith('(') ? ' ' : ': '}${detail}`);
  }
  return problems;
}

/**
 * The checks of SG's `DbConfig.validate` that apply here (functions with `compile`; for an update,
 * `validateChanges` against `previous`, the config the database has now), then the DatabaseConfig the database runs
 * with. In persistent mode its storage is the bootstrap server's: a file per bucket in the SQLite
 * directory, or a schema per bucket in PostgreSQL. Throws one 400 naming every problem.
 */
export function runtimeDbConfig(
  name: string, config: Obj, persistent: PersistentConfig | undefined, cwd: string, warnings: string[],
  opts: { compile?: CompileCheck; previous?: Obj } = {},
): DatabaseConfig {
  const { compile = () => undefined, previous } = opts;
  const problems: string[] = [];
  if (!DB_NAME_RE.test(name)) problems.push(`Illegal database name: ${name}`);
  // SG's order: the db-level functions, then the scopes (beside them, the collections' functions).
  problems.push(...compileProblems(config, compile, 'database'));
  const bucket = typeof config.bucket === 'string' && config.bucket !== '' ? config.bucket : name;
  if (persistent && bucket.startsWith('_')) problems.push(`bucket: names starting with "_" are reserved (got ${JSON.stringify(bucket)})`);
  const legacy: Obj = { ...config };
  delete legacy.guest;
  // SG normalises a blank function to "not set" before its other checks.
  if (!jsSet(legacy.sync)) delete legacy.sync;
  if (!jsSet(legacy.import_filter)) delete legacy.import_filter;
  if (isPlainObject(config.guest)) legacy.users = { ...(isPlainObject(config.users) ? config.users : {}), GUEST: config.guest };
  if (persistent) {
    const creds = credentialsFor(persistent, name, bucket);
    legacy.server = persistent.storage.kind === 'sqlite' ? `sqlite:${bucketFile(persistent.storage.dir, bucket)}` : 'postgres://placeholder/x';
    Object.assign(legacy, { username: creds.username, password: creds.password, certpath: creds.certpath, keypath: creds.keypath, cacertpath: creds.cacertpath });
  }
  const errors: string[] = [];
  const built = buildDatabase(name, legacy, { errors, warnings, source: 'config', dbSource: () => 'config', cwd });
  // "config: databases.<db>.revs_limit: The revs_limit ..." → SG's plain message (likewise `scopes`).
  for (const e of errors) problems.push(e.replace(/^config: /, '').replace(/^databases\.[^.]*?\.(revs_limit|scopes): /, ''));
  problems.push(...compileProblems(config, compile, 'collections'));
  if (previous) {
    const changed = scopeChangeProblem(previous, config);
    if (changed) problems.push(changed);
  }
  if (problems.length || !built) throw configProblems(problems.length ? problems : ['invalid database config']);
  if (persistent && persistent.storage.kind === 'postgres') { built.storage = persistent.storage; built.server = persistent.server; }
  built.raw = config;
  return built;
}
