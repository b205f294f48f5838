/*
 * dataset.c - stored datasets (see dataset.h).
 *
 * Tables (schema 5): datasets(name, latest, ...), dataset_versions(name,
 * version, rows, hash, ...), dataset_rows(name, version, idx, row). A push
 * runs in one BEGIN IMMEDIATE transaction, so concurrent pushers never
 * lose or duplicate a version number. The hash is SHA-256 over each row's
 * canonical JSON (keys sorted, compact) followed by a newline.
 */
#include "eval/dataset.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "eval/evstore.h"

#define NAME_MAX_LEN 200

/* Names: 1-200 bytes of [A-Za-z0-9._-] in '/'-separated segments, none
 * empty, "." or "..". */
static bool name_valid(const char *name, query_error *e)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > NAME_MAX_LEN) {
        query_fail(e, 400, "name", "invalid_dataset_name", "a dataset name has 1 to %d bytes", NAME_MAX_LEN);
        return false;
    }
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        if (i == n || c == '/') {
            size_t len = i - seg;
            if (len == 0 || (len == 1 && name[seg] == '.') || (len == 2 && name[seg] == '.' && name[seg + 1] == '.')) {
                query_fail(e, 400, "name", "invalid_dataset_name",
                           "the dataset name '%.100s' has an empty, '.' or '..' segment", name);
                return false;
            }
            seg = i + 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            query_fail(e, 400, "name", "invalid_dataset_name",
                       "the dataset name '%.100s' has a character other than letters, digits, '.', '_', '-', '/'",
                       name);
            return false;
        }
    }
    return true;
}

bool dataset_ref_parse(const char *s, char *name, size_t cap, int *version, query_error *e)
{
    *version = 0;
    if (!s) {
        query_fail(e, 400, "ref", "invalid_dataset_ref", "a dataset reference is required");
        return false;
    }
    const char *cut = strpbrk(s, ":@");
    size_t n = cut ? (size_t)(cut - s) : strlen(s);
    if (n >= cap || n > NAME_MAX_LEN) {
        query_fail(e, 400, "ref", "invalid_dataset_ref", "the dataset name in '%.100s' is too long", s);
        return false;
    }
    memcpy(name, s, n);
    name[n] = 0;
    if (!name_valid(name, e))
        return false;
    if (cut && !(cut[0] == '@' && strcmp(cut + 1, "latest") == 0)) {
        char *end;
        long v = strtol(cut + 1, &end, 10);
        if (!cut[1] || *end || v < 1 || v > 1000000000) {
            query_fail(e, 400, "ref", "invalid_dataset_ref",
                       "'%.100s': a dataset reference is NAME, NAME:VERSION or NAME@latest", s);
            return false;
        }
        *version = (int)v;
    }
    return true;
}

static err_code open_db(const char *url, sqlite3 **db, query_error *e)
{
    char msg[512];
    if (evstore_db(url, db, msg, sizeof msg) != ERR_OK)
        return query_fail(e, 503, NULL, "store_unavailable", "%s", msg);
    return ERR_OK;
}


/* The version's row as JSON (without tests). */
static json_t *version_json(sqlite3_stmt *st)
{
    char when[40];
    evstore_iso_time(sqlite3_column_int64(st, 7), when, sizeof when);
    return json_pack("{s:s, s:i, s:I, s:s, s:s?, s:s, s:s?, s:s}", "name", sqlite3_column_text(st, 0), "version",
                     sqlite3_column_int(st, 1), "rows", (json_int_t)sqlite3_column_int64(st, 2), "hash",
                     sqlite3_column_text(st, 3), "message", sqlite3_column_text(st, 4), "author",
                     sqlite3_column_text(st, 5), "source", sqlite3_column_text(st, 6), "created_at", when);
}

#define VERSION_COLS "name, version, rows, hash, message, author, source, created_ns"

/* Looks up name's version (0 = latest) on db. *out is the version JSON;
 * 404s name what is missing. */
static err_code find_version(sqlite3 *db, const char *name, int version, json_t **out, query_error *e)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    const char *sql = version ? "SELECT " VERSION_COLS " FROM dataset_versions WHERE name = ? AND version = ?"
                              : "SELECT v.name, v.version, v.rows, v.hash, v.message, v.author, v.source, v.created_ns"
                                " FROM dataset_versions v JOIN datasets d ON d.name = v.name AND d.latest = v.version"
                                " WHERE v.name = ?";
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return query_fail_db(e, db, "reading the dataset");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (version)
        sqlite3_bind_int(st, 2, version);
    int rc = sqlite3_step(st);
    err_code r = ERR_OK;
    if (rc == SQLITE_ROW)
        *out = version_json(st);
    else if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        st = NULL;
        bool exists = false;
        if (sqlite3_prepare_v2(db, "SELECT 1 FROM datasets WHERE name = ?", -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            exists = sqlite3_step(st) == SQLITE_ROW;
        }
        r = exists ? query_fail(e, 404, "version", "version_not_found", "dataset '%s' has no version %d", name, version)
                   : query_fail(e, 404, "name", "dataset_not_found",
                                "no dataset '%s' (genaiops dataset push %s FILE creates it)", name, name);
    } else
        r = query_fail_db(e, db, "reading the dataset");
    sqlite3_finalize(st);
    if (r == ERR_OK && !*out)
        r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
    return r;
}

err_code dataset_push(const char *url, const char *name, const json_t *rows, const char *message,
                      const char *author, const char *source, json_t **out, bool *created, query_error *e)
{
    *out = NULL;
    *created = false;
    if (!name_valid(name, e))
        return ERR_INVAL;
    size_t n = json_array_size(rows);
    if (!json_is_array(rows) || n == 0)
        return query_fail(e, 400, "rows", "empty_dataset", "a dataset needs at least one test case");
    if (n > DATASET_MAX_ROWS)
        return query_fail(e, 400, "rows", "dataset_too_large", "a dataset has at most %d test cases", DATASET_MAX_ROWS);
    /* the rows as canonical text, and their hash */
    char **texts = calloc(n, sizeof *texts);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    err_code r = ERR_OK;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    unsigned char digest[32];
    char hash[80];
    unsigned int dl = 0;
    if (!texts || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *row = json_array_get(rows, i);
        if (!json_is_object(row)) {
            r = query_fail(e, 400, "rows", "invalid_test_case", "test case %zu is not an object", i + 1);
            goto out;
        }
        if (!(texts[i] = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS))) {
            r = query_fail(e, 500, NULL, "out_of_memory", "out of memory");
            goto out;
        }
        EVP_DigestUpdate(md, texts[i], strlen(texts[i]));
        EVP_DigestUpdate(md, "\n", 1);
    }
    EVP_DigestFinal_ex(md, digest, &dl);
    memcpy(hash, "sha256:", 7);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hash + 7 + 2 * i, 3, "%02x", digest[i]);
    if ((r = open_db(url, &db, e)) != ERR_OK)
        goto out;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "saving the dataset");
        goto out;
    }
    int latest = 0;
    json_t *cur = NULL;
    query_error ignore;
    if (find_version(db, name, 0, &cur, &ignore) == ERR_OK) {
        latest = (int)json_integer_value(json_object_get(cur, "version"));
        if (strcmp(json_string_value(json_object_get(cur, "hash")), hash) == 0) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            *out = cur;
            goto out;
        }
        json_decref(cur);
    }
    int version = latest + 1;
    int64_t now = evstore_wall_ns();
    if (sqlite3_prepare_v2(db, "INSERT INTO datasets VALUES (?1, ?2, ?3, ?3) ON CONFLICT(name) DO UPDATE SET "
                               "latest = ?2, updated_ns = ?3", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, version);
    sqlite3_bind_int64(st, 3, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "INSERT INTO dataset_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) !=
        SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, version);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
    sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, message, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, author && *author ? author : "unknown", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now);
    if (sqlite3_step(st) != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "INSERT INTO dataset_rows VALUES (?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, version);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)i);
        sqlite3_bind_text(st, 4, texts[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto fail;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    *created = true;
    r = find_version(db, name, version, out, e);
    goto out;
fail:
    r = query_fail_db(e, db, "saving the dataset");
    sqlite3_finalize(st);
    st = NULL;
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    EVP_MD_CTX_free(md);
    sqlite3_close(db);
    return r;
}

err_code dataset_list(const char *url, json_t **out, query_error *e)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    err_code r = open_db(url, &db, e);
    if (r != ERR_OK)
        return r;
    json_t *arr = json_array();
    if (sqlite3_prepare_v2(db,
                           "SELECT d.name, d.latest, (SELECT count(*) FROM dataset_versions v WHERE v.name = d.name),"
                           " v.rows, d.updated_ns FROM datasets d JOIN dataset_versions v ON v.name = d.name AND"
                           " v.version = d.latest ORDER BY d.name",
                           -1, &st, NULL) != SQLITE_OK) {
        r = query_fail_db(e, db, "listing datasets");
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char when[40];
        evstore_iso_time(sqlite3_column_int64(st, 4), when, sizeof when);
        json_array_append_new(arr, json_pack("{s:s, s:i, s:i, s:I, s:s}", "name", sqlite3_column_text(st, 0), "latest",
                                             sqlite3_column_int(st, 1), "versions", sqlite3_column_int(st, 2), "rows",
                                             (json_int_t)sqlite3_column_int64(st, 3), "updated_at", when));
    }
    if (rc != SQLITE_DONE)
        r = query_fail_db(e, db, "listing datasets");
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (r == ERR_OK)
        *out = arr;
    else
        json_decref(arr);
    return r;
}

/* Calls fn for each row text of the version, in order. */
static err_code each_row(sqlite3 *db, const char *name, int version, size_t max,
                         bool (*fn)(void *ud, const char *row), void *ud, query_error *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT row FROM dataset_rows WHERE name = ? AND version = ? ORDER BY idx LIMIT ?", -1,
                           &st, NULL) != SQLITE_OK)
        return query_fail_db(e, db, "reading the dataset");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, version);
    sqlite3_bind_int64(st, 3, max ? (sqlite3_int64)max : -1);
    int rc;
    err_code r = ERR_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (!fn(ud, (const char *)sqlite3_column_text(st, 0))) {
            r = query_fail(e, 500, NULL, "io_error", "writing the dataset failed");
            break;
        }
    if (r == ERR_OK && rc != SQLITE_DONE)
        r = query_fail_db(e, db, "reading the dataset");
    sqlite3_finalize(st);
    return r;
}

static bool add_row(void *ud, const char *row)
{
    json_t *j = json_loads(row, 0, NULL);
    return j && json_array_append_new(ud, j) == 0;
}

err_code dataset_get(const char *url, const char *ref, size_t max_tests, json_t **out, query_error *e)
{
    char name[NAME_MAX_LEN + 1];
    int version;
    *out = NULL;
    if (!dataset_ref_parse(ref, name, sizeof name, &version, e))
        return ERR_INVAL;
    sqlite3 *db = NULL;
    err_code r = open_db(url, &db, e);
    json_t *v = NULL;
    if (r == ERR_OK)
        r = find_version(db, name, version, &v, e);
    if (r == ERR_OK) {
        json_t *versions = json_array(), *tests = json_array();
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT version FROM dataset_versions WHERE name = ? ORDER BY version", -1, &st,
                               NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            while (sqlite3_step(st) == SQLITE_ROW)
                json_array_append_new(versions, json_integer(sqlite3_column_int(st, 0)));
        }
        sqlite3_finalize(st);
        json_object_set_new(v, "versions", versions);
        json_object_set_new(v, "tests", tests);
        if (max_tests)
            r = each_row(db, name, (int)json_integer_value(json_object_get(v, "version")), max_tests, add_row, tests, e);
    }
    sqlite3_close(db);
    if (r == ERR_OK)
        *out = v;
    else
        json_decref(v);
    return r;
}

typedef struct writer {
    FILE *f;
    size_t n;
} writer;

static bool write_row(void *ud, const char *row)
{
    writer *w = ud;
    return fprintf(w->f, "%s\n  %s", w->n++ ? "," : "", row) > 0;
}

err_code dataset_export(const char *url, const char *ref, const char *path, int *version, query_error *e)
{
    char name[NAME_MAX_LEN + 1];
    int v;
    if (!dataset_ref_parse(ref, name, sizeof name, &v, e))
        return ERR_INVAL;
    sqlite3 *db = NULL;
    err_code r = open_db(url, &db, e);
    json_t *ver = NULL;
    if (r == ERR_OK)
        r = find_version(db, name, v, &ver, e);
    if (r == ERR_OK) {
        v = (int)json_integer_value(json_object_get(ver, "version"));
        if (version)
            *version = v;
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
        writer w = { fopen(tmp, "w"), 0 };
        if (!w.f)
            r = query_fail(e, 500, "path", "io_error", "cannot write %s", tmp);
        else {
            fputs("[", w.f);
            r = each_row(db, name, v, 0, write_row, &w, e);
            fputs("\n]\n", w.f);
            if (fclose(w.f) != 0 && r == ERR_OK)
                r = query_fail(e, 500, "path", "io_error", "writing %s failed", tmp);
            if (r == ERR_OK && rename(tmp, path) != 0)
                r = query_fail(e, 500, "path", "io_error", "cannot rename %s to %s", tmp, path);
            if (r != ERR_OK)
                unlink(tmp);
        }
    }
    json_decref(ver);
    sqlite3_close(db);
    return r;
}

static char *resolve_url;
static char *resolved[16];       /* "NAME:VERSION" of what dataset_resolve handed out */
static size_t nresolved;

const char *dataset_resolved(size_t i) { return i < nresolved ? resolved[i] : NULL; }

/* Remembers ver (once) for the run's record of what it used. */
static void note_resolved(const char *ver)
{
    for (size_t i = 0; i < nresolved; i++)
        if (strcmp(resolved[i], ver) == 0)
            return;
    if (nresolved < sizeof resolved / sizeof resolved[0] && (resolved[nresolved] = strdup(ver)))
        nresolved++;
}

void dataset_use_store(const char *url)
{
    free(resolve_url);
    resolve_url = url ? strdup(url) : NULL;
    for (size_t i = 0; i < nresolved; i++)
        free(resolved[i]);
    nresolved = 0;
}

char *dataset_resolve(const char *ref, char *msg, size_t cap)
{
    query_error e;
    json_t *v = NULL;
    if (!resolve_url) {
        snprintf(msg, cap, "dataset://%s: no store to read datasets from", ref);
        return NULL;
    }
    if (dataset_get(resolve_url, ref, 0, &v, &e) != ERR_OK) {
        snprintf(msg, cap, "dataset://%s: %s", ref, e.message);
        return NULL;
    }
    /* content-addressed in the cache: the same version is exported once */
    char dir[1024], path[1200];
    if (!evstore_cache_dir("datasets", dir, sizeof dir)) {
        json_decref(v);
        snprintf(msg, cap, "dataset://%s: no cache directory (set GENAIOPS_CACHE_DIR)", ref);
        return NULL;
    }
    const char *hash = json_string_value(json_object_get(v, "hash"));
    snprintf(path, sizeof path, "%s/%s.json", dir, hash && strlen(hash) > 7 ? hash + 7 : "unknown");
    struct stat sb;
    char ver[NAME_MAX_LEN + 32];
    snprintf(ver, sizeof ver, "%s:%lld", json_string_value(json_object_get(v, "name")),
             (long long)json_integer_value(json_object_get(v, "version")));
    json_decref(v);
    if (stat(path, &sb) != 0 && dataset_export(resolve_url, ver, path, NULL, &e) != ERR_OK) {
        snprintf(msg, cap, "dataset://%s: %s", ref, e.message);
        return NULL;
    }
    note_resolved(ver);
    return strdup(path);
}
