/**
 * Replication definitions (spec sg3-admin.md §5.2, Sync Gateway's `ReplicationUpsertConfig`,
 * `Upsert` and `ValidateReplication` in db/sg_replicate_cfg.go): a request body is merged onto the
 * stored definition (or onto the defaults) and the result validated as a whole, with Sync Gateway's
 * messages. Pure: no storage, no clock; reading the TLS files is the one I/O (they must be readable).
 *
 * Syncgate is open source and implements what Sync Gateway keeps for its Enterprise Edition here:
 * non-default `conflict_resolution_type` (with `custom_conflict_resolver`) and `batch_size`.
 */
import { accessSync, constants } from 'node:fs';
import { HttpError } from '../../errors.ts';
import type { ConflictResolutionType, ReplicationConfig, ReplicationDirection } from './types.ts';

export const DEFAULT_BATCH_SIZE = 200;
export const DEFAULT_MAX_BACKOFF_MINUTES = 5;
/** Checkpoint keys add 35 characters to the id; Sync Gateway keeps ids to 160. */
export const MAX_ID_LENGTH = 160;
export const BYCHANNEL_FILTER = 'sync_gateway/bychannel';
export const REDACTED = 'xxxxx';

const DIRECTIONS: ReplicationDirection[] = ['push', 'pull', 'pushAndPull'];
const RESOLVERS: ConflictResolutionType[] = ['default', 'localWins', 'remoteWins', 'custom'];

type Obj = Record<string, unknown>;
const bad = (reason: string) => new HttpError(400, reason);

export function defaultDefinition(id: string): ReplicationConfig {
  return {
    replication_id: id, remote: '', direction: '' as ReplicationDirection, continuous: false, purge_on_removal: false,
    conflict_resolution_type: 'default', batch_size: DEFAULT_BATCH_SIZE, max_backoff_time: DEFAULT_MAX_BACKOFF_MINUTES,
    initial_state: 'running', adhoc: false,
  };
}

function typed<T>(body: Obj, key: string, kind: 'string' | 'boolean' | 'number'): T | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== kind || (kind === 'number' && !Number.isInteger(v))) {
    throw bad(`Replication field "${key}" must be ${kind === 'number' ? 'an integer' : `a ${kind}`}`);
  }
  return v as T;
}

/**
 * `query_params` of the bychannel filter: `{"channels":[...]}` or a bare array (Sync Gateway's
 * `CollectionChannelsFromQueryParams`); kept as `{channels}`.
 */
function channelsOf(q: unknown): { channels: string[] } {
  let list: unknown;
  if (Array.isArray(q)) list = q;
  else if (q !== null && typeof q === 'object') {
    const o = q as Obj;
    if ('collections_channels' in o) throw bad("query_params 'collections_channels' is not supported yet: use 'channels'");
    if (!('channels' in o)) throw bad('Bad channels array in query_params for sync_gateway/bychannel filter');
    if (!Array.isArray(o.channels)) throw bad("query_params value for 'channels' must be an array of channels");
    list = o.channels;
  } else throw bad('Bad channels array in query_params for sync_gateway/bychannel filter');
  const channels = list as unknown[];
  for (const c of channels) {
    if (typeof c !== 'string') throw bad(`Expecting string channel but got ${JSON.stringify(c)} (${c === null ? 'null' : typeof c}) in query_params for sync_gateway/bychannel filter`);
  }
  return { channels: channels as string[] };
}

function readable(key: string, path: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    throw bad(`${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * `collections_enabled`, `collections_local`, `collections_remote` (Sync Gateway 3.1's `Upsert`: a
 * non-empty list replaces the stored one, an empty one keeps it). Only their shapes are checked
 * here; as in Sync Gateway, whether the collections exist and the lists agree in length is checked
 * when the replication starts, and a mismatch ends it in `error` with Sync Gateway's message.
 */
function collectionsOf(body: Obj, rc: ReplicationConfig, enabled: boolean | undefined): void {
  if (enabled !== undefined) rc.collections_enabled = enabled;
  const list = (key: 'collections_local' | 'collections_remote', nullable: boolean): (string | null)[] | undefined => {
    const v = body[key];
    if (v === undefined || v === null) return undefined;
    const ok = Array.isArray(v) && v.every((e) => typeof e === 'string' || (nullable && e === null));
    if (!ok) throw bad(`Replication field "${key}" must be an array of ${nullable ? 'strings or nulls' : 'strings'} ("scope.collection")`);
    for (const e of v as (string | null)[]) {
      if (typeof e !== 'string' || (nullable && e === '')) continue;
      const [scope, coll, more] = e.split('.');
      if (more !== undefined || !scope || !coll) throw bad(`Replication field "${key}": scope and collection name must be specified: ${JSON.stringify(e)}`);
    }
    return v as (string | null)[];
  };
  const local = list('collections_local', false);
  if (local && local.length > 0) rc.collections_local = local as string[];
  const remote = list('collections_remote', true);
  if (remote && remote.length > 0) rc.collections_remote = remote;
}

export interface UpsertOptions {
  /** A definition from a database config file: `adhoc` is refused there. */
  fromConfig?: boolean;
}

/**
 * Merges `body` onto `existing` (or the defaults) and validates the result. Fields absent from the
 * body keep their stored value, as Sync Gateway's `Upsert` does; `initial_state` only matters on create.
 */
export function upsertDefinition(id: string, existing: ReplicationConfig | undefined, body: Obj, opts: UpsertOptions = {}): ReplicationConfig {
  const rc: ReplicationConfig = existing ? { ...existing } : defaultDefinition(id);
  rc.replication_id = id;
  const str = (k: string) => typed<string>(body, k, 'string');
  const flag = (k: string) => typed<boolean>(body, k, 'boolean');
  const int = (k: string) => typed<number>(body, k, 'number');

  // Deprecated aliases: `username`/`password` are `remote_username`/`remote_password`.
  const username = str('username');
  const remoteUsername = str('remote_username');
  if (username && (remoteUsername || (existing?.remote_username && remoteUsername === undefined))) {
    throw bad('Cannot set both remote_username and username config options. Please only use the remote_username and remote_password config options');
  }
  const setOpt = <K extends keyof ReplicationConfig>(k: K, v: ReplicationConfig[K] | undefined) => {
    if (v === undefined) return;
    if (v === '') delete rc[k]; else rc[k] = v;
  };
  if (str('remote') !== undefined) rc.remote = str('remote')!;
  setOpt('remote_username', remoteUsername ?? username);
  setOpt('remote_password', str('remote_password') ?? str('password'));
  if (str('direction') !== undefined) rc.direction = str('direction') as ReplicationDirection;
  if (flag('continuous') !== undefined) rc.continuous = flag('continuous')!;
  setOpt('filter', str('filter'));
  if (body.query_params !== undefined && body.query_params !== null) rc.query_params = channelsOf(body.query_params);
  if (flag('purge_on_removal') !== undefined) rc.purge_on_removal = flag('purge_on_removal')!;
  const crt = str('conflict_resolution_type');
  if (crt !== undefined) rc.conflict_resolution_type = (crt || 'default') as ConflictResolutionType;
  setOpt('custom_conflict_resolver', str('custom_conflict_resolver'));
  const batch = int('batch_size');
  if (batch !== undefined) {
    if (batch < 0) throw bad('Replication batch_size must not be negative');
    rc.batch_size = batch || DEFAULT_BATCH_SIZE;
  }
  const backoff = int('max_backoff_time');
  if (backoff !== undefined) {
    if (backoff < 0) throw bad('Replication max_backoff_time must not be negative');
    rc.max_backoff_time = backoff;
  }
  const initial = str('initial_state');
  if (initial !== undefined) {
    if (initial !== '' && initial !== 'running' && initial !== 'stopped') throw bad(`Replication initial_state must be running or stopped, not "${initial}"`);
    rc.initial_state = initial === 'stopped' ? 'stopped' : 'running';
  }
  if (flag('adhoc') !== undefined) rc.adhoc = flag('adhoc')!;
  setOpt('run_as', str('run_as'));
  setOpt('remote_ca_file', str('remote_ca_file'));
  setOpt('remote_cert_file', str('remote_cert_file'));
  setOpt('remote_key_file', str('remote_key_file'));
  if (flag('enable_delta_sync')) throw bad('Delta sync for sg-replicate is not supported by Syncgate');
  collectionsOf(body, rc, flag('collections_enabled'));
  validateDefinition(rc, opts);
  return rc;
}

/** Sync Gateway's `ValidateReplication`, in its order (the first problem is the one reported). */
export function validateDefinition(rc: ReplicationConfig, opts: UpsertOptions = {}): void {
  if (rc.replication_id.length > MAX_ID_LENGTH) throw bad('Replication ID must be less than 160 characters');
  if (rc.adhoc) {
    if (opts.fromConfig) throw bad('adhoc=true is invalid for replication in Sync Gateway configuration');
    if (rc.initial_state === 'stopped') throw bad('Setting initial_state=stopped is not valid for replications specifying adhoc=true');
  }
  if (!rc.remote) throw bad('Replication remote must be specified');
  if (!RESOLVERS.includes(rc.conflict_resolution_type)) {
    throw bad('Conflict resolution type is invalid, valid values are localWins/remoteWins/default/custom');
  }
  if (rc.conflict_resolution_type === 'custom' && !rc.custom_conflict_resolver) {
    throw bad('Custom conflict resolution type has been set but no conflict resolution function has been defined');
  }
  let url: URL;
  try {
    url = new URL(rc.remote);
  } catch {
    throw bad('Replication remote URL is invalid');
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol)) throw bad('Replication remote URL is invalid');
  if (url.username !== '' && rc.remote_username) {
    throw bad('Auth credentials can be specified using remote_username/remote_password config properties or remote URL, but not both');
  }
  if (!rc.direction) throw bad('Replication direction must be specified');
  if (!DIRECTIONS.includes(rc.direction)) throw bad(`Invalid replication direction "${rc.direction}", valid values are push/pull/pushAndPull`);
  if (rc.filter === BYCHANNEL_FILTER) {
    if (!rc.query_params) throw bad('Replication specifies sync_gateway/bychannel filter but is missing query_params');
  } else if (rc.filter) throw bad('Unknown replication filter; try sync_gateway/bychannel');
  // Syncgate's own TLS files: checked now, so a typo is a 400 rather than a replication in error later.
  if (rc.remote_cert_file && !rc.remote_key_file) throw bad('remote_cert_file needs remote_key_file (the client certificate\'s private key)');
  if (rc.remote_key_file && !rc.remote_cert_file) throw bad('remote_key_file needs remote_cert_file');
  for (const k of ['remote_ca_file', 'remote_cert_file', 'remote_key_file'] as const) if (rc[k]) readable(k, rc[k]!);
}

/** Replaces a password in `scheme://user:pass@host/...` (Sync Gateway's `RedactBasicAuthURLPassword`). */
export function redactUrl(remote: string): string {
  try {
    const u = new URL(remote);
    if (u.password === '') return remote;
    u.password = REDACTED;
    return u.toString();
  } catch {
    return remote;
  }
}

/** The definition as shown to clients: passwords become `xxxxx`, in the fields and the URL. */
export function redactDefinition(rc: ReplicationConfig): ReplicationConfig {
  const out = { ...rc, remote: redactUrl(rc.remote) };
  if (out.remote_password) out.remote_password = REDACTED;
  return out;
}

/** Sync Gateway's JSON of a definition: `omitempty` fields left out when false or zero. */
export function definitionJson(rc: ReplicationConfig): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(rc)) {
    if (v === undefined || v === '' || (v === false && k !== 'continuous') || (v === 0 && k === 'max_backoff_time')) continue;
    out[k] = v;
  }
  return out;
}
