/**
 * Loads Sync Gateway 2.x legacy JSON config files (spec §1.1): back-quoted strings, case-insensitive
 * keys, unknown keys fatal, known-but-unimplemented keys warned about, several files merged.
 */
import { readFileSync } from 'node:fs';
import { buildGatewayConfig, type BuildContext } from './build.ts';
import { buildBootstrapConfig } from './bootstrap.ts';
import { EnvExpansionError, expandEnv } from './env.ts';
import { BOOTSTRAP_ONLY_KEYS } from './schema3.ts';
import { type Diagnostics, isPlainObject, normalizeValue } from './normalize.ts';
import { CONFIG_SHAPE } from './schema.ts';
import { ConfigSyntaxError, lineAndColumn, parseConfigJson, setOwn } from './text.ts';
import { ConfigError, type GatewayConfig } from './types.ts';

export { ConfigError } from './types.ts';
export type {
  CollectionConfig, CorsConfig, DatabaseConfig, EventHandlersConfig, EventDelivery, GatewayConfig, LoggingConfig, LogLevel, RoleConfig, StorageSpec, TlsVersion, UserConfig,
  WebhookConfig,
} from './types.ts';
export { SERVER_SCHEMES, acceptedServerSchemes, parseServer, type ServerScheme } from './server.ts';
export { convertBackQuotedStrings } from './text.ts';
export type { PersistentConfig, StorageCredentials } from './types.ts';
export { parseGoDuration } from './bootstrap.ts';
export { EnvExpansionError, expandEnv } from './env.ts';
export { defaultSyncSource } from './collections.ts';

type Obj = Record<string, unknown>;

interface ConfigPart { source: string; top: Obj }

function fail(errors: string[]): never {
  const message = errors.length === 1 ? errors[0] : `${errors.length} config errors: ${errors.join('; ')}`;
  throw new ConfigError(message, errors);
}

/** Schema check of one parsed file; errors are prefixed with the source, warnings kept as-is. */
function checkPart(value: unknown, source: string, diag: Diagnostics): ConfigPart {
  if (!isPlainObject(value)) {
    diag.errors.push(`${source}: the config file must contain a JSON object`);
    return { source, top: {} };
  }
  const local: Diagnostics = { errors: [], warnings: diag.warnings };
  const top = (normalizeValue(value, CONFIG_SHAPE, '', local) ?? {}) as Obj;
  for (const e of local.errors) diag.errors.push(`${source}: ${e}`);
  return { source, top };
}

function parseText(text: string, source: string): unknown {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return parseConfigJson(text);
  } catch (err) {
    if (!(err instanceof ConfigSyntaxError)) throw err;
    const { line, column } = lineAndColumn(text, err.offset);
    throw new ConfigError(`${source}: invalid JSON at line ${line}, column ${column}: ${err.message}`);
  }
}

/**
 * Merges files like SG's `ServerConfig.MergeWith`: databases are combined and must not share a
 * name; the deprecated `log` lists are concatenated; for any other key the first file that sets it wins.
 */
function build(parts: ConfigPart[], diag: Diagnostics): GatewayConfig {
  const top: Obj = {};
  const databases: Obj = {};
  const dbSources = new Map<string, string>();
  for (const { source, top: t } of parts) {
    for (const [key, value] of Object.entries(t)) {
      if (key === 'databases') {
        for (const [name, db] of Object.entries(value as Obj)) {
          if (dbSources.has(name)) {
            diag.errors.push(`${source}: databases.${name}: Database "${name}" already specified earlier (in ${dbSources.get(name)})`);
            continue;
          }
          dbSources.set(name, source);
          setOwn(databases, name, db);
        }
      } else if (key === 'log' && Array.isArray(top.log)) {
        top.log = [...top.log, ...(value as unknown[])];
      } else if (!Object.prototype.hasOwnProperty.call(top, key)) {
        setOwn(top, key, value);
      }
    }
  }
  if (parts.some((p) => p.top.databases !== undefined)) top.databases = databases;
  const ctx: BuildContext = {
    errors: diag.errors,
    warnings: diag.warnings,
    source: parts.map((p) => p.source).join(', '),
    dbSource: (name) => dbSources.get(name) ?? parts[0]?.source ?? 'config',
    cwd: process.cwd(),
  };
  const config = buildGatewayConfig(top, ctx);
  if (diag.errors.length > 0) fail(diag.errors);
  return config;
}

/**
 * True when a parsed file is a 3.x start-up file: it has a key only those have (`bootstrap`, `api`,
 * ...). A 2.x file never does, so both kinds are told apart by their keys alone.
 */
export function isBootstrapConfig(value: unknown): boolean {
  if (!isPlainObject(value)) return false;
  const lower = new Set(Object.keys(value).map((k) => k.toLowerCase()));
  return BOOTSTRAP_ONLY_KEYS.some((k) => lower.has(k));
}

/** A 3.x start-up file: env expansion on the text (it may build any JSON), then the 3.x schema. */
function parseBootstrapText(text: string, source: string, env: NodeJS.ProcessEnv): GatewayConfig {
  let expanded: string;
  try {
    expanded = expandEnv(text, env);
  } catch (err) {
    if (!(err instanceof EnvExpansionError)) throw err;
    throw new ConfigError(`${source}: ${err.problems.join('; ')}`, err.problems.map((p) => `${source}: ${p}`));
  }
  const value = parseText(expanded, source);
  const legacy = Object.keys(value as object).filter((k) => !isBootstrapKey(k));
  if (legacy.some((k) => k.toLowerCase() === 'databases')) {
    throw new ConfigError(`${source}: a 3.x start-up file (with ${Object.keys(value as object).filter(isBootstrapKey).join(', ')}) cannot hold "databases": create databases with PUT /{db}/ on the admin port, or use a 2.x file`);
  }
  return buildBootstrapConfig(value, source);
}

const isBootstrapKey = (k: string) => BOOTSTRAP_ONLY_KEYS.includes(k.toLowerCase());

/** The file's kind by its keys, looking past `$VAR`s that make the raw text invalid JSON. */
function looksLikeBootstrap(text: string, env: NodeJS.ProcessEnv): boolean {
  try {
    return isBootstrapConfig(parseConfigJson(text));
  } catch {
    try {
      return isBootstrapConfig(parseConfigJson(expandEnv(text, env)));
    } catch {
      // Not JSON even after expansion (or a variable is unset): a `"bootstrap":` key says 3.x, so the
      // error that follows speaks of the right kind of file (names such as "auth" may be nested in 2.x).
      return /"bootstrap"\s*:/i.test(text);
    }
  }
}

/** Parses and validates one config document already in memory (`source` names it in messages). */
export function parseConfigText(text: string, source: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (looksLikeBootstrap(text, env)) return parseBootstrapText(text, source, env);
  const diag: Diagnostics = { errors: [], warnings: [] };
  return build([checkPart(parseText(text, source), source, diag)], diag);
}

/** Validates a config given as a JS value (e.g. a REST request body wrapped as `{databases:{…}}`). */
export function configFromObject(value: unknown, source: string): GatewayConfig {
  const diag: Diagnostics = { errors: [], warnings: [] };
  return build([checkPart(value, source, diag)], diag);
}

/** Reads, validates and merges config files. Throws ConfigError (one line each) on any problem. */
export function loadConfigFiles(paths: string[]): GatewayConfig {
  if (paths.length === 0) throw new ConfigError('no config file given');
  const diag: Diagnostics = { errors: [], warnings: [] };
  const parts: ConfigPart[] = [];
  for (const path of paths) {
    if (/^https?:\/\//i.test(path)) throw new ConfigError(`Error reading config file ${path}: loading a config from a URL is not supported`);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new ConfigError(`Error reading config file ${path}: ${e.code === 'ENOENT' ? 'no such file' : e.code ?? e.message}`);
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (looksLikeBootstrap(text, process.env)) {
      if (paths.length > 1) throw new ConfigError(`${path}: a 3.x start-up file must be the only config file (got ${paths.length})`);
      return parseBootstrapText(text, path, process.env);
    }
    parts.push(checkPart(parseText(text, path), path, diag));
  }
  return build(parts, diag);
}

/**
 * The config used with no config file: database "db" stored in ./data/db.sqlite3 with an open
 * GUEST user, listeners on the usual ports.
 */
export function defaultConfig(): GatewayConfig {
  return configFromObject({
    databases: {
      db: { server: 'sqlite:data/db.sqlite3', users: { GUEST: { disabled: false, admin_channels: ['*'], admin_roles: [] } } },
    },
  }, 'default config');
}
