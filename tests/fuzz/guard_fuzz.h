/*
 * guard_fuzz.h - the checks the PII and secrets fuzz drivers share
 * (fuzz_guard_pii.c, fuzz_guard_secrets.c): run one scan function over
 * the input with every type of its mask, with one type and with the rest,
 * and abort (a crash for libFuzzer) when:
 *  - the scan fails, or a finding is empty, outside the text, of a type
 *    not asked for, without a rule, or with a score outside (0, 1];
 *  - findings are not in order and disjoint (one pass never reports
 *    overlapping spans);
 *  - the findings for one type, or for all but one, differ from the
 *    findings for all types filtered by that mask;
 *  - guard_findings_sort leaves them out of order.
 * The text is copied to an exact-size heap buffer so ASan sees any read
 * past its end.
 */
#ifndef GENAIOPS_GUARD_FUZZ_H
#define GENAIOPS_GUARD_FUZZ_H

#include <stdlib.h>
#include <string.h>
#include "guard/detect.h"

typedef err_code (*guard_scan_fn)(const char *text, size_t len, uint64_t mask, guard_findings *out);

static void check(size_t n, uint64_t mask, const guard_findings *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const guard_finding *x = &f->v[i];
        if (x->len == 0 || (size_t)x->start + x->len > n || !(mask & ((uint64_t)1 << x->type)) || !x->rule ||
            !x->rule[0] || !(x->score > 0.0f && x->score <= 1.0f))
            abort();
        if (i && x->start < f->v[i - 1].start + f->v[i - 1].len)
            abort();
    }
}

/* b must be exactly a filtered by mask. */
static void same_filtered(const guard_findings *a, const guard_findings *b, uint64_t mask)
{
    size_t k = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (!(mask & ((uint64_t)1 << a->v[i].type)))
            continue;
        if (k >= b->n || b->v[k].start != a->v[i].start || b->v[k].len != a->v[i].len ||
            b->v[k].type != a->v[i].type || strcmp(b->v[k].rule, a->v[i].rule) != 0)
            abort();
        k++;
    }
    if (k != b->n)
        abort();
}

/* Runs the checks above for scan over data, all = its full mask, bit = the
 * one type to single out. */
static int guard_fuzz_run(guard_scan_fn scan, uint64_t all_mask, uint64_t bit, const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    if (size)
        memcpy(p, data, size);
    guard_findings all = { .max = 1 << 20 }, one = { .max = 1 << 20 }, rest = { .max = 1 << 20 };
    if (scan(p, size, all_mask, &all) != ERR_OK)
        abort();
    check(size, all_mask, &all);
    if (scan(p, size, bit, &one) != ERR_OK || scan(p, size, all_mask & ~bit, &rest) != ERR_OK)
        abort();
    same_filtered(&all, &one, bit);
    same_filtered(&all, &rest, all_mask & ~bit);
    guard_findings_sort(&all);
    for (size_t i = 1; i < all.n; i++)
        if (all.v[i].start < all.v[i - 1].start)
            abort();
    guard_findings_free(&all);
    guard_findings_free(&one);
    guard_findings_free(&rest);
    free(p);
    return 0;
}

#endif
