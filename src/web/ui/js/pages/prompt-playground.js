// prompt-playground.js - the prompt page's playground for one version: an
// input per template variable, "Render" (POST /api/v1/prompts/{name}/render,
// which shows the rendered messages or names the missing variables), and
// "Run", which renders, then POSTs the messages with the version's request
// config (temperature, max_tokens...) to /v1/chat/completions with the model
// picked (the /v1/models ids; the version's config.model when the gateway
// serves it, else sim/echo). The answer comes with its tokens, the cost
// (x-genaiops-cost-usd), the latency measured here, the gateway's overhead
// (x-genaiops-overhead-us) and a link to its trace (x-request-id).
//
// Variable values and the model live in the URL (?var.NAME=..., ?model=),
// so a playground set-up can be shared. A value that starts with [ or { is
// JSON (lists for sections, objects for {{a.b}}); anything else is text; an
// empty one is left out, which a section treats as false.

import { apiFetch, ApiError, api, responseError } from '../api.js';
import { card, field, fmt, h, put, select, tile } from '../ui.js';

// The chat request fields a prompt's config may set (as the gateway applies
// them: src/prompt/served.c); other config keys are the team's own.
const REQUEST_FIELDS = new Set(['temperature', 'top_p', 'max_tokens', 'max_completion_tokens', 'frequency_penalty',
  'presence_penalty', 'seed', 'stop', 'tools', 'tool_choice', 'parallel_tool_calls', 'response_format', 'logprobs',
  'top_logprobs', 'logit_bias', 'reasoning_effort', 'n', 'user', 'metadata', 'service_tier', 'modalities',
  'prediction', 'audio', 'store', 'verbosity', 'web_search_options']);

const TAG = /\{\{\s*([#^&{]?)\s*([^}\s]+)\s*\}?\}\}/g;

// The templates of a version: the text, or every message's content.
function templates(v) {
  if (v.type === 'text') return [v.template || ''];
  return (v.messages || []).map((m) => (typeof m.content === 'string' ? m.content : ''));
}

// Top-level variable names from the templates, and which of them open a
// section ({{#x}} / {{^x}}); used when the API gives no `variables`.
export function scanVariables(v) {
  const names = new Set();
  const sections = new Set();
  for (const t of templates(v)) {
    for (const m of t.matchAll(TAG)) {
      const [, sigil, ref] = m;
      if (ref === '.' || /^[!>/=]/.test(ref)) continue;
      const top = ref.split('.')[0];
      if (!top) continue;
      names.add(top);
      if (sigil === '#' || sigil === '^') sections.add(top);
    }
  }
  return { names: [...names], sections };
}

// The request fields of a config: what Run sends besides model and messages.
export function requestConfig(config) {
  const out = {};
  for (const [k, v] of Object.entries(config || {})) if (REQUEST_FIELDS.has(k)) out[k] = v;
  return out;
}

function messageBlock(role, text) {
  return h('div', { class: 'message' }, h('div', { class: 'message-role' }, role || 'message'),
    h('div', { class: 'message-body' }, text === '' ? h('span', { class: 'muted' }, '(empty)') : text));
}

function contentText(c) {
  if (typeof c === 'string') return c;
  if (c === null || c === undefined) return '';
  return JSON.stringify(c, null, 2);
}

// playground(ctx, {base, version, models}) -> the playground card.
export function playground(ctx, { base, version: v, models }) {
  const scanned = scanVariables(v);
  const names = Array.isArray(v.variables) ? v.variables : scanned.names;
  const inputs = new Map();
  const rendered = h('div', { class: 'pg-rendered' }, h('p', { class: 'muted' }, 'Fill in the variables and press Render to see the messages.'));
  const answer = h('div', { class: 'pg-answer' });
  const status = h('p', { class: 'pg-status', role: 'status' });
  const ids = (models || []).map((m) => m.id);
  const cfgModel = v.config && typeof v.config.model === 'string' ? v.config.model : '';
  const fallback = ids.includes(cfgModel) ? cfgModel : (ids.includes('sim/echo') ? 'sim/echo' : (ids[0] || 'sim/echo'));
  let model = ctx.query.get('model') || fallback;
  if (!ids.includes(model)) ids.unshift(model);
  const reqCfg = requestConfig(v.config);
  let busy = false;

  const say = (text, bad = false) => {
    status.textContent = text;
    status.className = bad ? 'pg-status error-text' : 'pg-status muted';
    status.setAttribute('role', bad ? 'alert' : 'status');
  };

  const varFields = names.map((n) => {
    const input = h('input', {
      name: `var-${n}`, value: ctx.query.get(`var.${n}`) || '', placeholder: scanned.sections.has(n) ? 'empty: section skipped' : '',
      'aria-label': n, autocomplete: 'off',
      oninput: (e) => { e.target.removeAttribute('aria-invalid'); ctx.setQuery({ [`var.${n}`]: e.target.value }); },
    });
    inputs.set(n, input);
    return field(scanned.sections.has(n) ? `${n} (section)` : n, input);
  });

  // The variables object, or an error naming the value that is not JSON.
  function variables() {
    const out = {};
    for (const [n, input] of inputs) {
      const raw = input.value;
      if (raw.trim() === '') continue;
      const t = raw.trim();
      if (t[0] === '[' || t[0] === '{') {
        try { out[n] = JSON.parse(t); } catch {
          input.setAttribute('aria-invalid', 'true');
          throw new Error(`${n}: a value starting with ${t[0]} must be JSON (${t[0] === '[' ? 'a list' : 'an object'}).`);
        }
      } else out[n] = raw;
    }
    return out;
  }

  function markMissing(err) {
    const missing = err instanceof ApiError && err.code === 'missing_variables' ? (err.message.split(':')[1] || '').split(',').map((s) => s.trim()) : [];
    for (const n of missing) if (inputs.has(n)) inputs.get(n).setAttribute('aria-invalid', 'true');
    const first = missing.find((n) => inputs.has(n));
    if (first) inputs.get(first).focus();
  }

  // Renders the version with the inputs; returns the API's answer or null
  // (the error is shown).
  async function render() {
    let vars;
    try { vars = variables(); } catch (e) { say(e.message, true); return null; }
    try {
      const r = await api(`${base}/render`, { method: 'POST', body: { version: v.version, variables: vars }, signal: ctx.signal });
      if (!ctx.active()) return null;
      inputs.forEach((i) => i.removeAttribute('aria-invalid'));
      if (r.type === 'text' || typeof r.text === 'string') put(rendered, h('h3', {}, 'Rendered text'), h('pre', { class: 'code' }, r.text));
      else put(rendered, h('h3', {}, 'Rendered messages'), (r.messages || []).map((m) => messageBlock(m.role, contentText(m.content))));
      return r;
    } catch (e) {
      if (e.name === 'AbortError') return null;
      say(e.status === 401 ? 'This server needs the admin key: sign in (top right), then try again.' : e.message, true);
      markMissing(e);
      return null;
    }
  }

  async function onRender() {
    if (busy) return;
    busy = true;
    say('Rendering…');
    const r = await render();
    busy = false;
    if (r) say(`Rendered version ${r.version}.`);
  }

  async function onRun() {
    if (busy) return;
    busy = true;
    runBtn.disabled = true;
    try {
      say('Rendering…');
      const r = await render();
      if (!r) return;
      const messages = Array.isArray(r.messages) ? r.messages : [{ role: 'user', content: r.text }];
      const body = { ...reqCfg, model, messages };
      say(`Running on ${model}…`);
      const t0 = performance.now();
      const res = await apiFetch('/v1/chat/completions', { method: 'POST', body, signal: ctx.signal });
      if (!res.ok) {
        const err = await responseError(res);
        if (!ctx.active()) return;
        say(`${model} answered ${res.status}: ${err.message}`, true);
        put(answer, requestLink(res));
        return;
      }
      const j = await res.json();
      const ms = performance.now() - t0;
      if (!ctx.active()) return;
      say(`Ran version ${r.version} on ${model}.`);
      showAnswer(j, res, ms, body);
    } catch (e) {
      if (e.name === 'AbortError') return;
      say(e.message, true);
    } finally {
      busy = false;
      runBtn.disabled = false;
    }
  }

  function requestLink(res) {
    const id = res.headers.get('x-request-id');
    if (!id) return null;
    return h('p', {}, h('a', { href: `/ui/traces?q=${encodeURIComponent(id)}`, class: 'pg-trace' }, 'Open the trace →'),
      ' ', h('span', { class: 'mono muted' }, id));
  }

  function showAnswer(j, res, ms, body) {
    const choice = (j.choices && j.choices[0]) || {};
    const msg = choice.message || {};
    const usage = j.usage || {};
    const costHeader = res.headers.get('x-genaiops-cost-usd');
    const cost = costHeader !== null && costHeader !== '' ? Number(costHeader) : null;
    const overhead = res.headers.get('x-genaiops-overhead-us');
    const extra = Object.keys(body).filter((k) => k !== 'model' && k !== 'messages');
    put(answer,
      h('h3', {}, 'Answer'),
      messageBlock(`${msg.role || 'assistant'}${choice.finish_reason ? ` · ${choice.finish_reason}` : ''}`, contentText(msg.content)),
      msg.tool_calls ? h('pre', { class: 'code' }, JSON.stringify(msg.tool_calls, null, 2)) : null,
      h('div', { class: 'tiles pg-tiles' },
        tile('Tokens', `${fmt.int(usage.prompt_tokens)} in / ${fmt.int(usage.completion_tokens)} out`),
        tile('Cost', cost === null || Number.isNaN(cost) ? '–' : fmt.usd(cost), cost === null ? 'no price known for this model' : null),
        tile('Latency', fmt.ms(ms), 'measured in this page'),
        tile('Gateway overhead', overhead !== null ? `${fmt.int(Number(overhead))} µs` : '–')),
      h('p', { class: 'muted' }, `model ${j.model || model}`, extra.length ? ` · from the config: ${extra.map((k) => `${k} ${JSON.stringify(body[k])}`).join(', ')}` : ''),
      requestLink(res));
  }

  const runBtn = h('button', { type: 'button', class: 'btn primary', onclick: onRun }, 'Run');
  const modelSel = select(ids.map((id) => [id, id]), model, (val) => { model = val; ctx.setQuery({ model: val === fallback ? '' : val }); }, { name: 'model' });

  return card(`Playground · version ${v.version}`,
    names.length ? h('div', { class: 'pg-vars' }, varFields)
      : h('p', { class: 'muted' }, 'This version has no variables.'),
    names.length ? h('p', { class: 'muted pg-hint' }, 'Values are text. Start a value with [ or { to give JSON: a list for a section, an object for {{a.b}}.') : null,
    h('div', { class: 'toolbar pg-actions' },
      h('button', { type: 'button', class: 'btn', onclick: onRender }, 'Render'),
      field('Model', modelSel),
      runBtn),
    status,
    h('div', { class: 'two-col' }, rendered, answer));
}
