// trace.js - /ui/traces/:id: one trace with its span waterfall, the
// messages (guardrail placeholders such as <EMAIL_1> shown as redactions),
// tokens, cost, guardrail findings, the prompt version, its scores, and the
// feedback controls that post scores (thumbs, a score, a comment).

import { api, ApiError } from '../api.js';
import { badge, card, empty, failure, fmt, h, put, select, statusBadge, table, tile, verdictBadge } from '../ui.js';

const PLACEHOLDER = /<([A-Z][A-Z0-9_]*_\d+)>/g;

// Text with guardrail placeholders marked as redactions.
function redacted(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(h('span', { class: 'redaction', title: 'redacted by a guardrail' }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

// The text of an OpenAI or Anthropic content value (a string or parts).
function contentNodes(content) {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return redacted(content);
  if (Array.isArray(content)) {
    return content.map((p) => {
      if (typeof p === 'string') return h('div', {}, redacted(p));
      if (p && typeof p.text === 'string') return h('div', {}, redacted(p.text));
      return h('pre', { class: 'code' }, JSON.stringify(p, null, 2));
    });
  }
  return [h('pre', { class: 'code' }, JSON.stringify(content, null, 2))];
}

function message(role, body, extra) {
  return h('div', { class: 'message' }, h('div', { class: 'message-role' }, role || 'message'),
    h('div', { class: 'message-body' }, body.length ? body : h('span', { class: 'muted' }, '(empty)')), extra || null);
}

function messages(list, output) {
  if (!Array.isArray(list)) return [];
  return list.map((m) => {
    const msg = output && m && m.message ? m.message : m; // chat choices wrap the message
    if (!msg || typeof msg !== 'object') return message('', [String(msg)]);
    const tools = msg.tool_calls ? h('pre', { class: 'code' }, JSON.stringify(msg.tool_calls, null, 2)) : null;
    const role = output && m.finish_reason ? `${msg.role || 'assistant'} · ${m.finish_reason}` : msg.role;
    const text = msg.content !== undefined ? msg.content : (m.text !== undefined ? m.text : msg);
    return message(role, contentNodes(text), tools);
  });
}

function contentCard(title, list, t, output) {
  if (list === null || list === undefined) {
    return card(title, h('p', { class: 'muted' }, t.content_redacted ? 'Content was not stored (telemetry.capture_content: redacted).'
      : 'Content was not captured (telemetry.capture_content is off).'));
  }
  return card(title, t.content_truncated ? h('p', { class: 'muted' }, 'Cut to the capture limit.') : null,
    ...messages(list, output));
}

// The waterfall: one row per span, bars placed on the trace's time line;
// a click shows the span's attributes.
function waterfall(t, detail) {
  const spans = t.spans || [];
  if (!spans.length) return h('p', { class: 'muted' }, 'No spans.');
  const t0 = Math.min(...spans.map((s) => s.start_ns));
  const t1 = Math.max(...spans.map((s) => s.end_ns), t0 + 1);
  const total = t1 - t0;
  const depth = (s) => { let d = 0; let p = s.parent_id; while (p && d < 8) { const q = spans.find((x) => x.span_id === p); p = q && q.parent_id; d++; } return d; };
  const rows = [];
  const show = (s, row) => {
    document.querySelectorAll('.wf-row-selected').forEach((x) => x.classList.remove('wf-row-selected'));
    row.classList.add('wf-row-selected');
    put(detail, h('h3', {}, s.name), table({ columns: [{ label: 'attribute', value: (a) => h('span', { class: 'mono' }, a[0]) },
      { label: 'value', value: (a) => h('span', { class: 'mono' }, typeof a[1] === 'string' ? a[1] : JSON.stringify(a[1])) }],
    rows: Object.entries(s.attributes || {}) }));
  };
  spans.forEach((s) => {
    const left = ((s.start_ns - t0) / total) * 100;
    const width = Math.max(0.3, ((s.end_ns - s.start_ns) / total) * 100);
    const status = s.attributes && s.attributes['http.response.status_code'];
    const verdict = s.attributes && s.attributes['genaiops.guardrail.verdict'];
    const bad = (status && status >= 400) || verdict === 'block' || verdict === 'error';
    const name = h('div', { class: 'wf-name', style: { paddingLeft: `${depth(s) * 14}px` }, title: s.name, tabindex: '0' },
      s.name, ' ', s.kind === 'guardrail' && verdict ? verdictBadge(verdict) : null);
    const track = h('div', { class: 'wf-track' },
      h('div', { class: ['wf-bar', `k-${s.kind}`, bad && 'k-error'], style: { left: `${left}%`, width: `${width}%` } }),
      left + width < 85 ? h('span', { class: 'wf-label', style: { left: `${left + width + 0.5}%` } }, fmt.ms(s.duration_ms))
        : h('span', { class: 'wf-label inside', style: { left: `${left + width}%` } }, fmt.ms(s.duration_ms)));
    name.addEventListener('click', () => show(s, name));
    name.addEventListener('keydown', (e) => { if (e.key === 'Enter') show(s, name); });
    track.addEventListener('click', () => show(s, name));
    rows.push(name, track);
  });
  return h('div', { class: 'waterfall' }, rows);
}

function guardrails(t) {
  const g = (t.spans || []).filter((s) => s.kind === 'guardrail');
  if (!g.length) return null;
  const a = (s, k) => (s.attributes || {})[`genaiops.guardrail.${k}`];
  return card('Guardrail checks', table({
    columns: [
      { label: 'Policy', value: (s) => a(s, 'policy') || '' },
      { label: 'Detector', value: (s) => a(s, 'detector') || '' },
      { label: 'Stage', value: (s) => a(s, 'stage') || '' },
      { label: 'Verdict', value: (s) => verdictBadge(a(s, 'verdict') || 'pass') },
      { label: 'Mode', value: (s) => a(s, 'mode') || '' },
      { label: 'Findings (types and places, never the text)', value: (s) => {
        const f = a(s, 'findings');
        return Array.isArray(f) && f.length ? f.map((x) => h('div', { class: 'mono' }, x)) : h('span', { class: 'muted' }, 'none');
      } },
    ],
    rows: g,
  }));
}

// A thumb icon (SVG, so no emoji font is needed), pointing down when down.
function thumb(down) {
  return h('svg:svg', { viewBox: '0 0 16 16', class: 'icon', 'aria-hidden': 'true', style: down ? { transform: 'rotate(180deg)' } : null },
    h('svg:path', { d: 'M1 7h3v8H1zM5 7l3-6c1.2 0 2 .8 2 2v3h4.2c.9 0 1.5.8 1.3 1.7l-1.3 6c-.2.8-.8 1.3-1.6 1.3H5z' }));
}

function scoreValue(s) {
  if (s.data_type === 'boolean') return s.value ? 'true' : 'false';
  if (s.data_type === 'numeric') return fmt.num(s.value, 4);
  return String(s.value);
}

// The feedback card: existing scores, thumbs up/down, a named score
// (from the score configs when there are any) and a comment.
async function feedback(ctx, t) {
  const list = h('div');
  const status = h('p', { class: 'muted', role: 'status' });
  const comment = h('textarea', { name: 'comment', rows: 2, placeholder: 'Comment (optional)', maxlength: 4096 });
  let configs = [];
  try {
    configs = (await api('/api/v1/score-configs', { signal: ctx.signal })).data || [];
  } catch (e) {
    if (e.name === 'AbortError') throw e;
  }
  const renderList = () => {
    if (!t.scores.length) { put(list, h('p', { class: 'muted' }, 'No feedback yet.')); return; }
    put(list, table({
      columns: [
        { label: 'Name', value: (s) => s.name },
        { label: 'Value', value: scoreValue },
        { label: 'Source', value: (s) => badge(s.source) },
        { label: 'Comment', value: (s) => s.comment || '' },
        { label: 'When', value: (s) => fmt.time(s.created_time || s.created_ns) },
      ],
      rows: t.scores,
    }));
  };
  const post = async (body) => {
    const c = comment.value.trim();
    if (c) body.comment = c;
    status.textContent = 'Saving…';
    try {
      const s = await api('/api/v1/scores', { method: 'POST', body: { trace_id: t.trace_id, source: 'human', ...body }, signal: ctx.signal });
      t.scores.push(s);
      renderList();
      comment.value = '';
      status.textContent = `Saved ${s.name} = ${scoreValue(s)}.`;
    } catch (e) {
      if (e.name !== 'AbortError') status.textContent = `Not saved: ${e.message}`;
    }
  };
  // the named score: its name picks the input (number, category, boolean)
  const names = configs.map((c) => [c.name, `${c.name} (${c.data_type})`]);
  const valueBox = h('span');
  let nameSel = null;
  let valueInput = null;
  const pickValue = (name) => {
    const cfg = configs.find((c) => c.name === name);
    if (cfg && cfg.data_type === 'categorical') valueInput = select(cfg.categories, cfg.categories[0], () => {}, { name: 'value' });
    else if (cfg && cfg.data_type === 'boolean') valueInput = select([['true', 'true'], ['false', 'false']], 'true', () => {}, { name: 'value' });
    else {
      valueInput = h('input', { name: 'value', type: 'number', step: 'any', size: 6, value: '1',
        min: cfg && cfg.min_value !== null && cfg.min_value !== undefined ? cfg.min_value : null,
        max: cfg && cfg.max_value !== null && cfg.max_value !== undefined ? cfg.max_value : null });
    }
    put(valueBox, valueInput);
  };
  const nameInput = h('input', { name: 'score-name', value: 'quality', size: 12 });
  if (names.length) {
    nameSel = select([...names, ['', 'other…']], names[0][0], (v) => { nameInput.hidden = v !== ''; pickValue(v); }, { name: 'score-config' });
    nameInput.hidden = true;
    pickValue(names[0][0]);
  } else pickValue('quality');
  const submitScore = () => {
    const name = nameSel && nameSel.value ? nameSel.value : nameInput.value.trim();
    if (!name) { status.textContent = 'Give the score a name.'; return; }
    const cfg = configs.find((c) => c.name === name);
    let value = valueInput.value;
    if (!cfg || cfg.data_type === 'numeric') {
      value = Number(value);
      if (!Number.isFinite(value)) { status.textContent = 'The score must be a number.'; return; }
    } else if (cfg.data_type === 'boolean') value = value === 'true';
    post({ name, value });
  };
  renderList();
  return card('Feedback', list,
    h('div', { class: 'feedback' },
      h('div', { class: 'btn-group', role: 'group', 'aria-label': 'Thumbs' },
        h('button', { type: 'button', class: 'btn', title: 'Good answer', 'aria-label': 'Thumbs up', onclick: () => post({ name: 'thumbs_up', value: true, data_type: 'boolean' }) }, thumb(false), ' Good'),
        h('button', { type: 'button', class: 'btn', title: 'Bad answer', 'aria-label': 'Thumbs down', onclick: () => post({ name: 'thumbs_up', value: false, data_type: 'boolean' }) }, thumb(true), ' Bad')),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Score'), h('span', {}, nameSel, nameInput)),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Value'), valueBox),
      h('button', { type: 'button', class: 'btn primary', onclick: submitScore }, 'Add score'),
      h('label', { class: 'field', style: { flex: '1 1 260px' } }, h('span', { class: 'field-label' }, 'Comment'), comment)),
    status);
}

export default async function trace(ctx) {
  const id = ctx.params.id;
  ctx.title(`Trace ${id.slice(0, 8)}`);
  let t;
  try {
    t = await api(`/api/v1/traces/${encodeURIComponent(id)}`, { signal: ctx.signal });
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      empty(ctx.root, 'No such trace', `There is no trace ${id} in this store. Traces appear a few milliseconds after their response.`);
      return;
    }
    if (e.name !== 'AbortError') failure(ctx.root, e, () => trace(ctx));
    return;
  }
  if (!ctx.active()) return;
  t.scores = t.scores || [];
  const detail = h('div');
  const root = ctx.root;
  const tokens = `${fmt.int(t.input_tokens)} in / ${fmt.int(t.output_tokens)} out`;
  const tokNote = [t.cache_read_tokens ? `${fmt.int(t.cache_read_tokens)} cached` : '', t.reasoning_tokens ? `${fmt.int(t.reasoning_tokens)} reasoning` : ''].filter(Boolean).join(', ');
  const fb = await feedback(ctx, t);
  if (!ctx.active()) return;
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== '').map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  put(root,
    h('div', { class: 'crumbs' }, h('a', { href: '/ui/traces' }, 'Traces'), ' / ', h('span', { class: 'mono' }, t.trace_id)),
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, (t.spans && t.spans[0] && t.spans[0].name) || t.operation || 'trace', ' ', statusBadge(t.status),
        t.error_type ? h('span', { class: 'muted' }, ` ${t.error_type}`) : null),
      h('p', { class: 'sub' }, `${fmt.time(t.start_time)} · ${t.endpoint || ''} · ${t.stream ? 'streamed' : 'not streamed'}`))),
    h('div', { class: 'tiles' },
      tile('Latency', fmt.ms(t.duration_ms), t.overhead_us !== null ? `gateway overhead ${fmt.int(t.overhead_us)} µs` : null),
      tile('Time to first token', t.stream ? fmt.ms(t.ttft_ms) : '–'),
      tile('Tokens', tokens, tokNote || null),
      tile('Cost', fmt.usd(t.cost_usd), t.cost_usd === null ? 'no price known for this model' : null),
      tile('Attempts', fmt.int(t.attempts))),
    card('Spans', waterfall(t, detail), detail),
    guardrails(t),
    h('div', { class: 'two-col' }, contentCard('Input', t.input_messages, t, false), contentCard('Output', t.output_messages, t, true)),
    fb,
    card('Details', kv([
      ['Trace id', h('span', { class: 'mono' }, t.trace_id)],
      ['Request id', h('span', { class: 'mono' }, t.request_id)],
      ['Model asked', t.request_model],
      ['Model answered', t.response_model],
      ['Provider', t.provider ? `${t.provider} (${t.provider_type || '?'})` : null],
      ['Deployment', t.deployment],
      ['API key', t.api_key],
      ['Prompt', t.prompt_name ? h('a', { href: `/ui/prompts/${encodeURIComponent(t.prompt_name)}?version=${t.prompt_version}` }, `${t.prompt_name} version ${t.prompt_version}`) : null],
      ['Finish reasons', Array.isArray(t.finish_reasons) ? t.finish_reasons.join(', ') : null],
      ['Response id', t.response_id ? h('span', { class: 'mono' }, t.response_id) : null],
      ['Parameters', t.params ? h('span', { class: 'mono' }, JSON.stringify(t.params)) : null],
    ])));
}
