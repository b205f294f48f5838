/*
 * fuzz_guard_secrets.c - libFuzzer driver for guard_scan_secrets (src/guard/secrets.c).
 *
 * The input, copied to an exact-size heap buffer so ASan sees any read past
 * its end, is the text. The driver aborts (a crash for libFuzzer) when:
 *  - the scan fails, or a finding is empty, outside the text, of a type
 *    not asked for, without a rule, or with a score outside (0, 1];
 *  - findings are not in order and disjoint (the secrets pass never reports
 *    overlapping spans);
 *  - the findings for one type, or for all but one type, differ from the
 *    findings for all types filtered by that mask (the type is picked from
 *    the input's length);
 *  - guard_findings_sort leaves them out of order.
 */
#include <stdlib.h>
#include <string.h>
#include "guard/detect.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    if (size)
        memcpy(p, data, size);
    guard_findings all = { .max = 1 << 20 }, one = { .max = 1 << 20 }, rest = { .max = 1 << 20 };
    if (guard_scan_secrets(p, size, GUARD_SECRETS_ALL, &all) != ERR_OK)
        abort();
    check(size, GUARD_SECRETS_ALL, &all);
    static const guard_type types[] = { GT_API_KEY, GT_PRIVATE_KEY, GT_JWT, GT_CONN_STRING, GT_HIGH_ENTROPY };
    uint64_t bit = (uint64_t)1 << types[size % 5];
    if (guard_scan_secrets(p, size, bit, &one) != ERR_OK ||
        guard_scan_secrets(p, size, GUARD_SECRETS_ALL & ~bit, &rest) != ERR_OK)
        abort();
    same_filtered(&all, &one, bit);
    same_filtered(&all, &rest, GUARD_SECRETS_ALL & ~bit);
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
