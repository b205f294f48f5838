/*
 * test_template.c - the prompt template engine (src/prompt/template.c).
 *
 * Tables of cases: templates with their variables and expected output
 * (interpolation, numbers, dotted names and the context stack, sections,
 * inverted sections, comments, the mustache spec's standalone-line and
 * partial-indentation behaviour, partials through an in-test resolver);
 * compile errors with their line, column and message; render errors
 * (missing variables listed in full, objects as text, unknown partials,
 * cycles, the depth limit). Then lenient mode, tpl_variables and
 * tpl_partials, invalid UTF-8, the output bound and the step budget, and
 * the crashers the fuzzer found.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/jscan.h"
#include "prompt/template.h"
#include "test.h"

/* ---- an in-test resolver ---------------------------------------------------- */

typedef struct named {
    const char *name, *src;
} named;

static const named partial_srcs[] = {
    { "greet", "Hello, {{name}}!" },
    { "line", ">\n>" },
    { "a", "A{{> b}}" },
    { "b", "B{{> a}}" },
    { "self", "{{> self}}" },
    { "p/with/slash", "slash {{x}}" },
    { "missing_in_partial", "{{zzz}}" },
    { "indent", "|\n{{{content}}}\n|\n" },
    { "nested_indent", "[\n  {{> line}}\n]\n" },
    { "list", "{{#items}}\n- {{.}}\n{{/items}}\n" },
    { "bad_obj", "x\n  {{o}}" },
};

static int depth_limit; /* "dN" includes d(N+1) while N < depth_limit */

static const tpl *resolve(void *ud, const char *name, size_t len)
{
    static tpl *compiled[countof(partial_srcs)];
    static tpl *deep[64];
    UNUSED(ud);
    for (size_t i = 0; i < countof(partial_srcs); i++) {
        if (strlen(partial_srcs[i].name) == len && memcmp(partial_srcs[i].name, name, len) == 0) {
            if (!compiled[i] && tpl_compile(partial_srcs[i].src, strlen(partial_srcs[i].src), &compiled[i], NULL))
                return NULL;
            return compiled[i];
        }
    }
    if (len >= 2 && name[0] == 'd') {
        char num[8];
        if (len - 1 >= sizeof num)
            return NULL;
        memcpy(num, name + 1, len - 1);
        num[len - 1] = '\0';
        long n = strtol(num, NULL, 10);
        if (n < 0 || n >= 60)
            return NULL;
        tpl_free(deep[n]);
        deep[n] = NULL;
        char src[32];
        if (n < depth_limit)
            snprintf(src, sizeof src, "{{> d%ld}}", n + 1);
        else
            snprintf(src, sizeof src, "end");
        if (tpl_compile(src, strlen(src), &deep[n], NULL))
            return NULL;
        return deep[n];
    }
    return NULL;
}

/* Compiles and renders src with vars (JSON text, NULL = none); returns the
 * render's code, the output in out (caller frees), e filled. Compile
 * failures are reported as test failures and return -1. */
static int render(const char *src, size_t len, const char *vars_json, bool lenient, char **out, tpl_error *e)
{
    tpl *t = NULL;
    *out = NULL;
    if (tpl_compile(src, len, &t, e)) {
        test_fail(__FILE__, __LINE__, "compile of \"%s\" failed: %d:%d %s", src, e->line, e->col, e->message);
        return -1;
    }
    json_t *vars = NULL;
    if (vars_json) {
        json_error_t je;
        vars = json_loads(vars_json, 0, &je);
        if (!vars) {
            test_fail(__FILE__, __LINE__, "bad vars JSON %s: %s", vars_json, je.text);
            tpl_free(t);
            return -1;
        }
    }
    tpl_opts o = { .resolve = resolve, .lenient = lenient };
    buf b;
    buf_init(&b, 1 << 20);
    err_code rc = tpl_render(t, vars, &o, &b, e);
    *out = buf_steal(&b, NULL);
    /* the same variables read in place from the JSON text must render the
     * same bytes and the same error */
    jval jv = vars_json ? jscan_root(vars_json, strlen(vars_json)) : (jval){ J_NULL, "null", 4 };
    tpl_error e2;
    buf b2;
    buf_init(&b2, 1 << 20);
    err_code rc2 = tpl_render_text(t, jv, &o, &b2, &e2);
    char *out2 = buf_steal(&b2, NULL);
    if (rc2 != rc || strcmp(*out ? *out : "", out2 ? out2 : "") != 0 || strcmp(e->message, e2.message) != 0 ||
        strcmp(e->missing, e2.missing) != 0 || (rc != ERR_OK && (e->line != e2.line || e->col != e2.col)))
        test_fail(__FILE__, __LINE__, "\"%s\" with %s: jansson gave %d \"%s\" (%s), the text path %d \"%s\" (%s)", src,
                  vars_json ? vars_json : "no vars", rc, *out ? *out : "", e->message, rc2, out2 ? out2 : "",
                  e2.message);
    free(out2);
    json_decref(vars);
    tpl_free(t);
    return rc;
}

/* ---- successful renders ----------------------------------------------------- */

typedef struct rcase {
    const char *tpl, *vars, *want;
} rcase;

static const rcase render_cases[] = {
    /* interpolation */
    { "", NULL, "" },
    { "plain text", NULL, "plain text" },
    { "Hello, {{name}}!", "{\"name\":\"Ada\"}", "Hello, Ada!" },
    { "{{a}}{{b}}", "{\"a\":\"1\",\"b\":\"2\"}", "12" },
    { "|{{ name }}|{{\tname\t}}|", "{\"name\":\"x\"}", "|x|x|" },
    { "{{html}} {{{html}}} {{& html}} {{&html}}", "{\"html\":\"<b>&\\\"</b>\"}",
      "<b>&\"</b> <b>&\"</b> <b>&\"</b> <b>&\"</b>" },
    { "h\xc3\xa9llo {{x}} \xe2\x9c\x93", "{\"x\":\"\xf0\x9f\x98\x80\"}", "h\xc3\xa9llo \xf0\x9f\x98\x80 \xe2\x9c\x93" },
    { "a}}b}c{d", NULL, "a}}b}c{d" },
    { "{{n}}", "{\"n\":42}", "42" },
    { "{{n}}", "{\"n\":-7}", "-7" },
    { "{{n}}", "{\"n\":-9223372036854775808}", "-9223372036854775808" },
    { "{{n}}", "{\"n\":0.1}", "0.1" },
    { "{{n}}", "{\"n\":1.5}", "1.5" },
    { "{{n}}", "{\"n\":2.0}", "2" },
    { "{{n}}", "{\"n\":-0.0}", "0" },
    { "{{n}}", "{\"n\":0.3333333333333333}", "0.3333333333333333" },
    { "{{n}}", "{\"n\":123456789.125}", "123456789.125" },
    { "{{n}}", "{\"n\":1e21}", "1e+21" },
    { "{{n}}", "{\"n\":1e20}", "100000000000000000000" },
    { "{{n}}", "{\"n\":1.5e-7}", "1.5e-7" },
    { "{{n}}", "{\"n\":0.000001}", "0.000001" },
    { "{{n}}", "{\"n\":-2.5e300}", "-2.5e+300" },
    { "{{t}} {{f}} [{{z}}]", "{\"t\":true,\"f\":false,\"z\":null}", "true false []" },
    /* dotted names and the context stack */
    { "{{a.b.c}}", "{\"a\":{\"b\":{\"c\":\"deep\"}}}", "deep" },
    { "{{#a}}{{b.c}}{{/a}}", "{\"a\":{\"x\":1},\"b\":{\"c\":\"outer\"}}", "outer" },
    { "{{#l}}{{x}}{{n}},{{/l}}", "{\"x\":\"-\",\"l\":[{\"n\":1},{\"n\":2,\"x\":\"+\"}]}", "-1,+2," },
    { "{{#a}}{{#b}}{{c}}{{d}}{{/b}}{{/a}}", "{\"a\":{\"b\":{\"c\":1},\"d\":2}}", "12" },
    { "{{#a.b}}{{.}}{{/a.b}}", "{\"a\":{\"b\":[1,2]}}", "12" },
    /* sections */
    { "{{#t}}yes{{/t}}", "{\"t\":true}", "yes" },
    { "{{#t}}yes{{/t}}", "{\"t\":false}", "" },
    { "{{#l}}[{{.}}]{{/l}}", "{\"l\":[1,\"a\",true,2.5]}", "[1][a][true][2.5]" },
    { "{{#l}}{{n}},{{/l}}", "{\"l\":[{\"n\":1},{\"n\":2}]}", "1,2," },
    { "{{#l}}x{{/l}}", "{\"l\":[]}", "" },
    { "{{#v}}x{{/v}}", "{\"v\":\"\"}", "" },
    { "{{#v}}x{{/v}}", "{\"v\":0}", "" },
    { "{{#v}}x{{/v}}", "{\"v\":0.0}", "" },
    { "{{#v}}x{{/v}}", "{\"v\":null}", "" },
    { "{{#v}}x{{/v}}", "{\"v\":{}}", "x" },
    { "{{#v}}x{{/v}}", "{\"v\":-1}", "x" },
    { "{{#v}}({{.}}){{/v}}", "{\"v\":\"hi\"}", "(hi)" },
    { "{{#v}}({{.}}){{/v}}", "{\"v\":0.5}", "(0.5)" },
    { "{{#o}}{{k}}{{/o}}", "{\"o\":{\"k\":\"v\"}}", "v" },
    { "{{#nope}}x{{/nope}}y", "{}", "y" },
    { "{{#a.nope}}x{{/a.nope}}y", "{\"a\":1}", "y" },
    { "{{#l}}{{#.}}[{{.}}]{{/.}}{{/l}}", "{\"l\":[[1,2],[3]]}", "[1][2][3]" },
    { "{{#a}}{{#b}}{{a.x}}{{/b}}{{/a}}", "{\"a\":{\"x\":\"outer\",\"b\":{\"a\":{\"x\":\"inner\"}}}}", "inner" },
    /* inverted sections */
    { "{{^t}}no{{/t}}", "{\"t\":false}", "no" },
    { "{{^t}}no{{/t}}", "{}", "no" },
    { "{{^t}}no{{/t}}", "{\"t\":[]}", "no" },
    { "{{^t}}no{{/t}}", "{\"t\":true}", "" },
    { "{{^t}}no{{/t}}", "{\"t\":[0]}", "" },
    { "{{#t}}y{{/t}}{{^t}}n{{/t}}", "{\"t\":\"s\"}", "y" },
    /* comments */
    { "a{{! note }}b", NULL, "ab" },
    { "a{{!\nx {{ y\n}}b", NULL, "ab" },
    { "a{{!}}b", NULL, "ab" },
    /* standalone lines */
    { "a\n{{#t}}\nb\n{{/t}}\nc\n", "{\"t\":true}", "a\nb\nc\n" },
    { "a\n{{#t}}\nb\n{{/t}}\nc\n", "{\"t\":false}", "a\nc\n" },
    { "  {{#t}}\n  b\n  {{/t}}\n", "{\"t\":true}", "  b\n" },
    { "\t{{#t}}  \nb\n {{/t}}\t\n", "{\"t\":true}", "b\n" },
    { "a\r\n{{#t}}\r\nb\r\n{{/t}}\r\nc", "{\"t\":true}", "a\r\nb\r\nc" },
    { "  {{#t}}\n#{{/t}}\n/", "{\"t\":true}", "#\n/" },
    { "#{{#t}}\n/\n  {{/t}}", "{\"t\":true}", "#\n/\n" },
    { " {{#t}}x{{/t}} \n", "{\"t\":true}", " x \n" },
    { "{{#t}}{{/t}}\nx", "{\"t\":true}", "\nx" },
    { "a\n  {{! c }}\nb", NULL, "a\nb" },
    { "a\n{{!\n x\n}}\nb", NULL, "a\nb" },
    { "  {{! c }} x\n", NULL, "   x\n" },
    { "a\n{{^f}}\nb\n{{/f}}\n", "{\"f\":false}", "a\nb\n" },
    { "{{! only }}", NULL, "" },
    { "a\r{{#t}}\rb{{/t}}", "{\"t\":true}", "a\r\rb" },
    { "|\n{{#l}}\n- {{.}}\n{{/l}}\n|", "{\"l\":[1,2]}", "|\n- 1\n- 2\n|" },
    { "{{x}}\n", "{\"x\":1}", "1\n" },
    /* partials */
    { "{{> greet}}", "{\"name\":\"Ada\"}", "Hello, Ada!" },
    { "{{>greet}}", "{\"name\":\"Ada\"}", "Hello, Ada!" },
    { "{{#people}}{{> greet}};{{/people}}", "{\"people\":[{\"name\":\"A\"},{\"name\":\"B\"}]}", "Hello, A!;Hello, B!;" },
    { "{{> p/with/slash}}", "{\"x\":1}", "slash 1" },
    { "\\\n {{>indent}}\n/\n", "{\"content\":\"<\\n->\"}", "\\\n |\n <\n->\n |\n/\n" },
    { "  {{data}}  {{> line}}\n", "{\"data\":\"|\"}", "  |  >\n>\n" },
    { "  {{>line}}\n>", NULL, "  >\n  >>" },
    { ">\n  {{>line}}", NULL, ">\n  >\n  >" },
    { "x\n  {{> nested_indent}}\ny", NULL, "x\n  [\n    >\n    >  ]\ny" },
    { "  {{> list}}", "{\"items\":[1,2]}", "  - 1\n  - 2\n" },
    { "{{#t}}\n{{> greet}}\n{{/t}}\n", "{\"t\":true,\"name\":\"n\"}", "Hello, n!" },
    { "{{> greet}}\n", "{\"name\":\"n\"}", "Hello, n!" },
    { "{{> d1}}", NULL, "end" },
    { "|\r\n{{>line}}\r\n|", NULL, "|\r\n>\n>|" },
    { "|{{> line }}|", NULL, "|>\n>|" },
    /* more from the mustache spec */
    { "{{#list}}({{#.}}{{.}}{{/.}}){{/list}}", "{\"list\":[[1,2,3],[\"a\",\"b\",\"c\"]]}", "(123)(abc)" },
    { "{{#a}}{{b.c.d.e.name}}{{/a}}",
      "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"name\":\"Phil\"}}}}},\"b\":{\"c\":{\"d\":{\"e\":{\"name\":\"Wrong\"}}}}}",
      "Phil" },
    { " {{#t}}YES{{/t}}\n {{#t}}GOOD{{/t}}\n", "{\"t\":true}", " YES\n GOOD\n" },
    { "|\r\n{{! Standalone Comment }}\r\n|", NULL, "|\r\n|" },
    { "{{n}}", "{\"n\":1.210}", "1.21" },
};

TEST(template_render_table)
{
    depth_limit = 3;
    for (size_t i = 0; i < countof(render_cases); i++) {
        const rcase *c = &render_cases[i];
        tpl_error e;
        char *out;
        int rc = render(c->tpl, strlen(c->tpl), c->vars, false, &out, &e);
        if (rc != ERR_OK || strcmp(out, c->want) != 0)
            test_fail(__FILE__, __LINE__, "case %zu \"%s\": rc %d (%s), got \"%s\", want \"%s\"", i, c->tpl, rc,
                      e.message, out ? out : "(null)", c->want);
        free(out);
    }
}

/* ---- compile errors --------------------------------------------------------- */

typedef struct ccase {
    const char *tpl;
    size_t len; /* 0: strlen */
    int line, col;
    const char *msg; /* a substring of the message */
} ccase;

static const ccase compile_errors[] = {
    { "abc {{name", 0, 1, 5, "unclosed tag: '{{' without '}}'" },
    { "{{{name}}", 0, 1, 1, "unclosed tag: '{{{' without '}}}'" },
    { "x\n  {{", 0, 2, 3, "unclosed tag" },
    { "a\n{{#items}}\nx", 0, 3, 2, "unclosed section 'items' (opened at 2:1)" },
    { "{{#a}}\n  {{^b}}{{/b}}{{#c}}", 0, 2, 21, "unclosed section 'c' (opened at 2:15)" },
    { "{{#a}}{{/b}}", 0, 1, 7, "closing tag 'b' does not match section 'a' (opened at 1:1)" },
    { "{{#a}}{{#b}}{{/a}}{{/b}}", 0, 1, 13, "closing tag 'a' does not match section 'b' (opened at 1:7)" },
    { "x{{/a}}", 0, 1, 2, "closing tag 'a' without an open section" },
    { "{{}}", 0, 1, 1, "empty tag name" },
    { "a\n  {{ }}", 0, 2, 3, "empty tag name" },
    { "{{#}}", 0, 1, 1, "empty tag name" },
    { "{{#a}}{{/}}", 0, 1, 7, "empty tag name" },
    { "{{>}}", 0, 1, 1, "empty tag name" },
    { "{{& }}", 0, 1, 1, "empty tag name" },
    { "{{{ }}}", 0, 1, 1, "empty tag name" },
    { "{{first name}}", 0, 1, 8, "invalid character ' ' in name 'first name'" },
    { "{{a\nb}}", 0, 1, 4, "invalid character '\\n' in name" },
    { "{{a!}}", 0, 1, 4, "invalid character '!'" },
    { "{{ #a}}", 0, 1, 4, "invalid character '#'" },
    { "{{{#a}}}", 0, 1, 4, "invalid character '#'" },
    { "{{caf\xc3\xa9}}", 0, 1, 6, "invalid character byte 0xc3" },
    { "{{a..b}}", 0, 1, 5, "empty segment in name 'a..b'" },
    { "{{.a}}", 0, 1, 3, "empty segment" },
    { "{{a.}}", 0, 1, 4, "empty segment" },
    { "{{#..}}{{/..}}", 0, 1, 4, "empty segment" },
    { "{{> bad name}}", 0, 1, 8, "invalid character ' ' in partial name 'bad name'" },
    { "{{> a|b}}", 0, 1, 6, "invalid character '|'" },
    { "{{=<% %>=}}", 0, 1, 1, "set-delimiter tags ({{=...=}}) are not supported" },
    { "x {{= | | =}}", 0, 1, 3, "not supported" },
    { "{{<parent}}{{/parent}}", 0, 1, 1, "inheritance" },
    { "{{$block}}{{/block}}", 0, 1, 1, "inheritance" },
    { "ok\n\xff", 0, 2, 1, "invalid UTF-8" },
    { "\xc0\xaf", 0, 1, 1, "invalid UTF-8" },              /* overlong '/' */
    { "ab\xed\xa0\x80", 0, 1, 3, "invalid UTF-8" },        /* a surrogate */
    { "\xe2\x82", 0, 1, 1, "invalid UTF-8" },               /* truncated */
    { "\xf4\x90\x80\x80", 0, 1, 1, "invalid UTF-8" },       /* past U+10FFFF */
    { "12345678\xe2\x28\xa1", 0, 1, 9, "invalid UTF-8" },   /* bad continuation after the fast path */
    { "{{x}}\x80{{", 0, 1, 6, "invalid UTF-8" },            /* checked before any tag */
};

TEST(template_compile_errors)
{
    for (size_t i = 0; i < countof(compile_errors); i++) {
        const ccase *c = &compile_errors[i];
        tpl *t = (tpl *)1;
        tpl_error e;
        err_code rc = tpl_compile(c->tpl, c->len ? c->len : strlen(c->tpl), &t, &e);
        if (rc != ERR_PARSE || t != NULL || e.line != c->line || e.col != c->col || !strstr(e.message, c->msg) ||
            e.partial[0] || e.missing[0])
            test_fail(__FILE__, __LINE__, "case %zu \"%s\": rc %d, %d:%d \"%s\", want %d:%d \"%s\"", i, c->tpl, rc,
                      e.line, e.col, e.message, c->line, c->col, c->msg);
    }
}

TEST(template_nesting_limit)
{
    char src[2048];
    size_t n = 0;
    for (int i = 0; i < TPL_MAX_SECTIONS; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "{{#a}}");
    for (int i = 0; i < TPL_MAX_SECTIONS; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "{{/a}}");
    tpl *t = NULL;
    tpl_error e;
    CHECK_INT(tpl_compile(src, n, &t, &e), ERR_OK);
    /* 64 nested sections over a one-element list, with {{.}} inside */
    json_t *vars = json_pack("{s:[i]}", "a", 7);
    buf b;
    buf_init(&b, 1024);
    CHECK_INT(tpl_render(t, vars, NULL, &b, &e), ERR_OK);
    CHECK_INT(b.len, 0);
    tpl_free(t);

    n = 0;
    for (int i = 0; i <= TPL_MAX_SECTIONS; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "{{^a}}");
    CHECK_INT(tpl_compile(src, n, &t, &e), ERR_PARSE);
    CHECK_INT(e.line, 1);
    CHECK_INT(e.col, 6 * TPL_MAX_SECTIONS + 1);
    CHECK(strstr(e.message, "sections nested deeper than 64") != NULL);
    json_decref(vars);
    buf_free(&b);
}

TEST(template_name_length)
{
    char src[600];
    memcpy(src, "{{", 2);
    memset(src + 2, 'n', 256);
    memcpy(src + 258, "}}", 2);
    tpl *t;
    tpl_error e;
    CHECK_INT(tpl_compile(src, 260, &t, &e), ERR_PARSE);
    CHECK(strstr(e.message, "name longer than 255 bytes") != NULL);
    CHECK_INT(tpl_compile(src + 1, 258, &t, &e), ERR_OK); /* "{" + 255 n + "}}": a 255-byte name */
    tpl_free(t);
    CHECK_INT(tpl_compile("{nnn}}", 6, &t, &e), ERR_OK); /* no "{{" at all */
    tpl_free(t);
}

/* ---- render errors ---------------------------------------------------------- */

typedef struct ecase {
    const char *tpl, *vars;
    bool lenient;
    int line, col;
    const char *partial, *msg, *missing;
} ecase;

static const ecase render_errors[] = {
    { "{{a}} {{b.c}} {{a}}\n {{#l}}{{d}}{{/l}}{{#gone}}{{e}}{{/gone}}", "{\"l\":[1,2]}", false, 1, 1, "",
      "missing variables: a, b.c, d", "a,b.c,d" },
    { "x{{#a}}{{b.c}}{{/a}}", "{\"a\":{\"b\":{}},\"b\":{\"c\":\"ERROR\"}}", false, 1, 8, "", "missing variables: b.c",
      "b.c" },
    { "{{a.b}}", "{\"a\":\"str\"}", false, 1, 1, "", "missing variables: a.b", "a.b" },
    { "ok {{.}}", NULL, false, 1, 4, "", "missing variables: .", "." },
    { "x\n{{> missing_in_partial}} {{q}}", NULL, false, 1, 1, "missing_in_partial", "missing variables: q, zzz",
      "q,zzz" },
    { "{{#l}}{{> missing_in_partial}}{{/l}}{{zzz}}", "{\"l\":[1,2,3]}", false, 1, 1, "missing_in_partial",
      "missing variables: zzz", "zzz" },
    { "{{o}}", "{\"o\":{}}", false, 1, 1, "", "variable 'o' is an object", "" },
    { "\n  {{a.l}}", "{\"a\":{\"l\":[]}}", false, 2, 3, "", "variable 'a.l' is an array", "" },
    { "{{#l}}{{.}}{{/l}}", "{\"l\":[{}]}", false, 1, 7, "", "variable '.' is an object", "" },
    { "{{> bad_obj}}", "{\"o\":[1]}", false, 2, 3, "bad_obj", "variable 'o' is an array", "" },
    { "{{o}}", "{\"o\":{}}", true, 1, 1, "", "variable 'o' is an object", "" },
    { "ab {{> nope}}", NULL, false, 1, 4, "", "partial 'nope' not found", "" },
    { "{{> a}}", NULL, false, 1, 2, "b", "partial cycle: a -> b -> a", "" },
    { "{{> self}}", NULL, false, 1, 1, "self", "partial cycle: self -> self", "" },
    { "{{#l}}{{> b}}{{/l}}", "{\"l\":[1]}", false, 1, 2, "a", "partial cycle: b -> a -> b", "" },
    { "{{> d1}}", NULL, false, 1, 1, "d16",
      "partials nested deeper than 16: d1 -> d2 -> d3 -> d4 -> d5 -> d6 -> d7 -> d8 -> d9 -> d10 -> d11 -> d12 -> "
      "d13 -> d14 -> d15 -> d16 -> d17",
      "" },
};

TEST(template_render_errors)
{
    depth_limit = 40;
    for (size_t i = 0; i < countof(render_errors); i++) {
        const ecase *c = &render_errors[i];
        tpl_error e;
        char *out;
        int rc = render(c->tpl, strlen(c->tpl), c->vars, c->lenient, &out, &e);
        if (rc != ERR_INVAL || e.line != c->line || e.col != c->col || strcmp(e.partial, c->partial) != 0 ||
            strcmp(e.message, c->msg) != 0 || strcmp(e.missing, c->missing) != 0)
            test_fail(__FILE__, __LINE__,
                      "case %zu \"%s\": rc %d, %d:%d in \"%s\" \"%s\" [%s], want %d:%d in \"%s\" \"%s\" [%s]", i,
                      c->tpl, rc, e.line, e.col, e.partial, e.message, e.missing, c->line, c->col, c->partial, c->msg,
                      c->missing);
        free(out);
    }
}

TEST(template_depth_limit)
{
    tpl_error e;
    char *out;
    depth_limit = TPL_MAX_DEPTH; /* d1..d16 nest 16 deep: allowed */
    CHECK_INT(render("{{> d1}}", 8, NULL, false, &out, &e), ERR_OK);
    CHECK_STR(out, "end");
    free(out);
    depth_limit = TPL_MAX_DEPTH + 1; /* d17 would be the 17th */
    CHECK_INT(render("{{> d1}}", 8, NULL, false, &out, &e), ERR_INVAL);
    CHECK(strstr(e.message, "partials nested deeper than 16") != NULL);
    CHECK_STR(e.partial, "d16");
    free(out);
}

TEST(template_no_resolver)
{
    tpl *t;
    tpl_error e;
    CHECK_INT(tpl_compile("x {{> greet}}", 13, &t, &e), ERR_OK);
    buf b;
    buf_init(&b, 100);
    CHECK_INT(tpl_render(t, NULL, NULL, &b, &e), ERR_INVAL);
    CHECK_STR(e.message, "partial 'greet' not found");
    CHECK_INT(e.col, 3);
    tpl_opts o = { 0 };
    CHECK_INT(tpl_render(t, NULL, &o, &b, NULL), ERR_INVAL); /* e may be NULL */
    tpl_free(t);
    buf_free(&b);
}

TEST(template_lenient)
{
    static const rcase cases[] = {
        { "[{{a}}][{{b.c}}][{{.}}]", NULL, "[][][]" },
        { "{{#l}}<{{x}}>{{/l}}", "{\"l\":[1,2]}", "<><>" },
        { "{{> missing_in_partial}}|{{#a}}{{b.c}}{{/a}}", "{\"a\":{\"b\":{}},\"b\":{\"c\":\"E\"}}", "|" },
        { "Hi {{name}}{{^name}}there{{/name}}", "{}", "Hi there" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        tpl_error e;
        char *out;
        int rc = render(cases[i].tpl, strlen(cases[i].tpl), cases[i].vars, true, &out, &e);
        if (rc != ERR_OK || strcmp(out, cases[i].want) != 0 || e.missing[0])
            test_fail(__FILE__, __LINE__, "case %zu: rc %d (%s) \"%s\"", i, rc, e.message, out);
        free(out);
    }
}

/* Every missing name once, sorted bytewise, however often and wherever
 * it is used; the lists are cut with "..." when they do not fit. */
TEST(template_missing_many)
{
    char *src = malloc(20000), *out;
    size_t n = 0;
    for (int i = 299; i >= 0; i--)
        n += (size_t)snprintf(src + n, 20000 - n, "{{v%03d}}{{v%03d}}\n", i, i);
    tpl_error e;
    CHECK_INT(render(src, n, "{}", false, &out, &e), ERR_INVAL);
    if (strncmp(e.message, "missing variables: v000, v001, v002, ", 37) != 0)
        test_fail(__FILE__, __LINE__, "message \"%s\"", e.message);
    size_t ml = strlen(e.message);
    CHECK(ml < sizeof e.message);
    CHECK(ml > 400);
    CHECK(strcmp(e.message + ml - 5, ", ...") == 0);
    CHECK(strncmp(e.missing, "v000,v001,v002,", 15) == 0);
    size_t l = strlen(e.missing);
    CHECK(l > 900 && l < sizeof e.missing);
    CHECK(strcmp(e.missing + l - 4, ",...") == 0);
    CHECK_INT(e.line, 1);
    CHECK_INT(e.col, 1); /* the first use in render order: v299 */
    free(out);
    free(src);
}

/* ---- introspection ---------------------------------------------------------- */

static void check_json(json_t *j, const char *want)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!s || strcmp(s, want) != 0)
        test_fail(__FILE__, __LINE__, "got %s, want %s", s ? s : "NULL", want);
    free(s);
    json_decref(j);
}

TEST(template_variables_and_partials)
{
    const char *src = "{{b}} {{a.x}} {{#list}}{{inner}}{{#sub}}{{y}}{{/sub}}{{/list}} {{^flag}}{{shown}}{{/flag}} "
                      "{{a.y}} {{> p}} {{#o}}{{#deep}}{{/deep}}{{/o}} {{.}} {{b}}{{after}}\n"
                      "{{#list}}{{/list}}{{> z/y}}{{#s}}{{> a@prod}}{{/s}}{{> p}}";
    tpl *t;
    tpl_error e;
    CHECK_INT(tpl_compile(src, strlen(src), &t, &e), ERR_OK);
    check_json(tpl_variables(t), "[\"a\",\"after\",\"b\",\"flag\",\"list\",\"o\",\"s\",\"shown\"]");
    check_json(tpl_partials(t), "[\"a@prod\",\"p\",\"z/y\"]");
    tpl_free(t);
    CHECK_INT(tpl_compile("text only", 9, &t, &e), ERR_OK);
    check_json(tpl_variables(t), "[]");
    check_json(tpl_partials(t), "[]");
    tpl_free(t);
}

/* ---- bounds ----------------------------------------------------------------- */

TEST(template_output_bound)
{
    /* 100 KB of template text into a 1,000-byte buffer */
    size_t n = 100000;
    char *src = malloc(n);
    memset(src, 'x', n);
    memcpy(src + 50000, "{{v}}", 5);
    tpl *t;
    tpl_error e;
    CHECK_INT(tpl_compile(src, n, &t, &e), ERR_OK);
    buf b;
    buf_init(&b, 1000);
    json_t *vars = json_pack("{s:s}", "v", "value");
    CHECK_INT(tpl_render(t, vars, NULL, &b, &e), ERR_TOOBIG);
    CHECK(strstr(e.message, "output larger than 1000 bytes") != NULL);
    CHECK(b.len <= 1000);
    tpl_free(t);
    json_decref(vars);

    /* a section over a long list into the same bound */
    CHECK_INT(tpl_compile("{{#l}}{{.}},{{/l}}", 18, &t, &e), ERR_OK);
    vars = json_object();
    json_t *l = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(l, json_integer(i));
    json_object_set_new(vars, "l", l);
    buf_reset(&b);
    CHECK_INT(tpl_render(t, vars, NULL, &b, &e), ERR_TOOBIG);
    b.max = 1 << 20;
    buf_reset(&b);
    CHECK_INT(tpl_render(t, vars, NULL, &b, &e), ERR_OK);
    CHECK_INT(b.len, 10 + 90 * 2 + 900 * 3 + 1000);
    CHECK(strncmp(b.p, "0,1,2,", 6) == 0);
    tpl_free(t);

    /* nested sections that write nothing are bounded by the step budget */
    CHECK_INT(tpl_compile("{{#l}}{{#l}}{{#l}}{{/l}}{{/l}}{{/l}}{{x}}", 41, &t, &e), ERR_OK);
    buf_reset(&b);
    CHECK_INT(tpl_render(t, vars, NULL, &b, &e), ERR_TOOBIG);
    CHECK(strstr(e.message, "render stopped after") != NULL);
    tpl_free(t);
    json_decref(vars);
    buf_free(&b);
    free(src);
}

/* A compiled template is read-only: render it many times, appending. */
TEST(template_reuse_and_append)
{
    tpl *t;
    tpl_error e;
    CHECK_INT(tpl_compile("[{{n}}]", 7, &t, &e), ERR_OK);
    buf b;
    buf_init(&b, 100);
    buf_append_str(&b, "head:");
    for (int i = 0; i < 3; i++) {
        json_t *v = json_pack("{s:i}", "n", i);
        CHECK_INT(tpl_render(t, v, NULL, &b, &e), ERR_OK);
        json_decref(v);
    }
    CHECK_STR(b.p, "head:[0][1][2]");
    tpl_free(t);
    tpl_free(NULL);
    buf_free(&b);
}

TEST(template_binary_safe)
{
    static const char src[] = "a\0b{{x}}c";
    tpl *t;
    tpl_error e;
    CHECK_INT(tpl_compile(src, sizeof src - 1, &t, &e), ERR_OK);
    buf b;
    buf_init(&b, 100);
    json_t *v = json_loads("{\"x\":\"1\\u00002\"}", JSON_ALLOW_NUL, NULL);
    CHECK_INT(tpl_render(t, v, NULL, &b, &e), ERR_OK);
    CHECK_MEM(b.p, b.len, "a\0b1\0002c");
    json_decref(v);
    tpl_free(t);
    buf_free(&b);
    /* a template need not be NUL-terminated: only len bytes are read */
    char *heap = malloc(5);
    memcpy(heap, "{{a}}", 5);
    CHECK_INT(tpl_compile(heap, 5, &t, &e), ERR_OK);
    tpl_free(t);
    CHECK_INT(tpl_compile(heap, 4, &t, &e), ERR_PARSE);
    CHECK(strstr(e.message, "unclosed tag") != NULL);
    free(heap);
}
