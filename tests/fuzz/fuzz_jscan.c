/*
 * fuzz_jscan.c - libFuzzer driver for the JSON scanner (src/core/jscan.c),
 * differential against jansson.
 *
 * The input, copied to an exact-size heap buffer so ASan sees any read past
 * its end, is one document. The driver aborts (a crash for libFuzzer) when:
 *  - jscan_validate and json_loadb(JSON_DECODE_ANY) disagree on accept or
 *    reject, except for the two documented cases where jscan is stricter
 *    (JSCAN_MAX_DEPTH, and the NUL byte jansson 2.14 drops after a number
 *    or literal);
 *  - a rejection has an offset past the end, a line or column below 1 or
 *    no message;
 *  - on an accepted document the readers (iterate, get, string, string_eq,
 *    int, has_duplicate_keys) differ from jansson's tree anywhere, or
 *    JSON_REJECT_DUPLICATES disagrees with has_duplicate_keys at every level;
 *  - jscan_parse disagrees with jscan_validate (verdict, error) or its
 *    captured top-level members differ from the iterator's, or
 *    jscan_duplicate_members from jscan_has_duplicate_keys;
 *  - jscan_match disagrees with jscan_string_eq on any key;
 *  - jscan_escape of the raw input is not a valid literal, or does not give
 *    the input back when the input was valid UTF-8 without NUL.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include "core/jscan.h"

static bool nul_quirk(const char *p, size_t n, size_t at)
{
    if (at == 0 || at >= n || p[at] != '\0')
        return false;
    char c = p[at - 1];
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char *str_dup(jval v, size_t *len)
{
    size_t n = 0;
    if (jscan_string(v, NULL, 0, &n))
        abort();
    char *s = malloc(n + 1);
    if (!s || !jscan_string(v, s, n + 1, len) || *len != n)
        abort();
    return s;
}

/* Aborts unless v reads exactly as jansson's j. */
static void same(jval v, const json_t *j)
{
    jscan_iter it;
    jval k, x;
    long long iv;
    size_t n;
    char *s;
    switch (v.type) {
    case J_OBJECT: {
        if (!json_is_object(j))
            abort();
        size_t members = 0, distinct = 0;
        jscan_iter_init(&it, v);
        while (jscan_next(&it, &k, &x)) {
            members++;
            char *key = str_dup(k, &n);
            jval last;
            bool dup;
            if (!jscan_get(v, key, &last, &dup) || !jscan_string_eq(k, key))
                abort();
            const json_t *jv = json_object_get(j, key);
            free(key);
            if (!jv)
                abort();
            if (last.p == x.p) /* jansson keeps the last occurrence */
                distinct++, same(x, jv);
            else if (!dup)
                abort();
        }
        if (distinct != json_object_size(j) || jscan_has_duplicate_keys(v) != (members != distinct))
            abort();
        return;
    }
    case J_ARRAY: {
        if (!json_is_array(j))
            abort();
        size_t i = 0;
        jscan_iter_init(&it, v);
        while (jscan_next(&it, &k, &x)) {
            if (k.type != J_NONE)
                abort();
            same(x, json_array_get(j, i++));
        }
        if (i != json_array_size(j))
            abort();
        return;
    }
    case J_STRING:
        s = str_dup(v, &n);
        if (!json_is_string(j) || n != json_string_length(j) || memcmp(s, json_string_value(j), n) != 0 ||
            !jscan_string_eq(v, json_string_value(j)))
            abort();
        free(s);
        return;
    case J_NUMBER:
        if (jscan_int(v, &iv) ? !json_is_integer(j) || json_integer_value(j) != iv : !json_is_real(j))
            abort();
        return;
    case J_TRUE:
        if (!json_is_true(j))
            abort();
        return;
    case J_FALSE:
        if (!json_is_false(j))
            abort();
        return;
    case J_NULL:
        if (!json_is_null(j))
            abort();
        return;
    default:
        abort();
    }
}

static bool same_jval(jval a, jval b) { return a.type == b.type && a.p == b.p && a.len == b.len; }

/* jscan_parse against jscan_validate, the iterator and has_duplicate_keys;
 * jscan_match against jscan_string_eq on the top-level keys. */
static void check_parse(const char *p, size_t n, bool valid, const jscan_error *ve)
{
    jscan_member top[8];
    jval root;
    size_t count;
    jscan_error e;
    if (jscan_parse(p, n, JSCAN_MAX_DEPTH, &root, top, 8, &count, &e) != valid)
        abort();
    if (!valid) {
        if (e.offset != ve->offset || strcmp(e.message, ve->message) != 0 || root.type != J_NONE || count)
            abort();
        return;
    }
    if (!same_jval(root, jscan_root(p, n)))
        abort();
    static const char *const names[] = { "model", "", "a", "messages", "\xc3\xa9", "ab" };
    jscan_iter it;
    jval k, v;
    size_t i = 0;
    jscan_iter_init(&it, root);
    for (; jscan_next(&it, &k, &v); i++) {
        if (i < 8 && (!same_jval(top[i].key, k) || !same_jval(top[i].val, v)))
            abort();
        int want = -1;
        for (size_t j = 0; j < countof(names) && want < 0; j++)
            if (jscan_string_eq(k, names[j]))
                want = (int)j;
        if (jscan_match(k, names, countof(names)) != want)
            abort();
    }
    if (i != count)
        abort();
    if (root.type == J_OBJECT && count <= 8 && jscan_duplicate_members(top, count) != jscan_has_duplicate_keys(root))
        abort();
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

static void check_escape(const char *p, size_t n)
{
    size_t need = jscan_escape(NULL, 0, p, n);
    char *lit = malloc(need);
    if (jscan_escape(lit, need, p, n) != need)
        abort();
    jscan_error e;
    if (!jscan_validate(lit, need, 1, &e))
        abort();
    if (!memchr(p, 0, n)) { /* no NUL: the input comes back unless it was not UTF-8 */
        size_t len;
        char *back = malloc(need);
        if (!jscan_string((jval){ J_STRING, lit, need }, back, need, &len))
            abort();
        if (!memmem(lit, need, "\\ufffd", 6) && (len != n || memcmp(back, p, n) != 0))
            abort();
        free(back);
    }
    free(lit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    jscan_error e;
    bool ours = jscan_validate(p, size, JSCAN_MAX_DEPTH, &e);
    json_error_t je;
    json_t *j = json_loadb(p, size, JSON_DECODE_ANY, &je);
    if (ours != (j != NULL)) {
        bool allowed = !ours && (strncmp(e.message, "nesting deeper than", 19) == 0 || nul_quirk(p, size, e.offset));
        if (!allowed)
            abort();
    }
    check_parse(p, size, ours, &e);
    if (!ours) {
        if (e.offset > size || e.line < 1 || e.column < 1 || !e.message[0])
            abort();
    } else {
        jval root = jscan_root(p, size);
        same(root, j);
        bool dups = any_dups(root);
        json_t *strict = json_loadb(p, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        if ((strict != NULL) == dups)
            abort();
        json_decref(strict);
    }
    json_decref(j);
    if (size <= 4096)
        check_escape(p, size);
    free(p);
    return 0;
}
