// eval-store.test.mjs - what `genaiops eval` keeps in the store: stored
// runs (eval list / show / compare), the baseline gate (a significant drop
// fails, an equal run and a one-test flip do not), prompt:// prompts from
// the registry, and stored datasets (dataset push / list / show /
// generate, tests: dataset://NAME[:VERSION]).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { workspace, assertExit, firstJson, jsonDocs } from './eval-lib.mjs';
import { startUpstream, sendJson, chatCompletion } from './upstreams.mjs';

// 40 tests on sim:echo, each checking that the answer holds item<i>. The
// prompt picks which var is echoed: w (all pass), half (the odd ones say
// "other": 20 fail), one (only test 7 says "other").
function gateSuite(varName) {
  const t = [];
  for (let i = 0; i < 40; i++)
    t.push(`  - vars: { w: "item${i}", half: "${i % 2 ? 'other' : `item${i}`}", one: "${i === 7 ? 'other' : `item${i}`}" }\n    assert: [{ type: contains, value: "item${i}" }]`);
  return `description: gate ${varName}\nprompts: ["Say {{${varName}}}"]\nproviders: [sim:echo]\ntests:\n${t.join('\n')}\n`;
}

async function runId(ws, suite, args = []) {
  const r = await ws.evalJson(suite, args);
  assert.ok([0, 100].includes(r.code), `eval exited ${r.code}: ${r.stderr}`);
  assert.match(r.summary.run_id, /^ev-/);
  return { ...r, id: r.summary.run_id };
}

describe('eval: stored runs and the baseline gate', () => {
  const ws = workspace();
  ws.file('a.yaml', gateSuite('w'));
  ws.file('b.yaml', gateSuite('half'));
  ws.file('c.yaml', gateSuite('one'));
  let A;

  test('eval list --json shows the runs with their counts', async () => {
    A = (await runId(ws, 'a.yaml')).id;
    const list = await ws.cli(['eval', 'list', '--json']);
    assertExit(list, 0);
    const runs = JSON.parse(list.stdout);
    assert.equal(runs.length, 1);
    assert.equal(runs[0].id, A);
    assert.equal(runs[0].status, 'done');
    assert.equal(runs[0].records, 40);
    assert.equal(runs[0].passed, 40);
    assert.equal(runs[0].failed, 0);
    assert.equal(runs[0].errors, 0);
    assert.equal(runs[0].description, 'gate w');
    const table = await ws.cli(['eval', 'list']);
    assertExit(table, 0);
    assert.ok(table.stdout.includes(A));
  });

  test('eval show RUN --json --results', async () => {
    const r = await ws.cli(['eval', 'show', A, '--json', '--results']);
    assertExit(r, 0);
    const run = JSON.parse(r.stdout);
    assert.equal(run.id, A);
    assert.equal(run.summary.passed, 40);
    assert.equal(run.results.length, 40);
    const t3 = run.results.find((x) => x.test === 3);
    assert.equal(t3.output, 'Say item3');
    assert.equal(t3.verdict, 'pass');
    assert.deepEqual(run.meta.providers.map((p) => p.id), ['sim:echo']);
    assert.equal(run.meta.prompts[0].label, 'Say {{w}}');
    // without --results, no results; a prefix of the id and `latest` work too
    const short = JSON.parse((await ws.cli(['eval', 'show', 'latest', '--json'])).stdout);
    assert.equal(short.id, A);
    assert.equal(short.results, undefined);
    const unknown = await ws.cli(['eval', 'show', 'ev-nope', '--json']);
    assertExit(unknown, 1);
  });

  test('a prompt change that fails half the tests fails the gate and lists them', async () => {
    const r = await ws.eval('b.yaml', ['--baseline', A, '--gate']);
    assertExit(r, 100);
    assert.match(r.stdout, /regressed \(passed before, fail now\): 20/);
    for (const i of [1, 3, 39]) assert.ok(r.stdout.includes(`tests[${i}] prompt 0 provider 0`), `tests[${i}] listed`);
    assert.ok(!r.stdout.includes('tests[2] prompt 0 provider 0'), 'tests[2] did not regress');
    assert.match(r.stdout, /gate: FAILED/);

    // the same with --json: one document, the summary with the comparison in it
    const j = await ws.eval('b.yaml', ['--baseline', A, '--gate', '--json']);
    assertExit(j, 100);
    const docs = jsonDocs(j.stdout);
    assert.equal(docs.length, 1);
    const summary = docs[0], cmp = summary.comparison;
    assert.equal(summary.failed, 20);
    assert.equal(cmp.baseline, A);
    assert.equal(cmp.current, summary.run_id);
    assert.equal(cmp.regressed_count, 20);
    assert.equal(cmp.gate_failed, true);
    assert.ok(cmp.mcnemar.p < 0.001, `McNemar p ${cmp.mcnemar.p}`);
  });

  test('a run equal to the baseline passes the gate', async () => {
    const r = await ws.eval('a.yaml', ['--baseline', A, '--gate']);
    assertExit(r, 0);
    assert.match(r.stdout, /gate: passed/);
  });

  test('one test of 40 flipping is not significant: the gate passes', async () => {
    // without the gate the failed test makes it 100 ...
    assertExit(await ws.eval('c.yaml'), 100);
    // ... with it, even at tolerance 0, 1 of 40 is not a significant drop
    const r = await ws.eval('c.yaml', ['--baseline', A, '--gate', '--tolerance', '0']);
    assertExit(r, 0);
    assert.match(r.stdout, /regressed \(passed before, fail now\): 1\b/);
    assert.ok(r.stdout.includes('tests[7] prompt 0 provider 0'));
    assert.match(r.stdout, /significant at 0.05: no/);
  });

  test('eval compare A B --json, and the gate from compare', async () => {
    const B = (await runId(ws, 'b.yaml')).id;
    const r = await ws.cli(['eval', 'compare', A, B, '--json']);
    assertExit(r, 0);
    const cmp = JSON.parse(r.stdout);
    assert.equal(cmp.baseline, A);
    assert.equal(cmp.current, B);
    assert.equal(cmp.n, 40);
    assert.equal(cmp.pass_rate.base, 1);
    assert.equal(cmp.pass_rate.cur, 0.5);
    assert.equal(cmp.mcnemar.b, 20);
    assert.equal(cmp.mcnemar.c, 0);
    assert.equal(cmp.regressed_count, 20);
    assert.equal(cmp.regressed.length, 20);
    assert.ok(cmp.regressed.includes('tests[1] prompt 0 provider 0'));
    assert.equal(cmp.significant, true);
    assertExit(await ws.cli(['eval', 'compare', A, B, '--gate']), 100);
    assertExit(await ws.cli(['eval', 'compare', B, A, '--gate']), 0, 'an improvement never fails the gate');
    assertExit(await ws.cli(['eval', 'compare', A, 'ev-nope']), 1);
  });

  test('--baseline latest compares with the newest run before this one', async () => {
    const before = (await runId(ws, 'a.yaml')).id;
    const r = await ws.eval('b.yaml', ['--baseline', 'latest', '--gate', '--json']);
    assertExit(r, 100);
    const cmp = jsonDocs(r.stdout)[0].comparison;
    assert.equal(cmp.baseline, before);
  });

  test('--gate without --baseline is a usage error', async () => {
    const r = await ws.eval('a.yaml', ['--gate']);
    assertExit(r, 2);
  });
});

describe('eval: prompt:// prompts from the registry', () => {
  test('a pushed prompt renders by label and the run records its version', async () => {
    const ws = workspace();
    ws.file('prompts/support/greet.md', '---\nconfig:\n  temperature: 0\n---\nGreet {{name}} from {{company}} warmly.\n');
    const push = await ws.cli(['prompt', 'push', 'prompts', '--label', 'production']);
    assertExit(push, 0);
    assert.match(push.stdout, /support\/greet\s+v1/);
    ws.file('prompts/support/greet.md', 'Say goodbye to {{name}}.\n');
    assertExit(await ws.cli(['prompt', 'push', 'prompts', '--label', 'staging']), 0);

    ws.file('suite.yaml', `prompts: ["prompt://support/greet@production", "prompt://support/greet@staging"]
providers: [sim:echo]
tests:
  - vars: { name: Ada, company: Acme }
    assert: [{ type: icontains, value: ada }]
`);
    const r = await ws.eval('suite.yaml', ['-o', 'r.json', '--json']);
    assertExit(r, 0);
    const recs = ws.json('r.json').results;
    assert.equal(recs.find((x) => x.prompt === 0).prompt_text.trim(), 'Greet Ada from Acme warmly.');
    assert.equal(recs.find((x) => x.prompt === 1).prompt_text.trim(), 'Say goodbye to Ada.');

    const show = await ws.cli(['eval', 'show', firstJson(r.stdout).run_id, '--json']);
    assertExit(show, 0);
    const prompts = JSON.parse(show.stdout).meta.prompts;
    assert.deepEqual(prompts.map((p) => [p.ref, p.version]), [['support/greet@production', 1], ['support/greet@staging', 2]]);
    const text = await ws.cli(['eval', 'show', firstJson(r.stdout).run_id]);
    assert.match(text.stdout, /prompt:\/\/support\/greet@production, version 1/);
  });

  test('an unknown prompt or label is an error before any call', async () => {
    const ws = workspace();
    ws.file('suite.yaml', 'prompts: ["prompt://nothing@production"]\nproviders: [sim:echo]\ntests:\n  - vars: { a: b }\n');
    const r = await ws.eval('suite.yaml');
    assertExit(r, 1);
    assert.match(r.stderr, /nothing/);
  });
});

describe('eval: stored datasets', () => {
  const ws = workspace();
  const csv1 = 'word,__expected\nalpha,contains:alpha\nbeta,contains:beta\ngamma,icontains:GAMMA\n';
  const csv2 = `${csv1}delta,contains:delta\n`;

  test('dataset push: version 1, unchanged, version 2; list and show', async () => {
    ws.file('tests.csv', csv1);
    const p1 = await ws.cli(['dataset', 'push', 'words', 'tests.csv']);
    assertExit(p1, 0);
    assert.match(p1.stdout, /pushed words:1 \(3 test cases\)/);
    const p2 = await ws.cli(['dataset', 'push', 'words', 'tests.csv']);
    assertExit(p2, 0);
    assert.match(p2.stdout, /unchanged words:1/);
    ws.file('tests.csv', csv2);
    const p3 = await ws.cli(['dataset', 'push', 'words', 'tests.csv', '-m', 'one more']);
    assertExit(p3, 0);
    assert.match(p3.stdout, /pushed words:2 \(4 test cases\)/);

    const list = JSON.parse((await ws.cli(['dataset', 'list', '--json'])).stdout);
    assert.equal(list.length, 1);
    assert.equal(list[0].name, 'words');
    assert.equal(list[0].latest, 2);
    assert.equal(list[0].versions, 2);
    assert.equal(list[0].rows, 4);

    const show = JSON.parse((await ws.cli(['dataset', 'show', 'words', '--json'])).stdout);
    assert.equal(show.version, 2);
    assert.equal(show.message, 'one more');
    assert.deepEqual(show.versions, [1, 2]);
    assert.equal(show.tests.length, 4);
    assert.deepEqual(show.tests[3].vars, { word: 'delta' });
    assert.deepEqual(show.tests[3].assert, [{ type: 'contains', value: 'delta' }]);
    const v1 = JSON.parse((await ws.cli(['dataset', 'show', 'words:1', '--json'])).stdout);
    assert.equal(v1.version, 1);
    assert.equal(v1.tests.length, 3);
    assert.equal(v1.tests[2].assert[0].type, 'icontains');

    assertExit(await ws.cli(['dataset', 'show', 'words:9', '--json']), 1);
    assertExit(await ws.cli(['dataset', 'show', 'nothing', '--json']), 1);
  });

  test('a bad dataset file is refused with its row number, and nothing is pushed', async () => {
    ws.file('bad.csv', 'word,__expected\nalpha,contains:alpha\nbeta,contains:beta,extra\n');
    const r = await ws.cli(['dataset', 'push', 'broken', 'bad.csv']);
    assertExit(r, 1);
    assert.match(r.stderr, /row 2/);
    const list = JSON.parse((await ws.cli(['dataset', 'list', '--json'])).stdout);
    assert.ok(!list.some((d) => d.name === 'broken'));
  });

  test('a suite with tests: dataset://NAME runs the latest version, :1 the first', async () => {
    ws.file('latest.yaml', 'prompts: ["Say {{word}}"]\nproviders: [sim:echo]\ntests: dataset://words\n');
    const r = await ws.eval('latest.yaml', ['-o', 'latest.json']);
    assertExit(r, 0);
    assert.deepEqual(ws.json('latest.json').results.map((x) => x.output).sort(), ['Say alpha', 'Say beta', 'Say delta', 'Say gamma']);

    ws.file('v1.yaml', 'prompts: ["Say {{word}}"]\nproviders: [sim:echo]\ntests: dataset://words:1\n');
    const r1 = await ws.eval('v1.yaml', ['-o', 'v1.json']);
    assertExit(r1, 0);
    assert.deepEqual(ws.json('v1.json').results.map((x) => x.output).sort(), ['Say alpha', 'Say beta', 'Say gamma']);

    // the checks come from the dataset: a prompt that breaks them fails
    ws.file('wrong.yaml', 'prompts: ["Say nothing"]\nproviders: [sim:echo]\ntests: dataset://words:1\n');
    assertExit(await ws.eval('wrong.yaml'), 100);

    ws.file('missing.yaml', 'prompts: ["Say {{word}}"]\nproviders: [sim:echo]\ntests: dataset://nothing\n');
    const m = await ws.eval('missing.yaml');
    assertExit(m, 1);
    assert.match(m.stderr, /nothing/);
  });

  test('the stored run says which dataset version it used', async () => {
    for (const [suite, want] of [['v1.yaml', 'words:1'], ['latest.yaml', 'words:2']]) {
      const r = await ws.evalJson(suite);
      assertExit(r, 0);
      const run = JSON.parse((await ws.cli(['eval', 'show', r.summary.run_id, '--json'])).stdout);
      assert.deepEqual(run.meta.datasets, [want], suite);
      const text = await ws.cli(['eval', 'show', r.summary.run_id]);
      assert.match(text.stdout, new RegExp(`dataset: ${want}`));
    }
  });

  test('dataset generate writes new cases with the seed variables', async () => {
    ws.file('seeds.csv', 'question,topic\nWhat is 2+2?,math\nName a primary colour,art\nWho wrote Hamlet?,books\n');
    const r = await ws.cli(['dataset', 'generate', '--seeds', 'seeds.csv', '--provider', 'sim:lorem', '-n', '3', '-o', 'out.json']);
    assertExit(r, 0);
    const m = /wrote (\d+) test cases? to out\.json \(dropped: (\d+) duplicates?, (\d+) malformed\)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const cases = ws.json('out.json');
    assert.equal(cases.length, Number(m[1]));
    // the simulator's placeholder answers repeat words, so duplicates may be dropped
    assert.ok(cases.length >= 1 && cases.length <= 3, `${cases.length} cases`);
    for (const c of cases) {
      assert.deepEqual(Object.keys(c.vars).sort(), ['question', 'topic']);
      assert.equal(c.metadata.review, 'pending');
      assert.equal(c.metadata.generated_by, 'sim:lorem');
    }
    // what it wrote can be pushed as it is
    assertExit(await ws.cli(['dataset', 'push', 'generated', 'out.json']), 0);
  });

  test('dataset generate asks for more than -n and keeps -n unique cases', async () => {
    const up = await startUpstream(({ res, rec }) => {
      const t = (w) => ({ description: `about ${w}`, vars: { word: w } });
      const answer = { tests: [t('gamma'), t('gamma'), t('alpha'), t('delta'), t('epsilon')] }; // a dup, a seed
      sendJson(res, 200, chatCompletion(rec.json?.model ?? 'x', JSON.stringify(answer)));
    });
    try {
      ws.file('seeds1.csv', 'word,__expected\nalpha,contains:alpha\nbeta,contains:beta\n');
      const r = await ws.cli(['dataset', 'generate', '--seeds', 'seeds1.csv', '--provider', 'openai:chat:gen', '-n', '3',
        '-o', 'out3.json'], { env: { OPENAI_BASE_URL: up.url, OPENAI_API_KEY: 'sk-test' } });
      assertExit(r, 0);
      assert.deepEqual(ws.json('out3.json').map((c) => c.vars.word), ['gamma', 'delta', 'epsilon']);
      assert.match(r.stdout, /dropped: 2 duplicates/);
      // it asked for 5 (3 and a margin), in a schema the model must follow
      const body = up.requests[0].json;
      assert.equal(body.response_format.json_schema.schema.properties.tests.minItems, 5);
      assert.match(body.messages[1].content, /Write 5 NEW test cases/);
    } finally {
      await up.close();
    }
  });
});
