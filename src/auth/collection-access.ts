/**
 * `collection_access` (Sync Gateway 3.1, `auth/principal.go`): a user's or role's admin channels in
 * named collections, `{scope: {collection: {admin_channels: [...]}}}`, beside the default
 * collection's top-level `admin_channels`. Parsed from the admin API and configs, stored in the
 * principal record by `scope.collection` key, and rendered back with each collection's
 * `all_channels`, as Sync Gateway's GET `_user`/`_role` shows them.
 */
import { DEFAULT_COLLECTION_KEY } from './principal.ts';
import { HttpError } from '../errors.ts';
import type { PrincipalRecord } from '../storage/store.ts';


/** `scope.collection` → admin channel names, as given. */
export type CollectionAdminChannels = Record<string, string[]>;

/**
 * Parses `collection_access`; undefined when absent (a PUT without it leaves the stored access
 * alone, as Sync Gateway updates only the collections named). `known` lists the database's
 * collection keys: naming another is a 404 like any unknown keyspace.
 */
export function parseCollectionAccess(v: unknown, known?: readonly string[], dbName = ''): CollectionAdminChannels | undefined {
  if (v === undefined || v === null) return undefined;
  const bad = (what: string) => new HttpError(400, `Bad JSON: collection_access${what}`);
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(' must be an object of scopes');
  const out: CollectionAdminChannels = {};
  for (const [scope, sv] of Object.entries(v as Record<string, unknown>)) {
    if (!sv || typeof sv !== 'object' || Array.isArray(sv)) throw bad(`.${scope} must be an object of collections`);
    for (const [coll, cv] of Object.entries(sv as Record<string, unknown>)) {
      const key = `${scope}.${coll}`;
      if (known && !known.includes(key)) throw new HttpError(404, `keyspace ${dbName}.${key} not found`);
      if (cv === null || cv === undefined) { out[key] = []; continue; }
      if (typeof cv !== 'object' || Array.isArray(cv)) throw bad(`.${scope}.${coll} must be an object`);
      const chans = (cv as Record<string, unknown>).admin_channels;
      if (chans === undefined || chans === null) { out[key] = []; continue; }
      if (!Array.isArray(chans) || !chans.every((c) => typeof c === 'string')) throw bad(`.${scope}.${coll}.admin_channels must be an array of strings`);
      for (const ch of chans) if (ch === '' || ch.includes(',')) throw new HttpError(400, 'Illegal channel name');
      out[key] = [...new Set(chans as string[])];
    }
  }
  return out;
}

/**
 * The record's collection channels after an update naming `given` collections: each named one is
 * replaced (surviving channels keep their granted-at sequence, new ones are stamped by this save),
 * the others are kept. `_default._default` is not stored here: it is the top-level admin_channels.
 */
export function updatedCollectionChannels(
  rec: PrincipalRecord | undefined, given: CollectionAdminChannels | undefined, grantedBySave: number,
): Record<string, Record<string, number>> | undefined {
  const current = rec?.collectionChannels ?? {};
  if (!given) return Object.keys(current).length ? current : undefined;
  const out: Record<string, Record<string, number>> = { ...current };
  for (const [key, names] of Object.entries(given)) {
    if (key === DEFAULT_COLLECTION_KEY) continue;
    const old = current[key] ?? {};
    const next: Record<string, number> = {};
    for (const n of names) next[n] = Object.hasOwn(old, n) ? old[n] : grantedBySave;
    if (names.length) out[key] = next; else delete out[key];
  }
  return Object.keys(out).length ? out : undefined;
}

/** Whether an update would change the stored collection channels (the set of names per collection). */
export function collectionChannelsDiffer(rec: PrincipalRecord | undefined, next: Record<string, Record<string, number>> | undefined): boolean {
  const a = rec?.collectionChannels ?? {};
  const b = next ?? {};
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const x = Object.keys(a[k] ?? {}).sort().join('\u0000');
    const y = Object.keys(b[k] ?? {}).sort().join('\u0000');
    if (x !== y) return true;
  }
  return false;
}

/**
 * `collection_access` as the admin API shows it: per collection, `admin_channels` (when any) and
 * `all_channels` (what the principal sees there, `!` included), for every collection the record or
 * its computed access names.
 */
export function renderCollectionAccess(
  rec: PrincipalRecord, computed: Map<string, Map<string, number>>,
): Record<string, Record<string, { admin_channels?: string[]; all_channels: string[] }>> | undefined {
  const keys = new Set([...Object.keys(rec.collectionChannels ?? {}), ...computed.keys()]);
  if (keys.size === 0) return undefined;
  const out: Record<string, Record<string, { admin_channels?: string[]; all_channels: string[] }>> = {};
  for (const key of [...keys].sort()) {
    const i = key.indexOf('.');
    const scope = key.slice(0, i);
    const coll = key.slice(i + 1);
    const admin = Object.keys(rec.collectionChannels?.[key] ?? {}).sort();
    const all = [...(computed.get(key)?.keys() ?? ['!'])].sort();
    (out[scope] ??= {})[coll] = { ...(admin.length ? { admin_channels: admin } : {}), all_channels: all };
  }
  return out;
}
