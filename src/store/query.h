/*
 * query.h - the read side of the trace store: search traces, fetch one with
 * its spans and scores, attach scores, and manage score configs. The REST
 * API (api/traces.c) and `genaiops traces` (cli/traces.c) both sit on it.
 *
 * Every call takes the store URL ("sqlite://PATH") and borrows a connection
 * from a small process-wide pool: read-only ones for the searches (WAL lets
 * them run beside the trace writer) and read-write ones for the score
 * inserts. Calls block on SQLite, so the server runs them on libuv's
 * thread pool, never on an event loop. All calls are thread-safe.
 *
 * Results are jansson trees the caller owns (json_decref). Failures fill a
 * query_error: the HTTP status to answer with, the offending field (param)
 * and a message naming the problem.
 */
#ifndef GENAIOPS_QUERY_H
#define GENAIOPS_QUERY_H

#include <jansson.h>
#include "core/common.h"
#include "core/err.h"

#define QUERY_LIMIT_DEFAULT 50
#define QUERY_LIMIT_MAX 500
#define QUERY_TEXT_MAX 256      /* longest filter value (model, q, ...) in bytes */

typedef enum query_status_mode {
    QSTATUS_ANY = 0,
    QSTATUS_EXACT,              /* status == code */
    QSTATUS_ERROR,              /* status >= 400 */
    QSTATUS_OK,                 /* status < 400 */
} query_status_mode;

/* The filters of a trace search. Zero-initialise, then set fields directly
 * or through query_filter_set; strings are NUL-terminated copies. */
typedef struct query_filter {
    bool has_from, has_to;
    int64_t from_ns;            /* start_ns >= from_ns */
    int64_t to_ns;              /* start_ns < to_ns */
    char model[QUERY_TEXT_MAX + 1];      /* request_model, exact; "" = any */
    char provider[QUERY_TEXT_MAX + 1];
    char deployment[QUERY_TEXT_MAX + 1];
    char key[QUERY_TEXT_MAX + 1];        /* api_key */
    char q[QUERY_TEXT_MAX + 1];          /* case-insensitive substring */
    query_status_mode status_mode;
    int status;
    bool has_min_latency, has_min_cost;
    double min_latency_ms;
    double min_cost;
    int limit;                  /* 0 = QUERY_LIMIT_DEFAULT */
    bool has_cursor;            /* resume after (cursor_start_ns, cursor_id) */
    int64_t cursor_start_ns;
    char cursor_id[33];
    long timeout_ms;            /* stop a longer search with 503 search_timeout; 0 = 10 s */
} query_filter;

typedef struct query_error {
    int status;                 /* HTTP status: 400, 404, 409, 500, 503 */
    char type[32];              /* OpenAI error type: "invalid_request_error", "server_error" */
    char code[32];              /* machine-readable: "invalid_filter", "trace_not_found" ... */
    char param[32];             /* the offending field, "" if none */
    char message[256];
} query_error;

/* Sets one filter by its REST/CLI name (from, to, model, provider, status,
 * deployment, key, min_latency_ms, min_cost, q, limit, cursor) from a text
 * value. ERR_INVAL with e filled (param = name) for an unknown name or a bad
 * value. */
err_code query_filter_set(query_filter *f, const char *name, sv value, query_error *e);
/* Parses a URL query string ("model=x&status=error") into f: percent- and
 * '+'-decoding, each name at most once. ERR_INVAL with e filled. */
err_code query_filter_parse(query_filter *f, sv query, query_error *e);

/* Parses unix milliseconds ("1732181462000") or RFC 3339
 * ("2024-11-21T09:31:02.5Z", "...+01:00") into unix nanoseconds. */
bool query_parse_time(sv s, int64_t *ns);
/* The opaque pagination cursor for a (start_ns, trace_id) position: base64url
 * text, written to out (at least 64 bytes). Decode returns false when s is
 * not one. */
void query_cursor_encode(int64_t start_ns, const char *trace_id, char *out, size_t cap);
bool query_cursor_decode(sv s, int64_t *start_ns, char trace_id[33]);

/* Traces matching f, newest first: {"data":[summary...], "next_cursor":
 * "..."|null}. next_cursor is set when there may be more. */
err_code query_traces_list(const char *store_url, const query_filter *f, json_t **out, query_error *e);
/* One trace with all its columns, "spans" (by start) and "scores" (by
 * creation). id is the 32-hex trace id (case-insensitive). 404 if unknown. */
err_code query_trace_get(const char *store_url, sv id, json_t **out, query_error *e);
/* Adds a score from a JSON body {"trace_id","name","value",
 * "data_type"?,"comment"?,"source"?}; checks it against the score config of
 * that name if there is one. *out is the stored score. 404 if the trace is
 * unknown, 400 naming the field for anything invalid. */
err_code query_score_add(const char *store_url, const char *body, size_t len, json_t **out, query_error *e);
/* Creates a score config from {"name","data_type","min_value"?,"max_value"?,
 * "categories"?,"description"?}; 409 if the name exists. */
err_code query_score_config_create(const char *store_url, const char *body, size_t len, json_t **out,
                                   query_error *e);
/* All score configs by name: {"data":[...]}. */
err_code query_score_configs_list(const char *store_url, json_t **out, query_error *e);

/* An OpenAI-shaped error body {"error":{"message","type","param","code"}}. */
json_t *query_error_json(const query_error *e);
/* Fills e (status, type from the status, code, param, the formatted
 * message) and returns the err_code that goes with the status: 400 ->
 * ERR_INVAL, 403 -> ERR_DENIED, 404 -> ERR_NOTFOUND, 409 -> ERR_EXISTS,
 * 500 "out_of_memory" -> ERR_NOMEM, other 5xx -> ERR_STORE, other 4xx ->
 * ERR_INVAL. For the query, registry and API modules alike. */
err_code query_fail(query_error *e, int status, const char *param, const char *code, const char *fmt, ...)
    PRINTF_LIKE(5, 6);
/* A failed SQLite call on db (NULL: no connection) while doing `what`:
 * 503 store_busy when the store is locked, 503 store_not_migrated when it
 * lacks the tables, 500 out_of_memory, else 500 store_error with SQLite's
 * message. Shared by every module that reads or writes the store. */
typedef struct sqlite3 sqlite3;
err_code query_fail_db(query_error *e, sqlite3 *db, const char *what);
/* Binds text (copied) or an integer to the named parameter (":name") of st
 * when the statement has it; nothing otherwise. */
typedef struct sqlite3_stmt sqlite3_stmt;
void query_bind_text(sqlite3_stmt *st, const char *name, const char *v);
void query_bind_i64(sqlite3_stmt *st, const char *name, int64_t v);
/* Closes the pooled connections (at exit; later calls reopen them). */
void query_shutdown(void);

#endif
