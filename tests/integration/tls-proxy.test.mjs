// tls-proxy.test.mjs - the upstream client's HTTPS verification and proxy
// handling, against real peers on loopback: an HTTPS upstream with a
// self-signed certificate (made here with the openssl command), and a node
// forward proxy that speaks CONNECT (for https) and absolute-form requests
// (for http), counting what goes through it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startGateway, tempDir } from './lib.mjs';
import { finishGateway, startUpstream } from './upstreams.mjs';

const answer = { id: 'chatcmpl-tls', object: 'chat.completion', created: 1, model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'over TLS' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } };

function selfSigned() {
  const dir = tempDir('genaiops-tls-');
  const key = path.join(dir, 'key.pem'), cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: readFileSync(key), cert: readFileSync(cert), certPath: cert };
}

async function httpsUpstream(tls) {
  let hits = 0;
  const server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    req.resume();
    req.on('end', () => { hits++; res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(answer)); });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, hits: () => hits, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

// A forward proxy: CONNECT tunnels and absolute-form plain requests.
async function forwardProxy() {
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const u = new URL(req.url);
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers: req.headers },
      (ur) => { res.writeHead(ur.statusCode, ur.headers); ur.pipe(res); });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  server.on('connect', (req, sock, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = req.url.split(':');
    const up = net.connect(Number(port), host, () => {
      sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(sock);
      sock.pipe(up);
    });
    up.on('error', () => sock.destroy());
    sock.on('error', () => up.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { port: server.address().port, seen, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

const chat = (gw) => fetch(`${gw.base}/chat/completions`, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'up/m', messages: [{ role: 'user', content: 'hi' }] }),
});

const cfg = (url, extra = '') => `providers:\n  - { name: up, type: openai, base_url: "${url}", max_retries: 0${extra} }\n`;

test('HTTPS upstreams are verified: a self-signed certificate is refused', async (t) => {
  const tls = selfSigned();
  const up = await httpsUpstream(tls);
  const gw = await startGateway({ config: cfg(`https://127.0.0.1:${up.port}/v1`) });
  t.after(async () => { await finishGateway(gw); await up.close(); });
  const r = await chat(gw);
  assert.equal(r.status, 502);
  const body = await r.json();
  assert.equal(body.error.code, 'upstream_unavailable');
  assert.match(body.error.message, /certificate|SSL/i);
  assert.equal(up.hits(), 0, 'no request reached the unverified server');
});

test('HTTPS upstreams with a trusted CA (providers[].ca_file) work', async (t) => {
  const tls = selfSigned();
  const up = await httpsUpstream(tls);
  const gw = await startGateway({ config: cfg(`https://127.0.0.1:${up.port}/v1`, `, ca_file: "${tls.certPath}"`) });
  t.after(async () => { await finishGateway(gw); await up.close(); });
  for (let i = 0; i < 3; i++) {
    const r = await chat(gw);
    assert.equal(r.status, 200);
    assert.equal((await r.json()).choices[0].message.content, 'over TLS');
  }
  assert.equal(up.hits(), 3);
});

test('HTTPS_PROXY carries https upstream traffic through CONNECT; NO_PROXY exempts hosts', async (t) => {
  const tls = selfSigned();
  const up = await httpsUpstream(tls);
  const proxy = await forwardProxy();
  const url = `https://127.0.0.1:${up.port}/v1`;
  const env = { HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, https_proxy: `http://127.0.0.1:${proxy.port}`, NO_PROXY: '', no_proxy: '' };
  const gw = await startGateway({ config: cfg(url, `, ca_file: "${tls.certPath}"`), env });
  t.after(async () => { await finishGateway(gw); await up.close(); await proxy.close(); });
  const r = await chat(gw);
  assert.equal(r.status, 200);
  assert.ok(proxy.seen.includes(`CONNECT 127.0.0.1:${up.port}`), JSON.stringify(proxy.seen));

  const gw2 = await startGateway({ config: cfg(url, `, ca_file: "${tls.certPath}"`), env: { ...env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' } });
  t.after(() => finishGateway(gw2));
  const before = proxy.seen.length;
  const r2 = await chat(gw2);
  assert.equal(r2.status, 200);
  assert.equal(proxy.seen.length, before, 'NO_PROXY host went around the proxy');
});

test('HTTP_PROXY carries plain-http upstream traffic (absolute-form requests)', async (t) => {
  const up = await startUpstream();
  const proxy = await forwardProxy();
  const env = { HTTP_PROXY: `http://127.0.0.1:${proxy.port}`, http_proxy: `http://127.0.0.1:${proxy.port}`, NO_PROXY: '', no_proxy: '' };
  const gw = await startGateway({ config: cfg(up.url), env });
  t.after(async () => { await finishGateway(gw); await up.close(); await proxy.close(); });
  const r = await chat(gw);
  assert.equal(r.status, 200);
  assert.ok(proxy.seen.some((s) => s.startsWith(`POST http://127.0.0.1:${up.port}/v1/chat/completions`)), JSON.stringify(proxy.seen));
  assert.equal(up.requests.length, 1);
});
