/*
 * compare.c - two stored runs compared result by result (see compare.h).
 *
 * Both runs' outcomes come sorted by key (evstore_outcomes), so one merge
 * walk finds the pairs; results on one side only are counted as unpaired.
 * Only the discordant pairs (pass on one side, fail on the other) get a
 * key string for ev_compare's lists, so memory is a few bytes per result
 * plus one key per changed verdict. Rows are formatted only for the page
 * asked for: three passes over the pairs (regressed, fixed, same) keep the
 * listing order stable without sorting.
 */
#include "eval/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval/evstore.h"
#include "eval/stats.h"

#define KEY_MAX 160

typedef struct pair_ix {
    size_t a, b;                  /* indexes into the base and current outcomes */
    ev_change change;
} pair_ix;

const char *ev_change_name(ev_change c)
{
    static const char *const names[EV_CHANGE__COUNT] = { "regressed", "fixed", "same" };
    return c >= 0 && c < EV_CHANGE__COUNT ? names[c] : NULL;
}

bool ev_change_parse(const char *s, ev_change *out)
{
    if (!s || !*s || strcmp(s, "any") == 0) {
        *out = EV_CHANGE_ANY;
        return true;
    }
    for (int c = 0; c < EV_CHANGE__COUNT; c++)
        if (strcmp(s, ev_change_name((ev_change)c)) == 0) {
            *out = (ev_change)c;
            return true;
        }
    return false;
}

static int key_cmp(const evstore_outcome *x, const evstore_outcome *y)
{
    if (x->test != y->test)
        return x->test < y->test ? -1 : 1;
    if (x->prompt != y->prompt)
        return x->prompt < y->prompt ? -1 : 1;
    if (x->provider != y->provider)
        return x->provider < y->provider ? -1 : 1;
    if (x->repeat != y->repeat)
        return x->repeat < y->repeat ? -1 : 1;
    return 0;
}

/* The pair's display key: "tests[3] prompt 0 provider 1 (description)
 * repeat 2" (no repeat part for repeat 0), the current run's description. */
static void pair_key(const evstore_outcome *x, const evstore_outcome *y, char *out, size_t cap)
{
    int n = snprintf(out, cap, "tests[%u] prompt %u provider %u", (unsigned)x->test, (unsigned)x->prompt,
                     (unsigned)x->provider);
    size_t used = n > 0 ? MIN((size_t)n, cap - 1) : 0;
    if (y->description[0] && used < cap) {
        n = snprintf(out + used, cap - used, " (%s)", y->description);
        used = n > 0 ? MIN(used + (size_t)n, cap - 1) : used;
    }
    if (x->repeat && used < cap)
        snprintf(out + used, cap - used, " repeat %u", (unsigned)x->repeat);
}

static ev_change change_of(int base_pass, int cur_pass)
{
    if (base_pass == 1 && cur_pass != 1)
        return EV_CHANGE_REGRESSED;
    if (base_pass != 1 && cur_pass == 1)
        return EV_CHANGE_FIXED;
    return EV_CHANGE_SAME;
}

static json_t *side_json(const evstore_outcome *o)
{
    const char *v = o->pass == 1 ? "pass" : o->pass == 0 ? "fail" : "error";
    return json_pack("{s:s, s:o}", "verdict", v, "score", isfinite(o->score) ? json_real(o->score) : json_null());
}

static json_t *row_json(const evstore_outcome *x, const evstore_outcome *y, ev_change c)
{
    char key[KEY_MAX];
    pair_key(x, y, key, sizeof key);
    const char *d = y->description[0] ? y->description : x->description;
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:s}", "key", key, "test", (json_int_t)x->test,
                     "prompt", (json_int_t)x->prompt, "provider", (json_int_t)x->provider, "repeat",
                     (json_int_t)x->repeat, "description", d[0] ? json_string(d) : json_null(), "base",
                     side_json(x), "current", side_json(y), "change", ev_change_name(c));
}

/* Adds rows, rows_total, next_offset, changes and unpaired to cmp. */
static err_code add_rows(json_t *cmp, const evstore_outcome *a, size_t na, const evstore_outcome *b, size_t nb,
                         const pair_ix *px, size_t n, const ev_compare_rows *want, query_error *e)
{
    size_t counts[EV_CHANGE__COUNT] = { 0 };
    for (size_t i = 0; i < n; i++)
        counts[px[i].change]++;
    size_t total = want->change == EV_CHANGE_ANY ? n : counts[want->change];
    json_t *rows = json_array();
    if (!rows)
        return query_fail(e, 500, NULL, "out_of_memory", "out of memory");
    size_t seen = 0, added = 0;
    for (int c = 0; c < EV_CHANGE__COUNT && added < want->limit; c++) {
        if (want->change != EV_CHANGE_ANY && want->change != (ev_change)c)
            continue;
        if (seen + counts[c] <= want->offset) { /* the whole group is before the page */
            seen += counts[c];
            continue;
        }
        for (size_t i = 0; i < n && added < want->limit; i++) {
            if (px[i].change != (ev_change)c)
                continue;
            if (seen++ < want->offset)
                continue;
            json_t *r = row_json(&a[px[i].a], &b[px[i].b], px[i].change);
            if (!r || json_array_append_new(rows, r) != 0) {
                json_decref(rows);
                return query_fail(e, 500, NULL, "out_of_memory", "out of memory");
            }
            added++;
        }
    }
    size_t next = want->offset + added;
    json_object_set_new(cmp, "rows", rows);
    json_object_set_new(cmp, "rows_total", json_integer((json_int_t)total));
    json_object_set_new(cmp, "next_offset", added && next < total ? json_integer((json_int_t)next) : json_null());
    json_object_set_new(cmp, "changes",
                        json_pack("{s:I, s:I, s:I}", "regressed", (json_int_t)counts[EV_CHANGE_REGRESSED], "fixed",
                                  (json_int_t)counts[EV_CHANGE_FIXED], "same", (json_int_t)counts[EV_CHANGE_SAME]));
    json_object_set_new(cmp, "unpaired",
                        json_pack("{s:I, s:I}", "base", (json_int_t)(na - n), "current", (json_int_t)(nb - n)));
    return ERR_OK;
}

/* evstore_outcomes names the id "id"; here it is one of two. */
static err_code outcomes(const char *url, const char *id, const char *skip, const char *param, evstore_outcome **out,
                         size_t *n, char full[64], query_error *e)
{
    err_code rc = evstore_outcomes(url, id, skip, out, n, full, e);
    if (rc != ERR_OK && strcmp(e->param, "id") == 0)
        snprintf(e->param, sizeof e->param, "%s", param);
    return rc;
}

err_code ev_compare_runs(const char *url, const char *base, const char *cur, const char *skip, double tolerance,
                         double alpha, uint64_t seed, const ev_compare_rows *rows, json_t **out, query_error *e)
{
    *out = NULL;
    if (!(tolerance >= 0.0 && tolerance <= 1.0))
        return query_fail(e, 400, "tolerance", "invalid_value", "tolerance must be a number from 0 to 1");
    if (!(alpha > 0.0 && alpha < 1.0))
        return query_fail(e, 400, "alpha", "invalid_value", "alpha must be a number above 0 and below 1");
    evstore_outcome *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    char ida[64], idb[64];
    err_code rc = outcomes(url, cur, NULL, "current", &b, &nb, idb, e);
    if (rc == ERR_OK)
        rc = outcomes(url, base, skip ? skip : idb, "base", &a, &na, ida, e);
    if (rc != ERR_OK) {
        free(a);
        free(b);
        return rc;
    }
    size_t cap = MIN(na, nb) + 1, n = 0, ndisc = 0;
    pair_ix *px = malloc(cap * sizeof *px);
    ev_pair *pairs = NULL;
    char(*keys)[KEY_MAX] = NULL;
    json_t *cmp = NULL;
    for (size_t i = 0, j = 0; px && i < na && j < nb;) {
        int c = key_cmp(&a[i], &b[j]);
        if (c < 0)
            i++;
        else if (c > 0)
            j++;
        else {
            px[n++] = (pair_ix){ i, j, change_of(a[i].pass, b[j].pass) };
            if (a[i].pass >= 0 && b[j].pass >= 0 && a[i].pass != b[j].pass)
                ndisc++;
            i++, j++;
        }
    }
    pairs = px ? calloc(n + 1, sizeof *pairs) : NULL;
    keys = pairs ? calloc(ndisc + 1, sizeof *keys) : NULL;
    if (!keys) {
        rc = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    for (size_t k = 0, d = 0; k < n; k++) {
        const evstore_outcome *x = &a[px[k].a], *y = &b[px[k].b];
        const char *key = NULL;
        if (x->pass >= 0 && y->pass >= 0 && x->pass != y->pass) { /* only these are listed by name */
            pair_key(x, y, keys[d], sizeof keys[d]);
            key = keys[d++];
        }
        pairs[k] = (ev_pair){ key, x->pass, y->pass, x->score, y->score };
    }
    cmp = ev_compare(pairs, n, tolerance, alpha, seed);
    if (!cmp) {
        rc = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    json_object_set_new(cmp, "baseline", json_string(ida));
    json_object_set_new(cmp, "current", json_string(idb));
    json_object_set_new(cmp, "tolerance", json_real(tolerance));
    json_object_set_new(cmp, "alpha", json_real(alpha));
    if (rows)
        rc = add_rows(cmp, a, na, b, nb, px, n, rows, e);
out:
    free(keys);
    free(pairs);
    free(px);
    free(a);
    free(b);
    if (rc == ERR_OK)
        *out = cmp;
    else
        json_decref(cmp);
    return rc;
}
