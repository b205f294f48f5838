// examples.test.mjs - every configuration in examples/ loads, serves, and
// does what its comments promise (they must run as shipped).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, startGateway } from './lib.mjs';
import { finishGateway } from './upstreams.mjs';

const dir = path.join(ROOT, 'examples');
const yamls = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

const chat = (gw, model, content = 'Hello') => fetch(`${gw.base}/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
});

// The example's own listen address is replaced so tests never clash.
const load = (f) => readFileSync(path.join(dir, f), 'utf8').replace(/^(\s*listen:).*$/m, '$1 @LISTEN@');

test('every example passes config check', () => {
  assert.ok(yamls.length >= 2);
  for (const f of yamls) {
    const out = execFileSync(BIN, ['config', 'check', path.join(dir, f)], { encoding: 'utf8' });
    assert.match(out, /: ok \(/, f);
  }
});

test('examples/genaiops.yaml serves its models and the simulator', async (t) => {
  const gw = await startGateway({ config: load('genaiops.yaml') });
  t.after(() => finishGateway(gw));
  const models = await (await fetch(`${gw.base}/models`)).json();
  for (const id of ['gpt-4o-mini', 'chat-prod', 'sim/echo']) assert.ok(models.data.some((m) => m.id === id), id);
  const r = await chat(gw, 'sim/echo', 'as shipped');
  assert.equal(r.status, 200);
  assert.equal((await r.json()).choices[0].message.content, 'as shipped');
});

test('examples/fallbacks.yaml: assistant falls back to the simulator, flaky is retried', async (t) => {
  const gw = await startGateway({ config: load('fallbacks.yaml') });
  t.after(() => finishGateway(gw));
  const r = await chat(gw, 'assistant');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-genaiops-provider'), 'sim');
  assert.equal(r.headers.get('x-genaiops-attempts'), '2');
  assert.match((await r.json()).choices[0].message.content, /fallback of 'assistant'/);
  let retried = 0;
  for (let i = 0; i < 20; i++) {
    const f = await chat(gw, 'flaky', `n${i}`);
    if (Number(f.headers.get('x-genaiops-attempts')) > 1) retried++;
    if (f.status === 200) assert.equal((await f.json()).choices[0].message.content, `n${i}`);
    else assert.equal(f.status, 503);
  }
  assert.ok(retried > 0, 'some requests to flaky were retried');
});
