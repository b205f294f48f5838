/*
 * metrics.c - per-worker metric shards, bounded label sets, and the
 * Prometheus text and OTLP JSON renderings.
 *
 * How it works. Every metric family is a row of the table `fams`: its
 * Prometheus and OTel names, labels, kind (counter or histogram) and, for a
 * histogram, its bucket bounds in native units (tokens, nanoseconds). A
 * family's label sets ("series") are interned in a bounded table shared by
 * all workers: the values are joined with NUL separators into one key,
 * hashed and looked up by open addressing without locks (a slot is
 * published with a release store after its key is written). Only a label
 * set never seen before takes the insert mutex, and only while the table
 * has room: after METRICS_FOLD_AT series the family's foldable labels (the
 * model, say) become "other", and the last slot is kept for the label set
 * that is "other" everywhere, so an unbounded stream of invented model
 * names costs a bounded table and at most METRICS_MAX_SERIES lock takes.
 *
 * Values live in per-worker shards: shard w holds, per family, an array of
 * METRICS_MAX_SERIES x cells uint64 (a counter is 1 cell, a histogram one
 * cell per bucket, +Inf included, then the sum). Only worker w writes shard
 * w, with relaxed atomic load + store (no lock prefix on the data plane); a
 * scrape sums all shards with relaxed loads. Histogram sums are integers in
 * native units (exact across shards), except the cost counter, which holds
 * the bits of a double. Callers with no worker index share one extra shard
 * behind a mutex.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/log.h"
#include "observe/metrics.h"
#include "guard/detect.h"

#define HSLOTS (METRICS_MAX_SERIES * 2) /* power of two */
#define KEYMAX 320
#define MAXLABELS 5
#define NS 1000000000ull

typedef enum mkind { MK_COUNTER, MK_HIST } mkind;

typedef struct fam_def {
    const char *name;       /* Prometheus name */
    const char *help;
    const char *otel_name;
    const char *otel_unit;
    mkind kind;
    bool dbl;               /* counter cell holds a double's bits */
    int nlabels;
    const char *labels[MAXLABELS];      /* Prometheus label names */
    const char *otel_labels[MAXLABELS]; /* OTel attribute names */
    unsigned fold;          /* bit i: label i becomes "other" when the table is full */
    unsigned omit_empty;    /* bit i: label i is left out when its value is "" */
    unsigned int_label;     /* bit i: OTLP sends label i as intValue when numeric */
    const uint64_t *bounds; /* histogram: upper bounds in native units */
    int nbounds;
    double div;             /* native unit / div = rendered unit (exact for the bounds) */
} fam_def;

/* OTel GenAI semantic conventions: token buckets 1, 4, 16 ... 4^13. */
static const uint64_t token_bounds[] = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576,
    4194304, 16777216, 67108864,
};
/* OTel GenAI: 0.01 s doubling to 81.92 s (in ns). */
static const uint64_t dur_bounds[] = {
    10000000, 20000000, 40000000, 80000000, 160000000, 320000000, 640000000,
    1280000000, 2560000000, 5120000000, 10240000000, 20480000000, 40960000000,
    81920000000,
};
/* The gateway's own time: 10 us to 1 s (in ns). */
static const uint64_t overhead_bounds[] = {
    10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 1000000000,
};

enum { F_TOKENS, F_DURATION, F_TTFC, F_REQUESTS, F_UPERR, F_RETRIES, F_OVERHEAD, F_COST, F_GCHECKS, F_GFINDINGS, NFAM };

static const fam_def fams[NFAM] = {
    [F_TOKENS] = { "gen_ai_client_token_usage", "Number of input and output tokens used.",
                   "gen_ai.client.token.usage", "{token}", MK_HIST, false, 4,
                   { "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type" },
                   { "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.token.type" },
                   1u << 2, 0, 0, token_bounds, (int)countof(token_bounds), 1 },
    [F_DURATION] = { "gen_ai_client_operation_duration_seconds", "GenAI operation duration.",
                     "gen_ai.client.operation.duration", "s", MK_HIST, false, 4,
                     { "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type" },
                     { "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "error.type" },
                     1u << 2, 1u << 3, 0, dur_bounds, (int)countof(dur_bounds), 1e9 },
    [F_TTFC] = { "gen_ai_client_operation_time_to_first_chunk_seconds",
                 "Time to receive the first chunk of a streaming response.",
                 "gen_ai.client.operation.time_to_first_chunk", "s", MK_HIST, false, 3,
                 { "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model" },
                 { "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model" },
                 1u << 2, 0, 0, dur_bounds, (int)countof(dur_bounds), 1e9 },
    [F_REQUESTS] = { "genaiops_requests_total", "Requests answered by the gateway, by model, provider and HTTP status.",
                     "genaiops.requests", "{request}", MK_COUNTER, false, 3,
                     { "model", "provider", "status" },
                     { "gen_ai.request.model", "gen_ai.provider.name", "http.response.status_code" },
                     1u << 0, 0, 1u << 2, NULL, 0, 1 },
    [F_UPERR] = { "genaiops_upstream_errors_total", "Upstream attempts that failed, by provider and error type.",
                  "genaiops.upstream.errors", "{error}", MK_COUNTER, false, 2,
                  { "provider", "error_type" }, { "gen_ai.provider.name", "error.type" },
                  1u << 1, 0, 0, NULL, 0, 1 },
    [F_RETRIES] = { "genaiops_upstream_retries_total", "Upstream attempts beyond the first (retries and fallbacks), by provider.",
                    "genaiops.upstream.retries", "{retry}", MK_COUNTER, false, 1,
                    { "provider" }, { "gen_ai.provider.name" }, 1u << 0, 0, 0, NULL, 0, 1 },
    [F_OVERHEAD] = { "genaiops_overhead_seconds", "Time the gateway itself spent on a request, upstream time excluded.",
                     "genaiops.overhead", "s", MK_HIST, false, 0, { 0 }, { 0 }, 0, 0, 0,
                     overhead_bounds, (int)countof(overhead_bounds), 1e9 },
    [F_COST] = { "genaiops_cost_usd_total", "Cost of the requests in US dollars, by model and provider.",
                 "genaiops.cost", "USD", MK_COUNTER, true, 2,
                 { "model", "provider" }, { "gen_ai.request.model", "gen_ai.provider.name" },
                 1u << 0, 0, 0, NULL, 0, 1 },
    [F_GCHECKS] = { "genaiops_guardrail_checks_total",
                    "Guardrail checks, by policy, detector, stage, verdict (pass, flag, redact, block, error) and mode.",
                    "genaiops.guardrail.checks", "{check}", MK_COUNTER, false, 5,
                    { "policy", "detector", "stage", "verdict", "mode" },
                    { "genaiops.guardrail.policy", "genaiops.guardrail.detector", "genaiops.guardrail.stage",
                      "genaiops.guardrail.verdict", "genaiops.guardrail.mode" },
                    0, 0, 0, NULL, 0, 1 },
    [F_GFINDINGS] = { "genaiops_guardrail_findings_total", "Guardrail findings, by policy, detector and finding type.",
                      "genaiops.guardrail.findings", "{finding}", MK_COUNTER, false, 3,
                      { "policy", "detector", "type" },
                      { "genaiops.guardrail.policy", "genaiops.guardrail.detector", "genaiops.guardrail.finding.type" },
                      0, 0, 0, NULL, 0, 1 },
};

static const char INFLIGHT_NAME[] = "genaiops_inflight_requests";
static const char INFLIGHT_HELP[] = "Requests the gateway is handling right now.";

typedef struct series_tab {
    int slot[HSLOTS];               /* entry index + 1, 0 = empty; atomic */
    int count;                      /* entries in use; atomic */
    uint32_t hash[METRICS_MAX_SERIES];
    uint16_t klen[METRICS_MAX_SERIES];
    char key[METRICS_MAX_SERIES][KEYMAX]; /* values, each followed by a NUL */
} series_tab;

/* The series of the last request a shard counted, by its label values:
 * steady traffic repeats them, and a hit skips building, hashing and
 * probing six keys (the indices of a key never change once made). */
#define MEMO_UNSET (-2)

typedef struct memo {
    bool valid;
    size_t len;
    char key[KEYMAX];             /* op, provider, model, error, status: make_key's form */
    int tok_in, tok_out, dur, req, cost, over;
} memo;

/* The guardrail checks' series, by the span's labels as one number
 * (span_rec.guard_key): a small open-addressed cache, so that a request
 * with five checks neither builds nor compares five label sets. */
#define GMEMO 32
#define GPROBE 4
typedef struct gmemo {
    uint64_t key;             /* 0: free */
    int series;
} gmemo;

typedef struct shard {
    uint64_t *cells[NFAM];
    int64_t inflight;
    memo last;
    gmemo guard[GMEMO];
} shard;

typedef struct gauge_reg {
    char name[128];
    char help[256];
    double (*read)(void *);
    void *ud;
    bool counter;
} gauge_reg;

typedef struct mstate {
    int nshards;                    /* workers + 1 shared */
    shard *shards;
    series_tab *tabs[NFAM];
    uint64_t start_ns;
    pthread_mutex_t insert_lock;    /* series inserts */
    pthread_mutex_t shared_lock;    /* writers of the shared shard */
    pthread_mutex_t gauge_lock;
    int ngauges;
    gauge_reg gauges[METRICS_MAX_GAUGES];
} mstate;

static mstate *M;

static int ncells(const fam_def *f) { return f->kind == MK_HIST ? f->nbounds + 2 : 1; }

/* ---- set-up ---------------------------------------------------------- */

static void free_state(mstate *m)
{
    if (!m)
        return;
    if (m->shards)
        for (int i = 0; i < m->nshards; i++)
            for (int f = 0; f < NFAM; f++)
                free(m->shards[i].cells[f]);
    free(m->shards);
    for (int f = 0; f < NFAM; f++)
        free(m->tabs[f]);
    pthread_mutex_destroy(&m->insert_lock);
    pthread_mutex_destroy(&m->shared_lock);
    pthread_mutex_destroy(&m->gauge_lock);
    free(m);
}

void metrics_shutdown(void)
{
    free_state(M);
    M = NULL;
}

err_code metrics_init(int nworkers)
{
    metrics_shutdown();
    if (nworkers < 0)
        nworkers = 0;
    if (nworkers > 4096)
        nworkers = 4096;
    mstate *m = calloc(1, sizeof *m);
    if (!m)
        goto oom;
    pthread_mutex_init(&m->insert_lock, NULL);
    pthread_mutex_init(&m->shared_lock, NULL);
    pthread_mutex_init(&m->gauge_lock, NULL);
    m->start_ns = trace_now_ns();
    m->nshards = nworkers + 1;
    m->shards = calloc((size_t)m->nshards, sizeof *m->shards);
    if (!m->shards)
        goto oom;
    for (int f = 0; f < NFAM; f++) {
        m->tabs[f] = calloc(1, sizeof *m->tabs[f]);
        if (!m->tabs[f])
            goto oom;
        for (int i = 0; i < m->nshards; i++) {
            m->shards[i].cells[f] = calloc((size_t)METRICS_MAX_SERIES * (size_t)ncells(&fams[f]), sizeof(uint64_t));
            if (!m->shards[i].cells[f])
                goto oom;
        }
    }
    M = m;
    return ERR_OK;
oom:
    log_error("metrics: out of memory setting up %d shards; metrics are off", nworkers + 1);
    free_state(m);
    return ERR_NOMEM;
}

/* ---- label sets ------------------------------------------------------- */

/* A word-at-a-time multiply-xor hash of the key (a byte-wise FNV was most
 * of the recording cost); the tail word is zero-padded. */
static uint32_t key_hash(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    uint64_t w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    if (n > 0) {
        w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    h *= 0x94D049BB133111EBull;
    h ^= h >> 29;
    return (uint32_t)h;
}

/* Joins the values into key (each followed by a NUL), cutting values so the
 * whole fits KEYMAX. Returns the key length. */
static size_t make_key(char *key, const sv *vals, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t room = KEYMAX - len - (size_t)(n - i); /* keep a NUL for each value left */
        size_t vl = MIN(vals[i].len, room);
        if (vl)
            memcpy(key + len, vals[i].p, vl);
        len += vl;
        key[len++] = '\0';
    }
    return len;
}

static int tab_find(series_tab *t, const char *key, size_t len, uint32_t h)
{
    for (uint32_t i = 0; i < HSLOTS; i++) {
        uint32_t s = (h + i) & (HSLOTS - 1);
        int e = __atomic_load_n(&t->slot[s], __ATOMIC_ACQUIRE);
        if (e == 0)
            return -1;
        e--;
        if (t->hash[e] == h && t->klen[e] == len && memcmp(t->key[e], key, len) == 0)
            return e;
    }
    return -1;
}

/* Looks the key up, inserting it (under the mutex) while fewer than limit
 * entries are used. Returns the index or -1. */
static int tab_get(mstate *m, series_tab *t, const char *key, size_t len, int limit)
{
    uint32_t h = key_hash(key, len);
    int e = tab_find(t, key, len, h);
    if (e >= 0 || __atomic_load_n(&t->count, __ATOMIC_ACQUIRE) >= limit)
        return e;
    pthread_mutex_lock(&m->insert_lock);
    e = tab_find(t, key, len, h);
    int n = t->count;
    if (e < 0 && n < limit) {
        memcpy(t->key[n], key, len);
        t->klen[n] = (uint16_t)len;
        t->hash[n] = h;
        for (uint32_t i = 0; i < HSLOTS; i++) {
            uint32_t s = (h + i) & (HSLOTS - 1);
            if (t->slot[s] == 0) {
                __atomic_store_n(&t->count, n + 1, __ATOMIC_RELEASE);
                __atomic_store_n(&t->slot[s], n + 1, __ATOMIC_RELEASE);
                e = n;
                break;
            }
        }
    }
    pthread_mutex_unlock(&m->insert_lock);
    return e;
}

/* The series index of a label set of family f, folding when the table is
 * full (see the file comment); -1 only if even the fallback has no room. */
static int series_of(mstate *m, int f, const sv *vals)
{
    const fam_def *d = &fams[f];
    series_tab *t = m->tabs[f];
    char key[KEYMAX];
    sv v[MAXLABELS] = { { NULL, 0 } };
    size_t len = make_key(key, vals, d->nlabels);
    int e = tab_get(m, t, key, len, METRICS_FOLD_AT);
    if (e >= 0)
        return e;
    for (int i = 0; i < d->nlabels; i++)
        v[i] = (d->fold & (1u << i)) ? SV("other") : vals[i];
    len = make_key(key, v, d->nlabels);
    e = tab_get(m, t, key, len, METRICS_MAX_SERIES - 1);
    if (e >= 0)
        return e;
    for (int i = 0; i < d->nlabels; i++)
        v[i] = SV("other");
    len = make_key(key, v, d->nlabels);
    return tab_get(m, t, key, len, METRICS_MAX_SERIES);
}

/* ---- recording --------------------------------------------------------- */

static inline void cell_add(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static inline double bits_to_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline void cell_add_double(uint64_t *c, double v)
{
    double d = bits_to_double(__atomic_load_n(c, __ATOMIC_RELAXED)) + v;
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    __atomic_store_n(c, u, __ATOMIC_RELAXED);
}

/* The bucket of value v: the first bound >= v (Prometheus "le"), or +Inf. */
static int bucket_of(const fam_def *d, uint64_t v)
{
    int i = 0;
    while (i < d->nbounds && v > d->bounds[i])
        i++;
    return i;
}

/* Adds v to series e of histogram family f. */
static void hist_cell(shard *s, int f, int e, uint64_t v)
{
    if (NEVER(e < 0))
        return;
    const fam_def *d = &fams[f];
    uint64_t *c = s->cells[f] + (size_t)e * (size_t)ncells(d);
    cell_add(&c[bucket_of(d, v)], 1);
    cell_add(&c[d->nbounds + 1], v);
}

static void hist_add(mstate *m, shard *s, int f, const sv *vals, uint64_t v)
{
    hist_cell(s, f, series_of(m, f, vals), v);
}

static void count_add(mstate *m, shard *s, int f, const sv *vals, uint64_t n)
{
    int e = series_of(m, f, vals);
    if (NEVER(e < 0))
        return;
    cell_add(&s->cells[f][e], n);
}

static sv field(const char *s, size_t cap) { return sv_make(s, strnlen(s, cap)); }
#define FIELD(x) field((x), sizeof(x))

static shard *shard_for(mstate *m, int worker, bool *shared)
{
    *shared = worker < 0 || worker >= m->nshards - 1;
    if (*shared) {
        pthread_mutex_lock(&m->shared_lock);
        return &m->shards[m->nshards - 1];
    }
    return &m->shards[worker];
}

/* The first memo slot of a guardrail span's key. */
static size_t guard_slot(uint64_t key) { return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 59) % GMEMO; }

/* The series of a guardrail span's labels. */
static int guard_series(mstate *m, shard *s, const span_rec *sp)
{
    gmemo *gm = NULL, *free_slot = NULL;
    size_t h = guard_slot(sp->guard_key);
    for (size_t j = 0; sp->guard_key && j < GPROBE; j++) {
        gmemo *x = &s->guard[(h + j) % GMEMO];
        if (x->key == sp->guard_key)
            return x->series;
        if (!x->key && !free_slot)
            free_slot = x;
    }
    int series = series_of(m, F_GCHECKS, (sv[]){ FIELD(sp->guard_policy), FIELD(sp->guard_detector), FIELD(sp->guard_stage),
                                                FIELD(sp->guard_verdict), FIELD(sp->guard_mode) });
    if (sp->guard_key && series >= 0) { /* a miss takes a free slot or its own */
        gm = free_slot ? free_slot : &s->guard[h];
        gm->key = sp->guard_key;
        gm->series = series;
    }
    return series;
}

void metrics_observe(int worker, const trace_rec *t)
{
    mstate *m = M;
    if (!m || !t)
        return;
    bool shared;
    shard *s = shard_for(m, worker, &shared);
    sv op = FIELD(t->operation), prov = FIELD(t->provider), model = FIELD(t->request_model);
    char st[8];
    if (t->status >= 100 && t->status <= 999) { /* three digits, without printf's cost */
        st[0] = (char)('0' + t->status / 100);
        st[1] = (char)('0' + t->status / 10 % 10);
        st[2] = (char)('0' + t->status % 10);
        st[3] = '\0';
    } else if (t->status == 0) {
        memcpy(st, "0", 2);
    } else {
        memcpy(st, "other", 6);
    }
    sv err = FIELD(t->error_type);
    if (err.len == 0 && t->status >= 400)
        err = sv_from(st);

    char key[KEYMAX];
    size_t klen = make_key(key, (sv[]){ op, prov, model, err, sv_from(st) }, 5);
    memo *mo = &s->last;
    if (!mo->valid || mo->len != klen || memcmp(mo->key, key, klen) != 0) {
        /* looked up when first needed: a series exists only once it counted something */
        mo->tok_in = mo->tok_out = mo->cost = MEMO_UNSET;
        mo->dur = series_of(m, F_DURATION, (sv[]){ op, prov, model, err });
        mo->req = series_of(m, F_REQUESTS, (sv[]){ model, prov, sv_from(st) });
        mo->over = series_of(m, F_OVERHEAD, NULL);
        memcpy(mo->key, key, klen);
        mo->len = klen;
        /* a key cut to KEYMAX could stand for two label sets: never reuse it */
        mo->valid = klen < KEYMAX - 8;
    }
    if (t->input_tokens >= 0) {
        if (mo->tok_in == MEMO_UNSET)
            mo->tok_in = series_of(m, F_TOKENS, (sv[]){ op, prov, model, SV("input") });
        hist_cell(s, F_TOKENS, mo->tok_in, (uint64_t)t->input_tokens);
    }
    if (t->output_tokens >= 0) {
        if (mo->tok_out == MEMO_UNSET)
            mo->tok_out = series_of(m, F_TOKENS, (sv[]){ op, prov, model, SV("output") });
        hist_cell(s, F_TOKENS, mo->tok_out, (uint64_t)t->output_tokens);
    }
    uint64_t dur = t->end_ns > t->start_ns ? t->end_ns - t->start_ns : 0;
    hist_cell(s, F_DURATION, mo->dur, dur);
    if (t->stream && t->ttft_ns > 0)
        hist_add(m, s, F_TTFC, (sv[]){ op, prov, model }, t->ttft_ns);
    hist_cell(s, F_OVERHEAD, mo->over, t->overhead_ns);
    if (ALWAYS(mo->req >= 0))
        cell_add(&s->cells[F_REQUESTS][mo->req], 1);
    if (t->cost_known && isfinite(t->cost_usd) && t->cost_usd > 0) {
        if (mo->cost == MEMO_UNSET)
            mo->cost = series_of(m, F_COST, (sv[]){ model, prov });
        if (ALWAYS(mo->cost >= 0))
            cell_add_double(&s->cells[F_COST][mo->cost], t->cost_usd);
    }

    int nattempts = 0;
    int nspans = t->nspans < 0 ? 0 : MIN(t->nspans, TRACE_MAX_SPANS);
    for (int i = 0; i < nspans; i++) {
        const span_rec *sp = &t->spans[i];
        if (sp->kind == SPAN_GUARDRAIL) {
            int series = guard_series(m, s, sp);
            if (ALWAYS(series >= 0))
                cell_add(&s->cells[F_GCHECKS][series], 1);
            for (int k = 0; k < 8 && sp->guard_types[k]; k++)
                count_add(m, s, F_GFINDINGS,
                          (sv[]){ FIELD(sp->guard_policy), FIELD(sp->guard_detector),
                                  sv_from(guard_type_name((guard_type)(sp->guard_types[k] - 1))) },
                          sp->guard_counts[k]);
            continue;
        }
        if (sp->kind != SPAN_ATTEMPT)
            continue;
        sv sprov = FIELD(sp->provider);
        if (++nattempts > 1)
            count_add(m, s, F_RETRIES, &sprov, 1);
        if (sp->error_type[0])
            count_add(m, s, F_UPERR, (sv[]){ sprov, FIELD(sp->error_type) }, 1);
    }
    if (nattempts == 0 && t->attempts > 1)
        count_add(m, s, F_RETRIES, &prov, (uint64_t)(t->attempts - 1));
    if (shared)
        pthread_mutex_unlock(&m->shared_lock);
}

void metrics_inflight(int worker, int delta)
{
    mstate *m = M;
    if (!m)
        return;
    bool shared;
    shard *s = shard_for(m, worker, &shared);
    __atomic_store_n(&s->inflight, __atomic_load_n(&s->inflight, __ATOMIC_RELAXED) + delta, __ATOMIC_RELAXED);
    if (shared)
        pthread_mutex_unlock(&m->shared_lock);
}

/* ---- registered gauges -------------------------------------------------- */

static bool valid_name(const char *s)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool name_taken(const mstate *m, const char *name)
{
    for (int f = 0; f < NFAM; f++) {
        size_t n = strlen(fams[f].name);
        /* a histogram's or a counter's sample names all start with it */
        if (strncmp(name, fams[f].name, n) == 0)
            return true;
    }
    if (strcmp(name, INFLIGHT_NAME) == 0)
        return true;
    for (int i = 0; i < m->ngauges; i++)
        if (strcmp(m->gauges[i].name, name) == 0)
            return true;
    return false;
}

void metrics_register_gauge(const char *name, const char *help, double (*read)(void *), void *ud, bool counter)
{
    mstate *m = M;
    if (!m)
        return;
    if (!valid_name(name) || strlen(name) >= sizeof m->gauges[0].name || !read) {
        log_warn("metrics: refusing to register \"%s\": an invalid name or no reader", name ? name : "(null)");
        return;
    }
    pthread_mutex_lock(&m->gauge_lock);
    if (name_taken(m, name))
        log_warn("metrics: %s is already registered", name);
    else if (m->ngauges >= METRICS_MAX_GAUGES)
        log_warn("metrics: no room to register %s", name);
    else {
        gauge_reg *g = &m->gauges[m->ngauges++];
        snprintf(g->name, sizeof g->name, "%s", name);
        snprintf(g->help, sizeof g->help, "%s", help ? help : "");
        g->read = read;
        g->ud = ud;
        g->counter = counter;
    }
    pthread_mutex_unlock(&m->gauge_lock);
}

/* ---- reading ------------------------------------------------------------ */

/* Sums cell i of series e of family f over all shards into out[0..n). */
static void sum_cells(const mstate *m, int f, int e, uint64_t *out, int n)
{
    size_t base = (size_t)e * (size_t)ncells(&fams[f]);
    for (int j = 0; j < n; j++)
        out[j] = 0;
    for (int i = 0; i < m->nshards; i++)
        for (int j = 0; j < n; j++)
            out[j] += __atomic_load_n(&m->shards[i].cells[f][base + (size_t)j], __ATOMIC_RELAXED);
}

static double sum_double(const mstate *m, int f, int e)
{
    double d = 0;
    for (int i = 0; i < m->nshards; i++)
        d += bits_to_double(__atomic_load_n(&m->shards[i].cells[f][e], __ATOMIC_RELAXED));
    return d;
}

static int64_t inflight_now(const mstate *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->nshards; i++)
        n += __atomic_load_n(&m->shards[i].inflight, __ATOMIC_RELAXED);
    return n;
}

/* Splits entry e's key into its values. */
static void key_values(const series_tab *t, int e, sv *vals, int n)
{
    const char *p = t->key[e];
    for (int i = 0; i < n; i++) {
        size_t l = strlen(p);
        vals[i] = sv_make(p, l);
        p += l + 1;
    }
}

/* Shortest of %.15g..%.17g that reads back as d; NaN and infinities as
 * Prometheus spells them. */
static void fmt_num(char *out, size_t cap, double d)
{
    if (isnan(d)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(out, cap, d > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

/* Appends s with every invalid UTF-8 byte replaced by U+FFFD; when esc, the
 * Prometheus escapes too: label values (quote too) or HELP (quote false). */
static err_code put_text(buf *out, sv s, bool esc, bool quote)
{
    const uint8_t *p = (const uint8_t *)s.p;
    size_t i = 0, run = 0; /* run: start of bytes not yet copied */
    err_code rc = ERR_OK;
    while (i < s.len && rc == ERR_OK) {
        uint8_t c = p[i];
        size_t n = 0;
        if (c < 0x80)
            n = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            n = 2;
        else if (c >= 0xE0 && c <= 0xEF)
            n = 3;
        else if (c >= 0xF0 && c <= 0xF4)
            n = 4;
        bool ok = n > 0 && i + n <= s.len;
        for (size_t k = 1; ok && k < n; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && n == 3) {
            if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0))
                ok = false; /* overlong, surrogate */
        } else if (ok && n == 4) {
            if ((c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90))
                ok = false; /* overlong, above U+10FFFF */
        }
        const char *rep = NULL;
        if (!ok)
            rep = "\xEF\xBF\xBD";
        else if (esc && c == '\\')
            rep = "\\\\";
        else if (esc && c == '\n')
            rep = "\\n";
        else if (esc && quote && c == '"')
            rep = "\\\"";
        if (rep) {
            rc = buf_append(out, s.p + run, i - run);
            if (rc == ERR_OK)
                rc = buf_append_str(out, rep);
            i++; /* an escaped character, or a bad byte replaced on its own */
            run = i;
        } else {
            i += n;
        }
    }
    if (rc == ERR_OK)
        rc = buf_append(out, s.p + run, s.len - run);
    return rc;
}

/* ---- Prometheus text ---------------------------------------------------- */

static err_code put_header(buf *out, const char *name, const char *help, const char *type)
{
    err_code rc = buf_printf(out, "# HELP %s ", name);
    if (rc == ERR_OK)
        rc = put_text(out, sv_from(help), true, false);
    if (rc == ERR_OK)
        rc = buf_printf(out, "\n# TYPE %s %s\n", name, type);
    return rc;
}

/* Appends "{a="x",b="y",le="1"}" (le when non-NULL); nothing when empty. */
static err_code put_labels(buf *out, const fam_def *d, const sv *vals, const char *le)
{
    err_code rc = ERR_OK;
    bool any = false;
    for (int i = 0; i < d->nlabels && rc == ERR_OK; i++) {
        if ((d->omit_empty & (1u << i)) && vals[i].len == 0)
            continue;
        rc = buf_printf(out, "%s%s=\"", any ? "," : "{", d->labels[i]);
        if (rc == ERR_OK)
            rc = put_text(out, vals[i], true, true);
        if (rc == ERR_OK)
            rc = buf_append(out, "\"", 1);
        any = true;
    }
    if (rc == ERR_OK && le) {
        rc = buf_printf(out, "%sle=\"%s\"", any ? "," : "{", le);
        any = true;
    }
    if (rc == ERR_OK && any)
        rc = buf_append(out, "}", 1);
    return rc;
}

static err_code put_sample(buf *out, const char *name, const char *suffix, const fam_def *d,
                           const sv *vals, const char *le, double v)
{
    char num[40];
    fmt_num(num, sizeof num, v);
    err_code rc = buf_printf(out, "%s%s", name, suffix);
    if (rc == ERR_OK)
        rc = put_labels(out, d, vals, le);
    if (rc == ERR_OK)
        rc = buf_printf(out, " %s\n", num);
    return rc;
}

static err_code prom_family(buf *out, const mstate *m, int f)
{
    const fam_def *d = &fams[f];
    const series_tab *t = m->tabs[f];
    err_code rc = put_header(out, d->name, d->help, d->kind == MK_HIST ? "histogram" : "counter");
    int n = __atomic_load_n(&t->count, __ATOMIC_ACQUIRE);
    uint64_t cells[32];
    sv vals[MAXLABELS];
    for (int e = 0; e < n && rc == ERR_OK; e++) {
        key_values(t, e, vals, d->nlabels);
        if (d->kind == MK_COUNTER) {
            double v;
            if (d->dbl) {
                v = sum_double(m, f, e);
            } else {
                sum_cells(m, f, e, cells, 1);
                v = (double)cells[0];
            }
            rc = put_sample(out, d->name, "", d, vals, NULL, v);
            continue;
        }
        sum_cells(m, f, e, cells, ncells(d));
        uint64_t cum = 0;
        for (int b = 0; b <= d->nbounds && rc == ERR_OK; b++) {
            char le[40];
            if (b < d->nbounds)
                fmt_num(le, sizeof le, (double)d->bounds[b] / d->div);
            else
                memcpy(le, "+Inf", 5);
            cum += cells[b];
            rc = put_sample(out, d->name, "_bucket", d, vals, le, (double)cum);
        }
        if (rc == ERR_OK)
            rc = put_sample(out, d->name, "_sum", d, vals, NULL, (double)cells[d->nbounds + 1] / d->div);
        if (rc == ERR_OK)
            rc = put_sample(out, d->name, "_count", d, vals, NULL, (double)cum);
    }
    return rc;
}

err_code metrics_render_prometheus(buf *out)
{
    mstate *m = M;
    if (!m)
        return ERR_OK;
    err_code rc = ERR_OK;
    for (int f = 0; f < NFAM && rc == ERR_OK; f++) {
        rc = prom_family(out, m, f);
        if (rc == ERR_OK && f == F_RETRIES) {
            rc = put_header(out, INFLIGHT_NAME, INFLIGHT_HELP, "gauge");
            if (rc == ERR_OK)
                rc = buf_printf(out, "%s %lld\n", INFLIGHT_NAME, (long long)inflight_now(m));
        }
    }
    pthread_mutex_lock(&m->gauge_lock);
    for (int i = 0; i < m->ngauges && rc == ERR_OK; i++) {
        const gauge_reg *g = &m->gauges[i];
        char num[40];
        fmt_num(num, sizeof num, g->read(g->ud));
        rc = put_header(out, g->name, g->help, g->counter ? "counter" : "gauge");
        if (rc == ERR_OK)
            rc = buf_printf(out, "%s %s\n", g->name, num);
    }
    pthread_mutex_unlock(&m->gauge_lock);
    return rc;
}

/* ---- OTLP JSON ------------------------------------------------------------ */

/* A JSON string of s with invalid UTF-8 replaced (jansson refuses it). */
static json_t *jstr(sv s)
{
    buf b;
    buf_init(&b, s.len * 3 + 16);
    json_t *j = NULL;
    if (put_text(&b, s, false, false) == ERR_OK)
        j = json_stringn(b.p ? b.p : "", b.len);
    buf_free(&b);
    return j;
}

static json_t *jattr(const char *key, json_t *value)
{
    return json_pack("{s:s, s:{s:o}}", "key", key, "value", json_is_integer(value) ? "intValue" : "stringValue", value);
}

static json_t *ju64(uint64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    return json_string(s);
}

static json_t *jattrs(const fam_def *d, const sv *vals)
{
    json_t *a = json_array();
    for (int i = 0; a && i < d->nlabels; i++) {
        if ((d->omit_empty & (1u << i)) && vals[i].len == 0)
            continue;
        json_t *v = NULL;
        if (d->int_label & (1u << i)) {
            char tmp[16];
            char *end;
            size_t l = MIN(vals[i].len, sizeof tmp - 1);
            memcpy(tmp, vals[i].p, l);
            tmp[l] = '\0';
            long n = strtol(tmp, &end, 10);
            if (l > 0 && *end == '\0')
                v = json_integer(n);
        }
        if (!v)
            v = jstr(vals[i]);
        if (json_array_append_new(a, v ? jattr(d->otel_labels[i], v) : NULL) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *jpoint(const mstate *m, json_t *attrs, uint64_t now)
{
    return json_pack("{s:o, s:o, s:o}", "attributes", attrs ? attrs : json_array(),
                     "startTimeUnixNano", ju64(m->start_ns), "timeUnixNano", ju64(now));
}

static json_t *otlp_family(const mstate *m, int f, uint64_t now)
{
    const fam_def *d = &fams[f];
    const series_tab *t = m->tabs[f];
    json_t *points = json_array();
    int n = __atomic_load_n(&t->count, __ATOMIC_ACQUIRE);
    uint64_t cells[32];
    sv vals[MAXLABELS];
    for (int e = 0; points && e < n; e++) {
        key_values(t, e, vals, d->nlabels);
        json_t *p = jpoint(m, jattrs(d, vals), now);
        if (!p)
            goto fail;
        if (d->kind == MK_COUNTER) {
            if (d->dbl) {
                json_object_set_new(p, "asDouble", json_real(sum_double(m, f, e)));
            } else {
                sum_cells(m, f, e, cells, 1);
                json_object_set_new(p, "asInt", ju64(cells[0]));
            }
        } else {
            sum_cells(m, f, e, cells, ncells(d));
            json_t *bc = json_array(), *eb = json_array();
            uint64_t total = 0;
            for (int b = 0; bc && eb && b <= d->nbounds; b++) {
                total += cells[b];
                json_array_append_new(bc, ju64(cells[b]));
                if (b < d->nbounds)
                    json_array_append_new(eb, json_real((double)d->bounds[b] / d->div));
            }
            json_object_set_new(p, "count", ju64(total));
            json_object_set_new(p, "sum", json_real((double)cells[d->nbounds + 1] / d->div));
            json_object_set_new(p, "bucketCounts", bc ? bc : json_array());
            json_object_set_new(p, "explicitBounds", eb ? eb : json_array());
        }
        if (json_array_append_new(points, p) != 0)
            goto fail;
    }
    if (!points)
        return NULL;
    if (d->kind == MK_COUNTER)
        return json_pack("{s:s, s:s, s:s, s:{s:o, s:i, s:b}}", "name", d->otel_name, "description", d->help,
                         "unit", d->otel_unit, "sum", "dataPoints", points, "aggregationTemporality", 2,
                         "isMonotonic", 1);
    return json_pack("{s:s, s:s, s:s, s:{s:o, s:i}}", "name", d->otel_name, "description", d->help,
                     "unit", d->otel_unit, "histogram", "dataPoints", points, "aggregationTemporality", 2);
fail:
    json_decref(points);
    return NULL;
}

/* One data point of a single value: asInt or asDouble. */
static json_t *otlp_single(const mstate *m, const char *name, const char *help, const char *unit,
                           json_t *value, bool is_int, bool monotonic, bool gauge, uint64_t now)
{
    json_t *p = jpoint(m, NULL, now);
    if (!p || !value) {
        json_decref(p);
        json_decref(value);
        return NULL;
    }
    json_object_set_new(p, is_int ? "asInt" : "asDouble", value);
    if (gauge)
        return json_pack("{s:s, s:s, s:s, s:{s:[o]}}", "name", name, "description", help, "unit", unit,
                         "gauge", "dataPoints", p);
    return json_pack("{s:s, s:s, s:s, s:{s:[o], s:i, s:b}}", "name", name, "description", help, "unit", unit,
                     "sum", "dataPoints", p, "aggregationTemporality", 2, "isMonotonic", monotonic);
}

err_code metrics_render_otlp_json(buf *out, const char *service_version)
{
    mstate *m = M;
    uint64_t now = trace_now_ns();
    json_t *metrics = json_array();
    err_code rc = ERR_NOMEM;
    if (!metrics)
        return ERR_NOMEM;
    for (int f = 0; m && f < NFAM; f++) {
        if (json_array_append_new(metrics, otlp_family(m, f, now)) != 0)
            goto out;
        if (f == F_RETRIES) {
            char n[24];
            snprintf(n, sizeof n, "%lld", (long long)inflight_now(m));
            if (json_array_append_new(metrics, otlp_single(m, "genaiops.inflight_requests", INFLIGHT_HELP,
                                                           "{request}", json_string(n), true, false, false, now)) != 0)
                goto out;
        }
    }
    if (m) {
        pthread_mutex_lock(&m->gauge_lock);
        for (int i = 0; i < m->ngauges; i++) {
            const gauge_reg *g = &m->gauges[i];
            double v = g->read(g->ud);
            if (!isfinite(v))
                continue; /* JSON has no NaN */
            json_t *j = otlp_single(m, g->name, g->help, "1", json_real(v), false, true, !g->counter, now);
            if (json_array_append_new(metrics, j) != 0) {
                pthread_mutex_unlock(&m->gauge_lock);
                goto out;
            }
        }
        pthread_mutex_unlock(&m->gauge_lock);
    }
    const char *ver = service_version ? service_version : GENAIOPS_VERSION;
    json_t *body = json_pack(
        "{s:[{s:{s:[{s:s, s:{s:s}}, {s:s, s:{s:o}}]}, s:[{s:{s:s, s:o}, s:o}]}]}",
        "resourceMetrics", "resource", "attributes", "key", "service.name", "value", "stringValue", "genaiops",
        "key", "service.version", "value", "stringValue", jstr(sv_from(ver)),
        "scopeMetrics", "scope", "name", "genaiops", "version", jstr(sv_from(ver)), "metrics", metrics);
    metrics = NULL; /* the pack consumed it, even on failure */
    if (!body)
        goto out;
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (!text)
        goto out;
    rc = buf_append_str(out, text);
    free(text);
out:
    json_decref(metrics);
    return rc;
}
