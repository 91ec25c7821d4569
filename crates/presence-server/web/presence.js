/*
 * presence.js: live presence from a presence server (Zulip's presence API)
 * as web components. An ES module; no dependencies, no build step.
 *
 *   <script type="module" src="https://presence.example.com/embed/presence.js"></script>
 *   <presence-badge key="embed_…" email="alice@example.com" show-name></presence-badge>
 *   <presence-list key="embed_…"></presence-list>
 *
 * Attributes: server (default: where this file came from), key (an embed
 * key, sent in `Authorization`, never in a URL), hide-status (no custom
 * status); badge: email, show-name.
 * Set by the elements: state (badge: active idle offline unknown error;
 * list: loading live error), reconnecting; event: statechange.
 * Custom properties (light and dark defaults): --presence-active,
 * --presence-idle, --presence-offline (dots), --presence-fg, --presence-bg,
 * --presence-muted, --presence-border, --presence-accent (focus),
 * --presence-font, --presence-dot-size, --presence-row-width (list column).
 * Parts: dot, dot-STATE, custom-status (status-emoji, status-text);
 * badge: badge, name; list: list, filter-label, filter, status (the count
 * line), error, group, group-STATE, group-heading, count, rows, row,
 * row-STATE, avatar, name, email, detail, empty.
 *
 * Elements with the same server and key share one connection: the people,
 * and one presence stream (Server-Sent Events over `fetch`) with presence
 * and custom statuses, resumed after a drop with `Last-Event-ID` so that
 * nothing is lost or repeated.
 */

const STREAM_PATH = '/api/v1/presence/stream?slim_presence=true&client_capabilities=' +
  encodeURIComponent('{"simplified_presence_events":true}');
// Bots too, for badges; the list leaves them out.
const USERS_PATH = '/api/v1/users?include_bots=true';
const MAX_WAIT_MS = 60_000;
// A silent stream gets a comment every 15 s: three missed, it is dead.
const WATCHDOG_MS = 45_000;
const STATES = ['active', 'idle', 'offline'];

const rtf = new Intl.RelativeTimeFormat('en');
const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });
const UNITS = { year: 31_536_000, month: 2_592_000, week: 604_800, day: 86_400, hour: 3_600, minute: 60 };

function ago(seconds) {
  for (const unit in UNITS) {
    if (seconds >= UNITS[unit]) return rtf.format(-Math.floor(seconds / UNITS[unit]), unit);
  }
  return 'less than a minute ago';
}

const jitter = (ms) => ms * (1 + Math.random() / 2);

/** A Unicode emoji from its code (hex code points joined by `-`); the
 * other kinds are images of a Zulip server: none. */
function emoji(type, code) {
  try {
    return type === 'unicode_emoji' ? String.fromCodePoint(...code.split('-').map((hex) => parseInt(hex, 16))) : '';
  } catch {
    return ''; // not code points
  }
}

const NO_STATUS = { text: '', emoji: '' };

/** One server and key: the people, their presence, and the stream. */
class Source {
  users = new Map(); // id -> {id, email, name, bot}
  byEmail = new Map();
  times = new Map(); // id -> [active_timestamp, idle_timestamp]
  states = new Map(); // id -> 'active' | 'idle' | 'offline', as the server last said
  statuses = new Map(); // id -> {text, emoji}: custom status, as the server last said
  threshold = 200;
  skew = 0; // the server's clock minus this browser's, in seconds
  status = 'loading';
  error = '';
  lastEventId = '';
  retryMs = 3000;
  elements = new Set();
  pending = new Set();
  stopper = new AbortController();

  constructor(id, base, key) {
    Object.assign(this, { id, base, key });
    this.online = () => this.wake?.();
    this.offline = () => this.streamAbort?.abort();
  }

  subscribe(element) {
    this.elements.add(element);
    if (this.started) return;
    this.started = true;
    addEventListener('online', this.online);
    addEventListener('offline', this.offline);
    this.loadUsers();
    this.stream();
  }

  unsubscribe(element) {
    this.elements.delete(element);
    // An element moved in the page leaves and comes back at once.
    setTimeout(() => this.elements.size || this.stop());
  }

  stop() {
    sources.delete(this.id);
    this.stopped = true;
    this.halt();
    removeEventListener('online', this.online);
    removeEventListener('offline', this.offline);
  }

  halt() {
    this.stopper.abort();
    this.streamAbort?.abort();
    this.wake?.();
  }

  get running() {
    return !this.stopped && !this.fatal;
  }

  get ready() {
    return this.haveUsers && this.haveRegister;
  }

  now() {
    return Date.now() / 1000 + this.skew;
  }

  get(path, headers, signal = this.stopper.signal) {
    return fetch(this.base + path, { headers: { ...headers, Authorization: `Bearer ${this.key}` }, signal });
  }

  /** Waits `ms`, unless woken: the network is back, or a stop. */
  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => (clearTimeout(timer), resolve());
    });
  }

  /** The server's `retry:`, doubled per failed try, with jitter. */
  backoff(tries) {
    return jitter(Math.min(MAX_WAIT_MS, this.retryMs * 2 ** Math.min(tries, 8)));
  }

  /** The wait after a refusal; none for a bad key, or an inactive realm. */
  async refused(response, tries) {
    const { status } = response;
    if (status === 429) return jitter(Math.max(response.headers.get('Retry-After') * 1000 || 0, this.retryMs));
    if (status >= 500) return this.backoff(tries);
    const body = await response.json().catch(() => ({}));
    this.fatal = true;
    this.reconnecting = false;
    this.setStatus('error', body.msg || `Refused (${status})`);
    this.halt();
  }

  /** No answer: the server is down, or this origin may not read it. */
  unreachable() {
    this.reconnecting = true;
    if (this.ready) this.touch();
    else this.setStatus('error', 'The presence server cannot be reached');
  }

  reached() {
    if (this.status === 'error' && !this.fatal) this.setStatus(this.ready ? 'live' : 'loading');
  }

  setStatus(status, error = '') {
    this.status = status;
    this.error = error;
    this.touch();
  }

  /** The people; fetched again when presence names someone unknown. */
  async loadUsers() {
    this.usersAgain = this.loadingUsers;
    if (this.loadingUsers) return;
    this.loadingUsers = true;
    for (let tries = 0; this.running; ) {
      let wait;
      try {
        const response = await this.get(USERS_PATH);
        if (response.ok) {
          this.setUsers((await response.json()).members);
          if (!this.usersAgain) break;
          this.usersAgain = false;
          continue;
        }
        wait = await this.refused(response, tries++);
      } catch {
        if (!this.running) break;
        this.unreachable();
        wait = this.backoff(tries++);
      }
      if (wait === undefined) break;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    this.loadingUsers = false;
  }

  setUsers(members) {
    this.users = new Map();
    this.byEmail = new Map();
    for (const m of members) {
      if (m.is_active === false) continue;
      const user = { id: m.user_id, email: m.email, name: m.full_name || m.email, bot: m.is_bot };
      this.users.set(user.id, user);
      this.byEmail.set(user.email.toLowerCase(), user);
    }
    // Ids still unknown now are not worth asking about again.
    this.asked = new Set(this.times.keys());
    this.haveUsers = true;
    this.settled();
  }

  settled() {
    if (this.ready && !this.fatal) this.status = 'live';
    this.reached();
    this.pending = null;
    this.touch();
  }

  /** Reads the stream, again and again, until stopped. */
  async stream() {
    for (let tries = 0; this.running; ) {
      let wait = MAX_WAIT_MS; // offline: until 'online' wakes this up
      if (navigator.onLine) {
        const abort = (this.streamAbort = new AbortController());
        try {
          const headers = this.lastEventId ? { 'Last-Event-ID': this.lastEventId } : {};
          const response = await this.get(STREAM_PATH, headers, abort.signal);
          if (response.ok) {
            this.reached();
            // Ended by the server (time limit, restart, revoked key).
            if (await this.read(response.body, abort)) tries = 0;
            wait = jitter(this.retryMs);
          } else wait = await this.refused(response, tries++);
        } catch {
          if (!this.running) break;
          // Dropped by the network, the watchdog, or offline.
          wait = abort.signal.aborted && navigator.onLine ? 0 : this.backoff(tries++);
          this.unreachable();
        }
      }
      if (wait === undefined || !this.running) break;
      this.reconnecting = true;
      this.touch();
      await this.sleep(wait);
    }
  }

  /** Applies a stream's Server-Sent Events; says whether any came. */
  async read(body, abort) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const lines = /\r\n|\n|\r(?!$)/g;
    let buffer = '';
    let message = { data: [] };
    let any = false;
    let watchdog;
    try {
      for (;;) {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => abort.abort(), WATCHDOG_MS);
        const { done, value } = await reader.read();
        if (done) return any;
        buffer += value;
        let start = 0;
        for (let m; (m = lines.exec(buffer)); start = lines.lastIndex) {
          const line = buffer.slice(start, m.index);
          if (!line) {
            // A blank line ends a message; its id counts once it is applied.
            if (message.data.length) {
              const data = JSON.parse(message.data.join('\n'));
              if (message.event === 'register') this.register(data);
              else if (message.event === 'presence') this.presence(data);
              else if (message.event === 'user_status') this.userStatus(data);
              any = true;
            }
            if (message.id !== undefined) this.lastEventId = message.id;
            message = { data: [] };
          } else if (line[0] !== ':') {
            // A field (a line starting with a colon is a comment).
            const [, field, value] = /^([^:]*):? ?(.*)$/s.exec(line);
            if (field === 'data') message.data.push(value);
            else if (field === 'event') message.event = value;
            else if (field === 'id' && !value.includes('\0')) message.id = value;
            else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = +value;
          }
        }
        buffer = buffer.slice(start);
      }
    } finally {
      clearTimeout(watchdog);
      reader.cancel().catch(() => {});
    }
  }

  /** A new queue's snapshot: it replaces what was known. */
  register(data) {
    this.threshold = data.server_presence_offline_threshold_seconds ?? this.threshold;
    if (data.server_timestamp) this.skew = data.server_timestamp - Date.now() / 1000;
    this.times = new Map();
    this.states = new Map();
    this.statuses = new Map();
    for (const [id, status] of Object.entries(data.user_status ?? {})) this.userStatus({ ...status, user_id: +id });
    this.apply(data.presences, data.server_timestamp);
    this.reconnecting = false;
    // After a restart or a long absence the people may have changed too.
    if (this.haveRegister) this.loadUsers();
    this.haveRegister = true;
    this.settled();
  }

  presence(data) {
    this.apply(data.presences, data.server_timestamp);
    this.reconnecting = false;
  }

  /** A status event names only what changed: the text, or the emoji (an
   * empty name clears it). Expiry needs nothing here: the server clears
   * the status when it expires, and says so with an event. */
  userStatus({ user_id: id, status_text: text, emoji_name: name, emoji_code: code, reaction_type: type }) {
    const was = this.statusOf(id);
    this.statuses.set(id, {
      text: text ?? was.text,
      emoji: name === undefined ? was.emoji : name && emoji(type, code),
    });
    this.pending?.add(id);
    this.touch();
  }

  statusOf(id) {
    return this.statuses.get(id) ?? NO_STATUS;
  }

  /** Timestamps from the server, judged at `at` on its clock (a snapshot's
   * own time; now for an event, which carries none): each person's state
   * is what they say then, and holds until the server says otherwise. The
   * server sends an event whenever someone's state changes, including the
   * changes that come with time (active to idle, idle to offline), but not
   * for reports that change nobody's state: so timestamps held here go
   * stale while their owner stays active, and the page never ages them. */
  apply(presences = {}, at = this.now()) {
    let unknown = false;
    for (const [key, p] of Object.entries(presences)) {
      const id = +key;
      this.times.set(id, [p.active_timestamp, p.idle_timestamp]);
      this.states.set(id, this.stateAt(p, at));
      this.pending?.add(id);
      if (this.haveUsers && !this.users.has(id) && !this.asked.has(id)) unknown = this.asked.add(id);
    }
    this.touch();
    if (unknown) this.loadUsers();
  }

  /** The server's rule: active while the active timestamp is at most the
   * threshold old, else idle while the idle one is, else offline. */
  stateAt({ active_timestamp: active = 0, idle_timestamp: idle = 0 }, at) {
    return at - active <= this.threshold ? 'active' : at - idle <= this.threshold ? 'idle' : 'offline';
  }

  /** What the server last said of someone; offline if never. */
  stateOf(id) {
    return this.states.get(id) ?? 'offline';
  }

  lastSeen(id) {
    const t = this.times.get(id);
    return t && (Math.max(...t) || undefined);
  }

  /** Tells the elements what changed (null: all), once a frame; a timeout
   * stands in for frames, which hidden pages do not get. */
  touch() {
    if (this.flushing) return;
    this.flushing = true;
    const flush = () => {
      if (!this.flushing) return;
      this.flushing = false;
      const ids = this.pending;
      this.pending = new Set();
      for (const element of this.elements) element.refresh(ids);
    };
    requestAnimationFrame(flush);
    setTimeout(flush, 500);
  }
}

/** Every connection of the page, by server and key. */
const sources = new Map();

const PALETTE = `
:host {
  --_active: #1a7f37; --_idle: #d97706; --_offline: #8c959f; --_error: #cf222e;
  --_fg: #1f2328; --_bg: #fff; --_muted: #59636e; --_border: #d1d9e0; --_accent: #0969da;
}
@media (prefers-color-scheme: dark) {
  :host {
    --_active: #3fb950; --_idle: #e3b341; --_offline: #7d8590; --_error: #f85149;
    --_fg: #e6edf3; --_bg: #0d1117; --_muted: #9198a1; --_border: #3d444d; --_accent: #4493f8;
  }
}
:host([hidden]) { display: none; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
/* Shapes as well as colours: disc, half disc, ring, dashed ring, square. */
.dot {
  --c: var(--presence-offline, var(--_offline)); --s: var(--presence-dot-size, .625em);
  box-sizing: border-box; display: inline-block; flex: none; width: var(--s); height: var(--s);
  border: max(1.5px, calc(var(--s) / 5)) solid var(--c); border-radius: 50%; background: var(--_fill, #0000);
}
.dot[data-state=active] { --c: var(--presence-active, var(--_active)); background: var(--c); }
.dot[data-state=idle] {
  --c: var(--presence-idle, var(--_idle)); background: linear-gradient(0deg, var(--c) 50%, var(--_fill, #0000) 0);
}
.dot[data-state=unknown] { --c: var(--presence-muted, var(--_muted)); border-style: dashed; }
.dot[data-state=error] { --c: var(--_error); border-radius: 2px; }
[part~=status-emoji] { margin-right: .3em; }
`;

const BADGE_CSS = `
:host {
  display: inline-flex; font-family: var(--presence-font, inherit); color: var(--presence-fg, inherit);
}
[part=badge] { display: inline-flex; align-items: center; gap: .4em; }
`;

const LIST_CSS = `
:host {
  display: block; line-height: 1.4; color: var(--presence-fg, var(--_fg)); background: var(--presence-bg, var(--_bg));
  font-family: var(--presence-font, system-ui, sans-serif);
}
.bar { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; margin-bottom: 1rem; }
label { font-weight: 600; }
input {
  flex: 1 1 14rem; max-width: 24rem; font: inherit; color: inherit; background: #0000;
  padding: .45rem .7rem; border: 1px solid var(--presence-border, var(--_border)); border-radius: .5rem;
}
input:focus-visible { outline: 2px solid var(--presence-accent, var(--_accent)); outline-offset: 1px; }
[part~=status], [part~=empty], [part~=detail], [part~=email], h2 { color: var(--presence-muted, var(--_muted)); }
[part~=status] { font-size: .875em; margin-left: auto; }
[part~=error] { padding: .75rem 1rem; border: 1px solid var(--_error); border-radius: .5rem; }
section + section { margin-top: 1.25rem; }
h2 {
  display: flex; align-items: center; gap: .5rem; margin: 0 0 .5rem;
  font-weight: 600; letter-spacing: .06em; text-transform: uppercase;
}
[part~=count] { padding: 0 .45em; border-radius: 1em; border: 1px solid var(--presence-border, var(--_border)); }
ul {
  list-style: none; margin: 0; padding: 0; display: grid; gap: .25rem .75rem;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, var(--presence-row-width, 15rem)), 1fr));
}
li {
  display: flex; align-items: center; gap: .65rem; padding: .4rem .5rem; border-radius: .5rem;
  /* Thousands of rows: only those on screen are laid out and painted. */
  content-visibility: auto; contain-intrinsic-size: auto 3.25rem;
}
.avatar {
  position: relative; display: grid; place-items: center; flex: none; width: 2.25rem; height: 2.25rem;
  border-radius: 50%; font-weight: 600; color: #fff; background: var(--h);
}
.avatar > .dot {
  --presence-dot-size: .8rem; --_fill: var(--presence-bg, var(--_bg));
  position: absolute; right: -.1rem; bottom: -.1rem; box-shadow: 0 0 0 2px var(--_fill);
}
[data-state=offline] .avatar { filter: grayscale(.7); opacity: .75; }
.text { display: grid; min-width: 0; }
.text > * { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
[part~=name] { font-weight: 550; }
h2, .avatar, [part~=email], [part~=detail], [part~=custom-status] { font-size: .8125em; }
[data-hue="0"] { --h: #8250df; } [data-hue="1"] { --h: #0969da; } [data-hue="2"] { --h: #1b7c83; }
[data-hue="3"] { --h: #bf3989; } [data-hue="4"] { --h: #9a6700; } [data-hue="5"] { --h: #cf222e; }
`;

const sheets = new Map(); // CSS -> the stylesheet every shadow root shares

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const name in attributes) node.setAttribute(name, attributes[name]);
  node.append(...children);
  return node;
}

/** Sets text that differs: a live region speaks on every write. */
function write(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** A custom status: user input, so only ever set as text. */
function statusView() {
  const view = { emoji: el('span', { part: 'status-emoji' }), text: el('span', { part: 'status-text' }) };
  view.node = el('span', { part: 'custom-status' }, view.emoji, view.text);
  return view;
}

/** Elements showing "last seen", brought up to date by one ticker. */
const ticking = new Set();
setInterval(() => ticking.forEach((element) => element.tick()), 20_000);

/** What both elements share: the connection their attributes name. */
class PresenceElement extends HTMLElement {
  constructor(css) {
    super();
    if (!sheets.has(css)) sheets.set(css, new CSSStyleSheet()).get(css).replaceSync(PALETTE + css);
    this.attachShadow({ mode: 'open' }).adoptedStyleSheets = [sheets.get(css)];
  }

  connectedCallback() {
    this.connected = true;
    this.attach();
  }

  disconnectedCallback() {
    this.connected = false;
    this.source?.unsubscribe(this);
    this.source = null;
    ticking.delete(this);
  }

  attributeChangedCallback(name, old, value) {
    // Attributes present at creation are read by connectedCallback.
    if (old === value || !this.connected) return;
    if (name === 'server' || name === 'key') {
      this.disconnectedCallback();
      this.connectedCallback();
    } else this.refresh(null);
  }

  attach() {
    this.problem = '';
    try {
      const key = this.getAttribute('key')?.trim();
      if (!key) throw Error('No key attribute');
      const server = this.getAttribute('server');
      const url = new URL(server || import.meta.url, document.baseURI);
      const base = server ? (url.origin + url.pathname).replace(/\/+$/, '') : url.origin;
      const id = base + ' ' + key;
      if (!sources.has(id)) sources.set(id, new Source(id, base, key));
      this.source = sources.get(id);
      this.source.subscribe(this);
    } catch (e) {
      this.problem = e instanceof TypeError ? 'Bad server attribute' : e.message;
    }
    ticking.add(this);
    this.refresh(null);
  }

  get status() {
    const s = this.source;
    return s
      ? { status: s.status, error: s.error, reconnecting: s.reconnecting && s.ready }
      : { status: 'error', error: this.problem };
  }

  /** Shows `id`'s custom status (none if undefined) in `view`; its words. */
  showStatus(view, id) {
    const { text, emoji } = id === undefined || this.hasAttribute('hide-status') ? NO_STATUS : this.source.statusOf(id);
    write(view.emoji, emoji);
    write(view.text, text);
    view.emoji.toggleAttribute('hidden', !emoji);
    view.node.toggleAttribute('hidden', !(text || emoji));
    return [emoji, text].filter(Boolean).join(' ');
  }

  setState(state) {
    this.toggleAttribute('reconnecting', !!this.status.reconnecting);
    if (this.getAttribute('state') === state) return;
    this.setAttribute('state', state);
    this.dispatchEvent(new CustomEvent('statechange', { bubbles: true, detail: { state } }));
  }
}

/** `<presence-badge>`: one person's dot, with a text alternative. */
export class PresenceBadge extends PresenceElement {
  static observedAttributes = ['server', 'key', 'email', 'show-name', 'hide-status'];

  constructor() {
    super(BADGE_CSS);
    this.dot = el('span', { class: 'dot' });
    this.name = el('span', { part: 'name', 'aria-hidden': true });
    // Said by the label, with the rest.
    this.custom = statusView();
    this.custom.node.setAttribute('aria-hidden', true);
    this.label = el('span', { class: 'sr' });
    this.badge = el('span', { part: 'badge' }, this.dot, this.name, this.custom.node, this.label);
    this.shadowRoot.append(this.badge);
  }

  refresh(ids) {
    // Others' changes leave the badge as it is, unless the status moved.
    const { status, reconnecting } = this.status;
    const seen = status + reconnecting;
    if (ids && this.userId !== undefined && !ids.has(this.userId) && seen === this.seen) return;
    this.seen = seen;
    this.render();
  }

  tick() {
    if (this.getAttribute('state') === 'offline') this.render();
  }

  render() {
    const email = this.getAttribute('email')?.trim() || '';
    const s = this.source;
    const { status, error } = this.status;
    const user = s?.ready && status !== 'error' ? s.byEmail.get(email.toLowerCase()) : undefined;
    const name = user?.name ?? email;
    this.userId = user?.id;
    const said = this.showStatus(this.custom, this.userId);
    let state = 'unknown';
    let text = s?.ready ? `${email} is unknown` : `Presence of ${email} is loading`;
    if (status === 'error') {
      state = 'error';
      text = `Presence of ${email} is unavailable: ${error}`;
    } else if (user) {
      state = s.stateOf(user.id);
      const seen = state === 'offline' && s.lastSeen(user.id);
      text = `${name} is ${state}${seen ? `, last seen ${ago(s.now() - seen)}` : ''}${said && ` — ${said}`}`;
    }
    this.dot.dataset.state = state;
    this.dot.setAttribute('part', `dot dot-${state}`);
    this.name.toggleAttribute('hidden', !this.hasAttribute('show-name'));
    write(this.name, name);
    write(this.label, (this.badge.title = text));
    this.setState(state);
  }
}

/** `<presence-list>`: everyone by state and name; rows move, never made twice. */
export class PresenceList extends PresenceElement {
  static observedAttributes = ['server', 'key', 'hide-status'];

  constructor() {
    super(LIST_CSS);
    this.rows = new Map(); // id -> row
    this.query = '';
    this.filter = el('input', { part: 'filter', id: 'f', type: 'search', placeholder: 'Name or email' });
    this.filter.addEventListener('input', () => {
      cancelAnimationFrame(this.filtering);
      this.filtering = requestAnimationFrame(() => this.applyFilter());
    });
    this.statusLine = el('span', { part: 'status', role: 'status' });
    this.errorBox = el('p', { part: 'error', role: 'alert' });
    this.empty = el('p', { part: 'empty' });
    this.groups = {};
    const sections = STATES.map((state) => {
      const count = el('span', { part: 'count' });
      const dot = el('span', { part: `dot dot-${state}`, class: 'dot', 'data-state': state });
      const name = state[0].toUpperCase() + state.slice(1);
      const heading = el('h2', { part: 'group-heading', id: state }, dot, name, count);
      // The role keeps list semantics that `list-style: none` loses in Safari.
      const rows = el('ul', { part: 'rows', role: 'list' });
      const section = el('section', { part: `group group-${state}`, 'aria-labelledby': state }, heading, rows);
      this.groups[state] = { section, rows, count, members: [], shown: 0 };
      return section;
    });
    const label = el('label', { part: 'filter-label', for: 'f' }, 'Filter people');
    const bar = el('div', { class: 'bar' }, label, this.filter, this.statusLine);
    this.body = el('div', {}, ...sections, this.empty);
    this.shadowRoot.append(el('div', { part: 'list' }, bar, this.errorBox, this.body));
  }

  refresh(ids) {
    const { status, error, reconnecting } = this.status;
    const state = status === 'error' ? 'error' : this.source?.ready ? 'live' : 'loading';
    this.errorBox.toggleAttribute('hidden', state !== 'error');
    write(this.errorBox, `Presence is unavailable: ${error}`);
    this.body.toggleAttribute('hidden', state !== 'live');
    if (state === 'live') {
      if (!ids || !this.rendered) this.reconcile();
      else ids.forEach((id) => this.updateRow(id));
      this.rendered = true;
      this.counts();
    }
    this.setState(state);
    write(this.statusLine, state === 'loading' ? 'Loading…' : reconnecting ? 'Reconnecting…' : this.summary);
  }

  /** Rows in line with the people, after a snapshot or new people. */
  reconcile() {
    const s = this.source;
    for (const [id, row] of this.rows) {
      if (s.users.get(id)?.bot !== false) {
        row.li.remove();
        this.rows.delete(id);
      }
    }
    for (const group of Object.values(this.groups)) group.members = [];
    for (const user of s.users.values()) {
      if (user.bot) continue;
      if (!this.rows.has(user.id)) this.rows.set(user.id, this.makeRow());
      const row = this.rows.get(user.id);
      this.fill(row, user);
      row.state = s.stateOf(user.id);
      this.groups[row.state].members.push(row);
      this.describe(row);
    }
    for (const group of Object.values(this.groups)) {
      group.members.sort(compare);
      // Appending a row moves it: the group comes out in order.
      group.rows.append(...group.members.map((row) => row.li));
    }
    this.applyFilter();
  }

  makeRow() {
    const row = {
      dot: el('span', { class: 'dot' }),
      initials: el('span'),
      name: el('span', { part: 'name' }),
      email: el('span', { part: 'email' }),
      detail: el('span', { part: 'detail' }),
      said: el('span', { class: 'sr' }),
      custom: statusView(),
    };
    row.avatar = el('span', { part: 'avatar', class: 'avatar', 'aria-hidden': true }, row.initials, row.dot);
    const text = el('span', { class: 'text' }, row.name, row.custom.node, row.email, row.detail, row.said);
    row.li = el('li', {}, row.avatar, text);
    return row;
  }

  fill(row, user) {
    if (row.user === user) return;
    row.user = user;
    row.id = user.id;
    row.key = (user.name + '\n' + user.email).toLowerCase();
    row.name.textContent = user.name;
    row.email.textContent = user.email;
    row.li.dataset.email = user.email;
    const words = user.name.split(/\s+/).filter(Boolean);
    row.initials.textContent = (words.length > 1 ? words[0][0] + words.at(-1)[0] : user.name.slice(0, 2)).toUpperCase();
    let hash = 0;
    for (const c of user.email) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
    row.avatar.dataset.hue = hash % 6;
  }

  describe(row) {
    const s = this.source;
    const { state, li, dot } = row;
    li.dataset.state = dot.dataset.state = state;
    li.setAttribute('part', `row row-${state}`);
    dot.setAttribute('part', `dot dot-${state}`);
    const seen = state === 'offline' && s.lastSeen(row.id);
    const detail = seen ? `Last seen ${ago(s.now() - seen)}` : '';
    write(row.detail, detail);
    write(row.said, `, ${state}`);
    // In full on hover: a long one is cut to the column.
    row.custom.node.title = this.showStatus(row.custom, row.id);
  }

  /** One person's presence changed: their row moves if their state did. */
  updateRow(id) {
    const row = this.rows.get(id);
    if (!row) return; // someone new: the people are being fetched again
    const state = this.source.stateOf(id);
    if (state !== row.state) {
      const from = this.groups[row.state];
      const to = this.groups[state];
      from.members.splice(lowerBound(from.members, row), 1);
      const i = lowerBound(to.members, row);
      to.members.splice(i, 0, row);
      to.rows.insertBefore(row.li, to.members[i + 1]?.li ?? null);
      from.shown -= row.match;
      to.shown += row.match;
      row.state = state;
    }
    this.describe(row);
  }

  tick() {
    if (this.rendered) this.groups.offline.members.forEach((row) => this.describe(row));
  }

  applyFilter() {
    this.query = this.filter.value.trim().toLowerCase();
    for (const group of Object.values(this.groups)) {
      group.shown = 0;
      for (const row of group.members) {
        row.match = row.key.includes(this.query);
        row.li.toggleAttribute('hidden', !row.match);
        group.shown += row.match;
      }
    }
    this.counts();
  }

  counts() {
    let shown = 0;
    let total = 0;
    for (const group of Object.values(this.groups)) {
      write(group.count, `${group.shown}`);
      group.section.toggleAttribute('hidden', !group.shown);
      shown += group.shown;
      total += group.members.length;
    }
    const people = `${total} ${total === 1 ? 'person' : 'people'}`;
    this.summary = this.query ? `${shown} of ${people}` : people;
    this.empty.toggleAttribute('hidden', shown > 0);
    write(this.empty, this.query ? `No one matches “${this.filter.value.trim()}”.` : 'No one yet.');
    if (this.getAttribute('state') === 'live' && !this.hasAttribute('reconnecting')) write(this.statusLine, this.summary);
  }
}

// Emails are unique: lowerBound finds a row itself.
function compare(a, b) {
  return collator.compare(a.user.name, b.user.name) || collator.compare(a.user.email, b.user.email);
}

function lowerBound(rows, row) {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compare(rows[mid], row) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

for (const [name, element] of [['presence-badge', PresenceBadge], ['presence-list', PresenceList]]) {
  if (!customElements.get(name)) customElements.define(name, element);
}
