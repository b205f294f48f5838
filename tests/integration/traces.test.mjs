// traces.test.mjs - the trace query API and `genaiops traces` against a real
// gateway with the built-in simulator: requests show up in GET
// /api/v1/traces with spans, tokens and cost; the filters and the cursor
// work; unknown ids are 404 and bad filters 400 naming the field; scores
// and score configs attach and validate; the CLI lists, shows and tails
// (locally and through --server). Writes are asynchronous, so reads poll
// for up to 2 s.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { BIN, startGateway } from './lib.mjs';

const ADMIN = 'adm-test-secret';
const auth = { authorization: `Bearer ${ADMIN}` };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(gw, p, init = {}) {
  const r = await fetch(`${gw.url}${p}`, { ...init, headers: { ...auth, 'content-type': 'application/json', ...(init.headers || {}) } });
  const text = await r.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: r.status, body, headers: r.headers };
}

async function chat(gw, body, rid) {
  const r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'x-request-id': rid }, body: JSON.stringify(body),
  });
  await r.arrayBuffer();
  return r;
}

// Polls until fn() returns a truthy value (writes are asynchronous).
async function eventually(fn, ms = 2000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = await fn();
    if (last) return last;
    await sleep(50);
  }
  return fn();
}

function cli(args, env = {}) {
  return spawnSync(BIN, ['traces', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 10000 });
}

describe('traces API and CLI', () => {
  let gw, configFile, wired = true;
  const ids = {};
  let pricedHeader = null;

  before(async () => {
    gw = await startGateway({
      config: `
server:
  listen: @LISTEN@
  workers: 2
  admin_key: ${ADMIN}
  retry: { max_retries: 0 }
telemetry: { capture_content: on }
providers:
  - { name: sim, type: simulator }
  - { name: sim2, type: simulator }
models:
  - name: priced
    provider: sim
    upstream_model: echo
    pricing: { input_cost_per_token: 0.000001, output_cost_per_token: 0.000002 }
  - { name: other, provider: sim2, upstream_model: lorem }
deployments:
  - { name: prod, model: priced }
`,
    });
    configFile = path.join(gw.dir, 'genaiops.yaml');
    const probe = await api(gw, '/api/v1/traces');
    if (probe.status === 404 && probe.body?.error?.code === 'unknown_url') { wired = false; return; }
    let r = await chat(gw, { model: 'priced', messages: [{ role: 'user', content: 'Needle in a haystack' }], temperature: 0.5 }, 'tr-priced');
    assert.equal(r.status, 200);
    pricedHeader = r.headers.get('x-genaiops-cost-usd');
    r = await chat(gw, { model: 'other', stream: true, messages: [{ role: 'user', content: 'stream please' }] }, 'tr-stream');
    assert.equal(r.status, 200);
    r = await chat(gw, { model: 'sim/error-500', messages: [{ role: 'user', content: 'fail' }] }, 'tr-error');
    assert.ok(r.status >= 500);
    r = await chat(gw, { model: 'prod', messages: [{ role: 'user', content: 'via deployment' }] }, 'tr-deploy');
    assert.equal(r.status, 200);
    const all = await eventually(async () => {
      const l = await api(gw, '/api/v1/traces');
      return l.status === 200 && l.body.data.length >= 4 ? l.body.data : null;
    });
    assert.ok(all, 'four traces stored within 2 s');
    for (const t of all) ids[t.request_id] = t.trace_id;
  });

  after(async () => { if (gw) await gw.stop(); });

  it('lists traces newest first with tokens, cost and latency', async (t) => {
    if (!wired) return t.skip('the /api/v1/traces route is not wired yet');
    const { status, body } = await api(gw, '/api/v1/traces');
    assert.equal(status, 200);
    assert.deepEqual(body.data.map((x) => x.request_id), ['tr-deploy', 'tr-error', 'tr-stream', 'tr-priced']);
    assert.equal(body.next_cursor, null);
    const p = body.data.find((x) => x.request_id === 'tr-priced');
    assert.equal(p.request_model, 'priced');
    assert.equal(p.provider, 'sim');
    assert.equal(p.status, 200);
    assert.ok(p.input_tokens > 0 && p.output_tokens > 0);
    assert.ok(Math.abs(p.cost_usd - (p.input_tokens * 1e-6 + p.output_tokens * 2e-6)) < 1e-12, `cost ${p.cost_usd}`);
    // the response said the same cost, to ten decimals
    assert.equal(pricedHeader, p.cost_usd.toFixed(10));
    assert.ok(p.duration_ms >= 0);
    assert.match(p.trace_id, /^[0-9a-f]{32}$/);
    assert.equal(body.data.find((x) => x.request_id === 'tr-stream').stream, true);
  });

  it('filters by model, provider, status, deployment, latency, cost, time and text', async (t) => {
    if (!wired) return t.skip('not wired');
    const q = async (qs) => (await api(gw, `/api/v1/traces?${qs}`)).body.data.map((x) => x.request_id).sort();
    assert.deepEqual(await q('model=priced'), ['tr-priced']);
    assert.deepEqual(await q('provider=sim2'), ['tr-stream']);
    assert.deepEqual(await q('status=error'), ['tr-error']);
    assert.deepEqual(await q('status=ok'), ['tr-deploy', 'tr-priced', 'tr-stream']);
    assert.deepEqual(await q('status=200&provider=sim'), ['tr-deploy', 'tr-priced']);
    assert.deepEqual(await q('deployment=prod'), ['tr-deploy']);
    assert.deepEqual(await q('min_cost=0.0000001'), ['tr-deploy', 'tr-priced']);
    assert.deepEqual(await q('min_latency_ms=3600000'), []);
    assert.deepEqual(await q('q=NEEDLE'), ['tr-priced']);
    assert.deepEqual(await q('q=tr-str'), ['tr-stream']);
    assert.deepEqual(await q('from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z'), []);
    assert.deepEqual((await q(`from=${Date.now() - 600000}`)).length, 4);
  });

  it('pages with an opaque cursor', async (t) => {
    if (!wired) return t.skip('not wired');
    const seen = [];
    let cursor = null;
    for (let i = 0; i < 10; i++) {
      const { status, body } = await api(gw, `/api/v1/traces?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(status, 200);
      seen.push(...body.data.map((x) => x.request_id));
      cursor = body.next_cursor;
      if (!cursor) break;
    }
    assert.deepEqual(seen, ['tr-deploy', 'tr-error', 'tr-stream', 'tr-priced']);
  });

  it('refuses bad filters with 400 naming the field', async (t) => {
    if (!wired) return t.skip('not wired');
    for (const [qs, param] of [['limit=0', 'limit'], ['limit=9999', 'limit'], ['status=teapot', 'status'],
      ['from=yesterday', 'from'], ['to=2024-02-30T00:00:00Z', 'to'], ['min_cost=-1', 'min_cost'],
      ['min_latency_ms=x', 'min_latency_ms'], ['cursor=abc', 'cursor'], ['colour=red', 'colour'], ['model=a&model=b', 'model']]) {
      const { status, body } = await api(gw, `/api/v1/traces?${qs}`);
      assert.equal(status, 400, qs);
      assert.equal(body.error.param, param, qs);
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(body.error.message, new RegExp(param));
    }
  });

  it('shows one trace with spans, content and params; 404 for unknown ids', async (t) => {
    if (!wired) return t.skip('not wired');
    const { status, body } = await api(gw, `/api/v1/traces/${ids['tr-priced']}`);
    assert.equal(status, 200);
    assert.equal(body.trace_id, ids['tr-priced']);
    assert.equal(body.params.temperature, 0.5);
    assert.ok(Array.isArray(body.finish_reasons));
    assert.ok(body.spans.length >= 2, 'a request span and an attempt span');
    const root = body.spans[0];
    assert.equal(root.kind, 'request');
    assert.equal(root.name, 'chat priced');
    assert.equal(root.parent_id, null);
    assert.equal(root.attributes['gen_ai.request.model'], 'priced');
    assert.equal(root.attributes['gen_ai.usage.input_tokens'], body.input_tokens);
    const attempt = body.spans.find((s) => s.kind === 'attempt');
    assert.equal(attempt.parent_id, root.span_id);
    assert.equal(attempt.attributes['gen_ai.provider.name'], 'sim');
    assert.deepEqual(body.scores, []);
    assert.match(JSON.stringify(body.input_messages), /Needle in a haystack/);
    for (const id of ['0123456789abcdef0123456789abcdef', 'not-an-id']) {
      const r = await api(gw, `/api/v1/traces/${id}`);
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, 'trace_not_found');
    }
  });

  it('needs the admin key', async (t) => {
    if (!wired) return t.skip('not wired');
    const r = await fetch(`${gw.url}/api/v1/traces`);
    assert.equal(r.status, 401);
    await r.arrayBuffer();
  });

  it('attaches scores, validated by score configs', async (t) => {
    if (!wired) return t.skip('not wired');
    const post = (p, b) => api(gw, p, { method: 'POST', body: JSON.stringify(b) });
    let r = await post('/api/v1/score-configs', { name: 'quality', data_type: 'numeric', min_value: 0, max_value: 1 });
    assert.equal(r.status, 201);
    r = await post('/api/v1/score-configs', { name: 'verdict', data_type: 'categorical', categories: ['good', 'bad'] });
    assert.equal(r.status, 201);
    r = await post('/api/v1/score-configs', { name: 'quality', data_type: 'numeric' });
    assert.equal(r.status, 409);
    r = await post('/api/v1/score-configs', { name: 'x', data_type: 'categorical' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'categories');
    r = await api(gw, '/api/v1/score-configs');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.map((c) => c.name), ['quality', 'verdict']);

    const tid = ids['tr-priced'];
    r = await post('/api/v1/scores', { trace_id: tid, name: 'quality', value: 0.8, comment: 'solid', source: 'human' });
    assert.equal(r.status, 201);
    assert.match(r.body.id, /^[0-9a-f]{32}$/);
    r = await post('/api/v1/scores', { trace_id: tid, name: 'verdict', value: 'good', source: 'model' });
    assert.equal(r.status, 201);
    r = await post('/api/v1/scores', { trace_id: tid, name: 'thumbs_up', value: true, source: 'code' });
    assert.equal(r.status, 201);
    for (const [b, status, param] of [
      [{ trace_id: tid, name: 'quality', value: 7 }, 400, 'value'],
      [{ trace_id: tid, name: 'verdict', value: 'meh' }, 400, 'value'],
      [{ trace_id: tid, name: 'x', value: 1, source: 'robot' }, 400, 'source'],
      [{ trace_id: tid, value: 1 }, 400, 'name'],
      [{ trace_id: 'ffffffffffffffffffffffffffffffff', name: 'x', value: 1 }, 404, 'trace_id'],
    ]) {
      r = await post('/api/v1/scores', b);
      assert.equal(r.status, status, JSON.stringify(b));
      assert.equal(r.body.error.param, param, JSON.stringify(b));
    }
    r = await fetch(`${gw.url}/api/v1/scores`, { method: 'POST', headers: auth, body: '{oops' });
    assert.equal(r.status, 400);
    await r.arrayBuffer();
    const { body } = await api(gw, `/api/v1/traces/${tid}`);
    assert.deepEqual(body.scores.map((s) => [s.name, s.value, s.source]),
      [['quality', 0.8, 'human'], ['verdict', 'good', 'model'], ['thumbs_up', true, 'code']]);
  });

  it('genaiops traces list and show, locally and through --server', async (t) => {
    if (!wired) return t.skip('not wired');
    let r = cli(['list', '--config', configFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^TIME\s+ST\s+MODEL/);
    for (const id of Object.values(ids)) assert.ok(r.stdout.includes(id), id);
    r = cli(['list', '--server', gw.url, '--admin-key', ADMIN, '--status', 'error', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.data.map((x) => x.request_id), ['tr-error']);
    r = cli(['list', '--model', 'priced', '--json'], { GENAIOPS_SERVER: gw.url, GENAIOPS_ADMIN_KEY: ADMIN });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).data.map((x) => x.request_id), ['tr-priced']);
    r = cli(['list', '--server', gw.url, '--admin-key', ADMIN, '--limit', '0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /limit/);
    r = cli(['list', '--config', configFile, '--status', 'teapot']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /status/);
    r = cli(['list', '--server', gw.url]);
    assert.equal(r.status, 1, 'no admin key');
    r = cli(['show', ids['tr-priced'], '--server', gw.url, '--admin-key', ADMIN]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^spans$/m);
    assert.match(r.stdout, /chat priced/);
    assert.match(r.stdout, /attempt sim/);
    assert.match(r.stdout, /quality = 0\.8/);
    r = cli(['show', ids['tr-priced'], '--config', configFile, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).trace_id, ids['tr-priced']);
    r = cli(['show', 'ffffffffffffffffffffffffffffffff', '--config', configFile]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no trace/);
  });

  it('genaiops traces tail prints the latest and then new traces', async (t) => {
    if (!wired) return t.skip('not wired');
    // a request id, or its trace id in the table
    const shows = (out, rid) => out.includes(`"${rid}"`) || (ids[rid] !== undefined && out.includes(ids[rid]));
    let latest = 'tr-deploy', older = 'tr-error';
    for (const args of [['--server', gw.url, '--admin-key', ADMIN], ['--config', configFile, '--json']]) {
      const p = spawn(BIN, ['traces', 'tail', '-n', '1', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => { out += d; });
      const exited = new Promise((resolve) => p.once('exit', (code, signal) => resolve({ code, signal })));
      const rid = `tr-tail-${args[0].slice(2)}`;
      try {
        assert.ok(await eventually(() => shows(out, latest)), `latest printed: ${out}`);
        assert.ok(!shows(out, older), 'only the latest one');
        await chat(gw, { model: 'sim/echo', messages: [{ role: 'user', content: 'follow me' }] }, rid);
        const stored = await eventually(async () => (await api(gw, '/api/v1/traces?q=' + rid)).body.data[0]);
        ids[rid] = stored.trace_id;
        assert.ok(await eventually(() => shows(out, rid), 3000), `new trace printed: ${out}`);
        if (args.includes('--json')) {
          const lines = out.trim().split('\n').map((l) => JSON.parse(l));
          assert.deepEqual(lines.map((l) => l.request_id), [latest, rid]);
        } else {
          assert.match(out, /sim\/echo/);
          assert.equal(out.trim().split('\n').length, 3, 'header, latest, new');
        }
      } finally {
        p.kill('SIGINT');
      }
      const { code } = await exited;
      assert.equal(code, 0, 'Ctrl-C ends tail cleanly');
      older = latest;
      latest = rid;
    }
  });
});

describe('traces CLI without a server', () => {
  it('explains a missing store and bad usage', () => {
    const dir = path.join(process.env.TMPDIR || '/tmp', `genaiops-traces-${process.pid}`);
    spawnSync('mkdir', ['-p', dir]);
    const cfg = path.join(dir, 'c.yaml');
    writeFileSync(cfg, `store: { url: "sqlite://${dir}/missing/none.db" }\n`);
    let r = cli(['list', '--config', cfg]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot open the store/);
    r = cli(['frobnicate']);
    assert.equal(r.status, 2);
    r = cli(['show']);
    assert.equal(r.status, 2);
    r = cli(['list', '--bogus']);
    assert.equal(r.status, 2);
    r = cli(['list', '--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /genaiops traces list/);
  });
});
