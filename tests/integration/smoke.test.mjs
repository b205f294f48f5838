// smoke.test.mjs - the embedded default answers on every probe and the
// simulator model, plain and streamed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './lib.mjs';

test('default config: healthz, readyz, models, chat', async (t) => {
  const gw = await startGateway();
  t.after(() => gw.stop());
  let r = await fetch(`${gw.url}/healthz`);
  assert.equal(r.status, 200);
  assert.ok(r.headers.get('x-request-id'));
  r = await fetch(`${gw.url}/readyz`);
  assert.equal(r.status, 200);
  r = await fetch(`${gw.base}/models`);
  const models = await r.json();
  assert.ok(models.data.some((m) => m.id === 'sim/echo'));
  r = await fetch(`${gw.base}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'smoke-1' },
    body: JSON.stringify({ model: 'sim/echo', messages: [{ role: 'user', content: 'ping pong' }] }),
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('x-request-id'), 'smoke-1');
  assert.match(r.headers.get('x-genaiops-overhead-us'), /^\d+$/);
  const body = await r.json();
  assert.equal(body.choices[0].message.content, 'ping pong');
  assert.equal(body.model, 'sim/echo');
});
