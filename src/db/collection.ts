/**
 * Scopes and collections (Sync Gateway 3.1, spec collections-delta.md part 1). A database holds one
 * scope of collections; each collection has its own documents, revision trees, channel index,
 * local documents and sync function, while sequences, users, roles and sessions stay database-wide.
 * Routes and BLIP handlers resolve a keyspace to a Collection once, at the edge, and then speak only
 * to the Collection.
 *
 * Contract for every caller: the principal handed to a Collection method, or to the changes path
 * with a Collection, is already the principal *in that collection* (`principalIn`, auth/principal.ts):
 * its `channels` are that collection's channels. The edge maps it; the Collection never does.
 */
import type { Database } from './database.ts';

export const DEFAULT_SCOPE = '_default';
export const DEFAULT_COLLECTION = '_default';
/** `scope.collection` of the default collection: the key of a database without `scopes`. */
export const DEFAULT_KEY = `${DEFAULT_SCOPE}.${DEFAULT_COLLECTION}`;

/** A collection's name within its database. */
export interface CollectionName {
  scope: string;
  name: string;
}

/** `scope.collection`: how a collection is keyed in maps, grants and storage. */
export function collectionKey(scope: string, name: string): string {
  return `${scope}.${name}`;
}

export function isDefaultCollection(c: CollectionName): boolean {
  return c.scope === DEFAULT_SCOPE && c.name === DEFAULT_COLLECTION;
}

/**
 * The document-facing API of one collection. The members keep the names and signatures they had on
 * Database before collections existed, so the default collection's behaviour is unchanged.
 */
export type Collection = Pick<Database,
  | 'store' | 'notifier' | 'sharedReads' | 'revsLimit' | 'allowConflicts' | 'maxAttachmentSize'
  | 'maxDocumentBytes' | 'maxChannelsPerDoc' | 'sync' | 'deltaSyncEnabled' | 'oldRevRetentionSecs' | 'deltaCache'
  | 'put' | 'bulkWrite' | 'delete' | 'purge' | 'resyncDocs' | 'sweepExpired' | 'getDocMeta' | 'get' | 'viewOf'
  | 'revisionsOf' | 'getOpenRevs' | 'getMany' | 'getAttachmentData' | 'attachmentsToInline' | 'revsDiff'
  | 'getLocal' | 'putLocal' | 'deleteLocal' | 'readState'
> & {
  /** The database the collection belongs to (state, stats, jobs, users and roles live there). */
  readonly db: Database;
  readonly scope: string;
  /** The collection's own name (`airline`), `_default` for the default collection. */
  readonly collectionName: string;
  /** `scope.collection`. */
  readonly key: string;
};
