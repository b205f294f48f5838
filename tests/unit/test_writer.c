/*
 * test_writer.c - the trace writer: many producers, every record stored
 * exactly once with its spans; drops counted (never blocking) when a ring is
 * full; stop flushes everything; a full store keeps the writer going;
 * retention deletes only what is old; the exporter gets every record.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "observe/writer.h"
#include "test.h"

static void wtmp(char *dir, size_t dircap, char *url, size_t urlcap, char *path, size_t pathcap)
{
    snprintf(dir, dircap, "/tmp/genaiops-writer-XXXXXX");
    if (!mkdtemp(dir))
        test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
    snprintf(path, pathcap, "%s/t.db", dir);
    snprintf(url, urlcap, "sqlite://%s", path);
}

static void wrm(const char *dir)
{
    char cmd[300];
    if (strncmp(dir, "/tmp/genaiops-writer-", 21) != 0)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static long long wq(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 2000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return v;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static trace_rec *rec(int producer, int i, int nspans, size_t content)
{
    trace_rec *t = trace_new(content ? content + 1 : 0);
    if (!t)
        return NULL;
    snprintf(t->request_id, sizeof t->request_id, "p%d-%d", producer, i);
    t->start_ns = trace_now_ns();
    t->end_ns = t->start_ns + 1000000;
    snprintf(t->operation, sizeof t->operation, "chat");
    snprintf(t->request_model, sizeof t->request_model, "sim/echo");
    snprintf(t->provider, sizeof t->provider, "sim");
    t->status = 200;
    t->attempts = 1;
    for (int k = 0; k < nspans; k++) {
        span_rec *s = trace_add_span(t, k ? SPAN_ATTEMPT : SPAN_REQUEST, t->start_ns + (uint64_t)k);
        s->end_ns = t->end_ns;
        if (k)
            snprintf(s->provider, sizeof s->provider, "sim");
    }
    if (content) {
        char *c = (char *)(t + 1);
        memset(c, 'm', content);
        c[content] = 0;
        t->input_messages = c;
    }
    return t;
}

typedef struct producer {
    trace_writer *w;
    int index, count, nspans;
    int accepted;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < p->count; i++)
        if (trace_writer_submit(p->w, p->index, rec(p->index, i, p->nspans, 0)))
            p->accepted++;
    return NULL;
}

TEST(writer_many_producers_store_each_once)
{
    char dir[64], url[128], path[128], err[512] = "";
    wtmp(dir, sizeof dir, url, sizeof url, path, sizeof path);
    enum { NP = 4, M = 2500 };
    cfg_telemetry t = { .queue_size = NP * M, .retention_days = 0 };
    trace_writer *w = trace_writer_start(url, &t, NP, err, sizeof err);
    CHECK(w != NULL);
    if (!w) {
        fprintf(stderr, "    %s\n", err);
        return;
    }
    producer p[NP];
    pthread_t th[NP];
    for (int i = 0; i < NP; i++) {
        p[i] = (producer){ w, i, M, 3, 0 };
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    for (int i = 0; i < NP; i++) {
        pthread_join(th[i], NULL);
        CHECK_INT(p[i].accepted, M); /* each ring holds all M: nothing may drop */
    }
    trace_writer_stop(w);
    CHECK_INT(wq(path, "SELECT count(*) FROM traces"), NP * M);
    CHECK_INT(wq(path, "SELECT count(DISTINCT request_id) FROM traces"), NP * M);
    CHECK_INT(wq(path, "SELECT count(*) FROM spans"), NP * M * 3);
    CHECK_INT(wq(path, "SELECT count(*) FROM (SELECT trace_id FROM spans GROUP BY trace_id HAVING count(*) = 3)"),
              NP * M);
    CHECK_INT(wq(path, "SELECT count(*) FROM traces WHERE request_id LIKE 'p3-%'"), M);
    wrm(dir);
}

TEST(writer_small_queue_accounts_for_every_record)
{
    char dir[64], url[128], path[128], err[512] = "";
    wtmp(dir, sizeof dir, url, sizeof url, path, sizeof path);
    enum { NP = 3, M = 4000 };
    cfg_telemetry t = { .queue_size = 48 };
    trace_writer *w = trace_writer_start(url, &t, NP, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    producer p[NP];
    pthread_t th[NP];
    for (int i = 0; i < NP; i++) {
        p[i] = (producer){ w, i, M, 2, 0 };
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    long long accepted = 0;
    for (int i = 0; i < NP; i++) {
        pthread_join(th[i], NULL);
        accepted += p[i].accepted;
    }
    trace_writer_stop(w);
    /* Whatever raced: stored == accepted, accepted + dropped == submitted. */
    long long stored = wq(path, "SELECT count(*) FROM traces");
    CHECK_INT(stored, accepted);
    CHECK_INT(wq(path, "SELECT count(*) FROM spans"), accepted * 2);
    CHECK(accepted > 0);
    wrm(dir);
}

/* An exporter that blocks the writer thread until released: this is how
 * the test stalls the writer to fill a ring. */
typedef struct stall {
    atomic_int calls;
    atomic_bool release;
    atomic_int received;
} stall;

static bool stall_submit(void *ud, trace_rec *r)
{
    stall *s = ud;
    atomic_fetch_add(&s->calls, 1);
    while (!atomic_load(&s->release))
        sleep_ms(1);
    atomic_fetch_add(&s->received, 1);
    trace_free(r);
    return true;
}

TEST(writer_full_ring_drops_and_counts_without_blocking)
{
    char dir[64], url[128], path[128], err[512] = "";
    wtmp(dir, sizeof dir, url, sizeof url, path, sizeof path);
    cfg_telemetry t = { .queue_size = 16 };
    trace_writer *w = trace_writer_start(url, &t, 2, err, sizeof err); /* rings of 8 */
    CHECK(w != NULL);
    if (!w)
        return;
    stall st = { 0 };
    trace_writer_set_exporter(w, stall_submit, &st);
    CHECK(trace_writer_submit(w, 0, rec(0, 0, 1, 0)));
    for (int i = 0; i < 2000 && atomic_load(&st.calls) == 0; i++)
        sleep_ms(1);
    CHECK_INT(atomic_load(&st.calls), 1); /* the writer is stuck in the exporter now */
    /* Fill until drops start, let the pipeline settle (the encoder ends up
     * blocked handing over a batch, the store thread is in the exporter),
     * and repeat until ring 0 stays full. */
    int ok = 1, dropped = 0, seq = 1;
    for (int round = 0; round < 20 && trace_writer_depth(w) < 8; round++) {
        for (int i = 0; i < 100000; i++) {
            if (!trace_writer_submit(w, 0, rec(0, seq++, 1, 0))) {
                dropped++;
                break;
            }
            ok++;
        }
        sleep_ms(50);
    }
    CHECK_INT(trace_writer_depth(w), 8);
    CHECK(dropped >= 1);
    CHECK(ok >= 9);                       /* the ring at least, plus what the pipeline holds */
    CHECK(ok <= 1 + 8 + 2 * 4096);        /* and no more: the pipeline is bounded */
    CHECK_INT(trace_writer_dropped(w), dropped);
    /* Now every submit to ring 0 drops, at once, and is counted. */
    for (int i = 0; i < 5; i++)
        CHECK(!trace_writer_submit(w, 0, rec(0, seq++, 1, 0)));
    CHECK_INT(trace_writer_dropped(w), dropped + 5);
    CHECK_INT(trace_writer_depth(w), 8);
    /* The other worker's ring is independent. */
    CHECK(trace_writer_submit(w, 1, rec(1, 0, 1, 0)));
    ok++;
    CHECK_INT(trace_writer_depth(w), 9);
    /* Bad worker indexes and NULL are refused and (for records) counted. */
    CHECK(!trace_writer_submit(w, 2, rec(9, 0, 1, 0)));
    CHECK(!trace_writer_submit(w, -1, rec(9, 1, 1, 0)));
    CHECK(!trace_writer_submit(w, 0, NULL));
    CHECK_INT(trace_writer_dropped(w), dropped + 7);
    atomic_store(&st.release, true);
    trace_writer_stop(w);
    CHECK_INT(atomic_load(&st.received), ok);
    CHECK_INT(wq(path, "SELECT count(*) FROM traces"), ok);
    wrm(dir);
}

TEST(writer_stop_flushes_everything_queued)
{
    char dir[64], url[128], path[128], err[512] = "";
    wtmp(dir, sizeof dir, url, sizeof url, path, sizeof path);
    cfg_telemetry t = { .queue_size = 20000 };
    trace_writer *w = trace_writer_start(url, &t, 1, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    int ok = 0;
    for (int i = 0; i < 12000; i++)
        ok += trace_writer_submit(w, 0, rec(0, i, 2, 0));
    CHECK_INT(ok, 12000);
    trace_writer_stop(w); /* at once: most are still queued */
    CHECK_INT(wq(path, "SELECT count(*) FROM traces"), 12000);
    CHECK_INT(wq(path, "SELECT count(*) FROM spans"), 24000);
    wrm(dir);
}

static bool count_submit(void *ud, trace_rec *r)
{
    atomic_fetch_add((atomic_int *)ud, 1);
    trace_free(r);
    return true;
}

TEST(writer_full_store_keeps_going)
{
    char dir[64], url[128], path[128], err[512] = "";
    wtmp(dir, sizeof dir, url, sizeof url, path, sizeof path);
    cfg_telemetry t = { .queue_size = 1000 };
    store_opts so = { .max_bytes = 512 * 1024 };
    trace_writer *w = trace_writer_start_opts(url, &so, &t, 1, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    atomic_int exported = 0;
    trace_writer_set_exporter(w, count_submit, &exported);
    int ok = 0;
    for (int i = 0; i < 300; i++) {
        ok += trace_writer_submit(w, 0, rec(0, i, 2, 2048));
        if (i % 10 == 9)
            sleep_ms(30);
    }
    for (int i = 0; i < 500 && trace_writer_written(w) + trace_writer_dropped(w) < (uint64_t)ok; i++)
        sleep_ms(10);
    uint64_t written = trace_writer_written(w), dropped = trace_writer_dropped(w);
    CHECK(dropped > 0);            /* the cap was hit */
    CHECK(written > 0);            /* and the first batches made it */
    CHECK_INT(written + dropped, ok);
    /* Still taking records after failures. */
    CHECK(trace_writer_submit(w, 0, rec(0, 999, 1, 0)));
    trace_writer_stop(w);
    CHECK_INT(atomic_load(&exported), ok + 1); /* the exporter still gets them all */
    long long stored = wq(path, "SELECT count(*) FROM traces");
    CHECK(stored == (long long)written || stored == (long long)written + 1);
    wrm(dir);
}

TEST(writer_retention_deletes_only_old)
{
    char dir[64], url[128], path[128], err[512] = "", msg[512];
    wtmp(dir, sizeof dir, url, sizeof url, path, sizeof path);
    store *s = NULL;
    CHECK_INT(store_open(url, &s, msg, sizeof msg), ERR_OK);
    if (!s)
        return;
    uint64_t day = 86400ull * 1000000000ull, now = trace_now_ns();
    trace_rec *t[17];
    for (int i = 0; i < 17; i++) {
        t[i] = rec(7, i, 2, 0);
        t[i]->start_ns = i < 12 ? now - 40 * day - (uint64_t)i : now - 29 * day + (uint64_t)i;
        t[i]->end_ns = t[i]->start_ns + 1000;
    }
    CHECK_INT(store_put_traces(s, t, 17, msg, sizeof msg), ERR_OK);
    store_close(s);
    char old[33], young[33], sql[300];
    trace_id_hex(t[0]->trace_id, old);
    trace_id_hex(t[16]->trace_id, young);
    for (int i = 0; i < 17; i++)
        trace_free(t[i]);
    sqlite3 *db = NULL;
    sqlite3_open(path, &db);
    snprintf(sql, sizeof sql, "INSERT INTO scores VALUES ('s-old','%s','q','numeric',1,NULL,NULL,'human',1);"
             "INSERT INTO scores VALUES ('s-new','%s','q','numeric',1,NULL,NULL,'human',1);", old, young);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);

    cfg_telemetry tc = { .queue_size = 100, .retention_days = 30 };
    trace_writer *w = trace_writer_start(url, &tc, 1, err, sizeof err);
    CHECK(w != NULL);
    if (!w)
        return;
    for (int i = 0; i < 300 && trace_writer_purged(w) < 12; i++)
        sleep_ms(10);
    CHECK_INT(trace_writer_purged(w), 12);
    CHECK(trace_writer_submit(w, 0, rec(0, 0, 1, 0)));
    trace_writer_stop(w);
    CHECK_INT(wq(path, "SELECT count(*) FROM traces"), 6);
    CHECK_INT(wq(path, "SELECT count(*) FROM spans"), 5 * 2 + 1);
    CHECK_INT(wq(path, "SELECT count(*) FROM scores"), 1);
    CHECK_INT(wq(path, "SELECT count(*) FROM scores WHERE id='s-new'"), 1);
    wrm(dir);
}

TEST(writer_start_errors)
{
    char err[512] = "";
    cfg_telemetry t = { .queue_size = 10 };
    CHECK(trace_writer_start("sqlite:///tmp/genaiops-nowhere-dir/x/t.db", &t, 1, err, sizeof err) == NULL);
    CHECK(strstr(err, "genaiops-nowhere-dir") != NULL);
    CHECK(trace_writer_start("sqlite:///tmp/x.db", &t, 0, err, sizeof err) == NULL);
    CHECK(strstr(err, "workers") != NULL);
    CHECK(trace_writer_start("mysql://x", &t, 1, err, sizeof err) == NULL);
    CHECK(strstr(err, "not supported") != NULL);
    trace_writer_stop(NULL);
}
