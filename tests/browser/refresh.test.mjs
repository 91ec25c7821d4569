/*
 * Someone who stays active reports every ping interval, and the server
 * sends no event for those reports (Zulip's rule: only coming online, or
 * a change of state, is news). A page holding only what the stream said
 * would see their active report age past the threshold and show them
 * offline; the components take a fresh snapshot before that can happen.
 * With a 41 s threshold and a 1 s ping interval, the snapshot comes every
 * 30 s (threshold less ping interval less 10 s).
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { Server, admin, cleanup, launch, pageServer, provision, recordStreams, tempDir } from './harness.mjs';

const THRESHOLD = 41;

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

test('someone who stays active is never shown offline, though their reports are no events', async () => {
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
  // Her client pings every 20 s; each report is news to nobody.
  const pinger = setInterval(() => server.report(alice, 'active').catch(() => {}), 20_000);
  try {
    // Past the threshold of her first report (and a second more).
    await page.waitForFunction((until) => Date.now() >= until, start + (THRESHOLD + 2) * 1000, { timeout: (THRESHOLD + 5) * 1000 });
  } finally {
    clearInterval(pinger);
  }
  const streams = await page.evaluate(() => window.streams);
  const events = streams.flatMap((s) => s.messages).filter((m) => m.event === 'presence');
  assert.equal(events.length, 1, `the server told of her coming online, and nothing since: ${JSON.stringify(events)}`);
  assert.equal(await page.$eval('presence-badge', (el) => el.getAttribute('state')), 'active');
  const changes = await page.evaluate(() => window.changes.filter((c) => c.tag === 'PRESENCE-BADGE').map((c) => c.state));
  assert.deepEqual(changes, ['unknown', 'offline', 'active'], 'never offline since');
  // The snapshot is a new stream, by plan: it does not resume, shows no
  // reconnection, and does not fetch the people again.
  assert.ok(streams.length >= 2);
  assert.equal(streams[1].lastEventId, null);
  assert.equal(streams[1].messages[0].event, 'register');
  assert.equal(users.length, 1);
  await context.close();
});
