/**
 * The HTTP side of abuse protection, one instance per gateway shared by its listeners: which
 * address a request comes from (through trusted proxies), request rate limits per address and per
 * user, and the cap on concurrent changes feeds per user. Refusals are 429 with `Retry-After` and
 * Sync Gateway's error body. (Connection caps and timeouts are set on the listeners in server.ts;
 * document, attachment, batch and channel limits are checked where those things are parsed.)
 */
import type { IncomingMessage } from 'node:http';
import { HttpError } from '../errors.ts';
import type { Principal } from '../auth/principal.ts';
import { FeedCounter, RateLimiter, type RateSettings } from './rate-limit.ts';

/** A 429 that tells the client when to come back; the error mapper sends `Retry-After`. */
export class TooManyRequestsError extends HttpError {
  readonly retryAfter: number;
  constructor(reason: string, retryAfterSecs: number) {
    super(429, reason);
    this.retryAfter = retryAfterSecs;
  }
}

export interface RequestGuardSettings {
  perAddress: RateSettings;
  perUser: RateSettings;
  /** Concurrent `_changes` requests per user (GUEST: per address); 0 = no limit. */
  maxFeedsPerUser: number;
  /** Peers whose `X-Forwarded-For` names the real client (a reverse proxy such as NGINX). */
  trustedProxies: string[];
}

/** How long a client refused for too many feeds is asked to wait: a feed may end any moment. */
const FEED_RETRY_AFTER_SECS = 10;

/** `::ffff:127.0.0.1` and `127.0.0.1` are the same client. */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class RequestGuard {
  readonly settings: RequestGuardSettings;
  private readonly perAddress: RateLimiter;
  private readonly perUser: RateLimiter;
  private readonly feeds: FeedCounter;
  private readonly trusted: ReadonlySet<string>;

  constructor(settings: RequestGuardSettings, now?: () => number) {
    this.settings = settings;
    this.perAddress = new RateLimiter(settings.perAddress, { now });
    this.perUser = new RateLimiter(settings.perUser, { now });
    this.feeds = new FeedCounter(settings.maxFeedsPerUser);
    this.trusted = new Set(settings.trustedProxies.map(normalizeAddress));
  }

  /**
   * The client's address. Behind a trusted proxy it is the right-most `X-Forwarded-For` entry that
   * is not itself a trusted proxy: entries further left were written by the client and prove nothing.
   */
  clientAddress(req: IncomingMessage): string {
    let addr = normalizeAddress(req.socket.remoteAddress ?? '');
    if (!this.trusted.has(addr)) return addr;
    const xff = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(xff) ? xff.join(',') : xff ?? '').split(',').map(normalizeAddress).filter((h) => h !== '');
    for (let i = hops.length - 1; i >= 0; i--) {
      addr = hops[i];
      if (!this.trusted.has(addr)) break;
    }
    return addr;
  }

  /** Before authentication: the per-address budget (it also slows password guessing). */
  checkAddress(address: string): void {
    const wait = this.perAddress.take(address);
    if (wait > 0) throw new TooManyRequestsError('Too many requests from this address; try again later', wait);
  }

  /** After authentication: the per-user budget. GUEST is everyone anonymous, so it is left to the per-address one. */
  checkUser(db: string, p: Principal): void {
    if (p.kind !== 'user' || p.isGuest) return;
    const wait = this.perUser.take(`${db}\0${p.name}`);
    if (wait > 0) throw new TooManyRequestsError('Too many requests for this user; try again later', wait);
  }

  /**
   * Counts a changes feed in; returns its release (call when the response or socket closes).
   * The admin is not counted; GUEST is counted per address, since it is everyone anonymous.
   */
  openFeed(db: string, p: Principal, address: string): () => void {
    if (p.kind !== 'user') return () => {};
    const key = p.isGuest ? `${db}\0\0${address}` : `${db}\0${p.name}`;
    const release = this.feeds.acquire(key);
    if (!release) throw new TooManyRequestsError(`Too many open changes feeds for this user (limit ${this.feeds.max})`, FEED_RETRY_AFTER_SECS);
    return release;
  }
}
