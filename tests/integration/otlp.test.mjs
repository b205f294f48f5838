// otlp.test.mjs - OTLP/HTTP export end to end: a node HTTP receiver on
// loopback is telemetry.otlp.endpoint; requests go through the gateway to
// the simulator; the receiver must get /v1/traces bodies whose every span
// follows the OTLP JSON rules (hex ids of the right length, times as digit
// strings, AnyValue shapes, parent links inside the trace, the gen_ai.*
// attributes with their types) and /v1/metrics bodies that parse. Also: a
// SIGTERM flushes what is queued, and a receiver that answers 503 first is
// retried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { SANITIZED, startGateway } from './lib.mjs';

// A receiver that records every request and answers with the next status of
// `statuses` (200 when they run out).
function startReceiver(statuses = []) {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const status = statuses.length ? statuses.shift() : 200;
      got.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status, status === 503 ? { 'retry-after': '0', 'content-type': 'application/json' } : { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    got, url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  })));
}

async function until(cond, ms = SANITIZED ? 20000 : 8000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

const HEX = (n) => new RegExp(`^[0-9a-f]{${n}}$`);
const DIGITS = /^\d+$/;

// Checks an AnyValue: exactly one field with the right JSON type. Returns its kind.
function anyKind(v) {
  assert.equal(typeof v, 'object');
  const keys = Object.keys(v);
  assert.equal(keys.length, 1, `one value field in ${JSON.stringify(v)}`);
  const [k] = keys;
  switch (k) {
    case 'stringValue': assert.equal(typeof v[k], 'string'); break;
    case 'intValue': assert.match(v[k], /^-?\d+$/); break;
    case 'doubleValue': assert.equal(typeof v[k], 'number'); break;
    case 'boolValue': assert.equal(typeof v[k], 'boolean'); break;
    case 'arrayValue': assert.ok(Array.isArray(v[k].values)); v[k].values.forEach(anyKind); break;
    default: assert.fail(`unknown AnyValue field ${k}`);
  }
  return k;
}

// Validates one ExportTraceServiceRequest; returns its spans, each with a
// plain attrs map { key: AnyValue }.
function validateTraces(body) {
  const req = JSON.parse(body);
  assert.ok(Array.isArray(req.resourceSpans) && req.resourceSpans.length >= 1);
  const spans = [];
  for (const rs of req.resourceSpans) {
    const res = Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value]));
    assert.deepEqual(res['service.name'], { stringValue: 'genaiops' });
    assert.equal(anyKind(res['service.version']), 'stringValue');
    for (const ss of rs.scopeSpans) {
      assert.equal(ss.scope.name, 'genaiops');
      for (const s of ss.spans) {
        assert.match(s.traceId, HEX(32));
        assert.notEqual(s.traceId, '0'.repeat(32));
        assert.match(s.spanId, HEX(16));
        if (s.parentSpanId !== undefined && s.parentSpanId !== '') assert.match(s.parentSpanId, HEX(16));
        assert.equal(typeof s.name, 'string');
        assert.ok([1, 2, 3].includes(s.kind), `kind ${s.kind}`);
        assert.match(s.startTimeUnixNano, DIGITS);
        assert.match(s.endTimeUnixNano, DIGITS);
        assert.ok(BigInt(s.startTimeUnixNano) <= BigInt(s.endTimeUnixNano));
        assert.ok(BigInt(s.startTimeUnixNano) > 1600000000n * 1000000000n, 'epoch nanoseconds');
        const attrs = {};
        for (const a of s.attributes) { assert.equal(typeof a.key, 'string'); anyKind(a.value); attrs[a.key] = a.value; }
        if (s.status !== undefined && Object.keys(s.status).length) {
          assert.equal(s.status.code, 2);
          assert.equal(typeof s.status.message, 'string');
        }
        spans.push({ ...s, attrs });
      }
    }
  }
  // parent links stay inside the trace and point at its root
  const byId = new Map(spans.map((s) => [`${s.traceId}/${s.spanId}`, s]));
  for (const s of spans) {
    if (s.parentSpanId) {
      const p = byId.get(`${s.traceId}/${s.parentSpanId}`);
      assert.ok(p, `parent of ${s.spanId} in the same body`);
      assert.equal(p.kind, 2);
    }
  }
  return spans;
}

function config(endpoint, extra = '') {
  return `
server:
  listen: @LISTEN@
providers:
  - { name: sim, type: simulator }
telemetry:
  otlp:
    endpoint: "${endpoint}"
    interval_ms: 200ms
    batch_size: 64
    headers: { x-otlp-token: t0k3n }
${extra}`;
}

async function chat(gw, body, headers = {}) {
  const r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  await r.text();
  return r;
}

test('traces and metrics reach an OTLP receiver with valid spans', async (t) => {
  const rx = await startReceiver();
  t.after(() => rx.close());
  const gw = await startGateway({ config: config(rx.url) });
  t.after(() => gw.stop());

  const plain = await chat(gw, { model: 'sim/echo', messages: [{ role: 'user', content: 'hello there' }], temperature: 0.25, max_tokens: 50 }, { 'x-request-id': 'otlp-1' });
  assert.equal(plain.status, 200);
  const streamed = await chat(gw, { model: 'sim/echo', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream me' }] }, { 'x-request-id': 'otlp-2' });
  assert.equal(streamed.status, 200);

  const traceSpans = () => rx.got.filter((g) => g.path === '/v1/traces').flatMap((g) => validateTraces(g.body));
  assert.ok(await until(() => traceSpans().filter((s) => s.kind === 2).length >= 2), `traces arrived: ${gw.logs()}`);
  for (const g of rx.got.filter((x) => x.path === '/v1/traces')) {
    assert.match(g.headers['content-type'], /^application\/json/);
    assert.equal(g.headers['x-otlp-token'], 't0k3n');
  }
  const spans = traceSpans();
  const roots = spans.filter((s) => s.kind === 2);
  const byReq = Object.fromEntries(roots.map((s) => [s.attrs['genaiops.request_id']?.stringValue, s]));
  const r1 = byReq['otlp-1'], r2 = byReq['otlp-2'];
  assert.ok(r1 && r2, 'both requests exported');
  for (const r of [r1, r2]) {
    assert.deepEqual(r.attrs['gen_ai.operation.name'], { stringValue: 'chat' });
    assert.deepEqual(r.attrs['gen_ai.request.model'], { stringValue: 'sim/echo' });
    assert.equal(anyKind(r.attrs['gen_ai.provider.name']), 'stringValue');
    assert.equal(anyKind(r.attrs['gen_ai.usage.input_tokens']), 'intValue');
    assert.equal(anyKind(r.attrs['gen_ai.usage.output_tokens']), 'intValue');
    assert.equal(anyKind(r.attrs['gen_ai.request.stream']), 'boolValue');
    assert.deepEqual(r.attrs['http.response.status_code'], { intValue: '200' });
    if (r.attrs['gen_ai.response.finish_reasons']) assert.equal(anyKind(r.attrs['gen_ai.response.finish_reasons']), 'arrayValue');
    if (r.attrs['genaiops.cost_usd']) assert.equal(anyKind(r.attrs['genaiops.cost_usd']), 'doubleValue');
    assert.equal(r.attrs['error.type'], undefined);
    assert.equal(r.name, 'chat sim/echo');
    // at least one attempt span under each root
    const kids = spans.filter((s) => s.traceId === r.traceId && s.parentSpanId === r.spanId);
    assert.ok(kids.length >= 1, 'an attempt span');
    for (const k of kids) {
      assert.equal(k.kind, 3);
      assert.match(k.name, /^attempt /);
      assert.equal(anyKind(k.attrs['gen_ai.provider.name']), 'stringValue');
    }
  }
  assert.deepEqual(r1.attrs['gen_ai.request.temperature'], { doubleValue: 0.25 });
  assert.deepEqual(r1.attrs['gen_ai.request.max_tokens'], { intValue: '50' });
  assert.deepEqual(r1.attrs['gen_ai.request.stream'], { boolValue: false });
  assert.deepEqual(r2.attrs['gen_ai.request.stream'], { boolValue: true });
  assert.equal(anyKind(r2.attrs['gen_ai.response.time_to_first_chunk']), 'doubleValue');
  assert.equal(r1.attrs['gen_ai.response.time_to_first_chunk'], undefined);

  // metrics (on by default) arrive and parse
  assert.ok(await until(() => rx.got.some((g) => g.path === '/v1/metrics')), 'a metrics export');
  for (const g of rx.got.filter((x) => x.path === '/v1/metrics')) {
    const m = JSON.parse(g.body);
    assert.ok(Array.isArray(m.resourceMetrics));
  }
});

test('SIGTERM flushes queued traces; a 503 is retried', async (t) => {
  const rx = await startReceiver([503]);
  t.after(() => rx.close());
  const gw = await startGateway({ config: config(rx.url).replace('interval_ms: 200ms', 'interval_ms: 60s').replace('batch_size: 64', 'batch_size: 1000') });
  for (let i = 0; i < 3; i++) assert.equal((await chat(gw, { model: 'sim/echo', messages: [{ role: 'user', content: `n${i}` }] }, { 'x-request-id': `flush-${i}` })).status, 200);
  const { code, signal, logs } = await gw.stop('SIGTERM');
  assert.equal(code, 0, `exit ${code} ${signal}: ${logs}`);
  const traces = rx.got.filter((g) => g.path === '/v1/traces');
  assert.ok(traces.length >= 2, 'the first try got 503 and was retried');
  assert.equal(traces[0].status, 503);
  const ids = new Set(traces.filter((g) => g.status === 200).flatMap((g) => validateTraces(g.body))
    .map((s) => s.attrs['genaiops.request_id']?.stringValue).filter(Boolean));
  for (let i = 0; i < 3; i++) assert.ok(ids.has(`flush-${i}`), `flush-${i} exported before exit`);
});
