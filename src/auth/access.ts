/**
 * What a user may see, as a pure function of stored data (spec §5.4, §7.3): the public channel `!`
 * at sequence 1, the user's admin channels, channels granted to it by documents (`access()`), and for
 * every role it holds (admin roles and `role()` grants) that role's admin channels and document
 * grants. Each channel carries the EARLIEST sequence at which it became visible through any path;
 * a channel reached through a role counts from max(role granted at, channel granted to role at).
 * No I/O, no clock: the caller loads the records and grants.
 */
import type { GrantRow, PrincipalRecord } from '../storage/store.ts';
import { DEFAULT_COLLECTION_KEY, PUBLIC_CHANNEL } from './principal.ts';

/**
 * Granted-at value stored for an admin channel or admin role added by the save that wrote the
 * record: `Store.putPrincipal` assigns the record's sequence, so the writer cannot know it
 * beforehand. It reads as the record's own `seq` (see {@link grantedAt}).
 */
export const GRANTED_BY_OWN_SAVE = 0;

/** Name under which the anonymous user is stored and granted to. */
export const GUEST_NAME = 'GUEST';

export const ROLE_PREFIX = 'role:';

export interface Access {
  /** Channel → earliest sequence at which it became visible. Always holds `!` at 1. The default collection's. */
  channels: Map<string, number>;
  /**
   * Named collections' channels, by `scope.collection` (only those with something beyond `!`; each
   * map holds `!` at 1 too). A channel of one collection says nothing about another's same name.
   */
  collections: Map<string, Map<string, number>>;
  /** Role name (no `role:`) → earliest sequence at which it was granted. */
  roles: Map<string, number>;
  /** Last sequence at which anything feeding this computation changed. */
  seq: number;
}

/** The granted-at sequence of an admin channel or role as stored in `record`. */
export function grantedAt(stored: number, record: PrincipalRecord): number {
  return stored === GRANTED_BY_OWN_SAVE ? record.seq : stored;
}

/** `record.adminChannels` (or `adminRoles`) with every granted-at value resolved. */
export function resolvedGrants(map: Record<string, number>, record: PrincipalRecord): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(map)) out.set(k, grantedAt(v, record));
  return out;
}

function keepEarliest(m: Map<string, number>, key: string, seq: number): void {
  const cur = m.get(key);
  if (cur === undefined || seq < cur) m.set(key, seq);
}

/** The channel maps of a computation: the default collection's, and named ones made on first use. */
class ChannelMaps {
  readonly main = new Map<string, number>([[PUBLIC_CHANNEL, 1]]);
  readonly named = new Map<string, Map<string, number>>();

  of(collection: string | undefined): Map<string, number> {
    if (collection === undefined || collection === DEFAULT_COLLECTION_KEY) return this.main;
    let m = this.named.get(collection);
    if (!m) this.named.set(collection, m = new Map([[PUBLIC_CHANNEL, 1]]));
    return m;
  }

  /** A record's admin channels in every collection (`admin_channels` and `collection_access`). */
  addAdmin(rec: PrincipalRecord, since = 0): void {
    for (const [ch, s] of Object.entries(rec.adminChannels)) keepEarliest(this.main, ch, Math.max(since, grantedAt(s, rec)));
    for (const [key, chans] of Object.entries(rec.collectionChannels ?? {})) {
      const m = this.of(key);
      for (const [ch, s] of Object.entries(chans)) keepEarliest(m, ch, Math.max(since, grantedAt(s, rec)));
    }
  }
}

function byGrantee(grants: GrantRow[]): Map<string, GrantRow[]> {
  const out = new Map<string, GrantRow[]>();
  for (const g of grants) {
    const list = out.get(g.grantee);
    if (list) list.push(g);
    else out.set(g.grantee, [g]);
  }
  return out;
}

/**
 * A user's access. `user` undefined is the default GUEST (no record: disabled, no channels).
 * `roles` holds the records of the user's roles (missing roles contribute nothing but are still
 * listed in `roles`); `grants` the document grants to the user and to `role:<name>` of its roles;
 * `lastChangedAt` the grantee → last grant-change sequence map from `Store.grantsChangedAt`.
 */
export function computeAccess(
  user: PrincipalRecord | undefined,
  roles: Map<string, PrincipalRecord>,
  grants: GrantRow[],
  lastChangedAt: Map<string, number>,
): Access {
  const name = user?.name ?? GUEST_NAME;
  const grouped = byGrantee(grants);
  const maps = new ChannelMaps();
  const channels = maps.main;
  const userRoles = new Map<string, number>();
  let seq = Math.max(user?.seq ?? 0, lastChangedAt.get(name) ?? 0);

  if (user) {
    maps.addAdmin(user);
    for (const [r, s] of Object.entries(user.adminRoles)) keepEarliest(userRoles, r, grantedAt(s, user));
    // Roles and channels from the claims of the user's last JWT login (spec §3.6).
    for (const [ch, s] of Object.entries(user.jwtChannels ?? {})) keepEarliest(channels, ch, grantedAt(s, user));
    for (const [r, s] of Object.entries(user.jwtRoles ?? {})) keepEarliest(userRoles, r, grantedAt(s, user));
  }
  for (const g of grouped.get(name) ?? []) {
    // A channel grant gives a channel of the granting document's collection; roles are database-wide.
    if (g.kind === 'channel') keepEarliest(maps.of(g.collection), g.value, g.seq);
    else keepEarliest(userRoles, g.value, g.seq);
  }

  for (const [roleName, roleSince] of userRoles) {
    const role = roles.get(roleName);
    if (!role) continue;
    const grantee = ROLE_PREFIX + roleName;
    seq = Math.max(seq, role.seq, lastChangedAt.get(grantee) ?? 0);
    maps.addAdmin(role, roleSince);
    for (const g of grouped.get(grantee) ?? []) {
      if (g.kind === 'channel') keepEarliest(maps.of(g.collection), g.value, Math.max(roleSince, g.seq));
    }
  }
  return { channels, collections: maps.named, roles: userRoles, seq };
}

/** A role's own channels (for the admin API's `all_channels`): `!`, admin channels and document grants. */
export function computeRoleAccess(role: PrincipalRecord, grants: GrantRow[], lastChangedAt: Map<string, number>): Access {
  const grantee = ROLE_PREFIX + role.name;
  const maps = new ChannelMaps();
  maps.addAdmin(role);
  for (const g of grants) if (g.grantee === grantee && g.kind === 'channel') keepEarliest(maps.of(g.collection), g.value, g.seq);
  return { channels: maps.main, collections: maps.named, roles: new Map(), seq: Math.max(role.seq, lastChangedAt.get(grantee) ?? 0) };
}
