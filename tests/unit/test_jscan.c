/*
 * test_jscan.c - the zero-allocation JSON scanner (src/core/jscan.c).
 *
 * jansson is the oracle: every case of the accept/reject table, every
 * document of the golden corpus in tests/data/jscan/ and thousands of
 * seeded random mutations of it must be accepted by jscan_validate exactly
 * when json_loadb (JSON_DECODE_ANY) accepts them, and with
 * JSON_REJECT_DUPLICATES exactly when no object anywhere has a duplicate
 * key by jscan_has_duplicate_keys. Accepted documents are walked with the
 * readers (iterate, get, string, int) and compared value by value with
 * jansson's tree. Then error positions and messages, the readers on a
 * nested document with escapes, duplicate keys in big objects and
 * jscan_escape.
 */
#include <jansson.h>
#include <stdlib.h>
#include "core/jscan.h"
#include "test.h"

/* ---- jansson as the oracle ----------------------------------------------- */

static bool jansson_accepts(const char *p, size_t n, size_t flags)
{
    json_error_t je;
    json_t *j = json_loadb(p, n, JSON_DECODE_ANY | flags, &je);
    json_decref(j);
    return j != NULL;
}

/* jansson 2.14 drops a NUL byte that directly follows a number or a
 * literal (the lexer puts the byte back, and its one-byte buffer takes a
 * 0 for "empty"), so it accepts "[1\0]". jscan refuses, as RFC 8259 says;
 * when jansson accepts and jscan's error is at such a NUL, that is this bug. */
static bool jansson_nul_quirk(const char *p, size_t n, size_t at)
{
    return at > 0 && at < n && p[at] == '\0' &&
           ((p[at - 1] >= '0' && p[at - 1] <= '9') || (p[at - 1] >= 'a' && p[at - 1] <= 'z') ||
            (p[at - 1] >= 'A' && p[at - 1] <= 'Z'));
}

/* Does any object in v, at any depth, hold a key twice? */
static bool any_dups(jval v)
{
    jscan_iter it;
    jval k, x;
    if (v.type == J_OBJECT && jscan_has_duplicate_keys(v))
        return true;
    jscan_iter_init(&it, v);
    while (jscan_next(&it, &k, &x))
        if (any_dups(x))
            return true;
    return false;
}

/* A string's unescaped content in a malloc'd buffer (via the size query). */
static char *str_dup(jval v, size_t *len)
{
    size_t n = 0;
    if (jscan_string(v, NULL, 0, &n))
        return NULL; /* cannot fit in nothing */
    char *s = malloc(n + 1);
    if (!s || !jscan_string(v, s, n + 1, len)) {
        free(s);
        return NULL;
    }
    return s;
}

/* Compares v with jansson's j; returns NULL or a description of the first
 * difference. */
static const char *tree_diff(jval v, const json_t *j)
{
    jscan_iter it;
    jval k, x;
    long long iv;
    switch (v.type) {
    case J_OBJECT: {
        if (!json_is_object(j))
            return "object vs other";
        size_t members = 0, distinct = 0;
        jscan_iter_init(&it, v);
        while (jscan_next(&it, &k, &x)) {
            members++;
            size_t kl;
            char *key = str_dup(k, &kl);
            if (!key)
                return "key does not unescape";
            jval last;
            bool dup;
            bool found = jscan_get(v, key, &last, &dup);
            const json_t *jv = json_object_get(j, key);
            free(key);
            if (!found || !jv)
                return "member not found";
            if (last.p == x.p) { /* the last occurrence is the one jansson keeps */
                distinct++;
                const char *d = tree_diff(x, jv);
                if (d)
                    return d;
            } else if (!dup) {
                return "an earlier occurrence without dup set";
            }
        }
        if (distinct != json_object_size(j))
            return "member count";
        if (jscan_has_duplicate_keys(v) != (members != distinct))
            return "has_duplicate_keys";
        return NULL;
    }
    case J_ARRAY: {
        if (!json_is_array(j))
            return "array vs other";
        size_t i = 0;
        jscan_iter_init(&it, v);
        while (jscan_next(&it, &k, &x)) {
            if (k.type != J_NONE)
                return "array element with a key";
            const char *d = tree_diff(x, json_array_get(j, i++));
            if (d)
                return d;
        }
        return i == json_array_size(j) ? NULL : "element count";
    }
    case J_STRING: {
        if (!json_is_string(j))
            return "string vs other";
        size_t n;
        char *s = str_dup(v, &n);
        bool same = s && n == json_string_length(j) && memcmp(s, json_string_value(j), n) == 0;
        free(s);
        if (!same)
            return "string content";
        return jscan_string_eq(v, json_string_value(j)) ? NULL : "string_eq";
    }
    case J_NUMBER:
        if (jscan_int(v, &iv))
            return json_is_integer(j) && json_integer_value(j) == iv ? NULL : "integer";
        return json_is_real(j) ? NULL : "real vs other";
    case J_TRUE: return json_is_true(j) ? NULL : "true";
    case J_FALSE: return json_is_false(j) ? NULL : "false";
    case J_NULL: return json_is_null(j) ? NULL : "null";
    default: return "no value";
    }
}

static bool same_jval(jval a, jval b) { return a.type == b.type && a.p == b.p && a.len == b.len; }

/* jscan_parse must agree with jscan_validate, and its members with the
 * iterator's (and duplicates among them with jscan_has_duplicate_keys). */
static const char *parse_diff(const char *p, size_t n, bool valid, const jscan_error *ve)
{
    jscan_member top[16];
    size_t count = 99;
    jval root;
    jscan_error e;
    bool ok = jscan_parse(p, n, JSCAN_MAX_DEPTH, &root, top, countof(top), &count, &e);
    if (ok != valid)
        return "verdict";
    if (!ok)
        return e.offset == ve->offset && strcmp(e.message, ve->message) == 0 && root.type == J_NONE && count == 0
                   ? NULL
                   : "error";
    if (!same_jval(root, jscan_root(p, n)))
        return "root";
    jscan_iter it;
    jval k, v;
    size_t i = 0;
    jscan_iter_init(&it, root);
    for (; jscan_next(&it, &k, &v); i++)
        if (i < countof(top) && (!same_jval(top[i].key, k) || !same_jval(top[i].val, v)))
            return "member";
    if (i != count)
        return "count";
    if (root.type == J_OBJECT && count <= countof(top) &&
        jscan_duplicate_members(top, count) != jscan_has_duplicate_keys(root))
        return "duplicate_members";
    return NULL;
}

/* Checks jscan against jansson on one document; returns false (after
 * reporting) on any disagreement. */
static bool agree(const char *p, size_t n, const char *what)
{
    jscan_error e;
    memset(&e, 0, sizeof e);
    bool ours = jscan_validate(p, n, JSCAN_MAX_DEPTH, &e);
    bool theirs = jansson_accepts(p, n, 0);
    if (!ours && theirs && strncmp(e.message, "nesting deeper than", 19) == 0)
        return true; /* the documented difference (see JSCAN_MAX_DEPTH) */
    if (!ours && theirs && jansson_nul_quirk(p, n, e.offset))
        return true;
    if (ours != theirs) {
        test_fail(__FILE__, __LINE__, "%s: jscan %s, jansson %s: %.*s%s%s", what, ours ? "accepts" : "rejects",
                  theirs ? "accepts" : "rejects", (int)MIN(n, 200), p, ours ? "" : " -- ", ours ? "" : e.message);
        return false;
    }
    const char *pd = parse_diff(p, n, ours, &e);
    if (pd) {
        test_fail(__FILE__, __LINE__, "%s: jscan_parse differs (%s): %.*s", what, pd, (int)MIN(n, 200), p);
        return false;
    }
    if (!ours) {
        if (e.offset > n || e.line < 1 || e.column < 1 || !e.message[0]) {
            test_fail(__FILE__, __LINE__, "%s: bad error report (offset %zu, %d:%d '%s')", what, e.offset, e.line,
                      e.column, e.message);
            return false;
        }
        return true;
    }
    jval root = jscan_root(p, n);
    json_t *j = json_loadb(p, n, JSON_DECODE_ANY, NULL);
    const char *d = tree_diff(root, j);
    json_decref(j);
    if (d) {
        test_fail(__FILE__, __LINE__, "%s: readers differ from jansson (%s): %.*s", what, d, (int)MIN(n, 200), p);
        return false;
    }
    if (jansson_accepts(p, n, JSON_REJECT_DUPLICATES) == any_dups(root)) {
        test_fail(__FILE__, __LINE__, "%s: duplicate keys differ from JSON_REJECT_DUPLICATES: %.*s", what,
                  (int)MIN(n, 200), p);
        return false;
    }
    return true;
}

/* ---- the accept/reject table --------------------------------------------- */

typedef struct doc_case {
    const char *doc;
    size_t len;
    bool valid;
} doc_case;

#define Y(s) { s, sizeof(s) - 1, true }
#define N(s) { s, sizeof(s) - 1, false }

static const doc_case cases[] = {
    /* structure */
    Y("[]"), Y("{}"), Y("[ ]"), Y("{ }"), Y(" \t\r\n[]\n"), Y("[[]]"), Y("[{}]"), Y("[[[[[[]]]]]]"),
    Y("[1,2,3]"), Y("[ 1 , 2 ]"), Y("[\n1\r\n]\t"), Y("{\"a\":1}"), Y("{ \"a\" : 1 , \"b\" : [ ] }"),
    Y("{\"a\":{\"b\":[1,{\"c\":null}]}}"), Y("{\"\":0}"), Y("{\"a\":1,\"a\":2}"), Y("[{\"a\":[{\"a\":{}}]}]"),
    N(""), N(" "), N("\n\t"), N("["), N("]"), N("{"), N("}"), N("[1"), N("[1,"), N("[1,]"), N("[,1]"),
    N("[,]"), N("[1,,2]"), N("[1 2]"), N("[1:2]"), N("{\"a\""), N("{\"a\":"), N("{\"a\":1"), N("{\"a\":1,}"),
    N("{,}"), N("{a:1}"), N("{\"a\" 1}"), N("{\"a\"::1}"), N("{1:1}"), N("{null:1}"), N("{\"a\":1 \"b\":2}"),
    N("{\"a\":1;\"b\":2}"), N("{\"a\"}"), N("[}"), N("{]"), N("[1]]"), N("[1]}"), N("{}}"), N("[1]x"),
    N("[1] [2]"), N("{}{}"), N("[] 1"), N("1 2"), N("[\"a\",]"), N("{\"a\":1}," ), N("[[]"), N("[[[]]"),
    /* scalars at the top level (RFC 8259; jansson with JSON_DECODE_ANY) */
    Y("1"), Y("-1"), Y(" 0 "), Y("\"x\""), Y("\"\""), Y("true"), Y("false"), Y("null"), Y(" null\n"),
    N("tru"), N("nul"), N("fals"), N("True"), N("NULL"), N("nulll"), N("truefalse"), N("'x'"), N("x"),
    /* literals */
    Y("[true,false,null]"), N("[tru]"), N("[True]"), N("[nul]"), N("[falsey]"), N("[truefalse]"), N("[t]"),
    N("[true1]"), N("[nan]"), N("[NaN]"), N("[Infinity]"), N("[-Infinity]"), N("[undefined]"),
    /* numbers */
    Y("[0]"), Y("[-0]"), Y("[0.5]"), Y("[-0.0]"), Y("[1e5]"), Y("[1E5]"), Y("[1e+5]"), Y("[1E-5]"),
    Y("[-1.5e-3]"), Y("[0e0]"), Y("[0E+0]"), Y("[123456789]"), Y("[10]"), Y("[1.000000000000000000001]"),
    N("[01]"), N("[-01]"), N("[00]"), N("[0.]"), N("[1.]"), N("[.1]"), N("[-.1]"), N("[1.e1]"), N("[1e]"),
    N("[1e+]"), N("[1e-]"), N("[1E]"), N("[+1]"), N("[-]"), N("[--1]"), N("[- 1]"), N("[0x10]"), N("[1_000]"),
    N("[1,000.0e]"), N("[2.e3]"), N("[1e1.5]"), N("[1ee5]"), N("[1e+-5]"), N("[0-1]"), N("[1-]"), N("[-a]"),
    N("-"), N("01"), N("1."), N("[\xef\xbc\x91]"),
    /* number ranges as jansson enforces them */
    Y("[9223372036854775807]"), Y("[-9223372036854775808]"), Y("[1000000000000000000]"),
    Y("[-1000000000000000000]"), Y("[9223372036854775807.0]"), Y("[18446744073709551616e0]"),
    Y("[1.7976931348623157e308]"), Y("[-1.7976931348623157e308]"), Y("[1e308]"), Y("[1e-400]"),
    Y("[-1e-400]"), Y("[0e1000000000000000000000]"), Y("[0.000e999]"), Y("[1e-99999999999999999999]"),
    Y("[0.0000000001e318]"), Y("[100e306]"), Y("[1.797693134862315807937289714053e308]"),
    N("[9223372036854775808]"), N("[-9223372036854775809]"), N("[18446744073709551616]"),
    N("[99999999999999999999]"), N("[-99999999999999999999999999]"), N("[1e309]"), N("[-1e309]"),
    N("[1.8e308]"), N("[10e308]"), N("[0.00001e314]"), N("[1e99999999999999999999]"), N("[2e308]"),
    N("9223372036854775808"),
    /* strings */
    Y("[\"\"]"), Y("[\"abc\"]"), Y("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"), Y("[\"\\u0041\"]"), Y("[\"\\u00e9\"]"),
    Y("[\"\\u00E9\"]"), Y("[\"\\uD83D\\uDE00\"]"), Y("[\"\\udbff\\udfff\"]"), Y("[\"\\ud800\\udc00\"]"),
    Y("[\"\\u0001\"]"), Y("[\"\\u001f\"]"), Y("[\"\\uffff\"]"), Y("[\"\\ufeff\"]"), Y("[\"a/b\"]"),
    Y("[\"\x7f\"]"), Y("[\" \"]"), Y("[\"\\\\u0000\"]"), Y("[\"[]{}:,\"]"), Y("{\"\\u0061\":1,\"a\":2}"),
    N("[\"abc]"), N("[\"abc"), N("[\"\\\"]"), N("[\"\\"), N("\""), N("[\"a\tb\"]"), N("[\"\n\"]"),
    N("[\"\r\"]"), N("[\"\x01\"]"), N("[\"\x1f\"]"), N("[\"\\x41\"]"), N("[\"\\a\"]"), N("[\"\\'\"]"),
    N("[\"\\U0041\"]"), N("[\"\\u12\"]"), N("[\"\\u12G4\"]"), N("[\"\\u\"]"), N("[\"\\u 123\"]"),
    N("[\"\\ud800\"]"), N("[\"\\udbff\"]"), N("[\"\\udc00\"]"), N("[\"\\udfff\"]"), N("[\"\\ud800\\u0041\"]"),
    N("[\"\\ud800\\ud800\"]"), N("[\"\\ud800\\\"]"), N("[\"\\ud800\\n\"]"), N("[\"\\udc00\\ud800\"]"),
    N("[\"\\ud800x\"]"), N("[\"\\u0000\"]"), N("[\"a\\u0000b\"]"), N("{\"\\u0000\":1}"), N("['a']"),
    N("[\"a\" \"b\"]"), N("{\"a\\u0000\":1}"),
    /* UTF-8 inside strings */
    Y("[\"\xc3\xa9\"]"), Y("[\"\xe2\x82\xac\"]"), Y("[\"\xf0\x9f\x98\x80\"]"), Y("[\"\xf4\x8f\xbf\xbf\"]"),
    Y("[\"\xef\xbf\xbf\"]"), Y("[\"\xed\x9f\xbf\"]"), Y("[\"\xee\x80\x80\"]"), Y("[\"\xc2\x80\"]"),
    Y("[\"\xe0\xa0\x80\"]"), Y("[\"\xf0\x90\x80\x80\"]"), Y("[\"\xef\xbb\xbf\"]"), Y("{\"\xc3\xa9\":1}"),
    N("[\"\xff\"]"), N("[\"\xfe\"]"), N("[\"\x80\"]"), N("[\"\xbf\"]"), N("[\"\xc0\xaf\"]"), N("[\"\xc1\xbf\"]"),
    N("[\"\xe0\x80\xaf\"]"), N("[\"\xe0\x9f\xbf\"]"), N("[\"\xf0\x80\x80\xaf\"]"), N("[\"\xf0\x8f\xbf\xbf\"]"),
    N("[\"\xed\xa0\x80\"]"), N("[\"\xed\xbf\xbf\"]"), N("[\"\xf4\x90\x80\x80\"]"), N("[\"\xf5\x80\x80\x80\"]"),
    N("[\"\xf8\x88\x80\x80\x80\"]"), N("[\"\xc3\"]"), N("[\"\xe2\x82\"]"), N("[\"\xf0\x9f\x98\"]"),
    N("[\"\xc3\x28\"]"), N("[\"\xe2\x28\xa1\"]"), N("[\"\xc3"), N("[\"\xf0\x9f"), N("{\"\xff\":1}"),
    N("[\"\xc3\xa9\xa9\"]"),
    /* outside strings */
    N("\xef\xbb\xbf[]"), N("[\xc3\xa9]"), N("[\xff]"), N("[\xc2\xa0" "1]"), N("[1]\xc2\xa0"),
    /* NUL bytes */
    N("\0"), N("[\0]"), N("[1]\0"), N("[\"a\0b\"]"), N("\0[]"), N("{\"a\0\":1}"),
    N("[1\0]"), N("[true\0]"), N("1\0"), N("{\"a\":1.5\0}"), /* jansson takes these four (a bug) */
    /* whitespace jansson does not take */
    N("[\f1]"), N("[\v1]"), N("[1]\f"), N("\x1c[]"),
    /* comments and other extensions */
    N("[1]//x"), N("/*x*/[1]"), N("[1,/*x*/2]"), N("# c\n[]"), N("{\"a\":1,}\n"), N("[1,2,]"),
    /* long and mixed documents */
    Y("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi \\\"there\\\" \xc3\xa9\"}],"
      "\"stream\":true,\"n\":1,\"temperature\":0.2}"),
    Y("[\"0123456789abcdef0123456789abcdef\\n0123456789abcdef\", \"01234567\"]"),
    N("[\"0123456789abcdef0123456789abcdef\n0123456789abcdef\"]"),
    N("[\"0123456789abcdef0123456789abc\xff" "def0123456789abcdef\"]"),
    N("[\"0123456789abcdef0123456789abcd\xc3\"]"),
};

TEST(jscan_table_matches_jansson)
{
    for (size_t i = 0; i < countof(cases); i++) {
        const doc_case *c = &cases[i];
        /* an exact-size heap copy so ASan catches any read past the end */
        char *copy = malloc(c->len ? c->len : 1);
        memcpy(copy, c->doc, c->len);
        jscan_error e;
        bool ok = jscan_validate(copy, c->len, JSCAN_MAX_DEPTH, &e);
        if (ok != c->valid)
            test_fail(__FILE__, __LINE__, "case %zu %s: expected %s, got %s (%s)", i, c->doc,
                      c->valid ? "valid" : "invalid", ok ? "valid" : "invalid", ok ? "" : e.message);
        char what[32];
        snprintf(what, sizeof what, "case %zu", i);
        agree(copy, c->len, what);
        CHECK(jscan_validate(copy, c->len, JSCAN_MAX_DEPTH, NULL) == ok); /* e may be NULL */
        free(copy);
    }
}

/* The exact rounding boundary of doubles, built from 2^1024 - 2^970. */
TEST(jscan_double_overflow_boundary)
{
    static const char limit[] =
        "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330"
        "286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069"
        "855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792";
    char below[sizeof limit];
    memcpy(below, limit, sizeof limit);
    below[sizeof limit - 2] = '1'; /* the limit - 1 */
    char doc[1200];
    const struct {
        const char *fmt;
        const char *digits;
        bool valid;
    } forms[] = {
        { "[%s.0]", limit, false },     { "[%s.0]", below, true },      { "[%se0]", limit, false },
        { "[-%s.0]", limit, false },    { "[%s000e-3]", limit, false }, { "[%s999e-3]", below, true },
        { "[0.%se309]", limit, false }, { "[0.%se309]", below, true },  { "[0.000%se312]", limit, false },
        { "[%s.0000001]", below, true },
    };
    for (size_t i = 0; i < countof(forms); i++) {
        int n = snprintf(doc, sizeof doc, forms[i].fmt, forms[i].digits);
        CHECK(n > 0 && (size_t)n < sizeof doc);
        if (jscan_validate(doc, (size_t)n, 16, NULL) != forms[i].valid)
            test_fail(__FILE__, __LINE__, "form %zu: %s", i, forms[i].fmt);
        agree(doc, (size_t)n, "boundary");
    }
    /* 1.79769...e308 written with the decimal point after the first digit */
    snprintf(doc, sizeof doc, "[%c.%se308]", limit[0], limit + 1);
    CHECK(!jscan_validate(doc, strlen(doc), 16, NULL));
    agree(doc, strlen(doc), "boundary");
    snprintf(doc, sizeof doc, "[%c.%se308]", below[0], below + 1);
    CHECK(jscan_validate(doc, strlen(doc), 16, NULL));
    agree(doc, strlen(doc), "boundary");
    /* a 400-digit integer part is a real only with a fraction or exponent */
    char big[420] = "[";
    memset(big + 1, '1', 400);
    memcpy(big + 401, ".5]", 4);
    CHECK(!jscan_validate(big, strlen(big), 16, NULL));
    agree(big, strlen(big), "boundary");
    memcpy(big + 401, "e-200]", 7);
    CHECK(jscan_validate(big, strlen(big), 16, NULL));
    agree(big, strlen(big), "boundary");
}

TEST(jscan_depth)
{
    const int depths[] = { 1, 2, 127, 128, 129, 2046, 2047, 2048, 2049 };
    for (size_t i = 0; i < countof(depths); i++) {
        int d = depths[i];
        /* alternating objects and arrays: {"a":[{"a":[...0...]}]} */
        size_t n = 0;
        for (int k = 0; k < d; k++)
            n += k % 2 ? 1 : 5;
        char *p = malloc(2 * n + 1), *w = p;
        for (int k = 0; k < d; k++) {
            if (k % 2)
                *w++ = '[';
            else
                memcpy(w, "{\"a\":", 5), w += 5;
        }
        *w++ = '0';
        for (int k = d - 1; k >= 0; k--)
            *w++ = k % 2 ? ']' : '}';
        size_t len = (size_t)(w - p);
        jscan_error e;
        CHECK(jscan_validate(p, len, 128, &e) == (d <= 128));
        if (d > 128) {
            CHECK_STR(e.message, "nesting deeper than 128");
            CHECK_INT(e.offset, 128 / 2 * 6); /* the 129th opening bracket */
        }
        CHECK(jscan_validate(p, len, JSCAN_MAX_DEPTH, NULL) == (d <= JSCAN_MAX_DEPTH));
        CHECK(jscan_validate(p, len, 1 << 30, NULL) == (d <= JSCAN_MAX_DEPTH)); /* clamped */
        agree(p, len, "depth");
        free(p);
    }
    /* 2048 arrays, the innermost empty: jansson's limit counts values, so
     * it takes this; jscan stops at 2047 containers */
    char *arrays = malloc(2 * 2048);
    memset(arrays, '[', 2048);
    memset(arrays + 2048, ']', 2048);
    CHECK(jansson_accepts(arrays, 2 * 2048, 0));
    CHECK(!jscan_validate(arrays, 2 * 2048, JSCAN_MAX_DEPTH, NULL));
    CHECK(jscan_validate(arrays + 1, 2 * 2047, JSCAN_MAX_DEPTH, NULL));
    free(arrays);
    CHECK(jscan_validate("[]", 2, 0, NULL));   /* max_depth below 1 means 1 */
    CHECK(!jscan_validate("[[]]", 4, 1, NULL));
    CHECK(jscan_validate("1", 1, 0, NULL));
}

/* ---- error positions --------------------------------------------------------- */

TEST(jscan_error_positions)
{
    static const struct {
        const char *doc;
        size_t len;
        size_t offset;
        int line, column;
        const char *message;
    } errs[] = {
#define E(d, o, l, c, m) { d, sizeof(d) - 1, o, l, c, m }
        E("", 0, 1, 1, "unexpected end of input, expected a value"),
        E("   ", 3, 1, 4, "unexpected end of input, expected a value"),
        E("{\"a\":1,}", 7, 1, 8, "trailing comma before '}'"),
        E("[1,2,]", 5, 1, 6, "trailing comma before ']'"),
        E("[1,\n 2,\n x]", 9, 3, 2, "expected a value, found 'x'"),
        E("[\"\xff\"]", 2, 1, 3, "invalid UTF-8 byte 0xff"),
        E("{\n  \"a\": \"\xc0\xaf\"\n}", 10, 2, 9, "invalid UTF-8 byte 0xc0"),
        E("[\"\xe2\x82\"]", 4, 1, 5, "invalid UTF-8: byte 0x22 cannot follow 0xe2"),
        E("[\"\xed\xa0\x80\"]", 3, 1, 4, "invalid UTF-8: byte 0xa0 cannot follow 0xed"),
        E("[\xff]", 1, 1, 2, "invalid UTF-8 byte 0xff"),
        E("\xef\xbb\xbf{}", 0, 1, 1, "a byte order mark is not allowed"),
        E("{\"a\" 1}", 5, 1, 6, "expected ':' after an object key, found '1'"),
        E("{\"a\":1 \"b\":2}", 7, 1, 8, "expected ',' or '}' after an object member"),
        E("[1 2]", 3, 1, 4, "expected ',' or ']' after an array element"),
        E("{a:1}", 1, 1, 2, "expected a string key or '}', found 'a'"),
        E("{\"a\":1,b:2}", 7, 1, 8, "expected a string key after ',', found 'b'"),
        E("[01]", 1, 1, 2, "leading zero in a number"),
        E("[-x]", 2, 1, 3, "expected a digit after '-'"),
        E("[1.]", 3, 1, 4, "expected a digit after '.'"),
        E("[1e+]", 4, 1, 5, "expected a digit in the exponent"),
        E("[9223372036854775808]", 1, 1, 2, "integer out of the 64-bit range"),
        E("[1e999]", 1, 1, 2, "number too large for a double"),
        E("[\"a\nb\"]", 3, 1, 4, "control character 0x0a in a string"),
        E("[\"a\0b\"]", 3, 1, 4, "control character 0x00 in a string"),
        E("[\"\\ud800\"]", 2, 1, 3, "high surrogate \\uD800 not followed by a low surrogate"),
        E("[\"\\udc01\"]", 2, 1, 3, "lone low surrogate \\uDC01"),
        E("[\"\\u0000\"]", 2, 1, 3, "\\u0000 is not allowed in strings"),
        E("[\"\\x\"]", 2, 1, 3, "invalid escape: backslash followed by 'x'"),
        E("[\"\\u12x4\"]", 2, 1, 3, "invalid \\u escape: expected 4 hex digits"),
        E("[1]x", 3, 1, 4, "unexpected data after the JSON value"),
        E("[\"abc", 5, 1, 6, "unterminated string"),
        E("[\"abc\\", 6, 1, 7, "unterminated string"),
        E("[\"0123456789\xc3", 13, 1, 14, "unterminated string"),
        E("[tru]", 1, 1, 2, "invalid literal (expected true)"),
        E("[1,", 3, 1, 4, "unexpected end of input, expected a value"),
        E("[1", 2, 1, 3, "unexpected end of input, expected ',' or ']'"),
        E("{\"a\":1", 6, 1, 7, "unexpected end of input, expected ',' or '}'"),
        E("{\"a\"", 4, 1, 5, "expected ':' after an object key, found the end of the input"),
        E("\r\n\r\n  ]", 6, 3, 3, "expected a value, found ']'"),
        E("[\x01]", 1, 1, 2, "expected a value, found byte 0x01"),
        E("[\xc3\xa9]", 1, 1, 2, "expected a value, found a non-ASCII character"),
#undef E
    };
    for (size_t i = 0; i < countof(errs); i++) {
        jscan_error e;
        memset(&e, 0x55, sizeof e);
        if (jscan_validate(errs[i].doc, errs[i].len, 128, &e)) {
            test_fail(__FILE__, __LINE__, "error case %zu accepted", i);
            continue;
        }
        if (e.offset != errs[i].offset || e.line != errs[i].line || e.column != errs[i].column ||
            strcmp(e.message, errs[i].message) != 0)
            test_fail(__FILE__, __LINE__, "error case %zu: got %zu %d:%d '%s', expected %zu %d:%d '%s'", i, e.offset,
                      e.line, e.column, e.message, errs[i].offset, errs[i].line, errs[i].column, errs[i].message);
    }
    jscan_error e;
    CHECK(!jscan_validate(NULL, 0, 8, &e));
    CHECK_INT(e.offset, 0);
}

/* ---- the golden corpus and its mutations ------------------------------------- */

static const char *const corpus[] = {
    "jscan/chat.json",    "jscan/nested.json", "jscan/tools.json",       "jscan/numbers.json",
    "jscan/unicode.json", "jscan/embeddings.json", "jscan/empty_array.json", "jscan/scalar.json",
};

TEST(jscan_corpus_valid)
{
    for (size_t i = 0; i < countof(corpus); i++) {
        size_t n;
        char *doc = test_read_data(corpus[i], &n);
        if (!doc)
            continue;
        jscan_error e;
        if (!jscan_validate(doc, n, 128, &e))
            test_fail(__FILE__, __LINE__, "%s: %d:%d %s", corpus[i], e.line, e.column, e.message);
        agree(doc, n, corpus[i]);
        free(doc);
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return n ? (uint32_t)(rng >> 32) % n : 0;
}

/* Applies 1 to 3 random edits to d[0..*n) (capacity cap). The snippets are
 * the bytes that make JSON interesting. */
static void mutate(char *d, size_t *n, size_t cap)
{
    static const char bytes[] = "{}[]\",:\\ \t\n0123456789-+.eEtrufalsn\x00\x01\x1f\x7f\x80\xbf\xc0\xc2\xc3"
                                "\xe0\xe2\xed\xef\xf0\xf4\xf5\xff";
    static const char *const snippets[] = {
        "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u00e9", "\\x", "\\/", "\\", "\"", "1e309",
        "-0", "01", "9223372036854775808", "-9223372036854775808", "1.", ".5", "1e-400", "true", "null",
        "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe0\x80\xaf", "\xc3\xa9", "\xf0\x9f\x98\x80", ",", "{\"a\":1}",
        "[]", "\"k\":", "//", "\xef\xbb\xbf", "1.7976931348623157e308", "1.7976931348623159e308",
    };
    int edits = 1 + (int)rnd(3);
    for (int k = 0; k < edits; k++) {
        size_t at = rnd((uint32_t)*n + 1);
        switch (rnd(7)) {
        case 0: /* overwrite a byte with anything */
            if (at < *n)
                d[at] = (char)rnd(256);
            break;
        case 1: /* overwrite a byte with an interesting one */
            if (at < *n)
                d[at] = bytes[rnd(sizeof bytes - 1)];
            break;
        case 2: { /* delete 1-4 bytes */
            size_t want = 1 + (size_t)rnd(4), del = MIN(*n - at, want); /* MIN evaluates twice */
            memmove(d + at, d + at + del, *n - at - del);
            *n -= del;
            break;
        }
        case 3: /* insert an interesting byte */
            if (*n < cap) {
                memmove(d + at + 1, d + at, *n - at);
                d[at] = bytes[rnd(sizeof bytes - 1)];
                (*n)++;
            }
            break;
        case 4: { /* insert a snippet */
            const char *s = snippets[rnd(countof(snippets))];
            size_t sl = strlen(s);
            if (*n + sl <= cap) {
                memmove(d + at + sl, d + at, *n - at);
                memcpy(d + at, s, sl);
                *n += sl;
            }
            break;
        }
        case 5: { /* copy a span elsewhere */
            size_t from = rnd((uint32_t)*n + 1), want = rnd(24), len = MIN(*n - from, want);
            if (*n + len <= cap) {
                char tmp[24];
                memcpy(tmp, d + from, len);
                memmove(d + at + len, d + at, *n - at);
                memcpy(d + at, tmp, len);
                *n += len;
            }
            break;
        }
        default: /* truncate */
            *n = at;
            break;
        }
    }
}

TEST(jscan_differential_mutations)
{
    size_t total = 0, accepted = 0;
    for (size_t i = 0; i < countof(corpus); i++) {
        size_t n;
        char *doc = test_read_data(corpus[i], &n);
        if (!doc)
            continue;
        size_t cap = n + 256;
        char *work = malloc(cap);
        for (int round = 0; round < 4000; round++) {
            size_t len = n;
            memcpy(work, doc, n);
            mutate(work, &len, cap);
            char *exact = malloc(len ? len : 1); /* exact size for ASan */
            memcpy(exact, work, len);
            total++;
            accepted += jscan_validate(exact, len, JSCAN_MAX_DEPTH, NULL);
            bool ok = agree(exact, len, corpus[i]);
            free(exact);
            if (!ok)
                break; /* one report per document is enough */
        }
        free(work);
        free(doc);
    }
    CHECK(total == 4000 * countof(corpus));
    /* the mix must exercise both sides */
    CHECK(accepted > total / 20);
    CHECK(accepted < total / 2);
}

/* ---- readers ------------------------------------------------------------------- */

TEST(jscan_readers_nested)
{
    size_t n;
    char *doc = test_read_data("jscan/nested.json", &n);
    if (!doc)
        return;
    CHECK(jscan_validate(doc, n, 128, NULL));
    jval root = jscan_root(doc, n), v, k;
    CHECK_INT(root.type, J_OBJECT);
    CHECK(root.p[0] == '{' && root.p[root.len - 1] == '}'); /* trailing newline trimmed */
    char s[256];
    size_t len;
    long long iv;
    bool dup = true;

    /* a key matched after unescaping, with its raw span */
    CHECK(jscan_get(root, "model", &v, &dup));
    CHECK(!dup);
    CHECK_INT(v.type, J_STRING);
    CHECK_MEM(v.p, v.len, "\"gpt-4o\"");
    CHECK(jscan_string_eq(v, "gpt-4o"));
    CHECK(!jscan_string_eq(v, "gpt-4"));
    CHECK(!jscan_string_eq(v, "gpt-4o "));
    CHECK(!jscan_get(root, "mo\\u0064el", &v, NULL)); /* the escaped spelling is not the key */
    CHECK_INT(v.type, J_NONE);
    CHECK(!jscan_get(root, "absent", NULL, NULL));
    CHECK(!jscan_get(root, "Model", NULL, NULL));

    CHECK(jscan_get(root, "stream", &v, NULL) && v.type == J_FALSE && v.len == 5);
    CHECK(jscan_get(root, "n", &v, NULL) && jscan_int(v, &iv) && iv == 3);
    CHECK(jscan_get(root, "big", &v, NULL) && jscan_int(v, &iv) && iv == (-9223372036854775807LL - 1));
    CHECK(jscan_get(root, "max", &v, NULL) && jscan_int(v, &iv) && iv == 9223372036854775807LL);
    CHECK(jscan_get(root, "real", &v, NULL) && v.type == J_NUMBER && !jscan_int(v, &iv));
    CHECK(jscan_get(root, "frac", &v, NULL) && !jscan_int(v, &iv));
    CHECK(jscan_get(root, "temperature", &v, NULL) && !jscan_int(v, &iv));
    CHECK_MEM(v.p, v.len, "0.2");
    CHECK(jscan_get(root, "", &v, NULL) && jscan_string_eq(v, "empty key"));
    CHECK(jscan_get(root, "unicode", &v, NULL) && jscan_string_eq(v, "日本語 ✓ 𝄞"));

    /* duplicates: the last one wins, dup says so */
    CHECK(jscan_get(root, "dup", &v, &dup));
    CHECK(dup);
    CHECK_MEM(v.p, v.len, "2");
    CHECK(jscan_has_duplicate_keys(root));

    /* stream_options.include_usage */
    jval so, iu;
    CHECK(jscan_get(root, "stream_options", &so, NULL) && so.type == J_OBJECT);
    CHECK(!jscan_has_duplicate_keys(so));
    CHECK(jscan_get(so, "include_usage", &iu, NULL) && iu.type == J_TRUE);
    CHECK(!jscan_get(so, "deep", NULL, NULL)); /* only direct members */
    CHECK(!jscan_get(iu, "x", NULL, NULL));    /* not an object */

    /* messages[i].role */
    static const char *const roles[] = { "system", "user", "assistant" };
    jval msgs, m;
    jscan_iter it;
    CHECK(jscan_get(root, "messages", &msgs, NULL) && msgs.type == J_ARRAY);
    jscan_iter_init(&it, msgs);
    size_t i = 0;
    while (jscan_next(&it, &k, &m)) {
        CHECK_INT(k.type, J_NONE);
        CHECK_INT(m.type, J_OBJECT);
        jval role;
        CHECK(i < countof(roles) && jscan_get(m, "role", &role, NULL) && jscan_string_eq(role, roles[i]));
        i++;
    }
    CHECK_INT(i, 3);
    CHECK(!jscan_next(&it, &k, &m)); /* stays finished */
    CHECK_INT(m.type, J_NONE);

    /* unescaping: every escape kind, a surrogate pair, raw UTF-8 */
    jscan_iter_init(&it, msgs);
    CHECK(jscan_next(&it, NULL, &m));
    CHECK(jscan_get(m, "content", &v, NULL));
    CHECK(jscan_string(v, s, sizeof s, &len));
    CHECK_STR(s, "a \"quoted\" \\ back/slash\nnew line\ttab \xc3\xa9 \xf0\x9f\x98\x80 caf\xc3\xa9");
    CHECK_INT(len, strlen(s));
    CHECK(jscan_string_eq(v, s));
    /* too small: false, "" and the needed length */
    char small[8];
    CHECK(!jscan_string(v, small, sizeof small, &len));
    CHECK_STR(small, "");
    CHECK_INT(len, strlen(s));
    CHECK(!jscan_string(v, s, len, NULL)); /* no room for the NUL */
    CHECK(jscan_string(v, s, len + 1, NULL));

    /* the second message: brackets inside strings do not confuse skipping */
    CHECK(jscan_next(&it, NULL, &m));
    CHECK(jscan_get(m, "content", &v, NULL) && v.type == J_ARRAY);
    jscan_iter parts;
    jval part, text;
    jscan_iter_init(&parts, v);
    CHECK(jscan_next(&parts, NULL, &part));
    CHECK(jscan_get(part, "text", &text, NULL) && jscan_string_eq(text, "}]{[\",:"));
    CHECK(jscan_next(&parts, NULL, &part));
    CHECK(jscan_get(part, "type", &text, NULL) && jscan_string_eq(text, "image_url"));
    CHECK(!jscan_next(&parts, NULL, &part));

    /* iterating the top level sees every member in order, keys escaped */
    static const char *const keys[] = { "model", "stream", "n", "stream_options", "messages", "temperature",
                                        "logit_bias", "big", "max", "real", "frac", "", "unicode", "dup", "dup" };
    jscan_iter_init(&it, root);
    i = 0;
    while (jscan_next(&it, &k, &v)) {
        CHECK_INT(k.type, J_STRING);
        CHECK(i < countof(keys) && jscan_string_eq(k, keys[i]));
        i++;
    }
    CHECK_INT(i, countof(keys));
    free(doc);
}

TEST(jscan_parse_members)
{
    size_t n;
    char *doc = test_read_data("jscan/nested.json", &n);
    if (!doc)
        return;
    jscan_member top[20], few[3];
    size_t count = 0;
    jval root;
    static const char *const keys[] = { "model", "stream", "n", "stream_options", "messages", "temperature",
                                        "logit_bias", "big", "max", "real", "frac", "", "unicode", "dup", "dup" };
    CHECK(jscan_parse(doc, n, 128, &root, top, countof(top), &count, NULL));
    CHECK_INT(count, countof(keys));
    CHECK(root.type == J_OBJECT && root.p == doc && root.len == n - 1); /* the newline is not in it */
    for (size_t i = 0; i < countof(keys) && i < count; i++)
        if (!jscan_string_eq(top[i].key, keys[i]))
            test_fail(__FILE__, __LINE__, "member %zu is not %s", i, keys[i]);
    CHECK_MEM(top[0].val.p, top[0].val.len, "\"gpt-4o\"");
    CHECK(top[1].val.type == J_FALSE && top[4].val.type == J_ARRAY && top[4].val.p[top[4].val.len - 1] == ']');
    CHECK(top[3].val.type == J_OBJECT);
    CHECK_MEM(top[5].val.p, top[5].val.len, "0.2");
    CHECK(jscan_duplicate_members(top, count));      /* "dup" twice */
    CHECK(!jscan_duplicate_members(top, count - 1));
    CHECK(!jscan_duplicate_members(NULL, 5));
    /* a short array: the first members, and the full count */
    CHECK(jscan_parse(doc, n, 128, NULL, few, countof(few), &count, NULL));
    CHECK_INT(count, countof(keys));
    CHECK(jscan_string_eq(few[2].key, "n"));
    CHECK(jscan_parse(doc, n, 128, NULL, NULL, 5, &count, NULL) && count == countof(keys));
    free(doc);

    /* arrays give elements without keys; scalars no members */
    const char *arr = " [1, \"two\", [3], {\"4\": 4}] ";
    CHECK(jscan_parse(arr, strlen(arr), 8, &root, top, countof(top), &count, NULL));
    CHECK(root.type == J_ARRAY && count == 4);
    CHECK(top[0].key.type == J_NONE && top[0].val.type == J_NUMBER && top[0].val.len == 1);
    CHECK_MEM(top[1].val.p, top[1].val.len, "\"two\"");
    CHECK_MEM(top[2].val.p, top[2].val.len, "[3]");
    CHECK_MEM(top[3].val.p, top[3].val.len, "{\"4\": 4}");
    CHECK(jscan_parse("\"s\"", 3, 8, &root, top, countof(top), &count, NULL));
    CHECK(root.type == J_STRING && count == 0);
    CHECK(jscan_parse("{}", 2, 8, &root, top, countof(top), &count, NULL) && root.type == J_OBJECT && count == 0);
    /* failure: nothing handed back */
    jscan_error e;
    CHECK(!jscan_parse("{\"a\":1,}", 8, 8, &root, top, countof(top), &count, &e));
    CHECK(root.type == J_NONE && count == 0);
    CHECK_STR(e.message, "trailing comma before '}'");
}

TEST(jscan_match_names)
{
    static const char *const names[] = { "system", "developer", "user", NULL, "assistant", "", "us" };
    static const struct {
        const char *lit;
        int want;
    } m[] = {
        { "\"system\"", 0 },      { "\"user\"", 2 },       { "\"us\\u0065r\"", 2 }, { "\"\\u0073ystem\"", 0 },
        { "\"assistant\"", 4 },   { "\"\"", 5 },           { "\"us\"", 6 },           { "\"use\"", -1 },
        { "\"users\"", -1 },      { "\"System\"", -1 },    { "\"tool\"", -1 },        { "\"u\\u0000\"", -1 },
        { "\"s\\ystem\"", -1 },
    };
    for (size_t i = 0; i < countof(m); i++) {
        jval v = { J_STRING, m[i].lit, strlen(m[i].lit) };
        if (jscan_match(v, names, countof(names)) != m[i].want)
            test_fail(__FILE__, __LINE__, "jscan_match(%s) = %d", m[i].lit, jscan_match(v, names, countof(names)));
    }
    CHECK(jscan_match((jval){ J_NUMBER, "1", 1 }, names, countof(names)) == -1);
    CHECK(jscan_match((jval){ J_STRING, "\"user\"", 6 }, NULL, 3) == -1);
    CHECK(jscan_match((jval){ J_STRING, "\"user\"", 6 }, names, 2) == -1); /* only the first n */
}

TEST(jscan_readers_wrong_types)
{
    jval str = { J_STRING, "\"12\"", 4 }, num = { J_NUMBER, "12", 2 }, obj = { J_OBJECT, "{\"a\":1}", 7 };
    long long iv = 7;
    char s[8] = "x";
    size_t len = 99;
    CHECK(!jscan_int(str, &iv));
    CHECK_INT(iv, 7);
    CHECK(jscan_int(num, &iv) && iv == 12);
    CHECK(!jscan_string(num, s, sizeof s, &len));
    CHECK_STR(s, "");
    CHECK(!jscan_string_eq(num, "12"));
    CHECK(!jscan_string_eq(str, NULL));
    CHECK(!jscan_get(str, "a", NULL, NULL));
    CHECK(!jscan_get(obj, NULL, NULL, NULL));
    CHECK(!jscan_has_duplicate_keys(str));
    jscan_iter it;
    jval k, v;
    jscan_iter_init(&it, num);
    CHECK(!jscan_next(&it, &k, &v));
    jscan_iter_init(&it, (jval){ J_NONE, NULL, 0 });
    CHECK(!jscan_next(&it, NULL, NULL));
    /* spans that were never validated: no crash, no read outside */
    static const char *const junk[] = { "{", "{\"a", "{\"a\":", "{\"a\" 1}", "{\"a\":1 2}", "[1 2]", "{1:2}",
                                        "[\"\\", "{\"\\u12\":1}", "[,]", "{\"a\":\"b}", "[[[" };
    for (size_t i = 0; i < countof(junk); i++) {
        size_t n = strlen(junk[i]);
        char *p = malloc(n);
        memcpy(p, junk[i], n);
        jval j = { p[0] == '{' ? J_OBJECT : J_ARRAY, p, n };
        jscan_iter_init(&it, j);
        for (int guard = 0; guard < 10 && jscan_next(&it, &k, &v); guard++)
            CHECK(v.p >= p && v.p + v.len <= p + n);
        jscan_get(j, "a", &v, NULL);
        jscan_has_duplicate_keys(j);
        free(p);
    }
    /* integers: only 64-bit, only integer syntax */
    static const struct {
        const char *s;
        bool ok;
        long long v;
    } ints[] = {
        { "0", true, 0 },        { "-0", true, 0 },     { "-1", true, -1 },   { "1e2", false, 0 },
        { "1.0", false, 0 },     { "01", false, 0 },    { "", false, 0 },     { "-", false, 0 },
        { "9223372036854775807", true, 9223372036854775807LL },
        { "-9223372036854775808", true, -9223372036854775807LL - 1 },
        { "9223372036854775808", false, 0 }, { "-9223372036854775809", false, 0 },
        { "99999999999999999999", false, 0 }, { "12a", false, 0 },
    };
    for (size_t i = 0; i < countof(ints); i++) {
        iv = 0;
        bool ok = jscan_int((jval){ J_NUMBER, ints[i].s, strlen(ints[i].s) }, &iv);
        if (ok != ints[i].ok || (ok && iv != ints[i].v))
            test_fail(__FILE__, __LINE__, "jscan_int(%s) = %d %lld", ints[i].s, ok, iv);
    }
    /* jscan_root */
    jval r = jscan_root(" \n [1, 2] \t", 11);
    CHECK(r.type == J_ARRAY);
    CHECK_MEM(r.p, r.len, "[1, 2]");
    CHECK(jscan_root("  ", 2).type == J_NONE);
    CHECK(jscan_root(NULL, 0).type == J_NONE);
    r = jscan_root("-5", 2);
    CHECK(r.type == J_NUMBER && jscan_int(r, &iv) && iv == -5);
}

/* ---- duplicate keys ------------------------------------------------------------ */

/* Builds {"k0":0,"k1":0,...} from the given names. */
static char *object_of(char **names, size_t count, size_t *len)
{
    size_t cap = 2, n = 0;
    for (size_t i = 0; i < count; i++)
        cap += strlen(names[i]) + 6;
    char *p = malloc(cap);
    p[n++] = '{';
    for (size_t i = 0; i < count; i++) {
        n += (size_t)snprintf(p + n, cap - n, "%s\"%s\":0", i ? "," : "", names[i]);
    }
    p[n++] = '}';
    *len = n;
    return p;
}

TEST(jscan_duplicate_keys)
{
    static const struct {
        const char *doc;
        bool dup;
    } small[] = {
        { "{}", false },
        { "{\"a\":1}", false },
        { "{\"a\":1,\"b\":2}", false },
        { "{\"a\":1,\"a\":2}", true },
        { "{\"a\":1,\"b\":2,\"a\":3}", true },
        { "{\"a\":1,\"\\u0061\":2}", true },         /* same after unescaping */
        { "{\"\\u00e9\":1,\"\xc3\xa9\":2}", true },
        { "{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", true },
        { "{\"a\":1,\"A\":2}", false },
        { "{\"a\":{\"x\":1,\"x\":2}}", false },     /* one level only */
        { "{\"\":1,\"\":2}", true },
        { "{\"ab\":1,\"a\":2,\"b\":3}", false },
        { "{\"a\\n\":1,\"a\\u000a\":2}", true },
        { "{\"a\\\\\":1,\"a\\u005c\":2}", true },
    };
    for (size_t i = 0; i < countof(small); i++) {
        jval o = jscan_root(small[i].doc, strlen(small[i].doc));
        CHECK(jscan_validate(small[i].doc, strlen(small[i].doc), 8, NULL));
        if (jscan_has_duplicate_keys(o) != small[i].dup)
            test_fail(__FILE__, __LINE__, "dup case %zu: %s", i, small[i].doc);
        CHECK(jansson_accepts(small[i].doc, strlen(small[i].doc), JSON_REJECT_DUPLICATES) == !small[i].dup ||
              i == 9);
    }

    /* sizes around pairwise (32 members), the stack table (1024) and the heap */
    const size_t sizes[] = { 31, 32, 33, 100, 1023, 1024, 1025, 10000 };
    for (size_t s = 0; s < countof(sizes); s++) {
        size_t count = sizes[s], len;
        char **names = malloc((count + 1) * sizeof *names);
        for (size_t i = 0; i < count; i++) {
            names[i] = malloc(24);
            snprintf(names[i], 24, "key%zu", i);
        }
        char *doc = object_of(names, count, &len);
        CHECK(jscan_validate(doc, len, 8, NULL));
        CHECK(!jscan_has_duplicate_keys(jscan_root(doc, len)));
        free(doc);
        /* a duplicate of the first, a middle and the last name, appended */
        const size_t which[] = { 0, count / 2, count - 1 };
        for (size_t w = 0; w < countof(which); w++) {
            names[count] = names[which[w]];
            doc = object_of(names, count + 1, &len);
            if (!jscan_has_duplicate_keys(jscan_root(doc, len)))
                test_fail(__FILE__, __LINE__, "%zu members, duplicate of #%zu missed", count, which[w]);
            free(doc);
        }
        for (size_t i = 0; i < count; i++)
            free(names[i]);
        free(names);
    }
}

/* ---- escaping ---------------------------------------------------------------------- */

TEST(jscan_escape_literals)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } esc[] = {
#define X(i, o) { i, sizeof(i) - 1, o }
        X("", "\"\""),
        X("gpt-4o", "\"gpt-4o\""),
        X("a\"b\\c/d", "\"a\\\"b\\\\c/d\""),
        X("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\""),
        X("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\""),
        X("caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""),
        X("a\0b", "\"a\\ufffdb\""),
        X("\xff", "\"\\ufffd\""),
        X("\xc3", "\"\\ufffd\""),
        X("\xe2\x82x", "\"\\ufffd\\ufffdx\""),
        X("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""),
        X("\xc0\xaf", "\"\\ufffd\\ufffd\""),
#undef X
    };
    for (size_t i = 0; i < countof(esc); i++) {
        char out[64];
        size_t want = strlen(esc[i].out);
        size_t n = jscan_escape(out, sizeof out, esc[i].in, esc[i].n);
        if (n != want || memcmp(out, esc[i].out, n) != 0)
            test_fail(__FILE__, __LINE__, "escape case %zu: got %.*s", i, (int)MIN(n, sizeof out), out);
        CHECK(jscan_escape(NULL, 0, esc[i].in, esc[i].n) == want); /* measuring */
        CHECK(jscan_validate(out, n, 1, NULL));
        /* short buffers get a prefix and the full length */
        char shortbuf[4] = { 'z', 'z', 'z', 'z' };
        CHECK(jscan_escape(shortbuf, 3, esc[i].in, esc[i].n) == want);
        CHECK(memcmp(shortbuf, out, MIN(3, want)) == 0 && shortbuf[3] == 'z');
    }
    /* round trip of every byte value that is valid on its own */
    char in[128], lit[1024], back[256];
    for (int c = 1; c < 128; c++)
        in[c - 1] = (char)c;
    size_t n = jscan_escape(lit, sizeof lit, in, 127), len;
    CHECK(n <= sizeof lit);
    CHECK(jscan_validate(lit, n, 1, NULL));
    CHECK(jscan_string((jval){ J_STRING, lit, n }, back, sizeof back, &len));
    CHECK(len == 127 && memcmp(back, in, 127) == 0);
}

/* Walks an object's members one level down, as a caller of jscan_walk does:
 * the keys it saw joined with '|', containers passed whole. */
static bool walk_keys(const char *text, char *out, size_t cap)
{
    jscan_walk w;
    jval k;
    out[0] = '\0';
    jscan_walk_init(&w, text, strlen(text));
    if (!jscan_walk_enter(&w, '{'))
        return false;
    for (size_t n = 0; jscan_walk_member(&w, n, &k); n++) {
        char key[32];
        size_t len;
        if (!jscan_string(k, key, sizeof key, &len))
            return false;
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", n ? "|" : "", key);
        jscan_walk_value(&w);
    }
    return jscan_walk_done(&w);
}

TEST(jscan_walk_unvalidated)
{
    char keys[128];
    /* compact, pretty, escaped keys, containers with brackets and quotes in strings */
    CHECK(walk_keys("{\"a\":1,\"b\":[1,{\"x\":\"]}\"}],\"c\":\"q\\\"}\"}", keys, sizeof keys));
    CHECK_STR(keys, "a|b|c");
    CHECK(walk_keys(" \n{ \"a\" : null ,\n  \"mo\\u0064el\" : { } }\n", keys, sizeof keys));
    CHECK_STR(keys, "a|model");
    CHECK(walk_keys("{}", keys, sizeof keys));
    CHECK_STR(keys, "");
    /* out of place where it steps: stops, and is not done */
    const char *bad[] = { "", "[1]", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,", "{\"a\" 1}", "{\"a\":1 \"b\":2}",
                          "{a:1}", "{\"a\":\"x}", "{\"a\":[1,2}", "{\"a\":1}x", "{\"a\":1}}", "{\"a\":}" };
    for (size_t i = 0; i < countof(bad); i++)
        if (walk_keys(bad[i], keys, sizeof keys))
            test_fail(__FILE__, __LINE__, "walked %s to the end", bad[i]);
    /* once stopped, nothing more comes out */
    jscan_walk w;
    jval k;
    jscan_walk_init(&w, "{\"a\" 1, \"b\": 2}", 15);
    CHECK(jscan_walk_enter(&w, '{'));
    CHECK(!jscan_walk_member(&w, 0, &k) && !w.ok);
    CHECK(jscan_walk_value(&w).type == J_NONE);
    CHECK(!jscan_walk_member(&w, 1, &k) && k.type == J_NONE);
    CHECK(!jscan_walk_done(&w));
    /* enter on something else passes it over */
    jscan_walk_init(&w, "{\"a\":\"s\",\"b\":[1]}", 17);
    CHECK(jscan_walk_enter(&w, '{') && jscan_walk_member(&w, 0, &k));
    CHECK(!jscan_walk_enter(&w, '{') && w.ok);
    CHECK(jscan_walk_member(&w, 1, &k) && JSCAN_WALK_KEY_IS(&w, k, "b"));
    CHECK(jscan_walk_enter(&w, '[') && jscan_walk_element(&w, 0));
    jval v = jscan_walk_value(&w);
    CHECK(v.type == J_NUMBER && v.len == 1 && !jscan_walk_element(&w, 1));
    CHECK(!jscan_walk_member(&w, 2, &k) && jscan_walk_done(&w));
    /* a NUL byte is not whitespace (jansson 2.14 skips one after a number) */
    jscan_walk_init(&w, "{\"a\":1\0}", 8);
    CHECK(jscan_walk_enter(&w, '{') && jscan_walk_member(&w, 0, &k));
    jscan_walk_value(&w);
    CHECK(!jscan_walk_member(&w, 1, &k) && !jscan_walk_done(&w));
}
