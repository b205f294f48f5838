/*
 * config.h - the loaded configuration: a tree of plain structs made once at
 * start (from YAML with ${ENV} expansion, or the embedded default) and then
 * only read, from every worker thread, until it is freed at exit.
 *
 * Everything hangs off config->pool and dies with config_free().
 */
#ifndef GENAIOPS_CONFIG_H
#define GENAIOPS_CONFIG_H

#include "common.h"
#include "err.h"
#include "pool.h"

typedef enum provider_type {
    PROVIDER_OPENAI = 0, /* OpenAI and every OpenAI-compatible server */
    PROVIDER_AZURE,
    PROVIDER_ANTHROPIC,
    PROVIDER_SIMULATOR,
} provider_type;

/* Options of the built-in simulator provider (all times in milliseconds). */
typedef struct sim_options {
    const char *default_mode;   /* "echo" unless set */
    long latency_ms;            /* before the response (non-streamed) or first byte */
    long ttft_ms;               /* time to first token when streaming */
    long token_ms;              /* pace between streamed tokens */
    long max_tokens;            /* default answer length for lorem: 64 */
    double error_rate;          /* 0..1: fraction of requests failing with error_status */
    int error_status;           /* 500 by default */
    unsigned long seed;         /* for error_rate and lorem */
    const char **canned;        /* canned answers, cycled deterministically */
    size_t ncanned;
} sim_options;

typedef struct cfg_header {
    const char *name;
    const char *value;
} cfg_header;

typedef struct cfg_provider {
    const char *name;
    provider_type type;
    const char *base_url;       /* no trailing slash; defaults per type */
    const char *api_key;        /* may be NULL */
    const char *api_version;    /* azure: api-version query; anthropic: anthropic-version header */
    const char *ca_file;        /* PEM bundle of CAs to trust for https (default: the system's) */
    long connect_timeout_ms;    /* default 5000 */
    long timeout_ms;            /* total, default 600000 */
    int max_retries;            /* default 2 */
    cfg_header *headers;        /* extra headers sent upstream */
    size_t nheaders;
    sim_options sim;            /* type == PROVIDER_SIMULATOR */
    int line;                   /* where it was defined, 0 for the default */
} cfg_provider;

/* Prices in USD per token, in LiteLLM's field names; -1 = not set here
 * (the pricing table decides). */
typedef struct cfg_pricing {
    double input_cost_per_token;
    double output_cost_per_token;
    double cache_read_input_token_cost;
    double cache_creation_input_token_cost;
    double output_cost_per_reasoning_token;
} cfg_pricing;

typedef struct cfg_model {
    const char *name;           /* what clients send as "model" */
    const char *provider;       /* a cfg_provider name */
    const char *upstream_model; /* name sent upstream; NULL = same as name */
    const char **fallbacks;     /* ordered model names (configured or PROVIDER/MODEL) */
    size_t nfallbacks;
    cfg_pricing pricing;        /* overrides of the pricing table for this model */
    int line;
} cfg_model;

typedef struct cfg_deployment {
    const char *name;
    const char *model;          /* the model (or PROVIDER/MODEL) it serves */
    const char *prompt;         /* a bound prompt: "name", "name@label", "name:version"; NULL = none */
    int line;
} cfg_deployment;

typedef struct cfg_server {
    const char *listen;         /* "127.0.0.1:8080" */
    int workers;                /* 0 = one per core */
    const char *admin_key;      /* NULL = none */
    bool insecure;              /* allow a non-loopback listen without admin key */
    size_t max_header_bytes;    /* 16 KiB: request line + headers */
    size_t max_headers;         /* 64 */
    size_t max_body_bytes;      /* 8 MiB */
    size_t max_connections;     /* 10000 per process */
    long header_timeout_ms;     /* 10000: whole head must arrive in this time */
    long body_timeout_ms;       /* 30000: between body reads */
    long idle_timeout_ms;       /* 60000: keep-alive idle */
    long shutdown_timeout_ms;   /* 30000: drain deadline on SIGTERM */
    size_t max_stream_buffer;   /* 1 MiB: buffered upstream bytes before pausing it */
} cfg_server;

typedef struct cfg_retry {
    int max_retries;            /* default for providers that do not set theirs: 2 */
    long base_ms;               /* 200 */
    long max_ms;                /* 8000 */
} cfg_retry;

typedef enum capture_mode { CAPTURE_OFF = 0, CAPTURE_ON, CAPTURE_REDACTED } capture_mode;

typedef struct cfg_otlp {
    const char *endpoint;       /* OTLP/HTTP base URL (".../v1/traces" is appended); NULL = off */
    cfg_header *headers;        /* e.g. authorization for a hosted backend */
    size_t nheaders;
    long timeout_ms;            /* per export request: 10000 */
    size_t batch_size;          /* spans per request: 512 */
    long interval_ms;           /* longest wait before a partial batch goes: 2000 */
    size_t queue_size;          /* traces waiting for export before drops: 10000 */
    bool metrics;               /* also export metrics to .../v1/metrics */
} cfg_otlp;

typedef struct cfg_telemetry {
    bool traces;                /* record a trace per request: true */
    bool metrics;               /* count requests for /metrics: true */
    capture_mode capture_content; /* message content in traces: off */
    size_t content_max_bytes;   /* per direction: 16 KiB */
    double sample_rate;         /* fraction of requests traced: 1.0 */
    long retention_days;        /* traces older are purged: 30 (0 = keep) */
    size_t queue_size;          /* traces waiting for the writer before drops: 10000 */
    double busy_cpu;            /* the writer's CPU share while the machine is busy: 0.01 (0 = no limit) */
    const char *pricing_file;   /* LiteLLM-format JSON; NULL = the built-in table */
    cfg_otlp otlp;
} cfg_telemetry;

typedef struct cfg_prompts {
    const char **protected_labels; /* move only with the admin key: [production] */
    size_t nprotected;
    long poll_ms;               /* how often serve looks for new versions and label moves: 250 */
} cfg_prompts;

/* guardrails: named policies (src/guard/guard.h compiles them). Names of
 * stages, detectors, actions and modes are validated here; regexes and
 * word lists are compiled by the engine at start (an error there stops
 * serve with the policy's name). */
typedef struct cfg_guard_topic {
    const char *name;
    const char **keywords;
    size_t nkeywords;
} cfg_guard_topic;

typedef struct cfg_guard_lists {
    const char **words;         /* whole words and phrases */
    size_t nwords;
    const char **regex;         /* PCRE2 patterns */
    size_t nregex;
} cfg_guard_lists;

typedef struct cfg_guard_policy {
    const char *name;
    unsigned stages;            /* bit 0 input, 1 output, 2 tool (from stage: or stages:) */
    const char *stage;          /* as written (one stage) */
    const char **stage_list;    /* as written (several) */
    size_t nstage_list;
    const char **detectors;     /* pii, secrets, injection, leakage, deny, topics, size, schema, harm, webhook */
    size_t ndetectors;
    const char *action;         /* block | redact | flag */
    const char *mode;           /* enforce | monitor */
    bool restore;               /* redact: put the originals back into the answer */
    size_t stream_holdback;     /* bytes of a streamed answer held back for matches split across chunks: 64 */
    /* where it applies; all empty = every request */
    const char **models;
    size_t nmodels;
    const char **deployments;
    size_t ndeployments;
    const char **keys;          /* key names ("admin" = the admin key) */
    size_t nkeys;
    /* detector options */
    const char **pii_types;     /* pii.types: EMAIL, PHONE, ... (default all) */
    size_t npii_types;
    double injection_threshold; /* injection.threshold: 0.5 */
    long leak_min_run;          /* leakage.min_run: 8 words */
    double leak_min_coverage;   /* leakage.min_coverage: 0.5 */
    cfg_guard_lists deny, allow;
    cfg_guard_topic *topics;
    size_t ntopics;
    size_t max_chars, max_tokens; /* size.max_chars, size.max_tokens (0 = none) */
    const char *harm_model;     /* harm.model: the classifier (a configured model or PROVIDER/MODEL) */
    const char **harm_categories; /* harm.categories: S1..S14 or names (default all) */
    size_t nharm_categories;
    int harm_threshold;         /* harm.threshold: 1..3, default 1 */
    long harm_timeout_ms;       /* harm.timeout_ms: 10000 */
    const char *webhook_url;    /* webhook.url */
    cfg_header *webhook_headers;
    size_t nwebhook_headers;
    long webhook_timeout_ms;    /* webhook.timeout_ms: 2000 */
    const char *on_error;       /* open | closed: what a failed classifier or webhook call means (closed) */
    int line;
} cfg_guard_policy;

typedef struct cfg_guardrails {
    cfg_guard_policy *policies;
    size_t npolicies;
} cfg_guardrails;

typedef struct cfg_log {
    const char *level;          /* "info" */
    const char *format;         /* "text" or "json" */
} cfg_log;

typedef struct config {
    pool *pool;
    const char *path;           /* file it came from, NULL for the default */
    cfg_server server;
    cfg_log log;
    cfg_retry retry;
    const char *store_url;      /* "sqlite://./genaiops.db" */
    cfg_provider *providers;
    size_t nproviders;
    cfg_model *models;
    size_t nmodels;
    cfg_deployment *deployments;
    size_t ndeployments;
    cfg_telemetry telemetry;
    cfg_prompts prompts;
    cfg_guardrails guardrails;
} config;

/* One problem found while loading: "FILE:LINE:COL: error: key.path: message".
 * path ("" for file-level problems) and message are owned by the diags. */
typedef struct config_diag {
    int line;                   /* 1-based, 0 when unknown */
    int column;
    const char *path;           /* key path such as "providers[1].base_url" */
    const char *message;
    bool warning;
} config_diag;

typedef struct config_diags {
    config_diag *items;         /* heap; freed by config_diags_free */
    size_t n, cap;
} config_diags;

/* Loads and validates a YAML file. On success *out is a new config (caller
 * frees with config_free) and 0 is returned; warnings may still be added to
 * diags. On failure returns ERR_CONFIG (or ERR_IO) with every error found
 * in diags and *out NULL. diags may be NULL. */
err_code config_load_file(const char *path, config **out, config_diags *diags);
/* Same from bytes in memory; name is used in messages. */
err_code config_load_string(const char *name, const char *yaml, size_t len, config **out, config_diags *diags);
/* The embedded default: 127.0.0.1:8080, sqlite://./genaiops.db, provider
 * "sim" of type simulator. */
config *config_default(void);
void config_free(config *c);
void config_diags_free(config_diags *d);
/* Writes diags as "name:line:col: error: path: message" lines to f (a FILE *). */
void config_diags_print(const config_diags *d, const char *name, void *f);

const cfg_provider *config_find_provider(const config *c, sv name);
const cfg_model *config_find_model(const config *c, sv name);
const cfg_deployment *config_find_deployment(const config *c, sv name);
const char *provider_type_name(provider_type t);

/* Parses a listen address: "HOST:PORT", "[V6]:PORT" or ":PORT" (all
 * interfaces, returned as an empty host), port 1..65535. The host (without
 * brackets) is copied NUL-terminated into host[hostcap]; host and port may be
 * NULL to only validate. Returns 0, ERR_INVAL for a malformed address, or
 * ERR_TOOBIG when the host does not fit in hostcap. Loopback and insecure
 * decisions are the server's. */
err_code config_parse_listen(const char *listen, char *host, size_t hostcap, int *port);

#endif
