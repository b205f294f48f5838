/*
 * simulator.h - the pure core of the simulator provider: a deterministic
 * stand-in for an OpenAI-compatible model, for demos, tests and load tests
 * without a real provider.
 *
 * sim_plan_make() turns one request into a PLAN: an HTTP status, a content
 * type, and a list of timed byte chunks (wait delay_ms, then send the
 * bytes), followed by how the response ends. It does no I/O and reads no
 * clock; whoever plays the plan (the in-process provider, or the standalone
 * `genaiops sim` server) sends each step after its delay and then ends as
 * told. The status and headers go out with the first step (a streamed
 * plan's head may go out at once). A plan with no steps sends no body:
 * SIM_END_HANG waits forever, SIM_END_BREAK closes the connection at once.
 *
 * The simulator never pretends to be a real model: responses carry
 * "system_fingerprint": "genaiops-simulator", models are owned by
 * "genaiops-simulator", and every error message says "(simulated)".
 * docs/simulator.md describes the modes and knobs for users.
 */
#ifndef GENAIOPS_SIMULATOR_H
#define GENAIOPS_SIMULATOR_H

#include <jansson.h>
#include "core/common.h"
#include "core/config.h"
#include "core/err.h"
#include "core/pool.h"

#define SIM_FINGERPRINT "genaiops-simulator"
#define SIM_MAX_N 16                /* n (chat), prompts x n (completions) */
#define SIM_MAX_ANSWER_TOKENS 4096  /* longer answers end with "length" */
#define SIM_MAX_TOTAL_TOKENS 16384  /* over all choices: n > 4 gets less each */
#define SIM_MAX_DELAY_MS 600000L    /* per-request knobs: latency_ms etc. */
#define SIM_DEFAULT_DIMENSIONS 256
#define SIM_MAX_DIMENSIONS 4096
#define SIM_MAX_INPUTS 2048         /* embeddings inputs per request */
#define SIM_MAX_FLOATS (1L << 20)   /* inputs x dimensions per request */

typedef enum sim_endpoint { SIM_CHAT, SIM_COMPLETIONS, SIM_EMBEDDINGS, SIM_MODELS } sim_endpoint;

/* Wait delay_ms, then send len bytes at data (owned by the plan's pool). */
typedef struct sim_step {
    long delay_ms;
    const char *data;
    size_t len;
} sim_step;

typedef enum sim_end {
    SIM_END_OK,     /* finish the response normally */
    SIM_END_BREAK,  /* close the connection abruptly */
    SIM_END_HANG,   /* never finish (the client's timeout ends it) */
} sim_end;

typedef struct sim_plan {
    int status;                 /* HTTP status */
    bool stream;                /* body is text/event-stream (else application/json) */
    const char *content_type;   /* static string */
    long retry_after_s;         /* >0: send Retry-After with this many seconds */
    sim_step *steps;            /* nsteps steps, from the pool */
    size_t nsteps;
    sim_end end;
    long prompt_tokens, completion_tokens; /* for usage accounting; what was (or will be) sent */
} sim_plan;

/* Builds the plan for one request.
 * opts: the provider's options (NULL = the defaults of config.h).
 * mode: the model name after "sim/" (e.g. "echo"), or NULL for
 *   opts->default_mode ("echo" when that is NULL too).
 * req: the parsed request body, borrowed (never modified or kept); NULL or a
 *   non-object gives a 400 plan. Ignored for SIM_MODELS.
 * seq: a per-process request counter; with the request content and
 *   opts->seed it fixes every byte of the output (ids and "created" too).
 * Everything in *out (steps and their bytes) is allocated from p and lives
 * as long as p. Bad requests give a 400 plan with an OpenAI-shaped error
 * body, an unknown mode a 404 model_not_found plan: those are not error
 * returns. Returns ERR_OK, or ERR_NOMEM (then *out is zeroed). */
err_code sim_plan_make(const sim_options *opts, sim_endpoint ep, const char *mode,
                       json_t *req, uint64_t seq, pool *p, sim_plan *out);

/* True when mode (the part after "sim/") is one the simulator knows. */
bool sim_mode_valid(const char *mode);

/* The i-th known mode ("echo", "lorem", ...), or NULL when i is past the end. */
const char *sim_mode_name(size_t i);

#endif
