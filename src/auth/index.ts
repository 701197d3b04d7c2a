/** Access control: principals, access computation, sessions and request authentication. */
import type { Store } from '../storage/store.ts';
import type { AuthenticateOptions } from './authenticate.ts';
import type { LoginLockout } from './lockout.ts';
import { Principals } from './principals.ts';
import { DEFAULT_COOKIE_NAME, Sessions } from './sessions.ts';
import { JwtProviders, type JwtProvidersOptions } from './jwt/providers.ts';
import type { JwtAuthConfig } from './jwt/types.ts';
import { OidcFlow } from './jwt/oidc-flow.ts';

export * from './access.ts';
export * from './authenticate.ts';
export * from './lockout.ts';
export * from './principal.ts';
export * from './principals.ts';
export * from './sessions.ts';
export { JwtProviders } from './jwt/providers.ts';
export { OidcFlow, type FlowRequest } from './jwt/oidc-flow.ts';
export { oidcDiscoveryProblems } from './jwt/discovery.ts';
export type { JwtAuthConfig } from './jwt/types.ts';

/** One database's access-control services and settings, as the HTTP layer needs them. */
export interface DbAuth extends AuthenticateOptions {
  principals: Principals;
  sessions: Sessions;
  cookieName: string;
  cookieSecure: boolean;
  cookieHttpOnly: boolean;
  sendWwwAuthenticate: boolean;
  /** The authorization-code flow, when the database has `oidc` providers. */
  oidcFlow?: OidcFlow;
}

/** The subset of `DatabaseConfig` that access control reads. */
export interface DbAuthConfig extends JwtAuthConfig {
  sessionCookieName: string;
  /** Unset: secure when the listeners serve TLS. */
  sessionCookieSecure?: boolean;
  sessionCookieHttpOnly: boolean;
  sendWwwAuthenticateHeader: boolean;
  allowEmptyPassword: boolean;
  /** The database's name and collections (`collection_access` may name only these; unset: the default one). */
  name?: string;
  collections?: readonly { scope: string; name: string }[];
}

export interface DbAuthOptions {
  bcryptCost: number;
  /** True when the gateway serves HTTPS (the default for `session_cookie_secure`). */
  tls: boolean;
  log?: { info(msg: string): void };
  now?: () => number;
  onAuthFailure?: (kind: 'basic' | 'session' | 'guest' | 'bearer') => void;
  onJwtLogin?: (provider: string, outcome: 'success' | 'failure') => void;
  /** Fetching provider metadata and keys (extra CA, timeouts, re-fetch rate). */
  jwt?: Omit<JwtProvidersOptions, 'log' | 'now'>;
  /** Shared by every database of a gateway (its keys name the database). */
  lockout?: LoginLockout;
}

/** Builds a database's DbAuth. Call `principals.applyConfig(config.users, config.roles)` once after. */
export function createDbAuth(store: Store, config: DbAuthConfig, opts: DbAuthOptions): DbAuth {
  const jwt = config.oidc || config.localJwt ? new JwtProviders(config, { ...opts.jwt, log: opts.log, now: opts.now }) : undefined;
  jwt?.warmUp();
  const principals = new Principals(store, {
    bcryptCost: opts.bcryptCost, allowEmptyPassword: config.allowEmptyPassword, log: opts.log, now: opts.now,
    collectionKeys: (config.collections ?? [{ scope: '_default', name: '_default' }]).map((c) => `${c.scope}.${c.name}`), dbName: config.name,
  });
  const sessions = new Sessions(store, { now: opts.now });
  return {
    jwt,
    oidcFlow: jwt && jwt.oidc.length ? new OidcFlow({ jwt, principals, sessions, fetch: opts.jwt, now: opts.now, log: opts.log, onJwtLogin: opts.onJwtLogin }) : undefined,
    onJwtLogin: opts.onJwtLogin,
    principals,
    sessions,
    cookieName: config.sessionCookieName || DEFAULT_COOKIE_NAME,
    cookieSecure: config.sessionCookieSecure ?? opts.tls,
    cookieHttpOnly: config.sessionCookieHttpOnly,
    sendWwwAuthenticate: config.sendWwwAuthenticateHeader,
    log: opts.log,
    onAuthFailure: opts.onAuthFailure,
    lockout: opts.lockout,
  };
}
