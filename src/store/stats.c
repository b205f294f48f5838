/*
 * stats.c - the aggregations behind GET /api/v1/stats/overview and
 * /api/v1/stats/guardrails (see stats.h; the API is docs/api.md,
 * "Statistics").
 *
 * Parameters come from the query string through one table (param_defs):
 * name, which endpoint knows it, what kind of value it takes and where it
 * goes. Times are RFC 3339, unix milliseconds, "now", or a duration back
 * from now; the bucket is "auto" or a duration; buckets are aligned on
 * multiples of their size since the epoch, so hours start on the hour.
 *
 * The overview reads the traces of the range once, in start order
 * (SELECT ... ORDER BY start_ns, which the start_ns index, or the
 * (column, start_ns) index of an equality filter, gives without a sort), and
 * adds each row to the whole range and to its bucket, overall and for its
 * group. Counts and sums live per bucket; the percentiles come from
 * log-bucketed histograms (stats_hist, 1% relative error): one per series
 * for the whole range and one per series for the bucket being read, whose
 * p50 and p95 are taken, and which is emptied, when the rows move on to the
 * next bucket. So memory does not grow with the number of traces: a few
 * hundred KiB of histograms and the per-bucket counters. With `by`, a first
 * statement finds the 10 busiest keys (in the same read transaction, so
 * both statements see the same traces); other keys go to "(other)".
 *
 * The guardrail view reads, in start order, the spans text of the range's
 * traces. A memmem for "guardrail" passes by the traces without guardrail
 * spans; in the others the guardrail span objects are picked out of the
 * store's compact layout by their byte patterns (find_guard_spans: the
 * large request span is never walked), or, for text laid out another way,
 * the whole array is walked; either way each candidate is read with the
 * jscan scanner, and every span of kind "guardrail" is one check, with its
 * policy, detector, stage, verdict, mode and findings (the list's length is
 * the count). Checks are counted by bucket, verdict and (policy, detector);
 * the latest 50 with findings are kept in a ring.
 *
 * Both run under a deadline (SQLite's progress handler), 10 s by default:
 * past it the answer is 503 stats_timeout, not a pool thread held forever.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "core/jscan.h"
#include "http/parser.h"
#include "store/stats.h"

#define BUSY_TIMEOUT_MS 5000
#define STATS_TIMEOUT_MS 10000
#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

/* ---- parameters ---- */

enum { K_OV = 1, K_GR = 2 };
typedef enum pkind { P_FROM, P_TO, P_BUCKET, P_BY, P_TEXT, P_STAGE, P_VERDICT } pkind;

static const struct param_def {
    const char *name;
    unsigned kinds;  /* K_OV, K_GR */
    pkind kind;
    size_t off;      /* P_TEXT, P_STAGE, P_VERDICT: the char array in stats_params */
    size_t size;
} param_defs[] = {
    { "from", K_OV | K_GR, P_FROM, 0, 0 },
    { "to", K_OV | K_GR, P_TO, 0, 0 },
    { "bucket", K_OV | K_GR, P_BUCKET, 0, 0 },
    { "by", K_OV, P_BY, 0, 0 },
    { "model", K_OV, P_TEXT, offsetof(stats_params, model), sizeof(((stats_params *)0)->model) },
    { "deployment", K_OV, P_TEXT, offsetof(stats_params, deployment), sizeof(((stats_params *)0)->deployment) },
    { "provider", K_OV, P_TEXT, offsetof(stats_params, provider), sizeof(((stats_params *)0)->provider) },
    { "policy", K_GR, P_TEXT, offsetof(stats_params, policy), sizeof(((stats_params *)0)->policy) },
    { "detector", K_GR, P_TEXT, offsetof(stats_params, detector), sizeof(((stats_params *)0)->detector) },
    { "stage", K_GR, P_STAGE, offsetof(stats_params, stage), sizeof(((stats_params *)0)->stage) },
    { "verdict", K_GR, P_VERDICT, offsetof(stats_params, verdict), sizeof(((stats_params *)0)->verdict) },
};

static const char *const stages[] = { "input", "output", "tool" };
static const char *const verdicts[] = { "pass", "flag", "redact", "block", "error" };
static const char *const by_names[] = { "none", "model", "deployment", "provider" };
static const char *const by_columns[] = { NULL, "request_model", "deployment", "provider" };

static err_code bad(query_error *e, const char *param, const char *fmt, const char *arg)
{
    return query_fail(e, 400, param, "invalid_parameter", fmt, arg);
}

bool stats_parse_duration(sv s, int64_t *ns)
{
    if (s.len < 2 || s.len > 13)
        return false;
    int64_t unit;
    switch (s.p[s.len - 1]) {
    case 's': unit = NS_PER_S; break;
    case 'm': unit = 60 * NS_PER_S; break;
    case 'h': unit = 3600 * NS_PER_S; break;
    case 'd': unit = 86400 * NS_PER_S; break;
    case 'w': unit = 7 * 86400 * NS_PER_S; break;
    default: return false;
    }
    int64_t n = 0;
    for (size_t i = 0; i + 1 < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        n = n * 10 + (s.p[i] - '0');
        if (n > STATS_RANGE_MAX_NS / NS_PER_S)
            return false;
    }
    if (n == 0 || n > STATS_RANGE_MAX_NS / unit)
        return false;
    *ns = n * unit;
    return true;
}

int64_t stats_auto_bucket(int64_t span_ns)
{
    static const int64_t sizes[] = { 60, 300, 900, 3600, 21600, 86400 };
    int64_t best = sizes[0] * NS_PER_S;
    double best_d = INFINITY;
    if (span_ns <= 0)
        return best;
    for (size_t i = 0; i < countof(sizes); i++) {
        double n = (double)span_ns / (double)(sizes[i] * NS_PER_S);
        double d = fabs(log(n / 60.0));
        if (d < best_d - 1e-9) {
            best_d = d;
            best = sizes[i] * NS_PER_S;
        }
    }
    int64_t day = 86400 * NS_PER_S;
    if (span_ns > 120 * day) {
        int64_t days = (span_ns + 60 * day - 1) / (60 * day);
        best = days * day;
    }
    return best;
}

bool stats_layout(stats_params *p)
{
    if (p->bucket_ns <= 0 || p->from_ns < 0 || p->to_ns <= p->from_ns)
        return false;
    int64_t start = p->from_ns - p->from_ns % p->bucket_ns;
    int64_t n = (p->to_ns - start + p->bucket_ns - 1) / p->bucket_ns;
    if (n < 1 || n > STATS_MAX_BUCKETS)
        return false;
    p->start_ns = start;
    p->nbuckets = (int)n;
    return true;
}

/* A time: "now", a duration back from now, unix ms or RFC 3339. */
static bool parse_when(sv v, int64_t now_ns, int64_t *ns)
{
    int64_t d;
    if (v.len == 3 && !memcmp(v.p, "now", 3)) {
        *ns = now_ns;
        return true;
    }
    if (stats_parse_duration(v, &d)) {
        *ns = now_ns - d;
        return *ns >= 0;
    }
    return query_parse_time(v, ns);
}

static int index_of(sv v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sv_eq_cstr(v, names[i]))
            return (int)i;
    return -1;
}

/* Sets one parameter from its decoded value; bucket and the times are only
 * parsed here, the defaults and the layout come after all are in. */
static err_code set_param(stats_params *p, const struct param_def *d, sv v, int64_t now_ns, bool *has_from,
                          bool *has_to, query_error *e)
{
    int i;
    switch (d->kind) {
    case P_FROM:
    case P_TO: {
        int64_t ns;
        if (!parse_when(v, now_ns, &ns))
            return bad(e, d->name,
                       "'%s' must be an RFC 3339 time (2024-11-21T09:30:00Z), unix milliseconds, 'now' or a duration "
                       "back from now (15m, 24h, 7d)",
                       d->name);
        if (d->kind == P_FROM) {
            p->from_ns = ns;
            *has_from = true;
        } else {
            p->to_ns = ns;
            *has_to = true;
        }
        return ERR_OK;
    }
    case P_BUCKET:
        if (sv_eq_cstr(v, "auto")) {
            p->bucket_auto = true;
            return ERR_OK;
        }
        if (!stats_parse_duration(v, &p->bucket_ns))
            return bad(e, "bucket", "'%s' must be 'auto' or a duration (30s, 5m, 1h, 1d)", "bucket");
        p->bucket_auto = false;
        return ERR_OK;
    case P_BY:
        if ((i = index_of(v, by_names, countof(by_names))) < 0)
            return bad(e, "by", "'%s' must be none, model, deployment or provider", "by");
        p->by = (stats_by)i;
        return ERR_OK;
    case P_STAGE:
        if (index_of(v, stages, countof(stages)) < 0)
            return bad(e, "stage", "'%s' must be input, output or tool", "stage");
        break;
    case P_VERDICT:
        if (index_of(v, verdicts, countof(verdicts)) < 0)
            return bad(e, "verdict", "'%s' must be pass, flag, redact, block or error", "verdict");
        break;
    case P_TEXT:
        break;
    }
    if (v.len >= d->size)
        return query_fail(e, 400, d->name, "invalid_parameter", "'%s' is longer than %zu bytes", d->name, d->size - 1);
    if (memchr(v.p, '\0', v.len))
        return bad(e, d->name, "'%s' contains a NUL byte", d->name);
    memcpy((char *)p + d->off, v.p, v.len);
    ((char *)p + d->off)[v.len] = '\0';
    return ERR_OK;
}

/* A name as it may be shown in a message: printable ASCII, at most 32. */
static void shown_name(sv raw, char out[33])
{
    size_t k = MIN(raw.len, 32);
    for (size_t m = 0; m < k; m++)
        out[m] = raw.p[m] >= 0x20 && raw.p[m] < 0x7f ? raw.p[m] : '?';
    out[k] = '\0';
}

err_code stats_params_parse(stats_params *p, stats_kind kind, sv query, int64_t now_ns, query_error *e)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->bucket_auto = true;
    unsigned mine = kind == STATS_OVERVIEW ? K_OV : K_GR;
    uint32_t seen = 0;
    bool has_from = false, has_to = false;
    size_t pos = 0;
    sv rawname, rawval;
    while (http_query_next(query, &pos, &rawname, &rawval)) {
        if (rawname.len == 0)
            continue;
        char name[33], val[STATS_TEXT_MAX * 3 + 1], shown[33];
        size_t nlen = http_url_decode(name, sizeof name, rawname);
        const struct param_def *d = NULL;
        size_t k = 0;
        if (nlen != (size_t)-1 && !memchr(name, '\0', nlen))
            for (k = 0; k < countof(param_defs); k++)
                if ((param_defs[k].kinds & mine) && !strcmp(param_defs[k].name, name)) {
                    d = &param_defs[k];
                    break;
                }
        if (!d) {
            if (nlen == (size_t)-1 || memchr(name, '\0', nlen))
                shown_name(rawname, shown);
            else
                shown_name(sv_make(name, nlen), shown);
            return query_fail(e, 400, shown, "invalid_parameter",
                              kind == STATS_OVERVIEW
                                  ? "unknown parameter '%s' (known: from, to, bucket, by, model, deployment, provider)"
                                  : "unknown parameter '%s' (known: from, to, bucket, policy, detector, stage, verdict)",
                              shown);
        }
        if (seen & (1u << k))
            return bad(e, d->name, "'%s' is given more than once", d->name);
        seen |= 1u << k;
        size_t vlen = http_url_decode(val, sizeof val, rawval);
        if (vlen == (size_t)-1)
            return bad(e, d->name, "the value of '%s' is malformed or too long", d->name);
        if (vlen == 0)
            continue; /* an empty value means the default */
        err_code r = set_param(p, d, sv_make(val, vlen), now_ns, &has_from, &has_to, e);
        if (r != ERR_OK)
            return r;
    }
    if (!has_to)
        p->to_ns = now_ns;
    if (!has_from)
        p->from_ns = p->to_ns - 86400 * NS_PER_S;
    if (p->from_ns < 0)
        return bad(e, has_from ? "from" : "to", "'%s' is before 1970", has_from ? "from" : "to");
    if (p->from_ns >= p->to_ns)
        return bad(e, "from", "'%s' must be before 'to'", "from");
    if (p->to_ns - p->from_ns > STATS_RANGE_MAX_NS)
        return bad(e, "from", "the range from '%s' to 'to' is longer than ten years", "from");
    if (p->bucket_auto)
        p->bucket_ns = stats_auto_bucket(p->to_ns - p->from_ns);
    if (p->bucket_ns < STATS_BUCKET_MIN_NS)
        return bad(e, "bucket", "'%s' must be at least 1s", "bucket");
    if (!stats_layout(p)) {
        int64_t n = (p->to_ns - (p->from_ns - p->from_ns % p->bucket_ns) + p->bucket_ns - 1) / p->bucket_ns;
        return query_fail(e, 400, "bucket", "invalid_parameter",
                          "the range holds %lld buckets of %llds; at most %d: choose a larger bucket or a shorter range",
                          (long long)n, (long long)(p->bucket_ns / NS_PER_S), STATS_MAX_BUCKETS);
    }
    return ERR_OK;
}

/* ---- the histogram ---- */

#define LOG_GAMMA 0.01980262729617973 /* log(STATS_HIST_GAMMA) */

void stats_hist_init(stats_hist *h)
{
    memset(h, 0, sizeof *h);
    h->lo = STATS_HIST_BINS;
    h->hi = -1;
    h->min = INFINITY;
    h->max = -INFINITY;
}

void stats_hist_reset(stats_hist *h)
{
    if (h->lo <= h->hi)
        memset(h->bins + h->lo, 0, (size_t)(h->hi - h->lo + 1) * sizeof h->bins[0]);
    h->n = 0;
    h->zero = 0;
    h->lo = STATS_HIST_BINS;
    h->hi = -1;
    h->min = INFINITY;
    h->max = -INFINITY;
}

void stats_hist_add(stats_hist *h, double v)
{
    if (!isfinite(v))
        return;
    h->n++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    if (v <= 0) {
        h->zero++;
        return;
    }
    int i;
    if (v <= STATS_HIST_MIN)
        i = 0;
    else if (v >= STATS_HIST_MAX)
        i = STATS_HIST_BINS - 1;
    else {
        double x = ceil(log(v / STATS_HIST_MIN) / LOG_GAMMA);
        i = x < 0 ? 0 : x > STATS_HIST_BINS - 1 ? STATS_HIST_BINS - 1 : (int)x;
    }
    h->bins[i]++;
    if (i < h->lo)
        h->lo = i;
    if (i > h->hi)
        h->hi = i;
}

bool stats_hist_quantile(const stats_hist *h, double p, double *out)
{
    if (h->n == 0)
        return false;
    if (!(p > 0))
        p = 0;
    if (p > 1)
        p = 1;
    uint64_t rank = (uint64_t)ceil(p * (double)h->n - 1e-9);
    if (rank < 1)
        rank = 1;
    if (rank > h->n)
        rank = h->n;
    double v = h->max;
    uint64_t seen = h->zero;
    if (seen >= rank)
        v = 0;
    else
        for (int i = h->lo; i <= h->hi; i++) {
            seen += h->bins[i];
            if (seen >= rank) {
                double g = STATS_HIST_GAMMA;
                v = STATS_HIST_MIN * 2.0 * pow(g, i) / (g + 1.0);
                break;
            }
        }
    if (v < h->min)
        v = h->min;
    if (v > h->max)
        v = h->max;
    *out = v;
    return true;
}

/* ---- the store ---- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int past_deadline(void *ud) { return mono_ns() > *(const int64_t *)ud; }

typedef struct conn {
    sqlite3 *db;
    int64_t deadline;
    long timeout_ms;
} conn;

/* A read-only connection under a deadline, in one read transaction (so
 * every statement of an answer sees the same traces). */
static err_code conn_open(const char *url, long timeout_ms, conn *c, query_error *e)
{
    memset(c, 0, sizeof *c);
    const char *path = url;
    if (!strncmp(url, "sqlite://", 9))
        path = url + 9;
    else if (strstr(url, "://"))
        return query_fail(e, 500, NULL, "store_error", "store url '%.200s' is not supported (use sqlite://PATH)", url);
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err_code r = query_fail(e, 503, NULL, "store_unavailable", "cannot open the store %.200s: %s", path,
                                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return r;
    }
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : STATS_TIMEOUT_MS;
    c->deadline = mono_ns() + (int64_t)c->timeout_ms * NS_PER_MS;
    sqlite3_progress_handler(c->db, 1000, past_deadline, &c->deadline);
    sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL);
    return ERR_OK;
}

static void conn_close(conn *c)
{
    if (!c->db)
        return;
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_progress_handler(c->db, 0, NULL, NULL);
    sqlite3_close(c->db);
    c->db = NULL;
}

/* A failed statement: 503 past the deadline, when the store is busy or has
 * no trace tables yet; else 500. */
static err_code fail_db(query_error *e, conn *c, int rc, const char *what)
{
    if (rc == SQLITE_INTERRUPT)
        return query_fail(e, 503, NULL, "stats_timeout",
                          "the statistics took longer than %ld ms; narrow the range (from, to) or filter", c->timeout_ms);
    return query_fail_db(e, c->db, what);
}

/* ---- JSON helpers ---- */

static void fmt_time(int64_t ns, char *out, size_t cap)
{
    time_t secs = (time_t)(ns / NS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (int)(ns / NS_PER_MS % 1000));
}

static json_t *jtime(int64_t ns)
{
    char t[40];
    fmt_time(ns, t, sizeof t);
    return json_string(t);
}

static json_t *jnum_or_null(bool has, double v) { return has && isfinite(v) ? json_real(v) : json_null(); }

/* A string from bytes that should be UTF-8 (bad bytes become '?'). */
static json_t *jstr(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    size_t n = strlen(s);
    char *tmp = malloc(n + 1);
    if (!tmp)
        return NULL;
    for (size_t i = 0; i < n; i++)
        tmp[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    tmp[n] = '\0';
    v = json_string(tmp);
    free(tmp);
    return v;
}

/* The envelope both answers start with. */
static json_t *envelope(const stats_params *p)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "from", jtime(p->from_ns));
    json_object_set_new(o, "to", jtime(p->to_ns));
    json_object_set_new(o, "bucket_s", json_integer(p->bucket_ns / NS_PER_S));
    return o;
}

static int64_t bucket_t_ms(const stats_params *p, int k) { return (p->start_ns + (int64_t)k * p->bucket_ns) / NS_PER_MS; }

static int bucket_of(const stats_params *p, int64_t ns)
{
    int64_t k = (ns - p->start_ns) / p->bucket_ns;
    return k < 0 ? 0 : k >= p->nbuckets ? p->nbuckets - 1 : (int)k;
}

/* ---- the overview ---- */

typedef struct bucket_acc {
    uint32_t requests, errors;
    int64_t in_tok, out_tok;
    double cost;
    double q[4];         /* latency p50, p95, ttft p50, p95 */
    uint8_t has;         /* bit 0: latency known, bit 1: ttft known */
} bucket_acc;

typedef struct series_acc {
    char *key;           /* NULL for the overall series */
    uint64_t requests, errors;
    int64_t in_tok, out_tok;
    double cost;
    bucket_acc *b;       /* nbuckets */
    stats_hist *h;       /* 4: latency and ttft of the range, latency and ttft of the current bucket */
} series_acc;

static bool series_init(series_acc *s, int nbuckets, const char *key)
{
    memset(s, 0, sizeof *s);
    s->b = calloc((size_t)nbuckets, sizeof *s->b);
    s->h = malloc(4 * sizeof *s->h);
    s->key = key ? strdup(key) : NULL;
    if (!s->b || !s->h || (key && !s->key))
        return false;
    for (int i = 0; i < 4; i++)
        stats_hist_init(&s->h[i]);
    return true;
}

static void series_free(series_acc *s)
{
    free(s->b);
    free(s->h);
    free(s->key);
}

static void series_add(series_acc *s, int k, bool cur, const double *lat, const double *ttft, bool error,
                       const int64_t *in, const int64_t *out, const double *cost)
{
    bucket_acc *b = &s->b[k];
    s->requests++;
    b->requests++;
    if (error) {
        s->errors++;
        b->errors++;
    }
    if (in) {
        s->in_tok += *in;
        b->in_tok += *in;
    }
    if (out) {
        s->out_tok += *out;
        b->out_tok += *out;
    }
    if (cost) {
        s->cost += *cost;
        b->cost += *cost;
    }
    if (lat) {
        stats_hist_add(&s->h[0], *lat);
        if (cur)
            stats_hist_add(&s->h[2], *lat);
    }
    if (ttft) {
        stats_hist_add(&s->h[1], *ttft);
        if (cur)
            stats_hist_add(&s->h[3], *ttft);
    }
}

/* The current bucket k is complete: its percentiles from the bucket's
 * histograms, which are emptied for the next one. */
static void series_flush(series_acc *s, int k)
{
    bucket_acc *b = &s->b[k];
    if (s->h[2].n) {
        stats_hist_quantile(&s->h[2], 0.5, &b->q[0]);
        stats_hist_quantile(&s->h[2], 0.95, &b->q[1]);
        b->has |= 1;
        stats_hist_reset(&s->h[2]);
    }
    if (s->h[3].n) {
        stats_hist_quantile(&s->h[3], 0.5, &b->q[2]);
        stats_hist_quantile(&s->h[3], 0.95, &b->q[3]);
        b->has |= 2;
        stats_hist_reset(&s->h[3]);
    }
}

static json_t *pct_json(const stats_hist *h)
{
    double a = 0, b = 0;
    bool ok = stats_hist_quantile(h, 0.5, &a) && stats_hist_quantile(h, 0.95, &b);
    return json_pack("{s:o, s:o}", "p50", jnum_or_null(ok, a), "p95", jnum_or_null(ok, b));
}

static json_t *series_totals_json(const series_acc *s)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:f}", "requests", (json_int_t)s->requests, "errors",
                     (json_int_t)s->errors, "error_rate",
                     s->requests ? json_real((double)s->errors / (double)s->requests) : json_null(), "latency_ms",
                     pct_json(&s->h[0]), "ttft_ms", pct_json(&s->h[1]), "input_tokens", (json_int_t)s->in_tok,
                     "output_tokens", (json_int_t)s->out_tok, "cost_usd", s->cost);
}

static json_t *series_points_json(const series_acc *s, const stats_params *p)
{
    json_t *a = json_array();
    for (int k = 0; a && k < p->nbuckets; k++) {
        const bucket_acc *b = &s->b[k];
        json_t *o = json_pack("{s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:I, s:f}", "t", (json_int_t)bucket_t_ms(p, k),
                              "requests", (json_int_t)b->requests, "errors", (json_int_t)b->errors, "latency_p50",
                              jnum_or_null(b->has & 1, b->q[0]), "latency_p95", jnum_or_null(b->has & 1, b->q[1]),
                              "ttft_p50", jnum_or_null(b->has & 2, b->q[2]), "ttft_p95",
                              jnum_or_null(b->has & 2, b->q[3]), "input_tokens", (json_int_t)b->in_tok,
                              "output_tokens", (json_int_t)b->out_tok, "cost_usd", b->cost);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The WHERE clause of the overview's filters (named parameters). */
static void overview_where(const stats_params *p, char *out, size_t cap)
{
    snprintf(out, cap, " WHERE start_ns >= :from AND start_ns < :to%s%s%s",
             p->model[0] ? " AND request_model = :model" : "", p->deployment[0] ? " AND deployment = :deployment" : "",
             p->provider[0] ? " AND provider = :provider" : "");
}

static void overview_bind(sqlite3_stmt *st, const stats_params *p)
{
    query_bind_i64(st, ":from", p->from_ns);
    query_bind_i64(st, ":to", p->to_ns);
    query_bind_text(st, ":model", p->model);
    query_bind_text(st, ":deployment", p->deployment);
    query_bind_text(st, ":provider", p->provider);
}

#define KEY_NONE "(none)"
#define KEY_OTHER "(other)"

/* The STATS_TOP_GROUPS busiest keys of the range into g[1..], *ng = how
 * many series there are then (the overall one included). */
static err_code top_groups(conn *c, const stats_params *p, series_acc *g, int *ng, query_error *e)
{
    char where[256], sql[512];
    overview_where(p, where, sizeof where);
    const char *col = by_columns[p->by];
    snprintf(sql, sizeof sql, "SELECT IFNULL(%s, ''), count(*) FROM traces%s GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %d",
             col, where, STATS_TOP_GROUPS);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail_db(e, c, rc, "grouping traces");
    overview_bind(st, p);
    err_code r = ERR_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        if (!series_init(&g[*ng], p->nbuckets, k && *k ? k : KEY_NONE)) {
            (*ng)++;
            r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
            break;
        }
        (*ng)++;
    }
    if (r == ERR_OK && rc != SQLITE_DONE)
        r = fail_db(e, c, rc, "grouping traces");
    sqlite3_finalize(st);
    return r;
}

static int group_of(series_acc *g, int ng, const char *key)
{
    if (!key || !*key)
        key = KEY_NONE;
    for (int i = 1; i < ng; i++)
        if (g[i].key && !strcmp(g[i].key, key))
            return i;
    return -1;
}

err_code stats_overview(const char *store_url, const stats_params *p, json_t **out, query_error *e)
{
    *out = NULL;
    /* [0] overall, [1..10] the top keys, then "(other)" */
    series_acc g[STATS_TOP_GROUPS + 2];
    int ng = 0;
    conn c;
    err_code r = conn_open(store_url, p->timeout_ms, &c, e);
    if (r != ERR_OK)
        return r;
    sqlite3_stmt *st = NULL;
    json_t *o = NULL;
    int rc;
    if (!series_init(&g[ng++], p->nbuckets, NULL)) {
        r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    bool grouped = p->by != STATS_BY_NONE;
    int other = -1;
    if (grouped) {
        if ((r = top_groups(&c, p, g, &ng, e)) != ERR_OK)
            goto out;
        other = ng;
        if (!series_init(&g[ng++], p->nbuckets, KEY_OTHER)) {
            r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
            goto out;
        }
    }
    char where[256], sql[768];
    overview_where(p, where, sizeof where);
    snprintf(sql, sizeof sql,
             "SELECT start_ns, duration_ms, ttft_ms, status, input_tokens, output_tokens, cost_usd%s%s%s FROM traces%s "
             "ORDER BY start_ns",
             grouped ? ", IFNULL(" : "", grouped ? by_columns[p->by] : "", grouped ? ", '')" : "", where);
    if ((rc = sqlite3_prepare_v2(c.db, sql, -1, &st, NULL)) != SQLITE_OK) {
        r = fail_db(e, &c, rc, "reading traces");
        goto out;
    }
    overview_bind(st, p);
    int cur = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int k = bucket_of(p, sqlite3_column_int64(st, 0));
        if (k > cur) {
            for (int i = 0; cur >= 0 && i < ng; i++)
                series_flush(&g[i], cur);
            cur = k;
        }
        bool in_cur = k == cur; /* always, as the rows come in start order */
        double lat = sqlite3_column_double(st, 1), ttft = sqlite3_column_double(st, 2);
        int64_t in = sqlite3_column_int64(st, 4), outt = sqlite3_column_int64(st, 5);
        double cost = sqlite3_column_double(st, 6);
        bool has_lat = sqlite3_column_type(st, 1) != SQLITE_NULL, has_ttft = sqlite3_column_type(st, 2) != SQLITE_NULL;
        bool has_in = sqlite3_column_type(st, 4) != SQLITE_NULL && in >= 0;
        bool has_out = sqlite3_column_type(st, 5) != SQLITE_NULL && outt >= 0;
        bool has_cost = sqlite3_column_type(st, 6) != SQLITE_NULL && isfinite(cost);
        bool error = sqlite3_column_int(st, 3) >= 400;
        series_add(&g[0], k, in_cur, has_lat ? &lat : NULL, has_ttft ? &ttft : NULL, error, has_in ? &in : NULL,
                   has_out ? &outt : NULL, has_cost ? &cost : NULL);
        if (grouped) {
            int gi = group_of(g, other, (const char *)sqlite3_column_text(st, 7));
            series_add(&g[gi < 0 ? other : gi], k, in_cur, has_lat ? &lat : NULL, has_ttft ? &ttft : NULL, error,
                       has_in ? &in : NULL, has_out ? &outt : NULL, has_cost ? &cost : NULL);
        }
    }
    if (rc != SQLITE_DONE) {
        r = fail_db(e, &c, rc, "reading traces");
        goto out;
    }
    for (int i = 0; cur >= 0 && i < ng; i++)
        series_flush(&g[i], cur);

    o = envelope(p);
    json_t *groups = json_array();
    if (!o || !groups) {
        json_decref(groups);
        goto oom;
    }
    json_object_set_new(o, "by", json_string(by_names[p->by]));
    json_object_set_new(o, "totals", series_totals_json(&g[0]));
    json_object_set_new(o, "series", series_points_json(&g[0], p));
    json_object_set_new(o, "groups", groups);
    for (int i = 1; i < ng; i++) {
        if (i == other && g[i].requests == 0)
            continue;
        json_t *x = json_pack("{s:o, s:o, s:o}", "key", jstr(g[i].key), "totals", series_totals_json(&g[i]), "series",
                              series_points_json(&g[i], p));
        if (!x || json_array_append_new(groups, x))
            goto oom;
    }
    if (json_object_size(o) != 7 || !json_object_get(o, "series") || !json_object_get(o, "totals"))
        goto oom;
    *out = o;
    o = NULL;
    goto out;
oom:
    r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
out:
    json_decref(o);
    sqlite3_finalize(st);
    conn_close(&c);
    for (int i = 0; i < ng; i++)
        series_free(&g[i]);
    return r;
}

/* ---- guardrails ---- */

enum { V_PASS, V_FLAG, V_REDACT, V_BLOCK, V_ERROR, V__COUNT };

typedef struct gr_bucket {
    uint32_t checks, findings;
    uint32_t v[V__COUNT];
} gr_bucket;

typedef struct pair_acc {
    char *policy, *detector;
    uint64_t checks, findings;
    uint64_t v[V__COUNT];
    uint32_t *series;    /* findings per bucket */
} pair_acc;

typedef struct gr_acc {
    const stats_params *p;
    uint64_t checks, findings;
    uint64_t v[V__COUNT];
    gr_bucket *b;
    pair_acc pairs[STATS_MAX_PAIRS + 1];   /* the last: "(other)" once STATS_MAX_PAIRS are taken */
    int npairs;
    json_t *ring[STATS_LATEST];            /* the latest checks with findings */
    size_t nring;                          /* how many ever went in */
    bool oom;
} gr_acc;

/* One guardrail span's fields, as views into the spans text. */
typedef struct check {
    jval policy, detector, stage, verdict, mode, findings;
    long long start_ns;
} check;

static void text_of(jval v, char *dst, size_t cap)
{
    size_t n = 0;
    if (v.type != J_STRING || !jscan_string(v, dst, cap, &n))
        dst[0] = '\0';
    if (v.type == J_STRING && v.len >= 2 && n >= cap && cap > 1) { /* too long: a prefix ending on a whole character */
        size_t k = MIN(v.len - 2, cap - 1);
        memcpy(dst, v.p + 1, k);
        dst[k] = '\0';
        dst[jscan_utf8_prefix(dst, k)] = '\0';
    }
}

static bool matches(jval v, const char *want) { return !*want || (v.type == J_STRING && jscan_string_eq(v, want)); }

static pair_acc *pair_for(gr_acc *a, const char *policy, const char *detector)
{
    for (int i = 0; i < a->npairs; i++)
        if (!strcmp(a->pairs[i].policy, policy) && !strcmp(a->pairs[i].detector, detector))
            return &a->pairs[i];
    bool full = a->npairs >= STATS_MAX_PAIRS;
    if (full && a->npairs > STATS_MAX_PAIRS)
        return &a->pairs[STATS_MAX_PAIRS];
    pair_acc *x = &a->pairs[a->npairs];
    x->policy = strdup(full ? KEY_OTHER : policy);
    x->detector = strdup(full ? KEY_OTHER : detector);
    x->series = calloc((size_t)a->p->nbuckets, sizeof *x->series);
    a->npairs++;
    if (!x->policy || !x->detector || !x->series) {
        a->oom = true;
        return NULL;
    }
    return x;
}

static void add_check(gr_acc *a, const char *trace_id, int64_t trace_ns, const check *ck)
{
    int k = bucket_of(a->p, trace_ns);
    long long nf = 0;
    if (ck->findings.type == J_ARRAY) {
        jscan_iter it;
        jval v;
        jscan_iter_init(&it, ck->findings);
        while (jscan_next(&it, NULL, &v))
            nf++;
    }
    int vi = ck->verdict.type == J_STRING ? jscan_match(ck->verdict, verdicts, countof(verdicts)) : -1;
    gr_bucket *b = &a->b[k];
    a->checks++;
    a->findings += (uint64_t)nf;
    b->checks++;
    b->findings += (uint32_t)nf;
    if (vi >= 0) {
        a->v[vi]++;
        b->v[vi]++;
    }
    char policy[160], detector[64], stage[16], verdict[16], mode[16];
    text_of(ck->policy, policy, sizeof policy);
    text_of(ck->detector, detector, sizeof detector);
    pair_acc *x = pair_for(a, policy, detector);
    if (x) {
        x->checks++;
        x->findings += (uint64_t)nf;
        x->series[k] += (uint32_t)nf;
        if (vi >= 0)
            x->v[vi]++;
    }
    if (nf == 0)
        return;
    text_of(ck->stage, stage, sizeof stage);
    text_of(ck->verdict, verdict, sizeof verdict);
    text_of(ck->mode, mode, sizeof mode);
    json_t *list = json_array();
    if (list && ck->findings.type == J_ARRAY) {
        jscan_iter it;
        jval v;
        char f[256];
        jscan_iter_init(&it, ck->findings);
        while (jscan_next(&it, NULL, &v)) {
            text_of(v, f, sizeof f);
            json_array_append_new(list, jstr(f));
        }
    }
    json_t *item = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "trace_id", trace_id, "t",
                             (json_int_t)((ck->start_ns > 0 ? ck->start_ns : trace_ns) / NS_PER_MS), "policy",
                             jstr(policy), "detector", jstr(detector), "stage", jstr(stage), "verdict", jstr(verdict),
                             "mode", jstr(mode), "findings", list);
    if (!item) {
        a->oom = true;
        return;
    }
    size_t slot = a->nring % STATS_LATEST;
    json_decref(a->ring[slot]);
    a->ring[slot] = item;
    a->nring++;
}

/* Is the J_STRING k (quotes included) the key lit? The store writes keys
 * without escapes, so a byte compare decides; a key with an escape is
 * unescaped and compared (escapes only make a literal longer). */
static bool key_is(jval k, const char *lit, size_t n)
{
    if (k.len == n + 2)
        return !memcmp(k.p + 1, lit, n);
    return k.len > n + 2 && memchr(k.p, '\\', k.len) && jscan_string_eq(k, lit);
}
#define KEY_IS(k, lit) key_is((k), (lit), sizeof(lit) - 1)

/* Reads a span object's members in one walk: false as soon as its "kind"
 * is known not to be "guardrail" (the writer puts kind third, before the
 * attributes); else the check with its start and its attributes (views
 * into the text). */
static bool read_guardrail(jval span, check *ck)
{
    jscan_iter it;
    jval k, v, attrs = { 0 };
    bool guard = false;
    memset(ck, 0, sizeof *ck);
    jscan_iter_init(&it, span);
    while (jscan_next(&it, &k, &v)) {
        if (KEY_IS(k, "kind")) {
            if (!jscan_string_eq(v, "guardrail"))
                return false;
            guard = true;
        } else if (KEY_IS(k, "start_ns"))
            jscan_int(v, &ck->start_ns);
        else if (KEY_IS(k, "attributes"))
            attrs = v;
    }
    if (!guard || attrs.type != J_OBJECT)
        return guard;
    jscan_iter_init(&it, attrs);
    while (jscan_next(&it, &k, &v)) {
        if (KEY_IS(k, "genaiops.guardrail.policy"))
            ck->policy = v;
        else if (KEY_IS(k, "genaiops.guardrail.detector"))
            ck->detector = v;
        else if (KEY_IS(k, "genaiops.guardrail.stage"))
            ck->stage = v;
        else if (KEY_IS(k, "genaiops.guardrail.verdict"))
            ck->verdict = v;
        else if (KEY_IS(k, "genaiops.guardrail.mode"))
            ck->mode = v;
        else if (KEY_IS(k, "genaiops.guardrail.findings"))
            ck->findings = v;
    }
    return true;
}

static void count_span(gr_acc *a, const char *trace_id, int64_t trace_ns, jval span)
{
    const stats_params *p = a->p;
    check ck;
    if (span.type != J_OBJECT || !read_guardrail(span, &ck))
        return;
    if (!matches(ck.policy, p->policy) || !matches(ck.detector, p->detector) || !matches(ck.stage, p->stage) ||
        !matches(ck.verdict, p->verdict))
        return;
    add_check(a, trace_id, trace_ns, &ck);
}

#define GUARD_VALUE "\"guardrail\""
#define KIND_KEY "\"kind\":"
#define SPAN_OPEN "{\"span_id\":"
#define SPAN_NEXT "},{\"span_id\":"

/* The guardrail spans of the store's compact spans text, found without
 * walking the other spans: each occurrence of "guardrail" (a whole JSON
 * string) must follow "kind": directly, and lies in a span object that
 * begins at the last {"span_id": before it and ends where the next
 * },{"span_id": or the closing }] is (inside JSON strings a quote is always
 * escaped, so these byte sequences only occur between values). Up to max
 * spans into out. False when the text is not laid out that way (then the
 * caller walks the whole array); an occurrence in the attributes of some
 * other span is handed out too, and read_guardrail turns it down. */
static bool find_guard_spans(const char *text, size_t len, jval *out, size_t max, size_t *n)
{
    const char *end = text + len, *from = text;
    size_t kl = sizeof KIND_KEY - 1;
    *n = 0;
    for (;;) {
        const char *hit = memmem(from, (size_t)(end - from), GUARD_VALUE, sizeof GUARD_VALUE - 1);
        if (!hit)
            return true;
        if ((size_t)(hit - from) < kl || memcmp(hit - kl, KIND_KEY, kl))
            return false;
        const char *s = hit;
        while (s > from && !(*s == '{' && !memcmp(s, SPAN_OPEN, sizeof SPAN_OPEN - 1)))
            s--;
        if (*s != '{' || memcmp(s, SPAN_OPEN, sizeof SPAN_OPEN - 1))
            return false;
        const char *e = memmem(hit, (size_t)(end - hit), SPAN_NEXT, sizeof SPAN_NEXT - 1);
        if (e)
            e++;
        else {
            e = end;
            while (e > hit && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
                e--;
            if (e - hit < 2 || e[-1] != ']' || e[-2] != '}')
                return false;
            e--;
        }
        if (*n == max)
            return false;
        out[(*n)++] = (jval){ J_OBJECT, s, (size_t)(e - s) };
        from = e;
    }
}

/* The guardrail spans of one trace's spans text that pass the filters. The
 * text is the store's own, so it is valid JSON; the readers never leave it
 * whatever it holds. Most traces have no guardrail span: the memmem of
 * find_guard_spans passes them by; the others have their guardrail spans
 * picked out directly (the request span, the largest, is never walked),
 * or, if the text is laid out in some other way, the whole array walked. */
static void scan_spans(gr_acc *a, const char *trace_id, int64_t trace_ns, const char *text, size_t len)
{
    jval found[32];
    size_t n;
    if (!text)
        return;
    if (find_guard_spans(text, len, found, countof(found), &n)) {
        for (size_t i = 0; i < n; i++)
            count_span(a, trace_id, trace_ns, found[i]);
        return;
    }
    jval root = jscan_root(text, len), span;
    if (root.type != J_ARRAY)
        return;
    jscan_iter it;
    jscan_iter_init(&it, root);
    while (jscan_next(&it, NULL, &span))
        count_span(a, trace_id, trace_ns, span);
}

static json_t *verdicts_json(const uint64_t *v)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "pass", (json_int_t)v[V_PASS], "flag", (json_int_t)v[V_FLAG],
                     "redact", (json_int_t)v[V_REDACT], "block", (json_int_t)v[V_BLOCK], "error",
                     (json_int_t)v[V_ERROR]);
}

/* Pairs by findings, then checks, then name; "(other)" last. */
static int pair_cmp(const void *x, const void *y)
{
    const pair_acc *a = x, *b = y;
    bool ao = !strcmp(a->policy, KEY_OTHER) && !strcmp(a->detector, KEY_OTHER);
    bool bo = !strcmp(b->policy, KEY_OTHER) && !strcmp(b->detector, KEY_OTHER);
    if (ao != bo)
        return ao ? 1 : -1;
    if (a->findings != b->findings)
        return a->findings > b->findings ? -1 : 1;
    if (a->checks != b->checks)
        return a->checks > b->checks ? -1 : 1;
    int c = strcmp(a->policy, b->policy);
    return c ? c : strcmp(a->detector, b->detector);
}

static json_t *guardrails_json(gr_acc *a)
{
    const stats_params *p = a->p;
    json_t *o = envelope(p);
    json_t *series = json_array(), *pol = json_array(), *tr = json_array();
    if (!o || !series || !pol || !tr)
        goto fail;
    json_object_set_new(o, "totals", json_pack("{s:I, s:I, s:o}", "checks", (json_int_t)a->checks, "findings",
                                               (json_int_t)a->findings, "verdicts", verdicts_json(a->v)));
    for (int k = 0; k < p->nbuckets; k++) {
        const gr_bucket *b = &a->b[k];
        if (json_array_append_new(series, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "t",
                                                    (json_int_t)bucket_t_ms(p, k), "checks", (json_int_t)b->checks,
                                                    "findings", (json_int_t)b->findings, "block",
                                                    (json_int_t)b->v[V_BLOCK], "redact", (json_int_t)b->v[V_REDACT],
                                                    "flag", (json_int_t)b->v[V_FLAG], "error",
                                                    (json_int_t)b->v[V_ERROR])))
            goto fail;
    }
    qsort(a->pairs, (size_t)a->npairs, sizeof a->pairs[0], pair_cmp);
    for (int i = 0; i < a->npairs; i++) {
        const pair_acc *x = &a->pairs[i];
        json_t *ps = json_array();
        for (int k = 0; ps && k < p->nbuckets; k++)
            if (json_array_append_new(ps, json_pack("{s:I, s:I}", "t", (json_int_t)bucket_t_ms(p, k), "findings",
                                                    (json_int_t)x->series[k]))) {
                json_decref(ps);
                ps = NULL;
            }
        if (!ps || json_array_append_new(pol, json_pack("{s:o, s:o, s:I, s:I, s:o, s:o}", "policy", jstr(x->policy),
                                                        "detector", jstr(x->detector), "checks", (json_int_t)x->checks,
                                                        "findings", (json_int_t)x->findings, "verdicts",
                                                        verdicts_json(x->v), "series", ps)))
            goto fail;
    }
    /* newest first: the ring from its last entry backwards */
    size_t n = MIN(a->nring, (size_t)STATS_LATEST);
    for (size_t i = 0; i < n; i++) {
        size_t slot = (a->nring - 1 - i) % STATS_LATEST;
        if (json_array_append(tr, a->ring[slot]))
            goto fail;
    }
    if (json_object_set_new(o, "series", series) | json_object_set_new(o, "policies", pol) |
        json_object_set_new(o, "traces", tr)) {
        json_decref(o);
        return NULL;
    }
    if (json_object_size(o) != 7 || !json_object_get(o, "totals"))
        goto fail_o;
    return o;
fail:
    json_decref(series);
    json_decref(pol);
    json_decref(tr);
fail_o:
    json_decref(o);
    return NULL;
}

err_code stats_guardrails(const char *store_url, const stats_params *p, json_t **out, query_error *e)
{
    *out = NULL;
    gr_acc *a = calloc(1, sizeof *a);
    if (!a)
        return query_fail(e, 500, NULL, "out_of_memory", "out of memory");
    a->p = p;
    a->b = calloc((size_t)p->nbuckets, sizeof *a->b);
    if (!a->b) {
        free(a);
        return query_fail(e, 500, NULL, "out_of_memory", "out of memory");
    }
    conn c;
    err_code r = conn_open(store_url, p->timeout_ms, &c, e);
    sqlite3_stmt *st = NULL;
    int rc;
    if (r != ERR_OK)
        goto out;
    if ((rc = sqlite3_prepare_v2(c.db,
                                 "SELECT trace_id, start_ns, spans FROM traces WHERE start_ns >= :from AND start_ns < :to "
                                 "ORDER BY start_ns",
                                 -1, &st, NULL)) != SQLITE_OK) {
        r = fail_db(e, &c, rc, "reading guardrail checks");
        goto out;
    }
    query_bind_i64(st, ":from", p->from_ns);
    query_bind_i64(st, ":to", p->to_ns);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !a->oom) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        int64_t ns = sqlite3_column_int64(st, 1);
        const char *spans = (const char *)sqlite3_column_text(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        char tid[33];
        snprintf(tid, sizeof tid, "%s", id ? id : "");
        scan_spans(a, tid, ns, spans, len);
    }
    if (a->oom) {
        r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    if (rc != SQLITE_DONE) {
        r = fail_db(e, &c, rc, "reading guardrail checks");
        goto out;
    }
    if (!(*out = guardrails_json(a)))
        r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
out:
    sqlite3_finalize(st);
    conn_close(&c);
    for (int i = 0; i < a->npairs; i++) {
        free(a->pairs[i].policy);
        free(a->pairs[i].detector);
        free(a->pairs[i].series);
    }
    for (size_t i = 0; i < STATS_LATEST; i++)
        json_decref(a->ring[i]);
    free(a->b);
    free(a);
    return r;
}
