/**
 * REST keyspaces (spec collections-delta.md §1.10): the first path segment is `db`, `db.collection`
 * or `db.scope.collection`. Parsed once by the server, resolved against the database's collections
 * for the routes that address one (`Route.keyspace`), so handlers only ever see a Collection.
 */
import { HttpError } from '../errors.ts';
import { type Collection, DEFAULT_COLLECTION, DEFAULT_SCOPE } from '../db/collection.ts';
import type { Database } from '../db/database.ts';

export interface Keyspace {
  db: string;
  scope?: string;
  collection?: string;
}

/** Splits the first path segment on `.`: 1 to 3 non-empty fields (Sync Gateway's `ParseKeyspace`). */
export function parseKeyspace(segment: string): Keyspace {
  const parts = segment.split('.');
  if (parts.length > 3) throw new HttpError(400, `unknown keyspace format for "${segment}" - expected 1-3 fields`);
  if (parts.some((p) => p === '')) throw new HttpError(400, `keyspace fields cannot be empty: "${segment}"`);
  if (parts.length === 1) return { db: parts[0] };
  if (parts.length === 2) return { db: parts[0], collection: parts[1] };
  return { db: parts[0], scope: parts[1], collection: parts[2] };
}

/** True when the segment names more than a database. */
export function namesCollection(ks: Keyspace): boolean {
  return ks.collection !== undefined;
}

/**
 * Sync Gateway's resolution: no scope → the database's only scope, else `_default`; no collection →
 * `_default`, unless that scope has several collections. A missing keyspace is 404 naming it in full.
 */
export function resolveKeyspace(db: Database, ks: Keyspace): Collection {
  const all = db.collections();
  let scope = ks.scope;
  if (scope === undefined) {
    const scopes = new Set(all.map((c) => c.scope));
    scope = ks.collection !== undefined && scopes.size === 1 ? [...scopes][0] : DEFAULT_SCOPE;
  }
  let name = ks.collection;
  if (name === undefined) {
    name = DEFAULT_COLLECTION;
  }
  const found = db.collection(scope, name);
  if (!found) throw new HttpError(404, `keyspace ${db.name}.${scope}.${name} not found`);
  return found;
}
