/*
 * prompts.h - the REST API of the prompt registry (docs/api.md, "Prompts")
 * and its Langfuse-compatible read path, plus the two helpers the CLI
 * shares with it (rendering with partials, the protected-label check).
 *
 * Routes (the gateway sends every path under these prefixes here):
 *   /api/v1/prompts[...]          api_prompts
 *     GET  /api/v1/prompts[?prefix=]                list
 *     POST /api/v1/prompts                          save one version
 *     POST /api/v1/prompts/push                     save many, all or nothing
 *     GET  /api/v1/prompts/{name}[?label=|version=] one version (latest by default)
 *     GET  /api/v1/prompts/{name}/versions          every version, newest first
 *     POST /api/v1/prompts/{name}/labels            {"label", "version"}: move a label
 *     POST /api/v1/prompts/{name}/rollback          {"label"}: move it back
 *     GET  /api/v1/prompts/{name}/history[?label=]  the label moves
 *     GET  /api/v1/prompts/{name}/diff?from=&to=    unified diff of two versions
 *     POST /api/v1/prompts/{name}/render            {"label"|"version", "variables"}
 *   /api/public/v2/prompts[...]   api_langfuse_prompts
 *     GET  /api/public/v2/prompts/{name}?label=&version=   Langfuse's Prompt object
 *     GET  /api/public/v2/prompts[?name=&label=&page=&limit=]  Langfuse's prompt list
 *
 * {name} may contain '/' (support/answer) and may be percent-encoded
 * (support%2Fanswer). Handlers check on the event loop what needs no store
 * (method, path, body), then run the registry calls on the worker loop's
 * thread pool and answer in the after-work callback, as api/traces.c does.
 * Errors: OpenAI's shape on /api/v1 (a missing-variables error also lists
 * the names in error.missing); Langfuse's {"message", "error"} on its path.
 *
 * store_url and protected_labels must outlive the call (the config's do).
 */
#ifndef GENAIOPS_API_PROMPTS_H
#define GENAIOPS_API_PROMPTS_H

#include <jansson.h>
#include "core/common.h"
#include "http/server.h"
#include "prompt/registry.h"

#define API_PROMPT_RENDER_MAX (8u << 20)   /* bytes of one rendered prompt at most */

/* The /api/v1/prompts tree. admin: the caller presented the admin key
 * (label moves are then recorded as "admin", else "anonymous"). Labels in
 * protected_labels move (by a label move, a rollback or a save's labels)
 * only when admin; pass nprotected = 0 when no admin key is configured
 * (single-user mode: every label moves freely). */
void api_prompts(http_req *r, const char *store_url, bool admin, const char *const *protected_labels,
                 size_t nprotected);

/* The Langfuse-compatible read path /api/public/v2/prompts[/{name}]. The
 * gateway decides who may call it (Langfuse SDKs send Basic auth). */
void api_langfuse_prompts(http_req *r, const char *store_url);

/* Renders the version ref names with vars (a JSON object or NULL). Partials
 * ({{> other/prompt}}) are other text prompts: when ref names a label, a
 * partial is taken at that label if it has it, else at its latest version;
 * otherwise at its latest version. *out = {"name", "version", "type",
 * "text" | "messages", "config"}. Errors: the registry's 404s, 400
 * "missing_variables" (then *missing, when not NULL, gets the sorted array
 * of names), 400 "template_error" (line and column; for chat, which
 * message; for a partial, which one), 400 "render_too_large". Blocks on the
 * store; caller owns *out and *missing. */
err_code api_prompt_render(const char *url, const prompt_ref *ref, const json_t *vars, json_t **out,
                           json_t **missing, query_error *e);

/* Whether label is in the protected list. */
bool api_prompt_label_protected(const char *label, const char *const *protected_labels, size_t nprotected);

#endif
