/*
 * sim.c - `genaiops sim`: the simulator alone as an OpenAI-compatible
 * server, for tests, demos and load tests. It is the same plan-and-play
 * code the in-process provider uses, except that a planned broken stream
 * really breaks the connection here (that is what it is for).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>
#include "cli/cli.h"
#include "core/log.h"
#include "http/server.h"
#include "providers/simplay.h"

static const char usage[] =
    "usage: genaiops sim [--listen HOST:PORT] [--mode MODE] [--latency-ms N] [--ttft-ms N]\n"
    "                    [--token-ms N] [--error-rate R] [--error-status S] [--seed N] [--workers N]\n"
    "\n"
    "Serves the built-in simulator (a deterministic stand-in for a model, never a real\n"
    "one) on its own as an OpenAI-compatible server: /v1/chat/completions, /v1/completions,\n"
    "/v1/embeddings, /v1/models. The model \"sim/MODE\" (or just \"MODE\") picks the mode;\n"
    "any other model name gets --mode. Modes: echo, lorem, canned, error-429, error-500,\n"
    "error-503, timeout, broken-stream. See docs/simulator.md.\n"
    "\n"
    "  --listen ADDR      default 127.0.0.1:8081\n"
    "  --mode MODE        default echo\n"
    "  --latency-ms N     delay before a non-streamed answer\n"
    "  --ttft-ms N        delay before the first streamed token\n"
    "  --token-ms N       delay between streamed tokens\n"
    "  --error-rate R     fraction (0..1) of requests that fail with --error-status (default 500)\n";

typedef struct sim_req {
    http_req *r;
    sim_call *sc;
    sim_plan plan;
    buf body;
    int status;
    bool paused;
} sim_req;

static sim_options opts;
static _Atomic uint64_t seq;
static http_server *running;

static int on_head(void *ud, int status, const upstream_header *h, size_t nh)
{
    sim_req *s = ud;
    s->status = status;
    for (size_t i = 0; i < nh; i++)
        if (sv_ieq_cstr(h[i].name, "retry-after"))
            http_resp_headerf(s->r, "retry-after", "%.*s", SV_FMT(h[i].value));
    if (s->plan.stream) {
        http_resp_header(s->r, "cache-control", "no-cache");
        http_resp_start(s->r, status, s->plan.content_type ? s->plan.content_type : "text/event-stream");
    }
    return 0;
}

static int on_data(void *ud, const char *p, size_t n)
{
    sim_req *s = ud;
    if (!s->plan.stream)
        return buf_append(&s->body, p, n) == ERR_OK ? UPSTREAM_CONTINUE : UPSTREAM_ABORT;
    if (http_resp_write(s->r, p, n) != ERR_OK) {
        simplay_cancel(s->sc); /* no callback after this one */
        s->sc = NULL;
        http_req_abandon(s->r);
        return UPSTREAM_ABORT;
    }
    if (http_resp_pending(s->r) > (1u << 20)) {
        s->paused = true;
        return UPSTREAM_PAUSE;
    }
    return UPSTREAM_CONTINUE;
}

static void on_done(void *ud, err_code e, const char *msg)
{
    sim_req *s = ud;
    s->sc = NULL;
    if (s->r->finished)
        return;
    if (e != ERR_OK) {
        http_req_abandon(s->r); /* the planned broken connection */
        return;
    }
    if (s->plan.stream)
        http_resp_end(s->r);
    else
        http_resp_send(s->r, s->status, s->plan.content_type ? s->plan.content_type : "application/json", s->body.p,
                       s->body.len);
}

static const upstream_callbacks cbs = { on_head, on_data, on_done };

static void cleanup(void *data)
{
    sim_req *s = data;
    if (s->sc)
        simplay_cancel(s->sc);
    buf_free(&s->body);
}

static void on_abort(http_req *r)
{
    sim_req *s = r->ud;
    if (s->sc)
        simplay_cancel(s->sc);
    s->sc = NULL;
    http_req_abandon(r);
}

static void on_drain(http_req *r)
{
    sim_req *s = r->ud;
    if (s->paused && s->sc) {
        s->paused = false;
        simplay_resume(s->sc);
    }
}

static void send_err(http_req *r, int status, const char *msg)
{
    char body[600];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}",
                     msg);
    http_resp_send(r, status, "application/json", body, (size_t)n);
}

static void handle(http_req *r)
{
    sim_endpoint ep;
    bool post = sv_eq_cstr(r->method, "POST");
    if (sv_eq_cstr(r->path, "/v1/chat/completions") && post)
        ep = SIM_CHAT;
    else if (sv_eq_cstr(r->path, "/v1/completions") && post)
        ep = SIM_COMPLETIONS;
    else if (sv_eq_cstr(r->path, "/v1/embeddings") && post)
        ep = SIM_EMBEDDINGS;
    else if (sv_eq_cstr(r->path, "/v1/models"))
        ep = SIM_MODELS;
    else if (sv_eq_cstr(r->path, "/healthz")) {
        http_resp_send(r, 200, "application/json", "{\"status\":\"ok\"}", 15);
        return;
    } else {
        send_err(r, 404, "unknown URL (the simulator serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models)");
        return;
    }
    json_t *req = NULL;
    char mode[64] = "";
    if (ep != SIM_MODELS) {
        json_error_t je;
        req = json_loadb(r->body, r->body_len, 0, &je);
        if (!json_is_object(req)) {
            json_decref(req);
            char m[300];
            snprintf(m, sizeof m, "invalid JSON body at line %d, column %d", je.line, je.column);
            send_err(r, 400, m);
            return;
        }
        const char *model = json_string_value(json_object_get(req, "model"));
        if (model) {
            const char *slash = strrchr(model, '/');
            const char *m = slash ? slash + 1 : model;
            if (sim_mode_valid(m))
                snprintf(mode, sizeof mode, "%s", m);
        }
    }
    sim_req *s = pool_calloc(r->pool, sizeof *s);
    if (!s || pool_cleanup_add(r->pool, cleanup, s) < 0) {
        json_decref(req);
        send_err(r, 503, "out of memory");
        return;
    }
    s->r = r;
    buf_init(&s->body, 256u << 20);
    err_code e = sim_plan_make(&opts, ep, mode[0] ? mode : NULL, req, atomic_fetch_add(&seq, 1), r->pool, &s->plan);
    json_decref(req);
    if (e == ERR_OK)
        e = simplay_start(http_worker_loop(r->worker), &s->plan, &cbs, s, &s->sc);
    if (e != ERR_OK) {
        send_err(r, 500, "simulator failed");
        return;
    }
    r->ud = s;
    r->on_abort = on_abort;
    r->on_drain = on_drain;
}

static uv_signal_t sigs[2];

static void on_signal(uv_signal_t *sig, int signum)
{
    http_server_stop(running, 2000);
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&sigs[i]))
            uv_close((uv_handle_t *)&sigs[i], NULL);
}

static bool num(const char *flag, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || d < lo || d > hi) {
        fprintf(stderr, "genaiops sim: %s must be a number from %g to %g\n", flag, lo, hi);
        return false;
    }
    *out = d;
    return true;
}

int cli_sim(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8081";
    int workers = 1;
    opts.default_mode = "echo";
    opts.max_tokens = 64;
    opts.error_status = 500;
    for (int i = 1; i < argc; i++) {
        const char *v;
        double d;
        if (cli_flag(argv, i, "-h") || cli_flag(argv, i, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--listen", &listen))
            continue;
        if (cli_opt(argc, argv, &i, "--mode", &v)) {
            if (!sim_mode_valid(v)) {
                fprintf(stderr, "genaiops sim: unknown mode '%s'\n", v);
                return 2;
            }
            opts.default_mode = v;
            continue;
        }
        struct { const char *flag; double lo, hi; } nums[] = {
            { "--latency-ms", 0, 600000 }, { "--ttft-ms", 0, 600000 }, { "--token-ms", 0, 60000 },
            { "--error-rate", 0, 1 }, { "--error-status", 400, 599 }, { "--seed", 0, 4e9 },
            { "--workers", 1, 64 }, { "--max-tokens", 1, 4096 },
        };
        bool matched = false;
        for (size_t k = 0; k < countof(nums) && !matched; k++) {
            if (!cli_opt(argc, argv, &i, nums[k].flag, &v))
                continue;
            matched = true;
            if (!num(nums[k].flag, v, nums[k].lo, nums[k].hi, &d))
                return 2;
            switch (k) {
            case 0: opts.latency_ms = (long)d; break;
            case 1: opts.ttft_ms = (long)d; break;
            case 2: opts.token_ms = (long)d; break;
            case 3: opts.error_rate = d; break;
            case 4: opts.error_status = (int)d; break;
            case 5: opts.seed = (unsigned long)d; break;
            case 6: workers = (int)d; break;
            case 7: opts.max_tokens = (long)d; break;
            }
        }
        if (matched)
            continue;
        fprintf(stderr, "genaiops sim: unknown argument '%s'\n\n%s", argv[i], usage);
        return 2;
    }
    char host[256];
    int port;
    if (!cli_parse_listen("--listen", listen, host, sizeof host, &port))
        return 2;
    if (!cli_is_loopback(host))
        log_warn("the simulator listens on %s, which is not a loopback address", listen);
    config *cfg = config_default(); /* server limits and timeouts */
    signal(SIGPIPE, SIG_IGN);
    http_server_opts o = { .cfg = &cfg->server, .host = host, .port = port, .workers = workers, .handler = handle };
    if (http_server_start(&o, &running) != ERR_OK) {
        config_free(cfg);
        return 1;
    }
    log_info("genaiops simulator (not a model) listening on http://%s:%d/v1 (default mode %s)", host,
             http_server_port(running), opts.default_mode);
    uv_signal_init(uv_default_loop(), &sigs[0]);
    uv_signal_init(uv_default_loop(), &sigs[1]);
    uv_signal_start(&sigs[0], on_signal, SIGTERM);
    uv_signal_start(&sigs[1], on_signal, SIGINT);
    uv_run(uv_default_loop(), UV_RUN_DEFAULT);
    http_server_join(running);
    config_free(cfg);
    return 0;
}
