/*
 * store.c - opens the SQLite file with a busy timeout and WAL journaling,
 * and applies the schema's first version (a meta table). Later features
 * add their tables as numbered migrations here.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/store.h"

#define SCHEMA_VERSION 1

struct store {
    sqlite3 *db;
    char *path;
};

const char *store_path(const store *s) { return s->path; }

err_code store_open(const char *url, store **out, char *msg, size_t msgcap)
{
    const char *path = url;
    if (strncmp(url, "sqlite://", 9) == 0)
        path = url + 9;
    else if (strstr(url, "://")) {
        snprintf(msg, msgcap, "store url '%s' is not supported by this version (use sqlite://PATH)", url);
        return ERR_UNSUPPORTED;
    }
    if (!*path) {
        snprintf(msg, msgcap, "store url '%s' names no file", url);
        return ERR_CONFIG;
    }
    store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return ERR_NOMEM;
    }
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(msg, msgcap, "cannot open the store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *err = NULL;
    rc = sqlite3_exec(s->db,
                      "PRAGMA journal_mode=WAL;"
                      "CREATE TABLE IF NOT EXISTS genaiops_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);",
                      NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        snprintf(msg, msgcap, "cannot initialise the store %s: %s", path, err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        goto fail;
    }
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        snprintf(msg, msgcap, "the store %s has schema version %d, newer than this genaiops knows (%d): upgrade genaiops",
                 path, version, SCHEMA_VERSION);
        rc = SQLITE_ERROR;
        goto fail;
    }
    if (version < SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SCHEMA_VERSION);
        if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(msg, msgcap, "cannot write to the store %s: %s", path, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    *out = s;
    return ERR_OK;
fail:
    store_close(s);
    return ERR_STORE;
}

void store_close(store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}
