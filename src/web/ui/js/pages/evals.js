// evals.js - /ui/evals: the stored evaluation runs (GET /api/v1/evals),
// newest first, with each run's pass rate and its Wilson interval as a small
// bar. A text filter (sent to the API as q), the number shown and the runs
// picked for a comparison live in the URL (q, limit, pick=A,B). Pick two
// runs with their boxes (or x / Space on a focused row) and "Compare" opens
// /ui/evals/compare with the older run as the base.

import { api, qs } from '../api.js';
import { intervalBar } from '../chart.js';
import { badge, debounce, empty, failure, field, fmt, h, loading, put, table } from '../ui.js';

const STATUS_KIND = { done: 'ok', running: 'info', interrupted: 'warn', error: 'bad' };
const LIMITS = [50, 200, 500];
const idOf = (tr) => decodeURIComponent(tr.dataset.href.slice('/ui/evals/'.length));

export function statusBadge(status) {
  return badge(status || '–', STATUS_KIND[status] || '');
}

// The pass rate, its interval as text in the tooltip, and the bar.
export function passRateCell(rate, interval) {
  if (rate === null || rate === undefined) return h('span', { class: 'muted' }, '–');
  const [lo, hi] = Array.isArray(interval) ? interval : [null, null];
  return h('span', { class: 'nowrap', title: lo === null ? '' : `95% interval (Wilson): ${fmt.pct(lo)} – ${fmt.pct(hi)}` },
    h('span', { class: 'pass-rate' }, fmt.pct(rate)), ' ', intervalBar(rate, lo, hi, { width: 90 }));
}

export default async function evals(ctx) {
  ctx.title('Evaluations');
  const { root } = ctx;
  const results = h('div', { class: 'table-wrap' });
  const more = h('div', { class: 'pager' });
  const pickState = h('span', { class: 'muted', 'aria-live': 'polite' });
  const compareBtn = h('button', { type: 'button', class: 'btn primary', disabled: true, onclick: () => compare() }, 'Compare');
  let runs = [];
  let picked = (ctx.query.get('pick') || '').split(',').filter(Boolean).slice(0, 2);

  const search = h('input', {
    type: 'search', name: 'q', placeholder: 'description, suite or run id', size: 30, 'data-search': true,
    value: ctx.query.get('q') || '',
    oninput: debounce((e) => { ctx.setQuery({ q: e.target.value.trim() }); load(); }, 300),
  });

  put(root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Evaluations'),
        h('p', { class: 'sub' }, 'Stored runs of genaiops eval and genaiops avi, newest first.')),
      h('div', { class: 'toolbar' }, pickState, compareBtn)),
    h('div', { class: 'toolbar card' }, field('Filter', search),
      h('p', { class: 'muted' }, 'Pick two runs (box, or x on a row) to compare them; Enter opens a run.')),
    h('div', { class: 'card' }, results, more));

  function limit() {
    const n = Number(ctx.query.get('limit'));
    return LIMITS.includes(n) ? n : LIMITS[0];
  }

  function showPicked() {
    compareBtn.disabled = picked.length !== 2;
    pickState.textContent = picked.length === 0 ? '' : picked.length === 1 ? '1 run picked: pick one more'
      : '2 runs picked';
    results.querySelectorAll('input[data-pick]').forEach((box) => { box.checked = picked.includes(box.dataset.pick); });
    results.querySelectorAll('tr[data-href]').forEach((tr) => tr.classList.toggle('row-good', picked.includes(idOf(tr))));
    ctx.setQuery({ pick: picked.join(',') });
  }

  function toggle(id) {
    if (picked.includes(id)) picked = picked.filter((x) => x !== id);
    else picked = [...picked, id].slice(-2); // a third pick replaces the oldest pick
    showPicked();
  }

  function compare() {
    if (picked.length !== 2) return;
    // the list is newest first (to the nanosecond, finer than created_at's
    // seconds): the run further down is the older one, the base
    const pos = (id) => { const i = runs.findIndex((r) => r.id === id); return i < 0 ? -1 : i; };
    const [older, newer] = [...picked].sort((a, b) => pos(b) - pos(a));
    ctx.navigate(`/ui/evals/compare${qs({ base: older, current: newer })}`);
  }

  const COLUMNS = [
    { label: '', value: (r) => h('input', { type: 'checkbox', 'aria-label': `pick ${r.id} for a comparison`, dataset: { pick: r.id },
      checked: picked.includes(r.id), onchange: () => toggle(r.id) }) },
    { label: 'Run', value: (r) => h('span', {}, h('a', { href: `/ui/evals/${encodeURIComponent(r.id)}` }, r.description || r.id),
      r.description ? h('div', { class: 'mono muted' }, r.id) : null) },
    { label: 'Suite', value: (r) => h('span', { class: 'mono' }, r.suite || '–') },
    { label: 'When', value: (r) => h('span', { class: 'nowrap', title: r.created_at }, fmt.time(r.created_at)) },
    { label: 'Status', value: (r) => statusBadge(r.status) },
    { label: 'Pass rate', value: (r) => passRateCell(r.pass_rate, r.interval) },
    { label: 'Results', class: 'num', value: (r) => h('span', { title: `${r.passed} passed, ${r.failed} failed, ${r.errors} errors` },
      fmt.int(r.records), r.failed || r.errors ? h('span', { class: 'muted' }, ` (${r.failed + r.errors} not passed)`) : null) },
    { label: 'Providers', value: (r) => (r.providers || []).join(', ') || '–' },
  ];

  function render() {
    if (runs.length === 0) {
      if (ctx.query.get('q')) empty(results, 'No run matches this filter', 'The filter looks in the description, the suite file and the run id.');
      else {
        empty(results, 'No evaluation runs yet',
          'Run a suite into this server\'s store, e.g. genaiops eval -c examples/eval/ci-gate.yaml --config <the server\'s config>, and it shows here.');
      }
      more.replaceChildren();
      return;
    }
    const t = table({
      columns: COLUMNS,
      rows: runs,
      href: (r) => `/ui/evals/${encodeURIComponent(r.id)}`,
      rowClass: (r) => (picked.includes(r.id) ? 'row-good' : ''),
    });
    // x or Space on a focused row picks it
    t.tBodies[0].addEventListener('keydown', (e) => {
      if ((e.key !== 'x' && e.key !== ' ') || e.target.tagName !== 'TR') return;
      e.preventDefault();
      toggle(idOf(e.target));
    });
    put(results, t);
    const n = limit();
    const next = LIMITS.find((x) => x > n);
    put(more, h('span', { class: 'muted' }, `${runs.length} run${runs.length === 1 ? '' : 's'}`),
      runs.length >= n && next ? h('button', { type: 'button', class: 'btn', onclick: () => { ctx.setQuery({ limit: next }); load(); } },
        `Show up to ${next}`) : null);
    showPicked();
  }

  async function load() {
    loading(results, 'Loading runs');
    more.replaceChildren();
    try {
      const page = await api(`/api/v1/evals${qs({ q: ctx.query.get('q') || '', limit: limit() })}`, { signal: ctx.signal });
      if (!ctx.active()) return;
      runs = page.data || [];
      render();
    } catch (e) {
      if (e.name === 'AbortError') return;
      failure(results, e, load);
    }
  }

  showPicked();
  await load();
}
