/*
 * guarded.c - guardrails on the gateway's bodies and streams (guarded.h).
 *
 * A body is walked once to collect its "sites": the JSON strings that are
 * texts of a stage (a message's content or text parts, a tool call's
 * arguments, an answer). Each site is scanned as one part (its index is
 * the part id), then, when the stage's verdict asks for a rewrite, the body
 * is copied with each changed site replaced by a new string literal.
 *
 * Streams: a guard_stream per (choice, tool call) or (content block) holds
 * back the tail of its text (guard.h); each event is written again with
 * its text replaced by what may go out now, and when a choice or block
 * ends, what is still held goes out in one extra event just before the
 * event that ends it, so clients see the usual sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/jscan.h"
#include "gateway/guarded.h"
#include "http/sse.h"

#define MAX_SITES 4096

static inline bool jget(jval obj, const char *key, jval *out) { return jscan_get(obj, key, out, NULL); }

/* Several members of an object in one walk (jscan_get walks the whole
 * object per key): out[i] is the value of names[i] (the last one when a
 * key repeats, as jscan_get), J_NONE when absent. */
static void members(jval obj, const char *const *names, size_t n, jval *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (jval){ 0 };
    if (obj.type != J_OBJECT)
        return;
    jscan_iter it;
    jval k, v;
    jscan_iter_init(&it, obj);
    while (jscan_next(&it, &k, &v)) {
        int i = jscan_match(k, names, n);
        if (i >= 0)
            out[i] = v;
    }
}

#define MAX_STREAMS 64

typedef struct site {
    jval str;                    /* the J_STRING span in the body */
    guard_stage st;
    guard_role role;
    int32_t where;               /* message index, or -1 */
    unsigned flags;
    const char *text;            /* unescaped content */
    size_t len;
} site;

#define INLINE_SITES 8 /* a request of a few messages: no allocation */

/* The texts found; v starts as inl (a sites is never copied) and moves
 * to the pool when it outgrows it. */
typedef struct sites {
    site *v;
    size_t n, cap;
    pool *p;
    bool nomem;
    site inl[INLINE_SITES];
} sites;

/* The inline array is left as it is: add_site clears each entry it takes. */
static void sites_init(sites *s, pool *p)
{
    s->v = NULL;
    s->n = s->cap = 0;
    s->p = p;
    s->nomem = false;
}

static void add_site(sites *s, jval str, guard_stage st, guard_role role, int32_t where)
{
    if (str.type != J_STRING || s->nomem || s->n >= MAX_SITES)
        return;
    if (!s->cap) {
        s->v = s->inl;
        s->cap = INLINE_SITES;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap * 2;
        site *nv = pool_alloc(s->p, nc * sizeof *nv);
        if (!nv) {
            s->nomem = true;
            return;
        }
        if (s->n)
            memcpy(nv, s->v, s->n * sizeof *nv);
        s->v = nv;
        s->cap = nc;
    }
    site *t = &s->v[s->n++];
    memset(t, 0, sizeof *t);
    t->str = str;
    t->st = st;
    t->role = role;
    t->where = where;
}

/* The unescaped text of a string span: in place when it has no escapes. */
static bool site_text(pool *p, jval str, const char **text, size_t *len)
{
    const char *in = str.p + 1;
    size_t n = str.len - 2;
    if (!memchr(in, '\\', n)) {
        *text = in;
        *len = n;
        return true;
    }
    char *dst = pool_alloc(p, n + 1);
    if (!dst || !jscan_string(str, dst, n + 1, len))
        return false;
    *text = dst;
    return true;
}

static const char *const role_names[] = { "system", "developer", "user", "assistant", "tool", "function" };

static guard_role role_of(jval v)
{
    switch (jscan_match(v, role_names, countof(role_names))) {
    case 0:
    case 1: return GR_SYSTEM;
    case 2: return GR_USER;
    case 3: return GR_ASSISTANT;
    case 4:
    case 5: return GR_TOOL;
    default: return GR_OTHER;
    }
}

/* Every string leaf of a JSON value (tool inputs given as objects). */
static void leaves(sites *s, jval v, guard_stage st, guard_role role, int32_t where, int depth)
{
    if (v.type == J_STRING) {
        add_site(s, v, st, role, where);
        return;
    }
    if ((v.type != J_OBJECT && v.type != J_ARRAY) || depth > 16)
        return;
    jscan_iter it;
    jval k, x;
    jscan_iter_init(&it, v);
    while (jscan_next(&it, &k, &x))
        leaves(s, x, st, role, where, depth + 1);
}

/* A content value: a string, or parts with "text" (and Anthropic's
 * tool_result with its own content, tool_use with its input). */
static void content_sites(sites *s, jval content, guard_stage st, guard_role role, int32_t where, int depth)
{
    if (content.type == J_STRING) {
        add_site(s, content, st, role, where);
        return;
    }
    if (content.type != J_ARRAY || depth > 4)
        return;
    jscan_iter it;
    jval part;
    jscan_iter_init(&it, content);
    while (jscan_next(&it, NULL, &part)) {
        if (part.type == J_STRING) {
            add_site(s, part, st, role, where);
            continue;
        }
        jval v;
        if (jget(part, "text", &v))
            add_site(s, v, st, role, where);
        if (jget(part, "content", &v))
            content_sites(s, v, st, role == GR_ASSISTANT ? GR_ASSISTANT : GR_TOOL, where, depth + 1);
        if (jget(part, "input", &v))
            leaves(s, v, st, role, where, 0);
    }
}

static void tool_call_sites(sites *s, jval calls, guard_stage st, guard_role role, int32_t where)
{
    jscan_iter it;
    jval call, fn, args;
    jscan_iter_init(&it, calls);
    while (jscan_next(&it, NULL, &call))
        if (jget(call, "function", &fn) && jget(fn, "arguments", &args))
            add_site(s, args, st, role, where);
}

static bool openai_message_sites(sites *s, jval messages);
static void recorded_message_sites(sites *s, const gw_msg *m, int n);

static bool span_in(jval v, jval body) { return !v.type || (v.p >= body.p && v.len <= body.len && v.p - body.p <= (ptrdiff_t)(body.len - v.len)); }

/* Whether every span the decoder recorded lies in this body (a body
 * written again, as a rendered prompt's is, must not be read through the
 * spans of the one before). */
static bool recorded_in(const gw_request *rq, jval body)
{
    for (int i = 0; i < rq->nmsgs && i < GW_MSGS; i++)
        if (!span_in(rq->msgs[i].role, body) || !span_in(rq->msgs[i].content, body) ||
            !span_in(rq->msgs[i].tool_calls, body))
            return false;
    return true;
}

static void request_sites(sites *s, gw_endpoint ep, api_format fmt, jval root, jval hint, const gw_request *rq)
{
    jval v;
    if (ep == EP_COMPLETIONS || ep == EP_EMBEDDINGS) {
        if (hint.type || jget(root, ep == EP_COMPLETIONS ? "prompt" : "input", &v))
            content_sites(s, hint.type ? hint : v, GS_INPUT, GR_USER, -1, 0);
        return;
    }
    if (rq && rq->nmsgs > 0 && fmt == API_OPENAI && recorded_in(rq, root)) {
        recorded_message_sites(s, rq->msgs, rq->nmsgs);
        return;
    }
    static const char *const top[] = { "messages", "system" };
    jval f[2];
    if (hint.type == J_ARRAY && fmt == API_OPENAI)
        f[0] = hint, f[1] = (jval){ 0 };
    else
        members(root, top, 2, f);
    if (fmt == API_ANTHROPIC && f[1].type)
        content_sites(s, f[1], GS_INPUT, GR_SYSTEM, -1, 0);
    if (!f[0].type)
        return;
    if (fmt == API_OPENAI && f[0].type == J_ARRAY && openai_message_sites(s, f[0]))
        return;
    v = f[0];
    jscan_iter it;
    jval m;
    int32_t i = 0;
    jscan_iter_init(&it, v);
    static const char *const keys[] = { "role", "content", "tool_calls" };
    while (jscan_next(&it, NULL, &m)) {
        jval mf[3];
        members(m, keys, 3, mf);
        guard_role r = mf[0].type ? role_of(mf[0]) : GR_OTHER;
        if (mf[1].type)
            content_sites(s, mf[1], GS_INPUT, r, i, 0);
        if (mf[2].type)
            tool_call_sites(s, mf[2], GS_INPUT, r, i);
        i++;
    }
}

static void response_sites(sites *s, gw_endpoint ep, api_format fmt, jval root)
{
    jval v;
    if (fmt == API_ANTHROPIC) {
        jscan_iter it;
        jval block, t;
        if (!jget(root, "content", &v))
            return;
        jscan_iter_init(&it, v);
        while (jscan_next(&it, NULL, &block)) {
            if (jget(block, "text", &t))
                add_site(s, t, GS_OUTPUT, GR_ASSISTANT, -1);
            if (jget(block, "input", &t))
                leaves(s, t, GS_TOOL, GR_ASSISTANT, -1, 0);
        }
        return;
    }
    if (!jget(root, "choices", &v))
        return;
    jscan_iter it;
    jval ch;
    jscan_iter_init(&it, v);
    while (jscan_next(&it, NULL, &ch)) {
        jval msg, t;
        if (ep == EP_COMPLETIONS) {
            if (jget(ch, "text", &t))
                add_site(s, t, GS_OUTPUT, GR_ASSISTANT, -1);
            continue;
        }
        if (!jget(ch, "message", &msg))
            continue;
        static const char *const keys[] = { "content", "tool_calls" };
        jval f[2];
        members(msg, keys, 2, f);
        if (f[0].type)
            add_site(s, f[0], GS_OUTPUT, GR_ASSISTANT, -1);
        if (f[1].type)
            tool_call_sites(s, f[1], GS_TOOL, GR_ASSISTANT, -1);
    }
}

/* ---- one pass over OpenAI answers and messages -------------------------- */

/* The texts of an OpenAI chat or completions answer, or of a request's
 * messages, found in one pass with jscan_walk: jscan's iterators skip a
 * container to step over it and then walk it again to look inside, which
 * for an answer nested four deep costs four passes. The walk reads each
 * byte once, looks into choices[].message (content,
 * tool_calls[].function.arguments), choices[].text and messages[] (role,
 * content as a string or parts, tool_calls), and passes everything else.
 * It reports every occurrence of a repeated key (a client keeps one of
 * them; all are scanned), and compares keys unescaped: "cont\u0065nt" is
 * the content (a raw compare let such a message through unscanned). An
 * answer comes from the upstream unvalidated: anything malformed stops the
 * walk, never reading past the end, and the caller falls back to jscan. */
typedef struct walk {
    jscan_walk j;
    sites *s;
    gw_endpoint ep;
    guard_stage text_st, args_st; /* the stages of texts and of tool-call arguments */
    int32_t where;                /* the message index (requests), -1 (answers) */
} walk;

#define KEY_IS(k, lit) JSCAN_WALK_KEY_IS(&w->j, k, lit)

/* The value at the cursor where a text is expected: a string is a site
 * (role assistant; a request's message walk sets its sites' role
 * afterwards), anything else is passed. */
static void w_text(walk *w, guard_stage st)
{
    jval v = jscan_walk_value(&w->j);
    if (v.type == J_STRING && w->j.ok)
        add_site(w->s, v, st, GR_ASSISTANT, w->where);
}

/* tool_calls[] at the cursor: each call's function.arguments. */
static void w_calls(walk *w)
{
    jval k, f;
    if (!jscan_walk_enter(&w->j, '['))
        return;
    for (size_t i = 0; jscan_walk_element(&w->j, i); i++) {
        if (!jscan_walk_enter(&w->j, '{'))
            continue;
        for (size_t n = 0; jscan_walk_member(&w->j, n, &k); n++) {
            if (!KEY_IS(k, "function")) {
                jscan_walk_value(&w->j);
                continue;
            }
            if (!jscan_walk_enter(&w->j, '{'))
                continue;
            for (size_t m = 0; jscan_walk_member(&w->j, m, &f); m++) {
                if (KEY_IS(f, "arguments"))
                    w_text(w, w->args_st);
                else
                    jscan_walk_value(&w->j);
            }
        }
    }
}

/* choices[] of an answer at the cursor. */
static void w_choices(walk *w)
{
    jval k, m;
    if (!jscan_walk_enter(&w->j, '['))
        return;
    for (size_t i = 0; jscan_walk_element(&w->j, i); i++) {
        if (!jscan_walk_enter(&w->j, '{'))
            continue;
        for (size_t n = 0; jscan_walk_member(&w->j, n, &k); n++) {
            if (w->ep == EP_COMPLETIONS) {
                if (KEY_IS(k, "text"))
                    w_text(w, w->text_st);
                else
                    jscan_walk_value(&w->j);
                continue;
            }
            if (!KEY_IS(k, "message")) {
                jscan_walk_value(&w->j);
                continue;
            }
            if (!jscan_walk_enter(&w->j, '{'))
                continue;
            for (size_t q = 0; jscan_walk_member(&w->j, q, &m); q++) {
                if (KEY_IS(m, "content"))
                    w_text(w, w->text_st);
                else if (KEY_IS(m, "tool_calls"))
                    w_calls(w);
                else
                    jscan_walk_value(&w->j);
            }
        }
    }
}

/* The sites of an OpenAI answer in one pass; false when the body is not
 * well-formed (s is then reset). */
static bool openai_answer_sites(sites *s, gw_endpoint ep, const char *body, size_t len)
{
    walk wk = { .s = s, .ep = ep, .text_st = GS_OUTPUT, .args_st = GS_TOOL, .where = -1 }, *w = &wk;
    jval k;
    jscan_walk_init(&w->j, body, len);
    if (jscan_walk_enter(&w->j, '{')) {
        for (size_t n = 0; jscan_walk_member(&w->j, n, &k); n++) {
            if (KEY_IS(k, "choices"))
                w_choices(w);
            else
                jscan_walk_value(&w->j);
        }
        if (jscan_walk_done(&w->j))
            return true;
    }
    s->n = 0;
    return false;
}

/* A message's content at the cursor: a string, or parts (strings or
 * objects with a text). */
static void w_content(walk *w)
{
    jval k;
    if (jscan_walk_peek(&w->j) != J_ARRAY) {
        w_text(w, w->text_st);
        return;
    }
    jscan_walk_enter(&w->j, '[');
    for (size_t i = 0; jscan_walk_element(&w->j, i); i++) {
        if (jscan_walk_peek(&w->j) != J_OBJECT) {
            w_text(w, w->text_st);
            continue;
        }
        jscan_walk_enter(&w->j, '{');
        for (size_t n = 0; jscan_walk_member(&w->j, n, &k); n++) {
            if (KEY_IS(k, "text"))
                w_text(w, w->text_st);
            else
                jscan_walk_value(&w->j);
        }
    }
}

/* The sites of an OpenAI messages array in one pass; false when it is not
 * well-formed (s is then reset to n0). */
static bool openai_message_sites(sites *s, jval messages)
{
    size_t n0 = s->n;
    walk wk = { .s = s, .text_st = GS_INPUT, .args_st = GS_INPUT, .where = 0 }, *w = &wk;
    jval k;
    jscan_walk_init(&w->j, messages.p, messages.len);
    if (!jscan_walk_enter(&w->j, '[')) {
        s->n = n0;
        return false;
    }
    for (size_t i = 0; jscan_walk_element(&w->j, i); i++, w->where++) {
        size_t first = s->n;
        jval role = { J_NONE, NULL, 0 };
        if (jscan_walk_enter(&w->j, '{')) {
            for (size_t n = 0; jscan_walk_member(&w->j, n, &k); n++) {
                if (KEY_IS(k, "role")) {
                    jval v = jscan_walk_value(&w->j);
                    if (v.type == J_STRING)
                        role = v;
                } else if (KEY_IS(k, "content")) {
                    w_content(w);
                } else if (KEY_IS(k, "tool_calls")) {
                    w_calls(w);
                } else {
                    jscan_walk_value(&w->j);
                }
            }
        }
        /* the role may come after the content: set it on the message's sites now */
        guard_role r = role.type ? role_of(role) : GR_OTHER;
        for (size_t x = first; x < s->n; x++)
            s->v[x].role = r;
    }
    if (!jscan_walk_done(&w->j)) {
        s->n = n0;
        return false;
    }
    return true;
}

/* The sites of the messages the decoder recorded while checking them
 * (gw_request.msgs): each content and tool_calls value walked as
 * openai_message_sites walks it, without walking the rest again. */
static void recorded_message_sites(sites *s, const gw_msg *m, int n)
{
    walk wk = { .s = s, .text_st = GS_INPUT, .args_st = GS_INPUT }, *w = &wk;
    for (int i = 0; i < n; i++) {
        size_t first = s->n;
        w->where = i;
        /* in the body's order, as the walk finds them (the sites' order
         * numbers the placeholders) */
        bool calls_first = m[i].tool_calls.type && m[i].content.type && m[i].tool_calls.p < m[i].content.p;
        for (int k = 0; k < 2; k++) {
            if ((k == 0) != calls_first) {
                if (m[i].content.type == J_STRING) {
                    add_site(s, m[i].content, GS_INPUT, GR_OTHER, i);
                } else if (m[i].content.type == J_ARRAY) {
                    jscan_walk_init(&w->j, m[i].content.p, m[i].content.len);
                    w_content(w);
                }
            } else if (m[i].tool_calls.type == J_ARRAY) {
                jscan_walk_init(&w->j, m[i].tool_calls.p, m[i].tool_calls.len);
                w_calls(w);
            }
        }
        guard_role r = role_of(m[i].role);
        for (size_t x = first; x < s->n; x++)
            s->v[x].role = r;
    }
}

/* Appends text as a JSON string literal. */
static err_code put_literal(buf *out, const char *text, size_t len)
{
    size_t need = jscan_escape(NULL, 0, text, len);
    err_code e = buf_reserve(out, need + 1);
    if (e != ERR_OK)
        return e;
    jscan_escape(out->p + out->len, need, text, len);
    out->len += need;
    out->p[out->len] = '\0';
    return ERR_OK;
}

/* The body again with each site whose text changes replaced. restore: put
 * back the originals of placeholders (answers). */
static err_code rewrite(guard_req *q, const sites *s, const char *body, size_t len, bool restore, pool *p,
                        const char **out, size_t *out_len)
{
    buf nb, t1, t2;
    buf_init(&nb, len * 4 + 4096);
    buf_init(&t1, 64u << 20);
    buf_init(&t2, 64u << 20);
    err_code e = ERR_OK;
    size_t at = 0;
    bool changed = false;
    for (size_t i = 0; i < s->n && e == ERR_OK; i++) {
        const site *x = &s->v[i];
        if (!x->text)
            continue;
        buf_reset(&t1);
        buf_reset(&t2);
        size_t n = 0, r = 0;
        e = guard_redact(q, x->st, (uint16_t)i, x->text, x->len, &t1, &n);
        if (e == ERR_OK && restore)
            e = guard_restore(q, t1.p ? t1.p : "", t1.len, &t2, &r);
        if (e != ERR_OK || (n == 0 && r == 0))
            continue;
        const buf *fin = r ? &t2 : &t1;
        size_t off = (size_t)(x->str.p - body);
        if (off < at)
            continue; /* nested in a site already written (cannot happen with leaves) */
        e = buf_append(&nb, body + at, off - at);
        if (e == ERR_OK)
            e = put_literal(&nb, fin->p ? fin->p : "", fin->len);
        at = off + x->str.len;
        changed = true;
    }
    if (e == ERR_OK && changed)
        e = buf_append(&nb, body + at, len - at);
    *out = NULL;
    if (e == ERR_OK && changed) {
        char *o = pool_alloc(p, nb.len + 1);
        if (!o)
            e = ERR_NOMEM;
        else {
            memcpy(o, nb.p, nb.len);
            o[nb.len] = '\0';
            *out = o;
            *out_len = nb.len;
        }
    }
    buf_free(&nb);
    buf_free(&t1);
    buf_free(&t2);
    return e;
}

static err_code scan_sites(guard_req *q, sites *s, pool *p, int last_user)
{
    bool chain = false;
    for (size_t i = 0; i < s->n; i++) {
        site *x = &s->v[i];
        if (!guard_req_set(q, x->st))
            continue;
        if (!site_text(p, x->str, &x->text, &x->len))
            return ERR_NOMEM;
        unsigned flags = ((int)i == last_user ? GUARD_PART_LAST_USER : 0) | (chain ? GUARD_PART_CHAIN : 0);
        err_code e = guard_scan_part(q, x->st, x->role, flags, (uint16_t)i, x->where, x->text, x->len);
        chain = true;
        if (e != ERR_OK)
            return e;
    }
    return ERR_OK;
}

err_code gw_guard_request(guard_req *q, const guard_engine *g, gw_endpoint ep, api_format fmt, const char *body,
                          size_t len, const gw_request *rq, pool *p, const char **out, size_t *out_len, char *msg,
                          size_t cap)
{
    *out = NULL;
    jval root = jscan_root(body, len);
    sites s;
    sites_init(&s, p);
    jval hint = { 0 };
    if (rq && rq->body != body)
        rq = NULL; /* found in another body */
    if (rq && rq->input_at && rq->input_len && rq->input_at >= body && rq->input_at + rq->input_len <= body + len)
        hint = jscan_root(rq->input_at, rq->input_len);
    request_sites(&s, ep, fmt, root, hint, ep == EP_CHAT ? rq : NULL);
    if (s.nomem)
        return ERR_NOMEM;
    /* the system prompt, for leakage on the answer */
    bool leak = guard_req_uses(q, GS_OUTPUT, GD_LEAKAGE) || guard_req_uses(q, GS_TOOL, GD_LEAKAGE);
    int last_user = -1;
    buf sys;
    buf_init(&sys, 16u << 20);
    for (size_t i = 0; i < s.n; i++) {
        site *x = &s.v[i];
        if (x->role == GR_USER)
            last_user = (int)i;
        if (leak && x->role == GR_SYSTEM) {
            if (!site_text(p, x->str, &x->text, &x->len)) {
                buf_free(&sys);
                return ERR_NOMEM;
            }
            if (sys.len)
                buf_append(&sys, "\n", 1);
            buf_append(&sys, x->text, x->len);
        }
    }
    err_code e = ERR_OK;
    if (sys.len)
        e = guard_req_set_system(q, sys.p, sys.len);
    buf_free(&sys);
    if (e != ERR_OK)
        return e;
    jval rf;
    if (guard_req_uses(q, GS_OUTPUT, GD_SCHEMA) && jget(root, "response_format", &rf)) {
        json_error_t je;
        json_t *o = json_loadb(rf.p, rf.len, 0, &je);
        e = guard_req_set_response_format(q, o, msg, cap);
        json_decref(o);
        if (e != ERR_OK)
            return e;
    }
    if (!guard_req_set(q, GS_INPUT))
        return ERR_OK;
    e = scan_sites(q, &s, p, last_user);
    if (e == ERR_OK)
        e = guard_stage_end(q, GS_INPUT);
    if (e != ERR_OK || guard_verdict(q, GS_INPUT) != GA_REDACT)
        return e;
    return rewrite(q, &s, body, len, false, p, out, out_len);
}

err_code gw_guard_response(guard_req *q, gw_endpoint ep, api_format fmt, const char *body, size_t len,
                           const extract_texts *found, pool *p, const char **out, size_t *out_len)
{
    *out = NULL;
    bool restore = guard_restore_wanted(q);
    if (!guard_req_set(q, GS_OUTPUT) && !guard_req_set(q, GS_TOOL) && !restore)
        return ERR_OK;
    sites s;
    sites_init(&s, p);
    if (found && found->complete && fmt == API_OPENAI && found->completions == (ep == EP_COMPLETIONS)) {
        for (size_t i = 0; i < found->n; i++)
            add_site(&s, found->v[i], found->args[i] ? GS_TOOL : GS_OUTPUT, GR_ASSISTANT, -1);
    } else if (fmt != API_OPENAI || !openai_answer_sites(&s, ep, body, len)) {
        response_sites(&s, ep, fmt, jscan_root(body, len));
    }
    if (s.nomem)
        return ERR_NOMEM;
    err_code e = scan_sites(q, &s, p, -1);
    if (e == ERR_OK && guard_req_set(q, GS_OUTPUT))
        e = guard_stage_end(q, GS_OUTPUT);
    if (e == ERR_OK && guard_req_set(q, GS_TOOL))
        e = guard_stage_end(q, GS_TOOL);
    if (e != ERR_OK)
        return e;
    if (guard_verdict(q, GS_OUTPUT) == GA_BLOCK || guard_verdict(q, GS_TOOL) == GA_BLOCK)
        return ERR_OK;
    if (!restore && guard_verdict(q, GS_OUTPUT) != GA_REDACT && guard_verdict(q, GS_TOOL) != GA_REDACT)
        return ERR_OK;
    for (size_t i = 0; i < s.n; i++) /* restore needs every site's text */
        if (!s.v[i].text && !site_text(p, s.v[i].str, &s.v[i].text, &s.v[i].len))
            return ERR_NOMEM;
    return rewrite(q, &s, body, len, restore, p, out, out_len);
}

size_t gw_guard_texts(gw_endpoint ep, api_format fmt, bool response, const char *body, size_t len, pool *p,
                      const char **texts, size_t *lens, size_t max)
{
    jval root = jscan_root(body, len);
    sites s;
    sites_init(&s, p);
    if (response)
        response_sites(&s, ep, fmt, root);
    else
        request_sites(&s, ep, fmt, root, (jval){ 0 }, NULL);
    size_t n = 0;
    for (size_t i = 0; i < s.n && n < max; i++) {
        if (s.v[i].role == GR_SYSTEM)
            continue;
        if (site_text(p, s.v[i].str, &texts[n], &lens[n]))
            n++;
    }
    return n;
}

/* ---- streams ------------------------------------------------------------ */

typedef struct gstream {
    int choice;                  /* choice index (OpenAI) or content block index (Anthropic) */
    int tool;                    /* tool call index, -1 for the text */
    guard_stage st;
    guard_stream *gs;
    bool done;
} gstream;

struct gw_guard_stream {
    guard_req *q;
    gw_endpoint ep;
    api_format fmt;
    gstream v[MAX_STREAMS];
    size_t n;
    buf text;                    /* an unescaped delta */
    buf rel;                     /* released text */
    buf data;                    /* an event rewritten */
    char top[512];               /* OpenAI: "id", "object", "created", "model" members of the last chunk */
    buf *capture;                /* released answer text goes here too (traces), or NULL */
};

void gw_guard_stream_capture(gw_guard_stream *s, buf *b) { s->capture = b; }

static void captured(gw_guard_stream *s, const gstream *g, const buf *rel)
{
    if (s->capture && g->st == GS_OUTPUT && rel->len)
        (void)buf_append(s->capture, rel->p, rel->len); /* full: the trace keeps what fitted */
}

gw_guard_stream *gw_guard_stream_new(guard_req *q, gw_endpoint ep, api_format fmt)
{
    gw_guard_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->q = q;
    s->ep = ep;
    s->fmt = fmt;
    buf_init(&s->text, 16u << 20);
    buf_init(&s->rel, 16u << 20);
    buf_init(&s->data, 64u << 20);
    return s;
}

void gw_guard_stream_free(gw_guard_stream *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        guard_stream_free(s->v[i].gs);
    buf_free(&s->text);
    buf_free(&s->rel);
    buf_free(&s->data);
    free(s);
}

/* The stream of (choice, tool), made on first use; NULL when the stage has
 * no policies (and nothing to restore) or out of room. */
static gstream *stream_of(gw_guard_stream *s, int choice, int tool, guard_stage st)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].choice == choice && s->v[i].tool == tool)
            return &s->v[i];
    if (!guard_req_set(s->q, st) && !guard_restore_wanted(s->q))
        return NULL;
    if (s->n == MAX_STREAMS)
        return NULL;
    gstream *g = &s->v[s->n];
    g->gs = guard_stream_new(s->q, st, (uint16_t)s->n);
    if (!g->gs)
        return NULL;
    g->choice = choice;
    g->tool = tool;
    g->st = st;
    g->done = false;
    s->n++;
    return g;
}

typedef struct repl {
    size_t off, len;             /* the string span replaced in the event's data */
    size_t at, n;                /* its new literal's bytes in s->data scratch (after the event) */
} repl;

/* Feeds one text delta (a string span) and appends the released text as a
 * literal to lits; *blocked when it blocks. finish: the choice ends here. */
static err_code feed(gw_guard_stream *s, gstream *g, jval str, bool finish, buf *lits, repl *r, bool *blocked)
{
    buf_reset(&s->text);
    size_t n = 0;
    if (str.len >= 2) {
        if (buf_reserve(&s->text, str.len) != ERR_OK || !jscan_string(str, s->text.p, str.len, &n))
            return ERR_NOMEM;
        s->text.len = n;
    }
    buf_reset(&s->rel);
    err_code e = guard_stream_feed(g->gs, s->text.p ? s->text.p : "", n, &s->rel);
    if (e == ERR_OK && finish && !g->done) {
        e = guard_stream_finish(g->gs, &s->rel);
        g->done = true;
    }
    if (e != ERR_OK)
        return e;
    if (guard_stream_blocked(g->gs)) {
        *blocked = true;
        return ERR_OK;
    }
    captured(s, g, &s->rel);
    r->at = lits->len;
    e = put_literal(lits, s->rel.p ? s->rel.p : "", s->rel.len);
    r->n = lits->len - r->at;
    return e;
}

/* What is still held in g, finished. */
static err_code flush(gstream *g, buf *rel, bool *blocked)
{
    buf_reset(rel);
    if (g->done)
        return ERR_OK;
    g->done = true;
    err_code e = guard_stream_finish(g->gs, rel);
    if (guard_stream_blocked(g->gs))
        *blocked = true;
    return e;
}

static int repl_cmp(const void *a, const void *b)
{
    const repl *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Appends data with the replacements spliced in, as an SSE event. */
static err_code emit(buf *out, sv event, sv data, repl *r, size_t nr, const buf *lits, buf *tmp)
{
    if (nr == 0)
        return sse_write_event(out, event, data);
    qsort(r, nr, sizeof *r, repl_cmp);
    buf_reset(tmp);
    size_t at = 0;
    err_code e = ERR_OK;
    for (size_t i = 0; i < nr && e == ERR_OK; i++) {
        e = buf_append(tmp, data.p + at, r[i].off - at);
        if (e == ERR_OK)
            e = buf_append(tmp, lits->p + r[i].at, r[i].n);
        at = r[i].off + r[i].len;
    }
    if (e == ERR_OK)
        e = buf_append(tmp, data.p + at, data.len - at);
    return e == ERR_OK ? sse_write_event(out, event, buf_sv(tmp)) : e;
}

/* OpenAI: an extra chunk carrying held text of g before the chunk that ends it. */
static err_code extra_openai(gw_guard_stream *s, const gstream *g, const char *text, size_t len, buf *out)
{
    json_error_t je;
    json_t *o = s->top[0] ? json_loads(s->top, 0, &je) : NULL;
    if (!o)
        o = json_object();
    json_t *ch = json_object(), *d;
    json_t *tx = json_stringn_nocheck(text, len);
    if (!o || !ch || !tx) {
        json_decref(o), json_decref(ch), json_decref(tx);
        return ERR_NOMEM;
    }
    json_object_set_new(ch, "index", json_integer(g->choice));
    if (s->ep == EP_COMPLETIONS) {
        json_object_set_new(ch, "text", tx);
    } else if (g->tool < 0) {
        d = json_object();
        json_object_set_new(d, "content", tx);
        json_object_set_new(ch, "delta", d);
    } else {
        json_t *call = json_object(), *fn = json_object();
        json_object_set_new(call, "index", json_integer(g->tool));
        json_object_set_new(fn, "arguments", tx);
        json_object_set_new(call, "function", fn);
        d = json_object();
        json_object_set_new(d, "tool_calls", json_pack("[o]", call));
        json_object_set_new(ch, "delta", d);
    }
    json_object_set_new(ch, "finish_reason", json_null());
    json_object_set_new(o, "choices", json_pack("[o]", ch));
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt)
        return ERR_NOMEM;
    err_code e = sse_write_event(out, SV_NULL, sv_from(txt));
    free(txt);
    return e;
}

static err_code extra_anthropic(const gstream *g, const char *text, size_t len, buf *out)
{
    json_t *o = json_pack("{s:s, s:i, s:{s:s, s:s%}}", "type", "content_block_delta", "index", g->choice, "delta",
                          "type", g->st == GS_TOOL ? "input_json_delta" : "text_delta",
                          g->st == GS_TOOL ? "partial_json" : "text", text, len);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt)
        return ERR_NOMEM;
    err_code e = sse_write_event(out, SV("content_block_delta"), sv_from(txt));
    free(txt);
    return e;
}

static err_code extra(gw_guard_stream *s, const gstream *g, const buf *rel, buf *out)
{
    if (!rel->len)
        return ERR_OK;
    return s->fmt == API_ANTHROPIC ? extra_anthropic(g, rel->p, rel->len, out)
                                   : extra_openai(s, g, rel->p, rel->len, out);
}

/* Flushes the streams of choice (all when choice < 0) as extra events. */
static int flush_choice(gw_guard_stream *s, int choice, buf *out)
{
    bool blocked = false;
    buf rel;
    buf_init(&rel, 16u << 20);
    for (size_t i = 0; i < s->n && !blocked; i++) {
        gstream *g = &s->v[i];
        if (g->done || (choice >= 0 && g->choice != choice))
            continue;
        if (flush(g, &rel, &blocked) != ERR_OK)
            blocked = true; /* out of memory: fail closed */
        else if (!blocked && extra(s, g, &rel, out) != ERR_OK)
            blocked = true;
        else if (!blocked)
            captured(s, g, &rel);
    }
    buf_free(&rel);
    return blocked ? 1 : 0;
}

/* Remembers the chunk's identifying members for extra chunks. */
static void keep_top(gw_guard_stream *s, jval root)
{
    if (s->top[0])
        return;
    static const char *const keys[] = { "id", "object", "created", "model", "system_fingerprint" };
    size_t k = 0;
    s->top[k++] = '{';
    for (size_t i = 0; i < countof(keys); i++) {
        jval v;
        if (!jget(root, keys[i], &v))
            continue;
        int n = snprintf(s->top + k, sizeof s->top - k, "%s\"%s\":%.*s", k > 1 ? "," : "", keys[i], (int)v.len, v.p);
        if (n < 0 || (size_t)n >= sizeof s->top - k - 1) {
            s->top[0] = '\0';
            return;
        }
        k += (size_t)n;
    }
    s->top[k++] = '}';
    s->top[k] = '\0';
}

static int event_openai(gw_guard_stream *s, sv data, jval root, buf *out)
{
    keep_top(s, root);
    jval choices, ch;
    repl r[MAX_STREAMS];
    size_t nr = 0;
    buf lits;
    buf_init(&lits, 64u << 20);
    bool blocked = false;
    err_code e = ERR_OK;
    int ending[MAX_STREAMS];
    size_t nending = 0;
    if (jget(root, "choices", &choices)) {
        jscan_iter it;
        jscan_iter_init(&it, choices);
        while (e == ERR_OK && !blocked && jscan_next(&it, NULL, &ch)) {
            jval idx, fr, delta;
            long long ci = 0;
            if (jget(ch, "index", &idx))
                jscan_int(idx, &ci);
            if (ci < 0 || ci > 1000)
                ci = 0;
            bool finish = jget(ch, "finish_reason", &fr) && fr.type != J_NULL;
            if (finish && nending < MAX_STREAMS)
                ending[nending++] = (int)ci;
            jval text = { 0 };
            jval calls = { 0 };
            if (s->ep == EP_COMPLETIONS)
                jget(ch, "text", &text);
            else if (jget(ch, "delta", &delta)) {
                jget(delta, "content", &text);
                jget(delta, "tool_calls", &calls);
            }
            if (text.type == J_STRING && nr < MAX_STREAMS) {
                gstream *g = stream_of(s, (int)ci, -1, GS_OUTPUT);
                if (g) {
                    r[nr].off = (size_t)(text.p - data.p);
                    r[nr].len = text.len;
                    e = feed(s, g, text, finish, &lits, &r[nr], &blocked);
                    nr++;
                }
            }
            if (calls.type == J_ARRAY) {
                jscan_iter ci2;
                jval call;
                jscan_iter_init(&ci2, calls);
                while (e == ERR_OK && !blocked && jscan_next(&ci2, NULL, &call)) {
                    long long ti = 0;
                    jval fn, args;
                    if (jget(call, "index", &idx))
                        jscan_int(idx, &ti);
                    if (ti < 0 || ti > 1000)
                        ti = 0;
                    if (!jget(call, "function", &fn) || !jget(fn, "arguments", &args) ||
                        args.type != J_STRING || nr >= MAX_STREAMS)
                        continue;
                    gstream *g = stream_of(s, (int)ci, (int)ti, GS_TOOL);
                    if (!g)
                        continue;
                    r[nr].off = (size_t)(args.p - data.p);
                    r[nr].len = args.len;
                    e = feed(s, g, args, finish, &lits, &r[nr], &blocked);
                    nr++;
                }
            }
        }
    }
    /* held text of the choices this chunk ends goes out just before it */
    for (size_t i = 0; e == ERR_OK && !blocked && i < nending; i++)
        if (flush_choice(s, ending[i], out))
            blocked = true;
    if (e == ERR_OK && !blocked)
        e = emit(out, SV_NULL, data, r, nr, &lits, &s->data);
    buf_free(&lits);
    return (e != ERR_OK || blocked) ? 1 : 0;
}

static int event_anthropic(gw_guard_stream *s, sv event, sv data, jval root, buf *out)
{
    jval type, idx, delta, t;
    long long bi = 0;
    if (jget(root, "index", &idx))
        jscan_int(idx, &bi);
    if (bi < 0 || bi > 1000)
        bi = 0;
    jget(root, "type", &type);
    if (jscan_string_eq(type, "content_block_stop")) {
        if (flush_choice(s, (int)bi, out))
            return 1;
        return sse_write_event(out, event, data) == ERR_OK ? 0 : 1;
    }
    if (jscan_string_eq(type, "message_delta") || jscan_string_eq(type, "message_stop")) {
        if (flush_choice(s, -1, out))
            return 1;
        return sse_write_event(out, event, data) == ERR_OK ? 0 : 1;
    }
    if (!jscan_string_eq(type, "content_block_delta") || !jget(root, "delta", &delta))
        return sse_write_event(out, event, data) == ERR_OK ? 0 : 1;
    guard_stage st = GS_OUTPUT;
    if (!jget(delta, "text", &t)) {
        if (!jget(delta, "partial_json", &t))
            return sse_write_event(out, event, data) == ERR_OK ? 0 : 1;
        st = GS_TOOL;
    }
    gstream *g = t.type == J_STRING ? stream_of(s, (int)bi, -1, st) : NULL;
    if (!g)
        return sse_write_event(out, event, data) == ERR_OK ? 0 : 1;
    buf lits;
    buf_init(&lits, 64u << 20);
    repl r = { .off = (size_t)(t.p - data.p), .len = t.len };
    bool blocked = false;
    err_code e = feed(s, g, t, false, &lits, &r, &blocked);
    if (e == ERR_OK && !blocked)
        e = emit(out, event, data, &r, 1, &lits, &s->data);
    buf_free(&lits);
    return (e != ERR_OK || blocked) ? 1 : 0;
}

int gw_guard_stream_event(gw_guard_stream *s, sv event, sv data, buf *out)
{
    if (s->fmt == API_OPENAI && sv_eq_cstr(data, "[DONE]")) {
        if (flush_choice(s, -1, out))
            return 1;
        return sse_write_event(out, event, data) == ERR_OK ? 0 : 1;
    }
    jval root;
    if (!jscan_parse(data.p, data.len, 64, &root, NULL, 0, NULL, NULL) || root.type != J_OBJECT)
        return 1; /* text that cannot be scanned does not go out */
    jval err;
    if (jget(root, "error", &err) && s->fmt == API_OPENAI)
        return sse_write_event(out, event, data) == ERR_OK ? 0 : 1;
    return s->fmt == API_ANTHROPIC ? event_anthropic(s, event, data, root, out) : event_openai(s, data, root, out);
}

int gw_guard_stream_end(gw_guard_stream *s, buf *out)
{
    return flush_choice(s, -1, out);
}
