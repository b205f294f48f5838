// openai-providers.test.mjs - the official `openai` npm client through each
// upstream provider type of the gateway:
//   openai    -> a `genaiops sim` server (an OpenAI-compatible upstream)
//   azure     -> the Azure mock of mocks.mjs (URL shape, api-key, api-version)
//   anthropic -> the Anthropic mock of mocks.mjs, so every answer, stream,
//                tool call and error goes through the gateway's
//                Chat Completions <-> Messages translation.
// The mocks record what the gateway sent, and the tests check it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startGateway, startSim } from '../integration/lib.mjs';
import { startAzureMock, startAnthropicMock, MOCK_KEY, WEATHER_TOOL, TIME_TOOL, collectChat, stopClean } from './mocks.mjs';

const user = (content) => [{ role: 'user', content }];

async function rejects(fn) {
  try { await fn(); } catch (e) { return e; }
  assert.fail('expected the call to throw');
}

// Reads a chat stream that must fail; returns { error, text (what came first) }.
async function failingStream(s) {
  let text = '';
  const error = await rejects(async () => { for await (const c of s) text += c.choices[0]?.delta?.content || ''; });
  return { error, text };
}

test('openai SDK -> genaiops -> type openai (genaiops sim upstream)', async (t) => {
  const sim = await startSim();
  t.after(() => stopClean(sim));
  const gw = await startGateway({
    config: `
providers:
  - { name: up, type: openai, base_url: ${sim.base}, api_key: upstream-secret, max_retries: 0 }
models:
  - { name: gpt-test, provider: up }
`,
  });
  t.after(() => stopClean(gw));
  const client = new OpenAI({ baseURL: gw.base, apiKey: 'sk-client', maxRetries: 0 });

  await t.test('chat', async () => {
    const { data: r, response } = await client.chat.completions.create({ model: 'gpt-test', messages: user('through an openai upstream') }).withResponse();
    assert.equal(r.choices[0].message.content, 'through an openai upstream');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.model, 'gpt-test');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.equal(response.headers.get('x-genaiops-provider'), 'up');
  });

  await t.test('stream with include_usage, and the stream helper', async () => {
    const got = await collectChat(await client.chat.completions.create({
      model: 'gpt-test', messages: user('streamed via the sim server'), stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(got.content[0], 'streamed via the sim server');
    assert.equal(got.finish[0], 'stop');
    assert.equal(got.usage.length, 1);
    assert.ok(got.usage[0].total_tokens > 0);
    const final = await client.chat.completions.stream({ model: 'gpt-test', messages: user('helper here') }).finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'helper here');
  });

  await t.test('n > 1 and response_format json_object pass through', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-test', n: 2, messages: user('two') });
    assert.deepEqual(r.choices.map((c) => c.message.content), ['two', 'two']);
    const j = await client.chat.completions.create({ model: 'gpt-test', response_format: { type: 'json_object' }, messages: user('json') });
    assert.equal(typeof JSON.parse(j.choices[0].message.content), 'object');
  });

  await t.test('tools: required, named, and streamed', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-test', messages: user('weather?'), tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: 'required' });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(r.choices[0].message.tool_calls[0].function.name, 'get_weather');
    assert.equal(typeof JSON.parse(r.choices[0].message.tool_calls[0].function.arguments).city, 'string');
    const n = await client.chat.completions.create({
      model: 'gpt-test', messages: user('time?'), tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: { type: 'function', function: { name: 'get_time' } },
    });
    assert.equal(n.choices[0].message.tool_calls[0].function.name, 'get_time');
    const got = await collectChat(await client.chat.completions.create({
      model: 'gpt-test', messages: user('weather?'), tools: [WEATHER_TOOL], tool_choice: 'required', stream: true,
    }));
    assert.equal(got.finish[0], 'tool_calls');
    assert.equal(got.calls[0].name, 'get_weather');
    assert.equal(typeof JSON.parse(got.calls[0].arguments).city, 'string');
  });

  await t.test('embeddings (base64 default and float) and legacy completions', async () => {
    const b = await client.embeddings.create({ model: 'gpt-test', input: 'embed me' });
    const f = await client.embeddings.create({ model: 'gpt-test', input: 'embed me', encoding_format: 'float' });
    assert.ok(b.data[0].embedding.length > 0);
    assert.equal(b.data[0].embedding.length, f.data[0].embedding.length);
    b.data[0].embedding.forEach((x, i) => assert.ok(Math.abs(x - f.data[0].embedding[i]) < 1e-6));
    const c = await client.completions.create({ model: 'gpt-test', prompt: 'legacy prompt' });
    assert.equal(c.choices[0].text, 'legacy prompt');
  });

  await t.test('models list and retrieve a configured model', async () => {
    const list = await client.models.list();
    assert.ok(list.data.some((m) => m.id === 'gpt-test' && m.owned_by === 'up'));
    const m = await client.models.retrieve('gpt-test');
    assert.equal(m.id, 'gpt-test');
  });

  await t.test('errors: 400, 404, 429 (with retry-after), 500 from the upstream', async () => {
    let e = await rejects(() => client.chat.completions.create({ model: 'gpt-test', messages: [] }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    e = await rejects(() => client.chat.completions.create({ model: 'not-configured', messages: user('x') }));
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    assert.equal(e.code, 'model_not_found');
    e = await rejects(() => client.chat.completions.create({ model: 'up/error-429', messages: user('x') }));
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.code, 'rate_limit_exceeded');
    assert.equal(e.headers.get('retry-after'), '1');
    e = await rejects(() => client.chat.completions.create({ model: 'up/error-500', messages: user('x') }));
    assert.ok(e instanceof OpenAI.InternalServerError, e.constructor.name);
    assert.equal(e.type, 'server_error');
  });

  await t.test('APIError mid-stream when the upstream connection breaks', async () => {
    const { error, text } = await failingStream(await client.chat.completions.create({ model: 'up/broken-stream', messages: user('go on'), stream: true }));
    assert.ok(error instanceof OpenAI.APIError, error.constructor.name);
    assert.ok(text.length > 0);
    assert.equal(error.error.code, 'stream_interrupted');
    assert.match(error.message, /provider 'up'/);
  });
});

test('openai SDK -> genaiops -> type azure (mock)', async (t) => {
  const az = await startAzureMock();
  t.after(() => az.close());
  const gw = await startGateway({
    config: `
providers:
  - { name: az, type: azure, base_url: ${az.url}, api_key: ${MOCK_KEY}, max_retries: 0 }
models:
  - { name: gpt-4o, provider: az, upstream_model: my-gpt4o-deployment }
  - { name: az-limited, provider: az, upstream_model: ratelimited-deployment }
  - { name: az-missing, provider: az, upstream_model: missing }
  - { name: az-flaky, provider: az, upstream_model: midstream-error-deployment }
  - { name: az-cut, provider: az, upstream_model: truncated-deployment }
`,
  });
  t.after(() => stopClean(gw));
  const client = new OpenAI({ baseURL: gw.base, apiKey: 'sk-client', maxRetries: 0 });

  await t.test('chat goes to /openai/deployments/<deployment>/chat/completions?api-version=', async () => {
    const { data: r, response } = await client.chat.completions.create({ model: 'gpt-4o', messages: user('hello azure') }).withResponse();
    const rq = az.last();
    assert.equal(rq.path, '/openai/deployments/my-gpt4o-deployment/chat/completions');
    assert.equal(rq.query['api-version'], '2024-10-21');
    assert.equal(rq.headers['api-key'], MOCK_KEY);
    assert.equal(rq.headers.authorization, undefined, "the client's key never reaches the upstream");
    assert.deepEqual(rq.body.messages, user('hello azure'));
    assert.equal(r.choices[0].message.content, 'hello azure');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.equal(response.headers.get('x-genaiops-provider'), 'az');
  });

  await t.test('stream (Azure prompt_filter_results chunk first) with include_usage', async () => {
    const got = await collectChat(await client.chat.completions.create({
      model: 'gpt-4o', messages: user('stream from azure please'), stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(az.last().body.stream, true);
    assert.deepEqual(az.last().body.stream_options, { include_usage: true });
    assert.equal(got.content[0], 'stream from azure please');
    assert.equal(got.finish[0], 'stop');
    assert.equal(got.usage.length, 1);
    const final = await client.chat.completions.stream({ model: 'gpt-4o', messages: user('helper on azure') }).finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'helper on azure');
  });

  await t.test('tools: required and streamed', async () => {
    const r = await client.chat.completions.create({ model: 'gpt-4o', messages: user('weather?'), tools: [WEATHER_TOOL], tool_choice: 'required' });
    assert.equal(az.last().body.tool_choice, 'required');
    assert.deepEqual(JSON.parse(r.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
    const got = await collectChat(await client.chat.completions.create({
      model: 'gpt-4o', messages: user('time?'), tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: { type: 'function', function: { name: 'get_time' } }, stream: true,
    }));
    assert.equal(got.finish[0], 'tool_calls');
    assert.equal(got.calls[0].name, 'get_time');
    assert.deepEqual(JSON.parse(got.calls[0].arguments), { tz: 'Paris' });
  });

  await t.test('embeddings and completions use the deployment URL too', async () => {
    const b = await client.embeddings.create({ model: 'gpt-4o', input: ['ab', 'abcd'] });
    assert.equal(az.last().path, '/openai/deployments/my-gpt4o-deployment/embeddings');
    assert.equal(az.last().body.encoding_format, 'base64', 'the SDK default reaches the upstream');
    assert.equal(b.data.length, 2);
    assert.ok(Math.abs(b.data[1].embedding[0] - 0.04) < 1e-6);
    const c = await client.completions.create({ model: 'gpt-4o', prompt: 'azure legacy' });
    assert.equal(az.last().path, '/openai/deployments/my-gpt4o-deployment/completions');
    assert.equal(c.choices[0].text, 'azure legacy');
  });

  await t.test('errors: 429 RateLimitError and 404 NotFoundError from Azure', async () => {
    let e = await rejects(() => client.chat.completions.create({ model: 'az-limited', messages: user('x') }));
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.match(e.message, /rate limit/);
    assert.equal(e.headers.get('retry-after'), '1');
    e = await rejects(() => client.chat.completions.create({ model: 'az-missing', messages: user('x') }));
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    assert.equal(e.code, 'DeploymentNotFound');
  });

  await t.test('APIError mid-stream when Azure sends an error event', async () => {
    const { error, text } = await failingStream(await client.chat.completions.create({ model: 'az-flaky', messages: user('one two three four'), stream: true }));
    assert.ok(error instanceof OpenAI.APIError, error.constructor.name);
    assert.equal(text, 'one two');
    assert.match(error.message, /\(mock\)/);
  });

  await t.test('APIError when the Azure stream stops without [DONE] (no silent cut)', async () => {
    // the upstream closes the connection cleanly after two pieces: no
    // finish_reason, no [DONE]. The gateway must not end the client's stream
    // as if it were complete.
    const { error, text } = await failingStream(await client.chat.completions.create({ model: 'az-cut', messages: user('one two three four'), stream: true }));
    assert.ok(error instanceof OpenAI.APIError, error.constructor.name);
    assert.equal(text, 'one two');
  });

  await t.test('the mock saw only well-formed Azure requests', () => {
    assert.deepEqual(az.problems, []);
    assert.ok(az.requests.length >= 10);
  });
});

test('openai SDK -> genaiops -> type anthropic (mock), translated', async (t) => {
  const an = await startAnthropicMock();
  t.after(() => an.close());
  const gw = await startGateway({
    config: `
providers:
  - { name: claude, type: anthropic, base_url: ${an.url}/v1, api_key: ${MOCK_KEY}, max_retries: 0 }
models:
  - { name: claude-test, provider: claude, upstream_model: claude-3-5-haiku-latest }
`,
  });
  t.after(() => stopClean(gw));
  const client = new OpenAI({ baseURL: gw.base, apiKey: 'sk-client', maxRetries: 0 });

  await t.test('chat: the request becomes a Messages request, the answer a chat.completion', async () => {
    const { data: r, response } = await client.chat.completions.create({
      model: 'claude-test', max_tokens: 300, temperature: 0.5, stop: ['END'], user: 'user-42',
      messages: [{ role: 'system', content: 'be brief' }, ...user('hello claude')],
    }).withResponse();
    const rq = an.last();
    assert.equal(rq.path, '/v1/messages');
    assert.equal(rq.headers['x-api-key'], MOCK_KEY);
    assert.equal(rq.headers['anthropic-version'], '2023-06-01');
    assert.equal(rq.headers.authorization, undefined);
    assert.equal(rq.body.model, 'claude-3-5-haiku-latest');
    assert.equal(rq.body.max_tokens, 300);
    assert.equal(rq.body.temperature, 0.5);
    assert.deepEqual(rq.body.stop_sequences, ['END']);
    assert.deepEqual(rq.body.metadata, { user_id: 'user-42' });
    assert.equal(textOfSystem(rq.body.system), 'be brief');
    assert.deepEqual(rq.body.messages.map((m) => m.role), ['user']);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'claude-test');
    assert.equal(typeof r.id, 'string');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'hello claude');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.prompt_tokens, rq.usage.input_tokens);
    assert.equal(r.usage.completion_tokens, rq.usage.output_tokens);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.equal(response.headers.get('x-genaiops-provider'), 'claude');
  });

  await t.test('chat: stop_reason max_tokens becomes finish_reason length', async () => {
    const r = await client.chat.completions.create({ model: 'claude-test', max_tokens: 2, messages: user('one two three four') });
    assert.equal(r.choices[0].message.content, 'one two');
    assert.equal(r.choices[0].finish_reason, 'length');
    const got = await collectChat(await client.chat.completions.create({ model: 'claude-test', max_tokens: 3, messages: user('one two three four'), stream: true }));
    assert.equal(got.content[0], 'one two three');
    assert.equal(got.finish[0], 'length');
  });

  await t.test('chat: max_tokens is always sent (Anthropic requires it)', async () => {
    await client.chat.completions.create({ model: 'claude-test', messages: user('no limit given') });
    assert.ok(Number.isInteger(an.last().body.max_tokens) && an.last().body.max_tokens > 0);
    await client.chat.completions.create({ model: 'claude-test', max_completion_tokens: 77, messages: user('new name') });
    assert.equal(an.last().body.max_tokens, 77);
  });

  await t.test('stream: Anthropic events become chunks, include_usage gives usage', async () => {
    const got = await collectChat(await client.chat.completions.create({
      model: 'claude-test', messages: user('stream me some words'), stream: true, stream_options: { include_usage: true },
    }));
    assert.equal(an.last().body.stream, true);
    assert.equal(got.content[0], 'stream me some words');
    assert.equal(got.finish[0], 'stop');
    assert.ok(got.chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'claude-test'));
    assert.equal(new Set(got.chunks.map((c) => c.id)).size, 1);
    assert.equal(got.usage.length, 1);
    const u = got.usage[0];
    assert.equal(u.prompt_tokens, an.last().usage.input_tokens);
    assert.equal(u.completion_tokens, an.last().usage.output_tokens);
    assert.ok(an.last().events.includes('ping'));
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    const final = await client.chat.completions.stream({ model: 'claude-test', messages: user('helper via claude') }).finalChatCompletion();
    assert.equal(final.choices[0].message.content, 'helper via claude');
  });

  await t.test('tools: required -> tool_choice any, tool_use -> tool_calls', async () => {
    const r = await client.chat.completions.create({ model: 'claude-test', messages: user('weather?'), tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: 'required' });
    const rq = an.last().body;
    assert.deepEqual(rq.tool_choice, { type: 'any' });
    assert.deepEqual(rq.tools[0], { name: 'get_weather', description: 'The current weather in a city', input_schema: WEATHER_TOOL.function.parameters });
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    const call = r.choices[0].message.tool_calls[0];
    assert.equal(call.id, 'toolu_mock_01');
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  });

  await t.test('tools: a named function -> tool_choice tool', async () => {
    const r = await client.chat.completions.create({
      model: 'claude-test', messages: user('time?'), tools: [WEATHER_TOOL, TIME_TOOL], tool_choice: { type: 'function', function: { name: 'get_time' } },
      parallel_tool_calls: false,
    });
    assert.deepEqual(an.last().body.tool_choice, { type: 'tool', name: 'get_time', disable_parallel_tool_use: true });
    assert.deepEqual(JSON.parse(r.choices[0].message.tool_calls[0].function.arguments), { tz: 'Paris' });
  });

  await t.test('tools: streamed input_json_delta assembles into the call', async () => {
    const got = await collectChat(await client.chat.completions.create({
      model: 'claude-test', messages: user('weather?'), tools: [WEATHER_TOOL], tool_choice: 'required', stream: true,
    }));
    assert.equal(got.finish[0], 'tool_calls');
    assert.equal(got.calls.length, 1);
    assert.equal(got.calls[0].id, 'toolu_mock_01');
    assert.equal(got.calls[0].name, 'get_weather');
    assert.deepEqual(JSON.parse(got.calls[0].arguments), { city: 'Paris' });
    const final = await client.chat.completions.stream({ model: 'claude-test', messages: user('weather?'), tools: [WEATHER_TOOL], tool_choice: 'required' }).finalChatCompletion();
    assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
  });

  await t.test('tools: a text block then a tool_use block (plain and streamed)', async () => {
    const r = await client.chat.completions.create({ model: 'claude-test', messages: user('use a tool for this'), tools: [WEATHER_TOOL] });
    const m = r.choices[0].message;
    assert.equal(m.content, 'Let me look that up.');
    assert.equal(m.tool_calls.length, 1);
    assert.deepEqual(JSON.parse(m.tool_calls[0].function.arguments), { city: 'Paris' });
    const got = await collectChat(await client.chat.completions.create({ model: 'claude-test', messages: user('use a tool for this'), tools: [WEATHER_TOOL], stream: true }));
    assert.equal(got.content[0], 'Let me look that up.');
    assert.equal(got.calls.length, 1);
    assert.equal(got.calls[0].name, 'get_weather');
    assert.deepEqual(JSON.parse(got.calls[0].arguments), { city: 'Paris' });
    assert.equal(got.finish[0], 'tool_calls');
  });

  await t.test('tools: the tool result turn becomes tool_use / tool_result blocks', async () => {
    await client.chat.completions.create({
      model: 'claude-test', tools: [WEATHER_TOOL],
      messages: [
        ...user('weather in Oslo'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'toolu_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
        { role: 'tool', tool_call_id: 'toolu_abc', content: 'sunny, 21C' },
      ],
    });
    const msgs = an.last().body.messages;
    assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'user']);
    const use = msgs[1].content.find((b) => b.type === 'tool_use');
    assert.deepEqual(use, { type: 'tool_use', id: 'toolu_abc', name: 'get_weather', input: { city: 'Oslo' } });
    const res = msgs[2].content.find((b) => b.type === 'tool_result');
    assert.equal(res.tool_use_id, 'toolu_abc');
    const content = typeof res.content === 'string' ? res.content : res.content.map((b) => b.text).join('');
    assert.equal(content, 'sunny, 21C');
  });

  await t.test('content parts: text and images become Anthropic blocks', async () => {
    const r = await client.chat.completions.create({
      model: 'claude-test',
      messages: [{ role: 'user', content: [
        { type: 'text', text: 'what is in ' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
        { type: 'text', text: 'and ' },
        { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
      ] }],
    });
    const blocks = an.last().body.messages[0].content;
    assert.deepEqual(blocks, [
      { type: 'text', text: 'what is in ' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
      { type: 'text', text: 'and ' },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
    ]);
    assert.equal(r.choices[0].message.content, 'what is in and ');
  });

  await t.test('what Messages cannot express is a 400 before any upstream call', async () => {
    const before = an.requests.length;
    let e = await rejects(() => client.chat.completions.create({ model: 'claude-test', n: 2, messages: user('x') }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.match(e.message, /\bn\b/);
    e = await rejects(() => client.chat.completions.create({ model: 'claude-test', response_format: { type: 'json_object' }, messages: user('x') }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.match(e.message, /response_format/);
    e = await rejects(() => client.embeddings.create({ model: 'claude-test', input: 'x' }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.code, 'unsupported_endpoint');
    e = await rejects(() => client.completions.create({ model: 'claude-test', prompt: 'x' }));
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.code, 'unsupported_endpoint');
    assert.equal(an.requests.length, before);
  });

  await t.test('errors: Anthropic 404 and 429 become NotFoundError and RateLimitError', async () => {
    let e = await rejects(() => client.chat.completions.create({ model: 'claude/claude-missing', messages: user('x') }));
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    assert.equal(e.status, 404);
    assert.match(e.message, /claude-missing/);
    e = await rejects(() => client.chat.completions.create({ model: 'claude/ratelimited', messages: user('x') }));
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.status, 429);
    assert.match(e.message, /rate limit/);
    assert.equal(e.headers.get('retry-after'), '1');
  });

  await t.test('APIError mid-stream when Anthropic sends an error event', async () => {
    const { error, text } = await failingStream(await client.chat.completions.create({ model: 'claude/midstream-error', messages: user('one two three four'), stream: true }));
    assert.ok(error instanceof OpenAI.APIError, error.constructor.name);
    assert.equal(text, 'one two');
    assert.match(error.message, /Overloaded \(mock\)/);
  });

  await t.test('APIError when the Anthropic stream stops without message_stop', async () => {
    const { error, text } = await failingStream(await client.chat.completions.create({ model: 'claude/truncated', messages: user('one two three four'), stream: true }));
    assert.ok(error instanceof OpenAI.APIError, error.constructor.name);
    assert.equal(text, 'one two');
    assert.match(error.message, /ended/);
  });

  await t.test('the mock saw only well-formed Messages requests', () => {
    assert.deepEqual(an.problems, []);
  });
});

function textOfSystem(s) {
  return typeof s === 'string' ? s : (s || []).map((b) => b.text).join('');
}
