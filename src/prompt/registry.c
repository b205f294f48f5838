/*
 * registry.c - the prompt registry on the SQLite store (schema version 4:
 * prompts, prompt_versions, prompt_labels, prompt_label_moves; see
 * docs/internals/prompts.md).
 *
 * How it works:
 *  - Connections: the first call for a store URL opens it once with
 *    store_open, which applies pending migrations (or refuses, e.g. a store
 *    newer than this binary, with the store's own sentence). After that,
 *    calls borrow read-write connections from a small process-wide pool of
 *    idle ones (at most POOL_IDLE_MAX), each with a busy timeout, so a call
 *    waits for another writer instead of failing.
 *  - Writes (a save, a push, a label move, a rollback) run in one
 *    BEGIN IMMEDIATE transaction: the write lock is taken before anything
 *    is read, so two savers can never both read latest = N and both write
 *    N + 1, and a second saver of identical content sees the first one's
 *    version and its hash and creates nothing. Every transaction that
 *    creates a version or moves a label bumps genaiops_meta 'prompts.rev'.
 *  - Reads run in one (deferred) read transaction, so a result is one
 *    consistent snapshot even while writers commit.
 *  - Input is checked before any transaction: names, labels, the messages'
 *    shape, sizes, UTF-8, and every template compiled with tpl_compile. The
 *    content hash is SHA-256 over the canonical JSON
 *    {"config":...,"template":...,"type":...} (sorted keys, compact).
 *  - Rollback undoes label moves like an undo stack: the label's moves are
 *    walked newest first; each rollback row cancels the next earlier move
 *    that is not a rollback; the first move left uncancelled is the one a
 *    new rollback undoes (the label goes back to its from_version).
 */
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "core/buf.h"
#include "prompt/diff.h"
#include "core/jscan.h"
#include "prompt/registry.h"
#include "prompt/template.h"
#include "store/store.h"

#define POOL_IDLE_MAX 8
#define MIGRATED_MAX 32
#define BUSY_TIMEOUT_MS 5000
#define TEMPLATE_MAX (1u << 20)      /* bytes of a template, or of a chat prompt's messages as JSON */
#define CONFIG_MAX (256u << 10)      /* bytes of the config as compact JSON */
#define COMMIT_MESSAGE_MAX 4096
#define AUTHOR_MAX 200
#define MESSAGES_MAX 1000            /* messages in a chat prompt */
#define ROLE_MAX 64
#define SAVE_LABELS_MAX 64           /* labels one save may move */
#define PUSH_MAX 10000               /* prompts in one push */

/* ---- errors ---- */


static err_code fail_nomem(query_error *e) { return query_fail(e, 500, NULL, "out_of_memory", "out of memory"); }


/* Puts "prefix: " in front of e->message (keeps what fits). */
static void error_prefix(query_error *e, const char *prefix)
{
    char tmp[sizeof e->message + 256];
    snprintf(tmp, sizeof tmp, "%.200s: %s", prefix, e->message);
    size_t n = strlen(tmp);
    if (n >= sizeof e->message)
        n = sizeof e->message - 1;
    memcpy(e->message, tmp, n);
    e->message[n] = '\0';
}

/* A short printable copy of possibly hostile text for messages: bytes
 * outside printable ASCII become '?', long text is cut with "...". */
static const char *shown(const char *s, char *out, size_t cap)
{
    size_t n = 0, i = 0;
    for (; s[i] && n + 4 < cap && i < 80; i++)
        out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i] && n + 4 <= cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}


/* ---- time ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ISO 8601 UTC with milliseconds: "2026-11-21T10:00:00.000Z". */
static void iso_time(int64_t ns, char out[80])
{
    int64_t sec = ns / 1000000000, rem = ns % 1000000000;
    if (rem < 0) {
        rem += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 80, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, 80, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / 1000000));
}

static int json_set_time(json_t *o, const char *ns_key, const char *iso_key, int64_t ns)
{
    char iso[80];
    iso_time(ns, iso);
    return json_object_set_new(o, ns_key, json_integer(ns)) | json_object_set_new(o, iso_key, json_string(iso));
}

/* ---- connections ---- */

typedef struct idle_conn {
    sqlite3 *db;
    char *url;
} idle_conn;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t migrate_mu = PTHREAD_MUTEX_INITIALIZER;
static idle_conn idle[POOL_IDLE_MAX];
static char *migrated[MIGRATED_MAX];

static const char *url_path(const char *url)
{
    if (strncmp(url, "sqlite://", 9) == 0)
        return url + 9;
    if (strstr(url, "://"))
        return NULL;
    return url;
}

/* Opens url once per process with store_open so its schema is current. */
static err_code ensure_migrated(const char *url, query_error *e)
{
    err_code r = ERR_OK;
    pthread_mutex_lock(&migrate_mu);
    for (int i = 0; i < MIGRATED_MAX; i++)
        if (migrated[i] && strcmp(migrated[i], url) == 0)
            goto out;
    store *s = NULL;
    char msg[512] = "";
    if (store_open(url, &s, msg, sizeof msg) != ERR_OK) {
        r = query_fail(e, 503, NULL, "store_unavailable", "%s", msg[0] ? msg : "cannot open the store");
        goto out;
    }
    store_close(s);
    for (int i = 0; i < MIGRATED_MAX; i++)
        if (!migrated[i]) {
            migrated[i] = strdup(url);
            break;
        }
out:
    pthread_mutex_unlock(&migrate_mu);
    return r;
}

/* Takes an idle connection for url or opens one (after making sure the
 * store is migrated). */
static err_code conn_get(const char *url, sqlite3 **out, query_error *e)
{
    *out = NULL;
    if (!url || !*url)
        return query_fail(e, 500, NULL, "store_error", "no store url");
    const char *path = url_path(url);
    if (!path || !*path)
        return query_fail(e, 500, NULL, "store_error", "store url '%.200s' is not supported (use sqlite://PATH)", url);
    err_code r = ensure_migrated(url, e);
    if (r)
        return r;
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; i < POOL_IDLE_MAX; i++)
        if (idle[i].db && strcmp(idle[i].url, url) == 0) {
            *out = idle[i].db;
            free(idle[i].url);
            idle[i] = (idle_conn){ 0 };
            pthread_mutex_unlock(&pool_mu);
            return ERR_OK;
        }
    pthread_mutex_unlock(&pool_mu);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        r = query_fail(e, 503, NULL, "store_unavailable", "cannot open the store %.200s: %s", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return r;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    *out = db;
    return ERR_OK;
}

/* Gives a connection back (rolling back anything left open), or closes it
 * when the pool is full. */
static void conn_put(const char *url, sqlite3 *db)
{
    if (!db)
        return;
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    char *copy = strdup(url);
    pthread_mutex_lock(&pool_mu);
    for (int i = 0; copy && i < POOL_IDLE_MAX; i++)
        if (!idle[i].db) {
            idle[i] = (idle_conn){ db, copy };
            db = NULL;
            copy = NULL;
            break;
        }
    pthread_mutex_unlock(&pool_mu);
    free(copy);
    sqlite3_close(db);
}

static err_code tx_begin(sqlite3 *db, bool write, query_error *e)
{
    if (sqlite3_exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return query_fail_db(e, db, write ? "starting a write transaction" : "starting a read");
    return ERR_OK;
}

static err_code tx_commit(sqlite3 *db, query_error *e)
{
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        err_code r = query_fail_db(e, db, "committing");
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
    }
    return ERR_OK;
}

static void tx_end_read(sqlite3 *db)
{
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

/* Prepares sql and binds the arguments described by fmt: 's' a string
 * (NULL binds NULL), 'i' an int, 'I' an int64. NULL on failure (e set). */
static sqlite3_stmt *stmt(sqlite3 *db, query_error *e, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        query_fail_db(e, db, "preparing a query");
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    int rc = SQLITE_OK;
    for (int i = 0; fmt && fmt[i] && rc == SQLITE_OK; i++) {
        switch (fmt[i]) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i': rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int)); break;
        case 'I': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        default: rc = SQLITE_MISUSE; break;
        }
    }
    va_end(ap);
    if (rc != SQLITE_OK) {
        query_fail_db(e, db, "binding a query");
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Runs a statement that returns no rows and finalizes it. */
static err_code exec_stmt(sqlite3 *db, sqlite3_stmt *st, const char *what, query_error *e)
{
    if (!st)
        return ERR_STORE;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return query_fail_db(e, db, what);
    return ERR_OK;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

static err_code bump_revision(sqlite3 *db, query_error *e)
{
    return exec_stmt(db,
                     stmt(db, e,
                          "INSERT INTO genaiops_meta(key,value) VALUES('prompts.rev','1') "
                          "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER)+1",
                          NULL),
                     "bumping the prompt revision", e);
}

/* ---- names, labels, refs ---- */

static const char *const reserved_words[] = { "versions", "labels", "history", "diff", "render", "rollback", "run" };

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

bool prompt_name_valid(const char *name, query_error *e)
{
    char show[100];
    if (!name || !*name) {
        query_fail(e, 400, "name", "invalid_prompt_name", "the prompt name is empty");
        return false;
    }
    size_t n = strlen(name);
    if (n > PROMPT_NAME_MAX) {
        query_fail(e, 400, "name", "invalid_prompt_name", "the prompt name '%s' is longer than %d bytes",
             shown(name, show, sizeof show), PROMPT_NAME_MAX);
        return false;
    }
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || name[i] == '/') {
            size_t len = i - seg;
            const char *s = name + seg;
            if (len == 0) {
                query_fail(e, 400, "name", "invalid_prompt_name", "the prompt name '%s' has an empty segment",
                     shown(name, show, sizeof show));
                return false;
            }
            if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
                query_fail(e, 400, "name", "invalid_prompt_name", "the prompt name '%s' has a '%.*s' segment",
                     shown(name, show, sizeof show), (int)len, s);
                return false;
            }
            if (i == n)
                for (size_t k = 0; k < countof(reserved_words); k++)
                    if (strlen(reserved_words[k]) == len && memcmp(reserved_words[k], s, len) == 0) {
                        query_fail(e, 400, "name", "invalid_prompt_name",
                             "the prompt name '%s' ends with '%s', a word the REST paths use after a name",
                             shown(name, show, sizeof show), reserved_words[k]);
                        return false;
                    }
            seg = i + 1;
            continue;
        }
        unsigned char c = (unsigned char)name[i];
        if (!name_char(c)) {
            if (c >= 0x20 && c < 0x7f)
                query_fail(e, 400, "name", "invalid_prompt_name",
                     "the prompt name '%s' has the character '%c' (use A-Z a-z 0-9 . _ - and '/' between segments)",
                     shown(name, show, sizeof show), c);
            else
                query_fail(e, 400, "name", "invalid_prompt_name",
                     "the prompt name '%s' has the byte 0x%02x (use A-Z a-z 0-9 . _ - and '/' between segments)",
                     shown(name, show, sizeof show), c);
            return false;
        }
    }
    return true;
}

bool prompt_label_valid(const char *label, query_error *e)
{
    char show[100];
    if (!label || !*label) {
        query_fail(e, 400, "label", "invalid_label", "the label is empty");
        return false;
    }
    size_t n = strlen(label);
    if (n > PROMPT_LABEL_MAX) {
        query_fail(e, 400, "label", "invalid_label", "the label '%s' is longer than %d bytes", shown(label, show, sizeof show),
             PROMPT_LABEL_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)label[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok) {
            query_fail(e, 400, "label", "invalid_label",
                 "the label '%s' is not valid: labels are a-z 0-9 . _ - (starting with a letter or digit), at most %d",
                 shown(label, show, sizeof show), PROMPT_LABEL_MAX);
            return false;
        }
    }
    return true;
}

bool prompt_ref_parse(const char *s, prompt_ref *ref, query_error *e)
{
    char show[100];
    memset(ref, 0, sizeof *ref);
    if (!s || !*s) {
        query_fail(e, 400, "ref", "invalid_prompt_ref", "the prompt reference is empty (use NAME, NAME@LABEL or NAME:VERSION)");
        return false;
    }
    size_t n = strlen(s), cut = strcspn(s, "@:");
    if (cut > PROMPT_NAME_MAX) {
        query_fail(e, 400, "ref", "invalid_prompt_ref", "the prompt name in '%s' is longer than %d bytes",
             shown(s, show, sizeof show), PROMPT_NAME_MAX);
        return false;
    }
    memcpy(ref->name, s, cut);
    ref->name[cut] = '\0';
    if (!prompt_name_valid(ref->name, e))
        goto bad;
    if (cut == n)
        return true;
    const char *rest = s + cut + 1;
    if (s[cut] == '@') {
        if (strlen(rest) > PROMPT_LABEL_MAX || !prompt_label_valid(rest, e)) {
            if (strlen(rest) > PROMPT_LABEL_MAX)
                query_fail(e, 400, "ref", "invalid_prompt_ref", "the label in '%s' is longer than %d bytes",
                     shown(s, show, sizeof show), PROMPT_LABEL_MAX);
            goto bad;
        }
        memcpy(ref->label, rest, strlen(rest) + 1);
        return true;
    }
    long v = 0;
    bool ok = *rest != '\0';
    for (const char *p = rest; *p && ok; p++) {
        if (*p < '0' || *p > '9' || v > (INT_MAX - 9) / 10)
            ok = false;
        else
            v = v * 10 + (*p - '0');
    }
    if (!ok || v < 1) {
        query_fail(e, 400, "ref", "invalid_prompt_ref", "the version in '%s' is not a positive number",
             shown(s, show, sizeof show));
        goto bad;
    }
    ref->version = (int)v;
    return true;
bad:
    snprintf(e->code, sizeof e->code, "invalid_prompt_ref");
    snprintf(e->param, sizeof e->param, "ref");
    memset(ref, 0, sizeof *ref);
    return false;
}

/* ---- templates ---- */

/* Compiles one template; on a syntax error fills e (400 template_error)
 * naming the line/column and, for chat, the message (idx 1-based). */
static err_code check_template(const char *src, size_t len, int idx, const char *role, query_error *e)
{
    tpl *t = NULL;
    tpl_error te;
    memset(&te, 0, sizeof te);
    err_code r = tpl_compile(src, len, &t, &te);
    if (r == ERR_OK) {
        tpl_free(t);
        return ERR_OK;
    }
    if (r == ERR_NOMEM)
        return fail_nomem(e);
    if (idx > 0) {
        char show[100];
        return query_fail(e, 400, "messages", "template_error", "template error in message %d (%s) at line %d, column %d: %s",
                    idx, shown(role, show, sizeof show), te.line, te.col, te.message);
    }
    return query_fail(e, 400, "template", "template_error", "template error at line %d, column %d: %s", te.line, te.col,
                te.message);
}

/* Adds t's variables to the set `vars` (an object used as a set). */
static void add_variables(json_t *vars, const char *src, size_t len)
{
    tpl *t = NULL;
    tpl_error te;
    if (tpl_compile(src, len, &t, &te) != ERR_OK)
        return;
    json_t *a = tpl_variables(t);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
        if (json_is_string(v))
            json_object_set_new(vars, json_string_value(v), json_true());
    json_decref(a);
    tpl_free(t);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The sorted variable names of a text template or a messages array. */
static json_t *variables_of(const char *type, const char *text, const json_t *messages)
{
    json_t *set = json_object(), *out = json_array();
    if (!set || !out)
        goto out;
    if (strcmp(type, "chat") == 0) {
        size_t i;
        json_t *m;
        json_array_foreach(messages, i, m) {
            json_t *c = json_object_get(m, "content");
            if (json_is_string(c))
                add_variables(set, json_string_value(c), json_string_length(c));
        }
    } else {
        add_variables(set, text, strlen(text));
    }
    size_t n = json_object_size(set), k = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    if (!names)
        goto out;
    const char *key;
    json_t *v;
    json_object_foreach(set, key, v) names[k++] = key;
    qsort(names, k, sizeof *names, cmp_str);
    for (size_t i = 0; i < k; i++)
        json_array_append_new(out, json_string(names[i]));
    free(names);
out:
    json_decref(set);
    return out;
}

/* ---- input checks and the content hash ---- */

typedef struct prepared {
    const prompt_input *in;
    const char *type;            /* "text" | "chat" */
    char *stored;                /* the template column: the text, or the messages as compact JSON */
    char *config;                /* compact JSON, sorted keys */
    char hash[80];               /* "sha256:" + 64 hex */
} prepared;

static void prepared_clear(prepared *p)
{
    free(p->stored);
    free(p->config);
    memset(p, 0, sizeof *p);
}

static err_code sha256_hex(const char *data, size_t len, char out[80], query_error *e)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        return query_fail(e, 500, NULL, "store_error", "cannot compute the content hash (OpenSSL)");
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[71] = '\0';
    return ERR_OK;
}

/* The content hash of (type, template-or-messages, config): SHA-256 over
 * {"config":..,"template":..,"type":..} dumped compact with sorted keys. */
static err_code content_hash(const char *type, json_t *tmpl, json_t *config, char out[80], query_error *e)
{
    json_t *canon = json_object();
    if (!canon)
        return fail_nomem(e);
    json_object_set(canon, "config", config);
    json_object_set(canon, "template", tmpl);
    json_object_set_new(canon, "type", json_string(type));
    char *s = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(canon);
    if (!s)
        return fail_nomem(e);
    err_code r = sha256_hex(s, strlen(s), out, e);
    free(s);
    return r;
}

static err_code check_text(const char *s, size_t max, const char *param, const char *what, query_error *e)
{
    if (!s)
        return ERR_OK;
    size_t n = strlen(s);
    if (n > max)
        return query_fail(e, 400, param, "invalid_prompt", "the %s is longer than %zu bytes", what, max);
    if (jscan_utf8_prefix(s, n) != n)
        return query_fail(e, 400, param, "invalid_prompt", "the %s is not valid UTF-8", what);
    return ERR_OK;
}

/* Checks one input and computes what gets stored. p is cleared first;
 * release with prepared_clear. */
static err_code prepare(const prompt_input *in, prepared *p, query_error *e)
{
    memset(p, 0, sizeof *p);
    p->in = in;
    json_t *tmpl = NULL, *config = NULL;
    err_code r = ERR_OK;
    if (!in)
        return query_fail(e, 400, NULL, "invalid_prompt", "no prompt given");
    if (!prompt_name_valid(in->name, e))
        return ERR_INVAL;
    if ((r = check_text(in->message, COMMIT_MESSAGE_MAX, "message", "commit message", e)) ||
        (r = check_text(in->author, AUTHOR_MAX, "author", "author", e)))
        return r;
    if (in->nlabels > SAVE_LABELS_MAX)
        return query_fail(e, 400, "labels", "invalid_label", "at most %d labels per save", SAVE_LABELS_MAX);
    for (size_t i = 0; i < in->nlabels; i++) {
        if (!prompt_label_valid(in->labels[i], e))
            return ERR_INVAL;
        if (strcmp(in->labels[i], "latest") == 0)
            return query_fail(e, 400, "labels", "invalid_label", "the label 'latest' always points at the newest version "
                                                           "and cannot be set");
    }
    if (in->type == PROMPT_TEXT) {
        p->type = "text";
        if (!in->template)
            return query_fail(e, 400, "template", "invalid_prompt", "a text prompt needs a template");
        if (in->messages)
            return query_fail(e, 400, "messages", "invalid_prompt", "a text prompt has a template, not messages");
        size_t n = strlen(in->template);
        if (n > TEMPLATE_MAX)
            return query_fail(e, 400, "template", "invalid_prompt", "the template is longer than %u bytes", TEMPLATE_MAX);
        if ((r = check_template(in->template, n, 0, NULL, e)))
            return r;
        tmpl = json_stringn(in->template, n);
        if (!tmpl)
            return query_fail(e, 400, "template", "invalid_prompt", "the template is not valid UTF-8");
        p->stored = strdup(in->template);
    } else if (in->type == PROMPT_CHAT) {
        p->type = "chat";
        if (in->template)
            return query_fail(e, 400, "template", "invalid_prompt", "a chat prompt has messages, not a template");
        if (!json_is_array(in->messages) || json_array_size(in->messages) == 0)
            return query_fail(e, 400, "messages", "invalid_prompt", "a chat prompt needs a non-empty array of messages");
        if (json_array_size(in->messages) > MESSAGES_MAX)
            return query_fail(e, 400, "messages", "invalid_prompt", "a chat prompt has at most %d messages", MESSAGES_MAX);
        size_t i;
        json_t *m;
        json_array_foreach(in->messages, i, m) {
            json_t *role = json_object_get(m, "role"), *content = json_object_get(m, "content");
            if (!json_is_object(m))
                return query_fail(e, 400, "messages", "invalid_prompt", "message %zu is not an object", i + 1);
            if (!json_is_string(role) || json_string_length(role) == 0 || json_string_length(role) > ROLE_MAX)
                return query_fail(e, 400, "messages", "invalid_prompt",
                            "message %zu needs a \"role\" (a non-empty string of at most %d bytes)", i + 1, ROLE_MAX);
            if (!json_is_string(content))
                return query_fail(e, 400, "messages", "invalid_prompt", "message %zu (%s) needs a string \"content\"", i + 1,
                            json_string_value(role));
            if ((r = check_template(json_string_value(content), json_string_length(content), (int)i + 1,
                                    json_string_value(role), e)))
                return r;
        }
        tmpl = json_deep_copy(in->messages);
        if (!tmpl)
            return fail_nomem(e);
        p->stored = json_dumps(tmpl, JSON_COMPACT | JSON_REAL_PRECISION(15));
        if (p->stored && strlen(p->stored) > TEMPLATE_MAX) {
            r = query_fail(e, 400, "messages", "invalid_prompt", "the messages are longer than %u bytes", TEMPLATE_MAX);
            goto out;
        }
    } else {
        return query_fail(e, 400, "type", "invalid_prompt", "the prompt type must be text or chat");
    }
    if (!p->stored) {
        r = fail_nomem(e);
        goto out;
    }
    if (in->config && !json_is_object(in->config)) {
        r = query_fail(e, 400, "config", "invalid_prompt", "the config must be a JSON object");
        goto out;
    }
    config = in->config ? json_deep_copy(in->config) : json_object();
    if (!config) {
        r = fail_nomem(e);
        goto out;
    }
    p->config = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    if (!p->config) {
        r = fail_nomem(e);
        goto out;
    }
    if (strlen(p->config) > CONFIG_MAX) {
        r = query_fail(e, 400, "config", "invalid_prompt", "the config is longer than %u bytes as JSON", CONFIG_MAX);
        goto out;
    }
    r = content_hash(p->type, tmpl, config, p->hash, e);
out:
    json_decref(tmpl);
    json_decref(config);
    if (r)
        prepared_clear(p);
    return r;
}

/* ---- reading versions ---- */

/* The labels pointing at (name, version), "latest" first when it is the
 * newest. */
static err_code labels_of(sqlite3 *db, const char *name, int version, int latest, json_t *arr, query_error *e)
{
    if (version == latest)
        json_array_append_new(arr, json_string("latest"));
    sqlite3_stmt *st = stmt(db, e, "SELECT label FROM prompt_labels WHERE name=? AND version=? ORDER BY label", "si",
                            name, version);
    if (!st)
        return ERR_STORE;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, json_string(col_text(st, 0)));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? ERR_OK : query_fail_db(e, db, "reading labels");
}

/* Parses the template column into the version JSON's "template" or
 * "messages", and the config column into "config". */
static err_code put_content(json_t *o, const char *type, const char *tmpl, const char *config, query_error *e)
{
    if (strcmp(type, "chat") == 0) {
        json_t *msgs = json_loads(tmpl, JSON_DECODE_ANY, NULL);
        if (!json_is_array(msgs)) {
            json_decref(msgs);
            return query_fail(e, 500, NULL, "store_error", "a stored chat prompt has messages that are not a JSON array");
        }
        json_object_set_new(o, "messages", msgs);
    } else {
        json_object_set_new(o, "template", json_string(tmpl));
    }
    json_t *c = json_loads(config, 0, NULL);
    if (!json_is_object(c)) {
        json_decref(c);
        c = json_object();
    }
    json_object_set_new(o, "config", c);
    return ERR_OK;
}

/* The version JSON of registry.h for (name, version); 404 when missing. */
static err_code version_json(sqlite3 *db, const char *name, int version, json_t **out, query_error *e)
{
    *out = NULL;
    char show[100];
    sqlite3_stmt *st = stmt(db, e,
                            "SELECT v.type, v.template, v.config, v.hash, v.message, v.author, v.created_ns, p.latest "
                            "FROM prompt_versions v JOIN prompts p ON p.name = v.name WHERE v.name=? AND v.version=?",
                            "si", name, version);
    if (!st)
        return ERR_STORE;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return query_fail_db(e, db, "reading a version");
        return query_fail(e, 404, "version", "version_not_found", "prompt '%s' has no version %d",
                    shown(name, show, sizeof show), version);
    }
    err_code r = ERR_OK;
    json_t *o = json_object();
    if (!o) {
        sqlite3_finalize(st);
        return fail_nomem(e);
    }
    const char *type = col_text(st, 0);
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "version", json_integer(version));
    json_object_set_new(o, "type", json_string(type));
    if ((r = put_content(o, type, col_text(st, 1), col_text(st, 2), e)))
        goto out;
    json_object_set_new(o, "hash", json_string(col_text(st, 3)));
    json_object_set_new(o, "message", sqlite3_column_type(st, 4) == SQLITE_NULL ? json_null()
                                                                                : json_string(col_text(st, 4)));
    json_object_set_new(o, "author", json_string(col_text(st, 5)));
    json_set_time(o, "created_ns", "created_at", sqlite3_column_int64(st, 6));
    int latest = sqlite3_column_int(st, 7);
    json_t *labels = json_array();
    json_object_set_new(o, "labels", labels);
    if ((r = labels_of(db, name, version, latest, labels, e)))
        goto out;
    json_object_set_new(o, "variables",
                        variables_of(type, json_string_value(json_object_get(o, "template")),
                                     json_object_get(o, "messages")));
out:
    sqlite3_finalize(st);
    if (r) {
        json_decref(o);
        return r;
    }
    *out = o;
    return ERR_OK;
}

/* The latest version and type of a prompt: ERR_NOTFOUND (e filled, 404
 * prompt_not_found) when there is none. */
static err_code prompt_row(sqlite3 *db, const char *name, int *latest, char type[8], query_error *e)
{
    char show[100];
    sqlite3_stmt *st = stmt(db, e, "SELECT latest, type FROM prompts WHERE name=?", "s", name);
    if (!st)
        return ERR_STORE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *latest = sqlite3_column_int(st, 0);
        if (type)
            snprintf(type, 8, "%s", col_text(st, 1));
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return query_fail(e, 404, "name", "prompt_not_found", "prompt '%s' not found", shown(name, show, sizeof show));
    if (rc != SQLITE_ROW)
        return query_fail_db(e, db, "reading a prompt");
    return ERR_OK;
}

/* The version a label points at: 404 label_not_found when unset. */
static err_code label_version(sqlite3 *db, const char *name, const char *label, int *version, query_error *e)
{
    char show[100], show2[100];
    sqlite3_stmt *st = stmt(db, e, "SELECT version FROM prompt_labels WHERE name=? AND label=?", "ss", name, label);
    if (!st)
        return ERR_STORE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return query_fail(e, 404, "label", "label_not_found", "prompt '%s' has no label '%s'", shown(name, show, sizeof show),
                    shown(label, show2, sizeof show2));
    if (rc != SQLITE_ROW)
        return query_fail_db(e, db, "reading a label");
    return ERR_OK;
}

/* Resolves a ref to a version number inside the current transaction. */
static err_code resolve(sqlite3 *db, const prompt_ref *ref, int *version, query_error *e)
{
    if (!prompt_name_valid(ref->name, e))
        return ERR_INVAL;
    if (ref->label[0] && ref->version > 0)
        return query_fail(e, 400, "ref", "invalid_prompt_ref", "give a label or a version, not both");
    if (ref->version < 0)
        return query_fail(e, 400, "version", "invalid_prompt_ref", "the version must be a positive number");
    int latest = 0;
    err_code r = prompt_row(db, ref->name, &latest, NULL, e);
    if (r)
        return r;
    if (ref->version > 0) {
        char show[100];
        if (ref->version > latest)
            return query_fail(e, 404, "version", "version_not_found", "prompt '%s' has no version %d",
                        shown(ref->name, show, sizeof show), ref->version);
        *version = ref->version;
        return ERR_OK;
    }
    if (ref->label[0] && strcmp(ref->label, "latest") != 0) {
        if (!prompt_label_valid(ref->label, e))
            return ERR_INVAL;
        return label_version(db, ref->name, ref->label, version, e);
    }
    *version = latest;
    return ERR_OK;
}

/* ---- saving ---- */

/* Points label at version if it is elsewhere, recording the move. *moved
 * says whether it did; *previous gets the old version (0 = none). */
static err_code move_label(sqlite3 *db, const char *name, const char *label, int version, const char *who,
                           const char *reason, int64_t now, int *previous, bool *moved, query_error *e)
{
    int prev = 0;
    *moved = false;
    err_code r = label_version(db, name, label, &prev, e);
    if (r == ERR_NOTFOUND)
        prev = 0;
    else if (r)
        return r;
    if (previous)
        *previous = prev;
    if (prev == version)
        return ERR_OK;
    if ((r = exec_stmt(db,
                       stmt(db, e,
                            "INSERT INTO prompt_labels(name,label,version,updated_ns,updated_by) VALUES(?,?,?,?,?) "
                            "ON CONFLICT(name,label) DO UPDATE SET version=excluded.version, "
                            "updated_ns=excluded.updated_ns, updated_by=excluded.updated_by",
                            "ssiIs", name, label, version, now, who),
                       "moving a label", e)))
        return r;
    sqlite3_stmt *st = stmt(db, e,
                            "INSERT INTO prompt_label_moves(name,label,from_version,to_version,who,at_ns,reason) "
                            "VALUES(?,?,?,?,?,?,?)",
                            "ssiisIs", name, label, prev, version, who, now, reason);
    if (st && prev == 0)
        sqlite3_bind_null(st, 3);
    if ((r = exec_stmt(db, st, "recording a label move", e)))
        return r;
    if ((r = exec_stmt(db, stmt(db, e, "UPDATE prompts SET updated_ns=? WHERE name=?", "Is", now, name),
                       "updating a prompt", e)))
        return r;
    *moved = true;
    return ERR_OK;
}

/* Applies one prepared input inside the open write transaction. */
static err_code apply(sqlite3 *db, const prepared *p, int64_t now, int *version, bool *created, bool *changed,
                      query_error *e)
{
    const prompt_input *in = p->in;
    const char *author = in->author && *in->author ? in->author : "unknown";
    char type[8] = "", show[100];
    int latest = 0;
    *created = false;
    err_code r = prompt_row(db, in->name, &latest, type, e);
    if (r && r != ERR_NOTFOUND)
        return r;
    bool exists = r == ERR_OK;
    bool same = false;
    if (exists) {
        if (strcmp(type, p->type) != 0)
            return query_fail(e, 409, "type", "type_changed",
                        "prompt '%s' is a %s prompt; a %s prompt cannot replace it (use another name)",
                        shown(in->name, show, sizeof show), type, p->type);
        sqlite3_stmt *st = stmt(db, e, "SELECT hash FROM prompt_versions WHERE name=? AND version=?", "si", in->name,
                                latest);
        if (!st)
            return ERR_STORE;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            same = strcmp(col_text(st, 0), p->hash) == 0;
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return query_fail_db(e, db, "reading the latest version");
    }
    if (same) {
        *version = latest;
    } else {
        *version = latest + 1;
        if ((r = exec_stmt(db,
                           stmt(db, e,
                                "INSERT INTO prompt_versions(name,version,type,template,config,hash,message,author,"
                                "created_ns) VALUES(?,?,?,?,?,?,?,?,?)",
                                "sissssssI", in->name, *version, p->type, p->stored, p->config, p->hash, in->message,
                                author, now),
                           "saving a version", e)))
            return r;
        if (exists)
            r = exec_stmt(db, stmt(db, e, "UPDATE prompts SET latest=?, updated_ns=? WHERE name=?", "iIs", *version,
                                   now, in->name),
                          "updating a prompt", e);
        else
            r = exec_stmt(db,
                          stmt(db, e, "INSERT INTO prompts(name,type,latest,created_ns,updated_ns) VALUES(?,?,?,?,?)",
                               "ssiII", in->name, p->type, *version, now, now),
                          "creating a prompt", e);
        if (r)
            return r;
        *created = true;
        *changed = true;
    }
    for (size_t i = 0; i < in->nlabels; i++) {
        bool moved = false;
        if ((r = move_label(db, in->name, in->labels[i], *version, author, "push", now, NULL, &moved, e)))
            return r;
        if (moved)
            *changed = true;
    }
    return ERR_OK;
}

/* Names the failed input in e's message: its source, else its name. */
static void name_input(query_error *e, const prompt_input *in)
{
    char show[100];
    if (in && in->source && *in->source)
        error_prefix(e, shown(in->source, show, sizeof show));
    else if (in && in->name && e->param[0] && strcmp(e->param, "name") != 0)
        error_prefix(e, shown(in->name, show, sizeof show));
}

err_code prompt_save(const char *url, const prompt_input *in, json_t **out, bool *created, query_error *e)
{
    *out = NULL;
    if (created)
        *created = false;
    prepared p;
    err_code r = prepare(in, &p, e);
    if (r) {
        if (in && in->source && *in->source)
            name_input(e, in);
        return r;
    }
    sqlite3 *db = NULL;
    if ((r = conn_get(url, &db, e)))
        goto out;
    if ((r = tx_begin(db, true, e)))
        goto out;
    int version = 0;
    bool made = false, changed = false;
    if ((r = apply(db, &p, now_ns(), &version, &made, &changed, e)))
        goto out;
    if (changed && (r = bump_revision(db, e)))
        goto out;
    if ((r = version_json(db, in->name, version, out, e)))
        goto out;
    if ((r = tx_commit(db, e))) {
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    if (created)
        *created = made;
out:
    if (r && in->source && *in->source)
        name_input(e, in);
    conn_put(url, db);
    prepared_clear(&p);
    return r;
}

static const prompt_input *sort_base;
static int cmp_input_name(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(sort_base[i].name, sort_base[j].name);
    return c ? c : (i < j ? -1 : i > j);
}

/* Finds two inputs with the same name (after every name was checked). */
static err_code check_duplicates(const prompt_input *in, size_t n, query_error *e)
{
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!idx)
        return fail_nomem(e);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    /* qsort has no context argument in C17; a sorted copy of the names
     * would cost more memory, so the base goes through a lock. */
    static pthread_mutex_t sort_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&sort_mu);
    sort_base = in;
    qsort(idx, n, sizeof *idx, cmp_input_name);
    sort_base = NULL;
    pthread_mutex_unlock(&sort_mu);
    err_code r = ERR_OK;
    for (size_t k = 1; k < n; k++)
        if (strcmp(in[idx[k - 1]].name, in[idx[k]].name) == 0) {
            const prompt_input *a = &in[idx[k - 1]], *b = &in[idx[k]];
            char show[100], s1[100], s2[100];
            r = query_fail(e, 400, "name", "duplicate_prompt", "prompt '%s' is given twice (%s and %s)",
                     shown(a->name, show, sizeof show), a->source ? shown(a->source, s1, sizeof s1) : "input",
                     b->source ? shown(b->source, s2, sizeof s2) : "another input");
            break;
        }
    free(idx);
    return r;
}

err_code prompt_save_many(const char *url, const prompt_input *in, size_t n, json_t **out, query_error *e)
{
    *out = NULL;
    if (n > PUSH_MAX)
        return query_fail(e, 400, "prompts", "invalid_prompt", "at most %d prompts in one push", PUSH_MAX);
    if (n > 0 && !in)
        return query_fail(e, 400, "prompts", "invalid_prompt", "no prompts given");
    prepared *ps = calloc(n ? n : 1, sizeof *ps);
    json_t *res = json_array();
    sqlite3 *db = NULL;
    err_code r = ERR_OK;
    size_t done = 0;
    if (!ps || !res) {
        r = fail_nomem(e);
        goto out;
    }
    for (; done < n; done++)
        if ((r = prepare(&in[done], &ps[done], e))) {
            name_input(e, &in[done]);
            goto out;
        }
    if ((r = check_duplicates(in, n, e)))
        goto out;
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, true, e)))
        goto out;
    int64_t now = now_ns();
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        int version = 0;
        bool created = false;
        if ((r = apply(db, &ps[i], now, &version, &created, &changed, e))) {
            name_input(e, &in[i]);
            goto out;
        }
        json_array_append_new(res, json_pack("{s:s, s:i, s:b}", "name", in[i].name, "version", version, "created",
                                             created));
    }
    if (changed && (r = bump_revision(db, e)))
        goto out;
    if ((r = tx_commit(db, e)))
        goto out;
    *out = res;
    res = NULL;
out:
    conn_put(url, db);
    for (size_t i = 0; ps && i < done; i++)
        prepared_clear(&ps[i]);
    free(ps);
    json_decref(res);
    return r;
}

/* ---- reading ---- */

err_code prompt_get(const char *url, const prompt_ref *ref, json_t **out, query_error *e)
{
    *out = NULL;
    if (!ref)
        return query_fail(e, 400, "ref", "invalid_prompt_ref", "no prompt reference given");
    sqlite3 *db = NULL;
    err_code r;
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, false, e)))
        goto out;
    int version = 0;
    if ((r = resolve(db, ref, &version, e)))
        goto out;
    r = version_json(db, ref->name, version, out, e);
out:
    if (db)
        tx_end_read(db);
    conn_put(url, db);
    return r;
}

err_code prompt_list(const char *url, const char *prefix, json_t **out, query_error *e)
{
    *out = NULL;
    if (!prefix)
        prefix = "";
    if (strlen(prefix) > PROMPT_NAME_MAX)
        return query_fail(e, 400, "prefix", "invalid_prompt_name", "the prefix is longer than %d bytes", PROMPT_NAME_MAX);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL, *lst = NULL;
    json_t *arr = json_array();
    err_code r;
    if (!arr)
        return fail_nomem(e);
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, false, e)))
        goto out;
    st = stmt(db, e,
              "SELECT name, type, latest, updated_ns FROM prompts WHERE substr(name, 1, length(?1)) = ?1 "
              "ORDER BY name",
              "s", prefix);
    lst = stmt(db, e, "SELECT label, version FROM prompt_labels WHERE name=? ORDER BY label", NULL);
    if (!st || !lst) {
        r = ERR_STORE;
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = col_text(st, 0);
        json_t *labels = json_object();
        json_t *row = json_pack("{s:s, s:s, s:i, s:o}", "name", name, "type", col_text(st, 1), "latest_version",
                                sqlite3_column_int(st, 2), "labels", labels);
        if (!row) {
            r = fail_nomem(e);
            goto out;
        }
        json_set_time(row, "updated_ns", "updated_at", sqlite3_column_int64(st, 3));
        json_array_append_new(arr, row);
        sqlite3_reset(lst);
        sqlite3_bind_text(lst, 1, name, -1, SQLITE_TRANSIENT);
        int lrc;
        while ((lrc = sqlite3_step(lst)) == SQLITE_ROW)
            json_object_set_new(labels, col_text(lst, 0), json_integer(sqlite3_column_int(lst, 1)));
        if (lrc != SQLITE_DONE) {
            r = query_fail_db(e, db, "listing labels");
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "listing prompts");
        goto out;
    }
    *out = arr;
    arr = NULL;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(lst);
    if (db)
        tx_end_read(db);
    conn_put(url, db);
    json_decref(arr);
    return r;
}

err_code prompt_versions(const char *url, const char *name, json_t **out, query_error *e)
{
    *out = NULL;
    if (!prompt_name_valid(name, e))
        return ERR_INVAL;
    sqlite3 *db = NULL;
    json_t *arr = json_array();
    err_code r;
    if (!arr)
        return fail_nomem(e);
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, false, e)))
        goto out;
    int latest = 0;
    if ((r = prompt_row(db, name, &latest, NULL, e)))
        goto out;
    for (int v = latest; v >= 1; v--) {
        json_t *o = NULL;
        if ((r = version_json(db, name, v, &o, e)))
            goto out;
        json_array_append_new(arr, o);
    }
    *out = arr;
    arr = NULL;
out:
    if (db)
        tx_end_read(db);
    conn_put(url, db);
    json_decref(arr);
    return r;
}

/* ---- labels ---- */

static bool is_protected(const char *label, const char *const *protected_labels, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (protected_labels[i] && strcmp(protected_labels[i], label) == 0)
            return true;
    return false;
}

/* Checks name, label and the protection for a label move. */
static err_code check_move(const char *name, const char *label, bool admin, const char *const *protected_labels,
                           size_t nprotected, query_error *e)
{
    if (!prompt_name_valid(name, e) || !prompt_label_valid(label, e))
        return ERR_INVAL;
    if (strcmp(label, "latest") == 0)
        return query_fail(e, 400, "label", "invalid_label",
                    "the label 'latest' always points at the newest version and cannot be moved");
    if (!admin && is_protected(label, protected_labels, nprotected))
        return query_fail(e, 403, "label", "protected_label", "the label '%s' is protected: moving it needs the admin key",
                    label);
    return ERR_OK;
}

static json_t *move_json(const char *name, const char *label, int version, int previous)
{
    return json_pack("{s:s, s:s, s:i, s:o}", "name", name, "label", label, "version", version, "previous",
                     previous > 0 ? json_integer(previous) : json_null());
}

err_code prompt_label_set(const char *url, const char *name, const char *label, int version, const char *who,
                          bool admin, const char *const *protected_labels, size_t nprotected, json_t **out,
                          query_error *e)
{
    *out = NULL;
    err_code r = check_move(name, label, admin, protected_labels, nprotected, e);
    if (r)
        return r;
    if (version < 0)
        return query_fail(e, 400, "version", "invalid_prompt_ref", "the version must be a positive number");
    if (!who || !*who)
        who = "unknown";
    if ((r = check_text(who, AUTHOR_MAX, "who", "mover's name", e)))
        return r;
    sqlite3 *db = NULL;
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, true, e)))
        goto out;
    prompt_ref ref = { .version = version };
    snprintf(ref.name, sizeof ref.name, "%s", name);
    int target = 0, previous = 0;
    bool moved = false;
    if ((r = resolve(db, &ref, &target, e)))
        goto out;
    if ((r = move_label(db, name, label, target, who, "set", now_ns(), &previous, &moved, e)))
        goto out;
    if (moved && (r = bump_revision(db, e)))
        goto out;
    if ((r = tx_commit(db, e)))
        goto out;
    *out = move_json(name, label, target, previous);
    if (!*out)
        r = fail_nomem(e);
out:
    conn_put(url, db);
    return r;
}

err_code prompt_rollback(const char *url, const char *name, const char *label, const char *who, bool admin,
                         const char *const *protected_labels, size_t nprotected, json_t **out, query_error *e)
{
    *out = NULL;
    if (!label || !*label)
        label = "production";
    err_code r = check_move(name, label, admin, protected_labels, nprotected, e);
    if (r)
        return r;
    if (!who || !*who)
        who = "unknown";
    if ((r = check_text(who, AUTHOR_MAX, "who", "mover's name", e)))
        return r;
    char show[100];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, true, e)))
        goto out;
    int latest = 0, current = 0;
    if ((r = prompt_row(db, name, &latest, NULL, e)) || (r = label_version(db, name, label, &current, e)))
        goto out;
    /* The undo walk: newest first, each rollback cancels the next earlier
     * move that is not itself a rollback. */
    st = stmt(db, e,
              "SELECT from_version, reason FROM prompt_label_moves WHERE name=? AND label=? ORDER BY id DESC", "ss",
              name, label);
    if (!st) {
        r = ERR_STORE;
        goto out;
    }
    int rc, target = -1;
    long skip = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (strcmp(col_text(st, 1), "rollback") == 0) {
            skip++;
            continue;
        }
        if (skip > 0) {
            skip--;
            continue;
        }
        target = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 0);
        break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "reading the label's history");
        goto out;
    }
    if (target <= 0) {
        char show2[100];
        r = query_fail(e, 409, "label", "nothing_to_roll_back",
                 "label '%s' of prompt '%s' has no earlier version to roll back to (it is at version %d)",
                 shown(label, show2, sizeof show2), shown(name, show, sizeof show), current);
        goto out;
    }
    int previous = 0;
    bool moved = false;
    if ((r = move_label(db, name, label, target, who, "rollback", now_ns(), &previous, &moved, e)))
        goto out;
    if (!moved) {
        /* The undone move went from and to the same version: record the
         * rollback anyway so the walk stays in step. */
        r = exec_stmt(db,
                      stmt(db, e,
                           "INSERT INTO prompt_label_moves(name,label,from_version,to_version,who,at_ns,reason) "
                           "VALUES(?,?,?,?,?,?,'rollback')",
                           "ssiisI", name, label, current, target, who, now_ns()),
                      "recording a rollback", e);
        if (r)
            goto out;
    }
    if ((r = bump_revision(db, e)) || (r = tx_commit(db, e)))
        goto out;
    *out = move_json(name, label, target, current);
    if (!*out)
        r = fail_nomem(e);
out:
    sqlite3_finalize(st);
    conn_put(url, db);
    return r;
}

err_code prompt_history(const char *url, const char *name, const char *label, json_t **out, query_error *e)
{
    *out = NULL;
    if (!label)
        label = "";
    if (!prompt_name_valid(name, e) || (*label && !prompt_label_valid(label, e)))
        return ERR_INVAL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    err_code r;
    if (!arr)
        return fail_nomem(e);
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, false, e)))
        goto out;
    int latest = 0;
    if ((r = prompt_row(db, name, &latest, NULL, e)))
        goto out;
    st = stmt(db, e,
              "SELECT label, from_version, to_version, who, at_ns, reason FROM prompt_label_moves "
              "WHERE name=?1 AND (?2 = '' OR label=?2) ORDER BY id DESC",
              "ss", name, label);
    if (!st) {
        r = ERR_STORE;
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *m = json_pack("{s:s, s:o, s:i, s:s}", "label", col_text(st, 0), "from",
                              sqlite3_column_type(st, 1) == SQLITE_NULL ? json_null()
                                                                        : json_integer(sqlite3_column_int(st, 1)),
                              "to", sqlite3_column_int(st, 2), "who", col_text(st, 3));
        if (!m) {
            r = fail_nomem(e);
            goto out;
        }
        json_set_time(m, "at_ns", "at", sqlite3_column_int64(st, 4));
        json_object_set_new(m, "reason", json_string(col_text(st, 5)));
        json_array_append_new(arr, m);
    }
    if (rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "reading label moves");
        goto out;
    }
    *out = arr;
    arr = NULL;
out:
    sqlite3_finalize(st);
    if (db)
        tx_end_read(db);
    conn_put(url, db);
    json_decref(arr);
    return r;
}

/* ---- diff ---- */

#define DIFF_OUT_MAX (8u << 20)

/* The text a diff shows for a version: the template, or each message as
 * "[role]\ncontent\n" with a blank line between messages. */
static err_code diff_side(const json_t *v, buf *b)
{
    const json_t *msgs = json_object_get(v, "messages");
    if (!msgs)
        return buf_append_str(b, json_string_value(json_object_get(v, "template")) ?
                                     json_string_value(json_object_get(v, "template")) : "");
    size_t i;
    const json_t *m;
    err_code r = ERR_OK;
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *c = json_object_get(m, "content");
        if (i > 0)
            r = r ? r : buf_append_str(b, "\n");
        r = r ? r : buf_printf(b, "[%s]\n", role ? role : "");
        r = r ? r : buf_append(b, json_string_value(c) ? json_string_value(c) : "", json_string_length(c));
        if (!r && (b->len == 0 || b->p[b->len - 1] != '\n'))
            r = buf_append_str(b, "\n");
    }
    return r;
}

static char *config_text(const json_t *v)
{
    char *s = json_dumps(json_object_get(v, "config"), JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}

static json_t *ref_json(const prompt_ref *ref, int version)
{
    return json_pack("{s:s, s:i, s:o}", "name", ref->name, "version", version, "label",
                     ref->label[0] ? json_string(ref->label) : json_null());
}

err_code prompt_diff(const char *url, const prompt_ref *from, const prompt_ref *to, json_t **out, query_error *e)
{
    *out = NULL;
    if (!from || !to)
        return query_fail(e, 400, "ref", "invalid_prompt_ref", "a diff needs two references");
    sqlite3 *db = NULL;
    json_t *a = NULL, *b = NULL;
    char *ca = NULL, *cb = NULL;
    buf ta, tb, dt, dc;
    buf_init(&ta, TEMPLATE_MAX * 2);
    buf_init(&tb, TEMPLATE_MAX * 2);
    buf_init(&dt, DIFF_OUT_MAX);
    buf_init(&dc, DIFF_OUT_MAX);
    err_code r;
    int va = 0, vb = 0;
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, false, e)))
        goto out;
    if ((r = resolve(db, from, &va, e)) || (r = version_json(db, from->name, va, &a, e)))
        goto out;
    if ((r = resolve(db, to, &vb, e)) || (r = version_json(db, to->name, vb, &b, e)))
        goto out;
    tx_end_read(db);
    char na[PROMPT_NAME_MAX + 16], nb[PROMPT_NAME_MAX + 16];
    snprintf(na, sizeof na, "%s:%d", from->name, va);
    snprintf(nb, sizeof nb, "%s:%d", to->name, vb);
    ca = config_text(a);
    cb = config_text(b);
    bool ct = false, cc = false;
    if (!ca || !cb || diff_side(a, &ta) || diff_side(b, &tb)) {
        r = fail_nomem(e);
        goto out;
    }
    err_code d = diff_unified(ta.p ? ta.p : "", ta.len, tb.p ? tb.p : "", tb.len, na, nb, 3, &dt, &ct);
    if (!d)
        d = diff_unified(ca, strlen(ca), cb, strlen(cb), na, nb, 3, &dc, &cc);
    if (d) {
        r = d == ERR_TOOBIG ? query_fail(e, 400, NULL, "diff_too_large", "the diff is larger than %u bytes", DIFF_OUT_MAX)
                            : fail_nomem(e);
        goto out;
    }
    bool type_changed = strcmp(json_string_value(json_object_get(a, "type")),
                               json_string_value(json_object_get(b, "type"))) != 0;
    *out = json_pack("{s:o, s:o, s:s#, s:s#, s:b}", "from", ref_json(from, va), "to", ref_json(to, vb), "template",
                     dt.p ? dt.p : "", dt.len, "config", dc.p ? dc.p : "", dc.len, "changed", ct || cc || type_changed);
    if (!*out)
        r = fail_nomem(e);
out:
    if (db)
        tx_end_read(db);
    conn_put(url, db);
    json_decref(a);
    json_decref(b);
    free(ca);
    free(cb);
    buf_free(&ta);
    buf_free(&tb);
    buf_free(&dt);
    buf_free(&dc);
    return r;
}

/* ---- the gateway's snapshot ---- */

static err_code read_revision(sqlite3 *db, int64_t *rev, query_error *e)
{
    *rev = 0;
    sqlite3_stmt *st = stmt(db, e, "SELECT CAST(value AS INTEGER) FROM genaiops_meta WHERE key='prompts.rev'", NULL);
    if (!st)
        return ERR_STORE;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *rev = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ERR_OK : query_fail_db(e, db, "reading the prompt revision");
}

err_code prompt_revision(const char *url, int64_t *rev, query_error *e)
{
    *rev = 0;
    sqlite3 *db = NULL;
    err_code r = conn_get(url, &db, e);
    if (!r)
        r = read_revision(db, rev, e);
    conn_put(url, db);
    return r;
}

err_code prompt_served(const char *url, int64_t *rev, json_t **out, query_error *e)
{
    *out = NULL;
    *rev = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL, *lst = NULL;
    json_t *arr = json_array();
    err_code r;
    if (!arr)
        return fail_nomem(e);
    if ((r = conn_get(url, &db, e)) || (r = tx_begin(db, false, e)))
        goto out;
    if ((r = read_revision(db, rev, e)))
        goto out;
    st = stmt(db, e,
              "SELECT v.name, v.version, v.type, v.template, v.config, p.latest FROM prompt_versions v "
              "JOIN prompts p ON p.name = v.name "
              "JOIN (SELECT name, latest AS version FROM prompts UNION SELECT name, version FROM prompt_labels) s "
              "ON s.name = v.name AND s.version = v.version ORDER BY v.name, v.version",
              NULL);
    lst = stmt(db, e, "SELECT label FROM prompt_labels WHERE name=? AND version=? ORDER BY label", NULL);
    if (!st || !lst) {
        r = ERR_STORE;
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = col_text(st, 0), *type = col_text(st, 2);
        int version = sqlite3_column_int(st, 1), latest = sqlite3_column_int(st, 5);
        json_t *labels = json_array();
        json_t *o = json_pack("{s:s, s:i, s:s}", "name", name, "version", version, "type", type);
        if (!o || !labels) {
            json_decref(o);
            json_decref(labels);
            r = fail_nomem(e);
            goto out;
        }
        json_array_append_new(arr, o);
        if ((r = put_content(o, type, col_text(st, 3), col_text(st, 4), e)))
            goto out;
        json_object_set_new(o, "labels", labels);
        if (version == latest)
            json_array_append_new(labels, json_string("latest"));
        sqlite3_reset(lst);
        sqlite3_bind_text(lst, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(lst, 2, version);
        int lrc;
        while ((lrc = sqlite3_step(lst)) == SQLITE_ROW)
            json_array_append_new(labels, json_string(col_text(lst, 0)));
        if (lrc != SQLITE_DONE) {
            r = query_fail_db(e, db, "reading labels");
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        r = query_fail_db(e, db, "reading the served prompts");
        goto out;
    }
    *out = arr;
    arr = NULL;
out:
    sqlite3_finalize(st);
    sqlite3_finalize(lst);
    if (db)
        tx_end_read(db);
    conn_put(url, db);
    json_decref(arr);
    return r;
}
