/** LoginLockout, RateLimiter and FeedCounter on a fake clock: windows, expiry, bounds. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { LoginLockout } from '../../src/auth/lockout.ts';
import { FeedCounter, RateLimiter } from '../../src/http/rate-limit.ts';
import { RequestGuard } from '../../src/http/limits.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => { t += ms; } };
}

describe('LoginLockout', () => {
  const wrong = async () => undefined;
  const right = async () => 'alice';

  it('locks a (user, address) pair after maxFailures within the window, refusing without calling verify', async () => {
    const c = clock();
    const lines: string[] = [];
    const l = new LoginLockout({ maxFailures: 3, windowMs: 60_000, lockoutMs: 120_000, now: c.now, log: { warn: (m) => lines.push(m), info: (m) => lines.push(m) } });
    for (let i = 0; i < 3; i++) assert.equal(await l.attempt('db', 'alice', '1.2.3.4', 'pw-wrong', wrong), undefined);
    assert.ok(l.isLocked('db', 'alice', '1.2.3.4'));
    let calls = 0;
    const counted = async () => { calls++; return 'alice'; };
    assert.equal(await l.attempt('db', 'alice', '1.2.3.4', 'right', counted), undefined);
    assert.equal(calls, 0, 'a locked pair never reaches password verification (no bcrypt)');
    // Another address, another user, another scope: unaffected.
    assert.equal(await l.attempt('db', 'alice', '5.6.7.8', 'right', right), 'alice');
    assert.equal(await l.attempt('db', 'bob', '1.2.3.4', 'right', async () => 'bob'), 'bob');
    assert.equal(await l.attempt('other', 'alice', '1.2.3.4', 'right', right), 'alice');
    assert.equal(lines.length, 1);
    assert.match(lines[0], /3 failed logins for username="alice" from 1\.2\.3\.4 \(db\) within 60 s: locked out for 120 s/);
    assert.ok(!lines.join('\n').includes('pw-wrong'));
    c.advance(120_001);
    assert.equal(await l.attempt('db', 'alice', '1.2.3.4', 'right', right), 'alice', 'the lock expires');
  });

  it('a burst of parallel guesses gets no more checks than the lockout allows; parallel right passwords all pass', async () => {
    const l = new LoginLockout({ maxFailures: 5 });
    let checked = 0;
    let running = 0;
    let maxRunning = 0;
    const slowWrong = async () => {
      checked++; running++; maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 10));
      running--;
      return undefined;
    };
    const results = await Promise.all(Array.from({ length: 50 }, () => l.attempt('db', 'a', 'x', 'p', slowWrong)));
    assert.ok(results.every((r) => r === undefined));
    assert.equal(checked, 5, 'exactly maxFailures passwords were tried');
    assert.ok(l.isLocked('db', 'a', 'x'));
    checked = 0; maxRunning = 0;
    const slowRight = async () => {
      checked++; running++; maxRunning = Math.max(maxRunning, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return 'b';
    };
    const ok = await Promise.all(Array.from({ length: 30 }, () => l.attempt('db', 'b', 'x', 'p', slowRight)));
    assert.ok(ok.every((r) => r === 'b'));
    assert.equal(checked, 30);
    assert.ok(maxRunning <= 5 && maxRunning > 1, `at most 5 at once (${maxRunning})`);
  });

  it('counts failures in a sliding window, and a success clears them', async () => {
    const c = clock();
    const l = new LoginLockout({ maxFailures: 3, windowMs: 60_000, lockoutMs: 120_000, now: c.now });
    await l.attempt('db', 'a', 'x', 'p', wrong);
    await l.attempt('db', 'a', 'x', 'p', wrong);
    c.advance(60_001); // both fall out of the window
    await l.attempt('db', 'a', 'x', 'p', wrong);
    await l.attempt('db', 'a', 'x', 'p', wrong);
    assert.ok(!l.isLocked('db', 'a', 'x'));
    await l.attempt('db', 'a', 'x', 'p', right);
    await l.attempt('db', 'a', 'x', 'p', wrong);
    await l.attempt('db', 'a', 'x', 'p', wrong);
    assert.ok(!l.isLocked('db', 'a', 'x'), 'the success reset the count');
    await l.attempt('db', 'a', 'x', 'p', wrong);
    assert.ok(l.isLocked('db', 'a', 'x'));
  });

  it('runs a decoy bcrypt for unknown names, so they cost what a wrong password costs', async () => {
    const compared: { password: string; hash: string }[] = [];
    const compare = async (password: string, hash: string) => {
      compared.push({ password, hash });
      return bcrypt.compare(password, hash);
    };
    const l = new LoginLockout({ maxFailures: 5, bcryptCost: 5, compare });
    let asked = 0;
    const ghost = async () => { asked++; return false; };
    assert.equal(await l.attempt('db', 'ghost', 'x', 'guess-1', wrong, ghost), undefined);
    assert.equal(await l.attempt('db', 'ghost', 'x', 'guess-2', wrong, ghost), undefined);
    assert.equal(asked, 2);
    // A real bcrypt compare of the guessed password, against a real hash at the configured cost.
    assert.deepEqual(compared.map((c) => c.password), ['guess-1', 'guess-2']);
    for (const { hash } of compared) {
      assert.match(hash, /^\$2[aby]\$05\$[./A-Za-z0-9]{53}$/);
      assert.equal(bcrypt.getRounds(hash), 5);
    }
    // A real user's wrong password already cost verify's bcrypt: no decoy on top, and none on success.
    await l.attempt('db', 'alice', 'x', 'nope', wrong, async () => true);
    assert.equal(await l.attempt('db', 'alice', 'x', 'pw', right, async () => true), 'alice');
    assert.equal(compared.length, 2);
  });

  it('redacts user names through the logger, quoted as Sync Gateway prints them', async () => {
    const lines: string[] = [];
    const l = new LoginLockout({ maxFailures: 1, log: { warn: (m) => lines.push(m), info: () => {}, ud: (v) => `<ud>${v}</ud>` } });
    await l.attempt('db', 'eve', '1.2.3.4', 'secret', wrong);
    assert.match(lines[0], /username="<ud>eve<\/ud>" from 1\.2\.3\.4/);
  });

  it('is off with maxFailures 0', async () => {
    const l = new LoginLockout({ maxFailures: 0 });
    for (let i = 0; i < 20; i++) await l.attempt('db', 'a', 'x', 'p', wrong);
    assert.equal(await l.attempt('db', 'a', 'x', 'p', right), 'alice');
    assert.equal(l.size, 0);
  });

  it('stays bounded, dropping unlocked pairs before locked ones', async () => {
    const c = clock();
    const l = new LoginLockout({ maxFailures: 1, windowMs: 60_000, lockoutMs: 600_000, maxEntries: 100, now: c.now });
    await l.attempt('db', 'victim', 'attacker', 'p', wrong);
    assert.ok(l.isLocked('db', 'victim', 'attacker'));
    const l2 = new LoginLockout({ maxFailures: 2, windowMs: 60_000, lockoutMs: 600_000, maxEntries: 100, now: c.now });
    await l2.attempt('db', 'victim', 'attacker', 'p', wrong);
    await l2.attempt('db', 'victim', 'attacker', 'p', wrong);
    for (let i = 0; i < 5000; i++) await l2.attempt('db', `junk${i}`, 'attacker', 'p', wrong);
    assert.ok(l2.size <= 100, `size ${l2.size}`);
    assert.ok(l2.isLocked('db', 'victim', 'attacker'), 'flooding the table with junk names did not lift the lock');
  });
});

describe('RateLimiter', () => {
  it('allows a burst of `requests`, then refills evenly, and says when to retry', () => {
    const c = clock();
    const r = new RateLimiter({ requests: 3, windowMs: 3000 }, { now: c.now });
    assert.deepEqual([r.take('a'), r.take('a'), r.take('a')], [0, 0, 0]);
    assert.equal(r.take('a'), 1, 'one token per second: retry after 1 s');
    assert.equal(r.take('b'), 0, 'keys are independent');
    c.advance(1000);
    assert.equal(r.take('a'), 0);
    assert.equal(r.take('a'), 1);
  });

  it('reports long waits in whole seconds, and is off with 0 requests', () => {
    const c = clock();
    const r = new RateLimiter({ requests: 1, windowMs: 60_000 }, { now: c.now });
    assert.equal(r.take('a'), 0);
    assert.equal(r.take('a'), 60);
    c.advance(30_000);
    assert.equal(r.take('a'), 30);
    const off = new RateLimiter({ requests: 0, windowMs: 60_000 });
    for (let i = 0; i < 1000; i++) assert.equal(off.take('a'), 0);
    assert.equal(off.size, 0);
  });

  it('stays bounded under many keys', () => {
    const r = new RateLimiter({ requests: 10, windowMs: 1000 }, { maxEntries: 50 });
    for (let i = 0; i < 10_000; i++) r.take(`k${i}`);
    assert.ok(r.size <= 50, `size ${r.size}`);
  });
});

describe('FeedCounter and RequestGuard', () => {
  it('caps open feeds per key and frees a slot on release (once)', () => {
    const f = new FeedCounter(2);
    const a = f.acquire('u')!;
    const b = f.acquire('u')!;
    assert.equal(f.acquire('u'), undefined);
    a();
    a(); // a second release changes nothing
    assert.equal(f.count('u'), 1);
    const c = f.acquire('u');
    assert.ok(c);
    b(); c!();
    assert.equal(f.count('u'), 0);
  });

  it('counts GUEST per address and never counts the admin', () => {
    const g = new RequestGuard({ perAddress: { requests: 0, windowMs: 1 }, perUser: { requests: 0, windowMs: 1 }, maxFeedsPerUser: 1, trustedProxies: [] });
    const guest = { kind: 'user' as const, name: 'GUEST', isGuest: true, channels: new Map(), roles: new Map(), seq: 0 };
    g.openFeed('db', guest, '1.1.1.1');
    g.openFeed('db', guest, '2.2.2.2');
    assert.throws(() => g.openFeed('db', guest, '1.1.1.1'), (e: any) => e.status === 429 && e.retryAfter > 0);
    for (let i = 0; i < 5; i++) g.openFeed('db', { kind: 'admin' }, '1.1.1.1');
  });
});
