// lib.mjs - the integration harness: start the real genaiops binary (or
// `genaiops sim`) on a free loopback port with a config of the test's, wait
// until it answers, and stop it (SIGTERM) at the end. Shared by
// tests/integration and tests/sdk. GENAIOPS_BIN names the binary (default
// build/genaiops).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
export const BIN = process.env.GENAIOPS_BIN || path.join(ROOT, 'build', 'genaiops');
export const SANITIZED = process.env.GENAIOPS_SANITIZED === '1';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export function tempDir(prefix = 'genaiops-test-') { return mkdtempSync(path.join(tmpdir(), prefix)); }

async function waitReady(url, proc, logs, ms = 10000) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}: ${logs.join('')}`);
    try { const r = await fetch(url); if (r.status < 500) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not become ready at ${url}: ${logs.join('')}`);
}

// Starts `genaiops serve`. opts.config: YAML text (the listen address is
// filled in when it contains @LISTEN@; otherwise --listen is passed);
// opts.args: extra arguments; opts.env: extra environment; opts.port: a port to use (default: a free one).
// Returns { url, base (url + '/v1'), port, proc, logs(), stop() }.
export async function startGateway(opts = {}) {
  const port = opts.port || await freePort();
  const dir = tempDir();
  const args = ['serve'];
  if (opts.config !== undefined) {
    const file = path.join(dir, 'genaiops.yaml');
    let text = opts.config.replaceAll('@LISTEN@', `127.0.0.1:${port}`);
    if (!/store:/.test(text)) text += `\nstore: { url: "sqlite://${dir}/genaiops.db" }\n`;
    writeFileSync(file, text);
    args.push('--config', file);
  }
  if (!(opts.config || '').includes('@LISTEN@')) args.push('--listen', `127.0.0.1:${port}`);
  args.push(...(opts.args || []));
  return startProc(args, port, dir, opts, '/healthz');
}

// Starts `genaiops sim` with extra arguments.
export async function startSim(args = [], opts = {}) {
  const port = await freePort();
  return startProc(['sim', '--listen', `127.0.0.1:${port}`, ...args], port, tempDir(), opts, '/healthz');
}

async function startProc(args, port, dir, opts, probe) {
  const logs = [];
  const proc = spawn(BIN, args, { cwd: dir, env: { ...process.env, ...(opts.env || {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => logs.push(d.toString()));
  proc.stderr.on('data', (d) => logs.push(d.toString()));
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url + probe, proc, logs, SANITIZED ? 30000 : 10000);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    url, base: `${url}/v1`, port, proc, dir, exited,
    logs: () => logs.join(''),
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const r = await exited;
      return { ...r, logs: logs.join('') };
    },
  };
}

// A raw TCP exchange: writes each chunk (string or Buffer) with an optional
// delay between, then collects what comes back until the server closes or
// timeoutMs passes. Returns { data (string), closed (bool) }.
export function rawExchange(port, chunks, { delayMs = 0, timeoutMs = 3000, end = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let closed = false;
    const timer = setTimeout(() => { sock.destroy(); resolve({ data: data.toString('latin1'), closed }); }, timeoutMs);
    sock.on('data', (d) => { data = Buffer.concat([data, d]); });
    sock.on('error', () => {});
    sock.on('close', () => { closed = true; clearTimeout(timer); resolve({ data: data.toString('latin1'), closed }); });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break;
        sock.write(c);
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      }
      if (end) sock.end();
    });
  });
}

// The status code of the first response in a raw exchange, or 0.
export function statusOf(raw) { const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw); return m ? Number(m[1]) : 0; }

// Resident memory of a process in KiB (Linux), for bounded-growth checks.
import { readFileSync } from 'node:fs';
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
