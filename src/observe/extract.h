/*
 * extract.h - reads what a trace needs from a response without building a
 * tree: usage (tokens, cached, reasoning), the response id and model, and
 * finish reasons, from OpenAI chat/completions/embeddings bodies and stream
 * chunks, and from Anthropic Messages bodies and stream events. It uses
 * jscan, so a response costs a validating scan, not a jansson parse.
 *
 * Token counts follow the trace's conventions: input_tokens counts all the
 * input, cached and cache-writing included (Anthropic's input_tokens does
 * not, so its cache fields are added); output_tokens includes reasoning.
 * Anything absent leaves the trace's field as it was.
 */
#ifndef GENAIOPS_EXTRACT_H
#define GENAIOPS_EXTRACT_H

#include "core/jscan.h"
#include "observe/trace.h"

void extract_openai_response(trace_rec *t, const char *body, size_t len);

/* The texts of an OpenAI answer, found by the same walk for the answer's
 * guardrails (one walk of the body instead of two): each choice's
 * message.content and message.tool_calls[].function.arguments, or its text
 * (completions), every occurrence of a repeated key, keys compared
 * unescaped. complete: the body was well-formed to its end and every text
 * fit in v; otherwise the caller walks the body itself. */
#define EXTRACT_MAX_TEXTS 16
typedef struct extract_texts {
    bool completions;            /* in: choices[].text, not .message */
    bool complete;               /* out */
    size_t n;
    jval v[EXTRACT_MAX_TEXTS];   /* J_STRING spans in the body */
    bool args[EXTRACT_MAX_TEXTS];/* a tool call's arguments (else a text) */
} extract_texts;
void extract_openai_response_texts(trace_rec *t, const char *body, size_t len, extract_texts *tx);
void extract_anthropic_response(trace_rec *t, const char *body, size_t len);
/* One stream event's data (an OpenAI chunk; "[DONE]" and non-JSON are ignored). */
void extract_openai_chunk(trace_rec *t, const char *data, size_t len);
/* One Anthropic stream event (message_start, message_delta ...). */
void extract_anthropic_event(trace_rec *t, sv event, const char *data, size_t len);

#endif
