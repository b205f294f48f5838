// overview.test.mjs - the console's Overview page (/ui/) in Chromium against
// a server seeded with simulator traffic (plain, streamed and failing
// requests to two models): the tiles show the numbers of
// GET /api/v1/stats/overview (formatted by the page's own ui.js), the range
// picker puts the range in the URL and reloads, grouping by model lists the
// groups, a group's row (by Enter) and a chart's bucket (by a click) open
// /ui/traces with the matching filters, and the empty and error states
// show. No console errors; a screenshot of each state.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertClean, chat, consoleConfig, get, launch, openPage, settled, shot, startGateway, waitTraces } from './lib.mjs';

describe('console: overview', () => {
  let gw;
  let browser;
  const SENT = 9;
  before(async () => {
    gw = await startGateway({ config: consoleConfig() });
    browser = await launch();
    for (let i = 0; i < 4; i++) assert.equal((await chat(gw, `Hello number ${i}`)).status, 200);
    for (let i = 0; i < 3; i++) {
      const r = await chat(gw, `stream ${i}`, { model: 'sim/lorem', stream: true, max_tokens: 12, simulator: { ttft_ms: 10 + 5 * i } });
      assert.equal(r.status, 200);
    }
    assert.equal((await chat(gw, 'this one fails', { model: 'sim/error-500' })).status, 500);
    assert.equal((await chat(gw, 'and this', { simulator: { fail: 503 } })).status, 503);
    await waitTraces(gw, SENT);
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  // The page's own formats, so the tiles can be compared with the API.
  const format = (page, kind, v) => page.evaluate(async ([k, x]) => (await import('/ui/js/ui.js')).fmt[k](x), [kind, v]);
  const tileText = async (page, key) => (await page.locator(`[data-tile="${key}"] .tile-value`).innerText()).trim();

  test('the tiles show the statistics of the last 24 hours', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/`);
    await settled(page);
    await page.locator('[data-tile="requests"]').waitFor();
    const s = (await get(`${gw.url}/api/v1/stats/overview?from=24h`)).body;
    assert.equal(s.totals.requests, SENT);
    assert.equal(await tileText(page, 'requests'), await format(page, 'int', s.totals.requests));
    assert.equal(await tileText(page, 'error-rate'), await format(page, 'pct', s.totals.error_rate));
    assert.equal(await tileText(page, 'latency-p50'), await format(page, 'ms', s.totals.latency_ms.p50));
    assert.equal(await tileText(page, 'latency-p95'), await format(page, 'ms', s.totals.latency_ms.p95));
    assert.equal(await tileText(page, 'ttft-p50'), await format(page, 'ms', s.totals.ttft_ms.p50));
    assert.equal(await tileText(page, 'tokens'), await format(page, 'short', s.totals.input_tokens + s.totals.output_tokens));
    assert.equal(await tileText(page, 'cost'), await format(page, 'usd', s.totals.cost_usd));
    assert.equal(await page.locator('figure.chart').count(), 5);
    assert.equal(await page.locator('[data-range="24h"]').getAttribute('aria-pressed'), 'true');
    await shot(page, 'overview');
    assertClean(page);
  });

  test('the range picker changes the URL and reloads', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/`);
    await settled(page);
    const asked = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/stats/overview')) asked.push(new URL(r.url()).searchParams.get('from')); });
    await page.click('[data-range="1h"]');
    await page.waitForURL(/\/ui\/\?from=1h$/);
    await page.locator('[data-range="1h"][aria-pressed="true"]').waitFor();
    await page.locator('[data-tile="requests"]').waitFor();
    assert.equal(await tileText(page, 'requests'), String(SENT));
    await page.click('[data-range="15m"]');
    await page.waitForURL(/from=15m/);
    await page.locator('[data-range="15m"][aria-pressed="true"]').waitFor();
    assert.deepEqual(asked.slice(0, 2), ['1h', '15m']);
    // back to the default: the parameter goes away
    await page.click('[data-range="24h"]');
    await page.waitForURL((u) => u.pathname === '/ui/' && !u.search);
    // a custom range
    await page.fill('input[name=from]', '2020-01-01T00:00');
    await page.fill('input[name=to]', '2020-01-02T00:00');
    await page.click('form.range-custom button[type=submit]');
    await page.waitForURL(/from=2020-01-0/);
    await page.locator('.state.empty').waitFor();
    assert.match(await page.locator('.state.empty').innerText(), /No requests in this range/);
    await shot(page, 'overview-empty');
    // the URL alone gives the same view
    const page2 = await openPage(browser);
    await page2.goto(page.url());
    await settled(page2);
    assert.match(await page2.locator('main').innerText(), /No requests in this range/);
    assert.equal(await page2.locator('input[name=from]').inputValue(), '2020-01-01T00:00');
    assertClean(page);
    assertClean(page2);
  });

  test('grouped by model: a group row opens its traces', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/`);
    await settled(page);
    await page.selectOption('select[name=by]', 'model');
    await page.waitForURL(/by=model/);
    await page.locator('table.list tbody tr').first().waitFor();
    const s = (await get(`${gw.url}/api/v1/stats/overview?by=model`)).body;
    assert.deepEqual(s.groups.map((g) => g.key), ['sim/echo', 'sim/lorem', 'sim/error-500']);
    assert.equal(await page.locator('table.list tbody tr').count(), s.groups.length);
    assert.match(await page.locator('table.list tbody tr').first().innerText(), /sim\/echo\s+5/);
    assert.ok((await page.locator('figure.chart .legend').first().innerText()).includes('sim/lorem'), 'a line per group');
    await shot(page, 'overview-by-model');
    await page.locator('table.list tbody tr').first().focus();
    await page.keyboard.press('j');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/ui\/traces\?model=sim%2Florem&from=.*&to=/);
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr').count(), 3);
    assertClean(page);
  });

  test('a click on a chart bucket opens the traces of that bucket', async () => {
    // A fixed 15-minute range around the seeded traces, so the page and this
    // test see the same buckets whenever it runs (with "from=15m" the bucket
    // of "now" is empty once a minute boundary has passed since seeding).
    const traces = await waitTraces(gw, SENT);
    const newest = Math.max(...traces.map((t) => Date.parse(t.start_time)));
    const from = Math.floor(newest / 60000) * 60000 - 10 * 60000;
    const range = `from=${from}&to=${from + 15 * 60000}`;
    const s = (await get(`${gw.url}/api/v1/stats/overview?${range}`)).body;
    assert.equal(s.bucket_s, 60);
    const k = s.series.findLastIndex((b) => b.requests > 0);
    assert.ok(k > 0, `a bucket with requests: ${JSON.stringify(s.series.map((b) => b.requests))}`);
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/?${range}`);
    await settled(page);
    const svg = page.locator('figure.chart svg').first();
    await svg.waitFor();
    const box = await svg.boundingBox();
    // the chart's geometry (chart.js): a 640-wide viewBox, 56 left and 12
    // right of padding, bucket i of n at 56 + i * 572 / (n - 1)
    const n = s.series.length;
    const px = box.x + ((56 + (k * 572) / (n - 1)) / 640) * box.width;
    await page.mouse.move(px, box.y + box.height / 2);
    await page.mouse.click(px, box.y + box.height / 2);
    await page.waitForURL(/\/ui\/traces\?from=.*&to=/);
    const u = new URL(page.url());
    const bFrom = Date.parse(u.searchParams.get('from'));
    const bTo = Date.parse(u.searchParams.get('to'));
    assert.equal(bTo - bFrom, 60000, 'one 1-minute bucket');
    assert.equal(bFrom, s.series[k].t, 'the bucket under the pointer');
    await settled(page);
    assert.equal(await page.locator('table.list tbody tr').count(), s.series[k].requests);
    assertClean(page);
  });

  test('a bad range shows the error from the API', async () => {
    const page = await openPage(browser);
    await page.goto(`${gw.url}/ui/?from=yesterday`);
    await settled(page);
    await page.locator('.state.error').waitFor();
    assert.match(await page.locator('.state.error').innerText(), /'from' must be/);
    assert.ok(await page.locator('.state.error button').isVisible(), 'a retry button');
    await shot(page, 'overview-error');
    assertClean(page, [/status of 400/]);
  });
});
