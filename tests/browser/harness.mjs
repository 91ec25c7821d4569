/*
 * What the browser tests stand on: the real server binary (from
 * PRESENCE_SERVER_BIN) on a temporary data directory, its admin commands,
 * presence reports and custom statuses through the API, small web servers
 * for the test pages (each its own origin), and Debian's Chromium driven by
 * playwright-core.
 */

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const BIN = process.env.PRESENCE_SERVER_BIN;
if (!BIN) throw new Error('PRESENCE_SERVER_BIN must name the presence-server binary');

export const CHROMIUM = process.env.PRESENCE_CHROMIUM ?? '/usr/bin/chromium';

/** A fresh temporary directory, removed by `cleanup`. */
export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `presence-${prefix}-`));
}

/** A new random API key, of the shape the server gives. */
export function apiKey() {
  return randomBytes(32).toString('base64').replace(/[^A-Za-z0-9]/g, '').padEnd(32, 'x').slice(0, 32);
}

/**
 * Provisions a realm `acme` and `people` ({email: full name}) on a new
 * data directory with the server's `import`, which lets the tests choose
 * keys and dates: everyone joined a day ago, since a person who never
 * reported active counts as active at the time they joined. `presence`
 * rows may be given as well. Returns each person as {email, name, key, id}.
 */
export function provision(dataDir, people, presence = []) {
  const day = 86_400;
  const now = Math.floor(Date.now() / 1000);
  const lines = [
    { type: 'header', format: 'presence-dump', version: 1 },
    { type: 'realm', id: 1, string_id: 'acme', name: 'Acme', date_created: now - 30 * day },
  ];
  const users = {};
  Object.entries(people).forEach(([email, name], i) => {
    const user = { email, name, key: apiKey(), id: i + 1 };
    users[email] = user;
    lines.push({ type: 'user', id: user.id, realm_id: 1, email, full_name: name, date_joined: now - day, api_key: user.key });
  });
  presence.forEach(({ email, client, connected, active }, i) => {
    lines.push({
      type: 'presence', user_id: users[email].id, client,
      last_connected_time: connected, last_active_time: active ?? null, update_id: i + 1,
    });
  });
  const file = join(dataDir, '..', 'dump.jsonl');
  writeFileSync(file, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
  admin(dataDir, 'import', file);
  return users;
}

/** Runs an admin command on `dataDir`; its standard output, trimmed. */
export function admin(dataDir, ...args) {
  return execFileSync(BIN, ['--data-dir', dataDir, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/**
 * A server process. Everything it writes to stderr, over every start, is
 * kept in `log`, so that a test can search it (for a key, a refused
 * preflight).
 */
export class Server {
  constructor(dataDir, args = []) {
    this.dataDir = dataDir;
    this.args = args;
    this.log = '';
  }

  /** Starts on `port` (0: any), resolving once it listens. */
  async start(port = 0) {
    const child = spawn(BIN, ['--data-dir', this.dataDir, 'serve', '--listen', `127.0.0.1:${port}`, ...this.args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
    });
    this.child = child;
    child.stderr.setEncoding('utf8');
    const listening = new Promise((resolve, reject) => {
      let seen = '';
      child.stderr.on('data', (chunk) => {
        this.log += chunk;
        seen += chunk;
        const found = /listening on http:\/\/(\S+)/.exec(seen);
        if (found) resolve(found[1]);
      });
      child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${this.log}`)));
    });
    const address = await listening;
    this.base = `http://${address}`;
    this.port = Number(address.split(':').pop());
    this.exited = new Promise((resolve) => child.on('exit', resolve));
    return this;
  }

  /**
   * Resolves once the log matches `pattern` (within `timeout` ms, else
   * rejects with the log). A request's line is written after its answer
   * is sent, so a page can act on an answer before its line is here.
   */
  logged(pattern, timeout = 5_000) {
    return new Promise((resolve, reject) => {
      const stderr = this.child.stderr;
      const done = () => {
        clearTimeout(timer);
        stderr.off('data', check);
      };
      // Added after `start`'s listener, so `log` already holds each chunk.
      const check = () => {
        if (pattern.test(this.log)) {
          done();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`not logged within ${timeout} ms: ${pattern}\n${this.log}`));
      }, timeout);
      stderr.on('data', check);
      check();
    });
  }

  /** Stops gracefully (SIGTERM) and waits for the process to end. */
  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    await this.exited;
  }

  /** Reports `status` for a user through the API, as their client would. */
  async report(user, status, client = 'website') {
    const response = await fetch(`${this.base}/api/v1/users/me/presence`, {
      method: 'POST',
      headers: {
        Authorization: `Basic ${Buffer.from(`${user.email}:${user.key}`).toString('base64')}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ status, client, ping_only: 'true' }),
    });
    const body = await response.json();
    if (body.result !== 'success') throw new Error(`report refused: ${JSON.stringify(body)}`);
  }

  /** Sets a user's custom status through the API (`fields` as the form's). */
  async setStatus(user, fields) {
    const response = await fetch(`${this.base}/api/v1/users/me/status`, {
      method: 'POST',
      headers: {
        Authorization: `Basic ${Buffer.from(`${user.email}:${user.key}`).toString('base64')}`,
        'Content-Type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(fields),
    });
    const body = await response.json();
    if (body.result !== 'success') throw new Error(`status refused: ${JSON.stringify(body)}`);
  }

  /**
   * A user's two timestamps as a page would hold them, read by `reader`
   * (reading reports nothing): the latest active report, and the latest
   * report of any kind.
   */
  async timestamps(reader, user) {
    const response = await fetch(`${this.base}/api/v1/users/${user.email}/presence`, {
      headers: { Authorization: `Basic ${Buffer.from(`${reader.email}:${reader.key}`).toString('base64')}` },
    });
    const { presence } = await response.json();
    // The per-client entries: not `aggregated`, and not the modern
    // timestamps that stand beside them (numbers, not objects).
    const entries = Object.entries(presence)
      .filter(([client, e]) => client !== 'aggregated' && typeof e === 'object')
      .map(([, e]) => e);
    const latest = (list) => Math.max(...list.map((e) => e.timestamp));
    return {
      active_timestamp: latest(entries.filter((e) => e.status === 'active')),
      idle_timestamp: latest(entries),
    };
  }
}

/** A config file with settings that have no flag. */
export function configFile(dir, settings) {
  const path = join(dir, 'presence.toml');
  writeFileSync(path, Object.entries(settings).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n') + '\n');
  return path;
}

/**
 * A web server for test pages on its own port, so its own origin: it
 * answers each path with the HTML that `pages` holds for it.
 */
export async function pageServer() {
  const pages = new Map();
  const server = http.createServer((request, response) => {
    const html = pages.get(new URL(request.url, 'http://x').pathname);
    response.writeHead(html ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
    response.end(html ?? 'not found');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    pages,
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Headless Chromium with a fresh profile; never a downloaded browser. */
export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/**
 * Runs in each page before its scripts: records what every presence
 * stream the page opens carries (each message's event and id, and the
 * `Last-Event-ID` it was opened with) without changing what the page
 * gets, in `window.streams`.
 */
export function recordStreams() {
  // And every change of an element's state, with its time.
  window.changes = [];
  document.addEventListener('statechange', (event) => {
    const { tagName } = event.target;
    window.changes.push({ tag: tagName, email: event.target.getAttribute('email'), state: event.detail.state, at: Date.now() });
  });
  const realFetch = window.fetch;
  window.streams = [];
  window.fetch = async function (input, init) {
    const response = await realFetch.call(this, input, init);
    const url = typeof input === 'string' ? input : input.url;
    if (!url.includes('/presence/stream') || !response.ok) return response;
    const record = { lastEventId: new Headers(init?.headers).get('Last-Event-ID'), messages: [], ended: false };
    window.streams.push(record);
    const [mine, theirs] = response.body.tee();
    (async () => {
      const reader = mine.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const field = (name) => block.split('\n').find((l) => l.startsWith(name + ': '))?.slice(name.length + 2);
            if (field('event')) {
              record.messages.push({ event: field('event'), id: field('id'), data: field('data'), at: Date.now() });
            }
          }
        }
      } catch {
        // The page dropped the stream; the record says so below.
      }
      record.ended = true;
    })();
    return new Response(theirs, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

export function cleanup(dir) {
  rmSync(dir, { recursive: true, force: true });
}
