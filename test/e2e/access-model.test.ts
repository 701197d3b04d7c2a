/**
 * Model-based (stateful, seeded random) test of per-user `_changes` feeds against an independent oracle.
 *
 * Each seed drives a fresh gateway with random steps: plain document writes and deletions, writes,
 * rewrites and deletions of grant documents (`access()` to users and to `role:x`) and of roles
 * documents (`role()`), admin edits of users' `admin_channels` / `admin_roles`, and of roles'
 * `admin_channels`. After every step, for every user, the feeds are read over real HTTP on the public
 * port and compared with the oracle below, which is written from the spec (sync-gateway.md §5, §7),
 * not from src/:
 *
 *   channels(u) = {!} ∪ admin_channels(u) ∪ channels granted by the CURRENT live revision of any grant
 *                 doc to u or to a role of u ∪ admin_channels of every role of u,
 *   roles(u)    = admin_roles(u) ∪ roles granted to u by the CURRENT live revision of a roles doc,
 *   visible(u)  = live docs whose current revision is in channels(u) (every live doc if `*` ∈ channels(u)).
 *
 * Checks (every user, every step):
 *  1. one-shot `_changes?since=0` lists exactly visible(u), each at its current rev;
 *  2. incremental followers, each resuming from its previous `last_seq` verbatim (it may be `"T:N"`): one
 *     unlimited, one reading `limit=2` pages until caught up, and a lagging one that reads a single
 *     `limit=2` page per step (so later writes and grants land while it sits inside a backfill) and
 *     catches up every 4th step. After catching up each holds every visible doc at its current rev, and
 *     nothing else that cannot be explained by Sync Gateway 2.x's no-retroactive-removal rule (below);
 *  3. for one user per step (rotating), `limit=3` paging from 0 until an empty page gives visible(u);
 *  4. every response: `last_seq` is a string equal to the last entry's seq, entries strictly ascending in
 *     Sync Gateway's SequenceID order and all after `since`, and every entry passes the security check:
 *     - a live entry (no `deleted`, no `removed`) must name a doc visible to the user NOW, at its current rev;
 *     - a `removed` entry may only list channels the user holds now, each a channel the doc really was in
 *       once, and its rev must be a revision of the doc that is in none of them;
 *     - a `deleted` entry must be a tombstone of the doc and (unless the user holds `*`) carry `removed`;
 *     - a `_user/...` entry must name the reading user.
 *
 * How a follower applies an entry (what a real client does): `deleted` → drop the doc; `removed` → the
 * doc left some channels, which alone does not tell whether the user still sees it through another one,
 * so the follower asks `GET /db/<id>?rev=<rev>` as the user and keeps the doc only on a 200 whose body is
 * not the `_removed` redaction; any other entry → doc := rev.
 *
 * Revocation (the follower's extra docs): Sync Gateway 2.x sends nothing when a user LOSES a channel, and a
 * later backfill of a regranted channel skips removals. So a follower may legitimately keep a doc (at the
 * rev it received) that the user no longer sees. We allow that, with one exception where the 2.x
 * behaviour is unambiguous: if the user held, continuously since receiving that rev, one of the rev's
 * channels through its OWN `admin_channels` (whose grant sequence never changes while held) or `!` (held
 * by everyone from sequence 1), or held `*` in `admin_channels`, then the later change that hid the doc
 * is in a channel log the user reads without backfill, so it must have been delivered and the doc dropped.
 * Whether grants through documents or roles get re-dated when their source is rewritten is left open (it
 * only changes how much is backfilled), so those paths are judged leniently. Every rev a follower holds
 * was, when received, visible to the user at its then current rev (the security check above), so
 * "nothing the user was never allowed to see" holds for the followers as well.
 *
 * Every run is strict: a `_user/` entry has a sequence of its own, and paging stops at the first empty
 * page as a client does. Each rule once found a bug (both fixed); the cases that found them stay pinned
 * at the bottom as regression tests.
 *
 * Reproduce: `MODEL_SEED=<n>[,<m>...] [MODEL_STEPS=<k>] node --import tsx --test test/e2e/access-model.test.ts`
 * (a failure message prints the seed, the failing step and the full step list). With `MODEL_SHRINK=1` a
 * failure is also shrunk (greedy delta debugging, each candidate replayed on a fresh gateway, at most
 * `MODEL_SHRINK_MS`, default 120 s) and the minimal step list is printed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { req, startGateway } from '../helpers/gateway.ts';
import { seededRandom as mulberry32 } from '../helpers/random.ts';

const SYNC = `function(doc, oldDoc) {
  channel(doc.channels);
  if (doc.type === 'grant') access(doc.users, doc.grantChannels);
  if (doc.type === 'roles') role(doc.users, doc.roles);
}`;

const USERS = ['ann', 'bob', 'cat', 'dan'] as const;
const ROLES = ['ops', 'dev'] as const;
/** Channels a doc may be in; `!` is the public channel every user holds. */
const DOC_CHANNELS = ['!', 'red', 'green', 'blue', 'gold', 'teal'];
const NAMED = DOC_CHANNELS.filter((c) => c !== '!');
const PLAIN_IDS = Array.from({ length: 14 }, (_, i) => `d${String(i).padStart(2, '0')}`);
const GRANT_IDS = ['g0', 'g1', 'g2', 'g3'];
const ROLES_IDS = ['r0', 'r1'];

const INITIAL_USERS: Record<string, { admin_channels: string[]; admin_roles: string[] }> = {
  ann: { admin_channels: ['red'], admin_roles: [] },
  bob: { admin_channels: [], admin_roles: ['ops'] },
  cat: { admin_channels: ['green', 'blue'], admin_roles: [] },
  dan: { admin_channels: [], admin_roles: [] },
};
const INITIAL_ROLES: Record<string, string[]> = { ops: ['gold'], dev: ['teal'] };

const DEFAULT_SEEDS = [1, 2, 3, 4, 5];
const DEFAULT_STEPS = 40;

// ---------------------------------------------------------------------------------------------

class Rng {
  private next: () => number;
  constructor(seed: number) { this.next = mulberry32(seed); }
  float(): number { return this.next(); }
  int(n: number): number { return Math.floor(this.next() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]; }
  /** A random subset of size in [min, max], in the pool's order. */
  subset<T>(xs: readonly T[], min: number, max: number): T[] {
    const k = min + this.int(max - min + 1);
    const pool = [...xs];
    const out: T[] = [];
    while (out.length < k && pool.length) out.push(pool.splice(this.int(pool.length), 1)[0]);
    return xs.filter((x) => out.includes(x));
  }
}

// ---------------------------------------------------------------------------------------------
// Steps (pure data, so a failing run can be replayed and reported)

type Body = Record<string, unknown>;
type Step =
  | { op: 'put'; id: string; body: Body }
  | { op: 'delete'; id: string }
  | { op: 'user'; name: string; admin_channels: string[]; admin_roles: string[] }
  | { op: 'role'; name: string; admin_channels: string[] };

function describeStep(s: Step): string {
  switch (s.op) {
    case 'put': {
      const { n: _n, ...rest } = s.body;
      return `PUT ${s.id} ${JSON.stringify(rest)}`;
    }
    case 'delete': return `DELETE ${s.id}`;
    case 'user': return `PUT _user/${s.name} admin_channels=${JSON.stringify(s.admin_channels)} admin_roles=${JSON.stringify(s.admin_roles)}`;
    case 'role': return `PUT _role/${s.name} admin_channels=${JSON.stringify(s.admin_channels)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// The model and the oracle

interface RevInfo { channels: Set<string>; deleted: boolean }
interface DocState { rev: string; deleted: boolean; body: Body }

class Model {
  docs = new Map<string, DocState>();
  /** Every revision ever written, with the channels the sync function gives it. */
  revs = new Map<string, Map<string, RevInfo>>();
  users = new Map<string, { admin_channels: string[]; admin_roles: string[] }>();
  roles = new Map<string, string[]>();

  live(id: string): DocState | undefined {
    const d = this.docs.get(id);
    return d && !d.deleted ? d : undefined;
  }

  record(id: string, rev: string, body: Body | undefined) {
    const deleted = body === undefined;
    const channels = new Set<string>(deleted ? [] : (body.channels as string[]));
    if (!this.revs.has(id)) this.revs.set(id, new Map());
    this.revs.get(id)!.set(rev, { channels, deleted });
    this.docs.set(id, { rev, deleted, body: body ?? {} });
  }

  /** Roles of u: admin roles and roles granted by the current revision of a live roles doc. */
  rolesOf(u: string): Set<string> {
    const out = new Set(this.users.get(u)!.admin_roles);
    for (const id of ROLES_IDS) {
      const d = this.live(id);
      if (!d || d.body.type !== 'roles') continue;
      if ((d.body.users as string[]).includes(u)) for (const r of d.body.roles as string[]) out.add(r.replace(/^role:/, ''));
    }
    return out;
  }

  /** Channels granted by current live grant docs to a grantee (`name` or `role:name`). */
  docGrants(grantee: string): string[] {
    const out: string[] = [];
    for (const id of GRANT_IDS) {
      const d = this.live(id);
      if (!d || d.body.type !== 'grant') continue;
      if ((d.body.users as string[]).includes(grantee)) out.push(...(d.body.grantChannels as string[]));
    }
    return out;
  }

  channelsOf(u: string): Set<string> {
    const out = new Set<string>(['!', ...this.users.get(u)!.admin_channels, ...this.docGrants(u)]);
    for (const r of this.rolesOf(u)) {
      for (const c of this.roles.get(r) ?? []) out.add(c);
      for (const c of this.docGrants(`role:${r}`)) out.add(c);
    }
    return out;
  }

  /** Channels held in a way whose grant sequence is fixed while held: own admin channels, and `!`. */
  strictChannelsOf(u: string): Set<string> {
    return new Set(['!', ...this.users.get(u)!.admin_channels]);
  }

  /** doc id → current rev of every live doc the user may see. */
  visible(u: string): Map<string, string> {
    const chans = this.channelsOf(u);
    const all = chans.has('*');
    const out = new Map<string, string>();
    for (const [id, d] of this.docs) {
      if (d.deleted) continue;
      const revChans = this.revs.get(id)!.get(d.rev)!.channels;
      if (all || [...revChans].some((c) => chans.has(c))) out.set(id, d.rev);
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Step generation (uses only the logical model state, never the server's answers)

function genStep(rng: Rng, m: Model, counter: number): Step {
  const r = rng.float();
  const docChannels = () => {
    const x = rng.float();
    if (x < 0.12) return [];
    return rng.subset(DOC_CHANNELS, 1, x < 0.75 ? 1 : 2);
  };
  if (r < 0.34) {
    return { op: 'put', id: rng.pick(PLAIN_IDS), body: { type: 'plain', channels: docChannels(), n: counter } };
  }
  if (r < 0.46) {
    const live = [...PLAIN_IDS, ...GRANT_IDS, ...ROLES_IDS].filter((id) => m.live(id));
    if (live.length) return { op: 'delete', id: rng.pick(live) };
    return { op: 'put', id: rng.pick(PLAIN_IDS), body: { type: 'plain', channels: docChannels(), n: counter } };
  }
  if (r < 0.64) {
    const users = rng.subset([...USERS, ...ROLES.map((x) => `role:${x}`)], 1, 2);
    const body = { type: 'grant', channels: rng.float() < 0.6 ? [] : docChannels(), users, grantChannels: rng.subset(NAMED, 1, 2), n: counter };
    return { op: 'put', id: rng.pick(GRANT_IDS), body };
  }
  if (r < 0.74) {
    const body = {
      type: 'roles', channels: rng.float() < 0.6 ? [] : docChannels(), users: rng.subset(USERS, 1, 2),
      roles: rng.subset(ROLES.map((x) => `role:${x}`), 1, 2), n: counter,
    };
    return { op: 'put', id: rng.pick(ROLES_IDS), body };
  }
  if (r < 0.89) {
    const star = rng.float() < 0.08;
    return {
      op: 'user', name: rng.pick(USERS),
      admin_channels: star ? ['*'] : rng.subset(NAMED, 0, 2), admin_roles: rng.subset(ROLES, 0, 1 + (rng.float() < 0.3 ? 1 : 0)),
    };
  }
  return { op: 'role', name: rng.pick(ROLES), admin_channels: rng.subset(NAMED, 0, 2) };
}

// ---------------------------------------------------------------------------------------------
// Sequences: Sync Gateway's SequenceID ordering (spec §5.3), written from the spec

interface Seq { low: number; trig: number; seq: number }

function parseSeq(v: unknown): Seq {
  if (typeof v === 'number') return { low: 0, trig: 0, seq: v };
  assert.equal(typeof v, 'string', `sequence ${JSON.stringify(v)} is neither a number nor a string`);
  const parts = (v as string).split(':');
  const num = (p: string) => (p === '' ? 0 : Number(p));
  assert.ok(parts.length <= 3 && parts.every((p) => p === '' || /^\d+$/.test(p)), `malformed sequence ${JSON.stringify(v)}`);
  if (parts.length === 1) return { low: 0, trig: 0, seq: num(parts[0]) };
  if (parts.length === 2) return { low: 0, trig: num(parts[0]), seq: num(parts[1]) };
  return { low: num(parts[0]), trig: num(parts[1]), seq: num(parts[2]) };
}

const safe = (s: Seq) => (s.low > 0 ? s.low : s.seq);

/** `SequenceID.Before`. */
function before(a: Seq, b: Seq): boolean {
  if (a.trig === b.trig) return safe(a) < safe(b);
  if (a.trig === 0) return safe(a) < b.trig;
  if (b.trig === 0) return a.trig <= safe(b);
  return a.trig < b.trig;
}

// ---------------------------------------------------------------------------------------------
// One run

interface Entry { seq: number | string; id: string; deleted?: boolean; removed?: string[]; changes: { rev: string }[] }

/** A client following a user's feed: doc → rev, plus what it needs for the revocation rule. */
interface Follower {
  name: string;
  since: string;
  docs: Map<string, string>;
  /** doc → channels of the held rev (and `*`) held continuously as strict channels since receipt. */
  strict: Map<string, Set<string>>;
}

interface Stats { requests: number; backfillEntries: number; removalEntries: number; revGets: number; excusedStale: number; userEntries: number; userSeqTies: number; emptyPagesThatMoved: number; lagReadsFromBackfillSeq: number }

class Failure extends Error {}

/** A failed run: the message, the steps up to and including the failing one, and what kind of check failed. */
class ModelFailure extends Error {
  constructor(message: string, readonly steps: Step[], readonly kind: string, options?: ErrorOptions) { super(message, options); }
}

/** The check that failed, without the details: used to judge whether a shrunk step list fails the same way. */
function failureKind(msg: string): string {
  return msg.split('\n')[0].replace(/\b(ann|bob|cat|dan)\b/g, 'U').replace(/[0-9a-f]{32}|\d+/g, '#').slice(0, 60);
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

function fmtMap(m: Map<string, string>): string {
  return `{${[...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}:${v.slice(0, 8)}`).join(', ')}}`;
}

interface RunOptions {
  /**
   * Also require the `_user/<name>` entry to have a sequence of its own (it once took the sequence of
   * the document whose grant changed the user and tied with that document's entry; fixed, and pinned by
   * the regression tests at the bottom). Off, such a tie (and only that one) is tolerated, so that the
   * rest of the model is still checked if only this regresses.
   */
  strictUserSeq?: boolean;
  /**
   * Stop paging at the first empty page, as a client does (an empty normal feed means "caught up").
   * A limited backfill read whose rows were all skipped tombstones or removals once answered an empty
   * page with a moved `last_seq` while entries remained (fixed; pinned at the bottom). Off, paging
   * continues while `last_seq` moves, so the rest of the model is still checked if only this regresses.
   */
  strictEmptyPage?: boolean;
}

const STRICT: RunOptions = { strictUserSeq: true, strictEmptyPage: true };

async function run(seed: number, stepCount: number, stats: Stats, opts: RunOptions = STRICT, given?: Step[]): Promise<void> {
  const rng = new Rng(seed);
  const model = new Model();
  const steps: Step[] = [];
  let stepNo = -1;
  const gw = await startGateway({ databases: { db: { server: 'memory:', sync: SYNC } }, openGuest: false });
  const admin = `${gw.adminUrl}/db`;
  const pub = `${gw.publicUrl}/db`;
  const auth = (u: string) => ({ authorization: `Basic ${Buffer.from(`${u}:pw-${u}`).toString('base64')}` });

  function fail(msg: string): never { throw new Failure(msg); }

  async function adminWrite(url: string, init: Parameters<typeof req>[1]) {
    const res = await req(url, init);
    stats.requests++;
    if (res.status !== 200 && res.status !== 201) fail(`${init?.method} ${url} answered ${res.status} ${res.text}`);
    return res;
  }

  async function apply(s: Step): Promise<void> {
    switch (s.op) {
      case 'put': {
        const cur = model.docs.get(s.id);
        const q = cur ? `?rev=${cur.rev}` : '';
        const res = await adminWrite(`${admin}/${s.id}${q}`, { method: 'PUT', json: s.body });
        model.record(s.id, res.body.rev, s.body);
        return;
      }
      case 'delete': {
        const cur = model.live(s.id);
        if (!cur) return; // only reachable when replaying an edited step list
        const res = await adminWrite(`${admin}/${s.id}?rev=${cur.rev}`, { method: 'DELETE' });
        model.record(s.id, res.body.rev, undefined);
        return;
      }
      case 'user': {
        // No password: replacing a user without one keeps it (and skips a bcrypt hash).
        await adminWrite(`${admin}/_user/${s.name}`, { method: 'PUT', json: { admin_channels: s.admin_channels, admin_roles: s.admin_roles } });
        model.users.set(s.name, { admin_channels: s.admin_channels, admin_roles: s.admin_roles });
        return;
      }
      case 'role': {
        await adminWrite(`${admin}/_role/${s.name}`, { method: 'PUT', json: { admin_channels: s.admin_channels } });
        model.roles.set(s.name, s.admin_channels);
        return;
      }
    }
  }

  /** GET `_changes` as `user`, with every per-response check. */
  async function changes(user: string, since: string, limit?: number): Promise<{ results: Entry[]; last_seq: string }> {
    const url = `${pub}/_changes?since=${encodeURIComponent(since)}${limit ? `&limit=${limit}` : ''}`;
    const res = await req(url, { headers: auth(user) });
    stats.requests++;
    const where = `${user} GET _changes?since=${since}${limit ? `&limit=${limit}` : ''}`;
    if (res.status !== 200) fail(`${where}: status ${res.status} ${res.text}`);
    const { results, last_seq } = res.body as { results: Entry[]; last_seq: unknown };
    if (!Array.isArray(results)) fail(`${where}: no results array: ${res.text}`);
    if (typeof last_seq !== 'string') fail(`${where}: last_seq ${JSON.stringify(last_seq)} is not a string`);
    if (limit && results.length > limit) fail(`${where}: ${results.length} entries over limit ${limit}`);
    if (results.length) {
      const lastSeq = results[results.length - 1].seq;
      if (String(lastSeq) !== last_seq) fail(`${where}: last_seq ${last_seq} is not the last entry's seq ${JSON.stringify(lastSeq)}`);
    }
    let prev = parseSeq(since);
    let prevText = since;
    const chans = model.channelsOf(user);
    const star = chans.has('*');
    for (const e of results) {
      const s = parseSeq(e.seq);
      const userTie = e.id.startsWith('_user/') && prevText === JSON.stringify(e.seq) && !opts.strictUserSeq;
      if (userTie) stats.userSeqTies++;
      else if (!before(prev, s)) fail(`${where}: seq ${JSON.stringify(e.seq)} does not come after ${prevText}\n${res.text}`);
      prev = s;
      prevText = JSON.stringify(e.seq);
      if (s.trig) stats.backfillEntries++;
      if (typeof e.id !== 'string') fail(`${where}: entry without id ${JSON.stringify(e)}`);
      if (e.id.startsWith('_user/')) {
        stats.userEntries++;
        if (e.id !== `_user/${user}`) fail(`${where}: entry for another principal ${JSON.stringify(e)}`);
        continue;
      }
      if (!Array.isArray(e.changes) || e.changes.length !== 1) fail(`${where}: entry changes ${JSON.stringify(e)}`);
      const rev = e.changes[0].rev;
      const info = model.revs.get(e.id)?.get(rev);
      if (!info) fail(`${where}: entry names an unknown doc/rev ${JSON.stringify(e)}`);
      const cur = model.docs.get(e.id)!;
      if (e.removed !== undefined) {
        stats.removalEntries++;
        if (!Array.isArray(e.removed) || e.removed.length === 0) fail(`${where}: bad removed ${JSON.stringify(e)}`);
        for (const c of e.removed) {
          if (!star && !chans.has(c)) fail(`SECURITY ${where}: removal from a channel the user does not hold (${c}; user holds ${[...chans]}) ${JSON.stringify(e)}`);
          const wasIn = [...model.revs.get(e.id)!.values()].some((r) => r.channels.has(c));
          if (!wasIn) fail(`SECURITY ${where}: removal from ${c}, which doc ${e.id} never was in ${JSON.stringify(e)}`);
          if (info.channels.has(c)) fail(`${where}: removal from ${c} but rev ${rev} is in ${c} ${JSON.stringify(e)}`);
        }
      }
      if (e.deleted) {
        if (!info.deleted) fail(`${where}: deleted entry for a rev that is not a tombstone ${JSON.stringify(e)}`);
        if (!star && e.removed === undefined) fail(`SECURITY ${where}: tombstone entry without removed for a user without * ${JSON.stringify(e)}`);
      } else if (info.deleted) {
        fail(`${where}: tombstone rev ${rev} listed without deleted ${JSON.stringify(e)}`);
      }
      if (!e.deleted && e.removed === undefined) {
        // A live entry: the user must see this doc now, at this (current) rev.
        if (cur.deleted || cur.rev !== rev) fail(`${where}: live entry for a rev that is not current (current ${cur.rev}${cur.deleted ? ', deleted' : ''}) ${JSON.stringify(e)}`);
        if (!model.visible(user).has(e.id)) {
          fail(`SECURITY ${where}: entry for doc ${e.id} (channels ${[...info.channels]}) that the user (channels ${[...chans]}) may not see ${JSON.stringify(e)}`);
        }
      }
    }
    return { results, last_seq };
  }

  /** Follower application of one response (see the header). */
  async function follow(f: Follower, results: Entry[]) {
    for (const e of results) {
      if (e.id.startsWith('_user/')) continue;
      const rev = e.changes[0].rev;
      if (e.deleted) { f.docs.delete(e.id); f.strict.delete(e.id); continue; }
      if (e.removed) {
        const got = await req(`${pub}/${encodeURIComponent(e.id)}?rev=${rev}`, { headers: auth(f.name) });
        stats.requests++; stats.revGets++;
        if (got.status !== 200 || got.body?._removed) { f.docs.delete(e.id); f.strict.delete(e.id); continue; }
        if (got.body._rev !== rev) fail(`${f.name} GET ${e.id}?rev=${rev} answered rev ${got.body._rev}`);
        const chans = model.channelsOf(f.name);
        if (!chans.has('*') && ![...model.revs.get(e.id)!.get(rev)!.channels].some((c) => chans.has(c))) {
          fail(`SECURITY ${f.name} GET ${e.id}?rev=${rev} returned the body of a revision in none of the user's channels ${got.text}`);
        }
      }
      f.docs.set(e.id, rev);
      const held = new Set([...model.revs.get(e.id)!.get(rev)!.channels, '*']);
      f.strict.set(e.id, new Set([...model.strictChannelsOf(f.name)].filter((c) => held.has(c))));
    }
  }

  /** After every step: a strict channel the user no longer holds stops vouching for the docs it held. */
  function ageStrict(f: Follower) {
    const strictNow = model.strictChannelsOf(f.name);
    for (const set of f.strict.values()) for (const c of [...set]) if (!strictNow.has(c)) set.delete(c);
  }

  /** Compares a follower with the oracle (see the header for the revocation rule). */
  function compareFollower(f: Follower, label: string) {
    const vis = model.visible(f.name);
    for (const [id, rev] of vis) {
      const got = f.docs.get(id);
      if (got !== rev) {
        fail(`${label} ${f.name}: ${got === undefined ? 'MISSING' : `STALE (holds ${got})`} visible doc ${id} at ${rev}\n` +
          `  follower=${fmtMap(f.docs)}\n  oracle  =${fmtMap(vis)}\n  user channels=${[...model.channelsOf(f.name)]}`);
      }
    }
    for (const [id, rev] of f.docs) {
      if (vis.has(id)) continue;
      const strict = f.strict.get(id)!;
      if (strict.size) {
        const cur = model.docs.get(id)!;
        fail(`${label} ${f.name}: still holds ${id} at ${rev} although the doc is now ${cur.deleted ? 'deleted' : `in ${JSON.stringify([...model.revs.get(id)!.get(cur.rev)!.channels])}`} ` +
          `and the user held ${[...strict]} continuously (no backfill): the change should have been delivered\n` +
          `  follower=${fmtMap(f.docs)}\n  oracle  =${fmtMap(vis)}`);
      }
      stats.excusedStale++;
    }
  }

  /** Reads pages of `limit` from `f.since` until an empty page, applying each. */
  async function readPaged(f: Follower, limit: number) {
    for (let page = 0; ; page++) {
      if (page > 200) fail(`${f.name}: limit=${limit} paging from ${f.since} does not end`);
      const { results, last_seq } = await changes(f.name, f.since, limit);
      await follow(f, results);
      const moved = last_seq !== f.since;
      f.since = last_seq;
      if (!results.length) {
        if (!moved || opts.strictEmptyPage) return;
        stats.emptyPagesThatMoved++;
      }
    }
  }

  function oneShotMap(user: string, results: Entry[]): Map<string, string> {
    const vis = model.visible(user);
    const m = new Map<string, string>();
    for (const e of results) {
      if (e.id.startsWith('_user/')) continue;
      const rev = e.changes[0].rev;
      if (e.deleted) m.delete(e.id);
      // A removal entry can be merged with the doc's entry in another channel it is still in.
      else if (e.removed) { if (vis.get(e.id) === rev) m.set(e.id, rev); else m.delete(e.id); }
      else m.set(e.id, rev);
    }
    return m;
  }

  const followers = new Map<string, Follower>();
  const paged = new Map<string, Follower>();
  const lagging = new Map<string, Follower>();
  let total = 0;

  async function checkAll() {
    for (const u of USERS) {
      const vis = model.visible(u);
      // 1. one-shot feed from 0
      const one = await changes(u, '0');
      const got = oneShotMap(u, one.results);
      if (!sameMap(got, vis)) {
        fail(`one-shot _changes for ${u} differs from the oracle\n  feed  =${fmtMap(got)}\n  oracle=${fmtMap(vis)}\n  user channels=${[...model.channelsOf(u)]}\n  raw=${JSON.stringify(one.results)}`);
      }
      // 2. incremental followers
      for (const x of [followers, paged, lagging]) ageStrict(x.get(u)!);
      const f = followers.get(u)!;
      const { results, last_seq } = await changes(u, f.since);
      await follow(f, results);
      f.since = last_seq;
      compareFollower(f, 'incremental follower');
      const p = paged.get(u)!;
      await readPaged(p, 2);
      compareFollower(p, 'incremental limit=2 follower');
      // The lagging follower reads ONE limit=2 page per step, so it is often left in the middle of a
      // backfill (since = "T:N") while later writes and grants happen; every 4th step it catches up.
      const lag = lagging.get(u)!;
      if (lag.since.includes(':')) stats.lagReadsFromBackfillSeq++;
      const page = await changes(u, lag.since, 2);
      await follow(lag, page.results);
      lag.since = page.last_seq;
      if (stepNo % 4 === 3 || stepNo === total - 1) {
        await readPaged(lag, 2);
        compareFollower(lag, 'lagging limit=2 follower (caught up)');
      }
    }
    // 3. limit=3 paging from 0 for one user per step (every user when replaying a given list, so that
    //    shrinking does not change who is paged)
    for (const u of given ? USERS : [USERS[(stepNo + 1) % USERS.length]]) {
      const pf: Follower = { name: u, since: '0', docs: new Map(), strict: new Map() };
      await readPaged(pf, 3);
      const vis = model.visible(u);
      if (!sameMap(pf.docs, vis)) {
        fail(`limit=3 paging from 0 for ${u} differs from the oracle\n  pages =${fmtMap(pf.docs)}\n  oracle=${fmtMap(vis)}`);
      }
    }
  }

  try {
    for (const r of ROLES) {
      await adminWrite(`${admin}/_role/${r}`, { method: 'PUT', json: { admin_channels: INITIAL_ROLES[r] } });
      model.roles.set(r, INITIAL_ROLES[r]);
    }
    for (const u of USERS) {
      await adminWrite(`${admin}/_user/${u}`, { method: 'PUT', json: { password: `pw-${u}`, ...INITIAL_USERS[u] } });
      model.users.set(u, { ...INITIAL_USERS[u] });
      followers.set(u, { name: u, since: '0', docs: new Map(), strict: new Map() });
      paged.set(u, { name: u, since: '0', docs: new Map(), strict: new Map() });
      lagging.set(u, { name: u, since: '0', docs: new Map(), strict: new Map() });
    }
    total = given ? given.length : stepCount;
    await checkAll();
    for (stepNo = 0; stepNo < total; stepNo++) {
      const s = given ? given[stepNo] : genStep(rng, model, stepNo);
      steps.push(s);
      await apply(s);
      await checkAll();
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const list = steps.map((s, i) => `  ${String(i).padStart(2)}. ${describeStep(s)}`).join('\n');
    throw new ModelFailure(
      `access model FAILED: seed=${seed}${given ? ' (given steps)' : ''}, at step ${stepNo} of ${stepCount}` +
      `${stepNo >= 0 && steps[stepNo] ? ` (${describeStep(steps[stepNo])})` : ' (initial state)'}\n${msg}\n` +
      `steps:\n${list}\n` + (given ? '' : `reproduce: MODEL_SEED=${seed} MODEL_STEPS=${stepCount} node --import tsx --test test/e2e/access-model.test.ts` +
      ` (MODEL_SHRINK=1 also prints a minimal step list)`),
      [...steps], failureKind(msg), { cause: e },
    );
  } finally {
    await gw.stop();
  }
}

// ---------------------------------------------------------------------------------------------

const envSeed = process.env.MODEL_SEED;
const stepCount = Number(process.env.MODEL_STEPS ?? DEFAULT_STEPS);
const seeds = envSeed ? envSeed.split(',').map(Number) : DEFAULT_SEEDS;

const newStats = (): Stats => ({ requests: 0, backfillEntries: 0, removalEntries: 0, revGets: 0, excusedStale: 0, userEntries: 0, userSeqTies: 0, emptyPagesThatMoved: 0, lagReadsFromBackfillSeq: 0 });

/** Replays `steps`; the failure kind, or undefined when it passes. */
async function failsWith(steps: Step[], opts: RunOptions): Promise<ModelFailure | undefined> {
  try {
    await run(0, steps.length, newStats(), opts, steps);
    return undefined;
  } catch (e) {
    if (e instanceof ModelFailure) return e;
    throw e;
  }
}

/** Greedy delta debugging: drop chunks of steps while the replay still fails the same way. */
async function shrink(first: ModelFailure, opts: RunOptions): Promise<ModelFailure> {
  let best = first;
  let chunk = Math.max(1, Math.floor(best.steps.length / 2));
  const deadline = Date.now() + Number(process.env.MODEL_SHRINK_MS ?? 120_000);
  while (chunk >= 1 && Date.now() < deadline) {
    let progressed = false;
    for (let i = 0; i + chunk <= best.steps.length && Date.now() < deadline;) {
      const candidate = [...best.steps.slice(0, i), ...best.steps.slice(i + chunk)];
      const f = candidate.length ? await failsWith(candidate, opts) : undefined;
      if (f && f.kind === first.kind) { best = f; progressed = true; } else i += chunk;
    }
    if (!progressed) chunk = Math.floor(chunk / 2);
  }
  return best;
}

async function runSeed(seed: number, opts: RunOptions, t: { diagnostic(m: string): void }) {
  const stats = newStats();
  try {
    await run(seed, stepCount, stats, opts);
  } catch (e) {
    if (e instanceof ModelFailure && process.env.MODEL_SHRINK) {
      const small = await shrink(e, opts);
      e.message += `\n\nSHRUNK to ${small.steps.length} steps (replayed on a fresh gateway):\n${small.message}`;
    }
    throw e;
  }
  t.diagnostic(`seed ${seed}: ${JSON.stringify(stats)}`);
}

for (const seed of seeds) {
  test(`access model: seed ${seed}, ${stepCount} steps, ${USERS.length} users`, (t) => runSeed(seed, STRICT, t));
}

// ---------------------------------------------------------------------------------------------
// Regressions: the seeds and shrunk step lists that found two bugs, both fixed, each replayed with only
// its own strict check on.

/** Shrunk from seed 2 (MODEL_SHRINK=1): dan gets `red` and `blue` through a role after two docs left `red`. */
const EMPTY_PAGE_STEPS: Step[] = [
  { op: 'put', id: 'd11', body: { type: 'plain', channels: ['red', 'teal'], n: 0 } },
  { op: 'put', id: 'd03', body: { type: 'plain', channels: ['red', 'blue'], n: 1 } },
  { op: 'put', id: 'd03', body: { type: 'plain', channels: ['teal'], n: 2 } },
  { op: 'put', id: 'd11', body: { type: 'plain', channels: ['gold'], n: 3 } },
  { op: 'role', name: 'dev', admin_channels: ['red', 'blue'] },
  { op: 'put', id: 'd01', body: { type: 'plain', channels: ['red'], n: 5 } },
  { op: 'user', name: 'dan', admin_channels: [], admin_roles: ['dev'] },
];

// Fixed bug: a limited feed answered an EMPTY page with a moved last_seq (e.g. "12:4") while backfill
// entries remained, when the first `limit` rows of a backfilled channel were all skipped tombstones or
// removals (skipped rows counted toward the limit); a client stops at the empty page.
test('pinned: seed 3, stop paging at the first empty page', (t) => runSeed(3, { strictEmptyPage: true }, t));

test('pinned: shrunk steps, stop paging at the first empty page', async () => {
  await run(0, EMPTY_PAGE_STEPS.length, newStats(), { strictEmptyPage: true }, EMPTY_PAGE_STEPS);
});

// Fixed bug: the `_user/<name>` entry took the sequence of the document whose access() changed the user,
// so two entries shared one seq in a feed, and paging with limit=1 never delivered the `_user` entry.
test('pinned: seed 1, the _user entry has a sequence of its own', (t) => runSeed(1, { strictUserSeq: true }, t));

test('pinned: one grant doc, the _user entry has a sequence of its own', async () => {
  const steps: Step[] = [{ op: 'put', id: 'g1', body: { type: 'grant', channels: ['blue'], users: ['dan'], grantChannels: ['blue', 'teal'], n: 0 } }];
  await run(0, steps.length, newStats(), { strictUserSeq: true }, steps);
});
