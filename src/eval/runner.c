/*
 * runner.c - `genaiops eval`: one libuv loop that streams a suite's tests
 * through its providers and checks the answers.
 *
 * Shape of a run:
 *   load the suite -> resolve prompts (inline, files, prompt:// from the
 *   registry) and providers (targets) -> validate every test once (a
 *   streaming pass: assertion errors are reported with file, line and key
 *   path before any call is made) -> the pump keeps up to `concurrency`
 *   jobs in flight, one job per test x prompt x provider x repeat, pulling
 *   tests from the stream as slots free up -> each job renders its prompt,
 *   looks in the response cache, calls the target (retrying 429/5xx and
 *   transport errors with backoff), runs the deterministic assertions
 *   inline, the model-graded ones as grader state machines whose model calls
 *   go through the same call path, external commands on libuv's thread
 *   pool -> the finished record goes to the summary, the outputs and the
 *   store, and the job's memory is freed.
 *
 * Memory is bounded by the jobs in flight, never by the suite's size: a
 * test's JSON lives until its last job ends. Ctrl-C stops pulling tests,
 * cancels what is in flight and writes what finished.
 */
#include "eval/runner.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/pool.h"
#include "eval/assert.h"
#include "eval/avi.h"
#include "eval/dataset.h"
#include "eval/eval.h"
#include "eval/evstore.h"
#include "eval/grader.h"
#include "eval/report.h"
#include "eval/stats.h"
#include "eval/suite.h"
#include "eval/textsim.h"
#include "http/upstream.h"
#include "observe/cost.h"
#include "prompt/registry.h"
#include "prompt/template.h"
#include "providers/anthropic.h"
#include "providers/provider.h"
#include "providers/simplay.h"
#include "providers/simulator.h"

#define MAX_ATTEMPTS 4            /* first try + 3 retries */
#define MAX_RESPONSE (8u << 20)   /* bytes of one provider response */
#define MAX_PROMPT (1u << 20)     /* bytes of one rendered prompt */
#define MAX_CONCURRENCY 512
#define CACHE_BATCH 256           /* cache writes per transaction */
#define MAX_FILTER 256            /* prompts / providers a test's filters can name */

/* ------------------------------------------------------------------ */
/* Targets: the providers of the suite (and graders)                   */
/* ------------------------------------------------------------------ */

typedef enum tkind { T_OPENAI, T_ANTHROPIC, T_SIM, T_ECHO } tkind;

typedef struct target {
    tkind kind;
    char *id, *label;
    char *key;                    /* graders: the spec they were made from (canonical JSON) */
    char *model;                  /* upstream model (sim: the mode) */
    char *embed_model;            /* for grader embedding calls */
    cfg_provider cp;              /* type, base_url, api_key, headers */
    provider_http chat, embed;    /* built once; embed.url NULL when unsupported */
    json_t *params;               /* request parameters merged into every body */
    pool *pl;
} target;

/* Request body keys a provider's config may set (promptfoo's config keys
 * that OpenAI's and Anthropic's APIs take as they are). */
static const char *const body_keys[] = {
    "temperature", "max_tokens", "max_completion_tokens", "top_p", "top_k", "seed", "stop",
    "presence_penalty", "frequency_penalty", "response_format", "tools", "tool_choice",
    "parallel_tool_calls", "logit_bias", "user", "reasoning_effort", "n",
};

static void target_free(target *t)
{
    if (!t)
        return;
    free(t->id);
    free(t->label);
    free(t->key);
    free(t->model);
    free(t->embed_model);
    json_decref(t->params);
    pool_free(t->pl);
    free(t);
}

static const char *cfg_str(const json_t *conf, const char *key)
{
    const json_t *v = conf ? json_object_get(conf, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Makes a target from a provider id and its config. msg on failure. */
static target *target_new(const char *id, const char *label, const json_t *conf, const char *server, char *msg,
                          size_t cap)
{
    target *t = calloc(1, sizeof *t);
    if (!t || !(t->pl = pool_new(0)) || !(t->params = json_object()))
        goto nomem;
    t->id = strdup(id);
    t->label = strdup(label && *label ? label : id);
    const char *model = NULL, *base = NULL, *key = NULL;
    const char *c;
    if (strncmp(id, "openai:", 7) == 0) {
        t->kind = T_OPENAI;
        model = id + 7;
        if (strncmp(model, "chat:", 5) == 0)
            model += 5;
        else if (strncmp(model, "embedding:", 10) == 0 || strncmp(model, "embeddings:", 11) == 0) {
            model = strchr(model, ':') + 1;
            t->embed_model = strdup(model);
        }
        base = getenv("OPENAI_BASE_URL");
        if (!base)
            base = getenv("OPENAI_API_BASE_URL");
        if (!base)
            base = "https://api.openai.com/v1";
        key = getenv("OPENAI_API_KEY");
    } else if (strncmp(id, "anthropic:", 10) == 0) {
        t->kind = T_ANTHROPIC;
        model = id + 10;
        if (strncmp(model, "messages:", 9) == 0)
            model += 9;
        base = getenv("ANTHROPIC_BASE_URL");
        if (!base)
            base = "https://api.anthropic.com/v1";
        key = getenv("ANTHROPIC_API_KEY");
    } else if (strncmp(id, "genaiops:", 9) == 0) {
        t->kind = T_OPENAI;
        model = id + 9;
        base = pool_printf(t->pl, "%s/v1", server ? server : "http://127.0.0.1:8080");
        key = getenv("GENAIOPS_API_KEY");
    } else if (strcmp(id, "sim") == 0 || strcmp(id, "simulator") == 0 || strncmp(id, "sim:", 4) == 0 ||
               strncmp(id, "simulator:", 10) == 0) {
        t->kind = T_SIM;
        const char *colon = strchr(id, ':');
        model = colon ? colon + 1 : "echo";
        if (strncmp(model, "chat:", 5) == 0)
            model += 5;
        if (!sim_mode_valid(model)) {
            snprintf(msg, cap, "provider '%s': the simulator has no mode '%s'", id, model);
            goto fail;
        }
    } else if (strcmp(id, "echo") == 0) {
        t->kind = T_ECHO;
        model = "echo";
    } else {
        snprintf(msg, cap,
                 "provider '%s' is not supported (use openai:chat:MODEL, anthropic:messages:MODEL, "
                 "genaiops:MODEL, sim:MODE or echo)",
                 id);
        goto fail;
    }
    if (!*model) {
        snprintf(msg, cap, "provider '%s' names no model", id);
        goto fail;
    }
    t->model = strdup(model);
    if ((c = cfg_str(conf, "apiBaseUrl")) || (c = cfg_str(conf, "apiHost")) || (c = cfg_str(conf, "baseUrl")))
        base = c;
    if ((c = cfg_str(conf, "apiKeyEnvar")))
        key = getenv(c);
    if ((c = cfg_str(conf, "apiKey")))
        key = c;
    if ((c = cfg_str(conf, "embeddingModel")))
        free(t->embed_model), t->embed_model = strdup(c);
    if (!t->id || !t->label || !t->model)
        goto nomem;
    for (size_t i = 0; conf && i < countof(body_keys); i++) {
        json_t *v = json_object_get(conf, body_keys[i]);
        if (v && json_object_set(t->params, body_keys[i], v) != 0)
            goto nomem;
    }
    json_t *pt = conf ? json_object_get(conf, "passthrough") : NULL;
    if (json_is_object(pt) && json_object_update(t->params, pt) != 0)
        goto nomem;
    if (t->kind == T_OPENAI || t->kind == T_ANTHROPIC) {
        size_t bl = strlen(base);
        while (bl > 0 && base[bl - 1] == '/')
            bl--;
        t->cp.name = t->id;
        t->cp.type = t->kind == T_ANTHROPIC ? PROVIDER_ANTHROPIC : PROVIDER_OPENAI;
        /* promptfoo's Anthropic apiBaseUrl is the host (the SDK adds /v1) */
        if (t->kind == T_ANTHROPIC && !(bl >= 3 && memcmp(base + bl - 3, "/v1", 3) == 0))
            t->cp.base_url = pool_printf(t->pl, "%.*s/v1", (int)bl, base);
        else
            t->cp.base_url = pool_strndup(t->pl, base, bl);
        t->cp.api_key = key ? pool_strdup(t->pl, key) : NULL;
        json_t *hs = conf ? json_object_get(conf, "headers") : NULL;
        if (json_is_object(hs) && json_object_size(hs) > 0) {
            t->cp.headers = pool_calloc(t->pl, sizeof *t->cp.headers * json_object_size(hs));
            const char *hk;
            json_t *hv;
            json_object_foreach(hs, hk, hv)
            {
                if (!json_is_string(hv) || !t->cp.headers)
                    continue;
                t->cp.headers[t->cp.nheaders].name = pool_strdup(t->pl, hk);
                t->cp.headers[t->cp.nheaders++].value = pool_strdup(t->pl, json_string_value(hv));
            }
        }
        if (!t->cp.base_url)
            goto nomem;
        if (strncmp(t->cp.base_url, "http://", 7) != 0 && strncmp(t->cp.base_url, "https://", 8) != 0) {
            snprintf(msg, cap, "provider '%s': apiBaseUrl '%s' is not an http(s) URL", id, t->cp.base_url);
            goto fail;
        }
        gw_endpoint ep = t->kind == T_ANTHROPIC ? EP_MESSAGES : EP_CHAT;
        if (provider_build_http(&t->cp, ep, t->model, false, t->pl, &t->chat) != ERR_OK)
            goto nomem;
        if (t->kind == T_OPENAI &&
            provider_build_http(&t->cp, EP_EMBEDDINGS, t->model, false, t->pl, &t->embed) != ERR_OK)
            goto nomem;
    }
    return t;
nomem:
    snprintf(msg, cap, "out of memory");
fail:
    target_free(t);
    return NULL;
}

/* A chat body (OpenAI's shape, consumed) as the text t's wire takes:
 * Anthropic's Messages API gets it translated, with max_tokens (required
 * there) set to dflt_max when absent. NULL with msg on failure. */
static char *wire_body(const target *t, json_t *body, long dflt_max, char *msg, size_t cap)
{
    if (!body) {
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    if (t->kind == T_ANTHROPIC) {
        xlate_err xe;
        if (!json_object_get(body, "max_tokens"))
            json_object_set_new(body, "max_tokens", json_integer(dflt_max));
        json_t *a = anthropic_from_chat_request(body, t->model, &xe);
        json_decref(body);
        if (!a) {
            snprintf(msg, cap, "%s", xe.message);
            return NULL;
        }
        body = a;
    }
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        snprintf(msg, cap, "out of memory");
    return text;
}

/* ------------------------------------------------------------------ */
/* The response cache (SQLite, keyed by SHA-256 of target + body)      */
/* ------------------------------------------------------------------ */

typedef struct cache {
    sqlite3 *db;
    sqlite3_stmt *get, *put;
    int pending;
} cache;

static void cache_close(cache *c)
{
    if (!c->db)
        return;
    if (c->pending)
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    sqlite3_finalize(c->get);
    sqlite3_finalize(c->put);
    sqlite3_close(c->db);
    memset(c, 0, sizeof *c);
}

/* Opens (creating) the cache; a cache that cannot open only warns. */
static void cache_open(cache *c, const char *path)
{
    char dflt[1100];
    if (!path) {
        if (!evstore_cache_dir(NULL, dflt, sizeof dflt - 20))
            return;
        size_t l = strlen(dflt);
        snprintf(dflt + l, sizeof dflt - l, "/eval-cache.db");
        path = dflt;
    }
    if (sqlite3_open(path, &c->db) != SQLITE_OK)
        goto fail;
    sqlite3_busy_timeout(c->db, 2000);
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE IF NOT EXISTS responses (key BLOB PRIMARY KEY, body TEXT NOT NULL,"
                     " created INTEGER NOT NULL) WITHOUT ROWID",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "SELECT body FROM responses WHERE key = ?", -1, &c->get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", -1, &c->put, NULL) !=
            SQLITE_OK)
        goto fail;
    return;
fail:
    log_write(L_WARN, NULL, "eval: response cache %s unavailable (%s); running without it", path,
              c->db ? sqlite3_errmsg(c->db) : "cannot open");
    cache_close(c);
}

/* A malloc'd copy of the cached body or NULL. */
static char *cache_get(cache *c, const unsigned char key[32], size_t *len)
{
    if (!c->db)
        return NULL;
    char *out = NULL;
    sqlite3_bind_blob(c->get, 1, key, 32, SQLITE_STATIC);
    if (sqlite3_step(c->get) == SQLITE_ROW) {
        int n = sqlite3_column_bytes(c->get, 0);
        const unsigned char *p = sqlite3_column_text(c->get, 0);
        if (p && (out = malloc((size_t)n + 1))) {
            memcpy(out, p, (size_t)n);
            out[n] = 0;
            *len = (size_t)n;
        }
    }
    sqlite3_reset(c->get);
    return out;
}

static void cache_put(cache *c, const unsigned char key[32], const char *body, size_t len)
{
    if (!c->db)
        return;
    if (c->pending == 0 && sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_blob(c->put, 1, key, 32, SQLITE_STATIC);
    sqlite3_bind_text(c->put, 2, body, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(c->put, 3, (sqlite3_int64)time(NULL));
    sqlite3_step(c->put);
    sqlite3_reset(c->put);
    if (++c->pending >= CACHE_BATCH) {
        sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
        c->pending = 0;
    }
}

/* ------------------------------------------------------------------ */
/* Run state                                                           */
/* ------------------------------------------------------------------ */

typedef struct rprompt {          /* a suite prompt, ready to render */
    char *label;
    bool chat;
    tpl *text;                    /* !chat */
    json_t *messages;             /* chat: the messages with content as written */
    tpl **contents;               /* chat: one compiled template per message (NULL = not a string) */
    size_t nmessages;
    char *ref;                    /* prompt://... it came from, or NULL */
    int version;                  /* registry version, 0 when not from the registry */
} rprompt;

typedef struct run run;
typedef struct job job;
typedef struct tcase tcase;

struct tcase {                    /* one test of the suite, shared by its jobs */
    size_t index;
    json_t *test;                 /* the merged test (owns vars) */
    const json_t *vars;
    char *description;
    ev_assert **asserts;          /* parsed; asserts[i] owned unless shared[i] */
    bool *shared;                 /* from defaultTest: owned by the run */
    size_t nasserts;
    double threshold;             /* NAN unless the test sets one */
    size_t next;                  /* next job (prompt x provider x repeat) to start */
    size_t refs;                  /* jobs started and not finished */
    json_t *grader;               /* options.provider of the test (a string or an object) or NULL */
    uint8_t *use;                 /* nprompts x ntargets: 1 = the test runs there (its prompts/providers filters) */
    size_t nuse;                  /* how many are 1 */
    char *prefix, *suffix;        /* options.prefix / options.suffix around the prompt */
    struct avi_slot *samples;     /* avi: nprompts x ntargets x repeat runs */
    size_t nsamples;
    size_t pending_embed;         /* avi: embedding calls not yet answered */
};

typedef struct avi_slot {         /* one run of a case, kept for the AVI */
    ev_verdict verdict;
    char *output;                 /* the assistant's content ("" for tool calls only) */
    json_t *tool_calls;
    double latency_ms, cost_usd;
    bool failed, set;
} avi_slot;

typedef void (*call_done_fn)(void *ud, err_code e, const char *body, size_t len, const char *msg, double ms,
                             bool cached);

typedef struct xcall {            /* one model call: a test's, or a grader's */
    run *r;
    target *t;
    bool embed;
    char *body;                   /* request body as sent (malloc) */
    size_t len;
    call_done_fn done;
    void *ud;
    buf resp;
    int status;
    long retry_after_ms;
    int attempt;
    uint64_t t0;
    bool use_cache;
    unsigned char key[32];
    upstream_call *uc;
    sim_call *sc;
    pool *simpool;
    uv_timer_t timer;             /* backoff and cache-hit delivery */
    struct xcall *prev, *next;    /* the run's list of live calls (for Ctrl-C) */
    bool timer_live;
    bool too_big;                 /* the answer passed MAX_RESPONSE */
} xcall;

typedef struct gslot {            /* one graded check of a job: an assertion, or a child of a set */
    job *j;
    size_t i;                     /* index into the job's assertions */
    size_t ci;                    /* child index in an assert-set, NO_CHILD for the assertion itself */
    const ev_assert *a;           /* what is checked */
    ev_result res;                /* its result */
    ev_grader *g;
    target *t;                    /* the grader target */
    bool embed;                   /* the call in flight is an embedding call */
    uv_work_t work;               /* command assertions */
    struct gslot *wprev, *wnext;  /* the run's list of commands queued or running */
} gslot;

#define NO_CHILD ((size_t)-1)

typedef struct setwait {          /* an assert-set with graded children */
    ev_result *res;               /* one per child */
    size_t pending;
} setwait;

struct job {
    run *r;
    tcase *tc;
    size_t prompt, provider;
    int repeat;
    char *prompt_text;            /* rendered prompt (text or messages JSON) */
    /* the answer */
    json_t *response;
    char *output;
    char *error;
    const json_t *tool_calls;
    const char *finish_reason;
    double latency_ms, cost_usd;
    long tokens_in, tokens_out;
    bool cached;
    /* checks */
    ev_result *results;
    size_t pending;               /* graded checks still running */
    gslot *slots;                 /* graded checks (nslots) */
    size_t nslots;
    setwait *sets;                /* per assertion: graded assert-sets' children */
    ev_output out;
};

struct run {
    const ev_run_opts *o;
    uv_loop_t loop;
    upstream *up;
    ev_suite *suite;
    ev_tests *tests;
    rprompt *prompts;
    size_t nprompts;
    target **targets;             /* one per suite provider */
    size_t ntargets;
    target **graders;             /* created on demand, by id */
    size_t ngraders;
    json_t *default_grader;       /* defaultTest.options.provider or genaiops.grader, or NULL */
    json_t *default_vars;         /* defaultTest.vars or NULL */
    ev_assert **default_asserts;
    size_t ndefault;
    json_t *default_options;      /* defaultTest.options or NULL */
    double default_threshold;
    pricing *prices;
    cache cache;
    int concurrency, repeat;
    size_t ntests, njobs_total;
    tcase *cur;                   /* test whose jobs are being started */
    bool tests_done, stopping, failed_setup;
    size_t inflight;              /* jobs */
    size_t done, passed, failed, errors, retries, cache_hits, retry_notes;
    bool no_cache;                /* --no-cache or evaluateOptions.cache: false */
    const char *const *outs;      /* the output paths (-o or outputPath), parallel to reports */
    xcall *calls;                 /* live calls */
    gslot *works;                 /* command checks queued or running (Ctrl-C cancels the queued) */
    ev_stats *stats;
    ev_report **reports;
    size_t nreports;
    evstore_run *store;
    avi_options aopt;             /* avi mode */
    avi_report *avi;
    target *avi_embed;            /* embedding dispersion, or NULL (lexical) */
    uint64_t simseq;
    const sim_options *sim;       /* the config's simulator provider's options, or NULL (defaults) */
    uint64_t started_ns;
    uv_timer_t progress;
    uv_signal_t sigint;
    uv_idle_t pumper;             /* starts the next jobs once per loop turn (pump_soon) */
    int progress_mode;
    uint64_t last_line_ns;
    char run_id[33];
    char err[1024];               /* the first run-level error */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void PRINTF_LIKE(2, 3) run_error(run *r, const char *fmt, ...)
{
    if (r->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
}

static void pump(run *r);
static void pump_soon(run *r);
static void job_checked(job *j);
static void tcase_done(run *r, tcase *tc);

/* ------------------------------------------------------------------ */
/* Calls                                                               */
/* ------------------------------------------------------------------ */

static void call_unlink(xcall *c)
{
    run *r = c->r;
    if (c->prev)
        c->prev->next = c->next;
    else
        r->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void call_free_cb(uv_handle_t *h)
{
    xcall *c = h->data;
    free(c);
}

static void call_free(xcall *c)
{
    call_unlink(c);
    free(c->body);
    buf_free(&c->resp);
    pool_free(c->simpool);
    c->simpool = NULL;
    c->timer.data = c;
    uv_close((uv_handle_t *)&c->timer, call_free_cb);
}

static void call_finish(xcall *c, err_code e, const char *msg)
{
    double ms = c->t0 ? (double)(now_ns() - c->t0) / 1e6 : NAN;
    c->done(c->ud, e, c->resp.p ? c->resp.p : "", c->resp.len, msg, ms, false);
    call_free(c);
}

static void call_attempt(xcall *c);

static void on_retry_timer(uv_timer_t *tm)
{
    xcall *c = tm->data;
    call_attempt(c);
}

static bool retryable(int status)
{
    return status == 429 || status == 408 || status >= 500;
}

/* Decides between a retry and the end after a failed attempt. */
static void call_failed(xcall *c, err_code e, const char *msg)
{
    run *r = c->r;
    if (!r->stopping && c->attempt < MAX_ATTEMPTS) {
        long ms = c->retry_after_ms > 0 ? c->retry_after_ms : 250L << (c->attempt - 1);
        if (ms > 30000)
            ms = 30000;
        ms += (long)(r->simseq++ % 50);   /* a little jitter */
        r->retries++;
        if (r->progress_mode == 0 && c->attempt == 1 && r->retry_notes < 5)
            fprintf(stderr, "eval: %s: %s; retrying (up to %d times)%s\n", c->t->label, msg, MAX_ATTEMPTS - 1,
                    ++r->retry_notes == 5 ? " (further retries are counted, not shown)" : "");
        buf_reset(&c->resp);
        c->status = 0;
        c->retry_after_ms = 0;
        uv_timer_start(&c->timer, on_retry_timer, (uint64_t)ms, 0);
        return;
    }
    char m[512];
    if (c->attempt > 1)
        snprintf(m, sizeof m, "%s (after %d attempts)", msg, c->attempt);
    else
        snprintf(m, sizeof m, "%s", msg);
    call_finish(c, e, m);
}

static int on_head(void *ud, int status, const upstream_header *h, size_t nh)
{
    xcall *c = ud;
    c->status = status;
    for (size_t i = 0; i < nh; i++)
        if (sv_ieq_cstr(h[i].name, "retry-after") && h[i].value.len > 0 && h[i].value.len < 8) {
            char tmp[8];
            memcpy(tmp, h[i].value.p, h[i].value.len);
            tmp[h[i].value.len] = 0;
            long s = strtol(tmp, NULL, 10);
            if (s > 0)
                c->retry_after_ms = s * 1000;
        }
    return 0;
}

static int on_data(void *ud, const char *p, size_t n)
{
    xcall *c = ud;
    if (buf_append(&c->resp, p, n) == ERR_OK)
        return UPSTREAM_CONTINUE;
    c->too_big = true;
    return UPSTREAM_ABORT;
}

static void on_done(void *ud, err_code e, const char *msg)
{
    xcall *c = ud;
    c->uc = NULL;
    c->sc = NULL;
    if (c->r->stopping && e == ERR_CANCELED) {
        call_finish(c, ERR_CANCELED, "interrupted");
        return;
    }
    if (c->too_big) { /* asking again would get the same answer */
        char m[160];
        snprintf(m, sizeof m, "the answer of %s is larger than %u MiB", c->t->label, MAX_RESPONSE >> 20);
        call_finish(c, ERR_TOOBIG, m);
        return;
    }
    if (e != ERR_OK) {
        call_failed(c, e, msg ? msg : err_message(e));
        return;
    }
    if (c->status < 200 || c->status > 299) {
        char m[400];
        /* the provider's error message, when it sent OpenAI's or Anthropic's shape */
        json_t *j = json_loadb(c->resp.p ? c->resp.p : "", c->resp.len, 0, NULL);
        const json_t *em = json_object_get(json_object_get(j, "error"), "message");
        snprintf(m, sizeof m, "HTTP %d from %s%s%s", c->status, c->t->label, json_is_string(em) ? ": " : "",
                 json_is_string(em) ? json_string_value(em) : "");
        json_decref(j);
        if (retryable(c->status))
            call_failed(c, ERR_UPSTREAM, m);
        else
            call_finish(c, ERR_UPSTREAM, m);
        return;
    }
    if (c->use_cache)
        cache_put(&c->r->cache, c->key, c->resp.p ? c->resp.p : "", c->resp.len);
    call_finish(c, ERR_OK, NULL);
}

static void call_attempt(xcall *c)
{
    run *r = c->r;
    c->attempt++;
    c->t0 = now_ns();
    static const upstream_callbacks cbs = { on_head, on_data, on_done };
    err_code e;
    if (c->t->kind == T_SIM) {
        pool_free(c->simpool);
        c->simpool = pool_new(0);
        json_t *req = json_loadb(c->body, c->len, 0, NULL);
        sim_plan plan;
        e = c->simpool && req ? sim_plan_make(r->sim, c->embed ? SIM_EMBEDDINGS : SIM_CHAT, c->t->model, req,
                                              r->simseq++, c->simpool, &plan)
                              : ERR_NOMEM;
        json_decref(req);
        if (e == ERR_OK) {
            /* the plan's steps live in simpool; the plan struct itself is copied into it */
            sim_plan *kept = pool_alloc(c->simpool, sizeof *kept);
            if (!kept)
                e = ERR_NOMEM;
            else {
                *kept = plan;
                e = simplay_start(&r->loop, kept, &cbs, c, &c->sc);
            }
        }
    } else {
        const provider_http *h = c->embed ? &c->t->embed : &c->t->chat;
        upstream_request req = { .method = "POST",
                                 .url = h->url,
                                 .headers = h->headers,
                                 .body = c->body,
                                 .body_len = c->len,
                                 .connect_timeout_ms = 10000,
                                 .timeout_ms = 300000 };
        e = upstream_start(r->up, &req, &cbs, c, &c->uc);
    }
    if (e != ERR_OK)
        call_failed(c, e, err_message(e));
}

static void on_cache_hit(uv_timer_t *tm)
{
    xcall *c = tm->data;
    c->done(c->ud, ERR_OK, c->resp.p ? c->resp.p : "", c->resp.len, NULL, NAN, true);
    call_free(c);
}

/* Starts a call of t with body (taken over, malloc'd). done runs exactly
 * once, from the loop. */
static void call_start(run *r, target *t, bool embed, char *body, size_t len, bool use_cache, call_done_fn done,
                       void *ud)
{
    xcall *c = calloc(1, sizeof *c);
    if (!c) {
        free(body);
        done(ud, ERR_NOMEM, "", 0, "out of memory", NAN, false);
        return;
    }
    c->r = r;
    c->t = t;
    c->embed = embed;
    c->body = body;
    c->len = len;
    c->done = done;
    c->ud = ud;
    buf_init(&c->resp, MAX_RESPONSE);
    uv_timer_init(&r->loop, &c->timer);
    c->timer.data = c;
    c->next = r->calls;
    if (r->calls)
        r->calls->prev = c;
    r->calls = c;
    c->use_cache = use_cache && r->cache.db && t->kind != T_SIM;
    if (c->use_cache) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int n = 0;
        const char *url = embed ? t->embed.url : t->chat.url;
        if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, url, strlen(url) + 1) &&
            EVP_DigestUpdate(md, body, len) && EVP_DigestFinal_ex(md, c->key, &n) && n == 32) {
            size_t hl = 0;
            char *hit = cache_get(&r->cache, c->key, &hl);
            if (hit) {
                EVP_MD_CTX_free(md);
                r->cache_hits++;
                buf_append(&c->resp, hit, hl);
                free(hit);
                c->use_cache = false;
                uv_timer_start(&c->timer, on_cache_hit, 0, 0);
                return;
            }
        } else
            c->use_cache = false;
        EVP_MD_CTX_free(md);
    }
    call_attempt(c);
}

/* Ctrl-C: ends every live call now (their callbacks report "interrupted"). */
static void calls_cancel_all(run *r)
{
    xcall *c = r->calls;
    while (c) {
        xcall *next = c->next;
        if (c->uc) {
            upstream_cancel(c->uc);
            c->uc = NULL;
            call_finish(c, ERR_CANCELED, "interrupted");
        } else if (c->sc) {
            simplay_cancel(c->sc);
            c->sc = NULL;
            call_finish(c, ERR_CANCELED, "interrupted");
        } else if (uv_is_active((uv_handle_t *)&c->timer)) {
            uv_timer_stop(&c->timer);
            call_finish(c, ERR_CANCELED, "interrupted");
        }
        c = next;
    }
}

/* ------------------------------------------------------------------ */
/* Prompts                                                             */
/* ------------------------------------------------------------------ */

static void rprompt_clear(rprompt *p)
{
    free(p->label);
    tpl_free(p->text);
    for (size_t i = 0; i < p->nmessages; i++)
        tpl_free(p->contents ? p->contents[i] : NULL);
    free(p->contents);
    json_decref(p->messages);
    free(p->ref);
    memset(p, 0, sizeof *p);
}

static bool compile(const char *what, const char *src, tpl **out, char *msg, size_t cap)
{
    tpl_error e;
    memset(&e, 0, sizeof e);
    if (tpl_compile(src, strlen(src), out, &e) == ERR_OK)
        return true;
    snprintf(msg, cap, "%s: template error at line %d, column %d: %s", what, e.line, e.col, e.message);
    return false;
}

/* Chat messages: keeps the array, compiles each string content. */
static bool prepare_chat(rprompt *p, json_t *messages, const char *what, char *msg, size_t cap)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        snprintf(msg, cap, "%s: chat messages must be a non-empty list", what);
        json_decref(messages);
        return false;
    }
    p->chat = true;
    p->messages = messages;
    p->nmessages = json_array_size(messages);
    p->contents = calloc(p->nmessages, sizeof *p->contents);
    if (!p->contents) {
        snprintf(msg, cap, "out of memory");
        return false;
    }
    for (size_t i = 0; i < p->nmessages; i++) {
        json_t *m = json_array_get(messages, i);
        const json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
        if (!json_is_object(m) || !json_is_string(role)) {
            snprintf(msg, cap, "%s: message %zu has no role", what, i + 1);
            return false;
        }
        if (json_is_string(content)) {
            char w[300];
            snprintf(w, sizeof w, "%s, message %zu", what, i + 1);
            if (!compile(w, json_string_value(content), &p->contents[i], msg, cap))
                return false;
        }
    }
    return true;
}

/* Resolves {{> partial}} names in registry prompts: the same label, else latest. */
typedef struct partials {
    const char *url;
    const char *label;
    tpl **kept;
    size_t n, cap;
} partials;

static const tpl *resolve_partial(void *ud, const char *name, size_t len)
{
    partials *pp = ud;
    prompt_ref ref;
    memset(&ref, 0, sizeof ref);
    if (len > PROMPT_NAME_MAX || !pp->url)
        return NULL;
    memcpy(ref.name, name, len);
    json_t *v = NULL;
    query_error qe;
    if (pp->label && *pp->label) {
        snprintf(ref.label, sizeof ref.label, "%s", pp->label);
        if (prompt_get(pp->url, &ref, &v, &qe) != ERR_OK)
            v = NULL;
    }
    ref.label[0] = 0;
    if (!v && prompt_get(pp->url, &ref, &v, &qe) != ERR_OK)
        return NULL;
    const json_t *t = json_object_get(v, "template");
    tpl *out = NULL;
    if (json_is_string(t) && pp->n < pp->cap) {
        tpl_error e;
        if (tpl_compile(json_string_value(t), json_string_length(t), &out, &e) == ERR_OK)
            pp->kept[pp->n++] = out;
    }
    json_decref(v);
    return out;
}

static bool prepare_prompt(run *r, const ev_prompt *sp, size_t i, rprompt *p, char *msg, size_t cap)
{
    char what[300];
    snprintf(what, sizeof what, "prompts[%zu]", i);
    p->label = strdup(sp->label ? sp->label : sp->id ? sp->id : sp->raw ? sp->raw : sp->ref ? sp->ref : "prompt");
    if (!p->label) {
        snprintf(msg, cap, "out of memory");
        return false;
    }
    if (strlen(p->label) > 60) { /* a long inline prompt labels itself by its start */
        memcpy(p->label + 57, "...", 4);
    }
    if (sp->ref) {
        p->ref = strdup(sp->ref);
        if (!r->o->store_url) {
            snprintf(msg, cap, "%s: prompt://%s needs the store (--config or the default ./genaiops.db)", what,
                     sp->ref);
            return false;
        }
        prompt_ref ref;
        query_error qe;
        json_t *v = NULL;
        if (!prompt_ref_parse(sp->ref, &ref, &qe) || prompt_get(r->o->store_url, &ref, &v, &qe) != ERR_OK) {
            snprintf(msg, cap, "%s: prompt://%s: %s", what, sp->ref, qe.message);
            return false;
        }
        p->version = (int)json_integer_value(json_object_get(v, "version"));
        const json_t *t = json_object_get(v, "template"), *m = json_object_get(v, "messages");
        /* partials ({{> name}}) resolve at render time: resolve_partial */
        tpl *outer = NULL;
        bool ok;
        if (json_is_string(t)) {
            ok = compile(what, json_string_value(t), &outer, msg, cap);
            p->text = outer;
        } else
            ok = prepare_chat(p, json_deep_copy(m), what, msg, cap);
        json_decref(v);
        return ok;
    }
    if (sp->chat) {
        json_error_t je;
        json_t *m = json_loads(sp->raw, 0, &je);
        if (!m) {
            snprintf(msg, cap, "%s: chat messages are not valid JSON: %s (line %d)", what, je.text, je.line);
            return false;
        }
        return prepare_chat(p, m, what, msg, cap);
    }
    return compile(what, sp->raw ? sp->raw : "", &p->text, msg, cap);
}

/* Renders prompt p with vars: the messages to send (new reference) and the
 * prompt text for the record (malloc). NULL with msg on a template error. */
static json_t *render_prompt(run *r, const rprompt *p, const tcase *tc, char **text, char *msg, size_t cap)
{
    const json_t *vars = tc->vars;
    partials pp = { r->o->store_url, NULL, NULL, 0, 0 };
    tpl *kept[16];
    pp.kept = kept;
    pp.cap = p->ref ? countof(kept) : 0;
    tpl_opts opts = { .resolve = p->ref ? resolve_partial : NULL, .ud = &pp, .lenient = true };
    buf b;
    buf_init(&b, MAX_PROMPT);
    tpl_error e;
    json_t *msgs = NULL;
    *text = NULL;
    if (!p->chat) {
        if ((tc->prefix && buf_append_str(&b, tc->prefix) != ERR_OK) ||
            tpl_render(p->text, vars, &opts, &b, &e) != ERR_OK ||
            (tc->suffix && buf_append_str(&b, tc->suffix) != ERR_OK) || buf_append(&b, "", 1) != ERR_OK) {
            snprintf(msg, cap, "rendering %s: %s", p->label, e.message);
            goto out;
        }
        /* a text prompt that renders to a JSON list of messages is sent as those messages */
        const char *s = b.p;
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
            s++;
        if (*s == '[') {
            json_t *m = json_loads(s, 0, NULL);
            if (json_is_array(m) && json_array_size(m) > 0 && json_is_object(json_array_get(m, 0)) &&
                json_is_string(json_object_get(json_array_get(m, 0), "role")))
                msgs = m;
            else
                json_decref(m);
        }
        if (!msgs)
            msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", b.p);
        *text = buf_steal(&b, NULL);
    } else {
        msgs = json_array();
        for (size_t i = 0; msgs && i < p->nmessages; i++) {
            json_t *m = json_copy(json_array_get(p->messages, i));
            if (p->contents[i]) {
                buf_reset(&b);
                if (tpl_render(p->contents[i], vars, &opts, &b, &e) != ERR_OK) {
                    snprintf(msg, cap, "rendering %s, message %zu: %s", p->label, i + 1, e.message);
                    json_decref(m);
                    json_decref(msgs);
                    msgs = NULL;
                    goto out;
                }
                json_object_set_new(m, "content", json_stringn(b.p ? b.p : "", b.len));
            }
            json_array_append_new(msgs, m);
        }
        /* prefix and suffix go around the last message's text */
        json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
        const char *lc = json_string_value(json_object_get(last, "content"));
        if (lc && (tc->prefix || tc->suffix)) {
            buf_reset(&b);
            buf_printf(&b, "%s%s%s", tc->prefix ? tc->prefix : "", lc, tc->suffix ? tc->suffix : "");
            json_object_set_new(last, "content", json_stringn(b.p ? b.p : "", b.len));
        }
        *text = msgs ? json_dumps(msgs, JSON_COMPACT) : NULL;
    }
    if (!msgs || !*text) {
        snprintf(msg, cap, "out of memory");
        json_decref(msgs);
        msgs = NULL;
        free(*text);
        *text = NULL;
    }
out:
    buf_free(&b);
    for (size_t i = 0; i < pp.n; i++)
        tpl_free(kept[i]);
    return msgs;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void tcase_free(tcase *tc)
{
    if (!tc)
        return;
    for (size_t i = 0; i < tc->nasserts; i++)
        if (!tc->shared[i])
            ev_assert_free(tc->asserts[i]);
    free(tc->asserts);
    free(tc->shared);
    free(tc->description);
    json_decref(tc->grader);
    free(tc->use);
    free(tc->prefix);
    free(tc->suffix);
    if (tc->samples)
        for (size_t i = 0; i < tc->nsamples; i++) {
            free(tc->samples[i].output);
            json_decref(tc->samples[i].tool_calls);
        }
    free(tc->samples);
    json_decref(tc->test);
    free(tc);
}

/* The id of a grader provider given as a string or {id: ...} (promptfoo
 * also allows {text: {id}, embedding: {id}}: the text one is taken). */
static const char *provider_ref_id(const json_t *v)
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_object(v)) {
        const json_t *id = json_object_get(v, "id");
        if (json_is_string(id))
            return json_string_value(id);
        return provider_ref_id(json_object_get(v, "text"));
    }
    return NULL;
}

/* A test's `prompts` and `providers` lists (promptfoo's filters: ids or
 * labels) decide where it runs; without them, everywhere. A name that
 * matches nothing is an error, as a typo would otherwise run nothing. */
static bool test_filters(run *r, tcase *tc, const json_t *test, const ev_diag *where, char *msg, size_t cap)
{
    size_t n = r->nprompts * r->ntargets;
    if (!(tc->use = malloc(n))) {
        snprintf(msg, cap, "out of memory");
        return false;
    }
    bool pok[MAX_FILTER], tok[MAX_FILTER];
    const char *const keys[2] = { "prompts", "providers" };
    size_t counts[2] = { r->nprompts, r->ntargets };
    bool *oks[2] = { pok, tok };
    for (int f = 0; f < 2; f++) {
        const json_t *list = json_object_get(test, keys[f]);
        for (size_t i = 0; i < counts[f] && i < MAX_FILTER; i++)
            oks[f][i] = list == NULL;
        if (!list)
            continue;
        if (!json_is_array(list) && !json_is_string(list)) {
            ev_diag d = *where;
            snprintf(d.msg, sizeof d.msg, "%s must be a list of %s ids or labels", keys[f], f ? "provider" : "prompt");
            ev_diag_format(&d, msg, cap);
            return false;
        }
        size_t nl = json_is_array(list) ? json_array_size(list) : 1;
        for (size_t k = 0; k < nl; k++) {
            const json_t *v = json_is_array(list) ? json_array_get(list, k) : list;
            const char *name = json_string_value(v);
            bool hit = false;
            for (size_t i = 0; name && i < counts[f] && i < MAX_FILTER; i++) {
                const char *id = f ? r->targets[i]->id : r->suite->prompts[i].id;
                const char *label = f ? r->targets[i]->label : r->prompts[i].label;
                if ((id && strcmp(id, name) == 0) || (label && strcmp(label, name) == 0))
                    oks[f][i] = hit = true;
            }
            if (!hit) {
                ev_diag d = *where;
                snprintf(d.msg, sizeof d.msg, "%s: '%.100s' names no %s of the suite", keys[f],
                         name ? name : "(not a string)", f ? "provider" : "prompt");
                ev_diag_format(&d, msg, cap);
                return false;
            }
        }
    }
    tc->nuse = 0;
    for (size_t i = 0; i < n; i++) {
        size_t pi = i / r->ntargets, ti = i % r->ntargets;
        tc->use[i] = (uint8_t)((pi >= MAX_FILTER || pok[pi]) && (ti >= MAX_FILTER || tok[ti]));
        tc->nuse += tc->use[i];
    }
    return true;
}

/* promptfoo's test-level `options` (rubricPrompt, factuality, ...; not
 * provider, which picks the grader) reach the model-graded assertions as
 * config.options. Returns spec itself (a new reference) when there is
 * nothing to add, else a copy with them added under its own. */
static json_t *with_options(const json_t *spec, const json_t *opts)
{
    if (!json_is_object(spec) || !json_is_object(opts) || json_object_size(opts) == 0)
        return json_incref((json_t *)spec);
    json_t *extra = json_deep_copy(opts);
    json_object_del(extra, "provider");
    if (json_object_size(extra) == 0) {
        json_decref(extra);
        return json_incref((json_t *)spec);
    }
    json_t *copy = json_copy((json_t *)spec);
    const json_t *cfg = json_object_get(spec, "config");
    json_t *ncfg = json_is_object(cfg) ? json_copy((json_t *)cfg) : json_object();
    const json_t *own = json_object_get(ncfg, "options");
    if (json_is_object(own))
        json_object_update(extra, (json_t *)own); /* the assertion's own win */
    json_object_set_new(ncfg, "options", extra);
    json_object_set_new(copy, "config", ncfg);
    return copy;
}

/* The first model-graded check of a (itself or a child of a set) that has
 * no grader to call: its own provider, the test's or the suite's. */
static const ev_assert *without_grader(const ev_assert *a, bool have_default)
{
    if (!ev_assert_is_graded(a) || strcmp(a->type, "command") == 0)
        return NULL;
    if (strcmp(a->type, "assert-set") == 0) {
        for (size_t k = 0; k < a->nchildren; k++) {
            const ev_assert *c = without_grader(&a->children[k], have_default);
            if (c)
                return c;
        }
        return NULL;
    }
    bool own = a->provider || (a->config && json_object_get(a->config, "provider"));
    return own || have_default ? NULL : a;
}

/* Builds a test case from the streamed test: defaultTest merged in,
 * assertions parsed. NULL with msg (file:line: path: what) on a bad test. */
static tcase *tcase_new(run *r, json_t *test, const ev_diag *where, char *msg, size_t cap)
{
    tcase *tc = calloc(1, sizeof *tc);
    json_t *opts = NULL;
    const json_t *as = json_object_get(test, "assert");
    size_t nown = json_is_array(as) ? json_array_size(as) : 0;
    if (!tc)
        goto nomem;
    tc->test = test;
    tc->threshold = NAN;
    json_t *vars = json_object_get(test, "vars");
    if (!vars) {
        vars = json_object();
        json_object_set_new(test, "vars", vars);
    }
    if (!json_is_object(vars)) {
        ev_diag d = *where;
        snprintf(d.path + strlen(d.path), sizeof d.path - strlen(d.path), ".vars");
        snprintf(d.msg, sizeof d.msg, "vars must be a mapping");
        ev_diag_format(&d, msg, cap);
        goto fail;
    }
    if (r->default_vars) { /* the test's own values win */
        const char *k;
        json_t *v;
        json_object_foreach(r->default_vars, k, v)
        {
            if (!json_object_get(vars, k))
                json_object_set(vars, k, v);
        }
    }
    tc->vars = vars;
    const json_t *desc = json_object_get(test, "description");
    if (json_is_string(desc))
        tc->description = strdup(json_string_value(desc));
    const json_t *th = json_object_get(test, "threshold");
    if (json_is_number(th))
        tc->threshold = json_number_value(th);
    else
        tc->threshold = r->default_threshold;
    json_t *gspec = json_object_get(json_object_get(test, "options"), "provider");
    if (json_is_string(gspec) || json_is_object(gspec))
        tc->grader = json_incref(gspec);
    opts = json_object();
    if (r->default_options)
        json_object_update(opts, r->default_options);
    if (json_is_object(json_object_get(test, "options")))
        json_object_update(opts, json_object_get(test, "options"));
    const json_t *pre = json_object_get(opts, "prefix"), *suf = json_object_get(opts, "suffix");
    if ((json_is_string(pre) && !(tc->prefix = strdup(json_string_value(pre)))) ||
        (json_is_string(suf) && !(tc->suffix = strdup(json_string_value(suf)))))
        goto nomem;
    if (!test_filters(r, tc, test, where, msg, cap))
        goto fail;
    if (as && !json_is_array(as)) {
        ev_diag d = *where;
        snprintf(d.path + strlen(d.path), sizeof d.path - strlen(d.path), ".assert");
        snprintf(d.msg, sizeof d.msg, "assert must be a list");
        ev_diag_format(&d, msg, cap);
        goto fail;
    }
    tc->asserts = calloc(r->ndefault + nown + 1, sizeof *tc->asserts);
    tc->shared = calloc(r->ndefault + nown + 1, sizeof *tc->shared);
    if (!tc->asserts || !tc->shared)
        goto nomem;
    if (r->avi) {
        tc->nsamples = r->nprompts * r->ntargets * (size_t)r->repeat;
        if (!(tc->samples = calloc(tc->nsamples, sizeof *tc->samples)))
            goto nomem;
    }
    for (size_t i = 0; i < r->ndefault; i++) {
        tc->asserts[tc->nasserts] = r->default_asserts[i];
        tc->shared[tc->nasserts++] = true;
    }
    for (size_t i = 0; i < nown; i++) {
        char path[200], m[300];
        snprintf(path, sizeof path, "%s.assert[%zu]", where->path, i);
        const json_t *spec = json_array_get(as, i);
        json_t *full = with_options(spec, opts);
        err_code pe = ev_assert_parse(full, path, &tc->asserts[tc->nasserts], m, sizeof m);
        json_decref(full);
        if (pe != ERR_OK) {
            ev_diag d = *where;
            int line = 0, col = 0;
            if (r->tests && ev_tests_pos(r->tests, spec, &line, &col)) {
                d.line = line;
                d.col = col;
            }
            d.path[0] = 0; /* the assertion's message names its path */
            snprintf(d.msg, sizeof d.msg, "%s", m);
            ev_diag_format(&d, msg, cap);
            goto fail;
        }
        tc->nasserts++;
    }
    for (size_t i = 0; i < tc->nasserts; i++) { /* found now, before any call is made */
        const ev_assert *g = without_grader(tc->asserts[i], tc->grader || r->default_grader);
        if (g) {
            ev_diag d = *where;
            d.path[0] = 0;
            snprintf(d.msg, sizeof d.msg,
                     "%s: %s is model-graded and has no grader: set defaultTest.options.provider (e.g. "
                     "openai:chat:gpt-4o-mini), the test's options.provider or the assertion's provider",
                     g->path, g->type);
            ev_diag_format(&d, msg, cap);
            goto fail;
        }
    }
    json_decref(opts);
    return tc;
nomem:
    snprintf(msg, cap, "out of memory");
fail:
    json_decref(opts);
    if (tc)
        tc->test = NULL;
    tcase_free(tc);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Graders                                                             */
/* ------------------------------------------------------------------ */

/* The target of a grader spec: a provider id, or {id, label, config}, or
 * promptfoo's {text: SPEC, embedding: SPEC} (the one for the call's kind).
 * Targets are made once per distinct spec. */
static target *grader_target(run *r, const json_t *spec, bool embed, char *msg, size_t cap)
{
    if (json_is_object(spec) && !json_object_get(spec, "id")) {
        const json_t *x = json_object_get(spec, embed ? "embedding" : "text");
        spec = x ? x : json_object_get(spec, "text");
    }
    const char *id = json_is_string(spec) ? json_string_value(spec) : json_string_value(json_object_get(spec, "id"));
    if (!id) {
        snprintf(msg, cap,
                 "model-graded assertions need a grader: set defaultTest.options.provider (e.g. "
                 "openai:chat:gpt-4o-mini) or the assertion's provider");
        return NULL;
    }
    char *key = json_dumps(spec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!key) {
        snprintf(msg, cap, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < r->ngraders; i++)
        if (strcmp(r->graders[i]->key, key) == 0) {
            free(key);
            return r->graders[i];
        }
    target **g = realloc(r->graders, sizeof *g * (r->ngraders + 1));
    target *t = g ? target_new(id, NULL, json_is_object(spec) ? json_object_get(spec, "config") : NULL,
                               r->o->server, msg, cap)
                  : NULL;
    if (g)
        r->graders = g;
    if (!t) {
        if (!g)
            snprintf(msg, cap, "out of memory");
        free(key);
        return NULL;
    }
    t->key = key;
    r->graders[r->ngraders++] = t;
    return t;
}

static void slot_done(gslot *s, ev_result *res);
static void grader_drive(gslot *s);
static void job_checked(job *j);

/* Parses a chat completion's answer text (content, or tool calls as JSON). */
static char *answer_text(const json_t *resp)
{
    const json_t *msg = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message");
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content))
        return strdup(json_string_value(content));
    const json_t *tc = json_object_get(msg, "tool_calls");
    if (json_is_array(tc))
        return json_dumps(tc, JSON_COMPACT);
    const json_t *text = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "text");
    if (json_is_string(text))
        return strdup(json_string_value(text));
    return NULL;
}

/* A provider's response body as an OpenAI chat completion (Anthropic's is translated). */
static json_t *parse_response(const target *t, bool embed, const char *body, size_t len, char *msg, size_t cap)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!json_is_object(j)) {
        snprintf(msg, cap, "%s sent a response that is not a JSON object (%s)", t->label, je.text);
        json_decref(j);
        return NULL;
    }
    if (t->kind == T_ANTHROPIC && !embed) {
        json_t *c = anthropic_to_chat_response(j, t->model);
        json_decref(j);
        if (!c)
            snprintf(msg, cap, "%s sent a Messages response genaiops cannot read", t->label);
        return c;
    }
    return j;
}

static void on_grader_reply(void *ud, err_code e, const char *body, size_t len, const char *msg, double ms,
                            bool cached)
{
    gslot *s = ud;
    UNUSED(ms), UNUSED(cached);
    char m[512];
    json_t *resp = NULL;
    if (e == ERR_OK && !(resp = parse_response(s->t, false, body, len, m, sizeof m)))
        e = ERR_PARSE, msg = m;
    if (s->embed) {
        s->embed = false;
        const json_t *data = json_object_get(resp, "data");
        size_t n = json_array_size(data), dim = 0;
        double **vecs = n ? calloc(n, sizeof *vecs) : NULL;
        bool ok = e == ERR_OK && n > 0 && vecs;
        for (size_t i = 0; ok && i < n; i++) {
            const json_t *emb = json_object_get(json_array_get(data, i), "embedding");
            size_t d = json_array_size(emb);
            if (!json_is_array(emb) || d == 0 || (dim && d != dim) || !(vecs[i] = malloc(sizeof(double) * d))) {
                ok = false;
                break;
            }
            dim = d;
            for (size_t k = 0; k < d; k++)
                vecs[i][k] = json_number_value(json_array_get(emb, k));
        }
        if (ok)
            ev_grader_reply_embed(s->g, ERR_OK, (const double *const *)vecs, dim, NULL);
        else
            ev_grader_reply_embed(s->g, e != ERR_OK ? e : ERR_PARSE, NULL, 0,
                                  e != ERR_OK ? msg : "embedding response without vectors");
        for (size_t i = 0; vecs && i < n; i++)
            free(vecs[i]);
        free(vecs);
    } else if (e == ERR_OK) {
        char *text = answer_text(resp);
        ev_grader_reply_chat(s->g, text ? ERR_OK : ERR_PARSE, text, text ? NULL : "judge sent no answer text");
        free(text);
    } else
        ev_grader_reply_chat(s->g, e, NULL, msg);
    json_decref(resp);
    grader_drive(s);
}

/* Runs the grader until it needs a model call (started here) or ends. */
static void grader_drive(gslot *s)
{
    job *j = s->j;
    run *r = j->r;
    ev_call call;
    ev_result res;
    memset(&res, 0, sizeof res);
    if (!ev_grader_next(s->g, &call, &res)) {
        slot_done(s, &res);
        return;
    }
    char m[512];
    if (r->stopping) {
        if (call.kind == EV_CALL_EMBED)
            ev_grader_reply_embed(s->g, ERR_CANCELED, NULL, 0, "interrupted");
        else
            ev_grader_reply_chat(s->g, ERR_CANCELED, NULL, "interrupted");
        grader_drive(s);
        return;
    }
    /* the assertion's provider (its object, kept in config, or its id), the test's, the suite's */
    const json_t *aspec = s->a->config ? json_object_get(s->a->config, "provider") : NULL;
    json_t *idspec = !aspec && call.provider ? json_string(call.provider) : NULL;
    const json_t *spec = aspec ? aspec : idspec ? idspec : j->tc->grader ? j->tc->grader : r->default_grader;
    target *t = grader_target(r, spec, call.kind == EV_CALL_EMBED, m, sizeof m);
    json_decref(idspec);
    if (t && t->kind == T_ECHO) {
        snprintf(m, sizeof m, "the echo provider cannot grade");
        t = NULL;
    }
    if (t && call.kind == EV_CALL_EMBED && t->kind == T_ANTHROPIC) {
        snprintf(m, sizeof m, "grader %s has no embeddings endpoint; give the assertion an OpenAI-compatible "
                              "provider (openai:embedding:MODEL)", t->label);
        t = NULL;
    }
    if (!t) {
        if (call.kind == EV_CALL_EMBED)
            ev_grader_reply_embed(s->g, ERR_CONFIG, NULL, 0, m);
        else
            ev_grader_reply_chat(s->g, ERR_CONFIG, NULL, m);
        grader_drive(s);
        return;
    }
    s->t = t;
    json_t *body;
    if (call.kind == EV_CALL_EMBED) {
        json_t *in = json_array();
        for (size_t i = 0; i < call.ntexts; i++)
            json_array_append_new(in, json_string(call.texts[i] ? call.texts[i] : ""));
        body = json_pack("{s:s, s:o}", "model", t->embed_model ? t->embed_model : t->model, "input", in);
        s->embed = true;
    } else {
        body = json_pack("{s:s, s:O, s:i}", "model", t->model, "messages", call.messages, "temperature", 0);
        if (body && call.json_output && t->kind == T_OPENAI)
            json_object_set_new(body, "response_format", json_pack("{s:s}", "type", "json_object"));
    }
    char *text = wire_body(t, body, 1024, m, sizeof m);
    if (!text) {
        ev_grader_reply_chat(s->g, ERR_INVAL, NULL, m);
        grader_drive(s);
        return;
    }
    call_start(r, t, call.kind == EV_CALL_EMBED, text, strlen(text), !r->no_cache, on_grader_reply, s);
}

static void command_work(uv_work_t *w)
{
    gslot *s = w->data;
    ev_command_check(s->a, &s->j->out, &s->res);
}

static void command_after(uv_work_t *w, int status)
{
    gslot *s = w->data;
    run *r = s->j->r;
    if (s->wprev)
        s->wprev->wnext = s->wnext;
    else
        r->works = s->wnext;
    if (s->wnext)
        s->wnext->wprev = s->wprev;
    if (status == UV_ECANCELED) {
        ev_result_clear(&s->res);
        s->res = (ev_result){ EV_ERROR, 0, strdup("interrupted") };
    }
    slot_done(s, NULL);
}

/* A graded check ended (res: its result, taken over; NULL = already in
 * s->res). A set's last child combines the set. */
static void slot_done(gslot *s, ev_result *res)
{
    job *j = s->j;
    if (res) {
        ev_result_clear(&s->res);
        s->res = *res;
    }
    ev_grader_free(s->g);
    s->g = NULL;
    if (s->ci == NO_CHILD) {
        ev_result_clear(&j->results[s->i]);
        j->results[s->i] = s->res;
        s->res = (ev_result){ 0 };
    } else {
        setwait *w = &j->sets[s->i];
        ev_result_clear(&w->res[s->ci]);
        w->res[s->ci] = s->res;
        s->res = (ev_result){ 0 };
        if (--w->pending == 0) {
            const ev_assert *set = j->tc->asserts[s->i];
            const ev_assert **kids = calloc(set->nchildren + 1, sizeof *kids);
            ev_result out = { EV_ERROR, 0, NULL };
            if (kids) {
                for (size_t k = 0; k < set->nchildren; k++)
                    kids[k] = &set->children[k];
                ev_assert_combine(kids, w->res, set->nchildren, set->threshold, &out);
                if (set->negate && out.verdict != EV_ERROR) {
                    out.verdict = out.verdict == EV_PASS ? EV_FAIL : EV_PASS;
                    out.score = 1 - out.score;
                }
            } else
                out.reason = strdup("out of memory");
            free(kids);
            ev_result_clear(&j->results[s->i]);
            j->results[s->i] = out;
        }
    }
    if (--j->pending == 0)
        job_checked(j);
}

/* Starts the graded check of slot s (a model-graded type or a command). */
static void slot_start(gslot *s)
{
    job *j = s->j;
    if (strcmp(s->a->type, "command") == 0) {
        run *r = j->r;
        s->work.data = s;
        if (uv_queue_work(&r->loop, &s->work, command_work, command_after) != 0) {
            slot_done(s, &(ev_result){ EV_ERROR, 0, strdup("cannot start the command") });
            return;
        }
        s->wprev = NULL;
        s->wnext = r->works;
        if (r->works)
            r->works->wprev = s;
        r->works = s;
        return;
    }
    if (ev_grader_new(s->a, &j->out, &s->g) != ERR_OK) {
        char m[300];
        snprintf(m, sizeof m, "%s: assertion type '%s' cannot be graded here", s->a->path, s->a->type);
        slot_done(s, &(ev_result){ EV_ERROR, 0, strdup(m) });
        return;
    }
    grader_drive(s);
}

/* ------------------------------------------------------------------ */
/* Jobs: one test x prompt x provider x repeat                         */
/* ------------------------------------------------------------------ */

static void job_free(job *j)
{
    tcase *tc = j->tc;
    for (size_t i = 0; i < tc->nasserts; i++) {
        ev_result_clear(&j->results[i]);
        if (j->sets && j->sets[i].res) {
            for (size_t k = 0; k < tc->asserts[i]->nchildren; k++)
                ev_result_clear(&j->sets[i].res[k]);
            free(j->sets[i].res);
        }
    }
    for (size_t i = 0; i < j->nslots; i++) {
        ev_grader_free(j->slots[i].g);
        ev_result_clear(&j->slots[i].res);
    }
    free(j->sets);
    free(j->results);
    free(j->slots);
    free(j->prompt_text);
    free(j->output);
    free(j->error);
    json_decref(j->response);
    free(j);
}

/* The record of a finished job goes to the summary, the outputs and the store. */
static void job_record(job *j, const ev_result *final)
{
    run *r = j->r;
    tcase *tc = j->tc;
    ev_assert_outcome outs[64], *ao = tc->nasserts <= countof(outs) ? outs : calloc(tc->nasserts, sizeof *ao);
    size_t na = ao && !j->error ? tc->nasserts : 0; /* a failed call ran no checks */
    for (size_t i = 0; i < na; i++) {
        const ev_assert *a = tc->asserts[i];
        ao[i] = (ev_assert_outcome){ a->type, a->negate, a->metric, a->weight, j->results[i] };
    }
    ev_record rec = {
        .test = tc->index,
        .repeat = j->repeat,
        .prompt = j->prompt,
        .provider = j->provider,
        .description = tc->description,
        .vars = tc->vars,
        .prompt_text = j->prompt_text,
        .output = j->output,
        .error = j->error ? j->error : final->verdict == EV_ERROR ? final->reason : NULL,
        .verdict = final->verdict,
        .score = final->score,
        .asserts = ao,
        .nasserts = na,
        .latency_ms = j->latency_ms,
        .cost_usd = j->cost_usd,
        .tokens_in = j->tokens_in,
        .tokens_out = j->tokens_out,
        .cached = j->cached,
    };
    ev_stats_add(r->stats, &rec);
    for (size_t i = 0; i < r->nreports; i++)
        if (r->reports[i] && ev_report_add(r->reports[i], &rec) != ERR_OK) {
            run_error(r, "writing %s failed", r->outs[i]);
            ev_report_abort(r->reports[i]);
            r->reports[i] = NULL;
        }
    if (r->store) {
        json_t *rj = ev_record_json(&rec);
        if (!rj || evstore_add(r->store, rj) != ERR_OK) {
            log_write(L_WARN, NULL, "eval: storing results failed; the run is not kept in the store");
            evstore_abort(r->store);
            r->store = NULL;
        }
        json_decref(rj);
    }
    if (ao != outs)
        free(ao);
    if (tc->samples) { /* avi: the run's outcome, answer, trajectory, latency and cost */
        avi_slot *sl = &tc->samples[(j->prompt * r->ntargets + j->provider) * (size_t)r->repeat + (size_t)j->repeat];
        const json_t *content = json_object_get(
            json_object_get(json_array_get(json_object_get(j->response, "choices"), 0), "message"), "content");
        sl->verdict = final->verdict;
        sl->failed = j->error != NULL;
        sl->output = strdup(json_is_string(content) ? json_string_value(content)
                            : j->tool_calls || !j->output ? "" : j->output);
        sl->tool_calls = j->tool_calls ? json_incref((json_t *)j->tool_calls) : NULL;
        sl->latency_ms = j->latency_ms;
        sl->cost_usd = j->cost_usd;
        sl->set = true;
    }
    r->done++;
    if (final->verdict == EV_PASS)
        r->passed++;
    else if (final->verdict == EV_FAIL)
        r->failed++;
    else
        r->errors++;
}

/* All checks of j are done: combine, record, free, go on. */
static void job_checked(job *j)
{
    run *r = j->r;
    tcase *tc = j->tc;
    ev_result final = { EV_ERROR, 0, NULL };
    if (j->error) {
        final.reason = strdup(j->error);
    } else if (tc->nasserts == 0) {
        final.verdict = EV_PASS;
        final.score = 1;
    } else {
        ev_assert_combine((const ev_assert *const *)tc->asserts, j->results, tc->nasserts, tc->threshold, &final);
    }
    bool cut = r->stopping && j->error && strcmp(j->error, "interrupted") == 0;
    for (size_t i = 0; r->stopping && !cut && i < tc->nasserts; i++)
        cut = j->results[i].verdict == EV_ERROR && j->results[i].reason &&
              strstr(j->results[i].reason, "interrupted") != NULL;
    if (!cut)
        job_record(j, &final); /* an interrupted call or check is not a result */
    ev_result_clear(&final);
    job_free(j);
    r->inflight--;
    if (--tc->refs == 0 && tc != r->cur)
        tcase_done(r, tc);
    pump_soon(r);
}

/* The answer is in (or the call failed): run the checks. */
static void job_answered(job *j)
{
    run *r = j->r;
    tcase *tc = j->tc;
    if (j->error) {
        job_checked(j);
        return;
    }
    j->out = (ev_output){
        .text = j->output ? j->output : "",
        .len = j->output ? strlen(j->output) : 0,
        .response = j->response,
        .tool_calls = j->tool_calls,
        .finish_reason = j->finish_reason,
        .prompt = j->prompt_text,
        .vars = tc->vars,
        .tools = json_object_get(r->targets[j->provider]->params, "tools"),
        .latency_ms = j->latency_ms,
        .cost_usd = j->cost_usd,
    };
    /* the deterministic checks now; graded ones become slots (a set with
     * graded children: one slot per graded child, the rest checked now) */
    size_t nslots = 0;
    for (size_t i = 0; i < tc->nasserts; i++) {
        const ev_assert *a = tc->asserts[i];
        if (!ev_assert_is_graded(a))
            ev_assert_check(a, &j->out, &j->results[i]);
        else if (strcmp(a->type, "assert-set") == 0)
            nslots += a->nchildren;
        else
            nslots++;
    }
    if (nslots && (!(j->slots = calloc(nslots, sizeof *j->slots)) ||
                   !(j->sets = calloc(tc->nasserts, sizeof *j->sets)))) {
        j->error = strdup("out of memory");
        job_checked(j);
        return;
    }
    j->pending = 1; /* held until every check has started */
    for (size_t i = 0; i < tc->nasserts; i++) {
        const ev_assert *a = tc->asserts[i];
        if (!ev_assert_is_graded(a))
            continue;
        if (strcmp(a->type, "assert-set") != 0) {
            gslot *s = &j->slots[j->nslots++];
            *s = (gslot){ .j = j, .i = i, .ci = NO_CHILD, .a = a };
            j->pending++;
            continue;
        }
        setwait *w = &j->sets[i];
        if (!(w->res = calloc(a->nchildren + 1, sizeof *w->res))) {
            j->results[i] = (ev_result){ EV_ERROR, 0, strdup("out of memory") };
            continue;
        }
        w->pending = 1;
        for (size_t k = 0; k < a->nchildren; k++) {
            const ev_assert *c = &a->children[k];
            if (!ev_assert_is_graded(c)) {
                ev_assert_check(c, &j->out, &w->res[k]);
                continue;
            }
            if (strcmp(c->type, "assert-set") == 0) {
                char m[300];
                snprintf(m, sizeof m, "%s: an assert-set inside an assert-set cannot hold model-graded checks",
                         c->path);
                w->res[k] = (ev_result){ EV_ERROR, 0, strdup(m) };
                continue;
            }
            gslot *s = &j->slots[j->nslots++];
            *s = (gslot){ .j = j, .i = i, .ci = k, .a = c };
            w->pending++;
            j->pending++;
        }
        /* the set's own hold: a set whose children were all deterministic combines here */
        gslot hold = { .j = j, .i = i, .ci = 0, .a = a };
        j->pending++;
        w->pending--;
        if (w->pending == 0) {
            hold.ci = 0;
            w->pending = 1;
            ev_result keep = w->res[0];
            hold.res = keep;
            w->res[0] = (ev_result){ 0 };
            slot_done(&hold, NULL);
        } else
            j->pending--;
    }
    size_t n = j->nslots;
    for (size_t k = 0; k < n; k++)
        slot_start(&j->slots[k]);
    if (--j->pending == 0)
        job_checked(j);
}

static long json_long(const json_t *o, const char *k1, const char *k2)
{
    const json_t *v = json_object_get(o, k1);
    if (k2)
        v = json_object_get(v, k2);
    return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

static void on_job_reply(void *ud, err_code e, const char *body, size_t len, const char *msg, double ms,
                         bool cached)
{
    job *j = ud;
    run *r = j->r;
    target *t = r->targets[j->provider];
    char m[512];
    j->latency_ms = ms;
    j->cached = cached;
    if (e != ERR_OK) {
        j->error = strdup(msg ? msg : err_message(e));
        job_answered(j);
        return;
    }
    if (!(j->response = parse_response(t, false, body, len, m, sizeof m))) {
        j->error = strdup(m);
        job_answered(j);
        return;
    }
    const json_t *choice = json_array_get(json_object_get(j->response, "choices"), 0);
    const json_t *fr = json_object_get(choice, "finish_reason");
    j->finish_reason = json_is_string(fr) ? json_string_value(fr) : NULL;
    const json_t *tc = json_object_get(json_object_get(choice, "message"), "tool_calls");
    j->tool_calls = json_is_array(tc) ? tc : NULL;
    j->output = answer_text(j->response);
    if (!j->output && !choice)
        j->error = strdup("the response has no choices");
    const json_t *usage = json_object_get(j->response, "usage");
    j->tokens_in = json_long(usage, "prompt_tokens", NULL);
    j->tokens_out = json_long(usage, "completion_tokens", NULL);
    cost_usage cu = { j->tokens_in, j->tokens_out, json_long(usage, "prompt_tokens_details", "cached_tokens"), -1,
                      json_long(usage, "completion_tokens_details", "reasoning_tokens") };
    const json_t *model = json_object_get(j->response, "model");
    double usd;
    if (t->kind != T_SIM && pricing_cost(r->prices, NULL, t->kind == T_ANTHROPIC ? "anthropic" : "openai",
                                         json_is_string(model) ? json_string_value(model) : t->model, &cu, &usd))
        j->cost_usd = usd;
    else if (t->kind == T_SIM)
        j->cost_usd = 0;
    job_answered(j);
}

/* Starts the k-th job of test tc. */
static void job_start(run *r, tcase *tc, size_t k)
{
    size_t per_prompt = r->ntargets * (size_t)r->repeat;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        run_error(r, "out of memory");
        r->stopping = true;
        return;
    }
    j->r = r;
    j->tc = tc;
    j->prompt = k / per_prompt;
    j->provider = (k / (size_t)r->repeat) % r->ntargets;
    j->repeat = (int)(k % (size_t)r->repeat);
    j->latency_ms = NAN;
    j->cost_usd = NAN;
    j->tokens_in = j->tokens_out = -1;
    j->results = calloc(tc->nasserts + 1, sizeof *j->results);
    tc->refs++;
    r->inflight++;
    if (!j->results) {
        j->error = strdup("out of memory");
        job_answered(j);
        return;
    }
    char m[512];
    target *t = r->targets[j->provider];
    json_t *msgs = render_prompt(r, &r->prompts[j->prompt], tc, &j->prompt_text, m, sizeof m);
    if (!msgs) {
        j->error = strdup(m);
        job_answered(j);
        return;
    }
    if (t->kind == T_ECHO) {
        json_decref(msgs);
        j->output = strdup(j->prompt_text);
        j->latency_ms = 0;
        j->cost_usd = 0;
        job_answered(j);
        return;
    }
    json_t *body = json_pack("{s:s, s:o}", "model", t->model, "messages", msgs);
    if (body && json_object_update(body, t->params) != 0)
        json_object_clear(body);
    char *text = wire_body(t, body, 1024, m, sizeof m);
    if (!text) {
        j->error = strdup(m);
        job_answered(j);
        return;
    }
    call_start(r, t, false, text, strlen(text), !r->no_cache && r->repeat == 1, on_job_reply, j);
}

/* ------------------------------------------------------------------ */
/* The Agentic Variability Index of a finished case                    */
/* ------------------------------------------------------------------ */

typedef struct embed_req {        /* one prompt x provider group's embedding call */
    run *r;
    tcase *tc;
    size_t group;
    double *dist;                 /* repeat x repeat, filled by the reply */
} embed_req;

/* Measures every prompt x provider group of tc and adds it to the report. */
static void avi_measure_case(run *r, tcase *tc, double *const *dists)
{
    size_t k = (size_t)r->repeat;
    avi_sample *sm = calloc(k, sizeof *sm);
    if (!sm)
        return;
    for (size_t g = 0; g < r->nprompts * r->ntargets; g++) {
        const avi_slot *sl = &tc->samples[g * k];
        size_t n = 0;
        for (size_t i = 0; i < k; i++)
            if (sl[i].set)
                sm[n++] = (avi_sample){ sl[i].verdict, sl[i].output, sl[i].tool_calls, sl[i].latency_ms,
                                        sl[i].cost_usd, sl[i].failed };
        if (n < 2 || n != k) /* an interrupted case is not measured */
            continue;
        avi_case c;
        avi_measure(sm, n, dists ? dists[g] : NULL, &r->aopt.weights, &c);
        char label[200];
        if (tc->description)
            snprintf(label, sizeof label, "%s", tc->description);
        else
            snprintf(label, sizeof label, "tests[%zu]", tc->index);
        avi_report_add(r->avi, tc->index, label, r->prompts[g / r->ntargets].label,
                       r->targets[g % r->ntargets]->label, &c);
    }
    free(sm);
}

/* Every embedding call of tc has answered: measure with the distance
 * matrices that came back (lexical for the groups whose call failed). */
static void avi_embed_finish(run *r, tcase *tc, embed_req *reqs)
{
    size_t ng = r->nprompts * r->ntargets;
    double **dists = calloc(ng, sizeof *dists);
    for (size_t g = 0; dists && g < ng; g++)
        dists[g] = reqs[g].dist;
    avi_measure_case(r, tc, dists);
    for (size_t g = 0; g < ng; g++)
        free(reqs[g].dist);
    free(dists);
    free(reqs);
    tcase_free(tc);
}

static void on_avi_embed(void *ud, err_code e, const char *body, size_t len, const char *msg, double ms, bool cached)
{
    embed_req *q = ud;
    run *r = q->r;
    tcase *tc = q->tc;
    size_t k = (size_t)r->repeat;
    UNUSED(ms), UNUSED(cached);
    char m[400];
    json_t *resp = e == ERR_OK ? parse_response(r->avi_embed, true, body, len, m, sizeof m) : NULL;
    const json_t *data = json_object_get(resp, "data");
    if (json_array_size(data) != k || !q->dist) {
        if (!r->err[0])
            log_write(L_WARN, NULL, "avi: embeddings for %s failed (%s); using lexical dispersion for it",
                      tc->description ? tc->description : "a case", e != ERR_OK ? msg : "no vectors");
        free(q->dist);
        q->dist = NULL;
    } else {
        for (size_t i = 0; i < k; i++)
            for (size_t j2 = 0; j2 < k; j2++) {
                const json_t *a = json_object_get(json_array_get(data, i), "embedding"),
                             *b = json_object_get(json_array_get(data, j2), "embedding");
                size_t dim = json_array_size(a);
                double cos = 1, *va = malloc(sizeof(double) * (dim + 1)), *vb = malloc(sizeof(double) * (dim + 1));
                bool ok = va && vb && dim > 0 && json_array_size(b) == dim;
                for (size_t d = 0; ok && d < dim; d++) {
                    va[d] = json_number_value(json_array_get(a, d));
                    vb[d] = json_number_value(json_array_get(b, d));
                }
                if (!ok || !ts_cosine(va, vb, dim, &cos))
                    cos = 1;
                q->dist[i * k + j2] = i == j2 ? 0 : MIN(1.0, MAX(0.0, 1.0 - cos));
                free(va);
                free(vb);
            }
    }
    json_decref(resp);
    r->inflight--;
    if (--tc->pending_embed == 0)
        avi_embed_finish(r, tc, q - q->group);
    pump_soon(r);
}

/* A case whose jobs have all finished: measure its variability (avi), then
 * free it. With embedding dispersion the case waits for its embedding calls. */
static void tcase_done(run *r, tcase *tc)
{
    size_t per_test = r->nprompts * r->ntargets * (size_t)r->repeat;
    if (!r->avi || r->stopping || tc->next < per_test) {
        tcase_free(tc);
        return;
    }
    if (!r->avi_embed) {
        avi_measure_case(r, tc, NULL);
        tcase_free(tc);
        return;
    }
    size_t ng = r->nprompts * r->ntargets, k = (size_t)r->repeat;
    embed_req *reqs = calloc(ng, sizeof *reqs);
    if (!reqs) {
        avi_measure_case(r, tc, NULL);
        tcase_free(tc);
        return;
    }
    tc->pending_embed = ng + 1; /* held until every call has started */
    for (size_t g = 0; g < ng; g++) {
        reqs[g] = (embed_req){ r, tc, g, calloc(k * k, sizeof(double)) };
        json_t *in = json_array();
        for (size_t i = 0; i < k; i++) {
            const avi_slot *sl = &tc->samples[g * k + i];
            const char *text = sl->output && *sl->output ? sl->output : "";
            char *calls = !*text && sl->tool_calls ? json_dumps(sl->tool_calls, JSON_COMPACT) : NULL;
            json_array_append_new(in, json_string(calls ? calls : *text ? text : " "));
            free(calls);
        }
        json_t *body = json_pack("{s:s, s:o}", "model",
                                 r->avi_embed->embed_model ? r->avi_embed->embed_model : r->avi_embed->model, "input",
                                 in);
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        r->inflight++;
        if (!text || !reqs[g].dist) {
            free(text);
            on_avi_embed(&reqs[g], ERR_NOMEM, "", 0, "out of memory", NAN, false);
            continue;
        }
        call_start(r, r->avi_embed, true, text, strlen(text), !r->no_cache, on_avi_embed, &reqs[g]);
    }
    if (--tc->pending_embed == 0) /* the hold: every call answered already */
        avi_embed_finish(r, tc, reqs);
}

/* ------------------------------------------------------------------ */
/* The pump, progress and the end of the run                          */
/* ------------------------------------------------------------------ */

static void progress_line(run *r, bool final)
{
    if (r->progress_mode < 0)
        return;
    double secs = (double)(now_ns() - r->started_ns) / 1e9;
    double rate = secs > 0 ? (double)r->done / secs : 0;
    size_t total = r->njobs_total;
    double eta = rate > 0 && total > r->done ? (double)(total - r->done) / rate : 0;
    if (r->progress_mode == 1) {
        int width = 24, fill = total ? (int)((double)r->done * width / (double)total) : 0;
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] %zu/%zu  pass %zu  fail %zu  error %zu  %.0f/s  ETA %.0fs \033[K%s", bar, r->done,
                total, r->passed, r->failed, r->errors, rate, eta, final ? "\n" : "");
    } else {
        fprintf(stderr, "eval: %zu/%zu done (pass %zu, fail %zu, error %zu), %.0f/s%s\n", r->done, total, r->passed,
                r->failed, r->errors, rate, final ? "" : "");
    }
    fflush(stderr);
}

static void on_progress(uv_timer_t *tm)
{
    run *r = tm->data;
    uint64_t now = now_ns();
    if (r->progress_mode == 0 && now - r->last_line_ns < 5000000000ull)
        return;
    r->last_line_ns = now;
    progress_line(r, false);
}

static void on_sigint(uv_signal_t *h, int sig)
{
    run *r = h->data;
    UNUSED(sig);
    if (r->stopping) { /* a second Ctrl-C: leave now */
        signal(SIGINT, SIG_DFL);
        raise(SIGINT);
        return;
    }
    fprintf(stderr, "\neval: interrupted; keeping the %zu results so far (Ctrl-C again to quit at once)\n", r->done);
    r->stopping = true;
    uv_signal_stop(h);
    calls_cancel_all(r);
    for (gslot *g = r->works; g; g = g->wnext) /* queued commands end as canceled; running ones finish */
        uv_cancel((uv_req_t *)&g->work);
    pump_soon(r);
}

static void close_cb(uv_handle_t *h) { UNUSED(h); }

static void on_pump(uv_idle_t *h)
{
    uv_idle_stop(h);
    pump(h->data);
}

/* Asks for a pump at the loop's next turn rather than now: a finished job
 * must not start the next one from inside its own callback, or answers
 * that come at once (the simulator, the cache) would chain within one
 * turn of the loop, which then never polls: Ctrl-C would go unseen and
 * closed handles would pile up until the end. */
static void pump_soon(run *r)
{
    if (!uv_is_closing((uv_handle_t *)&r->pumper))
        uv_idle_start(&r->pumper, on_pump);
}

/* Starts jobs while there is room, pulling tests as needed; ends the loop's
 * work once nothing is left. Re-entrant calls only mark another round. */
static void pump(run *r)
{
    static int depth;
    if (depth > 0)
        return;
    depth++;
    size_t per_test = r->nprompts * r->ntargets * (size_t)r->repeat;
    while (!r->stopping && r->inflight < (size_t)r->concurrency) {
        if (!r->cur || r->cur->next >= per_test) {
            if (r->cur && r->cur->refs == 0)
                tcase_done(r, r->cur);
            r->cur = NULL;
            if (r->tests_done)
                break;
            json_t *test = NULL;
            ev_diag where, d;
            memset(&where, 0, sizeof where);
            memset(&d, 0, sizeof d);
            size_t index = r->ntests;
            int rc = r->o->max_tests && index >= r->o->max_tests ? 0 : ev_tests_next(r->tests, &test, &where, &d);
            if (rc <= 0) {
                if (rc < 0) {
                    char m[800];
                    run_error(r, "%s", ev_diag_format(&d, m, sizeof m));
                    r->stopping = true;
                }
                r->tests_done = true;
                break;
            }
            char m[1024];
            tcase *tc = tcase_new(r, test, &where, m, sizeof m);
            if (!tc) {
                json_decref(test);
                run_error(r, "%s", m);
                r->stopping = true;
                break;
            }
            tc->index = index;
            r->ntests++;
            r->cur = tc;
        }
        tcase *tc = r->cur;
        while (tc->next < per_test && !tc->use[tc->next / (size_t)r->repeat])
            tc->next++; /* filtered out: prompts / providers of the test */
        if (tc->next < per_test)
            job_start(r, tc, tc->next++);
    }
    if (r->cur && r->cur->next >= per_test && r->cur->refs == 0) {
        tcase *done = r->cur;
        r->cur = NULL;
        tcase_done(r, done);
    }
    depth--;
    if (r->inflight == 0 && (r->tests_done || r->stopping)) {
        if (r->cur && r->cur->refs == 0) {
            tcase *done = r->cur;
            r->cur = NULL;
            tcase_done(r, done);
        }
        if (!uv_is_closing((uv_handle_t *)&r->progress)) {
            uv_close((uv_handle_t *)&r->progress, close_cb);
            uv_close((uv_handle_t *)&r->pumper, close_cb);
            uv_close((uv_handle_t *)&r->sigint, close_cb);
            upstream_close(r->up);
            r->up = NULL;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Setting up and finishing a run                                      */
/* ------------------------------------------------------------------ */

static int opt_int(const json_t *options, const char *key, int dflt)
{
    const json_t *v = options ? json_object_get(options, key) : NULL;
    return json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= 1000000
               ? (int)json_integer_value(v)
               : dflt;
}

static void rfc3339_now(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* Reads defaultTest and the suite's own keys into the run. */
static bool setup_defaults(run *r, char *msg, size_t cap)
{
    const ev_suite *s = r->suite;
    const json_t *dt = s->default_test;
    r->default_threshold = NAN;
    if (dt) {
        const json_t *v = json_object_get(dt, "vars");
        if (json_is_object(v))
            r->default_vars = json_incref((json_t *)v);
        const json_t *th = json_object_get(dt, "threshold");
        if (json_is_number(th))
            r->default_threshold = json_number_value(th);
        json_t *dopts = json_object_get(dt, "options");
        json_t *gspec = json_object_get(dopts, "provider");
        if (json_is_string(gspec) || json_is_object(gspec))
            r->default_grader = json_incref(gspec);
        if (json_is_object(dopts))
            r->default_options = json_incref(dopts);
        const json_t *as = json_object_get(dt, "assert");
        size_t n = json_array_size(as);
        if (n && !(r->default_asserts = calloc(n, sizeof *r->default_asserts)))
            goto nomem;
        for (size_t i = 0; i < n; i++) {
            char path[64], m[512];
            snprintf(path, sizeof path, "defaultTest.assert[%zu]", i);
            json_t *full = with_options(json_array_get(as, i), r->default_options);
            err_code pe = ev_assert_parse(full, path, &r->default_asserts[i], m, sizeof m);
            json_decref(full);
            if (pe != ERR_OK) {
                snprintf(msg, cap, "%s: %s", s->path, m);
                return false;
            }
            r->ndefault++;
        }
    }
    const json_t *g = s->genaiops ? json_object_get(s->genaiops, "grader") : NULL;
    if (!r->default_grader && (json_is_string(g) || json_is_object(g)))
        r->default_grader = json_incref((json_t *)g);
    return true;
nomem:
    snprintf(msg, cap, "out of memory");
    return false;
}

/* One streaming pass over every test before any call: a bad test stops the
 * run before it spends anything. Returns the number of tests, or -1. */
static long validate_tests(run *r)
{
    ev_diag d;
    memset(&d, 0, sizeof d);
    r->tests = ev_tests_open(r->suite, &d);
    char m[1024];
    if (!r->tests) {
        fprintf(stderr, "genaiops eval: %s\n", ev_diag_format(&d, m, sizeof m));
        return -1;
    }
    long n = 0, bad = 0;
    for (;;) {
        json_t *test = NULL;
        ev_diag where;
        memset(&where, 0, sizeof where);
        if (r->o->max_tests && (size_t)n >= r->o->max_tests)
            break;
        int rc = ev_tests_next(r->tests, &test, &where, &d);
        if (rc == 0)
            break;
        if (rc < 0) {
            fprintf(stderr, "genaiops eval: %s\n", ev_diag_format(&d, m, sizeof m));
            bad++;
            break;
        }
        tcase *tc = tcase_new(r, test, &where, m, sizeof m);
        if (!tc) {
            json_decref(test);
            if (bad++ < 20)
                fprintf(stderr, "genaiops eval: %s\n", m);
        } else {
            r->njobs_total += tc->nuse * (size_t)r->repeat;
            tcase_free(tc);
        }
        n++;
    }
    ev_tests_close(r->tests);
    r->tests = NULL;
    if (bad > 20)
        fprintf(stderr, "genaiops eval: ... and %ld more bad tests\n", bad - 20);
    return bad ? -1 : n;
}

static void run_free(run *r)
{
    for (size_t i = 0; i < r->nprompts; i++)
        rprompt_clear(&r->prompts[i]);
    free(r->prompts);
    for (size_t i = 0; i < r->ntargets; i++)
        target_free(r->targets[i]);
    free(r->targets);
    for (size_t i = 0; i < r->ngraders; i++)
        target_free(r->graders[i]);
    free(r->graders);
    for (size_t i = 0; i < r->ndefault; i++)
        ev_assert_free(r->default_asserts[i]);
    free(r->default_asserts);
    json_decref(r->default_grader);
    json_decref(r->default_options);
    json_decref(r->default_vars);
    for (size_t i = 0; i < r->nreports; i++)
        if (r->reports[i])
            ev_report_abort(r->reports[i]);
    free(r->reports);
    if (r->store)
        evstore_abort(r->store);
    ev_stats_free(r->stats);
    ev_tests_close(r->tests);
    ev_suite_free(r->suite);
    pricing_free(r->prices);
    cache_close(&r->cache);
    avi_report_free(r->avi);
    target_free(r->avi_embed);
}

int ev_run(const ev_run_opts *o, json_t **summary_out)
{
    run rs, *r = &rs;
    memset(r, 0, sizeof rs);
    r->o = o;
    int rc = EV_EXIT_ERROR;
    char msg[1024] = "";
    json_t *summary = NULL;
    const char **plabels = NULL, **tlabels = NULL;
    if (summary_out)
        *summary_out = NULL;
    ev_diag d;
    memset(&d, 0, sizeof d);
    if (o->store_url) { /* tests: dataset://NAME reads the store's datasets */
        dataset_use_store(o->store_url);
        ev_suite_set_dataset_resolver(dataset_resolve);
    }
    if (ev_suite_load(o->suite_path, &r->suite, &d) != ERR_OK) {
        fprintf(stderr, "genaiops eval: %s\n", ev_diag_format(&d, msg, sizeof msg));
        goto out;
    }
    const ev_suite *s = r->suite;
    if (s->nprompts == 0 || s->nproviders == 0) {
        fprintf(stderr, "genaiops eval: %s: the suite needs at least one prompt and one provider\n", s->path);
        goto out;
    }
    if (s->genaiops) { /* the suite's own keys: a typo must not silently do nothing */
        static const char *const known[] = { "grader", "avi", "gate" };
        const char *k;
        json_t *v;
        json_object_foreach(s->genaiops, k, v)
        {
            size_t i = 0;
            while (i < countof(known) && strcmp(known[i], k) != 0)
                i++;
            if (i == countof(known)) {
                fprintf(stderr, "genaiops eval: %s: genaiops.%s: unknown key (known: grader, avi, gate)\n", s->path,
                        k);
                goto out;
            }
        }
    }
    json_t *env = s->extra ? json_object_get(s->extra, "env") : NULL;
    if (env) { /* promptfoo's `env`: variables for the providers (API keys, base URLs) */
        const char *k;
        json_t *v;
        if (!json_is_object(env)) {
            fprintf(stderr, "genaiops eval: %s: env must be a mapping of names to values\n", s->path);
            goto out;
        }
        json_object_foreach(env, k, v)
        {
            char num[64];
            const char *val = json_is_string(v) ? json_string_value(v) : NULL;
            if (!val && json_is_number(v)) {
                snprintf(num, sizeof num, "%.17g", json_number_value(v));
                val = num;
            } else if (!val && json_is_boolean(v))
                val = json_is_true(v) ? "true" : "false";
            if (!val) {
                fprintf(stderr, "genaiops eval: %s: env.%s must be a string, number or boolean\n", s->path, k);
                goto out;
            }
            setenv(k, val, 1);
        }
    }
    const json_t *copt = s->options ? json_object_get(s->options, "cache") : NULL;
    r->no_cache = o->no_cache || json_is_false(copt);
    r->concurrency = o->concurrency > 0 ? o->concurrency : opt_int(s->options, "maxConcurrency", 4);
    if (r->concurrency > MAX_CONCURRENCY)
        r->concurrency = MAX_CONCURRENCY;
    r->repeat = o->repeat > 0 ? o->repeat : opt_int(s->options, "repeat", 1);
    if (!(r->prompts = calloc(s->nprompts, sizeof *r->prompts)) ||
        !(r->targets = calloc(s->nproviders, sizeof *r->targets)) ||
        !(plabels = calloc(s->nprompts, sizeof *plabels)) || !(tlabels = calloc(s->nproviders, sizeof *tlabels))) {
        fprintf(stderr, "genaiops eval: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < s->nprompts; i++, r->nprompts++) {
        if (!prepare_prompt(r, &s->prompts[i], i, &r->prompts[i], msg, sizeof msg)) {
            r->nprompts++;
            fprintf(stderr, "genaiops eval: %s: %s\n", s->path, msg);
            goto out;
        }
        plabels[i] = r->prompts[i].label;
    }
    for (size_t i = 0; i < s->nproviders; i++) {
        const ev_provider *p = &s->providers[i];
        if (!(r->targets[i] = target_new(p->id, p->label, p->config, o->server, msg, sizeof msg))) {
            fprintf(stderr, "genaiops eval: %s: providers[%zu]: %s\n", s->path, i, msg);
            goto out;
        }
        r->ntargets++;
        tlabels[i] = r->targets[i]->label;
    }
    if (!setup_defaults(r, msg, sizeof msg)) {
        fprintf(stderr, "genaiops eval: %s\n", msg);
        goto out;
    }
    if (o->avi) {
        const json_t *aj = s->genaiops ? json_object_get(s->genaiops, "avi") : NULL;
        if (avi_options_parse(aj, &r->aopt, msg, sizeof msg) != ERR_OK) {
            fprintf(stderr, "genaiops avi: %s: genaiops.avi: %s\n", s->path, msg);
            goto out;
        }
        r->repeat = o->avi_runs > 0 ? o->avi_runs : r->aopt.runs > 0 ? r->aopt.runs : 5;
        if (r->repeat < 2 || r->repeat > AVI_MAX_RUNS) {
            fprintf(stderr, "genaiops avi: runs must be 2 to %d\n", AVI_MAX_RUNS);
            goto out;
        }
        double goal = !isnan(o->avi_target) ? o->avi_target : r->aopt.target;
        const json_t *emb = r->aopt.embedding;
        const char *eid = provider_ref_id(emb);
        if (emb && !(r->avi_embed = target_new(eid ? eid : "", NULL, json_is_object(emb) ? json_object_get(emb, "config")
                                                                                          : NULL,
                                               o->server, msg, sizeof msg))) {
            fprintf(stderr, "genaiops avi: %s: genaiops.avi.embedding: %s\n", s->path, msg);
            goto out;
        }
        if (r->avi_embed && !r->avi_embed->embed.url && r->avi_embed->kind != T_SIM) {
            fprintf(stderr, "genaiops avi: %s: genaiops.avi.embedding: %s has no embeddings endpoint\n", s->path,
                    r->avi_embed->label);
            goto out;
        }
        if (!(r->avi = avi_report_new(&r->aopt.weights, goal, r->repeat))) {
            fprintf(stderr, "genaiops avi: out of memory\n");
            goto out;
        }
    }
    long ntests = validate_tests(r);
    if (ntests < 0)
        goto out;
    const char *pfile = o->cfg ? o->cfg->telemetry.pricing_file : NULL;
    if (pricing_load(pfile, &r->prices, msg, sizeof msg) != ERR_OK) {
        fprintf(stderr, "genaiops eval: %s\n", msg);
        goto out;
    }
    for (size_t i = 0; o->cfg && i < o->cfg->nproviders; i++) /* the config's simulator knobs, if it has one */
        if (o->cfg->providers[i].type == PROVIDER_SIMULATOR) {
            r->sim = &o->cfg->providers[i].sim;
            break;
        }
    if (!r->no_cache && r->repeat == 1)
        cache_open(&r->cache, o->cache_path);

    /* identity, outputs, store */
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    char started[40];
    rfc3339_now(started, sizeof started);
    snprintf(r->run_id, sizeof r->run_id, "ev-%.4s%.2s%.2s-%02x%02x%02x%02x", started, started + 5, started + 8,
             rnd[0], rnd[1], rnd[2], rnd[3]);
    const char *desc = o->description ? o->description : s->description;
    ev_report_meta meta = { r->run_id, desc, s->path, started, plabels, s->nprompts, tlabels, s->nproviders };
    /* the outputs: -o, else the suite's outputPath (a path or a list, relative to where eval runs, as
     * promptfoo has it) */
    const char *outs[16];
    size_t nout = 0;
    for (size_t i = 0; i < o->noutputs && nout < countof(outs); i++)
        outs[nout++] = o->outputs[i];
    const json_t *op = !nout && s->extra ? json_object_get(s->extra, "outputPath") : NULL;
    for (size_t i = 0; op && i < (json_is_array(op) ? json_array_size(op) : 1) && nout < countof(outs); i++) {
        const json_t *v = json_is_array(op) ? json_array_get(op, i) : op;
        if (json_is_string(v))
            outs[nout++] = json_string_value(v);
    }
    r->outs = outs;
    if (!(r->stats = ev_stats_new(plabels, s->nprompts, tlabels, s->nproviders, (size_t)ntests, r->repeat)) ||
        (nout && !(r->reports = calloc(nout, sizeof *r->reports)))) {
        fprintf(stderr, "genaiops eval: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < nout; i++, r->nreports++)
        if (!(r->reports[i] = ev_report_open(outs[i], &meta, msg, sizeof msg))) {
            fprintf(stderr, "genaiops eval: -o %s: %s\n", outs[i], msg);
            goto out;
        }
    if (o->store_url && !o->no_store) {
        json_t *pj = json_array(), *tj = json_array();
        for (size_t i = 0; i < r->nprompts; i++)
            json_array_append_new(pj, json_pack("{s:s, s:s?, s:i}", "label", r->prompts[i].label, "ref",
                                                r->prompts[i].ref, "version", r->prompts[i].version));
        for (size_t i = 0; i < r->ntargets; i++)
            json_array_append_new(tj, json_pack("{s:s, s:s}", "id", r->targets[i]->id, "label",
                                                r->targets[i]->label));
        json_t *dj = json_array();
        for (size_t i = 0; dataset_resolved(i); i++)
            json_array_append_new(dj, json_string(dataset_resolved(i)));
        json_t *rm = json_pack("{s:s, s:s?, s:s, s:s, s:o, s:o, s:o, s:i, s:I}", "id", r->run_id, "description",
                               desc, "suite", s->path, "started_at", started, "prompts", pj, "providers", tj,
                               "datasets", dj, "repeat", r->repeat, "tests", (json_int_t)ntests);
        if (!rm || evstore_begin(o->store_url, rm, &r->store, msg, sizeof msg) != ERR_OK) {
            log_write(L_WARN, NULL, "eval: the run will not be stored: %s", msg);
            r->store = NULL;
        }
        json_decref(rm);
    }

    /* the loop */
    r->tests = ev_tests_open(s, &d);
    if (!r->tests || uv_loop_init(&r->loop) != 0) {
        fprintf(stderr, "genaiops eval: %s\n", ev_diag_format(&d, msg, sizeof msg));
        goto out;
    }
    upstream_global_init();
    r->up = upstream_new(&r->loop);
    uv_timer_init(&r->loop, &r->progress);
    r->progress.data = r;
    uv_signal_init(&r->loop, &r->sigint);
    r->sigint.data = r;
    uv_idle_init(&r->loop, &r->pumper);
    r->pumper.data = r;
    uv_signal_start(&r->sigint, on_sigint, SIGINT);
    r->progress_mode = o->progress;
    r->started_ns = r->last_line_ns = now_ns();
    uv_timer_start(&r->progress, on_progress, 100, 100);
    uv_unref((uv_handle_t *)&r->progress);
    uv_unref((uv_handle_t *)&r->sigint);
    if (!r->up) {
        fprintf(stderr, "genaiops eval: cannot start the HTTP client\n");
        r->stopping = true;
    }
    pump(r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    cache_close(&r->cache);
    progress_line(r, true);

    /* the summary */
    summary = ev_stats_summary(r->stats, o->seed ? o->seed : 1);
    if (!summary) {
        fprintf(stderr, "genaiops eval: out of memory\n");
        goto out;
    }
    double secs = (double)(now_ns() - r->started_ns) / 1e9;
    json_object_set_new(summary, "run_id", json_string(r->run_id));
    json_object_set_new(summary, "status", json_string(r->err[0] ? "error" : r->stopping ? "interrupted" : "done"));
    json_object_set_new(summary, "duration_s", json_real(secs));
    json_object_set_new(summary, "retries", json_integer((json_int_t)r->retries));
    json_object_set_new(summary, "cache_hits", json_integer((json_int_t)r->cache_hits));
    if (s->genaiops && json_object_get(s->genaiops, "gate")) /* for the CLI: the suite's gate settings */
        json_object_set(summary, "gate_config", json_object_get(s->genaiops, "gate"));
    for (size_t i = 0; i < r->nreports; i++) {
        if (!r->reports[i])
            continue;
        ev_report *rep = r->reports[i];
        r->reports[i] = NULL;
        if (ev_report_close(rep, summary, msg, sizeof msg) != ERR_OK)
            run_error(r, "-o %s: %s", r->outs[i], msg);
    }
    /* the AVI report goes into the summary before it is stored, so a stored
     * AVI run keeps it (the API and the console show it) */
    json_t *avij = r->avi ? avi_report_json(r->avi) : NULL;
    if (avij) {
        json_object_set(summary, "avi", avij);
        if (o->avi_output && json_dump_file(avij, o->avi_output, JSON_INDENT(2)) != 0)
            run_error(r, "cannot write %s", o->avi_output);
    }
    if (r->store) {
        if (evstore_finish(r->store, summary, json_string_value(json_object_get(summary, "status")), msg,
                           sizeof msg) != ERR_OK)
            log_write(L_WARN, NULL, "eval: storing the run failed: %s", msg);
        r->store = NULL;
    }
    if (o->json) {
        char *text = json_dumps(summary, JSON_INDENT(2));
        if (text)
            printf("%s\n", text);
        free(text);
    } else if (avij)
        avi_report_print(stdout, avij);
    else if (o->table)
        ev_report_table(stdout, summary, &meta);
    if (r->err[0])
        fprintf(stderr, "genaiops eval: %s\n", r->err);
    if (avij) /* the index against its target decides */
        rc = r->err[0] || r->stopping ? EV_EXIT_ERROR
             : json_is_false(json_object_get(avij, "met")) ? EV_EXIT_FAILED : EV_EXIT_OK;
    else
        rc = r->err[0] || r->errors || r->stopping ? EV_EXIT_ERROR : r->failed ? EV_EXIT_FAILED : EV_EXIT_OK;
    json_decref(avij);
out:
    free(plabels);
    free(tlabels);
    run_free(r);
    if (summary_out)
        *summary_out = summary;
    else
        json_decref(summary);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Test case generation                                                */
/* ------------------------------------------------------------------ */

typedef struct gen_state {
    err_code e;
    char *answer;
    char msg[512];
    target *t;
} gen_state;

static void on_gen_reply(void *ud, err_code e, const char *body, size_t len, const char *msg, double ms, bool cached)
{
    gen_state *g = ud;
    UNUSED(ms), UNUSED(cached);
    g->e = e;
    if (e != ERR_OK) {
        snprintf(g->msg, sizeof g->msg, "%s", msg ? msg : err_message(e));
        return;
    }
    json_t *resp = parse_response(g->t, false, body, len, g->msg, sizeof g->msg);
    g->answer = resp ? answer_text(resp) : NULL;
    if (resp && !g->answer)
        snprintf(g->msg, sizeof g->msg, "the model sent no answer text");
    if (!g->answer)
        g->e = ERR_PARSE;
    json_decref(resp);
}

/* The JSON object in a model's answer (a ```json fence allowed). */
static json_t *answer_object(const char *text)
{
    const char *a = strchr(text, '{'), *b = strrchr(text, '}');
    if (!a || !b || b < a)
        return NULL;
    json_t *j = json_loadb(a, (size_t)(b - a + 1), 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static bool vars_seen(const json_t *list, const json_t *vars)
{
    size_t i;
    const json_t *t;
    json_array_foreach(list, i, t)
    {
        if (json_equal(json_object_get(t, "vars"), vars))
            return true;
    }
    return false;
}

int ev_generate(const ev_gen_opts *g)
{
    char msg[512];
    int rc = 1;
    target *t = target_new(g->provider, NULL, NULL, g->server, msg, sizeof msg);
    if (!t) {
        fprintf(stderr, "genaiops dataset generate: %s\n", msg);
        return 1;
    }
    /* the variables the seeds use, and the shape asked for */
    json_t *keys = json_object(), *props = json_object(), *required = json_array();
    size_t i;
    const json_t *seed;
    json_array_foreach(g->seed_tests, i, seed)
    {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(seed, "vars"), k, v)
        {
            if (!json_object_get(keys, k)) {
                json_object_set_new(keys, k, json_true());
                json_object_set_new(props, k, json_pack("{s:s}", "type", "string"));
                json_array_append_new(required, json_string(k));
            }
        }
    }
    int ask = g->n + (g->n / 4 > 2 ? g->n / 4 : 2); /* a few more: duplicates are dropped */
    json_t *schema = json_pack(
        "{s:s, s:{s:{s:s, s:i, s:i, s:{s:s, s:{s:{s:s}, s:{s:s, s:o, s:o, s:b}}, s:[s,s], s:b}}}, s:[s], s:b}",
        "type", "object", "properties", "tests", "type", "array", "minItems", ask, "maxItems", ask, "items", "type",
        "object", "properties", "description", "type", "string", "vars", "type", "object", "properties", props,
        "required", required, "additionalProperties", 0, "required", "description", "vars", "additionalProperties", 0,
        "required", "tests", "additionalProperties", 0);
    char *seeds_text = json_dumps(g->seed_tests, JSON_INDENT(1));
    char *vlist = json_dumps(required, JSON_COMPACT);
    buf prompt;
    buf_init(&prompt, 1u << 22);
    buf_printf(&prompt,
               "Here are %zu example test cases for an LLM application, as JSON (each has variables `vars` that "
               "fill the application's prompt):\n%s\n\nWrite %d NEW test cases in the same style: realistic, varied "
               "inputs that exercise different behaviours, including edge cases and hard cases, none a copy or "
               "paraphrase of an example. Use exactly these variables: %s. Give each a short description of what "
               "it tests.%s%s\nAnswer with only a JSON object: {\"tests\": [{\"description\": \"...\", \"vars\": "
               "{...}}, ...]}.",
               json_array_size(g->seed_tests), seeds_text ? seeds_text : "[]", ask,
               vlist ? vlist : "[]", g->instructions ? "\n" : "",
               g->instructions ? g->instructions : "");
    free(seeds_text);
    free(vlist);
    json_t *body = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s#}], s:f}", "model", t->model, "messages", "role",
                             "system", "content",
                             "You write test cases for evaluating LLM applications. You answer with JSON only.",
                             "role", "user", "content", prompt.p ? prompt.p : "", prompt.len, "temperature", 0.8);
    buf_free(&prompt);
    if (body && (t->kind == T_OPENAI || t->kind == T_SIM))
        json_object_set_new(body, "response_format",
                            json_pack("{s:s, s:{s:s, s:O}}", "type", "json_schema", "json_schema", "name", "test_cases",
                                      "schema", schema));
    char *text = t->kind == T_ECHO ? NULL : wire_body(t, body, 4096, msg, sizeof msg);
    if (t->kind == T_ECHO) {
        json_decref(body);
        snprintf(msg, sizeof msg, "the echo provider cannot write test cases");
    }
    json_decref(schema);
    json_decref(keys);
    if (!text) {
        fprintf(stderr, "genaiops dataset generate: %s\n", msg);
        free(text);
        target_free(t);
        return 1;
    }
    /* one call on a loop of its own */
    ev_run_opts o = { .progress = -1, .no_cache = true };
    run rs, *r = &rs;
    memset(r, 0, sizeof rs);
    r->o = &o;
    r->progress_mode = -1;
    gen_state st = { .e = ERR_CANCELED, .t = t };
    uv_loop_init(&r->loop);
    upstream_global_init();
    r->up = upstream_new(&r->loop);
    if (!r->up) {
        free(text);
        fprintf(stderr, "genaiops dataset generate: cannot start the HTTP client\n");
        goto out;
    }
    call_start(r, t, false, text, strlen(text), false, on_gen_reply, &st);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    upstream_close(r->up);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (st.e != ERR_OK) {
        fprintf(stderr, "genaiops dataset generate: %s: %s\n", t->label, st.msg);
        goto out;
    }
    json_t *ans = answer_object(st.answer), *tests = json_object_get(ans, "tests");
    if (!json_is_array(tests)) {
        fprintf(stderr, "genaiops dataset generate: the model's answer has no \"tests\" list: %.200s\n", st.answer);
        json_decref(ans);
        goto out;
    }
    json_t *kept = json_array();
    size_t dropped = 0, bad = 0;
    const json_t *tc;
    json_array_foreach(tests, i, tc)
    {
        const json_t *vars = json_object_get(tc, "vars");
        if (!json_is_object(vars) || json_object_size(vars) == 0) {
            bad++;
            continue;
        }
        if (vars_seen(g->seed_tests, vars) || vars_seen(kept, vars)) {
            dropped++;
            continue;
        }
        if (json_array_size(kept) >= (size_t)g->n)
            break;
        const json_t *d = json_object_get(tc, "description");
        json_array_append_new(kept, json_pack("{s:s?, s:O, s:{s:s, s:s, s:s}}", "description",
                                              json_is_string(d) ? json_string_value(d) : NULL, "vars", vars,
                                              "metadata", "generated_by", t->id, "from", g->seeds ? g->seeds : "",
                                              "review", "pending"));
    }
    json_decref(ans);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", g->out);
    if (json_dump_file(kept, tmp, JSON_INDENT(2)) != 0 || rename(tmp, g->out) != 0) {
        fprintf(stderr, "genaiops dataset generate: cannot write %s\n", g->out);
        unlink(tmp);
    } else {
        printf("wrote %zu test case%s to %s (dropped: %zu duplicate%s, %zu malformed); review them, then "
               "`genaiops dataset push NAME %s`\n",
               json_array_size(kept), json_array_size(kept) == 1 ? "" : "s", g->out, dropped, dropped == 1 ? "" : "s",
               bad, g->out);
        rc = 0;
    }
    json_decref(kept);
out:
    free(st.answer);
    uv_loop_close(&r->loop);
    target_free(t);
    return rc;
}
