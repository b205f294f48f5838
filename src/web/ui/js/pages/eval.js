// eval.js - /ui/evals/:id: one stored evaluation run (GET
// /api/v1/evals/{id}): its pass rate with the 95% interval, the counts,
// the prompts and providers it used; the leaderboard (quality, cost,
// latency per prompt x provider) when it had several columns; the AVI
// report (index against its target, components, the cases that drive it,
// remedies) for a run of `genaiops avi`; and the results, failures first,
// each with the reason of its failing check, filtered by verdict and paged.
// The verdict filter and the page offset live in the URL (verdict, offset);
// Enter or a click on a result shows its details.

import { api, ApiError, qs } from '../api.js';
import { intervalBar } from '../chart.js';
import { badge, card, empty, failure, fmt, h, loading, put, select, table, tile, verdictBadge } from '../ui.js';
import { statusBadge } from './evals.js';

const PAGE = 50;

// The prompt and provider labels of a result (indexes into the run's meta).
function labelsOf(run) {
  const meta = run.meta || {};
  const prompts = (meta.prompts || []).map((p, i) => p.label || `prompt ${i}`);
  const providers = (meta.providers || []).map((p, i) => p.label || p.id || `provider ${i}`);
  return { prompt: (i) => prompts[i] ?? `prompt ${i}`, provider: (i) => providers[i] ?? `provider ${i}` };
}

// Why a result did not pass: its error, or its first failing check's reason.
export function reasonOf(r) {
  if (r.error) return r.error;
  const bad = (r.asserts || []).find((a) => a.verdict !== 'pass');
  if (!bad) return '';
  return `${bad.type}${bad.metric ? ` (${bad.metric})` : ''}: ${bad.reason || bad.verdict}`;
}

function header(run) {
  const s = run.summary || {};
  const pr = s.pass_rate || {};
  const rate = pr.value ?? run.pass_rate;
  const lo = pr.lo ?? (run.interval ? run.interval[0] : null);
  const hi = pr.hi ?? (run.interval ? run.interval[1] : null);
  const c = run.counts || { pass: run.passed, fail: run.failed, error: run.errors };
  const score = s.score || {};
  return h('div', { class: 'tiles' },
    tile('Pass rate', h('span', {}, fmt.pct(rate), ' ', intervalBar(rate ?? null, lo, hi, { width: 100 })),
      lo === null || lo === undefined ? null : `95% interval ${fmt.pct(lo)} – ${fmt.pct(hi)} (Wilson)`),
    tile('Passed', fmt.int(c.pass)),
    tile('Failed', fmt.int(c.fail)),
    tile('Errors', fmt.int(c.error)),
    tile('Mean score', fmt.num(score.mean, 3), score.lo === null || score.lo === undefined ? null
      : `95% interval ${fmt.num(score.lo, 3)} – ${fmt.num(score.hi, 3)}`),
    s.duration_s !== undefined ? tile('Duration', fmt.ms(s.duration_s * 1000), s.cache_hits ? `${s.cache_hits} cache hits` : null) : null);
}

function usedCard(run) {
  const meta = run.meta || {};
  const prompts = meta.prompts || [];
  const providers = meta.providers || [];
  return card('What it ran',
    h('dl', { class: 'kv' },
      h('dt', {}, 'Suite'), h('dd', { class: 'mono' }, run.suite || '–'),
      h('dt', {}, prompts.length === 1 ? 'Prompt' : 'Prompts'),
      h('dd', {}, prompts.length ? prompts.map((p, i) => h('div', {}, `${i}: ${p.label || '–'}`,
        p.ref ? h('span', { class: 'muted' }, ` (prompt://${p.ref}, version ${p.version})`) : null)) : '–'),
      h('dt', {}, providers.length === 1 ? 'Provider' : 'Providers'),
      h('dd', {}, providers.length ? providers.map((p, i) => h('div', {}, `${i}: ${p.label || p.id}`,
        p.id && p.label && p.id !== p.label ? h('span', { class: 'muted mono' }, ` ${p.id}`) : null)) : '–'),
      (meta.datasets || []).length ? [h('dt', {}, 'Datasets'), h('dd', { class: 'mono' }, meta.datasets.join(', '))] : null,
      meta.repeat > 1 ? [h('dt', {}, 'Repeats'), h('dd', {}, String(meta.repeat))] : null,
      h('dt', {}, 'Started'), h('dd', {}, fmt.time(meta.started_at || run.created_at))));
}

// The leaderboard: one row per prompt x provider, best pass rate first.
function leaderboard(run) {
  const cols = ((run.summary || {}).columns || []).slice();
  if (cols.length < 2) return null;
  cols.sort((a, b) => ((b.pass_rate || {}).value ?? -1) - ((a.pass_rate || {}).value ?? -1));
  return card('Leaderboard',
    h('p', { class: 'muted' }, 'Each prompt × provider, best pass rate first. Intervals are 95%.'),
    h('div', { class: 'table-wrap' }, table({
      columns: [
        { label: '#', class: 'num', value: (c) => String(cols.indexOf(c) + 1) },
        { label: 'Prompt', value: (c) => c.prompt },
        { label: 'Provider', value: (c) => c.provider },
        { label: 'Pass rate', value: (c) => h('span', { class: 'nowrap' }, fmt.pct((c.pass_rate || {}).value), ' ',
          intervalBar((c.pass_rate || {}).value ?? null, (c.pass_rate || {}).lo, (c.pass_rate || {}).hi, { width: 90 })) },
        { label: 'Passed / failed / errors', class: 'num', value: (c) => `${c.passed} / ${c.failed} / ${c.errors}` },
        { label: 'Score', class: 'num', value: (c) => fmt.num((c.score || {}).mean, 3) },
        { label: 'Cost (total)', class: 'num', value: (c) => fmt.usd((c.cost || {}).total) },
        { label: 'Cost / test', class: 'num', value: (c) => fmt.usd((c.cost || {}).mean) },
        { label: 'Latency p50', class: 'num', value: (c) => fmt.ms((c.latency_ms || {}).p50) },
        { label: 'p95', class: 'num', value: (c) => fmt.ms((c.latency_ms || {}).p95) },
        { label: 'Tokens in / out', class: 'num', value: (c) => `${fmt.short((c.tokens || {}).in)} / ${fmt.short((c.tokens || {}).out)}` },
      ],
      rows: cols,
    })));
}

// A 0..1 share as a small bar.
function shareBar(x) {
  const svg = h('svg:svg', { viewBox: '0 0 100 10', width: 100, height: 10, class: 'interval', role: 'img', 'aria-label': fmt.pct(x) });
  svg.appendChild(h('svg:rect', { x: 0, y: 2, width: 100, height: 6, class: 'interval-track' }));
  if (x > 0) svg.appendChild(h('svg:rect', { x: 0, y: 2, width: Math.max(1, Math.min(1, x) * 100), height: 6, class: 'interval-mark' }));
  return svg;
}

// The Agentic Variability Index report of a `genaiops avi` run.
function aviCard(avi) {
  if (!avi) return null;
  const comps = Object.entries(avi.components || {});
  const met = avi.met === true;
  return card('Agentic Variability Index',
    h('div', { class: 'tiles' },
      tile('Index', fmt.num(avi.index, 1), `target ${fmt.num(avi.target, 1)} · lower is steadier`),
      tile('Against the target', badge(met ? 'met' : 'missed', met ? 'ok' : 'bad'),
        `${fmt.int(avi.cases)} cases × ${fmt.int(avi.runs)} runs`),
      tile('Failed runs', fmt.int(avi.failures))),
    h('div', { class: 'grid' },
      h('div', {}, h('h3', {}, 'Components'), table({
        columns: [
          { label: 'Component', value: ([k]) => k },
          { label: 'Mean', class: 'num', value: ([, c]) => fmt.num(c.mean, 3) },
          { label: 'Cases', class: 'num', value: ([, c]) => fmt.int(c.cases) },
          { label: 'Share of the index', value: ([, c]) => h('span', { class: 'nowrap' }, shareBar(c.share || 0), ' ', fmt.pct(c.share)) },
          { label: 'Weight', class: 'num', value: ([k]) => fmt.num((avi.weights || {})[k], 3) },
        ],
        rows: comps,
      })),
      (avi.per_provider || []).length ? h('div', {}, h('h3', {}, 'By prompt / provider'), table({
        columns: [
          { label: 'Prompt', value: (p) => p.prompt },
          { label: 'Provider', value: (p) => p.provider },
          { label: 'Index', class: 'num', value: (p) => fmt.num(p.index, 1) },
          { label: 'Cases', class: 'num', value: (p) => fmt.int(p.cases) },
        ],
        rows: avi.per_provider,
      })) : null),
    h('h3', {}, 'The cases that drive it'),
    (avi.drivers || []).length ? h('div', { class: 'table-wrap' }, table({
      columns: [
        { label: 'Case', value: (d) => h('span', {}, d.label || `test ${d.test}`, h('span', { class: 'muted' }, ` · test ${d.test}`)) },
        { label: 'Prompt / provider', value: (d) => `${d.prompt} / ${d.provider}` },
        { label: 'Index', class: 'num', value: (d) => fmt.num(d.index, 1) },
        { label: 'Driven by', value: (d) => badge(d.top_component || '–', 'info') },
        { label: 'Runs', class: 'num', value: (d) => `${fmt.int(d.runs)}${d.failures ? ` (${d.failures} failed)` : ''}` },
      ],
      rows: avi.drivers.slice(0, 10),
    })) : h('p', { class: 'muted' }, 'No case varies.'),
    (avi.remedies || []).length ? [h('h3', {}, 'What usually helps'),
      ...avi.remedies.map((r) => h('div', { class: 'remedy' },
        h('p', {}, h('strong', {}, r.component), h('span', { class: 'muted' }, ` · ${fmt.pct(r.share, 0)} of the index`)),
        h('ul', {}, (r.advice || []).map((a) => h('li', {}, a)))))] : null);
}

function resultDetail(r, labels) {
  return h('div', { class: 'result-detail' },
    h('dl', { class: 'kv' },
      h('dt', {}, 'Prompt / provider'), h('dd', {}, `${labels.prompt(r.prompt)} / ${labels.provider(r.provider)}`),
      r.repeat ? [h('dt', {}, 'Repeat'), h('dd', {}, String(r.repeat))] : null,
      h('dt', {}, 'Vars'), h('dd', { class: 'mono' }, JSON.stringify(r.vars || {})),
      h('dt', {}, 'Latency'), h('dd', {}, `${fmt.ms(r.latency_ms)}${r.cached ? ' (cached)' : ''}`),
      h('dt', {}, 'Tokens in / out'), h('dd', {}, `${fmt.int(r.tokens_in)} / ${fmt.int(r.tokens_out)}`),
      h('dt', {}, 'Cost'), h('dd', {}, fmt.usd(r.cost_usd))),
    h('h3', {}, 'Checks'),
    table({
      columns: [
        { label: 'Verdict', value: (a) => verdictBadge(a.verdict) },
        { label: 'Type', value: (a) => h('span', { class: 'mono' }, a.type) },
        { label: 'Metric', value: (a) => a.metric || '' },
        { label: 'Score', class: 'num', value: (a) => fmt.num(a.score, 3) },
        { label: 'Reason', value: (a) => a.reason || '' },
      ],
      rows: r.asserts || [],
    }),
    h('h3', {}, 'Prompt as sent'), h('pre', { class: 'code' }, r.prompt_text || ''),
    h('h3', {}, 'Output'), r.error ? h('p', { class: 'error-text' }, r.error) : null,
    h('pre', { class: 'code' }, r.output ?? '(no output)'));
}

export default async function evalRun(ctx) {
  const id = ctx.params.id;
  ctx.title(`Run ${id}`);
  const { root } = ctx;
  let run;
  try {
    run = await api(`/api/v1/evals/${encodeURIComponent(id)}${qs({ results: 'false' })}`, { signal: ctx.signal });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      empty(root, 'No such run', `There is no stored evaluation run "${id}". The list of runs is at Evaluations.`);
      root.appendChild(h('p', { class: 'state' }, h('a', { href: '/ui/evals' }, '← all runs')));
      return;
    }
    throw e;
  }
  if (!ctx.active()) return;
  ctx.title(run.description || run.id);
  const labels = labelsOf(run);
  const results = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });
  const c = run.counts || {};
  const verdictSel = select([['', `all (${fmt.int((c.pass || 0) + (c.fail || 0) + (c.error || 0))})`], ['error', `errors (${fmt.int(c.error)})`],
    ['fail', `failed (${fmt.int(c.fail)})`], ['pass', `passed (${fmt.int(c.pass)})`]],
  ctx.query.get('verdict') || '', (v) => { ctx.setQuery({ verdict: v, offset: '' }); load(); }, { name: 'verdict', 'aria-label': 'verdict' });

  put(root,
    h('div', { class: 'crumbs' }, h('a', { href: '/ui/evals' }, 'Evaluations'), ' / ', run.id),
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, run.description || run.id),
        h('p', { class: 'sub' }, h('span', { class: 'mono' }, run.id), ` · ${fmt.time(run.created_at)} · `, statusBadge(run.status))),
      h('div', { class: 'toolbar' }, h('a', { class: 'btn', href: `/ui/evals/compare${qs({ base: 'latest', current: run.id })}` },
        'Compare with the latest other run'))),
    header(run),
    aviCard((run.summary || {}).avi),
    leaderboard(run),
    usedCard(run),
    h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, 'Results'), h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Verdict'), verdictSel),
        h('p', { class: 'muted' }, 'Errors and failures first. Enter or a click shows a result\'s checks, prompt and output.')),
      results, pager));

  function offset() {
    const n = Number(ctx.query.get('offset'));
    return Number.isInteger(n) && n > 0 ? n : 0;
  }

  function render(page) {
    if (!page.results.length) {
      const v = ctx.query.get('verdict');
      empty(results, v ? `No ${v === 'pass' ? 'passed' : v === 'fail' ? 'failed' : 'errored'} results` : 'No results stored',
        v ? 'Pick another verdict.' : 'The run stored no results (it may still be running, or was stopped early).');
      return;
    }
    const t = table({
      columns: [
        { label: 'Verdict', value: (r) => verdictBadge(r.verdict) },
        { label: 'Test', value: (r) => h('span', {}, `#${r.test}`, r.description ? h('span', { class: 'muted' }, ` ${r.description}`) : null) },
        { label: 'Prompt / provider', value: (r) => `${labels.prompt(r.prompt)} / ${labels.provider(r.provider)}` },
        { label: 'Why', value: (r) => h('span', { class: r.verdict === 'pass' ? 'muted' : 'error-text' }, reasonOf(r) || (r.verdict === 'pass' ? '' : '–')) },
        { label: 'Output', value: (r) => h('span', { class: 'muted', title: r.output || '' }, (r.output || '').length > 80 ? `${r.output.slice(0, 80)}…` : (r.output || '')) },
        { label: 'Score', class: 'num', value: (r) => fmt.num(r.score, 3) },
        { label: 'Latency', class: 'num', value: (r) => fmt.ms(r.latency_ms) },
      ],
      rows: page.results,
      rowClass: (r) => `result ${r.verdict === 'pass' ? '' : 'row-bad'}`,
    });
    const body = t.tBodies[0];
    [...body.rows].forEach((tr, i) => {
      tr.tabIndex = i === 0 ? 0 : -1;
      tr.classList.add('clickable');
      tr.dataset.index = String(i);
      tr.setAttribute('aria-expanded', 'false');
    });
    keyNavRows(body, page.results);
    put(results, t);
  }

  // Enter / click toggles a detail row under a result; j/k/arrows move.
  function keyNavRows(body, rows) {
    const toggle = (tr) => {
      const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains('detail-row');
      if (open) { tr.nextElementSibling.remove(); tr.setAttribute('aria-expanded', 'false'); return; }
      const td = h('td', { colspan: String(tr.cells.length) }, resultDetail(rows[Number(tr.dataset.index)], labels));
      tr.after(h('tr', { class: 'detail-row' }, td));
      tr.setAttribute('aria-expanded', 'true');
    };
    body.addEventListener('keydown', (e) => {
      if (e.target.tagName !== 'TR' || !e.target.classList.contains('result')) return;
      const items = [...body.querySelectorAll('tr.result')];
      const i = items.indexOf(e.target);
      let next = -1;
      if (e.key === 'ArrowDown' || e.key === 'j') next = Math.min(items.length - 1, i + 1);
      else if (e.key === 'ArrowUp' || e.key === 'k') next = Math.max(0, i - 1);
      else if (e.key === 'Home') next = 0;
      else if (e.key === 'End') next = items.length - 1;
      else if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(e.target); return; }
      else return;
      e.preventDefault();
      items.forEach((x) => { x.tabIndex = -1; });
      items[next].tabIndex = 0;
      items[next].focus();
    });
    body.addEventListener('click', (e) => {
      if (e.target.closest('a, button, input, select, textarea, .detail-row')) return;
      const tr = e.target.closest('tr.result');
      if (tr) toggle(tr);
    });
  }

  function renderPager(page) {
    const off = page.offset || 0;
    const end = off + page.results.length;
    put(pager,
      h('span', { class: 'muted' }, page.total ? `${fmt.int(off + 1)}–${fmt.int(end)} of ${fmt.int(page.total)}` : ''),
      off > 0 ? h('button', { type: 'button', class: 'btn', onclick: () => { ctx.setQuery({ offset: Math.max(0, off - PAGE) || '' }, { push: true }); load(); } }, '← Previous') : null,
      page.next_offset !== null && page.next_offset !== undefined
        ? h('button', { type: 'button', class: 'btn', onclick: () => { ctx.setQuery({ offset: page.next_offset }, { push: true }); load(); } }, 'Next →') : null);
  }

  async function load() {
    loading(results, 'Loading results');
    pager.replaceChildren();
    try {
      const page = await api(`/api/v1/evals/${encodeURIComponent(run.id)}${qs({ verdict: ctx.query.get('verdict') || '', limit: PAGE, offset: offset() || '' })}`,
        { signal: ctx.signal });
      if (!ctx.active()) return;
      render(page);
      renderPager(page);
    } catch (e) {
      if (e.name === 'AbortError') return;
      failure(results, e, load);
    }
  }

  await load();
}
