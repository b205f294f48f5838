// overview.js - /ui/ (the console's home): the traffic of a time range from
// GET /api/v1/stats/overview. Tiles for requests, error rate, p50/p95
// latency, p50 time to first token, tokens and cost; SVG charts over time
// (requests and errors, latency, TTFT, tokens, cost), a line per group when
// grouped; a table of the groups. A click on a group or on a chart's bucket
// opens /ui/traces with the matching filters (model / deployment /
// provider, from, to).
//
// State in the URL: from and to (a preset such as from=1h, or a custom
// range of RFC 3339 times), by (none, model, deployment, provider), and the
// optional model / deployment / provider filters. The range picker is also
// used by the guardrails page (rangePicker, below).

import { api, qs } from '../api.js';
import { chart } from '../chart.js';
import { card, empty, failure, field, fmt, h, loading, put, select, table, tile } from '../ui.js';

export const PRESETS = [['15m', '15 min'], ['1h', '1 hour'], ['24h', '24 hours'], ['7d', '7 days']];
const DEFAULT_FROM = '24h';
const GROUPS = [['none', 'none'], ['model', 'model'], ['deployment', 'deployment'], ['provider', 'provider']];
const FILTERS = ['model', 'deployment', 'provider'];
// counts on an axis: 1.2k, but 0.5 rather than a second "1"
export const count = (v) => (Number.isInteger(v) ? fmt.short(v) : fmt.num(v, 1));

// The range of a query: { from, to, preset } (preset: one of PRESETS or null).
export function rangeOf(query) {
  const from = query.get('from') || '';
  const to = query.get('to') || '';
  if (!from && !to) return { from: DEFAULT_FROM, to: '', preset: DEFAULT_FROM };
  const preset = !to && PRESETS.some(([v]) => v === from) ? from : null;
  return { from: from || DEFAULT_FROM, to, preset };
}

// "2024-11-21T09:30:00Z" (or unix ms) -> the value of a datetime-local input
// in the browser's zone; '' when it is not a time.
function localInput(t) {
  if (!t || /^\d+[smhdw]$/.test(t) || t === 'now') return '';
  const d = /^\d+$/.test(t) ? new Date(Number(t)) : new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// The range picker: preset buttons and a custom from / to. onChange(patch)
// gets the query patch ({from, to}); the caller puts it in the URL and
// reloads.
export function rangePicker(query, onChange) {
  const r = rangeOf(query);
  const fromIn = h('input', { type: 'datetime-local', name: 'from', value: r.preset ? '' : localInput(r.from), 'aria-label': 'from' });
  const toIn = h('input', { type: 'datetime-local', name: 'to', value: localInput(r.to), 'aria-label': 'to' });
  const apply = () => {
    if (!fromIn.value) { fromIn.focus(); return; }
    const iso = (v) => (v ? new Date(v).toISOString() : '');
    onChange({ from: iso(fromIn.value), to: iso(toIn.value) });
  };
  const custom = h('form', { class: 'toolbar range-custom', onsubmit: (e) => { e.preventDefault(); apply(); } },
    field('From', fromIn), field('To (empty: now)', toIn), h('button', { type: 'submit', class: 'btn' }, 'Apply'));
  return h('div', { class: 'toolbar' },
    h('div', { class: 'btn-group', role: 'group', 'aria-label': 'time range' },
      PRESETS.map(([v, label]) => h('button', {
        type: 'button', class: ['btn', r.preset === v && 'active'], 'aria-pressed': String(r.preset === v),
        dataset: { range: v }, onclick: () => onChange({ from: v === DEFAULT_FROM ? '' : v, to: '' }),
      }, label))),
    custom);
}

// The traces page for a window (and a filter): from/to are unix ms or RFC 3339.
export function tracesLink(from, to, filter = {}) {
  return `/ui/traces${qs({ ...filter, from, to })}`;
}

const isoMs = (ms) => new Date(ms).toISOString();

// The filter that selects a group's traces, or null when none can ("(other)",
// "(none)").
function groupFilter(by, key) {
  if (key === '(other)' || key === '(none)') return null;
  return { model: { model: key }, deployment: { deployment: key }, provider: { provider: key } }[by] || null;
}

let renders = 0; // the latest render wins when reloads overlap

export default async function overview(ctx) {
  const mine = ++renders;
  ctx.title('Overview');
  const { root } = ctx;
  const body = h('div', {});
  const by = GROUPS.some(([v]) => v === ctx.query.get('by')) ? ctx.query.get('by') : 'none';
  const filters = {};
  for (const k of FILTERS) if (ctx.query.get(k)) filters[k] = ctx.query.get(k);

  const reload = (patch) => { ctx.setQuery(patch, { push: true }); overview(ctx); };
  put(root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Overview'),
        h('p', { class: 'sub' }, 'Requests through the gateway: volume, errors, latency, tokens and cost.')),
      h('div', { class: 'toolbar' },
        field('Group by', select(GROUPS, by, (v) => reload({ by: v === 'none' ? '' : v }), { name: 'by' })),
        h('button', { type: 'button', class: 'btn', onclick: () => overview(ctx) }, 'Refresh'))),
    h('div', { class: 'card' }, rangePicker(ctx.query, reload),
      Object.keys(filters).length ? h('p', { class: 'muted' }, 'Only ',
        Object.entries(filters).map(([k, v]) => `${k} = ${v}`).join(', '), ' · ',
        h('a', { href: `/ui/${qs({ from: ctx.query.get('from'), to: ctx.query.get('to'), by: by === 'none' ? '' : by })}` }, 'show all')) : null),
    body);

  const r = rangeOf(ctx.query);
  loading(body, 'Loading statistics');
  let s;
  try {
    s = await api(`/api/v1/stats/overview${qs({ from: r.from, to: r.to, by: by === 'none' ? '' : by, ...filters })}`, { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError' || !ctx.active() || mine !== renders) return;
    failure(body, e, () => overview(ctx));
    return;
  }
  if (!ctx.active() || mine !== renders) return;
  render(ctx, body, s, by, filters);
}

function render(ctx, body, s, by, filters) {
  const t = s.totals;
  const step = s.bucket_s * 1000;
  const times = s.series.map((b) => b.t);
  const rangeText = `${fmt.time(s.from)} – ${fmt.time(s.to)}, in buckets of ${bucketText(s.bucket_s)}`;
  if (t.requests === 0) {
    put(body, h('p', { class: 'muted' }, rangeText), h('div', { class: 'card' }, h('div', {})));
    empty(body.lastChild, 'No requests in this range',
      'Pick a longer range, or send a request to the gateway (for example model "sim/echo" on /v1/chat/completions).');
    return;
  }
  const open = (from, to, extra = {}) => ctx.navigate(tracesLink(isoMs(from), isoMs(to), { ...filters, ...extra }));
  const tiles = h('div', { class: 'tiles', 'aria-label': 'totals' },
    tileOf('requests', 'Requests', fmt.int(t.requests), `${fmt.int(t.errors)} ${t.errors === 1 ? 'error' : 'errors'}`),
    tileOf('error-rate', 'Error rate', fmt.pct(t.error_rate), 'status 400 and above'),
    tileOf('latency-p50', 'Latency p50', fmt.ms(t.latency_ms.p50)),
    tileOf('latency-p95', 'Latency p95', fmt.ms(t.latency_ms.p95)),
    tileOf('ttft-p50', 'TTFT p50', fmt.ms(t.ttft_ms.p50), t.ttft_ms.p50 === null ? 'no streamed requests' : `p95 ${fmt.ms(t.ttft_ms.p95)}`),
    tileOf('tokens', 'Tokens', fmt.short(t.input_tokens + t.output_tokens), `${fmt.short(t.input_tokens)} in · ${fmt.short(t.output_tokens)} out`),
    tileOf('cost', 'Cost', fmt.usd(t.cost_usd)));

  const grouped = by !== 'none' && s.groups.length > 0;
  const mk = (title, series, format, kind = 'line') => card(null, chart({
    title, series, times, step, kind, format,
    onClick: (from, to) => open(from, to),
  }));
  const per = (pick) => s.groups.map((g) => ({ name: g.key, values: g.series.map(pick) }));
  const charts = grouped ? [
    mk('Requests', per((b) => b.requests), count),
    mk('Errors', per((b) => b.errors), count),
    mk('Latency p95', per((b) => b.latency_p95), fmt.ms),
    mk('Time to first token p50', per((b) => b.ttft_p50), fmt.ms),
    mk('Tokens (in + out)', per((b) => b.input_tokens + b.output_tokens), count),
    mk('Cost', per((b) => b.cost_usd), fmt.usd),
  ] : [
    mk('Requests and errors', [
      { name: 'requests', values: s.series.map((b) => b.requests) },
      { name: 'errors', values: s.series.map((b) => b.errors), color: '#dc2626' }], count),
    mk('Latency', [
      { name: 'p50', values: s.series.map((b) => b.latency_p50) },
      { name: 'p95', values: s.series.map((b) => b.latency_p95), color: '#d97706' }], fmt.ms),
    mk('Time to first token', [
      { name: 'p50', values: s.series.map((b) => b.ttft_p50) },
      { name: 'p95', values: s.series.map((b) => b.ttft_p95), color: '#d97706' }], fmt.ms),
    mk('Tokens', [
      { name: 'input', values: s.series.map((b) => b.input_tokens) },
      { name: 'output', values: s.series.map((b) => b.output_tokens), color: '#16a34a' }], count, 'bars'),
    mk('Cost', [{ name: 'cost', values: s.series.map((b) => b.cost_usd) }], fmt.usd),
  ];

  let groups = null;
  if (by !== 'none') {
    const tbl = s.groups.length === 0 ? h('p', { class: 'muted' }, 'No groups.') : table({
      columns: [
        { label: by[0].toUpperCase() + by.slice(1), value: (g) => h('span', { class: groupFilter(by, g.key) ? '' : 'muted' }, g.key) },
        { label: 'Requests', class: 'num', value: (g) => fmt.int(g.totals.requests) },
        { label: 'Errors', class: 'num', value: (g) => fmt.int(g.totals.errors) },
        { label: 'Error rate', class: 'num', value: (g) => fmt.pct(g.totals.error_rate) },
        { label: 'p50', class: 'num', value: (g) => fmt.ms(g.totals.latency_ms.p50) },
        { label: 'p95', class: 'num', value: (g) => fmt.ms(g.totals.latency_ms.p95) },
        { label: 'TTFT p50', class: 'num', value: (g) => fmt.ms(g.totals.ttft_ms.p50) },
        { label: 'Tokens in/out', class: 'num', value: (g) => `${fmt.short(g.totals.input_tokens)} / ${fmt.short(g.totals.output_tokens)}` },
        { label: 'Cost', class: 'num', value: (g) => fmt.usd(g.totals.cost_usd) },
      ],
      rows: s.groups,
      href: (g) => {
        const f = groupFilter(by, g.key);
        return f ? tracesLink(s.from, s.to, { ...filters, ...f }) : null;
      },
    });
    groups = card(`By ${by}`, h('div', { class: 'table-wrap' }, tbl),
      h('p', { class: 'muted' }, 'The 10 busiest, then the rest as (other). Enter or a click opens their traces.'));
  }

  put(body,
    h('p', { class: 'muted' }, rangeText, ' · ', h('a', { href: tracesLink(s.from, s.to, filters) }, 'see the traces')),
    tiles,
    groups,
    h('div', { class: 'grid' }, charts),
    h('p', { class: 'muted' }, 'Percentiles are within 1% of the exact value. Click a bucket of a chart to see its traces.'));
}

function tileOf(key, label, value, note) {
  const el = tile(label, value, note);
  el.dataset.tile = key;
  return el;
}

// "15 min", "6 h" for a bucket of secs seconds.
export function bucketText(secs) {
  if (secs % 86400 === 0) return `${secs / 86400} d`;
  if (secs % 3600 === 0) return `${secs / 3600} h`;
  if (secs % 60 === 0) return `${secs / 60} min`;
  return `${secs} s`;
}
