/*
 * store_bench.c - benchmarks of the trace store (not a test: nothing here is
 * timed against a limit; it prints figures).
 *
 *   store_bench [--traces N] [--producers P] [--spans S] [--queue Q] [--db PATH]
 *     Writer throughput: P producer threads submit N traces of S spans each
 *     through trace_writer_submit as fast as the rings take them (a producer
 *     yields while the queue is full instead of dropping), then stop()
 *     flushes; prints traces/s and spans/s written. Default 200,000 traces
 *     of 5 spans from 2 producers into a temporary file.
 *
 *   store_bench --populate N [--db PATH]
 *     Fills PATH (default ./store-bench.db; appended to if it exists) with N
 *     synthetic traces - a realistic spread of models, providers, statuses,
 *     deployments, keys, streams, token counts and costs over the last 30
 *     days, a root span plus one attempt (more for failures) each - using
 *     direct batched inserts (store_put_traces, 5,000 per transaction). For
 *     the query benchmark (bench/query.sh).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "core/log.h"
#include "observe/writer.h"
#include "store/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: deterministic data for a given seed. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double rnd01(uint64_t *s) { return (double)(rnd(s) >> 11) / 9007199254740992.0; }

typedef struct model_row {
    const char *model, *provider, *type;
    int weight;
    double in_price, out_price; /* USD per token */
} model_row;

static const model_row models[] = {
    { "gpt-4o-mini", "openai", "openai", 30, 0.15e-6, 0.6e-6 },
    { "gpt-4o", "openai", "openai", 15, 2.5e-6, 10e-6 },
    { "gpt-4.1", "azure-east", "azure", 8, 2e-6, 8e-6 },
    { "o3-mini", "openai", "openai", 6, 1.1e-6, 4.4e-6 },
    { "claude-sonnet-4", "anthropic", "anthropic", 14, 3e-6, 15e-6 },
    { "claude-haiku-3.5", "anthropic", "anthropic", 12, 0.8e-6, 4e-6 },
    { "text-embedding-3-small", "openai", "openai", 10, 0.02e-6, 0 },
    { "sim/echo", "sim", "simulator", 5, 0, 0 },
};

static const char *const deployments[] = { "", "", "prod-chat", "support-bot", "batch-summaries", "search" };
static const char *const keys[] = { "team-web", "team-data", "team-support", "ci", "alice", "bob", "svc-batch" };

static const model_row *pick_model(uint64_t *s)
{
    int total = 0;
    for (size_t i = 0; i < countof(models); i++)
        total += models[i].weight;
    int r = (int)(rnd(s) % (uint64_t)total);
    for (size_t i = 0; i < countof(models); i++) {
        if (r < models[i].weight)
            return &models[i];
        r -= models[i].weight;
    }
    return &models[0];
}

/* One synthetic trace starting at start_ns with up to max_spans spans (0 =
 * a realistic number). */
static trace_rec *synth(uint64_t *s, uint64_t start_ns, int max_spans, int seq)
{
    trace_rec *t = trace_new(0);
    if (!t)
        return NULL;
    const model_row *m = pick_model(s);
    bool embed = strncmp(m->model, "text-embedding", 14) == 0;
    double p = rnd01(s);
    int status = p < 0.93 ? 200 : p < 0.96 ? 429 : p < 0.975 ? 500 : p < 0.99 ? 502 : p < 0.995 ? 504 : 400;
    bool stream = !embed && rnd01(s) < 0.35;
    uint64_t dur = embed ? 40 + rnd(s) % 200 : 300 + rnd(s) % 6000; /* ms */
    snprintf(t->request_id, sizeof t->request_id, "req_%08x%08x", (unsigned)rnd(s), (unsigned)seq);
    t->start_ns = start_ns;
    t->end_ns = start_ns + dur * 1000000ull;
    snprintf(t->operation, sizeof t->operation, "%s", embed ? "embeddings" : "chat");
    snprintf(t->endpoint, sizeof t->endpoint, "%s", embed ? "/v1/embeddings" : "/v1/chat/completions");
    snprintf(t->provider, sizeof t->provider, "%s", m->provider);
    snprintf(t->provider_type, sizeof t->provider_type, "%s", m->type);
    snprintf(t->request_model, sizeof t->request_model, "%s", m->model);
    snprintf(t->deployment, sizeof t->deployment, "%s", deployments[rnd(s) % countof(deployments)]);
    snprintf(t->api_key, sizeof t->api_key, "%s", keys[rnd(s) % countof(keys)]);
    t->status = status;
    t->stream = stream;
    if (!embed && rnd01(s) < 0.6) {
        t->has_temperature = true;
        t->temperature = (double)(rnd(s) % 11) / 10.0;
    }
    if (!embed && rnd01(s) < 0.4) {
        t->has_max_tokens = true;
        t->max_tokens = 256 << (rnd(s) % 4);
    }
    int attempts = status == 200 ? (rnd01(s) < 0.05 ? 2 : 1) : 1 + (int)(rnd(s) % 3);
    if (status == 200) {
        snprintf(t->response_model, sizeof t->response_model, "%s", m->model);
        snprintf(t->response_id, sizeof t->response_id, "resp_%016llx", (unsigned long long)rnd(s));
        snprintf(t->finish_reasons, sizeof t->finish_reasons, "%s", rnd01(s) < 0.9 ? "stop" : "length");
        t->input_tokens = 20 + (long long)(rnd(s) % 4000);
        t->output_tokens = embed ? 0 : 5 + (long long)(rnd(s) % 1200);
        if (rnd01(s) < 0.2)
            t->cache_read_tokens = t->input_tokens / 2;
        t->cost_usd = (double)t->input_tokens * m->in_price + (double)t->output_tokens * m->out_price;
        t->cost_known = true;
        if (stream)
            t->ttft_ns = (100 + rnd(s) % 900) * 1000000ull;
    } else {
        static const char *const errs[] = { "429", "500", "502", "504", "400" };
        int idx = status == 429 ? 0 : status == 500 ? 1 : status == 502 ? 2 : status == 504 ? 3 : 4;
        snprintf(t->error_type, sizeof t->error_type, "%s", errs[idx]);
    }
    t->overhead_ns = (50 + rnd(s) % 400) * 1000ull;
    int nspans = max_spans > 0 ? max_spans : 1 + attempts;
    if (nspans > TRACE_MAX_SPANS)
        nspans = TRACE_MAX_SPANS;
    t->attempts = nspans - 1 > 0 ? nspans - 1 : attempts;
    uint64_t step = (t->end_ns - t->start_ns) / (uint64_t)nspans;
    for (int k = 0; k < nspans; k++) {
        span_rec *sp = trace_add_span(t, k ? SPAN_ATTEMPT : SPAN_REQUEST, k ? start_ns + (uint64_t)(k - 1) * step
                                                                           : start_ns);
        sp->end_ns = k ? sp->start_ns + step : t->end_ns;
        if (k) {
            snprintf(sp->provider, sizeof sp->provider, "%s", m->provider);
            snprintf(sp->model, sizeof sp->model, "%s", m->model);
            snprintf(sp->server_address, sizeof sp->server_address, "api.%s.example", m->provider);
            sp->server_port = 443;
            bool last = k == nspans - 1;
            sp->http_status = last ? status : 503;
            if (!last || status != 200)
                snprintf(sp->error_type, sizeof sp->error_type, "%d", sp->http_status);
        }
    }
    return t;
}

static int populate(const char *path, long n)
{
    char url[1100], msg[512];
    snprintf(url, sizeof url, "sqlite://%s", path);
    store *st = NULL;
    if (store_open(url, &st, msg, sizeof msg) != ERR_OK) {
        fprintf(stderr, "store_bench: %s\n", msg);
        return 1;
    }
    enum { BATCH = 5000 };
    trace_rec **batch = calloc(BATCH, sizeof *batch);
    if (!batch) {
        store_close(st);
        return 1;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
    uint64_t now = trace_now_ns(), span = 30ull * 86400ull * 1000000000ull;
    double t0 = now_s();
    long done = 0, spans = 0;
    int rc = 0;
    while (done < n) {
        int k = 0;
        for (; k < BATCH && done + k < n; k++) {
            /* evenly spread over 30 days, oldest first, with jitter */
            uint64_t at = now - span + (uint64_t)((double)span * (double)(done + k) / (double)n);
            at += rnd(&seed) % 1000000000ull;
            batch[k] = synth(&seed, at, 0, (int)(done + k));
            spans += batch[k]->nspans;
        }
        err_code e = store_put_traces(st, batch, (size_t)k, msg, sizeof msg);
        for (int i = 0; i < k; i++)
            trace_free(batch[i]);
        if (e != ERR_OK) {
            fprintf(stderr, "store_bench: %s\n", msg);
            rc = 1;
            break;
        }
        done += k;
        if (done % 100000 == 0)
            fprintf(stderr, "  %ld traces...\n", done);
    }
    double el = now_s() - t0;
    store_close(st);
    free(batch);
    struct stat sb;
    double mb = stat(path, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0;
    printf("populate: %ld traces, %ld spans into %s in %.1f s (%.0f traces/s, %.0f rows/s); file %.0f MiB\n", done,
           spans, path, el, (double)done / el, (double)(done + spans) / el, mb);
    return rc;
}

typedef struct producer {
    trace_writer *w;
    int index;
    long count;
    int nspans;
    size_t qcap;  /* one ring's capacity */
    long dropped;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    uint64_t seed = 0x1234567ull * (uint64_t)(p->index + 1);
    uint64_t now = trace_now_ns();
    for (long i = 0; i < p->count; i++) {
        trace_rec *t = synth(&seed, now + (uint64_t)i * 1000, p->nspans, (int)i);
        /* As fast as the rings take them: wait while this producer's ring
         * may be full (the total depth bounds any one ring's). */
        while (trace_writer_depth(p->w) + 8 >= p->qcap) {
            struct timespec ts = { 0, 200000 }; /* 0.2 ms: do not steal the writer's CPU */
            nanosleep(&ts, NULL);
        }
        if (!trace_writer_submit(p->w, p->index, t))
            p->dropped++;
    }
    return NULL;
}

static int throughput(const char *path, long n, int np, int nspans, size_t queue)
{
    char url[1100], err[512];
    snprintf(url, sizeof url, "sqlite://%s", path);
    cfg_telemetry tc = { .queue_size = queue };
    trace_writer *w = trace_writer_start(url, &tc, np, err, sizeof err);
    if (!w) {
        fprintf(stderr, "store_bench: %s\n", err);
        return 1;
    }
    producer *p = calloc((size_t)np, sizeof *p);
    pthread_t *th = calloc((size_t)np, sizeof *th);
    if (!p || !th)
        return 1;
    double t0 = now_s();
    for (int i = 0; i < np; i++) {
        p[i] = (producer){ w, i, n / np + (i < n % np), nspans, queue / (size_t)np, 0 };
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    long dropped = 0;
    for (int i = 0; i < np; i++) {
        pthread_join(th[i], NULL);
        dropped += p[i].dropped;
    }
    double t_submit = now_s() - t0;
    uint64_t written_before_stop = trace_writer_written(w);
    uint64_t total_dropped = trace_writer_dropped(w);
    trace_writer_stop(w);
    double el = now_s() - t0;
    long written = n - (long)total_dropped;
    printf("writer: %ld traces x %d spans from %d producers (queue %zu) in %.2f s: %.0f traces/s, %.0f spans/s "
           "written (%ld dropped; submitting took %.2f s, %llu written by then)\n",
           n, nspans, np, queue, el, (double)written / el, (double)written * nspans / el, dropped, t_submit,
           (unsigned long long)written_before_stop);
    free(p);
    free(th);
    return 0;
}

static long num(const char *s, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1) {
        fprintf(stderr, "store_bench: %s must be a positive number, not '%s'\n", what, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long populate_n = 0, traces = 200000, producers = 2, spans = 5, queue = 10000;
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--populate") && v)
            populate_n = num(v, a), i++;
        else if (!strcmp(a, "--traces") && v)
            traces = num(v, a), i++;
        else if (!strcmp(a, "--producers") && v)
            producers = num(v, a), i++;
        else if (!strcmp(a, "--spans") && v)
            spans = num(v, a), i++;
        else if (!strcmp(a, "--queue") && v)
            queue = num(v, a), i++;
        else if (!strcmp(a, "--db") && v)
            db = v, i++;
        else {
            fprintf(stderr, "usage: store_bench [--traces N] [--producers P] [--spans S] [--queue Q] [--db PATH]\n"
                            "       store_bench --populate N [--db PATH]\n");
            return 2;
        }
    }
    log_set_level(L_WARN);
    if (populate_n)
        return populate(db ? db : "store-bench.db", populate_n);
    if (spans > TRACE_MAX_SPANS || producers > 64) {
        fprintf(stderr, "store_bench: at most %d spans and 64 producers\n", TRACE_MAX_SPANS);
        return 2;
    }
    char tmp[64] = "";
    if (!db) {
        snprintf(tmp, sizeof tmp, "/tmp/genaiops-store-bench-%d.db", (int)getpid());
        db = tmp;
    }
    int rc = throughput(db, traces, (int)producers, (int)spans, (size_t)queue);
    if (tmp[0]) {
        char side[80];
        unlink(tmp);
        snprintf(side, sizeof side, "%s-wal", tmp);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", tmp);
        unlink(side);
    }
    return rc;
}
