/**
 * Which collection a replication message is about (spec collections-delta.md §1.1, §1.5, §1.6).
 * A connection starts in legacy mode, where no message names a collection and everything is the
 * default collection; a non-empty `getCollections` switches it to collection-aware mode, where every
 * per-collection message carries `collection`, an index into the client's list. Each entry of that
 * list is one `BlipCollection`: the collection, the principal as that collection sees it, its own
 * subChanges feed, attachment gate and write queue. The rules and messages are Sync Gateway 3.1's
 * (`collectionBlipHandler` in db/blip_handler.go, `blipCollections.get` in db/blip_collection_context.go).
 */
import { HttpError } from '../../../errors.ts';
import { type Collection, DEFAULT_COLLECTION, DEFAULT_SCOPE } from '../../../db/collection.ts';
import { principalIn, type Principal } from '../../../auth/principal.ts';
import type { BlipMessageIn, BlipProperties } from '../connection.ts';
import { AttachmentGate } from './attachments.ts';
import { RevWriter } from './push.ts';

/** What a running subChanges feed offers its collection: a way to stop it (`unsubChanges`). */
export interface StoppableFeed { stop(): void }

/** One collection as this connection replicates it. */
export class BlipCollection {
  /** Properties that tag the messages the server sends about this collection: `{collection: "<i>"}`, or none in legacy mode. */
  readonly tag: BlipProperties;
  /** Digests of this collection's documents the client may fetch or prove right now. */
  readonly attachments = new AttachmentGate();
  /** Queues this collection's pushed revisions into shared transactions. */
  readonly writer: RevWriter;
  /** The active subChanges feed (one per collection, as in Sync Gateway). */
  feed?: StoppableFeed;

  constructor(readonly coll: Collection, private readonly principalOf: () => Principal, readonly index?: number) {
    this.tag = index === undefined ? {} : { collection: String(index) };
    this.writer = new RevWriter(coll);
  }

  /** The connection's current principal as this collection sees it (re-mapped after every reload). */
  get principal(): Principal { return principalIn(this.principalOf(), this.coll.key); }

  /** How Sync Gateway names it in its "already has an outstanding subChanges" error. */
  get label(): string { return this.index === undefined ? 'default collection' : `collection ${this.index}`; }
}

/** `scope.collection` or `collection` (scope `_default`), split as Sync Gateway's `parseScopeAndCollection`. */
export function parseCollectionPath(path: string): { scope: string; name: string } {
  const parts = path.split('.');
  if (parts.length > 2) throw new Error(`unknown keyspace format: ${JSON.stringify(path)} - expected 1-2 fields`);
  const [scope, name] = parts.length === 1 ? [DEFAULT_SCOPE, parts[0]] : parts;
  if (scope === '') throw new Error(`Scope in [scope.]collection can not be empty ${JSON.stringify(path)}`);
  if (name === '') throw new Error(`Collection in [scope.]collection can not be empty ${JSON.stringify(path)}`);
  return { scope, name };
}

/** Sync Gateway parses the index with Go's `strconv.Atoi`: an optional sign, decimal digits, in range. */
function parseIndex(v: string): number | undefined {
  if (!/^[+-]?\d+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The collections of one connection: the legacy (default) one, and the list from `getCollections`. */
export class BlipCollections {
  private legacy?: BlipCollection;
  /** Index → collection, `null` where the client named a collection this database does not have. */
  private list: (BlipCollection | null)[] = [];

  constructor(private readonly principalOf: () => Principal) {}

  /** Collection-aware mode: a `getCollections` with at least one entry has been received. */
  get aware(): boolean { return this.list.length > 0; }

  /** Replaces the list (Sync Gateway's `blipCollections.set`); an empty list leaves legacy mode possible. */
  setList(entries: (Collection | null)[]): void {
    this.list = entries.map((c, i) => (c ? new BlipCollection(c, this.principalOf, i) : null));
  }

  /**
   * The collection a per-collection message is about, or Sync Gateway's HTTP/400 for each misuse.
   * `defaultOf` is the database's default collection, undefined when its config leaves it out.
   */
  resolve(msg: BlipMessageIn, defaultOf: () => Collection | undefined): BlipCollection {
    const raw = msg.properties.collection;
    if (raw === undefined) {
      const dflt = defaultOf();
      if (!dflt) throw new HttpError(400, 'Collection property not specified and default collection is not configured for this database');
      if (this.aware) throw new HttpError(400, 'GetCollections already occurred, subsequent messages need a Collection property');
      this.legacy ??= new BlipCollection(dflt, this.principalOf);
      return this.legacy;
    }
    if (!this.aware) throw new HttpError(400, 'Passing collection requires calling getCollections first');
    const i = parseIndex(raw);
    if (i === undefined) throw new HttpError(400, `collection property needs to be an int, was ${JSON.stringify(raw)}`);
    // (Sync Gateway indexes its slice with a negative index too, and panics; out of range here.)
    if (i < 0 || i >= this.list.length) throw new HttpError(400, `Collection index ${i} is outside range indexes set by GetCollections`);
    const c = this.list[i];
    if (!c) throw new HttpError(400, `Collection index ${i} was not a valid collection set by GetCollections`);
    return c;
  }
}

/** The database's default collection, if its configuration includes it. */
export function defaultCollectionOf(db: { collection(scope: string, name: string): Collection | undefined }): Collection | undefined {
  return db.collection(DEFAULT_SCOPE, DEFAULT_COLLECTION);
}
