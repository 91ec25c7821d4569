/*
 * A list of 10,000 people: it comes up, and a change of one person's
 * presence touches that person's row and the counts, nothing else.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { Server, admin, cleanup, launch, provision, tempDir } from './harness.mjs';

const PEOPLE = 10_000;

let dir;
let server;
let browser;
let key;
let people;

before(async () => {
  dir = tempDir('scale');
  const data = join(dir, 'data');
  const now = Math.floor(Date.now() / 1000);
  const everyone = {};
  for (let i = 0; i < PEOPLE; i++) everyone[`p${i}@acme.test`] = `Person ${String(i).padStart(5, '0')}`;
  // A third of them seen in the last hours.
  const history = [];
  for (let i = 0; i < PEOPLE; i += 3) {
    const seen = now - (1 + (i % 7)) * 3600;
    history.push({ email: `p${i}@acme.test`, client: 'website', connected: seen, active: seen });
  }
  people = provision(data, everyone, history);
  key = admin(data, 'embed-key', 'create', '--realm', 'acme', '--name', 'lobby', '--origin', 'https://intranet.acme.test');
  server = await new Server(data, ['--rate-limit', 'off', '--ip-rate-limit', 'off']).start();
  for (let i = 1; i < 100; i += 7) await server.report(people[`p${i}@acme.test`], i % 2 ? 'active' : 'idle');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) cleanup(dir);
});

test('in a list of 10,000 people a change moves one row and leaves the rest alone', async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${server.base}/directory#key=${key}`);
  await page.waitForFunction(
    () => document.querySelector('presence-list')?.getAttribute('state') === 'live',
    null,
    { timeout: 30_000 },
  );
  assert.equal(await page.evaluate(() => document.querySelector('presence-list').shadowRoot.querySelectorAll('li').length), PEOPLE);

  await page.evaluate(() => {
    window.mutations = [];
    new MutationObserver((records) => window.mutations.push(...records)).observe(
      document.querySelector('presence-list').shadowRoot,
      { subtree: true, childList: true, attributes: true, characterData: true },
    );
  });
  await server.report(people['p5000@acme.test'], 'active');
  await page.waitForFunction(
    () => document.querySelector('presence-list').shadowRoot.querySelector('li[data-email="p5000@acme.test"]').dataset.state === 'active',
    null,
    { timeout: 5_000 },
  );
  // Whatever changed is in that row (moved whole), or is a group's count.
  const touched = await page.evaluate(() => window.mutations.flatMap((m) => {
    const nodes = m.type === 'childList' ? [...m.addedNodes, ...m.removedNodes] : [m.target];
    return nodes.map((node) => {
      const element = node.nodeType === Node.ELEMENT_NODE ? node : node.parentElement ?? m.target;
      return element.closest('li')?.dataset.email ?? element.closest('[part]')?.getAttribute('part') ?? element.tagName;
    });
  }));
  assert.ok(touched.includes('p5000@acme.test'));
  assert.deepEqual(touched.filter((t) => !['p5000@acme.test', 'count', 'status'].includes(t)), [], `touched: ${touched}`);
  assert.ok(touched.length <= 20, `${touched.length} changes: ${touched}`);
  await context.close();
});
