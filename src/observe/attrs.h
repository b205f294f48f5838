/*
 * attrs.h - the one mapping from a trace record (trace.h) to OpenTelemetry
 * attribute names and types, shared by the store (spans.attributes and the
 * params column, as JSON) and the OTLP exporter (which converts the same
 * JSON values into OTLP AnyValues).
 *
 * Names follow the OpenTelemetry GenAI semantic conventions
 * (gen_ai.operation.name, gen_ai.usage.input_tokens, ...) plus genaiops.*
 * for the gateway's own fields. Only known values are emitted: usage counts
 * of -1, request parameters whose has_* flag is false, empty strings and
 * zero statuses/ports are left out.
 */
#ifndef GENAIOPS_ATTRS_H
#define GENAIOPS_ATTRS_H

#include "core/buf.h"
#include <jansson.h>
#include "observe/trace.h"

/* Adds the attributes of span span_index of t to obj (a JSON object the
 * caller owns; existing keys with the same names are replaced). The root
 * (index 0, or a SPAN_REQUEST span) carries the trace's gen_ai.* and
 * genaiops.* attributes; an attempt span carries its provider, upstream
 * model, server.address/port, http.response.status_code and error.type.
 * An index outside 0..nspans-1 other than 0 adds nothing. Types: strings,
 * integers, reals, booleans, and gen_ai.response.finish_reasons as an array
 * of strings. Strings that are not valid UTF-8 have their bad bytes
 * replaced by '?'. */
void trace_attrs_json(const trace_rec *t, int span_index, json_t *obj);

/* Adds the request parameters the client set (temperature, top_p,
 * max_tokens, seed, frequency_penalty, presence_penalty; plain names, not
 * attribute names) to obj: the store's params column. Non-finite reals are
 * left out. */
void trace_params_json(const trace_rec *t, json_t *obj);

/* The span's name: "<operation> <request_model>" for the root (either part
 * left out when empty; "request" when both are), "attempt <provider>" for an
 * attempt, "guardrail" / "prompt" for the others. Writes a NUL-terminated
 * string into out (truncated to cap-1 bytes); cap must be > 0. */
void trace_span_name(const trace_rec *t, int span_index, char *out, size_t cap);

/* The same attributes written straight to compact JSON text (appended to
 * out): what the store's writer uses, without building jansson objects.
 * trace_params_write appends nothing and returns false when no parameter
 * was set. */
void trace_attrs_write(const trace_rec *t, int span_index, buf *out);
bool trace_params_write(const trace_rec *t, buf *out);

#endif
