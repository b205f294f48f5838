/*
 * grader.h - model-graded assertions and external command evaluators.
 *
 * A model-graded check (similar, llm-rubric, g-eval, factuality,
 * model-graded-closedqa, answer-relevance, context-faithfulness,
 * context-recall, context-relevance) is a small state machine that never
 * touches the network itself: it ASKS the runner for the next model call
 * (a chat completion for the judge, or embeddings), the runner makes it on
 * its loop and hands the reply back, and so on until the check has its
 * result. Driving one:
 *
 *     ev_grader *g; ev_call call; ev_result r;
 *     ev_grader_new(a, &out, &g);
 *     while (ev_grader_next(g, &call, &r))
 *         ...make call, then ev_grader_reply_chat(g, ...) or _embed(g, ...)
 *     ...use r, ev_result_clear(&r); ev_grader_free(g);
 *
 * Judge replies are parsed strictly (a JSON object with the keys and types
 * each type asks for, possibly inside a ```json fence); a reply that does
 * not parse gets ONE repair call, then the check is an EV_ERROR. A failed
 * call is an EV_ERROR too, never an EV_FAIL, and no score is ever NaN.
 * docs/internals/graders.md has every type's prompt intent and formula.
 */
#ifndef GENAIOPS_GRADER_H
#define GENAIOPS_GRADER_H

#include "eval/eval.h"

typedef enum ev_call_kind { EV_CALL_CHAT, EV_CALL_EMBED } ev_call_kind;

typedef struct ev_call {
    ev_call_kind kind;
    const char *provider;   /* the assertion's provider override or NULL (the suite's grader) */
    const json_t *messages; /* CHAT: OpenAI chat messages array, owned by the grader, valid until the reply */
    bool json_output;       /* CHAT: ask for a JSON object (response_format) */
    const char *const *texts; size_t ntexts; /* EMBED: texts to embed, owned by the grader */
} ev_call;

typedef struct ev_grader ev_grader;

/* True when type (without "not-") is one of the model-graded types this
 * module runs ("similar", "similar:cosine|dot|euclidean", "llm-rubric",
 * "g-eval", "factuality", "model-graded-closedqa", "answer-relevance",
 * "context-faithfulness", "context-recall", "context-relevance"). */
bool ev_grader_handles(const char *type);

/* Starts a graded check of a on o (a is borrowed and outlives g; o's strings are copied as needed).
 * Returns ERR_INVAL when a is not a graded type, ERR_NOMEM. A check that
 * cannot start (a missing variable, a bad value or config) still returns
 * ERR_OK: its first ev_grader_next() gives the EV_ERROR naming the problem. */
err_code ev_grader_new(const ev_assert *a, const ev_output *o, ev_grader **out);

/* Returns true and fills *call when the check needs a model call next; false when it is finished
 * and *r holds the result (negation applied). Calling it again before the
 * reply returns the same call. Once finished, every call fills *r afresh
 * (the reason is a new malloc'd copy the caller owns). */
bool ev_grader_next(ev_grader *g, ev_call *call, ev_result *r);

/* The reply to the last call. CHAT: e == ERR_OK and text = the assistant content. EMBED: vecs[i]
 * for each text, all of dimension dim. On failure e != ERR_OK and msg says why; the result is then
 * EV_ERROR (never EV_FAIL, never NaN), with the message. The grader copies
 * what it keeps; text, vecs and msg may be freed when these return. */
void ev_grader_reply_chat(ev_grader *g, err_code e, const char *text, const char *msg);
void ev_grader_reply_embed(ev_grader *g, err_code e, const double *const *vecs, size_t dim, const char *msg);

/* Frees g and everything it owns (a pending call's messages and texts). NULL ok. */
void ev_grader_free(ev_grader *g);

/* Custom evaluator `command` (value: a shell command line; config.timeout_ms default 30000): runs
 * /bin/sh -c VALUE with a JSON object on stdin {output, prompt, vars, assertion:{value,threshold,config}}
 * and reads stdout: a JSON object {pass?: bool, score: number, reason?: string} (or a bare number =
 * score; pass = score >= threshold (default 0.5) when pass is absent). Non-zero exit, timeout, bad
 * JSON -> EV_ERROR with stderr's last line. BLOCKING: the runner calls it on a worker thread.
 * Thread-safe (no shared state; the child is started with posix_spawn in
 * its own process group, which is killed whole on timeout). *r is
 * overwritten; its reason is malloc'd for the caller. */
void ev_command_check(const ev_assert *a, const ev_output *o, ev_result *r);

#endif
