// traces.js - /ui/traces: the trace search of GET /api/v1/traces with its
// filters in the URL, cursor pages, and a live tail that polls for new
// traces and puts them on top.

import { api, qs } from '../api.js';
import { debounce, empty, failure, field, fmt, h, loading, put, select, statusBadge, table } from '../ui.js';

// The API's filters, in the order the toolbar shows them.
const FILTERS = ['q', 'model', 'provider', 'deployment', 'key', 'status', 'from', 'to', 'min_latency_ms', 'min_cost'];

function filtersOf(query) {
  const f = {};
  for (const k of FILTERS) if (query.get(k)) f[k] = query.get(k);
  return f;
}

const COLUMNS = [
  { label: 'Time', value: (t) => h('span', { class: 'nowrap', title: t.start_time }, fmt.time(t.start_time)) },
  { label: 'Model', value: (t) => h('span', {}, t.request_model || '–', t.deployment ? h('span', { class: 'muted' }, ` · ${t.deployment}`) : null) },
  { label: 'Provider', value: (t) => t.provider || '–' },
  { label: 'Status', value: (t) => h('span', {}, statusBadge(t.status), t.error_type ? h('span', { class: 'muted' }, ` ${t.error_type}`) : null) },
  { label: 'Latency', class: 'num', value: (t) => fmt.ms(t.duration_ms) },
  { label: 'TTFT', class: 'num', value: (t) => (t.stream ? fmt.ms(t.ttft_ms) : '–') },
  { label: 'Tokens in/out', class: 'num', value: (t) => `${fmt.int(t.input_tokens)} / ${fmt.int(t.output_tokens)}` },
  { label: 'Cost', class: 'num', value: (t) => fmt.usd(t.cost_usd) },
  { label: 'Prompt', value: (t) => (t.prompt_name ? `${t.prompt_name} v${t.prompt_version}` : '') },
  { label: 'Request id', value: (t) => h('span', { class: 'mono muted' }, t.request_id || '') },
];

export default async function traces(ctx) {
  ctx.title('Traces');
  const { root } = ctx;
  const models = await api('/v1/models', { signal: ctx.signal }).catch(() => ({ data: [] }));
  const listId = 'trace-models';
  const results = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });
  const liveState = h('span', { class: 'muted' });
  let live = ctx.query.get('live') === '1';
  let stopLive = null;
  let shown = []; // the traces on screen, newest first
  const seen = new Set();

  const input = (name, placeholder, attrs = {}) => h('input', {
    name, placeholder, value: ctx.query.get(name) || '', ...attrs,
    oninput: debounce((e) => { ctx.setQuery({ [name]: e.target.value.trim(), cursor: '' }); load(); }, 300),
  });
  const statusSel = select([['', 'any'], ['ok', 'ok (< 400)'], ['error', 'errors (>= 400)'], ['429', '429'], ['500', '500'], ['502', '502'], ['504', '504']],
    ctx.query.get('status') || '', (v) => { ctx.setQuery({ status: v, cursor: '' }); load(); }, { name: 'status' });
  const liveBtn = h('button', { type: 'button', class: ['btn', live && 'active'], 'aria-pressed': String(live), onclick: () => setLive(!live) }, 'Live tail');
  const clearBtn = h('button', { type: 'button', class: 'btn', onclick: () => { ctx.navigate('/ui/traces'); } }, 'Clear filters');

  put(root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Traces'), h('p', { class: 'sub' }, 'Every request through the gateway, newest first.')),
      h('div', { class: 'toolbar' }, liveState, liveBtn)),
    h('datalist', { id: listId }, (models.data || []).map((m) => h('option', { value: m.id }))),
    h('div', { class: 'toolbar card' },
      field('Search', input('q', 'text, request id, model…', { 'data-search': true, type: 'search', size: 22 })),
      field('Model', input('model', 'any', { list: listId, size: 14 })),
      field('Provider', input('provider', 'any', { size: 10 })),
      field('Deployment', input('deployment', 'any', { size: 10 })),
      field('Status', statusSel),
      field('From', input('from', 'RFC 3339 or unix ms', { size: 18 })),
      field('To', input('to', 'RFC 3339 or unix ms', { size: 18 })),
      field('Min latency (ms)', input('min_latency_ms', '', { size: 6, inputmode: 'decimal' })),
      clearBtn),
    h('div', { class: 'card' }, results, pager));

  function render() {
    if (shown.length === 0) {
      const any = Object.keys(filtersOf(ctx.query)).length > 0;
      empty(results, any ? 'No trace matches these filters' : 'No traces yet',
        any ? 'Loosen a filter, or clear them.' : 'Send a request to the gateway (for example model "sim/echo" on /v1/chat/completions) and it appears here.');
      return;
    }
    put(results, table({
      columns: COLUMNS,
      rows: shown,
      href: (t) => `/ui/traces/${t.trace_id}`,
      rowClass: (t) => [t.status >= 400 ? 'row-bad' : '', t.fresh ? 'row-good' : ''].filter(Boolean).join(' '),
    }));
  }

  function renderPager(next) {
    const cursor = ctx.query.get('cursor');
    put(pager,
      cursor ? h('button', { type: 'button', class: 'btn', onclick: () => { ctx.setQuery({ cursor: '' }, { push: true }); load(); } }, 'Newest') : null,
      next ? h('button', { type: 'button', class: 'btn', onclick: () => { ctx.setQuery({ cursor: next }, { push: true }); load(); } }, 'Older →') : null);
  }

  async function load() {
    loading(results, 'Loading traces');
    pager.replaceChildren();
    const params = { ...filtersOf(ctx.query), limit: 50, cursor: ctx.query.get('cursor') || '' };
    try {
      const page = await api(`/api/v1/traces${qs(params)}`, { signal: ctx.signal });
      if (!ctx.active()) return;
      shown = page.data;
      seen.clear();
      shown.forEach((t) => seen.add(t.trace_id));
      render();
      renderPager(page.next_cursor);
    } catch (e) {
      if (e.name === 'AbortError') return;
      failure(results, e, load);
    }
  }

  // Live tail: the first page of the same filters every 2 s; traces not on
  // screen yet go on top (marked), the list keeps its 200 newest.
  async function poll() {
    try {
      const page = await api(`/api/v1/traces${qs({ ...filtersOf(ctx.query), limit: 50 })}`, { signal: ctx.signal });
      if (!ctx.active() || !live) return;
      const fresh = page.data.filter((t) => !seen.has(t.trace_id));
      shown.forEach((t) => { t.fresh = false; });
      fresh.forEach((t) => { t.fresh = true; seen.add(t.trace_id); });
      if (fresh.length) {
        shown = [...fresh, ...shown].slice(0, 200);
        render();
      }
      liveState.replaceChildren(h('span', { class: 'live-dot' }), `live · updated ${fmt.clock(Date.now())}`);
    } catch (e) {
      if (e.name !== 'AbortError') liveState.textContent = `live tail paused: ${e.message}`;
    }
  }

  function setLive(on) {
    live = on;
    liveBtn.classList.toggle('active', on);
    liveBtn.setAttribute('aria-pressed', String(on));
    ctx.setQuery({ live: on ? '1' : '', cursor: on ? '' : ctx.query.get('cursor') });
    if (stopLive) { stopLive(); stopLive = null; }
    liveState.textContent = '';
    if (on) {
      load().then(poll);
      stopLive = ctx.every(2000, poll);
    }
  }

  await load();
  if (live) setLive(true);
}
