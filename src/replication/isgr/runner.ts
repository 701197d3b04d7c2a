/**
 * Where the registry gets its replicators: the active replicator (src/replication/active/), handed
 * over by the composition root (src/gateway.ts), which tests may replace with their own factory.
 */
export type { CreateReplicator } from './types.ts';
export { createReplicator as defaultCreateReplicator } from '../active/index.ts';
