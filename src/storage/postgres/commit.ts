/**
 * Committing document writes on PostgreSQL so that no changes reader ever misses one.
 *
 * The problem: with several writers (connections of one node, or several nodes), a plain sequence
 * (nextval) hands out numbers in the order transactions *ask*, not the order they *commit*. If
 * sequence 8 commits before 7, a reader that saw 8 continues from `since=8` and never sees 7.
 *
 * The design: sequences come from one counter row, allocated at the very end of the transaction
 * (`UPDATE seq_counter SET last_seq = last_seq + n RETURNING ...`), after every other lock the
 * transaction needs (document rows, attachment keys) is held. The row lock taken by that UPDATE is
 * held until the transaction ends, and PostgreSQL releases locks only after the commit is visible
 * to new snapshots. So the next allocator waits until the previous one is visible (or rolled back,
 * in which case its numbers are reused): sequence order equals commit visibility order, and the
 * committed rows always form a gap-free prefix `1..last_seq`. A reader that bounds itself by the
 * committed `last_seq` (changes' `until`) therefore sees every sequence up to it.
 *
 * The cost is that allocation + the final writes + COMMIT are serialized across all nodes; the
 * serialized part is one statement (allocation and every seq-bearing row in data-modifying CTEs)
 * plus the commit. Document locks are taken in id order before it, so writers of different
 * documents only queue on that last step.
 */
import type pg from 'pg';
import type { CommitResult, DocWrite, Grant, NewAttachment } from '../store.ts';

export interface Tables {
  counter: string; docs: string; revs: string; oldRevs: string; channels: string; attachments: string;
  grants: string; grantChanges: string;
  /**
   * A named collection's document counts row; absent for the default collection, whose counts are
   * columns of the counter row. Updated in the same statement, after the counter lock.
   */
  counts?: string;
}

export interface NotifyTarget { channel: string; node: string }

/** A sequence relative to this commit's first (`off` ≥ 1), or one already stored. */
type SeqRef = { fixed: number } | { off: number };
interface GrantState extends Grant { seq: SeqRef }
type DocState = SeqRef | 'absent' | 'taken';

const CONFLICT: CommitResult = { ok: false, reason: 'conflict' };
const grantKey = (g: Grant) => `${g.grantee}\u0000${g.kind}\u0000${g.value}`;

export async function commitWrites(c: pg.PoolClient, t: Tables, writes: DocWrite[], note: NotifyTarget): Promise<CommitResult[]> {
  const ids = [...new Set(writes.map((w) => w.id))];
  // 1. Lock the documents (in id order, so two batches never wait on each other in a cycle), and
  // read the grants of those whose writes replace them (stable: only a writer of the doc changes them).
  const grantDocs = ids.filter((id) => writes.some((w) => w.id === id && w.grants));
  type Locked = { id: string; seq: number; deleted: boolean; grants: { grantee: string; kind: 'channel' | 'role'; value: string; seq: number }[] | null };
  const locked = await c.query<Locked>(
    `SELECT d.id, d.seq, d.deleted, CASE WHEN d.id = ANY($2::text[]) THEN (SELECT json_agg(json_build_object('grantee', g.grantee, 'kind', g.kind,
       'value', g.value, 'seq', g.seq)) FROM ${t.grants} g WHERE g.doc_id = d.id) END AS grants
     FROM ${t.docs} d WHERE d.id = ANY($1::text[]) ORDER BY d.id FOR UPDATE OF d`, [ids, grantDocs]);
  const state = new Map<string, DocState>();
  const grantState = new Map<string, GrantState[]>();
  const wasDeleted = new Map<string, boolean>();
  for (const r of locked.rows) {
    state.set(r.id, { fixed: r.seq });
    wasDeleted.set(r.id, r.deleted);
    if (r.grants) grantState.set(r.id, r.grants.map((g) => ({ grantee: g.grantee, kind: g.kind, value: g.value, seq: { fixed: Number(g.seq) } })));
  }
  // 2. Claim new ids with a placeholder row: a concurrent creator of the same id waits on it and
  // then finds it taken, so exactly one of them wins, before any sequence is allocated.
  const toClaim = ids.filter((id) => !state.has(id) && writes.some((w) => w.id === id && w.expectedSeq === 0)).sort();
  if (toClaim.length) {
    const claimed = await c.query<{ id: string }>(
      `INSERT INTO ${t.docs} (id, tree, rev, deleted, seq, channels) SELECT x, '', '', false, 0, '[]'
       FROM unnest($1::text[]) AS x ORDER BY x ON CONFLICT (id) DO NOTHING RETURNING id`, [toClaim]);
    const got = new Set(claimed.rows.map((r) => r.id));
    for (const id of toClaim) state.set(id, got.has(id) ? 'absent' : 'taken');
  }
  for (const id of ids) if (!state.has(id)) state.set(id, 'absent');
  // A batch that writes one document twice compares the second write's expectedSeq with the first
  // write's sequence: it needs the real numbers now, so it takes the counter lock early (after the
  // document locks, the same order as everyone else).
  let base: number | undefined;
  if (ids.length !== writes.length) {
    base = (await c.query<{ last_seq: number }>(`SELECT last_seq FROM ${t.counter} WHERE id = 1 FOR UPDATE`)).rows[0].last_seq;
  }

  // 3. Decide each write in order, with sequences as offsets from the (not yet known) base.
  let next = 1;
  const outcome: ({ off: number; grantees?: string[] } | null)[] = [];
  const finalDocs = new Map<string, { w: DocWrite; off: number }>();
  const channelRows = new Map<string, { channel: string; docId: string; off: number; rev: string; deleted: boolean; removed: boolean }>();
  const bodies = new Map<string, { docId: string; rev: string; b: DocWrite['addBodies'][number] | null }>();
  // Retired bodies: copied from the leaf bodies, or (a batch that adds then retires one revision of a
  // document) from the body this batch was about to add.
  const retired = new Map<string, { docId: string; rev: string; until: number; b?: DocWrite['addBodies'][number] }>();
  const attachments = new Map<string, NewAttachment>();
  const rewrittenGrants = new Set<string>();
  const stamps = new Map<string, number>();
  for (const w of writes) {
    const st = state.get(w.id)!;
    const cur = st === 'taken' ? undefined : st === 'absent' ? 0 : 'fixed' in st ? st.fixed : base! + st.off;
    if (cur === undefined || cur !== w.expectedSeq) { outcome.push(null); continue; }
    const off = next++;
    let grantees: string[] | undefined;
    if (w.grants) {
      const old = grantState.get(w.id) ?? [];
      const oldKeys = new Map(old.map((g) => [grantKey(g), g]));
      const newKeys = new Set(w.grants.map(grantKey));
      const changed = new Set<string>();
      for (const g of old) if (!newKeys.has(grantKey(g))) changed.add(g.grantee);
      for (const g of w.grants) if (!oldKeys.has(grantKey(g))) changed.add(g.grantee);
      if (changed.size) {
        // A grant that survives a new revision keeps the sequence it was first made at.
        grantState.set(w.id, w.grants.map((g) => ({ ...g, seq: oldKeys.get(grantKey(g))?.seq ?? { off } })));
        rewrittenGrants.add(w.id);
        // Grantees change at a sequence of their own, right after the write's (as SQLite does).
        const stampOff = next++;
        for (const g of changed) stamps.set(g, stampOff);
        grantees = [...changed];
      }
    }
    state.set(w.id, { off });
    finalDocs.set(w.id, { w, off });
    for (const ch of w.channels) channelRows.set(`${ch}\u0000${w.id}`, { channel: ch, docId: w.id, off, rev: w.rev, deleted: w.deleted, removed: false });
    for (const ch of w.previousChannels) {
      if (!w.channels.includes(ch)) channelRows.set(`${ch}\u0000${w.id}`, { channel: ch, docId: w.id, off, rev: w.rev, deleted: w.deleted, removed: true });
    }
    for (const r of w.retireBodies ?? []) {
      const pending = bodies.get(`${w.id}\u0000${r.rev}`)?.b ?? undefined;
      retired.set(`${w.id}\u0000${r.rev}`, { docId: w.id, rev: r.rev, until: r.until, b: pending });
      bodies.set(`${w.id}\u0000${r.rev}`, { docId: w.id, rev: r.rev, b: null });
    }
    for (const rev of w.dropBodies) bodies.set(`${w.id}\u0000${rev}`, { docId: w.id, rev, b: null });
    for (const b of w.addBodies) bodies.set(`${w.id}\u0000${b.rev}`, { docId: w.id, rev: b.rev, b });
    if (w.attachments) for (const [d, data] of w.attachments) if (!attachments.has(d)) attachments.set(d, data);
    outcome.push(grantees ? { off, grantees } : { off });
  }
  const n = next - 1;
  if (n === 0) return outcome.map(() => CONFLICT);

  // 4. Everything that carries no sequence, before the counter lock (it is not held yet, unless
  // this batch writes a document twice).
  if (attachments.size) {
    const digests = [...attachments.keys()].sort();
    await c.query(`INSERT INTO ${t.attachments} (digest, md5, data) SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) ON CONFLICT (digest) DO NOTHING`,
      [digests, digests.map((d) => attachments.get(d)!.md5), digests.map((d) => attachments.get(d)!.data)]);
  }
  if (retired.size) {
    // Copied before the drops below remove them from the leaf bodies (same transaction).
    const rs = [...retired.values()].filter((x) => !x.b);
    const inline = [...retired.values()].filter((x) => x.b);
    if (inline.length) {
      await c.query(
        `INSERT INTO ${t.oldRevs} (doc_id, rev, deleted, body, atts, channels, expires)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::text[], $7::bigint[])
         ON CONFLICT (doc_id, rev) DO UPDATE SET deleted = excluded.deleted, body = excluded.body, atts = excluded.atts,
           channels = excluded.channels, expires = excluded.expires`,
        [inline.map((x) => x.docId), inline.map((x) => x.rev), inline.map((x) => x.b!.deleted), inline.map((x) => x.b!.body),
          inline.map((x) => (x.b!.attachments ? JSON.stringify(x.b!.attachments) : null)),
          inline.map((x) => (x.b!.channels ? JSON.stringify(x.b!.channels) : null)), inline.map((x) => x.until)]);
    }
    if (rs.length) await c.query(
      `INSERT INTO ${t.oldRevs} (doc_id, rev, deleted, body, atts, channels, expires)
       SELECT r.doc_id, r.rev, r.deleted, r.body, r.atts, r.channels, x.until
       FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(doc_id, rev, until)
       JOIN ${t.revs} r ON r.doc_id = x.doc_id AND r.rev = x.rev
       ON CONFLICT (doc_id, rev) DO UPDATE SET deleted = excluded.deleted, body = excluded.body, atts = excluded.atts,
         channels = excluded.channels, expires = excluded.expires`,
      [rs.map((x) => x.docId), rs.map((x) => x.rev), rs.map((x) => x.until)]);
  }
  const drops = [...bodies.values()].filter((x) => !x.b);
  if (drops.length) {
    await c.query(`DELETE FROM ${t.revs} WHERE (doc_id, rev) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
      [drops.map((x) => x.docId), drops.map((x) => x.rev)]);
  }
  const adds = [...bodies.values()].filter((x) => x.b).map((x) => ({ docId: x.docId, b: x.b! }));
  if (adds.length) {
    await c.query(
      `INSERT INTO ${t.revs} (doc_id, rev, deleted, body, atts, channels)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::text[])
       ON CONFLICT (doc_id, rev) DO UPDATE SET deleted = excluded.deleted, body = excluded.body, atts = excluded.atts, channels = excluded.channels`,
      [adds.map((x) => x.docId), adds.map((x) => x.b.rev), adds.map((x) => x.b.deleted), adds.map((x) => x.b.body),
        adds.map((x) => (x.b.attachments ? JSON.stringify(x.b.attachments) : null)), adds.map((x) => (x.b.channels ? JSON.stringify(x.b.channels) : null))]);
  }
  if (rewrittenGrants.size) await c.query(`DELETE FROM ${t.grants} WHERE doc_id = ANY($1::text[])`, [[...rewrittenGrants]]);

  // 5. Allocate the sequences and write every row that carries one, in one statement; the live and
  // deleted document counts move in the same counter row.
  const docs = [...finalDocs.values()];
  const counts = { live: 0, deleted: 0 };
  for (const { w } of docs) {
    const before = wasDeleted.get(w.id);
    if (before !== undefined) counts[before ? 'deleted' : 'live']--;
    counts[w.deleted ? 'deleted' : 'live']++;
  }
  const chs = [...channelRows.values()];
  const grants = [...rewrittenGrants].flatMap((id) => grantState.get(id)!.map((g) => ({ docId: id, g })));
  const stampList = [...stamps];
  const counted = t.counts
    ? `, dc AS (UPDATE ${t.counts} AS dc SET live = live + $26::bigint, deleted = deleted + $27::bigint
         FROM s WHERE dc.id = 1 AND ($26::bigint <> 0 OR $27::bigint <> 0))`
    : '';
  const res = await c.query<{ base: number }>(
    `WITH s AS (UPDATE ${t.counter} SET last_seq = last_seq + $1::bigint, access_changes = access_changes + $25::bigint
         ${t.counts ? '' : ', live_docs = live_docs + $26::bigint, deleted_docs = deleted_docs + $27::bigint'} WHERE id = 1
       RETURNING last_seq - $1::bigint AS base)${counted},
     d AS (INSERT INTO ${t.docs} AS cur (id, tree, rev, deleted, seq, channels, expiry, tombstoned_at)
       SELECT x.id, x.tree, x.rev, x.deleted, s.base + x.off, x.channels, x.expiry,
         CASE WHEN x.deleted THEN extract(epoch FROM now())::bigint END
       FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[], $6::bigint[], $7::text[], $8::bigint[]) AS x(id, tree, rev, deleted, off, channels, expiry), s
       ON CONFLICT (id) DO UPDATE SET tree = excluded.tree, rev = excluded.rev, deleted = excluded.deleted, seq = excluded.seq,
         channels = excluded.channels, expiry = excluded.expiry,
         -- A tombstone keeps the time it was first made (see the SQLite store).
         tombstoned_at = CASE WHEN NOT excluded.deleted THEN NULL
           WHEN cur.deleted AND cur.tombstoned_at IS NOT NULL THEN cur.tombstoned_at ELSE excluded.tombstoned_at END),
     ch AS (INSERT INTO ${t.channels} (channel, doc_id, seq, rev, deleted, removed)
       SELECT x.channel, x.doc_id, s.base + x.off, x.rev, x.deleted, x.removed
       FROM unnest($9::text[], $10::text[], $11::bigint[], $12::text[], $13::bool[], $14::bool[]) AS x(channel, doc_id, off, rev, deleted, removed), s
       ON CONFLICT (channel, doc_id) DO UPDATE SET seq = excluded.seq, rev = excluded.rev, deleted = excluded.deleted, removed = excluded.removed),
     g AS (INSERT INTO ${t.grants} (doc_id, grantee, kind, value, seq)
       SELECT x.doc_id, x.grantee, x.kind, x.value, coalesce(x.fixed, s.base + x.off)
       FROM unnest($15::text[], $16::text[], $17::text[], $18::text[], $19::bigint[], $20::bigint[]) AS x(doc_id, grantee, kind, value, fixed, off), s),
     gc AS (INSERT INTO ${t.grantChanges} (grantee, seq)
       SELECT x.grantee, s.base + x.off FROM unnest($21::text[], $22::bigint[]) AS x(grantee, off), s
       ON CONFLICT (grantee) DO UPDATE SET seq = excluded.seq)
     SELECT s.base, pg_notify($23, $24 || ' ' || (s.base + $1::bigint)) FROM s`,
    [n,
      docs.map((d) => d.w.id), docs.map((d) => JSON.stringify(d.w.tree)), docs.map((d) => d.w.rev), docs.map((d) => d.w.deleted),
      docs.map((d) => d.off), docs.map((d) => JSON.stringify(d.w.channels)), docs.map((d) => d.w.expiry ?? null),
      chs.map((r) => r.channel), chs.map((r) => r.docId), chs.map((r) => r.off), chs.map((r) => r.rev), chs.map((r) => r.deleted), chs.map((r) => r.removed),
      grants.map((x) => x.docId), grants.map((x) => x.g.grantee), grants.map((x) => x.g.kind), grants.map((x) => x.g.value),
      grants.map((x) => ('fixed' in x.g.seq ? x.g.seq.fixed : null)), grants.map((x) => ('off' in x.g.seq ? x.g.seq.off : null)),
      stampList.map(([g]) => g), stampList.map(([, off]) => off),
      note.channel, note.node,
      stampList.length > 0 ? 1 : 0, // someone's grants changed: their access did
      counts.live, counts.deleted]);
  const allocated = res.rows[0].base;
  return outcome.map((o): CommitResult => {
    if (!o) return CONFLICT;
    return o.grantees ? { ok: true, seq: allocated + o.off, grantees: o.grantees } : { ok: true, seq: allocated + o.off };
  });
}
