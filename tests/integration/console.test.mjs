// console.test.mjs - how `genaiops serve` serves the console's embedded
// assets under /ui/: the files with their types, the app's pages (paths
// without a dot get index.html), ETags and 304, the security headers, the
// redirect of /ui, and refusals (dot segments, unknown files, other methods).
// The pages themselves are tested in Chromium (tests/browser).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, rawExchange, startGateway, statusOf } from './lib.mjs';

const UI = path.join(ROOT, 'src', 'web', 'ui');

function assets(dir = UI, prefix = '') {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...assets(full, `${prefix}${name}/`));
    else out.push(`${prefix}${name}`);
  }
  return out;
}

describe('console assets', () => {
  let gw;
  before(async () => { gw = await startGateway(); });
  after(async () => { await gw?.stop(); });

  test('every file under src/web/ui is served byte for byte with its type', async () => {
    const files = assets();
    assert.ok(files.includes('index.html') && files.includes('js/app.js'));
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };
    for (const f of files) {
      const r = await fetch(`${gw.url}/ui/${f}`);
      assert.equal(r.status, 200, f);
      const body = Buffer.from(await r.arrayBuffer());
      assert.ok(body.equals(readFileSync(path.join(UI, f))), `${f} differs from the source`);
      const want = types[path.extname(f)];
      if (want) assert.ok(r.headers.get('content-type').startsWith(want), `${f}: ${r.headers.get('content-type')}`);
    }
  });

  test('pages of the app get index.html; /ui redirects to /ui/', async () => {
    const index = readFileSync(path.join(UI, 'index.html'), 'utf8');
    for (const p of ['/ui/', '/ui/traces', '/ui/traces/0123456789abcdef0123456789abcdef', '/ui/evals/compare', '/ui/prompts/my-prompt', '/ui/prompts/support%2Ftriage.v2']) {
      const r = await fetch(`${gw.url}${p}`);
      assert.equal(r.status, 200, p);
      assert.equal(await r.text(), index, p);
    }
    const r = await fetch(`${gw.url}/ui`, { redirect: 'manual' });
    assert.equal(r.status, 308);
    assert.equal(r.headers.get('location'), '/ui/');
  });

  test('ETag and If-None-Match; no-cache; security headers', async () => {
    const r = await fetch(`${gw.url}/ui/js/app.js`);
    const etag = r.headers.get('etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const csp = r.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    const again = await fetch(`${gw.url}/ui/js/app.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    const other = await fetch(`${gw.url}/ui/js/app.js`, { headers: { 'if-none-match': '"0000000000000000"' } });
    assert.equal(other.status, 200);
    const css = await fetch(`${gw.url}/ui/app.css`);
    assert.notEqual(css.headers.get('etag'), etag);
  });

  test('unknown files, dot segments and traversal are 404; other methods 405', async () => {
    for (const p of ['/ui/nope.js', '/ui/js/nope.css', '/ui/.hidden', '/ui/js/../index.html', '/ui//index.html', '/ui/js/./app.js']) {
      const raw = await rawExchange(gw.port, [`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
      assert.equal(statusOf(raw.data), 404, `${p}: ${raw.data.slice(0, 80)}`);
    }
    const r = await fetch(`${gw.url}/ui/js/app.js`, { method: 'POST', body: 'x' });
    assert.equal(r.status, 405);
    assert.equal(r.headers.get('allow'), 'GET, HEAD');
    const head = await fetch(`${gw.url}/ui/app.css`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), readFileSync(path.join(UI, 'app.css')).length);
  });

  test('the assets need no admin key even when the server has one; the API does', async () => {
    const keyed = await startGateway({ config: 'providers:\n  - { name: sim, type: simulator }\nserver: { admin_key: "k-test" }\n' });
    try {
      assert.equal((await fetch(`${keyed.url}/ui/traces`)).status, 200);
      assert.equal((await fetch(`${keyed.url}/api/v1/traces`)).status, 401);
      assert.match(keyed.logs(), /console: http:\/\/127\.0\.0\.1:\d+\/ui\//);
    } finally {
      await keyed.stop();
    }
  });
});
