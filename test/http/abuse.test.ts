/**
 * Abuse protection over real listeners: the login lockout (Basic, `POST /_session`, operator
 * ports), rate limits per address and per user, and the cap on concurrent changes feeds.
 * Different client addresses come through `X-Forwarded-For` from a trusted proxy (loopback, by default).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { WebSocket } from 'ws';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const basic = (name: string, pw: string) => 'Basic ' + Buffer.from(`${name}:${pw}`).toString('base64');
const from = (address: string, headers: Record<string, string> = {}) => ({ 'x-forwarded-for': address, ...headers });

const USERS = {
  alice: { password: 'alice-pw', admin_channels: ['a'] },
  bob: { password: 'bob-pw', admin_channels: ['b'] },
  carol: { password: 'carol-pw', admin_channels: ['c'] },
  dave: { password: 'dave-pw', admin_channels: ['d'] },
  GUEST: { disabled: false, admin_channels: ['pub'] },
};

describe('login lockout', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      databases: { db: { server: 'memory:', users: USERS } },
      config: {
        admin_users: { ops: { password_hash: bcrypt.hashSync('ops-pw', 4) } },
      },
    });
  });
  after(() => gw.stop());

  const get = (user: string, pw: string, address: string) =>
    req(`${gw.publicUrl}/db/`, { headers: from(address, { authorization: basic(user, pw) }) });

  test('5 failed Basic logins lock the (user, address) pair: even the right password is refused, like a wrong one', async () => {
    const wrong = await get('alice', 'guess-0', '10.0.0.1');
    assert.equal(wrong.status, 401);
    for (let i = 1; i < 5; i++) assert.equal((await get('alice', `guess-${i}`, '10.0.0.1')).status, 401);
    const locked = await get('alice', 'alice-pw', '10.0.0.1');
    assert.equal(locked.status, 401);
    assert.deepEqual(locked.body, wrong.body);
    assert.deepEqual(locked.body, { error: 'Unauthorized', reason: 'Invalid login' });
    assert.equal(locked.headers.get('www-authenticate'), wrong.headers.get('www-authenticate'));
    // The pair is locked, not the user: alice elsewhere, and others here, still log in.
    assert.equal((await get('alice', 'alice-pw', '10.0.0.2')).status, 200);
    assert.equal((await get('bob', 'bob-pw', '10.0.0.1')).status, 200);
    const warn = gw.logs.filter((l) => /within \d+ s: locked out for 900 s/.test(l));
    assert.equal(warn.length, 1);
    assert.match(warn[0], /\[WRN\] Auth: 5 failed logins for username="alice" from 10\.0\.0\.1 \(db db\) within 300 s/);
    const all = gw.logs.join('\n');
    for (let i = 0; i < 5; i++) assert.ok(!all.includes(`guess-${i}`), 'no password reaches the log');
    assert.ok(!all.includes('alice-pw'));
  });

  test('unknown users are locked and answered exactly like real ones', async () => {
    const answers = [];
    for (const user of ['bob', 'nobody']) {
      for (let i = 0; i < 5; i++) await get(user, 'nope', '10.0.0.3');
      answers.push(await get(user, 'bob-pw', '10.0.0.3'));
    }
    assert.equal(answers[0].status, 401);
    assert.equal(answers[1].status, 401);
    assert.deepEqual(answers[0].body, answers[1].body);
    assert.deepEqual([...answers[0].headers.keys()].sort(), [...answers[1].headers.keys()].sort());
    assert.ok(gw.logs.some((l) => /username="nobody" from 10\.0\.0\.3 .*locked out/.test(l)));
  });

  test('POST /_session shares the count with Basic auth and is refused while locked', async () => {
    const login = (pw: string) => req(`${gw.publicUrl}/db/_session`, { method: 'POST', headers: from('10.0.0.4'), json: { name: 'carol', password: pw } });
    for (let i = 0; i < 3; i++) assert.equal((await get('carol', 'nope', '10.0.0.4')).status, 401);
    for (let i = 0; i < 2; i++) assert.equal((await login('nope')).status, 401);
    const refused = await login('carol-pw');
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.body, { error: 'Unauthorized', reason: 'Invalid login' });
    assert.equal(refused.headers.get('set-cookie'), null);
    assert.equal((await get('carol', 'carol-pw', '10.0.0.4')).status, 401);
    const elsewhere = await req(`${gw.publicUrl}/db/_session`, { method: 'POST', headers: from('10.0.0.5'), json: { name: 'carol', password: 'carol-pw' } });
    assert.equal(elsewhere.status, 200);
  });

  test('the admin port\'s operators are locked out the same way', async () => {
    const admin = (pw: string) => req(`${gw.adminUrl}/_all_dbs`, { headers: from('10.0.0.6', { authorization: basic('ops', pw) }) });
    for (let i = 0; i < 5; i++) assert.equal((await admin('nope')).status, 401);
    const refused = await admin('ops-pw');
    assert.deepEqual([refused.status, refused.body.reason], [401, 'Invalid login']);
    assert.equal((await req(`${gw.adminUrl}/_all_dbs`, { headers: from('10.0.0.7', { authorization: basic('ops', 'ops-pw') }) })).status, 200);
    assert.ok(gw.logs.some((l) => /username="ops" from 10\.0\.0\.6 \(admin port\)/.test(l)));
  });

  test('X-Forwarded-For from an untrusted peer is ignored', async () => {
    const plain = await startGateway({ databases: { db: { server: 'memory:', users: USERS } }, config: { limits: { trusted_proxies: [] } } });
    try {
      for (let i = 0; i < 5; i++) {
        await req(`${plain.publicUrl}/db/`, { headers: from(`10.1.0.${i}`, { authorization: basic('dave', 'nope') }) });
      }
      // Every guess came from 127.0.0.1 whatever the header said: that pair is locked.
      const r = await req(`${plain.publicUrl}/db/`, { headers: from('10.1.0.99', { authorization: basic('dave', 'dave-pw') }) });
      assert.equal(r.status, 401);
    } finally {
      await plain.stop();
    }
  });
});

describe('login timing', () => {
  test('unknown names cost a bcrypt like wrong passwords; locked pairs cost none, known user or not', async () => {
    // A high cost makes bcrypt dominate, so the comparison holds on a busy machine.
    const gw = await startGateway({ databases: { db: { server: 'memory:', users: { erin: { password: 'erin-pw' } } } }, config: { bcrypt_cost: 12 } });
    try {
      const timed = async (user: string, address: string) => {
        const t0 = performance.now();
        const r = await req(`${gw.publicUrl}/db/`, { headers: from(address, { authorization: basic(user, 'wrong') }) });
        assert.equal(r.status, 401);
        return performance.now() - t0;
      };
      await timed('ghost', '10.9.0.9'); // makes the decoy hash once
      const known = Math.min(await timed('erin', '10.9.0.1'), await timed('erin', '10.9.0.1'));
      const unknown = Math.min(await timed('ghost', '10.9.0.2'), await timed('ghost', '10.9.0.2'));
      assert.ok(unknown > known * 0.5, `unknown ${unknown.toFixed(0)} ms vs known ${known.toFixed(0)} ms`);
      for (let i = 0; i < 3; i++) { await timed('erin', '10.9.0.1'); await timed('ghost', '10.9.0.2'); }
      const lockedKnown = await timed('erin', '10.9.0.1');
      const lockedUnknown = await timed('ghost', '10.9.0.2');
      assert.ok(lockedKnown < known * 0.5 && lockedUnknown < known * 0.5, `locked ${lockedKnown.toFixed(0)}/${lockedUnknown.toFixed(0)} ms vs bcrypt ${known.toFixed(0)} ms`);
    } finally {
      await gw.stop();
    }
  });
});

describe('login lockout settings', () => {
  test('the lock expires after login_lockout_secs; login_max_failures 0 turns it off', async () => {
    const gw = await startGateway({
      databases: { db: { server: 'memory:', users: USERS } },
      config: { limits: { login_max_failures: 2, login_failure_window_secs: 60, login_lockout_secs: 1 } },
    });
    const off = await startGateway({ databases: { db: { server: 'memory:', users: USERS } }, config: { limits: { login_max_failures: 0 } } });
    try {
      const get = (url: string, pw: string) => req(`${url}/db/`, { headers: { authorization: basic('alice', pw) } });
      await get(gw.publicUrl, 'x');
      await get(gw.publicUrl, 'x');
      assert.equal((await get(gw.publicUrl, 'alice-pw')).status, 401);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await get(gw.publicUrl, 'alice-pw')).status, 200);
      for (let i = 0; i < 8; i++) await get(off.publicUrl, 'x');
      assert.equal((await get(off.publicUrl, 'alice-pw')).status, 200);
    } finally {
      await gw.stop();
      await off.stop();
    }
  });
});

describe('rate limits', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      databases: { db: { server: 'memory:', users: USERS } },
      config: { limits: { requests_per_address: 6, requests_per_user: 4, rate_window_secs: 60 } },
    });
  });
  after(() => gw.stop());

  test('per address: 429 with Retry-After and Sync Gateway\'s error body once the budget is spent', async () => {
    for (let i = 0; i < 6; i++) assert.equal((await req(`${gw.publicUrl}/db/`, { headers: from('10.2.0.1') })).status, 200);
    const r = await req(`${gw.publicUrl}/db/`, { headers: from('10.2.0.1') });
    assert.equal(r.status, 429);
    assert.deepEqual(r.body, { error: 'Too Many Requests', reason: 'Too many requests from this address; try again later' });
    assert.equal(r.headers.get('retry-after'), '10', 'one request back every 10 s (6 per minute)');
    // Refused before authentication: even correct credentials do not get through, and no bcrypt runs.
    assert.equal((await req(`${gw.publicUrl}/db/`, { headers: from('10.2.0.1', { authorization: basic('alice', 'alice-pw') }) })).status, 429);
    assert.equal((await req(`${gw.publicUrl}/db/`, { headers: from('10.2.0.2') })).status, 200, 'other addresses are unaffected');
    assert.equal((await req(`${gw.adminUrl}/db/`, { headers: from('10.2.0.1') })).status, 200, 'the admin port is not rate limited');
  });

  test('per user: counted across addresses', async () => {
    const as = (user: string, address: string) =>
      req(`${gw.publicUrl}/db/_all_docs`, { headers: from(address, { authorization: basic(user, `${user}-pw`) }) });
    for (let i = 0; i < 4; i++) assert.equal((await as('bob', `10.3.0.${i}`)).status, 200);
    const r = await as('bob', '10.3.0.9');
    assert.equal(r.status, 429);
    assert.equal(r.body.reason, 'Too many requests for this user; try again later');
    assert.equal(r.headers.get('retry-after'), '15');
    assert.equal((await as('carol', '10.3.0.9')).status, 200);
  });

  test('off by default', async () => {
    const plain = await startGateway();
    try {
      for (let i = 0; i < 60; i++) assert.equal((await req(`${plain.publicUrl}/db/`)).status, 200);
    } finally {
      await plain.stop();
    }
  });
});

describe('concurrent changes feeds per user', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      databases: { db: { server: 'memory:', users: USERS } },
      config: { limits: { max_changes_feeds_per_user: 2 } },
    });
  });
  after(() => gw.stop());

  const longpoll = async (user: string | undefined, address: string, signal?: AbortSignal) => {
    const headers = from(address, user ? { authorization: basic(user, `${user}-pw`) } : {});
    const since = (await req(`${gw.publicUrl}/db/_changes`, { headers })).body.last_seq;
    return fetch(`${gw.publicUrl}/db/_changes?feed=longpoll&since=${since}&timeout=20000`, { headers, signal });
  };

  /** The feeds opened just before are still connecting: ask (with short normal feeds) until they count. */
  const until429 = async (url: string, headers: Record<string, string>) => {
    for (let i = 0; ; i++) {
      const r = await req(url.replace('feed=longpoll', 'feed=normal'), { headers });
      if (r.status !== 200 || i >= 50) return r.status === 429 ? await req(url, { headers }) : r;
      await new Promise((res) => setTimeout(res, 100));
    }
  };

  test('a third live feed is refused with 429 until one ends; websocket feeds count too', async () => {
    const ac = new AbortController();
    const first = longpoll('alice', '10.4.0.1', ac.signal).catch(() => undefined);
    const second = longpoll('alice', '10.4.0.2', ac.signal).catch(() => undefined);
    const third = await until429(`${gw.publicUrl}/db/_changes?feed=longpoll&timeout=20000`, from('10.4.0.3', { authorization: basic('alice', 'alice-pw') }));
    assert.equal(third.status, 429);
    assert.equal(third.body.reason, 'Too many open changes feeds for this user (limit 2)');
    assert.ok(Number(third.headers.get('retry-after')) > 0);
    // A WebSocket feed is refused at the upgrade, with the same status.
    const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/db/_changes?feed=websocket`, { headers: { authorization: basic('alice', 'alice-pw') } });
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => resolve(101));
      ws.once('error', () => {});
    });
    ws.terminate();
    assert.equal(status, 429);
    // Other users are unaffected.
    const bob = await req(`${gw.publicUrl}/db/_changes`, { headers: { authorization: basic('bob', 'bob-pw') } });
    assert.equal(bob.status, 200);
    ac.abort();
    await Promise.all([first, second]);
    await new Promise((r) => setTimeout(r, 200));
    const again = await req(`${gw.publicUrl}/db/_changes`, { headers: { authorization: basic('alice', 'alice-pw') } });
    assert.equal(again.status, 200, 'closing feeds frees their slots');
  });

  test('a WebSocket feed holds a slot while open and frees it on close', async () => {
    const open = () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`${gw.publicUrl.replace('http', 'ws')}/db/_changes?feed=websocket`, { headers: { authorization: basic('dave', 'dave-pw') } });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`status ${res.statusCode}`)));
    });
    const a = await open();
    const b = await open();
    await assert.rejects(open(), /status 429/);
    a.close();
    await new Promise((r) => a.once('close', r));
    await new Promise((r) => setTimeout(r, 100));
    const c = await open();
    b.terminate();
    c.terminate();
  });

  test('GUEST feeds are counted per address, not shared by every anonymous client', async () => {
    const ac = new AbortController();
    const feeds = [longpoll(undefined, '10.5.0.1', ac.signal), longpoll(undefined, '10.5.0.1', ac.signal)].map((p) => p.catch(() => undefined));
    assert.equal((await until429(`${gw.publicUrl}/db/_changes`, from('10.5.0.1'))).status, 429);
    assert.equal((await req(`${gw.publicUrl}/db/_changes`, { headers: from('10.5.0.2') })).status, 200);
    ac.abort();
    await Promise.all(feeds);
  });
});
