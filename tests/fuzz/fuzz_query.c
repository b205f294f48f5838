/*
 * fuzz_query.c - libFuzzer driver for the parsers of the trace query module:
 * the filter query string, times, cursors, and the score / score-config
 * bodies (against a scratch store with the real schema and one trace,
 * made once; the scores pile up in it).
 *
 * The first byte picks the target ('Q' query string, 'T' time, 'C' cursor,
 * 'S' score body, 'K' score-config body; anything else: all of them), the
 * rest (after one separator byte) is the input. Checks beyond "no crash, no
 * leak": every refusal is a 4xx/5xx with a message (and a param for a
 * filter); an accepted filter has a limit in range and NUL-terminated
 * strings; a decoded cursor encodes back to a cursor that decodes to the
 * same position.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "store/query.h"
#include "store/store.h"

static char url[256];

static void init_store(void)
{
    if (url[0])
        return;
    snprintf(url, sizeof url, "sqlite:///tmp/genaiops-fuzz-query-%d.db", (int)getpid());
    unlink(url + 9);
    store *s = NULL;
    char msg[256];
    if (store_open(url, &s, msg, sizeof msg) != ERR_OK)
        abort();
    store_close(s);
    /* one trace to score, so valid scores reach the insert */
    sqlite3 *db = NULL;
    if (sqlite3_open(url + 9, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "INSERT INTO traces (trace_id, start_ns, end_ns, duration_ms, status, stream) VALUES "
                     "('0123456789abcdef0123456789abcdef', 1, 2, 0, 200, 0)",
                     NULL, NULL, NULL) != SQLITE_OK)
        abort();
    sqlite3_close(db);
}

static void check_error(err_code r, const query_error *e)
{
    if (r != ERR_OK && (e->status < 400 || !e->message[0]))
        abort();
}

static void fuzz_filter(const char *p, size_t n)
{
    query_filter f = { 0 };
    query_error e = { 0 };
    err_code r = query_filter_parse(&f, sv_make(p, n), &e);
    check_error(r, &e);
    if (r != ERR_OK && !e.param[0])
        abort();
    if (r == ERR_OK) {
        if (f.limit < 0 || f.limit > QUERY_LIMIT_MAX)
            abort();
        if (strlen(f.model) > QUERY_TEXT_MAX || strlen(f.q) > QUERY_TEXT_MAX)
            abort();
        json_t *j = query_error_json(&e);
        json_decref(j);
    }
}

static void fuzz_time(const char *p, size_t n)
{
    int64_t ns;
    if (query_parse_time(sv_make(p, n), &ns) && ns < 0)
        abort();
}

static void fuzz_cursor(const char *p, size_t n)
{
    int64_t ns, ns2;
    char id[33], id2[33], enc[128];
    if (!query_cursor_decode(sv_make(p, n), &ns, id))
        return;
    query_cursor_encode(ns, id, enc, sizeof enc);
    if (!query_cursor_decode(sv_from(enc), &ns2, id2) || ns != ns2 || strcmp(id, id2) != 0)
        abort();
}

static void fuzz_bodies(const char *p, size_t n, bool score, bool config)
{
    init_store();
    json_t *out = NULL;
    query_error e = { 0 };
    if (score) {
        err_code r = query_score_add(url, p, n, &out, &e);
        check_error(r, &e);
        json_decref(out);
        out = NULL;
    }
    if (config) {
        e = (query_error){ 0 };
        err_code r = query_score_config_create(url, p, n, &out, &e);
        check_error(r, &e);
        json_decref(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    switch (data[0]) {
    case 'Q': fuzz_filter(p, n); break;
    case 'T': fuzz_time(p, n); break;
    case 'C': fuzz_cursor(p, n); break;
    case 'S': fuzz_bodies(p, n, true, false); break;
    case 'K': fuzz_bodies(p, n, false, true); break;
    default:
        fuzz_filter(p, n);
        fuzz_time(p, n);
        fuzz_cursor(p, n);
        break;
    }
    return 0;
}
