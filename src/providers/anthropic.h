/*
 * anthropic.h - translation between OpenAI's Chat Completions format and
 * Anthropic's Messages format: requests, responses, errors, and streams.
 *
 * The gateway speaks Chat Completions to clients on /v1/chat/completions and
 * Messages on /v1/messages; an upstream provider speaks one of the two. These
 * are pure functions over jansson values: no I/O, no globals, no logging.
 * docs/internals/anthropic.md has the field-by-field mapping tables.
 *
 * Ownership: every function borrows its json_t arguments (never steals or
 * modifies them) and returns a new reference the caller must json_decref.
 */
#ifndef GENAIOPS_ANTHROPIC_H
#define GENAIOPS_ANTHROPIC_H

#include <jansson.h>
#include "core/buf.h"
#include "core/common.h"
#include "core/err.h"

/* Why a request could not be translated. status is the HTTP status to answer
 * with (400), param the offending top-level parameter (a static string, or
 * NULL), message a human-readable explanation. */
typedef struct xlate_err {
    int status;
    const char *param;
    char message[256];
} xlate_err;

/* OpenAI chat request -> Anthropic Messages request with "model" set to
 * upstream_model (the request's own model when NULL). Returns a new
 * reference, or NULL with e filled (status 400) for what cannot be expressed:
 * n > 1, a response_format other than text, malformed messages, tool call
 * arguments that are not a JSON object, unsupported content parts. */
json_t *anthropic_from_chat_request(json_t *chat, const char *upstream_model, xlate_err *e);

/* Anthropic Messages request -> OpenAI chat request. NULL with e filled
 * (status 400) when the request is malformed or uses what Chat Completions
 * cannot express (server tools, documents, images inside tool results). */
json_t *anthropic_to_chat_request(json_t *messages_req, xlate_err *e);

/* Anthropic message response -> chat.completion reporting `model` (the
 * response's own model when NULL). NULL if message is not a message object. */
json_t *anthropic_to_chat_response(json_t *message, const char *model);

/* chat.completion -> Anthropic message reporting `model` (the completion's
 * own when NULL); only choices[0] is used. NULL if completion has no choices. */
json_t *anthropic_from_chat_response(json_t *completion, const char *model);

/* Errors both ways: OpenAI's {"error":{"message","type","param","code"}} <->
 * Anthropic's {"type":"error","error":{"type","message"}}. body (len bytes)
 * is the upstream error body; it may be NULL, not JSON, or either shape -
 * raw text becomes the message (truncated, invalid UTF-8 replaced). A type
 * found in the body is mapped; otherwise status picks it. Never NULL except
 * on out of memory. */
json_t *anthropic_error_to_openai(int status, const char *body, size_t len);
json_t *anthropic_error_from_openai(int status, const char *body, size_t len);

/* Stream translation: one upstream SSE event in, client SSE bytes out. */
typedef enum xlate_dir { XLATE_ANTHROPIC_TO_OPENAI, XLATE_OPENAI_TO_ANTHROPIC } xlate_dir;
typedef struct xlate_stream xlate_stream;

/* model: what to report to the client; include_usage: the client's
 * stream_options.include_usage (only used towards OpenAI clients).
 * NULL on out of memory. */
xlate_stream *xlate_stream_new(xlate_dir dir, const char *model, bool include_usage);

/* Feeds one upstream SSE event (event name may be empty for OpenAI; data is
 * its JSON or "[DONE]") and appends the client-side SSE bytes to out.
 * Returns ERR_OK; ERR_UPSTREAM when the upstream reported an error or sent
 * something unusable - an error event has then been written to out and the
 * stream is over (later events are ignored); ERR_TOOBIG/ERR_NOMEM from out,
 * in which case out is left as it was. */
err_code xlate_stream_event(xlate_stream *s, sv event, sv data, buf *out);

/* The upstream ended: appends what is still owed. ERR_OK after a complete
 * stream. If the upstream ended without its final event (no message_stop /
 * [DONE]) an error event is appended instead of a silent end and the result
 * is ERR_UPSTREAM; also ERR_UPSTREAM (appending nothing) if the stream had
 * already failed. */
err_code xlate_stream_finish(xlate_stream *s, buf *out);

/* True once the stream is over: its final event, or an error, was seen. */
bool xlate_stream_done(const xlate_stream *s);

/* Usage seen so far: input counts every prompt token (Anthropic's
 * input + cache read + cache creation), output the generated tokens.
 * Either pointer may be NULL. */
void xlate_stream_usage(const xlate_stream *s, long *input_tokens, long *output_tokens);

void xlate_stream_free(xlate_stream *s); /* NULL ok */

#endif
