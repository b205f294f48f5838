// evals.test.mjs - the console's Evaluations pages in Chromium. The store is
// seeded by the CLI before the server starts on it: two runs of a suite on
// sim:echo where the second breaks five tests, fixes one and errors one
// (a command check that exits 3), a run with two providers (the
// leaderboard) and an AVI run. Checks: the list shows the runs with their
// pass-rate bars and filters through the URL; picking two runs and
// "Compare" opens the comparison with the regressions marked and the fix
// marked apart; the keyboard picks runs and opens one; a run page shows the
// failures first with their reasons, filters by verdict, and opens a
// result's details; the leaderboard and the AVI report render; unknown runs
// and a comparison without runs show empty states. No console errors;
// a screenshot of each page.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { workspace } from '../integration/eval-lib.mjs';
import { assertNoSanitizerReport } from '../integration/upstreams.mjs';
import { assertClean, consoleConfig, launch, openPage, ROOT, settled, shot, startGateway } from './lib.mjs';

// Test i echoes item<i> (passes) or "other" (fails). Run A: test 2 fails;
// run B: tests 1, 3, 5, 7, 9 fail and test 2 passes. Test 11 errors in both.
function suite(run) {
  const t = [];
  for (let i = 0; i < 12; i++) {
    const fails = run === 'A' ? i === 2 : i % 2 === 1 && i < 10;
    const checks = [`{ type: contains, value: "item${i}" }`];
    if (i === 11) checks.push('{ type: command, value: "exit 3" }');
    t.push(`  - description: case ${i}\n    vars: { v: "${fails ? 'other' : `item${i}`}" }\n    assert: [${checks.join(', ')}]`);
  }
  return `description: console ${run}\nprompts: ["Say {{v}}"]\nproviders: [sim:echo]\ntests:\n${t.join('\n')}\n`;
}

const board = `description: console leaderboard
prompts: ["Say {{v}}"]
providers: [sim:echo, { id: sim:lorem, label: lorem }]
tests:
  - vars: { v: item0 }
    assert: [{ type: contains, value: item0 }]
  - vars: { v: item1 }
    assert: [{ type: contains, value: item1 }]
`;

describe('console: evaluations', () => {
  const ws = workspace();
  const ids = {};
  let gw;
  let browser;

  before(async () => {
    for (const [name, text] of [['A', suite('A')], ['B', suite('B')], ['board', board]]) {
      ws.file(`${name}.yaml`, text);
      const r = await ws.evalJson(`${name}.yaml`);
      assert.ok([1, 100].includes(r.code), `eval ${name} exited ${r.code}: ${r.stderr}`);
      ids[name] = r.summary.run_id;
    }
    const avi = await ws.cli(['avi', '-c', path.join(ROOT, 'examples/eval/agent-avi.yaml'), '--runs', '2', '--json']);
    assert.ok([0, 100].includes(avi.code), `avi exited ${avi.code}: ${avi.stderr}`);
    ids.avi = JSON.parse(avi.stdout).run_id;
    gw = await startGateway({ config: `${consoleConfig()}store: { url: "sqlite://${ws.dir}/g.db" }\n` });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    const r = await gw?.stop();
    if (r) assertNoSanitizerReport(r.logs);
  });

  test('the list shows the runs with pass-rate bars; the filter goes into the URL', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/evals`);
    await settled(page);
    const rows = page.locator('table.list tbody tr');
    assert.equal(await rows.count(), 4);
    assert.match(await rows.nth(0).innerText(), /Support agent - Agentic Variability Index/);
    assert.match(await rows.nth(2).innerText(), /console B[\s\S]*B\.yaml[\s\S]*done[\s\S]*50\.0%/);
    assert.equal(await page.locator('table.list tbody svg.interval').count(), 4);
    await shot(page, 'evals-list');
    await page.fill('input[name=q]', 'console b');
    await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 1);
    assert.match(page.url(), /q=console\+b|q=console%20b/);
    assert.match(await rows.first().innerText(), /console B/);
    // the URL alone reproduces the view
    const page2 = await openPage(browser);
    await page2.goto(page.url());
    await settled(page2);
    assert.equal(await page2.locator('table.list tbody tr').count(), 1);
    assert.equal(await page2.locator('input[name=q]').inputValue(), 'console b');
    assertClean(page);
    assertClean(page2);
  });

  test('pick two runs and compare: regressions are marked, the fix apart', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/evals`);
    await settled(page);
    const compare = page.getByRole('button', { name: 'Compare' });
    assert.equal(await compare.isDisabled(), true);
    // newest first: B is row 2, A row 3; pick B first so the order of picks does not matter
    await page.locator(`input[data-pick="${ids.B}"]`).check();
    await page.locator(`input[data-pick="${ids.A}"]`).check();
    assert.match(page.url(), /pick=/);
    await compare.click();
    await page.waitForURL(/\/ui\/evals\/compare\?/);
    await settled(page);
    const u = new URL(page.url());
    assert.equal(u.searchParams.get('base'), ids.A);
    assert.equal(u.searchParams.get('current'), ids.B);
    const rows = page.locator('table.list tbody tr');
    assert.equal(await rows.count(), 12);
    assert.equal(await page.locator('table.list tbody tr.row-bad').count(), 5);
    assert.equal(await page.locator('table.list tbody tr.row-good').count(), 1);
    for (let i = 0; i < 5; i++) assert.match(await rows.nth(i).innerText(), /regressed[\s\S]*pass[\s\S]*fail/);
    assert.match(await rows.nth(5).innerText(), /fixed[\s\S]*#2[\s\S]*fail[\s\S]*pass/);
    const head = await page.locator('#view').innerText();
    assert.match(head, /5 regressed/);
    assert.match(head, /1 fixed/);
    assert.match(head, /McNemar p/);
    assert.match(head, /Score difference/);
    assert.match(head, /gate (passed|failed)/);
    assert.match(head, /Base[\s\S]*console A[\s\S]*Current[\s\S]*console B/);
    await shot(page, 'evals-compare');
    // only the regressions, through the URL
    await page.selectOption('select[name=change]', 'regressed');
    await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 5);
    assert.match(page.url(), /change=regressed/);
    // a row opens the current run's failures
    await rows.first().focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/ui/evals/${ids.B}\\?verdict=fail`));
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr.result').count(), 5);
    assertClean(page);
  });

  test('the keyboard picks runs and opens one', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/evals`);
    await settled(page);
    await page.locator('table.list tbody tr').first().focus();
    await page.keyboard.press('j');
    await page.keyboard.press('x');
    await page.keyboard.press('j');
    await page.keyboard.press('x');
    assert.equal(await page.getByRole('button', { name: 'Compare' }).isDisabled(), false);
    assert.equal(await page.locator('table.list tbody tr.row-good').count(), 2);
    await page.keyboard.press('k');
    await page.keyboard.press('Enter');
    await page.waitForURL(new RegExp(`/ui/evals/${ids.board}$`));
    await settled(page);
    assertClean(page);
  });

  test('a run page: failures first with their reasons, the verdict filter, a result\'s details', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/evals/${ids.B}`);
    await settled(page);
    const text = await page.locator('#view').innerText();
    assert.match(text, /console B/);
    assert.match(text, /Pass rate[\s\S]*50\.0%[\s\S]*95% interval/);
    assert.match(text, /sim:echo/);
    assert.doesNotMatch(text, /Leaderboard/);
    const rows = page.locator('table.list tbody tr.result');
    assert.equal(await rows.count(), 12);
    assert.match(await rows.nth(0).innerText(), /error[\s\S]*#11/);
    for (let i = 1; i <= 5; i++) assert.match(await rows.nth(i).innerText(), /fail[\s\S]*Expected output to contain "item\d"/);
    assert.match(await rows.nth(6).innerText(), /pass/);
    await shot(page, 'eval-run');
    // Enter shows the result's checks and output
    await rows.nth(1).focus();
    await page.keyboard.press('Enter');
    const detail = page.locator('tr.detail-row');
    await detail.waitFor();
    assert.match(await detail.innerText(), /contains[\s\S]*Expected output to contain "item1"[\s\S]*Say other/);
    // the verdict filter, through the URL
    await page.selectOption('select[name=verdict]', 'error');
    await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr.result').length === 1);
    assert.match(page.url(), /verdict=error/);
    assert.match(await rows.first().innerText(), /command/);
    assertClean(page);
  });

  test('the leaderboard of a run with two providers and the AVI report', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/evals/${ids.board}`);
    await settled(page);
    const boardCard = page.locator('section.card', { hasText: 'Leaderboard' });
    assert.equal(await boardCard.locator('tbody tr').count(), 2);
    assert.match(await boardCard.locator('tbody tr').first().innerText(), /sim:echo[\s\S]*100\.0%/);
    await shot(page, 'eval-leaderboard');
    assertClean(page);

    const avi = await openPage(browser);
    await avi.goto(`${gw.url}/ui/evals/${ids.avi}`);
    await settled(avi);
    const card = avi.locator('section.card', { hasText: 'Agentic Variability Index' });
    const text = await card.innerText();
    assert.match(text, /Index[\s\S]*target 15/);
    assert.match(text, /Components[\s\S]*outcome[\s\S]*trajectory/i);
    assert.match(text, /The cases that drive it[\s\S]*agent t=0\.9/i);
    assert.match(text, /What usually helps/i);
    await shot(avi, 'eval-avi');
    assertClean(avi);
  });

  test('unknown runs and a comparison without runs show empty states', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/evals/ev-nope`);
    await settled(page);
    assert.match(await page.locator('#view').innerText(), /No such run/);
    assertClean(page, [/404/]);
    await page.goto(`${gw.url}/ui/evals/compare`);
    await settled(page);
    assert.match(await page.locator('#view').innerText(), /Pick two runs to compare/);
    await page.goto(`${gw.url}/ui/evals/compare?base=${ids.A}&current=ev-nope`);
    await settled(page);
    assert.match(await page.locator('#view').innerText(), /does not exist/);
    assertClean(page, [/404/]);
  });
});
