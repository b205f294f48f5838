/*
 * stats.c - intervals, significance tests, pass@k and the run summary.
 *
 * Pure functions first (Wilson, bootstrap, McNemar, pass@k, quantiles),
 * then the accumulator. Every formula, with its source, is written out in
 * docs/internals/eval-stats.md.
 *
 * Randomness: the bootstraps draw from splitmix64 (Steele, Lea & Flood
 * 2014), a 64-bit counter passed through a mixing function, so a seed
 * fixes every resample. Indexes in [0,n) come from the high half of a
 * 64x64-bit product (Lemire 2019), whose bias is below 2^-40 for the n
 * seen here.
 *
 * The accumulator keeps, per run:
 *   - totals and a one-bit-per-test "seen" set;
 *   - per metric and per column, an `acc`: a compensated sum and sum of
 *     squares, plus the values themselves up to ACC_EXACT of them. At
 *     summary time a kept set is sorted (so the arrival order, which
 *     concurrency makes random, cannot change the result) and
 *     bootstrapped; past the cap the array is freed and the interval is
 *     the normal one the bootstrap converges to (mean +- z * sd / sqrt(n),
 *     clamped to the observed range);
 *   - per column, latencies: exact up to LAT_EXACT values, then a
 *     log-bucketed histogram (1% wide buckets), so p50/p95 are exact on
 *     runs up to that size and within 0.5% beyond, in bounded memory;
 *   - with repeats, a (samples, passes) pair of uint16 per test x column
 *     for pass@k and pass^k.
 * Nothing else grows with the number of records.
 */
#include "eval/stats.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- random numbers ------------------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t rng_below(rng *r, size_t n)
{
    return (size_t)(((unsigned __int128)rng_next(r) * (unsigned __int128)n) >> 64);
}

/* FNV-1a over a string, continuing from h. */
static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_START 0xcbf29ce484222325ULL

/* A seed for one named quantity, so each interval has its own stream and
 * adding a metric does not move the others. */
static uint64_t sub_seed(uint64_t seed, const char *name, uint64_t idx)
{
    rng r = { seed ^ fnv(FNV_START, name) ^ (idx * 0xd1b54a32d192ed03ULL) };
    return rng_next(&r);
}

/* ---- pure functions ----------------------------------------------------- */

void ev_wilson(size_t pass, size_t n, double z, double *lo, double *hi)
{
    if (n == 0) {
        *lo = 0.0;
        *hi = 1.0;
        return;
    }
    if (pass > n)
        pass = n;
    double nn = (double)n, p = (double)pass / nn, z2 = z * z;
    double denom = 1.0 + z2 / nn;
    double center = (p + z2 / (2.0 * nn)) / denom;
    double half = z / denom * sqrt(p * (1.0 - p) / nn + z2 / (4.0 * nn * nn));
    double l = center - half, h = center + half;
    /* At the edges the interval touches the bound exactly. */
    if (pass == 0 || l < 0.0)
        l = 0.0;
    if (pass == n || h > 1.0)
        h = 1.0;
    *lo = l;
    *hi = h;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    bool nx = isnan(x), ny = isnan(y);
    if (nx || ny)
        return nx - ny;
    return (x > y) - (x < y);
}

double ev_quantile(double *x, size_t n, double q)
{
    if (n == 0)
        return NAN;
    if (!(q >= 0.0))
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    qsort(x, n, sizeof *x, cmp_double);
    double h = q * (double)(n - 1);
    size_t i = (size_t)floor(h);
    if (i + 1 >= n || h == (double)i)
        return x[i < n ? i : n - 1];
    return x[i] + (h - (double)i) * (x[i + 1] - x[i]);
}

double ev_norm_quantile(double p)
{
    if (!(p > 0.0 && p < 1.0))
        return p == 0.0 ? -INFINITY : p == 1.0 ? INFINITY : NAN;
    /* Bisection on the CDF, written with erfc so the tails keep their
     * precision; 200 halvings of [-40,40] are far past double precision. */
    double lo = -40.0, hi = 40.0;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (mid == lo || mid == hi)
            break;
        if (0.5 * erfc(-mid / M_SQRT2) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* Resampled means of x into out[0..iters). */
static void resample_means(const double *x, size_t n, size_t iters, uint64_t seed, double *out)
{
    rng r = { seed };
    double inv = 1.0 / (double)n;
    for (size_t it = 0; it < iters; it++) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++)
            sum += x[rng_below(&r, n)];
        out[it] = sum * inv;
    }
}

static bool boot_args_ok(size_t n, size_t iters, double level)
{
    return n > 0 && iters > 0 && iters <= 1000000 && level > 0.0 && level < 1.0;
}

/* A compensated (Neumaier) sum, so the mean hardly depends on the order. */
static double kahan_mean(const double *x, size_t n)
{
    double s = 0.0, c = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = s + x[i];
        c += fabs(s) >= fabs(x[i]) ? (s - t) + x[i] : (x[i] - t) + s;
        s = t;
    }
    return (s + c) / (double)n;
}

bool ev_bootstrap_mean(const double *x, size_t n, size_t iters, uint64_t seed, double level,
                       double *mean, double *lo, double *hi)
{
    if (!boot_args_ok(n, iters, level))
        return false;
    double *m = malloc(iters * sizeof *m);
    if (!m)
        return false;
    resample_means(x, n, iters, seed, m);
    *mean = kahan_mean(x, n);
    *lo = ev_quantile(m, iters, (1.0 - level) / 2.0);
    *hi = ev_quantile(m, iters, (1.0 + level) / 2.0);
    free(m);
    return true;
}

bool ev_paired_bootstrap(const double *base, const double *cur, size_t n, size_t iters, uint64_t seed,
                         double level, double *diff, double *lo, double *hi, double *p)
{
    if (!boot_args_ok(n, iters, level))
        return false;
    double *d = malloc(n * sizeof *d);
    double *m = malloc(iters * sizeof *m);
    if (!d || !m) {
        free(d);
        free(m);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = cur[i] - base[i];
    double obs = kahan_mean(d, n);
    resample_means(d, n, iters, seed, m);
    size_t other = 0;
    for (size_t i = 0; i < iters; i++)
        if ((obs > 0.0 && m[i] <= 0.0) || (obs < 0.0 && m[i] >= 0.0))
            other++;
    double pv = obs == 0.0 ? 1.0 : 2.0 * (double)other / (double)iters;
    *diff = obs;
    *lo = ev_quantile(m, iters, (1.0 - level) / 2.0);
    *hi = ev_quantile(m, iters, (1.0 + level) / 2.0);
    *p = pv > 1.0 ? 1.0 : pv;
    free(d);
    free(m);
    return true;
}

double ev_mcnemar_p(size_t b, size_t c)
{
    size_t m = b + c;
    if (m == 0)
        return 1.0;
    if (m < 25) {
        /* Exact: under H0 the discordant pairs split as Binomial(m, 1/2);
         * double the smaller tail. C(m, i) is exact in a double for m < 25. */
        size_t k = b < c ? b : c;
        double coef = 1.0, tail = 0.0;
        for (size_t i = 0; i <= k; i++) {
            tail += coef;
            coef = coef * (double)(m - i) / (double)(i + 1);
        }
        double p = 2.0 * tail / ldexp(1.0, (int)m);
        return p > 1.0 ? 1.0 : p;
    }
    double d = b > c ? (double)(b - c) : (double)(c - b);
    d = d - 1.0 < 0.0 ? 0.0 : d - 1.0;
    double chi2 = d * d / (double)m;
    /* Survival function of chi-square with 1 df: P(X > x) = erfc(sqrt(x/2)). */
    return erfc(sqrt(chi2 / 2.0));
}

double ev_pass_at_k(size_t n, size_t c, size_t k)
{
    if (n == 0 || k == 0 || k > n)
        return NAN;
    if (c > n)
        c = n;
    if (n - c < k)
        return 1.0;
    /* C(n-c,k)/C(n,k) = prod_{i=n-c+1..n} (1 - k/i), Chen et al.'s stable form. */
    double prod = 1.0;
    for (size_t i = n - c + 1; i <= n; i++)
        prod *= 1.0 - (double)k / (double)i;
    return 1.0 - prod;
}

double ev_pass_hat_k(size_t n, size_t c, size_t k)
{
    if (n == 0 || k == 0 || k > n)
        return NAN;
    if (c > n)
        c = n;
    if (c < k)
        return 0.0;
    /* C(c,k)/C(n,k) = prod_{i=0..k-1} (c-i)/(n-i). */
    double prod = 1.0;
    for (size_t i = 0; i < k; i++)
        prod *= (double)(c - i) / (double)(n - i);
    return prod;
}

/* ---- accumulators ------------------------------------------------------- */

#define ACC_EXACT 8192
#define LAT_EXACT 8192
#define LAT_MIN 0.001      /* ms; below this everything is one bucket */
#define LAT_GROWTH 0.01    /* bucket width: 1% */
#define LAT_BUCKETS 2600   /* 0.001 ms .. ~1.7e8 ms */
#define STATS_MAX_TESTS ((size_t)1 << 22)
#define STATS_MAX_CELLS ((size_t)1 << 22) /* 16 MiB of (n, c) pairs */
#define STATS_MAX_METRICS 256
#define METRIC_SLOTS 512   /* open addressing, at most half full */

/* A Neumaier compensated sum. */
typedef struct csum {
    double s, c;
} csum;

static void csum_add(csum *k, double v)
{
    double t = k->s + v;
    k->c += fabs(k->s) >= fabs(v) ? (k->s - t) + v : (v - t) + k->s;
    k->s = t;
}

static double csum_get(const csum *k) { return k->s + k->c; }

/* Values whose mean gets an interval. */
typedef struct acc {
    size_t n;
    csum sum, sumsq;
    double min, max;
    double *x;         /* the values while n <= ACC_EXACT and memory allowed */
    size_t cap;
    bool spilled;      /* x was given up: normal interval from the sums */
} acc;

static void acc_add(acc *a, double v)
{
    if (!isfinite(v))
        return;
    if (a->n == 0 || v < a->min)
        a->min = v;
    if (a->n == 0 || v > a->max)
        a->max = v;
    a->n++;
    csum_add(&a->sum, v);
    csum_add(&a->sumsq, v * v);
    if (a->spilled)
        return;
    if (a->n > ACC_EXACT) {
        free(a->x);
        a->x = NULL;
        a->cap = 0;
        a->spilled = true;
        return;
    }
    if (a->n > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        if (nc > ACC_EXACT)
            nc = ACC_EXACT;
        double *nx = realloc(a->x, nc * sizeof *nx);
        if (!nx) { /* keep going on the sums alone */
            free(a->x);
            a->x = NULL;
            a->cap = 0;
            a->spilled = true;
            return;
        }
        a->x = nx;
        a->cap = nc;
    }
    a->x[a->n - 1] = v;
}

static void acc_free(acc *a)
{
    free(a->x);
    a->x = NULL;
}

/* Mean and 95% interval; false when there are no values (or no memory). */
/* The ideal bootstrap (every resample, not a Monte Carlo draw of them) of
 * a sample of n values that are all lo_v or hi_v, k of them hi_v: a
 * resample's mean is lo_v + (hi_v - lo_v) K / n with K ~ Binomial(n, k/n)
 * exactly, so its quantiles come from the binomial CDF in O(n) and need
 * no resampling. Pass/fail-like scores (0/1) take this path. */
static void ideal_two_valued(size_t n, size_t k, double lo_v, double hi_v, double level, double *lo, double *hi)
{
    double q = (double)k / (double)n, lq = log(q), l1q = log1p(-q);
    double ln_fact_n = lgamma((double)n + 1.0);
    double a = (1.0 - level) / 2.0, b = (1.0 + level) / 2.0, cdf = 0.0;
    size_t ka = n, kb = n;
    bool have_a = false;
    for (size_t j = 0; j <= n; j++) {
        double lp = ln_fact_n - lgamma((double)j + 1.0) - lgamma((double)(n - j) + 1.0) + (double)j * lq +
                    (double)(n - j) * l1q;
        cdf += exp(lp);
        if (!have_a && cdf >= a) {
            ka = j;
            have_a = true;
        }
        if (cdf >= b) {
            kb = j;
            break;
        }
    }
    *lo = lo_v + (hi_v - lo_v) * (double)ka / (double)n;
    *hi = lo_v + (hi_v - lo_v) * (double)kb / (double)n;
}

static bool acc_interval(const acc *a, uint64_t seed, double *mean, double *lo, double *hi)
{
    if (a->n == 0)
        return false;
    if (!a->spilled) {
        /* Constant and two-valued samples have exact answers. */
        size_t nhi = 0;
        bool two = true;
        for (size_t i = 0; i < a->n && two; i++) {
            if (a->x[i] == a->max)
                nhi++;
            else if (a->x[i] != a->min)
                two = false;
        }
        if (a->min == a->max) {
            *mean = *lo = *hi = a->min;
            return true;
        }
        if (two) {
            *mean = a->min + (a->max - a->min) * (double)nhi / (double)a->n;
            ideal_two_valued(a->n, nhi, a->min, a->max, 0.95, lo, hi);
            return true;
        }
        double *tmp = malloc(a->n * sizeof *tmp);
        if (!tmp)
            return false;
        memcpy(tmp, a->x, a->n * sizeof *tmp);
        qsort(tmp, a->n, sizeof *tmp, cmp_double);
        bool ok = ev_bootstrap_mean(tmp, a->n, EV_BOOT_ITERS, seed, 0.95, mean, lo, hi);
        free(tmp);
        return ok;
    }
    double n = (double)a->n, m = csum_get(&a->sum) / n;
    double var = csum_get(&a->sumsq) / n - m * m;
    double se = sqrt(var > 0.0 ? var / n : 0.0);
    *mean = m;
    *lo = fmax(a->min, m - EV_Z95 * se);
    *hi = fmin(a->max, m + EV_Z95 * se);
    return true;
}

/* Latencies for p50/p95/mean. */
typedef struct lat {
    size_t n;
    csum sum;
    double *x;         /* exact values while n <= LAT_EXACT */
    size_t cap;
    uint32_t *hist;    /* LAT_BUCKETS counters once past LAT_EXACT */
    bool lost;         /* out of memory: quantiles unknown */
} lat;

static size_t lat_bucket(double v)
{
    if (v < LAT_MIN)
        return 0;
    double b = 1.0 + floor(log(v / LAT_MIN) / log1p(LAT_GROWTH));
    return b >= LAT_BUCKETS - 1 ? LAT_BUCKETS - 1 : (size_t)b;
}

/* The value a bucket stands for: its geometric middle. */
static double lat_value(size_t b)
{
    if (b == 0)
        return LAT_MIN / 2.0;
    return LAT_MIN * pow(1.0 + LAT_GROWTH, (double)b - 0.5);
}

static void lat_add(lat *l, double v)
{
    if (!isfinite(v) || v < 0.0)
        return;
    l->n++;
    csum_add(&l->sum, v);
    if (l->lost)
        return;
    if (l->hist) {
        l->hist[lat_bucket(v)]++;
        return;
    }
    if (l->n > LAT_EXACT) {
        l->hist = calloc(LAT_BUCKETS, sizeof *l->hist);
        if (!l->hist) {
            l->lost = true;
        } else {
            for (size_t i = 0; i < l->n - 1; i++)
                l->hist[lat_bucket(l->x[i])]++;
            l->hist[lat_bucket(v)]++;
        }
        free(l->x);
        l->x = NULL;
        l->cap = 0;
        return;
    }
    if (l->n > l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        if (nc > LAT_EXACT)
            nc = LAT_EXACT;
        double *nx = realloc(l->x, nc * sizeof *nx);
        if (!nx) {
            free(l->x);
            l->x = NULL;
            l->lost = true;
            return;
        }
        l->x = nx;
        l->cap = nc;
    }
    l->x[l->n - 1] = v;
}

static void lat_free(lat *l)
{
    free(l->x);
    free(l->hist);
}

/* The order statistic of rank r (0-based) from the histogram. */
static double hist_rank(const lat *l, size_t r)
{
    size_t seen = 0;
    for (size_t b = 0; b < LAT_BUCKETS; b++) {
        seen += l->hist[b];
        if (seen > r)
            return lat_value(b);
    }
    return lat_value(LAT_BUCKETS - 1);
}

/* Quantile q (type 7) of the latencies, NAN when unknown. tmp holds n doubles. */
static double lat_quantile(const lat *l, double q, double *tmp)
{
    if (l->n == 0 || l->lost)
        return NAN;
    if (!l->hist) {
        memcpy(tmp, l->x, l->n * sizeof *tmp);
        return ev_quantile(tmp, l->n, q);
    }
    double h = q * (double)(l->n - 1);
    size_t i = (size_t)floor(h);
    double a = hist_rank(l, i);
    if (i + 1 >= l->n)
        return a;
    double b = hist_rank(l, i + 1);
    return a + (h - (double)i) * (b - a);
}

/* A distribution-free 95% interval of quantile q: the order statistics
 * whose ranks are n*q -/+ 1.96*sqrt(n*q*(1-q)) (the normal approximation
 * of the binomial count of values below the quantile; Conover, Practical
 * Nonparametric Statistics, 3rd ed., section 3.2). NAN when unknown or n < 2.
 * tmp holds n doubles. */
static void lat_quantile_ci(const lat *l, double q, double *tmp, double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (l->n < 2 || l->lost)
        return;
    double n = (double)l->n, half = EV_Z95 * sqrt(n * q * (1.0 - q));
    double a = floor(n * q - half), b = ceil(n * q + half);
    size_t ra = a < 0 ? 0 : (size_t)a, rb = b > n - 1 ? l->n - 1 : (size_t)b;
    if (!l->hist) {
        memcpy(tmp, l->x, l->n * sizeof *tmp);
        ev_quantile(tmp, l->n, 0.5); /* sorts tmp */
        *lo = tmp[ra];
        *hi = tmp[rb];
    } else {
        *lo = hist_rank(l, ra);
        *hi = hist_rank(l, rb);
    }
}

/* ---- the accumulator ----------------------------------------------------- */

typedef struct column {
    size_t passed, failed, errors;
    acc score;
    csum cost;
    size_t cost_n;
    acc cost_acc;      /* per record, for the mean's interval */
    lat latency;
    long long tok_in, tok_out;
    size_t tok_in_n, tok_out_n;
} column;

typedef struct metric {
    char *name;
    uint64_t hash;
    acc a;
} metric;

/* Samples and passes of one test in one column (with repeats). */
typedef struct kcell {
    uint16_t n, c;
} kcell;

struct ev_stats {
    size_t nprompts, nproviders, ncols;
    char **prompt_labels, **provider_labels;
    int repeat;
    size_t ntests;               /* as declared (for tests_k) */
    size_t records, passed, failed, errors;
    acc score;
    column *cols;
    metric metrics[STATS_MAX_METRICS];
    size_t nmetrics, metrics_dropped;
    int16_t slots[METRIC_SLOTS]; /* index into metrics, -1 empty */
    uint8_t *seen;               /* one bit per test */
    size_t seen_cap;             /* tests `seen` covers */
    kcell *cells;                /* [test * ncols + col] when repeat > 1 */
    size_t cells_cap;            /* tests `cells` covers */
    size_t max_test;             /* highest test index seen + 1 */
};

static char *label_dup(const char *const *labels, size_t i, const char *what)
{
    const char *l = labels ? labels[i] : NULL;
    if (l) {
        size_t n = strlen(l);
        char *d = malloc(n + 1);
        if (d)
            memcpy(d, l, n + 1);
        return d;
    }
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%s %zu", what, i + 1);
    size_t n = strlen(tmp);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, tmp, n + 1);
    return d;
}

/* The next capacity for index t: doubling from 64, at most max. */
static size_t grow_to(size_t cap, size_t t, size_t max)
{
    size_t nc = cap ? cap : 64;
    while (nc <= t && nc < max)
        nc *= 2;
    return nc < max ? nc : max;
}

/* Makes `seen` cover test index t. False past the cap or out of memory. */
static bool cover_seen(ev_stats *s, size_t t)
{
    if (t < s->seen_cap)
        return true;
    if (t >= STATS_MAX_TESTS)
        return false;
    size_t nc = grow_to(s->seen_cap, t, STATS_MAX_TESTS);
    uint8_t *ns = realloc(s->seen, (nc + 7) / 8);
    if (!ns)
        return false;
    size_t old_bytes = (s->seen_cap + 7) / 8;
    memset(ns + old_bytes, 0, (nc + 7) / 8 - old_bytes);
    s->seen = ns;
    s->seen_cap = nc;
    return true;
}

/* Makes `cells` cover test index t (repeat > 1). The array is capped at
 * STATS_MAX_CELLS cells, so a suite with very many tests x columns keeps
 * pass@k for its first tests only. */
static bool cover_cells(ev_stats *s, size_t t)
{
    if (t < s->cells_cap)
        return true;
    size_t max = STATS_MAX_CELLS / s->ncols;
    if (t >= max)
        return false;
    size_t nc = grow_to(s->cells_cap, t, max);
    kcell *nk = realloc(s->cells, nc * s->ncols * sizeof *nk);
    if (!nk)
        return false;
    memset(nk + s->cells_cap * s->ncols, 0, (nc - s->cells_cap) * s->ncols * sizeof *nk);
    s->cells = nk;
    s->cells_cap = nc;
    return true;
}

ev_stats *ev_stats_new(const char *const *prompt_labels, size_t nprompts, const char *const *provider_labels,
                       size_t nproviders, size_t ntests, int repeat)
{
    if (nprompts == 0 || nproviders == 0 || nprompts > 100000 || nproviders > 100000 ||
        nprompts * nproviders > 100000)
        return NULL;
    ev_stats *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nprompts = nprompts;
    s->nproviders = nproviders;
    s->ncols = nprompts * nproviders;
    s->repeat = repeat < 1 ? 1 : repeat;
    s->ntests = ntests;
    memset(s->slots, 0xff, sizeof s->slots);
    s->prompt_labels = calloc(nprompts, sizeof *s->prompt_labels);
    s->provider_labels = calloc(nproviders, sizeof *s->provider_labels);
    s->cols = calloc(s->ncols, sizeof *s->cols);
    if (!s->prompt_labels || !s->provider_labels || !s->cols)
        goto err;
    for (size_t i = 0; i < nprompts; i++)
        if (!(s->prompt_labels[i] = label_dup(prompt_labels, i, "prompt")))
            goto err;
    for (size_t i = 0; i < nproviders; i++)
        if (!(s->provider_labels[i] = label_dup(provider_labels, i, "provider")))
            goto err;
    if (ntests > 0 && !cover_seen(s, (ntests < STATS_MAX_TESTS ? ntests : STATS_MAX_TESTS) - 1))
        goto err;
    if (ntests > 0 && s->repeat > 1 && !cover_cells(s, MIN(ntests, STATS_MAX_CELLS / s->ncols) - 1))
        goto err;
    return s;
err:
    ev_stats_free(s);
    return NULL;
}

void ev_stats_free(ev_stats *s)
{
    if (!s)
        return;
    if (s->prompt_labels)
        for (size_t i = 0; i < s->nprompts; i++)
            free(s->prompt_labels[i]);
    if (s->provider_labels)
        for (size_t i = 0; i < s->nproviders; i++)
            free(s->provider_labels[i]);
    free(s->prompt_labels);
    free(s->provider_labels);
    if (s->cols) {
        for (size_t i = 0; i < s->ncols; i++) {
            acc_free(&s->cols[i].score);
            acc_free(&s->cols[i].cost_acc);
            lat_free(&s->cols[i].latency);
        }
    }
    free(s->cols);
    for (size_t i = 0; i < s->nmetrics; i++) {
        free(s->metrics[i].name);
        acc_free(&s->metrics[i].a);
    }
    acc_free(&s->score);
    free(s->seen);
    free(s->cells);
    free(s);
}

/* The metric named prefix+name (prefix may be ""), created on first use;
 * NULL when the table is full or out of memory. */
static metric *metric_get(ev_stats *s, const char *prefix, const char *name)
{
    uint64_t h = fnv(fnv(FNV_START, prefix), name);
    size_t plen = strlen(prefix), nlen = strlen(name);
    size_t i = (size_t)h & (METRIC_SLOTS - 1);
    for (;; i = (i + 1) & (METRIC_SLOTS - 1)) {
        int16_t k = s->slots[i];
        if (k < 0)
            break;
        metric *m = &s->metrics[k];
        if (m->hash == h && strncmp(m->name, prefix, plen) == 0 && strcmp(m->name + plen, name) == 0)
            return m;
    }
    if (s->nmetrics >= STATS_MAX_METRICS)
        return NULL;
    char *copy = malloc(plen + nlen + 1);
    if (!copy)
        return NULL;
    memcpy(copy, prefix, plen);
    memcpy(copy + plen, name, nlen + 1);
    metric *m = &s->metrics[s->nmetrics];
    *m = (metric){ .name = copy, .hash = h };
    s->slots[i] = (int16_t)s->nmetrics++;
    return m;
}

/* a + b for b >= 0, stopping at LLONG_MAX rather than overflowing. */
static long long sat_add(long long a, long b)
{
    return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

void ev_stats_add(ev_stats *s, const ev_record *r)
{
    if (!s || !r)
        return;
    s->records++;
    bool ok = r->verdict != EV_ERROR;
    if (r->verdict == EV_PASS)
        s->passed++;
    else if (r->verdict == EV_FAIL)
        s->failed++;
    else
        s->errors++;
    if (ok)
        acc_add(&s->score, r->score);

    column *col = NULL;
    size_t ci = 0;
    if (r->prompt < s->nprompts && r->provider < s->nproviders) {
        ci = r->prompt * s->nproviders + r->provider;
        col = &s->cols[ci];
        if (r->verdict == EV_PASS)
            col->passed++;
        else if (r->verdict == EV_FAIL)
            col->failed++;
        else
            col->errors++;
        if (ok)
            acc_add(&col->score, r->score);
        if (isfinite(r->cost_usd) && r->cost_usd >= 0.0) {
            csum_add(&col->cost, r->cost_usd);
            col->cost_n++;
            acc_add(&col->cost_acc, r->cost_usd);
        }
        lat_add(&col->latency, r->latency_ms);
        if (r->tokens_in >= 0) {
            col->tok_in = sat_add(col->tok_in, r->tokens_in);
            col->tok_in_n++;
        }
        if (r->tokens_out >= 0) {
            col->tok_out = sat_add(col->tok_out, r->tokens_out);
            col->tok_out_n++;
        }
    }

    if (r->asserts) {
        for (size_t i = 0; i < r->nasserts; i++) {
            const ev_assert_outcome *o = &r->asserts[i];
            if (o->r.verdict == EV_ERROR || !o->type)
                continue;
            const char *pre = o->negate ? "not-" : "";
            metric *m = metric_get(s, pre, o->type);
            if (m)
                acc_add(&m->a, o->r.score);
            else
                s->metrics_dropped++;
            if (o->metric && o->metric[0]) {
                metric *nm = metric_get(s, "", o->metric);
                if (nm && nm != m)
                    acc_add(&nm->a, o->r.score);
                else if (!nm)
                    s->metrics_dropped++;
            }
        }
    }

    if (r->test >= s->max_test && r->test < STATS_MAX_TESTS)
        s->max_test = r->test + 1;
    if (!cover_seen(s, r->test))
        return;
    s->seen[r->test / 8] |= (uint8_t)(1u << (r->test % 8));
    if (s->repeat > 1 && col && cover_cells(s, r->test)) {
        kcell *k = &s->cells[r->test * s->ncols + ci];
        if (k->n < UINT16_MAX) {
            k->n++;
            if (r->verdict == EV_PASS)
                k->c++;
        }
    }
}

/* ---- the summary ---------------------------------------------------------- */

/* A number, or null when not finite (jansson refuses NaN). */
static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jcount(size_t n)
{
    return json_integer((json_int_t)n);
}

static json_t *interval_json(double value, double lo, double hi, const char *vkey)
{
    json_t *o = json_object();
    json_object_set_new(o, vkey, jnum(value));
    json_object_set_new(o, "lo", jnum(lo));
    json_object_set_new(o, "hi", jnum(hi));
    return o;
}

static json_t *rate_json(size_t pass, size_t n)
{
    double lo, hi;
    ev_wilson(pass, n, EV_Z95, &lo, &hi);
    return interval_json(n ? (double)pass / (double)n : NAN, lo, hi, "value");
}

static json_t *acc_json(const acc *a, uint64_t seed, bool with_n)
{
    double m = NAN, lo = NAN, hi = NAN;
    if (!acc_interval(a, seed, &m, &lo, &hi))
        m = lo = hi = NAN;
    json_t *o = interval_json(m, lo, hi, "mean");
    if (with_n)
        json_object_set_new(o, "n", jcount(a->n));
    return o;
}

static int cmp_metric_name(const void *a, const void *b)
{
    const metric *x = *(const metric *const *)a, *y = *(const metric *const *)b;
    return strcmp(x->name, y->name);
}

static json_t *column_json(const ev_stats *s, size_t i, uint64_t seed, double *tmp)
{
    const column *c = &s->cols[i];
    json_t *o = json_object();
    json_object_set_new(o, "prompt", json_string(s->prompt_labels[i / s->nproviders]));
    json_object_set_new(o, "provider", json_string(s->provider_labels[i % s->nproviders]));
    json_object_set_new(o, "passed", jcount(c->passed));
    json_object_set_new(o, "failed", jcount(c->failed));
    json_object_set_new(o, "errors", jcount(c->errors));
    json_object_set_new(o, "pass_rate", rate_json(c->passed, c->passed + c->failed + c->errors));
    json_object_set_new(o, "score", acc_json(&c->score, sub_seed(seed, "column", i), false));
    json_t *cost = json_object();
    json_object_set_new(cost, "total", c->cost_n ? jnum(csum_get(&c->cost)) : json_null());
    json_object_set_new(cost, "mean", c->cost_n ? jnum(csum_get(&c->cost) / (double)c->cost_n) : json_null());
    double m, lo, hi;
    bool have = c->cost_n && acc_interval(&c->cost_acc, sub_seed(seed, "cost", i), &m, &lo, &hi);
    json_object_set_new(cost, "lo", have ? jnum(lo) : json_null());
    json_object_set_new(cost, "hi", have ? jnum(hi) : json_null());
    json_object_set_new(o, "cost", cost);
    json_t *l = json_object();
    json_object_set_new(l, "p50", jnum(lat_quantile(&c->latency, 0.5, tmp)));
    json_object_set_new(l, "p95", jnum(lat_quantile(&c->latency, 0.95, tmp)));
    lat_quantile_ci(&c->latency, 0.5, tmp, &lo, &hi);
    json_object_set_new(l, "p50_lo", jnum(lo));
    json_object_set_new(l, "p50_hi", jnum(hi));
    lat_quantile_ci(&c->latency, 0.95, tmp, &lo, &hi);
    json_object_set_new(l, "p95_lo", jnum(lo));
    json_object_set_new(l, "p95_hi", jnum(hi));
    json_object_set_new(l, "mean", c->latency.n ? jnum(csum_get(&c->latency.sum) / (double)c->latency.n)
                                                : json_null());
    json_object_set_new(o, "latency_ms", l);
    json_t *t = json_object();
    json_object_set_new(t, "in", c->tok_in_n ? json_integer(c->tok_in) : json_null());
    json_object_set_new(t, "out", c->tok_out_n ? json_integer(c->tok_out) : json_null());
    json_object_set_new(o, "tokens", t);
    return o;
}

/* The largest k of the pass@k curve (by_k); k = repeat is always given. */
#define PASSK_CURVE_MAX 20

/* pass@k and pass^k over all test x column cells: {k, mean, n, by_k}. */
static void passk_json(const ev_stats *s, json_t *out)
{
    size_t R = (size_t)s->repeat;
    size_t nk = R < PASSK_CURVE_MAX ? R : PASSK_CURVE_MAX;
    /* ks[0..nk) = 1..nk, then R if not already there. */
    size_t ks[PASSK_CURVE_MAX + 1], nks = 0;
    for (size_t k = 1; k <= nk; k++)
        ks[nks++] = k;
    if (R > nk)
        ks[nks++] = R;
    double at[PASSK_CURVE_MAX + 1] = { 0 }, hat[PASSK_CURVE_MAX + 1] = { 0 };
    size_t cnt[PASSK_CURVE_MAX + 1] = { 0 };
    /* Cells with n == R (the usual case) are counted by c first, so the
     * formulas run once per distinct c rather than once per cell. */
    size_t *byc = calloc(R + 1, sizeof *byc);
    size_t ncells = MIN(s->max_test, s->cells_cap) * s->ncols;
    for (size_t i = 0; i < ncells; i++) {
        const kcell *k = &s->cells[i];
        if (k->n == 0)
            continue;
        if (byc && k->n == R) {
            byc[k->c]++;
            continue;
        }
        for (size_t j = 0; j < nks; j++) {
            if (k->n < ks[j])
                continue;
            at[j] += ev_pass_at_k(k->n, k->c, ks[j]);
            hat[j] += ev_pass_hat_k(k->n, k->c, ks[j]);
            cnt[j]++;
        }
    }
    if (byc) {
        for (size_t c = 0; c <= R; c++) {
            if (!byc[c])
                continue;
            for (size_t j = 0; j < nks; j++) {
                at[j] += (double)byc[c] * ev_pass_at_k(R, c, ks[j]);
                hat[j] += (double)byc[c] * ev_pass_hat_k(R, c, ks[j]);
                cnt[j] += byc[c];
            }
        }
        free(byc);
    }
    json_t *pa = json_object(), *ph = json_object();
    json_t *ca = json_array(), *ch = json_array();
    for (size_t j = 0; j < nks; j++) {
        double ma = cnt[j] ? at[j] / (double)cnt[j] : NAN, mh = cnt[j] ? hat[j] / (double)cnt[j] : NAN;
        if (j < nk) {
            json_array_append_new(ca, jnum(ma));
            json_array_append_new(ch, jnum(mh));
        }
        if (ks[j] == R) {
            json_object_set_new(pa, "mean", jnum(ma));
            json_object_set_new(ph, "mean", jnum(mh));
            json_object_set_new(pa, "n", jcount(cnt[j]));
            json_object_set_new(ph, "n", jcount(cnt[j]));
        }
    }
    json_object_set_new(pa, "k", jcount(R));
    json_object_set_new(ph, "k", jcount(R));
    json_object_set_new(pa, "by_k", ca);
    json_object_set_new(ph, "by_k", ch);
    json_object_set_new(out, "pass_at_k", pa);
    json_object_set_new(out, "pass_hat_k", ph);
}

/* Per test x column pass@k and pass^k (k = repeat) for small suites. */
static json_t *tests_k_json(const ev_stats *s)
{
    json_t *a = json_array();
    size_t R = (size_t)s->repeat;
    size_t nt = MIN(s->max_test, s->cells_cap);
    for (size_t t = 0; t < nt && s->cells; t++) {
        for (size_t ci = 0; ci < s->ncols; ci++) {
            const kcell *k = &s->cells[t * s->ncols + ci];
            if (k->n == 0)
                continue;
            json_t *o = json_object();
            json_object_set_new(o, "test", jcount(t));
            json_object_set_new(o, "prompt", json_string(s->prompt_labels[ci / s->nproviders]));
            json_object_set_new(o, "provider", json_string(s->provider_labels[ci % s->nproviders]));
            json_object_set_new(o, "n", jcount(k->n));
            json_object_set_new(o, "c", jcount(k->c));
            json_object_set_new(o, "pass_at_k", jnum(ev_pass_at_k(k->n, k->c, R)));
            json_object_set_new(o, "pass_hat_k", jnum(ev_pass_hat_k(k->n, k->c, R)));
            json_array_append_new(a, o);
        }
    }
    return a;
}

static size_t popcount_bytes(const uint8_t *p, size_t nbits)
{
    size_t n = 0;
    for (size_t i = 0; i < (nbits + 7) / 8; i++)
        n += (size_t)__builtin_popcount(p[i]);
    return n;
}

json_t *ev_stats_summary(const ev_stats *s, uint64_t seed)
{
    if (!s)
        return NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    size_t tmpn = 1;
    for (size_t i = 0; i < s->ncols; i++)
        if (!s->cols[i].latency.hist && s->cols[i].latency.n > tmpn)
            tmpn = s->cols[i].latency.n;
    double *tmp = malloc(tmpn * sizeof *tmp);
    if (!tmp) {
        json_decref(o);
        return NULL;
    }
    json_object_set_new(o, "tests", jcount(s->seen ? popcount_bytes(s->seen, s->seen_cap) : 0));
    json_object_set_new(o, "records", jcount(s->records));
    json_object_set_new(o, "passed", jcount(s->passed));
    json_object_set_new(o, "failed", jcount(s->failed));
    json_object_set_new(o, "errors", jcount(s->errors));
    json_object_set_new(o, "pass_rate", rate_json(s->passed, s->records));
    json_object_set_new(o, "score", acc_json(&s->score, sub_seed(seed, "score", 0), true));

    const metric *order[STATS_MAX_METRICS];
    for (size_t i = 0; i < s->nmetrics; i++)
        order[i] = &s->metrics[i];
    qsort(order, s->nmetrics, sizeof order[0], cmp_metric_name);
    json_t *ms = json_object();
    for (size_t i = 0; i < s->nmetrics; i++)
        json_object_set_new(ms, order[i]->name, acc_json(&order[i]->a, sub_seed(seed, order[i]->name, 1), true));
    json_object_set_new(o, "metrics", ms);
    if (s->metrics_dropped)
        json_object_set_new(o, "metrics_dropped", jcount(s->metrics_dropped));

    json_t *cols = json_array();
    for (size_t i = 0; i < s->ncols; i++)
        json_array_append_new(cols, column_json(s, i, seed, tmp));
    json_object_set_new(o, "columns", cols);

    if (s->repeat > 1) {
        json_object_set_new(o, "repeat", json_integer(s->repeat));
        passk_json(s, o);
        size_t nt = s->ntests > s->max_test ? s->ntests : s->max_test;
        if (nt <= 1000)
            json_object_set_new(o, "tests_k", tests_k_json(s));
    }
    free(tmp);
    return o;
}

/* ---- baseline comparison ---------------------------------------------------- */

json_t *ev_compare(const ev_pair *p, size_t n, double tolerance, double alpha, uint64_t seed)
{
    if (!(tolerance >= 0.0) || !(alpha > 0.0 && alpha < 1.0) || (n > 0 && !p))
        return NULL;
    size_t m = 0, base_pass = 0, cur_pass = 0, b = 0, c = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i].base_pass >= 0 && p[i].cur_pass >= 0)
            m++;
    double *bs = malloc((m ? m : 1) * sizeof *bs), *cs = malloc((m ? m : 1) * sizeof *cs);
    json_t *o = json_object(), *reg = json_array(), *imp = json_array();
    if (!bs || !cs || !o || !reg || !imp) {
        free(bs);
        free(cs);
        json_decref(o);
        json_decref(reg);
        json_decref(imp);
        return NULL;
    }
    size_t nscore = 0;
    for (size_t i = 0; i < n; i++) {
        const ev_pair *q = &p[i];
        if (q->base_pass < 0 || q->cur_pass < 0)
            continue;
        bool bp = q->base_pass > 0, cp = q->cur_pass > 0;
        base_pass += bp;
        cur_pass += cp;
        if (bp && !cp) {
            if (b++ < EV_COMPARE_MAX_KEYS)
                json_array_append_new(reg, json_string(q->key ? q->key : ""));
        } else if (!bp && cp) {
            if (c++ < EV_COMPARE_MAX_KEYS)
                json_array_append_new(imp, json_string(q->key ? q->key : ""));
        }
        if (isfinite(q->base_score) && isfinite(q->cur_score)) {
            bs[nscore] = q->base_score;
            cs[nscore] = q->cur_score;
            nscore++;
        }
    }
    double rb = m ? (double)base_pass / (double)m : NAN, rc = m ? (double)cur_pass / (double)m : NAN;
    double mp = ev_mcnemar_p(b, c);
    double sd = NAN, slo = NAN, shi = NAN, sp = NAN;
    bool have_score = ev_paired_bootstrap(bs, cs, nscore, EV_BOOT_ITERS, sub_seed(seed, "compare", 0), 0.95,
                                          &sd, &slo, &shi, &sp);
    free(bs);
    free(cs);

    json_object_set_new(o, "n", jcount(m));
    json_t *pr = json_object();
    json_object_set_new(pr, "base", jnum(rb));
    json_object_set_new(pr, "cur", jnum(rc));
    json_object_set_new(pr, "diff", jnum(rc - rb));
    json_object_set_new(o, "pass_rate", pr);
    json_t *mc = json_object();
    json_object_set_new(mc, "b", jcount(b));
    json_object_set_new(mc, "c", jcount(c));
    json_object_set_new(mc, "p", jnum(mp));
    json_object_set_new(o, "mcnemar", mc);
    json_t *sc = json_object();
    json_object_set_new(sc, "diff", jnum(sd));
    json_object_set_new(sc, "lo", jnum(slo));
    json_object_set_new(sc, "hi", jnum(shi));
    json_object_set_new(sc, "p", jnum(sp));
    json_object_set_new(sc, "n", jcount(nscore));
    json_object_set_new(o, "score", sc);
    json_object_set_new(o, "regressed", reg);
    json_object_set_new(o, "regressed_count", jcount(b));
    json_object_set_new(o, "improved", imp);
    json_object_set_new(o, "improved_count", jcount(c));

    /* The bootstrap of fewer than EV_COMPARE_MIN_PAIRS pairs has too
     * little spread to mean anything (one pair always gives p = 0), so it
     * only counts from there; McNemar is exact at any size. */
    bool sig_pass = b > c && mp < alpha;
    bool sig_score = have_score && nscore >= EV_COMPARE_MIN_PAIRS && sd < 0.0 && sp < alpha;
    bool drop_pass = m && rb - rc > tolerance;
    bool drop_score = have_score && -sd > tolerance;
    json_object_set_new(o, "significant", json_boolean(sig_pass || sig_score));
    json_object_set_new(o, "drop", json_boolean(drop_pass || drop_score));
    json_object_set_new(o, "gate_failed", json_boolean((sig_pass && drop_pass) || (sig_score && drop_score)));
    return o;
}
