/*
 * test_diff.c - the unified line diff (src/prompt/diff.c).
 *
 * Golden files: tests/data/diff/NAME.a and NAME.b with NAME.diff, the
 * output of GNU `diff -u --label a --label b` for them. Then properties
 * over random inputs: applying the printed diff to a gives b, and the diff
 * is minimal (its -/+ lines equal the edit distance from an LCS table).
 * Then the bounds: too many lines or edits fall back to replacing
 * everything (still a correct diff), and a full output buffer is
 * ERR_TOOBIG with nothing half-written.
 */
#include <stdio.h>
#include <stdlib.h>
#include "core/buf.h"
#include "prompt/diff.h"
#include "test.h"

TEST(diff_golden)
{
    static const char *const cases[] = { "change_middle", "edges",           "two_hunks", "close_changes",
                                         "no_newline",    "no_newline_both", "from_empty", "to_empty",
                                         "template",      "unicode",         "blank_lines" };
    for (size_t i = 0; i < countof(cases); i++) {
        char pa[96], pb[96], pd[96];
        snprintf(pa, sizeof pa, "diff/%s.a", cases[i]);
        snprintf(pb, sizeof pb, "diff/%s.b", cases[i]);
        snprintf(pd, sizeof pd, "diff/%s.diff", cases[i]);
        size_t na = 0, nb = 0, nd = 0;
        char *a = test_read_data(pa, &na), *b = test_read_data(pb, &nb), *d = test_read_data(pd, &nd);
        if (a && b && d) {
            buf out;
            buf_init(&out, 1 << 20);
            bool changed = false;
            CHECK_INT(diff_unified(a, na, b, nb, "a", "b", 3, &out, &changed), ERR_OK);
            CHECK(changed);
            if (out.len != nd || memcmp(out.p, d, nd) != 0)
                test_fail(__FILE__, __LINE__, "%s: got\n%.*s\nexpected\n%s", cases[i], (int)out.len,
                          out.p ? out.p : "", d);
            buf_free(&out);
        }
        free(a);
        free(b);
        free(d);
    }
}

TEST(diff_equal_and_context)
{
    buf out;
    buf_init(&out, 4096);
    bool changed = true;
    CHECK_INT(diff_unified("a\nb\n", 4, "a\nb\n", 4, "x", "y", 3, &out, &changed), ERR_OK);
    CHECK(!changed);
    CHECK_INT(out.len, 0);
    CHECK_INT(diff_unified("", 0, "", 0, "x", "y", 3, &out, NULL), ERR_OK);
    CHECK_INT(out.len, 0);
    /* context 0: only the changed lines, diff(1)'s ranges */
    CHECK_INT(diff_unified("a\nb\nc\n", 6, "a\nc\n", 4, "x", "y", 0, &out, &changed), ERR_OK);
    CHECK_MEM(out.p, out.len, "--- x\n+++ y\n@@ -2 +1,0 @@\n-b\n");
    buf_reset(&out);
    CHECK_INT(diff_unified("a\nc\n", 4, "a\nb\nc\n", 6, "x", "y", 0, &out, &changed), ERR_OK);
    CHECK_MEM(out.p, out.len, "--- x\n+++ y\n@@ -1,0 +2 @@\n+b\n");
    buf_reset(&out);
    /* a negative context is 0; appends after what out holds */
    buf_append_str(&out, "HEAD\n");
    CHECK_INT(diff_unified("a\n", 2, "b\n", 2, "x", "y", -5, &out, NULL), ERR_OK);
    CHECK_MEM(out.p, out.len, "HEAD\n--- x\n+++ y\n@@ -1 +1 @@\n-a\n+b\n");
    buf_free(&out);
}

TEST(diff_output_bound)
{
    buf out;
    buf_init(&out, 16);
    buf_append_str(&out, "keep");
    bool changed = false;
    CHECK_INT(diff_unified("a\nb\nc\n", 6, "a\nB\nc\n", 6, "left", "right", 3, &out, &changed), ERR_TOOBIG);
    CHECK(changed);
    CHECK_MEM(out.p, out.len, "keep");
    buf_free(&out);
}

/* ---- properties ---- */

typedef struct lines {
    char **v;
    size_t n;
} lines;

static lines split_lines(const char *t, size_t n)
{
    lines l = { calloc(n + 1, sizeof(char *)), 0 };
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] == '\n') {
            l.v[l.n++] = strndup(t + s, i + 1 - s);
            s = i + 1;
        }
    if (s < n)
        l.v[l.n++] = strndup(t + s, n - s);
    return l;
}

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Applies a unified diff (lines all ending in '\n') to a; NULL when the
 * diff does not fit a. Counts the -/+ lines in *edits. */
static char *apply(const char *a, size_t na, const char *d, size_t nd, size_t *edits)
{
    lines la = split_lines(a, na), ld = split_lines(d, nd);
    buf out;
    buf_init(&out, 1 << 24);
    size_t ai = 0;
    bool ok = ld.n >= 2 || nd == 0;
    *edits = 0;
    for (size_t k = 2; ok && k < ld.n; k++) {
        const char *l = ld.v[k];
        if (l[0] == '@') {
            long start = 0, cnt = 1;
            char *p = strchr(l, '-');
            start = strtol(p + 1, &p, 10);
            if (*p == ',')
                cnt = strtol(p + 1, &p, 10);
            size_t first = cnt == 0 ? (size_t)start : (size_t)start - 1;
            if (first < ai || first > la.n) {
                ok = false;
                break;
            }
            while (ai < first)
                buf_append_str(&out, la.v[ai++]);
        } else if (l[0] == ' ' || l[0] == '-') {
            if (ai >= la.n || strcmp(la.v[ai], l + 1) != 0) {
                ok = false;
                break;
            }
            if (l[0] == ' ')
                buf_append_str(&out, la.v[ai]);
            else
                (*edits)++;
            ai++;
        } else if (l[0] == '+') {
            buf_append_str(&out, l + 1);
            (*edits)++;
        } else {
            ok = false;
        }
    }
    while (ok && ai < la.n)
        buf_append_str(&out, la.v[ai++]);
    lines_free(&la);
    lines_free(&ld);
    if (!ok) {
        buf_free(&out);
        return NULL;
    }
    return out.p ? out.p : strdup("");
}

/* The edit distance (deletions + insertions) between line lists. */
static size_t edit_distance(const lines *a, const lines *b)
{
    size_t *row = calloc((b->n + 1) * (a->n + 1), sizeof *row);
    size_t w = b->n + 1;
    for (size_t i = 1; i <= a->n; i++)
        for (size_t j = 1; j <= b->n; j++)
            row[i * w + j] = strcmp(a->v[i - 1], b->v[j - 1]) == 0 ? row[(i - 1) * w + j - 1] + 1
                             : row[(i - 1) * w + j] > row[i * w + j - 1] ? row[(i - 1) * w + j]
                                                                         : row[i * w + j - 1];
    size_t lcs = row[a->n * w + b->n];
    free(row);
    return a->n + b->n - 2 * lcs;
}

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void random_text(buf *b, int maxlines, int alphabet)
{
    int n = (int)(rnd() % (uint32_t)(maxlines + 1));
    for (int i = 0; i < n; i++)
        buf_printf(b, "%c\n", 'a' + (int)(rnd() % (uint32_t)alphabet));
}

TEST(diff_random_is_correct_and_minimal)
{
    for (int round = 0; round < 400; round++) {
        buf a, b, out;
        buf_init(&a, 1 << 20);
        buf_init(&b, 1 << 20);
        buf_init(&out, 1 << 22);
        random_text(&a, 40, 2 + round % 6);
        if (round % 3 == 0) {
            /* b: a with a few edits, the common case */
            buf_append(&b, a.p ? a.p : "", a.len);
            for (int k = 0; k < 3 && b.len > 2; k++) {
                size_t at = (rnd() % (b.len / 2)) * 2;
                b.p[at] = (char)('a' + rnd() % 8);
            }
        } else {
            random_text(&b, 40, 2 + round % 6);
        }
        int ctx = (int)(rnd() % 4);
        bool changed = false;
        CHECK_INT(diff_unified(a.p ? a.p : "", a.len, b.p ? b.p : "", b.len, "a", "b", ctx, &out, &changed), ERR_OK);
        bool equal = a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
        CHECK(changed == !equal);
        size_t edits = 0;
        char *got = apply(a.p ? a.p : "", a.len, out.p ? out.p : "", out.len, &edits);
        if (!got || strcmp(got, b.p ? b.p : "") != 0) {
            test_fail(__FILE__, __LINE__, "round %d: the diff does not turn a into b:\n%.*s", round, (int)out.len,
                      out.p ? out.p : "");
        } else {
            lines la = split_lines(a.p ? a.p : "", a.len), lb = split_lines(b.p ? b.p : "", b.len);
            size_t want = edit_distance(&la, &lb);
            if (edits != want)
                test_fail(__FILE__, __LINE__, "round %d: %zu edits, the minimum is %zu", round, edits, want);
            lines_free(&la);
            lines_free(&lb);
        }
        free(got);
        buf_free(&a);
        buf_free(&b);
        buf_free(&out);
    }
}

/* Past DIFF_MAX_EDITS the diff replaces everything; past DIFF_MAX_LINES
 * too. Either way it is a diff that applies. */
static void check_fallback(int na, int nb, bool distinct)
{
    buf a, b, out;
    buf_init(&a, 1 << 24);
    buf_init(&b, 1 << 24);
    buf_init(&out, 1 << 26);
    for (int i = 0; i < na; i++)
        buf_printf(&a, "a%d\n", i);
    for (int i = 0; i < nb; i++)
        buf_printf(&b, distinct ? "b%d\n" : "a%d\n", i);
    buf_append_str(&b, "tail\n");
    CHECK_INT(diff_unified(a.p, a.len, b.p, b.len, "a", "b", 3, &out, NULL), ERR_OK);
    size_t edits = 0;
    char *got = apply(a.p, a.len, out.p, out.len, &edits);
    CHECK(got && strcmp(got, b.p) == 0);
    if (distinct)
        CHECK_INT(edits, (size_t)na + (size_t)nb + 1);
    free(got);
    buf_free(&a);
    buf_free(&b);
    buf_free(&out);
}

TEST(diff_bounds_fall_back)
{
    check_fallback(DIFF_MAX_EDITS / 2 + 100, DIFF_MAX_EDITS / 2 + 100, true); /* too many edits */
    check_fallback(DIFF_MAX_LINES + 1, 10, false);                            /* too many lines */
    /* a large diff with few edits stays minimal */
    buf a, b, out;
    buf_init(&a, 1 << 24);
    buf_init(&b, 1 << 24);
    buf_init(&out, 1 << 20);
    for (int i = 0; i < 50000; i++) {
        buf_printf(&a, "line %d\n", i);
        buf_printf(&b, i == 25000 ? "changed %d\n" : "line %d\n", i);
    }
    CHECK_INT(diff_unified(a.p, a.len, b.p, b.len, "a", "b", 3, &out, NULL), ERR_OK);
    CHECK_MEM(out.p, out.len,
              "--- a\n+++ b\n@@ -24998,7 +24998,7 @@\n line 24997\n line 24998\n line 24999\n-line 25000\n+changed "
              "25000\n line 25001\n line 25002\n line 25003\n");
    buf_free(&a);
    buf_free(&b);
    buf_free(&out);
}
