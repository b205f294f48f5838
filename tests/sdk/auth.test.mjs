// auth.test.mjs - a gateway with server.admin_key: both SDKs send it as
// their apiKey (openai as "Authorization: Bearer", Anthropic as x-api-key),
// and a wrong key is the SDK's AuthenticationError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway } from '../integration/lib.mjs';
import { stopClean } from './mocks.mjs';

const KEY = 'gw-admin-key-for-tests';
const user = (content) => [{ role: 'user', content }];

async function rejects(fn) {
  try { await fn(); } catch (e) { return e; }
  assert.fail('expected the call to throw');
}

test('SDKs -> genaiops with server.admin_key', async (t) => {
  const gw = await startGateway({ config: `server: { admin_key: ${KEY} }\n` });
  t.after(() => stopClean(gw));

  await t.test('openai: the key as apiKey works, a wrong one is AuthenticationError', async () => {
    const ok = new OpenAI({ baseURL: gw.base, apiKey: KEY, maxRetries: 0 });
    const r = await ok.chat.completions.create({ model: 'sim/echo', messages: user('authorized') });
    assert.equal(r.choices[0].message.content, 'authorized');
    assert.ok((await ok.models.list()).data.length > 0);
    const bad = new OpenAI({ baseURL: gw.base, apiKey: 'wrong-key', maxRetries: 0 });
    let e = await rejects(() => bad.chat.completions.create({ model: 'sim/echo', messages: user('x') }));
    assert.ok(e instanceof OpenAI.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    e = await rejects(() => bad.models.list());
    assert.ok(e instanceof OpenAI.AuthenticationError, e.constructor.name);
  });

  await t.test('anthropic: the key as apiKey (x-api-key) works, a wrong one is AuthenticationError', async () => {
    const ok = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
    const m = await ok.messages.create({ model: 'sim/echo', max_tokens: 16, messages: user('authorized too') });
    assert.equal(m.content[0].text, 'authorized too');
    const bad = new Anthropic({ baseURL: gw.url, apiKey: 'wrong-key', maxRetries: 0 });
    const e = await rejects(() => bad.messages.create({ model: 'sim/echo', max_tokens: 16, messages: user('x') }));
    assert.ok(e instanceof Anthropic.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    assert.equal(e.error.error.type, 'authentication_error');
  });
});
