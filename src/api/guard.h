/*
 * guard.h - guardrail policies on the control plane: one policy run over
 * one text "as the gateway would" (shared by `genaiops guard test` and
 * POST /api/v1/guard/test, so the two cannot drift), the policy list
 * (`genaiops guard list`, GET /api/v1/guard/policies), and the REST
 * handler for both routes (docs/api.md, "Guardrails").
 *
 * The JSON of a test (docs/guardrails.md):
 *   {"policy", "stage", "mode", "action", "verdict",
 *    "findings": [{"type", "detector", "rule", "start", "end", "score"}],
 *    "redacted"?, "errors"?}
 * verdict is the policy's action on what it found ("pass" when it found
 * nothing), in either mode; mode says whether the gateway applies it
 * (enforce) or only records it (monitor). Findings are sorted by start;
 * start and end are byte offsets into the text. redacted is the text with
 * the placeholders, present when the gateway would rewrite it (verdict
 * redact in enforce mode), with bytes that are not UTF-8 as U+FFFD. errors
 * lists checks that could not be completed (a harm classifier or webhook
 * call, a regex over its limit); they count as the policy's on_error says.
 *
 * Ownership: the config and the engine are borrowed and must outlive the
 * calls (the server's live until exit); returned json_t are new references.
 */
#ifndef GENAIOPS_API_GUARD_H
#define GENAIOPS_API_GUARD_H

#include <jansson.h>
#include "core/config.h"
#include "guard/guard.h"
#include "http/server.h"

#define API_GUARD_TEXT_MAX ((size_t)1 << 20)     /* bytes of text in one REST test */
#define API_GUARD_ANSWER_MAX ((size_t)1 << 20)   /* bytes of a classifier or webhook answer */

/* Parses "input", "output", "tool". */
bool api_guard_stage_parse(const char *name, guard_stage *out);

/* The stage a test runs at when none is given: the policy's first of
 * input, output, tool. */
guard_stage api_guard_default_stage(const guard_policy_info *pi);

/* The result JSON of policy `policy` at stage st over text, after q has
 * scanned it (part 0) and ended the stage. Redacting assigns placeholders
 * in q, hence not const. NULL on out of memory. */
json_t *api_guard_result(const guard_engine *g, int policy, guard_stage st, guard_req *q, const char *text,
                         size_t len);

/* Runs policy `policy` alone over text at stage st: the local detectors
 * (text as the last user message for input, the answer otherwise), the
 * system prompt (may be NULL) for leakage, then the remote checks - the
 * harm classifier through cfg's providers and the webhook - with the
 * policy's timeouts, and ends the stage. Blocks for the remote calls (at
 * most their timeouts). ERR_OK with *out = the result JSON (caller
 * decrefs); ERR_INVAL (a bad policy index or a stage the policy does not
 * run at) or ERR_NOMEM with msg. */
err_code api_guard_run(const config *cfg, const guard_engine *g, int policy, guard_stage st, const char *text,
                       size_t len, const char *system, size_t system_len, json_t **out, char *msg, size_t cap);

/* {"data": [{"name", "stages", "detectors", "action", "mode", "restore",
 * "stream_holdback", "models", "deployments", "keys", "on_error"}, ...]}
 * in configuration order. g may be NULL (no policies). */
json_t *api_guard_policies(const config *cfg, const guard_engine *g);

/* The routes under /api/v1/guard/ (the caller has checked the admin key):
 *   POST /api/v1/guard/test       {"policy", "text", "stage"?, "system"?}
 *   GET  /api/v1/guard/policies
 * Errors in OpenAI's shape: 400 for a bad body (param names the field),
 * 404 policy_not_found (the message lists the configured names), 405, 413
 * for a text over API_GUARD_TEXT_MAX. The test runs on the worker loop's
 * thread pool. g may be NULL (no policies configured). */
void api_guard(http_req *r, const config *cfg, const guard_engine *g);

#endif
