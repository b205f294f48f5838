/*
 * test_files.c - prompts as code (src/prompt/files.c): parsing YAML and
 * Markdown prompt files, the errors with the file's line and column
 * (a table of bad files), reading a folder (sorting, skipping, symlinks,
 * size bound, duplicate names, all or nothing), the registry inputs, and
 * the write/read round trip checked through the registry's content hash.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "prompt/files.h"
#include "test.h"

static err_code parse(const char *path, const char *text, prompt_file *f, prompt_file_error *e)
{
    return prompt_file_parse(path, text, strlen(text), f, e);
}

TEST(files_parse_yaml_chat)
{
    const char *text = "type: chat                      # text or chat\n"
                       "messages:\n"
                       "  - { role: system, content: \"You answer for {{company}}.\" }\n"
                       "  - role: user\n"
                       "    content: |\n"
                       "      {{question}}\n"
                       "config: { model: gpt-4o-mini, temperature: 0.2, max_tokens: 200, stream: false, stop: ~,"
                       " tags: [a, 'b'] }\n"
                       "labels: [staging]\n"
                       "message: \"shorter answers\"\n";
    prompt_file f;
    prompt_file_error e;
    CHECK_INT(parse("support/answer.yaml", text, &f, &e), ERR_OK);
    CHECK_STR(f.path, "support/answer.yaml");
    CHECK_STR(f.name, "support/answer");
    CHECK_INT(f.type, PROMPT_CHAT);
    CHECK(f.template == NULL);
    CHECK_INT(json_array_size(f.messages), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(f.messages, 0), "content")),
              "You answer for {{company}}.");
    CHECK_STR(json_string_value(json_object_get(json_array_get(f.messages, 1), "role")), "user");
    CHECK_STR(json_string_value(json_object_get(json_array_get(f.messages, 1), "content")), "{{question}}\n");
    char *cfg = json_dumps(f.config, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(cfg, "{\"max_tokens\":200,\"model\":\"gpt-4o-mini\",\"stop\":null,\"stream\":false,"
                   "\"tags\":[\"a\",\"b\"],\"temperature\":0.20000000000000001}");
    free(cfg);
    CHECK_INT(f.nlabels, 1);
    CHECK_STR(f.labels[0], "staging");
    CHECK_STR(f.message, "shorter answers");
    prompt_file_clear(&f);
    prompt_file_clear(&f); /* twice is fine */
}

TEST(files_parse_text_and_markdown)
{
    prompt_file f;
    prompt_file_error e;
    CHECK_INT(parse("a/b.yml", "template: \"Hi {{name}}\"\nname: other/name\n", &f, &e), ERR_OK);
    CHECK_STR(f.name, "other/name");
    CHECK_INT(f.type, PROMPT_TEXT);
    CHECK_STR(f.template, "Hi {{name}}");
    CHECK_INT(json_object_size(f.config), 0);
    CHECK(f.message == NULL);
    prompt_file_clear(&f);

    const char *md = "---\nconfig:\n  model: m\nlabels: [production, staging]\n---\nHello {{name}},\n\n---\nbye\n";
    CHECK_INT(parse("greet.md", md, &f, &e), ERR_OK);
    CHECK_STR(f.name, "greet");
    CHECK_INT(f.type, PROMPT_TEXT);
    CHECK_STR(f.template, "Hello {{name}},\n\n---\nbye\n");
    CHECK_STR(json_string_value(json_object_get(f.config, "model")), "m");
    CHECK_INT(f.nlabels, 2);
    prompt_file_clear(&f);

    /* no front matter: all of it is the template */
    CHECK_INT(parse("x/plain.md", "Just {{text}}.\n---\n", &f, &e), ERR_OK);
    CHECK_STR(f.template, "Just {{text}}.\n---\n");
    prompt_file_clear(&f);
    /* CRLF fences, an empty front matter, an empty body */
    CHECK_INT(parse("c.md", "---\r\n---\r\nbody\r\n", &f, &e), ERR_OK);
    CHECK_STR(f.template, "body\r\n");
    prompt_file_clear(&f);
    CHECK_INT(parse("d.md", "---\nmessage: m\n---", &f, &e), ERR_OK);
    CHECK_STR(f.template, "");
    CHECK_STR(f.message, "m");
    prompt_file_clear(&f);
    CHECK_INT(parse("e.md", "", &f, &e), ERR_OK);
    CHECK_STR(f.template, "");
    prompt_file_clear(&f);
    /* the type is text unless messages say chat */
    CHECK_INT(parse("f.yaml", "type: text\ntemplate: ''\n", &f, &e), ERR_OK);
    CHECK_STR(f.template, "");
    prompt_file_clear(&f);
    CHECK_INT(parse("g.yaml", "messages:\n- role: user\n  content: hi\n  name: bob\n", &f, &e), ERR_OK);
    CHECK_INT(f.type, PROMPT_CHAT);
    CHECK_STR(json_string_value(json_object_get(json_array_get(f.messages, 0), "name")), "bob");
    prompt_file_clear(&f);
    /* explicit !!str keeps a plain scalar a string; quoted ones are strings */
    CHECK_INT(parse("h.yaml", "template: x\nconfig: {n: !!str 12, m: &q !!str true, k: *q, q: '1', i: 0x1f, "
                              "f: -1.5e3, e: , z: Null}\n", &f, &e), ERR_OK);
    char *cfg = json_dumps(f.config, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(cfg, "{\"e\":null,\"f\":-1500.0,\"i\":31,\"k\":\"true\",\"m\":\"true\",\"n\":\"12\",\"q\":\"1\","
                   "\"z\":null}");
    free(cfg);
    prompt_file_clear(&f);
}

TEST(files_parse_errors)
{
    static char big[(1u << 20) + 10];
    memset(big, 'a', sizeof big - 1);
    static const struct {
        const char *path, *text;
        int line, col;
        const char *words;
    } cases[] = {
        { "a.yaml", "template: x\ntempalte: y\n", 2, 1, "unknown key 'tempalte'" },
        { "a.yaml", "template: x\ntemplate: y\n", 2, 1, "appears twice" },
        { "a.yaml", "template: [\n", 2, 1, "bad YAML" },
        { "a.yaml", "- a\n- b\n", 1, 1, "mapping" },
        { "a.yaml", "config: {}\n", 1, 1, "needs 'template'" },
        { "a.yaml", "template: ~\n", 1, 11, "'template' must be a string" },
        { "a.yaml", "template: [x]\n", 1, 11, "'template' must be a string" },
        { "a.yaml", "template: x\nconfig: [1]\n", 2, 9, "'config' must be a mapping" },
        { "a.yaml", "template: x\nconfig: {t: .inf}\n", 2, 13, "no JSON form" },
        { "a.yaml", "template: x\nconfig: {n: 99999999999999999999}\n", 2, 13, "out of range" },
        { "a.yaml", "template: x\nconfig: {a: 1, a: 2}\n", 2, 16, "appears twice" },
        { "a.yaml", "template: x\nlabels: staging\n", 2, 9, "list" },
        { "a.yaml", "template: x\nlabels: [Prod]\n", 2, 10, "not valid" },
        { "a.yaml", "template: x\nlabels: [ok, latest]\n", 2, 14, "'latest'" },
        { "a.yaml", "template: x\nname: \"a b\"\n", 2, 7, "' '" },
        { "a b.yaml", "template: x\n", 0, 0, "from the file's path" },
        { "a.yaml", "type: html\ntemplate: x\n", 1, 7, "text or chat" },
        { "a.yaml", "type: chat\ntemplate: x\n", 2, 11, "not a template" },
        { "a.yaml", "type: chat\n", 1, 1, "needs 'messages'" },
        { "a.yaml", "messages: []\n", 1, 11, "non-empty list" },
        { "a.yaml", "messages: [hi]\n", 1, 12, "message 1 must be a mapping" },
        { "a.yaml", "messages:\n- content: x\n", 2, 3, "message 1 needs a role" },
        { "a.yaml", "messages:\n- role: user\n  content: 3\n", 3, 12, "needs a content string" },
        { "a.yaml", "template: a\n---\ntemplate: b\n", 3, 1, "more than one YAML document" },
        { "a.yaml", "template: |\n  line one\n  x {{ bad\n", 3, 5, "template error: unclosed tag" },
        { "a.yaml", "template: \"one\\ntwo {{x\"\n", 1, 21, "template error" },
        { "a.yaml", "template: 'it''s {{/y}}'\n", 1, 18, "closing tag 'y'" },
        { "a.yaml", "template: plain {{/y}}\n", 1, 17, "closing tag 'y'" },
        { "a.yaml",
          "messages:\n  - role: system\n    content: fine\n  - role: user\n    content: |\n      ok\n      "
          "{{#items}}\n",
          8, 1, "message 2 (user): template error: unclosed section" },
        { "a.yaml", "template: \"caf\xc3\xa9 {{\"\n", 1, 18, "unclosed tag" },
        { "a.yaml", "template: x\nconfig: &a [*a]\n", 0, 0, NULL },
        { "a.md", "---\nconfig: {}\nlabels: 3\n---\nbody\n", 3, 9, "list" },
        { "a.md", "---\ntemplate: x\n---\n", 2, 1, "not allowed in Markdown" },
        { "a.md", "---\ntype: chat\n---\n", 2, 7, "Markdown prompt is a text prompt" },
        { "a.md", "---\nconfig: {}\nbody\n", 1, 1, "not closed" },
        { "a.md", "---\nconfig: [\n---\nbody\n", 3, 1, "bad YAML" },
        { "a.md", "---\nconfig: {}\n---\nHello\n{{#x}}\n", 6, 1, "unclosed section 'x'" },
        { "a.md", "line one\nline {{/two}}\n", 2, 6, "closing tag 'two'" },
        { "a.md", "ok\nbad \xff byte\n", 2, 5, "not valid UTF-8" },
        { "a.txt", "template: x\n", 0, 0, "not a prompt file" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        prompt_file f;
        prompt_file_error e;
        err_code r = parse(cases[i].path, cases[i].text, &f, &e);
        if (r != ERR_PARSE) {
            test_fail(__FILE__, __LINE__, "case %zu (%s): r=%d", i, cases[i].text, r);
            prompt_file_clear(&f);
            continue;
        }
        CHECK(f.name == NULL && f.config == NULL); /* nothing left behind */
        CHECK_STR(e.path, cases[i].path);
        if (cases[i].words && (e.line != cases[i].line || e.col != cases[i].col))
            test_fail(__FILE__, __LINE__, "case %zu: at %d:%d, expected %d:%d (%s)", i, e.line, e.col,
                      cases[i].line, cases[i].col, e.message);
        if (cases[i].words && !strstr(e.message, cases[i].words))
            test_fail(__FILE__, __LINE__, "case %zu: '%s' lacks '%s'", i, e.message, cases[i].words);
    }
    prompt_file f;
    prompt_file_error e;
    CHECK_INT(prompt_file_parse("a.md", big, strlen(big), &f, &e), ERR_PARSE);
    CHECK(strstr(e.message, "larger") != NULL);
    CHECK_INT(prompt_file_parse("a.md", "a\0b", 3, &f, &e), ERR_PARSE);
    CHECK(strstr(e.message, "NUL") != NULL);
    CHECK_INT(e.col, 2);
    /* A billion laughs: aliases are counted every time they are used. */
    char bomb[2048];
    size_t n = (size_t)snprintf(bomb, sizeof bomb, "template: x\nconfig:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int k = 1; k < 9; k++)
        n += (size_t)snprintf(bomb + n, sizeof bomb - n, "  a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                                                         "*a%d, *a%d, *a%d]\n",
                              k, k, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1);
    CHECK_INT(prompt_file_parse("bomb.yaml", bomb, n, &f, &e), ERR_PARSE);
    CHECK(strstr(e.message, "nodes") != NULL);
    /* deep nesting */
    char deep[400];
    n = (size_t)snprintf(deep, sizeof deep, "template: x\nconfig: ");
    for (int k = 0; k < 100; k++)
        deep[n++] = '[';
    for (int k = 0; k < 100; k++)
        deep[n++] = ']';
    deep[n] = '\0';
    CHECK_INT(prompt_file_parse("deep.yaml", deep, n, &f, &e), ERR_PARSE);
}

/* ---- folders ---- */

static void write_file(const char *dir, const char *rel, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    for (char *s = p + strlen(dir) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0777);
            *s = '/';
        }
    FILE *f = fopen(p, "wb");
    if (!f) {
        test_fail(__FILE__, __LINE__, "cannot write %s", p);
        return;
    }
    fwrite(text, 1, strlen(text), f);
    fclose(f);
}

static void rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        test_fail(__FILE__, __LINE__, "cannot remove %s", dir);
}

TEST(files_dir_read)
{
    char dir[64] = "/tmp/genaiops-files-XXXXXX", other[64] = "/tmp/genaiops-files-XXXXXX";
    if (!mkdtemp(dir) || !mkdtemp(other))
        return;
    write_file(dir, "support/answer.yaml", "messages:\n- role: user\n  content: \"{{q}}\"\n");
    write_file(dir, "support/triage.md", "---\nlabels: [staging]\n---\nTriage {{ticket}}\n");
    write_file(dir, "greet.yml", "template: Hello\n");
    write_file(dir, "README.md", "not a prompt {{\n");
    write_file(dir, "docs/readme.MD", "skipped too? no: only README.md (any case) - this is .MD\n");
    write_file(dir, "notes.txt", "ignored {{\n");
    write_file(dir, ".hidden.yaml", "bad: [\n");
    write_file(dir, ".git/x.yaml", "bad: [\n");
    write_file(other, "linked.md", "through a link\n");
    write_file(other, "loop.md", "should not be read twice\n");
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/linkdir", dir);
    CHECK(symlink(other, p) == 0);                  /* a symlinked folder: skipped */
    snprintf(p, sizeof p, "%s/linked.md", dir);
    snprintf(q, sizeof q, "%s/linked.md", other);
    CHECK(symlink(q, p) == 0);                      /* a symlinked file: read */
    snprintf(p, sizeof p, "%s/support/up", dir);
    CHECK(symlink(dir, p) == 0);                    /* a loop: skipped */

    prompt_fileset s;
    prompt_file_error e;
    CHECK_INT(prompt_dir_read(dir, &s, &e), ERR_OK);
    static const char *const want[] = { "greet.yml", "linked.md", "support/answer.yaml", "support/triage.md" };
    CHECK_INT(s.n, countof(want));
    for (size_t i = 0; i < s.n && i < countof(want); i++)
        CHECK_STR(s.files[i].path, want[i]);
    /* docs/readme.MD has the extension .MD, which is not .md: ignored */
    CHECK_STR(s.files[2].name, "support/answer");

    const char *extra[] = { "staging", "canary" };
    prompt_input *in = NULL;
    CHECK_INT(prompt_fileset_inputs(&s, "ann", "sync", extra, 2, &in), ERR_OK);
    CHECK_STR(in[3].name, "support/triage");
    CHECK_INT(in[3].type, PROMPT_TEXT);
    CHECK_STR(in[3].template, "Triage {{ticket}}\n");
    CHECK_INT(in[3].nlabels, 2); /* staging once, canary */
    CHECK_STR(in[3].labels[0], "staging");
    CHECK_STR(in[3].labels[1], "canary");
    CHECK_STR(in[3].source, "support/triage.md");
    CHECK_STR(in[3].message, "sync");
    CHECK_STR(in[3].author, "ann");
    CHECK_INT(in[2].type, PROMPT_CHAT);
    CHECK(in[2].messages != NULL && in[2].template == NULL);
    CHECK_INT(in[0].nlabels, 2);
    free(in);
    prompt_fileset_free(&s);

    /* a bad file fails the whole read, naming the file and line */
    write_file(dir, "zz/bad.yaml", "template: ok\nconfg: {}\n");
    CHECK_INT(prompt_dir_read(dir, &s, &e), ERR_PARSE);
    CHECK_STR(e.path, "zz/bad.yaml");
    CHECK_INT(e.line, 2);
    CHECK(strstr(e.message, "confg") != NULL);
    CHECK(s.n == 0 && s.files == NULL);
    snprintf(p, sizeof p, "%s/zz/bad.yaml", dir);
    unlink(p);

    /* two files, one prompt */
    write_file(dir, "greet.md", "Hello\n");
    CHECK_INT(prompt_dir_read(dir, &s, &e), ERR_PARSE);
    CHECK(strstr(e.message, "greet.md") && strstr(e.message, "greet.yml"));
    snprintf(p, sizeof p, "%s/greet.md", dir);
    unlink(p);

    /* a file over 1 MiB */
    char *big = malloc((1u << 20) + 2);
    memset(big, 'x', (1u << 20) + 1);
    big[(1u << 20) + 1] = '\0';
    write_file(dir, "big.md", big);
    free(big);
    CHECK_INT(prompt_dir_read(dir, &s, &e), ERR_PARSE);
    CHECK_STR(e.path, "big.md");
    CHECK(strstr(e.message, "1 MiB") != NULL);

    CHECK_INT(prompt_dir_read("/nonexistent/genaiops", &s, &e), ERR_PARSE);
    CHECK(strstr(e.message, "No such file") != NULL);
    rm_rf(dir);
    rm_rf(other);
}

/* ---- write, read back, same hash ---- */

typedef struct rt_ctx {
    char url[128];
    char base[64];
    char out[128];
    int n;
} rt_ctx;

/* Saves in, writes its version as a file, parses the file and saves that:
 * the second save must find the same content (created == false). */
static void round_trip(rt_ctx *c, const prompt_input *in, const char *want_ext)
{
    json_t *v = NULL, *v2 = NULL;
    query_error qe = { 0 };
    bool created = false;
    snprintf(c->out, sizeof c->out, "%s/out%d", c->base, c->n++); /* one folder per case */
    mkdir(c->out, 0777);
    if (prompt_save(c->url, in, &v, &created, &qe) != ERR_OK) {
        test_fail(__FILE__, __LINE__, "%s: save: %s", in->name, qe.message);
        return;
    }
    char *rel = NULL;
    prompt_file_error e;
    CHECK_INT(prompt_file_write(c->out, v, &rel, &e), ERR_OK);
    if (!rel) {
        json_decref(v);
        return;
    }
    CHECK(strstr(rel, want_ext) != NULL);
    prompt_fileset s;
    CHECK_INT(prompt_dir_read(c->out, &s, &e), ERR_OK);
    const prompt_file *f = NULL;
    for (size_t i = 0; i < s.n; i++)
        if (strcmp(s.files[i].path, rel) == 0)
            f = &s.files[i];
    if (!f) {
        test_fail(__FILE__, __LINE__, "%s: %s not read back (%s:%d:%d %s)", in->name, rel, e.path, e.line, e.col,
                  e.message);
    } else {
        prompt_input back = { .name = f->name, .type = f->type, .template = f->template, .messages = f->messages,
                              .config = f->config };
        if (prompt_save(c->url, &back, &v2, &created, &qe) != ERR_OK)
            test_fail(__FILE__, __LINE__, "%s: save back: %s", in->name, qe.message);
        else if (created || !json_equal(json_object_get(v, "hash"), json_object_get(v2, "hash"))) {
            char path[256];
            snprintf(path, sizeof path, "%s/%s", c->out, rel);
            size_t n = 0;
            FILE *fp = fopen(path, "rb");
            char text[4096] = "";
            if (fp) {
                n = fread(text, 1, sizeof text - 1, fp);
                fclose(fp);
            }
            text[n] = '\0';
            test_fail(__FILE__, __LINE__, "%s: the file does not read back the same:\n%s", in->name, text);
        }
    }
    prompt_fileset_free(&s);
    json_decref(v);
    json_decref(v2);
    free(rel);
}

TEST(files_write_round_trip)
{
    rt_ctx c;
    char dir[64] = "/tmp/genaiops-rt-XXXXXX";
    if (!mkdtemp(dir))
        return;
    snprintf(c.url, sizeof c.url, "sqlite://%s/p.db", dir);
    snprintf(c.base, sizeof c.base, "%s", dir);
    c.n = 0;

    static const char *const texts[] = {
        "Hello {{name}}\n",
        "no trailing newline",
        "",
        "---\nstarts with a fence\n---\n",
        "  leading and trailing spaces  \n\n\n",
        "\n\nleading blank lines",
        "quotes \" ' \\ and \"{{x}}\"\n",
        "unicode: caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xe2\x80\xa8 sep\n",
        "tabs\tand\r\nCRLF\r\n",
        "# not a heading in YAML\n- not a list\nkey: not a key\n",
    };
    for (size_t i = 0; i < countof(texts); i++) {
        char name[32];
        snprintf(name, sizeof name, "text/t%zu", i);
        json_t *cfg = i % 2 ? json_pack("{s:s, s:f, s:i, s:b, s:n, s:[s, {s:s}], s:{s:s}, s:s, s:s, s:s, s:s}",
                                        "model", "gpt-4o-mini", "temperature", 0.2, "max_tokens", 100, "stream", 0,
                                        "stop", "tools", "a", "type", "function", "response_format", "type",
                                        "json_object", "yes", "yes", "num", "123", "empty", "", "multi",
                                        "line one\nline two\n")
                              : NULL;
        prompt_input in = { .name = name, .type = PROMPT_TEXT, .template = texts[i], .config = cfg };
        round_trip(&c, &in, ".md");
        json_decref(cfg);
    }

    static const char *const contents[] = {
        "{{question}}",
        "multi\nline\n",
        "  indented first line\n    more\n",
        "trailing spaces   \n   \n",
        "ends with blank lines\n\n\n",
        "",
        "---",
        "\ttab first\nsecond",
        "unicode \xe2\x80\xa8 line separator and caf\xc3\xa9",
        "crlf\r\nline",
        "\n\nstarts with blank lines\n",
        "quotes \"{{x}}\" and 'y' and \\",
        "key: value\n- item\n# comment\n",
        "\n",   /* fuzzer: only newlines need keep chomping */
        "\n\n",
        "a\n   ",
        "a\n   \n",
    };
    for (size_t i = 0; i < countof(contents); i++) {
        char name[32];
        snprintf(name, sizeof name, "chat/c%zu", i);
        json_t *msgs = json_pack("[{s:s, s:s}, {s:s, s:s, s:s}]", "role", "system", "content", contents[i], "role",
                                 "user", "content", "Q: {{q}}\n", "name", "bob");
        json_t *cfg = json_pack("{s:s, s:f, s:{s:[i, f, n]}, s:{}, s:[], s:o}", "model", "m", "top_p", 1.0, "nested",
                                "list", 1, 2.5, "empty_obj", "empty_arr", "weird key: x", json_string("v"));
        prompt_input in = { .name = name, .type = PROMPT_CHAT, .messages = msgs, .config = cfg };
        round_trip(&c, &in, ".yaml");
        json_decref(msgs);
        json_decref(cfg);
    }
    /* fuzzer: keys over YAML's 1024-character limit for implicit keys */
    char longkey[2100];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    longkey[10] = '\n';
    json_t *cfg = json_pack("{s:s, s:{s:i}, s:[{s:b}]}", longkey, "v", "nested", longkey, 1, "list", longkey, 1);
    prompt_input in = { .name = "long/key", .type = PROMPT_TEXT, .template = "x", .config = cfg };
    round_trip(&c, &in, ".md");
    json_t *msgs = json_pack("[{s:s, s:s, s:s}]", "role", "user", "content", "c", longkey, "extra");
    prompt_input in2 = { .name = "long/chat", .type = PROMPT_CHAT, .messages = msgs, .config = cfg };
    round_trip(&c, &in2, ".yaml");
    json_decref(msgs);
    json_decref(cfg);
    rm_rf(dir);
}

/* fuzzer: a file written from a version must read back as the same
 * numbers; 15 digits made 1.11111111111111e57 of a 58-digit real. */
TEST(files_write_keeps_every_real)
{
    char dir[64] = "/tmp/genaiops-re-XXXXXX";
    if (!mkdtemp(dir))
        return;
    static const double reals[] = { 0.2, 0.1 + 0.2, 1111111111111111111111111111111111111111111111111111111112.5,
                                    1e-300, 123456789.123456789, -2.5e22, 5e-324 };
    json_t *list = json_array();
    for (size_t i = 0; i < countof(reals); i++)
        json_array_append_new(list, json_real(reals[i]));
    json_t *v = json_pack("{s:s, s:s, s:{s:o, s:f}, s:s}", "name", "reals/x", "type", "text", "config", "list", list,
                          "temperature", 0.7, "template", "x");
    char *rel = NULL;
    prompt_file_error e;
    CHECK_INT(prompt_file_write(dir, v, &rel, &e), ERR_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel ? rel : "");
    FILE *fp = fopen(path, "rb");
    CHECK(fp != NULL);
    char text[4096];
    size_t n = fp ? fread(text, 1, sizeof text, fp) : 0;
    if (fp)
        fclose(fp);
    prompt_file back;
    CHECK_INT(prompt_file_parse(rel ? rel : "x.md", text, n, &back, &e), ERR_OK);
    if (back.config) {
        CHECK(json_equal(back.config, json_object_get(v, "config")));
        CHECK(strstr(text, "temperature: 0.7\n") != NULL); /* the shortest form that reads back */
        prompt_file_clear(&back);
    }
    free(rel);
    json_decref(v);
    rm_rf(dir);
}

TEST(files_write_keeps_format_and_refuses_bad_names)
{
    char dir[64] = "/tmp/genaiops-wr-XXXXXX";
    if (!mkdtemp(dir))
        return;
    json_t *v = json_pack("{s:s, s:s, s:s, s:{}}", "name", "a/b", "type", "text", "template", "x {{y}}", "config");
    write_file(dir, "a/b.yaml", "template: old\n");
    char *rel = NULL;
    prompt_file_error e;
    CHECK_INT(prompt_file_write(dir, v, &rel, &e), ERR_OK);
    CHECK_STR(rel, "a/b.yaml"); /* the existing YAML file is rewritten, not shadowed by a.md */
    free(rel);
    prompt_fileset s;
    CHECK_INT(prompt_dir_read(dir, &s, &e), ERR_OK);
    CHECK_INT(s.n, 1);
    if (s.n == 1)
        CHECK_STR(s.files[0].template, "x {{y}}");
    prompt_fileset_free(&s);
    json_object_set_new(v, "name", json_string("../escape"));
    CHECK_INT(prompt_file_write(dir, v, &rel, &e), ERR_PARSE);
    CHECK(rel == NULL);
    json_object_set_new(v, "name", json_string("ok"));
    json_object_del(v, "template");
    CHECK_INT(prompt_file_write(dir, v, &rel, &e), ERR_PARSE);
    json_decref(v);
    rm_rf(dir);
}
