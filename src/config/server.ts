/**
 * `databases.<db>.server`: which storage a database uses. SG takes a Couchbase URL or `walrus:`;
 * Syncgate maps the URL scheme onto its own backends. To add a backend (e.g. PostgreSQL), add a
 * StorageSpec variant and one entry to SERVER_SCHEMES.
 */
import { isAbsolute, resolve } from 'node:path';

export type StorageSpec = { kind: 'sqlite'; path: string } | { kind: 'memory' };

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
];

export const DEFAULT_SERVER = 'walrus:';

/** "sqlite:<path>, memory:, walrus:" */
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
    if (lower.startsWith(s.scheme)) return s.parse(server.slice(s.scheme.length), cwd);
  }
  return `unsupported server "${redactServerUrl(server)}"; accepted schemes: ${acceptedServerSchemes()}`;
}
