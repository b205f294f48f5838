// eval-ops.test.mjs - `genaiops eval` and `genaiops avi` as operations:
// Ctrl-C keeps the partial run (the -o file and the stored run, status
// "interrupted"), the Agentic Variability Index on the shipped example and
// on a temperature-0 suite, and flat memory from 2,000 to 20,000 tests.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './lib.mjs';
import { startUpstream, sleep } from './upstreams.mjs';
import { workspace, assertExit, echoStep, slowEcho, peakKiB, SANITIZED } from './eval-lib.mjs';

const providerYaml = (url) => `providers:\n  - id: openai:chat:gpt-test\n    config: { apiBaseUrl: "${url}", apiKey: sk-test }\n`;

// A CSV of n tests (q = "question i", checked with contains).
function testsCsv(n) {
  const rows = ['q,__expected'];
  for (let i = 0; i < n; i++) rows.push(`question ${i},contains:question ${i}`);
  return `${rows.join('\n')}\n`;
}

describe('eval: Ctrl-C keeps the partial run', () => {
  let up;
  before(async () => { up = await startUpstream(slowEcho(300)); });
  after(() => up.close());

  test('SIGINT during a slow run: exit 1, partial -o file, stored run "interrupted"', async () => {
    const ws = workspace();
    up.set(slowEcho(300));
    ws.file('tests.csv', testsCsv(200));
    ws.file('suite.yaml', `description: slow\nprompts: ["Answer {{q}}"]\n${providerYaml(up.url)}tests: file://tests.csv\n`);
    let sent = 0;
    const r = await ws.eval('suite.yaml', ['-j', '4', '-o', 'r.json', '-o', 'r.jsonl'], {
      onSpawn: async (proc) => {
        await up.waitFor(1, SANITIZED ? 30000 : 10000);
        await sleep(1000);
        sent = up.requests.length;
        proc.kill('SIGINT');
      },
    });
    assertExit(r, 1);
    assert.ok(sent >= 4 && sent < 200, `${sent} requests before SIGINT`);
    const j = JSON.parse(ws.read('r.json'));
    assert.ok(j.results.length < 200, `${j.results.length} records`);
    assert.ok(j.results.length >= 4, 'what finished before Ctrl-C is kept');
    assert.equal(j.summary.status, 'interrupted');
    const done = j.results.filter((x) => x.verdict === 'pass');
    assert.ok(done.length >= 4 && done.every((x) => x.output.startsWith('You said: Answer question')));
    const lines = ws.read('r.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.filter((l) => 'verdict' in l).length, j.results.length);

    const list = JSON.parse((await ws.cli(['eval', 'list', '--json'])).stdout);
    assert.equal(list.length, 1);
    assert.equal(list[0].status, 'interrupted');
    assert.equal(list[0].records, j.results.length);
    // no more calls after the interrupt
    const after = up.requests.length;
    await sleep(500);
    assert.equal(up.requests.length, after);
  });

  test('SIGINT during a long simulator run stops it', async () => {
    const ws = workspace();
    ws.file('tests.csv', testsCsv(SANITIZED ? 8000 : 40000));
    ws.file('suite.yaml', `prompts: ["Answer {{q}}"]\nproviders: [sim:echo]\ntests: file://tests.csv\n`);
    let t1 = 0;
    const r = await ws.eval('suite.yaml', ['-o', 'r.jsonl', '--no-store'], {
      onSpawn: async (proc) => {
        // the results file fills only at the end while the bug stands: wait for the run to be under way
        await sleep(SANITIZED ? 1000 : 600);
        t1 = Date.now();
        proc.kill('SIGINT');
      },
    });
    const ended = Date.now();
    assert.equal(r.signal, null, 'SIGINT is handled, not fatal');
    const lines = ws.read('r.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    const tail = lines.find((l) => l.summary);
    assert.equal(tail?.summary.status, 'interrupted', `ran on for ${ended - t1} ms after SIGINT`);
    assert.ok(lines.length < 8000);
    assertExit(r, 1);
  });
});

// The most requests a mock had open at once.
function maxInFlight(requests) {
  const ev = [];
  for (const q of requests) ev.push([q.at, 1], [q.closedAt || Infinity, -1]);
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let n = 0, max = 0;
  for (const [, d] of ev) max = Math.max(max, (n += d));
  return max;
}

describe('eval: concurrency', () => {
  test('-j and evaluateOptions.maxConcurrency bound the calls in flight', async () => {
    const up = await startUpstream(slowEcho(100));
    try {
      const ws = workspace();
      ws.file('tests.csv', testsCsv(12));
      ws.file('suite.yaml', `evaluateOptions: { maxConcurrency: 3 }\nprompts: ["Answer {{q}}"]\n${providerYaml(up.url)}tests: file://tests.csv\n`);
      assertExit(await ws.eval('suite.yaml', ['--no-cache']), 0);
      assert.equal(up.requests.length, 12);
      await Promise.all(up.requests.map((q) => q.closed));
      assert.equal(maxInFlight(up.requests), 3, 'maxConcurrency 3');
      up.set(slowEcho(100));
      assertExit(await ws.eval('suite.yaml', ['--no-cache', '-j', '6']), 0);
      await Promise.all(up.requests.map((q) => q.closed));
      assert.equal(maxInFlight(up.requests), 6, '-j 6 overrides the suite');
    } finally {
      await up.close();
    }
  });
});

describe('avi', () => {
  test('the shipped agent example: exit 0 or 100, a report with index, drivers, remedies', async () => {
    const ws = workspace();
    const r = await ws.cli(['avi', '-c', path.join(ROOT, 'examples/eval/agent-avi.yaml'), '--runs', '3', '-o', 'avi.json', '--no-progress-bar']);
    assert.ok([0, 100].includes(r.code), `avi exited ${r.code}:\n${r.stderr}`);
    const a = ws.json('avi.json');
    assert.ok(a.index >= 0 && a.index <= 100, `index ${a.index}`);
    assert.equal(a.runs, 3);
    assert.equal(a.cases, 10, '5 cases x 2 providers');
    assert.equal(a.target, 15);
    assert.equal(a.met, a.index <= 15);
    assert.equal(r.code, a.met ? 0 : 100);
    assert.ok(Array.isArray(a.drivers) && a.drivers.length > 0);
    for (const d of a.drivers) {
      assert.ok(typeof d.label === 'string' && d.label.length > 0);
      assert.ok(d.index >= 0 && d.index <= 100);
      assert.ok(['outcome', 'dispersion', 'trajectory', 'latency', 'cost'].includes(d.top_component));
    }
    // the drivers are sorted worst first and the sampling provider drives it
    for (let i = 1; i < a.drivers.length; i++) assert.ok(a.drivers[i - 1].index >= a.drivers[i].index);
    assert.equal(a.drivers[0].provider, 'agent t=0.9');
    assert.ok(Array.isArray(a.remedies) && a.remedies.length > 0);
    assert.ok(JSON.stringify(a.remedies).includes('temperature'));
    const sum = Object.values(a.weights).reduce((x, y) => x + y, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9, `weights sum to ${sum}`);
    assert.match(r.stdout, /Agentic Variability Index/);
  });

  test('the same agent at temperature 0 does not vary: index 0 without the latency component', async () => {
    const ws = workspace();
    const src = readFileSync(path.join(ROOT, 'examples/eval/agent-avi.yaml'), 'utf8').replace(/temperature: 0\.9/g, 'temperature: 0');
    assert.ok(!src.includes('temperature: 0.9') && src.includes('temperature: 0\n'));
    ws.file('t0.yaml', src);
    const r = await ws.cli(['avi', '-c', 't0.yaml', '--runs', '3', '-o', 'a.json', '--no-progress-bar']);
    assertExit(r, 0, 'the target of 15 is met');
    const a = ws.json('a.json');
    for (const c of ['outcome', 'dispersion', 'trajectory', 'cost']) assert.equal(a.components[c].mean, 0, c);
    assert.ok(a.index < 7.5, `only latency (weight 0.075) can spread: ${a.index}`);

    // weights without latency: exactly 0
    ws.file('t0w.yaml', src.replace('    runs: 5\n', '    runs: 5\n    weights: { latency: 0 }\n'));
    const w = await ws.cli(['avi', '-c', 't0w.yaml', '--runs', '3', '-o', 'w.json', '--target', '0', '--no-progress-bar']);
    assertExit(w, 0);
    assert.equal(ws.json('w.json').index, 0);
  });

  test('a bad avi block is an error', async () => {
    const ws = workspace();
    ws.file('bad.yaml', 'genaiops:\n  avi:\n    taget: 10\nprompts: ["x {{a}}"]\nproviders: [sim:echo]\ntests:\n  - vars: { a: b }\n');
    const r = await ws.cli(['avi', '-c', 'bad.yaml', '--runs', '2', '--no-progress-bar']);
    assertExit(r, 1);
    assert.match(r.stderr, /taget/);
  });
});

// Runs a suite of n tests and samples the process's peak RSS (VmHWM).
async function peakOf(ws, n, providers, extra = []) {
  ws.file(`t${n}.csv`, testsCsv(n));
  ws.file(`s${n}.yaml`, `prompts: ["Answer {{q}}"]\n${providers}defaultTest:
  assert:
    - type: icontains
      value: answer
    - type: regex
      value: "\\\\d+"
    - type: levenshtein
      value: "Answer question 1"
      threshold: 1000
tests: file://t${n}.csv\n`);
  let peak = 0, timer;
  const r = await ws.eval(`s${n}.yaml`, ['--no-table', '--no-store', '-o', `r${n}.jsonl`, ...extra], {
    onSpawn: (p) => { timer = setInterval(() => { peak = Math.max(peak, peakKiB(p.pid)); }, 10); },
  });
  clearInterval(timer);
  assertExit(r, 0);
  const tail = JSON.parse(readFileSync(ws.path(`r${n}.jsonl`), 'utf8').trim().split('\n').pop());
  assert.equal(tail.summary.passed, n);
  assert.ok(peak > 0, 'peak RSS was sampled');
  return peak;
}

describe('eval: memory stays flat', { skip: SANITIZED ? 'sanitizers change memory use' : false }, () => {
  test('2,000 vs 20,000 tests on a mock upstream: peak RSS within 30%', async () => {
    const up = await startUpstream(echoStep);
    try {
      const ws = workspace();
      const prov = providerYaml(up.url);
      const small = await peakOf(ws, 2000, prov, ['-j', '16', '--no-cache']);
      const big = await peakOf(ws, 20000, prov, ['-j', '16', '--no-cache']);
      assert.ok(big < small * 1.3, `peak RSS ${small} KiB for 2,000 tests, ${big} KiB for 20,000`);
    } finally {
      await up.close();
    }
  });

  test('2,000 vs 20,000 tests answered from the response cache: peak RSS within 30%', async () => {
    const up = await startUpstream(echoStep);
    try {
      const ws = workspace();
      const prov = providerYaml(up.url);
      await peakOf(ws, 2000, prov, ['-j', '16']); // fill the cache
      await peakOf(ws, 20000, prov, ['-j', '16']);
      up.set(echoStep);
      const small = await peakOf(ws, 2000, prov, ['-j', '16']);
      const big = await peakOf(ws, 20000, prov, ['-j', '16']);
      assert.equal(up.requests.length, 0, 'all from the cache');
      assert.ok(big < small * 1.3, `peak RSS ${small} KiB for 2,000 cached tests, ${big} KiB for 20,000`);
    } finally {
      await up.close();
    }
  });

  test('2,000 vs 20,000 tests on sim:echo: peak RSS within 30%', async () => {
    const ws = workspace();
    const small = await peakOf(ws, 2000, 'providers: [sim:echo]\n');
    const big = await peakOf(ws, 20000, 'providers: [sim:echo]\n');
    assert.ok(big < small * 1.3, `peak RSS ${small} KiB for 2,000 tests, ${big} KiB for 20,000`);
  });
});

