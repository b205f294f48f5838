// prompts.test.mjs - the console's Prompts pages in Chromium, against a
// server seeded through POST /api/v1/prompts and the labels API: the list
// (labels, the prefix filter in the URL, the empty states, keyboard
// navigation), one prompt (header, versions, selecting a version), the
// side-by-side and unified diffs, moving a label and rolling it back
// (checked through the API), the errors shown in place (409, 401, 403),
// and the playground (render, missing variables, a run on sim/echo with
// its tokens, overhead and trace link). A second server has an admin key:
// the page asks for it, and a move without it fails in place until the
// user signs in again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertClean, consoleConfig, get, launch, openPage, post, settled, shot, startGateway } from './lib.mjs';

const ANSWER = 'support/answer';
const SUMMARIZE = 'support/summarize';
const pageOf = (gw, name, query = '') => `${gw.url}/ui/prompts/${encodeURIComponent(name)}${query}`;

// Three versions of a chat prompt and two of a text prompt; production and
// staging point at older versions.
async function seed(gw, headers = {}) {
  const save = async (body) => {
    const r = await post(`${gw.url}/api/v1/prompts`, body, headers);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body;
  };
  const user = { role: 'user', content: '{{question}}' };
  await save({ name: ANSWER, messages: [{ role: 'system', content: 'You work for {{company}}.\nBe brief.' }, user],
    config: { model: 'sim/echo', temperature: 0.2 }, message: 'first cut', author: 'ana' });
  await save({ name: ANSWER, messages: [{ role: 'system', content: 'You work for {{company}}!\nBe brief.\nNever promise dates.' }, user],
    config: { model: 'sim/echo', temperature: 0.3 }, message: 'stricter', author: 'ana' });
  await save({ name: ANSWER, messages: [{ role: 'system', content: 'You work for {{company}}!\nBe brief.\nNever promise dates.\n{{#policies}}- {{.}}\n{{/policies}}' }, user],
    config: { model: 'sim/echo', temperature: 0.3 }, message: 'policies', author: 'bo' });
  await save({ name: SUMMARIZE, template: 'Summarize {{transcript}} in {{max_words}} words.' });
  await save({ name: SUMMARIZE, template: 'Summarize this conversation in at most {{max_words}} words:\n{{transcript}}', message: 'clearer' });
  for (const [name, label, version] of [[ANSWER, 'production', 2], [ANSWER, 'staging', 3], [SUMMARIZE, 'staging', 2]]) {
    const r = await post(`${gw.url}/api/v1/prompts/${encodeURIComponent(name)}/labels`, { label, version }, headers);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
}

async function labelAt(gw, name, label, headers = {}) {
  const r = await get(`${gw.url}/api/v1/prompts/${encodeURIComponent(name)}?label=${label}`, headers);
  return r.status === 200 ? r.body.version : null;
}

describe('console: prompts', () => {
  let gw;
  let browser;
  before(async () => {
    gw = await startGateway({ config: consoleConfig() });
    browser = await launch();
    await seed(gw);
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  test('the list: labels, the prefix filter in the URL, empty states, the keyboard', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/prompts`);
    await settled(page);
    const rows = page.locator('table.list tbody tr');
    assert.equal(await rows.count(), 2);
    const first = await rows.nth(0).innerText();
    assert.match(first, /support\/answer\s+chat\s+v3/);
    assert.match(first, /production → v2/);
    assert.match(first, /staging → v3/);
    assert.match(await rows.nth(1).innerText(), /support\/summarize\s+text\s+v2[\s\S]*staging → v2/);
    await shot(page, 'prompts-list');

    // "/" focuses the filter; typing narrows the list and goes into the URL
    await page.locator('body').press('/');
    await page.keyboard.type('support/s');
    await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 1);
    assert.match(page.url(), /prefix=support%2Fs/);
    const page2 = await openPage(browser);
    await page2.goto(page.url());
    await settled(page2);
    assert.equal(await page2.locator('table.list tbody tr').count(), 1);
    assert.equal(await page2.locator('input[name=prefix]').inputValue(), 'support/s');

    await page.fill('input[name=prefix]', 'nothing/here');
    await page.waitForSelector('.state.empty');
    assert.match(await page.locator('#view').innerText(), /No prompt name starts with/);

    // the keyboard opens a prompt
    await page.goto(`${gw.url}/ui/prompts`);
    await settled(page);
    await page.locator('table.list tbody tr').first().focus();
    await page.keyboard.press('j');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/ui\/prompts\/support%2Fsummarize$/);
    await settled(page);
    assert.match(await page.locator('h1').innerText(), /support\/summarize\s+text/);
    assertClean(page);
    assertClean(page2);
  });

  test('an empty registry says how to create a prompt', async () => {
    const empty = await startGateway({ config: consoleConfig() });
    try {
      const page = await openPage(browser);
      await page.goto(`${empty.url}/ui/prompts`);
      await settled(page);
      const text = await page.locator('#view').innerText();
      assert.match(text, /No prompts yet/);
      assert.match(text, /genaiops prompt push/);
      assert.match(text, /POST \/api\/v1\/prompts/);
      await shot(page, 'prompts-empty');
      assertClean(page);
    } finally {
      await empty.stop();
    }
  });

  test('a name with slashes also opens when typed unencoded in the address bar', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/prompts/support/answer?version=1`);
    await settled(page);
    assert.match(await page.locator('.page-head').innerText(), /support\/answer\s+chat/);
    assert.match(await page.locator('#prompt-version h2').innerText(), /Version 1/);
    assertClean(page);
  });

  test('a prompt: header, versions, choosing a version shows its template and config', async () => {
    const page = await openPage(browser);
    await page.goto(pageOf(gw, ANSWER));
    await settled(page);
    const head = await page.locator('.page-head').innerText();
    assert.match(head, /support\/answer\s+chat/);
    assert.match(head, /latest v3 · 3 versions/);
    assert.match(head, /production → v2[\s\S]*staging → v3/);
    const rows = page.locator('table.pr-versions tbody tr');
    assert.equal(await rows.count(), 3);
    assert.match(await rows.nth(0).innerText(), /v3[\s\S]*bo[\s\S]*policies[\s\S]*latest[\s\S]*staging/);
    assert.match(await rows.nth(2).innerText(), /v1[\s\S]*ana[\s\S]*first cut/);
    assert.match(await page.locator('#prompt-version h2').innerText(), /Version 3/);

    // a click on v1: the URL, the detail, the playground follow
    await rows.nth(2).click();
    await page.waitForFunction(() => /Version 1/.test(document.querySelector('#prompt-version h2').textContent));
    assert.match(page.url(), /version=1/);
    const detail = await page.locator('#prompt-version').innerText();
    assert.match(detail, /You work for \{\{company\}\}\.\nBe brief\./);
    assert.match(detail, /"temperature": 0\.2/);
    assert.match(await page.locator('#prompt-playground h2').innerText(), /version 1/);
    // the keyboard moves on: k goes up to v2
    await rows.nth(2).focus();
    await page.keyboard.press('k');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /Version 2/.test(document.querySelector('#prompt-version h2').textContent));
    assert.match(page.url(), /version=2/);
    // back returns to v1
    await page.goBack();
    await settled(page);
    await page.waitForFunction(() => /Version 1/.test(document.querySelector('#prompt-version h2')?.textContent || ''));
    await shot(page, 'prompt-version');
    assertClean(page);
  });

  test('the diff of v1 and v2: changed lines side by side, and the unified view', async () => {
    const page = await openPage(browser);
    await page.goto(pageOf(gw, ANSWER, '?from=1&to=2'));
    await settled(page);
    await page.waitForSelector('#prompt-compare .diff-split');
    assert.equal(await page.locator('select[name=from]').inputValue(), '1');
    assert.equal(await page.locator('select[name=to]').inputValue(), '2');
    const changed = await page.locator('#prompt-compare .diff-split').first().locator('.diff-changed').evaluateAll((rs) => rs.map((r) => ({
      del: r.querySelector('.del')?.textContent ?? null,
      add: r.querySelector('.add')?.textContent ?? null,
    })));
    assert.deepEqual(changed, [
      { del: 'You work for {{company}}.', add: 'You work for {{company}}!' },
      { del: null, add: 'Never promise dates.' },
    ]);
    // unchanged lines are on both sides
    const same = await page.locator('#prompt-compare .diff-split').first().locator('.diff-row:not(.diff-changed) .ctx').allInnerTexts();
    assert.ok(same.filter((t) => t === 'Be brief.').length === 2, `context lines: ${same}`);
    // the config diff
    const cfg = page.locator('#prompt-compare .diff-split').nth(1);
    assert.match(await cfg.locator('.del').innerText(), /"temperature": 0\.2/);
    assert.match(await cfg.locator('.add').innerText(), /"temperature": 0\.3/);
    await shot(page, 'prompt-diff-split');

    await page.getByRole('button', { name: 'Unified' }).click();
    await page.waitForSelector('#prompt-compare pre.diff-unified');
    assert.match(page.url(), /diff=unified/);
    const dels = await page.locator('#prompt-compare pre.diff-unified').first().locator('.del').allInnerTexts();
    const adds = await page.locator('#prompt-compare pre.diff-unified').first().locator('.add').allInnerTexts();
    assert.deepEqual(dels, ['-You work for {{company}}.']);
    assert.deepEqual(adds, ['+You work for {{company}}!', '+Never promise dates.']);
    await shot(page, 'prompt-diff-unified');

    // changing "to" goes into the URL; equal versions say so
    await page.selectOption('select[name=to]', '1');
    await page.waitForSelector('#prompt-compare .state.empty');
    assert.match(await page.locator('#prompt-compare').innerText(), /No differences/);
    assert.match(page.url(), /to=1/);
    assertClean(page);
  });

  test('move production to v1 and roll it back; the API agrees; errors show in place', async () => {
    const page = await openPage(browser);
    await page.goto(pageOf(gw, ANSWER, '?version=1'));
    await settled(page);
    const labels = page.locator('#prompt-labels');
    await labels.locator('input[name=label]').fill('production');
    await labels.getByRole('button', { name: 'Move to v1…' }).click();
    assert.match(await labels.locator('.confirm').innerText(), /Move production from v2 to v1\?/);
    await labels.getByRole('button', { name: 'Move label' }).click();
    await page.waitForFunction(() => /Moved production to v1 \(was v2\)/.test(document.querySelector('#prompt-labels').textContent));
    assert.equal(await labelAt(gw, ANSWER, 'production'), 1);
    // the page updated: header, the version's labels, the history
    assert.match(await page.locator('.page-head').innerText(), /production → v1/);
    assert.match(await page.locator('table.pr-versions tbody tr').nth(2).innerText(), /production/);
    assert.match(await labels.locator('table.pr-history tbody tr').first().innerText(), /production\s+v2 → v1\s+anonymous\s+set/);
    await shot(page, 'prompt-label-moved');

    // roll back, confirmed
    await labels.getByRole('button', { name: 'Roll back production' }).click();
    assert.match(await labels.locator('.confirm').innerText(), /Roll production back \(now v1\)/);
    await labels.locator('.confirm').getByRole('button', { name: 'Roll back' }).click();
    await page.waitForFunction(() => /Rolled production back to v2 \(was v1\)/.test(document.querySelector('#prompt-labels').textContent));
    assert.equal(await labelAt(gw, ANSWER, 'production'), 2);
    assert.match(await labels.locator('table.pr-history tbody tr').first().innerText(), /production\s+v1 → v2\s+anonymous\s+rollback/);

    // cancel leaves everything as it is
    await labels.locator('input[name=label]').fill('staging');
    await labels.getByRole('button', { name: 'Move to v1…' }).click();
    await labels.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await labels.locator('.confirm').count(), 0);
    assert.equal(await labelAt(gw, ANSWER, 'staging'), 3);

    // a new label, then a rollback with nothing earlier: 409 shown in place
    await labels.locator('input[name=label]').fill('canary');
    await labels.getByRole('button', { name: 'Move to v1…' }).click();
    assert.match(await labels.locator('.confirm').innerText(), /Create the label canary at v1\?/);
    await labels.getByRole('button', { name: 'Create label' }).click();
    await page.waitForFunction(() => /Moved canary to v1 \(a new label\)/.test(document.querySelector('#prompt-labels').textContent));
    await labels.getByRole('button', { name: 'Roll back canary' }).click();
    await labels.locator('.confirm').getByRole('button', { name: 'Roll back' }).click();
    await page.waitForSelector('#prompt-labels [role=alert]');
    assert.match(await labels.locator('[role=alert]').innerText(), /no earlier version to roll back to/);
    assert.equal(await labelAt(gw, ANSWER, 'canary'), 1);

    // an invalid label never reaches the server
    await labels.locator('input[name=label]').fill('Bad Label');
    await labels.getByRole('button', { name: 'Move to v1…' }).click();
    assert.match(await labels.locator('[role=alert]').innerText(), /not a valid label/);
    assertClean(page, [/409/]);
  });

  test('the playground: missing variables, render, run on sim/echo, the trace link', async () => {
    const page = await openPage(browser);
    await page.goto(pageOf(gw, ANSWER, '?version=3'));
    await settled(page);
    const pg = page.locator('#prompt-playground');
    assert.deepEqual(await pg.locator('.pg-vars input').evaluateAll((xs) => xs.map((x) => x.name)),
      ['var-company', 'var-policies', 'var-question']);
    assert.equal(await pg.locator('select[name=model]').inputValue(), 'sim/echo');
    // nothing filled: the API names the missing ones
    await pg.getByRole('button', { name: 'Render' }).click();
    await page.waitForSelector('#prompt-playground [role=alert]');
    assert.match(await pg.locator('[role=alert]').innerText(), /missing variables: company, question/);
    assert.equal(await pg.locator('input[name=var-company]').getAttribute('aria-invalid'), 'true');

    await pg.locator('input[name=var-company]').fill('Acme');
    await pg.locator('input[name=var-question]').fill('Where is my order?');
    await pg.locator('input[name=var-policies]').fill('["no refunds", "be kind"]');
    assert.match(page.url(), /var\.company=Acme/);
    await pg.getByRole('button', { name: 'Render' }).click();
    await page.waitForFunction(() => /Rendered version 3/.test(document.querySelector('#prompt-playground').textContent));
    const rendered = await pg.locator('.pg-rendered').innerText();
    assert.match(rendered, /You work for Acme!\nBe brief\.\nNever promise dates\.\n- no refunds\n- be kind/);
    assert.match(rendered, /Where is my order\?/);

    await pg.getByRole('button', { name: 'Run' }).click();
    await page.waitForSelector('#prompt-playground .pg-answer .tiles');
    const answer = await pg.locator('.pg-answer').innerText();
    assert.match(answer, /Where is my order\?/, 'sim/echo echoes the last user message');
    assert.match(answer, /Tokens\s+\d+ in \/ \d+ out/);
    assert.match(answer, /Gateway overhead\s+[\d,]+ µs/);
    assert.match(answer, /Latency\s+[\d.]+ m?s/);
    assert.match(answer, /temperature 0\.3/);
    const href = await pg.locator('a.pg-trace').getAttribute('href');
    assert.match(href, /^\/ui\/traces\?q=req_/);
    await shot(page, 'prompt-playground');
    // the trace of the run, through its request id
    await pg.locator('a.pg-trace').click();
    await page.waitForURL(/\/ui\/traces\?q=req_/);
    await settled(page);
    for (let i = 0; i < 50 && await page.locator('table.list tbody tr').count() === 0; i++) {
      await page.waitForTimeout(100);
      await page.reload();
      await settled(page);
    }
    assert.equal(await page.locator('table.list tbody tr').count(), 1);
    assertClean(page, [/400/]);
  });

  test('the playground of a text prompt renders its text; a reload keeps the values', async () => {
    const page = await openPage(browser);
    await page.goto(pageOf(gw, SUMMARIZE, '?var.transcript=hi%20there&var.max_words=20'));
    await settled(page);
    const pg = page.locator('#prompt-playground');
    assert.equal(await pg.locator('input[name=var-transcript]').inputValue(), 'hi there');
    await pg.getByRole('button', { name: 'Render' }).click();
    await page.waitForSelector('#prompt-playground .pg-rendered pre');
    assert.equal(await pg.locator('.pg-rendered pre').innerText(), 'Summarize this conversation in at most 20 words:\nhi there');
    await pg.getByRole('button', { name: 'Run' }).click();
    await page.waitForSelector('#prompt-playground .pg-answer .tiles');
    assert.match(await pg.locator('.pg-answer').innerText(), /Summarize this conversation in at most 20 words/);
    assertClean(page);
  });

  test('an unknown prompt is an empty state, not an error', async () => {
    const page = await openPage(browser);
    await page.goto(pageOf(gw, 'no/such-prompt'));
    await settled(page);
    assert.match(await page.locator('#view').innerText(), /No such prompt/);
    assertClean(page, [/404/]);
  });
});

describe('console: prompts with an admin key', () => {
  const KEY = 'sk-admin-prompts';
  const auth = { authorization: `Bearer ${KEY}` };
  let gw;
  let browser;
  before(async () => {
    gw = await startGateway({ config: consoleConfig(`server: { admin_key: "${KEY}" }\nprompts: { protected_labels: [production] }\n`) });
    browser = await launch();
    await seed(gw, auth);
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  test('without the key the page asks for it; a move without it fails in place, after signing in it works', async () => {
    const page = await openPage(browser);
    await page.goto(pageOf(gw, ANSWER, '?version=1'));
    await page.waitForSelector('#sign-in-dialog[open]');
    await settled(page); // the dialog opens on the first 401, the page fails on its own
    assert.match(await page.locator('#view').innerText(), /needs the admin key/);
    await page.fill('#sign-in-key', KEY);
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#sign-in-dialog:not([open])', { state: 'attached' });
    await settled(page);
    await page.waitForSelector('#prompt-labels');

    // the key is gone (signed out in this tab's storage): the move is refused
    await page.evaluate(() => sessionStorage.removeItem('genaiops.adminKey'));
    const labels = page.locator('#prompt-labels');
    await labels.locator('input[name=label]').fill('production');
    await labels.getByRole('button', { name: 'Move to v1…' }).click();
    await labels.getByRole('button', { name: 'Move label' }).click();
    await page.waitForSelector('#prompt-labels [role=alert]');
    assert.match(await labels.locator('[role=alert]').innerText(), /needs the admin key: sign in/);
    assert.equal(await labelAt(gw, ANSWER, 'production', auth), 2);
    await shot(page, 'prompt-label-refused');

    // the shell asks for the key; signing in redraws the page, and the move works
    await page.waitForSelector('#sign-in-dialog[open]');
    await page.fill('#sign-in-key', KEY);
    await page.click('#sign-in-form button[type=submit]');
    await page.waitForSelector('#sign-in-dialog:not([open])', { state: 'attached' });
    await settled(page);
    await labels.locator('input[name=label]').fill('production');
    await labels.getByRole('button', { name: 'Move to v1…' }).click();
    await labels.getByRole('button', { name: 'Move label' }).click();
    await page.waitForFunction(() => /Moved production to v1 \(was v2\)/.test(document.querySelector('#prompt-labels').textContent));
    assert.equal(await labelAt(gw, ANSWER, 'production', auth), 1);
    assert.match(await labels.locator('table.pr-history tbody tr').first().innerText(), /production\s+v2 → v1\s+admin\s+set/);
    assertClean(page, [/401/]);
  });

  test('a protected label refused with 403 shows the server\'s reason in place', async () => {
    // With an admin key configured the REST API asks for it before any
    // label rule (401 above), so the 403 protected_label answer is played
    // back here to check how the page shows it.
    const page = await openPage(browser);
    await page.addInitScript((k) => sessionStorage.setItem('genaiops.adminKey', k), KEY); // signed in
    await page.route('**/api/v1/prompts/*/labels', (route) => route.fulfill({
      status: 403, contentType: 'application/json',
      body: JSON.stringify({ error: { message: "label 'production' is protected: pointing it at a version needs the admin key",
        type: 'invalid_request_error', param: 'labels', code: 'protected_label' } }),
    }));
    await page.goto(pageOf(gw, ANSWER, '?version=3'));
    await settled(page);
    const labels = page.locator('#prompt-labels');
    await labels.locator('input[name=label]').fill('production');
    await labels.getByRole('button', { name: 'Move to v3…' }).click();
    await labels.getByRole('button', { name: 'Move label' }).click();
    await page.waitForSelector('#prompt-labels [role=alert]');
    assert.match(await labels.locator('[role=alert]').innerText(), /label 'production' is protected[\s\S]*Sign in with the admin key/);
    assertClean(page, [/403/]);
  });
});
