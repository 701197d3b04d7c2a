/**
 * What every replication message handler of one BLIP connection shares: the connection, the
 * database, who the client is (reloaded when its grants change), the negotiated CBMobile version,
 * the collections it replicates and what it negotiated about deltas.
 */
import { HttpError } from '../../../errors.ts';
import type { Database } from '../../../db/database.ts';
import type { Principal } from '../../../auth/principal.ts';
import type { BlipConnection, BlipMessageIn } from '../connection.ts';
import type { BlipCollections } from './collections.ts';

export type BlipLog = (level: 'debug' | 'info' | 'warn', msg: string) => void;

export interface SyncContext {
  conn: BlipConnection;
  db: Database;
  /** 2 for `BLIP_3+CBMobile_2`, 3 for `BLIP_3+CBMobile_3`. */
  protocol: 2 | 3;
  /**
   * Current principal, database-wide (its `channels` are the default collection's); what one
   * collection sees is `BlipCollection.principal`. `refreshPrincipal` replaces it after a grant or revocation.
   */
  principal: Principal;
  /** Reloads the principal; false once the user is gone (deleted or disabled). */
  refreshPrincipal(): Promise<boolean>;
  /** Aborted when the connection closes or the database stops. */
  signal: AbortSignal;
  log: BlipLog;
  /** Legacy or collection-aware mode, and the collections messages address (collections.ts). */
  collections: BlipCollections;
  /** What this connection negotiated about deltas (spec collections-delta.md §2.1). */
  deltas: DeltaNegotiation;
}

/**
 * Delta sync is per connection, as Sync Gateway's `useDeltas`: the client says it takes deltas with
 * `deltas: "true"` on a `changes` response (a later response without the property changes nothing;
 * `"false"` turns it off). The server announces on its own responses when the database allows it.
 */
export class DeltaNegotiation {
  /** The pulling client announced deltas. */
  clientAccepts = false;

  /** `onEnabled` runs each time deltas switch on for the connection (`delta_pull_replication_count`). */
  constructor(private readonly enabled: boolean, private readonly onEnabled: () => void = () => {}) {}

  /** The database sends and accepts deltas at all (`delta_sync.enabled`). */
  get serverCan(): boolean { return this.enabled; }

  /** Pull: send deltas to this client. */
  get pullDeltas(): boolean { return this.enabled && this.clientAccepts; }

  /** Reads a `changes` response's `deltas` property, if present. */
  noteChangesResponse(props: Readonly<Record<string, string>>): void {
    if (props.deltas === undefined) return;
    const before = this.pullDeltas;
    this.clientAccepts = boolProp(props.deltas);
    if (!before && this.pullDeltas) this.onEnabled();
  }
}

/** BLIP booleans: `true`, `YES`, or a non-zero integer (LiteCore's reading). */
export function boolProp(v: string | undefined): boolean {
  if (v === undefined) return false;
  if (v === 'true' || v === 'YES' || v === 'yes') return true;
  return /^-?\d+$/.test(v) && Number(v) !== 0;
}

/** Positive integer property, or the default. */
export function intProp(v: string | undefined, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  // Safe integers only: `99999999999999999999` passed the pattern and reached SQLite as a REAL LIMIT
  // ("datatype mismatch"), which failed the changes feed and closed the connection with 1011.
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new HttpError(400, `Invalid integer property "${v}"`);
  return Number(v);
}

export function requireProp(msg: BlipMessageIn, name: string): string {
  const v = msg.properties[name];
  if (v === undefined || v === '') throw new HttpError(400, `Missing "${name}" property`);
  return v;
}
