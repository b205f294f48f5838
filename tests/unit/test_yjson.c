/*
 * test_yjson.c - YAML/JSON to jansson with positions (core/yjson.h): the
 * core-schema typing of scalars, tags, anchors and merge keys, the limits
 * (aliases counted each use, depth), errors with line and column, the
 * position side table, the JSON tokenizer against libyaml on the same
 * documents, and the streaming reader (items one at a time, anchors from
 * skipped keys, flat memory).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "core/yjson.h"
#include "test.h"

static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
}

/* Parses text and returns the compact JSON of its root (malloc'd), or
 * "ERR line:col message". */
static char *parse_show(const char *text, yjson_backend be)
{
    yjson_opts o = { .backend = be };
    yjson_error e;
    yjson_doc *d = yjson_parse_string(text, strlen(text), &o, &e);
    if (!d) {
        char *s = NULL;
        if (asprintf(&s, "ERR %d:%d %s", e.line, e.col, e.msg) < 0)
            return NULL;
        return s;
    }
    char *s = dump(yjson_root(d));
    yjson_free(d);
    return s;
}

TEST(yjson_scalars)
{
    static const struct {
        const char *yaml, *json;
    } cases[] = {
        { "v: 12", "{\"v\":12}" },
        { "v: -7", "{\"v\":-7}" },
        { "v: +7", "{\"v\":7}" },
        { "v: 0x1f", "{\"v\":31}" },
        { "v: 0o17", "{\"v\":15}" },
        { "v: 017", "{\"v\":17}" },
        { "v: 1.5", "{\"v\":1.5}" },
        { "v: -.5", "{\"v\":-0.5}" },
        { "v: 1e3", "{\"v\":1000.0}" },
        { "v: 2.", "{\"v\":2.0}" },
        { "v: ~", "{\"v\":null}" },
        { "v: null", "{\"v\":null}" },
        { "v: NULL", "{\"v\":null}" },
        { "v:", "{\"v\":null}" },
        { "v: true", "{\"v\":true}" },
        { "v: False", "{\"v\":false}" },
        { "v: yes", "{\"v\":\"yes\"}" },            /* YAML 1.1 booleans are text in the core schema */
        { "v: on", "{\"v\":\"on\"}" },
        { "v: 2001-12-14", "{\"v\":\"2001-12-14\"}" }, /* dates stay text */
        { "v: '12'", "{\"v\":\"12\"}" },
        { "v: \"true\"", "{\"v\":\"true\"}" },
        { "v: |\n  12\n", "{\"v\":\"12\\n\"}" },
        { "v: 1_000", "{\"v\":\"1_000\"}" },
        { "v: 0x", "{\"v\":\"0x\"}" },
        { "v: .", "{\"v\":\".\"}" },
        { "v: 1e", "{\"v\":\"1e\"}" },
        { "v: !!str 12", "{\"v\":\"12\"}" },
        { "v: ! 12", "{\"v\":\"12\"}" },
        { "v: !!int '12'", "{\"v\":12}" },
        { "v: !!float 3", "{\"v\":3.0}" },
        { "v: !!bool 'true'", "{\"v\":true}" },
        { "v: !!null ''", "{\"v\":null}" },
        { "v: !!map {a: 1}", "{\"v\":{\"a\":1}}" },
        { "1: a\ntrue: b\n~: c", "{\"1\":\"a\",\"true\":\"b\",\"~\":\"c\"}" }, /* keys are text */
        { "v: \"caf\\u00e9 \\U0001F600\"", "{\"v\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}" },
        { "", "null" },
        { "# only a comment\n", "null" },
        { "[1, [2, {a: b}]]", "[1,[2,{\"a\":\"b\"}]]" },
        { "'<<': 1", "{\"<<\":1}" },                   /* a quoted << is an ordinary key */
    };
    for (size_t i = 0; i < countof(cases); i++) {
        char *s = parse_show(cases[i].yaml, YJSON_AUTO);
        if (!s || strcmp(s, cases[i].json) != 0)
            test_fail(__FILE__, __LINE__, "case %zu (%s): %s, expected %s", i, cases[i].yaml, s ? s : "(null)",
                      cases[i].json);
        free(s);
    }
    CHECK(yjson_plain_is_string("hello", 5));
    CHECK(yjson_plain_is_string("1_0", 3));
    CHECK(!yjson_plain_is_string("10", 2));
    CHECK(!yjson_plain_is_string("~", 1));
    CHECK(!yjson_plain_is_string("", 0));
    CHECK(!yjson_plain_is_string(".inf", 4));
    CHECK(!yjson_plain_is_string(NULL, 0));
}

TEST(yjson_errors)
{
    static const struct {
        const char *text;
        int line, col;
        const char *words;
    } cases[] = {
        { "a: .inf", 1, 4, ".inf has no JSON form; quote it to keep it as text" },
        { "a: -.Inf", 1, 4, "no JSON form" },
        { "a: .nan", 1, 4, "no JSON form" },
        { "a: 99999999999999999999", 1, 4, "the number 99999999999999999999 is out of range" },
        { "a: 0x8000000000000000", 1, 4, "out of range" },
        { "a: 1e999", 1, 4, "out of range" },
        { "a: 1\nb: 2\na: 3\n", 3, 1, "the key 'a' appears twice" },
        { "x: {a: 1, a: 2}", 1, 11, "the key 'a' appears twice" },
        { "a: [\n", 2, 1, "bad YAML: did not find expected" },
        { "a: b: c", 1, 5, "bad YAML: mapping values are not allowed" },
        { "a: 1\n---\nb: 2\n", 3, 1, "more than one YAML document" },
        { "a: &x [*x]", 1, 8, "the alias *x refers to the value it is inside" },
        { "a: *nope", 1, 4, "the alias *nope has no anchor before it" },
        { "a: !foo x", 1, 4, "the tag !foo is not supported" },
        { "a: !!binary aGk=", 1, 4, "the tag !!binary is not supported" },
        { "a: !!int x", 1, 4, "'x' is not a valid !!int" },
        { "a: !!set {x}", 1, 4, "the tag !!set is not supported here" },
        { "? [a]\n: 1\n", 1, 3, "a mapping key must be a plain value" },
        { "a: \"\\0\"", 1, 4, "a string contains a NUL character" },
        { "b: &b 1\n<<: *b\n", 2, 5, "a merge key (<<) takes a mapping or a list of mappings" },
        { "a: \"\\ud800\"", 1, 7, "bad YAML" },
        { "a: \xff", 1, 4, "bad YAML: invalid leading UTF-8 octet" },
        { "a: 1\nbb: \xc3", 2, 5, "bad YAML: incomplete UTF-8 octet sequence" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        yjson_error e;
        yjson_doc *d = yjson_parse_string(cases[i].text, strlen(cases[i].text), NULL, &e);
        if (d) {
            test_fail(__FILE__, __LINE__, "case %zu (%s) parsed", i, cases[i].text);
            yjson_free(d);
            continue;
        }
        if (e.line != cases[i].line || e.col != cases[i].col || !strstr(e.msg, cases[i].words))
            test_fail(__FILE__, __LINE__, "case %zu: %d:%d %s, expected %d:%d %s", i, e.line, e.col, e.msg,
                      cases[i].line, cases[i].col, cases[i].words);
    }
}

TEST(yjson_positions)
{
    const char *text = "name: demo\n"               /* 1 */
                       "opts:\n"                    /* 2 */
                       "  flag: true\n"             /* 3 */
                       "  none: ~\n"                /* 4 */
                       "  n: 42\n"                  /* 5 */
                       "list:\n"                    /* 6 */
                       "  - a\n"                    /* 7 */
                       "  - null\n"                 /* 8 */
                       "  - {k: \"caf\xc3\xa9\", z: 1}\n"; /* 9 */
    yjson_error e;
    yjson_doc *d = yjson_parse_string(text, strlen(text), NULL, &e);
    CHECK(d != NULL);
    if (!d)
        return;
    json_t *root = yjson_root(d), *opts = json_object_get(root, "opts"), *list = json_object_get(root, "list");
    int line = 0, col = 0;
    CHECK(yjson_pos(d, root, &line, &col) && line == 1 && col == 1);
    CHECK(yjson_pos(d, json_object_get(root, "name"), &line, &col) && line == 1 && col == 7);
    CHECK(yjson_pos(d, opts, &line, &col) && line == 3 && col == 3);
    CHECK(yjson_key_pos(d, root, "opts", &line, &col) && line == 2 && col == 1);
    /* true and null are shared by jansson: no position of their own, but their member has one */
    CHECK(!yjson_pos(d, json_object_get(opts, "flag"), &line, &col));
    CHECK(yjson_member_pos(d, opts, "flag", &line, &col) && line == 3 && col == 9);
    CHECK(yjson_member_pos(d, opts, "none", &line, &col) && line == 4 && col == 9);
    CHECK(yjson_key_pos(d, opts, "none", &line, &col) && line == 4 && col == 3);
    CHECK(yjson_pos(d, json_object_get(opts, "n"), &line, &col) && line == 5 && col == 6);
    CHECK(yjson_item_pos(d, list, 1, &line, &col) && line == 8 && col == 5);
    CHECK(yjson_item_pos(d, list, 2, &line, &col) && line == 9 && col == 5);
    json_t *m = json_array_get(list, 2);
    /* columns count characters: z comes after a 2-byte character */
    CHECK(yjson_key_pos(d, m, "z", &line, &col) && line == 9 && col == 17);
    CHECK(!yjson_member_pos(d, opts, "missing", &line, &col));
    CHECK(!yjson_item_pos(d, list, 3, &line, &col));
    CHECK(!yjson_pos(d, NULL, &line, &col));
    json_t *other = json_string("x");
    CHECK(!yjson_pos(d, other, &line, &col));
    json_decref(other);
    /* spans: quotes included, style kept */
    yjson_span sp;
    CHECK(yjson_scalar_span(d, json_object_get(m, "k"), &sp) && sp.style == YJSON_DOUBLE);
    CHECK(sp.end - sp.start == 6); /* "café" with its quotes, in characters */
    CHECK(yjson_scalar_span(d, json_object_get(root, "name"), &sp) && sp.style == YJSON_PLAIN && sp.start == 6);
    yjson_free(d);
}

TEST(yjson_anchors_and_merge)
{
    const char *text = "base: &b {x: 1, y: 2, deep: {k: v}}\n"
                       "more: &m {y: 20, z: 30}\n"
                       "a:\n"
                       "  <<: *b\n"
                       "  y: 3\n"
                       "b:\n"
                       "  <<: [*m, *b]\n"
                       "c: *b\n"
                       "s: &s text\n"
                       "t: *s\n"
                       "*s : as a key\n";
    yjson_error e;
    yjson_doc *d = yjson_parse_string(text, strlen(text), NULL, &e);
    CHECK(d != NULL);
    if (!d) {
        test_fail(__FILE__, __LINE__, "%d:%d %s", e.line, e.col, e.msg);
        return;
    }
    json_t *root = yjson_root(d);
    char *a = dump(json_object_get(root, "a")), *b = dump(json_object_get(root, "b"));
    /* the mapping's own keys win; of several merged mappings the first wins */
    CHECK_STR(a, "{\"y\":3,\"x\":1,\"deep\":{\"k\":\"v\"}}");
    CHECK_STR(b, "{\"y\":20,\"z\":30,\"x\":1,\"deep\":{\"k\":\"v\"}}");
    free(a);
    free(b);
    CHECK_STR(json_string_value(json_object_get(root, "t")), "text");
    CHECK_STR(json_string_value(json_object_get(root, "text")), "as a key");
    /* an alias is a copy: changing it leaves the anchored value alone */
    json_t *c = json_object_get(root, "c");
    json_object_set_new(json_object_get(c, "deep"), "k", json_string("changed"));
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(root, "base"), "deep"), "k")), "v");
    /* copies are placed at the alias; merged members at the merge */
    int line = 0, col = 0;
    CHECK(yjson_pos(d, c, &line, &col) && line == 8 && col == 4);
    CHECK(yjson_member_pos(d, json_object_get(root, "a"), "x", &line, &col) && line == 4 && col == 7);
    CHECK(yjson_member_pos(d, json_object_get(root, "a"), "y", &line, &col) && line == 5 && col == 6);
    yjson_free(d);
}

/* The billion laughs: nine levels of ten aliases each. */
TEST(yjson_limits)
{
    char bomb[2048];
    size_t n = (size_t)snprintf(bomb, sizeof bomb, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int k = 1; k < 9; k++)
        n += (size_t)snprintf(bomb + n, sizeof bomb - n,
                              "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", k, k, k - 1,
                              k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1, k - 1);
    yjson_error e;
    yjson_doc *d = yjson_parse_string(bomb, n, NULL, &e);
    CHECK(d == NULL);
    CHECK(strstr(e.msg, "nodes") != NULL);
    /* a small budget stops a small document too */
    yjson_opts o = { .max_nodes = 5 };
    d = yjson_parse_string("[1, 2, 3, 4, 5, 6]", 18, &o, &e);
    CHECK(d == NULL && strstr(e.msg, "more than 5 nodes"));
    o.max_nodes = 7;
    d = yjson_parse_string("[1, 2, 3, 4, 5, 6]", 18, &o, &e);
    CHECK(d != NULL);
    yjson_free(d);
    /* depth: 64 containers by default, for both readers */
    char deep[300];
    for (int be = YJSON_AUTO; be <= YJSON_JSON; be++) {
        for (int levels = 64; levels <= 65; levels++) {
            memset(deep, '[', (size_t)levels);
            memset(deep + levels, ']', (size_t)levels);
            yjson_opts od = { .backend = (yjson_backend)be };
            d = yjson_parse_string(deep, (size_t)levels * 2, &od, &e);
            if (levels == 64)
                CHECK(d != NULL);
            else
                CHECK(d == NULL && strstr(e.msg, "deeper than 64"));
            yjson_free(d);
        }
    }
    /* an alias to a deep value counts its depth where it is used */
    o = (yjson_opts){ .max_depth = 3 };
    d = yjson_parse_string("a: &a [[1]]\nb: [*a]\n", 20, &o, &e);
    CHECK(d == NULL && strstr(e.msg, "deeper than 3"));
    /* scalars longer than max_scalar */
    o = (yjson_opts){ .max_scalar = 4 };
    d = yjson_parse_string("a: 12345", 8, &o, &e);
    CHECK(d == NULL && strstr(e.msg, "longer than 4 bytes"));
}

/* Every member's position in a and b agree (same shapes). */
static void same_positions(const yjson_doc *da, const json_t *a, const yjson_doc *db, const json_t *b, int *bad)
{
    int la, ca, lb, cb;
    if (json_is_object(a)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v) {
            bool x = yjson_member_pos(da, a, k, &la, &ca), y = yjson_member_pos(db, b, k, &lb, &cb);
            if (x != y || (x && (la != lb || ca != cb)))
                (*bad)++;
            x = yjson_key_pos(da, a, k, &la, &ca);
            y = yjson_key_pos(db, b, k, &lb, &cb);
            if (x != y || (x && (la != lb || ca != cb)))
                (*bad)++;
            same_positions(da, v, db, json_object_get(b, k), bad);
        }
    } else if (json_is_array(a)) {
        for (size_t i = 0; i < json_array_size(a); i++) {
            bool x = yjson_item_pos(da, a, i, &la, &ca), y = yjson_item_pos(db, b, i, &lb, &cb);
            if (x != y || (x && (la != lb || ca != cb)))
                (*bad)++;
            same_positions(da, json_array_get(a, i), db, json_array_get(b, i), bad);
        }
    }
}

/* The JSON tokenizer gives what libyaml gives, values and positions. */
TEST(yjson_json_matches_yaml)
{
    static const char *const docs[] = {
        "{\"a\": 1, \"b\": [true, false, null], \"c\": {\"d\": -1.5e3, \"e\": \"x\\ny\\u00e9\\\\\\/\"}}",
        "[\n  {\"vars\": {\"q\": \"question\"},\n   \"assert\": [{\"type\": \"contains\", \"value\": \"Hi\"}]}\n]\n",
        "{\n \"k\": [\n  1,\n  2.25,\n  \"caf\xc3\xa9\",\n  [],\n  {}\n ]\n}",
        "\xef\xbb\xbf{\"bom\": 0}",
        "{\"emoji\": \"\xf0\x9f\x98\x80\", \"big\": 9223372036854775807, \"neg\": -0}",
        "[\"<<\", {\"<<\": 1}]",
    };
    for (size_t i = 0; i < countof(docs); i++) {
        yjson_opts oj = { .backend = YJSON_JSON }, oy = { .backend = YJSON_YAML };
        yjson_error e;
        yjson_doc *dj = yjson_parse_string(docs[i], strlen(docs[i]), &oj, &e);
        if (!dj)
            test_fail(__FILE__, __LINE__, "doc %zu: json: %d:%d %s", i, e.line, e.col, e.msg);
        yjson_doc *dy = yjson_parse_string(docs[i], strlen(docs[i]), &oy, &e);
        if (!dy)
            test_fail(__FILE__, __LINE__, "doc %zu: yaml: %d:%d %s", i, e.line, e.col, e.msg);
        if (dj && dy) {
            char *a = dump(yjson_root(dj)), *b = dump(yjson_root(dy));
            if (strcmp(a, b) != 0)
                test_fail(__FILE__, __LINE__, "doc %zu: %s vs %s", i, a, b);
            free(a);
            free(b);
            int bad = 0;
            same_positions(dj, yjson_root(dj), dy, yjson_root(dy), &bad);
            if (bad)
                test_fail(__FILE__, __LINE__, "doc %zu: %d positions differ", i, bad);
            CHECK(yjson_doc_backend(dj) == YJSON_JSON && yjson_doc_backend(dy) == YJSON_YAML);
        }
        /* AUTO takes the JSON reader for these */
        yjson_doc *da = yjson_parse_string(docs[i], strlen(docs[i]), NULL, &e);
        CHECK(da && yjson_doc_backend(da) == YJSON_JSON);
        yjson_free(da);
        yjson_free(dj);
        yjson_free(dy);
    }
    /* JSON-looking YAML falls back to libyaml; strict JSON refuses it */
    static const char *const yamlish[] = { "{a: 1}", "[1, 2] # note", "{\"a\": 1, }", "[1, 2,]", "{\"a\": 'x'}" };
    for (size_t i = 0; i < countof(yamlish); i++) {
        yjson_error e;
        yjson_doc *d = yjson_parse_string(yamlish[i], strlen(yamlish[i]), NULL, &e);
        CHECK(d && yjson_doc_backend(d) == YJSON_YAML);
        yjson_free(d);
        yjson_opts oj = { .backend = YJSON_JSON };
        d = yjson_parse_string(yamlish[i], strlen(yamlish[i]), &oj, &e);
        CHECK(d == NULL && strncmp(e.msg, "bad JSON", 8) == 0);
    }
    /* JSON errors the meaning of which is wrong are reported as they are, not retried */
    yjson_error e;
    CHECK(yjson_parse_string("{\"a\": 1, \"a\": 2}", 16, NULL, &e) == NULL);
    CHECK(strstr(e.msg, "appears twice") && e.line == 1 && e.col == 10);
    static const struct {
        const char *text;
        const char *words;
    } bad[] = {
        { "{\"a\": 01}", "leading zero" },  { "{\"a\": 1.}", "bad number" },  { "[\"\\x\"]", "bad escape" },
        { "[\"\\ud800\"]", "lone surrogate" }, { "[\"a\tb\"]", "control character" }, { "[tru]", "unexpected" },
        { "[1] 2", "after the end" },         { "{\"a\" 1}", "expected ':'" }, { "[\"abc", "not closed" },
        { "[\"\xc3\x28\"]", "not valid UTF-8" },
    };
    for (size_t i = 0; i < countof(bad); i++) {
        yjson_opts oj = { .backend = YJSON_JSON };
        yjson_doc *d = yjson_parse_string(bad[i].text, strlen(bad[i].text), &oj, &e);
        if (d || !strstr(e.msg, bad[i].words))
            test_fail(__FILE__, __LINE__, "bad %zu (%s): %s", i, bad[i].text, d ? "parsed" : e.msg);
        yjson_free(d);
    }
}

/* A temporary file holding text, rewound. */
static FILE *tmp_with(const char *text)
{
    FILE *f = tmpfile();
    if (f) {
        fputs(text, f);
        rewind(f);
    }
    return f;
}

typedef struct seen {
    char log[1024];
    size_t n;
} seen;

static void on_skip(void *ctx, const yjson_event *ev)
{
    seen *s = ctx;
    static const char *const names[] = { "S", "A", "[", "]", "{", "}", "R" };
    int w = snprintf(s->log + s->n, sizeof s->log - s->n, "%s%d%s%s%.*s ", names[ev->type], ev->depth,
                     ev->anchored ? "&" : "", ev->value ? ":" : "", (int)(ev->value ? ev->len : 0),
                     ev->value ? ev->value : "");
    if (w > 0 && s->n + (size_t)w < sizeof s->log)
        s->n += (size_t)w;
}

TEST(yjson_skip_key)
{
    const char *text = "a: 1\ntests:\n  - {q: x, l: [1, 2]}\n  - &t k\n  - *t\nb: *t\n";
    seen s = { .n = 0 };
    yjson_opts o = { .skip_key = "tests", .on_skip = on_skip, .skip_ctx = &s };
    yjson_error e;
    yjson_doc *d = yjson_parse_string(text, strlen(text), &o, &e);
    CHECK(d != NULL);
    if (!d)
        return;
    char *j = dump(yjson_root(d));
    /* the skipped key is not built, but the anchor inside it is */
    CHECK_STR(j, "{\"a\":1,\"b\":\"k\"}");
    free(j);
    CHECK_STR(s.log, "[0 {1 S2:q S2:x S2:l [2 S3:1 S3:2 ]2 }1 S1& A1:t ]0 ");
    yjson_free(d);
    /* a JSON attempt that fails resets the watcher before libyaml starts over */
    s.n = 0;
    s.log[0] = '\0';
    const char *yamlish = "{\"tests\": [1, 2], x: 1}";
    d = yjson_parse_string(yamlish, strlen(yamlish), &o, &e);
    CHECK(d != NULL && yjson_doc_backend(d) == YJSON_YAML);
    CHECK(strstr(s.log, "R0") != NULL);
    CHECK(strstr(strstr(s.log, "R0"), "[0 S1:1 S1:2 ]0") != NULL);
    yjson_free(d);
    /* the skipped key twice is still an error */
    d = yjson_parse_string("tests: 1\ntests: 2\n", 18, &o, &e);
    CHECK(d == NULL && strstr(e.msg, "'tests' appears twice") && e.line == 2);
}

/* A skipped value is bounded by max_depth as a built one is, and the error
 * comes at the first level too many: libyaml's scanner is quadratic in the
 * nesting of flow collections, so walking 50,000 '[' to the end took
 * seconds (a hostile suite's tests). */
TEST(yjson_skip_depth)
{
    yjson_opts o = { .skip_key = "tests" };
    yjson_error e;
    char text[7 + 2 * 64];
    for (int levels = 63; levels <= 64; levels++) { /* the root mapping is level 1 */
        memcpy(text, "tests: ", 7);
        memset(text + 7, '[', (size_t)levels);
        memset(text + 7 + levels, ']', (size_t)levels);
        yjson_doc *d = yjson_parse_string(text, 7 + 2 * (size_t)levels, &o, &e);
        if (levels == 63)
            CHECK(d != NULL);
        else
            CHECK(d == NULL && strstr(e.msg, "deeper than 64") && e.line == 1 && e.col == 8 + 63);
        yjson_free(d);
    }
    size_t deep = 50000, n = 7 + 2 * deep;
    char *big = malloc(n);
    if (!big)
        return;
    memcpy(big, "tests: ", 7);
    memset(big + 7, '[', deep);
    memset(big + 7 + deep, ']', deep);
    yjson_doc *d = yjson_parse_string(big, n, &o, &e);
    CHECK(d == NULL && strstr(e.msg, "deeper than 64") && e.col == 8 + 63);
    /* the stream passes other keys around its list with the same bound */
    FILE *f = tmpfile();
    if (f) {
        fputs("other: ", f);
        fwrite(big + 7, 1, n - 7, f);
        fputs("\ntests: [1]\n", f);
        rewind(f);
        yjson_stream *s = yjson_stream_open(f, "tests", NULL, &e);
        json_t *it = NULL;
        int r = s ? yjson_stream_next(s, &it, &e) : -1;
        CHECK(r == -1 && strstr(e.msg, "deeper than 64"));
        json_decref(it);
        yjson_stream_close(s);
        fclose(f);
    }
    yjson_free(d);
    free(big);
}

static size_t stream_all(FILE *f, const char *key, size_t *n, yjson_error *e, char *first, size_t cap)
{
    *n = 0;
    yjson_stream *s = yjson_stream_open(f, key, NULL, e);
    if (!s)
        return 0;
    json_t *it;
    int r;
    while ((r = yjson_stream_next(s, &it, e)) == 1) {
        if (*n == 0 && first) {
            char *j = dump(it);
            snprintf(first, cap, "%s", j);
            free(j);
        }
        (*n)++;
        json_decref(it);
    }
    yjson_stream_close(s);
    return r == 0 ? 1 : 0;
}

TEST(yjson_stream)
{
    const char *text = "defs:\n"
                       "  common: &c {type: contains, value: x}\n"
                       "tests:\n"
                       "  - vars: {q: one}\n"
                       "    assert: [*c]\n"
                       "  - vars: {q: &two two}\n"
                       "  - vars: {q: *two}\n"
                       "after: {x: 1}\n";
    FILE *f = tmp_with(text);
    yjson_error e;
    yjson_stream *s = yjson_stream_open(f, "tests", NULL, &e);
    CHECK(s != NULL);
    if (!s) {
        fclose(f);
        return;
    }
    int line, col;
    yjson_stream_list_pos(s, &line, &col);
    CHECK(line == 4 && col == 3);
    json_t *it;
    CHECK_INT(yjson_stream_next(s, &it, &e), 1);
    char *j = dump(it);
    CHECK_STR(j, "{\"vars\":{\"q\":\"one\"},\"assert\":[{\"type\":\"contains\",\"value\":\"x\"}]}");
    free(j);
    const yjson_doc *d = yjson_stream_doc(s);
    CHECK(yjson_pos(d, it, &line, &col) && line == 4 && col == 5);
    CHECK(yjson_pos(d, json_array_get(json_object_get(it, "assert"), 0), &line, &col) && line == 5 && col == 14);
    json_t *keep = it;
    CHECK_INT(yjson_stream_next(s, &it, &e), 1);
    /* the previous item's positions are gone with it */
    CHECK(!yjson_pos(d, json_object_get(keep, "vars"), &line, &col));
    json_decref(keep);
    json_decref(it);
    CHECK_INT(yjson_stream_next(s, &it, &e), 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(it, "vars"), "q")), "two");
    json_decref(it);
    CHECK_INT(yjson_stream_next(s, &it, &e), 0);
    CHECK_INT(yjson_stream_next(s, &it, &e), 0);
    CHECK(yjson_stream_backend(s) == YJSON_YAML);
    yjson_stream_close(s);
    fclose(f);

    static const struct {
        const char *text, *key;
        int ok;
        size_t n;
        const char *first;
    } cases[] = {
        { "- a\n- b\n- c\n", NULL, 1, 3, "\"a\"" },
        { "{\"t\": [{\"x\": 1}, {\"x\": 2}], \"u\": 3}", "t", 1, 2, "{\"x\":1}" },
        { "x: 1\n", "t", 1, 0, "" },                  /* no such key: no items */
        { "t: ~\n", "t", 1, 0, "" },
        { "", NULL, 1, 0, "" },                       /* an empty document */
        { "vars: {a: 1}\n", NULL, 1, 1, "{\"vars\":{\"a\":1}}" }, /* one mapping is one item */
        { "l: &l [1, 2]\nt: *l\n", "t", 1, 2, "1" },  /* an aliased list */
        { "t: &l [5, 6]\n", "t", 1, 2, "5" },         /* an anchored list */
        { "t: 3\n", "t", 0, 0, "'t' must be a list" },
        { "- 1\n- [\n", NULL, 0, 1, "bad YAML" },
        { "[1, 2", NULL, 0, 2, "bad YAML" },          /* streamed: the items before the error come out */
        { "- 1\n- .inf\n", NULL, 0, 1, "no JSON form" },
        { "just text\n", NULL, 0, 0, "must be a list" },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        FILE *tf = tmp_with(cases[i].text);
        size_t n = 0;
        char first[256] = "";
        int ok = (int)stream_all(tf, cases[i].key, &n, &e, first, sizeof first);
        fclose(tf);
        if (ok != cases[i].ok || n != cases[i].n)
            test_fail(__FILE__, __LINE__, "case %zu: ok %d n %zu (%s)", i, ok, n, e.msg);
        else if (ok && n && strcmp(first, cases[i].first) != 0)
            test_fail(__FILE__, __LINE__, "case %zu: first %s, expected %s", i, first, cases[i].first);
        else if (!ok && !strstr(e.msg, cases[i].first))
            test_fail(__FILE__, __LINE__, "case %zu: '%s' lacks '%s'", i, e.msg, cases[i].first);
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* Streaming 40,000 items holds no more memory than streaming 1,000. */
TEST(yjson_stream_flat_memory)
{
    for (int json = 0; json < 2; json++) {
        FILE *f = tmpfile();
        if (!f)
            return;
        fputs(json ? "{\"tests\": [\n" : "tests:\n", f);
        for (int i = 0; i < 40000; i++)
            fprintf(f, json ? "%s{\"vars\": {\"q\": \"question %d\"}, \"assert\": [{\"type\": \"contains\"}]}\n"
                            : "%s  - vars: {q: question %d}\n    assert: [{type: contains}]\n",
                    json && i ? "," : "", i);
        fputs(json ? "]}\n" : "", f);
        rewind(f);
        yjson_error e;
        yjson_stream *s = yjson_stream_open(f, "tests", NULL, &e);
        CHECK(s != NULL);
        if (!s) {
            fclose(f);
            return;
        }
        CHECK(yjson_stream_backend(s) == (json ? YJSON_JSON : YJSON_YAML));
        json_t *it;
        size_t n = 0, at1k = 0, at40k = 0;
        while (yjson_stream_next(s, &it, &e) == 1) {
            json_decref(it);
            n++;
            if (n == 1000 || n == 40000) {
                struct mallinfo2 mi = mallinfo2();
                if (n == 1000)
                    at1k = mi.uordblks;
                else
                    at40k = mi.uordblks;
            }
        }
        CHECK_INT(n, 40000);
#ifndef UNDER_ASAN
        if (at40k > at1k + 64 * 1024)
            test_fail(__FILE__, __LINE__, "memory grew from %zu to %zu bytes", at1k, at40k);
#else
        UNUSED(at1k);
        UNUSED(at40k);
#endif
        yjson_stream_close(s);
        fclose(f);
    }
}

/* Crashers and corners found by fuzz_yjson, kept as regression tests. */
TEST(yjson_fuzz_regressions)
{
    /* CR alone ends a line for libyaml, and for the JSON reader as well */
    yjson_error e;
    char cr[256];
    int n = snprintf(cr, sizeof cr, "abes: &b {x- 1}\nm:\n %s <<: *b\n  y: 2\nQ: [[*B,*b, *b]\n",
                     "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r"
                     "\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r");
    yjson_doc *d = yjson_parse_string(cr, (size_t)n, NULL, &e);
    CHECK(d == NULL);
    yjson_free(d);
    CHECK_INT(e.line, 66); /* line 3 ends with the first of 62 CRs: "  y: 2" is line 66 */
    CHECK(strstr(e.msg, "bad YAML") != NULL);
    const char *json = "{\r\"a\":\r\n[1,\r2]}";
    yjson_opts oj = { .backend = YJSON_JSON }, oy = { .backend = YJSON_YAML };
    yjson_doc *dj = yjson_parse_string(json, strlen(json), &oj, &e), *dy = yjson_parse_string(json, strlen(json), &oy, &e);
    CHECK(dj && dy);
    if (dj && dy) {
        json_t *aj = json_object_get(yjson_root(dj), "a"), *ay = json_object_get(yjson_root(dy), "a");
        int l1 = 0, c1 = 0, l2 = 0, c2 = 0;
        CHECK(yjson_item_pos(dj, aj, 1, &l1, &c1) && yjson_item_pos(dy, ay, 1, &l2, &c2));
        CHECK_INT(l1, 4);
        CHECK_INT(l2, 4);
        CHECK_INT(c1, c2);
    }
    yjson_free(dj);
    yjson_free(dy);
}
