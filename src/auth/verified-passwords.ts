/**
 * bcrypt on every request would cap an authenticated API at a few dozen requests per second per
 * core. A password that verified against a hash is remembered for a few minutes under an HMAC of
 * (name, password, hash) keyed by a per-instance secret: nothing reversible is kept, failures are
 * never cached, and a changed hash simply misses.
 */
import bcrypt from 'bcryptjs';
import { createHmac, randomBytes } from 'node:crypto';

export interface VerifiedPasswordsOptions {
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

export class VerifiedPasswords {
  private readonly secret = randomBytes(32);
  private readonly verified = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(opts: VerifiedPasswordsOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 5 * 60_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Entries currently remembered (bounded by maxEntries). */
  get size(): number {
    return this.verified.size;
  }

  async matches(name: string, password: string, hash: string): Promise<boolean> {
    const key = createHmac('sha256', this.secret).update(name).update('\0').update(password).update('\0').update(hash).digest('base64');
    const now = this.now();
    const expiry = this.verified.get(key);
    if (expiry !== undefined) {
      if (expiry > now) return true;
      this.verified.delete(key);
    }
    if (!(await bcrypt.compare(password, hash))) return false;
    while (this.verified.size >= this.maxEntries) {
      const oldest = this.verified.keys().next().value;
      if (oldest === undefined) break;
      this.verified.delete(oldest);
    }
    this.verified.set(key, now + this.ttlMs);
    return true;
  }
}
