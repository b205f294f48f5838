// firefox-smoke.mjs - a by-hand check of the console in Firefox (not part of
// `make test`: Playwright drives only its own patched Firefox, which is not a
// Debian package). It starts Debian's firefox-esr headless with WebDriver BiDi
// (built into Firefox, no driver needed), opens each page of a running
// server, waits for it to render, and reports console errors and uncaught
// exceptions; a screenshot of each page goes to build-test-logs/firefox/.
//
//   apt-get install firefox-esr
//   node --experimental-websocket tests/browser/firefox-smoke.mjs http://127.0.0.1:8080 [/ui/path ...]
//
// Exit status: 0 every page rendered without errors, 1 otherwise.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../integration/lib.mjs';

const base = process.argv[2] || 'http://127.0.0.1:8080';
const pages = process.argv.length > 3 ? process.argv.slice(3)
  : ['/ui/', '/ui/traces', '/ui/prompts', '/ui/evals', '/ui/guardrails'];
const out = path.join(ROOT, 'build-test-logs', 'firefox');
mkdirSync(out, { recursive: true });
if (typeof WebSocket === 'undefined') {
  console.error('firefox-smoke: run with node --experimental-websocket (Node 20) or Node 22+');
  process.exit(2);
}

const port = 9300 + Math.floor(Math.random() * 500);
const profile = mkdtempSync(path.join(tmpdir(), 'genaiops-ff-'));
const ff = spawn(process.env.FIREFOX || 'firefox-esr',
  ['--headless', '--no-remote', '--profile', profile, `--remote-debugging-port=${port}`, '--window-size=1366,900'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
ff.stderr.on('data', () => {});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let ws;
for (let i = 0; i < 100 && !ws; i++) {
  await sleep(200);
  try {
    const s = new WebSocket(`ws://127.0.0.1:${port}/session`);
    await new Promise((res, rej) => { s.onopen = res; s.onerror = rej; });
    ws = s;
  } catch { /* not listening yet */ }
}
if (!ws) { console.error('firefox-smoke: Firefox did not open its WebDriver BiDi port'); ff.kill(); process.exit(1); }

let id = 0;
const waiting = new Map();
const events = [];
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && waiting.has(msg.id)) {
    const { res, rej } = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.type === 'error') rej(new Error(`${msg.error}: ${msg.message}`)); else res(msg.result);
  } else if (msg.method) events.push(msg);
};
const send = (method, params = {}) => new Promise((res, rej) => {
  id += 1;
  waiting.set(id, { res, rej });
  ws.send(JSON.stringify({ id, method, params }));
});

let failed = 0;
try {
  await send('session.new', { capabilities: {} });
  await send('session.subscribe', { events: ['log.entryAdded'] });
  const tree = await send('browsingContext.getTree', {});
  const context = tree.contexts[0].context;
  const version = (await send('script.evaluate', { expression: 'navigator.userAgent', target: { context }, awaitPromise: false })).result.value;
  console.log(`firefox-smoke: ${version}`);
  for (const p of pages) {
    events.length = 0;
    await send('browsingContext.navigate', { context, url: base + p, wait: 'complete' });
    // rendered: the shell's loading state is gone from main
    let done = false;
    for (let i = 0; i < 50 && !done; i++) {
      await sleep(100);
      const r = await send('script.evaluate', { expression: "!document.querySelector('#view .state.loading')", target: { context }, awaitPromise: false });
      done = r.result.value === true;
    }
    const text = (await send('script.evaluate', { expression: "document.getElementById('view').innerText.slice(0, 80).replace(/\\s+/g, ' ')", target: { context }, awaitPromise: false })).result.value;
    const errors = events.filter((e) => e.method === 'log.entryAdded' && (e.params.level === 'error' || e.params.type === 'javascript'))
      .map((e) => e.params.text);
    const shot = await send('browsingContext.captureScreenshot', { context, origin: 'document' });
    const file = path.join(out, `${p.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '') || 'ui'}.png`);
    writeFileSync(file, Buffer.from(shot.data, 'base64'));
    const ok = done && errors.length === 0;
    if (!ok) failed++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${p}  ${done ? 'rendered' : 'still loading'}: "${text}"${errors.length ? `\n     errors: ${errors.join(' | ')}` : ''}  (${path.relative(ROOT, file)})`);
  }
} catch (e) {
  console.error(`firefox-smoke: ${e.message}`);
  failed++;
} finally {
  ws.close();
  ff.kill();
}
console.log(`${pages.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
