/*
 * guarded.h - the guardrail engine (src/guard/guard.h) applied to the
 * gateway's bodies and streams: which strings of a request or a response
 * are texts of which stage, scanning them, and writing the body or the
 * stream again with the redactions.
 *
 * Texts are found with jscan in the client's bytes, without a tree. A
 * string without escapes is scanned where it lies; one with escapes is
 * unescaped into the request's pool first. A rewritten body is the
 * original with only the changed strings replaced, so everything else the
 * client or provider sent passes untouched.
 */
#ifndef GENAIOPS_GATEWAY_GUARDED_H
#define GENAIOPS_GATEWAY_GUARDED_H

#include "core/buf.h"
#include "core/pool.h"
#include "gateway/request.h"
#include "guard/guard.h"
#include "observe/extract.h"
#include "providers/provider.h"

/* The input stage over a client's request body (in the client's API fmt;
 * rq, when not NULL, is what the decoder found in this body: the span of
 * its messages, prompt or input and, for chat, the messages' members,
 * which saves walking the body for them): every message's text (g: the
 * engine q's policies come from), plus the system prompt and
 * response_format the later stages need. When the verdict is redact, *out
 * is the body with the placeholders (from p), else NULL. ERR_OK (see
 * guard_verdict for the decision), ERR_INVAL with msg for a
 * response_format schema that does not compile, ERR_NOMEM. */
err_code gw_guard_request(guard_req *q, const guard_engine *g, gw_endpoint ep, api_format fmt, const char *body,
                          size_t len, const gw_request *rq, pool *p, const char **out, size_t *out_len, char *msg,
                          size_t cap);

/* The output and tool stages over a complete response body in the
 * client's API: the answer's texts and the tool calls' arguments. found:
 * the texts the trace's extraction already found in this body (an OpenAI
 * answer, tx->complete), or NULL to walk the body here. *out is the body
 * rewritten (redactions, restored originals) or NULL when unchanged.
 * ERR_OK or ERR_NOMEM. */
err_code gw_guard_response(guard_req *q, gw_endpoint ep, api_format fmt, const char *body, size_t len,
                           const extract_texts *found, pool *p, const char **out, size_t *out_len);

/* A streamed answer in the client's API, event by event. */
typedef struct gw_guard_stream gw_guard_stream;

gw_guard_stream *gw_guard_stream_new(guard_req *q, gw_endpoint ep, api_format fmt);
/* One event of the client's stream in; what to send for it (zero, one or
 * two SSE-framed events) appended to out. Returns 0, or 1 when an enforced
 * block was found (send the error event and end the response; nothing of
 * the blocked text is in out). */
int gw_guard_stream_event(gw_guard_stream *s, sv event, sv data, buf *out);
/* The upstream ended (after its last event): whatever is still held back
 * goes out. Returns 1 when that blocks. */
int gw_guard_stream_end(gw_guard_stream *s, buf *out);
void gw_guard_stream_free(gw_guard_stream *s); /* NULL ok */
/* The answer's released text is also appended to b (a trace's capture). */
void gw_guard_stream_capture(gw_guard_stream *s, buf *b);

/* The texts of a body that remote checks (harm classifier, webhook) see:
 * the request's messages other than system ones (response false), or the
 * answer's texts (response true), at most max of them, unescaped into p.
 * Returns how many. */
size_t gw_guard_texts(gw_endpoint ep, api_format fmt, bool response, const char *body, size_t len, pool *p,
                      const char **texts, size_t *lens, size_t max);

#endif
