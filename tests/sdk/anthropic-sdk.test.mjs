// anthropic-sdk.test.mjs - the official Anthropic SDK (@anthropic-ai/sdk)
// against POST /v1/messages of genaiops:
//   - with the in-process simulator, so the gateway translates the Messages
//     request to Chat Completions and the answer (and stream) back;
//   - with the Anthropic mock of mocks.mjs behind a type anthropic provider,
//     where the request and the answer pass through natively.
// Plain and streamed calls (messages.stream and create({stream: true})),
// tools, and the SDK's error classes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway } from '../integration/lib.mjs';
import { startAnthropicMock, MOCK_KEY, stopClean } from './mocks.mjs';

const user = (content) => [{ role: 'user', content }];
const WEATHER = {
  name: 'get_weather', description: 'The current weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

async function rejects(fn) {
  try { await fn(); } catch (e) { return e; }
  assert.fail('expected the call to throw');
}

// The event types of a raw stream, and the text its text_deltas carry.
async function readEvents(stream) {
  const types = [];
  let text = '';
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
  }
  return { types, text };
}

// message_start, then blocks (start, deltas, stop), message_delta, message_stop.
const SEQUENCE = /^message_start( content_block_start( content_block_delta)* content_block_stop)+ message_delta message_stop$/;

test('Anthropic SDK -> genaiops /v1/messages -> simulator (translated)', async (t) => {
  const gw = await startGateway();
  t.after(() => stopClean(gw));
  const client = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-unused', maxRetries: 0 });

  await t.test('messages.create: a message object', async () => {
    const { data: m, response } = await client.messages.create({
      model: 'sim/echo', max_tokens: 64, system: 'be brief', messages: user('hello from the anthropic sdk'),
    }).withResponse();
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'sim/echo');
    assert.equal(typeof m.id, 'string');
    assert.equal(m.content.length, 1);
    assert.equal(m.content[0].type, 'text');
    assert.equal(m.content[0].text, 'hello from the anthropic sdk');
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0);
    assert.equal(response.headers.get('x-genaiops-provider'), 'sim');
  });

  await t.test('messages.create: max_tokens cut gives stop_reason max_tokens', async () => {
    const m = await client.messages.create({ model: 'sim/echo', max_tokens: 2, messages: user('one two three four five six seven eight') });
    assert.equal(m.stop_reason, 'max_tokens');
    assert.ok('one two three four five six seven eight'.startsWith(m.content[0].text));
  });

  await t.test('create({stream: true}): the Anthropic event sequence', async () => {
    const s = await client.messages.create({ model: 'sim/echo', max_tokens: 64, messages: user('stream these words'), stream: true });
    const { types, text } = await readEvents(s);
    assert.match(types.join(' '), SEQUENCE);
    assert.equal(text, 'stream these words');
  });

  await t.test('messages.stream: text events and finalMessage', async () => {
    const parts = [];
    const s = client.messages.stream({ model: 'sim/echo', max_tokens: 64, messages: user('the stream helper works') });
    s.on('text', (d) => parts.push(d));
    const m = await s.finalMessage();
    assert.equal(parts.join(''), 'the stream helper works');
    assert.ok(parts.length > 1);
    assert.equal(m.content[0].text, 'the stream helper works');
    assert.equal(m.stop_reason, 'end_turn');
    assert.ok(m.usage.input_tokens > 0 && m.usage.output_tokens > 0, JSON.stringify(m.usage));
  });

  await t.test('tools: tool_choice any gives a tool_use block, plain and streamed', async () => {
    const m = await client.messages.create({
      model: 'sim/echo', max_tokens: 64, messages: user('weather in Rome'), tools: [WEATHER], tool_choice: { type: 'any' },
    });
    assert.equal(m.stop_reason, 'tool_use');
    const use = m.content.find((b) => b.type === 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.match(use.id, /\S/);
    assert.equal(typeof use.input.city, 'string');
    const f = await client.messages.stream({
      model: 'sim/echo', max_tokens: 64, messages: user('weather in Rome'), tools: [WEATHER], tool_choice: { type: 'tool', name: 'get_weather' },
    }).finalMessage();
    assert.equal(f.stop_reason, 'tool_use');
    const su = f.content.find((b) => b.type === 'tool_use');
    assert.equal(su.name, 'get_weather');
    assert.deepEqual(su.input, use.input);
  });

  await t.test('tools: a tool_result turn (system blocks, stop_sequences) is answered', async () => {
    const m = await client.messages.create({
      model: 'sim/echo', max_tokens: 64, system: [{ type: 'text', text: 'you are terse' }], stop_sequences: ['STOP'], tools: [WEATHER],
      messages: [
        ...user('weather in Rome?'),
        { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Rome' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }, { type: 'text', text: 'and tomorrow?' }] },
      ],
    });
    assert.equal(m.type, 'message');
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.content[0].type, 'text');
    assert.equal(m.content[0].text, 'and tomorrow?');
  });

  await t.test('400 BadRequestError: max_tokens missing', async () => {
    const e = await rejects(() => client.messages.create({ model: 'sim/echo', messages: user('x') }));
    assert.ok(e instanceof Anthropic.BadRequestError, e.constructor.name);
    assert.equal(e.status, 400);
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'invalid_request_error');
    assert.match(e.message, /max_tokens/);
  });

  await t.test('404 NotFoundError: unknown model', async () => {
    const e = await rejects(() => client.messages.create({ model: 'claude-nonexistent', max_tokens: 8, messages: user('x') }));
    assert.ok(e instanceof Anthropic.NotFoundError, e.constructor.name);
    assert.equal(e.status, 404);
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'not_found_error');
    assert.match(e.message, /claude-nonexistent/);
  });

  await t.test('429 RateLimitError: sim/error-429', async () => {
    const e = await rejects(() => client.messages.create({ model: 'sim/error-429', max_tokens: 8, messages: user('x') }));
    assert.ok(e instanceof Anthropic.RateLimitError, e.constructor.name);
    assert.equal(e.status, 429);
    assert.equal(e.error.error.type, 'rate_limit_error');
    assert.match(e.headers.get('retry-after'), /^\d+$/);
  });

  await t.test('500 InternalServerError: sim/error-500', async () => {
    const e = await rejects(() => client.messages.create({ model: 'sim/error-500', max_tokens: 8, messages: user('x') }));
    assert.ok(e instanceof Anthropic.InternalServerError, e.constructor.name);
    assert.equal(e.status, 500);
    assert.equal(e.error.error.type, 'api_error');
  });

  await t.test('APIError mid-stream for sim/broken-stream', async () => {
    const s = await client.messages.create({ model: 'sim/broken-stream', max_tokens: 64, messages: user('x'), stream: true });
    let text = '';
    const e = await rejects(async () => {
      for await (const ev of s) if (ev.type === 'content_block_delta') text += ev.delta.text;
    });
    assert.ok(e instanceof Anthropic.APIError, e.constructor.name);
    assert.ok(text.length > 0);
    assert.equal(e.error.type, 'error');
    assert.match(e.message, /stream/);
  });
});

test('Anthropic SDK -> genaiops /v1/messages -> type anthropic (mock, native)', async (t) => {
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
  const client = new Anthropic({ baseURL: gw.url, apiKey: 'sk-ant-client', maxRetries: 0 });

  await t.test('messages.create: the request reaches the mock as sent, with the provider key', async () => {
    const params = { model: 'claude-test', max_tokens: 100, system: 'be brief', temperature: 0.2, metadata: { user_id: 'u-1' }, messages: user('native hello') };
    const m = await client.messages.create(params);
    const rq = an.last();
    assert.equal(rq.path, '/v1/messages');
    assert.equal(rq.headers['x-api-key'], MOCK_KEY, "the provider's key, not the client's");
    assert.equal(rq.headers['anthropic-version'], '2023-06-01');
    assert.deepEqual(rq.body, { ...params, model: 'claude-3-5-haiku-latest' });
    assert.equal(m.type, 'message');
    assert.equal(m.content[0].text, 'native hello');
    assert.equal(m.stop_reason, 'end_turn');
    assert.deepEqual(m.usage, rq.usage);
  });

  await t.test('create({stream: true}): the mock\'s events arrive in order', async () => {
    const s = await client.messages.create({ model: 'claude-test', max_tokens: 100, messages: user('pass these events along'), stream: true });
    const { types, text } = await readEvents(s);
    assert.match(types.join(' '), SEQUENCE);
    assert.deepEqual(types, an.last().events.filter((e) => e !== 'ping'));
    assert.equal(text, 'pass these events along');
  });

  await t.test('messages.stream: text then tool_use block, finalMessage', async () => {
    const parts = [];
    const s = client.messages.stream({ model: 'claude-test', max_tokens: 100, messages: user('use a tool here'), tools: [WEATHER] });
    s.on('text', (d) => parts.push(d));
    const m = await s.finalMessage();
    assert.equal(parts.join(''), 'Let me look that up.');
    assert.deepEqual(m.content.map((b) => b.type), ['text', 'tool_use']);
    assert.deepEqual(m.content[1].input, { city: 'Paris' });
    assert.equal(m.content[1].id, 'toolu_mock_01');
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(an.last().body.tools, [WEATHER]);
  });

  await t.test('errors: 404 NotFoundError and 429 RateLimitError from the upstream', async () => {
    let e = await rejects(() => client.messages.create({ model: 'claude/claude-missing', max_tokens: 8, messages: user('x') }));
    assert.ok(e instanceof Anthropic.NotFoundError, e.constructor.name);
    assert.equal(e.error.error.type, 'not_found_error');
    e = await rejects(() => client.messages.create({ model: 'claude/ratelimited', max_tokens: 8, messages: user('x') }));
    assert.ok(e instanceof Anthropic.RateLimitError, e.constructor.name);
    assert.equal(e.error.error.type, 'rate_limit_error');
    assert.match(e.error.error.message, /\(mock\)/);
    assert.equal(e.headers.get('retry-after'), '1');
  });

  await t.test('APIError mid-stream when the upstream sends an error event', async () => {
    const s = client.messages.stream({ model: 'claude/midstream-error', max_tokens: 100, messages: user('one two three four') });
    const parts = [];
    s.on('text', (d) => parts.push(d));
    const e = await rejects(() => s.finalMessage());
    assert.ok(e instanceof Anthropic.APIError, e.constructor.name);
    assert.equal(parts.join(''), 'one two');
    assert.equal(e.error.error.type, 'overloaded_error');
    assert.match(e.message, /Overloaded \(mock\)/);
  });

  await t.test('APIError when the upstream stream stops without message_stop (no silent cut)', async () => {
    // the upstream closes the connection cleanly after two text deltas: no
    // content_block_stop, message_delta or message_stop. The gateway must
    // not end the client's stream as if it were complete.
    const s = await client.messages.create({ model: 'claude/truncated', max_tokens: 100, messages: user('one two three four'), stream: true });
    let types = [];
    const e = await rejects(async () => { for await (const ev of s) types.push(ev.type); });
    assert.ok(e instanceof Anthropic.APIError, e.constructor.name);
    assert.ok(!types.includes('message_stop'));
  });

  await t.test('the mock saw only well-formed Messages requests', () => {
    assert.deepEqual(an.problems, []);
  });
});
