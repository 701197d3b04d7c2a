/**
 * `oidc` and `local_jwt` database keys (spec §3.2, §3.5; Sync Gateway `auth/oidc.go` `OIDCOptions`,
 * `auth/jwt.go` `LocalJWTAuthConfig`): their shape for the schema, and their validation into the
 * provider configs access control reads. Keys are checked for shape here (public keys only);
 * `src/auth/jwt/` imports them.
 */
import type { Fields } from './schema.ts';

/** Signing algorithms Sync Gateway accepts: never HS* (a shared secret) nor `none`. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const;

export interface JwtProviderCommonConfig {
  name: string;
  issuer: string;
  /** Expected audience. Local JWT: '' turns the audience check off. */
  clientId: string;
  register: boolean;
  userPrefix?: string;
  usernameClaim?: string;
  rolesClaim?: string;
  channelsClaim?: string;
  disableSession: boolean;
}

export interface OidcProviderConfig extends JwtProviderCommonConfig {
  validationKey?: string;
  callbackUrl?: string;
  scope: string[];
  includeAccess: boolean;
  discoveryUrl?: string;
  disableCfgValidation: boolean;
  disableCallbackState: boolean;
  allowUnsignedProviderTokens: boolean;
}

export interface OidcConfig {
  defaultProvider?: string;
  providers: Record<string, OidcProviderConfig>;
}

export interface LocalJwtProviderConfig extends JwtProviderCommonConfig {
  algorithms: string[];
  /** Inline public JWKs, or */
  keys?: Record<string, unknown>[];
  /** a remote JWKS. */
  jwksUri?: string;
  skipExpiryCheck: boolean;
}

type Obj = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const bool = (v: unknown): boolean => v === true;

/** JWK members that only a private (or symmetric) key has. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const CURVES = ['P-256', 'P-384', 'P-521'];

function common(name: string, p: Obj): JwtProviderCommonConfig {
  const out: JwtProviderCommonConfig = {
    name, issuer: str(p.issuer) ?? '', clientId: str(p.client_id) ?? '', register: bool(p.register), disableSession: bool(p.disable_session),
  };
  if (str(p.user_prefix)) out.userPrefix = str(p.user_prefix);
  if (str(p.username_claim)) out.usernameClaim = str(p.username_claim);
  if (str(p.roles_claim)) out.rolesClaim = str(p.roles_claim);
  if (str(p.channels_claim)) out.channelsClaim = str(p.channels_claim);
  return out;
}

/** `databases.<db>.oidc`. Providers lacking `issuer` or `client_id` are skipped with a warning, as in SG. */
export function buildOidc(raw: Obj, path: string, err: (m: string) => void, warn: (m: string) => void): OidcConfig | undefined {
  const providers: Record<string, OidcProviderConfig> = {};
  for (const [name, value] of Object.entries((raw.providers ?? {}) as Record<string, Obj>)) {
    const p = `${path}.providers.${name}`;
    if (name.includes('_')) { err(`${p}: OpenID Connect provider names cannot contain underscore: ${name}`); continue; }
    const c = common(name, value);
    if (!c.issuer || !c.clientId) { warn(`${p}: issuer and client_id are required; the provider is skipped`); continue; }
    if (!str(value.validation_key)) warn(`${p}.validation_key is not set: the authorization-code flow (_oidc_callback) cannot exchange codes`);
    const cfg: OidcProviderConfig = {
      ...c, scope: Array.isArray(value.scope) && value.scope.length ? (value.scope as string[]) : ['openid', 'email'],
      includeAccess: bool(value.include_access), disableCfgValidation: bool(value.disable_cfg_validation),
      disableCallbackState: bool(value.disable_callback_state), allowUnsignedProviderTokens: bool(value.allow_unsigned_provider_tokens),
    };
    for (const [k, f] of [['validation_key', 'validationKey'], ['callback_url', 'callbackUrl'], ['discovery_url', 'discoveryUrl']] as const) {
      if (str(value[k])) cfg[f] = str(value[k]);
    }
    providers[name] = cfg;
  }
  if (Object.keys(providers).length === 0) { err(`${path}.providers: OpenID Connect defined in config, but no valid providers specified`); return undefined; }
  const out: OidcConfig = { providers };
  const def = str(raw.default_provider);
  if (def) {
    if (!providers[def]) { err(`${path}.default_provider: "${def}" is not one of the providers`); return undefined; }
    out.defaultProvider = def;
  } else if (Object.keys(providers).length === 1) out.defaultProvider = Object.keys(providers)[0];
  return out;
}

/** Checks one inline JWK (spec §3.5): a public RSA or EC signing key with an `alg`. Returns a problem or undefined. */
export function jwkProblem(key: unknown, needKid: boolean): string | undefined {
  if (typeof key !== 'object' || key === null || Array.isArray(key)) return 'must be a JWK object';
  const k = key as Obj;
  if (PRIVATE_MEMBERS.some((m) => m in k)) return `key ${JSON.stringify(str(k.kid) ?? '')} is not a public key`;
  if (k.kty !== 'RSA' && k.kty !== 'EC') return 'kty must be "RSA" or "EC"';
  if (!JWT_ALGORITHMS.includes(k.alg as never)) return `alg must be one of ${JWT_ALGORITHMS.join(', ')}`;
  if (needKid && !str(k.kid)) return 'kid is required on every key when more than one key is configured';
  if (k.use !== undefined && k.use !== '' && k.use !== 'sig') return 'use must be "sig" or absent';
  if (k.kty === 'RSA' && (!str(k.n) || !str(k.e))) return 'an RSA key needs n and e';
  if (k.kty === 'EC' && (!CURVES.includes(k.crv as string) || !str(k.x) || !str(k.y))) return 'an EC key needs crv (P-256, P-384 or P-521), x and y';
  return undefined;
}

/** `databases.<db>.local_jwt`. */
export function buildLocalJwt(raw: Record<string, Obj>, path: string, err: (m: string) => void): Record<string, LocalJwtProviderConfig> {
  const out: Record<string, LocalJwtProviderConfig> = {};
  for (const [name, value] of Object.entries(raw)) {
    const p = `${path}.${name}`;
    const before: string[] = [];
    const fail = (m: string) => { before.push(m); err(m); };
    const c = common(name, value);
    if (!c.issuer) fail(`${p}.issuer: required`);
    if (typeof value.client_id !== 'string') fail(`${p}.client_id: required (an empty string turns the audience check off)`);
    const algorithms = Array.isArray(value.algorithms) ? (value.algorithms as string[]) : [];
    if (algorithms.length === 0) fail(`${p}.algorithms: required, a non-empty list`);
    for (const a of algorithms) if (!JWT_ALGORITHMS.includes(a as never)) fail(`${p}.algorithms: "${a}" is not accepted (only ${JWT_ALGORITHMS.join(', ')})`);
    const keys = Array.isArray(value.keys) ? (value.keys as Obj[]) : undefined;
    const jwksUri = str(value.jwks_uri);
    if (keys && jwksUri) fail(`${p}: keys and jwks_uri are mutually exclusive`);
    else if (!keys?.length && !jwksUri) fail(`${p}: one of keys or jwks_uri is required`);
    if (jwksUri && !/^https?:\/\//.test(jwksUri)) fail(`${p}.jwks_uri: must be an http(s) URL`);
    keys?.forEach((k, i) => {
      const problem = jwkProblem(k, keys.length > 1);
      if (problem) fail(`${p}.keys[${i}]: ${problem}`);
    });
    if (before.length) continue;
    const cfg: LocalJwtProviderConfig = { ...c, algorithms, skipExpiryCheck: bool(value.skip_expiry_check) };
    if (keys) cfg.keys = keys;
    if (jwksUri) cfg.jwksUri = jwksUri;
    out[name] = cfg;
  }
  return out;
}

const built = <T>(shape: T) => ({ shape, built: true as const });
const S = { type: 'string' } as const;
const B = { type: 'boolean' } as const;
const COMMON_FIELDS = {
  issuer: built(S), client_id: built(S), register: built(B), user_prefix: built(S), username_claim: built(S),
  roles_claim: built(S), channels_claim: built(S), disable_session: built(B),
};
export const OIDC_PROVIDER_FIELDS: Fields = {
  ...COMMON_FIELDS, validation_key: built(S), callback_url: built(S), scope: built({ type: 'array', items: S }),
  include_access: built(B), discovery_url: built(S), disable_cfg_validation: built(B), disable_callback_state: built(B),
  allow_unsigned_provider_tokens: built(B),
};
export const LOCAL_JWT_FIELDS: Fields = {
  ...COMMON_FIELDS, algorithms: built({ type: 'array', items: S }), keys: built({ type: 'array', items: { type: 'any' } }),
  jwks_uri: built(S), skip_expiry_check: built(B),
};
