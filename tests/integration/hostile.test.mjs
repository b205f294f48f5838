// hostile.test.mjs - clients that break the rules: malformed heads, limits
// exceeded, smuggling attempts, bad bodies, slow senders, early
// disconnects, connection floods and random garbage. Each must get the
// documented status (or a close), and the server must go on serving: after
// every case /healthz answers, the process lives, and open connections do
// not leak (the status page's count returns to one: the asker's own).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { rawExchange, statusOf, startGateway } from './lib.mjs';
import {
  openSocket, parseResponses, chatBody, rawPost, request, finishGateway, assertAlive, sleep, assertOpenAIError,
  connectionsSettle,
} from './upstreams.mjs';

const CONFIG = `
server:
  listen: @LISTEN@
  workers: 2
  max_header_bytes: 2KiB
  max_headers: 20
  max_body_bytes: 4KiB
  header_timeout_ms: 800ms
  body_timeout_ms: 600ms
  idle_timeout_ms: 700ms
providers:
  - { name: sim, type: simulator }
  - { name: slow, type: simulator, mode: lorem, token_ms: 20, max_tokens: 150 }
`;

// The body of the JSON error a rejected request gets.
function errorOf(raw) {
  const r = parseResponses(raw)[0];
  return r ? JSON.parse(r.body) : null;
}

// Writes raw in one go without reading (the socket is paused) until the
// write has completed or failed, then reads whatever the server sent.
// Resolves { data, writeError }.
function uploadThenRead(port, raw) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    let writeError = null;
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('error', () => {});
    s.on('close', () => resolve({ data, writeError }));
    s.setTimeout(5000, () => s.destroy());
    s.on('connect', () => {
      s.pause();
      s.write(raw, (e) => { writeError = e ? e.code : null; s.resume(); });
    });
  });
}

describe('hostile clients', () => {
  let gw;
  let finished = false;
  before(async () => { gw = await startGateway({ config: CONFIG }); });
  after(async () => { if (!finished) await gw.stop(); });

  it('malformed request lines and headers: 400 in the error shape, then close', async () => {
    const cases = [
      ['no version', 'GET /healthz\r\n\r\n'],
      ['extra token on the request line', 'GET /healthz HTTP/1.1 x\r\nHost: t\r\n\r\n'],
      ['bad method character', 'G(T /healthz HTTP/1.1\r\nHost: t\r\n\r\n'],
      ['lowercase protocol', 'GET /healthz http/1.1\r\nHost: t\r\n\r\n'],
      ['control character in the target', 'GET /heal\x01thz HTTP/1.1\r\nHost: t\r\n\r\n'],
      ['header without colon', 'GET /healthz HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n'],
      ['space before colon', 'GET /healthz HTTP/1.1\r\nHost : t\r\n\r\n'],
      ['empty header name', 'GET /healthz HTTP/1.1\r\n: v\r\n\r\n'],
      ['obs-fold', 'GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  continued\r\n\r\n'],
      ['NUL in a header value', 'GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n'],
      ['bare CR', 'GET /healthz HTTP/1.1\rHost: t\r\n\r\n'],
      ['two Host headers', 'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
      ['Content-Length not a number', 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 12a\r\n\r\n'],
      ['negative Content-Length', 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n'],
      ['conflicting Content-Lengths', 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
      ['Content-Length with 19 digits', 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000000000000\r\n\r\n'],
      ['Transfer-Encoding on HTTP/1.0', 'POST /v1/chat/completions HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
      ['chunked twice', 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n'],
      ['chunked not last', 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'],
    ];
    const results = await Promise.all(cases.map(([, raw]) => rawExchange(gw.port, [raw], { timeoutMs: 3000 })));
    cases.forEach(([name, raw], i) => {
      const r = results[i];
      assert.equal(statusOf(r.data), 400, `${name}: ${JSON.stringify(raw)} -> ${r.data}`);
      assert.ok(r.closed, `${name}: connection left open`);
      assertOpenAIError(errorOf(r.data), { type: 'invalid_request_error' });
    });
    await assertAlive(gw);
  });

  it('giant header: 431 (max_header_bytes 2KiB), sent at once or in pieces', async () => {
    const big = `GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\n`;
    let r = await rawExchange(gw.port, [big]);
    assert.equal(statusOf(r.data), 431, r.data);
    assert.ok(r.closed);
    assertOpenAIError(errorOf(r.data));
    // never finished: the head just keeps growing
    r = await rawExchange(gw.port, ['GET /healthz HTTP/1.1\r\n', ...Array(40).fill(`X-Pad: ${'b'.repeat(100)}\r\n`)], { delayMs: 2 });
    assert.equal(statusOf(r.data), 431, r.data);
    // just under the limit is fine
    r = await rawExchange(gw.port, [`GET /healthz HTTP/1.1\r\nHost: t\r\nX-Ok: ${'c'.repeat(1900)}\r\nConnection: close\r\n\r\n`]);
    assert.equal(statusOf(r.data), 200, r.data);
    await assertAlive(gw);
  });

  it('too many headers: 431 (max_headers 20)', async () => {
    const many = (n) => `GET /healthz HTTP/1.1\r\n${Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join('')}Connection: close\r\n\r\n`;
    let r = await rawExchange(gw.port, [many(30)]);
    assert.equal(statusOf(r.data), 431, r.data);
    assert.ok(r.closed);
    r = await rawExchange(gw.port, [many(19)]);
    assert.equal(statusOf(r.data), 200, r.data);
    await assertAlive(gw);
  });

  it('body over max_body_bytes: 413, by Content-Length or chunked', async () => {
    // announced too large: refused from the head, before any body byte
    let r = await rawExchange(gw.port, ['POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 4097\r\n\r\n']);
    assert.equal(statusOf(r.data), 413, r.data);
    assert.ok(r.closed);
    assertOpenAIError(errorOf(r.data));
    // exactly at the limit is read (and judged as JSON)
    const pad = 'p'.repeat(4096 - chatBody('sim/echo', '').length);
    const exact = chatBody('sim/echo', pad);
    assert.equal(exact.length, 4096);
    r = await rawExchange(gw.port, [rawPost('/v1/chat/completions', exact, 'Connection: close\r\n')]);
    assert.equal(statusOf(r.data), 200, r.data.slice(0, 300));
    // chunked: nothing announced, the running total is checked
    const chunk = `400\r\n${'x'.repeat(0x400)}\r\n`;
    r = await rawExchange(gw.port, ['POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n', ...Array(5).fill(chunk)], { delayMs: 20 });
    assert.equal(statusOf(r.data), 413, r.data);
    assert.ok(r.closed);
    // one chunk that announces more than the limit
    r = await rawExchange(gw.port, ['POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n', `2000\r\n${'y'.repeat(5000)}`], { delayMs: 20 });
    assert.equal(statusOf(r.data), 413, r.data);
    await assertAlive(gw);
  });

  it('a client that uploads a whole oversized body before reading still gets its 413', async () => {
    // Like Python's requests or any blocking client: write the whole 4 MiB
    // request, then read the answer. The server must answer 413 and close
    // gracefully (stop reading politely: shut down its side, discard what
    // still arrives for a while), not reset the connection with the body
    // unread - a reset makes the client's write fail with ECONNRESET and
    // throws away the 413 before the client can read it (RFC 9112 9.6).
    const big = 'z'.repeat(4 << 20);
    const byLength = `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: ${big.length}\r\n\r\n${big}`;
    const byChunks = `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${(big.length).toString(16)}\r\n${big}\r\n0\r\n\r\n`;
    // (A client that reads while it sends is hit too, less often: the reset
    // races with its read of the 413.)
    const results = [];
    for (let i = 0; i < 8; i++) {
      const r = await uploadThenRead(gw.port, i % 2 ? byChunks : byLength);
      results.push(`${i % 2 ? 'chunked' : 'content-length'}: status ${statusOf(r.data) || 'none'}, write ${r.writeError ?? 'ok'}`);
    }
    const lost = results.filter((x) => !x.includes('status 413'));
    assert.deepEqual(lost, [], `${lost.length} of ${results.length} uploading clients did not get their 413:\n${results.join('\n')}`);
    await assertAlive(gw);
  });

  it('bad chunked encoding: 400', async () => {
    const head = 'POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n';
    const cases = [
      ['size not hex', 'zz\r\nhello\r\n0\r\n\r\n'],
      ['no CRLF after the data', '5\r\nhelloXX0\r\n\r\n'],
      ['size too big for 64 bits', 'ffffffffffffffffffff\r\n'],
      ['negative size', '-5\r\nhello\r\n0\r\n\r\n'],
      ['missing size', '\r\nhello\r\n0\r\n\r\n'],
      ['chunk extension over 4 KiB', `5;${'e'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`],
      ['trailer section over 8 KiB', `5\r\nhello\r\n0\r\n${'X-T: ' + 't'.repeat(1000) + '\r\n'}`.repeat(1) + `X-U: ${'u'.repeat(9000)}\r\n\r\n`],
    ];
    for (const [name, body] of cases) {
      const r = await rawExchange(gw.port, [head + body]);
      assert.equal(statusOf(r.data), 400, `${name}: ${r.data}`);
      assert.ok(r.closed, name);
      assert.match(errorOf(r.data).error.message, /chunked/, name);
    }
    await assertAlive(gw);
  });

  it('request smuggling: Transfer-Encoding with Content-Length is 400, either order', async () => {
    const smuggled = 'GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n';
    for (const hdrs of [
      `Content-Length: 5\r\nTransfer-Encoding: chunked\r\n`,
      `Transfer-Encoding: chunked\r\nContent-Length: 5\r\n`,
      `Transfer-Encoding: chunked\r\nContent-Length: 0\r\n`,
    ]) {
      const r = await rawExchange(gw.port, [`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\n${hdrs}\r\n0\r\n\r\n${smuggled}`]);
      assert.equal(statusOf(r.data), 400, r.data);
      assert.ok(r.closed);
      // and the smuggled request behind it is never answered
      assert.equal(parseResponses(r.data).length, 1, r.data);
    }
    await assertAlive(gw);
  });

  it('unknown transfer coding: 501', async () => {
    for (const te of ['gzip, chunked', 'identity, chunked', 'br']) {
      const r = await rawExchange(gw.port, [`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`]);
      if (te === 'br') {
        // chunked is then not the final coding: the body length is unknowable
        assert.ok([400, 501].includes(statusOf(r.data)), r.data);
      } else {
        assert.equal(statusOf(r.data), 501, `${te}: ${r.data}`);
      }
      assert.ok(r.closed);
    }
    await assertAlive(gw);
  });

  it('HTTP/2.0 (and other versions): 505', async () => {
    for (const v of ['HTTP/2.0', 'HTTP/1.2', 'HTTP/3.0', 'HTTP/0.9']) {
      const r = await rawExchange(gw.port, [`GET /healthz ${v}\r\nHost: t\r\n\r\n`]);
      assert.equal(statusOf(r.data), 505, `${v}: ${r.data}`);
      assert.ok(r.closed);
    }
    // the HTTP/2 connection preface is not a request either
    const r = await rawExchange(gw.port, ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']);
    assert.ok([400, 505].includes(statusOf(r.data)), r.data);
    await assertAlive(gw);
  });

  it('invalid UTF-8 in the JSON body: 400 naming the position', async () => {
    const good = Buffer.from('{"model":"sim/echo","messages":[{"role":"user","content":"caf');
    for (const bad of [[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80]]) {
      const body = Buffer.concat([good, Buffer.from(bad), Buffer.from('"}]}')]);
      const r = await rawExchange(gw.port, [
        `POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body]);
      assert.equal(statusOf(r.data), 400, r.data);
      const e = errorOf(r.data).error;
      assert.equal(e.code, 'invalid_json');
      assert.match(e.message, /line 1, column \d+ \(byte \d+\)/);
      const byte = Number(/\(byte (\d+)\)/.exec(e.message)[1]);
      assert.ok(Math.abs(byte - good.length) <= 4, `byte ${byte} is not near the bad sequence at ${good.length}: ${e.message}`);
    }
    await assertAlive(gw);
  });

  it('invalid JSON: 400 naming line and column', async () => {
    const cases = [
      // [body, line, first and last column of the offending token]
      ['{\n  "model": "sim/echo",\n  "messages": [\n}', 4, 1, 1],
      ['{"model": "sim/echo",, "messages": []}', 1, 22, 22],
      ['{"model": "sim/echo", "messages": [{"role": "user", "content": "x"}]} trailing', 1, 71, 79],
    ];
    for (const [body, line, lo, hi] of cases) {
      const r = await request(`${gw.base}/chat/completions`, { method: 'POST', body });
      assert.equal(r.status, 400, body);
      assertOpenAIError(r.json, { type: 'invalid_request_error', code: 'invalid_json' });
      const m = /line (\d+), column (\d+)/.exec(r.json.error.message);
      assert.ok(m, r.json.error.message);
      assert.equal(Number(m[1]), line, r.json.error.message);
      const col = Number(m[2]);
      assert.ok(col >= lo && col <= hi, `${r.json.error.message} (expected column ${lo}..${hi})`);
    }
    // valid JSON that is not a request is refused too, naming the field
    for (const [body, param] of [['[]', null], ['{"messages":[]}', 'model'], ['{"model":"sim/echo","messages":"hi"}', 'messages'], ['{"model":"sim/echo","model":"x","messages":[]}', null]]) {
      const r = await request(`${gw.base}/chat/completions`, { method: 'POST', body });
      assert.equal(r.status, 400, body);
      assertOpenAIError(r.json);
      if (param) assert.equal(r.json.error.param, param, body);
    }
    // nesting deep enough to hurt a recursive parser
    const deep = `{"model":"sim/echo","messages":[{"role":"user","content":"x"}],"x":${'['.repeat(100000)}${']'.repeat(100000)}}`;
    const big = await request(`${gw.base}/chat/completions`, { method: 'POST', body: deep });
    assert.ok([400, 413].includes(big.status), String(big.status));
    await assertAlive(gw);
  });

  it('slowloris: a head trickled byte by byte is cut off after header_timeout_ms, others are served', async () => {
    const head = `GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ${'s'.repeat(200)}\r\n\r\n`;
    const loris = [];
    for (let i = 0; i < 20; i++) {
      loris.push((async () => {
        const s = await openSocket(gw.port);
        const t0 = Date.now();
        for (let k = 0; k < head.length && !s.closed(); k++) {
          s.write(head[k]);
          await sleep(25);
        }
        await s.waitClose(3000);
        return { ms: Date.now() - t0, closed: s.closed(), data: s.data() };
      })());
    }
    // meanwhile everyone else is served, promptly
    await sleep(200);
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      await assertAlive(gw);
      assert.ok(Date.now() - t0 < 500, 'healthz was slow while under slowloris');
    }
    for (const r of await Promise.all(loris)) {
      assert.ok(r.closed, 'slow client never cut off');
      assert.ok(r.ms >= 700 && r.ms < 2500, `cut off after ${r.ms} ms, header_timeout_ms is 800`);
      const st = statusOf(r.data);
      assert.ok(st === 408 || (st === 0 && r.data === ''), `slow client got: ${r.data}`);
    }
    await assertAlive(gw);
  });

  it('slow body: a stalled body gets 408 after body_timeout_ms; a steady trickle is fine', async () => {
    const body = chatBody('sim/echo', 'slowly but surely');
    let s = await openSocket(gw.port);
    const t0 = Date.now();
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    assert.ok(await s.waitClose(3000), 'stalled body never cut off');
    const ms = Date.now() - t0;
    assert.ok(ms >= 500 && ms < 2000, `cut off after ${ms} ms, body_timeout_ms is 600`);
    assert.equal(statusOf(s.data()), 408, s.data());
    assertOpenAIError(errorOf(s.data()));
    // pieces every 300 ms: each gap is under the limit, the total is not
    s = await openSocket(gw.port);
    s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    const pieces = body.match(/.{1,16}/g);
    for (const p of pieces) {
      await sleep(300);
      s.write(p);
    }
    const raw = await s.until((d) => parseResponses(d, ['POST']).length === 1, 3000);
    const r = parseResponses(raw, ['POST'])[0];
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).choices[0].message.content, 'slowly but surely');
    s.destroy();
    await assertAlive(gw);
  });

  it('an idle keep-alive connection is closed after idle_timeout_ms', async () => {
    const s = await openSocket(gw.port);
    s.write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    await s.until((d) => parseResponses(d, ['GET']).length === 1);
    const t0 = Date.now();
    assert.ok(await s.waitClose(3000), 'idle connection never closed');
    const ms = Date.now() - t0;
    assert.ok(ms >= 550 && ms < 2000, `closed after ${ms} ms, idle_timeout_ms is 700`);
    // a connection that never sends anything is not kept either
    const q = await openSocket(gw.port);
    assert.ok(await q.waitClose(3000), 'silent connection never closed');
    assert.equal(q.data(), '');
  });

  it('early disconnects: mid-head, mid-body, mid-stream, before the answer', async () => {
    // mid-head
    for (let i = 0; i < 10; i++) {
      const s = await openSocket(gw.port);
      s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Le');
      s.destroy();
    }
    // mid-body
    for (let i = 0; i < 10; i++) {
      const s = await openSocket(gw.port);
      s.write('POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Length: 200\r\n\r\n{"model":"sim/e');
      await sleep(5);
      s.destroy();
    }
    // half-close after a complete request: the answer is not wanted
    for (let i = 0; i < 5; i++) {
      const s = await openSocket(gw.port);
      s.write(rawPost('/v1/chat/completions', chatBody('slow/lorem', 'x', { stream: true })));
      s.end();
      await sleep(5);
      s.destroy();
    }
    // mid-stream
    for (let i = 0; i < 10; i++) {
      const s = await openSocket(gw.port);
      s.write(rawPost('/v1/chat/completions', chatBody('slow/lorem', 'x', { stream: true })));
      await s.until((d) => d.includes('data: '), 3000);
      s.destroy();
    }
    await assertAlive(gw);
    await connectionsSettle(gw);
  });

  it('random garbage and mutated requests: an error status or a close, never a crash', async () => {
    let seed = 0x2545f491;
    const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 4294967296; };
    const valid = Buffer.from(rawPost('/v1/chat/completions', chatBody('sim/echo', 'fuzz')));
    const inputs = [];
    for (let i = 0; i < 40; i++) {
      const b = Buffer.alloc(1 + Math.floor(rnd() * 3000));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(rnd() * 256);
      inputs.push({ kind: 'random', b });
    }
    for (let i = 0; i < 60; i++) {
      const b = Buffer.from(valid);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      inputs.push({ kind: 'mutated', b });
    }
    const results = await Promise.all(inputs.map(({ b }) => rawExchange(gw.port, [b], { timeoutMs: 2500 })));
    results.forEach((r, i) => {
      const st = statusOf(r.data);
      if (inputs[i].kind === 'random') {
        assert.ok(st === 0 || (st >= 400 && st < 600), `random input ${i} got ${r.data.slice(0, 100)}`);
        assert.ok(r.closed, `random input ${i}: connection left open`);
      } else {
        assert.ok(st === 0 || (st >= 200 && st < 600), `mutated input ${i} got ${r.data.slice(0, 100)}`);
      }
    });
    await assertAlive(gw);
    await connectionsSettle(gw);
  });

  it('exits 0 on SIGTERM with no sanitizer report', async () => {
    finished = true;
    await finishGateway(gw);
  });
});

describe('connection limit', () => {
  let gw;
  let finished = false;
  before(async () => {
    gw = await startGateway({
      config: 'server:\n  listen: @LISTEN@\n  workers: 2\n  max_connections: 8\n  idle_timeout_ms: 200ms\n  header_timeout_ms: 5s\n',
    });
    await sleep(400); // the readiness probe's keep-alive socket times out
  });
  after(async () => { if (!finished) await gw.stop(); });

  it('connections beyond max_connections are refused with 503; the server is fine afterwards', async () => {
    const held = [];
    for (let i = 0; i < 8; i++) held.push(await openSocket(gw.port));
    await sleep(100);
    for (const s of held) assert.equal(s.closed(), false, 'a connection within the limit was closed');
    const extra = [];
    for (let i = 0; i < 5; i++) extra.push(await openSocket(gw.port));
    for (const s of extra) {
      assert.ok(await s.waitClose(3000), 'a connection over the limit was kept open');
      assert.equal(statusOf(s.data()), 503, s.data());
      assertOpenAIError(JSON.parse(parseResponses(s.data())[0].body), { message: /too many connections/ });
    }
    // the held ones still work
    held[0].write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    await held[0].until((d) => statusOf(d) === 200);
    for (const s of held) s.destroy();
    await sleep(200);
    // back under the limit: served again, and the count is right
    for (let i = 0; i < 3; i++) await assertAlive(gw);
    await connectionsSettle(gw);
  });

  it('exits 0 on SIGTERM with no sanitizer report', async () => {
    finished = true;
    await finishGateway(gw);
  });
});
