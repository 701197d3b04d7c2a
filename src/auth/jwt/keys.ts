/**
 * Where a provider's verification keys come from: inline public JWKs (`local_jwt.keys`, with SG's
 * `kid`/`alg`/`use` selection rules, spec §3.5) or a remote JWKS (`jwks_uri`, or OIDC discovery)
 * cached for as long as its cache headers allow and re-fetched, at most once per cooldown, when a
 * token names a key it does not hold (key rotation). All key handling is `jose`'s.
 */
import { createLocalJWKSet, importJWK, type CryptoKey, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import { getJson, type FetchOptions } from './http-get.ts';
import { JwtRefusal } from './claims.ts';

/** Finds the key for a token's protected header; throws JwtRefusal when there is none. */
export type KeyLookup = (header: JWSHeaderParameters) => Promise<CryptoKey | Uint8Array>;

interface InlineKey { kid?: string; alg: string; use?: string; key: Promise<CryptoKey | Uint8Array> }

/** Inline keys: imported once, chosen by `kid` (when the token has one) and `alg`, with `use` "sig" or absent. */
export function inlineKeys(jwks: Record<string, unknown>[]): KeyLookup {
  const keys: InlineKey[] = jwks.map((j) => {
    const jwk = j as JWK;
    const key = importJWK(jwk, jwk.alg);
    key.catch(() => undefined); // reported when a token asks for it
    return { kid: jwk.kid, alg: jwk.alg!, use: jwk.use, key };
  });
  return async (header) => {
    if (header.kid === undefined && keys.length !== 1) throw new JwtRefusal('the token names no kid and more than one key is configured');
    const k = keys.find((c) => (header.kid === undefined || c.kid === header.kid) && c.alg === header.alg && (c.use === undefined || c.use === '' || c.use === 'sig'));
    if (!k) throw new JwtRefusal(`no configured key matches kid ${JSON.stringify(header.kid ?? '')} and alg ${header.alg}`);
    try {
      return await k.key;
    } catch (err) {
      throw new JwtRefusal(`configured key ${JSON.stringify(k.kid ?? '')} could not be imported: ${(err as Error).message}`);
    }
  };
}

export interface RemoteKeysOptions extends FetchOptions {
  /** Shortest wait between two fetches caused by unknown `kid`s (rate limit; default 10 s). */
  cooldownMs?: number;
  /** Cache lifetime bounds (Sync Gateway keeps provider metadata between 1 minute and 24 hours). */
  minCacheSecs?: number;
  maxCacheSecs?: number;
  now?: () => number;
}

/** A remote JWKS with a cache that follows the response's cache headers. */
export class RemoteKeySet {
  private readonly url: string;
  private readonly opts: RemoteKeysOptions;
  private readonly now: () => number;
  private lookup?: ReturnType<typeof createLocalJWKSet>;
  private expires = 0;
  private lastFetch = -Infinity;
  private inflight?: Promise<void>;
  /** Moves on every successful fetch: tokens verified with an older key set are verified again. */
  version = 0;

  constructor(url: string, opts: RemoteKeysOptions = {}) {
    this.url = url;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  /** Fetches now (one fetch at a time); a failure keeps the keys already held. */
  refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.lastFetch = this.now();
      try {
        const res = await getJson(this.url, this.opts);
        const body = res.body as JSONWebKeySet;
        if (!body || !Array.isArray(body.keys)) throw new Error(`${this.url}: not a JWKS`);
        this.lookup = createLocalJWKSet(body);
        this.version++;
        const secs = Math.min(Math.max(res.maxAgeSecs ?? 0, this.opts.minCacheSecs ?? 60), this.opts.maxCacheSecs ?? 86_400);
        this.expires = this.now() + secs * 1000;
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  readonly find: KeyLookup = async (header) => {
    // Stale or never fetched: fetch, but at most once per cooldown, so a provider that is down (or
    // a flood of tokens) does not turn every request into a request to the provider.
    const cooling = this.now() - this.lastFetch < (this.opts.cooldownMs ?? 10_000);
    if ((!this.lookup || this.now() >= this.expires) && !cooling) await this.refreshQuietly(!this.lookup);
    try {
      return await this.pick(header);
    } catch (err) {
      // An unknown kid may be a rotated key: fetch again, unless we just did.
      if (this.now() - this.lastFetch < (this.opts.cooldownMs ?? 10_000)) throw err;
      await this.refreshQuietly(true);
      return this.pick(header);
    }
  };

  private async pick(header: JWSHeaderParameters): Promise<CryptoKey | Uint8Array> {
    if (!this.lookup) throw new JwtRefusal(`the keys at ${this.url} could not be fetched`);
    try {
      return await this.lookup(header, { payload: '', signature: '' } as never);
    } catch (err) {
      throw new JwtRefusal(`no key at ${this.url} matches kid ${JSON.stringify(header.kid ?? '')} and alg ${header.alg}: ${(err as Error).message}`);
    }
  }

  private async refreshQuietly(mustHave: boolean): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      if (mustHave && !this.lookup) throw new JwtRefusal(`the keys at ${this.url} could not be fetched: ${(err as Error).message}`);
    }
  }
}
