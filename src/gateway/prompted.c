/*
 * prompted.c - chat requests that name a prompt: the gateway renders the
 * prompt's messages with the request's variables, applies the prompt's
 * config, and rewrites the body before anything else sees it.
 *
 * The new body is built as text from the client's bytes (jscan spans), not
 * through a jansson tree: every top-level member but "prompt" and
 * "messages" is copied as it is; the config's request fields the client
 * did not send are added from the snapshot's pre-serialized JSON; "model"
 * comes from the client, else the prompt's config; "messages" is the
 * rendered prompt followed by the client's own messages. The result is
 * decoded again by the caller, so everything downstream sees an ordinary
 * request.
 */
#include <stdlib.h>
#include "core/jscan.h"
#include "gateway/prompted.h"

#define MAX_RENDERED (4u << 20)   /* rendered messages, bytes */
#define SCRATCH_KEEP (64u << 10)  /* scratch buffers larger than this are freed after use */

static void ref_error(gw_error *e, const char *why, const char *name, size_t nlen, const char *label, int version)
{
    if (strcmp(why, "label_not_found") == 0)
        gw_error_set(e, 404, "invalid_request_error", why, "prompt.label", "prompt '%.*s' has no label '%s'",
                     (int)MIN(nlen, 200), name, label);
    else if (strcmp(why, "version_not_found") == 0)
        gw_error_set(e, 404, "invalid_request_error", why, "prompt.version",
                     "version %d of prompt '%.*s' is not served: the gateway serves labelled versions and the "
                     "latest (label the version to pin it)",
                     version, (int)MIN(nlen, 200), name);
    else
        gw_error_set(e, 404, "invalid_request_error", "prompt_not_found", "prompt.name",
                     "there is no prompt '%.*s' (genaiops prompt list shows them)", (int)MIN(nlen, 200), name);
}

/* "name", "name@label", "name:version" into its parts (name points into s). */
static bool split_ref(const char *s, size_t len, const char **name, size_t *nlen, char *label, size_t lcap,
                      int *version, gw_error *e, const char *param)
{
    *name = s;
    *nlen = len;
    label[0] = '\0';
    *version = 0;
    for (size_t i = len; i-- > 0;) {
        if (s[i] == '@' || s[i] == ':') {
            const char *rest = s + i + 1;
            size_t rl = len - i - 1;
            *nlen = i;
            if (s[i] == '@') {
                if (rl == 0 || rl >= lcap)
                    goto bad;
                memcpy(label, rest, rl);
                label[rl] = '\0';
            } else {
                long v = 0;
                if (rl == 0 || rl > 9)
                    goto bad;
                for (size_t k = 0; k < rl; k++) {
                    if (rest[k] < '0' || rest[k] > '9')
                        goto bad;
                    v = v * 10 + (rest[k] - '0');
                }
                if (v < 1)
                    goto bad;
                *version = (int)v;
            }
            break;
        }
        if (s[i] == '/')
            break;
    }
    if (*nlen == 0)
        goto bad;
    return true;
bad:
    gw_error_set(e, 400, "invalid_request_error", "invalid_prompt_ref", param,
                 "'%.*s' is not a prompt reference: use NAME, NAME@LABEL or NAME:VERSION", (int)MIN(len, 200), s);
    return false;
}

/* Adds the comma-separated names in list to the sorted set names[] (at
 * most cap; each once). */
static void merge_missing(const char *list, char names[][128], size_t *n, size_t cap)
{
    while (*list) {
        const char *c = strchr(list, ',');
        size_t l = c ? (size_t)(c - list) : strlen(list);
        if (l > 0 && l < 128) {
            char nm[128];
            memcpy(nm, list, l);
            nm[l] = '\0';
            size_t i = 0;
            while (i < *n && strcmp(names[i], nm) < 0)
                i++;
            if ((i == *n || strcmp(names[i], nm) != 0) && *n < cap) {
                memmove(names[i + 1], names[i], (*n - i) * sizeof names[0]);
                memcpy(names[i], nm, l + 1);
                (*n)++;
            }
        }
        list += l + (c ? 1 : 0);
    }
}

/* Renders t into out. A template whose only problem is missing variables
 * adds them to *missing (the caller reports them all at the end) and
 * returns ERR_OK; other errors fill e. */
static err_code render_into(const tpl *t, jval vars, served_resolver *res, buf *out,
                            const served_prompt *sp, size_t msg, char missing[][128], size_t *nmissing, size_t cap,
                            gw_error *e)
{
    tpl_error te;
    tpl_opts o = { .resolve = served_resolve, .ud = res };
    err_code rc = tpl_render_text(t, vars, &o, out, &te);
    if (rc == ERR_OK)
        return ERR_OK;
    if (te.missing[0]) {
        merge_missing(te.missing, missing, nmissing, cap);
        return ERR_OK;
    }
    char what[96];
    if (sp->type == PROMPT_CHAT)
        snprintf(what, sizeof what, "message %zu (%s)", msg + 1, sp->msgs[msg].role);
    else
        snprintf(what, sizeof what, "the template");
    if (rc == ERR_NOMEM)
        gw_error_set(e, 503, "api_error", NULL, NULL, "out of memory rendering the prompt");
    else if (rc == ERR_TOOBIG)
        gw_error_set(e, 400, "invalid_request_error", "prompt_too_large", "prompt", "%s: %s", what,
                     te.message[0] ? te.message : "the rendered prompt is too large");
    else
        gw_error_set(e, 400, "invalid_request_error", "template_error", "prompt",
                     "%s%s%s: line %d, column %d: %s", what, te.partial[0] ? " (in partial " : "", te.partial[0]
                     ? te.partial : "", te.line, te.col, te.message);
    return ERR_INVAL;
}

#define MAX_TOP 64                /* top-level members of a request naming a prompt */

static bool has_member(const jval *keys, size_t n, const char *key, size_t klen)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i].len == klen + 2 && memcmp(keys[i].p + 1, key, klen) == 0)
            return true;
    return false;
}

/* Appends s as a JSON string literal: one pass into room for the worst
 * case (every byte as \ufffd). */
static void put_string(buf *b, const char *s, size_t n)
{
    size_t room = 6 * n + 2;
    if (buf_reserve(b, room) == ERR_OK) {
        size_t w = jscan_escape(b->p + b->len, room, s, n);
        b->len += MIN(w, room);
        b->p[b->len] = '\0';
    }
}

/* A config value the traces record (request parameters), from its JSON. */
static void note_param(gw_request *rq, const served_param *p)
{
    if (!p->is_num)
        return;
    double d = p->num;
    const char *k = p->key;
    if (strcmp(k, "temperature") == 0)
        rq->has_temperature = true, rq->temperature = d;
    else if (strcmp(k, "top_p") == 0)
        rq->has_top_p = true, rq->top_p = d;
    else if (strcmp(k, "frequency_penalty") == 0)
        rq->has_frequency_penalty = true, rq->frequency_penalty = d;
    else if (strcmp(k, "presence_penalty") == 0)
        rq->has_presence_penalty = true, rq->presence_penalty = d;
    else if ((strcmp(k, "max_tokens") == 0 || strcmp(k, "max_completion_tokens") == 0) && d == (double)(long long)d)
        rq->has_max_tokens = true, rq->max_tokens = (long long)d;
    else if (strcmp(k, "seed") == 0 && d == (double)(long long)d)
        rq->has_seed = true, rq->seed = (long long)d;
}

err_code gw_prompt_apply(prompt_server *ps, const gw_request *rq, const char *bound, pool *p, buf scratch[2],
                         gw_prompted *out, gw_error *e)
{
    memset(out, 0, sizeof *out);
    const char *name = NULL;
    size_t nlen = 0;
    char label[72] = "";
    int version = 0;
    jval vars_span = { 0 };
    bool has_vars = false;
    /* the reference: the request's, else the deployment's */
    if (bound && !split_ref(bound, strlen(bound), &name, &nlen, label, sizeof label, &version, e, "model"))
        return ERR_INVAL;
    if (rq->has_prompt) {
        jval pv = jscan_root(rq->prompt_at, rq->prompt_len);
        if (pv.type == J_STRING) {
            char tmp[512];
            size_t tl;
            if (!jscan_string(pv, tmp, sizeof tmp, &tl)) {
                gw_error_set(e, 400, "invalid_request_error", "invalid_prompt_ref", "prompt", "'prompt' is too long");
                return ERR_INVAL;
            }
            char *copy = pool_strdup(p, tmp);
            if (!copy || !split_ref(copy, tl, &name, &nlen, label, sizeof label, &version, e, "prompt"))
                return copy ? ERR_INVAL : ERR_NOMEM;
        } else {
            static const char *const allowed[] = { "name", "label", "version", "variables" };
            jscan_iter it;
            jscan_iter_init(&it, pv);
            jval k, x;
            bool has_label = false, has_version = false;
            while (jscan_next(&it, &k, &x)) {
                int idx = jscan_match(k, allowed, countof(allowed));
                char kn[64];
                size_t kl;
                if (idx < 0) {
                    if (!jscan_string(k, kn, sizeof kn, &kl))
                        snprintf(kn, sizeof kn, "(long key)");
                    gw_error_set(e, 400, "invalid_request_error", NULL, "prompt",
                                 "unknown key 'prompt.%s': expected name, label, version, variables", kn);
                    return ERR_INVAL;
                }
                if (idx == 0) {
                    char tmp[256];
                    size_t tl;
                    if (x.type != J_STRING || !jscan_string(x, tmp, sizeof tmp, &tl) || tl == 0) {
                        gw_error_set(e, 400, "invalid_request_error", NULL, "prompt.name",
                                     "'prompt.name' must be a non-empty string of at most 200 bytes");
                        return ERR_INVAL;
                    }
                    char *copy = pool_strdup(p, tmp);
                    if (!copy)
                        return ERR_NOMEM;
                    name = copy, nlen = tl;
                    if (!has_label && !has_version) /* the deployment's label/version go with its name */
                        label[0] = '\0', version = 0;
                } else if (idx == 1) {
                    size_t tl;
                    if (x.type != J_STRING || !jscan_string(x, label, sizeof label, &tl) || tl == 0) {
                        gw_error_set(e, 400, "invalid_request_error", NULL, "prompt.label",
                                     "'prompt.label' must be a non-empty string of at most 64 bytes");
                        return ERR_INVAL;
                    }
                    has_label = true;
                    version = 0;
                } else if (idx == 2) {
                    long long v;
                    if (!jscan_int(x, &v) || v < 1 || v > 1000000000) {
                        gw_error_set(e, 400, "invalid_request_error", NULL, "prompt.version",
                                     "'prompt.version' must be a positive integer");
                        return ERR_INVAL;
                    }
                    has_version = true;
                    version = (int)v;
                    label[0] = '\0';
                } else {
                    if (x.type != J_OBJECT && x.type != J_NULL) {
                        gw_error_set(e, 400, "invalid_request_error", NULL, "prompt.variables",
                                     "'prompt.variables' must be an object");
                        return ERR_INVAL;
                    }
                    vars_span = x;
                    has_vars = x.type == J_OBJECT;
                }
            }
            if (has_label && has_version) {
                gw_error_set(e, 400, "invalid_request_error", NULL, "prompt",
                             "give 'prompt.label' or 'prompt.version', not both");
                return ERR_INVAL;
            }
        }
    }
    if (!name) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "prompt.name",
                     "'prompt.name' is required (no deployment binds a prompt to this model)");
        return ERR_INVAL;
    }
    if (!ps) {
        gw_error_set(e, 503, "api_error", "prompts_unavailable", "prompt",
                     "this server does not serve prompts (the registry could not be opened; see its log)");
        return ERR_UNSUPPORTED;
    }
    const char *why = NULL;
    const served_prompt *sp = prompt_server_find(ps, name, nlen, label, version, &why);
    if (!sp) {
        ref_error(e, why, name, nlen, label, version);
        return ERR_NOTFOUND;
    }
    /* the variables are read in place from the validated request bytes */
    jval vars = has_vars ? vars_span : (jval){ J_NULL, "null", 4 };
    /* the client's top-level members (the body was validated by the decoder) */
    jval keys[MAX_TOP], vals[MAX_TOP];
    size_t count = 0;
    jval root = jscan_root(rq->body, rq->len), msgs = { 0 };
    jscan_iter it;
    jscan_iter_init(&it, root);
    while (count < MAX_TOP && jscan_next(&it, &keys[count], &vals[count])) {
        if (jscan_string_eq(keys[count], "messages"))
            msgs = vals[count];
        count++;
    }
    jval extra_k, extra_v;
    if (count == MAX_TOP && jscan_next(&it, &extra_k, &extra_v)) {
        gw_error_set(e, 400, "invalid_request_error", NULL, NULL,
                     "a request naming a prompt may have at most %d top-level members", MAX_TOP);
        return ERR_INVAL;
    }
    served_resolver res = { ps, label[0] ? label : NULL };
    /* the worker's scratch buffers (the body is copied into the pool at the end) */
    buf *bp = &scratch[0], *tp = &scratch[1];
    if (!bp->max) {
        buf_init(bp, MAX_RENDERED + (4u << 20));
        buf_init(tp, MAX_RENDERED);
    }
    buf_reset(bp);
    buf_reset(tp);
    if (rq->len + 4096 > bp->max) {
        gw_error_set(e, 400, "invalid_request_error", "prompt_too_large", "prompt",
                     "the request with its rendered prompt is too large");
        return ERR_TOOBIG;
    }
    buf_reserve(bp, rq->len + 2048);
    buf_reserve(tp, 1024);
    err_code rc = ERR_OK;
    size_t model_off = 0, model_len = 0, msgs_off = 0;
    gw_request nrq = *rq;        /* what the decoder found stays; the spans move */
    nrq.nmsgs = -1;              /* the recorded messages are the client's, in the old body */
    nrq.has_prompt = false;
    nrq.prompt_at = NULL;
    nrq.prompt_len = 0;
    buf_append(bp, "{", 1);
    bool model_sent = false;
    for (size_t i = 0; i < count; i++) {
        if (jscan_string_eq(keys[i], "prompt") || jscan_string_eq(keys[i], "messages"))
            continue;
        bool is_model = jscan_string_eq(keys[i], "model");
        buf_append(bp, keys[i].p, keys[i].len);
        buf_append(bp, ":", 1);
        if (is_model) {
            model_sent = true;
            model_off = bp->len, model_len = vals[i].len;
        }
        buf_append(bp, vals[i].p, vals[i].len);
        buf_append(bp, ",", 1);
    }
    if (!model_sent) {
        if (!sp->model) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "model",
                         "you must provide a model: prompt '%s' version %d has no config.model", sp->name,
                         sp->version);
            rc = ERR_INVAL;
            goto out;
        }
        size_t ml = strlen(sp->model);
        if (ml >= sizeof nrq.model) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "model", "the prompt's config.model is too long");
            rc = ERR_INVAL;
            goto out;
        }
        memcpy(nrq.model, sp->model, ml + 1);
        buf_append_str(bp, "\"model\":");
        model_off = bp->len;
        put_string(bp, sp->model, ml);
        model_len = bp->len - model_off;
        buf_append(bp, ",", 1);
    }
    for (size_t i = 0; i < sp->nparams; i++) {
        const served_param *pp = &sp->params[i];
        if (has_member(keys, count, pp->key, pp->key_len))
            continue; /* the client's value wins */
        put_string(bp, pp->key, pp->key_len);
        buf_append(bp, ":", 1);
        buf_append(bp, pp->json, pp->json_len);
        buf_append(bp, ",", 1);
        note_param(&nrq, pp);
    }
    buf_append_str(bp, "\"messages\":");
    msgs_off = bp->len;
    buf_append(bp, "[", 1);
    size_t nm = sp->type == PROMPT_CHAT ? sp->nmsgs : 1;
    char missing[32][128];
    size_t nmissing = 0;
    for (size_t i = 0; i < nm; i++) {
        buf_reset(tp);
        rc = render_into(sp->type == PROMPT_CHAT ? sp->msgs[i].content : sp->text, vars, &res, tp, sp, i,
                         missing, &nmissing, countof(missing), e);
        if (rc != ERR_OK)
            goto out;
        buf_append_str(bp, i ? ",{\"role\":" : "{\"role\":");
        const char *role = sp->type == PROMPT_CHAT ? sp->msgs[i].role : "user";
        put_string(bp, role, strlen(role));
        buf_append_str(bp, ",\"content\":");
        put_string(bp, tp->p ? tp->p : "", tp->len);
        if (sp->type == PROMPT_CHAT && sp->msgs[i].extra) {
            buf_append(bp, ",", 1);
            buf_append_str(bp, sp->msgs[i].extra);
        }
        buf_append(bp, "}", 1);
    }
    if (nmissing) {
        char list[1024] = "";
        size_t used = 0;
        for (size_t i = 0; i < nmissing && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", missing[i]);
        gw_error_set(e, 400, "invalid_request_error", "missing_variables", "prompt.variables",
                     "missing variables: %s", list);
        rc = ERR_INVAL;
        goto out;
    }
    /* the client's own messages after the prompt's */
    if (msgs.type == J_ARRAY) {
        jscan_iter mi;
        jscan_iter_init(&mi, msgs);
        jval k, m;
        bool first = nm == 0;
        while (jscan_next(&mi, &k, &m)) {
            if (!first)
                buf_append(bp, ",", 1);
            first = false;
            buf_append(bp, m.p, m.len);
        }
    }
    size_t msgs_end = bp->len + 1;
    if (buf_append_str(bp, "]}") != ERR_OK) {
        gw_error_set(e, 400, "invalid_request_error", "prompt_too_large", "prompt",
                     "the request with its rendered prompt is too large");
        rc = ERR_TOOBIG;
        goto out;
    }
    out->body = pool_alloc(p, bp->len + 1);
    if (!out->body) {
        rc = ERR_NOMEM;
        gw_error_set(e, 503, "api_error", NULL, NULL, "out of memory");
        goto out;
    }
    memcpy(out->body, bp->p, bp->len);
    out->body[bp->len] = '\0';
    out->len = bp->len;
    out->name = sp->name;
    out->version = sp->version;
    nrq.body = out->body;
    nrq.len = out->len;
    nrq.root = NULL;
    nrq.model_at = out->body + model_off;
    nrq.model_len = model_len;
    nrq.input_at = out->body + msgs_off;
    nrq.input_len = msgs_end - msgs_off;
    out->rq = nrq;
out:
    if (bp->cap > SCRATCH_KEEP) /* a rare big one does not stay */
        buf_free(bp);
    if (tp->cap > SCRATCH_KEEP)
        buf_free(tp);
    return rc;
}
