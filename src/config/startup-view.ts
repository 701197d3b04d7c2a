/**
 * `GET /_config` and `PUT /_config` (spec sg3-admin §1.9): the start-up config as Sync Gateway 3.x
 * shows it (`StartupConfig`, redacted: passwords are "xxxxx", a server URL loses its credentials),
 * whichever file kind the gateway started from; and the only settings it changes at run time.
 */
import { HttpError } from '../errors.ts';
import { REDACTED } from './db-config.ts';
import { LOG_LEVELS } from './schema.ts';
import { redactServerUrl } from './server.ts';
import type { GatewayConfig, LogLevel } from './types.ts';

type Obj = Record<string, unknown>;

export function startupConfigView(c: GatewayConfig): Obj {
  const out: Obj = {
    bootstrap: {},
    api: {
      public_interface: c.interface, admin_interface: c.adminInterface, metrics_interface: c.metricsInterface,
      max_connections: c.maxIncomingConnections, compress_responses: c.compressResponses, pretty: c.pretty,
      https: { tls_minimum_version: c.tlsMinimumVersion, ...(c.sslCert ? { tls_cert_path: c.sslCert, tls_key_path: c.sslKey } : {}) },
      ...(c.cors ? { cors: { origin: c.cors.origin, login_origin: c.cors.loginOrigin, headers: c.cors.headers, max_age: c.cors.maxAge } } : {}),
    },
    logging: c.logging.raw,
    auth: { bcrypt_cost: c.bcryptCost },
  };
  const p = c.persistent;
  if (p) {
    const raw = c.raw;
    const b = { ...(raw.bootstrap as Obj) };
    if (b.password) b.password = REDACTED;
    if (typeof b.server === 'string') b.server = redactServerUrl(b.server);
    out.bootstrap = { group_id: p.groupId, config_update_frequency: `${p.configUpdateFrequencyMs / 1000}s`, ...b };
    for (const key of ['database_credentials', 'bucket_credentials']) {
      const m = raw[key] as Record<string, Obj> | undefined;
      if (m) out[key] = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.password ? { ...v, password: REDACTED } : v]));
    }
    if (raw.unsupported) out.unsupported = raw.unsupported;
  }
  return out;
}

const FILE_LOGGERS = ['error', 'warn', 'info', 'debug', 'trace', 'stats'];

/**
 * `PUT /_config`'s body: `{"logging": {"console": {"log_level", "log_keys"}, "<level>": {"enabled"}}}`
 * and nothing else (400 "Unable to configure given options at runtime: ..."). Returns the console
 * settings to apply; the file loggers' `enabled` is accepted, as SG does, and has no runtime switch here.
 */
export function runtimeLogging(body: unknown): { level?: LogLevel; keys?: string[] } {
  const refuse = (why: string): never => { throw new HttpError(400, `Unable to configure given options at runtime: ${why}`); };
  const only = (path: string, v: unknown, allowed: string[]): void => {
    if (v === undefined) return;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) refuse(`${path} must be an object`);
    for (const k of Object.keys(v as Obj)) if (!allowed.includes(k)) refuse(`json: unknown field ${JSON.stringify(k)}`);
  };
  only('the body', body, ['logging']);
  const logging = (body as Obj).logging as Obj | undefined;
  only('logging', logging, ['console', ...FILE_LOGGERS]);
  const consoleCfg = logging?.console as Obj | undefined;
  only('logging.console', consoleCfg, ['log_level', 'log_keys']);
  for (const f of FILE_LOGGERS) {
    only(`logging.${f}`, logging?.[f], ['enabled']);
    const enabled = (logging?.[f] as Obj | undefined)?.enabled;
    if (enabled !== undefined && typeof enabled !== 'boolean') refuse(`logging.${f}.enabled must be true or false`);
  }
  const level = consoleCfg?.log_level;
  if (level !== undefined && (typeof level !== 'string' || !(LOG_LEVELS as readonly string[]).includes(level))) refuse(`unrecognized level: ${String(level)}`);
  const keys = consoleCfg?.log_keys;
  if (keys !== undefined && (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string'))) refuse('logging.console.log_keys must be an array of strings');
  return { level: level as LogLevel | undefined, keys: keys as string[] | undefined };
}
