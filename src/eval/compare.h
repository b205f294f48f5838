/*
 * compare.h - two stored evaluation runs compared result by result. It is
 * the one comparison behind `genaiops eval compare`, `genaiops eval
 * --baseline` and GET /api/v1/evals/compare, so the three cannot drift.
 *
 * Results pair up by their key (test, prompt, provider, repeat); the pairs
 * go to ev_compare (stats.h: McNemar on pass/fail, paired bootstrap of the
 * scores, the gate). With rows asked for, the answer also lists the pairs
 * themselves, regressions first, then fixes, then the rest, each group in
 * key order. Calls block on SQLite (evstore.h): run them off any event loop.
 */
#ifndef GENAIOPS_EVAL_COMPARE_H
#define GENAIOPS_EVAL_COMPARE_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"
#include "store/query.h"

/* How one paired result changed, in the order rows are listed. */
typedef enum ev_change {
    EV_CHANGE_REGRESSED = 0,  /* passed in the base run, does not pass now (fail or error) */
    EV_CHANGE_FIXED,          /* did not pass in the base run, passes now */
    EV_CHANGE_SAME,           /* neither of the above */
    EV_CHANGE__COUNT,
    EV_CHANGE_ANY = -1,       /* as a filter: every row */
} ev_change;

/* "regressed", "fixed", "same"; NULL for anything else. */
const char *ev_change_name(ev_change c);
/* The change named s (EV_CHANGE_ANY for "" or "any"); false when unknown. */
bool ev_change_parse(const char *s, ev_change *out);

/* Which rows to list: those with `change` (EV_CHANGE_ANY: all) in the
 * listing order, from offset on, at most limit of them. */
typedef struct ev_compare_rows {
    size_t limit, offset;
    ev_change change;
} ev_compare_rows;

/* Compares the stored run `base` with `cur` (full ids, unique prefixes or
 * "latest"; with base "latest" the newest finished run other than cur, or
 * other than skip when skip is set). tolerance >= 0, alpha in (0,1), seed
 * for the bootstrap.
 *
 * *out (the caller owns it) is ev_compare's object plus "baseline",
 * "current" (the full ids), "tolerance" and "alpha" - what `genaiops eval
 * compare --json` prints. With rows (not NULL) it also gets "rows": [{key,
 * test, prompt, provider, repeat, description, base:{verdict, score},
 * current:{verdict, score}, change}], "rows_total" (rows of that change),
 * "next_offset" (null on the last page), "changes": {regressed, fixed,
 * same} over every pair, and "unpaired": {base, current} (results without
 * a partner in the other run). A row's key is the string the "regressed"
 * and "improved" lists use.
 *
 * Errors fill e: 400 for a bad id, tolerance or alpha (param names it:
 * "base", "current", "tolerance", "alpha"), 404 run_not_found, 500/503 for
 * the store. */
err_code ev_compare_runs(const char *url, const char *base, const char *cur, const char *skip, double tolerance,
                         double alpha, uint64_t seed, const ev_compare_rows *rows, json_t **out, query_error *e);

#endif
