/**
 * Keeping secrets and user data out of logs (spec §8): `redaction_level` for user data, and query
 * strings with their passwords and tokens blanked before a request line is written.
 */
import { createHash, randomBytes } from 'node:crypto';

export type RedactionLevel = 'none' | 'partial' | 'full';
export const REDACTION_LEVELS: readonly RedactionLevel[] = ['none', 'partial', 'full'];

/**
 * Wraps one piece of user data (a user name, a doc id, a channel) for a log line:
 * - `none`: as is;
 * - `partial`: tagged `<ud>alice</ud>` (Sync Gateway's tag, so support tooling can strip or hash it);
 * - `full`: the value never reaches the log: `<ud>` + a salted hash `</ud>`. The salt is random per
 *   redactor (so per logger, per process), which keeps lines of one run correlatable ("the same
 *   user") without letting anyone test guesses against the log.
 */
export function redactor(level: RedactionLevel, salt: Buffer = randomBytes(16)): (value: unknown) => string {
  switch (level) {
    case 'none': return (value) => String(value);
    case 'partial': return (value) => `<ud>${String(value)}</ud>`;
    case 'full': return (value) => `<ud>${createHash('sha256').update(salt).update(String(value)).digest('hex').slice(0, 16)}</ud>`;
  }
}

/** Parameter names whose values are secrets: passwords, tokens, keys, session ids, OAuth codes. */
const SECRET_PARAM = /pass|pwd|token|secret|session|auth|signature|^code$|^key$|^api[-_]?key$|^sig$|credential/i;

export const REDACTED = '******';

function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/**
 * A query string (with or without its leading `?`) with the values of password-, token- and
 * key-like parameters replaced by `******`. Everything else is kept byte for byte.
 */
export function sanitizeQuery(query: string): string {
  const lead = query.startsWith('?') ? '?' : '';
  const body = lead ? query.slice(1) : query;
  if (body === '') return query;
  return lead + body.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0 || !SECRET_PARAM.test(decodeName(name))) return pair;
    return `${name}=${REDACTED}`;
  }).join('&');
}

/** A request target (`/db/_session?token=x`) with its query sanitized. */
export function sanitizeRequestTarget(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q) + sanitizeQuery(url.slice(q));
}
