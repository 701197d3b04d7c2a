/**
 * A database's JWT providers (`oidc` and `local_jwt`) and the implicit flow's token check
 * (spec §3.4; SG `auth/auth.go` `AuthenticateUntrustedJWT`): pick the provider from the unverified
 * `iss`/`aud`, verify the signature with that provider's keys (RS/ES/PS only), then `iss`, `aud`,
 * `exp` and `nbf` with a small clock skew, and map the claims to an identity. Tokens are never
 * logged; refusals carry a reason for the log.
 */
import { compactVerify, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { identityFrom, JwtRefusal, type ClaimMapping, type JwtIdentity } from './claims.ts';
import { Discovery, type ProviderMetadata } from './discovery.ts';
import type { FetchOptions } from './http-get.ts';
import { inlineKeys, RemoteKeySet, type KeyLookup } from './keys.ts';
import type { JwtAuthConfig, JwtProviderCommon, LocalJwtSettings, OidcProviderSettings } from './types.ts';

/**
 * Tokens longer than this are refused unread (a real ID token is one or two kilobytes; Node's
 * 16 KiB header limit refuses longer requests with a 400 before they reach us).
 */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** Allowed clock difference for `exp` and `nbf` (go-jose's default leeway). */
export const CLOCK_SKEW_SECS = 60;

export interface JwtProvidersOptions extends FetchOptions {
  /** Shortest wait between JWKS re-fetches caused by an unknown `kid`. */
  jwksCooldownMs?: number;
  /** Wait before retrying a failed discovery. */
  discoveryRetryMs?: number;
  now?: () => number;
  log?: { info(msg: string): void; warn?(msg: string): void };
}

export interface ProviderEntry {
  kind: 'oidc' | 'local';
  name: string;
  settings: JwtProviderCommon;
  mapping: ClaimMapping;
  /** '' disables the audience check (local JWT only). */
  audience: string;
  /** Version of the key set tokens are verified with (0 for inline keys). */
  keysVersion(): number;
}

export interface OidcEntry extends ProviderEntry {
  kind: 'oidc';
  settings: OidcProviderSettings;
  discovery: Discovery;
  keys(): Promise<{ lookup: KeyLookup; algorithms: string[] }>;
}

interface LocalEntry extends ProviderEntry {
  kind: 'local';
  settings: LocalJwtSettings;
  lookup: KeyLookup;
}

export interface VerifiedToken {
  provider: ProviderEntry;
  identity: JwtIdentity;
  claims: JWTPayload;
}

function mappingOf(s: JwtProviderCommon): ClaimMapping {
  const m: ClaimMapping = { name: s.name, issuer: s.issuer };
  for (const k of ['userPrefix', 'usernameClaim', 'rolesClaim', 'channelsClaim'] as const) if (s[k]) m[k] = s[k];
  return m;
}

function audiences(aud: unknown): string[] {
  if (aud === undefined) return [];
  if (typeof aud === 'string') return [aud];
  if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) return aud as string[];
  throw new JwtRefusal('aud must be a string or an array of strings');
}

/** Verified tokens kept so a client re-sending its token does not pay a signature check each time. */
const VERIFIED_CACHE_SIZE = 10_000;
/** Longest a verification is trusted without checking again (a token without exp, or a long one). */
const VERIFIED_CACHE_MAX_MS = 10 * 60_000;

interface CachedVerification { result: VerifiedToken; keysVersion: number; until: number }

export class JwtProviders {
  /**
   * Token → its verification, until the token expires (at most 10 minutes). An entry is void once
   * its provider's key set changed (rotation), so a removed key stops working at the next fetch.
   */
  private readonly verified = new Map<string, CachedVerification>();
  readonly oidc: OidcEntry[] = [];
  readonly local: LocalEntry[] = [];
  readonly defaultOidc?: string;
  private readonly now: () => number;
  private readonly opts: JwtProvidersOptions;

  constructor(config: JwtAuthConfig, opts: JwtProvidersOptions = {}) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    for (const s of Object.values(config.oidc?.providers ?? {})) this.oidc.push(this.oidcEntry(s));
    this.defaultOidc = config.oidc?.defaultProvider;
    for (const s of Object.values(config.localJwt ?? {})) {
      const remote = s.keys ? undefined : new RemoteKeySet(s.jwksUri!, { ...opts, cooldownMs: opts.jwksCooldownMs, now: opts.now });
      const lookup = remote ? remote.find : inlineKeys(s.keys!);
      this.local.push({ kind: 'local', name: s.name, settings: s, mapping: mappingOf(s), audience: s.clientId, lookup, keysVersion: () => remote?.version ?? 0 });
    }
  }

  get configured(): boolean { return this.oidc.length + this.local.length > 0; }

  /** Every configured issuer: a user whose `jwt_issuer` is not one of them loses its JWT grants. */
  hasIssuer(issuer: string): boolean {
    return this.oidc.some((p) => p.settings.issuer === issuer) || this.local.some((p) => p.settings.issuer === issuer);
  }

  oidcProvider(name: string | undefined): OidcEntry | undefined {
    const n = name || this.defaultOidc;
    return n === undefined ? undefined : this.oidc.find((p) => p.name === n);
  }

  /** Fetches each OIDC provider's discovery once at start-up; a failure is one log line (retried on use). */
  warmUp(): void {
    for (const p of this.oidc) {
      p.discovery.metadata().catch((err: Error) => {
        (this.opts.log?.warn ?? this.opts.log?.info)?.call(this.opts.log, `Auth: OIDC provider "${p.name}" is not reachable yet (will retry): ${err.message}`);
      });
    }
  }

  /** A Bearer token from a client (untrusted). Throws JwtRefusal. */
  async verifyUntrusted(token: string): Promise<VerifiedToken> {
    const hit = this.verified.get(token);
    if (hit) {
      const now = this.now();
      const exp = hit.result.claims.exp;
      const expired = typeof exp === 'number' && !(hit.result.provider.kind === 'local' && (hit.result.provider.settings as LocalJwtSettings).skipExpiryCheck)
        && now / 1000 > exp + CLOCK_SKEW_SECS;
      if (!expired && now < hit.until && hit.keysVersion === hit.result.provider.keysVersion()) return hit.result;
      this.verified.delete(token);
    }
    const result = await this.verifyFresh(token);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.clear();
    this.verified.set(token, { result, keysVersion: result.provider.keysVersion(), until: this.now() + VERIFIED_CACHE_MAX_MS });
    return result;
  }

  private async verifyFresh(token: string): Promise<VerifiedToken> {
    if (token.length > MAX_TOKEN_BYTES) throw new JwtRefusal(`token longer than ${MAX_TOKEN_BYTES} bytes`);
    let unverified: JWTPayload;
    try {
      decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (err) {
      throw new JwtRefusal(`token does not parse: ${(err as Error).message}`);
    }
    if (typeof unverified.iss !== 'string' || unverified.iss === '') throw new JwtRefusal('token has no iss');
    const provider = this.select(unverified.iss, audiences(unverified.aud));
    try {
      return await this.verifyWith(provider, token, false);
    } catch (err) {
      if (err instanceof JwtRefusal) err.provider ??= provider.name;
      throw err;
    }
  }

  /**
   * A token for a chosen provider. `fromProvider`: received straight from the provider's token
   * endpoint (callback, refresh), whose signature check `allow_unsigned_provider_tokens` may skip.
   */
  async verifyWith(provider: ProviderEntry, token: string, fromProvider: boolean): Promise<VerifiedToken> {
    if (token.length > MAX_TOKEN_BYTES) throw new JwtRefusal(`token longer than ${MAX_TOKEN_BYTES} bytes`);
    let claims: JWTPayload;
    const unsigned = fromProvider && provider.kind === 'oidc' && (provider as OidcEntry).settings.allowUnsignedProviderTokens;
    if (unsigned) {
      try { claims = decodeJwt(token); } catch (err) { throw new JwtRefusal(`token does not parse: ${(err as Error).message}`); }
    } else {
      const { lookup, algorithms } = provider.kind === 'oidc'
        ? await (provider as OidcEntry).keys()
        : { lookup: (provider as LocalEntry).lookup, algorithms: (provider as LocalEntry).settings.algorithms };
      let payload: Uint8Array;
      try {
        ({ payload } = await compactVerify(token, lookup, { algorithms }));
      } catch (err) {
        if (err instanceof JwtRefusal) throw err;
        throw new JwtRefusal(`signature check failed: ${(err as Error).message}`);
      }
      try {
        claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as JWTPayload;
      } catch {
        throw new JwtRefusal('the token payload is not JSON');
      }
      if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new JwtRefusal('the token payload is not a JSON object');
    }
    this.checkClaims(provider, claims);
    return { provider, identity: identityFrom(provider.mapping, claims), claims };
  }

  /** Spec §3.4 step 2. */
  private select(iss: string, aud: string[]): ProviderEntry {
    if (this.oidc.length === 1 && this.local.length === 0) return this.oidc[0];
    const matches = (p: ProviderEntry) => p.settings.issuer === iss && (p.audience === '' ? p.kind === 'local' : aud.includes(p.audience));
    const found = this.oidc.find(matches) ?? this.local.find(matches);
    if (!found) throw new JwtRefusal(`no provider is configured for issuer ${JSON.stringify(iss)} and this audience`);
    return found;
  }

  private checkClaims(p: ProviderEntry, c: JWTPayload): void {
    if (c.iss !== p.settings.issuer) throw new JwtRefusal(`iss ${JSON.stringify(c.iss)} is not the provider's issuer`);
    const aud = audiences(c.aud);
    if (p.audience !== '' && !aud.includes(p.audience)) throw new JwtRefusal('aud does not name the client_id');
    const now = Math.floor(this.now() / 1000);
    for (const k of ['exp', 'nbf', 'iat'] as const) {
      if (c[k] !== undefined && (typeof c[k] !== 'number' || !Number.isFinite(c[k]))) throw new JwtRefusal(`${k} is not a number`);
    }
    const skipExpiry = p.kind === 'local' && (p.settings as LocalJwtSettings).skipExpiryCheck;
    if (!skipExpiry) {
      if (c.exp === undefined) throw new JwtRefusal('token has no exp');
      if (now > c.exp + CLOCK_SKEW_SECS) throw new JwtRefusal('token is expired');
    }
    if (c.nbf !== undefined && now + CLOCK_SKEW_SECS < c.nbf) throw new JwtRefusal('token is not valid yet (nbf)');
  }

  private oidcEntry(s: OidcProviderSettings): OidcEntry {
    const discovery = new Discovery(s.issuer, s.discoveryUrl, !s.disableCfgValidation, { ...this.opts, retryMs: this.opts.discoveryRetryMs, now: this.opts.now });
    let jwks: { uri: string; set: RemoteKeySet } | undefined;
    const keys = async () => {
      let meta: ProviderMetadata;
      try { meta = await discovery.metadata(); } catch (err) { throw new JwtRefusal((err as Error).message); }
      if (!jwks || jwks.uri !== meta.jwksUri) {
        jwks = { uri: meta.jwksUri, set: new RemoteKeySet(meta.jwksUri, { ...this.opts, cooldownMs: this.opts.jwksCooldownMs, now: this.opts.now }) };
      }
      return { lookup: jwks.set.find, algorithms: meta.algorithms };
    };
    return { kind: 'oidc', name: s.name, settings: s, mapping: mappingOf(s), audience: s.clientId, discovery, keys, keysVersion: () => jwks?.set.version ?? 0 };
  }
}
