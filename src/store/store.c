/*
 * store.c - the store interface and its SQLite back end.
 *
 * store_open_opts() picks a back end by the URL's scheme from a small table
 * (only "sqlite" today; a bare path means SQLite too) and calls through the
 * back end's vtable. The SQLite back end:
 *  - checks the path first, so an unwritable file or directory is reported
 *    by name with errno rather than as SQLite's "unable to open database";
 *  - opens the file with a busy timeout, reads PRAGMA user_version (the
 *    first real read: a file that is not a database fails here), refuses a
 *    version newer than migrations.c knows, switches to WAL with
 *    synchronous=NORMAL, and applies pending migrations one transaction
 *    each (BEGIN IMMEDIATE, the step's SQL, user_version, COMMIT);
 *  - prepares its statements once (SQLITE_PREPARE_PERSISTENT) on first use
 *    and keeps them until close;
 *  - stores a batch of traces in one transaction: a row per trace, a row per
 *    span with its OpenTelemetry attributes as JSON (observe/attrs.c);
 *  - purges old traces in bounded chunks through a temporary id table, so
 *    spans and scores go in the same transaction as their traces.
 * Every SQLite failure becomes one sentence naming the file and the cause
 * (locked, full, not a database, I/O error with errno).
 */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/jscan.h"
#include "observe/attrs.h"
#include "store/store.h"

/* ---------------------------------------------------------------- generic */

static const store_backend sqlite_backend;

static const store_backend *const backends[] = { &sqlite_backend };

const char *store_path(const store *s) { return s->path; }
int store_version(const store *s) { return s->version; }

const char *store_span_kind_name(span_kind k)
{
    switch (k) {
    case SPAN_REQUEST: return "request";
    case SPAN_ATTEMPT: return "attempt";
    case SPAN_GUARDRAIL: return "guardrail";
    case SPAN_PROMPT: return "prompt";
    }
    return "unknown";
}

err_code store_open(const char *url, store **out, char *msg, size_t msgcap)
{
    return store_open_opts(url, NULL, out, msg, msgcap);
}

err_code store_open_opts(const char *url, const store_opts *o, store **out, char *msg, size_t msgcap)
{
    store_opts def = { 0 };
    *out = NULL;
    if (!o)
        o = &def;
    if (!url || !*url)
        url = STORE_DEFAULT_URL;
    const store_backend *be = NULL;
    const char *loc = url;
    const char *sep = strstr(url, "://");
    if (!sep)
        be = &sqlite_backend;
    else {
        size_t n = (size_t)(sep - url);
        for (size_t i = 0; i < countof(backends); i++)
            if (strlen(backends[i]->scheme) == n && strncmp(url, backends[i]->scheme, n) == 0)
                be = backends[i];
        loc = sep + 3;
    }
    if (!be) {
        snprintf(msg, msgcap, "store url '%s' is not supported by this version (use sqlite://PATH)", url);
        return ERR_UNSUPPORTED;
    }
    if (!*loc) {
        snprintf(msg, msgcap, "store url '%s' names no file", url);
        return ERR_CONFIG;
    }
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->url = strdup(url)) || !(s->path = strdup(loc))) {
        if (s)
            free(s->url);
        free(s);
        snprintf(msg, msgcap, "out of memory opening the store");
        return ERR_NOMEM;
    }
    s->be = be;
    err_code e = be->open(s, o, msg, msgcap);
    if (e != ERR_OK) {
        store_close(s);
        return e;
    }
    if (!o->no_migrate && !o->read_only && s->version < store_latest_version()) {
        e = be->migrate(s, store_latest_version(), msg, msgcap);
        if (e != ERR_OK) {
            store_close(s);
            return e;
        }
    }
    *out = s;
    return ERR_OK;
}

void store_close(store *s)
{
    if (!s)
        return;
    if (s->impl)
        s->be->close(s);
    free(s->url);
    free(s->path);
    free(s);
}

err_code store_migrate(store *s, int *from, int *to, char *msg, size_t msgcap)
{
    if (from)
        *from = s->version;
    err_code e = ERR_OK;
    if (s->version < store_latest_version())
        e = s->be->migrate(s, store_latest_version(), msg, msgcap);
    if (to)
        *to = s->version;
    return e;
}

static err_code check_current(store *s, char *msg, size_t msgcap)
{
    if (s->version >= store_latest_version())
        return ERR_OK;
    snprintf(msg, msgcap, "the store %s is at schema version %d: run genaiops migrate", s->path, s->version);
    return ERR_STORE;
}

err_code store_put_docs(store *s, const store_doc *docs, size_t n, char *msg, size_t msgcap)
{
    if (n == 0)
        return ERR_OK;
    err_code e = check_current(s, msg, msgcap);
    return e != ERR_OK ? e : s->be->put_docs(s, docs, n, msg, msgcap);
}

err_code store_put_traces(store *s, trace_rec *const *recs, size_t n, char *msg, size_t msgcap)
{
    if (n == 0)
        return ERR_OK;
    err_code e = check_current(s, msg, msgcap);
    if (e != ERR_OK)
        return e;
    store_doc *docs = calloc(n, sizeof *docs);
    if (!docs) {
        snprintf(msg, msgcap, "out of memory writing %zu traces", n);
        return ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && e == ERR_OK; i++) {
        if (!recs[i])
            continue;
        e = store_doc_render(recs[i], &docs[k++]);
        if (e != ERR_OK)
            snprintf(msg, msgcap, "cannot render trace %zu for the store: %s", i, err_message(e));
    }
    if (e == ERR_OK)
        e = s->be->put_docs(s, docs, k, msg, msgcap);
    for (size_t i = 0; i < k; i++)
        store_doc_clear(&docs[i]);
    free(docs);
    return e;
}

#define LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

/* v in decimal. */
static void put_u64(buf *b, uint64_t v)
{
    char t[24];
    size_t n = sizeof t;
    do
        t[--n] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    buf_append(b, t + n, sizeof t - n);
}

/* 15 significant digits: a client's 0.3 is stored as 0.3, not
 * 0.29999999999999999, and every decimal of up to 15 digits reads back the
 * same. */
err_code store_doc_render(const trace_rec *t, store_doc *d)
{
    memset(d, 0, sizeof *d);
    d->t = t;
    d->params = -1;
    buf b;
    buf_init(&b, STORE_DOC_MAX);
    /* NUL-separated JSON texts: params (if any), then the spans array, the
     * attributes written straight from the attribute tables (attrs.c) */
    if (trace_params_write(t, &b)) {
        d->params = 0;
        buf_append(&b, "", 1);
    }
    d->spans = (uint32_t)b.len;
    buf_append(&b, "[", 1);
    int nspans = t->nspans < 0 ? 0 : MIN(t->nspans, TRACE_MAX_SPANS);
    uint64_t end = t->end_ns >= t->start_ns ? t->end_ns : t->start_ns;
    static const uint8_t zero[8];
    for (int i = 0; i < nspans; i++) {
        const span_rec *sp = &t->spans[i];
        char sid[17], pid[17], name[192], lit[2 * sizeof name + 8];
        span_id_hex(sp->span_id, sid);
        span_id_hex(sp->parent_id, pid);
        trace_span_name(t, i, name, sizeof name);
        size_t ln = jscan_escape(lit, sizeof lit, name, strlen(name));
        uint64_t s0 = sp->start_ns ? sp->start_ns : t->start_ns;
        uint64_t s1 = sp->end_ns ? sp->end_ns : end;
        if (s1 < s0)
            s1 = s0;
        bool root = memcmp(sp->parent_id, zero, 8) == 0;
        /* appended piece by piece: printf's cost per span was most of the
         * encoder thread's time, which the workers share the cores with */
        if (i)
            LIT(&b, ",");
        LIT(&b, "{\"span_id\":\"");
        buf_append(&b, sid, 16);
        LIT(&b, "\",\"parent_id\":");
        if (root) {
            LIT(&b, "null");
        } else {
            LIT(&b, "\"");
            buf_append(&b, pid, 16);
            LIT(&b, "\"");
        }
        LIT(&b, ",\"kind\":\"");
        buf_append_str(&b, store_span_kind_name(sp->kind));
        LIT(&b, "\",\"name\":");
        buf_append(&b, lit, MIN(ln, sizeof lit));
        LIT(&b, ",\"start_ns\":");
        put_u64(&b, s0);
        LIT(&b, ",\"end_ns\":");
        put_u64(&b, s1);
        LIT(&b, ",\"attributes\":");
        trace_attrs_write(t, i, &b);
        buf_append(&b, "}", 1);
    }
    buf_append(&b, "]", 1);
    if (buf_append(&b, "", 1) != ERR_OK) { /* over STORE_DOC_MAX or out of memory */
        buf_free(&b);
        return ERR_NOMEM;
    }
    d->json = buf_steal(&b, NULL);
    return d->json ? ERR_OK : ERR_NOMEM;
}

void store_doc_clear(store_doc *d)
{
    free(d->json);
    d->json = NULL;
}

err_code store_purge(store *s, uint64_t before_ns, size_t max_traces, size_t *deleted, char *msg, size_t msgcap)
{
    *deleted = 0;
    if (s->version < 2 || max_traces == 0)
        return ERR_OK;
    return s->be->purge(s, before_ns, max_traces, deleted, msg, msgcap);
}

/* ---------------------------------------------------------------- sqlite */

enum {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_TRACE,
    Q_PURGE_CLEAR,
    Q_PURGE_PICK,
    Q_PURGE_SCORES,
    Q_PURGE_TRACES,
    Q__COUNT
};

static const char *const queries[Q__COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_TRACE] = "INSERT OR IGNORE INTO traces (trace_id, request_id, start_ns, end_ns, duration_ms, operation, "
                "endpoint, provider, provider_type, request_model, response_model, response_id, finish_reasons, "
                "deployment, api_key, prompt_name, prompt_version, status, error_type, stream, input_tokens, "
                "output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, cost_usd, ttft_ms, "
                "overhead_us, attempts, params, input_messages, output_messages, content_redacted, "
                "content_truncated, spans) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35)",
    [Q_PURGE_CLEAR] = "DELETE FROM temp.purge_ids",
    [Q_PURGE_PICK] = ("INSERT INTO temp.purge_ids SELECT trace_id FROM traces WHERE start_ns < ?1 "
                      "ORDER BY start_ns LIMIT ?2"),
    [Q_PURGE_SCORES] = "DELETE FROM scores WHERE trace_id IN (SELECT trace_id FROM temp.purge_ids)",
    [Q_PURGE_TRACES] = "DELETE FROM traces WHERE trace_id IN (SELECT trace_id FROM temp.purge_ids)",
};

typedef struct sq {
    sqlite3 *db;
    int busy_ms;
    bool purge_table;              /* temp.purge_ids exists */
    sqlite3_stmt *st[Q__COUNT];    /* prepared on first use */
} sq;

/* Writes one sentence for a failed SQLite call into msg and returns the
 * err_code for it. doing says what was being done ("migrating to version
 * 2"). */
static err_code sq_error(store *s, sqlite3 *db, int rc, const char *doing, char *msg, size_t msgcap)
{
    sq *q = s->impl;
    int prim = rc & 0xff;
    const char *detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (prim) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        snprintf(msg, msgcap,
                 "the store %s is locked by another process (waited %d ms for it while %s); stop the other "
                 "process or try again",
                 s->path, q ? q->busy_ms : 0, doing);
        return ERR_STORE;
    case SQLITE_NOTADB:
        snprintf(msg, msgcap,
                 "the store %s is not a database (not SQLite, encrypted or overwritten): move it away or point "
                 "store.url elsewhere",
                 s->path);
        return ERR_STORE;
    case SQLITE_CORRUPT:
        snprintf(msg, msgcap, "the store %s is corrupt (%s) while %s", s->path, detail, doing);
        return ERR_STORE;
    case SQLITE_FULL:
        snprintf(msg, msgcap, "the store %s is full (disk or size cap) while %s: %s", s->path, doing, detail);
        return ERR_STORE;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        snprintf(msg, msgcap, "cannot write the store %s while %s: %s", s->path, doing, detail);
        return ERR_DENIED;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        if (sys)
            snprintf(msg, msgcap, "%s on the store %s while %s: %s (errno %d)", detail, s->path, doing,
                     strerror(sys), sys);
        else
            snprintf(msg, msgcap, "%s on the store %s while %s", detail, s->path, doing);
        return ERR_IO;
    case SQLITE_NOMEM:
        snprintf(msg, msgcap, "out of memory on the store %s while %s", s->path, doing);
        return ERR_NOMEM;
    default:
        snprintf(msg, msgcap, "store %s: error while %s: %s", s->path, doing, detail);
        return ERR_STORE;
    }
}

/* Checks that the file (if present) and its directory can be used as asked,
 * so the common mistakes get a message naming the path and errno. */
static err_code check_path(const char *path, bool read_only, char *msg, size_t msgcap)
{
    if (!strcmp(path, ":memory:") || !strncmp(path, "file:", 5))
        return ERR_OK;
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!exists && errno != ENOENT) {
        int e = errno;
        snprintf(msg, msgcap, "cannot use the store file %s: %s (errno %d)", path, strerror(e), e);
        return e == EACCES ? ERR_DENIED : ERR_IO;
    }
    if (exists && S_ISDIR(st.st_mode)) {
        snprintf(msg, msgcap, "the store path %s is a directory, not a database file", path);
        return ERR_IO;
    }
    if (!exists && read_only) {
        snprintf(msg, msgcap, "the store %s does not exist yet", path);
        return ERR_NOTFOUND;
    }
    if (exists && access(path, read_only ? R_OK : R_OK | W_OK) != 0) {
        int e = errno;
        snprintf(msg, msgcap, "cannot %s the store file %s: %s (errno %d)", read_only ? "read" : "write", path,
                 strerror(e), e);
        return ERR_DENIED;
    }
    if (read_only)
        return ERR_OK;
    /* WAL creates PATH-wal and PATH-shm beside the file: the directory must
     * be writable too. */
    char *copy = strdup(path);
    if (!copy)
        return ERR_NOMEM;
    const char *dir = dirname(copy);
    err_code rc = ERR_OK;
    struct stat ds;
    if (stat(dir, &ds) != 0) {
        int e = errno;
        snprintf(msg, msgcap, "cannot create the store %s: directory %s: %s (errno %d)", path, dir, strerror(e), e);
        rc = ERR_IO;
    } else if (!S_ISDIR(ds.st_mode)) {
        snprintf(msg, msgcap, "cannot create the store %s: %s is not a directory (errno %d)", path, dir, ENOTDIR);
        rc = ERR_IO;
    } else if (access(dir, W_OK | X_OK) != 0) {
        int e = errno;
        snprintf(msg, msgcap, "cannot write in the store directory %s (the store %s needs it for its journal): %s "
                 "(errno %d)", dir, path, strerror(e), e);
        rc = ERR_DENIED;
    }
    free(copy);
    return rc;
}

static int exec_rc(sqlite3 *db, const char *sql) { return sqlite3_exec(db, sql, NULL, NULL, NULL); }

static err_code sq_open(store *s, const store_opts *o, char *msg, size_t msgcap)
{
    err_code e = check_path(s->path, o->read_only, msg, msgcap);
    if (e != ERR_OK)
        return e;
    sq *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(msg, msgcap, "out of memory opening the store");
        return ERR_NOMEM;
    }
    s->impl = q;
    q->busy_ms = o->busy_timeout_ms > 0 ? o->busy_timeout_ms : STORE_BUSY_TIMEOUT_MS;
    int flags = (o->read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_URI;
    int rc = sqlite3_open_v2(s->path, &q->db, flags, NULL);
    if (rc != SQLITE_OK)
        return sq_error(s, q->db, rc, "opening it", msg, msgcap);
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, q->busy_ms);

    /* The first read of the file: "not a database" shows up here. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            s->version = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK)
        return sq_error(s, q->db, rc, "reading its schema version", msg, msgcap);
    if (s->version > store_latest_version()) {
        snprintf(msg, msgcap,
                 "the store %s has schema version %d, newer than this genaiops knows (%d): upgrade genaiops",
                 s->path, s->version, store_latest_version());
        return ERR_STORE;
    }
    if (s->version < 0) {
        snprintf(msg, msgcap, "the store %s has schema version %d, which no genaiops wrote: it is corrupt or not genaiops' own", s->path, s->version);
        return ERR_STORE;
    }
    if (!o->read_only) {
        rc = exec_rc(q->db, "PRAGMA journal_mode=WAL");
        if (rc == SQLITE_OK)
            rc = exec_rc(q->db, "PRAGMA synchronous=NORMAL");
        if (rc != SQLITE_OK)
            return sq_error(s, q->db, rc, "switching it to WAL", msg, msgcap);
        /* Bulk-write tuning (docs/internals/store.md): an 8 MiB page cache
         * and checkpoints every ~40 MiB of WAL instead of 4. No memory map:
         * mapped pages count as the gateway's resident memory, and the
         * writer gains little from it. Failures here only cost speed. */
        exec_rc(q->db, "PRAGMA cache_size=-8192; PRAGMA wal_autocheckpoint=10000");
    }
    if (o->max_bytes) {
        sqlite3_stmt *ps = NULL;
        long long page = 4096;
        if (sqlite3_prepare_v2(q->db, "PRAGMA page_size", -1, &ps, NULL) == SQLITE_OK && sqlite3_step(ps) == SQLITE_ROW)
            page = sqlite3_column_int64(ps, 0);
        sqlite3_finalize(ps);
        long long pages = (long long)(o->max_bytes / (uint64_t)(page > 0 ? page : 4096));
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA max_page_count=%lld", pages > 1 ? pages : 1);
        rc = exec_rc(q->db, sql);
        if (rc != SQLITE_OK)
            return sq_error(s, q->db, rc, "setting its size cap", msg, msgcap);
    }
    return ERR_OK;
}

static void sq_close(store *s)
{
    sq *q = s->impl;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(q->st[i]);
    sqlite3_close(q->db);
    free(q);
    s->impl = NULL;
}

static void rollback(sq *q)
{
    if (!sqlite3_get_autocommit(q->db))
        exec_rc(q->db, "ROLLBACK");
}

static err_code sq_migrate(store *s, int target, char *msg, size_t msgcap)
{
    sq *q = s->impl;
    size_t n;
    const store_migration *m = store_migrations(&n);
    for (size_t i = 0; i < n && m[i].version <= target; i++) {
        if (m[i].version <= s->version)
            continue;
        char doing[96];
        snprintf(doing, sizeof doing, "migrating to version %d (%s)", m[i].version, m[i].name);
        int rc = exec_rc(q->db, "BEGIN IMMEDIATE");
        if (rc == SQLITE_OK) {
            /* Another process may have migrated while we waited. */
            sqlite3_stmt *st = NULL;
            int now = s->version;
            if (sqlite3_prepare_v2(q->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                now = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
            if (now >= m[i].version) {
                exec_rc(q->db, "COMMIT");
                s->version = now;
                continue;
            }
            rc = exec_rc(q->db, m[i].sql);
        }
        if (rc == SQLITE_OK) {
            char sql[48];
            snprintf(sql, sizeof sql, "PRAGMA user_version=%d", m[i].version);
            rc = exec_rc(q->db, sql);
        }
        if (rc == SQLITE_OK)
            rc = exec_rc(q->db, "COMMIT");
        if (rc != SQLITE_OK) {
            err_code e = sq_error(s, q->db, rc, doing, msg, msgcap);
            rollback(q);
            return e;
        }
        s->version = m[i].version;
    }
    return ERR_OK;
}

static int prep(sq *q, int which, sqlite3_stmt **out)
{
    if (!q->st[which]) {
        int rc = sqlite3_prepare_v3(q->db, queries[which], -1, SQLITE_PREPARE_PERSISTENT, &q->st[which], NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    *out = q->st[which];
    return SQLITE_OK;
}

/* Runs a prepared statement that returns no rows and resets it. */
static int run(sq *q, int which)
{
    sqlite3_stmt *st;
    int rc = prep(q, which, &st);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Binds a fixed char array as text, or NULL when empty; the array need not
 * be NUL-terminated. */
#define BIND_FIELD(st, i, field) bind_text((st), (i), (field), strnlen((field), sizeof(field)))

static int bind_text(sqlite3_stmt *st, int i, const char *p, size_t n)
{
    if (!p || n == 0)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, p, (int)MIN(n, (size_t)INT32_MAX), SQLITE_STATIC);
}

static int bind_count(sqlite3_stmt *st, int i, long long v)
{
    return v < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int64(st, i, v);
}

static int put_doc(sq *q, const store_doc *d)
{
    const trace_rec *t = d->t;
    sqlite3_stmt *st;
    int rc = prep(q, Q_TRACE, &st);
    if (rc != SQLITE_OK)
        return rc;
    char tid[33];
    trace_id_hex(t->trace_id, tid);
    uint64_t end = t->end_ns >= t->start_ns ? t->end_ns : t->start_ns;
    bool prompt = strnlen(t->prompt_name, sizeof t->prompt_name) > 0;
    sqlite3_bind_text(st, 1, tid, 32, SQLITE_STATIC);
    BIND_FIELD(st, 2, t->request_id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)t->start_ns);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)end);
    sqlite3_bind_double(st, 5, (double)(end - t->start_ns) / 1e6);
    BIND_FIELD(st, 6, t->operation);
    BIND_FIELD(st, 7, t->endpoint);
    BIND_FIELD(st, 8, t->provider);
    BIND_FIELD(st, 9, t->provider_type);
    BIND_FIELD(st, 10, t->request_model);
    BIND_FIELD(st, 11, t->response_model);
    BIND_FIELD(st, 12, t->response_id);
    BIND_FIELD(st, 13, t->finish_reasons);
    BIND_FIELD(st, 14, t->deployment);
    BIND_FIELD(st, 15, t->api_key);
    BIND_FIELD(st, 16, t->prompt_name);
    if (prompt)
        sqlite3_bind_int(st, 17, t->prompt_version);
    else
        sqlite3_bind_null(st, 17);
    sqlite3_bind_int(st, 18, t->status);
    BIND_FIELD(st, 19, t->error_type);
    sqlite3_bind_int(st, 20, t->stream ? 1 : 0);
    bind_count(st, 21, t->input_tokens);
    bind_count(st, 22, t->output_tokens);
    bind_count(st, 23, t->cache_read_tokens);
    bind_count(st, 24, t->cache_creation_tokens);
    bind_count(st, 25, t->reasoning_tokens);
    if (t->cost_known)
        sqlite3_bind_double(st, 26, t->cost_usd);
    else
        sqlite3_bind_null(st, 26);
    if (t->ttft_ns)
        sqlite3_bind_double(st, 27, (double)t->ttft_ns / 1e6);
    else
        sqlite3_bind_null(st, 27);
    sqlite3_bind_int64(st, 28, (sqlite3_int64)(t->overhead_ns / 1000));
    sqlite3_bind_int(st, 29, t->attempts);
    if (d->params >= 0)
        rc = sqlite3_bind_text(st, 30, d->json + d->params, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        bind_text(st, 31, t->input_messages, t->input_messages ? strlen(t->input_messages) : 0);
        bind_text(st, 32, t->output_messages, t->output_messages ? strlen(t->output_messages) : 0);
        sqlite3_bind_int(st, 33, t->content_redacted ? 1 : 0);
        sqlite3_bind_int(st, 34, t->content_truncated ? 1 : 0);
        rc = sqlite3_bind_text(st, 35, d->json + d->spans, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static err_code sq_put_docs(store *s, const store_doc *docs, size_t n, char *msg, size_t msgcap)
{
    sq *q = s->impl;
    int rc = run(q, Q_BEGIN);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
        if (docs[i].t && docs[i].json)
            rc = put_doc(q, &docs[i]);
    if (rc == SQLITE_OK)
        rc = run(q, Q_COMMIT);
    if (rc != SQLITE_OK) {
        char doing[64];
        snprintf(doing, sizeof doing, "writing %zu traces", n);
        err_code e = sq_error(s, q->db, rc, doing, msg, msgcap);
        rollback(q);
        return e;
    }
    return ERR_OK;
}

static err_code sq_purge(store *s, uint64_t before_ns, size_t max_traces, size_t *deleted, char *msg, size_t msgcap)
{
    sq *q = s->impl;
    int rc = SQLITE_OK;
    if (!q->purge_table) {
        rc = exec_rc(q->db, "CREATE TEMP TABLE IF NOT EXISTS purge_ids(trace_id TEXT PRIMARY KEY)");
        if (rc != SQLITE_OK)
            return sq_error(s, q->db, rc, "preparing a purge", msg, msgcap);
        q->purge_table = true;
    }
    sqlite3_stmt *pick;
    rc = run(q, Q_BEGIN);
    if (rc == SQLITE_OK)
        rc = run(q, Q_PURGE_CLEAR);
    if (rc == SQLITE_OK)
        rc = prep(q, Q_PURGE_PICK, &pick);
    if (rc == SQLITE_OK) {
        uint64_t cut = before_ns > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : before_ns;
        sqlite3_bind_int64(pick, 1, (sqlite3_int64)cut);
        sqlite3_bind_int64(pick, 2, (sqlite3_int64)MIN(max_traces, (size_t)INT64_MAX));
        rc = sqlite3_step(pick);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_reset(pick);
    }
    if (rc == SQLITE_OK)
        rc = run(q, Q_PURGE_SCORES);
    if (rc == SQLITE_OK) {
        rc = run(q, Q_PURGE_TRACES);
        if (rc == SQLITE_OK)
            *deleted = (size_t)sqlite3_changes(q->db);
    }
    if (rc == SQLITE_OK)
        rc = run(q, Q_PURGE_CLEAR);
    if (rc == SQLITE_OK)
        rc = run(q, Q_COMMIT);
    if (rc != SQLITE_OK) {
        *deleted = 0;
        err_code e = sq_error(s, q->db, rc, "purging old traces", msg, msgcap);
        rollback(q);
        return e;
    }
    return ERR_OK;
}

static const store_backend sqlite_backend = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .migrate = sq_migrate,
    .put_docs = sq_put_docs,
    .purge = sq_purge,
};
