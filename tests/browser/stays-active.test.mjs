/*
 * Someone who stays active reports every ping interval, and the server
 * sends no event for those reports (Zulip's rule: only coming online, or
 * a change of state, is news). The timestamps the page holds for them go
 * stale, so a page that aged them by itself would show them offline after
 * the threshold. The components hold what the server last said instead,
 * on one stream, without fresh snapshots.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { Server, admin, cleanup, launch, pageServer, provision, recordStreams, tempDir } from './harness.mjs';

// Reports come online again only after threshold - ping interval - 10 s
// without one (here 4 s): her pings, every 2 s, never do.
const THRESHOLD = 15;

let dir;
let server;
let site;
let browser;
let key;
let alice;

before(async () => {
  dir = tempDir('refresh');
  const data = join(dir, 'data');
  site = await pageServer();
  ({ 'alice@acme.test': alice } = provision(data, { 'alice@acme.test': 'Alice Adams', 'bob@acme.test': 'Bob Brown' }));
  key = admin(data, 'embed-key', 'create', '--realm', 'acme', '--name', 'intranet', '--origin', site.origin);
  server = await new Server(data, [
    '--offline-threshold-secs', String(THRESHOLD),
    '--ping-interval-secs', '1',
    '--presence-update-min-freq-secs', '1',
    '--rate-limit', 'off',
    '--ip-rate-limit', 'off',
  ]).start();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await site?.close();
  if (dir) cleanup(dir);
});

test('someone who stays active is never shown offline, on one stream, though their reports are no events', async () => {
  site.pages.set('/', `<!doctype html><meta charset="utf-8">
<script type="module" src="${server.base}/embed/presence.js"></script>
<presence-badge server="${server.base}" key="${key}" email="${alice.email}"></presence-badge>
<presence-list server="${server.base}" key="${key}"></presence-list>`);
  const context = await browser.newContext();
  await context.addInitScript(recordStreams);
  const page = await context.newPage();
  const users = [];
  page.on('request', (r) => r.url().includes('/api/v1/users') && r.method() === 'GET' && users.push(r));
  await page.goto(site.origin + '/');
  await page.waitForFunction(() => document.querySelector('presence-list').getAttribute('state') === 'live');

  await server.report(alice, 'active');
  const start = Date.now();
  await page.waitForFunction(() => document.querySelector('presence-badge').getAttribute('state') === 'active', null, { timeout: 1_000 });
  // Her client pings every 2 s; each report is news to nobody.
  const pinger = setInterval(() => server.report(alice, 'active').catch(() => {}), 2_000);
  try {
    // Past the threshold of her first report, and the server's transition.
    const until = start + (THRESHOLD + 3) * 1000;
    await page.waitForFunction((until) => Date.now() >= until, until, { timeout: (THRESHOLD + 8) * 1000 });
  } finally {
    clearInterval(pinger);
  }
  const streams = await page.evaluate(() => window.streams);
  const events = streams.flatMap((s) => s.messages).filter((m) => m.event === 'presence');
  assert.equal(events.length, 1, `the server told of her coming online, and nothing since: ${JSON.stringify(events)}`);
  assert.equal(await page.$eval('presence-badge', (el) => el.getAttribute('state')), 'active');
  const changes = await page.evaluate(() => window.changes.filter((c) => c.tag === 'PRESENCE-BADGE').map((c) => c.state));
  assert.deepEqual(changes, ['unknown', 'offline', 'active'], 'never offline since');
  // One stream and one snapshot all along; the people fetched once.
  assert.equal(streams.length, 1);
  assert.equal(streams[0].messages.filter((m) => m.event === 'register').length, 1);
  assert.equal(users.length, 1);
  assert.equal(await page.locator('presence-badge[reconnecting]').count(), 0);
  await context.close();
});
