/**
 * What every replication message handler of one BLIP connection shares: the connection, the
 * database, who the client is (reloaded when its grants change), the negotiated CBMobile version,
 * the collection mode, and the attachments this client may fetch right now.
 */
import { HttpError } from '../../../errors.ts';
import type { Database } from '../../../db/database.ts';
import type { Principal } from '../../../auth/principal.ts';
import type { BlipConnection, BlipMessageIn, BlipProperties } from '../connection.ts';
import type { AttachmentGate } from './attachments.ts';

export type BlipLog = (level: 'debug' | 'info' | 'warn', msg: string) => void;

export interface SyncContext {
  conn: BlipConnection;
  db: Database;
  /** 2 for `BLIP_3+CBMobile_2`, 3 for `BLIP_3+CBMobile_3`. */
  protocol: 2 | 3;
  /** Current principal; `refreshPrincipal` replaces it after a grant or revocation. */
  principal: Principal;
  /** Reloads the principal; false once the user is gone (deleted or disabled). */
  refreshPrincipal(): Promise<boolean>;
  /** Aborted when the connection closes or the database stops. */
  signal: AbortSignal;
  log: BlipLog;
  attachments: AttachmentGate;
  collections: CollectionMode;
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

/**
 * Legacy mode (no `collection` property anywhere) until the client sends `getCollections`; then
 * every per-collection message names its index into that list (spec §3, "Legacy vs.
 * collection-aware mode"). Only the default collection exists here.
 */
export class CollectionMode {
  /** Index → true when that entry of the client's list is the default collection. */
  private list: boolean[] | undefined;

  get aware(): boolean { return this.list !== undefined; }

  setList(defaults: boolean[]): void { this.list = defaults; }

  /** Checks a message's `collection` property; returns the properties to echo on messages about it. */
  check(msg: BlipMessageIn): BlipProperties {
    const c = msg.properties.collection;
    if (!this.list) {
      if (c !== undefined) throw new HttpError(400, 'collection property given before getCollections');
      return {};
    }
    if (c === undefined || !/^\d+$/.test(c)) throw new HttpError(400, 'missing or invalid collection property');
    if (!this.list[Number(c)]) throw new HttpError(400, `collection ${c} does not exist`);
    return { collection: c };
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
