/*
 * guard.h - the guardrail engine: named policies compiled once from the
 * configuration (cfg_guardrails), selected per request, run over the texts
 * of a stage, and turned into a decision: block, redact or flag, in
 * enforce or monitor mode.
 *
 * The engine never does I/O. The gateway (src/gateway/) extracts the texts
 * (request messages, the answer, tool-call arguments), calls the scans,
 * rewrites bodies and streams with the redactions, and performs the two
 * remote checks (the harm classifier and the webhook) with the requests
 * the engine builds, feeding their answers back.
 *
 * Threads: a guard_engine is read-only after guard_engine_new and shared
 * by every worker; a guard_req (one request's state) and its streams
 * belong to one thread.
 *
 * Stages and texts:
 *   input   every message's text (role given): PII, secrets, deny lists,
 *           size (totals of the stage), webhook, harm; injection skips
 *           system and developer messages (the application's own); topics
 *           look only at the part flagged GUARD_PART_LAST_USER.
 *   output  the answer's text: everything but injection and topics;
 *           leakage compares with the system prompt (guard_req_set_system),
 *           schema with the request's response_format.
 *   tool    the arguments of each tool call the model asks to run: like
 *           output, plus injection.
 *
 * Actions: a hit of an enforce-mode policy with action block makes the
 * stage's verdict GA_BLOCK; redact hits are replaced by typed placeholders
 * (<EMAIL_1>), the same original getting the same placeholder everywhere in
 * the request; flag hits are only recorded. Monitor-mode hits are recorded
 * with enforced = false and change nothing. Only pii, secrets, deny and
 * leakage findings are spans of sensitive text that can be redacted; a
 * policy with action redact and another detector is refused at load.
 */
#ifndef GENAIOPS_GUARD_GUARD_H
#define GENAIOPS_GUARD_GUARD_H

#include <jansson.h>
#include "core/buf.h"
#include "core/config.h"
#include "guard/detect.h"

typedef enum guard_stage { GS_INPUT = 0, GS_OUTPUT, GS_TOOL, GS__COUNT } guard_stage;

typedef enum guard_action { GA_NONE = 0, GA_FLAG, GA_REDACT, GA_BLOCK } guard_action;

#define GUARD_DETECTORS(X)                                                                        \
    X(PII, "pii") X(SECRETS, "secrets") X(INJECTION, "injection") X(LEAKAGE, "leakage")           \
    X(DENY, "deny") X(TOPICS, "topics") X(SIZE, "size") X(SCHEMA, "schema") X(HARM, "harm")        \
    X(WEBHOOK, "webhook")

typedef enum guard_detector {
#define GUARD_DET_ENUM_(e, s) GD_##e,
    GUARD_DETECTORS(GUARD_DET_ENUM_)
#undef GUARD_DET_ENUM_
    GD__COUNT
} guard_detector;

typedef enum guard_role { GR_SYSTEM = 0, GR_USER, GR_ASSISTANT, GR_TOOL, GR_OTHER } guard_role;

/* Names, NUL-padded to their widths below, so that a fixed-size copy of a
 * whole field (a trace's guardrail span) needs no strlen. */
#define GUARD_STAGE_NAME_WIDTH 8
#define GUARD_ACTION_NAME_WIDTH 8
#define GUARD_DETECTOR_NAME_WIDTH 12
#define GUARD_POLICY_LABEL_WIDTH 64
const char *guard_stage_name(guard_stage s);       /* "input", "output", "tool" */
const char *guard_action_name(guard_action a);     /* "pass", "flag", "redact", "block" */
const char *guard_detector_name(guard_detector d); /* "pii" ... */
bool guard_detector_parse(const char *name, guard_detector *out);

#define GUARD_MAX_POLICIES 64
typedef uint64_t guard_set; /* bit i: policy i */

typedef struct guard_engine guard_engine;

/* What a compiled policy is, for the gateway, the CLI and the API. */
typedef struct guard_policy_info {
    const char *name;
    unsigned stages;            /* bit (1 << guard_stage) */
    uint32_t detectors;         /* bit (1 << guard_detector) */
    guard_action action;        /* GA_FLAG, GA_REDACT or GA_BLOCK */
    bool monitor;               /* mode: monitor (record only) */
    bool restore;               /* redact: originals go back into the answer */
    size_t stream_holdback;     /* bytes */
    const char *harm_model;     /* classifier model reference, or NULL */
    long harm_timeout_ms;
    const char *webhook_url;    /* or NULL */
    const cfg_header *webhook_headers;
    size_t nwebhook_headers;
    long webhook_timeout_ms;
    bool fail_open;             /* a failed remote check passes (true) or blocks (false) */
} guard_policy_info;

/* Compiles every policy (word lists, regexes with their match limits,
 * topics, the injection threshold...). ERR_OK with *out set (an engine with
 * no policies when cfg has none); otherwise ERR_CONFIG (or ERR_NOMEM) and
 * msg says which policy and why: "guardrails policy 'no-secrets':
 * deny.regex[1]: missing closing parenthesis at offset 4". cfg must
 * outlive the engine (names are borrowed). */
err_code guard_engine_new(const cfg_guardrails *cfg, guard_engine **out, char *msg, size_t cap);
void guard_engine_free(guard_engine *g); /* NULL ok */

size_t guard_policy_count(const guard_engine *g);
const guard_policy_info *guard_policy_at(const guard_engine *g, size_t i); /* NULL past the end */
/* Policy i's name cut to GUARD_POLICY_LABEL_WIDTH - 1 bytes and NUL-padded
 * to GUARD_POLICY_LABEL_WIDTH (a trace span's field); all NULs past the end. */
const char *guard_policy_label(const guard_engine *g, size_t i);
int guard_policy_find(const guard_engine *g, const char *name);             /* index or -1 */

/* The policies that apply to a request at stage st: global ones (no
 * models, deployments or keys listed) and those whose lists name the
 * request's model (as the client sent it), deployment or key name. Any
 * argument may be NULL or "". */
guard_set guard_select(const guard_engine *g, guard_stage st, const char *model, const char *deployment,
                       const char *key);

/* ------------------------------------------------------------------ */
/* One request */

typedef struct guard_hit {
    guard_finding f;            /* type, span in the part's text, score, rule */
    uint16_t policy;
    uint8_t detector;           /* guard_detector */
    uint8_t stage;              /* guard_stage */
    uint16_t part;              /* the caller's id of the text (unique per stage) */
    int32_t where;              /* for messages: the message index; -1 = the answer / whole stage */
    guard_action action;        /* the policy's action */
    bool enforced;              /* false in monitor mode */
    uint16_t placeholder;       /* redact: n of <TYPE_n> (0 until redacted) */
} guard_hit;

/* One (policy, detector, stage) check, summed over the parts it ran on:
 * a span on the trace and a count in the metrics. */
typedef struct guard_check {
    uint16_t policy;
    uint8_t detector;
    uint8_t stage;
    uint64_t start_ns;          /* monotonic time of its first run */
    uint64_t ns;                /* total time spent */
    uint32_t nhits;
    guard_action verdict;       /* the strongest action among its hits, GA_NONE when it passed */
    bool enforced;              /* the policy's mode */
    bool error;                 /* a limit was hit (regex budget) or a remote check failed */
} guard_check;

/* A number for the labels of check c's span (policy, detector, stage,
 * verdict, mode), the same for the same labels of the same engine and
 * different for any other engine or labels: the metrics' memo key. 0 for
 * no check. */
uint64_t guard_check_key(const guard_engine *g, const guard_check *c);

typedef struct guard_req guard_req;

/* A request's state; set is the policies per stage (guard_select). NULL
 * on out of memory. */
guard_req *guard_req_new(const guard_engine *g, const guard_set set[GS__COUNT]);
void guard_req_free(guard_req *q); /* NULL ok */
/* A thread keeps its finished requests (up to 64, with their buffers)
 * for the next ones, and the findings of the last system prompts it
 * scanned (guard.c); this frees them (call before a thread that made
 * requests ends). */
void guard_req_cache_release(void);
/* This thread's system-prompt memo so far: PII and secrets scans answered
 * from it, and scans it ran and kept (for tests and benchmarks). */
void guard_memo_counts(uint64_t *hits, uint64_t *scans);
guard_set guard_req_set(const guard_req *q, guard_stage st);
/* Whether a policy selected for the stage runs detector d. */
bool guard_req_uses(const guard_req *q, guard_stage st, guard_detector d);

/* The system prompt, for leakage on output and tool stages (copied). */
err_code guard_req_set_system(guard_req *q, const char *text, size_t len);
/* The request's response_format (may be NULL), for schema on output:
 * ERR_OK (also when it asks for no schema), or ERR_INVAL with msg when its
 * schema does not compile (the gateway answers 400). */
err_code guard_req_set_response_format(guard_req *q, const json_t *rf, char *msg, size_t cap);

#define GUARD_PART_LAST_USER 0x1u /* the last user message: topics look here */
#define GUARD_PART_CHAIN 0x2u     /* scanned right after the previous part: the clock read that
                                   * ended its checks starts this one's (one read fewer) */

/* Runs every local detector of the stage's policies over one text. Hits go
 * to the request's list, checks are timed. ERR_OK or ERR_NOMEM. */
err_code guard_scan_part(guard_req *q, guard_stage st, guard_role role, unsigned flags, uint16_t part, int32_t where,
                         const char *text, size_t len);
/* Ends a stage: the checks over the whole stage (size totals, schema of
 * the answer, which the caller passes whole with guard_scan_part first). */
err_code guard_stage_end(guard_req *q, guard_stage st);

/* The stage's verdict among enforced hits: GA_BLOCK, GA_REDACT, GA_FLAG or
 * GA_NONE. Monitor-mode hits never change it. */
guard_action guard_verdict(const guard_req *q, guard_stage st);
/* Whether the stage has any hit at all (monitor included). */
bool guard_any_hit(const guard_req *q, guard_stage st);

size_t guard_req_hits(const guard_req *q, const guard_hit **v);
size_t guard_req_checks(const guard_req *q, const guard_check **v);

/* The message of a block at stage st: the policy and what was found, by
 * type and position, never the text itself:
 * "blocked by guardrail policy 'no-pii' (input): EMAIL in messages[1] at
 * 10-30, API_KEY in messages[1] at 41-92". */
void guard_block_message(const guard_req *q, guard_stage st, char *out, size_t cap);
/* The name of the policy that blocked stage st, or NULL. */
const char *guard_block_policy(const guard_req *q, guard_stage st);

/* Writes the text of (st, part) with every enforced redact hit replaced
 * by its placeholder into out (appended); *n (may be NULL) = how many.
 * Overlapping hits merge into the first one's placeholder. */
err_code guard_redact(guard_req *q, guard_stage st, uint16_t part, const char *text, size_t len, buf *out,
                      size_t *n);
/* Whether some policy wants the originals of the input's placeholders put
 * back into the answer, and the putting back (appended to out). */
bool guard_restore_wanted(const guard_req *q);
err_code guard_restore(const guard_req *q, const char *text, size_t len, buf *out, size_t *n);

/* ------------------------------------------------------------------ */
/* Streams: an answer arriving in pieces, scanned incrementally at stage
 * st (output or tool). The text that is released is redacted (and
 * restored); the last stream_holdback bytes (the largest of the stage's
 * policies), and any started match or placeholder, are held back until
 * more arrives, so that a match split across chunks is caught whole. */
typedef struct guard_stream guard_stream;

guard_stream *guard_stream_new(guard_req *q, guard_stage st, uint16_t part);
/* Appends the text that may go out now to out. After an enforced block hit
 * the stream releases nothing more: check guard_stream_blocked. */
err_code guard_stream_feed(guard_stream *s, const char *delta, size_t n, buf *out);
/* End of the answer: scans and releases the rest, then the stage is ended. */
err_code guard_stream_finish(guard_stream *s, buf *out);
bool guard_stream_blocked(const guard_stream *s);
void guard_stream_free(guard_stream *s); /* NULL ok */

/* A JSON string of text, each byte that is not part of valid UTF-8
 * replaced by U+FFFD (a scanned text may hold any bytes; JSON may not).
 * NULL when out of memory. */
json_t *guard_json_text(const char *text, size_t len);

/* ------------------------------------------------------------------ */
/* Remote checks. The caller sends the request the engine builds and feeds
 * the answer (or the failure) back; either one records the check. */

/* The chat request body for the harm classifier of policy p over text:
 * {"model": MODEL, "messages": [{"role": "user", "content": text}],
 * "temperature": 0}, the answer expected in Llama Guard's format. */
json_t *guard_harm_request(const guard_req *q, int p, const char *model, const char *text, size_t len);
/* The classifier's answer text; a parse failure counts as a failed check. */
err_code guard_harm_answer(guard_req *q, int p, guard_stage st, uint16_t part, int32_t where, size_t text_len,
                           const char *answer, size_t len, uint64_t start_ns, uint64_t ns);
/* The webhook request body: {"policy", "stage", "texts": [...]} (texts of
 * the stage in order). */
json_t *guard_webhook_request(const guard_req *q, int p, guard_stage st, const char *const *texts,
                              const size_t *lens, size_t n);
/* The webhook's answer: HTTP status and body {"verdict": "pass" | "flag" |
 * "block", "reason": "..."}; anything else counts as a failed check. */
err_code guard_webhook_answer(guard_req *q, int p, guard_stage st, int status, const char *body, size_t len,
                              uint64_t start_ns, uint64_t ns);
/* A remote check that could not be done (timeout, connection): fail open
 * records an error check; fail closed also adds a hit (rule
 * "unavailable") that the policy acts on. */
err_code guard_remote_failed(guard_req *q, int p, guard_detector d, guard_stage st, uint64_t start_ns, uint64_t ns);

#endif
