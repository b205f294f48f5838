// lifecycle.test.mjs - security and the process's life: the admin key on
// the control plane and the data plane, the refusal to listen beyond
// loopback without a key (unless --insecure), graceful shutdown on SIGTERM
// (in-flight streams finish, new connections are refused, exit 0 within the
// drain deadline; what is left at the deadline is cut), `config check`, and
// --help / --version.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, ROOT, SANITIZED, freePort, startGateway, tempDir } from './lib.mjs';
import {
  openSocket, rawPost, chatBody, request, finishGateway, assertAlive, assertOpenAIError, assertNoSanitizerReport, sleep,
} from './upstreams.mjs';

// Runs the binary to completion (killed after timeoutMs), asserting that no
// sanitizer report came out. Resolves { code, signal, stdout, stderr, ms }.
async function run(args, opts = {}) {
  const r = await runRaw(args, opts);
  assertNoSanitizerReport(r.stdout + r.stderr);
  return r;
}

function runRaw(args, { timeoutMs = SANITIZED ? 30000 : 10000, cwd = tempDir() } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(BIN, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

// Waits for a gateway that was sent a signal to exit by itself (a second
// SIGTERM from gw.stop() would end it at once); then collects its logs.
async function exitOf(gw, ms = 10000) {
  const r = await Promise.race([gw.exited, sleep(ms).then(() => null)]);
  assert.ok(r, `still running ${ms} ms after the signal:\n${gw.logs()}`);
  return { ...r, logs: gw.logs() };
}

// Connects once: resolves 'connected' or the error code.
function tryConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve('connected'); });
    s.on('error', (e) => resolve(e.code));
  });
}

describe('admin key', () => {
  let gw;
  let finished = false;
  before(async () => {
    gw = await startGateway({ config: 'server:\n  listen: @LISTEN@\n  admin_key: "k-test-0123456789"\n' });
  });
  after(async () => { if (!finished) await gw.stop(); });

  it('/api/v1/status needs Authorization: Bearer KEY', async () => {
    const url = `${gw.url}/api/v1/status`;
    for (const auth of [undefined, 'Bearer wrong', 'Bearer k-test-012345678', 'Bearer k-test-0123456789x', 'Basic k-test-0123456789', 'k-test-0123456789', 'Bearer ']) {
      const r = await request(url, { headers: auth ? { authorization: auth } : {} });
      assert.equal(r.status, 401, `${auth} -> ${r.status}`);
      assertOpenAIError(r.json, { type: 'invalid_request_error' });
      assert.ok(!r.text.includes('k-test-0123456789'), 'the key is echoed back');
    }
    const ok = await request(url, { headers: { authorization: 'Bearer k-test-0123456789' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.name, 'genaiops');
    assert.ok(!ok.text.includes('k-test-0123456789'), 'the status page shows the key');
  });

  it('/v1/* needs the key; the probes do not', async () => {
    const body = chatBody('sim/echo', 'secret stuff');
    let r = await request(`${gw.base}/chat/completions`, { method: 'POST', body });
    assert.equal(r.status, 401);
    assertOpenAIError(r.json, { code: 'invalid_api_key' });
    r = await request(`${gw.base}/chat/completions`, { method: 'POST', body, headers: { authorization: 'Bearer nope' } });
    assert.equal(r.status, 401);
    r = await request(`${gw.base}/models`);
    assert.equal(r.status, 401);
    r = await request(`${gw.base}/chat/completions`, { method: 'POST', body, headers: { authorization: 'Bearer k-test-0123456789' } });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'secret stuff');
    r = await request(`${gw.base}/models`, { headers: { authorization: 'Bearer k-test-0123456789' } });
    assert.equal(r.status, 200);
    // Anthropic clients send x-api-key
    const msg = { model: 'sim/echo', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
    r = await request(`${gw.base}/messages`, { method: 'POST', body: msg });
    assert.equal(r.status, 401);
    assert.equal(r.json.type, 'error');
    r = await request(`${gw.base}/messages`, { method: 'POST', body: msg, headers: { 'x-api-key': 'k-test-0123456789', 'anthropic-version': '2023-06-01' } });
    assert.equal(r.status, 200);
    for (const probe of ['/healthz', '/readyz']) assert.equal((await request(`${gw.url}${probe}`)).status, 200, probe);
  });

  it('exits 0 on SIGTERM with no sanitizer report', async () => {
    finished = true;
    await finishGateway(gw);
  });
});

describe('listen address safety', () => {
  it('refuses a non-loopback listen without admin key or --insecure', async () => {
    const port = await freePort();
    for (const listen of [`0.0.0.0:${port}`, `:${port}`, `[::]:${port}`]) {
      const r = await run(['serve', '--listen', listen], { timeoutMs: SANITIZED ? 20000 : 5000 });
      assert.equal(r.signal, null, `serve --listen ${listen} kept running`);
      assert.notEqual(r.code, 0, `serve --listen ${listen} exited 0`);
      assert.match(r.stderr, /refusing to listen on .*not a loopback address.*admin key/s, r.stderr);
      assert.match(r.stderr, /--insecure/);
      assertNoSanitizerReport(r.stderr);
    }
    assert.equal(await tryConnect(port), 'ECONNREFUSED');
  });

  it('accepts it with --insecure, or with an admin key', async () => {
    for (const mode of ['insecure', 'key']) {
      const port = await freePort();
      const dir = tempDir();
      const args = ['serve', '--listen', `0.0.0.0:${port}`];
      if (mode === 'insecure') args.push('--insecure');
      else {
        writeFileSync(path.join(dir, 'g.yaml'), `server:\n  admin_key: some-key\nstore: { url: "sqlite://${dir}/g.db" }\n`);
        args.push('--config', path.join(dir, 'g.yaml'));
      }
      const p = spawn(BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let logs = '';
      p.stdout.on('data', (d) => { logs += d; });
      p.stderr.on('data', (d) => { logs += d; });
      const exited = new Promise((r) => p.on('exit', (code, signal) => r({ code, signal })));
      let status = 0;
      for (let i = 0; i < (SANITIZED ? 300 : 100) && !status; i++) {
        await sleep(100);
        status = await request(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 1000 }).then((r) => r.status, () => 0);
        if (p.exitCode !== null) break;
      }
      assert.equal(status, 200, `${mode}: not serving: ${logs}`);
      p.kill('SIGTERM');
      const { code, signal } = await exited;
      assert.equal(signal, null);
      assert.equal(code, 0, logs);
      assertNoSanitizerReport(logs);
    }
  });
});

describe('a port already in use', () => {
  it('refuses to share it with another server (SO_REUSEPORT would split the traffic)', async () => {
    const first = await startGateway();
    try {
      const r = await run(['serve', '--listen', `127.0.0.1:${first.port}`], { timeoutMs: SANITIZED ? 20000 : 5000 });
      assert.equal(r.signal, null, 'the second server kept running');
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /address is in use \(another server listens on it\)/, r.stderr);
      assertNoSanitizerReport(r.stderr);
      // the first one still has every connection
      for (let i = 0; i < 20; i++) assert.equal((await request(`${first.url}/healthz`)).status, 200);
    } finally {
      await first.stop();
    }
  });

  it('a restart on the same port right after a stop works (connections in TIME_WAIT do not count)', async () => {
    const first = await startGateway();
    for (let i = 0; i < 5; i++) await request(`${first.url}/healthz`);
    await first.stop();
    const again = await startGateway({ port: first.port });
    assert.equal((await request(`${again.url}/healthz`)).status, 200);
    await again.stop();
  });
});

describe('graceful shutdown', () => {
  const CONFIG = `
server:
  listen: @LISTEN@
  workers: 2
  shutdown_timeout_ms: 5s
providers:
  - { name: slow, type: simulator, mode: lorem, token_ms: 25, max_tokens: 40 }
`;

  it('SIGTERM during a stream: the stream completes, new connections are refused, exit 0', async () => {
    const gw = await startGateway({ config: CONFIG });
    const streams = [];
    for (let i = 0; i < 3; i++) {
      const s = await openSocket(gw.port);
      s.write(rawPost('/v1/chat/completions', chatBody('slow/lorem', 'x', { stream: true })));
      streams.push(s);
    }
    for (const s of streams) await s.until((d) => d.includes('data: '));
    // and an idle keep-alive connection, which should be closed at once
    const idle = await openSocket(gw.port);
    idle.write('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n');
    await idle.until((d) => d.includes('"ok"'));
    const t0 = Date.now();
    gw.proc.kill('SIGTERM');
    assert.ok(await idle.waitClose(1000), 'an idle connection was kept open while draining');
    await sleep(150);
    assert.equal(await tryConnect(gw.port), 'ECONNREFUSED', 'a new connection was accepted while draining');
    for (const s of streams) {
      assert.ok(await s.waitClose(5000), 'stream not finished');
      const d = s.data();
      assert.ok(d.includes('data: [DONE]'), `stream cut short:\n${d.slice(-300)}`);
      assert.ok(d.endsWith('0\r\n\r\n'), 'stream not terminated');
    }
    const { code, signal, logs } = await exitOf(gw);
    const ms = Date.now() - t0;
    assertNoSanitizerReport(logs);
    assert.equal(signal, null);
    assert.equal(code, 0, logs);
    assert.ok(ms < 5000, `took ${ms} ms to exit, the drain deadline is 5 s`);
  });

  it('a request arriving on a kept-alive connection while draining is answered with connection: close', async () => {
    const gw = await startGateway({ config: CONFIG });
    const s = await openSocket(gw.port);
    s.write(rawPost('/v1/chat/completions', chatBody('slow/lorem', 'x', { stream: true })));
    await s.until((d) => d.includes('data: '));
    const half = await openSocket(gw.port);
    half.write('GET /healthz HTTP/1.1\r\nHost: t\r\n'); // head not finished yet
    await sleep(50);
    gw.proc.kill('SIGTERM');
    await sleep(100);
    half.write('\r\n');
    assert.ok(await half.waitClose(3000));
    assert.match(half.data(), /^HTTP\/1\.1 200 [^]*connection: close\r\n/i);
    assert.ok(await s.waitClose(5000));
    assert.ok(s.data().includes('data: [DONE]'));
    const { code, logs } = await exitOf(gw);
    assertNoSanitizerReport(logs);
    assert.equal(code, 0, logs);
  });

  it('at the drain deadline what is left is cut and the process still exits 0', async () => {
    const gw = await startGateway({
      config: `
server:
  listen: @LISTEN@
  shutdown_timeout_ms: 500ms
providers:
  - { name: slow, type: simulator, mode: lorem, token_ms: 50, max_tokens: 200 }
`,
    });
    const s = await openSocket(gw.port);
    s.write(rawPost('/v1/chat/completions', chatBody('slow/lorem', 'x', { stream: true })));
    await s.until((d) => d.includes('data: '));
    const t0 = Date.now();
    gw.proc.kill('SIGTERM');
    const { code, signal, logs } = await exitOf(gw);
    const ms = Date.now() - t0;
    assertNoSanitizerReport(logs);
    assert.equal(signal, null);
    assert.equal(code, 0, logs);
    assert.ok(ms >= 400 && ms < 3000, `exited after ${ms} ms, the drain deadline is 500 ms`);
    assert.ok(await s.waitClose(1000));
    assert.ok(!s.data().includes('[DONE]'), 'a 10 s stream finished within a 500 ms deadline?');
  });

  it('a second SIGTERM while draining ends the process at once', async () => {
    const gw = await startGateway({ config: CONFIG });
    const s = await openSocket(gw.port);
    s.write(rawPost('/v1/chat/completions', chatBody('slow/lorem', 'x', { stream: true })));
    await s.until((d) => d.includes('data: '));
    gw.proc.kill('SIGTERM');
    await sleep(100);
    assert.equal(gw.proc.exitCode, null, 'exited before the stream finished');
    gw.proc.kill('SIGTERM');
    const { signal, logs } = await exitOf(gw, 2000);
    assertNoSanitizerReport(logs);
    assert.equal(signal, 'SIGTERM');
    assert.ok(!s.data().includes('[DONE]'));
  });

  it('SIGINT drains too', async () => {
    const gw = await startGateway({ config: CONFIG });
    await assertAlive(gw);
    const { code, signal, logs } = await gw.stop('SIGINT');
    assertNoSanitizerReport(logs);
    assert.equal(signal, null);
    assert.equal(code, 0, logs);
  });
});

describe('command line', () => {
  it('config check: a bad file gives FILE:LINE:COL, key paths and exit 1', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, [
      'server:',
      '  listn: 127.0.0.1:8080',
      '  workers: lots',
      '  max_body_bytes: 5XB',
      'providers:',
      '  - { name: a, type: nope }',
      '  - name: b',
      '    type: openai',
      '    base_url: ftp://x',
      'models:',
      '  - { name: m, provider: missing }',
      '',
    ].join('\n'));
    const r = await run(['config', 'check', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const out = r.stdout + r.stderr;
    const expect = [
      [2, 'server.listn', /did you mean 'listen'/],
      [3, 'server.workers', /lots/],
      [4, 'server.max_body_bytes', /5XB/],
      [6, 'providers[0].type', /nope/],
      [9, 'providers[1].base_url', /ftp:\/\/x/],
      [11, 'models[0].provider', /missing/],
    ];
    for (const [line, key, msg] of expect) {
      const re = new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:(\\d+): error: ${key.replace(/[.[\]]/g, '\\$&')}: (.*)$`, 'm');
      const m = re.exec(out);
      assert.ok(m, `no "${file}:${line}:COL: error: ${key}: ..." line in:\n${out}`);
      assert.ok(Number(m[1]) >= 1);
      assert.match(m[2], msg);
    }
    // serve refuses the same file, with the same diagnostics, and starts nothing
    const s = await run(['serve', '--config', file]);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /server\.workers/);
    assert.match(s.stderr, /nothing was started/);
  });

  it('config check: broken YAML and a missing file exit 1; a good file exits 0', async () => {
    const dir = tempDir();
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'server:\n  listen: [\n');
    let r = await run(['config', 'check', broken]);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, new RegExp(`broken\\.yaml:\\d+:\\d+: error: `));
    r = await run(['config', 'check', path.join(dir, 'missing.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, /missing\.yaml/);
    r = await run(['config', 'check', path.join(ROOT, 'examples', 'genaiops.yaml')]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /genaiops\.yaml: ok \(\d+ providers, \d+ models, \d+ deployments\)/);
    const good = path.join(dir, 'good.yaml');
    writeFileSync(good, 'server:\n  listen: 127.0.0.1:9999\n  max_body_bytes: 1MiB\n');
    r = await run(['config', 'check', good]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    r = await run(['config', 'check', '--json', broken]);
    assert.equal(r.code, 1);
    const j = JSON.parse(r.stdout);
    assert.equal(j.valid, false);
    assert.ok(j.diagnostics.length >= 1 && j.diagnostics[0].line >= 1);
  });

  it('--help and --version', async () => {
    let r = await run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^genaiops \d+\.\d+\.\d+/);
    const v = r.stdout;
    r = await run(['version']);
    assert.equal(r.stdout, v);
    r = await run(['--help']);
    assert.equal(r.code, 0);
    for (const cmd of ['serve', 'sim', 'config', 'version']) assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'));
    for (const args of [['serve', '--help'], ['help', 'serve'], ['config', '--help'], ['config', 'check', '--help']]) {
      r = await run(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^usage: genaiops /, args.join(' '));
    }
    // mistakes: usage on stderr, exit 2, nothing started
    for (const args of [[], ['bogus'], ['serve', '--bogus'], ['config', 'frobnicate']]) {
      r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /usage: genaiops/);
    }
    r = await run(['serve', '--workers', 'many']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--workers/);
  });
});
