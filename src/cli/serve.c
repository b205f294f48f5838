/*
 * serve.c - `genaiops serve`: load the config, open the store, start the
 * gateway's workers, and drain them on SIGTERM or SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>
#include "cli/cli.h"
#include "core/log.h"
#include "gateway/gateway.h"
#include "guard/guard.h"
#include "http/upstream.h"
#include "observe/observe.h"
#include "prompt/served.h"
#include "store/store.h"

static const char usage[] =
    "usage: genaiops serve [--config FILE] [--listen HOST:PORT] [--workers N] [--insecure]\n"
    "                      [--log-level LEVEL] [--log-format text|json]\n"
    "\n"
    "Starts the gateway, the control plane and the probes. With no config it serves\n"
    "the embedded default: 127.0.0.1:8080, the store sqlite://./genaiops.db, and the\n"
    "built-in simulator as provider 'sim' (models sim/echo, sim/lorem, ...).\n"
    "\n"
    "  --config FILE      YAML configuration (also $GENAIOPS_CONFIG); see docs/config.md\n"
    "  --listen ADDR      override server.listen\n"
    "  --workers N        override server.workers (0 = one per core)\n"
    "  --insecure         allow a non-loopback listen address without an admin key\n"
    "  --log-level L      debug, info, warn or error\n"
    "  --log-format F     text or json\n"
    "\n"
    "SIGTERM or SIGINT stops accepting, lets in-flight requests and streams finish\n"
    "within server.shutdown_timeout_ms, then exits 0.\n";

static http_server *running;
static long drain_ms;

static uv_signal_t sigs[2];

static void on_signal(uv_signal_t *s, int signum)
{
    log_info("received %s: draining (up to %ld ms)", signum == SIGTERM ? "SIGTERM" : "SIGINT", drain_ms);
    http_server_stop(running, drain_ms);
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&sigs[i]))
            uv_close((uv_handle_t *)&sigs[i], NULL);
}

int cli_serve(int argc, char **argv)
{
    const char *cfg_path = NULL, *listen = NULL, *workers = NULL, *level = NULL, *format = NULL;
    bool insecure = false;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv, i, "-h") || cli_flag(argv, i, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (cli_opt(argc, argv, &i, "--config", &cfg_path) || cli_opt(argc, argv, &i, "-c", &cfg_path) ||
            cli_opt(argc, argv, &i, "--listen", &listen) || cli_opt(argc, argv, &i, "--workers", &workers) ||
            cli_opt(argc, argv, &i, "--log-level", &level) || cli_opt(argc, argv, &i, "--log-format", &format))
            continue;
        if (cli_flag(argv, i, "--insecure")) {
            insecure = true;
            continue;
        }
        fprintf(stderr, "genaiops serve: unknown argument '%s'\n\n%s", argv[i], usage);
        return 2;
    }
    config *cfg = cli_load_config(cfg_path);
    if (!cfg)
        return 1;
    int rc = 1;
    store *st = NULL;
    gateway *g = NULL;
    observe *obs = NULL;
    prompt_server *prompts = NULL;
    guard_engine *guard = NULL;
    if (listen)
        cfg->server.listen = listen;
    if (workers) {
        char *end;
        long n = strtol(workers, &end, 10);
        if (*end || n < 0 || n > 256) {
            fprintf(stderr, "genaiops serve: --workers must be a number from 0 to 256\n");
            goto out;
        }
        cfg->server.workers = (int)n;
    }
    if (insecure)
        cfg->server.insecure = true;
    const char *lv = level ? level : cfg->log.level;
    if (lv) {
        int l = log_level_parse(lv);
        if (l < 0) {
            fprintf(stderr, "genaiops serve: unknown log level '%s' (debug, info, warn, error)\n", lv);
            goto out;
        }
        log_set_level((log_level)l);
    }
    const char *lf = format ? format : cfg->log.format;
    if (lf && strcmp(lf, "json") != 0 && strcmp(lf, "text") != 0) {
        fprintf(stderr, "genaiops serve: log format must be text or json\n");
        goto out;
    }
    log_set_json(lf && strcmp(lf, "json") == 0);

    char host[256];
    int port;
    if (!cli_parse_listen("server.listen", cfg->server.listen, host, sizeof host, &port))
        goto out;
    bool has_key = cfg->server.admin_key && *cfg->server.admin_key;
    if (!cli_is_loopback(host) && !has_key && !cfg->server.insecure) {
        fprintf(stderr,
                "genaiops serve: refusing to listen on %s, which is not a loopback address, without an admin key.\n"
                "Set server.admin_key (e.g. admin_key: ${GENAIOPS_ADMIN_KEY}) or pass --insecure.\n",
                cfg->server.listen);
        goto out;
    }
    char msg[512];
    if (guard_engine_new(&cfg->guardrails, &guard, msg, sizeof msg) != ERR_OK) {
        fprintf(stderr, "genaiops serve: %s\n", msg);
        goto out;
    }
    const char *url = cfg->store_url ? cfg->store_url : "sqlite://./genaiops.db";
    if (store_open(url, &st, msg, sizeof msg) != ERR_OK) {
        fprintf(stderr, "genaiops serve: %s\n", msg);
        goto out;
    }
    int nworkers = cfg->server.workers > 0 ? cfg->server.workers : (int)uv_available_parallelism();
    if (nworkers < 1)
        nworkers = 1;
    upstream_global_init();
    signal(SIGPIPE, SIG_IGN);
    g = gateway_new(cfg);
    if (!g)
        goto out;
    obs = observe_start(cfg, nworkers, msg, sizeof msg);
    if (!obs) {
        fprintf(stderr, "genaiops serve: %s\n", msg);
        goto out;
    }
    gw_observe hooks;
    observe_hooks(obs, &hooks);
    gateway_set_observe(g, &hooks);
    prompts = prompt_server_start(url, cfg->prompts.poll_ms, msg, sizeof msg);
    if (!prompts) {
        fprintf(stderr, "genaiops serve: %s\n", msg);
        goto out;
    }
    gateway_set_prompts(g, prompts);
    gateway_set_guard(g, guard);
    http_server_opts o = {
        .cfg = &cfg->server,
        .host = host,
        .port = port,
        .workers = nworkers,
        .handler = gateway_handle,
        .app = g,
        .worker_start = gateway_worker_start,
        .worker_stop = gateway_worker_stop,
    };
    if (http_server_start(&o, &running) != ERR_OK)
        goto out;
    drain_ms = cfg->server.shutdown_timeout_ms;
    const char *shown = strchr(host, ':') ? "[%s]" : "%s";
    char hostshown[300];
    snprintf(hostshown, sizeof hostshown, shown, host);
    log_info("genaiops %s listening on http://%s:%d (workers: %d, providers: %zu, models: %zu, store: %s)",
             GENAIOPS_VERSION, hostshown, http_server_port(running), nworkers, cfg->nproviders, cfg->nmodels,
             store_path(st));
    log_info("console: http://%s:%d/ui/", hostshown, http_server_port(running));
    if (isatty(STDERR_FILENO) || getenv("GENAIOPS_BANNER"))
        fprintf(stderr,
                "\n  console (open in a browser): http://%s:%d/ui/\n"
                "  OpenAI-compatible endpoint: http://%s:%d/v1   (try model \"sim/echo\")\n"
                "  health: http://%s:%d/healthz   status: http://%s:%d/api/v1/status\n\n",
                hostshown, http_server_port(running), hostshown, http_server_port(running), hostshown,
                http_server_port(running), hostshown, http_server_port(running));
    uv_loop_t *loop = uv_default_loop();
    uv_signal_init(loop, &sigs[0]);
    uv_signal_init(loop, &sigs[1]);
    uv_signal_start(&sigs[0], on_signal, SIGTERM);
    uv_signal_start(&sigs[1], on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    http_server_join(running);
    running = NULL;
    observe_stop(obs); /* every finished request's trace is written (and exported) first */
    obs = NULL;
    log_info("stopped cleanly");
    rc = 0;
out:
    observe_stop(obs);
    prompt_server_stop(prompts);
    gateway_free(g);
    guard_engine_free(guard);
    store_close(st);
    config_free(cfg);
    return rc;
}
