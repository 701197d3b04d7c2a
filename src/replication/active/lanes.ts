/**
 * The collections one replication session carries, each a "lane" with its own pull, push and
 * checkpoints. Legacy mode (no `collections_enabled`): one lane, the default collection, untagged
 * messages. With `collections_enabled`, as Sync Gateway 3.1's active replicator
 * (`buildCollectionsSetWithExplicitMappings` and `_initCollections` in
 * db/active_replicator_common_collections.go): the local collections are `collections_local` (else
 * every collection of the database), each mapped to the remote name at the same position of
 * `collections_remote` (null, empty or missing: the same name); the session opens with
 * `getCollections` naming the remote collections, and every message about a collection carries its
 * index in that list as `collection`. A remote without one of them (a `null` entry) ends the
 * replication in `error`.
 */
import { type Collection, DEFAULT_KEY } from '../../db/collection.ts';
import type { Database } from '../../db/database.ts';
import type { BlipConnection } from '../blip/connection.ts';
import { parseCollectionPath } from '../blip/sync/collections.ts';
import type { ReplicationConfig } from '../isgr/types.ts';
import type { Checkpointer } from './checkpoints.ts';
import { ConnectError } from './connect.ts';
import type { Puller } from './puller.ts';
import type { Pusher } from './pusher.ts';

export interface Lane {
  local: Collection;
  /** `scope.collection` on each side (both the default collection in legacy mode). */
  localName: string;
  remoteName: string;
  /** `{collection: "<i>"}`, or `{}` in legacy mode. */
  tag: Record<string, string>;
  puller?: Puller;
  pusher?: Pusher;
  pullCp?: Checkpointer;
  pushCp?: Checkpointer;
}

const nameOf = (c: Collection) => `${c.scope}.${c.collectionName}`;

/** `scope.collection`, both named (Sync Gateway's `getScopeAndCollectionName`). */
export function scopeAndCollection(path: string): { scope: string; name: string } {
  let p: { scope: string; name: string };
  try {
    p = parseCollectionPath(path);
  } catch (err) {
    throw new ConnectError((err as Error).message, true);
  }
  if (!path.includes('.')) throw new ConnectError(`scope and collection name must be specified: ${JSON.stringify(path)}`, true);
  return p;
}

/**
 * The local → remote mapping of a replication, before connecting. A local collection the database
 * does not serve is a fatal error (the definition can only be fixed by hand).
 */
export function plannedLanes(db: Database, config: ReplicationConfig): Lane[] {
  if (!config.collections_enabled) {
    const dflt = db.collection('_default', '_default');
    // A database whose scopes leave the default collection out must not get documents written into an unserved store.
    if (!dflt) throw new ConnectError('this database does not serve the default collection: set collections_enabled to replicate its named collections', true);
    return [{ local: dflt, localName: DEFAULT_KEY, remoteName: DEFAULT_KEY, tag: {} }];
  }
  // Sync Gateway checks these when the replicator starts (validateCollectionsConfig), with these messages.
  const remote = config.collections_remote ?? [];
  const localList = config.collections_local ?? [];
  if (remote.length > 0 && remote.length !== localList.length) {
    throw new ConnectError(`local and remote collections must be the same length... had ${localList.length} and ${remote.length}`, true);
  }
  const locals = localList.length === 0 ? db.collections() : localList.map((path) => {
    const p = scopeAndCollection(path);
    const c = db.collection(p.scope, p.name);
    if (!c) throw new ConnectError(`collection "${p.scope}.${p.name}" does not exist on this database`, true);
    return c;
  });
  return locals.map((local, i) => {
    const mapped = remote[i];
    let remoteName = nameOf(local);
    if (typeof mapped === 'string' && mapped !== '') {
      const p = scopeAndCollection(mapped);
      remoteName = `${p.scope}.${p.name}`;
    }
    return { local, localName: nameOf(local), remoteName, tag: { collection: String(i) } };
  });
}

/**
 * `getCollections` for the lanes' remote names (each with the replication's checkpoint id, as Sync
 * Gateway sends it). The checkpoints themselves are read per collection afterwards with
 * getCheckpoint, so both directions share this one negotiation.
 */
export async function negotiateCollections(conn: BlipConnection, lanes: Lane[], checkpointClient: string): Promise<void> {
  const body = { collections: lanes.map((l) => l.remoteName), checkpoint_ids: lanes.map(() => checkpointClient) };
  const res = await conn.sendRequest({ Profile: 'getCollections' }, body);
  if (!res) throw new ConnectError('no reply to getCollections', false);
  if (res.isError) {
    if (res.errorDomain === 'BLIP' && res.errorCode === 404) throw new ConnectError('Remote does not support collections', true);
    throw new ConnectError(`Error getting collections from remote: ${res.errorDomain} ${res.errorCode} ${res.body.toString('utf8')}`, (res.errorCode ?? 0) >= 400 && (res.errorCode ?? 0) < 500);
  }
  const answer = res.body.length ? res.json<unknown>() : null;
  if (!Array.isArray(answer) || answer.length !== lanes.length) {
    throw new ConnectError(`getCollections: unexpected reply from the remote: ${res.body.toString('utf8').slice(0, 200)}`, false);
  }
  answer.forEach((entry, i) => {
    if (entry === null || typeof entry !== 'object') {
      throw new ConnectError(`peer does not have collection "${lanes[i].remoteName}" (mapped from local "${lanes[i].localName}")`, true);
    }
  });
}

/** The lane a message from the remote is about (by its `collection` index); undefined when none matches. */
export function laneOf(lanes: Lane[], properties: Record<string, string>): Lane | undefined {
  const raw = properties.collection;
  if (raw === undefined) return lanes.length === 1 && !lanes[0].tag.collection ? lanes[0] : undefined;
  if (!/^\d+$/.test(raw)) return undefined;
  const lane = lanes[Number(raw)];
  return lane && lane.tag.collection === raw ? lane : undefined;
}
