/**
 * The operator console (issue 19) in headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against a real gateway in persistent mode with `admin_users`: the operator
 * signs in with HTTP Basic, creates a user, writes and edits a document, meets a 409 and a
 * conflict in the revision graph, asks why a user cannot see a document, watches the live
 * changes feed, edits the sync function with If-Match and runs a resync to completion. Every
 * result is checked again through the admin REST API, not only on the page.
 *
 * Screenshots of each page are taken on every run; with UPDATE_SCREENSHOTS=1 they are written to
 * docs/console/ (the README shows two of them), otherwise to the test's temp folder.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { req, startGateway, type TestGateway } from '../helpers/gateway.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OPS = { username: 'ops', password: 'ops-console-pw' };
const AUTH = { Authorization: `Basic ${Buffer.from(`${OPS.username}:${OPS.password}`).toString('base64')}` };
const WAIT = { timeout: 30_000 };

describe('operator console in headless Chromium', { timeout: 300_000 }, () => {
  let gw: TestGateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let shots: string;
  const pageErrors: string[] = [];
  /** Admin REST, as the operator. */
  const admin = (path: string, init: Parameters<typeof req>[1] = {}) => req(`${gw.adminUrl}${path}`, { ...init, headers: { ...AUTH, ...(init.headers as Record<string, string>) } });
  const go = async (hash: string) => {
    await page.goto(`${gw.adminUrl}/_admin/${hash}`);
    await page.locator('main h1').first().waitFor(WAIT);
  };
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    gw = await startGateway({
      bootstrap: { admin_users: { [OPS.username]: { password_hash: bcrypt.hashSync(OPS.password, 4).replaceAll('$', '$$$$') } }, logging: { console: { log_level: 'warn' } } },
    });
    shots = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs/console') : join(gw.dir, 'shots');
    mkdirSync(shots, { recursive: true });
    const made = await admin('/db/', { method: 'PUT', json: {} });
    assert.equal(made.status, 201, made.text);
    for (let i = 1; i <= 6; i++) assert.equal((await admin(`/db/seed-${i}`, { method: 'PUT', json: { channels: ['public'], n: i } })).status, 201);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ httpCredentials: OPS, viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // Deletes and purges ask for confirmation; the operator says yes.
    page.on('dialog', (d) => { void d.accept(); });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await gw?.stop();
  });

  test('sign-in: without operator credentials the browser gets a 401 and no console', async () => {
    const anon = await browser.newContext();
    try {
      const p = await anon.newPage();
      // Chromium answers the server's 401 + WWW-Authenticate with its login prompt; headless, the
      // prompt is dismissed and the navigation fails with ERR_INVALID_AUTH_CREDENTIALS.
      const res = await p.goto(`${gw.adminUrl}/_admin/`).catch((err: Error) => err);
      if (res instanceof Error) assert.match(res.message, /ERR_INVALID_AUTH_CREDENTIALS/);
      else assert.equal(res?.status(), 401);
      assert.equal(await p.locator('#app').count(), 0);
      const raw = await fetch(`${gw.adminUrl}/_admin/`);
      assert.equal(raw.status, 401);
      assert.match(raw.headers.get('www-authenticate') ?? '', /^Basic /, 'the browser is asked for the operator credentials');
    } finally { await anon.close(); }
    const wrong = await browser.newContext({ httpCredentials: { username: 'ops', password: 'not-it' } });
    try {
      const p = await wrong.newPage();
      const res = await p.goto(`${gw.adminUrl}/_admin/`).catch((err: Error) => err);
      if (res instanceof Error) assert.match(res.message, /ERR_INVALID_AUTH_CREDENTIALS/);
      else assert.equal(res?.status(), 401);
      assert.equal(await p.locator('#app').count(), 0);
    } finally { await wrong.close(); }
  });

  test('overview: databases with state, counts and a live chart from /_expvar', async () => {
    await go('#/');
    const row = page.locator('table[aria-label="Databases"] tbody tr', { hasText: 'db' });
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /^db\s+Online\s+6\s+6\s+0\s+0\s+Documents$/);
    assert.match(await page.getByTestId('process').innerText(), /WebSocket connections \(BLIP replications and WebSocket feeds\): 0/);
    await page.getByRole('img', { name: /^Chart: HTTP responses per second/ }).locator('canvas').waitFor(WAIT);
    assert.equal(await page.locator('.uplot canvas').count(), 4);
    await page.waitForFunction(() => Number(document.querySelector('.chart')?.getAttribute('data-points') ?? 0) >= 1, undefined, WAIT);
    // Some traffic for the charts to show: writes, and requests for missing documents (404s).
    for (let i = 0; i < 40; i++) assert.equal((await admin(`/db/load-${i}`, { method: 'PUT', json: { channels: ['public'] } })).status, 201);
    for (let i = 0; i < 10; i++) assert.equal((await admin(`/db/missing-${i}`)).status, 404);
    // Both charts plot rates from counter deltas between two polls (every 3 s): the traffic shows.
    await page.waitForFunction(() => {
      const last = [...document.querySelectorAll('.chart')].map((c) => JSON.parse(c.getAttribute('data-last') ?? '{}'));
      return last.length === 4 && last[0]['4xx/s'] > 0 && last[0]['2xx/s'] > 0 && last[1]['writes/s'] > 0 && last[2]['p95 ms'] > 0 && last[3].resident > 1;
    }, undefined, WAIT);
    await shot('overview');
  });

  test('users: create one; its effective channels come from all_channels', async () => {
    await go('#/db/db/users/_new');
    await page.getByLabel('Name').fill('bob');
    await page.getByLabel('Admin channels').fill('public, news');
    await page.getByLabel('Password').fill('bob-secret-1');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'User bob' }).waitFor(WAIT);
    await page.getByTestId('all-channels').filter({ hasText: 'news' }).waitFor(WAIT);
    const bob = await admin('/db/_user/bob');
    assert.deepEqual(bob.body.admin_channels.sort(), ['news', 'public']);
    assert.equal((await req(`${gw.publicUrl}/db/`, { headers: { Authorization: `Basic ${Buffer.from('bob:bob-secret-1').toString('base64')}` } })).status, 200, 'the password set in the console works');
    // Edit: disable, and the server says so.
    await page.getByLabel('Disabled').check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor(WAIT);
    assert.equal((await admin('/db/_user/bob')).body.disabled, true);
    await page.getByLabel('Disabled').uncheck();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor(WAIT);
    assert.notEqual((await admin('/db/_user/bob')).body.disabled, true);

    // A role made in the console, given to bob: the effective access says where each channel comes from.
    await go('#/db/db/roles/_new');
    await page.getByLabel('Name').fill('editors');
    await page.getByLabel('Admin channels').fill('drafts');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'Role editors' }).waitFor(WAIT);
    assert.deepEqual((await admin('/db/_role/editors')).body.admin_channels, ['drafts']);
    await go('#/db/db/users/bob');
    // The form is filled from the server first; edit after that.
    await page.waitForFunction(() => [...document.querySelectorAll('input')].some((i) => i.value === 'public, news' || i.value === 'news, public'), undefined, WAIT);
    await page.getByLabel('Admin roles').fill('editors');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor(WAIT);
    const access = page.locator('table[aria-label="Channels and where they come from"] tbody tr');
    await access.filter({ hasText: 'drafts' }).waitFor(WAIT);
    const rows = await access.allInnerTexts();
    assert.equal(rows.length, 4, rows.join('\n'));
    assert.equal(rows[0], '!\t1\teveryone (the public channel)');
    assert.match(rows[1], /^drafts\t\d+\trole editors \(its admin grant\)$/);
    assert.match(rows[2], /^news\t\d+\tadmin grant$/);
    assert.match(rows[3], /^public\t\d+\tadmin grant$/);
    // The sequences are the server's: the role's channel counts from when bob got the role.
    const explained = (await admin('/db/_user/bob/_access')).body;
    assert.equal(rows[1].split('\t')[1], String(explained.channels.drafts.since));
    assert.equal(await page.locator('table[aria-label="Roles and where they come from"] tbody tr').first().innerText(), `editors\t${explained.roles.editors.since}\tadmin grant`);
    assert.deepEqual((await admin('/db/_user/bob')).body.all_channels, ['!', 'drafts', 'news', 'public']);
    await shot('user');
  });

  test('documents: write, edit, validation, a 409 from the server, a conflict in the revision graph', async () => {
    await go('#/db/db/docs');
    // Paged on the server, 25 a page: the 40 load-N documents from the overview test take two.
    const docRows = page.locator('table[aria-label="Documents"] tbody tr');
    await page.getByLabel('Search by id prefix').fill('load-');
    await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Documents"] tbody tr').length === 25, undefined, WAIT);
    const firstPage = await docRows.allInnerTexts();
    assert.ok(firstPage.every((t) => t.startsWith('load-')));
    await page.getByRole('button', { name: 'Next page' }).click();
    await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Documents"] tbody tr').length === 15, undefined, WAIT);
    const secondPage = await docRows.allInnerTexts();
    assert.equal(new Set([...firstPage, ...secondPage].map((t) => t.split(/\s/)[0])).size, 40, 'the two pages together hold each document once');
    assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true);
    await page.getByRole('button', { name: 'Previous page' }).click();
    await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Documents"] tbody tr').length === 25, undefined, WAIT);
    await page.getByLabel('Search by id prefix').fill('seed-3');
    await page.locator('table[aria-label="Documents"] tbody tr').first().filter({ hasText: 'seed-3' }).waitFor(WAIT);
    assert.equal(await page.locator('table[aria-label="Documents"] tbody tr').count(), 1);
    await page.getByLabel('New or existing document id').fill('note1');
    await page.getByRole('button', { name: 'Open' }).click();
    const body = page.getByLabel(/^Body \(JSON\)/);
    await body.waitFor(WAIT);
    await body.fill('{"channels": ["private"], "title": "first"}');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: /Saved as revision 1-/ }).waitFor(WAIT);
    // The editor reloads the saved revision; edit once it has.
    await page.getByLabel(/^Body \(JSON\), based on revision 1-/).waitFor(WAIT);
    await body.fill('{"channels": ["private"], "title": "second"}');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: /Saved as revision 2-/ }).waitFor(WAIT);
    await page.getByLabel(/^Body \(JSON\), based on revision 2-/).waitFor(WAIT);
    const stored = await admin('/db/note1');
    assert.equal(stored.body.title, 'second');
    assert.match(stored.body._rev, /^2-/);

    await body.fill('{"title": oops');
    await page.getByRole('alert').filter({ hasText: 'Invalid JSON' }).waitFor(WAIT);
    assert.equal(await page.getByRole('button', { name: 'Save' }).isDisabled(), true);

    // Someone else writes revision 3 meanwhile: the console's save, based on 2, gets the server's 409.
    assert.equal((await admin(`/db/note1?rev=${stored.body._rev}`, { method: 'PUT', json: { channels: ['private'], title: 'elsewhere' } })).status, 201);
    await body.fill('{"channels": ["private"], "title": "mine"}');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: /refused.*409/ }).waitFor(WAIT);
    assert.equal((await admin('/db/note1')).body.title, 'elsewhere', 'the refused save wrote nothing');

    // A conflicting branch from revision 1 (as a replication would bring it).
    const gen1 = stored.body._rev ? (await admin('/db/note1?revs=true')).body._revisions.ids.at(-1) : '';
    const branch = await admin('/db/_bulk_docs', { method: 'POST', json: { new_edits: false, docs: [{ _id: 'note1', _rev: '2-fff0', _revisions: { start: 2, ids: ['fff0', gen1] }, channels: ['private'], title: 'branch' }] } });
    assert.equal(branch.status, 201, branch.text);
    await page.getByRole('button', { name: 'Reload' }).click();
    await page.locator('.revtree .node.conflict[data-rev="2-fff0"]').waitFor(WAIT);
    assert.equal(await page.locator('.revtree .node').count(), 4);
    assert.match(await page.locator('.revtree figcaption').innerText(), /Conflict: 2 live leaves/);
    const winner = (await admin('/db/note1')).body._rev;
    assert.equal(await page.locator(`.revtree .node.winner[data-rev="${winner}"]`).count(), 1);
    assert.match(await page.locator('dd.channels').first().innerText(), /private/);
    await shot('document');
  });

  test('a body or id holding HTML or script is shown as text and never runs', async () => {
    const id = '<img src=x onerror=window.__xss=1>';
    const evil = { channels: ['public'], html: '<img src=x onerror="window.__xss=2">', script: '<script>window.__xss=3</script>', svg: '<svg onload="window.__xss=4">' };
    assert.equal((await admin(`/db/${encodeURIComponent(id)}`, { method: 'PUT', json: evil })).status, 201);
    await go('#/db/db/docs');
    await page.getByLabel('Search by id prefix').fill('<img');
    await page.getByRole('link', { name: id }).waitFor(WAIT);
    await page.getByRole('link', { name: id }).click();
    const pre = page.getByTestId('doc-body');
    await pre.waitFor(WAIT);
    const text = await pre.innerText();
    assert.ok(text.includes('<script>window.__xss=3</script>') && text.includes('"<img src=x onerror=\\"window.__xss=2\\">"'), text);
    assert.equal(await page.locator('main img, main script, main iframe, main svg[onload]').count(), 0);
    await go('#/db/db/changes');
    await go(`#/db/db/docs/${encodeURIComponent(id)}`);
    await pre.waitFor(WAIT);
    assert.equal(await page.evaluate(() => (window as { __xss?: number }).__xss), undefined);
    // Delete, then purge, both after the confirmation dialog.
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('status').filter({ hasText: 'Deleted.' }).waitFor(WAIT);
    assert.equal((await admin(`/db/${encodeURIComponent(id)}`)).status, 404);
    await page.getByRole('button', { name: 'Purge…' }).click();
    await page.getByRole('status').filter({ hasText: 'Purged.' }).waitFor(WAIT);
    assert.equal((await admin(`/db/_raw/${encodeURIComponent(id)}`)).status, 404, 'purged: nothing left');
  });

  test('attachments: a raster image is previewed; an HTML attachment is download-only', async () => {
    const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
    const doc = await admin('/db/with-atts', { method: 'PUT', json: { channels: ['public'] } });
    const one = await admin(`/db/with-atts/pixel.png?rev=${doc.body.rev}`, { method: 'PUT', body: png, headers: { 'Content-Type': 'image/png' } });
    assert.equal(one.status, 201, one.text);
    const two = await admin(`/db/with-atts/page.html?rev=${one.body.rev}`, { method: 'PUT', body: '<script>window.__xss=9</script>', headers: { 'Content-Type': 'text/html' } });
    assert.equal(two.status, 201, two.text);
    await go('#/db/db/docs/with-atts');
    const img = page.getByAltText('Preview of pixel.png');
    await img.waitFor(WAIT);
    await page.waitForFunction(() => (document.querySelector('img.preview') as HTMLImageElement | null)?.naturalWidth === 1, undefined, WAIT);
    assert.equal(await page.locator('img.preview').count(), 1, 'only the image is previewed');
    const link = page.getByRole('link', { name: 'page.html' });
    assert.equal(await link.getAttribute('download'), 'page.html');
    const [download] = await Promise.all([page.waitForEvent('download', WAIT), link.click()]);
    assert.equal(download.suggestedFilename(), 'page.html');
    assert.equal(await page.evaluate(() => (window as { __xss?: number }).__xss), undefined);
    // Saving an edit keeps the attachments (their stubs are part of the edited body).
    const body = page.getByLabel(/^Body \(JSON\)/);
    const edited = JSON.parse(await body.inputValue());
    await body.fill(JSON.stringify({ ...edited, note: 'kept' }));
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: /Saved as revision 4-/ }).waitFor(WAIT);
    assert.deepEqual(Object.keys((await admin('/db/with-atts')).body._attachments).sort(), ['page.html', 'pixel.png']);
  });

  test('why can\'t this user see this document: the missing link, then a granted one', async () => {
    await go('#/db/db/why');
    await page.getByLabel('User name').fill('bob');
    await page.getByLabel('Document id').fill('note1');
    await page.getByRole('button', { name: 'Explain' }).click();
    const verdict = page.getByTestId('verdict');
    await verdict.waitFor(WAIT);
    assert.match(await verdict.innerText(), /^No: “note1” is in private, and “bob” has none of these/);
    await shot('why');
    await page.getByLabel('Document id').fill('seed-2');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.getByTestId('verdict').filter({ hasText: /^Yes: “bob” can see “seed-2” through channel public/ }).waitFor(WAIT);
    // The answer agrees with what bob really gets on the public port.
    const bobAuth = { Authorization: `Basic ${Buffer.from('bob:bob-secret-1').toString('base64')}` };
    assert.equal((await req(`${gw.publicUrl}/db/note1`, { headers: bobAuth })).status, 403);
    assert.equal((await req(`${gw.publicUrl}/db/seed-2`, { headers: bobAuth })).status, 200);
  });

  test('live changes: a write appears; pause, then resume from where it stopped; filter by id', async () => {
    await go('#/db/db/changes');
    await page.getByRole('status').filter({ hasText: 'Following' }).waitFor(WAIT);
    // The feed starts at "now": give it a moment to be open by writing until a row shows.
    const rows = page.locator('table[aria-label="Changes, newest first"] tbody tr');
    let n = 0;
    while (await rows.filter({ hasText: 'live-' }).count() === 0 && n < 20) {
      assert.equal((await admin(`/db/live-${++n}`, { method: 'PUT', json: { channels: ['public'] } })).status, 201);
      await rows.filter({ hasText: 'live-' }).first().waitFor({ timeout: 3000 }).catch(() => {});
    }
    await rows.filter({ hasText: `live-${n}` }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('status').filter({ hasText: 'Paused.' }).waitFor(WAIT);
    assert.equal((await admin('/db/later-1', { method: 'PUT', json: { channels: ['public'] } })).status, 201);
    await page.getByRole('button', { name: 'Resume' }).click();
    await rows.filter({ hasText: 'later-1' }).waitFor(WAIT);
    await page.getByLabel('Filter by document id prefix').fill('later');
    await page.waitForFunction(() => [...document.querySelectorAll('table[aria-label="Changes, newest first"] tbody tr')].every((r) => r.textContent!.includes('later')), undefined, WAIT);
    assert.equal(await rows.count(), 1);
    await page.getByLabel('Filter by document id prefix').fill('');
    // A channel filter runs on the server: a later write in the channel arrives, an earlier one
    // outside it never does (the feed is in sequence order).
    await page.getByLabel('Only channel (server-side filter)').fill('private');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.getByRole('status').filter({ hasText: 'Following the feed of channel private' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Clear' }).click();
    assert.equal((await admin('/db/chan-public', { method: 'PUT', json: { channels: ['public'] } })).status, 201);
    assert.equal((await admin('/db/chan-private', { method: 'PUT', json: { channels: ['private'] } })).status, 201);
    await rows.filter({ hasText: 'chan-private' }).waitFor(WAIT);
    assert.equal(await rows.filter({ hasText: 'chan-public' }).count(), 0);
    await shot('changes');
  });

  test('sync function: edit with If-Match (a stale version is refused), then a resync to completion', async () => {
    await go('#/db/db/sync');
    const source = page.getByLabel('Sync function source');
    await source.waitFor(WAIT);
    const fn = 'function (doc, oldDoc) { channel(doc.channels); channel("everything"); }';
    await source.fill(fn);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor(WAIT);
    // The page reloads the function and its new version; edit once it has.
    await page.getByText(/^Version "2-/).waitFor(WAIT);
    assert.equal((await admin('/db/_config/sync')).text, fn);
    // Changed behind the console's back: its next save carries the old version and is refused.
    const current = await admin('/db/_config/sync');
    const other = 'function (doc) { channel(doc.channels); channel("everything"); channel("x"); }';
    assert.equal((await admin('/db/_config/sync', { method: 'PUT', body: other, headers: { 'Content-Type': 'application/javascript', 'If-Match': current.headers.get('etag')! } })).status, 200);
    await source.fill(`${fn} `);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: /refused it: 412/ }).waitFor(WAIT);
    assert.equal((await admin('/db/_config/sync')).text, other, 'the stale save changed nothing');
    await page.getByRole('button', { name: 'Load current version' }).click();
    await page.waitForFunction((want) => (document.querySelector('textarea') as HTMLTextAreaElement | null)?.value === want, other, WAIT);

    assert.deepEqual(Object.keys((await admin('/db/_raw/seed-1')).body._sync.channels).sort(), ['public'], 'old documents keep their channels until a resync');
    await page.getByRole('button', { name: 'Take offline' }).click();
    await page.getByTestId('db-state').filter({ hasText: 'Offline' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'Start resync' }).click();
    await page.getByTestId('resync-status').filter({ hasText: /Status: completed; documents processed: [1-9]/ }).waitFor(WAIT);
    const status = (await admin('/db/_resync')).body;
    assert.equal(status.status, 'completed');
    assert.match(await page.getByTestId('resync-status').innerText(), new RegExp(`processed: ${status.docs_processed}; changed: ${status.docs_changed}`));
    await shot('sync');
    await page.getByRole('button', { name: 'Bring online' }).click();
    await page.getByTestId('db-state').filter({ hasText: 'Online' }).waitFor(WAIT);
    assert.deepEqual(Object.keys((await admin('/db/_raw/seed-1')).body._sync.channels).sort(), ['everything', 'public', 'x']);
  });

  test('sync function: try an edited function on a pasted body and a stored document, as the admin and as a user', async () => {
    await go('#/db/db/sync');
    const source = page.getByLabel('Sync function source');
    await source.waitFor(WAIT);
    const saved = (await admin('/db/_config/sync')).text;
    await page.waitForFunction((want) => (document.querySelector('textarea') as HTMLTextAreaElement | null)?.value === want, saved, WAIT);
    const edited = 'function (doc, oldDoc) {\n  if (doc.secret) throw({forbidden: "no secrets here"});\n  requireAccess("public");\n  channel(doc.channels);\n  if (doc.members) access(doc.members, doc.room);\n}';
    await source.fill(edited);
    const verdict = page.getByTestId('dry-run-verdict');
    // A pasted body, as the admin, with the edited (unsaved) function: channels and grants.
    await page.getByLabel('Document body (JSON, optional)').fill('{"channels": ["b", "a"], "members": ["bob"], "room": "room-7"}');
    await page.getByRole('button', { name: 'Try it' }).click();
    await verdict.filter({ hasText: 'Accepted as the admin.' }).waitFor(WAIT);
    assert.equal(await page.getByTestId('dry-run-channels').innerText(), 'a, b');
    assert.equal(await page.getByTestId('dry-run-access').innerText(), 'bob → room-7');
    // The rejection, with the status a write would get.
    await page.getByLabel('Document body (JSON, optional)').fill('{"secret": true}');
    await page.getByRole('button', { name: 'Try it' }).click();
    await verdict.filter({ hasText: 'Rejected: 403 Forbidden: no secrets here' }).waitFor(WAIT);
    await shot('sync-try');
    // A stored document, as a user who lacks the channel requireAccess asks for: refused as bob's write would be.
    await page.getByLabel('Document body (JSON, optional)').fill('');
    await page.getByLabel('Stored document id').fill('note1');
    await page.getByLabel('Run as user').fill('editor-less');
    await page.getByRole('button', { name: 'Try it' }).click();
    await page.getByRole('alert').filter({ hasText: '404' }).waitFor(WAIT);
    assert.equal((await admin('/db/_user/carol', { method: 'PUT', json: { password: 'carol-pw-1', admin_channels: ['private'] } })).status, 201);
    await page.getByLabel('Run as user').fill('carol');
    await page.getByRole('button', { name: 'Try it' }).click();
    await verdict.filter({ hasText: 'Rejected: 403 Forbidden: sg missing channel access' }).waitFor(WAIT);
    // With the saved function instead, the stored note1 is accepted and keeps its channels.
    await page.getByLabel('Use the function as edited above (unsaved)').uncheck();
    await page.getByRole('button', { name: 'Try it' }).click();
    await verdict.filter({ hasText: 'Accepted as carol.' }).waitFor(WAIT);
    assert.match(await page.getByTestId('dry-run-channels').innerText(), /private/);
    assert.equal((await admin('/db/_config/sync')).text, saved, 'trying saved nothing');
    await page.getByRole('button', { name: 'Revert' }).click();
  });

  test('effective access names the document whose access() granted a channel', async () => {
    const fn = 'function (doc) { channel(doc.channels); if (doc.members) access(doc.members, doc.room); }';
    const cur = await admin('/db/_config/sync');
    assert.equal((await admin('/db/_config/sync', { method: 'PUT', body: fn, headers: { 'Content-Type': 'application/javascript', 'If-Match': cur.headers.get('etag')! } })).status, 200);
    const deadline = Date.now() + 30_000;
    while ((await admin('/db/')).body.state !== 'Online') {
      assert.ok(Date.now() < deadline, 'the database came back online');
      await new Promise((r) => setTimeout(r, 100));
    }
    const granted = await admin('/db/room-grant', { method: 'PUT', json: { members: ['bob'], room: 'room-42' } });
    assert.equal(granted.status, 201, granted.text);
    await go('#/db/db/users/bob');
    const row = page.locator('table[aria-label="Channels and where they come from"] tbody tr', { hasText: 'room-42' });
    await row.waitFor(WAIT);
    const seq = (await admin('/db/_raw/room-grant')).body._sync.sequence;
    assert.equal(await row.innerText(), `room-42\t${seq}\taccess() by document room-grant`);
    await shot('user');
    await row.getByRole('link', { name: 'room-grant' }).click();
    await page.getByRole('heading', { name: /room-grant/ }).waitFor(WAIT);
  });

  test('logs: a line just logged shows (its token blanked); level and keys change through /_logging', async () => {
    await go('#/logs');
    const lines = page.locator('ol[aria-label="Log lines, oldest first"] li');
    assert.equal((await admin('/db/logs-marker-4711?token=shh-not-for-logs')).status, 404);
    await lines.filter({ hasText: 'logs-marker-4711' }).first().waitFor(WAIT);
    const text = (await lines.filter({ hasText: 'logs-marker-4711' }).allInnerTexts()).join('\n');
    assert.match(text, /GET \/db\/logs-marker-4711\?token=\*{6} \(as ADMIN\)/);
    assert.ok(!(await page.locator('main').innerText()).includes('shh-not-for-logs'), 'the secret is not on the page');
    await shot('logs');
    await page.getByLabel('Show lines containing').fill('logs-marker');
    await page.waitForFunction(() => [...document.querySelectorAll('ol.log li')].every((l) => l.textContent!.includes('logs-marker')), undefined, WAIT);
    await page.getByLabel('Show lines containing').fill('');
    const before = (await admin('/_log_tail?limit=1')).body.console.log_level;
    await page.getByLabel('Console log level').selectOption('warn');
    await page.getByRole('status').filter({ hasText: 'Console level set to warn.' }).waitFor(WAIT);
    assert.equal((await admin('/_log_tail?limit=1')).body.console.log_level, 'warn');
    await page.getByLabel('Console log keys').fill('HTTP, CRUD');
    await page.getByRole('button', { name: 'Set keys' }).click();
    await page.getByRole('status').filter({ hasText: 'Console keys replaced.' }).waitFor(WAIT);
    assert.deepEqual((await admin('/_logging')).body, { HTTP: true, CRUD: true });
    assert.equal((await admin(`/_logging?logLevel=${before}`, { method: 'PUT' })).status, 200);
    assert.equal((await admin('/_logging', { method: 'PUT', json: { '*': true } })).status, 200);
  });

  test('users: a thousand of them, paged and searched on the server', async () => {
    // Through the store (10,000, and the server side of paging, are test/http/users-paging.test.ts's):
    // on this persistent database each save is a synced transaction.
    const store = gw.gateway.get('db')!.store;
    for (let i = 0; i < 1000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, k) => store.putPrincipal({ kind: 'user', name: `pu${String(i + k).padStart(5, '0')}`, adminChannels: {}, adminRoles: {}, disabled: false })));
    }
    await go('#/db/db/users');
    const rows = page.locator('table[aria-label="Users"] tbody tr');
    await page.getByLabel('Search by name prefix').fill('pu');
    await rows.first().filter({ hasText: 'pu00000' }).waitFor(WAIT);
    assert.equal(await rows.count(), 50);
    await page.getByRole('button', { name: 'Next page' }).click();
    await rows.first().filter({ hasText: 'pu00050' }).waitFor(WAIT);
    assert.equal(await rows.last().innerText(), 'pu00099\t\tenabled');
    await page.getByRole('status').filter({ hasText: 'Page 2' }).waitFor(WAIT);
    await shot('users');
    await page.getByRole('button', { name: 'Previous page' }).click();
    await rows.first().filter({ hasText: 'pu00000' }).waitFor(WAIT);
    await page.getByLabel('Search by name prefix').fill('pu0099');
    await page.waitForFunction(() => document.querySelectorAll('table[aria-label="Users"] tbody tr').length === 10, undefined, WAIT);
    assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true);
    await page.getByLabel('Search by name prefix').fill('bo');
    await rows.first().filter({ hasText: 'bob' }).waitFor(WAIT);
  });

  test('a page from another site cannot use the signed-in browser against the admin port', async () => {
    // A site on its own origin, opened in the operator's browser (which holds the credentials).
    const server = http.createServer((_rq, rs) => { rs.writeHead(200, { 'Content-Type': 'text/html' }); rs.end('<!doctype html><title>elsewhere</title>'); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const before = (await admin('/_expvar')).body.syncgateway.global.resource_utilization.num_http_responses_4xx;
      const p = await context.newPage();
      await p.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const out = await p.evaluate(async (adminUrl) => {
        await fetch(`${adminUrl}/db/_offline`, { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(() => undefined);
        return new Promise<string>((resolve) => {
          const ws = new WebSocket(`${adminUrl.replace('http', 'ws')}/db/_changes`);
          ws.onopen = () => resolve('open');
          ws.onerror = () => resolve('refused');
        });
      }, gw.adminUrl);
      await p.close();
      assert.equal(out, 'refused', 'no WebSocket feed of the admin port for another site');
      assert.equal((await admin('/db/')).body.state, 'Online', 'the forged POST did not take the database offline');
      const after = (await admin('/_expvar')).body.syncgateway.global.resource_utilization.num_http_responses_4xx;
      assert.ok(after > before, 'the forged POST reached the server and was refused');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('phone width in the dark scheme: no horizontal scrolling; keyboard reaches the pages', async () => {
    const phone = await browser.newContext({ httpCredentials: OPS, viewport: { width: 390, height: 800 }, colorScheme: 'dark', isMobile: true });
    try {
      const p = await phone.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      // Every page fits the phone's width, and every form control has a label a screen reader reads.
      for (const hash of ['#/', '#/logs', '#/db/db/users', '#/db/db/docs', '#/db/db/users/bob', '#/db/db/roles/editors', '#/db/db/why', '#/db/db/sync', '#/db/db/changes', '#/db/db/docs/note1']) {
        await p.goto(`${gw.adminUrl}/_admin/${hash}`);
        await p.locator('main h1').first().waitFor(WAIT);
        await p.locator('main input, main textarea, main table, main svg').first().waitFor(WAIT);
        const widths = await p.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
        assert.ok(widths.scroll <= widths.client, `${hash}: page is ${widths.scroll}px wide in a ${widths.client}px viewport`);
        const unlabelled = await p.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
          .filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label')).map((el) => el.outerHTML));
        assert.deepEqual(unlabelled, [], hash);
      }
      await p.locator('.revtree svg').waitFor(WAIT);
      const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, 'rgb(15, 19, 23)', 'dark scheme applied');
      await p.screenshot({ path: join(shots, 'document-phone-dark.png') });
      // Keyboard: a page opens with focus on its heading; Tab goes on into its controls, and
      // Shift+Tab back to the link before it.
      assert.equal(await p.evaluate(() => document.activeElement?.tagName), 'H1');
      await p.keyboard.press('Tab');
      assert.match(await p.evaluate(() => document.activeElement?.tagName ?? ''), /^(TEXTAREA|BUTTON|A|INPUT)$/);
      await p.keyboard.press('Shift+Tab');
      assert.equal(await p.evaluate(() => document.activeElement?.textContent), '← All documents');
    } finally { await phone.close(); }
    assert.deepEqual(pageErrors, [], 'no script errors on any page');
  });
});
