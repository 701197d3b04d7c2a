/**
 * `databases.<db>.server`: which storage a database uses. SG takes a Couchbase URL or `walrus:`;
 * Syncgate maps the URL scheme onto its own backends: SQLite, memory, or PostgreSQL (shared by
 * several nodes). `couchbase://` and `couchbases://` are refused with the list of accepted schemes.
 */
import { isAbsolute, resolve } from 'node:path';

/**
 * A PostgreSQL server shared by every Syncgate node that names it. Credentials from the URL are
 * kept here; the database config's `username`/`password` take precedence over them.
 */
export interface PostgresSpec {
  kind: 'postgres';
  host: string;
  port: number;
  /** The PostgreSQL database (the URL path). */
  database: string;
  username?: string;
  password?: string;
  /** `?sslmode=`: only `disable`, `require` (TLS without verifying the server) and `verify-full`. */
  sslmode?: 'disable' | 'require' | 'verify-full';
}

export type StorageSpec = { kind: 'sqlite'; path: string } | { kind: 'memory' } | PostgresSpec;

export interface ServerScheme {
  /** Lower-case scheme including the colon, e.g. "sqlite:". */
  readonly scheme: string;
  /** How it is written in messages, e.g. "sqlite:<path>". */
  readonly usage: string;
  /** Turns the text after the scheme into a storage spec; a string return is an error message. */
  parse(rest: string, cwd: string): StorageSpec | string;
}

export const SERVER_SCHEMES: readonly ServerScheme[] = [
  {
    scheme: 'sqlite:',
    usage: 'sqlite:<path>',
    parse(rest, cwd) {
      // Accept "sqlite:rel/x.db", "sqlite:/abs/x.db" and the URL-ish "sqlite:///abs/x.db".
      const path = rest.startsWith('//') ? rest.slice(2) : rest;
      if (path === '') return 'sqlite: needs a file path, e.g. sqlite:data/db.sqlite3';
      return { kind: 'sqlite', path: isAbsolute(path) ? path : resolve(cwd, path) };
    },
  },
  { scheme: 'memory:', usage: 'memory:', parse: () => ({ kind: 'memory' }) },
  // SG's walrus: is its in-memory test bucket (`walrus:<dir>` persists in SG; here it is always in memory).
  { scheme: 'walrus:', usage: 'walrus:', parse: () => ({ kind: 'memory' }) },
  { scheme: 'postgres://', usage: 'postgres://host:port/dbname', parse: (rest) => parsePostgres(rest) },
  { scheme: 'postgresql://', usage: 'postgresql://host:port/dbname', parse: (rest) => parsePostgres(rest) },
];

export const DEFAULT_SERVER = 'walrus:';

const SSL_MODES = ['disable', 'require', 'verify-full'] as const;

/** `user:password@host:port/dbname?sslmode=...` (the text after `postgres://`). */
function parsePostgres(rest: string): PostgresSpec | string {
  let url: URL;
  try {
    url = new URL(`postgres://${rest}`);
  } catch {
    return 'is not a valid URL; expected postgres://host:port/dbname';
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') return 'needs a host, e.g. postgres://db.example.com:5432/syncgate';
  const port = url.port === '' ? 5432 : Number(url.port);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) return 'needs the PostgreSQL database name as its path, e.g. postgres://localhost:5432/syncgate';
  const spec: PostgresSpec = { kind: 'postgres', host, port, database };
  if (url.username) spec.username = decodeURIComponent(url.username);
  if (url.password) spec.password = decodeURIComponent(url.password);
  for (const [k, v] of url.searchParams) {
    if (k !== 'sslmode') return `unknown URL parameter "${k}" (only sslmode is accepted)`;
    if (!(SSL_MODES as readonly string[]).includes(v)) return `sslmode must be one of ${SSL_MODES.join(', ')}`;
    spec.sslmode = v as PostgresSpec['sslmode'];
  }
  return spec;
}

/** "sqlite:<path>, memory:, walrus:, postgres://host:port/dbname, ..." */
export function acceptedServerSchemes(): string {
  return SERVER_SCHEMES.map((s) => s.usage).join(', ');
}

/** Hides credentials embedded in a URL ("couchbase://user:pw@host" → "couchbase://***@host"). */
export function redactServerUrl(server: string): string {
  return server.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, '$1***@');
}

/** Parses a server string; a string return is an error message (without any credential). */
export function parseServer(server: string, cwd: string = process.cwd()): StorageSpec | string {
  const lower = server.toLowerCase();
  for (const s of SERVER_SCHEMES) {
    if (!lower.startsWith(s.scheme)) continue;
    const spec = s.parse(server.slice(s.scheme.length), cwd);
    // Parse errors of URLs never echo the URL itself: it may hold a password.
    return typeof spec === 'string' && s.scheme.endsWith('//') ? `${redactServerUrl(server)}: ${spec}` : spec;
  }
  return `unsupported server "${redactServerUrl(server)}"; accepted schemes: ${acceptedServerSchemes()}`;
}
