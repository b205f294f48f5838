// eval-provider.test.mjs - `genaiops eval` against an OpenAI-compatible
// mock upstream (openai:chat:MODEL with apiBaseUrl): the request bodies it
// sends, the response cache (hits, --no-cache, --repeat), retries (429 then
// 200, Retry-After, unreachable provider, 400 not retried), and model-graded
// and command assertions (llm-rubric through defaultTest.options.provider,
// a judge that answers garbage, external commands).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { freePort } from './lib.mjs';
import { startUpstream, script, step, sendJson, chatCompletion } from './upstreams.mjs';
import { workspace, assertExit, echoStep, judgeStep, isJudgeCall, lastUser, SANITIZED } from './eval-lib.mjs';

const providerYaml = (url, extra = '') =>
  `providers:\n  - id: openai:chat:gpt-test\n    label: mock\n    config: { apiBaseUrl: "${url}", apiKey: sk-test${extra} }\n`;

describe('eval: openai:chat provider on a mock upstream', () => {
  let up;
  before(async () => { up = await startUpstream(echoStep); });
  after(() => up.close());

  test('request bodies: model, messages from text and chat prompts, config params', async () => {
    const ws = workspace();
    up.set(echoStep);
    ws.file('suite.yaml', `prompts:
  - "Translate {{text}} to {{lang}}."
  - raw: '[{"role":"system","content":"You translate into {{lang}}."},{"role":"user","content":"{{text}}"}]'
${providerYaml(up.url, ', temperature: 0.3, max_tokens: 50, seed: 7, top_p: 0.9')}tests:
  - vars: { text: "good morning", lang: French }
    assert:
      - type: contains
        value: good morning
`);
    const r = await ws.evalJson('suite.yaml', ['-j', '1']);
    assertExit(r, 0);
    assert.equal(up.requests.length, 2);
    for (const q of up.requests) {
      assert.equal(q.method, 'POST');
      assert.equal(q.url, '/v1/chat/completions');
      assert.equal(q.headers.authorization, 'Bearer sk-test');
      assert.equal(q.json.model, 'gpt-test');
      assert.equal(q.json.temperature, 0.3);
      assert.equal(q.json.max_tokens, 50);
      assert.equal(q.json.seed, 7);
      assert.equal(q.json.top_p, 0.9);
      assert.ok(!('apiBaseUrl' in q.json) && !('apiKey' in q.json), 'provider keys stay out of the body');
    }
    const bodies = up.requests.map((q) => q.json.messages);
    assert.deepEqual(bodies.find((m) => m.length === 1), [{ role: 'user', content: 'Translate good morning to French.' }]);
    assert.deepEqual(bodies.find((m) => m.length === 2), [
      { role: 'system', content: 'You translate into French.' },
      { role: 'user', content: 'good morning' },
    ]);
    assert.equal(r.summary.passed, 2);
  });

  test('response cache: a second run makes no calls; --no-cache and --repeat do', async () => {
    const ws = workspace();
    up.set(echoStep);
    const tests = Array.from({ length: 5 }, (_, i) => `  - vars: { q: "question ${i}" }\n    assert: [{ type: contains, value: "question ${i}" }]`).join('\n');
    ws.file('suite.yaml', `prompts: ["Answer {{q}}"]\n${providerYaml(up.url)}tests:\n${tests}\n`);

    const first = await ws.evalJson('suite.yaml', ['-o', 'first.json']);
    assertExit(first, 0);
    assert.equal(up.requests.length, 5);
    assert.equal(first.summary.cache_hits, 0);
    assert.ok(ws.json('first.json').results.every((x) => x.cached === false));
    assert.ok(existsSync(ws.path('cache')), 'the cache lives in GENAIOPS_CACHE_DIR');

    up.set(echoStep);
    const second = await ws.evalJson('suite.yaml', ['-o', 'second.json']);
    assertExit(second, 0);
    assert.equal(up.requests.length, 0, 'an identical run is answered from the cache');
    assert.equal(second.summary.cache_hits, 5);
    const recs = ws.json('second.json').results;
    assert.equal(recs.length, 5);
    assert.ok(recs.every((x) => x.cached === true && x.verdict === 'pass'), 'records are marked cached');
    assert.deepEqual(recs.map((x) => x.output).sort(), ws.json('first.json').results.map((x) => x.output).sort());

    up.set(echoStep);
    const nocache = await ws.evalJson('suite.yaml', ['--no-cache']);
    assertExit(nocache, 0);
    assert.equal(up.requests.length, 5, '--no-cache calls again');
    assert.equal(nocache.summary.cache_hits, 0);

    up.set(echoStep);
    const rep = await ws.evalJson('suite.yaml', ['--repeat', '3', '-o', 'rep.json']);
    assertExit(rep, 0);
    assert.equal(up.requests.length, 15, 'repeats are independent samples: no cache');
    assert.equal(rep.summary.records, 15);
    const rr = ws.json('rep.json').results;
    assert.ok(rr.every((x) => x.cached === false));
    assert.deepEqual([...new Set(rr.map((x) => x.repeat))].sort(), [0, 1, 2]);

    // a change in the provider's config is a different request: a miss
    up.set(echoStep);
    ws.file('suite.yaml', `prompts: ["Answer {{q}}"]\n${providerYaml(up.url, ', temperature: 0.5')}tests:\n${tests}\n`);
    const changed = await ws.evalJson('suite.yaml');
    assertExit(changed, 0);
    assert.equal(up.requests.length, 5);
  });

  test('a 429 then 200 is retried and passes (2 requests)', async () => {
    const ws = workspace();
    up.set(script([step.error(429, 'slow down'), echoStep]));
    ws.file('suite.yaml', `prompts: ["Hi {{n}}"]\n${providerYaml(up.url)}tests:\n  - vars: { n: Bob }\n    assert: [{ type: contains, value: Bob }]\n`);
    const r = await ws.evalJson('suite.yaml', ['--no-cache']);
    assertExit(r, 0);
    assert.equal(up.requests.length, 2);
    assert.equal(r.summary.passed, 1);
    assert.equal(r.summary.retries, 1);
    assert.match(r.stderr, /HTTP 429.*retrying/);
  });

  test('a 500 with Retry-After waits that long before the retry', async () => {
    const ws = workspace();
    up.set(script([step.error(503, 'busy', { 'retry-after': '1' }), echoStep]));
    ws.file('suite.yaml', `prompts: ["Hi {{n}}"]\n${providerYaml(up.url)}tests:\n  - vars: { n: Bob }\n    assert: [{ type: contains, value: Bob }]\n`);
    const r = await ws.evalJson('suite.yaml', ['--no-cache']);
    assertExit(r, 0);
    assert.equal(up.requests.length, 2);
    const gap = up.requests[1].at - up.requests[0].at;
    assert.ok(gap >= 950, `retried after ${gap} ms, Retry-After said 1 s`);
  });

  test('a 400 is not retried: exit 1, the error names the status', async () => {
    const ws = workspace();
    up.set(script([step.error(400, 'unknown parameter foo')]));
    ws.file('suite.yaml', `prompts: ["Hi {{n}}"]\n${providerYaml(up.url)}tests:\n  - vars: { n: Bob }\n    assert: [{ type: contains, value: Bob }]\n`);
    const r = await ws.eval('suite.yaml', ['--no-cache', '-o', 'r.json']);
    assertExit(r, 1);
    assert.equal(up.requests.length, 1);
    const rec = ws.json('r.json').results[0];
    assert.equal(rec.verdict, 'error');
    assert.match(rec.error, /HTTP 400.*unknown parameter foo/);
    assert.doesNotMatch(rec.error, /attempts/);
  });

  test('the checks of a failed call are not run, reported as passed or counted in the metrics', async () => {
    const ws = workspace();
    up.set(script([step.error(400, 'bad request')]));
    ws.file('suite.yaml', `prompts: ["Hi {{n}}"]\n${providerYaml(up.url)}tests:\n  - vars: { n: Bob }\n    assert: [{ type: contains, value: Bob, metric: greets }]\n`);
    const r = await ws.eval('suite.yaml', ['--no-cache', '-o', 'r.json']);
    assertExit(r, 1);
    const j = ws.json('r.json');
    const rec = j.results[0];
    assert.equal(rec.verdict, 'error');
    assert.ok(rec.asserts.every((a) => a.verdict !== 'pass'), `unrun checks: ${JSON.stringify(rec.asserts)}`);
    assert.equal(j.summary.metrics.greets, undefined, `metrics: ${JSON.stringify(j.summary.metrics)}`);
  });

  test('a response over the size limit is an error that is not retried', async () => {
    const ws = workspace();
    up.set(({ res }) => sendJson(res, 200, chatCompletion('gpt-test', 'x'.repeat(9 << 20))));
    ws.file('suite.yaml', `prompts: ["Hi {{n}}"]\n${providerYaml(up.url)}tests:\n  - vars: { n: Bob }\n`);
    const r = await ws.eval('suite.yaml', ['--no-cache', '-o', 'r.json']);
    assertExit(r, 1);
    assert.equal(up.requests.length, 1);
    assert.match(ws.json('r.json').results[0].error, /MiB|too large|limit/i);
  });

  test('hostile 200 answers are errors or checked text, never a crash', async () => {
    const ws = workspace();
    up.set(({ res, rec }) => {
      const k = lastUser(rec.json);
      const choice = (content) => ({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] });
      if (k === 'notjson') { res.writeHead(200, { 'content-type': 'application/json' }); return res.end('hello there'); }
      if (k === 'deep') { res.writeHead(200, { 'content-type': 'application/json' }); return res.end('['.repeat(100000)); }
      if (k === 'nochoices') return sendJson(res, 200, { id: 'x', choices: [] });
      if (k === 'array') return sendJson(res, 200, [1, 2, 3]);
      if (k === 'nullcontent') return sendJson(res, 200, choice(null));
      if (k === 'numcontent') return sendJson(res, 200, choice(42));
      if (k === 'badusage') return sendJson(res, 200, { ...choice('fine'), usage: { prompt_tokens: -5, completion_tokens: 1e300, total_tokens: 'x' } });
      return sendJson(res, 200, choice('fine'));
    });
    const kinds = { notjson: 'error', deep: 'error', nochoices: 'error', array: 'error', nullcontent: 'fail', numcontent: 'fail', badusage: 'pass', ok: 'pass' };
    ws.file('suite.yaml', `prompts: ["{{k}}"]\n${providerYaml(up.url)}tests:\n${Object.keys(kinds).map((k) => `  - vars: { k: ${k} }\n    assert: [{ type: contains, value: fine }]`).join('\n')}\n`);
    const r = await ws.eval('suite.yaml', ['--no-cache', '-o', 'r.json']);
    assertExit(r, 1);
    const got = Object.fromEntries(ws.json('r.json').results.map((x) => [x.vars.k, x.verdict]));
    assert.deepEqual(got, kinds);
    assert.equal(up.requests.length, Object.keys(kinds).length, 'a 200 that cannot be read is not retried');
  });

  test('a failed call is never cached: the next run calls again', async () => {
    const ws = workspace();
    up.set(script([step.error(400, 'nope')]));
    ws.file('suite.yaml', `prompts: ["Hi {{n}}"]\n${providerYaml(up.url)}tests:\n  - vars: { n: Bob }\n    assert: [{ type: contains, value: Bob }]\n`);
    assertExit(await ws.eval('suite.yaml'), 1);
    up.set(echoStep);
    const r = await ws.evalJson('suite.yaml');
    assertExit(r, 0);
    assert.equal(up.requests.length, 1);
  });
});

test('eval: an unreachable provider is an error naming the attempts', { timeout: SANITIZED ? 120000 : 30000 }, async () => {
  const ws = workspace();
  const port = await freePort(); // nothing listens there
  ws.file('suite.yaml', `prompts: ["Hi {{n}}"]\n${providerYaml(`http://127.0.0.1:${port}/v1`)}tests:\n  - vars: { n: Bob }\n    assert: [{ type: contains, value: Bob }]\n`);
  const r = await ws.eval('suite.yaml', ['-o', 'r.json']);
  assertExit(r, 1);
  const rec = ws.json('r.json').results[0];
  assert.equal(rec.verdict, 'error');
  assert.match(rec.error, /after 4 attempts/);
  assert.match(r.stderr, /retrying/);
  assert.match(r.stdout, /1 errors?/);
});

describe('eval: model-graded and command assertions', () => {
  let up;
  before(async () => { up = await startUpstream(judgeStep); });
  after(() => up.close());

  const suite = (url, asserts) => `prompts: ["Write a greeting for {{name}}."]
${providerYaml(url)}defaultTest:
  options:
    provider:
      id: openai:chat:judge-model
      config: { apiBaseUrl: "${url}", apiKey: sk-judge }
tests:
  - vars: { name: Ada }
    assert:
${asserts}
`;

  test('llm-rubric: the judge decides pass and fail', async () => {
    const ws = workspace();
    up.set(judgeStep);
    ws.file('pass.yaml', suite(up.url, '      - type: llm-rubric\n        value: "PASSME: it greets the person"'));
    const p = await ws.eval('pass.yaml', ['-o', 'p.json']);
    assertExit(p, 0);
    const judge = up.requests.filter(isJudgeCall);
    assert.equal(judge.length, 1);
    assert.equal(judge[0].json.model, 'judge-model');
    assert.equal(judge[0].headers.authorization, 'Bearer sk-judge');
    const sent = JSON.stringify(judge[0].json.messages);
    assert.ok(sent.includes('PASSME: it greets the person'), 'the rubric is sent');
    assert.ok(sent.includes('You said: Write a greeting for Ada.'), 'the answer is sent');
    const a = ws.json('p.json').results[0].asserts[0];
    assert.equal(a.type, 'llm-rubric');
    assert.equal(a.verdict, 'pass');
    assert.equal(a.score, 0.9);
    assert.match(a.reason, /rubric asks/);

    up.set(judgeStep);
    ws.file('fail.yaml', suite(up.url, '      - type: llm-rubric\n        value: "FAILME: it is a poem"'));
    const f = await ws.eval('fail.yaml', ['-o', 'f.json']);
    assertExit(f, 100);
    const fa = ws.json('f.json').results[0];
    assert.equal(fa.verdict, 'fail');
    assert.equal(fa.asserts[0].verdict, 'fail');
    assert.match(fa.asserts[0].reason, /misses the point/);

    // a threshold above the judge's score fails even when the judge says pass
    up.set(judgeStep);
    ws.file('thr.yaml', suite(up.url, '      - type: llm-rubric\n        value: "PASSME"\n        threshold: 0.95'));
    assertExit(await ws.eval('thr.yaml'), 100);

    // not-llm-rubric inverts a finished verdict
    up.set(judgeStep);
    ws.file('not.yaml', suite(up.url, '      - type: not-llm-rubric\n        value: "FAILME: it is a poem"'));
    assertExit(await ws.eval('not.yaml'), 0);
  });

  test('a judge that answers garbage twice makes the record an error, never a fail', async () => {
    const ws = workspace();
    for (const type of ['llm-rubric', 'not-llm-rubric']) {
      up.set(judgeStep);
      ws.file('g.yaml', suite(up.url, `      - type: ${type}\n        value: "GARBAGE"\n      - type: contains\n        value: Ada`));
      const r = await ws.eval('g.yaml', ['-o', 'g.json', '--no-cache']);
      assertExit(r, 1, type);
      assert.equal(up.requests.filter(isJudgeCall).length, 2, 'one call and one repair call');
      const rec = ws.json('g.json').results[0];
      assert.equal(rec.verdict, 'error', type);
      const a = rec.asserts.find((x) => x.type === type);
      assert.equal(a.verdict, 'error');
      assert.equal(a.score, 0);
      assert.match(a.reason, /not valid JSON/);
      assert.equal(rec.asserts.find((x) => x.type === 'contains').verdict, 'pass');
      const repair = up.requests.filter(isJudgeCall)[1].json.messages;
      assert.ok(repair.some((m) => m.role === 'assistant' && m.content.includes('No JSON from me')), 'the repair shows the bad reply');
    }
  });

  test('a judge that answers garbage once is repaired', async () => {
    const ws = workspace();
    let judgeCalls = 0;
    up.set((ctx) => {
      if (isJudgeCall(ctx.rec) && judgeCalls++ === 0)
        return ctx.res.writeHead(200, { 'content-type': 'application/json' }), ctx.res.end(JSON.stringify({
          id: 'x', object: 'chat.completion', created: 1, model: 'judge-model',
          choices: [{ index: 0, message: { role: 'assistant', content: 'Sure! pass it' }, finish_reason: 'stop' }],
        }));
      return judgeStep(ctx);
    });
    ws.file('r.yaml', suite(up.url, '      - type: llm-rubric\n        value: "PASSME"'));
    const r = await ws.eval('r.yaml');
    assertExit(r, 0);
    assert.equal(up.requests.filter(isJudgeCall).length, 2);
  });

  test('command assertions: JSON on stdin, a score and reason on stdout', async () => {
    const ws = workspace();
    up.set(judgeStep);
    ws.file('check.mjs', `let s = '';
process.stdin.on('data', (d) => (s += d)).on('end', () => {
  const x = JSON.parse(s);
  const ok = x.output.includes(x.vars.name) && x.prompt.includes('greeting');
  process.stdout.write(JSON.stringify({ pass: ok, score: ok ? 0.9 : 0.2, reason: 'checked ' + x.vars.name }));
});
`);
    ws.file('cmd.yaml', suite(up.url, [
      '      - type: command\n        value: "node check.mjs"',
      `      - type: command\n        value: "node -e 'process.stdout.write(JSON.stringify({pass:true,score:0.9}))'"`,
      `      - type: command\n        value: "echo starting >&2; printf '%s\\\\n' '{\\"score\\": 0.75}'"`,
    ].join('\n')));
    const r = await ws.eval('cmd.yaml', ['-o', 'c.json']);
    assertExit(r, 0);
    const as = ws.json('c.json').results[0].asserts;
    assert.equal(as.length, 3);
    assert.deepEqual(as.map((a) => a.verdict), ['pass', 'pass', 'pass']);
    assert.deepEqual(as.map((a) => a.score), [0.9, 0.9, 0.75]);
    assert.equal(as[0].reason, 'checked Ada');

    // a command that fails is an error naming its stderr, not a fail
    ws.file('bad.yaml', suite(up.url, `      - type: command\n        value: "echo broken checker >&2; exit 3"`));
    const b = await ws.eval('bad.yaml', ['-o', 'b.json']);
    assertExit(b, 1);
    const ba = ws.json('b.json').results[0].asserts[0];
    assert.equal(ba.verdict, 'error');
    assert.match(ba.reason, /broken checker/);

    // a command whose result says fail fails the test
    ws.file('no.yaml', suite(up.url, `      - type: command\n        value: "echo '{\\"pass\\": false, \\"score\\": 0.1, \\"reason\\": \\"too short\\"}'"`));
    const n = await ws.eval('no.yaml', ['-o', 'n.json']);
    assertExit(n, 100);
    assert.equal(ws.json('n.json').results[0].asserts[0].reason, 'too short');
  });
});

describe('eval: anthropic:messages provider on a mock upstream', () => {
  test('the Messages API: /v1/messages under a bare apiBaseUrl, its headers and body; the answer read back', async () => {
    const up = await startUpstream(({ res, rec }) => {
      const user = rec.json?.messages?.at(-1)?.content;
      const text = Array.isArray(user) ? user.map((p) => p.text).join('') : user;
      sendJson(res, 200, {
        id: 'msg_1', type: 'message', role: 'assistant', model: rec.json?.model,
        content: [{ type: 'text', text: `Claude says: ${text}` }],
        stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 11, output_tokens: 4 },
      });
    });
    try {
      const ws = workspace();
      // promptfoo's Anthropic apiBaseUrl is the host: genaiops adds /v1 as the SDK does
      const base = up.url.replace(/\/v1$/, '');
      ws.file('suite.yaml', `prompts:
  - raw: '[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi {{name}}"}]'
providers:
  - { id: "anthropic:messages:claude-test", config: { apiBaseUrl: "${base}", apiKey: sk-ant-test, temperature: 0.2 } }
tests:
  - vars: { name: Ada }
    assert: [{ type: contains, value: "Claude says: Hi Ada" }]
`);
      const r = await ws.evalJson('suite.yaml', ['--no-cache', '-o', 'r.json']);
      assertExit(r, 0);
      assert.equal(up.requests.length, 1);
      const q = up.requests[0];
      assert.equal(q.url, '/v1/messages');
      assert.equal(q.headers['x-api-key'], 'sk-ant-test');
      assert.ok(q.headers['anthropic-version'], 'anthropic-version header');
      assert.equal(q.json.model, 'claude-test');
      assert.equal(q.json.system, 'Be brief.');
      assert.ok(q.json.max_tokens > 0, 'max_tokens is required by the Messages API');
      assert.equal(q.json.temperature, 0.2);
      const rec = ws.json('r.json').results[0];
      assert.equal(rec.output, 'Claude says: Hi Ada');
      assert.equal(rec.tokens_in, 11);
      assert.equal(rec.tokens_out, 4);
    } finally {
      await up.close();
    }
  });
});
