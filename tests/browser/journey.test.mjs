// journey.test.mjs - issue #7's "done when", as a new user would do it: the
// server started with no configuration at all (the README's first command:
// the embedded default, the simulator, ./genaiops.db), the URL it prints
// opened in Chromium, and from there only clicks: the overview to the traces
// to one trace, feedback on it, a prompt's label rolled back, two evaluation
// runs compared. Every step is checked through the API too.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { BIN } from '../integration/lib.mjs';
import { assertClean, chat, get, launch, openPage, post, settled, shot, startGateway, waitTraces } from './lib.mjs';

const run = promisify(execFile);

// An eval suite on the simulator: run "good" passes 4 of 4, run "worse"
// breaks two of them.
function suite(name, broken) {
  const tests = [0, 1, 2, 3].map((i) => `  - description: question ${i}
    vars: { q: "${broken.includes(i) ? 'something else' : `answer ${i}`}" }
    assert: [{ type: contains, value: "answer ${i}" }]`);
  return `description: ${name}\nprompts: ["Reply: {{q}}"]\nproviders: [sim:echo]\ntests:\n${tests.join('\n')}\n`;
}

describe('console: a new user\'s first visit', () => {
  let gw;
  let browser;
  let consoleUrl;

  before(async () => {
    gw = await startGateway(); // no --config: the embedded default in a fresh directory
    const m = /console: (http:\/\/\S+\/ui\/)/.exec(gw.logs());
    assert.ok(m, `the server prints the console URL: ${gw.logs()}`);
    consoleUrl = m[1];
    for (let i = 0; i < 3; i++) assert.equal((await chat(gw, `hello ${i}`)).status, 200);
    assert.equal((await chat(gw, 'a failing one', { model: 'sim/error-500' })).status, 500);
    await waitTraces(gw, 4);
    // a prompt with two versions, production moved from v1 to v2 (a release)
    for (const text of ['You answer briefly.', 'You answer briefly and politely.']) {
      const r = await post(`${gw.url}/api/v1/prompts`, { name: 'assistant', type: 'chat', messages: [{ role: 'system', content: text }, { role: 'user', content: '{{question}}' }] });
      assert.ok([200, 201].includes(r.status), JSON.stringify(r.body));
    }
    for (const version of [1, 2]) {
      const r = await post(`${gw.url}/api/v1/prompts/assistant/labels`, { label: 'production', version });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    // two evaluation runs into the same store (./genaiops.db in the server's directory)
    for (const [name, broken] of [['baseline', []], ['candidate', [1, 3]]]) {
      writeFileSync(path.join(gw.dir, `${name}.yaml`), suite(name, broken));
      const r = await run(BIN, ['eval', '-c', `${name}.yaml`, '--no-progress-bar', '--no-table'], { cwd: gw.dir }).catch((e) => e);
      assert.equal(r.code ?? 0, broken.length ? 100 : 0, `eval ${name}: ${r.stderr}`);
    }
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  test('overview -> traces -> a trace -> feedback -> prompt rollback -> two runs compared', async () => {
    const page = await openPage(browser);
    await page.goto(consoleUrl);
    await settled(page);
    // the overview counts the requests
    assert.match(await page.locator('.tiles').innerText(), /Requests\s+4/);
    await shot(page, 'journey-1-overview');

    // to the traces behind it, then the newest successful one
    await page.getByRole('link', { name: 'see the traces' }).click();
    await page.waitForURL(/\/ui\/traces/);
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr').count(), 4);
    await page.locator('table.list tbody tr', { hasText: 'sim/echo' }).first().click();
    await page.waitForURL(/\/ui\/traces\/[0-9a-f]{32}$/);
    await settled(page);
    const traceId = page.url().split('/').pop();
    assert.match(await page.locator('section.card', { hasText: 'Spans' }).innerText(), /attempt sim/);
    await shot(page, 'journey-2-trace');

    // feedback: thumbs up and a comment
    await page.fill('textarea[name=comment]', 'exactly what I asked');
    await page.getByRole('button', { name: 'Thumbs up' }).click();
    await page.waitForFunction(() => /Saved thumbs_up/.test(document.body.innerText));
    const scores = (await get(`${gw.url}/api/v1/traces/${traceId}`)).body.scores;
    assert.deepEqual(scores.map((s) => [s.name, s.value, s.comment]), [['thumbs_up', true, 'exactly what I asked']]);

    // prompts: roll production back from v2 to v1
    await page.getByRole('link', { name: 'Prompts' }).click();
    await settled(page);
    await page.locator('table.list tbody tr', { hasText: 'assistant' }).click();
    await page.waitForURL(/\/ui\/prompts\/assistant/);
    await settled(page);
    const labels = page.locator('#prompt-labels');
    await labels.getByRole('button', { name: 'Roll back production' }).click();
    await labels.locator('.confirm').getByRole('button', { name: 'Roll back' }).click();
    await page.waitForFunction(() => /Rolled production back to v1/.test(document.querySelector('#prompt-labels').textContent));
    const p = (await get(`${gw.url}/api/v1/prompts/assistant?label=production`)).body;
    assert.equal(p.version, 1);
    await shot(page, 'journey-3-rollback');

    // evaluations: pick both runs, compare, see the two regressions
    await page.getByRole('link', { name: 'Evaluations' }).click();
    await settled(page);
    const picks = page.locator('input[data-pick]');
    assert.equal(await picks.count(), 2);
    await picks.nth(0).check();
    await picks.nth(1).check();
    await page.getByRole('button', { name: 'Compare' }).click();
    await page.waitForURL(/\/ui\/evals\/compare\?/);
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr.row-bad').count(), 2);
    assert.match(await page.locator('table.list tbody').innerText(), /regressed[\s\S]*question 1[\s\S]*regressed[\s\S]*question 3/);
    await shot(page, 'journey-4-compare');
    assertClean(page);
  });
});
