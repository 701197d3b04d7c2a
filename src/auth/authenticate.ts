/**
 * Who a public-port request acts as (spec §3, `rest/handler.go` `checkAuth`): HTTP Basic, else the
 * session cookie, else GUEST. The admin port does not call this: it is always ADMIN.
 * Nothing logged here contains a password or a session id.
 */
import { HttpError } from '../errors.ts';
import type { Principal, UserPrincipal } from './principal.ts';
import { GUEST_NAME } from './access.ts';
import { disabledGuest, type Principals } from './principals.ts';
import { readCookie, sessionCookie, type Sessions } from './sessions.ts';
import type { LoginLockout } from './lockout.ts';
import { JwtRefusal } from './jwt/claims.ts';
import type { JwtProviders } from './jwt/providers.ts';

export const WWW_AUTHENTICATE = 'Basic realm="Couchbase Sync Gateway"';

/**
 * What authentication reads from a request and may set on its response (the HTTP layer's
 * `RequestContext` is one): auth does not depend on `http/`.
 */
export interface AuthRequest {
  header(name: string): string | undefined;
  setHeader(name: string, value: string): void;
  clientAddress: string;
  db?: { name: string };
  params: Record<string, string>;
}

export interface AuthenticateOptions {
  principals: Principals;
  sessions: Sessions;
  cookieName: string;
  /** `send_www_authenticate_header` (default true). */
  sendWwwAuthenticate: boolean;
  cookieSecure: boolean;
  cookieHttpOnly: boolean;
  /** `ud` (the gateway logger's) redacts user names per `logging.redaction_level`. */
  log?: { info(msg: string): void; ud?(value: string): string };
  /** Counts failed authentications (metrics). */
  onAuthFailure?: (kind: 'basic' | 'session' | 'guest' | 'bearer') => void;
  /** The database's `oidc` and `local_jwt` providers, when it has any. */
  jwt?: JwtProviders;
  /** Counts JWT logins by provider and outcome (metrics). */
  onJwtLogin?: (provider: string, outcome: 'success' | 'failure') => void;
  /** The gateway's login lockout (Basic auth and `POST /_session`); none: every attempt is checked. */
  lockout?: LoginLockout;
}

/**
 * Checks a user's password through the login lockout, when there is one: a locked (user, address)
 * pair fails without bcrypt, and an unknown name costs a decoy bcrypt, so neither the answer nor
 * its timing tells whether the user exists. `POST /_session` uses it too.
 */
export function verifyLogin(opts: AuthenticateOptions, db: string, address: string, name: string, password: string): Promise<UserPrincipal | undefined> {
  const verify = () => opts.principals.verifyPassword(name, password);
  if (!opts.lockout) return verify();
  // "Exists" means "verifyPassword ran bcrypt": an enabled user. Disabled ones get the decoy too.
  return opts.lockout.attempt(`db ${db}`, name, address, password, verify, async () => (await opts.principals.loadUser(name)) !== undefined);
}

/**
 * A 401. With `noWwwAuthenticate` the error mapper must not add `WWW-Authenticate`
 * (`send_www_authenticate_header: false`, or a login failure on `POST /_session`).
 */
export class UnauthorizedError extends HttpError {
  readonly noWwwAuthenticate: boolean;
  constructor(reason: string, sendWwwAuthenticate: boolean) {
    super(401, reason);
    this.noWwwAuthenticate = !sendWwwAuthenticate;
  }
}

/**
 * `Authorization: Basic` credentials. Undefined when absent, another scheme, undecodable, or with an
 * empty user name: Sync Gateway then goes on to the cookie and GUEST, so do we.
 */
export function basicCredentials(header: string | undefined): { name: string; password: string } | undefined {
  const m = header ? /^basic\s+([A-Za-z0-9+/=]*)\s*$/i.exec(header) : null;
  if (!m) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { name: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * The request's principal. `publicPrivileges` is true for endpoints that must work without a login
 * (`GET/POST/DELETE /{db}/_session`): a bad session cookie is then ignored and a disabled GUEST
 * still gets through (as a principal that sees only `!`).
 */
export async function authenticate(ctx: AuthRequest, opts: AuthenticateOptions, publicPrivileges: boolean): Promise<Principal> {
  const user = await authenticateUser(ctx, opts, publicPrivileges);
  // A user whose JWT grants came from an issuer no longer configured loses them (spec §3.1).
  if (user.kind === 'user' && user.jwtIssuer && !opts.jwt?.hasIssuer(user.jwtIssuer)) {
    return (await opts.principals.revokeJwt(user.name)) ?? user;
  }
  return user;
}

/** `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = header ? /^bearer\s+(\S*)\s*$/i.exec(header) : null;
  return m ? m[1] : undefined;
}

/**
 * The implicit flow (spec §3.4): a valid ID token from a configured provider signs its user in
 * (registering it when allowed) and refreshes its JWT grants. Anything else is 401 "Invalid login";
 * the reason is logged, never the token.
 */
export async function authenticateBearer(opts: AuthenticateOptions, jwt: JwtProviders, token: string, db: string, address: string): Promise<UserPrincipal> {
  const verify = async (): Promise<UserPrincipal | undefined> => {
    let provider = '';
    try {
      const verified = await jwt.verifyUntrusted(token);
      provider = verified.provider.name;
      const id = verified.identity;
      const user = await opts.principals.loginWithJwt(id.username, id, verified.provider.settings.register);
      if (!user) throw new JwtRefusal(`no enabled user ${opts.log?.ud ? opts.log.ud(id.username) : JSON.stringify(id.username)} (register is ${verified.provider.settings.register ? 'on' : 'off'})`);
      opts.onJwtLogin?.(provider, 'success');
      return user;
    } catch (err) {
      if (!(err instanceof JwtRefusal)) throw err;
      provider ||= err.provider ?? '';
      opts.log?.info(`Auth: JWT login refused${provider ? ` (provider "${provider}")` : ''}: ${err.message}`);
      opts.onJwtLogin?.(provider || 'unknown', 'failure');
      return undefined;
    }
  };
  // Failed tokens count toward the login lockout like wrong passwords. A bad token names no user
  // that can be trusted, so the pair is (Bearer logins, client address).
  const user = opts.lockout ? await opts.lockout.attempt(`db ${db}`, BEARER_LOCKOUT_NAME, address, '', verify) : await verify();
  if (!user) {
    opts.onAuthFailure?.('bearer');
    throw new UnauthorizedError('Invalid login', false);
  }
  return user;
}

/** The lockout's "user name" for Bearer logins (not a valid principal name, so it meets no user). */
export const BEARER_LOCKOUT_NAME = '(bearer token)';

async function authenticateUser(ctx: AuthRequest, opts: AuthenticateOptions, publicPrivileges: boolean): Promise<Principal> {
  const token = opts.jwt?.configured ? bearerToken(ctx.header('authorization')) : undefined;
  if (token !== undefined && opts.jwt) return authenticateBearer(opts, opts.jwt, token, ctx.db?.name ?? ctx.params.db ?? '', ctx.clientAddress);

  const creds = basicCredentials(ctx.header('authorization'));
  if (creds) {
    const user = await verifyLogin(opts, ctx.db?.name ?? ctx.params.db ?? '', ctx.clientAddress, creds.name, creds.password);
    if (!user) {
      opts.log?.info(`Auth: HTTP auth failed for ${opts.log.ud ? `username="${opts.log.ud(creds.name)}"` : `username=${JSON.stringify(creds.name)}`}`);
      { opts.onAuthFailure?.('basic'); throw new UnauthorizedError('Invalid login', opts.sendWwwAuthenticate); }
    }
    return user;
  }

  const sid = readCookie(ctx.header('cookie'), opts.cookieName);
  if (sid !== undefined && sid !== '') {
    const found = await opts.sessions.use(sid);
    if (!found) {
      if (!publicPrivileges) { opts.onAuthFailure?.('session'); throw new UnauthorizedError('Session Invalid', opts.sendWwwAuthenticate); }
    } else {
      if (found.refreshed) {
        ctx.setHeader('Set-Cookie', sessionCookie(opts.cookieName, sid, found.session.expires, {
          path: `/${ctx.db?.name ?? ctx.params.db}`, secure: opts.cookieSecure, httpOnly: opts.cookieHttpOnly,
        }));
      }
      // A disabled or deleted user is treated as no user: fall through to GUEST.
      const user = found.session.user === GUEST_NAME ? undefined : await opts.principals.loadUser(found.session.user);
      if (user) return user;
    }
  }

  const guest = await opts.principals.loadUser(GUEST_NAME);
  if (guest) return guest;
  if (publicPrivileges) return disabledGuest();
  opts.onAuthFailure?.('guest');
  throw new UnauthorizedError('Login required', opts.sendWwwAuthenticate);
}

/**
 * Recomputes a request's principal (for `ctx.reloadPrincipal`: live feeds call it when grants
 * change). Undefined once the user is deleted or disabled; the admin stays the admin.
 */
export function principalReloader(principal: Principal, principals: Principals): () => Promise<Principal | undefined> {
  if (principal.kind === 'admin') return async () => principal;
  const name = principal.name;
  return () => principals.loadUser(name);
}
