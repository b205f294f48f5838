// stats-api.test.mjs - GET /api/v1/stats/overview and /api/v1/stats/guardrails
// against a real gateway with the built-in simulator. The traffic: plain and
// streamed requests to two configured models (one priced), failures (the
// simulator's sim/error-500 mode and its per-request `fail` knob), e-mail
// addresses that a pii policy flags and API keys that a secrets policy
// blocks. Once the trace writer has stored every request (polled through
// /api/v1/traces), the statistics are checked against the traces
// themselves: totals, the per-minute series, by=model groups, p50/p95 of
// latency and time to first token (within the documented 1% of the exact
// nearest-rank value), and the guardrail aggregates and latest checks
// against the guardrail spans of each trace. Bad parameters are 400 naming
// the parameter.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './lib.mjs';

const ADMIN = 'adm-stats-secret';
const auth = { authorization: `Bearer ${ADMIN}` };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const EMAIL = 'jane.doe@example.com';
const KEY = 'sk-proj-ZWzwDFrlGXl-z1BVXBt7wRkl8OZfIa2AUk7z7gTqBu4wweockER0Af7B';

async function api(gw, p, init = {}) {
  const r = await fetch(`${gw.url}${p}`, { ...init, headers: { ...auth, ...(init.headers || {}) } });
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: r.status, body };
}

async function chat(gw, body) {
  const r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  await r.arrayBuffer();
  return r.status;
}

// The nearest-rank p-quantile: the value of rank ceil(p n).
function rank(values, p) {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.max(1, Math.ceil(p * v.length - 1e-9)) - 1];
}

function near(got, want, what) {
  assert.ok(typeof got === 'number', `${what}: ${got}`);
  assert.ok(Math.abs(got - want) <= 0.01 * Math.abs(want) + 1e-9, `${what}: ${got}, exact ${want}`);
}

describe('statistics API', () => {
  let gw, from, to;
  let traces = [];          // summaries
  const spans = new Map();  // trace_id -> guardrail spans

  before(async () => {
    gw = await startGateway({
      config: `
server:
  listen: @LISTEN@
  workers: 2
  admin_key: ${ADMIN}
  retry: { max_retries: 0 }
providers:
  - { name: sim, type: simulator }
models:
  - { name: alpha, provider: sim, upstream_model: echo }
  - name: beta
    provider: sim
    upstream_model: lorem
    pricing: { input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }
guardrails:
  policies:
    - { name: pii-flag, stage: input, detectors: [pii], action: flag }
    - { name: no-keys, stage: input, detectors: [secrets], action: block }
`,
    });
    from = Date.now() - 1000;
    const user = (content) => [{ role: 'user', content }];
    const sent = [];
    for (let i = 0; i < 8; i++) sent.push(chat(gw, { model: 'alpha', messages: user(i % 2 ? `write to ${EMAIL}` : `hello ${i}`) }));
    for (let i = 0; i < 6; i++) {
      sent.push(chat(gw, {
        model: 'beta', stream: true, stream_options: { include_usage: true }, max_tokens: 8 + i,
        messages: user(`tell me ${i}`), simulator: { ttft_ms: 5 + 10 * i, token_ms: 1 },
      }));
    }
    for (let i = 0; i < 3; i++) sent.push(chat(gw, { model: 'sim/error-500', messages: user('fail') }));
    sent.push(chat(gw, { model: 'beta', messages: user('injected'), simulator: { fail: 503 } }));
    sent.push(chat(gw, { model: 'alpha', messages: user(`my key is ${KEY}`) }));
    sent.push(chat(gw, { model: 'alpha', messages: user(`key ${KEY} and mail ${EMAIL}`) }));
    const statuses = await Promise.all(sent);
    assert.equal(statuses.filter((s) => s >= 400).length, 6, `statuses ${statuses}`);
    // the writer stores in the background: poll until every request is there
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) {
      const l = await api(gw, '/api/v1/traces?limit=500');
      if (l.status === 200 && l.body.data.length >= sent.length) { traces = l.body.data; break; }
      await sleep(50);
    }
    assert.equal(traces.length, sent.length, 'every request stored within 5 s');
    to = Date.now() + 1000;
    for (const t of traces) {
      const d = await api(gw, `/api/v1/traces/${t.trace_id}`);
      spans.set(t.trace_id, d.body.spans.filter((s) => s.kind === 'guardrail'));
    }
  });

  after(async () => { if (gw) await gw.stop(); });

  it('totals, series and percentiles agree with the traces', async () => {
    const { status, body } = await api(gw, `/api/v1/stats/overview?from=${from}&to=${to}&bucket=1m`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.bucket_s, 60);
    assert.equal(body.by, 'none');
    assert.equal(body.from, new Date(from).toISOString());
    assert.equal(body.to, new Date(to).toISOString());
    const tt = body.totals;
    assert.equal(tt.requests, traces.length);
    const errors = traces.filter((t) => t.status >= 400).length;
    assert.equal(tt.errors, errors);
    near(tt.error_rate, errors / traces.length, 'error_rate');
    const sum = (k) => traces.reduce((a, t) => a + (t[k] ?? 0), 0);
    assert.equal(tt.input_tokens, sum('input_tokens'));
    assert.equal(tt.output_tokens, sum('output_tokens'));
    assert.ok(tt.output_tokens > 0);
    near(tt.cost_usd, sum('cost_usd'), 'cost_usd');
    assert.ok(tt.cost_usd > 0);
    const lat = traces.map((t) => t.duration_ms);
    near(tt.latency_ms.p50, rank(lat, 0.5), 'latency p50');
    near(tt.latency_ms.p95, rank(lat, 0.95), 'latency p95');
    const ttft = traces.filter((t) => t.ttft_ms != null).map((t) => t.ttft_ms);
    assert.equal(ttft.length, 6, 'six streams have a time to first token');
    near(tt.ttft_ms.p50, rank(ttft, 0.5), 'ttft p50');
    near(tt.ttft_ms.p95, rank(ttft, 0.95), 'ttft p95');

    // every bucket present, one a minute, aligned on the minute
    const first = Math.floor(from / 60000) * 60000;
    assert.equal(body.series.length, Math.ceil((to - first) / 60000));
    body.series.forEach((b, i) => assert.equal(b.t, first + i * 60000));
    const perBucket = new Map();
    for (const t of traces) {
      const k = Math.floor(t.start_ns / 1e6 / 60000) * 60000;
      if (!perBucket.has(k)) perBucket.set(k, []);
      perBucket.get(k).push(t);
    }
    for (const b of body.series) {
      const ts = perBucket.get(b.t) || [];
      assert.equal(b.requests, ts.length, `requests at ${b.t}`);
      assert.equal(b.errors, ts.filter((t) => t.status >= 400).length);
      assert.equal(b.input_tokens, ts.reduce((a, t) => a + (t.input_tokens ?? 0), 0));
      if (ts.length === 0) {
        assert.equal(b.latency_p50, null);
        assert.equal(b.ttft_p95, null);
      } else {
        near(b.latency_p50, rank(ts.map((t) => t.duration_ms), 0.5), `latency p50 at ${b.t}`);
        near(b.latency_p95, rank(ts.map((t) => t.duration_ms), 0.95), `latency p95 at ${b.t}`);
      }
    }
    assert.equal(body.series.reduce((a, b) => a + b.requests, 0), traces.length);
    assert.deepEqual(body.groups, []);
  });

  it('groups by model, the busiest first', async () => {
    const { status, body } = await api(gw, `/api/v1/stats/overview?from=${from}&to=${to}&bucket=1m&by=model`);
    assert.equal(status, 200);
    assert.equal(body.by, 'model');
    // requests blocked at the input have no request_model (yet): "(none)"
    const keyOf = (t) => t.request_model || '(none)';
    const count = {};
    for (const t of traces) count[keyOf(t)] = (count[keyOf(t)] || 0) + 1;
    const raw = (k) => (k === '(none)' ? '' : k);
    const order = Object.keys(count).sort((a, b) => count[b] - count[a] || (raw(a) < raw(b) ? -1 : 1));
    assert.deepEqual(body.groups.map((g) => g.key), order);
    for (const g of body.groups) {
      assert.equal(g.totals.requests, count[g.key], g.key);
      const mine = traces.filter((t) => keyOf(t) === g.key);
      assert.equal(g.totals.errors, mine.filter((t) => t.status >= 400).length);
      near(g.totals.latency_ms.p95, rank(mine.map((t) => t.duration_ms), 0.95), `${g.key} p95`);
      assert.equal(g.series.length, body.series.length);
      assert.equal(g.series.reduce((a, b) => a + b.requests, 0), count[g.key]);
    }
    assert.equal(body.groups.find((g) => g.key === 'alpha').totals.ttft_ms.p50, null);
    // a filter narrows the totals
    const f = await api(gw, `/api/v1/stats/overview?from=${from}&to=${to}&model=beta&provider=sim`);
    assert.equal(f.status, 200);
    assert.equal(f.body.totals.requests, count.beta);
  });

  it('guardrail checks, findings and verdicts agree with the spans', async () => {
    const { status, body } = await api(gw, `/api/v1/stats/guardrails?from=${from}&to=${to}&bucket=1m`);
    assert.equal(status, 200, JSON.stringify(body));
    const all = [...spans.entries()].flatMap(([id, ss]) => ss.map((s) => ({ id, ...s })));
    const attr = (s, k) => s.attributes[`genaiops.guardrail.${k}`];
    const nf = (s) => (attr(s, 'findings') || []).length;
    assert.equal(body.totals.checks, all.length);
    assert.equal(body.totals.findings, all.reduce((a, s) => a + nf(s), 0));
    for (const v of ['pass', 'flag', 'redact', 'block', 'error'])
      assert.equal(body.totals.verdicts[v], all.filter((s) => attr(s, 'verdict') === v).length, v);
    assert.equal(body.totals.verdicts.flag, 5, 'four e-mails in alpha, one beside a key');
    assert.equal(body.totals.verdicts.block, 2);
    assert.equal(body.series.reduce((a, b) => a + b.checks, 0), all.length);
    assert.equal(body.series.reduce((a, b) => a + b.block, 0), 2);
    const pii = body.policies.find((p) => p.policy === 'pii-flag' && p.detector === 'pii');
    assert.ok(pii, JSON.stringify(body.policies));
    const piiSpans = all.filter((s) => attr(s, 'policy') === 'pii-flag');
    assert.equal(pii.checks, piiSpans.length);
    assert.equal(pii.findings, piiSpans.reduce((a, s) => a + nf(s), 0));
    assert.equal(pii.verdicts.flag, 5);
    assert.equal(pii.series.reduce((a, b) => a + b.findings, 0), pii.findings);
    const keys = body.policies.find((p) => p.policy === 'no-keys');
    assert.equal(keys.verdicts.block, 2);
    // the latest checks with findings: each one a real span with findings
    const withFindings = all.filter((s) => nf(s) > 0);
    assert.equal(body.traces.length, withFindings.length);
    for (const c of body.traces) {
      const s = (spans.get(c.trace_id) || []).find((x) => attr(x, 'policy') === c.policy && attr(x, 'stage') === c.stage);
      assert.ok(s, `a span for ${JSON.stringify(c)}`);
      assert.deepEqual(c.findings, attr(s, 'findings'));
      assert.equal(c.verdict, attr(s, 'verdict'));
      assert.equal(c.mode, 'enforce');
      assert.ok(c.findings.every((f) => !f.includes('@') && !f.includes('sk-')), 'no content in findings');
      assert.ok(Math.abs(c.t - s.start_ns / 1e6) < 1);
    }
    for (let i = 1; i < body.traces.length; i++) {
      const a = traces.find((t) => t.trace_id === body.traces[i - 1].trace_id);
      const b = traces.find((t) => t.trace_id === body.traces[i].trace_id);
      assert.ok(a.start_ns >= b.start_ns, 'newest first');
    }
    // filters
    const f = await api(gw, `/api/v1/stats/guardrails?from=${from}&to=${to}&policy=no-keys&verdict=block`);
    assert.equal(f.body.totals.checks, 2);
    assert.equal(f.body.policies.length, 1);
    const g = await api(gw, `/api/v1/stats/guardrails?from=${from}&to=${to}&stage=output`);
    assert.equal(g.body.totals.checks, 0);
    assert.deepEqual(g.body.traces, []);
  });

  it('defaults: the last 24 hours in 15-minute buckets', async () => {
    const { status, body } = await api(gw, '/api/v1/stats/overview');
    assert.equal(status, 200);
    assert.equal(body.bucket_s, 900);
    assert.ok(body.series.length === 96 || body.series.length === 97);
    assert.equal(body.totals.requests, traces.length);
    const r = await api(gw, '/api/v1/stats/guardrails?from=1h&bucket=auto');
    assert.equal(r.status, 200);
    assert.equal(r.body.bucket_s, 60);
    assert.equal(r.body.totals.checks > 0, true);
  });

  it('refuses bad parameters with 400 naming them', async () => {
    const cases = [
      ['overview?from=yesterday', 'from'],
      ['overview?to=soon', 'to'],
      ['overview?from=1h&to=2h', 'from'],
      ['overview?bucket=1s&from=7d', 'bucket'],
      ['overview?bucket=fast', 'bucket'],
      ['overview?by=color', 'by'],
      ['overview?limit=5', 'limit'],
      ['overview?model=a&model=b', 'model'],
      ['overview?verdict=block', 'verdict'],
      ['guardrails?stage=middle', 'stage'],
      ['guardrails?verdict=maybe', 'verdict'],
      ['guardrails?by=model', 'by'],
      ['guardrails?from=%zz', 'from'],
    ];
    for (const [q, param] of cases) {
      const { status, body } = await api(gw, `/api/v1/stats/${q}`);
      assert.equal(status, 400, q);
      assert.equal(body.error.param, param, q);
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(body.error.code, 'invalid_parameter');
      assert.ok(body.error.message.length > 10);
    }
    const post = await api(gw, '/api/v1/stats/overview', { method: 'POST', body: '{}' });
    assert.equal(post.status, 405);
    const unknown = await api(gw, '/api/v1/stats/nothing');
    assert.equal(unknown.status, 404);
    const r = await fetch(`${gw.url}/api/v1/stats/overview`);
    assert.equal(r.status, 401, 'the admin key is required');
    await r.arrayBuffer();
  });
});
