/**
 * Login sessions (spec §3): 160 random bits as 40 hex characters, a TTL (24 h by default) and a
 * sliding expiry: once more than 10% of the TTL has passed, using the session extends it and the
 * caller sends a fresh cookie. Session ids are secrets: never log them.
 */
import { randomBytes } from 'node:crypto';
import type { SessionRecord, Store } from '../storage/store.ts';

export const DEFAULT_SESSION_TTL_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_COOKIE_NAME = 'SyncGatewaySession';

export interface SessionsOptions {
  now?: () => number;
}

export interface SessionLookup {
  session: SessionRecord;
  /** The expiry was extended: send a new Set-Cookie. */
  refreshed: boolean;
}

export class Sessions {
  private readonly store: Store;
  private readonly now: () => number;

  constructor(store: Store, opts: SessionsOptions = {}) {
    this.store = store;
    this.now = opts.now ?? Date.now;
  }

  async create(user: string, ttlMs: number = DEFAULT_SESSION_TTL_MS): Promise<SessionRecord> {
    const session: SessionRecord = { id: randomBytes(20).toString('hex'), user, expires: this.now() + ttlMs, ttlMs };
    await this.store.putSession(session);
    return session;
  }

  /** A live session without touching its expiry (admin reads); expired ones are removed. */
  async get(id: string): Promise<SessionRecord | undefined> {
    const s = await this.store.getSession(id);
    if (!s) return undefined;
    if (s.expires <= this.now()) {
      await this.store.deleteSession(id);
      return undefined;
    }
    return s;
  }

  /** A live session for a request, extended when more than 10% of its TTL has elapsed. */
  async use(id: string): Promise<SessionLookup | undefined> {
    const s = await this.get(id);
    if (!s) return undefined;
    const now = this.now();
    const ttl = s.ttlMs > 0 ? s.ttlMs : DEFAULT_SESSION_TTL_MS;
    if (now + ttl - s.expires > ttl / 10) {
      const session = { ...s, expires: now + ttl };
      await this.store.putSession(session);
      return { session, refreshed: true };
    }
    return { session: s, refreshed: false };
  }

  delete(id: string): Promise<boolean> {
    return this.store.deleteSession(id);
  }

  deleteUser(user: string): Promise<number> {
    return this.store.deleteUserSessions(user);
  }
}

export interface CookieAttributes {
  /** `/<db>` */
  path: string;
  secure: boolean;
  httpOnly: boolean;
}

/** `Name=value; Path=/<db>; Expires=<HTTP date>[; Secure][; HttpOnly]` */
export function sessionCookie(name: string, value: string, expires: number, attrs: CookieAttributes): string {
  let c = `${name}=${value}; Path=${attrs.path}; Expires=${new Date(expires).toUTCString()}`;
  if (attrs.secure) c += '; Secure';
  if (attrs.httpOnly) c += '; HttpOnly';
  return c;
}

/** The cookie that ends a session in the browser (empty value, expiring now). */
export function expiredSessionCookie(name: string, now: number, attrs: CookieAttributes): string {
  return sessionCookie(name, '', now, attrs);
}

/** The value of one cookie in a `Cookie` request header (the first one with that name). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let v = part.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}
