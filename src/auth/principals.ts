/**
 * One database's users and roles: loading a user with its computed access, checking passwords
 * (bcrypt, with a credential cache so repeated Basic auth does not pay bcrypt every time), and the
 * admin API's reads and writes with Sync Gateway's validation (`db/users.go` `UpdatePrincipal`).
 */
import { VerifiedPasswords } from './verified-passwords.ts';
import bcrypt from 'bcryptjs';
import { HttpError } from '../errors.ts';
import type { GrantRow, PrincipalKind, PrincipalPage, PrincipalRecord, Store } from '../storage/store.ts';
import {
  type Access, GRANTED_BY_OWN_SAVE, GUEST_NAME, ROLE_PREFIX, computeAccess, computeRoleAccess, resolvedGrants,
} from './access.ts';
import { PUBLIC_CHANNEL, type UserPrincipal } from './principal.ts';
import { carriedJwtFields, checkJwtFieldsUnchanged, jwtFieldsJson, recordAfterLogin, recordWithoutJwt, type JwtGrantInput } from './jwt/grants.ts';
import { randomBytes } from 'node:crypto';
import { type CollectionAdminChannels, collectionChannelsDiffer, parseCollectionAccess, renderCollectionAccess, updatedCollectionChannels } from './collection-access.ts';

/** User and role names (`auth/role.go`). Without the `u` flag `\w` is ASCII, like Go's. */
export const PRINCIPAL_NAME = /^[-+.@%\w]*$/;
/** `auth/user.go` `IsValidEmail`. */
const EMAIL = /^[-+.\w]+@\w[-.\w]+$/;

export interface PrincipalsOptions {
  bcryptCost: number;
  allowEmptyPassword: boolean;
  /** How long a verified password is remembered (default 5 minutes). */
  credentialCacheTtlMs?: number;
  /** Most remembered credentials (default 10,000); the oldest is dropped first. */
  credentialCacheSize?: number;
  now?: () => number;
  log?: { info(msg: string): void };
  /** The database's collections (`scope.collection`): `collection_access` may name only these. Unset: not checked. */
  collectionKeys?: readonly string[];
  /** For messages naming a keyspace. */
  dbName?: string;
}

/** A user or role body as the admin API and the config file give it. */
export interface PrincipalInput {
  admin_channels: string[];
  admin_roles: string[];
  email: string;
  disabled: boolean;
  /** undefined: unchanged. '' means no password (only with allow_empty_password). */
  password?: string;
  /** Named collections' admin channels; undefined: unchanged (collection-access.ts). */
  collection_access?: CollectionAdminChannels;
}

export interface PutOptions {
  /** POST semantics: an existing principal is a 409 `Already exists`. */
  creating?: boolean;
  /** Config at start-up: a password that already matches the stored hash is not a change. */
  fromConfig?: boolean;
}

export type PutResult = 'created' | 'replaced';

function badJson(field: string, what: string): HttpError {
  return new HttpError(400, `Bad JSON: ${field} must be ${what}`);
}

function stringList(body: Record<string, unknown>, field: string): string[] {
  const v = body[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw badJson(field, 'an array of strings');
  return [...new Set(v as string[])];
}

/** Parses an admin API body. `all_channels`, `roles` and `name` are read-only or checked by the caller. */
export function parsePrincipalInput(body: Record<string, unknown>, isUser: boolean): PrincipalInput {
  const admin_channels = stringList(body, 'admin_channels');
  for (const ch of admin_channels) if (ch === '' || ch.includes(',')) throw new HttpError(400, 'Illegal channel name');
  const out: PrincipalInput = { admin_channels, admin_roles: [], email: '', disabled: false };
  if (!isUser) return out;
  out.admin_roles = stringList(body, 'admin_roles');
  const { email, disabled, password } = body;
  if (email !== undefined && email !== null && typeof email !== 'string') throw badJson('email', 'a string');
  if (disabled !== undefined && disabled !== null && typeof disabled !== 'boolean') throw badJson('disabled', 'a boolean');
  if (password !== undefined && password !== null && typeof password !== 'string') throw badJson('password', 'a string');
  out.email = (email as string | null | undefined) ?? '';
  out.disabled = (disabled as boolean | null | undefined) ?? false;
  if (typeof password === 'string') out.password = password;
  return out;
}

function checkName(name: string): void {
  if (name === '' || !PRINCIPAL_NAME.test(name)) throw new HttpError(400, `Invalid name ${JSON.stringify(name)}`);
}

/** `PrincipalConfig.IsPasswordValid`; lengths are in UTF-8 bytes, as Go's `len`. */
function checkPassword(password: string | undefined, allowEmpty: boolean): void {
  if (password === undefined || password === '') {
    if (!allowEmpty) throw new HttpError(400, 'Empty passwords are not allowed ');
  } else if (Buffer.byteLength(password) < 3) {
    throw new HttpError(400, 'Passwords must be at least three 3 characters');
  }
}

function sameKeys(a: Record<string, number>, b: string[]): boolean {
  const keys = Object.keys(a);
  return keys.length === b.length && b.every((k) => Object.hasOwn(a, k));
}

/** Keeps each surviving entry's granted-at sequence; stamps new ones as granted by this save. */
function restamp(old: Map<string, number>, names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = old.get(n) ?? GRANTED_BY_OWN_SAVE;
  return out;
}

const sorted = (it: Iterable<string>) => [...it].sort();

export class Principals {
  private readonly store: Store;
  private readonly opts: PrincipalsOptions;
  private readonly now: () => number;
  private readonly verified: VerifiedPasswords;
  /**
   * `current`: the access version read before this enabled user's record was: while the version
   * has not moved, the record is still the stored one (every save takes a sequence, deletions clear
   * the cache), so loadUser can skip reading it.
   */
  private readonly accessCache = new Map<string, { lastSeq: number | string; recSeq: number; principal: UserPrincipal; current?: number | string }>();
  /** Moves on every clear of the cache: a load that began before a deletion must not refill it. */
  private cacheGeneration = 0;
  /** User → the JWT claims found already stored, at the access version read before that check. */
  private readonly jwtApplied = new Map<string, { key: string; version: number | string }>();
  /** Serializes writes so each read-modify-write of a principal sees the previous one. */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(store: Store, opts: PrincipalsOptions) {
    this.store = store;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.verified = new VerifiedPasswords({ ttlMs: opts.credentialCacheTtlMs, maxEntries: opts.credentialCacheSize, now: this.now });
  }

  // ---- reading ----

  /** An enabled user with its computed access, or undefined (absent, disabled, or GUEST not enabled). */
  async loadUser(name: string): Promise<UserPrincipal | undefined> {
    // A commit wakes thousands of longpolls that all re-request as the same user (GUEST) at the same
    // version: they share one load instead of each reading the record.
    const version = await this.accessVersion();
    const hit = this.accessCache.get(name);
    if (hit && hit.current === version) return hit.principal;
    const generation = this.cacheGeneration;
    const rec = await this.store.getPrincipal('user', name);
    if (!rec || rec.disabled) return undefined;
    return this.principalFor(rec, { version, generation });
  }

  /** Like loadUser but also returns disabled users (admin views of a session). */
  async loadUserAnyState(name: string): Promise<UserPrincipal | undefined> {
    const rec = await this.store.getPrincipal('user', name);
    return rec ? this.principalFor(rec) : undefined;
  }

  /** Checks a user's password (never GUEST's). Disabled or unknown users and wrong passwords give undefined. */
  async verifyPassword(name: string, password: string): Promise<UserPrincipal | undefined> {
    if (name === GUEST_NAME || name === '') return undefined;
    const rec = await this.store.getPrincipal('user', name);
    if (!rec || rec.disabled) return undefined;
    if (!(await this.passwordMatches(rec, password))) return undefined;
    return this.principalFor(rec);
  }

  /**
   * User names (GUEST left out) in byte order, one page at a time when `page` says so (prefix,
   * after, limit): read from the store's index, so a page of 10,000 users costs a page.
   */
  async listUsers(page: PrincipalPage = {}): Promise<string[]> {
    const names = await this.store.listPrincipals('user', page);
    if (!names.includes(GUEST_NAME)) return names;
    // GUEST took a place on the page: read one more to fill it.
    const more = page.limit ? await this.store.listPrincipals('user', { ...page, limit: page.limit + 1 }) : names;
    return more.filter((n) => n !== GUEST_NAME);
  }

  async listRoles(page: PrincipalPage = {}): Promise<string[]> {
    return this.store.listPrincipals('role', page);
  }

  /** The admin API's user JSON (Go `PrincipalConfig`, so empty fields are omitted), or undefined. */
  async getUserJson(name: string): Promise<Record<string, unknown> | undefined> {
    let rec = await this.store.getPrincipal('user', name);
    if (!rec) {
      if (name !== GUEST_NAME) return undefined;
      rec = this.defaultGuest();
    }
    const access = await this.accessFor(rec);
    const out: Record<string, unknown> = { name };
    const adminChannels = Object.keys(rec.adminChannels);
    if (adminChannels.length) out.admin_channels = sorted(adminChannels);
    out.all_channels = sorted(access.channels.keys());
    if (rec.email) out.email = rec.email;
    if (rec.disabled) out.disabled = true;
    const adminRoles = Object.keys(rec.adminRoles);
    if (adminRoles.length) out.admin_roles = sorted(adminRoles);
    if (access.roles.size) out.roles = sorted(access.roles.keys());
    Object.assign(out, jwtFieldsJson(rec));
    const collectionAccess = renderCollectionAccess(rec, access.collections);
    if (collectionAccess) out.collection_access = collectionAccess;
    return out;
  }

  async getRoleJson(name: string): Promise<Record<string, unknown> | undefined> {
    const rec = await this.store.getPrincipal('role', name);
    if (!rec) return undefined;
    const grantee = ROLE_PREFIX + name;
    const [grants, changed] = await Promise.all([this.store.grantsTo([grantee]), this.store.grantsChangedAt([grantee])]);
    const access = computeRoleAccess(rec, grants, changed);
    const out: Record<string, unknown> = { name };
    const adminChannels = Object.keys(rec.adminChannels);
    if (adminChannels.length) out.admin_channels = sorted(adminChannels);
    out.all_channels = sorted(access.channels.keys());
    const collectionAccess = renderCollectionAccess(rec, access.collections);
    if (collectionAccess) out.collection_access = collectionAccess;
    return out;
  }

  // ---- writing ----

  /** Creates or replaces a user from an admin API body (PUT/POST) or config. Returns what happened. */
  async putUser(name: string, body: Record<string, unknown>, opts: PutOptions = {}): Promise<PutResult> {
    checkName(name);
    checkJwtFieldsUnchanged(body, await this.store.getPrincipal('user', name));
    return this.putUserInput(name, this.withCollectionAccess(parsePrincipalInput(body, true), body), opts);
  }

  async putRole(name: string, body: Record<string, unknown>, opts: PutOptions = {}): Promise<PutResult> {
    checkName(name);
    return this.putRoleInput(name, this.withCollectionAccess(parsePrincipalInput(body, false), body), opts);
  }

  async putUserInput(name: string, input: PrincipalInput, opts: PutOptions = {}): Promise<PutResult> {
    return this.serialized(async () => {
      const isGuest = name === GUEST_NAME;
      const stored = await this.store.getPrincipal('user', name);
      // GUEST always exists: without a record it is the default (disabled) guest.
      const existing = stored ?? (isGuest ? this.defaultGuest() : undefined);
      if (existing && opts.creating) throw new HttpError(409, 'Already exists');
      if (isGuest && input.password) throw new HttpError(400, 'Anonymous users should not have a password');
      if (!existing) checkPassword(input.password, this.opts.allowEmptyPassword);
      else if (input.password !== undefined && !isGuest) checkPassword(input.password, this.opts.allowEmptyPassword);
      if (input.email && !EMAIL.test(input.email)) throw new HttpError(400, 'Invalid email address');

      const base = existing ?? { kind: 'user' as const, name, adminChannels: {}, adminRoles: {}, disabled: false, seq: 0 };
      let passwordHash = base.passwordHash;
      let passwordChanged = false;
      if (input.password !== undefined && !isGuest) {
        const keep = opts.fromConfig && existing && (await this.passwordMatches(existing, input.password));
        if (!keep) {
          passwordHash = input.password === '' ? undefined : await bcrypt.hash(input.password, this.opts.bcryptCost);
          passwordChanged = true;
        }
      }
      const collectionChannels = updatedCollectionChannels(stored, input.collection_access, GRANTED_BY_OWN_SAVE);
      const changed = !stored || passwordChanged
        || !sameKeys(base.adminChannels, input.admin_channels) || !sameKeys(base.adminRoles, input.admin_roles)
        || (base.email ?? '') !== input.email || base.disabled !== input.disabled
        || collectionChannelsDiffer(stored, collectionChannels);
      if (changed) {
        const rec: Omit<PrincipalRecord, 'seq'> = {
          kind: 'user', name, disabled: input.disabled,
          adminChannels: restamp(resolvedGrants(base.adminChannels, base), input.admin_channels),
          adminRoles: restamp(resolvedGrants(base.adminRoles, base), input.admin_roles),
          ...carriedJwtFields(stored),
        };
        if (input.email) rec.email = input.email;
        if (passwordHash) rec.passwordHash = passwordHash;
        if (collectionChannels) rec.collectionChannels = collectionChannels;
        await this.store.putPrincipal(rec);
      }
      // A new password ends the user's sessions (admin API `updatePrincipal`).
      if (stored && passwordChanged) await this.store.deleteUserSessions(name);
      return existing ? 'replaced' : 'created';
    });
  }

  async putRoleInput(name: string, input: PrincipalInput, opts: PutOptions = {}): Promise<PutResult> {
    return this.serialized(async () => {
      const existing = await this.store.getPrincipal('role', name);
      if (existing && opts.creating) throw new HttpError(409, 'Already exists');
      const collectionChannels = updatedCollectionChannels(existing, input.collection_access, GRANTED_BY_OWN_SAVE);
      if (existing && sameKeys(existing.adminChannels, input.admin_channels) && !collectionChannelsDiffer(existing, collectionChannels)) return 'replaced';
      const old = existing ? resolvedGrants(existing.adminChannels, existing) : new Map<string, number>();
      await this.store.putPrincipal({
        kind: 'role', name, adminChannels: restamp(old, input.admin_channels), adminRoles: {}, disabled: false,
        ...(collectionChannels ? { collectionChannels } : {}),
      });
      return existing ? 'replaced' : 'created';
    });
  }

  /** Deletes a user and its sessions. GUEST cannot be deleted (405); an unknown user is 404. */
  async deleteUser(name: string): Promise<void> {
    if (name === GUEST_NAME) throw new HttpError(405, 'The GUEST user cannot be deleted. Only disabled via an update.');
    await this.serialized(async () => {
      if (!(await this.store.deletePrincipal('user', name))) throw new HttpError(404, 'missing');
      this.clearAccessCache(); // a deletion takes no sequence, so cached access cannot see it
      await this.store.deleteUserSessions(name);
    });
  }

  async deleteRole(name: string): Promise<void> {
    await this.serialized(async () => {
      if (!(await this.store.deletePrincipal('role', name))) throw new HttpError(404, 'missing');
      this.clearAccessCache(); // a deletion takes no sequence, so cached access cannot see it
    });
  }

  async exists(kind: PrincipalKind, name: string): Promise<boolean> {
    return (await this.store.getPrincipal(kind, name)) !== undefined;
  }

  /**
   * Writes the config file's users and roles, as Sync Gateway does at every start (roles first so
   * that users' roles exist). Unchanged principals are not re-saved, so a restart does not bump
   * their sequences or end their sessions.
   */
  async applyConfig(
    users: Record<string, { password?: string; admin_channels: string[]; admin_roles: string[]; email?: string; disabled: boolean; collection_access?: unknown }>,
    roles: Record<string, { admin_channels: string[]; collection_access?: unknown }>,
  ): Promise<void> {
    for (const [name, r] of Object.entries(roles)) {
      checkName(name);
      const input: PrincipalInput = { admin_channels: [...new Set(r.admin_channels)], admin_roles: [], email: '', disabled: false };
      await this.putRoleInput(name, this.withCollectionAccess(input, r), { fromConfig: true });
    }
    for (const [name, u] of Object.entries(users)) {
      checkName(name);
      const input: PrincipalInput = {
        admin_channels: [...new Set(u.admin_channels)], admin_roles: [...new Set(u.admin_roles)],
        email: u.email ?? '', disabled: u.disabled,
      };
      this.withCollectionAccess(input, u);
      if (name !== GUEST_NAME && u.password !== undefined) input.password = u.password;
      const result = await this.putUserInput(name, input, { fromConfig: true });
      this.opts.log?.info(name === GUEST_NAME ? 'Auth: Reset guest user to config' : `Auth: ${result === 'created' ? 'Created' : 'Updated'} user "${name}" from config`);
    }
  }

  /**
   * A successful JWT login (spec §3.4 steps 5-6, §3.6): the user, created when `register` is on
   * (with a random password no one knows), its JWT fields replaced by the token's. Undefined when
   * the user does not exist and may not be registered, is disabled, or the name is invalid.
   */
  async loginWithJwt(name: string, login: JwtGrantInput, register: boolean): Promise<UserPrincipal | undefined> {
    if (name === GUEST_NAME || name === '' || !PRINCIPAL_NAME.test(name)) return undefined;
    const valid = login.email && EMAIL.test(login.email) ? login : { ...login, email: undefined };
    // The common case, a client re-sending its token: the same claims already stored, nothing to
    // write. Known without a read while the access version has not moved since they were checked.
    const claimsKey = JSON.stringify([valid.issuer, [...valid.roles].sort(), [...valid.channels].sort(), valid.email ?? null]);
    const version = await this.accessVersion();
    const applied = this.jwtApplied.get(name);
    if (applied && applied.key === claimsKey && applied.version === version) return this.loadUser(name);
    const current = await this.store.getPrincipal('user', name);
    if (current && !current.disabled && !recordAfterLogin(current, valid, '')) {
      if (this.jwtApplied.size >= 10_000) this.jwtApplied.clear();
      this.jwtApplied.set(name, { key: claimsKey, version });
      return this.loadUser(name);
    }
    const saved = await this.serialized(async () => {
      let rec = await this.store.getPrincipal('user', name);
      if (!rec) {
        if (!register) return false;
        const passwordHash = await bcrypt.hash(randomBytes(24).toString('base64'), this.opts.bcryptCost);
        rec = { kind: 'user', name, adminChannels: {}, adminRoles: {}, disabled: false, passwordHash, seq: 0 };
        this.opts.log?.info(`Auth: Registered new user from a JWT login`);
      }
      if (rec.disabled) return false;
      const next = recordAfterLogin(rec, valid, new Date(this.now()).toISOString());
      if (next) await this.store.putPrincipal(next);
      return true;
    });
    return saved ? this.loadUser(name) : undefined;
  }

  /** Empties the JWT grants of a user whose issuer is no longer configured (spec §3.1). */
  async revokeJwt(name: string): Promise<UserPrincipal | undefined> {
    await this.serialized(async () => {
      const rec = await this.store.getPrincipal('user', name);
      if (rec?.jwtIssuer) await this.store.putPrincipal(recordWithoutJwt(rec, new Date(this.now()).toISOString()));
    });
    return this.loadUser(name);
  }

  // ---- internals ----

  /** Adds the body's `collection_access` (checked against the database's collections) to the input. */
  private withCollectionAccess(input: PrincipalInput, body: { collection_access?: unknown }): PrincipalInput {
    const ca = parseCollectionAccess(body.collection_access, this.opts.collectionKeys, this.opts.dbName);
    if (ca) input.collection_access = ca;
    return input;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private defaultGuest(): PrincipalRecord {
    return { kind: 'user', name: GUEST_NAME, adminChannels: {}, adminRoles: {}, disabled: true, seq: 0 };
  }

  private async passwordMatches(rec: PrincipalRecord, password: string): Promise<boolean> {
    if (!rec.passwordHash) return password === '' && this.opts.allowEmptyPassword;
    return this.verified.matches(rec.name, password, rec.passwordHash);
  }

  private async accessFor(rec: PrincipalRecord): Promise<Access> {
    const [own, ownChanged] = await Promise.all([this.store.grantsTo([rec.name]), this.store.grantsChangedAt([rec.name])]);
    const roleNames = new Set([...Object.keys(rec.adminRoles), ...Object.keys(rec.jwtRoles ?? {})]);
    for (const g of own) if (g.kind === 'role') roleNames.add(g.value);
    const roles = new Map<string, PrincipalRecord>();
    let grants: GrantRow[] = own;
    const changed = new Map(ownChanged);
    if (roleNames.size > 0) {
      const grantees = [...roleNames].map((r) => ROLE_PREFIX + r);
      const [records, roleGrants, roleChanged] = await Promise.all([
        Promise.all([...roleNames].map((r) => this.store.getPrincipal('role', r))),
        this.store.grantsTo(grantees),
        this.store.grantsChangedAt(grantees),
      ]);
      for (const r of records) if (r) roles.set(r.name, r);
      grants = own.concat(roleGrants);
      for (const [k, v] of roleChanged) changed.set(k, v);
    }
    return computeAccess(rec, roles, grants, changed);
  }

  /**
   * A user's access is recomputed only when something could have changed it: every grant, revocation
   * and principal save advances the database's sequence, and deletions clear the cache. Before this,
   * rebuilding access was about a fifth of the server's CPU on authenticated reads.
   */
  private async principalFor(rec: PrincipalRecord, loaded?: { version: number | string; generation: number }): Promise<UserPrincipal> {
    // `loaded`: an enabled user's record read after its version was (loadUser); that version,
    // read before the record, is a safe key for both (versions only move forward).
    const generation = loaded?.generation ?? this.cacheGeneration;
    const lastSeq = loaded ? loaded.version : await this.accessVersion();
    const hit = this.accessCache.get(rec.name);
    if (hit && hit.lastSeq === lastSeq && hit.recSeq === rec.seq) {
      if (loaded && generation === this.cacheGeneration) hit.current = lastSeq;
      return hit.principal;
    }
    const access = await this.accessFor(rec);
    const principal: UserPrincipal = {
      kind: 'user', name: rec.name, isGuest: rec.name === GUEST_NAME, channels: access.channels, roles: access.roles, seq: access.seq,
      collectionChannels: access.collections,
    };
    if (rec.jwtIssuer) principal.jwtIssuer = rec.jwtIssuer;
    // Computed from reads that may predate a deletion: not kept.
    if (generation !== this.cacheGeneration) return principal;
    if (this.accessCache.size >= 10_000) this.clearAccessCache();
    this.accessCache.set(rec.name, { lastSeq, recSeq: rec.seq, principal, ...(loaded ? { current: lastSeq } : {}) });
    return principal;
  }

  /** On shared storage the version also moves on principal deletions made by other nodes. */
  private accessVersion(): Promise<number | string> {
    return this.store.accessVersion ? this.store.accessVersion() : this.store.lastSeq();
  }

  private clearAccessCache(): void {
    this.accessCache.clear();
    this.cacheGeneration++;
  }
}

/**
 * The principal of a request on a public-privilege endpoint (`/_session`) when GUEST is disabled:
 * it can log in or ask who it is, and sees nothing but `!`.
 */
export function disabledGuest(): UserPrincipal {
  return { kind: 'user', name: GUEST_NAME, isGuest: true, channels: new Map([[PUBLIC_CHANNEL, 1]]), roles: new Map(), seq: 0 };
}

