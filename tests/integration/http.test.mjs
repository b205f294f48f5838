// http.test.mjs - the HTTP/1.1 server as a well-behaved client sees it:
// keep-alive, pipelining, chunked request bodies, Expect: 100-continue, HEAD,
// 404/405 in OpenAI's error shape, x-request-id and x-genaiops-overhead-us.
// Every exchange is raw so the test sees exactly what the server wrote.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './lib.mjs';
import {
  openSocket, parseResponses, chatBody, rawPost, request, assertOpenAIError, finishGateway, assertAlive,
} from './upstreams.mjs';

const CONFIG = `
server:
  listen: @LISTEN@
  workers: 2
`;

describe('HTTP/1.1 server', () => {
  let gw;
  let finished = false;
  before(async () => { gw = await startGateway({ config: CONFIG }); });
  after(async () => { if (!finished) await gw.stop(); });

  it('keep-alive: several requests on one socket, one answer each, socket stays open', async () => {
    const s = await openSocket(gw.port);
    const methods = [];
    for (let i = 0; i < 5; i++) {
      const body = chatBody('sim/echo', `hello ${i}`);
      s.write(rawPost('/v1/chat/completions', body, `x-request-id: ka-${i}\r\n`));
      methods.push('POST');
      const raw = await s.until((d) => parseResponses(d, methods).length === i + 1);
      const resps = parseResponses(raw, methods);
      const r = resps[i];
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-request-id'], `ka-${i}`);
      assert.notEqual(r.headers.connection, 'close');
      assert.equal(JSON.parse(r.body).choices[0].message.content, `hello ${i}`);
    }
    assert.equal(s.closed(), false);
    // Connection: close is honoured: the answer says so and the socket closes.
    s.write('GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    assert.ok(await s.waitClose(3000), 'server did not close after Connection: close');
    const last = parseResponses(s.data(), [...methods, 'GET']).at(-1);
    assert.equal(last.status, 200);
    assert.equal(last.headers.connection, 'close');
  });

  it('HTTP/1.0 closes unless keep-alive is asked for', async () => {
    let s = await openSocket(gw.port);
    s.write('GET /healthz HTTP/1.0\r\n\r\n');
    assert.ok(await s.waitClose(3000));
    assert.match(s.data(), /^HTTP\/1\.0 200 /);
    s = await openSocket(gw.port);
    s.write('GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await s.until((d) => parseResponses(d, ['GET']).length === 1);
    assert.equal(parseResponses(s.data(), ['GET'])[0].headers.connection, 'keep-alive');
    assert.equal(s.closed(), false);
    s.destroy();
  });

  it('pipelining: requests in one write get their answers in order', async () => {
    const s = await openSocket(gw.port);
    const a = chatBody('sim/echo', 'first');
    const b = chatBody('sim/echo', 'second');
    s.write(
      rawPost('/v1/chat/completions', a, 'x-request-id: pipe-1\r\n') +
      'GET /healthz HTTP/1.1\r\nHost: t\r\nx-request-id: pipe-2\r\n\r\n' +
      rawPost('/v1/chat/completions', b, 'x-request-id: pipe-3\r\n'),
    );
    const methods = ['POST', 'GET', 'POST'];
    const raw = await s.until((d) => parseResponses(d, methods).length === 3);
    const rs = parseResponses(raw, methods);
    assert.deepEqual(rs.map((r) => r.headers['x-request-id']), ['pipe-1', 'pipe-2', 'pipe-3']);
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200]);
    assert.equal(JSON.parse(rs[0].body).choices[0].message.content, 'first');
    assert.equal(JSON.parse(rs[1].body).status, 'ok');
    assert.equal(JSON.parse(rs[2].body).choices[0].message.content, 'second');
    s.destroy();
  });

  it('pipelining: a burst of 500 requests is answered completely and in order', async () => {
    const s = await openSocket(gw.port);
    const n = 500;
    let burst = '';
    for (let i = 0; i < n; i++) burst += `GET /healthz?i=${i} HTTP/1.1\r\nHost: t\r\nx-request-id: b-${i}\r\n\r\n`;
    s.write(burst);
    const methods = Array(n).fill('GET');
    const raw = await s.until((d) => parseResponses(d, methods).length === n, 10000);
    const ids = parseResponses(raw, methods).map((r) => r.headers['x-request-id']);
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => `b-${i}`));
    s.destroy();
  });

  it('nothing is answered after a request with Connection: close', async () => {
    const s = await openSocket(gw.port);
    s.write('GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.ok(await s.waitClose(3000));
    const rs = parseResponses(s.data(), ['GET', 'GET']);
    assert.equal(rs.length, 1, s.data());
    assert.equal(rs[0].headers.connection, 'close');
  });

  it('HTTP/1.0 streams are close-delimited (no chunked coding)', async () => {
    const body = chatBody('sim/echo', 'old client', { stream: true });
    const s = await openSocket(gw.port);
    s.write(`POST /v1/chat/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.ok(await s.waitClose(3000), 'a close-delimited stream must end with a close');
    const raw = s.data();
    assert.match(raw, /^HTTP\/1\.0 200 /);
    const head = raw.slice(0, raw.indexOf('\r\n\r\n')).toLowerCase();
    assert.ok(!head.includes('transfer-encoding'), head);
    assert.ok(!head.includes('content-length'), head);
    assert.ok(raw.trimEnd().endsWith('data: [DONE]'), raw.slice(-200));
  });

  it('chunked request bodies, split across writes at awkward places', async () => {
    const body = chatBody('sim/echo', 'chunked body arrives in pieces');
    const parts = [body.slice(0, 7), body.slice(7, 30), body.slice(30)];
    let enc = parts.map((p) => `${p.length.toString(16)};ext=1\r\n${p}\r\n`).join('') + '0\r\nx-trailer: yes\r\n\r\n';
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const s = await openSocket(gw.port);
    s.write(head);
    // feed the encoded body a few bytes at a time
    while (enc.length) {
      s.write(enc.slice(0, 5));
      enc = enc.slice(5);
      await new Promise((r) => setImmediate(r));
    }
    const raw = await s.until((d) => parseResponses(d, ['POST']).length === 1);
    const r = parseResponses(raw, ['POST'])[0];
    assert.equal(r.status, 200, raw);
    assert.equal(JSON.parse(r.body).choices[0].message.content, 'chunked body arrives in pieces');
    s.destroy();
  });

  it('an empty or absent body on a /v1 POST is a 400, not a hang', async () => {
    for (const raw of [
      'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n',
      'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n',
    ]) {
      const s = await openSocket(gw.port);
      s.write(raw);
      assert.ok(await s.waitClose(3000), raw);
      const r = parseResponses(s.data(), ['POST'])[0];
      assert.equal(r.status, 400, raw);
      assertOpenAIError(JSON.parse(r.body), { message: /empty/ });
    }
  });

  it('Expect: 100-continue gets 100 before the body is sent, then the answer', async () => {
    const body = chatBody('sim/echo', 'after continue');
    const s = await openSocket(gw.port);
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
    const interim = await s.until((d) => d.includes('\r\n\r\n'), 3000);
    assert.match(interim, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    s.write(body);
    const raw = await s.until((d) => parseResponses(d, ['POST']).filter((x) => x.status >= 200).length === 1);
    const rs = parseResponses(raw, ['POST']);
    assert.equal(rs[0].status, 100);
    assert.equal(rs[1].status, 200);
    assert.equal(JSON.parse(rs[1].body).choices[0].message.content, 'after continue');
    s.destroy();
  });

  it('Expect: 100-continue with a too-large Content-Length gets 413 and no 100', async () => {
    const s = await openSocket(gw.port);
    s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n');
    assert.ok(await s.waitClose(3000));
    assert.match(s.data(), /^HTTP\/1\.1 413 /);
  });

  it('HEAD: the headers of GET (content-length included) and no body', async () => {
    const s = await openSocket(gw.port);
    // a GET pipelined after the HEAD shows that no body bytes were written
    s.write('HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    const raw = await s.until((d) => parseResponses(d, ['HEAD', 'GET']).length === 2);
    const [h, g] = parseResponses(raw, ['HEAD', 'GET']);
    assert.equal(h.status, 200);
    assert.equal(h.body, '');
    assert.equal(h.headers['content-length'], g.headers['content-length']);
    assert.equal(Number(g.headers['content-length']), g.body.length);
    assert.match(raw, /^HTTP\/1\.1 200 [^]*?\r\n\r\nHTTP\/1\.1 200 /);
    const m = await request(`${gw.base}/models`, { method: 'HEAD' });
    assert.equal(m.status, 200);
    assert.equal(m.text, '');
    s.destroy();
  });

  it('unknown URL: 404 in the OpenAI error shape', async () => {
    for (const path of ['/v1/nope', '/nothing/here', '/v1/chat/completions/extra']) {
      const r = await request(`${gw.url}${path}`, { method: 'POST', body: chatBody() });
      assert.equal(r.status, 404, path);
      assert.match(r.headers['content-type'], /application\/json/);
      assertOpenAIError(r.json, { type: 'invalid_request_error', code: 'unknown_url' });
      assert.ok(r.json.error.message.includes(path), r.json.error.message);
    }
    const r = await request(`${gw.base}/models/no-such-model`);
    assert.equal(r.status, 404);
    assertOpenAIError(r.json, { code: 'model_not_found' });
  });

  it('wrong method: 405 with Allow, in the OpenAI error shape', async () => {
    const cases = [
      ['GET', '/v1/chat/completions', 'POST'],
      ['PUT', '/v1/embeddings', 'POST'],
      ['DELETE', '/v1/messages', null],
      ['POST', '/healthz', 'GET, HEAD'],
      ['POST', '/v1/models', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await request(`${gw.url}${path}`, { method });
      assert.equal(r.status, 405, `${method} ${path}`);
      if (allow) assert.equal(r.headers.allow, allow, `${method} ${path}`);
      else assert.ok(r.headers.allow);
      if (path === '/v1/messages') {
        // the Anthropic endpoint answers in Anthropic's shape
        assert.equal(r.json.type, 'error');
        assert.equal(typeof r.json.error.message, 'string');
      } else {
        assertOpenAIError(r.json, { type: 'invalid_request_error', code: 'method_not_allowed' });
      }
    }
  });

  it('x-request-id: generated when absent or unusable, propagated when sent', async () => {
    const a = await request(`${gw.url}/healthz`);
    const b = await request(`${gw.url}/healthz`);
    assert.match(a.headers['x-request-id'], /^req_[0-9a-f]{24}$/);
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
    const c = await request(`${gw.url}/healthz`, { headers: { 'x-request-id': 'my-trace.42' } });
    assert.equal(c.headers['x-request-id'], 'my-trace.42');
    // too long, or with characters that do not belong in a header echo: replaced
    for (const bad of ['x'.repeat(65), 'has space', 'quote"d']) {
      const r = await request(`${gw.url}/healthz`, { headers: { 'x-request-id': bad } });
      assert.match(r.headers['x-request-id'], /^req_[0-9a-f]{24}$/, bad);
    }
    // on /v1 answers and errors too, streamed or not
    const d = await request(`${gw.base}/chat/completions`, { method: 'POST', body: chatBody('sim/echo', 'x', { stream: true }), headers: { 'x-request-id': 'stream-id' } });
    assert.equal(d.headers['x-request-id'], 'stream-id');
    const e = await request(`${gw.base}/chat/completions`, { method: 'POST', body: '{', headers: { 'x-request-id': 'err-id' } });
    assert.equal(e.status, 400);
    assert.equal(e.headers['x-request-id'], 'err-id');
  });

  it('x-genaiops-overhead-us on /v1 answers, errors included, not on probes', async () => {
    const rs = [
      await request(`${gw.base}/chat/completions`, { method: 'POST', body: chatBody() }),
      await request(`${gw.base}/chat/completions`, { method: 'POST', body: chatBody('sim/echo', 'x', { stream: true }) }),
      await request(`${gw.base}/chat/completions`, { method: 'POST', body: chatBody('no-such-model') }),
      await request(`${gw.base}/chat/completions`, { method: 'POST', body: '[1,2' }),
      await request(`${gw.base}/models`),
    ];
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 404, 400, 200]);
    for (const r of rs) {
      assert.match(String(r.headers['x-genaiops-overhead-us']), /^\d+$/);
      assert.ok(Number(r.headers['x-genaiops-overhead-us']) < 5_000_000);
    }
    const h = await request(`${gw.url}/healthz`);
    assert.equal(h.headers['x-genaiops-overhead-us'], undefined);
  });

  it('exits 0 on SIGTERM with no sanitizer report', async () => {
    await assertAlive(gw);
    finished = true;
    await finishGateway(gw);
  });
});
