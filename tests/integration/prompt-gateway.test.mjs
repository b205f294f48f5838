// prompt-gateway.test.mjs - chat requests that name a prompt: the gateway
// renders the registry's version (labels, latest, partials, variables),
// applies its config, appends the client's messages, records the prompt
// and its version on the trace, and serves a label move within a second
// with no restart. Errors: unknown prompt/label/version -> 404 naming it,
// missing variables -> 400 listing them, bad references -> 400.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './lib.mjs';

const ADMIN = 'adm-prompt-secret';
const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(gw, p, method = 'GET', body) {
  const r = await fetch(`${gw.url}${p}`, { method, headers: auth, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let j;
  try { j = JSON.parse(text); } catch { j = text; }
  return { status: r.status, body: j };
}

async function chat(gw, body, rid) {
  const r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST', headers: { ...auth, ...(rid ? { 'x-request-id': rid } : {}) }, body: JSON.stringify(body),
  });
  const text = await r.text();
  let j;
  try { j = JSON.parse(text); } catch { j = text; }
  return { status: r.status, body: j };
}

async function eventually(fn, ms = 3000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = await fn();
    if (last) return last;
    await sleep(25);
  }
  return fn();
}

// The trace of request id rid (writes are asynchronous).
async function traceOf(gw, rid) {
  return eventually(async () => {
    const l = await api(gw, `/api/v1/traces?q=${encodeURIComponent(rid)}`);
    const row = l.status === 200 && l.body.data.find((t) => t.request_id === rid);
    if (!row) return null;
    const t = await api(gw, `/api/v1/traces/${row.trace_id}`);
    return t.status === 200 ? t.body : null;
  });
}

// Trace fields that hold JSON come back parsed; accept text too.
const json = (v) => (typeof v === 'string' ? JSON.parse(v) : v);

const vars = { company: 'Acme', question: 'Where is my order?' };

describe('prompts rendered by the gateway', () => {
  let gw;
  before(async () => {
    gw = await startGateway({
      config: `
server: { listen: @LISTEN@, workers: 2, admin_key: ${ADMIN} }
telemetry: { capture_content: on }
prompts: { poll_ms: 50ms }
deployments:
  - { name: support, model: sim/echo, prompt: "support/answer@production" }
`,
    });
    let r = await api(gw, '/api/v1/prompts', 'POST', { name: 'shared/tone', type: 'text', template: 'Be brief.', labels: ['production'] });
    assert.ok(r.status === 201 || r.status === 200, JSON.stringify(r.body));
    r = await api(gw, '/api/v1/prompts', 'POST', {
      name: 'support/answer', type: 'chat',
      messages: [{ role: 'system', content: 'You answer for {{company}}. {{> shared/tone}}' }, { role: 'user', content: '{{question}}' }],
      config: { model: 'sim/echo', temperature: 0.3 }, labels: ['production'], message: 'first',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.version, 1);
    // served within a second of the save
    const ok = await eventually(async () => (await chat(gw, { prompt: { name: 'support/answer', variables: vars } })).status === 200, 1000);
    assert.ok(ok, 'the saved prompt is served within a second');
  });
  after(() => gw?.stop());

  it('renders a labelled version with its partial and config, and records it on the trace', async () => {
    const r = await chat(gw, { prompt: { name: 'support/answer', label: 'production', variables: vars } }, 'pg-render');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.choices[0].message.content, 'Where is my order?');
    const t = await traceOf(gw, 'pg-render');
    assert.ok(t, 'trace stored');
    assert.equal(t.prompt_name, 'support/answer');
    assert.equal(t.prompt_version, 1);
    assert.equal(t.request_model, 'sim/echo'); // the prompt's config.model
    const input = json(t.input_messages);
    assert.deepEqual(input[0], { role: 'system', content: 'You answer for Acme. Be brief.' });
    assert.equal(json(t.params).temperature, 0.3);
    assert.ok(t.spans.some((s) => s.kind === 'prompt'), 'a prompt span');
    const root = t.spans.find((s) => s.parent_id === null);
    assert.equal(root.attributes['gen_ai.prompt.name'], 'support/answer');
    assert.equal(root.attributes['genaiops.prompt.version'], 1);
    // the list rows say which version served each trace too
    const l = await api(gw, '/api/v1/traces?q=pg-render');
    const row = l.body.data.find((x) => x.request_id === 'pg-render');
    assert.equal(row.prompt_name, 'support/answer');
    assert.equal(row.prompt_version, 1);
  });

  it("appends the client's messages and lets the client's parameters win", async () => {
    const r = await chat(gw, {
      model: 'sim/echo', temperature: 0.9,
      prompt: { name: 'support/answer', version: 1, variables: vars },
      messages: [{ role: 'assistant', content: 'ok' }, { role: 'user', content: 'and a follow-up' }],
    }, 'pg-append');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.choices[0].message.content, 'and a follow-up');
    const t = await traceOf(gw, 'pg-append');
    assert.equal(json(t.params).temperature, 0.9);
    assert.equal(json(t.input_messages).length, 4);
  });

  it('accepts the string form and a deployment that binds the prompt', async () => {
    let r = await chat(gw, { prompt: 'support/answer@production', messages: [] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'missing_variables');
    assert.match(r.body.error.message, /missing variables: company, question/);
    r = await chat(gw, { model: 'support', prompt: { variables: vars } }, 'pg-deploy');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.choices[0].message.content, 'Where is my order?');
    const t = await traceOf(gw, 'pg-deploy');
    assert.equal(t.prompt_name, 'support/answer');
    r = await chat(gw, { model: 'support', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'missing_variables');
  });

  it('refuses unknown prompts, labels and versions, and bad references', async () => {
    let r = await chat(gw, { prompt: { name: 'nope/none', variables: vars } });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'prompt_not_found');
    assert.match(r.body.error.message, /nope\/none/);
    r = await chat(gw, { prompt: { name: 'support/answer', label: 'canary', variables: vars } });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'label_not_found');
    assert.match(r.body.error.message, /canary/);
    r = await chat(gw, { prompt: { name: 'support/answer', version: 7, variables: vars } });
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'version_not_found');
    r = await chat(gw, { prompt: { name: 'support/answer', label: 'production', version: 1 } });
    assert.equal(r.status, 400);
    r = await chat(gw, { prompt: { name: 'support/answer', varaibles: vars } });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /varaibles/);
    r = await chat(gw, { prompt: 42 });
    assert.equal(r.status, 400);
    r = await chat(gw, { prompt: 'support/answer@' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid_prompt_ref');
  });

  it('serves a label move and a rollback within a second, with no restart', async () => {
    let r = await api(gw, '/api/v1/prompts', 'POST', {
      name: 'support/answer', type: 'chat',
      messages: [{ role: 'system', content: 'You answer for {{company}}, politely.' }, { role: 'user', content: 'Q: {{question}}' }],
      config: { model: 'sim/echo' }, message: 'second',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.version, 2);
    r = await api(gw, '/api/v1/prompts/support/answer/labels', 'POST', { label: 'production', version: 2 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const t0 = Date.now();
    const moved = await eventually(async () => {
      const c = await chat(gw, { prompt: { name: 'support/answer', label: 'production', variables: vars } });
      return c.status === 200 && c.body.choices[0].message.content === 'Q: Where is my order?';
    }, 1000);
    assert.ok(moved, 'the move is served within a second');
    assert.ok(Date.now() - t0 < 1000);
    r = await api(gw, '/api/v1/prompts/support/answer/rollback', 'POST', { label: 'production' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const back = await eventually(async () => {
      const c = await chat(gw, { prompt: { name: 'support/answer', label: 'production', variables: vars } }, `pg-rb-${Date.now()}`);
      return c.status === 200 && c.body.choices[0].message.content === 'Where is my order?';
    }, 1000);
    assert.ok(back, 'the rollback is served within a second');
  });
});

// A rendered prompt is a new body: the input guardrails scan its messages
// (the template's, the variables', the client's appended ones), not the
// messages of the body the client sent.
describe('prompts under input guardrails', () => {
  let gw;
  const KEY = 'sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6';
  before(async () => {
    gw = await startGateway({
      config: `
server: { listen: @LISTEN@, workers: 1, admin_key: ${ADMIN} }
telemetry: { capture_content: on }
prompts: { poll_ms: 50ms }
guardrails:
  policies:
    - { name: input-privacy, stage: input, detectors: [pii, secrets], action: redact }
`,
    });
    const r = await api(gw, '/api/v1/prompts', 'POST', {
      name: 'guarded/answer', type: 'chat',
      messages: [{ role: 'system', content: 'Escalate to ops@acme.example.com for {{company}}.' }, { role: 'user', content: '{{question}}' }],
      config: { model: 'sim/echo' }, labels: ['production'],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });
  after(() => gw?.stop());

  it('redacts the rendered messages and the appended ones', async () => {
    const body = {
      prompt: { name: 'guarded/answer', label: 'production', variables: { company: 'Acme', question: 'mail jane.doe@example.com' } },
      messages: [{ role: 'user', content: `key ${KEY}` }],
    };
    const served = await eventually(async () => (await chat(gw, body)).status === 200, 1000);
    assert.ok(served, 'the saved prompt is served within a second');
    for (const rid of ['pg-guard-1', 'pg-guard-2']) { // the second time the system prompt comes from the memo
      const r = await chat(gw, body, rid);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.choices[0].message.content, 'key <API_KEY_1>');
      const t = await traceOf(gw, rid);
      assert.ok(t, 'trace stored');
      assert.deepEqual(json(t.input_messages), [
        { role: 'system', content: 'Escalate to <EMAIL_1> for Acme.' },
        { role: 'user', content: 'mail <EMAIL_2>' },
        { role: 'user', content: 'key <API_KEY_1>' },
      ]);
    }
  });
});
