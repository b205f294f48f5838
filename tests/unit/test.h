/*
 * test.h - the unit test harness: table-free registration through
 * constructors, so a test file only defines TEST(name) { ... } blocks.
 *
 * CHECK* record a failure with file and line and keep going; a test passes
 * when none of its checks failed. main() in main.c runs all (or those whose
 * name contains argv[1]) and ends with "N passed, N failed".
 */
#ifndef GENAIOPS_TEST_H
#define GENAIOPS_TEST_H

#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, const char *file, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Directory of golden files: tests/data (set by the build). */
const char *test_data_dir(void);
/* Reads tests/data/<rel> into a malloc'd NUL-terminated string (NULL + failure if missing). */
char *test_read_data(const char *rel, size_t *len);

#define TEST(name)                                                            \
    static void test_##name(void);                                            \
    __attribute__((constructor)) static void test_reg_##name(void)            \
    {                                                                         \
        test_register(#name, __FILE__, test_##name);                          \
    }                                                                         \
    static void test_##name(void)

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond))                                                          \
            test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                \
    } while (0)

#define CHECK_INT(a, b)                                                       \
    do {                                                                      \
        long long a_ = (long long)(a), b_ = (long long)(b);                   \
        if (a_ != b_)                                                         \
            test_fail(__FILE__, __LINE__, "%s == %lld, expected %s == %lld",  \
                      #a, a_, #b, b_);                                        \
    } while (0)

#define CHECK_STR(a, b)                                                       \
    do {                                                                      \
        const char *a_ = (a), *b_ = (b);                                      \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                \
            test_fail(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"",    \
                      #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");            \
    } while (0)

#define CHECK_MEM(p, n, lit)                                                  \
    do {                                                                      \
        const char *p_ = (const char *)(p);                                   \
        size_t n_ = (size_t)(n);                                              \
        if (n_ != sizeof(lit) - 1 || memcmp(p_, lit, n_) != 0)                \
            test_fail(__FILE__, __LINE__, "%s is \"%.*s\", expected \"%s\"",  \
                      #p, (int)n_, p_ ? p_ : "", lit);                        \
    } while (0)

#endif
