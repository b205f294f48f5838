// guardrails.js - /ui/guardrails: what the guardrail policies found over a
// time range, from GET /api/v1/stats/guardrails. Tiles with the checks,
// findings and verdicts; charts of findings over time by policy and detector
// and of the verdicts that acted (block, redact, flag, error); a table of
// policy x detector with checks, findings and verdicts (a row narrows the
// page to that pair); the latest checks that found something, each opening
// its trace (/ui/traces/<id>).
//
// State in the URL: the range (from, to: as on the overview page, whose
// picker this uses) and the filters policy, detector, stage and verdict.
// A click on a chart's bucket narrows the range to that bucket.

import { api, qs } from '../api.js';
import { chart } from '../chart.js';
import { badge, card, empty, failure, field, fmt, h, loading, put, select, table, tile, verdictBadge } from '../ui.js';
import { bucketText, count, rangeOf, rangePicker } from './overview.js';

const VERDICTS = ['pass', 'flag', 'redact', 'block', 'error'];
const STAGES = ['input', 'output', 'tool'];
const FILTERS = ['policy', 'detector', 'stage', 'verdict'];
const MAX_LINES = 8; // pairs drawn in the findings chart; the rest are summed

let renders = 0; // the latest render wins when reloads overlap

export default async function guardrails(ctx) {
  const mine = ++renders;
  ctx.title('Guardrails');
  const { root } = ctx;
  const body = h('div', {});
  const filters = {};
  for (const k of FILTERS) if (ctx.query.get(k)) filters[k] = ctx.query.get(k);
  const reload = (patch) => { ctx.setQuery(patch, { push: true }); guardrails(ctx); };
  const text = (name, placeholder) => h('input', {
    name, placeholder, size: 14, value: filters[name] || '', list: `gr-${name}s`,
    onchange: (e) => reload({ [name]: e.target.value.trim() }),
  });

  put(root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Guardrails'),
        h('p', { class: 'sub' }, 'Checks of the guardrail policies: what they found and what they did.')),
      h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'btn', onclick: () => guardrails(ctx) }, 'Refresh'))),
    h('div', { class: 'card' },
      rangePicker(ctx.query, reload),
      h('div', { class: 'toolbar' },
        field('Policy', text('policy', 'any')),
        field('Detector', text('detector', 'any')),
        field('Stage', select([['', 'any'], ...STAGES], filters.stage || '', (v) => reload({ stage: v }), { name: 'stage' })),
        field('Verdict', select([['', 'any'], ...VERDICTS], filters.verdict || '', (v) => reload({ verdict: v }), { name: 'verdict' })),
        Object.keys(filters).length
          ? h('button', { type: 'button', class: 'btn', onclick: () => reload({ policy: '', detector: '', stage: '', verdict: '' }) }, 'Clear filters')
          : null)),
    body);

  const r = rangeOf(ctx.query);
  loading(body, 'Loading guardrail statistics');
  let s;
  try {
    s = await api(`/api/v1/stats/guardrails${qs({ from: r.from, to: r.to, ...filters })}`, { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError' || !ctx.active() || mine !== renders) return;
    failure(body, e, () => guardrails(ctx));
    return;
  }
  if (!ctx.active() || mine !== renders) return;
  // suggestions for the text filters, from what this answer holds
  root.append(
    h('datalist', { id: 'gr-policys' }, [...new Set(s.policies.map((p) => p.policy))].map((v) => h('option', { value: v }))),
    h('datalist', { id: 'gr-detectors' }, [...new Set(s.policies.map((p) => p.detector))].map((v) => h('option', { value: v }))));
  render(ctx, body, s, filters, reload);
}

function render(ctx, body, s, filters, reload) {
  const t = s.totals;
  const rangeText = `${fmt.time(s.from)} – ${fmt.time(s.to)}`;
  if (t.checks === 0) {
    put(body, h('p', { class: 'muted' }, rangeText), h('div', { class: 'card' }));
    empty(body.lastChild, Object.keys(filters).length ? 'No check matches these filters' : 'No guardrail checks in this range',
      Object.keys(filters).length ? 'Loosen a filter, or clear them.'
        : 'Guardrail policies (the guardrails section of the configuration) record a check on every request they apply to.');
    return;
  }
  const times = s.series.map((b) => b.t);
  const step = s.bucket_s * 1000;
  const zoom = (from, to) => reload({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });

  const pairs = s.policies.slice(0, MAX_LINES).map((p) => ({ name: `${p.policy} / ${p.detector}`, values: p.series.map((b) => b.findings) }));
  if (s.policies.length > MAX_LINES) {
    const rest = s.policies.slice(MAX_LINES);
    pairs.push({ name: `${rest.length} more`, values: times.map((_, i) => rest.reduce((a, p) => a + p.series[i].findings, 0)) });
  }
  const verdictColors = { block: '#dc2626', redact: '#d97706', flag: '#2563eb', error: '#475569' };

  const tiles = h('div', { class: 'tiles', 'aria-label': 'totals' },
    tileOf('checks', 'Checks', fmt.int(t.checks)),
    tileOf('findings', 'Findings', fmt.int(t.findings)),
    ...['block', 'redact', 'flag', 'error'].map((v) => tileOf(v, v[0].toUpperCase() + v.slice(1), fmt.int(t.verdicts[v]),
      t.checks ? fmt.pct(t.verdicts[v] / t.checks) : null)));

  const policyTable = table({
    columns: [
      { label: 'Policy', value: (p) => p.policy },
      { label: 'Detector', value: (p) => p.detector },
      { label: 'Checks', class: 'num', value: (p) => fmt.int(p.checks) },
      { label: 'Findings', class: 'num', value: (p) => fmt.int(p.findings) },
      ...VERDICTS.map((v) => ({ label: v, class: 'num', value: (p) => (p.verdicts[v] ? fmt.int(p.verdicts[v]) : h('span', { class: 'muted' }, '0')) })),
    ],
    rows: s.policies,
    href: (p) => (p.policy === '(other)' ? null : `/ui/guardrails${qs({ from: ctx.query.get('from'), to: ctx.query.get('to'), ...filters, policy: p.policy, detector: p.detector })}`),
  });

  const latest = s.traces.length === 0 ? h('p', { class: 'muted' }, 'No check found anything in this range.') : table({
    columns: [
      { label: 'Time', value: (c) => h('span', { class: 'nowrap' }, fmt.time(c.t)) },
      { label: 'Policy', value: (c) => c.policy },
      { label: 'Detector', value: (c) => c.detector },
      { label: 'Stage', value: (c) => c.stage },
      { label: 'Verdict', value: (c) => h('span', {}, verdictBadge(c.verdict), c.mode === 'monitor' ? [' ', badge('monitor')] : null) },
      { label: 'Findings', value: (c) => h('span', { class: 'mono' }, c.findings.join(', ')) },
      { label: 'Trace', value: (c) => h('span', { class: 'mono muted' }, c.trace_id.slice(0, 12)) },
    ],
    rows: s.traces,
    href: (c) => `/ui/traces/${encodeURIComponent(c.trace_id)}`,
  });

  put(body,
    h('p', { class: 'muted' }, rangeText, `, in buckets of ${bucketText(s.bucket_s)}`),
    tiles,
    h('div', { class: 'grid' },
      card(null, chart({ title: 'Findings by policy and detector', series: pairs, times, step, format: count, onClick: zoom })),
      card(null, chart({
        title: 'Verdicts that acted', kind: 'bars', times, step, format: count, onClick: zoom,
        series: ['block', 'redact', 'flag', 'error'].map((v) => ({ name: v, values: s.series.map((b) => b[v]), color: verdictColors[v] })),
      }))),
    card('Policies and detectors', h('div', { class: 'table-wrap' }, policyTable),
      h('p', { class: 'muted' }, 'Monitor-mode checks count with the verdict they would have had. Enter or a click narrows the page to a row.')),
    card('Latest checks with findings', h('div', { class: 'table-wrap' }, latest),
      h('p', { class: 'muted' }, 'The latest 50, newest first; Enter or a click opens the trace.')));
}

function tileOf(key, label, value, note) {
  const el = tile(label, value, note);
  el.dataset.tile = key;
  return el;
}
