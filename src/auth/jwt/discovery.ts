/**
 * An OIDC provider's discovery document (`<issuer>/.well-known/openid-configuration`, or
 * `discovery_url`), fetched lazily, kept for as long as its cache headers say (1 minute to 24 hours),
 * and re-fetched after a failure at most once per retry interval: a provider that is down at
 * start-up is reported once and tried again, and stops nothing else.
 */
import { JWT_ALGORITHMS } from './types.ts';
import { getJson, type FetchOptions } from './http-get.ts';

export interface ProviderMetadata {
  issuer: string;
  jwksUri: string;
  authorizationEndpoint?: string;
  tokenEndpoint?: string;
  /** Accepted ID-token algorithms: the provider's, intersected with RS/ES/PS 256/384/512. */
  algorithms: string[];
}

export interface DiscoveryOptions extends FetchOptions {
  retryMs?: number;
  now?: () => number;
}

export function discoveryUrl(issuer: string, configured?: string): string {
  return configured || `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/** Reads a discovery document; with `validate`, checks what OpenID Connect Discovery requires. */
export function parseMetadata(doc: unknown, expectedIssuer: string, validate: boolean): ProviderMetadata {
  if (typeof doc !== 'object' || doc === null) throw new Error('the discovery document is not a JSON object');
  const d = doc as Record<string, unknown>;
  const jwksUri = d.jwks_uri;
  if (typeof jwksUri !== 'string' || !jwksUri) throw new Error('the discovery document has no jwks_uri');
  if (validate) {
    if (d.issuer !== expectedIssuer) throw new Error(`the discovery document's issuer ${JSON.stringify(d.issuer)} is not the configured ${JSON.stringify(expectedIssuer)}`);
    if (typeof d.authorization_endpoint !== 'string') throw new Error('the discovery document has no authorization_endpoint');
  }
  const offered = Array.isArray(d.id_token_signing_alg_values_supported) ? (d.id_token_signing_alg_values_supported as unknown[]) : ['RS256'];
  const algorithms = JWT_ALGORITHMS.filter((a) => offered.includes(a));
  if (algorithms.length === 0) throw new Error('the provider signs ID tokens with no algorithm Syncgate accepts (RS/ES/PS 256/384/512)');
  const out: ProviderMetadata = { issuer: typeof d.issuer === 'string' ? d.issuer : expectedIssuer, jwksUri, algorithms };
  if (typeof d.authorization_endpoint === 'string') out.authorizationEndpoint = d.authorization_endpoint;
  if (typeof d.token_endpoint === 'string') out.tokenEndpoint = d.token_endpoint;
  return out;
}

export class Discovery {
  readonly url: string;
  private readonly issuer: string;
  private readonly validate: boolean;
  private readonly opts: DiscoveryOptions;
  private readonly now: () => number;
  private current?: ProviderMetadata;
  private expires = 0;
  private lastFailure = -Infinity;
  private lastError?: Error;
  private inflight?: Promise<ProviderMetadata>;

  constructor(issuer: string, configuredUrl: string | undefined, validate: boolean, opts: DiscoveryOptions = {}) {
    this.issuer = issuer;
    this.url = discoveryUrl(issuer, configuredUrl);
    this.validate = validate;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  /** The metadata; re-fetched when stale (a stale copy is kept if the provider is unreachable). */
  async metadata(): Promise<ProviderMetadata> {
    if (this.current && this.now() < this.expires) return this.current;
    if (this.now() - this.lastFailure < (this.opts.retryMs ?? 10_000)) {
      if (this.current) return this.current;
      throw this.lastError!;
    }
    this.inflight ??= this.fetch().finally(() => { this.inflight = undefined; });
    try {
      return await this.inflight;
    } catch (err) {
      if (this.current) return this.current;
      throw err;
    }
  }

  private async fetch(): Promise<ProviderMetadata> {
    try {
      const res = await getJson(this.url, this.opts);
      this.current = parseMetadata(res.body, this.issuer, this.validate);
      this.expires = this.now() + Math.min(Math.max(res.maxAgeSecs ?? 0, 60), 86_400) * 1000;
      return this.current;
    } catch (err) {
      this.lastFailure = this.now();
      this.lastError = new Error(`OpenID Connect discovery at ${this.url} failed: ${(err as Error).message}`);
      throw this.lastError;
    }
  }
}

/**
 * Config validation with OIDC validation on (SG's `DbConfig.validate`, spec §3.2): every provider's
 * discovery document is fetched now, once, without the cache or retry of `Discovery`, and checked
 * as it will be at use (unless the provider has `disable_cfg_validation`). Returns one problem per
 * provider that fails, in SG's words; none when all answer.
 */
export async function oidcDiscoveryProblems(
  providers: Iterable<{ name: string; issuer: string; discoveryUrl?: string; disableCfgValidation: boolean }>, opts: FetchOptions = {},
): Promise<string[]> {
  const checks = [...providers].map(async (p) => {
    try {
      await new Discovery(p.issuer, p.discoveryUrl, !p.disableCfgValidation, opts).metadata();
      return undefined;
    } catch (err) {
      return `failed to validate OIDC configuration for ${p.name}: ${(err as Error).message}`;
    }
  });
  return (await Promise.all(checks)).filter((m): m is string => m !== undefined);
}
