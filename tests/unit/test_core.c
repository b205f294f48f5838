/* test_core.c - buf limits, pool allocation and cleanups, error names. */
#include <stdlib.h>
#include "core/buf.h"
#include "core/err.h"
#include "core/pool.h"
#include "test.h"

TEST(buf_grows_to_its_max_and_refuses_more)
{
    buf b;
    buf_init(&b, 10);
    CHECK_INT(buf_append(&b, "0123456789", 10), ERR_OK);
    CHECK_INT(b.len, 10);
    CHECK_INT(buf_append(&b, "x", 1), ERR_TOOBIG);
    CHECK_INT(b.len, 10); /* unchanged */
    CHECK_MEM(b.p, b.len, "0123456789");
    CHECK(b.p[b.len] == '\0');
    buf_consume(&b, 4);
    CHECK_MEM(b.p, b.len, "456789");
    CHECK_INT(buf_printf(&b, "%d", 1234), ERR_OK);
    CHECK_MEM(b.p, b.len, "4567891234");
    CHECK_INT(buf_printf(&b, "%d", 5), ERR_TOOBIG);
    size_t n;
    char *s = buf_steal(&b, &n);
    CHECK_INT(n, 10);
    CHECK(b.p == NULL && b.len == 0);
    free(s);
    buf_free(&b);
}

TEST(buf_large_printf_and_overflow_guard)
{
    buf b;
    buf_init(&b, 1 << 20);
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(buf_printf(&b, "<%s>", big), ERR_OK);
    CHECK_INT(b.len, 1001);
    CHECK_INT(buf_reserve(&b, SIZE_MAX), ERR_TOOBIG);
    CHECK_INT(buf_reserve(&b, SIZE_MAX - 3), ERR_TOOBIG);
    buf_free(&b);
}

static int cleanup_order[4], ncleanups;
static void note(void *p) { cleanup_order[ncleanups++] = *(int *)p; }

TEST(pool_allocates_aligned_and_runs_cleanups_in_reverse)
{
    pool *p = pool_new(256);
    for (int i = 0; i < 100; i++) {
        char *m = pool_alloc(p, (size_t)(i * 7 + 1));
        CHECK(m != NULL);
        CHECK(((uintptr_t)m & 15) == 0);
        memset(m, 0xab, (size_t)(i * 7 + 1));
    }
    char *big = pool_alloc(p, 100000); /* a block of its own */
    CHECK(big != NULL);
    memset(big, 1, 100000);
    CHECK_STR(pool_printf(p, "%s-%d", "x", 42), "x-42");
    CHECK_STR(pool_strndup(p, "hello", 3), "hel");
    static int a = 1, b = 2, c = 3;
    ncleanups = 0;
    pool_cleanup_add(p, note, &a);
    pool_cleanup_add(p, note, &b);
    pool_cleanup_add(p, note, &c);
    CHECK(pool_used(p) >= 100000);
    pool_free(p);
    CHECK_INT(ncleanups, 3);
    CHECK_INT(cleanup_order[0], 3);
    CHECK_INT(cleanup_order[2], 1);
    pool_free(NULL);
}

TEST(err_names_and_messages_come_from_one_table)
{
    CHECK_STR(err_name(ERR_OK), "OK");
    CHECK_STR(err_name(ERR_TOOBIG), "TOOBIG");
    CHECK_STR(err_message(ERR_TIMEOUT), "timed out");
    CHECK_STR(err_message((err_code)9999), "unknown error");
    for (int e = 0; e < ERR__COUNT; e++)
        CHECK(err_name((err_code)e)[0] != '\0' && strcmp(err_name((err_code)e), "UNKNOWN") != 0);
}
