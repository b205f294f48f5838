/*
 * textsim.c - vector similarity and sentence/line splitting for the
 * evaluators (see textsim.h).
 *
 * The vector functions accumulate in double over the whole vector and check
 * the result with isfinite, so huge or non-finite embedding values give
 * "false" instead of NaN. The splitters are single forward scans over the
 * bytes: ASCII punctuation and white space only, so UTF-8 text passes
 * through untouched (a multi-byte sequence never contains those bytes).
 */
#include <math.h>
#include "eval/textsim.h"

bool ts_dot(const double *a, const double *b, size_t n, double *out)
{
    if (n == 0 || !a || !b)
        return false;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    if (!isfinite(s))
        return false;
    *out = s;
    return true;
}

bool ts_cosine(const double *a, const double *b, size_t n, double *out)
{
    if (n == 0 || !a || !b)
        return false;
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += a[i] * b[i];
        aa += a[i] * a[i];
        bb += b[i] * b[i];
    }
    if (!isfinite(ab) || !isfinite(aa) || !isfinite(bb) || aa <= 0 || bb <= 0)
        return false;
    double c = ab / (sqrt(aa) * sqrt(bb));
    if (!isfinite(c))
        return false;
    /* rounding can step just outside [-1, 1] for parallel vectors */
    *out = c > 1 ? 1 : c < -1 ? -1 : c;
    return true;
}

bool ts_euclidean(const double *a, const double *b, size_t n, double *out)
{
    if (n == 0 || !a || !b)
        return false;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] - b[i];
        s += d * d;
    }
    double r = sqrt(s);
    if (!isfinite(r))
        return false;
    *out = r;
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

sv ts_trim(sv s)
{
    while (s.len && is_space(s.p[0])) {
        s.p++;
        s.len--;
    }
    while (s.len && is_space(s.p[s.len - 1]))
        s.len--;
    return s;
}

/* Hands p[from, to) to fn when it is not blank. Returns false to stop. */
static bool emit(const char *p, size_t from, size_t to, ts_piece_fn fn, void *ud, size_t *count)
{
    sv piece = ts_trim(sv_make(p + from, to - from));
    if (piece.len == 0)
        return true;
    (*count)++;
    return fn ? fn(ud, piece) : true;
}

size_t ts_sentences(sv text, ts_piece_fn fn, void *ud)
{
    size_t count = 0, start = 0, i = 0;
    const char *p = text.p;
    if (!p)
        return 0;
    while (i < text.len) {
        char c = p[i];
        if (c == '\n' || c == '\r') {
            if (!emit(p, start, i, fn, ud, &count))
                return count;
            start = ++i;
            continue;
        }
        if (c == '.' || c == '!' || c == '?') {
            size_t j = i;
            while (j < text.len && (p[j] == '.' || p[j] == '!' || p[j] == '?'))
                j++;
            while (j < text.len && (p[j] == '"' || p[j] == '\'' || p[j] == ')' || p[j] == ']'))
                j++;
            if (j == text.len || is_space(p[j])) {
                if (!emit(p, start, j, fn, ud, &count))
                    return count;
                start = j;
            }
            i = j;
            continue;
        }
        i++;
    }
    emit(p, start, text.len, fn, ud, &count);
    return count;
}

size_t ts_lines(sv text, ts_piece_fn fn, void *ud)
{
    size_t count = 0, start = 0;
    const char *p = text.p;
    if (!p)
        return 0;
    for (size_t i = 0; i < text.len; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            if (!emit(p, start, i, fn, ud, &count))
                return count;
            start = i + 1;
        }
    }
    emit(p, start, text.len, fn, ud, &count);
    return count;
}
