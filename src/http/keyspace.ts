/**
 * REST keyspaces (spec collections-delta.md §1.10): the first path segment is `db`, `db.collection`
 * or `db.scope.collection`. Parsed once by the server, resolved against the database's collections
 * for the routes that address one (`Route.keyspace`), so handlers only ever see a Collection.
 * Every other `/{db}/...` route reads the segment as a plain database name, as Sync Gateway's
 * `{db}` routes do (so `db.coll/_user/` is a database that does not exist).
 */
import { HttpError } from '../errors.ts';
import { type Collection, DEFAULT_COLLECTION, DEFAULT_SCOPE } from '../db/collection.ts';
import type { Database } from '../db/database.ts';
import { principalIn } from '../auth/principal.ts';
import type { RequestContext } from './context.ts';

export interface Keyspace {
  /** The path segment as given (after percent-decoding): what the 404 names. */
  text: string;
  db: string;
  scope?: string;
  collection?: string;
}

/**
 * Splits the first path segment on `.`: 1 to 3 non-empty fields, with Sync Gateway's `ParseKeyspace`
 * messages. Sync Gateway 3.1 returns these as plain Go errors, which it answers 500 ("Internal
 * error: ..."); here they are the client's mistake they are, 400 (issue 14, "Bad input").
 */
export function parseKeyspace(segment: string): Keyspace {
  const parts = segment.split('.');
  if (parts.length > 3) throw new HttpError(400, `unknown keyspace format: ${JSON.stringify(segment)} - expected 1-3 fields`);
  if (parts.some((p) => p === '')) throw new HttpError(400, `keyspace fields cannot be empty: ${JSON.stringify(segment)}`);
  if (parts.length === 1) return { text: segment, db: parts[0] };
  if (parts.length === 2) return { text: segment, db: parts[0], collection: parts[1] };
  return { text: segment, db: parts[0], scope: parts[1], collection: parts[2] };
}

/**
 * Sync Gateway's resolution (rest/handler.go, "Collection keyspace handling"): a bare `db` is always
 * `_default._default`, whatever collections the database has; `db.coll` takes the database's only
 * scope (`_default` if it had several); `db.scope.coll` is taken as written. A keyspace the database
 * does not have is 404 `keyspace <segment> not found`, where a bare `db` is named
 * `<db>._default._default` (Sync Gateway 3.1.0's text; later 3.1.x releases say `keyspace <db> not found`).
 */
export function resolveKeyspace(db: Database, ks: Keyspace): Collection {
  let scope = ks.scope;
  let name = ks.collection;
  let shown = ks.text;
  if (name === undefined) {
    scope = DEFAULT_SCOPE;
    name = DEFAULT_COLLECTION;
    shown = `${ks.text}.${DEFAULT_SCOPE}.${DEFAULT_COLLECTION}`;
  } else if (scope === undefined) {
    const scopes = new Set(db.collections().map((c) => c.scope));
    scope = scopes.size === 1 ? [...scopes][0] : DEFAULT_SCOPE;
  }
  const found = db.collection(scope!, name);
  if (!found) throw new HttpError(404, `keyspace ${shown} not found`);
  return found;
}

/**
 * Points a request at its keyspace: `ctx.collection`, and the principal (now and on every reload a
 * live feed makes) as that collection sees it (`principalIn`), which is what Collection methods take.
 */
export function enterKeyspace(ctx: RequestContext, db: Database, ks: Keyspace): void {
  const coll = resolveKeyspace(db, ks);
  ctx.collection = coll;
  ctx.principal = principalIn(ctx.principal, coll.key);
  const reload = ctx.reloadPrincipal;
  ctx.reloadPrincipal = async () => {
    const p = await reload();
    return p && principalIn(p, coll.key);
  };
}
