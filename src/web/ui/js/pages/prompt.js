// prompt.js - /ui/prompts/:name: one prompt of the registry.
//
// The page loads the prompt's versions and label history, then shows: a
// header (type, latest version, labels as badges); the versions (a
// keyboard-navigable list; choosing one sets ?version=N); the chosen
// version's template and config; the labels, with a move of any label to
// the chosen version and a rollback (the API's undo of a label's last
// move), each confirmed in place, and the history of the moves; a diff of
// any two versions (?from=A&to=B, side by side or, with ?diff=unified, as
// the unified text); and the playground (prompt-playground.js).
//
// State lives in the URL. Choosing a version updates only the parts that
// depend on it; a label move reloads the versions and history and redraws
// the rest, so the playground keeps its answer. Errors of a move or a
// rollback (403 for a protected label, 401 without the admin key, 409 when
// there is nothing to roll back) are shown in the labels card.

import { api, ApiError, qs } from '../api.js';
import { badge, card, empty, failure, field, fmt, h, keyNav, loading, put, select } from '../ui.js';
import { splitView, unifiedView } from './prompt-diff.js';
import { playground } from './prompt-playground.js';
import { labelBadges, promptHref } from './prompts.js';

const LABEL = /^[a-z0-9][a-z0-9._-]{0,63}$/;

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function templateView(v) {
  if (v.type === 'text') return h('pre', { class: 'code pr-template' }, v.template || '');
  return h('div', { class: 'pr-template' }, (v.messages || []).map((m) => h('div', { class: 'message' },
    h('div', { class: 'message-role' }, m.role || 'message'),
    h('div', { class: 'message-body' }, typeof m.content === 'string' ? (m.content || h('span', { class: 'muted' }, '(empty)'))
      : JSON.stringify(m.content, null, 2)))));
}

// The text of an error of a label move or rollback, with what to do.
function moveError(e) {
  if (e instanceof ApiError && e.status === 401) return 'This server needs the admin key: sign in (top right), then try again.';
  if (e instanceof ApiError && e.status === 403) return `${e.message}. Sign in with the admin key (top right), then try again.`;
  return e.message || String(e);
}

export default async function prompt(ctx) {
  const name = ctx.params.name;
  const base = `/api/v1/prompts/${encodeURIComponent(name)}`;
  ctx.title(name);
  let versions;
  let history;
  let models;
  try {
    [versions, history, models] = await Promise.all([
      api(`${base}/versions`, { signal: ctx.signal }).then((r) => r.data || []),
      api(`${base}/history`, { signal: ctx.signal }).then((r) => r.data || []),
      api('/v1/models', { signal: ctx.signal }).then((r) => r.data || []).catch((e) => { if (e.name === 'AbortError') throw e; return []; }),
    ]);
  } catch (e) {
    if (e.name === 'AbortError' || !ctx.active()) return;
    if (e instanceof ApiError && e.status === 404) {
      empty(ctx.root, 'No such prompt', `There is no prompt “${name}” in this registry. The list at /ui/prompts shows the prompts there are.`);
      return;
    }
    failure(ctx.root, e, () => prompt(ctx));
    return;
  }
  if (!ctx.active()) return;
  if (!versions.length) {
    empty(ctx.root, 'This prompt has no versions', 'Save one with POST /api/v1/prompts or `genaiops prompt push`.');
    return;
  }

  let labels = {}; // label -> version, 'latest' left out
  const derive = () => {
    labels = {};
    for (const v of versions) for (const l of v.labels || []) if (l !== 'latest') labels[l] = v.version;
  };
  derive();
  const latest = () => versions[0];
  const asked = () => ctx.query.get('version');
  const selected = () => versions.find((v) => String(v.version) === asked()) || latest();

  const headEl = h('div', { class: 'page-head' });
  const versionsEl = h('div', { class: 'table-wrap' });
  const detailEl = h('section', { class: 'card', id: 'prompt-version' });
  const labelsEl = h('section', { class: 'card', id: 'prompt-labels' });
  const compareEl = h('section', { class: 'card', id: 'prompt-compare' });
  const playEl = h('div', { id: 'prompt-playground' });
  let labelMsg = null; // {text, bad}
  let pending = null;  // the confirmation shown: {text, action, run}

  put(ctx.root,
    h('div', { class: 'crumbs' }, h('a', { href: '/ui/prompts' }, 'Prompts'), ' / ', h('span', { class: 'mono' }, name)),
    headEl,
    card('Versions', versionsEl),
    h('div', { class: 'two-col' }, detailEl, labelsEl),
    compareEl,
    playEl);

  function renderHead() {
    const l = latest();
    put(headEl, h('div', {},
      h('h1', {}, h('span', { class: 'mono' }, name), ' ', badge(l.type, 'info')),
      h('p', { class: 'sub' }, `latest v${l.version} · ${versions.length === 1 ? '1 version' : `${versions.length} versions`} · last saved `,
        h('span', { title: fmt.time(l.created_at || l.created_ns) }, fmt.ago(l.created_at || l.created_ns))),
      h('div', { class: 'pr-labels' }, labelBadges(labels))));
  }

  function renderVersions() {
    const sel = selected().version;
    const tbody = h('tbody', {}, versions.map((v) => h('tr', {
      class: ['clickable', v.version === sel && 'row-selected'], tabindex: v.version === sel ? '0' : '-1',
      'aria-selected': String(v.version === sel), dataset: { version: String(v.version) },
    },
    h('td', { class: 'num' }, `v${v.version}`),
    h('td', {}, h('span', { class: 'mono muted', title: v.hash }, (v.hash || '').replace(/^sha256:/, '').slice(0, 12))),
    h('td', {}, h('span', { class: 'nowrap', title: v.created_at }, fmt.time(v.created_at || v.created_ns))),
    h('td', {}, v.author || ''),
    h('td', {}, v.message || h('span', { class: 'muted' }, '–')),
    h('td', {}, (v.labels || []).map((l) => [badge(l, l === 'latest' ? '' : (l === 'production' ? 'ok' : 'info')), ' '])))));
    keyNav(tbody, 'tr[data-version]', (tr) => choose(Number(tr.dataset.version)));
    put(versionsEl, h('table', { class: 'list pr-versions', 'aria-label': 'Versions' },
      h('thead', {}, h('tr', {}, ['Version', 'Hash', 'Created', 'Author', 'Message', 'Labels'].map((t, i) => h('th', { scope: 'col', class: i === 0 ? 'num' : null }, t)))),
      tbody));
  }

  function markSelected() {
    const sel = String(selected().version);
    versionsEl.querySelectorAll('tr[data-version]').forEach((tr) => {
      const on = tr.dataset.version === sel;
      tr.classList.toggle('row-selected', on);
      tr.setAttribute('aria-selected', String(on));
    });
  }

  function renderDetail() {
    const v = selected();
    const missing = asked() && String(v.version) !== asked();
    put(detailEl,
      h('h2', {}, `Version ${v.version}`, v.version === latest().version ? h('span', { class: 'muted' }, ' (latest)') : null),
      missing ? h('p', { class: 'error-text' }, `There is no version ${asked()}; this is the latest.`) : null,
      kv([
        ['Hash', h('span', { class: 'mono' }, v.hash)],
        ['Created', fmt.time(v.created_at || v.created_ns)],
        ['Author', v.author],
        ['Message', v.message],
        ['Labels', (v.labels || []).length ? (v.labels || []).map((l) => [badge(l), ' ']) : null],
        ['Variables', (v.variables || []).length ? h('span', { class: 'mono' }, v.variables.join(', ')) : null],
      ]),
      h('h3', {}, v.type === 'chat' ? 'Messages' : 'Template'),
      templateView(v),
      h('h3', {}, 'Config'),
      v.config && Object.keys(v.config).length ? h('pre', { class: 'code pr-config' }, JSON.stringify(v.config, null, 2))
        : h('p', { class: 'muted' }, 'No config.'),
      versions.length > 1 && v.version !== versions[versions.length - 1].version
        ? h('p', {}, h('a', { href: promptHref(name, { version: v.version, from: prevOf(v.version), to: v.version }), onclick: (e) => { e.preventDefault(); compareWith(prevOf(v.version), v.version); } },
          `Compare with v${prevOf(v.version)} ↓`)) : null);
  }

  // The version before n in the list (versions may have gaps after none, but
  // the list is the truth).
  function prevOf(n) {
    const i = versions.findIndex((v) => v.version === n);
    return i >= 0 && i + 1 < versions.length ? versions[i + 1].version : n;
  }

  // ---- labels -------------------------------------------------------------

  function confirmBox() {
    if (!pending) return null;
    const go = h('button', { type: 'button', class: 'btn primary', onclick: async () => {
      go.disabled = true;
      const p = pending;
      pending = null;
      await p.run();
    } }, pending.action);
    const box = h('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm' },
      h('span', {}, pending.text), go,
      h('button', { type: 'button', class: 'btn', onclick: () => { pending = null; renderLabels(); } }, 'Cancel'));
    queueMicrotask(() => go.focus());
    return box;
  }

  function ask(text, action, run) {
    pending = { text, action, run };
    labelMsg = null;
    renderLabels();
  }

  async function afterChange(text) {
    labelMsg = { text, bad: false };
    try {
      const [vs, hs] = await Promise.all([
        api(`${base}/versions`, { signal: ctx.signal }).then((r) => r.data || []),
        api(`${base}/history`, { signal: ctx.signal }).then((r) => r.data || []),
      ]);
      if (!ctx.active()) return;
      versions = vs;
      history = hs;
      derive();
    } catch (e) {
      if (e.name === 'AbortError') return;
      labelMsg = { text: `${text} Reloading the prompt failed: ${e.message}`, bad: true };
    }
    renderHead();
    renderVersions();
    renderDetail();
    renderLabels();
  }

  async function move(label, version) {
    try {
      const r = await api(`${base}/labels`, { method: 'POST', body: { label, version }, signal: ctx.signal });
      if (!ctx.active()) return;
      await afterChange(`Moved ${r.label} to v${r.version}${r.previous === null || r.previous === undefined ? ' (a new label)' : ` (was v${r.previous})`}.`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      labelMsg = { text: moveError(e), bad: true };
      renderLabels();
    }
  }

  async function rollback(label) {
    try {
      const r = await api(`${base}/rollback`, { method: 'POST', body: { label }, signal: ctx.signal });
      if (!ctx.active()) return;
      await afterChange(`Rolled ${r.label} back to v${r.version} (was v${r.previous}).`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      labelMsg = { text: moveError(e), bad: true };
      renderLabels();
    }
  }

  function renderLabels() {
    const v = selected();
    const entries = Object.entries(labels).sort((a, b) => a[0].localeCompare(b[0]));
    const listId = 'prompt-label-names';
    const input = h('input', { name: 'label', list: listId, placeholder: 'production', size: 16, autocomplete: 'off', 'aria-label': 'Label' });
    const submit = (e) => {
      e.preventDefault();
      const l = input.value.trim();
      if (!l) { labelMsg = { text: 'Name the label to move: pick one or type a new one.', bad: true }; renderLabels(); return; }
      if (l === 'latest') { labelMsg = { text: '“latest” always points at the newest version and cannot be moved.', bad: true }; renderLabels(); return; }
      if (!LABEL.test(l)) {
        labelMsg = { text: `“${l}” is not a valid label: 1-64 of a-z 0-9 . _ -, starting with a letter or digit.`, bad: true };
        renderLabels();
        return;
      }
      const now = labels[l];
      if (now === v.version) { labelMsg = { text: `${l} already points at v${v.version}.`, bad: false }; renderLabels(); return; }
      const text = now === undefined ? `Create the label ${l} at v${v.version}?` : `Move ${l} from v${now} to v${v.version}?`;
      ask(text, now === undefined ? 'Create label' : 'Move label', () => move(l, v.version));
    };
    const rows = entries.map(([l, n]) => h('tr', {},
      h('td', {}, badge(l, l === 'production' ? 'ok' : 'info')),
      h('td', { class: 'num' }, `v${n}`),
      h('td', { class: 'num' }, h('button', {
        type: 'button', class: 'btn small', 'aria-label': `Roll back ${l}`,
        onclick: () => ask(`Roll ${l} back (now v${n})? This undoes its last move.`, 'Roll back', () => rollback(l)),
      }, 'Roll back…'))));
    put(labelsEl,
      h('h2', {}, 'Labels'),
      entries.length ? h('table', { class: 'list pr-label-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Label'), h('th', { class: 'num' }, 'Version'), h('th', {}))), h('tbody', {}, rows))
        : h('p', { class: 'muted' }, 'No labels yet (besides latest).'),
      h('form', { class: 'toolbar pr-move', onsubmit: submit },
        h('datalist', { id: listId }, entries.map(([l]) => h('option', { value: l }))),
        field('Label', input),
        h('button', { type: 'submit', class: 'btn' }, `Move to v${v.version}…`)),
      confirmBox(),
      labelMsg ? h('p', { class: labelMsg.bad ? 'error-text pr-label-msg' : 'pr-label-msg ok-text', role: labelMsg.bad ? 'alert' : 'status' }, labelMsg.text) : null,
      h('h3', {}, 'History'),
      history.length ? h('table', { class: 'list pr-history' },
        h('thead', {}, h('tr', {}, ['When', 'Label', 'Move', 'Who', 'Reason'].map((t) => h('th', {}, t)))),
        h('tbody', {}, history.map((m) => h('tr', {},
          h('td', {}, h('span', { class: 'nowrap', title: m.at }, fmt.time(m.at || m.at_ns))),
          h('td', {}, m.label),
          h('td', { class: 'nowrap' }, m.from === null || m.from === undefined ? `new → v${m.to}` : `v${m.from} → v${m.to}`),
          h('td', {}, m.who || ''),
          h('td', {}, badge(m.reason || '', m.reason === 'rollback' ? 'warn' : ''))))))
        : h('p', { class: 'muted' }, 'No label has moved yet.'));
  }

  // ---- compare --------------------------------------------------------------

  let diffSeq = 0;

  function diffRefs() {
    const sel = selected().version;
    let from = ctx.query.get('from');
    let to = ctx.query.get('to');
    if (!from && !to) {
      if (versions.length < 2) return null;
      if (sel === versions[versions.length - 1].version) { from = String(sel); to = String(latest().version); } else { from = String(prevOf(sel)); to = String(sel); }
    }
    return { from: from || String(prevOf(Number(to) || sel)), to: to || String(sel) };
  }

  function compareWith(from, to) {
    ctx.setQuery({ from, to }, { push: true });
    renderCompare();
    compareEl.scrollIntoView({ block: 'start' });
  }

  function refOptions(current) {
    const opts = versions.map((v) => [String(v.version), `v${v.version}${v.message ? ` · ${v.message.slice(0, 40)}` : ''}`]);
    for (const [l, n] of Object.entries(labels)) opts.push([l, `${l} (v${n})`]);
    if (current && !opts.some((o) => o[0] === current)) opts.push([current, current]);
    return opts;
  }

  function renderCompare() {
    const refs = diffRefs();
    if (!refs) {
      put(compareEl, h('h2', {}, 'Compare versions'), h('p', { class: 'muted' }, 'Only one version so far: nothing to compare yet.'));
      return;
    }
    const unified = ctx.query.get('diff') === 'unified';
    const out = h('div', { class: 'pr-diff' });
    const setRefs = (patch) => { ctx.setQuery({ from: refs.from, to: refs.to, ...patch }, { push: true }); renderCompare(); };
    const mode = (u) => h('button', {
      type: 'button', class: ['btn', u === unified && 'active'], 'aria-pressed': String(u === unified),
      onclick: () => { ctx.setQuery({ diff: u ? 'unified' : '' }); renderCompare(); },
    }, u ? 'Unified' : 'Side by side');
    put(compareEl,
      h('h2', {}, 'Compare versions'),
      h('div', { class: 'toolbar' },
        field('From', select(refOptions(refs.from), refs.from, (x) => setRefs({ from: x }), { name: 'from' })),
        field('To', select(refOptions(refs.to), refs.to, (x) => setRefs({ to: x }), { name: 'to' })),
        h('button', { type: 'button', class: 'btn', onclick: () => setRefs({ from: refs.to, to: refs.from }) }, 'Swap'),
        h('div', { class: 'btn-group', role: 'group', 'aria-label': 'Diff view' }, mode(false), mode(true))),
      out);
    loadDiff(refs, unified, out);
  }

  async function loadDiff(refs, unified, out) {
    const seq = ++diffSeq;
    loading(out, 'Loading the diff');
    try {
      const d = await api(`${base}/diff${qs(refs)}`, { signal: ctx.signal });
      if (!ctx.active() || seq !== diffSeq) return;
      const side = (r) => `${r.name === name ? '' : `${r.name} `}v${r.version}${r.label ? ` (${r.label})` : ''}`;
      if (!d.changed) {
        empty(out, 'No differences', `${side(d.from)} and ${side(d.to)} have the same template and config.`);
        return;
      }
      const view = (text) => (unified ? unifiedView(text) : splitView(text, { fromLabel: side(d.from), toLabel: side(d.to) }));
      put(out,
        h('h3', {}, d.from.name === d.to.name && d.from.version === d.to.version ? 'Template' : `Template: ${side(d.from)} → ${side(d.to)}`),
        d.template ? view(d.template) : h('p', { class: 'muted' }, 'The template is the same.'),
        h('h3', {}, 'Config'),
        d.config ? view(d.config) : h('p', { class: 'muted' }, 'The config is the same.'));
    } catch (e) {
      if (e.name === 'AbortError' || seq !== diffSeq) return;
      failure(out, e, () => loadDiff(refs, unified, out));
    }
  }

  // ---- playground -------------------------------------------------------------

  function renderPlayground() {
    put(playEl, playground(ctx, { base, version: selected(), models }));
  }

  // Choosing a version: the URL, then what depends on it.
  function choose(n) {
    if (String(n) === asked()) return;
    ctx.setQuery({ version: n }, { push: true });
    markSelected();
    renderDetail();
    renderLabels();
    if (!ctx.query.get('from') && !ctx.query.get('to')) renderCompare();
    renderPlayground();
  }

  ctx.title(`${name} · prompts`);
  renderHead();
  renderVersions();
  renderDetail();
  renderLabels();
  renderCompare();
  renderPlayground();
}
