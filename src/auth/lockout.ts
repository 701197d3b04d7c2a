/**
 * Login lockout: after `maxFailures` failed logins for one user name from one client address within
 * `windowMs`, that (user, address) pair is refused for `lockoutMs`, even with the right password.
 * The key is the pair, not the user alone, so an attacker elsewhere cannot lock a real user out of
 * their own devices; per-address rate limits (src/http/rate-limit.ts) cover name-spraying.
 *
 * A refusal looks exactly like a wrong password (401 `Invalid login`) and costs no bcrypt, and
 * unknown names count failures just like real ones: neither the status, the body nor the lock
 * itself tells whether a user exists. Passwords never reach this module's logs; user names go
 * through the logger's redaction (`ud`).
 *
 * State lives in one instance per gateway (no module state), bounded in size: expired entries are
 * swept as new ones arrive, and when full, unlocked entries are dropped before locked ones, so
 * flooding the table with junk names cannot quietly lift a lock.
 */
import bcrypt from 'bcryptjs';
import { randomBytes } from 'node:crypto';

export interface LockoutSettings {
  /** Failed logins that lock the pair; 0 disables the lockout. */
  maxFailures: number;
  /** The sliding window in which those failures must fall. */
  windowMs: number;
  /** How long a locked pair stays locked. */
  lockoutMs: number;
}

export const DEFAULT_LOCKOUT: LockoutSettings = { maxFailures: 5, windowMs: 5 * 60_000, lockoutMs: 15 * 60_000 };

export interface LockoutLog {
  warn(msg: string): void;
  info(msg: string): void;
  debug?(msg: string): void;
  /** Redacts user data per `logging.redaction_level`. */
  ud?(value: string): string;
}

export interface LoginLockoutOptions extends Partial<LockoutSettings> {
  log?: LockoutLog;
  /** Most (user, address) pairs tracked at once. */
  maxEntries?: number;
  now?: () => number;
  /** bcrypt cost of the decoy hash compared for unknown users (the gateway's `bcrypt_cost`). */
  bcryptCost?: number;
  /** The bcrypt compare run for the decoy; a seam for tests to see it run, bcryptjs's by default. */
  compare?: (password: string, hash: string) => Promise<boolean>;
}

/** Verifications of one pair still running, and the attempts waiting for a slot. */
interface InFlight {
  n: number;
  waiters: (() => void)[];
}

interface Entry {
  /** Times of recent failures, oldest first; never more than maxFailures. */
  failures: number[];
  /** 0 when not locked. */
  lockedUntil: number;
}

export class LoginLockout {
  readonly settings: LockoutSettings;
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, InFlight>();
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly log?: LockoutLog;
  private readonly bcryptCost: number;
  private readonly compare: (password: string, hash: string) => Promise<boolean>;
  private decoy?: Promise<string>;
  private writesSinceSweep = 0;

  constructor(opts: LoginLockoutOptions = {}) {
    this.settings = {
      maxFailures: opts.maxFailures ?? DEFAULT_LOCKOUT.maxFailures,
      windowMs: opts.windowMs ?? DEFAULT_LOCKOUT.windowMs,
      lockoutMs: opts.lockoutMs ?? DEFAULT_LOCKOUT.lockoutMs,
    };
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
    this.bcryptCost = opts.bcryptCost ?? 10;
    this.compare = opts.compare ?? ((password, hash) => bcrypt.compare(password, hash));
  }

  get enabled(): boolean {
    return this.settings.maxFailures > 0;
  }

  /** Pairs currently tracked (for tests: the table stays bounded). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Verifies a login through `verify` unless the pair is locked. Returns what `verify` returned, or
   * undefined when it failed or the pair is locked. `scope` separates databases and operator ports.
   * `exists`, when given, is asked after a failure: for a name that does not exist a decoy bcrypt is
   * run, so a wrong password costs the same time whether or not the user exists.
   */
  async attempt<T>(
    scope: string, name: string, address: string, password: string,
    verify: () => Promise<T | undefined>, exists?: () => Promise<boolean>,
  ): Promise<T | undefined> {
    if (!this.enabled) return verify();
    const key = `${scope}\0${name}\0${address}`;
    for (;;) {
      const now = this.now();
      const entry = this.entries.get(key);
      if (entry && entry.lockedUntil > now) {
        // Refused before bcrypt: a locked pair cannot be used to burn CPU or to test passwords.
        // Debug, not info: a brute-force run would otherwise write a line per guess.
        this.log?.debug?.(`Auth: login refused for username=${this.ud(name)} from ${address} (${scope}): locked out for ${Math.ceil((entry.lockedUntil - now) / 1000)} s more`);
        return undefined;
      }
      const recent = entry ? entry.failures.filter((t) => t > now - this.settings.windowMs).length : 0;
      const running = this.inFlight.get(key);
      // A burst of parallel guesses must not all be checked before the first failures are counted:
      // at most (failures left before the lock) run at once, the rest wait for one to finish.
      // Parallel requests with the right password are barely slowed (they succeed and free the slot).
      if (!running || recent + running.n < this.settings.maxFailures) break;
      await new Promise<void>((resolve) => running.waiters.push(resolve));
    }
    const slot = this.inFlight.get(key) ?? { n: 0, waiters: [] };
    slot.n++;
    this.inFlight.set(key, slot);
    try {
      const result = await verify();
      if (result !== undefined) {
        // Success clears the slate: a user who mistypes now and then never accumulates a lock.
        this.entries.delete(key);
        return result;
      }
      if (exists && !(await exists())) await this.decoyCompare(password);
      this.recordFailure(key, scope, name, address);
      return undefined;
    } finally {
      slot.n--;
      const waiters = slot.waiters.splice(0);
      if (slot.n === 0) this.inFlight.delete(key);
      for (const wake of waiters) wake();
    }
  }

  /** True when the pair is locked right now (for tests and the admin's view). */
  isLocked(scope: string, name: string, address: string): boolean {
    const e = this.entries.get(`${scope}\0${name}\0${address}`);
    return !!e && e.lockedUntil > this.now();
  }

  private recordFailure(key: string, scope: string, name: string, address: string): void {
    const now = this.now();
    let entry = this.entries.get(key);
    if (!entry) {
      this.makeRoom();
      entry = { failures: [], lockedUntil: 0 };
      this.entries.set(key, entry);
    }
    const since = now - this.settings.windowMs;
    entry.failures = entry.failures.filter((t) => t > since);
    entry.failures.push(now);
    if (entry.failures.length >= this.settings.maxFailures) {
      entry.lockedUntil = now + this.settings.lockoutMs;
      entry.failures = [];
      this.log?.warn(`Auth: ${this.settings.maxFailures} failed logins for username=${this.ud(name)} from ${address} (${scope}) within ${Math.round(this.settings.windowMs / 1000)} s: locked out for ${Math.round(this.settings.lockoutMs / 1000)} s`);
    }
  }

  /** Keeps the table bounded: sweep what expired, then drop unlocked pairs, then the oldest. */
  private makeRoom(): void {
    if (++this.writesSinceSweep < 1000 && this.entries.size < this.maxEntries) return;
    this.writesSinceSweep = 0;
    const now = this.now();
    const since = now - this.settings.windowMs;
    for (const [k, e] of this.entries) {
      if (e.lockedUntil <= now && !e.failures.some((t) => t > since)) this.entries.delete(k);
    }
    if (this.entries.size < this.maxEntries) return;
    for (const [k, e] of this.entries) {
      if (this.entries.size < this.maxEntries) return;
      if (e.lockedUntil <= now) this.entries.delete(k);
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size < this.maxEntries) return;
      this.entries.delete(k);
    }
  }

  private decoyCompare(password: string): Promise<boolean> {
    // A hash of random bytes at the gateway's cost, made once: compare time then matches real users'.
    this.decoy ??= bcrypt.hash(randomBytes(16).toString('hex'), this.bcryptCost);
    return this.decoy.then((hash) => this.compare(password, hash));
  }

  private ud(name: string): string {
    // Quoted as Sync Gateway's %q prints names, redaction tags inside the quotes.
    return this.log?.ud ? `"${this.log.ud(name)}"` : JSON.stringify(name);
  }
}
