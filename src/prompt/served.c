/*
 * served.c - the gateway's snapshot of served prompts and its poller (see
 * served.h for the design).
 *
 * A snapshot owns everything it points to: the compiled versions and a
 * sorted index of (name, label) -> version, "latest" included. Lookups are
 * binary searches. Building happens on the poller thread only; the
 * published pointer is an atomic with release/acquire ordering, so a worker
 * that sees the pointer sees the finished snapshot.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/log.h"
#include "prompt/served.h"

#define GRACE_NS (10ull * 1000000000ull)

typedef struct snap_entry {
    const char *name;
    const char *label;            /* "latest" for the highest version */
    const served_prompt *p;
} snap_entry;

typedef struct snapshot {
    int64_t rev;
    served_prompt *prompts;
    size_t nprompts;
    snap_entry *entries;
    size_t nentries;
    char **labels;                /* owned label strings */
    size_t nlabels;
    struct snapshot *next;        /* on the retired list */
    uint64_t retired_ns;
} snapshot;

struct prompt_server {
    char *url;
    long poll_ms;
    _Atomic(snapshot *) cur;
    snapshot *retired;            /* poller thread only */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool failing;
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Chat completion request fields a prompt's config may set. */
static const char *const request_fields[] = {
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "frequency_penalty", "presence_penalty",
    "seed", "stop", "tools", "tool_choice", "parallel_tool_calls", "response_format", "logprobs",
    "top_logprobs", "logit_bias", "reasoning_effort", "n", "user", "metadata", "service_tier", "modalities",
    "prediction", "audio", "store", "verbosity", "web_search_options",
};

static bool is_request_field(const char *k)
{
    for (size_t i = 0; i < countof(request_fields); i++)
        if (strcmp(k, request_fields[i]) == 0)
            return true;
    return false;
}

static void prompt_clear(served_prompt *p)
{
    free(p->name);
    tpl_free(p->text);
    for (size_t i = 0; i < p->nmsgs; i++) {
        free(p->msgs[i].role);
        tpl_free(p->msgs[i].content);
        free(p->msgs[i].extra);
    }
    free(p->msgs);
    free(p->model);
    for (size_t i = 0; i < p->nparams; i++) {
        free(p->params[i].key);
        free(p->params[i].json);
    }
    free(p->params);
}

static void snapshot_free(snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nprompts; i++)
        prompt_clear(&s->prompts[i]);
    free(s->prompts);
    free(s->entries);
    for (size_t i = 0; i < s->nlabels; i++)
        free(s->labels[i]);
    free(s->labels);
    free(s);
}

static bool add_param(served_prompt *p, const char *key, json_t *v)
{
    for (size_t i = 0; i < p->nparams; i++)
        if (strcmp(p->params[i].key, key) == 0)
            return true; /* the top level wins over config.parameters */
    served_param *np = realloc(p->params, (p->nparams + 1) * sizeof *np);
    if (!np)
        return false;
    p->params = np;
    char *json = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    char *k = strdup(key);
    if (!json || !k) {
        free(json);
        free(k);
        return false;
    }
    p->params[p->nparams++] = (served_param){ k, json, strlen(k), strlen(json), json_is_number(v),
                                              json_is_number(v) ? json_number_value(v) : 0 };
    return true;
}

static bool compile(const char *src, tpl **out, const char *name, int version)
{
    tpl_error e;
    if (tpl_compile(src, strlen(src), out, &e) == ERR_OK)
        return true;
    log_warn("prompt %s version %d does not compile (%d:%d: %s); not served", name, version, e.line, e.col,
             e.message);
    return false;
}

/* One version from prompt_served's JSON into p; false when it cannot be
 * served (logged). */
static bool build_prompt(json_t *v, served_prompt *p)
{
    memset(p, 0, sizeof *p);
    const char *name = json_string_value(json_object_get(v, "name"));
    const char *type = json_string_value(json_object_get(v, "type"));
    json_int_t version = json_integer_value(json_object_get(v, "version"));
    if (!name || !type || version <= 0)
        return false;
    p->name = strdup(name);
    p->version = (int)version;
    if (!p->name)
        return false;
    if (strcmp(type, "chat") == 0) {
        p->type = PROMPT_CHAT;
        json_t *msgs = json_object_get(v, "messages");
        size_t n = json_array_size(msgs);
        p->msgs = calloc(n ? n : 1, sizeof *p->msgs);
        if (!p->msgs)
            return false;
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(msgs, i);
            const char *role = json_string_value(json_object_get(m, "role"));
            const char *content = json_string_value(json_object_get(m, "content"));
            if (!role || !content)
                return false;
            served_msg *sm = &p->msgs[p->nmsgs++];
            sm->role = strdup(role);
            if (!sm->role || !compile(content, &sm->content, name, p->version))
                return false;
            json_t *extra = json_object();
            const char *k;
            json_t *x;
            json_object_foreach(m, k, x)
            {
                if (strcmp(k, "role") != 0 && strcmp(k, "content") != 0)
                    json_object_set(extra, k, x);
            }
            if (json_object_size(extra)) {
                char *s = json_dumps(extra, JSON_COMPACT);
                /* "{...}" -> the members without the braces */
                if (s && strlen(s) >= 2) {
                    size_t l = strlen(s);
                    memmove(s, s + 1, l - 2);
                    s[l - 2] = '\0';
                }
                sm->extra = s;
            }
            json_decref(extra);
        }
    } else {
        p->type = PROMPT_TEXT;
        const char *t = json_string_value(json_object_get(v, "template"));
        if (!t || !compile(t, &p->text, name, p->version))
            return false;
    }
    json_t *cfg = json_object_get(v, "config");
    const char *model = json_string_value(json_object_get(cfg, "model"));
    if (model && *model && !(p->model = strdup(model)))
        return false;
    const char *k;
    json_t *x;
    json_object_foreach(cfg, k, x)
    {
        if (is_request_field(k) && !add_param(p, k, x))
            return false;
    }
    json_t *params = json_object_get(cfg, "parameters");
    json_object_foreach(params, k, x)
    {
        if (is_request_field(k) && !add_param(p, k, x))
            return false;
    }
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    const snap_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->label, y->label);
}

static char *keep_label(snapshot *s, const char *label)
{
    char **nl = realloc(s->labels, (s->nlabels + 1) * sizeof *nl);
    if (!nl)
        return NULL;
    s->labels = nl;
    char *c = strdup(label);
    if (c)
        s->labels[s->nlabels++] = c;
    return c;
}

static snapshot *build(int64_t rev, json_t *arr)
{
    snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->rev = rev;
    size_t n = json_array_size(arr), nlab = 0;
    for (size_t i = 0; i < n; i++)
        nlab += json_array_size(json_object_get(json_array_get(arr, i), "labels"));
    s->prompts = calloc(n ? n : 1, sizeof *s->prompts);
    s->entries = calloc(nlab ? nlab : 1, sizeof *s->entries);
    if (!s->prompts || !s->entries) {
        snapshot_free(s);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        served_prompt *p = &s->prompts[s->nprompts];
        if (!build_prompt(v, p)) {
            prompt_clear(p);
            memset(p, 0, sizeof *p);
            continue;
        }
        s->nprompts++;
        json_t *labels = json_object_get(v, "labels");
        for (size_t j = 0; j < json_array_size(labels); j++) {
            const char *l = json_string_value(json_array_get(labels, j));
            char *kept = l ? keep_label(s, l) : NULL;
            if (kept)
                s->entries[s->nentries++] = (snap_entry){ p->name, kept, p };
        }
    }
    qsort(s->entries, s->nentries, sizeof *s->entries, entry_cmp);
    return s;
}

/* One poll: reload when the revision moved. */
static void poll_once(prompt_server *ps)
{
    query_error e = { 0 };
    int64_t rev = 0;
    snapshot *cur = atomic_load_explicit(&ps->cur, memory_order_acquire);
    if (prompt_revision(ps->url, &rev, &e) != ERR_OK) {
        if (!ps->failing)
            log_warn("prompts: cannot read the registry: %s; serving the last snapshot and retrying", e.message);
        ps->failing = true;
        return;
    }
    if (cur && cur->rev == rev) {
        ps->failing = false;
        return;
    }
    json_t *arr = NULL;
    if (prompt_served(ps->url, &rev, &arr, &e) != ERR_OK) {
        if (!ps->failing)
            log_warn("prompts: cannot read the registry: %s; serving the last snapshot and retrying", e.message);
        ps->failing = true;
        return;
    }
    if (ps->failing)
        log_info("prompts: the registry is readable again");
    ps->failing = false;
    snapshot *s = build(rev, arr);
    json_decref(arr);
    if (!s)
        return; /* out of memory: the next poll tries again */
    atomic_store_explicit(&ps->cur, s, memory_order_release);
    log_debug("prompts: revision %lld, %zu versions served", (long long)rev, s->nprompts);
    if (cur) {
        cur->retired_ns = mono_ns();
        cur->next = ps->retired;
        ps->retired = cur;
    }
}

/* Frees retired snapshots older than the grace period. */
static void reap(prompt_server *ps, bool all)
{
    uint64_t now = mono_ns();
    snapshot **pp = &ps->retired;
    while (*pp) {
        snapshot *s = *pp;
        if (all || now - s->retired_ns >= GRACE_NS) {
            *pp = s->next;
            snapshot_free(s);
        } else {
            pp = &s->next;
        }
    }
}

static void *poller_main(void *arg)
{
    prompt_server *ps = arg;
    pthread_mutex_lock(&ps->mu);
    while (!ps->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ps->poll_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&ps->cv, &ps->mu, &ts);
        if (ps->stop)
            break;
        pthread_mutex_unlock(&ps->mu);
        poll_once(ps);
        reap(ps, false);
        pthread_mutex_lock(&ps->mu);
    }
    pthread_mutex_unlock(&ps->mu);
    return NULL;
}

prompt_server *prompt_server_start(const char *store_url, long poll_ms, char *err, size_t errcap)
{
    prompt_server *ps = calloc(1, sizeof *ps);
    if (!ps || !(ps->url = strdup(store_url))) {
        free(ps);
        snprintf(err, errcap, "prompts: out of memory");
        return NULL;
    }
    ps->poll_ms = poll_ms > 0 ? poll_ms : 250;
    pthread_mutex_init(&ps->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ps->cv, &ca);
    pthread_condattr_destroy(&ca);
    poll_once(ps);
    if (pthread_create(&ps->thread, NULL, poller_main, ps) != 0) {
        snprintf(err, errcap, "prompts: cannot start the poller thread");
        snapshot_free(atomic_load(&ps->cur));
        pthread_mutex_destroy(&ps->mu);
        pthread_cond_destroy(&ps->cv);
        free(ps->url);
        free(ps);
        return NULL;
    }
    pthread_setname_np(ps->thread, "prompt-poll");
    return ps;
}

void prompt_server_stop(prompt_server *ps)
{
    if (!ps)
        return;
    pthread_mutex_lock(&ps->mu);
    ps->stop = true;
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
    pthread_join(ps->thread, NULL);
    reap(ps, true);
    snapshot_free(atomic_load(&ps->cur));
    pthread_mutex_destroy(&ps->mu);
    pthread_cond_destroy(&ps->cv);
    free(ps->url);
    free(ps);
}

/* The first entry of name (entries are sorted by name, then label). */
static size_t lower_bound(const snapshot *s, const char *name, size_t nlen)
{
    size_t lo = 0, hi = s->nentries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *en = s->entries[mid].name;
        size_t el = strlen(en);
        int c = memcmp(en, name, MIN(el, nlen));
        if (c == 0)
            c = el < nlen ? -1 : el > nlen ? 1 : 0;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool name_is(const snap_entry *e, const char *name, size_t nlen)
{
    return strlen(e->name) == nlen && memcmp(e->name, name, nlen) == 0;
}

const served_prompt *prompt_server_find(prompt_server *ps, const char *name, size_t nlen, const char *label,
                                        int version, const char **why)
{
    *why = "prompt_not_found";
    snapshot *s = ps ? atomic_load_explicit(&ps->cur, memory_order_acquire) : NULL;
    if (!s)
        return NULL;
    size_t i = lower_bound(s, name, nlen);
    if (i >= s->nentries || !name_is(&s->entries[i], name, nlen))
        return NULL;
    const char *want = label && *label ? label : version > 0 ? NULL : "latest";
    for (; i < s->nentries && name_is(&s->entries[i], name, nlen); i++) {
        const snap_entry *e = &s->entries[i];
        if (want ? strcmp(e->label, want) == 0 : e->p->version == version)
            return e->p;
    }
    *why = want ? "label_not_found" : "version_not_found";
    return NULL;
}

const tpl *served_resolve(void *ud, const char *name, size_t len)
{
    served_resolver *r = ud;
    const char *why;
    const served_prompt *p = NULL;
    if (r->label && *r->label)
        p = prompt_server_find(r->ps, name, len, r->label, 0, &why);
    if (!p)
        p = prompt_server_find(r->ps, name, len, NULL, 0, &why);
    return p && p->type == PROMPT_TEXT ? p->text : NULL;
}

int64_t prompt_server_revision(prompt_server *ps)
{
    snapshot *s = ps ? atomic_load_explicit(&ps->cur, memory_order_acquire) : NULL;
    return s ? s->rev : -1;
}
