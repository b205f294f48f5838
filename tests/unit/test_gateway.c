/* test_gateway.c - request decoding (errors, positions, params), model
 * resolution (deployments, configured models, fallbacks, PROVIDER/MODEL),
 * and the providers' URLs and auth headers. */
#include <stdlib.h>
#include "gateway/gateway.h"
#include "gateway/request.h"
#include "providers/provider.h"
#include "test.h"

typedef struct decode_case {
    gw_endpoint ep;
    const char *body;
    int status;          /* 0 = accepted */
    const char *param;   /* expected param on error ("" = none) */
    const char *msg;     /* fragment of the message */
} decode_case;

static const decode_case decode_cases[] = {
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, NULL, NULL },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,\"stream_options\":{\"include_usage\":true},\"x_extra\":[1,2]}", 0, NULL, NULL },
    { EP_CHAT, "", 400, "", "empty" },
    { EP_CHAT, "{\"model\":\"m\",\n \"messages\": [}", 400, "", "line 2" },
    { EP_CHAT, "[1,2]", 400, "", "JSON object" },
    { EP_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "model", "model" },
    { EP_CHAT, "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "model", "non-empty" },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[]}", 400, "messages", "empty" },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":\"hi\"}", 400, "messages", "array" },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", 400, "messages[0].role", "wizard" },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", 400, "messages[0].role", "string" },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"stream\":\"yes\"}", 400, "stream", "boolean" },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"n\":0}", 400, "n", "1 to 128" },
    { EP_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"stream_options\":{\"include_usage\":1}}", 400, "stream_options", "include_usage" },
    { EP_CHAT, "{\"model\":\"m\",\"model\":\"n\",\"messages\":[{\"role\":\"user\"}]}", 400, "", "duplicate" },
    { EP_CHAT, "{\"model\":\"m\xff\",\"messages\":[]}", 400, "", "UTF-8" },
    { EP_MESSAGES, "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0, NULL, NULL },
    { EP_MESSAGES, "{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}", 400, "messages[0].role", "user, assistant" },
    { EP_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"once upon\"}", 0, NULL, NULL },
    { EP_COMPLETIONS, "{\"model\":\"m\",\"prompt\":5}", 400, "prompt", "string" },
    { EP_EMBEDDINGS, "{\"model\":\"m\",\"input\":[\"a\",\"b\"]}", 0, NULL, NULL },
    { EP_EMBEDDINGS, "{\"model\":\"m\"}", 400, "input", "input" },
    { EP_EMBEDDINGS, "{\"model\":\"m\",\"input\":\"a\",\"stream\":true}", 400, "stream", "embeddings" },
};

TEST(decode_requests_table)
{
    for (size_t i = 0; i < countof(decode_cases); i++) {
        const decode_case *c = &decode_cases[i];
        gw_request rq;
        gw_error e;
        memset(&e, 0, sizeof e);
        err_code rc = gw_decode_request(c->ep, c->body, strlen(c->body), &rq, &e);
        if (c->status == 0) {
            if (rc != ERR_OK)
                test_fail(__FILE__, __LINE__, "case %zu refused: %s", i, e.message);
            json_decref(rq.root);
            continue;
        }
        if (rc == ERR_OK) {
            test_fail(__FILE__, __LINE__, "case %zu accepted, expected %d", i, c->status);
            json_decref(rq.root);
            continue;
        }
        CHECK(rq.root == NULL);
        CHECK_INT(e.status, c->status);
        if (strcmp(e.param, c->param) != 0)
            test_fail(__FILE__, __LINE__, "case %zu param '%s', expected '%s'", i, e.param, c->param);
        if (!strstr(e.message, c->msg))
            test_fail(__FILE__, __LINE__, "case %zu message '%s' lacks '%s'", i, e.message, c->msg);
    }
}

TEST(decode_reports_stream_flags_and_model)
{
    const char *b = "{\"model\":\"sim/echo\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
                    "\"stream_options\":{\"include_usage\":true}}";
    gw_request rq;
    gw_error e;
    CHECK_INT(gw_decode_request(EP_CHAT, b, strlen(b), &rq, &e), ERR_OK);
    CHECK_STR(rq.model, "sim/echo");
    CHECK(rq.stream);
    CHECK(rq.include_usage);
    json_decref(rq.root);
}

TEST(error_bodies_in_both_shapes)
{
    pool *p = pool_new(0);
    gw_error e;
    gw_error_set(&e, 404, "invalid_request_error", "model_not_found", "model", "The model '%s' does not exist", "x\"y");
    size_t n;
    char *s = gw_error_body(&e, API_OPENAI, p, &n);
    json_t *o = json_loadb(s, n, 0, NULL);
    CHECK(o != NULL);
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "error"), "message")), "The model 'x\"y' does not exist");
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "error"), "code")), "model_not_found");
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "error"), "param")), "model");
    json_decref(o);
    s = gw_error_body(&e, API_ANTHROPIC, p, &n);
    o = json_loadb(s, n, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(o, "type")), "error");
    CHECK_STR(json_string_value(json_object_get(json_object_get(o, "error"), "type")), "not_found_error");
    json_decref(o);
    gw_error_set(&e, 400, "invalid_request_error", NULL, NULL, "bad");
    s = gw_error_body(&e, API_OPENAI, p, &n);
    o = json_loadb(s, n, 0, NULL);
    CHECK(json_is_null(json_object_get(json_object_get(o, "error"), "param")));
    CHECK(json_is_null(json_object_get(json_object_get(o, "error"), "code")));
    json_decref(o);
    pool_free(p);
}

static const char resolve_yaml[] =
    "providers:\n"
    "  - { name: openai, type: openai, api_key: sk-test }\n"
    "  - { name: claude, type: anthropic, api_key: ak }\n"
    "  - { name: az, type: azure, base_url: 'https://res.openai.azure.com', api_key: k, api_version: '2024-10-21' }\n"
    "  - { name: sim, type: simulator }\n"
    "models:\n"
    "  - { name: fast, provider: openai, upstream_model: gpt-4o-mini, fallbacks: [smart, sim/echo] }\n"
    "  - { name: smart, provider: claude, upstream_model: claude-sonnet-4-5 }\n"
    "deployments:\n"
    "  - { name: support-bot, model: fast }\n";

TEST(resolve_models_deployments_and_provider_paths)
{
    config *cfg = NULL;
    config_diags d = { 0 };
    CHECK_INT(config_load_string("resolve.yaml", resolve_yaml, sizeof resolve_yaml - 1, &cfg, &d), ERR_OK);
    config_diags_free(&d);
    if (!cfg)
        return;
    gateway *g = gateway_new(cfg);
    gw_target t[GW_MAX_TARGETS];
    int n = gateway_resolve(g, SV("fast"), t, GW_MAX_TARGETS);
    CHECK_INT(n, 3);
    CHECK_STR(t[0].prov->name, "openai");
    CHECK_STR(t[0].upstream_model, "gpt-4o-mini");
    CHECK_STR(t[1].prov->name, "claude");
    CHECK_STR(t[1].upstream_model, "claude-sonnet-4-5");
    CHECK_STR(t[2].prov->name, "sim");
    CHECK_STR(t[2].upstream_model, "echo");
    n = gateway_resolve(g, SV("support-bot"), t, GW_MAX_TARGETS);
    CHECK_INT(n, 3);
    CHECK_STR(t[0].upstream_model, "gpt-4o-mini");
    n = gateway_resolve(g, SV("openai/gpt-4o"), t, GW_MAX_TARGETS);
    CHECK_INT(n, 1);
    CHECK_STR(t[0].prov->name, "openai");
    CHECK_MEM(t[0].upstream_model, strlen(t[0].upstream_model), "gpt-4o");
    CHECK_INT(gateway_resolve(g, SV("nope"), t, GW_MAX_TARGETS), 0);
    CHECK_INT(gateway_resolve(g, SV("nobody/gpt-4o"), t, GW_MAX_TARGETS), 0);
    CHECK_INT(gateway_resolve(g, SV("openai/"), t, GW_MAX_TARGETS), 0);
    CHECK_INT(gateway_resolve(g, SV("/gpt"), t, GW_MAX_TARGETS), 0);
    CHECK_INT(gateway_resolve(g, SV("sim/not-a-mode"), t, GW_MAX_TARGETS), 0);
    CHECK_INT(gateway_resolve(g, SV("sim/lorem"), t, GW_MAX_TARGETS), 1);
    CHECK_INT(gateway_resolve(g, SV("fast"), t, 1), 1); /* bounded by max */

    /* provider URLs and auth */
    pool *p = pool_new(0);
    provider_http ph;
    gw_endpoint wep;
    const cfg_provider *op = config_find_provider(cfg, SV("openai"));
    CHECK(provider_endpoint(op, EP_MESSAGES, &wep) && wep == EP_CHAT);
    CHECK_INT(provider_build_http(op, EP_CHAT, "gpt-4o", false, p, &ph), ERR_OK);
    CHECK_STR(ph.url, "https://api.openai.com/v1/chat/completions");
    CHECK_STR(ph.headers[1], "Authorization: Bearer sk-test");
    const cfg_provider *az = config_find_provider(cfg, SV("az"));
    CHECK_INT(provider_build_http(az, EP_EMBEDDINGS, "emb-dep", false, p, &ph), ERR_OK);
    CHECK_STR(ph.url, "https://res.openai.azure.com/openai/deployments/emb-dep/embeddings?api-version=2024-10-21");
    CHECK_STR(ph.headers[1], "api-key: k");
    const cfg_provider *cl = config_find_provider(cfg, SV("claude"));
    CHECK(provider_endpoint(cl, EP_CHAT, &wep) && wep == EP_MESSAGES);
    CHECK(!provider_endpoint(cl, EP_EMBEDDINGS, &wep));
    CHECK_INT(provider_build_http(cl, EP_MESSAGES, "claude-x", true, p, &ph), ERR_OK);
    CHECK_STR(ph.url, "https://api.anthropic.com/v1/messages");
    CHECK_STR(ph.headers[1], "Accept: text/event-stream");
    CHECK_STR(ph.headers[2], "x-api-key: ak");
    CHECK_STR(ph.headers[3], "anthropic-version: 2023-06-01");
    CHECK(ph.headers[4] == NULL);
    CHECK_INT(provider_build_http(config_find_provider(cfg, SV("sim")), EP_CHAT, "echo", false, p, &ph), ERR_UNSUPPORTED);
    pool_free(p);
    gateway_free(g);
    config_free(cfg);
}

TEST(retry_after_values)
{
    struct { const char *v; long ms; } cases[] = {
        { "1", 1000 }, { "0", 0 }, { "2.5", 2500 }, { "120", 120000 }, { "", 0 }, { "-3", 0 },
        { "soon", 0 }, { "nan", 0 }, { "1e30", 0 }, { "5 ", 0 },
        { "Sun, 06 Nov 1994 08:49:47 GMT", 10000 },   /* now is 08:49:37 */
        { "Sun, 06 Nov 1994 08:49:30 GMT", 0 },       /* in the past */
        { "Sun, 06 Nov 1994 08:49:47 GMTx", 0 },
    };
    time_t now = 784111777; /* 1994-11-06 08:49:37 UTC */
    for (size_t i = 0; i < countof(cases); i++) {
        long got = gateway_retry_after_ms(sv_from(cases[i].v), now);
        if (got != cases[i].ms)
            test_fail(__FILE__, __LINE__, "retry-after '%s' gave %ld, expected %ld", cases[i].v, got, cases[i].ms);
    }
}

TEST(backoff_doubles_caps_jitters_and_honours_retry_after)
{
    cfg_retry rc = { .max_retries = 5, .base_ms = 100, .max_ms = 1000 };
    /* rnd 0 gives the low end d/2, a huge rnd stays within [d/2, d] */
    CHECK_INT(gateway_backoff_ms(&rc, 0, 0, 0), 50);
    CHECK_INT(gateway_backoff_ms(&rc, 1, 0, 0), 100);
    CHECK_INT(gateway_backoff_ms(&rc, 2, 0, 0), 200);
    CHECK_INT(gateway_backoff_ms(&rc, 3, 0, 0), 400);
    CHECK_INT(gateway_backoff_ms(&rc, 4, 0, 0), 500);  /* 1600 capped at 1000 */
    CHECK_INT(gateway_backoff_ms(&rc, 30, 0, 0), 500); /* no overflow with many tries */
    for (uint32_t rnd = 0; rnd < 5000; rnd += 37) {
        long d = gateway_backoff_ms(&rc, 2, 0, rnd);
        CHECK(d >= 200 && d <= 400);
    }
    CHECK_INT(gateway_backoff_ms(&rc, 0, 0, 50), 100);      /* top of [50, 100] */
    CHECK_INT(gateway_backoff_ms(&rc, 0, 3000, 7), 3000);   /* Retry-After wins */
    cfg_retry defaults = { 0 };
    CHECK_INT(gateway_backoff_ms(&defaults, 0, 0, 0), 100); /* base 200 -> [100, 200] */
}
