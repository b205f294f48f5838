/*
 * request.c - the first thing the gateway does with a body: parse it with
 * jansson (which rejects invalid UTF-8 and bounds nesting depth) and check
 * the few fields routing depends on. Everything else is the provider's to
 * judge, so unknown fields pass through untouched.
 */
#include <stdarg.h>
#include <stdio.h>
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

static bool check_messages(json_t *msgs, bool anthropic, gw_error *e)
{
    if (!json_is_array(msgs)) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "messages", "'messages' must be an array of message objects");
        return false;
    }
    if (json_array_size(msgs) == 0) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "messages", "'messages' must not be empty");
        return false;
    }
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool", "function" };
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        char param[64];
        snprintf(param, sizeof param, "messages[%zu]", i);
        if (!json_is_object(m)) {
            gw_error_set(e, 400, "invalid_request_error", NULL, param, "%s must be an object", param);
            return false;
        }
        json_t *role = json_object_get(m, "role");
        snprintf(param, sizeof param, "messages[%zu].role", i);
        if (!json_is_string(role)) {
            gw_error_set(e, 400, "invalid_request_error", NULL, param, "%s must be a string", param);
            return false;
        }
        const char *rs = json_string_value(role);
        bool ok = false;
        for (size_t k = 0; k < (anthropic ? 2u : countof(roles)); k++)
            ok |= strcmp(rs, anthropic ? (k ? "assistant" : "user") : roles[k]) == 0;
        if (!ok) {
            gw_error_set(e, 400, "invalid_request_error", NULL, param, "%s is '%.40s'; expected one of %s", param, rs,
                         anthropic ? "user, assistant" : "system, developer, user, assistant, tool");
            return false;
        }
    }
    return true;
}

err_code gw_decode_request(gw_endpoint ep, const char *body, size_t len, gw_request *out, gw_error *e)
{
    memset(out, 0, sizeof *out);
    if (len == 0) {
        gw_error_set(e, 400, "invalid_request_error", NULL, NULL,
                     "the request body is empty; expected a JSON object");
        return ERR_PARSE;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        bool utf8 = strncmp(je.text, "unable to decode byte", 21) == 0 || strstr(je.text, "UTF-8") != NULL;
        gw_error_set(e, 400, "invalid_request_error", "invalid_json", NULL,
                     "%s in the request body at line %d, column %d (byte %d): %s",
                     utf8 ? "invalid UTF-8" : "invalid JSON", je.line, je.column, je.position, je.text);
        return ERR_PARSE;
    }
    if (!json_is_object(root)) {
        gw_error_set(e, 400, "invalid_request_error", NULL, NULL, "the request body must be a JSON object");
        goto bad;
    }
    json_t *model = json_object_get(root, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "model",
                     model ? "'model' must be a non-empty string" : "you must provide a model parameter");
        goto bad;
    }
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "stream", "'stream' must be a boolean");
        goto bad;
    }
    if (ep == EP_EMBEDDINGS && json_is_true(stream)) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "stream", "embeddings cannot be streamed");
        goto bad;
    }
    json_t *so = json_object_get(root, "stream_options");
    if (so && !json_is_null(so)) {
        json_t *iu = json_is_object(so) ? json_object_get(so, "include_usage") : NULL;
        if (!json_is_object(so) || (iu && !json_is_boolean(iu))) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "stream_options",
                         "'stream_options' must be an object with a boolean include_usage");
            goto bad;
        }
        out->include_usage = json_is_true(iu);
    }
    json_t *n = json_object_get(root, "n");
    if (n && !json_is_null(n) && (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 128)) {
        gw_error_set(e, 400, "invalid_request_error", NULL, "n", "'n' must be an integer from 1 to 128");
        goto bad;
    }
    switch (ep) {
    case EP_CHAT:
        if (!check_messages(json_object_get(root, "messages"), false, e))
            goto bad;
        break;
    case EP_MESSAGES:
        if (!check_messages(json_object_get(root, "messages"), true, e))
            goto bad;
        break;
    case EP_COMPLETIONS: {
        json_t *p = json_object_get(root, "prompt");
        if (!json_is_string(p) && !json_is_array(p)) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "prompt", "'prompt' must be a string or an array");
            goto bad;
        }
        break;
    }
    case EP_EMBEDDINGS: {
        json_t *in = json_object_get(root, "input");
        if (!json_is_string(in) && !json_is_array(in)) {
            gw_error_set(e, 400, "invalid_request_error", NULL, "input", "'input' must be a string or an array");
            goto bad;
        }
        break;
    }
    }
    out->root = root;
    out->model = json_string_value(model);
    out->stream = json_is_true(stream);
    return ERR_OK;
bad:
    json_decref(root);
    return ERR_INVAL;
}
