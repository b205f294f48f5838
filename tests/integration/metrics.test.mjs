// metrics.test.mjs - GET /metrics after a few requests through the gateway
// (the built-in simulator): the counts show up, a hostile model name is
// escaped, and `promtool check metrics` accepts the text (skipped with a
// message when promtool is absent; PROMTOOL names it, else PATH).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startGateway } from './lib.mjs';

function promtool() {
  const tool = process.env.PROMTOOL || 'promtool';
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  return r.error ? null : tool;
}

// The value of the sample whose name and labels are exactly `series`.
function sample(text, series) {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

async function chat(gw, body) {
  const r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  await r.arrayBuffer();
  return r.status;
}

test('GET /metrics counts requests and passes promtool', async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());
  let r = await fetch(`${gw.url}/metrics`);
  if (r.status === 404) { t.skip('GET /metrics is not wired yet'); return; }
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  await r.text();

  const msgs = [{ role: 'user', content: 'count these tokens' }];
  for (let i = 0; i < 3; i++) assert.equal(await chat(gw, { model: 'sim/echo', messages: msgs }), 200);
  assert.equal(await chat(gw, { model: 'sim/echo', messages: msgs, stream: true, stream_options: { include_usage: true } }), 200);
  assert.equal(await chat(gw, { model: 'nope/x"y\\z\nw', messages: msgs }), 404);

  r = await fetch(`${gw.url}/metrics`);
  const text = await r.text();
  assert.equal(sample(text, 'genaiops_requests_total{model="sim/echo",provider="sim",status="200"}'), 4);
  assert.equal(sample(text, 'genaiops_requests_total{model="nope/x\\"y\\\\z\\nw",provider="",status="404"}'), 1);
  const labels = 'gen_ai_operation_name="chat",gen_ai_provider_name="sim",gen_ai_request_model="sim/echo"';
  assert.equal(sample(text, `gen_ai_client_token_usage_count{${labels},gen_ai_token_type="input"}`), 4);
  assert.equal(sample(text, `gen_ai_client_token_usage_count{${labels},gen_ai_token_type="output"}`), 4);
  assert.equal(sample(text, `gen_ai_client_operation_duration_seconds_count{${labels}}`), 4);
  assert.equal(sample(text, `gen_ai_client_operation_duration_seconds_bucket{${labels},le="+Inf"}`), 4);
  assert.equal(sample(text, `gen_ai_client_operation_time_to_first_chunk_seconds_count{${labels}}`), 1);
  assert.equal(sample(text, 'genaiops_overhead_seconds_count'), 5);
  assert.equal(sample(text, 'genaiops_inflight_requests'), 0);
  for (const name of ['gen_ai_client_token_usage', 'gen_ai_client_operation_duration_seconds',
    'gen_ai_client_operation_time_to_first_chunk_seconds', 'genaiops_requests_total',
    'genaiops_upstream_errors_total', 'genaiops_upstream_retries_total', 'genaiops_inflight_requests',
    'genaiops_overhead_seconds', 'genaiops_cost_usd_total']) {
    assert.ok(text.includes(`# HELP ${name} `), `HELP for ${name}`);
    assert.ok(text.includes(`# TYPE ${name} `), `TYPE for ${name}`);
  }

  const tool = promtool();
  if (!tool) {
    t.diagnostic('promtool not found (set PROMTOOL or install Debian\'s prometheus): skipping promtool check');
    return;
  }
  const check = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  assert.equal((check.stdout + check.stderr).trim(), '', 'promtool lint findings');
});
