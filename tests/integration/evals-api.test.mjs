// evals-api.test.mjs - the Evaluations REST API (GET /api/v1/evals, /{id},
// /compare) against real stored runs: two runs of a suite on sim:echo (the
// simulator makes every verdict deterministic: the prompt picks which var
// is echoed, so changing it between runs turns chosen tests into
// regressions and one into a fix; a `command` assertion that exits 3 makes
// an error), a run with two providers (the leaderboard's columns) and an
// AVI run, all written by the CLI into one store, then a server started on
// that store. Checks every route, the failures-first order, pagination,
// compare rows and their marking, that `eval compare --json` and the API
// agree, the AVI report kept in the stored summary, and the 400/404/405/401
// answers.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT, startGateway } from './lib.mjs';
import { workspace, assertExit } from './eval-lib.mjs';
import { assertNoSanitizerReport } from './upstreams.mjs';

const ADMIN = 'adm-evals-secret';
const auth = { authorization: `Bearer ${ADMIN}` };

// Test i echoes item<i> (pass) or "other" (fail). Run A: test 2 fails.
// Run B: the odd tests 1..9 fail, test 2 passes, and a test 12 exists
// only in B. Test 11 has a command check that exits 3: an error in both.
function suite(run) {
  const t = [];
  const n = run === 'A' ? 12 : 13;
  for (let i = 0; i < n; i++) {
    const failsA = i === 2, failsB = i % 2 === 1 && i < 10;
    const fails = run === 'A' ? failsA : failsB;
    const checks = [`{ type: contains, value: "item${i}" }`];
    if (i === 11) checks.push('{ type: command, value: "exit 3" }');
    t.push(`  - description: case ${i}\n    vars: { v: "${fails ? 'other' : `item${i}`}" }\n    assert: [${checks.join(', ')}]`);
  }
  return `description: evals api ${run}\nprompts: ["Say {{v}}"]\nproviders: [sim:echo]\ntests:\n${t.join('\n')}\n`;
}

const multi = `description: evals api leaderboard
prompts: ["Say {{v}}"]
providers:
  - sim:echo
  - { id: sim:lorem, label: lorem }
tests:
  - vars: { v: item0 }
    assert: [{ type: contains, value: item0 }]
  - vars: { v: item1 }
    assert: [{ type: contains, value: item1 }]
`;

// The API writes reals to 15 significant digits, the CLI to 17: compare
// them at 12.
function rounded(v) {
  if (typeof v === 'number') return Number.isInteger(v) ? v : Number(v.toPrecision(12));
  if (Array.isArray(v)) return v.map(rounded);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rounded(x)]));
  return v;
}

describe('evaluations API', () => {
  const ws = workspace();
  let gw, A, B, M, AVI;

  async function api(p, init = {}) {
    const r = await fetch(`${gw.url}${p}`, { ...init, headers: { ...auth, ...(init.headers || {}) } });
    const text = await r.text();
    let body;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, body, headers: r.headers };
  }

  async function runSuite(file, text, code) {
    ws.file(file, text);
    const r = await ws.evalJson(file);
    assertExit(r, code, file);
    return r.summary.run_id;
  }

  function assertError(r, status, param, code) {
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(typeof r.body.error.message, 'string');
    assert.ok(r.body.error.message.length > 0);
    assert.equal(r.body.error.param, param, JSON.stringify(r.body));
    if (code) assert.equal(r.body.error.code, code);
  }

  before(async () => {
    A = await runSuite('a.yaml', suite('A'), 1);      // exit 1: test 11 errors
    B = await runSuite('b.yaml', suite('B'), 1);
    M = await runSuite('m.yaml', multi, 100);         // lorem fails its checks
    const avi = await ws.cli(['avi', '-c', path.join(ROOT, 'examples/eval/agent-avi.yaml'), '--runs', '2', '--json'], { cwd: ws.dir });
    assert.ok([0, 100].includes(avi.code), `avi exited ${avi.code}: ${avi.stderr}`);
    AVI = JSON.parse(avi.stdout).run_id;
    assert.match(AVI, /^ev-/);
    gw = await startGateway({
      config: `server: { listen: "@LISTEN@", admin_key: ${ADMIN} }\nstore: { url: "sqlite://${ws.dir}/g.db" }\n`,
    });
  });

  after(async () => {
    if (!gw) return;
    const r = await gw.stop();
    assertNoSanitizerReport(r.logs);
  });

  test('GET /api/v1/evals lists the runs newest first with counts and intervals', async () => {
    const r = await api('/api/v1/evals');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.map((x) => x.id), [AVI, M, B, A]);
    const b = r.body.data.find((x) => x.id === B);
    assert.equal(b.status, 'done');
    assert.equal(b.description, 'evals api B');
    assert.equal(b.suite, 'b.yaml');
    assert.deepEqual([b.records, b.passed, b.failed, b.errors], [13, 7, 5, 1]);
    assert.ok(Math.abs(b.pass_rate - 7 / 13) < 1e-9);
    assert.equal(b.interval.length, 2);
    assert.ok(b.interval[0] < b.pass_rate && b.pass_rate < b.interval[1], JSON.stringify(b.interval));
    assert.deepEqual(b.providers, ['sim:echo']);
    assert.deepEqual(r.body.data.find((x) => x.id === M).providers, ['sim:echo', 'lorem']);
    assert.match(b.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const one = await api('/api/v1/evals?limit=1');
    assert.deepEqual(one.body.data.map((x) => x.id), [AVI]);
    const q = await api('/api/v1/evals?q=EVALS+API+b');
    assert.deepEqual(q.body.data.map((x) => x.id), [B]);
    const none = await api('/api/v1/evals?q=nothing-like-this');
    assert.deepEqual(none.body.data, []);
    for (const bad of ['limit=0', 'limit=501', 'limit=ten', 'limit=-1', 'limit=1&limit=2'])
      assertError(await api(`/api/v1/evals?${bad}`), 400, 'limit', 'invalid_query');
    assertError(await api('/api/v1/evals?verdict=fail'), 400, 'verdict', 'invalid_query');
  });

  test('GET /api/v1/evals/{id}: the run, failures first, with counts', async () => {
    const r = await api(`/api/v1/evals/${B}`);
    assert.equal(r.status, 200);
    const run = r.body;
    assert.equal(run.id, B);
    assert.deepEqual(run.counts, { pass: 7, fail: 5, error: 1 });
    assert.equal(run.total, 13);
    assert.equal(run.next_offset, null);
    assert.equal(run.meta.providers[0].id, 'sim:echo');
    assert.equal(run.meta.prompts[0].label, 'Say {{v}}');
    assert.equal(run.summary.passed, 7);
    assert.ok(run.summary.pass_rate.lo < run.summary.pass_rate.hi);
    assert.equal(run.summary.avi, undefined);
    // errors, then failures, then passes, each in test order
    assert.deepEqual(run.results.map((x) => x.test), [11, 1, 3, 5, 7, 9, 0, 2, 4, 6, 8, 10, 12]);
    assert.deepEqual(run.results.map((x) => x.verdict), ['error', ...Array(5).fill('fail'), ...Array(7).fill('pass')]);
    const f = run.results[1];
    assert.equal(f.output, 'Say other');
    assert.match(f.asserts[0].reason, /item1/);
    // a prefix and latest name runs too
    assert.equal((await api(`/api/v1/evals/${B.slice(0, B.length - 2)}?results=false`)).body.id, B);
    assert.equal((await api('/api/v1/evals/latest?results=false')).body.id, AVI);
  });

  test('results are paginated and filtered by verdict', async () => {
    const all = (await api(`/api/v1/evals/${B}`)).body.results.map((x) => x.test);
    const seen = [];
    let offset = 0, pages = 0;
    while (offset !== null) {
      const p = (await api(`/api/v1/evals/${B}?limit=4&offset=${offset}`)).body;
      assert.equal(p.total, 13);
      assert.equal(p.limit, 4);
      assert.equal(p.offset, offset);
      assert.ok(p.results.length <= 4);
      seen.push(...p.results.map((x) => x.test));
      offset = p.next_offset;
      pages++;
    }
    assert.equal(pages, 4);
    assert.deepEqual(seen, all);
    const fails = (await api(`/api/v1/evals/${B}?verdict=fail&limit=2&offset=1`)).body;
    assert.equal(fails.total, 5);
    assert.deepEqual(fails.results.map((x) => x.test), [3, 5]);
    assert.equal(fails.next_offset, 3);
    const errs = (await api(`/api/v1/evals/${B}?verdict=error`)).body;
    assert.deepEqual(errs.results.map((x) => [x.test, x.verdict]), [[11, 'error']]);
    const past = (await api(`/api/v1/evals/${B}?offset=100`)).body;
    assert.deepEqual(past.results, []);
    assert.equal(past.next_offset, null);
    const bare = (await api(`/api/v1/evals/${B}?results=false`)).body;
    assert.equal(bare.results, undefined);
    assert.equal(bare.total, undefined);
    assert.deepEqual(bare.counts, { pass: 7, fail: 5, error: 1 });
    assertError(await api(`/api/v1/evals/${B}?verdict=maybe`), 400, 'verdict', 'invalid_query');
    assertError(await api(`/api/v1/evals/${B}?limit=1001`), 400, 'limit', 'invalid_query');
    assertError(await api(`/api/v1/evals/${B}?offset=x`), 400, 'offset', 'invalid_query');
    assertError(await api(`/api/v1/evals/${B}?results=maybe`), 400, 'results', 'invalid_query');
    assertError(await api(`/api/v1/evals/${B}?q=x`), 400, 'q', 'invalid_query');
  });

  test('a run with several providers carries the leaderboard columns', async () => {
    const m = (await api(`/api/v1/evals/${M}?results=false`)).body;
    const cols = m.summary.columns;
    assert.equal(cols.length, 2);
    assert.deepEqual(cols.map((c) => c.provider), ['sim:echo', 'lorem']);
    for (const c of cols) {
      assert.ok(c.pass_rate && 'value' in c.pass_rate);
      assert.ok(c.latency_ms && 'p50' in c.latency_ms);
      assert.ok(c.cost && 'total' in c.cost);
    }
    assert.equal(cols[0].passed, 2);
    assert.equal(cols[1].passed, 0);
  });

  test('an AVI run keeps its report in the stored summary', async () => {
    const run = (await api(`/api/v1/evals/${AVI}?limit=1`)).body;
    const avi = run.summary.avi;
    assert.ok(avi, 'summary.avi is stored');
    assert.equal(typeof avi.index, 'number');
    assert.equal(avi.target, 15);
    assert.equal(avi.runs, 2);
    assert.ok(Array.isArray(avi.drivers) && avi.drivers.length > 0);
    assert.ok(Array.isArray(avi.remedies));
    assert.ok(avi.components.outcome);
    // the CLI reads the same stored summary
    const shown = await ws.cli(['eval', 'show', AVI, '--json']);
    assertExit(shown, 0);
    assert.deepEqual(JSON.parse(shown.stdout).summary.avi, avi);
  });

  test('GET /api/v1/evals/compare: the rows, regressions first, fixes marked', async () => {
    const r = await api(`/api/v1/evals/compare?base=${A}&current=${B}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const c = r.body;
    assert.equal(c.baseline, A);
    assert.equal(c.current, B);
    assert.equal(c.n, 11);                         // 12 pairs, the errored one left out
    assert.deepEqual(c.mcnemar.b, 5);
    assert.deepEqual(c.mcnemar.c, 1);
    assert.equal(c.regressed_count, 5);
    assert.equal(c.improved_count, 1);
    assert.deepEqual(c.changes, { regressed: 5, fixed: 1, same: 6 });
    assert.deepEqual(c.unpaired, { base: 0, current: 1 });
    assert.equal(c.rows_total, 12);
    assert.equal(c.next_offset, null);
    assert.deepEqual(c.rows.map((x) => [x.test, x.change]), [
      [1, 'regressed'], [3, 'regressed'], [5, 'regressed'], [7, 'regressed'], [9, 'regressed'],
      [2, 'fixed'],
      [0, 'same'], [4, 'same'], [6, 'same'], [8, 'same'], [10, 'same'], [11, 'same'],
    ]);
    const r1 = c.rows[0];
    assert.deepEqual(r1.base, { verdict: 'pass', score: 1 });
    assert.deepEqual(r1.current, { verdict: 'fail', score: 0 });
    assert.equal(r1.description, 'case 1');
    assert.deepEqual([r1.prompt, r1.provider, r1.repeat], [0, 0, 0]);
    assert.deepEqual(c.rows.find((x) => x.test === 11).current.verdict, 'error');
    // the row keys are the keys of the regressed / improved lists
    assert.deepEqual(c.rows.filter((x) => x.change === 'regressed').map((x) => x.key), c.regressed);
    assert.deepEqual(c.rows.filter((x) => x.change === 'fixed').map((x) => x.key), c.improved);
    assert.equal(c.gate_failed, false);            // 5 vs 1 discordant: not significant at 0.05
    assert.equal(c.drop, true);

    // pages and the change filter
    const p1 = (await api(`/api/v1/evals/compare?base=${A}&current=${B}&limit=4`)).body;
    const p2 = (await api(`/api/v1/evals/compare?base=${A}&current=${B}&limit=4&offset=4`)).body;
    assert.deepEqual([...p1.rows, ...p2.rows].map((x) => x.key), c.rows.slice(0, 8).map((x) => x.key));
    assert.equal(p1.next_offset, 4);
    assert.equal(p2.next_offset, 8);
    const fixed = (await api(`/api/v1/evals/compare?base=${A}&current=${B}&change=fixed`)).body;
    assert.deepEqual(fixed.rows.map((x) => x.test), [2]);
    assert.equal(fixed.rows_total, 1);
    // latest as the base: the newest finished run other than current
    const lat = (await api(`/api/v1/evals/compare?base=latest&current=${A.slice(0, 14)}`)).body;
    assert.equal(lat.baseline, AVI);
    assert.equal(lat.current, A);
  });

  test('CLI `eval compare --json` and the API agree', async () => {
    for (const [tol, alpha] of [[0.05, 0.05], [0.3, 0.2]]) {
      const cli = await ws.cli(['eval', 'compare', A, B, '--json', '--tolerance', String(tol), '--alpha', String(alpha)]);
      assertExit(cli, 0);
      const fromCli = JSON.parse(cli.stdout);
      const fromApi = (await api(`/api/v1/evals/compare?base=${A}&current=${B}&tolerance=${tol}&alpha=${alpha}`)).body;
      for (const k of ['rows', 'rows_total', 'next_offset', 'changes', 'unpaired']) delete fromApi[k];
      assert.deepEqual(rounded(fromApi), rounded(fromCli));
    }
  });

  test('compare: missing or bad parameters are 400, unknown runs 404', async () => {
    assertError(await api(`/api/v1/evals/compare?current=${B}`), 400, 'base', 'invalid_query');
    assertError(await api(`/api/v1/evals/compare?base=${A}`), 400, 'current', 'invalid_query');
    assertError(await api('/api/v1/evals/compare'), 400, 'base', 'invalid_query');
    assertError(await api(`/api/v1/evals/compare?base=${A}&current=${B}&tolerance=2`), 400, 'tolerance');
    assertError(await api(`/api/v1/evals/compare?base=${A}&current=${B}&tolerance=nan`), 400, 'tolerance');
    assertError(await api(`/api/v1/evals/compare?base=${A}&current=${B}&alpha=0`), 400, 'alpha');
    assertError(await api(`/api/v1/evals/compare?base=${A}&current=${B}&change=worse`), 400, 'change');
    assertError(await api(`/api/v1/evals/compare?base=${A}&current=${B}&limit=10001`), 400, 'limit');
    assertError(await api(`/api/v1/evals/compare?base=${A}&current=${B}&verdict=fail`), 400, 'verdict');
    assertError(await api(`/api/v1/evals/compare?base=a%20b&current=${B}`), 400, 'base');
    assertError(await api(`/api/v1/evals/compare?base=ev-nope&current=${B}`), 404, 'base', 'run_not_found');
    assertError(await api(`/api/v1/evals/compare?base=${A}&current=ev-nope`), 404, 'current', 'run_not_found');
    assertError(await api('/api/v1/evals/compare?base=ev-&current=latest'), 400, 'base', 'ambiguous_run_id');
  });

  test('runs: unknown ids 404, bad ids 400, wrong methods 405, the admin key is required', async () => {
    assertError(await api('/api/v1/evals/ev-nope'), 404, 'id', 'run_not_found');
    assertError(await api('/api/v1/evals/ev-'), 400, 'id', 'ambiguous_run_id');
    assertError(await api('/api/v1/evals/bad!id'), 400, 'id', 'invalid_run_id');
    assertError(await api(`/api/v1/evals/${'x'.repeat(61)}`), 400, 'id', 'invalid_run_id');
    const nested = await api(`/api/v1/evals/${B}/results`);
    assert.equal(nested.status, 404);
    const post = await api('/api/v1/evals', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(post.status, 405);
    assert.match(post.headers.get('allow'), /GET/);
    assert.equal((await api(`/api/v1/evals/${B}`, { method: 'DELETE' })).status, 405);
    const head = await api(`/api/v1/evals/${B}?results=false`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    const anon = await fetch(`${gw.url}/api/v1/evals`);
    assert.equal(anon.status, 401);
    await anon.arrayBuffer();
  });
});
