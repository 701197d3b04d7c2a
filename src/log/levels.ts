/**
 * Sync Gateway's log levels and log keys (spec §8): the vocabulary shared by the console filter,
 * the per-level files and the admin `/_logging` endpoint.
 */
export type LogLevel = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export type LineLevel = Exclude<LogLevel, 'none'>;

export const LOG_LEVELS: readonly LogLevel[] = ['none', 'error', 'warn', 'info', 'debug', 'trace'];
export const RANK: Readonly<Record<LogLevel, number>> = { none: 0, error: 1, warn: 2, info: 3, debug: 4, trace: 5 };
export const TAG: Readonly<Record<LineLevel, string>> = { error: 'ERR', warn: 'WRN', info: 'INF', debug: 'DBG', trace: 'TRC' };

/** Sync Gateway's log keys (2.x, plus the 3.x additions), in their canonical spelling. `HTTP+` is `HTTP` at debug. */
export const LOG_KEYS: readonly string[] = [
  '*', 'Admin', 'Access', 'Auth', 'Bucket', 'Cache', 'Changes', 'SGCluster', 'CRUD', 'DCP', 'Events', 'gocb',
  'HTTP', 'Import', 'Javascript', 'Migrate', 'Query', 'Replicate', 'Sync', 'SyncMsg', 'WS', 'WSFrame',
  'Config', 'Diagnostic', 'VV', 'Walrus',
];

const BY_LOWER = new Map(LOG_KEYS.map((k) => [k.toLowerCase(), k]));

export function isLogLevel(v: unknown): v is LogLevel {
  return typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
}

/** A known key in canonical spelling, ignoring case and a `+` suffix; undefined for anything else. */
export function canonicalKey(key: string): string | undefined {
  const base = key.endsWith('+') ? key.slice(0, -1) : key;
  return BY_LOWER.get(base.toLowerCase());
}

/**
 * The key of a message: the word before its first `: ` (`CRUD: Opened ...` → `CRUD`), when that word
 * is a known key. Messages without one have no key and are filtered by level only.
 */
export function messageKey(msg: string): { key: string; raw: string } | undefined {
  const i = msg.indexOf(': ');
  if (i <= 0 || i > 12) return undefined; // longest key is `Diagnostic+`
  const raw = msg.slice(0, i);
  const key = canonicalKey(raw);
  return key === undefined || key === '*' ? undefined : { key, raw };
}
