/*
 * avi.c - the Agentic Variability Index (see avi.h and docs/avi.md).
 *
 * avi_measure() works on one case's K samples:
 *   outcome     counts of pass / fail / error give the share of run pairs
 *               that disagree, divided by the largest share two outcomes
 *               can reach with K runs (an even split), capped at 1;
 *   dispersion  mean pairwise distance of the answers of the runs that did
 *               not fail: 1 - Jaccard of shingle sets (words and adjacent
 *               word pairs, lowercased, hashed to 64 bits, sorted, so a pair
 *               is one merge), or the caller's embedding distance matrix;
 *   trajectory  mean pairwise distance of the tool-call sequences: each call
 *               becomes two 64-bit ids (its name; its name and canonical
 *               arguments) and the distance is the mean of the two
 *               normalised edit distances;
 *   latency and cost: the coefficient of variation, capped at 1.
 * The index is 100 x the weighted mean of the components that apply.
 *
 * An avi_report keeps running sums per component, the worst cases in a
 * fixed-size min-heap (the least bad kept case at the root, so a new case
 * replaces it in O(log N)), and one row per prompt x provider pair (at most
 * AVI_MAX_GROUPS): memory does not grow with the number of cases.
 */
#include <math.h>
#include <stdlib.h>
#include "eval/avi.h"

#define NCOMP 5
#define LABEL_MAX 256
#define SHARE_MIN 0.10      /* components with at least this share get remedies */

const avi_weights AVI_DEFAULT_WEIGHTS = { 0.35, 0.25, 0.25, 0.075, 0.075 };

static const char *const comp_names[NCOMP] = { "outcome", "dispersion", "trajectory", "latency", "cost" };

const char *avi_component_name(size_t i)
{
    return i < NCOMP ? comp_names[i] : NULL;
}

static void case_values(const avi_case *c, double x[NCOMP])
{
    x[0] = c->outcome;
    x[1] = c->dispersion;
    x[2] = c->trajectory;
    x[3] = c->latency;
    x[4] = c->cost;
}

/* Weights as an array; negative or non-finite ones are 0. */
static void weight_values(const avi_weights *w, double v[NCOMP])
{
    v[0] = w->outcome;
    v[1] = w->dispersion;
    v[2] = w->trajectory;
    v[3] = w->latency;
    v[4] = w->cost;
    for (int i = 0; i < NCOMP; i++)
        if (!isfinite(v[i]) || v[i] < 0)
            v[i] = 0;
}

static double clamp01(double x)
{
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

#define FNV_OFFSET 0xCBF29CE484222325ull
#define FNV_PRIME 0x100000001B3ull

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= FNV_PRIME;
    }
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- lexical dispersion ---- */

static bool word_byte(unsigned char ch)
{
    return ch >= 0x80 || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* The sorted, duplicate-free shingle set of text: the hash of each word
 * (a run of ASCII letters and digits and non-ASCII bytes, ASCII lowercased)
 * and of each pair of adjacent words, over the first AVI_MAX_WORDS words.
 * *out is malloc'd (NULL with *n 0 for a text without words). Returns false
 * on out of memory. */
static bool shingles(const char *text, size_t len, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text)
        return true;
    size_t words = 0;
    for (size_t i = 0; i < len && words < AVI_MAX_WORDS;) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        if (i == len)
            break;
        while (i < len && word_byte((unsigned char)text[i]))
            i++;
        words++;
    }
    if (words == 0)
        return true;
    uint64_t *set = malloc((2 * words - 1) * sizeof *set);
    if (!set)
        return false;
    size_t at = 0, w = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < len && w < words;) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        uint64_t h = FNV_OFFSET;
        while (i < len && word_byte((unsigned char)text[i])) {
            unsigned char ch = (unsigned char)text[i++];
            if (ch >= 'A' && ch <= 'Z')
                ch = (unsigned char)(ch - 'A' + 'a');
            h = fnv1a(h, &ch, 1);
        }
        h = mix64(h);
        set[at++] = h;
        if (w > 0)
            set[at++] = mix64(prev * 31 + (h ^ 0x5B16A3D1C0FFEE11ull));
        prev = h;
        w++;
    }
    qsort(set, at, sizeof *set, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < at; i++)
        if (u == 0 || set[u - 1] != set[i])
            set[u++] = set[i];
    *out = set;
    *n = u;
    return true;
}

/* 1 - |A n B| / |A u B| of two sorted sets; two empty sets are at 0. */
static double jaccard_distance(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
    if (na == 0 && nb == 0)
        return 0;
    size_t i = 0, j = 0, both = 0;
    while (i < na && j < nb) {
        if (a[i] == b[j]) {
            both++;
            i++;
            j++;
        } else if (a[i] < b[j]) {
            i++;
        } else {
            j++;
        }
    }
    return 1.0 - (double)both / (double)(na + nb - both);
}

double avi_lexical_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    uint64_t *sa, *sb;
    size_t na, nb;
    if (!shingles(a, alen, &sa, &na))
        return NAN;
    if (!shingles(b, blen, &sb, &nb)) {
        free(sa);
        return NAN;
    }
    double d = jaccard_distance(sa, na, sb, nb);
    free(sa);
    free(sb);
    return d;
}

/* ---- trajectory ---- */

typedef struct call_id {
    uint64_t name;      /* hash of the function name */
    uint64_t full;      /* hash of the name and the canonical arguments */
} call_id;

static int hash_sink(const char *bytes, size_t n, void *data)
{
    uint64_t *h = data;
    *h = fnv1a(*h, bytes, n);
    return 0;
}

/* Hash of a JSON value dumped compactly with sorted keys; false on OOM. */
static bool canonical_hash(const json_t *v, uint64_t *h)
{
    *h = FNV_OFFSET;
    return json_dump_callback(v, hash_sink, h, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) == 0;
}

/* Hash of a call's (present, non-null) arguments: a JSON string is parsed
 * and canonicalised (text that does not parse is hashed as it is, tagged so
 * it never equals a parsed value); other JSON values are canonicalised. */
static bool args_hash(const json_t *args, uint64_t *h)
{
    if (!json_is_string(args))
        return canonical_hash(args, h);
    const char *s = json_string_value(args);
    size_t n = json_string_length(args);
    json_error_t err;
    json_t *parsed = json_loadb(s, n, JSON_DECODE_ANY, &err);
    if (!parsed) {
        *h = fnv1a(0x7E57ull, s, n);
        return true;
    }
    bool ok = canonical_hash(parsed, h);
    json_decref(parsed);
    return ok;
}

/* The calls of one run (OpenAI tool_calls: [{type, id, function: {name,
 * arguments}}]; an element without "function" is read as the function
 * itself, and "input" stands in for "arguments", so Anthropic-like shapes
 * work too). At most AVI_MAX_CALLS; *out malloc'd or NULL. */
static bool call_ids(const json_t *calls, call_id **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t total = json_is_array(calls) ? json_array_size(calls) : 0;
    if (total == 0)
        return true;
    total = MIN(total, (size_t)AVI_MAX_CALLS);
    call_id *ids = malloc(total * sizeof *ids);
    if (!ids)
        return false;
    for (size_t i = 0; i < total; i++) {
        const json_t *e = json_array_get(calls, i);
        const json_t *fn = json_object_get(e, "function");
        if (!json_is_object(fn))
            fn = e;
        const json_t *name = json_object_get(fn, "name");
        const json_t *args = json_object_get(fn, "arguments");
        if (!args)
            args = json_object_get(fn, "input");
        uint64_t hn = json_is_string(name) ? fnv1a(FNV_OFFSET, json_string_value(name), json_string_length(name))
                                           : 0x6E6F6E616D65ull; /* no usable name */
        uint64_t ha;
        if (args && json_is_null(args))
            args = NULL;
        if (!args) {
            ha = fnv1a(FNV_OFFSET, "{}", 2);
        } else if (!args_hash(args, &ha)) {
            free(ids);
            return false;
        }
        ids[i].name = mix64(hn);
        ids[i].full = mix64(hn ^ mix64(ha));
    }
    *out = ids;
    *n = total;
    return true;
}

/* Levenshtein distance of two id sequences divided by the longer length
 * (0 for two empty ones); full picks which id is compared. */
static double seq_distance(const call_id *a, size_t na, const call_id *b, size_t nb, bool full)
{
    if (na == 0 && nb == 0)
        return 0;
    if (na == 0 || nb == 0)
        return 1;
    size_t row[AVI_MAX_CALLS + 1], prev[AVI_MAX_CALLS + 1];
    for (size_t j = 0; j <= nb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= na; i++) {
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            bool same = full ? a[i - 1].full == b[j - 1].full : a[i - 1].name == b[j - 1].name;
            size_t best = prev[j - 1] + (same ? 0 : 1);
            best = MIN(best, prev[j] + 1);
            best = MIN(best, row[j - 1] + 1);
            row[j] = best;
        }
        memcpy(prev, row, (nb + 1) * sizeof *row);
    }
    return (double)prev[nb] / (double)MAX(na, nb);
}

static double call_distance(const call_id *a, size_t na, const call_id *b, size_t nb)
{
    return 0.5 * (seq_distance(a, na, b, nb, false) + seq_distance(a, na, b, nb, true));
}

double avi_trajectory_distance(const json_t *a, const json_t *b)
{
    call_id *ia, *ib;
    size_t na, nb;
    if (!call_ids(a, &ia, &na))
        return NAN;
    if (!call_ids(b, &ib, &nb)) {
        free(ia);
        return NAN;
    }
    double d = call_distance(ia, na, ib, nb);
    free(ia);
    free(ib);
    return d;
}

/* ---- one case ---- */

/* Pairwise disagreement of the outcomes (pass, fail, error), divided by the
 * most two outcomes can disagree with k runs, capped at 1. */
static double outcome_variability(const avi_sample *s, size_t k, size_t *failures)
{
    size_t count[3] = { 0, 0, 0 };
    *failures = 0;
    for (size_t i = 0; i < k; i++) {
        if (s[i].failed)
            (*failures)++;
        int o = s[i].failed ? 2 : s[i].verdict == EV_PASS ? 0 : s[i].verdict == EV_FAIL ? 1 : 2;
        count[o]++;
    }
    double pairs = (double)k * (double)(k - 1) / 2;
    double agree = 0;
    for (int o = 0; o < 3; o++)
        agree += (double)count[o] * (double)(count[o] > 0 ? count[o] - 1 : 0) / 2;
    double disagree = (pairs - agree) / pairs;
    double most = (double)(k / 2) * (double)(k - k / 2) / pairs;
    return clamp01(disagree / most);
}

/* Sample coefficient of variation (std with n - 1 over the mean) of the
 * finite, non-negative values of the runs that did not fail, capped at 1;
 * NAN with fewer than two such values; 0 when they are all 0. */
static double spread(const avi_sample *s, size_t k, bool cost)
{
    size_t n = 0;
    double sum = 0;
    for (size_t i = 0; i < k; i++) {
        double v = cost ? s[i].cost_usd : s[i].latency_ms;
        if (!s[i].failed && isfinite(v) && v >= 0) {
            n++;
            sum += v;
        }
    }
    if (n < 2)
        return NAN;
    double mean = sum / (double)n;
    if (!(mean > 0) || !isfinite(mean))
        return 0;
    double ss = 0;
    for (size_t i = 0; i < k; i++) {
        double v = cost ? s[i].cost_usd : s[i].latency_ms;
        if (!s[i].failed && isfinite(v) && v >= 0)
            ss += (v - mean) * (v - mean);
    }
    double cv = sqrt(ss / (double)(n - 1)) / mean;
    return isfinite(cv) ? clamp01(cv) : 1;
}

/* Mean of the caller's distances over the pairs of runs in idx (clamped to
 * [0,1], non-finite skipped); NAN when none is finite. */
static double matrix_dispersion(const double *dist, size_t k, const size_t *idx, size_t m)
{
    double sum = 0;
    size_t n = 0;
    for (size_t a = 0; a < m; a++)
        for (size_t b = a + 1; b < m; b++) {
            double d = dist[idx[a] * k + idx[b]];
            if (!isfinite(d))
                d = dist[idx[b] * k + idx[a]];
            if (isfinite(d)) {
                sum += clamp01(d);
                n++;
            }
        }
    return n ? sum / (double)n : NAN;
}

/* Mean lexical distance over the pairs of runs in idx; NAN on OOM. */
static double lexical_dispersion(const avi_sample *s, const size_t *idx, size_t m)
{
    uint64_t **sets = calloc(m, sizeof *sets);
    size_t *sizes = calloc(m, sizeof *sizes);
    double result = NAN;
    if (!sets || !sizes)
        goto out;
    for (size_t a = 0; a < m; a++) {
        const char *t = s[idx[a]].output ? s[idx[a]].output : "";
        if (!shingles(t, strlen(t), &sets[a], &sizes[a]))
            goto out;
    }
    double sum = 0;
    for (size_t a = 0; a < m; a++)
        for (size_t b = a + 1; b < m; b++)
            sum += jaccard_distance(sets[a], sizes[a], sets[b], sizes[b]);
    result = sum / ((double)m * (double)(m - 1) / 2);
out:
    for (size_t a = 0; sets && a < m; a++)
        free(sets[a]);
    free(sets);
    free(sizes);
    return result;
}

/* Mean trajectory distance over the pairs of runs in idx; NAN when no run
 * made a call (*any false) or on OOM. */
static double trajectory_variability(const avi_sample *s, const size_t *idx, size_t m, bool *any)
{
    call_id **ids = calloc(m, sizeof *ids);
    size_t *sizes = calloc(m, sizeof *sizes);
    double result = NAN;
    *any = false;
    if (!ids || !sizes)
        goto out;
    for (size_t a = 0; a < m; a++) {
        if (!call_ids(s[idx[a]].tool_calls, &ids[a], &sizes[a]))
            goto out;
        if (sizes[a] > 0)
            *any = true;
    }
    if (!*any)
        goto out;
    double sum = 0;
    for (size_t a = 0; a < m; a++)
        for (size_t b = a + 1; b < m; b++)
            sum += call_distance(ids[a], sizes[a], ids[b], sizes[b]);
    result = sum / ((double)m * (double)(m - 1) / 2);
out:
    for (size_t a = 0; ids && a < m; a++)
        free(ids[a]);
    free(ids);
    free(sizes);
    return result;
}

/* 100 x the weighted mean of the finite components; 0 when no weight applies. */
static double case_index(const avi_case *c, const double wv[NCOMP])
{
    double x[NCOMP], num = 0, den = 0;
    case_values(c, x);
    for (int i = 0; i < NCOMP; i++)
        if (isfinite(x[i]) && wv[i] > 0) {
            num += wv[i] * x[i];
            den += wv[i];
        }
    if (!(den > 0))
        return 0;
    double index = 100.0 * num / den;   /* a contracted multiply-add can land a hair past 100 */
    return index < 0 ? 0 : index > 100 ? 100 : index;
}

void avi_measure(const avi_sample *s, size_t k, const double *dist, const avi_weights *w, avi_case *out)
{
    memset(out, 0, sizeof *out);
    out->runs = k;
    if (!s || k < 2) {
        out->dispersion = out->trajectory = out->latency = out->cost = NAN;
        if (s && k == 1)
            out->failures = s[0].failed ? 1 : 0;
        return;
    }
    double wv[NCOMP];
    weight_values(w ? w : &AVI_DEFAULT_WEIGHTS, wv);
    out->outcome = outcome_variability(s, k, &out->failures);
    out->latency = spread(s, k, false);
    out->cost = spread(s, k, true);
    out->dispersion = out->trajectory = NAN;

    size_t idx[AVI_MAX_PAIR_RUNS], m = 0;
    for (size_t i = 0; i < k && m < AVI_MAX_PAIR_RUNS; i++)
        if (!s[i].failed)
            idx[m++] = i;
    if (m >= 2) {
        if (dist)
            out->dispersion = matrix_dispersion(dist, k, idx, m);
        if (!isfinite(out->dispersion))
            out->dispersion = lexical_dispersion(s, idx, m);
        out->trajectory = trajectory_variability(s, idx, m, &out->has_trajectory);
    } else {
        /* still say whether a run made calls */
        for (size_t i = 0; i < k && !out->has_trajectory; i++)
            out->has_trajectory = !s[i].failed && json_array_size(s[i].tool_calls) > 0;
    }
    out->index = case_index(out, wv);
}

/* ---- options ---- */

static double weight_field(const avi_weights *w, size_t i)
{
    double v[NCOMP];
    weight_values(w, v);
    return v[i];
}

static void set_weight(avi_weights *w, size_t i, double v)
{
    double *f[NCOMP] = { &w->outcome, &w->dispersion, &w->trajectory, &w->latency, &w->cost };
    *f[i] = v;
}

err_code avi_options_parse(const json_t *obj, avi_options *out, char *msg, size_t msgcap)
{
    out->target = NAN;
    out->runs = 0;
    out->weights = AVI_DEFAULT_WEIGHTS;
    out->embedding = NULL;
    if (msgcap)
        msg[0] = '\0';
    if (!obj || json_is_null(obj))
        return ERR_OK;
    if (!json_is_object(obj)) {
        snprintf(msg, msgcap, "avi: expected an object ({target, runs, weights, embedding})");
        return ERR_CONFIG;
    }
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (strcmp(key, "target") == 0) {
            double t = json_number_value(v);
            if (!json_is_number(v) || !isfinite(t) || t < 0 || t > 100) {
                snprintf(msg, msgcap, "avi.target: expected a number from 0 to 100");
                return ERR_CONFIG;
            }
            out->target = t;
        } else if (strcmp(key, "runs") == 0) {
            json_int_t r = json_integer_value(v);
            if (!json_is_integer(v) || r < 2 || r > AVI_MAX_RUNS) {
                snprintf(msg, msgcap, "avi.runs: expected an integer from 2 to %d", AVI_MAX_RUNS);
                return ERR_CONFIG;
            }
            out->runs = (int)r;
        } else if (strcmp(key, "weights") == 0) {
            if (!json_is_object(v)) {
                snprintf(msg, msgcap, "avi.weights: expected an object {outcome, dispersion, trajectory, latency, cost}");
                return ERR_CONFIG;
            }
            const char *wk;
            const json_t *wv;
            json_object_foreach((json_t *)v, wk, wv) {
                size_t i = 0;
                while (i < NCOMP && strcmp(wk, comp_names[i]) != 0)
                    i++;
                if (i == NCOMP) {
                    snprintf(msg, msgcap, "avi.weights.%.64s: unknown component (outcome, dispersion, "
                             "trajectory, latency, cost)", wk);
                    return ERR_CONFIG;
                }
                double x = json_number_value(wv);
                if (!json_is_number(wv) || !isfinite(x) || x < 0 || x > 1000) {
                    snprintf(msg, msgcap, "avi.weights.%s: expected a number from 0 to 1000", comp_names[i]);
                    return ERR_CONFIG;
                }
                set_weight(&out->weights, i, x);
            }
            double total = 0;
            for (size_t i = 0; i < NCOMP; i++)
                total += weight_field(&out->weights, i);
            if (!(total > 0)) {
                snprintf(msg, msgcap, "avi.weights: at least one weight must be above 0");
                return ERR_CONFIG;
            }
        } else if (strcmp(key, "embedding") == 0) {
            if (!json_is_string(v) && !(json_is_object(v) && json_is_string(json_object_get(v, "id")))) {
                snprintf(msg, msgcap, "avi.embedding: expected a provider id or {id, config}");
                return ERR_CONFIG;
            }
            out->embedding = v;
        } else {
            snprintf(msg, msgcap, "avi.%.64s: unknown key (target, runs, weights, embedding)", key);
            return ERR_CONFIG;
        }
    }
    return ERR_OK;
}

/* ---- the report ---- */

typedef struct driver {
    size_t test;
    uint64_t order;         /* arrival, to break ties */
    char *label, *prompt, *provider;
    avi_case c;
} driver;

typedef struct group {
    char *prompt, *provider;
    double sum;
    size_t n;
} group;

struct avi_report {
    avi_weights w;
    double wv[NCOMP];
    double target;
    int runs;
    size_t cases, failures;
    double index_sum;
    double comp_sum[NCOMP];
    size_t comp_n[NCOMP];
    double contrib[NCOMP];  /* sum over cases of each component's part of the index */
    driver heap[AVI_MAX_DRIVERS];
    size_t nheap;
    uint64_t arrivals;
    group groups[AVI_MAX_GROUPS];
    size_t ngroups, last_group;
    size_t heap_bytes;      /* strings held */
};

avi_report *avi_report_new(const avi_weights *w, double target, int runs)
{
    avi_report *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->w = w ? *w : AVI_DEFAULT_WEIGHTS;
    weight_values(&r->w, r->wv);
    r->target = isfinite(target) ? target : NAN;
    r->runs = runs;
    return r;
}

/* A copy of s (NULL = ""), at most LABEL_MAX bytes, cut on a UTF-8 boundary. */
static char *label_dup(avi_report *r, const char *s)
{
    if (!s)
        s = "";
    size_t n = strnlen(s, LABEL_MAX + 1);
    if (n > LABEL_MAX) {
        n = LABEL_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    r->heap_bytes += n + 1;
    return d;
}

static void label_free(avi_report *r, char *s)
{
    if (s) {
        r->heap_bytes -= strlen(s) + 1;
        free(s);
    }
}

/* a is worse (ranks before) b: higher index, then earlier test, then earlier arrival. */
static bool worse(const driver *a, const driver *b)
{
    if (a->c.index != b->c.index)
        return a->c.index > b->c.index;
    if (a->test != b->test)
        return a->test < b->test;
    return a->order < b->order;
}

/* Min-heap on "worse": the root is the least bad driver kept. */
static void sift_down(driver *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, rr = l + 1, m = i;
        if (l < n && worse(&h[m], &h[l]))
            m = l;
        if (rr < n && worse(&h[m], &h[rr]))
            m = rr;
        if (m == i)
            return;
        driver t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(driver *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&h[p], &h[i]))
            return;
        driver t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void keep_driver(avi_report *r, size_t test, const char *label, const char *prompt, const char *provider,
                        const avi_case *c)
{
    driver d = { .test = test, .order = r->arrivals++, .c = *c };
    if (r->nheap == AVI_MAX_DRIVERS && !worse(&d, &r->heap[0]))
        return;
    d.label = label_dup(r, label);
    d.prompt = label_dup(r, prompt);
    d.provider = label_dup(r, provider);
    if (!d.label || !d.prompt || !d.provider) {
        label_free(r, d.label);
        label_free(r, d.prompt);
        label_free(r, d.provider);
        return;
    }
    if (r->nheap < AVI_MAX_DRIVERS) {
        r->heap[r->nheap] = d;
        sift_up(r->heap, r->nheap++);
        return;
    }
    label_free(r, r->heap[0].label);
    label_free(r, r->heap[0].prompt);
    label_free(r, r->heap[0].provider);
    r->heap[0] = d;
    sift_down(r->heap, r->nheap, 0);
}

static bool same_str(const char *a, const char *b)
{
    return strncmp(a, b ? b : "", LABEL_MAX) == 0;
}

static void add_to_group(avi_report *r, const char *prompt, const char *provider, double index)
{
    group *g = NULL;
    if (r->last_group < r->ngroups && same_str(r->groups[r->last_group].prompt, prompt) &&
        same_str(r->groups[r->last_group].provider, provider)) {
        g = &r->groups[r->last_group];
    } else {
        for (size_t i = 0; i < r->ngroups && !g; i++)
            if (same_str(r->groups[i].prompt, prompt) && same_str(r->groups[i].provider, provider)) {
                g = &r->groups[i];
                r->last_group = i;
            }
    }
    if (!g) {
        if (r->ngroups == AVI_MAX_GROUPS)
            return;
        g = &r->groups[r->ngroups];
        g->prompt = label_dup(r, prompt);
        g->provider = label_dup(r, provider);
        if (!g->prompt || !g->provider) {
            label_free(r, g->prompt);
            label_free(r, g->provider);
            memset(g, 0, sizeof *g);
            return;
        }
        r->last_group = r->ngroups++;
    }
    g->sum += index;
    g->n++;
}

void avi_report_add(avi_report *r, size_t test, const char *label, const char *prompt, const char *provider,
                    const avi_case *c)
{
    if (!r || !c)
        return;
    avi_case cc = *c;
    if (!isfinite(cc.index))
        cc.index = 0;
    cc.index = cc.index < 0 ? 0 : cc.index > 100 ? 100 : cc.index;
    r->cases++;
    r->failures += cc.failures;
    r->index_sum += cc.index;
    double x[NCOMP], den = 0;
    case_values(&cc, x);
    for (int i = 0; i < NCOMP; i++)
        if (isfinite(x[i])) {
            r->comp_sum[i] += clamp01(x[i]);
            r->comp_n[i]++;
            if (r->wv[i] > 0)
                den += r->wv[i];
        }
    for (int i = 0; i < NCOMP && den > 0; i++)
        if (isfinite(x[i]) && r->wv[i] > 0)
            r->contrib[i] += 100.0 * r->wv[i] * clamp01(x[i]) / den;
    keep_driver(r, test, label, prompt, provider, &cc);
    add_to_group(r, prompt, provider, cc.index);
}

void avi_report_free(avi_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nheap; i++) {
        free(r->heap[i].label);
        free(r->heap[i].prompt);
        free(r->heap[i].provider);
    }
    for (size_t i = 0; i < r->ngroups; i++) {
        free(r->groups[i].prompt);
        free(r->groups[i].provider);
    }
    free(r);
}

size_t avi_report_footprint(const avi_report *r)
{
    return r ? sizeof *r + r->heap_bytes : 0;
}

/* ---- remedies ---- */

static const char *const advice_outcome[] = {
    "Set temperature 0 (or close to it) and a fixed seed for the calls under test.",
    "Remove ambiguity from the prompt: state the decision criteria and the expected answer format, add an example.",
    "Constrain the answer with response_format json_schema (strict: true) so every run has the shape the checks expect.",
    "If runs error: add retries with backoff, a longer timeout or a fallback provider (see the failures count).",
    NULL,
};
static const char *const advice_dispersion[] = {
    "Lower temperature (0 for deterministic tasks) or top_p, and pass a seed.",
    "Ask for a fixed structure: response_format json_schema with strict: true, or a template in the prompt.",
    "Cap the length: max_tokens, and say the expected length in the prompt.",
    "Cache answers to repeated questions (the gateway's response cache).",
    NULL,
};
static const char *const advice_trajectory[] = {
    "Set tool_choice to the function when the step is known, or \"required\" when some call must happen.",
    "Make tool descriptions clear and non-overlapping; use strict: true and enums for closed sets of argument values.",
    "Set parallel_tool_calls: false so calls come one at a time in a stable order.",
    "Use temperature 0 and a seed for agent steps that choose tools.",
    NULL,
};
static const char *const advice_latency[] = {
    "Cap output length with max_tokens; shorter answers have steadier latency.",
    "Cache repeated calls (the gateway's response cache, provider prompt caching for a shared prefix).",
    "Pin one provider and region, set timeouts, and stream when time to first token matters.",
    NULL,
};
static const char *const advice_cost[] = {
    "Cap output length with max_tokens and ask for concise answers.",
    "Cache repeated calls and keep the shared prompt prefix stable so provider prompt caching applies.",
    "Bound agent loops: a maximum number of tool turns, tool_choice where the next step is known.",
    NULL,
};
static const char *const *const advice[NCOMP] = {
    advice_outcome, advice_dispersion, advice_trajectory, advice_latency, advice_cost,
};

/* ---- JSON ---- */

/* x rounded to `digits` decimals, or null when not finite. */
static json_t *jnum(double x, int digits)
{
    if (!isfinite(x))
        return json_null();
    double f = pow(10, digits);
    double v = round(x * f) / f;
    return json_real(v == 0 ? 0.0 : v);
}

/* Sets o[key] = v. v is always consumed (as json_object_set_new does, even
 * on failure); false when v is NULL or on OOM. */
static bool put(json_t *o, const char *key, json_t *v)
{
    if (!o) {
        json_decref(v);
        return false;
    }
    return v && json_object_set_new(o, key, v) == 0;
}

/* Appends v to a, consuming v in every case; false when v is NULL or on OOM. */
static bool append(json_t *a, json_t *v)
{
    if (!a) {
        json_decref(v);
        return false;
    }
    return v && json_array_append_new(a, v) == 0;
}

/* A JSON string of a label; bytes that are not valid UTF-8 become '?'. */
static json_t *jlabel(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t len = u[i] < 0x80 ? 1 : (u[i] & 0xE0) == 0xC0 ? 2 : (u[i] & 0xF0) == 0xE0 ? 3
                   : (u[i] & 0xF8) == 0xF0 ? 4 : 0;
        bool good = len > 0 && i + len <= n;
        for (size_t k = 1; good && k < len; k++)
            good = (u[i + k] & 0xC0) == 0x80;
        if (good && len > 1) {
            memcpy(copy + i, s + i, len);
            json_t *probe = json_stringn(copy + i, len); /* overlong forms and surrogates */
            good = probe != NULL;
            json_decref(probe);
        }
        if (!good) {
            copy[i++] = '?';
        } else {
            memcpy(copy + i, s + i, len);
            i += len;
        }
    }
    copy[n] = '\0';
    j = json_string(copy);
    free(copy);
    return j;
}

static json_t *components_of(const avi_case *c)
{
    json_t *o = json_object();
    double x[NCOMP];
    case_values(c, x);
    for (int i = 0; o && i < NCOMP; i++)
        if (!put(o, comp_names[i], jnum(x[i], 4))) {
            json_decref(o);
            return NULL;
        }
    return o;
}

/* The component with the largest weighted part of the case's index, or -1. */
static int top_component(const avi_report *r, const avi_case *c)
{
    double x[NCOMP], best = 0;
    int top = -1;
    case_values(c, x);
    for (int i = 0; i < NCOMP; i++)
        if (isfinite(x[i]) && r->wv[i] * x[i] > best) {
            best = r->wv[i] * x[i];
            top = i;
        }
    return top;
}

static int cmp_driver(const void *a, const void *b)
{
    const driver *x = a, *y = b;
    return worse(x, y) ? -1 : worse(y, x) ? 1 : 0;
}

static json_t *drivers_json(const avi_report *r)
{
    driver sorted[AVI_MAX_DRIVERS];
    memcpy(sorted, r->heap, r->nheap * sizeof *sorted);
    qsort(sorted, r->nheap, sizeof *sorted, cmp_driver);
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->nheap; i++) {
        const driver *d = &sorted[i];
        json_t *o = json_object();
        int top = top_component(r, &d->c);
        bool ok = o && put(o, "test", json_integer((json_int_t)d->test)) && put(o, "label", jlabel(d->label)) &&
                  put(o, "prompt", jlabel(d->prompt)) && put(o, "provider", jlabel(d->provider)) &&
                  put(o, "index", jnum(d->c.index, 2)) &&
                  put(o, "top_component", top >= 0 ? json_string(comp_names[top]) : json_null()) &&
                  put(o, "runs", json_integer((json_int_t)d->c.runs)) &&
                  put(o, "failures", json_integer((json_int_t)d->c.failures)) &&
                  put(o, "components", components_of(&d->c));
        if (!ok) {
            json_decref(o);
            json_decref(a);
            return NULL;
        }
        if (!append(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The components' shares of the suite's index, in [0,1] (all 0 when the index is 0). */
static void shares(const avi_report *r, double share[NCOMP])
{
    double total = 0;
    for (int i = 0; i < NCOMP; i++)
        total += r->contrib[i];
    for (int i = 0; i < NCOMP; i++)
        share[i] = total > 0 ? r->contrib[i] / total : 0;
}

static json_t *remedies_json(const avi_report *r, const double share[NCOMP])
{
    int order[NCOMP], n = 0;
    for (int i = 0; i < NCOMP; i++)
        if (share[i] >= SHARE_MIN)
            order[n++] = i;
    for (int i = 1; i < n; i++)   /* insertion sort by share, descending; ties keep component order */
        for (int j = i; j > 0 && share[order[j]] > share[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        int c = order[i];
        json_t *adv = json_array();
        for (size_t j = 0; adv && advice[c][j]; j++)
            if (!append(adv, json_string(advice[c][j]))) {
                json_decref(adv);
                adv = NULL;
            }
        json_t *o = json_object();
        bool ok = put(o, "component", json_string(comp_names[c])) && put(o, "share", jnum(share[c], 4));
        if (ok)
            ok = put(o, "advice", adv);
        else
            json_decref(adv);
        if (!ok) {
            json_decref(o);
            json_decref(a);
            return NULL;
        }
        if (!append(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *groups_json(const avi_report *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->ngroups; i++) {
        const group *g = &r->groups[i];
        json_t *o = json_object();
        bool ok = o && put(o, "provider", jlabel(g->provider)) && put(o, "prompt", jlabel(g->prompt)) &&
                  put(o, "index", jnum(g->n ? g->sum / (double)g->n : 0, 2)) &&
                  put(o, "cases", json_integer((json_int_t)g->n));
        if (!ok) {
            json_decref(o);
            json_decref(a);
            return NULL;
        }
        if (!append(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *avi_report_json(const avi_report *r)
{
    if (!r)
        return NULL;
    double index = r->cases ? r->index_sum / (double)r->cases : 0;
    index = round(index * 100) / 100; /* as reported, so "met" agrees with what is shown */
    double share[NCOMP];
    shares(r, share);
    json_t *o = json_object();
    bool has_target = isfinite(r->target);
    bool ok = put(o, "index", jnum(index, 2)) && put(o, "target", has_target ? jnum(r->target, 4) : json_null()) &&
              put(o, "met", has_target ? json_boolean(index <= r->target) : json_null()) &&
              put(o, "runs", json_integer(r->runs)) && put(o, "cases", json_integer((json_int_t)r->cases)) &&
              put(o, "failures", json_integer((json_int_t)r->failures));
    json_t *weights = json_object(), *comps = json_object();
    for (int i = 0; ok && i < NCOMP; i++) {
        json_t *c = json_object();
        bool cok = put(c, "mean", r->comp_n[i] ? jnum(r->comp_sum[i] / (double)r->comp_n[i], 4) : json_null()) &&
                   put(c, "cases", json_integer((json_int_t)r->comp_n[i])) && put(c, "share", jnum(share[i], 4));
        if (!cok)
            json_decref(c);
        ok = cok && put(comps, comp_names[i], c) && put(weights, comp_names[i], jnum(r->wv[i], 6));
    }
    if (ok) {
        ok = put(o, "weights", weights);
        weights = NULL;
    }
    if (ok) {
        ok = put(o, "components", comps);
        comps = NULL;
    }
    json_decref(weights);
    json_decref(comps);
    ok = ok && put(o, "drivers", drivers_json(r)) && put(o, "remedies", remedies_json(r, share)) &&
         put(o, "per_provider", groups_json(r));
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- the terminal report ---- */

/* Prints s with control characters (terminal escapes) shown as '?'. */
static void print_clean(FILE *f, const char *s, size_t max)
{
    size_t n = 0;
    for (; s && *s && n < max; s++, n++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7F ? '?' : *s, f);
    if (s && *s)
        fputs("...", f);
}

static double num_or(const json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

void avi_report_print(FILE *f, const json_t *rep)
{
    if (!f || !json_is_object(rep))
        return;
    double index = num_or(json_object_get(rep, "index"), 0);
    const json_t *target = json_object_get(rep, "target");
    fprintf(f, "Agentic Variability Index: %.1f (0 = always the same, 100 = as variable as can be)\n", index);
    if (json_is_number(target))
        fprintf(f, "Target: %.1f  -> %s\n", json_number_value(target),
                json_is_true(json_object_get(rep, "met")) ? "met" : "NOT MET");
    fprintf(f, "%.0f cases x %.0f runs, %.0f failed calls\n\n", num_or(json_object_get(rep, "cases"), 0),
            num_or(json_object_get(rep, "runs"), 0), num_or(json_object_get(rep, "failures"), 0));

    const json_t *comps = json_object_get(rep, "components");
    const json_t *weights = json_object_get(rep, "weights");
    fprintf(f, "  %-12s %7s %7s %7s %7s\n", "component", "weight", "mean", "cases", "share");
    for (size_t i = 0; i < NCOMP; i++) {
        const json_t *c = json_object_get(comps, comp_names[i]);
        const json_t *mean = json_object_get(c, "mean");
        fprintf(f, "  %-12s %7.3f ", comp_names[i], num_or(json_object_get(weights, comp_names[i]), 0));
        if (json_is_number(mean))
            fprintf(f, "%7.3f", json_number_value(mean));
        else
            fprintf(f, "%7s", "n/a");
        fprintf(f, " %7.0f %6.1f%%\n", num_or(json_object_get(c, "cases"), 0),
                100 * num_or(json_object_get(c, "share"), 0));
    }

    const json_t *drivers = json_object_get(rep, "drivers");
    if (json_array_size(drivers) > 0) {
        fprintf(f, "\nWorst cases (index, case, prompt / provider, main component):\n");
        size_t i;
        const json_t *d;
        json_array_foreach(drivers, i, d) {
            fprintf(f, "  %6.1f  ", num_or(json_object_get(d, "index"), 0));
            print_clean(f, json_string_value(json_object_get(d, "label")), 60);
            fputs("  [", f);
            print_clean(f, json_string_value(json_object_get(d, "prompt")), 40);
            fputs(" / ", f);
            print_clean(f, json_string_value(json_object_get(d, "provider")), 40);
            fputs("]", f);
            const char *top = json_string_value(json_object_get(d, "top_component"));
            if (top)
                fprintf(f, "  %s", top);
            double fails = num_or(json_object_get(d, "failures"), 0);
            if (fails > 0)
                fprintf(f, "  (%.0f failed)", fails);
            fputc('\n', f);
        }
    }

    const json_t *groups = json_object_get(rep, "per_provider");
    if (json_array_size(groups) > 1) {
        fprintf(f, "\nBy prompt / provider:\n");
        size_t i;
        const json_t *g;
        json_array_foreach(groups, i, g) {
            fprintf(f, "  %6.1f  ", num_or(json_object_get(g, "index"), 0));
            print_clean(f, json_string_value(json_object_get(g, "prompt")), 40);
            fputs(" / ", f);
            print_clean(f, json_string_value(json_object_get(g, "provider")), 40);
            fprintf(f, "  (%.0f cases)\n", num_or(json_object_get(g, "cases"), 0));
        }
    }

    const json_t *remedies = json_object_get(rep, "remedies");
    if (json_array_size(remedies) > 0) {
        fprintf(f, "\nWhat drives it, and what usually helps:\n");
        size_t i, j;
        const json_t *m, *a;
        json_array_foreach(remedies, i, m) {
            fprintf(f, "  %s (%.0f%% of the index)\n", json_string_value(json_object_get(m, "component"))
                        ? json_string_value(json_object_get(m, "component")) : "?",
                    100 * num_or(json_object_get(m, "share"), 0));
            json_array_foreach(json_object_get(m, "advice"), j, a) {
                fputs("    - ", f);
                print_clean(f, json_string_value(a), 400);
                fputc('\n', f);
            }
        }
    }
}
