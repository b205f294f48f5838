// prompts.js - /ui/prompts: the prompt registry as a list (GET
// /api/v1/prompts): name, type, latest version, the labels with the
// versions they point at, and when the prompt last changed. The name-prefix
// filter lives in the URL (?prefix=), goes to the API as it is, and the
// rows open the prompt's page with Enter or a click.

import { api, qs } from '../api.js';
import { badge, debounce, empty, failure, field, fmt, h, loading, put, table } from '../ui.js';

// The page URL of one prompt: the name as one percent-encoded segment (it
// may hold '/' and '.').
export function promptHref(name, query = {}) {
  return `/ui/prompts/${encodeURIComponent(name)}${qs(query)}`;
}

// "production v2" badges, sorted by label.
export function labelBadges(labels) {
  const entries = Object.entries(labels || {}).sort((a, b) => a[0].localeCompare(b[0]));
  if (!entries.length) return h('span', { class: 'muted' }, 'none');
  return h('span', { class: 'badges' }, entries.map(([l, v]) => badge(`${l} → v${v}`, l === 'production' ? 'ok' : 'info')));
}

const COLUMNS = [
  { label: 'Name', value: (p) => h('a', { href: promptHref(p.name), class: 'mono' }, p.name) },
  { label: 'Type', value: (p) => badge(p.type) },
  { label: 'Latest', class: 'num', value: (p) => `v${p.latest_version}` },
  { label: 'Labels', value: (p) => labelBadges(p.labels) },
  { label: 'Updated', value: (p) => h('span', { class: 'nowrap', title: fmt.time(p.updated_at || p.updated_ns) }, fmt.ago(p.updated_at || p.updated_ns)) },
];

export default async function prompts(ctx) {
  ctx.title('Prompts');
  const { root } = ctx;
  const results = h('div', { class: 'table-wrap' });
  const count = h('span', { class: 'muted pr-count', role: 'status' });
  const search = h('input', {
    name: 'prefix', type: 'search', size: 28, placeholder: 'support/', 'data-search': true,
    value: ctx.query.get('prefix') || '', 'aria-label': 'Name prefix',
    oninput: debounce((e) => { ctx.setQuery({ prefix: e.target.value.trim() }); load(); }, 250),
  });

  put(root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Prompts'),
        h('p', { class: 'sub' }, 'The versioned prompt registry: every prompt, its latest version and where its labels point.'))),
    h('div', { class: 'toolbar card' }, field('Name starts with', search),
      h('button', { type: 'button', class: 'btn', onclick: () => { search.value = ''; ctx.setQuery({ prefix: '' }); load(); } }, 'Clear'),
      count),
    h('div', { class: 'card' }, results));

  async function load() {
    const prefix = ctx.query.get('prefix') || '';
    loading(results, 'Loading prompts');
    count.textContent = '';
    try {
      const page = await api(`/api/v1/prompts${qs({ prefix })}`, { signal: ctx.signal });
      if (!ctx.active()) return;
      const rows = page.data || [];
      if (!rows.length) {
        if (prefix) empty(results, `No prompt name starts with “${prefix}”`, 'Shorten the prefix, or clear it.');
        else {
          empty(results, 'No prompts yet',
            'Create one with `genaiops prompt push prompts/` (a folder of prompt files) or POST /api/v1/prompts '
            + '({"name": "support/answer", "messages": [...]}); see docs/prompts.md.');
        }
        return;
      }
      count.textContent = rows.length === 1 ? '1 prompt' : `${rows.length} prompts`;
      put(results, table({ columns: COLUMNS, rows, href: (p) => promptHref(p.name) }));
    } catch (e) {
      if (e.name === 'AbortError') return;
      failure(results, e, load);
    }
  }

  await load();
}
