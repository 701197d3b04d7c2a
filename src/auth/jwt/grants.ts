/**
 * The JWT fields of a user record (spec §3.6, SG `db/users.go` `UpdatePrincipal`) as pure functions:
 * a login replaces `jwt_roles`/`jwt_channels` wholesale, keeping the granted-at sequence of what
 * stays and stamping what is new with the save's own sequence, so feeds backfill new channels and
 * drop lost ones exactly as for admin grants. The admin API shows these fields and cannot set them.
 */
import { HttpError } from '../../errors.ts';
import type { PrincipalRecord } from '../../storage/store.ts';
import { GRANTED_BY_OWN_SAVE, resolvedGrants } from '../access.ts';

export interface JwtGrantInput {
  email?: string;
  issuer: string;
  roles: string[];
  channels: string[];
}

type JwtFields = Pick<PrincipalRecord, 'jwtIssuer' | 'jwtRoles' | 'jwtChannels' | 'jwtLastUpdated'>;

function restamp(old: Map<string, number>, names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = old.get(n) ?? GRANTED_BY_OWN_SAVE;
  return out;
}

function sameSet(stored: Record<string, number> | undefined, names: string[]): boolean {
  const keys = Object.keys(stored ?? {});
  return keys.length === names.length && names.every((n) => Object.hasOwn(stored ?? {}, n));
}

/** A record's JWT fields with every granted-at resolved: what a save by someone else must carry over. */
export function carriedJwtFields(rec: PrincipalRecord | undefined): JwtFields {
  if (!rec?.jwtIssuer && !rec?.jwtRoles && !rec?.jwtChannels) return {};
  const out: JwtFields = {};
  if (rec.jwtIssuer) out.jwtIssuer = rec.jwtIssuer;
  if (rec.jwtRoles) out.jwtRoles = Object.fromEntries(resolvedGrants(rec.jwtRoles, rec));
  if (rec.jwtChannels) out.jwtChannels = Object.fromEntries(resolvedGrants(rec.jwtChannels, rec));
  if (rec.jwtLastUpdated) out.jwtLastUpdated = rec.jwtLastUpdated;
  return out;
}

/** The record a login saves, or undefined when nothing differs (no new sequence then). */
export function recordAfterLogin(rec: PrincipalRecord, login: JwtGrantInput, nowIso: string): Omit<PrincipalRecord, 'seq'> | undefined {
  const email = login.email !== undefined && login.email !== rec.email ? login.email : undefined;
  if (email === undefined && rec.jwtIssuer === login.issuer && sameSet(rec.jwtRoles, login.roles) && sameSet(rec.jwtChannels, login.channels)) return undefined;
  const { seq: _seq, ...rest } = rec;
  return {
    ...rest,
    ...(email !== undefined ? { email } : {}),
    // Admin grants keep their sequence: 0 would otherwise read as this new save's.
    adminChannels: Object.fromEntries(resolvedGrants(rec.adminChannels, rec)),
    adminRoles: Object.fromEntries(resolvedGrants(rec.adminRoles, rec)),
    jwtIssuer: login.issuer,
    jwtRoles: restamp(resolvedGrants(rec.jwtRoles ?? {}, rec), login.roles),
    jwtChannels: restamp(resolvedGrants(rec.jwtChannels ?? {}, rec), login.channels),
    jwtLastUpdated: nowIso,
  };
}

/** The record once a stale issuer's grants are revoked (spec §3.1). */
export function recordWithoutJwt(rec: PrincipalRecord, nowIso: string): Omit<PrincipalRecord, 'seq'> {
  const { seq: _seq, jwtIssuer: _i, ...rest } = rec;
  return {
    ...rest,
    adminChannels: Object.fromEntries(resolvedGrants(rec.adminChannels, rec)),
    adminRoles: Object.fromEntries(resolvedGrants(rec.adminRoles, rec)),
    jwtRoles: {}, jwtChannels: {}, jwtLastUpdated: nowIso,
  };
}

const sorted = (r: Record<string, number> | undefined) => Object.keys(r ?? {}).sort();

/** `GET /{db}/_user/{name}`'s JWT fields (omitted when empty, as Go's omitempty). */
export function jwtFieldsJson(rec: PrincipalRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (rec.jwtIssuer) out.jwt_issuer = rec.jwtIssuer;
  if (sorted(rec.jwtRoles).length) out.jwt_roles = sorted(rec.jwtRoles);
  if (sorted(rec.jwtChannels).length) out.jwt_channels = sorted(rec.jwtChannels);
  if (rec.jwtLastUpdated) out.jwt_last_updated = rec.jwtLastUpdated;
  return out;
}

/** The JWT fields are read-only: a PUT may echo them back, but not change them (400). */
export function checkJwtFieldsUnchanged(body: Record<string, unknown>, rec: PrincipalRecord | undefined): void {
  const current = rec ? jwtFieldsJson(rec) : {};
  for (const k of ['jwt_issuer', 'jwt_roles', 'jwt_channels', 'jwt_last_updated']) {
    const given = body[k];
    if (given === undefined || given === null) continue;
    const norm = Array.isArray(given) ? JSON.stringify([...given].sort()) : JSON.stringify(given);
    if (norm !== JSON.stringify(current[k] ?? (Array.isArray(given) ? [] : undefined))) {
      throw new HttpError(400, `${k} is read-only: it is set by the user's JWT logins`);
    }
  }
}
