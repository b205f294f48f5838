// eval-lib.mjs - helpers shared by the `genaiops eval | avi | dataset`
// integration tests (eval*.test.mjs).
//
// workspace() makes a temp folder with a genaiops config whose store is a
// SQLite file in that folder; ws.cli(args) runs the real binary there with
// GENAIOPS_CACHE_DIR pointing into the folder (so the user's response cache
// and store are never touched) and resolves with its exit code, stdout and
// stderr. The binary runs asynchronously, so a mock upstream served by this
// same node process keeps answering while it runs. Every run's stderr is
// checked for sanitizer reports.
//
// Mock upstream behaviours for eval: echoStep answers with the last user
// message (so `contains` checks can be steered by the prompt), judgeStep
// answers judge calls by the markers the rubric holds (PASSME, FAILME,
// GARBAGE), and slowEcho answers after a delay.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { BIN, SANITIZED, tempDir } from './lib.mjs';
import { assertNoSanitizerReport, chatCompletion, sendJson, sleep } from './upstreams.mjs';

export { SANITIZED };

// Runs the binary with args. opts: cwd, env (merged over a cleaned
// process.env), timeoutMs (the process is killed after it and the promise
// rejects), onSpawn(proc) (called once it started, e.g. to send signals).
// Resolves { code, signal, stdout, stderr, pid }.
export function runBin(args, { cwd, env = {}, timeoutMs = SANITIZED ? 180000 : 60000, onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    for (const k of ['GENAIOPS_CONFIG', 'GENAIOPS_SERVER', 'GENAIOPS_ADMIN_KEY', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY']) delete base[k];
    const proc = spawn(BIN, args, { cwd, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    proc.stdout.on('data', (d) => out.push(d));
    proc.stderr.on('data', (d) => err.push(d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`genaiops ${args.join(' ')} did not finish in ${timeoutMs} ms:\n${Buffer.concat(err).toString()}`));
    }, timeoutMs);
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const r = { code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), pid: proc.pid };
      try { assertNoSanitizerReport(r.stderr); } catch (e) { reject(e); return; }
      resolve(r);
    });
    if (onSpawn) onSpawn(proc);
  });
}

// Workspaces are removed when the test process ends (they hold big result
// files), unless GENAIOPS_KEEP_TMP=1 keeps them for a look.
const made = [];
process.on('exit', () => {
  if (process.env.GENAIOPS_KEEP_TMP === '1') return;
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

// A temp folder with its own store and response cache. extraConfig is
// appended to the genaiops config (YAML).
export function workspace(extraConfig = '') {
  const dir = tempDir('genaiops-eval-');
  made.push(dir);
  const config = path.join(dir, 'genaiops.yaml');
  writeFileSync(config, `store: { url: "sqlite://${dir}/g.db" }\n${extraConfig}`);
  const env = { GENAIOPS_CACHE_DIR: path.join(dir, 'cache') };
  const ws = {
    dir, config, env,
    path: (name) => path.join(dir, name),
    // Writes a file (text, or an object as JSON) into the folder; returns its path.
    file(name, content) {
      const p = path.join(dir, name);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content, null, 1));
      return p;
    },
    read: (name) => readFileSync(path.join(dir, name), 'utf8'),
    json: (name) => JSON.parse(readFileSync(path.join(dir, name), 'utf8')),
    // Runs `genaiops ARGS --config CONFIG` in the folder.
    cli: (args, opts = {}) => runBin([...args, '--config', config], { cwd: dir, ...opts, env: { ...env, ...(opts.env || {}) } }),
    // Runs `genaiops eval -c SUITE` (plain progress lines, no table).
    eval: (suite, args = [], opts = {}) => ws.cli(['eval', '-c', suite, '--no-progress-bar', ...args], opts),
    // Runs an eval with --json and returns the parsed summary (and the run).
    async evalJson(suite, args = [], opts = {}) {
      const r = await ws.eval(suite, ['--json', ...args], opts);
      return { ...r, summary: firstJson(r.stdout) };
    },
  };
  return ws;
}

// The first JSON document of a text (eval --json may print a comparison
// after the summary).
export function firstJson(text) {
  const docs = jsonDocs(text);
  assert.ok(docs.length > 0, `no JSON in:\n${text}`);
  return docs[0];
}

// Every top-level JSON object of a text printed one after the other.
export function jsonDocs(text) {
  const docs = [];
  let depth = 0, start = -1, inStr = false, esc = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inStr) {
      if (esc) esc = false;
      else if (ch === '\\') esc = true;
      else if (ch === '"') inStr = false;
      continue;
    }
    if (ch === '"' && depth > 0) inStr = true;
    else if (ch === '{' || ch === '[') { if (depth++ === 0) start = i; }
    else if ((ch === '}' || ch === ']') && depth > 0 && --depth === 0) docs.push(JSON.parse(text.slice(start, i + 1)));
  }
  return docs;
}

// Asserts an exit code, showing the run's output when it differs.
export function assertExit(r, code, what = '') {
  assert.equal(r.signal, null, `${what} died of ${r.signal}:\n${r.stderr}`);
  assert.equal(r.code, code, `${what} exited ${r.code}, wanted ${code}\nstdout:\n${r.stdout.slice(0, 4000)}\nstderr:\n${r.stderr.slice(0, 4000)}`);
}

// Parses RFC 4180 CSV (quoted fields with "" escapes and newlines).
export function parseCsv(text) {
  const rows = [];
  let row = [], field = '', q = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (q) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') q = false;
      else field += ch;
    } else if (ch === '"') q = true;
    else if (ch === ',') { row.push(field); field = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += ch;
  }
  assert.ok(!q, 'unterminated quoted CSV field');
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

// The text of the last user message of a chat request body.
export function lastUser(body) {
  const msgs = body?.messages || [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    if (msgs[i].role === 'user') {
      const c = msgs[i].content;
      return typeof c === 'string' ? c : (c || []).map((p) => p.text || '').join('');
    }
  }
  return '';
}

// 200 with the last user message as the answer.
export const echoStep = ({ res, rec }) => sendJson(res, 200, chatCompletion(rec.json?.model ?? 'x', `You said: ${lastUser(rec.json)}`));

// Like echoStep, after ms milliseconds (unless the client went away).
export const slowEcho = (ms) => async (ctx) => {
  await sleep(ms);
  if (!ctx.res.destroyed) echoStep(ctx);
};

// True when a request is a judge (model-graded) call rather than a test call.
export function isJudgeCall(rec) {
  return (rec.json?.messages || []).some((m) => m.role === 'system') && rec.json?.response_format?.type === 'json_object';
}

// Answers judge calls by marker words in the request: PASSME -> pass,
// FAILME -> fail, GARBAGE -> not JSON at all; other calls are echoed.
export const judgeStep = (ctx) => {
  const { res, rec } = ctx;
  const text = JSON.stringify(rec.json?.messages || []);
  if (!isJudgeCall(rec)) return echoStep(ctx);
  let answer;
  if (text.includes('GARBAGE')) answer = 'I think it is fine, probably. No JSON from me.';
  else if (text.includes('FAILME')) answer = JSON.stringify({ pass: false, score: 0.1, reason: 'the answer misses the point' });
  else answer = JSON.stringify({ pass: true, score: 0.9, reason: 'the answer does what the rubric asks' });
  return sendJson(res, 200, chatCompletion(rec.json?.model ?? 'judge', answer));
};

// Peak resident memory (VmHWM, KiB) of a live process, or 0 once it is gone.
export function peakKiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}
