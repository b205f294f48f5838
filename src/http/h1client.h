/*
 * h1client.h - a lean HTTP/1.1 client on libuv for plain-http upstreams on
 * numeric addresses or "localhost" (local model servers: vLLM, Ollama,
 * llama.cpp, an in-cluster endpoint), behind the upstream API.
 *
 * It is not used directly: upstream_start() (upstream.c) offers every
 * request to h1client_start() first, which takes it only when the URL is
 * http:// with an IPv4/IPv6 literal or localhost as host, no proxy from the
 * environment applies (http_proxy, all_proxy, no_proxy as libcurl reads
 * them, but read once when the client is created; the decision is kept per
 * host:port) and nothing in the request needs libcurl (an
 * Accept-Encoding to decode, a caller's own Content-Length or
 * Transfer-Encoding); otherwise it answers ERR_UNSUPPORTED and libcurl gets
 * the request. Calls then keep exactly the contract of upstream.h
 * (callbacks, pause/resume, cancel, timeouts, errors).
 *
 * Per client (one per worker loop): keep-alive connections pooled per
 * host:port, a free list of call structs each with its read buffer. See
 * docs/internals/upstream.md, "The two clients".
 *
 * Ownership: as in upstream.h. The client owns its calls and connections;
 * request strings are copied at start except the body, which the caller
 * keeps alive until on_done or the cancel.
 */
#ifndef GENAIOPS_H1CLIENT_H
#define GENAIOPS_H1CLIENT_H

#include <uv.h>
#include "core/common.h"
#include "core/err.h"
#include "http/upstream.h"

/* Every upstream_call, of either client, begins with one byte naming the
 * client that owns it (libcurl's calls are zeroed, so 0). */
enum { UPSTREAM_IMPL_CURL = 0, UPSTREAM_IMPL_H1 = 0x48 };

/* Idle keep-alive connections kept per host:port, and how long one may idle. */
#define H1CLIENT_MAX_IDLE_PER_ORIGIN 256
#define H1CLIENT_IDLE_CLOSE_MS 60000u
/* Per-call read buffer; body pieces handed to on_data are at most
 * H1CLIENT_MAX_PIECE bytes (libcurl's CURL_MAX_WRITE_SIZE, so callers see
 * the same piece sizes from both clients). */
#define H1CLIENT_READ_BUF (64u * 1024u)
#define H1CLIENT_MAX_PIECE (16u * 1024u)
/* Finished calls (struct + read buffer + timer) kept for reuse. */
#define H1CLIENT_FREE_CALLS 64

typedef struct h1client h1client;

/* True when c (not NULL) was started by the h1 client. */
static inline bool h1client_owns(const upstream_call *c)
{
    return *(const unsigned char *)(const void *)c == UPSTREAM_IMPL_H1;
}

/* Creates the client for `loop` and reads the proxy environment; NULL on
 * out of memory. Its handles do not keep the loop alive while no call is
 * in flight. */
h1client *h1client_new(uv_loop_t *loop);

/* Ends every call without callbacks, closes every connection and frees the
 * client once its handles are closed (the loop must run afterwards). Safe
 * from inside any callback. NULL is ignored. */
void h1client_close(h1client *h);

/* Starts a call if the request is one for this client; the request has
 * passed upstream_start's checks (method, headers, timeouts) and `method`
 * is the effective one. Returns ERR_UNSUPPORTED, with nothing done, when
 * the request should go to libcurl; ERR_OK with *out set; or ERR_NOMEM,
 * ERR_INVAL (closed client), ERR_UPSTREAM (no socket) with *out NULL and no
 * callback ever. Never calls a callback itself. */
err_code h1client_start(h1client *h, const upstream_request *r, const char *method,
                        const upstream_callbacks *cb, void *ud, upstream_call **out);

/* upstream_resume / upstream_cancel for a call this client owns. */
void h1client_resume(upstream_call *c);
void h1client_cancel(upstream_call *c);

/* Calls started and not yet ended or canceled. NULL gives 0. */
size_t h1client_active(const h1client *h);

/* Idle pooled connections, all origins (for tests and stats). */
size_t h1client_idle_conns(const h1client *h);

/* Changes the pool limits (for tests; the defaults are the constants above). */
void h1client_set_pool(h1client *h, size_t max_idle_per_origin, uint64_t idle_close_ms);

#endif
