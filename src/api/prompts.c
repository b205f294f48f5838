/*
 * prompts.c - REST handlers for the prompt registry, its Langfuse-compatible
 * read path, and rendering with partials (shared with `genaiops prompt`).
 *
 * A request is taken apart on the event loop: the path gives the prompt
 * name (percent-decoded, may contain '/') and the operation (the last
 * segment when it is one of versions, labels, rollback, history, diff,
 * render); the method is checked (405 with Allow); the query string and the
 * JSON body are parsed and validated, and labels a save would move are
 * checked against the protected list. What is left - the registry calls,
 * which block on SQLite - runs on the worker loop's thread pool, and the
 * after-work callback answers, exactly as api/traces.c does. Everything a
 * job needs is copied into it or allocated from the request's pool (which
 * lives until the answer is sent), so the work thread only reads.
 *
 * Rendering resolves partials through the registry while the template
 * engine walks (a resolver callback with a small cache of compiled
 * partials), so it also runs off the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>
#include "api/common.h"
#include "api/prompts.h"
#include "core/buf.h"
#include "http/parser.h"
#include "prompt/template.h"

#define PATH_MAX_BYTES (PROMPT_NAME_MAX + 64)     /* a decoded name and an operation */
#define QUERY_VALUE_MAX 512
#define PUSH_MAX 10000                            /* prompts in one push */
#define LABELS_MAX 32                             /* labels one save may move */
#define RENDER_PARTIALS_MAX 256                   /* distinct partials in one render */
#define LANGFUSE_LIMIT_DEFAULT 50
#define LANGFUSE_LIMIT_MAX 100

typedef enum pjob_kind {
    PJ_LIST,
    PJ_SAVE,
    PJ_PUSH,
    PJ_GET,
    PJ_VERSIONS,
    PJ_LABEL,
    PJ_ROLLBACK,
    PJ_HISTORY,
    PJ_DIFF,
    PJ_RENDER,
    PJ_LF_GET,
    PJ_LF_LIST,
} pjob_kind;

typedef struct pjob {
    uv_work_t work;
    http_req *r;
    pjob_kind kind;
    char *url;
    char name[PROMPT_NAME_MAX + 1];
    char label[PROMPT_LABEL_MAX + 1];
    const char *who;                 /* "admin" or "anonymous" (static) */
    bool admin;
    const char *const *protected_labels;
    size_t nprotected;
    int version;
    prompt_ref ref, ref2;
    char prefix[PROMPT_NAME_MAX + 1];
    long page, limit;                /* the Langfuse list */
    json_t *body;                    /* the parsed request body (owned) */
    const json_t *vars;              /* render: in body */
    prompt_input *in;                /* save/push: from the request's pool, strings in body */
    size_t nin;
    json_t *out;
    json_t *missing;                 /* render: the missing variables */
    bool created;
    query_error e;
    err_code rc;
} pjob;

/* ---- errors and answers ---- */


/* OpenAI's error shape; missing (may be NULL) is added as error.missing. */
static void send_error(http_req *r, const query_error *e, json_t *missing)
{
    json_t *j = query_error_json(e);
    if (j && missing)
        json_object_set(json_object_get(j, "error"), "missing", missing);
    api_send_json(r, e->status ? e->status : 500, j);
    json_decref(j);
}

/* Langfuse's error shape: {"message", "error": "<Name>Error"}. */
static void send_langfuse_error(http_req *r, const query_error *e)
{
    int st = e->status ? e->status : 500;
    const char *name = st == 404   ? "LangfuseNotFoundError"
                       : st == 405 ? "MethodNotAllowedError"
                       : st == 401 ? "UnauthorizedError"
                       : st == 403 ? "ForbiddenError"
                       : st < 500  ? "InvalidRequestError"
                                   : "InternalServerError";
    json_t *j = json_pack("{s:s, s:s}", "message", e->message, "error", name);
    api_send_json(r, st, j);
    json_decref(j);
}

static void method_not_allowed(http_req *r, const char *allow, bool langfuse)
{
    http_resp_header(r, "allow", allow);
    query_error e = { 0 };
    query_fail(&e, 405, NULL, "method_not_allowed", "use %s on %.*s", allow, (int)MIN(r->path.len, 300), r->path.p);
    if (langfuse)
        send_langfuse_error(r, &e);
    else
        send_error(r, &e, NULL);
}

static bool is_get(const http_req *r) { return sv_eq_cstr(r->method, "GET") || sv_eq_cstr(r->method, "HEAD"); }
static bool is_post(const http_req *r) { return sv_eq_cstr(r->method, "POST"); }

bool api_prompt_label_protected(const char *label, const char *const *protected_labels, size_t nprotected)
{
    for (size_t i = 0; i < nprotected; i++)
        if (protected_labels[i] && strcmp(protected_labels[i], label) == 0)
            return true;
    return false;
}

/* ---- rendering ---- */

typedef struct partial_ent {
    char name[PROMPT_NAME_MAX + 1];
    tpl *t;
} partial_ent;

typedef struct render_ctx {
    const char *url;
    char label[PROMPT_LABEL_MAX + 1];   /* the label asked for; "" = latest */
    partial_ent *v;
    size_t n, cap;
    bool failed;                         /* err holds a failure met while resolving */
    query_error err;
} render_ctx;

/* The template engine's resolver: a text prompt at the render's label when
 * it has it, else its latest version, compiled once per render. NULL for an
 * unknown prompt (the engine names it) or with ctx->err set. */
static const tpl *resolve_partial(void *ud, const char *name, size_t len)
{
    render_ctx *c = ud;
    if (c->failed)
        return NULL;
    if (len == 0 || len > PROMPT_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->v[i].name) == len && memcmp(c->v[i].name, name, len) == 0)
            return c->v[i].t;
    if (c->n >= RENDER_PARTIALS_MAX) {
        query_fail(&c->err, 400, NULL, "template_error", "more than %d different partials in one prompt",
             RENDER_PARTIALS_MAX);
        c->failed = true;
        return NULL;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        partial_ent *v = realloc(c->v, cap * sizeof *v);
        if (!v) {
            query_fail(&c->err, 500, NULL, NULL, "out of memory");
            c->failed = true;
            return NULL;
        }
        c->v = v;
        c->cap = cap;
    }
    prompt_ref ref = { 0 };
    memcpy(ref.name, name, len);
    ref.name[len] = '\0';
    snprintf(ref.label, sizeof ref.label, "%s", c->label);
    json_t *v = NULL;
    query_error e = { 0 };
    err_code rc = prompt_get(c->url, &ref, &v, &e);
    if (rc != ERR_OK && ref.label[0] && e.status == 404 && strcmp(e.code, "label_not_found") == 0) {
        ref.label[0] = '\0';
        memset(&e, 0, sizeof e);
        rc = prompt_get(c->url, &ref, &v, &e);
    }
    if (rc != ERR_OK) {
        if (e.status != 404 || strcmp(e.code, "prompt_not_found") != 0) {
            c->err = e;
            c->failed = true;
        }
        return NULL;
    }
    const char *type = json_string_value(json_object_get(v, "type"));
    const char *text = json_string_value(json_object_get(v, "template"));
    if (!type || strcmp(type, "text") != 0 || !text) {
        query_fail(&c->err, 400, NULL, "template_error",
             "partial '%s' is a chat prompt; only text prompts can be included with {{> name}}", ref.name);
        c->failed = true;
        json_decref(v);
        return NULL;
    }
    tpl *t = NULL;
    tpl_error te = { 0 };
    if (tpl_compile(text, json_string_length(json_object_get(v, "template")), &t, &te) != ERR_OK) {
        query_fail(&c->err, 400, NULL, "template_error", "partial '%s': line %d, column %d: %s", ref.name, te.line,
             te.col, te.message);
        c->failed = true;
        json_decref(v);
        return NULL;
    }
    json_decref(v);
    partial_ent *ent = &c->v[c->n++];
    snprintf(ent->name, sizeof ent->name, "%s", ref.name);
    ent->t = t;
    return t;
}

static void render_ctx_free(render_ctx *c)
{
    for (size_t i = 0; i < c->n; i++)
        tpl_free(c->v[i].t);
    free(c->v);
}

/* Inserts name into the sorted, duplicate-free array names. */
static void add_missing(json_t *names, const char *name, size_t len)
{
    while (len && (*name == ' ' || *name == '\t'))
        name++, len--;
    while (len && (name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    if (!len)
        return;
    size_t i, at = json_array_size(names);
    json_t *x;
    json_array_foreach(names, i, x) {
        const char *s = json_string_value(x);
        size_t sl = json_string_length(x);
        int c = memcmp(s, name, MIN(sl, len));
        if (c == 0 && sl == len)
            return;
        if (c > 0 || (c == 0 && sl > len)) {
            at = i;
            break;
        }
    }
    json_array_insert_new(names, at, json_stringn(name, len));
}

/* Compiles and renders one template into out (reset first). On a missing-
 * variables failure the names go into missing and ERR_OK is returned with
 * *incomplete set, so the other messages of a chat prompt are still
 * checked. where names the template in messages ("messages[1]"). */
static err_code render_one(render_ctx *c, const char *src, size_t len, const json_t *vars, const char *where, buf *out,
                           json_t *missing, bool *incomplete, query_error *e)
{
    tpl *t = NULL;
    tpl_error te = { 0 };
    const char *sep = where[0] ? ": " : "";
    buf_reset(out);
    if (tpl_compile(src, len, &t, &te) != ERR_OK)
        return query_fail(e, 400, NULL, "template_error", "%s%sline %d, column %d: %s", where, sep, te.line, te.col,
                    te.message);
    memset(&te, 0, sizeof te);
    tpl_opts opts = { .resolve = resolve_partial, .ud = c };
    err_code rc = tpl_render(t, json_is_object(vars) ? vars : NULL, &opts, out, &te);
    tpl_free(t);
    if (rc == ERR_OK)
        return ERR_OK;
    if (c->failed) {
        *e = c->err;
        return e->status == 404 ? ERR_NOTFOUND : e->status >= 500 ? ERR_STORE : ERR_INVAL;
    }
    if (rc == ERR_TOOBIG)
        return query_fail(e, 400, NULL, "render_too_large", "%s%sthe rendered prompt is larger than %u bytes", where, sep,
                    API_PROMPT_RENDER_MAX);
    if (rc == ERR_NOMEM)
        return query_fail(e, 500, NULL, NULL, "out of memory");
    if (te.missing[0]) {
        const char *p = te.missing;
        while (*p) {
            const char *q = strchr(p, ',');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            add_missing(missing, p, n);
            p += n + (q ? 1 : 0);
        }
        *incomplete = true;
        return ERR_OK;
    }
    if (te.partial[0])
        return query_fail(e, 400, NULL, "template_error", "%s%sin partial '%s', line %d, column %d: %s", where, sep,
                    te.partial, te.line, te.col, te.message);
    if (te.line > 0)
        return query_fail(e, 400, NULL, "template_error", "%s%sline %d, column %d: %s", where, sep, te.line, te.col,
                    te.message);
    return query_fail(e, 400, NULL, "template_error", "%s%s%s", where, sep, te.message);
}

err_code api_prompt_render(const char *url, const prompt_ref *ref, const json_t *vars, json_t **out, json_t **missing,
                           query_error *e)
{
    *out = NULL;
    if (missing)
        *missing = NULL;
    if (vars && !json_is_object(vars) && !json_is_null(vars))
        return query_fail(e, 400, "variables", "invalid_variables", "'variables' must be an object");
    json_t *v = NULL;
    err_code rc = prompt_get(url, ref, &v, e);
    if (rc != ERR_OK)
        return rc;
    render_ctx c = { .url = url };
    if (strcmp(ref->label, "latest") != 0)
        snprintf(c.label, sizeof c.label, "%s", ref->label);
    json_t *res = json_object(), *miss = json_array();
    buf b;
    buf_init(&b, API_PROMPT_RENDER_MAX);
    bool incomplete = false;
    size_t total = 0;
    const char *type = json_string_value(json_object_get(v, "type"));
    if (!res || !miss) {
        rc = query_fail(e, 500, NULL, NULL, "out of memory");
        goto out;
    }
    json_object_set(res, "name", json_object_get(v, "name"));
    json_object_set(res, "version", json_object_get(v, "version"));
    json_object_set(res, "type", json_object_get(v, "type"));
    if (type && strcmp(type, "chat") == 0) {
        json_t *msgs = json_array(), *m;
        size_t i;
        json_object_set_new(res, "messages", msgs);
        json_array_foreach(json_object_get(v, "messages"), i, m) {
            json_t *content = json_object_get(m, "content");
            char where[32];
            snprintf(where, sizeof where, "messages[%zu]", i);
            rc = render_one(&c, json_string_value(content) ? json_string_value(content) : "",
                            json_string_length(content), vars, where, &b, miss, &incomplete, e);
            if (rc != ERR_OK)
                goto out;
            total += b.len;
            if (total > API_PROMPT_RENDER_MAX) {
                rc = query_fail(e, 400, NULL, "render_too_large", "the rendered prompt is larger than %u bytes",
                          API_PROMPT_RENDER_MAX);
                goto out;
            }
            json_t *copy = json_copy(m);
            if (!copy || json_array_append_new(msgs, copy) != 0 ||
                json_object_set_new(copy, "content", json_stringn(b.p ? b.p : "", b.len)) != 0) {
                rc = query_fail(e, 500, NULL, NULL, "out of memory");
                goto out;
            }
        }
    } else {
        json_t *t = json_object_get(v, "template");
        rc = render_one(&c, json_string_value(t) ? json_string_value(t) : "", json_string_length(t), vars, "", &b,
                        miss, &incomplete, e);
        if (rc != ERR_OK)
            goto out;
        json_object_set_new(res, "text", json_stringn(b.p ? b.p : "", b.len));
    }
    json_t *cfgj = json_object_get(v, "config");
    json_object_set_new(res, "config", cfgj ? json_incref(cfgj) : json_object());
    if (incomplete) {
        buf names;
        buf_init(&names, 200);
        size_t i;
        json_t *x;
        json_array_foreach(miss, i, x) {
            if (buf_printf(&names, "%s%s", i ? ", " : "", json_string_value(x)) != ERR_OK) {
                buf_append_str(&names, "...");
                break;
            }
        }
        rc = query_fail(e, 400, "variables", "missing_variables", "missing variables: %s", names.p ? names.p : "");
        buf_free(&names);
        if (missing) {
            *missing = miss;
            miss = NULL;
        }
        goto out;
    }
    *out = res;
    res = NULL;
out:
    buf_free(&b);
    render_ctx_free(&c);
    json_decref(res);
    json_decref(miss);
    json_decref(v);
    return rc;
}

/* ---- the Langfuse shapes ---- */

/* A version's JSON as Langfuse's Prompt object. */
static json_t *langfuse_prompt(const json_t *v)
{
    const char *name = json_string_value(json_object_get(v, "name"));
    json_int_t version = json_integer_value(json_object_get(v, "version"));
    const char *type = json_string_value(json_object_get(v, "type"));
    bool chat = type && strcmp(type, "chat") == 0;
    char id[PROMPT_NAME_MAX + 32];
    snprintf(id, sizeof id, "%s:%lld", name ? name : "", (long long)version);
    json_t *prompt;
    if (chat) {
        prompt = json_array();
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(v, "messages"), i, m)
            json_array_append_new(prompt, json_pack("{s:O, s:O}", "role", json_object_get(m, "role"), "content",
                                                    json_object_get(m, "content")));
    } else
        prompt = json_incref(json_object_get(v, "template"));
    json_t *labels = json_object_get(v, "labels");
    json_t *cfgj = json_object_get(v, "config");
    json_t *at = json_object_get(v, "created_at");
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:[], s:O?, s:O?, s:O?, s:O?, s:n}", "id", id, "name",
                     name ? name : "", "version", version, "type", chat ? "chat" : "text", "prompt",
                     prompt ? prompt : json_null(), "config", cfgj ? json_incref(cfgj) : json_object(), "labels",
                     labels ? json_incref(labels) : json_array(), "tags", "commitMessage",
                     json_object_get(v, "message"), "createdBy", json_object_get(v, "author"), "createdAt", at,
                     "updatedAt", at, "resolutionGraph");
}

/* Langfuse's prompt list ({"data": [PromptMeta], "meta": {...}}) from the
 * registry's list, filtered by exact name and label, one page. */
static err_code langfuse_list(pjob *j)
{
    json_t *rows = NULL;
    err_code rc = prompt_list(j->url, "", &rows, &j->e);
    if (rc != ERR_OK)
        return rc;
    json_t *data = json_array();
    size_t i, matched = 0;
    json_t *row;
    json_int_t first = (json_int_t)((j->page - 1) * j->limit);
    json_array_foreach(rows, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        json_t *lab = json_object_get(row, "labels");
        if (j->name[0] && (!name || strcmp(name, j->name) != 0))
            continue;
        if (j->label[0] && strcmp(j->label, "latest") != 0 && !json_object_get(lab, j->label))
            continue;
        if ((json_int_t)matched++ < first || (json_int_t)json_array_size(data) >= j->limit)
            continue;
        json_int_t latest = json_integer_value(json_object_get(row, "latest_version"));
        json_t *versions = json_array(), *labels = json_array(), *cfgj = NULL;
        for (json_int_t k = 1; k <= latest && k <= 100000; k++)
            json_array_append_new(versions, json_integer(k));
        const char *key;
        json_t *val;
        json_object_foreach(lab, key, val) json_array_append_new(labels, json_string(key));
        json_array_append_new(labels, json_string("latest"));
        prompt_ref ref = { 0 };
        snprintf(ref.name, sizeof ref.name, "%s", name ? name : "");
        json_t *v = NULL;
        query_error e = { 0 };
        if (prompt_get(j->url, &ref, &v, &e) == ERR_OK)
            cfgj = json_incref(json_object_get(v, "config"));
        json_decref(v);
        json_array_append_new(data, json_pack("{s:s, s:O?, s:o, s:o, s:[], s:O?, s:o}", "name", name ? name : "",
                                              "type", json_object_get(row, "type"), "versions", versions, "labels",
                                              labels, "tags", "lastUpdatedAt", json_object_get(row, "updated_at"),
                                              "lastConfig", cfgj ? cfgj : json_object()));
    }
    json_decref(rows);
    json_int_t pages = (json_int_t)((matched + (size_t)j->limit - 1) / (size_t)j->limit);
    j->out = json_pack("{s:o, s:{s:I, s:I, s:I, s:I}}", "data", data, "meta", "page", (json_int_t)j->page, "limit",
                       (json_int_t)j->limit, "totalItems", (json_int_t)matched, "totalPages", pages);
    return j->out ? ERR_OK : query_fail(&j->e, 500, NULL, NULL, "out of memory");
}

/* ---- jobs ---- */

static void job_free(pjob *j)
{
    json_decref(j->out);
    json_decref(j->missing);
    json_decref(j->body);
    free(j->url);
    free(j);
}

/* Wraps an array result as {"data": [...]}. */
static void wrap_data(pjob *j)
{
    if (j->rc == ERR_OK && j->out) {
        json_t *w = json_pack("{s:o}", "data", j->out);
        j->out = w;
        if (!w)
            j->rc = query_fail(&j->e, 500, NULL, NULL, "out of memory");
    }
}

static void job_work(uv_work_t *w)
{
    pjob *j = w->data;
    switch (j->kind) {
    case PJ_LIST:
        j->rc = prompt_list(j->url, j->prefix, &j->out, &j->e);
        wrap_data(j);
        break;
    case PJ_SAVE:
        j->rc = prompt_save(j->url, j->in, &j->out, &j->created, &j->e);
        if (j->rc == ERR_OK)
            json_object_set_new(j->out, "created", json_boolean(j->created));
        break;
    case PJ_PUSH:
        j->rc = prompt_save_many(j->url, j->in, j->nin, &j->out, &j->e);
        wrap_data(j);
        break;
    case PJ_GET: j->rc = prompt_get(j->url, &j->ref, &j->out, &j->e); break;
    case PJ_VERSIONS:
        j->rc = prompt_versions(j->url, j->name, &j->out, &j->e);
        wrap_data(j);
        break;
    case PJ_LABEL:
        j->rc = prompt_label_set(j->url, j->name, j->label, j->version, j->who, j->admin, j->protected_labels,
                                 j->nprotected, &j->out, &j->e);
        break;
    case PJ_ROLLBACK:
        j->rc = prompt_rollback(j->url, j->name, j->label, j->who, j->admin, j->protected_labels, j->nprotected,
                                &j->out, &j->e);
        break;
    case PJ_HISTORY:
        j->rc = prompt_history(j->url, j->name, j->label, &j->out, &j->e);
        wrap_data(j);
        break;
    case PJ_DIFF: j->rc = prompt_diff(j->url, &j->ref, &j->ref2, &j->out, &j->e); break;
    case PJ_RENDER: j->rc = api_prompt_render(j->url, &j->ref, j->vars, &j->out, &j->missing, &j->e); break;
    case PJ_LF_GET: {
        json_t *v = NULL;
        j->rc = prompt_get(j->url, &j->ref, &v, &j->e);
        if (j->rc == ERR_OK) {
            j->out = langfuse_prompt(v);
            if (!j->out)
                j->rc = query_fail(&j->e, 500, NULL, NULL, "out of memory");
        }
        json_decref(v);
        break;
    }
    case PJ_LF_LIST: j->rc = langfuse_list(j); break;
    }
    if (j->rc != ERR_OK && !j->e.status)
        query_fail(&j->e, 500, NULL, NULL, "%s", err_message(j->rc));
}

static void job_done(uv_work_t *w, int status)
{
    pjob *j = w->data;
    http_req *r = j->r;
    bool lf = j->kind == PJ_LF_GET || j->kind == PJ_LF_LIST;
    if (r->aborted)
        http_req_abandon(r);
    else if (status == UV_ECANCELED) {
        query_error e = { 0 };
        query_fail(&e, 503, NULL, "shutting_down", "the server is shutting down");
        lf ? send_langfuse_error(r, &e) : send_error(r, &e, NULL);
    } else if (j->rc != ERR_OK)
        lf ? send_langfuse_error(r, &j->e) : send_error(r, &j->e, j->missing);
    else
        api_send_json(r, j->kind == PJ_SAVE && j->created ? 201 : 200, j->out);
    job_free(j);
}

static void abort_noop(http_req *r) { UNUSED(r); }

/* Queues j (taking ownership); answers 500/503 itself when it cannot. */
static void job_start(http_req *r, pjob *j, const char *store_url)
{
    bool lf = j->kind == PJ_LF_GET || j->kind == PJ_LF_LIST;
    query_error e = { 0 };
    j->r = r;
    j->work.data = j;
    j->url = strdup(store_url ? store_url : "sqlite://./genaiops.db");
    if (!j->url) {
        job_free(j);
        query_fail(&e, 500, NULL, NULL, "out of memory");
        lf ? send_langfuse_error(r, &e) : send_error(r, &e, NULL);
        return;
    }
    r->on_abort = abort_noop;
    if (uv_queue_work(http_worker_loop(r->worker), &j->work, job_work, job_done) != 0) {
        job_free(j);
        query_fail(&e, 503, NULL, NULL, "cannot queue the store query");
        lf ? send_langfuse_error(r, &e) : send_error(r, &e, NULL);
    }
}

/* ---- parsing on the loop ---- */

/* Percent-decodes a path part (no '+' rule in paths) into out[cap]. */
static bool path_decode(sv s, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        if (ch == '%') {
            if (s.len - i < 3)
                return false;
            char hex[3] = { s.p[i + 1], s.p[i + 2], 0 };
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v <= 0 || hex[0] == '-' || hex[0] == '+' || hex[0] == ' ')
                return false;
            ch = (unsigned char)v;
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return true;
}

typedef struct qparam {
    const char *key;
    char value[QUERY_VALUE_MAX + 1];
    bool set;
} qparam;

/* Parses the query string into params (each allowed key at most once).
 * strict: an unknown key is an error; otherwise ignored. */
static err_code parse_query(sv q, qparam *params, size_t n, bool strict, query_error *e)
{
    size_t pos = 0;
    sv rawkey, rawval;
    while (http_query_next(q, &pos, &rawkey, &rawval)) {
        char key[64];
        size_t kl = http_url_decode(key, sizeof key, rawkey);
        if (kl == (size_t)-1)
            return query_fail(e, 400, NULL, "invalid_query", "a query parameter name is malformed or too long");
        qparam *p = NULL;
        for (size_t k = 0; k < n; k++)
            if (strcmp(params[k].key, key) == 0)
                p = &params[k];
        if (!p) {
            if (!strict)
                continue;
            return query_fail(e, 400, key, "invalid_query", "unknown query parameter '%s'", key);
        }
        if (p->set)
            return query_fail(e, 400, p->key, "invalid_query", "'%s' is given more than once", p->key);
        if (http_url_decode(p->value, sizeof p->value, rawval.p ? rawval : SV("")) == (size_t)-1)
            return query_fail(e, 400, p->key, "invalid_query", "'%s' is malformed or longer than %d bytes", p->key,
                        QUERY_VALUE_MAX);
        p->set = true;
    }
    return ERR_OK;
}

static bool parse_version_text(const char *s, int *out)
{
    if (!*s || strlen(s) > 9)
        return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1)
        return false;
    *out = (int)v;
    return true;
}

/* Sets ref to name at label or version (text values; "" = not given).
 * Both given is an error; "latest" means the highest version. */
static err_code ref_from(const char *name, const char *label, const char *version, prompt_ref *ref, query_error *e)
{
    memset(ref, 0, sizeof *ref);
    snprintf(ref->name, sizeof ref->name, "%s", name);
    if (*label && *version)
        return query_fail(e, 400, "version", "invalid_prompt_ref", "give a label or a version, not both");
    if (*version && !parse_version_text(version, &ref->version))
        return query_fail(e, 400, "version", "invalid_prompt_ref", "version must be a positive integer, not '%s'",
                    version);
    if (*label && strcmp(label, "latest") != 0) {
        if (!prompt_label_valid(label, e))
            return ERR_INVAL;
        snprintf(ref->label, sizeof ref->label, "%s", label);
    }
    return ERR_OK;
}

/* A diff side relative to name: a version number, "latest", a label, or a
 * full reference ("other@label", "other:3"). */
static err_code diff_ref(const char *name, const char *text, const char *param, prompt_ref *ref, query_error *e)
{
    if (!*text)
        return query_fail(e, 400, param, "invalid_prompt_ref", "'%s' is required: a version, a label or a reference",
                    param);
    if (strchr(text, '@') || strchr(text, ':')) {
        if (!prompt_ref_parse(text, ref, e)) {
            snprintf(e->param, sizeof e->param, "%s", param);
            return ERR_INVAL;
        }
        if (strcmp(ref->label, "latest") == 0)
            ref->label[0] = '\0';
        return ERR_OK;
    }
    bool digits = true;
    for (const char *p = text; *p; p++)
        digits = digits && *p >= '0' && *p <= '9';
    err_code rc = digits ? ref_from(name, "", text, ref, e) : ref_from(name, text, "", ref, e);
    if (rc != ERR_OK)
        snprintf(e->param, sizeof e->param, "%s", param);
    return rc;
}

/* Parses the body as a JSON object ({} when empty). */
static err_code parse_body(http_req *r, json_t **out, query_error *e)
{
    *out = NULL;
    size_t n = r->body_len;
    while (n && (r->body[n - 1] == ' ' || r->body[n - 1] == '\n' || r->body[n - 1] == '\r' || r->body[n - 1] == '\t'))
        n--;
    if (n == 0) {
        *out = json_object();
        return *out ? ERR_OK : query_fail(e, 500, NULL, NULL, "out of memory");
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return query_fail(e, 400, NULL, "invalid_json", "the body is not valid JSON: %s (line %d, column %d)", je.text,
                    je.line, je.column);
    if (!json_is_object(j)) {
        json_decref(j);
        return query_fail(e, 400, NULL, "invalid_json", "the body must be a JSON object");
    }
    *out = j;
    return ERR_OK;
}

/* The keys of o that are not in allowed[]: the first is an error. */
static err_code check_keys(const json_t *o, const char *const *allowed, size_t n, const char *where, query_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return query_fail(e, 400, key, "unknown_field", "unknown field '%s'%s%s", key, where[0] ? " in " : "", where);
    }
    return ERR_OK;
}

/* An optional string field: NULL when absent or null. */
static err_code opt_string(const json_t *o, const char *key, const char *where, const char **out, query_error *e)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return ERR_OK;
    if (!json_is_string(v))
        return query_fail(e, 400, key, "invalid_field", "'%s'%s%s must be a string", key, where[0] ? " in " : "", where);
    *out = json_string_value(v);
    return ERR_OK;
}

/* Appends the labels array (may be absent) of o to *labels (pool memory). */
static err_code add_labels(pool *p, const json_t *o, const char *where, const char ***labels, size_t *n,
                           const char *const *prot, size_t nprot, bool admin, query_error *e)
{
    json_t *arr = json_object_get(o, "labels");
    if (!arr || json_is_null(arr))
        return ERR_OK;
    if (!json_is_array(arr))
        return query_fail(e, 400, "labels", "invalid_field", "'labels'%s%s must be an array of strings",
                    where[0] ? " in " : "", where);
    size_t add = json_array_size(arr);
    if (*n + add > LABELS_MAX)
        return query_fail(e, 400, "labels", "invalid_field", "at most %d labels%s%s", LABELS_MAX, where[0] ? " in " : "",
                    where);
    const char **v = pool_alloc(p, (*n + add + 1) * sizeof *v);
    if (!v)
        return query_fail(e, 500, NULL, NULL, "out of memory");
    if (*n)
        memcpy(v, *labels, *n * sizeof *v);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) {
        const char *s = json_string_value(x);
        if (!s)
            return query_fail(e, 400, "labels", "invalid_field", "'labels'%s%s must be an array of strings",
                        where[0] ? " in " : "", where);
        if (!prompt_label_valid(s, e)) {
            snprintf(e->param, sizeof e->param, "labels");
            return ERR_INVAL;
        }
        if (!admin && api_prompt_label_protected(s, prot, nprot))
            return query_fail(e, 403, "labels", "protected_label",
                        "label '%s' is protected: pointing it at a version needs the admin key", s);
        bool dup = false;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = strcmp(v[k], s) == 0;
        if (!dup)
            v[(*n)++] = s;
    }
    *labels = v;
    return ERR_OK;
}

/* One prompt_input from a JSON object (strings stay in o). defaults: the
 * push's top-level author/message/labels (may be NULL). */
static err_code input_from_json(http_req *r, const json_t *o, const char *where, const json_t *defaults,
                                const char *who, const char *const *prot, size_t nprot, bool admin, prompt_input *in,
                                query_error *e)
{
    static const char *const keys[] = { "name",   "type",   "template", "messages", "config",
                                        "message", "author", "labels",   "source" };
    memset(in, 0, sizeof *in);
    if (!json_is_object(o))
        return query_fail(e, 400, NULL, "invalid_field", "%s must be an object", where[0] ? where : "the body");
    err_code rc = check_keys(o, keys, countof(keys), where, e);
    if (rc != ERR_OK)
        return rc;
    const char *type = NULL;
    if ((rc = opt_string(o, "name", where, &in->name, e)) != ERR_OK ||
        (rc = opt_string(o, "type", where, &type, e)) != ERR_OK ||
        (rc = opt_string(o, "template", where, &in->template, e)) != ERR_OK ||
        (rc = opt_string(o, "message", where, &in->message, e)) != ERR_OK ||
        (rc = opt_string(o, "author", where, &in->author, e)) != ERR_OK ||
        (rc = opt_string(o, "source", where, &in->source, e)) != ERR_OK)
        return rc;
    const char *sep = where[0] ? " in " : "";
    if (!in->name)
        return query_fail(e, 400, "name", "invalid_field", "'name'%s%s is required", sep, where);
    if (!prompt_name_valid(in->name, e))
        return ERR_INVAL;
    json_t *msgs = json_object_get(o, "messages");
    if (msgs && json_is_null(msgs))
        msgs = NULL;
    if (msgs && !json_is_array(msgs))
        return query_fail(e, 400, "messages", "invalid_field", "'messages'%s%s must be an array", sep, where);
    if (!type)
        type = msgs ? "chat" : "text";
    if (strcmp(type, "text") == 0) {
        in->type = PROMPT_TEXT;
        if (msgs)
            return query_fail(e, 400, "messages", "invalid_field", "a text prompt has 'template', not 'messages'%s%s", sep,
                        where);
        if (!in->template)
            return query_fail(e, 400, "template", "invalid_field", "'template'%s%s is required for a text prompt", sep,
                        where);
    } else if (strcmp(type, "chat") == 0) {
        in->type = PROMPT_CHAT;
        if (in->template)
            return query_fail(e, 400, "template", "invalid_field", "a chat prompt has 'messages', not 'template'%s%s", sep,
                        where);
        if (!msgs)
            return query_fail(e, 400, "messages", "invalid_field", "'messages'%s%s is required for a chat prompt", sep,
                        where);
        in->messages = msgs;
    } else
        return query_fail(e, 400, "type", "invalid_field", "'type'%s%s must be \"text\" or \"chat\", not '%s'", sep, where,
                    type);
    json_t *cfgj = json_object_get(o, "config");
    if (cfgj && !json_is_null(cfgj)) {
        if (!json_is_object(cfgj))
            return query_fail(e, 400, "config", "invalid_field", "'config'%s%s must be an object", sep, where);
        in->config = cfgj;
    }
    const char **labels = NULL;
    size_t nlabels = 0;
    if ((rc = add_labels(r->pool, o, where, &labels, &nlabels, prot, nprot, admin, e)) != ERR_OK)
        return rc;
    if (defaults) {
        if ((rc = add_labels(r->pool, defaults, "", &labels, &nlabels, prot, nprot, admin, e)) != ERR_OK)
            return rc;
        const char *s = NULL;
        if (!in->message && (rc = opt_string(defaults, "message", "", &s, e)) == ERR_OK)
            in->message = s;
        if (rc != ERR_OK)
            return rc;
        if (!in->author && (rc = opt_string(defaults, "author", "", &s, e)) == ERR_OK)
            in->author = s;
        if (rc != ERR_OK)
            return rc;
    }
    if (!in->author)
        in->author = who;
    in->labels = labels;
    in->nlabels = nlabels;
    return ERR_OK;
}

static pjob *job_new(http_req *r, pjob_kind kind, bool langfuse)
{
    pjob *j = calloc(1, sizeof *j);
    if (!j) {
        query_error e = { 0 };
        query_fail(&e, 500, NULL, NULL, "out of memory");
        langfuse ? send_langfuse_error(r, &e) : send_error(r, &e, NULL);
        return NULL;
    }
    j->kind = kind;
    return j;
}

/* Answers e and frees j (a validation failure before queueing). */
static void refuse(http_req *r, pjob *j, bool langfuse)
{
    langfuse ? send_langfuse_error(r, &j->e) : send_error(r, &j->e, NULL);
    job_free(j);
}

static const char *const actions[] = { "versions", "labels", "rollback", "history", "diff", "render" };

/* The /api/v1/prompts root: list and save. */
static void root(http_req *r, const char *store_url, pjob *j)
{
    if (j->kind == PJ_LIST) {
        qparam q[] = { { .key = "prefix" } };
        if (parse_query(r->query, q, countof(q), true, &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
        if (strlen(q[0].value) > PROMPT_NAME_MAX) {
            query_fail(&j->e, 400, "prefix", "invalid_query", "'prefix' is longer than %d bytes", PROMPT_NAME_MAX);
            refuse(r, j, false);
            return;
        }
        snprintf(j->prefix, sizeof j->prefix, "%.*s", PROMPT_NAME_MAX, q[0].value);
        job_start(r, j, store_url);
        return;
    }
    j->in = pool_calloc(r->pool, sizeof *j->in);
    if (!j->in) {
        query_fail(&j->e, 500, NULL, NULL, "out of memory");
        refuse(r, j, false);
        return;
    }
    j->nin = 1;
    if (parse_body(r, &j->body, &j->e) != ERR_OK ||
        input_from_json(r, j->body, "", NULL, j->who, j->protected_labels, j->nprotected, j->admin, j->in, &j->e) !=
            ERR_OK) {
        refuse(r, j, false);
        return;
    }
    job_start(r, j, store_url);
}

static void push(http_req *r, const char *store_url, pjob *j)
{
    static const char *const keys[] = { "prompts", "author", "message", "labels" };
    if (parse_body(r, &j->body, &j->e) != ERR_OK || check_keys(j->body, keys, countof(keys), "", &j->e) != ERR_OK) {
        refuse(r, j, false);
        return;
    }
    json_t *arr = json_object_get(j->body, "prompts");
    const char *s;
    if (!json_is_array(arr)) {
        query_fail(&j->e, 400, "prompts", "invalid_field", "'prompts' must be an array of prompts");
        refuse(r, j, false);
        return;
    }
    if (json_array_size(arr) > PUSH_MAX) {
        query_fail(&j->e, 400, "prompts", "invalid_field", "at most %d prompts in one push", PUSH_MAX);
        refuse(r, j, false);
        return;
    }
    if (opt_string(j->body, "author", "", &s, &j->e) != ERR_OK || opt_string(j->body, "message", "", &s, &j->e) != ERR_OK) {
        refuse(r, j, false);
        return;
    }
    j->nin = json_array_size(arr);
    j->in = pool_calloc(r->pool, (j->nin ? j->nin : 1) * sizeof *j->in);
    if (!j->in) {
        query_fail(&j->e, 500, NULL, NULL, "out of memory");
        refuse(r, j, false);
        return;
    }
    for (size_t i = 0; i < j->nin; i++) {
        char where[32];
        snprintf(where, sizeof where, "prompts[%zu]", i);
        if (input_from_json(r, json_array_get(arr, i), where, j->body, j->who, j->protected_labels, j->nprotected,
                            j->admin, &j->in[i], &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
    }
    job_start(r, j, store_url);
}

void api_prompts(http_req *r, const char *store_url, bool admin, const char *const *protected_labels,
                 size_t nprotected)
{
    static const sv base = SV("/api/v1/prompts");
    if (!sv_starts(r->path, base) || (r->path.len > base.len && r->path.p[base.len] != '/')) {
        query_error e = { 0 };
        query_fail(&e, 404, NULL, "unknown_url", "Unknown request URL: %.*s", (int)MIN(r->path.len, 200), r->path.p);
        send_error(r, &e, NULL);
        return;
    }
    sv rest = sv_make(r->path.p + base.len, r->path.len - base.len);
    while (rest.len && rest.p[rest.len - 1] == '/')
        rest.len--;
    pjob_kind kind;
    if (rest.len == 0) {
        if (is_get(r))
            kind = PJ_LIST;
        else if (is_post(r))
            kind = PJ_SAVE;
        else {
            method_not_allowed(r, "GET, POST", false);
            return;
        }
    } else if (sv_eq_cstr(rest, "/push") && is_post(r))
        kind = PJ_PUSH;
    else
        kind = PJ_GET;
    pjob *j = job_new(r, kind, false);
    if (!j)
        return;
    j->admin = admin;
    j->who = admin ? "admin" : "anonymous";
    j->protected_labels = protected_labels;
    j->nprotected = nprotected;
    if (kind == PJ_LIST || kind == PJ_SAVE) {
        root(r, store_url, j);
        return;
    }
    if (kind == PJ_PUSH) {
        push(r, store_url, j);
        return;
    }

    /* /{name}[/{action}] */
    char path[PATH_MAX_BYTES + 1];
    if (!path_decode(sv_make(rest.p + 1, rest.len - 1), path, sizeof path)) {
        query_fail(&j->e, 400, "name", "invalid_prompt_name",
             "the prompt name in the path is malformed (a bad %%-escape) or longer than %d bytes", PROMPT_NAME_MAX);
        refuse(r, j, false);
        return;
    }
    const char *action = NULL;
    char *slash = strrchr(path, '/');
    if (slash && slash != path)
        for (size_t i = 0; i < countof(actions); i++)
            if (strcmp(slash + 1, actions[i]) == 0) {
                action = actions[i];
                *slash = '\0';
            }
    if (!prompt_name_valid(path, &j->e)) {
        snprintf(j->e.param, sizeof j->e.param, "name");
        refuse(r, j, false);
        return;
    }
    snprintf(j->name, sizeof j->name, "%.*s", PROMPT_NAME_MAX, path);
    const char *allow = !action || !strcmp(action, "versions") || !strcmp(action, "history") || !strcmp(action, "diff")
                            ? "GET"
                            : "POST";
    if (strcmp(allow, "GET") == 0 ? !is_get(r) : !is_post(r)) {
        job_free(j);
        method_not_allowed(r, allow, false);
        return;
    }
    if (!action) {
        qparam q[] = { { .key = "label" }, { .key = "version" } };
        if (parse_query(r->query, q, countof(q), true, &j->e) != ERR_OK ||
            ref_from(j->name, q[0].value, q[1].value, &j->ref, &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
        job_start(r, j, store_url);
        return;
    }
    if (!strcmp(action, "versions")) {
        j->kind = PJ_VERSIONS;
        if (parse_query(r->query, NULL, 0, true, &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
        job_start(r, j, store_url);
        return;
    }
    if (!strcmp(action, "history")) {
        j->kind = PJ_HISTORY;
        qparam q[] = { { .key = "label" } };
        if (parse_query(r->query, q, countof(q), true, &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
        if (q[0].value[0] && !prompt_label_valid(q[0].value, &j->e)) {
            snprintf(j->e.param, sizeof j->e.param, "label");
            refuse(r, j, false);
            return;
        }
        snprintf(j->label, sizeof j->label, "%.*s", PROMPT_LABEL_MAX, q[0].value);
        job_start(r, j, store_url);
        return;
    }
    if (!strcmp(action, "diff")) {
        j->kind = PJ_DIFF;
        qparam q[] = { { .key = "from" }, { .key = "to" } };
        if (parse_query(r->query, q, countof(q), true, &j->e) != ERR_OK ||
            diff_ref(j->name, q[0].value, "from", &j->ref, &j->e) != ERR_OK ||
            diff_ref(j->name, q[1].value, "to", &j->ref2, &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
        job_start(r, j, store_url);
        return;
    }
    if (parse_body(r, &j->body, &j->e) != ERR_OK) {
        refuse(r, j, false);
        return;
    }
    if (!strcmp(action, "labels")) {
        static const char *const keys[] = { "label", "version" };
        j->kind = PJ_LABEL;
        const char *label;
        json_t *ver = json_object_get(j->body, "version");
        if (check_keys(j->body, keys, countof(keys), "", &j->e) != ERR_OK ||
            opt_string(j->body, "label", "", &label, &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
        if (!label) {
            query_fail(&j->e, 400, "label", "invalid_field", "'label' is required");
            refuse(r, j, false);
            return;
        }
        if (!prompt_label_valid(label, &j->e)) {
            snprintf(j->e.param, sizeof j->e.param, "label");
            refuse(r, j, false);
            return;
        }
        if (ver && !json_is_null(ver) &&
            (!json_is_integer(ver) || json_integer_value(ver) < 0 || json_integer_value(ver) > 1000000000)) {
            query_fail(&j->e, 400, "version", "invalid_field", "'version' must be a version number (0 or absent: latest)");
            refuse(r, j, false);
            return;
        }
        snprintf(j->label, sizeof j->label, "%s", label);
        j->version = ver ? (int)json_integer_value(ver) : 0;
        job_start(r, j, store_url);
        return;
    }
    if (!strcmp(action, "rollback")) {
        static const char *const keys[] = { "label" };
        j->kind = PJ_ROLLBACK;
        const char *label;
        if (check_keys(j->body, keys, countof(keys), "", &j->e) != ERR_OK ||
            opt_string(j->body, "label", "", &label, &j->e) != ERR_OK) {
            refuse(r, j, false);
            return;
        }
        if (!label)
            label = "production";
        if (!prompt_label_valid(label, &j->e)) {
            snprintf(j->e.param, sizeof j->e.param, "label");
            refuse(r, j, false);
            return;
        }
        snprintf(j->label, sizeof j->label, "%s", label);
        job_start(r, j, store_url);
        return;
    }
    /* render */
    static const char *const keys[] = { "label", "version", "variables" };
    j->kind = PJ_RENDER;
    const char *label;
    char version[16] = "";
    json_t *ver = json_object_get(j->body, "version");
    if (check_keys(j->body, keys, countof(keys), "", &j->e) != ERR_OK ||
        opt_string(j->body, "label", "", &label, &j->e) != ERR_OK) {
        refuse(r, j, false);
        return;
    }
    if (ver && !json_is_null(ver)) {
        if (!json_is_integer(ver) || json_integer_value(ver) < 1 || json_integer_value(ver) > 1000000000) {
            query_fail(&j->e, 400, "version", "invalid_field", "'version' must be a positive integer");
            refuse(r, j, false);
            return;
        }
        snprintf(version, sizeof version, "%lld", (long long)json_integer_value(ver));
    }
    j->vars = json_object_get(j->body, "variables");
    if (j->vars && !json_is_object(j->vars) && !json_is_null(j->vars)) {
        query_fail(&j->e, 400, "variables", "invalid_variables", "'variables' must be an object");
        refuse(r, j, false);
        return;
    }
    if (ref_from(j->name, label ? label : "", version, &j->ref, &j->e) != ERR_OK) {
        refuse(r, j, false);
        return;
    }
    job_start(r, j, store_url);
}

void api_langfuse_prompts(http_req *r, const char *store_url)
{
    static const sv base = SV("/api/public/v2/prompts");
    if (!sv_starts(r->path, base) || (r->path.len > base.len && r->path.p[base.len] != '/')) {
        query_error e = { 0 };
        query_fail(&e, 404, NULL, "unknown_url", "Unknown request URL: %.*s", (int)MIN(r->path.len, 200), r->path.p);
        send_langfuse_error(r, &e);
        return;
    }
    if (!is_get(r)) {
        method_not_allowed(r, "GET", true);
        return;
    }
    sv rest = sv_make(r->path.p + base.len, r->path.len - base.len);
    while (rest.len && rest.p[rest.len - 1] == '/')
        rest.len--;
    pjob *j = job_new(r, rest.len ? PJ_LF_GET : PJ_LF_LIST, true);
    if (!j)
        return;
    if (!rest.len) {
        qparam q[] = { { .key = "name" }, { .key = "label" }, { .key = "page" }, { .key = "limit" } };
        if (parse_query(r->query, q, countof(q), false, &j->e) != ERR_OK) {
            refuse(r, j, true);
            return;
        }
        j->page = 1;
        j->limit = LANGFUSE_LIMIT_DEFAULT;
        int n;
        if (q[2].value[0]) {
            if (!parse_version_text(q[2].value, &n)) {
                query_fail(&j->e, 400, "page", "invalid_query", "page must be a positive integer");
                refuse(r, j, true);
                return;
            }
            j->page = n;
        }
        if (q[3].value[0]) {
            if (!parse_version_text(q[3].value, &n) || n > LANGFUSE_LIMIT_MAX) {
                query_fail(&j->e, 400, "limit", "invalid_query", "limit must be from 1 to %d", LANGFUSE_LIMIT_MAX);
                refuse(r, j, true);
                return;
            }
            j->limit = n;
        }
        if (j->page > 1000000) {
            query_fail(&j->e, 400, "page", "invalid_query", "page is too large");
            refuse(r, j, true);
            return;
        }
        snprintf(j->name, sizeof j->name, "%.*s", PROMPT_NAME_MAX, q[0].value);
        snprintf(j->label, sizeof j->label, "%.*s", PROMPT_LABEL_MAX, q[1].value);
        job_start(r, j, store_url);
        return;
    }
    char name[PATH_MAX_BYTES + 1];
    qparam q[] = { { .key = "label" }, { .key = "version" } };
    if (!path_decode(sv_make(rest.p + 1, rest.len - 1), name, sizeof name)) {
        query_fail(&j->e, 400, "name", "invalid_prompt_name", "the prompt name in the path is malformed or too long");
        refuse(r, j, true);
        return;
    }
    if (!prompt_name_valid(name, &j->e) || parse_query(r->query, q, countof(q), false, &j->e) != ERR_OK) {
        refuse(r, j, true);
        return;
    }
    const char *label = q[0].value[0] || q[1].value[0] ? q[0].value : "production";
    if (ref_from(name, label, q[1].value, &j->ref, &j->e) != ERR_OK) {
        refuse(r, j, true);
        return;
    }
    job_start(r, j, store_url);
}
