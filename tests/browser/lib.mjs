// lib.mjs - the console's browser-test harness: Debian's Chromium driven by
// playwright-core (npm), against a real `genaiops serve` started by the
// integration harness and seeded through the server's API.
//
// Every page opened with openPage() records console errors, uncaught
// exceptions and failed requests; assertClean() fails the test on any
// (tests that provoke an error on purpose pass `allow` patterns). shot()
// writes a screenshot to $TEST_LOG_DIR/screenshots (build-test-logs by
// default): the test artifacts.
//
// CHROMIUM_PATH names the browser (default /usr/bin/chromium, Debian's
// package, installed by scripts/install-deps.sh).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, startGateway } from '../integration/lib.mjs';

export { ROOT, startGateway };
export const SHOTS = path.join(process.env.TEST_LOG_DIR || path.join(ROOT, 'build-test-logs'), 'screenshots');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export async function launch() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run scripts/install-deps.sh (Debian package chromium) or set CHROMIUM_PATH`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

// A new page (its own context: fresh session storage) at a laptop's size,
// with an `errors` list of what went wrong in it.
export async function openPage(browser, { width = 1366, height = 820 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme: 'light' });
  const page = await context.newPage();
  page.errors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => page.errors.push(`exception: ${e.message}`));
  page.on('requestfailed', (r) => {
    const f = r.failure();
    if (f && /ERR_ABORTED/.test(f.errorText)) return; // a fetch aborted by leaving a page
    page.errors.push(`request failed: ${r.url()} ${f ? f.errorText : ''}`);
  });
  page.on('response', (r) => { if (r.status() >= 500) page.errors.push(`server error: ${r.status()} ${r.url()}`); });
  return page;
}

// Fails when the page logged an error not matched by one of allow.
export function assertClean(page, allow = []) {
  const left = page.errors.filter((e) => !allow.some((re) => re.test(e)));
  assert.deepEqual(left, [], `the page had errors:\n${left.join('\n')}`);
}

export async function shot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// Waits until the console has rendered: no loading state left in main.
export async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('#view .state.loading'), null, { timeout: 15000 });
}

// POST JSON to the server; returns { status, headers, body }.
export async function post(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: json ?? text };
}

export async function get(url, headers = {}) {
  const r = await fetch(url, { headers });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body: json ?? text };
}

// A chat request through the gateway (the simulator by default).
export function chat(gw, content, extra = {}, headers = {}) {
  return post(`${gw.url}/v1/chat/completions`, { model: 'sim/echo', messages: [{ role: 'user', content }], ...extra }, headers);
}

// Polls GET /api/v1/traces until it holds at least n traces (the writer
// stores them in the background).
export async function waitTraces(gw, n, headers = {}) {
  for (let i = 0; i < 200; i++) {
    const r = await get(`${gw.url}/api/v1/traces?limit=500`, headers);
    if (r.status === 200 && r.body.data.length >= n) return r.body.data;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`fewer than ${n} traces were stored`);
}

// The default console server: simulator, content captured, a guardrail
// that redacts e-mail addresses (so redactions and findings show), on a
// temporary store. extra is appended YAML.
export function consoleConfig(extra = '') {
  return `providers:
  - { name: sim, type: simulator }
telemetry: { capture_content: on }
guardrails:
  policies:
    - { name: pii-redact, stage: input, detectors: [pii], action: redact, mode: enforce }
${extra}`;
}
