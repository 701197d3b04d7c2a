/**
 * The OpenID Connect authorization-code flow (spec §3.7; SG `rest/oidc_api.go`): the provider's
 * authorization URL with a `state` cookie against CSRF, the code exchange and refresh at its token
 * endpoint (client secret = `validation_key`), then the same login as a Bearer token, plus a
 * session whose lifetime follows the ID token. The HTTP routes (`src/http/routes/oidc.ts`) only
 * carry parameters in and answers out; tokens and keys stay here.
 */
import { randomBytes } from 'node:crypto';
import { HttpError } from '../../errors.ts';
import type { Principals } from '../principals.ts';
import type { Sessions } from '../sessions.ts';
import type { UserPrincipal } from '../principal.ts';
import { JwtRefusal } from './claims.ts';
import { postForm, type FetchOptions } from './http-get.ts';
import type { JwtProviders, OidcEntry } from './providers.ts';

export const STATE_COOKIE = 'sg-oidc-state';
const STATE_MAX_AGE_SECS = 300;

export interface OidcFlowDeps {
  jwt: JwtProviders;
  principals: Principals;
  sessions: Sessions;
  fetch?: FetchOptions;
  now?: () => number;
  log?: { info(msg: string): void };
  onJwtLogin?: (provider: string, outcome: 'success' | 'failure') => void;
}

/** What the route needs to know about the request. */
export interface FlowRequest {
  db: string;
  /** `<scheme>://<Host header>`, for the default callback URL. */
  origin: string;
  secure: boolean;
}

export interface Redirect {
  url: string;
  /** `Set-Cookie` for the state, unless `disable_callback_state`. */
  stateCookie?: string;
}

export interface FlowLogin {
  /** The callback's JSON answer. */
  body: Record<string, unknown>;
  user: UserPrincipal;
  /** A new session, unless `disable_session`. */
  session?: { id: string; expires: number };
}

interface TokenResponse { id_token?: unknown; refresh_token?: unknown; access_token?: unknown; token_type?: unknown; expires_in?: unknown }

export class OidcFlow {
  private readonly d: OidcFlowDeps;
  private readonly now: () => number;

  constructor(deps: OidcFlowDeps) {
    this.d = deps;
    this.now = deps.now ?? Date.now;
  }

  /** The provider named, or the default one; 400 as Sync Gateway when there is none. */
  provider(name: string | undefined, db: string): OidcEntry {
    const p = this.d.jwt.oidcProvider(name || undefined);
    if (!p) throw new HttpError(400, `OpenID Connect not configured for database ${db}`);
    return p;
  }

  callbackUrl(p: OidcEntry, r: FlowRequest): string {
    const base = p.settings.callbackUrl || `${r.origin}/${r.db}/_oidc_callback`;
    if (p.name === this.d.jwt.defaultOidc) return base;
    return `${base}${base.includes('?') ? '&' : '?'}provider=${encodeURIComponent(p.name)}`;
  }

  /** `_oidc` and `_oidc_challenge`: where to send the browser. */
  async authorization(p: OidcEntry, r: FlowRequest, offline: boolean): Promise<Redirect> {
    const meta = await this.metadata(p);
    if (!meta.authorizationEndpoint) throw new HttpError(500, `OpenID Connect provider ${p.name} has no authorization endpoint`);
    const url = new URL(meta.authorizationEndpoint);
    url.searchParams.set('client_id', p.settings.clientId);
    url.searchParams.set('redirect_uri', this.callbackUrl(p, r));
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('scope', p.settings.scope.join(' '));
    if (offline) { url.searchParams.set('access_type', 'offline'); url.searchParams.set('prompt', 'consent'); }
    const out: Redirect = { url: '' };
    if (!p.settings.disableCallbackState) {
      const state = randomBytes(16).toString('base64url');
      url.searchParams.set('state', state);
      out.stateCookie = `${STATE_COOKIE}=${state}; Path=/${r.db}; Max-Age=${STATE_MAX_AGE_SECS}; HttpOnly${r.secure ? '; Secure' : ''}`;
    }
    out.url = url.toString();
    return out;
  }

  /** The cookie that clears the state once used. */
  clearStateCookie(r: FlowRequest): string {
    return `${STATE_COOKIE}=; Path=/${r.db}; Max-Age=0; HttpOnly${r.secure ? '; Secure' : ''}`;
  }

  /** `_oidc_callback` after its parameter checks: exchange the code, sign the user in. */
  async callback(p: OidcEntry, r: FlowRequest, code: string): Promise<FlowLogin> {
    const tokens = await this.tokenRequest(p, { grant_type: 'authorization_code', code, redirect_uri: this.callbackUrl(p, r) }, 'Failed to exchange token');
    return this.login(p, tokens, true);
  }

  /** `_oidc_refresh`. */
  async refresh(p: OidcEntry, refreshToken: string): Promise<FlowLogin> {
    const tokens = await this.tokenRequest(p, { grant_type: 'refresh_token', refresh_token: refreshToken }, 'Unable to refresh token.');
    return this.login(p, tokens, false);
  }

  private async metadata(p: OidcEntry) {
    try {
      return await p.discovery.metadata();
    } catch (err) {
      throw new HttpError(500, `Unable to obtain client for provider ${p.name}: ${(err as Error).message}`);
    }
  }

  private async tokenRequest(p: OidcEntry, form: Record<string, string>, failure: string): Promise<TokenResponse> {
    const meta = await this.metadata(p);
    if (!meta.tokenEndpoint) throw new HttpError(500, `${failure}: the provider has no token endpoint`);
    const secret = `${encodeURIComponent(p.settings.clientId)}:${encodeURIComponent(p.settings.validationKey ?? '')}`;
    let res: { status: number; body: unknown };
    try {
      res = await postForm(meta.tokenEndpoint, form, { authorization: `Basic ${Buffer.from(secret).toString('base64')}` }, this.d.fetch);
    } catch (err) {
      throw new HttpError(500, `${failure}: ${(err as Error).message}`);
    }
    const body = (typeof res.body === 'object' && res.body !== null ? res.body : {}) as TokenResponse & { error?: unknown };
    if (res.status !== 200) {
      this.d.log?.info(`Auth: OIDC token request to provider "${p.name}" failed: HTTP ${res.status} ${typeof body.error === 'string' ? body.error : ''}`);
      throw new HttpError(500, failure === 'Unable to refresh token.' ? failure : `${failure}: HTTP ${res.status}`);
    }
    if (typeof body.id_token !== 'string' || !body.id_token) throw new HttpError(500, 'No id_token in the token response');
    return body;
  }

  private async login(p: OidcEntry, tokens: TokenResponse, withRefreshToken: boolean): Promise<FlowLogin> {
    const idToken = tokens.id_token as string;
    let user: UserPrincipal | undefined;
    let exp: number | undefined;
    try {
      const verified = await this.d.jwt.verifyWith(p, idToken, true);
      exp = typeof verified.claims.exp === 'number' ? verified.claims.exp : undefined;
      user = await this.d.principals.loginWithJwt(verified.identity.username, verified.identity, p.settings.register);
      if (!user) throw new JwtRefusal('no enabled user for this token, and register is off');
    } catch (err) {
      if (!(err instanceof JwtRefusal)) throw err;
      this.d.log?.info(`Auth: OIDC login with provider "${p.name}" refused: ${err.message}`);
      this.d.onJwtLogin?.(p.name, 'failure');
      throw new HttpError(401, 'Invalid login');
    }
    this.d.onJwtLogin?.(p.name, 'success');
    const out: FlowLogin = { user, body: { id_token: idToken } };
    if (withRefreshToken && typeof tokens.refresh_token === 'string') out.body.refresh_token = tokens.refresh_token;
    if (!p.settings.disableSession) {
      const ttlMs = Math.max(1000, (exp ?? this.now() / 1000 + 86_400) * 1000 - this.now());
      const s = await this.d.sessions.create(user.name, ttlMs);
      out.session = { id: s.id, expires: s.expires };
      out.body.session_id = s.id;
    }
    out.body.name = user.name;
    if (p.settings.includeAccess) {
      if (typeof tokens.access_token === 'string') out.body.access_token = tokens.access_token;
      if (typeof tokens.token_type === 'string') out.body.token_type = tokens.token_type;
      if (typeof tokens.expires_in === 'number') out.body.expires_in = tokens.expires_in;
    }
    return out;
  }
}
