// openai-sim.test.mjs - the official `openai` npm client against genaiops
// serve with the embedded default configuration (the in-process simulator,
// provider "sim"): every endpoint the gateway offers, the SDK's stream
// helpers, tools, and the SDK error class for each failure the gateway can
// give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway } from '../integration/lib.mjs';
import { WEATHER_TOOL, TIME_TOOL, collectChat, stopClean } from './mocks.mjs';

const user = (content) => [{ role: 'user', content }];

// Calls fn, which must throw; returns the error.
async function rejects(fn) {
  try { await fn(); } catch (e) { return e; }
  assert.fail('expected the call to throw');
}

test('openai SDK -> genaiops (in-process simulator, default config)', async (t) => {
  const gw = await startGateway();
  t.after(() => stopClean(gw));
  const client = new OpenAI({ baseURL: gw.base, apiKey: 'sk-unused', maxRetries: 0 });

  await t.test('chat: content, usage, finish_reason, id, model, headers', async () => {
    const { data: r, response } = await client.chat.completions
      .create({ model: 'sim/echo', messages: [{ role: 'system', content: 'be brief' }, ...user('hello there')] })
      .withResponse();
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.model, 'sim/echo');
    assert.equal(typeof r.created, 'number');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'hello there');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.equal(response.headers.get('x-genaiops-provider'), 'sim');
    assert.match(response.headers.get('x-request-id'), /\S/);
    assert.equal(r._request_id, response.headers.get('x-request-id'));
  });

  await t.test('chat: max_tokens cuts the answer with finish_reason length', async () => {
    const r = await client.chat.completions.create({ model: 'sim/echo', max_tokens: 2, messages: user('one two three four five six seven eight') });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.ok('one two three four five six seven eight'.startsWith(r.choices[0].message.content));
    assert.ok(r.usage.completion_tokens <= 2);
  });

  await t.test('stream: deltas concatenate to the answer, no usage unless asked', async () => {
    const text = 'the quick brown fox jumps over the lazy dog';
    const s = await client.chat.completions.create({ model: 'sim/echo', messages: user(text), stream: true });
    const got = await collectChat(s);
    assert.equal(got.content[0], text);
    assert.ok(got.chunks.length > 3, `only ${got.chunks.length} chunks`);
    assert.equal(new Set(got.chunks.map((c) => c.id)).size, 1, 'one id for the whole stream');
    assert.ok(got.chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'sim/echo'));
    assert.equal(got.chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(got.finish[0], 'stop');
    assert.equal(got.usage.length, 0);
  });

  await t.test('stream: stream_options.include_usage gives a final usage chunk', async () => {
    const s = await client.chat.completions.create({
      model: 'sim/echo', messages: user('count my tokens please'), stream: true, stream_options: { include_usage: true },
    });
    const got = await collectChat(s);
    assert.equal(got.content[0], 'count my tokens please');
    const last = got.chunks[got.chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage.prompt_tokens > 0 && last.usage.completion_tokens > 0);
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
    assert.equal(got.usage.length, 1, 'usage only on the final chunk');
  });

  await t.test('stream: the chat.completions.stream helper', async () => {
    const deltas = [];
    const s = client.chat.completions.stream({ model: 'sim/echo', messages: user('streaming with the helper'), stream_options: { include_usage: true } });
    s.on('content', (delta) => deltas.push(delta));
    const final = await s.finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'streaming with the helper');
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(deltas.join(''), 'streaming with the helper');
    assert.ok(deltas.length > 1);
    assert.ok(final.usage && final.usage.total_tokens > 0);
    assert.equal(await s.finalContent(), 'streaming with the helper');
  });

  await t.test('n > 1: one choice per index, plain and streamed', async () => {
    const r = await client.chat.completions.create({ model: 'sim/echo', n: 3, messages: user('three times') });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    assert.ok(r.choices.every((c) => c.message.content === 'three times' && c.finish_reason === 'stop'));
    const got = await collectChat(await client.chat.completions.create({ model: 'sim/echo', n: 2, stream: true, messages: user('twice over') }));
    assert.deepEqual(got.content, ['twice over', 'twice over']);
    assert.deepEqual(got.finish, ['stop', 'stop']);
  });

  await t.test('tools: tool_choice required gives a parseable tool call', async () => {
    const r = await client.chat.completions.create({
      model: 'sim/echo', messages: user('what is the weather in Paris?'), tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: 'required',
    });
    const m = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(m.tool_calls.length, 1);
    const call = m.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.match(call.id, /\S/);
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments);
    assert.equal(typeof args.city, 'string');
  });

  await t.test('tools: a named function is the one called', async () => {
    const r = await client.chat.completions.create({
      model: 'sim/echo', messages: user('what time is it?'), tools: [WEATHER_TOOL, TIME_TOOL],
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    const call = r.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_time');
    assert.equal(typeof JSON.parse(call.function.arguments).tz, 'string');
  });

  await t.test('tools: streamed tool call deltas assemble into the call', async () => {
    const s = await client.chat.completions.create({
      model: 'sim/echo', messages: user('weather please'), tools: [WEATHER_TOOL], tool_choice: 'required', stream: true,
    });
    const got = await collectChat(s);
    assert.equal(got.finish[0], 'tool_calls');
    assert.equal(got.calls.length, 1);
    assert.equal(got.calls[0].name, 'get_weather');
    assert.match(got.calls[0].id, /\S/);
    assert.equal(typeof JSON.parse(got.calls[0].arguments).city, 'string');
    // the helper assembles the same call
    const h = client.chat.completions.stream({ model: 'sim/echo', messages: user('weather please'), tools: [WEATHER_TOOL], tool_choice: 'required' });
    const final = await h.finalChatCompletion();
    const call = final.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), JSON.parse(got.calls[0].arguments));
  });

  await t.test('tools: the tool result goes back in a second turn', async () => {
    const first = await client.chat.completions.create({
      model: 'sim/echo', messages: user('weather in Oslo'), tools: [WEATHER_TOOL], tool_choice: 'required',
    });
    const call = first.choices[0].message.tool_calls[0];
    const r = await client.chat.completions.create({
      model: 'sim/echo', tools: [WEATHER_TOOL],
      messages: [...user('weather in Oslo'), first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'sunny, 21C' }],
    });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(typeof r.choices[0].message.content, 'string');
  });

  await t.test('response_format json_object gives a JSON object', async () => {
    const r = await client.chat.completions.create({ model: 'sim/echo', response_format: { type: 'json_object' }, messages: user('reply in JSON') });
    const o = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof o, 'object');
    assert.ok(o !== null && !Array.isArray(o));
  });

  await t.test('response_format json_schema: chat.completions.parse gives .parsed', async () => {
    const schema = {
      type: 'object', additionalProperties: false, required: ['name', 'age', 'tags'],
      properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
    };
    const r = await client.chat.completions.parse({
      model: 'sim/echo', messages: user('a person'), response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } },
    });
    const p = r.choices[0].message.parsed;
    assert.equal(typeof p.name, 'string');
    assert.ok(Number.isInteger(p.age));
    assert.ok(Array.isArray(p.tags));
    assert.deepEqual(Object.keys(p).sort(), ['age', 'name', 'tags']);
  });

  await t.test('embeddings: the SDK default (base64) and float agree', async () => {
    const b = await client.embeddings.create({ model: 'sim/echo', input: ['first text', 'second text'] });
    assert.equal(b.object, 'list');
    assert.equal(b.data.length, 2);
    assert.deepEqual(b.data.map((d) => d.index), [0, 1]);
    const v = b.data[0].embedding;
    assert.ok(Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isFinite(x)));
    assert.notDeepEqual(b.data[0].embedding, b.data[1].embedding);
    assert.ok(b.usage.prompt_tokens > 0);
    const f = await client.embeddings.create({ model: 'sim/echo', input: ['first text', 'second text'], encoding_format: 'float' });
    assert.equal(f.data[0].embedding.length, v.length);
    f.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - v[i]) < 1e-6, `component ${i}: ${x} vs ${v[i]}`));
    const d = await client.embeddings.create({ model: 'sim/echo', input: 'short', dimensions: 16 });
    assert.equal(d.data[0].embedding.length, 16);
  });

  await t.test('models: list (auto-paginated) and retrieve', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.owned_by, 'string');
      ids.push(m.id);
    }
    for (const id of ['sim/echo', 'sim/lorem', 'sim/error-429']) assert.ok(ids.includes(id), `${id} listed`);
    // the SDK sends the id URL-encoded: GET /v1/models/sim%2Fecho
    const m = await client.models.retrieve('sim/echo');
    assert.equal(m.id, 'sim/echo');
    assert.equal(m.object, 'model');
  });

  await t.test('models: retrieve of an unknown id is NotFoundError', async () => {
    const e = await rejects(() => client.models.retrieve('no-such-model'));
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    assert.equal(e.code, 'model_not_found');
    assert.match(e.message, /no-such-model/);
  });

  await t.test('models: the 404 carries one x-genaiops-overhead-us header', async () => {
    const e = await rejects(() => client.models.retrieve('no-such-model'));
    // a repeated header reaches the SDK joined: "14, 24"
    assert.match(e.headers.get('x-genaiops-overhead-us'), /^\d+$/);
  });

  await t.test('legacy completions, plain and streamed', async () => {
    const r = await client.completions.create({ model: 'sim/echo', prompt: 'say this back' });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, 'say this back');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.total_tokens > 0);
    const s = await client.completions.create({ model: 'sim/echo', prompt: 'and this too', stream: true });
    let text = '';
    for await (const c of s) text += c.choices[0]?.text || '';
    assert.equal(text, 'and this too');
  });

  await t.test('400 BadRequestError: empty messages, bad role', async () => {
    let e = await rejects(() => client.chat.completions.create({ model: 'sim/echo', messages: [] }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.status, 400);
    assert.equal(e.type, 'invalid_request_error');
    assert.equal(e.param, 'messages');
    assert.match(e.message, /messages/);
    e = await rejects(() => client.chat.completions.create({ model: 'sim/echo', messages: [{ role: 'wizard', content: 'hi' }] }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.status, 400);
    assert.match(e.message, /role|wizard/);
    assert.match(String(e.param), /messages/);
  });

  await t.test('400 for a body that is not JSON (raw fetch, as the SDK cannot send one)', async () => {
    const r = await fetch(`${gw.base}/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer x' }, body: '{"model": "sim/echo", "messages": [',
    });
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(body.error.code, 'invalid_json');
    assert.match(body.error.message, /JSON/);
  });

  await t.test('404 NotFoundError: unknown model, code model_not_found', async () => {
    const e = await rejects(() => client.chat.completions.create({ model: 'gpt-nonexistent', messages: user('hi') }));
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    assert.equal(e.param, 'model');
    assert.match(e.message, /gpt-nonexistent/);
    assert.equal(e.error.code, 'model_not_found');
  });

  await t.test('429 RateLimitError: sim/error-429', async () => {
    const e = await rejects(() => client.chat.completions.create({ model: 'sim/error-429', messages: user('hi') }));
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.status, 429);
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.match(e.message, /rate limit/i);
    assert.match(e.headers.get('retry-after'), /^\d+$/);
  });

  await t.test('x-genaiops-overhead-us excludes the retry backoff', async () => {
    // sim/error-429 asks for Retry-After: 1 and the default config retries
    // twice, so the gateway waits about 2 s between attempts: upstream time,
    // not the gateway's own.
    const t0 = Date.now();
    const e = await rejects(() => client.chat.completions.create({ model: 'sim/error-429', messages: user('hi') }));
    const ms = Date.now() - t0;
    assert.equal(e.headers.get('x-genaiops-attempts'), '3');
    assert.ok(ms >= 1500, `took ${ms} ms`);
    const overheadUs = Number(e.headers.get('x-genaiops-overhead-us'));
    assert.ok(overheadUs < 250000, `overhead ${overheadUs} us of a ${ms} ms request`);
  });

  await t.test('500 InternalServerError: sim/error-500', async () => {
    const e = await rejects(() => client.chat.completions.create({ model: 'sim/error-500', messages: user('hi') }));
    assert.ok(e instanceof OpenAI.InternalServerError, e.constructor.name);
    assert.equal(e.status, 500);
    assert.equal(e.type, 'server_error');
    assert.match(e.message, /error/);
  });

  await t.test('APIError raised mid-stream for sim/broken-stream', async () => {
    const s = await client.chat.completions.create({ model: 'sim/broken-stream', messages: user('a long answer please'), stream: true });
    let text = '';
    const e = await rejects(async () => { for await (const c of s) text += c.choices[0]?.delta?.content || ''; });
    assert.ok(e instanceof OpenAI.APIError, e.constructor.name);
    assert.ok(text.length > 0, 'some content arrived before the failure');
    assert.equal(e.error.code, 'stream_interrupted');
    assert.equal(e.error.type, 'upstream_error');
    assert.match(e.message, /stream/);
  });
});
