/*
 * stats.h - aggregates of the trace store for dashboards: the parameters of
 * the two statistics endpoints (time range, bucket, grouping, filters), the
 * log-bucketed histogram that gives their percentiles, and the two
 * aggregations themselves (requests, errors, latency, time to first token,
 * tokens and cost per time bucket; guardrail checks and findings per bucket
 * by policy and detector). The REST handlers (api/stats.c) sit on it; the
 * API is in docs/api.md, "Statistics".
 *
 * Like store/query.h: the aggregations block on SQLite (run them on a
 * thread pool), open their own read-only connection, and return a jansson
 * tree the caller owns; failures fill a query_error (status, param, code,
 * message). Parsing needs no store and is safe on an event loop.
 */
#ifndef GENAIOPS_STORE_STATS_H
#define GENAIOPS_STORE_STATS_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"
#include "store/query.h"

#define STATS_MAX_BUCKETS 1000
#define STATS_TOP_GROUPS 10          /* groups shown by name; the rest sum into "(other)" */
#define STATS_MAX_PAIRS 100          /* (policy, detector) pairs kept; later ones fold into "(other)" */
#define STATS_LATEST 50              /* latest checks with findings listed */
#define STATS_TEXT_MAX 128           /* longest filter value in bytes */
#define STATS_BUCKET_MIN_NS 1000000000LL  /* 1 s */
#define STATS_RANGE_MAX_NS (3660LL * 86400 * 1000000000LL) /* about ten years */

typedef enum stats_kind { STATS_OVERVIEW, STATS_GUARDRAILS } stats_kind;
typedef enum stats_by { STATS_BY_NONE, STATS_BY_MODEL, STATS_BY_DEPLOYMENT, STATS_BY_PROVIDER } stats_by;

/* The parsed parameters of one request, every default resolved: the range
 * [from_ns, to_ns), buckets of bucket_ns aligned on multiples of bucket_ns
 * since the epoch (UTC), the first at start_ns, nbuckets of them (the first
 * may start before from_ns). Strings are NUL-terminated; "" = no filter. */
typedef struct stats_params {
    stats_kind kind;
    int64_t from_ns, to_ns;
    int64_t bucket_ns;
    bool bucket_auto;
    int64_t start_ns;
    int nbuckets;
    stats_by by;
    char model[STATS_TEXT_MAX + 1];      /* overview: request_model, exact */
    char deployment[STATS_TEXT_MAX + 1];
    char provider[STATS_TEXT_MAX + 1];
    char policy[STATS_TEXT_MAX + 1];     /* guardrails: span attributes, exact */
    char detector[STATS_TEXT_MAX + 1];
    char stage[8];                       /* input, output, tool */
    char verdict[8];                     /* pass, flag, redact, block, error */
    long timeout_ms;                     /* stop a longer aggregation with 503; 0 = 10 s */
} stats_params;

/* Parses a URL query string for the endpoint of kind, with now_ns as "now"
 * (relative times count back from it). Names: from, to, bucket, and by,
 * model, deployment, provider (overview) or policy, detector, stage,
 * verdict (guardrails); each at most once, an empty value means the
 * default. ERR_INVAL with e filled (400, param = the name, code
 * "invalid_parameter") for an unknown name or a bad value. */
err_code stats_params_parse(stats_params *p, stats_kind kind, sv query, int64_t now_ns, query_error *e);

/* "90s", "15m", "24h", "7d", "2w" (a positive integer and a unit) into
 * nanoseconds; false for anything else or past STATS_RANGE_MAX_NS. */
bool stats_parse_duration(sv s, int64_t *ns);
/* The bucket "auto" picks for a range of span_ns: of 1m, 5m, 15m, 1h, 6h
 * and 1d the one whose bucket count is nearest 60 (by ratio; ties go to the
 * smaller); when even 1d would give more than 120, the fewest whole days
 * that give at most 60. */
int64_t stats_auto_bucket(int64_t span_ns);
/* Sets p->start_ns and p->nbuckets from the range and bucket_ns; false when
 * that would be more than STATS_MAX_BUCKETS. */
bool stats_layout(stats_params *p);

/* ---- percentiles: a log-bucketed histogram (DDSketch's mapping) ----
 *
 * Values (milliseconds) v > 0 go to bin ceil(log_g(v / STATS_HIST_MIN)) with
 * g = 1.02, whose every value is within 1% of the bin's representative
 * 2 g^i / (g + 1) x STATS_HIST_MIN; values at or below 0 go to a zero bin.
 * The bins cover STATS_HIST_MIN to STATS_HIST_MAX (1 microsecond to about
 * 28 hours); values past the ends are clamped into the end bins, and
 * values that are not finite are left out. The exact
 * minimum and maximum are kept, and an estimate is clamped between them, so
 * one value (or a series of equal ones) comes back exactly. Fixed size: no
 * allocation. */
#define STATS_HIST_GAMMA 1.02
#define STATS_HIST_MIN 0.001
#define STATS_HIST_MAX 1e8
#define STATS_HIST_BINS 1288

typedef struct stats_hist {
    uint64_t n;
    uint32_t zero;                  /* values <= 0 */
    int lo, hi;                     /* bins in use: [lo, hi], lo > hi when none */
    double min, max;
    uint32_t bins[STATS_HIST_BINS];
} stats_hist;

void stats_hist_init(stats_hist *h);   /* an empty histogram */
void stats_hist_reset(stats_hist *h);  /* empties an initialised one (clears only the bins in use) */
void stats_hist_add(stats_hist *h, double v);
/* The nearest-rank p-quantile (0 < p <= 1: the value of rank ceil(p n)),
 * within 1%; false when h is empty. */
bool stats_hist_quantile(const stats_hist *h, double p, double *out);

/* ---- the aggregations ---- */

/* GET /api/v1/stats/overview: {"from","to","bucket_s","by","totals","series",
 * "groups"} (docs/api.md). */
err_code stats_overview(const char *store_url, const stats_params *p, json_t **out, query_error *e);
/* GET /api/v1/stats/guardrails: {"from","to","bucket_s","totals","series",
 * "policies","traces"} (docs/api.md). */
err_code stats_guardrails(const char *store_url, const stats_params *p, json_t **out, query_error *e);

#endif
