/**
 * From verified claims to a Sync Gateway identity (spec §3.3, §3.4 step 4; SG `auth/jwt.go`
 * `getJWTUsername`, `getJWTClaimAsSet`). Pure functions: no I/O, no clock.
 */

/** Why a token was refused; the message is logged (never the token) and the client gets "Invalid login". */
export class JwtRefusal extends Error {
  /** The provider chosen for the token, once one was (metrics and logs). */
  provider?: string;
  constructor(reason: string) {
    super(reason);
    this.name = 'JwtRefusal';
  }
}

/** What a provider says about how to map its claims. */
export interface ClaimMapping {
  name: string;
  issuer: string;
  userPrefix?: string;
  usernameClaim?: string;
  rolesClaim?: string;
  channelsClaim?: string;
}

export interface JwtIdentity {
  username: string;
  email?: string;
  issuer: string;
  roles: string[];
  channels: string[];
}

/** Go's `url.QueryEscape`: everything but `A-Za-z0-9-_.~` is %XX, and a space is `+`. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

/** The default `user_prefix`: the escaped host+path of the issuer, or the provider name when it does not parse. */
export function defaultUserPrefix(issuer: string, providerName: string): string {
  try {
    const u = new URL(issuer);
    if (!u.host) return providerName;
    return queryEscape(u.host + (u.pathname === '/' && !issuer.endsWith('/') ? '' : u.pathname));
  } catch {
    return providerName;
  }
}

/** A number as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: never an exponent. */
function plainNumber(v: number): string {
  if (Number.isInteger(v) && Number.isSafeInteger(v)) return String(v);
  return v.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
}

export function usernameFor(m: ClaimMapping, claims: Record<string, unknown>): string {
  if (m.usernameClaim) {
    const v = claims[m.usernameClaim];
    let text: string;
    if (typeof v === 'string') text = v;
    else if (typeof v === 'number' && Number.isFinite(v)) text = plainNumber(v);
    else if (v === undefined) throw new JwtRefusal(`username_claim "${m.usernameClaim}" is missing from the token`);
    else throw new JwtRefusal(`username_claim "${m.usernameClaim}" is neither a string nor a number`);
    if (text === '') throw new JwtRefusal(`username_claim "${m.usernameClaim}" is empty`);
    return m.userPrefix ? `${m.userPrefix}_${queryEscape(text)}` : queryEscape(text);
  }
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub === '') throw new JwtRefusal('the token has no sub');
  return `${m.userPrefix || defaultUserPrefix(m.issuer, m.name)}_${queryEscape(sub)}`;
}

/** A claim that is absent (empty set), a string, or an array of strings; anything else refuses the token. */
export function claimSet(claims: Record<string, unknown>, claim: string | undefined): string[] {
  if (!claim) return [];
  const v = claims[claim];
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v === '' ? [] : [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return [...new Set(v as string[])].filter((x) => x !== '');
  throw new JwtRefusal(`claim "${claim}" must be a string or an array of strings`);
}

/** Username, email, roles and channels from a verified token's claims. */
export function identityFrom(m: ClaimMapping, claims: Record<string, unknown>): JwtIdentity {
  // An empty sub is refused even when another claim names the user (SG rejects it first).
  if (claims.sub !== undefined && (typeof claims.sub !== 'string' || claims.sub === '')) throw new JwtRefusal('the token has an empty or non-string sub');
  const out: JwtIdentity = {
    username: usernameFor(m, claims), issuer: m.issuer,
    roles: claimSet(claims, m.rolesClaim), channels: claimSet(claims, m.channelsClaim),
  };
  if (typeof claims.email === 'string' && claims.email) out.email = claims.email;
  return out;
}
