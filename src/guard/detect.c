/*
 * detect.c - what every detector shares: the finding types' names and the
 * bounded findings list.
 *
 * Names come from the GUARD_TYPES X-macro in detect.h, so the enum, the
 * placeholder stems and the parser cannot drift apart. The list grows by
 * doubling up to `max` entries (4096 when 0); findings past that are only
 * counted in `dropped`, so a hostile text full of matches costs bounded
 * memory and the caller can still tell that it missed some.
 */
#include <stdlib.h>
#include "guard/detect.h"

static const char *const type_names[] = {
#define GUARD_TYPE_NAME_(e, s) s,
    GUARD_TYPES(GUARD_TYPE_NAME_)
#undef GUARD_TYPE_NAME_
};

/* The enum identifiers ("MAC", "NHS", "CONN_STRING"), accepted by the
 * parser as well as the placeholder stems ("MAC_ADDRESS", "NHS_NUMBER"). */
static const char *const type_idents[] = {
#define GUARD_TYPE_IDENT_(e, s) #e,
    GUARD_TYPES(GUARD_TYPE_IDENT_)
#undef GUARD_TYPE_IDENT_
};

const char *guard_type_name(guard_type t)
{
    if ((unsigned)t >= GT__COUNT)
        return "UNKNOWN";
    return type_names[t];
}

/* Case-insensitive comparison where '-' and ' ' stand for '_', so
 * "credit-card", "Credit Card" and "CREDIT_CARD" are one name. */
static bool name_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x == '-' || x == ' ')
            x = '_';
        if (y == '-' || y == ' ')
            y = '_';
        if (x >= 'a' && x <= 'z')
            x = (unsigned char)(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z')
            y = (unsigned char)(y - 'a' + 'A');
        if (x != y)
            return false;
        if (!x)
            return true;
    }
}

bool guard_type_parse(const char *name, guard_type *out)
{
    if (!name || !*name)
        return false;
    for (int t = 0; t < GT__COUNT; t++) {
        if (name_eq(name, type_names[t]) || name_eq(name, type_idents[t])) {
            if (out)
                *out = (guard_type)t;
            return true;
        }
    }
    return false;
}

/*
 * Appends one finding. ERR_INVAL for a type out of range or a span that
 * does not fit the 32-bit fields, ERR_NOMEM when growing fails (the list
 * is unchanged). A full list (n == max) counts the finding in `dropped`
 * and returns ERR_OK: scanning goes on. `rule` must be a static string.
 */
err_code guard_findings_add(guard_findings *f, guard_type t, size_t start, size_t len, float score,
                            const char *rule)
{
    if (!f || (unsigned)t >= GT__COUNT || start > UINT32_MAX || len > UINT32_MAX - start)
        return ERR_INVAL;
    size_t max = f->max ? f->max : 4096;
    if (f->n >= max) {
        f->dropped++;
        return ERR_OK;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        if (cap > max)
            cap = max;
        guard_finding *v = realloc(f->v, cap * sizeof *v);
        if (!v)
            return ERR_NOMEM;
        f->v = v;
        f->cap = cap;
    }
    if (score < 0.0f)
        score = 0.0f;
    if (score > 1.0f)
        score = 1.0f;
    f->v[f->n++] = (guard_finding){ .type = t,
                                    .start = (uint32_t)start,
                                    .len = (uint32_t)len,
                                    .score = score,
                                    .rule = rule ? rule : "" };
    return ERR_OK;
}

/* Start ascending, then length descending (an enclosing finding before
 * what it contains), then type, so the order is total and stable. */
static int finding_cmp(const void *a, const void *b)
{
    const guard_finding *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    return 0;
}

void guard_findings_sort(guard_findings *f)
{
    if (f && f->n > 1)
        qsort(f->v, f->n, sizeof *f->v, finding_cmp);
}

void guard_findings_free(guard_findings *f)
{
    if (!f)
        return;
    free(f->v);
    f->v = NULL;
    f->n = f->cap = f->dropped = 0;
}
