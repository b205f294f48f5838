/*
 * guard.c - the guardrail policy engine: compiles the configured policies
 * once, selects them per request, runs the local detectors over a stage's
 * texts, records hits and timed checks, and turns them into a decision
 * (block, redact with typed placeholders, flag; enforce or monitor).
 * Streams (guard_stream_*) live in guard_stream.c and share the internals
 * of guard_int.h.
 *
 * How it works. guard_engine_new turns each cfg_guard_policy into a
 * `policy`: the PII type mask, one guard_list holding deny and allow
 * entries, a topic set, size limits, a harm severity table, thresholds,
 * and per stage and per detector the set (bitmask) of policies that use
 * it. A request's guard_req holds the selected set per stage; a scan runs
 * each detector kind once per text for the union of what the selected
 * policies want (PII with the union of their type masks, secrets,
 * injection once with its score, the deny list and leakage per policy)
 * and hands each policy the findings it asked for. Hits, checks and
 * placeholders are bounded lists owned by the request; the verdict, the
 * blocking policy and "any hit" are kept up to date as hits arrive, so
 * reading them is free. docs/internals/guard-engine.md has the design.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/jscan.h"
#include "eval/jschema.h"
#include "guard/guard_int.h"

/* ------------------------------------------------------------------ */
/* Names */

static const char stage_names[GS__COUNT][GUARD_STAGE_NAME_WIDTH] = { "input", "output", "tool" };
static const char action_names[][GUARD_ACTION_NAME_WIDTH] = { "pass", "flag", "redact", "block" };
static const char detector_names[GD__COUNT][GUARD_DETECTOR_NAME_WIDTH] = {
#define GUARD_DET_NAME_(e, s) s,
    GUARD_DETECTORS(GUARD_DET_NAME_)
#undef GUARD_DET_NAME_
};
static const char unknown_name[GUARD_DETECTOR_NAME_WIDTH] = "unknown"; /* padded to the widest */
static const char no_label[GUARD_POLICY_LABEL_WIDTH];

const char *guard_stage_name(guard_stage s) { return (unsigned)s < GS__COUNT ? stage_names[s] : unknown_name; }

const char *guard_action_name(guard_action a)
{
    return (unsigned)a < countof(action_names) ? action_names[a] : unknown_name;
}

const char *guard_detector_name(guard_detector d) { return (unsigned)d < GD__COUNT ? detector_names[d] : unknown_name; }

bool guard_detector_parse(const char *name, guard_detector *out)
{
    if (!name)
        return false;
    for (int d = 0; d < GD__COUNT; d++)
        if (strcmp(name, detector_names[d]) == 0) {
            if (out)
                *out = (guard_detector)d;
            return true;
        }
    return false;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The checks' clock: CLOCK_MONOTONIC, read through the CPU's time stamp
 * counter where the kernel itself uses it (clocksource tsc: constant rate,
 * synchronised across cores). A check is timed with several reads per
 * request, and rdtsc costs a third of clock_gettime. The rate is measured
 * once (2 ms at the first use); each thread re-anchors on the real clock
 * every 50 ms, so the derived time never strays from CLOCK_MONOTONIC by
 * more than the rate's error over 50 ms (microseconds). Elsewhere, and if
 * the counter looks wrong, clock_gettime. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <pthread.h>
#include <x86intrin.h>
static double ns_per_tick;           /* 0: use clock_gettime */
static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;

static void tsc_calibrate(void)
{
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    char src[32] = "";
    if (f) {
        if (!fgets(src, sizeof src, f))
            src[0] = '\0';
        fclose(f);
    }
    if (strncmp(src, "tsc", 3) != 0)
        return;
    uint64_t n0 = mono_ns(), t0 = __rdtsc(), n1, t1;
    do {
        n1 = mono_ns();
        t1 = __rdtsc();
    } while (n1 - n0 < 2000000);
    if (t1 > t0 && n1 > n0)
        ns_per_tick = (double)(n1 - n0) / (double)(t1 - t0);
}

uint64_t guard_now_ns(void)
{
    static _Thread_local uint64_t base_tsc, base_ns, span_ticks;
    pthread_once(&tsc_once, tsc_calibrate);
    if (ns_per_tick <= 0)
        return mono_ns();
    uint64_t t = __rdtsc();
    if (!base_tsc || t < base_tsc || t - base_tsc > span_ticks) {
        base_ns = mono_ns();
        base_tsc = __rdtsc();
        span_ticks = (uint64_t)(50e6 / ns_per_tick);
        return base_ns;
    }
    return base_ns + (uint64_t)((double)(t - base_tsc) * ns_per_tick);
}
#else
uint64_t guard_now_ns(void) { return mono_ns(); }
#endif

/* ------------------------------------------------------------------ */
/* Compiling */

/* "guardrails policy 'NAME': " + the message; returns ERR_CONFIG. */
static err_code PRINTF_LIKE(4, 5) fail(char *msg, size_t cap, const char *name, const char *fmt, ...)
{
    if (!msg || !cap)
        return ERR_CONFIG;
    int k = snprintf(msg, cap, "guardrails policy '%s': ", name ? name : "?");
    if (k >= 0 && (size_t)k < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + k, cap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return ERR_CONFIG;
}

static bool det_has(uint32_t dets, guard_detector d) { return (dets >> d) & 1u; }

/* Adds one side (deny or allow) of a policy's lists to l. */
static err_code add_lists(guard_list *l, const cfg_guard_lists *c, bool allow, const char *pname, char *msg,
                          size_t cap)
{
    const char *side = allow ? "allow" : "deny";
    for (size_t i = 0; i < c->nwords; i++) {
        const char *w = c->words[i] ? c->words[i] : "";
        err_code e = guard_list_add_word(l, w, strlen(w), allow);
        if (e == ERR_NOMEM)
            return e;
        if (e == ERR_INVAL)
            return fail(msg, cap, pname, "%s.words[%zu]: '%.64s' must be non-empty valid UTF-8 that starts and ends "
                        "with a letter or digit (use a regex otherwise)", side, i, w);
        if (e)
            return fail(msg, cap, pname, "%s.words[%zu]: too long (at most %d bytes) or too many entries", side, i,
                        GUARD_LIST_MAX_TERM);
    }
    for (size_t i = 0; i < c->nregex; i++) {
        const char *r = c->regex[i] ? c->regex[i] : "";
        char why[256] = "";
        err_code e = guard_list_add_regex(l, r, strlen(r), allow, why, sizeof why);
        if (e == ERR_NOMEM)
            return e;
        if (e == ERR_TOOBIG)
            return fail(msg, cap, pname, "%s.regex[%zu]: too long (at most %d bytes) or too many entries", side, i,
                        GUARD_LIST_MAX_PATTERN);
        if (e)
            return fail(msg, cap, pname, "%s.regex[%zu]: %s", side, i, why[0] ? why : err_message(e));
    }
    return ERR_OK;
}

static err_code compile_policy(const cfg_guard_policy *c, policy *p, char *msg, size_t cap)
{
    const char *name = c->name;
    err_code e;
    p->cfg = c;
    p->info.name = name;
    if (!name || !name[0])
        return fail(msg, cap, "", "a policy needs a name");
    memset(p->label, 0, sizeof p->label);
    memcpy(p->label, name, MIN(strlen(name), sizeof p->label - 1));
    if (!c->stages || (c->stages & ~7u))
        return fail(msg, cap, name, "needs a stage (input, output or tool)");
    p->info.stages = c->stages;

    uint32_t dets = 0;
    for (size_t i = 0; i < c->ndetectors; i++) {
        guard_detector d;
        if (!guard_detector_parse(c->detectors[i], &d))
            return fail(msg, cap, name, "detectors[%zu]: unknown detector '%.64s'", i,
                        c->detectors[i] ? c->detectors[i] : "(null)");
        dets |= 1u << d;
    }
    if (!dets)
        return fail(msg, cap, name, "lists no detectors");
    p->info.detectors = dets;

    if (!c->action || strcmp(c->action, "flag") == 0)
        p->info.action = GA_FLAG;
    else if (strcmp(c->action, "block") == 0)
        p->info.action = GA_BLOCK;
    else if (strcmp(c->action, "redact") == 0)
        p->info.action = GA_REDACT;
    else
        return fail(msg, cap, name, "unknown action '%.32s' (block, redact or flag)", c->action);
    if (!c->mode || strcmp(c->mode, "enforce") == 0)
        p->info.monitor = false;
    else if (strcmp(c->mode, "monitor") == 0)
        p->info.monitor = true;
    else
        return fail(msg, cap, name, "unknown mode '%.32s' (enforce or monitor)", c->mode);
    if (!c->on_error || strcmp(c->on_error, "closed") == 0)
        p->info.fail_open = false;
    else if (strcmp(c->on_error, "open") == 0)
        p->info.fail_open = true;
    else
        return fail(msg, cap, name, "unknown on_error '%.32s' (open or closed)", c->on_error);

    if (p->info.action == GA_REDACT) {
        uint32_t redactable = (1u << GD_PII) | (1u << GD_SECRETS) | (1u << GD_DENY) | (1u << GD_LEAKAGE);
        for (int d = 0; d < GD__COUNT; d++)
            if (det_has(dets & ~redactable, (guard_detector)d))
                return fail(msg, cap, name, "action redact cannot apply to detector '%s'; use block or flag",
                            detector_names[d]);
    }
    if ((det_has(dets, GD_LEAKAGE) || det_has(dets, GD_SCHEMA)) && c->stages == (1u << GS_INPUT))
        return fail(msg, cap, name, "detector %s looks at answers: use stage output or tool",
                    det_has(dets, GD_LEAKAGE) ? "leakage" : "schema");
    if (det_has(dets, GD_HARM) && (!c->harm_model || !c->harm_model[0]))
        return fail(msg, cap, name, "detector harm needs harm.model (the classifier)");
    if (det_has(dets, GD_WEBHOOK) && (!c->webhook_url || !c->webhook_url[0]))
        return fail(msg, cap, name, "detector webhook needs webhook.url");

    p->info.restore = c->restore;
    p->info.stream_holdback = c->stream_holdback ? c->stream_holdback : GUARD_DEFAULT_HOLDBACK;
    if (p->info.stream_holdback > GUARD_MAX_HOLDBACK)
        p->info.stream_holdback = GUARD_MAX_HOLDBACK;
    p->info.harm_model = det_has(dets, GD_HARM) ? c->harm_model : NULL;
    p->info.harm_timeout_ms = c->harm_timeout_ms > 0 ? c->harm_timeout_ms : 10000;
    p->info.webhook_url = det_has(dets, GD_WEBHOOK) ? c->webhook_url : NULL;
    p->info.webhook_headers = c->webhook_headers;
    p->info.nwebhook_headers = c->nwebhook_headers;
    p->info.webhook_timeout_ms = c->webhook_timeout_ms > 0 ? c->webhook_timeout_ms : 2000;

    /* PII types */
    p->pii_mask = 0;
    for (size_t i = 0; i < c->npii_types; i++) {
        guard_type t;
        if (!guard_type_parse(c->pii_types[i], &t) || !((GUARD_PII_ALL >> t) & 1u))
            return fail(msg, cap, name, "pii.types[%zu]: '%.64s' is not a PII type", i,
                        c->pii_types[i] ? c->pii_types[i] : "(null)");
        p->pii_mask |= (uint64_t)1 << t;
    }
    if (!p->pii_mask)
        p->pii_mask = GUARD_PII_ALL;
    if (!det_has(dets, GD_PII))
        p->pii_mask = 0;

    p->inj_threshold = c->injection_threshold > 0 ? (float)c->injection_threshold : GUARD_INJECTION_THRESHOLD;
    p->leak_min_run = c->leak_min_run > 0 ? (uint32_t)MIN(c->leak_min_run, 100000L) : GUARD_LEAK_MIN_RUN;
    p->leak_min_cov = c->leak_min_coverage > 0 ? (float)c->leak_min_coverage : GUARD_LEAK_MIN_COVERAGE;

    if (det_has(dets, GD_DENY)) {
        if (!c->deny.nwords && !c->deny.nregex)
            return fail(msg, cap, name, "detector deny needs deny.words or deny.regex");
        if (!(p->list = guard_list_new()))
            return ERR_NOMEM;
        if ((e = add_lists(p->list, &c->deny, false, name, msg, cap)) != ERR_OK)
            return e;
        if ((e = add_lists(p->list, &c->allow, true, name, msg, cap)) != ERR_OK)
            return e;
    }
    if (det_has(dets, GD_TOPICS)) {
        if (!c->ntopics)
            return fail(msg, cap, name, "detector topics needs a topics list");
        if (!(p->topics = guard_topics_new()))
            return ERR_NOMEM;
        for (size_t i = 0; i < c->ntopics; i++) {
            const cfg_guard_topic *tp = &c->topics[i];
            e = guard_topics_add(p->topics, tp->name ? tp->name : "", (const char *const *)tp->keywords,
                                 tp->nkeywords);
            if (e == ERR_NOMEM)
                return e;
            if (e == ERR_TOOBIG)
                return fail(msg, cap, name, "topics[%zu]: too many topics or keywords", i);
            if (e)
                return fail(msg, cap, name, "topics[%zu]: needs a name and keywords that start and end with a letter "
                            "or digit", i);
        }
    }
    if (det_has(dets, GD_SIZE)) {
        p->size.max_chars = c->max_chars;
        p->size.max_tokens = c->max_tokens;
        if (!p->size.max_chars && !p->size.max_tokens)
            return fail(msg, cap, name, "detector size needs size.max_chars or size.max_tokens");
    }
    guard_harm_policy_default(&p->harm);
    if (c->nharm_categories) {
        uint8_t keep[GUARD_HARM_CATEGORIES + 1] = { 0 };
        for (size_t i = 0; i < c->nharm_categories; i++) {
            int s = c->harm_categories[i] ? guard_harm_category_parse(c->harm_categories[i]) : 0;
            if (s < 1 || s > GUARD_HARM_CATEGORIES)
                return fail(msg, cap, name, "harm.categories[%zu]: unknown category '%.64s' (S1..S14 or a name)", i,
                            c->harm_categories[i] ? c->harm_categories[i] : "(null)");
            keep[s] = 1;
        }
        for (int s = 1; s <= GUARD_HARM_CATEGORIES; s++)
            if (!keep[s])
                p->harm.severity[s] = 0;
    }
    if (c->harm_threshold < 0 || c->harm_threshold > 3)
        return fail(msg, cap, name, "harm.threshold must be 1, 2 or 3");
    p->harm.threshold = (uint8_t)(c->harm_threshold ? c->harm_threshold : 1);
    p->global = !c->nmodels && !c->ndeployments && !c->nkeys;
    return ERR_OK;
}

static void policy_free(policy *p)
{
    guard_list_free(p->list);
    guard_topics_free(p->topics);
}

err_code guard_engine_new(const cfg_guardrails *cfg, guard_engine **out, char *msg, size_t cap)
{
    if (msg && cap)
        msg[0] = '\0';
    if (!out)
        return ERR_INVAL;
    *out = NULL;
    size_t n = cfg ? cfg->npolicies : 0;
    if (n > GUARD_MAX_POLICIES) {
        if (msg && cap)
            snprintf(msg, cap, "guardrails: at most %d policies, got %zu", GUARD_MAX_POLICIES, n);
        return ERR_CONFIG;
    }
    guard_engine *g = calloc(1, sizeof *g);
    if (!g || (n && !(g->v = calloc(n, sizeof *g->v)))) {
        free(g);
        return ERR_NOMEM;
    }
    static _Atomic uint32_t serials;
    g->serial = ++serials;
    err_code e = ERR_OK;
    for (size_t i = 0; i < n; i++) {
        const cfg_guard_policy *c = &cfg->policies[i];
        g->n = i + 1; /* so that guard_engine_free frees what policy i got */
        if ((e = compile_policy(c, &g->v[i], msg, cap)) != ERR_OK)
            goto out;
        for (size_t j = 0; j < i; j++)
            if (strcmp(g->v[j].info.name, c->name) == 0) {
                e = fail(msg, cap, c->name, "duplicate name (also policy %zu)", j);
                goto out;
            }
        guard_set bit = (guard_set)1 << i;
        for (int st = 0; st < GS__COUNT; st++)
            if (c->stages & (1u << st))
                g->stage_set[st] |= bit;
        for (int d = 0; d < GD__COUNT; d++)
            if (det_has(g->v[i].info.detectors, (guard_detector)d))
                g->det_set[d] |= bit;
        if (g->v[i].info.monitor)
            g->monitor_set |= bit;
        if (g->v[i].info.restore)
            g->restore_set |= bit;
        if (g->v[i].info.action == GA_REDACT && !g->v[i].info.monitor)
            g->redact_set |= bit;
    }
out:
    if (e != ERR_OK) {
        if (e == ERR_NOMEM && msg && cap)
            snprintf(msg, cap, "guardrails: out of memory");
        guard_engine_free(g);
        return e;
    }
    *out = g;
    return ERR_OK;
}

void guard_engine_free(guard_engine *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        policy_free(&g->v[i]);
    free(g->v);
    free(g);
}

size_t guard_policy_count(const guard_engine *g) { return g ? g->n : 0; }

const guard_policy_info *guard_policy_at(const guard_engine *g, size_t i)
{
    return g && i < g->n ? &g->v[i].info : NULL;
}

const char *guard_policy_label(const guard_engine *g, size_t i) { return g && i < g->n ? g->v[i].label : no_label; }

uint64_t guard_check_key(const guard_engine *g, const guard_check *c)
{
    if (!g || !c || c->policy >= g->n)
        return 0;
    unsigned verdict = c->error ? 7u : (unsigned)c->verdict & 3u;
    return (uint64_t)g->serial << 32 | (uint64_t)c->policy << 16 | (uint64_t)c->detector << 8 |
           (uint64_t)c->stage << 4 | verdict << 1 | (c->enforced ? 1u : 0u);
}

int guard_policy_find(const guard_engine *g, const char *name)
{
    if (!g || !name)
        return -1;
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->v[i].info.name, name) == 0)
            return (int)i;
    return -1;
}

static bool listed(const char *const *v, size_t n, const char *s)
{
    if (!s || !s[0])
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] && strcmp(v[i], s) == 0)
            return true;
    return false;
}

guard_set guard_select(const guard_engine *g, guard_stage st, const char *model, const char *deployment,
                       const char *key)
{
    if (!g || (unsigned)st >= GS__COUNT)
        return 0;
    guard_set out = 0;
    for (guard_set s = g->stage_set[st]; s; s &= s - 1) {
        int i = __builtin_ctzll(s);
        const policy *p = &g->v[i];
        const cfg_guard_policy *c = p->cfg;
        if (p->global || listed(c->models, c->nmodels, model) || listed(c->deployments, c->ndeployments, deployment) ||
            listed(c->keys, c->nkeys, key))
            out |= (guard_set)1 << i;
    }
    return out;
}

/* ------------------------------------------------------------------ */
/* Requests */

/* The engine of a request made without one: no policies, nothing selected. */
static const guard_engine no_engine;

/* Finished requests are kept per thread for the next ones, with their
 * buffers (hits, checks, the check index, candidates, the findings
 * scratch), so that a request through the gateway costs no allocation in
 * the common case. A worker has as many requests in flight as it has
 * busy connections, so it keeps up to CACHE_MAX of them (one slot made a
 * saturated worker allocate for every other request).
 * guard_req_cache_release frees them (a worker thread calls it before it
 * ends). */
#define CACHE_MAX 64
static void memo_release(void); /* below: the findings of repeated system prompts */
static _Thread_local guard_req *cached; /* a stack through next_free */
static _Thread_local unsigned ncached;

guard_req *guard_req_new(const guard_engine *g, const guard_set set[GS__COUNT])
{
    guard_req *q = cached;
    if (q) {
        cached = q->next_free;
        q->next_free = NULL;
        ncached--;
    } else if (!(q = calloc(1, sizeof *q))) {
        return NULL;
    }
    q->g = g ? g : &no_engine;
    for (int st = 0; st < GS__COUNT; st++)
        q->set[st] = g && set ? set[st] & g->stage_set[st] : 0;
    return q;
}

/* Frees what belongs to one request only. */
static void req_release(guard_req *q)
{
    if (q->system)
        free(q->system);
    if (q->leak)
        guard_leak_index_free(q->leak);
    if (q->schema)
        jschema_free(q->schema);
    if (q->out_text)
        free(q->out_text);
    if (!q->ph && !q->phix)
        return; /* no placeholder was made: nothing below was allocated */
    for (size_t i = 0; i < q->nph; i++)
        free(q->ph[i].orig);
    free(q->ph);
    free(q->phix);
    for (int t = 0; t < GT__COUNT; t++)
        free(q->byn[t]);
}

static void req_destroy(guard_req *q)
{
    req_release(q);
    free(q->hits);
    free(q->checks);
    free(q->cidx);
    guard_findings_free(&q->tmp);
    free(q->cand);
    free(q);
}

void guard_req_free(guard_req *q)
{
    if (!q)
        return;
    if (ncached >= CACHE_MAX || q->caphits > 256 || q->capchecks > 64 || q->capcand > 256 || q->tmp.cap > 256) {
        req_destroy(q); /* enough are kept, or the buffers grew large: not worth keeping */
        return;
    }
    req_release(q);
    /* keep the buffers, clear everything else */
    guard_hit *hits = q->hits;
    guard_check *checks = q->checks;
    uint16_t *cidx = q->cidx;
    size_t caphits = q->caphits, capchecks = q->capchecks, cidx_n = q->cidx_n;
    guard_findings tmp = q->tmp;
    guard_cand *cand = q->cand;
    size_t capcand = q->capcand;
    memset(q, 0, sizeof *q);
    q->hits = hits, q->caphits = caphits;
    q->checks = checks, q->capchecks = capchecks;
    q->cidx = cidx, q->cidx_n = cidx_n;
    if (cidx)
        memset(cidx, 0, cidx_n * sizeof *cidx);
    tmp.n = 0;
    tmp.dropped = 0;
    q->tmp = tmp;
    q->cand = cand, q->capcand = capcand;
    q->next_free = cached;
    cached = q;
    ncached++;
}

void guard_req_cache_release(void)
{
    memo_release();
    while (cached) {
        guard_req *q = cached;
        cached = q->next_free;
        req_destroy(q);
    }
    ncached = 0;
}

bool guard_req_uses(const guard_req *q, guard_stage st, guard_detector d)
{
    return q && (unsigned)st < GS__COUNT && (unsigned)d < GD__COUNT && (q->set[st] & q->g->det_set[d]);
}

guard_set guard_req_set(const guard_req *q, guard_stage st)
{
    return q && (unsigned)st < GS__COUNT ? q->set[st] : 0;
}

err_code guard_req_set_system(guard_req *q, const char *text, size_t len)
{
    if (!q || (!text && len))
        return ERR_INVAL;
    /* only kept when some selected policy compares answers with it */
    if (!((q->set[GS_OUTPUT] | q->set[GS_TOOL]) & q->g->det_set[GD_LEAKAGE]))
        return ERR_OK;
    char *c = malloc(len + 1);
    if (!c)
        return ERR_NOMEM;
    if (len)
        memcpy(c, text, len);
    c[len] = '\0';
    free(q->system);
    guard_leak_index_free(q->leak);
    q->leak = NULL;
    q->system = c;
    q->system_len = len;
    return ERR_OK;
}

err_code guard_req_set_response_format(guard_req *q, const json_t *rf, char *msg, size_t cap)
{
    if (msg && cap)
        msg[0] = '\0';
    if (!q)
        return ERR_INVAL;
    if (!rf || !(q->set[GS_OUTPUT] & q->g->det_set[GD_SCHEMA]))
        return ERR_OK;
    jschema *s = NULL;
    err_code e = guard_schema_from_response_format(rf, &s, msg, cap);
    if (e == ERR_NOTFOUND) {
        if (msg && cap)
            msg[0] = '\0';
        return ERR_OK;
    }
    if (e == ERR_NOMEM)
        return e;
    if (e != ERR_OK)
        return ERR_INVAL;
    if (q->schema)
        jschema_free(q->schema);
    q->schema = s;
    return ERR_OK;
}

/* The check of (p, d, st), created on first use; its index or -1 (out of
 * memory). */
static int check_get(guard_req *q, int p, guard_detector d, guard_stage st)
{
    size_t np = q->g->n;
    size_t need = (size_t)GS__COUNT * np * GD__COUNT;
    if (q->cidx && q->cidx_n != need) { /* kept from a request of another engine */
        free(q->cidx);
        q->cidx = NULL;
    }
    if (!q->cidx) {
        if (!(q->cidx = calloc(need, sizeof *q->cidx)))
            return -1;
        q->cidx_n = need;
    }
    size_t k = ((size_t)st * np + (size_t)p) * GD__COUNT + (size_t)d;
    if (q->cidx[k])
        return q->cidx[k] - 1;
    if (q->nchecks == q->capchecks) {
        size_t cap = q->capchecks ? q->capchecks * 2 : 8;
        guard_check *v = realloc(q->checks, cap * sizeof *v);
        if (!v)
            return -1;
        q->checks = v;
        q->capchecks = cap;
    }
    guard_check *c = &q->checks[q->nchecks];
    memset(c, 0, sizeof *c);
    c->policy = (uint16_t)p;
    c->detector = (uint8_t)d;
    c->stage = (uint8_t)st;
    c->enforced = !q->g->v[p].info.monitor;
    c->start_ns = 0;
    q->cidx[k] = (uint16_t)(q->nchecks + 1);
    return (int)q->nchecks++;
}

/* Records one run of a check: its time and whether it hit a limit. */
err_code guard_check_run(guard_req *q, int p, guard_detector d, guard_stage st, uint64_t start_ns, uint64_t ns,
                         bool error)
{
    int i = check_get(q, p, d, st);
    if (i < 0)
        return ERR_NOMEM;
    guard_check *c = &q->checks[i];
    if (!c->start_ns || start_ns < c->start_ns)
        c->start_ns = start_ns ? start_ns : 1;
    c->ns += ns;
    if (error)
        c->error = true;
    return ERR_OK;
}

/* The verdict bookkeeping of a hit, also for hits that were dropped. */
static void account(guard_req *q, guard_stage st, int p, guard_action a, bool enforced, bool stored,
                    bool redacted_now)
{
    q->any[st] = true;
    if (!enforced)
        return;
    if (!stored && a == GA_REDACT && !redacted_now) {
        /* a span we cannot remember cannot be replaced: fail closed */
        a = GA_BLOCK;
        if (!q->blocker[st])
            q->overflow[st] = true;
    }
    if (a > q->verdict[st])
        q->verdict[st] = a;
    if (a == GA_BLOCK && !q->blocker[st])
        q->blocker[st] = (uint16_t)(p + 1);
}

int guard_hit_add(guard_req *q, guard_stage st, uint16_t part, int32_t where, int p, guard_detector d,
                  const guard_finding *f, guard_action action, bool redacted_now)
{
    const policy *pol = &q->g->v[p];
    bool enforced = !pol->info.monitor;
    int ci = check_get(q, p, d, st);
    if (ci >= 0) {
        guard_check *c = &q->checks[ci];
        c->nhits++;
        if (action > c->verdict)
            c->verdict = action;
    }
    int idx = -1;
    if (q->nhits < GUARD_MAX_HITS) {
        if (q->nhits == q->caphits) {
            size_t cap = q->caphits ? q->caphits * 2 : 16;
            guard_hit *v = realloc(q->hits, cap * sizeof *v);
            if (v) {
                q->hits = v;
                q->caphits = cap;
            }
        }
        if (q->nhits < q->caphits) {
            guard_hit *h = &q->hits[q->nhits];
            memset(h, 0, sizeof *h);
            h->f = *f;
            h->policy = (uint16_t)p;
            h->detector = (uint8_t)d;
            h->stage = (uint8_t)st;
            h->part = part;
            h->where = where;
            h->action = action;
            h->enforced = enforced;
            idx = (int)q->nhits++;
        }
    }
    if (idx < 0)
        q->dropped++;
    account(q, st, p, action, enforced, idx >= 0, redacted_now);
    return idx;
}

/* ---- candidates: findings of one scan, per policy and detector ---- */

static void cand_add(guard_req *q, int p, guard_detector d, const guard_finding *f)
{
    if (q->ncand == q->capcand) {
        size_t cap = q->capcand ? q->capcand * 2 : 32;
        guard_cand *v = cap <= GUARD_MAX_CAND ? realloc(q->cand, cap * sizeof *v) : NULL;
        if (!v) {
            q->cand_lost |= (guard_set)1 << p;
            return;
        }
        q->cand = v;
        q->capcand = cap;
    }
    q->cand[q->ncand++] = (guard_cand){ .f = *f, .policy = (uint16_t)p, .det = (uint8_t)d };
}

static void findings_reset(guard_findings *f)
{
    f->n = 0;
    f->dropped = 0;
}

/* A scan that lost findings (a full list) under an enforced redact
 * policy: what it could not report cannot be replaced. */
static void note_lost(guard_req *q, int p, bool lost)
{
    if (lost)
        q->cand_lost |= (guard_set)1 << p;
}

/* The fail-closed finding of a deny scan that ran out of budget. */
static const guard_finding *limit_finding(guard_finding *f, size_t len)
{
    *f = (guard_finding){ .type = GT_DENIED, .start = 0, .len = (uint32_t)len, .score = 1.0f, .rule = "match_limit" };
    return f;
}

/* ---- the scans of a repeated system prompt ----
 *
 * An application sends the same system prompt with every request, and it
 * is often the longest text of the request. What the PII and secrets
 * scans find in a text depends only on its bytes (and the PII type mask),
 * so each thread keeps the findings of the last few system prompts it
 * scanned, with a copy of the text: a prompt seen again is compared byte
 * for byte and its findings are copied instead of scanned. The user's
 * messages, the history and the answers are scanned every time; a scan
 * that lost findings (a full list) is not kept. */
#define MEMO_SLOTS 8
#define MEMO_MIN 32           /* shorter texts are scanned about as fast as looked up */
#define MEMO_MAX (64u << 10)  /* longer ones are not copied */
#define MEMO_FINDINGS 16      /* a prompt with more findings is not kept */

typedef struct memo_list {
    bool kept;
    uint8_t n;
    uint64_t mask;            /* PII: the type mask it ran with */
    guard_finding v[MEMO_FINDINGS];
} memo_list;

typedef struct scan_memo {
    uint64_t hash, used;
    size_t len;
    char *text;               /* NULL: a free slot */
    memo_list pii, sec;
} scan_memo;

static _Thread_local scan_memo memo[MEMO_SLOTS];
static _Thread_local uint64_t memo_clock, memo_hits, memo_scans;

void guard_memo_counts(uint64_t *hits, uint64_t *scans)
{
    *hits = memo_hits;
    *scans = memo_scans;
}

static uint64_t memo_hash(const char *p, size_t n)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t h = n * k, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * k;
        h ^= h >> 32;
    }
    if (i < n) {
        w = 0;
        memcpy(&w, p + i, n - i);
        h = (h ^ w) * k;
    }
    return h ^ (h >> 29);
}

/* The slot of text: found, or taken (the least recently used one, its
 * lists cleared); NULL when the copy cannot be made. */
static scan_memo *memo_slot(const char *text, size_t len)
{
    uint64_t h = memo_hash(text, len);
    scan_memo *old = &memo[0];
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        scan_memo *m = &memo[i];
        if (m->text && m->hash == h && m->len == len && memcmp(m->text, text, len) == 0) {
            m->used = ++memo_clock;
            return m;
        }
        if (!m->text || (old->text && m->used < old->used))
            old = m;
    }
    char *copy = malloc(len);
    if (!copy)
        return NULL;
    memcpy(copy, text, len);
    free(old->text);
    memset(old, 0, sizeof *old);
    old->text = copy;
    old->len = len;
    old->hash = h;
    old->used = ++memo_clock;
    return old;
}

/* Copies a kept list into f; false when it was not kept (for this mask). */
static bool memo_get(const memo_list *l, uint64_t mask, guard_findings *f)
{
    if (!l->kept || l->mask != mask)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (guard_findings_add(f, l->v[i].type, l->v[i].start, l->v[i].len, l->v[i].score, l->v[i].rule) != ERR_OK)
            return false; /* the caller scans, and fails the same way */
    memo_hits++;
    return true;
}

static void memo_put(memo_list *l, uint64_t mask, const guard_findings *f)
{
    memo_scans++;
    l->kept = !f->dropped && f->n <= MEMO_FINDINGS;
    if (!l->kept)
        return;
    l->mask = mask;
    l->n = (uint8_t)f->n;
    if (f->n)
        memcpy(l->v, f->v, f->n * sizeof *f->v);
}

static void memo_release(void)
{
    for (size_t i = 0; i < MEMO_SLOTS; i++) {
        free(memo[i].text);
        memset(&memo[i], 0, sizeof memo[i]);
    }
}

err_code guard_run_local(guard_req *q, guard_stage st, guard_role role, unsigned flags, const char *text, size_t len)
{
    const guard_engine *g = q->g;
    guard_set set = q->set[st];
    q->ncand = 0;
    q->cand_lost = 0;
    guard_set s_pii = set & g->det_set[GD_PII], s_sec = set & g->det_set[GD_SECRETS];
    guard_set s_inj = set & g->det_set[GD_INJECTION], s_leak = set & g->det_set[GD_LEAKAGE];
    guard_set s_deny = set & g->det_set[GD_DENY], s_top = set & g->det_set[GD_TOPICS];
    if (st == GS_OUTPUT || role == GR_SYSTEM)
        s_inj = 0;
    if (st != GS_INPUT || !(flags & GUARD_PART_LAST_USER))
        s_top = 0;
    if (st == GS_INPUT)
        s_leak = 0;
    if (!(s_pii | s_sec | s_inj | s_leak | s_deny | s_top))
        return ERR_OK;
    if (len > UINT32_MAX)
        return ERR_TOOBIG;
    guard_findings *tmp = &q->tmp;
    err_code e = ERR_OK;
    scan_memo *m = st == GS_INPUT && role == GR_SYSTEM && (s_pii | s_sec) && len >= MEMO_MIN && len <= MEMO_MAX
                       ? memo_slot(text, len)
                       : NULL;
    /* one clock read between two detectors ends one and starts the next,
     * also across parts the caller scans back to back (GUARD_PART_CHAIN) */
    uint64_t t0, dt, tlast = (flags & GUARD_PART_CHAIN) ? q->tchain : 0;
    q->tchain = 0;

    if (s_pii) {
        uint64_t mask = 0;
        for (guard_set s = s_pii; s; s &= s - 1)
            mask |= g->v[__builtin_ctzll(s)].pii_mask;
        findings_reset(tmp);
        t0 = tlast ? tlast : guard_now_ns();
        if (!m || !memo_get(&m->pii, mask, tmp)) {
            findings_reset(tmp);
            if ((e = guard_scan_pii(text, len, mask, tmp)) == ERR_OK && m)
                memo_put(&m->pii, mask, tmp);
        }
        dt = (tlast = guard_now_ns()) - t0;
        if (e)
            return e;
        for (guard_set s = s_pii; s; s &= s - 1) {
            int p = __builtin_ctzll(s);
            uint64_t pm = g->v[p].pii_mask;
            if (guard_check_run(q, p, GD_PII, st, t0, dt, tmp->dropped > 0))
                return ERR_NOMEM;
            note_lost(q, p, tmp->dropped > 0);
            for (size_t i = 0; i < tmp->n; i++)
                if ((pm >> tmp->v[i].type) & 1u)
                    cand_add(q, p, GD_PII, &tmp->v[i]);
        }
    }
    if (s_sec) {
        findings_reset(tmp);
        t0 = tlast ? tlast : guard_now_ns();
        if (!m || !memo_get(&m->sec, GUARD_SECRETS_ALL, tmp)) {
            findings_reset(tmp);
            if ((e = guard_scan_secrets(text, len, GUARD_SECRETS_ALL, tmp)) == ERR_OK && m)
                memo_put(&m->sec, GUARD_SECRETS_ALL, tmp);
        }
        dt = (tlast = guard_now_ns()) - t0;
        if (e)
            return e;
        for (guard_set s = s_sec; s; s &= s - 1) {
            int p = __builtin_ctzll(s);
            if (guard_check_run(q, p, GD_SECRETS, st, t0, dt, tmp->dropped > 0))
                return ERR_NOMEM;
            note_lost(q, p, tmp->dropped > 0);
            for (size_t i = 0; i < tmp->n; i++)
                cand_add(q, p, GD_SECRETS, &tmp->v[i]);
        }
    }
    if (s_inj) {
        float score = 0.0f;
        findings_reset(tmp);
        t0 = tlast ? tlast : guard_now_ns();
        e = guard_scan_injection(text, len, 0, tmp, &score);
        dt = (tlast = guard_now_ns()) - t0;
        if (e)
            return e;
        for (guard_set s = s_inj; s; s &= s - 1) {
            int p = __builtin_ctzll(s);
            if (guard_check_run(q, p, GD_INJECTION, st, t0, dt, false))
                return ERR_NOMEM;
            if (score >= g->v[p].inj_threshold)
                for (size_t i = 0; i < tmp->n; i++)
                    cand_add(q, p, GD_INJECTION, &tmp->v[i]);
        }
    }
    if (s_leak) {
        if (q->system_len && !q->leak) {
            if ((e = guard_leak_index_new(q->system, q->system_len, &q->leak)) != ERR_OK)
                return e;
        }
        for (guard_set s = s_leak; s; s &= s - 1) {
            int p = __builtin_ctzll(s);
            findings_reset(tmp);
            t0 = guard_now_ns();
            if (q->leak && (e = guard_scan_leakage(q->leak, text, len, g->v[p].leak_min_run, g->v[p].leak_min_cov,
                                                   NULL, tmp)) != ERR_OK)
                return e;
            dt = guard_now_ns() - t0;
            if (guard_check_run(q, p, GD_LEAKAGE, st, t0, dt, false))
                return ERR_NOMEM;
            for (size_t i = 0; i < tmp->n; i++)
                cand_add(q, p, GD_LEAKAGE, &tmp->v[i]);
        }
    }
    for (guard_set s = s_deny; s; s &= s - 1) {
        int p = __builtin_ctzll(s);
        findings_reset(tmp);
        t0 = guard_now_ns();
        e = guard_scan_list(g->v[p].list, text, len, tmp);
        dt = guard_now_ns() - t0;
        if (e && e != ERR_TIMEOUT)
            return e;
        bool timeout = e == ERR_TIMEOUT;
        if (guard_check_run(q, p, GD_DENY, st, t0, dt, timeout || tmp->dropped > 0))
            return ERR_NOMEM;
        note_lost(q, p, tmp->dropped > 0);
        for (size_t i = 0; i < tmp->n; i++)
            cand_add(q, p, GD_DENY, &tmp->v[i]);
        if (timeout && !g->v[p].info.fail_open && len) {
            guard_finding f;
            cand_add(q, p, GD_DENY, limit_finding(&f, len));
        }
    }
    for (guard_set s = s_top; s; s &= s - 1) {
        int p = __builtin_ctzll(s);
        findings_reset(tmp);
        t0 = guard_now_ns();
        e = guard_scan_topics(g->v[p].topics, text, len, NULL, tmp);
        dt = guard_now_ns() - t0;
        if (e)
            return e;
        if (guard_check_run(q, p, GD_TOPICS, st, t0, dt, false))
            return ERR_NOMEM;
        for (size_t i = 0; i < tmp->n; i++)
            cand_add(q, p, GD_TOPICS, &tmp->v[i]);
    }
    if (!(s_leak | s_deny | s_top))
        q->tchain = tlast;
    return ERR_OK;
}

/* Lost findings under an enforced redact policy block the stage. */
void guard_cand_lost_apply(guard_req *q, guard_stage st)
{
    guard_set lost = q->cand_lost & q->g->redact_set;
    if (!lost)
        return;
    if (!q->blocker[st]) {
        q->blocker[st] = (uint16_t)(__builtin_ctzll(lost) + 1);
        q->overflow[st] = true;
    }
    q->verdict[st] = GA_BLOCK;
    q->any[st] = true;
}

/* Counts the characters and tokens of a text into the stage's totals
 * when some selected policy limits the size. */
void guard_count_size(guard_req *q, guard_stage st, const char *text, size_t len)
{
    if (!(q->set[st] & q->g->det_set[GD_SIZE]))
        return;
    guard_size_result r = { 0, 0 };
    uint64_t t0 = guard_now_ns();
    guard_scan_size(text, len, NULL, &r, NULL);
    uint64_t dt = guard_now_ns() - t0;
    q->chars[st] += r.chars;
    q->tokens[st] += r.tokens;
    if (!q->size_start[st])
        q->size_start[st] = t0 ? t0 : 1;
    q->size_ns[st] += dt;
}

/* Keeps the answer's text for the schema check at the end of the output
 * stage. */
err_code guard_keep_output(guard_req *q, uint16_t part, int32_t where, const char *text, size_t len, bool lost)
{
    if (!(q->set[GS_OUTPUT] & q->g->det_set[GD_SCHEMA]) || !q->schema)
        return ERR_OK;
    q->has_out = true;
    q->schema_done = false;
    q->out_part = part;
    q->out_where = where;
    q->out_lost = lost;
    free(q->out_text);
    q->out_text = NULL;
    q->out_len = 0;
    if (lost)
        return ERR_OK;
    if (!(q->out_text = malloc(len + 1)))
        return ERR_NOMEM;
    if (len)
        memcpy(q->out_text, text, len);
    q->out_text[len] = '\0';
    q->out_len = len;
    return ERR_OK;
}

err_code guard_scan_part(guard_req *q, guard_stage st, guard_role role, unsigned flags, uint16_t part, int32_t where,
                         const char *text, size_t len)
{
    if (!q || (unsigned)st >= GS__COUNT || (!text && len))
        return ERR_INVAL;
    if (!q->set[st])
        return ERR_OK;
    if (!text)
        text = "";
    guard_count_size(q, st, text, len);
    err_code e = ERR_OK;
    if (st == GS_OUTPUT && (e = guard_keep_output(q, part, where, text, len, false)) != ERR_OK)
        return e;
    if ((e = guard_run_local(q, st, role, flags, text, len)) != ERR_OK)
        return e;
    for (size_t i = 0; i < q->ncand; i++) {
        const guard_cand *c = &q->cand[i];
        guard_hit_add(q, st, part, where, c->policy, (guard_detector)c->det, &c->f, q->g->v[c->policy].info.action,
                      false);
    }
    guard_cand_lost_apply(q, st);
    return ERR_OK;
}

err_code guard_stage_end(guard_req *q, guard_stage st)
{
    if (!q || (unsigned)st >= GS__COUNT)
        return ERR_INVAL;
    const guard_engine *g = q->g;
    err_code e = ERR_OK;
    guard_set s_size = q->set[st] & g->det_set[GD_SIZE];
    for (guard_set s = s_size; s; s &= s - 1) {
        int p = __builtin_ctzll(s);
        const policy *pol = &g->v[p];
        if ((e = guard_check_run(q, p, GD_SIZE, st, q->size_start[st] ? q->size_start[st] : guard_now_ns(),
                                 q->size_ns[st], false)) != ERR_OK)
            return e;
        if ((q->size_hit[st] >> p) & 1u)
            continue;
        const char *rules[2] = { NULL, NULL };
        if (pol->size.max_chars && q->chars[st] > pol->size.max_chars)
            rules[0] = "max_chars";
        if (pol->size.max_tokens && q->tokens[st] > 0 && (size_t)q->tokens[st] > pol->size.max_tokens)
            rules[1] = "max_tokens";
        for (int k = 0; k < 2; k++)
            if (rules[k]) {
                guard_finding f = { .type = GT_SIZE, .start = 0, .len = 0, .score = 1.0f, .rule = rules[k] };
                guard_hit_add(q, st, 0, -1, p, GD_SIZE, &f, pol->info.action, false);
                q->size_hit[st] |= (guard_set)1 << p;
            }
    }
    q->size_ns[st] = 0;
    guard_set s_sch = st == GS_OUTPUT ? q->set[st] & g->det_set[GD_SCHEMA] : 0;
    if (s_sch && q->schema && q->has_out && !q->schema_done) {
        q->schema_done = true;
        guard_findings *tmp = &q->tmp;
        findings_reset(tmp);
        uint64_t t0 = guard_now_ns();
        bool valid = true;
        if (!q->out_lost)
            e = guard_check_schema(q->schema, q->out_text ? q->out_text : "", q->out_len, &valid, NULL, 0, tmp);
        uint64_t dt = guard_now_ns() - t0;
        if (e)
            return e;
        for (guard_set s = s_sch; s; s &= s - 1) {
            int p = __builtin_ctzll(s);
            if ((e = guard_check_run(q, p, GD_SCHEMA, st, t0, dt, q->out_lost)) != ERR_OK)
                return e;
            for (size_t i = 0; i < tmp->n; i++)
                guard_hit_add(q, st, q->out_part, q->out_where, p, GD_SCHEMA, &tmp->v[i], g->v[p].info.action, false);
        }
    }
    return ERR_OK;
}

guard_action guard_verdict(const guard_req *q, guard_stage st)
{
    return q && (unsigned)st < GS__COUNT ? q->verdict[st] : GA_NONE;
}

bool guard_any_hit(const guard_req *q, guard_stage st) { return q && (unsigned)st < GS__COUNT && q->any[st]; }

size_t guard_req_hits(const guard_req *q, const guard_hit **v)
{
    if (v)
        *v = q ? q->hits : NULL;
    return q ? q->nhits : 0;
}

size_t guard_req_checks(const guard_req *q, const guard_check **v)
{
    if (v)
        *v = q ? q->checks : NULL;
    return q ? q->nchecks : 0;
}

const char *guard_block_policy(const guard_req *q, guard_stage st)
{
    if (!q || (unsigned)st >= GS__COUNT || !q->blocker[st])
        return NULL;
    return q->g->v[q->blocker[st] - 1].info.name;
}

/* Where a hit is, for messages. */
static const char *where_name(guard_stage st, int32_t where, char *tmp, size_t cap)
{
    if (where >= 0) {
        snprintf(tmp, cap, "messages[%d]", (int)where);
        return tmp;
    }
    return st == GS_OUTPUT ? "the answer" : st == GS_TOOL ? "tool arguments" : "the request";
}

/* Appends to out[*k..cap) without overflowing; keeps it NUL-terminated. */
static void PRINTF_LIKE(4, 5) add_text(char *out, size_t cap, size_t *k, const char *fmt, ...)
{
    if (*k >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *k, cap - *k, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *k = (size_t)n >= cap - *k ? cap - 1 : *k + (size_t)n;
}

void guard_block_message(const guard_req *q, guard_stage st, char *out, size_t cap)
{
    if (!out || !cap)
        return;
    out[0] = '\0';
    if (!q || (unsigned)st >= GS__COUNT || !q->blocker[st])
        return;
    int p = q->blocker[st] - 1;
    size_t k = 0, listed_n = 0, more = 0;
    add_text(out, cap, &k, "blocked by guardrail policy '%s' (%s): ", q->g->v[p].info.name, stage_names[st]);
    for (size_t i = 0; i < q->nhits; i++) {
        const guard_hit *h = &q->hits[i];
        if (h->stage != st || h->policy != p || !h->enforced || h->action != GA_BLOCK)
            continue;
        if (listed_n == GUARD_BLOCK_LIST) {
            more++;
            continue;
        }
        bool again = false; /* two rules on one span are one finding to the reader */
        for (size_t j = 0; j < i && !again; j++) {
            const guard_hit *o = &q->hits[j];
            again = o->stage == st && o->policy == p && o->enforced && o->action == GA_BLOCK &&
                    o->f.type == h->f.type && o->where == h->where && o->part == h->part &&
                    o->f.start == h->f.start && o->f.len == h->f.len;
        }
        if (again)
            continue;
        char wb[32];
        const char *w = where_name(st, h->where, wb, sizeof wb);
        add_text(out, cap, &k, "%s%s", listed_n ? ", " : "", guard_type_name(h->f.type));
        if (h->f.type == GT_SIZE || h->f.type == GT_HARM || h->f.type == GT_WEBHOOK || h->f.type == GT_SCHEMA)
            add_text(out, cap, &k, " (%s)", h->f.rule);
        add_text(out, cap, &k, " in %s", w);
        if (h->f.len)
            add_text(out, cap, &k, " at %u-%u", (unsigned)h->f.start, (unsigned)(h->f.start + h->f.len));
        listed_n++;
    }
    if (more)
        add_text(out, cap, &k, ", and %zu more", more);
    if (q->overflow[st])
        add_text(out, cap, &k, "%smore findings than can be redacted (limit %d)", listed_n ? "; " : "",
                 GUARD_MAX_HITS);
    else if (!listed_n)
        add_text(out, cap, &k, "findings not recorded (over the limit of %d)", GUARD_MAX_HITS);
}

/* ------------------------------------------------------------------ */
/* Placeholders */

static uint32_t ph_hash(guard_type t, const char *p, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)t;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

static int ph_find(const guard_req *q, guard_type t, const char *p, size_t n, uint32_t h)
{
    if (!q->phixcap)
        return -1;
    size_t mask = q->phixcap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t v = q->phix[i];
        if (!v)
            return -1;
        const guard_ph *e = &q->ph[v - 1];
        if (e->hash == h && e->type == t && e->len == n && memcmp(e->orig, p, n) == 0)
            return (int)(v - 1);
    }
}

static bool ph_index(guard_req *q, uint32_t idx)
{
    if ((q->nph + 1) * 2 > q->phixcap) {
        size_t cap = q->phixcap ? q->phixcap * 2 : 64;
        uint32_t *v = calloc(cap, sizeof *v);
        if (!v)
            return false;
        for (size_t i = 0; i < q->nph; i++) {
            size_t j = q->ph[i].hash & (cap - 1);
            while (v[j])
                j = (j + 1) & (cap - 1);
            v[j] = (uint32_t)(i + 1);
        }
        free(q->phix);
        q->phix = v;
        q->phixcap = cap;
    }
    size_t j = q->ph[idx].hash & (q->phixcap - 1);
    while (q->phix[j])
        j = (j + 1) & (q->phixcap - 1);
    q->phix[j] = idx + 1;
    return true;
}

/* The by-number table of type t must reach n. */
static bool byn_reach(guard_req *q, guard_type t, size_t n)
{
    if (q->nbyn[t] >= n)
        return true;
    if (n > q->capbyn[t]) {
        size_t cap = q->capbyn[t] ? q->capbyn[t] : 16;
        while (cap < n)
            cap *= 2;
        uint32_t *v = realloc(q->byn[t], cap * sizeof *v);
        if (!v)
            return false;
        q->byn[t] = v;
        q->capbyn[t] = cap;
    }
    while (q->nbyn[t] < n)
        q->byn[t][q->nbyn[t]++] = UINT32_MAX;
    return true;
}

uint16_t guard_ph_assign(guard_req *q, guard_type t, const char *orig, size_t n, bool restorable)
{
    uint32_t h = ph_hash(t, orig, n);
    int i = ph_find(q, t, orig, n, h);
    if (i >= 0) {
        if (restorable) {
            q->ph[i].restorable = true;
            q->restorable_any = true;
        }
        return q->ph[i].n;
    }
    uint16_t num = q->next_n[t] < UINT16_MAX ? ++q->next_n[t] : UINT16_MAX;
    if (num == UINT16_MAX || q->nph >= GUARD_MAX_PH || n > GUARD_MAX_PH_BYTES - q->phbytes)
        return num; /* numbered, but neither shared nor restorable */
    if (q->nph == q->capph) {
        size_t cap = q->capph ? q->capph * 2 : 16;
        guard_ph *v = realloc(q->ph, cap * sizeof *v);
        if (!v)
            return num;
        q->ph = v;
        q->capph = cap;
    }
    char *copy = malloc(n ? n : 1);
    if (!copy || !byn_reach(q, t, num)) {
        free(copy);
        return num;
    }
    if (n)
        memcpy(copy, orig, n);
    guard_ph *e = &q->ph[q->nph];
    *e = (guard_ph){ .orig = copy, .len = n, .hash = h, .n = num, .type = (uint8_t)t, .restorable = restorable };
    if (!ph_index(q, (uint32_t)q->nph)) {
        free(copy);
        return num;
    }
    q->byn[t][num - 1] = (uint32_t)q->nph;
    q->nph++;
    q->phbytes += n;
    if (restorable)
        q->restorable_any = true;
    return num;
}

err_code guard_ph_write(buf *out, guard_type t, uint16_t n)
{
    return buf_printf(out, "<%s_%u>", guard_type_name(t), (unsigned)n);
}

static int span_cmp(const void *a, const void *b)
{
    const guard_span *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    if (x->e != y->e)
        return x->e > y->e ? -1 : 1;
    return x->hit < y->hit ? -1 : x->hit > y->hit;
}

err_code guard_emit(guard_req *q, const char *base, size_t from, size_t to, guard_span *sp, size_t nsp, bool restore,
                    buf *out, size_t *count)
{
    err_code e = ERR_OK;
    if (nsp > 1)
        qsort(sp, nsp, sizeof *sp, span_cmp);
    size_t pos = from, i = 0;
    while (i < nsp) {
        size_t s = sp[i].s, end = sp[i].e, j = i + 1;
        guard_type t = sp[i].t;
        bool rest = sp[i].restorable;
        while (j < nsp && sp[j].s < end) {
            if (sp[j].e > end)
                end = sp[j].e;
            rest = rest || sp[j].restorable;
            j++;
        }
        if (s < pos)
            s = pos; /* never emit bytes twice */
        if (end > to)
            end = to;
        if (s < end) {
            uint16_t num = guard_ph_assign(q, t, base + s, end - s, rest);
            for (size_t k = i; k < j; k++)
                if (sp[k].hit != UINT32_MAX && sp[k].hit < q->nhits)
                    q->hits[sp[k].hit].placeholder = num;
            if (restore)
                e = guard_restore(q, base + pos, s - pos, out, NULL);
            else
                e = buf_append(out, base + pos, s - pos);
            if (!e)
                e = guard_ph_write(out, t, num);
            if (e)
                return e;
            if (count)
                (*count)++;
            pos = end;
        }
        i = j;
    }
    if (pos < to)
        e = restore ? guard_restore(q, base + pos, to - pos, out, NULL) : buf_append(out, base + pos, to - pos);
    return e;
}

err_code guard_redact(guard_req *q, guard_stage st, uint16_t part, const char *text, size_t len, buf *out, size_t *n)
{
    if (n)
        *n = 0;
    if (!q || !out || (!text && len) || (unsigned)st >= GS__COUNT)
        return ERR_INVAL;
    size_t cnt = 0;
    for (size_t i = 0; i < q->nhits; i++) {
        const guard_hit *h = &q->hits[i];
        if (h->stage == st && h->part == part && h->enforced && h->action == GA_REDACT && h->f.start < len)
            cnt++;
    }
    if (!cnt)
        return buf_append(out, text, len);
    guard_span *sp = malloc(cnt * sizeof *sp);
    if (!sp)
        return ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < q->nhits; i++) {
        const guard_hit *h = &q->hits[i];
        if (!(h->stage == st && h->part == part && h->enforced && h->action == GA_REDACT && h->f.start < len))
            continue;
        size_t e = (size_t)h->f.start + h->f.len;
        sp[k++] = (guard_span){ .s = h->f.start,
                                .e = e > len ? len : e,
                                .t = h->f.type,
                                .restorable = q->g->v[h->policy].info.restore,
                                .hit = (uint32_t)i };
    }
    err_code e = guard_emit(q, text, 0, len, sp, k, false, out, n);
    free(sp);
    return e;
}

bool guard_restore_wanted(const guard_req *q) { return q && q->restorable_any; }

static bool ph_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }

/* The original behind "<NAME>" (name = the bytes between the brackets)
 * when this request created it restorable; NULL otherwise. */
static const guard_ph *ph_lookup(const guard_req *q, const char *name, size_t n)
{
    size_t us = n;
    while (us > 0 && name[us - 1] != '_')
        us--;
    if (us < 2 || us == n || n - us > 5 || name[us] == '0')
        return NULL;
    unsigned long num = 0;
    for (size_t i = us; i < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return NULL;
        num = num * 10 + (unsigned long)(name[i] - '0');
    }
    size_t tl = us - 1;
    for (int t = 0; t < GT__COUNT; t++) {
        const char *tn = guard_type_name((guard_type)t);
        if (strlen(tn) != tl || memcmp(tn, name, tl) != 0)
            continue;
        if (num == 0 || num > q->nbyn[t] || q->byn[t][num - 1] == UINT32_MAX)
            return NULL;
        const guard_ph *e = &q->ph[q->byn[t][num - 1]];
        return e->restorable ? e : NULL;
    }
    return NULL;
}

err_code guard_restore(const guard_req *q, const char *text, size_t len, buf *out, size_t *n)
{
    if (n)
        *n = 0;
    if (!out || (!text && len))
        return ERR_INVAL;
    if (!q || !q->restorable_any)
        return buf_append(out, text, len);
    size_t pos = 0, i = 0;
    err_code e;
    while (i < len) {
        const char *lt = memchr(text + i, '<', len - i);
        if (!lt)
            break;
        size_t a = (size_t)(lt - text), j = a + 1;
        while (j < len && j - a <= GUARD_PH_MAX_NAME && ph_char(text[j]))
            j++;
        const guard_ph *ph = j < len && text[j] == '>' ? ph_lookup(q, text + a + 1, j - a - 1) : NULL;
        if (!ph) {
            i = a + 1;
            continue;
        }
        if ((e = buf_append(out, text + pos, a - pos)) != ERR_OK || (e = buf_append(out, ph->orig, ph->len)) != ERR_OK)
            return e;
        if (n)
            (*n)++;
        pos = i = j + 1;
    }
    return buf_append(out, text + pos, len - pos);
}

/* ------------------------------------------------------------------ */
/* Remote checks */

/* A JSON string of text, with invalid UTF-8 replaced by U+FFFD (jansson
 * refuses it). */
json_t *guard_json_text(const char *text, size_t len)
{
    json_t *j = json_stringn(text ? text : "", len);
    if (j || !len)
        return j;
    buf b;
    buf_init(&b, len * 3 + 16);
    for (size_t i = 0; i < len;) {
        size_t ok = jscan_utf8_prefix(text + i, len - i);
        if (buf_append(&b, text + i, ok) != ERR_OK ||
            (i + ok < len && buf_append(&b, "\xEF\xBF\xBD", 3) != ERR_OK)) {
            buf_free(&b);
            return NULL;
        }
        i += ok + (i + ok < len);
    }
    j = json_stringn(b.p ? b.p : "", b.len);
    buf_free(&b);
    return j;
}

static bool policy_ok(const guard_req *q, int p) { return q && p >= 0 && (size_t)p < q->g->n; }

json_t *guard_harm_request(const guard_req *q, int p, const char *model, const char *text, size_t len)
{
    if (!policy_ok(q, p) || (!text && len))
        return NULL;
    if (!model)
        model = q->g->v[p].info.harm_model;
    json_t *content = guard_json_text(text, len);
    if (!content || !model)
        return json_decref(content), NULL;
    return json_pack("{s:s, s:[{s:s, s:o}], s:i}", "model", model, "messages", "role", "user", "content", content,
                     "temperature", 0);
}

/* A failed remote check: an error check, and under on_error closed a hit
 * the policy acts on. */
static err_code remote_fail(guard_req *q, int p, guard_detector d, guard_stage st, uint16_t part, int32_t where,
                            size_t text_len, uint64_t start_ns, uint64_t ns)
{
    err_code e = guard_check_run(q, p, d, st, start_ns, ns, true);
    if (e)
        return e;
    const policy *pol = &q->g->v[p];
    if (pol->info.fail_open)
        return ERR_OK;
    guard_finding f = { .type = d == GD_HARM ? GT_HARM : GT_WEBHOOK,
                        .start = 0,
                        .len = (uint32_t)MIN(text_len, (size_t)UINT32_MAX),
                        .score = 1.0f,
                        .rule = "unavailable" };
    guard_hit_add(q, st, part, where, p, d, &f, pol->info.action, false);
    return ERR_OK;
}

err_code guard_harm_answer(guard_req *q, int p, guard_stage st, uint16_t part, int32_t where, size_t text_len,
                           const char *answer, size_t len, uint64_t start_ns, uint64_t ns)
{
    if (!policy_ok(q, p) || (unsigned)st >= GS__COUNT || (!answer && len))
        return ERR_INVAL;
    guard_harm_verdict v;
    if (!answer || guard_llamaguard_parse(answer, len, &v) != ERR_OK)
        return remote_fail(q, p, GD_HARM, st, part, where, text_len, start_ns, ns);
    err_code e = guard_check_run(q, p, GD_HARM, st, start_ns, ns, false);
    if (e)
        return e;
    if (text_len > UINT32_MAX)
        text_len = UINT32_MAX;
    findings_reset(&q->tmp);
    if ((e = guard_harm_apply(&q->g->v[p].harm, &v, text_len, &q->tmp)) != ERR_OK)
        return e;
    for (size_t i = 0; i < q->tmp.n; i++)
        guard_hit_add(q, st, part, where, p, GD_HARM, &q->tmp.v[i], q->g->v[p].info.action, false);
    return ERR_OK;
}

json_t *guard_webhook_request(const guard_req *q, int p, guard_stage st, const char *const *texts,
                              const size_t *lens, size_t n)
{
    if (!policy_ok(q, p) || (unsigned)st >= GS__COUNT || (n && (!texts || !lens)))
        return NULL;
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *s = guard_json_text(texts[i], texts[i] ? lens[i] : 0);
        if (!s || json_array_append_new(arr, s)) {
            json_decref(arr);
            return NULL;
        }
    }
    return json_pack("{s:s, s:s, s:o}", "policy", q->g->v[p].info.name, "stage", stage_names[st], "texts", arr);
}

err_code guard_webhook_answer(guard_req *q, int p, guard_stage st, int status, const char *body, size_t len,
                              uint64_t start_ns, uint64_t ns)
{
    if (!policy_ok(q, p) || (unsigned)st >= GS__COUNT || (!body && len))
        return ERR_INVAL;
    const char *verdict = NULL;
    json_t *j = NULL;
    if (status >= 200 && status < 300 && body)
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(j))
        verdict = json_string_value(json_object_get(j, "verdict"));
    int kind = !verdict ? -1 : strcmp(verdict, "pass") == 0 ? 0 : strcmp(verdict, "flag") == 0 ? 1
                                                                : strcmp(verdict, "block") == 0 ? 2 : -1;
    json_decref(j);
    if (kind < 0)
        return remote_fail(q, p, GD_WEBHOOK, st, 0, -1, 0, start_ns, ns);
    err_code e = guard_check_run(q, p, GD_WEBHOOK, st, start_ns, ns, false);
    if (e || kind == 0)
        return e;
    /* "flag" is only recorded; "block" gets the policy's action (a flag
     * policy flags it) */
    guard_finding f = { .type = GT_WEBHOOK, .start = 0, .len = 0, .score = 1.0f,
                        .rule = kind == 1 ? "webhook_flag" : "webhook_block" };
    guard_hit_add(q, st, 0, -1, p, GD_WEBHOOK, &f, kind == 1 ? GA_FLAG : q->g->v[p].info.action, false);
    return ERR_OK;
}

err_code guard_remote_failed(guard_req *q, int p, guard_detector d, guard_stage st, uint64_t start_ns, uint64_t ns)
{
    if (!policy_ok(q, p) || (unsigned)st >= GS__COUNT || (d != GD_HARM && d != GD_WEBHOOK))
        return ERR_INVAL;
    return remote_fail(q, p, d, st, 0, -1, 0, start_ns, ns);
}
