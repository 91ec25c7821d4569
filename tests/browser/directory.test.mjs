/*
 * The who's-online page, /directory#key=…, as served by the server with
 * its strict content security policy: people in all three states, one
 * with a custom status, the filter used from the keyboard, and a
 * screenshot (into docs/ with PRESENCE_UPDATE_SCREENSHOT=1, else into a
 * temporary file).
 */

import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { Server, admin, cleanup, launch, provision, tempDir } from './harness.mjs';

const now = Math.floor(Date.now() / 1000);
const ACTIVE = ['Alice Adams', 'Bruno Costa', 'Chioma Okafor', 'Daniel Kim', 'Elena Petrova'];
const IDLE = ['Farah Haddad', 'George Miller', 'Hana Sato'];
// Offline, last seen this many seconds ago (null: not in the last weeks).
const OFFLINE = {
  'Ivan Horvat': 25 * 60,
  'Julia Santos': 2 * 3600,
  'Kwame Mensah': 26 * 3600,
  'Laura Becker': 3 * 86_400,
  'Mateo Rossi': null,
  'Nina Larsen': 5 * 86_400,
};

const emailOf = (name) => `${name.split(' ')[0].toLowerCase()}@acme.test`;

let dir;
let server;
let browser;
let key;
let people;

before(async () => {
  dir = tempDir('directory');
  const data = join(dir, 'data');
  const names = [...ACTIVE, ...IDLE, ...Object.keys(OFFLINE)];
  const history = Object.entries(OFFLINE)
    .filter(([, ago]) => ago !== null)
    .map(([name, ago]) => ({ email: emailOf(name), client: 'website', connected: now - ago, active: now - ago }));
  people = provision(data, Object.fromEntries(names.map((name) => [emailOf(name), name])), history);
  // The page is the server's own: its requests carry no Origin, and any
  // key of the realm reads it.
  key = admin(data, 'embed-key', 'create', '--realm', 'acme', '--name', 'lobby', '--origin', 'https://intranet.acme.test');
  server = await new Server(data, ['--rate-limit', 'off', '--ip-rate-limit', 'off']).start();
  for (const name of ACTIVE) await server.report(people[emailOf(name)], 'active');
  for (const name of IDLE) await server.report(people[emailOf(name)], 'idle', 'ZulipMobile');
  await server.setStatus(people[emailOf('Laura Becker')], { status_text: 'On vacation', emoji_name: 'palm_tree' });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

test('the who\'s-online page shows everyone live, under its own strict policy', async () => {
  const context = await browser.newContext({ colorScheme: 'light', viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || /Refused|Content Security Policy/i.test(message.text())) problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  const urls = [];
  page.on('request', (request) => urls.push(request.url()));
  const response = await page.goto(`${server.base}/directory#key=${key}`);
  assert.match(response.headers()['content-security-policy'], /script-src 'self'/);

  const list = page.locator('presence-list');
  await page.waitForFunction(() => document.querySelector('presence-list')?.getAttribute('state') === 'live', null, { timeout: 10_000 });
  const count = (state) => list.locator(`section[part~="group-${state}"] [part~="count"]`).textContent();
  assert.deepEqual(
    [await count('active'), await count('idle'), await count('offline')],
    [String(ACTIVE.length), String(IDLE.length), String(Object.keys(OFFLINE).length)],
  );
  // Sorted by name within a group; offline rows say when they were seen.
  const idleNames = await list.locator('li[data-state="idle"] [part~="name"]').allTextContents();
  assert.deepEqual(idleNames, [...IDLE].sort());
  const julia = list.locator('li[data-email="julia@acme.test"]');
  assert.equal(await julia.locator('[part~="detail"]').textContent(), 'Last seen 2 hours ago');
  assert.equal(await list.locator('li[data-email="mateo@acme.test"] [part~="detail"]').isVisible(), false);
  // A custom status under the name; none where there is none.
  const laura = list.locator('li[data-email="laura@acme.test"] [part~="custom-status"]');
  assert.equal(await laura.textContent(), `${String.fromCodePoint(0x1f334)}On vacation`);
  assert.equal(await laura.isVisible(), true);
  assert.equal(await julia.locator('[part~="custom-status"]').isVisible(), false);
  assert.equal(await page.locator('h1').textContent(), "Who's online");

  // The filter, from the keyboard: the first stop, by name or by email.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.shadowRoot?.activeElement?.getAttribute('part')), 'filter');
  assert.equal(await list.locator('label[part~="filter-label"]').textContent(), 'Filter people');
  await page.keyboard.type('chen');
  await page.waitForFunction(() => document.querySelector('presence-list').shadowRoot.querySelectorAll('li:not([hidden])').length === 0);
  assert.match(await list.locator('[part~="empty"]').textContent(), /No one matches/);
  await page.keyboard.press('Escape');
  await page.keyboard.type('HANA');
  await page.waitForFunction(() => document.querySelector('presence-list').shadowRoot.querySelectorAll('li:not([hidden])').length === 1);
  assert.equal(await list.locator('[part~="status"]').textContent(), `1 of ${ACTIVE.length + IDLE.length + Object.keys(OFFLINE).length} people`);
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.querySelector('presence-list').shadowRoot.querySelectorAll('li[hidden]').length === 0);
  await page.locator('h1').focus().catch(() => {});
  await page.evaluate(() => document.activeElement?.blur());

  const file = process.env.PRESENCE_UPDATE_SCREENSHOT === '1'
    ? new URL('../../docs/directory.png', import.meta.url).pathname
    : join(dir, 'directory.png');
  await page.screenshot({ path: file });
  assert.ok(statSync(file).size > 10_000, 'a real picture');

  assert.deepEqual(problems, [], 'no script error, nothing the policy refused');
  assert.ok(!urls.some((url) => url.includes(key)), 'the key stays in the fragment');
  assert.ok(!server.log.includes(key));
  await context.close();
});
