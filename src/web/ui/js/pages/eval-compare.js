// eval-compare.js - /ui/evals/compare?base=A&current=B: two stored runs
// compared result by result (GET /api/v1/evals/compare, the comparison of
// `genaiops eval compare`): both runs' pass rates side by side with their
// intervals, McNemar's test, the mean score difference with its interval,
// the gate's verdict, and the paired results with regressions first
// (marked) and fixes next. The change filter and the page offset live in
// the URL beside base and current (change, offset); a row opens the current
// run's results of that verdict.

import { api, ApiError, qs } from '../api.js';
import { badge, card, empty, failure, fmt, h, loading, put, select, table, tile, verdictBadge } from '../ui.js';
import { passRateCell, statusBadge } from './evals.js';

const PAGE = 200;
const CHANGE_KIND = { regressed: 'bad', fixed: 'ok', same: '' };

function signed(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${x > 0 ? '+' : x < 0 ? '−' : '±'}${fmt.num(Math.abs(x), digits)}`;
}

function pctPoints(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${x > 0 ? '+' : x < 0 ? '−' : '±'}${(Math.abs(x) * 100).toFixed(1)} pts`;
}

// A prompt's or provider's label from a run's meta, by index.
function label(run, kind, i) {
  const x = ((run.meta || {})[kind] || [])[i];
  return (x && (x.label || x.id)) || `${kind === 'prompts' ? 'prompt' : 'provider'} ${i}`;
}

function runCard(role, run) {
  return h('section', { class: 'card' },
    h('h2', {}, role),
    h('p', {}, h('a', { href: `/ui/evals/${encodeURIComponent(run.id)}` }, run.description || run.id)),
    h('p', { class: 'muted' }, h('span', { class: 'mono' }, run.id), ` · ${fmt.time(run.created_at)} · `, statusBadge(run.status)),
    h('div', { class: 'tiles' },
      tile('Pass rate', passRateCell(run.pass_rate, run.interval),
        run.interval ? `95% interval ${fmt.pct(run.interval[0])} – ${fmt.pct(run.interval[1])}` : null),
      tile('Passed / failed / errors', `${fmt.int(run.counts.pass)} / ${fmt.int(run.counts.fail)} / ${fmt.int(run.counts.error)}`)));
}

function statsCard(c) {
  const pr = c.pass_rate || {};
  const sc = c.score || {};
  const mc = c.mcnemar || {};
  const gate = c.gate_failed ? badge('gate failed', 'bad') : badge('gate passed', 'ok');
  return card('Paired comparison',
    h('div', { class: 'tiles' },
      tile('Pass rate (paired)', h('span', { class: 'nowrap' }, `${fmt.pct(pr.base)} → ${fmt.pct(pr.cur)}`),
        `${pctPoints(pr.diff)} over ${fmt.int(c.n)} pairs without errors`),
      tile('McNemar p', fmt.num(mc.p, 4), `${fmt.int(mc.b)} pass→fail, ${fmt.int(mc.c)} fail→pass`),
      tile('Score difference', signed(sc.diff),
        sc.lo === null || sc.lo === undefined ? 'no scores to compare'
          : `95% interval [${signed(sc.lo)}, ${signed(sc.hi)}], p = ${fmt.num(sc.p, 4)}`),
      tile('Gate', gate, `drop > ${fmt.num(c.tolerance, 3)}: ${c.drop ? 'yes' : 'no'}; significant at ${fmt.num(c.alpha, 3)}: ${c.significant ? 'yes' : 'no'}`)),
    h('p', { class: 'muted' },
      'The gate fails only on a drop larger than the tolerance that is also significant, as genaiops eval --gate decides. ',
      `Results without a partner: ${fmt.int(c.unpaired.base)} in the base run, ${fmt.int(c.unpaired.current)} in the current run.`));
}

export default async function evalCompare(ctx) {
  ctx.title('Compare runs');
  const { root } = ctx;
  const base = ctx.query.get('base') || '';
  const current = ctx.query.get('current') || '';
  if (!base || !current) {
    empty(root, 'Pick two runs to compare', 'In the list of runs, pick two with their boxes and press Compare.');
    root.appendChild(h('p', { class: 'state' }, h('a', { href: '/ui/evals' }, '← all runs')));
    return;
  }
  const first = async () => api(`/api/v1/evals/compare${qs({ base, current, change: ctx.query.get('change') || '', limit: PAGE, offset: offset() || '' })}`,
    { signal: ctx.signal });
  let cmp;
  try {
    cmp = await first();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 400)) {
      empty(root, e.status === 404 ? 'One of these runs does not exist' : 'These runs cannot be compared', e.message);
      root.appendChild(h('p', { class: 'state' }, h('a', { href: '/ui/evals' }, '← all runs')));
      return;
    }
    throw e;
  }
  const [runA, runB] = await Promise.all([cmp.baseline, cmp.current].map((id) =>
    api(`/api/v1/evals/${encodeURIComponent(id)}${qs({ results: 'false' })}`, { signal: ctx.signal })));
  if (!ctx.active()) return;
  ctx.title(`Compare ${runA.description || runA.id} → ${runB.description || runB.id}`);

  const rowsBox = h('div', { class: 'table-wrap' });
  const pager = h('div', { class: 'pager' });
  const ch = cmp.changes || {};
  const changeSel = select([['', `all (${fmt.int((ch.regressed || 0) + (ch.fixed || 0) + (ch.same || 0))})`], ['regressed', `regressed (${fmt.int(ch.regressed)})`],
    ['fixed', `fixed (${fmt.int(ch.fixed)})`], ['same', `unchanged (${fmt.int(ch.same)})`]],
  ctx.query.get('change') || '', (v) => { ctx.setQuery({ change: v, offset: '' }); load(); }, { name: 'change', 'aria-label': 'change' });

  put(root,
    h('div', { class: 'crumbs' }, h('a', { href: '/ui/evals' }, 'Evaluations'), ' / compare'),
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Compare runs'),
        h('p', { class: 'sub' }, `${runA.description || runA.id} → ${runB.description || runB.id}`)),
      h('div', { class: 'toolbar' },
        badge(`${fmt.int(ch.regressed)} regressed`, ch.regressed ? 'bad' : ''),
        badge(`${fmt.int(ch.fixed)} fixed`, ch.fixed ? 'ok' : ''),
        h('a', { class: 'btn', href: `/ui/evals/compare${qs({ base: cmp.current, current: cmp.baseline })}` }, 'Swap'))),
    h('div', { class: 'two-col' }, runCard('Base', runA), runCard('Current', runB)),
    statsCard(cmp),
    h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, 'Paired results'),
        h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Change'), changeSel),
        h('p', { class: 'muted' }, 'Regressions first, then fixes. Enter on a row opens the current run\'s results of that verdict.')),
      rowsBox, pager));

  function offset() {
    const n = Number(ctx.query.get('offset'));
    return Number.isInteger(n) && n > 0 ? n : 0;
  }

  function render(c) {
    if (!c.rows.length) {
      empty(rowsBox, 'No paired results here', ctx.query.get('change') ? 'Pick another change.'
        : 'The two runs share no test × prompt × provider × repeat.');
      return;
    }
    put(rowsBox, table({
      columns: [
        { label: 'Change', value: (r) => badge(r.change === 'same' ? 'unchanged' : r.change, CHANGE_KIND[r.change]) },
        { label: 'Test', value: (r) => h('span', {}, `#${r.test}`, r.description ? h('span', { class: 'muted' }, ` ${r.description}`) : null,
          r.repeat ? h('span', { class: 'muted' }, ` · repeat ${r.repeat}`) : null) },
        { label: 'Prompt / provider', value: (r) => `${label(runB, 'prompts', r.prompt)} / ${label(runB, 'providers', r.provider)}` },
        { label: 'Base', value: (r) => verdictBadge(r.base.verdict) },
        { label: 'Current', value: (r) => verdictBadge(r.current.verdict) },
        { label: 'Score', class: 'num', value: (r) => `${fmt.num(r.base.score, 3)} → ${fmt.num(r.current.score, 3)}` },
      ],
      rows: c.rows,
      href: (r) => `/ui/evals/${encodeURIComponent(c.current)}${qs({ verdict: r.current.verdict })}`,
      rowClass: (r) => `change-${r.change} ${r.change === 'regressed' ? 'row-bad' : r.change === 'fixed' ? 'row-good' : ''}`,
    }));
  }

  function renderPager(c) {
    const off = offset();
    put(pager,
      h('span', { class: 'muted' }, c.rows_total ? `${fmt.int(off + 1)}–${fmt.int(off + c.rows.length)} of ${fmt.int(c.rows_total)}` : ''),
      off > 0 ? h('button', { type: 'button', class: 'btn', onclick: () => { ctx.setQuery({ offset: Math.max(0, off - PAGE) || '' }, { push: true }); load(); } }, '← Previous') : null,
      c.next_offset !== null && c.next_offset !== undefined
        ? h('button', { type: 'button', class: 'btn', onclick: () => { ctx.setQuery({ offset: c.next_offset }, { push: true }); load(); } }, 'Next →') : null);
  }

  async function load() {
    loading(rowsBox, 'Loading the paired results');
    pager.replaceChildren();
    try {
      const c = await first();
      if (!ctx.active()) return;
      render(c);
      renderPager(c);
    } catch (e) {
      if (e.name === 'AbortError') return;
      failure(rowsBox, e, load);
    }
  }

  render(cmp);
  renderPager(cmp);
}
