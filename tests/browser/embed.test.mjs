/*
 * The web components in headless Chromium against a real server: a page
 * on another origin embeds badges and a list with an embed key, and the
 * tests change presence and custom statuses through the API and watch the
 * page. Times are
 * short (an offline threshold of 4 s) so that transitions come quickly;
 * every wait is for a condition, with a deadline.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';

import { Server, admin, cleanup, configFile, launch, pageServer, provision, recordStreams, tempDir } from './harness.mjs';

const THRESHOLD = 4;
const PEOPLE = {
  alice: 'Alice Adams',
  bob: 'Bob Brown',
  carol: 'Carol Chen',
  dave: 'Dave Diaz',
  erin: 'Erin Evans',
  frank: 'Frank Fox',
  grace: 'Grace Green',
};

let dir;
let server;
let allowed; // pages on an origin the keys name
let foreign; // pages on an origin no key names
let browser;
const users = {};
const keys = {};
const urls = []; // every URL any page asked for

before(async () => {
  dir = tempDir('embed');
  const data = join(dir, 'data');
  allowed = await pageServer();
  foreign = await pageServer();
  const people = Object.fromEntries(Object.entries(PEOPLE).map(([name, full]) => [`${name}@acme.test`, full]));
  const provisioned = provision(data, people);
  for (const name of Object.keys(PEOPLE)) users[name] = provisioned[`${name}@acme.test`];
  for (const name of ['intranet', 'kiosk']) {
    keys[name] = admin(data, 'embed-key', 'create', '--realm', 'acme', '--name', name, '--origin', allowed.origin);
    assert.match(keys[name], /^embed_[A-Za-z0-9]{32}$/);
  }
  server = new Server(data, [
    '--offline-threshold-secs', String(THRESHOLD),
    '--presence-update-min-freq-secs', '1',
    '--rate-limit', 'off',
    '--ip-rate-limit', 'off',
    // The server's own idle and offline transitions, noticed quickly.
    '--config', configFile(dir, { directory_poll_ms: 50 }),
  ]);
  await server.start();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await allowed?.close();
  await foreign?.close();
  if (dir) cleanup(dir);
});

/** A page with a badge for each of `emails` and, unless told, a list. */
function embedPage(key, emails, { list = true } = {}) {
  const attrs = `server="${server.base}" key="${key}"`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme intranet</title>
<script type="module" src="${server.base}/embed/presence.js"></script></head>
<body><h1>Acme intranet</h1>
${emails.map((email) => `<p><presence-badge ${attrs} email="${email}" show-name></presence-badge></p>`).join('\n')}
${list ? `<presence-list ${attrs}></presence-list>` : ''}
</body></html>`;
}

/**
 * Opens `html` at `path` of `site` in a new context; what it requested.
 * With `clock`, the page's timers run on a clock the test can move (it
 * keeps the real time otherwise).
 */
async function open(site, path, html, { clock = false } = {}) {
  site.pages.set(path, html);
  const context = await browser.newContext({ colorScheme: 'light' });
  if (clock) await context.clock.install();
  await context.addInitScript(recordStreams);
  const page = await context.newPage();
  const seen = { streams: [], users: [] };
  page.on('request', (request) => {
    urls.push(request.url());
    if (request.method() !== 'GET') return;
    if (request.url().includes('/presence/stream')) seen.streams.push(request);
    if (request.url().includes('/api/v1/users')) seen.users.push(request);
  });
  await page.goto(site.origin + path);
  return { page, context, seen };
}

const badge = (user) => `presence-badge[email="${user.email}"]`;

/** Waits until the element at `selector` has `state`. */
function stateIs(page, selector, state, timeout) {
  return page.waitForFunction(
    ([selector, state]) => document.querySelector(selector)?.getAttribute('state') === state,
    [selector, state],
    { timeout, polling: 'raf' },
  );
}

/** When (ms since the epoch) the badge of `user` last turned `state`. */
async function changedAt(page, user, state) {
  const changes = await page.evaluate(() => window.changes);
  return changes.filter((c) => c.email === user.email && c.state === state).at(-1)?.at;
}

/** The page's own text alternative of a badge. */
function label(page, user) {
  return page.$eval(badge(user), (el) => el.shadowRoot.querySelector('.sr').textContent);
}

let live; // the page of the first tests, kept for the next ones

test('a report through the API turns the badge active within a second', async () => {
  live = await open(allowed, '/intranet', embedPage(keys.intranet, [
    users.alice.email, users.bob.email, users.grace.email, 'nobody@acme.test',
  ]));
  const { page } = live;
  await stateIs(page, 'presence-list', 'live', 10_000);
  await stateIs(page, badge(users.alice), 'offline', 5_000);
  assert.equal(await label(page, users.alice), 'Alice Adams is offline', 'never seen');
  await stateIs(page, 'presence-badge[email="nobody@acme.test"]', 'unknown', 1_000);

  await server.report(users.alice, 'active');
  const reported = Date.now();
  await stateIs(page, badge(users.alice), 'active', 1_000);
  assert.ok((await changedAt(page, users.alice, 'active')) - reported <= 1_000);
  assert.equal(await label(page, users.alice), 'Alice Adams is active');
  // The list moved her row, and says so in words too.
  const row = page.locator('presence-list li[data-email="alice@acme.test"]');
  assert.equal(await row.getAttribute('data-state'), 'active');
  assert.equal(await page.locator('presence-list section[part~="group-active"] [part~="count"]').textContent(), '1');
});

test('a page opens one stream and one fetch of the people, however many elements', async () => {
  const { page, seen } = live;
  // Five elements so far; one more, added late, joins the same connection.
  await page.evaluate(([base, key, email]) => {
    const more = document.createElement('presence-badge');
    Object.entries({ server: base, key, email }).forEach(([k, v]) => more.setAttribute(k, v));
    document.body.append(more);
  }, [server.base, keys.intranet, users.alice.email]);
  await page.waitForFunction(() => document.querySelectorAll('presence-badge[state="active"]').length === 2);
  assert.equal(seen.streams.length, 1, 'one stream');
  assert.equal(seen.users.length, 1, 'one fetch of the people');
  assert.equal(await page.evaluate(() => window.streams.length), 1);
});

test('the elements follow their attributes, and someone new is fetched when they come online', async () => {
  const { page, seen } = live;
  // Another email: the badge shows that person at once.
  await page.evaluate((email) => document.querySelectorAll('presence-badge')[4].setAttribute('email', email), users.grace.email);
  await page.waitForFunction(
    () => document.querySelectorAll('presence-badge')[4].shadowRoot.querySelector('.sr').textContent === 'Grace Green is offline',
  );

  // Someone the page has never heard of: a badge waits for them.
  const henry = { email: 'henry@acme.test', name: 'Henry Hill' };
  await page.evaluate(([base, key, email]) => {
    const badge = document.createElement('presence-badge');
    Object.entries({ server: base, key, email }).forEach(([k, v]) => badge.setAttribute(k, v));
    document.body.append(badge);
  }, [server.base, keys.intranet, henry.email]);
  await stateIs(page, badge(henry), 'unknown', 1_000);
  henry.key = admin(server.dataDir, 'user', 'create', '--realm', 'acme', '--email', henry.email, '--full-name', henry.name);
  // The server takes the new account in within its poll.
  for (let tries = 0; ; tries++) {
    try {
      await server.report(henry, 'active');
      break;
    } catch (e) {
      if (tries > 100) throw e;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  // The event names an id the page does not know: it fetches the people again.
  await stateIs(page, badge(henry), 'active', 2_000);
  assert.equal(await label(page, henry), 'Henry Hill is active');
  assert.equal(await page.locator('presence-list li[data-email="henry@acme.test"]').getAttribute('data-state'), 'active');
  assert.equal(seen.users.length, 2, 'the people, fetched again once');
  assert.equal(seen.streams.length, 1, 'on the same stream');

  // Another key: the badge moves to that key's connection.
  await page.evaluate(([email, key]) => document.querySelector(`presence-badge[email="${email}"]`).setAttribute('key', key), [henry.email, keys.kiosk]);
  await page.waitForFunction(() => window.streams.length === 2);
  await stateIs(page, badge(henry), 'active', 5_000);
  assert.equal(seen.streams.at(-1).headers().authorization, `Bearer ${keys.kiosk}`);
  users.henry = henry;
});

test('each change the server reports reaches the badge within a second, those that come with time too', async () => {
  const { page } = live;
  const bob = users.bob;
  // Coming online idle, from a phone...
  await server.report(bob, 'idle', 'ZulipMobile');
  let reported = Date.now();
  await stateIs(page, badge(bob), 'idle', 1_000);
  assert.ok((await changedAt(page, bob, 'idle')) - reported <= 1_000);
  assert.equal(await label(page, bob), 'Bob Brown is idle');
  // ... then active at the desk.
  await server.report(bob, 'active', 'website');
  reported = Date.now();
  await stateIs(page, badge(bob), 'active', 1_000);
  assert.ok((await changedAt(page, bob, 'active')) - reported <= 1_000);
  const { active_timestamp: active } = await server.timestamps(users.grace, bob);

  // A terminal reports, idle, seconds later: by the server's rules bob
  // is idle once the active report is past the threshold (older than it
  // by a whole second), and the server says so then.
  await page.waitForFunction((after) => Date.now() / 1000 >= after + 2, active);
  await server.report(bob, 'idle', 'ZulipTerminal');
  const { idle_timestamp: idle } = await server.timestamps(users.grace, bob);
  assert.ok(idle > active, `${idle} > ${active}`);
  const serverSaysIdle = (active + THRESHOLD + 1) * 1000;
  await stateIs(page, badge(bob), 'idle', serverSaysIdle - Date.now() + 1_000);
  assert.ok((await changedAt(page, bob, 'idle')) - serverSaysIdle <= 1_000);

  // Then offline, after the threshold with no report: when the server
  // says so, not before (the page never guesses from timestamps it holds).
  const due = (idle + THRESHOLD + 1) * 1000;
  await stateIs(page, badge(bob), 'offline', due - Date.now() + 1_000);
  const at = await changedAt(page, bob, 'offline');
  assert.ok(at >= due - 50 && at <= due + 1_000, `offline at ${at - due} ms from the server's transition`);
  assert.match(await label(page, bob), /^Bob Brown is offline, last seen less than a minute ago$/);
  assert.equal(await page.locator('presence-list li[data-email="bob@acme.test"]').getAttribute('data-state'), 'offline');
  await live.context.close();
});

test('after a network drop the stream resumes where it was: the change made meanwhile arrives once', async () => {
  const { page, context, seen } = await open(allowed, '/drop', embedPage(keys.intranet, [users.carol.email, users.erin.email]));
  await stateIs(page, 'presence-list', 'live', 10_000);
  await server.report(users.erin, 'active');
  await stateIs(page, badge(users.erin), 'active', 1_000);
  const { active_timestamp: erinActive } = await server.timestamps(users.grace, users.erin);

  await context.setOffline(true);
  await page.waitForFunction(() => window.streams[0].ended, null, { timeout: 5_000 });
  await stateIs(page, 'presence-list[reconnecting]', 'live', 1_000);
  // Two changes while the page cannot hear of them: erin goes offline
  // with time, then carol comes online. The page keeps what it last knew,
  // and says that it is reconnecting.
  const erinOffline = (erinActive + THRESHOLD + 1) * 1000;
  await page.waitForFunction((until) => Date.now() >= until, erinOffline + 500, { timeout: (THRESHOLD + 5) * 1000 });
  await server.report(users.carol, 'active');
  assert.equal(await page.$eval(badge(users.erin), (el) => el.getAttribute('state')), 'active');
  assert.equal(await page.locator('presence-badge[reconnecting]').count(), 2);
  assert.equal(await page.evaluate(() => window.streams.length), 1, 'nothing connects while offline');

  await context.setOffline(false);
  await stateIs(page, badge(users.carol), 'active', 10_000);
  await stateIs(page, badge(users.erin), 'offline', 1_000);
  const streams = await page.evaluate(() => window.streams);
  assert.equal(streams.length, 2);
  const [first, second] = streams;
  assert.equal(second.lastEventId, first.messages.at(-1).id, 'resumed after the last message received');
  assert.equal(seen.streams[1].headers()['last-event-id'], first.messages.at(-1).id);
  assert.ok(second.messages.every((m) => m.event !== 'register'), 'the same queue: no new snapshot');
  const ids = streams.flatMap((s) => s.messages.map((m) => m.id));
  assert.equal(new Set(ids).size, ids.length, `no message twice: ${ids}`);
  const [queue] = ids[0].split(':');
  const numbers = ids.map((id) => Number(id.split(':')[1]));
  assert.ok(ids.every((id) => id.startsWith(queue + ':')));
  assert.deepEqual(numbers, numbers.map((_, i) => i - 1), 'none missing');
  const about = (user) => second.messages.filter((m) => JSON.parse(m.data).presences?.[user.id]);
  assert.equal(about(users.carol).length, 1, 'carol came online once');
  assert.equal(about(users.erin).length, 1, 'erin went offline once');
  assert.equal(await page.locator('presence-list[reconnecting]').count(), 0);
  await context.close();
});

test('a revoked key turns the elements to error and the server ends the stream', async () => {
  const { page, context } = await open(allowed, '/kiosk', embedPage(keys.kiosk, [users.alice.email]), { clock: true });
  await stateIs(page, 'presence-list', 'live', 10_000);
  const ended = page.waitForEvent('requestfinished', {
    predicate: (r) => r.url().includes('/presence/stream'),
    timeout: 10_000,
  });
  admin(server.dataDir, 'embed-key', 'revoke', '--realm', 'acme', '--name', 'kiosk');
  // The command returns once the server has taken the change; the stream's
  // last frame says to ask again at once, and the refusal says why.
  const revoked = Date.now();
  await ended;
  await stateIs(page, badge(users.alice), 'error', 2_000);
  assert.ok((await changedAt(page, users.alice, 'error')) - revoked <= 1_000);
  await stateIs(page, 'presence-list', 'error', 1_000);
  assert.match(await label(page, users.alice), /revoked/);
  assert.match(await page.locator('presence-list [part~="error"]').textContent(), /This embed key has been revoked/);
  // It does not go on trying. Whatever wait the page still has runs out
  // at once, on its clock moved past the longest wait between tries (60 s,
  // and half again of jitter); a request the test then has the page make
  // comes after any try those waits made, and is the only request seen.
  const asked = [];
  const note = (request) => asked.push(request.url());
  page.on('request', note);
  await page.clock.fastForward(2 * 60_000);
  const marker = page.waitForEvent('request', { predicate: (r) => r.url().endsWith('/marker'), timeout: 10_000 });
  await page.evaluate(() => fetch('/marker').catch(() => {}));
  await marker;
  page.off('request', note);
  assert.deepEqual(asked, [`${allowed.origin}/marker`], 'no try after the refusal');
  await context.close();
});

test('a page on an origin the key does not name gets nothing', async () => {
  const { page, context } = await open(foreign, '/elsewhere', embedPage(keys.intranet, [users.alice.email]));
  await stateIs(page, badge(users.alice), 'error', 10_000);
  await stateIs(page, 'presence-list', 'error', 1_000);
  const shown = (await page.evaluate(() => window.changes)).filter((c) => ['active', 'idle', 'offline', 'live'].includes(c.state));
  assert.deepEqual(shown, [], 'never any presence');
  assert.equal(await page.evaluate(() => window.streams.length), 0);
  // The browser asked first, and was refused: no key names this origin.
  await server.logged(/method=OPTIONS path=\/api\/v1\/(presence\/stream|users) status=403/);
  assert.match(await page.locator('presence-list [part~="error"]').textContent(), /cannot be reached/);
  await context.close();
});

test('the stream survives a restart of the server: a fresh snapshot, then changes again', async () => {
  const { page, context } = await open(allowed, '/restart', embedPage(keys.intranet, [users.frank.email]));
  await stateIs(page, 'presence-list', 'live', 10_000);
  const before = await page.evaluate(() => window.streams[0].messages[0].id);
  const port = server.port;
  await server.stop();
  await server.start(port);
  // The page comes back on its own, asks to resume, and is told afresh.
  await page.waitForFunction(
    () => window.streams.length >= 2 && window.streams.at(-1).messages[0]?.event === 'register',
    null,
    { timeout: 30_000 },
  );
  const after = await page.evaluate(() => window.streams.at(-1));
  assert.ok(after.lastEventId, 'it asked to resume');
  assert.notEqual(after.messages[0].id.split(':')[0], before.split(':')[0], 'a new queue');
  await stateIs(page, 'presence-list:not([reconnecting])', 'live', 5_000);
  await server.report(users.frank, 'active');
  const reported = Date.now();
  await stateIs(page, badge(users.frank), 'active', 1_000);
  assert.ok((await changedAt(page, users.frank, 'active')) - reported <= 1_000);
  await context.close();
});

/**
 * Runs in the page: the custom status of the person with `email` as it
 * shows, that is the visible emoji and text of their badge (null without
 * one) and of their row in the list, and the badge's text alternative.
 */
function shownStatus(email) {
  const visible = (root) => [...root.querySelectorAll('[part~="status-emoji"], [part~="status-text"]')]
    .filter((node) => node.checkVisibility() && node.textContent)
    .map((node) => node.textContent)
    .join(' ');
  const badge = document.querySelector(`presence-badge[email="${email}"]`)?.shadowRoot;
  const row = document.querySelector('presence-list').shadowRoot.querySelector(`li[data-email="${email}"]`);
  return { badge: badge ? visible(badge) : null, row: visible(row), label: badge?.querySelector('.sr').textContent ?? null };
}

/** Waits until the page shows `want` as `user`'s status (see `shownStatus`). */
async function statusIs(page, user, want, timeout = 2_000) {
  const shown = `(${shownStatus})(${JSON.stringify(user.email)})`;
  try {
    await page.waitForFunction(`JSON.stringify(${shown}) === ${JSON.stringify(JSON.stringify(want))}`, null, { timeout, polling: 'raf' });
  } catch {
    assert.deepEqual(await page.evaluate(shown), want, `the status of ${user.email} within ${timeout} ms`);
  }
}

test('a custom status shows beside the name, changes live, and goes when cleared or when it expires', async () => {
  const { dave, frank } = users;
  // Set before the page opens: it comes with the stream's snapshot.
  await server.setStatus(dave, { status_text: 'In a meeting', emoji_name: 'calendar' });
  const { page, context } = await open(allowed, '/status', embedPage(keys.intranet, [dave.email]));
  await stateIs(page, 'presence-list', 'live', 10_000);
  const calendar = String.fromCodePoint(0x1f4c5);
  await statusIs(page, dave, {
    badge: `${calendar} In a meeting`,
    row: `${calendar} In a meeting`,
    label: `Dave Diaz is offline — ${calendar} In a meeting`,
  });
  assert.deepEqual(await page.evaluate(`(${shownStatus})(${JSON.stringify(frank.email)})`), { badge: null, row: '', label: null }, 'no status, nothing shown');

  // Changes, live. An emoji of several code points, joined by '-' in its code:
  const coder = String.fromCodePoint(0x1f9d1, 0x200d, 0x1f4bb);
  await server.setStatus(dave, { status_text: 'Pairing', emoji_name: 'technologist', emoji_code: '1f9d1-200d-1f4bb', reaction_type: 'unicode_emoji' });
  await statusIs(page, dave, { badge: `${coder} Pairing`, row: `${coder} Pairing`, label: `Dave Diaz is offline — ${coder} Pairing` });
  // The text alone: the event says nothing of the emoji, which stays.
  await server.setStatus(dave, { status_text: 'Pairing with Bob' });
  await statusIs(page, dave, {
    badge: `${coder} Pairing with Bob`,
    row: `${coder} Pairing with Bob`,
    label: `Dave Diaz is offline — ${coder} Pairing with Bob`,
  });
  // An emoji that is no Unicode character (Zulip's own): the text only.
  await server.setStatus(dave, { emoji_name: 'zulip' });
  await statusIs(page, dave, { badge: 'Pairing with Bob', row: 'Pairing with Bob', label: 'Dave Diaz is offline — Pairing with Bob' });

  // What people type is shown as text, never read as markup.
  const markup = '<img src=x onerror="window.pwned=1"><b>hi</b>';
  await server.setStatus(dave, { status_text: markup, emoji_name: '' });
  await statusIs(page, dave, { badge: markup, row: markup, label: `Dave Diaz is offline — ${markup}` });
  const made = await page.evaluate(() => [...document.querySelectorAll('presence-badge, presence-list')]
    .map((el) => el.shadowRoot.querySelectorAll('img, b').length));
  assert.deepEqual(made, [0, 0], 'no element made from the text');
  assert.equal(await page.evaluate(() => window.pwned), undefined);

  // A page may leave statuses out, and bring them back.
  await page.evaluate(() => document.querySelectorAll('presence-badge, presence-list').forEach((el) => el.toggleAttribute('hide-status', true)));
  await statusIs(page, dave, { badge: '', row: '', label: 'Dave Diaz is offline' });
  await page.evaluate(() => document.querySelectorAll('presence-badge, presence-list').forEach((el) => el.removeAttribute('hide-status')));
  await statusIs(page, dave, { badge: markup, row: markup, label: `Dave Diaz is offline — ${markup}` });

  // Cleared by its owner.
  await server.setStatus(dave, { status_text: '' });
  await statusIs(page, dave, { badge: '', row: '', label: 'Dave Diaz is offline' });

  // Cleared by the server when it expires: the page shows it until then.
  const expires = Math.floor(Date.now() / 1000) + 3;
  await server.setStatus(dave, { status_text: 'Out to lunch', emoji_name: 'calendar', expires_at: String(expires) });
  await statusIs(page, dave, { badge: `${calendar} Out to lunch`, row: `${calendar} Out to lunch`, label: `Dave Diaz is offline — ${calendar} Out to lunch` });
  await statusIs(page, dave, { badge: '', row: '', label: 'Dave Diaz is offline' }, expires * 1000 - Date.now() + 2_000);
  assert.ok(Date.now() >= expires * 1000, 'not before it expired');

  // All of it on the one stream, one event a change: nothing was fetched again.
  const streams = await page.evaluate(() => window.streams);
  assert.equal(streams.length, 1);
  assert.equal(streams[0].messages.filter((m) => m.event === 'user_status').length, 7);
  await context.close();
});

test('no key is in any URL the browser asked for, nor in the server log', () => {
  assert.ok(urls.length > 10, `${urls.length} requests seen`);
  const secrets = [...Object.values(keys), ...Object.values(users).map((u) => u.key)];
  for (const secret of secrets) {
    assert.ok(!urls.some((url) => url.includes(secret)), 'a key in a URL');
    assert.ok(!server.log.includes(secret), 'a key in the log');
  }
  assert.match(server.log, /embed_key=/, 'the log names keys by id');
});
