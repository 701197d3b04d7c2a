/**
 * Preparing one write of a collection's write path: checks the edit against the revision tree
 * (new edits and replicated revisions), processes attachments, runs the sync function, prunes,
 * picks the winner, and builds the storage write with the winner's channels, grants and expiry.
 * Collection.bulkWrite commits what this prepares; nothing here writes.
 */
import { HttpError } from '../errors.ts';
import { canonicalJson, parseJson, isJsonObject } from '../json/index.ts';
import { createRevId, parseRevId } from '../revid.ts';
import {
  addHistory, decodeRevTree, encodeRevTree, genOf, isLeaf, prune, winningRev, type RevTree,
} from '../revtree/index.ts';
import type { CollectionStore, DocWrite, Grant, NewAttachment, RetiredBody, StoredDoc, StoredRevision } from '../storage/store.ts';
import { ADMIN, type Principal } from '../auth/principal.ts';
import { parseExpiry, type SyncFunction, type SyncResult } from '../sync/index.ts';
import { processAttachments, resolveStubs, type ProcessedAttachments } from './attachments.ts';
import type { DatabaseStats } from './database.ts';
import type { DocumentChange, WriteRequest } from './collection.ts';
import {
  defaultChannels, emptySync, grantsOf, revisionHistory, syncDocJson, syncUser, userProperties,
} from './doc-rules.ts';

/** What a write is prepared against: a collection's storage, sync function and document limits. */
export interface WriteTarget {
  readonly store: CollectionStore;
  readonly revsLimit: number;
  readonly allowConflicts: boolean;
  readonly maxAttachmentSize: number;
  readonly maxDocumentBytes: number;
  readonly maxChannelsPerDoc: number;
  readonly oldRevRetentionSecs: number;
  readonly sync?: SyncFunction;
  readonly stats: DatabaseStats;
}

/** A write ready to commit, or a revision the collection already has (nothing to do). */
export type Prepared = { write: DocWrite; rev: string; change?: Omit<DocumentChange, 'seq' | 'collection'> } | { write?: undefined; rev: string; existing: true };

export async function prepareWrite(t: WriteTarget, req: WriteRequest, doc: StoredDoc | undefined): Promise<Prepared> {
  const body = req.body;
  if (!isJsonObject(body)) throw new HttpError(400, 'Document body must be a JSON object');
  return req.newEdits ? prepareNewEdit(t, req, doc) : prepareReplicated(t, req, doc);
}

async function prepareNewEdit(t: WriteTarget, req: WriteRequest, doc: StoredDoc | undefined): Promise<Prepared> {
  const { body } = req;
  const deleted = body._deleted === true;
  const bodyRev = typeof body._rev === 'string' ? body._rev : undefined;
  if (body._rev !== undefined && bodyRev === undefined) throw new HttpError(400, 'Invalid revision ID');
  if (req.parentRev !== undefined && bodyRev !== undefined && req.parentRev !== bodyRev) {
    throw new HttpError(400, 'Document rev from request body and query string have different values');
  }
  let parent = req.parentRev ?? bodyRev;
  const tree: RevTree = doc ? decodeRevTree(doc.tree) : new Map();
  if (parent !== undefined) {
    parseRevId(parent);
    if (!doc || !tree.has(parent)) throw new HttpError(409, 'Document revision conflict');
    if (!isLeaf(tree, parent)) throw new HttpError(409, 'Document revision conflict');
    if (!t.allowConflicts && parent !== doc.rev && !(deleted && !tree.get(parent)!.deleted)) {
      throw new HttpError(409, 'Document revision conflict');
    }
  } else if (doc) {
    if (!doc.deleted) throw new HttpError(409, 'Document exists');
    parent = doc.rev; // resurrection continues from the tombstone
  }
  const props = userProperties(body);
  const generation = parent ? genOf(parent) + 1 : 1;
  const parentRevision = parent ? await t.store.getRevision(req.id, parent) : undefined;
  const atts = processAttachments({
    entries: body._attachments, generation, parent: parentRevision?.attachments ?? null,
    follows: req.follows, keepRevpos: false, maxSize: t.maxAttachmentSize, parentStubsOnly: true, docId: req.id,
  });
  await resolveAttachmentStubs(t, atts);
  const stored = checkSize(t, canonicalJson(props));
  const digestInput = deleted ? canonicalJson({ ...props, _deleted: true }) : stored;
  const rev = createRevId(parent ?? '', digestInput);
  if (tree.has(rev)) return { rev, existing: true };
  tree.set(rev, { id: rev, parent: parent ?? null, deleted });
  return finishWrite(t, req, doc, tree, { rev, deleted, body: stored, attachments: atts.meta }, props, atts.blobs, parent ?? null, parentRevision);
}

async function prepareReplicated(t: WriteTarget, req: WriteRequest, doc: StoredDoc | undefined): Promise<Prepared> {
  const { body } = req;
  const deleted = body._deleted === true;
  const hist = revisionHistory(body);
  const rev = hist[0];
  const tree: RevTree = doc ? decodeRevTree(doc.tree) : new Map();
  if (tree.has(rev)) return { rev, existing: true };
  const { attachedTo } = addHistory(tree, hist, deleted);
  if ((!t.allowConflicts || req.noConflicts) && doc) {
    const legal = attachedTo === doc.rev
      || (deleted && attachedTo !== null && isLeaf(decodeRevTree(doc.tree), attachedTo) && !tree.get(attachedTo)!.deleted)
      || (doc.deleted && attachedTo === null);
    if (!legal) throw new HttpError(409, 'Document revision conflict');
  }
  const props = userProperties(body);
  const parentRevision = attachedTo ? await t.store.getRevision(req.id, attachedTo) : undefined;
  const atts = processAttachments({
    entries: body._attachments, generation: genOf(rev), parent: parentRevision?.attachments ?? null,
    follows: req.follows, keepRevpos: true, maxSize: t.maxAttachmentSize, docId: req.id,
  });
  await resolveAttachmentStubs(t, atts);
  const stored = checkSize(t, canonicalJson(props));
  return finishWrite(t, req, doc, tree, { rev, deleted, body: stored, attachments: atts.meta }, props, atts.blobs, attachedTo, parentRevision);
}

/** Sync Gateway refuses documents over 20 MB with 413 `Document too large!`; the body as stored is what counts. */
function checkSize(t: WriteTarget, stored: string): string {
  if (t.maxDocumentBytes > 0 && Buffer.byteLength(stored) > t.maxDocumentBytes) throw new HttpError(413, 'Document too large!');
  return stored;
}

/** Stubs naming attachments stored elsewhere (by either digest): 400 unless stored. */
async function resolveAttachmentStubs(t: WriteTarget, atts: ProcessedAttachments): Promise<void> {
  if (atts.needDigests.length === 0) return;
  resolveStubs(atts, await t.store.findAttachments(atts.needDigests));
}

/**
 * Runs the sync function on the new revision (a rejection stops the write here), prunes, picks the
 * winner and builds the storage write: the winner's channels and grants go in the same transaction.
 */
async function finishWrite(
t: WriteTarget,     req: WriteRequest, doc: StoredDoc | undefined, tree: RevTree, revision: StoredRevision,
  props: Record<string, unknown>, blobs: Map<string, NewAttachment>, parent: string | null,
  parentRevision: StoredRevision | undefined,
): Promise<Prepared> {
  const id = req.id;
  const oldDoc = parentRevision ? syncDocJson(id, parentRevision.rev, parentRevision.deleted, parentRevision.body) : null;
  const result = runSync(t, id, revision, props, oldDoc, req.principal ?? ADMIN);
  // Every channel is an index row per revision and a fan-out key: a runaway sync function (or a
  // client feeding `channel(doc.channels)` a huge list) must not turn one write into thousands.
  if (t.maxChannelsPerDoc > 0 && result.channels.length > t.maxChannelsPerDoc) {
    throw new HttpError(403, `Document is in ${result.channels.length} channels; the limit is ${t.maxChannelsPerDoc}`);
  }
  revision.channels = result.channels;
  const pruned = prune(tree, t.revsLimit);
  const winner = winningRev(tree)!;
  let channels: string[];
  let grants: Grant[] | undefined;
  let expiry: number | undefined;
  if (winner.id === revision.rev) {
    channels = result.channels;
    grants = grantsOf(result);
    // The sync function's expiry() wins over the body's `_exp`, as in Sync Gateway.
    const exp = req.body._exp;
    expiry = result.expiry ?? (typeof exp === 'number' || typeof exp === 'string' ? parseExpiry(exp) : undefined);
  } else if (doc && winner.id === doc.rev) {
    channels = doc.channels; // the winner did not change: neither do its channels, grants or expiry
    expiry = doc.expiry;
  } else {
    // The write handed the win to another existing leaf: its channels and grants now rule the doc.
    const other = await t.store.getRevision(id, winner.id);
    const r = other ? runSync(t, id, other, parseJson(other.body) as Record<string, unknown>, null, ADMIN) : emptySync();
    channels = r.channels;
    grants = grantsOf(r);
    expiry = r.expiry;
  }
  const dropBodies = [...pruned];
  // The parent's body stops being a leaf body: kept a while as an old revision (a delta source,
  // as Sync Gateway's revision backups), unless retention is 0 or pruning took the revision.
  const retireBodies: RetiredBody[] = [];
  if (parent && !isLeaf(tree, parent)) {
    if (t.oldRevRetentionSecs > 0 && !pruned.includes(parent)) {
      retireBodies.push({ rev: parent, until: Math.floor(Date.now() / 1000) + t.oldRevRetentionSecs });
    } else dropBodies.push(parent);
  }
  const write: DocWrite = {
    id, expectedSeq: doc?.seq ?? 0, tree: encodeRevTree(tree), rev: winner.id, deleted: winner.deleted,
    channels, previousChannels: doc?.channels ?? [], addBodies: [revision], dropBodies,
    ...(retireBodies.length ? { retireBodies } : {}),
    attachments: blobs.size ? blobs : undefined, grants, expiry,
  };
  // Sync Gateway raises no document_changed for a revision pruned as it arrived.
  const change = pruned.includes(revision.rev) ? undefined : {
    id, rev: revision.rev, winner: winner.id, winnerChanged: winner.id !== doc?.rev,
    winnerRevision: winner.id === revision.rev ? revision : undefined, oldDoc,
  };
  return { write, rev: revision.rev, change };
}

/** The sync function for one revision; without a configured function, `doc.channels` directly. */
export function runSync(t: WriteTarget, id: string, revision: StoredRevision, props: Record<string, unknown>, oldDoc: string | null, principal: Principal): SyncResult {
  if (!t.sync) return { channels: revision.deleted ? [] : defaultChannels(props), access: {}, roles: {} };
  const t0 = performance.now();
  try {
    const r = t.sync.run(syncDocJson(id, revision.rev, revision.deleted, revision.body), oldDoc, syncUser(principal));
    t.stats.syncFunction((performance.now() - t0) / 1000, 'ok');
    return r;
  } catch (err) {
    t.stats.syncFunction((performance.now() - t0) / 1000, err instanceof HttpError && err.status < 500 ? 'rejected' : 'error');
    throw err;
  }
}
