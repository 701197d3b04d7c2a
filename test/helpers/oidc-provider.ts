/**
 * A real OpenID Provider for tests: the `oidc-provider` package (certified, written by others) on a
 * loopback port, with one confidential client, accounts whose claims a test can change, and signing
 * keys it can rotate. `idToken()` walks the authorization-code flow over plain HTTP (the provider's
 * login form, the code exchange) the way a browser and an app back end would.
 */
import http from 'node:http';
import https from 'node:https';
import { Agent, fetch as undiciFetch } from 'undici';
import type { AddressInfo } from 'node:net';
// @ts-expect-error oidc-provider ships no type declarations
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

export interface AccountClaims { email?: string; groups?: unknown; chans?: unknown; [k: string]: unknown }

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Claims by login name; a login not listed gets only `sub` and `email`. */
  accounts: Map<string, AccountClaims>;
  /** Redirect URIs the client may use (set before the first authorization request that uses them). */
  redirectUris: string[];
  /** Replaces the signing key: the JWKS then holds only the new key. */
  rotateKey(): Promise<void>;
  /** Registers one more redirect URI for the client (the gateway's `_oidc_callback`). */
  allowRedirect(uri: string): Promise<void>;
  /**
   * Plays the browser from an authorization URL: the provider's login form (as `login`), then its
   * redirects, up to the first one that leaves the provider. Returns that URL and the cookies set on the way.
   */
  signIn(authorizationUrl: string, login: string): Promise<string>;
  /** An ID token (and refresh token with `offline`) for `login`, through the real code flow. */
  tokens(login: string, opts?: { offline?: boolean }): Promise<{ id_token: string; refresh_token?: string; access_token: string }>;
  idToken(login: string): Promise<string>;
  /** Stops answering (connections refused) / answers again, on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

const HELPER_REDIRECT = 'http://127.0.0.1/helper-callback';

async function signingKey(kid: string) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

/** A cookie jar just big enough for the provider's interaction cookies. */
class Jar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1));
    }
  }
  header(): string { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

export interface OidcProviderOptions {
  port?: number;
  /** Serve HTTPS with this certificate; the helper's own requests trust `ca`. */
  tls?: { key: Buffer; cert: Buffer; ca: Buffer };
  /**
   * The client's `id_token_signed_response_alg` (default RS256). `HS256` makes the provider sign ID
   * tokens with the client secret, which no relying party can check with the provider's JWKS.
   */
  idTokenAlg?: string;
}

export async function startOidcProvider(opts: OidcProviderOptions = {}): Promise<TestOidcProvider> {
  let current: any;
  const handler = (rq: http.IncomingMessage, rs: http.ServerResponse) => current.callback()(rq, rs);
  const server = opts.tls ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, handler) : http.createServer(handler);
  // Node's global fetch cannot be given a CA; undici's (the same client) can.
  const dispatcher = opts.tls ? new Agent({ connect: { ca: opts.tls.ca } }) : undefined;
  const fetch = (url: string | URL, init: RequestInit = {}) => (dispatcher
    ? undiciFetch(url, { ...(init as object), dispatcher } as never) as unknown as Promise<Response>
    : globalThis.fetch(url, init));
  let port = opts.port ?? 0;
  const listen = () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  await listen();
  port = (server.address() as AddressInfo).port;
  const issuer = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const accounts = new Map<string, AccountClaims>();
  const redirectUris = [HELPER_REDIRECT];
  const clientId = 'syncgate';
  const clientSecret = 'a-client-secret-of-sufficient-length-0123456789';
  let generation = 0;
  let key: Record<string, unknown> | undefined;

  const build = async (newKey = true) => {
    if (newKey || !key) key = await signingKey(`key-${++generation}`);
    const p = new Provider(issuer, {
      clients: [{
        client_id: clientId, client_secret: clientSecret, redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        ...(opts.idTokenAlg ? { id_token_signed_response_alg: opts.idTokenAlg } : {}),
      }],
      ...(opts.idTokenAlg ? { enabledJWA: { idTokenSigningAlgValues: ['RS256', opts.idTokenAlg] } } : {}),
      jwks: { keys: [key] },
      pkce: { required: () => false },
      conformIdTokenClaims: false,
      claims: { openid: ['sub'], email: ['email'], sg: ['groups', 'chans', 'name'] },
      scopes: ['openid', 'email', 'sg', 'offline_access'],
      findAccount: async (_ctx: unknown, id: string) => ({
        accountId: id,
        claims: async () => ({ sub: id, email: `${id}@example.com`, ...accounts.get(id) }),
      }),
      // Consent is given in advance: only the login page is shown.
      loadExistingGrant: async (ctx: any) => {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) return ctx.oidc.provider.Grant.find(grantId);
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope('openid email sg offline_access');
        await grant.save();
        return grant;
      },
      features: { devInteractions: { enabled: true } },
      ttl: { IdToken: 3600, AccessToken: 3600, RefreshToken: 86400, Interaction: 600, Grant: 86400, Session: 86400 },
      cookies: { keys: ['test-cookie-key-1'] },
    });
    p.on('server_error', (_ctx: unknown, err: Error) => { console.error('oidc-provider:', err); });
    current = p;
  };
  await build();

  async function signIn(start: string, login: string): Promise<string> {
    const jar = new Jar();
    const go = async (url: string, init: RequestInit = {}) => {
      const res = await fetch(new URL(url, issuer), { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: jar.header() } });
      jar.take(res);
      return res;
    };
    let res = await go(start);
    for (let hops = 0; hops < 10; hops++) {
      const loc = res.headers.get('location');
      if (!loc) throw new Error(`oidc-provider stopped at ${res.status}: ${await res.text()}`);
      if (!new URL(loc, issuer).href.startsWith(issuer)) return loc;
      if (loc.includes('/interaction/')) {
        // The login form, or (prompt=consent) the consent form after it: answer whichever is shown.
        const page = await (await go(loc)).text();
        const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1] ?? 'login';
        res = await go(loc, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ prompt, login, password: 'any' }) });
      } else {
        res = await go(loc);
      }
    }
    throw new Error('too many redirects');
  }

  async function tokens(login: string, o: { offline?: boolean } = {}) {
    const q = new URLSearchParams({
      client_id: clientId, response_type: 'code', redirect_uri: HELPER_REDIRECT, state: 'st', nonce: 'nn',
      scope: `openid email sg${o.offline ? ' offline_access' : ''}`, ...(o.offline ? { prompt: 'consent' } : {}),
    });
    const loc = await signIn(`${issuer}/auth?${q}`, login);
    const code = new URL(loc).searchParams.get('code');
    if (!code) throw new Error(`no code: ${loc}`);
    const tok = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic ' + Buffer.from(`${clientId}:${clientSecret}`).toString('base64') },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: HELPER_REDIRECT }),
    });
    const body = await tok.json() as any;
    if (!body.id_token) throw new Error(`token endpoint: ${JSON.stringify(body)}`);
    return body;
  }

  return {
    issuer, clientId, clientSecret, accounts, redirectUris,
    rotateKey: () => build(true),
    allowRedirect: async (uri) => { redirectUris.push(uri); await build(false); },
    signIn,
    tokens,
    idToken: async (login) => (await tokens(login)).id_token,
    down: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
    up: listen,
    stop: async () => {
      await new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); });
      await dispatcher?.close();
    },
  };
}
