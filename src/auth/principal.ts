/**
 * Who a request acts as. The admin (admin port, sync function re-runs) bypasses every check; a user
 * (GUEST included) sees exactly the channels computed for it, each with the sequence at which it
 * was granted, which drives backfill in the changes feed.
 */

export interface UserPrincipal {
  kind: 'user';
  /** User name; `GUEST` for the anonymous user. */
  name: string;
  isGuest: boolean;
  /** Every channel the user can see (admin channels, document grants, role channels, `!`) → granted-at sequence. `*` means all. */
  channels: Map<string, number>;
  /** Roles (without `role:`) → granted-at sequence. */
  roles: Map<string, number>;
  /** Last sequence at which anything about this user changed: its own save, its grants, its roles' channels. */
  seq: number;
  /** Set when the user's JWT grants came from this issuer (a stale one is revoked on use). */
  jwtIssuer?: string;
  /**
   * Named collections' channels: `scope.collection` → channel → granted-at sequence. `channels`
   * above is the default collection's. `principalIn` picks one collection's view.
   */
  collectionChannels?: Map<string, Map<string, number>>;
}

export interface AdminPrincipal {
  kind: 'admin';
}

export type Principal = AdminPrincipal | UserPrincipal;

export const ADMIN: AdminPrincipal = { kind: 'admin' };

/** Every user implicitly has the public channel `!` from sequence 1. */
export const PUBLIC_CHANNEL = '!';
export const ALL_CHANNELS = '*';
/** `scope.collection` of the default collection: its channels are a principal's top-level `channels`. */
export const DEFAULT_COLLECTION_KEY = '_default._default';

export function canSeeAll(p: Principal): boolean {
  return p.kind === 'admin' || p.channels.has(ALL_CHANNELS);
}

/** True when the principal may see a revision in these channels. */
export function canSee(p: Principal, channels: readonly string[]): boolean {
  if (p.kind === 'admin') return true;
  if (p.channels.has(ALL_CHANNELS)) return true;
  for (const ch of channels) if (p.channels.has(ch)) return true;
  return false;
}

/**
 * The principal as one collection sees it: a user's `channels` become that collection's channels
 * (the public channel `!` included, as every collection has its own). The admin stays the admin.
 * Every caller of a Collection (REST keyspace routes, BLIP collection handlers) maps once, at the edge.
 */
export function principalIn(p: Principal, collectionKey: string): Principal {
  if (p.kind === 'admin' || collectionKey === DEFAULT_COLLECTION_KEY) return p;
  const channels = p.collectionChannels?.get(collectionKey) ?? new Map([[PUBLIC_CHANNEL, 1]]);
  return { ...p, channels };
}
