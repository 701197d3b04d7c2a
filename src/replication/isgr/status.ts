/**
 * The status object of `_replicationStatus` (spec sg3-admin.md §5.3, Sync Gateway's
 * `ReplicationStatus`): every counter and `last_seq_*` is `omitempty`, so zeros and empty strings
 * are left out; `error_message` too.
 */
import type { ReplicationCounters, ReplicatorSnapshot, ReplicatorState } from './types.ts';
import type { TargetState } from './records.ts';

/** The states the API shows: the replicator's, plus the registry's own. */
export type ApiState = ReplicatorState | 'unassigned' | 'resetting' | 'removed' | 'stopping';

/** Pull-side counters first, then push-side, as Sync Gateway's JSON orders them. */
const COUNTER_ORDER: (keyof ReplicationCounters)[] = [
  'docs_read', 'docs_checked_pull', 'docs_purged', 'rejected_by_local', 'last_seq_pull',
  'docs_written', 'docs_checked_push', 'doc_write_failures', 'doc_write_conflict', 'rejected_by_remote', 'last_seq_push',
];

export interface StatusView {
  replication_id: string;
  config?: Record<string, unknown>;
  status: string;
  error_message?: string;
  [counter: string]: unknown;
}

export function statusView(id: string, status: string, snapshot?: ReplicatorSnapshot): StatusView {
  const out: StatusView = { replication_id: id, status };
  if (snapshot?.error_message) out.error_message = snapshot.error_message;
  for (const k of COUNTER_ORDER) {
    const v = snapshot?.counters[k];
    if (v !== undefined && v !== 0 && v !== '') out[k] = v;
  }
  return out;
}

/**
 * `pushAndPull` runs two directions; their states combine as Sync Gateway's `combinedState`:
 * stopped only when both are, else running if either is, else error, else reconnecting.
 * A replicator that runs both halves reports the combination through it.
 */
export function combinedState(push: ReplicatorState | '', pull: ReplicatorState | ''): ReplicatorState {
  if (push === '') return pull === '' ? 'stopped' : pull;
  if (pull === '') return push;
  if (push === 'stopped' && pull === 'stopped') return 'stopped';
  if (push === 'running' || pull === 'running') return 'running';
  if (push === 'error' || pull === 'error') return 'error';
  if (push === 'reconnecting' || pull === 'reconnecting') return 'reconnecting';
  return push;
}

/** The `status` an action's answer shows: `starting` / `stopping` unless already there (`transitionStateName`). */
export function transitionState(current: string, target: TargetState): string {
  if (target === 'running') return current === 'running' ? 'running' : 'starting';
  if (target === 'stopped') return current === 'stopped' ? 'stopped' : 'stopping';
  return target;
}
