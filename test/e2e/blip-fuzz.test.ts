/**
 * Hostile input over BLIP (issue 8, item 4): thousands of seeded malformed messages and frames sent
 * to `/{db}/_blipsync` as an authenticated user.
 *
 * (a) Message level: well-framed requests with hostile content, many per connection. Every request
 *     that expects a reply gets an ERR in the `HTTP` or `BLIP` domain with a 4xx code (or, for the
 *     read-only profiles where a well-shaped request is legitimate, an RPY); never a 5xx, never a
 *     close, never silence. The client side also answers the server's own requests (`changes`,
 *     `rev`, `getAttachment`, `proveAttachment`) with garbage. Property blocks that cannot be built
 *     through the encoder (NUL in a value, duplicate keys, invalid UTF-8...) go over a raw socket.
 * (b) Frame level: valid frames with one mutated (bit flips, truncation, bad varints, wrong CRC,
 *     bogus flags and numbers, replies to requests the server never sent...). The connection must
 *     close with a protocol error code (1002, 1003 text, 1009 too big), or, when the mutation left
 *     a frame the protocol cannot tell from a valid one, keep answering (a PING) with no 5xx.
 *
 * Every rev and setCheckpoint case carries at least one defect that alone makes it invalid, so the
 * database must end exactly as it started: document count, last sequence, changes feed, the
 * checkpoints the cases named, and the attachment digests they referenced (read via the admin API
 * and the store). The gateway must still serve a fresh BLIP connection and REST afterwards, and the
 * log must show no internal error (stack trace, 1011 close).
 *
 * Seeded: the seed is printed; replay with `SEED=<n> node --import tsx --test test/e2e/blip-fuzz.test.ts`
 * (FUZZ_COUNT / FUZZ_FRAMES change the number of cases; FUZZ_VERBOSE=1 prints answers by profile).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { deflateRawSync, constants } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { req, startGateway, storedState, type TestGateway } from '../helpers/gateway.ts';
import { BlipClient, openBlipSocket, sha1Digest } from '../helpers/blip-client.ts';
import { BlipConnection, type BlipProperties, type BlipRequest, type BlipResponse } from '../../src/replication/blip/connection.ts';
import { FrameDecoder, FrameEncoder } from '../../src/replication/blip/codec/frame-codec.ts';
import { encodeMessage } from '../../src/replication/blip/codec/properties.ts';
import { encodeVarint } from '../../src/replication/blip/codec/varint.ts';
import { seededRandom as rng } from '../helpers/random.ts';

const SEED = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const MSG_COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
const FRAME_COUNT = Number(process.env.FUZZ_FRAMES ?? 1500);
const VERBOSE = !!process.env.FUZZ_VERBOSE;
/** Requests sent together on one connection (they are handled concurrently, as a replicator's are). */
const BATCH = 60;
/** Connections fuzzed at once (each is a feed slot of the user: the default cap is 100). */
const PARALLEL = Number(process.env.FUZZ_PARALLEL ?? 12);
const REPLY_TIMEOUT_MS = 5000;

const USERS = { alice: { password: 'alice-pw', admin_channels: ['a'] } };
const alice = { user: 'alice', password: 'alice-pw' };

// Frame flags (spec blip.md §2.2).
const MSG = 0; const RPY = 1; const ERR = 2; const ACKMSG = 4; const ACKRPY = 5;
const COMPRESSED = 0x08; const URGENT = 0x10; const NOREPLY = 0x20; const MORE = 0x40;

class Gen {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]; }
  chance(p: number): boolean { return this.next() < p; }
  word(n = 8): string { return Array.from({ length: n }, () => 'abcdefghijklmnopqrstuvwxyz0123456789'[this.int(0, 35)]).join(''); }
  hex(n = 32): string { return Array.from({ length: n }, () => '0123456789abcdef'[this.int(0, 15)]).join(''); }
  bytes(n: number): Buffer { return Buffer.from(Array.from({ length: n }, () => this.int(0, 255))); }
}

// ---------------------------------------------------------------------------------------------
// Hostile values.

const BAD_REVS = ['abc', '0-abc', '-1-a', '1-', 'a-b', '1-a b', ' 1-a', '1 -a', '99999999999999999999-a', '1e3-a', '0x1-a', '1.5-a',
  '-', '\t1-a', '1-a\n', 'Infinity-a', 'NaN-x', '01-a', '+1-a', '1-\u00a0'];
const ODD_STRINGS = ['', ' ', 'abc', '-1', '0', '1.5', '1e309', '-1e309', '99999999999999999999', 'null', 'true', 'maybe', 'YES', '[]', '{}',
  '{"seq":1}', '[1,2]', '"x"', '1:2:3:4', '::', '\u00ff\u00fe', '\ud800', '\u202e', 'x'.repeat(5000), '%00', '../../etc', 'NaN'];

/** Mutates valid JSON text until JSON.parse rejects it. */
function brokenJson(g: Gen, valid: string): string {
  for (;;) {
    let s = valid;
    for (let e = g.int(1, 3); e > 0; e--) {
      const at = g.int(0, Math.max(0, s.length - 1));
      switch (g.int(0, 5)) {
        case 0: s = s.slice(0, at); break;
        case 1: s = s.slice(0, at) + s.slice(at + 1); break;
        case 2: s = s.slice(0, at) + g.pick(['{', '}', '[', ']', ',', ':', '"', '\\', "'", 'NaN', 'undefined', '\u0000', '/*', '01', '.5', '+1', '0x1f', '\\u12']) + s.slice(at); break;
        case 3: s = s.replace(g.pick(['"', ':', ',', '}', ']']), ''); break;
        case 4: s = s + g.pick([',', '}', ' x', '{}', '"']); break;
        default: s = g.pick(['nul', 'tru', '{"a":}', '{,}', '[1,]', '{"a" 1}', "{'a':1}", '{"a":1,}', '"\\x41"', '[1e]', '[-]', '{"\\ud800":1', '\ufeff{}']); break;
      }
    }
    if (s.trim() === '') continue;
    try { JSON.parse(s); } catch { return s; }
  }
}

/** Nested past the 1,000-level limit every other layer enforces. */
function deepJson(g: Gen, wrap = (inner: string) => `{"channels":["a"],"deep":${inner}}`): Buffer {
  const depth = g.int(1001, g.chance(0.2) ? 100_000 : 5000);
  const [open, close] = g.chance(0.5) ? ['[', ']'] : ['{"a":', '}'];
  return Buffer.from(wrap(open.repeat(depth) + '1' + close.repeat(depth)));
}

function invalidUtf8(g: Gen): Buffer {
  const bad = g.pick([[0xff], [0xfe], [0xc0, 0x80], [0x80], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3]]);
  const [a, b] = g.pick([['{"channels":["a"],"name":"a', 'b"}'], ['{"channels":["a"],"', '":1}'], ['{"channels":["a', '"]}'], ['{"x":["', '"],"channels":["a"]}']]);
  return Buffer.concat([Buffer.from(a), Buffer.from(bad), Buffer.from(b)]);
}

function nonObjectJson(g: Gen): Buffer {
  return Buffer.from(g.pick(['[]', '"x"', '1', 'null', 'true', 'false', '[{"channels":["a"]}]', '1e309', '-0', '1.0', '""', '[[[]]]']));
}

// ---------------------------------------------------------------------------------------------
// Message-level cases.

/** err: an ERR (HTTP or BLIP domain, 4xx) is required. any: an RPY is legitimate too (reads). */
type Expect = 'err' | 'any';

interface MsgCase {
  name: string;
  props: BlipProperties;
  body?: Buffer;
  expect: Expect;
  noReply?: boolean;
  compressed?: boolean;
  urgent?: boolean;
  /** Sent only after the rest of the batch was answered (it changes the connection's mode). */
  tail?: boolean;
}

interface Fixture {
  seededRev: string;
  seededDigest: string;
  checkpointRev: string;
  /** Checkpoint client names setCheckpoint cases used: none of them may exist afterwards. */
  clients: Set<string>;
  /** Digests of attachments the cases referenced but never delivered: none may be stored. */
  digests: Set<string>;
}

const props = (p: Record<string, string | undefined>): BlipProperties =>
  Object.fromEntries(Object.entries(p).filter((e): e is [string, string] => e[1] !== undefined));

/** Odd but harmless extra properties (they never make an invalid request valid). */
function decorate(g: Gen, p: BlipProperties): void {
  for (let n = g.chance(0.3) ? g.int(1, 4) : 0; n > 0; n--) {
    p[g.pick(['sequence', 'deleted', 'deltaSrc', 'x-junk', 'Content-Type', 'compress', 'batch', 'since', 'Profile2', '\u00e9', 'noconflicts', 'revocations', '_id'])] ??= g.pick(ODD_STRINGS);
  }
  if (g.chance(0.02)) p['x-big'] = 'v'.repeat(g.int(10_000, 90_000));
}

function revCase(g: Gen, fx: Fixture): MsgCase {
  const id = `fz-${g.word(6)}`;
  const gen = g.int(1, 4);
  const p: BlipProperties = { Profile: 'rev', id, rev: `${gen}-${g.hex()}`, sequence: String(g.int(1, 9999)) };
  if (gen > 1 && g.chance(0.6)) p.history = Array.from({ length: gen - 1 }, (_, i) => `${gen - 1 - i}-${g.hex()}`).join(',');
  const doc: Record<string, unknown> = { channels: ['a'], v: g.int(0, 9) };
  // Decorations: odd but not disqualifying on their own.
  if (g.chance(0.2)) p.deleted = g.pick(['maybe', '0', '1', 'true', 'YES', '-1', '', 'false']);
  if (g.chance(0.2)) p.sequence = g.pick(ODD_STRINGS);
  if (g.chance(0.1)) doc._revisions = g.pick([{ start: 'x', ids: 5 }, { start: 1e300, ids: [] }, 'garbage', [1, 2], null]);
  if (g.chance(0.1)) Object.assign(doc, g.pick([{ _id: 5 }, { _rev: 'nope' }, { _deleted: 'maybe' }]));
  let body: Buffer | undefined;
  const defects: string[] = [];
  for (let n = g.int(1, 2); n > 0; n--) {
    switch (g.int(0, 12)) {
      case 0: {
        const v = g.pick([undefined, '', '_design/x', '_local/x', '_user/alice', '_sync:x', '_']);
        if (v === undefined) delete p.id; else p.id = v;
        defects.push(`id=${JSON.stringify(v)}`);
        break;
      }
      case 1: {
        const v = g.pick([undefined, '', ...BAD_REVS]);
        if (v === undefined || v === '') delete p.rev; else p.rev = v;
        defects.push(`rev=${JSON.stringify(v)}`);
        break;
      }
      case 2: { // a malformed ancestor the history walk reaches
        const bad = g.pick(BAD_REVS.filter((r) => r !== ''));
        p.rev = `3-${g.hex()}`;
        p.history = g.pick([bad, `2-${g.hex()},${bad}`, `${bad},1-${g.hex()}`]);
        defects.push(`history=${JSON.stringify(p.history.slice(0, 40))}`);
        break;
      }
      case 3: body = Buffer.from(brokenJson(g, JSON.stringify(doc))); defects.push('broken JSON'); break;
      case 4: body = nonObjectJson(g); defects.push(`body ${body.toString().slice(0, 20)}`); break;
      case 5: body = invalidUtf8(g); defects.push('invalid UTF-8'); break;
      case 6: body = deepJson(g); defects.push('deep JSON'); break;
      case 7: doc._removed = g.pick([true, 1, 'yes']); defects.push('_removed'); break;
      case 8: { // a stub the client can never deliver correctly (the server fetches or asks for proof)
        const data = g.bytes(g.int(1, 300));
        const digest = g.chance(0.3) ? fx.seededDigest : sha1Digest(data);
        if (digest !== fx.seededDigest) fx.digests.add(digest);
        doc._attachments = { [g.pick(['a.txt', 'blob_/photo', '', '\u0000x', '../x'])]: { stub: true, digest, length: g.pick([data.length, -1, 1e309, 0, 'x']), revpos: g.pick([1, -1, 0, 'x', 1e309, null]), content_type: 'x/y' } };
        defects.push('undeliverable stub');
        break;
      }
      case 9: { // attachments the document layer refuses
        doc._attachments = g.pick<unknown>([
          'x', [], { a: 'x' }, { a: { data: '***not base64***' } }, { a: { stub: true } }, { a: { stub: true, digest: 5 } },
          { a: { stub: true, digest: 'sha1-AAAA', revpos: 1 } }, { a: { follows: true } }, { a: { data: 5 } }, { a: null },
          { a: { stub: true, digest: 'md5-xxxx', length: 3 } },
        ]);
        defects.push(`_attachments ${JSON.stringify(doc._attachments).slice(0, 50)}`);
        break;
      }
      case 10: // a conflict with the current revision of an existing document, refused under noconflicts
        p.id = 'seeded';
        p.rev = `${g.int(1, 2)}-${g.hex()}`;
        delete p.history;
        p.noconflicts = 'true';
        defects.push('noconflicts conflict');
        break;
      case 11: p.collection = g.pick(['0', '1', '-1', 'abc', '1e309', '', '99999999999999999999']); defects.push('collection before getCollections'); break;
      default: body = Buffer.alloc(0); p.rev = g.pick(BAD_REVS); defects.push(`empty body, rev ${p.rev}`); break;
    }
  }
  decorate(g, p);
  return { name: `rev ${defects.join(' + ')}`, props: p, body: body ?? Buffer.from(JSON.stringify(doc)), expect: 'err' };
}

function setCheckpointCase(g: Gen, fx: Fixture): MsgCase {
  const client = g.pick(['fz-cp-1', 'fz-cp-2', `fz-cp-${g.word(4)}`, 'a/b', '../../x', '%2F', '\u00e9\u4e2d', ' ', 'x'.repeat(g.int(300, 5000)), 'seeded-cp']);
  const p: BlipProperties = { Profile: 'setCheckpoint', client };
  let body: Buffer = Buffer.from(JSON.stringify({ local: g.int(0, 99), remote: g.pick([1, '5', 1e300, null]) }));
  let defect: string;
  switch (g.int(0, 6)) {
    case 0: delete p.client; defect = 'no client'; break;
    case 1: body = Buffer.from(brokenJson(g, body.toString())); defect = 'broken JSON'; break;
    case 2: body = g.chance(0.5) ? nonObjectJson(g) : Buffer.alloc(0); defect = 'not an object'; break;
    case 3: body = g.chance(0.5) ? invalidUtf8(g) : deepJson(g); defect = 'invalid UTF-8 or deep'; break;
    case 4: // stale or bogus rev: 404 (nothing stored) or 409
      // ('0-0' is no rev at all: only a stale one for the checkpoint that exists.)
      p.rev = g.pick(['0-1', '0-2', '0-99', 'abc', '1-abc', '0-', '0-99999999999999999999', '0-1e3', '-0-1', ' 0-1']);
      if (client === 'seeded-cp' && p.rev === fx.checkpointRev) p.rev = '0-99';
      defect = `rev ${p.rev}`;
      break;
    default: // the existing checkpoint without its current rev: 409
      p.client = 'seeded-cp';
      if (g.chance(0.5)) p.rev = g.pick(['0-0', '0-2', '0-7', 'garbage']);
      defect = `seeded-cp rev ${p.rev}`;
  }
  if (p.client && p.client !== 'seeded-cp') fx.clients.add(p.client);
  decorate(g, p);
  delete p.collection;
  return { name: `setCheckpoint ${defect}`, props: p, body, expect: 'err' };
}

function subChangesCase(g: Gen): MsgCase {
  const p: BlipProperties = { Profile: 'subChanges' };
  for (const [k, vals] of [
    ['since', ['abc', '-1', '1e309', '{}', '[]', '"x"', '1:2:3:4', '99999999999999999999', '{"seq":1}', 'null', 'true', '1.5', '"0:1"', '"a:b"', '"1::3"', '0', '"999999999999999:1"', '18446744073709551616']],
    ['batch', ['-1', '1e309', 'abc', '0', '99999999999999999999', '1.5', '', '5', '100000000']],
    ['filter', ['bogus', 'sync_gateway/bychannel', '']],
    ['channels', [',,,', '', 'a', '*', '!', 'a,b,' + 'c'.repeat(3000)]],
    ['continuous', ['true', 'maybe', '1', '-1', '99999999999999999999']],
    ['activeOnly', ['true', 'x']], ['revocations', ['true', '2']], ['sendReplacementRevs', ['true']], ['future', ['true', 'x']],
    ['versioning', ['rev-trees', 'version-vectors', '']], ['collection', ['0', 'x']],
  ] as [string, string[]][]) if (g.chance(0.3)) p[k] = g.pick(vals);
  const body = g.chance(0.3) ? Buffer.from(g.pick(['{"docIDs":"x"}', '{"docIDs":[1,2]}', '{"docIDs":["seeded"]}', '[]', '"x"', '{"docIDs":null}', '{"docIDs":[' + '"a",'.repeat(2000) + '"b"]}']))
    : g.chance(0.1) ? Buffer.from(brokenJson(g, '{"docIDs":["a"]}')) : undefined;
  return { name: `subChanges ${JSON.stringify(p).slice(0, 80)} ${body?.toString().slice(0, 30) ?? ''}`, props: p, body, expect: 'any' };
}

function listBody(g: Gen, row: () => unknown): Buffer {
  switch (g.int(0, 7)) {
    case 0: return Buffer.from(brokenJson(g, '[["a","1-abc"]]'));
    case 1: return Buffer.from(g.pick(['{}', '"x"', '1', '{"a":["1-x"]}', 'true', '1e309']));
    case 2: return deepJson(g, (inner) => `[${inner}]`);
    case 3: return invalidUtf8(g);
    default: return Buffer.from(JSON.stringify(Array.from({ length: g.int(1, 30) }, row)).replace(/"@HUGE@"/g, () => g.pick(['1e309', '-1e400', '99999999999999999999', '1.0e2'])));
  }
}

function junkValue(g: Gen): unknown {
  return g.pick<unknown>([null, 1, -1, '@HUGE@', '', 'seeded', '1-abc', [], {}, true, 'x'.repeat(300), ['1-a'], { rev: 5 }, `1-${g.hex()}`, `_design/x`, '\ud800']);
}

function proposeChangesCase(g: Gen): MsgCase {
  const body = listBody(g, () => g.chance(0.3)
    ? [g.pick(['seeded', 'other', `fz-${g.word(4)}`]), g.pick([...BAD_REVS, `1-${g.hex()}`, `2-${g.hex()}`]), ...(g.chance(0.5) ? [junkValue(g)] : [])]
    : g.pick<unknown>([junkValue(g), Array.from({ length: g.int(0, 4) }, () => junkValue(g))]));
  const p: BlipProperties = { Profile: 'proposeChanges' };
  if (g.chance(0.3)) p.conflictIncludesRev = g.pick(['true', 'x', '']);
  decorate(g, p);
  return { name: `proposeChanges ${body.toString().slice(0, 60)}`, props: p, body, expect: 'any' };
}

function changesCase(g: Gen): MsgCase {
  const body = listBody(g, () => g.chance(0.3)
    ? [g.pick<unknown>([1, '@HUGE@', 'x', null, { seq: 1 }]), g.pick(['seeded', 'other', `fz-${g.word(4)}`, '']), g.pick([...BAD_REVS, `1-${g.hex()}`]), g.pick<unknown>([true, 1, 'maybe', 99, undefined])]
    : g.pick<unknown>([junkValue(g), Array.from({ length: g.int(0, 5) }, () => junkValue(g))]));
  const p: BlipProperties = { Profile: 'changes' };
  decorate(g, p);
  return { name: `changes ${body.toString().slice(0, 60)}`, props: p, body, expect: 'any' };
}

function attachmentCase(g: Gen, fx: Fixture): MsgCase {
  const profile = g.pick(['getAttachment', 'proveAttachment']);
  const digest = g.pick([undefined, '', fx.seededDigest, `sha1-${g.word(27)}=`, 'md5-abc', 'sha1-', '\ud800', 'x'.repeat(2000)]);
  const docID = g.pick([undefined, '', 'seeded', 'other', `fz-${g.word(3)}`]);
  const p = props({ Profile: profile, digest, docID, compress: g.chance(0.3) ? g.pick(['true', 'x']) : undefined });
  const body = profile === 'proveAttachment' ? g.pick([Buffer.alloc(0), g.bytes(g.int(1, 20)), g.bytes(256), g.bytes(g.int(257, 2000))]) : g.chance(0.2) ? g.bytes(10) : undefined;
  decorate(g, p);
  // The seeded attachment may legitimately be fetchable while a pull on this connection sends it.
  const expect: Expect = digest === fx.seededDigest && (docID === 'seeded' || docID === undefined) ? 'any' : 'err';
  return { name: `${profile} digest=${JSON.stringify(digest?.slice(0, 30))} docID=${JSON.stringify(docID)}`, props: p, body, expect };
}

function checkpointReadCase(g: Gen): MsgCase {
  const p = props({ Profile: 'getCheckpoint', client: g.pick([undefined, '', 'seeded-cp', 'nope', ...ODD_STRINGS]) });
  decorate(g, p);
  return { name: `getCheckpoint client=${JSON.stringify(p.client?.slice(0, 30))}`, props: p, body: g.chance(0.2) ? g.bytes(20) : undefined, expect: 'any' };
}

function getCollectionsCase(g: Gen): MsgCase {
  const valid = g.chance(0.3);
  const body = valid
    ? Buffer.from(JSON.stringify(g.pick([
      { collections: ['_default._default'], checkpoint_ids: ['seeded-cp'] },
      { collections: ['inventory.items', '_default'], checkpoint_ids: [5, null] },
      { collections: [], checkpoint_ids: [] },
      { collections: ['_default._default', '_default._default'], checkpoint_ids: ['nope', { a: 1 }] },
    ])))
    : g.pick([
      Buffer.from(brokenJson(g, '{"collections":["_default"],"checkpoint_ids":["a"]}')), Buffer.alloc(0), nonObjectJson(g),
      Buffer.from('{"collections":"x","checkpoint_ids":[]}'), Buffer.from('{"collections":["a","b"],"checkpoint_ids":["a"]}'),
      Buffer.from('{"collections":[1e309],"checkpoint_ids":[]}'), invalidUtf8(g), deepJson(g, (i) => `{"collections":${i},"checkpoint_ids":[]}`),
    ]);
  // A JSON `null` body decodes to two empty lists in Sync Gateway (Go leaves the struct as it is): `[]`.
  const ok = valid || body.toString() === 'null';
  return { name: `getCollections ${body.toString().slice(0, 60)}`, props: { Profile: 'getCollections' }, body, expect: ok ? 'any' : 'err', tail: ok };
}

function msgCases(g: Gen, fx: Fixture): MsgCase {
  let c: MsgCase;
  switch (g.int(0, 15)) {
    case 0: case 1: case 2: case 3: c = revCase(g, fx); break;
    case 4: case 5: c = setCheckpointCase(g, fx); break;
    case 6: c = subChangesCase(g); break;
    case 7: c = proposeChangesCase(g); break;
    case 8: c = changesCase(g); break;
    case 9: c = attachmentCase(g, fx); break;
    case 10: c = checkpointReadCase(g); break;
    case 11: c = getCollectionsCase(g); break;
    case 12: { // norev: the client cannot send a revision it announced; nothing to store
      const p = props({ Profile: 'norev', id: g.pick([undefined, 'seeded', '_x', ...ODD_STRINGS]), rev: g.pick([undefined, ...BAD_REVS]), sequence: g.pick(ODD_STRINGS), error: g.pick(['404', 'x', '-1', '1e309', '']), reason: g.pick(ODD_STRINGS) });
      c = { name: 'norev', props: p, body: g.chance(0.3) ? g.bytes(g.int(1, 100)) : undefined, expect: 'any' };
      break;
    }
    case 13: { // unknown, missing and look-alike profiles: BLIP/404
      const profile = g.pick([undefined, '', 'bogus', 'getRev', 'putRev', 'getcheckpoint', 'REV', 'rev ', ' rev', 'Rev', '\ud800', 'x'.repeat(3000), 'function', '__proto__', 'constructor', 'toString']);
      const p = props({ Profile: profile });
      if (g.chance(0.3)) p[g.pick(['profile', 'PROFILE', 'Profile '])] = 'rev';
      c = { name: `profile ${JSON.stringify(profile?.slice(0, 20))}`, props: p, body: g.chance(0.5) ? g.bytes(g.int(0, 200)) : undefined, expect: 'err' };
      break;
    }
    case 14: c = { name: 'PING', props: { Profile: g.pick(['PING', 'unsubChanges']) }, body: g.chance(0.5) ? g.bytes(g.int(1, 50)) : undefined, expect: 'any' }; break;
    default: c = revCase(g, fx); break;
  }
  c.noReply = g.chance(0.1) && !c.tail;
  c.compressed = g.chance(0.3);
  c.urgent = g.chance(0.2);
  return c;
}

// ---------------------------------------------------------------------------------------------
// The client side of a fuzz connection: answers the server's own requests with garbage too.

/** Deterministic per request (handlers run in timing-dependent order): a hash of seed and properties. */
function choice(req: BlipRequest, n: number): number {
  return createHash('md5').update(`${SEED}\u0000${JSON.stringify(req.properties)}\u0000${req.body.length}`).digest()[0] % n;
}

function hostileAnswer(req: BlipRequest): void {
  if (req.noReply) return;
  const k = choice(req, 8);
  switch (req.profile) {
    case 'changes': {
      let rows: unknown[] = [];
      try { rows = (req.json<unknown[]>() ?? []) as unknown[]; } catch { /* answered below */ }
      if (k === 0) req.respondError('HTTP', 500, 'client exploded');
      else if (k === 1) req.respond({}, 'not json');
      else if (k === 2) req.respond({ maxHistory: g0(k) }, { a: 1 });
      else if (k === 3) req.respond({}, `[${'['.repeat(5000)}${']'.repeat(5000)}]`);
      else if (k === 4) req.respond({ maxHistory: '-1' }, rows.map(() => ['1-x', 5, null]).concat([[], [], []]));
      else if (k === 5) req.respond({ maxHistory: '1e309' }, Buffer.from([0xff, 0xfe, 0x5b, 0x5d]));
      else req.respond({ maxHistory: String(k) }, rows.map(() => []), { compressed: true });
      return;
    }
    case 'rev':
      if (k < 3) req.respondError(k === 0 ? 'HTTP' : 'Fleece', k === 0 ? 500 : 7, 'no');
      else if (k === 3) req.respond({}, Buffer.from([0xff]));
      else req.respond();
      return;
    case 'getAttachment':
      if (k < 3) req.respondError(k === 0 ? 'HTTP' : 'BLIP', k === 0 ? 404 : 500, 'no');
      else req.respond({}, Buffer.from(`wrong bytes ${k}`), { compressed: k > 5 });
      return;
    case 'proveAttachment':
      if (k < 4) req.respondError('HTTP', k < 2 ? 404 : 403, 'no');
      else req.respond({}, k === 4 ? 'sha1-AAAA' : Buffer.from([0xff, k]));
      return;
    default:
      req.respondError('BLIP', 404, 'no handler for message');
  }
}
function g0(k: number): string { return ['x', '', '-5', '99999999999999999999'][k % 4]; }

interface Outcome { c: MsgCase; res?: BlipResponse; problem?: string }

/**
 * The two misuses Sync Gateway answers with an unmapped Go error (HTTP/500 "Internal error: …"),
 * which Syncgate reproduces on purpose (spec collections-delta.md §1.3, §1.5): a second subChanges
 * for a collection, and a getCollections body that is not two string arrays. Any other 500 is a bug.
 */
const SG_500 = /^Internal error: (blipHandler for (default collection|collection \d+) already has an outstanding subChanges|Error deserializing json Sync err: )/;

function checkReply(c: MsgCase, res: BlipResponse | undefined): string | undefined {
  if (c.noReply) return res ? 'a noreply request was answered' : undefined;
  if (!res) return 'no reply';
  if (res.isError) {
    if (res.errorDomain !== 'HTTP' && res.errorDomain !== 'BLIP') return `ERR in domain ${res.errorDomain}`;
    if (res.errorCode === 500 && SG_500.test(res.body.toString())) return undefined;
    if (!(res.errorCode! >= 400 && res.errorCode! < 500)) return `ERR ${res.errorDomain}/${res.errorCode}: ${res.body.toString().slice(0, 150)}`;
    return undefined;
  }
  return c.expect === 'err' ? `answered RPY ${JSON.stringify(res.properties).slice(0, 80)} ${res.body.toString().slice(0, 80)}` : undefined;
}

/** One connection: the batch at once, then the tail one by one; a close by the server is a failure. */
/** How a batch's connection is set up: the older CBMobile_2, and/or collection-aware mode. */
interface ConnMode { v2: boolean; aware: boolean }

/**
 * In collection-aware mode (after a getCollections naming the default collection as index 0) every
 * message must name a collection: cases without one get `0`, and a deliberately wrong one that
 * would now be right (`0`) becomes `1`, which does not exist, so every case keeps its defect.
 */
function inMode(c: MsgCase, mode: ConnMode): MsgCase {
  if (!mode.aware) return c;
  const p = { ...c.props };
  if (p.collection === '0') p.collection = '1';
  else if (p.collection === undefined) p.collection = '0';
  return { ...c, props: p };
}

async function runBatch(url: string, batch: MsgCase[], mode: ConnMode): Promise<{ outcomes: Outcome[]; closed?: string }> {
  const ws = await openBlipSocket(url, { ...alice, protocols: mode.v2 ? ['BLIP_3+CBMobile_2'] : undefined });
  const conn = new BlipConnection(ws, { role: 'client' });
  conn.on('error', () => {});
  conn.onRequest(hostileAnswer);
  let closed: string | undefined;
  ws.once('close', (code, reason) => { if (!done) closed = `server closed ${code} ${reason.toString()}`; });
  let done = false;
  if (mode.aware) {
    const res = await conn.sendRequest({ Profile: 'getCollections' }, { collections: ['_default._default', 'other.scope'], checkpoint_ids: ['seeded-cp', 'x'] });
    assert.equal(res?.isError, false, 'getCollections');
  }
  const send = async (c: MsgCase): Promise<Outcome> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = conn.sendRequest(c.props, c.body, { noReply: c.noReply, compressed: c.compressed, urgent: c.urgent });
      const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), REPLY_TIMEOUT_MS); });
      const res = await Promise.race([reply, timeout]);
      if (res === 'timeout') return { c, problem: 'no reply within 5 s' };
      return { c, res, problem: checkReply(c, res) };
    } catch (err) {
      return { c, problem: `request failed: ${(err as Error).message.slice(0, 150)}` };
    } finally {
      clearTimeout(timer);
    }
  };
  const outcomes = await Promise.all(batch.filter((c) => !c.tail).map((c) => send(inMode(c, mode))));
  for (const c of batch.filter((c) => c.tail)) outcomes.push(await send(inMode(c, mode)));
  // noreply requests have no answer to wait for: a PING behind them shows they were taken in order.
  const ping = await send({ name: 'closing PING', props: { Profile: 'PING' }, expect: 'any' });
  if (ping.problem) outcomes.push(ping);
  done = true;
  await new Promise<void>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve(); return; }
    ws.once('close', () => resolve());
    conn.close(1000);
    setTimeout(() => { ws.terminate(); resolve(); }, 2000).unref();
  });
  return { outcomes, closed };
}

// ---------------------------------------------------------------------------------------------
// Raw sockets: hand-built property blocks and mutated frames.

interface RawReply { type: number; props: string; body: Buffer }

/** A BLIP peer with no protocol logic: sends the bytes it is given, decodes what comes back. */
class RawPeer {
  readonly enc = new FrameEncoder();
  private readonly dec = new FrameDecoder();
  private rx: Promise<void> = Promise.resolve();
  readonly replies = new Map<number, RawReply>();
  private readonly partial = new Map<number, Buffer[]>();
  private waiters: (() => void)[] = [];
  close?: { code: number; reason: string };
  /** The server's own frames failed to decode: a server bug, not the peer's. */
  serverFault?: string;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) { this.serverFault = 'text message from the server'; return; }
      this.rx = this.rx.then(async () => {
        if (this.serverFault) return;
        try {
          const f = await this.dec.decode(Buffer.from(data));
          if (f.kind !== 'data' || (f.type !== RPY && f.type !== ERR)) return;
          const parts = this.partial.get(f.number) ?? [];
          parts.push(f.data);
          if (f.moreComing) { this.partial.set(f.number, parts); return; }
          this.partial.delete(f.number);
          const all = Buffer.concat(parts);
          let off = 0; let len = 0; let scale = 1;
          for (;;) { const b = all[off++]; len += (b & 0x7f) * scale; scale *= 128; if (!(b & 0x80)) break; }
          this.replies.set(f.number, { type: f.type, props: all.subarray(off, off + len).toString('utf8'), body: all.subarray(off + len) });
        } catch (err) {
          this.serverFault = `undecodable frame from the server: ${(err as Error).message}`;
        }
        this.wake();
      });
    });
    ws.on('close', (code, reason) => { this.close = { code, reason: reason.toString() }; this.wake(); });
    ws.on('error', () => {});
  }

  static async open(url: string): Promise<RawPeer> {
    return new RawPeer(await openBlipSocket(url, alice));
  }

  private wake(): void { const w = this.waiters; this.waiters = []; for (const f of w) f(); }

  send(data: Buffer | string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, { binary: typeof data !== 'string' });
  }

  /** Resolves once `pred` holds or the connection closed; false after `ms`. */
  async until(pred: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!pred() && !this.close) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
    return true;
  }

  end(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), 1000).unref();
    this.enc.close();
    this.dec.close();
  }
}

/** `Error-Domain`/`Error-Code` of an ERR's raw properties. */
function errOf(r: RawReply): { domain: string; code: number } {
  const s = r.props.split('\0');
  const get = (k: string) => { const i = s.indexOf(k); return i >= 0 && i % 2 === 0 ? s[i + 1] : undefined; };
  return { domain: get('Error-Domain') ?? 'BLIP', code: Number(get('Error-Code')) };
}

/** A properties block as raw strings (NULs, duplicates and bad bytes allowed), with a varint length. */
function rawProps(parts: (string | Buffer)[], terminate = true): Buffer {
  const chunks: Buffer[] = [];
  parts.forEach((p, i) => {
    chunks.push(Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'));
    if (terminate || i < parts.length - 1) chunks.push(Buffer.of(0));
  });
  const block = Buffer.concat(chunks);
  return Buffer.concat([encodeVarint(block.length), block]);
}

interface FrameCase {
  name: string;
  /** Frames to send, built with the connection's encoder (running CRC and deflate state). */
  build(enc: FrameEncoder): Promise<(Buffer | string)[]>;
  /** Numbers of the requests in the frames that expect an answer, if the connection survives. */
  asks: number[];
  /** The next free request number for the PING that follows. */
  next: number;
}

const good = (p: BlipProperties, body = Buffer.alloc(0)) => encodeMessage(p, body);

/** Messages that are valid on their own (and write nothing), to be framed and then broken. */
function validScript(g: Gen): { msg: Buffer; flags: number }[] {
  const pool: (() => { msg: Buffer; flags: number })[] = [
    () => ({ msg: good({ Profile: 'getCheckpoint', client: 'seeded-cp' }), flags: MSG }),
    () => ({ msg: good({ Profile: 'PING' }), flags: MSG | (g.chance(0.5) ? URGENT : 0) }),
    () => ({ msg: good({ Profile: 'proposeChanges' }, Buffer.from(JSON.stringify([['seeded', `1-${g.hex()}`], ['x', `1-${g.hex()}`]]))), flags: MSG | COMPRESSED }),
    // A rev that is refused anyway (id starts with _), long enough to span frames.
    () => ({ msg: good({ Profile: 'rev', id: `_fz${g.word(4)}`, rev: '1-abc' }, Buffer.from(JSON.stringify({ channels: ['a'], pad: 'p'.repeat(g.int(10, 40_000)) }))), flags: MSG | (g.chance(0.5) ? COMPRESSED : 0) }),
    () => ({ msg: good({ Profile: 'getCheckpoint', client: 'nope' }), flags: MSG | NOREPLY }),
  ];
  return Array.from({ length: g.int(1, 3) }, () => g.pick(pool)());
}

/** Frames of the script: up to 16 KiB of message data each, MORE set on all but the last. */
async function frameScript(enc: FrameEncoder, script: { msg: Buffer; flags: number }[], first: number): Promise<{ frames: Buffer[]; meta: { number: number; flags: number; data: Buffer }[] }> {
  const frames: Buffer[] = [];
  const meta: { number: number; flags: number; data: Buffer }[] = [];
  for (let i = 0; i < script.length; i++) {
    const { msg, flags } = script[i];
    for (let off = 0; off < msg.length; off += 16_374) {
      const data = msg.subarray(off, off + 16_374);
      const f = flags | (off + 16_374 < msg.length ? MORE : 0);
      frames.push(await enc.encode(first + i, f, data));
      meta.push({ number: first + i, flags: f, data });
    }
  }
  return { frames, meta };
}

function headerLength(frame: Buffer): number {
  let i = 0;
  for (let v = 0; v < 2; v++) { while (i < frame.length && frame[i] & 0x80) i++; i++; }
  return Math.min(i, frame.length);
}

function frameCase(g: Gen): FrameCase {
  const kind = g.int(0, 17);
  const script = validScript(g);
  const count = script.length;
  const asks = script.map((s, i) => ((s.flags & NOREPLY) ? 0 : i + 1)).filter((n) => n > 0);
  const mk = (name: string, build: FrameCase['build'], next = count + 1): FrameCase => ({ name, build, asks, next });
  const mutateOne = (name: string, f: (frame: Buffer, i: number, frames: Buffer[]) => Buffer | string | (Buffer | string)[]) => mk(name, async (enc) => {
    const { frames } = await frameScript(enc, script, 1);
    const i = g.int(0, frames.length - 1);
    const out: (Buffer | string)[] = [...frames];
    const m = f(Buffer.from(frames[i]), i, frames);
    out.splice(i, 1, ...(Array.isArray(m) ? m : [m]));
    return out;
  });
  switch (kind) {
    case 0: return mutateOne('bit flips', (fr) => { for (let n = g.int(1, 3); n > 0; n--) fr[g.int(0, fr.length - 1)] ^= 1 << g.int(0, 7); return fr; });
    case 1: return mutateOne('bit flip in the header', (fr) => { fr[g.int(0, headerLength(fr) - 1)] ^= 1 << g.int(0, 7); return fr; });
    case 2: return mutateOne('truncated', (fr) => fr.subarray(0, g.int(0, fr.length - 1)));
    case 3: return mutateOne('trailing junk', (fr) => Buffer.concat([fr, g.bytes(g.int(1, 40))]));
    case 4: return mutateOne('wrong checksum', (fr) => { fr[fr.length - g.int(1, 4)] ^= g.int(1, 255); return fr; });
    case 5: return mutateOne('overlong varint', (fr) => {
      const h = headerLength(fr);
      return Buffer.concat([Buffer.alloc(g.int(9, 20), 0xff), g.chance(0.5) ? fr.subarray(h) : Buffer.alloc(0)]);
    });
    case 6: return mutateOne('unterminated varint', () => Buffer.alloc(g.int(1, 8), 0x80 | g.int(0, 127)));
    case 7: return mutateOne('bogus flags', (fr) => {
      const h = headerLength(fr);
      const num = fr[0] & 0x7f; // numbers here are < 128: one byte
      const flags = g.pick([3, 6, 7, RPY, ERR, ACKMSG, ACKRPY, MORE, COMPRESSED, NOREPLY, 0x80, 0xff, 0x3fff, g.int(0, 255), g.int(0, 2 ** 20)]) | (g.chance(0.5) ? fr[1] & 0x7f : 0);
      return Buffer.concat([encodeVarint(num), encodeVarint(flags), fr.subarray(h)]);
    });
    case 8: return mutateOne('wrong message number', (fr) => {
      const h = headerLength(fr);
      const flagsByte = fr.subarray(1, h);
      return Buffer.concat([encodeVarint(g.pick([0, 2, 5, 100, 2 ** 40, Number.MAX_SAFE_INTEGER, (fr[0] & 0x7f) + 1])), flagsByte, fr.subarray(h)]);
    });
    case 9: return mutateOne('empty frame', () => Buffer.alloc(0));
    case 10: return mutateOne('text message', (fr) => g.chance(0.5) ? fr.toString('latin1') : '{"Profile":"getCheckpoint"}');
    case 11: return mutateOne('frame sent twice', (fr) => [fr, fr]);
    case 12: return mk('frames swapped', async (enc) => {
      const { frames } = await frameScript(enc, script.length > 1 ? script : [...script, ...validScript(g)], 1);
      const i = g.int(0, frames.length - 2);
      [frames[i], frames[i + 1]] = [frames[i + 1], frames[i]];
      return frames;
    }, count + 4);
    case 13: { // a reply to a request the server never sent
      const type = g.pick([RPY, ERR]);
      return mk(`unsolicited ${type === RPY ? 'RPY' : 'ERR'}`, async (enc) => {
        const { frames } = await frameScript(enc, script, 1);
        const props = type === ERR ? good({ 'Error-Domain': 'HTTP', 'Error-Code': '500' }, Buffer.from('x')) : good({}, Buffer.from('[]'));
        frames.splice(g.int(0, frames.length), 0, await enc.encode(g.int(1, 1000), type | (g.chance(0.3) ? MORE : 0), props));
        return frames;
      });
    }
    case 14: { // ACKs for messages that do not exist, with bad byte counts
      return mk('stray ACK', async (enc) => {
        const { frames } = await frameScript(enc, script, 1);
        const ack = Buffer.concat([encodeVarint(g.int(0, 50)), encodeVarint(g.pick([ACKMSG, ACKRPY]) | g.pick([0, URGENT | NOREPLY])),
          g.pick([encodeVarint(g.int(0, 2 ** 40)), Buffer.alloc(0), Buffer.of(0x80), Buffer.alloc(12, 0xff)])]);
        frames.splice(g.int(0, frames.length), 0, ack);
        return frames;
      });
    }
    case 15: { // compression lies: the flag on plain data, or deflate garbage
      return mutateOne('compression lie', (fr, i) => {
        const h = headerLength(fr);
        const num = fr[0] & 0x7f;
        const flags = (fr[1] & 0x7f) ^ COMPRESSED;
        const payload = g.chance(0.5) ? fr.subarray(h) : Buffer.concat([g.bytes(g.int(1, 50)), Buffer.alloc(4)]);
        void i;
        return Buffer.concat([encodeVarint(num), encodeVarint(flags), payload]);
      });
    }
    case 16: { // messages with properties a well-behaved encoder cannot produce
      const variants: [string, Buffer][] = [
        ['NUL inside a value (odd strings)', rawProps(['Profile', 'rev', 'id', 'a\0b', 'rev', '1-abc'])],
        ['NUL inside a value (even strings)', rawProps(['Profile', 'getCheckpoint', 'client', 'a\0x\0y'])],
        ['duplicate property', rawProps(['Profile', 'rev', 'Profile', 'getCheckpoint'])],
        ['not NUL-terminated', rawProps(['Profile', 'getCheckpoint', 'client', 'x'], false)],
        ['invalid UTF-8 in a value', rawProps(['Profile', 'getCheckpoint', 'client', Buffer.from([0xff, 0xfe, 0xc0])])],
        ['invalid UTF-8 in the profile', rawProps(['Profile', Buffer.from([0x72, 0x65, 0x76, 0xff])])],
        ['properties longer than the message', Buffer.concat([encodeVarint(g.int(30, 5000)), Buffer.from('Profile\0PING\0')])],
        ['properties over 100 KiB', Buffer.concat([encodeVarint(100 * 1024 + g.int(1, 1000)), Buffer.alloc(100 * 1024 + 2000, 0x61)])],
        ['empty properties', Buffer.concat([encodeVarint(0), g.bytes(g.int(0, 50))])],
        ['lone NUL', Buffer.concat([encodeVarint(1), Buffer.of(0)])],
        ['empty key', rawProps(['', 'rev', 'Profile', 'PING'])],
      ];
      const [name, msg] = g.pick(variants);
      const flags = MSG | (g.chance(0.3) ? COMPRESSED : 0);
      return { name: `raw properties: ${name}`, asks: [1], next: 2, build: async (enc) => [await enc.encode(1, flags, msg)] };
    }
    default: { // over the limits: one WebSocket message over 1 MiB, or a deflate bomb
      // The bomb costs the server ~100 ms of inflating each time: a few of them are enough.
      if (g.chance(0.8)) return mk('frame over 1 MiB', async () => [Buffer.concat([Buffer.of(1, MSG), Buffer.alloc(1024 * 1024 + g.int(1, 1000), 0x61)])], 2);
      return mk('deflate bomb', async () => [Buffer.concat([Buffer.of(1, MSG | COMPRESSED), bomb(), Buffer.alloc(4)])], 2);
    }
  }
}

/** 40 MB of zeros deflated (~40 KB), without the sync-flush trailer; built once (it takes a while). */
let bombBytes: Buffer | undefined;
function bomb(): Buffer {
  if (!bombBytes) {
    const z = deflateRawSync(Buffer.alloc(40 * 1024 * 1024), { finishFlush: constants.Z_SYNC_FLUSH });
    bombBytes = z.subarray(0, z.length - 4);
  }
  return bombBytes;
}

/** Protocol-error closes: 1002 protocol error, 1003 text message, 1009 too big. */
const PROTOCOL_CLOSES = new Set([1002, 1003, 1009]);

async function runFrameCase(url: string, fc: FrameCase): Promise<{ outcome: string; problem?: string }> {
  const peer = await RawPeer.open(url);
  try {
    for (const f of await fc.build(peer.enc)) peer.send(f);
    // A PING after the damage: answered means the connection survived in a sane state.
    let ping = fc.next;
    peer.send(await peer.enc.encode(ping, MSG, good({ Profile: 'PING' })));
    if (!(await peer.until(() => peer.replies.has(ping), 3000)) && !peer.close) {
      // The damaged frame may have left a message open that swallowed the PING: try one more.
      ping++;
      peer.send(await peer.enc.encode(ping, MSG, good({ Profile: 'PING' })));
      if (!(await peer.until(() => peer.replies.has(ping), 3000))) return { outcome: 'hung', problem: 'neither closed nor answered a PING' };
    }
    if (!peer.close) await peer.until(() => fc.asks.every((n) => peer.replies.has(n)), 300);
    await new Promise((r) => setImmediate(r));
    if (peer.serverFault) return { outcome: 'fault', problem: peer.serverFault };
    for (const r of peer.replies.values()) {
      if (r.type !== ERR) continue;
      const { domain, code } = errOf(r);
      if ((domain !== 'HTTP' && domain !== 'BLIP') || !(code >= 400 && code < 500)) return { outcome: 'err', problem: `ERR ${domain}/${code} ${r.body.toString().slice(0, 100)}` };
    }
    if (peer.close) {
      if (!PROTOCOL_CLOSES.has(peer.close.code)) return { outcome: `closed ${peer.close.code}`, problem: `closed with ${peer.close.code} ${peer.close.reason}` };
      return { outcome: `closed ${peer.close.code}` };
    }
    return { outcome: 'survived' };
  } finally {
    peer.end();
  }
}

// ---------------------------------------------------------------------------------------------

async function pool<T>(items: T[], n: number, f: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) await f(items[i++]); }));
}

describe(`hostile input over BLIP (SEED=${SEED})`, () => {
  let gw: TestGateway;
  let url: string;
  let fx: Fixture;

  const state = async () => {
    const cp = await req(`${gw.adminUrl}/db/_local/checkpoint%2Fseeded-cp`);
    return { ...(await storedState(gw)), checkpoint: cp.text };
  };

  /** The gateway still serves: REST on both ports and a fresh BLIP connection. */
  async function stillServing(): Promise<void> {
    assert.equal((await req(`${gw.publicUrl}/db/seeded`, { headers: { Authorization: 'Basic ' + Buffer.from('alice:alice-pw').toString('base64') } })).status, 200);
    const c = await BlipClient.connect(url, alice);
    assert.equal((await c.getCheckpoint('seeded-cp'))?.rev, fx.checkpointRev);
    await c.close();
  }

  /** Log lines that betray an internal error: a stack trace, a 500, a 1011 close. */
  const internalErrors = (from: number) => [...new Set(gw.logs.slice(from).filter((l) => /\n\s+at |Internal error|\(1011\b(?! bytes)|changes feed failed|unhandled|\[ERR\]/.test(l))
    .map((l) => l.replace(/^\S+ /, '').split('\n').slice(0, 4).join(' | ').slice(0, 400)))];

  before(async () => {
    console.log(`blip fuzz seed: SEED=${SEED} (replay: SEED=${SEED} node --import tsx --test test/e2e/blip-fuzz.test.ts)`);
    gw = await startGateway({ databases: { db: { server: 'memory:', users: USERS } } });
    url = `${gw.publicUrl}/db`;
    const put = await req(`${gw.adminUrl}/db/seeded`, { method: 'PUT', json: { v: 1, channels: ['a'] } });
    const att = await req(`${gw.adminUrl}/db/seeded/att.txt?rev=${put.body.rev}`, { method: 'PUT', body: 'hello', headers: { 'Content-Type': 'text/plain' } });
    await req(`${gw.adminUrl}/db/other`, { method: 'PUT', json: { v: 1, channels: ['a'] } });
    const c = await BlipClient.connect(url, alice);
    const cpRev = await c.setCheckpoint('seeded-cp', { local: 1, remote: 2 });
    await c.close();
    fx = { seededRev: att.body.rev, seededDigest: sha1Digest(Buffer.from('hello')), checkpointRev: cpRev, clients: new Set(), digests: new Set() };
  });
  after(() => gw.stop());

  test(`${MSG_COUNT} hostile messages: ERR 4xx (HTTP or BLIP domain), never 5xx or silence, nothing written`, async () => {
    const before = await state();
    const logMark = gw.logs.length;
    const g = new Gen(rng(SEED));
    const cases: MsgCase[] = [];
    while (cases.length < MSG_COUNT) cases.push(msgCases(g, fx));
    const batches: MsgCase[][] = [];
    for (let i = 0; i < cases.length; i += BATCH) batches.push(cases.slice(i, i + BATCH));
    const gm = new Gen(rng(SEED ^ 0xc011));
    const modes = new Map(batches.map((b) => [b, { v2: gm.chance(0.25), aware: gm.chance(0.25) }]));
    const failures: string[] = [];
    const seen = new Map<string, number>();
    const t0 = Date.now();
    await pool(batches, PARALLEL, async (batch) => {
      const mode = modes.get(batch)!;
      const { outcomes, closed } = await runBatch(url, batch, mode);
      if (closed) failures.push(`${closed} during a batch of ${batch.map((c) => c.name.split(' ')[0]).join(',').slice(0, 200)}`);
      for (const o of outcomes) {
        if (o.problem) failures.push(`${o.c.name.slice(0, 160)}${o.c.noReply ? ' (noreply)' : ''}: ${o.problem}`);
        if (VERBOSE) {
          const a = o.c.noReply ? 'noreply' : !o.res ? 'none' : o.res.isError ? `${o.res.errorDomain}/${o.res.errorCode} ${o.res.body.toString().slice(0, 50)}` : 'RPY';
          const key = `${(o.c.props.Profile ?? '-').slice(0, 20)} -> ${a}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }
    });
    console.log(`blip fuzz: ${cases.length} messages on ${batches.length} connections in ${Date.now() - t0} ms`);
    if (VERBOSE) for (const [k, n] of [...seen].sort()) console.log(`${String(n).padStart(5)}  ${k}`);
    assert.deepEqual([...new Set(failures)].slice(0, 40), [], `SEED=${SEED}: ${failures.length} bad answers`);
    await stillServing();
    assert.deepEqual(await state(), before, `SEED=${SEED}: the database changed`);
    const store = gw.gateway.get('db')!.store;
    const written = [];
    for (const client of fx.clients) if (await store.getLocal(`checkpoint/${client}`)) written.push(client);
    assert.deepEqual(written, [], `SEED=${SEED}: checkpoints written`);
    assert.deepEqual([...await store.hasAttachments([...fx.digests])], [], `SEED=${SEED}: attachments stored`);
    assert.deepEqual(internalErrors(logMark).slice(0, 5), [], `SEED=${SEED}: internal errors logged`);
  });

  test(`${FRAME_COUNT} mutated frames: a protocol-error close, or a connection that still answers sanely`, async () => {
    const before = await state();
    const logMark = gw.logs.length;
    const g = new Gen(rng(SEED ^ 0xb11b));
    const cases = Array.from({ length: FRAME_COUNT }, () => frameCase(g));
    const failures: string[] = [];
    const outcomes = new Map<string, number>();
    const took = new Map<string, number>(); // FUZZ_VERBOSE: ms spent per kind of case
    const t0 = Date.now();
    let done = 0;
    await pool(cases, PARALLEL * 2, async (fc) => {
      const t = Date.now();
      const { outcome, problem } = await runFrameCase(url, fc);
      const key = `${fc.name.replace(/:.*/, '')} -> ${outcome}`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
      if (VERBOSE) took.set(key, (took.get(key) ?? 0) + Date.now() - t);
      if (problem) failures.push(`${fc.name}: ${problem}`);
      // Every few hundred connections: the gateway still takes new ones and serves REST.
      if (++done % 300 === 0) await stillServing();
    });
    console.log(`blip fuzz: ${cases.length} frame cases in ${Date.now() - t0} ms (${[...outcomes.values()].reduce((a, b) => a + b, 0)} connections)`);
    if (VERBOSE) for (const [k, n] of [...outcomes].sort()) console.log(`${String(n).padStart(5)}  ${k}  (${Math.round(took.get(k)! / n)} ms each)`);
    assert.deepEqual([...new Set(failures)].slice(0, 40), [], `SEED=${SEED}: ${failures.length} bad outcomes`);
    // The protocol violations must actually be caught, not merely survived.
    const closes = [...outcomes].filter(([k]) => /closed 100[239]/.test(k)).reduce((a, [, n]) => a + n, 0);
    assert.ok(closes > FRAME_COUNT / 2, `only ${closes} of ${FRAME_COUNT} damaged connections were closed`);
    await stillServing();
    assert.deepEqual(await state(), before, `SEED=${SEED}: the database changed`);
    assert.deepEqual(internalErrors(logMark).slice(0, 5), [], `SEED=${SEED}: internal errors logged`);
  });
});
