/*
 * test_store.c - the store: migrations from every version, re-opening,
 * refusing newer, unwritable, locked and corrupt stores, storing traces with
 * their spans and attributes, purging in chunks, the size cap.
 */
#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store/store.h"
#include "test.h"

/* A fresh directory under /tmp; path gets DIR/NAME. */
static void tmp_path(char *dir, size_t dircap, char *path, size_t pathcap, const char *name)
{
    snprintf(dir, dircap, "/tmp/genaiops-store-XXXXXX");
    if (!mkdtemp(dir))
        test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
    snprintf(path, pathcap, "%s/%s", dir, name);
}

static void rm_tree(const char *dir)
{
    char cmd[600];
    if (strncmp(dir, "/tmp/genaiops-store-", 20) != 0)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* First column of the first row of sql on the file, as an integer (-1 on error). */
static long long q_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -2 : sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

/* First column of the first row as a malloc'd string ("(null)" for NULL). */
static char *q_str(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *v = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            v = strdup(t ? t : "(null)");
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v ? v : strdup("(error)");
}

static bool exec_raw(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    bool ok = sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
    sqlite3_close(db);
    return ok;
}

static char url_buf[600];
static const char *url_of(const char *path)
{
    snprintf(url_buf, sizeof url_buf, "sqlite://%s", path);
    return url_buf;
}

/* A trace with every field set and nspans spans (root + attempts). */
static trace_rec *make_trace(int i, int nspans, uint64_t start_ns)
{
    trace_rec *t = trace_new(0);
    snprintf(t->request_id, sizeof t->request_id, "req-%d", i);
    t->start_ns = start_ns;
    t->end_ns = start_ns + 250000000; /* 250 ms */
    snprintf(t->operation, sizeof t->operation, "chat");
    snprintf(t->endpoint, sizeof t->endpoint, "/v1/chat/completions");
    snprintf(t->provider, sizeof t->provider, "openai");
    snprintf(t->provider_type, sizeof t->provider_type, "openai");
    snprintf(t->request_model, sizeof t->request_model, "gpt-4o-mini");
    snprintf(t->response_model, sizeof t->response_model, "gpt-4o-mini-2024-07-18");
    snprintf(t->response_id, sizeof t->response_id, "chatcmpl-%d", i);
    snprintf(t->finish_reasons, sizeof t->finish_reasons, "stop");
    t->status = 200;
    t->has_temperature = true;
    t->temperature = 0.3;
    t->has_max_tokens = true;
    t->max_tokens = 100;
    t->input_tokens = 12;
    t->output_tokens = 5;
    t->cost_usd = 0.00125;
    t->cost_known = true;
    t->overhead_ns = 42000;
    t->attempts = nspans > 1 ? nspans - 1 : 1;
    for (int k = 0; k < nspans; k++) {
        span_rec *s = trace_add_span(t, k == 0 ? SPAN_REQUEST : SPAN_ATTEMPT, start_ns + (uint64_t)k * 1000);
        s->end_ns = start_ns + 200000000;
        if (k > 0) {
            snprintf(s->provider, sizeof s->provider, "openai");
            snprintf(s->model, sizeof s->model, "gpt-4o-mini");
            snprintf(s->server_address, sizeof s->server_address, "api.openai.com");
            s->server_port = 443;
            s->http_status = k == nspans - 1 ? 200 : 503;
        }
    }
    return t;
}

TEST(store_migrates_from_zero)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    store *s = NULL;
    CHECK_INT(store_open(url_of(path), &s, msg, sizeof msg), ERR_OK);
    CHECK(s != NULL);
    CHECK_INT(store_latest_version(), 5);
    CHECK_INT(store_version(s), 5);
    CHECK_STR(store_path(s), path);
    store_close(s);
    CHECK_INT(q_int(path, "PRAGMA user_version"), 5);
    CHECK_INT(q_int(path, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                          "('genaiops_meta','traces','scores','score_configs')"), 4);
    CHECK_INT(q_int(path, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                          "('prompts','prompt_versions','prompt_labels','prompt_label_moves')"), 4);
    CHECK_INT(q_int(path, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='prompt_label_moves_name'"), 1);
    CHECK_INT(q_int(path, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                          "('eval_runs','eval_results')"), 2);
    CHECK(!exec_raw(path, "INSERT INTO eval_results VALUES ('r',1,0,0,0,0,'maybe',NULL,'{}')"));
    CHECK(!exec_raw(path, "INSERT INTO prompts VALUES ('p','html',1,1,1)"));
    CHECK(!exec_raw(path, "INSERT INTO prompt_label_moves (name,label,from_version,to_version,who,at_ns,reason) "
                          "VALUES ('p','production',NULL,1,'x',1,'moved')"));
    CHECK_INT(q_int(path, "SELECT count(*) FROM sqlite_master WHERE type='view' AND name='spans'"), 1);
    CHECK_INT(q_int(path, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name IN "
                          "('traces_start','traces_model','traces_provider','traces_status','traces_deployment',"
                          "'scores_trace')"), 6);
    char *mode = q_str(path, "PRAGMA journal_mode");
    CHECK_STR(mode, "wal");
    free(mode);
    /* The CHECK constraints of the shared schema are there. */
    CHECK(!exec_raw(path, "INSERT INTO scores VALUES ('s1','t','n','numeric',1,NULL,NULL,'robot',1)"));
    CHECK(exec_raw(path, "INSERT INTO scores VALUES ('s1','t','n','numeric',1,NULL,NULL,'human',1)"));
    rm_tree(dir);
}

TEST(store_migrates_from_one_keeping_data)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    /* What the gateway core left behind: version 1. */
    CHECK(exec_raw(path, "CREATE TABLE genaiops_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                         "INSERT INTO genaiops_meta VALUES ('installed','yes'); PRAGMA user_version=1;"));
    store_opts o = { .no_migrate = true };
    store *s = NULL;
    CHECK_INT(store_open_opts(url_of(path), &o, &s, msg, sizeof msg), ERR_OK);
    CHECK_INT(store_version(s), 1);
    CHECK_INT(q_int(path, "SELECT count(*) FROM sqlite_master WHERE name='traces'"), 0);
    /* Traces need the latest version. */
    trace_rec *t = make_trace(1, 2, 1000);
    CHECK_INT(store_put_traces(s, &t, 1, msg, sizeof msg), ERR_STORE);
    CHECK(strstr(msg, "genaiops migrate") != NULL);
    int from = -1, to = -1;
    CHECK_INT(store_migrate(s, &from, &to, msg, sizeof msg), ERR_OK);
    CHECK_INT(from, 1);
    CHECK_INT(to, 5);
    CHECK_INT(store_version(s), 5);
    /* Migrating again is a no-op. */
    CHECK_INT(store_migrate(s, &from, &to, msg, sizeof msg), ERR_OK);
    CHECK_INT(from, 5);
    CHECK_INT(to, 5);
    CHECK_INT(store_put_traces(s, &t, 1, msg, sizeof msg), ERR_OK);
    store_close(s);
    trace_free(t);
    char *v = q_str(path, "SELECT value FROM genaiops_meta WHERE key='installed'");
    CHECK_STR(v, "yes");
    free(v);
    CHECK_INT(q_int(path, "SELECT count(*) FROM traces"), 1);
    rm_tree(dir);
}

/* A version-2 store (spans as rows) moves its spans into the trace rows,
 * and the spans view reads them back as they were. */
TEST(store_migrates_spans_from_two)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    size_t nm = 0;
    const store_migration *m = store_migrations(&nm);
    CHECK(nm >= 2);
    CHECK(exec_raw(path, m[0].sql));
    CHECK(exec_raw(path, m[1].sql));
    CHECK(exec_raw(path,
                   "INSERT INTO traces (trace_id, start_ns, end_ns, duration_ms, status, stream) VALUES "
                   "('0123456789abcdef0123456789abcdef', 100, 900, 0.0008, 200, 0),"
                   "('fedcba9876543210fedcba9876543210', 200, 300, 0.0001, 502, 0);"
                   "INSERT INTO spans VALUES ('0123456789abcdef0123456789abcdef', 'aaaaaaaaaaaaaaaa', NULL, "
                   "'request', 'chat m', 100, 900, '{\"gen_ai.operation.name\":\"chat\",\"x\":[1,2]}'),"
                   "('0123456789abcdef0123456789abcdef', 'bbbbbbbbbbbbbbbb', 'aaaaaaaaaaaaaaaa', 'attempt', "
                   "'attempt p', 150, 800, '{\"server.port\":443}');"
                   "PRAGMA user_version=2;"));
    store *s = NULL;
    CHECK_INT(store_open(url_of(path), &s, msg, sizeof msg), ERR_OK);
    CHECK(s && store_version(s) == 5);
    store_close(s);
    CHECK_INT(q_int(path, "SELECT count(*) FROM spans"), 2);
    char *v = q_str(path, "SELECT group_concat(span_id || '|' || ifnull(parent_id, '-') || '|' || kind || '|' || name "
                          "|| '|' || start_ns || '|' || end_ns || '|' || attributes, ';') FROM "
                          "(SELECT * FROM spans WHERE trace_id = '0123456789abcdef0123456789abcdef' ORDER BY start_ns)");
    CHECK_STR(v, "aaaaaaaaaaaaaaaa|-|request|chat m|100|900|{\"gen_ai.operation.name\":\"chat\",\"x\":[1,2]};"
                 "bbbbbbbbbbbbbbbb|aaaaaaaaaaaaaaaa|attempt|attempt p|150|800|{\"server.port\":443}");
    free(v);
    /* a trace that had no spans keeps an empty array */
    v = q_str(path, "SELECT spans FROM traces WHERE trace_id = 'fedcba9876543210fedcba9876543210'");
    CHECK_STR(v, "[]");
    free(v);
    rm_tree(dir);
}

TEST(store_reopen_is_idempotent)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    for (int round = 0; round < 3; round++) {
        store *s = NULL;
        CHECK_INT(store_open(path, &s, msg, sizeof msg), ERR_OK); /* a bare path works too */
        if (!s)
            break;
        CHECK_INT(store_version(s), 5);
        trace_rec *t = make_trace(round, 1, 1000 + (uint64_t)round);
        CHECK_INT(store_put_traces(s, &t, 1, msg, sizeof msg), ERR_OK);
        trace_free(t);
        store_close(s);
    }
    CHECK_INT(q_int(path, "SELECT count(*) FROM traces"), 3);
    CHECK_INT(q_int(path, "PRAGMA user_version"), 5);
    rm_tree(dir);
}

TEST(store_refuses_newer_schema)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    CHECK(exec_raw(path, "CREATE TABLE future(x); PRAGMA user_version=99;"));
    store *s = NULL;
    CHECK_INT(store_open(url_of(path), &s, msg, sizeof msg), ERR_STORE);
    CHECK(s == NULL);
    CHECK(strstr(msg, "upgrade genaiops") != NULL);
    CHECK(strstr(msg, "99") != NULL);
    CHECK(strstr(msg, path) != NULL);
    CHECK_INT(q_int(path, "PRAGMA user_version"), 99);
    /* Also without migrating (genaiops migrate --dry-run). */
    store_opts o = { .no_migrate = true, .read_only = true };
    CHECK_INT(store_open_opts(url_of(path), &o, &s, msg, sizeof msg), ERR_STORE);
    CHECK(strstr(msg, "upgrade genaiops") != NULL);
    rm_tree(dir);
}

TEST(store_unwritable_paths_are_named)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    store *s = NULL;
    char bad[256];

    /* A directory that does not exist. */
    snprintf(bad, sizeof bad, "sqlite://%s/missing/sub/g.db", dir);
    msg[0] = 0;
    CHECK(store_open(bad, &s, msg, sizeof msg) != ERR_OK);
    CHECK(s == NULL);
    CHECK(strstr(msg, "/missing/sub") != NULL);
    CHECK(strstr(msg, strerror(ENOENT)) != NULL);

    /* A parent that is a file. */
    char file[200];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    snprintf(bad, sizeof bad, "sqlite://%s/plain/g.db", dir);
    CHECK(store_open(bad, &s, msg, sizeof msg) != ERR_OK);
    CHECK(strstr(msg, "plain") != NULL);
    CHECK(strstr(msg, strerror(ENOTDIR)) != NULL);

    /* The path is a directory. */
    snprintf(bad, sizeof bad, "sqlite://%s", dir);
    CHECK(store_open(bad, &s, msg, sizeof msg) != ERR_OK);
    CHECK(strstr(msg, "is a directory") != NULL);

    /* Permissions (root ignores modes, so only as a normal user). */
    if (geteuid() != 0) {
        char ro[200];
        snprintf(ro, sizeof ro, "%s/ro", dir);
        mkdir(ro, 0500);
        snprintf(bad, sizeof bad, "sqlite://%s/ro/g.db", dir);
        CHECK_INT(store_open(bad, &s, msg, sizeof msg), ERR_DENIED);
        CHECK(strstr(msg, strerror(EACCES)) != NULL);
        chmod(ro, 0700);
    }

    /* Bad urls. */
    CHECK_INT(store_open("postgres://db/genaiops", &s, msg, sizeof msg), ERR_UNSUPPORTED);
    CHECK(strstr(msg, "sqlite://PATH") != NULL);
    CHECK_INT(store_open("sqlite://", &s, msg, sizeof msg), ERR_CONFIG);

    /* read_only on a missing file: not found, and nothing is created. */
    store_opts o = { .read_only = true };
    CHECK_INT(store_open_opts(url_of(path), &o, &s, msg, sizeof msg), ERR_NOTFOUND);
    CHECK(access(path, F_OK) != 0);
    rm_tree(dir);
}

TEST(store_corrupt_file_is_not_a_database)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
#define TEXT_BYTES "this is a text file, not SQLite. this is a text file, not SQLite. this is a text file!!"
#define BIN_BYTES "\x00\x01\x02\x03\xff\xfe\xfd\xfc\x00\x00\x00\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0" \
                  "\xb0\xc0\xd0\xe0\xf0\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
/* A real SQLite header followed by garbage pages. */
#define HDR_BYTES "SQLite format 3\0\x10\x00\x01\x01\x00\x40\x20\x20\xff\xff\xff\xff\xff\xff\xff\xff"
    static const struct { const char *name; const char *bytes; size_t n; } cases[] = {
        { "text", TEXT_BYTES, sizeof(TEXT_BYTES) - 1 },
        { "binary", BIN_BYTES, sizeof(BIN_BYTES) - 1 },
        { "header", HDR_BYTES, sizeof(HDR_BYTES) - 1 },
    };
    for (size_t i = 0; i < countof(cases); i++) {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f)
            break;
        for (int k = 0; k < 50; k++)
            fwrite(cases[i].bytes, 1, cases[i].n, f);
        fclose(f);
        store *s = NULL;
        msg[0] = 0;
        CHECK_INT(store_open(url_of(path), &s, msg, sizeof msg), ERR_STORE);
        CHECK(s == NULL);
        if (!strstr(msg, "not a database") && !strstr(msg, "corrupt"))
            test_fail(__FILE__, __LINE__, "case %s: %s", cases[i].name, msg);
        CHECK(strstr(msg, path) != NULL);
    }
    /* An empty file is an empty database, not a corrupt one. */
    FILE *f = fopen(path, "wb");
    if (f)
        fclose(f);
    store *s = NULL;
    CHECK_INT(store_open(url_of(path), &s, msg, sizeof msg), ERR_OK);
    CHECK(s && store_version(s) == 5);
    store_close(s);
    rm_tree(dir);
}

TEST(store_locked_by_another_process)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    /* A version-1 WAL store whose write lock someone else holds: the
     * migration cannot start. */
    CHECK(exec_raw(path, "PRAGMA journal_mode=WAL; CREATE TABLE genaiops_meta(key TEXT PRIMARY KEY, value TEXT NOT "
                         "NULL); PRAGMA user_version=1;"));
    sqlite3 *other = NULL;
    CHECK(sqlite3_open(path, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN IMMEDIATE; INSERT INTO genaiops_meta VALUES ('k','v');", NULL, NULL, NULL) ==
          SQLITE_OK);
    store_opts o = { .busy_timeout_ms = 100 };
    store *s = NULL;
    CHECK_INT(store_open_opts(url_of(path), &o, &s, msg, sizeof msg), ERR_STORE);
    CHECK(s == NULL);
    CHECK(strstr(msg, "locked by another process") != NULL);
    CHECK(strstr(msg, "100 ms") != NULL);
    CHECK(strstr(msg, path) != NULL);
    CHECK_INT(q_int(path, "PRAGMA user_version"), 1);
    sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
    CHECK_INT(store_open_opts(url_of(path), &o, &s, msg, sizeof msg), ERR_OK);
    CHECK(s && store_version(s) == 5);
    store_close(s);

    /* A rollback-journal store under an exclusive lock cannot even be read. */
    char path2[160];
    snprintf(path2, sizeof path2, "%s/excl.db", dir);
    CHECK(exec_raw(path2, "CREATE TABLE x(y);"));
    CHECK(sqlite3_exec(other, "SELECT 1", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(other);
    CHECK(sqlite3_open(path2, &other) == SQLITE_OK);
    CHECK(sqlite3_exec(other, "BEGIN EXCLUSIVE; INSERT INTO x VALUES (1);", NULL, NULL, NULL) == SQLITE_OK);
    CHECK_INT(store_open_opts(url_of(path2), &o, &s, msg, sizeof msg), ERR_STORE);
    CHECK(strstr(msg, "locked by another process") != NULL);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    rm_tree(dir);
}

TEST(store_puts_traces_with_spans)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    store *s = NULL;
    CHECK_INT(store_open(url_of(path), &s, msg, sizeof msg), ERR_OK);
    if (!s)
        return;
    trace_rec *t[2] = { make_trace(1, 3, 1700000000000000000ull), make_trace(2, 1, 1700000001000000000ull) };
    /* The second: a failure with nothing known. */
    t[1]->status = 502;
    snprintf(t[1]->error_type, sizeof t[1]->error_type, "connection_refused");
    t[1]->input_tokens = t[1]->output_tokens = -1;
    t[1]->cost_known = false;
    t[1]->has_temperature = t[1]->has_max_tokens = false;
    t[1]->response_id[0] = 0;
    t[1]->stream = true;
    t[1]->ttft_ns = 1500000;
    /* Fields filled to the brim (no NUL) are stored at their size. */
    memset(t[1]->deployment, 'd', sizeof t[1]->deployment);
    CHECK_INT(store_put_traces(s, t, 2, msg, sizeof msg), ERR_OK);
    /* The same trace twice is stored once. */
    CHECK_INT(store_put_traces(s, t, 1, msg, sizeof msg), ERR_OK);
    store_close(s);

    char tid[33], sql[512];
    trace_id_hex(t[0]->trace_id, tid);
    CHECK_INT(q_int(path, "SELECT count(*) FROM traces"), 2);
    CHECK_INT(q_int(path, "SELECT count(*) FROM spans"), 4);
    snprintf(sql, sizeof sql, "SELECT request_model || '|' || provider || '|' || status || '|' || input_tokens || '|' "
             "|| output_tokens || '|' || duration_ms || '|' || overhead_us || '|' || attempts || '|' || "
             "finish_reasons || '|' || stream FROM traces WHERE trace_id='%s'", tid);
    char *v = q_str(path, sql);
    CHECK_STR(v, "gpt-4o-mini|openai|200|12|5|250.0|42|2|stop|0");
    free(v);
    snprintf(sql, sizeof sql, "SELECT params FROM traces WHERE trace_id='%s'", tid);
    v = q_str(path, sql);
    CHECK_STR(v, "{\"temperature\":0.3,\"max_tokens\":100}"); /* 0.3, not 0.29999999999999999 */
    json_t *p = json_loads(v, 0, NULL);
    CHECK(p && json_real_value(json_object_get(p, "temperature")) == 0.3);
    CHECK(p && json_integer_value(json_object_get(p, "max_tokens")) == 100);
    CHECK(p && json_object_size(p) == 2);
    json_decref(p);
    free(v);
    /* Unknowns are NULL (-2 from q_int). */
    CHECK_INT(q_int(path, "SELECT input_tokens FROM traces WHERE status=502"), -2);
    CHECK_INT(q_int(path, "SELECT cost_usd FROM traces WHERE status=502"), -2);
    CHECK_INT(q_int(path, "SELECT params FROM traces WHERE status=502"), -2);
    CHECK_INT(q_int(path, "SELECT response_id FROM traces WHERE status=502"), -2);
    CHECK_INT(q_int(path, "SELECT prompt_version FROM traces WHERE status=502"), -2);
    CHECK_INT(q_int(path, "SELECT length(deployment) FROM traces WHERE status=502"), 64);
    CHECK_INT(q_int(path, "SELECT ttft_ms * 10 FROM traces WHERE status=502"), 15);
    v = q_str(path, "SELECT error_type || stream FROM traces WHERE status=502");
    CHECK_STR(v, "connection_refused1");
    free(v);
    /* Spans: the root has no parent and the trace's attributes; attempts
     * point at the root. */
    snprintf(sql, sizeof sql, "SELECT kind || '|' || name || '|' || (parent_id IS NULL) FROM spans WHERE "
             "trace_id='%s' ORDER BY start_ns LIMIT 1", tid);
    v = q_str(path, sql);
    CHECK_STR(v, "request|chat gpt-4o-mini|1");
    free(v);
    char root[17];
    span_id_hex(t[0]->spans[0].span_id, root);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM spans WHERE trace_id='%s' AND kind='attempt' AND parent_id='%s' "
             "AND name='attempt openai'", tid, root);
    CHECK_INT(q_int(path, sql), 2);
    snprintf(sql, sizeof sql, "SELECT attributes FROM spans WHERE trace_id='%s' AND parent_id IS NULL", tid);
    v = q_str(path, sql);
    json_t *a = json_loads(v, 0, NULL);
    CHECK(a != NULL);
    CHECK_STR(json_string_value(json_object_get(a, "gen_ai.request.model")), "gpt-4o-mini");
    CHECK_INT(json_integer_value(json_object_get(a, "gen_ai.usage.input_tokens")), 12);
    CHECK(json_is_array(json_object_get(a, "gen_ai.response.finish_reasons")));
    json_decref(a);
    free(v);
    snprintf(sql, sizeof sql, "SELECT attributes FROM spans WHERE trace_id='%s' AND kind='attempt' ORDER BY start_ns "
             "LIMIT 1", tid);
    v = q_str(path, sql);
    a = json_loads(v, 0, NULL);
    CHECK(a && json_integer_value(json_object_get(a, "http.response.status_code")) == 503);
    CHECK(a && json_integer_value(json_object_get(a, "server.port")) == 443);
    json_decref(a);
    free(v);
    trace_free(t[0]);
    trace_free(t[1]);
    rm_tree(dir);
}

TEST(store_purges_in_chunks_with_spans_and_scores)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    store *s = NULL;
    CHECK_INT(store_open(url_of(path), &s, msg, sizeof msg), ERR_OK);
    if (!s)
        return;
    const uint64_t cutoff = 1000000000000ull;
    trace_rec *t[10];
    for (int i = 0; i < 10; i++)
        t[i] = make_trace(i, 2, i < 7 ? cutoff - 1000 + (uint64_t)i : cutoff + (uint64_t)i);
    CHECK_INT(store_put_traces(s, t, 10, msg, sizeof msg), ERR_OK);
    char tid_old[33], tid_new[33], sql[256];
    trace_id_hex(t[0]->trace_id, tid_old);
    trace_id_hex(t[9]->trace_id, tid_new);
    snprintf(sql, sizeof sql, "INSERT INTO scores VALUES ('a','%s','q','numeric',1,NULL,NULL,'human',1);"
             "INSERT INTO scores VALUES ('b','%s','q','numeric',1,NULL,NULL,'human',1);", tid_old, tid_new);
    CHECK(exec_raw(path, sql));
    static const size_t expect[] = { 3, 3, 1, 0 };
    for (size_t i = 0; i < countof(expect); i++) {
        size_t n = 99;
        CHECK_INT(store_purge(s, cutoff, 3, &n, msg, sizeof msg), ERR_OK);
        CHECK_INT(n, expect[i]);
    }
    store_close(s);
    CHECK_INT(q_int(path, "SELECT count(*) FROM traces"), 3);
    CHECK_INT(q_int(path, "SELECT min(start_ns) FROM traces"), (long long)cutoff + 7);
    CHECK_INT(q_int(path, "SELECT count(*) FROM spans"), 6);
    CHECK_INT(q_int(path, "SELECT count(*) FROM spans WHERE trace_id NOT IN (SELECT trace_id FROM traces)"), 0);
    char *v = q_str(path, "SELECT group_concat(id) FROM scores");
    CHECK_STR(v, "b");
    free(v);
    for (int i = 0; i < 10; i++)
        trace_free(t[i]);
    rm_tree(dir);
}

TEST(store_size_cap_reports_full_and_recovers)
{
    char dir[64], path[128], msg[512] = "";
    tmp_path(dir, sizeof dir, path, sizeof path, "g.db");
    store_opts o = { .max_bytes = 256 * 1024 };
    store *s = NULL;
    CHECK_INT(store_open_opts(url_of(path), &o, &s, msg, sizeof msg), ERR_OK);
    if (!s)
        return;
    size_t big = 8192;
    trace_rec *t = trace_new(big + 1);
    char *content = (char *)(t + 1);
    memset(content, 'x', big);
    content[big] = 0;
    t->input_messages = content;
    err_code e = ERR_OK;
    int stored = 0;
    for (int i = 0; i < 200 && e == ERR_OK; i++) {
        t->trace_id[0] = (uint8_t)i;
        t->trace_id[1] = (uint8_t)(i >> 8);
        t->start_ns = (uint64_t)i + 1;
        e = store_put_traces(s, &t, 1, msg, sizeof msg);
        if (e == ERR_OK)
            stored++;
    }
    CHECK_INT(e, ERR_STORE);
    CHECK(strstr(msg, "full") != NULL);
    CHECK(stored > 5);
    /* The failed batch was rolled back, and after a purge there is room again. */
    size_t n;
    CHECK_INT(store_purge(s, UINT64_MAX, 10000, &n, msg, sizeof msg), ERR_OK);
    CHECK_INT(n, stored);
    CHECK_INT(store_put_traces(s, &t, 1, msg, sizeof msg), ERR_OK);
    store_close(s);
    CHECK_INT(q_int(path, "SELECT count(*) FROM traces"), 1);
    trace_free(t);
    rm_tree(dir);
}
