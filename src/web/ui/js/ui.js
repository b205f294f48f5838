// ui.js - small DOM helpers every page uses: an element builder, number and
// time formats, the loading / empty / error states, tables with keyboard
// navigation, and form controls whose value lives in the URL.
//
// Text always goes in as text nodes (h() never parses HTML), so content from
// traces and prompts cannot inject markup.

import { ApiError } from './api.js';

// h('a', {href: '/ui/', class: 'x', onclick: fn}, 'text', child, [more]) ->
// Element. Attributes: class, style (object or string), dataset (object),
// on<event> (functions), boolean true for empty attributes, false/null to
// skip. Children: strings, numbers, nodes, arrays, null (skipped).
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && !svg) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Replaces el's content with children.
export function put(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// ---- formats -------------------------------------------------------------

const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export const fmt = {
  int: (x) => (x === null || x === undefined ? '–' : nf0.format(x)),
  num: (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–'
    : Number(x).toLocaleString('en-US', { maximumFractionDigits: digits })),
  // compact counts: 1.2k, 3.4M
  short(x) {
    if (x === null || x === undefined) return '–';
    const a = Math.abs(x);
    if (a >= 1e9) return `${(x / 1e9).toFixed(1)}B`;
    if (a >= 1e6) return `${(x / 1e6).toFixed(1)}M`;
    if (a >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
    return nf0.format(x);
  },
  ms(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    if (x >= 10000) return `${(x / 1000).toFixed(1)} s`;
    if (x >= 1000) return `${(x / 1000).toFixed(2)} s`;
    if (x >= 10) return `${x.toFixed(0)} ms`;
    return `${x.toFixed(x >= 1 ? 1 : 2)} ms`;
  },
  usd(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return '–';
    if (x === 0) return '$0';
    if (Math.abs(x) < 0.01) return `$${x.toPrecision(2)}`;
    return `$${x.toFixed(2)}`;
  },
  pct: (x, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? '–' : `${(x * 100).toFixed(digits)}%`),
  // a time given as unix ms, unix ns (big numbers) or an ISO string
  time(t) {
    const d = toDate(t);
    if (!d) return '–';
    return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit',
      minute: '2-digit', second: '2-digit', hour12: false });
  },
  clock(t) {
    const d = toDate(t);
    return d ? d.toLocaleTimeString('en-GB', { hour12: false }) : '–';
  },
  ago(t) {
    const d = toDate(t);
    if (!d) return '–';
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ago`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
    return `${Math.floor(s / 86400)}d ago`;
  },
};

export function toDate(t) {
  if (t === null || t === undefined || t === '') return null;
  if (t instanceof Date) return t;
  if (typeof t === 'number') return new Date(t > 1e14 ? t / 1e6 : t);
  if (/^\d+$/.test(t)) return toDate(Number(t));
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

// ---- states --------------------------------------------------------------

export function loading(el, what = 'Loading') {
  return put(el, h('p', { class: 'state loading', role: 'status' }, `${what}…`));
}

export function empty(el, title, hint) {
  return put(el, h('div', { class: 'state empty' }, h('p', { class: 'state-title' }, title),
    hint ? h('p', { class: 'muted' }, hint) : null));
}

// An error in place of content, with a retry button when retry is given.
export function failure(el, err, retry) {
  const unauthorized = err instanceof ApiError && err.status === 401;
  const title = unauthorized ? 'This server needs the admin key' : 'Something went wrong';
  const msg = unauthorized ? 'Sign in with the admin key (top right) to see this page.'
    : (err && err.message) || String(err);
  return put(el, h('div', { class: 'state error', role: 'alert' },
    h('p', { class: 'state-title' }, title), h('p', { class: 'error-text' }, msg),
    retry ? h('button', { class: 'btn', type: 'button', onclick: retry }, 'Try again') : null));
}

// ---- bits ----------------------------------------------------------------

export function badge(text, kind = '') {
  return h('span', { class: ['badge', kind && `badge-${kind}`] }, text);
}

export function statusBadge(status) {
  if (status === null || status === undefined) return badge('–');
  return badge(String(status), status >= 500 ? 'bad' : status >= 400 ? 'warn' : 'ok');
}

export function verdictBadge(v) {
  const kind = { pass: 'ok', fail: 'bad', error: 'warn', block: 'bad', redact: 'warn', flag: 'info' }[v] || '';
  return badge(v, kind);
}

export function link(href, ...children) {
  return h('a', { href }, ...children);
}

// A titled box.
export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...children);
}

// A figure tile: label, big value, optional note.
export function tile(label, value, note) {
  return h('div', { class: 'tile' }, h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value' }, value), note ? h('div', { class: 'tile-note muted' }, note) : null);
}

// <select> from [[value, label], ...] (or plain strings).
export function select(options, value, onchange, attrs = {}) {
  return h('select', { ...attrs, onchange: (e) => onchange(e.target.value) },
    options.map((o) => {
      const [v, l] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: String(v) === String(value ?? '') }, l);
    }));
}

// A labelled control.
export function field(label, control) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control);
}

// A pre block for JSON or long text.
export function pre(text, cls = '') {
  return h('pre', { class: ['code', cls] }, typeof text === 'string' ? text : JSON.stringify(text, null, 2));
}

// ---- tables with keyboard navigation ---------------------------------------

// table({columns: [{label, value: row => node|string, class?, title?}], rows,
// href: row => url (rows become links; Enter opens), onSelect}) -> <table>.
// Keys: j / ArrowDown next row, k / ArrowUp previous, Enter open,
// Home/End first/last.
export function table({ columns, rows, href, caption, rowClass }) {
  const thead = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.class, scope: 'col', title: c.title }, c.label))));
  const tbody = h('tbody', {}, rows.map((row, i) => {
    const url = href ? href(row) : null;
    const tr = h('tr', { class: [url && 'clickable', rowClass && rowClass(row)], tabindex: url ? (i === 0 ? '0' : '-1') : null, dataset: url ? { href: url } : {} },
      columns.map((c) => h('td', { class: c.class }, c.value(row))));
    return tr;
  }));
  const t = h('table', { class: 'list' }, caption ? h('caption', {}, caption) : null, thead, tbody);
  if (href) keyNav(tbody, 'tr[data-href]', (tr) => navigate(tr.dataset.href));
  return t;
}

// Arrow / j / k navigation over the items of container matching selector;
// Enter or a click opens one (a click on an inner link or control is left
// alone). Items must be focusable (tabindex).
export function keyNav(container, selector, open) {
  container.addEventListener('keydown', (e) => {
    if (e.target.closest('input, select, textarea, button')) return;
    const items = [...container.querySelectorAll(selector)];
    const i = items.indexOf(document.activeElement);
    let next = -1;
    if (e.key === 'ArrowDown' || e.key === 'j') next = Math.min(items.length - 1, i + 1);
    else if (e.key === 'ArrowUp' || e.key === 'k') next = Math.max(0, i - 1);
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = items.length - 1;
    else if (e.key === 'Enter' && i >= 0) { e.preventDefault(); open(items[i], e); return; }
    else return;
    e.preventDefault();
    if (items[next]) {
      items.forEach((x) => x.setAttribute('tabindex', '-1'));
      items[next].setAttribute('tabindex', '0');
      items[next].focus();
    }
  });
  container.addEventListener('click', (e) => {
    if (e.target.closest('a, button, input, select, textarea, label')) return;
    const item = e.target.closest(selector);
    if (item && container.contains(item)) open(item, e);
  });
}

// In-app navigation (the shell listens; see app.js).
export function navigate(url, { replace = false } = {}) {
  window.dispatchEvent(new CustomEvent('genaiops:navigate', { detail: { url, replace } }));
}

// A debounced function: runs fn(args) ms after the last call.
export function debounce(fn, ms = 250) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
