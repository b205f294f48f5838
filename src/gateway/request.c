/*
 * request.c - the first thing the gateway does with a body: parse it with
 * jansson (which rejects invalid UTF-8 and bounds nesting depth) and check
 * the few fields routing depends on. Everything else is the provider's to
 * judge, so unknown fields pass through untouched.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/jscan.h"
#include "gateway/request.h"

void gw_error_set(gw_error *e, int status, const char *type, const char *code, const char *param,
                  const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

const char *gw_anthropic_error_type(int status)
{
    switch (status) {
    case 400: case 405: case 413: case 422: return status == 413 ? "request_too_large" : "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 529: case 503: return "overloaded_error";
    case 504: return "timeout_error";
    default: return "api_error";
    }
}

char *gw_error_body(const gw_error *e, api_format fmt, pool *p, size_t *len)
{
    json_t *o;
    if (fmt == API_ANTHROPIC) {
        o = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
                      gw_anthropic_error_type(e->status), "message", e->message);
    } else {
        o = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", e->message, "type",
                      e->type ? e->type : "api_error", "param",
                      e->param[0] ? json_string(e->param) : json_null(), "code",
                      e->code ? json_string(e->code) : json_null());
    }
    char *s = NULL;
    if (o) {
        size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT);
        s = pool_alloc(p, n + 1);
        if (s) {
            json_dumpb(o, s, n, JSON_COMPACT);
            s[n] = '\0';
            *len = n;
        }
        json_decref(o);
    }
    if (!s) {
        static const char fallback[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"api_error\",\"param\":null,\"code\":null}}";
        *len = sizeof fallback - 1;
        return (char *)fallback;
    }
    return s;
}

/* Checks the messages (objects with a known role) and, for OpenAI's API,
 * records up to GW_MSGS of them in out (out->nmsgs, -1 when not recorded).
 * One walk of each message's members: "role" as jscan_get reads it (the
 * last one), keys compared unescaped. */
static bool check_messages(jval msgs, bool found, bool anthropic, gw_request *out, gw_error *e)
{
    out->nmsgs = -1;
    if (!found || msgs.type != J_ARRAY) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "messages", "'messages' must be an array of message objects");
        return false;
    }
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool", "function" };
    static const char *const aroles[] = { "user", "assistant" };
    static const char *const members[] = { "role", "content", "tool_calls" };
    bool record = !anthropic;
    jscan_iter it;
    jscan_iter_init(&it, msgs);
    jval key, m;
    size_t i = 0;
    for (; jscan_next(&it, &key, &m); i++) {
        char param[64];
        if (m.type != J_OBJECT) {
            snprintf(param, sizeof param, "messages[%zu]", i);
            gw_error_set(e, 400, "invalid_request_error", NULL, param, "%s must be an object", param);
            return false;
        }
        gw_msg rec = { { J_NONE, NULL, 0 }, { J_NONE, NULL, 0 }, { J_NONE, NULL, 0 } };
        jscan_iter mi;
        jval k, v;
        jscan_iter_init(&mi, m);
        while (jscan_next(&mi, &k, &v)) {
            switch (jscan_match(k, members, countof(members))) {
            case 0: rec.role = v; break;
            case 1: record &= rec.content.type == J_NONE, rec.content = v; break;
            case 2: record &= rec.tool_calls.type == J_NONE, rec.tool_calls = v; break;
            default: break;
            }
        }
        if (rec.role.type != J_STRING) {
            snprintf(param, sizeof param, "messages[%zu].role", i);
            gw_error_set(e, 400, "invalid_request_error", NULL, param, "%s must be a string", param);
            return false;
        }
        if (jscan_match(rec.role, anthropic ? aroles : roles, anthropic ? countof(aroles) : countof(roles)) < 0) {
            char rs[48];
            size_t rl;
            snprintf(param, sizeof param, "messages[%zu].role", i);
            if (!jscan_string(rec.role, rs, sizeof rs, &rl))
                snprintf(rs, sizeof rs, "%s", "(too long)");
            gw_error_set(e, 400, "invalid_request_error", NULL, param, "%s is '%s'; expected one of %s", param, rs,
                         anthropic ? "user, assistant" : "system, developer, user, assistant, tool");
            return false;
        }
        if (record && i < GW_MSGS)
            out->msgs[i] = rec;
    }
    if (i == 0) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "messages", "'messages' must not be empty");
        return false;
    }
    if (record && i <= GW_MSGS)
        out->nmsgs = (int)i;
    return true;
}

enum { K_MODEL, K_STREAM, K_STREAM_OPTIONS, K_N, K_MESSAGES, K_PROMPT, K_INPUT, K_TEMPERATURE, K_TOP_P,
       K_MAX_TOKENS, K_MAX_COMPLETION_TOKENS, K_SEED, K_FREQUENCY_PENALTY, K_PRESENCE_PENALTY };
static const char *const keys[] = { "model", "stream", "stream_options", "n", "messages", "prompt", "input",
                                    "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed",
                                    "frequency_penalty", "presence_penalty" };

static bool array_empty(jval a)
{
    if (a.type != J_ARRAY)
        return false;
    jscan_iter it;
    jscan_iter_init(&it, a);
    jval k, x;
    return !jscan_next(&it, &k, &x);
}

/* A number member for traces: only recorded when it is a number. */
static bool num(const jval *v, bool has, double *out)
{
    if (!has || v->type != J_NUMBER || v->len >= 40)
        return false;
    char tmp[40];
    memcpy(tmp, v->p, v->len);
    tmp[v->len] = '\0';
    char *end;
    *out = strtod(tmp, &end);
    return *end == '\0';
}

err_code gw_decode_request(gw_endpoint ep, const char *body, size_t len, gw_request *out, gw_error *e)
{
    memset(out, 0, offsetof(gw_request, msgs)); /* msgs[] is read only up to nmsgs */
    out->nmsgs = -1;
    out->body = body;
    out->len = len;
    if (len == 0) {
        gw_error_set(e, 400, "invalid_request_error", NULL, NULL,
                     "the request body is empty; expected a JSON object");
        return ERR_PARSE;
    }
    jscan_member top[64];
    size_t count = 0;
    jval root;
    jscan_error je;
    if (!jscan_parse(body, len, JSCAN_MAX_DEPTH, &root, top, countof(top), &count, &je)) {
        bool utf8 = strstr(je.message, "UTF-8") != NULL;
        gw_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                     "%s in the request body at line %d, column %d (byte %zu): %s",
                     utf8 ? "invalid UTF-8" : "invalid JSON", je.line, je.column, je.offset, je.message);
        return ERR_PARSE;
    }
    if (root.type != J_OBJECT) {
        gw_error_set(e, 400, "invalid_request_error", NULL, NULL, "the request body must be a JSON object");
        return ERR_INVAL;
    }
    if (count > countof(top) ? jscan_has_duplicate_keys(root) : jscan_duplicate_members(top, count)) {
        gw_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                     "the request body has a duplicate key at its top level");
        return ERR_INVAL;
    }
    jval v[countof(keys)];
    bool has[countof(keys)] = { false };
    if (count <= countof(top)) {
        for (size_t i = 0; i < count; i++) {
            int k = jscan_match(top[i].key, keys, countof(keys));
            if (k >= 0) {
                v[k] = top[i].val;
                has[k] = true;
            }
        }
    } else {
        for (size_t k = 0; k < countof(keys); k++)
            has[k] = jscan_get(root, keys[k], &v[k], NULL);
    }
    size_t mlen = 0;
    if (ep == EP_CHAT && has[K_PROMPT] && v[K_PROMPT].type != J_NULL) {
        if (v[K_PROMPT].type != J_OBJECT && v[K_PROMPT].type != J_STRING) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "prompt",
                         "'prompt' must be an object {\"name\", \"label\" or \"version\", \"variables\"} or a "
                         "string \"name@label\"");
            return ERR_INVAL;
        }
        out->has_prompt = true;
        out->prompt_at = v[K_PROMPT].p;
        out->prompt_len = v[K_PROMPT].len;
    }
    if (out->has_prompt && !has[K_MODEL]) {
        /* the prompt's config (or its deployment) names the model */
    } else if (!has[K_MODEL] || v[K_MODEL].type != J_STRING) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "model",
                     has[K_MODEL] ? "'model' must be a non-empty string" : "you must provide a model parameter");
        return ERR_INVAL;
    }
    else if (!jscan_string(v[K_MODEL], out->model, sizeof out->model, &mlen) || mlen == 0) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "model",
                     mlen ? "'model' is longer than %d bytes" : "'model' must be a non-empty string",
                     GW_MAX_MODEL_NAME - 1);
        return ERR_INVAL;
    }
    if (has[K_MODEL]) {
        out->model_at = v[K_MODEL].p;
        out->model_len = v[K_MODEL].len;
    }
    if (has[K_STREAM] && v[K_STREAM].type != J_TRUE && v[K_STREAM].type != J_FALSE && v[K_STREAM].type != J_NULL) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "stream", "'stream' must be a boolean");
        return ERR_INVAL;
    }
    out->stream = has[K_STREAM] && v[K_STREAM].type == J_TRUE;
    if (ep == EP_EMBEDDINGS && out->stream) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "stream", "embeddings cannot be streamed");
        return ERR_INVAL;
    }
    if (has[K_STREAM_OPTIONS] && v[K_STREAM_OPTIONS].type != J_NULL) {
        jval iu;
        bool has_iu = v[K_STREAM_OPTIONS].type == J_OBJECT && jscan_get(v[K_STREAM_OPTIONS], "include_usage", &iu, NULL);
        if (v[K_STREAM_OPTIONS].type != J_OBJECT || (has_iu && iu.type != J_TRUE && iu.type != J_FALSE)) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "stream_options",
                         "'stream_options' must be an object with a boolean include_usage");
            return ERR_INVAL;
        }
        out->include_usage = has_iu && iu.type == J_TRUE;
    }
    long long n;
    if (has[K_N] && v[K_N].type != J_NULL && (!jscan_int(v[K_N], &n) || n < 1 || n > 128)) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "n", "'n' must be an integer from 1 to 128");
        return ERR_INVAL;
    }
    out->has_temperature = num(&v[K_TEMPERATURE], has[K_TEMPERATURE], &out->temperature);
    out->has_top_p = num(&v[K_TOP_P], has[K_TOP_P], &out->top_p);
    out->has_frequency_penalty = num(&v[K_FREQUENCY_PENALTY], has[K_FREQUENCY_PENALTY], &out->frequency_penalty);
    out->has_presence_penalty = num(&v[K_PRESENCE_PENALTY], has[K_PRESENCE_PENALTY], &out->presence_penalty);
    if (has[K_MAX_COMPLETION_TOKENS] && jscan_int(v[K_MAX_COMPLETION_TOKENS], &out->max_tokens))
        out->has_max_tokens = true;
    else if (has[K_MAX_TOKENS] && jscan_int(v[K_MAX_TOKENS], &out->max_tokens))
        out->has_max_tokens = true;
    out->has_seed = has[K_SEED] && jscan_int(v[K_SEED], &out->seed);
    int in = ep == EP_COMPLETIONS ? K_PROMPT : ep == EP_EMBEDDINGS ? K_INPUT : K_MESSAGES;
    if (has[in]) {
        out->input_at = v[in].p;
        out->input_len = v[in].len;
    }
    switch (ep) {
    case EP_CHAT:
    case EP_MESSAGES:
        if (out->has_prompt && (!has[K_MESSAGES] || array_empty(v[K_MESSAGES])))
            break; /* the prompt brings the messages; the client's are appended */
        if (!check_messages(v[K_MESSAGES], has[K_MESSAGES], ep == EP_MESSAGES, out, e))
            return ERR_INVAL;
        break;
    case EP_COMPLETIONS:
        if (!has[K_PROMPT] || (v[K_PROMPT].type != J_STRING && v[K_PROMPT].type != J_ARRAY)) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "prompt", "'prompt' must be a string or an array");
            return ERR_INVAL;
        }
        break;
    case EP_EMBEDDINGS:
        if (!has[K_INPUT] || (v[K_INPUT].type != J_STRING && v[K_INPUT].type != J_ARRAY)) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "input", "'input' must be a string or an array");
            return ERR_INVAL;
        }
        break;
    }
    return ERR_OK;
}

json_t *gw_request_tree(gw_request *rq)
{
    if (!rq->root)
        rq->root = json_loadb(rq->body, rq->len, 0, NULL);
    return rq->root;
}

char *gw_request_with_model(const gw_request *rq, const char *model, pool *p, size_t *len)
{
    size_t mlen = strlen(model);
    size_t lit = jscan_escape(NULL, 0, model, mlen);
    size_t before = (size_t)(rq->model_at - rq->body);
    size_t after = rq->len - before - rq->model_len;
    char *out = pool_alloc(p, before + lit + after + 1);
    if (!out)
        return NULL;
    memcpy(out, rq->body, before);
    jscan_escape(out + before, lit, model, mlen);
    memcpy(out + before + lit, rq->model_at + rq->model_len, after);
    *len = before + lit + after;
    out[*len] = '\0';
    return out;
}
