/**
 * Where persistent-mode database configs live (beside `Store`, same two backends): one versioned
 * config per (group, database). Each write is one transaction holding the config and its version,
 * so a crash leaves the old or the new one, never a mix; `replace` is a compare-and-swap on the
 * version, so two nodes editing one config cannot overwrite each other unseen.
 */

export interface StoredDbConfig {
  db: string;
  bucket: string;
  /** `<generation>-<md5 hex>` (SG's config version, sent as the `Etag`). */
  version: string;
  /** The database config as persisted (canonical keys, `name` and `bucket` stamped). */
  config: Record<string, unknown>;
  /** The Syncgate that wrote it. */
  sgVersion: string;
}

export type InsertResult = 'inserted' | 'exists' | { bucketUsedBy: string };

export interface ConfigStore {
  /** Every config of a group. */
  list(group: string): Promise<StoredDbConfig[]>;
  get(group: string, db: string): Promise<StoredDbConfig | undefined>;
  /** Adds a config unless the group has one by that name, or another database (any group) uses its bucket. */
  insert(group: string, c: StoredDbConfig): Promise<InsertResult>;
  /** Replaces the config if its stored version is still `expectedVersion`; false if it moved or is gone. */
  replace(group: string, c: StoredDbConfig, expectedVersion: string): Promise<boolean>;
  delete(group: string, db: string): Promise<boolean>;
  /**
   * Calls `onChange` soon after any node changes a config of the group (PostgreSQL LISTEN/NOTIFY);
   * a backend without that leaves it out and nodes rely on polling. `db` is '' when the store cannot
   * tell what changed (its notifications were interrupted). Returns an unsubscribe function.
   */
  watch?(group: string, onChange: (db: string) => void): () => void;
  close(): Promise<void>;
}
