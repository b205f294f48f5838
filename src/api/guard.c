/*
 * guard.c - one guardrail policy run over one text, the policy list, and
 * the REST routes /api/v1/guard/test and /api/v1/guard/policies (guard.h).
 *
 * A test is what the gateway does for a request, cut down to one policy
 * and one text: a guard_req with only that policy's bit set at the stage,
 * the system prompt for leakage, one guard_scan_part (the text is message
 * 0 and the last user message at the input stage, the answer otherwise),
 * the two remote checks done here with blocking libcurl easy calls - the
 * harm classifier through the configured providers (the simulator is
 * played in-process from its plan), the webhook by a JSON POST - their
 * answers or failures fed back to the engine, the stage ended, and the
 * policy's hits turned into JSON by api_guard_result. The CLI calls it
 * directly; the REST handler validates the body on the event loop and
 * runs the test on the worker loop's thread pool (uv_queue_work), as
 * api/traces.c does with store queries.
 */
#include <curl/curl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>
#include "api/common.h"
#include "api/guard.h"
#include "core/buf.h"
#include "core/pool.h"
#include "http/upstream.h"
#include "providers/anthropic.h"
#include "providers/provider.h"
#include "providers/simulator.h"

#define NAMES_MSG_MAX 1024          /* bytes of the 404's list of policy names */
#define REMOTE_NOTE_MAX 256

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool api_guard_stage_parse(const char *name, guard_stage *out)
{
    for (int s = 0; s < GS__COUNT; s++)
        if (name && strcmp(name, guard_stage_name((guard_stage)s)) == 0) {
            *out = (guard_stage)s;
            return true;
        }
    return false;
}

guard_stage api_guard_default_stage(const guard_policy_info *pi)
{
    for (int s = 0; s < GS__COUNT; s++)
        if (pi->stages & (1u << s))
            return (guard_stage)s;
    return GS_INPUT;
}

/* ---- the result ---- */

static int hit_cmp(const void *a, const void *b)
{
    const guard_hit *x = *(const guard_hit *const *)a, *y = *(const guard_hit *const *)b;
    if (x->f.start != y->f.start)
        return x->f.start < y->f.start ? -1 : 1;
    if (x->f.len != y->f.len)
        return x->f.len > y->f.len ? -1 : 1;
    if (x->detector != y->detector)
        return (int)x->detector - (int)y->detector;
    return x < y ? -1 : x > y; /* the engine's order */
}

static const char *check_error_text(guard_detector d)
{
    switch (d) {
    case GD_DENY: return "a regular expression hit its match limit or the scan's time budget";
    case GD_HARM: return "the classifier call failed";
    case GD_WEBHOOK: return "the webhook call failed";
    default: return "the check could not be completed";
    }
}

json_t *api_guard_result(const guard_engine *g, int policy, guard_stage st, guard_req *q, const char *text,
                         size_t len)
{
    const guard_policy_info *pi = policy >= 0 ? guard_policy_at(g, (size_t)policy) : NULL;
    if (!pi)
        return NULL;
    const guard_hit *hits = NULL;
    size_t nh = guard_req_hits(q, &hits);
    const guard_hit **mine = calloc(nh ? nh : 1, sizeof *mine);
    json_t *findings = json_array(), *errors = json_array();
    json_t *o = NULL;
    if (!mine || !findings || !errors)
        goto out;
    size_t n = 0;
    guard_action verdict = GA_NONE;
    for (size_t i = 0; i < nh; i++)
        if (hits[i].policy == (uint16_t)policy && hits[i].stage == (uint8_t)st) {
            mine[n++] = &hits[i];
            if (hits[i].action > verdict)
                verdict = hits[i].action;
        }
    /* enforced, the engine's verdict also covers what it could not keep
     * (a redaction it has no room to remember becomes a block) */
    if (!pi->monitor && guard_verdict(q, st) > verdict)
        verdict = guard_verdict(q, st);
    qsort(mine, n, sizeof *mine, hit_cmp);
    for (size_t i = 0; i < n; i++) {
        const guard_hit *h = mine[i];
        double score = round((double)h->f.score * 1000.0) / 1000.0;
        json_t *f = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f}", "type", guard_type_name(h->f.type), "detector",
                              guard_detector_name((guard_detector)h->detector), "rule", h->f.rule ? h->f.rule : "",
                              "start", (json_int_t)h->f.start, "end", (json_int_t)h->f.start + (json_int_t)h->f.len,
                              "score", score);
        if (!f || json_array_append_new(findings, f) != 0)
            goto out;
    }
    const guard_check *checks = NULL;
    size_t nc = guard_req_checks(q, &checks);
    for (size_t i = 0; i < nc; i++)
        if (checks[i].error && checks[i].policy == (uint16_t)policy && checks[i].stage == (uint8_t)st) {
            guard_detector d = (guard_detector)checks[i].detector;
            if (json_array_append_new(errors, json_pack("{s:s, s:s}", "detector", guard_detector_name(d),
                                                        "message", check_error_text(d))) != 0)
                goto out;
        }
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "policy", pi->name, "stage", guard_stage_name(st), "mode",
                  pi->monitor ? "monitor" : "enforce", "action", guard_action_name(pi->action), "verdict",
                  guard_action_name(verdict), "findings", findings);
    if (!o)
        goto out;
    if (verdict == GA_REDACT && !pi->monitor) {
        buf b;
        buf_init(&b, len + 64 * n + 4096);
        if (guard_redact(q, st, 0, text, len, &b, NULL) != ERR_OK ||
            json_object_set_new(o, "redacted", guard_json_text(b.p ? b.p : "", b.len)) != 0) {
            buf_free(&b);
            json_decref(o);
            o = NULL;
            goto out;
        }
        buf_free(&b);
    }
    if (json_array_size(errors) && json_object_set(o, "errors", errors) != 0) {
        json_decref(o);
        o = NULL;
    }
out:
    free(mine);
    json_decref(findings);
    json_decref(errors);
    return o;
}

/* ---- remote checks ---- */

typedef struct remote_note {
    guard_detector d;
    char msg[REMOTE_NOTE_MAX];
} remote_note;

typedef struct post_result {
    long status;
    buf body;
    bool toobig;
} post_result;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    post_result *res = ud;
    if (buf_append(&res->body, p, size * n) != ERR_OK) {
        res->toobig = true;
        return 0;
    }
    return size * n;
}

/* POSTs body to url with the headers (NULL-terminated "Name: value"
 * lines). true with res->status and res->body (the caller frees it) when
 * an answer came back, whatever its status; false with why in msg. */
static bool post(const char *url, const char *const *headers, const char *body, size_t len, long timeout_ms,
                 long connect_ms, const char *ca_file, post_result *res, char *msg, size_t cap)
{
    upstream_global_init();
    buf_init(&res->body, API_GUARD_ANSWER_MAX);
    res->status = 0;
    res->toobig = false;
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(msg, cap, "cannot start libcurl");
        return false;
    }
    struct curl_slist *hl = NULL;
    bool ok = true;
    for (size_t i = 0; headers && headers[i] && ok; i++) {
        if (strpbrk(headers[i], "\r\n"))
            continue;
        struct curl_slist *t = curl_slist_append(hl, headers[i]);
        if (!t)
            ok = false;
        else
            hl = t;
    }
    if (!ok) {
        snprintf(msg, cap, "out of memory");
        curl_slist_free_all(hl);
        curl_easy_cleanup(c);
        return false;
    }
    if (timeout_ms <= 0)
        timeout_ms = 10000;
    if (connect_ms <= 0 || connect_ms > timeout_ms)
        connect_ms = timeout_ms;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "genaiops/" GENAIOPS_VERSION);
    if (ca_file && *ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    else if (res->toobig)
        snprintf(msg, cap, "the answer is larger than %zu bytes", API_GUARD_ANSWER_MAX);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(msg, cap, "no answer within %ld ms", timeout_ms);
    else
        snprintf(msg, cap, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc == CURLE_OK;
}

/* The classifier reference resolved as the gateway resolves a model: a
 * deployment names a model; a configured model gives its provider and
 * upstream name; otherwise PROVIDER/MODEL. */
static bool resolve_classifier(const config *cfg, const char *ref, const cfg_provider **prov, const char **model)
{
    const cfg_deployment *d = config_find_deployment(cfg, sv_from(ref));
    if (d && d->model)
        ref = d->model;
    const cfg_model *m = config_find_model(cfg, sv_from(ref));
    if (m) {
        *prov = config_find_provider(cfg, sv_from(m->provider));
        *model = m->upstream_model ? m->upstream_model : m->name;
        return *prov != NULL;
    }
    const char *slash = strchr(ref, '/');
    if (!slash || slash == ref || !slash[1])
        return false;
    *prov = config_find_provider(cfg, sv_make(ref, (size_t)(slash - ref)));
    *model = slash + 1;
    return *prov != NULL;
}

/* The text of a chat completion's first choice (a string, or the text
 * parts of a content array) into out. */
static bool completion_text(const json_t *resp, buf *out)
{
    const json_t *msg = json_object_get(json_array_get(json_object_get(resp, "choices"), 0), "message");
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content))
        return buf_append(out, json_string_value(content), json_string_length(content)) == ERR_OK;
    if (!json_is_array(content))
        return false;
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t) && buf_append(out, json_string_value(t), json_string_length(t)) != ERR_OK)
            return false;
    }
    return true;
}

static atomic_uint_fast64_t sim_seq;

/* Asks the classifier; the answer text goes to out. false with why in msg. */
static bool ask_classifier(const config *cfg, const guard_policy_info *pi, guard_req *q, int policy,
                           const char *text, size_t len, buf *out, char *msg, size_t cap)
{
    const cfg_provider *prov = NULL;
    const char *model = NULL;
    if (!pi->harm_model || !*pi->harm_model) {
        snprintf(msg, cap, "harm.model is not set");
        return false;
    }
    if (!resolve_classifier(cfg, pi->harm_model, &prov, &model)) {
        snprintf(msg, cap, "harm.model '%.100s' is not a configured model, deployment or PROVIDER/MODEL",
                 pi->harm_model);
        return false;
    }
    json_t *req = guard_harm_request(q, policy, model, text, len);
    if (!req) {
        snprintf(msg, cap, "out of memory");
        return false;
    }
    bool ok = false;
    json_t *resp = NULL;
    char *body = NULL;
    pool *pl = pool_new(0);
    post_result res = { 0 };
    buf_init(&res.body, API_GUARD_ANSWER_MAX);
    if (!pl) {
        snprintf(msg, cap, "out of memory");
        goto out;
    }
    if (prov->type == PROVIDER_SIMULATOR) {
        /* played at once, delays skipped: the simulator answers what its plan says */
        sim_plan plan;
        if (sim_plan_make(&prov->sim, SIM_CHAT, model, req, atomic_fetch_add(&sim_seq, 1), pl, &plan) != ERR_OK) {
            snprintf(msg, cap, "out of memory");
            goto out;
        }
        if (plan.end != SIM_END_OK) {
            snprintf(msg, cap, "the simulated classifier %s",
                     plan.end == SIM_END_HANG ? "did not answer" : "broke the connection");
            goto out;
        }
        for (size_t i = 0; i < plan.nsteps; i++)
            if (buf_append(&res.body, plan.steps[i].data, plan.steps[i].len) != ERR_OK) {
                snprintf(msg, cap, "the answer is larger than %zu bytes", API_GUARD_ANSWER_MAX);
                goto out;
            }
        res.status = plan.status;
    } else {
        gw_endpoint wire;
        provider_http ph;
        if (!provider_endpoint(prov, EP_CHAT, &wire) ||
            provider_build_http(prov, wire, model, false, pl, &ph) != ERR_OK) {
            snprintf(msg, cap, "provider '%s' cannot serve chat completions", prov->name);
            goto out;
        }
        json_t *wire_req = json_incref(req);
        if (wire == EP_MESSAGES) {
            xlate_err xe = { 0 };
            json_decref(wire_req);
            wire_req = anthropic_from_chat_request(req, model, &xe);
            if (!wire_req) {
                snprintf(msg, cap, "cannot build the classifier request: %.200s", xe.message);
                goto out;
            }
        }
        body = json_dumps(wire_req, JSON_COMPACT);
        json_decref(wire_req);
        if (!body) {
            snprintf(msg, cap, "out of memory");
            goto out;
        }
        buf_free(&res.body);
        char why[200] = "";
        if (!post(ph.url, ph.headers, body, strlen(body), pi->harm_timeout_ms, prov->connect_timeout_ms,
                  prov->ca_file, &res, why, sizeof why)) {
            snprintf(msg, cap, "classifier %s: %s", pi->harm_model, why);
            goto out;
        }
    }
    if (res.status < 200 || res.status > 299) {
        snprintf(msg, cap, "classifier %s answered HTTP %ld", pi->harm_model, res.status);
        goto out;
    }
    resp = json_loadb(res.body.p ? res.body.p : "", res.body.len, 0, NULL);
    if (resp && prov->type == PROVIDER_ANTHROPIC) {
        json_t *chat = anthropic_to_chat_response(resp, NULL);
        json_decref(resp);
        resp = chat;
    }
    if (!resp || !completion_text(resp, out)) {
        snprintf(msg, cap, "classifier %s: the answer is not a chat completion", pi->harm_model);
        goto out;
    }
    ok = true;
out:
    json_decref(req);
    json_decref(resp);
    free(body);
    buf_free(&res.body);
    pool_free(pl);
    return ok;
}

/* Whether the engine counted the (policy, detector, stage) check as failed
 * (a remote answer it could not read counts so, like no answer). */
static bool check_failed(const guard_req *q, int policy, guard_detector d, guard_stage st)
{
    const guard_check *c = NULL;
    size_t n = guard_req_checks(q, &c);
    for (size_t i = 0; i < n; i++)
        if (c[i].policy == (uint16_t)policy && c[i].detector == (uint8_t)d && c[i].stage == (uint8_t)st)
            return c[i].error;
    return false;
}

static void run_harm(const config *cfg, const guard_policy_info *pi, guard_req *q, int policy, guard_stage st,
                     const char *text, size_t len, remote_note *note)
{
    uint64_t t0 = mono_ns();
    buf answer;
    buf_init(&answer, API_GUARD_ANSWER_MAX);
    char why[REMOTE_NOTE_MAX] = "";
    if (ask_classifier(cfg, pi, q, policy, text, len, &answer, why, sizeof why)) {
        guard_harm_answer(q, policy, st, 0, -1, len, answer.p ? answer.p : "", answer.len, t0,
                          mono_ns() - t0);
        if (check_failed(q, policy, GD_HARM, st))
            snprintf(note->msg, sizeof note->msg, "classifier %s: the answer is not in Llama Guard's format "
                     "('safe', or 'unsafe' and a line of categories such as S1,S10)", pi->harm_model);
    } else {
        guard_remote_failed(q, policy, GD_HARM, st, t0, mono_ns() - t0);
        snprintf(note->msg, sizeof note->msg, "%s", why);
    }
    note->d = GD_HARM;
    buf_free(&answer);
}

static void run_webhook(const guard_policy_info *pi, guard_req *q, int policy, guard_stage st, const char *text,
                        size_t len, remote_note *note)
{
    uint64_t t0 = mono_ns();
    note->d = GD_WEBHOOK;
    const char *texts[1] = { text };
    size_t lens[1] = { len };
    json_t *req = guard_webhook_request(q, policy, st, texts, lens, 1);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    const char **hdrs = calloc(pi->nwebhook_headers + 2, sizeof *hdrs);
    char **owned = calloc(pi->nwebhook_headers + 1, sizeof *owned);
    post_result res = { 0 };
    char why[200] = "";
    bool sent = false;
    if (body && hdrs && owned) {
        size_t n = 0;
        hdrs[n++] = "Content-Type: application/json";
        bool ok = true;
        for (size_t i = 0; i < pi->nwebhook_headers && ok; i++) {
            const cfg_header *h = &pi->webhook_headers[i];
            size_t sz = strlen(h->name) + strlen(h->value) + 3;
            if (!(owned[i] = malloc(sz)))
                ok = false;
            else {
                snprintf(owned[i], sz, "%s: %s", h->name, h->value);
                hdrs[n++] = owned[i];
            }
        }
        hdrs[n] = NULL;
        if (ok)
            sent = post(pi->webhook_url, hdrs, body, strlen(body),
                        pi->webhook_timeout_ms > 0 ? pi->webhook_timeout_ms : 2000, 0, NULL, &res, why, sizeof why);
        else
            snprintf(why, sizeof why, "out of memory");
    } else
        snprintf(why, sizeof why, "out of memory");
    if (sent) {
        guard_webhook_answer(q, policy, st, (int)res.status, res.body.p ? res.body.p : "", res.body.len, t0,
                             mono_ns() - t0);
        if (check_failed(q, policy, GD_WEBHOOK, st)) {
            if (res.status < 200 || res.status > 299)
                snprintf(note->msg, sizeof note->msg, "the webhook answered HTTP %ld", res.status);
            else
                snprintf(note->msg, sizeof note->msg,
                         "the webhook's answer is not {\"verdict\": \"pass\" | \"flag\" | \"block\"}");
        }
    } else {
        guard_remote_failed(q, policy, GD_WEBHOOK, st, t0, mono_ns() - t0);
        snprintf(note->msg, sizeof note->msg, "cannot call the webhook: %s", why);
    }
    buf_free(&res.body);
    for (size_t i = 0; owned && i < pi->nwebhook_headers; i++)
        free(owned[i]);
    free(owned);
    free(hdrs);
    free(body);
}

/* Puts the remote checks' own reasons into the result's errors. */
static void note_errors(json_t *o, const remote_note *notes, size_t n)
{
    json_t *errors = json_object_get(o, "errors");
    for (size_t i = 0; i < n; i++) {
        if (!notes[i].msg[0])
            continue;
        const char *det = guard_detector_name(notes[i].d);
        bool replaced = false;
        size_t k;
        json_t *e;
        json_array_foreach(errors, k, e)
        {
            const char *d = json_string_value(json_object_get(e, "detector"));
            if (d && strcmp(d, det) == 0) {
                json_object_set_new(e, "message", json_string(notes[i].msg));
                replaced = true;
                break;
            }
        }
        if (!replaced) {
            if (!errors) {
                errors = json_array();
                if (!errors || json_object_set_new(o, "errors", errors) != 0)
                    return;
            }
            json_array_append_new(errors, json_pack("{s:s, s:s}", "detector", det, "message", notes[i].msg));
        }
    }
}

static void stages_text(unsigned stages, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int s = 0; s < GS__COUNT; s++)
        if (stages & (1u << s)) {
            int w = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", guard_stage_name((guard_stage)s));
            if (w < 0 || (size_t)w >= cap - o)
                return;
            o += (size_t)w;
        }
}

err_code api_guard_run(const config *cfg, const guard_engine *g, int policy, guard_stage st, const char *text,
                       size_t len, const char *system, size_t system_len, json_t **out, char *msg, size_t cap)
{
    *out = NULL;
    const guard_policy_info *pi = g && policy >= 0 ? guard_policy_at(g, (size_t)policy) : NULL;
    if (!pi || policy >= GUARD_MAX_POLICIES) {
        snprintf(msg, cap, "no guardrail policy #%d", policy);
        return ERR_INVAL;
    }
    if ((unsigned)st >= GS__COUNT || !(pi->stages & (1u << st))) {
        char stages[64];
        stages_text(pi->stages, stages, sizeof stages);
        snprintf(msg, cap, "policy '%s' does not run at stage %s (its stages: %s)", pi->name,
                 (unsigned)st < GS__COUNT ? guard_stage_name(st) : "?", stages);
        return ERR_INVAL;
    }
    guard_set set[GS__COUNT] = { 0 };
    set[st] = (guard_set)1 << policy;
    guard_req *q = guard_req_new(g, set);
    err_code e = q ? ERR_OK : ERR_NOMEM;
    remote_note notes[2] = { { GD_HARM, "" }, { GD_WEBHOOK, "" } };
    if (e == ERR_OK && system && system_len)
        e = guard_req_set_system(q, system, system_len);
    if (e == ERR_OK)
        e = guard_scan_part(q, st, GR_USER, GUARD_PART_LAST_USER, 0, st == GS_INPUT ? 0 : -1, text ? text : "",
                            text ? len : 0);
    if (e == ERR_OK && (pi->detectors & (1u << GD_HARM)))
        run_harm(cfg, pi, q, policy, st, text ? text : "", text ? len : 0, &notes[0]);
    if (e == ERR_OK && (pi->detectors & (1u << GD_WEBHOOK)) && pi->webhook_url)
        run_webhook(pi, q, policy, st, text ? text : "", text ? len : 0, &notes[1]);
    if (e == ERR_OK)
        e = guard_stage_end(q, st);
    if (e == ERR_OK) {
        *out = api_guard_result(g, policy, st, q, text ? text : "", text ? len : 0);
        if (*out)
            note_errors(*out, notes, countof(notes));
        else
            e = ERR_NOMEM;
    }
    if (e != ERR_OK)
        snprintf(msg, cap, "policy '%s': %s", pi->name, err_message(e));
    guard_req_free(q);
    return e;
}

/* ---- the policy list ---- */

static const cfg_guard_policy *cfg_policy(const config *cfg, const char *name)
{
    for (size_t i = 0; cfg && i < cfg->guardrails.npolicies; i++)
        if (cfg->guardrails.policies[i].name && strcmp(cfg->guardrails.policies[i].name, name) == 0)
            return &cfg->guardrails.policies[i];
    return NULL;
}

static json_t *str_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (v[i] && json_array_append_new(a, json_string(v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

json_t *api_guard_policies(const config *cfg, const guard_engine *g)
{
    json_t *data = json_array();
    size_t n = g ? guard_policy_count(g) : 0;
    for (size_t i = 0; data && i < n; i++) {
        const guard_policy_info *pi = guard_policy_at(g, i);
        const cfg_guard_policy *cp = cfg_policy(cfg, pi->name);
        json_t *stages = json_array(), *dets = json_array();
        for (int s = 0; stages && s < GS__COUNT; s++)
            if (pi->stages & (1u << s))
                json_array_append_new(stages, json_string(guard_stage_name((guard_stage)s)));
        for (int d = 0; dets && d < GD__COUNT; d++)
            if (pi->detectors & (1u << d))
                json_array_append_new(dets, json_string(guard_detector_name((guard_detector)d)));
        json_t *p = json_pack("{s:s, s:o, s:o, s:s, s:s, s:b, s:I, s:o, s:o, s:o, s:s}", "name", pi->name, "stages",
                              stages, "detectors", dets, "action", guard_action_name(pi->action), "mode",
                              pi->monitor ? "monitor" : "enforce", "restore", pi->restore, "stream_holdback",
                              (json_int_t)pi->stream_holdback, "models",
                              cp ? str_array(cp->models, cp->nmodels) : json_array(), "deployments",
                              cp ? str_array(cp->deployments, cp->ndeployments) : json_array(), "keys",
                              cp ? str_array(cp->keys, cp->nkeys) : json_array(), "on_error",
                              pi->fail_open ? "open" : "closed");
        if (p && (pi->detectors & (1u << GD_HARM)) && pi->harm_model)
            json_object_set_new(p, "harm_model", json_string(pi->harm_model));
        if (!p || json_array_append_new(data, p) != 0) {
            json_decref(data);
            return NULL;
        }
    }
    if (!data)
        return NULL;
    return json_pack("{s:o}", "data", data);
}

/* ---- REST ---- */

/* OpenAI's error shape; param and code may be NULL. */
static void send_err(http_req *r, int status, const char *param, const char *code, const char *fmt, ...)
    PRINTF_LIKE(5, 6);
static void send_err(http_req *r, int status, const char *param, const char *code, const char *fmt, ...)
{
    char msg[NAMES_MSG_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", msg, "type",
                          status >= 500 ? "server_error" : "invalid_request_error", "param", param, "code", code);
    api_send_json(r, status, j);
    json_decref(j);
}

typedef struct gjob {
    uv_work_t work;
    http_req *r;
    const config *cfg;
    const guard_engine *g;
    int policy;
    guard_stage st;
    json_t *body;               /* owns the strings below */
    const char *text, *system;
    size_t len, system_len;
    json_t *out;
    err_code rc;
    char msg[256];
} gjob;

static void job_work(uv_work_t *w)
{
    gjob *j = w->data;
    j->rc = api_guard_run(j->cfg, j->g, j->policy, j->st, j->text, j->len, j->system, j->system_len, &j->out, j->msg,
                          sizeof j->msg);
}

static void job_free(gjob *j)
{
    json_decref(j->out);
    json_decref(j->body);
    free(j);
}

static void job_done(uv_work_t *w, int status)
{
    gjob *j = w->data;
    http_req *r = j->r;
    if (r->aborted)
        http_req_abandon(r);
    else if (status == UV_ECANCELED)
        send_err(r, 503, NULL, "shutting_down", "the server is shutting down");
    else if (j->rc == ERR_INVAL)
        send_err(r, 400, "stage", "invalid_stage", "%s", j->msg);
    else if (j->rc != ERR_OK)
        send_err(r, 500, NULL, NULL, "%s", j->msg);
    else
        api_send_json(r, 200, j->out);
    job_free(j);
}

static void abort_noop(http_req *r) { UNUSED(r); }

/* The configured names, comma-separated, cut at NAMES_MSG_MAX bytes. */
static void policy_names(const guard_engine *g, char *out, size_t cap)
{
    size_t n = g ? guard_policy_count(g) : 0, o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *name = guard_policy_at(g, i)->name;
        int w = snprintf(out + o, cap - o, "%s%s", i ? ", " : "", name);
        if (w < 0 || (size_t)w >= cap - o) {
            if (cap > 4)
                memcpy(out + (o < cap - 4 ? o : cap - 4), "...", 4);
            return;
        }
        o += (size_t)w;
    }
}

static void test_route(http_req *r, const config *cfg, const guard_engine *g)
{
    json_error_t je;
    json_t *body = r->body_len ? json_loadb(r->body, r->body_len, JSON_ALLOW_NUL, &je) : NULL;
    if (!json_is_object(body)) {
        json_decref(body);
        send_err(r, 400, NULL, "invalid_body",
                 "the body must be a JSON object {\"policy\", \"text\", \"stage\"?, \"system\"?}");
        return;
    }
    const json_t *jp = json_object_get(body, "policy"), *jt = json_object_get(body, "text");
    const json_t *js = json_object_get(body, "stage"), *jsys = json_object_get(body, "system");
    const char *bad = NULL;
    if (!json_is_string(jp) || !json_string_length(jp))
        bad = "policy";
    else if (!json_is_string(jt))
        bad = "text";
    else if (js && !json_is_null(js) && !json_is_string(js))
        bad = "stage";
    else if (jsys && !json_is_null(jsys) && !json_is_string(jsys))
        bad = "system";
    if (bad) {
        send_err(r, 400, bad, "invalid_value", "'%s' must be a %sstring", bad,
                 strcmp(bad, "policy") == 0 ? "non-empty " : "");
        json_decref(body);
        return;
    }
    if (json_string_length(jt) > API_GUARD_TEXT_MAX || (jsys && json_string_length(jsys) > API_GUARD_TEXT_MAX)) {
        send_err(r, 413, json_string_length(jt) > API_GUARD_TEXT_MAX ? "text" : "system", "text_too_large",
                 "a test takes at most %zu bytes of text", API_GUARD_TEXT_MAX);
        json_decref(body);
        return;
    }
    const char *name = json_string_value(jp);
    int idx = g ? guard_policy_find(g, name) : -1;
    if (idx < 0) {
        char names[NAMES_MSG_MAX];
        policy_names(g, names, sizeof names);
        send_err(r, 404, "policy", "policy_not_found", "no guardrail policy named '%.100s' (%s%s)", name,
                 names[0] ? "configured: " : "none is configured", names);
        json_decref(body);
        return;
    }
    const guard_policy_info *pi = guard_policy_at(g, (size_t)idx);
    guard_stage st = api_guard_default_stage(pi);
    if (json_is_string(js) && !api_guard_stage_parse(json_string_value(js), &st)) {
        send_err(r, 400, "stage", "invalid_stage", "'stage' must be input, output or tool");
        json_decref(body);
        return;
    }
    if (!(pi->stages & (1u << st))) {
        char stages[64];
        stages_text(pi->stages, stages, sizeof stages);
        send_err(r, 400, "stage", "invalid_stage", "policy '%s' does not run at stage %s (its stages: %s)", pi->name,
                 guard_stage_name(st), stages);
        json_decref(body);
        return;
    }
    gjob *j = calloc(1, sizeof *j);
    if (!j) {
        json_decref(body);
        send_err(r, 500, NULL, NULL, "out of memory");
        return;
    }
    *j = (gjob){ .r = r, .cfg = cfg, .g = g, .policy = idx, .st = st, .body = body, .text = json_string_value(jt),
                 .len = json_string_length(jt) };
    if (json_is_string(jsys)) {
        j->system = json_string_value(jsys);
        j->system_len = json_string_length(jsys);
    }
    j->work.data = j;
    r->on_abort = abort_noop;
    if (uv_queue_work(http_worker_loop(r->worker), &j->work, job_work, job_done) != 0) {
        job_free(j);
        send_err(r, 503, NULL, NULL, "cannot queue the guardrail test");
    }
}

void api_guard(http_req *r, const config *cfg, const guard_engine *g)
{
    bool get = sv_eq_cstr(r->method, "GET") || sv_eq_cstr(r->method, "HEAD");
    bool post_m = sv_eq_cstr(r->method, "POST");
    if (sv_eq_cstr(r->path, "/api/v1/guard/test")) {
        if (!post_m) {
            http_resp_header(r, "allow", "POST");
            send_err(r, 405, NULL, "method_not_allowed", "use POST on /api/v1/guard/test");
            return;
        }
        test_route(r, cfg, g);
    } else if (sv_eq_cstr(r->path, "/api/v1/guard/policies")) {
        if (!get) {
            http_resp_header(r, "allow", "GET, HEAD");
            send_err(r, 405, NULL, "method_not_allowed", "use GET on /api/v1/guard/policies");
            return;
        }
        json_t *j = api_guard_policies(cfg, g);
        api_send_json(r, 200, j);
        json_decref(j);
    } else
        send_err(r, 404, NULL, "unknown_url", "Unknown request URL: %.*s %.*s", (int)MIN(r->method.len, 16),
                 r->method.p, (int)MIN(r->path.len, 200), r->path.p);
}
