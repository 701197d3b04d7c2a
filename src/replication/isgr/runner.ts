/**
 * Where the registry gets its replicators. The active replicator (src/replication/active/) is built
 * on another branch; the composition root (src/gateway.ts) hands its `createReplicator` to the
 * registry. Until it is wired in, `unavailableReplicator` stands in: every replication it is asked
 * to start reports `error` with a message that says why, so nothing pretends to replicate.
 */
import type { ActiveReplicator, CreateReplicator, ReplicatorSnapshot } from './types.ts';
import { zeroCounters } from './types.ts';

export type { CreateReplicator } from './types.ts';

export const UNAVAILABLE_MESSAGE = 'the active replicator is not part of this build of Syncgate';

class UnavailableReplicator implements ActiveReplicator {
  private state: ReplicatorSnapshot = { state: 'stopped', counters: zeroCounters() };
  private readonly listeners = new Set<(s: ReplicatorSnapshot) => void>();
  constructor(readonly id: string) {}
  start(): void { this.set({ state: 'error', error_message: UNAVAILABLE_MESSAGE, counters: this.state.counters }); }
  async stop(): Promise<void> { this.set({ state: 'stopped', counters: this.state.counters }); }
  async reset(): Promise<void> { this.set({ state: 'stopped', counters: zeroCounters() }); }
  snapshot(): ReplicatorSnapshot { return structuredClone(this.state); }
  onChange(listener: (s: ReplicatorSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  }
  private set(s: ReplicatorSnapshot): void {
    this.state = s;
    for (const l of this.listeners) l(this.snapshot());
  }
}

export const unavailableReplicator: CreateReplicator = (_db, config) => new UnavailableReplicator(config.replication_id);
