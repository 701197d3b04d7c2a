/**
 * Authenticated vs guest GETs per second. One small document, read over and over by a fixed number of
 * concurrent keep-alive requests, four ways: as GUEST (no credentials), with HTTP Basic credentials,
 * with a `SyncGatewaySession` cookie, and with a Bearer ID token (a `local_jwt` provider, RS256).
 * The ratios basic/guest and cookie/guest should be near 1: the server remembers verified
 * credentials instead of paying bcrypt (cost 10, printed for scale) on every request. bearer/cookie
 * should be at most 1.2 (issue 16): verified tokens are remembered too, and keys are never fetched
 * per request.
 *
 * The load generator runs in a worker thread (its own event loop, so on 2 cores it mostly takes the
 * other core); the modes are measured in interleaved rounds and each ratio is taken within a round,
 * so drift on this shared machine hits both sides of a ratio alike.
 *
 *   npm run bench -- auth
 *   BENCH_AUTH_SECS=1 BENCH_AUTH_ROUNDS=3 npm run bench -- auth     # quicker
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import bcrypt from 'bcryptjs';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { parseConfigText } from '../src/config/index.ts';
import { Gateway } from '../src/gateway.ts';
import { Logger } from '../src/log/index.ts';
import { runIfMain } from './main.ts';

const CONCURRENCY = 16;
const PASSWORD = 'bench-password';

/** The client: `concurrency` loops of keep-alive GETs for `ms` milliseconds; counts 200s. */
const CLIENT = `
const http = require('node:http');
const { parentPort } = require('node:worker_threads');
parentPort.on('message', ({ url, headers, concurrency, ms }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses = {};
  let ok = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const one = () => new Promise((resolve, reject) => {
    const req = http.request(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => {
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode === 200) ok++;
        resolve();
      });
    });
    req.on('error', reject);
    req.end();
  });
  const loop = async () => { while (performance.now() < end) await one(); };
  Promise.all(Array.from({ length: concurrency }, loop)).then(
    () => { const secs = (performance.now() - t0) / 1000; agent.destroy(); parentPort.postMessage({ ok, secs, statuses }); },
    (err) => parentPort.postMessage({ error: String(err) }),
  );
});
`;

interface Load { ok: number; secs: number; statuses: Record<string, number>; error?: string }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export async function run(): Promise<void> {
  const secs = Number(process.env.BENCH_AUTH_SECS ?? 2);
  const rounds = Number(process.env.BENCH_AUTH_ROUNDS ?? 5);
  const dir = mkdtempSync(join(tmpdir(), 'syncgate-bench-auth-'));
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), alg: 'RS256', kid: 'bench', use: 'sig' };
  const ISSUER = 'https://idp.bench.example';
  const config = parseConfigText(JSON.stringify({
    databases: {
      db: {
        server: `sqlite:${join(dir, 'db.sqlite3')}`,
        users: {
          GUEST: { disabled: false, admin_channels: ['*'] },
          bench: { password: PASSWORD, admin_channels: ['*'] },
        },
        local_jwt: { idp: { issuer: ISSUER, client_id: 'bench', algorithms: ['RS256'], keys: [jwk], register: true, channels_claim: 'chans' } },
      },
    },
  }), 'bench');
  const gateway = new Gateway(config, { logger: new Logger({ level: 'warn' }), interface: '127.0.0.1:0', adminInterface: '127.0.0.1:0', metricsInterface: '127.0.0.1:0' });
  const addrs = await gateway.start();
  const base = `http://127.0.0.1:${addrs.public.port}/db`;
  const worker = new Worker(CLIENT, { eval: true });
  let pending: { resolve: (l: Load) => void; reject: (e: Error) => void } | undefined;
  worker.on('message', (m: Load) => (m.error ? pending?.reject(new Error(m.error)) : pending?.resolve(m)));
  worker.on('error', (err) => pending?.reject(err));
  const load = (headers: Record<string, string>, ms: number) => new Promise<Load>((resolve, reject) => {
    pending = { resolve, reject };
    worker.postMessage({ url: `${base}/doc`, headers, concurrency: CONCURRENCY, ms });
  });
  try {
    console.log(`auth bench: GET of one small doc, ${CONCURRENCY} concurrent keep-alive requests, ${rounds} rounds of ${secs} s per mode, ${os.cpus().length} cores, Node ${process.version}`);

    // For scale: one bcrypt verify at the default cost, as the server runs it (bcryptjs, async).
    const hash = await bcrypt.hash(PASSWORD, 10);
    const bcryptMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      if (!(await bcrypt.compare(PASSWORD, hash))) throw new Error('bcrypt compare failed');
      bcryptMs.push(performance.now() - t0);
    }

    const put = await fetch(`${base}/doc`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ channels: ['bench'], text: 'hello' }) });
    if (put.status !== 201) throw new Error(`PUT doc: ${put.status} ${await put.text()}`);

    const basic = 'Basic ' + Buffer.from(`bench:${PASSWORD}`).toString('base64');
    const login = await fetch(`${base}/_session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'bench', password: PASSWORD }) });
    const setCookie = login.headers.get('set-cookie') ?? '';
    const sid = /SyncGatewaySession=([^;]*)/.exec(setCookie)?.[1];
    if (login.status !== 200 || !sid) throw new Error(`POST _session: ${login.status} ${setCookie} ${await login.text()}`);
    const cookie = `SyncGatewaySession=${sid}`;
    const now = Math.floor(Date.now() / 1000);
    const idToken = await new SignJWT({ sub: 'jwt-bench', chans: ['bench'] }).setProtectedHeader({ alg: 'RS256', kid: 'bench' })
      .setIssuer(ISSUER).setAudience('bench').setIssuedAt(now).setExpirationTime(now + 3600).sign(privateKey);
    const bearer = `Bearer ${idToken}`;

    // The credentials are really checked: wrong ones are refused, right ones act as the user.
    const wrongPw = await fetch(`${base}/doc`, { headers: { authorization: 'Basic ' + Buffer.from('bench:wrong-password').toString('base64') } });
    const wrongSid = await fetch(`${base}/doc`, { headers: { cookie: 'SyncGatewaySession=' + '0'.repeat(40) } });
    const who = await (await fetch(`${base}/_session`, { headers: { cookie } })).json() as { userCtx?: { name?: string } };
    const wrongToken = await fetch(`${base}/doc`, { headers: { authorization: bearer.slice(0, -3) + 'AAA' } });
    const byToken = await (await fetch(`${base}/_session`, { headers: { authorization: bearer } })).json() as { userCtx?: { name?: string } };
    if (wrongPw.status !== 401 || wrongSid.status !== 401 || wrongToken.status !== 401 || who.userCtx?.name !== 'bench' || !byToken.userCtx?.name?.endsWith('_jwt-bench')) {
      throw new Error(`credentials not checked: wrong password ${wrongPw.status}, wrong session ${wrongSid.status}, wrong token ${wrongToken.status}, session user ${who.userCtx?.name}, token user ${byToken.userCtx?.name}`);
    }

    const modes: [string, Record<string, string>][] = [
      ['guest', {}],
      ['basic', { authorization: basic }],
      ['cookie', { cookie }],
      ['bearer', { authorization: bearer }],
    ];
    // BENCH_AUTH_MODES=cookie,bearer measures only those (profiling one path); ratios need guest and cookie.
    const only = process.env.BENCH_AUTH_MODES?.split(',');
    if (only) modes.splice(0, modes.length, ...modes.filter(([m]) => only.includes(m)));
    for (const [, headers] of modes) await load(headers, 1000); // warm-up (JIT, caches, sockets)

    const rates: Record<string, number[]> = { guest: [], basic: [], cookie: [], bearer: [] };
    for (let r = 0; r < rounds; r++) {
      // Rotate the order so no mode always runs first (or last) in a round.
      for (let k = 0; k < modes.length; k++) {
        const [name, headers] = modes[(r + k) % modes.length];
        const res = await load(headers, secs * 1000);
        const bad = Object.entries(res.statuses).filter(([s]) => s !== '200');
        if (bad.length) throw new Error(`${name}: non-200 responses ${JSON.stringify(res.statuses)}`);
        rates[name].push(res.ok / res.secs);
      }
    }
    if (only) {
      for (const [m] of modes) console.log(`${m} GET/s: ${Math.round(median(rates[m]))}`);
      return;
    }
    const ratio = (a: string, b = 'guest') => median(rates[a].map((x, i) => x / rates[b][i]));
    const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
    const bcryptMedian = median(bcryptMs);
    console.log(`bcrypt verify, cost 10 (bcryptjs):  ${bcryptMedian.toFixed(1)} ms  (at most ${fmt(1000 / bcryptMedian)} verifies/s on one core)`);
    console.log(`guest  GET/s:  ${fmt(median(rates.guest))}   rounds: ${rates.guest.map(fmt).join(' ')}`);
    console.log(`basic  GET/s:  ${fmt(median(rates.basic))}   rounds: ${rates.basic.map(fmt).join(' ')}   basic/guest ${ratio('basic').toFixed(2)}`);
    console.log(`cookie GET/s:  ${fmt(median(rates.cookie))}   rounds: ${rates.cookie.map(fmt).join(' ')}   cookie/guest ${ratio('cookie').toFixed(2)}`);
    // Cost per GET is the inverse of the rate: bearer costs cookie/bearer times a cookie GET (issue 16: at most 1.2).
    console.log(`bearer GET/s:  ${fmt(median(rates.bearer))}   rounds: ${rates.bearer.map(fmt).join(' ')}   bearer/guest ${ratio('bearer').toFixed(2)}   cost vs cookie ${ratio('cookie', 'bearer').toFixed(2)}x (target <= 1.2)`);
    console.log(`(ratios: median of the per-round ratios; a full bcrypt per request would cap basic at ~${fmt(1000 / bcryptMedian)} GET/s, ${(1000 / bcryptMedian / median(rates.guest)).toFixed(3)} of guest)`);
  } finally {
    await worker.terminate();
    await gateway.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
