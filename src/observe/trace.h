/*
 * trace.h - one gateway request as a trace: the record the data plane fills
 * (cheaply: fixed fields, no JSON, one allocation) and hands off, and that
 * the background writer stores and the OTLP exporter sends.
 *
 * Attribute names follow the OpenTelemetry GenAI semantic conventions
 * (gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model,
 * gen_ai.usage.input_tokens ...); the mapping from fields to attribute
 * names lives in one table in attrs.c (trace_attrs_json), used by the
 * store's JSON and the OTLP encoder alike.
 *
 * Ownership: a trace_rec is one heap block (trace_new); strings are inline
 * arrays or point into the block's tail (content). Whoever holds the
 * pointer frees it with trace_free; trace_submit passes it on.
 */
#ifndef GENAIOPS_TRACE_H
#define GENAIOPS_TRACE_H

#include "core/common.h"

#define TRACE_MAX_SPANS 16

typedef enum span_kind {
    SPAN_REQUEST,      /* the whole gateway request (the root) */
    SPAN_ATTEMPT,      /* one upstream attempt (retries and fallbacks each get one) */
    SPAN_GUARDRAIL,    /* a guardrail check */
    SPAN_PROMPT,       /* prompt rendering */
} span_kind;

typedef struct span_rec {
    uint8_t span_id[8];
    uint8_t parent_id[8];        /* zero for the root */
    span_kind kind;
    uint64_t start_ns;           /* unix epoch nanoseconds */
    uint64_t end_ns;
    int http_status;             /* upstream status, 0 if none */
    union {
        struct {                 /* SPAN_ATTEMPT */
            char provider[64];           /* provider name */
            char model[128];             /* upstream model asked for */
            char server_address[128];    /* upstream host */
            int server_port;
        };
        struct {                 /* SPAN_GUARDRAIL: one (policy, detector, stage) check */
            char guard_policy[64];
            char guard_detector[12];     /* pii, secrets, ... */
            char guard_stage[8];         /* input, output, tool */
            char guard_verdict[8];       /* pass, flag, redact, block, error */
            char guard_mode[8];          /* enforce, monitor */
            char guard_findings[200];    /* "EMAIL messages[1] 10-30,API_KEY ..." (types and places, never text) */
            uint8_t guard_types[8];      /* finding types + 1 (0 = unused), for the metrics */
            uint16_t guard_counts[8];
            uint64_t guard_key;          /* the five labels as one number (guard_check_key), 0 = unknown */
        };
    };
    char error_type[48];         /* "" when it succeeded; else e.g. "timeout", "429", "connection_refused" */
} span_rec;

typedef struct trace_rec {
    uint8_t trace_id[16];
    char request_id[72];
    uint64_t start_ns;           /* unix epoch nanoseconds */
    uint64_t end_ns;
    char operation[24];          /* gen_ai.operation.name: "chat", "text_completion", "embeddings" */
    char endpoint[32];           /* "/v1/chat/completions" ... */
    char provider[64];           /* gen_ai.provider.name of the provider that answered (or last tried) */
    char provider_type[16];      /* openai, azure, anthropic, simulator */
    char request_model[128];     /* gen_ai.request.model: as the client sent it */
    char response_model[128];    /* gen_ai.response.model */
    char response_id[96];        /* gen_ai.response.id */
    char finish_reasons[64];     /* comma-separated gen_ai.response.finish_reasons */
    char deployment[64];         /* genaiops.deployment, "" if none */
    char api_key[64];            /* genaiops.key: a key's name or id, never the secret */
    char prompt_name[128];       /* gen_ai.prompt.name: the prompt the gateway rendered */
    int prompt_version;
    int status;                  /* HTTP status returned to the client */
    char error_type[48];         /* error.type, "" on success */
    bool stream;                 /* gen_ai.request.stream */
    /* request parameters; has_* says whether the client sent them */
    bool has_temperature, has_top_p, has_max_tokens, has_seed, has_frequency_penalty, has_presence_penalty;
    double temperature, top_p, frequency_penalty, presence_penalty;
    long long max_tokens, seed;
    /* usage; -1 when unknown */
    long long input_tokens;      /* gen_ai.usage.input_tokens (all of it, cached included) */
    long long output_tokens;     /* gen_ai.usage.output_tokens (reasoning included) */
    long long cache_read_tokens; /* gen_ai.usage.cache_read.input_tokens */
    long long cache_creation_tokens; /* gen_ai.usage.cache_creation.input_tokens */
    long long reasoning_tokens;  /* gen_ai.usage.reasoning.output_tokens */
    double cost_usd;             /* genaiops.cost_usd; valid when cost_known */
    bool cost_known;
    uint64_t ttft_ns;            /* time to first chunk (streams), 0 if none */
    uint64_t overhead_ns;        /* the gateway's own time */
    int attempts;
    /* captured content (per telemetry config): JSON texts, NULL when not captured */
    const char *input_messages;  /* gen_ai.input.messages */
    const char *output_messages; /* gen_ai.output.messages */
    bool content_redacted;
    bool content_truncated;
    bool no_extra;               /* private: made without content room (trace_free may keep it) */
    int nspans;
    span_rec spans[TRACE_MAX_SPANS];
} trace_rec;

/* A zeroed record with room for extra bytes of content after it (content
 * pointers may point there); NULL on out of memory. usage fields start at
 * -1, a random trace id is set. */
trace_rec *trace_new(size_t extra);
/* Frees a record. Each thread keeps the last one it freed without content
 * room for its next trace_new: a busy gateway drops most records on the
 * thread that made them, and a 7.8 KB malloc and free per request showed in
 * its profile. (The kept one is freed when the thread exits.) */
void trace_free(trace_rec *t);
/* Adds a span (a random span id, parent = the root's or none for the first);
 * NULL when TRACE_MAX_SPANS are used. */
span_rec *trace_add_span(trace_rec *t, span_kind kind, uint64_t start_ns);
/* A guardrail span (SPAN_GUARDRAIL), its five labels copied whole from
 * NUL-padded names at least as wide as their fields (policy 64, detector 12,
 * stage, verdict and mode 8), no strlen; findings, counts, key and error
 * type start empty. NULL when the trace is full. */
span_rec *trace_add_guard_span(trace_rec *t, uint64_t start_ns, const char *policy, const char *detector,
                               const char *stage, const char *verdict, const char *mode);
/* Hex forms: 32 and 16 characters plus NUL. */
void trace_id_hex(const uint8_t id[16], char out[33]);
void span_id_hex(const uint8_t id[8], char out[17]);
uint64_t trace_now_ns(void);   /* CLOCK_REALTIME in ns */
/* The unix time (ns) of a CLOCK_MONOTONIC reading, through a per-thread
 * offset refreshed every second. */
uint64_t trace_unix_of_mono(uint64_t mono_ns);

#endif
