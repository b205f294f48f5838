// mocks.mjs - small node servers that stand in for real upstream providers,
// so the SDK tests exercise the gateway's azure and anthropic provider types
// without the network.
//
// Each mock checks the request the gateway sends the way the real service
// would (URL shape, auth headers, required fields) and answers a request it
// does not like with an error in the service's own shape, so a gateway
// mistake shows up as a failing SDK call. It also records every request in
// mock.requests ({ method, url, path, query, headers, body }) and every
// problem it found in mock.problems, for the tests to assert on.
//
// Answers are deterministic: the text of the last user message comes back
// (the "echo" of the simulator), split into word-sized pieces when streamed.
// The upstream model name picks a failure:
//   azure deployment / anthropic model containing "ratelimited" -> 429
//   anthropic model "claude-missing" (azure deployment "missing") -> 404
//   containing "midstream-error" -> a stream that fails after two pieces
//   containing "truncated" -> a stream that just stops after two pieces
//     (the connection ends cleanly, without [DONE] / message_stop)
// Besides the request, each record gets usage (what the answer reported)
// and, for Anthropic streams, events (the event names sent, in order).
import http from 'node:http';

export const MOCK_KEY = 'mock-upstream-key';
export const AZURE_API_VERSION = '2024-10-21';
export const ANTHROPIC_VERSION = '2023-06-01';

// Starts an http server on a random loopback port with handler(req, body, res).
function serve(handler) {
  const requests = [];
  const problems = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url, 'http://mock');
      let body = null;
      try { body = raw ? JSON.parse(raw) : null; } catch { body = undefined; }
      const rec = { method: req.method, url: req.url, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers, body, raw };
      requests.push(rec);
      try {
        handler(rec, res, (p) => problems.push(p));
      } catch (e) {
        problems.push(`mock crashed: ${e.stack}`);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `mock crashed: ${e.message}` } }));
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        port, url: `http://127.0.0.1:${port}`, requests, problems,
        last() { return requests[requests.length - 1]; },
        close() { server.closeAllConnections(); return new Promise((r) => server.close(() => r())); },
      });
    });
  });
}

// The text of a message's content: a string, or the text parts/blocks of an array.
function textOf(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.filter((p) => p && p.type === 'text').map((p) => p.text).join('');
}

function lastUserText(messages) {
  for (let i = (messages || []).length - 1; i >= 0; i--) if (messages[i].role === 'user') return textOf(messages[i].content);
  return '';
}

// "hello big world" -> ["hello", " big", " world"]
export function pieces(text) { return text.match(/\s*\S+/g) || [text]; }

// Placeholder arguments for a JSON schema's required (or all) properties.
function argsFor(schema) {
  const out = {};
  const props = (schema && schema.properties) || {};
  for (const k of schema && schema.required ? schema.required : Object.keys(props)) {
    const t = props[k] && props[k].type;
    out[k] = t === 'number' || t === 'integer' ? 42 : t === 'boolean' ? true : 'Paris';
  }
  return out;
}

function tokens(text) { return Math.max(1, Math.ceil(text.length / 4)); }

function sse(res, event, data) {
  if (res.events) res.events.push(event);
  res.write((event ? `event: ${event}\n` : '') + `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

// ---------------------------------------------------------------- Azure ---

function azureError(res, status, code, message, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { code, message } }));
}

// An Azure OpenAI resource: POST /openai/deployments/<deployment>/{chat/completions,
// completions,embeddings}?api-version=V with the api-key header, answered in
// OpenAI's shape. Streams begin with Azure's prompt_filter_results chunk
// (empty choices) as the real service does.
export function startAzureMock({ apiKey = MOCK_KEY, apiVersion = AZURE_API_VERSION } = {}) {
  return serve((rq, res, problem) => {
    const m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|embeddings)$/.exec(rq.path);
    if (rq.method !== 'POST' || !m) {
      problem(`unexpected ${rq.method} ${rq.url}`);
      return azureError(res, 404, '404', `Resource not found: ${rq.method} ${rq.url}`);
    }
    if (rq.query['api-version'] !== apiVersion) {
      problem(`api-version ${rq.query['api-version']}`);
      return azureError(res, 404, '404', 'Resource not found (api-version)');
    }
    if (rq.headers['api-key'] !== apiKey) {
      problem(`api-key header ${rq.headers['api-key']}`);
      return azureError(res, 401, '401', 'Access denied due to invalid subscription key or wrong API endpoint.');
    }
    if (rq.headers.authorization) problem(`authorization header sent to azure: ${rq.headers.authorization}`);
    if (!/application\/json/.test(rq.headers['content-type'] || '')) problem(`content-type ${rq.headers['content-type']}`);
    if (rq.body === undefined || rq.body === null || typeof rq.body !== 'object') {
      problem('body is not JSON');
      return azureError(res, 400, 'BadRequest', 'body is not JSON');
    }
    const [, deployment, op] = m;
    if (deployment.includes('ratelimited'))
      return azureError(res, 429, '429', 'Requests to the ChatCompletions_Create Operation have exceeded the token rate limit (mock).', { 'retry-after': '1' });
    if (deployment === 'missing')
      return azureError(res, 404, 'DeploymentNotFound', 'The API deployment for this resource does not exist (mock).');
    const created = 1735689600;
    const model = 'gpt-4o-2024-08-06'; // Azure reports the underlying model, not the deployment
    if (op === 'embeddings') {
      const inputs = Array.isArray(rq.body.input) ? rq.body.input : [rq.body.input];
      const data = inputs.map((s, index) => {
        const v = new Float32Array(8).map((_, i) => (String(s).length + i) / 100);
        const embedding = rq.body.encoding_format === 'base64' ? Buffer.from(v.buffer).toString('base64') : Array.from(v);
        return { object: 'embedding', index, embedding };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ object: 'list', data, model: 'text-embedding-3-small', usage: { prompt_tokens: inputs.length, total_tokens: inputs.length } }));
    }
    if (op === 'completions') {
      const text = String(rq.body.prompt ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({
        id: 'cmpl-azure-1', object: 'text_completion', created, model,
        choices: [{ index: 0, text, finish_reason: 'stop', logprobs: null }],
        usage: { prompt_tokens: tokens(text), completion_tokens: tokens(text), total_tokens: 2 * tokens(text) },
      }));
    }
    // chat/completions
    if (!Array.isArray(rq.body.messages) || rq.body.messages.length === 0) {
      problem('messages missing');
      return azureError(res, 400, 'BadRequest', "'messages' is a required property");
    }
    const text = lastUserText(rq.body.messages);
    const tools = rq.body.tools || [];
    const tc = rq.body.tool_choice;
    let tool = null;
    if (tools.length && tc === 'required') tool = tools[0].function;
    else if (tools.length && tc && typeof tc === 'object') tool = tools.find((t) => t.function.name === tc.function.name)?.function;
    const call = tool && { id: 'call_azure_1', type: 'function', function: { name: tool.name, arguments: JSON.stringify(argsFor(tool.parameters)) } };
    const usage = { prompt_tokens: tokens(JSON.stringify(rq.body.messages)), completion_tokens: tokens(text), total_tokens: 0 };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    rq.usage = usage;
    const id = 'chatcmpl-azure-1';
    const finish = call ? 'tool_calls' : 'stop';
    if (!rq.body.stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'apim-request-id': 'mock' });
      return res.end(JSON.stringify({
        id, object: 'chat.completion', created, model, system_fingerprint: 'fp_azure',
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }],
        choices: [{ index: 0, finish_reason: finish, logprobs: null, content_filter_results: {},
          message: call ? { role: 'assistant', content: null, tool_calls: [call] } : { role: 'assistant', content: text } }],
        usage,
      }));
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta, finish_reason = null) => ({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_azure',
      choices: [{ index: 0, delta, finish_reason, logprobs: null, content_filter_results: {} }] });
    sse(res, null, { id: '', object: '', created: 0, model: '', choices: [], prompt_filter_results: [{ prompt_index: 0, content_filter_results: {} }] });
    sse(res, null, chunk({ role: 'assistant', content: '' }));
    if (call) {
      sse(res, null, chunk({ tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }] }));
      const a = call.function.arguments;
      for (let i = 0; i < a.length; i += 5) sse(res, null, chunk({ tool_calls: [{ index: 0, function: { arguments: a.slice(i, i + 5) } }] }));
    } else {
      const ps = pieces(text);
      for (let i = 0; i < ps.length; i++) {
        if (deployment.includes('midstream-error') && i === 2) {
          // what OpenAI sends when a stream fails: an error object, then the end
          sse(res, null, { error: { message: 'The server had an error while processing your request (mock).', type: 'server_error', param: null, code: null } });
          return res.end();
        }
        if (deployment.includes('truncated') && i === 2) return res.end();
        sse(res, null, chunk({ content: ps[i] }));
      }
    }
    sse(res, null, chunk({}, finish));
    if (rq.body.stream_options && rq.body.stream_options.include_usage)
      sse(res, null, { id, object: 'chat.completion.chunk', created, model, choices: [], usage });
    sse(res, null, '[DONE]');
    res.end();
  });
}

// ------------------------------------------------------------ Anthropic ---

function anthropicError(res, status, type, message, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': 'req_mock', ...headers });
  res.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

// The content blocks of an answer: a forced tool gives one tool_use block;
// tool_choice auto with a message that asks for a tool gives a text block
// then a tool_use block; otherwise one text block echoing the user, cut to
// max_tokens pieces (stop_reason max_tokens).
function anthropicAnswer(body) {
  let text = lastUserText(body.messages);
  let cut = false;
  const ps = pieces(text);
  if (ps.length > body.max_tokens) { text = ps.slice(0, body.max_tokens).join(''); cut = true; }
  const tools = body.tools || [];
  const tc = body.tool_choice || { type: 'auto' };
  let tool = null;
  let preface = null;
  if (tools.length && tc.type === 'any') tool = tools[0];
  else if (tools.length && tc.type === 'tool') tool = tools.find((t) => t.name === tc.name);
  else if (tools.length && tc.type === 'auto' && /\btool\b/i.test(text)) { tool = tools[0]; preface = 'Let me look that up.'; }
  const blocks = [];
  if (preface) blocks.push({ type: 'text', text: preface });
  if (tool) blocks.push({ type: 'tool_use', id: 'toolu_mock_01', name: tool.name, input: argsFor(tool.input_schema) });
  else blocks.push({ type: 'text', text });
  return { blocks, stop_reason: tool ? 'tool_use' : cut ? 'max_tokens' : 'end_turn' };
}

// An Anthropic Messages API: POST /v1/messages with x-api-key and
// anthropic-version; non-streamed answers are message objects, streamed ones
// the documented event sequence (message_start, content_block_start, ping,
// content_block_delta..., content_block_stop, message_delta, message_stop).
export function startAnthropicMock({ apiKey = MOCK_KEY, version = ANTHROPIC_VERSION } = {}) {
  return serve((rq, res, problem) => {
    if (rq.method !== 'POST' || rq.path !== '/v1/messages') {
      problem(`unexpected ${rq.method} ${rq.url}`);
      return anthropicError(res, 404, 'not_found_error', `Not found: ${rq.method} ${rq.url}`);
    }
    if (rq.headers['x-api-key'] !== apiKey) {
      problem(`x-api-key header ${rq.headers['x-api-key']}`);
      return anthropicError(res, 401, 'authentication_error', 'invalid x-api-key');
    }
    if (rq.headers['anthropic-version'] !== version) {
      problem(`anthropic-version header ${rq.headers['anthropic-version']}`);
      return anthropicError(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
    }
    if (rq.headers.authorization) problem(`authorization header sent to anthropic: ${rq.headers.authorization}`);
    const b = rq.body;
    if (!b || typeof b !== 'object') {
      problem('body is not JSON');
      return anthropicError(res, 400, 'invalid_request_error', 'body is not valid JSON');
    }
    for (const k of ['model', 'max_tokens', 'messages']) {
      if (b[k] === undefined) {
        problem(`${k} missing`);
        return anthropicError(res, 400, 'invalid_request_error', `${k}: Field required`);
      }
    }
    if (b.messages.some((m) => m.role !== 'user' && m.role !== 'assistant')) {
      problem('a message role other than user/assistant');
      return anthropicError(res, 400, 'invalid_request_error', 'messages: roles must be user or assistant (system goes in "system")');
    }
    if (b.model === 'claude-missing') return anthropicError(res, 404, 'not_found_error', `model: ${b.model}`);
    if (b.model.includes('ratelimited'))
      return anthropicError(res, 429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit (mock).', { 'retry-after': '1' });
    const { blocks, stop_reason } = anthropicAnswer(b);
    const inTokens = tokens(JSON.stringify(b.messages) + (typeof b.system === 'string' ? b.system : JSON.stringify(b.system || '')));
    const outText = blocks.map((x) => x.text || JSON.stringify(x.input)).join('');
    const usage = { input_tokens: inTokens, output_tokens: tokens(outText) };
    const id = 'msg_mock_01';
    rq.usage = usage;
    rq.events = [];
    if (!b.stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_mock' });
      return res.end(JSON.stringify({ id, type: 'message', role: 'assistant', model: b.model, content: blocks, stop_reason, stop_sequence: null, usage }));
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': 'req_mock' });
    res.events = rq.events; // the names of the events sent, in order
    sse(res, 'message_start', { type: 'message_start', message: { id, type: 'message', role: 'assistant', model: b.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inTokens, output_tokens: 1 } } });
    for (const [index, blk] of blocks.entries()) {
      if (blk.type === 'text') {
        sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
        if (index === 0) sse(res, 'ping', { type: 'ping' });
        const ps = pieces(blk.text);
        for (let i = 0; i < ps.length; i++) {
          if (b.model.includes('midstream-error') && i === 2) {
            // Anthropic's mid-stream failure: an error event, then the end
            sse(res, 'error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded (mock)' } });
            return res.end();
          }
          if (b.model.includes('truncated') && i === 2) return res.end();
          sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: ps[i] } });
        }
      } else {
        sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: blk.id, name: blk.name, input: {} } });
        if (index === 0) sse(res, 'ping', { type: 'ping' });
        const json = JSON.stringify(blk.input);
        sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } });
        for (let i = 0; i < json.length; i += 4)
          sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: json.slice(i, i + 4) } });
      }
      sse(res, 'content_block_stop', { type: 'content_block_stop', index });
    }
    sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } });
    sse(res, 'message_stop', { type: 'message_stop' });
    res.end();
  });
}

// ------------------------------------------------- shared test fixtures ---

// Two function tools in OpenAI's shape, for the tool-calling tests.
export const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather', description: 'The current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};
export const TIME_TOOL = {
  type: 'function',
  function: {
    name: 'get_time', description: 'The local time in a timezone',
    parameters: { type: 'object', properties: { tz: { type: 'string' }, hour24: { type: 'boolean' } }, required: ['tz'] },
  },
};

// Reads an openai chat stream to the end: the chunks, the content of each
// choice joined, and the tool calls assembled from their deltas by index.
export async function collectChat(stream) {
  const chunks = [];
  const content = [];
  const finish = [];
  const calls = [];
  for await (const ch of stream) {
    chunks.push(ch);
    for (const c of ch.choices || []) {
      content[c.index] = (content[c.index] || '') + (c.delta?.content || '');
      if (c.finish_reason) finish[c.index] = c.finish_reason;
      for (const tc of c.delta?.tool_calls || []) {
        const cur = calls[tc.index] || (calls[tc.index] = { id: '', name: '', arguments: '' });
        if (tc.id) cur.id = tc.id;
        if (tc.function?.name) cur.name += tc.function.name;
        if (tc.function?.arguments) cur.arguments += tc.function.arguments;
      }
    }
  }
  return { chunks, content, finish, calls, usage: chunks.map((c) => c.usage).filter(Boolean) };
}

// Stops a gateway or sim started by lib.mjs and checks that it went down
// cleanly: exit status 0 after SIGTERM, and no sanitizer report in its
// output (matters when GENAIOPS_BIN is an ASan/UBSan build).
export async function stopClean(server) {
  const r = await server.stop();
  const bad = /ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer/.exec(r.logs);
  if (bad) throw new Error(`sanitizer report from the server:\n${r.logs.slice(-8000)}`);
  if (r.code !== 0) throw new Error(`server exited with code ${r.code}, signal ${r.signal}:\n${r.logs.slice(-4000)}`);
}
