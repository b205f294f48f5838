// traces.test.mjs - the console's Traces pages in Chromium: the list loads
// with the seeded traces, filters go into the URL and narrow the list,
// keyboard navigation opens a trace, the trace page shows the waterfall,
// the redacted messages and the guardrail finding, feedback posts scores
// (checked through the API), the live tail picks up a new request, and the
// sign-in flow works on a server with an admin key.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertClean, chat, consoleConfig, get, launch, openPage, settled, shot, startGateway, waitTraces } from './lib.mjs';

describe('console: traces', () => {
  let gw;
  let browser;
  before(async () => {
    gw = await startGateway({ config: consoleConfig() });
    browser = await launch();
    for (let i = 0; i < 4; i++) assert.equal((await chat(gw, `Hello number ${i}`)).status, 200);
    assert.equal((await chat(gw, 'Write to bob@example.com please')).status, 200);
    assert.equal((await chat(gw, 'this one fails', { model: 'sim/error-500' })).status, 500);
    await waitTraces(gw, 6);
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  test('the list shows every trace, and a status filter narrows it through the URL', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/traces`);
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr').count(), 6);
    await shot(page, 'traces-list');
    await page.selectOption('select[name=status]', 'error');
    await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 1);
    assert.match(page.url(), /status=error/);
    assert.match(await page.locator('table.list tbody tr').first().innerText(), /sim\/error-500/);
    // the URL alone reproduces the view
    const page2 = await openPage(browser);
    await page2.goto(page.url());
    await settled(page2);
    assert.equal(await page2.locator('table.list tbody tr').count(), 1);
    assert.equal(await page2.locator('select[name=status]').inputValue(), 'error');
    assertClean(page);
    assertClean(page2);
  });

  test('text search, then the keyboard opens a trace', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/traces?q=number`);
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr').count(), 4);
    await page.locator('table.list tbody tr').first().focus();
    await page.keyboard.press('j');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/ui\/traces\/[0-9a-f]{32}$/);
    await settled(page);
    assert.match(await page.locator('h1').innerText(), /chat sim\/echo/);
    assertClean(page);
  });

  test('a trace page: waterfall, redacted input, guardrail finding; feedback posts scores', async () => {
    // the stored input has the placeholder instead of the address
    const all = (await get(`${gw.url}/api/v1/traces?limit=50`)).body.data;
    const withEmail = [];
    for (const x of all) {
      const d = (await get(`${gw.url}/api/v1/traces/${x.trace_id}`)).body;
      if (JSON.stringify(d.input_messages || '').includes('<EMAIL_1>')) withEmail.push(d);
    }
    assert.equal(withEmail.length, 1, 'one trace has the redacted e-mail');
    const id = withEmail[0].trace_id;
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/traces/${id}`);
    await settled(page);
    assert.equal(await page.locator('.waterfall .wf-name').count(), withEmail[0].spans.length);
    assert.equal(await page.locator('.message .redaction').first().innerText(), '<EMAIL_1>');
    assert.match(await page.locator('section.card', { hasText: 'Guardrail checks' }).innerText(), /pii-redact[\s\S]*EMAIL messages\[0\]/);
    // click a span: its attributes appear
    await page.locator('.waterfall .wf-name').first().click();
    assert.match(await page.locator('section.card', { hasText: 'Spans' }).innerText(), /gen_ai\.request\.model/);
    // thumbs up, then a numeric score with a comment
    await page.getByRole('button', { name: 'Thumbs up' }).click();
    await page.waitForFunction(() => /Saved thumbs_up/.test(document.body.innerText));
    await page.fill('input[name=value]', '0.75');
    await page.fill('textarea[name=comment]', 'good but long');
    await page.getByRole('button', { name: 'Add score' }).click();
    await page.waitForFunction(() => /Saved quality/.test(document.body.innerText));
    await shot(page, 'trace-detail');
    const stored = (await get(`${gw.url}/api/v1/traces/${id}`)).body.scores;
    assert.deepEqual(stored.map((s) => [s.name, s.value, s.source, s.comment ?? null]),
      [['thumbs_up', true, 'human', null], ['quality', 0.75, 'human', 'good but long']]);
    // the feedback list on a reload shows both
    await page.reload();
    await settled(page);
    assert.match(await page.locator('section.card', { hasText: 'Feedback' }).innerText(), /thumbs_up[\s\S]*quality[\s\S]*good but long/);
    assertClean(page);
  });

  test('an unknown trace id shows an empty state, not an error', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/traces/00000000000000000000000000000000`);
    await settled(page);
    assert.match(await page.locator('#view').innerText(), /No such trace/);
    assertClean(page, [/404/]);
  });

  test('live tail puts a new request on top', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/traces?live=1`);
    await settled(page);
    const before = await page.locator('table.list tbody tr').count();
    assert.equal((await chat(gw, 'a live one', { model: 'sim/lorem' })).status, 200);
    await page.waitForFunction((n) => document.querySelectorAll('table.list tbody tr').length === n + 1, before, { timeout: 10000 });
    assert.match(await page.locator('table.list tbody tr').first().innerText(), /sim\/lorem/);
    assert.match(await page.locator('.page-head').innerText(), /live/);
    assertClean(page);
  });
});

describe('console: signing in', () => {
  let gw;
  let browser;
  before(async () => {
    gw = await startGateway({ config: consoleConfig('server: { admin_key: "sk-admin-test" }\n') });
    browser = await launch();
    assert.equal((await chat(gw, 'hi', {}, { authorization: 'Bearer sk-admin-test' })).status, 200);
    await waitTraces(gw, 1, { authorization: 'Bearer sk-admin-test' });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  test('without the key the page asks for it; a wrong key is refused; the right one shows the data', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/traces`);
    await page.waitForSelector('#sign-in-dialog[open]');
    await page.waitForFunction(() => /needs the admin key/.test(document.getElementById('view').innerText));
    await page.fill('#sign-in-key', 'wrong');
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForFunction(() => /refused/.test(document.getElementById('sign-in-error').textContent));
    await page.fill('#sign-in-key', 'sk-admin-test');
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#sign-in-dialog:not([open])', { state: 'attached' });
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr').count(), 1);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('genaiops.adminKey')), 'sk-admin-test');
    assert.match(await page.locator('#sign-in').innerText(), /Sign out/);
    await shot(page, 'traces-signed-in');
    assertClean(page, [/401/]);
  });
});
