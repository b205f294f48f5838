// prompt-diff.js - the prompt page's diff views, from the unified diff text
// GET /api/v1/prompts/{name}/diff answers with.
//
// parseUnified() turns the text into rows: a hunk header, an unchanged line
// (on both sides), or a changed pair. Within a hunk, a run of deleted lines
// followed by a run of added lines is paired line by line (the first
// deleted line beside the first added one, and so on); the longer run's
// extra lines get an empty cell on the other side. Line numbers come from
// the hunk headers (@@ -a,b +c,d @@). splitView() draws the rows as a
// four-column grid (number, old text, number, new text), unifiedView() as
// the unified text with its lines marked.

import { h } from '../ui.js';

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/;

// rows: {kind: 'hunk', text} | {kind: 'same', left, right} |
// {kind: 'change', left, right} where left/right are {n, text} or null.
export function parseUnified(text) {
  const rows = [];
  if (!text) return rows;
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  let a = 0;
  let b = 0;
  let inHunk = false;
  let dels = [];
  let adds = [];
  const flush = () => {
    const n = Math.max(dels.length, adds.length);
    for (let i = 0; i < n; i++) rows.push({ kind: 'change', left: dels[i] || null, right: adds[i] || null });
    dels = [];
    adds = [];
  };
  for (const line of lines) {
    const m = HUNK.exec(line);
    if (m) {
      flush();
      a = Number(m[1]);
      b = Number(m[2]);
      inHunk = true;
      rows.push({ kind: 'hunk', text: line });
      continue;
    }
    if (!inHunk) continue; // the ---/+++ file header
    const mark = line[0];
    const body = line.slice(1);
    if (mark === '-') {
      if (adds.length) flush(); // "+ then -": a new change block
      dels.push({ n: a++, text: body });
    } else if (mark === '+') {
      adds.push({ n: b++, text: body });
    } else if (mark === '\\') {
      // "\ No newline at end of file": a note, not a line
    } else {
      flush();
      rows.push({ kind: 'same', left: { n: a++, text: body }, right: { n: b++, text: body } });
    }
  }
  flush();
  return rows;
}

function cell(side, cls) {
  if (!side) return [h('div', { class: 'ln gap' }), h('div', { class: 'gap', 'aria-label': 'no line' })];
  return [h('div', { class: 'ln' }, String(side.n)), h('div', { class: cls }, side.text === '' ? '\u00a0' : side.text)];
}

// The side-by-side view of a unified diff.
export function splitView(text, { fromLabel, toLabel } = {}) {
  const rows = parseUnified(text);
  return h('div', { class: 'diff diff-split', role: 'table', 'aria-label': 'side-by-side diff' },
    h('div', { class: 'diff-row diff-head', role: 'row' },
      h('div', { class: 'ln' }), h('div', { role: 'columnheader' }, fromLabel || 'from'),
      h('div', { class: 'ln' }), h('div', { role: 'columnheader' }, toLabel || 'to')),
    rows.map((r) => {
      if (r.kind === 'hunk') return h('div', { class: 'diff-row', role: 'row' }, h('div', { class: 'hunk' }, r.text));
      const left = r.kind === 'same' ? 'ctx' : 'del';
      const right = r.kind === 'same' ? 'ctx' : 'add';
      return h('div', { class: ['diff-row', r.kind === 'change' && 'diff-changed'], role: 'row' },
        cell(r.left, left), cell(r.right, right));
    }));
}

// The unified text with its lines marked (.add, .del, .hunk).
export function unifiedView(text) {
  const lines = (text || '').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return h('pre', { class: 'code diff diff-unified' }, lines.map((line) => {
    let cls = 'ctx';
    if (line.startsWith('+++') || line.startsWith('---')) cls = 'file';
    else if (line.startsWith('@@')) cls = 'hunk';
    else if (line[0] === '+') cls = 'add';
    else if (line[0] === '-') cls = 'del';
    return h('span', { class: cls }, line === '' ? '\u00a0' : line);
  }));
}
