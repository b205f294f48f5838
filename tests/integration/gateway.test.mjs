// gateway.test.mjs - the gateway against misbehaving upstreams (node mock
// servers of type openai): retries with Retry-After, persistent failures,
// pass-through of client errors, connection refused, timeouts, fallbacks in
// order, streams broken mid-way, cancellation when the client leaves,
// backpressure towards a client that does not read, routing (deployments,
// PROVIDER/MODEL, upstream_model) and untouched pass-through of the body.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SANITIZED, freePort, rssKiB, startGateway } from './lib.mjs';
import {
  startUpstream, step, script, chat, request, openSocket, rawPost, chatBody, finishGateway, assertAlive,
  assertOpenAIError, sleep, sendJson, chatCompletion, chunkEvent, connectionsSettle,
} from './upstreams.mjs';

// Splits an SSE body into its data payloads.
function sseData(text) {
  return text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
}

describe('gateway with misbehaving upstreams', () => {
  let gw, A, B, C, deadPort;
  let finished = false;

  before(async () => {
    [A, B, C] = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
    deadPort = await freePort(); // nothing listens there: connection refused
    gw = await startGateway({
      config: `
server:
  listen: @LISTEN@
  workers: 2
  max_stream_buffer: 64KiB
  retry: { max_retries: 2, base_ms: 20ms, max_ms: 100ms }
providers:
  - name: up
    type: openai
    base_url: ${A.url}
    api_key: sk-upstream-secret
    headers: { X-Custom-Header: custom-value }
  - { name: up2, type: openai, base_url: ${B.url} }
  - { name: up3, type: openai, base_url: ${C.url}, max_retries: 0 }
  - { name: dead, type: openai, base_url: "http://127.0.0.1:${deadPort}/v1", connect_timeout_ms: 1s }
  - { name: slowp, type: openai, base_url: ${A.url}, timeout_ms: 400ms, max_retries: 1 }
  - { name: sim, type: simulator }
models:
  - { name: plain, provider: up }
  - { name: renamed, provider: up, upstream_model: gpt-upstream-name }
  - { name: m-primary, provider: up, upstream_model: model-a, fallbacks: [m-second, up3/model-c] }
  - { name: m-second, provider: up2, upstream_model: model-b }
  - { name: to-dead, provider: dead }
  - { name: dead-then-sim, provider: dead, fallbacks: [sim/echo] }
  - { name: slow, provider: slowp }
deployments:
  - { name: prod-chat, model: renamed }
`,
    });
  });
  after(async () => {
    if (!finished) await gw.stop();
    await Promise.all([A, B, C].map((u) => u.close()));
  });

  it('429 with Retry-After, then 200: retried after the wait, 200 with the attempt count', async () => {
    A.set(script([step.error(429, 'slow down', { 'retry-after': '1' }), step.ok('finally')]));
    const t0 = Date.now();
    const r = await chat(gw, chatBody('plain', 'hi'));
    const ms = Date.now() - t0;
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'finally');
    assert.equal(r.headers['x-genaiops-attempts'], '2');
    assert.equal(r.headers['x-genaiops-provider'], 'up');
    assert.equal(A.requests.length, 2);
    assert.ok(ms >= 900, `retried after ${ms} ms, Retry-After said 1 s`);
    assert.ok(A.requests[1].at - A.requests[0].at >= 900);
  });

  it('time spent waiting to retry is not counted in x-genaiops-overhead-us', async () => {
    // the header is the gateway's own time: the request's time minus the
    // time spent on upstreams and backoff (gateway.c says so)
    A.set(script([step.error(429, 'slow down', { 'retry-after': '1' }), step.ok()]));
    const r = await chat(gw, chatBody('plain', 'hi'));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-genaiops-attempts'], '2');
    const us = Number(r.headers['x-genaiops-overhead-us']);
    assert.ok(us < 200_000, `x-genaiops-overhead-us is ${us} after a 1 s Retry-After wait`);
  });

  it('retry-after-ms is honoured too', async () => {
    A.set(script([step.error(503, 'busy', { 'retry-after-ms': '400' }), step.ok('later')]));
    const r = await chat(gw, chatBody('plain'));
    assert.equal(r.status, 200);
    assert.equal(A.requests.length, 2);
    const waited = A.requests[1].at - A.requests[0].at;
    assert.ok(waited >= 380, `retried after ${waited} ms, retry-after-ms said 400`);
  });

  it('a Retry-After too far away is not waited for: the 429 is passed on with it', async () => {
    A.set(step.error(429, 'come back in an hour', { 'retry-after': '3600' }));
    const t0 = Date.now();
    const r = await chat(gw, chatBody('plain'));
    assert.equal(r.status, 429);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(A.requests.length, 1);
    assert.equal(r.headers['retry-after'], '3600');
    assert.equal(r.json.error.message, 'come back in an hour');
  });

  it('500 twice then 200: third attempt succeeds', async () => {
    A.set(script([step.error(500, 'boom'), step.error(500, 'boom'), step.ok('third time lucky')]));
    const r = await chat(gw, chatBody('plain'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'third time lucky');
    assert.equal(r.headers['x-genaiops-attempts'], '3');
    assert.equal(A.requests.length, 3);
    // every attempt carried the same body
    assert.equal(new Set(A.requests.map((q) => q.raw)).size, 1);
  });

  it('persistent 503: the final 503 keeps the upstream message, after max_retries', async () => {
    A.set(step.error(503, 'upstream is overloaded: shard 7'));
    const r = await chat(gw, chatBody('plain'));
    assert.equal(r.status, 503);
    assertOpenAIError(r.json, { message: /upstream is overloaded: shard 7/ });
    assert.equal(r.headers['x-genaiops-attempts'], '3');
    assert.equal(A.requests.length, 3);
  });

  it('an upstream error that is not JSON becomes an OpenAI error naming the status', async () => {
    A.set(({ res }) => { res.writeHead(502, { 'content-type': 'text/html' }); res.end('<html><body>Bad Gateway from the proxy</body></html>'); });
    const r = await chat(gw, chatBody('plain'));
    assert.equal(r.status, 502);
    assertOpenAIError(r.json, { message: /HTTP 502.*Bad Gateway from the proxy/ });
    assert.equal(A.requests.length, 3);
  });

  it('400 from the upstream: passed through untouched, not retried, no fallback', async () => {
    const upstreamErr = { error: { message: "Invalid value for 'temperature': 9", type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' } };
    A.set(({ res }) => sendJson(res, 400, upstreamErr));
    B.set(step.ok());
    C.set(step.ok());
    for (const model of ['plain', 'm-primary']) {
      A.set(({ res }) => sendJson(res, 400, upstreamErr));
      const r = await chat(gw, chatBody(model, 'x', { temperature: 9 }));
      assert.equal(r.status, 400);
      assert.deepEqual(r.json, upstreamErr);
      assert.equal(r.headers['x-genaiops-attempts'], '1');
      assert.equal(A.requests.length, 1, model);
    }
    assert.equal(B.requests.length + C.requests.length, 0, 'fell back on a 400');
  });

  it('connection refused: 502 after the retries', async () => {
    const t0 = Date.now();
    const r = await chat(gw, chatBody('to-dead'));
    assert.equal(r.status, 502);
    assertOpenAIError(r.json, { type: 'upstream_error', code: 'upstream_unavailable', message: /provider 'dead' could not be reached after 3 attempts/ });
    assert.ok(Date.now() - t0 < 3000);
    // with a fallback the client never notices
    const f = await chat(gw, chatBody('dead-then-sim', 'rescued'));
    assert.equal(f.status, 200);
    assert.equal(f.json.choices[0].message.content, 'rescued');
    assert.equal(f.headers['x-genaiops-provider'], 'sim');
  });

  it('x-genaiops-attempts and x-genaiops-provider come with every answer after upstream attempts', async () => {
    // a 200, an upstream error status, a transport failure (502) and a timeout (504)
    A.set(step.ok());
    const ok = await chat(gw, chatBody('plain'));
    A.set(step.error(503, 'x'));
    const st = await chat(gw, chatBody('plain'));
    const refused = await chat(gw, chatBody('to-dead'));
    A.set(step.hang());
    const timedOut = await chat(gw, chatBody('slow'));
    const got = [ok, st, refused, timedOut].map((r) => [r.status, r.headers['x-genaiops-attempts'], r.headers['x-genaiops-provider']]);
    assert.deepEqual(got, [[200, '1', 'up'], [503, '3', 'up'], [502, '3', 'dead'], [504, '2', 'slowp']]);
  });

  it('an upstream that speaks garbage or sends a giant head: 502', async () => {
    A.set(({ req }) => { req.socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n'); req.socket.destroy(); });
    let r = await chat(gw, chatBody('plain'));
    assert.equal(r.status, 502);
    assertOpenAIError(r.json, { code: 'upstream_unavailable' });
    assert.equal(A.requests.length, 3);
    A.set(({ res }) => sendJson(res, 200, chatCompletion('x', 'y'), { 'x-huge': 'h'.repeat(20000) }));
    r = await chat(gw, chatBody('plain'));
    assert.equal(r.status, 502);
    assertOpenAIError(r.json, { type: 'upstream_error', code: 'upstream_unavailable' });
    await assertAlive(gw);
  });

  it('an upstream that never answers: 504 after timeout_ms, each attempt hung up', async () => {
    A.set(step.hang());
    const t0 = Date.now();
    const r = await chat(gw, chatBody('slow'));
    const ms = Date.now() - t0;
    assert.equal(r.status, 504);
    assertOpenAIError(r.json, { code: 'upstream_timeout', message: /timed out after 2 attempts/ });
    assert.equal(A.requests.length, 2); // max_retries: 1
    assert.ok(ms >= 750 && ms < 3000, `504 after ${ms} ms; two attempts of 400 ms`);
    const closed = await Promise.race([Promise.all(A.requests.map((q) => q.closed)), sleep(2000).then(() => null)]);
    assert.ok(closed, 'the gateway left timed-out upstream requests open');
  });

  it('fallbacks are tried in order when the primary fails', async () => {
    A.set(step.error(500, 'primary down'));
    B.set(step.error(503, 'second down'));
    C.set(step.ok('from the third'));
    const r = await chat(gw, chatBody('m-primary', 'hello'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'from the third');
    assert.equal(r.headers['x-genaiops-provider'], 'up3');
    assert.equal(r.headers['x-genaiops-attempts'], '7'); // 3 + 3 + 1
    assert.equal(A.requests.length, 3);
    assert.equal(B.requests.length, 3);
    assert.equal(C.requests.length, 1);
    assert.ok(A.requests.at(-1).at <= B.requests[0].at && B.requests.at(-1).at <= C.requests[0].at, 'not in order');
    // each got its own upstream model name
    assert.deepEqual([A.requests[0].json.model, B.requests[0].json.model, C.requests[0].json.model], ['model-a', 'model-b', 'model-c']);
    // an authentication failure of the primary falls back too (another provider has other keys)
    A.set(({ res }) => sendJson(res, 401, { error: { message: 'bad key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }));
    B.set(step.ok('second rescues'));
    const auth = await chat(gw, chatBody('m-primary'));
    assert.equal(auth.status, 200);
    assert.equal(auth.json.choices[0].message.content, 'second rescues');
    assert.equal(A.requests.length, 1, '401 is not retried on the same provider');
    A.set(step.error(500, 'primary down'));
    B.set(step.error(503, 'second down'));
    // all down: the last failure is the answer
    C.set(step.error(500, 'third down too'));
    const all = await chat(gw, chatBody('m-primary'));
    assert.equal(all.status, 500);
    assertOpenAIError(all.json, { message: /third down too/ });
  });

  it('a streamed answer passes through, events and [DONE]', async () => {
    A.set(step.stream(['Hel', 'lo', ' world']));
    const r = await chat(gw, chatBody('plain', 'x', { stream: true }));
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    const data = sseData(r.text);
    assert.equal(data.at(-1), '[DONE]');
    assert.equal(data.slice(0, -1).map((d) => JSON.parse(d).choices[0].delta.content ?? '').join(''), 'Hello world');
    assert.equal(A.requests[0].headers.accept, 'text/event-stream');
  });

  it('a stream is retried while nothing has gone to the client', async () => {
    A.set(script([step.error(500, 'not yet'), step.stream(['ok'])]));
    const r = await chat(gw, chatBody('plain', 'x', { stream: true }));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-genaiops-attempts'], '2');
    assert.equal(sseData(r.text).at(-1), '[DONE]');
  });

  it('a stream broken mid-way: the client gets the started stream, then an error event', async () => {
    A.set(step.streamThenDie(['one ', 'two ', 'three ']));
    const r = await chat(gw, chatBody('plain', 'x', { stream: true }));
    assert.equal(r.status, 200);
    const data = sseData(r.text);
    assert.ok(!data.includes('[DONE]'), 'a broken stream must not look complete');
    const last = JSON.parse(data.at(-1));
    assertOpenAIError(last, { code: 'stream_interrupted' });
    assert.equal(data.slice(0, -1).map((d) => JSON.parse(d).choices[0].delta.content).join(''), 'one two three ');
    assert.equal(A.requests.length, 1, 'a started stream must not be retried');
  });

  it('a stream that ends cleanly but without [DONE] also ends with an error event', async () => {
    A.set(async ({ res, rec }) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunkEvent(rec.json.model, 'partial'));
      res.end(); // a proper end of the HTTP body, but the stream is incomplete
    });
    const r = await chat(gw, chatBody('plain', 'x', { stream: true }));
    assert.equal(r.status, 200);
    const data = sseData(r.text);
    assert.equal(JSON.parse(data[0]).choices[0].delta.content, 'partial');
    assertOpenAIError(JSON.parse(data.at(-1)), { code: 'stream_interrupted', message: /\[DONE\]/ });
  });

  it('timeout_ms covers the whole call: a stream still running at the deadline ends with an error event', async () => {
    A.set(step.slowForever(50));
    const t0 = Date.now();
    const r = await chat(gw, chatBody('slow', 'x', { stream: true }));
    const ms = Date.now() - t0;
    assert.equal(r.status, 200);
    const data = sseData(r.text);
    assert.ok(data.length >= 3, r.text);
    assertOpenAIError(JSON.parse(data.at(-1)), { code: 'stream_interrupted' });
    assert.ok(ms >= 350 && ms < 2000, `stream cut after ${ms} ms, timeout_ms is 400`);
    assert.equal(A.requests.length, 1, 'a started stream must not be retried');
  });

  it('cancellation: a client leaving mid-stream closes the upstream request soon after', async () => {
    A.set(step.slowForever(30));
    const s = await openSocket(gw.port);
    s.write(rawPost('/v1/chat/completions', chatBody('plain', 'x', { stream: true })));
    await s.until((d) => (d.match(/data: /g) || []).length >= 3);
    const rec = A.requests[0];
    assert.equal(rec.closedAt, 0);
    const t0 = Date.now();
    s.destroy();
    const closed = await Promise.race([rec.closed, sleep(3000).then(() => 0)]);
    assert.ok(closed, 'the upstream request was still open 3 s after the client left');
    assert.ok(closed - t0 < 1000, `upstream closed ${closed - t0} ms after the client left`);
    // cancellation during a backoff wait, too: no further attempt is made
    A.set(step.error(500, 'x', { 'retry-after': '1' }));
    const q = await openSocket(gw.port);
    q.write(rawPost('/v1/chat/completions', chatBody('plain')));
    await A.waitFor(1);
    q.destroy();
    await sleep(1500);
    assert.equal(A.requests.length, 1, 'retried for a client that had gone');
    await assertAlive(gw);
  });

  it('backpressure: a client that does not read stalls the upstream; RSS stays bounded', async () => {
    A.set(step.flood(512 << 20));
    const rss0 = rssKiB(gw.proc.pid);
    const s = await openSocket(gw.port);
    s.write(rawPost('/v1/chat/completions', chatBody('plain', 'x', { stream: true })));
    await s.until((d) => d.includes('data: '));
    s.sock.pause(); // stop reading: the kernel buffers fill up, then the gateway's
    const rec = A.requests[0];
    // wait until the upstream's writes have stalled for a while
    const t0 = Date.now();
    while (!(rec.stalledSince && Date.now() - rec.stalledSince > 1000)) {
      assert.ok(Date.now() - t0 < 15000, `upstream never stalled; it wrote ${rec.written} bytes`);
      assert.ok(!rec.finished, 'the whole flood went through without the client reading');
      await sleep(100);
    }
    const stalledAt = rec.written;
    assert.ok(stalledAt < 128 << 20, `upstream wrote ${stalledAt} bytes before stalling`);
    if (!SANITIZED) {
      const grown = rssKiB(gw.proc.pid) - rss0;
      assert.ok(grown < 48 * 1024, `gateway RSS grew by ${grown} KiB for one stalled stream`);
    }
    // reading again resumes the upstream
    s.discard();
    s.sock.resume();
    const t1 = Date.now();
    while (rec.written < stalledAt + (32 << 20)) {
      assert.ok(Date.now() - t1 < 10000, `upstream did not resume: ${rec.written} bytes, stalled at ${stalledAt}`);
      await sleep(50);
    }
    s.destroy();
    const closed = await Promise.race([rec.closed, sleep(3000).then(() => 0)]);
    assert.ok(closed, 'upstream request still open after the client left');
    await assertAlive(gw);
  });

  it('unknown model: 404 model_not_found, nothing sent upstream', async () => {
    A.set(step.ok());
    for (const model of ['no-such-model', 'nosuchprovider/x', 'up/', '/x', 'sim/not-a-mode']) {
      const r = await chat(gw, chatBody(model));
      assert.equal(r.status, 404, model);
      assertOpenAIError(r.json, { type: 'invalid_request_error', code: 'model_not_found' });
      assert.equal(r.json.error.param, 'model');
    }
    assert.equal(A.requests.length, 0);
  });

  it('PROVIDER/MODEL routes to the provider with the model part', async () => {
    B.set(step.ok('via up2'));
    const r = await chat(gw, chatBody('up2/some-model:7b-q4'));
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-genaiops-provider'], 'up2');
    assert.equal(B.requests.length, 1);
    assert.equal(B.requests[0].url, '/v1/chat/completions');
    assert.equal(B.requests[0].json.model, 'some-model:7b-q4');
    // other endpoints map to the provider's paths
    B.set(({ res }) => sendJson(res, 200, { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], model: 'e' }));
    const e = await request(`${gw.base}/embeddings`, { method: 'POST', body: { model: 'up2/embedder', input: 'text' } });
    assert.equal(e.status, 200);
    assert.equal(B.requests[0].url, '/v1/embeddings');
    assert.deepEqual(e.json.data[0].embedding, [0.1, 0.2]);
  });

  it('the client body goes upstream byte for byte when the model is not renamed', async () => {
    A.set(step.ok());
    // odd spacing, key order, escapes and fields the gateway does not know
    const body = '{ "messages":[{"role":"user","content":"caf\\u00e9 \\ud83d\\ude00"}],\n"model" : "plain", "temperature":0.25,'
      + '"logit_bias":{"50256":-100},"x_vendor_extension":{"nested":[1,2,{"deep":null}],"flag":true},"seed":42 }';
    const r = await chat(gw, body, { authorization: 'Bearer client-secret-must-not-leak' });
    assert.equal(r.status, 200);
    const got = A.requests[0];
    assert.equal(got.raw, body);
    assert.equal(got.headers.authorization, 'Bearer sk-upstream-secret');
    assert.equal(got.headers['x-custom-header'], 'custom-value');
    assert.equal(got.headers['content-type'], 'application/json');
  });

  it('upstream_model renames the model (also through a deployment); the rest is untouched', async () => {
    A.set(({ res, rec }) => sendJson(res, 200, chatCompletion(rec.json.model, 'renamed ok')));
    const sent = {
      model: 'renamed', messages: [{ role: 'user', content: 'x' }], temperature: 0.5, top_p: 0.9,
      x_vendor_extension: { a: [1, { b: 'c' }] }, response_format: { type: 'json_object' }, user: 'u-1',
    };
    for (const model of ['renamed', 'prod-chat']) {
      A.set(({ res, rec }) => sendJson(res, 200, chatCompletion(rec.json.model, 'renamed ok')));
      const r = await chat(gw, { ...sent, model });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(A.requests[0].json, { ...sent, model: 'gpt-upstream-name' });
    }
  });

  it('exits 0 on SIGTERM with no sanitizer report', async () => {
    await assertAlive(gw);
    await connectionsSettle(gw); // no client connection leaked by the cases above
    finished = true;
    await finishGateway(gw);
  });
});
