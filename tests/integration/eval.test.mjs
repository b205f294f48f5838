// eval.test.mjs - `genaiops eval` end to end with the real binary: a
// deterministic suite on the simulator (exit codes, every -o format written
// and parseable, the summary counts), and suites that must be refused before
// anything runs (YAML syntax, unknown assertion type, a regex that does not
// compile, a bad CSV row), with a mock upstream proving no call was made.
// The provider, graded, stored-run, dataset and operational cases are in
// eval-*.test.mjs; the helpers in eval-lib.mjs.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startUpstream } from './upstreams.mjs';
import { workspace, assertExit, parseCsv, echoStep, SANITIZED } from './eval-lib.mjs';

// Ten tests on sim:echo (the answer is the rendered prompt). failing: how
// many of them carry a check that cannot pass.
function echoSuite(failing = 0) {
  const tests = [];
  for (let i = 0; i < 10; i++) {
    const asserts = [
      `      - type: contains\n        value: "word${i}"`,
      `      - type: icontains\n        value: "SAY"`,
      `      - type: regex\n        value: "^Say word\\\\d+ please$"`,
      `      - type: levenshtein\n        value: "Say word${i} pleas"\n        threshold: 2`,
    ];
    if (i < failing) asserts.push(`      - type: equals\n        value: "something else ${i}"`);
    tests.push(`  - description: "case ${i}"\n    vars: { w: "word${i}" }\n    assert:\n${asserts.join('\n')}`);
  }
  return `description: echo suite
prompts: ["Say {{w}} please"]
providers: [sim:echo]
defaultTest:
  assert:
    - type: not-contains
      value: "<script"
    - type: word-count
      value: 3
tests:
${tests.join('\n')}
`;
}

describe('eval: a deterministic suite on sim:echo', () => {
  test('all pass: exit 0, and the --json summary counts them', async () => {
    const ws = workspace();
    ws.file('suite.yaml', echoSuite(0));
    const r = await ws.evalJson('suite.yaml');
    assertExit(r, 0);
    const s = r.summary;
    assert.equal(s.tests, 10);
    assert.equal(s.records, 10);
    assert.equal(s.passed, 10);
    assert.equal(s.failed, 0);
    assert.equal(s.errors, 0);
    assert.equal(s.pass_rate.value, 1);
    assert.ok(s.pass_rate.lo > 0.6 && s.pass_rate.lo < 1, `Wilson lower bound ${s.pass_rate.lo}`);
    assert.equal(s.status, 'done');
    for (const m of ['contains', 'icontains', 'regex', 'levenshtein', 'not-contains', 'word-count'])
      assert.equal(s.metrics[m]?.mean, 1, `metric ${m}: ${JSON.stringify(s.metrics[m])}`);
  });

  test('one failing test: exit 100 and every -o format is written and parseable', async () => {
    const ws = workspace();
    ws.file('suite.yaml', echoSuite(1));
    const outs = ['r.json', 'r.jsonl', 'r.csv', 'r.xml', 'r.html', 'r.md'];
    const r = await ws.eval('suite.yaml', outs.flatMap((o) => ['-o', o]));
    assertExit(r, 100);
    assert.match(r.stdout, /10 passed|9 passed/);
    for (const o of outs) assert.ok(existsSync(ws.path(o)), `${o} not written`);

    const j = ws.json('r.json');
    assert.equal(j.results.length, 10);
    assert.equal(j.summary.passed, 9);
    assert.equal(j.summary.failed, 1);
    assert.equal(j.summary.errors, 0);
    const bad = j.results.filter((x) => x.verdict === 'fail');
    assert.equal(bad.length, 1);
    assert.equal(bad[0].test, 0);
    assert.equal(bad[0].output, 'Say word0 please');
    const eq = bad[0].asserts.find((a) => a.type === 'equals');
    assert.equal(eq.verdict, 'fail');
    assert.equal(bad[0].asserts.length, 7, 'the test\'s 5 checks and defaultTest\'s 2');
    assert.ok(j.results.filter((x) => x.verdict === 'pass').every((x) => x.score === 1));

    const lines = ws.read('r.jsonl').trim().split('\n').map((l) => JSON.parse(l));
    const recs = lines.filter((l) => 'verdict' in l);
    assert.equal(recs.length, 10);
    const tail = lines.find((l) => l.summary);
    assert.equal(tail.summary.failed, 1);

    const rows = parseCsv(ws.read('r.csv'));
    const head = rows[0];
    assert.ok(head.includes('verdict') && head.includes('output'), `CSV header ${head}`);
    const data = rows.slice(1).filter((x) => x.length > 1);
    assert.equal(data.length, 10);
    assert.ok(data.every((x) => x.length === head.length), 'every CSV row has the header\'s columns');
    const vcol = head.indexOf('verdict');
    assert.equal(data.filter((x) => x[vcol] === 'fail').length, 1);

    const xml = ws.read('r.xml');
    assert.match(xml, /^<\?xml version="1.0"/);
    assert.equal((xml.match(/<testsuite[\s>]/g) || []).length, 1);
    assert.equal((xml.match(/<testcase[\s>]/g) || []).length, 10);
    assert.equal((xml.match(/<failure[\s>]/g) || []).length, 1);
    assert.match(xml, /<testsuites[^>]* tests="10" failures="1" errors="0"/);
    // well-formed enough: every opened element is closed in order
    const stack = [];
    for (const m of xml.replace(/<\?xml[^>]*\?>/, '').matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
      if (m[3] === '/') continue;
      if (m[1] === '/') assert.equal(stack.pop(), m[2], 'XML elements nest');
      else stack.push(m[2]);
    }
    assert.equal(stack.length, 0, `unclosed XML elements: ${stack}`);

    const html = ws.read('r.html');
    assert.match(html, /^<!DOCTYPE html>/i);
    assert.match(html, /<\/html>\s*$/);
    assert.doesNotMatch(html, /<script[^>]+src=/i, 'no external scripts');
    assert.doesNotMatch(html, /<link[^>]+href=["']?(https?:)?\/\//i, 'no external stylesheets');
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//i, 'no external URLs');
    assert.doesNotMatch(html, /@import|url\(\s*["']?(https?:)?\/\//i, 'no external CSS');
    assert.ok(html.includes('Say word0 please'), 'the failing answer is in the report');

    const md = ws.read('r.md');
    assert.match(md, /^# /);
    assert.match(md, /\| 10 \| 10 \| 9 \| 1 \| 0 \|/);
    assert.match(md, /Failed tests \(1\)/);
  });

  test('--filter-first-n and --repeat count records', async () => {
    const ws = workspace();
    ws.file('suite.yaml', echoSuite(0));
    const r = await ws.evalJson('suite.yaml', ['--filter-first-n', '3', '--repeat', '2']);
    assertExit(r, 0);
    assert.equal(r.summary.tests, 3);
    assert.equal(r.summary.records, 6);
  });
});

// promptfoo's documented verdicts on one answer ("Hello World, the answer is
// 42." from the echo provider): [description, test YAML fields, verdict].
const PARITY = [
  ['equals', 'assert: [{type: equals, value: "Hello World, the answer is 42."}]', 'pass'],
  ['contains-any splits a string on commas', 'assert: [{type: contains-any, value: "foo,World"}]', 'pass'],
  ['contains-all with a list', 'assert: [{type: contains-all, value: [Hello, "43"]}]', 'fail'],
  ['icontains-all', 'assert: [{type: icontains-all, value: "hello,world"}]', 'pass'],
  ['starts-with is case-sensitive', 'assert: [{type: starts-with, value: hello}]', 'fail'],
  ['word-count range', 'assert: [{type: word-count, value: {min: 3, max: 10}}]', 'pass'],
  ['word-count exact', 'assert: [{type: word-count, value: 6}]', 'pass'],
  ['levenshtein default threshold 5', 'assert: [{type: levenshtein, value: "Hello World, the answer is 41."}]', 'pass'],
  ['levenshtein far', 'assert: [{type: levenshtein, value: "Goodbye everyone"}]', 'fail'],
  ['is-json', 'assert: [{type: is-json}]', 'fail'],
  ['not-is-json', 'assert: [{type: not-is-json}]', 'pass'],
  ['not-regex', 'assert: [{type: not-regex, value: "\\\\d{3}"}]', 'pass'],
  ['test threshold lets a failed check pass', 'threshold: 0.5\n    assert: [{type: equals, value: nope}, {type: contains, value: Hello}]', 'pass'],
  ['weights', 'threshold: 0.7\n    assert: [{type: equals, value: nope}, {type: contains, value: Hello, weight: 3}]', 'pass'],
  ['weights under the threshold', 'threshold: 0.8\n    assert: [{type: equals, value: nope}, {type: contains, value: Hello, weight: 3}]', 'fail'],
  ['no threshold: every check must pass', 'assert: [{type: equals, value: nope}, {type: contains, value: Hello, weight: 3}]', 'fail'],
  ['contains-json in text', 'vars: {out: \'Result: {"a": 1} done\'}\n    assert: [{type: contains-json}]', 'pass'],
  ['rouge-n default threshold', 'assert: [{type: rouge-n, value: "Hello World, the answer is 42"}]', 'pass'],
  ['bleu', 'assert: [{type: bleu, value: "Hello World, the answer is 42."}]', 'pass'],
  ['assert-set threshold', 'assert: [{type: assert-set, threshold: 0.5, assert: [{type: contains, value: Hello}, {type: contains, value: zebra}]}]', 'pass'],
  ['equals an object compares JSON', 'vars: {out: \'{"b": 2, "a": 1}\'}\n    assert: [{type: equals, value: {a: 1, b: 2}}]', 'pass'],
  ['is-json with a schema', 'vars: {out: \'{"a": 1}\'}\n    assert: [{type: is-json, value: {type: object, required: [a], properties: {a: {type: integer}}}}]', 'pass'],
  ['is-json schema mismatch', 'vars: {out: \'{"a": "x"}\'}\n    assert: [{type: is-json, value: {type: object, required: [a], properties: {a: {type: integer}}}}]', 'fail'],
  ['assertion values are templates over vars', 'vars: {w: World}\n    assert: [{type: contains, value: "{{w}},"}]', 'pass'],
];

test('eval: deterministic verdicts match promptfoo\'s documented semantics', async () => {
  const ws = workspace();
  ws.file('parity.yaml', `prompts: ["{{out}}"]
providers: [echo]
defaultTest:
  vars: { out: "Hello World, the answer is 42." }
tests:
${PARITY.map(([d, body]) => `  - description: "${d}"\n    ${body}`).join('\n')}
`);
  const r = await ws.eval('parity.yaml', ['-o', 'p.json']);
  assertExit(r, 100);
  const got = ws.json('p.json').results.sort((a, b) => a.test - b.test).map((x) => [x.description, x.verdict]);
  assert.deepEqual(got, PARITY.map(([d, , v]) => [d, v]));
});

describe('eval: bad suites are refused before anything runs', async () => {
  const up = await startUpstream(echoStep);
  after(() => up.close());
  const provider = `providers:\n  - id: openai:chat:gpt-test\n    config: { apiBaseUrl: "${up.url}", apiKey: sk-test }\n`;

  const cases = [
    {
      name: 'a YAML syntax error names file:line:col',
      files: { 'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}tests:\n  - vars: { w: a\n    assert: []\n` },
      want: /suite\.yaml:[67]:\d+: .*YAML/,  // the flow mapping opens on line 6; libyaml notices on 7
    },
    {
      name: 'an unknown assertion type is named with its key path',
      files: {
        'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}tests:\n  - vars: { w: a }\n  - vars: { w: b }\n    assert:\n      - type: contains\n        value: b\n      - type: frobnicate\n        value: x\n`,
      },
      want: /suite\.yaml:11:\d+: tests\[1\]\.assert\[1\]: .*'frobnicate'/,
    },
    {
      name: 'an unknown assertion type in defaultTest',
      files: { 'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}defaultTest:\n  assert:\n    - type: contains-everything\n      value: x\ntests:\n  - vars: { w: a }\n` },
      want: /defaultTest\.assert\[0\].*contains-everything/,
    },
    {
      name: 'a regex that does not compile names the test',
      files: {
        'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}tests:\n  - vars: { w: a }\n  - description: the broken regex\n    vars: { w: b }\n    assert:\n      - type: regex\n        value: "a(b"\n`,
      },
      want: /suite\.yaml:\d+:\d+: tests\[1\]\.assert\[0\]: regex does not compile/,
    },
    {
      name: 'a bad CSV row gives the row number',
      files: {
        'tests.csv': 'w,__expected\na,contains:a\nb,contains:b\nc,contains:c,extra\n',
        'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}tests: file://tests.csv\n`,
      },
      want: /tests\.csv:4: tests\.csv row 3: .*3 columns/,
    },
    {
      name: 'an unterminated quoted CSV field gives the row number',
      files: {
        'tests.csv': 'w,__expected\na,contains:a\n"b,contains:b\n',
        'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}tests: file://tests.csv\n`,
      },
      want: /tests\.csv:3: tests\.csv row 2: .*not closed/,
    },
    {
      name: 'a bad __expected assertion in a CSV row',
      files: {
        'tests.csv': 'w,__expected\na,contains:a\nb,regex:a(b\n',
        'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}tests: file://tests.csv\n`,
      },
      want: /row 2.*regex does not compile/,
    },
    {
      name: 'a missing tests file',
      files: { 'suite.yaml': `prompts: ["Say {{w}}"]\n${provider}tests: file://nowhere.csv\n` },
      want: /nowhere\.csv/,
    },
    {
      name: 'an unknown provider',
      files: { 'suite.yaml': `prompts: ["Say {{w}}"]\nproviders: [frobnicator:chat:x]\ntests:\n  - vars: { w: a }\n` },
      want: /frobnicator/,
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const ws = workspace();
      for (const [name, text] of Object.entries(c.files)) ws.file(name, text);
      up.set(echoStep);
      const r = await ws.eval('suite.yaml', ['-o', 'out.json']);
      assertExit(r, 1, c.name);
      assert.match(r.stderr, c.want);
      assert.equal(up.requests.length, 0, 'no call was made');
      assert.ok(!existsSync(ws.path('out.json')), 'no results were written');
      const list = await ws.cli(['eval', 'list', '--json']);
      assertExit(list, 0);
      assert.deepEqual(JSON.parse(list.stdout), [], 'no run was stored');
    });
  }

  test('hostile YAML (deep nesting, an alias bomb) is refused at once', async () => {
    const ws = workspace();
    const deep = 50000;
    ws.file('deep.yaml', `prompts: ["Say {{w}}"]\n${provider}tests:\n  - vars: { w: ${'['.repeat(deep)}${']'.repeat(deep)} }\n`);
    let laughs = 'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
    for (let k = 1; k < 9; k++) laughs += `a${k}: &a${k} [${Array(9).fill(`*a${k - 1}`).join(', ')}]\n`;
    ws.file('bomb.yaml', `${laughs}prompts: ["Say {{w}}"]\n${provider}tests:\n  - vars: { w: *a8 }\n`);
    for (const [file, want] of [['deep.yaml', /deep\.yaml:6:\d+: .*nests deeper than 64/], ['bomb.yaml', /more than \d+ nodes/]]) {
      up.set(echoStep);
      const t0 = Date.now();
      const r = await ws.eval(file);
      const ms = Date.now() - t0;
      assertExit(r, 1, file);
      assert.match(r.stderr, want);
      assert.equal(up.requests.length, 0);
      if (!SANITIZED) assert.ok(ms < 3000, `${file} took ${ms} ms to refuse`);
    }
  });

  test('an -o file that cannot be written is an error before any call', async () => {
    const ws = workspace();
    ws.file('suite.yaml', `prompts: ["Say {{w}}"]\n${provider}tests:\n  - vars: { w: a }\n`);
    // an unknown format is a usage error (2), an unwritable place an error (1)
    for (const [out, want, code] of [['out.txt', /the extension picks the format/, 2], [ws.path('no/such/dir/out.json'), /no\/such\/dir/, 1]]) {
      up.set(echoStep);
      const r = await ws.eval('suite.yaml', ['-o', out]);
      assertExit(r, code, out);
      assert.match(r.stderr, want);
      assert.equal(up.requests.length, 0, `no call with -o ${out}`);
    }
  });

  test('the suite file itself is missing', async () => {
    const ws = workspace();
    const r = await ws.eval('missing.yaml');
    assertExit(r, 1);
    assert.match(r.stderr, /missing\.yaml/);
  });
});
