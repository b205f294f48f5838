/*
 * store.h - the embedded store: one interface, pluggable back ends.
 *
 * A store is opened from a URL; the scheme picks the back end (a vtable,
 * store_backend, as redis's ConnectionType): "sqlite://PATH" now, postgres
 * later. Opening applies the pending schema migrations (migrations.c), each
 * in one transaction, unless the options say not to (`genaiops migrate
 * --dry-run`). The SQLite back end runs in WAL mode with a busy timeout and
 * keeps its prepared statements for the life of the handle.
 *
 * Errors come back as an err_code with a sentence in msg that names the
 * file and the cause: an unwritable path or directory (with errno), a store
 * locked by another process for longer than the busy timeout, a schema newer
 * than this binary ("upgrade genaiops"), a file that is not a database.
 *
 * A handle is used by one thread at a time (the trace writer has its own;
 * queries open their own read-only connections).
 */
#ifndef GENAIOPS_STORE_H
#define GENAIOPS_STORE_H

#include "core/common.h"
#include "core/err.h"
#include "observe/trace.h"

typedef struct store store;

#define STORE_DEFAULT_URL "sqlite://./genaiops.db"
#define STORE_BUSY_TIMEOUT_MS 5000

typedef struct store_opts {
    int busy_timeout_ms;   /* wait for another process's lock; 0 = STORE_BUSY_TIMEOUT_MS */
    bool no_migrate;       /* open at whatever version the file has (inspection, dry runs) */
    bool read_only;        /* never create or write the file (implies no_migrate) */
    uint64_t max_bytes;    /* refuse to grow the database past this (SQLITE_FULL); 0 = no cap */
} store_opts;

/* One schema step (migrations.c): brings version-1 to version. */
typedef struct store_migration {
    int version;
    const char *name;
    const char *sql;
} store_migration;

/* A trace made ready for the store: its JSON texts (the params column and
 * the spans column: an array of {span_id, parent_id, kind, name, start_ns,
 * end_ns, attributes}, attributes via observe/attrs.c) rendered ahead of
 * the transaction, so a writer can render on one thread and write on
 * another. */
typedef struct store_doc {
    const trace_rec *t;                  /* not owned */
    char *json;                          /* owned: the texts, each NUL-terminated */
    int32_t params;                      /* offset of the params object in json, -1 = none sent */
    uint32_t spans;                      /* offset of the spans array */
} store_doc;

#define STORE_DOC_MAX (1u << 20)         /* JSON bytes of one trace at most */

/* The back-end vtable. Each entry gets the generic handle; the back end
 * keeps its own state behind s->impl. */
typedef struct store_backend {
    const char *scheme;    /* "sqlite" */
    err_code (*open)(store *s, const store_opts *o, char *msg, size_t msgcap);
    void (*close)(store *s);
    err_code (*migrate)(store *s, int target, char *msg, size_t msgcap);
    err_code (*put_docs)(store *s, const store_doc *docs, size_t n, char *msg, size_t msgcap);
    err_code (*purge)(store *s, uint64_t before_ns, size_t max_traces, size_t *deleted, char *msg, size_t msgcap);
} store_backend;

struct store {
    const store_backend *be;
    char *url;             /* as given */
    char *path;            /* back-end location (the SQLite file) */
    int version;           /* schema version of the open database */
    void *impl;            /* back-end state */
};

/* url: "sqlite://PATH" (or a bare path). Opens (creating the file if
 * needed) and migrates to the latest version. On error returns it, writes a
 * reason to msg and leaves *out NULL. The caller closes *out. */
err_code store_open(const char *url, store **out, char *msg, size_t msgcap);
/* Same with options; o may be NULL. With read_only, a missing file is
 * ERR_NOTFOUND. */
err_code store_open_opts(const char *url, const store_opts *o, store **out, char *msg, size_t msgcap);
void store_close(store *s);                 /* NULL ok */
const char *store_path(const store *s);
int store_version(const store *s);          /* the file's schema version now */

/* The migration steps (a static table) and the latest version known. */
const store_migration *store_migrations(size_t *n);
int store_latest_version(void);

/* Applies every pending step up to the latest, one transaction each.
 * *from and *to (may be NULL) get the versions before and after; on error
 * *to is the last version that committed. */
err_code store_migrate(store *s, int *from, int *to, char *msg, size_t msgcap);

/* Stores n traces with their spans in one transaction (all or none). The
 * records stay the caller's. ERR_STORE on a database error (SQLITE_FULL,
 * I/O), with the reason in msg. Needs schema version >= 2. */
err_code store_put_traces(store *s, trace_rec *const *recs, size_t n, char *msg, size_t msgcap);

/* Renders t's JSON texts into d (d->t = t; t stays the caller's and must
 * outlive d's use). ERR_NOMEM, or ERR_TOOBIG past STORE_DOC_MAX. Release
 * with store_doc_clear (also safe on a zeroed or failed d). */
err_code store_doc_render(const trace_rec *t, store_doc *d);
void store_doc_clear(store_doc *d);
/* store_put_traces for rendered docs: one transaction, all or none. */
err_code store_put_docs(store *s, const store_doc *docs, size_t n, char *msg, size_t msgcap);

/* Deletes up to max_traces of the oldest traces that started before
 * before_ns, with their spans and scores, in one transaction; *deleted gets
 * how many traces went (fewer than max_traces: nothing older is left). */
err_code store_purge(store *s, uint64_t before_ns, size_t max_traces, size_t *deleted, char *msg, size_t msgcap);

/* The names stored in spans.kind: "request", "attempt", "guardrail", "prompt". */
const char *store_span_kind_name(span_kind k);

#endif
