// upstreams.mjs - misbehaving OpenAI-compatible upstreams and small raw-HTTP
// helpers for the integration suites (a companion of the lead's lib.mjs).
//
// startUpstream(behave) starts a node http server on a free loopback port.
// Every request it gets is recorded (method, url, headers, raw body, parsed
// JSON, when it arrived and when its connection closed) and handed to
// behave(ctx), which answers - or misbehaves: answers with an error status,
// streams and then destroys the socket, never answers, streams without end
// while counting what the socket accepted. script([...]) turns a list of
// such steps into a behave function that takes one step per request (the
// last step repeats), so "429, then 200" is script([s429, ok]).
//
// The raw helpers speak HTTP/1.1 over a plain socket for the tests that
// must see exactly what goes over the wire (pipelining, 100-continue, HEAD,
// hostile clients): openSocket() gives a socket whose received bytes can be
// awaited, parseResponses() splits a byte string into responses.
//
// finishGateway(gw) stops a gateway with SIGTERM and asserts it exited 0
// with no AddressSanitizer / UBSan / LeakSanitizer report in its log.
import http from 'node:http';
import net from 'node:net';
import assert from 'node:assert/strict';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- mock upstreams ---------------------------------------------------------

// Starts a mock upstream. behave(ctx) gets ctx = { req, res, rec, n } where
// rec is the recorded request and n its 0-based index. Returns
// { port, url (base URL ending in /v1), requests, waitFor(n), set(behave),
// close() }; set() swaps the behaviour and forgets the recorded requests.
export async function startUpstream(behave = step.ok()) {
  const requests = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let json = null;
      try { json = JSON.parse(raw); } catch { /* not JSON */ }
      const rec = {
        method: req.method, url: req.url, headers: req.headers, raw, json,
        at: Date.now(), closedAt: 0, written: 0, stalledSince: 0, finished: false,
      };
      rec.closed = new Promise((resolve) => {
        res.on('close', () => { rec.closedAt = Date.now(); resolve(rec.closedAt); });
      });
      requests.push(rec);
      for (const w of waiters.splice(0)) w();
      Promise.resolve(behave({ req, res, rec, n: requests.length - 1 })).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 30000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    set(fn) { behave = fn; requests.length = 0; },
    // Resolves once at least n requests have arrived (or rejects after ms).
    async waitFor(n, ms = 5000) {
      const t0 = Date.now();
      while (requests.length < n) {
        if (Date.now() - t0 > ms) throw new Error(`upstream got ${requests.length} requests, wanted ${n}`);
        await new Promise((r) => { waiters.push(r); setTimeout(r, 50); });
      }
      return requests[n - 1];
    },
    close() {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

// A chat.completion object as OpenAI returns it.
export function chatCompletion(model, content, extra = {}) {
  return {
    id: 'chatcmpl-mock', object: 'chat.completion', created: 1700000000, model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    ...extra,
  };
}

// One SSE event of a streamed chat completion carrying `text`.
export function chunkEvent(model, text, finish = null) {
  const o = {
    id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 1700000000, model,
    choices: [{ index: 0, delta: finish ? {} : { content: text }, finish_reason: finish }],
  };
  return `data: ${JSON.stringify(o)}\n\n`;
}

export function sendJson(res, status, obj, headers = {}) {
  const body = typeof obj === 'string' ? obj : JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

// Steps for script(): each is a function of ctx.
export const step = {
  // 200 with a chat completion whose content is `content` (default: which request it was).
  ok: (content) => ({ res, rec, n }) => sendJson(res, 200, chatCompletion(rec.json?.model ?? 'x', content ?? `answer ${n}`)),
  // An error status with an OpenAI-shaped body and optional headers.
  error: (status, message, headers = {}) => ({ res }) =>
    sendJson(res, status, { error: { message, type: status === 429 ? 'rate_limit_error' : 'server_error', param: null, code: null } }, headers),
  // Never answers (the connection stays open).
  hang: () => () => {},
  // Closes the connection without a response.
  destroy: () => ({ req }) => req.socket.destroy(),
  // Streams `events` (strings) with a pause between them, then [DONE].
  stream: (events, delayMs = 0) => async ({ res, rec }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const e of events) {
      if (res.destroyed) return;
      res.write(chunkEvent(rec.json?.model ?? 'x', e));
      if (delayMs) await sleep(delayMs);
    }
    if (res.destroyed) return;
    res.write(chunkEvent(rec.json?.model ?? 'x', '', 'stop'));
    res.end('data: [DONE]\n\n');
  },
  // Streams `events` then destroys the socket mid-stream (no terminating chunk).
  streamThenDie: (events, delayMs = 20) => async ({ res, req, rec }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const e of events) {
      res.write(chunkEvent(rec.json?.model ?? 'x', e));
      await sleep(delayMs);
    }
    req.socket.destroy();
  },
  // Streams without end: one event every delayMs ms, until the connection closes.
  slowForever: (delayMs = 50) => async ({ res, rec }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let i = 0;
    while (!res.destroyed && !res.writableEnded) {
      res.write(chunkEvent(rec.json?.model ?? 'x', `tok${i++} `));
      await sleep(delayMs);
    }
  },
  // Streams as fast as the socket takes it, honouring backpressure (waits for
  // 'drain'), up to totalBytes. rec.written counts the bytes the socket took;
  // rec.stalledSince is when the current wait for 'drain' began (0 when none).
  flood: (totalBytes) => async ({ res, rec }) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const ev = chunkEvent(rec.json?.model ?? 'x', 'x'.repeat(900)).repeat(64); // ~60 KiB a write
    const len = Buffer.byteLength(ev);
    while (rec.written < totalBytes && !res.destroyed) {
      const more = res.write(ev);
      rec.written += len;
      if (!more) {
        rec.stalledSince = Date.now();
        const ok = await new Promise((r) => {
          const onDrain = () => { res.off('close', onClose); r(true); };
          const onClose = () => { res.off('drain', onDrain); r(false); };
          res.once('drain', onDrain);
          res.once('close', onClose);
        });
        rec.stalledSince = 0;
        if (!ok) return;
      }
    }
    if (!res.destroyed) res.end('data: [DONE]\n\n');
    rec.finished = true;
  },
};

// A behave function that takes steps[n] for request n (the last one repeats).
export function script(steps) {
  return (ctx) => steps[Math.min(ctx.n, steps.length - 1)](ctx);
}

// ---- gateway helpers --------------------------------------------------------

const SANITIZER_MARKS = ['ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer'];

// Asserts that a log holds no sanitizer report.
export function assertNoSanitizerReport(logs) {
  for (const m of SANITIZER_MARKS) assert.ok(!logs.includes(m), `sanitizer report in the server log:\n${logs}`);
}

// Stops gw with SIGTERM; asserts exit code 0 and a clean log. Returns the logs.
export async function finishGateway(gw) {
  const r = await gw.stop('SIGTERM');
  assertNoSanitizerReport(r.logs);
  assert.equal(r.signal, null, `gateway died of ${r.signal}:\n${r.logs}`);
  assert.equal(r.code, 0, `gateway exited ${r.code}:\n${r.logs}`);
  return r.logs;
}

// A request with a fresh connection each time (no pooled keep-alive sockets
// that would linger across tests). Returns { status, headers, text, json }.
export function request(url, { method = 'GET', headers = {}, body, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data !== undefined) {
      h['content-type'] ??= 'application/json';
      h['content-length'] = Buffer.byteLength(data);
    }
    const req = http.request(url, { method, headers: h, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

// POSTs a chat request to the gateway.
export function chat(gw, body, headers = {}) {
  return request(`${gw.base}/chat/completions`, { method: 'POST', body, headers });
}

// Asserts an OpenAI-shaped error body: { error: { message, type, param, code } }.
export function assertOpenAIError(json, { type, code, message } = {}) {
  assert.ok(json && typeof json.error === 'object', `not an error body: ${JSON.stringify(json)}`);
  const e = json.error;
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.ok('type' in e && 'param' in e && 'code' in e, `error lacks type/param/code: ${JSON.stringify(e)}`);
  if (type) assert.equal(e.type, type);
  if (code !== undefined) assert.equal(e.code, code);
  if (message) assert.match(e.message, message);
}

// ---- raw sockets ------------------------------------------------------------

// Opens a socket to the port. Returns { sock, data() (latin1 text so far),
// closed() (bool), received() (bytes so far), discard(), until(pred, ms) (resolves with data when pred(data) is
// true, rejects on timeout), waitClose(ms) (resolves true when closed within
// ms), write(x), end() }.
export function openSocket(port) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let isClosed = false;
    let keep = true;
    let received = 0;
    const waiters = new Set();
    const poke = () => { for (const w of [...waiters]) w(); };
    sock.on('data', (d) => {
      received += d.length;
      if (keep) buf = Buffer.concat([buf, d]);
      poke();
    });
    sock.on('error', () => {});
    sock.on('close', () => { isClosed = true; poke(); });
    sock.once('connect', () => {
      const api = {
        sock,
        data: () => buf.toString('latin1'),
        closed: () => isClosed,
        received: () => received,
        // Stops keeping received bytes (they are still counted by received()).
        discard: () => { keep = false; buf = Buffer.alloc(0); },
        write: (x) => sock.write(x),
        end: () => sock.end(),
        destroy: () => sock.destroy(),
        until(pred, ms = 5000) {
          return new Promise((res, rej) => {
            const check = () => {
              const d = buf.toString('latin1');
              if (pred(d)) { done(); res(d); } else if (isClosed) { done(); rej(new Error(`closed before condition; got:\n${d}`)); }
            };
            const timer = setTimeout(() => { done(); rej(new Error(`timeout waiting; got:\n${buf.toString('latin1')}`)); }, ms);
            const done = () => { clearTimeout(timer); waiters.delete(check); };
            waiters.add(check);
            check();
          });
        },
        waitClose(ms = 5000) {
          return new Promise((res) => {
            if (isClosed) return res(true);
            const timer = setTimeout(() => { waiters.delete(check); res(false); }, ms);
            const check = () => { if (isClosed) { clearTimeout(timer); waiters.delete(check); res(true); } };
            waiters.add(check);
          });
        },
      };
      resolve(api);
    });
    sock.once('error', reject);
  });
}

// Splits raw response bytes (latin1 text) into complete responses:
// [{ status, headers (lower-case names; repeated ones joined by ', '), body }].
// Bodies are framed by content-length or chunked; a response to HEAD has none
// (pass the methods, in order, to know which). 1xx interim responses are
// returned too (with an empty body).
export function parseResponses(raw, methods = []) {
  const out = [];
  let p = 0;
  let k = 0;
  while (p < raw.length) {
    const end = raw.indexOf('\r\n\r\n', p);
    if (end < 0) break;
    const lines = raw.slice(p, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) throw new Error(`not a status line: ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const name = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${v}` : v;
    }
    p = end + 4;
    let body = '';
    if (status >= 100 && status < 200) {
      out.push({ status, headers, body });
      continue;
    }
    const isHead = methods[k++] === 'HEAD';
    if (!isHead && headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const le = raw.indexOf('\r\n', p);
        if (le < 0) return out;
        const size = parseInt(raw.slice(p, le), 16);
        p = le + 2;
        if (size === 0) { p = raw.indexOf('\r\n', p) + 2; break; }
        body += raw.slice(p, p + size);
        p += size + 2;
      }
    } else if (!isHead && headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (raw.length < p + n) break;
      body = raw.slice(p, p + n);
      p += n;
    } else if (!isHead) {
      body = raw.slice(p);
      p = raw.length;
    }
    out.push({ status, headers, body });
  }
  return out;
}

// A minimal valid chat request body.
export function chatBody(model = 'sim/echo', content = 'hello', extra = {}) {
  return JSON.stringify({ model, messages: [{ role: 'user', content }], ...extra });
}

// The head of a raw POST with a Content-Length body.
export function rawPost(path, body, headers = '') {
  return `POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// Asserts the gateway still answers /healthz with 200 and its process lives.
export async function assertAlive(gw) {
  assert.equal(gw.proc.exitCode, null, `gateway exited:\n${gw.logs()}`);
  assert.equal(gw.proc.signalCode, null, `gateway killed:\n${gw.logs()}`);
  const r = await request(`${gw.url}/healthz`, { timeoutMs: 5000 });
  assert.equal(r.status, 200);
}

// Waits until the gateway's status page counts n open connections (its own
// request included), so that leaked connections show; fails after ms.
export async function connectionsSettle(gw, n = 1, ms = 4000, headers = {}) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < ms) {
    last = (await request(`${gw.url}/api/v1/status`, { headers })).json.connections;
    if (last === n) return;
    await sleep(50);
  }
  assert.fail(`the gateway still counts ${last} open connections, expected ${n}`);
}
