// app.js - the console's shell: a router over /ui/ paths (the History API,
// so every page's state is a shareable URL), the section navigation, and
// signing in with the admin key. Each page is a module in pages/ whose
// default export renders into the main element (docs/internals/console.md
// describes the contract).

import { adminKey, api, ApiError, setAdminKey } from './api.js';
import { failure, loading } from './ui.js';

// [pattern, page module, section]; the first match wins. ":x" is a path
// segment given to the page as params.x (URI-decoded); a last ":x*" takes
// the rest of the path, slashes included (prompt names have them).
const ROUTES = [
  ['/ui/', 'overview', 'overview'],
  ['/ui/traces', 'traces', 'traces'],
  ['/ui/traces/:id', 'trace', 'traces'],
  ['/ui/prompts', 'prompts', 'prompts'],
  ['/ui/prompts/:name*', 'prompt', 'prompts'],
  ['/ui/evals', 'evals', 'evals'],
  ['/ui/evals/compare', 'eval-compare', 'evals'],
  ['/ui/evals/:id', 'eval', 'evals'],
  ['/ui/guardrails', 'guardrails', 'guardrails'],
];

function match(path) {
  if (path === '/ui') path = '/ui/';
  const segs = path.replace(/\/+$/, '').split('/');
  for (const [pattern, page, section] of ROUTES) {
    const ps = pattern.replace(/\/+$/, '').split('/');
    const rest = ps[ps.length - 1].endsWith('*');
    if (rest ? segs.length < ps.length : ps.length !== segs.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < ps.length; i++) {
      if (ps[i].startsWith(':')) {
        const name = ps[i].slice(1).replace(/\*$/, '');
        const raw = rest && i === ps.length - 1 ? segs.slice(i).join('/') : segs[i];
        try { params[name] = decodeURIComponent(raw); } catch { ok = false; }
        if (raw === '') ok = false;
      } else if (ps[i] !== segs[i]) ok = false;
      if (!ok) break;
    }
    if (ok) return { page, section, params };
  }
  return null;
}

const view = () => document.getElementById('view');
let current = null; // { controller, timers }

function leave() {
  if (!current) return;
  current.controller.abort();
  current.timers.forEach((t) => clearInterval(t));
  current = null;
}

async function render() {
  leave();
  const url = new URL(window.location.href);
  const m = match(url.pathname);
  const root = view();
  document.querySelectorAll('.mainnav a').forEach((a) => {
    if (m && a.dataset.section === m.section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  });
  if (!m) {
    document.title = 'Not found · genaiops';
    failure(root, new Error(`There is no console page at ${url.pathname}.`));
    return;
  }
  const controller = new AbortController();
  const me = { controller, timers: [] };
  current = me;
  const ctx = {
    root,
    params: m.params,
    query: url.searchParams,
    signal: controller.signal,
    // Changes the URL's query (keys with '' or null are removed) without
    // rendering again; push adds a history entry.
    setQuery(patch, { push = false } = {}) {
      const u = new URL(window.location.href);
      for (const [k, v] of Object.entries(patch)) {
        if (v === null || v === undefined || v === '') u.searchParams.delete(k);
        else u.searchParams.set(k, String(v));
      }
      if (u.href !== window.location.href) history[push ? 'pushState' : 'replaceState'](null, '', u);
      ctx.query = u.searchParams;
    },
    navigate: (to, opts) => go(to, opts),
    // setInterval that stops when the page is left.
    every(ms, fn) {
      const t = setInterval(() => { if (!controller.signal.aborted) fn(); }, ms);
      me.timers.push(t);
      return () => clearInterval(t);
    },
    title(t) { document.title = `${t} · genaiops`; },
    active: () => current === me && !controller.signal.aborted,
  };
  ctx.title(m.section[0].toUpperCase() + m.section.slice(1));
  loading(root);
  try {
    const mod = await import(`./pages/${m.page}.js`);
    if (current !== me) return;
    await mod.default(ctx);
  } catch (e) {
    if (e.name === 'AbortError' || current !== me) return;
    console.warn('page failed:', e);
    failure(root, e, () => render());
  }
}

function go(to, { replace = false } = {}) {
  const u = new URL(to, window.location.href);
  if (u.origin !== window.location.origin || !u.pathname.startsWith('/ui')) {
    window.location.href = u.href;
    return;
  }
  history[replace ? 'replaceState' : 'pushState'](null, '', u);
  render();
  view().focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

// In-app links: plain left clicks on /ui/ links route here; modified
// clicks, other targets and downloads are the browser's.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const u = new URL(a.href, window.location.href);
  if (u.origin !== window.location.origin || !u.pathname.startsWith('/ui')) return;
  e.preventDefault();
  go(u.href);
});
window.addEventListener('popstate', () => render());
window.addEventListener('genaiops:navigate', (e) => go(e.detail.url, e.detail));

// "/" focuses the page's search box, like most consoles.
document.addEventListener('keydown', (e) => {
  if (e.key !== '/' || e.target.closest('input, textarea, select, [contenteditable]')) return;
  const box = document.querySelector('[data-search]');
  if (box) { e.preventDefault(); box.focus(); }
});

// ---- signing in -----------------------------------------------------------

const dialog = () => document.getElementById('sign-in-dialog');

function showSession(state) {
  const label = document.getElementById('session-state');
  const button = document.getElementById('sign-in');
  label.textContent = state.text;
  label.title = state.title || '';
  button.textContent = adminKey() ? 'Sign out' : 'Sign in';
  button.hidden = !adminKey() && state.open;
}

// Asks the server who we are: open (no admin key), signed in, or not.
async function checkSession() {
  try {
    const s = await api('/api/v1/status');
    showSession({ text: `${s.name} ${s.version}`, title: adminKey() ? 'signed in with the admin key' : 'this server has no admin key', open: !adminKey() });
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showSession({ text: adminKey() ? 'the admin key was refused' : 'read-only: sign in', open: false });
      return false;
    }
    showSession({ text: 'server unreachable', open: false });
    return true;
  }
}

function openSignIn(message = '') {
  const d = dialog();
  document.getElementById('sign-in-error').textContent = message;
  if (!d.open) d.showModal();
  document.getElementById('sign-in-key').focus();
}

let asked = false;
window.addEventListener('genaiops:unauthorized', () => {
  if (asked) return; // once per page load: the pages show their own error too
  asked = true;
  openSignIn(adminKey() ? 'The key was refused. Enter the server\'s admin key.' : '');
});

function setupSignIn() {
  document.getElementById('sign-in').addEventListener('click', () => {
    if (adminKey()) {
      setAdminKey('');
      checkSession();
      render();
    } else openSignIn();
  });
  document.getElementById('sign-in-cancel').addEventListener('click', () => dialog().close());
  document.getElementById('sign-in-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = document.getElementById('sign-in-key');
    setAdminKey(input.value.trim());
    if (await checkSession()) {
      input.value = '';
      dialog().close();
      asked = false;
      render();
    } else {
      document.getElementById('sign-in-error').textContent = 'The server refused this key.';
      setAdminKey('');
    }
  });
}

setupSignIn();
checkSession();
render();

