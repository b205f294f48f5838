// prompts.test.mjs - the prompt registry's control plane end to end: the
// example prompt set (examples/prompts) pushed with `genaiops prompt`
// against a temporary store, then list/show/render/diff/label/rollback/
// history/pull/run through the CLI (local store and --server) and the REST
// API, the Langfuse-compatible read path, and the errors: unknown prompt,
// label or version -> 404 naming it; template syntax error -> 400 with line
// and column; missing variables -> 400 listing them; a protected label
// without the admin key -> refused; a bad file in the folder -> the push
// names file and line and changes nothing; a re-push -> no new versions.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { BIN, ROOT, startGateway, tempDir } from './lib.mjs';

const ADMIN = 'adm-prompts-secret';
const auth = { authorization: `Bearer ${ADMIN}` };
const EXAMPLES = path.join(ROOT, 'examples', 'prompts');
const VARS = ['--var', 'company=Acme', '--var', 'question=Where is my order?'];

async function api(gw, p, method = 'GET', body, headers = auth) {
  const init = { method, headers: { ...headers, 'content-type': 'application/json' } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const r = await fetch(`${gw.url}${p}`, init);
  const text = await r.text();
  let j;
  try { j = JSON.parse(text); } catch { j = text; }
  return { status: r.status, body: j, headers: r.headers };
}

describe('prompt registry: CLI, REST and the Langfuse path', () => {
  let gw, configFile, work;
  // `genaiops prompt ...`: local (against the gateway's store) unless args name --server.
  const cli = (args, env = {}) => spawnSync(BIN, ['prompt', ...args], {
    encoding: 'utf8', timeout: 20000,
    env: { ...process.env, GENAIOPS_SERVER: '', GENAIOPS_ADMIN_KEY: '', GENAIOPS_CONFIG: '', USER: 'tester', ...env },
  });
  const local = (args, env) => cli([...args, '--config', configFile], env);
  const remote = (args, env) => cli([...args, '--server', gw.url, '--admin-key', ADMIN], env);
  const ok = (r) => { assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`); return r.stdout; };
  const versionsOf = async () => Object.fromEntries((await api(gw, '/api/v1/prompts')).body.data.map((p) => [p.name, p.latest_version]));

  before(async () => {
    gw = await startGateway({
      config: `
server: { listen: @LISTEN@, workers: 2, admin_key: ${ADMIN} }
prompts: { protected_labels: [production], poll_ms: 50ms }
`,
    });
    configFile = path.join(gw.dir, 'genaiops.yaml');
    work = tempDir('genaiops-prompts-');
  });
  after(async () => { if (gw) await gw.stop(); });

  it('explains every subcommand with an example', () => {
    const out = ok(cli(['--help']));
    for (const sub of ['push', 'pull', 'list', 'show', 'diff', 'label', 'rollback', 'history', 'render', 'run']) {
      assert.match(out, new RegExp(`^  ${sub} `, 'm'), sub);
      assert.match(out, new RegExp(`genaiops prompt ${sub} `), `an example of ${sub}`);
    }
    assert.equal(cli([]).status, 2);
    assert.equal(cli(['frobnicate']).status, 2);
    assert.match(cli(['show']).stderr, /missing arguments: genaiops prompt show REF/);
    assert.equal(cli(['show', 'a', '--bogus']).status, 2);
    assert.equal(cli(['list', '--var', 'a=b']).status, 2);
  });

  it('pushes the example set as shipped, and a re-push creates no versions', async () => {
    const out = ok(local(['push', EXAMPLES, '--message', 'first cut']));
    assert.deepEqual(out.trim().split('\n').map((l) => l.replace(/\s+/g, ' ')),
      ['shared/tone v1 (new)', 'support/answer v1 (new)', 'support/summarize v1 (new)']);
    assert.deepEqual(await versionsOf(), { 'shared/tone': 1, 'support/answer': 1, 'support/summarize': 1 });
    const again = ok(local(['push', EXAMPLES]));
    assert.equal((again.match(/\(unchanged\)/g) || []).length, 3, again);
    const viaServer = JSON.parse(ok(remote(['push', EXAMPLES, '--json'])));
    assert.deepEqual(viaServer.data.map((x) => [x.name, x.version, x.created]),
      [['shared/tone', 1, false], ['support/answer', 1, false], ['support/summarize', 1, false]]);
    assert.deepEqual(await versionsOf(), { 'shared/tone': 1, 'support/answer': 1, 'support/summarize': 1 });
    const v = await api(gw, '/api/v1/prompts/support/answer');
    assert.equal(v.status, 200);
    assert.equal(v.body.type, 'chat');
    assert.equal(v.body.author, 'tester');
    assert.equal(v.body.message, 'support answers in the house tone', 'the file\'s message wins over --message');
    assert.equal(v.body.config.model, 'sim/echo');
    assert.equal((await api(gw, '/api/v1/prompts/shared/tone')).body.message, 'the house tone');
  });

  it('lists and shows, locally and through the server, with the same JSON', async () => {
    const l = JSON.parse(ok(local(['list', '--json'])));
    const r = JSON.parse(ok(remote(['list', '--json'])));
    assert.deepEqual(l, r);
    assert.deepEqual(l.data.map((p) => p.name), ['shared/tone', 'support/answer', 'support/summarize']);
    assert.deepEqual(JSON.parse(ok(local(['list', '--prefix', 'support/', '--json']))).data.map((p) => p.name),
      ['support/answer', 'support/summarize']);
    const text = ok(local(['list']));
    assert.match(text, /^NAME\s+TYPE\s+LATEST/m);
    assert.match(text, /^support\/summarize\s+text\s+1\s/m);
    const show = ok(local(['show', 'support/answer']));
    assert.match(show, /^\[system\]\nYou answer customer questions for \{\{company\}\}\.\n\{\{> shared\/tone\}\}/m);
    assert.match(show, /^variables\s+company, policies, question$/m);
    const sl = JSON.parse(ok(local(['show', 'support/answer:1', '--json'])));
    const sr = JSON.parse(ok(remote(['show', 'support/answer:1', '--json'])));
    assert.deepEqual(sl, sr);
    assert.match(sl.hash, /^sha256:[0-9a-f]{64}$/);
    const md = JSON.parse(ok(local(['show', 'support/summarize', '--json'])));
    assert.equal(md.type, 'text');
    assert.match(md.template, /^Summarize this support conversation with \{\{customer\.name\}\}/);
  });

  it('renders with partials and variables; missing variables are listed', async () => {
    const want = 'You answer customer questions for Acme.\nBe friendly, precise and brief.';
    const l = ok(local(['render', 'support/answer', ...VARS]));
    assert.ok(l.startsWith(`[system]\n${want}`), l);
    assert.match(l, /\n\[user\]\nWhere is my order\?\n$/);
    assert.equal(ok(remote(['render', 'support/answer', ...VARS])), l);
    const vfile = path.join(work, 'vars.json');
    writeFileSync(vfile, JSON.stringify({ customer: { name: 'Ann' }, max_words: 40, urgent: true, transcript: 'hi', formal: true }));
    const s = ok(local(['render', 'support/summarize', '--vars', vfile, '--var', 'customer.name=Bob']));
    assert.match(s, /^Summarize this support conversation with Bob in at most 40 words\.\nStart the summary with "URGENT:"\.\n/);
    const j = JSON.parse(ok(local(['render', 'support/answer', ...VARS, '--var', 'formal=yes', '--json'])));
    assert.equal(j.version, 1);
    assert.equal(j.messages.length, 2);
    assert.match(j.messages[0].content, /Address the customer formally\./);
    assert.deepEqual(j.config, { model: 'sim/echo', temperature: 0.2, max_tokens: 300 });

    const miss = local(['render', 'support/answer']);
    assert.equal(miss.status, 1);
    assert.match(miss.stderr, /missing variables: company, question/);
    assert.match(remote(['render', 'support/answer']).stderr, /missing variables: company, question \(HTTP 400\)/);
    const rest = await api(gw, '/api/v1/prompts/support%2Fanswer/render', 'POST', { variables: { company: 'Acme' } });
    assert.equal(rest.status, 400);
    assert.equal(rest.body.error.code, 'missing_variables');
    assert.deepEqual(rest.body.error.missing, ['question']);
    const good = await api(gw, '/api/v1/prompts/support/summarize/render', 'POST',
      { version: 1, variables: { customer: { name: 'Ann' }, max_words: 10, transcript: 't' } });
    assert.equal(good.status, 200);
    assert.match(good.body.text, /^Summarize this support conversation with Ann in at most 10 words\.\n\nConversation:\nt\n?$/);
    assert.equal((await api(gw, '/api/v1/prompts/support/answer/render', 'POST', { variables: [1] })).status, 400);
    assert.equal((await api(gw, '/api/v1/prompts/support/answer/render', 'POST', { label: 'x', version: 1 })).status, 400);
  });

  it('a changed file makes one new version; diff shows template and config', async () => {
    const dir = path.join(work, 'set');
    cpSync(EXAMPLES, dir, { recursive: true });
    const file = path.join(dir, 'support', 'answer.yaml');
    writeFileSync(file, readFileSync(file, 'utf8')
      .replace('You answer customer questions for {{company}}.', 'You answer questions for {{company}} customers.')
      .replace('temperature: 0.2', 'temperature: 0.5'));
    const out = ok(local(['push', dir]));
    assert.match(out, /^support\/answer\s+v2 \(new\)$/m);
    assert.match(out, /^shared\/tone\s+v1 \(unchanged\)$/m);
    assert.deepEqual(await versionsOf(), { 'shared/tone': 1, 'support/answer': 2, 'support/summarize': 1 });
    const d = ok(local(['diff', 'support/answer', '1', '2']));
    assert.match(d, /^--- support\/answer:1\n\+\+\+ support\/answer:2\n/);
    assert.match(d, /^-You answer customer questions for \{\{company\}\}\.$/m);
    assert.match(d, /^\+You answer questions for \{\{company\}\} customers\.$/m);
    assert.match(d, /^-\s+"temperature": 0\.2,?$/m);
    assert.match(d, /^\+\s+"temperature": 0\.5,?$/m);
    assert.equal(ok(local(['diff', 'support/answer:1', 'support/answer@latest'])), d);
    assert.equal(ok(remote(['diff', 'support/answer', '1', 'latest'])), d);
    assert.match(ok(local(['diff', 'support/answer', '2', '2'])), /no differences between support\/answer:2 and support\/answer:2/);
    const rest = await api(gw, '/api/v1/prompts/support/answer/diff?from=1&to=2');
    assert.equal(rest.status, 200);
    assert.equal(rest.body.changed, true);
    assert.equal(`${rest.body.template}\n${rest.body.config}`, d);
    assert.equal((await api(gw, '/api/v1/prompts/support/answer/diff?from=1')).body.error.param, 'to');
    const versions = await api(gw, '/api/v1/prompts/support/answer/versions');
    assert.deepEqual(versions.body.data.map((v) => v.version), [2, 1]);
  });

  it('labels, protected labels, rollback and history', async () => {
    // production is protected and an admin key is configured: not without it
    const refused = local(['label', 'support/answer:1', 'production']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /label 'production' is protected/);
    assert.equal((await api(gw, '/api/v1/prompts/support/answer?label=production')).status, 404);
    const refusedPush = local(['push', EXAMPLES, '--label', 'production']);
    assert.equal(refusedPush.status, 1);
    assert.match(refusedPush.stderr, /protected/);
    // staging is not protected
    assert.match(ok(local(['label', 'support/answer:1', 'staging'])), /^support\/answer: staging -> v1 \(was unset\)$/m);
    assert.match(ok(local(['label', 'support/answer:1', 'production', '--admin-key', ADMIN])),
      /^support\/answer: production -> v1 \(was unset\)$/m);
    assert.match(ok(remote(['label', 'support/answer', 'production'])), /^support\/answer: production -> v2 \(was v1\)$/m);
    assert.equal((await api(gw, '/api/v1/prompts/support/answer?label=production')).body.version, 2);
    // NAME@OTHER: where OTHER points
    assert.match(ok(local(['label', 'support/answer@staging', 'canary'])), /canary -> v1/);
    assert.match(ok(local(['rollback', 'support/answer', '--admin-key', ADMIN])),
      /^support\/answer: production rolled back to v1 \(was v2\)$/m);
    assert.equal((await api(gw, '/api/v1/prompts/support/answer?label=production')).body.version, 1);
    assert.equal(local(['rollback', 'support/answer']).status, 1, 'rollback of a protected label needs the key');
    const again = await api(gw, '/api/v1/prompts/support/answer/rollback', 'POST', {});
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'nothing_to_roll_back');
    const h = JSON.parse(ok(local(['history', 'support/answer', '--label', 'production', '--json'])));
    assert.deepEqual(h.data.map((m) => [m.from, m.to, m.reason, m.who]),
      [[2, 1, 'rollback', 'tester'], [1, 2, 'set', 'admin'], [null, 1, 'set', 'tester']]);
    const ht = ok(remote(['history', 'support/answer']));
    assert.match(ht, /^TIME\s+LABEL\s+FROM\s+TO\s+REASON\s+WHO$/m);
    assert.match(ht, /production\s+v2\s+v1\s+rollback\s+tester$/m);
    assert.match(ht, /canary\s+-\s+v1\s+set\s+tester$/m);
    const mv = await api(gw, '/api/v1/prompts/support/answer/labels', 'POST', { label: 'staging', version: 2 });
    assert.deepEqual(mv.body, { name: 'support/answer', label: 'staging', version: 2, previous: 1 });
    assert.equal((await api(gw, '/api/v1/prompts/support/answer/labels', 'POST', { label: 'latest', version: 1 })).status, 400);
    assert.equal((await api(gw, '/api/v1/prompts/support/answer/labels', 'POST', { label: 'Bad Label' })).status, 400);
    const moved = await api(gw, '/api/v1/prompts/support/answer/rollback', 'POST', { label: 'staging' });
    assert.deepEqual(moved.body, { name: 'support/answer', label: 'staging', version: 1, previous: 2 });
    assert.equal((await api(gw, '/api/v1/prompts/support/answer/history?label=staging')).body.data[0].who, 'admin');
  });

  it('the control plane needs the admin key', async () => {
    const r = await api(gw, '/api/v1/prompts/support/answer/labels', 'POST', { label: 'production', version: 2 }, {});
    assert.equal(r.status, 401);
    assert.equal((await api(gw, '/api/v1/prompts', 'GET', undefined, {})).status, 401);
    const c = cli(['list', '--server', gw.url]);
    assert.equal(c.status, 1);
    assert.match(c.stderr, /HTTP 401/);
  });

  it('serves the Langfuse read path', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`pk-lf-any:${ADMIN}`).toString('base64')}` };
    const r = await api(gw, '/api/public/v2/prompts/support%2Fanswer', 'GET', undefined, basic);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = r.body;
    assert.equal(p.name, 'support/answer');
    assert.equal(p.version, 1, 'production by default');
    assert.equal(p.type, 'chat');
    assert.equal(p.id, 'support/answer:1');
    assert.ok(Array.isArray(p.prompt) && p.prompt.every((m) => Object.keys(m).sort().join() === 'content,role'));
    assert.equal(p.prompt[1].content, '{{question}}');
    assert.deepEqual(p.config, { model: 'sim/echo', temperature: 0.2, max_tokens: 300 });
    assert.ok(p.labels.includes('production') && p.labels.includes('canary'));
    assert.deepEqual(p.tags, []);
    assert.equal(p.commitMessage, 'support answers in the house tone');
    assert.match(p.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(p.updatedAt, p.createdAt);
    const v2 = await api(gw, '/api/public/v2/prompts/support/answer?version=2', 'GET', undefined, basic);
    assert.equal(v2.body.version, 2);
    assert.deepEqual(v2.body.labels, ['latest']);
    const text = await api(gw, '/api/public/v2/prompts/support%2Fsummarize?label=latest', 'GET', undefined, basic);
    assert.equal(text.body.type, 'text');
    assert.equal(typeof text.body.prompt, 'string');
    const nf = await api(gw, '/api/public/v2/prompts/support%2Fsummarize', 'GET', undefined, basic);
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error, 'LangfuseNotFoundError');
    assert.match(nf.body.message, /support\/summarize.*production/);
    assert.equal((await api(gw, '/api/public/v2/prompts/nope', 'GET', undefined, basic)).status, 404);
    assert.equal((await api(gw, '/api/public/v2/prompts/support%2Fanswer', 'GET', undefined, {})).status, 401);
    assert.equal((await api(gw, '/api/public/v2/prompts/support%2Fanswer', 'POST', '{}', basic)).status, 405);
    const list = await api(gw, '/api/public/v2/prompts?limit=2', 'GET', undefined, basic);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.meta, { page: 1, limit: 2, totalItems: 3, totalPages: 2 });
    assert.deepEqual(list.body.data[1].versions, [1, 2]);
    assert.equal(list.body.data[1].name, 'support/answer');
  });

  it('unknown prompt, label or version: 404 naming it', async () => {
    const cases = [
      ['/api/v1/prompts/nope/answer', 'prompt_not_found', /nope\/answer/],
      ['/api/v1/prompts/support/answer?label=gone', 'label_not_found', /support\/answer.*gone/],
      ['/api/v1/prompts/support/answer?version=99', 'version_not_found', /support\/answer.*99/],
      ['/api/v1/prompts/nope/history', 'prompt_not_found', /nope/],
    ];
    for (const [p, code, re] of cases) {
      const r = await api(gw, p);
      assert.equal(r.status, 404, p);
      assert.equal(r.body.error.code, code, p);
      assert.match(r.body.error.message, re, p);
    }
    for (const args of [['show', 'nope'], ['show', 'support/answer@gone'], ['render', 'support/answer:99'], ['history', 'nope']]) {
      const c = local(args);
      assert.equal(c.status, 1, args.join(' '));
      assert.match(c.stderr, /nope|gone|99/, args.join(' '));
      assert.match(remote(args).stderr, /HTTP 404/, args.join(' '));
    }
    assert.equal(local(['show', 'bad name']).status, 2);
    assert.equal((await api(gw, '/api/v1/prompts/..%2Fx')).status, 400);
    assert.equal((await api(gw, '/api/v1/prompts/a%zz')).status, 400);
    const m = await api(gw, '/api/v1/prompts/support/answer', 'DELETE');
    assert.equal(m.status, 405);
    assert.equal(m.headers.get('allow'), 'GET');
  });

  it('template syntax errors: 400 with line and column; saves are validated', async () => {
    let r = await api(gw, '/api/v1/prompts', 'POST', { name: 'bad/one', template: 'Hello\n  {{#items}} never closed' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'template_error');
    assert.match(r.body.error.message, /line 2, column \d+/);
    r = await api(gw, '/api/v1/prompts', 'POST', { name: 'bad/two', messages: [{ role: 'system', content: 'ok' }, { role: 'user', content: '{{a' }] });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /message 2.*line 1, column \d+/);
    assert.equal((await api(gw, '/api/v1/prompts/bad/one')).status, 404);
    for (const [body, param] of [
      [{ template: 'x' }, 'name'],
      [{ name: 'x', template: 'x', extra: 1 }, 'extra'],
      [{ name: 'x', type: 'chat', template: 'x' }, 'template'],
      [{ name: 'x', template: 'x', labels: ['Nope!'] }, 'labels'],
      [{ name: 'x', template: 'x', config: [] }, 'config'],
    ]) {
      const e = await api(gw, '/api/v1/prompts', 'POST', body);
      assert.equal(e.status, 400, JSON.stringify(body));
      assert.equal(e.body.error.param, param, JSON.stringify(body));
    }
    assert.equal((await api(gw, '/api/v1/prompts', 'POST', '{not json')).body.error.code, 'invalid_json');
    // a chat prompt cannot become a text prompt
    r = await api(gw, '/api/v1/prompts', 'POST', { name: 'support/answer', template: 'now text' });
    assert.equal(r.status, 409);
  });

  it('a bad file in the folder: push names file and line and changes nothing', async () => {
    const dir = path.join(work, 'broken');
    cpSync(EXAMPLES, dir, { recursive: true });
    writeFileSync(path.join(dir, 'support', 'summarize.md'), readFileSync(path.join(dir, 'support', 'summarize.md'), 'utf8') + '\nextra {{#oops}}\n');
    mkdirSync(path.join(dir, 'zz'));
    writeFileSync(path.join(dir, 'zz', 'fine.md'), 'a fine new prompt\n');
    const before = await versionsOf();
    const r = local(['push', dir]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /support\/summarize\.md:\d+(:\d+)?: .*oops/);
    assert.match(r.stderr, /nothing was pushed/);
    assert.deepEqual(await versionsOf(), before);
    // an unknown key is named with its line
    writeFileSync(path.join(dir, 'support', 'summarize.md'), '---\nmodle: x\n---\nhi\n');
    const k = local(['push', dir]);
    assert.equal(k.status, 1);
    assert.match(k.stderr, /summarize\.md:2(:\d+)?: .*modle/);
    assert.equal(remote(['push', dir]).status, 1);
    assert.deepEqual(await versionsOf(), before);
    assert.equal(local(['push', path.join(work, 'no-such-dir')]).status, 1);
  });

  it('push through REST is all or nothing and names the failing input', async () => {
    const before = await versionsOf();
    const r = await api(gw, '/api/v1/prompts/push', 'POST', {
      prompts: [{ name: 'batch/a', template: 'A' }, { name: 'batch/b', template: '{{#x}}', source: 'batch/b.md' }],
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /batch\/b/);
    assert.deepEqual(await versionsOf(), before);
    const okr = await api(gw, '/api/v1/prompts/push', 'POST', {
      prompts: [{ name: 'batch/a', template: 'A' }, { name: 'batch/b', messages: [{ role: 'user', content: 'B' }] }],
      author: 'ci', message: 'batch', labels: ['staging'],
    });
    assert.equal(okr.status, 200, JSON.stringify(okr.body));
    assert.deepEqual(okr.body.data, [{ name: 'batch/a', version: 1, created: true }, { name: 'batch/b', version: 1, created: true }]);
    const b = (await api(gw, '/api/v1/prompts/batch/b?label=staging')).body;
    assert.equal(b.author, 'ci');
    assert.equal(b.message, 'batch');
  });

  it('concurrent saves never lose or duplicate a version number', async () => {
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      api(gw, '/api/v1/prompts', 'POST', { name: 'race/p', template: `variant ${i}` })));
    assert.ok(rs.every((r) => r.status === 201), JSON.stringify(rs.map((r) => r.body)));
    assert.deepEqual(rs.map((r) => r.body.version).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('pull writes the files back; pushing them creates nothing', async () => {
    const out = path.join(work, 'pulled');
    const before = await versionsOf();
    const p = ok(local(['pull', out, '--prefix', 'support/']));
    assert.match(p, /^support\/answer\.yaml\s+v2$/m);
    assert.match(p, /^support\/summarize\.md\s+v1$/m);
    assert.ok(existsSync(path.join(out, 'support', 'answer.yaml')));
    assert.ok(!existsSync(path.join(out, 'shared')));
    const pushed = ok(local(['push', out]));
    assert.equal((pushed.match(/\(unchanged\)/g) || []).length, 2, pushed);
    assert.deepEqual(await versionsOf(), before);
    const prod = path.join(work, 'pulled-prod');
    const r = remote(['pull', prod, '--label', 'production']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^support\/answer\.yaml\s+v1$/m);
    assert.match(r.stderr, /skipped support\/summarize: it has no label 'production'/);
    assert.deepEqual(readdirSync(path.join(prod, 'support')), ['answer.yaml']);
  });

  it('survives hostile paths, queries and bodies', async () => {
    const long = 'a/'.repeat(400) + 'b';
    const paths = [
      `/api/v1/prompts/${long}`, `/api/v1/prompts/${'%41'.repeat(3000)}`, '/api/v1/prompts/%00', '/api/v1/prompts/%',
      '/api/v1/prompts/%2', '/api/v1/prompts///versions', '/api/v1/prompts/a//b',
      '/api/v1/prompts/support/answer?label=%00', '/api/v1/prompts/support/answer?version=-1',
      '/api/v1/prompts/support/answer?version=99999999999999999999', '/api/v1/prompts/support/answer?label=a&label=b',
      `/api/v1/prompts/support/answer?label=${'x'.repeat(5000)}`, '/api/v1/prompts/support/answer?&&=&x',
      '/api/v1/prompts/support/answer/diff?from=%40&to=%3A', '/api/v1/prompts/support/answer/diff?from=a@b@c&to=1',
      '/api/v1/prompts/support/answer/history?label=%ff', '/api/v1/promptsx',
      `/api/public/v2/prompts/${long}`, '/api/public/v2/prompts/%', '/api/public/v2/prompts?page=0&limit=1000',
      '/api/public/v2/prompts?page=99999999999', '/api/public/v2/prompts/support%2Fanswer?version=0',
    ];
    for (const p of paths) {
      const r = await api(gw, p);
      assert.ok([400, 404].includes(r.status), `${p}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    }
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const bodies = [
      '[]', '"x"', 'null', '{"name": 1}', `{"name": "x", "messages": ${deep}}`, '{"name":"x","messages":[1,2]}',
      '{"name":"x","messages":[{"role":"user"}]}', '{"name":"x","template":"\u0000"}', '{"name":"x","template":"a","labels":"production"}',
      '{"name":"x","template":"a","labels":[1]}', '{"name":"x","template":"a","a":1,"a":2}', '{"name":"x","template":"a","config":{"a":1}',
      JSON.stringify({ name: 'x', template: 'a', labels: Array.from({ length: 100 }, (_, i) => `l${i}`) }),
      JSON.stringify({ name: 'x', template: '{{'.repeat(10000) }),
    ];
    for (const b of bodies) {
      const r = await api(gw, '/api/v1/prompts', 'POST', b);
      assert.equal(r.status, 400, `${b.slice(0, 80)}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    }
    for (const b of ['[]', '{"prompts": {}}', '{"prompts": [1]}', '{"prompts": [], "author": 1}', '{"prompts": [{"name": "a"}]}']) {
      assert.equal((await api(gw, '/api/v1/prompts/push', 'POST', b)).status, 400, b);
    }
    for (const [p, b] of [['labels', '{"label": 1}'], ['labels', '{"label": "a", "version": "1"}'], ['labels', '{"label": "a", "version": -1}'],
      ['rollback', '{"label": ""}'], ['render', '{"version": 0}'], ['render', '{"variables": "x"}'], ['render', '{"x": 1}']]) {
      assert.equal((await api(gw, `/api/v1/prompts/support/answer/${p}`, 'POST', b)).status, 400, `${p} ${b}`);
    }
    // a partial cycle and a deep object are render errors, not crashes
    await api(gw, '/api/v1/prompts', 'POST', { name: 'cyc/a', template: 'A {{> cyc/b}}' });
    await api(gw, '/api/v1/prompts', 'POST', { name: 'cyc/b', template: 'B {{> cyc/a}}' });
    const cyc = await api(gw, '/api/v1/prompts/cyc/a/render', 'POST', {});
    assert.equal(cyc.status, 400);
    assert.match(cyc.body.error.message, /cycle|deep/);
    const chatPartial = await api(gw, '/api/v1/prompts', 'POST', { name: 'cyc/c', template: '{{> support/answer}}' });
    assert.equal(chatPartial.status, 201);
    const cp = await api(gw, '/api/v1/prompts/cyc/c/render', 'POST', {});
    assert.equal(cp.status, 400);
    assert.match(cp.body.error.message, /chat prompt/);
    const obj = await api(gw, '/api/v1/prompts/support/answer/render', 'POST', { variables: { company: { a: 1 }, question: 'q' } });
    assert.equal(obj.status, 400);
    assert.equal((await api(gw, '/healthz', 'GET', undefined, {})).status, 200);
  });

  it('run sends the prompt through the gateway and prints answer, tokens, cost and latency', async () => {
    const r = remote(['run', 'support/answer@production', ...VARS]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Where is my order\?/);
    assert.match(r.stdout, /^-- support\/answer v1 via sim\/echo: tokens \d+ in \/ \d+ out, cost \S+, latency \d+(\.\d)? ms$/m);
    const j = JSON.parse(ok(remote(['run', 'support/answer', ...VARS, '--json', '--model', 'sim/echo'])));
    assert.equal(j.prompt.version, 2);
    assert.equal(j.response.object, 'chat.completion');
    assert.ok(j.latency_ms >= 0);
    const miss = remote(['run', 'support/answer@production']);
    assert.equal(miss.status, 1);
    assert.match(miss.stderr, /missing variables/);
  });
});
