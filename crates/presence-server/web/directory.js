/*
 * The who's-online page (`/directory#key=EMBED_KEY`): the live list of the
 * whole organization, for the embed key in the URL's fragment. A fragment
 * never leaves the browser, so the key is in no request line, log or
 * Referer; the components send it in a header. The page's policy allows
 * no inline style, so its look is a constructed stylesheet adopted here.
 */
import './presence.js';

const sheet = new CSSStyleSheet();
sheet.replaceSync(`
:root {
  color-scheme: light dark;
  --page-bg: #f6f8fa; --card-bg: #fff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --page-bg: #010409; --card-bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; }
}
body {
  margin: 0; min-height: 100vh; display: flex; flex-direction: column; align-items: center;
  background: var(--page-bg); color: var(--fg); line-height: 1.5;
}
header, main, footer { box-sizing: border-box; width: min(100% - 2rem, 72rem); }
header { padding: 2.25rem .25rem 1.25rem; }
h1 { margin: 0 0 .25rem; font-size: 1.75rem; letter-spacing: -.01em; }
header p { margin: 0; max-width: 44rem; color: var(--muted); }
.word { font-weight: 600; color: var(--fg); }
main {
  flex: 1; padding: 1.5rem; background: var(--card-bg);
  border: 1px solid var(--line); border-radius: .875rem; box-shadow: 0 1px 3px #1f232814;
}
presence-list { --presence-bg: var(--card-bg); --presence-fg: var(--fg); --presence-muted: var(--muted); }
code { font-size: .875em; padding: .1em .35em; border-radius: .3em; background: var(--page-bg); }
footer { padding: 1rem .25rem 2rem; font-size: .8125rem; color: var(--muted); }
footer p { margin: 0; }
`);
document.adoptedStyleSheets = [sheet];

const main = document.getElementById('main');
const list = document.createElement('presence-list');
list.hidden = true;
main.append(list);

/** Shows the list for the key in the fragment, or says how to give one. */
function show() {
  const key = new URLSearchParams(location.hash.slice(1)).get('key');
  document.getElementById('help').hidden = !!key;
  list.hidden = !key;
  if (key) list.setAttribute('key', key);
  else list.removeAttribute('key');
}

addEventListener('hashchange', show);
show();
