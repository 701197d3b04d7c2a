/**
 * `scopes` in a database config (spec collections-delta.md §1.9; Sync Gateway 3.1 `rest/config.go`
 * `DbConfig.validate` and `validateChanges`): one scope, at least one collection in it, no
 * database-level `sync`/`import_filter` beside it, names as Couchbase Server allows them, the scope
 * fixed once the database exists. Messages are Sync Gateway's, without a key path, so the REST
 * config can answer them as they are and the start-up file can prefix its own path.
 */
import { isPlainObject } from './normalize.ts';
import type { CollectionConfig } from './types.ts';

type Obj = Record<string, unknown>;

const DEFAULT = '_default';
/** `channels.DocChannelsSyncFunction` (the sync layer's DEFAULT_SYNC_FUNCTION; config depends on nothing of ours). */
const DOC_CHANNELS_SYNC = 'function(doc){channel(doc.channels);}';

/**
 * Sync Gateway's default sync function of a collection (`channels.GetDefaultSyncFunction`): the
 * document's own `channels` for `_default._default`, the collection's name (without the scope)
 * as the one channel of every document of a named collection.
 */
export function defaultSyncSource(scope: string, name: string): string {
  return scope === DEFAULT && name === DEFAULT ? DOC_CHANNELS_SYNC : `function(doc){channel(${JSON.stringify(name)});}`;
}

/**
 * Couchbase Server's rule for a scope or collection name (sg-bucket `IsValidDataStoreName`): 1 to
 * 251 of `A-Z a-z 0-9 _ - %`, not starting with `_` or `%`; `_default` is the one exception, as a
 * scope, and as a collection only in the `_default` scope.
 */
const NAME_RE = /^[a-zA-Z0-9-][a-zA-Z0-9%_-]{0,250}$/;
export function isValidCollectionName(scope: string, name: string): boolean {
  if (scope === DEFAULT) return name === DEFAULT || NAME_RE.test(name);
  return NAME_RE.test(scope) && NAME_RE.test(name);
}

/** A JS source that counts as set: Sync Gateway treats an empty or blank one as absent. */
export function jsSet(v: unknown): v is string {
  return typeof v === 'string' && v.trim() !== '';
}

/** The scope names a config lists (`scopes` absent or not an object: none). */
function scopeNames(config: Obj): string[] | undefined {
  return isPlainObject(config.scopes) ? Object.keys(config.scopes) : undefined;
}

/**
 * The collections `scopes` lists, in configuration order (JavaScript object order: a collection
 * named by digits only comes before the others), each with its functions, blank ones unset; plus
 * every problem as Sync Gateway words it. `collections` is undefined for a config without `scopes`
 * or with an empty one (Sync Gateway: the database is `_default._default` with the db-level `sync`).
 */
export function parseScopes(config: Obj): { collections?: CollectionConfig[]; problems: string[] } {
  const problems: string[] = [];
  const scopes = isPlainObject(config.scopes) ? config.scopes : {};
  const names = Object.keys(scopes);
  if (names.length === 0) return { problems };
  if (names.length > 1) {
    // Sync Gateway also prints its Go map there ("(map[a:{...}])"); the names say the same.
    return { problems: [`only one named scope is supported, but had ${names.length} (${names.join(', ')})`] };
  }
  // Sync Gateway's wording (Syncgate has no views either way; `use_views` is accepted and ignored).
  if (config.use_views === true) problems.push('useViews=true is incompatible with collections which requires GSI');
  const collections: CollectionConfig[] = [];
  for (const scope of names) {
    const sc = scopes[scope];
    const colls = isPlainObject(sc) && isPlainObject(sc.collections) ? sc.collections : {};
    if (Object.keys(colls).length === 0) {
      problems.push(`must specify at least one collection in scope ${scope}`);
      continue;
    }
    if (jsSet(config.sync)) problems.push('cannot specify a database-level sync function with named scopes and collections');
    if (jsSet(config.import_filter)) problems.push('cannot specify a database-level import filter with named scopes and collections');
    for (const [name, v] of Object.entries(colls)) {
      if (!isValidCollectionName(scope, name)) {
        // sg-bucket's wording; Sync Gateway meets it when it opens the collection in the bucket.
        problems.push(`invalid scope/collection name '${scope}.${name}'`);
        continue;
      }
      const c = isPlainObject(v) ? v : {};
      const out: CollectionConfig = { scope, name };
      if (jsSet(c.sync)) out.sync = c.sync;
      if (jsSet(c.import_filter)) out.importFilter = c.import_filter;
      collections.push(out);
    }
  }
  return { collections, problems };
}

/**
 * Sync Gateway's `validateChanges` between the config a database was created with (`previous`)
 * and an update: the set of scope names is fixed, except that a database without `scopes` may
 * name the `_default` scope explicitly. Collections may be added and removed (Sync Gateway 3.1
 * accepts both: a removed collection's keyspace is then 404, its documents stay where they are).
 */
export function scopeChangeProblem(previous: Obj, next: Obj): string | undefined {
  const before = scopeNames(previous);
  const after = scopeNames(next) ?? [];
  if (before === undefined && after.length === 1 && after[0] === DEFAULT) return undefined;
  const old = new Set(before ?? []);
  if (after.length !== old.size || after.some((s) => !old.has(s))) return 'cannot change scopes after database creation';
  return undefined;
}

/** Where a collection's functions live in a raw config: its entry under `scopes`, or the config itself for the implicit default collection. */
export function collectionHolder(config: Obj, scope: string, name: string): Obj | undefined {
  if (!isPlainObject(config.scopes) || Object.keys(config.scopes).length === 0) {
    return scope === DEFAULT && name === DEFAULT ? config : undefined;
  }
  const sc = config.scopes[scope];
  const colls = isPlainObject(sc) ? sc.collections : undefined;
  const c = isPlainObject(colls) && Object.prototype.hasOwnProperty.call(colls, name) ? colls[name] : undefined;
  return isPlainObject(c) ? c : undefined;
}

/** Every sync function and import filter a raw config sets, labelled as Sync Gateway's errors name them. */
export function configuredFunctions(config: Obj): { label: string; source: string }[] {
  const out: { label: string; source: string }[] = [];
  const add = (prefix: string, holder: Obj) => {
    if (jsSet(holder.sync)) out.push({ label: `${prefix}sync function`, source: holder.sync });
    if (jsSet(holder.import_filter)) out.push({ label: `${prefix}import filter`, source: holder.import_filter });
  };
  add('', config);
  const scopes = isPlainObject(config.scopes) ? config.scopes : {};
  for (const sc of Object.values(scopes)) {
    const colls = isPlainObject(sc) && isPlainObject(sc.collections) ? sc.collections : {};
    for (const [name, c] of Object.entries(colls)) if (isPlainObject(c)) add(`collection ${JSON.stringify(name)} `, c);
  }
  return out;
}

/** Whether a database with these collections (unset: only the default one) has `scope.name`. */
export function hasCollection(collections: readonly CollectionConfig[] | undefined, scope: string, name: string): boolean {
  if (!collections) return scope === DEFAULT && name === DEFAULT;
  return collections.some((c) => c.scope === scope && c.name === name);
}

/**
 * A user's or role's `collection_access` (`{scope: {collection: {admin_channels: [...]}}}`): every
 * keyspace must be one of the database's (Sync Gateway: "keyspace specified in collection_access
 * (db.scope.collection) not found"). Types were checked by the schema.
 */
export function buildCollectionAccess(
  raw: unknown, db: string, collections: readonly CollectionConfig[] | undefined, err: (m: string) => void,
): Record<string, Record<string, { admin_channels: string[] }>> | undefined {
  if (!isPlainObject(raw)) return undefined;
  const out: Record<string, Record<string, { admin_channels: string[] }>> = {};
  for (const [scope, colls] of Object.entries(raw)) {
    if (!isPlainObject(colls)) continue;
    for (const [name, access] of Object.entries(colls)) {
      if (!hasCollection(collections, scope, name)) {
        err(`keyspace specified in collection_access (${db}.${scope}.${name}) not found`);
        continue;
      }
      const list = isPlainObject(access) && Array.isArray(access.admin_channels) ? access.admin_channels.filter((c): c is string => typeof c === 'string') : [];
      // Only the database's own names get here, never `__proto__` (names cannot start with `_`
      // but `_default`); `constructor` can, hence hasOwn rather than `??=`.
      const s = Object.hasOwn(out, scope) ? out[scope] : (out[scope] = {});
      s[name] = { admin_channels: list };
    }
  }
  return out;
}
