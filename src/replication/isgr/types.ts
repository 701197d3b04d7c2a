/**
 * Inter-Sync Gateway Replication (ISGR, spec sg3-admin.md §5): the shapes shared by the admin API
 * and persistence (`api`/`registry`, who stores definitions and assigns each to one node) and the
 * active replicator (`src/replication/active/`, the client end of the BLIP stack that runs one
 * replication). The registry builds a replicator with `createReplicator` and only talks to it
 * through `ActiveReplicator`.
 */
import type { Database } from '../../db/database.ts';
import type { Principal } from '../../auth/principal.ts';

export type ReplicationDirection = 'push' | 'pull' | 'pushAndPull';
export type ConflictResolutionType = 'default' | 'localWins' | 'remoteWins' | 'custom';

/** A replication definition as stored (defaults filled in; `remote` may carry credentials). */
export interface ReplicationConfig {
  replication_id: string;
  /** `http(s)://[user:pass@]host:port/db` of the remote database. */
  remote: string;
  remote_username?: string;
  remote_password?: string;
  direction: ReplicationDirection;
  continuous: boolean;
  /** Only `sync_gateway/bychannel`. */
  filter?: string;
  /** Channels of the bychannel filter. */
  query_params?: { channels: string[] };
  purge_on_removal: boolean;
  conflict_resolution_type: ConflictResolutionType;
  custom_conflict_resolver?: string;
  batch_size: number;
  /** Minutes; reconnect delay starts at 1 s and doubles up to this cap (0: 5 min cap, give up after ~10 min). */
  max_backoff_time: number;
  initial_state: 'running' | 'stopped';
  adhoc: boolean;
  /** Replicate with this local user's access (push reads its feed; pull writes as it). */
  run_as?: string;
  /** Syncgate's own: a CA file (PEM) to verify the remote's certificate (`wss://` / `https://`). */
  remote_ca_file?: string;
  /** Syncgate's own: an X.509 client certificate and key (PEM files) for a remote that asks for one. */
  remote_cert_file?: string;
  remote_key_file?: string;
  /** Replicate named collections (`getCollections`, a `collection` index on every message). */
  collections_enabled?: boolean;
  /** `scope.collection` names of local collections to replicate (default: all of the database's). */
  collections_local?: string[];
  /** Remote names by position in `collections_local`; null: the same name as the local one. */
  collections_remote?: (string | null)[];
}

/** The run states a replicator reports (the API adds `unassigned`, `resetting`, `removed`). */
export type ReplicatorState = 'starting' | 'running' | 'reconnecting' | 'stopped' | 'error';

/** Sync Gateway's status counters (all omitted when zero in the REST status). */
export interface ReplicationCounters {
  docs_read: number;
  docs_checked_pull: number;
  docs_purged: number;
  rejected_by_local: number;
  docs_written: number;
  docs_checked_push: number;
  doc_write_failures: number;
  doc_write_conflict: number;
  rejected_by_remote: number;
  /** Positions as strings (Sync Gateway's); empty: none yet. */
  last_seq_pull: string;
  last_seq_push: string;
}

export interface ReplicatorSnapshot {
  state: ReplicatorState;
  error_message?: string;
  counters: ReplicationCounters;
}

/** One running replication on this node. */
export interface ActiveReplicator {
  readonly id: string;
  /** Starts (or restarts after stop); returns at once, the run goes on in the background. */
  start(): void;
  /** Stops after the current batch; resolves once stopped (checkpoints saved). */
  stop(): Promise<void>;
  /** Clears both checkpoints (local and remote) and the counters; only while stopped. */
  reset(): Promise<void>;
  snapshot(): ReplicatorSnapshot;
  /** Called on every state change and after each batch (the registry persists snapshots from it). */
  onChange(listener: (s: ReplicatorSnapshot) => void): () => void;
}

export interface ReplicatorHooks {
  log(level: 'info' | 'warn' | 'debug', msg: string): void;
  /**
   * Loads the `run_as` user with its current access (the database's `Principals.loadUser`).
   * Optional: without it the replicator reads the user from the database's store itself.
   */
  loadUser?(name: string): Promise<Principal | undefined>;
}

/** Builds the replicator for one definition on a local database (src/replication/active/). */
export type CreateReplicator = (db: Database, config: ReplicationConfig, hooks: ReplicatorHooks) => ActiveReplicator;

export function zeroCounters(): ReplicationCounters {
  return {
    docs_read: 0, docs_checked_pull: 0, docs_purged: 0, rejected_by_local: 0, docs_written: 0, docs_checked_push: 0,
    doc_write_failures: 0, doc_write_conflict: 0, rejected_by_remote: 0, last_seq_pull: '', last_seq_push: '',
  };
}
