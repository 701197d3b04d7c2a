/**
 * Where a user's access comes from (admin `GET /{db}/_user/{name}/_access`, the console's
 * "effective access"): for every channel and role the user has, each path that gives it and the
 * sequence from which that path counts, computed by the same rules as `computeAccess`
 * (access.ts): the public channel `!` at 1; the user's admin grants (`admin_channels`, and
 * `collection_access` for named collections) and JWT claims at their granted-at sequence; `access()`/`role()` grants by the granting document's sequence; a role's
 * channels from max(role held since, channel granted to the role at). A channel's `since` is the
 * earliest of its paths, which is exactly what `computeAccess` gives (a test holds them together).
 *
 * Pure, like access.ts: the caller loads the records and grants (`loadAccessExplanation` does).
 */
import type { GrantRow, PrincipalRecord, Store } from '../storage/store.ts';
import { GUEST_NAME, grantedAt, ROLE_PREFIX } from './access.ts';
import { DEFAULT_COLLECTION_KEY, PUBLIC_CHANNEL } from './principal.ts';

/** One path by which a channel or role reaches the user. */
export type AccessSource =
  | { type: 'public'; since: number }
  | { type: 'admin'; since: number }
  | { type: 'jwt'; since: number }
  | { type: 'document'; doc_id: string; since: number; collection?: string }
  /** A channel through a role: `via` says how the role has the channel (its admin grant or a document's grant). */
  | { type: 'role'; role: string; since: number; via: { type: 'admin'; since: number } | { type: 'document'; doc_id: string; since: number; collection?: string } };

export interface Provenance {
  /** The earliest sequence from which any source gives it. */
  since: number;
  sources: AccessSource[];
}

export interface AccessExplanation {
  name: string;
  /** The default collection's channels (what `all_channels` lists). */
  channels: Record<string, Provenance>;
  roles: Record<string, Provenance>;
  /**
   * Named collections' channels (`scope.collection` → channel → provenance), from `collection_access`
   * admin grants and documents of those collections; each holds `!` too, as computeAccess's maps do.
   */
  collections: Record<string, Record<string, Provenance>>;
}

const isDefault = (c: string | undefined) => c === undefined || c === DEFAULT_COLLECTION_KEY;

function add(map: Record<string, Provenance>, key: string, source: AccessSource): void {
  const cur = map[key];
  if (!cur) map[key] = { since: source.since, sources: [source] };
  else {
    cur.sources.push(source);
    cur.since = Math.min(cur.since, source.since);
  }
}

function docSource(g: GrantRow): { type: 'document'; doc_id: string; since: number; collection?: string } {
  return { type: 'document', doc_id: g.docId, since: g.seq, ...(isDefault(g.collection) ? {} : { collection: g.collection }) };
}

/** Sources ordered by sequence, then type, so answers are stable. */
function sorted(map: Record<string, Provenance>): Record<string, Provenance> {
  const out: Record<string, Provenance> = {};
  for (const k of Object.keys(map).sort()) {
    out[k] = { since: map[k].since, sources: [...map[k].sources].sort((a, b) => a.since - b.since || a.type.localeCompare(b.type)) };
  }
  return out;
}

/**
 * `user` undefined is the default GUEST (no record). `roles` holds the records of the roles the user
 * has; `grants` the document grants to the user and to `role:<r>` for those roles.
 */
export function explainAccess(user: PrincipalRecord | undefined, roles: Map<string, PrincipalRecord>, grants: GrantRow[]): AccessExplanation {
  const name = user?.name ?? GUEST_NAME;
  const channels: Record<string, Provenance> = {};
  const userRoles: Record<string, Provenance> = {};
  const collections: Record<string, Record<string, Provenance>> = {};
  add(channels, PUBLIC_CHANNEL, { type: 'public', since: 1 });
  /** The channel map of a collection, made (with `!`) on first use. */
  const of = (key: string | undefined): Record<string, Provenance> => {
    if (isDefault(key)) return channels;
    if (!collections[key!]) add(collections[key!] = {}, PUBLIC_CHANNEL, { type: 'public', since: 1 });
    return collections[key!];
  };
  if (user) {
    for (const [ch, s] of Object.entries(user.adminChannels)) add(channels, ch, { type: 'admin', since: grantedAt(s, user) });
    for (const [key, chans] of Object.entries(user.collectionChannels ?? {})) {
      const m = of(key);
      for (const [ch, s] of Object.entries(chans)) add(m, ch, { type: 'admin', since: grantedAt(s, user) });
    }
    for (const [r, s] of Object.entries(user.adminRoles)) add(userRoles, r, { type: 'admin', since: grantedAt(s, user) });
    for (const [ch, s] of Object.entries(user.jwtChannels ?? {})) add(channels, ch, { type: 'jwt', since: grantedAt(s, user) });
    for (const [r, s] of Object.entries(user.jwtRoles ?? {})) add(userRoles, r, { type: 'jwt', since: grantedAt(s, user) });
  }
  for (const g of grants) {
    if (g.grantee !== name) continue;
    if (g.kind === 'role') add(userRoles, g.value, docSource(g));
    else add(of(g.collection), g.value, docSource(g));
  }
  for (const [roleName, held] of Object.entries(userRoles)) {
    const role = roles.get(roleName);
    if (!role) continue;
    const roleSince = held.since;
    const adminGrants: [string | undefined, Record<string, number>][] = [[undefined, role.adminChannels], ...Object.entries(role.collectionChannels ?? {})];
    for (const [key, chans] of adminGrants) {
      const m = of(key);
      for (const [ch, s] of Object.entries(chans)) {
        const at = grantedAt(s, role);
        add(m, ch, { type: 'role', role: roleName, since: Math.max(roleSince, at), via: { type: 'admin', since: at } });
      }
    }
    for (const g of grants) {
      if (g.grantee !== ROLE_PREFIX + roleName || g.kind !== 'channel') continue;
      add(of(g.collection), g.value, { type: 'role', role: roleName, since: Math.max(roleSince, g.seq), via: docSource(g) });
    }
  }
  const byCollection: Record<string, Record<string, Provenance>> = {};
  for (const k of Object.keys(collections).sort()) byCollection[k] = sorted(collections[k]);
  return { name, channels: sorted(channels), roles: sorted(userRoles), collections: byCollection };
}

/** Loads what `explainAccess` needs for one user; undefined when there is no such user (GUEST always exists). */
export async function loadAccessExplanation(store: Store, name: string): Promise<AccessExplanation | undefined> {
  const rec = await store.getPrincipal('user', name);
  if (!rec && name !== GUEST_NAME) return undefined;
  const own = await store.grantsTo([name]);
  const roleNames = new Set([...Object.keys(rec?.adminRoles ?? {}), ...Object.keys(rec?.jwtRoles ?? {})]);
  for (const g of own) if (g.kind === 'role') roleNames.add(g.value);
  const names = [...roleNames];
  const [records, roleGrants] = await Promise.all([
    Promise.all(names.map((r) => store.getPrincipal('role', r))),
    names.length ? store.grantsTo(names.map((r) => ROLE_PREFIX + r)) : Promise.resolve([]),
  ]);
  const roles = new Map<string, PrincipalRecord>();
  for (const r of records) if (r) roles.set(r.name, r);
  return explainAccess(rec, roles, own.concat(roleGrants));
}
