/**
 * The active side of Inter-Sync Gateway Replication: `createReplicator` builds the replicator of one
 * definition on a local database (see replicator.ts); the registry drives it through
 * `ActiveReplicator` only.
 */
import type { CreateReplicator } from '../isgr/types.ts';
import { Replicator, type ReplicatorOptions } from './replicator.ts';

export const createReplicator: CreateReplicator = (db, config, hooks) => new Replicator(db, config, hooks);

/** The same with test knobs (a shorter first backoff, a shorter give-up time). */
export function createReplicatorWith(opts: ReplicatorOptions): CreateReplicator {
  return (db, config, hooks) => new Replicator(db, config, hooks, opts);
}
