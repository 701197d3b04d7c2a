/**
 * Checkpoints of one direction of a replication, kept on both sides as Sync Gateway does: the
 * remote's (`getCheckpoint`/`setCheckpoint` with `client=sgr2cp:<dir>:<id>`, stored there as
 * `_local/checkpoint/sgr2cp:…`) and the local `_local/sgr2cp:<dir>:<id>`. A replication resumes from
 * them when both agree; when they differ (one side was reset or restored from a backup), from the
 * earlier of the two, so nothing is skipped (Sync Gateway's `setLastCheckpointSeq`). Each carries
 * a hash of the settings that decide what is replicated (`config_hash`, Sync Gateway's
 * `CheckpointHash`): after a change of filter, channels, direction, remote or run_as the
 * replication starts over.
 *
 * With `collections_enabled` each collection has its own pair, under the same ids, as Sync Gateway
 * keeps them: the local one in the local collection, the remote one in the mapped remote collection
 * (the `collection` index tags getCheckpoint/setCheckpoint), with the same config hash. A collection
 * mapped to another remote one finds no checkpoint there and so starts over (both must agree).
 */
import { createHash } from 'node:crypto';
import { HttpError } from '../../errors.ts';
import type { Collection } from '../../db/collection.ts';
import type { BlipConnection } from '../blip/connection.ts';
import type { ReplicationConfig } from '../isgr/types.ts';

export type Direction = 'push' | 'pull';

export function checkpointId(dir: Direction, replicationId: string): string {
  return `sgr2cp:${dir}:${replicationId}`;
}

/** Feed positions as we write them: `N` or `T:N` (backfill of a grant at T, ordered just before T). */
function orderKey(seq: string): [number, number] | undefined {
  const m = /^(\d+)(?::(\d+))?$/.exec(seq);
  if (!m) return undefined;
  return m[2] === undefined ? [Number(m[1]), Infinity] : [Number(m[1]), Number(m[2])];
}

/** The earlier of two positions; '' (from the start) when either is missing or unreadable. */
export function earlierSeq(a: string | undefined, b: string | undefined): string {
  if (a === undefined || b === undefined) return '';
  if (a === b) return a;
  const ka = orderKey(a);
  const kb = orderKey(b);
  if (!ka || !kb) return '';
  return ka[0] < kb[0] || (ka[0] === kb[0] && ka[1] < kb[1]) ? a : b;
}

/**
 * What a checkpoint is valid for. The remote URL counts without its credentials (a new password
 * does not change what is replicated).
 */
export function configHash(config: ReplicationConfig): string {
  let remote = config.remote;
  try {
    const u = new URL(config.remote);
    u.username = '';
    u.password = '';
    remote = u.toString();
  } catch { /* an unusable URL fails elsewhere */ }
  const channels = config.filter === 'sync_gateway/bychannel' ? (config.query_params?.channels ?? []).join(',') : '';
  const h = createHash('sha1');
  for (const part of [config.replication_id, config.filter ?? '', channels, '', 'false', config.direction, remote, config.run_as ?? '']) h.update(part);
  return h.digest('hex');
}

interface Stored { seq: string | undefined; hash: string | undefined }

export class Checkpointer {
  private localRev: string | undefined;
  private remoteRev: string | undefined;
  private saved: string | undefined;
  readonly client: string;

  constructor(
    private readonly local: Collection, private readonly conn: BlipConnection, dir: Direction, replicationId: string, private readonly hash: string,
    /** `{collection: "<i>"}`: the remote keeps this collection's checkpoint in that collection. */
    private readonly tag: Record<string, string> = {},
  ) {
    this.client = checkpointId(dir, replicationId);
  }

  /** Reads both checkpoints; returns where to resume ('' = from the start). */
  async load(): Promise<string> {
    const local = await this.readLocal();
    const remote = await this.readRemote();
    const valid = local.hash === this.hash && remote.hash === this.hash;
    this.saved = valid ? earlierSeq(local.seq, remote.seq) : '';
    return this.saved;
  }

  get lastSaved(): string { return this.saved ?? ''; }

  /** Writes `seq` on both sides (a no-op when it is what was last written). */
  async save(seq: string): Promise<void> {
    if (seq === '' || seq === this.saved) return;
    const body = { last_sequence: seq, config_hash: this.hash };
    await this.writeLocal(body);
    if (!this.conn.closed) await this.writeRemote(body);
    this.saved = seq;
  }

  private async readLocal(): Promise<Stored> {
    try {
      const doc = JSON.parse(await this.local.getLocal(this.client)) as Record<string, unknown>;
      this.localRev = typeof doc._rev === 'string' ? doc._rev : undefined;
      return stored(doc);
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) { this.localRev = undefined; return { seq: undefined, hash: undefined }; }
      throw err;
    }
  }

  private async writeLocal(body: Record<string, unknown>): Promise<void> {
    try {
      this.localRev = await this.local.putLocal(this.client, { ...body, _rev: this.localRev });
    } catch (err) {
      if (!(err instanceof HttpError) || (err.status !== 409 && err.status !== 404)) throw err;
      // Someone else (a reset, another node) wrote it: take its revision and write over it.
      await this.readLocal();
      this.localRev = await this.local.putLocal(this.client, { ...body, _rev: this.localRev });
    }
  }

  private async readRemote(): Promise<Stored> {
    const res = await this.conn.sendRequest({ Profile: 'getCheckpoint', ...this.tag, client: this.client });
    if (!res) return { seq: undefined, hash: undefined };
    if (res.isError) {
      if (res.errorCode === 404) { this.remoteRev = undefined; return { seq: undefined, hash: undefined }; }
      throw new Error(`getCheckpoint failed on the remote: ${res.errorDomain}/${res.errorCode} ${res.body.toString('utf8')}`);
    }
    this.remoteRev = res.properties.rev;
    return stored(res.json<Record<string, unknown> | null>() ?? {});
  }

  private async writeRemote(body: Record<string, unknown>): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const props: Record<string, string> = { Profile: 'setCheckpoint', ...this.tag, client: this.client };
      if (this.remoteRev) props.rev = this.remoteRev;
      const res = await this.conn.sendRequest(props, body);
      if (!res) return;
      if (!res.isError) { this.remoteRev = res.properties.rev; return; }
      if ((res.errorCode === 409 || res.errorCode === 404) && attempt === 0) { await this.readRemote(); continue; }
      throw new Error(`setCheckpoint failed on the remote: ${res.errorDomain}/${res.errorCode}`);
    }
  }

  /** Removes the local checkpoint (reset); the remote one is overwritten by the next run's first save. */
  static async resetLocal(local: Collection, dir: Direction, replicationId: string): Promise<void> {
    const id = checkpointId(dir, replicationId);
    try {
      const doc = JSON.parse(await local.getLocal(id)) as { _rev?: string };
      await local.deleteLocal(id, doc._rev);
    } catch (err) {
      if (!(err instanceof HttpError) || err.status !== 404) throw err;
    }
  }
}

function stored(doc: Record<string, unknown>): Stored {
  return {
    seq: typeof doc.last_sequence === 'string' ? doc.last_sequence : undefined,
    hash: typeof doc.config_hash === 'string' ? doc.config_hash : undefined,
  };
}
